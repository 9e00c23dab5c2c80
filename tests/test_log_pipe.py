"""A process whose log reader goes away (`python -m bot worker | head -1`) ends as a Unix
tool does on a closed pipe, with no "--- Logging error ---" and traceback on stderr."""

from __future__ import annotations

import subprocess
import sys

from bot.__main__ import EXIT_CLOSED_PIPE

LOGS_FOREVER = """
import logging, time
from bot.logs import setup_logging
setup_logging()
log = logging.getLogger("bot.worker")
while True:
    log.info("tick", extra={"app": "demo"})
    time.sleep(0.001)
"""


def test_a_closed_log_pipe_ends_the_process_quietly():
    process = subprocess.Popen(
        [sys.executable, "-c", LOGS_FOREVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # `head -1` has what it wanted and exits
    try:
        code = process.wait(timeout=60)
        errors = process.stderr.read().decode()
    finally:
        process.kill()
        process.stderr.close()
    assert b"msg=tick" in first
    assert "Logging error" not in errors and "Traceback" not in errors, errors
    assert code == EXIT_CLOSED_PIPE
