"""One leader among worker dynos: a PostgreSQL advisory lock, or a file lock on SQLite.

APScheduler 3 cannot share a job store between schedulers, so only the worker holding the
lease runs jobs; another (`heroku ps:scale worker=2`, or the overlap while Heroku restarts
dynos) waits and takes over when the leader's connection or process dies: PostgreSQL
drops a session's advisory locks with the session, the kernel drops a dead process's flock.
A leader whose session drops (the database restarted) stops its jobs and waits for the
lease again, in the same process, like any other waiting worker. It learns of the drop at
its next check, seconds later, while another worker may lead at once: so the autoscaler
asks `still_held` before each scale, and no two workers scale in that gap.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import zlib
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.store.db import Database

log = logging.getLogger(__name__)

LEASE_NAME = "deploybot-worker"
_SCHEMA_KEY = "hashtext(coalesce(current_schema(), ''))"


class Lease:
    def __init__(self, db: Database, name: str = LEASE_NAME) -> None:
        self._db = db
        # Advisory locks take numbers, and they are database-wide: the second number is
        # the schema's, so deployments sharing a database in schemas of their own (and
        # test runs side by side) each have their own leader.
        self._key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self._connection: Any = None
        self._file: IO[str] | None = None
        # The main thread checks the lease on a timer, and the autoscaler before each scale
        # from the scheduler's threads: one connection, used by one of them at a time.
        self._lock = threading.RLock()

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def try_acquire(self) -> bool:
        with self._lock:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        if self.held:
            return True
        if self._db.is_sqlite:
            return self._try_file()
        try:
            connection = self._db.engine.connect()
        except SQLAlchemyError as error:
            # The database is away (a restart, maintenance, a network cut): not the lease
            # this time. Crashing instead would cost a dyno restart and Heroku's cool-off.
            log.warning("lease: database unreachable", extra={"error": type(error).__name__})
            return False
        try:
            got = connection.execute(
                text(f"SELECT pg_try_advisory_lock(:k, {_SCHEMA_KEY})"), {"k": self._key}
            )
            if got.scalar():
                connection.commit()
                self._connection = connection
                return True
        except SQLAlchemyError as error:
            # The session died between the pool's check and this query (a failover): as
            # unreachable as a refused connect, and no reason to end the process.
            log.warning("lease: database unreachable", extra={"error": type(error).__name__})
            with contextlib.suppress(Exception):
                connection.close()
            return False
        except Exception:
            connection.close()
            raise
        connection.close()
        return False

    def still_held(self) -> bool:
        """False once the lock's session is gone (a database restart, a network cut)."""
        with self._lock:
            return self._still_held()

    def _still_held(self) -> bool:
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.close()  # hands the broken connection back for the pool to drop
            return False
        return True

    def release(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            # A session already gone took the lock with it: nothing left to let go of.
            with contextlib.suppress(SQLAlchemyError):
                connection.execute(
                    text(f"SELECT pg_advisory_unlock(:k, {_SCHEMA_KEY})"), {"k": self._key}
                )
                connection.commit()
            with contextlib.suppress(SQLAlchemyError):
                connection.close()
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _try_file(self) -> bool:
        database = self._db.url.split("sqlite:///", 1)[-1] or "deploybot.sqlite3"
        path = Path(f"{database}.worker-lock")
        handle = open(path, "a+")  # noqa: SIM115 (held for as long as the lease)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True
