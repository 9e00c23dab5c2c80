"""CloudWatch for the sandbox and tests: moto's server on 127.0.0.1, which boto3 reaches over
real HTTP as it would reach AWS (moto's CloudWatch is complete for `GetMetricData`).

moto is a development dependency (`make demo` installs it); `FakeCloudWatch.available()`
says whether it is here, so the sandbox can say so instead of failing. moto keeps its
state per process, not per server, so `start()` empties it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import boto3
import requests
from botocore.config import Config as BotoConfig

from bot.platforms.cloudwatch import request_metric

BATCH = 500  # datapoints per PutMetricData, well under the API's 1,000
# botocore gzips large PutMetricData bodies; moto's server cannot read them.
_CONFIG = BotoConfig(disable_request_compression=True)


class FakeCloudWatch:
    def __init__(self) -> None:
        self._server: Any = None
        self._url: str | None = None

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("moto") is not None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeCloudWatch is not started")
        return self._url

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer  # a development dependency

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        requests.post(f"{self._url}/moto-api/reset", timeout=5).raise_for_status()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def publish_requests(
        self,
        load_balancer: str,
        per_minute: Mapping[datetime, int],
        *,
        region: str,
        access_key: str,
    ) -> None:
        """Put `RequestCount` datapoints for a load balancer, as it would itself:
        one Sum a minute, and none for a minute without requests."""
        client = boto3.client(
            "cloudwatch",
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=access_key,
            aws_secret_access_key="sandbox",
            config=_CONFIG,
        )
        where = request_metric(load_balancer)
        if where is None:
            return  # a Network Load Balancer counts no requests
        namespace, dimension = where
        points = [
            {
                "MetricName": "RequestCount",
                "Dimensions": [dimension],
                "Timestamp": minute,
                "Value": count,
                "Unit": "Count",
            }
            for minute, count in sorted(per_minute.items())
            if count > 0
        ]
        for start in range(0, len(points), BATCH):
            client.put_metric_data(Namespace=namespace, MetricData=points[start : start + BATCH])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
