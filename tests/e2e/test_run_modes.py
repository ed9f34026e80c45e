"""`python bot.py` as a real process, in both run modes, against the fake Slack; and /healthz when the
database is gone.

Socket Mode: the bot opens a WebSocket to the fake Socket Mode server (after `apps.connections.open`
with its xapp- token) and acks the envelopes pushed to it. HTTP mode: it serves signed requests on
POST /slack/events. Both serve GET /healthz, and both stop cleanly (exit 0) on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from config.settings import Settings
from tests.e2e.conftest import ALICE, SECRET, TEAM, Harness, flatten, start_harness
from tests.fakes import FakeSlack, SlackSender
from tests.fakes.socket_mode import FakeSocketMode

BOT = Path(__file__).resolve().parents[2] / "bot.py"
APP_TOKEN = "xapp-1-A0PARTNERBOT-1-test"
START_TIMEOUT = 30.0  # seconds for `python bot.py` to import, migrate and connect (on a busy machine too)
# Seconds from SIGTERM to exit: well inside the 10 s grace `docker stop` gives before SIGKILL. (Socket Mode
# takes ~3 s: slack_sdk's builtin client waits for its blocked socket read, which times out after 3 s.)
STOP_TIMEOUT = 8.0
# Every setting the bot reads, so that none leaks in from the environment running the tests.
SETTINGS = {name.upper() for name in Settings.model_fields}

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, str, Any]:
    """(status, content type, parsed JSON body or text)."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            status, ctype, raw = resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        status, ctype, raw = err.code, err.headers.get("Content-Type", ""), err.read()
    return status, ctype, json.loads(raw) if "json" in ctype else raw.decode("utf-8", "replace")


@dataclass
class BotProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path  # what the bot wrote to stdout and stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = START_TIMEOUT) -> T:
        """Poll `probe` until it returns something, failing early (with the bot's log) if the bot exits."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            if self.proc.poll() is not None:
                pytest.fail(f"the bot exited ({self.proc.returncode}) before {what}:\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; the bot's log:\n{self.log}")
            time.sleep(0.02)

    def healthz(self) -> tuple[int, str, Any]:
        return http("GET", f"{self.url}/healthz")

    def wait_healthy(self) -> None:
        def probe() -> bool | None:
            try:
                return True if self.healthz()[0] == 200 else None
            except OSError:
                return None

        self.wait_for("a healthy /healthz", probe)

    def terminate(self) -> int:
        """SIGTERM; the exit code, once the bot has exited (within STOP_TIMEOUT)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the bot did not exit within {STOP_TIMEOUT}s of SIGTERM; its log:\n{self.log}")


@pytest.fixture
def run_bot(tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    """Start `python bot.py` with only the given settings (plus a private SQLite file and a free port),
    in an empty directory so that no .env is read."""
    started: list[BotProcess] = []

    def start(**settings: str) -> BotProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.upper().startswith("SLACK_") and k.upper() not in SETTINGS and "PROXY" not in k.upper()}
        env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'pb.db'}", HOST="127.0.0.1", PORT=str(port),
                   LOG_LEVEL="INFO", DEFAULT_TIMEZONE="Europe/Berlin", PYTHONUNBUFFERED="1", **settings)
        workdir = tmp_path / "cwd"
        workdir.mkdir(exist_ok=True)
        log_path = tmp_path / f"bot-{len(started)}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, str(BOT)], cwd=workdir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        started.append(BotProcess(proc, port, log_path))
        return started[-1]

    yield start
    for bot in started:
        if bot.proc.poll() is None:
            bot.proc.kill()
            bot.proc.wait(timeout=5)


@pytest.fixture
def socket_mode(fake: FakeSlack) -> Iterator[FakeSocketMode]:
    server = FakeSocketMode().start()
    fake.app_token = APP_TOKEN
    fake.socket_mode_url = server.url
    yield server
    server.stop()


def slash_command(fake: FakeSlack, text: str, *, channel_id: str, user_id: str = ALICE) -> dict[str, Any]:
    """The payload of a slash_commands envelope: the fields Slack would POST in HTTP mode, as strings."""
    return {
        "token": "legacy-verification-token", "team_id": TEAM, "team_domain": "ours", "channel_id": channel_id,
        "channel_name": fake.channels[channel_id].name, "user_id": user_id, "user_name": fake.users[user_id]["name"],
        "command": "/partner", "text": text, "api_app_id": "A0PARTNERBOT", "is_enterprise_install": "false",
        "response_url": fake.new_response_url(), "trigger_id": fake.issue_trigger(user_id),
    }


