"""Typed, validated inputs of the use cases (parsed from commands and modals)."""

from __future__ import annotations

import re
from datetime import date
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from blocks.text import escape, truncate
from models.checkin import (
    DEFAULT_QUESTIONS,
    DEFAULT_WINDOW_MINUTES,
    QUESTION_MAX,
    QUESTIONS_MAX,
    WINDOW_MAX_MINUTES,
    WINDOW_MIN_MINUTES,
    ParticipantMode,
)
from models.partnership import EMAIL_MAX, GOALS_MAX, NAME_MAX, PARTNER_ORG_MAX, REASON_MAX, Role
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


class ScheduleInput(BaseModel):
    """A check-in schedule: weekdays and a local time in a zone, the questions, the response window,
    when to remind, and who takes part."""

    model_config = ConfigDict(str_strip_whitespace=True)

    weekdays: tuple[str, ...]
    local_time: str
    timezone: str
    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS))
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

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: list[str]) -> list[str]:
        return check_questions(value)

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


def check_questions(value: list[str]) -> list[str]:
    questions = [q.strip() for q in value if q and q.strip()]
    if not questions:
        raise ValueError("Give at least one question")
    if len(questions) > QUESTIONS_MAX:
        raise ValueError(f"There are {len(questions)} questions; the limit is {QUESTIONS_MAX}")
    for q in questions:
        _limit(f"The question '{q[:30]}…'", q, QUESTION_MAX)
    return questions


def validate_questions(questions: list[str]) -> list[str]:
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
