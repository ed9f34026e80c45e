"""Logging set-up. Tokens never reach the log: a filter masks anything shaped like a Slack token."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+")


class RedactTokens(logging.Filter):
    """Replaces Slack tokens in log messages and their arguments with a mask."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg = _TOKEN.sub("xox*-[redacted]", message)
            record.args = None
        return True


def redact(text: str) -> str:
    """Mask Slack tokens in a string."""
    return _TOKEN.sub("xox*-[redacted]", text)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with timestamps; idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_partnerbot", False):
            return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    handler._partnerbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # slack_sdk logs request bodies at DEBUG; keep it at INFO so message text and tokens stay out.
    logging.getLogger("slack_sdk").setLevel(max(logging.INFO, root.level))
    bolt = logging.getLogger("slack_bolt")
    bolt.setLevel(max(logging.INFO, root.level))
    bolt.addFilter(_DropBoltTokenNotice())
    # APScheduler logs every tick of the ticker at INFO; only its warnings matter here.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


class _DropBoltTokenNotice(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN from the environment "will be unused" because bot.py hands it a
    ready WebClient (made from that very token): true and harmless, so it is not shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()
