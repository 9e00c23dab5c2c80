"""The `/deploy` command grammar: text in, a `Command` (or a `CommandError`) out.

Pure: no Slack types, no I/O. The scale grammar follows `heroku ps:scale`:
`web=2`, `web=2:standard-2x`, `web+1`, `worker-2`; the app is the trailing word or
`-a APP` / `--app APP`.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace

from policies import config_vars, rules
from policies.guardrails import FREEZE_EXEMPT_VERBS, LOCK_HOLDS_BACK
from policies.names import closest, not_on_app, suggest
from policies.numbers import ascii_digits
from policies.slack_text import clip, code, listed, shown

# A deployment's life after scaling: `bot.actions.deployments` carries these out.
DEPLOYMENT_VERBS = (
    "releases",
    "builds",
    "rollback",
    "maintenance",
    "config",
    "lock",
    "unlock",
    "ship",
    "promote",
    "swap",
    "run",
    "logs",
)
VERBS = (
    "scale",
    "restart",
    "kill",
    "status",
    "metrics",
    "drain",
    "autoscale",
    "pin",
    "watch",
    "simulate",
    *DEPLOYMENT_VERBS,
    "alerts",
    "apps",
    "history",
    "chart",
    "cost",
    "about",
    "whoami",
    "help",
)
# The verbs only Heroku apps take: a mistyped app is offered the Heroku apps close to it.
HEROKU_ONLY_VERBS = frozenset(
    {"builds", "drain", "watch", "promote", "maintenance", "run", "autoscale", "pin"}
)
# The verbs that change something: the access rules' list, less `approve`, which is a
# button's click, never a command of its own.
MUTATING_VERBS = rules.MUTATING_VERBS - {"approve"}
# What `/deploy simulate` can play against an app in the sandbox.
SIMULATIONS = ("spike", "queue")
_REPLAY_RE = re.compile(r"^(\d+)([hd])\Z", re.IGNORECASE)
AUTOSCALE_MODES = ("on", "off", "shadow", "status")
_AUTOSCALE_WORDS = (*AUTOSCALE_MODES, "set", "schedule")
# What the autoscaler can track: `target=queue:300ms` (also `p95:300ms`), `service:500ms`,
# `rpm:1200` (requests per minute per dyno).
_TARGET_RE = re.compile(r"^(p95|queue|service|rpm):(\d+(?:\.\d+)?)(ms|s)?\Z", re.IGNORECASE)
# Worker types: `target=latency:30s` (job queue latency) or `jobs:50` (waiting per dyno).
_WORKER_TARGET_RE = re.compile(r"^(latency:\d+(?:\.\d+)?[sm]?|jobs:\d+(?:\.\d+)?)\Z", re.IGNORECASE)
# A Procfile process type, as Heroku and hirefire-resource accept it.
_PTYPE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,29}\Z", re.IGNORECASE | re.ASCII)
_DURATION_RE = re.compile(r"^(\d+)([mhd])\Z", re.IGNORECASE)
PIN_MAX_MINUTES = 7 * 24 * 60
# Heroku allows a few hundred dynos per type at most; anything past this is a typo.
MAX_QUANTITY = 1000
# An app runs a handful of process types, and one scale term names each once: more terms
# than this is a paste, refused before each is parsed, echoed and looked up.
SCALE_TERMS_MAX = 20
HISTORY_DEFAULT, HISTORY_MAX = 10, 50
# `/deploy history [APP] refused`: which requests to show (the audit outcomes they stand for
# are the actions path's business).
HISTORY_FILTERS = ("refused", "cancelled", "expired", "failed", "unknown", "done")
RELEASES_DEFAULT, RELEASES_MAX = 10, 50
# Beanstalk's VersionLabel is at most 100 characters; refs and releases are held to it too.
LABEL_MAX = 100
# A Heroku release (`v42`) or a Beanstalk version label (`app-1.2.3`, `1.2.0+build.5`).
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}\Z")
CONFIG_ACTIONS = ("set", "unset")
_CONFIG_READS = ("get", "show", "list", "ls", "view")  # words for reading: `config APP` alone
LOCK_REASON_MAX = 200
# A git ref: a branch, a tag or a commit (`main`, `v1.2.3`, `release/2026-11`, `3f2c1a9`);
# `+` for SemVer's build metadata, which git and Beanstalk's labels take.
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,99}\Z")
# What git refuses in a ref's name (`git check-ref-format`) of the characters above: `..`,
# `//`, a part starting with a dot, and an end of `/`, `.` or `.lock`.
_NO_REF = re.compile(r"\.\.|//|/\.|[/.]\Z|\.lock\Z")
LOGS_DEFAULT, LOGS_MAX = 100, 1500
# `/deploy run APP COMMAND`: no command the registry's `run:` allows is longer.
RUN_COMMAND_MAX = 200
METRICS_DEFAULT_MINUTES, METRICS_MAX_MINUTES = 60, 24 * 60
_WINDOW_RE = re.compile(r"^(\d+)([mh])\Z", re.IGNORECASE)
_AMOUNT_RE = re.compile(r"^\d+[mhd]?\Z", re.IGNORECASE)  # a count or a window: 5, 30m, 7d
_NEGATIVE_RE = re.compile(r"^-\d+\Z")  # a count below zero: out of range, not some other word
# `/deploy chart APP [6h|24h|7d]`: the windows a chart is drawn over, in minutes.
CHART_WINDOWS = {"6h": 6 * 60, "24h": 24 * 60, "7d": 7 * 24 * 60}
CHART_DEFAULT = "24h"
_LONG_NUMBER = re.compile(r"\d{100}")

USAGE = {
    "scale": "/deploy scale TYPE=N[:SIZE] [TYPE+N | TYPE-N ...] APP",
    "restart": "/deploy restart APP [TYPE | DYNO]",
    "kill": "/deploy kill APP [TYPE]",
    "status": "/deploy status APP",
    "metrics": "/deploy metrics APP [WINDOW]",
    "drain": "/deploy drain APP",
    "autoscale": "/deploy autoscale APP [TYPE] on|off|shadow|status [min=N] [max=N] [target=queue:300ms|service:500ms|rpm:1200|latency:30s|jobs:50]  |  /deploy autoscale APP set down_stabilization=2m|max_step=4|…=default  |  /deploy autoscale APP schedule add DAYS HH:MM-HH:MM min=N [max=N] [tz=ZONE] | list | remove N",
    "pin": "/deploy pin APP web=N for DURATION  |  /deploy pin APP off",
    "watch": "/deploy watch APP",
    "simulate": "/deploy simulate APP SPAN | /deploy simulate spike|queue APP",
    "releases": "/deploy releases APP [N]",
    "builds": "/deploy builds APP [N]",
    "rollback": "/deploy rollback APP [VERSION]",
    "maintenance": "/deploy maintenance APP on|off",
    "config": "/deploy config APP  |  /deploy config set KEY=VALUE APP  |  /deploy config unset KEY APP",
    "lock": "/deploy lock APP REASON",
    "unlock": "/deploy unlock APP",
    "ship": "/deploy ship APP [REF]",
    "promote": "/deploy promote APP",
    "swap": "/deploy swap APP OTHER",
    "run": "/deploy run APP COMMAND…",
    "logs": "/deploy logs APP [DYNO] [N]",
    "alerts": "/deploy alerts [APP]",
    "apps": "/deploy apps [WORD]",
    "history": "/deploy history [APP] [N] [refused|cancelled|expired|failed|unknown|done]",
    "chart": "/deploy chart APP [6h | 24h | 7d]",
    "cost": "/deploy cost [APP]",
    "about": "/deploy about",
    "whoami": "/deploy whoami",
    "help": "/deploy help [VERB]",
}

SUMMARY = {
    "scale": "set how many dynos run (and their size), e.g. `scale web=2 myapp`, `scale web+1 -a myapp`",
    "restart": "restart every dyno, one process type (`web`) or one dyno (`web.1`)",
    "kill": "scale every process type (or the one given) to 0, after you confirm",
    "status": "show the formation, the dynos with their state and age, and the current release",
    "metrics": "show requests per minute, response-time percentiles and errors (from the log drain, or CloudWatch on Beanstalk) over the last WINDOW from 1m to 24h (default 1h)",
    "drain": "add a log drain to a Heroku app, so `metrics` and the autoscaler see its traffic",
    "autoscale": "turn the autoscaler on, off or to shadow mode (decide and log, not act) for an app's web dynos, or a worker type from its job queue",
    "pin": "hold an app's web dynos at a count for a while, whatever the autoscaler thinks",
    "watch": "subscribe to a Heroku app's dyno, release and formation events, so crashes alert its channel",
    "simulate": "replay an app's stored traffic over the last SPAN from 1h to 14d through the autoscaler's model (`simulate APP 7d`); in the sandbox, also play a traffic spike or a backlog of jobs (`simulate queue demo`)",
    "releases": "list an app's releases (Heroku) or application versions (Beanstalk), newest first",
    "builds": "list a Heroku app's builds (from `git push heroku` or `ship`), newest first, with the output of the newest if it failed",
    "rollback": "go back to an earlier release (by default the previous good one), after you confirm",
    "maintenance": "turn a Heroku app's maintenance page on (after you confirm) or off",
    "config": "list an app's config vars (values masked unless you may change them), or set or unset one after you confirm",
    "lock": f"hold a deploy lock on an app: nobody else may {LOCK_HOLDS_BACK}, until you unlock it",
    "unlock": "release an app's deploy lock (the holder, or an admin)",
    "ship": "build and release a git ref (Heroku, from the registry's `source:`) or deploy an application version (Beanstalk)",
    "promote": "promote a Heroku app's slug to the next stage of its pipeline",
    "swap": "swap two Beanstalk environments' CNAMEs (blue/green)",
    "run": "run one of the app's allowed commands (the registry's `run:`) in a one-off dyno and show its output",
    "logs": "show the last N log lines (of one dyno, or one Beanstalk instance by its ID), secrets masked",
    "alerts": "list the open alerts (all apps, or one), with who acknowledged or silenced them",
    "apps": "list the apps I manage (or those whose name holds WORD), with their platform and channel",
    "history": "show who changed what (and who was refused, cancelled or let expire), newest first",
    "chart": "post a chart of requests, response times and web dynos, with scaling and incidents marked",
    "cost": "show the monthly cost of each app (or one) at list prices, and the last 7 days' web dyno-hours",
    "about": "show the bot's own health: its release, the worker's last tick, the alert backlog, the drains",
    "whoami": "show what you may do in this channel, and which rule says so",
    "help": "show this help, or the help of one verb",
}

# `/deploy help`'s line for each verb: kept short so the whole list fits in one message
# under the 4,000 characters Slack recommends; `help VERB` says it in full (SUMMARY).
BRIEF = {
    "scale": "set how many dynos run, and their size",
    "restart": "restart every dyno, one process type or one dyno",
    "kill": "scale every process type (or one) to 0",
    "status": "the formation, the dynos and the current release",
    "metrics": "requests, response times and errors from the log drain or CloudWatch",
    "drain": "add a log drain to a Heroku app, for `metrics` and the autoscaler",
    "autoscale": "autoscale web dynos, or a worker type from its job queue; `set` tunes "
    "it, `schedule` keeps a floor by the clock",
    "pin": "hold web dynos at a count for a while, whatever the autoscaler thinks",
    "watch": "alert the app's channel when its dynos crash (Heroku)",
    "simulate": "replay an app's stored traffic through the autoscaler's model",
    "releases": "list releases (Heroku) or application versions (Beanstalk)",
    "builds": "list a Heroku app's builds, and why the newest failed",
    "rollback": "go back to an earlier release (by default the previous good one)",
    "maintenance": "turn a Heroku app's maintenance page on or off",
    "config": "list config vars (values masked unless you may change them), or set or unset them",
    "lock": "hold a deploy lock: only you may roll back, ship, promote, swap, change config "
    "or run commands until you unlock it",
    "unlock": "release a deploy lock (the holder, or an admin)",
    "ship": "release a git ref (Heroku) or an application version (Beanstalk)",
    "promote": "promote a Heroku app's slug to the next stage of its pipeline",
    "swap": "swap two Beanstalk environments' CNAMEs (blue/green)",
    "run": "run one of the app's allowed commands in a one-off dyno",
    "logs": "the last N log lines, secrets masked",
    "alerts": "the open alerts, with who acknowledged or silenced them",
    "apps": "the apps I manage, with their platform and channel",
    "history": "who changed what, newest first",
    "chart": "a chart of requests, response times and web dynos",
    "cost": "the monthly cost at list prices, and last week's web dyno-hours",
    "about": "the bot's own health",
    "whoami": "what you may do in this channel, and which rule says so",
    "help": "this help, or one verb's in full",
}

EXAMPLES = {
    "scale": (
        "scale web=2 myapp",
        "scale web=3:standard-2x worker=1 -a myapp",
        "scale web+2 myapp",
    ),
    "restart": ("restart myapp", "restart myapp web", "restart myapp web.1"),
    "kill": ("kill myapp", "kill myapp worker"),
    "status": ("status myapp",),
    "metrics": ("metrics myapp", "metrics myapp 5m", "metrics myapp 24h"),
    "drain": ("drain myapp",),
    "autoscale": (
        "autoscale myapp on min=2 max=10 target=queue:300ms",
        "autoscale myapp worker on target=latency:30s min=0 max=10",
        "autoscale myapp set down_stabilization=2m max_step=4",
        "autoscale myapp schedule add mon-fri 08:00-18:00 min=3",
        "autoscale myapp status",
    ),
    "pin": ("pin myapp web=5 for 2h", "pin myapp off"),
    "watch": ("watch myapp",),
    "simulate": ("simulate myapp 7d", "simulate spike demo", "simulate queue demo"),
    "releases": ("releases myapp", "releases myapp 20"),
    "builds": ("builds myapp", "builds myapp 20"),
    "rollback": ("rollback myapp", "rollback myapp v41"),
    "maintenance": ("maintenance myapp on", "maintenance myapp off"),
    "config": ("config myapp", "config set LOG_LEVEL=debug myapp", "config unset LOG_LEVEL myapp"),
    "lock": ('lock myapp "investigating the checkout bug"',),
    "unlock": ("unlock myapp",),
    "ship": ("ship myapp", "ship myapp v1.4.2"),
    "promote": ("promote myapp-staging",),
    "swap": ("swap shop-blue shop-green",),
    "run": ("run myapp python manage.py migrate",),
    "logs": ("logs myapp", "logs myapp web.1 200"),
    "alerts": ("alerts", "alerts myapp"),
    "apps": ("apps", "apps shop"),
    "history": ("history", "history myapp 20", "history myapp refused"),
    "chart": ("chart myapp", "chart myapp 6h", "chart myapp 7d"),
    "cost": ("cost", "cost myapp"),
    "about": ("about",),
    "whoami": ("whoami",),
    "help": ("help", "help scale"),
}

# A process type as Heroku takes it (30 characters at most), so a longer word is refused as
# typed, clipped, instead of being sent to Heroku and echoed whole.
_NAME = r"[a-z][a-z0-9_-]{0,29}"
_CHANGE_RE = re.compile(
    rf"^(?P<type>(?:{_NAME})?)(?P<op>[=+-])(?P<amount>\d{{1,30}})"
    r"(?::(?P<size>[a-z0-9][a-z0-9.-]{0,39}))?\Z",
    re.IGNORECASE | re.ASCII,  # else the Kelvin sign is a `k`, and `\u0662` a 2
)
# `web=-1`: a count below 0, which no term can ask for (`web-1` takes one away).
_NEGATIVE_TERM_RE = re.compile(
    rf"^(?P<type>{_NAME})=-(?P<amount>\d{{1,30}})(?::[a-z0-9][a-z0-9.-]{{0,39}})?\Z",
    re.IGNORECASE | re.ASCII,
)
# One dyno's name: `web.1`, or on Fir (whose names hold no number) `web-1234abcde-123ab`.
_DYNO_RE = re.compile(
    rf"^(?:{_NAME}\.[0-9]{{1,6}}|{_NAME}-[0-9a-f]{{8,10}}-[0-9a-z]{{5}})\Z",
    re.IGNORECASE | re.ASCII,
)
# Heroku app names and Beanstalk environment names both fit in this. ASCII: under
# IGNORECASE alone, [a-z] also matches the Kelvin sign and the long s (`deKmo`).
_APP_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z", re.IGNORECASE | re.ASCII)
_APP_CHARS = re.compile(r"^[a-z0-9][a-z0-9-]*\Z", re.IGNORECASE | re.ASCII)  # any length


def is_app_name(word: str) -> bool:
    """Whether `word` is an app name as commands take one (and nothing more: no option)."""
    return _APP_RE.fullmatch(word) is not None


def is_process_type(word: str) -> bool:
    """Whether `word` is a process type (web, worker, clock_2) and nothing more."""
    return _PTYPE_RE.fullmatch(word) is not None


def is_dyno_name(word: str) -> bool:
    """Whether `word` names one dyno (`web.1`, or on Fir `web-1234abcde-123ab`), rather than
    a process type: a restart, a log session and a missing name each go by it."""
    return _DYNO_RE.match(word) is not None


# A verb with several forms shows, in an error, the usage of the form that was typed.
_PART_USAGE = {
    "autoscale on": "/deploy autoscale APP [TYPE] on|off|shadow|status [min=N] [max=N] "
    "[target=queue:300ms|service:500ms|rpm:1200|latency:30s|jobs:50]",
    "autoscale set": "/deploy autoscale APP set down_stabilization=2m|max_step=4|…=default",
    "autoscale schedule": "/deploy autoscale APP schedule add DAYS HH:MM-HH:MM min=N [max=N] "
    "[tz=ZONE] | list | remove N",
}


class CommandError(ValueError):
    """Bad input: `message` is one or two plain sentences, then the usage line, ending in a
    full stop as every answer does."""

    def __init__(
        self, problem: str, verb: str | None = None, if_app: tuple[str, CommandError] | None = None
    ) -> None:
        usage = USAGE.get(verb or "") or _PART_USAGE.get(verb or "", "/deploy help")
        self.problem = problem
        self.verb = verb
        # (word, error): the error to give instead once `word` names an app, which only the
        # registry knows (`config demo frob`: `frob` is wrong, not `demo`).
        self.if_app = if_app
        super().__init__(f"{problem} Usage: `{usage}`.")

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Change:
    """One `TYPE=N[:SIZE]`, `TYPE+N` or `TYPE-N` term."""

    process_type: str
    op: str  # "=", "+" or "-"
    amount: int
    size: str | None = None

    def __str__(self) -> str:
        size = f":{self.size}" if self.size else ""
        return f"{self.process_type}{self.op}{self.amount}{size}"


@dataclass(frozen=True)
class Command:
    verb: str
    app: str | None = None
    changes: tuple[Change, ...] = ()
    target: str | None = None  # restart: TYPE or DYNO; kill: TYPE
    topic: str | None = None  # help: the verb asked about
    limit: int | None = None  # history: how many entries; metrics: how many minutes
    force: str | None = None  # mutating verbs: `--force "reason"` past a freeze window
    mode: str | None = None  # autoscale: on, off, shadow, status; pin: "off" to unpin
    options: tuple[tuple[str, str], ...] = ()  # autoscale: ("min", "2"), ("target", "queue:300ms")
    reason: str | None = None  # lock: why the app is locked

    @property
    def mutating(self) -> bool:
        if self.verb == "config":
            return self.mode is not None  # `config APP` only reads
        reads = self.mode == "status" or (self.mode == "schedule" and self.topic == "list")
        return self.verb in MUTATING_VERBS and not (self.verb == "autoscale" and reads)

    def text(self) -> str:
        """The command written back in canonical form, for audit rows and messages."""
        words = [self.verb]
        if self.verb == "simulate" and self.mode == "replay":
            return f"simulate {self.app} {_span(self.limit or 0, 'dh')}"
        if self.verb == "simulate":
            return f"simulate {self.mode} {self.app}"
        if self.verb == "config":
            # Values never leave the command: audit rows, prompts and logs show names only.
            if self.mode == "set":
                return " ".join(["config set", *(f"{k}=…" for k, _ in self.options), str(self.app)])
            if self.mode == "unset":
                return " ".join(["config unset", *(k for k, _ in self.options), str(self.app)])
            return f"config {self.app}"
        if self.verb == "lock":
            reason = self.reason or ""
            typed = f"lock {self.app} {reason}"
            if _reads_back(typed, self):
                return typed  # prose, as typed: `lock demo fixing the bug`
            if "'" in reason and not any(c in reason for c in '"\\$`'):
                return f'lock {self.app} "{reason}"'  # `"don't ship"`, as one would type it
            return f"lock {self.app} {shlex.quote(reason)}"
        if self.verb == "run":
            return f"run {self.app} {self.reason or ''}"
        if self.verb == "swap":
            return f"swap {self.app} {self.target}"
        if self.verb == "autoscale" and self.mode == "schedule":
            return _schedule_text(self)
        if self.verb == "scale":
            words += [str(c) for c in self.changes]
        if self.verb == "pin" and self.app:
            words.append(self.app)
            words += [str(c) for c in self.changes]
            self_app_written = True
        else:
            self_app_written = False
        if self.app and not self_app_written:
            words.append(self.app)
        if self.target:
            words.append(self.target)
        if self.topic:
            words.append(self.topic)
        if self.mode:
            words.append(self.mode)
        words += [f"{key}={value}" for key, value in self.options]
        if self.verb == "pin" and self.limit is not None:
            words += ["for", _span(self.limit, "dhm")]
        elif self.limit is not None:
            words.append(_limit_text(self.verb, self.limit))
        if self.force:
            words.append(f"--force {shlex.quote(self.force)}")
        return " ".join(words)


def _limit_text(verb: str, limit: int) -> str:
    if verb == "chart":
        return next((w for w, m in CHART_WINDOWS.items() if m == limit), f"{limit}m")
    return _span(limit, "hm") if verb == "metrics" else str(limit)


def _span(minutes: int, units: str) -> str:
    """Minutes in the largest of `units` (the verb's grammar takes) that divides them, so
    the echo reads as typed: 24h, not 1440m."""
    for unit in units:
        size = {"d": 1440, "h": 60, "m": 1}[unit]
        if minutes % size == 0 or unit == units[-1]:
            return f"{minutes // size}{unit}"
    raise AssertionError(units)


def _schedule_text(command: Command) -> str:
    words = ["autoscale", command.app or "", "schedule", command.topic or ""]
    values = dict(command.options)
    if command.topic == "add":
        words += [values["days"], f"{values['start']}-{values['end']}"]
        words += [f"{k}={v}" for k, v in command.options if k in ("min", "max", "tz")]
    elif command.topic == "remove":
        words.append(str(command.limit))
    return " ".join(words)


# macOS and iOS curl a typed `"` (smart quotes): read as the straight quotes meant, but in
# a config value, which is stored as typed.
_CURLY_DOUBLE = str.maketrans("\u201c\u201d", '""')
# A curled `'` pair around whole words (`--force ‘hot fix’`, `status ‘demo’`); a `’` inside
# a word is an apostrophe (`don’t`), no quote, and stays as typed.
_CURLY_SINGLE = re.compile("(?<!\\S)\u2018([^\u2018\u2019']*)\u2019(?!\\S)")


# Slack keeps at most 40,000 characters of a message's text; no command comes near it (a
# long config value is a few thousand). Far past it, a quoted word took shlex seconds (18 s
# for 900 KB: it reads a character at a time), in the ack that Slack drops after 3 s.
TEXT_MAX = 40_000
# C0 and C1 control characters but tab, newline and carriage return: no key types one, and
# a NUL in a stored word (a lock's reason) is an error from PostgreSQL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def parse(text: str) -> Command:
    """Parse the text after `/deploy`. Raises `CommandError` with a user-facing message."""
    text = text or ""
    if len(text) > TEXT_MAX:
        raise CommandError(
            f"Your command is {len(text):,} characters long, and a command has at most "
            f"{TEXT_MAX:,}: type a shorter one."
        )
    control = _CONTROL.search(text)
    if control:
        raise CommandError(
            f"Your command holds a control character (U+{ord(control[0]):04X}), which no "
            "command takes: type it again without it."
        )
    curly = "\u201c" in text or "\u201d" in text
    config = any(word.lower().startswith("config") for word in text.split()[:2])
    if not config:
        text = _CURLY_SINGLE.sub(r"'\1'", text)
    try:
        return _parse(text.translate(_CURLY_DOUBLE) if curly and not config else text)
    except CommandError as error:
        if not (curly and config):
            raise
        said = f'{error.problem} Yours are curly (\u201c \u201d): type straight ones, `"`.'
        raise CommandError(said, error.verb) from None


def _parse(text: str) -> Command:
    locked = _lock_as_typed(text.translate(_INVISIBLE))
    if locked is not None:
        return locked
    try:
        words = _split(text)
    except ValueError:
        raise CommandError("There is an unmatched quote in your command.") from None
    # A config `KEY=VALUE` word keeps them: a value is stored as typed, never changed unseen
    # (the prompt masks it), and an invisible character in a key is refused.
    config = any(w.lower().startswith("config") for w in words[:2])
    kept = (w if config and "=" in w else w.translate(_INVISIBLE) for w in words)
    words = [w for w, typed in zip(kept, words, strict=True) if w or not typed]  # "" stays
    words = [_option_dashes(word) for word in words]
    if not words:
        return Command("help")
    verb = words[0].lower()
    if verb in ("-h", "--help"):
        verb = "help"
    for word in words:
        # int() refuses numbers past 4,300 digits with a ValueError; no count, duration or
        # app name (40 characters at most) comes near this, so say so before reading any.
        if _LONG_NUMBER.search(word):
            said = _masked([word])[0] if verb == "config" else word
            raise CommandError(
                f"{shown(said)} holds a number far too long to mean anything.",
                verb if verb in VERBS else None,
            )
    if verb not in VERBS:
        raise _unknown_verb(words)
    if verb == "run":
        # Everything after the app is the command, options and all (`--noinput`), but for
        # `--force "reason"` before the command or ending the line, as on every change.
        args, force = _take_run_force(words[1:])
        args, app = _take_run_app(args)
        command = _parse_run(args, app)
        return replace(command, force=force) if force else command
    args, force = _take_force_option(words[1:], verb)
    args, app, ahead = _take_app_option(args, verb)
    if verb in _AFTER_APP:
        _app_before_option(verb, args, app, ahead)
    try:
        command = _PARSERS[verb](args, app)
    except CommandError as error:
        raise _app_typed_too(verb, args, app, ahead) or error from None
    return replace(command, force=force) if force else command


def _app_typed_too(verb: str, args: list[str], app: str | None, ahead: int) -> CommandError | None:
    """`status demo -a demo-api`: an app where the usage puts APP as well as `-a`. The words
    failed as given, and blamed whichever was left over (`demo` is one word too many); read
    without `-a` they are a command whose app was typed before the option, so that is the
    mistake to name. Asked only after a failure: `restart web -a demo` is a command."""
    if app is None:
        return None
    try:
        alone = _PARSERS[verb](args, None)
    except CommandError:
        return None
    if alone.app is None or alone.app not in args[:ahead]:
        return None
    if alone.verb == "config" and alone.mode == "set":
        # `config set K=two words -a demo`: that word may be the rest of a secret, not shown.
        quoted = alone.options[-1][0] + '="…"'
        return CommandError(
            f"The app is given twice: before `-a` and {shown(app)} after it. Name it once; "
            f"a value with spaces goes in quotes: {code(quoted)}.",
            verb,
        )
    return _given_twice(alone.app, app, verb)


# What follows the app in the verbs whose next word could be an app name too.
_AFTER_APP = {"lock": "REASON", "rollback": "VERSION", "ship": "REF"}
# `v12` or `12`: a release (or a tag), as `heroku releases:rollback v12 -a APP` puts it.
_RELEASE_NUMBER_RE = re.compile(r"v?[0-9]{1,9}", re.IGNORECASE)


def is_release_number(word: str) -> bool:
    """Whether `word` numbers a Heroku release (`v12` or `12`), which Heroku counts up."""
    return _RELEASE_NUMBER_RE.fullmatch(word) is not None


def release_number(version: str) -> int:
    """Heroku's release number, `v12` → 12; 0 when it is not one."""
    return int(version.lower().removeprefix("v")) if is_release_number(version) else 0


# A commit SHA, short or whole: hex with a digit and a letter, which no app is likely named.
_COMMIT_RE = re.compile(r"^(?=.*\d)(?=.*[a-f])[0-9a-f]{7,40}\Z", re.IGNORECASE)


def _app_before_option(verb: str, args: list[str], app: str | None, ahead: int) -> None:
    """`ship demo -a demo-api`: with `-a`, the first word before it stands where the usage
    puts APP, so an app name there is the app typed twice, not what follows the app (the
    reason, version or ref), which goes after the option. A release number, a word no
    app is called (`v1.4.2`) or a commit SHA to ship (`3f2c1a9`) is still read as the
    version or ref."""
    if app is None or ahead == 0 or (verb != "lock" and is_release_number(args[0])):
        return
    if verb == "ship" and _COMMIT_RE.match(args[0]):
        return
    if not _APP_RE.match(args[0]):
        return
    if verb == "lock":
        raise _given_twice(args[0], app, verb)
    # `ship main -a demo` reads as well as a ref typed first as an app typed twice, so
    # the answer gives the command for each.
    typed, what = args[0], {"rollback": "version", "ship": "git ref"}[verb]
    raise CommandError(
        f"{shown(typed)} stands where the usage puts APP, and `-a` names {shown(app)} too. "
        f"If {shown(typed)} is the {what}, put it after the app: "
        f"{_rewrite([verb, app, typed, *args[1:]])}; if it is the app, leave out `-a`.",
        verb,
    )


def _given_twice(typed: str, app: str, verb: str) -> CommandError:
    after = f" and the {_AFTER_APP[verb]} after it" if verb in _AFTER_APP else ""
    return CommandError(
        f"The app is given twice: {shown(typed)} and {shown(app)} after `-a`. "
        f"Name it once, where the usage shows APP or with `-a`{after}.",
        verb,
    )


# Every Unicode space separates words, as ASCII's do: a no-break space (macOS's Option+Space,
# or a command copied from a rendered page) had joined `status demo` into one unknown verb.
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


# Characters that show as nothing, which a command copied from a page or a document can
# carry (a zero-width space, a word joiner, a byte-order mark, a soft hyphen): no part of a
# word anyone meant to type. Zero-width joiners stay: they join emoji in a lock's reason.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))


# macOS and iOS turn a typed `--` into a long dash (smart punctuation): `—force` is
# `--force`, and `—app`, `—a` the app option, whichever dash they start with.
_LONG_DASHES = ("\u2014", "\u2013")


def _option_dashes(word: str) -> str:
    """`word` with the long dash of an option we know written as typed before it joined."""
    if not word.startswith(_LONG_DASHES):
        return word
    rest = word[1:]
    if rest == "a":
        return "-a"
    return "--" + rest if rest.split("=", 1)[0] in ("app", "force") else word


def _split(text: str) -> list[str]:
    """`shlex.split`, with any Unicode space between words; inside quotes, kept as typed."""
    if "'" not in text and '"' not in text and "\\" not in text:
        # Without quotes or backslashes shlex's words are the runs between spaces, and
        # str.split's spaces are _SPACES: the same words, without shlex reading the text a
        # character at a time in Python (most of parsing a command, which every ack does).
        return text.split()
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace, lexer.whitespace_split, lexer.commenters = _SPACES, True, ""
    return list(lexer)


# What people coming from the Heroku CLI or other bots type for a verb spelled otherwise
# here; no spelling is near enough for `closest` to find it.
_OTHER_WORDS = {"deploy": "ship", "ps": "status", "info": "status", "stop": "kill"}


def _heroku_cli(typed: str, rest: list[str]) -> list[str] | None:
    """The words here for the Heroku CLI's `topic:command` (`maintenance:on -a demo`,
    `config:set K=v demo`) and the words after it (values masked), or None. A near verb
    alone (`maintenance`) would drop the part after the colon."""
    topic, _, action = typed.lower().partition(":")
    if topic == "maintenance" and action in ("on", "off"):
        return ["maintenance", *rest, action]
    if topic == "config" and action in CONFIG_ACTIONS:
        return ["config", action, *_masked(rest)]
    if topic == "config" and action == "get":
        return ["config", *rest[-1:]]  # reading is the app alone
    if topic == "pipelines" and action == "promote":
        return ["promote", *rest]
    return None


def _unknown_verb(words: list[str]) -> CommandError:
    """A word that is no verb: a near miss (`scal`, `stauts`) gets the command as it was
    probably meant, and a verb typed after the app (`demo status`) the right order. Only
    suggested, never run: a guess must not change anything."""
    typed = words[0]
    unknown = f"{shown(typed)} is not a command I know."
    if typed.lower() in ("/deploy", "deploy") and len(words) > 1 and words[1].lower() in VERBS:
        # The command's name twice: a whole `/deploy status demo` pasted after `/deploy`.
        meant = _as_typed(words[1].lower(), words[2:])
        return CommandError(
            f"{unknown} Did you mean {_rewrite(meant)}? Type `/deploy` once.", words[1].lower()
        )
    if len(words) > 1 and words[1].lower() in VERBS and _APP_RE.match(typed):
        verb = words[1].lower()
        # scale's app goes last: `scale myapp web=2` would be refused in turn.
        meant = (
            [verb, *words[2:], typed] if verb == "scale" else _as_typed(verb, [typed, *words[2:]])
        )
        return CommandError(
            f"{unknown} Did you mean {_rewrite(meant)}? The verb comes first.", words[1].lower()
        )
    cli = _heroku_cli(typed, words[1:])
    if cli:
        return CommandError(f"{unknown} Did you mean {_rewrite(cli)}?", cli[0])
    last = words[-1].lower()
    if len(words) > 2 and last in VERBS:
        # The verb typed last (`web=2 demo scale`): offered first, when that reads.
        meant = _as_typed(last, words[:-1])
        try:
            parse(shlex.join(meant))
        except CommandError:
            pass
        else:
            return CommandError(
                f"{unknown} Did you mean {_rewrite(meant)}? The verb comes first.", last
            )
    near = [_OTHER_WORDS[typed.lower()]] if typed.lower() in _OTHER_WORDS else closest(typed, VERBS)
    if near:
        meant = _as_typed(near[0], words[1:])
        return CommandError(f"{unknown} Did you mean {_rewrite(meant)}?", near[0])
    return CommandError(f"{unknown} Try one of: {', '.join(VERBS)}.")


def _rewrite(words: list[str]) -> str:
    # Quote only what needs it, so the suggestion reads as the user would type it.
    quoted = (shlex.quote(w) if not w or any(c.isspace() for c in w) else w for w in words)
    return shown(" ".join(quoted), limit=80)


def _take_force_option(words: list[str], verb: str) -> tuple[list[str], str | None]:
    if "--force" not in words:
        return words, None
    if verb not in MUTATING_VERBS:
        raise CommandError(f"`--force` only applies to changes, not to `{verb}`.", verb)
    if verb in FREEZE_EXEMPT_VERBS:
        # A freeze never holds them back, nor does `--force` pass someone else's lock:
        # said, where it had been ignored (`watch`) or made a lock's reason.
        raise CommandError(
            f"`--force` only passes a freeze, and no freeze holds back `{verb}`: leave it out.",
            verb,
        )
    at = words.index("--force")
    reason = words[at + 1].strip() if at + 1 < len(words) else ""
    if not reason or reason.startswith("-"):
        raise CommandError(
            '`--force` needs a reason after it, in quotes: `--force "hotfix"`.', verb
        )
    return words[:at] + words[at + 2 :], clip(reason, 200)


def _take_app_option(
    words: list[str], verb: str, prose: bool = False
) -> tuple[list[str], str | None, int]:
    """The words less `-a APP`, the app, and how many words came before the option. With
    `prose` (a lock's reason), another word starting with a dash is kept as a word."""
    rest: list[str] = []
    app: str | None = None
    ahead = len(words)
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-a", "--app"):
            if i + 1 >= len(words):
                raise CommandError(f"`{word}` needs an app name after it.", verb)
            app = _app_name(words[i + 1], verb, app)
            ahead = min(ahead, len(rest))
            i += 2
            continue
        if word.startswith("--app="):
            app = _app_name(word.split("=", 1)[1], verb, app)
            ahead = min(ahead, len(rest))
        elif word in ("-n", "--num") and verb == "logs":
            # `heroku logs -n 300`, which a cut reply points at, typed here as well.
            if i + 1 >= len(words):
                raise CommandError(
                    f"`{word}` needs a number of lines after it, like `{word} 50`.", verb
                )
            rest.append(words[i + 1])
            i += 2
            continue
        elif word.startswith("--num=") and verb == "logs":
            rest.append(word.split("=", 1)[1])
        elif word in ("--tail", "-t") and verb == "logs":
            raise CommandError(
                f"{shown(word)} follows logs live, which a Slack reply cannot: "
                "`/deploy logs APP N` shows the last N lines, and `heroku logs --tail` follows them.",
                verb,
            )
        elif word.startswith("-") and not _CHANGE_RE.match(word) and not prose:
            raise CommandError(f"{shown(word)} is not an option I know.", verb)
        else:
            rest.append(word)
        i += 1
    return rest, app, ahead


def _app_name(word: str, verb: str, already: str | None) -> str:
    if already is not None:
        raise CommandError(
            f"The app is given twice ({code(already)} and {shown(word)}): name one app.", verb
        )
    if not _APP_RE.match(word):
        hidden = next((c for c in word if unicodedata.category(c) == "Cf"), None)
        if hidden:
            # Echoed without it (Slack text leaves direction controls out), the name had
            # read as valid: "`demo` is not a valid app name".
            raise CommandError(
                f"{shown(word)} has an invisible character in it (U+{ord(hidden):04X}): "
                "type the app's name again.",
                verb,
            )
        # A look-alike (Cyrillic е, full-width ｄ) is a letter to the eye: name it, where
        # "use letters" had told someone who had typed only letters.
        odd = next((c for c in word if not c.isascii() and c.isalnum()), None)
        if odd:
            why = (
                f": its {code(odd)} is U+{ord(odd):04X}, not a plain a-z letter or digit. "
                "Type it again with a-z, 0-9 and dashes."
            )
        elif _APP_CHARS.match(word):
            why = f": it is {len(word):,} characters long, and an app name has at most 40."
        else:
            why = ": use letters, digits and dashes."
        raise CommandError(f"{shown(word)} is not a valid app name{why}", verb)
    return word


def _parse_scale(args: list[str], app: str | None) -> Command:
    # Without -a the app is the last word, so `web-1 my-app-2` reads as type web, app my-app-2.
    if app is None:
        if not args or (len(args) == 1 and _CHANGE_RE.match(args[0])):
            raise CommandError("Say which app, as the last word or with `-a APP`.", "scale")
        if "=" in args[-1] or not _APP_RE.match(args[-1]):
            first, rest = args[0], args[1:]
            app_first = _APP_RE.match(first) and not _CHANGE_RE.match(first)
            if rest and app_first and all(_CHANGE_RE.match(word) for word in rest):
                meant = _rewrite(["/deploy", "scale", *rest, first])
                raise CommandError(f"Put the app last: {meant}.", "scale")
            raise CommandError(
                f"The last word, {shown(args[-1])}, should be the app (or give it with `-a APP`).",
                "scale",
            )
        app, args = args[-1], args[:-1]
    joined = _type_then_count(args)
    if joined is not None:
        meant = _rewrite(["/deploy", "scale", *joined, app.lower()])
        raise CommandError(f"Write each change as one word: {meant}.", "scale")
    if len(args) > SCALE_TERMS_MAX:
        raise CommandError(
            f"That is {len(args):,} scale terms, and one `scale` takes at most {SCALE_TERMS_MAX} "
            "(one per process type): scale fewer types at a time.",
            "scale",
        )
    changes: list[Change] = []
    for word in args:
        match = _CHANGE_RE.match(word)
        if match is None:
            _refuse_negative(word, app)
            raise CommandError(
                f"{shown(word)} is not a scale term: write TYPE=N, TYPE+N or TYPE-N.", "scale"
            )
        changes.append(_change(match))
    if not changes:
        raise CommandError("Say which process types to scale, for example `web=2`.", "scale")
    seen: set[str] = set()
    for change in changes:
        if change.process_type in seen:
            raise CommandError(f"{code(change.process_type)} is scaled twice.", "scale")
        seen.add(change.process_type)
    return Command("scale", app=app, changes=tuple(changes))


def _refuse_negative(word: str, app: str) -> None:
    """`web=-1`: say a count is never below 0, and what stops the type or takes dynos away
    (it had been "not a scale term", as if `=` were the mistake)."""
    negative = _NEGATIVE_TERM_RE.match(word)
    if negative is None:
        return
    ptype, amount = negative["type"].lower(), int(negative["amount"])
    dynos = "dyno" if amount == 1 else "dynos"
    # `web-99999` is refused in its turn: offered only where it would be taken.
    fewer = (
        f", or {code(f'{ptype}-{amount}')} to take {amount:,} {dynos} away"
        if amount <= MAX_QUANTITY
        else ""
    )
    raise CommandError(
        f"{shown(word)}: a dyno count cannot be negative. Write {code(f'{ptype}=0')} to stop "
        f"{code(ptype)} (or {code(f'/deploy kill {app.lower()} {ptype}')}){fewer}.",
        "scale",
    )


def _type_then_count(args: list[str]) -> list[str] | None:
    """`web 2 worker=1` as `web=2 worker=1` (`heroku ps:scale web 2` habits), when that
    makes every word a scale term; None when there is no such pair or it would not."""
    joined: list[str] = []
    for word in args:
        if joined and ascii_digits(word) and is_process_type(joined[-1]):
            joined[-1] = f"{joined[-1]}={word}"
        else:
            joined.append(word)
    if joined == args or not all(_CHANGE_RE.match(word) for word in joined):
        return None
    return joined


def _change(match: re.Match[str], verb: str = "scale") -> Change:
    process_type = match["type"].lower()
    if not process_type:
        raise CommandError(
            f"{shown(match.string)} has no process type before `{match['op']}`.", verb
        )
    amount = int(match["amount"])
    if amount > MAX_QUANTITY and match["op"] == "-":
        raise CommandError(
            f"{shown(match.string)} takes more than {MAX_QUANTITY} dynos away, more than a "
            f"process type runs. Write {code(f'{process_type}=0')} to stop {code(process_type)}.",
            verb,
        )
    if amount > MAX_QUANTITY:
        raise CommandError(f"{shown(match.string)} asks for more than {MAX_QUANTITY} dynos.", verb)
    size = match["size"].lower() if match["size"] else None
    if size and match["op"] != "=":
        raise CommandError(
            f"{shown(match.string)}: a size goes with `=` only, as in `web=2:standard-2x`.",
            verb,
        )
    return Change(process_type, match["op"], amount, size)


# Heroku's router ends a request at 30 s (H12): a p95 target past it can never be missed.
_TARGET_MOST_MS, _TARGET_MOST_RPM = 30_000, 1_000_000


def _target_out_of_range(text: str) -> str | None:
    """Why a web target that `_TARGET_RE` matched cannot be met or missed, or None."""
    match = _TARGET_RE.match(text)
    assert match is not None
    number = float(match[2]) * (1000 if (match[3] or "").lower() == "s" else 1)
    if number <= 0:
        return "a target must be more than 0."
    if match[1].lower() == "rpm":
        return None if number <= _TARGET_MOST_RPM else f"at most {_TARGET_MOST_RPM:,} rpm per dyno."
    if number > _TARGET_MOST_MS:
        return "a p95 target is at most 30s: Heroku's router ends a request there (H12)."
    return None


def _a_bound_is_zero(options: list[tuple[str, str]]) -> bool:
    """Whether a `min=` or `max=` among `options` (checked whole numbers) is 0, as `00` is."""
    return any(key in ("min", "max") and int(value) == 0 for key, value in options)


def _web_zero(app: str | None, how: str = "autoscaled") -> str:
    return (
        f"Web dynos are never {how} to 0: at 0 the app serves nothing. To stop it, "
        f"`/deploy kill {app or 'APP'}` asks you to confirm first."
    )


def _parse_restart(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "restart", most=1)
    target = rest[0] if rest else None
    if target is not None and not (_PTYPE_RE.match(target) or _DYNO_RE.match(target)):
        raise CommandError(
            f"{shown(target)} is neither a process type (`web`) nor a dyno (`web.1`).", "restart"
        )
    return Command("restart", app=app, target=target.lower() if target else None)


def _parse_kill(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "kill", most=1)
    target = rest[0] if rest else None
    if target is not None and not _PTYPE_RE.match(target):
        raise CommandError(f"{shown(target)} is not a process type such as `web`.", "kill")
    return Command("kill", app=app, target=target.lower() if target else None)


def _parse_status(args: list[str], app: str | None) -> Command:
    app, _ = _positional_app(args, app, "status", most=0)
    return Command("status", app=app)


def _parse_apps(args: list[str], app: str | None) -> Command:
    if app is not None:
        raise CommandError(
            "`apps` takes no app: `/deploy apps WORD` lists those named with WORD.", "apps"
        )
    word = _one_optional(args, "apps")
    if word is not None and not _APP_RE.match(word):
        raise CommandError(f"{shown(word)} cannot be part of an app's name.", "apps")
    return Command("apps", target=word.lower() if word else None)


def _parse_history(args: list[str], app: str | None) -> Command:
    limit: int | None = None
    only: str | None = None
    for word in args:
        if word.lower() in HISTORY_FILTERS:
            if only is not None:
                raise CommandError(
                    "Give one of refused, cancelled, expired, failed, unknown or done.", "history"
                )
            only = word.lower()
        elif ascii_digits(word) or _NEGATIVE_RE.match(word):
            # '²'.isdigit(), but int('²') raises
            if limit is not None:
                raise CommandError("Give the number of entries once.", "history")
            limit = int(word)
            if not 1 <= limit <= HISTORY_MAX:
                raise CommandError(f"Ask for 1 to {HISTORY_MAX} entries.", "history")
        elif app is not None:
            # A second word where the filter goes: a filter misspelt ("canceled"), most likely.
            filters = ", ".join(HISTORY_FILTERS)
            raise CommandError(f"{shown(word)} is not a filter: use one of {filters}.", "history")
        else:
            app = _app_name(word, "history", app)
    return Command("history", app=app, limit=limit or HISTORY_DEFAULT, mode=only)


def _parse_alerts(args: list[str], app: str | None) -> Command:
    for word in args:
        app = _app_name(word, "alerts", app)
    return Command("alerts", app=app)


def _parse_metrics(args: list[str], app: str | None) -> Command:
    _span_after_app(args, app, "metrics", "mh")
    app, rest = _positional_app(args, app, "metrics", most=1)
    if not rest:
        return Command("metrics", app=app, limit=METRICS_DEFAULT_MINUTES)
    match = _WINDOW_RE.match(rest[0])
    minutes = int(match[1]) * (60 if match[2].lower() == "h" else 1) if match else 0
    if not 1 <= minutes <= METRICS_MAX_MINUTES:
        _app_second(app, rest[0], "metrics")
        raise CommandError(
            f"{shown(rest[0])} is not a window: write minutes or hours up to 24h, like 5m or 1h.",
            "metrics",
        )
    return Command("metrics", app=app, limit=minutes)


def _parse_chart(args: list[str], app: str | None) -> Command:
    _span_after_app(args, app, "chart", "hd")
    app, rest = _positional_app(args, app, "chart", most=1)
    window = rest[0].lower() if rest else CHART_DEFAULT
    if window not in CHART_WINDOWS:
        _app_second(app, rest[0], "chart")
        raise CommandError(
            f"{shown(rest[0])} is not a chart window: use {', '.join(CHART_WINDOWS)}.", "chart"
        )
    return Command("chart", app=app, limit=CHART_WINDOWS[window])


def _parse_cost(args: list[str], app: str | None) -> Command:
    for word in args:
        app = _app_name(word, "cost", app)
    return Command("cost", app=app)


def _parse_about(args: list[str], app: str | None) -> Command:
    if args or app is not None:
        raise CommandError("`about` takes no other words.", "about")
    return Command("about")


def _parse_drain(args: list[str], app: str | None) -> Command:
    app, _ = _positional_app(args, app, "drain", most=0)
    return Command("drain", app=app)


def _parse_watch(args: list[str], app: str | None) -> Command:
    app, _ = _positional_app(args, app, "watch", most=0)
    return Command("watch", app=app)


_SPAN_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
}


