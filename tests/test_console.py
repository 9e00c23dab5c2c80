"""The console runs the same handlers as Slack; the sandbox needs no accounts."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.metrics.aggregate import summarize
from bot.metrics.store import MetricsStore
from bot.sandbox import console
from bot.sandbox.demo import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def run_lines(tmp_path, *lines: str, teammate: str | None = None) -> str:
    """The console over the sandbox; with `teammate`, a second admin `as teammate` types as."""
    sandbox = Sandbox(admins=frozenset({console.CONSOLE_USER, teammate or console.CONSOLE_USER}))
    out = io.StringIO()
    with sandbox as config:
        console.run(config, lines, False, out=out, registry=sandbox.registry, teammate=teammate)
    return out.getvalue()


def console_process(tmp_path, *args: str, stdin: str | None = None) -> str:
    """`python -m bot console --sandbox ARGS` run as a user runs it, in `tmp_path`: what it
    printed, once it exited 0."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--sandbox", *args],
        input=stdin,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_sandbox_session_scales_and_kills_with_a_button(tmp_path):
    output = run_lines(
        tmp_path,
        "/deploy status demo",
        "scale web=3 demo",
        "kill demo worker",
        "Kill demo",
        "Kill demo",
        "status demo",
    )
    assert "== demo ==" in output
    assert "@you scaled `demo`: web 1 → 3" in output
    assert "[ Kill demo ]  [ Cancel ]" in output
    assert "@you killed `demo`: worker 1 → 0" in output
    assert "already confirmed by @you" in output
    assert "`worker` 0" in output


def test_bad_input_and_help_in_the_console(tmp_path):
    output = run_lines(tmp_path, "scale web=lots demo", "help", "status nope")
    assert "(only you) `web=lots` is not a scale term" in output
    assert "/deploy restart APP [TYPE | DYNO]" in output
    assert "Heroku has no app called `nope`" in output


def test_a_mistyped_app_in_the_console_gets_the_closest_sandbox_app(tmp_path):
    output = run_lines(tmp_path, "status dmeo", "history dmeo", "status demo-shop-prd")
    said = "(only you) Heroku has no app called `dmeo`, or the bot's key cannot see it."
    assert output.count(f"{said} Did you mean `demo`?") == 2
    assert "Did you mean `demo-shop` or `demo-shop-green`?" in output


def test_a_mistyped_app_for_a_heroku_only_verb_gets_the_closest_heroku_apps(tmp_path):
    # `builds demo-stagin` had been offered `demo-shop-green` too, a Beanstalk environment,
    # which has no builds; a verb for both platforms still offers both.
    output = run_lines(
        tmp_path, "builds demo-stagin", "promote demo-shop-gren", "status demo-stagin"
    )
    said = "Heroku has no app called `demo-stagin`, or the bot's key cannot see it."
    assert f"{said} Did you mean `demo-staging` or `demo-api`?" in output
    assert f"{said} Did you mean `demo-staging`, `demo-api` or `demo-shop-green`?" in output
    # Beanstalk environments closer than any Heroku app are still named, ahead of it.
    assert "Did you mean `demo-shop-green`, `demo-shop` or `demo-staging`?" in output


def test_an_empty_beanstalk_chart_names_the_sampler_as_it_runs(tmp_path):
    out = run_lines(tmp_path, "chart demo-shop-green 6h")
    assert "No requests recorded for `demo-shop-green` in the last 6 h" in out
    # "each minute" it had said, of a sampler that runs every 10 seconds.
    assert "each minute" not in out
    assert "The worker stores the environment's enhanced health report every 10 seconds" in out


def test_python_m_bot_console_sandbox_runs_one_line_and_exits(tmp_path):
    output = console_process(tmp_path, "-c", "/deploy status demo-api")
    assert "== demo-api ==" in output
    assert "`web` 2" in output


