"""Polls with a frozen clock against one fake Slack per module: the tally maths of every kind, votes that
change, toggle and hit the limit, anonymity down to the vote table's columns, per-side thresholds, the
reminder and close times, coalesced live updates, and closing late or without a message."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot import build
from models import Member, Partnership, Poll, PollVote
from models.partnership import Role, Side
from models.poll import PollAudience, PollKind, PollStatus, count, tally
from services.errors import Forbidden, Invalid
from services.inputs import PollSpec, check_poll, parse_closes, parse_quick_poll
from services.polls import Recorded, remind_time
from tests.conftest import make_settings, migrated_sqlite_url
from tests.e2e.conftest import flatten
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock
from tests.support.stack import ALICE, BOB, CAROL, DAN, PAT, Stack, new_fake

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
PARTNERS = ["UPART1", "UPART2", "UPART3"]
KEYS = itertools.count()


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeSlack]:
    clock = FrozenClock(START)
    fake = new_fake(clock)
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


def spec(**kw: Any) -> PollSpec:
    values: dict[str, Any] = dict(question="Which day?", kind="single", options=["Mon", "Tue", "Wed"],
                                  now=START, zone="Europe/Berlin")
    values.update(kw)
    return check_poll(**values)


def acme(st: Stack, *, partners: int = 0) -> Partnership:
    """Acme: Alice (owner), Bob and Carol on our side, and `partners` people on the partner's side."""
    p = st.partnership(members=[BOB, CAROL])
    with st.services.uow() as s:
        for user in PARTNERS[:partners]:
            s.add(Member(partnership_id=p.id, user_id=user, role=Role.PARTNER_CONTACT, side=Side.PARTNER,
                         added_by=ALICE))
    return p


def create(st: Stack, p: Partnership, **kw: Any) -> Poll:
    assert p.id is not None
    st.services.polls.create(partnership_id=p.id, actor=kw.pop("actor", ALICE), spec=spec(**kw),
                             creation_key=f"t:{next(KEYS)}")
    st.tick()
    with st.services.uow() as s:
        return s.exec(select(Poll).where(Poll.partnership_id == p.id).order_by(Poll.id.desc())).first()  # type: ignore[union-attr]


def message(st: Stack, poll: Poll) -> dict[str, Any]:
    assert poll.message_ts
    return st.fake.message(poll.channel_id, poll.message_ts)


def vote(st: Stack, poll: Poll, user: str, option: int) -> Recorded:
    assert poll.id is not None
    return st.services.polls.vote(poll_id=poll.id, user_id=user, option=option)


def reload(st: Stack, poll: Poll) -> Poll:
    with st.services.uow() as s:
        row = s.get(Poll, poll.id)
        assert row is not None
        return row


# -- the maths ------------------------------------------------------------------------------------------------
def votes(*options: int, side: Side = Side.OURS) -> list[PollVote]:
    return [PollVote(poll_id=1, voter=f"v{i}", option=o, side=side) for i, o in enumerate(options)]


def test_choice_counts_percentages_and_multiple_picks() -> None:
    single = count(PollKind.SINGLE, ["A", "B", "C"], votes(0, 0, 1))
    assert single.respondents == 3 and single.counts == [2, 1, 0]
    assert [single.percent(i) for i in range(3)] == [67, 33, 0]
    picks = [PollVote(poll_id=1, voter="x", option=0), PollVote(poll_id=1, voter="x", option=1),
             PollVote(poll_id=1, voter="y", option=1)]
    multiple = count(PollKind.MULTIPLE, ["A", "B"], picks)
    assert multiple.respondents == 2 and multiple.counts == [1, 2] and multiple.percent(1) == 100


def test_rating_average_and_distribution() -> None:
    rating = count(PollKind.RATING, [], votes(5, 4, 4, 1))
    assert rating.counts == [1, 0, 0, 2, 1] and rating.average == 3.5 and rating.labels == ["1", "2", "3", "4", "5"]
    assert count(PollKind.RATING, [], []).average is None


def test_nps_is_percent_promoters_minus_percent_detractors() -> None:
    nps = count(PollKind.NPS, [], votes(10, 9, 8, 7, 6, 0, 10, 10))
    assert (nps.promoters, nps.detractors, nps.respondents) == (4, 2, 8)
    assert nps.nps == 25  # 50% - 25%
    assert count(PollKind.NPS, [], votes(0, 1)).nps == -100
    assert count(PollKind.NPS, [], votes(7, 8)).nps == 0
    assert count(PollKind.NPS, [], []).nps is None


