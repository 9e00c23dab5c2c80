"""The bot's Slack Web API client: slack_sdk's `WebClient` and its errors, over connections
kept open between calls, every answer read within a size and a time, over real HTTP on
127.0.0.1 (the fake Slack, a keep-alive host like slack.com's, and hostile hosts)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import base_client

from benchmarks.replies import KeepAlive, keep_alive_endpoint
from bot import slack_api
from bot.slack_api import web_client
from bot.worker.outbox_sender import _retry_after


def test_calls_and_errors_are_slack_sdks(slack) -> None:
    client = web_client(slack.bot_token, slack.api_url, timeout=5)
    posted = client.chat_postMessage(channel="C1", text="web 1 → 2")
    assert posted["ok"] and posted["ts"]
    assert [m["text"] for m in slack.messages("C1")] == ["web 1 → 2"]
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="again")
    assert caught.value.response.status_code == 429
    assert _retry_after(caught.value.response.headers) == 7.0  # what the outbox waits
    slack.fail_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="again")
    assert caught.value.response.status_code == 503
    with pytest.raises(SlackApiError) as caught:
        web_client("xoxb-wrong", slack.api_url).chat_postMessage(channel="C1", text="x")
    assert caught.value.response["error"] == "invalid_auth"


def test_a_file_goes_up_by_the_same_step(slack, monkeypatch) -> None:
    def urlopen_path(**_: object) -> None:
        raise AssertionError("slack_sdk's own urlopen upload was used")

    monkeypatch.setattr(base_client, "_upload_file_via_v2_url", urlopen_path)
    client = web_client(slack.bot_token, slack.api_url, timeout=5)
    client.files_upload_v2(channel="C1", file=b"\x89PNG chart", filename="c.png", title="c")
    [upload] = slack.wait_for_uploads()
    assert (upload.data, upload.channel) == (b"\x89PNG chart", "C1")


class _SlackLike(KeepAlive):
    """Answers every Web API call `ok` and keeps connections open, as slack.com does; or, by
    path, without end, or a byte at a time."""

    def answer(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if self.path.startswith("/endless/"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true, "x": "')
                while self.wfile.write(b"x" * 65536):
                    pass
            elif self.path.startswith("/trickle/"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                while self.wfile.write(b" "):
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                super().answer()


@pytest.fixture
def host() -> Iterator[tuple[str, list[int]]]:
    """The host's URL, and the connections it has accepted."""
    with keep_alive_endpoint(_SlackLike) as (url, _, connections):
        yield url.split("/commands/")[0], connections


def test_calls_share_one_kept_alive_connection(host) -> None:
    # In production each new connection is a TLS handshake with slack.com.
    url, connections = host
    client = web_client("xoxb-test", f"{url}/api/")
    for n in range(5):
        assert client.chat_postMessage(channel="C1", text=f"alert {n}")["ts"] == "1.000100"
    assert len(connections) == 1


def test_an_endless_answer_is_a_connection_error_not_a_full_memory(host, monkeypatch) -> None:
    monkeypatch.setattr(slack_api, "ANSWER_BYTES", 1 << 20)
    client = web_client("xoxb-test", f"{host[0]}/endless/")
    # URLError is what the outbox already treats as "try again later".
    with pytest.raises(URLError, match="went past 1,048,576 bytes"):
        client.chat_postMessage(channel="C1", text="alert")


def test_a_trickle_ends_at_the_clients_timeout(host) -> None:
    # Each byte comes within the timeout, so only a deadline on the whole read ends it:
    # urlopen's read would wait the 14 hours the answer's Content-Length takes.
    client = web_client("xoxb-test", f"{host[0]}/trickle/", timeout=1)
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="alert")


def test_no_host_is_a_connection_error() -> None:
    with pytest.raises(URLError):
        web_client("xoxb-test", "http://127.0.0.1:9/api/", timeout=2).auth_test()


def test_one_reading_of_a_rate_limit_serves_every_caller():
    # The digest job read Slack's 429 (and a `ratelimited` answer) with a copy of its own;
    # `rate_limited_for` had not taken the `ratelimited` answer for one.
    from datetime import timedelta

    from slack_sdk.web import SlackResponse

    from bot.slack_api import rate_limited_for

    def error(status: int, code: str, headers: dict[str, str] | None = None) -> SlackApiError:
        answer = SlackResponse(
            client=None, http_verb="POST", api_url="u", req_args={},
            data={"ok": False, "error": code}, headers=headers or {}, status_code=status,
        )  # fmt: skip
        return SlackApiError("x", answer)

    wait = timedelta(minutes=1)
    assert rate_limited_for(error(429, "ratelimited", {"Retry-After": "7"}), wait) == (
        timedelta(seconds=7)
    )
    assert rate_limited_for(error(429, "ratelimited"), wait) == wait
    assert rate_limited_for(error(200, "ratelimited"), wait) == wait
    assert rate_limited_for(error(200, "rate_limited"), wait) == wait  # chat.postMessage's
    assert rate_limited_for(error(200, "not_in_channel"), wait) is None
    assert rate_limited_for(error(503, "service_unavailable"), wait) is None
    assert rate_limited_for(TimeoutError(), wait) is None


@pytest.mark.parametrize(
    ("retry_after", "calls", "slept"),
    [
        (2, 3, [2.0, 2.0]),  # a short wait: asked again twice, then given up
        (60, 1, []),  # a long one: not waited out on a job's thread
        (None, 1, []),  # none named: not guessed
    ],
)
def test_patiently_waits_out_only_a_short_named_rate_limit(slack, retry_after, calls, slept):
    slack.fail_next("chat.postMessage", count=5, retry_after=retry_after)
    client = web_client("xoxb-test", slack.api_url)
    waits: list[float] = []
    with pytest.raises(SlackApiError):
        slack_api.patiently(lambda: client.chat_postMessage(channel="C1", text="hi"), waits.append)
    assert waits == slept and len(slack.faults_served) == calls


def test_patiently_returns_the_answer_after_a_short_rate_limit(slack):
    slack.fail_next("chat.postMessage", count=1, retry_after=1)
    client = web_client("xoxb-test", slack.api_url)
    waits: list[float] = []
    posted = slack_api.patiently(
        lambda: client.chat_postMessage(channel="C1", text="hi"), waits.append
    )
    assert posted["ok"] and waits == [1.0] and len(slack.calls_to("chat.postMessage")) == 1
