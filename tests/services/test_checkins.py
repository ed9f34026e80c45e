"""Check-ins with a frozen clock against the fake Slack: local times across DST, the misfire rules,
re-planning, pause/skip/away, reminders and the summary, as people see them in Slack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from models import CheckinRound, OccurrenceState, Partnership
from models.checkin import CheckinAnswer, CheckinSchedule, ParticipantMode, QuestionKind
from services.errors import Forbidden, Invalid
from services.inputs import ScheduleInput, validate
from tests.e2e.conftest import flatten
from tests.support.stack import ALICE, BOB, CAROL, DAN, Stack, stack


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, start=utc(2026, 3, 2, 6, 0)) as s:  # Monday 07:00 in Berlin
        yield s


def prompts(st: Stack, p: Partnership) -> list[dict[str, Any]]:
    assert p.channel_id
    return [m for m in st.fake.messages(p.channel_id) if m.get("text", "").startswith("Check-in time")]


def schedule(st: Stack, p: Partnership, args: str, actor: str = ALICE) -> str:
    assert p.channel_id
    return st.services.checkins.quick_schedule(channel_id=p.channel_id, actor=actor, args=args).text()


def round_key(message: dict[str, Any]) -> str:
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    return str(button["value"])


def answer(st: Stack, message: dict[str, Any], user: str, *answers: str) -> None:
    """Submit answers, then let the scheduler show them in the thread (as the bot does right away)."""
    st.services.checkins.submit_answer(round_key=round_key(message), user_id=user, answers=list(answers))
    st.tick()


def prompted(st: Stack) -> tuple[Partnership, dict[str, Any]]:
    """Acme (Alice owner, Bob member) with Monday's 09:30 check-in prompt posted."""
    p = st.partnership(members=[BOB])
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    [prompt] = prompts(st, p)
    return p, prompt


def lose_the_first_answer_to(st: Stack, method: str = "chat.postMessage") -> list[str]:
    """Slack stores the next post, but its answer never reaches the bot (the connection drops)."""
    lost: list[str] = []

    def hook(called: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if called == method and not lost:
            lost.append(body["ts"])
            raise ConnectionResetError("the answer is lost on the way back")

    st.fake.after_success = hook
    return lost


# -- local time across DST ------------------------------------------------------------------------------
def test_a_berlin_0930_check_in_fires_at_0930_berlin_time_on_both_sides_of_the_change(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    schedule(st, p, "daily 09:30 Europe/Berlin")
    posted: list[datetime] = []
    moment = local("Europe/Berlin", 2026, 3, 27, 0, 0)
    st.clock.set(moment)
    while moment < local("Europe/Berlin", 2026, 4, 1, 0, 0):
        before = len(prompts(st, p))
        st.at(moment)
        if len(prompts(st, p)) > before:
            posted.append(moment.astimezone(ZoneInfo("Europe/Berlin")))
        moment += timedelta(minutes=15)
    assert [(t.day, t.hour, t.minute) for t in posted] == [(d, 9, 30) for d in range(27, 32)]
    assert {t.utcoffset() for t in posted} == {timedelta(hours=1), timedelta(hours=2)}  # CET and CEST


def test_new_york_0130_posts_once_on_the_fall_back_day(tmp_path: Path) -> None:
    with stack(tmp_path, start=local("America/New_York", 2026, 10, 31, 12, 0)) as st:
        p = st.partnership(timezone="America/New_York")
        schedule(st, p, "daily 01:30")
        moment = local("America/New_York", 2026, 11, 1, 0, 0)
        while moment < local("America/New_York", 2026, 11, 1, 4, 0):  # 01:00-02:00 happens twice
            st.at(moment)
            moment += timedelta(minutes=10)
        assert len(prompts(st, p)) == 1
        [r] = rounds(st)
        assert r.scheduled_for == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)


# -- misfire rules --------------------------------------------------------------------------------------------
def rounds(st: Stack) -> list[CheckinRound]:
    with st.services.uow() as s:
        return list(s.exec(select(CheckinRound).order_by(CheckinRound.id)).all())  # type: ignore[arg-type]


def test_a_prompt_missed_while_down_is_posted_late_within_two_hours_marked_delayed(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 15))  # the bot was down at 09:30
    [prompt] = prompts(st, p)
    text = flatten(prompt)
    assert "Delayed: this check-in was due at 09:30" in text
    [r] = rounds(st)
    assert r.delayed and r.closes_at == local("Europe/Berlin", 2026, 3, 2, 15, 15)  # a full window from posting