def test_open_text_keeps_the_answers_and_their_authors_when_not_anonymous() -> None:
    answers = [PollVote(poll_id=1, voter="a", option=0, text="faster API", user_id=BOB),
               PollVote(poll_id=1, voter="b", option=0, text="docs")]
    counted = count(PollKind.TEXT, [], answers)
    assert counted.answers == ["faster API", "docs"] and counted.authors == [BOB, None]


def test_per_side_results_need_enough_respondents_on_each_side() -> None:
    both = votes(0, 0, 1) + [PollVote(poll_id=1, voter=f"p{i}", option=1, side=Side.PARTNER) for i in range(2)]
    res = tally(PollKind.SINGLE, ["A", "B"], both, spans_sides=True, min_per_side=3)
    assert res.by_side == {} and "at least 3 respondents" in (res.side_note or "")
    res = tally(PollKind.SINGLE, ["A", "B"], both, spans_sides=True, min_per_side=2)
    assert res.by_side[Side.OURS].counts == [2, 1] and res.by_side[Side.PARTNER].counts == [0, 2]
    assert res.total.counts == [2, 3]
    one_side = tally(PollKind.SINGLE, ["A", "B"], both, spans_sides=False, min_per_side=1)
    assert one_side.by_side == {} and one_side.side_note is None


# -- input ----------------------------------------------------------------------------------------------------
def test_quick_polls_read_straight_and_curly_quotes() -> None:
    quick = parse_quick_poll("\u201cWhich day\u2019s best?\u201d \u201cMon\u201d \u2018Tue\u2019 anonymous closes 3d")
    assert (quick.question, quick.options, quick.anonymous, quick.closes) == ("Which day\u2019s best?", ["Mon", "Tue"],
                                                                               True, "3d")
    assert parse_quick_poll('"Thoughts?" closes 2026-03-05 17:00').closes == "2026-03-05 17:00"
    assert parse_quick_poll('"Thoughts?" closes 3 days').closes == "3 days"
    with pytest.raises(Invalid, match="in quotes"):
        parse_quick_poll("Which day? Mon Tue")
    with pytest.raises(Invalid, match="not understood"):
        parse_quick_poll('"Which day?" "Mon" "Tue" sometimes')


def test_closing_times_durations_and_local_dates() -> None:
    assert parse_closes("2 hours", now=START, zone="Europe/Berlin") == START + timedelta(hours=2)
    assert parse_closes("3d", now=START, zone="Europe/Berlin") == START + timedelta(days=3)
    assert parse_closes("", now=START, zone="Europe/Berlin") == START + timedelta(days=2)
    assert parse_closes("2026-03-05 17:00", now=START, zone="Europe/Berlin") == datetime(2026, 3, 5, 16, 0,
                                                                                           tzinfo=UTC)
    with pytest.raises(ValueError, match="not a closing time"):
        parse_closes("soonish", now=START, zone="Europe/Berlin")


def test_refusals_name_the_field_and_the_limit() -> None:
    def fields(**kw: Any) -> dict[str, str]:
        with pytest.raises(Invalid) as exc:
            spec(**kw)
        return exc.value.fields

    assert "at least 2 options" in fields(options=["Only"])["options"]
    assert "the limit is 10" in fields(options=[f"O{i}" for i in range(11)])["options"]
    assert "twice" in fields(options=["Mon", "mon"])["options"]
    assert "the limit is 75" in fields(options=["x" * 76, "y"])["options"]
    assert "the limit is 300" in fields(question="q" * 301)["question"]
    assert "in the past" in fields(closes="2026-03-01 10:00")["closes"]
    assert "90 days" in fields(closes="100d")["closes"]
    assert "Choose at least one person" in fields(audience="chosen")["chosen"]
    assert "only" in fields(kind="rating", options=["A", "B"])["options"]
    assert spec(kind="multiple", max_picks="2").max_picks == 2
    assert spec(kind="multiple", max_picks="3").max_picks is None  # as many as there are options: no limit


def test_reminder_times() -> None:
    assert remind_time("half", START, START + timedelta(days=2)) == START + timedelta(days=1)
    assert remind_time("hour", START, START + timedelta(days=2)) == START + timedelta(days=2, hours=-1)
    assert remind_time("none", START, START + timedelta(days=2)) is None
    assert remind_time("half", START, START + timedelta(minutes=60)) is None  # closes within the hour


# -- voting ---------------------------------------------------------------------------------------------------
def test_single_choice_votes_change_and_a_repeat_changes_nothing(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)
    assert vote(st, poll, BOB, 0).changed
    again = vote(st, poll, BOB, 0)
    assert not again.changed and again.picks == [0]
    assert "already voted *Mon*" in st.services.polls.results_summary(again)
    moved = vote(st, poll, BOB, 2)
    assert moved.changed and moved.picks == [2] and "now *Wed*" in st.services.polls.results_summary(moved)
    with st.services.uow() as s:
        assert [(v.option, v.user_id) for v in s.exec(select(PollVote)).all()] == [(2, BOB)]