def test_home_in_the_console_shows_app_home_with_the_sandbox_fleet(tmp_path):
    # The Home tab, the fleet at a glance in Slack, had no way to be seen from the console.
    output = console_process(tmp_path, "-c", "home", "-c", "Status")
    assert "== deploybot ==" in output
    # "The worker has never ticked: autoscaling and alerts are paused.", over a card whose
    # seeded decision was five minutes old, had read as the bot broken.
    assert "The worker has never ticked" not in output
    # It had told a sandbox user to `heroku labs:enable runtime-dyno-metadata`.
    assert "*deploybot* release: none, the sandbox console runs from your checkout" in output
    assert "runtime-dyno-metadata" not in output
    assert (
        "No worker runs in the sandbox console: nothing autoscales or alerts between your "
        "lines (`simulate spike demo` plays the autoscaler)." in output
    )
    for card in ("*`demo`* · Heroku", "*`demo-api`* · Heroku · $107/month", "*`demo-shop`*"):
        assert card in output
    assert "clock 1 × Basic, web 2 × Standard-2X" in output
    assert "Autoscaling: on, web 2–6, target p95 queue time 300 ms" in output
    # A Beanstalk card had said "Autoscaling: off", of an environment its Auto Scaling
    # group scales, which `autoscale demo-shop on` then refused.
    shop = output.split("*`demo-shop`*", 1)[1].split("[ Status ]", 1)[0]
    assert "Autoscaling: by its Auto Scaling group (set in Beanstalk)" in shop, shop
    assert "Autoscaling: off" not in shop
    assert re.search(r"Last decision \d\d:\d\d UTC, held: p95 queue \d+ ms", output)
    assert "[ Status ]  [ Chart ]  [ Restart ]  [ Scale web +1 ]" in output
    assert "<- type a label to press it" in output
    # Every card has a Status button: the label says what to type, rather than guess.
    assert "type the command instead, such as `status demo`." in output


def test_help_in_the_console_names_home_and_a_card_s_button_says_what_to_type(tmp_path):
    output = run_lines(tmp_path, "help", "home", "Restart", "Chart")
    assert "(console only: `home` shows App Home, the bot's Home tab in Slack;" in output
    # Pressing one of five `Restart`s had restarted whichever card came last.
    assert "such as `restart demo`." in output and "such as `chart demo 24h`." in output
    assert "restarted" not in output


def test_a_label_with_a_minus_sign_is_found_when_typed_with_a_hyphen(tmp_path):
    # The card's `Scale web −1` has a minus sign (U+2212) no keyboard types: typed with a
    # hyphen it went to the bot as a command, "Put the app last: `/deploy scale -1 web`".
    output = run_lines(tmp_path, "home", "Scale web -1")
    assert "Put the app last" not in output, output
    assert "More than one button above is `Scale web −1`" in output
    assert "such as `scale web-1 demo`." in output


def test_the_sandbox_s_demo_api_has_the_drain_its_day_of_traffic_came_through(tmp_path):
    # `about` said "Drains: none yet" beside a day of drained traffic, and `drain demo-api`
    # said "now drains" as if it had had none.
    output = run_lines(tmp_path, "about", "drain demo-api")
    assert "Drains: none yet" not in output
    assert "Drain `demo-api`: last traffic" in output
    assert "`demo-api` already drains its logs to me" in output


def test_the_sandbox_s_greeting_names_every_app_it_has(tmp_path):
    # It named Beanstalk's `demo-shop` only, so `demo-shop-green`, the one way to try
    # `swap`, was found by nobody who did not read the sandbox's source.
    output = console_process(tmp_path, stdin="exit\n")
    greeting = output.splitlines()[0]
    assert "fake Heroku (demo, demo-api, demo-staging)" in greeting
    assert "Beanstalk (demo-shop, demo-shop-green)" in greeting
    # What to type first, said once: both lines had offered the two plays.
    lines = output.splitlines()
    assert lines[1].startswith("Type a command such as `status demo`")
    assert output.count("`simulate spike demo`") == 1


def test_the_sandbox_beanstalk_environment_answers_the_same_words(tmp_path):
    output = run_lines(tmp_path, "apps", "status demo-shop", "scale web=3 demo-shop")
    assert "`demo-shop`: Beanstalk environment `demo-shop-prod` in us-east-1" in output
    assert "`web` 2 × t3.small" in output
    assert "@you scaled `demo-shop`: web 2 → 3" in output
    # The fake's clock runs fast, so the follow-up lands in the thread before the next prompt.
    assert "  ↳ " in output and "Ready" in output.split("  ↳ ", 1)[1]
    # Named as typed, not by its environment (`demo-shop-prod`).
    assert "  ↳ Done: `demo-shop` is Ready (Green)." in output


