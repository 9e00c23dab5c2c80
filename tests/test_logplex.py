"""Logplex drain bodies: Heroku's documented examples, every router error code, the queue
and runtime-metrics lines, malformed frames, and properties over arbitrary bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import logplex
from policies.logplex import (
    DrainHeaders,
    ParsedBody,
    QueueSample,
    RouterLine,
    parse_body,
    parse_router,
)

NOON = 1_714_564_800  # 2024-05-01T12:00:00Z


def frame(message: str | bytes) -> bytes:
    """One octet-counted frame; the length counts the message and its newline, as Heroku's."""
    data = message.encode() if isinstance(message, str) else message
    data += b"\n"
    return b"%d %s" % (len(data), data)


def router(text: str, stamp: str = "2024-05-01T12:00:00.123456+00:00") -> bytes:
    return frame(f"<158>1 {stamp} host heroku router - {text}")


INFO = (
    'at=info method=GET path="/api/x?y=1" host=myapp.herokuapp.com '
    "request_id=7bd5c2a3-5ed4-4f5b-b3a4-3a3ef4bb2e4c "
    'fwd="1.2.3.4" dyno=web.1 connect=1ms service=32ms status=200 bytes=1234 protocol=https'
)


# ---------------------------------------------------------------------------------------------
# Heroku's documented bodies.

# devcenter.heroku.com/articles/log-drains, "HTTPS drains": the body of one POST.
DEVCENTER_BODY = (
    b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
    b"119 <40>1 2012-11-30T06:45:26+00:00 host app web.3 - Starting process with command "
    b"`bundle exec rackup config.ru -p 24405`\n"
)
# devcenter.heroku.com/articles/labs-https-drains: the older header, drain token as PROCID.
LABS_BODY = (
    b"120 <40>1 2012-11-30T06:45:29+00:00 heroku web.3 d.73ea7440-270a-435a-a0ea-adf50b4e5f5a"
    b" - State changed from starting to up\n"
    b"156 <40>1 2012-11-30T06:45:26+00:00 heroku web.3 d.73ea7440-270a-435a-a0ea-adf50b4e5f5a"
    b" - Starting process with command `bundle exec rackup config.ru -p 24405`\n"
)
# github.com/heroku/logplex doc/README.http_drains.md: ten messages, Content-Length: 730.
LOGPLEX_README_BODY = (
    b"70 <174>1 2012-07-22T00:06:26+00:00 host erlang console - Hi from erlang\n" * 10
)


@pytest.mark.parametrize(
    ("body", "frames"), [(DEVCENTER_BODY, 2), (LABS_BODY, 2), (LOGPLEX_README_BODY, 10)]
)
def test_heroku_documented_bodies_frame_exactly(body: bytes, frames: int) -> None:
    parsed = parse_body(body)
    assert (parsed.frames, parsed.other, parsed.malformed) == (frames, frames, 0)
    assert parsed.requests == parsed.queue == parsed.runtime == []


def test_the_logplex_readme_body_has_its_documented_length() -> None:
    assert len(LOGPLEX_README_BODY) == 730


def test_an_info_router_line_gives_its_request() -> None:
    parsed = parse_body(router(INFO))
    assert parsed.requests == [RouterLine(NOON, "web.1", 200, None, 32, 1, INFO)]
    assert parsed.frames == 1 and parsed.malformed == 0


def test_parse_router_reads_every_field() -> None:
    assert parse_router(INFO) == logplex.RouterFields(
        at="info",
        code=None,
        desc=None,
        method="GET",
        path="/api/x?y=1",
        host="myapp.herokuapp.com",
        request_id="7bd5c2a3-5ed4-4f5b-b3a4-3a3ef4bb2e4c",
        fwd="1.2.3.4",
        dyno="web.1",
        connect=1,
        service=32,
        status=200,
        bytes=1234,
        protocol="https",
        sock=None,
        extra={},
    )


def test_parse_router_is_none_for_a_line_that_is_not_the_routers() -> None:
    assert parse_router("State changed from starting to up") is None


def test_router_2_0_fields_land_in_extra() -> None:
    text = INFO.replace("protocol=https", "protocol=http2.0 tls=true tls_version=tls1.3")
    fields = parse_router(text)
    assert fields is not None
    assert fields.protocol == "http2.0"
    assert fields.extra == {"tls": "true", "tls_version": "tls1.3"}