def test_multiple_choice_toggles_and_refuses_a_pick_beyond_the_limit(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="multiple", options=["A", "B", "C", "D"], max_picks="2")
    assert vote(st, poll, BOB, 0).picks == [0]
    assert vote(st, poll, BOB, 2).picks == [0, 2]
    with pytest.raises(Invalid, match="at most 2"):
        vote(st, poll, BOB, 3)
    assert vote(st, poll, BOB, 0).picks == [2]  # toggled off
    assert vote(st, poll, BOB, 3).picks == [2, 3]


def test_outsiders_and_closed_polls_are_refused(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, audience="ours")
    with pytest.raises(Forbidden, match="our side of"):
        vote(st, poll, DAN, 0)
    st.clock.advance(days=2)
    with pytest.raises(Invalid, match="closed"):
        vote(st, poll, BOB, 0)


def test_an_anonymous_vote_row_holds_no_user_id_in_any_column(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, anonymous=True)
    for user, option in ((ALICE, 0), (BOB, 1), (CAROL, 1)):
        assert "anonymous" in st.services.polls.results_summary(vote(st, poll, user, option))
    vote(st, poll, BOB, 2)  # a change is found by the hash alone
    people = {ALICE, BOB, CAROL}
    with st.services.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM pollvote")).mappings().all()
    assert len(rows) == 3
    for row in rows:
        for column, value in row.items():
            assert not any(u in str(value) for u in people), (column, value)
        assert row["user_id"] is None and len(row["voter"]) == 64
    # The hash depends on the key (a setting), so the database alone cannot tell who voted.
    assert st.services.polls.voter(poll.id or 0, BOB) in {r["voter"] for r in rows}


def test_the_live_tally_of_an_anonymous_poll_waits_for_three_respondents(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, anonymous=True)
    vote(st, poll, ALICE, 0)
    told = st.services.polls.results_summary(vote(st, poll, BOB, 1))
    assert "its tally shows once 3 people have answered (2 so far)" in told  # the voter hears how close it is
    st.clock.advance(seconds=1)
    st.tick()
    shown = flatten(message(st, reload(st, poll)))
    assert "2 answered" in shown and "tally shows once 3 people" in shown and "%" not in shown
    told = st.services.polls.results_summary(vote(st, poll, CAROL, 1))
    assert "its tally shows once 3 people have answered." in told and "so far" not in told
    st.clock.advance(seconds=1)
    st.tick()
    shown = flatten(message(st, poll))
    assert "67% (2)" in shown and "33% (1)" in shown


def test_per_side_results_show_when_both_sides_have_enough(st: Stack) -> None:
    p = acme(st, partners=3)
    poll = create(st, p)
    for user in (ALICE, BOB, CAROL, *PARTNERS[:2]):
        vote(st, poll, user, 0)
    st.clock.advance(seconds=1)
    st.tick()
    assert "each side has at least 3 respondents" in flatten(message(st, poll))
    vote(st, poll, PARTNERS[2], 1)
    st.clock.advance(seconds=1)
    st.tick()
    shown = flatten(message(st, poll))
    assert "Our side* (3 answered)" in shown and "Partner's side* (3 answered)" in shown


def test_live_updates_are_coalesced_to_about_one_a_second_and_show_the_last_state(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)
    updates = st.fake.call_count("chat.update")
    vote(st, poll, ALICE, 1)
    st.tick()  # within a second of the post: not yet
    assert st.fake.call_count("chat.update") == updates
    st.clock.advance(seconds=1)
    for user in (BOB, CAROL):
        vote(st, poll, user, 1)
    st.tick()  # one update for the three votes
    assert st.fake.call_count("chat.update") == updates + 1
    vote(st, poll, ALICE, 2)
    vote(st, poll, BOB, 2)
    st.tick()  # within the second: nothing more yet
    assert st.fake.call_count("chat.update") == updates + 1
    st.clock.advance(seconds=1)
    st.tick()
    assert st.fake.call_count("chat.update") == updates + 2
    shown = flatten(message(st, poll))
    assert "67% (2)  Wed" in shown and "33% (1)  Tue" in shown


def test_a_failed_update_is_retried_and_loses_no_vote(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)
    st.fake.fail("chat.update", "internal_error", times=1)
    vote(st, poll, BOB, 0)
    st.clock.advance(seconds=1)
    st.tick()  # the update fails
    assert "0 answered" in flatten(message(st, poll))
    st.clock.advance(seconds=5)
    st.tick()  # retried on its own: no later vote is needed to bring the message up to date
    shown = flatten(message(st, poll))
    assert "1 answered" in shown and "100% (1)  Mon" in shown


