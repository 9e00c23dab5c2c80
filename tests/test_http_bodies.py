"""Answers from other hosts are read within a size and a time, whatever the host sends: an
endless body, a gzip bomb, a trickle, or the honest answer, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import urllib3

from benchmarks.replies import KeepAlive, keep_alive_endpoint
from bot.http_bodies import BodyTooLarge, read_within, tail_lines
from bot.metrics import hirefire
from bot.platforms import heroku as heroku_platform
from bot.platforms.base import PlatformError
from bot.platforms.heroku import HerokuPlatform

LOG = b"".join(b"2026-12-01T10:00:00Z app[web.1]: line %d\n" % i for i in range(100_000))
BOMB = gzip.compress(b"\0" * (40 << 20))  # 40 KiB on the wire, 40 MiB decoded


class _Host(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection does

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()  # (until the reader stops, as it should)

    def _answer(self) -> None:
        self.send_response(200)
        if self.path.startswith("/bomb"):
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if self.path == "/log":
            self.wfile.write(LOG)
        elif self.path.startswith("/bomb"):
            self.wfile.write(BOMB)
        elif self.path.startswith("/endless"):
            while self.wfile.write(b"x" * 65536):
                pass
        elif self.path.startswith("/stall"):  # a few lines, then nothing, connection open
            self.wfile.write(b"first\nsecond\n")
            self.wfile.flush()
            time.sleep(2)
        elif self.path.startswith("/trickle"):
            while self.wfile.write(b"y\n"):
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def _get(url: str) -> requests.Response:
    return requests.get(url, stream=True, timeout=(3, 5))


def test_an_honest_answer_is_read_whole(host):
    with _get(f"{host}/log") as response:
        assert read_within(response.raw, 8 << 20, 30) == LOG


@pytest.mark.parametrize("path", ["/endless", "/bomb"])
def test_an_endless_or_inflating_answer_stops_at_the_limit(host, path):
    with _get(f"{host}{path}") as response, pytest.raises(BodyTooLarge):
        read_within(response.raw, 64 * 1024, 30)


def test_a_trickle_stops_at_the_deadline_not_at_the_end(host):
    with _get(f"{host}/trickle") as response, pytest.raises(TimeoutError):
        read_within(response.raw, 8 << 20, 0.3)


def test_a_urllib3_answer_is_read_the_same_way(host):
    answer = urllib3.PoolManager().request("GET", f"{host}/bomb", preload_content=False)
    with pytest.raises(BodyTooLarge):
        read_within(answer, 64 * 1024, 30)
    answer.close()


@pytest.mark.parametrize("keep", [4096, 200_000])  # within one 64 KiB read, and across four
def test_the_tail_of_a_long_log_keeps_whole_lines(host, keep):
    with _get(f"{host}/log") as response:
        lines = tail_lines(response.raw, keep=keep)
    assert all(line.startswith("2026-12-01T10:00:00Z app[web.1]: line ") for line in lines)
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert numbers == list(range(100_000 - len(numbers), 100_000))  # the last ones, in order
    assert keep // 45 < len(lines) <= keep // 40


@pytest.mark.parametrize(
    ("path", "limits"),
    [("/endless", {"limit": 1 << 20}), ("/trickle", {"seconds": 0.3})],
)
def test_a_tail_cut_short_says_so(host, path, limits):
    with _get(f"{host}{path}") as response:
        lines = tail_lines(response.raw, keep=1024, **limits)
    assert lines[-1].startswith("(cut here: the answer went on past ")


def test_a_build_stream_that_never_ends_is_shown_cut(host):
    lines = HerokuPlatform("test-key", "http://127.0.0.1:9")._text(f"{host}/endless")
    # Cut at the first socket read that reaches 32 MiB (33,554,432 bytes).
    assert re.fullmatch(
        r"\(cut here: the answer went on past 33,[5-6]\d\d,\d{3} bytes or 60 s\)", lines[-1]
    )


def test_a_stalled_answer_is_shown_as_far_as_it_came(host):
    # One read's own timeout (requests' read timeout) ends it, as the total deadline would.
    with requests.get(f"{host}/stall", stream=True, timeout=(3, 0.2)) as response:
        lines = tail_lines(response.raw)
    assert lines[:2] == ["first", "second"] and lines[-1].startswith("(cut here:")


@pytest.mark.parametrize(
    ("app", "says"),
    [
        ("/endless", "answered more than 64 KiB"),
        ("/bomb", "answered more than 64 KiB"),
        ("/trickle", r"did not answer within 0\.2 s"),
        ("/stall", r"did not answer within 0\.2 s"),
    ],
)
def test_a_queue_endpoint_is_read_within_its_size_and_time(host, monkeypatch, app, says):
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 0.2)
    with pytest.raises(hirefire.QueueInfoError, match=says):
        hirefire.fetch_queue_info(f"{host}{app}", "token")  # GET {app}/hirefire/token/info


@pytest.mark.parametrize(
    ("api", "says"),
    [
        ("/bomb", "Heroku's API sent an answer the bot could not read."),
        ("/trickle", "Heroku's API did not answer in time."),
    ],
)
def test_a_runaway_api_answer_is_a_plain_error(host, monkeypatch, api, says):
    monkeypatch.setattr(heroku_platform, "API_ANSWER_SECONDS", 0.3)
    platform = HerokuPlatform("test-key", f"{host}{api}")  # GET {api}/apps/demo/formation
    with pytest.raises(PlatformError) as caught:
        platform.formation("demo")
    assert str(caught.value).startswith(says)


class _HerokuLike(KeepAlive):
    """An API host that keeps connections open, as Heroku's does (unlike the fakes)."""

    def do_GET(self) -> None:
        formation = [{"type": "web", "quantity": 1, "size": "standard-1X"}]
        self.send_whole(json.dumps(formation).encode(), "application/json")


def test_api_answers_read_within_limits_keep_the_connection_open():
    # In production each new connection is a TLS handshake with api.heroku.com.
    with keep_alive_endpoint(_HerokuLike) as (url, _, opened):
        platform = HerokuPlatform("test-key", url.split("/commands/")[0])
        for _ in range(3):
            assert [f.type for f in platform.formation("demo")] == ["web"]
        assert len(opened) == 1
