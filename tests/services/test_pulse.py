"""Pulse surveys with a frozen clock against the fake Slack: rounds at local times with the check-ins' misfire
rules, answers (anonymous, replaced when given again), the reminder, and the results people see: averages per
side above the minimum, the perception gap, the trend, participation, open answers without names."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models import Away, Partnership, PulseResponse, PulseRound
from models.scheduling import OccurrenceState
from services.errors import Forbidden, Invalid
from services.inputs import PulseScheduleInput, validate
from tests.e2e.conftest import flatten
from tests.support.stack import ALICE, BOB, CAROL, DAN, PAT, Stack, stack

PARTNERS = [PAT, "UPAT2", "UPAT3"]
OURS = [ALICE, BOB, CAROL]
Q_TRUST = "How much do the two organizations trust each other?"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, start=local(2026, 3, 2, 8, 0)) as s:  # Monday 2 March, 08:00 in Berlin
        for user in PARTNERS[1:]:
            s.fake.add_user(user, user.lower(), email=f"{user.lower()}@partner.com", team_id="T0PARTNER")
        yield s


def acme(st: Stack, *, partners: list[str] = PARTNERS, ours: list[str] = OURS) -> Partnership:
    p = st.partnership(members=[u for u in ours if u != ALICE])
    assert p.channel_id
    for user in partners:
        st.services.partnerships.add_member(channel_id=p.channel_id, actor=ALICE, user_id=user, role=None)
    return p


def setup(st: Stack, p: Partnership, **values: Any) -> str:
    data: dict[str, Any] = dict(cadence="monthly", nth=1, weekday="tue", local_time="10:00", timezone="Europe/Berlin")
    data.update(values)
    inp = validate(PulseScheduleInput, **data)
    assert p.id is not None
    return st.services.pulse.save_schedule(partnership_id=p.id, actor=ALICE, inp=inp).text()


def surveys(st: Stack, p: Partnership) -> list[dict[str, Any]]:
    assert p.channel_id
    return [m for m in st.fake.messages(p.channel_id) if "pulse" in m.get("text", "").lower()
            and m.get("text", "").startswith("Partnership pulse")]


def key_of(message: dict[str, Any]) -> str:
    return next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])


def answer(st: Stack, key: str, user: str, ratings: list[int | None], *answers: str) -> str:
    texts = [""] * (len(ratings) - len(answers)) + list(answers)
    return st.services.pulse.submit_answer(round_key=key, user_id=user, ratings=ratings, answers=texts).text()


def rounds(st: Stack) -> list[PulseRound]:
    with st.services.uow() as s:
        return list(s.exec(select(PulseRound).order_by(PulseRound.id)).all())  # type: ignore[arg-type]


def test_a_monthly_round_from_opening_to_results_with_a_perception_gap(st: Stack) -> None:
    p = acme(st)
    told = setup(st, p)
    assert "monthly on the first Tuesday at 10:00 (Europe/Berlin)" in told and "Tue 03 Mar 2026 10:00 CET" in told

    st.at(local(2026, 3, 3, 9, 59))
    assert surveys(st, p) == []
    st.at(local(2026, 3, 3, 10, 0))
    [survey] = surveys(st, p)
    shown = flatten(survey)
    assert "Take the survey" in shown and "Open until *Sun 08 Mar 10:00 CET*" in shown
    assert "both sides (6 people)" in shown
    key = key_of(survey)

    # Our side rates the partnership high, the partner's side low.
    for user in OURS:
        answer(st, key, user, [5, 5, 4, 4, 4, None], "More joint planning & <fewer> surprises")
    for user in PARTNERS:
        answer(st, key, user, [3, 3, 4, 4, 4, None], "Faster answers")

    st.at(local(2026, 3, 8, 10, 0))
    [results] = surveys(st, p)
    assert results["ts"] == survey["ts"]  # updated in place
    text = flatten(results)
    assert "Our side: 3 of 3 answered · Partner's side: 3 of 3 answered" in text
    trust = next(b["text"]["text"] for b in results["blocks"] if Q_TRUST in b.get("text", {}).get("text", ""))
    assert "*4.0* / 5 overall (6 answer(s))" in trust and "Our side 5.0 · Partner's side 3.0" in trust
    assert "The two organizations see the partnership differently (a gap of 2.0)" in trust
    aligned = next(b["text"]["text"] for b in results["blocks"] if "shared goals" in b.get("text", {}).get("text", ""))
    assert "differently" not in aligned
    # The open answers go into the thread, without names and escaped.
    [thread] = st.fake.replies(p.channel_id or "", survey["ts"])[-1:]
    said = flatten(thread)
    assert "More joint planning &amp; &lt;fewer&gt; surprises" in said and "Faster answers" in said
    assert not any(u in said for u in OURS + PARTNERS)


def test_answering_again_replaces_the_earlier_answer(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t1")
    st.tick()
    key = key_of(surveys(st, p)[0])
    assert "saved" in answer(st, key, BOB, [1, 1, 1, 1, 1, None], "first")
    assert "replaced" in answer(st, key, BOB, [5, 5, 5, 5, 5, None], "second")
    with st.services.uow() as s:
        [row] = s.exec(select(PulseResponse)).all()
    assert row.ratings[:5] == [5, 5, 5, 5, 5] and row.answers[-1] == "second"
    form = st.services.pulse.survey_form(round_key=key, user_id=BOB)  # the form shows the answers given
    assert form["submit"]["text"] == "Replace my answers"
    assert form["blocks"][2]["element"]["initial_option"]["value"] == "5"
    with pytest.raises(Invalid, match="Answer at least one question") as empty:
        answer(st, key, CAROL, [None] * 6, "   ")
    assert empty.value.fields == {"pq0": "Answer at least one question."}  # shown under the form's first input
    with pytest.raises(Invalid, match="the limit is 1000") as long:
        answer(st, key, CAROL, [3] * 5 + [None], "x" * 1001)
    assert list(long.value.fields) == ["pq5"]


def test_an_anonymous_answer_is_linked_to_nobody_in_the_database_or_the_logs(
    st: Stack, caplog: pytest.LogCaptureFixture,
) -> None:
    p = acme(st)
    assert p.channel_id
    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t1")
    st.tick()
    key = key_of(surveys(st, p)[0])
    caplog.set_level(logging.DEBUG)
    answer(st, key, BOB, [4, None, 2, 3, 5, None], "something")
    answer(st, key, PAT, [4, 2, 2, 3, 5, None], "")
    answer(st, key, BOB, [3, None, 2, 3, 5, None], "something else")
    people = OURS + PARTNERS
    with st.services.uow() as s:
        rows = s.exec(select(PulseResponse)).all()
        columns = [c.name for c in PulseResponse.__table__.columns]  # type: ignore[attr-defined]
        for row in rows:
            for column in columns:
                value = str(getattr(row, column))
                assert not any(u in value for u in people), (column, value)
                assert not any(u.lower() in value.lower() for u in people), (column, value)
    assert {row.side for row in rows} == {"ours", "partner"} and len(rows) == 2
    assert not any(u in r.getMessage() for r in caplog.records for u in people)


def test_sides_are_hidden_below_the_minimum_and_the_trend_compares_with_the_last_round(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="r1")
    st.tick()
    key = key_of(surveys(st, p)[0])
    for user in OURS:
        answer(st, key, user, [3, 3, 3, 3, 3, None])
    answer(st, key, PAT, [1, 3, 3, 3, 3, None])  # one partner: its side must not be computable
    st.at(st.clock.now() + timedelta(days=5))
    first = flatten(surveys(st, p)[0])
    assert "Per side: hidden until each side has at least 3 answers" in first
    assert "Our side 3.0" not in first and "Partner's side 1.0" not in first
    assert "Partner's side: 1 of 3 answered" in first

    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="r2")
    st.tick()
    key2 = key_of(surveys(st, p)[-1])
    for user in OURS + PARTNERS:
        answer(st, key2, user, [4, 3, 2, 3, 3, None])
    st.at(st.clock.now() + timedelta(days=5))
    second = flatten(surveys(st, p)[-1])
    assert "*4.0* / 5 overall (6 answer(s)) · :arrow_upper_right: up from 2.5" in second
    assert ":left_right_arrow: same from 3.0" in second and ":arrow_lower_right: down from 3.0" in second
    overview = st.services.pulse.overview(channel_id=p.channel_id, actor=PAT)
    assert overview.last is not None and overview.last[0].key == key2


def test_one_reminder_goes_to_those_asked_who_have_not_answered_and_are_not_away(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    setup(st, p, open_days=5)
    with st.services.uow() as s:
        s.add(Away(user_id=CAROL, until=datetime(2026, 3, 20).date()))
    st.at(local(2026, 3, 3, 10, 0))
    key = key_of(surveys(st, p)[0])
    answer(st, key, BOB, [4, 4, 4, 4, 4, None])
    st.at(local(2026, 3, 7, 9, 59))
    assert not any("pulse" in flatten(st.fake.dm_messages(u)) for u in OURS + PARTNERS)
    st.at(local(2026, 3, 7, 10, 0))  # a day before the close
    reminded = {u for u in OURS + PARTNERS if "partnership pulse" in flatten(st.fake.dm_messages(u))}
    assert reminded == {ALICE, *PARTNERS}
    st.at(local(2026, 3, 7, 18, 0))
    for user in OURS + PARTNERS:
        assert len([m for m in st.fake.dm_messages(user) if m.get("text", "").startswith("Reminder")]) <= 1
    # Nothing in the engine's rows says who answered: every reminder not sent is recorded alike.
    skipped = [o for o in st.occurrences(kind="pulse_remind") if o.state != OccurrenceState.DONE]
    assert {o.last_error for o in skipped} == {"no reminder needed"}


def test_the_check_in_misfire_rules_apply_to_rounds(st: Stack) -> None:
    p = acme(st)
    setup(st, p, cadence="weeks", every_weeks=1, weekday="mon", open_days=2)
    st.at(local(2026, 3, 9, 11, 59))  # down at 10:00, back within 2 hours: posted late
    [late_one] = surveys(st, p)
    assert "Delayed: this round was due at Mon 09 Mar 10:00 CET" in flatten(late_one)
    st.at(local(2026, 3, 15, 12, 0))  # planned ahead, then the bot is down at 10:00 on Monday 16
    st.at(local(2026, 3, 16, 12, 1))  # more than 2 hours late: not posted
    assert len(surveys(st, p)) == 1
    [late] = [o for o in st.occurrences(kind="pulse_open") if o.key.endswith("2026-03-16")]
    assert late.state == OccurrenceState.SKIPPED and "missed its window" in (late.last_error or "")


def test_every_two_weeks_follows_berlin_time_across_the_change(st: Stack) -> None:
    p = acme(st)
    setup(st, p, cadence="weeks", every_weeks=2, weekday="wed", local_time="09:00", open_days=3)
    opened = []
    moment = local(2026, 3, 2, 0, 0)
    while moment < local(2026, 4, 20, 0, 0):
        before = len(rounds(st))
        st.at(moment)
        if len(rounds(st)) > before:
            opened.append(moment.astimezone(ZoneInfo("Europe/Berlin")))
        moment += timedelta(hours=1)
    assert [(t.month, t.day, t.hour) for t in opened] == [(3, 4, 9), (3, 18, 9), (4, 1, 9), (4, 15, 9)]
    assert {t.utcoffset() for t in opened} == {timedelta(hours=1), timedelta(hours=2)}


def test_one_round_at_a_time_owners_only_and_pause(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    with pytest.raises(Forbidden, match="Only owners"):
        st.services.pulse.run_now(channel_id=p.channel_id, actor=BOB, request_key="x")
    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="a")
    with pytest.raises(Invalid, match="just started"):
        st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="b")
    st.tick()
    with pytest.raises(Invalid, match="is open until"):
        st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="c")
    setup(st, p)
    assert "Paused" in st.services.pulse.pause(channel_id=p.channel_id, actor=ALICE).text()
    st.at(local(2026, 3, 3, 10, 1))
    assert len(surveys(st, p)) == 1  # only the manual round
    assert "Next round: Tue 07 Apr 2026 10:00 CEST" in st.services.pulse.resume(
        channel_id=p.channel_id, actor=ALICE).text()


def test_people_outside_the_audience_cannot_answer(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    setup(st, p, audience="partner")
    st.at(local(2026, 3, 3, 10, 0))
    [survey] = surveys(st, p)
    assert "the partner's side only (3 people)" in flatten(survey)
    with pytest.raises(Invalid, match="asks the partner's side only"):
        st.services.pulse.survey_form(round_key=key_of(survey), user_id=BOB)
    with pytest.raises(Forbidden):
        st.services.pulse.survey_form(round_key=key_of(survey), user_id=DAN)
    for user in PARTNERS:
        answer(st, key_of(survey), user, [2, 2, 2, 2, 2, None])
    st.at(local(2026, 3, 8, 10, 0))
    results = flatten(surveys(st, p)[0])
    assert "Partner's side: 3 of 3 answered" in results and "Our side" not in results
    assert "*2.0* / 5 overall (3 answer(s))" in results and "differently" not in results


def test_planning_stops_while_the_channel_is_archived(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    setup(st, p)
    st.services.partnerships.channel_archived(p.channel_id, archived=True, actor=ALICE)
    st.at(local(2026, 3, 3, 10, 0))
    assert surveys(st, p) == []


def test_someone_taken_out_of_the_partnership_neither_answers_nor_is_reminded(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    setup(st, p)
    st.at(local(2026, 3, 3, 10, 0))
    key = key_of(surveys(st, p)[0])
    st.services.partnerships.remove_member(channel_id=p.channel_id, actor=ALICE, user_id=PAT)
    with pytest.raises(Forbidden, match="Only people in the"):
        answer(st, key, PAT, [3, 3, 3, 3, 3, None])
    st.at(local(2026, 3, 7, 10, 0))
    assert "partnership pulse" not in flatten(st.fake.dm_messages(PAT))
    assert "partnership pulse" in flatten(st.fake.dm_messages(PARTNERS[1]))


def test_someone_who_left_the_channel_is_not_asked_and_counts_again_after_rejoining(st: Stack) -> None:
    p = acme(st)
    assert p.channel_id
    setup(st, p)
    st.services.partnerships.member_left(channel_id=p.channel_id, user_id=PAT)  # left in Slack, still recorded
    st.at(local(2026, 3, 3, 10, 0))
    key = key_of(surveys(st, p)[0])
    with pytest.raises(Invalid, match="has no questions for you"):
        answer(st, key, PAT, [3, 3, 3, 3, 3, None])
    st.at(local(2026, 3, 7, 10, 0))
    assert "partnership pulse" not in flatten(st.fake.dm_messages(PAT))
    assert "partnership pulse" in flatten(st.fake.dm_messages(PARTNERS[1]))
    st.services.partnerships.member_joined(channel_id=p.channel_id, user_id=PAT)
    answer(st, key, PAT, [4, 4, 4, 4, 4, None])  # back in the channel: their side's round asks them again


def test_a_side_of_the_audience_with_no_answers_hides_the_sides_as_in_polls(st: Stack) -> None:
    """One per-side rule for pulse and polls: each side of the audience needs POLL_MIN_RESPONDENTS_PER_SIDE
    respondents, a side where nobody answered included."""
    p = acme(st)
    assert p.channel_id
    st.services.pulse.run_now(channel_id=p.channel_id, actor=ALICE, request_key="r1")
    st.tick()
    key = key_of(surveys(st, p)[0])
    for user in OURS:
        answer(st, key, user, [3, 3, 3, 3, 3, None])
    st.at(st.clock.now() + timedelta(days=5))
    shown = flatten(surveys(st, p)[0])
    assert "Per side: hidden until each side has at least 3 answers" in shown and "Our side 3.0" not in shown


def test_saving_the_setup_form_is_for_owners_only(st: Stack) -> None:
    p = acme(st)
    assert p.id is not None
    inp = validate(PulseScheduleInput, cadence="monthly", nth=1, weekday="tue", local_time="10:00",
                   timezone="Europe/Berlin")
    for outsider in (BOB, DAN):  # a member who is not an owner, and someone outside the partnership
        with pytest.raises(Forbidden):
            st.services.pulse.save_schedule(partnership_id=p.id, actor=outsider, inp=inp)
    with st.services.uow() as s:
        assert st.services.pulse._schedule(s, p.id) is None


def test_the_setup_form_defaults(st: Stack) -> None:
    from blocks import ids
    from blocks.pulse import setup_modal
    from models.pulse import DEFAULT_PULSE_QUESTIONS

    view = setup_modal(partnership_id=1, partnership_name="Acme", timezone="Asia/Tokyo", schedule=None)
    by_id = {b.get("block_id"): b.get("element", {}) for b in view["blocks"]}
    assert by_id[ids.F_PULSE_OPEN_DAYS]["initial_option"]["value"] == "5"
    assert by_id[ids.F_PULSE_ANONYMOUS]["initial_option"]["value"] == "yes"
    assert by_id[ids.F_TIMEZONE]["initial_value"] == "Asia/Tokyo"
    questions = next(e["initial_value"] for e in by_id.values() if e.get("multiline"))
    assert all(q["text"] in questions for q in DEFAULT_PULSE_QUESTIONS)
