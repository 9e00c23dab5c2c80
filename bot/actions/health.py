"""The bot's own health as the web dyno sees it: whether the worker ticks, who leads, the
alert backlog and each drain's newest traffic.

The worker writes a heartbeat on each tick (`bot.store.heartbeats`); past `STALE_AFTER`
without one, autoscaling, alerts and prompt expiry have stopped, and replies that change
something say so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.actions.results import About
from bot.store.audit import utcnow
from bot.store.heartbeats import Beat, Heartbeats

STALE_AFTER = timedelta(minutes=2)
WORKER_DOWN = "the worker is not running: autoscaling and alerts are paused"


def release_of(env: Mapping[str, str] | None = None) -> str | None:
    """The release running, from Heroku's dyno metadata (`HEROKU_RELEASE_VERSION`, and the
    slug's commit when set); None off Heroku."""
    env = os.environ if env is None else env
    version = env.get("HEROKU_RELEASE_VERSION") or None
    commit = (env.get("HEROKU_SLUG_COMMIT") or "")[:7]
    if version and commit:
        return f"{version} ({commit})"
    return version or (commit or None)


class Health:
    def __init__(
        self,
        heartbeats: Heartbeats,
        apps: Callable[[], list[str]],
        now: Callable[[], datetime] = utcnow,
        release: str | None = None,
        stale_after: timedelta = STALE_AFTER,
        worker_runs: bool = True,
    ) -> None:
        self._heartbeats = heartbeats
        self.worker_runs = worker_runs
        self._apps = apps
        self.now = now  # replaceable: tests move the web dyno's clock, never wait
        self.release = release
        self.stale_after = stale_after

    def beat(self) -> Beat | None:
        return self._heartbeats.latest()

    def worker_lag(self) -> float | None:
        """Seconds since the worker leader's last tick; None if it never ticked."""
        beat = self.beat()
        return None if beat is None else max(0.0, (self.now() - beat.ticked_at).total_seconds())

    def worker_down(self, beat: Beat | None = None, *, checked: bool = False) -> bool:
        beat = beat if checked else self.beat()
        return beat is None or self.now() - beat.ticked_at > self.stale_after

    def _drains(self, now: datetime) -> tuple[tuple[str, datetime | None], ...]:
        """Each drained app, and when its drain last delivered (None: never)."""
        apps = self._apps()
        newest = self._heartbeats.newest_traffic(apps, now)
        return tuple((app, newest[app][0] if app in newest else None) for app in apps)

    def about(self) -> About:
        beat = self.beat()
        now = self.now()
        waiting, held_by = self._heartbeats.outbox_backlog()
        return About(
            release=self.release,
            beat=beat,
            worker_down=self.worker_down(beat, checked=True),
            outbox_backlog=waiting,
            drains=self._drains(now),
            now=now,
            undelivered=tuple(self._heartbeats.undelivered(now)),
            outbox_stalled=held_by,
            worker_runs=self.worker_runs,
        )
