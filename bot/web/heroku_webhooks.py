"""`POST /webhooks/heroku`: Heroku app webhooks in, verified and de-duplicated, as plain
events for the caller.

Heroku signs each notification with the subscription's secret: `Heroku-Webhook-Hmac-SHA256`
is the base64 HMAC-SHA256 of the raw body. The app named in the body picks the secret (the
body is only read for that until the signature holds); a missing, wrong or unknown
signature gets 401 and nothing is stored. Replays are recognised from the signed body
alone (`policies.heroku_webhooks.replay_key` and `too_old`): the event's own `id` is
claimed once in the database, so a redelivery, or a captured delivery sent again under a
fresh `Heroku-Webhook-Id`, is answered 200 and not processed twice, on any web dyno; an
event older than a day, or dated in the future, is answered 200 and ignored. A release's
outcome (its app, version and status) is claimed once too (`WebhookEvent.outcome_key`):
Heroku may tell it in a `create` and again in an `update`, two events with their own ids.

Entities understood: `dyno` (state `crashed` becomes a crash `Event`), `api:release` and
`api:formation` (handed on as `WebhookEvent`s, e.g. so the autoscaler notices a hand-made
scale at once). Anything else is acknowledged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request

from bot.store.request_keys import RequestKeys
from bot.web.edge import read_body, where
from policies.heroku_webhooks import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    WebhookEvent,
    app_name,
    document_of,
    event_of,
    replay_key,
    too_old,
    verify,
)

log = logging.getLogger(__name__)


def heroku_webhooks(
    accepted: Callable[[str], Sequence[str]],
    on_event: Callable[[WebhookEvent], None],
    request_keys: RequestKeys,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Blueprint:
    """The blueprint: `accepted(app)` is the secrets a delivery for `app` may be signed with
    (the one the bot subscribed it with, and the one that replaced, while a rotation's outcome
    is unknown; none if it did not subscribe it); `on_event` runs once per delivery, after
    the signature held."""
    blueprint = Blueprint("heroku_webhooks", __name__)

    @blueprint.post(WEBHOOK_PATH)
    def receive():  # type: ignore[no-untyped-def]
        body = read_body(MAX_BODY_BYTES)  # 413 past it, before a byte is parsed
        document = document_of(body)
        app = app_name(document)  # only a name Heroku could give an app: safe to log
        secrets = accepted(app or "")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not any(verify(secret, body, signature) for secret in secrets):
            # Which app, and whether the bot knows it at all: an app renamed on Heroku (its
            # subscription follows it; the bot's row keeps the old name) is not a forgery.
            if secrets:
                reason = "bad signature"
            else:
                reason = "no subscription for this app" if app else "no Heroku app named"
            log.warning("heroku webhook refused", extra={"app": app, "reason": reason})
            return jsonify(error="invalid signature"), 401
        key = replay_key(document)
        if key is None:
            log.warning("heroku webhook refused", extra={"app": app, "reason": "no event id"})
            return jsonify(error="no event id"), 400
        now = clock()
        if (stale := too_old(document, now)) is not None:
            # 200, not 4xx: Heroku would redeliver a refused event for 72 hours.
            log.warning("heroku webhook ignored", extra={"reason": stale, "key": key})
            return jsonify(ok=True, ignored=True, reason=stale)
        event = event_of(document, key.partition(":")[2], now)
        if event is None:
            return jsonify(ok=True, ignored=True)
        if not request_keys.claim(key, now):
            return jsonify(ok=True, duplicate=True)
        outcome = event.outcome_key()  # one release's outcome, told again in another event
        if outcome is not None and not request_keys.claim(outcome, now):
            return jsonify(ok=True, duplicate=True)
        try:
            on_event(event)
        except Exception as error:
            # Let Heroku's redelivery try again rather than lose the event.
            request_keys.release(key)
            if outcome is not None:
                request_keys.release(outcome)
            log.error(
                "heroku webhook not processed",
                extra={"key": key, "error": type(error).__name__, "where": where(error)},
            )
            return jsonify(error="not processed"), 500
        return jsonify(ok=True)

    return blueprint