def test_a_prompt_missed_by_more_than_two_hours_is_not_posted(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 31))
    assert prompts(st, p) == []
    [occ] = st.occurrences(kind="checkin_prompt")
    assert occ.state == OccurrenceState.SKIPPED and "missed its window" in (occ.last_error or "")


def test_a_missed_prompt_is_never_posted_after_its_local_day_ends(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "mon 23:30")
    st.at(local("Europe/Berlin", 2026, 3, 3, 0, 15))  # 45 minutes late, but Tuesday already
    assert prompts(st, p) == []
    [occ] = st.occurrences(kind="checkin_prompt")
    assert occ.state == OccurrenceState.SKIPPED


def test_of_several_missed_prompts_only_the_newest_is_posted(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "daily 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 0))  # planned Mon and Tue
    st.at(local("Europe/Berlin", 2026, 3, 3, 1, 0))  # plans Wed too; then the bot is down until Wed 10:00
    st.at(local("Europe/Berlin", 2026, 3, 4, 10, 0))
    assert [r.local_date for r in rounds(st)] == [date(2026, 3, 4)]
    states = {o.key.rsplit(":", 1)[1]: o.state for o in st.occurrences(kind="checkin_prompt")}
    assert states["2026-03-02"] == states["2026-03-03"] == OccurrenceState.SKIPPED
    assert states["2026-03-04"] == OccurrenceState.DONE


# -- changes, pause, skip ---------------------------------------------------------------------------------------
def test_a_changed_schedule_replans_at_once(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 8, 0))
    told = schedule(st, p, "mon 11:00")
    assert "Next: Mon 02 Mar 2026 11:00 CET" in told
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    assert prompts(st, p) == []
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 0))
    assert len(prompts(st, p)) == 1
    announcements = [flatten(m) for m in st.fake.messages(p.channel_id or "") if "check-ins" in m.get("text", "")]
    assert any("changed the check-ins: Mon at 11:00" in a for a in announcements)


def test_a_new_schedule_does_not_post_a_slot_from_earlier_today(st: Stack) -> None:
    p = st.partnership()
    st.clock.set(local("Europe/Berlin", 2026, 3, 2, 10, 0))
    schedule(st, p, "mon,tue 09:30")  # 09:30 today is 30 minutes ago: not "missed"
    st.tick()
    assert prompts(st, p) == []
    st.at(local("Europe/Berlin", 2026, 3, 3, 9, 30))
    assert len(prompts(st, p)) == 1


