"""Alert messages and their buttons: Restart, Scale +1, Silence 1 h, Acknowledge, Chart.

`blocks()` is what `bot.store.incidents.Alerts` stores with each notice. Restart and Scale +1
run `/deploy restart` and `/deploy scale web+1` through the same actions path as typed
commands (rules, guardrails, confirmation, audit); Silence needs the `watch` permission
on the app; anyone in the channel may acknowledge. A failed release has no remedy button:
the app still runs its last good release, which a rollback would undo.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.actions.results import Duplicate, Reply
from bot.actions.usergroups import GroupLookupFailed
from bot.slack_api import patiently
from bot.store.audit import Actor
from bot.store.incidents import Alerts
from handlers.charts import chart_button
from handlers.clicks import alert_count, home_team, refuse
from handlers.delivery import deliver
from handlers.offload import click
from handlers.render import safely
from policies.commands import is_app_name, is_process_type, parse
from policies.incidents import Incident, Notice
from policies.slack_text import code, moment

if TYPE_CHECKING:
    from slack_bolt import App, Respond
    from slack_sdk import WebClient

    from bot.services import Services

RESTART_ACTION = "deploybot_alert_restart"
SCALE_ACTION = "deploybot_alert_scale"
ROLLBACK_ACTION = "deploybot_alert_rollback"
SILENCE_ACTION = "deploybot_alert_silence"
ACK_ACTION = "deploybot_alert_ack"
SILENCE_FOR = timedelta(hours=1)
# A click on an alert the store does not hold: an old message, or a value not made by us.
UNKNOWN = "I have no record of that alert, so I did nothing. `/deploy alerts` lists the open ones."
_NOT_ACKNOWLEDGED = {
    "already": "You have already acknowledged this alert.",
    "resolved": "This alert has resolved: there is nothing to acknowledge.",
    "unknown": UNKNOWN,
}

log = logging.getLogger(__name__)

# Which remedies fit which incident; every open incident can be silenced and acknowledged.
_REMEDIES = {
    "crash": (RESTART_ACTION,),
    "router_error": (RESTART_ACTION, SCALE_ACTION),
    "slow": (RESTART_ACTION, SCALE_ACTION),
    "errors": (RESTART_ACTION, SCALE_ACTION),
    "health": (RESTART_ACTION,),
}
_LABELS = {
    RESTART_ACTION: "Restart",
    SCALE_ACTION: "Scale web +1",
    SILENCE_ACTION: "Silence 1 h",
    ACK_ACTION: "Acknowledge",
}


def blocks(notice: Notice, incident: Incident | None) -> list[dict[str, Any]] | None:
    """Block Kit for a notice. Always explicit for posts and updates: chat.update without
    blocks would keep the old buttons on a resolved incident."""
    if notice.kind == "reply":
        return None
    section = {"type": "section", "text": {"type": "mrkdwn", "text": notice.text}}
    if incident is None or incident.state != "open" or incident.severity == "info":
        return [section]
    actions = (*_REMEDIES.get(incident.kind, ()), SILENCE_ACTION, ACK_ACTION)
    # The count makes the value change as the incident grows: one restart per state of it.
    value = f"{incident.key}|{incident.count}"
    elements = [
        {
            "type": "button",
            "action_id": action,
            "text": {"type": "plain_text", "text": _LABELS[action]},
            "value": value,
            **({"style": "danger"} if action == RESTART_ACTION else {}),
        }
        for action in actions
    ]
    # The last six hours of the app's traffic and scaling, into the incident's thread.
    elements.append(chart_button(_parts(incident.key)[1], "6h", where="thread"))
    return [section, {"type": "actions", "elements": elements}]


def command_for(action_id: str, key: str) -> str:
    """The `/deploy` words a remedy button stands for."""
    kind, app, subject = _parts(key)
    if action_id == SCALE_ACTION:
        return f"scale web+1 {app}"
    # A crash names its process type: restart those dynos, not the whole app.
    return f"restart {app} {subject}" if kind == "crash" else f"restart {app}"


def register(app: App, services: Services) -> None:
    alerts = Alerts(services.db)

    def remedy(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        action_id = body["actions"][0]["action_id"]
        key, count = _value(body)
        kind, app_name, subject = _parts(key)
        if not is_app_name(app_name) or (kind == "crash" and not is_process_type(subject)):
            # The value becomes command words: only names we could have made go through.
            refuse(respond, body)
            return
        if alert_count(count) is None:
            # A forged count ("", "01") had made a second claim: one more restart.
            refuse(respond, body)
            return
        words = command_for(action_id, key)
        state = alerts.state(key)
        if state != "open":
            # A window left open still shows the buttons the resolved message lost: the app
            # has recovered, and a restart now would only interrupt it.
            resolved = (
                f"This alert has resolved, so I did nothing. If {code(app_name)} still needs "
                f"it, send {code('/deploy ' + words)}."
            )
            _say(respond, UNKNOWN if state is None else resolved)
            return
        # One claim per button and state of the incident: two people clicking Restart on
        # one crash restart it once.
        claim = f"alert:{action_id}:{key}:{count}"
        actor = _actor(body, services.source, claim)
        result = safely(lambda: services.actions.run(actor, parse(words)))
        if isinstance(result, Duplicate):
            respond(
                text=f"This alert's {_LABELS[action_id]} button was already used, so I did "
                f"nothing this time. To do it again, send `/deploy {words}`.",
                replace_original=False,
                response_type="ephemeral",
            )
            return
        if isinstance(result, Reply) and not result.public:
            # Refused, or failed before any change: the button stays for the next click.
            # (A public reply may report a change that might have been made; a prompt
            # keeps the claim, so a second click is told to type the command.)
            services.request_keys.release(claim)
        deliver(services, result, respond, client, actor.channel_id)

    def silence(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        key, _ = _value(body)
        app_name = _parts(key)[1]
        if not is_app_name(app_name):
            # The gate's refusal names the app: only a name we could have made goes in.
            refuse(respond, body)
            return
        actor = _actor(body, services.source)
        kind, _, subject = _parts(key)
        # In the history as the words of a command would be: it hides an alert for an hour.
        words = " ".join(part for part in ("silence", app_name, kind, subject, "for 1h") if part)
        try:
            decision = services.gate.decide(actor, "watch", app_name)
        except GroupLookupFailed as error:
            # Restart answers this through the actions path; Silence asks the gate itself.
            _say(respond, str(error))
            return
        if not decision.allowed:
            services.audit.record(actor, "silence", app_name, words, "refused", decision.reason)
            _say(respond, decision.reason)
            return
        now = datetime.now(UTC)
        silenced = alerts.silence(key, now + SILENCE_FOR)
        if silenced is None:
            _say(respond, UNKNOWN)
            return
        if not silenced.changed:
            until = moment(silenced.until, now)
            _say(respond, f"This alert is already silenced until {until}.")
            return
        services.audit.record(actor, "silence", app_name, words, "ok")
        # In each reader's own time zone, as the alert's other times are.
        note = f"Silenced until {moment(silenced.until, now)} by <@{actor.user_id}>."
        if silenced.state != "open":
            # Under "Resolved" a bare silence reads as a click on the wrong alert; it is on
            # purpose: the silence holds if the incident reopens within the hour.
            note += " This alert has resolved: the silence holds if it comes back before then."
        _in_thread(client, body, note)

    def acknowledge(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        key, _ = _value(body)
        actor = _actor(body, services.source)
        done = alerts.acknowledge(key, actor.user_id)
        if done == "acknowledged":
            _in_thread(client, body, f"<@{actor.user_id}> is looking into it.")
        else:
            _say(respond, _NOT_ACKNOWLEDGED[done])

    def old_rollback(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        # Failed-release alerts posted before had a Rollback button, which offered to undo
        # the last good release (the one the app still runs): it now only says so.
        app_name = _parts(_value(body)[0])[1]
        if not is_app_name(app_name):
            refuse(respond, body)
            return
        respond(
            text=f"`{app_name}` still runs its last good release, since a failed release never "
            f"goes live, so there is nothing to roll back. `/deploy releases {app_name}` shows "
            "which it runs.",
            replace_original=False,
            response_type="ephemeral",
        )

    for action_id in (RESTART_ACTION, SCALE_ACTION):
        app.action(action_id)(click(services, remedy))
    app.action(ROLLBACK_ACTION)(click(services, old_rollback))
    app.action(SILENCE_ACTION)(click(services, silence))
    app.action(ACK_ACTION)(click(services, acknowledge))


def _say(respond: Respond, text: str) -> None:
    respond(text=text, replace_original=False, response_type="ephemeral")


def _parts(key: str) -> tuple[str, str, str]:
    kind, _, rest = key.partition(":")
    app, _, subject = rest.partition(":")
    return kind, app, subject


def _value(body: dict[str, Any]) -> tuple[str, str]:
    key, _, count = str(body["actions"][0]["value"]).partition("|")
    return key, count


def _actor(body: dict[str, Any], source: str, request_key: str | None = None) -> Actor:
    return Actor(
        user_id=body["user"]["id"],
        team_id=home_team(body),
        channel_id=(body.get("channel") or {}).get("id"),
        source=source,
        request_key=request_key,
    )


def _in_thread(client: WebClient, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id")
    ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
    try:
        # A click's background job (handlers.offload): a short 429 is waited out there.
        patiently(lambda: client.chat_postMessage(channel=channel or "", thread_ts=ts, text=text))
    except SlackApiError as error:
        # The state is stored either way; only the thread note is missing.
        log.warning("alert thread note not posted", extra={"error": error.response.get("error")})
