"""The alert outbox table: whoever decides an alert writes its message here with
`Outbox.enqueue`, in its own transaction, so a decision and its message are stored together
or not at all. The worker's `bot.worker.outbox_sender` empties it into Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, union
from sqlalchemy.orm import Session

from bot.store.db import Database, aware
from bot.store.models import AlertOutboxEntry, IncidentRow

KINDS = ("post", "update", "reply")


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        incident_key: str,
        channel: str,
        kind: str,
        text: str,
        now: datetime,
        blocks: Sequence[dict[str, Any]] | None = None,
        session: Session | None = None,
    ) -> int:
        """Store one message owed to Slack; with `session`, inside the caller's transaction.

        An `update` replaces the updates of the same message still queued right behind each
        other (no post or reply between): only the message's newest state matters, so an
        incident stuck behind a Slack error holds one update, not one per watch tick."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        entry = AlertOutboxEntry(
            incident_key=incident_key[:200],
            channel=channel,
            kind=kind,
            payload={"text": text, "blocks": list(blocks) if blocks else None},
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        if session is not None:
            return _add(session, entry)
        with self._db.session() as own, own.begin():
            return _add(own, entry)

    def posts_since(self, cutoff: datetime, session: Session | None = None) -> dict[str, int]:
        """New messages per channel enqueued since `cutoff`: the input of the rate limit."""
        query = (
            select(AlertOutboxEntry.channel, func.count())
            .where(AlertOutboxEntry.kind == "post", AlertOutboxEntry.created_at >= cutoff)
            .group_by(AlertOutboxEntry.channel)
        )
        if session is not None:
            return {channel: count for channel, count in session.execute(query)}
        with self._db.session() as own:
            return {channel: count for channel, count in own.execute(query)}

    def forget_sent_before(self, cutoff: datetime) -> int:
        """Drop rows sent before `cutoff`, and failed rows queued before it, but keep the
        newest message row of an incident still open or with rows queued: those later
        updates and replies find the message to edit through it. A resolved incident's
        message gets no more (a reopened incident posts a new one), and summaries and the
        autoscaler's notices are never edited, so theirs go with the rest."""
        with self._db.session() as session, session.begin():
            live = union(
                select(IncidentRow.key).where(IncidentRow.state == "open"),
                select(AlertOutboxEntry.incident_key).where(
                    AlertOutboxEntry.state.in_(("pending", "sending"))
                ),
            )
            newest = (
                select(func.max(AlertOutboxEntry.id))
                .where(
                    AlertOutboxEntry.state == "sent",
                    AlertOutboxEntry.ts.is_not(None),
                    AlertOutboxEntry.incident_key.in_(live),
                )
                .group_by(AlertOutboxEntry.incident_key, AlertOutboxEntry.channel)
            )
            return session.execute(
                delete(AlertOutboxEntry).where(
                    or_(
                        and_(AlertOutboxEntry.state == "sent", AlertOutboxEntry.sent_at < cutoff),
                        # A failed row has no sent_at: its age counts from when it was queued.
                        and_(
                            AlertOutboxEntry.state == "failed",
                            AlertOutboxEntry.created_at < cutoff,
                        ),
                    ),
                    AlertOutboxEntry.id.not_in(newest),
                )
            ).rowcount

    def entries(self, incident_key: str | None = None) -> list[AlertOutboxEntry]:
        """Every row, oldest first (for tests, the console and diagnosis)."""
        query = select(AlertOutboxEntry).order_by(AlertOutboxEntry.id)
        if incident_key is not None:
            query = query.where(AlertOutboxEntry.incident_key == incident_key)
        with self._db.session() as session:
            return list(session.scalars(query))


def _add(session: Session, entry: AlertOutboxEntry) -> int:
    if entry.kind == "update":
        _supersede(session, entry)
    session.add(entry)
    session.flush()
    return entry.id


def _supersede(session: Session, entry: AlertOutboxEntry) -> None:
    """Delete the pending updates `entry` makes pointless, handing it their place."""
    same_message = and_(
        AlertOutboxEntry.incident_key == entry.incident_key,
        AlertOutboxEntry.channel == entry.channel,
    )
    # Only updates after the message's last post or reply: an update before a reply still
    # has to land first, and one before a new post (a reopened incident) edits another message.
    last_other = (
        select(func.coalesce(func.max(AlertOutboxEntry.id), 0))
        .where(same_message, AlertOutboxEntry.kind != "update")
        .scalar_subquery()
    )
    # Only `pending` rows: a `sending` one is in a sender's hands, and a sender that read a
    # row this deletes finds nothing to claim.
    replaced = session.execute(
        delete(AlertOutboxEntry)
        .where(
            same_message,
            AlertOutboxEntry.kind == "update",
            AlertOutboxEntry.state == "pending",
            AlertOutboxEntry.id > last_other,
        )
        .returning(
            AlertOutboxEntry.attempts,
            AlertOutboxEntry.next_attempt_at,
            AlertOutboxEntry.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not replaced:
        return
    # The newest state inherits the backoff and the age of what it replaces: a fresh row
    # every tick would restart both, retrying a persisting error every minute forever.
    entry.attempts = max(row.attempts for row in replaced)
    entry.next_attempt_at = max(
        aware(entry.next_attempt_at), *(aware(r.next_attempt_at) for r in replaced)
    )
    entry.created_at = min(aware(entry.created_at), *(aware(r.created_at) for r in replaced))
