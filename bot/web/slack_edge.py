"""The edge of `/slack/events`: a request is authenticated on its raw bytes, and its shape
checked, before slack_bolt parses anything.

Why not leave it to bolt: bolt builds its request object by parsing the body (`json.loads`,
`parse_qsl`) before it checks the signature, so unsigned junk raised inside bolt and came
out as a 500 with a traceback; and its context builder and matchers index into whatever
the JSON held (`body["actions"][0]`, `event.get(...)`), so a signed payload of the wrong
shape did the same. Here, in order:

1. the signature: Slack's v0 scheme, `v0=HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)`
   in `X-Slack-Signature`, over the exact bytes received; `X-Slack-Request-Timestamp` must
   be plain ASCII digits (a few, not 5,000) within `MAX_SKEW` seconds of now;
2. the body: UTF-8; a JSON object (Events API), or a form whose `payload` is a JSON object
   (interactivity), or a plain form (slash commands, `ssl_check`);
3. the shape: every field bolt or our listeners read, where present, has the type Slack
   documents (a `response_url` an http(s) URL with a host), and each kind of payload bolt
   dispatches on has the fields bolt reads from it without looking and those its listener
   needs.

`check` returns the parsed body of a request bolt may have, else a `Refusal` (401
unauthenticated, 400 malformed) whose reason is a few words for one log line: never the
body or a header.

`bolt_request` builds the request bolt dispatches from that parsed body, so the body is
parsed once per request, here, not again by bolt (about 20 µs a slash command). Bolt
reads any form body that contains the word "payload" anywhere as interactivity, so
`/deploy status payload-api` reached it as `{}` and was answered 404; here a form is
interactivity only when it has a `payload` field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from policies.numbers import whole_number

MAX_SKEW = 300  # Slack's own advice: refuse requests more than five minutes old
_MAX_TIMESTAMP_DIGITS = 12  # epoch seconds have 10 digits until the year 2286
_MAX_DEPTH = 4  # event -> message -> ... nesting bolt follows

# Fields bolt's context builder, its matchers and our listeners read, and the types Slack
# sends them as. `None` is allowed wherever Slack documents a null (team on org installs).
_NONE = type(None)
_FIELDS: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "team": (dict, str, _NONE),
    "user": (dict, str, _NONE),
    "channel": (dict, str, _NONE),
    "enterprise": (dict, str, _NONE),
    "authorizations": (list, _NONE),
    "event": (dict,),
    "actions": (list,),
    "view": (dict,),
    "container": (dict,),
    "message": (dict,),
    "previous_message": (dict,),
    "item": (dict,),
    "assistant_thread": (dict,),
    "function_data": (dict,),
    "workflow_step": (dict,),
    "state": (dict,),
    "response_urls": (list,),
    "response_url": (str,),
    "trigger_id": (str,),
    "callback_id": (str,),
    "command": (str,),
    "text": (str,),
    "user_id": (str,),
    "team_id": (str, _NONE),
    "channel_id": (str, _NONE),
    "enterprise_id": (str, _NONE),
    "thread_ts": (str, _NONE),
    "challenge": (str,),
}
# Nested objects bolt descends into looking for ids (and, in a view, its `type`): the same
# rules apply inside them.
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread", "view")
# Objects whose `id` bolt reads.
_WITH_ID = ("team", "user", "channel", "enterprise")

# Every kind of payload bolt dispatches on (by its `type`), and what must then be there, not
# empty: what bolt reads without looking once it knows the kind, and what our listeners
# read. bolt works out every listener argument (`to_action` takes `actions[0]`, `to_step`
# the `workflow_step`) for each listener it tries, whatever kind that listener is for, so
# a kind we have no listener for still reaches these reads. Slack always sends them.
_CARRIES: dict[str, tuple[str, ...]] = {
    "block_actions": ("actions", "user.id"),
    "interactive_message": ("actions",),
    "workflow_step_edit": ("workflow_step",),
    "view_submission": ("view.type",),  # bolt reads it to tell a workflow step's save
    "workflow_step_save": ("view.type", "workflow_step"),  # a view_submission, to bolt
    "view_closed": ("view.type",),
    "event_callback": ("event.type",),
    "url_verification": ("challenge",),
    # bolt reads nothing past what makes these kinds what they are:
    "dialog_submission": (),
    "dialog_cancellation": (),
    "dialog_suggestion": (),
    "block_suggestion": (),
    "shortcut": (),
    "message_action": (),
}


# Fields `_FIELDS` lets be a plain ID (an event's `team` and `channel` are) that a kind's
# listeners read as objects: a click's `team.id` and `channel.id`, as Slack sends them.
_OBJECTS: dict[str, tuple[str, ...]] = {"block_actions": ("team", "channel")}


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: not from Slack; 400: from Slack's key but not a request we can read
    reason: str  # a few words for the log line


def check(
    secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> Refusal | dict[str, Any]:
    """`body` parsed, if it is a signed request of a shape bolt can take, else why not."""
    refusal = _authenticate(secret, headers, body, now)
    if refusal is not None:
        return refusal
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "body is not UTF-8")
    parsed = _parse(text, headers.get("Content-Type"))
    if isinstance(parsed, Refusal):
        return parsed
    problem = _shape(parsed, 0) or _needs(parsed)
    return Refusal(400, problem) if problem else parsed


_BOLT_LOG = logging.getLogger("slack_bolt.App")


def bolt_request(
    text: str, headers: Mapping[str, Any], query: str = "", body: dict[str, Any] | None = None
) -> BoltRequest:
    """The request for bolt to dispatch: `body` as `check` parsed it, or, without it,
    `text` read the same way."""
    request = BoltRequest(body="", query=query, headers=dict(headers))  # bolt parses nothing
    if body is None:
        parsed = _parse(text, request.content_type)
        body = parsed if isinstance(parsed, dict) else {}
    request.raw_body, request.body = text, body
    # build_context logs through the context's logger when a view submission carries more
    # than one response_url, before bolt's dispatch has put one there (a KeyError, a 500).
    request.context = build_context(BoltContext({"logger": _BOLT_LOG}), body)
    return request


def _authenticate(
    secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> Refusal | None:
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    signature = headers.get("X-Slack-Signature") or ""
    if not timestamp or not signature:
        return Refusal(401, "unsigned")
    sent_at = whole_number(timestamp, _MAX_TIMESTAMP_DIGITS)
    if sent_at is None:
        return Refusal(401, "malformed timestamp")
    if abs(now - sent_at) > MAX_SKEW:
        return Refusal(401, "stale timestamp")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return Refusal(401, "bad signature")
    return None


def _parse(text: str, content_type: str | None) -> dict[str, Any] | Refusal:
    """The body as Slack sends it (JSON if it says so or starts with `{`; a form with a
    `payload` field holding JSON; else a plain form), refusing what bolt would choke on."""
    if not text:
        return Refusal(400, "empty body")
    try:
        if (content_type or "").split(";")[0] == "application/json" or text.startswith("{"):
            parsed: Any = json.loads(text)
        else:
            parsed = dict(parse_qsl(text, keep_blank_values=True))
            if "payload" in parsed:
                parsed = json.loads(parsed["payload"])
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return Refusal(400, "body is not JSON or a form")
    if not isinstance(parsed, dict):
        return Refusal(400, "body is not a JSON object")
    return parsed


def _shape(document: dict[str, Any], depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return "nested too deep"
    for name, types in _FIELDS.items():
        if name in document and not isinstance(document[name], types):
            return f"{name} has the wrong type"
    for name in _WITH_ID:
        value = document.get(name)
        if isinstance(value, dict) and not isinstance(value.get("id", ""), str):
            return f"{name}.id has the wrong type"
    for name in ("authorizations", "response_urls", "actions"):
        items = document.get(name) or []
        if not all(isinstance(item, dict) for item in items):
            return f"{name} holds a non-object"
    response_url = document.get("response_url")
    if response_url and not _web_url(response_url):  # none at all: App Home's clicks
        return "response_url is not an http(s) URL"
    if "actions" in document and not document["actions"]:
        return "actions is empty"  # bolt reads actions[0]; Slack never sends none
    for authorization in document.get("authorizations") or []:
        problem = _shape(authorization, depth + 1)
        if problem:
            return problem
    for action in document.get("actions") or []:
        for name in ("action_id", "block_id", "value"):
            if not isinstance(action.get(name, ""), str):
                return f"actions.{name} has the wrong type"
    for name in _NESTED:
        nested = document.get(name)
        if isinstance(nested, dict):
            problem = _shape(nested, depth + 1)
            if problem:
                return problem
    return None


def _web_url(url: str) -> bool:
    """Whether `url` is an http(s) URL with a host, read as urllib3 reads it to post there:
    Slack's `response_url`s all are, and anything else had made the job's answer raise in
    urllib3 (no answer, and a traceback in the log)."""
    try:
        parsed = parse_url(url)
    except LocationParseError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _needs(document: dict[str, Any]) -> str | None:
    """What each kind of request must carry for bolt and our listeners (see `_CARRIES`),
    and as what (`_OBJECTS`)."""
    if "command" in document:  # a slash command's form
        missing = [f for f in ("user_id", "response_url") if not document.get(f)]
    else:
        kind = _kind(document)
        missing = [path for path in _CARRIES.get(kind, ()) if not _at(document, path)]
        actions = (document.get("actions") or []) if kind == "block_actions" else []
        if any(not action.get("action_id") for action in actions):
            missing.append("actions.action_id")  # bolt matches our listeners on it
        for name in _OBJECTS.get(kind or "", ()):
            if isinstance(document.get(name), str):
                return f"{name} has the wrong type"
    return f"missing {', '.join(missing)}" if missing else None


def _kind(document: dict[str, Any]) -> str | None:
    """The payload's `type`, except that bolt tells a workflow step's save by its view."""
    kind = document.get("type")
    if kind == "view_submission" and _at(document, "view.type") == "workflow_step":
        return "workflow_step_save"
    return kind


def _at(document: dict[str, Any], path: str) -> Any:
    """The value at a dotted `path`, or None; `_shape` has checked the types on the way."""
    value: Any = document
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value
