"""A fake of the Slack Web API and of `response_url` endpoints, served over real HTTP.

Tests and the sandbox console point slack_sdk's `WebClient(base_url=fake.api_url)` and the
`response_url` of forged slash commands and button clicks (`fake.new_response_url()`) at it,
so the bot's real HTTP clients run unchanged. The fake checks each Web API call against
Slack's OpenAPI spec (`specs/slack-web-api-openapi-v2.json`) and against the rules the spec
leaves out (`no_text`, the five-uses limit of a `response_url`, Block Kit's limits in
`block_kit.py`); whatever the bot got wrong
lands in `violations`, and everything it sent is recorded for assertions. Faults (429 with
`Retry-After`, 5xx) and latency can be injected.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as HTTPResponse

from bot.sandbox.fakes import block_kit
from bot.sandbox.fakes.server import LocalServer, ServedFake

SPEC_PATH = Path(__file__).parent / "specs" / "slack-web-api-openapi-v2.json"

# Slack lets an app post to one response_url at most five times, within thirty minutes.
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60

# Form-encoded bodies carry these as JSON strings; JSON bodies carry them as values.
_JSON_ENCODED_ARGS = ("blocks", "attachments", "view", "metadata", "files")

_RESPONSE_TYPES = ("in_channel", "ephemeral")

# The Web API methods this fake implements; other methods in the spec are answered with
# an error so that a test exercising one fails loudly instead of passing on a fake `ok`.
_IMPLEMENTED = (
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.publish",
    "usergroups.users.list",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
)

# Methods newer than the 2021 spec: their required arguments as Slack's method pages give
# them (docs.slack.dev/reference/methods/files.getUploadURLExternal, …completeUploadExternal).
_NEWER_THAN_SPEC = {
    "files.getUploadURLExternal": frozenset({"filename", "length"}),
    "files.completeUploadExternal": frozenset({"files"}),
}

# The scopes a method needs (only those the fake checks): without them Slack answers
# `missing_scope` with `needed` and `provided`.
_SCOPES_NEEDED = {
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
DEFAULT_SCOPES = frozenset(
    {"commands", "chat:write", "chat:write.public", "usergroups:read", "files:write"}
)

# The first ts the fake hands out; later ones grow by 100 µs so they sort like Slack's.
_FIRST_TS_MICROS = 1_700_000_000_000_100
_TS_STEP_MICROS = 100


@dataclass(frozen=True)
class Call:
    """One Web API request: its method, its arguments (JSON-encoded form fields decoded),
    its headers, and what the fake answered."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """One file shared with files.completeUploadExternal: its bytes and where it went."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass(frozen=True)
class Response:
    """One accepted POST to a `response_url`."""

    url_id: str
    payload: dict[str, Any]


@dataclass
class _Fault:
    status: int
    retry_after: int | str | None
    remaining: int
    error: str | None = None  # the answer's `error`; None: the status's usual one


@dataclass
class _ResponseUrl:
    created: float
    uses: int = 0


@functools.cache
def _required_params() -> dict[str, frozenset[str]]:
    """Map each Web API method in the spec to its required parameter names.

    `token` is left out: slack_sdk sends it in the Authorization header, which the fake
    checks separately.
    """
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    required: dict[str, frozenset[str]] = {}
    for path, operations in spec["paths"].items():
        names: set[str] = set()
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param.get("required") and param["name"] != "token":
                    names.add(param["name"])
        required[path.lstrip("/")] = frozenset(names)
    return {**required, **_NEWER_THAN_SPEC}


def _json_response(body: dict[str, Any], status: int = 200) -> HTTPResponse:
    return HTTPResponse(
        json.dumps(body), status=status, content_type="application/json; charset=utf-8"
    )


def _text_response(body: str, status: int = 200) -> HTTPResponse:
    # Slack answers response_url posts with a bare word in text/html, not JSON.
    return HTTPResponse(body, status=status, content_type="text/html")


