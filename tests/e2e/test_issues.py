"""The issue log end to end: signed requests to the real HTTP endpoint, the scheduler driven with a frozen clock,
and what people see in the fake Slack (the card, its thread, direct messages, private answers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, PARTNER_PAT, Harness, flatten, start_harness
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(berlin(2026, 3, 2, 10, 0))  # Monday morning


@pytest.fixture
def hc(fake: FakeSlack, tmp_path: Any, clock: FrozenClock) -> Iterator[Harness]:
    fake.clock = clock.epoch
    harness = start_harness(fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def setup_partnership(h: Harness) -> str:
    """Acme: Alice owns it, Bob and Carol are on our side, Pat on the partner's; Dan is not in it."""
    h.command("new Acme")
    cid = str(h.channel("partner-acme").id)
    for user in (BOB, CAROL, PARTNER_PAT):
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return cid


def cards(h: Harness, cid: str) -> list[dict[str, Any]]:
    return [m for m in h.fake.messages(cid) if (m.get("text") or "").startswith("Issue #")]


def card(h: Harness, cid: str, number: int = 1) -> dict[str, Any]:
    [found] = [m for m in cards(h, cid) if m["text"].startswith(f"Issue #{number}:")]
    return found


def thread(h: Harness, cid: str, number: int = 1) -> list[str]:
    return [m["text"] for m in h.fake.replies(cid, card(h, cid, number)["ts"])]


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def click(h: Harness, user: str, message: dict[str, Any], label: str, channel: str) -> str:
    """Click a button on a message; returns what the person was told privately."""
    button = buttons(message)[label]
    h.sender.block_action(button["action_id"], button["value"], user_id=user, channel_id=channel, message=message)
    h.wait()
    return flatten(h.fake.responses(h.sender.last_response_url))


def submit(h: Harness, user: str, values: dict[str, Any]) -> Any:
    form = h.fake.open_views(user)[-1]["view"]
    _, ack = h.sender.submit_view(form, values, user_id=user)
    h.wait()
    return ack


def text_value(block: str, value: str) -> dict[str, Any]:
    return {block: {block: {"type": "plain_text_input", "value": value}}}


