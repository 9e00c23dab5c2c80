"""Outside strings reach Slack text only escaped: no mention, link or code span survives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.slack_text import code, escape


def test_mentions_and_links_are_shown_as_typed() -> None:
    hostile = "Deploy <!channel> <http://evil.example|login> & <@U123>"
    assert escape(hostile) == (
        "Deploy &lt;!channel&gt; &lt;http://evil.example|login&gt; &amp; &lt;@U123&gt;"
    )


def test_a_backtick_cannot_close_a_code_span() -> None:
    assert code("x` <!here> `y") == "`xˋ &lt;!here&gt; ˋy`"


@given(st.text())
def test_escaped_text_has_no_control_characters_left(text: str) -> None:
    shown = escape(text)
    assert "<" not in shown and ">" not in shown
    # Every & is the start of one of the three entities.
    assert shown.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    inner = code(text)[1:-1]
    assert "`" not in inner