# ---------------------------------------------------------------------------------------------
# Every H code, with its example from devcenter.heroku.com/articles/error-codes.

_FWD = "host=myapp.herokuapp.com fwd=17.17.17.17"
H_CODES = [
    # (router message, code, at, sock, desc, dyno, connect, service, status, bytes)
    (
        f'at=error code=H10 desc="App crashed" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H10", "error", None, "App crashed", None, None, None, 503, None,
    ),
    (
        f'at=error code=H11 desc="Backlog too deep" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H11", "error", None, "Backlog too deep", None, None, None, 503, None,
    ),
    (
        f'at=error code=H12 desc="Request timeout" method=GET path="/" {_FWD} dyno=web.1 connect=6ms service=30001ms status=503 bytes=0',
        "H12", "error", None, "Request timeout", "web.1", 6, 30001, 503, 0,
    ),
    (
        f'at=error code=H13 desc="Connection closed without response" method=GET path="/" {_FWD} dyno=web.1 connect=3030ms service=9767ms status=503 bytes=0',
        "H13", "error", None, "Connection closed without response", "web.1", 3030, 9767, 503, 0,
    ),
    (
        f'at=error code=H14 desc="No web processes running" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H14", "error", None, "No web processes running", None, None, None, 503, None,
    ),
    (
        f'at=error code=H15 desc="Idle connection" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service=55449ms status=503 bytes=18',
        "H15", "error", None, "Idle connection", "web.1", 1, 55449, 503, 18,
    ),
    (
        f'at=error code=H17 desc="Poorly formatted HTTP response" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service=1ms status=503 bytes=0',
        "H17", "error", None, "Poorly formatted HTTP response", "web.1", 1, 1, 503, 0,
    ),
    (
        f'sock=backend at=error code=H18 desc="Server Request Interrupted" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service=1ms status=503 bytes=0',
        "H18", "error", "backend", "Server Request Interrupted", "web.1", 1, 1, 503, 0,
    ),
    (
        f'at=error code=H19 desc="Backend connection timeout" method=GET path="/" {_FWD} dyno=web.1 connect=5001ms service= status=503 bytes=',
        "H19", "error", None, "Backend connection timeout", "web.1", 5001, None, 503, None,
    ),
    (
        f'at=error code=H20 desc="App boot timeout" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H20", "error", None, "App boot timeout", None, None, None, 503, None,
    ),
    (
        f'at=error code=H21 desc="Backend connection refused" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service= status=503 bytes=',
        "H21", "error", None, "Backend connection refused", "web.1", 1, None, 503, None,
    ),
    (
        f'at=error code=H22 desc="Connection limit reached" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H22", "error", None, "Connection limit reached", None, None, None, 503, None,
    ),
    (
        f'at=error code=H23 desc="Endpoint misconfigured" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H23", "error", None, "Endpoint misconfigured", None, None, None, 503, None,
    ),
    (
        f'at=error code=H24 desc="Forced close" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service=80000ms status= bytes=18',
        "H24", "error", None, "Forced close", "web.1", 1, 80000, None, 18,
    ),
    (
        'at=error code=H25 desc="HTTP restriction: invalid content length" method=GET path="/" host=myapp.herokuapp.com request_id=3f336f1a-9be3-4791-afe3-596a1f2a481f fwd="17.17.17.17" dyno=web.1 connect=0 service=1 status=502 bytes=537',
        "H25", "error", None, "HTTP restriction: invalid content length", "web.1", 0, 1, 502, 537,
    ),
    (
        'at=error code=H26 desc="Request Error" cause="bad chunk" method=GET path="/" host=myapp.herokuapp.com request_id=3f336f1a-9be3-4791-afe3-596a1f2a481f fwd="17.17.17.17" dyno=web.1 connect=1 service=0 status=400 bytes=537',
        "H26", "error", None, "Request Error", "web.1", 1, 0, 400, 537,
    ),
    (
        f'sock=client at=warning code=H27 desc="Client Request Interrupted" method=POST path="/submit/" {_FWD} dyno=web.1 connect=1ms service=0ms status=499 bytes=0',
        "H27", "warning", "client", "Client Request Interrupted", "web.1", 1, 0, 499, 0,
    ),
    (
        f'at=warning code=H28 desc="Client Connection Idle" method=GET path="/" {_FWD} dyno=web.1 connect=1ms service=55449ms status=499 bytes=18',
        "H28", "warning", None, "Client Connection Idle", "web.1", 1, 55449, 499, 18,
    ),
    (
        'at=error code=H31 desc="Misdirected Request" method=GET path="/" host=example.com request_id=0e5bd0d9-e4c8-4b6b-a1b5-8fae2ee7a6d2 fwd="17.17.17.17" dyno= connect= service= status=421 bytes= protocol=http agent="Mozilla/5.0 (compatible; bot)"',
        "H31", "error", None, "Misdirected Request", None, None, None, 421, None,
    ),
    (
        f'at=info code=H80 desc="Maintenance mode" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H80", "info", None, "Maintenance mode", None, None, None, 503, None,
    ),
    (
        f'at=info code=H81 desc="Blank app" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H81", "info", None, "Blank app", None, None, None, 503, None,
    ),
    (
        f'at=info code=H82 desc="Free dyno quota exhausted" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H82", "info", None, "Free dyno quota exhausted", None, None, None, 503, None,
    ),
    (
        f'at=error code=H99 desc="Platform error" method=GET path="/" {_FWD} dyno= connect= service= status=503 bytes=',
        "H99", "error", None, "Platform error", None, None, None, 503, None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "code", "at", "sock", "desc", "dyno", "connect", "service", "status", "size"),
    H_CODES,
    ids=[row[1] for row in H_CODES],
)
def test_every_h_code_line_gives_its_fields(
    text: str,
    code: str,
    at: str,
    sock: str | None,
    desc: str,
    dyno: str | None,
    connect: int | None,
    service: int | None,
    status: int | None,
    size: int | None,
) -> None:
    parsed = parse_body(router(text))
    assert parsed.requests == [RouterLine(NOON, dyno, status, code, service, connect, text)]
    fields = parse_router(text)
    assert fields is not None
    assert (fields.code, fields.at, fields.sock, fields.desc) == (code, at, sock, desc)
    assert (fields.dyno, fields.connect, fields.service, fields.status) == (
        dyno,
        connect,
        service,
        status,
    )
    assert fields.bytes == size
    assert fields.method in ("GET", "POST") and fields.path in ("/", "/submit/")
    assert fields.host is not None and fields.fwd == "17.17.17.17"


