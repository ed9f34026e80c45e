"""Requests that wait on the server for their requester's confirmation button.

`ask` stores what to do and returns the row whose id the button carries; `use` checks a click (the
requester's own button, not used yet, not expired) and marks it used inside the caller's unit of work,
so the work and the mark commit together and a double click does the work once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from blocks.text import mention
from models.partnership import PendingConfirmation
from services.errors import Forbidden, Invalid, NotFound

# How long a confirmation button works (a response_url, which replaces the question, lives 30 minutes).
CONFIRM_WITHIN = timedelta(minutes=30)


def ask(
    s: Session, *, kind: str, partnership_id: int, actor: str, data: dict[str, Any], now: datetime
) -> PendingConfirmation:
    """Store a request of `actor` until they confirm it; drops this partnership's expired ones."""
    s.execute(sa.delete(PendingConfirmation).where(
        col(PendingConfirmation.partnership_id) == partnership_id,
        col(PendingConfirmation.created_at) < now - CONFIRM_WITHIN,
    ))
    pending = PendingConfirmation(kind=kind, partnership_id=partnership_id, actor_id=actor, data=data,
                                  created_at=now)
    s.add(pending)
    s.flush()
    return pending


def button_id(value: str | None) -> int:
    """The confirmation id a button carries (0, which matches nothing, for anything else)."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else 0


def find(s: Session, confirmation_id: int, *, kind: str, lock: bool = False) -> PendingConfirmation:
    """The pending request of this kind, or NotFound saying what to do."""
    pending = s.get(PendingConfirmation, confirmation_id, with_for_update=lock) if confirmation_id else None
    if pending is None or pending.kind != kind:
        raise _no_longer_works()
    return pending


def use(
    s: Session, confirmation_id: int, *, kind: str, partnership_id: int, actor: str, now: datetime
) -> PendingConfirmation:
    """Check a click on a confirmation button for this partnership and mark the request used, in the
    caller's transaction (so the mark commits with the work, or not at all)."""
    pending = find(s, confirmation_id, kind=kind, lock=True)
    if pending.partnership_id != partnership_id:
        raise _no_longer_works()
    if pending.actor_id != actor:
        raise Forbidden(f"This button answers a request of {mention(pending.actor_id)}; only they can confirm it. "
                        "Run the command yourself if you need it.")
    if pending.used_at is not None:
        raise Invalid("This was already confirmed, and it was done once.")
    if now - pending.created_at > CONFIRM_WITHIN:
        raise _no_longer_works()
    pending.used_at = now
    s.add(pending)
    return pending


def _no_longer_works() -> NotFound:
    minutes = int(CONFIRM_WITHIN.total_seconds() // 60)
    return NotFound(f"This button no longer works (confirmation buttons work for {minutes} minutes). "
                    "Run the command again.")
