"""Partnerships: create one with its channel, manage its people, close it.

Each use case opens its own unit of work, commits, and only then calls Slack. A failed Slack call
leaves the database consistent: channel creation failing removes the half-made partnership; later
steps (invites, topic, charter) are reported as warnings and can be retried.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.clock import Clock
from adapters.slack import CREATION_UNCONFIRMED, SlackError, SlackGateway, SlackUser
from blocks import partnerships as pblocks
from blocks.text import channel_link, escape, mention, truncate
from models.db import UnitOfWork
from models.partnership import (
    AuditEvent,
    InvitationStatus,
    Member,
    PartnerInvitation,
    Partnership,
    PartnershipStatus,
    PendingConfirmation,
    Role,
    Side,
)
from services import confirmations
from services.errors import Forbidden, Invalid, NotFound, UserError
from services.inputs import CloseRequest, NewPartnership, check_email, validate
from services.scheduling import plan_notices

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "partner-"
CHANNEL_NAME_MAX = 80  # Slack's limit for channel names
MAX_NAME_ATTEMPTS = 50
TOPIC_MAX = 250
# A partnership stuck in CREATING this long (its process died mid-way) no longer blocks its name.
ABANDONED_AFTER = timedelta(minutes=10)
CLOSE = "close"  # the kind of a pending `/partner close`

# What a person can do about a Slack error, by error code.
_ADVICE = {
    "restricted_action": "Your workspace settings do not allow this; ask a Slack admin to allow it for the app.",
    "missing_scope": "The app lacks a permission: reinstall it from manifest.yml.",
    "not_paid": "Slack Connect needs a paid Slack plan on our side.",
    "invalid_email": "Check the address and retry with `/partner invite <email>`.",
    "not_allowed_for_grid_workspace": "Your Enterprise Grid does not allow this invitation from a workspace app.",
    "no_external_invite_permission": "You need permission to invite people from other organizations.",
    "connection_limit_exceeded": "Slack's limit of Slack Connect connections is reached.",
    "ratelimited": "Slack is busy; try again in a minute.",
    "connection_error": "Slack could not be reached; try again in a minute.",
    "expired_trigger_id": "Slack gives an app only 3 seconds to open a form, and that passed: please try again.",
    "file_uploads_disabled": "Your workspace does not allow file uploads; ask a Slack admin to allow them.",
    "file_uploads_except_images_disabled": "Your workspace allows only images to be uploaded; ask a Slack admin "
                                           "to allow other files.",
    "exchanged_trigger_id": "That click was already used to open a form: please click again.",
}


def advice(code: str) -> str:
    return _ADVICE.get(code, "Try again; if it keeps failing, tell your Slack admin the error code above.")


def slugify(name: str) -> str:
    """Channel-safe slug: lowercase ASCII letters, digits, '-' and '_'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_name)
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")
    return slug or "partnership"


def channel_name_candidates(name: str) -> list[str]:
    """partner-<slug>, then partner-<slug>-2, -3, ... each within Slack's 80-character limit."""
    slug = slugify(name)
    names = []
    for n in range(1, MAX_NAME_ATTEMPTS + 1):
        suffix = "" if n == 1 else f"-{n}"
        base = (CHANNEL_PREFIX + slug)[: CHANNEL_NAME_MAX - len(suffix)].rstrip("-_")
        names.append(base + suffix)
    return names


class Access(StrEnum):
    """Who may do something to a partnership."""

    OWNER = "owner"  # its owners
    MEMBER = "member"  # anyone recorded in it: any role, either side (plus whoever the caller names in `also`)


def check_access(
    p: Partnership, members: Sequence[Member], actor: str, what: str, *, need: Access,
    also: Collection[str] = (), also_who: str = "", open_only: bool = True,
) -> None:
    """The one permission check: may `actor` do `what` ("close it") to `p`, whose people are `members`?

    `also`, with MEMBER: people who count as recorded for this action besides the members (a check-in's
    chosen participants). With OWNER: people who may besides the owners while they are recorded in the
    partnership (an issue's owners, its reporter), named in the refusal as `also_who` ("the owners of issue
    #7 (<@U1>)"). `open_only`: refuse on a closed partnership. Raises Forbidden or Invalid, saying who can and
    what to do; returns when allowed.
    """
    if open_only and p.status == PartnershipStatus.CLOSED:
        raise Invalid(f"*{escape(p.name)}* is closed, so nothing can be done in it any more.")
    role = next((m.role for m in members if m.user_id == actor), None)
    if need == Access.OWNER and role != Role.OWNER and not (role is not None and actor in also):
        who = ", ".join(mention(m.user_id) for m in members if m.role == Role.OWNER) or "nobody"
        if also_who:
            raise Forbidden(f"Only {also_who} and the owners of *{escape(p.name)}* can {what}. Its owners: {who}; "
                            "ask one of them.")
        raise Forbidden(f"Only owners of *{escape(p.name)}* can {what}. Its owners: {who}; ask one of them.")
    if need == Access.MEMBER and role is None and actor not in also:
        raise Forbidden(f"Only people in the *{escape(p.name)}* partnership can {what}. Ask one of its owners to "
                        "add you with `/partner add @you`.")