# -- scheduled work -------------------------------------------------------------------------------------------
def test_the_reminder_goes_halfway_to_who_has_not_answered_and_is_not_away(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)
    vote(st, poll, BOB, 0)
    st.services.checkins.set_away(user_id=CAROL, until_text="2026-03-10")
    before = {u: len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)}
    st.clock.set(START + timedelta(days=1) - timedelta(minutes=1))
    st.tick()
    assert {u: len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)} == before
    st.clock.set(START + timedelta(days=1))
    st.tick()
    assert len(st.fake.dm_messages(ALICE)) == before[ALICE] + 1
    assert len(st.fake.dm_messages(BOB)) == before[BOB] and len(st.fake.dm_messages(CAROL)) == before[CAROL]
    reminder = st.fake.dm_messages(ALICE)[-1]
    assert "Which day?" in flatten(reminder)
    link = next(e for b in reminder["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert link["url"].startswith("https://")


def test_someone_who_joins_after_the_poll_was_created_is_reminded_too(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)
    assert p.channel_id
    st.clock.set(START + timedelta(hours=3))
    st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=DAN, role=None)
    vote(st, poll, ALICE, 0)
    before = {u: len(st.fake.dm_messages(u)) for u in (ALICE, DAN)}  # the module shares one fake Slack
    st.at(START + timedelta(days=1))
    new = {u: st.fake.dm_messages(u)[before[u]:] for u in (ALICE, DAN)}
    assert ["Which day?" in flatten(m) for m in new[DAN]] == [True]
    assert new[ALICE] == []  # she answered
    st.at(START + timedelta(days=1, minutes=5))  # each person once
    assert len(st.fake.dm_messages(DAN)) == before[DAN] + 1


def test_a_reminder_due_before_the_poll_could_be_posted_waits_for_the_post(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None
    st.services.polls.create(partnership_id=p.id, actor=ALICE, spec=spec(), creation_key=f"t:{next(KEYS)}")
    before = {u: len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)}
    # The bot was down until after the reminder time; when it comes back, Slack fails the poll's post once.
    st.fake.fail("chat.postMessage", "internal_error", status=500)
    st.at(START + timedelta(days=1, minutes=1))
    st.at(START + timedelta(days=1, minutes=2))  # the post's retry: the poll is in the channel now
    st.at(START + timedelta(days=1, minutes=3))
    with st.services.uow() as s:
        poll = s.exec(select(Poll).where(Poll.partnership_id == p.id)).one()
    assert "Which day?" in flatten(message(st, poll))
    assert {u: len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL)} == {u: n + 1 for u, n in before.items()}


def test_closing_on_time_shows_the_final_results_in_place_without_buttons(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="rating", options=[])
    for user, score in ((ALICE, 5), (BOB, 4), (CAROL, 2)):
        vote(st, poll, user, score)
    st.clock.set(poll.closes_at - timedelta(seconds=1))
    st.tick()
    assert reload(st, poll).status == PollStatus.OPEN
    st.clock.set(poll.closes_at)
    st.tick()
    closed = reload(st, poll)
    assert closed.status == PollStatus.CLOSED and not closed.closed_late
    shown = message(st, closed)
    assert "*Average:* 3.7 / 5" in flatten(shown) and "Closed <!date^" in flatten(shown)
    [only] = [b for b in shown["blocks"] if b["type"] == "actions"]  # no voting: only the export
    assert [e["action_id"] for e in only["elements"]] == ["poll_export"]


def test_closing_after_a_restart_past_the_deadline_says_it_closed_late(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="nps", options=[])
    vote(st, poll, BOB, 10)
    st.restart()
    st.clock.set(poll.closes_at + timedelta(hours=3))
    st.tick()
    closed = reload(st, poll)
    assert closed.status == PollStatus.CLOSED and closed.closed_late
    shown = flatten(message(st, closed))
    assert "Closed late" in shown and "*NPS:* +100" in shown


def test_a_poll_whose_message_is_gone_still_closes_and_its_creator_gets_the_results(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="text", options=[], actor=BOB)
    assert poll.id is not None
    st.services.polls.answer(poll_id=poll.id, user_id=CAROL, text="More <!channel> docs & examples")
    with st.fake.lock:
        st.fake.channels[poll.channel_id].is_archived = True
    st.clock.set(poll.closes_at)
    st.tick()
    assert reload(st, poll).status == PollStatus.CLOSED
    told = flatten(st.fake.dm_messages(BOB))
    assert "its message in the channel is gone" in told
    assert "More &lt;!channel&gt; docs &amp; examples" in told


