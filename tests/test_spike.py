"""`/deploy simulate spike demo` in the sandbox console: simulated traffic through the drain's
path, the real autoscaler reacting on the fake Heroku, its messages printed as they come."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace

import pytest

from bot.__main__ import main
from bot.sandbox import console
from bot.sandbox import demo as sandbox
from bot.sandbox.spike import Shape
from tests.conftest import ADMIN


@pytest.fixture
def played(tmp_path, monkeypatch, capsys):
    """The console's output for one played spike, and the sandbox it ran against."""
    monkeypatch.chdir(tmp_path)  # the sandbox keeps its database in the working directory
    started: list[sandbox.Sandbox] = []
    original = sandbox.Sandbox.start

    def start(self: sandbox.Sandbox):
        started.append(self)
        return original(self)

    monkeypatch.setattr(sandbox.Sandbox, "start", start)
    assert main(["console", "--sandbox", "-c", "/deploy simulate spike demo"]) == 0
    [box] = started
    return capsys.readouterr().out, box


def web_quantities(box: sandbox.Sandbox, app: str) -> list[int]:
    """The web counts the bot asked the fake Heroku for, in order."""
    asked = []
    for request in box.heroku.requests:
        if request.method != "PATCH" or f"/apps/{app}/formation" not in request.path:
            continue
        body = request.json or {}
        for update in body.get("updates", [body]):
            if update.get("type", "web") == "web" and "quantity" in update:
                asked.append(update["quantity"])
    return asked


def test_the_web_formation_goes_up_in_the_spike_and_back_down(played):
    output, box = played
    asked = web_quantities(box, "demo")
    assert asked, output
    peak = max(asked)
    assert peak >= 3  # a ×5 spike on one dyno needs several
    assert asked.index(peak) < len(asked) - 1  # and after the peak it came down again
    assert box.heroku.formation("demo")["web"][0] < peak
    assert box.heroku.formation("demo")["web"][0] == 1
    assert box.heroku.violations == []


def test_the_console_prints_the_autoscalers_messages_in_order_then_a_summary(played):
    output, _ = played
    lines = output.splitlines()
    assert lines[0] == "deploybot> /deploy simulate spike demo"
    assert lines[1] == "(only you) Working on `simulate spike demo`…"  # the ack comes first
    assert "@you set autoscaling of `demo`: on, web 1–8" in lines[2]
    scaled = [line for line in lines if "Autoscaler on `demo`:" in line]
    assert len(scaled) >= 2
    stamps = [re.match(r"^(\d\d:\d\d:\d\d) \(\+(\d+):(\d\d)\)  ", line) for line in scaled]
    assert all(stamps), scaled
    elapsed = [int(m.group(2)) * 60 + int(m.group(3)) for m in stamps if m]
    assert elapsed == sorted(elapsed)  # in simulated-time order, as they happened
    arrows = [tuple(map(int, re.findall(r"web (\d+)→(\d+)", line)[-1])) for line in scaled]
    assert arrows[0][1] > arrows[0][0]  # the first reaction is up
    assert any(after < before for before, after in arrows)  # and later it comes down
    # Each message follows from the one before: the formation it starts from is where the
    # previous one left it.
    for (_, left), (start, _) in itertools.pairwise(arrows):
        assert start == left
    # The traffic lines interleave with the autoscaler's, minute by minute.
    traffic = [i for i, line in enumerate(lines) if "  traffic " in line]
    assert len(traffic) == 20
    assert traffic[0] < lines.index(scaled[0]) < traffic[-1]
    summary = lines[-1]
    assert summary.startswith("Played 20 simulated minutes of traffic against `demo`")
    assert re.search(r"peak [\d,]+ rpm", summary)
    assert re.search(r"Web dynos 1 → \d+ → 1 \(fewest → most → at the end\)", summary)
    assert re.search(r"in \d+ scale actions by the autoscaler \(\d+ up, \d+ down\)", summary)


def in_a_sandbox_console(tmp_path, lines: list[str]) -> str:
    """What a sandbox console prints for `lines`, on its own database."""
    box = sandbox.Sandbox(admins=frozenset({console.CONSOLE_USER}))
    out = io.StringIO()
    with box as config:
        config = replace(config, database_url=f"sqlite:///{tmp_path / 'sandbox.sqlite3'}")
        console.run(config, lines, interactive=False, out=out, registry=box.registry)
    return out.getvalue()


def test_a_second_play_starts_after_the_first(tmp_path):
    output = in_a_sandbox_console(
        tmp_path, ["simulate spike demo", "simulate spike demo", "autoscale demo status"]
    )
    summaries = [line for line in output.splitlines() if line.startswith("Played ")]
    assert len(summaries) == 2
    # Each summary says how long the play took (tests never bound wall-clock time).
    assert all(re.search(r"in [\d.]+ s:", summary) for summary in summaries)
    assert "Autoscaling of `demo` is already on (on, web 1–8" in output
    # Each play reacts the same way: its old traffic does not leak into the new one.
    ups = [re.search(r"\((\d+) up, (\d+) down\)", s).groups() for s in summaries]
    assert ups[0][0] != "0" and ups[1][0] != "0"
    assert "held: p95 queue" in output  # the autoscaler's own record of its ticks


def test_a_service_time_target_is_told_it_sees_no_spike_here(tmp_path):
    # `autoscale demo on` takes the default target, p95 service time 500 ms; the sandbox's
    # dynos serve at a p95 of 600 ms however busy they are, so that target saw every minute
    # of the play as slow, ran at its max to the end and raised "pinned at max".
    output = in_a_sandbox_console(tmp_path, ["autoscale demo on max=5", "simulate spike demo"])
    assert (
        "Its target is the p95 service time, which in this sandbox stays near 600 ms however "
        "many dynos run (a spike makes requests wait in the router's queue instead), so the "
        "autoscaler sees no spike: `/deploy autoscale demo on target=queue:300ms` plays one."
    ) in output


