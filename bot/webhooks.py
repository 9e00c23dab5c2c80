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

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from bot.db import Database
from bot.idempotency import RequestKeys
from bot.models import WebhookSubscription
from policies.incidents import Event

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a notification carries one resource: far smaller than this
SIGNATURE_HEADER = "Heroku-Webhook-Hmac-SHA256"
DELIVERY_HEADER = "Heroku-Webhook-Id"
WEBHOOK_PATH = "/webhooks/heroku"


@dataclass(frozen=True)
class WebhookEvent:
    """One notification: `resource` is `dyno`, `release`, `formation`, …; `data` is the
    resource as the Platform API would return it."""

    delivery_id: str
    resource: str
    action: str
    app: str
    at: datetime
    data: dict[str, Any]
    previous_data: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None

    def incident_event(self) -> Event | None:
        """The alert this notification is, if any: a crashed dyno is a crash."""
        if self.resource == "dyno" and self.data.get("state") == "crashed":
            name = str(self.data.get("name") or "")
            process_type = str(self.data.get("type") or name.split(".")[0] or "dyno")
            return Event(self.app, "crash", process_type, self.at, f"{name} crashed".strip())
        return None


class WebhookSecrets:
    """The secret of each app's subscription, for `heroku_webhooks(secrets.lookup, …)`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def new_secret() -> str:
        return secrets.token_hex(32)

    def save(
        self,
        app: str,
        secret: str,
        url: str,
        created_by: str,
        now: datetime,
        webhook_id: str | None = None,
    ) -> None:
        """Remember (or replace) the app's subscription, after Heroku accepted it."""
        with self._db.session() as session, session.begin():
            session.merge(
                WebhookSubscription(
                    app=app,
                    webhook_id=webhook_id,
                    secret=secret,
                    url=url,
                    created_by=created_by,
                    created_at=now,
                )
            )

    def lookup(self, app: str) -> str | None:
        with self._db.session() as session:
            return session.scalar(
                select(WebhookSubscription.secret).where(WebhookSubscription.app == app)
            )


def sign(secret: str, body: bytes) -> str:
    """The signature Heroku sends for `body` (tests and the sandbox sign with it too)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign(secret, body), str(signature))


def parse(body: bytes, delivery_id: str, now: datetime) -> WebhookEvent | None:
    """A notification as a `WebhookEvent`, or None when it is not one this bot uses."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        return None
    data = document["data"]
    app = _app_name(document)
    resource = str(document.get("resource") or "")
    if not app or resource not in ("dyno", "release", "formation"):
        return None
    actor = document.get("actor") if isinstance(document.get("actor"), dict) else {}
    previous = document.get("previous_data")
    return WebhookEvent(
        delivery_id=delivery_id,
        resource=resource,
        action=str(document.get("action") or ""),
        app=app,
        at=_timestamp(document.get("created_at") or data.get("updated_at")) or now,
        data=data,
        previous_data=previous if isinstance(previous, dict) else {},
        actor=actor.get("email"),
    )


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
        secret = secret_lookup(_app_name(_loads(body)) or "")
        if secret is None or not verify(secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("heroku webhook refused: bad signature")
            return jsonify(error="invalid signature"), 401
        delivery_id = request.headers.get(DELIVERY_HEADER) or str(_loads(body).get("id") or "")
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


def _loads(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _app_name(document: dict[str, Any]) -> str | None:
    data = document.get("data")
    if not isinstance(data, dict):
        return None
    app = data.get("app")
    name = app.get("name") if isinstance(app, dict) else None
    if name is None and document.get("resource") == "app":
        name = data.get("name")
    return str(name) if name else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
