"""The daily digest job: for each app with `digest: "09:00 Europe/Paris"` and a channel,
once past that local time, post yesterday's digest (`handlers.render.digest_text`) with its
chart into the channel.

"Once" is a claimed request key per app and local day in the database, so a restarted
worker, or a new leader, never posts a day twice. It posts straight through the Web API,
not the alert outbox: a digest carries a file, which the outbox does not.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from bot.actions.results import Chart, Digest
from bot.services import Services
from handlers.charts import upload
from handlers.render import digest_text
from policies import digest

log = logging.getLogger(__name__)


class DigestJob:
    def __init__(self, services: Services, client: WebClient) -> None:
        self._services = services
        self._client = client

    def run(self, now: datetime) -> int:
        """Post every digest due at `now` not posted yet; returns how many were posted."""
        posted = 0
        for target in self._services.registry.targets():
            if target.digest is None or target.channel is None:
                continue
            window = digest.due(target.digest, now)
            if window is None:
                continue
            day, start, end = window
            key = f"digest:{target.alias}:{day.isoformat()}"
            if not self._services.request_keys.claim(key, now):
                continue  # posted already (or being posted by another leader)
            try:
                result = self._services.dashboards.digest(target, day, start, end)
                self._post(target.channel, result)
                posted += 1
            except Exception:
                # Not posted: give the day back, so the next run tries again.
                self._services.request_keys.release(key)
                log.exception("digest not posted", extra={"app": target.alias})
        return posted

    def _post(self, channel: str, result: Digest) -> None:
        text = digest_text(result)
        if result.chart is None:
            self._client.chat_postMessage(channel=channel, text=text)
            return

        def fallback(**payload: Any) -> None:
            # The chart could not be uploaded: the digest goes out as text, saying why.
            self._client.chat_postMessage(channel=channel, text=payload["text"])

        upload(self._client, Chart(result.chart), fallback, channel, comment=text)