def _span_in_two_words(verb: str, head: list[str], tail: list[str], units: str) -> None:
    """Raise when `tail` is a span typed as two words (`7 d`, `5 minutes`) in one of `units`:
    the unit had been blamed as a word too many, or the number as the app. The answer is the
    command as `head` then the span as one word."""
    unit = _SPAN_UNITS.get(tail[1].lower(), "") if len(tail) == 2 else ""
    if unit and unit in units and ascii_digits(tail[0]):
        noun = {"simulate": "span", "pin": "duration"}.get(verb, "window")
        meant = shown(" ".join(("/deploy", verb, *head, tail[0] + unit)), limit=80)
        raise CommandError(f"Write the {noun} as one word: {meant}.", verb)


def _span_after_app(args: list[str], app: str | None, verb: str, units: str) -> None:
    """`_span_in_two_words` for a span right after the app, or after `-a APP`."""
    if app or args:
        named, tail = (app, args) if app else (args[0], args[1:])
        _span_in_two_words(verb, [named.lower()], tail, units)


def _parse_simulate(args: list[str], app: str | None) -> Command:
    # `simulate APP 7d`: replay the app's stored traffic (anywhere, not only the sandbox).
    span = _REPLAY_RE.match(args[-1]) if args else None
    replay_span = "Replay from 1h to 14d of stored traffic, like 7d."
    if span and (len(args) == 2 or (len(args) == 1 and app)) and args[0].lower() not in SIMULATIONS:
        minutes = int(span[1]) * {"h": 60, "d": 24 * 60}[span[2].lower()]
        if not 0 < minutes <= 14 * 24 * 60:
            raise CommandError(replay_span, "simulate")
        return Command(
            "simulate", app=args[0] if len(args) == 2 else app, mode="replay", limit=minutes
        )
    if len(args) > 2 and _REPLAY_RE.match(args[1]) and args[0].lower() not in SIMULATIONS:
        raise _too_many(args[2], "simulate")  # `simulate APP 7d` and a word after it
    if not args or args[0].lower() not in SIMULATIONS:
        _span_after_app(args, app, "simulate", "hd")
    spans = len(args) == 2 or (len(args) == 1 and app)  # APP SPAN, or SPAN after `-a APP`
    if spans and args[-1][:1].isdigit() and args[0].lower() not in SIMULATIONS:
        raise CommandError(replay_span, "simulate")  # a span in other units: 90m, 2w, 1.5d
    if not args or args[0].lower() not in SIMULATIONS:
        _app_last(args, app, "simulate", len(args) == 2 and bool(_REPLAY_RE.match(args[0])))
        named = len(args) == 1 and app is None and _APP_RE.match(args[0])
        if named and not _REPLAY_RE.match(args[0]) and not closest(args[0], SIMULATIONS):
            # `simulate demo`: most likely a replay with its span left out.
            raise CommandError(
                f"Say how far back to replay, like `/deploy simulate {args[0].lower()} 7d` "
                f"(1h to 14d), or play one of: {', '.join(SIMULATIONS)}.",
                "simulate",
            )
        got = f"{shown(args[0])} is not a simulation. " if args else ""
        raise CommandError(f"{got}Say which one: {', '.join(SIMULATIONS)}.", "simulate")
    app, _ = _positional_app(args[1:], app, "simulate", most=0)
    return Command("simulate", app=app, mode=args[0].lower())


