"""Slack's documented limits on what a message or a view may hold, for the fake Slack.

Slack refuses a message or view past any of them whole (`invalid_blocks`, or `msg_too_long`
for a message's text), so the user hears nothing: the fake refuses the same, and says which
limit was passed. The figures are those of Slack's Block Kit reference (docs.slack.dev,
reference/block-kit: blocks, block elements, composition objects) and of the `text` field of
chat.postMessage, whose errors Slack's OpenAPI spec (specs/) lists.
"""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS = 50  # blocks in a message
VIEW_BLOCKS = 100  # blocks in a Home tab or a modal
MESSAGE_TEXT = 40_000  # a message's `text` (msg_too_long past it)
TEXT_OBJECT = 3000  # any text object, a section's text included (at least 1 character)
SECTION_FIELDS, FIELD_TEXT = 10, 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT, BUTTON_VALUE, BUTTON_URL = 75, 2000, 3000
ID_CHARS = 255  # a block_id, an action_id, a view's callback_id or external_id
PRIVATE_METADATA = 3000


def text_problems(text: object) -> list[str]:
    """What is wrong with a message's `text` (a plain string), as Slack would answer it."""
    if isinstance(text, str) and len(text) > MESSAGE_TEXT:
        return [f"text of {len(text):,} characters, over {MESSAGE_TEXT:,}"]
    return []


def view_problems(view: dict[str, Any]) -> list[str]:
    """What is wrong with a Home tab or modal view: its blocks and its own fields."""
    problems = block_problems(view.get("blocks"), VIEW_BLOCKS)
    for name, most in (
        ("callback_id", ID_CHARS),
        ("external_id", ID_CHARS),
        ("private_metadata", PRIVATE_METADATA),
    ):
        problems += _too_long(f"view {name}", view.get(name), most)
    return problems


def block_problems(blocks: Any, most_blocks: int = MESSAGE_BLOCKS) -> list[str]:
    """Each limit `blocks` passes, in words; empty when Slack would take them."""
    if not isinstance(blocks, list):
        return []
    problems = []
    if len(blocks) > most_blocks:
        problems.append(f"{len(blocks)} blocks, over {most_blocks}")
    for index, block in enumerate(blocks):
        if isinstance(block, dict):
            where = f"block {index} ({block.get('type')})"
            problems += [f"{where}: {problem}" for problem in _block(block)]
    return problems


def _block(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    problems = _too_long("block_id", block.get("block_id"), ID_CHARS)
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            problems.append("a section with neither text nor fields")
        if block.get("text") is not None:
            problems += _text("text", block["text"], TEXT_OBJECT)
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS:
            problems.append(f"{len(fields)} fields, over {SECTION_FIELDS}")
        for field in fields:
            problems += _text("a field", field, FIELD_TEXT)
    elif kind == "header":
        problems += _text("header text", block.get("text"), HEADER_TEXT)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= CONTEXT_ELEMENTS:
            problems.append(f"{len(elements)} elements, not 1 to {CONTEXT_ELEMENTS}")
        for element in elements:
            if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
                problems += _text("an element", element, TEXT_OBJECT)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= ACTIONS_ELEMENTS:
            problems.append(f"{len(elements)} elements, not 1 to {ACTIONS_ELEMENTS}")
        for element in elements:
            if isinstance(element, dict):
                problems += _element(element)
    return problems


def _element(element: dict[str, Any]) -> list[str]:
    problems = _too_long("action_id", element.get("action_id"), ID_CHARS)
    if element.get("type") == "button":
        problems += _text("button text", element.get("text"), BUTTON_TEXT)
        problems += _too_long("button value", element.get("value"), BUTTON_VALUE)
        problems += _too_long("button url", element.get("url"), BUTTON_URL)
    return problems


def _text(what: str, obj: Any, most: int) -> list[str]:
    """A text object's text: a string of 1 to `most` characters."""
    text = obj.get("text") if isinstance(obj, dict) else None
    if not isinstance(text, str) or not text:
        return [f"{what} is empty"]
    return _too_long(what, text, most)


def _too_long(what: str, value: Any, most: int) -> list[str]:
    if isinstance(value, str) and len(value) > most:
        return [f"{what} of {len(value):,} characters, over {most:,}"]
    return []
