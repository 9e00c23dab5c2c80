"""`POST /webhooks/heroku`: signed notifications in, forged and replayed ones refused or
de-duplicated, a crashed dyno out as a crash event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.store.db import Database, aware
from bot.store.incidents import Alerts
from bot.store.models import RequestKey
from bot.store.observations import Observations
from bot.store.request_keys import KEEP, RequestKeys
from bot.store.webhook_secrets import WebhookSecrets
from bot.web.app import create_app
from bot.web.heroku_webhooks import heroku_webhooks
from policies.heroku_webhooks import (
    MAX_BODY_BYTES,
    MAX_CLOCK_SKEW,
    MAX_EVENT_AGE,
    WebhookEvent,
    sign,
)
from policies.incidents import Event
from tests.conftest import HEROKU_KEY
from tests.webclient import EndlessBody, post_chunked

SECRET = "dcbff0c4430a2960a2552389d587bc58d30a37a8cf3f75f8fb77abe667ad"
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def notification(resource: str, data: dict[str, Any], action: str = "update") -> dict[str, Any]:
    """A notification shaped like Heroku's (devcenter "App Webhooks", the event schema)."""
    return {
        "id": str(uuid.uuid4()),
        "action": action,
        "actor": {"email": "deployer@example.com", "id": str(uuid.uuid4())},
        "created_at": "2026-11-28T15:02:03Z",
        "data": data,
        "previous_data": {},
        "published_at": "2026-11-28T15:02:04Z",
        "resource": resource,
        "sequence": None,
        "updated_at": "2026-11-28T15:02:03Z",
        "version": "application/vnd.heroku+json; version=3",
        "webhook_metadata": {
            "attempt": {"id": str(uuid.uuid4())},
            "delivery": {"id": str(uuid.uuid4())},
            "event": {"id": str(uuid.uuid4()), "include": f"api:{resource}"},
            "webhook": {"id": str(uuid.uuid4())},
        },
    }


def dyno(state: str, name: str = "web.1", app: str = "myapp") -> dict[str, Any]:
    return notification(
        "dyno",
        {
            "app": {"id": str(uuid.uuid4()), "name": app},
            "attach_url": None,
            "command": "gunicorn app:app",
            "created_at": "2026-11-28T14:00:00Z",
            "id": str(uuid.uuid4()),
            "name": name,
            "release": {"id": str(uuid.uuid4()), "version": 12},
            "size": "Standard-1X",
            "state": state,
            "type": name.split(".")[0],
            "updated_at": "2026-11-28T15:02:03Z",
        },
    )


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


class Receiver:
    def __init__(self, db: Database, secrets: dict[str, str]) -> None:
        self.db = db
        self.events: list[WebhookEvent] = []
        self.fail = False
        app = Flask("test")
        app.register_blueprint(
            heroku_webhooks(
                lambda app: [secrets[app]] if app in secrets else [],
                self._on_event,
                RequestKeys(db),
                clock=lambda: NOW,
            )
        )
        self.client = app.test_client()

    def _on_event(self, event: WebhookEvent) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.events.append(event)

    def post(
        self, document: Any, secret: str | None = SECRET, delivery: str | None = None, **extra
    ):
        body = json.dumps(document).encode() if not isinstance(document, bytes) else document
        headers = {"Content-Type": "application/json", **extra}
        if secret is not None:
            headers["Heroku-Webhook-Hmac-SHA256"] = sign(secret, body)
        headers["Heroku-Webhook-Id"] = delivery or str(uuid.uuid4())
        return self.client.post("/webhooks/heroku", data=body, headers=headers)

    def keys(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(RequestKey))


@pytest.fixture
def receiver(db) -> Receiver:
    return Receiver(db, {"myapp": SECRET})


def test_a_signed_dyno_crash_becomes_a_crash_event(receiver):
    answer = receiver.post(dyno("crashed", "web.2"))
    assert answer.status_code == 200, answer.data
    [event] = receiver.events
    assert (event.resource, event.action, event.app) == ("dyno", "update", "myapp")
    assert event.actor == "deployer@example.com"
    assert event.incident_event() == Event(
        "myapp", "crash", "web", datetime(2026, 11, 28, 15, 2, 3, tzinfo=UTC), "web.2 crashed"
    )