def test_h26_keeps_its_cause_and_h31_its_agent() -> None:
    h26, h31 = parse_router(H_CODES[15][0]), parse_router(H_CODES[18][0])
    assert h26 is not None and h26.extra == {"cause": "bad chunk"}
    assert h31 is not None and h31.extra == {"agent": "Mozilla/5.0 (compatible; bot)"}


# ---------------------------------------------------------------------------------------------
# Queue time and runtime metrics.


def app_line(text: str, dyno: str = "web.2") -> bytes:
    return frame(f"<190>1 2024-05-01T12:00:03.5+00:00 host app {dyno} - {text}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[hirefire:router] queue=12ms", QueueSample(NOON + 3, "web.2", 12.0)),
        ("measure#queue=7.5ms", QueueSample(NOON + 3, "web.2", 7.5)),
        ("source=web.9 measure#queue=0.012s", QueueSample(NOON + 3, "web.9", 12.0)),
        ("at=info queue=0ms path=/", QueueSample(NOON + 3, "web.2", 0.0)),
    ],
)
def test_queue_time_lines(text: str, expected: QueueSample) -> None:
    parsed = parse_body(app_line(text))
    assert parsed.queue == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "Enqueued OrderMailer queue=default jid=abc",  # a job queue's name
        "queue=5",  # a bare number: could be a queue length
        "queue=-3ms",
        "queue=1e3ms",
        "queue=nanms",
        "GET /?queue=12ms 200",  # not a word of its own
        "queue=12ms.",
        # Free text around the word: what a visitor typed, logged by the app ("searched
        # for ..."), had been read as queue time, and the autoscaler added dynos for it.
        "User searched for queue=99999s",
        "[hirefire:router] searched queue=99999s",
        "queue=99999s in the search box",
    ],
)
def test_lines_that_only_look_like_queue_time_are_other(text: str) -> None:
    parsed = parse_body(app_line(text))
    assert (parsed.queue, parsed.other) == ([], 1)


