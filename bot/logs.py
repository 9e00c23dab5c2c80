"""Logs to stdout in logfmt, Heroku's convention: `at=info msg="…" key=value`."""

from __future__ import annotations

import logging
import re
import sys

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")
# Anything shaped like a Slack or Heroku credential is masked wherever it appears.
_SECRET = re.compile(r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|HRKU-[A-Za-z0-9_-]+)")


def _value(value: object) -> str:
    text = _SECRET.sub("[redacted]", str(value))
    if _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


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


def setup_logging(level: str = "INFO") -> None:
    """Send every log line to stdout in logfmt; calling it again changes nothing."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, LogfmtFormatter):
            return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level)
