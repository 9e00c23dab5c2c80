"""Masking secrets in outside text (log lines, run output) before it goes into Slack.

Pure. A log line is shown with the value of every `KEY=value` whose key is written in
capitals (`DATABASE_URL=…`, `STRIPE_KEY=…`: how config vars look) or names a secret in any
case (`password=…`, `api_key=…`), and the password in any `scheme://user:password@host`.
Lowercase router fields (`status=200`, `path=/`) stay as they are.
"""

from __future__ import annotations

import re

MASK = "••••••"
_SECRET_WORDS = (
    r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|auth|credentials?|private[_-]?key)"
)
_ASSIGNMENT = re.compile(
    rf"\b(?P<key>[A-Z][A-Z0-9_]{{2,}}|[\w-]*{_SECRET_WORDS}[\w-]*)(?P<sep>=|: ?)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|\S+)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", re.IGNORECASE)


def mask(line: str) -> str:
    """`line` with secret values replaced by a mask."""
    line = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", line)
    return _ASSIGNMENT.sub(_masked, line)


def _masked(found: re.Match[str]) -> str:
    key = found["key"]
    secretish = re.search(_SECRET_WORDS, key, re.IGNORECASE) is not None
    if not (key.isupper() or secretish):
        return found.group(0)
    if found["sep"] != "=" and not secretish:
        return found.group(0)  # `WARNING: text` is prose, not an assignment
    return f"{key}{found['sep']}{MASK}"
