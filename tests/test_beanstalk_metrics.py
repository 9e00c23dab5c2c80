"""Beanstalk traffic into the metrics store: enhanced health's 10 s reports become windows
whose counts and percentiles read back as reported, polled through boto3 from the fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.config import Config as BotoConfig
from hypothesis import given
from hypothesis import strategies as st

from bot.actions.results import PlatformMetrics
from bot.metrics.aggregate import summarize
from bot.platforms import beanstalk as beanstalk_module
from bot.platforms import cloudwatch
from bot.platforms.base import Traffic
from bot.services import Services
from bot.store.heartbeats import Heartbeats
from bot.worker.beanstalk_sampler import (
    BeanstalkSampler,
    sketch_from_percentiles,
    window_from_health,
)
from bot.worker.main import Worker
from handlers.render import message
from tests.test_beanstalk import REGISTRY, aws  # noqa: F401  (the fixture)

LATENCY = {
    "P10": 0.02,
    "P50": 0.1,
    "P75": 0.15,
    "P85": 0.2,
    "P90": 0.25,
    "P95": 0.4,
    "P99": 0.9,
    "P999": 1.5,
}


def test_the_rebuilt_sketch_reads_the_reported_percentiles_back():
    sketch = sketch_from_percentiles(LATENCY, 1000)
    assert sketch.count == 1000
    for q, seconds in ((0.5, 0.1), (0.95, 0.4), (0.99, 0.9)):
        assert sketch.quantile(q) == pytest.approx(seconds * 1000, rel=0.02)


@given(
    count=st.integers(min_value=1, max_value=100_000),
    values=st.lists(st.floats(min_value=0, max_value=60), min_size=1, max_size=8),
)
def test_the_slices_always_add_up_to_the_request_count(count, values):
    latency = dict(
        zip(("P10", "P50", "P75", "P85", "P90", "P95", "P99", "P999"), sorted(values), strict=False)
    )
    assert sketch_from_percentiles(latency, count).count == count


def test_a_report_becomes_one_aligned_window_and_no_traffic_none():
    at = datetime(2026, 11, 29, 12, 0, 17, tzinfo=UTC)
    metrics = {
        "Duration": 10,
        "RequestCount": 120,
        "StatusCodes": {"Status2xx": 110, "Status3xx": 0, "Status4xx": 4, "Status5xx": 6},
        "Latency": LATENCY,
    }
    window = window_from_health("shop", at, metrics)
    assert window is not None
    assert (window.start, window.requests) == (int(at.timestamp()) - 17, 120)
    assert window.statuses == {"2xx": 110, "4xx": 4, "5xx": 6}
    assert window_from_health("shop", at, {"RequestCount": 0}) is None


def test_the_sampler_stores_each_report_once(config, aws, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    services = Services(config)
    services.migrate_sqlite_if_behind()
    sampler = BeanstalkSampler(services.registry, services.resolve, services.metrics)
    aws.set_health(
        "shop-prod", region="us-east-1", request_count=600, status_5xx=30, latency=LATENCY
    )
    # shop and shop-eu report; `lost` names an AWS profile the bot lacks and is skipped.
    assert sampler.poll() == 2
    assert sampler.poll() == 0  # the same report (the fake's clock has not moved)
    aws.advance(10)
    assert sampler.poll() == 2
    now = aws.now.timestamp() + 60
    windows = services.metrics.windows("shop", int(now) - 600, int(now))
    summary = summarize(windows, now, 5)
    assert summary.requests == 1200
    assert summary.error_rate == pytest.approx(0.05)
    assert summary.service is not None
    assert summary.service.p95 == pytest.approx(400, rel=0.02)


@pytest.fixture
def worker_calling_once(config, aws, tmp_path, monkeypatch) -> Iterator[Worker]:  # noqa: F811
    """A migrated worker over REGISTRY whose AWS calls botocore does not retry: a try is a
    call. Its databases are disposed after the test."""
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    once = BotoConfig(retries={"mode": "standard", "total_max_attempts": 1})
    monkeypatch.setattr(beanstalk_module, "_BOTO_CONFIG", beanstalk_module._BOTO_CONFIG.merge(once))
    worker = Worker(config)
    try:
        worker.services().migrate_sqlite_if_behind()
        yield worker
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def test_a_throttled_account_is_polled_less_and_about_says_so(
    aws,  # noqa: F811
    worker_calling_once,
):
    # AWS throttled an account's DescribeEnvironmentHealth and the sampler asked again every
    # 10 s for each environment (each call retried by botocore), keeping the throttle on for
    # the account's other calls too (a person's scale, status), and told nobody.
    worker = worker_calling_once
    aws.fail_next(400, count=1000, actions=["DescribeEnvironmentHealth"])  # Throttling
    start = datetime.now(UTC)
    for step in range(31):  # five minutes, every 10 s
        worker.sample_beanstalk(start + timedelta(seconds=10 * step))
    asked = aws.calls("DescribeEnvironmentHealth")
    # shop (prod, us-east-1) and shop-eu (eu, eu-west-1): each account backs off, asked
    # at 0 s, 20 s, 60 s, 140 s and 300 s, where it was asked every 10 s (31 times).
    assert len([c for c in asked if c.region == "us-east-1"]) == 5
    assert len([c for c in asked if c.region == "eu-west-1"]) == 5
    worker.heartbeat(start + timedelta(minutes=5))
    trouble = Heartbeats(worker.db).latest(leader_only=False).trouble or ""
    assert "throttled by AWS" in trouble and "profile `prod` in us-east-1" in trouble
    # AWS answers again: polled every 10 s, and no longer said.
    aws.clear_faults()
    aws.set_health("shop-prod", region="us-east-1", request_count=600, latency=LATENCY)
    later = start + timedelta(minutes=11)
    assert worker.sample_beanstalk(later) == 2
    before = len(aws.calls("DescribeEnvironmentHealth"))
    aws.advance(10)
    worker.sample_beanstalk(later + timedelta(seconds=10))
    assert len(aws.calls("DescribeEnvironmentHealth")) == before + 2
    worker.heartbeat(later + timedelta(seconds=10))
    assert Heartbeats(worker.db).latest(leader_only=False).trouble is None


def test_the_health_detector_shares_the_samplers_backoff_and_keeps_its_incident_open(
    aws,  # noqa: F811
    worker_calling_once,
):
    # The detectors' DescribeEnvironmentHealth (every 60 s) ignored the sampler's backoff
    # after AWS's Throttling: asked again each minute, keeping the account's throttle on.
    worker = worker_calling_once
    aws.set_health("shop-prod", region="us-east-1", color="Red", health_status="Severe")
    start = datetime.now(UTC)
    worker.watch(start)
    key = "health:shop:Red"
    assert worker.alerts.state(key) == "open"
    aws.fail_next(400, count=1000, actions=["DescribeEnvironmentHealth"])  # Throttling
    worker.sample_beanstalk(start + timedelta(seconds=50))  # both accounts: 20 s
    asked = len(aws.calls("DescribeEnvironmentHealth"))
    worker.watch(start + timedelta(seconds=60))  # within the wait: not asked
    assert len(aws.calls("DescribeEnvironmentHealth")) == asked
    # A throttle the detectors meet first holds the sampler back too.
    worker.watch(start + timedelta(seconds=120))
    asked = len(aws.calls("DescribeEnvironmentHealth"))
    assert asked == 6  # the first watch's two, the sampler's two and this watch's two
    worker.sample_beanstalk(start + timedelta(seconds=130))
    assert len(aws.calls("DescribeEnvironmentHealth")) == asked
    # Health unread for longer than an incident's quiet time: still open.
    worker.sample_beanstalk(start + timedelta(minutes=11, seconds=50))
    worker.watch(start + timedelta(minutes=12))
    assert worker.alerts.state(key) == "open"
    worker.heartbeat(start + timedelta(minutes=12))
    trouble = Heartbeats(worker.db).latest(leader_only=False).trouble or ""
    assert "throttled by AWS" in trouble


class _CloudWatchAnswering:
    """A CloudWatch client answering GetMetricData with these minutes' sums, as AWS does:
    a minute without a datapoint is absent, newest first."""

    def __init__(self, sums: dict[datetime, float]) -> None:
        self.sums = sums

    def get_metric_data(self, **query):
        minutes = sorted(
            (at for at in self.sums if query["StartTime"] <= at < query["EndTime"]), reverse=True
        )
        return {
            "MetricDataResults": [
                {
                    "Id": "requests",
                    "Timestamps": minutes,
                    "Values": [self.sums[at] for at in minutes],
                    "StatusCode": "Complete",
                }
            ]
        }


def test_the_newest_minutes_cloudwatch_has_not_reported_are_left_out_not_read_as_zero():
    # Load balancer metrics arrive a minute or two late: the newest minute of every
    # `/deploy metrics` read 0, a drop on the sparkline and the rate a fifth low over 5 min.
    until = datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC)
    noon = until.replace(second=0)
    sums = {noon - timedelta(minutes=m): 100.0 for m in (5, 4, 2)}  # minute 3 was quiet
    client = _CloudWatchAnswering(sums)
    assert cloudwatch.requests_per_minute(client, "app/shop/1", until, 5) == [100, 100, 0, 100]
    sums[noon - timedelta(minutes=1)] = 40.0
    assert cloudwatch.requests_per_minute(client, "app/shop/1", until, 5) == [100, 100, 0, 100, 40]
    # A minute missing mid-range was quiet; of the newest, two at most are taken as late.
    later = until + timedelta(minutes=3)
    assert cloudwatch.requests_per_minute(client, "app/shop/1", later, 8) == [
        100, 100, 0, 100, 40, 0,
    ]  # fmt: skip


def test_metrics_rate_covers_the_reported_minutes_and_says_the_newest_is_not_in_yet():
    traffic = Traffic(
        per_minute=(100, 100, 0, 100),
        latest_seconds=10,
        latest_requests=12,
        latest_statuses={"2xx": 12},
        latency_ms={},
        unreported_minutes=1,
    )
    text = message(PlatformMetrics("shop", 5, traffic))["text"]
    assert "Requests: 300 (75.0/min)" in text
    assert "the newest minute is left out: CloudWatch has no requests for it yet" in text
    two = message(
        PlatformMetrics("shop", 5, replace(traffic, per_minute=(1, 2, 3), unreported_minutes=2))
    )
    assert "Requests: 6 (2.0/min)" in two["text"]
    assert (
        "the newest 2 minutes are left out: CloudWatch has no requests for them yet" in two["text"]
    )


def test_a_quiet_app_is_not_told_its_newest_minutes_are_late():
    # No traffic: CloudWatch has no datapoint for any minute, so the newest two are left out
    # as maybe late. It said they were "not in CloudWatch yet", as if they were on their way,
    # for an app that simply had no requests; the bot cannot tell late from quiet, so it
    # says what it knows and why they are left out.
    quiet = Traffic(
        per_minute=(0, 0, 0),
        latest_seconds=10,
        latest_requests=0,
        latest_statuses={},
        latency_ms={},
        unreported_minutes=2,
    )
    text = message(PlatformMetrics("shop", 5, quiet))["text"]
    assert "not in CloudWatch yet" not in text, text
    assert (
        "(the newest 2 minutes are left out: CloudWatch has no requests for them yet, "
        "and it reports a minute or two late)"
    ) in text, text


def test_an_environment_with_basic_health_is_not_asked_and_logged_every_10_s(
    aws,  # noqa: F811
    worker_calling_once,
    caplog,
):
    # AWS refuses DescribeEnvironmentHealth with enhanced health off, and will until someone
    # turns it on: the sampler had asked every 10 s and logged a warning each time, 8,640
    # calls and lines a day for one environment.
    [env] = aws._find("shop-prod", "us-east-1", None)
    env.enhanced_health = False
    start = datetime.now(UTC)
    with caplog.at_level("WARNING", logger="bot.worker.beanstalk_sampler"):
        for step in range(31):  # five minutes, every 10 s
            worker_calling_once.sample_beanstalk(start + timedelta(seconds=10 * step))
    asked = [c for c in aws.calls("DescribeEnvironmentHealth") if c.region == "us-east-1"]
    assert len(asked) <= 3, len(asked)
    said = [r for r in caplog.records if getattr(r, "app", None) == "shop"]
    assert len(said) == 1 and "enhanced health reporting" in said[0].error
    # Turned on, it is sampled again once the wait is over.
    env.enhanced_health = True
    later = start + timedelta(minutes=11)
    worker_calling_once.sample_beanstalk(later)
    again = [c for c in aws.calls("DescribeEnvironmentHealth") if c.region == "us-east-1"]
    assert len(again) == len(asked) + 1
