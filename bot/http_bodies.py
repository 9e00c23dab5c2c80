"""Reading an answer from another host within a size and a time.

requests and urllib3 read a whole body into memory, and their timeout bounds each wait for
the socket, not the read: an endless answer fills the process's memory, and one that
trickles a byte before each timeout holds a thread for hours. An app's HireFire endpoint,
a build's output stream, a log session, an S3 log bundle and a `response_url`'s answer
are read here instead, from the urllib3 response (`requests.Response.raw`, or urllib3's
own with `preload_content=False`), one socket read at a time, decoded (gzip included)
before it is counted. `get_once` bounds the whole of a GET, headers included, for a host
that is not ours at all.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
import urllib3
from requests import certs
from urllib3 import BaseHTTPResponse
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError
from urllib3.util import Url, make_headers, parse_url

CHUNK = 64 * 1024
# A build's output, a log session or a log bundle is read for its end: 1 MiB holds
# `/deploy logs`' 1,500 lines; one that goes on past 32 MiB or a minute is cut there.
TAIL_KEEP, TAIL_LIMIT, TAIL_SECONDS = 1 << 20, 32 << 20, 60.0


# What a streamed answer can raise: requests' errors, and urllib3's, which reads from
# `response.raw` raise unwrapped.
UNREADABLE = (requests.RequestException, urllib3.exceptions.HTTPError)


# What `get_once` raises besides those: it speaks to the socket through http.client.
UNREACHABLE = (*UNREADABLE, OSError, http.client.HTTPException)
# A wait that ran out: one socket wait's (urllib3's or the socket's own), or the deadline's.
TIMED_OUT = (TimeoutError, ReadTimeoutError, ConnectTimeoutError)


class BodyTooLarge(Exception):
    """The answer went past the bytes it may have."""


def read_within(response: BaseHTTPResponse, limit: int, seconds: float) -> bytes:
    """The whole body; `BodyTooLarge` past `limit` bytes, `TimeoutError` past `seconds`."""
    chunks, size = [], 0
    for chunk in _chunks(response, seconds):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def get_once(
    url: str, limit: int, seconds: float, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """The status and, for a 200, the body of one GET of `url`, no redirect followed, all of
    it within `seconds`: connecting, the headers and the body. `TimeoutError` past
    `seconds`, `BodyTooLarge` past `limit` bytes, one of `UNREACHABLE` for the rest.

    A socket's timeout bounds each wait, and http.client reads headers a line at a time: a
    host that sends a byte of them every few seconds would hold the caller for hours. So
    a watchdog shuts the socket down at the deadline, whatever the reader is waiting for.
    HTTP(S)_PROXY and NO_PROXY are honoured as requests honours them (`_connection`)."""
    where = parse_url(url)
    connection, target, to_proxy = _connection(where, seconds)
    finished, cut = threading.Event(), threading.Event()
    watchdog = threading.Thread(
        target=_cut_at_deadline, args=(connection, seconds, finished, cut), daemon=True
    )
    watchdog.start()
    try:
        # Credentials in the URL (`https://user:pass@host`) go as Basic auth, as requests sends them.
        sent = {
            **(make_headers(basic_auth=where.auth) if where.auth else {}),
            **to_proxy,
            **(headers or {}),
        }
        connection.request("GET", target, headers=sent, preload_content=False)
        answer = connection.getresponse()
        body = read_within(answer, limit, seconds) if answer.status == 200 else b""
    except UNREACHABLE:
        if cut.is_set():  # what the cut socket raised, whichever it was
            raise TimeoutError(f"no answer within {seconds:g} s") from None
        raise
    finally:
        finished.set()
        connection.close()
    if cut.is_set():  # cut mid-body: what was read may look whole and is not
        raise TimeoutError(f"no answer within {seconds:g} s")
    return answer.status, body


def _connection(where: Url, seconds: float) -> tuple[HTTPConnection, str, dict[str, str]]:
    """The connection a GET of `where` goes over, the request target to send on it, and
    the headers the proxy wants with it.

    Through the proxy HTTP_PROXY / HTTPS_PROXY name unless NO_PROXY names the host, as
    requests did before: a bot on Heroku reaches an app that admits only known addresses
    through a static-IP add-on (Fixie, QuotaGuard) set there. HTTPS goes in a CONNECT
    tunnel, the certificate checked against the app's own name; plain HTTP is asked of the
    proxy by its absolute URL. The proxy is the operator's; the app still cannot redirect
    the bot, and the deadline cuts the socket to the proxy as it would the app's."""
    host, port = where.host or "", where.port
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(where.scheme or "http") or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
        if where.scheme == "https":
            # The CA bundle requests trusts for every other host.
            tls = HTTPSConnection(host, port, timeout=seconds, ca_certs=certs.where())
            return tls, where.request_uri, {}
        return HTTPConnection(host, port, timeout=seconds), where.request_uri, {}
    via = parse_url(proxy if "://" in proxy else f"http://{proxy}")
    login = make_headers(proxy_basic_auth=via.auth) if via.auth else {}
    if where.scheme == "https":
        tunnel = HTTPSConnection(via.host or "", via.port, timeout=seconds, ca_certs=certs.where())
        tunnel.set_tunnel(host, port or 443, login, scheme=via.scheme or "http")
        return tunnel, where.request_uri, {}
    plain = (
        HTTPSConnection(via.host or "", via.port, timeout=seconds, ca_certs=certs.where())
        if via.scheme == "https"
        else HTTPConnection(via.host or "", via.port, timeout=seconds)
    )
    # Its credentials left out of the URL: they go as the Authorization header.
    absolute = Url("http", host=host, port=port, path=where.path, query=where.query).url
    return plain, absolute, login


