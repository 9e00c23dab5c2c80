"""Builds the slack_bolt `App` with every handler registered, making no Slack call."""

from __future__ import annotations

from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient

import handlers
from bot.services import Services


def build_bolt_app(services: Services, listener_executor: Executor | None = None) -> App:
    config = services.config
    config.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    client = WebClient(token=config.slack_bot_token, base_url=config.slack_api_url)
    kwargs = {"listener_executor": listener_executor} if listener_executor else {}
    app = App(
        client=client,
        signing_secret=config.slack_signing_secret,
        # The default calls auth.test at start-up; the web process must not call Slack then.
        token_verification_enabled=False,
        **kwargs,
    )
    handlers.register(app, services)
    return app