def test_pause_stops_prompts_and_resume_restarts_from_the_next_slot(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    svc = st.services.checkins
    schedule(st, p, "daily 09:30")
    assert "Paused" in svc.pause(channel_id=p.channel_id, actor=ALICE).text()
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    assert prompts(st, p) == []
    st.clock.set(local("Europe/Berlin", 2026, 3, 2, 10, 0))
    assert "Next: Tue 03 Mar 2026 09:30 CET" in svc.resume(channel_id=p.channel_id, actor=ALICE).text()
    st.tick()
    assert prompts(st, p) == []  # the paused one is not posted late
    st.at(local("Europe/Berlin", 2026, 3, 3, 9, 30))
    assert len(prompts(st, p)) == 1


def test_skip_skips_the_next_check_in_only(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    schedule(st, p, "mon,wed 09:30")
    told = st.services.checkins.skip_next(channel_id=p.channel_id, actor=ALICE).text()
    assert "Skipped the check-in of Mon 02 Mar 2026 09:30 CET" in told and "Wed 04 Mar 2026 09:30 CET" in told
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    assert prompts(st, p) == []
    st.at(local("Europe/Berlin", 2026, 3, 4, 9, 30))
    assert len(prompts(st, p)) == 1


def test_only_owners_change_the_schedule_but_any_member_may_run_one_now(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    svc = st.services.checkins
    schedule(st, p, "mon 09:30")
    for change in (lambda: schedule(st, p, "tue 10:00", actor=BOB),
                   lambda: svc.pause(channel_id=p.channel_id, actor=BOB),
                   lambda: svc.prepare_questions(channel_id=p.channel_id, actor=BOB)):
        with pytest.raises(Forbidden, match="Only owners"):
            change()
    with pytest.raises(Forbidden, match="Only people in the"):
        svc.run_now(channel_id=p.channel_id, actor=CAROL, request_key="t1")
    svc.run_now(channel_id=p.channel_id, actor=BOB, request_key="t2")
    svc.run_now(channel_id=p.channel_id, actor=BOB, request_key="t2")  # a retried request
    st.tick()
    [prompt] = prompts(st, p)
    assert f"Started by <@{BOB}>" in flatten(prompt)


def test_a_closed_partnership_gets_no_prompts(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "mon 09:30")
    assert p.id
    st.services.partnerships.close(partnership_id=p.id, actor=ALICE, reason="done")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    assert prompts(st, p) == []


def test_bad_quick_schedules_are_explained(st: Stack) -> None:
    p = st.partnership()
    with pytest.raises(Invalid, match="Usage"):
        schedule(st, p, "mon")
    with pytest.raises(Invalid, match="'funday' is not a weekday"):
        schedule(st, p, "mon,funday 09:30")
    with pytest.raises(Invalid, match="HH:MM"):
        schedule(st, p, "mon 25:00")
    with pytest.raises(Invalid, match="Mars/Olympus"):
        schedule(st, p, "mon 09:30 Mars/Olympus")


# -- answers, reminders, away, summary ----------------------------------------------------------------------------
def test_reminders_go_once_to_those_who_have_not_answered_and_are_not_away(st: Stack) -> None:
    p = st.partnership(members=[BOB, CAROL, DAN])
    schedule(st, p, "mon 09:30")
    st.services.checkins.set_away(user_id=DAN, until_text="until 2026-03-06")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    [prompt] = prompts(st, p)
    assert f"<@{DAN}>" not in flatten(prompt) and "1 away" in flatten(prompt)  # no prompt for Dan
    answer(st, prompt, BOB, "shipped", "more", "", "")
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 29))
    assert st.fake.dm_messages(CAROL) == []
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 30))  # halfway through the 4-hour window
    st.at(local("Europe/Berlin", 2026, 3, 2, 12, 0))
    assert [len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL, DAN)] == [1, 0, 1, 0]
    assert "closes at *13:30 CET*" in flatten(st.fake.dm_messages(CAROL)[0])


def test_the_summary_updates_the_prompt_in_place_at_window_close(st: Stack) -> None:
    p = st.partnership(members=[BOB, CAROL, DAN])
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    [prompt] = prompts(st, p)
    key = round_key(prompt)
    answer(st, prompt, BOB, "contract signed", "pilot", "waiting on legal review", "none")
    answer(st, prompt, ALICE, "demo done", "", "no", "API keys for the sandbox")
    st.services.checkins.set_away(user_id=DAN, until_text="2026-03-02")  # away since the prompt went out
    before = len(st.fake.messages(p.channel_id))
    st.at(local("Europe/Berlin", 2026, 3, 2, 13, 30))
    summary = flatten(st.fake.message(p.channel_id, prompt["ts"]))
    assert "(closed)" in summary
    assert "2 of 3 answered (67%)" in summary and "1 away" in summary
    assert f"*Missing:* <@{CAROL}>" in summary and f"*Away:* <@{DAN}>" in summary
    assert f"<@{BOB}>: waiting on legal review _(Any blockers?)_" in summary
    assert f"<@{ALICE}>: API keys for the sandbox _(What do we need from the partner?)_" in summary
    assert "none _(" not in summary and "no _(" not in summary
    assert not [b for b in st.fake.message(p.channel_id, prompt["ts"])["blocks"] if b["type"] == "actions"]
    assert len(st.fake.messages(p.channel_id)) == before  # updated in place, not posted again
    with pytest.raises(Invalid, match="closed at Mon 02 Mar 2026 13:30 CET; answers are no longer taken"):
        st.services.checkins.submit_answer(round_key=key, user_id=CAROL, answers=["too late"])


