"""A WSGI app served on 127.0.0.1 on a random port, in a background thread."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, make_server


class LocalServer:
    """Serve `wsgi_app` on 127.0.0.1:<random port> until `stop()`.

    Usable as a context manager; `url` is the base URL without a trailing slash.
    """

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self._wsgi_app = wsgi_app
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> LocalServer:
        self._server = make_server("127.0.0.1", 0, self._wsgi_app, threaded=True)
        server = self._server
        # A short poll keeps stop() fast: tests start and stop servers by the hundred.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_GATHER_LOCK = threading.Lock()


class ServedFake:
    """What every fake shares: served by a LocalServer, started and stopped as a context
    manager. Subclasses set `self._server`, and call `_arrived()` as each request comes in."""

    _server: LocalServer
    _gathering: tuple[threading.Barrier, list[int]] | None = None  # see gather()

    def gather(self, count: int, timeout: float, after: int = 0) -> threading.Barrier:
        """Hold each of the next `count` requests (after the next `after`, which pass as
        usual) until all `count` have arrived, so a test can tell that a client sent them
        together without timing anything. A client that sends them one after another
        leaves the first waiting: after `timeout` seconds the barrier breaks (`.broken`),
        and every request is answered as usual."""
        barrier = threading.Barrier(count, timeout=timeout)
        self._gathering = (barrier, [after, count])
        return barrier

    def _arrived(self) -> None:
        gathering = self._gathering
        if gathering is None:
            return
        barrier, left = gathering  # [requests to let pass first, requests to hold]
        with _GATHER_LOCK:
            if left[0] > 0:
                left[0] -= 1
                return
            if left[1] <= 0:
                return
            left[1] -= 1
            if left[1] == 0:
                self._gathering = None
        # Sent apart: answered anyway, and the test reads `broken`.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return self._server.url

    def start(self) -> Self:
        # One log line per request drowns test output and the sandbox console.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
