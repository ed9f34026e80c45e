"""A poll's CSV export through the service, against the fake Slack: who may export, what each row holds,
and what an anonymous poll's file leaves out (voters always; sides while per-side results are hidden)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot import build
from models import Poll
from services.errors import Forbidden, Invalid
from tests.conftest import make_settings, migrated_sqlite_url
from tests.fakes import FakeSlack
from tests.services.test_polls import PARTNERS, START, acme, create, vote
from tests.support.clock import FrozenClock
from tests.support.stack import ALICE, BOB, CAROL, DAN, Stack, new_fake


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeSlack]:
    fake = new_fake(FrozenClock(START))
    for user in PARTNERS:
        fake.add_user(user, user.lower(), email=f"{user.lower()}@partner.com", team_id="T0PARTNER")
    yield fake
    fake.stop()


@pytest.fixture
def st(shared_fake: FakeSlack, tmp_path: Path) -> Iterator[Stack]:
    clock = FrozenClock(START)
    shared_fake.clock = clock.epoch
    bot = build(make_settings(slack_api_url=shared_fake.base_url, database_url=migrated_sqlite_url(tmp_path / 'pb.db'),
                              default_timezone="Europe/Berlin"), clock=clock)
    yield Stack(shared_fake, clock, bot)
    bot.close()


def exported(st: Stack, user: str) -> tuple[str, list[dict[str, str]]]:
    """The newest file in the person's direct message with the app: its raw text and its rows."""
    files = [f for m in st.fake.dm_messages(user) for f in m.get("files") or []]
    assert files, f"no file in {user}'s direct message"
    upload = st.fake.files[files[-1]["id"]]
    text = upload["content"].decode("utf-8-sig")
    return text, list(csv.DictReader(io.StringIO(text)))


def export(st: Stack, poll: Poll, actor: str) -> str:
    return st.services.polls.export(actor=actor, poll_id=poll.id).text()


def test_one_row_per_pick_with_time_answer_side_and_voter(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="multiple", options=["=SUM(A1)", "@here", "API"], actor=BOB)
    vote(st, poll, CAROL, 0)
    st.clock.advance(minutes=5)
    vote(st, poll, CAROL, 2)
    vote(st, poll, ALICE, 1)
    with pytest.raises(Forbidden, match="can export it"):
        export(st, poll, CAROL)
    assert "direct message" in export(st, poll, BOB)
    _, rows = exported(st, BOB)
    assert [(r["answer"], r["voter_id"], r["voter_name"], r["side"]) for r in rows] == [
        ("'=SUM(A1)", CAROL, "carol", "ours"), ("API", CAROL, "carol", "ours"), ("'@here", ALICE, "alice", "ours")]
    assert rows[0]["answered_at_utc"] == START.isoformat()
    assert rows[1]["answered_at_utc"] == (START + timedelta(minutes=5)).isoformat()
    assert {r["poll"] for r in rows} == {"1"} and rows[0]["question"] == "Which day?"
    [message] = [m for m in st.fake.dm_messages(BOB) if m.get("files")]
    assert message["files"][0]["name"] == "poll-1-which-day.csv"
    export(st, poll, ALICE)  # an owner
    assert exported(st, ALICE)[1] == rows


def test_a_changed_vote_has_the_time_of_the_change(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="rating", options=[])
    vote(st, poll, BOB, 2)
    st.clock.advance(hours=1)
    vote(st, poll, BOB, 5)
    export(st, poll, ALICE)
    [row] = exported(st, ALICE)[1]
    assert row["answer"] == "5" and row["answered_at_utc"] == (START + timedelta(hours=1)).isoformat()


def test_an_anonymous_export_holds_no_user_id_nor_name_and_hides_thin_sides(st: Stack) -> None:
    p = acme(st, partners=1)
    poll = create(st, p, anonymous=True, kind="text", options=[])
    st.services.polls.answer(poll_id=poll.id or 0, user_id=BOB, text="+1 for weekly calls")
    with pytest.raises(Invalid, match="once 3 people have answered"):
        export(st, poll, ALICE)
    for user, text in ((CAROL, "More docs please"), (PARTNERS[0], "-fine")):
        st.clock.advance(minutes=7)
        st.services.polls.answer(poll_id=poll.id or 0, user_id=user, text=text)
    export(st, poll, ALICE)
    text, rows = exported(st, ALICE)
    people = [ALICE, BOB, CAROL, DAN, *PARTNERS]
    assert not [u for u in people if u in text or u.lower() in text]
    # The day of each answer, not its time, and the rows by answer, not in the order people answered: someone who
    # knows when Carol voted cannot pick out her answer.
    assert list(rows[0]) == ["poll", "question", "answered_on_utc", "answer", "side"]
    assert [r["answer"] for r in rows] == ["'+1 for weekly calls", "'-fine", "More docs please"]
    assert {r["answered_on_utc"] for r in rows} == {START.date().isoformat()}
    assert START.strftime("%H:%M") not in text
    # One person on the partner's side: a side would say what they answered, as per-side results would.
    assert {r["side"] for r in rows} == {""}


def test_an_anonymous_export_gives_no_day_that_fewer_than_three_people_answered_on(st: Stack) -> None:
    p = acme(st, partners=1)
    poll = create(st, p, anonymous=True)
    for user in (ALICE, BOB, CAROL):
        vote(st, poll, user, 0)
    st.clock.advance(days=1)
    vote(st, poll, PARTNERS[0], 2)  # the only answer of the second day
    export(st, poll, ALICE)
    _, rows = exported(st, ALICE)
    # Whoever knows who answered on Tuesday would read that person's answer off the one row of that day.
    assert sorted(r["answer"] for r in rows) == ["Mon", "Mon", "Mon", "Wed"]
    assert {r["answered_on_utc"] for r in rows} == {""}


def test_results_shown_only_after_the_close_are_exported_only_then(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, results="after_close")
    vote(st, poll, BOB, 1)
    with pytest.raises(Invalid, match="once it closes"):
        export(st, poll, ALICE)
    st.services.polls.close_early(actor=ALICE, poll_id=poll.id)
    export(st, poll, ALICE)
    assert [r["answer"] for r in exported(st, ALICE)[1]] == ["Tue"]


def test_an_anonymous_export_shows_sides_once_each_side_has_enough(st: Stack) -> None:
    p = acme(st, partners=3)
    poll = create(st, p, anonymous=True)
    for user in (ALICE, BOB, CAROL, *PARTNERS):
        vote(st, poll, user, 0)
    export(st, poll, ALICE)
    text, rows = exported(st, ALICE)
    assert sorted(r["side"] for r in rows) == ["ours"] * 3 + ["partner"] * 3
    assert not [u for u in (ALICE, BOB, CAROL, *PARTNERS) if u in text]