def test_answers_go_in_the_thread_and_an_edit_updates_the_same_reply(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    answer(st, prompt, BOB, "<!channel> shipped *v2*", "", "", "")
    answer(st, prompt, BOB, "shipped v2 and v3", "", "", "")
    [reply] = st.fake.replies(p.channel_id, prompt["ts"])
    text = flatten(reply)
    assert f"<@{BOB}> answered" in text and "shipped v2 and v3" in text and "<!channel>" not in text
    assert reply.get("edited")
    form = st.services.checkins.answer_form(round_key=round_key(prompt), user_id=BOB)
    assert form["blocks"][1]["element"]["initial_value"] == "shipped v2 and v3"
    with pytest.raises(Invalid, match="at least one"):
        answer(st, prompt, BOB, "", " ")
    with pytest.raises(Forbidden, match="Only people in the"):
        st.services.checkins.answer_form(round_key=round_key(prompt), user_id=CAROL)


def test_back_ends_away_time(st: Stack) -> None:
    svc = st.services.checkins
    assert "until Fri 06 Mar 2026" in svc.set_away(user_id=BOB, until_text="until 2026-03-06")
    assert "Welcome back" in svc.back(user_id=BOB)
    assert "not marked away" in svc.back(user_id=BOB)
    with pytest.raises(Invalid, match="in the past"):
        svc.set_away(user_id=BOB, until_text="2026-01-01")
    with pytest.raises(Invalid, match="as a date"):
        svc.set_away(user_id=BOB, until_text="next week")


def test_a_prompt_that_keeps_failing_is_marked_failed_and_the_owners_are_told(st: Stack) -> None:
    p = st.partnership(owners=[ALICE, BOB])
    schedule(st, p, "mon 09:30")
    st.fake.fail("chat.postMessage", "internal_error", status=500, times=5)
    moment = local("Europe/Berlin", 2026, 3, 2, 9, 30)
    for _ in range(8):
        st.at(moment)
        moment += timedelta(minutes=10)
    assert prompts(st, p) == []
    [occ] = st.occurrences(kind="checkin_prompt")
    assert occ.state == OccurrenceState.FAILED and "internal_error" in (occ.last_error or "")
    for owner in (ALICE, BOB):
        [notice] = st.fake.dm_messages(owner)
        assert "could not post the check-in prompt for *Acme*" in flatten(notice)
        assert "internal_error" in flatten(notice)


def test_overview_and_history(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    svc = st.services.checkins
    assert svc.overview(channel_id=p.channel_id, actor=BOB).schedule is None
    schedule(st, p, "mon,wed 09:30")
    o = svc.overview(channel_id=p.channel_id, actor=BOB)
    assert o.next_due == local("Europe/Berlin", 2026, 3, 2, 9, 30) and o.participants == [ALICE, BOB]
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    answer(st, prompts(st, p)[0], BOB, "x")
    st.at(local("Europe/Berlin", 2026, 3, 2, 13, 30))
    _, history = svc.history(channel_id=p.channel_id, actor=BOB)
    [(r, t)] = history
    assert r.local_date == date(2026, 3, 2) and (len(t.answered), t.expected) == (1, 2)


def test_a_schedule_change_while_a_lost_post_waits_to_be_retried_does_not_post_it_twice(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    dropped = lose_the_first_answer_to(st)
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))  # posted, but the bot never heard back
    st.fake.after_success = None
    assert len(prompts(st, p)) == 1
    schedule(st, p, "mon 11:00")  # re-plans today's slot to 11:00 while its retry is pending
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 0))
    assert len(prompts(st, p)) == 1  # found in the channel and adopted, not posted again
    [occ] = st.occurrences(kind="checkin_prompt")
    assert occ.state == OccurrenceState.DONE and occ.result_ts == dropped[0]
    assert len(rounds(st)) == 1