def test_log_by_command_acknowledge_and_resolve_with_permissions(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    said = h.command("issue Partner API returns 500 <!channel>", channel=cid, user=CAROL)
    assert "Logged issue #1 *Partner API returns 500 @channel* (normal)" in said.text
    h.tick()
    c = card(h, cid)
    shown = flatten(c)
    assert "<!channel>" not in shown and "@channel" in shown  # no mention through a title
    assert "normal" in shown and "open" in shown and f"reported by <@{CAROL}>" in shown
    assert "nobody yet" in shown  # no owner yet
    assert "Acknowledge by" in shown and "1 day left" in shown and "Resolve by" in shown and "7 days left" in shown
    assert {"Acknowledge", "Assign", "Edit", "Waiting on partner", "Resolve", "Escalate"} == set(buttons(c))

    # Dan is not in the partnership: he cannot log; Bob (a member, not an owner of it) cannot acknowledge.
    assert "Only people in the *Acme* partnership can log issues" in h.command("issue Nope", channel=cid, user=DAN).text
    told = click(h, BOB, c, "Acknowledge", cid)
    assert "Only the owners of issue #1 (it has none yet) and the owners of *Acme* can acknowledge it" in told
    assert f"<@{ALICE}>" in told

    # Alice (an owner of the partnership) acknowledges: the card is updated in place, the thread says who.
    clock.advance(minutes=35)
    told = click(h, ALICE, c, "Acknowledge", cid)
    assert "Issue #1" in told and "acknowledged" in told
    h.tick()
    c = card(h, cid)
    assert len(cards(h, cid)) == 1
    assert "acknowledged" in flatten(c) and "acknowledged within its target" in flatten(c)
    assert "Acknowledge" not in buttons(c)
    assert thread(h, cid) == [f"<@{ALICE}> acknowledged #1"]

    # Resolve: a form asking for the resolution note (empty is refused under the input); posted in the thread.
    click(h, ALICE, c, "Resolve", cid)
    ack = submit(h, ALICE, text_value("issue_note", "  "))
    assert ack["response_action"] == "errors" and "Write what was done" in ack["errors"]["issue_note"]
    ack = submit(h, ALICE, text_value("issue_note", "Rolled back the <b>proxy</b> config"))
    assert not ack
    clock.advance(seconds=30)
    h.tick()
    c = card(h, cid)
    assert "resolved" in flatten(c) and set(buttons(c)) == {"Reopen"}
    assert thread(h, cid)[-1] == f"<@{ALICE}> resolved #1: Rolled back the &lt;b&gt;proxy&lt;/b&gt; config"

    # The history, privately, and the audit trail.
    detail = h.command("issue 1", channel=cid, user=BOB).text
    assert "History" in detail and "logged" in detail and "acknowledged" in detail and "resolved" in detail
    p = h.bot.services.partnerships.by_channel(cid)
    assert p is not None
    actions = [e.action for e in h.bot.services.partnerships.audit_trail(p.partnership.id or 0)]
    assert {"issue_logged", "issue_acknowledged", "issue_resolved"} <= set(actions)


def issue_values(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "issue_title": {"type": "plain_text_input", "value": fields.get("title", "Invoices rejected")},
        "issue_description": {"type": "plain_text_input", "value": fields.get("description", "Since Friday")},
        "issue_severity": {"type": "static_select", "selected_option": {"value": fields.get("severity", "high")}},
        "issue_owner_ours": {"type": "users_select", "selected_user": fields.get("ours", BOB)},
        "issue_owner_partner": {"type": "users_select", "selected_user": fields.get("partner", PARTNER_PAT)},
        "issue_due": {"type": "datepicker", "selected_date": fields.get("due")},
    }
    return {block: {block: value} for block, value in values.items()}


def test_log_by_form_shortcut_and_checkin_answer_once_each(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    # The form: too long a title and an owner on the wrong side are refused under their inputs, keeping the form.
    h.command("issue", channel=cid, user=PARTNER_PAT)
    form = h.fake.open_views(PARTNER_PAT)[-1]["view"]
    assert form["callback_id"] == "issue_new"
    _, ack = h.sender.submit_view(form, issue_values(title="x" * 151), user_id=PARTNER_PAT)
    assert ack["response_action"] == "errors" and "the limit is 150" in ack["errors"]["issue_title"]
    _, ack = h.sender.submit_view(form, issue_values(description="d" * 3001), user_id=PARTNER_PAT)
    assert "the limit is 3000" in ack["errors"]["issue_description"]
    _, ack = h.sender.submit_view(form, issue_values(partner=CAROL), user_id=PARTNER_PAT)
    assert "partner's side" in ack["errors"]["issue_owner_partner"]
    # Sent twice (a double click, or Slack re-sending): one issue.
    for _ in range(2):
        _, ack = h.sender.submit_view(form, issue_values(), user_id=PARTNER_PAT)
        h.wait()
        assert not ack
    clock.advance(seconds=5)
    h.tick()
    [c] = cards(h, cid)
    shown = flatten(c)
    assert "#1 Invoices rejected" in shown and "high" in shown and f"ours <@{BOB}> · partner <@{PARTNER_PAT}>" in shown
    assert "4 h left" in shown and "3 days left" in shown

    # The message shortcut in the partnership channel: the form is prefilled, and the issue keeps the link.
    said = h.fake.say(cid, CAROL, "Shipment stuck at customs\nThe partner's broker has not answered since Monday.")
    h.sender.message_shortcut("log_issue", said, user_id=CAROL, channel_id=cid)
    h.wait()
    form = h.fake.open_views(CAROL)[-1]["view"]
    fields = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"] if b["type"] == "input"}
    assert fields["issue_title"] == "Shipment stuck at customs"
    assert "broker has not answered" in fields["issue_description"]
    _, ack = h.sender.submit_view(form, issue_values(title=fields["issue_title"], ours=None, partner=None,
                                                     severity="normal"), user_id=CAROL)
    h.wait()
    clock.advance(seconds=5)
    h.tick()
    shortcut_card = flatten(card(h, cid, 2))
    assert "Shipment stuck at customs" in shortcut_card
    assert f"https://fake.slack.test/archives/{cid}/p{said['ts'].replace('.', '')}" in shortcut_card
    # …and elsewhere it says so, privately.
    general_message = h.fake.say(h.general, CAROL, "Not a partnership thing")
    h.sender.message_shortcut("log_issue", general_message, user_id=CAROL, channel_id=h.general)
    h.wait()
    assert "not in a partnership channel" in flatten(h.fake.responses(h.sender.last_response_url))

    # A check-in blocker answer's "Log as issue" button: the form, prefilled, with the answer's author as reporter.
    from models.checkin import CheckinAnswer, CheckinRound

    p = h.bot.services.partnerships.by_channel(cid)
    assert p is not None
    with h.bot.services.uow() as s:
        r = CheckinRound(key="checkin:test", partnership_id=p.partnership.id or 0, local_date=clock.now().date(),
                         timezone="Europe/Berlin", scheduled_for=clock.now(), opened_at=clock.now(),
                         closes_at=clock.now() + timedelta(hours=4), questions=["What went well?", "Any blockers?"],
                         participants=[BOB], channel_id=cid)
        s.add(r)
        s.flush()
        a = CheckinAnswer(round_id=r.id or 0, user_id=BOB, answers=["Demo", "Waiting on SSO certs\nsince last week"])
        s.add(a)
        s.flush()
        answer_id = a.id
    h.sender.block_action("issue_from_answer", f"{answer_id}:1", user_id=DAN, channel_id=cid)
    h.wait()
    assert "Only people in the *Acme* partnership" in flatten(h.fake.responses(h.sender.last_response_url))
    h.sender.block_action("issue_from_answer", f"{answer_id}:1", user_id=ALICE, channel_id=cid)
    h.wait()
    form = h.fake.open_views(ALICE)[-1]["view"]
    fields = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"] if b["type"] == "input"}
    assert fields["issue_title"] == "Waiting on SSO certs"
    assert fields["issue_description"] == "Any blockers?\nWaiting on SSO certs\nsince last week"
    _, ack = h.sender.submit_view(form, issue_values(title=fields["issue_title"], ours=None, partner=None),
                                  user_id=ALICE)
    h.wait()
    clock.advance(seconds=5)
    h.tick()
    assert f"reported by <@{BOB}>" in flatten(card(h, cid, 3))
    listed = h.command("issues", channel=cid, user=PARTNER_PAT).text
    # #1 and #3 are high, #2 normal: most severe first, then the oldest.
    assert listed.index("*#1*") < listed.index("*#3*") < listed.index("*#2*")
    assert "Issues of Acme* (open, 3)" in listed


def test_assign_wait_resume_reopen_escalate_and_refusals(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("issue SSO login loops", channel=cid, user=PARTNER_PAT)
    h.tick()
    # Assign: a form with the two owners (an owner on the wrong side is refused under its input).
    click(h, ALICE, card(h, cid), "Assign", cid)
    values = {"issue_owner_ours": {"issue_owner_ours": {"type": "users_select", "selected_user": PARTNER_PAT}},
              "issue_owner_partner": {"issue_owner_partner": {"type": "users_select", "selected_user": None}}}
    ack = submit(h, ALICE, values)
    assert "our side" in ack["errors"]["issue_owner_ours"]
    values["issue_owner_ours"]["issue_owner_ours"]["selected_user"] = CAROL
    values["issue_owner_partner"]["issue_owner_partner"]["selected_user"] = PARTNER_PAT
    assert not submit(h, ALICE, values)
    clock.advance(minutes=10)
    h.tick()
    assert thread(h, cid)[-1] == f"<@{ALICE}> assigned #1: ours <@{CAROL}> · partner <@{PARTNER_PAT}>"

    # Now Carol (an owner of the issue) may; Bob still may not, and his refusal names who may.
    told = click(h, BOB, card(h, cid), "Waiting on partner", cid)
    assert f"Only the owners of issue #1 (<@{CAROL}>, <@{PARTNER_PAT}>) and the owners of *Acme*" in told
    click(h, CAROL, card(h, cid), "Waiting on partner", cid)
    clock.advance(days=3)
    h.tick()
    c = card(h, cid)
    assert "waiting on partner" in flatten(c) and "paused while waiting on the partner" in flatten(c)
    assert "Resume" in buttons(c)
    # Three days waiting do not count: resumed, the resolve clock has what was left (7 days - 10 min).
    click(h, PARTNER_PAT, c, "Resume", cid)
    clock.advance(seconds=5)
    h.tick()
    assert "6 days 23 h left" in flatten(card(h, cid))

    # A button replayed from another channel is refused.
    button = buttons(card(h, cid))["Resolve"]
    h.sender.block_action(button["action_id"], button["value"], user_id=ALICE, channel_id=h.general)
    h.wait()
    assert "use it in" in flatten(h.fake.responses(h.sender.last_response_url))

    # Resolve, then reopen: only the reporter (Pat) or a partnership owner; a new resolve clock starts.
    click(h, CAROL, card(h, cid), "Resolve", cid)
    assert not submit(h, CAROL, text_value("issue_note", "Fixed the redirect URI"))
    clock.advance(seconds=5)
    h.tick()
    told = click(h, BOB, card(h, cid), "Reopen", cid)
    assert f"Only its reporter (<@{PARTNER_PAT}>) and the owners of *Acme* can reopen it" in told
    click(h, PARTNER_PAT, card(h, cid), "Reopen", cid)
    clock.advance(seconds=5)
    h.tick()
    assert "7 days left" in flatten(card(h, cid))

    # Escalate (any member, with an optional note): the sponsors hear at once; without sponsors, the owners.
    h.command(f"add <@{DAN}|dan> sponsor", channel=cid)
    click(h, BOB, card(h, cid), "Escalate", cid)
    assert not submit(h, BOB, text_value("issue_note", "Customer demo on Friday"))
    h.tick()
    dm = h.dm_text(DAN)
    assert "Escalation in *Acme*" in dm and "#1 *SSO login loops*" in dm and "Customer demo on Friday" in dm
    assert [line.split(" ", 1)[1] for line in thread(h, cid)] == [
        "assigned #1: ours <@UCAROL> · partner <@UPAT>", "marked waiting on the partner #1", "resumed #1",
        "resolved #1: Fixed the redirect URI", "reopened #1",
            f"escalated #1 to <@{DAN}> (our sponsor) and <@{PARTNER_PAT}> (the partner's contact): Customer demo on "
            "Friday"]


def dms_with(h: Harness, user: str, text: str) -> list[str]:
    return [flatten(m) for m in h.fake.dm_messages(user) if text in flatten(m)]


def test_sla_ladder_each_level_once_deleted_card_and_archived_channel(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f"add <@{DAN}|dan> sponsor", channel=cid)
    start = clock.now()
    h.command("issue", channel=cid, user=CAROL)
    assert not submit(h, CAROL, issue_values(title="Payments down", severity="critical", due=None))
    h.tick()
    assert "Acknowledge by" in flatten(card(h, cid)) and "1 h left" in flatten(card(h, cid))

    # 80 % of the 1 h acknowledge target: one private reminder to the issue's owners, with the card's link.
    clock.set(start + timedelta(minutes=47))
    h.tick()
    assert dms_with(h, BOB, "to acknowledge it") == []
    clock.set(start + timedelta(minutes=48))
    h.tick()
    for owner in (BOB, PARTNER_PAT):
        [reminder] = dms_with(h, owner, "to acknowledge it")
        assert "#1 *Payments down*" in reminder and "12 min left" in reminder
        assert f"https://fake.slack.test/archives/{cid}/" in reminder
    assert dms_with(h, ALICE, "to acknowledge it") == []

    # At the target: level 1, a thread note and direct messages to the issue's and the partnership's owners.
    clock.set(start + timedelta(hours=1))
    h.tick()
    assert thread(h, cid) == [":rotating_light: #1 was not acknowledged within 1 h."]
    for person in (BOB, PARTNER_PAT, ALICE):
        assert len(dms_with(h, person, "#1 was not acknowledged within 1 h")) == 1
    assert dms_with(h, DAN, "not acknowledged") == []
    assert ":rotating_light:" in flatten(card(h, cid))  # the card shows it late

    # Someone deletes the card: the next change posts it again.
    h.fake.delete(cid, card(h, cid)["ts"])
    # Twice the target, still not acknowledged: level 2, the sponsors (Dan) and a note in the thread.
    clock.set(start + timedelta(hours=2))
    h.tick()
    [escalation] = dms_with(h, DAN, "Escalation in *Acme*")
    assert "#1 was not acknowledged within 1 h, and it is still not after 2 h" in escalation
    assert len(cards(h, cid)) == 1  # posted again
    clock.advance(seconds=15)  # the note that went to the deleted card's thread is retried in the new one's
    h.tick()
    assert thread(h, cid) == [f":sos: #1 was escalated to <@{DAN}> (our sponsor) and <@{PARTNER_PAT}> (the partner's "
                              "contact)."]

    # Nothing fires twice, however often the scheduler runs.
    clock.set(start + timedelta(hours=3))
    h.tick()
    h.tick()
    assert len(dms_with(h, DAN, "Escalation")) == 1
    assert len(dms_with(h, BOB, "to acknowledge it")) == 1
    assert len(dms_with(h, ALICE, "was not acknowledged")) == 1

    # Acknowledged: the acknowledge ladder is over; the resolve clock (1 day) still runs. The channel is archived:
    # the card and thread cannot change any more, but the direct messages of the ladder still go out.
    click(h, BOB, card(h, cid), "Acknowledge", cid)
    h.tick()
    h.fake.channels[cid].is_archived = True
    clock.set(start + timedelta(hours=24))
    h.tick()
    for person in (BOB, PARTNER_PAT, ALICE):
        assert len(dms_with(h, person, "#1 was not resolved within 1 day")) == 1
    clock.set(start + timedelta(hours=48))
    h.tick()
    assert len(dms_with(h, DAN, "was not resolved within 1 day, and it is still not after 2 days")) == 1
    assert len(dms_with(h, DAN, "Escalation")) == 2


def test_lists_figures_sla_form_and_bad_input(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    assert "issue <title>" in h.command("help").text and "issues stats" in h.command("help").text
    h.command("issue Low thing", channel=cid, user=BOB)
    h.command("issue", channel=cid, user=BOB)
    assert not submit(h, BOB, issue_values(title="Urgent thing", severity="critical", ours=BOB, partner=None))
    h.tick()
    listed = h.command("issues critical", channel=cid, user=CAROL).text
    assert "Urgent thing" in listed and "Low thing" not in listed and "acknowledge: 1 h left" in listed
    assert "Urgent thing" in h.command("issues mine", channel=cid, user=BOB).text
    assert "has no mine issues" in h.command("issues mine", channel=cid, user=CAROL).text
    assert "is not a list" in h.command("issues everything", channel=cid).text
    # Unknown numbers, and numbers of another partnership, are refused.
    assert "has no issue #9" in h.command("issue 9", channel=cid).text
    h.command("new Globex")
    other = str(h.channel("partner-globex").id)
    assert "has no issue #2" in h.command("issue 2", channel=other).text
    h.command("issue", channel=cid, user=BOB)
    assert "Give the issue a title" in submit(h, BOB, issue_values(title="   "))["errors"]["issue_title"]
    assert "the limit is 150" in h.command("issue " + "y" * 151, channel=cid).text

    # The figures.
    click(h, BOB, card(h, cid, 2), "Acknowledge", cid)
    stats = h.command("issues stats", channel=cid, user=PARTNER_PAT).text
    assert "Last 30 days* (2 issues logged" in stats and "Last 90 days* (2 issues logged" in stats
    assert "critical 1, high 0, normal 1, low 0" in stats and "acknowledged 100 %" in stats
    assert "Now* (2 issues in all, 2 not resolved)" in stats and "By status: open 1, acknowledged 1" in stats
    # Three days on, nobody has acknowledged "Low thing" (normal: within 1 day): missed, not left out.
    clock.advance(days=3)
    stats = h.command("issues stats", channel=cid, user=PARTNER_PAT).text
    assert "acknowledged 50 %" in stats
    # A hundred days on, both are outside the windows but still there, as they stand.
    clock.advance(days=97)
    stats = h.command("issues stats", channel=cid, user=PARTNER_PAT).text
    assert "Last 30 days* (0 issues logged" in stats and "Last 90 days* (0 issues logged" in stats
    assert "Now* (2 issues in all, 2 not resolved)" in stats
    assert "Not resolved, by severity: critical 1, high 0, normal 1, low 0" in stats

    # The SLA targets: anyone sees them; an owner gets the form (a bad duration is refused under its input).
    shown = h.command("issue sla", channel=cid, user=BOB).text
    assert "critical*: acknowledge within 1 h, resolve within 1 day" in shown and "Owners of the partnership" in shown
    assert [v for v in h.fake.open_views(BOB) if v["view"]["callback_id"] == "issue_sla_form"] == []
    h.command("issue sla", channel=cid, user=ALICE)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "issue_sla_form"
    values = {b["block_id"]: {b["block_id"]: {"type": "plain_text_input", "value": b["element"].get("initial_value")}}
              for b in form["blocks"] if b["type"] == "input" and b["element"]["type"] == "plain_text_input"}
    values["sla_ack_critical"]["sla_ack_critical"]["value"] = "soon"
    _, ack = h.sender.submit_view(form, values, user_id=ALICE)
    assert "90m" in ack["errors"]["sla_ack_critical"]
    values["sla_ack_critical"]["sla_ack_critical"]["value"] = "30m"
    business = {"type": "checkboxes", "selected_options": [{"value": "yes"}]}
    values["sla_business_hours"] = {"sla_business_hours": business}
    _, ack = h.sender.submit_view(form, values, user_id=ALICE)
    h.wait()
    assert not ack
    shown = h.command("issue sla", channel=cid, user=BOB).text
    assert "acknowledge within 30 min" in shown and "business hours only (Mon" in shown


def test_log_as_issue_from_a_check_in_summary(hc: Harness, clock: FrozenClock) -> None:
    from tests.e2e.test_checkins import answer_values, click_answer, prompt_message, setup_values

    h = hc
    cid = setup_partnership(h)
    h.command("checkin setup", channel=cid)
    assert not submit(h, ALICE, setup_values())
    h.command("checkin now", channel=cid, user=BOB)
    h.tick()
    view = click_answer(h, BOB, prompt_message(h, cid), cid)
    h.sender.submit_view(view, answer_values("pilot live", "Legal review stuck\nsince Tuesday", ""), user_id=BOB)
    h.wait()
    clock.advance(hours=5)
    h.tick()
    summary = prompt_message(h, cid)
    [button] = [b["accessory"] for b in summary["blocks"] if b.get("accessory", {}).get("text", {}).get("text")
                == "Log as issue"]
    h.sender.block_action(button["action_id"], button["value"], user_id=CAROL, channel_id=cid, message=summary)
    h.wait()
    form = h.fake.open_views(CAROL)[-1]["view"]
    fields = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"] if b["type"] == "input"}
    assert fields["issue_title"] == "Legal review stuck"
    assert fields["issue_description"] == "Any blockers?\nLegal review stuck\nsince Tuesday"
    assert not submit(h, CAROL, issue_values(title=fields["issue_title"], description=fields["issue_description"],
                                             ours=None, partner=None, severity="normal"))
    clock.advance(seconds=5)
    h.tick()
    shown = flatten(card(h, cid))
    assert "#1 Legal review stuck" in shown and f"reported by <@{BOB}>" in shown


# -- the review's fixes ------------------------------------------------------------------------------------------------
def test_a_title_notifies_nobody_through_the_form_or_the_shortcut(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    # The form stores the title as typed: the card's text (Slack's notification text) shows it escaped.
    h.command("issue", channel=cid, user=CAROL)
    assert not submit(h, CAROL, issue_values(title=f"<!channel> pay <@{ALICE}>", ours=None, partner=None))
    # The message shortcut's form, its title changed by hand.
    said = h.fake.say(cid, CAROL, "Shipment stuck")
    h.sender.message_shortcut("log_issue", said, user_id=CAROL, channel_id=cid)
    h.wait()
    assert not submit(h, CAROL, issue_values(title="<!here> shipment stuck", ours=None, partner=None))
    clock.advance(seconds=5)
    h.tick()
    first, second = card(h, cid, 1), card(h, cid, 2)
    assert first["text"] == f"Issue #1: &lt;!channel&gt; pay &lt;@{ALICE}&gt; (high, open)"
    assert second["text"] == "Issue #2: &lt;!here&gt; shipment stuck (high, open)"
    # After a change the card is updated with the same text; the private view and the list say it escaped too.
    click(h, ALICE, first, "Acknowledge", cid)
    clock.advance(seconds=5)
    h.tick()
    assert card(h, cid, 1)["text"] == f"Issue #1: &lt;!channel&gt; pay &lt;@{ALICE}&gt; (high, acknowledged)"
    for said_text in (h.command("issue 1", channel=cid, user=BOB).text, h.command("issues", channel=cid).text):
        assert "<!channel>" not in said_text and "pay <@" not in said_text
        assert f"&lt;!channel&gt; pay &lt;@{ALICE}&gt;" in said_text


def test_a_due_date_in_the_past_is_refused_under_its_field(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    clock.set(berlin(2026, 3, 2, 0, 30))  # Monday 00:30 in Berlin, still Sunday 1 March in UTC
    h.command("issue", channel=cid, user=CAROL)
    ack = submit(h, CAROL, issue_values(title="Renewal papers", due="2026-03-01"))
    assert ack["response_action"] == "errors"
    assert "Sun 1 Mar 2026 has passed (today is Mon 2 Mar 2026 in Europe/Berlin)" in ack["errors"]["issue_due"]
    h.tick()
    assert cards(h, cid) == [] and h.fake.dm_messages(BOB) == []  # nothing logged, nobody told it is overdue
    # The form stays open with what was typed; today is fine.
    assert not submit(h, CAROL, issue_values(title="Renewal papers", due="2026-03-02"))
    clock.advance(seconds=5)
    h.tick()
    assert "Due:* Mon 2 Mar 2026" in flatten(card(h, cid))


def test_an_escalate_form_sent_twice_escalates_once(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f"add <@{DAN}|dan> sponsor", channel=cid)
    h.command("issue Partner portal down", channel=cid, user=CAROL)
    h.tick()
    click(h, BOB, card(h, cid), "Escalate", cid)
    form = h.fake.open_views(BOB)[-1]["view"]
    for _ in range(2):  # a double click, or Slack sending the submission again
        _, ack = h.sender.submit_view(form, text_value("issue_note", "Demo tomorrow"), user_id=BOB)
        h.wait()
        assert not ack
    clock.advance(seconds=5)
    h.tick()
    assert len(dms_with(h, DAN, "Escalation in *Acme*")) == 1
    assert [line for line in thread(h, cid) if "escalated" in line] == [
        f"<@{BOB}> escalated #1 to <@{DAN}> (our sponsor) and <@{PARTNER_PAT}> (the partner's contact): Demo tomorrow"]
    # Another form is another escalation.
    click(h, CAROL, card(h, cid), "Escalate", cid)
    assert not submit(h, CAROL, text_value("issue_note", ""))
    h.tick()
    assert len(dms_with(h, DAN, "Escalation in *Acme*")) == 2


def test_a_list_over_the_block_limit_asks_slack_only_for_the_links_it_shows(hc: Harness, clock: FrozenClock) -> None:
    from services.inputs import IssueInput, validate

    h = hc
    cid = setup_partnership(h)
    p = h.bot.services.partnerships.by_channel(cid)
    assert p is not None
    for n in range(60):
        h.bot.services.issues.log(partnership_id=p.partnership.id or 0, actor=BOB, creation_key=f"list:{n}",
                                  inp=validate(IssueInput, title=f"Issue number {n + 1}"))
    h.tick()
    assert len(cards(h, cid)) == 60
    before = h.fake.call_count("chat.getPermalink")
    said = h.command("issues", channel=cid, user=CAROL)
    [listing] = [m for m in said.messages if m.get("blocks")]
    assert len(listing["blocks"]) == 50
    assert "Issues of Acme* (open, 60)" in said.text and "…and 12 more" in said.text
    assert "*#48*" in said.text and "*#49*" not in said.text
    assert h.fake.call_count("chat.getPermalink") - before == 48  # one link per issue shown, not per issue found


def sla_form(h: Harness, cid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice opens the SLA form: the form, and its text inputs' values as they open (to submit, changed)."""
    h.command("issue sla", channel=cid, user=ALICE)
    form = h.fake.open_views(ALICE)[-1]["view"]
    values = {b["block_id"]: {b["block_id"]: {"type": "plain_text_input", "value": b["element"].get("initial_value")}}
              for b in form["blocks"] if b["type"] == "input" and b["element"]["type"] == "plain_text_input"}
    return form, values


BUSINESS_HOURS = {"sla_business_hours": {"sla_business_hours": {"type": "checkboxes",
                                                                "selected_options": [{"value": "yes"}]}}}


def test_business_hours_count_a_day_of_the_targets_as_a_working_day(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    form, values = sla_form(h, cid)
    assert "a day is one working day" in flatten(form)
    assert values["sla_resolve_critical"]["sla_resolve_critical"]["value"] == "1 day"
    _, ack = h.sender.submit_view(form, values | BUSINESS_HOURS, user_id=ALICE)
    h.wait()
    assert not ack
    said = h.fake.responses(h.sender.last_response_url)
    assert "critical*: acknowledge within 1 h, resolve within 1 day" in flatten(said)
    shown = h.command("issue sla", channel=cid, user=BOB).text
    assert "resolve within 1 day" in shown and "a working day (8 h)" in shown
    # Monday 10:00, critical: one working day to resolve, so by Monday 16:00 two hours are left (not 18).
    h.command("issue", channel=cid, user=CAROL)
    assert not submit(h, CAROL, issue_values(title="Payments down", severity="critical"))
    clock.set(berlin(2026, 3, 2, 16, 0))
    shown = h.command("issue 1", channel=cid, user=BOB).text
    assert "Resolve by" in shown and "· 2 h left" in shown
    # On Tuesday at 12:00 it has used 7 + 3 working hours of its 8: two hours late.
    clock.set(berlin(2026, 3, 3, 12, 0))
    assert "2 h late" in h.command("issue 1", channel=cid, user=BOB).text


def test_changed_sla_hours_move_the_due_times_on_unresolved_cards(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    clock.set(berlin(2026, 3, 2, 20, 0))  # Monday evening: normal issues, every hour counting
    for title in ("Invoices rejected", "Exports slow", "Typo on the portal"):
        h.command(f"issue {title}", channel=cid, user=CAROL)
    h.tick()
    click(h, ALICE, card(h, cid, 3), "Resolve", cid)
    assert not submit(h, ALICE, text_value("issue_note", "Fixed"))
    clock.advance(seconds=5)
    h.tick()
    resolved = flatten(card(h, cid, 3))
    for number in (1, 2):  # acknowledge within 1 day, resolve within 7: Tuesday and next Monday at 20:00
        shown = flatten(card(h, cid, number))
        assert "Acknowledge by* <!date^" in shown and "2026-03-03 19:00 UTC>" in shown
        assert "2026-03-09 19:00 UTC>" in shown
    # At 20:00:05 Alice has the clocks count business hours only (Monday to Friday, 9 to 17). The 5 s used stay
    # used; what is left counts in working hours from now on.
    form, values = sla_form(h, cid)
    _, ack = h.sender.submit_view(form, values | BUSINESS_HOURS, user_id=ALICE)
    h.wait()
    assert not ack
    h.tick()
    for number in (1, 2):
        shown = flatten(card(h, cid, number))
        assert "2026-03-03 19:00 UTC>" not in shown and "2026-03-09 19:00 UTC>" not in shown
        # 23:59:55 h left to acknowledge: Tuesday 8, Wednesday 8, Thursday until 16:59:55 (15:59 UTC).
        assert "Acknowledge by* <!date^" in shown and "2026-03-05 15:59 UTC>" in shown
        # 168 h less 5 s to resolve: 21 working days, until Tuesday 31 March 16:59:55 (summer time: 14:59 UTC).
        assert "Resolve by* <!date^" in shown and "2026-03-31 14:59 UTC>" in shown
    assert flatten(card(h, cid, 3)) == resolved  # a resolved issue's card has nothing to move
    assert len(cards(h, cid)) == 3  # updated in place


def test_the_shortcut_keeps_mentions_readable_and_says_when_it_cut_the_message(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    text = (f"<@{PARTNER_PAT}> says the export fails\nAsk <@{BOB}> and <@UNOBODY> in <#C0GENERAL|general> about "
            "<https://runbook.test/x|the runbook> or <https://bare.test/y> &amp; <!here>, "
            "<!subteam^S0SUPPORT|@support> since <!date^1772442000^{date_short}|Mar 2>\n" + "x" * 3100 + " END")
    said = h.fake.say(cid, CAROL, text)
    h.sender.message_shortcut("log_issue", said, user_id=CAROL, channel_id=cid)
    h.wait()
    form = h.fake.open_views(CAROL)[-1]["view"]
    inputs = {b["block_id"]: b for b in form["blocks"] if b["type"] == "input"}
    assert inputs["issue_title"]["element"]["initial_value"] == "@pat says the export fails"
    description = inputs["issue_description"]["element"]["initial_value"]
    assert ("Ask @bob and @UNOBODY in #general about the runbook (https://runbook.test/x) or https://bare.test/y "
            "& @here, @support since Mar 2\nxxx" in description)  # a person Slack does not know keeps their id
    assert len(description) == 3000 and description.endswith("…") and "END" not in description
    hint = inputs["issue_description"]["hint"]["text"]
    assert "3,2" in hint and "characters long: only its start fits here" in hint
    assert "the issue keeps the link to the whole message" in hint
    # Logged as it stands: the card shows the readable text (escaped) and links to the whole message.
    assert not submit(h, CAROL, issue_values(title="@pat says the export fails", description=description, ours=None,
                                             partner=None, severity="normal"))
    clock.advance(seconds=5)
    h.tick()
    shown = card(h, cid)
    assert "Ask @bob and @UNOBODY in #general" in flatten(shown) and "&amp; @here" in flatten(shown)
    assert f"https://fake.slack.test/archives/{cid}/p{said['ts'].replace('.', '')}" in flatten(shown)
    assert "<!here>" not in str(shown["blocks"]) and "<!subteam" not in str(shown["blocks"])
    assert "@support since Mar 2" in flatten(shown)
    # "@here" and "@support" stay text: the bot never asks Slack to turn names into mentions.
    posts = [args for method, args in h.fake.calls if method in ("chat.postMessage", "chat.update")]
    assert posts and not any(args.get("link_names") or args.get("parse") == "full" for args in posts)


def shortcut_form(h: Harness, cid: str, text: str) -> dict[str, Any] | None:
    """Carol logs a message saying `text` with the shortcut: the form opened for it (None: none opened)."""
    opened = len(h.fake.open_views(CAROL))
    h.sender.message_shortcut("log_issue", h.fake.say(cid, CAROL, text), user_id=CAROL, channel_id=cid)
    h.wait()
    forms = h.fake.open_views(CAROL)[opened:]
    return forms[-1]["view"] if forms else None


def initial(form: dict[str, Any], block_id: str) -> str:
    return next(b["element"]["initial_value"] for b in form["blocks"] if b.get("block_id") == block_id)


def test_the_shortcut_opens_its_form_in_time_however_slow_slack_is_to_name_people(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    # Slack's 3 s for a trigger_id, scaled down to 1 s so that the test waits little: names get 0.6 s of it.
    h.fake.trigger_ttl = 1.0
    h.bot.services.issues.names_within = 0.6
    people = f"<@{PARTNER_PAT}>, <@{BOB}>, <@{ALICE}> and <@{DAN}>"
    # Each users.info takes 0.3 s: asked one after the other the four would take 1.2 s and the trigger would
    # expire; asked at once, all four are named in time.
    h.fake.slow("users.info", 0.3)
    form = shortcut_form(h, cid, f"{people} cannot export")
    assert form is not None and initial(form, "issue_title") == "@pat, @bob, @alice and @dan cannot export"
    # Slack slower than the names' share of the trigger's life: the form still opens, with the people's ids.
    h.fake.slow("users.info", 0.6)
    h.bot.services.issues.names_within = 0.2
    form = shortcut_form(h, cid, f"{people} still cannot export")
    assert form is not None
    assert initial(form, "issue_title") == f"@{PARTNER_PAT}, @{BOB}, @{ALICE} and @{DAN} still cannot export"
    h.fake.slow("users.info", 0)

    # A 429 on views.open is not retried after its Retry-After (the trigger would be dead by then): the person
    # is told at once to try again, and the next click opens the form.
    h.fake.fail("views.open", "ratelimited", status=429, headers={"Retry-After": "1"})
    before = h.fake.call_count("views.open")
    assert shortcut_form(h, cid, "Exports fail") is None
    assert h.fake.call_count("views.open") - before == 1
    assert "Slack is busy; try again in a minute." in flatten(h.fake.responses(h.sender.last_response_url))
    form = shortcut_form(h, cid, "Exports fail")
    assert form is not None and initial(form, "issue_title") == "Exports fail"


def lines_out(h: Harness, clock: FrozenClock, lines: int = 3) -> None:
    """Let the thread lines due now go out: a line due with earlier ones waits a second for each."""
    for _ in range(lines + 1):
        clock.advance(seconds=5)
        h.tick()


def as_opened(form: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What Slack sends for a form whose person changed only `changes` (block id -> the input's new state): every
    other input as the form opened it."""
    values: dict[str, Any] = {}
    for b in form["blocks"]:
        if b["type"] != "input":
            continue
        e, block = b["element"], b["block_id"]
        state = {"plain_text_input": {"value": e.get("initial_value")},
                 "static_select": {"selected_option": e.get("initial_option")},
                 "datepicker": {"selected_date": e.get("initial_date")},
                 "checkboxes": {"selected_options": e.get("initial_options", [])}}.get(e["type"], {})
        values[block] = {block: {"type": e["type"], **state, **changes.get(block, {})}}
    return values


def test_edit_an_issue_from_its_card_with_refusals_and_a_bad_title(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("issue Partner API returns 500", channel=cid, user=CAROL)  # Carol reports it: normal, 1 day
    h.tick()
    # Bob is in the partnership but neither owns the issue nor reported it: the form does not open.
    told = click(h, BOB, card(h, cid), "Edit", cid)
    assert (f"Only the owners of issue #1 (it has none yet), its reporter (<@{CAROL}>) and the owners of *Acme* "
            "can edit it") in told
    assert [v for v in h.fake.open_views(BOB) if v["view"]["callback_id"] == "issue_edit_form"] == []

    # The reporter opens it, prefilled; a bad title is refused under its input, and nothing changes.
    click(h, CAROL, card(h, cid), "Edit", cid)
    form = h.fake.open_views(CAROL)[-1]["view"]
    assert form["callback_id"] == "issue_edit_form"
    inputs = {b["block_id"]: b["element"] for b in form["blocks"] if b["type"] == "input"}
    assert inputs["issue_title"]["initial_value"] == "Partner API returns 500"
    assert inputs["issue_severity"]["initial_option"]["value"] == "normal"
    assert "initial_date" not in inputs["issue_due"] and "issue_due_clear" not in inputs  # no due date yet
    _, ack = h.sender.submit_view(form, as_opened(form, issue_title={"value": "   "}), user_id=CAROL)
    assert ack["response_action"] == "errors" and "Give the issue a title" in ack["errors"]["issue_title"]
    _, ack = h.sender.submit_view(form, as_opened(form, issue_due={"selected_date": "2026-03-01"}), user_id=CAROL)
    assert "Sun 1 Mar 2026 has passed" in ack["errors"]["issue_due"]
    h.wait()
    assert "normal" in flatten(card(h, cid)) and thread(h, cid) == []

    # An hour later she raises the severity and sets a due date: the card shows the new target, the thread says it.
    clock.advance(hours=1)
    changed = as_opened(form, issue_severity={"selected_option": {"value": "high"}},
                        issue_due={"selected_date": "2026-03-06"},
                        issue_title={"value": "Partner API returns 500 <!channel>"})
    _, ack = h.sender.submit_view(form, changed, user_id=CAROL)
    h.wait()
    assert not ack
    told = flatten(h.fake.responses(json.loads(form["private_metadata"])["response_url"]))
    assert "Changed issue #1 *Partner API returns 500 &lt;!channel&gt;*: title" in told
    clock.advance(seconds=5)
    h.tick()
    c = card(h, cid)
    shown = flatten(c)
    assert "high" in shown and "Due:* Fri 6 Mar 2026" in shown and "<!channel>" not in shown
    assert "3 h left" in shown  # high: acknowledge within 4 h, one of which is used
    assert thread(h, cid) == [f"<@{CAROL}> changed #1: title “Partner API returns 500” → “Partner API returns 500 "
                              "&lt;!channel&gt;”, severity normal → high, due date Fri 6 Mar 2026"]
    # The same form sent again changes nothing and says nothing more.
    _, ack = h.sender.submit_view(form, changed, user_id=CAROL)
    h.wait()
    h.tick()
    assert len(thread(h, cid)) == 1

    # Bob becomes an owner of the issue and opens the form; Alice hands the issue to Pat before he sends it: his
    # submission is refused under the form. Pat removes the due date with the box under it.
    click(h, ALICE, card(h, cid), "Assign", cid)
    owners = {"issue_owner_ours": {"issue_owner_ours": {"type": "users_select", "selected_user": BOB}},
              "issue_owner_partner": {"issue_owner_partner": {"type": "users_select", "selected_user": None}}}
    assert not submit(h, ALICE, owners)
    click(h, BOB, card(h, cid), "Edit", cid)
    bobs = h.fake.open_views(BOB)[-1]["view"]
    click(h, ALICE, card(h, cid), "Assign", cid)
    owners["issue_owner_ours"]["issue_owner_ours"]["selected_user"] = None
    owners["issue_owner_partner"]["issue_owner_partner"]["selected_user"] = PARTNER_PAT
    assert not submit(h, ALICE, owners)
    _, ack = h.sender.submit_view(bobs, as_opened(bobs, issue_severity={"selected_option": {"value": "low"}}),
                                  user_id=BOB)
    assert ack["response_action"] == "errors" and "can edit it" in ack["errors"]["issue_title"]
    lines_out(h, clock)  # the assignments' notes are in the thread
    click(h, PARTNER_PAT, card(h, cid), "Edit", cid)
    pats = h.fake.open_views(PARTNER_PAT)[-1]["view"]
    assert [b["block_id"] for b in pats["blocks"] if b["type"] == "input"][-1] == "issue_due_clear"
    clear = {"selected_options": [{"value": "clear"}]}
    assert not h.sender.submit_view(pats, as_opened(pats, issue_due_clear=clear), user_id=PARTNER_PAT)[1]
    h.wait()
    lines_out(h, clock)
    assert "Due:" not in flatten(card(h, cid)) and "high" in flatten(card(h, cid))
    assert thread(h, cid)[-1] == f"<@{PARTNER_PAT}> changed #1: due date removed (was Fri 6 Mar 2026)"
    detail = h.command("issue 1", channel=cid, user=BOB).text
    assert "edited: due date removed (was Fri 6 Mar 2026)" in detail


def test_a_resolution_or_escalation_refused_on_submission_keeps_the_form_and_its_text(
    hc: Harness, clock: FrozenClock,
) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("issue Invoices rejected", channel=cid, user=CAROL)
    h.tick()
    # Alice and Carol (its reporter, a member) open the forms; someone else resolves the issue before they send them.
    click(h, ALICE, card(h, cid), "Resolve", cid)
    alices = h.fake.open_views(ALICE)[-1]["view"]
    click(h, CAROL, card(h, cid), "Escalate", cid)
    carols = h.fake.open_views(CAROL)[-1]["view"]
    click(h, ALICE, card(h, cid), "Resolve", cid)
    assert not submit(h, ALICE, text_value("issue_note", "Fixed by the partner"))
    note = "Long explanation of what we changed in the mapping table, and why " * 10
    _, ack = h.sender.submit_view(alices, text_value("issue_note", note), user_id=ALICE)
    assert ack is not None and ack["response_action"] == "errors"  # the form stays open with what she typed
    assert "already resolved" in ack["errors"]["issue_note"]
    _, ack = h.sender.submit_view(carols, text_value("issue_note", "The customer is furious"), user_id=CAROL)
    assert ack["response_action"] == "errors" and "already resolved" in ack["errors"]["issue_note"]
    h.wait()
    h.tick()
    assert thread(h, cid) == [f"<@{ALICE}> resolved #1: Fixed by the partner"]


def test_a_command_with_a_title_over_the_limit_gives_back_what_was_typed(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    typed = "The partner's API returns 500 for every invoice since the deploy on Friday <!channel> " * 2
    told = h.command(f"issue {typed}", channel=cid, user=CAROL).text
    assert "the limit is 150" in told and "`/partner issue` alone opens a form" in told
    assert "The partner's API returns 500 for every invoice since the deploy on Friday @channel" in told
    assert "<!channel>" not in told
    h.tick()
    assert cards(h, cid) == []
