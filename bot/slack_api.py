"""The Slack Web API client of every process: slack_sdk's `WebClient`, over connections
kept open between calls, each answer read within a size and a time.

slack_sdk's `WebClient` sends each call through `urllib.request.urlopen`: a new connection
per call (in production a TCP and TLS handshake with slack.com for every message, update
and Home tab), and an answer read whole, however large or slow. `web_client` gives the
same `WebClient` (its methods, retry handlers, `SlackApiError`s), whose one request step
goes through a urllib3 pool per process (`bot.http_pool`) and reads the answer with
`bot.http_bodies.read_within`. It fails as `urlopen` would, so callers catch what they
caught before: `HTTPError` (which slack_sdk turns into a `SlackApiError`) for a non-2xx
status, `URLError` when no answer came or it was too large, `TimeoutError` when it came too
slowly. With a proxy configured (`HTTPS_PROXY`), slack_sdk's own path is used.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPMessage
from typing import Any, TypeVar
from urllib.error import HTTPError, URLError
from urllib.request import Request

import urllib3
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.file_upload_v2_result import FileUploadV2Result
from urllib3.exceptions import ReadTimeoutError

from bot.http_bodies import BodyTooLarge, read_and_release
from bot.http_pool import ProcessPool
from policies.slack_errors import RATE_LIMIT_ERRORS

# The largest Web API answer the bot reads: its biggest are a user group's members and
# `usergroups.list`, a few hundred kB for thousands of people.
ANSWER_BYTES = 8 << 20
CONNECT_S = 10.0
CONNECTIONS = 4  # kept per host; a process's job threads call Slack a few at a time

# The longest 429 pause honoured: Slack asks for seconds to a minute; a Retry-After past this
# (a proxy's, a broken header) holds the calls that long at most, then Slack is asked again.
MAX_PAUSE = timedelta(minutes=15)
# The throttle row (`bot.store.throttles`) of the admins' channel's 429 pause, one for the
# worker's trouble post and the web dyno's worker-down post.
ADMIN_PAUSE = "slack:admin"
# How long a 429 that names no Retry-After is taken to ask: a minute, for every caller.
DEFAULT_PAUSE = timedelta(minutes=1)

# A 429 a reply or a follow-up waits out on its background thread before asking Slack again:
# Slack's usual few seconds, as the Heroku client waits (`bot.platforms.heroku`). A longer
# wait is not waited for, as that thread is one other commands need; nor one Slack did not name.
SHORT_PAUSE = timedelta(seconds=5)
SHORT_PAUSE_TRIES = 2  # asked again at most this often after the first 429

log = logging.getLogger(__name__)
T = TypeVar("T")

# No retries here: slack_sdk's retry handlers decide, as they do over urlopen (by default
# one more try after a connection error).
_pool = ProcessPool(num_pools=2, maxsize=CONNECTIONS, retries=False)


class PooledWebClient(WebClient):
    """`WebClient` whose requests reuse this process's connections and read their answers
    within `ANSWER_BYTES` and the client's `timeout`."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy:
            return super()._perform_urllib_http_request_internal(url, req)
        if not url.lower().startswith(("http://", "https://")):
            raise SlackRequestError(f"Invalid URL detected: {url}")
        headers = {name: str(value) for name, value in req.header_items()}
        try:
            answer = _pool().request(
                req.get_method(),
                url,
                body=req.data,  # type: ignore[arg-type]
                headers=headers,
                timeout=urllib3.Timeout(connect=min(CONNECT_S, self.timeout), read=self.timeout),
                redirect=False,
                preload_content=False,
            )
        except ReadTimeoutError as error:
            raise TimeoutError(f"Slack did not answer within {self.timeout} s") from error
        except urllib3.exceptions.HTTPError as error:
            raise URLError(error) from error
        try:
            body = read_and_release(answer, ANSWER_BYTES, self.timeout)
        except BodyTooLarge as error:
            raise URLError(f"Slack's answer went past {ANSWER_BYTES:,} bytes") from error
        except (TimeoutError, ReadTimeoutError) as error:
            raise TimeoutError(f"Slack's answer took longer than {self.timeout} s") from error
        except urllib3.exceptions.HTTPError as error:
            raise URLError(error) from error
        message = HTTPMessage()
        for name, value in answer.headers.items():
            message[name] = value
        if not 200 <= answer.status < 300:
            raise HTTPError(url, answer.status, answer.reason or "", message, io.BytesIO(body))
        if message.get_content_type() == "application/gzip":  # admin.analytics.getFile
            return {"status": answer.status, "headers": message, "body": body}
        charset = message.get_content_charset() or "utf-8"
        return {
            "status": answer.status,
            "headers": message,
            "body": body.decode(charset, "replace"),
        }

    def _upload_file(  # type: ignore[override]
        self, *, url: str, data: bytes, proxy: str | None, **rest: Any
    ) -> FileUploadV2Result:
        """A file's bytes to the upload URL Slack gave (`files_upload_v2`: a chart), by the
        same step as every call, where slack_sdk would use `urlopen`."""
        if proxy:
            return super()._upload_file(url=url, data=data, proxy=proxy, **rest)
        sent = self._perform_urllib_http_request_internal(url, Request(url, data, method="POST"))
        return FileUploadV2Result(status=sent["status"], body=sent["body"])


def web_client(token: str | None, base_url: str, timeout: int = 30) -> WebClient:
    """The bot's Web API client for `token` at `base_url` (slack.com's, or a fake's);
    `timeout` seconds per call, slack_sdk's default."""
    return PooledWebClient(token=token, base_url=base_url, timeout=timeout)


def retry_after(headers: Any) -> float | None:
    """Seconds a 429's `Retry-After` asks for (1 s to `MAX_PAUSE`), given in seconds or as
    an HTTP date (which HTTP allows: a proxy's); None without one it can read."""
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                seconds = float(value)
            except ValueError:
                seconds = _seconds_until(str(value))
                if seconds is None:
                    return None
            # `inf` and `nan` parse too; timedelta refuses both.
            return max(1.0, min(seconds, MAX_PAUSE.total_seconds())) if seconds == seconds else None
    return None


def _seconds_until(value: str) -> float | None:
    """Seconds from now to the HTTP date `value`; None when it is no date. A date was read
    as no Retry-After at all: the outbox asked Slack again a second later."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def rate_limited_for(error: Exception, default: timedelta) -> timedelta | None:
    """How long Slack's 429 (or its `ratelimited` or `rate_limited` answer) in `error` asks
    to wait (`default` if it names no time); None when `error` is no rate limit."""
    if not isinstance(error, SlackApiError):
        return None
    if error.response.status_code != 429 and error.response.get("error") not in RATE_LIMIT_ERRORS:
        return None
    wait = retry_after(error.response.headers)
    return timedelta(seconds=wait) if wait else default


def patiently(call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, asked again after Slack's 429 when its `Retry-After` is at most `SHORT_PAUSE`,
    at most `SHORT_PAUSE_TRIES` times. Only for a background job's or a follow-up's call,
    never on a request's own thread (its ack must leave within 3 s). A longer wait, one
    unnamed, or the last 429 is raised to the caller, which says what went unsaid."""
    tries = 0
    while True:
        try:
            return call()
        except SlackApiError as error:
            # No Retry-After: Slack did not say how long, so not waited out.
            wait = rate_limited_for(error, timedelta.max)
            if wait is None or wait > SHORT_PAUSE or tries == SHORT_PAUSE_TRIES:
                raise
            tries += 1
            log.info("slack rate-limited a call: asking again", extra={"wait_s": wait.seconds})
            sleep(wait.total_seconds())
