"""The transcripts a new user reads (README's "Try it", docs/deployments.md) are what the
sandbox console prints: each document's typed lines are played in one sandbox session and
the whole output compared with the document, line by line. Only what changes from run to
run (clock times, dates) is read as a placeholder. docs/deployments.md had drifted twice
unseen: a history listing without the refused row the bot now shows, and build output
with `&gt;` where the console and Slack both show `>`. Every whole command a document
shows inline is one the bot reads, too."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bot.sandbox import console
from bot.sandbox.demo import Sandbox
from policies.commands import CommandError, parse

ROOT = Path(__file__).resolve().parent.parent
# A fenced block whose first line is typed at the console's prompt; the inner fences of
# build output and logs are indented, so they do not end it.
_BLOCK = re.compile(r"^```\n(deploybot.*?)^```$", re.DOTALL | re.MULTILINE)
_TYPED = re.compile(r"^deploybot(?: \(as \w+\))?> (.*)$")
# What differs between runs: a prompt's expiry, a log line's and a history row's time.
_VARYING = (
    (re.compile(r"Expires \d\d:\d\d UTC"), "Expires HH:MM UTC"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "YYYY-MM-DDTHH:MM:SSZ"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"), "YYYY-MM-DD HH:MM UTC"),
)


def transcript(document: str) -> list[str]:
    """The lines of every console transcript in `document`, in order."""
    text = (ROOT / document).read_text()
    return [line for block in _BLOCK.findall(text) for line in block.splitlines()]


def _steady(lines: list[str]) -> list[str]:
    for pattern, placeholder in _VARYING:
        lines = [pattern.sub(placeholder, line) for line in lines]
    return lines


def played(lines: list[str]) -> list[str]:
    """What the sandbox console prints for the typed lines among `lines`."""
    typed = [m.group(1) for m in map(_TYPED.match, lines) if m]
    sandbox = Sandbox(admins=frozenset({console.CONSOLE_USER, console.TEAMMATE}))
    out = io.StringIO()
    with sandbox as config:
        console.run(
            config, typed, False, out=out, registry=sandbox.registry, teammate=console.TEAMMATE
        )
    return out.getvalue().splitlines()


def test_the_placeholders_leave_what_a_reader_would_notice() -> None:
    # Only times vary: a version, a count or a word differing still fails the comparison.
    assert _steady(["  (Only @you can confirm. Expires 21:51 UTC.)"]) == _steady(
        ["  (Only @you can confirm. Expires 09:02 UTC.)"]
    )
    assert _steady(["@you scaled `demo`: web 1 → 3."]) != _steady(
        ["@you scaled `demo`: web 1 → 4."]
    )


@pytest.mark.parametrize("document", ["README.md", "docs/deployments.md"])
def test_a_documented_transcript_is_what_the_sandbox_prints(document: str) -> None:
    lines = transcript(document)
    assert any(_TYPED.match(line) for line in lines), f"{document} has no transcript"
    assert _steady(played(lines)) == _steady(lines)


# The words the documents write for what the reader fills in (`scale web=N APP`).
_PLACEHOLDERS = {"APP", "N", "TYPE", "DYNO", "VERSION", "REF", "REASON", "WORD", "OTHER"}
_PLACEHOLDERS |= {"COMMAND", "DURATION", "KEY", "VALUE", "DAYS", "ZONE", "WINDOW", "SPAN"}
_PLACEHOLDERS |= {"HH", "MM", "SIZE", "VERB", "TOKEN"}


def _shown_commands(text: str) -> list[str]:
    """The whole commands `text` shows inline (`/deploy status demo`), leaving out a verb
    named alone and a form with something to fill in or choose from."""
    found = []
    for typed in re.findall(r"`/deploy ([^`\n]+)`", text):
        words = typed.split()
        if len(words) < 2 or re.search(r"\[|\||…|\.\.\.", typed):
            continue
        if any(set(re.split(r"[=:+\-,.]", word)) & _PLACEHOLDERS for word in words):
            continue
        found.append(typed)
    return found


def test_the_inline_command_finder_leaves_out_forms_and_keeps_commands() -> None:
    text = "`/deploy drain` `/deploy scale web=N APP` `/deploy logs demo [N]` `/deploy status demo`"
    assert _shown_commands(text) == ["status demo"]


def test_every_command_a_document_shows_inline_is_one_the_bot_reads() -> None:
    refused = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for typed in _shown_commands(path.read_text()):
            try:
                parse(typed)
            except CommandError as error:
                refused[f"{path.name}: {typed}"] = error.problem
    assert refused == {}