def _parse_autoscale(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "autoscale")
    if rest and rest[0].lower() == "pin":
        raise CommandError(
            f"A pin is its own command: `/deploy pin {app or 'APP'} web=N for 2h`.", "pin"
        )
    if rest and rest[0].lower() == "set":
        return _parse_autoscale_set(app, rest[1:])
    if rest and rest[0].lower() == "schedule":
        return _parse_autoscale_schedule(app, rest[1:])
    ptype, words = None, _AUTOSCALE_WORDS
    # `autoscale APP worker on target=latency:30s`: a process type before the mode.
    if len(rest) > 1 and rest[1].lower() in AUTOSCALE_MODES and _PTYPE_RE.match(rest[0]):
        ptype, rest = rest[0].lower(), rest[1:]
        ptype = None if ptype == "web" else ptype
    if len(rest) > 1 and rest[0].lower() not in AUTOSCALE_MODES and _PTYPE_RE.match(rest[0]):
        # `autoscale APP worker of`: the second word is the mistyped mode, unless a setting
        # follows the first or only the first is near a mode (`sett max_step=4`, `schedul
        # add …`): then the first is, and blaming the second would point past it.
        if "=" in rest[1] or not _meant(rest[1], AUTOSCALE_MODES):
            _keyword(
                rest[0], _AUTOSCALE_WORDS, "a mode", "autoscale on", near_only="=" not in rest[1]
            )
        rest, words = rest[1:], AUTOSCALE_MODES  # `set` and `schedule` take no type
    if not rest:
        raise CommandError("Say on, off, shadow or status.", "autoscale on")
    typed_alone = len(rest) == 1 and words is _AUTOSCALE_WORDS  # one word after the app
    if typed_alone and _PTYPE_RE.match(rest[0]) and not _meant(rest[0], _AUTOSCALE_WORDS):
        # `autoscale demo worker`: most likely a process type with its mode left out, which
        # "`worker` is not a mode: use `on`, …" did not say how to write.
        raise CommandError(
            f"{shown(rest[0])} is not a mode. After a process type, say on, off, shadow or "
            f"status, like `/deploy autoscale {app} {rest[0].lower()} status`.",
            "autoscale on",
        )
    # `autoscale demo worker of` had said only "`of` is not a mode.": the mode meant is
    # offered, as for `maintenance demo of`.
    _keyword(rest[0], words, "a mode", "autoscale on")
    mode, options = rest[0].lower(), []
    seen: set[str] = set()
    for word in rest[1:]:
        key, _, value = word.partition("=")
        key = key.lower()
        if key not in ("min", "max", "target") or not value:
            raise CommandError(
                f"{shown(word)} is not a setting: use min=N, max=N or target=….", "autoscale on"
            )
        if key in seen:
            raise CommandError(f"{code(key)} is given twice.", "autoscale on")
        seen.add(key)
        if key in ("min", "max") and not (ascii_digits(value) and int(value) <= MAX_QUANTITY):
            raise CommandError(
                f"{shown(word)}: {key} must be a whole number up to {MAX_QUANTITY}.", "autoscale on"
            )
        if key == "target" and ptype is not None and not _WORKER_TARGET_RE.match(value):
            raise CommandError(
                f"{shown(word)} is not a worker target: write latency:30s or jobs:50.",
                "autoscale on",
            )
        if key == "target" and ptype is None and _WORKER_TARGET_RE.match(value):
            meant = f"autoscale {app or 'APP'} worker {mode} target={value}"
            raise CommandError(
                f"{shown(word)} is a job-queue target, for a worker type: name it, as in "
                f"{shown(meant, limit=120)}.",
                "autoscale on",
            )
        if key == "target" and ptype is None and not _TARGET_RE.match(value):
            raise CommandError(
                f"{shown(word)} is not a target: write queue:300ms, service:500ms or rpm:1200 "
                "(web), or latency:30s or jobs:50 after a worker type.",
                "autoscale on",
            )
        if key == "target" and ptype is None and (why := _target_out_of_range(value)):
            raise CommandError(f"{shown(word)}: {why}", "autoscale on")
        options.append((key, value.lower()))
    values = dict(options)
    if ptype is None and _a_bound_is_zero(options):
        raise CommandError(_web_zero(app), "autoscale on")
    if ptype is not None and "max" in values and int(values["max"]) == 0:
        # Held at 0 for good is a stop, which a person's `scale TYPE=0` confirms first.
        raise CommandError(
            f"max=0 would hold `{ptype}` at 0 whatever its queue holds: `/deploy scale "
            f"{ptype}=0 {app or 'APP'}` stops it after you confirm, and `/deploy autoscale "
            f"{app or 'APP'} {ptype} off` leaves it as it runs.",
            "autoscale on",
        )
    if "min" in values and "max" in values and int(values["min"]) > int(values["max"]):
        raise CommandError(f"min={values['min']} is more than max={values['max']}.", "autoscale on")
    if options and mode in ("off", "status"):
        raise CommandError(f"`autoscale {mode}` takes no settings.", "autoscale on")
    return Command("autoscale", app=app, mode=mode, options=tuple(options), target=ptype)


