"""The shared command-text helpers: quoted arguments (straight and curly quotes), dates as typed, and check-in
questions with their kinds as the forms take them."""

from __future__ import annotations

from datetime import date

import pytest

from blocks.text import escape
from models.checkin import Question, QuestionKind
from services.errors import Invalid
from services.inputs import (
    ScheduleInput,
    looks_like_date,
    mentioned_users,
    parse_date,
    parse_side,
    slack_plain,
    split_questions,
    split_quoted,
    validate,
    validate_questions,
)


@pytest.mark.parametrize(("text", "tokens"), [
    ('"Pilot live" 2026-03-20', ["Pilot live", "2026-03-20"]),
    ("\u201cPilot live\u201d 2026-03-20", ["Pilot live", "2026-03-20"]),  # “…” as phones type them
    ("\u201ePilot live\u201c next", ["Pilot live", "next"]),  # „…“ (German)
    ("\u201dPilot live\u201d x", ["Pilot live", "x"]),  # ”…” (some keyboards use the closing mark twice)
    ('"Which day?" "Mon" \u201cTue\u201d', ["Which day?", "Mon", "Tue"]),
    ("<@U1|ana maria> <@U2> thanks", ["<@U1|ana maria>", "<@U2>", "thanks"]),  # entities stay whole
    ('  spaced   out  ', ["spaced", "out"]),
    ('"unclosed title 2026-03-20', ["unclosed title 2026-03-20"]),
    ('"" empty', ["empty"]),
    ("", []),
])
def test_split_quoted(text: str, tokens: list[str]) -> None:
    assert split_quoted(text) == tokens


def test_dates_as_typed() -> None:
    assert parse_date("2026-3-5") == date(2026, 3, 5)
    assert looks_like_date("2026-03-20") and not looks_like_date("20/03/2026") and not looks_like_date("2026-03")
    for bad in ("2026-02-30", "2026-13-01", "tomorrow"):
        with pytest.raises(ValueError, match="use YYYY-MM-DD"):
            parse_date(bad)


def test_check_in_question_lines_set_their_kind_by_prefix() -> None:
    typed = "1. What shipped?\n- Blocker: What is in the way?\n\nNEED:Which access is missing?\nNeedless to say?"
    assert validate_questions(split_questions(typed)) == [
        Question("What shipped?"), Question("What is in the way?", QuestionKind.BLOCKER),
        Question("Which access is missing?", QuestionKind.NEED), Question("Needless to say?"),  # no colon: plain
    ]
    inp = validate(ScheduleInput, weekdays="mon", local_time="09:30", timezone="UTC", questions=typed)
    assert [q.kind for q in inp.questions] == [QuestionKind.PLAIN, QuestionKind.BLOCKER, QuestionKind.NEED,
                                               QuestionKind.PLAIN]


@pytest.mark.parametrize(("lines", "error"), [
    (["What shipped?", "Need:"], "Write the question after 'Need:'"),
    (["Blocker: " + "x" * 151], "is 151 characters long; the limit is 150"),  # the prefix does not count
    ([f"Q{i}?" for i in range(7)], "There are 7 questions; the limit is 6: remove 1"),
    ([], "Give at least one question"),
])
def test_check_in_questions_refused_say_what_to_change(lines: list[str], error: str) -> None:
    with pytest.raises(Invalid, match=error) as refused:
        validate_questions(lines)
    assert error in refused.value.fields["questions"]  # shown under the form's field


def test_slack_text_reads_as_a_person_sees_it_with_names_for_people_mentioned_by_id() -> None:
    raw = "<@U1> and <@U2|ana> and <@W3> in <#C1|general>: <https://x.test|the doc>, <mailto:a@b.test|mail> &lt;ok&gt;"
    assert mentioned_users(raw + " <@U1>") == ["U1", "W3"]  # once each; a mention with its name needs no lookup
    said = "in #general: the doc (https://x.test), mail (a@b.test) <ok>"
    assert slack_plain(raw, {"U1": "bob"}) == f"@bob and @ana and @W3 {said}"
    assert slack_plain(raw) == f"@U1 and @ana and @W3 {said}"  # a person nobody named keeps their id, not markup


@pytest.mark.parametrize(("raw", "plain"), [
    # User groups: the handle once, not "@@team"; without a handle, the group's id.
    ("ask <!subteam^S0123|@support-team> now", "ask @support-team now"),
    ("<!subteam^S0123>", "@S0123"),
    # Dates: the fallback text Slack shows where it cannot format; without one, the moment in UTC.
    ("due <!date^1392734382^{date_short}|Feb 18>", "due Feb 18"),
    ("<!date^1392734382^{date_short}^https://x.test|Feb 18, 2014>", "Feb 18, 2014"),
    ("<!date^1392734382^{date}>", "2014-02-18 14:39 UTC"),
    # Broadcasts, also in the older form with a label.
    ("<!here> <!channel> <!everyone> <!here|@here>", "@here @channel @everyone @here"),
    # Links: the label and where it leads; an address as typed (Slack links it with itself as label) once.
    ("see <https://x.test/a?b=1&amp;c=2|the runbook>", "see the runbook (https://x.test/a?b=1&c=2)"),
    ("<https://x.test/y>", "https://x.test/y"),
    ("<http://example.com|example.com> <https://example.com/|example.com>", "example.com example.com"),
    ("<mailto:ana@x.test|ana@x.test>", "ana@x.test"),
    ("<#C1> <#C2|#ops>", "#C1 #ops"),
])
def test_each_slack_token_reads_naturally(raw: str, plain: str) -> None:
    assert slack_plain(raw) == plain


def test_nothing_the_readable_text_gives_can_mention_anyone_once_escaped() -> None:
    raw = ("<!here> <!channel> <!subteam^S1|@team> <@U1> &lt;!everyone&gt; &lt;@U2&gt; "
           "<https://x.test|&lt;!channel&gt;> <!date^1392734382^{date}|&lt;!here&gt;>")
    shown = escape(slack_plain(raw))
    assert "<" not in shown and ">" not in shown  # no markup left: Slack mentions only through <…>
    assert shown.startswith("@here @channel @team @U1 &lt;!everyone&gt; &lt;@U2&gt;")


def test_a_side_in_words() -> None:
    from models.partnership import Side

    assert [parse_side(w) for w in ("ours", "Our side", "partner", "partner-side", "partner\u2019s", None)] == [
        Side.OURS, Side.OURS, Side.PARTNER, Side.PARTNER, Side.PARTNER, None]
    with pytest.raises(Invalid, match="is not a side"):
        parse_side("upstairs")
