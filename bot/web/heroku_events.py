"""What a verified Heroku notification means to the bot.

A crashed dyno is an alert for the app's channel (a one-off dyno that failed, a notice); a release is a short notice there and
arms the autoscaler's deploy guard; a formation change is stored for the worker, so the
autoscaler knows at its next tick about scaling done by hand. Heroku names the app by its
Heroku name; the registry turns that into the alias people use (an app the registry does
not list keeps its Heroku name and has no channel, so its incidents are kept, not posted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.registry import Registry
from bot.store.incidents import Alerts
from bot.store.observations import Observation, Observations
from policies.commands import is_process_type
from policies.heroku_webhooks import DESTROY, WebhookEvent, count_of
from policies.incidents import Event

log = logging.getLogger(__name__)


class HerokuEvents:
    def __init__(
        self,
        registry: Registry,
        alerts: Alerts,
        observations: Observations,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._alerts = alerts
        self._observations = observations
        self._clock = clock

    def __call__(self, notification: WebhookEvent) -> None:
        alias = self.alias_of(notification.app)
        # Who released what comes from Heroku as plain text; `policies.incidents` escapes an
        # event's detail when it renders it, so a description cannot ping a channel.
        by = f" by {notification.actor}" if notification.actor else ""
        events: list[Event] = []
        gone = notification.action == DESTROY
        if notification.resource == "formation":
            # A destroyed formation is a process type taken out of the Procfile: none run,
            # whatever quantity it last had.
            quantity = 0 if gone else count_of(notification.data.get("quantity"))
            process_type = notification.data.get("type")
            # Heroku's types run to 128 characters; the autoscaler acts only on those a
            # command can name (and the store keeps 64), so others are not its business.
            if (
                quantity is not None
                and isinstance(process_type, str)
                and is_process_type(process_type)
            ):
                self._observations.record(
                    Observation(
                        alias, "formation", process_type, quantity, notification.at, by.strip()
                    )
                )
        elif (outcome := notification.release_outcome()) is not None:
            version, status = outcome
            if status == "succeeded":
                description = str(notification.data.get("description") or "").strip()
                self._observations.record(
                    Observation(alias, "release", "current", version, notification.at, description)
                )
                events.append(
                    Event(
                        alias,
                        "release",
                        "release",
                        notification.at,
                        f"v{version} {description}{by}",
                    )
                )
            else:
                events.append(
                    Event(
                        alias,
                        "release_failed",
                        "release",
                        notification.at,
                        f"v{version} failed{by}",
                        severity="critical",
                    )
                )
        elif (event := notification.incident_event()) is not None:
            events.append(replace(event, app=alias))  # a crash, or a one-off that failed
        if events:
            self._alerts.record(events, self._clock(), self._registry.channel_of)

    def alias_of(self, heroku_name: str) -> str:
        for target in self._registry.targets():
            if target.platform == "heroku" and target.name == heroku_name:
                return target.alias
        return heroku_name
