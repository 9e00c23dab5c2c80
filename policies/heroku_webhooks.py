"""Heroku app webhooks as plain data: the signature Heroku sends, and what a notification
body means (`WebhookEvent`). `bot.web.heroku_webhooks` serves them; this module only decides.

Heroku signs each notification with the subscription's secret: `Heroku-Webhook-Hmac-SHA256`
is the base64 HMAC-SHA256 of the raw body. Entities understood: `dyno` (state `crashed`
becomes a crash `Event`), `api:release` and `api:formation`. Anything else is None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from policies.incidents import Event

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
    app = app_name(document)
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


def document_of(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def app_name(document: dict[str, Any]) -> str | None:
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
