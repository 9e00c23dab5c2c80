"""Metrics windows: counting, epoch alignment, exact merges across aggregators, storage,
and the read-side summary and sparkline."""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics.aggregate import (
    WINDOW_SECONDS,
    Aggregator,
    Folding,
    Percentiles,
    Window,
    sparkline,
    summarize,
)
from policies.logplex import ParsedBody, parse_body
from policies.sketch import Sketch

NOON = 1_714_564_800  # 2024-05-01T12:00:00Z, a multiple of 10


def stamp(second: float) -> str:
    whole = int(second)
    hours, rest = divmod(whole - NOON, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"2024-05-01T{12 + hours:02d}:{minutes:02d}:{seconds:02d}.{int(second % 1 * 1e6):06d}+00:00"
    )


def frame(message: str) -> bytes:
    data = message.encode() + b"\n"
    return b"%d %s" % (len(data), data)


def router(second: float, dyno: str, status: int, service: int, code: str | None = None) -> bytes:
    head = f'at=error code={code} desc="Request timeout"' if code else "at=info"
    return frame(
        f"<158>1 {stamp(second)} host heroku router - {head} method=GET "
        f'path="/x" host=shop.herokuapp.com request_id=r fwd="1.2.3.4" dyno={dyno} '
        f"connect=1ms service={service}ms status={status} bytes=10 protocol=https"
    )


def stream(lines: int, seed: int = 11, seconds: float = 95.0) -> list[bytes]:
    """A seeded minute and a half of traffic: router lines of every kind, queue and runtime
    lines, cut into bodies of 37 frames (so bodies straddle windows)."""
    rng = random.Random(seed)
    frames = []
    for i in range(lines):
        second = NOON + seconds * i / lines
        dyno = f"web.{rng.randint(1, 4)}"
        roll = rng.random()
        if roll < 0.8:
            status = rng.choice((200, 200, 200, 200, 201, 302, 304, 404, 500, 503))
            code = "H12" if status == 503 and rng.random() < 0.5 else None
            service = int(rng.lognormvariate(math.log(60), 1.0))
            frames.append(router(second, dyno, status, service, code))
        elif roll < 0.9:
            queue = rng.choice(("3ms", "0ms", "12.5ms", "0.2s"))
            frames.append(
                frame(f"<190>1 {stamp(second)} host app {dyno} - [hirefire:router] queue={queue}")
            )
        elif roll < 0.95:
            load = rng.randint(0, 300) / 100
            frames.append(
                frame(
                    f"<45>1 {stamp(second)} host heroku {dyno} - source={dyno} dyno=heroku.1.a "
                    f"sample#load_avg_1m={load} sample#memory_total={rng.randint(100, 500)}.00MB"
                )
            )
        else:
            frames.append(frame(f"<190>1 {stamp(second)} host app {dyno} - GET / 200"))
    return [b"".join(frames[i : i + 37]) for i in range(0, len(frames), 37)]


def windows_of(bodies: list[bytes], app: str = "shop") -> list[Window]:
    aggregator = Aggregator()
    for body in bodies:
        aggregator.ingest(app, parse_body(body))
    return aggregator.drain()


def merged(*parts: list[Window]) -> list[Window]:
    by_key: dict[tuple[str, int], Window] = {}
    for windows in parts:
        for window in windows:
            key = (window.app, window.start)
            by_key[key] = by_key[key].merge(window) if key in by_key else window
    return [by_key[key] for key in sorted(by_key)]


# ---------------------------------------------------------------------------------------------
# Counting.


def test_a_window_counts_requests_statuses_codes_and_dynos() -> None:
    body = b"".join(
        [
            router(NOON + 1, "web.1", 200, 30),
            router(NOON + 2, "web.1", 200, 50),
            router(NOON + 3, "web.2", 404, 5),
            router(NOON + 4, "web.2", 503, 30000, "H12"),
            router(NOON + 9.999, "web.3", 302, 7),
        ]
    )
    [window] = windows_of([body])
    assert (window.app, window.start, window.end, window.requests) == ("shop", NOON, NOON + 10, 5)
    assert window.statuses == {"2xx": 2, "3xx": 1, "4xx": 1, "5xx": 1}
    assert window.codes == {"H12": 1}
    assert window.dynos == {"web.1": 2, "web.2": 2, "web.3": 1}
    assert window.service.count == 5 and window.service.max == 30000
    assert window.connect.count == 5 and window.connect.quantile(0.5) == 1


def test_windows_are_aligned_to_the_epoch_by_log_time() -> None:
    body = router(NOON + 9.999999, "web.1", 200, 1) + router(NOON + 10, "web.1", 200, 1)
    windows = windows_of([body])
    assert [(w.start, w.requests) for w in windows] == [(NOON, 1), (NOON + 10, 1)]
    assert all(w.start % WINDOW_SECONDS == 0 for w in windows_of(stream(500)))


