"""Partnerbot's composition root: settings -> engine -> services -> App -> handlers -> ticker -> server.

`python bot.py` runs Socket Mode when SLACK_APP_TOKEN is set, otherwise an HTTP server with
POST /slack/events; both serve GET /healthz and run the scheduler (unless SCHEDULER_ENABLED=false).
`python -m jobs.worker` runs the scheduler alone. SIGTERM and SIGINT stop either cleanly.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy.exc import OperationalError

from adapters.clock import Clock, SystemClock
from adapters.slack import SlackError, SlackGateway, make_client
from adapters.web import WebServer, make_wsgi_app
from config.logging import configure_logging
from config.settings import Settings, SettingsError, anonymity_key, load_settings
from handlers import register_all
from jobs.executors import build_executors, build_planners
from jobs.ticker import Ticker
from models.db import make_engine, make_uow
from models.lock import AlreadyRunning, ProcessLock
from models.migrate import upgrade
from services.checkins import CheckinService
from services.container import Services
from services.issues import IssueService
from services.milestones import MilestoneService
from services.partnerships import PartnershipService
from services.polls import PollService
from services.pulse import PulseService
from services.scheduling import Dispatcher, scheduler_status
from services.status import health_report

log = logging.getLogger("partnerbot")


class StartupError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


@dataclass
class Partnerbot:
    settings: Settings
    services: Services
    app: App
    ticker: Ticker
    lock: ProcessLock | None = None
    closers: list[Any] = field(default_factory=list)
    ticking: bool = False

    def health(self) -> tuple[bool, dict[str, Any]]:
        def scheduler() -> dict[str, Any]:
            status = scheduler_status(self.services.uow, self.services.clock)
            return {**status, "running_here": self.ticking}

        return health_report(self.services.engine, {"scheduler": scheduler})

    def wsgi(self, *, serve_slack: bool = True) -> Any:
        bolt = self.app if serve_slack and not self.settings.socket_mode else None
        secret = self.settings.slack_signing_secret
        return make_wsgi_app(bolt, self.health, signing_secret=secret.get_secret_value() if secret else None)

    def start_scheduler(self) -> None:
        self.ticker.start()
        self.ticking = True

    def close(self) -> None:
        """Stop claiming scheduled work and let running posts finish, then stop serving."""
        self.ticker.stop()
        self.ticking = False
        for closer in reversed(self.closers):
            closer()
        self.closers.clear()
        self.services.engine.dispose()
        if self.lock is not None:
            self.lock.release()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    listener_executor: Executor | None = None,
    after_ack_executor: Executor | None = None,
) -> Partnerbot:
    """Wire everything for one process. Raises StartupError with a readable message. `listener_executor`
    runs Bolt's listeners (acks included), `after_ack_executor` the work they hand on after acking (both are
    thread pools of their own unless given, as tests do to wait for them)."""
    lock = None
    sqlite_path = settings.sqlite_path()
    if sqlite_path is not None:
        try:
            lock = ProcessLock(sqlite_path).acquire()
        except AlreadyRunning as exc:
            raise StartupError(str(exc)) from None
    if settings.anonymity_key is None and settings.slack_signing_secret is None and settings.slack_app_token is None:
        # A scheduler-only worker without the secrets the web process has would key anonymous answers differently
        # and remind people who already answered.
        log.warning("No ANONYMITY_KEY, SLACK_SIGNING_SECRET or SLACK_APP_TOKEN: anonymous answers are keyed from the "
                    "bot token. Give every process the same ANONYMITY_KEY (or the same Slack secrets).")
    engine = make_engine(settings.database_url)
    try:
        if migrate:
            upgrade(engine)
    except OperationalError as exc:
        if lock:
            lock.release()
        raise StartupError(
            f"The database at DATABASE_URL cannot be reached ({type(exc.orig).__name__}). "
            "Check that it is running and that the URL, user and password are right."
        ) from None

    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    gateway = SlackGateway(client)
    try:
        identity = gateway.auth_test()
    except SlackError as exc:
        client.close()
        if lock:
            lock.release()
        hint = {
            "invalid_auth": "SLACK_BOT_TOKEN is not valid: copy the Bot User OAuth Token (xoxb-...) again.",
            "account_inactive": "The app was uninstalled or its token revoked: reinstall it and copy the new token.",
            "connection_error": f"Slack could not be reached at {settings.slack_api_url}.",
        }.get(exc.code, "Check SLACK_BOT_TOKEN and SLACK_API_URL.")
        raise StartupError(f"Slack refused the bot token (auth.test: {exc.code}). {hint}") from None

    clock = clock or SystemClock()
    uow = make_uow(engine)
    bot_user_id = str(identity.get("user_id") or "")
    # Scheduled posts use a client that retries nothing itself: the dispatcher reschedules the occurrence
    # (after Retry-After on a 429, so the worker thread moves on) and looks before posting again.
    # Its timeout is well inside the half-lease the dispatcher keeps as margin before posting, so a post
    # ends before another process could take the occurrence over.
    scheduled_client = make_client(
        settings.slack_bot_token.get_secret_value(), settings.slack_api_url, retries=False,
        timeout=max(1, min(15, settings.scheduler_lease_seconds // 4)),
    )
    scheduled_slack = SlackGateway(scheduled_client)
    partnerships = PartnershipService(uow=uow, slack=gateway, clock=clock, bot_user_id=bot_user_id,
                                      team_id=str(identity.get("team_id") or ""),
                                      enterprise_id=str(identity.get("enterprise_id") or ""))
    after_ack = after_ack_executor or ThreadPoolExecutor(max_workers=max(2, settings.http_threads // 2),
                                                         thread_name_prefix="after-ack")
    services = Services(
        settings=settings, engine=engine, uow=uow, slack=gateway, clock=clock, bot_user_id=bot_user_id,
        after_ack=after_ack,
        partnerships=partnerships,
        checkins=CheckinService(uow=uow, slack=gateway, clock=clock, partnerships=partnerships,
                                bot_user_id=bot_user_id),
        pulse=PulseService(uow=uow, slack=gateway, clock=clock, partnerships=partnerships,
                           anonymity_key=anonymity_key(settings),
                           min_per_side=settings.poll_min_respondents_per_side, bot_user_id=bot_user_id),
        milestones=MilestoneService(uow=uow, slack=gateway, clock=clock, partnerships=partnerships,
                                    bot_user_id=bot_user_id),
        polls=PollService(uow=uow, slack=gateway, clock=clock, partnerships=partnerships,
                          anonymity_key=anonymity_key(settings),
                          min_per_side=settings.poll_min_respondents_per_side, bot_user_id=bot_user_id),
        issues=IssueService(uow=uow, slack=gateway, clock=clock, partnerships=partnerships, bot_user_id=bot_user_id),
    )
    dispatcher = Dispatcher(
        uow=uow, slack=scheduled_slack, clock=clock, executors=build_executors(services),
        lease=timedelta(seconds=settings.scheduler_lease_seconds), workers=settings.scheduler_workers,
    )
    ticker = Ticker(dispatcher, build_planners(services), tick_seconds=settings.scheduler_tick_seconds)
    services.checkins.wake = ticker.nudge
    services.pulse.wake = ticker.nudge
    services.milestones.wake = ticker.nudge
    services.polls.wake = ticker.nudge
    services.issues.wake = ticker.nudge
    app = App(
        client=client,
        # Signatures are verified once, on the raw bytes, before Bolt sees a request (adapters/web.py,
        # adapters/inbound.py). Bolt's own check would log the whole body of a request it refuses.
        request_verification_enabled=False,
        token_verification_enabled=False,  # verified above, once, with a readable error
        process_before_response=False,
        logger=logging.getLogger("slack_bolt"),
        listener_executor=listener_executor,
    )
    register_all(app, services)
    closers: list[Any] = [client.close, scheduled_client.close]  # their keep-alive connections
    if after_ack_executor is None:  # closed first: votes already acked are saved and answered before the rest
        closers.append(lambda: after_ack.shutdown(wait=True))
    return Partnerbot(settings=settings, services=services, app=app, ticker=ticker, lock=lock, closers=closers)


def settle_heap() -> None:
    """Once per process, after `build`: put everything made at start-up (modules, the app and its listeners, the
    database engine and its caches) out of the cyclic garbage collector's way (`gc.freeze`). Otherwise each full
    collection walks all of it with every thread stopped, about 100 ms here: in a vote storm that pause was the
    slowest acks (bench/poll_votes.py). Tests, which build many bots in one process, do not call it."""
    gc.collect()
    gc.freeze()


def run(bot: Partnerbot, stop: threading.Event, *, worker: bool = False) -> None:
    """Serve until `stop` is set. A worker runs the scheduler and serves only /healthz."""
    settle_heap()
    settings = bot.settings
    server = WebServer(bot.wsgi(serve_slack=not worker), host=settings.host, port=settings.port,
                       threads=settings.http_threads).start()
    bot.closers.append(server.close)
    if settings.scheduler_enabled or worker:
        bot.start_scheduler()
    if worker:
        log.info("Partnerbot worker %s is running; health check on %s/healthz", bot.ticker.dispatcher.worker_id,
                 server.url)
    elif settings.socket_mode:
        assert settings.slack_app_token is not None
        handler = SocketModeHandler(bot.app, app_token=settings.slack_app_token.get_secret_value())
        handler.connect()
        bot.closers.append(handler.close)
        log.info("Partnerbot is running in Socket Mode; health check on %s/healthz", server.url)
    else:
        log.info("Partnerbot is listening on %s/slack/events", server.url)
    stop.wait()
    log.info("Stopping…")


def main(*, worker: bool = False) -> int:
    try:
        settings = load_settings(worker=worker)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level.value)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        bot = build(settings)
    except StartupError as exc:
        print(f"Partnerbot cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        run(bot, stop, worker=worker)
    except OSError as exc:
        print(f"Partnerbot cannot start: cannot listen on {settings.host}:{settings.port} ({exc.strerror}). "
              "Set PORT to a free port.", file=sys.stderr)
        return 1
    finally:
        bot.close()
    log.info("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
