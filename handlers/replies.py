"""Answers to a Slack `response_url` over connections kept open between posts.

Bolt's `respond` posts through slack_sdk's `WebhookClient`, which opens a new connection
for every post: in production a TCP and TLS handshake with hooks.slack.com per answer, and
a command's job answers at least once, a slow change twice. `respond_to(url)` is the same
`respond` (same arguments, same message, a `WebhookResponse` back), posting through one
urllib3 pool per process (`bot.http_pool`). A 429 asking for a few seconds is waited out on
the job's thread and the answer posted again (`bot.slack_api.patiently`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import urllib3
from slack_bolt import Respond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookResponse

from bot.http_bodies import BodyTooLarge, read_and_release
from bot.http_pool import ProcessPool
from bot.slack_api import patiently

READ_S = 30.0  # slack_sdk's WebhookClient waits 30 s
TIMEOUT = urllib3.Timeout(connect=10.0, read=READ_S)
# A post that never reached Slack is sent again; one cut off after it was sent once more
# too, as that is how a kept-alive connection the other end has just closed fails. A
# second copy of an answer is better than none (a response_url takes five).
# A 429's Retry-After is `patiently`'s to honour, within bounds: urllib3's own (unbounded) had
# raised on the first 429, and the answer was lost.
RETRIES = urllib3.Retry(
    total=2, connect=2, read=1, status=0, allowed_methods=None, respect_retry_after_header=False
)
CONNECTIONS = 4  # kept per host: the job threads of one process post at most two at once
ANSWER_BYTES = 64 * 1024

log = logging.getLogger(__name__)

_pool = ProcessPool(num_pools=4, maxsize=CONNECTIONS, timeout=TIMEOUT, retries=RETRIES)


class PooledRespond(Respond):
    """Bolt's `respond` for `response_url`, posting over kept-alive connections."""

    def __call__(  # type: ignore[override]
        self, text: str | dict[str, Any] = "", **fields: Any
    ) -> WebhookResponse:
        """Bolt's arguments (text, blocks, response_type, replace_original, …) by name, or
        the whole message as one dict."""
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        message = (
            _build_message(**text)
            if isinstance(text, dict)
            else _build_message(text=text, **fields)
        )
        try:
            sent = patiently(lambda: self._post(message))
        except _RateLimited as error:
            sent = error.sent
        if sent.status_code != 200:
            # Slack's word (`expired_url`, `used_url`) and never the URL, which is a secret.
            said = sent.body[:40]
            log.warning("answer not taken", extra={"status": sent.status_code, "error": said})
        return sent

    def _post(self, message: dict[str, Any]) -> WebhookResponse:
        """One post of `message`; Slack's 429 raised as `_RateLimited`, for `patiently`."""
        assert self.response_url is not None
        answer = _pool().request(
            "POST",
            self.response_url,
            body=json.dumps(message).encode(),
            headers={"Content-Type": "application/json;charset=utf-8"},
            preload_content=False,
        )
        try:
            # Slack answers `ok` or a short error: more is not read (`bot.http_bodies`).
            body = read_and_release(answer, ANSWER_BYTES, READ_S)
        except (BodyTooLarge, TimeoutError):
            body = b"(an answer too large or too slow to read)"
        sent = WebhookResponse(
            url=self.response_url,
            status_code=answer.status,
            body=body.decode("utf-8", "replace"),
            headers=dict(answer.headers),
        )
        if answer.status == 429:
            raise _RateLimited(sent)
        return sent


class _RateLimited(SlackApiError):
    """A `response_url`'s 429, read as the Web API's is (`bot.slack_api.rate_limited_for`)."""

    def __init__(self, sent: WebhookResponse) -> None:
        response = SlackResponse(
            client=None,
            http_verb="POST",
            api_url="response_url",  # never the URL itself: a secret
            req_args={},
            data={"ok": False, "error": "ratelimited"},
            headers=sent.headers,
            status_code=429,
        )
        super().__init__("Slack rate-limited an answer", response)
        self.sent = sent


def respond_to(response_url: str | None) -> Respond:
    """`respond` for a job: what bolt would have built for the request, from its URL."""
    return PooledRespond(response_url=response_url)