@pytest.mark.parametrize(
    ("case", "secret", "mangle"),
    [
        ("missing", None, None),
        ("forged with another secret", "not-the-secret", None),
        ("body changed after signing", SECRET, "tamper"),
        ("empty signature", "", None),
        ("non-ASCII signature", "\xb2", None),
    ],
)
def test_a_bad_signature_gets_401_and_nothing_is_stored(receiver, case, secret, mangle):
    body = json.dumps(dyno("crashed")).encode()
    headers = {"Heroku-Webhook-Id": str(uuid.uuid4())}
    if secret is not None:
        headers["Heroku-Webhook-Hmac-SHA256"] = (
            secret if secret == "\xb2" else sign(secret, body) if secret else ""
        )
    if mangle:
        body = body.replace(b"web.1", b"web.9")
    answer = receiver.client.post("/webhooks/heroku", data=body, headers=headers)
    assert answer.status_code == 401, case
    assert receiver.events == [] and receiver.keys() == 0


def test_an_app_the_bot_never_subscribed_gets_401(receiver):
    answer = receiver.post(dyno("crashed", app="stranger"), secret=SECRET)
    assert answer.status_code == 401
    assert receiver.events == []


def test_a_replayed_delivery_is_answered_200_and_processed_once(receiver):
    document = dyno("crashed")
    delivery = str(uuid.uuid4())
    first = receiver.post(document, delivery=delivery)
    again = receiver.post(document, delivery=delivery)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == {"ok": True, "duplicate": True}
    assert len(receiver.events) == 1


def test_a_replay_across_web_dynos_is_processed_once(db):
    # Two receivers share only the database, as two web dynos do.
    one, two = Receiver(db, {"myapp": SECRET}), Receiver(db, {"myapp": SECRET})
    document, delivery = dyno("crashed"), str(uuid.uuid4())
    assert one.post(document, delivery=delivery).status_code == 200
    assert two.post(document, delivery=delivery).status_code == 200
    assert len(one.events) + len(two.events) == 1


def test_a_failed_handler_answers_500_so_the_redelivery_is_processed(receiver):
    document, delivery = dyno("crashed"), str(uuid.uuid4())
    receiver.fail = True
    assert receiver.post(document, delivery=delivery).status_code == 500
    receiver.fail = False
    assert receiver.post(document, delivery=delivery).status_code == 200
    assert len(receiver.events) == 1


def test_a_dyno_that_comes_up_is_passed_on_but_is_no_alert(receiver):
    assert receiver.post(dyno("up")).status_code == 200
    [event] = receiver.events
    assert event.data["state"] == "up" and event.incident_event() is None


def test_release_and_formation_events_are_passed_on(receiver):
    app = {"id": str(uuid.uuid4()), "name": "myapp"}
    release = notification(
        "release",
        {"app": app, "version": 13, "status": "succeeded", "description": "Deploy e443df7"},
        action="create",
    )
    formation = notification(
        "formation",
        {"app": app, "type": "web", "quantity": 4, "size": "Standard-1X"},
    )
    formation["previous_data"] = {"quantity": 2}
    assert receiver.post(release).status_code == 200
    assert receiver.post(formation).status_code == 200
    got = [
        (e.resource, e.action, e.data.get("version"), e.data.get("quantity"))
        for e in receiver.events
    ]
    assert got == [("release", "create", 13, None), ("formation", "update", None, 4)]
    assert receiver.events[1].previous_data == {"quantity": 2}
    assert all(e.incident_event() is None for e in receiver.events)


def test_other_entities_are_acknowledged_and_ignored(receiver):
    build = notification("build", {"app": {"id": str(uuid.uuid4()), "name": "myapp"}})
    answer = receiver.post(build)
    assert answer.status_code == 200 and answer.json == {"ok": True, "ignored": True}
    assert receiver.events == []


