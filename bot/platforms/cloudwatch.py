"""Beanstalk traffic from CloudWatch: the environment's load balancer's requests per minute.

`AWS/ApplicationELB` publishes `RequestCount` only for minutes that had requests, so a
missing datapoint is a quiet minute, not an outage: it reads as 0.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

NAMESPACE = "AWS/ApplicationELB"


def load_balancer_dimension(name: str) -> str:
    """CloudWatch's `LoadBalancer` dimension (`app/NAME/ID`) from what Beanstalk reports:
    the ALB's ARN, or already the short form."""
    marker = ":loadbalancer/"
    return name.split(marker, 1)[1] if marker in name else name


def requests_per_minute(
    cloudwatch: Any, load_balancer: str, until: datetime, minutes: int
) -> list[int]:
    """Requests in each of the `minutes` whole minutes before `until`, oldest first."""
    end = until.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "requests",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": "RequestCount",
                        "Dimensions": [
                            {
                                "Name": "LoadBalancer",
                                "Value": load_balancer_dimension(load_balancer),
                            }
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=start,
        EndTime=end,
    )
    counts = [0] * minutes
    for series in result.get("MetricDataResults", []):
        for stamp, value in zip(
            series.get("Timestamps", []), series.get("Values", []), strict=False
        ):
            index = int((stamp - start).total_seconds() // 60)
            if 0 <= index < minutes:
                counts[index] += int(value)
    return counts
