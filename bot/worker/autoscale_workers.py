"""The worker-type autoscale tick: for each app's worker process type with autoscaling on
(or in shadow), read the app's HireFire endpoint, let `policies.worker_autoscale` decide,
and act through the one actions path (`scale worker=N APP`), as the web tick does.

The endpoint is `<registry queue_url>/hirefire/<token>/info`, the token from the bot's
environment variable the registry names (`queue_token_env`, default HIREFIRE_TOKEN).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.actions.gate import AUTOSCALER
from bot.actions.results import Changed, Reply
from bot.metrics.hirefire import QueueInfoError, fetch_queue_info
from bot.platforms.base import PlatformError, formation_map
from bot.registry import UnknownApp
from bot.services import Services
from bot.store.audit import Actor
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore, WorkerSettings
from policies.commands import parse
from policies.worker_autoscale import decide_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerTick:
    app: str
    process_type: str
    current: int
    desired: int
    acted: bool
    reason: str


class WorkerAutoscaler:
    def __init__(self, services: Services, notify: Callable[[str | None, str], None]) -> None:
        self._services = services
        self._store = WorkerAutoscaleStore(services.db)
        self._notify = notify

    def tick(self, now: datetime | None = None) -> list[WorkerTick]:
        now = now or datetime.now(UTC)
        done = []
        for settings in self._store.all_enabled():
            try:
                tick = self._one(settings)
            except (PlatformError, UnknownApp, QueueInfoError) as exc:
                # One app's broken endpoint must not stop the others; said in the log.
                log.warning(
                    "worker autoscale skipped",
                    extra={"app": settings.app, "type": settings.process_type, "why": str(exc)},
                )
                continue
            if tick is not None:
                done.append(tick)
        return done

    def _one(self, settings: WorkerSettings) -> WorkerTick | None:
        resolved = self._services.resolve(settings.app)
        target = resolved.target
        if target.platform != "heroku" or target.queue_url is None:
            return None
        token = os.environ.get(target.queue_token_env, "")
        if not token:
            raise QueueInfoError(f"{target.queue_token_env} is not set")
        info = fetch_queue_info(target.queue_url, token)
        ptype = settings.process_type
        current = formation_map(resolved.platform.formation(target.name)).get(ptype, (0, ""))[0]
        decision = decide_worker(settings.target, ptype, current, settings.min, settings.max, info)
        acted, reason = False, decision.reason
        if settings.mode == "on" and decision.changed:
            actor = Actor(AUTOSCALER, channel_id=target.channel, source=AUTOSCALER)
            result = self._services.actions.run(
                actor, parse(f"scale {ptype}={decision.desired} {settings.app}")
            )
            acted = isinstance(result, Changed)
            if not acted:
                why = result.text if isinstance(result, Reply) else type(result).__name__
                reason = f"{reason} Not done: {why}"
            self._notify(target.channel, f"Autoscaler on `{settings.app}`: {reason}")
        log.info(
            "worker autoscale decision",
            extra={
                "app": settings.app,
                "type": ptype,
                "current": current,
                "desired": decision.desired,
                "mode": settings.mode,
            },
        )
        return WorkerTick(settings.app, ptype, current, decision.desired, acted, reason)
