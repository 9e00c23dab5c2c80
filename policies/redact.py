"""Masking secrets in outside text (log lines, run output) before it goes into Slack.

Pure. A log line is shown with the value of every `KEY=value` whose key is written in
capitals (`DATABASE_URL=…`, `STRIPE_KEY=…`: how config vars look) or names a secret in any
case (`password=…`, `"api_key": "…"`, `?access_token=…` inside a URL, up to the next `&`),
the password in any `scheme://user:password@host` (the user may be empty, as in Heroku
Redis's URLs), the credential after `Bearer` or `Basic`, AWS access key ids, Slack and
Heroku tokens, and the secret in a path the bot gives out (a drain's `/drain/<token>`, an
app's `/hirefire/<token>/info`, a Slack `response_url`), whatever surrounds them
(`mask_credentials`, which the bot's own log lines also go through: one list of shapes for
the log and for Slack). Lowercase router fields (`status=200`, `path=/`) stay as they are.
"""

from __future__ import annotations

import re

MASK = "••••••"
_SECRET_WORDS = (
    r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|auth|credentials?|private[_-]?key"
    r"|signature)"
)
# A key, bare or quoted as in JSON or a Python dict, then `=`, `: ` or `": "`.
# A key right after `?` or `&` is a URL's query parameter: its value ends at the next `&`
# or `#`, and the parameters after it are no secret (`?token=…&page=2`).
_ASSIGNMENT = re.compile(
    r"(?P<query>(?<=[?&]))?"
    rf"\b(?P<key>[A-Z][A-Z0-9_]{{2,}}|[\w-]*{_SECRET_WORDS}[\w-]*)(?P<sep>[\"']?(?:\s?=\s?|: ?))"
    r"(?P<value>(?(query)[^\s&#]+|(?:\"[^\"]*\"|'[^']*'|(?:Bearer|Basic|Digest|Token)\s+\S+|\S+)))",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.IGNORECASE)
# A credential has a digit or a symbol in it, which `Basic authentication failed` has not.
_SCHEME_CREDENTIAL = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+(?=[\w.~+/=-]*[\d.~+/=-])[\w.~+/=-]{8,}", re.IGNORECASE
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# Cut rather than masked, so a log line or a router line still reads as the path it was.
REDACTED = "[redacted]"
_TOKEN = re.compile(r"(xox[abeposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|HRKU-[A-Za-z0-9_-]+)")
# A drain URL's last segment is the secret that names the app, and an app's HireFire
# endpoint is read at its token: a Flask error, a gunicorn access line and Heroku's own
# router lines (`/deploy logs`) print these paths, whatever surrounds them.
_PATH_TOKEN = re.compile(r"(/(?:drain|hirefire)/)[^\s/?#\"'<>]+")
# A `response_url` (hooks.slack.com/commands/T…/…/SECRET, or /actions/) lets whoever holds
# it post into the channel for 30 minutes; urllib3 names its path when it retries a post.
_RESPONSE_URL = re.compile(r"(/(?:commands|actions)/[A-Z0-9]+/[0-9]+/)[A-Za-z0-9]+")


def mask_credentials(text: str) -> str:
    """`text` with the credentials that show by their shape alone masked: URL passwords,
    `Bearer`/`Basic` credentials and AWS access key ids; Slack and Heroku tokens and the
    secret in a drain's, a HireFire endpoint's or a `response_url`'s path cut."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", _TOKEN.sub(REDACTED, text))
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)
    text = _AWS_KEY_ID.sub(MASK, text)
    return _RESPONSE_URL.sub(rf"\1{REDACTED}", _PATH_TOKEN.sub(rf"\1{REDACTED}", text))


def mask(line: str) -> str:
    """`line` with secret values replaced by a mask."""
    return _ASSIGNMENT.sub(_masked, mask_credentials(line))


def _masked(found: re.Match[str]) -> str:
    key, sep = found["key"], found["sep"]
    secretish = re.search(_SECRET_WORDS, key, re.IGNORECASE) is not None
    prose = not secretish and "=" not in sep  # `WARNING: text` is no assignment
    if (key.isupper() or secretish) and not prose:
        return f"{key}{sep}{MASK}"
    # Not a secret's key (`path=`, `url=`): its value may still hold one
    # (`path=/cb?access_token=…`), so look inside it, quotes kept.
    value = found["value"]
    quote = value[0] if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0] else ""
    inner = value[len(quote) : len(value) - len(quote)]
    return f"{key}{sep}{quote}{_ASSIGNMENT.sub(_masked, inner)}{quote}"
