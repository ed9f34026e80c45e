"""Poll vote benchmark: one poll, N people voting and changing their votes at once through the real HTTP endpoint.

Usage, from the repository root in the project's virtualenv:

    python bench/poll_votes.py [--voters N] [--latency-ms L] [--concurrency K]
    python -m bench.poll_votes  [same options]

Other options: --database-url URL (an empty database, e.g. postgresql+psycopg://...; the benchmark's rows stay
in it; default: SQLite in a temporary directory, removed afterwards), --tick-seconds (the ticker's interval,
default 2.0 as in production), --timeout, --seed.

What it does:
- Starts the stateful fake Slack (tests/fakes/slack.py) in a child process on loopback HTTP, wires the real app
  with `bot.build` (real clock), serves it on the real server stack (adapters/web.py: waitress, the
  SlackRequestGate, Bolt) and starts its real Ticker.
- Seeds one active partnership whose channel has the owner and N people (half on each side), then sets the
  fake's latency to L ms per Slack call. The owner starts a poll with the quick command
  `/partner poll "Q" "A" "B"` (a signed request); the ticker posts it.
- The storm: every person clicks one option, then the other one (a change), each click a signed block_actions
  request with the poll message's own action id and value, sent by K threads (20 by default) over one
  keep-alive connection each. A person's change is sent after their first click was acknowledged and after
  about 2 x K other clicks, so first votes and changes are mixed all through the storm. The time to each
  HTTP 200 is measured.
- Then it waits until the live tally has caught up (the poll's `poll_refresh` occurrence has run after the last
  vote and the message shows the expected tally), closes the poll (`/partner poll close`) and waits for the
  final message.
- In the same run, the same clicks go to a bare Bolt app whose one listener acks every block action, served on
  the same stack (the same WebServer and WSGI wrapper with the gate, as many server threads), from the same
  K threads.

It prints a few human-readable lines, then as its last line:

    votes=V counted=C lost=X double=D ack_p50_ms=A ack_p99_ms=B bare_p99_ms=E ack_ratio=R updates=U

V: clicks acknowledged with HTTP 200; C: people whose last click is their one vote in the database (the closed
message's tally must say the same); X: people whose last acknowledged click is not what the database holds
(missing, or an earlier choice); D: people with more than one vote in the database; A, B: the app's ack latency
percentiles; E: the bare app's 99th percentile; R = B / E; U: chat.update calls from the first click until the
live tally caught up (the close's update not included). Goals: X = D = 0, R <= 1.5 (acks never wait for Slack),
U near the storm's seconds (about one update a second), not near V. The exit status is 1 when X or D is not 0,
a click was not acknowledged, or a message's tally disagrees with the database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

if __package__ in (None, ""):  # run as a script: the repository root is importable (bench/ is not installed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, func, select

from adapters.web import SLACK_PATH, WebServer, make_wsgi_app
from bench.checkin_fanout import RemoteFake, _fake_slack_class, reader
from bot import Partnerbot, build, settle_heap
from config.settings import Settings
from models.partnership import Member, Partnership, PartnershipStatus, Role, Side
from models.poll import Poll, PollStatus, PollVote
from models.scheduling import Occurrence, OccurrenceState
from services.scheduling import POLL_REFRESH

TOKEN = "xoxb-bench"  # noqa: S105 - the fake Slack's token, not a secret
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105 - signs the benchmark's own requests
TEAM = "T0BENCH"
BOT_USER = "UBOT"
OWNER = "UOWNER"
ZONE = "Europe/Berlin"
QUESTION = "Which launch date?"
OPTIONS = ("March 3", "March 10")
POLL_SECONDS = 0.05

Out = Callable[[str], None]


@dataclass(frozen=True)
class Config:
    voters: int = 300
    latency_ms: float = 50.0
    concurrency: int = 20
    database_url: str | None = None
    tick_seconds: float = 2.0
    timeout: float = 120.0  # for each wait (the poll posted, the tally caught up, the poll closed)
    seed: int = 1


@dataclass
class Result:
    votes: int
    counted: int
    lost: int
    double: int
    ack_p50_ms: float
    ack_p99_ms: float
    bare_p99_ms: float
    updates: int
    ok: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ack_ratio(self) -> float:
        return self.ack_p99_ms / self.bare_p99_ms if self.bare_p99_ms > 0 else float("nan")

    def last_line(self) -> str:
        return (f"votes={self.votes} counted={self.counted} lost={self.lost} double={self.double} "
                f"ack_p50_ms={self.ack_p50_ms:.1f} ack_p99_ms={self.ack_p99_ms:.1f} "
                f"bare_p99_ms={self.bare_p99_ms:.1f} ack_ratio={self.ack_ratio:.2f} updates={self.updates}")


# -- the fake Slack in a child process ------------------------------------------------------------------
def _serve_poll_fake(conn: Any) -> None:
    """The child process: a FakeSlack and the few commands this benchmark sends it."""
    fake = _fake_slack_class()(bot_token=TOKEN, team_id=TEAM, bot_user_id=BOT_USER)
    fake.start()
    commands: dict[str, Callable[..., Any]] = {
        "base_url": lambda: fake.base_url,
        "url": lambda: fake.url,
        "add_users": lambda users: [fake.add_user(u, u.lower(), team_id=TEAM) for u in users],
        "add_channel": lambda name, members: fake.add_channel(name, members=members),
        "set_latency": lambda seconds: setattr(fake, "latency", seconds),
        "call_count": fake.call_count,
        "messages": fake.messages,
        "message": fake.message,
    }
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, commands[command](*args)))
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
                conn.send((False, f"{command}: {exc!r}"))
    finally:
        fake.stop()


# -- signed requests, as Slack sends them ----------------------------------------------------------------
class Signer:
    def __init__(self, fake_url: str) -> None:
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.fake_url = fake_url

    def headers(self, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body.decode())}

    def response_url(self) -> str:
        return f"{self.fake_url}/response/{uuid.uuid4().hex}"

    def command(self, text: str, *, user_id: str, channel_id: str) -> bytes:
        return urlencode({
            "token": "legacy-verification-token", "team_id": TEAM, "team_domain": "ours", "channel_id": channel_id,
            "channel_name": "bench-poll", "user_id": user_id, "user_name": user_id.lower(), "command": "/partner",
            "text": text, "api_app_id": "A0PARTNERBOT", "is_enterprise_install": "false",
            "response_url": self.response_url(), "trigger_id": f"1.{uuid.uuid4().hex[:12]}",
        }).encode()

    def click(self, button: dict[str, Any], message: dict[str, Any], *, user_id: str) -> bytes:
        """A block_actions payload: `user_id` clicks `button` of the poll's `message`."""
        action = {"action_id": button["action_id"], "block_id": button["block_id"], "type": "button",
                  "value": button["value"], "text": button["text"], "action_ts": f"{time.time():.6f}"}
        payload = {
            "type": "block_actions", "team": {"id": TEAM, "domain": "ours"},
            "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM},
            "api_app_id": "A0PARTNERBOT", "token": "legacy-verification-token",
            "trigger_id": f"1.{uuid.uuid4().hex[:12]}", "actions": [action], "is_enterprise_install": False,
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                          "is_ephemeral": False},
            "channel": {"id": message["channel"], "name": "bench-poll"}, "message": message,
            "response_url": self.response_url(),
        }
        return urlencode({"payload": json.dumps(payload)}).encode()


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
    conn.request("POST", SLACK_PATH, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


# -- the storm -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Click:
    voter: str
    option: int
    after: int | None = None  # index of the click that must have been acknowledged before this one is sent


def plan_clicks(voters: Sequence[str], concurrency: int, rng: random.Random) -> list[Click]:
    """Each person's first click, and their change to the other option about 2 x K clicks later."""
    order = list(voters)
    rng.shuffle(order)
    first = {v: rng.randrange(len(OPTIONS)) for v in order}
    gap = max(1, min(len(order), 2 * concurrency))
    clicks: list[Click] = []
    at: dict[str, int] = {}
    for k, v in enumerate(order):
        at[v] = len(clicks)
        clicks.append(Click(v, first[v]))
        if k >= gap:
            w = order[k - gap]
            clicks.append(Click(w, 1 - first[w], after=at[w]))
    for w in order[max(0, len(order) - gap):]:
        clicks.append(Click(w, 1 - first[w], after=at[w]))
    return clicks


@dataclass
class Storm:
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int]
    acked: dict[str, int]  # each person's last acknowledged choice (by send order)
    started: float  # time.monotonic()