def test_socket_mode_process_answers_commands_serves_healthz_and_stops_on_sigterm(
    fake: FakeSlack, socket_mode: FakeSocketMode, run_bot: Callable[..., BotProcess],
) -> None:
    general = fake.add_channel("general", members=[ALICE])
    bot = run_bot(SLACK_BOT_TOKEN=fake.bot_token, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=fake.base_url)

    bot.wait_for("a Socket Mode connection", lambda: socket_mode.connected or None)
    assert fake.call_count("apps.connections.open") == 1
    assert socket_mode.refused_handshakes == 0

    # /partner help: the answer is the ack's payload, back over the socket.
    envelope = socket_mode.push("slash_commands", slash_command(fake, "help", channel_id=general))
    ack = socket_mode.wait_ack(envelope)
    help_text = flatten(ack.get("payload"))
    assert "`/partner new [name]`" in help_text and "`/partner close [reason]`" in help_text
    assert ack["payload"].get("response_type") == "ephemeral"

    # /partner new Acme: acked at once, then the channel is made and the outcome goes to the response_url.
    payload = slash_command(fake, "new Acme", channel_id=general)
    envelope = socket_mode.push("slash_commands", payload)
    assert "Setting up *Acme*" in flatten(socket_mode.wait_ack(envelope).get("payload"))
    replies = bot.wait_for("the reply to /partner new", lambda: fake.responses(payload["response_url"]) or None)
    channel = fake.channel_by_name("partner-acme")
    assert channel is not None and ALICE in channel.members
    assert f"<#{channel.id}>" in flatten(replies) and "is set up" in flatten(replies)

    # The HTTP server still runs for the health check; Slack's HTTP endpoint is not served in Socket Mode.
    status, ctype, report = bot.healthz()
    assert (status, ctype) == (200, "application/json")
    assert (report["status"], report["database"]) == ("ok", "ok")
    assert http("POST", f"{bot.url}/slack/events", b"{}")[0] == 404

    code = bot.terminate()
    log = bot.log
    assert code == 0, log
    assert "Traceback" not in log, log
    assert "Stopped." in log


def test_http_mode_process_serves_signed_requests_refuses_bad_signatures_and_stops_on_sigterm(
    fake: FakeSlack, run_bot: Callable[..., BotProcess],
) -> None:
    general = fake.add_channel("general", members=[ALICE])
    bot = run_bot(SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.base_url)
    bot.wait_healthy()
    sender = SlackSender(app_url=f"{bot.url}/slack/events", signing_secret=SECRET, fake=fake, team_id=TEAM)

    status, body = sender.command("/partner", "help", user_id=ALICE, channel_id=general)
    assert status == 200
    assert "`/partner new [name]`" in flatten(body) and "`/partner close [reason]`" in flatten(body)

    status, _ = sender.raw(b"command=%2Fpartner&text=new+Sneaky", "application/x-www-form-urlencoded",
                           signature="v0=" + "0" * 64)
    assert status == 401
    assert fake.channel_by_name("partner-sneaky") is None

    status, ctype, report = bot.healthz()
    assert (status, ctype) == (200, "application/json")
    assert (report["status"], report["database"]) == ("ok", "ok")
    assert fake.call_count("apps.connections.open") == 0

    # The scheduler runs inside `python bot.py` and reports in the health check.
    scheduler = bot.wait_for("a scheduler tick", lambda: (r := bot.healthz()[2]["scheduler"])["last_tick"] and r)
    assert scheduler["running_here"] is True
    assert (scheduler["due_unclaimed"], scheduler["failed"]) == (0, 0)

    code = bot.terminate()
    log = bot.log
    assert code == 0, log
    assert "Traceback" not in log, log
    assert "Stopped." in log


@pytest.fixture
def h_db_dir(fake: FakeSlack, tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    """The in-process harness with its SQLite database in a directory of its own."""
    db_dir = tmp_path / "db"
    harness = start_harness(fake, tmp_path, database_url=f"sqlite:///{db_dir / 'partnerbot.db'}")
    yield harness, db_dir
    harness.server.close()
    harness.executor.shutdown(wait=True)
    harness.bot.close()


def test_healthz_answers_503_while_the_database_cannot_be_opened_and_recovers(
    h_db_dir: tuple[Harness, Path],
) -> None:
    h, db_dir = h_db_dir
    url = f"{h.server.url}/healthz"
    assert http("GET", url)[0] == 200

    # The database goes away: its pooled connections are dropped (as when a server restarts) and its
    # directory is moved away, so SQLite cannot open the file any more.
    h.bot.services.engine.dispose()
    moved = db_dir.rename(db_dir.with_name("db-away"))
    status, ctype, report = http("GET", url)
    assert (status, ctype) == (503, "application/json")
    assert (report["status"], report["database"]) == ("unavailable", "unreachable")

    # It comes back: so does the health check, without a restart.
    moved.rename(db_dir)
    status, _, report = http("GET", url)
    assert status == 200 and report["database"] == "ok"
