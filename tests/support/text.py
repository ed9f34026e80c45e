"""Text that tests put at the app's length limits."""

from __future__ import annotations

# Greek and Japanese (several bytes each in UTF-8, six characters each as JSON \u escapes) with Slack's
# control characters &, < and >, which escaping makes up to five times longer.
UNIT = "Ω&<>契"


def at_limit(limit: int, shift: int = 0) -> str:
    """Non-Latin text with &, < and >, exactly `limit` characters long (no outer spaces). `shift` rotates
    where the pattern starts, so that a cut can be tried at every point of an escaped entity."""
    text = (UNIT[shift % len(UNIT):] + UNIT * (limit // len(UNIT) + 1))[:limit]
    assert len(text) == limit
    return text