def _cut_at_deadline(
    connection: HTTPConnection, seconds: float, finished: threading.Event, cut: threading.Event
) -> None:
    if finished.wait(seconds):
        return
    cut.set()
    # Again until the reader gives up: the socket may not be made yet, or be replaced by
    # its TLS wrapping, when the deadline comes.
    while not finished.is_set():
        if (sock := connection.sock) is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        finished.wait(0.05)


def read_and_release(answer: BaseHTTPResponse, limit: int, seconds: float) -> bytes:
    """`read_within` of a urllib3 answer from a pool: read whole, its connection goes back to
    the pool; cut short, the connection is closed (the rest of the answer stays unread)."""
    try:
        body = read_within(answer, limit, seconds)
    except BaseException:
        answer.close()
        raise
    answer.release_conn()
    return body


def tail_lines(
    response: BaseHTTPResponse,
    keep: int = TAIL_KEEP,
    limit: int = TAIL_LIMIT,
    seconds: float = TAIL_SECONDS,
) -> list[str]:
    """The text lines of the body's last `keep` bytes (a build's output or a log matters at
    its end), reading at most `limit` bytes for at most `seconds`; an answer cut short there
    ends with a line that says so."""
    # The newest chunks that hold the last `keep` bytes, joined once at the end: slicing a
    # joined tail at every chunk would copy the whole MiB each time.
    kept: deque[bytes] = deque()
    held, size, cut = 0, 0, False
    try:
        for chunk in _chunks(response, seconds):
            size += len(chunk)
            kept.append(chunk)
            held += len(chunk)
            while held - len(kept[0]) >= keep:
                held -= len(kept.popleft())
            if size > limit:
                cut = True
                break
    except (TimeoutError, ReadTimeoutError):  # our deadline, or one read's timeout
        cut = True
    tail = b"".join(kept)[-keep:]
    lines = tail.decode("utf-8", "replace").splitlines()
    if size > len(tail):
        lines = lines[1:]  # the first was cut in two where the kept bytes begin
    if cut:
        lines.append(f"(cut here: the answer went on past {size:,} bytes or {seconds:g} s)")
    return lines


def fetch_tail(get: Callable[..., Any], url: str, timeout: tuple[float, float]) -> list[str]:
    """`tail_lines` of a GET of `url` through `get` (a session's, or requests'); a failure
    raises one of `UNREADABLE`."""
    with get(url, timeout=timeout, stream=True) as response:
        response.raise_for_status()
        return tail_lines(response.raw)


def _chunks(response: BaseHTTPResponse, seconds: float) -> Iterator[bytes]:
    # read1 returns after one read from the socket, so the deadline is checked between
    # reads however slowly the bytes come.
    deadline = time.monotonic() + seconds
    while chunk := response.read1(CHUNK, decode_content=True):
        yield chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"still reading after {seconds:g} s")