def test_requests_that_reached_no_dyno_count_without_timings() -> None:
    h10 = frame(
        f"<158>1 {stamp(NOON)} host heroku router - at=error code=H10 "
        'desc="App crashed" method=GET path="/" host=h fwd=1.2.3.4 dyno= connect= service= '
        "status=503 bytes="
    )
    [window] = windows_of([h10])
    assert (window.requests, window.dynos, window.codes) == (1, {}, {"H10": 1})
    assert window.statuses == {"5xx": 1} and window.service.count == 0


@pytest.mark.parametrize(("code", "load"), [("H80", 1), ("H10", 1), ("H99", 1), ("H14", 2)])
def test_requests_the_router_answered_itself_are_no_load(code, load) -> None:
    # The maintenance page (H80), a crashed app (H10), Heroku's error (H99): no dyno was
    # reached, so no dyno carried them; they had counted in the minute counts an `rpm:`
    # target reads. H14 (no web dynos) stays: it is the load dynos should start for.
    page = frame(
        f"<158>1 {stamp(NOON + 1)} host heroku router - at=info code={code} "
        'desc="Maintenance mode" method=GET path="/" host=h fwd=1.2.3.4 dyno= connect= '
        "service= status=503 bytes="
    )
    [window] = windows_of([page + router(NOON + 2, "web.1", 200, 5)])
    assert (window.requests, window.load, window.statuses) == (2, load, {"2xx": 1, "5xx": 1})
    assert Folding().add_document(window.to_dict()) == load


def test_queue_time_and_runtime_metrics_land_in_their_window() -> None:
    body = b"".join(
        [
            frame(f"<190>1 {stamp(NOON + 1)} host app web.1 - [hirefire:router] queue=4ms"),
            frame(f"<190>1 {stamp(NOON + 2)} host app web.1 - measure#queue=0.010s"),
            frame(
                f"<45>1 {stamp(NOON + 3)} host heroku web.1 - source=web.1 dyno=heroku.1.a "
                "sample#load_avg_1m=0.50 sample#memory_total=100.00MB"
            ),
            frame(
                f"<45>1 {stamp(NOON + 8)} host heroku web.1 - source=web.1 dyno=heroku.1.a "
                "sample#load_avg_1m=0.75"
            ),
        ]
    )
    [window] = windows_of([body])
    assert window.requests == 0
    assert (window.queue.count, window.queue.min, window.queue.max) == (2, 4.0, 10.0)
    assert window.runtime == {
        "web.1": {"load_avg_1m": (NOON + 8, 0.75), "memory_total": (NOON + 3, 100.0)}
    }


def test_drain_takes_everything_once() -> None:
    aggregator = Aggregator()
    aggregator.ingest("shop", parse_body(router(NOON, "web.1", 200, 3)))
    assert len(aggregator.drain()) == 1
    assert aggregator.drain() == []


def test_apps_are_kept_apart() -> None:
    aggregator = Aggregator()
    aggregator.ingest("shop", parse_body(router(NOON, "web.1", 200, 3)))
    aggregator.ingest("blog", parse_body(router(NOON, "web.1", 200, 3)))
    aggregator.ingest("shop", parse_body(router(NOON + 1, "web.2", 200, 3)))
    assert [(w.app, w.requests) for w in aggregator.drain()] == [("blog", 1), ("shop", 2)]


def test_threads_ingesting_at_once_lose_nothing() -> None:
    aggregator = Aggregator()
    parsed = parse_body(b"".join(router(NOON + i % 30, "web.1", 200, i) for i in range(200)))

    def ingest() -> None:
        for _ in range(25):
            aggregator.ingest("shop", parsed)

    threads = [threading.Thread(target=ingest) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(w.requests for w in aggregator.drain()) == 8 * 25 * 200


# ---------------------------------------------------------------------------------------------
# Merging: two aggregators on halves of a stream add up to one aggregator on all of it.


@pytest.mark.parametrize("cut", [1, 7, 13, 20, 26])
def test_two_halves_merged_equal_the_whole(cut: int) -> None:
    bodies = stream(1000)
    whole = windows_of(bodies)
    halves = merged(windows_of(bodies[:cut]), windows_of(bodies[cut:]))
    assert halves == whole
    for a, b in zip(halves, whole, strict=True):
        for name in ("service", "connect", "queue"):
            mine, theirs = getattr(a, name), getattr(b, name)
            assert mine.bins == theirs.bins and mine.zero_count == theirs.zero_count
    now = NOON + 100
    assert summarize(halves, now, 1) == summarize(whole, now, 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 27), max_size=5), st.randoms(use_true_random=False))
