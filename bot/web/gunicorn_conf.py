"""gunicorn settings for the web dyno (read by the Procfile's web line)."""

import sys
from collections.abc import Callable

from gunicorn.glogging import Logger

from bot.config import ConfigError, count_setting, port_setting
from bot.logs import RedactSecrets


def _count(name: str, default: int) -> int:
    """A whole number of at least 1 from `name` (unset or empty: `default`). Anything else
    stops the dyno with one line: WEB_CONCURRENCY=0 had started a master with no worker,
    which listened and answered nothing."""
    return _or_stop(lambda: count_setting(name, default))


def _or_stop(read: Callable[[], int]) -> int:
    """What `read` reads, or the dyno stopped with its ConfigError's one line."""
    try:
        return read()
    except ConfigError as error:
        sys.exit(f"deploybot: {error}")


# PORT as the app reads it (spaces and quotes dropped, empty: 5000), or its one line:
# gunicorn's own ("'' is not a valid port number") did not name it.
bind = f"0.0.0.0:{_or_stop(port_setting)}"
workers = _count("WEB_CONCURRENCY", 2)
worker_class = "gthread"
# Request threads ack; the work after an ack runs in a child process of each worker
# (post_worker_init below), on that child's 2 threads.
threads = _count("GUNICORN_THREADS", 4)
# The master imports and builds the app once; workers fork from it, sharing those pages
# and booting without their own second of imports. Safe because create_app starts no
# thread (the drain's flusher and claimer and follow-ups start on first use, the background
# process in post_worker_init, all in the worker) and post_fork drops any database
# connection the master made.
preload_app = True
timeout = 30
# After SIGTERM a worker waits for its background process (worker_exit), which starts jobs
# for STOP_GRACE (20 s) and then answers the rest "nothing was done". At 20 the master
# killed the worker and exited at 20 s, its children still answering: on Heroku a dyno
# whose main process has exited is gone, answers and all. Heroku's SIGKILL comes at 30.
graceful_timeout = 28
accesslog = None
errorlog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger with drain tokens and credentials cut from every line: the access
    log (if someone turns it on with --access-logfile) prints each request line, and
    `/drain/<token>` is a secret."""

    def setup(self, cfg):  # type: ignore[no-untyped-def]
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactSecrets) for f in logger.filters):
                logger.addFilter(RedactSecrets())


logger_class = RedactingLogger


def on_starting(server):  # type: ignore[no-untyped-def]
    # Migrate an empty SQLite file once, in the master, before workers race to do it.
    # PostgreSQL is the release phase's to migrate: say where its schema stands.
    from bot.config import Config
    from bot.store.db import Database

    database = Database(Config.from_env().database_url)
    try:
        if not database.is_sqlite:
            _say_schema(database)
        elif database.needs_migration():
            database.migrate()
    finally:
        database.dispose()


def _say_schema(database):  # type: ignore[no-untyped-def]
    """One line when the schema is not this release's: behind (no release phase migrated
    it: commands fail until it runs) and newer (a rollback: this code runs on it) start all
    the same; another app's database stops gunicorn (exit 3), before it writes there."""
    import logging

    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.db import SCHEMA_NEWER, foreign_schema, schema_behind

    log = logging.getLogger("bot.web.schema")
    try:
        state, revision, head = database.schema_state()
    except SQLAlchemyError as error:  # restarting: /healthz says 503 until it is back
        log.warning("schema not checked: database unreachable",
                    extra={"error": type(error).__name__})  # fmt: skip
        return
    where = {"revision": revision, "release": head}
    if state == "foreign":
        log.error(foreign_schema(revision))
        raise SystemExit(3)  # gunicorn's "failed to boot": the whole server stops
    if state == "behind":
        log.error(schema_behind("commands fail"), extra=where)
    elif state == "newer":
        log.warning(SCHEMA_NEWER, extra=where)


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    # A connection the master opened (SQLite's migration check) must not be shared by
    # several processes: each worker starts with an empty pool of its own.
    if not server.cfg.preload_app:
        return  # the worker builds its own app after this hook
    extensions = getattr(worker.app.wsgi(), "extensions", {})  # the master's, inherited
    if "deploybot" in extensions:
        extensions["deploybot"].db.engine.dispose(close=False)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    # The app is loaded and the worker has no thread yet (gthread starts its request
    # threads after this hook): the one safe moment to fork the worker's background
    # process, which then runs the work after each ack off the request threads' GIL.
    extensions = getattr(worker.wsgi, "extensions", {})
    if "deploybot" in extensions:
        extensions["deploybot"].start_background_process(close_in_child=worker.sockets)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    # A restarting dyno answers every accepted command, tells each waiting follow-up thread
    # it stopped watching (instead of leaving a Beanstalk update's thread without an ending)
    # and saves the drained traffic it holds.
    from bot.web.app import close

    app = getattr(worker, "wsgi", None)
    if hasattr(app, "extensions"):  # the app create_app made
        close(app)
