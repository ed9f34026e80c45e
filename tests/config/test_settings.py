"""Settings: readable errors naming each problem, no traceback, no secret echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "PORT", "HOST"))}
    base.update(values)
    return base


def test_defaults_in_http_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SLACK_") or key in ("DATABASE_URL", "PORT", "DEFAULT_TIMEZONE", "LOG_LEVEL"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    s = load_settings(_env_file=None)
    assert s.port == 3000
    assert s.database_url == "sqlite:///data/partnerbot.db"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.socket_mode is False
    assert s.default_timezone == "UTC"


def test_socket_mode_needs_no_signing_secret() -> None:
    s = load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_app_token="xapp-1", slack_signing_secret="")
    assert s.socket_mode is True


def test_http_mode_requires_signing_secret() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="", slack_app_token="")
    assert "SLACK_SIGNING_SECRET is required in HTTP mode" in str(err.value)


def test_every_problem_is_named_with_a_fix() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(
            _env_file=None, slack_bot_token="not-a-token-SECRET1", slack_signing_secret="x",
            slack_app_token="also-wrong-SECRET2", port="99999", default_timezone="Mars/Olympus",
            database_url="mysql://u:p@h/db", log_level="chatty",
        )
    text = str(err.value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "PORT", "DEFAULT_TIMEZONE", "DATABASE_URL", "LOG_LEVEL"):
        assert name in text
    assert "Mars/Olympus" in text and "IANA" in text
    assert "SECRET1" not in text and "SECRET2" not in text


def test_postgres_url_gets_the_psycopg_driver() -> None:
    s = load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="x",
                      database_url="postgresql://u:p@db:5432/pb")
    assert s.database_url.startswith("postgresql+psycopg://")


def test_bot_exits_with_one_readable_message_and_no_traceback(tmp_path: Path) -> None:
    env = _env(SLACK_APP_TOKEN="", SLACK_BOT_TOKEN="xoxp-user-token-SECRET", PORT="abc")
    result = subprocess.run([sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in result.stderr
    assert "PORT" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr
    assert "SECRET" not in result.stderr.replace("SLACK_SIGNING_SECRET", "")


def test_the_anonymity_key_comes_from_its_own_setting_or_is_derived_from_a_secret_never_equal_to_it() -> None:
    from config.settings import anonymity_key
    from tests.conftest import make_settings

    derived = anonymity_key(make_settings(slack_signing_secret="sig"))
    assert len(derived) == 32 and b"sig" not in derived
    assert derived == anonymity_key(make_settings(slack_signing_secret="sig"))  # every process derives the same
    assert derived != anonymity_key(make_settings(slack_signing_secret="other"))
    own = anonymity_key(make_settings(slack_signing_secret="sig", anonymity_key="k" * 40))
    assert own != derived
    socket_mode = anonymity_key(make_settings(slack_signing_secret="", slack_app_token="xapp-1"))
    assert socket_mode != derived
    assert make_settings().poll_min_respondents_per_side == 3
    with pytest.raises(SettingsError, match="ANONYMITY_KEY is too short"):
        load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s", anonymity_key="short")
