"""Heroku log drain bodies (`application/logplex-1`): bytes in, the lines metrics need out.

Pure: no HTTP, no clock, no storage. `parse_body` never raises, whatever the bytes: every
number is bounded as it is read (a length prefix of at most `_MAX_LENGTH_DIGITS` digits,
any other number of at most `_MAX_NUMBER_DIGITS`, so nothing downstream meets an int too
large for a float or a float that is infinite), and every timestamp must fall in
[`EARLIEST`, `LATEST`) (year 1 or 9999 with an offset would overflow `datetime`). A frame
that breaks a bound is malformed: skipped and counted, never an exception.

The format. Logplex POSTs RFC 6587 octet-counted frames back to back, `LEN SP MSG`, where
LEN counts the bytes of MSG including its trailing newline, and MSG is an RFC 5424 header
*without* the STRUCTURED-DATA field, then the text:

    83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\\n
       PRI/VERSION TIMESTAMP           HOST APP PROCID MSGID MSG

Heroku's router writes as APP-NAME `heroku`, PROCID `router`; the dyno manager and the
runtime metrics as `heroku` with the dyno (`web.1`) as PROCID; the app's own output as `app`.

What comes out (`ParsedBody`):

- `requests`: one `RouterLine` per router line: the fields windows are built from, plus the
  raw message; `parse_router(line.message)` gives every field (method, path, host, fwd,
  bytes, protocol, ...). Building all of them for every line would double the cost of a
  line, and nothing on the ingest path reads them.
- `queue`: request queue time that the app logs itself, by the HireFire convention
  (`[hirefire:router] queue=12ms`) or l2met's (`measure#queue=12ms`): an app line (APP-NAME
  `app`) with a word `queue=N` or `measure#queue=N` where N is a decimal number followed by
  `ms` or `s`. A `source=DYNO` word names the dyno, else the PROCID does. A bare number is
  not read: `queue=5` or `queue=default` in a worker's log is a job queue, not a wait. Nor
  is a line with any word but key=value ones after the prefix: free text may quote a visitor.
- `runtime`: Heroku runtime metrics (`heroku labs:enable log-runtime-metrics`): a `heroku`
  line starting `source=` with `sample#NAME=VALUE[UNIT]` words, as floats in their unit
  (load averages as is, memory in MB, paging in pages).
- `other`: well-formed lines of no use here; `malformed`: frames skipped because the length
  prefix is not a number or runs past the body, the header lacks a field, PRI/VERSION is not
  `<0..191>1`, or the timestamp is not `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)` in range.
  After a bad frame the scanner resumes at the next newline, as every Heroku message ends
  with one. A router line without status, service or connect still counts as a request,
  with those fields None (H10, H14, ... log them empty).

Times are whole epoch seconds (fractions are not read: windows are 10 s), and the header
`Logplex-Msg-Count` should equal `frames + malformed` (see `DrainHeaders`).

Speed. A drain delivers every request of every app the bot watches, so this is the hottest
code in the web process. When the body is ASCII and every frame ends in a newline (Heroku's
always do), it is split on newlines and each frame checked against its length prefix; any
doubt sends the whole body to the exact octet-counting scanner, which gives the same result
(a property test holds both to it). Router fields are read by position after ` dyno=` and
looked up in small memo tables of whole tokens (`service=32ms` -> 32), which is several
times cheaper than slicing and `int()` per field; any line that does not fit the usual
layout goes through the general key=value reader instead, which reads those four fields
from the same place when the layout is usual (a forged line may repeat one earlier).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

EARLIEST = 946_684_800  # 2000-01-01T00:00:00Z: Heroku's logs are younger than that
LATEST = 4_102_444_800  # 2100-01-01T00:00:00Z
_MAX_LENGTH_DIGITS = 7  # a frame is shorter than the 1 MiB body that carries it
_MAX_NUMBER_DIGITS = 12  # 10^12 ms is 31 years; 10^12 bytes is a terabyte

# Router codes of requests the router answered itself, no dyno reached (`dyno=` empty):
# the app crashed (H10), the maintenance page (H80), Heroku's own error (H99). They are no
# load on the dynos, so a request rate read as load leaves them out. H14 (no web dynos
# running) stays in: with web at 0 it is the only sign of the traffic dynos should carry.
NO_LOAD_CODES = frozenset({"H10", "H80", "H99"})


def load(requests: int, codes: Mapping[str, int]) -> int:
    """`requests` less those of `NO_LOAD_CODES` among `codes`: what reached a dyno (or
    would have, had one run)."""
    return max(requests - sum(codes.get(code, 0) for code in NO_LOAD_CODES), 0)


class RouterLine(NamedTuple):
    """One request as Heroku's router logged it; the fields the metrics windows use."""

    time: int  # epoch seconds of the log timestamp
    dyno: str | None  # `web.1`; None when no dyno was reached (H10, H14, ...)
    status: int | None
    code: str | None  # `H12`, ...; None on a plain `at=info` line
    service: int | None  # milliseconds
    connect: int | None  # milliseconds
    message: str  # the router's key=value text, for `parse_router`


