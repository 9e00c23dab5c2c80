"""The dyno simulator: the queueing model, boot delays, billing, the CLI's JSON, and the
offline optimum against static peak provisioning."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.simulate import load_trace, main
from policies.simulator import (
    Context,
    Model,
    Observation,
    Policy,
    Trace,
    default_peak_rpm,
    dynos_for,
    make_context,
    p95_mix,
    p95_one,
    rpm_per_dyno_at_slo,
    run,
    wait_tail,
)
from policies.simulator_baselines import POLICIES, Autoscaler, Optimum, Static

MODEL = Model()
START = datetime(2026, 6, 1, tzinfo=UTC)
RESULT_KEYS = {
    "trace",
    "policy",
    "peak_rpm",
    "hours",
    "dyno_hours",
    "slo_violation_minutes",
    "scale_actions",
    "api_calls",
    "max_dynos",
}


def trace(counts: list[float], interval: int = 300) -> Trace:
    return Trace("test.csv", START, interval, tuple(counts))


def p95_ms(rate_rps: float, dynos: float) -> float:
    return 1000 * p95_one(0.0, *wait_tail(MODEL, rate_rps, dynos))


class Scripted(Policy):
    """Starts with `first` dynos, asks for `then` at the first tick, and writes down what it
    saw at every tick."""

    name = "scripted"

    def __init__(self, first: int, then: int) -> None:
        self.first, self.then = first, then
        self.seen: list[tuple[float, int, int, float]] = []

    def start(self, context: Context) -> int:
        return self.first

    def tick(self, obs: Observation) -> int:
        self.seen.append((obs.seconds, obs.ready, obs.booting, obs.queue_p95_ms))
        return self.then


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=0.5, max_value=400.0),
    st.integers(min_value=1, max_value=40),
)
def test_more_dynos_lower_queue_time(rate: float, dynos: int) -> None:
    fewer, more = p95_ms(rate, dynos), p95_ms(rate, dynos + 1)
    assert more <= fewer
    # Past `rho_cap` the formula stops and the simulator's backlog takes over.
    if fewer > 0 and rate / (dynos + 1) < MODEL.rho_cap * MODEL.capacity_rps:
        assert more < fewer
    assert wait_tail(MODEL, rate, dynos + 1)[0] <= wait_tail(MODEL, rate, dynos)[0]


def test_queue_time_grows_with_utilisation_and_the_slo_rate_is_the_knee() -> None:
    capacity = MODEL.capacity_rps
    waits = [p95_ms(capacity * u, 1) for u in (0.2, 0.5, 0.7, 0.9, 0.95)]
    assert waits == sorted(waits) and waits[0] == 0 and waits[-1] > 2000
    per_dyno = rpm_per_dyno_at_slo(MODEL)
    assert 0.5 * capacity * 60 < per_dyno < 0.8 * capacity * 60
    assert p95_ms(per_dyno / 60, 1) <= MODEL.slo_ms < p95_ms(per_dyno * 1.01 / 60, 1)
    assert dynos_for(MODEL, 10 * per_dyno / 60) == 10
    assert dynos_for(MODEL, 10 * per_dyno * 1.01 / 60) == 11
    assert dynos_for(MODEL, 0.0) == 0


def test_pooled_minutes_lie_between_their_parts() -> None:
    calm = (100.0, 0.0, *wait_tail(MODEL, 10.0, 1))
    busy = (100.0, 0.0, *wait_tail(MODEL, 18.0, 1))
    one = p95_one(*calm[1:])
    assert p95_mix([calm, calm, calm, calm]) == pytest.approx(one, abs=1e-4)
    mixed = p95_mix([calm, busy, busy, calm])
    assert p95_one(*calm[1:]) < mixed < p95_one(*busy[1:])
    # A backlog's delay comes on top of the queue.
    assert p95_mix([(100.0, 2.0, *wait_tail(MODEL, 10.0, 1))]) >= 2.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_new_dynos_serve_only_after_their_boot_delay(seed: int) -> None:
    model = Model(seed=seed)
    # Enough traffic for five dynos, so one is swamped until the others are up.
    rate = 4.5 * rpm_per_dyno_at_slo(model)
    context = make_context(trace([rate * 5, rate * 5]), model, peak_rpm=rate)
    probe = Scripted(first=1, then=5)
    result = run(context, probe)
    asked = model.tick_s  # the first tick, at the end of the first step
    for seconds, ready, booting, _ in probe.seen:
        age = seconds - asked
        assert ready + booting == (1 if seconds == asked else 5)
        if age < model.boot_min_s:
            assert ready == 1, (seconds, ready)
        if age >= model.boot_max_s:
            assert ready == 5, (seconds, ready)
    waits = [q for _, _, _, q in probe.seen]
    assert waits[1] > model.slo_ms  # overloaded while they boot
    assert waits[-1] < model.slo_ms  # and fine once they serve
    # Booting dynos are billed: one dyno for the first step, then five.
    steps = len(context.rates)
    expected = (1 + 5 * (steps - 1)) * model.tick_s / 3600
    assert result.dyno_hours == pytest.approx(expected)
    assert result.scale_actions == 1 and result.api_calls == 1


def test_the_peak_is_scaled_to_the_requested_rate() -> None:
    counts = [10.0, 40.0, 20.0]
    context = make_context(trace(counts), MODEL, peak_rpm=6000)
    assert max(context.rates) * 60 == pytest.approx(6000)
    assert len(context.rates) == len(counts) * 300 // MODEL.tick_s
    default = make_context(trace(counts), MODEL)
    assert default.peak_rpm == default_peak_rpm(MODEL)
    assert default.required(default.peak_rpm / 60) == 10
    # Counted requests are noisy around the rate but add up to about the same traffic.
    assert sum(context.counted) == pytest.approx(sum(context.rates) * MODEL.tick_s, rel=0.02)


def test_static_bills_its_count_all_the_time() -> None:
    context = make_context(trace([100.0] * 12), MODEL)  # one hour
    result = run(context, Static(context))
    assert result.hours == pytest.approx(1.0)
    assert result.dyno_hours == pytest.approx(10.0)
    assert result.scale_actions == 0 and result.api_calls == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1000), min_size=2, max_size=12),
    st.integers(min_value=0, max_value=3),
)
def test_the_optimum_never_costs_more_than_static_peak(counts: list[float], seed: int) -> None:
    if max(counts) <= 0:
        return
    context = make_context(trace(counts), Model(seed=seed))
    optimum, static = run(context, Optimum(context)), run(context, Static(context))
    assert optimum.dyno_hours <= static.dyno_hours + 1e-9
    assert optimum.slo_violation_minutes == 0
    assert static.slo_violation_minutes == 0


def test_every_policy_runs_and_counts_its_api_calls() -> None:
    counts = [50.0, 400.0, 900.0, 300.0, 60.0, 1000.0, 20.0, 20.0] * 3
    context = make_context(trace(counts), MODEL)
    results = {name: run(context, factory(context)) for name, factory in POLICIES.items()}
    assert set(results) >= {"ours", "hirefire", "judoscale", "heroku", "hpa", "static", "optimum"}
    for result in results.values():
        assert result.api_calls >= result.scale_actions
        assert 0 <= result.slo_violation_minutes <= result.hours * 60
    hours = results["ours"].hours
    assert results["hpa"].api_calls == results["hpa"].scale_actions + int(hours * 240)
    assert results["heroku"].api_calls == results["heroku"].scale_actions
    assert results["optimum"].slo_violation_minutes == 0
    assert results["optimum"].dyno_hours <= results["static"].dyno_hours
    # The same seed replays the same run.
    again = run(context, POLICIES["ours"](context))
    assert again == results["ours"]


def test_ours_is_fed_whole_minutes_and_the_freshest_rate_as_the_worker_feeds_it() -> None:
    # `bot.worker.autoscale` gives `decide` one sample per whole minute (its requests) and
    # then the freshest rate; fed every tick's fresh rate instead, a minute's rate mixed
    # two minutes and the noise the policy measured read under half the real one.
    counts = [float(100 + 40 * (i % 3)) for i in range(40)]
    context = make_context(trace(counts, interval=60), MODEL)
    seen: list[list[tuple[datetime, float]]] = []

    class Spy(Autoscaler):
        def tick(self, obs: Observation) -> int:
            desired = super().tick(obs)
            seen.append([(s.at, s.rpm) for s in [*self.minutes]])
            return desired

    policy = Spy("ours", context, POLICIES["ours"](context).settings, None)  # type: ignore[attr-defined]
    run(context, policy)
    per_minute = 60 // MODEL.tick_s
    last = seen[-1]
    assert len(last) == 30  # `NOISE_SPAN` of whole minutes
    for at, rpm in last:
        k = int((at - START).total_seconds() // MODEL.tick_s) - 1
        assert (k + 1) % per_minute == 0  # stamped at the minute's end
        assert rpm == context.minute_rpm[k]  # that minute's requests


def _write_trace(path: Path, days: int = 2) -> Path:
    lines = ["timestamp,value"]
    moment = datetime(2014, 7, 1)
    for i in range(days * 288):
        hour = (i % 288) / 12
        value = 100 + 80 * math.sin(hour / 24 * 2 * math.pi)
        lines.append(f"{(moment + timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{value:.1f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_prints_one_json_object_per_policy(tmp_path: Path) -> None:
    path = _write_trace(tmp_path / "daily.csv")
    printed: list[str] = []
    assert main(["--trace", str(path), "--policy", "hpa", "--json"], out=printed.append) == 0
    result = json.loads("".join(printed))
    assert set(result) == RESULT_KEYS
    assert result["policy"] == "hpa" and result["trace"] == "daily.csv"
    assert result["peak_rpm"] == default_peak_rpm(MODEL)
    assert result["hours"] == pytest.approx(48.0)
    assert isinstance(result["slo_violation_minutes"], int) and result["dyno_hours"] > 48

    printed.clear()
    main(["--trace", str(path), "--policy", "all", "--peak-rpm", "4000", "--json"], printed.append)
    results = json.loads("".join(printed))
    assert [r["policy"] for r in results] == list(POLICIES)
    assert all(set(r) == RESULT_KEYS and r["peak_rpm"] == 4000 for r in results)

    printed.clear()
    main(["--trace", str(path), "--policy", "static"], printed.append)
    assert "static:" in printed[-1] and "dyno-hours" in printed[-1]


def test_cli_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--trace", str(tmp_path / "missing.csv"), "--json"], out=lambda _: None)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-07-01 00:00:00,1\n")
    with pytest.raises(SystemExit):
        main(["--trace", str(bad)], out=lambda _: None)
    with pytest.raises(SystemExit):
        main(["--trace", str(_write_trace(tmp_path / "ok.csv", 1)), "--peak-rpm", "0"])


def test_python_dash_m_runs_the_simulator(tmp_path: Path) -> None:
    path = _write_trace(tmp_path / "daily.csv", days=1)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.simulate",
            "--trace",
            str(path),
            "--policy",
            "optimum",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result = json.loads(done.stdout)
    assert result["policy"] == "optimum" and result["slo_violation_minutes"] == 0


def test_load_trace_reads_the_shared_format(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,value\n2015-02-26 21:42:53,57\n2015-02-26 21:47:53,43\n")
    loaded = load_trace(path)
    assert loaded.interval_s == 300
    assert loaded.counts == (57.0, 43.0)
    # The first interval ends at the first timestamp; ticks start on a whole minute.
    assert loaded.start == datetime(2015, 2, 26, 21, 37, tzinfo=UTC)


SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


@pytest.mark.skipif(
    not (SHARED_TRACES / "elb_request_count_8c0756.csv").exists(),
    reason="needs ../shared/traces",
)
def test_deploybot_simulate_subcommand_replays_a_shared_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.__main__ import main as deploybot

    trace = SHARED_TRACES / "elb_request_count_8c0756.csv"
    argv = ["simulate", "--trace", str(trace), "--policy", "static", "--peak-rpm", "4000"]
    assert deploybot([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == RESULT_KEYS
    assert result["policy"] == "static" and result["trace"] == trace.name
    assert result["peak_rpm"] == 4000 and result["slo_violation_minutes"] == 0
    assert result["dyno_hours"] == pytest.approx(result["max_dynos"] * result["hours"])

    assert deploybot(argv) == 0
    assert "static:" in capsys.readouterr().out

    # The simulator's own parser refuses what it cannot use, with its own usage line.
    with pytest.raises(SystemExit):
        deploybot(["simulate", "--trace", str(trace), "--policy", "nope"])
    assert "deploybot simulate" in capsys.readouterr().err


def test_simulate_app_replays_its_stored_traffic(config, monkeypatch):
    from bot.metrics.aggregate import Window
    from bot.metrics.replay import stored_trace
    from bot.metrics.store import MetricsStore
    from bot.services import Services
    from bot.simulate import main
    from policies.sketch import Sketch

    services = Services(config)
    try:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = int(now.timestamp()) - 3 * 3600
        windows = []
        for second in range(start, start + 3 * 3600, 10):
            # Two hours at 600 rpm, then an hour at 4,800: the replay must scale up.
            requests = 100 if second < start + 2 * 3600 else 800
            sketch = Sketch()
            sketch.add(80.0, requests)
            windows.append(
                Window("myapp", second, requests, dynos={"web.1": requests}, service=sketch)
            )
        MetricsStore(services.db).save(windows)
        trace = stored_trace(MetricsStore(services.db), "myapp", timedelta(days=1), now)
        assert trace is not None and trace.interval_s == 60
        assert len(trace.counts) == 180 and max(trace.counts) == 4800.0
        assert stored_trace(MetricsStore(services.db), "nobody", timedelta(days=1), now) is None
        # In chat, outside the sandbox: the default against the current settings.
        from bot.store.audit import Actor
        from policies.commands import parse
        from tests.conftest import ADMIN

        # The replay's clock held at `now`: a minute boundary passing before the command
        # would add a quiet 181st minute to it. Actions take their clock at construction,
        # and Services passes none, so the autoscaling commands' own is replaced.
        monkeypatch.setattr(services.actions._autoscaling, "_now", lambda: now)
        reply = services.actions.run(Actor(ADMIN, source="console"), parse("simulate myapp 1d"))
        assert reply.public
        # Only 3 hours are stored of the day asked: it says so ("last 1d" had read as a day).
        assert reply.text.startswith(
            "Replaying `myapp`'s traffic: the 3 h stored of the 1d asked (180 minutes, peak "
            "4,800 rpm)"
        )
        # With no settings of its own the current ones are the default: said once, where
        # two identical results had been printed as if they differed.
        assert "whose scale-down hold is already the default (adaptive) one" in reply.text
        assert reply.text.count("dyno-hours") == 1
        # Settings of its own are replayed beside the default.
        services.actions.run(
            Actor(ADMIN, source="console"), parse("autoscale myapp set down_stabilization=3m")
        )
        mine = services.actions.run(Actor(ADMIN, source="console"), parse("simulate myapp 3h"))
        assert mine.text.startswith("Replaying `myapp`'s last 3h (180 minutes")
        assert mine.text.count("dyno-hours") == 2 and "your current settings: " in mine.text
        # Only the hold differs between the two: "with the default (adaptive) settings" had
        # read as the built-in min, max and target, which a target of rpm:1 made look costly.
        assert "with your settings but the default (adaptive) scale-down hold it " in mine.text
        other = services.actions.run(
            Actor(ADMIN, source="console"), parse("simulate other-app 12h")
        )
        assert "`other-app` has no stored traffic in the last 12h" in other.text
    finally:
        services.db.dispose()

    monkeypatch.setenv("DATABASE_URL", config.database_url)

    class Held(datetime):
        """The command line's clock held at `now`, as the chat command's is above."""

        @classmethod
        def now(cls, tz=None):
            return now

    monkeypatch.setattr("bot.simulate.datetime", Held)
    lines: list[str] = []
    assert main(["--app", "myapp", "--since", "1d", "--max", "3"], out=lines.append) == 0
    assert lines[0].startswith("myapp (stored): 180 minutes, peak 4,800 rpm")
    tried, current = lines[1], lines[2]
    assert "these settings" in tried and "current settings" in current
    # Capped at 3 dynos, the busy hour breaks the SLO; the default max does not.
    minutes = [int(line.split("dyno-hours")[1].split()[0]) for line in (tried, current)]
    assert minutes[0] > minutes[1]
    lines.clear()
    # --json had been ignored with --app.
    assert main(["--app", "myapp", "--since", "1d", "--max", "3", "--json"], out=lines.append) == 0
    answer = json.loads(lines[0])
    assert answer["app"] == "myapp" and answer["minutes"] == 180
    assert answer["these_settings"]["slo_violation_minutes"] == minutes[0]
    assert answer["current_settings"]["slo_violation_minutes"] == minutes[1]
    lines.clear()
    # No setting given to try beside the current ones: one line, where the same settings
    # twice had printed two identical lines, read as two results.
    assert main(["--app", "myapp", "--since", "1d"], out=lines.append) == 0
    assert len(lines) == 2 and lines[0].startswith("myapp (stored): 180 minutes")
    assert lines[1].startswith("current settings: ") and "dyno-hours" in lines[1]
    assert lines[1].endswith("(no other settings given to try)")
    lines.clear()
    assert main(["--app", "nobody", "--since", "1d"], out=lines.append) == 1
    # Said as typed: it had read "in the last 1 day, 0:00:00".
    assert lines[0] == "nobody: no stored traffic in the last 1d; is its log drain on?"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--app", "demo", "--policy", "hpa"], "--policy only works with --trace; leave it out"),
        (
            ["--app", "demo", "--seed", "3", "--peak-rpm", "900"],
            "--peak-rpm, --seed only works with --trace; leave them out",
        ),
        (["--trace", "t.csv", "--since", "2d"], "--since only works with --app; leave it out"),
        (["--trace", "t.csv", "--max", "3"], "--max only works with --app; leave it out"),
    ],
)
def test_an_option_of_the_other_form_is_refused_not_ignored(args, says, capsys):
    from bot.simulate import main

    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        # A million days had run a query per day, for hours; 0s replayed nothing.
        (["--app", "demo", "--since", "999999d"], "--since must be from 1m to 35d"),
        (["--app", "demo", "--since", "0s"], "--since must be from 1m to 35d"),
        # A zero target had ended in a ZeroDivisionError traceback.
        (["--app", "demo", "--target", "rpm:0"], "'rpm:0': a target must be more than 0"),
        (["--app", "demo", "--target", "queue:0ms"], "a target must be more than 0"),
        # Web dynos are never autoscaled to 0, as chat says.
        (["--app", "demo", "--max", "0"], "--max must be at least 1"),
        # A hold over an hour, which the registry and `autoscale set` refuse, had been
        # replayed as a setting the app could have, and a week's hold took a minute a run.
        (
            ["--app", "demo", "--down-stabilization", "2h"],
            "--down-stabilization must be at most 1h, the longest a scale-down may wait",
        ),
        (["--app", "demo", "--down-stabilization", "7d"], "--down-stabilization must be at most"),
    ],
)
def test_an_app_replay_refuses_settings_it_cannot_replay(args, says, capsys, monkeypatch):
    from bot import simulate

    def reached(*_: object) -> int:
        raise AssertionError("the replay ran")

    monkeypatch.setattr(simulate, "_main_app", reached)
    with pytest.raises(SystemExit) as stopped:
        simulate.main(args)
    assert stopped.value.code == 2 and says in capsys.readouterr().err


def test_simulate_app_replays_the_settings_chat_and_the_registry_set(config, monkeypatch, tmp_path):
    from bot import simulate
    from bot.store.autoscale_overrides import Override
    from bot.store.autoscale_settings import AutoscaleStore, Settings
    from bot.store.db import Database
    from tests.conftest import ADMIN

    db = Database(config.database_url)
    now = datetime.now(UTC)
    store = AutoscaleStore(db)
    store.save(Settings("myapp", "on", 2, 6, "rpm", 900.0, ADMIN, now))
    store.overrides().put(Override("myapp", "down_stabilization", "4m", ADMIN, now))
    db.dispose()
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "heroku:\n  allow_unlisted: true\n"
        "apps:\n  shop:\n    platform: heroku\n    autoscale:\n      down_stabilization: 3m\n"
    )
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    seen: list[dict[str, object]] = []

    def replay(metrics, app, since, at, tried, current):
        seen.append(current)

    monkeypatch.setattr(simulate, "replay_app", replay)
    for app in ("myapp", "shop"):
        simulate.main(["--app", app, "--since", "1d"], out=lambda _: None)
    # "current settings" had left out the scale-down hold chat or the registry set, which
    # `/deploy simulate APP 7d` counts: the two answered differently for one app.
    assert seen[0]["down_stabilization"] == timedelta(minutes=4)
    assert (seen[0]["low"], seen[0]["high"]) == (2, 6)
    assert seen[1]["down_stabilization"] == timedelta(minutes=3)
    lines: list[str] = []
    registry.write_text("apps:\n  shop:\n    platform: heroku\n")
    assert simulate.main(["--app", "myapp"], out=lines.append) == 1
    assert lines == ["`myapp` is not an app I manage. `/deploy apps` lists them."]