def test_runtime_metrics_lines() -> None:
    load = (
        "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 "
        "sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99"
    )
    memory = (
        "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 "
        "sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_cache=0.00MB "
        "sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages "
        "sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"
    )
    stamp = "2024-05-01T12:00:07+00:00"
    body = frame(f"<45>1 {stamp} host heroku web.1 - {load}")
    body += frame(f"<45>1 {stamp} host heroku web.1 - {memory}")
    parsed = parse_body(body)
    assert [sample.samples for sample in parsed.runtime] == [
        {"load_avg_1m": 2.46, "load_avg_5m": 1.06, "load_avg_15m": 0.99},
        {
            "memory_total": 21.0,
            "memory_rss": 21.22,
            "memory_cache": 0.0,
            "memory_swap": 0.0,
            "memory_pgpgin": 348836.0,
            "memory_pgpgout": 343403.0,
            "memory_quota": 512.0,
        },
    ]
    assert {(s.time, s.dyno, s.instance) for s in parsed.runtime} == {
        (NOON + 7, "web.1", "heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456")
    }


# ---------------------------------------------------------------------------------------------
# Headers, timestamps, variants.


def test_drain_headers_are_read_case_insensitively() -> None:
    headers = {
        "Content-Type": "application/logplex-1",
        "LOGPLEX-MSG-COUNT": "10",
        "Logplex-Frame-Id": "09C557EAFCFB6CF2740EE62F62971098",
        "logplex-drain-token": "d.fc6b856b-3332-4546-93de-7d0ee272c3bd",
    }
    assert DrainHeaders.from_headers(headers) == DrainHeaders(
        10, "09C557EAFCFB6CF2740EE62F62971098", "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"
    )
    assert DrainHeaders.from_headers({"Logplex-Msg-Count": "ten"}) == DrainHeaders(None, None, None)


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-05-01T12:00:00.123456+00:00",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:00.5Z",
        "2024-05-01T14:00:00.999+02:00",
        "2024-05-01T06:30:00-05:30",
    ],
)
def test_timestamps_in_any_offset_read_as_the_same_second(stamp: str) -> None:
    assert [line.time for line in parse_body(router(INFO, stamp)).requests] == [NOON]


@pytest.mark.parametrize(
    "stamp",
    [
        "-",
        "2024-05-01 12:00:00+00:00",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00.12a456+00:00",
        "2024-05-01T12:00:00.+00:00",
        "2024-13-01T12:00:00+00:00",
        "2024-05-01T12:00:00+0000",
        "2024-05-01T12:00:00.123456+00:00garbage",
    ],
)
def test_a_line_without_a_real_timestamp_is_malformed(stamp: str) -> None:
    # Same-second good lines first, so a cached second cannot vouch for the bad stamp.
    parsed = parse_body(router(INFO) + router(INFO, stamp) + router(INFO))
    assert (len(parsed.requests), parsed.malformed) == (2, 1)


def test_the_shifted_router_header_is_still_the_router() -> None:
    parsed = parse_body(frame(f"<158>1 2024-05-01T12:00:00.1+00:00 heroku router - - {INFO}"))
    assert [line.status for line in parsed.requests] == [200]


def test_a_forwarded_for_cannot_pose_as_the_dyno() -> None:
    # Every injected token is in the memo tables already, from a real line.
    lie = "dyno=web.9 connect=9ms service=9ms status=500"
    real = INFO.replace("dyno=web.1 connect=1ms service=32ms status=200", lie)
    text = INFO.replace('fwd="1.2.3.4"', f'fwd="1.2.3.4 {lie} x"')
    parsed = parse_body(router(real) + router(text))
    assert parsed.requests[1] == RouterLine(NOON, "web.1", 200, None, 32, 1, text)