class QueueSample(NamedTuple):
    """Request queue time an app logged for one request."""

    time: int
    dyno: str
    queue: float  # milliseconds


class RuntimeSample(NamedTuple):
    """One runtime-metrics line: load averages or memory of one dyno."""

    time: int
    dyno: str  # `web.1` (the `source=`)
    instance: str | None  # `heroku.2808254.d97d0ea7-...` (the `dyno=`): changes on restart
    samples: Mapping[str, float]  # `load_avg_1m` -> 0.01, `memory_total` -> 150.2 (MB), ...


@dataclass(frozen=True)
class ParsedBody:
    requests: list[RouterLine] = field(default_factory=list)
    queue: list[QueueSample] = field(default_factory=list)
    runtime: list[RuntimeSample] = field(default_factory=list)
    other: int = 0
    malformed: int = 0

    @property
    def frames(self) -> int:
        """Well-formed frames: the lines kept plus `other`."""
        return len(self.requests) + len(self.queue) + len(self.runtime) + self.other


@dataclass(frozen=True)
class RouterFields:
    """Every field of a router line. Empty values (`dyno= connect=`) read as None."""

    at: str | None
    code: str | None
    desc: str | None
    method: str | None
    path: str | None
    host: str | None
    request_id: str | None
    fwd: str | None
    dyno: str | None
    connect: int | None  # milliseconds
    service: int | None  # milliseconds
    status: int | None
    bytes: int | None
    protocol: str | None
    sock: str | None  # `client` or `backend` on H18/H27
    extra: Mapping[str, str] = field(default_factory=dict)  # cause, tls_version, agent, ...


@dataclass(frozen=True)
class DrainHeaders:
    """The Logplex request headers: how many messages, which batch, which drain."""

    msg_count: int | None
    frame_id: str | None  # the same on a retried POST: dedupe on it
    drain_token: str | None  # `d.9173ea1f-...`: which drain (so which app) sent it

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> DrainHeaders:
        lower = {str(k).lower(): str(v).strip() for k, v in headers.items()}
        count = lower.get("logplex-msg-count", "")
        return cls(
            msg_count=_integer(count),
            frame_id=lower.get("logplex-frame-id") or None,
            drain_token=lower.get("logplex-drain-token") or None,
        )


def parse_body(body: bytes) -> ParsedBody:
    """Parse one `application/logplex-1` POST body. Never raises."""
    if body.isascii():
        parsed = _parse_by_lines(body.decode("ascii"))
        if parsed is not None:
            return parsed
    return _parse_by_octets(body)


def parse_router(message: str) -> RouterFields | None:
    """Every field of a router message (the MSG part); None if it has none of them."""
    values = _key_values(message)
    if not values.keys() & _ROUTER_KEYS:
        return None
    _after_dyno(message, values)
    get = values.pop
    return RouterFields(
        at=get("at", None) or None,
        code=get("code", None) or None,
        desc=get("desc", None) or None,
        method=get("method", None) or None,
        path=get("path", None) or None,
        host=get("host", None) or None,
        request_id=get("request_id", None) or None,
        fwd=get("fwd", None) or None,
        dyno=get("dyno", None) or None,
        connect=_milliseconds(get("connect", "")),
        service=_milliseconds(get("service", "")),
        status=_integer(get("status", "")),
        bytes=_integer(get("bytes", "")),
        protocol=get("protocol", None) or None,
        sock=get("sock", None) or None,
        extra=values,
    )


# ---------------------------------------------------------------------------------------------
# The two scanners.