# `/deploy autoscale APP set KEY=VALUE`: the policy settings chat may change; `default`
# drops chat's value (the registry's or the built-in default applies again).
AUTOSCALE_SET_KEYS = ("down_stabilization", "max_step")
# ASCII digits only: `\d` also takes other scripts' (`２m`), which were stored as typed.
_SET_DURATION_RE = re.compile(r"^\d+[smh]\Z", re.IGNORECASE | re.ASCII)
_RANGE_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_CLOCK_RANGE_RE = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})\Z", re.ASCII)


def _parse_autoscale_set(app: str | None, words: list[str]) -> Command:
    if not words:
        raise CommandError(
            "Say what to set, like `set down_stabilization=2m max_step=4`.", "autoscale set"
        )
    options: list[tuple[str, str]] = []
    for word in words:
        key, _, value = word.partition("=")
        key, value = key.lower(), value.lower()
        if key not in AUTOSCALE_SET_KEYS or not value:
            raise CommandError(
                f"{shown(word)} is not a setting: use down_stabilization=2m or max_step=4 "
                "(`=default` to drop chat's value).",
                "autoscale set",
            )
        if any(k == key for k, _ in options):
            raise CommandError(f"{code(key)} is given twice.", "autoscale set")
        fits = value == "default" or (
            _SET_DURATION_RE.match(value)
            if key == "down_stabilization"
            else ascii_digits(value) and 1 <= int(value) <= MAX_QUANTITY
        )
        if not fits:
            what = (
                "a duration like 2m or 90s"
                if key == "down_stabilization"
                else f"a whole number from 1 to {MAX_QUANTITY}"
            )
            raise CommandError(f"{shown(word)}: {key} must be {what}.", "autoscale set")
        options.append((key, value))
    return Command("autoscale", app=app, mode="set", options=tuple(options))