@pytest.mark.parametrize("change", ["pause", "another day"])
def test_a_prompt_posted_before_a_pause_or_change_is_adopted_so_its_answer_button_works(
    st: Stack, change: str
) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    lose_the_first_answer_to(st)
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))  # posted; the bot does not know it
    st.fake.after_success = None
    if change == "pause":
        st.services.checkins.pause(channel_id=p.channel_id, actor=ALICE)
    else:
        schedule(st, p, "tue 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 31))
    [prompt] = prompts(st, p)
    answer(st, prompt, BOB, "fine")  # the round exists: the button leads somewhere
    [r] = rounds(st)
    assert r.prompt_ts == prompt["ts"] and r.closes_at == local("Europe/Berlin", 2026, 3, 2, 13, 30)


def test_a_prompt_posted_just_before_its_window_ended_is_adopted_not_dropped(st: Stack) -> None:
    p = st.partnership()
    schedule(st, p, "mon 23:00")
    lose_the_first_answer_to(st)
    st.at(local("Europe/Berlin", 2026, 3, 2, 23, 0))
    st.fake.after_success = None
    st.at(local("Europe/Berlin", 2026, 3, 3, 0, 5))  # the retry comes after the local day ended
    assert len(prompts(st, p)) == 1 and len(rounds(st)) == 1
    [occ] = st.occurrences(kind="checkin_prompt")
    assert occ.state == OccurrenceState.DONE


def test_a_lost_prompt_is_found_even_in_a_busy_channel(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    lose_the_first_answer_to(st)
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    st.fake.after_success = None
    for i in range(450):  # people keep talking: the prompt is pages back in the history
        st.services.slack.post(p.channel_id, text=f"chatter {i}")
    st.at(local("Europe/Berlin", 2026, 3, 2, 10, 0))
    assert len(prompts(st, p)) == 1 and len(rounds(st)) == 1


def test_a_lost_answer_to_an_answer_reply_does_not_post_it_twice(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    lost = lose_the_first_answer_to(st)
    answer(st, prompt, BOB, "shipped")
    st.fake.after_success = None
    answer(st, prompt, BOB, "shipped and tested")  # an edit updates the one reply
    [reply] = st.fake.replies(p.channel_id, prompt["ts"])
    assert reply["ts"] == lost[0] and "shipped and tested" in flatten(reply)


def test_history_keeps_who_was_away_when_a_round_closed(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    answer(st, prompts(st, p)[0], ALICE, "x")
    st.at(local("Europe/Berlin", 2026, 3, 2, 13, 30))
    st.clock.set(local("Europe/Berlin", 2026, 3, 2, 14, 0))
    st.services.checkins.set_away(user_id=BOB, until_text="2026-03-27")  # Bob's holiday starts later
    _, [(_, t)] = st.services.checkins.history(channel_id=p.channel_id, actor=ALICE)
    assert t.missing == [BOB] and t.away == [] and t.rate == 0.5


def test_a_participant_who_cannot_be_reminded_does_not_flood_the_owners(st: Stack) -> None:
    p = st.partnership(members=[CAROL])
    schedule(st, p, "daily 09:30")
    with st.fake.lock:
        del st.fake.users[CAROL]  # her account is gone: Slack refuses to open a DM with her
    for day in (2, 3):
        for hour, minute in ((9, 30), (11, 30), (13, 30)):
            st.at(local("Europe/Berlin", 2026, 3, day, hour, minute))
    assert not [m for m in st.fake.dm_messages(ALICE) if "could not" in flatten(m)]
    assert {o.state for o in st.occurrences(kind="checkin_remind") if CAROL in o.key} == {OccurrenceState.FAILED}


def test_changing_a_paused_schedule_keeps_it_paused_and_says_so(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    svc = st.services.checkins
    schedule(st, p, "daily 09:30")
    svc.pause(channel_id=p.channel_id, actor=ALICE)
    assert "none while paused" in schedule(st, p, "daily 10:00")
    assert svc.overview(channel_id=p.channel_id, actor=ALICE).schedule.paused  # type: ignore[union-attr]
    st.at(local("Europe/Berlin", 2026, 3, 2, 10, 0))
    assert prompts(st, p) == []
    with pytest.raises(Invalid, match="are paused"):
        svc.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t")


def test_question_kinds_are_saved_and_each_round_keeps_the_kinds_it_was_asked_with(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id and p.id
    svc = st.services.checkins
    schedule(st, p, "mon 09:30")
    _, questions = svc.prepare_questions(channel_id=p.channel_id, actor=ALICE)
    assert [q.kind for q in questions] == [QuestionKind.PLAIN, QuestionKind.PLAIN, QuestionKind.BLOCKER,
                                           QuestionKind.NEED]  # the defaults
    told = svc.save_questions(partnership_id=p.id, actor=ALICE, questions=[
        "What shipped?", "Need: Which access is missing?", "blocker: What is in the way?"]).text()
    assert "ask 3 question(s) (1 about blockers, 1 about needs from the partner" in told
    schedule(st, p, "mon,tue 09:30")  # a quick schedule change keeps them
    with st.services.uow() as s:
        sched = s.exec(select(CheckinSchedule)).one()
        assert (sched.questions, sched.question_kinds) == (
            ["What shipped?", "Which access is missing?", "What is in the way?"], ["plain", "need", "blocker"])
    with pytest.raises(Invalid, match="Write the question after 'Need:'"):
        svc.save_questions(partnership_id=p.id, actor=ALICE, questions=["What shipped?", "Need:  "])

    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    [prompt] = prompts(st, p)
    answer(st, prompt, BOB, "v2", "the staging VPN", "legal review")
    svc.save_questions(partnership_id=p.id, actor=ALICE, questions=["What shipped?", "Anything else?"])
    with st.services.uow() as s:
        r = s.exec(select(CheckinRound)).one()
        assert r.question_kinds == ["plain", "need", "blocker"]  # asked with these, whatever changed since
        [a] = s.exec(select(CheckinAnswer)).all()
    st.at(local("Europe/Berlin", 2026, 3, 2, 13, 30))
    blocks = st.fake.message(p.channel_id, prompt["ts"])["blocks"]
    listed = [(flatten(b), b["accessory"]["value"]) for b in blocks if b.get("accessory")]
    assert listed == [(f"<@{BOB}>: legal review _(What is in the way?)_", f"{a.id}:2"),
                      (f"<@{BOB}>: the staging VPN _(Which access is missing?)_", f"{a.id}:1")]

    st.at(local("Europe/Berlin", 2026, 3, 3, 9, 30))  # the next round asks the new questions, all plain
    with st.services.uow() as s:
        latest = s.exec(select(CheckinRound).order_by(col(CheckinRound.id).desc())).first()
        assert latest is not None and latest.question_kinds == ["plain", "plain"]


def test_questions_need_a_schedule_first(st: Stack) -> None:
    p = st.partnership()
    assert p.channel_id
    with pytest.raises(Invalid, match="no check-in schedule yet"):
        st.services.checkins.prepare_questions(channel_id=p.channel_id, actor=ALICE)


def test_while_down_a_reminder_past_the_close_is_dropped_but_the_summary_is_never_skipped(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    st.at(local("Europe/Berlin", 2026, 3, 2, 20, 0))  # down from 09:31 until the evening
    assert st.fake.dm_messages(BOB) == []  # a reminder after the close would only confuse
    assert {o.state for o in st.occurrences(kind="checkin_remind")} == {OccurrenceState.SKIPPED}
    assert "(closed)" in flatten(st.fake.message(p.channel_id, prompt["ts"]))  # the summary, hours late


# -- answers shown exactly once ----------------------------------------------------------------------------------
def test_a_double_submit_shows_one_reply_with_the_latest_answers(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    svc = st.services.checkins
    svc.submit_answer(round_key=round_key(prompt), user_id=BOB, answers=["shipped"])
    svc.submit_answer(round_key=round_key(prompt), user_id=BOB, answers=["shipped and tested"])  # before any tick
    st.tick()
    [reply] = st.fake.replies(p.channel_id, prompt["ts"])
    assert "shipped and tested" in flatten(reply)


def test_answers_saved_by_a_process_that_died_before_posting_are_shown_after_a_restart(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    st.services.checkins.submit_answer(round_key=round_key(prompt), user_id=BOB, answers=["shipped"])
    st.restart()  # it died right after saving them
    st.tick()
    [reply] = st.fake.replies(p.channel_id, prompt["ts"])
    assert f"<@{BOB}> answered" in flatten(reply) and "shipped" in flatten(reply)


def test_an_edit_while_the_reply_is_being_posted_shows_the_edit_in_the_one_reply(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    svc = st.services.checkins
    edited: list[bool] = []

    def edit_meanwhile(method: str, args: dict[str, Any], body: dict[str, Any]) -> None:
        if method == "chat.postMessage" and args.get("thread_ts") and not edited:
            edited.append(True)  # Bob submits his edit while his first answers are on their way to Slack
            svc.submit_answer(round_key=round_key(prompt), user_id=BOB, answers=["shipped and tested"])

    st.fake.after_success = edit_meanwhile
    answer(st, prompt, BOB, "shipped")
    [reply] = st.fake.replies(p.channel_id, prompt["ts"])
    assert edited and "shipped and tested" in flatten(reply)


def test_answers_slack_refuses_to_show_are_kept_and_their_author_is_told(st: Stack) -> None:
    p, prompt = prompted(st)
    assert p.channel_id
    st.fake.fail("chat.postMessage", "restricted_action_thread_locked")
    answer(st, prompt, BOB, "shipped")
    assert st.fake.replies(p.channel_id, prompt["ts"]) == []
    [notice] = st.fake.dm_messages(BOB)
    assert "could not show your check-in answers" in flatten(notice)
    assert "restricted_action_thread_locked" in flatten(notice)
    form = st.services.checkins.answer_form(round_key=round_key(prompt), user_id=BOB)
    assert form["blocks"][1]["element"]["initial_value"] == "shipped"  # nothing lost: answering again retries
    answer(st, prompt, BOB, "shipped")
    assert len(st.fake.replies(p.channel_id, prompt["ts"])) == 1


# -- failures that say what to do, once ---------------------------------------------------------------------------
def test_a_channel_archived_by_hand_stops_the_check_ins_with_one_notice(st: Stack) -> None:
    p = st.partnership(owners=[ALICE, BOB])
    assert p.channel_id
    schedule(st, p, "daily 09:30")
    with st.fake.lock:
        st.fake.channels[p.channel_id].is_archived = True
    tries = lambda: sum(1 for m, a in st.fake.calls if a.get("channel") == p.channel_id)  # noqa: E731
    before = tries()
    for day in (2, 3, 4):
        st.at(local("Europe/Berlin", 2026, 3, day, 9, 30))
        st.at(local("Europe/Berlin", 2026, 3, day, 13, 30))
    for owner in (ALICE, BOB):
        [notice] = st.fake.dm_messages(owner)
        assert "was archived, so Partnerbot stopped its scheduled check-ins" in flatten(notice)
    assert tries() - before == 1  # one failed post; nothing more is tried or planned for it
    first, *later = [o.state for o in st.occurrences(kind="checkin_prompt")]
    assert first == OccurrenceState.FAILED and OccurrenceState.FAILED not in later


def test_the_bot_removed_from_the_channel_is_told_once_until_a_prompt_is_posted_again(st: Stack) -> None:
    p = st.partnership(owners=[ALICE])
    assert p.channel_id
    schedule(st, p, "daily 09:30")
    st.fake.channels[p.channel_id].members.discard(st.fake.bot_user_id)
    for day in (2, 3, 4):
        st.at(local("Europe/Berlin", 2026, 3, day, 9, 30))
        st.at(local("Europe/Berlin", 2026, 3, day, 13, 30))
    [notice] = st.fake.dm_messages(ALICE)
    assert "Invite Partnerbot back to the channel" in flatten(notice)
    st.fake.channels[p.channel_id].members.add(st.fake.bot_user_id)  # back in: the next prompt is posted
    st.at(local("Europe/Berlin", 2026, 3, 5, 9, 30))
    assert [m for m in st.fake.messages(p.channel_id) if m.get("text", "").startswith("Check-in time")]
    st.fake.channels[p.channel_id].members.discard(st.fake.bot_user_id)  # removed again: told again, once
    for day in (6, 7):
        st.at(local("Europe/Berlin", 2026, 3, day, 9, 30))
    assert len(st.fake.dm_messages(ALICE)) == 2


def test_a_reminder_that_cannot_be_delivered_is_listed_in_the_summary(st: Stack) -> None:
    p = st.partnership(members=[BOB, CAROL])
    assert p.channel_id
    schedule(st, p, "mon 09:30")
    st.fake.deactivate(CAROL)
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 30))
    st.at(local("Europe/Berlin", 2026, 3, 2, 13, 30))
    [r] = rounds(st)
    summary = st.fake.message(p.channel_id, r.prompt_ts or "")
    assert f"*Could not be reminded:* <@{CAROL}> (`user_disabled`: deactivated)" in flatten(summary)
    assert not [m for m in st.fake.dm_messages(ALICE) if "could not" in flatten(m)]  # no flood of DMs either


def test_a_second_check_in_now_is_refused_while_one_is_open(st: Stack) -> None:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    svc = st.services.checkins
    svc.run_now(channel_id=p.channel_id, actor=BOB, request_key="t1")
    with pytest.raises(Invalid, match="just started"):
        svc.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t2")
    st.tick()
    with pytest.raises(Invalid, match=r"is open until Mon 02 Mar 2026 11:00 CET: answer that one"):
        svc.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t3")
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 0))  # it closed
    svc.run_now(channel_id=p.channel_id, actor=ALICE, request_key="t4")
    st.tick()
    assert [r.started_by for r in rounds(st)] == [BOB, ALICE]


def test_a_prompt_for_chosen_participants_takes_only_them_and_counts_who_of_them_is_away(st: Stack) -> None:
    p = st.partnership(members=[BOB, CAROL, DAN])
    assert p.id is not None
    inp = validate(ScheduleInput, weekdays="mon", local_time="09:30", timezone="Europe/Berlin",
                   participant_mode=ParticipantMode.CHOSEN, participants=[BOB, DAN])
    st.services.checkins.save_schedule(partnership_id=p.id, actor=ALICE, inp=inp)
    st.services.checkins.set_away(user_id=DAN, until_text="until 2026-03-06")
    st.at(local("Europe/Berlin", 2026, 3, 2, 9, 30))
    [prompt] = prompts(st, p)
    assert f"<@{BOB}>" in flatten(prompt) and "1 away" in flatten(prompt)
    assert f"<@{ALICE}>" not in flatten(prompt) and f"<@{CAROL}>" not in flatten(prompt)
    st.at(local("Europe/Berlin", 2026, 3, 2, 11, 30))  # the reminder, halfway: only Bob is expected
    assert [len(st.fake.dm_messages(u)) for u in (ALICE, BOB, CAROL, DAN)] == [0, 1, 0, 0]