def test_whoami_and_history_in_the_console(tmp_path):
    output = run_lines(tmp_path, "whoami", "scale web=2 demo", "history", "kill demo-api")
    assert "You are @you" in output and "DEPLOYBOT_ADMINS" in output
    assert "*Recent changes to every app*, newest first" in output
    assert "@you `scale web=2 demo` (console)" in output
    assert "`demo-api` is protected" in output and "[ Approve ]" in output


def test_the_sandbox_charts_a_seeded_day_and_prints_where_the_png_is(tmp_path):
    output = run_lines(tmp_path, "chart demo-api", "cost", "about")
    written = [line for line in output.splitlines() if "written to" in line]
    assert len(written) == 1, output
    path = Path(written[0].rsplit("written to ", 1)[1].rstrip("]"))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Web dynos: 2–5; 6 scaling changes" in output and "Incidents: 1" in output
    assert "• `demo-api`: $107/month" in output and "web dyno-hours" in output
    assert "No worker runs in the sandbox console" in output


def test_metrics_of_the_beanstalk_shop_come_from_the_sandbox_s_cloudwatch(tmp_path):
    output = run_lines(tmp_path, "metrics demo-shop 24h", "metrics demo-shop")
    assert "Traceback" not in output and "could not be reached" not in output
    assert "*`demo-shop` over the last 24 h* (CloudWatch, load balancer)" in output
    assert "Last 10 s (Beanstalk health):" in output
    totals = [int(t.replace(",", "")) for t in re.findall(r"Requests: ([\d,]+) ", output)]
    assert len(totals) == 2 and totals[0] > totals[1] > 0


def test_the_sandbox_s_idle_green_twin_has_no_traffic_in_cloudwatch_or_its_health(tmp_path):
    # CloudWatch held requests for `demo-shop-prod`'s load balancer only, while the fake's
    # default health gave `demo-shop-green` 120 requests every 10 s: one reply said an idle
    # hour and a busy moment side by side.
    output = run_lines(tmp_path, "metrics demo-shop-green", "status demo-shop-green")
    assert "Requests: 0 (0.0/min)" in output
    assert "No requests in the last 10 s (Beanstalk health)." in output, output
    assert "requests in the last 10s" not in output


def test_drain_then_traffic_then_metrics_and_watch_in_the_sandbox():
    before = set(threading.enumerate())
    sandbox = Sandbox(admins=frozenset({console.CONSOLE_USER}))
    out = io.StringIO()
    with sandbox as config:
        session = console.Console(config, out=out, registry=sandbox.registry)
        try:
            session.run_line("drain demo")
            session.run_line("watch demo")
            # Logplex posts each second and the web app flushes every few; `metrics` counts
            # only complete 10 s windows, so wait until one that has ended is stored.
            metrics = MetricsStore(session.services.db)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now = int(time.time())
                if summarize(metrics.windows("demo", now - 300, now + 10), now, 5).requests:
                    break
                time.sleep(0.5)
            session.run_line("metrics demo 5m")
            sandbox.heroku.run_one_off("demo", "rake cleanup", "scheduler", 137)
            assert sandbox.heroku.deliveries.wait()
            session.run_line("alerts demo")
        finally:
            session.close()
    output = out.getvalue()
    assert "`demo` now drains its logs to me (http://127.0.0.1:" in output
    assert "I am watching `demo`" in output and "DEPLOYBOT_URL" not in output
    assert re.search(r"\*`demo` over the last 5 min\*\nRequests: [1-9]", output), output
    assert "one-off `scheduler` dyno failed" in output and "status 137" in output
    # Stopped, the sandbox's web app claims and flushes no more drained traffic.
    web_threads = ("background", "followup", "drain-claims", "metrics-flush")
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert [name for name in left if name.startswith(web_threads)] == []


def test_history_starts_empty_each_run_unless_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "@you `scale web=2 demo`" in run_lines(tmp_path, "scale web=2 demo", "history")
    assert "No changes recorded" in run_lines(tmp_path, "history")
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    for line in ("scale web=2 demo", "history"):
        output = console_process(tmp_path, "--keep-history", "-c", line)
    assert "@you `scale web=2 demo`" in output
    assert (tmp_path / "deploybot-sandbox.sqlite3").exists()


def test_a_pin_in_the_console_says_nothing_holds_it_yet(tmp_path):
    output = run_lines(
        tmp_path, "pin demo web=3 for 1h", "autoscale demo on", "pin demo web=3 for 1h"
    )
    assert "autoscaling of `demo` is off, so nothing acts on the pin" in output
    assert "no worker runs in this console" in output
    assert "the autoscaler holds it there" not in output


