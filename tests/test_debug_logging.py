"""The bot's own log at DEBUG: the libraries under it print whole requests and answers at
that level (botocore an UpdateEnvironment's option values and every environment property
Beanstalk reads back, slack_sdk each message's body), which would put config values in the
log. Driven through the sandbox console, as an operator chasing a bug would run it."""

from __future__ import annotations

import io
import logging

import pytest

from bot.logs import LogfmtFormatter, setup_logging
from bot.sandbox import console
from bot.sandbox.demo import Sandbox

SECRET = "hunter2-not-for-logs"


@pytest.fixture
def debug_log(monkeypatch):
    """Everything the root logger prints after `setup_logging("DEBUG")`, as it would print it."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    root = logging.getLogger()
    before = root.level, list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    root.handlers = [h for h in root.handlers if not isinstance(h.formatter, LogfmtFormatter)]
    setup_logging("DEBUG")
    yield stream
    root.setLevel(before[0])
    root.handlers = before[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_beanstalk_config_value_stays_out_of_a_debug_log(debug_log):
    sandbox = Sandbox(admins=frozenset({console.CONSOLE_USER}))
    out = io.StringIO()
    lines = (f"/deploy config set SHOP_PASSWORD={SECRET} demo-shop", "Confirm", "config demo-shop")
    with sandbox as config:
        console.run(config, lines, False, out=out, registry=sandbox.registry)
    assert f"`SHOP_PASSWORD` `{SECRET}`" in out.getvalue()  # it was set, and read back
    logged = debug_log.getvalue()
    assert "at=debug" in logged  # DEBUG was on
    assert SECRET not in logged


def test_a_value_ending_in_a_newline_stays_on_its_log_line():
    # `$` matches before a final newline: `app=myapp⏎` had been printed bare, so one record
    # took two lines and the fields after it read as a record of their own.
    record = logging.makeLogRecord({"msg": "rolled back", "app": "myapp\n", "user": "U1"})
    line = LogfmtFormatter().format(record)
    assert "\n" not in line and 'app="myapp\\n" user=U1' in line


def test_a_carriage_return_or_other_control_character_stays_inside_its_value():
    # `\r` had been written as it came: a terminal or a log viewer reads it as a line break,
    # so an outside string could start what looks like a record of its own, or overwrite
    # the line; ESC drives a terminal, and U+2028 is a line break to many viewers.
    record = logging.makeLogRecord(
        {"msg": "alert not sent", "error": "no\rat=info msg=ok", "app": "a\x1b[2Kb\u2028c\td"}
    )
    line = LogfmtFormatter().format(record)
    assert not any(char in line for char in "\r\n\x1b\u2028")
    assert 'error="no\\rat=info msg=ok"' in line
    assert 'app="a\\u001b[2Kb\\u2028c\td"' in line


def test_the_formatter_cuts_a_drain_or_hirefire_token_from_any_field_or_message():
    # The last layer: a line whose writer forgot to redact (the drain handler redacts its
    # own `path`, checked in tests/test_drain.py) still leaves without the secret.
    record = logging.makeLogRecord(
        {"msg": "POST /drain/dr4In_tok3n failed", "path": "/hirefire/hf_s3cret/info", "n": 1}
    )
    line = LogfmtFormatter().format(record)
    assert "dr4In_tok3n" not in line and "hf_s3cret" not in line
    assert "/drain/[redacted]" in line and "/hirefire/[redacted]/info" in line
