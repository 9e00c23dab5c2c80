"""Builds the slack_bolt `App` with every handler registered, making no Slack call."""

from __future__ import annotations

from slack_bolt import App

import handlers
from bot.services import Services
from bot.slack_api import web_client


def build_bolt_app(services: Services) -> App:
    config = services.config
    # The signing secret is the web edge's (create_app requires it); Socket Mode has none.
    config.require("SLACK_BOT_TOKEN")
    client = web_client(config.slack_bot_token, config.slack_api_url)
    app = App(
        client=client,
        signing_secret=config.slack_signing_secret or "",
        # The default calls auth.test at start-up; the web process must not call Slack then.
        token_verification_enabled=False,
        # Listeners run on the request's own thread: they ack and hand the slow part to
        # `services.background` (handlers/offload.py), so an ack never waits for a pool and
        # bolt copies no request for lazy listeners (we register none).
        process_before_response=True,
        # bot/web/slack_edge.py has already checked the signature and timestamp over the
        # exact bytes received (and refused what fails) before bolt sees the request: bolt's
        # own check would compute the same HMAC a second time on the ack's path.
        request_verification_enabled=False,
    )
    handlers.register(app, services)
    return app
