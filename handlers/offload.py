"""Ack on the request's thread, then hand the work to the process's bounded background
runner (`bot.actions.background`) as a named job with plain data, instead of bolt's lazy
listeners.

Bolt's lazy listener runner deep-copies the whole request for each lazy function; these
listeners pass on only the payload dict and the `response_url`: under gunicorn the job
runs in a child process, so what crosses is data, and the job rebuilds `respond` (over
kept-alive connections, `handlers.replies`) and the Web API client there. When the runner
is full the user gets a plain "busy, try again" at once; if the process running a click's
job dies, the user is told (`LOST`), and if the dyno stops before the job starts, that
nothing was done (`NOT_RUN`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Respond

from bot.actions.background import BUSY, LOST, NOT_RUN
from handlers.clicks import button_value, refuse
from handlers.delivery import dm_responder
from handlers.replies import respond_to

if TYPE_CHECKING:
    from slack_bolt import Ack
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger(__name__)

Work = Callable[[dict[str, Any], Respond, "WebClient"], None]


def job_name(work: Callable[..., Any]) -> str:
    """The name a listener's work is registered under: where it is defined."""
    return f"{work.__module__}.{work.__qualname__}"


def answer_lost(response_url: str | None, *, started: bool) -> None:
    """Tell the user, on the job's `response_url`, that its process was cut off while it
    ran (`started`) or stopped before it began."""
    if response_url:
        respond_to(response_url)(
            text=LOST if started else NOT_RUN, replace_original=False, response_type="ephemeral"
        )
    else:
        log.error("a background job was lost and has no response_url to say so on")


def click(services: Services, work: Work) -> Callable[..., None]:
    """A button's listener: ack empty, run `work(body, respond, client)` in the background;
    busy: say so through the click's response_url. Every such button carries a value, so a
    click without one is refused here, before `work` reads it."""
    name = job_name(work)
    if name not in services.background:

        def job(body: dict[str, Any], response_url: str | None) -> None:
            client = services.slack()
            # Slack sends a response_url with every click on a message; App Home's have none
            # (and neither may a forged one), and their answers go to the user's DM.
            respond = (
                respond_to(response_url)
                if response_url
                else dm_responder(client, body["user"]["id"])
            )
            if button_value(body) is None:
                refuse(respond, body)
                return
            work(body, respond, client)

        def lost(body: dict[str, Any], response_url: str | None, *, started: bool) -> None:
            answer_lost(response_url, started=started)

        services.background.register(name, job, lost=lost)

    def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        if not services.background.try_submit(name, body, respond.response_url):
            respond(text=BUSY, replace_original=False, response_type="ephemeral")

    return listener


def quietly(
    services: Services, work: Callable[[dict[str, Any], WebClient], None]
) -> Callable[..., None]:
    """An App Home listener (no response_url to answer on): ack, run `work(body, client)` in
    the background; busy: log it, as the user can simply click again."""
    name = job_name(work)
    if name not in services.background:
        services.background.register(name, lambda body: work(body, services.slack()))

    def listener(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if not services.background.try_submit(name, body):
            log.warning("background pool full: an App Home action was dropped")

    return listener
