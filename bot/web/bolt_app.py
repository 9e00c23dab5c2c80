"""Builds the slack_bolt `App` with every handler registered, making no Slack call."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

import handlers
from bot.services import Services

LAZY_WORKERS = 4


def build_bolt_app(services: Services, listener_executor: Executor | None = None) -> App:
    config = services.config
    config.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    client = WebClient(token=config.slack_bot_token, base_url=config.slack_api_url)
    app = App(
        client=client,
        signing_secret=config.slack_signing_secret,
        # The default calls auth.test at start-up; the web process must not call Slack then.
        token_verification_enabled=False,
        # Acks run on the request's own thread, so they never queue behind lazy listeners
        # waiting on Heroku or AWS; only the lazy work goes to the pool.
        process_before_response=True,
        # A small pool: platform calls mostly wait on the network, and more threads would
        # only compete with acks for the GIL when a burst of commands arrives.
        listener_executor=listener_executor
        or ThreadPoolExecutor(max_workers=LAZY_WORKERS, thread_name_prefix="lazy"),
    )
    handlers.register(app, services)
    return app
