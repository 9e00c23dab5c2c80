"""The console: the bot's own handlers driven from a terminal, in the spirit of Hubot's shell.

Each line becomes a correctly signed slash command dispatched to the same slack_bolt app
the web process serves; replies arrive at a local `response_url` and print as text, with
buttons as `[ Label ]` (type the label to press it). `home` shows App Home, the view the
bot publishes on its Home tab, through the same `app_home_opened` event. `--sandbox` runs
it against the fakes in `bot.sandbox.demo`, so every verb works with no accounts, and
`/deploy simulate spike APP` plays traffic there, printing what the bot posts to the
channel as it is posted.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.actions.background import Background
from bot.actions.followups import FollowUps
from bot.actions.results import Result
from bot.config import Config
from bot.registry import Registry
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.slack_requests import button_click, home_opened, sign, slash_command
from bot.services import Services
from bot.slack_api import web_client
from bot.store.audit import Actor
from bot.web.bolt_app import build_bolt_app
from bot.web.slack_edge import bolt_request
from handlers.charts import CHART_ACTION
from handlers.home import COMMANDS as HOME_COMMANDS
from handlers.render import PROMPT_LABELS
from policies.commands import Command, CommandError, parse

CONSOLE_USER = "U0CONSOLE"
# The sandbox's second person, so a protected app's approval can be given: `as teammate`.
TEAMMATE = "U0TEAMMATE"
CONSOLE_CHANNEL = "C0CONSOLE"  # where the console's slash commands say they were typed
PROMPT = "deploybot> "
_PROMPT_LABELS = {label.lower(): label for label in PROMPT_LABELS}
# Console words that are no `/deploy` verb, said after the bot's own `help`.
CONSOLE_HELP = (
    "(console only: `home` shows App Home, the bot's Home tab in Slack; `as teammate` types "
    "as a second person, `as teammate Approve` just that line; `exit` leaves)"
)
# Between live lines on a terminal, so a played spike reads as it unfolds; none otherwise.
LIVE_PAUSE_SECONDS = 0.1


class LaterExecutor(Executor):
    """Holds lazy listeners until `run_pending()`, so the console prints a command's ack
    before its work starts, and work that posts as it goes prints in between."""

    def __init__(self) -> None:
        self._pending: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._pending.append((future, fn, args, kwargs))
        return future

    def run_pending(self) -> None:
        while self._pending:
            future, fn, args, kwargs = self._pending.pop(0)
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # a listener's failure belongs to its future
                future.set_exception(error)


class ImmediateExecutor(LaterExecutor):
    """Runs work inline as it is submitted, so each console line prints its whole answer
    in order."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.run_pending()
        return future


