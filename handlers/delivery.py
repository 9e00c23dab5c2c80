"""Delivering results: through `response_url`, or, for slow changes, as a channel message
whose thread later carries the follow-up ("Ready" or the events that explain a failure)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.actions.results import (
    BreakGlass,
    Changed,
    Deployed,
    Duplicate,
    Reply,
    Restarted,
    Result,
)
from handlers.render import break_glass_message, message, settled_message

if TYPE_CHECKING:
    from slack_bolt import Respond
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger(__name__)


def deliver(
    services: Services,
    result: Result,
    respond: Respond,
    client: WebClient,
    channel_id: str | None,
    *,
    from_button: bool = False,
) -> None:
    if isinstance(result, Duplicate):
        return  # the first delivery of this request answers it
    if isinstance(result, Changed | Restarted | Deployed) and result.break_glass is not None:
        _announce_break_glass(client, result.break_glass, channel_id)
    payload = message(result)
    if isinstance(result, Changed | Restarted | Deployed) and result.slow:
        _deliver_slow(services, result, payload, respond, client, channel_id, from_button)
    elif from_button:
        # A private reply (not yours, already decided) must leave the buttons for their owner.
        private = isinstance(result, Reply) and not result.public
        respond(**payload, replace_original=not private)
    else:
        respond(**payload)


def _announce_break_glass(client: WebClient, notice: BreakGlass, asked_in: str | None) -> None:
    channel = notice.channel or asked_in
    try:
        client.chat_postMessage(channel=channel or "", **break_glass_message(notice))
    except SlackApiError as error:
        # The change itself stands and its audit row names the reason; say why it went unsaid.
        log.warning(
            "break-glass notice not posted",
            extra={"channel": channel, "error": error.response.get("error")},
        )


def _deliver_slow(
    services: Services,
    result: Changed | Restarted | Deployed,
    payload: dict[str, Any],
    respond: Respond,
    client: WebClient,
    channel_id: str | None,
    from_button: bool,
) -> None:
    text = payload["text"] + " Updating; I will follow up in this thread."
    try:
        posted = client.chat_postMessage(channel=channel_id or "", text=text)
    except SlackApiError as error:
        # Not in the channel (or a DM): answer through response_url and follow up there.
        log.info("follow-up thread unavailable", extra={"error": error.response.get("error")})
        respond(**{**payload, "text": text}, replace_original=from_button)
        services.followups.start(
            lambda stopping: respond(
                **settled_message(services.actions.follow_up(result, stopping))
            )
        )
        return
    if from_button:
        respond(delete_original=True)
    thread = {"channel": posted["channel"], "thread_ts": posted["ts"]}
    services.followups.start(
        lambda stopping: client.chat_postMessage(
            **thread, **settled_message(services.actions.follow_up(result, stopping))
        )
    )
