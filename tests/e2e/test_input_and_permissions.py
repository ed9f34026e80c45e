"""Bad input and permissions end to end: who may see a partnership's details, a close confirmed from the
server (any reason fits its button), echoes of what people typed shown as text, and answers when the
database is down. One fake Slack and one app for the module; each test has its own partnership."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from blocks.text import escape
from models import Partnership, PartnershipStatus
from models.partnership import GOALS_MAX, NAME_MAX, PARTNER_ORG_MAX, REASON_MAX
from tests.blocks.blockkit import assert_valid_message_blocks
from tests.e2e.conftest import ALICE, BOB, DAN, PARTNER_PAT, Harness, Said, flatten, new_fake, start_harness
from tests.support.clock import FrozenClock
from tests.support.text import at_limit

CLOSE_CONFIRM = "partnership_close_confirm"


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory, clock: FrozenClock) -> Iterator[Harness]:
    fake = new_fake(clock=clock.epoch)
    harness = start_harness(fake, tmp_path_factory.mktemp("e2e"), clock=clock)
    yield harness
    harness.close()
    fake.stop()


def typed(text: str) -> str:
    """What Slack sends for text a person typed literally: &, < and > escaped."""
    return escape(text)


def create(h: Harness, name: str, *members: str) -> str:
    assert "is set up" in h.command(f"new {name}").text
    cid = str(h.channel(f"partner-{name.lower()}").id)
    for user in members:
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return cid


def confirm_buttons(said: Said) -> list[dict[str, Any]]:
    return [e for m in said.messages if isinstance(m, dict) for b in m.get("blocks", [])
            for e in b.get("elements", []) if e.get("action_id") == CLOSE_CONFIRM]


def click(h: Harness, value: str, *, user: str, channel: str) -> str:
    url = h.fake.new_response_url()
    h.sender.block_action(CLOSE_CONFIRM, value, user_id=user, channel_id=channel, response_url=url)
    h.wait()
    return flatten(h.fake.responses(url))


def shows_only_text(said: str) -> bool:
    """Nothing in it that Slack would turn into a mention or a link."""
    return "<!" not in said and "<http" not in said


# -- /partner info: members only -------------------------------------------------------------------
def test_info_is_for_members_and_others_get_a_short_private_refusal(h: Harness) -> None:
    cid = create(h, "Globex", BOB, PARTNER_PAT)
    h.command("invite ana@globex.example", channel=cid)
    refused = h.command("info", user=DAN, channel=cid).text  # Dan joined the public channel, nothing more
    assert "Only people in the *Globex* partnership can see its details" in refused
    assert "ana@globex.example" not in refused and "created the partnership" not in refused
    assert len(refused) < 300
    for member in (ALICE, BOB, PARTNER_PAT):
        info = h.command("info", user=member, channel=cid).text
        assert "ana@globex.example" in info and f"<@{ALICE}> created the partnership" in info, member


# -- text at its limits ------------------------------------------------------------------------------------
def test_a_partnership_with_every_text_at_its_limit_in_a_non_latin_script_is_set_up(h: Harness) -> None:
    name, org, goals = at_limit(NAME_MAX), at_limit(PARTNER_ORG_MAX), at_limit(GOALS_MAX)
    h.command("new")
    form = h.fake.open_views(ALICE)[-1]["view"]
    values = {field: {field: {"type": "plain_text_input", "value": value}}
              for field, value in (("name", name), ("partner_org", org), ("partner_emails", ""), ("goals", goals),
                                   ("timezone", "Europe/Berlin"))}
    status, ack = h.sender.submit_view(form, values, user_id=ALICE)
    h.wait()
    assert status == 200 and not ack
    channel = h.channel("partner-partnership")  # nothing of the name fits a channel name: the fallback
    [charter] = h.fake.messages(channel.id)
    assert_valid_message_blocks(charter["blocks"])
    info = h.command("info", channel=channel.id).text
    assert escape(name) in info and escape(org) in info and shows_only_text(info)


# -- /partner close: the request waits on the server -------------------------------------------------
def test_a_close_with_the_longest_non_latin_reason_fits_its_button_and_closes_once(h: Harness) -> None:
    cid = create(h, "Initrode")
    reason = at_limit(REASON_MAX)
    said = h.command("close " + typed(reason), channel=cid)
    [button] = confirm_buttons(said)
    assert button["value"].isdigit() and len(button["value"]) <= 10  # an id; the reason stays on the server
    question = next(m for m in said.messages if confirm_buttons(Said(200, [m])))
    assert_valid_message_blocks(question["blocks"])
    assert escape(reason) in said.text and shows_only_text(said.text)
    assert not h.fake.channels[cid].is_archived

    archived = h.fake.call_count("conversations.archive")
    answers: list[str] = []
    clicks = [threading.Thread(target=lambda: answers.append(click(h, button["value"], user=ALICE, channel=cid)))
              for _ in range(2)]  # a double click
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(30)
    assert sorted("Closed *Initrode*" in a for a in answers) == [False, True], answers
    assert any("already closed" in a for a in answers)
    assert h.fake.call_count("conversations.archive") == archived + 1
    summaries = [flatten(m) for m in h.fake.messages(cid) if "Partnership closed" in flatten(m)]
    assert len(summaries) == 1 and escape(reason) in summaries[0]
    with h.bot.services.uow() as s:
        p = s.exec(select(Partnership).where(Partnership.channel_id == cid)).one()
        assert p.status == PartnershipStatus.CLOSED and p.close_reason == reason


def test_a_close_button_works_only_for_who_asked_and_only_for_a_while(h: Harness, clock: FrozenClock) -> None:
    cid = create(h, "Hooli")
    h.command(f"add <@{BOB}|bob> owner", channel=cid)
    [alices] = confirm_buttons(h.command("close merger", channel=cid))
    told = click(h, alices["value"], user=BOB, channel=cid)
    assert "only they can confirm it" in told and f"<@{ALICE}>" in told
    assert not h.fake.channels[cid].is_archived
    clock.advance(minutes=31)
    told = click(h, alices["value"], user=ALICE, channel=cid)
    assert "This button no longer works" in told and "Run the command again" in told
    assert not h.fake.channels[cid].is_archived
    assert "no longer works" in click(h, "not-an-id", user=ALICE, channel=cid)
    [fresh] = confirm_buttons(h.command("close merger", channel=cid))
    assert "Closed *Hooli*" in click(h, fresh["value"], user=ALICE, channel=cid)


# -- what people typed is shown as text ----------------------------------------------------------------
def test_echoes_of_what_people_typed_cannot_mention_anyone_or_link(h: Harness) -> None:
    cid = create(h, "Umbrella")
    cases = {
        "<!here>": "`@here` is not a Partnerbot command",  # a real @here, as Slack sends it
        typed("<!here>"): "`&lt;!here&gt;` is not a Partnerbot command",  # typed literally
        f"add <@{BOB}|bob> <!channel>": "'@channel' is not a role",
        f"add <@{BOB}|bob> {typed('<!channel>')}": "'&lt;!channel&gt;' is not a role",
        f"invite {typed('a<!here>b')}": "'a&lt;!here&gt;b' is not an email address",
        f"invite {typed('a<http://evil|x>b')}": "'a&lt;http://evil|x&gt;b' is not an email address",
        f"checkin schedule mon 09:30 {typed('<http://evil|x>')}": "'&lt;http://evil|x&gt;' is not a time zone",
        f"checkin {typed('<!here>')}": "`&lt;!here&gt;` is not a check-in command",
    }
    for command, expected in cases.items():
        said = h.command(command, channel=cid).text
        assert expected in said, (command, said)
        assert shows_only_text(said), (command, said)


# -- the database is down: still an answer, privately, with a reference ----------------------------------
@contextmanager
def database_down(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def broken(read_only: bool = False) -> Any:
        raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("unable to open database file"))

    with monkeypatch.context() as m:
        for service in (h.bot.services.partnerships, h.bot.services.checkins):
            m.setattr(service, "uow", broken)
        yield


def reference_in(text: str) -> str:
    found = re.search(r"`([0-9a-f]{8})`", text)
    assert found, text
    return found.group(1)


def logged(caplog: pytest.LogCaptureFixture, ref: str) -> bool:
    """The reference the person got leads the admin to the failure's traceback in the log."""
    return any(ref in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_form_submitted_while_the_database_is_down_gets_a_form_error(
    h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    h.command("new")
    form = h.fake.open_views(ALICE)[-1]["view"]
    values = {"name": {"name": {"type": "plain_text_input", "value": "Cyberdyne"}}}
    with database_down(h, monkeypatch):
        status, ack = h.sender.submit_view(form, values, user_id=ALICE)
        h.wait()
    assert status == 200 and ack["response_action"] == "errors"
    error = ack["errors"]["name"]
    assert "a problem on our side" in error and "Try again in a minute" in error and len(error) <= 150
    assert logged(caplog, reference_in(error))
    assert h.fake.channel_by_name("partner-cyberdyne") is None
    status, ack = h.sender.submit_view(form, values, user_id=ALICE)  # back up: the same form works
    h.wait()
    assert status == 200 and not ack and h.fake.channel_by_name("partner-cyberdyne") is not None


def test_a_failed_write_logs_its_traceback_without_what_the_person_typed(
    h: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLAlchemy puts a failed statement's parameters in its error message, and so in the traceback
    the log keeps: here the goals someone typed into the form."""
    h.command("new")
    form = h.fake.open_views(ALICE)[-1]["view"]
    secret = "Acquire-Initech-before-Q3-confidential"
    values = {"name": {"name": {"type": "plain_text_input", "value": "Initrode"}},
              "goals": {"goals": {"type": "plain_text_input", "value": secret}}}
    engine = h.bot.services.engine
    with engine.begin() as conn:  # the insert fails inside the database, after its parameters were bound
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON partnership "
                             "BEGIN INSERT INTO table_lost_on_disk VALUES (1); END")
    try:
        status, ack = h.sender.submit_view(form, values, user_id=ALICE)
        h.wait()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse")
    assert status == 200
    told = ack["errors"]["name"] if ack else flatten(h.fake.responses(h.sender.last_response_url))
    assert "a problem on our side" in told
    failure = next(r for r in caplog.records if reference_in(told) in r.getMessage() and r.exc_info)
    assert "table_lost_on_disk" in caplog.text and "[SQL: INSERT" in caplog.text  # the traceback is there
    assert secret not in caplog.text and secret not in str(failure.exc_info[1])


def test_a_button_clicked_while_the_database_is_down_gets_a_private_answer(
    h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    cid = create(h, "Soylent", BOB)
    h.command("checkin now", channel=cid)
    h.tick()
    [prompt] = [m for m in h.fake.messages(cid) if m.get("text", "").startswith("Check-in time")]
    button = next(e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"])
    with database_down(h, monkeypatch):
        url = h.fake.new_response_url()
        h.sender.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=cid, message=prompt,
                              response_url=url)
        h.wait()
    told = flatten(h.fake.responses(url))
    assert "Could not open the check-in form: a problem on our side" in told
    assert logged(caplog, reference_in(told))
    assert h.fake.open_views(BOB) == []