def _parse_autoscale_schedule(app: str | None, words: list[str]) -> Command:
    """`schedule add mon-fri 08:00-18:00 min=3 [max=N] [tz=Europe/Paris]`, `schedule list`,
    `schedule remove N` (N as `schedule list` numbers them)."""
    action = words[0].lower() if words else ""
    if action == "list" and len(words) == 1:
        return Command("autoscale", app=app, mode="schedule", topic="list")
    if action == "remove" and len(words) == 2 and ascii_digits(words[1]) and int(words[1]) > 0:
        return Command("autoscale", app=app, mode="schedule", topic="remove", limit=int(words[1]))
    usage = "Say `schedule add mon-fri 08:00-18:00 min=3`, `schedule list` or `schedule remove N`."
    if action == "remove" and len(words) == 2 and ascii_digits(words[1]):
        raise CommandError(
            "Windows are numbered from 1, as `schedule list` shows.", "autoscale schedule"
        )
    if action != "add" or len(words) < 4:
        raise CommandError(usage, "autoscale schedule")
    # The replies write a window with en dashes (`Mon–Fri 08:00–18:00`), and smart
    # punctuation curls a typed `-`: either, copied back, is the range it shows.
    days = words[1].lower().translate(_RANGE_DASHES)
    clocks = _CLOCK_RANGE_RE.match(words[2].translate(_RANGE_DASHES))
    if clocks is None:
        raise CommandError(
            f"{shown(words[2])} is not a time range like 08:00-18:00.", "autoscale schedule"
        )
    options = [("days", days), ("start", clocks[1]), ("end", clocks[2])]
    for word in words[3:]:
        key, _, value = word.partition("=")
        key = key.lower()
        count = key in ("min", "max") and ascii_digits(value) and int(value) <= MAX_QUANTITY
        if (count or (key == "tz" and value)) and any(k == key for k, _ in options):
            raise CommandError(f"{code(key)} is given twice.", "autoscale schedule")
        if count or (key == "tz" and value):
            options.append((key, value))
        else:
            raise CommandError(
                f"{shown(word)} is not min=N, max=N or tz=Area/City. {usage}", "autoscale schedule"
            )
    if not any(k in ("min", "max") for k, _ in options):
        raise CommandError("A schedule window sets min=N, max=N or both.", "autoscale schedule")
    if _a_bound_is_zero(options):
        raise CommandError(_web_zero(app), "autoscale schedule")
    return Command("autoscale", app=app, mode="schedule", topic="add", options=tuple(options))


