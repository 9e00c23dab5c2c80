"""Delivering results: through `response_url`, or, for slow changes, as a channel message
whose thread later carries the follow-up ("Ready" or the events that explain a failure);
charts as uploaded images.

When the worker has stopped ticking, every reply that changes something carries one line
saying so, and the admins' channel hears it once, straight through the Web API (the
alert outbox needs the very worker that stopped)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.actions.health import WORKER_DOWN
from bot.actions.results import (
    BreakGlass,
    Changed,
    Chart,
    Deployed,
    Duplicate,
    NeedsConfirmation,
    Reply,
    Restarted,
    Result,
)
from bot.slack_api import ADMIN_PAUSE, DEFAULT_PAUSE, patiently, rate_limited_for
from bot.store.audit import utcnow
from handlers.charts import upload
from handlers.render import break_glass_message, message, settled_message
from policies.slack_errors import UNDELIVERED_ADVICE, wait_words
from policies.slack_text import code

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
    thread_ts: str | None = None,
) -> None:
    if isinstance(result, Duplicate):
        return  # the first delivery of this request answers it
    if isinstance(result, Chart):
        upload(client, result, respond, channel_id, thread_ts)
        return
    if isinstance(result, Changed | Restarted | Deployed) and result.break_glass is not None:
        _announce_break_glass(client, result.break_glass, channel_id)
    payload = message(result)
    if _changes_something(result):
        payload = _warn_if_worker_down(services, client, payload)
    if isinstance(result, Changed | Restarted | Deployed):
        for listener in services.changed:
            listener(result.user_id)  # App Home refreshes, debounced
    if isinstance(result, Changed | Restarted | Deployed) and result.slow:
        _deliver_slow(services, result, payload, respond, client, channel_id, from_button)
    elif from_button:
        # A private reply (not yours, already decided) must leave the buttons for their owner.
        private = isinstance(result, Reply) and not result.public
        respond(**payload, replace_original=not private)
    else:
        respond(**payload)


def approvers_channel(services: Services, result: Result, app: str | None) -> str | None:
    """The app's channel for a change a second person must approve, when it has one: asked
    where only the asker sees it (App Home, a DM), nobody who could approve it would."""
    if not (isinstance(result, NeedsConfirmation) and result.approval and app):
        return None
    return services.registry.channel_of(services.registry.canonical(app))


def ask_approvers(
    services: Services,
    result: Result,
    client: WebClient,
    channel: str,
    tell: Callable[..., Any],
) -> bool:
    """Post `result`, a request a second person must approve, in the app's `channel`; when
    Slack refuses it there (the bot is not in it, it is archived), say why through `tell`,
    which reaches the asker. False then: the request had waited there unseen until it
    expired, and the asker heard nothing."""
    try:
        deliver(services, result, dm_responder(client, channel), client, channel)
    except SlackApiError as error:
        problem = str(error.response.get("error"))
        log.warning("approval request not posted", extra={"channel": channel, "error": problem})
        wait = rate_limited_for(error, DEFAULT_PAUSE)
        if wait is not None:  # longer than `patiently` waits on this job's thread
            advice = f"Slack is rate-limiting the bot. Ask again in {wait_words(wait)}."
        else:
            advice = UNDELIVERED_ADVICE.get(
                problem, f"Slack refused to post it there ({code(problem)})."
            )
            advice += " Then ask again."
        tell(
            response_type="ephemeral",
            text=f"I could not ask for approval in <#{channel}>, as {advice}",
        )
        return False
    return True


def dm_responder(client: WebClient, user_id: str) -> Callable[..., None]:
    """A `respond` for clicks without a `response_url` (App Home): answers go to the user's
    DM with the bot, which only they see (or to the channel `user_id` names instead)."""

    def respond(**payload: Any) -> None:
        if payload.get("delete_original") and not payload.get("text"):
            return  # nothing to delete in a DM
        fields = {k: v for k, v in payload.items() if k in ("text", "blocks")}
        # On a job's thread (clicks without a response_url come only through one).
        patiently(lambda: client.chat_postMessage(channel=user_id, **fields))

    return respond


def public_as_bot(respond: Respond, client: WebClient, channel_id: str | None) -> Respond:
    """`respond` for a slash command whose words hold a secret (`config set K=V`): Slack
    shows the command as it was typed beside any `in_channel` answer to its `response_url`,
    so a public answer is posted as the bot's own message in the channel instead, and only
    private answers use `response_url`. Where the bot cannot post (a channel it is not in,
    a DM between people, or Slack rate-limits it past a short wait), the answer goes to the
    asker alone."""

    def send(**payload: Any) -> Any:
        if payload.get("response_type") != "in_channel":
            return respond(**payload)
        fields = {k: v for k, v in payload.items() if k in ("text", "blocks")}
        try:
            # On the command's job thread: a short 429 is waited out, as every post there is,
            # rather than the channel's answer becoming one only the asker sees.
            return patiently(lambda: client.chat_postMessage(channel=channel_id or "", **fields))
        except SlackApiError as error:
            log.info("public answer kept private", extra={"error": error.response.get("error")})
            return respond(**{**payload, "response_type": "ephemeral"})

    return send  # type: ignore[return-value]


def _changes_something(result: Result) -> bool:
    return isinstance(result, Changed | Restarted | Deployed | NeedsConfirmation) or (
        isinstance(result, Reply) and result.public
    )


def _warn_if_worker_down(services: Services, client: WebClient, payload: Message) -> Message:
    """The payload with the worker-down line added when the worker has stopped ticking."""
    if services.source == "console":
        return payload  # the sandbox console runs no worker: the line would always show
    try:
        beat = services.health.beat()
        down = services.health.worker_down(beat, checked=True)
    except Exception as error:
        # A health check must never cost the user their answer.
        log.warning("worker health unknown", extra={"error": type(error).__name__})
        return payload
    if not down:
        return payload
    line = f":warning: {WORKER_DOWN[0].upper()}{WORKER_DOWN[1:]}."
    blocks = [*(payload.get("blocks") or []), _context(line)]
    try:
        _tell_admins_once(services, client, beat.ticked_at.isoformat() if beat else "never")
    except Exception as error:
        # The admins' post is the bot's own bookkeeping (its claim, Slack's pause): a database
        # failing there must not cost the asker the answer to a change already made.
        log.warning("admin channel not told", extra={"error": type(error).__name__})
    return {**payload, "text": f"{payload['text']}\n{line}", "blocks": blocks}


def _tell_admins_once(services: Services, client: WebClient, last_tick: str) -> None:
    channel = services.config.admin_channel
    if not channel:
        return
    now = utcnow()
    if services.throttles.until(ADMIN_PAUSE, now) is not None:
        return  # Slack's 429 asked to wait (this post's or the worker's): told after it
    claimed = f"worker-down:{last_tick}"
    if not services.request_keys.claim(claimed, now):
        return
    when = "never ticked" if last_tick == "never" else f"last ticked at {last_tick[:19]} UTC"
    text = (
        f":rotating_light: The deploybot worker {when}: {WORKER_DOWN}. "
        "Check `heroku ps` for the worker dyno (`heroku ps:scale worker=1`) and its logs."
    )
    try:
        client.chat_postMessage(channel=channel, text=text)
    except (SlackApiError, OSError) as error:
        # Never the asker's answer: a Slack that did not answer (OSError) had taken it.
        services.request_keys.release(claimed)  # try again next time
        said = error.response.get("error") if isinstance(error, SlackApiError) else None
        log.warning("admin channel not told", extra={"error": said or type(error).__name__})
        if (pause := rate_limited_for(error, DEFAULT_PAUSE)) is not None:
            # Not at the next change's reply whatever Slack asked: stored, in the pause the
            # worker's own admin post keeps, so neither dyno posts there before it ends.
            services.throttles.throttle(ADMIN_PAUSE, now + pause, now)


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


Message = dict[str, Any]


def _announce_break_glass(client: WebClient, notice: BreakGlass, asked_in: str | None) -> None:
    channel = notice.channel or asked_in
    try:
        patiently(
            lambda: client.chat_postMessage(channel=channel or "", **break_glass_message(notice))
        )
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
        lambda stopping: _follow_up_in_thread(
            client, thread, settled_message(services.actions.follow_up(result, stopping))
        )
    )


def _follow_up_in_thread(client: WebClient, thread: dict[str, Any], payload: Message) -> None:
    """Post a slow change's ending in its thread, on the follow-up pool's thread."""
    try:
        patiently(lambda: client.chat_postMessage(**thread, **payload))
    except SlackApiError as error:
        # The change stands and its audit row says how it ended; only the thread misses it.
        log.warning("follow-up not posted", extra={"error": error.response.get("error")})