def storm(url: str, clicks: Sequence[Click], bodies: Sequence[bytes], signer: Signer, concurrency: int) -> Storm:
    """Send every click from K threads, each over its own keep-alive connection; a click whose `after` is set
    waits until that click was acknowledged."""
    parts = urlsplit(url)
    acked_events = [threading.Event() for _ in clicks]
    latencies: list[float] = [float("nan")] * len(clicks)
    statuses: list[int] = [0] * len(clicks)
    next_index = iter(range(len(clicks)))
    take = threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def work() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        start.wait()
        try:
            while True:
                with take:
                    i = next(next_index, None)
                if i is None:
                    return
                click = clicks[i]
                if click.after is not None:
                    acked_events[click.after].wait(60)
                body = bodies[i]
                headers = signer.headers(body)
                t0 = time.perf_counter()
                try:
                    status = post(conn, body, headers)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                    status = -1
                latencies[i] = (time.perf_counter() - t0) * 1000
                statuses[i] = status
                acked_events[i].set()
        finally:
            conn.close()

    threads = [threading.Thread(target=work, name=f"sender-{n}", daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    acked: dict[str, int] = {}
    for click, status in zip(clicks, statuses, strict=True):
        if status == 200:
            acked[click.voter] = click.option
    return Storm(seconds, latencies, Counter(statuses), acked, started)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[k]


# -- seeding and reading --------------------------------------------------------------------------------
def seed(bot: Partnerbot, fake: RemoteFake, voters: Sequence[str]) -> str:
    """One active partnership with the owner and the voters (alternately on our side and the partner's) in its
    channel, straight into the database. Returns the channel id."""
    fake.add_users([OWNER, *voters])
    channel: str = fake.add_channel("bench-poll", [BOT_USER, OWNER, *voters])
    now = bot.services.clock.now()
    created = now - timedelta(days=7)
    with bot.services.uow() as s:
        if s.exec(select(func.count()).select_from(Partnership)).one():
            raise SystemExit("The benchmark needs an empty database (it found partnerships in DATABASE_URL).")
        p = Partnership(name="Bench poll", open_name_key="bench poll", partner_org="Bench Partner", timezone=ZONE,
                        status=PartnershipStatus.ACTIVE, team_id=TEAM, channel_id=channel, channel_name="bench-poll",
                        created_by=OWNER, created_at=created)
        s.add(p)
        s.flush()
        assert p.id is not None
        s.add(Member(partnership_id=p.id, user_id=OWNER, role=Role.OWNER, side=Side.OURS, added_by=OWNER,
                     added_at=created))
        for i, v in enumerate(voters):
            s.add(Member(partnership_id=p.id, user_id=v, role=Role.MEMBER, side=Side.OURS if i % 2 else Side.PARTNER,
                         added_by=OWNER, added_at=created))
    return channel


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: {**e, "block_id": b.get("block_id", "actions")}
            for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]}