def test_a_subscription_made_through_the_fake_heroku_signs_what_it_delivers(heroku, db):
    session = requests.Session()
    session.trust_env = False
    answer = session.post(
        f"{heroku.url}/apps/myapp/webhooks",
        json={
            "include": ["dyno", "api:release", "api:formation"],
            "level": "sync",
            "url": "https://bot.example.com/webhooks/heroku",
            "secret": "generated-secret",
        },
        headers={"Accept": "application/vnd.heroku+json; version=3"},
        auth=("", HEROKU_KEY),
    )
    assert answer.status_code == 201, answer.text
    assert "secret" not in answer.json()
    [hook] = heroku.webhooks("myapp")
    assert heroku.violations == []
    receiver = Receiver(db, {"myapp": hook["secret"]})
    assert receiver.post(dyno("crashed"), secret="generated-secret").status_code == 200
    assert receiver.post(dyno("crashed"), secret=SECRET).status_code == 401
    assert len(receiver.events) == 1


def test_stored_subscription_secrets_check_deliveries(db):
    stored = WebhookSecrets(db)
    secret = WebhookSecrets.new_secret()
    stored.save("myapp", "old-secret", "https://bot.example.com/webhooks/heroku", "U1", NOW)
    stored.save("myapp", secret, "https://bot.example.com/webhooks/heroku", "U1", NOW, "wh-1")
    assert stored.accepted("myapp") == (secret,) and stored.accepted("other") == ()
    events: list[WebhookEvent] = []
    app = Flask("test")
    app.register_blueprint(
        heroku_webhooks(stored.accepted, events.append, RequestKeys(db), clock=lambda: NOW)
    )
    body = json.dumps(dyno("crashed")).encode()
    for signed_with, status in ((secret, 200), ("old-secret", 401)):
        answer = app.test_client().post(
            "/webhooks/heroku",
            data=body,
            headers={
                "Heroku-Webhook-Hmac-SHA256": sign(signed_with, body),
                "Heroku-Webhook-Id": str(uuid.uuid4()),
            },
        )
        assert answer.status_code == status
    assert len(events) == 1


# ---------------------------------------------------------------------------------------------
# Replays and hostile bodies: the signed body decides, never a header.


def test_a_captured_delivery_replayed_under_new_header_ids_counts_once(config, db):
    """The attack: one real crash delivery, captured, sent 10 more times with fresh
    `Heroku-Webhook-Id`s. Through the real web app: one crash incident, counted once."""
    web = create_app(config)
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document = dyno("crashed")
    document["created_at"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    body = json.dumps(document).encode()
    signature = sign(SECRET, body)
    client = web.test_client()
    answers = [
        client.post(
            "/webhooks/heroku",
            data=body,
            headers={
                "Heroku-Webhook-Hmac-SHA256": signature,
                "Heroku-Webhook-Id": str(uuid.uuid4()),
            },
        )
        for _ in range(11)
    ]
    assert [a.status_code for a in answers] == [200] * 11
    assert [a.json.get("duplicate") for a in answers] == [None] + [True] * 10
    [incident] = Alerts(db).incidents("myapp")
    assert incident.count == 1


@pytest.mark.parametrize(
    ("case", "created_at", "reason"),
    [
        ("a day and a minute old", NOW - MAX_EVENT_AGE - timedelta(minutes=1), "too old"),
        ("from the future", NOW + MAX_CLOCK_SKEW + timedelta(minutes=1), "dated in the future"),
        ("year 1", "0001-01-01T00:00:00+01:00", "too old"),
        ("year 9999", "9999-12-31T23:59:59-01:00", "dated in the future"),
        ("no timestamp", None, "no timestamp"),
        ("a number", 1764342123, "no timestamp"),
    ],
)
def test_a_signed_event_too_old_or_too_new_is_ignored(receiver, case, created_at, reason):
    document = dyno("crashed")
    for field in ("created_at", "updated_at"):
        document.pop(field)
    document["data"].pop("updated_at")
    if isinstance(created_at, datetime):
        created_at = created_at.isoformat()
    if created_at is not None:
        document["created_at"] = created_at
    answer = receiver.post(document)
    assert answer.status_code == 200, case
    assert answer.json == {"ok": True, "ignored": True, "reason": reason}
    assert receiver.events == [] and receiver.keys() == 0


def test_the_age_limit_is_shorter_than_claimed_keys_are_kept():
    # Otherwise an event could be replayed after its key was forgotten, still young enough.
    assert MAX_EVENT_AGE + MAX_CLOCK_SKEW < KEEP


@pytest.mark.parametrize(
    "event_id", [None, "", 7, ["x"], "x" * 101, "e\x001", "\ud800", "e\n1"], ids=repr
)
def test_a_signed_event_without_a_usable_id_gets_400(receiver, event_id):
    document = dyno("crashed")
    if event_id is None:
        del document["id"]
    else:
        document["id"] = event_id
    assert receiver.post(document).status_code == 400
    assert receiver.events == [] and receiver.keys() == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"[" * 100_000, b'"x"', b"\xff\xfe", b"", b"1" * 5000],
    ids=["bad JSON", "array", "deep", "string", "not UTF-8", "empty", "5,000 digits"],
)
@pytest.mark.parametrize("signed", [False, True])
def test_junk_bodies_get_4xx_signed_or_not(receiver, body, signed):
    answer = receiver.post(body, secret=SECRET if signed else None)
    # Without an app in the body there is no secret to check it with: 401 either way.
    assert answer.status_code == 401
    assert receiver.events == []


