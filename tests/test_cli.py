"""What an operator meets outside Slack: each process started with a bad setting stops
at once with one sentence naming it, exit code 2, never a traceback or a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("foo", "DATABASE_URL must be a postgres:// (Heroku Postgres) or sqlite:/// URL"),
        ("mysql://u:hunter2@db/x", "DATABASE_URL must be a postgres://"),
        ("postgresql://u:hunter2@127.0.0.1:abc/x", "DATABASE_URL's port is not a number."),
        ("postgresql://u:hunter2@127.0.0.1:1/x", "cannot be used (OperationalError)"),
        # libpq had taken the local socket for the missing host.
        ("postgres://u:hunter2@/x", "DATABASE_URL names no host or no database"),
    ],
)
def test_a_database_url_that_cannot_work_is_one_sentence(tmp_path, url, says):
    done = _run(tmp_path, "migrate", DATABASE_URL=url)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgres://",
        "postgres://u:p@/db",
        "postgresql://u:p@db.example.com",
        "postgres://db.example.com/",
    ],
)
def test_a_postgres_url_without_a_host_or_database_is_refused_before_connecting(url):
    # Such a URL had passed, and libpq connected over the local socket to a default
    # database: `migrate` migrated one named after the OS user.
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"DATABASE_URL": url})
    assert str(caught.value).startswith("DATABASE_URL names no host or no database")
    assert str(caught.value).count(". ") == 0


@pytest.mark.parametrize(
    "url", ["mybot.herokuapp.com", "ftp://mybot.example.com", "https://", "https://h:99999"]
)
def test_a_public_url_heroku_cannot_send_to_is_refused(url):
    # It was taken as it was: every `/deploy drain` and `watch` then gave Heroku an address
    # it refused ("mybot.herokuapp.com/drain/…"), and check-config said nothing.
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"DEPLOYBOT_URL": url})
    assert str(caught.value) == (
        "DEPLOYBOT_URL must be the bot's own web address, like https://mybot.herokuapp.com: "
        "Heroku sends log drains and webhooks there."
    )


@pytest.mark.parametrize("url", ["https://mybot.herokuapp.com/", "http://127.0.0.1:8000"])
def test_a_public_url_heroku_can_send_to_is_kept(url):
    assert Config.from_env({"DEPLOYBOT_URL": url}).public_url == url


def test_a_postgres_url_with_its_host_in_the_query_is_still_allowed():
    url = "postgresql://u@/db?host=/var/run/postgresql"
    assert Config.from_env({"DATABASE_URL": url}).database_url == url


def test_the_worker_stops_at_a_registry_it_cannot_read(tmp_path):
    # It had taken the lease and failed every job on it, while its heartbeat said all was
    # well, so the web dyno never warned.
    db = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    done = _run(tmp_path, "worker", DATABASE_URL=db, DEPLOYBOT_CONFIG=str(tmp_path / "no.yml"))
    assert done.returncode == 2 and "cannot read the registry" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DEPLOYBOT_AUTOSCALE_SECONDS", "soon"),
        # It had fallen back to 900 s with a warning where every other interval stops the
        # worker with its name; "nan" had failed the autoscale job at every tick.
        ("DEPLOYBOT_FORMATION_REFRESH_SECONDS", "15m"),
        ("DEPLOYBOT_FORMATION_REFRESH_SECONDS", "nan"),
    ],
)
def test_the_worker_stops_at_an_interval_that_is_no_number_of_seconds(tmp_path, name, raw):
    db = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    done = _run(tmp_path, "worker", DATABASE_URL=db, **{name: raw})
    assert done.returncode == 2, done.stderr
    assert f"{name} must be a number of seconds above 0" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({}, "Set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET in the environment"),
        # It had started and then answered every command that it had no key.
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"},
            "environment variable HEROKU_API_KEY is not set",
        ),
        # A traceback from float() in the gunicorn master; 0 had flushed in a busy loop.
        *(
            (
                {
                    "SLACK_BOT_TOKEN": "xoxb-1",
                    "SLACK_SIGNING_SECRET": "s",
                    "HEROKU_API_KEY": "k",
                    "DEPLOYBOT_DRAIN_FLUSH_SECONDS": seconds,
                },
                "DEPLOYBOT_DRAIN_FLUSH_SECONDS must be a number of seconds above 0",
            )
            for seconds in ("5s", "0", "nan")
        ),
    ],
    ids=["no slack settings", "no heroku api key", "flush 5s", "flush 0", "flush nan"],
)
def test_the_procfile_web_line_without_its_settings_stops_in_one_line(tmp_path, given, says):
    # gunicorn's own "worker failed to boot" (3): it had migrated, then died in bolt with a
    # 61-line traceback.
    procfile = (ROOT / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    command = web.removeprefix("web:").strip().replace("$PORT", "0")
    db = tmp_path / "g.sqlite3"
    done = subprocess.run(
        command,
        shell=True,
        cwd=ROOT,
        env={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
             "DATABASE_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT), **given},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert says in out, out
    assert "Traceback" not in out and not db.exists()


def test_socket_mode_needs_no_signing_secret_and_says_when_slack_is_away(tmp_path):
    done = _run(
        tmp_path,
        "socket",
        DATABASE_URL=f"sqlite:///{tmp_path / 's.sqlite3'}",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1",
        HEROKU_API_KEY="x",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # nothing listens there
    )
    # It had asked for SLACK_SIGNING_SECRET, which Socket Mode never uses; then a traceback.
    assert done.returncode == 2, done.stderr
    assert "Slack cannot be reached for Socket Mode (URLError)" in done.stderr
    assert "SLACK_SIGNING_SECRET" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "--limit", "99999999999999999999"),  # an OverflowError in SQLite
        ("serve", "--port", "99999"),  # served on 34463
        ("serve", "--port", "-1"),  # an OverflowError
        ("serve", "--port", "0"),  # ignored: 5000
    ],
)
def test_numbers_on_the_command_line_are_checked_before_use(tmp_path, args):
    done = _run(tmp_path, *args)
    assert done.returncode == 2 and "give a whole number from" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("rows", "args", "says"),
    [
        ("2024-01-01 00:00:00,5\n2024-01-01 00:05:00\n", (), "cannot read the trace"),
        (
            "2023-01-01 00:00:00,5\n2024-01-01 00:00:00,5\n2025-01-01 00:00:00,5\n",
            (),
            "the trace spans more than 120 days",  # it had run for minutes, silently
        ),
        (
            "2024-01-01 00:00:00,5\n2024-01-01 00:05:00,inf\n",
            (),
            "line 3: 'inf' is not a request count",
        ),
        (
            "2024-01-01 00:00:00,5\n2024-01-01 00:05:00,nan\n",
            (),
            "line 3: 'nan' is not a request count",
        ),
        (
            "2024-01-01 00:00:00,5\n2024-01-01 00:05:00,-4\n",
            (),
            "line 3: '-4' is not a request count",
        ),
        ("2024-01-01 00:00:00,5\n2024-01-01 00:05:00,6\n", ("--peak-rpm", "nan"), "positive"),
    ],
    ids=["row cut short", "a year apart", "inf", "nan (read as 0)", "negative", "nan peak"],
)
def test_a_trace_the_simulator_cannot_use_is_one_sentence(tmp_path, rows, args, says):
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,value\n" + rows)
    done = _run(tmp_path, "simulate", "--trace", str(trace), *args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_simulate_app_says_what_to_do_on_an_unmigrated_database_and_bad_bounds(tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    done = _run(tmp_path, "simulate", "--app", "demo", DATABASE_URL=db)
    # It had been "no such table: autoscale_settings" in a traceback.
    assert done.returncode == 1 and "run `python -m bot migrate`" in done.stdout
    bounds = _run(tmp_path, "simulate", "--app", "demo", "--min", "5", "--max", "2")
    assert bounds.returncode == 2 and "--min must be at least 1 and at most --max" in bounds.stderr


def test_the_audit_cli_folds_an_apps_case_as_chat_does(tmp_path):
    from bot.store.audit import Actor, AuditLog
    from bot.store.db import Database

    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    database = Database(url)
    try:
        database.migrate()
        AuditLog(database).record(Actor("U1"), "scale", "myapp", "scale web=2 myapp", "ok", "")
    finally:
        database.dispose()
    done = _run(tmp_path, "audit", "--app", "MYAPP", DATABASE_URL=url)
    assert done.returncode == 0 and "scale web=2 myapp" in done.stdout, done.stderr
    # An empty answer had printed nothing at all, which reads as a command that hung or broke.
    other = _run(tmp_path, "audit", "--app", "demo", DATABASE_URL=url)
    assert other.returncode == 0 and other.stdout == "", other.stdout
    assert "No change to demo is recorded yet." in other.stderr
    as_json = _run(tmp_path, "audit", "--app", "demo", "--json", DATABASE_URL=url)
    assert as_json.stdout.strip() == "[]" and as_json.stderr == ""


def test_a_replay_span_too_long_to_be_a_duration_is_a_usage_error(tmp_path):
    done = _run(tmp_path, "simulate", "--app", "demo", "--since", "99999999999d")
    assert done.returncode == 2 and "write 90s, 2m, 12h or 7d" in done.stderr
    assert "Traceback" not in done.stderr


def _trace(tmp_path: Path) -> str:
    rows = (f"2024-01-01 {h:02}:{m:02}:00,{50 + m}" for h in range(24) for m in range(0, 60, 5))
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    return str(trace)


@pytest.mark.parametrize(
    "args",
    [
        ("console", "--sandbox", "-c", "/deploy help", "-c", "/deploy apps"),
        ("audit",),
        ("audit", "--json"),
        ("simulate", "--trace", "TRACE", "--policy", "all"),
        ("simulate", "--trace", "TRACE", "--json"),
        ("--help",),
        ("console", "--help"),
    ],
    ids=lambda args: " ".join(args),
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path, args):
    # `make demo | head -1` had ended in a BrokenPipeError traceback.
    from bot.store.audit import Actor, AuditLog
    from bot.store.db import Database

    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    database = Database(url)
    try:
        database.migrate()
        for n in range(50):
            AuditLog(database).record(
                Actor("U1"), "scale", "myapp", f"scale web={n} myapp", "ok", ""
            )
    finally:
        database.dispose()
    args = tuple(_trace(tmp_path) if arg == "TRACE" else arg for arg in args)
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**base, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the reader is gone before the first line: `| head -0`
    try:
        errors = process.stderr.read()
        code = process.wait(timeout=60)
    finally:
        process.kill()
    # 128 + SIGPIPE, as a shell reports a tool the closed pipe stopped (`yes | head`).
    assert (code, errors) == (141, ""), errors


def test_settings_pasted_with_spaces_a_newline_or_quotes_are_read_as_meant():
    # A signing secret pasted from Slack's page with a trailing newline had made every
    # request's signature "invalid", and a token in quotes was "rejected": invisible in
    # `heroku config`, and nothing said why.
    config = Config.from_env(
        {
            "SLACK_SIGNING_SECRET": "abc123\n",
            "SLACK_BOT_TOKEN": ' "xoxb-1-2" ',
            "HEROKU_API_KEY": "'HRKU-k'",
            "SLACK_APP_TOKEN": "\txapp-1",
            "DATABASE_URL": " postgres://u:p@db.example.com:5432/d ",
            "DEPLOYBOT_URL": "https://bot.example.com ",
            "DEPLOYBOT_ADMIN_CHANNEL": '"C0ADMINS"',
            "HEROKU_APP_NAME": "my-bot\n",
            "PORT": " 5001 ",
            "SLACK_API_URL": " https://slack.com/api/ ",
            "HEROKU_API_URL": " https://api.heroku.com ",
        }
    )
    assert config.slack_signing_secret == "abc123"
    assert config.slack_bot_token == "xoxb-1-2"
    assert config.heroku_api_key == "HRKU-k"
    assert config.slack_app_token == "xapp-1"
    assert config.database_url == "postgres://u:p@db.example.com:5432/d"
    assert config.public_url == "https://bot.example.com"
    assert config.admin_channel == "C0ADMINS"
    assert config.heroku_app_name == "my-bot"
    assert config.port == 5001
    assert config.slack_api_url == "https://slack.com/api/"
    assert config.heroku_api_url == "https://api.heroku.com"
    assert Config.from_env({"SLACK_BOT_TOKEN": "  ", "DATABASE_URL": '""'}) == Config()


@pytest.mark.parametrize(
    ("args", "dyno"),
    [(("migrate",), "release.4821"), (("worker",), "worker.1"), (("check-config",), "run.1")],
)
def test_a_dyno_without_a_database_url_says_so_instead_of_using_a_sqlite_file(tmp_path, args, dyno):
    # No Heroku Postgres attached (an app made by hand, the add-on destroyed): the release
    # phase "migrated" a SQLite file on its one-off dyno and passed, and each dyno then kept
    # its own file, lost at every restart, where the worker never saw the web dyno's data.
    done = _run(
        tmp_path,
        *args,
        DYNO=dyno,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        HEROKU_API_KEY="k",
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "DATABASE_URL is not set on a Heroku dyno" in out, out
    assert "Traceback" not in out and not (tmp_path / "deploybot.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("metrics", "demo", "--window", "5<m>"), "deploybot: `5<m>` is not a window"),
        (("metrics", "de&mo"), "deploybot: `de&mo` is not a valid app name"),
    ],
)
def test_a_metrics_argument_refused_is_said_as_typed_not_as_slack_text(tmp_path, args, says):
    # The command parser's words are Slack text: the terminal had shown `5&lt;m&gt;`.
    done = _run(tmp_path, *args)
    assert done.returncode == 2 and done.stderr.startswith(says), done.stderr


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DEPLOYBOT_AUTOSCALE_SECONDS", "fast", "must be a number of seconds above 0, not 'fast'"),
        ("DEPLOYBOT_DRAIN_FLUSH_SECONDS", "0", "must be a number of seconds above 0, not '0'"),
        ("WEB_CONCURRENCY", "two", "must be a bare whole number like 2, not 'two'"),
        # gunicorn reads it with int() before its config file: these stopped it in a traceback.
        ("WEB_CONCURRENCY", "'2'", "must be a bare whole number like 2, not \"'2'\""),
        ("WEB_CONCURRENCY", "", "must be a bare whole number like 2, not ''"),
        ("GUNICORN_THREADS", "0", "must be a whole number of at least 1, not '0'"),
        # No upper bound had been checked: 100000 reached gunicorn and SQLAlchemy as given.
        ("WEB_CONCURRENCY", "500", "must be at most 100, not '500'"),
        ("GUNICORN_THREADS", "1000", "must be at most 100, not '1000'"),
        ("DEPLOYBOT_DB_POOL_SIZE", "100000", "must be at most 100, not '100000'"),
    ],
)
def test_check_config_names_a_setting_that_would_stop_a_dyno(tmp_path, name, value, says):
    # check-config had said "ok" while the worker or the web dyno then refused to start.
    done = _run(
        tmp_path,
        "check-config",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        HEROKU_API_KEY="k",
        **{name: value},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"problem: {name} {says}") for line in lines), done.stderr
    assert "Traceback" not in done.stderr
