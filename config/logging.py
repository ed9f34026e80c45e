"""Logging set-up. Secrets and what people send never reach the log: a filter masks anything shaped
like a Slack token or a response URL (anyone holding one may post in the conversation for 30 minutes),
and cuts the request bodies some of Bolt's messages carry."""

from __future__ import annotations

import ast
import logging
import re

_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+")
_RESPONSE_URL = re.compile(r"https://hooks\.slack(?:-gov)?\.com/[^\s'\"<>|()\[\]{},]+")
# Bolt messages that dump (part of) a request, and what is left of them.
_BODY_DUMPS = (
    (re.compile(r"(Invalid request signature detected).*", re.S), r"\1 (the request is not logged)"),
    (re.compile(r"(without providing a response for the request) \(.*", re.S), r"\1 (not logged)"),
    (re.compile(r"(Received an unsupported data frame \(session id: [^,]*, opcode: [^,]*), payload: .*", re.S),
     r"\1, payload not logged)"),
    (re.compile(r"(Skipped self event):.*", re.S), r"\1"),
)
_UNHANDLED = re.compile(r"Unhandled request \((\{.*?\})\)(?:\n.*)?", re.S)
# What Bolt's "Unhandled request" summary may keep: ids and types, not values people chose or typed.
_UNHANDLED_KEEP = ("type", "command", "callback_id", "action_id", "block_id", "view", "event")


def redact(text: str) -> str:
    """Mask Slack tokens and response URLs in a string, and cut request bodies out of Bolt's messages."""
    text = _RESPONSE_URL.sub("https://hooks.slack.com/[redacted]", _TOKEN.sub("xox*-[redacted]", text))
    for pattern, replacement in _BODY_DUMPS:
        text = pattern.sub(replacement, text)
    return _UNHANDLED.sub(_unhandled_summary, text)


def _unhandled_summary(match: re.Match[str]) -> str:
    try:
        summary = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError, RecursionError):
        summary = None
    if not isinstance(summary, dict):
        return "Unhandled request (not logged)"
    return f"Unhandled request ({ {k: v for k, v in summary.items() if k in _UNHANDLED_KEEP} })"


class Redact(logging.Filter):
    """Applies `redact` to every log message (with its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with timestamps; idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_partnerbot", False):
            return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
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