def test_memo_tables_empty_themselves_past_their_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logplex, "_MEMO_LIMIT", 5)
    # Fresh tables: lines the tests before it parsed may already hold these tokens, and a
    # token found takes the fast path, which never reaches the clearing (it had failed so,
    # 1,255 entries standing, in one run of the whole suite).
    for table in ("_DYNO", "_CONNECT", "_SERVICE", "_STATUS"):
        monkeypatch.setattr(logplex, table, {})
    body = b"".join(router(INFO.replace("service=32ms", f"service={n}ms")) for n in range(20))
    assert [line.service for line in parse_body(body).requests] == list(range(20))
    assert len(logplex._SERVICE) <= 6


# ---------------------------------------------------------------------------------------------
# Malformed frames: counted, skipped, never raised.


@pytest.mark.parametrize(
    ("bad", "malformed"),
    [
        (b"garbage without a length\n", 1),
        (b"x12 <158>1 2024-05-01T12:00:00+00:00 host heroku router - at=info\n", 1),
        (frame("<158>2 2024-05-01T12:00:00+00:00 host heroku router - at=info"), 1),  # version
        (frame("<192>1 2024-05-01T12:00:00+00:00 host heroku router - at=info"), 1),  # PRI
        (frame("158>1 2024-05-01T12:00:00+00:00 host heroku router - at=info"), 1),
        (frame("<158>1 2024-05-01T12:00:00+00:00 host heroku"), 1),  # fields missing
        (b"99999 <158>1 2024-05-01T12:00:00+00:00 host heroku router - at=info\n", 1),
    ],
)
def test_a_malformed_frame_is_counted_and_the_good_ones_around_it_kept(
    bad: bytes, malformed: int
) -> None:
    parsed = parse_body(router(INFO) + bad + router(INFO))
    # A length running past the body swallows nothing: the scanner resumes at the next line.
    assert parsed.malformed == malformed
    assert len(parsed.requests) == 2


def test_a_wrong_length_costs_the_frames_it_garbles_and_no_more() -> None:
    good = router(INFO)
    short = b"20" + good[good.index(b" ") :]  # says 20 bytes, holds ~270
    parsed = parse_body(good + short + good + good)
    assert len(parsed.requests) == 3
    assert parsed.malformed == 2  # the 20-byte frame, then the rest of its line


def test_a_truncated_last_frame_is_malformed() -> None:
    good = router(INFO)
    parsed = parse_body(good + good[:-40])
    assert (len(parsed.requests), parsed.malformed) == (1, 1)


def test_frames_without_newlines_and_with_newlines_inside_use_exact_octets() -> None:
    message = f"<158>1 2024-05-01T12:00:00+00:00 host heroku router - {INFO}".encode()
    no_newline = b"%d %s" % (len(message), message)
    inside = frame(b"<190>1 2024-05-01T12:00:00+00:00 host app web.1 - queue=3ms at=two\nlines")
    parsed = parse_body(no_newline + no_newline + inside)
    assert len(parsed.requests) == 2 and parsed.malformed == 0
    assert parsed.queue == [QueueSample(NOON, "web.1", 3.0)]


def test_utf8_is_counted_in_bytes() -> None:
    body = app_line('queue=4ms msg="café ✓ done"') + router(INFO)
    parsed = parse_body(body)
    assert parsed.queue == [QueueSample(NOON + 3, "web.2", 4.0)]
    assert len(parsed.requests) == 1 and parsed.malformed == 0


def test_stray_newlines_between_frames_are_not_frames() -> None:
    parsed = parse_body(b"\n" + router(INFO) + b"\r\n\n" + router(INFO))
    assert (len(parsed.requests), parsed.malformed) == (2, 0)


def test_an_empty_body_is_empty() -> None:
    assert parse_body(b"") == ParsedBody()


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    parsed = parse_body(body)
    assert parsed.malformed >= 0 and parsed.other >= 0
    # Every frame holds a space; every malformed one ends at a space, a newline or the end.
    assert parsed.frames + parsed.malformed <= body.count(b" ") + body.count(b"\n") + 1


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.just(router(INFO)),
            st.builds(lambda n: router(INFO)[:n], st.integers(0, 300)),
            st.just(frame("<158>1 2024-05-01T12:00:00+00:00 host heroku router - ")),
            st.just(app_line("queue=3ms")),
        ),
        max_size=8,
    )
)
def test_garbage_between_good_frames_never_raises(pieces: list[bytes]) -> None:
    parsed = parse_body(b"".join(pieces))
    assert len(parsed.requests) <= sum(p == router(INFO) for p in pieces) + len(pieces)


