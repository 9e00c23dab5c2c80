"""Hostile requests at `/slack/events`, through the real web app: anything unsigned, forged
or malformed gets a 4xx and one short log line, before bolt parses a byte of it; nothing
at all gets a 5xx; no body past the ceiling is read."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import inspect
import json
import logging
import re
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from slack_bolt.request import payload_utils

from bot.sandbox.slack_requests import button_click, sign, slash_command
from bot.store.audit import AuditLog
from bot.web import edge
from handlers.alerts import ACK_ACTION, RESTART_ACTION, SCALE_ACTION, SILENCE_ACTION
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from policies.commands import VERBS, CommandError, parse
from tests.conftest import ADMIN, SIGNING_SECRET
from tests.webclient import EndlessBody, patches, post_chunked, settle


def refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def form(payload: object) -> str:
    return urlencode({"payload": json.dumps(payload)})


# ---------------------------------------------------------------------------------------------
# Unauthenticated: 401 and one line, whatever the body.

UNSIGNED_BODIES = {
    "bad JSON": "{not json",
    "bad payload JSON": "payload=%7Bnot-json",
    "JSON array": "[1, 2, 3]",
    "deep JSON": "[" * 50_000,
    "a real command": "command=%2Fdeploy&text=kill+myapp&user_id=UADMIN01",
}


@pytest.mark.parametrize("body", UNSIGNED_BODIES.values(), ids=UNSIGNED_BODIES.keys())
def test_unsigned_junk_gets_401_and_one_log_line(driver, heroku, caplog, body):
    caplog.set_level(logging.INFO)
    headers = {"Content-Type": "application/json" if body[:1] in "{[" else "x-www-form-urlencoded"}
    response = driver.post(body, headers=headers)
    assert response.status_code == 401
    [line] = refusals(caplog)
    assert line.getMessage() == "slack request refused" and line.reason == "unsigned"
    assert not line.exc_info
    settle()
    assert patches(heroku) == []


TIMESTAMPS = {  # `{now}` is filled in when the test runs
    "superscript two": "\xb2",
    "5,000 digits": "1" * 5000,
    "negative": "-{now}",
    "float": "{now}.5",
    "stale": "{stale}",
    "future": "{future}",
    "spaces": " {now} ",
}


@pytest.mark.parametrize("timestamp", TIMESTAMPS.values(), ids=TIMESTAMPS.keys())
def test_a_malformed_or_stale_timestamp_gets_401(driver, heroku, caplog, timestamp):
    body = slash_command("scale web=2 myapp", driver.slack.new_response_url(), user_id=ADMIN)
    now = int(time.time())
    timestamp = timestamp.format(now=now, stale=now - 400, future=now + 400)
    # Signed properly over that very timestamp: only the timestamp is wrong.
    headers = sign(SIGNING_SECRET, body)
    headers["X-Slack-Signature"] = "v0=" + _digest(timestamp.encode(), body.encode())
    headers["X-Slack-Request-Timestamp"] = timestamp
    response = driver.post(body, headers=headers)
    assert response.status_code == 401
    [line] = refusals(caplog)
    assert line.reason in ("malformed timestamp", "stale timestamp") and not line.exc_info
    settle()
    assert patches(heroku) == []


@pytest.mark.parametrize(
    "signature",
    ["v0=" + "0" * 64, "v0=\xb2" + "0" * 63, "sha256=abc", "v0=", "v1=" + "a" * 64],
    ids=["zeros", "non-ascii", "other scheme", "empty digest", "other version"],
)
def test_a_forged_signature_gets_401(driver, heroku, caplog, signature):
    body = slash_command("kill myapp", driver.slack.new_response_url(), user_id=ADMIN)
    headers = {**sign(SIGNING_SECRET, body), "X-Slack-Signature": signature}
    assert driver.post(body, headers=headers).status_code == 401
    [line] = refusals(caplog)
    assert line.reason == "bad signature"
    settle()
    assert patches(heroku) == []


def test_a_signature_over_other_bytes_gets_401(driver, heroku):
    body = slash_command("kill myapp", driver.slack.new_response_url(), user_id=ADMIN)
    headers = sign(SIGNING_SECRET, body.replace("kill", "help"))
    assert driver.post(body, headers=headers).status_code == 401
    settle()
    assert patches(heroku) == []


# ---------------------------------------------------------------------------------------------
# Signed, but not a request we can read: 400 (or bolt's polite 200/404), never a 5xx.

SIGNED_MALFORMED = {
    "bad JSON": "{not json",
    "bad payload JSON": "payload=%7Bnot-json",
    "payload array": urlencode({"payload": "[1]"}),
    "payload string": urlencode({"payload": '"block_actions"'}),
    "deep payload": urlencode({"payload": "[" * 50_000}),
    "not UTF-8": "payload=\udcff",
    "actions a string": form({"type": "block_actions", "actions": "x", "user": {"id": ADMIN}}),
    "actions of strings": form({"type": "block_actions", "actions": ["x"], "user": {"id": ADMIN}}),
    "no actions": form({"type": "block_actions", "actions": [], "user": {"id": ADMIN}}),
    "user a string": form(
        {"type": "block_actions", "actions": [{"action_id": CONFIRM_ACTION}], "user": ADMIN}
    ),
    "no user": form({"type": "block_actions", "actions": [{"action_id": CONFIRM_ACTION}]}),
    "value a number": form(
        {
            "type": "block_actions",
            "actions": [{"action_id": CONFIRM_ACTION, "value": 7}],
            "user": {"id": ADMIN},
        }
    ),
    "team.id a list": form(
        {
            "type": "block_actions",
            "team": {"id": []},
            "actions": [{"action_id": CANCEL_ACTION, "value": "1"}],
            "user": {"id": ADMIN},
        }
    ),
    # The click's listeners read `team.id` and `channel.id` (an event's are plain IDs): a
    # string there had been an AttributeError in the click's job, no answer and a traceback.
    "a click's team a string": form(
        {
            "type": "block_actions",
            "team": "T1",
            "actions": [{"action_id": CONFIRM_ACTION, "value": "1"}],
            "user": {"id": ADMIN},
        }
    ),
    "a click's channel a string": form(
        {
            "type": "block_actions",
            "channel": "C1",
            "actions": [{"action_id": ACK_ACTION, "value": "crash:myapp:web|1"}],
            "user": {"id": ADMIN},
        }
    ),
    "type a number": form({"type": 5}),
    "event a string": json.dumps({"type": "event_callback", "event": "app_home_opened"}),
    "event without type": json.dumps({"type": "event_callback", "event": {"user": ADMIN}}),
    "view a string": form({"type": "view_submission", "view": "x"}),
    # What bolt reads once it knows the kind: each was a KeyError in its dispatch, a 500.
    "attachment click without actions": form({"type": "interactive_message", "callback_id": "x"}),
    "workflow step edit without its step": form({"type": "workflow_step_edit", "callback_id": "x"}),
    "view without type": form(
        {"type": "view_submission", "user": {"id": ADMIN}, "view": {"id": "V1", "callback_id": "x"}}
    ),
    "workflow step save without its step": json.dumps(
        {"type": "view_submission", "view": {"type": "workflow_step", "callback_id": "x"}}
    ),
    "command without user": "command=%2Fdeploy&text=status+myapp",
    # Slack's response_urls are https URLs: anything else had made the job's answer raise in
    # urllib3, no answer and a traceback in the log.
    **{
        f"{kind} whose response_url is {url!r}": make(url)
        for url in ("ftp://x/y", "javascript:alert(1)", "https://", "http://[::1", "not a url")
        for kind, make in (
            ("command", lambda url: slash_command("status myapp", url, user_id=ADMIN)),
            ("click", lambda url: button_click(CONFIRM_ACTION, "1", url, user_id=ADMIN)),
        )
    },
    "url_verification without challenge": json.dumps({"type": "url_verification"}),
}


@pytest.mark.parametrize("body", SIGNED_MALFORMED.values(), ids=SIGNED_MALFORMED.keys())
def test_signed_but_malformed_gets_400_and_one_log_line(driver, heroku, caplog, body):
    raw = body.encode("utf-8", "surrogateescape")
    headers = _sign_bytes(raw)
    response = driver.client.post("/slack/events", data=raw, headers=headers)
    assert response.status_code == 400, response.data
    [line] = refusals(caplog)
    assert line.getMessage() == "slack request refused" and not line.exc_info
    settle()
    assert patches(heroku) == []


# Every payload type bolt tells apart, read from its own source so that a kind a new bolt
# learns is tried too; and the fields that make a payload that kind to bolt, with nothing
# else it goes on to read.
BOLT_KINDS = sorted(
    set(re.findall(r'_is_expected_type\(body, "(\w+)"\)', inspect.getsource(payload_utils)))
)
RECOGNISED = [
    {},
    {"callback_id": "x"},
    {"action_id": "x"},
    {"user": {"id": ADMIN}, "view": {"callback_id": "x"}},
    {"view": {"callback_id": "x", "type": "workflow_step"}},
    {"event": {"type": "workflow_step_execute"}},
    {"event": {"type": "function_executed", "function_execution_id": "Fx1"}},
]


@pytest.mark.parametrize("kind", BOLT_KINDS)
def test_every_kind_bolt_dispatches_on_is_refused_or_answered_without_a_5xx(driver, caplog, kind):
    for extra in RECOGNISED:
        payload = {"type": kind, **extra}
        for body, headers in (
            (form(payload), {}),
            (json.dumps(payload), {"Content-Type": "application/json"}),
        ):
            response = driver.post(body, headers={**sign(SIGNING_SECRET, body), **headers})
            assert response.status_code < 500, payload
    assert not [r for r in caplog.records if r.exc_info]


def _digest(timestamp: bytes, raw: bytes) -> str:
    base = b"v0:" + timestamp + b":" + raw
    return hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()


def _sign_bytes(raw: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={_digest(timestamp.encode(), raw)}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


_KEYS = st.sampled_from(
    [
        "type", "team", "user", "channel", "enterprise", "authorizations", "event", "actions",
        "view", "container", "message", "previous_message", "item", "response_urls",
        "response_url", "trigger_id", "callback_id", "command", "text", "user_id", "team_id",
        "channel_id", "enterprise_id", "thread_ts", "challenge", "id", "action_id", "block_id",
        "value", "tab", "is_ext_shared_channel", "user_team", "is_enterprise_install", "state",
        "function_data", "function_execution_id", "bot_access_token", "inputs", "bot_id",
        "assistant_thread", "subtype", "app_installed_team_id", "workflow_step",
    ]
)  # fmt: skip
_WORDS = st.sampled_from(
    [
        "block_actions", "event_callback", "url_verification", "view_submission", "shortcut",
        "message_action", "interactive_message", "app_home_opened", "home", "message",
        "function_executed", "block_suggestion", "dialog_submission", "app_mention",
        "workflow_step_edit", "workflow_step", "view_closed", "dialog_cancellation",
        CONFIRM_ACTION, CANCEL_ACTION, RESTART_ACTION, SCALE_ACTION, SILENCE_ACTION,
        ACK_ACTION, "/deploy", ADMIN, "T0CONSOLE", "E123", "http://127.0.0.1:9/r",
    ]
)  # fmt: skip
_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), _WORDS
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=25,
)
_PAYLOADS = st.builds(
    lambda kind, rest: {"type": kind, **rest}, _WORDS, st.dictionaries(_KEYS, _VALUES, max_size=8)
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=_PAYLOADS, as_json=st.booleans())
# A view submission with two `response_url_enabled` inputs: bolt's build_context logged
# through a context that had no logger yet (KeyError, a 500) until slack_edge gave it one.
@example(payload={"type": "shortcut", "response_urls": [{}, {}]}, as_json=False)
@example(
    payload={
        "type": "view_submission",
        "response_urls": [
            {"block_id": b, "action_id": "c", "channel_id": "C1", "response_url": "https://x/y"}
            for b in ("first", "second")
        ],
    },
    as_json=False,
)
def test_no_signed_payload_of_any_shape_gets_a_5xx(driver, caplog, payload, as_json):
    body = json.dumps(payload) if as_json else form(payload)
    headers = sign(SIGNING_SECRET, body)
    if as_json:
        headers["Content-Type"] = "application/json"
    response = driver.post(body, headers=headers)
    assert response.status_code < 500, (payload, response.data)
    assert not [r for r in caplog.records if r.exc_info], payload


@pytest.mark.parametrize("action", [CONFIRM_ACTION, CANCEL_ACTION, RESTART_ACTION, ACK_ACTION])
def test_a_well_formed_click_on_nothing_is_answered_politely(driver, heroku, action):
    body = button_click(action, "no-such-value|1", driver.slack.new_response_url(), user_id=ADMIN)
    assert driver.post(body).status_code == 200
    settle()
    assert patches(heroku) == []


# ---------------------------------------------------------------------------------------------
# Size: refused before the body is read, with or without a Content-Length.

ROUTES = ["/slack/events", "/webhooks/heroku", "/drain/some-token", "/healthz", "/nowhere"]


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_past_the_ceiling_is_413_on_every_route(driver, path):
    body = b"x" * (edge.MAX_BODY_BYTES + 1)
    response = driver.client.post(path, data=body)
    # An unknown drain token (403), an unknown path (404) and a GET-only route (405) are
    # refused before the body is looked at.
    assert response.status_code in (413, 403, 404, 405)
    if path in ("/slack/events", "/webhooks/heroku"):
        assert response.status_code == 413


@pytest.mark.parametrize("path", ["/slack/events", "/webhooks/heroku"])
def test_a_chunked_body_without_length_is_cut_at_the_ceiling(driver, path):
    body = EndlessBody()
    response = post_chunked(driver.client, path, body, **sign(SIGNING_SECRET, ""))
    assert response.status_code == 413
    assert body.read_bytes <= edge.MAX_BODY_BYTES + 64 * 1024


@pytest.mark.parametrize(
    "text",
    [
        "scale web=" + "9" * 5000 + " myapp",
        "metrics myapp " + "9" * 5000 + "m",
        "history myapp " + "9" * 5000,
        "history \xb2",
        "autoscale myapp on min=\xb2",
        "pin myapp web=2 for " + "9" * 5000 + "h",
    ],
    ids=["scale", "metrics", "history", "history superscript", "autoscale", "pin"],
)
def test_a_signed_command_with_a_hostile_number_gets_a_polite_answer(driver, heroku, text):
    ack, _ = driver.command(text, ADMIN)
    assert ack.status_code == 200  # was a 500: int() raised on 5,000 digits or on '²'
    body = json.loads(ack.data)
    assert body["response_type"] == "ephemeral" and "Usage:" in body["text"]
    settle()
    assert patches(heroku) == []


_COMMAND_WORDS = st.one_of(
    st.sampled_from(sorted(VERBS)),
    st.sampled_from(
        ["web=2", "web+1", "myapp", "-a", "--app", "--force", "for", "2h", "min=1", "max=5",
         "target=queue:300ms", "on", "off", "web=\xb2", "\xb2", "\u0663", "5m", "1d",
         "web=2:standard-2x", "web.1", "'", '"', "9" * 120, "web=-1", "x=1:", "=", "--"]
    ),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_COMMAND_WORDS, max_size=6))
def test_command_text_raises_nothing_but_a_command_error(words):
    # Anything else would escape the ack listener as a 500.
    with contextlib.suppress(CommandError):
        parse(" ".join(words))


# ---------------------------------------------------------------------------------------------
# Typed text the parser refuses in the ack, before anything is stored or called: control
# characters (no key types one; PostgreSQL stores no NUL) and text past Slack's own length.

CONTROL_TEXTS = {  # the text, and the character the answer names
    "NUL in a lock's reason": ("lock myapp fix\x00ing the checkout", "U+0000"),
    "NUL in a --force reason": ("scale web=2 myapp --force fix\x00ing", "U+0000"),
    "ESC in a lock's reason": ('lock myapp "a \x1b[2J b"', "U+001B"),
    "DEL in a config value": ("config set KEY=a\x7fb myapp", "U+007F"),
}


@pytest.mark.parametrize(("text", "char"), CONTROL_TEXTS.values(), ids=CONTROL_TEXTS.keys())
def test_a_command_holding_a_control_character_is_refused_in_the_ack(
    web, driver, caplog, text, char
):
    ack, url = driver.command(text, ADMIN)
    # Was "Working on…", then on PostgreSQL "Something went wrong" and a traceback (its
    # text fields hold no NUL); on SQLite the NUL was stored in the lock.
    assert json.loads(ack.data) == {
        "response_type": "ephemeral",
        "text": f"Your command holds a control character ({char}), which no command takes: "
        "type it again without it. Usage: `/deploy help`.",
    }
    settle()
    assert AuditLog(web.extensions["deploybot"].db).recent(None, 5) == []
    assert driver.slack.responses_for(url) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_command_past_slack_s_length_is_refused_at_once(web, driver):
    text = 'lock myapp "' + "x" * 900_000 + '"'  # inside the 1 MiB body ceiling
    started = time.monotonic()
    ack, _ = driver.command(text, ADMIN)
    # Was "Working on…" after 18 s (shlex reads a long quoted word a character at a time),
    # past the 3 s in which Slack drops an unanswered command, and again in the job.
    assert time.monotonic() - started < 2
    assert json.loads(ack.data)["text"] == (
        "Your command is 900,013 characters long, and a command has at most 40,000: "
        "type a shorter one. Usage: `/deploy help`."
    )
    settle()
    assert AuditLog(web.extensions["deploybot"].db).recent(None, 5) == []


def test_a_long_command_within_the_limit_is_still_read(driver):
    ack, _ = driver.command("config set NOTE=" + "x" * 39_000 + " myapp", ADMIN)
    assert json.loads(ack.data)["text"].startswith("Working on `config set NOTE=")