class Console:
    def __init__(
        self,
        config: Config,
        out: TextIO | None = None,
        user_id: str = CONSOLE_USER,
        registry: Registry | None = None,
        teammate: str | None = None,
    ):
        self._out = out if out is not None else sys.stdout
        self._user_id = user_id
        # Who `as NAME` may switch to; `teammate` only where the sandbox made them an admin,
        # so against real platforms nobody approves their own change from here.
        self._people = {"you": user_id} | ({"teammate": teammate} if teammate else {})
        self._names = {uid: name for name, uid in self._people.items()}
        self._slack = FakeSlack().start()
        self._secret = secrets.token_hex(16)
        config = replace(
            config,
            slack_bot_token=self._slack.bot_token,
            slack_signing_secret=self._secret,
            slack_api_url=self._slack.api_url,
        )
        self._client = web_client(self._slack.bot_token, self._slack.api_url)
        self._dashboard_clock: Callable[[], datetime] | None = None
        # Follow-ups run inline too, so a slow change's thread prints before the next prompt.
        simulate = self._simulator(config)
        # Listeners' background work waits until run_pending(), after the ack is printed.
        self._lazy = LaterExecutor()
        self.services = Services(
            config,
            source="console",
            registry=registry,
            followups=FollowUps(ImmediateExecutor()),
            background=Background(executor=self._lazy),
            simulate=simulate,
            # Against the sandbox nothing runs the worker; elsewhere a real one may.
            worker_runs=simulate is None,
        )
        self.services.db.migrate()
        if self._dashboard_clock is not None:
            self.services.health.now = self._dashboard_clock
            from bot.sandbox import history  # a day for demo-api's chart, cost and App Home

            history.seed(self.services, datetime.now(UTC))
        self._bolt = build_bolt_app(self.services)
        # A label's button: (action_id, value, response_url, the Home tab's view id or None);
        # or, for a label on several buttons (one a card on App Home), what to type instead.
        self._buttons: dict[str, tuple[str, str, str, str | None] | str] = {}
        self._latest_labels: list[str] = []  # the newest prompt's, for a label it has not
        self._seen: dict[str, int] = {}
        self._posts_seen = 0
        self._uploads_seen = 0
        self._files: Path | None = None  # where uploaded charts are written, made on first use

    def _simulator(self, config: Config) -> Callable[[Actor, Command], Result] | None:
        """`/deploy simulate` when this console runs against the sandbox started here."""
        from bot.sandbox import demo as sandbox  # only the sandbox plays traffic

        running = sandbox.running()
        if running is None or not running.serves(config):
            return None
        # A played spike runs the fake Heroku's clock ahead of the wall clock: dashboards
        # (charts, cost) read the later of the two, so the play is in the picture.
        heroku = running.heroku
        self._dashboard_clock = lambda: max(datetime.now(UTC), heroku.now)
        return lambda actor, command: running.simulate(self.services, self._say, actor, command)

    def _say(self, channel: str | None, text: str) -> None:
        """Post as the bot does to a channel, and print it now, not after the command."""
        # An app with no channel in the registry has the console's for its channel here.
        self._client.chat_postMessage(channel=channel or CONSOLE_CHANNEL, text=text)
        self._print_posts()
        if self._out.isatty():
            time.sleep(LIVE_PAUSE_SECONDS)

    def close(self) -> None:
        self._slack.stop()
        self.services.db.dispose()

    @property
    def prompt(self) -> str:
        """The prompt, naming who types when it is not the console's own user."""
        who = self._names.get(self._user_id, "you")
        return PROMPT if who == "you" else f"deploybot (as {who})> "

    def run_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        switch = re.fullmatch(r"as\s+@?(\S+)(?:\s+(.+))?", line, flags=re.IGNORECASE)
        if switch is not None:
            name, then = switch.group(1).lower(), switch.group(2)
            if then is None or name not in self._people:
                self._switch(name)  # a stranger's name: it says who there is
            else:
                # `as teammate Approve`: that one line as them, and the console stays put.
                me, self._user_id = self._user_id, self._people[name]
                try:
                    self.run_line(then)
                finally:
                    self._user_id = me
            return
        if line.lower() == "home":
            self._show_home()
            return
        label = _PROMPT_LABELS.get(line.lower())
        latest = self._latest_labels
        if label and label not in latest and any(shown in PROMPT_LABELS for shown in latest):
            # An older prompt's `Confirm`, under a `Roll back` prompt just asked, had been
            # pressed: "`config set …` was already confirmed by @you".
            self._out.write(self._not_on_prompt(label))
            return
        button = self._button(line)
        if isinstance(button, str):
            self._out.write(button + "\n")
            return
        if button is not None:
            action_id, value, response_url, view_id = button
            if view_id is None:
                self._latest_labels = []  # its prompt is answered; a new one names its own
            click_url = self._slack.new_response_url()
            self._dispatch(
                button_click(action_id, value, click_url, user_id=self._user_id, view_id=view_id)
            )
            self._lazy.run_pending()
            self._print_responses(click_url)
            self._print_posts()
            if view_id is not None:
                self._show_home(republished_only=True)  # a page button publishes anew
            return
        if label and self._latest_labels:
            self._out.write(self._not_on_prompt(label))
            return
        if line.lower() in _PROMPT_LABELS:
            # Sent as a command it got a guess: "`Roll` is not a command I know. Did you
            # mean `rollback back`?", and for Confirm, "Did you mean `config`?".
            self._out.write(
                f"No prompt here has a `{_PROMPT_LABELS[line.lower()]}` button yet: a label "
                "presses a button once a command such as `kill APP` has asked. "
                "Type a command, or `help` for the list.\n"
            )
            return
        text = re.sub(r"^/deploy\b", "", line).strip()
        response_url = self._slack.new_response_url()
        ack = self._dispatch(
            slash_command(text, response_url, user_id=self._user_id, channel_id=CONSOLE_CHANNEL)
        )
        if ack:
            self._print(ack)
        self._lazy.run_pending()
        self._print_responses(response_url)
        self._print_posts()
        if text.lower() == "help":
            self._out.write(CONSOLE_HELP + "\n")

    def _show_home(self, republished_only: bool = False) -> None:
        """App Home as Slack shows it to whoever types: the bot publishes it on an
        `app_home_opened` event, and the fake Slack keeps what it published."""
        before = self._slack.home_view(self._user_id)
        if not republished_only:
            body = home_opened(self._user_id)
            self._dispatch(body, {**sign(self._secret, body), "Content-Type": "application/json"})
            self._lazy.run_pending()
        view = self._slack.home_view(self._user_id)
        if view is None:
            if not republished_only:
                self._out.write("(App Home was not published: the bot's log says why)\n")
            return
        if republished_only and before is not None and before["hash"] == view["hash"]:
            return
        payload = {"blocks": view["blocks"], "response_type": "in_channel"}
        self._remember_buttons(payload, "", view_id=view["id"])
        self._out.write("(App Home: the bot's Home tab in Slack, as you see it)\n")
        self._print(payload)

    def _switch(self, name: str) -> None:
        if name not in self._people:
            names = " or ".join(f"`as {n}`" for n in self._people)
            if len(self._people) == 1:
                self._out.write(
                    "(only the sandbox has a second person to type as: "
                    "`deploybot console --sandbox`)\n"
                )
            else:
                self._out.write(f"(nobody called `{name}` here: {names})\n")
            return
        self._user_id = self._people[name]
        back = "" if name == "you" else ": `as you` goes back"
        self._out.write(f"(typing as @{name} now{back})\n")

    def _dispatch(self, body: str, headers: dict[str, str] | None = None) -> dict[str, Any] | None:
        headers = headers or sign(self._secret, body)
        response = self._bolt.dispatch(bolt_request(body, headers))
        if response.status != 200:
            self._out.write(f"(the bot answered HTTP {response.status})\n")
            return None
        if not response.body:
            return None
        return json.loads(response.body)

    def _print_responses(self, response_url: str) -> None:
        payloads = [r.payload for r in self._slack.responses_for(response_url)]
        start = self._seen.get(response_url, 0)
        self._seen[response_url] = len(payloads)
        for payload in payloads[start:]:
            if payload.get("delete_original") and not payload.get("text"):
                continue  # the prompt is gone; what replaced it prints as a channel post
            self._remember_buttons(payload, response_url)
            self._print(payload)

    def _print_posts(self) -> None:
        """Messages the bot posted with chat.postMessage (slow changes and their threads)."""
        calls = self._slack.calls_to("chat.postMessage")
        for call in calls[self._posts_seen :]:
            payload = {**call.args, "response_type": "in_channel"}
            self._remember_buttons(payload, "")  # a prompt posted as the bot's own message
            text = to_text(payload, self._user_id, self._names)
            if call.args.get("thread_ts"):
                text = "  ↳ " + text.replace("\n", "\n    ")
            self._out.write(text + "\n")
        self._posts_seen = len(calls)
        self._print_uploads()
        self._out.flush()

    def _print_uploads(self) -> None:
        """Files the bot uploaded (charts): written to a temporary folder, path printed."""
        uploads = self._slack.uploads
        for upload in uploads[self._uploads_seen :]:
            if self._files is None:
                self._files = Path(tempfile.mkdtemp(prefix="deploybot-charts-"))
            path = self._files / upload.filename
            path.write_bytes(upload.data)
            if upload.initial_comment:
                comment = _plain(upload.initial_comment, self._user_id, self._names)
                self._out.write(comment.translate(_VISIBLE_CONTROLS) + "\n")
            self._out.write(f"[chart {upload.title!r} written to {path}]\n")
        self._uploads_seen = len(uploads)

    def _remember_buttons(
        self, payload: dict[str, Any], response_url: str, view_id: str | None = None
    ) -> None:
        """`view_id`: App Home's, whose buttons are no prompt. A label on several buttons
        (`Status` on each card) cannot say which one: it is answered with what to type."""
        elements = [
            element
            for block in payload.get("blocks") or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]
        labels = [element["text"]["text"] for element in elements]
        for at, (label, element) in enumerate(zip(labels, elements, strict=True)):
            if labels.count(label) > 1:
                if labels.index(label) == at:  # the first card's words as the example
                    self._buttons[label] = _shared_label(label, element)
            else:
                self._buttons[label] = (
                    element["action_id"], element["value"], response_url, view_id
                )  # fmt: skip
        if labels and view_id is None:
            self._latest_labels = labels

    def _not_on_prompt(self, label: str) -> str:
        """That the newest prompt has no `label` button, and the labels it has."""
        labels = " or ".join(f"`{shown}`" for shown in self._latest_labels)
        return f"The prompt above has no `{label}` button: type {labels}.\n"

    def _button(self, line: str) -> tuple[str, str, str, str | None] | str | None:
        """The button `line` presses: its label exactly, or as `_typable` folds it when the
        line is not a command of its own. `kill demo` typed again after a "Kill demo" prompt had
        pressed it, confirming the old prompt instead of asking about the new command."""
        if line in self._buttons:
            return self._buttons[line]
        try:
            parse(re.sub(r"^/deploy\b", "", line).strip())
        except CommandError:
            folded = {_typable(label): button for label, button in self._buttons.items()}
            return folded.get(_typable(line))
        return None

    def _print(self, payload: dict[str, Any]) -> None:
        self._out.write(to_text(payload, self._user_id, self._names) + "\n")
        if len(self._people) > 1 and _asks_approval(payload):
            self._out.write("(sandbox: `as teammate Approve` approves as the second person)\n")
        self._out.flush()


