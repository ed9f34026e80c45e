"""Partnerbot settings, read from the environment and from `.env` (pydantic-settings).

Every setting is documented in the README's configuration table. `load_settings()` turns validation
errors into one readable `SettingsError` that names each problem and how to fix it, without ever
echoing a secret value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///data/partnerbot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# What each setting is for, used in error messages (same words as the README table).
_HINTS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-...) from your app's 'OAuth & Permissions' page",
    "SLACK_SIGNING_SECRET": "the Signing Secret from your app's 'Basic Information' page "
    "(needed in HTTP mode; set SLACK_APP_TOKEN instead to use Socket Mode)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with the connections:write scope, from "
    "'Basic Information' > 'App-Level Tokens'; leave it empty to run in HTTP mode",
    "SLACK_API_URL": "the Web API base URL, e.g. https://slack.com/api/",
    "DATABASE_URL": "a SQLAlchemy URL such as sqlite:///data/partnerbot.db or "
    "postgresql+psycopg://user:password@host:5432/partnerbot",
    "HOST": "the address the HTTP server binds, e.g. 0.0.0.0",
    "PORT": "a TCP port number between 1 and 65535",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "DEFAULT_TIMEZONE": "an IANA time zone name such as Europe/Berlin or America/New_York",
    "HTTP_THREADS": "the number of threads serving HTTP requests (1-64)",
    "SCHEDULER_ENABLED": "true or false (false: this process serves Slack only; run `python -m jobs.worker` "
    "for scheduled work)",
    "SCHEDULER_WORKERS": "how many scheduled posts run at once in this process (1-64)",
    "SCHEDULER_TICK_SECONDS": "how often the scheduler looks for due work, in seconds (0.1-60)",
    "SCHEDULER_LEASE_SECONDS": "how long a process holds a claimed post before another may take it over, in "
    "seconds (5-3600)",
    "POLL_MIN_RESPONDENTS_PER_SIDE": "the fewest answers a side needs before its results are shown (1-50)",
    "ANONYMITY_KEY": "a long random secret, at least 32 characters (e.g. from `openssl rand -hex 32`); leave it "
    "empty to derive one from SLACK_SIGNING_SECRET",
}


class SettingsError(Exception):
    """The settings are missing or malformed; the message says what to fix."""


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Settings(BaseSettings):
    """All configuration of one Partnerbot process."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: LogLevel = LogLevel.INFO
    default_timezone: str = "UTC"
    http_threads: int = Field(default=8, ge=1, le=64)
    scheduler_enabled: bool = True
    scheduler_workers: int = Field(default=8, ge=1, le=64)
    scheduler_tick_seconds: float = Field(default=2.0, ge=0.1, le=60)
    scheduler_lease_seconds: int = Field(default=120, ge=5, le=3600)
    # Polls and pulse surveys show a side's results only when each side that answered has this many answers.
    poll_min_respondents_per_side: int = Field(default=3, ge=1, le=50)
    # Keys the hash that recognises a person's earlier anonymous vote or answer (`anonymity_key`); never stored.
    anonymity_key: SecretStr | None = None

    @field_validator("slack_signing_secret", "slack_app_token", "anonymity_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("is empty")
        if not token.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return SecretStr(token)

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if url.drivername == "postgresql":
            return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
            raise ValueError("must use the psycopg driver: postgresql+psycopg://...")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        value = value.strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a known IANA time zone") from None
        return value

    @field_validator("anonymity_key")
    @classmethod
    def _anonymity_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError("is too short: use at least 32 random characters (e.g. `openssl rand -hex 32`)")
        return value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def sqlite_path(self) -> Path | None:
        """The database file for a file-based SQLite URL, else None."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)


def anonymity_key(settings: Settings) -> bytes:
    """The key of the hash (HMAC) that recognises a person's earlier answer in an anonymous poll or pulse round,
    so answering again replaces it while no answer holds who gave it. Never stored in the database: from
    ANONYMITY_KEY, else derived from SLACK_SIGNING_SECRET (or, in Socket Mode, the app token; a scheduler-only
    worker without either falls back to the bot token). Every process of one installation must derive the same key:
    set ANONYMITY_KEY when they do not share these settings. Changing it only means that an answer given before
    the change is not recognised (answering again adds one instead of replacing it) in rounds still open."""
    source = next((s for s in (settings.anonymity_key, settings.slack_signing_secret, settings.slack_app_token,
                               settings.slack_bot_token) if s is not None), None)
    assert source is not None
    return hmac.new(source.get_secret_value().encode(), b"partnerbot anonymous answers v1", hashlib.sha256).digest()


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    name = loc[0].upper() if loc else ""
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    if error.get("type") == "missing":
        return f"{name} is missing: set it to {_HINTS.get(name, 'a value')}."
    if not name:
        return message if message.endswith(".") else message + "."
    hint = _HINTS.get(name)
    text = f"{name} {message}"
    return f"{text}: use {hint}." if hint else f"{text}."


class _ModeInputs(BaseSettings):
    """Just the two values that decide the run mode, read from the same sources as Settings."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_app_token: str | None = None
    slack_signing_secret: str | None = None


def _mode_problem(overrides: dict[str, Any]) -> str | None:
    keys = ("slack_app_token", "slack_signing_secret", "_env_file")
    raw = _ModeInputs(**{k: v for k, v in overrides.items() if k in keys})
    if not (raw.slack_app_token or "").strip() and not (raw.slack_signing_secret or "").strip():
        return (
            "SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN is set): use "
            + _HINTS["SLACK_SIGNING_SECRET"]
            + "."
        )
    return None


def load_settings(*, worker: bool = False, **overrides: Any) -> Settings:
    """Read the settings; raise SettingsError with one line per problem. A scheduler-only worker
    (`worker=True`) serves no Slack requests, so it needs neither a signing secret nor an app token."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_input=False, include_url=False)]
    mode = None if worker else _mode_problem(overrides)
    if mode:
        problems.append(mode)
    if problems or settings is None:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SettingsError(
            f"Partnerbot cannot start: the configuration has {len(problems)} problem(s):\n{lines}\n"
            "Set these in the environment or in .env (see .env.example and the README's configuration table)."
        )
    return settings