def _fault_error(status: int) -> str:
    if status == 429:
        return "ratelimited"
    if status == 503:
        return "service_unavailable"
    return "internal_error" if status >= 500 else "request_failed"


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class FakeSlack(ServedFake):
    """Slack's Web API at `api_url` and `response_url` sinks at `new_response_url()`.

    Start it with `start()` or use it as a context manager. All recording and waiting
    methods are safe to call from any thread while the server's threads handle requests.

    - `calls`: every Web API request the fake judged, errors included (see `Call.response`);
      requests answered by an injected fault are not there but in `faults_served`.
    - `responses`: the posts to response URLs that Slack would have shown.
    - `violations`: what the bot did that Slack refuses or that the fake cannot check.
    - `latency`: seconds to sleep before answering each request.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        team_id: str = "T0CONSOLE",
        bot_user_id: str = "U0BOT",
        *,
        bot_id: str = "B0BOT00001",
        app_id: str = "A0BOTAPP01",
        team_name: str = "Deploybot Test",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_name = team_name
        # Seconds since an arbitrary epoch; response URLs expire by it.
        self.clock = clock
        # A Condition rather than a plain lock so that wait_for_* can sleep until a
        # request thread records what they wait for.
        self._cond = threading.Condition(threading.RLock())
        self.reset()
        self._routes = Map(
            [
                Rule("/api/<method>", endpoint="api", methods=["GET", "POST"]),
                Rule("/response/<url_id>", endpoint="response_url", methods=["POST"]),
                Rule("/upload/<file_id>", endpoint="upload", methods=["POST"]),
            ]
        )
        self._server = LocalServer(self._wsgi_app)

    @property
    def api_url(self) -> str:
        # slack_sdk joins base_url and the method name with no separator of its own.
        return self.url + "/api/"

    def reset(self) -> None:
        """Forget every call, response, violation, fault, message and response URL, so one
        running server can serve many tests (stopping one takes Werkzeug up to 0.5 s)."""
        with self._cond:
            self.latency = 0.0
            self.calls: list[Call] = []
            self.responses: list[Response] = []
            self.violations: list[str] = []
            self.faults_served: list[tuple[str, int]] = []
            self._faults: dict[str, deque[_Fault]] = {}
            self._response_urls: dict[str, _ResponseUrl] = {}
            self._messages: dict[str, dict[str, dict[str, Any]]] = {}
            self._home_views: dict[str, dict[str, Any]] = {}
            self._usergroups: dict[str, list[str]] = {}
            # Channels whose messages Slack refuses, and its error: `leave_channel`.
            self._refusing: dict[str, str] = {}
            # The bot token's scopes: drop one to see how the bot copes without it.
            self.scopes: set[str] = set(DEFAULT_SCOPES)
            self._pending_files: dict[str, dict[str, Any]] = {}
            self.uploads: list[Upload] = []
            self._file_ids = itertools.count(1)
            self._ts = itertools.count(_FIRST_TS_MICROS, _TS_STEP_MICROS)
            self._view_ids = itertools.count(1)

    # -- response_url ----------------------------------------------------------------

    def new_response_url(self) -> str:
        """A fresh `response_url`, good for five posts within thirty minutes."""
        url_id = uuid.uuid4().hex
        with self._cond:
            self._response_urls[url_id] = _ResponseUrl(created=self.clock())
        return f"{self.url}/response/{url_id}"

    # -- fault injection -------------------------------------------------------------

    def fail_next(
        self,
        target: str,
        count: int = 1,
        status: int = 429,
        retry_after: int | str | None = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next `count` requests to `target` (a Web API method name, or
        `"response_url"` for any response URL) with HTTP `status`.

        A 429 carries `Retry-After: retry_after` as Slack's does (a string as it is: an
        HTTP date, say, which HTTP allows and Slack does not send). `error`: the answer's
        `error` (with status 200, an `ok: false` answer such as the `rate_limited` the spec
        lists for chat.postMessage); by default the status's own. Faults queue up in the
        order they were added.
        """
        with self._cond:
            self._faults.setdefault(target, deque()).append(
                _Fault(status, retry_after, count, error)
            )

    def _take_fault(self, target: str) -> _Fault | None:
        with self._cond:
            queue = self._faults.get(target)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            self.faults_served.append((target, fault.status))
            return fault

    # -- inspection ------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [call for call in self.calls if call.method == method]

    def responses_for(self, url: str) -> list[Response]:
        """The accepted posts to `url` (a full response URL or just its id), oldest first."""
        url_id = _url_id(url)
        with self._cond:
            return [response for response in self.responses if response.url_id == url_id]

    def leave_channel(self, channel: str, error: str | None = "not_in_channel") -> None:
        """Take the bot out of `channel`, as Slack does once the bot is removed from it, or
        it is archived (`is_archived`); None: the bot is back in.

        `not_in_channel` (the default) is a public channel: Slack still takes the bot's
        messages there while it holds `chat:write.public` (drop it from `scopes` to have
        chat.postMessage refused too), but refuses the files it shares into it.
        `channel_not_found` (a private channel) and `is_archived` refuse chat.postMessage,
        chat.update and files alike."""
        with self._cond:
            if error is None:
                self._refusing.pop(channel, None)
            else:
                self._refusing[channel] = error

    def set_usergroup(self, usergroup_id: str, users: list[str]) -> None:
        """Create or change a user group (an `S…` ID) and its members."""
        with self._cond:
            self._usergroups[usergroup_id] = list(users)

    def judge_answer(self, payload: dict[str, Any]) -> str | None:
        """Slack's refusal of a slash command's or a click's immediate HTTP answer, which is
        a message held to the same limits; None when Slack shows it. That answer goes to
        Slack, not to this server: the test driver hands it over."""
        return self._refused("immediate answer", payload)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages the bot posted to `channel` and not since edited away, oldest first."""
        with self._cond:
            return [dict(message) for message in self._messages.get(channel, {}).values()]

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for `user_id`, as views.publish answered it."""
        with self._cond:
            return self._home_views.get(user_id)

    def uploads_to(self, channel: str) -> list[Upload]:
        """Files shared into `channel`, oldest first."""
        with self._cond:
            return [upload for upload in self.uploads if upload.channel == channel]

    def wait_for_uploads(self, n: int = 1, timeout: float = 5.0) -> list[Upload]:
        """Block until `n` files have been shared; return the first `n`."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: len(self.uploads) >= n, timeout)
            uploads = list(self.uploads)
            calls = [(call.method, call.response.get("error")) for call in self.calls]
        if not arrived:
            raise AssertionError(f"expected {n} upload(s) within {timeout}s: every call {calls}")
        return uploads[:n]

    def wait_for_calls(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `n` calls to `method` have arrived; return the first `n`."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: len(self.calls_to(method)) >= n, timeout)
            calls = self.calls_to(method)
            every_method = [call.method for call in self.calls]
        if not arrived:
            raise AssertionError(
                f"expected {n} call(s) to {method} within {timeout}s, got {len(calls)}: "
                f"{[(call.args, call.response) for call in calls]}; every call: {every_method}"
            )
        return calls[:n]

    def wait_for_responses(
        self, url: str, n: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Block until `n` posts to `url` have been accepted; return the first `n` payloads."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: len(self.responses_for(url)) >= n, timeout)
            payloads = [response.payload for response in self.responses_for(url)]
            violations = list(self.violations)
        if not arrived:
            raise AssertionError(
                f"expected {n} response(s) to {url} within {timeout}s, got {len(payloads)}: "
                f"{payloads}; violations: {violations}"
            )
        return payloads[:n]

    # -- HTTP ------------------------------------------------------------------------

    def _wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            endpoint, values = self._routes.bind_to_environ(environ).match()
        except HTTPException as error:  # 404 for unknown paths, 405 for wrong verbs
            response: Any = error
        else:
            if self.latency > 0:
                time.sleep(self.latency)
            if endpoint == "api":
                response = self._api(request, values["method"])
            elif endpoint == "upload":
                response = self._receive_upload(request, values["file_id"])
            else:
                response = self._response_url(request, values["url_id"])
        return response(environ, start_response)

    # -- Web API ---------------------------------------------------------------------

    def _api(self, request: Request, method: str) -> HTTPResponse:
        headers = dict(request.headers.items())
        fault = self._take_fault(method)
        if fault is not None:
            response = _json_response(
                {"ok": False, "error": fault.error or _fault_error(fault.status)}, fault.status
            )
            _add_retry_after(response, fault)
            return response
        try:
            args, form_token = self._parse_args(request)
        except _ApiError as error:
            return self._answer(method, {}, headers, {"ok": False, "error": error.error})
        try:
            body = self._dispatch(method, args, headers, form_token)
        except _ApiError as error:
            body = {"ok": False, "error": error.error, **error.extra}
        # The token is a credential, not an argument of the method.
        args.pop("token", None)
        return self._answer(method, args, headers, body)

    def _answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str], body: dict[str, Any]
    ) -> HTTPResponse:
        with self._cond:
            self.calls.append(Call(method, args, headers, body))
            self._cond.notify_all()
        # Real Slack answers 200 even for errors, unknown_method included.
        return _json_response(body)

    def _parse_args(self, request: Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.args.items())
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data(as_text=True) or "{}")
            except ValueError as error:
                raise _ApiError("invalid_json") from error
            if not isinstance(body, dict):
                raise _ApiError("json_not_object")
            # Slack ignores a token inside a JSON body: it must come in the header.
            args.update(body)
            return args, None
        form = dict(request.form.items())
        args.update(form)
        for name in _JSON_ENCODED_ARGS:
            value = args.get(name)
            if isinstance(value, str) and value.strip():
                try:
                    args[name] = json.loads(value)
                except ValueError as error:
                    raise _ApiError("invalid_arguments") from error
        return args, form.get("token")

    def _dispatch(
        self, method: str, args: dict[str, Any], headers: dict[str, str], form_token: str | None
    ) -> dict[str, Any]:
        required = _required_params().get(method)
        if required is None:
            raise _ApiError("unknown_method")
        token = _bearer_token(headers.get("Authorization")) or form_token
        if not token:
            raise _ApiError("not_authed")
        if token != self.bot_token:
            raise _ApiError("invalid_auth")
        missing = sorted(name for name in required if args.get(name) in (None, ""))
        if missing:
            self._violation(f"{method}: missing required argument(s) {', '.join(missing)}")
            raise _ApiError("invalid_arguments")
        if method not in _IMPLEMENTED:
            self._violation(f"{method}: in Slack's spec but not implemented by FakeSlack")
            raise _ApiError("not_implemented_in_fake")
        needed = _SCOPES_NEEDED.get(method)
        if needed and needed not in self.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        if method.startswith("chat."):
            self._check_message(method, args)
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.publish": self._publish_view,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }[method]
        return handler(args)

    def _check_message(self, method: str, args: dict[str, Any]) -> None:
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise _ApiError("no_text")
        blocks = args.get("blocks")
        if blocks is not None and not (
            isinstance(blocks, list)
            and all(isinstance(block, dict) and "type" in block for block in blocks)
        ):
            self._violation(f"{method}: blocks is not a list of blocks: {blocks!r}")
            raise _ApiError("invalid_blocks")
        refused = self._refused(method, args)
        if refused:
            raise _ApiError(refused)
        with self._cond:
            left = self._refusing.get(str(args.get("channel")))
            public_ok = "chat:write.public" in self.scopes
        if left == "not_in_channel" and (method == "chat.update" or public_ok):
            # A public channel the bot is not in: chat:write.public lets it post there
            # (without the scope, `not_in_channel`), and it may edit its own messages
            # (chat.update has no `not_in_channel` in Slack's spec). Sharing a file there
            # still needs membership: `_complete_upload`.
            return
        if left is not None and method in ("chat.postMessage", "chat.update"):
            raise _ApiError(left)

    def _refused(self, where: str, message: dict[str, Any]) -> str | None:
        """Slack's error for a message past one of its limits (block_kit.py), each limit
        passed a violation; None when Slack would take it."""
        too_long = block_kit.text_problems(message.get("text"))
        problems = block_kit.block_problems(message.get("blocks"))
        for problem in too_long + problems:
            self._violation(f"{where}: {problem}")
        return "msg_too_long" if too_long else "invalid_blocks" if problems else None

    def _violation(self, text: str) -> None:
        with self._cond:
            self.violations.append(text)
            self._cond.notify_all()

    def _next_ts(self) -> str:
        with self._cond:
            micros = next(self._ts)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://deploybot-test.slack.com/",
            "team": self.team_name,
            "user": "deploybot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": args.get("text") or "",
            "ts": ts,
            "team": self.team_id,
        }
        for name in ("blocks", "attachments", "thread_ts"):
            if args.get(name):
                message[name] = args[name]
        if message.get("thread_ts") and args.get("reply_broadcast") in (True, "true", "1"):
            message["subtype"] = "thread_broadcast"  # a reply shown in the channel too
        return message

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args["channel"])
        # One critical section for the ts and the store, so a channel stays in ts order.
        with self._cond:
            ts = self._next_ts()
            message = self._message(args, ts)
            self._messages.setdefault(channel, {})[ts] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": dict(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args["channel"]), str(args["ts"])
        with self._cond:
            stored = self._messages.get(channel, {}).get(ts)
            if stored is None:
                raise _ApiError("message_not_found")
            # An update replaces the content: blocks left out of the update are gone.
            updated = self._message(args, ts)
            if "thread_ts" in stored:
                updated["thread_ts"] = stored["thread_ts"]
            updated["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            self._messages[channel][ts] = updated
        # Slack's answer leaves out the ts, which sits at the top level instead.
        message = {name: value for name, value in updated.items() if name != "ts"}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": updated["text"],
            "message": message,
        }

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        # Ephemeral messages are not stored: Slack offers no way to fetch or update them.
        return {"ok": True, "message_ts": self._next_ts()}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            users = self._usergroups.get(args["usergroup"])
        if users is None:
            # The live API's answer for an unknown group (older specs omit it from the enum).
            raise _ApiError("no_such_subteam")
        return {"ok": True, "users": list(users)}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        length = str(args["length"])
        if not length.isdigit():
            raise _ApiError("invalid_arguments")
        with self._cond:
            file_id = f"F{next(self._file_ids):010d}"
            self._pending_files[file_id] = {
                "filename": str(args["filename"]),
                "length": int(length),
                "data": None,
            }
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _receive_upload(self, request: Request, file_id: str) -> HTTPResponse:
        # Read the raw body before anything parses it as a form (urllib sends no type).
        data = request.get_data(cache=True)
        with self._cond:
            pending = self._pending_files.get(file_id)
            if pending is None:
                self._violation(f"upload {file_id}: no such upload URL")
                return _text_response("not_found", 404)
            if len(data) != pending["length"]:
                self._violation(
                    f"upload {file_id}: {len(data)} bytes sent, {pending['length']} announced"
                )
            pending["data"] = data
        return _text_response(f"OK - {len(data)}")

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args["files"]
        if not isinstance(files, list) or not files:
            raise _ApiError("invalid_arguments")
        channel = args.get("channel_id") or None
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not channel:
            self._violation("files.completeUploadExternal: thread_ts without channel_id")
            raise _ApiError("invalid_arguments")
        shared = []
        with self._cond:
            left = self._refusing.get(str(channel))
            if left is not None:
                raise _ApiError(left)  # sharing into a channel that refuses the bot
            for item in files:
                pending = self._pending_files.get(str((item or {}).get("id")))
                if pending is None or pending["data"] is None:
                    raise _ApiError("file_not_found")
            for item in files:
                file_id = str(item["id"])
                pending = self._pending_files.pop(file_id)
                title = str(item.get("title") or pending["filename"])
                self.uploads.append(
                    Upload(
                        file_id,
                        pending["filename"],
                        title,
                        pending["data"],
                        channel,
                        thread_ts,
                        args.get("initial_comment") or None,
                    )
                )
                shared.append({"id": file_id, "title": title})
            self._cond.notify_all()
        return {"ok": True, "files": shared}

    def _publish_view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"]
        if not isinstance(view, dict) or view.get("type") != "home":
            self._violation(f"views.publish: view is not a Home tab view: {view!r}")
            raise _ApiError("invalid_arguments")
        problems = block_kit.view_problems(view)
        for problem in problems:
            self._violation(f"views.publish: {problem}")
        if problems:
            # Slack answers a view it refuses so, each problem a message with where it is.
            raise _ApiError("invalid_arguments", response_metadata={"messages": problems})
        user_id = str(args["user_id"])
        with self._cond:
            previous = self._home_views.get(user_id)
            if args.get("hash") and previous is not None and args["hash"] != previous["hash"]:
                raise _ApiError("hash_conflict")
            # A user's Home tab keeps its view id across publishes; only the hash changes.
            view_id = previous["id"] if previous else f"V{next(self._view_ids):010d}"
            published = {
                "id": view_id,
                "team_id": self.team_id,
                "type": "home",
                "blocks": view.get("blocks", []),
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": view.get("external_id", ""),
                "state": {"values": {}},
                "hash": f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",
                "title": view.get("title"),
                "close": None,
                "submit": None,
                "clear_on_close": False,
                "notify_on_close": False,
                "root_view_id": view_id,
                "previous_view_id": None,
                "app_id": self.app_id,
                "app_installed_team_id": self.team_id,
                "bot_id": self.bot_id,
            }
            self._home_views[user_id] = published
        return {"ok": True, "view": published}

    # -- response_url ----------------------------------------------------------------

    def _response_url(self, request: Request, url_id: str) -> HTTPResponse:
        fault = self._take_fault("response_url")
        if fault is not None:
            response = _text_response(fault.error or _fault_error(fault.status), fault.status)
            _add_retry_after(response, fault)
            return response
        try:
            payload = json.loads(request.get_data(as_text=True))
        except ValueError:
            payload = None
        with self._cond:
            state = self._response_urls.get(url_id)
            if state is None:
                self._violation(f"response_url {url_id}: no such URL")
                return _text_response("no_service", 404)
            if self.clock() - state.created > RESPONSE_URL_LIFETIME:
                self._violation(f"response_url {url_id}: used after 30 minutes")
                return _text_response("expired_url", 404)
            if state.uses >= RESPONSE_URL_MAX_USES:
                self._violation(
                    f"response_url {url_id}: post #{state.uses + 1} is over Slack's limit of "
                    f"{RESPONSE_URL_MAX_USES}: {payload!r}"
                )
                return _text_response("used_url", 404)
            if not isinstance(payload, dict):
                self._violation(f"response_url {url_id}: body is not a JSON object")
                return _text_response("invalid_payload", 400)
            if not (
                payload.get("delete_original")
                or payload.get("text")
                or payload.get("blocks")
                or payload.get("attachments")
            ):
                self._violation(f"response_url {url_id}: nothing to show: {payload!r}")
                return _text_response("no_text", 400)
            refused = self._refused(f"response_url {url_id}", payload)
            if refused:
                return _text_response(refused, 400)
            response_type = payload.get("response_type")
            if response_type is not None and response_type not in _RESPONSE_TYPES:
                # Accepted, since Slack's reaction is undocumented, but the bot meant something else.
                self._violation(f"response_url {url_id}: response_type {response_type!r}")
            state.uses += 1
            self.responses.append(Response(url_id, payload))
            self._cond.notify_all()
        return _text_response("ok")


def _url_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _add_retry_after(response: HTTPResponse, fault: _Fault) -> None:
    if fault.status == 429 and fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
