"""`/deploy`: ack at once with a one-line answer, then do the work as a background job (the
command's dict is all it gets; `handlers.offload` says why not a bolt lazy listener); a full
runner is answered "busy"."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.actions.background import BUSY
from bot.store.audit import Actor
from handlers.delivery import approvers_channel, ask_approvers, deliver, public_as_bot
from handlers.offload import answer_lost, job_name
from handlers.render import safely
from handlers.replies import respond_to
from policies.commands import Command, CommandError, help_text, parse
from policies.slack_text import shown, unescape

if TYPE_CHECKING:
    from slack_bolt import Ack, App

    from bot.registry import Registry
    from bot.services import Services

# The ack repeats the command this far: a scale of thousands of terms had been echoed whole.
ECHO_MAX = 200


def register(app: App, services: Services) -> None:
    def on_deploy(ack: Ack, command: dict[str, Any]) -> None:
        parsed = _parse(command, services.registry)
        if isinstance(parsed, CommandError):
            ack(response_type="ephemeral", text=parsed.message)
        elif parsed.verb == "help":
            note = services.gate.read_only_note(command["user_id"], command.get("channel_id"))
            text = help_text(parsed.topic)
            ack(response_type="ephemeral", text=f"{note}\n{text}" if note else text)
        elif services.background.try_submit(job, command):
            ack(
                response_type="ephemeral",
                text=f"Working on {shown(_echoed(parsed, services), ECHO_MAX)}…",
            )
        else:
            ack(response_type="ephemeral", text=BUSY)

    def run_deploy(command: dict[str, Any]) -> None:
        parsed = _parse(command, services.registry)
        assert isinstance(parsed, Command)  # the ack parsed the same text before submitting
        actor = Actor(
            user_id=command["user_id"],
            team_id=command.get("team_id"),
            enterprise_id=command.get("enterprise_id") or None,
            channel_id=command.get("channel_id"),
            source=services.source,
            request_key=f"slash:{command['trigger_id']}" if command.get("trigger_id") else None,
            # Where an expired prompt is replaced, in the channel: not for a typed secret.
            reply_to=None if _typed_secret(parsed) else command.get("response_url"),
        )
        result = safely(lambda: services.actions.run(actor, parsed))
        client = services.slack()
        respond = respond_to(command.get("response_url"))
        if _typed_secret(parsed):
            respond = public_as_bot(respond, client, actor.channel_id)
        # Slack's IDs for direct messages start with D.
        in_dm = (actor.channel_id or "").startswith("D")
        channel = approvers_channel(services, result, parsed.app) if in_dm else None
        if channel is not None:
            # Typed in a DM: a second person must see the request to approve it.
            if ask_approvers(services, result, client, channel, respond):
                respond(
                    response_type="ephemeral",
                    text=f"Asked in <#{channel}>, where someone who may approve it will see it.",
                )
            return
        deliver(services, result, respond, client, actor.channel_id)

    def lost(command: dict[str, Any], *, started: bool) -> None:
        answer_lost(command.get("response_url"), started=started)

    job = services.background.register(job_name(run_deploy), run_deploy, lost=lost)
    app.command("/deploy")(on_deploy)


def _parse(command: dict[str, Any], registry: Registry) -> Command | CommandError:
    try:
        return parse(unescape(command.get("text", "")))
    except CommandError as error:
        # `config demo frob`: the error for the word after the app, once the registry
        # lists the word before it.
        if error.if_app and registry.canonical(error.if_app[0]) in registry.spec.apps:
            return error.if_app[1]
        return error


def _typed_secret(parsed: Command) -> bool:
    """Whether the command's words hold a value to keep from the channel (`config set`)."""
    return parsed.verb == "config" and parsed.mode == "set"


def _echoed(parsed: Command, services: Services) -> str:
    """The command as the ack repeats it. A `config set` whose app is not listed may have
    taken the rest of a value typed without quotes for it (`K=two words`), so that word is
    shown as `…`, as the answer and the trail show it once the app is looked up."""
    registry = services.registry
    if (
        parsed.verb == "config"
        and parsed.mode == "set"
        and parsed.app is not None
        and registry.canonical(parsed.app) not in registry.spec.apps
    ):
        return replace(parsed, app="…").text()
    return parsed.text()