_PRI_VERSIONS = frozenset(f"<{pri}>1" for pri in range(192))
_UTC = "+00:00"

# Memo tables of whole router tokens, read the way `parse_router` reads them: a drain repeats
# the same few hundred `service=NNms` and `status=200` tokens, and a dict hit is far cheaper
# than slicing and int() per field. A memo of a pure function, so no behaviour depends on it;
# each is emptied when it grows past _MEMO_LIMIT (garbage input cannot make it grow forever).
_DYNO: dict[str, str | None] = {}
_CONNECT: dict[str, int | None] = {}
_SERVICE: dict[str, int | None] = {}
_STATUS: dict[str, int | None] = {}
_MEMO_LIMIT = 50_000


def _parse_by_lines(text: str) -> ParsedBody | None:
    """The fast path: an ASCII body whose frames all end in a newline. None: use octets."""
    pieces = text.split("\n")
    if pieces.pop():  # the body must end with a frame's newline
        return None
    requests: list[RouterLine] = []
    queue: list[QueueSample] = []
    runtime: list[RuntimeSample] = []
    other = malformed = 0
    seconds: dict[str, int] = {}  # `2024-05-01T12:00:00` -> epoch, for this body's UTC stamps
    add_request = requests.append
    new = tuple.__new__
    versions = _PRI_VERSIONS
    dynos, connects, services, statuses = _DYNO, _CONNECT, _SERVICE, _STATUS
    for piece in pieces:
        parts = piece.split(" ", 7)
        prefix = parts[0]
        # LEN counts the message and its newline; the piece holds `LEN ` and the message.
        # Anything else (a newline inside a message, frames glued together) -> octets.
        if (
            not prefix.isdigit()
            or len(prefix) > _MAX_LENGTH_DIGITS
            or int(prefix) + len(prefix) != len(piece)
        ):
            return None
        if len(parts) < 8 or parts[1] not in versions:
            kind = _message(piece[len(prefix) + 1 :], requests, queue, runtime)
        else:
            stamp = parts[2]
            # Seconds are cached per body; the fraction must still be digits, as in _epoch.
            if stamp[-6:] == _UTC and stamp[19:20] == "." and stamp[20:-6].isdigit():
                when = seconds.get(stamp[:19])
                if when is None:
                    when = _epoch(stamp)
                    if when is not None:
                        seconds[stamp[:19]] = when
            else:
                when = _epoch(stamp)
            if when is None:
                malformed += 1
                continue
            message = parts[7]
            if parts[5] == "router":
                # A coded line is rare, and a quote after ` dyno=` may mean that ` dyno=` sat
                # inside a quoted value (fwd, agent): the general reader takes both.
                rest = message.partition(" dyno=")[2]
                if "code=" not in message and '"' not in rest:
                    tail = rest.split(" ", 4)
                    if len(tail) > 3:
                        try:
                            add_request(
                                new(
                                    RouterLine,
                                    (
                                        when,
                                        dynos[tail[0]],
                                        statuses[tail[3]],
                                        None,
                                        services[tail[2]],
                                        connects[tail[1]],
                                        message,
                                    ),
                                )
                            )
                            continue
                        except KeyError:
                            pass  # a token not met yet, or not in the usual place
                kind = _router(when, message, requests)
            elif parts[4] == "app" and "queue=" not in message:
                other += 1
                continue
            else:
                kind = _classify(
                    when, parts[3], parts[4], parts[5], message, requests, queue, runtime
                )
        other += kind == _OTHER
        malformed += kind == _MALFORMED
    return ParsedBody(requests, queue, runtime, other, malformed)


_BETWEEN_FRAMES = b" \t\r\n"
_MAX_PREFIX = 64  # digits searched for a length prefix before the frame is called malformed


def _parse_by_octets(body: bytes) -> ParsedBody:
    """RFC 6587 octet counting over any bytes; messages decode as UTF-8 with replacement."""
    requests: list[RouterLine] = []
    queue: list[QueueSample] = []
    runtime: list[RuntimeSample] = []
    other = malformed = 0
    position, size = 0, len(body)
    while position < size:
        if body[position] in _BETWEEN_FRAMES:  # stray separators are not frames
            position += 1
            continue
        space = body.find(b" ", position, position + _MAX_PREFIX)
        prefix = body[position:space] if space > position else b""
        digits = prefix.isdigit() and len(prefix) <= _MAX_LENGTH_DIGITS
        end = space + 1 + int(prefix) if digits else size + 1
        if end > size:
            malformed += 1
            newline = body.find(b"\n", position)
            position = size if newline < 0 else newline + 1
            continue
        message = body[space + 1 : end]
        position = end
        if message.endswith(b"\n"):
            message = message[:-1]
        kind = _message(message.decode("utf-8", "replace"), requests, queue, runtime)
        other += kind == _OTHER
        malformed += kind == _MALFORMED
    return ParsedBody(requests, queue, runtime, other, malformed)


