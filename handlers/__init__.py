"""Slack listeners, one module per family, each with `register(app, services)`.

Thin glue: turn payloads into calls on `bot.actions.path` and results into Block Kit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import actions, alerts, commands, events

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services


def register(app: App, services: Services) -> None:
    commands.register(app, services)
    actions.register(app, services)
    alerts.register(app, services)
    events.register(app, services)