def _typable(label: str) -> str:
    """A label as a keyboard types it: in any case, a hyphen for the minus sign (U+2212) of
    `Scale web -1`, and no pager arrow (`Next ▶`), which no keyboard has either."""
    return " ".join(label.lower().replace("\u2212", "-").replace("◀", "").replace("▶", "").split())


def _shared_label(label: str, element: dict[str, Any]) -> str:
    """What the console says to a label that several buttons have, with the words the
    first of them runs where they are known."""
    action_id, value = element["action_id"], element.get("value", "")
    words = None
    if action_id in HOME_COMMANDS:
        words = HOME_COMMANDS[action_id].format(app=value)
    elif action_id == CHART_ACTION:
        words = "chart " + " ".join(value.split("|")[:2])
    instead = f": type the command instead, such as `{words}`" if words else ""
    return f"More than one button above is `{label}`, so the label cannot say which{instead}."


def _asks_approval(payload: dict[str, Any]) -> bool:
    return any(
        element.get("text", {}).get("text") == "Approve"
        for block in payload.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    )


def to_text(
    payload: dict[str, Any], user_id: str = CONSOLE_USER, names: dict[str, str] | None = None
) -> str:
    """A Slack message as readable terminal text, buttons included; `user_id` shows as
    @you, other user IDs by `names` (the sandbox's teammate) or as themselves."""
    lines: list[str] = []
    blocks = payload.get("blocks") or [{"type": "section", "text": {"text": payload["text"]}}]
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif kind == "section":
            if block.get("text"):
                lines.append(_plain(block["text"]["text"], user_id, names))
            lines.extend(_plain(field["text"], user_id, names) for field in block.get("fields", []))
        elif kind == "context":
            lines.extend(
                "  (" + _plain(e["text"], user_id, names).replace("\n", "\n   ") + ")"
                for e in block["elements"]
            )
        elif kind == "divider":
            lines.append("")
        elif kind == "actions":
            labels = "  ".join(f"[ {e['text']['text']} ]" for e in block["elements"])
            lines.append(f"{labels}   <- type a label to press it")
    text = "\n".join(lines).rstrip("\n").translate(_VISIBLE_CONTROLS)
    if payload.get("response_type", "ephemeral") == "ephemeral" and not payload.get(
        "replace_original"
    ):
        text = "(only you) " + text.replace("\n", "\n           ")
    return text


