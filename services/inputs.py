"""Typed, validated inputs of the use cases (parsed from commands and modals)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from blocks.text import escape, truncate
from models.checkin import (
    DEFAULT_QUESTIONS,
    DEFAULT_WINDOW_MINUTES,
    KIND_PREFIXES,
    QUESTION_MAX,
    QUESTIONS_MAX,
    WINDOW_MAX_MINUTES,
    WINDOW_MIN_MINUTES,
    ParticipantMode,
    Question,
)
from models.issue import ISSUE_DESCRIPTION_MAX, ISSUE_TITLE_MAX
from models.milestone import DONE_MEANS_MAX, TITLE_MAX
from models.partnership import EMAIL_MAX, GOALS_MAX, NAME_MAX, PARTNER_ORG_MAX, REASON_MAX, Role, Side
from models.poll import (
    POLL_AHEAD_MAX_DAYS,
    POLL_OPTION_MAX,
    POLL_OPTIONS_MAX,
    POLL_OPTIONS_MIN,
    POLL_QUESTION_MAX,
    PollAudience,
    PollKind,
    ResultsMode,
)
from models.pulse import (
    DEFAULT_OPEN_DAYS,
    DEFAULT_PULSE_QUESTIONS,
    OPEN_DAYS_MAX,
    OPEN_PREFIX,
    PULSE_QUESTION_MAX,
    PULSE_QUESTIONS_MAX,
    Audience,
    CadenceKind,
    QuestionKind,
)
from services.errors import Invalid
from services.recurrence import LAST, Cadence, parse_local_time, parse_weekdays
from services.sla import Severity

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

T = TypeVar("T", bound=BaseModel)


def split_emails(raw: str | None) -> list[str]:
    """Split a free-text list of emails on commas, semicolons, spaces and new lines."""
    return [part for part in re.split(r"[\s,;]+", raw or "") if part]


def check_email(value: str) -> str:
    value = value.strip().strip("<>")
    if value.startswith("mailto:"):  # Slack auto-links emails as <mailto:a@b.c|a@b.c>
        value = value.split("|", 1)[-1]
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise ValueError(f"'{value[:60]}' is not an email address (expected name@company.com)")
    return value.lower()


def check_timezone(value: str) -> str:
    value = (value or "").strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{value[:60]}' is not a time zone: use an IANA name such as Europe/Berlin or America/New_York"
        ) from None
    return value


def _limit(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


class NewPartnership(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str
    partner_org: str = ""
    goals: str = ""
    timezone: str
    is_private: bool = False
    owners: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    partner_emails: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise ValueError("Give the partnership a name")
        return _limit("The name", value, NAME_MAX)

    @field_validator("partner_org")
    @classmethod
    def _org(cls, value: str) -> str:
        return _limit("The partner organization", value, PARTNER_ORG_MAX)

    @field_validator("goals")
    @classmethod
    def _goals(cls, value: str) -> str:
        return _limit("The goals", value, GOALS_MAX)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("owners", "members")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in value if _USER_ID.match(v)))

    @field_validator("partner_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_email(v) for v in value))


class CloseRequest(BaseModel):
    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _limit("The reason", value.strip(), REASON_MAX)


_SLACK_ENTITY = re.compile(r"<([@#!])([^>|]*)(?:\|([^>]*))?>|<(?:mailto:)?([^>|]*)(?:\|([^>]*))?>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|)?>")
_BROADCASTS = frozenset({"here", "channel", "everyone"})


def slack_plain(text: str | None, names: Mapping[str, str] | None = None) -> str:
    """Slack-formatted text as a person reads it, as plain text: `<@U1|ana>` -> `@ana` (`<@U1>` -> `@` and its
    name in `names`, else its id), `<!here>` `<!channel>` `<!everyone>` -> `@here` …, a user group
    `<!subteam^S1|@team>` -> `@team`, a date `<!date^1392734382^{date_short}|Feb 18>` -> its fallback text
    `Feb 18`, `<#C1|x>` -> `#x`, a link -> its label followed by its address in brackets
    (`<https://x|the doc>` -> `the doc (https://x)`; one whose label is its address, as Slack marks up an address
    someone typed, -> the label alone), and the &amp; &lt; &gt; entities -> characters.

    The result is text to show, never markup: escaped again wherever the bot shows it (a `<` may come from
    `&lt;`), it mentions nobody, since a mention needs Slack's `<…>` markup and the bot posts without
    `link_names` (so `@here` or `@team` stays text)."""

    def repl(m: re.Match[str]) -> str:
        if not m.group(1):
            return _link(m.group(4) or "", m.group(5))
        sigil, target, label = m.group(1), m.group(2), (m.group(3) or "").lstrip("@#")
        if sigil == "@":
            return "@" + (label or (names or {}).get(target) or target)
        if sigil == "#":
            return "#" + (label or target)
        command, _, rest = target.partition("^")
        if command == "date":  # `<!date^seconds^format^link|fallback>`: Slack shows it in the reader's time zone
            return m.group(3) or _date_fallback(rest.partition("^")[0])
        if command in _BROADCASTS:
            return "@" + command
        return "@" + (label or rest or command)  # a user group (`subteam^S1`), or a mention Slack may add later

    return html.unescape(_SLACK_ENTITY.sub(repl, text or "")).strip()


def _link(url: str, label: str | None) -> str:
    """A link as text: its label and its address (the label alone when it is the address, with or without the
    scheme: Slack links an address someone typed that way)."""
    if not label or label == url:
        return label or url
    bare = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.IGNORECASE).rstrip("/")
    return label if label.rstrip("/") in (bare, url.rstrip("/")) else f"{label} ({url})"


def _date_fallback(seconds: str) -> str:
    """A date token without its fallback text (Slack requires one): the moment in UTC."""
    try:
        return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return "a date"


def mentioned_users(text: str | None) -> list[str]:
    """The people mentioned by id alone (`<@U1>`, no name beside it) in Slack-formatted text, once each, in order."""
    return list(dict.fromkeys(_USER_MENTION.findall(text or "")))

def parse_role(raw: str | None) -> Role | None:
    """A role from what the person typed (plain text); Invalid, echoing it escaped, when it is none."""
    if not raw:
        return None
    key = raw.strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"partner": Role.PARTNER_CONTACT, "contact": Role.PARTNER_CONTACT, "exec": Role.SPONSOR}
    if key in aliases:
        return aliases[key]
    try:
        return Role(key)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise Invalid(f"'{escape(truncate(raw, 40))}' is not a role. Use one of: {choices}.") from None



_SIDES = {"ours": Side.OURS, "our": Side.OURS, "us": Side.OURS, "partner": Side.PARTNER, "partners": Side.PARTNER,
          "partner's": Side.PARTNER, "theirs": Side.PARTNER}


def parse_side(raw: str | None) -> Side | None:
    """A side from what the person typed ("ours", "partner", also "partner-side", "our side"); Invalid, echoing it
    escaped, when it is none."""
    if not raw:
        return None
    key = re.sub(r"[\s_-]*side$", "", raw.strip().lower().replace("\u2019", "'"))
    if key in _SIDES:
        return _SIDES[key]
    raise Invalid(f"'{escape(truncate(raw, 40))}' is not a side. Use `ours` or `partner`, e.g. "
                  "`/partner add @ana sponsor partner`.")

class ScheduleInput(BaseModel):
    """A check-in schedule: weekdays and a local time in a zone, the questions, the response window,
    when to remind, and who takes part."""

    model_config = ConfigDict(str_strip_whitespace=True)

    weekdays: tuple[str, ...]
    local_time: str
    timezone: str
    questions: list[Question] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS))
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    remind_before_close_minutes: int | None = None  # None: halfway; 0: no reminder
    participant_mode: ParticipantMode = ParticipantMode.ALL
    participants: list[str] = Field(default_factory=list)

    @field_validator("weekdays", mode="before")
    @classmethod
    def _days(cls, value: object) -> tuple[str, ...]:
        text = ",".join(value) if isinstance(value, (list, tuple)) else str(value or "")
        if not text.strip():
            raise ValueError("Pick at least one weekday")
        return parse_weekdays(text)

    @field_validator("local_time")
    @classmethod
    def _time(cls, value: str) -> str:
        return parse_local_time(value).strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("questions", mode="before")
    @classmethod
    def _questions(cls, value: Any) -> list[Question]:
        return check_questions(split_questions(value) if isinstance(value, str) else list(value or []))

    @field_validator("window_minutes")
    @classmethod
    def _window(cls, value: int) -> int:
        if not WINDOW_MIN_MINUTES <= value <= WINDOW_MAX_MINUTES:
            raise ValueError(
                f"The response window must be between {WINDOW_MIN_MINUTES} minutes and "
                f"{WINDOW_MAX_MINUTES // 60} hours"
            )
        return value

    @field_validator("remind_before_close_minutes")
    @classmethod
    def _remind(cls, value: int | None, info: ValidationInfo) -> int | None:
        window = info.data.get("window_minutes")
        if value is not None and window is not None and not 0 <= value < window:
            raise ValueError("The reminder must come before the response window closes")
        return value

    @field_validator("participants")
    @classmethod
    def _people(cls, value: list[str], info: ValidationInfo) -> list[str]:
        people = list(dict.fromkeys(v for v in value if _USER_ID.match(v)))
        if info.data.get("participant_mode") == ParticipantMode.CHOSEN and not people:
            raise ValueError("Choose at least one participant, or let all members take part")
        return people


def check_questions(value: Sequence[str | Question]) -> list[Question]:
    """Check-in questions from lines of the forms (`Blocker: ...`, `Need: ...` or plain) or Questions."""
    parsed = [q if isinstance(q, Question) else Question.from_line(q or "") for q in value]
    # Empty lines go; a kind's prefix without its question stays, to be refused below.
    questions = [Question(q.text.strip(), q.kind) for q in parsed if q.text.strip() or q.kind in KIND_PREFIXES]
    if not questions:
        raise ValueError("Give at least one question")
    if len(questions) > QUESTIONS_MAX:
        raise ValueError(f"There are {len(questions)} questions; the limit is {QUESTIONS_MAX}: remove "
                         f"{len(questions) - QUESTIONS_MAX}")
    for q in questions:
        if not q.text:
            raise ValueError(f"Write the question after '{KIND_PREFIXES[q.kind]}'")
        _limit(f"The question '{q.text[:30]}…'", q.text, QUESTION_MAX)
    return questions


def validate_questions(questions: Sequence[str | Question]) -> list[Question]:
    """`check_questions` for a use case: Invalid, with the problem under the `questions` field."""
    try:
        return check_questions(questions)
    except ValueError as exc:
        raise Invalid(f"{exc}.", {"questions": str(exc)}) from None


EVERY_WEEKS_MAX = 12
DAYS_PER_MONTH_MIN = 28  # the shortest gap between two monthly rounds


class PulseScheduleInput(BaseModel):
    """A pulse survey schedule: the cadence at a local time in a zone, how long a round stays open, whether it
    is anonymous, who is asked, and the questions."""

    model_config = ConfigDict(str_strip_whitespace=True)

    cadence: CadenceKind
    every_weeks: int = 4
    nth: int = 1
    weekday: str
    local_time: str
    timezone: str
    open_days: int = DEFAULT_OPEN_DAYS
    anonymous: bool = True
    audience: Audience = Audience.BOTH
    questions: list[dict[str, str]] = Field(default_factory=lambda: [dict(q) for q in DEFAULT_PULSE_QUESTIONS])

    @field_validator("every_weeks", mode="before")
    @classmethod
    def _every(cls, value: object) -> int:
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ValueError(f"Say every how many weeks as a number from 1 to {EVERY_WEEKS_MAX}") from None
        if not 1 <= n <= EVERY_WEEKS_MAX:
            raise ValueError(f"Every {n} weeks: give a number of weeks from 1 to {EVERY_WEEKS_MAX}")
        return n

    @field_validator("nth")
    @classmethod
    def _nth(cls, value: int) -> int:
        if value != LAST and not 1 <= value <= 4:
            raise ValueError("Pick the first, second, third, fourth or last weekday of the month")
        return value

    @field_validator("weekday", mode="before")
    @classmethod
    def _weekday(cls, value: object) -> str:
        days = parse_weekdays(str(value or ""))
        if len(days) != 1:
            raise ValueError("Pick one weekday")
        return days[0]

    @field_validator("local_time")
    @classmethod
    def _time(cls, value: str) -> str:
        return parse_local_time(value).strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("open_days")
    @classmethod
    def _open_days(cls, value: int) -> int:
        if not 1 <= value <= OPEN_DAYS_MAX:
            raise ValueError(f"A round stays open from 1 to {OPEN_DAYS_MAX} days")
        return value

    @field_validator("questions", mode="before")
    @classmethod
    def _questions(cls, value: object) -> list[dict[str, str]]:
        if isinstance(value, str):
            value = split_questions(value)
        lines = [q if isinstance(q, str) else question_line(q) for q in value]  # type: ignore[union-attr]
        return check_pulse_questions(lines)

    @model_validator(mode="after")
    def _fits(self) -> PulseScheduleInput:
        gap = self.every_weeks * 7 if self.cadence == CadenceKind.WEEKS else DAYS_PER_MONTH_MIN
        if self.open_days >= gap:
            raise ValueError(f"A round must close before the next one: with this cadence it stays open at most "
                             f"{gap - 1} days")
        return self

    def cadence_rule(self, anchor: date) -> Cadence:
        if self.cadence == CadenceKind.WEEKS:
            return Cadence(self.weekday, every_weeks=self.every_weeks, anchor=anchor)
        return Cadence(self.weekday, nth=self.nth)


def question_line(q: dict[str, str]) -> str:
    """A pulse question as the setup form shows it: open questions start with `Open:`."""
    return f"{OPEN_PREFIX} {q['text']}" if q.get("kind") == QuestionKind.OPEN else q["text"]


def check_pulse_questions(lines: list[str]) -> list[dict[str, str]]:
    """Pulse questions from lines: `Open: ...` is answered in words, any other line is rated 1 to 5."""
    lines = [q.strip() for q in lines if q and q.strip()]
    if not lines:
        raise ValueError("Give at least one question")
    if len(lines) > PULSE_QUESTIONS_MAX:
        raise ValueError(f"There are {len(lines)} questions; the limit is {PULSE_QUESTIONS_MAX}: remove "
                         f"{len(lines) - PULSE_QUESTIONS_MAX}")
    out = []
    for line in lines:
        is_open = line.lower().startswith(OPEN_PREFIX.lower())
        text = line[len(OPEN_PREFIX):].strip() if is_open else line
        if not text:
            raise ValueError(f"Write the question after '{OPEN_PREFIX}'")
        _limit(f"The question '{text[:30]}…'", text, PULSE_QUESTION_MAX)
        out.append({"text": text, "kind": (QuestionKind.OPEN if is_open else QuestionKind.RATING).value})
    return out


def split_questions(raw: str | None) -> list[str]:
    """One question per line; empty lines and list markers are dropped."""
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line) for line in (raw or "").splitlines()]
    return [line.strip() for line in lines if line.strip()]


# Quotes people type around an argument: straight, and the curly ones phones, macOS and Slack's editor
# substitute (double: U+201C/U+201D, U+201E; single: U+2018/U+2019), each with the quote that closes it.
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201d": "\u201d", "\u201e": "\u201c", "\u2018": "\u2019", "'": "'"}
_DOUBLE_CLOSERS = ('"', "\u201d", "\u201c")
_SINGLE_CLOSERS = ("'", "\u2019")


def split_quoted(raw: str | None) -> list[str]:
    """Split command text on spaces, keeping "quoted text" (straight or curly quotes) as one argument
    (without its quotes) and Slack entities (`<@U1|ana b>`) whole. An unclosed quote runs to the end."""
    return [token for token, _ in quoted_tokens(raw) if token]


def quoted_tokens(raw: str | None) -> list[tuple[str, bool]]:
    """`split_quoted`, each argument with whether it was quoted (so `"anonymous"` can be an option while a
    bare `anonymous` is a keyword). A quote opens an argument only at its start, so an apostrophe inside a
    word (don't, or with U+2019) is just a letter. An empty pair of quotes is an empty quoted argument."""
    text, out, i = (raw or "").strip(), [], 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _QUOTES:
            closers = _SINGLE_CLOSERS if ch in _SINGLE_CLOSERS or ch == "\u2018" else _DOUBLE_CLOSERS
            # A straight quote closes with a straight one; curly ones leniently with any of their kind.
            end = text.find(_QUOTES[ch], i + 1) if ch not in ('"', "'") else -1
            if end < 0:
                end = min((j for j in (text.find(q, i + 1) for q in closers) if j >= 0), default=len(text))
            out.append((text[i + 1:end].strip(), True))
            i = end + 1
            continue
        j = i
        while j < len(text) and not text[j].isspace():
            if text[j] == "<":  # an entity may hold spaces in its label
                close = text.find(">", j)
                j = close + 1 if close >= 0 else len(text)
            else:
                j += 1
        out.append((text[i:j], False))
        i = j
    return [(token, quoted) for token, quoted in out if token or quoted]


DATE_FORM = "YYYY-MM-DD, e.g. 2026-03-20"
_DATE_LIKE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")


def looks_like_date(token: str) -> bool:
    return bool(_DATE_LIKE.match(token.strip()))


def parse_date(text: str) -> date:
    """A calendar date as people type it (YYYY-MM-DD); ValueError saying the expected form."""
    try:
        year, month, day = (int(part) for part in text.strip().split("-"))
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"'{text.strip()[:40]}' is not a date: use {DATE_FORM}") from None


