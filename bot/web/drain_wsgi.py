"""`POST /drain/<token>` answered in plain WSGI, in front of Flask; every other request
goes to Flask unchanged.

A drain POST is the web dyno's busiest request by far (Logplex sends hundreds a second for
a busy app) and needs none of Flask's request machinery: routing, the request context, the
`Request`/`Response` objects and their header parsing cost about as much CPU as parsing the
batch itself. This dispatcher does what the Flask route did, with the same answers:

- a token that names no drain: 403, before the body is read;
- the same ceiling as `edge.MAX_BODY_BYTES`: a `Content-Length` past it is 413 at once,
  and a chunked body (gunicorn sets `wsgi.input_terminated`) is read only up to the ceiling
  plus one byte, 413 if there was more; a body without either is empty, as werkzeug reads it;
- 204 once the body is parsed and queued (`DrainIntake.receive`);
- any error: the same one-line log (path with the token cut out) and generic 500 as
  `edge`'s last-resort handler.

Any other method on a drain path, a token with a `/`, or any other path falls through to
Flask, which answers it (405, 404, ...) as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bot.logs import redact
from bot.web.edge import BROKEN_BODY, MAX_BODY_BYTES, where
from bot.web.log_drain import DrainIntake, Flusher

log = logging.getLogger("bot.web.edge")  # the same logger as the last-resort handler

PREFIX = "/drain/"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class DrainDispatch:
    """WSGI middleware: `POST /drain/<token>` here, everything else to `app`."""

    def __init__(
        self, app: WSGIApp, intake: DrainIntake, flusher: Flusher, limit: int = MAX_BODY_BYTES
    ) -> None:
        self._app = app
        self._intake = intake
        self._flusher = flusher
        self._limit = limit

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PREFIX):
            return self._app(environ, start_response)
        token = path[len(PREFIX) :]
        if not token or "/" in token:
            return self._app(environ, start_response)  # Flask's 404, as before
        try:
            return self._drain(token, environ, start_response)
        except Exception as error:
            log.error(
                "request failed",
                extra={
                    "method": "POST",
                    "path": redact(path),
                    "error": type(error).__name__,
                    "where": where(error),
                },
            )
            return _json(start_response, "500 INTERNAL SERVER ERROR", "internal error")

    def _drain(
        self, token: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        app = self._intake.app_for(token)
        if app is None:
            start_response("403 FORBIDDEN", [("Content-Length", "0")])
            return []
        try:
            body = self._body(environ)  # read only once the token held
        except BROKEN_BODY:
            return _json(start_response, "400 BAD REQUEST", "bad request")
        if body is None:
            return _json(start_response, "413 REQUEST ENTITY TOO LARGE", "request entity too large")
        self._intake.receive(app, _headers(environ), body)
        self._flusher.start()
        start_response("204 NO CONTENT", [])
        return []

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The body, or None when it is past the ceiling (never read past it + 1 byte)."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        if length and not chunked:  # a chunked body's length says nothing, as in werkzeug
            try:
                size = int(length)
            except ValueError:
                size = 0  # werkzeug reads an unreadable length as none
            if size > self._limit:
                return None
            return _read(stream, size) if size > 0 else b""
        if not environ.get("wsgi.input_terminated"):
            return b""  # no length and not chunked: no body, as werkzeug has it
        body = _read(stream, self._limit + 1)
        return None if len(body) > self._limit else body


# The request headers `DrainHeaders.from_headers` reads, straight from the environ (no
# werkzeug `EnvironHeaders` per request).
_HEADERS = {
    "HTTP_LOGPLEX_MSG_COUNT": "Logplex-Msg-Count",
    "HTTP_LOGPLEX_FRAME_ID": "Logplex-Frame-Id",
    "HTTP_LOGPLEX_DRAIN_TOKEN": "Logplex-Drain-Token",
}


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    return {name: environ[key] for key, name in _HEADERS.items() if key in environ}


def _read(stream: Any, size: int) -> bytes:
    parts = []
    left = size
    while left > 0:
        part = stream.read(left)  # gunicorn reads it all in one call; others may not
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _json(start_response: StartResponse, status: str, error: str) -> list[bytes]:
    body = json.dumps({"error": error}).encode() + b"\n"
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
