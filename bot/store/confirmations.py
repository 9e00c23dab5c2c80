"""Pending confirmations: a change that waits for its requester's click, or for a second
person's approval when the app is protected.

A click moves a row out of `pending` with one conditional UPDATE, so a double click,
a click Slack delivers twice, or two web dynos handling the same click act exactly once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from bot.store.audit import Actor
from bot.store.db import Database, aware
from bot.store.models import Confirmation

DEFAULT_TTL = timedelta(minutes=10)
# A `config set` prompt carries the values until it is decided; then they are wiped, so a
# secret lives in the database only while the prompt waits for its click.
_CARRIES_SECRETS = "config %"


@dataclass(frozen=True)
class Pending:
    id: str
    user_id: str
    app: str
    command: str
    before: dict[str, Any]
    targets: dict[str, Any]
    expires_at: datetime
    state: str
    decided_by: str | None
    approval_required: bool = False
    force_reason: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    created_at: datetime | None = None
    decided_at: datetime | None = None


def _pending(row: Confirmation) -> Pending:
    return Pending(
        id=row.id,
        user_id=row.user_id,
        app=row.app,
        command=row.command,
        before=row.before,
        targets=row.targets,
        expires_at=row.expires_at,
        state=row.state,
        decided_by=row.decided_by,
        approval_required=bool(row.approval_required),
        force_reason=row.force_reason,
        team_id=row.team_id,
        channel_id=row.channel_id,
        created_at=aware(row.created_at),
        decided_at=aware(row.decided_at) if row.decided_at is not None else None,
    )


class Confirmations:
    def __init__(self, db: Database, ttl: timedelta = DEFAULT_TTL) -> None:
        self._db = db
        self.ttl = ttl

    def create(
        self,
        actor: Actor,
        app: str,
        command: str,
        before: dict[str, Any],
        targets: dict[str, Any],
        now: datetime,
        *,
        approval_required: bool = False,
        force_reason: str | None = None,
    ) -> Pending:
        row = Confirmation(
            id=secrets.token_urlsafe(16),
            created_at=now,
            expires_at=now + self.ttl,
            team_id=actor.team_id,
            user_id=actor.user_id,
            channel_id=actor.channel_id,
            app=app,
            command=command,
            before=before,
            targets=targets,
            state="pending",
            approval_required=approval_required,
            force_reason=force_reason,
            response_url=actor.reply_to,
        )
        with self._db.session() as session, session.begin():
            session.add(row)
        return _pending(row)

    def get(self, confirmation_id: str) -> Pending | None:
        with self._db.session() as session:
            row = session.get(Confirmation, confirmation_id)
            return _pending(row) if row is not None else None

    def open_for(self, user_id: str, app: str, command: str, now: datetime) -> Pending | None:
        """`user_id`'s prompt for `app` still waiting on a click whose command starts with
        `command` (e.g. `maintenance demo on`), or None."""
        return self._oldest_live(
            app,
            now,
            Confirmation.user_id == user_id,
            Confirmation.command.startswith(command, autoescape=True),
        )

    def asked_again(self, user_id: str, app: str, command: str, now: datetime) -> Pending | None:
        """`user_id`'s own prompt to make exactly `command` on `app` (no approval needed)
        still waiting on their click, or None."""
        return self._oldest_live(
            app,
            now,
            Confirmation.user_id == user_id,
            Confirmation.command == command,
            Confirmation.approval_required.is_(False),
        )

    def awaiting_approval(self, app: str, command: str, now: datetime) -> Pending | None:
        """The oldest request, by anyone, to make `command` on `app` that still waits for a
        second person's approval, or None."""
        return self._oldest_live(
            app, now, Confirmation.command == command, Confirmation.approval_required.is_(True)
        )

    def _oldest_live(self, app: str, now: datetime, *where: Any) -> Pending | None:
        """The oldest prompt for `app` still waiting on a click that matches `where`."""
        with self._db.session() as session:
            row = session.scalars(
                select(Confirmation)
                .where(
                    Confirmation.app == app,
                    Confirmation.state == "pending",
                    Confirmation.expires_at > now,
                    *where,
                )
                .order_by(Confirmation.created_at)
            ).first()
            return _pending(row) if row is not None else None

    def decide(self, confirmation_id: str, user_id: str, state: str, now: datetime) -> bool:
        """Move a live pending row to `state`; True for the one caller that won."""
        with self._db.session() as session, session.begin():
            result = session.execute(
                update(Confirmation)
                .where(
                    Confirmation.id == confirmation_id,
                    Confirmation.state == "pending",
                    Confirmation.expires_at > now,
                )
                .values(state=state, decided_by=user_id, decided_at=now)
            )
            if result.rowcount == 1:
                _forget_secrets(session, confirmation_id)
            return result.rowcount == 1

    def expire_due(self, now: datetime, limit: int = 100) -> list[tuple[Pending, str | None]]:
        """Move every pending row past its expiry to `expired`; each row moves once, even
        with two workers sweeping, and comes back with its prompt's response_url."""
        moved = (self.expire_one(confirmation_id, now) for confirmation_id in self.due(now, limit))
        return [expired for expired in moved if expired is not None]

    def due(self, now: datetime, limit: int = 100) -> list[str]:
        """The ids of up to `limit` pending rows past their expiry, for `expire_one`."""
        due = select(Confirmation.id).where(
            Confirmation.state == "pending", Confirmation.expires_at <= now
        )
        with self._db.session() as session:
            return list(session.scalars(due.limit(limit)))

    def expire_one(self, confirmation_id: str, now: datetime) -> tuple[Pending, str | None] | None:
        """Move one pending row past its expiry to `expired`, with its prompt's response_url;
        None when it is not pending any more (answered, or moved by another worker's sweep)."""
        with self._db.session() as session, session.begin():
            won = session.execute(
                update(Confirmation)
                .where(
                    Confirmation.id == confirmation_id,
                    Confirmation.state == "pending",
                    Confirmation.expires_at <= now,
                )
                .values(state="expired", decided_at=now)
            ).rowcount
            row = session.get(Confirmation, confirmation_id) if won else None
            if row is None:
                return None
            # Read before the wipe: the audit row keeps a config prompt's key names.
            moved = (_pending(row), row.response_url)
            _forget_secrets(session, confirmation_id)
            return moved

    def ask_cancel(self, confirmation_id: str, user_id: str) -> bool:
        """Cancel clicked on a confirmed row: kept, so that if its Confirm changes nothing
        the row is cancelled (`reopen`) rather than opened again. False if it is not
        confirmed (any more: a refused Confirm may have opened it again meanwhile)."""
        with self._db.session() as session, session.begin():
            result = session.execute(
                update(Confirmation)
                .where(Confirmation.id == confirmation_id, Confirmation.state == "confirmed")
                .values(cancel_asked_by=user_id)
            )
            return result.rowcount == 1

    def reopen(self, confirmation_id: str, user_id: str, now: datetime) -> str | None:
        """Undo `user_id`'s confirmation when nothing was done with it (the platform refused
        it, or could not be read), so the next click acts: `pending`. `cancelled` (by
        `cancel_asked_by`) when someone clicked Cancel meanwhile; None if it was not theirs."""
        with self._db.session() as session, session.begin():
            row = session.scalar(
                select(Confirmation)
                .where(
                    Confirmation.id == confirmation_id,
                    Confirmation.state == "confirmed",
                    Confirmation.decided_by == user_id,
                )
                .with_for_update()
            )
            if row is None:
                return None
            if row.cancel_asked_by:
                row.state, row.decided_by, row.decided_at = "cancelled", row.cancel_asked_by, now
            else:
                row.state, row.decided_by, row.decided_at = "pending", None, None
            return row.state

    def forget_before(self, cutoff: datetime) -> int:
        """Retention: rows decided or expired whose prompt ended before `cutoff`. Their
        story is in the audit log; a click on one that old is answered "no record"."""
        with self._db.session() as session, session.begin():
            return session.execute(
                delete(Confirmation).where(
                    Confirmation.state != "pending", Confirmation.expires_at < cutoff
                )
            ).rowcount


def audited_targets(pending: Pending) -> dict[str, Any]:
    """What an audit row may keep of a prompt's targets: a config prompt's key names, as
    its applied change records them, never the values it carries."""
    changes = pending.targets.get("changes")
    if not pending.command.startswith("config ") or not isinstance(changes, dict):
        return pending.targets
    mode = "unset" if all(value is None for value in changes.values()) else "set"
    return {mode: sorted(changes)}


def _forget_secrets(session: Any, confirmation_id: str) -> None:
    """Wipe the values a decided or expired config prompt carried. The caller that acts on
    a confirmed one read them before deciding."""
    session.execute(
        update(Confirmation)
        .where(Confirmation.id == confirmation_id, Confirmation.command.like(_CARRIES_SECRETS))
        .values(targets={"forgotten": True})
    )
