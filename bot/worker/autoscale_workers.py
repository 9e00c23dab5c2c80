"""The worker-type autoscale tick: for each app's worker process type with autoscaling on
(or in shadow), read the app's HireFire endpoint, let `policies.worker_autoscale` decide,
and act through the one actions path (`scale worker=N APP`), as the web tick does.

The endpoint is `<registry queue_url>/hirefire/<token>/info`, the token from the bot's
environment variable the registry names (`queue_token_env`, default HIREFIRE_TOKEN). It is
the app's, not Heroku's: reading it costs no Heroku API call. Each app's is read once a
tick, all side by side, so an app that never answers holds up the others by one timeout. What runs comes from the web
tick's `Autoscaler` (`quantity`), which knows each type from webhooks and our own writes
and reads the formation only after 15 minutes of silence, within the account's API
budget; scaling spends from the same budget (`scale`). Every decision, acted on or not, is
stored beside web's (`bot.store.autoscale_settings`, with its process type), so
`autoscale APP status` shows it and retention forgets it.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

from bot.config import pasted
from bot.metrics import hirefire
from bot.metrics.hirefire import QueueInfoError, fetch_queue_info
from bot.platforms.base import PlatformError
from bot.registry import UnknownApp
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.autoscale_settings import Decision as Recorded
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore, WorkerSettings
from bot.worker.autoscale import MOVED, Autoscaler
from policies.slack_text import escape
from policies.worker_autoscale import decide_worker, unread_reason

log = logging.getLogger(__name__)
# Endpoints read at once: more apps than this wait for a reader, a timeout at most each.
MAX_READERS = 16
# An app's answer: its queues, or why they could not be read.
Queues = dict[str, float] | QueueInfoError


def _read_queue(queue_url: str, token_env: str) -> Queues:
    token = pasted(os.environ.get(token_env))
    if not token:
        return QueueInfoError(f"{token_env} is not set in the bot")
    try:
        return fetch_queue_info(queue_url, token, token_env)
    except QueueInfoError as exc:
        return exc


class WorkerAutoscaler:
    def __init__(self, services: Services, scaler: Autoscaler) -> None:
        self._services = services
        self._store = WorkerAutoscaleStore(services.db)
        self._decisions = AutoscaleStore(services.db)
        # The web tick's: its formation knowledge, API budgets and channel notices.
        self._scaler = scaler

    def tick(self, now: datetime | None = None, only: str | None = None) -> list[Recorded]:
        """Decide (and act) for every worker type with autoscaling on or in shadow (`only`:
        that app alone, as the sandbox's queue play ticks on its own clock). Returns the
        decisions, stored in one transaction."""
        now = now or datetime.now(UTC)
        done: list[Recorded] = []
        enabled = [s for s in self._store.all_enabled() if only is None or s.app == only]
        queues = self._read_queues({settings.app for settings in enabled})
        try:
            for settings in enabled:
                try:
                    recorded = self._one(settings, now, queues.get(settings.app))
                except (PlatformError, UnknownApp) as exc:
                    # One app's trouble must not stop the others; said in the log.
                    log.warning(
                        "worker autoscale skipped",
                        extra={"app": settings.app, "type": settings.process_type, "why": str(exc)},
                    )
                    self._scaler.forget(settings.app)
                    self._scaler.not_read(settings.app, settings.process_type, exc, now)
                    continue
                self._scaler.read(settings.app, settings.process_type)
                if recorded is not None:
                    done.append(recorded)
        finally:
            self._decisions.record_many(done)
        return done

    def _read_queues(self, apps: set[str]) -> dict[str, Queues]:
        """Each app's endpoint read once, side by side: an app that never answers costs
        the tick one timeout, not one per worker type and app after it."""
        endpoints = {}
        for app in apps:
            try:
                target = self._services.registry.resolve(app)
            except UnknownApp:
                continue  # `_one` says so
            if target.platform == "heroku" and target.queue_url is not None:
                endpoints[app] = (target.queue_url, target.queue_token_env)
        if not endpoints:
            return {}
        pool = ThreadPoolExecutor(min(len(endpoints), MAX_READERS), "hirefire")
        read = {app: pool.submit(_read_queue, *where) for app, where in endpoints.items()}
        # Each read ends within its timeout, but nothing cuts a name lookup short: past
        # that (and a second's grace), the tick goes on and the read ends in its thread.
        rounds = math.ceil(len(endpoints) / MAX_READERS)
        wait(read.values(), timeout=hirefire.TIMEOUT_S * rounds + 1)
        pool.shutdown(wait=False, cancel_futures=True)
        return {
            app: hirefire.not_answered()
            if future.cancelled() or not future.done()
            else future.result()
            for app, future in read.items()
        }

    def _one(
        self, settings: WorkerSettings, now: datetime, queues: Queues | None
    ) -> Recorded | None:
        resolved = self._services.resolve(settings.app)
        target = resolved.target
        if target.platform != "heroku" or target.queue_url is None or queues is None:
            return None  # refused by `/deploy autoscale`; settings from before are ignored
        ptype = settings.process_type
        current = self._scaler.quantity(resolved, ptype, now)
        if current is None:
            return None  # the API budget said not now (logged)
        if isinstance(queues, QueueInfoError):
            # Recorded, so `autoscale APP status` says why nothing moves; the channel is not
            # told every tick. What runs is usually known, so this costs no API call.
            log.warning("worker autoscale skipped", extra={"app": settings.app, "why": str(queues)})
            why = escape(unread_reason(str(queues), ptype, current))
            return Recorded(settings.app, now, current, current, False, why, current, ptype)
        decision = decide_worker(
            settings.target,
            ptype,
            current,
            settings.min,
            settings.max,
            queues,
            max_step=target.guardrails.max_step,
        )
        acted, reason = False, escape(decision.reason)  # Slack text from here, as for web
        if settings.mode == "on" and decision.changed:
            # Read again: the endpoint's answer may have taken seconds, in which a person
            # may have turned this off or moved its bounds (`MOVED`).
            if self._store.settings(settings.app, ptype) != settings:
                reason = f"{reason} Not done: {MOVED}"
            else:
                done = self._scaler.scale(resolved, ptype, decision.desired, current, reason, now)
                if done is None:
                    return None
                acted, reason = done
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
        return Recorded(
            settings.app, now, current, decision.desired, acted, reason, decision.desired, ptype
        )
