"""Charts into Slack: render the PNG in the background job after the ack and upload it with
`files_upload_v2` into the channel (or an incident's thread). Without the `files:write`
scope, or when the upload fails, the same numbers go out as text, with the reason.

The "Chart" button (on metrics replies and incidents; its listener is in
`handlers/actions.py`) runs `/deploy chart` through the same actions path as the typed
command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.actions.results import Chart
from bot.metrics.chart_data import summary_lines
from bot.slack_api import DEFAULT_PAUSE, patiently, rate_limited_for
from policies.commands import CHART_WINDOWS
from policies.slack_errors import UNDELIVERED_ADVICE, wait_words
from policies.slack_text import channel as channel_link
from policies.slack_text import code

if TYPE_CHECKING:
    from slack_bolt import Respond
    from slack_sdk import WebClient

CHART_ACTION = "deploybot_chart"
PLACES = ("channel", "thread", "home")  # where a Chart button's chart goes: `chart_button`
SCOPE = "files:write"

log = logging.getLogger(__name__)


def chart_button(app: str, window: str = "6h", where: str = "channel") -> dict[str, Any]:
    """A "Chart" button. `where` the chart goes: `channel` (the one clicked in), `thread`
    (the thread of the message it sits on) or `home` (from App Home: the app's channel)."""
    return {
        "type": "button",
        "action_id": CHART_ACTION,
        "text": {"type": "plain_text", "text": "Chart"},
        "value": f"{app}|{window}|{where}",
    }


def window_for(minutes: int) -> str:
    """The smallest chart window that shows `minutes` of metrics."""
    return next((w for w, m in CHART_WINDOWS.items() if m >= minutes), "7d")


def upload(
    client: WebClient,
    result: Chart,
    respond: Respond | Callable[..., None],
    channel_id: str | None,
    thread_ts: str | None = None,
    comment: str | None = None,
    *,
    raise_rate_limit: bool = False,
) -> bool:
    """Draw and upload the chart with `comment` (default: its numbers in words); fall back
    to that text, saying why, when the upload fails. Whether it was uploaded.
    `raise_rate_limit`: Slack's 429 is raised for the caller to wait out (the worker's
    digest, which pauses until `Retry-After`), not answered now without the chart."""
    from bot.metrics.chart import render  # matplotlib: only when a chart is drawn

    data = result.data
    text = comment or "\n".join(summary_lines(data))
    rendered = render(data)

    def send() -> Any:
        return client.files_upload_v2(
            channel=channel_id,
            thread_ts=thread_ts,
            file=rendered.png,
            filename=f"{data.app}-{window_for(data.minutes)}.png",
            title=data.title,
            alt_txt=f"Requests, p95 times and web {data.unit}s of {data.app}",
            initial_comment=text,
        )

    try:
        if raise_rate_limit:
            send()  # the worker's digest pauses until Retry-After instead
        else:
            patiently(send)  # a job's thread: a short 429 is waited out
        return True
    except SlackApiError as error:
        problem = error.response.get("error") or "unknown error"
        wait = rate_limited_for(error, DEFAULT_PAUSE)
        if raise_rate_limit and wait is not None:
            raise
        if wait is not None:
            why = (
                "Slack is rate-limiting the bot, so I could not upload the chart: ask again "
                f"in {wait_words(wait)}. Here are its numbers:"
            )
        elif problem == "missing_scope":
            needed = error.response.get("needed") or SCOPE
            why = (
                f"I cannot upload the chart: the bot's Slack token lacks the {code(needed)} "
                "scope (an admin adds it in the app's OAuth settings and reinstalls). "
                "Here are its numbers:"
            )
        elif problem in UNDELIVERED_ADVICE and channel_id:
            # The bot may answer in a public channel it is not in (chat:write.public, a
            # response_url), but Slack shares a file only where the bot is a member.
            why = (
                f"I could not upload the chart into {channel_link(channel_id)} "
                f"({code(problem)}): {UNDELIVERED_ADVICE[problem]} Here are its numbers:"
            )
        else:
            why = f"I could not upload the chart ({code(problem)}). Here are its numbers:"
        if comment:
            why = why.replace("Here are its numbers:", "The words without the picture:")
        log.warning("chart not uploaded", extra={"error": problem})
        respond(text=f"{why}\n{text}", response_type="in_channel", replace_original=False)
    except (SlackRequestError, OSError) as error:
        log.warning("chart not uploaded", extra={"error": type(error).__name__})
        why = "I could not upload the chart. Here are its numbers:"
        respond(text=f"{why}\n{text}", response_type="in_channel", replace_original=False)
    return False