class MilestoneInput(BaseModel):
    """A milestone as added or edited: its title, what done means, the due date, owners, celebrate."""

    model_config = ConfigDict(str_strip_whitespace=True)

    title: str
    done_means: str = ""
    due_date: date
    owners: list[str] = Field(default_factory=list)
    celebrate: bool = True

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value:
            raise ValueError("Give the milestone a title")
        return _limit("The title", value, TITLE_MAX)

    @field_validator("done_means")
    @classmethod
    def _done_means(cls, value: str) -> str:
        return _limit("What done means", value, DONE_MEANS_MAX)

    @field_validator("due_date", mode="before")
    @classmethod
    def _due(cls, value: object) -> date:
        if isinstance(value, date):
            return value
        if not value:
            raise ValueError(f"Give a due date ({DATE_FORM})")
        return parse_date(str(value))

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in value if _USER_ID.match(v)))


class IssueInput(BaseModel):
    """An issue as logged (command, form, message shortcut, check-in answer): its title, description, severity,
    an owner on each side (optional) and a due date (optional)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    title: str
    description: str = ""
    severity: Severity = Severity.NORMAL
    owner_ours: str | None = None
    owner_partner: str | None = None
    due_date: date | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value:
            raise ValueError("Give the issue a title")
        return _limit("The title", value, ISSUE_TITLE_MAX)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return _limit("The description", value, ISSUE_DESCRIPTION_MAX)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity:
        text = str(value or Severity.NORMAL.value).strip().lower()
        try:
            return Severity(text)
        except ValueError:
            raise ValueError(f"'{text[:20]}' is not a severity: use {', '.join(s.value for s in Severity)}") from None

    @field_validator("owner_ours", "owner_partner", mode="before")
    @classmethod
    def _owner(cls, value: object) -> str | None:
        return str(value) if value and _USER_ID.match(str(value)) else None

    @field_validator("due_date", mode="before")
    @classmethod
    def _due(cls, value: object) -> date | None:
        if isinstance(value, date) or value is None:
            return value
        return parse_date(str(value)) if str(value).strip() else None


def validate(model: type[T], **data: object) -> T:
    """Build a model; turn pydantic errors into Invalid with a message per field.

    The validators' messages are plain text and may quote what the person typed: `fields` keeps them
    as they are (modal errors are plain text), the message joins them escaped for mrkdwn."""
    try:
        return model(**data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors(include_input=False, include_url=False):
            field = str(err["loc"][0]) if err.get("loc") else "input"
            message = str(err["msg"]).removeprefix("Value error, ")
            fields.setdefault(field, message)
        raise Invalid(" ".join(f"{escape(m)}." for m in fields.values()), fields) from None


# -- polls -------------------------------------------------------------------------------------------------
_DURATION = re.compile(
    r"^(?:in\s+)?(\d{1,4})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)$", re.IGNORECASE)
_DATE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
POLL_DEFAULT_CLOSES = "2 days"
POLL_CLOSES_MIN = timedelta(minutes=5)
REMIND_CHOICES = ("half", "hour", "none")  # halfway, one hour before closing, none
# Curly quotes (as phones and Slack's editor type them) count as straight ones.
_STRAIGHT = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})
QUICK_POLL_EXAMPLE = '/partner poll "Which launch date?" "March 3" "March 10" anonymous closes 3d'


class PollSpec(BaseModel):
    """A validated poll, ready to create."""

    question: str
    kind: PollKind
    options: list[str] = Field(default_factory=list)
    max_picks: int | None = None
    anonymous: bool = False
    results: ResultsMode = ResultsMode.LIVE
    closes_at: datetime
    audience: PollAudience = PollAudience.ALL
    chosen: list[str] = Field(default_factory=list)
    remind: str = "half"


def parse_closes(raw: str | None, *, now: datetime, zone: str) -> datetime:
    """`2 hours`, `3d`, `90 minutes`, `1 week`, or a date and time in `zone` (`2026-03-05 17:00`; a date alone
    means 23:59 that day). Raises ValueError saying what is accepted."""
    text = (raw or "").strip() or POLL_DEFAULT_CLOSES
    m = _DURATION.match(text)
    if m:
        return now + timedelta(**{_UNITS[m.group(2)[0].lower()]: int(m.group(1))})
    m = _DATE_TIME.match(text)
    if m:
        try:
            day = date.fromisoformat(m.group(1))
            at = parse_local_time(m.group(2)) if m.group(2) else time(23, 59)
        except ValueError:
            raise ValueError(f"'{truncate(text, 40)}' is not a date and time (e.g. 2026-03-05 17:00)") from None
        return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    raise ValueError(f"'{truncate(text, 40)}' is not a closing time: give a duration such as 2 hours or 3 days, "
                     f"or a date and time in {zone} such as 2026-03-05 17:00")


def split_options(raw: str | None) -> list[str]:
    """One option per line; empty lines and list markers are dropped (like questions)."""
    return split_questions(raw)


def check_poll(
    *, question: str, kind: str, options: list[str], max_picks: str | int | None = None, anonymous: bool = False,
    results: str = ResultsMode.LIVE.value, closes: str | None = None, audience: str = PollAudience.ALL.value,
    chosen: list[str] | None = None, remind: str = "half", now: datetime, zone: str,
) -> PollSpec:
    """Validate a poll as typed in the form or the quick command. Invalid names every problem under its
    field (the form's block ids: question, kind, options, max_picks, closes, audience, chosen, reminder)."""
    errors: dict[str, str] = {}
    question = (question or "").strip()
    if not question:
        errors["question"] = "Write the question"
    elif len(question) > POLL_QUESTION_MAX:
        errors["question"] = f"The question is {len(question)} characters long; the limit is {POLL_QUESTION_MAX}"
    try:
        poll_kind = PollKind(kind)
    except ValueError:
        poll_kind = PollKind.SINGLE
        errors["kind"] = "Pick a kind of poll"
    cleaned = [o.strip() for o in options if o and o.strip()]
    picks: int | None = None
    if poll_kind.is_choice:
        folded = [o.casefold() for o in cleaned]
        dupes = sorted({o for o, f in zip(cleaned, folded, strict=True) if folded.count(f) > 1}, key=str.casefold)
        long = [o for o in cleaned if len(o) > POLL_OPTION_MAX]
        if len(cleaned) < POLL_OPTIONS_MIN:
            errors["options"] = (f"Give at least {POLL_OPTIONS_MIN} options, one per line "
                                 f"({len(cleaned)} given)")
        elif len(cleaned) > POLL_OPTIONS_MAX:
            errors["options"] = f"There are {len(cleaned)} options; the limit is {POLL_OPTIONS_MAX}"
        elif long:
            errors["options"] = (f"The option '{truncate(long[0], 30)}' is {len(long[0])} characters long; the "
                                 f"limit is {POLL_OPTION_MAX}")
        elif dupes:
            errors["options"] = f"Each option once: '{truncate(dupes[0], 30)}' is there twice"
        raw_picks = str(max_picks).strip() if max_picks is not None else ""
        if poll_kind == PollKind.MULTIPLE and raw_picks:
            if not raw_picks.isdigit() or not 1 <= int(raw_picks) <= POLL_OPTIONS_MAX:
                errors["max_picks"] = f"Give a number from 1 to {POLL_OPTIONS_MAX}, or leave it empty for no limit"
            elif int(raw_picks) < len(cleaned):
                picks = int(raw_picks)
    elif cleaned:
        errors["options"] = "Options are for single and multiple choice only; empty this field or change the kind"
    try:
        res = ResultsMode(results)
    except ValueError:
        res, errors["results"] = ResultsMode.LIVE, "Pick when results show"
    try:
        closes_at = parse_closes(closes, now=now, zone=zone)
        if closes_at < now + POLL_CLOSES_MIN:
            errors["closes"] = f"That is in the past or too soon: a poll stays open at least " \
                               f"{int(POLL_CLOSES_MIN.total_seconds() // 60)} minutes"
        elif closes_at > now + timedelta(days=POLL_AHEAD_MAX_DAYS):
            errors["closes"] = f"That is more than {POLL_AHEAD_MAX_DAYS} days ahead; the limit is " \
                               f"{POLL_AHEAD_MAX_DAYS} days"
    except ValueError as exc:
        closes_at, errors["closes"] = now, str(exc)
    try:
        aud = PollAudience(audience)
    except ValueError:
        aud, errors["audience"] = PollAudience.ALL, "Pick who may answer"
    people = list(dict.fromkeys(u for u in chosen or [] if _USER_ID.match(u)))
    if aud == PollAudience.CHOSEN and not people:
        errors["chosen"] = "Choose at least one person, or let another group answer"
    if remind not in REMIND_CHOICES:
        errors["reminder"] = "Pick when to remind"
    if errors:
        raise Invalid(" ".join(f"{escape(m)}." for m in errors.values()), errors)
    return PollSpec(question=question, kind=poll_kind, options=cleaned if poll_kind.is_choice else [],
                    max_picks=picks, anonymous=anonymous, results=res, closes_at=closes_at, audience=aud,
                    chosen=people if aud == PollAudience.CHOSEN else [], remind=remind)


@dataclass
class QuickPoll:
    """What a quick `/partner poll "Q?" "A" "B" [anonymous] [closes 3d]` said (not validated yet)."""

    question: str
    options: list[str]
    anonymous: bool = False
    closes: str | None = None


def straight_quotes(text: str) -> str:
    """Curly quotes (as phones and Slack's editor type them) turned into straight ones."""
    return text.translate(_STRAIGHT)


def parse_quick_poll(text: str) -> QuickPoll:
    """Read the quick form (plain text; curly quotes count as straight ones). Raises Invalid saying what was
    not understood, with an example."""
    tokens = [(token, None) if quoted else (None, token) for token, quoted in quoted_tokens(text)]
    quoted = [q for q, word in tokens if q is not None and word is None]
    question = quoted[0] if quoted else ""
    if not question.strip():
        raise Invalid(f"Put the question in quotes, then each option in quotes: `{QUICK_POLL_EXAMPLE}`.")
    result = QuickPoll(question=question, options=quoted[1:])
    words = [word for q, word in tokens if word is not None]
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word in ("anonymous", "anon"):
            result.anonymous = True
        elif word == "closes" and i + 1 < len(words):
            nxt = words[i + 1]
            if i + 2 < len(words) and re.match(r"^\d{1,2}:\d{2}$", words[i + 2]):  # a date and a time
                nxt, i = f"{nxt} {words[i + 2]}", i + 1
            elif i + 2 < len(words) and re.match(r"^[a-z]+$", words[i + 2], re.IGNORECASE) and nxt.isdigit():
                nxt, i = f"{nxt} {words[i + 2]}", i + 1  # closes 3 days
            result.closes, i = nxt, i + 1
        else:
            unclosed = " (a quote is not closed)" if any(c in words[i] for c in "\"'") else ""
            raise Invalid(f"`{escape(truncate(words[i], 30))}` is not understood here{unclosed}. "
                          "Put the question and each option in quotes, then optionally `anonymous` and "
                          f"`closes 3d`: `{QUICK_POLL_EXAMPLE}`.")
        i += 1
    return result