def _parse_pin(args: list[str], app: str | None) -> Command:
    _app_last(args, app, "pin", len(args) == 4 and bool(_CHANGE_RE.match(args[0])))
    app, rest = _positional_app(args, app, "pin")
    if rest and rest[0].lower() == "off":
        if len(rest) > 1:
            raise _too_many(rest[1], "pin")
        return Command("pin", app=app, mode="off")
    if len(rest) > 3 and rest[1].lower() == "for":
        # `for 2 hours`: as metrics, chart and simulate read a span in two words.
        _span_in_two_words("pin", [app.lower(), *rest[:2]], rest[2:], "mhd")
        raise _too_many(rest[3], "pin")
    if len(rest) == 3 and rest[1].lower() != "for":
        raise CommandError(
            f"{shown(rest[1])} is not `for`: write the count, `for` and how long, like "
            "`web=5 for 2h`.",
            "pin",
        )
    if len(rest) != 3:
        raise CommandError("Write the count and how long, like `web=5 for 2h`.", "pin")
    match = _CHANGE_RE.match(rest[0])
    if match is None or match["op"] != "=" or match["size"]:
        raise CommandError(f"{shown(rest[0])} is not a pin: write TYPE=N, like web=5.", "pin")
    change = _change(match, "pin")
    if change.process_type != "web":
        raise CommandError("The autoscaler scales `web` only, so only `web` can be pinned.", "pin")
    if change.amount == 0:
        raise CommandError(_web_zero(app, "pinned"), "pin")
    duration = _DURATION_RE.match(rest[2])
    minutes = 0
    if duration:
        minutes = int(duration[1]) * {"m": 1, "h": 60, "d": 1440}[duration[2].lower()]
    if not 1 <= minutes <= PIN_MAX_MINUTES:
        raise CommandError(
            f"{shown(rest[2])} is not a duration up to 7d: write 90m, 2h or 1d.", "pin"
        )
    return Command("pin", app=app, changes=(change,), limit=minutes)


def _parse_releases(args: list[str], app: str | None, verb: str = "releases") -> Command:
    """`releases` or `builds`: an app, then how many to list."""
    app, rest = _positional_app(args, app, verb, most=1)
    count = rest[0] if rest else None
    if count is None:
        return Command(verb, app=app, limit=RELEASES_DEFAULT)
    if not ascii_digits(count) or not 1 <= int(count) <= RELEASES_MAX:
        _app_second(app, count, verb)
        # A word that is no number (`abc`) is named; a number out of range (0, -1) is not.
        no_number = "" if _NEGATIVE_RE.match(count) or ascii_digits(count) else count
        said = f"{shown(no_number)} is not a number. Ask" if no_number else "Ask"
        # Said before the app, so its platform, is known: Beanstalk's are application versions.
        what = "releases or application versions" if verb == "releases" else verb
        raise CommandError(f"{said} for 1 to {RELEASES_MAX} {what}.", verb)
    return Command(verb, app=app, limit=int(count))


def _parse_builds(args: list[str], app: str | None) -> Command:
    return _parse_releases(args, app, "builds")


def _parse_rollback(args: list[str], app: str | None) -> Command:
    _app_last(args, app, "rollback", _fits_no_app(args, _VERSION_RE))
    app, rest = _positional_app(args, app, "rollback", most=1)
    version = rest[0] if rest else None
    if version is not None and len(version) > LABEL_MAX:
        raise CommandError(_too_long(version, "a release or version label"), "rollback")
    if version is not None and not _VERSION_RE.match(version):
        raise CommandError(
            f"{shown(version)} is not a release: write it like v41 (Heroku) or the version "
            "label (Beanstalk).",
            "rollback",
        )
    return Command("rollback", app=app, target=version)


def _parse_maintenance(args: list[str], app: str | None) -> Command:
    if app is None and len(args) == 2 and args[0].lower() in ("on", "off"):
        raise _app_first("maintenance", args[1], [args[0].lower()])
    app, rest = _positional_app(args, app, "maintenance")
    if not rest:
        # Whether it is on now is what someone typing no setting may want to know.
        raise CommandError(
            f"Say `on` or `off`; `/deploy status {app}` shows whether it is on now.", "maintenance"
        )
    _keyword(rest[0], ("on", "off"), "a maintenance setting", "maintenance")
    if len(rest) > 1:
        raise _too_many(rest[1], "maintenance")
    return Command("maintenance", app=app, mode=rest[0].lower())


def _parse_config(args: list[str], app: str | None) -> Command:
    mode = args[0].lower() if args and args[0].lower() in CONFIG_ACTIONS else None
    if mode is None:
        if app is None and len(args) > 1 and args[1].lower() in CONFIG_ACTIONS:
            meant = ["/deploy", *_as_typed("config", args)]
            raise CommandError(f"Put {code(args[1].lower())} first: {_rewrite(meant)}.", "config")
        # Only names are echoed from here on: a word left over may be KEY=secret.
        shown_args = _masked(args)
        if app is None and len(args) > 1:
            # `config K=v demo`, as `heroku config:set` takes it: `set` left out.
            _refuse_set_left_out(args[:-1], args[-1])
        if len(args) > (0 if app else 1) and args[0].lower() in _CONFIG_READS:
            # `config get KEY demo`: near `set`, which it had been offered, but a read.
            listed = app or _app_name(shown_args[-1], "config", None)
            raise CommandError(
                f"{shown(args[0])} is not a config action: `/deploy config {listed}` lists the "
                "vars, with their values if you may change them.",
                "config",
            )
        more = len(args) > (0 if app else 1)
        if more:
            # `config sett KEY=v demo`: a mistyped action, which would pass for the app and
            # leave the words after it blamed.
            _config_action(shown_args[0], near_only=True)
        named, pairs = (app, args) if app else (args[0] if args else "", args[1:])
        # `config demo K=v`, `config -a demo K=v`: `set` left out with the app first.
        _refuse_set_left_out(pairs, named)
        if more:
            # `config frob demo`: more than the app, so the first word is in the action's
            # place, near none or not ("`demo` is one word too many" had blamed the app).
            try:
                _config_action(shown_args[0])
            except CommandError as error:
                if app is None:  # `config demo frob`: the word after the app, if it is one
                    error.if_app = (args[0], _after_the_app(args[0], shown_args[1]))
                raise
        app, _ = _positional_app(shown_args, app, "config", most=0)
        return Command("config", app=app)
    words = args[1:]
    if app is None:
        if len(words) < 2:
            raise CommandError(_half_of_set(mode, words), "config")
        # `config set demo K=v`, `config unset demo LOG_LEVEL`: no app last, one first. (A
        # name that could be an app, `config unset demo K`, is asked once `k` is no app.)
        no_app_last = "=" in words[-1] if mode == "set" else not _APP_RE.match(words[-1])
        if no_app_last and _APP_RE.match(words[0]):
            meant = ["/deploy", "config", mode, *_masked(words[1:]), words[0]]
            raise CommandError(f"Put the app last: {_rewrite(meant)}.", "config")
        if no_app_last and mode == "set":
            # `config set A=v demo B=1`: a word without `=` may be the rest of a value, so
            # only the variables are written back, never it.
            given = _masked([word for word in words if "=" in word])
            meant = ["/deploy", "config", "set", *given, "APP"]
            said = "Say which app" if len(given) == len(words) else "The app goes last"
            raise CommandError(f"{said}, after the variables: {_rewrite(meant)}.", "config")
        app, words = _app_name(_masked(words[-1:])[0], "config", None), words[:-1]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, equals, value = word.partition("=")
        if mode == "set" and not equals and pairs:
            # `config set K=two words demo`: `words` may be the rest of a secret.
            raise CommandError(_set_meant(words, app), "config")
        if mode == "set" and not equals:
            raise CommandError(f"{shown(key)} needs a value: write KEY=VALUE.", "config")
        if mode == "unset" and equals:
            raise CommandError("`config unset` takes names only, without `=`.", "config")
        if not config_vars.NAME_RE.fullmatch(key):
            # Taken by no platform; the app's own rule comes once the app is known.
            raise CommandError(config_vars.not_a_name(key), "config")
        if any(key == seen for seen, _ in pairs):
            raise CommandError(f"{code(key)} is given twice.", "config")
        pairs.append((key, value))
    if not pairs:
        raise CommandError("Say which variable.", "config")
    return Command("config", app=app, mode=mode, options=tuple(pairs))