def shown_tally(message: dict[str, Any]) -> tuple[int | None, list[int]]:
    """What the message says: the respondents in its first "(N answered)", and each option's count, from the
    whole-poll lines (the first line per option)."""
    texts = [b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section"
             and isinstance(b.get("text"), dict)]
    whole = next((t for t in texts if t.startswith(("*So far*", "*Results*"))), "")
    answered = re.search(r"\((\d+) answered\)", whole)
    counts = []
    for label in OPTIONS:
        m = re.search(rf"\((\d+)\)\s+{re.escape(label)}\s*$", whole, re.MULTILINE)
        counts.append(int(m.group(1)) if m else -1)
    return (int(answered.group(1)) if answered else None), counts


def refresh_state(db: Any, poll_id: int) -> str | None:
    with Session(db) as s:
        state = s.exec(select(Occurrence.state).where(Occurrence.key == f"{POLL_REFRESH}:{poll_id}")).first()
    return None if state is None else str(getattr(state, "value", state))


def db_votes(db: Any, poll_id: int) -> list[tuple[str, int]]:
    with Session(db) as s:
        return [(v, o) for v, o in s.exec(select(PollVote.voter, PollVote.option).where(PollVote.poll_id == poll_id)
                                          .order_by(col(PollVote.id))).all()]


# -- the bare app -----------------------------------------------------------------------------------------
def bare_app(fake_base_url: str) -> App:
    """A Bolt app whose only listener acks block actions, configured like the real one."""
    app = App(client=WebClient(token=TOKEN, base_url=fake_base_url), request_verification_enabled=False,
              token_verification_enabled=False, process_before_response=False,
              logger=logging.getLogger("slack_bolt"))

    @app.action(re.compile(".*"))
    def _ack(ack: Callable[..., Any]) -> None:
        ack()

    return app


