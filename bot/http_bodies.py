"""Reading an answer from another host within a size and a time.

requests and urllib3 read a whole body into memory, and their timeout bounds each wait for
the socket, not the read: an endless answer fills the process's memory, and one that
trickles a byte before each timeout holds a thread for hours. An app's HireFire endpoint,
a build's output stream, a log session, an S3 log bundle and a `response_url`'s answer
are read here instead, from the urllib3 response (`requests.Response.raw`, or urllib3's
own with `preload_content=False`), one socket read at a time, decoded (gzip included)
before it is counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import ReadTimeoutError

CHUNK = 64 * 1024
# A build's output, a log session or a log bundle is read for its end: 1 MiB holds
# `/deploy logs`' 1,500 lines; one that goes on past 32 MiB or a minute is cut there.
TAIL_KEEP, TAIL_LIMIT, TAIL_SECONDS = 1 << 20, 32 << 20, 60.0


# What a streamed answer can raise: requests' errors, and urllib3's, which reads from
# `response.raw` raise unwrapped.
UNREADABLE = (requests.RequestException, urllib3.exceptions.HTTPError)


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