@pytest.mark.parametrize(
    "name", ["my\x00app", "\ud800", "x" * 5000], ids=["NUL", "lone surrogate", "5,000 chars"]
)
def test_an_unsigned_body_naming_no_heroku_app_gets_401_from_the_real_app(web, caplog, name):
    # The app's name picks the secret before the signature is checked: a NUL in it was a
    # DataError from PostgreSQL, a lone surrogate one from both databases' drivers (500s).
    body = json.dumps({"id": "e1", "resource": "dyno", "data": {"app": {"name": name}}}).encode()
    answer = web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": "forged"}
    )
    assert answer.status_code == 401
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_signed_body_of_the_wrong_shape_is_acknowledged_and_ignored(receiver):
    shapes = [
        {"id": "e1", "created_at": NOW.isoformat(), "resource": "dyno", "data": {"app": {"name": "myapp"}, "state": ["crashed"]}},
        {"id": "e2", "created_at": NOW.isoformat(), "resource": ["dyno"], "data": {"app": {"name": "myapp"}}},
        {"id": "e3", "created_at": NOW.isoformat(), "resource": "formation", "actor": "x", "data": {"app": {"name": "myapp"}, "quantity": "3"}},
    ]  # fmt: skip
    for document in shapes:
        assert receiver.post(document).status_code in (200, 400), document


def test_a_body_past_the_ceiling_is_413_chunked_or_not(receiver):
    big = json.dumps({"pad": "x" * MAX_BODY_BYTES}).encode()
    assert receiver.post(big).status_code == 413
    body = EndlessBody()
    assert post_chunked(receiver.client, "/webhooks/heroku", body).status_code == 413
    assert body.read_bytes <= MAX_BODY_BYTES + 64 * 1024


_WEBHOOK_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.text(max_size=6),
              st.sampled_from(["crashed", "up", "succeeded", "failed", "web", "web.1", "myapp"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2),
        st.dictionaries(st.sampled_from(["name", "app", "state", "type", "quantity", "version",
                                         "status", "description", "email", "updated_at"]), inner, max_size=4),
    ),
    max_leaves=12,
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    resource=st.sampled_from(["dyno", "release", "formation", "build", 7]),
    data=st.dictionaries(
        st.sampled_from(["state", "name", "type", "quantity", "version", "status", "description", "updated_at"]),
        _WEBHOOK_VALUES,
        max_size=6,
    ),
    extra=st.dictionaries(st.sampled_from(["action", "actor", "previous_data", "updated_at"]), _WEBHOOK_VALUES, max_size=3),
)  # fmt: skip
def test_no_signed_event_of_any_shape_gets_a_5xx_from_the_real_app(web, resource, data, extra):
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document = {
        **extra,
        "id": str(uuid.uuid4()),
        "created_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "resource": resource,
        "data": {**data, "app": {"name": "myapp"}},
    }
    body = json.dumps(document).encode()
    answer = web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": sign(SECRET, body)}
    )
    assert answer.status_code < 500, (document, answer.data)


