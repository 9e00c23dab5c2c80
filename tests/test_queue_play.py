"""`/deploy simulate queue demo` in the sandbox console: a backlog of jobs on `demo`'s job
queue, reported by a real hirefire-resource endpoint, and the real worker-type autoscaler
scaling `demo`'s worker dynos up on the fake Heroku and back down as the queue drains."""

from __future__ import annotations

import os

import pytest

from bot.__main__ import main
from bot.sandbox import demo as sandbox
from bot.sandbox import job_queue


@pytest.fixture
def console_run(tmp_path, monkeypatch, capsys):
    """Run console lines against a fresh sandbox: (output, the sandbox)."""
    monkeypatch.chdir(tmp_path)
    started: list[sandbox.Sandbox] = []
    original = sandbox.Sandbox.start

    def start(self: sandbox.Sandbox):
        started.append(self)
        return original(self)

    monkeypatch.setattr(sandbox.Sandbox, "start", start)

    def run(*lines: str) -> tuple[str, sandbox.Sandbox]:
        args = ["console", "--sandbox"]
        for line in lines:
            args += ["-c", line]
        assert main(args) == 0
        return capsys.readouterr().out, started[-1]

    return run


def worker_quantities(box: sandbox.Sandbox) -> list[int]:
    """The worker counts the bot asked the fake Heroku for, in order."""
    asked = []
    for request in box.heroku.requests:
        if request.method != "PATCH" or "/apps/demo/formation" not in request.path:
            continue
        body = request.json or {}
        for update in body.get("updates", [body]):
            if update.get("type") == "worker" and "quantity" in update:
                asked.append(update["quantity"])
    return asked


def test_workers_rise_with_a_backlog_and_fall_when_it_drains(console_run):
    output, box = console_run(
        "autoscale demo worker on target=latency:30s min=0 max=10",
        "simulate queue demo",
        "autoscale demo status",
    )
    assert "nothing reads the queue yet: `/deploy simulate queue demo`" in output
    asked = worker_quantities(box)
    assert asked, output
    peak = max(asked)
    assert peak >= 4, output  # 240 jobs a minute at a job a second per dyno need four
    assert asked.index(peak) < len(asked) - 1  # after the peak it came down again
    assert box.heroku.formation("demo")["worker"][0] == 0  # min=0 once the queue is empty
    assert "960 jobs enqueued, 960 done" in output
    assert f"Worker dynos 1 → {peak} → 0" in output
    # The decisions came from the endpoint's numbers, and were stored: status lists them.
    assert "Autoscaler on `demo`: job queue latency" in output
    assert "Worker `worker`: on, worker 0–10, target job queue latency 30 s (chat, @you" in output
    assert "held: job queue latency 0 s against 30 s: worker stays at 0" in output
    assert box.heroku.violations == []


def test_the_sandbox_app_serves_a_real_hirefire_endpoint(tmp_path, monkeypatch):
    from bot.metrics.hirefire import fetch_queue_info

    monkeypatch.chdir(tmp_path)
    box = sandbox.Sandbox(admins=frozenset({"U0CONSOLE"}))
    with box:
        target = box.registry.resolve("demo")
        assert target.queue_url is not None
        token = os.environ["HIREFIRE_TOKEN"]
        queue = box.queues["demo"]
        queue.enqueue(30, box.heroku.advance(0))
        box.heroku.advance(42)
        assert fetch_queue_info(target.queue_url, token) == {"worker": 42.0, "worker_busy": 0.0}
        queue.drain(10, 2)  # two dynos, ten seconds: 20 done, 10 left, both busy
        assert fetch_queue_info(target.queue_url, token) == {"worker": 42.0, "worker_busy": 2.0}
        assert queue.waiting() == 10
        queue.reports = "jobs"  # what an app whose target is jobs:N reports
        assert fetch_queue_info(target.queue_url, token)["worker"] == 10.0
    assert "HIREFIRE_TOKEN" not in os.environ or os.environ["HIREFIRE_TOKEN"] != token


def test_wrong_input_in_the_sandbox_says_what_to_do(console_run):
    output, _ = console_run(
        "autoscale demo-staging worker on target=latency:30s",
        "simulate queue demo-staging",
        "autoscale demo mailer on target=jobs:50",
        "autoscale demo on target=latency:30s",
        "autoscale demo worker on target=latency",
        "autoscale demo worker on target=latency:0s",
        "autoscale demo worker of",
        "autoscale demo worker status",
    )
    assert "`demo-staging` has no job-queue endpoint" in output
    assert "`demo-staging` has no job queue in the sandbox; `demo` has one." in output
    assert "`demo` has no `mailer` process type (it has: `web`, `worker`)." in output
    assert "is a job-queue target, for a worker type" in output
    assert "`target=latency` is not a worker target: write latency:30s or jobs:50." in output
    assert "Target `latency:0s`: the value must be more than 0." in output
    assert (
        "`of` is not a mode: did you mean `off`? Use `on`, `off`, `shadow` or `status`." in output
    )
    assert "Worker `worker`: off (never set); `/deploy autoscale demo worker on" in output


def test_without_hirefire_resource_the_play_says_what_to_install(console_run, monkeypatch):
    monkeypatch.setattr(job_queue, "available", lambda: False)
    output, box = console_run("simulate queue demo")
    assert box.queues == {}
    assert "needs the `hirefire-resource` package" in output


def test_a_jobs_target_reads_jobs_waiting_from_the_demo_app(console_run):
    output, box = console_run(
        "autoscale demo worker on target=jobs:20 min=0 max=10", "simulate queue demo"
    )
    assert "(which reports the jobs waiting for `worker`)" in output
    assert "jobs waiting, 20 per dyno → worker" in output
    asked = worker_quantities(box)
    assert max(asked) >= 2 and box.heroku.formation("demo")["worker"][0] == 0, output


def test_a_play_leaves_worker_autoscaling_as_the_user_set_it_and_says_so(console_run):
    output, box = console_run(
        "autoscale demo worker on target=latency:30s min=0 max=10",
        "autoscale demo worker off",
        "simulate queue demo",
        "autoscale demo worker shadow",
        "simulate queue demo",
        "autoscale demo status",
    )
    # The play had turned it back on: "@you set autoscaling of `demo`: on, worker 0–10".
    assert output.count("set autoscaling of `demo`: on") == 1  # the user's own, first line
    assert "Worker autoscaling of `demo` is off, as @you set it: playing as is." in output
    assert (
        "Worker autoscaling stayed off, so the autoscaler does nothing; "
        "`/deploy autoscale demo worker on` turns it on, keeping the other settings."
    ) in output
    assert worker_quantities(box) == []  # neither play scaled anything
    assert "Worker autoscaling stayed shadow, so the autoscaler only logs what it" in output
    assert "could not be carried out" not in output  # shadow logs; nothing turned it down
    assert "Worker `worker`: shadow, worker 0–10" in output