def test_an_expensive_scale_in_the_sandbox_asks_first_and_shows_the_cost(tmp_path):
    output = run_lines(tmp_path, "scale web=999 demo", "status demo")
    assert "Monthly cost: ≈ $50/month → $25,000/month (+$24,950/month)" in output
    assert "[ Confirm ]  [ Cancel ]" in output
    assert "`web` 1 × Standard-1X" in output  # nothing done before the click


def test_outside_text_prints_as_slack_shows_it_and_never_drives_the_terminal(tmp_path):
    output = run_lines(tmp_path, "\x1b[2J\x1b]0;owned\x07 demo", "status a<b>&c")
    # Slack shows an escaped `<`, `>`, `&` as typed, and a control character as nothing
    # special; a terminal would clear the screen and retitle the window. A command holding
    # one is refused, and the line typed is echoed with a picture of each.
    assert "\x1b" not in output and "\x07" not in output
    assert "deploybot> ␛[2J␛]0;owned␇ demo" in output
    assert "Your command holds a control character (U+001B), which no command takes" in output
    assert "`a<b>&c` is not a valid app name" in output


def test_a_command_typed_again_asks_again_and_a_lowercase_label_still_presses(tmp_path):
    output = run_lines(tmp_path, "kill demo worker", "kill demo", "cancel", "status demo")
    # `kill demo` had pressed the waiting "Kill demo" button: the worker-only prompt was
    # confirmed and the whole-app kill never asked about.
    assert "@you killed" not in output
    assert output.count("[ Kill demo ]  [ Cancel ]") == 2
    assert "@you cancelled `kill demo`" in output  # `cancel` is no command: the button
    assert "`worker` 1" in output


def test_the_autoscaler_names_who_pinned_as_a_person(tmp_path):
    output = run_lines(
        tmp_path, "autoscale demo on", "pin demo web=3 for 1h", "simulate spike demo"
    )
    # The raw user ID had been shown: "pinned by U0CONSOLE at web=3".
    assert "pinned by @you at web=3" in output and "U0CONSOLE" not in output


def test_a_teammate_in_the_sandbox_approves_a_protected_kill(tmp_path):
    """`as teammate` types as the sandbox's second admin, so an approval can be given and
    seen in the history; the asker alone cannot give it."""
    lines = ("kill demo-api", "Approve", "as teammate", "Approve", "as you", "history demo-api")
    output = run_lines(tmp_path, *lines, teammate=console.TEAMMATE)
    assert "(sandbox: `as teammate Approve` approves as the second person)" in output
    assert "An approval must come from someone other than @you" in output
    assert "deploybot (as teammate)> Approve" in output
    assert "@you killed `demo-api`: clock 1 → 0, web 2 → 0." in output
    assert "(Approved by @teammate.)" in output
    assert "`kill demo-api` (console), approved by @teammate" in output


def test_as_someone_else_is_the_sandbox_s_alone(tmp_path):
    output = run_lines(tmp_path, "as teammate", "as @YOU", "whoami")
    assert "(only the sandbox has a second person to type as" in output
    assert "(typing as @you now)" in output and "You are @you" in output


def test_a_label_the_open_prompt_has_not_is_answered_with_the_labels_it_has(tmp_path):
    output = run_lines(tmp_path, "maintenance demo on", "Confirm", "status demo")
    # It had said "No prompt here has a `Confirm` button yet", with the prompt just above.
    assert "No prompt here" not in output
    assert (
        "The prompt above has no `Confirm` button: type `Turn maintenance on` or `Cancel`."
        in output
    )


def test_a_label_of_an_older_prompt_is_not_pressed_under_a_newer_one(tmp_path):
    lines = ("config set LOG_LEVEL=debug demo", "Confirm", "rollback demo", "Confirm", "Roll back")
    output = run_lines(tmp_path, *lines)
    # The config prompt's Confirm had been pressed again: "`config set LOG_LEVEL=… demo`
    # was already confirmed by @you", under the rollback prompt it was typed for.
    assert "already confirmed" not in output
    assert "The prompt above has no `Confirm` button: type `Roll back` or `Cancel`." in output
    assert "@you rolled `demo` back: " in output