# ---------------------------------------------------------------------------------------------
# One message: the header, then what kind of line it is.

_KEPT, _OTHER, _MALFORMED = 0, 1, 2


def _message(
    text: str,
    requests: list[RouterLine],
    queue: list[QueueSample],
    runtime: list[RuntimeSample],
) -> int:
    parts = text.split(" ", 6)
    if len(parts) < 6 or parts[0] not in _PRI_VERSIONS:
        return _MALFORMED
    when = _epoch(parts[1])
    if when is None:
        return _MALFORMED
    message = parts[6] if len(parts) > 6 else ""
    if parts[4] == "router":
        return _router(when, message, requests)
    return _classify(when, parts[2], parts[3], parts[4], message, requests, queue, runtime)


def _classify(
    when: int,
    host: str,
    app: str,
    procid: str,
    message: str,
    requests: list[RouterLine],
    queue: list[QueueSample],
    runtime: list[RuntimeSample],
) -> int:
    if app == "app":
        sample = _queue_sample(when, procid, message) if "queue=" in message else None
        if sample is None:
            return _OTHER
        queue.append(sample)
        return _KEPT
    if app == "heroku":
        if message.startswith("source=") and "sample#" in message:
            metrics = _runtime_sample(when, procid, message)
            if metrics is not None:
                runtime.append(metrics)
                return _KEPT
        return _OTHER
    if app == "router" and host == "heroku":
        # Some drains shift the header by one (`heroku router - -`): still the router.
        return _router(when, message, requests)
    return _OTHER


def _router(when: int, message: str, requests: list[RouterLine]) -> int:
    fields = parse_router(message)
    if fields is None:
        return _OTHER
    line = (when, fields.dyno, fields.status, fields.code, fields.service, fields.connect)
    requests.append(RouterLine(*line, message))
    _learn(message)
    return _KEPT


def _learn(message: str) -> None:
    """Teach the memo tables this line's tokens, each read as `parse_router` reads it."""
    rest = message.partition(" dyno=")[2]
    tail = rest.split(" ", 4)
    if len(tail) < 4 or '"' in rest:  # the fast path would not take this line anyway
        return
    if len(_SERVICE) > _MEMO_LIMIT or len(_DYNO) > _MEMO_LIMIT:
        for table in (_DYNO, _CONNECT, _SERVICE, _STATUS):
            table.clear()
    dyno, connect, service, status = tail[:4]
    _DYNO[dyno] = sys.intern(dyno) if dyno else None
    if connect.startswith("connect="):
        _CONNECT[connect] = _milliseconds(connect[8:])
    if service.startswith("service="):
        _SERVICE[service] = _milliseconds(service[8:])
    if status.startswith("status="):
        _STATUS[status] = _integer(status[7:])


def _after_dyno(message: str, values: dict[str, str]) -> None:
    """Read dyno, connect, service and status where the fast path reads them, in the usual
    layout (` dyno=D connect=C service=S status=N`, no quote after): a forged line that also
    has one of them earlier (Heroku never repeats a key) then reads the same either way."""
    rest = message.partition(" dyno=")[2]
    tail = rest.split(" ", 4)
    if (
        len(tail) > 3
        and '"' not in rest
        and tail[1].startswith("connect=")
        and tail[2].startswith("service=")
        and tail[3].startswith("status=")
    ):
        values["dyno"] = tail[0]
        values["connect"] = tail[1][8:]
        values["service"] = tail[2][8:]
        values["status"] = tail[3][7:]


_HIREFIRE_PREFIX = "[hirefire:router] "