def test_open_answers_go_into_the_thread_without_names_when_anonymous(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="text", options=[], anonymous=True)
    assert poll.id is not None
    for user, text in ((BOB, "faster API"), (CAROL, "better docs")):
        st.services.polls.answer(poll_id=poll.id, user_id=user, text=text)
    st.services.polls.answer(poll_id=poll.id, user_id=BOB, text="a faster API")  # replaces Bob's
    st.clock.set(poll.closes_at)
    st.tick()
    [reply] = st.fake.replies(poll.channel_id, poll.message_ts or "")
    shown = flatten(reply)
    assert "a faster API" in shown and "better docs" in shown and "• faster API" not in shown
    # Bob's changed answer arrived last, but the list is sorted: its order does not tell who answered when.
    assert shown.index("a faster API") < shown.index("better docs")
    assert BOB not in shown and CAROL not in shown


def test_closing_early_is_for_the_creator_and_owners(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, actor=BOB)
    with pytest.raises(Forbidden, match="can close it early"):
        st.services.polls.close_early(actor=CAROL, poll_id=poll.id)
    assert "Closed poll #1" in st.services.polls.close_early(actor=BOB, poll_id=poll.id).text()
    with pytest.raises(Invalid, match="already closed"):
        st.services.polls.close_early(actor=ALICE, poll_id=poll.id)
    st.tick()
    assert f"Closed early by <@{BOB}>" in flatten(message(st, poll))
    second = create(st, p, actor=BOB)
    assert "Closed poll #2" in st.services.polls.close_early(actor=ALICE, channel_id=p.channel_id).text()
    assert second.number == 2


def test_an_empty_audience_is_refused(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None
    with pytest.raises(Invalid) as exc:
        st.services.polls.create(partnership_id=p.id, actor=ALICE, spec=spec(audience="partner"), creation_key="x")
    assert "Nobody" in exc.value.fields["audience"]


def test_the_partner_side_and_chosen_people(st: Stack) -> None:
    p = acme(st, partners=1)
    assert p.id is not None
    with st.services.uow() as s:
        assert set(st.services.polls.audience(s, p.id, PollAudience.PARTNER)) == {PARTNERS[0]}
        assert st.services.polls.audience(s, p.id, PollAudience.CHOSEN, [BOB, PAT]) == {BOB: Side.OURS,
                                                                                       PAT: Side.OURS}
        assert set(st.services.polls.audience(s, p.id, PollAudience.ALL)) == {ALICE, BOB, CAROL, PARTNERS[0]}


def test_a_vote_storm_loses_and_double_counts_nothing(st: Stack) -> None:
    p = acme(st)
    single = create(st, p)
    multiple = create(st, p, kind="multiple", options=["A", "B", "C"])
    clicks = [(single, user, i % 3) for i in range(20) for user in (ALICE, BOB, CAROL)]
    clicks += [(multiple, BOB, 0)] * 10 + [(multiple, CAROL, 1)] * 7  # toggles: even -> off, odd -> on
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: vote(st, *c), clicks))
    with st.services.uow() as s:
        rows = list(s.exec(select(PollVote)).all())
    assert sorted((v.poll_id, v.user_id) for v in rows if v.poll_id == single.id) == [
        (single.id, ALICE), (single.id, BOB), (single.id, CAROL)]
    assert [(v.user_id, v.option) for v in rows if v.poll_id == multiple.id] == [(CAROL, 1)]
    st.clock.advance(seconds=1)
    st.tick()
    assert "(3 answered)" in flatten(message(st, single))


