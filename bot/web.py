"""The web process: Flask serving slack_bolt at /slack/events, plus /healthz.

`gunicorn 'bot.web:create_app()'` is the Procfile's web line.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from slack_bolt.adapter.flask import SlackRequestHandler

from bot.config import Config, ConfigError
from bot.logs import setup_logging
from bot.registry import RegistryError
from bot.services import Services
from bot.slack_app import build_bolt_app

log = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Flask:
    setup_logging()
    try:
        config = config or Config.from_env()
        services = Services(config)
    except (ConfigError, RegistryError) as error:
        log.error(str(error))
        # Exit code 3 is gunicorn's "worker failed to boot": the whole server stops.
        raise SystemExit(3) from None
    services.migrate_sqlite_if_behind()
    if not config.admins:
        log.warning("DEPLOYBOT_ADMINS is empty: nobody can scale, restart or kill anything")
    bolt = build_bolt_app(services)
    slack_handler = SlackRequestHandler(bolt)

    web = Flask("deploybot")
    web.extensions["deploybot"] = services

    @web.post("/slack/events")
    def slack_events():  # type: ignore[no-untyped-def]
        # slack_sdk's verifier raises on a non-numeric timestamp, which bolt turns into a 500.
        if not request.headers.get("X-Slack-Request-Timestamp", "0").isdigit():
            return jsonify(error="invalid request"), 401
        return slack_handler.handle(request)

    @web.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        try:
            services.db.ping()
        except Exception as error:
            log.error("health check failed", extra={"error": type(error).__name__})
            return jsonify(ok=False, database="unreachable"), 503
        return jsonify(ok=True, database="ok")

    return web
