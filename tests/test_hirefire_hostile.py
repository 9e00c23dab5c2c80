"""An app's HireFire endpoint is the app's: possibly buggy, possibly hostile. Whatever it
answers over real HTTP on 127.0.0.1, the client (`bot.metrics.hirefire`) says one plain
reason or hands back clean numbers, within its size and time, and the worker type is never
scaled down on an answer that is not one."""

from __future__ import annotations

import contextlib
import http.server
import logging
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import urllib3

from bot.logs import LogfmtFormatter
from bot.metrics import hirefire
from bot.metrics.hirefire import QueueInfoError, fetch_queue_info
from policies.worker_autoscale import WorkerTarget, decide_worker

TOKEN = "hf-hostile-token"
LATENCY = WorkerTarget("latency", 30.0)

# What a buggy or hostile app may send instead of `[{"name": "worker", "value": N}]`.
GARBLED = {
    "object": b'{"name": "worker", "value": 3}',
    "html": b"<html><body>Sign in</body></html>",
    "strings": b'[{"name": "worker", "value": "3"}]',
    "negative": b'[{"name": "worker", "value": -5}]',
    "nan": b'[{"name": "worker", "value": NaN}]',
    "infinity": b'[{"name": "worker", "value": Infinity}]',
    "past-float": b'[{"name": "worker", "value": 1e309}]',
    "huge-int": b'[{"name": "worker", "value": ' + b"9" * 400 + b"}]",
    "bool": b'[{"name": "worker", "value": true}]',
    "nested": b'[{"name": "worker", "value": [1]}]',
    "null": b'[{"name": "worker", "value": null}]',
    "name-object": b'[{"name": {"worker": 1}, "value": 1}]',
    "duplicate": b'[{"name": "worker", "value": 100}, {"name": "worker", "value": 0}]',
    "busy-nan": b'[{"name": "worker", "value": 0}, {"name": "worker_busy", "value": NaN}]',
    "busy-negative": b'[{"name": "worker", "value": 0}, {"name": "worker_busy", "value": -1}]',
    "busy-string": b'[{"name": "worker", "value": 0}, {"name": "worker_busy", "value": "2"}]',
    "busy-past-float": b'[{"name": "worker", "value": 0}, {"name": "worker_busy", "value": 2e308}]',
    "markup-twice": b'[{"name": "<!channel> `x`\\n", "value": 1}, {"name": "<!channel> `x`\\n", "value": 1}]',
    "deep": b"[" * 20_000 + b"]" * 20_000,  # within the size limit, past the parser's stack
}

# Where a hostile app may send the bot instead; the token is in the path it was asked for.
REDIRECTS = {
    "to-metadata": "http://169.254.169.254/latest/meta-data/",
    "to-another-host": "http://localhost:{port}/object/hirefire/x/info",
    "to-a-file": "file:///etc/passwd",
    "to-https": "https://127.0.0.1:{port}/hirefire/" + TOKEN + "/info",
}


# The paths whose header drip ran to its end: the client was still reading it then.
DRIPPED: set[str] = set()


