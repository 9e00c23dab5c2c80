"""A very short closed loop (`benchmarks.closed_loop`): the Procfile's web and worker
processes on PostgreSQL, the fake Heroku's dyno model and router on a compressed clock. It
checks that the loop is closed (router lines reach the drain and the store, the worker
scales the fake from them, and the fake measures what it billed), not how fast or how close
to the simulator: that is the benchmark's to say."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import requests

from benchmarks.closed_loop import run_loop, window_csv
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.router import FakeRouter
from policies.simulator import Model, boot_delays, make_context, trace_from_rows

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_a_few_simulated_minutes_close_the_loop(tmp_path):
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    # Four quiet minutes, then four at ten times the rate: the worker must scale web up.
    trace = tmp_path / "step.csv"
    rows = ["timestamp,value"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for minute, value in enumerate([10, 10, 10, 10, 100, 100, 100, 100], start=1):
        rows.append(f"{start + timedelta(minutes=minute):%Y-%m-%d %H:%M:%S},{value}")
    trace.write_text("\n".join(rows) + "\n")
    outcome = run_loop(
        trace,
        minutes=8,
        speed=30.0,
        model=Model(service_s=1.0),
        peak_rpm=None,
        database_base=os.environ["TEST_DATABASE_URL"],
        workdir=tmp_path,
        say=lambda _: None,
    )
    assert outcome.lines_sent > 0
    assert outcome.lines_stored == outcome.lines_sent  # every router line reached the store
    assert outcome.scale_calls >= 1  # the worker scaled the fake from what the drain took
    assert outcome.decisions > 0
    assert outcome.loop_dyno_hours > 0 and outcome.sim_dyno_hours > 0
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def test_the_window_puts_the_peak_two_thirds_in_and_restamps_it(tmp_path):
    trace = tmp_path / "t.csv"
    values = [1, 2, 3, 4, 5, 9, 4, 5, 6, 7, 8, 1]
    lines = ["timestamp,value"] + [
        f"2024-01-01 00:{i + 1:02d}:00,{v}" for i, v in enumerate(values)
    ]
    trace.write_text("\n".join(lines) + "\n")
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    text = window_csv(trace, 6, start)
    rows = text.splitlines()[1:]
    assert [float(r.split(",")[1]) for r in rows] == [2, 3, 4, 5, 9, 4]
    assert rows[0].startswith("2030-06-01 12:01:00")


def test_the_router_serves_with_the_dynos_the_fake_runs_and_bills_them():
    """No processes: the router's lines and figures on a fake scaled over its HTTP API."""
    model = Model(service_s=1.0)
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    rows = [{"timestamp": f"2030-06-01 12:{m:02d}:00", "value": "100"} for m in range(1, 5)]
    # One dyno carries ~99 rpm within the SLO: 600 rpm swamps it, ten carry it easily.
    context = make_context(trace_from_rows("flat", rows), model, peak_rpm=600.0)
    now = {"t": start}
    sent: list[str] = []
    with FakeHeroku(boot_delays=boot_delays(model), clock=lambda: now["t"]) as heroku:
        heroku.add_app("loop", {"web": (1, "standard-1x")})
        router = FakeRouter(heroku, "loop", context, start, "http://127.0.0.1:9/drain/x")
        router.send = lambda frames, _id: sent.extend(frames)  # type: ignore[method-assign]

        def play(steps: range) -> None:
            for k in steps:
                now["t"] = start + timedelta(seconds=15 * k)
                part = router.begin_step(k)
                end = now["t"] + timedelta(seconds=15)
                router.send(router.lines(part, int(context.counted[k]), now["t"], end), "x")
                router.end_step(k, part)

        play(range(4))
        now["t"] = start + timedelta(minutes=1)
        answer = requests.patch(
            f"{heroku.url}/apps/loop/formation/web",
            json={"quantity": 10},
            headers={
                "Accept": "application/vnd.heroku+json; version=3",
                "Authorization": "Bearer test-key",
            },
            timeout=10,
        )
        assert answer.status_code == 200
        play(range(4, 16))
        hours = router.dyno_hours(start + timedelta(minutes=4))
    minutes = router.stats.per_minute
    assert router.stats.minutes == 4 and len(minutes) == 4
    assert minutes[0][1] > model.slo_ms and minutes[3][1] <= model.slo_ms
    assert router.stats.violation_minutes >= 1
    assert any("at=error code=H12" in line and "service=30000ms" in line for line in sent)
    assert any(" dyno=web.10 " in line for line in sent)  # the new dynos serve once booted
    assert any("[hirefire:router] queue=" in line for line in sent)
    # Billed: one dyno for the first minute, ten for the next three.
    assert hours == pytest.approx((1 * 60 + 10 * 180) / 3600)