@pytest.mark.parametrize("exit_status", ["\xb2", "9" * 5000, "-", "--5", " 7", [137], {"code": 1}])
def test_a_hostile_exit_status_is_no_5xx(web, exit_status):
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document = dyno("crashed")
    document["created_at"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    document["data"]["exit_status"] = exit_status
    body = json.dumps(document).encode()
    answer = web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": sign(SECRET, body)}
    )
    assert answer.status_code == 200, answer.data


@pytest.mark.parametrize("process_type", ["w" * 65, "w" * 128, "w" * 31], ids=len)
def test_a_formation_of_a_type_the_bot_cannot_scale_is_acknowledged_not_stored(
    config, db, process_type
):
    """Heroku's formation type may be 128 characters of [-\\w]; the autoscaler acts only on
    the Procfile names a command can name (30 characters at most), and the store keeps 64.
    Through the real web app: answered 200, nothing stored (on PostgreSQL a 65-character
    type had failed the insert, so Heroku got a 500 and retried it for a day)."""
    web = create_app(config)
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    app = {"id": str(uuid.uuid4()), "name": "myapp"}
    at = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    client = web.test_client()
    for kind in (process_type, "web"):
        document = notification("formation", {"app": app, "type": kind, "quantity": 3})
        document["created_at"] = at
        body = json.dumps(document).encode()
        answer = client.post(
            "/webhooks/heroku",
            data=body,
            headers={
                "Heroku-Webhook-Hmac-SHA256": sign(SECRET, body),
                "Heroku-Webhook-Id": str(uuid.uuid4()),
                "Content-Type": "application/json",
            },
        )
        assert answer.status_code == 200, answer.data
    stored = Observations(db).since(None, "myapp")
    assert [(o.subject, o.value) for o in stored] == [("web", 3)]


def _signed_to(web: Flask, document: dict[str, Any]) -> Any:
    """`document`, fresh and signed as Heroku would, to the real app's webhook endpoint."""
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document["created_at"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    body = json.dumps(document).encode()
    return web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": sign(SECRET, body)}
    )


@pytest.mark.parametrize(
    ("resource", "data"),
    [
        ("release", {"version": 10**30, "status": "succeeded", "description": "Deploy"}),
        ("release", {"version": 10**30, "status": "failed"}),
        ("release", {"version": True, "status": "succeeded", "description": "Deploy"}),
        ("release", {"version": -4, "status": "succeeded", "description": "Deploy"}),
        ("formation", {"type": "web", "quantity": 10**30}),
        ("formation", {"type": "web", "quantity": True}),
        ("formation", {"type": "web", "quantity": -2}),
    ],
)
def test_a_count_no_heroku_release_or_formation_has_is_acknowledged_and_ignored(
    web, resource, data
):
    # 10**30 had overflowed the database's integer: a 500, which Heroku retries for three
    # days; `true` had been taken for 1 and posted as "released `vTrue`".
    answer = _signed_to(web, notification(resource, {**data, "app": {"name": "myapp"}}))
    assert answer.status_code == 200, answer.data
    db = web.extensions["deploybot"].db
    assert Observations(db).since(None, "myapp") == []
    assert Alerts(db).incidents("myapp") == []


def test_an_actor_or_dyno_name_that_is_no_string_is_left_out_of_the_alert(web):
    # They had been shown as Python reprs: "v7 failed by {'x': 1}", "['x'] crashed".
    failed = notification("release", {"app": {"name": "myapp"}, "version": 7, "status": "failed"})
    failed["actor"] = {"email": {"x": 1}}
    crashed = dyno("crashed")
    crashed["data"]["name"] = ["x"]
    for document in (failed, crashed):
        assert _signed_to(web, document).status_code == 200
    details = sorted(i.detail for i in Alerts(web.extensions["deploybot"].db).incidents("myapp"))
    assert details == ["crashed", "v7 failed"]


