"""Events: App Home, published when a user opens it and, debounced, after a change.

App Home's buttons run the same `/deploy` words through the same actions path as typed
commands (rules, guardrails, confirmation, idempotency by the click's `action_ts`, audit).
A click on App Home has no `response_url`, so answers go to the user's DM with the bot.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.slack_api import patiently
from bot.store.audit import Actor
from handlers.clicks import button_value, home_team, page_number, refuse
from handlers.delivery import approvers_channel, ask_approvers, deliver, dm_responder
from handlers.home import COMMANDS, PAGE_ACTION, PER_PAGE, Refresher, home_view
from handlers.offload import quietly
from handlers.render import safely
from policies.commands import is_app_name, parse

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    pages: dict[str, int] = {}  # the page each user last looked at: a view, not state

    def publish(client: WebClient, user_id: str, page: int | None = None) -> None:
        page = pages.get(user_id, 0) if page is None else page
        pages[user_id] = page
        actor = Actor(user_id=user_id, source=services.source)
        home = safely(lambda: services.actions.home(actor, page, PER_PAGE))
        try:
            # A background job's or the refresher's timer thread: a short 429 is waited out.
            view = home_view(home)
            patiently(lambda: client.views_publish(user_id=user_id, view=view))
        except SlackApiError as error:
            log.warning("home not published", extra={"error": error.response.get("error")})
        except OSError as error:
            # A refresh runs on a timer thread: a network failure ends it, quietly.
            log.warning("home not published", extra={"error": type(error).__name__})

    refresher = Refresher(lambda user_id: publish(app.client, user_id))
    # Only users who opened App Home on this dyno have a tab worth refreshing.
    services.changed.append(lambda user_id: refresher.soon(user_id) if user_id in pages else None)
    services.closing.append(refresher.close)

    def on_open(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        user_id = event.get("user")
        if event.get("tab") != "home":
            return
        if not isinstance(user_id, str) or not user_id:
            # Slack always names the user; a signed event without one was not made by it.
            log.warning("app_home_opened without a user ignored")
            return
        publish(client, user_id)

    def on_button(body: dict[str, Any], client: WebClient) -> None:
        action = body["actions"][0]
        user_id = body["user"]["id"]
        respond = dm_responder(client, user_id)
        app_name = button_value(body)
        # It becomes a word of the command: an app name only, so no option rides along.
        if app_name is None or not is_app_name(app_name):
            refuse(respond, body)
            return
        actor = Actor(
            user_id=user_id,
            team_id=home_team(body),
            source=services.source,
            request_key=f"home:{user_id}:{action.get('action_ts')}",
        )
        words = COMMANDS[action["action_id"]].format(app=app_name)
        result = safely(lambda: services.actions.run(actor, parse(words), from_home=True))
        # A second person must see it to approve: in the DM nobody else could.
        where = approvers_channel(services, result, app_name)
        if where is not None:
            ask_approvers(services, result, client, where, respond)
            return
        deliver(services, result, respond, client, user_id)

    def on_page(body: dict[str, Any], client: WebClient) -> None:
        user_id = body["user"]["id"]
        page = page_number(button_value(body))
        if page is None:
            refuse(dm_responder(client, user_id), body)
            return
        publish(client, user_id, page)

    # In the background: Slack gets its 200 before views.publish is called, which may be slow.
    app.event("app_home_opened")(quietly(services, on_open))
    for action_id in COMMANDS:
        app.action(action_id)(quietly(services, on_button))
    app.action(re.compile(rf"^{PAGE_ACTION}(:.*)?$"))(quietly(services, on_page))