class _App(http.server.BaseHTTPRequestHandler):
    """`/<case>/hirefire/<token>/info` answers as the case says."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        case = self.path.split("/")[1]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if case in GARBLED:
                self._send(200, GARBLED[case])
            elif case == "good":
                self._send(200, b'[{"name": "worker", "value": 4}]')
            elif case == "cased":  # the app's own name for the type, in its own case
                self._send(200, b'[{"name": "Worker", "value": 400}]')
            elif case == "markup":
                self._send(200, b'[{"name": "<!channel> `x`", "value": 1}]')
            elif case.startswith("status"):
                self._send(int(case.removeprefix("status")), b"[]")
            elif case in REDIRECTS:
                self.send_response(302)
                where = REDIRECTS[case].format(port=self.server.server_port)
                self.send_header("Location", where)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif case == "basic":  # an app behind Basic auth, as staging apps often are
                good = self.headers.get("Authorization") == "Basic dXNlcjpwYXNz"  # user:pass
                self._send(200 if good else 401, b'[{"name": "worker", "value": 2}]')
            elif case == "hang":  # reads the request, then says nothing for a while
                time.sleep(3)
            elif case == "header-drip":  # a byte at a time, each within one read's timeout
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"X-Slow: " + b"z" * 40:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
                DRIPPED.add(self.path)
            elif case == "chunked":  # no Content-Length: the size shows only as it is read
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b'[{"name": "worker", "value": 1}, ' * 250
                for _ in range(400):  # 3 MiB in all, bounded
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[str, list[str]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.daemon_threads = True
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", server.paths  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("case", list(GARBLED))
def test_an_answer_that_is_not_a_list_of_counts_is_refused_whole(app, case):
    url, _ = app
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info(f"{url}/{case}", TOKEN)
    said = str(caught.value)
    assert said.startswith("the app's HireFire endpoint ") and TOKEN not in said


def test_the_reason_names_the_entry_that_is_wrong(app):
    url, _ = app
    with pytest.raises(
        QueueInfoError, match=r'answered "worker_busy" = NaN, not a number of 0 or more'
    ):
        fetch_queue_info(f"{url}/busy-nan", TOKEN)
    with pytest.raises(QueueInfoError, match=r'lists "worker" twice'):
        fetch_queue_info(f"{url}/duplicate", TOKEN)


def test_a_name_is_handed_back_as_the_app_wrote_it(app):
    # Names are matched against our process types, never echoed in chat unescaped.
    url, _ = app
    assert fetch_queue_info(f"{url}/markup", TOKEN) == {"<!channel> `x`": 1.0}


@pytest.mark.parametrize(
    "info",
    [
        {"worker": 0.0, "worker_busy": math.nan},
        {"worker": 0.0, "worker_busy": -1.0},
        {"worker": 0.0, "worker_busy": math.inf},
    ],
)
def test_never_down_while_the_busy_count_is_not_a_clean_zero(info):
    held = decide_worker(LATENCY, "worker", 3, 0, 10, info)
    assert held.desired == 3, held.reason
    assert "worker_busy" in held.reason


@pytest.mark.parametrize("value", [math.nan, -1.0, math.inf, -math.inf])
def test_a_queue_value_that_is_no_number_keeps_the_count(value):
    held = decide_worker(LATENCY, "worker", 3, 0, 10, {"worker": value})
    assert held.desired == 3, held.reason
    assert held.reason.endswith("worker stays at 3")


# -- What the worker's tick does with such an answer ----------------------------------------

NOW = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


def _alert_after_ten_minutes(config, scaler, slack, channel: str) -> str:
    """Ten minutes of ticks with the queue unread, then the worker's watch and alerts: the
    one alert posted in `channel`."""
    from bot.worker.main import Worker

    worker = Worker(config)
    try:
        for tick in range(41):
            scaler.tick(NOW + timedelta(seconds=15 * tick))
        assert worker.watch(NOW + timedelta(minutes=10)) == 1
        worker.send_alerts(NOW + timedelta(minutes=10))
        [alert] = slack.messages(channel)
        return alert["text"]
    finally:
        worker.db.dispose()


def _tick_against(
    config,
    monkeypatch,
    tmp_path,
    queue_urls: dict[str, str],
    token_env: str = "HIREFIRE_TOKEN",
    types: dict[str, tuple[str, ...]] | None = None,
):
    """The real worker tick, `worker` (or `types`) of each app on with min=0, against
    those endpoints."""
    types = types or {}
    from bot.services import Services
    from bot.store.audit import Actor
    from bot.worker.autoscale import Autoscaler
    from bot.worker.autoscale_workers import WorkerAutoscaler
    from policies.commands import parse
    from tests.conftest import ADMIN

    monkeypatch.setenv(token_env, TOKEN)
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "apps:\n"
        + "".join(
            f"  {name}:\n    platform: heroku\n    channel: C{name.upper()}\n"
            f"    autoscale:\n      queue_url: {url}\n      queue_token_env: {token_env}\n"
            for name, url in queue_urls.items()
        )
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    services = Services(config)
    for name in queue_urls:
        for ptype in types.get(name, ("worker",)):
            reply = services.actions.run(
                Actor(ADMIN, source="console"),
                parse(f"autoscale {name} {ptype} on target=latency:30s min=0 max=10"),
            )
            assert reply.public, reply.text
    said: list = []
    scaler = WorkerAutoscaler(services, Autoscaler(services, lambda c, t: said.append((c, t))))
    return services, scaler, said


@pytest.mark.parametrize(
    "case",
    [
        "busy-nan",
        "busy-past-float",
        "huge-int",
        "deep",
        "status500",
        "to-metadata",
        "header-drip",
        "markup-twice",
    ],
)
def test_the_tick_holds_a_worker_type_on_an_answer_that_is_no_answer(
    app, config, heroku, monkeypatch, tmp_path, dialed, caplog, case
):
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    url, _ = app
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 0.5)
    services, scaler, said = _tick_against(
        config, monkeypatch, tmp_path, {"myapp": f"{url}/{case}"}
    )
    try:
        with caplog.at_level("DEBUG"):
            [held] = scaler.tick(NOW)
        # urllib3's own warnings quote the URL: the line the bot writes must not.
        lines = [LogfmtFormatter().format(record) for record in caplog.records]
        assert lines and not [line for line in lines if TOKEN in line]
        assert (held.actual, held.desired, held.acted) == (1, 1, False)
        assert held.reason.startswith("could not read the job queue (the app's HireFire endpoint ")
        assert held.reason.endswith("): worker stays at 1")
        assert heroku.formation("myapp")["worker"][0] == 1 and said == []
        status = services.actions.run(
            Actor(ADMIN, source="console"), parse("autoscale myapp status")
        ).text
        # Its time is named UTC, as App Home's "Last decision" is: a bare "14:24:07" had
        # read as the reader's own time.
        assert re.search(r"• \d\d:\d\d:\d\d UTC held: could not read the job queue \(", status)
        assert TOKEN not in status and "<!channel>" not in status
        if case == "markup-twice":  # the app's name as it wrote it, shown and not acted on
            assert 'endpoint lists "&lt;!channel&gt; ˋxˋ\\n" twice): worker stays at 1' in status
    finally:
        services.db.dispose()


@pytest.fixture
def dialed(monkeypatch) -> list[tuple[str, int]]:
    """Every address the client connects to; only loopback is let through, so a followed
    redirect to another address is seen here and sends nothing off this machine."""
    seen: list[tuple[str, int]] = []
    connect = urllib3.util.connection.create_connection

    def loopback_only(address, *args, **kwargs):
        seen.append(address)
        if address[0] not in ("127.0.0.1", "localhost"):
            raise ConnectionRefusedError("the test lets only loopback through")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", loopback_only)
    return seen


@pytest.mark.parametrize("case", list(REDIRECTS))
def test_a_redirect_is_not_followed(app, dialed, case):
    url, paths = app
    before = len(paths)
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info(f"{url}/{case}", TOKEN)
    assert str(caught.value) == (
        "the app's HireFire endpoint answered a redirect (302); set the registry's "
        "queue_url to the address it answers at"
    )
    assert dialed == [("127.0.0.1", int(url.rsplit(":", 1)[1]))]
    assert paths[before:] == [f"/{case}/hirefire/{TOKEN}/info"]


def test_headers_that_trickle_are_cut_at_the_deadline_not_per_read(app, monkeypatch):
    url, _ = app
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 0.5)
    token = "drip-" + TOKEN
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info(f"{url}/header-drip", token)
    assert str(caught.value) == "the app's HireFire endpoint did not answer within 0.5 s"
    # Given up while the drip (48 bytes, 0.1 s apart) went on, not waited to its end.
    assert f"/header-drip/hirefire/{token}/info" not in DRIPPED


def test_a_chunked_answer_past_the_limit_is_cut_without_a_length(app):
    url, _ = app
    with pytest.raises(QueueInfoError, match="answered more than 64 KiB"):
        fetch_queue_info(f"{url}/chunked", TOKEN)


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "answered 401; check HIREFIRE_TOKEN in the app and the bot"),
        # hirefire-resource's 404 for a wrong token, or Heroku's router's for an app renamed
        # or a domain moved, where the registry's queue_url still names the old address.
        (
            404,
            "answered 404; check HIREFIRE_TOKEN in the app and the bot, and that the "
            "registry's queue_url is where the app answers now",
        ),
        (500, "answered 500 instead of its queues; the app's logs say why"),
        (429, "answered 429 instead of its queues; the app's logs say why"),
    ],
)
def test_an_error_status_says_where_to_look(app, status, says):
    url, _ = app
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info(f"{url}/status{status}", TOKEN)
    assert str(caught.value) == f"the app's HireFire endpoint {says}"


def test_a_refused_token_names_the_variable_the_registry_gave(
    app, config, heroku, monkeypatch, tmp_path
):
    url, _ = app
    services, scaler, _ = _tick_against(
        config, monkeypatch, tmp_path, {"myapp": f"{url}/status404"}, token_env="MYAPP_HF_TOKEN"
    )
    try:
        [held] = scaler.tick(NOW)
        assert held.reason == (
            "could not read the job queue (the app's HireFire endpoint answered 404; check "
            "MYAPP_HF_TOKEN in the app and the bot, and that the registry's queue_url is "
            "where the app answers now): worker stays at 1"
        )
    finally:
        services.db.dispose()


def test_an_app_that_never_answers_costs_the_others_one_timeout_per_tick(
    app, config, heroku, monkeypatch, tmp_path
):
    url, paths = app
    heroku.add_app("hung", formation={"worker": (1, "standard-1x"), "mailer": (1, "standard-1x")})
    heroku.add_app("stuck", formation={"worker": (1, "standard-1x")})
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 1.0)
    services, scaler, _ = _tick_against(
        config,
        monkeypatch,
        tmp_path,
        {"hung": f"{url}/hang", "stuck": f"{url}/hang", "myapp": f"{url}/busy-nan"},
        types={"hung": ("worker", "mailer")},
    )
    from bot.worker import autoscale_workers

    read = autoscale_workers.fetch_queue_info
    lock, in_flight, most = threading.Lock(), [0], [0]

    def counted(queue_url, token, token_env):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return read(queue_url, token, token_env)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(autoscale_workers, "fetch_queue_info", counted)
    try:
        asked = len(paths)
        decisions = scaler.tick(NOW)
        # Three reads one after the other before; now side by side: the two that hang are
        # in flight at once (`myapp`'s, answered at once, may be done before they start).
        assert most[0] >= 2
        assert sorted(paths[asked:]) == [
            f"/busy-nan/hirefire/{TOKEN}/info",
            f"/hang/hirefire/{TOKEN}/info",  # once for both of hung's types
            f"/hang/hirefire/{TOKEN}/info",
        ]
        held = {(d.app, d.process_type): d.reason for d in decisions}
        assert set(held) == {
            ("hung", "worker"),
            ("hung", "mailer"),
            ("stuck", "worker"),
            ("myapp", "worker"),
        }
        assert held[("hung", "mailer")] == (
            "could not read the job queue (the app's HireFire endpoint did not answer within "
            "1 s): mailer stays at 1"
        )
    finally:
        services.db.dispose()


def test_a_read_that_nothing_cuts_short_still_ends_the_tick_on_time(
    app, config, heroku, monkeypatch, tmp_path
):
    """A socket's deadline cannot cut everything (a name lookup waits on the resolver): the
    tick stops waiting for such a read and holds that app, whatever holds the read up."""
    from bot.worker import autoscale_workers

    url, _ = app
    heroku.add_app("stuck", formation={"worker": (1, "standard-1x")})
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 0.5)
    services, scaler, _ = _tick_against(
        config, monkeypatch, tmp_path, {"stuck": f"{url}/stuck", "myapp": f"{url}/busy-nan"}
    )
    released = threading.Event()
    read = autoscale_workers.fetch_queue_info

    finished = threading.Event()

    def lookup_never_returns(queue_url, token, token_env):
        if queue_url.endswith("/stuck"):
            released.wait(10)
            finished.set()
        return read(queue_url, token, token_env)

    monkeypatch.setattr(autoscale_workers, "fetch_queue_info", lookup_never_returns)
    try:
        decisions = scaler.tick(NOW)
        # The tick ended with the stuck read still held up: it did not wait for it.
        assert not finished.is_set()
        held = {d.app: d.reason for d in decisions}
        assert held["stuck"] == (
            "could not read the job queue (the app's HireFire endpoint did not answer within "
            "0.5 s): worker stays at 1"
        )
        assert held["myapp"].startswith("could not read the job queue (the app's HireFire")
    finally:
        released.set()
        services.db.dispose()


def test_an_endpoint_unread_for_ten_minutes_is_an_alert_that_says_why(
    app, config, heroku, slack, monkeypatch, tmp_path
):
    """Held quietly every tick, a worker type would stay where it is through any backlog
    with only `autoscale APP status` to say so: the watch tick raises it in the channel."""
    from bot.worker.main import Worker

    url, _ = app
    services, scaler, said = _tick_against(
        config, monkeypatch, tmp_path, {"myapp": f"{url}/status500"}
    )
    worker = Worker(config)
    try:
        for tick in range(36):  # 9 minutes of 15 s ticks: not yet
            scaler.tick(NOW + timedelta(seconds=15 * tick))
        worker.watch(NOW + timedelta(minutes=9))
        worker.send_alerts(NOW + timedelta(minutes=9))
        assert slack.messages("CMYAPP") == []
        for tick in range(36, 41):
            scaler.tick(NOW + timedelta(seconds=15 * tick))
        assert worker.watch(NOW + timedelta(minutes=10)) == 1
        worker.send_alerts(NOW + timedelta(minutes=10))
        [alert] = slack.messages("CMYAPP")
        assert "*myapp* job queue unread for `worker` since " in alert["text"]
        assert alert["text"].endswith(
            "Last: could not read the job queue (the app's HireFire endpoint "
            "answered 500 instead of its queues; the app's logs say why): worker stays at 1."
        )
        assert said == []  # the tick itself still tells the channel nothing
    finally:
        worker.db.dispose()
        services.db.dispose()


def test_a_type_the_endpoint_never_lists_is_an_alert_that_names_a_near_miss(
    app, config, heroku, slack, monkeypatch, tmp_path
):
    """An endpoint that answers, but never with the type (`Worker` for `worker`, or `[]`
    from an app whose hirefire-resource names no dyno), held the type every tick through
    any backlog with only `autoscale APP status` to say so."""

    url, _ = app
    services, scaler, said = _tick_against(config, monkeypatch, tmp_path, {"myapp": f"{url}/cased"})
    try:
        alert = _alert_after_ten_minutes(config, scaler, slack, "CMYAPP")
        assert "*myapp* job queue unread for `worker` since " in alert
        assert alert.endswith(
            "Last: could not read the job queue (the endpoint lists no worker, "
            "but Worker: names must match the process type exactly): worker stays at 1."
        )
        assert said == []
    finally:
        services.db.dispose()


def test_one_good_read_or_a_stopped_autoscaler_ends_the_unread_run():
    from policies.detectors import QueueRead, queue_unread

    def reads(ptype: str, minutes: int, read_at: int | None = None) -> list[QueueRead]:
        return [
            QueueRead(NOW + timedelta(seconds=15 * t), ptype, None if t == read_at else "why")
            for t in range(4 * minutes + 1)
        ]

    later = NOW + timedelta(minutes=12)
    both = reads("worker", 12) + reads("mailer", 12, read_at=40)  # mailer read at 10 min
    assert [(e.subject, e.detail) for e in queue_unread("myapp", both, later)] == [
        ("worker", "why.")
    ]
    # The autoscaler stopped ticking 3 minutes ago: nobody knows what holds since.
    assert queue_unread("myapp", reads("worker", 12), later + timedelta(minutes=3)) == []


def test_credentials_in_the_queue_url_are_sent_as_basic_auth(app):
    url, _ = app
    with_credentials = url.replace("http://", "http://user:pass@")
    assert fetch_queue_info(f"{with_credentials}/basic", TOKEN) == {"worker": 2.0}
    with pytest.raises(QueueInfoError, match="answered 401"):
        fetch_queue_info(f"{url}/basic", TOKEN)


@pytest.mark.parametrize("token", ["a/b", "a?b=c", "a#b", "a b", "a%2Fb", "ü/ß"])
def test_a_token_of_any_characters_is_sent_whole_and_masked_whole(app, token):
    # `/`, `?`, `#` or a space had cut the path short (`/hirefire/a?b=c/info` asks for
    # `/hirefire/a`), and the log kept what followed the cut: `/hirefire/[redacted]/b/info`.
    url, paths = app
    assert fetch_queue_info(f"{url}/good", token) == {"worker": 4.0}
    sent = paths[-1]
    assert sent.startswith("/good/hirefire/") and sent.endswith("/info")
    assert urllib.parse.unquote(sent.split("/")[3]) == token
    record = logging.makeLogRecord({"msg": "GET %s", "args": (hirefire.info_url(url, token),)})
    logged = LogfmtFormatter().format(record)
    assert logged.endswith(f'msg="GET {url}/hirefire/[redacted]/info"'), logged


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy as Fixie or QuotaGuard runs one: it answers for the app itself and
    notes what it was asked (a GET by absolute URL, or a CONNECT it refuses)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.asked.append(("GET", self.path, self.headers.get("Proxy-Authorization")))  # type: ignore[attr-defined]
        body = b'[{"name": "worker", "value": 6}]'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.server.asked.append(("CONNECT", self.path, self.headers.get("Proxy-Authorization")))  # type: ignore[attr-defined]
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch) -> Iterator[list[tuple[str, str, str | None]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    server.asked = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    where = f"http://fixie:s3cret@127.0.0.1:{server.server_port}"
    monkeypatch.setenv("HTTP_PROXY", where)
    monkeypatch.setenv("HTTPS_PROXY", where)
    yield server.asked  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_poll_goes_through_the_proxy_the_environment_names(proxy, app, monkeypatch):
    # Since it moved from requests to urllib3 it had gone straight to the app, from an
    # address the app's allow-list may not hold, whatever HTTP(S)_PROXY said.
    auth = "Basic Zml4aWU6czNjcmV0"  # fixie:s3cret
    info = fetch_queue_info("http://queue.app.invalid", TOKEN)
    assert info == {"worker": 6.0}
    assert proxy == [("GET", f"http://queue.app.invalid/hirefire/{TOKEN}/info", auth)]
    # HTTPS goes through a tunnel the proxy cannot read into; this one refuses it.
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info("https://queue.app.invalid:8443", TOKEN)
    assert str(caught.value) == (
        "cannot reach the app's HireFire endpoint: "
        "the proxy the bot's HTTPS_PROXY names refused to connect to it"
    )
    assert proxy[1] == ("CONNECT", "queue.app.invalid:8443", auth)
    # NO_PROXY names the hosts reached directly, as requests read it.
    url, _ = app
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert fetch_queue_info(f"{url}/good", TOKEN) == {"worker": 4.0}
    assert len(proxy) == 2


def test_one_unreachable_endpoint_for_two_worker_types_is_one_alert_naming_both(
    config, heroku, slack, monkeypatch, tmp_path
):
    """Both types are read from the app's one endpoint: when it cannot be reached, that is
    one cause, and two alerts for it (one a type) had read as two troubles."""
    import socket

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    heroku.add_app("twoq", formation={"worker": (1, "standard-1x"), "mailer": (1, "standard-1x")})
    services, scaler, _ = _tick_against(
        config,
        monkeypatch,
        tmp_path,
        {"twoq": f"http://127.0.0.1:{port}"},
        types={"twoq": ("worker", "mailer")},
    )
    try:
        alert = _alert_after_ten_minutes(config, scaler, slack, "CTWOQ")
        assert "*twoq* job queue unread for `mailer`, `worker` since " in alert
        assert alert.endswith(
            "Last: could not read the job queue (cannot reach the app's HireFire endpoint: "
            "no connection could be made to it): mailer stays at 1; worker stays at 1."
        )
    finally:
        services.db.dispose()


def test_types_held_for_different_causes_stay_apart_and_one_type_reads_as_before():
    from policies.detectors import QueueRead, queue_unread
    from policies.worker_autoscale import unread_reason

    def reads(ptype: str, why: str) -> list[QueueRead]:
        held = unread_reason(why, ptype, 2)
        return [QueueRead(NOW + timedelta(seconds=15 * t), ptype, held) for t in range(49)]

    later = NOW + timedelta(minutes=12)
    down = "the app's HireFire endpoint answered 500 instead of its queues"
    found = queue_unread(
        "myapp",
        reads("worker", down)
        + reads("mailer", down)
        + reads("urgent", "the endpoint lists no urgent"),
        later,
    )
    assert [(e.subject, e.detail) for e in found] == [
        (
            "mailer, worker",
            f"could not read the job queue ({down}): mailer stays at 2; worker stays at 2.",
        ),
        (
            "urgent",
            "could not read the job queue (the endpoint lists no urgent): urgent stays at 2.",
        ),
    ]
    [alone] = queue_unread("myapp", reads("worker", down), later)
    assert alone.detail == unread_reason(down, "worker", 2) + "."


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            urllib3.exceptions.NewConnectionError(None, "refused"),
            ": no connection could be made to it",
        ),
        (
            urllib3.exceptions.NameResolutionError("queue.app", None, OSError("no such host")),
            ": its host name does not resolve; check the registry's queue_url",
        ),
        (urllib3.exceptions.SSLError("bad certificate"), ": its TLS handshake failed"),
        (urllib3.exceptions.ProtocolError("reset"), ": the connection dropped before it answered"),
        (ConnectionResetError(104, "reset"), ": the connection dropped before it answered"),
        (
            urllib3.exceptions.LocationParseError("host:12ab"),
            ": the registry's queue_url is no address the bot can call; write it as "
            "https://HOST or https://HOST:PORT",
        ),
    ],
)
def test_an_unreachable_endpoint_is_said_in_words_not_a_python_class_name(monkeypatch, error, said):
    # The alert, `autoscale APP status` and App Home had read "cannot reach the app's
    # HireFire endpoint (NewConnectionError)": a class name, which says nothing to fix.
    def refused(*_args: object) -> tuple[int, bytes]:
        raise error

    monkeypatch.setattr(hirefire, "get_once", refused)
    with pytest.raises(QueueInfoError) as caught:
        fetch_queue_info("https://queue.app", TOKEN)
    assert str(caught.value) == "cannot reach the app's HireFire endpoint" + said