def _after_the_app(app: str, word: str) -> CommandError:
    """`config demo frob`, once `demo` names an app: `frob` is the word wrong."""
    return CommandError(
        f"{shown(word)} after the app is one word too many: "
        f"{_rewrite(['/deploy', 'config', app])} lists the vars, and `set` or `unset` goes "
        "before the app.",
        "config",
    )


def _config_action(word: str, near_only: bool = False) -> None:
    _keyword(
        word,
        CONFIG_ACTIONS,
        "a config action",
        "config",
        near_only=near_only,
        also=", or only the app to list the vars",
    )


def _half_of_set(mode: str, words: list[str]) -> str:
    """`config set K=v` without the app, or `config set demo` without a var: the half left
    out. `config unset` takes names only: one that cannot be an app's (`LOG_LEVEL`) is the
    var; a lowercase one that can (`demo`) the app, var names being written in capitals;
    `config unset KEY` may be either."""
    only = words[0] if words else ""
    var = "KEY=VALUE" if mode == "set" else "KEY"
    if mode == "set" and "=" in only:
        return f"Say which app: {_rewrite(['/deploy', 'config', 'set', *_masked(words), 'APP'])}."
    if mode == "unset" and config_vars.NAME_RE.fullmatch(only) and not _APP_RE.match(only):
        return f"Say which app: {_rewrite(['/deploy', 'config', 'unset', only, 'APP'])}."
    lowercase = only == only.lower() and not only.isdigit()
    if _APP_RE.match(only) and (mode == "set" or lowercase):
        return f"Say which variable: {_rewrite(['/deploy', 'config', mode, var, only])}."
    return "Say which variable and which app."


def _refuse_set_left_out(words: list[str], named: str) -> None:
    """`config` with KEY=VALUE words and an app, either side of them, but no `set`: the
    command meant, its values masked (`_set_meant`)."""
    if words and "=" in words[0] and _APP_RE.match(named):
        raise CommandError(_set_meant(words, named), "config")


def _set_meant(words: list[str], app: str) -> str:
    """`config set` of the KEY=VALUE words among `words` for `app`, values masked. A word
    without `=` after one is read as the rest of a value with spaces, never shown: it may be
    part of a secret."""
    given = [word for word in words if "=" in word]
    said = f"Did you mean {_rewrite(['config', 'set', *_masked(given), app])}?"
    if len(given) < len(words):
        # The var whose value ran on: the KEY=VALUE just before the first word without `=`
        # (callers start `words` with one).
        first = next(i for i, word in enumerate(words) if "=" not in word)
        quoted = words[first - 1].partition("=")[0] + '="…"'
        said += f" A value with spaces goes in quotes: {code(quoted)}."
    return said


def _masked(words: list[str]) -> list[str]:
    """Config words echoed back: `KEY=…`, never a value."""
    return [w.partition("=")[0] + ("=…" if "=" in w else "") for w in words]


def _as_typed(verb: str, args: list[str]) -> list[str]:
    """`verb` and its words as a suggestion shows them: `config`'s with values masked, and
    its action before the app where the app came first (`config demo set K=v`)."""
    if verb != "config":
        return [verb, *args]
    if len(args) > 1 and args[1].lower() in CONFIG_ACTIONS:
        return ["config", args[1].lower(), *_masked(args[2:]), args[0]]
    return ["config", *_masked(args)]


def _keyword(
    word: str,
    keywords: tuple[str, ...],
    what: str,
    verb: str,
    near_only: bool = False,
    also: str = "",
) -> None:
    """Refuse `word`, typed where one of `keywords` goes, naming it and what to type
    instead. With `near_only`, only a near miss (`sett`) is refused: the caller then
    reads the word another way (as the app)."""
    if word.lower() in keywords:
        return
    near = _meant(word, keywords)
    if near_only and not near:
        return
    meant = f"did you mean {code(near[0])}? Use " if near else "use "
    raise CommandError(f"{shown(word)} is not {what}: {meant}{_or(keywords)}{also}.", verb)


# What other tools call a mode or setting that is spelt otherwise here, and no spelling is
# near enough for `closest` to find (`autoscale demo enable`, `maintenance demo disable`).
_OTHER_SETTINGS = {"enable": "on", "enabled": "on", "disable": "off", "disabled": "off"}


def _meant(word: str, keywords: tuple[str, ...]) -> list[str]:
    """The keyword `word` most likely stands for: a near spelling, or its other name."""
    other = _OTHER_SETTINGS.get(word.lower())
    return [other] if other in keywords else closest(word, keywords, limit=1)


def _or(words: tuple[str, ...]) -> str:
    quoted = [code(w) for w in words]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def _parse_lock(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "lock")
    reason = " ".join(rest).strip()
    if not reason:
        example = _rewrite(["/deploy", "lock", app, "fixing", "the", "checkout", "bug"])
        raise CommandError(f"Say why, so others know: {example}.", "lock")
    return Command("lock", app=app, reason=clip(reason, LOCK_REASON_MAX))


def _lock_as_typed(text: str) -> Command | None:
    """`lock APP REASON…`: the reason is prose, so an apostrophe (`don't ship`) or a dash
    (`hotfix - do not ship`) is part of it, not a quote to match or an option; quotes
    around it (`lock APP "the reason"`) are taken off as before. A word that is an option
    everywhere else (`-a APP`, `--app APP`, `--force`) is one here too. None for any other
    verb."""
    words = text.split(None, 1)
    if not words or words[0].lower() != "lock":
        return None
    try:
        args = _split(words[1] if len(words) > 1 else "")
    except ValueError:
        args = words[1].split()  # an apostrophe in the prose, not a quote
    args = [_option_dashes(word) for word in args]  # `—force`, `—a`: as every verb reads them
    args, _ = _take_force_option(args, "lock")
    args, app, ahead = _take_app_option(args, "lock", prose=True)
    _app_before_option("lock", args, app, ahead)
    return _parse_lock(args, app)


def _reads_back(typed: str, lock: Command) -> bool:
    """Whether `typed`, unquoted, parses as `lock` (no option-like word or quote in it)."""
    try:
        return _lock_as_typed(typed) == replace(lock, force=None)
    except CommandError:
        return False


def _parse_unlock(args: list[str], app: str | None) -> Command:
    app, _ = _positional_app(args, app, "unlock", most=0)
    return Command("unlock", app=app)


def _too_long(word: str, what: str) -> str:
    # Its characters may all be fine: "not a git ref" would blame what is not wrong.
    return f"{shown(word)} is {len(word):,} characters long; {what} has at most {LABEL_MAX}."


def _parse_ship(args: list[str], app: str | None) -> Command:
    _app_last(args, app, "ship", _fits_no_app(args, _REF_RE))
    app, rest = _positional_app(args, app, "ship", most=1)
    ref = rest[0] if rest else None
    if ref is not None and len(ref) > LABEL_MAX:
        raise CommandError(_too_long(ref, "a git ref or version label"), "ship")
    if ref is not None and (not _REF_RE.match(ref) or _NO_REF.search(ref)):
        raise CommandError(
            f"{shown(ref)} is not a git ref or version label: write a branch, tag or commit, "
            "like `main`, `v1.4.2` or `3f2c1a9`.",
            "ship",
        )
    return Command("ship", app=app, target=ref)


def _parse_promote(args: list[str], app: str | None) -> Command:
    app, _ = _positional_app(args, app, "promote", most=0)
    return Command("promote", app=app)


def _parse_swap(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "swap", most=1)
    if not rest:
        raise CommandError("Name the two environments to swap.", "swap")
    other = _app_name(rest[0], "swap", None)
    if other == app:
        raise CommandError("Name two different environments.", "swap")
    return Command("swap", app=app, target=other)


def _take_run_force(words: list[str]) -> tuple[list[str], str | None]:
    """`run`'s `--force "reason"`: right after the verb or the app, or as the last two
    words; anywhere else (or followed by an option) `--force` is the command's own."""
    for at in (0, 1, len(words) - 2):
        if 0 <= at < len(words) - 1 and words[at] == "--force":
            reason = words[at + 1].strip()
            if reason and not reason.startswith("-"):
                return words[:at] + words[at + 2 :], reason[:200]
    return words, None


def _take_run_app(words: list[str]) -> tuple[list[str], str | None]:
    """`run`'s `-a APP`, before the command only: after it, `-a` is the command's own."""
    first = words[0] if words else ""
    if first.startswith("--app="):
        return words[1:], _app_name(first.split("=", 1)[1], "run", None)
    if first in ("-a", "--app"):
        if len(words) < 2:
            raise CommandError(f"`{first}` needs an app name after it.", "run")
        return words[2:], _app_name(words[1], "run", None)
    return words, None


def _parse_run(args: list[str], app: str | None) -> Command:
    app, rest = _positional_app(args, app, "run")
    if not "".join(rest).strip():  # none, or only empty quotes
        raise CommandError("Say which command to run.", "run")
    typed = " ".join(rest)
    if len(typed) > RUN_COMMAND_MAX:
        raise CommandError(
            f"A command to run is at most {RUN_COMMAND_MAX} characters, as the registry's "
            f"`run:` allows; {shown(typed)} is {len(typed):,}.",
            "run",
        )
    return Command("run", app=app, reason=typed)


def _parse_logs(args: list[str], app: str | None) -> Command:
    shape = len(args) == 2 or (len(args) == 3 and args[1].isdigit())  # DYNO [N] APP
    _app_last(args, app, "logs", shape and bool(_DYNO_RE.match(args[0])))
    app, rest = _positional_app(args, app, "logs")
    dyno, lines = None, None
    for at, word in enumerate(rest):
        if word.lower() in ("line", "lines") and at and ascii_digits(rest[at - 1]):
            # `logs demo 5 lines`: `lines` had been read as a process type the app lacks.
            kept = [w for i, w in enumerate(rest) if i != at]
            meant = shown(" ".join(("/deploy logs", app.lower(), *kept)), limit=80)
            raise CommandError(f"Write the number of lines alone: {meant}.", "logs")
        if (ascii_digits(word) or _NEGATIVE_RE.match(word)) and lines is None:
            lines = int(word)
            if not 1 <= lines <= LOGS_MAX:
                raise CommandError(f"Ask for 1 to {LOGS_MAX} lines.", "logs")
        elif dyno is None and (_DYNO_RE.match(word) or _PTYPE_RE.match(word)):
            dyno = word.lower()
        elif _DYNO_RE.match(word) or _PTYPE_RE.match(word):
            raise CommandError(
                f"{shown(word)} is one word too many: name one dyno or process type (web.1 or "
                "web) and at most one number of lines.",
                "logs",
            )
        elif ascii_digits(word):
            raise CommandError(f"{shown(word)} is a second number of lines.", "logs")
        else:
            raise CommandError(f"{shown(word)} is neither a dyno nor a number.", "logs")
    return Command("logs", app=app, target=dyno, limit=lines or LOGS_DEFAULT)


