"""One urllib3 connection pool per process, for clients that keep connections open between
calls (answers to `response_url`, the Slack Web API).

A gunicorn worker forks the child that runs its jobs: sockets inherited across the fork
belong to the parent, so a process that finds no pool of its own makes one and never
touches the one it inherited.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import urllib3


class ProcessPool:
    """`pool()` is this process's `urllib3.PoolManager`, made on first use with the settings
    given here."""

    def __init__(self, **settings: Any) -> None:
        self._settings = settings
        self._pools: dict[int, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def __call__(self) -> urllib3.PoolManager:
        pid = os.getpid()
        pool = self._pools.get(pid)
        if pool is None:
            with self._lock:
                pool = self._pools.get(pid)
                if pool is None:
                    pool = self._pools[pid] = urllib3.PoolManager(**self._settings)
        return pool