# ---------------------------------------------------------------------------------------------
# The fast path gives exactly what the exact scanner and the general reader give.

_token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789._-/"), max_size=8)
_quoted = st.text(st.sampled_from("abcdef 0123456789.=,"), max_size=12)
_DYNOS = ["", "web.1", "web.12", '"web.3"']


@st.composite
def router_texts(draw: st.DrawFn) -> str:
    fields = []
    if draw(st.booleans()):
        fields.append(f"sock={draw(st.sampled_from(['client', 'backend']))}")
    fields.append(f"at={draw(st.sampled_from(['info', 'warning', 'error']))}")
    if draw(st.booleans()):
        fields.append(f"code=H{draw(st.integers(10, 99))}")
        fields.append(f'desc="{draw(_quoted)}"')
    fields.append(f"method={draw(st.sampled_from(['GET', 'POST']))}")
    fields.append(f'path="/{draw(_token)}"')
    fields.append(f'fwd="{draw(_quoted)}"')
    fields.append(f"dyno={draw(st.sampled_from(_DYNOS))}")
    number = st.one_of(st.just(""), st.integers(0, 40000).map(str))
    fields.append(f"connect={draw(number)}{draw(st.sampled_from(['ms', '']))}")
    fields.append(f"service={draw(number)}{draw(st.sampled_from(['ms', '', 'xs']))}")
    fields.append(f"status={draw(st.one_of(number, _token))}")
    fields.append(f"bytes={draw(number)}")
    if draw(st.booleans()):
        fields.append(f'agent="{draw(_quoted)}"')
    return " ".join(fields)


@settings(max_examples=300)
@given(st.lists(router_texts(), min_size=1, max_size=6), st.booleans())
def test_fast_path_matches_the_exact_scanner_and_the_general_reader(
    texts: list[str], cold: bool
) -> None:
    if cold:
        for table in (logplex._DYNO, logplex._CONNECT, logplex._SERVICE, logplex._STATUS):
            table.clear()
    body = b"".join(router(text) for text in texts)
    fast = logplex._parse_by_lines(body.decode("ascii"))
    assert fast is not None
    assert fast == logplex._parse_by_octets(body) == parse_body(body)  # memo now warm
    for line, text in zip(fast.requests, texts, strict=True):
        fields = parse_router(text)
        assert fields is not None
        assert line == RouterLine(
            NOON, fields.dyno, fields.status, fields.code, fields.service, fields.connect, text
        )


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(
                lambda s: s.encode() + b"\n"
            ),
            router_texts().map(router),
            st.just(app_line("[hirefire:router] queue=5ms")),
        ),
        max_size=6,
    )
)
def test_both_scanners_agree_on_any_ascii_body(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    fast = logplex._parse_by_lines(body.decode("ascii"))
    if fast is not None:
        assert fast == logplex._parse_by_octets(body)


# ---------------------------------------------------------------------------------------------
# Hostile numbers and timestamps: bounded at parse, a bad frame skipped and counted.

_DIGITS = st.one_of(
    st.integers(0, 10**15).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),  # past int()'s 4,300-digit limit too
    st.sampled_from(["", "-1", "1e400", "inf", "NaN", "\xb2", "1_000", " 1"]),
)
_STAMPS = st.one_of(
    st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
        st.sampled_from(["", ".5", ".123456", "." + "9" * 5000]),
        st.one_of(
            st.just("Z"),
            st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)),
        ),
    ),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1" * 5000]),
)  # fmt: skip


@st.composite
def hostile_frames(draw: st.DrawFn) -> bytes:
    stamp = draw(_STAMPS)
    kind = draw(st.sampled_from(["router", "runtime", "queue", "prefix"]))
    if kind == "prefix":
        return draw(_DIGITS).encode() + b" <158>1 " + stamp.encode() + b" x\n"
    if kind == "router":
        text = (
            f"at=info method=GET path=/ host=h dyno=web.1 connect={draw(_DIGITS)}ms "
            f"service={draw(_DIGITS)}{draw(st.sampled_from(['ms', '']))} "
            f"status={draw(_DIGITS)} bytes={draw(_DIGITS)}"
        )
        return router(text, stamp)
    if kind == "runtime":
        return frame(
            f"<45>1 {stamp} host heroku web.1 - source=web.1 sample#load_avg_1m={draw(_DIGITS)}.{draw(_DIGITS)}"
        )
    return frame(f"<190>1 {stamp} host app web.1 - queue={draw(_DIGITS)}ms")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_frames(), max_size=6), st.binary(max_size=50))