def test_a_poll_that_cannot_be_posted_tells_its_creator_and_records_the_channel_gone(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None and p.channel_id
    with st.fake.lock:
        st.fake.channels[p.channel_id].is_archived = True  # archived in Slack; Partnerbot has not heard yet
    st.services.polls.create(partnership_id=p.id, actor=BOB, spec=spec(), creation_key="archived")
    st.tick()
    assert "could not post your poll" in flatten(st.fake.dm_messages(BOB))
    with st.services.uow() as s:
        partnership = s.get(Partnership, p.id)
        assert partnership is not None and partnership.channel_archived_at is not None
    with pytest.raises(Invalid, match="archived"):
        st.services.polls.prepare(channel_id=p.channel_id, actor=BOB)


def test_a_poll_whose_closing_time_passed_before_it_was_posted_goes_to_its_creator_only(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None and p.channel_id
    st.services.polls.create(partnership_id=p.id, actor=BOB, spec=spec(closes="2 hours"), creation_key="down")
    before = len(st.fake.messages(p.channel_id))
    st.clock.advance(hours=3)  # the bot was down from before the post until after the close
    st.tick()
    assert len(st.fake.messages(p.channel_id)) == before  # no poll with buttons that would never close
    assert "could not be posted in the channel before it closed" in flatten(st.fake.dm_messages(BOB))


def test_a_poll_whose_message_was_deleted_still_closes_and_its_creator_gets_the_results(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, actor=CAROL)
    vote(st, poll, BOB, 1)
    with st.fake.lock:  # someone deleted the poll's message
        channel = st.fake.channels[poll.channel_id]
        channel.messages = [m for m in channel.messages if m["ts"] != poll.message_ts]
    st.clock.set(poll.closes_at)
    st.tick()
    assert reload(st, poll).status == PollStatus.CLOSED
    told = flatten(st.fake.dm_messages(CAROL))
    assert "its message in the channel is gone" in told and "100% (1)  Tue" in told


def test_a_vote_storm_on_postgresql_loses_and_double_counts_nothing(shared_fake: FakeSlack, pg_url: str) -> None:
    """PostgreSQL runs the clicks truly in parallel (SQLite has one writer): the poll's row lock and the
    unique (poll, voter, option) constraint keep each person's votes right."""
    clock = FrozenClock(START)
    shared_fake.clock = clock.epoch
    bot = build(make_settings(slack_api_url=shared_fake.base_url, database_url=pg_url,
                              default_timezone="Europe/Berlin"), clock=clock)
    bot.ticker.dispatcher.database_clock = False  # leases on the frozen clock, not the database's
    st = Stack(shared_fake, clock, bot)
    try:
        p = acme(st, partners=3)
        single = create(st, p)
        multiple = create(st, p, kind="multiple", options=["A", "B", "C"], max_picks="1")
        people = [ALICE, BOB, CAROL, *PARTNERS]
        clicks = [(single, user, i % 3) for i in range(10) for user in people]
        clicks += [(multiple, user, i % 3) for i in range(3) for user in people]
        outcomes: list[str] = []

        def click(c: tuple[Poll, str, int]) -> None:
            try:
                vote(st, *c)
                outcomes.append("ok")
            except Invalid as exc:
                assert "at most 1" in str(exc)  # a second pick over the limit of 1
                outcomes.append("refused")

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(click, clicks))
        with st.services.uow() as s:
            rows = list(s.exec(select(PollVote)).all())
        assert sorted(v.user_id or "" for v in rows if v.poll_id == single.id) == sorted(people)
        per_person = [sum(1 for v in rows if v.poll_id == multiple.id and v.user_id == u) for u in people]
        assert per_person == [1] * len(people) and outcomes.count("ok") == len(clicks) - outcomes.count("refused")
    finally:
        bot.close()


def test_on_postgresql_an_update_during_a_vote_still_spaces_the_next_one(shared_fake: FakeSlack, pg_url: str) -> None:
    """In a storm some vote holds the poll's row nearly all the time: the live update must still record when it
    went out (waiting for that vote, not skipping), or every later vote makes the next update due at once."""
    clock = FrozenClock(START)
    shared_fake.clock = clock.epoch
    bot = build(make_settings(slack_api_url=shared_fake.base_url, database_url=pg_url,
                              default_timezone="Europe/Berlin"), clock=clock)
    bot.ticker.dispatcher.database_clock = False
    st = Stack(shared_fake, clock, bot)
    holder = sa.create_engine(pg_url)
    try:
        p = acme(st)
        poll = create(st, p)
        clock.advance(seconds=5)
        vote(st, poll, ALICE, 1)
        updates = shared_fake.call_count("chat.update")
        holding, waited = threading.Event(), threading.Event()

        def hold_the_row_like_a_vote() -> None:
            with holder.connect() as conn, conn.begin():
                conn.execute(sa.text("SELECT id FROM poll WHERE id = :id FOR UPDATE"), {"id": poll.id})
                holding.set()
                for _ in range(2000):  # until the update's transaction waits for this row (at most ~10 s)
                    if conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                            " AND datname = current_database()")).scalar():
                        waited.set()
                        break
                    conn.execute(sa.text("SELECT pg_sleep(0.005)"))

        with ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(hold_the_row_like_a_vote)
            assert holding.wait(10)
            st.tick()  # the live update runs while "a vote" holds the row
            held.result()
        assert waited.is_set()
        assert shared_fake.call_count("chat.update") == updates + 1
        assert reload(st, poll).refreshed_at == clock.now()
        vote(st, poll, BOB, 1)
        st.tick()  # the same second: the next update waits
        assert shared_fake.call_count("chat.update") == updates + 1
        clock.advance(seconds=1)
        st.tick()
        assert shared_fake.call_count("chat.update") == updates + 2
    finally:
        holder.dispose()
        bot.close()


