"""Every route's edge: one body-size ceiling, and short answers instead of HTML pages and
tracebacks when something is refused or goes wrong.

The ceiling is werkzeug's `MAX_CONTENT_LENGTH`, so it holds on every route, before any
body is read: a `Content-Length` above it is answered 413 at once, and a chunked body
(no `Content-Length`; gunicorn sets `wsgi.input_terminated`) is read through a stream that
stops at the ceiling. werkzeug then hands over the first MAX_BODY_BYTES as if that were the
whole body; `read_body` refuses such a body with 413 instead. Slack's requests are a few KB (an interaction
carries the message it came from: ours are small); Heroku's logplex batches and webhook
notifications stay far below it too. A request is never buffered past the ceiling, so one
hostile POST costs a worker at most about this much memory.

The last-resort handler logs one line (the error's class and where it was raised, the path
with any drain token cut out) and answers a generic 500: no traceback in the log, no
secret anywhere. The real causes are handled where they arise; this only keeps a bug from
dumping 3 KB of traceback with a drain token in its first line.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from flask import Flask, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from bot.logs import redact

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: the same ceiling the drain and webhook intakes always had


def install(web: Flask) -> None:
    """Set the body ceiling and the error handlers on `web`."""
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @web.errorhandler(HTTPException)
    def refused(error: HTTPException):  # type: ignore[no-untyped-def]
        # 404, 405, 413, ...: a short JSON answer rather than werkzeug's HTML page, with the
        # exception's own headers (a 405's Allow).
        response = jsonify(error=(error.name or "error").lower())
        response.status_code = error.code or 400
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @web.errorhandler(Exception)
    def failed(error: Exception):  # type: ignore[no-untyped-def]
        log.error(
            "request failed",
            extra={
                "method": request.method,
                "path": redact(request.path),
                "error": type(error).__name__,
                "where": where(error),
            },
        )
        return jsonify(error="internal error"), 500


# What gunicorn raises from the read of a chunked body whose framing is broken (a size that
# is no hex number, a chunk without its CRLF): the client's mistake, so a 400, not a 500.
BROKEN_BODY = (ParseException, NoMoreData)


def read_body(limit: int = MAX_BODY_BYTES, *, cache: bool = False) -> bytes:
    """The request's body, read through a stream capped at `limit` bytes; 413 past it.
    `cache=True` keeps it for a later `request.get_data()` (bolt's Flask adapter)."""
    request.max_content_length = min(limit, request.max_content_length or limit)
    try:
        body = request.get_data(cache=cache)  # 413 at once for a Content-Length past the cap
    except BROKEN_BODY:
        raise BadRequest() from None
    if request.content_length is None and len(body) >= request.max_content_length:
        raise RequestEntityTooLarge()  # chunked, and cut at the cap: there was more
    return body


def where(error: BaseException) -> str:
    """`file.py:line in function` of the innermost frame: enough to find a bug, with none of
    the values a full traceback could carry."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"