def _one_off(command: str) -> dict[str, Any]:
    document = dyno("crashed", name="run.4821")
    document["data"].update(command=command, type="run", exit_status=1)
    return document


def _released(description: str, email: str = "deployer@example.com") -> dict[str, Any]:
    document = notification(
        "release",
        {"app": {"name": "myapp"}, "version": 7, "status": "succeeded", "description": description},
    )
    document["actor"]["email"] = email
    return document


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        (lambda: _released("Deploy\x00 abc1234"), "v7 Deploy abc1234 by deployer@example.com"),
        (lambda: _released("Deploy \ud800x"), "v7 Deploy \ufffdx by deployer@example.com"),
        (lambda: _released("Deploy", "dev\x00@example.com"), "v7 Deploy by dev@example.com"),
        (lambda: dyno("crashed", name="web.1\x00"), "web.1 crashed"),
        (lambda: _one_off("rake\x00 cleanup \udfff"),
         "run.4821 “rake cleanup \ufffd” exited with status 1."),
    ],
    ids=["release NUL", "release surrogate", "actor NUL", "dyno name NUL", "one-off command"],
)  # fmt: skip
def test_a_signed_event_whose_text_holds_a_nul_or_a_lone_surrogate_is_stored(web, document, detail):
    # Heroku's text fields are whatever people typed (a release's description, a command):
    # a NUL had been a DataError from PostgreSQL, a lone surrogate an encoding error from
    # both databases' drivers, and the 500 had Heroku redeliver the event for 72 hours.
    answer = _signed_to(web, document())
    assert answer.status_code == 200, answer.data
    [incident] = Alerts(web.extensions["deploybot"].db).incidents("myapp")
    assert incident.detail == detail


def _delivered(web: Flask, document: dict[str, Any], at: datetime) -> Any:
    """`document`, created at `at` and signed as Heroku would, to the real app."""
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document["created_at"] = f"{at:%Y-%m-%dT%H:%M:%SZ}"
    body = json.dumps(document).encode()
    return web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": sign(SECRET, body)}
    )


def test_a_late_delivery_of_an_older_release_does_not_become_the_last_one_shown(web):
    """Heroku retries a failed delivery later: v7's notice, retried after v8's came, had
    made the channel's message read "Last: `v7` …" while v8 ran."""
    now = datetime.now(UTC).replace(microsecond=0)
    v8 = _released("Deploy 8888888")
    v8["data"]["version"] = 8
    v7 = _released("Deploy 7777777")
    assert _delivered(web, v8, now - timedelta(minutes=1)).status_code == 200
    assert _delivered(web, v7, now - timedelta(minutes=3)).status_code == 200
    [incident] = Alerts(web.extensions["deploybot"].db).incidents("myapp")
    assert incident.count == 2
    assert incident.detail == "v8 Deploy 8888888 by deployer@example.com"
    assert aware(incident.first_at) == now - timedelta(minutes=3)  # "2 times since" the first


def test_one_release_told_succeeded_twice_is_one_release(web):
    """Heroku tells a release `succeeded` in more than one event (its `create`, an `update`
    after), and redelivers an event under a fresh `Heroku-Webhook-Id`: each had been counted
    as one more release, "released 2 times since" for the one v7."""
    now = datetime.now(UTC).replace(microsecond=0)
    created = _released("Deploy 7777777")
    created["action"] = "create"
    assert _delivered(web, created, now - timedelta(minutes=2)).status_code == 200
    assert _delivered(web, created, now - timedelta(minutes=2)).status_code == 200  # resent
    assert [i.count for i in Alerts(web.extensions["deploybot"].db).incidents("myapp")] == [1]
    updated = _released("Deploy 7777777")  # another event, about the same release
    assert _delivered(web, updated, now - timedelta(minutes=1)).status_code == 200
    [incident] = Alerts(web.extensions["deploybot"].db).incidents("myapp")
    assert (incident.count, incident.detail) == (1, "v7 Deploy 7777777 by deployer@example.com")
    # The next release is counted.
    v8 = _released("Deploy 8888888")
    v8["data"]["version"] = 8
    assert _delivered(web, v8, now).status_code == 200
    [incident] = Alerts(web.extensions["deploybot"].db).incidents("myapp")
    assert (incident.count, incident.detail) == (2, "v8 Deploy 8888888 by deployer@example.com")