def test_hostile_numbers_and_timestamps_never_raise_and_come_out_bounded(
    frames: list[bytes], junk: bytes
) -> None:
    for body in (b"".join(frames), b"".join(frames) + junk):
        parsed = parse_body(body)
        for line in parsed.requests:
            assert logplex.EARLIEST <= line.time < logplex.LATEST
            for number in (line.status, line.service, line.connect):
                assert number is None or 0 <= number < 10**12
        for sample in parsed.queue:
            assert logplex.EARLIEST <= sample.time < logplex.LATEST
            assert 0 <= sample.queue < 1e16
        for metrics in parsed.runtime:
            assert all(0 <= value < 1e13 for value in metrics.samples.values())


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01T12:00:00+24:00",
     "2024-05-01T12:00:00+00:60", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"],
)  # fmt: skip
def test_timestamps_out_of_range_make_a_frame_malformed(stamp: str) -> None:
    parsed = parse_body(router(INFO, stamp) + router(INFO))
    assert (len(parsed.requests), parsed.malformed) == (1, 1)


def test_a_length_prefix_of_5000_digits_is_one_malformed_frame() -> None:
    parsed = parse_body(b"1" * 5000 + b" <158>1 x\n" + router(INFO))
    assert (len(parsed.requests), parsed.malformed) == (1, 1)


def test_a_400_digit_timing_is_read_as_no_timing() -> None:
    [line] = parse_body(
        router(INFO.replace("service=32ms", "service=" + "9" * 400 + "ms"))
    ).requests
    assert (line.service, line.connect, line.status) == (None, 1, 200)
    assert DrainHeaders.from_headers({"Logplex-Msg-Count": "1" * 5000}).msg_count is None


@st.composite
def router_texts_with_repeated_keys(draw: st.DrawFn) -> str:
    """A router line with `connect=`, `service=`, `status=` or `dyno=` also before its ` dyno=`
    (forged drain input: Heroku never repeats a key), at the start or among the fields."""
    words = draw(router_texts()).split(" ")
    dyno = next(i for i, word in enumerate(words) if word.startswith("dyno="))
    number = st.integers(0, 40000).map(str)
    repeats = draw(
        st.lists(
            st.one_of(
                number.map(lambda n: f"connect={n}ms"),
                number.map(lambda n: f"service={n}ms"),
                st.one_of(number, _token).map(lambda s: f"status={s}"),
                st.sampled_from(_DYNOS).map(lambda d: f"dyno={d}"),
            ),
            min_size=1,
            max_size=3,
        )
    )
    at = draw(st.integers(0, dyno))
    return " ".join(words[:at] + repeats + words[at:])


@settings(max_examples=300)
@given(st.lists(router_texts_with_repeated_keys(), min_size=1, max_size=4))
def test_fast_path_and_general_reader_agree_on_repeated_keys(texts: list[str]) -> None:
    body = b"".join(router(text) for text in texts)
    exact = logplex._parse_by_octets(body)  # teaches the memo tables every token
    assert logplex._parse_by_lines(body.decode("ascii")) == exact
    for line, text in zip(exact.requests, texts, strict=True):
        fields = parse_router(text)
        assert fields is not None
        assert (line.dyno, line.status, line.service, line.connect) == (
            fields.dyno,
            fields.status,
            fields.service,
            fields.connect,
        )


def test_a_status_also_before_the_dyno_reads_the_same_on_both_paths() -> None:
    # The fast path had read 200 (after ` dyno=`), the general reader 500 (the first).
    text = INFO.replace("at=info", "status=500 at=info")
    body = router(INFO) + router(text)
    parsed = parse_body(body)
    assert [line.status for line in parsed.requests] == [200, 200]
    assert parsed == logplex._parse_by_octets(body)
    fields = parse_router(text)
    assert fields is not None and fields.status == 200