def _queue_sample(when: int, procid: str, message: str) -> QueueSample | None:
    # Only a line of key=value words is a measure: in free text (`searched for queue=9s`)
    # the word may be what a visitor typed, and would add dynos for it.
    bare: list[str] = []
    values = _key_values(message.removeprefix(_HIREFIRE_PREFIX), bare)
    if bare:
        return None
    raw = values.get("queue") or values.get("measure#queue") or ""
    if raw.endswith("ms"):
        number, scale = raw[:-2], 1.0
    elif raw.endswith("s"):
        number, scale = raw[:-1], 1000.0
    else:
        return None
    if not _is_decimal(number):
        return None
    return QueueSample(when, values.get("source") or procid, float(number) * scale)


def _runtime_sample(when: int, procid: str, message: str) -> RuntimeSample | None:
    values = _key_values(message)
    samples: dict[str, float] = {}
    for key, raw in values.items():
        if key.startswith("sample#") and len(key) > 7:
            number = raw.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz%")
            if _is_decimal(number):
                samples[key[7:]] = float(number)
    if not samples:
        return None
    return RuntimeSample(when, values.get("source") or procid, values.get("dyno"), samples)


# ---------------------------------------------------------------------------------------------
# Small readers.

_ROUTER_KEYS = frozenset({"at", "method", "path", "host", "dyno", "status", "service", "code"})


def _key_values(text: str, bare: list[str] | None = None) -> dict[str, str]:
    """`k=v k2="v with spaces"` -> dict; the first of a repeated key wins; words without `=`
    are skipped (and put in `bare`, if given), and an unclosed quote runs to the end."""
    values: dict[str, str] = {}
    position, size = 0, len(text)
    while position < size:
        if text[position] == " ":
            position += 1
            continue
        space = text.find(" ", position)
        if space < 0:
            space = size
        equals = text.find("=", position, space)
        if equals <= position:  # no `=` in this word, or an empty key
            if bare is not None:
                bare.append(text[position:space])
            position = space + 1
            continue
        key = text[position:equals]
        if text.startswith('"', equals + 1):
            close = text.find('"', equals + 2)
            if close < 0:
                close = size
            value = text[equals + 2 : close]
            position = close + 1
        else:
            value = text[equals + 1 : space]
            position = space + 1
        values.setdefault(key, value)
    return values


def _integer(text: str) -> int | None:
    if len(text) > _MAX_NUMBER_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _milliseconds(text: str) -> int | None:
    # Router timings are `32ms`; H25 and H26 lines write a bare `1`.
    return _integer(text[:-2] if text.endswith("ms") else text)


def _is_decimal(text: str) -> bool:
    whole, _, fraction = text.partition(".")
    return (
        len(whole) <= _MAX_NUMBER_DIGITS
        and len(fraction) <= _MAX_NUMBER_DIGITS
        and text.isascii()
        and whole.isdigit()
        and (fraction.isdigit() or (not fraction and not text.endswith(".")))
    )


def _epoch(stamp: str) -> int | None:
    """Whole epoch seconds of `YYYY-MM-DDTHH:MM:SS[.digits](Z|+HH:MM|-HH:MM)`, else None."""
    if len(stamp) < 20 or not stamp.isascii():
        return None
    date = stamp[:19]
    if (
        date[4] != "-"
        or date[7] != "-"
        or date[10] != "T"
        or date[13] != ":"
        or date[16] != ":"
        or not (date[:4] + date[5:7] + date[8:10] + date[11:13] + date[14:16] + date[17:]).isdigit()
    ):
        return None
    if stamp.endswith("Z"):
        offset, fraction = "+00:00", stamp[19:-1]
    else:
        offset, fraction = stamp[-6:], stamp[19:-6]
    if fraction and not (fraction[0] == "." and fraction[1:].isdigit()):
        return None
    if len(stamp) < 25 and not stamp.endswith("Z"):
        return None
    if offset[0] not in "+-" or offset[3] != ":" or not (offset[1:3] + offset[4:]).isdigit():
        return None
    hours, minutes = int(offset[1:3]), int(offset[4:])
    if hours > 23 or minutes > 59:
        return None
    try:
        moment = datetime.fromisoformat(date).replace(tzinfo=UTC)
    except ValueError:
        return None
    # In plain seconds: `moment - timedelta` overflows at year 1 or 9999 with an offset.
    shift = (hours * 60 + minutes) * 60
    epoch = int(moment.timestamp()) + (-shift if offset[0] == "+" else shift)
    return epoch if EARLIEST <= epoch < LATEST else None