# -- the run --------------------------------------------------------------------------------------------
def run_benchmark(cfg: Config, out: Out = print) -> Result:
    """Run one benchmark, printing human-readable lines through `out`; the caller prints the last line."""
    if cfg.voters < 1 or cfg.latency_ms < 0 or not 1 <= cfg.concurrency <= 200:
        raise ValueError("need voters >= 1, latency-ms >= 0, 1 <= concurrency <= 200")
    rng = random.Random(cfg.seed)
    fake = RemoteFake(_serve_poll_fake)
    tmp = tempfile.TemporaryDirectory(prefix="partnerbot-bench-") if cfg.database_url is None else None
    url = cfg.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"  # type: ignore[union-attr]
    backend = make_url(url).get_backend_name()
    bot: Partnerbot | None = None
    servers: list[WebServer] = []
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url,
            database_url=url, host="127.0.0.1", default_timezone=ZONE, scheduler_tick_seconds=cfg.tick_seconds,
        )
        bot = build(settings)
        settle_heap()  # as bot.run does at start-up
        server = WebServer(bot.wsgi(), host="127.0.0.1", port=0, threads=settings.http_threads).start()
        servers.append(server)
        signer = Signer(fake.url())
        voters = [f"UV{i:05d}" for i in range(cfg.voters)]
        channel = seed(bot, fake, voters)
        bot.start_scheduler()
        out(f"settings: voters={cfg.voters} latency_ms={cfg.latency_ms:g} concurrency={cfg.concurrency} "
            f"http_threads={settings.http_threads} scheduler_workers={settings.scheduler_workers} "
            f"tick_seconds={cfg.tick_seconds:g} database={backend}{' (temporary file)' if tmp else ''}")

        fake.set_latency(cfg.latency_ms / 1000.0)  # from now on Slack is slow
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body = signer.command(f'poll "{QUESTION}" "{OPTIONS[0]}" "{OPTIONS[1]}"', user_id=OWNER, channel_id=channel)
        status = post(conn, body, signer.headers(body))
        if status != 200:
            raise RuntimeError(f"/partner poll answered {status}")
        message = wait_for("the poll's message", lambda: next(
            (m for m in fake.messages(channel) if m.get("text", "").startswith("Poll #")), None), cfg.timeout)
        with bot.services.uow(read_only=True) as s:
            poll = s.exec(select(Poll)).one()
            poll_id = int(poll.id or 0)
        labelled = buttons(message)
        clicks = plan_clicks(voters, cfg.concurrency, rng)
        bodies = [signer.click(labelled[OPTIONS[c.option]], message, user_id=c.voter) for c in clicks]

        with reader(url) as db:
            wait_for("the post to be recorded",
                     lambda: refresh_state(db, poll_id) is None and _message_ts(db, poll_id), cfg.timeout)
            updates_before = fake.call_count("chat.update")
            app_storm = storm(f"{server.url}{SLACK_PATH}", clicks, bodies, signer, cfg.concurrency)
            storm_end = time.monotonic()

            expected = Counter(app_storm.acked.values())
            want = (len(app_storm.acked), [expected.get(i, 0) for i in range(len(OPTIONS))])

            def caught_up() -> bool:
                if refresh_state(db, poll_id) in (OccurrenceState.PENDING.value, OccurrenceState.CLAIMED.value):
                    return False
                return shown_tally(fake.message(channel, message["ts"])) == want

            try:
                wait_for("the live tally", caught_up, cfg.timeout)
                live_ok = True
            except TimeoutError as exc:
                out(f"WARNING: {exc}; the message shows {shown_tally(fake.message(channel, message['ts']))}, "
                    f"expected {want}")
                live_ok = False
            settled = time.monotonic()
            updates = fake.call_count("chat.update") - updates_before

            rows = db_votes(db, poll_id)
            by_voter: dict[str, list[int]] = {}
            for voter_hash, option in rows:
                by_voter.setdefault(voter_hash, []).append(option)
            svc = bot.services.polls
            double = sum(1 for options in by_voter.values() if len(options) > 1)
            counted = sum(1 for v, option in app_storm.acked.items() if by_voter.get(svc.voter(poll_id, v)) == [option])
            lost = len(app_storm.acked) - counted

            # Close the poll: the final message must show the same tally.
            body = signer.command("poll close", user_id=OWNER, channel_id=channel)
            status = post(conn, body, signer.headers(body))
            conn.close()
            final = wait_for("the closed poll's message", lambda: (
                m := fake.message(channel, message["ts"])) and not set(buttons(m)) & set(OPTIONS) and m, cfg.timeout)
            with Session(db) as s:
                closed = s.get(Poll, poll_id)
                closed_ok = closed is not None and closed.status == PollStatus.CLOSED
            final_ok = status == 200 and closed_ok and shown_tally(final) == want

        bare = bare_app(fake.base_url)
        bare_server = WebServer(make_wsgi_app(bare, lambda: (True, {}), signing_secret=SIGNING_SECRET),
                                host="127.0.0.1", port=0, threads=settings.http_threads).start()
        servers.append(bare_server)
        bare_storm = storm(f"{bare_server.url}{SLACK_PATH}", clicks, bodies, signer, cfg.concurrency)

        ok_clicks = app_storm.statuses.get(200, 0)
        out(f"storm: {len(clicks)} clicks ({cfg.voters} first votes, {cfg.voters} changes) from {cfg.concurrency} "
            f"threads in {app_storm.seconds:.2f} s = {ok_clicks / app_storm.seconds:.0f} votes/s; "
            f"answers: {_statuses(app_storm.statuses)}")
        out(f"ack latency (app): p50 {percentile(app_storm.latencies_ms, 50):.1f} ms, p90 "
            f"{percentile(app_storm.latencies_ms, 90):.1f} ms, p99 {percentile(app_storm.latencies_ms, 99):.1f} ms, "
            f"max {max(app_storm.latencies_ms):.1f} ms")
        out(f"ack latency (bare Bolt app, same stack): p50 {percentile(bare_storm.latencies_ms, 50):.1f} ms, p99 "
            f"{percentile(bare_storm.latencies_ms, 99):.1f} ms, max {max(bare_storm.latencies_ms):.1f} ms; storm "
            f"{bare_storm.seconds:.2f} s; answers: {_statuses(bare_storm.statuses)}")
        out(f"live tally: {updates} chat.update in {settled - app_storm.started:.2f} s from the first click "
            f"(storm {app_storm.seconds:.2f} s; caught up {settled - storm_end:.2f} s after the last ack); the "
            f"message showed {want[0]} answered, {dict(zip(OPTIONS, want[1], strict=True))}: "
            f"{'yes' if live_ok else 'NO'}")
        out(f"database: {len(rows)} vote rows for {len(by_voter)} people; closed message shows the same tally: "
            f"{'yes' if final_ok else 'NO'}")
        return Result(
            votes=ok_clicks, counted=counted, lost=lost, double=double,
            ack_p50_ms=percentile(app_storm.latencies_ms, 50), ack_p99_ms=percentile(app_storm.latencies_ms, 99),
            bare_p99_ms=percentile(bare_storm.latencies_ms, 99), updates=updates,
            ok=live_ok and final_ok and ok_clicks == len(clicks),
            extra={"storm_seconds": app_storm.seconds, "bare_seconds": bare_storm.seconds},
        )
    finally:
        for s in reversed(servers):
            s.close()
        if bot is not None:
            bot.close()
        fake.stop()
        if tmp is not None:
            tmp.cleanup()