def test_apps_the_spike_cannot_play_against_say_why(tmp_path):
    output = in_a_sandbox_console(
        tmp_path, ["simulate spike demo-shop", "simulate spike demo-staging", "simulate spike nope"]
    )
    assert "plays traffic against the sandbox's fake Heroku apps, such as `demo`" in output
    assert "`demo-shop` is not one of them" in output  # a Beanstalk environment
    assert "`demo-staging` runs Basic web dynos" in output
    assert "`nope` is not one of them" in output
    assert "Played " not in output


def test_outside_the_sandbox_the_verb_says_it_is_sandbox_only(config):
    out = io.StringIO()
    console.run(config, ["simulate spike myapp"], interactive=False, user_id=ADMIN, out=out)
    assert "`/deploy simulate` plays fake traffic, so it runs only in the sandbox" in out.getvalue()


def test_a_console_against_another_heroku_gets_no_player_from_a_running_sandbox(config):
    """Only the console the sandbox serves plays traffic, even with one running here."""
    out = io.StringIO()
    with sandbox.Sandbox(admins=frozenset({ADMIN})):
        console.run(config, ["simulate spike myapp"], interactive=False, user_id=ADMIN, out=out)
    assert "it runs only in the sandbox" in out.getvalue()
    assert "Played " not in out.getvalue()


def test_the_shape_is_a_spike_of_five_times_the_baseline():
    shape = Shape()
    assert shape.rpm(0) == shape.rpm(2.9) == shape.rpm(19.9) == 500
    assert shape.rpm(5) == 2500
    assert 500 < shape.rpm(3.5) < 2500 and 500 < shape.rpm(10.5) < 2500


def test_the_spikes_timeouts_raise_one_alert_that_resolves_in_the_play(played):
    output, _ = played
    lines = output.splitlines()
    raised = [i for i, line in enumerate(lines) if "router errors `H12`" in line]
    assert len(raised) == 2, output  # the alert, then its resolution
    alert, resolved = (lines[i] for i in raised)
    match = re.search(r"Last: ([\d,]+) H12 \(request timeout\) in the minute from", alert)
    assert match and int(match.group(1).replace(",", "")) >= 10
    assert "Resolved: *demo* router errors `H12`" in resolved
    # Raised after the minute that timed out, resolved ten quiet minutes later.
    first_failure = next(i for i, line in enumerate(lines) if " failed · " in line)
    assert first_failure < raised[0] < raised[1]
    assert (
        "The worker's detectors raised 1 alert (shown above; a play keeps none, so "
        "`/deploy alerts` does not list them)." in lines[-1]
    )


def test_a_spike_leaves_autoscaling_off_when_the_user_turned_it_off(tmp_path):
    output = in_a_sandbox_console(
        tmp_path, ["autoscale demo off", "simulate spike demo", "autoscale demo status"]
    )
    assert "set autoscaling of `demo`: on" not in output  # the play had turned it on
    assert "Autoscaling of `demo` is off, as @you set it: playing as is." in output
    assert (
        "Autoscaling stayed off, so the autoscaler does nothing; `/deploy autoscale demo on`"
        in output
    )
    assert "Autoscaling of `demo`: off, web" in output


@pytest.mark.parametrize(("mode", "does"), [("off", "does nothing"), ("shadow", "only logs")])
def test_a_spike_played_without_autoscaling_does_not_say_capacity_caught_up(tmp_path, mode, does):
    # Its summary had said requests failed "while capacity caught up": nothing was added.
    output = in_a_sandbox_console(tmp_path, [f"autoscale demo {mode}", "simulate spike demo"])
    summary = output.splitlines()[-1]
    assert "Web dynos 1 → 1 → 1" in summary and "while capacity caught up" not in summary
    assert re.search(r"requests failed \(H12/H14\) as no web dynos were added\.", summary)
    assert f"the autoscaler {does}" in summary
    # Off decides nothing, so no decisions are pointed to; shadow's are there to list.
    assert ("lists the latest decisions" in summary) is (mode == "shadow")


def test_a_queue_target_comes_down_from_the_peak_without_breaking_it_again(tmp_path):
    # A QA pass saw 10→2 a dyno per 15 s tick at ~2,500 rpm (a queue time of 0 ms asks for
    # the minimum), then a 3 s p95 and 2→6→10 again: scaling down on a latency target now
    # waits until each count is seen to carry the traffic, so it comes down once.
    output = in_a_sandbox_console(
        tmp_path,
        ["autoscale demo-api on target=queue:300ms max=10", "simulate spike demo-api"],
    )
    scaled = [line for line in output.splitlines() if "Autoscaler on `demo-api`:" in line]
    arrows = [tuple(map(int, re.findall(r"web (\d+)→(\d+)", line)[-1])) for line in scaled]
    peak = max(range(len(arrows)), key=lambda i: arrows[i][1])
    assert all(after > before for before, after in arrows[: peak + 1]), scaled
    assert all(after < before for before, after in arrows[peak + 1 :]), scaled
    assert "seen to carry" in output
    # The p95 queue broke the target in the minutes of the rise only, not again later.
    minutes = re.findall(r"traffic [\d,]+ rpm · p95 queue ([\d.,]+) (m?s)", output)
    broke = [unit == "s" or float(value.replace(",", "")) > 300 for value, unit in minutes]
    assert len(minutes) == 20 and any(broke)
    assert [run for run, _ in itertools.groupby(broke) if run] == [True], minutes
