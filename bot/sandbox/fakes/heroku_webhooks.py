"""Deliveries of the fake Heroku's app webhooks: signed notifications POSTed over real HTTP.

Heroku sends one JSON notification per event to every subscription that includes the
event's entity (`dyno`, `api:formation`, …), signed in `Heroku-Webhook-Hmac-SHA256`
with the subscription's secret (base64 HMAC-SHA256 of the body). A `sync` subscription is
retried until it answers 2xx or the attempts run out; `notify` is tried once. Deliveries
run on their own thread, as Heroku's do, so a receiver that calls back into the fake (the
bot reading the formation while handling a notification) cannot deadlock it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger(__name__)

SYNC_ATTEMPTS = 5


@dataclass
class Delivery:
    """One notification to one subscription, and how its attempts went."""

    id: str
    url: str
    body: bytes
    headers: dict[str, str]
    level: str
    statuses: list[int] = field(default_factory=list)  # 0: could not connect

    @property
    def succeeded(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


def notification(
    hook: dict[str, Any],
    include: str,
    resource: str,
    action: str,
    data: dict[str, Any],
    previous: dict[str, Any],
    at: str,
    actor_email: str,
) -> Delivery:
    """The signed notification `hook` gets for one event (Heroku's documented shape)."""
    delivery_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    document = {
        "id": event_id,
        "action": action,
        "actor": {"email": actor_email, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, actor_email))},
        "created_at": at,
        "data": data,
        "previous_data": previous,
        "published_at": at,
        "resource": resource,
        "sequence": None,
        "updated_at": at,
        "version": "application/vnd.heroku+json; version=3",
        "webhook_metadata": {
            "attempt": {"id": str(uuid.uuid4())},
            "delivery": {"id": delivery_id},
            "event": {"id": event_id, "include": include},
            "webhook": {"id": hook["id"]},
        },
    }
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", "Heroku-Webhook-Id": delivery_id}
    if hook.get("secret"):
        digest = hmac.new(str(hook["secret"]).encode(), body, hashlib.sha256).digest()
        headers["Heroku-Webhook-Hmac-SHA256"] = base64.b64encode(digest).decode()
    if hook.get("authorization"):
        headers["Authorization"] = str(hook["authorization"])
    return Delivery(delivery_id, str(hook["url"]), body, headers, str(hook.get("level")))


class Dispatcher:
    """Sends queued deliveries in order on one thread; `retry_delay` is short in tests."""

    def __init__(self, retry_delay: float = 0.2, timeout: float = 10.0) -> None:
        self.deliveries: list[Delivery] = []
        self.retry_delay = retry_delay
        self._timeout = timeout
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def send(self, delivery: Delivery) -> None:
        with self._idle:
            self.deliveries.append(delivery)
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fake-heroku-webhooks", daemon=True
                )
                self._thread.start()
        self._queue.put(delivery)

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery finished its attempts; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
            attempts = SYNC_ATTEMPTS if delivery.level == "sync" else 1
            stop = threading.Event()
            for attempt in range(attempts):
                status = self._attempt(delivery)
                delivery.statuses.append(status)
                if 200 <= status < 300:
                    break
                stop.wait(self.retry_delay * 2**attempt)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _attempt(self, delivery: Delivery) -> int:
        try:
            response = self._session.post(
                delivery.url, data=delivery.body, headers=delivery.headers, timeout=self._timeout
            )
        except requests.RequestException as error:
            log.info("fake heroku webhook not delivered: %s", type(error).__name__)
            return 0
        return response.status_code