# A terminal acts on control characters (ESC starts a sequence that can recolour, move the
# cursor or retitle the window); Slack only shows them. They come from outside (a word
# typed, a release description), so the console prints a picture of each instead.
_VISIBLE_CONTROLS = (
    {c: chr(0x2400 + c) for c in range(32) if chr(c) not in "\t\n"}
    | {0x7F: "\u2421"}
    | {c: "\ufffd" for c in range(0x80, 0xA0)}
)


def _plain(mrkdwn: str, user_id: str, names: dict[str, str] | None = None) -> str:
    """Slack's mrkdwn as its clients show it: mentions, channels and dates as words, and the
    escaped `<`, `>` and `&` (`policies.slack_text`) as the characters typed."""
    known = {user_id: "you", **(names or {})}
    text = re.sub(r"<@(\w+)>", lambda m: "@" + known.get(m.group(1), m.group(1)), mrkdwn)
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<#(\w+)(?:\|([^>]*))?>", lambda m: "#" + (m.group(2) or m.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def run(
    config: Config,
    commands: Iterable[str],
    interactive: bool,
    user_id: str = CONSOLE_USER,
    out: TextIO | None = None,
    registry: Registry | None = None,
    teammate: str | None = None,
) -> int:
    # sys.stdout as it is now, not at import: a test's capture replaces it.
    out = out if out is not None else sys.stdout
    console = Console(config, out=out, user_id=user_id, registry=registry, teammate=teammate)
    try:
        for line in commands:
            out.write(f"{console.prompt}{line.translate(_VISIBLE_CONTROLS)}\n")
            console.run_line(line)
        if interactive:
            _repl(console, out)
    finally:
        console.close()
    return 0


def _repl(console: Console, out: TextIO) -> None:
    out.write(
        "Type a command such as `status demo` or `scale web=2 demo`; `help` lists them; "
        "`simulate spike demo` and `simulate queue demo` play the autoscaler on web traffic "
        "and on a job queue; `home` shows App Home; `as teammate` types as a second person "
        "(for approvals); "
        "Ctrl-D or `exit` leaves.\n"
    )
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    while True:
        try:
            line = input(console.prompt)
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return
        if line.strip() in ("exit", "quit"):
            return
        console.run_line(line)