def _parse_whoami(args: list[str], app: str | None) -> Command:
    if args or app is not None:
        raise CommandError("`whoami` takes no other words.", "whoami")
    return Command("whoami")


def _parse_help(args: list[str], app: str | None) -> Command:
    if app is not None:
        raise CommandError(
            "`help` takes no app: `/deploy help VERB` shows one verb's help.", "help"
        )
    if len(args) > 1:
        raise CommandError("Ask for help on one verb at most.", "help")
    if not args:
        return Command("help")
    topic = args[0].lower()
    if topic not in VERBS:
        hint = suggest(topic, VERBS)
        meant = f"Did you mean {hint}?" if hint else f"Try one of: {', '.join(VERBS)}."
        raise CommandError(f"{shown(args[0])} is not a command I know. {meant}", "help")
    return Command("help", topic=topic)


def _positional_app(
    args: list[str], app: str | None, verb: str, most: int | None = None
) -> tuple[str, list[str]]:
    """The app (the first word, unless `-a` gave it) and the words after it; with `most`,
    more words than that are refused by naming the first one past it. When `-a` also gave
    the app, `parse` tells an app typed in its place apart from a word too many."""
    if app is None:
        if not args:
            raise CommandError("Say which app. `/deploy apps` lists them.", verb)
        app, args = _app_name(args[0], verb, None), args[1:]
    if most is not None and len(args) > most:
        raise _too_many(args[most], verb)
    return app, args


def _too_many(word: str, verb: str) -> CommandError:
    return CommandError(f"{shown(word)} is one word too many.", verb)


def _app_second(app: str, word: str, verb: str) -> None:
    """`releases 5 demo`: a number where the app goes and an app after it. Said as such,
    instead of "`demo` is not a number"; called once the words failed as given, so an
    app whose alias is a number still works."""
    if _AMOUNT_RE.match(app) and _APP_RE.match(word) and not _AMOUNT_RE.match(word):
        raise _app_first(verb, word, [app])


def _app_last(args: list[str], app: str | None, verb: str, first_fits: bool) -> None:
    """`pin web=5 for 2h demo`: the words after the app typed first and the app last, when
    the first word (`first_fits`) can only be one of those words. Said as such, instead of
    "`web=5` is not a valid app name"."""
    if app is None and first_fits and len(args) > 1:
        last = args[-1]
        if _APP_RE.match(last) and not last.isdigit():
            raise _app_first(verb, last, args[:-1])


def _fits_no_app(args: list[str], pattern: re.Pattern[str]) -> bool:
    """`ship v1.4.2 demo`: two words, the first what follows the app (`pattern`) and no
    app name, so it can only have been typed before the app."""
    return len(args) == 2 and bool(pattern.match(args[0])) and not _APP_RE.match(args[0])


def _app_first(verb: str, app: str, rest: list[str]) -> CommandError:
    """The command as it would be typed with `app` where the usage puts it."""
    return CommandError(f"Put the app first: {_rewrite(['/deploy', verb, app, *rest])}.", verb)


_TYPED_LAST = ("logs", "restart", "rollback", "ship")


def app_typed_last(command: Command) -> tuple[str, str] | None:
    """`logs web demo`, `logs 50 demo`, `restart web demo`, `rollback v2 demo`, `ship main
    demo`, `run python manage.py migrate demo`, `lock fixing it demo`, `config unset demo
    K`: they parse, as the logs of apps called `web` and `50`, a restart of `web`, config of
    an app `K` and so on, so only the caller, once no app goes by that name, can ask this:
    if another word could be the app, that word and the answer saying where to put it (the
    caller checks it names an app); otherwise None."""
    typed, last = command.app or "", command.target or ""
    if command.verb == "config" and command.mode == "unset":
        # `config unset demo K`: the app typed first, and the last name read as the app.
        keys = [key for key, _ in command.options]
        if not _APP_RE.match(keys[0]):
            return None
        meant = ["/deploy", "config", "unset", *keys[1:], typed, keys[0]]
        return keys[0], CommandError(f"Put the app last: {_rewrite(meant)}.", "config").message
    if command.verb in ("run", "lock"):
        # `run python manage.py migrate demo`, `lock fixing the bug demo`: the command or the
        # reason first, its last word the app.
        *words, last = (command.reason or "").split() or [""]
        if not _APP_RE.match(last) or last.isdigit():
            return None
        return last, _app_first(command.verb, last, [typed, *words]).message
    if command.verb not in _TYPED_LAST or not _APP_RE.match(last) or last.isdigit():
        return None
    if command.verb in ("rollback", "ship"):
        rest = [typed]  # `rollback v2 demo`, `ship main demo`
    elif command.verb == "restart":
        if not _PTYPE_RE.match(typed):
            return None
        rest = [typed.lower()]
    elif ascii_digits(typed):
        if command.limit != LOGS_DEFAULT:
            return None  # a number of lines typed as well: two numbers, no one order
        rest = [typed]
    elif _PTYPE_RE.match(typed):
        rest = [typed.lower()]
        if command.limit != LOGS_DEFAULT:
            rest.append(str(command.limit))
    else:
        return None
    return last, _app_first(command.verb, last, rest).message


def with_usage_if_a_number(command: Command, said: str) -> str:
    """`said` (no app by the name typed), with the verb's usage line when that name is a
    number: `logs 50 demo 200` has no one order to suggest (`app_typed_last`), and the
    usage shows where the app goes."""
    typed = command.app or ""
    if ascii_digits(typed):
        return CommandError(said, command.verb).message
    return said


def _one_optional(rest: list[str], verb: str) -> str | None:
    if len(rest) > 1:
        raise _too_many(rest[1], verb)
    return rest[0] if rest else None


_PARSERS = {
    "scale": _parse_scale,
    "restart": _parse_restart,
    "kill": _parse_kill,
    "status": _parse_status,
    "metrics": _parse_metrics,
    "drain": _parse_drain,
    "autoscale": _parse_autoscale,
    "watch": _parse_watch,
    "simulate": _parse_simulate,
    "pin": _parse_pin,
    "apps": _parse_apps,
    "history": _parse_history,
    "alerts": _parse_alerts,
    "chart": _parse_chart,
    "cost": _parse_cost,
    "about": _parse_about,
    "releases": _parse_releases,
    "builds": _parse_builds,
    "rollback": _parse_rollback,
    "maintenance": _parse_maintenance,
    "config": _parse_config,
    "lock": _parse_lock,
    "unlock": _parse_unlock,
    "ship": _parse_ship,
    "promote": _parse_promote,
    "swap": _parse_swap,
    "run": _parse_run,
    "logs": _parse_logs,
    "whoami": _parse_whoami,
    "help": _parse_help,
}


def plan_scale(
    changes: tuple[Change, ...],
    current: Mapping[str, tuple[int, str]],
    beanstalk: str | None = None,
    app: str | None = None,
) -> dict[str, tuple[int, str | None]]:
    """Resolve `changes` against the current formation into absolute targets.

    `current` maps process type → (quantity, size); `beanstalk` is the app's alias when it
    is a Beanstalk environment, `app` the name an error names. Returns type → (quantity,
    size or None to keep the size).
    Raises `CommandError` for a type the app does not have or a result below zero.
    """
    targets: dict[str, tuple[int, str | None]] = {}
    for change in changes:
        if change.process_type not in current:
            raise _no_such_type(change.process_type, current, "scale", beanstalk, app)
        quantity = current[change.process_type][0]
        if change.op == "=":
            quantity = change.amount
        elif change.op == "+":
            quantity += change.amount
        else:
            quantity -= change.amount
        if quantity < 0:
            raise CommandError(
                f"{code(change)} would leave {quantity} {code(change.process_type)} dynos.", "scale"
            )
        if quantity > MAX_QUANTITY:
            raise CommandError(f"{code(change)} asks for more than {MAX_QUANTITY} dynos.", "scale")
        targets[change.process_type] = (quantity, change.size)
    return targets


def plan_kill(
    current: Mapping[str, tuple[int, str]],
    process_type: str | None,
    beanstalk: str | None = None,
    app: str | None = None,
) -> dict[str, tuple[int, str | None]]:
    """Targets that scale every process type (or the one given) to zero."""
    if process_type is not None:
        if process_type not in current:
            raise _no_such_type(process_type, current, "kill", beanstalk, app)
        return {process_type: (0, None)}
    return {ptype: (0, None) for ptype in current}


def _no_such_type(
    process_type: str,
    current: Mapping[str, tuple[int, str]],
    verb: str,
    beanstalk: str | None,
    app: str | None = None,
) -> CommandError:
    if beanstalk is not None:
        # "has no `worker` process type" read as if the environment were missing one.
        return CommandError(
            f"{code(beanstalk)} is an Elastic Beanstalk environment: it scales as `web` (its "
            f"instances); {code(process_type)} has no meaning there.",
            verb,
        )
    return CommandError(not_on_app(app, process_type, sorted(current)), verb)


def changing(
    current: Mapping[str, tuple[int, str]], targets: Mapping[str, tuple[int, str | None]]
) -> dict[str, tuple[int, str | None]]:
    """The targets that change something: a count, or a size other than the one running
    (sizes in any case). A kill targets every type, those already at zero too."""
    found = {}
    for ptype, (qty, size) in targets.items():
        quantity, running = current.get(ptype, (0, ""))
        if qty != quantity or (size is not None and size.lower() != running.lower()):
            found[ptype] = (qty, size)
    return found


def stops_dynos(
    current: Mapping[str, tuple[int, str]], targets: Mapping[str, tuple[int, str | None]]
) -> bool:
    """True when the targets take a running process type to zero: that is a kill."""
    return any(
        qty == 0 and current.get(ptype, (0, ""))[0] > 0 for ptype, (qty, _) in targets.items()
    )


def help_text(topic: str | None = None) -> str:
    """Help for every verb, or for one; Slack mrkdwn."""
    if topic is not None:
        examples = "\n".join(f"• `/deploy {example}`" for example in EXAMPLES[topic])
        forced = f"\n{_FORCE_HELP}." if _takes_force(topic) else ""
        return f"*/deploy {topic}*: {SUMMARY[topic]}.\nUsage: `{USAGE[topic]}`\n{examples}{forced}"
    lines = [f"• `{USAGE[verb]}`: {BRIEF[verb]}" for verb in VERBS]
    exempt = [verb for verb in VERBS if verb in MUTATING_VERBS and not _takes_force(verb)]
    return (
        "*deploybot* scales, restarts, deploys and inspects your apps.\n"
        + "\n".join(lines)
        + "\nThe app goes where each line shows APP, or `-a APP` names it; then a VERSION, "
        "REF or REASON goes after the option (`rollback -a myapp v41`). "
        "`kill`, `rollback`, `config set`, `config unset`, `maintenance on` and anything that "
        "scales a process type to 0 ask you to confirm first. "
        f"{_FORCE_HELP} on any change but {listed(exempt[:-1])} and {code(exempt[-1])}."
    )


# What a verb's help says of `--force`, when the verb takes it (`_take_force_option`).
_FORCE_HELP = 'An admin passes a freeze window with `--force "reason"`'


def _takes_force(verb: str) -> bool:
    return verb in MUTATING_VERBS and verb not in FREEZE_EXEMPT_VERBS