def test_any_split_in_any_order_merges_to_the_whole(cuts: list[int], rng: random.Random) -> None:
    bodies = stream(1000)
    bounds = [0, *sorted(cuts), len(bodies)]
    parts = [windows_of(bodies[a:b]) for a, b in itertools.pairwise(bounds)]
    rng.shuffle(parts)
    assert merged(*parts) == windows_of(bodies)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 27), max_size=5), st.randoms(use_true_random=False))
def test_folding_stored_documents_equals_folding_decoded_windows(
    cuts: list[int], rng: random.Random
) -> None:
    # Compaction's fast path (add_document) against decoding each part first (add), on
    # JSON round-tripped parts, at the stored start and rolled up to the minute.
    bodies = stream(1000)
    bounds = [0, *sorted(cuts), len(bodies)]
    parts = [w for a, b in itertools.pairwise(bounds) for w in windows_of(bodies[a:b])]
    rng.shuffle(parts)
    documents = [json.loads(json.dumps(w.to_dict())) for w in parts]
    for minute in (False, True):
        slow, fast = Folding(), Folding()
        for document in documents:
            window = Window.from_dict(document)
            start = window.start // 60 * 60 if minute else None
            slow.add(window if start is None else replace(window, start=start))
            assert fast.add_document(document, start) == window.load
        assert sorted(fast.windows(), key=_key) == sorted(slow.windows(), key=_key)
    assert sorted(Folding().windows(), key=_key) == []


def _key(window: Window) -> tuple[str, int]:
    return (window.app, window.start)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("requests"),
        lambda d: d.__setitem__("start", 5),
        lambda d: d.__setitem__("statuses", {"2xx": -1}),
        lambda d: d["service"].__setitem__("zero", -1),
        lambda d: d.__setitem__("runtime", {"web.1": {"load": [1]}}),
    ],
)
def test_folding_refuses_a_damaged_document_like_from_dict(damage) -> None:
    document = json.loads(json.dumps(windows_of(stream(200))[0].to_dict()))
    document["runtime"] = {"web.1": {"load": [NOON, 0.5]}}
    Folding().add_document(json.loads(json.dumps(document)))  # undamaged: taken
    damage(document)
    with pytest.raises(ValueError):
        Window.from_dict(document)
    with pytest.raises(ValueError):
        Folding().add_document(document)


def test_the_merge_test_can_fail_if_a_half_is_lost() -> None:
    bodies = stream(1000)
    assert merged(windows_of(bodies[:10])) != windows_of(bodies)


def test_merge_refuses_windows_of_another_app_or_time() -> None:
    window = Window("shop", NOON)
    with pytest.raises(ValueError):
        window.merge(Window("blog", NOON))
    with pytest.raises(ValueError):
        window.merge(Window("shop", NOON + 10))


def test_merge_leaves_both_windows_unchanged() -> None:
    a, b = windows_of(stream(300)[:4])[0], windows_of(stream(300)[:4])[0]
    before = a.to_dict()
    a.merge(b)
    assert a.to_dict() == before


def test_runtime_merge_keeps_the_latest_sample_in_either_order() -> None:
    early = Window("shop", NOON, runtime={"web.1": {"load_avg_1m": (NOON + 1, 0.5)}})
    late = Window("shop", NOON, runtime={"web.1": {"load_avg_1m": (NOON + 9, 0.1)}})
    assert early.merge(late).runtime == late.merge(early).runtime == late.runtime


# ---------------------------------------------------------------------------------------------
# Storage.


def test_windows_round_trip_through_json() -> None:
    for window in windows_of(stream(600)):
        stored = json.loads(json.dumps(window.to_dict()))
        assert Window.from_dict(stored) == window


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("requests"),
        lambda d: d.__setitem__("start", NOON + 3),
        lambda d: d["dynos"].__setitem__("web.1", -1),
        lambda d: d["service"].__setitem__("zero", -1),
        lambda d: d.__setitem__("runtime", {"web.1": {"load_avg_1m": []}}),
    ],
)
def test_damaged_windows_are_refused(damage) -> None:
    stored = windows_of(stream(300))[0].to_dict()
    damage(stored)
    with pytest.raises(ValueError):
        Window.from_dict(stored)


# ---------------------------------------------------------------------------------------------
# Reading: summarize and sparkline.


