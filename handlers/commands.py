"""`/deploy`: ack at once with a one-line answer, then do the work on the background pool
(`handlers.offload` says why not a bolt lazy listener); a full pool is answered "busy"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.actions.background import BUSY
from bot.store.audit import Actor
from handlers.delivery import deliver
from handlers.render import safely
from policies.commands import Command, CommandError, help_text, parse
from policies.slack_text import code

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond
    from slack_sdk import WebClient

    from bot.services import Services


def register(app: App, services: Services) -> None:
    def on_deploy(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        parsed = _parse(command)
        if isinstance(parsed, CommandError):
            ack(response_type="ephemeral", text=parsed.message)
        elif parsed.verb == "help":
            ack(response_type="ephemeral", text=help_text(parsed.topic))
        elif services.background.try_submit(run_deploy, parsed, command, respond, client):
            ack(response_type="ephemeral", text=f"Working on {code(parsed.text())}…")
        else:
            ack(response_type="ephemeral", text=BUSY)

    def run_deploy(
        parsed: Command, command: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        actor = Actor(
            user_id=command["user_id"],
            team_id=command.get("team_id"),
            channel_id=command.get("channel_id"),
            source=services.source,
            request_key=f"slash:{command['trigger_id']}" if command.get("trigger_id") else None,
            reply_to=command.get("response_url"),
        )
        result = safely(lambda: services.actions.run(actor, parsed))
        deliver(services, result, respond, client, actor.channel_id)

    app.command("/deploy")(on_deploy)


def _parse(command: dict[str, Any]) -> Command | CommandError:
    try:
        return parse(command.get("text", ""))
    except CommandError as error:
        return error
