"""The app's job queues, read from its HireFire-compatible endpoint.

`GET <app URL>/hirefire/<token>/info` answers `[{"name": "worker", "value": N}, ...]`, as
the `hirefire-resource` package (Python) and gem (Ruby) serve it; the policy that turns
the numbers into dynos is `policies.worker_autoscale`.
"""

from __future__ import annotations

import json
import math
import ssl
from urllib.parse import quote

from urllib3.exceptions import (
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
    SSLError,
)

from bot.http_bodies import TIMED_OUT, UNREACHABLE, BodyTooLarge, get_once
from bot.registry import NO_ADDRESS

TIMEOUT_S = 5.0  # the tick must not hang on a slow app; HireFire itself waits 10 s
# An answer lists the app's queues: a few hundred bytes. Anything past this is not one,
# and is not read further.
MAX_BODY_BYTES = 64 * 1024


class QueueInfoError(Exception):
    """The endpoint could not be read or did not answer the expected list."""


def info_url(app_url: str, token: str) -> str:
    # A path segment whatever the token holds: a `/`, `?`, `#` or space had cut the path
    # short, and the log redaction (bot.logs) with it.
    return f"{app_url.rstrip('/')}/hirefire/{quote(token, safe='')}/info"


def _failed(exc: BaseException) -> str:
    """How a connection failed, in words: its class name ("NewConnectionError") had been
    shown in the alert, which says nothing to someone fixing the app."""
    if isinstance(exc, LocationValueError):  # past the registry's check, which reads less
        return f"the registry's queue_url {NO_ADDRESS}"
    if isinstance(exc, NameResolutionError):
        return "its host name does not resolve; check the registry's queue_url"
    if isinstance(exc, NewConnectionError):
        return "no connection could be made to it"
    if isinstance(exc, SSLError | ssl.SSLError):
        return "its TLS handshake failed"
    # http.client's words when the proxy answers CONNECT with anything but 200.
    if isinstance(exc, ProxyError) or str(exc).startswith("Tunnel connection failed"):
        return "the proxy the bot's HTTPS_PROXY names refused to connect to it"
    return "the connection dropped before it answered"


def not_answered() -> QueueInfoError:
    return QueueInfoError(f"the app's HireFire endpoint did not answer within {TIMEOUT_S:g} s")


def fetch_queue_info(
    app_url: str, token: str, token_env: str = "HIREFIRE_TOKEN"
) -> dict[str, float]:
    """The endpoint's entries as name to value; a QueueInfoError says why not (`token_env`:
    the variable the bot's token came from, named when the app refuses it)."""
    try:
        status, body = get_once(
            info_url(app_url, token), MAX_BODY_BYTES, TIMEOUT_S, {"Accept": "application/json"}
        )
    except BodyTooLarge:
        raise QueueInfoError(
            f"the app's HireFire endpoint answered more than {MAX_BODY_BYTES // 1024} KiB, "
            "which is no list of queues"
        ) from None
    except UNREACHABLE as exc:
        # urllib3's refused connection is a kind of its connect timeout, for old callers.
        if isinstance(exc, TIMED_OUT) and not isinstance(exc, NewConnectionError):
            raise not_answered() from None
        # Only the kind of failure: a message may quote the URL, and the URL holds the
        # token, which would then show in `autoscale APP status`, App Home and the log.
        raise QueueInfoError(f"cannot reach the app's HireFire endpoint: {_failed(exc)}") from None
    if 300 <= status < 400:
        # Not followed: the app would choose where the bot connects (another host, a
        # cloud metadata address), and the address it gives may hold the token.
        raise QueueInfoError(
            f"the app's HireFire endpoint answered a redirect ({status}); set the registry's "
            "queue_url to the address it answers at"
        )
    if status in (401, 403, 404):
        # hirefire-resource passes unknown paths (a wrong token) to the app: a 404 here. So
        # does Heroku's router for a host no app answers at (the app renamed, its domain
        # moved), which no token mends.
        moved = " and that the registry's queue_url is where the app answers now"
        raise QueueInfoError(
            f"the app's HireFire endpoint answered {status}; "
            f"check {token_env} in the app and the bot" + (f",{moved}" if status == 404 else "")
        )
    if status != 200:
        raise QueueInfoError(
            f"the app's HireFire endpoint answered {status} instead of its queues; "
            "the app's logs say why"
        )
    return parse_queue_info(body)


def parse_queue_info(body: bytes) -> dict[str, float]:
    """The entries of an answer as name to value, each value a finite number of 0 or more;
    a QueueInfoError for anything else. The whole answer is refused for one bad entry: a
    value that is no number is no data, not "no jobs", so no type is scaled from it."""
    try:
        entries = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (HTML, a login page), or nested past reason
        entries = None
    if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
        raise QueueInfoError("the app's HireFire endpoint did not answer a list of {name, value}")
    info: dict[str, float] = {}
    for entry in entries:
        name, value = entry["name"], entry["value"]
        if name in info:
            raise QueueInfoError(f"the app's HireFire endpoint lists {_shown(name)} twice")
        info[name] = _count(name, value)
    return info


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("name"), str) and "value" in entry


def _count(name: str, value: object) -> float:
    # JSON's true is Python's 1, and "3" is text: neither is a count the app meant.
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    try:
        number = None if number is None else float(number)
    except OverflowError:  # an int past any float (1e309 is already inf)
        number = math.inf
    if number is None or not math.isfinite(number) or number < 0:
        shown = json.dumps(value if number is None else number)[:20]  # NaN, Infinity too
        raise QueueInfoError(
            f"the app's HireFire endpoint answered {_shown(name)} = {shown}, "
            "not a number of 0 or more"
        )
    return number


def _shown(name: str) -> str:
    # Quoted as JSON: cut short, and no newline or control character reaches a log line.
    # The caller escapes the whole reason for Slack (a backtick here would become ˋ).
    return json.dumps(name[:40])
