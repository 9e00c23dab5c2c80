"""Button clicks on confirmation messages (Confirm acts once, Cancel changes nothing) and
the "Chart" button of metrics replies and incidents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.actions.results import Chart
from bot.metrics.chart_data import span_words
from bot.store.audit import Actor
from handlers.charts import CHART_ACTION, PLACES, upload
from handlers.clicks import home_team, refuse
from handlers.delivery import deliver, dm_responder
from handlers.offload import click
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION, safely
from policies.commands import CHART_WINDOWS, Command, is_app_name
from policies.slack_text import code

if TYPE_CHECKING:
    from slack_bolt import App, Respond
    from slack_sdk import WebClient

    from bot.services import Services


def register(app: App, services: Services) -> None:
    def confirm(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, confirmation_id = _click(body, services.source)
        result = safely(lambda: services.actions.confirm(actor, confirmation_id))
        deliver(services, result, respond, client, actor.channel_id, from_button=True)

    def cancel(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, confirmation_id = _click(body, services.source)
        result = safely(lambda: services.actions.cancel(actor, confirmation_id))
        deliver(services, result, respond, client, actor.channel_id, from_button=True)

    def chart(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, value = _click(body, services.source)
        name, _, rest = value.partition("|")
        window, _, where = rest.partition("|")
        # The app becomes the command's as it is; the window and place are ones we wrote.
        if not is_app_name(name) or window not in CHART_WINDOWS or where not in PLACES:
            refuse(respond, body)
            return
        thread_ts, channel = None, actor.channel_id
        # A click without a channel came from App Home, whatever place its value names (a
        # forged one): uploaded to no channel, the chart had been shared nowhere, unsaid.
        home = where == "home" or channel is None
        if where == "thread" and not home:
            container = body.get("container") or {}
            thread_ts = container.get("thread_ts") or container.get("message_ts")
        if home:
            # App Home has no channel and no response_url: the app's channel, else a DM.
            respond = dm_responder(client, actor.user_id)
            channel = services.registry.channel_of(name)
            if channel is None:
                respond(
                    text=f"{code(name)} has no channel in the registry to post its chart in: "
                    f"run {code(f'/deploy chart {name}')} in a channel."
                )
                return
        command = Command("chart", app=name, limit=CHART_WINDOWS[window])
        result = safely(lambda: services.actions.run(actor, command))
        if home and isinstance(result, Chart):
            # The chart goes to a channel the Home tab does not show: say which.
            if upload(client, result, respond, channel):
                span = span_words(result.data.minutes)
                respond(text=f"I posted the chart of {code(name)} ({span}) in <#{channel}>.")
            return
        deliver(services, result, respond, client, channel, thread_ts=thread_ts)

    app.action(CONFIRM_ACTION)(click(services, confirm))
    app.action(CANCEL_ACTION)(click(services, cancel))
    app.action(CHART_ACTION)(click(services, chart))


def _click(body: dict[str, Any], source: str) -> tuple[Actor, str]:
    actor = Actor(
        user_id=body["user"]["id"],
        team_id=home_team(body),
        channel_id=(body.get("channel") or {}).get("id"),
        source=source,
    )
    return actor, body["actions"][0]["value"]  # `offload.click` refuses a click without one
