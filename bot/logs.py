"""Logs to stdout in logfmt, Heroku's convention: `at=info msg="…" key=value`.

Every line is redacted on its way out (`redact`, which is `policies.redact.mask_credentials`,
the shapes Slack's own text goes through too): credentials shaped like Slack's, Heroku's or
AWS's, passwords in URLs and `Bearer` credentials, the secret token in a log drain's URL
(`/drain/<token>`), which would otherwise reach the log in Flask's own `Exception on
/drain/<token> [POST]` or a gunicorn access line, the token in an app's HireFire URL
(`/hirefire/<token>/info`), and the secret at the end of a Slack `response_url`.
`RedactSecrets` does the same for loggers that do not use this formatter.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from policies.redact import mask_credentials

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]+")  # matched whole: `$` would pass a final newline
# Libraries that print whole requests and answers at DEBUG (botocore an UpdateEnvironment's
# option values and every environment property it reads back, slack_sdk each message's
# body and answer, urllib3 each path): held at INFO when the bot's own log is at DEBUG, as
# no redaction by shape can tell a config value from any other word.
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "slack_sdk", "slack_bolt")


def redact(text: str) -> str:
    """`text` with credentials, drain and HireFire tokens and response_url secrets cut out."""
    return mask_credentials(text)


class RedactSecrets(logging.Filter):
    """Redacts a logger's records in place (gunicorn's error and access logs use it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# Written as escapes inside a quoted value: a backslash, a quote, and every line break
# (`\r` too, which a terminal or a log viewer takes as one: a value could overwrite or fake
# a line) and other control character (ESC drives a terminal). A tab stays.
_QUOTED = re.compile(r'[\\"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]')
_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match[0]
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def _value(value: object) -> str:
    text = redact(str(value))
    if _BARE.fullmatch(text):
        return text
    return '"' + _QUOTED.sub(_escaped, text) + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"at={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_value(record.getMessage())}",
        ]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                parts.append(f"{key}={_value(value)}")
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


# What a shell reports for a process stopped by a closed pipe (128 + SIGPIPE), as `yes | head`.
EXIT_CLOSED_PIPE = 141


class _StdoutHandler(logging.StreamHandler):
    """Log lines to stdout, ending the process as a Unix tool ends once its reader has gone
    (`python -m bot worker | head -1`). Python ignores SIGPIPE, so each later line had
    printed "--- Logging error ---" and a traceback to stderr, and the process ran on."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            # No one reads on, and any cleanup that logs would meet the closed pipe again:
            # SIGPIPE's own default, at once. Leases and sessions end with the process.
            os._exit(EXIT_CLOSED_PIPE)
        super().handleError(record)


def setup_logging(level: str = "INFO") -> None:
    """Send every log line to stdout in logfmt; calling it again changes nothing. At DEBUG,
    the `WIRE_LOGGERS` stay at INFO."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, LogfmtFormatter):
            return
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    if root.level < logging.INFO:
        for name in WIRE_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
