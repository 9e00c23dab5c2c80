"""The Procfile's process lines, and a process started from one as Heroku starts it
(`bash -c`, in a session of its own, stopped with SIGTERM to its group), for the tests and
benchmarks that run the real release, web and worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def line(kind: str) -> str:
    """The command of the Procfile's `kind:` line."""
    for entry in (ROOT / "Procfile").read_text().splitlines():
        if entry.startswith(f"{kind}:"):
            return entry.split(":", 1)[1].strip()
    raise LookupError(f"the Procfile has no {kind}: line")


@contextlib.contextmanager
def process(kind: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The `kind:` line running with `env`, its output in `log_path`; stopped on exit, as
    Heroku stops a dyno (SIGTERM, then SIGKILL after 30 s)."""
    with open(log_path, "w") as log:
        started = subprocess.Popen(
            ["bash", "-c", line(kind)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started.pid, signal.SIGTERM)
            try:
                started.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(started.pid, signal.SIGKILL)
                started.wait()
