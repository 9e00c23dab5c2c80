"""Jobs a request submits reach the background process once the request's answer is sent.

A `/deploy` ack hands its work to the worker's child process (`bot.actions.background`).
Written into the child's pipe during the ack, the job woke the child while the ack was
still being answered, on the same CPUs: the wake-up and the child's first steps were on
the ack's time. Here the ack takes its slot and pickles its job as before (so "busy" is
still said at once), and the write happens when the WSGI server closes the answer, which
gunicorn does after sending it (and in every case: a server must call `close`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import ClosingIterator

from bot.actions.background import Background

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HandOverAfterAnswer:
    """WSGI middleware: the jobs `app` submits while answering are handed over on `close`."""

    def __init__(self, app: WSGIApp, background: Background) -> None:
        self._app = app
        self._background = background

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._background.holding() as release:
            answer = self._app(environ, start_response)
        return ClosingIterator(answer, release)
