"""`POST /webhooks/heroku`: Heroku app webhooks in, verified and de-duplicated, as plain
events for the caller.

Heroku signs each notification with the subscription's secret: `Heroku-Webhook-Hmac-SHA256`
is the base64 HMAC-SHA256 of the raw body. The app named in the body picks the secret (the
body is only read for that until the signature holds); a missing, wrong or unknown
signature gets 401 and nothing is stored. A `sync` subscription redelivers until it gets a
2xx, with the same `Heroku-Webhook-Id`: that id is claimed once in the database, so a
redelivery landing on another web dyno is answered 200 and not processed twice.

Entities understood: `dyno` (state `crashed` becomes a crash `Event`), `api:release` and
`api:formation` (handed on as `WebhookEvent`s, e.g. so the autoscaler notices a hand-made
scale at once). Anything else is acknowledged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request

from bot.store.request_keys import RequestKeys
from policies.heroku_webhooks import (
    DELIVERY_HEADER,
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    WebhookEvent,
    app_name,
    document_of,
    parse,
    verify,
)

log = logging.getLogger(__name__)


def heroku_webhooks(
    secret_lookup: Callable[[str], str | None],
    on_event: Callable[[WebhookEvent], None],
    request_keys: RequestKeys,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Blueprint:
    """The blueprint: `secret_lookup(app)` is the secret the bot subscribed `app` with (None
    if it did not); `on_event` runs once per delivery, after the signature held."""
    blueprint = Blueprint("heroku_webhooks", __name__)

    @blueprint.post(WEBHOOK_PATH)
    def receive():  # type: ignore[no-untyped-def]
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return "", 413
        body = request.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            return "", 413
        secret = secret_lookup(app_name(document_of(body)) or "")
        if secret is None or not verify(secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("heroku webhook refused: bad signature")
            return jsonify(error="invalid signature"), 401
        delivery_id = request.headers.get(DELIVERY_HEADER) or str(document_of(body).get("id") or "")
        if not delivery_id:
            return jsonify(error="no delivery id"), 400
        event = parse(body, delivery_id, clock())
        if event is None:
            return jsonify(ok=True, ignored=True)
        key = f"heroku-webhook:{delivery_id}"
        if not request_keys.claim(key, clock()):
            return jsonify(ok=True, duplicate=True)
        try:
            on_event(event)
        except Exception:
            # Let Heroku's redelivery try again rather than lose the event.
            request_keys.release(key)
            log.exception("heroku webhook not processed", extra={"delivery": delivery_id})
            return jsonify(error="not processed"), 500
        return jsonify(ok=True)

    return blueprint