def test_results_after_close_show_no_tally_while_open_and_the_tally_at_close(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, anonymous=True, results="after_close")
    assert poll.id is not None
    for user, option in ((ALICE, 0), (BOB, 1), (CAROL, 1)):
        recorded = st.services.polls.vote(poll_id=poll.id, user_id=user, option=option)
    told = st.services.polls.results_summary(recorded)
    assert "results show when it closes" in told and "tally shows once" not in told
    st.clock.advance(seconds=1)
    st.tick()
    shown = flatten(message(st, reload(st, poll)))
    assert "3 answered" in shown and "Results show when the poll closes" in shown and "%" not in shown
    st.clock.set(poll.closes_at)
    st.tick()
    shown = flatten(message(st, reload(st, poll)))
    assert "67% (2)" in shown and "33% (1)" in shown


def test_choosing_a_person_not_recorded_in_the_partnership_is_refused(st: Stack) -> None:
    p = acme(st, partners=1)
    assert p.id is not None
    chosen = spec(audience="chosen", chosen=[BOB, PAT])
    with pytest.raises(Invalid) as checked:
        st.services.polls.check_audience(partnership_id=p.id, spec=chosen)
    assert "/partner add @person" in checked.value.fields["chosen"]
    with pytest.raises(Invalid) as created:
        st.services.polls.create(partnership_id=p.id, actor=ALICE, spec=chosen, creation_key="unrecorded")
    assert f"<@{PAT}> is not in" in str(created.value) and "chosen" in created.value.fields
    with st.services.uow() as s:
        assert s.exec(select(Poll).where(Poll.partnership_id == p.id)).first() is None
    # Recorded people of either side can be chosen, each counted on their own side.
    poll = create(st, p, audience="chosen", chosen=[BOB, PARTNERS[0]])
    with st.services.uow() as s:
        assert st.services.polls.audience(s, p.id, poll.audience, poll.chosen) == {BOB: Side.OURS,
                                                                                 PARTNERS[0]: Side.PARTNER}


def test_a_side_with_no_respondents_hides_the_sides_as_in_pulse(st: Stack) -> None:
    """The per-side rule shared with pulse rounds: a side of the audience nobody on answered hides the sides."""
    p = acme(st, partners=3)
    poll = create(st, p)
    for user in (ALICE, BOB, CAROL):
        vote(st, poll, user, 0)
    st.clock.set(poll.closes_at)
    st.tick()
    shown = flatten(message(st, reload(st, poll)))
    assert "Results per side appear once each side has at least 3 respondents" in shown
    assert "Our side" not in shown
    with st.services.uow() as s:
        res = st.services.polls.results(s, reload(st, poll))
    assert res.by_side == {} and res.total.respondents == 3


