"""Beanstalk traffic from CloudWatch: the environment's load balancer's requests per minute.

Each kind of load balancer publishes its own way: an ALB `RequestCount` in
`AWS/ApplicationELB` by `LoadBalancer` (`app/NAME/ID`), a classic ELB `RequestCount` in
`AWS/ELB` by `LoadBalancerName`; a Network Load Balancer (`AWS/NetworkELB`) counts flows
and bytes, not requests, so there are none to read. Each publishes `RequestCount` only for
minutes that had requests, so a
missing datapoint is a quiet minute, not an outage: it reads as 0. Except at the end: load
balancer metrics arrive a minute or two late, so the newest minutes (`LATE_MINUTES` at
most) without a datapoint are not reported yet, and left out rather than read as a drop.
A failed read is a `PlatformError` in CloudWatch's own words (not Beanstalk's: the two fail
apart).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore import exceptions as boto

from bot.platforms.aws_errors import REFUSED_CREDENTIALS, THROTTLING, botocore_error
from bot.platforms.base import PlatformError, Throttled
from policies.slack_text import escape

SERVICE = "CloudWatch"
# What the bot's AWS user needs for `metrics`, named when AWS refuses it.
PERMISSION = "cloudwatch:GetMetricData"

NAMESPACE = "AWS/ApplicationELB"
CLASSIC_NAMESPACE = "AWS/ELB"
LATE_MINUTES = 2  # how late a load balancer's minute may reach CloudWatch


def load_balancer_dimension(name: str) -> str:
    """CloudWatch's `LoadBalancer` dimension (`app/NAME/ID`) from what Beanstalk reports:
    the ALB's ARN, or already the short form."""
    marker = ":loadbalancer/"
    return name.split(marker, 1)[1] if marker in name else name


def request_metric(load_balancer: str) -> tuple[str, dict[str, str]] | None:
    """Where the load balancer Beanstalk reports publishes `RequestCount`: its namespace and
    dimension; None for a Network (or Gateway) Load Balancer, which counts no requests.
    Beanstalk names an ALB or NLB by its ARN, a classic ELB by its name alone."""
    short = load_balancer_dimension(load_balancer)
    if short.startswith("app/"):
        return NAMESPACE, {"Name": "LoadBalancer", "Value": short}
    if short.startswith(("net/", "gwy/")):
        return None
    return CLASSIC_NAMESPACE, {"Name": "LoadBalancerName", "Value": short}


def requests_per_minute(
    cloudwatch: Any, load_balancer: str, until: datetime, minutes: int, app: str = ""
) -> list[int]:
    """Requests in each of the `minutes` whole minutes before `until`, oldest first, up to
    the newest minute CloudWatch has reported: of the newest `LATE_MINUTES`, those after the
    last datapoint are left off (so the list may be shorter than `minutes`)."""
    end = until.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes)
    try:
        result = _get(cloudwatch, load_balancer, start, end)
    except boto.ClientError as error:
        raise _client_error(error, app) from None
    except boto.BotoCoreError as error:
        raise botocore_error(error, SERVICE, app) from None
    counts = [0] * minutes
    newest = -1
    for series in result.get("MetricDataResults", []):
        for stamp, value in zip(
            series.get("Timestamps", []), series.get("Values", []), strict=False
        ):
            index = int((stamp - start).total_seconds() // 60)
            if 0 <= index < minutes:
                counts[index] += int(value)
                newest = max(newest, index)
    return counts[: max(newest + 1, minutes - LATE_MINUTES)]


def _get(cloudwatch: Any, load_balancer: str, start: datetime, end: datetime) -> dict[str, Any]:
    where = request_metric(load_balancer)
    if where is None:
        return {}  # no requests to count: callers ask `request_metric` first, to say why
    namespace, dimension = where
    return cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "requests",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": "RequestCount",
                        "Dimensions": [dimension],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=start,
        EndTime=end,
    )


def _client_error(error: boto.ClientError, app: str) -> PlatformError:
    code = error.response.get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return PlatformError(
            f"AWS does not let the bot read CloudWatch metrics for `{app}`. An admin should "
            f"allow {PERMISSION} for the bot's AWS user.",
            app=app,
        )
    if code in REFUSED_CREDENTIALS:
        return PlatformError(
            f"AWS refused the bot's credentials for `{app}` ({code}). An admin should check "
            "the profile named in the registry.",
            app=app,
        )
    if code in (*THROTTLING, "LimitExceeded"):
        # Nothing was read: a rate limit, said as one (AWS's code is jargon to the reader).
        return Throttled(
            "CloudWatch is throttling the bot's requests. Try again in a minute.",
            until=datetime.now(UTC) + timedelta(minutes=1),
        )
    return PlatformError(
        f"CloudWatch answered {escape(code or 'an error')}. Try again in a minute."
    )
