"""The web process's background work (platform calls, answers to `response_url`): bounded,
and under gunicorn run by a child process of each web worker, off the acks' GIL.

Slack listeners ack on the request's thread and hand the rest here as a *named job* plus
plain data: `register(name, fn)` once at start-up (handlers do it in `register(app, ...)`),
then `try_submit(name, *args)` from the ack. The arguments are pickled on the ack's thread
(a slash command's dict: tens of microseconds), so a closure or a live client can never
slip into a job. When every slot is taken `try_submit` says no at once, and the caller
answers "busy, try again" instead of queueing.

Two ways to run the jobs, the same names and data for both:
- In the process (the default; tests, the sandbox console): a small thread pool, or the
  executor passed in (the console's runs jobs after it prints the ack). Its threads run at
  nice +10 (Linux `nice` is per thread) but share the GIL with the acks.
- In a child process (`start_process`, called by gunicorn's `post_worker_init` in each
  worker before it starts its request threads, never in the preloading master). The child
  is forked from the worker, so it holds the same registered jobs and services; it runs at
  nice +10 with `threads` job threads. The request's thread writes the pickled job into
  the child's pipe itself, without blocking: a write of at most PIPE_BUF (4 KiB; a slash
  command's is well under 1 KiB) into a non-blocking pipe is all or nothing. A larger job,
  or one the pipe (1 MiB) has no room for, goes to a sender thread that waits for room.
  The web app holds an ack's jobs (`holding`) until its answer is sent: the write wakes
  the child, and that wake-up had been on the ack's time.
  The child reports each job's start and end on a second pipe, which the worker reads only
  after handing over held jobs, when every slot seems taken (that is when a finished job's
  slot is needed) or when the child dies: no worker thread wakes per job to take the GIL
  from the acks. (Unread reports are at most two per accepted job, 18 KB at the bound: the
  child never blocks on them.)
  A profile of one worker under one client showed the jobs (requests/heroku3 calls and the
  post to `response_url`) took about 57 % of its GIL time, which every ack waited behind.
  With the jobs in the child, the sender and watcher threads still woke three times per job;
  writing from the ack and reading reports lazily took ours' ack p99 at 50 clients from
  1.17 to 0.90 times bare bolt's (mean of 10 p99 ratios each, status and scale in 5
  alternating runs; docs/benchmarks.md).
  If the child dies, a new one is forked at once: jobs it had not started are sent to the
  new one, and every job it had started (it may or may not have changed something) runs its
  `lost` handler instead, which tells the user (never silence). `close` (gunicorn's
  `worker_exit`) refuses new work, lets the child finish everything accepted, and waits.
  When the dyno stops, Heroku sends every process SIGTERM and kills them all 30 s later.
  The child then starts jobs for `stop_grace` (20 s) more; each job still waiting after
  that runs its `lost` handler with `started=False`, which tells the user that nothing
  was done, in the 10 s left, instead of leaving the command unanswered when the kill
  comes.

Why the queue holds 1024 jobs per worker process: Slack's `response_url` stays valid for
30 minutes, so every accepted command must be answered within that. A `/deploy` job is up
to three rounds of Heroku calls (status sends its four reads at once, as one round) and one
post to Slack; at up to about 3 s a job (rounds of about 1 s each), two threads clear 1024 waiting jobs in 1024 / 2 x 3 s = 25.6 min, inside the 30.
A burst of 50 concurrent commands from a team, or a thousand in a row from the ack
benchmark's closed loop (about 600 per worker), fits without a "busy" answer. A waiting
job is its pickled payload, a few KB, held by the worker (to resend it if the child dies)
and by the child: about 10 MB at the bound.

This replaces bolt's lazy listeners, which deep-copy each request (`create_copy`) before
handing it to their executor: under load that copy took about 45 % of the request threads'
GIL time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import logging
import math
import os
import pickle
import queue
import select
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from multiprocessing.connection import Connection, Pipe
from typing import Any

log = logging.getLogger(__name__)

THREADS = 2  # per web worker process (or its child)
QUEUE = 1024  # waiting jobs per worker process (the arithmetic is above); more get "busy"
NICE = 10  # added to the jobs' nice value: below the request threads, not starved
BUSY = "I'm busy with other commands right now. Try again in a few seconds."
LOST = (
    "The bot restarted its background worker while it was working on this, so it may or "
    "may not have been done. Check with `/deploy status` or `/deploy history` before "
    "trying again."
)
NOT_RUN = (
    "The bot was restarting and did not get to this command, so nothing was done. Run it again."
)
STOP_GRACE = 20.0  # s after SIGTERM the child still starts jobs: Heroku kills at 30 s
RESTART_PAUSE = 1.0  # seconds between attempts when forking a new child fails
PIPE_BYTES = 1 << 20  # the jobs pipe's size: Linux's default pipe-max-size for any user

_START, _DONE = b"s", b"d"  # the child's reports: one byte and the job's number
_REPORT = struct.Struct("!cQ")
# Reports are fixed-size records written whole (atomic: under PIPE_BUF) and read in one
# non-blocking read of a whole number of records, so a read never splits one.
_REPORTS_READ = _REPORT.size * 4096


class Background:
    """A bounded runner of registered jobs: at most `threads` run and `queue` wait;
    `try_submit` never blocks."""

    def __init__(
        self,
        threads: int = THREADS,
        queue: int = QUEUE,
        executor: Executor | None = None,
        jobs: Background | None = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        """`jobs`: another pool whose registered jobs this one shares (tests)."""
        self.threads = threads
        self.stop_grace = stop_grace
        self.capacity = threads + queue
        self.refused = 0  # jobs turned away because every slot was taken
        # Threads start on first submit, so a gunicorn master that preloads the app forks
        # no half-made pool into its workers.
        self._executor = executor or ThreadPoolExecutor(
            threads, thread_name_prefix="background", initializer=_yield_cpu
        )
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._jobs: dict[str, Callable[..., Any]] = {} if jobs is None else jobs._jobs
        self._lost: dict[str, Callable[..., Any]] = {} if jobs is None else jobs._lost
        self._after_fork: list[Callable[[], None]] = []
        self._at_exit: list[Callable[[], None]] = []
        self._child: _Child | None = None
        self._held = threading.local()  # `holding`: this thread's jobs not yet handed over

    # -- set-up ------------------------------------------------------------------------------

    def register(
        self, name: str, fn: Callable[..., Any], lost: Callable[..., Any] | None = None
    ) -> str:
        """Name `fn` as a job; `lost(*args, started=...)` runs instead if the process
        running it died (`started=True`: it may or may not have done its work) or was
        stopped before it began (`started=False`); it should tell the user which. The
        same name may be registered again with the same functions (a listener used for
        several actions)."""
        known = self._jobs.get(name)
        if known is not None and known is not fn:
            raise ValueError(f"background job {name!r} is already another function")
        if self._child is not None and known is None:
            raise RuntimeError("jobs must be registered before the child process starts")
        self._jobs[name] = fn
        if lost is not None:
            self._lost[name] = lost
        return name

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def in_child(
        self,
        after_fork: Callable[[], None] | None = None,
        at_exit: Callable[[], None] | None = None,
    ) -> None:
        """Hooks run in the child: right after it is forked (drop the parent's connections)
        and when it has finished its last job (close what jobs started)."""
        if after_fork is not None:
            self._after_fork.append(after_fork)
        if at_exit is not None:
            self._at_exit.append(at_exit)

    def start_process(self, close_in_child: Iterable[Any] = ()) -> None:
        """Run jobs in a child process from now on. Call while the calling process has no
        other thread (gunicorn's post_worker_init): a fork copies only the calling thread.
        `close_in_child`: objects with `close()` the child must not hold (listening sockets)."""
        if self._child is None:
            self._child = _Child(self, tuple(close_in_child))

    @property
    def child_pid(self) -> int | None:
        """The child process's id, None when jobs run in this process."""
        return self._child.pid if self._child is not None else None

    # -- use ---------------------------------------------------------------------------------

    def try_submit(self, name: str, /, *args: Any) -> bool:
        """Start job `name` with `args` (plain data) when a thread is free; False (and
        nothing queued) if full or closing. Inside `holding`, an accepted job is handed
        over only when the hold is released."""
        if name not in self._jobs:
            raise KeyError(f"no background job is registered as {name!r}")
        if not self._take_slot():
            self.refused += 1
            return False
        try:
            payload = pickle.dumps((name, args), pickle.HIGHEST_PROTOCOL)
        except Exception:  # a closure or a client among the arguments: the caller's bug
            self._slots.release()
            raise
        held = getattr(self._held, "jobs", None)
        if held is not None:
            held.append((name, args, payload))
            return True
        return self._hand_over(name, args, payload)

    @contextlib.contextmanager
    def holding(self) -> Iterator[Callable[[], None]]:
        """Hold the jobs this thread submits inside the block until the function it yields
        is called (the web app calls it once the request's answer is sent; on an exception
        they are handed over at once). Only while jobs run in a child process; otherwise
        it holds nothing and the function does nothing.

        `try_submit` still takes the slot and pickles the data at once, so its answer is
        final; what waits is the write into the child's pipe, which wakes the child: done
        while the ack was being answered, that wake-up and the finished jobs' reports read
        with it (`collect`) were on the ack's time."""
        if self._child is None or getattr(self._held, "jobs", None) is not None:
            yield _nothing
            return
        jobs: list[tuple[str, tuple[Any, ...], bytes]] = []
        self._held.jobs = jobs
        try:
            yield functools.partial(self._release, jobs)
        except BaseException:
            self._held.jobs = None
            self._release(jobs)
            raise
        finally:
            self._held.jobs = None

    def close(self, wait: bool = True) -> None:
        """Finish what was accepted (gunicorn's worker_exit), then refuse new work."""
        if self._child is not None:
            self._child.close(wait)
        self._executor.shutdown(wait=wait)

    def _take_slot(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        if self._child is None:
            return False
        # Finished jobs give their slots back when the child's reports are read: after
        # each held job is handed over, and here when every slot seems taken.
        self._child.collect()
        return self._slots.acquire(blocking=False)

    def _hand_over(self, name: str, args: tuple[Any, ...], payload: bytes) -> bool:
        if self._child is not None:
            accepted = self._child.submit(payload)
        else:
            try:
                self._executor.submit(self._run, name, args)
                accepted = True
            except RuntimeError:  # shut down: the process is stopping
                accepted = False
        if not accepted:
            self._slots.release()
            self.refused += 1
        return accepted

    def _release(self, jobs: list[tuple[str, tuple[Any, ...], bytes]]) -> None:
        """Hand over held jobs (once: the list empties); then note the child's reports."""
        while jobs:
            name, args, payload = jobs.pop(0)
            if not self._hand_over(name, args, payload):
                # The user was told it is under way; the runner closed in between (the
                # worker is stopping): say that nothing was done.
                lost = self._lost.get(name)
                log.error("a held background job was refused", extra={"job": name})
                if lost is not None:
                    try:
                        lost(*args, started=False)
                    except Exception:
                        log.exception("background job's lost handler failed", extra={"job": name})
        if self._child is not None:
            self._child.collect()

    def _run(self, name: str, args: tuple[Any, ...]) -> None:
        try:
            self._jobs[name](*args)
        except Exception:
            log.exception("background job failed", extra={"job": name})
        finally:
            self._slots.release()


class _Child:
    """The parent's side of the job process: the jobs accepted and not finished, a sender
    thread for jobs the pipe had no room for, and a watcher thread that waits for the
    child's death, reads its last reports and forks a new one."""

    def __init__(self, pool: Background, close_in_child: tuple[Any, ...]) -> None:
        self._pool = pool
        self._close_in_child = close_in_child
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the sender: work to send, or stop
        self._idle = threading.Condition(self._lock)  # close(): the child has finished
        self._pending: dict[int, bytes] = {}  # accepted, not finished: number -> frame
        self._started: set[int] = set()
        self._outbox: deque[int] = deque()  # numbers for the sender to write
        self._sending = False  # the sender is writing: nobody else may write now
        self._reading = threading.Lock()  # one reader of the reports pipe at a time
        self._closing = False
        self._stop_sent = False
        self._finished = False
        self.generation = 0
        self.pid = 0
        self._jobs_out: Connection | None = None
        self._retired: list[Connection] = []  # dead children's pipes, for the sender to close
        self._reports_in: Connection | None = None
        self._fork()  # before the threads below: the caller has no other thread yet
        threading.Thread(target=self._send, name="background-send", daemon=True).start()
        threading.Thread(target=self._watch, name="background-watch", daemon=True).start()

    def submit(self, payload: bytes) -> bool:
        with self._lock:
            if self._closing:
                return False
            number = next(self._numbers)
            frame = self._pending[number] = struct.pack("!Q", number) + payload
            connection = self._jobs_out
            # Nobody else writes while the lock is held and the sender is idle.
            if connection is not None and not (self._outbox or self._sending):
                try:
                    if _write_at_once(connection, frame):
                        return True
                except OSError:
                    return True  # the child died: the watcher resends every job not started
            self._outbox.append(number)
            self._wake.notify()
        return True

    def collect(self) -> None:
        """Note the reports the child has sent so far, never waiting: a finished job's
        slot comes back here."""
        if not self._reading.acquire(blocking=False):
            return  # another thread is reading them right now
        try:
            self._read_reports(self._reports_in)
        finally:
            self._reading.release()

    def _read_reports(self, connection: Connection | None) -> None:
        """Note every report already in the pipe, never waiting (one read when it is
        empty, the ack's case between jobs); a dead child's pipe ends the reading (what
        follows its death is the watcher's part)."""
        while connection is not None:
            try:
                data = os.read(connection.fileno(), _REPORTS_READ)
            except OSError:  # BlockingIOError: nothing yet; or the pipe is closed
                return
            if not data:
                return  # the child is gone and every report is read
            self._note(data)

    def _note(self, reports: bytes) -> None:
        with self._lock:
            for kind, number in _REPORT.iter_unpack(reports):
                if kind == _START:
                    self._started.add(number)
                elif self._pending.pop(number, None) is not None:
                    self._started.discard(number)
                    self._pool._slots.release()

    def close(self, wait: bool) -> None:
        with self._lock:
            self._closing = True
            self._wake.notify()
            while wait and not self._finished:
                self._idle.wait()

    def _fork(self) -> None:
        """A new child with fresh pipes (its predecessor's are closed by now)."""
        jobs_in, jobs_out = Pipe(duplex=False)
        reports_in, reports_out = Pipe(duplex=False)
        while True:
            try:
                pid = os.fork()
                break
            except OSError:
                log.exception("could not fork the background process; trying again")
                time.sleep(RESTART_PAUSE)
        # A replacement is forked from the worker while its request threads run: it also
        # holds copies of the client sockets open at that moment until it exits (the
        # worker's close of one of those reaches the client only then). The first child,
        # forked before the worker serves anything, has none.
        if pid == 0:  # the child: never returns into the parent's code
            status = 1
            try:
                jobs_out.close()
                reports_in.close()
                _serve(self._pool, jobs_in, reports_out, self._close_in_child)
                status = 0
            except BaseException:
                with contextlib.suppress(BaseException):
                    log.exception("background process failed")
            finally:
                os._exit(status)
        jobs_in.close()
        reports_out.close()
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or over the allowance
            fcntl.fcntl(jobs_out.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(jobs_out.fileno(), False)  # for the ack's all-or-nothing writes
        os.set_blocking(reports_in.fileno(), False)  # read only what is there
        with self._lock:
            self.pid = pid
            self._jobs_out, self._reports_in = jobs_out, reports_in
            self.generation += 1
            self._wake.notify_all()
        log.info("background process started", extra={"pid": pid})

    def _send(self) -> None:
        while True:
            with self._lock:
                self._sending = False
                while self._retired:
                    with contextlib.suppress(OSError):
                        self._retired.pop().close()
                # No connection: the child died and the watcher is forking the next one.
                while self._jobs_out is None or not (
                    self._outbox or (self._closing and not self._stop_sent)
                ):
                    if self._finished:
                        return
                    self._wake.wait()
                generation, connection = self.generation, self._jobs_out
                frame = None
                while self._outbox and frame is None:
                    frame = self._pending.get(self._outbox.popleft())
                if frame is None:
                    if not self._closing or self._stop_sent:
                        continue
                    frame = b""  # the end: the child finishes what it has, then exits
                    self._stop_sent = True
                self._sending = True
            try:
                _write_all(connection, frame)
            except OSError:
                # The child is gone: the watcher forks another and queues again every job
                # this one never started (this one included). Wait for that.
                with self._lock:
                    while self.generation == generation and not self._finished:
                        self._wake.wait()

    def _watch(self) -> None:
        while True:
            status = None
            # Blocked in waitpid, this thread holds no GIL until the child has exited.
            with contextlib.suppress(ChildProcessError):  # reaped by someone else already
                _, status = os.waitpid(self.pid, 0)
            with self._reading:  # every report the child wrote is in the pipe by now
                connection, self._reports_in = self._reports_in, None
                assert connection is not None
                self._read_reports(connection)
                connection.close()
            with self._lock:
                if self._closing and not self._pending:
                    self._finished = True
                    self._wake.notify_all()
                    self._idle.notify_all()
                    return
                lost = sorted(self._started)
                again = sorted(n for n in self._pending if n not in self._started)
                self._started.clear()
                for number in lost:
                    self._replace_lost(number)
                self._outbox = deque([*(n for n in lost if n in self._pending), *again])
                self._stop_sent = False
                # The sender closes it: closed here, its number could be reused by the next
                # pipe while the sender is about to write to it.
                if self._jobs_out is not None:
                    self._retired.append(self._jobs_out)
                self._jobs_out = None  # the sender waits for the next child's pipe
            log.error(
                "background process died; starting another",
                extra={"pid": self.pid, "status": status, "lost": len(lost), "resent": len(again)},
            )
            self._fork()

    def _replace_lost(self, number: int) -> None:
        """A job the dead child had started becomes its `lost` handler, or is dropped."""
        name, args = pickle.loads(self._pending[number][8:])
        if name in self._pool._lost:
            payload = pickle.dumps((_lost_name(name), args), pickle.HIGHEST_PROTOCOL)
            self._pending[number] = struct.pack("!Q", number) + payload
        else:  # nothing to tell anyone (an App Home refresh, or a lost handler itself)
            del self._pending[number]
            self._pool._slots.release()
            log.error("background job lost with its process", extra={"job": name})


def _framed(frame: bytes) -> bytes:
    """`frame` as `Connection.send_bytes` writes it (a 4-byte length first), for the
    child's `recv_bytes`."""
    return struct.pack("!i", len(frame)) + frame


def _write_at_once(connection: Connection, frame: bytes) -> bool:
    """Write `frame` whole into the non-blocking pipe now, or write nothing and say False:
    a pipe write of at most PIPE_BUF bytes is atomic."""
    data = _framed(frame)
    if len(data) > select.PIPE_BUF:
        return False
    try:
        os.write(connection.fileno(), data)
    except BlockingIOError:
        return False
    return True


def _write_all(connection: Connection, frame: bytes) -> None:
    """Write `frame` into the non-blocking pipe, waiting for room as often as needed."""
    data = memoryview(_framed(frame))
    room = select.poll()
    room.register(connection.fileno(), select.POLLOUT)
    while data:
        try:
            data = data[os.write(connection.fileno(), data) :]
        except BlockingIOError:
            room.poll()


def _lost_name(name: str) -> str:
    return f"{name}:lost"


def _serve(
    pool: Background, jobs_in: Connection, reports_out: Connection, close: tuple[Any, ...]
) -> None:
    """The child: read jobs until the parent says stop (or is gone), run them on `threads`
    threads, report each start and end; finish everything read before exiting."""
    for thing in close:
        with contextlib.suppress(OSError):
            thing.close()
    # The dyno's SIGTERM reaches every process: the child goes on until its parent stops
    # sending (gunicorn's worker_exit, or the parent's death) and exits when it has
    # finished or answered every job it read; jobs still waiting `stop_grace` after the
    # signal are answered, not started (the kill comes 30 s after it).
    stop_at = [math.inf]

    def stopping(signum: int, frame: object) -> None:
        stop_at[0] = min(stop_at[0], time.monotonic() + pool.stop_grace)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopping)
    for signum in (signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    for hook in pool._after_fork:
        hook()
    _yield_cpu()  # the job threads started below inherit it
    answers = {_lost_name(n): functools.partial(fn, started=True) for n, fn in pool._lost.items()}
    jobs = {**pool._jobs, **answers}
    waiting: queue.SimpleQueue[tuple[int, str, tuple[Any, ...]] | None] = queue.SimpleQueue()

    def report(kind: bytes, number: int) -> None:
        with contextlib.suppress(OSError):  # one record, written whole: no lock needed
            os.write(reports_out.fileno(), _REPORT.pack(kind, number))

    def work() -> None:
        while (item := waiting.get()) is not None:
            number, name, args = item
            report(_START, number)
            run = jobs[name]
            if name in pool._jobs and time.monotonic() >= stop_at[0]:
                lost = pool._lost.get(name)
                log.warning("background job not started: the dyno is stopping", extra={"job": name})
                run = functools.partial(lost, started=False) if lost else _nothing
            try:
                run(*args)
            except Exception:
                log.exception("background job failed", extra={"job": name})
            report(_DONE, number)

    workers = [threading.Thread(target=work, name=f"background-{i}") for i in range(pool.threads)]
    for thread in workers:
        thread.start()
    with contextlib.suppress(EOFError, OSError):
        while True:
            if not jobs_in.poll(1.0):
                # Signalled alone (the parent lives on): exit as a dead child would, and
                # the parent starts another for the jobs still in the pipe.
                if time.monotonic() >= stop_at[0]:
                    break
                continue
            if not (frame := jobs_in.recv_bytes()):
                break
            (number,) = struct.unpack_from("!Q", frame)
            name, args = pickle.loads(frame[8:])
            waiting.put((number, name, args))
    for _ in workers:
        waiting.put(None)
    for thread in workers:
        thread.join()
    for hook in pool._at_exit:
        with contextlib.suppress(Exception):
            hook()


def _nothing(*args: Any) -> None:
    """What runs instead of a job that has nobody to tell it was not run."""


def _yield_cpu() -> None:
    """Lower the calling thread's CPU priority (each pool thread runs this first, and the
    child's main thread before it starts its job threads)."""
    if hasattr(os, "setpriority"):
        # Raising one's own nice needs no privilege; where it is refused, run as before.
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + NICE))