def test_summarize_rates_percentiles_errors_and_codes() -> None:
    bodies = stream(3000, seconds=179.0)
    windows = windows_of(bodies)
    parsed = [parse_body(body) for body in bodies]
    now = NOON + 185  # the window 180..190 is still filling: left out
    summary = summarize(windows, now, 3)
    counted = [r for p in parsed for r in p.requests if r.time < NOON + 180]
    assert (summary.since, summary.until) == (NOON, NOON + 180)
    assert summary.requests == len(counted)
    assert summary.requests_per_minute == pytest.approx(len(counted) / 3)
    assert sum(summary.per_minute) == summary.requests and len(summary.per_minute) == 3
    assert summary.per_minute[0] == sum(r.time < NOON + 60 for r in counted)
    web1 = sum(r.dyno == "web.1" for r in counted)
    assert summary.dynos["web.1"] == pytest.approx(web1 / 3)
    fives = sum(500 <= (r.status or 0) < 600 for r in counted)
    assert summary.error_rate == pytest.approx(fives / len(counted))
    assert summary.codes == {"H12": sum(r.code == "H12" for r in counted)}
    services = sorted(r.service for r in counted if r.service is not None)
    assert isinstance(summary.service, Percentiles)
    for got, q in zip(
        (summary.service.p50, summary.service.p95, summary.service.p99),
        (0.5, 0.95, 0.99),
        strict=True,
    ):
        want = services[math.floor(q * (len(services) - 1))]
        assert abs(got - want) <= 0.01 * want + 1e-9
    assert summary.queue is not None and summary.queue.p99 <= 200.0 * 1.01
    assert set(summary.runtime) <= {"web.1", "web.2", "web.3", "web.4"}


def test_summarize_of_nothing() -> None:
    summary = summarize([], NOON + 600, 5)
    assert (summary.app, summary.requests, summary.per_minute) == (None, 0, (0,) * 5)
    assert (summary.error_rate, summary.service, summary.queue) == (None, None, None)


def test_summarize_takes_one_app() -> None:
    with pytest.raises(ValueError):
        summarize([Window("a", NOON), Window("b", NOON)], NOON + 60, 1)
    with pytest.raises(ValueError):
        summarize([], NOON, 0)


def test_summarize_leaves_out_windows_outside_the_range() -> None:
    windows = [
        Window("shop", NOON - 10, requests=100),
        Window("shop", NOON, requests=1),
        Window("shop", NOON + 50, requests=2),
        Window("shop", NOON + 60, requests=1000),  # still filling at now
    ]
    summary = summarize(windows, NOON + 61, 1)
    assert (summary.requests, summary.per_minute, summary.app) == (3, (3,), "shop")


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
        ([], ""),
        ([0, 0, 0], "▁▁▁"),
        ([5, 5], "██"),
        ([10, None, 0, math.nan, 5], "█ ▁ ▅"),
        ([None, None], "  "),
        ([-6, 0, 8], "▁▄█"),
    ],
)
def test_sparkline(values: list[float | None], line: str) -> None:
    assert sparkline(values) == line


def test_sparkline_of_a_summary() -> None:
    summary = summarize(windows_of(stream(2000, seconds=299.0)), NOON + 300, 5)
    assert len(sparkline(summary.per_minute)) == 5


def test_window_defaults_are_empty() -> None:
    window = Window("shop", NOON)
    assert (window.requests, window.service, window.queue) == (0, Sketch(), Sketch())
    assert ParsedBody().frames == 0


def test_values_no_parser_would_give_are_left_out_and_the_rest_is_kept() -> None:
    """Defence behind the parser's bounds: one absurd value must not make `drain()` raise
    ("int too large to convert to float") and lose every window it held."""
    from policies.logplex import QueueSample, RouterLine, RuntimeSample

    def line(service: object) -> RouterLine:
        return RouterLine(NOON + 1, "web.1", 200, None, service, 1, "")  # type: ignore[arg-type]

    aggregator = Aggregator()
    aggregator.ingest(
        "myapp",
        ParsedBody(
            requests=[line(10**400), line(-5), line(float("nan")), line(30)],
            queue=[QueueSample(NOON + 2, "web.1", math.inf), QueueSample(NOON + 2, "web.1", 4.0)],
            runtime=[RuntimeSample(NOON + 3, "web.1", None, {"load": math.nan, "memory": 2.0})],
        ),
    )
    aggregator.ingest("other", ParsedBody(requests=[line(12)]))
    windows = aggregator.drain()
    assert [(w.app, w.requests, w.service.count, w.queue.count) for w in windows] == [
        ("myapp", 4, 1, 1),
        ("other", 1, 1, 0),
    ]
    assert windows[0].runtime == {"web.1": {"memory": (NOON + 3, 2.0)}}
    assert aggregator.dropped == 5
    for window in windows:  # PostgreSQL's JSON takes no NaN or Infinity
        json.dumps(window.to_dict(), allow_nan=False)