def _message_ts(db: Any, poll_id: int) -> bool:
    with Session(db) as s:
        poll = s.get(Poll, poll_id)
        return poll is not None and poll.message_ts is not None


def _statuses(statuses: Counter[int]) -> str:
    return ", ".join(f"{'error' if code < 0 else code}: {n}" for code, n in sorted(statuses.items()))


# -- command line ---------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python bench/poll_votes.py",
        description="One poll, N people voting and changing votes at once through the real HTTP endpoint, "
                    "against the fake Slack; compared with a bare Bolt app that only acks.")
    parser.add_argument("--voters", type=int, default=300, metavar="N", help="default 300")
    parser.add_argument("--latency-ms", type=float, default=50.0, metavar="L", help="per Slack call, default 50")
    parser.add_argument("--concurrency", type=int, default=20, metavar="K", help="sending threads, default 20")
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp dir)")
    parser.add_argument("--tick-seconds", type=float, default=2.0, help="the ticker's interval, default 2.0")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up each wait after this many seconds")
    parser.add_argument("--seed", type=int, default=1, help="who clicks what, in which order")
    ns = parser.parse_args(argv)
    return Config(voters=ns.voters, latency_ms=ns.latency_ms, concurrency=ns.concurrency,
                  database_url=ns.database_url, tick_seconds=ns.tick_seconds, timeout=ns.timeout, seed=ns.seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; prints the result line last. Returns 0, or 1 when a vote
    was lost or doubled, a click was not acknowledged, or a message disagrees with the database."""
    cfg = parse_args(argv)
    queue = logging.getLogger("waitress.queue")
    level = queue.level
    queue.setLevel(logging.ERROR)  # with more senders than server threads, a warning per queued request
    try:
        result = run_benchmark(cfg, out=lambda line: print(line, flush=True))
    finally:
        queue.setLevel(level)
    print(result.last_line(), flush=True)
    return 0 if result.lost == result.double == 0 and result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