def test_a_refused_delivery_is_logged_with_its_app_and_why(receiver, caplog):
    """Deliveries for an app the bot holds no subscription for (renamed on Heroku, watched by
    another bot) had been logged as "bad signature", like a forgery, with no app named: the
    operator looking for why an app's alerts stopped could not tell the two apart."""
    other = dyno("crashed", app="renamed-app")
    assert receiver.post(other).status_code == 401
    assert receiver.post(dyno("crashed"), secret="another-secret").status_code == 401
    refused = [
        (r.getMessage(), getattr(r, "app", None), getattr(r, "reason", None))
        for r in caplog.records
        if r.getMessage().startswith("heroku webhook refused")
    ]
    assert refused == [
        ("heroku webhook refused", "renamed-app", "no subscription for this app"),
        ("heroku webhook refused", "myapp", "bad signature"),
    ]


@pytest.mark.parametrize("resource", ["dyno", "release"])
def test_a_destroy_is_no_crash_and_no_release(web, resource):
    """`destroy` says the resource is gone, not that it just crashed or was released: a
    crashed dyno removed by a scale-down had been counted as one more crash, with a Restart
    button, and a release's destroy posted "released"."""
    document = dyno("crashed") if resource == "dyno" else _released("Deploy abc1234")
    document["action"] = "destroy"
    assert _signed_to(web, document).status_code == 200
    assert Alerts(web.extensions["deploybot"].db).incidents("myapp") == []


def test_a_destroyed_formation_type_runs_no_dynos(web):
    """A process type taken out of the Procfile: Heroku destroys its formation, whose last
    quantity the bot had kept believing."""
    document = notification(
        "formation", {"app": {"name": "myapp"}, "type": "worker", "quantity": 3}
    )
    document["action"] = "destroy"
    assert _signed_to(web, document).status_code == 200
    stored = Observations(web.extensions["deploybot"].db).since(None, "myapp")
    assert [(o.subject, o.value) for o in stored] == [("worker", 0)]


@pytest.mark.parametrize(
    "outside",
    [
        {"created_at": None},
        {"created_at": 1764342123},
        {"created_at": ["2026-11-28T15:02:03Z"]},
        {"created_at": "2026-11-28T15:02:03"},  # no zone
        {"created_at": "9999-99-99T99:99:99Z"},
        {"action": None},
        {"actor": ["x"]},
        {"previous_data": "x"},
        {"data": {"app": {"name": "myapp", "id": [1]}, "state": None, "name": None}},
    ],
    ids=repr,
)
def test_a_signed_event_with_a_field_of_the_wrong_type_is_no_5xx(web, outside):
    # The hypothesis run above varies `data`'s fields; these are the envelope's own.
    web.extensions["deploybot"].webhook_secrets.save(
        "myapp", SECRET, "https://bot.example.com/webhooks/heroku", "U1", datetime.now(UTC)
    )
    document = {
        "id": str(uuid.uuid4()),
        "created_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "resource": "dyno",
        "action": "update",
        "data": {"app": {"name": "myapp"}, "state": "crashed", "name": "web.1", "type": "web"},
        **outside,
    }
    body = json.dumps(document).encode()
    answer = web.test_client().post(
        "/webhooks/heroku", data=body, headers={"Heroku-Webhook-Hmac-SHA256": sign(SECRET, body)}
    )
    assert answer.status_code in (200, 400), (document, answer.data)
