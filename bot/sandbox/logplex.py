"""Heroku's logplex for the sandbox: each demo app with a log drain gets router lines POSTed
to it over HTTP, as Heroku sends them, so `/deploy drain demo` is followed by traffic and
`/deploy metrics demo` shows it a few seconds later.

The lines are made up: a steady rate per app, spread over its web dynos, with service
times drawn from a lognormal. Everything after them is real: the bot's drain endpoint
(the token in the URL, logplex framing), the parser, the aggregator and the flush.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import requests

from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.router import frame, post_frames

log = logging.getLogger(__name__)

DEFAULT_RPM = 120.0  # requests a minute each drained demo app serves
_PATHS = ("/", "/products", "/cart", "/api/items", "/search?q=boots")


class Logplex:
    def __init__(self, heroku: FakeHeroku, rpm: float = DEFAULT_RPM, seed: int = 15) -> None:
        self._heroku = heroku
        self._rpm = rpm
        self._random = random.Random(seed)
        self._session = requests.Session()
        self._session.trust_env = False
        self._owed: dict[str, float] = {}  # fractions of a request carried to the next pump
        self._frames = 0

    def pump(self, seconds: float, now: datetime | None = None) -> int:
        """Send each drained app the lines of the last `seconds`; returns lines sent."""
        now = now or datetime.now(UTC)
        sent = 0
        for app in self._heroku.app_names():
            drains = self._heroku.log_drains(app)
            if not drains:
                continue
            owed = self._owed.get(app, 0.0) + self._rpm * seconds / 60
            count, self._owed[app] = int(owed), owed - int(owed)
            dynos = [d["name"] for d in self._heroku.dynos(app) if d["type"] == "web"]
            if not dynos:
                continue  # no web dynos, no requests served (Heroku would log H14s)
            frames = [self._line(app, now, seconds, dynos) for _ in range(count)]
            if frames:
                for drain in drains:
                    self._post(drain["url"], frames)
                sent += len(frames)
        return sent

    def close(self) -> None:
        self._session.close()

    def _line(self, app: str, now: datetime, seconds: float, dynos: list[str]) -> str:
        when = now - timedelta(seconds=self._random.uniform(0, seconds))
        service = max(1, int(self._random.lognormvariate(4.0, 0.6)))
        status = 500 if self._random.random() < 0.005 else 200
        message = (
            f"<158>1 {when.isoformat()} host heroku router - at=info method=GET "
            f'path="{self._random.choice(_PATHS)}" host={app}.herokuapp.com '
            f'request_id={self._random.getrandbits(64):016x} fwd="10.0.0.1" '
            f"dyno={self._random.choice(dynos)} connect=1ms service={service}ms "
            f"status={status} bytes=512 protocol=https\n"
        )
        return frame(message)

    def _post(self, url: str, frames: list[str]) -> None:
        self._frames += 1
        post_frames(self._session, url, frames, f"sandbox-{self._frames}")
