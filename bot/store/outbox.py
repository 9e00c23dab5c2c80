"""The alert outbox table: whoever decides an alert writes its message here with
`Outbox.enqueue`, in its own transaction, so a decision and its message are stored together
or not at all. The worker's `bot.worker.outbox_sender` empties it into Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, func, insert, or_, select, tuple_, union
from sqlalchemy.orm import Session, aliased

from bot.store.db import Database, aware
from bot.store.models import AlertOutboxEntry, IncidentRow
from policies.incidents import SUMMARY_PREFIX

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
        [row] = _rows([Message(incident_key, channel, kind, text, blocks)], now)
        if session is not None:
            return _add(session, row)
        with self._db.session() as own, own.begin():
            return _add(own, row)

    def enqueue_all(self, messages: Sequence[Message], now: datetime, session: Session) -> None:
        """`enqueue` each of `messages`, in order, in the caller's transaction, in a couple
        of statements: an alert storm across a fleet had written one INSERT (and an update's
        DELETE) per message, a thousand apps' worth while holding the incidents lock. At most
        one `update` per message (a step's notices hold one): they replace queued rows only."""
        rows = _rows(messages, now)
        if rows:
            _supersede(session, rows)
            session.execute(insert(AlertOutboxEntry), rows)

    def posts_since(
        self, cutoff: datetime, session: Session
    ) -> tuple[dict[str, int], dict[str, tuple[str, tuple[str, ...]]]]:
        """New messages per channel enqueued since `cutoff` (the input of the rate limit),
        and per channel the storm summary among them, if any: its key and the incidents its
        newest text names (its latest post or update row), for later folds to edit it."""
        is_summary = AlertOutboxEntry.incident_key.startswith(SUMMARY_PREFIX, autoescape=True)
        # Keys end in an ISO time, so the greatest is a channel's newest summary.
        newest = func.max(case((is_summary, AlertOutboxEntry.incident_key)))
        query = (
            select(AlertOutboxEntry.channel, func.count(), newest)
            .where(AlertOutboxEntry.kind == "post", AlertOutboxEntry.created_at >= cutoff)
            .group_by(AlertOutboxEntry.channel)
        )
        counts: dict[str, int] = {}
        keys: dict[str, str] = {}
        for channel, count, key in session.execute(query):
            counts[channel] = count
            if key is not None:
                keys[key] = channel
        summaries: dict[str, tuple[str, tuple[str, ...]]] = {}
        if keys:  # in a storm only: its names, one more read
            rows = select(AlertOutboxEntry.incident_key, AlertOutboxEntry.payload).where(
                AlertOutboxEntry.incident_key.in_(list(keys))
            )
            for key, payload in session.execute(rows.order_by(AlertOutboxEntry.id)):
                summaries[keys[key]] = (key, tuple((payload or {}).get("names") or ()))
        return counts, summaries

    def queued_posts(self, incident_keys: Sequence[str], session: Session) -> set[str]:
        """Those of `incident_keys` with a post still waiting to be sent."""
        if not incident_keys:
            return set()
        query = select(AlertOutboxEntry.incident_key).where(
            AlertOutboxEntry.incident_key.in_(list(incident_keys)),
            AlertOutboxEntry.kind == "post",
            AlertOutboxEntry.state.in_(("pending", "sending")),
        )
        return set(session.scalars(query))

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


class Message(NamedTuple):
    """One message owed to Slack, as `Outbox.enqueue_all` takes it."""

    incident_key: str
    channel: str
    kind: str
    text: str
    blocks: Sequence[dict[str, Any]] | None = None
    names: Sequence[str] = ()  # a storm summary's: the incidents it names
    broadcast: bool = False  # a reply shown in the channel too


def _rows(messages: Sequence[Message], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for message in messages:
        if message.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {message.kind!r}")
        rows.append(
            {
                "incident_key": message.incident_key[:200],
                "channel": message.channel,
                "kind": message.kind,
                "payload": {
                    "text": message.text,
                    "blocks": list(message.blocks) if message.blocks else None,
                    **({"names": list(message.names)} if message.names else {}),
                    **({"broadcast": True} if message.broadcast else {}),
                },
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    return rows


def _add(session: Session, row: dict[str, Any]) -> int:
    _supersede(session, [row])
    return int(
        session.execute(insert(AlertOutboxEntry).returning(AlertOutboxEntry.id), row).scalar_one()
    )


def _supersede(session: Session, rows: list[dict[str, Any]]) -> None:
    """Delete the pending updates the `update` rows make pointless, handing each its
    message's place, in one statement for them all."""
    updates = {
        (row["incident_key"], row["channel"]): row for row in rows if row["kind"] == "update"
    }
    if not updates:
        return
    other = aliased(AlertOutboxEntry)
    # Only updates after the message's last post or reply: an update before a reply still
    # has to land first, and one before a new post (a reopened incident) edits another message.
    last_other = (
        select(func.coalesce(func.max(other.id), 0))
        .where(
            other.incident_key == AlertOutboxEntry.incident_key,
            other.channel == AlertOutboxEntry.channel,
            other.kind != "update",
        )
        .scalar_subquery()
    )
    # Only `pending` rows: a `sending` one is in a sender's hands, and a sender that read a
    # row this deletes finds nothing to claim.
    replaced = session.execute(
        delete(AlertOutboxEntry)
        .where(
            tuple_(AlertOutboxEntry.incident_key, AlertOutboxEntry.channel).in_(list(updates)),
            AlertOutboxEntry.kind == "update",
            AlertOutboxEntry.state == "pending",
            AlertOutboxEntry.id > last_other,
        )
        .returning(
            AlertOutboxEntry.incident_key,
            AlertOutboxEntry.channel,
            AlertOutboxEntry.attempts,
            AlertOutboxEntry.next_attempt_at,
            AlertOutboxEntry.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    # The newest state inherits the backoff and the age of what it replaces: a fresh row
    # every tick would restart both, retrying a persisting error every minute forever.
    for old in replaced:
        row = updates[(old.incident_key, old.channel)]
        row["attempts"] = max(row["attempts"], old.attempts)
        row["next_attempt_at"] = max(aware(row["next_attempt_at"]), aware(old.next_attempt_at))
        row["created_at"] = min(aware(row["created_at"]), aware(old.created_at))
