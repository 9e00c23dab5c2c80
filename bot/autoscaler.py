"""The autoscale tick: for each app with autoscaling on (or in shadow), decide the web dyno
count from its drained traffic (`policies.autoscale.decide`) and, when on and different
from what runs, scale through the same actions path a person's command takes.

Level-triggered: every tick recomputes from the database and the platform, so a missed or
repeated tick changes nothing; the only state is what `bot.autoscale_store` keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.actions import Changed, Reply
from bot.audit import Actor
from bot.autoscale_store import AutoscaleStore
from bot.autoscale_store import Decision as Recorded
from bot.autoscale_store import Settings as StoredSettings
from bot.gate import AUTOSCALER
from bot.metrics.store import MetricsStore
from bot.platforms.base import PlatformError, formation_map
from bot.registry import UnknownApp
from bot.services import Services
from policies import autoscale
from policies.commands import parse
from policies.sketch import Sketch

log = logging.getLogger(__name__)

SAMPLE_MINUTES = 6  # the policy looks at the last few minutes
HISTORY = timedelta(minutes=10)
_METRIC = {"queue_p95": "queue_p95", "service_p95": "service_p95", "rpm": "rpm_per_dyno"}


class Autoscaler:
    def __init__(self, services: Services, notify: Callable[[str | None, str], None]) -> None:
        self._services = services
        self._store = AutoscaleStore(services.db)
        self._metrics = MetricsStore(services.db)
        self._notify = notify

    def tick(self, now: datetime | None = None) -> list[Recorded]:
        now = now or datetime.now(UTC)
        done = []
        for settings in self._store.all_enabled():
            try:
                done.append(self._one(settings, now))
            except (PlatformError, UnknownApp) as error:
                log.warning(
                    "autoscale tick skipped", extra={"app": settings.app, "error": str(error)}
                )
        return done

    def _one(self, stored: StoredSettings, now: datetime) -> Recorded:
        app = stored.app
        resolved = self._services.resolve(app)
        current = formation_map(resolved.platform.formation(resolved.target.name)).get(
            "web", (0, "")
        )[0]
        past = self._store.decisions(app, limit=200, since=now - HISTORY)
        pin = self._store.pin(app, now)
        decision = autoscale.decide(
            _policy(stored),
            current,
            self._samples(app, now),
            now,
            recommendations=[autoscale.Recommendation(d.at, d.recommendation) for d in past],
            events=[autoscale.ScaleEvent(d.at, d.actual, d.desired) for d in past if d.acted],
            pin=autoscale.Pin(pin.quantity, pin.until, pin.pinned_by) if pin else None,
        )
        acted, reason = False, decision.reason
        if stored.mode == "on" and decision.desired != current:
            actor = Actor(AUTOSCALER, channel_id=resolved.target.channel, source=AUTOSCALER)
            result = self._services.actions.run(actor, parse(f"scale web={decision.desired} {app}"))
            acted = isinstance(result, Changed)
            if not acted:
                # A guardrail or a platform error said no: say why, in the app's channel.
                why = result.text if isinstance(result, Reply) else type(result).__name__
                reason = f"{reason} Not done: {why}"
            self._notify(resolved.target.channel, f"Autoscaler on `{app}`: {reason}")
        if decision.stale:
            log.warning("autoscale metrics stale", extra={"app": app})
        recorded = Recorded(
            app, now, current, decision.desired, acted, reason, decision.recommendation
        )
        self._store.record(recorded)
        log.info(
            "autoscale decision",
            extra={
                "app": app,
                "mode": stored.mode,
                "current": current,
                "desired": decision.desired,
            },
        )
        return recorded

    def _samples(self, app: str, now: datetime) -> list[autoscale.Sample]:
        """Whole minutes of drained traffic before `now`, oldest first."""
        end = int(now.timestamp()) // 60 * 60
        start = end - SAMPLE_MINUTES * 60
        windows = self._metrics.windows(app, start, end)
        samples = []
        for minute in range(start, end, 60):
            inside = [w for w in windows if minute <= w.start < minute + 60]
            if not inside:
                continue
            queue, service = Sketch(), Sketch()
            dynos: set[str] = set()
            for window in inside:
                queue.merge(window.queue)
                service.merge(window.service)
                dynos.update(window.dynos)
            samples.append(
                autoscale.Sample(
                    at=datetime.fromtimestamp(minute + 60, UTC),
                    # A 10 s window with no requests is never stored: a sum, not an average.
                    rpm=float(sum(w.requests for w in inside)),
                    queue_p95_ms=queue.quantile(0.95) if queue.count else None,
                    service_p95_ms=service.quantile(0.95) if service.count else None,
                    dynos=len(dynos) or None,
                )
            )
        return samples


def _policy(stored: StoredSettings) -> autoscale.Settings:
    return autoscale.Settings(
        targets=(autoscale.Target(_METRIC[stored.target_kind], stored.target_value),),
        min_dynos=stored.min,
        max_dynos=stored.max,
    )