def test_the_scale_kinds_show_one_button_per_value(st: Stack) -> None:
    p = acme(st)

    def scale_buttons(poll: Poll) -> list[str]:
        return [e["text"]["text"] for b in message(st, poll)["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e.get("value", "").split(":")[0] == str(poll.id)
                and e["text"]["text"].isdigit()]

    assert scale_buttons(create(st, p, kind="nps", options=[])) == [str(n) for n in range(11)]
    assert scale_buttons(create(st, p, kind="rating", options=[])) == ["1", "2", "3", "4", "5"]


def test_people_who_left_the_channel_are_in_no_new_poll_audience(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None
    with st.services.uow() as s:
        carol = s.exec(select(Member).where(Member.partnership_id == p.id, Member.user_id == CAROL)).one()
        carol.left_at = START
        s.add(carol)
    everyone = create(st, p)
    chosen = create(st, p, audience="chosen", chosen=[BOB, CAROL])
    with st.services.uow() as s:
        assert set(st.services.polls.audience(s, p.id, everyone.audience)) == {ALICE, BOB}
        assert set(st.services.polls.audience(s, p.id, chosen.audience, chosen.chosen)) == {BOB}
    with pytest.raises(Forbidden):
        vote(st, everyone, CAROL, 0)


def test_a_poll_for_our_side_only_shows_no_per_side_line(st: Stack) -> None:
    p = acme(st, partners=3)
    poll = create(st, p, audience="ours")
    for user in (ALICE, BOB, CAROL):
        vote(st, poll, user, 0)
    st.clock.set(poll.closes_at)
    st.tick()
    shown = flatten(message(st, reload(st, poll)))
    assert "100% (3)" in shown and "per side" not in shown.lower() and "Our side" not in shown


def test_an_outsider_cannot_create_a_poll_or_open_the_answer_form(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None
    with pytest.raises(Forbidden):
        st.services.polls.create(partnership_id=p.id, actor=DAN, spec=spec(), creation_key="outsider")
    with st.services.uow() as s:
        assert s.exec(select(Poll).where(Poll.partnership_id == p.id)).first() is None
    poll = create(st, p, kind="text", options=[])
    assert poll.id is not None
    with pytest.raises(Forbidden, match="your answer is not counted"):
        st.services.polls.answer_form(poll_id=poll.id, user_id=DAN)
    assert st.services.polls.answer_form(poll_id=poll.id, user_id=BOB)["type"] == "modal"
    st.clock.set(poll.closes_at)
    st.tick()
    with pytest.raises(Invalid, match="closed"):
        st.services.polls.answer_form(poll_id=poll.id, user_id=BOB)


def test_the_poll_form_defaults(st: Stack) -> None:
    from blocks import ids
    from blocks.polls import poll_modal

    view = poll_modal(partnership_id=1, partnership_name="Acme", timezone="Europe/Berlin")
    by_id = {b.get("block_id"): b.get("element", {}) for b in view["blocks"]}
    assert by_id[ids.F_POLL_CLOSES]["initial_value"] == "2 days"
    assert by_id[ids.F_POLL_REMINDER]["initial_option"]["value"] == "half"
    assert "initial_options" not in by_id[ids.F_POLL_ANONYMOUS]
    assert by_id[ids.F_POLL_RESULTS]["initial_option"]["value"] == "live"
    assert by_id[ids.F_POLL_AUDIENCE]["initial_option"]["value"] == "all"


def test_a_chosen_poll_takes_the_chosen_people_still_in_the_channel_with_their_side(st: Stack) -> None:
    p = acme(st, partners=1)
    poll = create(st, p, audience="chosen", chosen=[BOB, PARTNERS[0]])
    with st.services.uow() as s:  # Bob leaves the channel after the poll started
        bob = s.exec(select(Member).where(Member.partnership_id == p.id, Member.user_id == BOB)).one()
        bob.left_at = START
        s.add(bob)
    assert vote(st, poll, PARTNERS[0], 1).picks == [1]
    with pytest.raises(Forbidden, match="only"):
        vote(st, poll, BOB, 0)
    with pytest.raises(Forbidden, match="only"):
        vote(st, poll, CAROL, 0)  # in the partnership, not chosen
    with st.services.uow() as s:
        assert [(v.user_id, v.side, v.option) for v in s.exec(select(PollVote)).all()] == [
            (PARTNERS[0], Side.PARTNER, 1)]


def test_each_confirmation_counts_the_respondents_as_they_are_after_the_click(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p, kind="multiple", options=["A", "B", "C"])
    assert vote(st, poll, BOB, 0).respondents == 1
    assert vote(st, poll, CAROL, 1).respondents == 2
    assert vote(st, poll, BOB, 2).respondents == 2  # a second pick: still one person
    assert vote(st, poll, BOB, 0).respondents == 2
    dropped = vote(st, poll, BOB, 2)  # the last pick toggled off: Bob no longer counts
    assert (dropped.picks, dropped.respondents) == ([], 1)
    assert "nothing is recorded for you" in st.services.polls.results_summary(dropped)
    text = create(st, p, kind="text", options=[])
    first = st.services.polls.answer(poll_id=text.id or 0, user_id=BOB, text="more docs")
    again = st.services.polls.answer(poll_id=text.id or 0, user_id=BOB, text="more docs, and examples")
    assert (first.respondents, again.respondents, again.changed) == (1, 1, True)
    assert "replaces your earlier one" in st.services.polls.results_summary(again)


def test_a_vote_wakes_the_dispatcher_for_when_the_update_is_due_and_a_storm_once(st: Stack) -> None:
    p = acme(st)
    poll = create(st, p)  # posted now: the next update is due a second later
    woken: list[datetime | None] = []
    st.services.polls.wake = lambda at=None: woken.append(at)
    vote(st, poll, ALICE, 0)
    assert woken == [START + timedelta(seconds=1)]
    vote(st, poll, BOB, 1)  # the update is pending and due later: nobody to wake
    vote(st, poll, ALICE, 0)  # nothing changed
    assert woken == [START + timedelta(seconds=1)]
    st.clock.advance(seconds=2)  # due, and not run yet (the dispatcher was busy): wake it now
    vote(st, poll, CAROL, 2)
    assert woken[1:] == [START + timedelta(seconds=2)]
    updates = st.fake.call_count("chat.update")
    st.tick()
    assert st.fake.call_count("chat.update") == updates + 1
    assert "(3 answered)" in flatten(message(st, poll))
