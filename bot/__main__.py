"""`python -m bot` / `deploybot`: the console, migrations, Socket Mode, a dev server and the
dyno simulator."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

import sqlalchemy.exc

from bot.config import Config, ConfigError, setting_problems
from bot.logs import EXIT_CLOSED_PIPE, setup_logging
from bot.registry import Registry, RegistryError
from policies.numbers import ascii_digits
from policies.slack_text import unescape

# A DATABASE_URL that names no reachable server or file, or a server that is down.
_DATABASE_ERRORS = sqlalchemy.exc.SQLAlchemyError

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit code."""
    try:
        try:
            return _main(argv)
        finally:
            # Output still buffered meets a closed pipe here, not in the interpreter's exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and no one to say it to.
        # Python's own recipe: stdout onto devnull, so its flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="deploybot", description=__doc__)
    commands = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    console = commands.add_parser("console", help="talk to the bot from this terminal")
    console.add_argument(
        "--sandbox", action="store_true", help="use a fake Heroku with demo apps (no accounts)"
    )
    console.add_argument(
        "-c",
        dest="lines",
        action="append",
        default=[],
        metavar="LINE",
        help='run LINE (e.g. "/deploy status demo") and exit; repeatable',
    )
    console.add_argument("--user", default=None, help="the Slack user ID to act as")
    console.add_argument(
        "--keep-history",
        action="store_true",
        help="with --sandbox: keep the database in deploybot-sandbox.sqlite3 across runs "
        "(by default each run starts fresh, as the fakes do)",
    )

    check = commands.add_parser(
        "check-config", help="validate the app registry and the environment, offline"
    )
    check.add_argument("file", nargs="?", help="registry file (default: DEPLOYBOT_CONFIG)")

    audit = commands.add_parser("audit", help="print the audit trail (newest first)")
    audit.add_argument("--app", default=None, help="only this app (its alias)")
    audit.add_argument(
        "--limit", type=_count(0, 1_000_000), default=None, help="at most this many entries"
    )
    audit.add_argument("--json", action="store_true", help="one JSON array, for scripts")

    metrics = commands.add_parser("metrics", help="an app's traffic from its log drain")
    metrics.add_argument("app", help="the app's alias")
    metrics.add_argument("--window", default="1h", help="how far back: 5m, 1h, 24h (default 1h)")
    metrics.add_argument("--json", action="store_true", help="print JSON, for scripts")

    commands.add_parser("worker", help="run the worker dyno's scheduled jobs (one leader)")
    # The simulator owns its options (bot/simulate.py): everything after `simulate`, -h
    # included, goes to its own parser, so the two can never disagree.
    commands.add_parser(
        "simulate",
        add_help=False,
        help="replay a traffic trace through a model of Heroku web dynos "
        "(--trace FILE.csv [--policy NAME|all] [--peak-rpm N] [--seed N] [--json]; -h for more)",
    )
    commands.add_parser("migrate", help="apply database migrations (the release phase)")
    commands.add_parser("socket", help="run in Slack Socket Mode (needs SLACK_APP_TOKEN)")
    serve = commands.add_parser("serve", help="run the web process with Flask's dev server")
    serve.add_argument("--port", type=_count(1, 65_535), default=None)

    args, rest = parser.parse_known_args(argv)
    if args.cmd == "simulate":
        from bot.simulate import main as simulate_main

        return simulate_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _COMMANDS[args.cmd](args)
    except (ConfigError, RegistryError) as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 2
    except _DATABASE_ERRORS as error:
        # The class only: a driver's message can quote the URL, password and all.
        print(
            f"deploybot: the database at DATABASE_URL cannot be used "
            f"({type(error).__name__}). Check the URL and that the server is up.",
            file=sys.stderr,
        )
        return 2


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, or argparse's usage error."""

    def parse(text: str) -> int:
        digits = text.lstrip("0") or "0"
        # The length first: int() of thousands of digits is slow, then refused anyway.
        if not ascii_digits(text) or len(digits) > len(str(high)):
            raise argparse.ArgumentTypeError(f"give a whole number from {low} to {high:,}")
        if not low <= int(digits) <= high:
            raise argparse.ArgumentTypeError(f"give a whole number from {low} to {high:,}")
        return int(digits)

    return parse