def test_a_label_typed_with_no_prompt_open_is_said_to_be_one(tmp_path):
    output = run_lines(tmp_path, "Roll back", "confirm", "Cancel")
    # Sent as commands they got guesses: "Did you mean `rollback back`?", "`config`?".
    assert "rollback back" not in output and "Did you mean" not in output
    for label in ("Roll back", "Confirm", "Cancel"):
        assert f"No prompt here has a `{label}` button yet" in output
    assert "such as `kill APP` has asked. Type a command, or `help` for the list." in output


def test_a_drain_for_a_mistyped_app_leaves_no_drain_behind(tmp_path):
    output = run_lines(tmp_path, "drain dmeo", "metrics dmeo", "about")
    # The drain's row had been kept before Heroku refused: `about` listed a drain of `dmeo`,
    # `metrics dmeo` took it for an app waiting for traffic, the detectors for a silent one.
    said = "(only you) Heroku has no app called `dmeo`, or the bot's key cannot see it."
    assert output.count(f"{said} Did you mean `demo`?") == 2, output
    assert "Drain `dmeo`" not in output and "Drain `demo-api`: last traffic" in output


def test_a_replay_of_a_mistyped_app_gets_the_closest_app(tmp_path):
    output = run_lines(tmp_path, "simulate dmeo 7d")
    # It had said "`dmeo` has no stored traffic in the last 7d; is its log drain on?".
    assert "Heroku has no app called `dmeo`, or the bot's key cannot see it." in output
    assert "Did you mean `demo`?" in output and "log drain" not in output


def test_empty_quotes_are_echoed_as_typed(tmp_path):
    output = run_lines(tmp_path, 'help ""', 'metrics demo ""')
    # An empty code span had been echoed: Slack shows "``" is not a command I know.
    assert '`""` is not a command I know' in output
    assert '`""` is not a window' in output and "``" not in output


def test_a_pin_for_days_says_on_which_day_it_ends(tmp_path):
    output = run_lines(tmp_path, "pin demo web=3 for 7d", "autoscale demo status")
    # "until 05:37 UTC" had read as today, minutes from now, for a pin a week long.
    ends = re.findall(r"until (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", output)
    assert len(ends) == 2 and ends[0] == ends[1], output


def test_logs_with_the_app_typed_last_are_told_to_put_it_first(tmp_path):
    output = run_lines(
        tmp_path,
        "logs web demo",
        "logs 50 demo",
        "logs worker demo 20",
        "logs web dmeo",
        "restart worker demo",
    )
    # They had said "Heroku has no app called `web`" and "`50` is not an app I manage".
    assert "(only you) Put the app first: `/deploy logs demo web`." in output
    assert "(only you) Put the app first: `/deploy logs demo 50`." in output
    assert "(only you) Put the app first: `/deploy logs demo worker 20`." in output
    assert "(only you) Put the app first: `/deploy restart demo worker`." in output
    # When the last word names no app either, the first is the one blamed, as before.
    assert "Heroku has no app called `web`" in output
    assert "Put the app first: `/deploy logs dmeo" not in output


def test_a_rollback_or_ship_with_the_app_typed_last_is_told_to_put_it_first(tmp_path):
    output = run_lines(tmp_path, "rollback v2 demo", "ship main demo", "rollback v2 dmeo")
    # They had said "Heroku has no app called `v2`" and "… called `main`".
    assert "(only you) Put the app first: `/deploy rollback demo v2`." in output
    assert "(only you) Put the app first: `/deploy ship demo main`." in output
    # When the last word names no app either, the first is the one blamed, as before.
    assert "Heroku has no app called `v2`" in output
    assert "`/deploy rollback dmeo" not in output


def test_a_run_or_lock_with_the_app_typed_last_is_told_to_put_it_first(tmp_path):
    output = run_lines(
        tmp_path,
        "run python manage.py migrate demo",
        "run python manage.py migrate dmeo",
        "lock chasing the checkout bug demo",
        "history",
    )
    # It had said "Heroku has no app called `python`", as if the command were the app, and
    # "… called `chasing`", the reason's first word.
    assert "(only you) Put the app first: `/deploy run demo python manage.py migrate`." in output
    assert "(only you) Put the app first: `/deploy lock demo chasing the checkout bug`." in output
    # When the last word names no app either, the first is the one blamed, as before.
    assert "Heroku has no app called `python`" in output
    assert "`/deploy run dmeo" not in output
    # Nothing was run, and nothing is in the trail but the mistyped app's error.
    history = output.split("deploybot> history")[1]
    assert "run python manage.py migrate demo" not in history, history


