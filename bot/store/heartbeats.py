"""The worker's heartbeat and what the web dyno reads of the bot's own health: the last
tick and its leader, the alert outbox's backlog and the channels refusing its messages, and
each drained app's newest traffic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, insert, select

from bot.store.db import Database, aware
from bot.store.models import AlertOutboxEntry, MetricWindow, WorkerHeartbeat

TROUBLE_CHARS = 500
# Failed alerts older than this are no news: the outbox keeps them a week, for diagnosis.
UNDELIVERED_WITHIN = timedelta(days=1)
DIGEST = "digest"  # the outbox row kind standing for a refused daily digest (`refused`)


@dataclass(frozen=True)
class Beat:
    worker: str
    leader: bool
    release: str | None
    started_at: datetime
    ticked_at: datetime
    trouble: str | None = None  # jobs failing or hung (`bot.worker.jobs`), plain text


@dataclass(frozen=True)
class Undelivered:
    """Alerts (and daily digests) to one channel that Slack refused since its last message
    got through."""

    channel: str
    error: str  # the newest refusal: Slack's error code, or `gave up: …` after a day of 5xx
    count: int  # alerts
    since: datetime
    digests: int = 0  # daily digests (`bot.worker.digest`), not among `count`


class Heartbeats:
    def __init__(self, db: Database) -> None:
        self._db = db

    def beat(
        self,
        worker: str,
        leader: bool,
        now: datetime,
        release: str | None,
        started_at: datetime,
        trouble: str | None = None,
    ) -> None:
        """Record that `worker` ticked at `now` (one row per worker process, overwritten),
        and what is wrong with its jobs, if anything."""
        with self._db.session() as session, session.begin():
            session.merge(
                WorkerHeartbeat(
                    worker=worker[:128],
                    leader=leader,
                    release=release[:64] if release else None,
                    started_at=started_at,
                    ticked_at=now,
                    trouble=trouble[:TROUBLE_CHARS] if trouble else None,
                )
            )

    def forget_before(self, cutoff: datetime) -> int:
        """Drop the rows of workers that last ticked before `cutoff`: off Heroku a worker is
        named by host and process id, so each restart adds a row."""
        with self._db.session() as session, session.begin():
            gone = delete(WorkerHeartbeat).where(WorkerHeartbeat.ticked_at < cutoff)
            return session.execute(gone).rowcount

    def latest(self, leader_only: bool = True) -> Beat | None:
        """The newest tick (of a leader, by default: a waiting worker runs no jobs)."""
        query = select(WorkerHeartbeat).order_by(WorkerHeartbeat.ticked_at.desc()).limit(1)
        if leader_only:
            query = query.where(WorkerHeartbeat.leader.is_(True))
        with self._db.session() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            return Beat(
                row.worker,
                row.leader,
                row.release,
                aware(row.started_at),
                aware(row.ticked_at),
                row.trouble,
            )

    def outbox_backlog(self) -> tuple[int, str | None]:
        """Alert messages not yet in Slack (pending, or being sent), and Slack's answer to
        the oldest of them that was tried and held back (a 5xx, a rate limit, a refused
        token; None when none waits on an error), in one query: App Home's header asks."""
        waiting = AlertOutboxEntry.state.in_(("pending", "sending"))
        held_by = (
            select(AlertOutboxEntry.last_error)
            .where(waiting, AlertOutboxEntry.last_error.is_not(None))
            .order_by(AlertOutboxEntry.id)
            .limit(1)
            .scalar_subquery()
        )
        query = select(func.count(), held_by).select_from(AlertOutboxEntry).where(waiting)
        with self._db.session() as session:
            count, error = session.execute(query).one()
        return int(count or 0), error

    def refused(self, key: str, channel: str, error: str, now: datetime) -> None:
        """Note a daily digest Slack refused (or that was given up): it goes around the alert
        outbox (it carries a file), so a failed row of kind `digest` stands for it there, and
        `undelivered` names its channel as it names one refusing alerts. The sender never
        picks a failed row; the outbox's retention drops it with the other failed ones."""
        row = {
            "incident_key": key[:200],
            "channel": channel,
            "kind": DIGEST,
            "payload": {"text": key, "blocks": None},
            "state": "failed",
            "attempts": 1,
            "next_attempt_at": now,
            "last_error": error,
            "created_at": now,
        }
        with self._db.session() as session, session.begin():
            session.execute(insert(AlertOutboxEntry), [row])

    def undelivered(self, now: datetime) -> list[Undelivered]:
        """Per channel, the alerts (and digests, `refused`) marked failed within a day and after
        the channel's newest delivered alert: a bot removed from the channel, an archived or deleted channel. Once a
        message gets through again, the channel is left out."""
        delivered = (
            select(AlertOutboxEntry.channel, func.max(AlertOutboxEntry.id).label("last"))
            .where(AlertOutboxEntry.state == "sent")
            .group_by(AlertOutboxEntry.channel)
            .subquery()
        )
        query = (
            select(
                AlertOutboxEntry.channel,
                AlertOutboxEntry.last_error,
                func.count(),
                func.min(AlertOutboxEntry.created_at),
                func.max(AlertOutboxEntry.id),
                func.sum(case((AlertOutboxEntry.kind == DIGEST, 1), else_=0)),
            )
            .outerjoin(delivered, delivered.c.channel == AlertOutboxEntry.channel)
            .where(
                AlertOutboxEntry.state == "failed",
                AlertOutboxEntry.created_at >= now - UNDELIVERED_WITHIN,
                AlertOutboxEntry.id > func.coalesce(delivered.c.last, 0),
            )
            .group_by(AlertOutboxEntry.channel, AlertOutboxEntry.last_error)
        )
        found: dict[str, tuple[int, Undelivered]] = {}
        with self._db.session() as session:
            for channel, error, count, since, newest, digests in session.execute(query):
                digests = int(digests or 0)
                seen = Undelivered(channel, error or "", count - digests, aware(since), digests)
                before = found.get(channel)
                if before is not None:
                    # The newest refusal names the trouble; the counts add up.
                    last, other = before
                    seen = Undelivered(
                        channel,
                        seen.error if newest > last else other.error,
                        seen.count + other.count,
                        min(seen.since, other.since),
                        seen.digests + other.digests,
                    )
                    newest = max(last, newest)
                found[channel] = (newest, seen)
        return sorted((u for _, u in found.values()), key=lambda u: u.channel)

    def newest_traffic(
        self, apps: list[str], now: datetime
    ) -> dict[str, tuple[datetime, datetime]]:
        """Per app with any, when its newest stored traffic window that began by `now`
        began (when its drain, or the Beanstalk sampler, last delivered: `/deploy about`)
        and when its newest ended (the stale-metrics detector); an app with none is left
        out. A window dated later (a line stamped 2099 by anyone holding the drain's URL) is
        no news of the drain: it had hidden its silence until then."""
        if not apps:
            return {}
        query = (
            select(
                MetricWindow.app,
                func.max(MetricWindow.start),
                func.max(MetricWindow.start + MetricWindow.resolution),
            )
            .where(MetricWindow.app.in_(apps), MetricWindow.start <= now.timestamp())
            .group_by(MetricWindow.app)
        )
        with self._db.session() as session:
            return {
                app: (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(int(end), UTC))
                for app, start, end in session.execute(query)
                if start is not None and end is not None
            }