@dataclass(frozen=True)
class Standing:
    """One person's member row in a partnership, as a caller read it with another statement (a vote reads it
    with its poll's row lock): their side (None: not recorded) and whether they left its channel (then they are
    in no new audience: see PartnershipService.audience)."""

    side: Side | None
    left: bool

    @classmethod
    def of(cls, side: Side | None, left_at: datetime | None) -> Standing:
        return cls(side, side is not None and left_at is not None)


@dataclass
class PartnershipDetail:
    partnership: Partnership
    members: list[Member]
    invitations: list[PartnerInvitation]


@dataclass
class Outcome:
    """What happened, for the person who acted: a message plus warnings about partial failures."""

    message: str
    warnings: list[str] = field(default_factory=list)
    partnership: Partnership | None = None
    created: bool = False

    def text(self) -> str:
        if not self.warnings:
            return self.message
        return self.message + "\n" + "\n".join(f":warning: {w}" for w in self.warnings)


class PartnershipService:
    def __init__(
        self, *, uow: UnitOfWork, slack: SlackGateway, clock: Clock, bot_user_id: str = "", team_id: str = "",
        enterprise_id: str = "",
    ) -> None:
        self.uow = uow
        self.slack = slack
        self.clock = clock
        self.bot_user_id = bot_user_id
        self.team_id = team_id  # the workspace the app is installed in (auth.test)
        self.enterprise_id = enterprise_id or None  # its Enterprise Grid organization, if any (auth.test)

    # -- queries -----------------------------------------------------------------------------
    def by_channel(self, channel_id: str) -> PartnershipDetail | None:
        with self.uow(read_only=True) as s:
            p = s.exec(select(Partnership).where(Partnership.channel_id == channel_id)).first()
            return self._detail(s, p) if p else None

    def get(self, partnership_id: int) -> PartnershipDetail | None:
        with self.uow(read_only=True) as s:
            p = s.get(Partnership, partnership_id)
            return self._detail(s, p) if p else None

    def require_in_channel(self, channel_id: str) -> PartnershipDetail:
        detail = self.by_channel(channel_id)
        if detail is None:
            raise NotFound(
                "This command works inside a partnership channel. Run it in the partnership's "
                "#partner-… channel (see `/partner list` for yours), or start one with `/partner new <name>`."
            )
        return detail

    def for_user(self, user_id: str) -> list[tuple[Partnership, Role]]:
        """The partnerships a person belongs to, open ones first, newest first."""
        with self.uow(read_only=True) as s:
            rows = s.exec(
                select(Partnership, Member)
                .join(Member, col(Member.partnership_id) == col(Partnership.id))
                .where(Member.user_id == user_id)
                .where(Partnership.status != PartnershipStatus.CREATING)
                .order_by(col(Partnership.status).asc(), col(Partnership.created_at).desc())
            ).all()
            return [(p, m.role) for p, m in rows]

    def check_name_free(self, name: str, *, creation_key: str | None = None) -> None:
        """Raise Invalid when another open partnership already has this name (not the one this very
        request created: a retried submission must not turn into an error)."""
        with self.uow(read_only=True) as s:  # runs before the form is answered: never waits for a writer
            if creation_key and s.exec(select(Partnership).where(Partnership.creation_key == creation_key)).first():
                return
            taken = s.exec(select(Partnership).where(Partnership.open_name_key == name.strip().lower())).first()
            if taken is not None and taken.status == PartnershipStatus.ACTIVE:
                raise Invalid(
                    f"A partnership named *{escape(taken.name)}* is already open; pick another name.",
                    {"name": "A partnership with this name is already open; pick another name."},
                )

    def audit_trail(self, partnership_id: int, *, last: int | None = None) -> list[AuditEvent]:
        """Who did what, oldest first (only the `last` events when given)."""
        with self.uow(read_only=True) as s:
            query = select(AuditEvent).where(AuditEvent.partnership_id == partnership_id)
            if last is not None:
                query = query.order_by(col(AuditEvent.id).desc()).limit(last)
                return list(reversed(s.exec(query).all()))
            return list(s.exec(query.order_by(col(AuditEvent.id))).all())

    # -- create --------------------------------------------------------------------------------
    def create(self, req: NewPartnership, *, actor: str, team_id: str, creation_key: str | None) -> Outcome:
        """Create the partnership and its channel. Safe to call twice with the same creation_key."""
        reserved = self._reserve(req, actor=actor, team_id=team_id, creation_key=creation_key)
        if isinstance(reserved, Outcome):
            return reserved
        p = reserved
        try:
            channel = self._create_channel(p.name, is_private=req.is_private)
        except SlackError as exc:
            with self.uow() as s:
                row = s.get(Partnership, p.id)
                if row is not None:
                    s.delete(row)
            log.warning("channel creation for partnership %s failed: %s", p.id, exc.code)
            if exc.code == CREATION_UNCONFIRMED:
                raise UserError(
                    f"Slack may have created the channel for *{escape(p.name)}* but did not confirm it, so "
                    "nothing was set up. Try again in a minute: Partnerbot will take that channel rather than "
                    "make a second one."
                ) from None
            raise UserError(
                f"Slack refused to create the channel for *{escape(p.name)}* (`{exc.code}`), so nothing was "
                f"created. {advice(exc.code)}"
            ) from None

        owners = list(dict.fromkeys([actor, *req.owners]))
        members = [u for u in req.members if u not in owners]
        with self.uow() as s:
            row = s.get(Partnership, p.id)
            assert row is not None
            row.channel_id = channel["id"]
            row.channel_name = channel.get("name")
            row.status = PartnershipStatus.ACTIVE
            for uid in owners:
                s.add(Member(partnership_id=row.id, user_id=uid, role=Role.OWNER, side=Side.OURS, added_by=actor))
            for uid in members:
                s.add(Member(partnership_id=row.id, user_id=uid, role=Role.MEMBER, side=Side.OURS, added_by=actor))
            self.audit(s, row, actor, "created", channel=channel["id"], owners=owners, members=members,
                        partner_emails=req.partner_emails)
            p = row
        warnings: list[str] = []
        refused = self.slack_invite(p.channel_id or "", [*owners, *members])
        warnings += [f"Could not add {mention(uid)} to the channel (`{code}`)." for uid, code in refused]
        for email in req.partner_emails:
            warning = self._invite_partner(p, email, actor)
            if warning:
                warnings.append(warning)
        warnings += self._set_topic_and_purpose(p)
        warnings += self._post_charter(p)
        where = channel_link(p.channel_id)
        message = f":white_check_mark: Partnership *{escape(p.name)}* is set up in {where}."
        if req.partner_emails:
            sent = len(req.partner_emails) - sum(1 for w in warnings if w.startswith("Slack Connect"))
            message += f" Slack Connect invitations sent: {sent} of {len(req.partner_emails)}."
        return Outcome(message, warnings, partnership=p, created=True)

    def _reserve(
        self, req: NewPartnership, *, actor: str, team_id: str, creation_key: str | None
    ) -> Partnership | Outcome:
        """Insert the CREATING row, or say why not (a repeat of the same request, or a name in use)."""
        name_key = req.name.lower()
        for _ in range(2):
            with self.uow() as s:
                if creation_key:
                    same = s.exec(select(Partnership).where(Partnership.creation_key == creation_key)).first()
                    if same is not None:
                        return self._repeat(same)
                taken = s.exec(select(Partnership).where(Partnership.open_name_key == name_key)).first()
                if taken is not None:
                    stale = taken.created_at < self.clock.now() - ABANDONED_AFTER
                    if taken.status == PartnershipStatus.CREATING and stale:
                        s.delete(taken)
                        s.flush()
                    else:
                        raise Invalid(
                            f"A partnership named *{escape(taken.name)}* is already open in "
                            f"{channel_link(taken.channel_id)}. Pick another name, or close that one first.",
                            {"name": "A partnership with this name is already open"},
                        )
                p = Partnership(
                    name=req.name, open_name_key=name_key, partner_org=req.partner_org, goals=req.goals,
                    timezone=req.timezone, is_private=req.is_private, team_id=team_id, created_by=actor,
                    creation_key=creation_key, created_at=self.clock.now(),
                )
                s.add(p)
                try:
                    s.flush()
                except IntegrityError:
                    s.rollback()
                    continue  # someone else inserted the same key or name at once: look again
                return p
        raise UserError("Another request is creating this partnership right now; try again in a moment.")

    def _repeat(self, p: Partnership) -> Outcome:
        if p.status == PartnershipStatus.CREATING:
            return Outcome(f":hourglass: *{escape(p.name)}* is still being set up.", partnership=p)
        return Outcome(
            f"Partnership *{escape(p.name)}* already exists in {channel_link(p.channel_id)}.", partnership=p
        )

    def _create_channel(self, name: str, *, is_private: bool) -> dict[str, Any]:
        def in_use(channel_id: str) -> bool:  # a channel whose creation answer was lost is adopted only if free
            with self.uow(read_only=True) as s:
                return s.exec(select(Partnership.id).where(Partnership.channel_id == channel_id)).first() is not None

        last: SlackError | None = None
        for candidate in channel_name_candidates(name):
            try:
                return self.slack.create_channel(candidate, is_private=is_private, in_use=in_use)
            except SlackError as exc:
                if exc.code != "name_taken":
                    raise
                last = exc
        assert last is not None
        raise last

    def slack_invite(self, channel_id: str, user_ids: Sequence[str]) -> list[tuple[str, str]]:
        ids = [u for u in user_ids if u and u != self.bot_user_id]
        if not ids or not channel_id:
            return []
        return self.slack.invite(channel_id, ids)

    def _set_topic_and_purpose(self, p: Partnership) -> list[str]:
        assert p.channel_id
        topic = f"Partnership with {p.partner_org}" if p.partner_org else f"Partnership: {p.name}"
        purpose = p.goals.splitlines()[0] if p.goals else f"Shared channel of the {p.name} partnership"
        warnings = []
        for setter, text in ((self.slack.set_topic, topic), (self.slack.set_purpose, purpose)):
            try:
                setter(p.channel_id, truncate(text, TOPIC_MAX))
            except SlackError as exc:
                warnings.append(f"Could not set the channel topic/purpose (`{exc.code}`).")
        return warnings

    def _post_charter(self, p: Partnership) -> list[str]:
        assert p.channel_id
        with self.uow() as s:
            members = list(s.exec(select(Member).where(Member.partnership_id == p.id)).all())
        try:
            ts = self.slack.post(p.channel_id, text=pblocks.charter_text(p), blocks=pblocks.charter_blocks(p, members),
                                 key=f"charter:{p.id}")
        except SlackError as exc:
            return [f"Could not post the charter (`{exc.code}`). {advice(exc.code)}"]
        with self.uow() as s:
            row = s.get(Partnership, p.id)
            if row is not None:
                row.charter_ts = ts
        p.charter_ts = ts
        try:
            self.slack.pin(p.channel_id, ts)
        except SlackError as exc:
            return [f"Posted the charter but could not pin it (`{exc.code}`)."]
        return []

    # -- partner invitations -------------------------------------------------------------------
    def _invite_partner(self, p: Partnership, email: str, actor: str) -> str | None:
        """Send one Slack Connect invitation and record its result; returns a warning on failure."""
        assert p.channel_id
        maybe_sent = False
        try:
            invite_id = self.slack.invite_shared(p.channel_id, email)
            status, error = InvitationStatus.SENT, None
        except SlackError as exc:
            invite_id, status, error, maybe_sent = None, InvitationStatus.FAILED, exc.code, exc.maybe_done
        with self.uow() as s:
            inv = s.exec(
                select(PartnerInvitation).where(
                    PartnerInvitation.partnership_id == p.id, PartnerInvitation.email == email
                )
            ).first()
            if inv is None:
                inv = PartnerInvitation(partnership_id=p.id, email=email, status=status, invited_by=actor)
            inv.status, inv.error, inv.invite_id = status, error, invite_id
            inv.attempts += 1
            inv.invited_by = actor
            inv.updated_at = self.clock.now()
            s.add(inv)
            self.audit(s, p, actor, "partner_invited", email=email, status=status.value, error=error)
        if maybe_sent:  # sent once (see SlackGateway.invite_shared): a blind retry could invite them twice
            return (
                f"Slack did not confirm the Slack Connect invitation to {escape(email)} (`{error}`): it may have "
                f"gone out anyway. Check the channel's pending invitations before sending it again with "
                f"`/partner invite {escape(email)}`."
            )
        if error:
            return (
                f"Slack Connect invitation to {escape(email)} was refused (`{error}`). {advice(error)} "
                f"Retry with `/partner invite {escape(email)}`."
            )
        return None

    def invite_partner(self, *, channel_id: str, actor: str, email: str) -> Outcome:
        detail = self.require_owner(channel_id, actor, "invite partner contacts")
        try:
            address = check_email(email)
        except ValueError as exc:
            raise Invalid(f"{escape(str(exc))}. Usage: `/partner invite name@partner.com`.") from None
        warning = self._invite_partner(detail.partnership, address, actor)
        if warning:
            return Outcome(f":x: {warning}", partnership=detail.partnership)
        sent = f":envelope: Slack Connect invitation sent to {escape(address)}."
        return Outcome(sent, partnership=detail.partnership)

    # -- people --------------------------------------------------------------------------------
    def add_member(self, *, channel_id: str, actor: str, user_id: str, role: Role | None,
                   side: Side | None = None) -> Outcome:
        """Record someone (or change their role). Their side is the partner's when Slack shows them as of another
        organization or they are added as a partner contact; `side` records it explicitly when Slack cannot tell
        (a partner's sponsor with an account in our workspace). Without it, someone already recorded keeps their
        side."""
        detail = self.require_owner(channel_id, actor, "add people")
        p = detail.partnership
        try:
            user = self.slack.user_info(user_id)
        except SlackError as exc:
            if exc.code in ("user_not_found", "user_not_visible"):
                raise NotFound(f"Slack does not know the user {mention(user_id)}. Mention them with @.") from None
            raise UserError(f"Could not look up {mention(user_id)} (`{exc.code}`). {advice(exc.code)}") from None
        if user.is_bot:
            raise Invalid(f"{mention(user_id)} is a bot; only people can join a partnership.")
        slack_side = self.side_for(p, user)
        if side == Side.OURS and slack_side == Side.PARTNER:
            raise Invalid(f"Slack shows {mention(user_id)} as someone of another organization, so they are on the "
                          f"partner's side. Leave out `ours`: `/partner add @person {(role or Role.SPONSOR).value}`.")
        if side == Side.OURS and role == Role.PARTNER_CONTACT:
            raise Invalid("A partner contact is on the partner's side. Give another role for our side, e.g. "
                          "`/partner add @person sponsor ours`.")
        with self.uow() as s:
            existing = s.exec(
                select(Member).where(Member.partnership_id == p.id, Member.user_id == user_id)
            ).first()
            if slack_side == Side.PARTNER or role == Role.PARTNER_CONTACT:
                side = Side.PARTNER
            elif side is None:
                side = existing.side if existing is not None else Side.OURS
            role = role or (Role.PARTNER_CONTACT if side == Side.PARTNER else Role.MEMBER)
            if existing is not None and existing.role == role and existing.side != side:
                existing.side = side  # the same role, recorded on the other side
                s.add(existing)
                self.audit(s, p, actor, "side_changed", user=user_id, role=role.value, side=side.value)
                return Outcome(f"{mention(user_id)} is now on {pblocks.side_words(side)} of *{escape(p.name)}*, as "
                               f"{role.value.replace('_', ' ')}.", partnership=p)
            if existing is not None and existing.role == role:
                changed = None
            elif existing is not None:
                if existing.role == Role.OWNER and self._owner_count(s, p) == 1:
                    raise Invalid(f"{mention(user_id)} is the only owner; add another owner first.")
                changed, existing.role, existing.side = existing.role, role, side
                s.add(existing)
            else:
                changed = "new"
                s.add(Member(partnership_id=p.id, user_id=user_id, role=role, side=side, added_by=actor))
            if changed is not None:
                self.audit(s, p, actor, "member_added" if changed == "new" else "role_changed",
                            user=user_id, role=role.value, side=side.value)
        label, where = role.value.replace("_", " "), pblocks.side_words(side)
        if changed is None:
            message = f"{mention(user_id)} is already {label} of *{escape(p.name)}*."
        elif changed == "new":
            message = f":wave: Added {mention(user_id)} to *{escape(p.name)}* as {label} ({where})."
        else:
            message = f"Changed {mention(user_id)}'s role in *{escape(p.name)}* to {label} ({where})."
        warnings = [f"Could not add them to the channel (`{code}`). {advice(code)}"
                    for _, code in self.slack_invite(channel_id, [user_id])]
        return Outcome(message, warnings, partnership=p)

    def remove_member(self, *, channel_id: str, actor: str, user_id: str) -> Outcome:
        detail = self.require_owner(channel_id, actor, "remove people")
        p = detail.partnership
        with self.uow() as s:
            member = s.exec(select(Member).where(Member.partnership_id == p.id, Member.user_id == user_id)).first()
            if member is None:
                raise NotFound(f"{mention(user_id)} is not part of *{escape(p.name)}*.")
            if member.role == Role.OWNER and self._owner_count(s, p) == 1:
                raise Invalid(f"{mention(user_id)} is the only owner. Add another owner before removing them.")
            s.delete(member)
            self.audit(s, p, actor, "member_removed", user=user_id, role=member.role.value)
        warnings = []
        if user_id != self.bot_user_id:
            try:
                self.slack.kick(channel_id, user_id)
            except SlackError as exc:
                if exc.code != "not_in_channel":
                    warnings.append(f"Could not remove them from the channel (`{exc.code}`). {advice(exc.code)}")
        return Outcome(f"Removed {mention(user_id)} from *{escape(p.name)}*.", warnings, partnership=p)

    # -- sides and audiences: who is on which side, and who counts now ---------------------------------
    def side_for(self, p: Partnership, user: SlackUser) -> Side:
        """The side a person Slack describes as `user` belongs on: the partner's when they are of another Slack
        organization than the workspace `p` was created in (another team, or Slack marks them external or a
        stranger), ours otherwise. The one place that decides it."""
        return Side.PARTNER if user.from_another_org(p.team_id or self.team_id, self.enterprise_id) else Side.OURS

    def audience(
        self, s: Session, partnership_id: int, side: Side | None = None, *, user_id: str | None = None,
    ) -> list[Member]:
        """The people something new of the partnership is for (a poll, a check-in round, a milestone's
        recognition): everyone recorded who has not left its channel, on `side` or on both, in the order they
        were recorded. People who left stay recorded (their past answers keep their name and side) but are
        not in it. `user_id`: only that person (one row read: a vote checks its voter, not the whole audience)."""
        query = select(Member).where(Member.partnership_id == partnership_id, col(Member.left_at).is_(None))
        if side is not None:
            query = query.where(Member.side == side)
        if user_id is not None:
            query = query.where(Member.user_id == user_id)
        return list(s.exec(query.order_by(col(Member.id))).all())

    def left_channel(self, s: Session, partnership_id: int, *, user_id: str | None = None) -> set[str]:
        """The people recorded in the partnership who left its channel (`user_id`: only that person): a feature
        that lets owners choose people (a check-in's chosen participants) leaves these out of what it starts
        next."""
        query = select(Member.user_id).where(Member.partnership_id == partnership_id,
                                             col(Member.left_at).is_not(None))
        if user_id is not None:
            query = query.where(Member.user_id == user_id)
        return set(s.exec(query).all())

    def names(self, users: Sequence[str], *, deadline: float | None = None) -> dict[str, str]:
        """Each person's Slack name (users.info), by user id; their id when Slack cannot say.

        `deadline` (a `time.monotonic()` value): a person waits for what follows (a form whose trigger_id
        lives 3 s), so everyone is asked at once, each call sent once without retries, and whoever Slack has
        not named by then keeps their id; the calls still out finish on their own (within WAITING_TIMEOUT)."""
        if deadline is None:
            return {user: self._name(user) for user in users}
        if not users or deadline <= time.monotonic():  # nobody to name, or no time left to ask
            return {user: user for user in users}
        pool = ThreadPoolExecutor(max_workers=len(users), thread_name_prefix="names")
        try:
            asked = {user: pool.submit(self._name, user, waiting=True) for user in users}
            wait(asked.values(), timeout=max(0.0, deadline - time.monotonic()))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        named = {user: answer.result() for user, answer in asked.items() if answer.done() and not answer.cancelled()}
        if len(named) < len(asked):
            log.info("no name in time for %d of %d people", len(asked) - len(named), len(asked))
        return {user: named.get(user, user) for user in asked}

    def _name(self, user: str, *, waiting: bool = False) -> str:
        try:
            return self.slack.user_info(user, waiting=waiting).name
        except SlackError as exc:
            log.info("no name for a person: %s", exc.code)
            return user

    def side_of(self, s: Session, partnership_id: int, user_id: str) -> Side | None:
        """The side a person is recorded on in the partnership (also after they left the channel, so their
        earlier answers keep their side), or None when they are not recorded."""
        member = self._member(s, partnership_id, user_id)
        return member.side if member is not None else None

    # -- people joining or leaving the channel in Slack ----------------------------------------------------
    def member_joined(
        self, *, channel_id: str, user_id: str, at: datetime | None = None, inviter: str | None = None,
    ) -> Member | None:
        """Slack says `user_id` joined `channel_id` at `at` (member_joined_channel). In an open partnership's
        channel, a person not recorded yet is recorded: someone of another Slack organization as a partner
        contact on the partner's side, anyone else as a member on ours; when Slack shows their email and a
        Slack Connect invitation went to it, that invitation is accepted. Someone recorded who had left counts
        again. Bots, the app itself and other channels are ignored.

        Slack retries an event it thinks was not delivered (X-Slack-Retry-Num), sometimes minutes later: a
        repeat changes nothing, and an event older than the last one applied to the person is ignored.
        Returns the person's row, or None when nothing applies."""
        if not user_id or user_id == self.bot_user_id:
            return None
        with self.uow(read_only=True) as s:
            p = self._open_by_channel(s, channel_id)
            if p is None:
                return None
            known = self._member(s, p.id or 0, user_id)
            if known is not None and known.left_at is None and not _newer(at, known.channel_event_at):
                return known  # already counted, and this event is no news
        user: SlackUser | None = None
        if known is None:
            try:
                user = self.slack.user_info(user_id)
            except SlackError as exc:
                log.warning("partnership %s: could not look up a person who joined its channel (%s); they are "
                            "not recorded", p.id, exc.code)
                return None
            if user.is_bot:
                return None
        try:
            with self.uow() as s:
                p = s.get(Partnership, p.id)
                if p is None or p.status != PartnershipStatus.ACTIVE:
                    return None
                member = self._member(s, p.id or 0, user_id)
                if member is not None:
                    self._channel_event(s, p, member, at, left=False)
                    return member
                if user is None:  # removed with /partner remove since we looked: this join is older news
                    return None
                member = self._record_joined(s, p, user, at=at, inviter=inviter)
                s.flush()
                return member
        except IntegrityError:  # the same join, delivered twice at once, was recorded by the other delivery
            return None

    def member_left(self, *, channel_id: str, user_id: str, at: datetime | None = None) -> Member | None:
        """Slack says `user_id` left `channel_id` at `at` (member_left_channel). A recorded person of an open
        partnership stays recorded, marked as left: they count in no new audience. Repeats and events older
        than the last one applied change nothing. Returns the person's row, or None when nothing applies."""
        if not user_id or user_id == self.bot_user_id:
            return None
        with self.uow(read_only=True) as s:
            p = self._open_by_channel(s, channel_id)
            known = self._member(s, p.id or 0, user_id) if p is not None else None
            if p is None or known is None or (known.left_at is not None and not _newer(at, known.channel_event_at)):
                return None
        with self.uow() as s:
            p = s.get(Partnership, p.id)
            member = self._member(s, p.id or 0, user_id) if p is not None else None
            if p is None or member is None or p.status != PartnershipStatus.ACTIVE:
                return None
            self._channel_event(s, p, member, at, left=True)
            return member

    def _record_joined(
        self, s: Session, p: Partnership, user: SlackUser, *, at: datetime | None, inviter: str | None,
    ) -> Member:
        side = self.side_for(p, user)
        role = Role.PARTNER_CONTACT if side == Side.PARTNER else Role.MEMBER
        member = Member(partnership_id=p.id or 0, user_id=user.id, role=role, side=side,
                        added_by=inviter or user.id, added_at=self.clock.now(), channel_event_at=at)
        s.add(member)
        invitation = self._accept_invitation(s, p, user)
        if invitation is not None:
            self.audit(s, p, user.id, "joined_by_invitation", user=user.id, role=role.value, side=side.value,
                       email=invitation.email, inviter=inviter)
        else:
            self.audit(s, p, user.id, "joined", user=user.id, role=role.value, side=side.value, inviter=inviter)
        return member

    def _accept_invitation(self, s: Session, p: Partnership, user: SlackUser) -> PartnerInvitation | None:
        """The Slack Connect invitation sent to this person's address, now accepted (None when Slack does not
        show their email, or no invitation waits for it)."""
        if not user.email:
            return None
        invitation = s.exec(select(PartnerInvitation).where(
            PartnerInvitation.partnership_id == p.id, PartnerInvitation.email == user.email.strip().lower(),
            PartnerInvitation.status == InvitationStatus.SENT,
        )).first()
        if invitation is None:
            return None
        now = self.clock.now()
        invitation.status, invitation.accepted_by, invitation.accepted_at = InvitationStatus.ACCEPTED, user.id, now
        invitation.updated_at = now
        s.add(invitation)
        return invitation

    def _channel_event(self, s: Session, p: Partnership, member: Member, at: datetime | None, *, left: bool) -> None:
        """Apply a join (`left=False`) or a leave to a recorded person, unless an event at least as new was
        applied already."""
        if at is not None:
            if not _newer(at, member.channel_event_at):
                return
            member.channel_event_at = at
        if left and member.left_at is None:
            member.left_at = self.clock.now()
            self.audit(s, p, member.user_id, "left", user=member.user_id, role=member.role.value,
                       side=member.side.value)
        elif not left and member.left_at is not None:
            member.left_at = None
            self.audit(s, p, member.user_id, "rejoined", user=member.user_id, role=member.role.value,
                       side=member.side.value)
        s.add(member)

    def _open_by_channel(self, s: Session, channel_id: str) -> Partnership | None:
        if not channel_id:
            return None
        return s.exec(select(Partnership).where(Partnership.channel_id == channel_id,
                                                Partnership.status == PartnershipStatus.ACTIVE)).first()

    @staticmethod
    def _member(s: Session, partnership_id: int, user_id: str) -> Member | None:
        return s.exec(select(Member).where(Member.partnership_id == partnership_id, Member.user_id == user_id)).first()

    # -- close ---------------------------------------------------------------------------------
    def prepare_close(self, *, channel_id: str, actor: str, reason: str) -> tuple[Partnership, PendingConfirmation]:
        """Check that `actor` may close the partnership of this channel, and keep the request until they
        confirm it (`confirm_close`); returns what to confirm. The reason stays on the server."""
        p = self.require_owner(channel_id, actor, "close it").partnership
        req = validate(CloseRequest, reason=reason)
        assert p.id is not None
        with self.uow() as s:
            pending = confirmations.ask(s, kind=CLOSE, partnership_id=p.id, actor=actor, data={"reason": req.reason},
                                        now=self.clock.now())
        return p, pending

    def confirm_close(self, *, confirmation_id: int, actor: str) -> Outcome:
        """The Close button of a `/partner close`: closes once, only for the person who asked."""
        with self.uow(read_only=True) as s:
            pending = confirmations.find(s, confirmation_id, kind=CLOSE)
        return self.close(partnership_id=pending.partnership_id, actor=actor, reason=pending.data.get("reason", ""),
                          confirmation_id=pending.id)

    def close(self, *, partnership_id: int, actor: str, reason: str, confirmation_id: int | None = None) -> Outcome:
        """Close the partnership (owners). With `confirmation_id`, that confirmation is used up in the same
        transaction, so it closes nothing twice."""
        req = validate(CloseRequest, reason=reason)
        with self.uow() as s:
            p = s.get(Partnership, partnership_id, with_for_update=True)
            if p is None:
                raise NotFound("That partnership no longer exists.")
            if p.status == PartnershipStatus.CLOSED:
                return Outcome(f"*{escape(p.name)}* is already closed.", partnership=p)
            if confirmation_id is not None:
                confirmations.use(s, confirmation_id, kind=CLOSE, partnership_id=partnership_id, actor=actor,
                                  now=self.clock.now())
            self.authorize(s, p, actor, "close it", need=Access.OWNER)
            p.status = PartnershipStatus.CLOSED
            p.open_name_key = None
            p.closed_by, p.closed_at, p.close_reason = actor, self.clock.now(), req.reason or None
            s.add(p)
            self.audit(s, p, actor, "closed", reason=req.reason)
            members = list(s.exec(select(Member).where(Member.partnership_id == p.id)).all())
        warnings = []
        if p.channel_id:
            try:
                self.slack.post(p.channel_id, text=f"Partnership closed: {escape(p.name)}",
                                blocks=pblocks.closing_summary_blocks(p, members, actor), key=f"closed:{p.id}")
            except SlackError as exc:
                warnings.append(f"Could not post the closing summary (`{exc.code}`).")
            try:
                self.slack.archive(p.channel_id)
            except SlackError as exc:
                if exc.code != "already_archived":
                    warnings.append(
                        f"Could not archive {channel_link(p.channel_id)} (`{exc.code}`): archive it by hand."
                    )
        return Outcome(f":white_check_mark: Closed *{escape(p.name)}*.", warnings, partnership=p)

    # -- the channel archived or unarchived outside Partnerbot ------------------------------------------
    def channel_archived(self, channel_id: str, *, archived: bool, actor: str | None = None) -> None:
        """Slack says a channel was archived or unarchived (its channel_archive / unarchive events)."""
        with self.uow() as s:
            p = s.exec(select(Partnership).where(Partnership.channel_id == channel_id,
                                                 Partnership.status == PartnershipStatus.ACTIVE)).first()
            if p is not None:
                self.mark_channel(s, p, gone=archived, actor=actor)

    def mark_channel(self, s: Session, p: Partnership, *, gone: bool, actor: str | None = None,
                     error: str = "is_archived") -> None:
        """Record that the partnership's channel is gone (archived, or deleted) or back. While it is gone nothing
        is scheduled for the partnership; its owners are told once, when it goes."""
        now = self.clock.now()
        if gone == (p.channel_archived_at is not None):
            return  # already known
        p.channel_archived_at = now if gone else None
        s.add(p)
        if not gone:
            self.audit(s, p, actor or self.bot_user_id, "channel_unarchived")
            return
        self.audit(s, p, actor or self.bot_user_id, "channel_archived" if actor else "channel_gone", error=error)
        assert p.id is not None
        plan_notices(s, subject_id=p.id, people=self.owners(s, p.id), text=pblocks.channel_gone_notice(p, error),
                     key=f"notice:{p.id}:channel_gone:{now:%Y%m%dT%H%M%S}", now=now)

    # -- helpers -------------------------------------------------------------------------------
    def _detail(self, s: Session, p: Partnership) -> PartnershipDetail:
        members = list(s.exec(select(Member).where(Member.partnership_id == p.id).order_by(col(Member.id))).all())
        invitations = list(
            s.exec(
                select(PartnerInvitation)
                .where(PartnerInvitation.partnership_id == p.id)
                .order_by(col(PartnerInvitation.id))
            ).all()
        )
        return PartnershipDetail(p, members, invitations)

    # -- permissions: every path goes through check_access --------------------------------------
    def require(
        self, channel_id: str, actor: str, what: str, *, need: Access = Access.MEMBER, open_only: bool = True,
    ) -> PartnershipDetail:
        """The partnership of this channel, when `actor` may do `what` to it."""
        detail = self.require_in_channel(channel_id)
        check_access(detail.partnership, detail.members, actor, what, need=need, open_only=open_only)
        return detail

    def require_owner(self, channel_id: str, actor: str, what: str) -> PartnershipDetail:
        """The open partnership of this channel, when `actor` is one of its owners."""
        return self.require(channel_id, actor, what, need=Access.OWNER)

    def require_member(self, channel_id: str, actor: str, what: str) -> PartnershipDetail:
        """The open partnership of this channel, when `actor` belongs to it (any role, either side)."""
        return self.require(channel_id, actor, what, need=Access.MEMBER)

    def require_owner_by_id(self, partnership_id: int, actor: str, what: str) -> PartnershipDetail:
        """The open partnership with this id, when `actor` is one of its owners (forms and buttons)."""
        detail = self.get(partnership_id)
        if detail is None:
            raise NotFound("That partnership no longer exists.")
        check_access(detail.partnership, detail.members, actor, what, need=Access.OWNER)
        return detail

    def authorize(
        self, s: Session, p: Partnership, actor: str, what: str, *, need: Access = Access.MEMBER,
        also: Collection[str] = (), also_who: str = "", open_only: bool = True,
    ) -> None:
        """check_access inside a unit of work the caller holds (its answer holds until that commits)."""
        members = s.exec(select(Member).where(Member.partnership_id == p.id)).all()
        check_access(p, members, actor, what, need=need, also=also, also_who=also_who, open_only=open_only)

    def escalation_people(self, s: Session, partnership_id: int | None) -> list[Escalated]:
        """Who hears an escalation, side by side (ours first): that side's sponsors; without one, that side's
        owners; on the partner's side without either, its partner contacts still in the channel. A side with nobody
        has `people` empty (and `role` None)."""
        members = list(s.exec(select(Member).where(Member.partnership_id == partnership_id)
                              .order_by(col(Member.id))).all())

        def of(side: Side, role: Role, *, present: bool) -> list[str]:
            return [m.user_id for m in members
                    if m.role == role and m.side == side and not (present and m.left_at is not None)]

        out = []
        for side, chain in ((Side.OURS, ((Role.SPONSOR, False), (Role.OWNER, False))),
                            (Side.PARTNER, ((Role.SPONSOR, False), (Role.OWNER, False), (Role.PARTNER_CONTACT, True)))):
            found = Escalated(side, None, [])
            for role, present in chain:
                if people := of(side, role, present=present):
                    found = Escalated(side, role, people)
                    break
            out.append(found)
        return out

    def _owner_count(self, s: Session, p: Partnership) -> int:
        return len(self.owners(s, p.id))

    def owners(self, s: Session, partnership_id: int | None) -> list[str]:
        """The user ids of a partnership's owners."""
        return list(s.exec(select(Member.user_id).where(Member.partnership_id == partnership_id,
                                                        Member.role == Role.OWNER)).all())

    def audit(self, s: Session, p: Partnership, actor: str, action: str, **detail: Any) -> None:
        assert p.id is not None
        s.add(AuditEvent(partnership_id=p.id, actor_id=actor, action=action, detail=detail, at=self.clock.now()))