def test_a_command_typed_with_the_app_last_leaves_no_history_row(tmp_path):
    output = run_lines(
        tmp_path, "restart web demo", "rollback v2 demo", "ship main demo", "history"
    )
    assert "(only you) Put the app first: `/deploy restart demo web`." in output
    # The restart had been tried on an app `web` and left an `error` row: "✗ … `restart web
    # demo` (console): Heroku has no app called `web`"; a rollback or ship had left none.
    history = output.split("deploybot> history")[1]
    assert "restart web demo" not in history and "✗" not in history, history


def test_config_with_the_app_typed_first_or_without_set_is_told_the_command_meant(tmp_path):
    output = run_lines(
        tmp_path,
        "config unset demo K",
        "config unset demo-shop K1 LOG_LEVEL",
        "config unset dmeo K",
        "config K=hunter2 demo",
    )
    # It had said "`k` is not an app I manage": the last name read as the app.
    assert "(only you) Put the app last: `/deploy config unset K demo`." in output
    assert "Put the app last: `/deploy config unset K1 LOG_LEVEL demo-shop`." in output
    # When the first word names no app either, the last is the one blamed, as before.
    assert "`k` is not an app I manage" in output
    assert "`/deploy config unset K dmeo" not in output
    # It had said "`K=…` is not a valid app name".
    assert "(only you) Did you mean `config set K=… demo`?" in output
    assert "hunter2" not in output.replace("config K=hunter2 demo", "")


def test_two_numbers_around_the_app_show_the_usage_line(tmp_path):
    output = run_lines(tmp_path, "logs 50 demo 200", "logs shopp")
    # No one order to suggest (`app_typed_last`), so only "`50` is not an app I manage"
    # had been said; the usage line shows where the app goes.
    assert (
        "(only you) `50` is not an app I manage. `/deploy apps` lists them. "
        "Usage: `/deploy logs APP [DYNO] [N]`" in output
    ), output
    # A misspelled app needs the name, not the order.
    assert "Usage: `/deploy logs APP" not in output.split("logs shopp")[-1]


def test_a_restart_typed_app_last_is_read_for_its_shape_once(tmp_path, monkeypatch):
    # `_restart` read the command's shape, then read it again inside `_app_typed_last`.
    from bot.actions import path

    shapes = []

    def counted(command):
        shapes.append(command.text())
        return app_typed_last(command)

    app_typed_last = path.app_typed_last
    monkeypatch.setattr(path, "app_typed_last", counted)
    output = run_lines(tmp_path, "restart web demo-shop")
    assert "Put the app first: `/deploy restart demo-shop web`." in output
    assert shapes == ["restart web demo-shop"], shapes


def test_a_force_with_no_freeze_in_force_is_said_to_change_nothing(tmp_path):
    # `--force "because"` with no freeze had gone through silently, the reason kept in the
    # history as if it had passed one: each verb that takes it says so, in the same words.
    out = run_lines(
        tmp_path,
        "scale web=2 demo --force because",
        "restart demo --force because",
        "rollback demo --force because",
        "maintenance demo on --force because",
        "config set LOG_LEVEL=debug demo --force because",
        "scale web=1 demo",
    )
    said = "No freeze window was in force, so `--force` changed nothing."
    assert out.count(said) == 5, out


def test_a_force_on_pin_autoscale_or_drain_with_no_freeze_is_said_to_change_nothing(tmp_path):
    # These answer in a plain reply, which had taken `--force` without a word; a refusal
    # says what is wrong, without the note.
    out = run_lines(
        tmp_path,
        "pin demo web=2 for 1h --force because",
        "autoscale demo on --force because",
        "drain demo --force because",
        "drain demo-shop --force because",
        "autoscale demo on min=0 --force because",
        "pin dmeo web=2 for 1h --force because",
        "autoscale demo status",
    )
    said = "No freeze window was in force, so `--force` changed nothing."
    assert out.count(said) == 3, out


def test_maintenance_on_asked_twice_points_at_the_prompt_still_open(tmp_path):
    # A second prompt had opened beside the first: whichever was pressed second was then
    # refused as "turned on meanwhile", for a change the same person asked for once.
    out = run_lines(
        tmp_path,
        "maintenance demo on",
        'maintenance demo on --force "again"',
        "Turn maintenance on",
        "maintenance demo off",
        "maintenance demo on",
    )
    assert out.count("[ Turn maintenance on ]  [ Cancel ]") == 2, out
    assert "You already asked to turn maintenance mode on for `demo`" in out
    assert "@you turned maintenance mode on for `demo`." in out
    assert "meanwhile" not in out


