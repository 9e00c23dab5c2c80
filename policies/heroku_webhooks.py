"""Heroku app webhooks as plain data: the signature Heroku sends, and what a notification
body means (`WebhookEvent`). `bot.web.heroku_webhooks` serves them; this module only decides.

Heroku signs each notification with the subscription's secret: `Heroku-Webhook-Hmac-SHA256`
is the base64 HMAC-SHA256 of the raw body. Entities understood: `dyno`, `api:release` and
`api:formation`. Anything else is None.

A `dyno` notification is one of two kinds of dyno. A formation dyno (`web.1`) that crashes
is a critical crash: Heroku restarts it, and a Restart button for its process type helps.
A one-off dyno (`heroku run`, Heroku Scheduler, the release phase) is a command that runs
once and ends; a non-zero exit is the command failing, not the app crashing, and there is
no process type to restart (Heroku refuses `restart APP scheduler`). So it becomes a plain
notice of what ran and how it ended, with no buttons.

Replays. The signature covers the body only, so anyone holding one captured delivery can
send it again with any headers; the `Heroku-Webhook-Id` header proves nothing. What the
signature does cover is the event's own `id` (the same on every redelivery of one event)
and its `created_at`: `replay_key` is claimed once per event id, and `too_old` refuses an
event older than `MAX_EVENT_AGE` or dated in the future. The age limit is shorter than the
time claimed keys are kept (`bot.store.request_keys.KEEP`, 2 days), so every event young
enough to be accepted still has its key remembered. Heroku itself gives up redelivering
after 72 hours; an event a day late is no news anyone should act on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.commands import is_app_name
from policies.incidents import Event
from policies.numbers import ascii_digits
from policies.redact import mask

MAX_BODY_BYTES = 1 << 20  # a notification carries one resource: far smaller than this
SIGNATURE_HEADER = "Heroku-Webhook-Hmac-SHA256"
WEBHOOK_PATH = "/webhooks/heroku"
MAX_EVENT_AGE = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(minutes=5)  # Heroku's clock ahead of ours by at most this
DESTROY = "destroy"  # Heroku's action for a resource that is gone
MAX_COUNT = 2**31 - 1  # the store's INTEGER columns: no release or dyno count comes near


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

    def release_outcome(self) -> tuple[int, str] | None:
        """(version, `succeeded` or `failed`) of the release this notification says ended;
        None for anything else (a pending release, a destroy, another resource). Heroku
        sends `create` (pending, or already succeeded) and then `update` (its outcome)."""
        if self.resource != "release" or self.action == DESTROY:
            return None
        version = count_of(self.data.get("version"), least=1)
        status = self.data.get("status", "succeeded")
        if version is None or status not in ("succeeded", "failed"):
            return None
        return version, status

    def outcome_key(self) -> str | None:
        """The key claimed once per release outcome, as `replay_key` is per event: Heroku
        may tell one release succeeded in more than one event (its `create`, an `update`
        after), each with its own id, and each had been counted as one more release."""
        outcome = self.release_outcome()
        if outcome is None:
            return None
        version, status = outcome
        return f"heroku-release:{self.app}:v{version}:{status}"

    def incident_event(self) -> Event | None:
        """The alert this notification is, if any: a crashed formation dyno is a crash; a
        one-off dyno that exited non-zero is a notice (`one_off_failed`). A `destroy` is
        none: the dyno is gone (a scale-down), whatever state it was last in."""
        if self.resource != "dyno" or self.action == DESTROY:
            return None
        data = self.data
        name = _text(data.get("name"))
        process_type = str(data.get("type") or name.split(".")[0] or "dyno")
        if not _PROCESS_TYPE.match(process_type):
            process_type = "dyno"  # the incident's subject is shown in Slack: a plain word only
        status = _exit_status(data.get("exit_status"))
        if is_one_off(data):
            if not (data.get("state") == "crashed" or status not in (None, 0)):
                return None  # starting, up, or ended well
            return Event(
                self.app, "one_off_failed", process_type, self.at, one_off_detail(data, status)
            )
        if data.get("state") != "crashed":
            return None
        exited = f" (exit status {status})" if status is not None else ""
        return Event(self.app, "crash", process_type, self.at, f"{name} crashed{exited}".strip())


# Process types of one-off dynos: `heroku run` (`run`), Heroku Scheduler (`scheduler`), the
# release phase (`release`). Heroku also marks runs it manages in `management`
# (`run:detached`, `run:attached`), whatever their type.
ONE_OFF_TYPES = frozenset({"run", "scheduler", "release"})
COMMAND_SHOWN = 120  # characters of a one-off's command in a notice
_PROCESS_TYPE = re.compile(r"^[a-z][a-z0-9_-]{0,29}\Z")


def is_one_off(data: dict[str, Any]) -> bool:
    """Whether a dyno (as a `dyno` notification carries it) is a one-off, not a formation dyno."""
    management = str(data.get("management") or "")
    return str(data.get("type") or "") in ONE_OFF_TYPES or management.startswith("run:")


def one_off_detail(data: dict[str, Any], status: int | None) -> str:
    """`scheduler.4821 “rake cleanup” exited with status 137 (killed: …)`: what ran and how it
    ended. Plain text, no markup: the alert's renderer (`policies.incidents`) escapes a detail
    once, and a backtick there shows as its look-alike, so the command is in quotes."""
    name = str(data.get("name") or "a one-off dyno")
    # A command line can carry a secret (`STRIPE_KEY=… rake x`, a database URL), and the
    # alert goes to a channel.
    command = mask(str(data.get("command") or "").strip())
    if len(command) > COMMAND_SHOWN:
        command = command[: COMMAND_SHOWN - 1] + "…"
    ran = f"{name} “{command}”" if command else name
    if status is None:
        return f"{ran} crashed."
    return f"{ran} exited with status {status}{_meaning(status)}."


def _meaning(status: int) -> str:
    if status == 137:
        return " (killed with SIGKILL: usually over its memory, or past its time limit)"
    if status == 143:
        return " (stopped with SIGTERM)"
    if 128 < status < 160:
        return f" (ended by signal {status - 128})"
    return ""


def _exit_status(value: Any) -> int | None:
    # JSON may carry it as a number or, from some producers, a numeric string.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    # One minus at most: `lstrip("-")` had let "--5" through to int(), a ValueError (a 500).
    digits = text[1:] if text.startswith("-") else text
    if ascii_digits(digits) and len(text) < 6:
        return int(text)
    return None


def sign(secret: str, body: bytes) -> str:
    """The signature Heroku sends for `body` (tests and the sandbox sign with it too)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters ('\xb2').
    given = str(signature or "").encode("utf-8", "replace")
    return bool(given) and hmac.compare_digest(sign(secret, body).encode(), given)


