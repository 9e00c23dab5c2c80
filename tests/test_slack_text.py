"""Outside strings reach Slack text only escaped: no mention, link or code span survives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.actions.reconcile import now_running
from bot.platforms.base import Formation
from bot.registry import Registry, UnknownApp
from handlers.render import _formation_change
from policies import costs
from policies.commands import is_release_number
from policies.slack_text import channel, code, cut, escape, more_note, one_line


def test_mentions_and_links_are_shown_as_typed() -> None:
    hostile = "Deploy <!channel> <http://evil.example|login> & <@U123>"
    assert escape(hostile) == (
        "Deploy &lt;!channel&gt; &lt;http://evil.example|login&gt; &amp; &lt;@U123&gt;"
    )


def test_a_backtick_cannot_close_a_code_span() -> None:
    assert code("x` <!here> `y") == "`xˋ &lt;!here&gt; ˋy`"


def test_a_backtick_in_plain_text_cannot_open_a_code_span() -> None:
    # A lock's reason "a`b" before "`/deploy unlock demo`" made the words between code.
    line = (
        f"locked `demo`: {escape('a`b')}. Only they may roll it back, ship, "
        "promote or swap it until `/deploy unlock demo`."
    )
    assert line.count("`") == 4


@given(st.text())
def test_escaped_text_has_no_control_characters_left(text: str) -> None:
    shown = escape(text)
    assert "<" not in shown and ">" not in shown and "`" not in shown
    # Every & is the start of one of the three entities.
    assert shown.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    inner = code(text)[1:-1]
    assert "`" not in inner
    # No embedding, override or isolate is left to turn the rest of the line around.
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in shown)


def test_accents_scripts_marks_and_emoji_are_shown_unchanged() -> None:
    text = "café 日本語 \u200fשלום\u200e 🚀 👨\u200d👩\u200d👧 🏴\U000e0067\U000e0062\U000e007f"
    assert escape(text) == text
    assert escape("a\u202ebc\u2067d\u2069") == "abcd"


HOSTILE = "<!channel>`x`"


def test_process_types_and_sizes_from_the_platform_are_shown_as_typed() -> None:
    # Heroku's schema allows only [-\w] in a process type, but each is still an outside
    # string: every message that names one escapes it, as `status` always did.
    shown = [
        now_running({HOSTILE: 1}, {HOSTILE: (1, HOSTILE)}),
        _formation_change(Formation(HOSTILE, 1, HOSTILE), Formation(HOSTILE, 2, "standard-1x")),
        _formation_change(None, Formation(HOSTILE, 2, HOSTILE)),
        costs.describe(costs.monthly_change("heroku", {}, {"web": (1, HOSTILE)})),
    ]
    for text in shown:
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text, text


def test_an_unknown_alias_is_named_as_typed() -> None:
    # A button's value reaches `resolve` without the command parser's name check.
    registry = Registry.parse("apps:\n  myapp:\n    platform: heroku\n")
    with pytest.raises(UnknownApp) as caught:
        registry.resolve(HOSTILE)
    assert str(caught.value).startswith("`&lt;!channel&gt;ˋxˋ` is not an app I manage.")


def test_unescape_reads_slacks_entities_back_in_one_pass():
    from bot.sandbox.slack_requests import escape_typed
    from policies.slack_text import unescape

    typed = "a=1&b=<2> &lt; &amp;amp; & ;"
    assert escape_typed(typed) == "a=1&amp;b=&lt;2&gt; &amp;lt; &amp;amp;amp; &amp; ;"
    assert unescape(escape_typed(typed)) == typed
    assert unescape("no entities <here> & there") == "no entities <here> & there"


@given(st.text())
def test_what_slack_escapes_reads_back_as_typed(typed: str) -> None:
    from bot.sandbox.slack_requests import escape_typed
    from policies.slack_text import unescape

    assert unescape(escape_typed(typed)) == typed


def test_a_cut_reply_s_last_line_counts_what_was_left_out_and_keeps_braces_as_text():
    note = more_note("variables", "`heroku config -a {odd}` lists them all.")
    assert note.format(n=1234) == (
        "…and 1,234 more variables, more than one Slack message holds. "
        "`heroku config -a {odd}` lists them all."
    )
    assert more_note("lines").format(n=2) == "…and 2 more lines, more than one Slack message holds."


def test_slack_text_is_cut_before_an_entity_or_a_mention_it_would_split() -> None:
    assert cut("a &amp; b", 5) == "a …"  # not "a &a…", which Slack shows as typed
    assert cut("by <@U0123ABC> at noon", 10) == "by …"
    assert cut("short", 10) == "short"
    assert cut("a &amp; b <@U1> c", 12) == "a &amp; b …"


@given(st.text(max_size=60), st.integers(min_value=1, max_value=70))
def test_a_cut_is_within_its_limit_and_leaves_no_entity_or_mention_open(
    text: str, limit: int
) -> None:
    cutted = cut(escape(text), limit)
    assert len(cutted) <= limit
    # Every `&` still starts a whole entity, every `<` is closed.
    assert re.sub("&(amp|lt|gt);", "", cutted).count("&") == 0
    assert cutted.count("<") == cutted.count(">") == 0


def test_a_channel_id_the_registry_takes_is_a_link_and_anything_else_is_code() -> None:
    # 32 characters is the longest ID the registry and the tables keep; `about` had shown
    # one of those as code, being one character stricter than the registry.
    longest = "C" + "A" * 31
    assert channel(longest) == f"<#{longest}>"
    assert channel(longest + "A") == f"`{longest}A`"
    assert channel("#deploys") == "`#deploys`"
    assert channel("C1<!here>") == "`C1&lt;!here&gt;`"


def test_a_release_number_is_ascii_digits_as_heroku_counts_them() -> None:
    assert is_release_number("v12") and is_release_number("12") and is_release_number("V3")
    # `\d` took any script's digits, so `rollback demo v١٢ -a demo` read as a release.
    assert not is_release_number("v١٢")
    assert not is_release_number("v1.2") and not is_release_number("v")


def test_one_line_joins_an_outside_text_s_lines_and_clips_it() -> None:
    # A commit message as a release's description: its breaks would start list items.
    assert one_line("Fix login\r\n\n• v9\tnow ", 40) == "Fix login • v9 now"
    assert one_line("x" * 20 + "\ny", 10) == "x" * 9 + "…"
    assert one_line(" \n ", 10) == ""