def test_a_replay_with_no_stored_traffic_says_what_to_do_to_the_asker_alone(tmp_path):
    output = run_lines(tmp_path, "simulate demo 7d", "drain demo", "simulate demo 3d")
    # It had posted "`demo` has no stored traffic in the last 7d; is its log drain on?" in
    # the channel: a question, even right after `drain demo` had answered yes.
    said = "(only you) `demo` has no stored traffic in the last 7d, so there is nothing to replay."
    assert f"{said} Add a log drain with `/deploy drain demo` first." in output
    said = said.replace("7d", "3d")
    assert f"{said} Heroku may not have sent any yet: give it a minute." in output
    assert "is its log drain on?" not in output


def test_a_channel_mention_prints_as_slack_shows_it(tmp_path):
    output = run_lines(tmp_path, "whoami")
    # Slack shows `<#C0CONSOLE>` as a channel's name with a #; the console had printed it raw.
    assert "asking in #C0CONSOLE." in output and "<#" not in output


def test_a_swap_or_promotion_refused_by_the_other_app_s_lock_is_in_its_history(tmp_path):
    output = run_lines(
        tmp_path,
        "as teammate",
        "lock demo-shop testing green",
        "lock demo release freeze",
        "as you",
        "swap demo-shop-green demo-shop",
        "promote demo-staging",
        "history demo-shop 3",
        "history demo 3",
        teammate="U0TEAMMATE",
    )
    # The lock's holder reads the app's history: the refused tries had been only in
    # demo-shop-green's and demo-staging's, though a swap or promotion made shows in both.
    shop = output.split("deploybot> history demo-shop 3")[1].split("deploybot>")[0]
    assert "✗ refused" in shop and "`swap demo-shop-green demo-shop`" in shop, shop
    demo = output.split("deploybot> history demo 3")[1]
    assert "✗ refused" in demo and "`promote demo-staging`" in demo, demo


def test_as_someone_then_a_command_on_one_line_types_that_command_as_them(tmp_path):
    lines = ("kill demo-api", "as teammate Approve", "as teammate whoami", "whoami")
    output = run_lines(tmp_path, *lines, teammate=console.TEAMMATE)
    # It had been sent to the bot as a command: "`as` is not a command I know. Did you mean
    # `apps teammate Approve`?".
    assert "is not a command I know" not in output
    assert "(Approved by @teammate.)" in output
    assert output.count("You are @teammate") == 1 and output.count("You are @you") == 1
    assert "(typing as" not in output  # once only: the console stays with @you


def test_as_nobody_known_then_a_command_says_who_there_is(tmp_path):
    output = run_lines(tmp_path, "as tammy status demo", teammate=console.TEAMMATE)
    assert "(nobody called `tammy` here: `as you` or `as teammate`)" in output
    assert "is not a command I know" not in output and "== demo ==" not in output


@pytest.mark.parametrize("change", ["kill demo", "scale web=0 demo", "kill demo worker"])
def test_a_change_asked_twice_points_at_the_prompt_still_open(tmp_path, change):
    # A second live prompt had opened beside the first: two buttons to press for one change,
    # the one left over expiring into the history.
    out = run_lines(tmp_path, change, change, "Cancel", change)
    assert out.count("[ Cancel ]") == 2, out
    said = f"You already asked for `{change}` at "
    assert said in out, out
    assert ", and that prompt is open until " in out.split(said, 1)[1].split("\n", 1)[0], out
    assert "press its button, or Cancel it." in out, out


def test_watching_an_app_again_says_it_was_already_watched(tmp_path):
    # The second `watch demo` had said "now reach me" as if nothing had been watched; it
    # renews the signing secret, and says that instead.
    output = run_lines(tmp_path, "watch demo", "watch demo")
    first, second = output.split("deploybot> watch demo")[1:]
    assert "I am watching `demo`: dyno crashes, releases and formation changes now reach me" in (
        first
    )
    assert "I am watching `demo` already (Heroku webhook `" in second, second
    assert "its signing secret is renewed" in second and "now reach me" not in second