def parse(body: bytes, delivery_id: str, now: datetime) -> WebhookEvent | None:
    """A notification as a `WebhookEvent`, or None when it is not one this bot uses."""
    return event_of(document_of(body), delivery_id, now)


def event_of(document: dict[str, Any], delivery_id: str, now: datetime) -> WebhookEvent | None:
    """`parse` for a body already read with `document_of`."""
    if not isinstance(document.get("data"), dict):
        return None
    # Text people typed (a release's description, a command) goes to the database: no NUL
    # (PostgreSQL refuses it) and no lone surrogate (both databases' drivers do), or the
    # event is a 500 that Heroku redelivers for 72 hours.
    document = storable(document)
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
        actor=_text(actor.get("email")) or None,
    )


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_READ_DEPTH = 4  # the deepest text the bot reads (`data.app.name`) is 2 levels down


def storable(value: Any, depth: int = _READ_DEPTH) -> Any:
    """`value` from JSON with every string's NULs dropped and lone surrogates (JSON's
    unpaired `\\ud800`; a pair is one character once parsed) replaced by U+FFFD, down to
    `depth` levels (a signed body nested hundreds deep must not exhaust the stack)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(_replacement, value) if _UNSTORABLE.search(value) else value
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {storable(key): storable(item, depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item, depth - 1) for item in value]
    return value


def _replacement(found: re.Match[str]) -> str:
    return "" if found.group() == "\x00" else "\ufffd"


def count_of(value: Any, least: int = 0) -> int | None:
    """A release's version or a formation's quantity, if it is one: a JSON integer (not
    `true`) from `least` to what the database's integer holds; None for anything else, which
    no Heroku notification carries (10**30 had overflowed the column: a 500, retried for days)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if least <= value <= MAX_COUNT else None


def _text(value: Any) -> str:
    # A name or an address shown in an alert: a string, or nothing (not a list's repr).
    return value if isinstance(value, str) else ""


def document_of(body: bytes) -> dict[str, Any]:
    """The body's JSON object, or {} for anything else (never raises: it runs before the
    signature is checked, on whatever anyone sends)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return {}
    return document if isinstance(document, dict) else {}


def replay_key(document: dict[str, Any]) -> str | None:
    """The key claimed once per event: its own `id`, inside the signed body."""
    event_id = document.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 100:
        return None
    if not event_id.isprintable():
        return None  # Heroku's ids are UUIDs: a NUL or a lone surrogate was a 500 when claimed
    return f"heroku-event:{event_id.strip()}"


def too_old(document: dict[str, Any], now: datetime) -> str | None:
    """Why the event is refused by its age (None: young enough): its signed `created_at`
    (else `updated_at`) must be within MAX_EVENT_AGE before `now`, and not in the future."""
    data = document.get("data")
    stamp = (
        _timestamp(document.get("created_at"))
        or _timestamp(document.get("updated_at"))
        or _timestamp(data.get("updated_at") if isinstance(data, dict) else None)
    )
    if stamp is None:
        return "no timestamp"
    try:
        age = now - stamp
    except OverflowError:  # year 1 or 9999 with an offset
        return "timestamp out of range"
    if age > MAX_EVENT_AGE:
        return "too old"
    if age < -MAX_CLOCK_SKEW:
        return "dated in the future"
    return None


def app_name(document: dict[str, Any]) -> str | None:
    data = document.get("data")
    if not isinstance(data, dict):
        return None
    app = data.get("app")
    name = app.get("name") if isinstance(app, dict) else None
    if name is None and document.get("resource") == "app":
        name = data.get("name")
    # Read before the signature is checked, to look the secret up: only a name Heroku could
    # give an app goes to the database (a NUL or a lone surrogate in it made a 500 there).
    return name if isinstance(name, str) and is_app_name(name) else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