@dataclass(frozen=True)
class Escalated:
    """The people of one side who hear an escalation, and in which role they hear it (None: nobody)."""

    side: Side
    role: Role | None
    people: list[str]

    def label(self) -> str:
        """"our sponsor", "the partner's sponsors", "the partner's contact", "nobody on the partner's side"."""
        whose = "our" if self.side == Side.OURS else "the partner's"
        if self.role is None:
            return f"nobody on {whose} side"
        noun = {Role.SPONSOR: "sponsor", Role.OWNER: "owner", Role.PARTNER_CONTACT: "contact"}.get(self.role, "member")
        return f"{whose} {noun}" + ("s" if len(self.people) > 1 else "")

def _newer(at: datetime | None, than: datetime | None) -> bool:
    """Whether an event at `at` is news after one at `than` (an event without a time always is; one at the same
    time is the same event delivered again)."""
    return at is None or than is None or at > than


class PartnershipFeature:
    """What a feature service built on the partnerships needs (check-ins, milestones, the issue log): the unit of
    work, Slack, the clock, the partnerships (who may, audiences) and the app's own user id. `wake` is called after
    a write that wants scheduled work to run soon; bot.py points it at the ticker."""

    def __init__(
        self, *, uow: UnitOfWork, slack: SlackGateway, clock: Clock, partnerships: PartnershipService,
        bot_user_id: str = "",
    ) -> None:
        self.uow = uow
        self.slack = slack
        self.clock = clock
        self.partnerships = partnerships
        self.bot_user_id = bot_user_id
        self.wake: Callable[[], None] = lambda: None
