"""The web process: Flask serving slack_bolt at /slack/events, Heroku log drains at
/drain/<token>, Heroku app webhooks at /webhooks/heroku, plus /healthz (`?deep=1` adds the worker's lag).

`gunicorn 'bot.web.app:create_app()'` is the Procfile's web line.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, jsonify, request
from slack_bolt.adapter.flask.handler import to_flask_response

from bot import preflight
from bot.config import Config, ConfigError, seconds_setting
from bot.logs import setup_logging
from bot.preflight import NEEDS
from bot.registry import Registry, RegistryError
from bot.services import Services
from bot.store.incidents import Alerts
from bot.web import edge, slack_edge
from bot.web.after_answer import HandOverAfterAnswer
from bot.web.bolt_app import build_bolt_app
from bot.web.drain_wsgi import DrainDispatch
from bot.web.heroku_events import HerokuEvents
from bot.web.heroku_webhooks import heroku_webhooks
from bot.web.log_drain import FLUSH_SECONDS, DrainIntake, Flusher
from handlers.alerts import blocks as alert_blocks

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, registry: Registry | None = None) -> Flask:
    """`registry` None reads DEPLOYBOT_CONFIG; the sandbox passes its demo apps' own. With
    neither argument (the Procfile's line) the environment is checked as `serve` checks it."""
    setup_logging()
    try:
        # Checked before any migration, as `serve` does: the Procfile's gunicorn line had
        # migrated, then died in bolt with a 61-line traceback.
        if config is None and registry is None:
            # The Procfile's line, `create_app()`: all of what `serve` checks (which passes
            # its config), the registry's credentials too. It had started without
            # HEROKU_API_KEY and then answered every command that it had no key.
            config, registry = Config.from_env(), Registry.from_env()
            preflight.require("serve", config, registry, os.environ)
        config = config or Config.from_env()
        config.require(*NEEDS["serve"])
        every = seconds_setting("DEPLOYBOT_DRAIN_FLUSH_SECONDS", FLUSH_SECONDS)
        services = Services(config, registry=registry)
    except (ConfigError, RegistryError) as error:
        log.error(str(error))
        # Exit code 3 is gunicorn's "worker failed to boot": the whole server stops.
        raise SystemExit(3) from None
    services.migrate_sqlite_if_behind()
    if not config.admins:
        if services.registry.rules:
            log.warning("DEPLOYBOT_ADMINS is empty: only the registry's access rules allow changes")
        else:
            log.warning(
                "DEPLOYBOT_ADMINS is empty and no access rule is set: nobody can change anything"
            )
    bolt = build_bolt_app(services)
    signing_secret = config.slack_signing_secret or ""  # build_bolt_app required it
    intake = DrainIntake(services.db, services.drain_claims)
    # Its thread starts with the first drain POST: a gunicorn master that preloads this app
    # must fork no threads (they would not exist in the workers).
    flusher = Flusher(intake.aggregator, services.metrics, every, settle=intake.settle)

    web = Flask("deploybot")
    edge.install(web)
    web.extensions["deploybot"] = services
    web.extensions["deploybot.metrics"] = (intake, flusher)
    on_event = HerokuEvents(
        services.registry, Alerts(services.db, blocks_for=alert_blocks), services.observations
    )
    web.register_blueprint(
        heroku_webhooks(services.webhook_secrets.accepted, on_event, services.request_keys)
    )

    # POST /drain/<token> is answered in plain WSGI in front of Flask (the busiest route by
    # far; see bot/web/drain_wsgi.py); Flask still answers every other method on that path.
    # Behind it, an ack's job is written to the background process after the ack is sent.
    answered = HandOverAfterAnswer(web.wsgi_app, services.background)
    web.wsgi_app = DrainDispatch(answered, intake, flusher)  # type: ignore[method-assign]

    @web.post("/drain/<token>")
    def drain(token: str):  # type: ignore[no-untyped-def]
        # Never reached (DrainDispatch answers every POST here); the rule makes Flask answer
        # other methods 405 with an Allow header, as it did when this route did the work.
        raise RuntimeError("POST /drain/<token> is answered by DrainDispatch")

    @web.post("/slack/events")
    def slack_events():  # type: ignore[no-untyped-def]
        # The raw bytes are checked and parsed here, once; bolt gets what they parsed to.
        body = edge.read_body(cache=True)
        parsed = slack_edge.check(signing_secret, request.headers, body, time.time())
        if isinstance(parsed, slack_edge.Refusal):
            log.warning("slack request refused", extra={"reason": parsed.reason})
            return jsonify(error="invalid request"), parsed.status
        query = request.query_string.decode("utf-8", "replace")
        return to_flask_response(
            bolt.dispatch(slack_edge.bolt_request(body.decode(), request.headers, query, parsed))
        )

    @web.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        try:
            services.db.ping()
        except Exception as error:
            log.error("health check failed", extra={"error": type(error).__name__})
            return jsonify(ok=False, database="unreachable"), 503
        if request.args.get("deep") != "1":
            return jsonify(ok=True, database="ok")
        # Deep: the worker too (its heartbeat), for a monitor that should page when
        # autoscaling and alerts stop; the plain check stays about this dyno alone.
        beat = services.health.beat()
        down = services.health.worker_down(beat, checked=True)
        # A job failing or hung is a worker not doing its work, though it ticks. Which job,
        # which error and the leader's name are for people, in `/deploy about`: this URL
        # answers anyone.
        trouble = bool(beat and beat.trouble)
        lag = services.health.worker_lag()
        worker = {
            "ok": not down and not trouble,
            "lag_seconds": None if lag is None else round(lag, 1),
            "trouble": _TROUBLE if trouble else None,
        }
        ok = worker["ok"]
        return jsonify(ok=ok, database="ok", worker=worker), 200 if ok else 503

    return web


_TROUBLE = "A worker job is failing or hung: /deploy about says which."


def close(web: Flask) -> None:
    """Stop what an app made by `create_app` runs besides requests (gunicorn's worker_exit;
    tests when they end): accepted commands are still answered, waiting follow-ups end their
    threads, queued drain batches are counted and the last seconds flushed. An app left
    running keeps its job, claim and flush threads, which go on calling Slack, the platforms
    and the database after whoever made it has moved on."""
    services = web.extensions.get("deploybot")
    if services is not None:
        services.background.close()  # the background process (or pool) finishes every job
        services.followups.close()
        for stop in services.closing:  # after the jobs, which may have set a timer
            stop()
    metrics = web.extensions.get("deploybot.metrics")
    if metrics is not None:
        intake, flusher = metrics
        intake.close()  # count the batches still queued for their claim
        flusher.stop()  # then save the last seconds of drained traffic