def _console(args: argparse.Namespace) -> int:
    from bot.sandbox import console

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    user_id = args.user or console.CONSOLE_USER
    if args.keep_history and not args.sandbox:
        print("deploybot: --keep-history goes with --sandbox.", file=sys.stderr)
        return 2
    if not args.sandbox:
        return console.run(
            Config.from_env(), args.lines, interactive=not args.lines, user_id=user_id
        )
    from bot.sandbox.demo import SANDBOX_DATABASE, Sandbox

    kept = SANDBOX_DATABASE if args.keep_history else None
    sandbox = Sandbox(admins=frozenset({user_id, console.TEAMMATE}), database_url=kept)
    if not args.lines:
        history = "kept in deploybot-sandbox.sqlite3" if kept else "fresh each run"
        # From the sandbox's own registry, so the greeting names every app it has.
        targets = sandbox.registry.targets()
        heroku = ", ".join(t.alias for t in targets if t.platform == "heroku")
        beanstalk = ", ".join(t.alias for t in targets if t.platform == "beanstalk")
        print(
            f"Sandbox: fake Heroku ({heroku}) and Beanstalk ({beanstalk}), "
            f"its database {history}, and no worker running: nothing autoscales or alerts "
            "between your lines."
        )
    with sandbox as config:
        return console.run(
            config,
            args.lines,
            interactive=not args.lines,
            user_id=user_id,
            registry=sandbox.registry,
            teammate=console.TEAMMATE,
        )


def _check_config(args: argparse.Namespace) -> int:
    from bot import preflight

    # Every malformed setting at once: a bad DEPLOYBOT_ADMINS had hidden the registry's
    # problems, and the second bad setting showed only once the first was mended.
    problems: list[str] = []
    config = Config.from_env(problems=problems)
    try:
        registry = Registry.load(args.file) if args.file else Registry.from_env()
    except RegistryError:
        _print_problems(problems)  # the registry's own error follows, as ever
        raise
    where = registry.source or "no registry file (every Heroku app by its own name)"
    print(f"registry: {where}")
    for target in registry.targets():
        place = target.name if target.platform == "heroku" else f"{target.name} ({target.region})"
        print(f"  {target.alias}: {target.platform} {place}")
    problems += [
        f"{name} is not set: the web dyno needs it (`serve`, the Procfile's web line)"
        for name in preflight.NEEDS["serve"]
        if not getattr(config, name.lower())
    ]
    problems += preflight.problems(config, registry, os.environ)
    problems += setting_problems(os.environ)  # what would stop the worker or gunicorn
    for warning in registry.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    _print_problems(problems)
    if problems:
        return 1
    print("ok")
    return 0


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)


def _audit(args: argparse.Namespace) -> int:
    import json

    from bot.store.audit import AuditLog
    from bot.store.db import Database

    if args.limit is not None and args.limit < 1:
        print("deploybot: --limit must be at least 1.", file=sys.stderr)
        return 2
    database = Database(Config.from_env().database_url)
    if database.needs_migration():
        print(
            "deploybot: the database has no audit trail yet: run `python -m bot migrate`.",
            file=sys.stderr,
        )
        return 1
    # The alias as the registry folds it, as in chat: `DEMO` is `demo`.
    app = Registry.from_env().canonical(args.app) if args.app else None
    entries = AuditLog(database).recent(app, args.limit)
    if args.json:
        print(json.dumps([entry.as_json() for entry in entries], indent=2))
        return 0
    if not entries:  # said on stderr: stdout stays the entries alone, for a pipe
        print(f"No change{f' to {app}' if app else ''} is recorded yet.", file=sys.stderr)
    for entry in entries:
        when = entry.started_at.strftime("%Y-%m-%d %H:%M:%S")
        error = f"  {entry.error}" if entry.error else ""
        print(f"{when}  {entry.outcome:8} {entry.user_id:12} {entry.app:20} {entry.command}{error}")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import time

    from bot.metrics.aggregate import summarize
    from bot.metrics.store import MetricsStore
    from bot.store.db import Database
    from policies.commands import CommandError, parse

    try:
        command = parse(f"metrics {args.app} {args.window}")
    except CommandError as error:  # Slack text: shown here as typed, not as `&lt;`
        print(f"deploybot: {unescape(error.problem)}", file=sys.stderr)
        return 2
    minutes = command.limit or 60
    app = Registry.from_env().canonical(command.app or args.app)  # `DEMO` is `demo`, as in chat
    database = Database(Config.from_env().database_url)
    if database.needs_migration():
        print(
            "deploybot: the database is not migrated: run `python -m bot migrate`.", file=sys.stderr
        )
        return 1
    now = time.time()
    windows = MetricsStore(database).windows(app, int(now) - minutes * 60 - 60, int(now))
    summary = summarize(windows, now, minutes)
    if args.json:
        print(json.dumps({**dataclasses.asdict(summary), "app": app, "minutes": minutes}, indent=2))
        return 0
    print(
        f"{app}: {summary.requests} requests in {minutes} min ({summary.requests_per_minute:.1f}/min)"
    )
    for label, pct in (("service", summary.service), ("queue", summary.queue)):
        if pct is not None:
            print(f"  {label} p50/p95/p99: {pct.p50:.0f}/{pct.p95:.0f}/{pct.p99:.0f} ms")
    if summary.error_rate is not None:
        print(f"  5xx: {summary.error_rate:.1%}  codes: {dict(summary.codes) or 'none'}")
    return 0


