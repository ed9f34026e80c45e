"""Safe mrkdwn: user text is escaped so nobody can ping @channel or forge links through the bot."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def escape(text: str | None) -> str:
    """Escape &, < and > (Slack's control characters) in user-supplied text."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_within(text: str | None, limit: int) -> str:
    """Escape user text and cut it to `limit` characters (marking the cut) without splitting an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    # The longest prefix whose escaped form leaves room for the mark, counted in one pass (re-escaping
    # ever shorter prefixes took seconds on a 3,000-character answer full of & < >).
    room, cut = limit - 1, 0
    for char in text or "":
        room -= _ESCAPED_LENGTH.get(char, 1)
        if room < 0:
            break
        cut += 1
    return escape((text or "")[:cut]) + "…" if limit >= 1 else ""


_ESCAPED_LENGTH = {"&": len("&amp;"), "<": len("&lt;"), ">": len("&gt;")}


def mention(user_id: str) -> str:
    """Mention a person by id (never by name)."""
    return f"<@{user_id}>"


def channel_link(channel_id: str | None, fallback: str = "the channel") -> str:
    return f"<#{channel_id}>" if channel_id else fallback


def truncate(text: str, limit: int) -> str:
    """Cut text to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def local_time(moment: datetime, zone: str, fmt: str = "%a %d %b %Y %H:%M") -> str:
    """Format an aware UTC datetime in a time zone, with the zone's abbreviation."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.strftime(fmt)} {local.tzname()}"
