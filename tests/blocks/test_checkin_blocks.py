"""Check-in Block Kit: valid within Slack's limits at the extremes, user text escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from blocks import checkins as cb
from blocks import ids
from models.checkin import (
    ANSWER_MAX,
    QUESTION_MAX,
    QUESTIONS_MAX,
    CheckinAnswer,
    CheckinRound,
    CheckinSchedule,
    Question,
    QuestionKind,
    questions_of,
    tally,
)
from tests.blocks.blockkit import assert_valid_message_blocks, assert_valid_view, mrkdwn_texts

HOSTILE = "<!channel> <@U999> <https://evil.example|click> &"
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
PEOPLE = [f"U{i:03d}" for i in range(120)]


def _round(**kw: object) -> CheckinRound:
    values: dict[str, object] = dict(
        id=1, key="checkin:1:2026-03-02", partnership_id=1, local_date=date(2026, 3, 2), timezone="Europe/Berlin",
        scheduled_for=NOW - timedelta(hours=1), opened_at=NOW, closes_at=NOW + timedelta(hours=4), delayed=True,
        questions=[HOSTILE[:QUESTION_MAX] + " blockers?"] + [f"Q{i}?" for i in range(QUESTIONS_MAX - 1)],
        question_kinds=["blocker"] + ["need"] * (QUESTIONS_MAX - 1),
        participants=PEOPLE, away=PEOPLE[:5], channel_id="C1", prompt_ts="1.0",
    )
    values.update(kw)
    return CheckinRound(**values)


def test_prompt_and_summary_stay_valid_with_many_people_and_long_blockers() -> None:
    r = _round()
    prompt = cb.prompt_blocks(HOSTILE, r, round_key=r.key)
    assert_valid_message_blocks(prompt)
    text = mrkdwn_texts(prompt)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "Delayed" in text
    answers = [CheckinAnswer(id=i, round_id=1, user_id=u, answers=[HOSTILE * 40][:1] * QUESTIONS_MAX)
               for i, u in enumerate(PEOPLE[5:90])]
    t = tally(r, answers, away_now=set())
    assert len(t.answered) == 85 and len(t.missing) == 30 and len(t.flagged) == 85 * QUESTIONS_MAX
    summary = cb.summary_blocks(HOSTILE, r, t)
    assert_valid_message_blocks(summary)
    assert "<!channel>" not in mrkdwn_texts(summary) and "85 of 115 answered (74%)" in mrkdwn_texts(summary)
    # Over Slack's 50-block cap: 85 blockers and 425 needs, each kind keeps a fair share, the rest is counted.
    shown = [mrkdwn_texts(b).rsplit("_(", 1)[1] for b in summary if b.get("accessory")]
    needs = sum(k.startswith("Q") for k in shown)
    assert len(summary) == 50 and needs == len(shown) - needs == 21
    assert f"…and {510 - 42} more blocker and need answers" in mrkdwn_texts(summary[-1])


def test_answer_reply_escapes_and_keeps_long_answers_within_limits() -> None:
    blocks = cb.answer_reply_blocks("U1", _round().questions, ["x" * ANSWER_MAX, HOSTILE, ""])
    assert_valid_message_blocks(blocks)
    assert "<!channel>" not in mrkdwn_texts(blocks) and "_no answer_" in mrkdwn_texts(blocks)


def test_modals_are_valid_with_existing_values_and_at_the_limits() -> None:
    r = _round()
    assert_valid_view(cb.answer_modal(HOSTILE, r, round_key=r.key, answers=["a" * ANSWER_MAX] * QUESTIONS_MAX))
    schedule = CheckinSchedule(partnership_id=1, weekdays="mon,fri", local_time="07:45", timezone="Asia/Kolkata",
                               questions=["q" * QUESTION_MAX] * QUESTIONS_MAX, question_kinds=["need"] * QUESTIONS_MAX,
                               window_minutes=90,
                               remind_before_close_minutes=45, participants=PEOPLE[:3], updated_by="U1")
    for sched in (None, schedule):
        assert_valid_view(cb.setup_modal(partnership_id=1, partnership_name=HOSTILE, timezone="UTC", schedule=sched,
                                         response_url="https://hooks.slack.com/commands/T/1/x"))
    modal = cb.setup_modal(partnership_id=1, partnership_name="Acme", timezone="UTC", schedule=schedule)
    by_id = {b.get("block_id"): b for b in modal["blocks"]}
    assert by_id["window"]["element"]["initial_option"]["value"] == "90"  # a value not among the choices
    assert by_id["reminder"]["element"]["initial_option"]["value"] == "45"
    assert [o["value"] for o in by_id["weekdays"]["element"]["initial_options"]] == ["mon", "fri"]
    assert_valid_view(cb.questions_modal(partnership_id=1, partnership_name=HOSTILE, questions=questions_of(schedule)))


def test_overview_and_history_are_valid() -> None:
    schedule = CheckinSchedule(partnership_id=1, weekdays="mon,wed", local_time="09:30", timezone="Europe/Berlin",
                               questions=[HOSTILE], participants=[], updated_by="U1", paused=True)
    for sched in (None, schedule):
        blocks = cb.overview_blocks(HOSTILE, sched, next_due=NOW, participants=PEOPLE,
                                    away={u: date(2026, 12, 24) for u in PEOPLE[:40]})
        assert_valid_message_blocks(blocks)
        assert "<!channel>" not in mrkdwn_texts(blocks)
    r = _round(status="closed", closed_at=NOW + timedelta(hours=4))
    rounds = [(r, tally(r, [], set()))] * 60
    assert_valid_message_blocks(cb.history_blocks(HOSTILE, rounds))


def _summary_round(kinds: list[str]) -> CheckinRound:
    return _round(questions=["What moved?", "Anything in the way?", "What should Acme send us?"][: len(kinds)],
                  question_kinds=kinds, participants=PEOPLE[:3], away=[], status="closed", closed_at=NOW)


def test_the_summary_lists_blocker_and_need_answers_under_their_kind_each_with_a_log_as_issue_button() -> None:
    r = _summary_round(["plain", "blocker", "need"])
    answers = [
        CheckinAnswer(id=7, round_id=1, user_id="U000", answers=["pilot live", "legal <!here> review", "n/a"]),
        CheckinAnswer(id=8, round_id=1, user_id="U001", answers=["", "None", "the API keys"]),
        CheckinAnswer(id=9, round_id=1, user_id="U002", answers=["shipped", "security sign-off", ""]),
    ]
    summary = cb.summary_blocks("Acme", r, tally(r, answers, set()))
    assert_valid_message_blocks(summary)
    texts = [mrkdwn_texts(b) for b in summary]
    start, needs = texts.index("*Blockers*"), texts.index("*Needs from the partner*")
    blockers = summary[start + 1 : needs]
    assert [mrkdwn_texts(b) for b in blockers] == [
        "<@U000>: legal &lt;!here&gt; review _(Anything in the way?)_",
        "<@U002>: security sign-off _(Anything in the way?)_",
    ]
    assert [(b["accessory"]["action_id"], b["accessory"]["value"], b["accessory"]["text"]["text"])
            for b in blockers] == [(ids.ISSUE_FROM_ANSWER, "7:1", "Log as issue"), (ids.ISSUE_FROM_ANSWER, "9:1",
                                                                                    "Log as issue")]
    need = summary[needs + 1]
    assert mrkdwn_texts(need) == "<@U001>: the API keys _(What should Acme send us?)_"
    assert need["accessory"]["value"] == "8:2"
    assert ids.ISSUE_FROM_ANSWER == "issue_from_answer"
    assert "pilot live" not in "\n".join(texts)  # plain answers stay in the thread


def test_the_summary_says_none_reported_for_a_kind_asked_without_answers_and_nothing_for_kinds_not_asked() -> None:
    r = _summary_round(["plain", "blocker"])
    answers = [CheckinAnswer(id=1, round_id=1, user_id="U000", answers=["pilot live", "no blockers"])]
    texts = mrkdwn_texts(cb.summary_blocks("Acme", r, tally(r, answers, set())))
    assert "*Blockers:* none reported" in texts and "Needs from the partner" not in texts
    plain_only = _summary_round(["plain", "plain"])
    texts = mrkdwn_texts(cb.summary_blocks("Acme", plain_only, tally(plain_only, answers, set())))
    assert "Blockers" not in texts and "Needs" not in texts


def test_questions_read_as_plain_when_a_row_has_no_kinds_and_forms_show_them_with_their_prefix() -> None:
    old = _round(questions=["Any blockers?", "What do we need?"], question_kinds=[])
    assert questions_of(old) == [Question("Any blockers?"), Question("What do we need?")]  # no guess any more
    odd = _round(questions=["A?", "B?", "C?"], question_kinds=["need", "urgent"])
    assert [q.kind for q in questions_of(odd)] == [QuestionKind.NEED, QuestionKind.PLAIN, QuestionKind.PLAIN]
    questions = [Question("What moved?"), Question("Any blockers?", QuestionKind.BLOCKER),
                 Question("What do we need from <!channel>?", QuestionKind.NEED)]
    modal = cb.questions_modal(partnership_id=1, partnership_name="Acme", questions=questions)
    field = next(b for b in modal["blocks"] if b.get("block_id") == ids.F_QUESTIONS)
    assert field["element"]["initial_value"] == (
        "What moved?\nBlocker: Any blockers?\nNeed: What do we need from <!channel>?")
    assert "Blocker:" in field["hint"]["text"] and "Need:" in field["hint"]["text"]
    assert [Question.from_line(line) for line in field["element"]["initial_value"].splitlines()] == questions
    schedule = CheckinSchedule(partnership_id=1, weekdays="mon", local_time="09:30", timezone="UTC",
                               questions=[q.text for q in questions], question_kinds=[q.kind.value for q in questions],
                               updated_by="U1")
    overview = mrkdwn_texts(cb.overview_blocks("Acme", schedule, next_due=None, participants=[], away={}))
    assert "1. What moved?\n2. Any blockers? _(blocker)_\n3. What do we need from &lt;!channel&gt;? _(need from the " \
           "partner)_" in overview