def _worker(_args: argparse.Namespace) -> int:
    from bot.worker.main import main as worker_main

    setup_logging()
    return worker_main()


def _migrate(_args: argparse.Namespace) -> int:
    from bot import preflight
    from bot.store.db import Database, MigrationBlocked, foreign_schema

    setup_logging()
    config = Config.from_env()
    if problems := setting_problems(os.environ):
        # Heroku runs the release phase for a config var change too, and a failed one leaves
        # the running release as it was: better than dynos that would not start on it.
        for problem in problems:
            print(f"deploybot: {problem}.", file=sys.stderr)
        print(
            "deploybot: this release is not deployed, and the running one stays: mend the "
            "setting with `heroku config:set` (or unset it) and the release phase runs again.",
            file=sys.stderr,
        )
        return 1
    preflight.require_database(config, os.environ)
    database = Database(config.database_url)
    state, revision, head = database.schema_state()
    if state == "newer":
        # `heroku rollback` runs the release phase with the older code: failing it would
        # make the rollback fail, and the older code runs on the additive newer schema.
        print(
            f"deploybot: the database is at revision {revision}, newer than this release's "
            f"{head} (a rollback?): left as it is, since this release runs on it.",
            file=sys.stderr,
        )
        return 0
    if state == "foreign":
        raise ConfigError(foreign_schema(revision))
    try:
        database.migrate()
    except MigrationBlocked as error:
        print(f"deploybot: {error}", file=sys.stderr)
        return 1
    log.info("migrations applied")
    return 0


def _socket(_args: argparse.Namespace) -> int:

    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot import preflight
    from bot.services import Services
    from bot.web.bolt_app import build_bolt_app

    setup_logging()
    config = Config.from_env()
    preflight.require("socket", config, Registry.from_env(), os.environ)
    from slack_sdk.errors import SlackApiError

    services = Services(config)
    services.migrate_sqlite_if_behind()
    try:
        SocketModeHandler(build_bolt_app(services), config.slack_app_token).start()
    except SlackApiError as error:  # Slack's word: invalid_auth, not_allowed_token_type…
        why = error.response.get("error") or "refused"
        print(
            f"deploybot: Slack refused Socket Mode ({why}); check SLACK_APP_TOKEN.", file=sys.stderr
        )
        return 2
    except OSError as error:  # URLError, a timeout: Slack cannot be reached
        print(
            f"deploybot: Slack cannot be reached for Socket Mode ({type(error).__name__}); "
            "check the network and SLACK_API_URL.",
            file=sys.stderr,
        )
        return 2
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bot import preflight
    from bot.web.app import create_app

    config = Config.from_env()
    # Checked before create_app, which migrates a SQLite database.
    preflight.require("serve", config, Registry.from_env(), os.environ)
    create_app(config).run(host="127.0.0.1", port=args.port or config.port)
    return 0


_COMMANDS = {
    "console": _console,
    "check-config": _check_config,
    "audit": _audit,
    "metrics": _metrics,
    "worker": _worker,
    "migrate": _migrate,
    "socket": _socket,
    "serve": _serve,
}

if __name__ == "__main__":
    sys.exit(main())
