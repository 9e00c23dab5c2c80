"""Numbers from outside (typed in chat, sent in a header, a click or a webhook) read safely:
`str.isdigit` alone also takes `²` and other scripts' digits, which `int()` refuses with a
trace or reads as the sender did not mean, and `int()` of thousands of digits is slow before
it is refused anyway."""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """Whether `text` is one or more ASCII digits and nothing else."""
    return text.isascii() and text.isdigit()


def whole_number(text: str | None, most_digits: int) -> int | None:
    """`text` as a whole number when it is 1 to `most_digits` ASCII digits, else None."""
    if text and len(text) <= most_digits and ascii_digits(text):
        return int(text)
    return None
