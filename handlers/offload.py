"""Ack on the request's thread, then hand the work to the process's bounded background
pool (`bot.actions.background`), instead of bolt's lazy listeners.

Bolt's lazy listener runner deep-copies the whole request for each lazy function; these
listeners pass on only the payload dict, `respond` and the client, which nothing mutates
after the ack. When the pool is full the user gets a plain "busy, try again" at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.actions.background import BUSY

if TYPE_CHECKING:
    from slack_bolt import Ack, Respond
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger(__name__)

Work = Callable[[dict[str, Any], "Respond", "WebClient"], None]


def click(services: Services, work: Work) -> Callable[..., None]:
    """A button's listener: ack empty, run `work(body, respond, client)` in the background;
    busy: say so through the click's response_url."""

    def listener(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        if not services.background.try_submit(work, body, respond, client):
            respond(text=BUSY, replace_original=False, response_type="ephemeral")

    return listener


def quietly(
    services: Services, work: Callable[[dict[str, Any], WebClient], None]
) -> Callable[..., None]:
    """An App Home listener (no response_url to answer on): ack, run `work(body, client)` in
    the background; busy: log it, as the user can simply click again."""

    def listener(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        if not services.background.try_submit(work, body, client):
            log.warning("background pool full: an App Home action was dropped")

    return listener
