"""The one way a string from outside (a user, Heroku, AWS) goes into Slack message text.

Slack's `mrkdwn` gives `&`, `<` and `>` control meaning: `<!channel>` pings a channel,
`<http://x|label>` is a link with any label, `<@U123>` is a mention. Escaping those three
characters as Slack documents (`&amp;`, `&lt;`, `&gt;`) shows the text as typed and makes
none of them; a backtick, which would open or close a code span, becomes its look-alike.
The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are
left out: invisible themselves, one left open (U+202E in a lock's reason or a release's
description) turned the rest of the line around, the bot's own words after it too.
Right-to-left text needs none of them to show, and the marks (U+200E, U+200F) stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

# Left out (see above): LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI.
_BIDI_CONTROLS = {c: None for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
# A backtick becomes U+02CB, its look-alike: a lone one would open a code span that the
# next backtick of the message closes, turning the text between into code.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "ˋ"} | _BIDI_CONTROLS)


# ANSI SGR sequences (colour, bold): what coloured loggers write around words, `ESC[32m`.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def uncoloured(text: str) -> str:
    """`text` (a log line) without its ANSI colour and style sequences, which a terminal acts
    on and Slack shows as clutter (`[32m`); the words stay. Before `escape`."""
    return _SGR.sub("", text)


def escape(text: object) -> str:
    """`text` as Slack shows it literally: no mentions, no links, no entities of its own, no
    code span opened or closed, no direction turned for what follows."""
    return str(text).translate(_ESCAPES)


_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY = re.compile("|".join(_ENTITIES))


def unescape(text: str) -> str:
    """Text Slack sent, as it was typed: Slack escapes `&`, `<` and `>` in what users type
    (a slash command's text too), so `a=1&b=2` arrives as `a=1&amp;b=2`. One pass, so a
    typed `&lt;` (sent as `&amp;lt;`) stays `&lt;`."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


# A Slack channel's ID as the registry takes one: `C…` (public) or `G…` (an older private
# one), 32 characters at most, which is what the tables keep.
CHANNEL_ID = r"[CG][A-Z0-9]{2,31}"
_CHANNEL_ID = re.compile(CHANNEL_ID)


def channel(name: str) -> str:
    """A link to the channel (`<#C123>`) if `name` is a channel's ID, else `name` as code:
    Slack would show a link to no channel for anything else."""
    return f"<#{name}>" if _CHANNEL_ID.fullmatch(name) else code(name)


def code(text: object) -> str:
    """`text` in a code span, escaped (so the span cannot be closed early and the rest of the
    message turned into markup)."""
    return "`" + escape(text) + "`"


def listed(names: Iterable[object], empty: str = "none") -> str:
    """Each of `names` in its own `code` span, comma-separated, in the order given; `empty`
    when there are none."""
    return ", ".join(code(name) for name in names) or empty


def more_note(noun: str, where: str = "") -> str:
    """The last line of a reply cut to one Slack message: a template whose `{n}` the cut
    fills with how many `noun` were left out, then `where` to read them all. `where` is
    taken as text, braces and all (an app's name in it is no placeholder)."""
    said = f" {where}".replace("{", "{{").replace("}", "}}") if where else ""
    return "…and {n:,} more " + noun + ", more than one Slack message holds." + said


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking a cut: an outside string
    can be any length, and Slack refuses a message past its limits."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int) -> str:
    """An outside text (a release's description, a commit message) on one line, clipped to
    `limit`: each run of line breaks and spaces becomes one space, since a break in a list
    item starts a line of its own, one that may read as another item."""
    return clip(" ".join(text.split()), limit)


# The tail of a cut that would leave an entity (`&am`) or a mention or link (`<@U01`) open.
_OPEN_TAIL = re.compile(r"(&[a-z]{0,3}|<[^>]*)\Z")


def cut(text: str, limit: int) -> str:
    """Slack text (escaped already, perhaps with mentions) cut to at most `limit` characters,
    an ellipsis marking a cut, never inside an entity or a `<…>`, which Slack shows broken."""
    if len(text) <= limit:
        return text
    return _OPEN_TAIL.sub("", text[: limit - 1]) + "…"


def shown(typed: object, limit: int = 40) -> str:
    """What someone typed, echoed back in an answer: clipped to `limit` characters, as a
    `code` span; an empty word (typed as `""`) as `""`."""
    text = str(typed)
    if not text:
        return code('""')  # Slack shows an empty span as its two backticks
    return code(clip(text, limit))


def moment(at: datetime, now: datetime) -> str:
    """`at` in each reader's time zone: its time of day when it is today (in UTC), the day
    too when not ("04:27 UTC" read as this morning for a moment days old). The fallback,
    which the console prints, is in UTC."""
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    if at.date() == now.date():
        return f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC>"
    return day_and_clock(at)


def day_and_clock(at: datetime) -> str:
    """A moment that may be days ago (a lock): "today 14:02", "yesterday", "Dec 2" and the
    time, in each reader's time zone; its fallback in UTC (`at` is given in UTC)."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"
