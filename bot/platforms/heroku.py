"""Heroku Platform API client: heroku3 over one configured `requests.Session`.

The session carries the timeouts, the retries (429/502/503/504 with backoff, honouring
`Retry-After`) and `trust_env=False`, so a stray `.netrc` or proxy never changes whose key
is used. heroku3 has no call for restart-all or restart-by-type and its formation helpers
send a body the schema forbids (`size` instead of `dyno_size`), so every call goes through
heroku3's `_http_resource` with a body written here. Kill is a scale to zero.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from threading import Event, Lock
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from heroku3.api import Heroku, RateLimitExceeded
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from bot.http_bodies import UNREADABLE, BodyTooLarge, fetch_tail, read_within
from bot.platforms.base import (
    AppStatus,
    Build,
    Dyno,
    Formation,
    NoSuchApp,
    PlatformError,
    Promotion,
    ReadFailed,
    Release,
    Settled,
    Targets,
    Throttled,
    lost_answer,
)
from bot.platforms.together import call_ended, check_call, end_call, read_together
from bot.store.throttles import Throttles
from policies.commands import is_dyno_name, is_release_number, release_number
from policies.names import not_on_app
from policies.redact import mask
from policies.sizes import unit_of
from policies.slack_text import clip, code, escape

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_KEY = "HEROKU_API_KEY"  # the config var holding the key of apps that name none

# What `/deploy watch` subscribes to: `dyno` (state changes, crashes among them) alerts,
# releases arm the deploy guard and formation changes tell the autoscaler about scaling
# done by hand. (`api:dyno` would be dynos created through the API: one-off runs.)
WEBHOOK_ENTITIES = ("dyno", "api:release", "api:formation")

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15.0
# A Retry-After longer than this is not waited for: the call fails at once and says when
# Heroku allows the next one, so no listener thread sleeps for minutes holding its slot.
MAX_RETRY_AFTER = 5.0
# After a 429 without Retry-After: Heroku refills an account's bucket at ~75 calls a minute.
DEFAULT_THROTTLE = timedelta(seconds=30)
# The longest throttle a 429 stores: an empty bucket is full again within the hour, so a
# longer Retry-After (a proxy's, a broken header) is not held to, where every command and
# the autoscaler had waited it out (six hours, urllib3's own cap).
MAX_THROTTLE = timedelta(hours=1)
REMAINING_MOST = 2**31 - 1  # a RateLimit-Remaining past this (the column's INTEGER) is none
PAGE_MAX = 1000  # the most items Heroku returns in one page
OUTPUT_TAIL = 20  # build output and run output lines shown in the thread
# How many of the newest releases `status` reads to find the current one past failed ones.
STATUS_RELEASES = 10
API_ANSWER_BYTES, API_ANSWER_SECONDS = 16 << 20, 60.0
RUN_LOG_LINES = 500
BUILD_POLL_SECONDS = 3.0
RUN_POLL_SECONDS = 3.0
# Heroku's pipeline stages, in promotion order.
STAGES = ("test", "review", "development", "staging", "production")
_EXIT = re.compile(r"heroku\[[\w.]+\]: Process exited with status (\d+)")


def _retry_after(response: Any) -> float:
    return _ShortRetry().get_retry_after(response) or 0.0


class _ShortRetry(Retry):
    """Retries with backoff, but never sleeps through a long Retry-After, and never sends a
    write again after a 5xx."""

    def get_retry_after(self, response: Any) -> float | None:
        # A Retry-After urllib3 cannot read ("2.5", "-5", a garbled date) is none: its
        # InvalidHeader, raised in the retry's sleep, had been told as an answer the bot
        # could not read, a refused change as one that may have been made.
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # A write answered 5xx may have been carried out. A POST sent again could make a
        # second release, build, promotion or one-off dyno; a PATCH or DELETE sent again
        # is harmless itself, but its own answer (a 429, a refusal, no connection) would
        # then be the one reported, as "nothing was done", of a change that was made, and
        # `scale web+1` asked again would add two. Answered 5xx, a write is a lost answer
        # and is read back. A 429 was refused before anything was done.
        if method.upper() != "GET" and status_code != 429:
            return False
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):  # type: ignore[no-untyped-def,override]
        if response is not None and response.status == 429:
            # One of several reads made at once (`status`): the others are stopped, so this
            # one asking again after the wait could not make the answer whole.
            end_call()
        if call_ended():
            # Give the response back as it is (raise_on_status is off): the caller decides.
            raise MaxRetryError(_pool, url, ResponseError("another read ended the call"))  # type: ignore[arg-type]
        if response is not None and _retry_after(response) > MAX_RETRY_AFTER:
            raise MaxRetryError(_pool, url, ResponseError("Retry-After is too long to wait"))  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        check_call()  # another read's answer may have ended the call during the wait


class _TooMany(Exception):
    """A 429 left after the retries: how long Heroku asked us to wait, in seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


def _raise_on_429(response: Any, *args: Any, **kwargs: Any) -> Any:
    # A session hook: heroku3 turns a 429 into RateLimitExceeded and drops the Retry-After.
    if response.status_code == 429:
        raise _TooMany(_retry_after(response))
    return response


class _TimeoutAdapter(HTTPAdapter):
    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (CONNECT_TIMEOUT, READ_TIMEOUT)
        return super().send(request, **kwargs)


def _read_within_limits(response: Any, *args: Any, **kwargs: Any) -> Any:
    # A session hook: requests runs it before reading the body, which it would otherwise
    # read whole, however large or slow. A page of 1,000 releases is about 1.5 MB.
    if kwargs.get("stream"):
        return response
    try:
        response._content = read_within(response.raw, API_ANSWER_BYTES, API_ANSWER_SECONDS)
    except (TimeoutError, ReadTimeoutError):
        response.close()
        raise requests.ReadTimeout("Heroku's answer did not arrive in time") from None
    except (BodyTooLarge, Urllib3Error) as error:
        response.close()
        raise requests.exceptions.ContentDecodingError(type(error).__name__) from None
    response._content_consumed = True
    return response


def make_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session with timeouts and retries on 429/502/503/504 (a write on 429 only)."""
    session = requests.Session()
    session.trust_env = False
    retry = _ShortRetry(
        total=retries,
        connect=retries,
        read=False,  # a timed-out PATCH may have landed: never resend it, raise the timeout
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=None,  # which methods are retried on which status: is_retry
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _TimeoutAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _Remaining:
    """`RateLimit-Remaining` as the answers tell it, kept for every thread that calls
    through one platform (a status's reads, the background jobs at once). heroku3 keeps
    the last answer's figure in one attribute, so a slower thread's answer to an earlier
    call could overwrite a newer, lower one. Answers to calls that overlapped may arrive
    in any order: the lowest figure among them is the newest (Heroku refills about 75
    calls a minute, not within one exchange). A call sent after the figure held arrived
    replaces it, lower or higher."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._value: int | None = None
        self._arrived = 0.0  # monotonic: when the answers behind `_value` arrived

    @property
    def value(self) -> int | None:
        return self._value

    def observe(self, value: int, sent: float, arrived: float) -> None:
        """An answer carrying `value` to a call sent at `sent` arrived at `arrived`."""
        with self._lock:
            if self._value is None or sent >= self._arrived:
                self._value, self._arrived = value, arrived
            else:
                self._value, self._arrived = min(self._value, value), max(self._arrived, arrived)


class HerokuPlatform:
    """`Platform` for Heroku apps, one API key, built without any network call."""

    name = "heroku"
    unit = unit_of(name)

    def __init__(
        self,
        api_key: str,
        api_url: str = "https://api.heroku.com",
        session: requests.Session | None = None,
        throttles: Throttles | None = None,
        account: str = DEFAULT_KEY,
    ) -> None:
        session = session or make_session()
        session.hooks["response"] += [_raise_on_429, _read_within_limits]
        self._client = Heroku(session=session)
        # Shared with every dyno through the database: a 429 seen by one stops them all.
        self._throttles = throttles
        self._account = account
        # Set the key directly: heroku3's authenticate() makes a verification request.
        self._client._session.auth = ("", api_key)
        self._client._heroku_url = api_url.rstrip("/")
        self._plain = make_session(retries=1)  # streams: no auth on this session
        self._remaining = _Remaining()
        # Stores the figure to `throttles` one thread at a time, each the figure as it is
        # then: two threads' writes could otherwise land in either order, an older one last.
        self._storing = Lock()

    @property
    def rate_limit_remaining(self) -> int | None:
        return self._remaining.value

    def formation(self, app: str) -> tuple[Formation, ...]:
        items = self._call("GET", app, ("apps", app, "formation"))
        return tuple(sorted(_read_each(items, _formation, app, "GET"), key=lambda f: f.type))

    def scale(self, app: str, targets: Targets) -> tuple[Formation, ...]:
        updates = []
        for process_type, (quantity, size) in sorted(targets.items()):
            update: dict[str, Any] = {"type": process_type, "quantity": quantity}
            if size:
                update["dyno_size"] = {"name": size}
            updates.append(update)
        items = self._call("PATCH", app, ("apps", app, "formation"), {"updates": updates})
        return tuple(sorted(_read_each(items, _formation, app, "PATCH"), key=lambda f: f.type))

    def restart(self, app: str, target: str | None) -> None:
        if target is None:
            path: tuple[str, ...] = ("apps", app, "dynos")
        elif is_dyno_name(target):  # `web.1`, or on Fir (no dot) `web-1234abcde-123ab`
            path = ("apps", app, "dynos", target)
        else:
            path = ("apps", app, "formations", target)
        try:
            self._call("DELETE", app, path)
        except NotFound as error:
            if target is None:
                raise
            raise self._not_there(app, target, error) from None

    def _not_there(self, app: str, target: str, error: NotFound) -> PlatformError:
        """Heroku found no `target` (a dyno, or a process type) on `app`: said with what the
        app has, read now, so the next try names one; Heroku's own words if that read fails."""
        said = self.missing(app, target)
        return error if said is None else PlatformError(said, app=app)

    def missing(self, app: str, target: str, alias: str | None = None) -> str | None:
        """Why `target` (a dyno `web.1`, or a process type `web`) is not on `app` (named
        `alias` when given), with what the app has, read now; None when it is there or that
        read fails."""
        dyno = is_dyno_name(target)
        try:
            have = (
                [d.name for d in self.dynos(app)] if dyno else [f.type for f in self.formation(app)]
            )
        except PlatformError:
            return None
        if target in have:
            return None
        return not_on_app(alias or app, target, have, "dyno" if dyno else "process type")

    def dynos(self, app: str) -> tuple[Dyno, ...]:
        """The app's dynos in one API call (`status` makes four)."""
        items = self._call("GET", app, ("apps", app, "dynos"))
        return tuple(sorted(_read_each(items, _dyno, app, "GET"), key=_dyno_order))

    def status(self, app: str) -> AppStatus:
        """Four reads, made at once: the formation, the dynos, the current release and the
        app itself (whether it is in maintenance mode). A failure is the first one's in that
        order, as when they were made one after another."""
        formation, dynos, listed, maintenance = read_together(
            (
                lambda: self.formation(app),
                lambda: self.dynos(app),
                lambda: self._call(
                    "GET",
                    app,
                    ("apps", app, "releases"),
                    range_=f"version ..; order=desc, max={STATUS_RELEASES};",
                ),
                lambda: self.maintenance(app),
            )
        )
        # The newest release may have failed (or still be pending) and never gone live: the
        # one Heroku marks current is what the app runs, else the newest that succeeded.
        releases = _read_each(listed, _release, app, "GET")
        current = (
            [r for r in releases if r.current]
            or [r for r in releases if r.status == "succeeded"]
            or releases
        )
        # Just shipped: the newest release runs its release command before it goes live.
        newest = releases[0] if releases else None
        pending = newest is not None and newest.status == "pending" and not newest.current
        return AppStatus(
            app=app,
            formation=formation,
            dynos=dynos,
            release=current[0] if current else None,
            maintenance=maintenance,
            pending=newest if pending and current[0] is not newest else None,
        )

    def releases(self, app: str, limit: int) -> tuple[Release, ...]:
        """The newest `limit` releases, newest first, following Heroku's `Next-Range` pages."""
        found: list[Release] = []
        range_: str | None = f"version ..; order=desc, max={min(limit, PAGE_MAX)};"
        while range_ is not None and len(found) < limit:
            response = self._response("GET", app, ("apps", app, "releases"), range_=range_)
            found += _read_each(_json(response, app, "GET"), _release, app, "GET")
            next_range = response.headers.get("Next-Range")
            range_ = next_range if response.status_code == 206 and next_range else None
        return tuple(found[:limit])

    def version(self, app: str, label: str) -> Release | None:
        """Release `label` (`v41` or `41`) however old (`releases` reads only the newest);
        None if the app has no release so numbered."""
        if not is_release_number(label):
            return None
        # `v002` is v2, as Heroku counts: its API reads the number, not the spelling.
        path = ("apps", app, "releases", str(release_number(label)))
        try:
            return _read_one(self._call("GET", app, path), _release, app, "GET")
        except NotFound:
            return None

    def rollback(self, app: str, release: Release) -> Release:
        """A new release with the code and config of `release` (Heroku's Rollback link)."""
        created = self._call("POST", app, ("apps", app, "releases"), {"release": release.id})
        return _read_one(created, _release, app, "POST")

    def app_names(self) -> tuple[str, ...]:
        """The names of the apps the key can see (the first thousand): a did-you-mean's."""
        items = self._call("GET", "", ("apps",), range_="name ..; max=1000;")
        return tuple(str(item["name"]) for item in items or () if item.get("name"))

    def maintenance(self, app: str) -> bool:
        return _read_one(self._call("GET", app, ("apps", app)), _maintenance, app, "GET")

    def set_maintenance(self, app: str, on: bool) -> bool:
        answer = self._call("PATCH", app, ("apps", app), {"maintenance": on})
        return _read_one(answer, _maintenance, app, "PATCH")

    def config_vars(self, app: str) -> dict[str, str]:
        return {
            str(k): str(v)
            for k, v in (self._call("GET", app, ("apps", app, "config-vars")) or {}).items()
        }

    def set_config(self, app: str, changes: dict[str, str | None]) -> None:
        """Set each key to its value, or unset it where the value is None."""
        self._call("PATCH", app, ("apps", app, "config-vars"), dict(changes))

    def build(self, app: str, url: str, version: str) -> Build:
        """Start a build from the tarball at `url` (`version` names it in the release)."""
        body = {"source_blob": {"url": url, "version": version}}
        item = self._call("POST", app, ("apps", app, "builds"), body)
        return Build(str(item["id"]), str(item.get("status", "pending")), version)

    def builds(self, app: str, limit: int = 5) -> tuple[Build, ...]:
        """The newest `limit` builds, newest first."""
        items = self._call(
            "GET", app, ("apps", app, "builds"), range_=f"started_at ..; order=desc, max={limit}"
        )
        return tuple(
            _build(item) for item in items or [] if isinstance(item, dict) and "id" in item
        )

    def build_output(self, build: Build) -> tuple[str, ...]:
        """The last lines of `build`'s output, as a ship's follow-up shows them."""
        return tuple(self._text(build.output_url)[-OUTPUT_TAIL:])

    def wait_for_build(
        self, app: str, build_id: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        """Poll the build until it ends; the tail of its output explains it either way. The
        summary names the app `alias`, as it was asked for, when given."""
        said = code(alias or app)
        item = self._wait(app, ("apps", app, "builds", build_id), timeout, stopping)
        if item is None:
            # Not failed: it may yet succeed, so no "Failed:" and the audit row unknown.
            return Settled(
                ok=False,
                summary=f"The build of {said} was still running when I stopped watching it: "
                f"check `/deploy builds {alias or app}` in a few minutes.",
                unknown=True,
            )
        tail = tuple(self._text(item.get("output_stream_url"))[-OUTPUT_TAIL:])
        version = code((item.get("source_blob") or {}).get("version") or "?")
        if item.get("status") != "succeeded":
            summary = f"The build of {version} for {said} failed."
            return Settled(ok=False, summary=summary, events=tail, output=True)
        release_id = (item.get("release") or {}).get("id")
        released = ""
        if release_id:
            phase = self._release_phase(
                app,
                str(release_id),
                timeout,
                stopping,
                said,
                lambda number: (
                    f"The build of {version} for {said} succeeded, but its release " + number
                ),
            )
            if isinstance(phase, Settled):
                return phase if phase.events else replace(phase, events=tail)
            released = " and released as " + phase
        return Settled(
            ok=True,
            summary=f"The build of {version} for {said} succeeded{released}.",
            events=tail,
            output=True,
        )

    def wait_for_release(
        self, app: str, release_id: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        """Wait for a release (a rollback's) to leave its release phase; the summary names
        the app `alias`, as it was asked for, when given."""
        said = code(alias or app)
        phase = self._release_phase(
            app,
            release_id,
            timeout,
            stopping,
            said,
            lambda number: f"The release {number} of {said}",
        )
        if isinstance(phase, Settled):
            return phase
        return Settled(ok=True, summary=f"The release {phase} of {said} is live.")

    def _release_phase(
        self,
        app: str,
        release_id: str,
        timeout: float,
        stopping: Event,
        said: str,
        what: Callable[[str], str],
    ) -> Settled | str:
        """The release's version (`v5`) once it went live, or how it did not: a release
        runs the release phase (`release:` in the Procfile) first, pending until then, and
        never goes live if that fails. `what` names the release in the summary, given its
        number."""
        path = ("apps", app, "releases", release_id)
        release = self._wait(app, path, timeout, stopping) or self._call("GET", app, path)
        number = code(f"v{release.get('version')}")
        if release.get("status") == "failed":
            output = tuple(self._text(release.get("output_stream_url"))[-OUTPUT_TAIL:])
            return Settled(
                ok=False,
                summary=f"{what(number)} failed in the release phase, so {said} "
                "still runs its last good release.",
                events=output,
                output=True,
            )
        if release.get("status") == "pending":
            return Settled(
                ok=False,
                summary=f"{what(number)} was still in the release phase when I "
                "stopped watching it.",
                output=True,
                unknown=True,
            )
        return number

    def log_lines(self, app: str, dyno: str | None, lines: int) -> list[str]:
        """The last `lines` log lines (of one dyno or process type), through a log session."""
        body: dict[str, Any] = {"lines": lines, "tail": False}
        if dyno:
            # The API limits a session to one dyno by `dyno_name` (`web.1`, or on Fir
            # `web-1234abcde-123ab`) and to a process type by `type`.
            body["dyno_name" if is_dyno_name(dyno) else "type"] = dyno
        session = self._call("POST", app, ("apps", app, "log-sessions"), body, reads=True)
        return self._text(session.get("logplex_url"))[-lines:]

    def run_detached(self, app: str, command: str) -> str:
        """Start `command` in a one-off dyno that nobody attaches to; returns its name."""
        body = {"command": command, "attach": False}
        return str(self._call("POST", app, ("apps", app, "dynos"), body)["name"])

    def wait_for_run(
        self, app: str, dyno: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        """Wait for the one-off dyno to exit; its log lines and exit status say how it went.
        The summary names the app `alias`, as it was asked for, when given."""
        said, one_off = code(alias or app), code(dyno)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(app, dyno, RUN_LOG_LINES)
            exits = [_EXIT.search(line) for line in lines]
            found = [m for m in exits if m]
            if found:
                status = int(found[-1].group(1))
                output = tuple(line for line in lines if f"app[{dyno}]" in line)[-OUTPUT_TAIL:]
                verdict = "succeeded" if status == 0 else "failed"
                return Settled(
                    ok=status == 0,
                    summary=f"{one_off} on {said} {verdict}: exit status {status}.",
                    events=output,
                    output=True,
                )
            if time.monotonic() >= deadline or stopping.wait(RUN_POLL_SECONDS):
                return Settled(
                    ok=False,
                    summary=f"{one_off} on {said} was still running when I stopped watching it.",
                    unknown=True,  # not failed: it may yet exit 0
                )

    def downstream(self, app: str) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        """(pipeline id, this app's id, its stage, ((id, name) of each next-stage app))."""
        coupling = self._call("GET", app, ("apps", app, "pipeline-couplings"))
        pipeline_id = str(coupling["pipeline"]["id"])
        stage = str(coupling["stage"])
        couplings = self._call("GET", app, ("pipelines", pipeline_id, "pipeline-couplings"))
        later = [s for s in STAGES[STAGES.index(stage) + 1 :]] if stage in STAGES else []
        for next_stage in later:
            ids = [str(c["app"]["id"]) for c in couplings if c["stage"] == next_stage]
            if ids:
                names = tuple((i, str(self._call("GET", app, ("apps", i))["name"])) for i in ids)
                return pipeline_id, str(coupling["app"]["id"]), stage, names
        return pipeline_id, str(coupling["app"]["id"]), stage, ()

    def promote(
        self, app: str, pipeline_id: str, source_id: str, targets: tuple[tuple[str, str], ...]
    ) -> tuple[Promotion, ...]:
        body = {
            "pipeline": {"id": pipeline_id},
            "source": {"app": {"id": source_id}},
            "targets": [{"app": {"id": target_id}} for target_id, _ in targets],
        }
        promotion = self._call("POST", app, ("pipeline-promotions",), body)
        names = dict(targets)
        promotion_id = str(promotion["id"])
        try:
            found = self._call(
                "GET", app, ("pipeline-promotions", promotion_id, "promotion-targets")
            )
        except PlatformError:
            # The promotion was made: a failed read of its targets must not say "nothing
            # was changed, try again", which would promote twice. Their outcome is unknown.
            log.info("promotion targets unreadable", extra={"app": app})
            return tuple(Promotion(name, "pending", None, promotion_id) for _, name in targets)
        return _promotions(found, names, promotion_id)

    def wait_for_promotion(
        self, app: str, promotion_id: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        """Poll a pipeline promotion (pending for seconds) until it completes; its targets
        say how each next-stage app took it. The summary names `app` as `alias` if given."""
        said = code(alias or app)
        path = ("pipeline-promotions", promotion_id)
        done = self._wait(app, path, timeout, stopping)
        found = self._call("GET", app, (*path, "promotion-targets"))
        # A target's release, read by its app's ID, names the app and its version: one call
        # per target, where its name was read first and then its release by that name. A
        # target with no release (failed, pending) is read by its ID for its name alone.
        names: dict[str, str] = {}
        versions: dict[str, object] = {}
        for target in found:
            app_id, release = str(target["app"]["id"]), (target.get("release") or {}).get("id")
            if release:
                got = self._call("GET", app, ("apps", app_id, "releases", str(release)))
                names[app_id] = str((got.get("app") or {}).get("name") or app_id)
                versions[app_id] = got.get("version")
            elif app_id not in names:
                names[app_id] = str(self._call("GET", app, ("apps", app_id))["name"])
        results = _promotions(found, names, promotion_id)
        targets = ", ".join(code(r.app) for r in results)
        if done is None or any(r.status == "pending" for r in results):
            return Settled(
                ok=False,
                summary=f"The promotion of {said} to {targets} was still pending when I "
                f"stopped watching it: check `/deploy releases {results[0].app}` in a minute."
                if results
                else f"The promotion of {said} was still pending when I stopped watching it.",
                unknown=True,
            )
        failed = [r for r in results if r.status != "succeeded"]
        if failed:
            why = "; ".join(
                f"{code(r.app)} {r.status}" + (f": {escape(r.error)}" if r.error else "")
                for r in failed
            )
            return Settled(ok=False, summary=f"The promotion of {said} did not succeed: {why}.")
        runs = [
            f"{code(names[app_id])} runs {code(f'v{version}')}"
            for app_id, version in versions.items()
        ]
        ran = f": {', '.join(runs)}" if runs else ""
        return Settled(ok=True, summary=f"The promotion of {said} to {targets} succeeded{ran}.")

    def _wait(
        self, app: str, path: tuple[str, ...], timeout: float, stopping: Event
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            item = self._call("GET", app, path)
            if item.get("status") != "pending":
                return item
            if time.monotonic() >= deadline or stopping.wait(BUILD_POLL_SECONDS):
                return None

    def _text(self, url: str | None) -> list[str]:
        """A build output stream or log session: plain text on another host, fetched
        without the API key (it must never travel to a host other than the API's)."""
        if not url:
            return []
        try:
            return fetch_tail(self._plain.get, url, (CONNECT_TIMEOUT, READ_TIMEOUT))
        except UNREADABLE as error:
            log.warning("heroku stream unreadable", extra={"error": type(error).__name__})
            return ["(the output could not be read)"]

    def add_log_drain(self, app: str, url: str) -> str:
        """Point a log drain at `url` (Heroku only); returns Heroku's drain id. A drain
        already there with that URL is found, not added twice."""
        for drain in self._call("GET", app, ("apps", app, "log-drains")):
            if drain.get("url") == url:
                return str(drain["id"])
        return str(self._call("POST", app, ("apps", app, "log-drains"), {"url": url})["id"])

    def add_webhook(self, app: str, url: str, secret: str) -> str:
        """Subscribe `url` to the app's dyno, release and formation events, signed with
        `secret`; returns Heroku's webhook id. A subscription already there for `url` gets
        the new secret instead of a second subscription (Heroku refuses a duplicate URL)."""
        body = {"include": list(WEBHOOK_ENTITIES), "level": "sync", "secret": secret, "url": url}
        for hook in self._call("GET", app, ("apps", app, "webhooks")):
            if hook.get("url") == url:
                path = ("apps", app, "webhooks", str(hook["id"]))
                return str(self._call("PATCH", app, path, body)["id"])
        return str(self._call("POST", app, ("apps", app, "webhooks"), body)["id"])

    def refuse_scale(self, app: str, targets: Targets) -> None:
        """Nothing to refuse ahead: Heroku says what it refuses when asked to scale."""

    def settles_slowly(self) -> bool:
        return False

    def wait_until_settled(
        self, app: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        return Settled(ok=True, summary="done")  # Heroku applies formation changes at once

    def _call(
        self,
        method: str,
        app: str,
        path: tuple[str, ...],
        body: dict[str, Any] | None = None,
        range_: str | None = None,
        reads: bool = False,
    ) -> Any:
        """The answer's JSON. `reads`: a POST that changes nothing (a log session), whose
        failure is worded as a read's."""
        told = "GET" if reads else method  # how a failure is worded: a change, or a read
        return _json(self._response(method, app, path, body, range_, told), app, told)

    def _response(
        self,
        method: str,
        app: str,
        path: tuple[str, ...],
        body: dict[str, Any] | None = None,
        range_: str | None = None,
        told: str | None = None,
    ) -> Any:
        """The raw answer; `told`: the method a failure is worded for (default `method`)."""
        resource = tuple(quote(part, safe="") for part in path)
        told = told or method
        data = self._client._resource_serialize(body) if body is not None else None
        now = datetime.now(UTC)
        check_call()  # a read made with others (`status`) whose call has ended sends nothing
        if self._throttles is not None:
            until = self._throttles.until(self._account, now)
            if until is not None:
                raise _throttled(until, now)
        try:
            return self._send(method, resource, data, range_, now)
        except (_TooMany, RateLimitExceeded) as error:
            wait = error.wait if isinstance(error, _TooMany) else 0.0
            until = now + min(timedelta(seconds=wait) if wait else DEFAULT_THROTTLE, MAX_THROTTLE)
            if self._throttles is not None:
                self._throttles.throttle(self._account, until, now)
            end_call()
            raise _throttled(until, now) from None
        except requests.HTTPError as error:
            if isinstance(error, requests.exceptions.ContentDecodingError):
                raise _transport_error(error, app, told) from None
            failure = _http_error(error.response, app, told, path, self._account)
            status = error.response.status_code if error.response is not None else None
            if isinstance(failure, NoSuchApp) or status == 401:
                end_call()  # every other read of the app, or with the key, hears the same
            raise failure from None
        except requests.RequestException as error:
            raise _transport_error(error, app, told) from None

    def _send(
        self, method: str, resource: tuple[str, ...], data: Any, range_: str | None, now: datetime
    ) -> Any:
        """The answer, its `RateLimit-Remaining` noted; a refused call's too."""
        sent = time.monotonic()
        try:
            if range_ is not None:
                response = self._client._http_resource(method, resource, data=data, valrange=range_)
            else:
                response = self._client._http_resource(method, resource, data=data)
        except Exception as error:
            refused = getattr(error, "response", None)
            if isinstance(error, requests.HTTPError) and refused is not None:
                # A refused call (a 404, a 422) counts against the hour too, and its answer
                # says what is left: a status's four 404s had gone uncounted.
                self._observe_remaining(refused, sent, now)
            # Cut short (its retries not made) because another read of its call got an
            # answer that ends them all: that read's error is the one told, not this one's.
            check_call()
            raise
        self._observe_remaining(response, sent, now)
        return response

    def _observe_remaining(self, response: Any, sent: float, now: datetime) -> None:
        # This answer's own header: heroku3's copy may already be another thread's.
        try:
            told = int(response.headers["RateLimit-Remaining"])
        except (KeyError, ValueError):
            return
        if not 0 <= told <= REMAINING_MOST:
            # Nothing Heroku sends (its bucket holds 4,500): stored as it came, past 2**31
            # PostgreSQL refused the write, and a change made was answered with that error.
            return
        self._remaining.observe(told, sent, time.monotonic())
        if self._throttles is not None:
            with self._storing:
                self._throttles.observe(self._account, self._remaining.value or 0, now)


def _transport_error(error: Exception, app: str, method: str) -> PlatformError:
    """Each way the HTTP exchange itself can fail, as one or two plain sentences.

    Whether the change may have landed decides the advice: a request that never left
    (no connection, a bad URL) changed nothing, so trying again is safe; one that was sent
    and then lost its answer (a read timeout, a dropped or garbled reply) may have been
    applied, so the user is sent to `status` first, and the audit outcome is "unknown".
    """
    log.warning("heroku request failed", extra={"error": type(error).__name__})
    write = method != "GET"
    if isinstance(error, requests.exceptions.SSLError):
        return PlatformError(
            "The bot could not make a secure (TLS) connection to Heroku's API. An admin "
            "should check the network and HEROKU_API_URL."
        )
    if isinstance(error, requests.exceptions.ProxyError):
        return PlatformError(
            "A proxy between the bot and Heroku's API refused the connection. "
            "Try again in a minute."
        )
    if isinstance(error, requests.ConnectTimeout) or (
        isinstance(error, requests.ConnectionError) and _never_connected(error)
    ):
        return _unreachable()
    if isinstance(
        error,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.URLRequired,
    ):
        return PlatformError(
            "HEROKU_API_URL is not a URL the bot can call. An admin should fix it "
            "(leave it unset in production)."
        )
    if isinstance(error, requests.TooManyRedirects):
        return PlatformError(
            "Heroku's API kept redirecting the bot. An admin should check HEROKU_API_URL."
        )
    if isinstance(error, requests.ReadTimeout):
        return lost_answer("Heroku's API did not answer in time.", app, write=write)
    if isinstance(error, requests.ConnectionError):
        if write:
            return lost_answer(
                "The connection to Heroku's API dropped after the request was sent, so it "
                "may have been carried out.",
                app,
                write=True,
            )
        return lost_answer(
            "The connection to Heroku's API dropped before it answered.", app, write=False
        )
    if isinstance(
        error,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | ValueError,
    ):
        return lost_answer("Heroku's API sent an answer the bot could not read.", app, write=write)
    return lost_answer("Heroku's API could not be reached.", app, write=write)


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the request never reached Heroku: no DNS answer, a refused or timed-out
    connect. requests wraps urllib3's reason in a MaxRetryError once retries run out."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _unreachable() -> PlatformError:
    return PlatformError(
        "Heroku's API could not be reached, so nothing was changed. Try again in a minute."
    )


def _throttled(until: datetime, now: datetime) -> Throttled:
    minutes = max(1, round((until - now).total_seconds() / 60))
    return Throttled(
        "Heroku is rate-limiting the bot's API key, so nothing was done. It allows the next "
        f"call at {until:%H:%M:%S} UTC (in about {minutes} min).",
        until=until,
    )


def _json(response: Any, app: str, method: str) -> Any:
    """The answer's JSON (None when empty); one that is not JSON (a proxy's HTML page, say)
    is a `PlatformError` in words."""
    try:
        return response.json() if response.content else None
    except ValueError as error:  # requests' JSONDecodeError
        raise _transport_error(error, app, method) from None


class NotFound(PlatformError):
    """Heroku found no such thing on the app (not the app itself: that is `NoSuchApp`)."""


# What a read of a path's last such part fetched, in a user's words.
_READ = {
    "formation": "formation",
    "dynos": "dynos",
    "releases": "releases",
    "config-vars": "config vars",
    "builds": "builds",
    "log-sessions": "logs",
    "log-drains": "log drains",
    "webhooks": "webhooks",
    "pipeline-couplings": "pipeline",
    "promotion-targets": "promotion",
}


def _read_what(app: str, path: tuple[str, ...]) -> str:
    """What a failed read of `path` could not read: "`demo`'s releases"."""
    if not app:
        return "the list of apps"
    read = next((_READ[part] for part in reversed(path) if part in _READ), None)
    return f"`{app}`'s {read}" if read else f"`{app}`"


def _http_error(
    response: Any, app: str, method: str, path: tuple[str, ...] = (), key_env: str = DEFAULT_KEY
) -> PlatformError:
    """What Heroku's error answer means, for Slack; `key_env` names the config var holding
    the key it was sent with."""
    status = response.status_code if response is not None else 0
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message", "")).strip()
    if status == 401:
        return PlatformError(f"Heroku rejected the bot's API key. An admin should check {key_env}.")
    if status == 403:
        return PlatformError(
            f"The bot's Heroku key may not do that on `{app}`. Ask an owner of the app to "
            "give the bot's account access.",
            app=app,
        )
    if status == 404:
        # Heroku names the missing resource in `resource`; its message says "that app".
        if body.get("resource") == "app" or "that app" in message.lower():
            return NoSuchApp(
                app,
                f"Heroku has no app called {code(app)}, or the bot's key cannot see it.",
                "Check the name in the Heroku dashboard.",
            )
        if body.get("resource") == "pipeline_coupling" or "pipeline coupling" in message.lower():
            return PlatformError(
                f"`{app}` is in no Heroku pipeline, so there is no stage to promote it to. "
                f"Add it to one first (`heroku pipelines:add PIPELINE -a {app}`).",
                app=app,
            )
        return NotFound(f"Heroku could not find that on `{app}`: {_reason(body)}", app=app)
    if status == 422:
        what = "the request about" if method == "GET" else "the change to"
        return PlatformError(f"Heroku refused {what} `{app}`: {_reason(body)}", app=app)
    if status >= 500 and method == "GET":
        return ReadFailed(
            f"Heroku's API failed ({status}), so {_read_what(app, path)} could not be read. "
            "Try again in a minute."
        )
    if status >= 500:
        return lost_answer(f"Heroku's API failed ({status}).", app, write=True)
    if status == 409:  # a conflict with something under way: a build, a release
        return PlatformError(
            f"Heroku cannot do that on `{app}` right now: {_reason(body)} "
            "Try again once what is under way has finished.",
            app=app,
        )
    return PlatformError(f"Heroku answered {status}: {_reason(body)}")


REASON_SHOWN = 300  # characters of Heroku's own message in an answer
# Heroku error ids whose body may come without a message, in words.
_REASONS = {
    "cannot_update_above_limit": "that is more dynos than Heroku allows",
    "invalid_params": "Heroku did not accept the request's parameters",
    "verification_needed": "the account needs a verified credit card for that",
    "payment_method_required": "the account needs a payment method for that",
}


def _reason(body: dict[str, Any]) -> str:
    """Heroku's own message, else its error id in words; a `limit` it sends is kept in the
    sentence (a bare `cannot_update_above_limit` is no help without the number)."""
    error_id = str(body.get("id") or "").strip()
    message = str(body.get("message") or "").strip().rstrip(".")
    # Masked, as AWS's are: a refusal may quote a source URL's token or a config value.
    # Clipped after masking (a cut secret would escape the mask), before escaping.
    reason = mask(message or _REASONS.get(error_id) or error_id or "no reason given")
    text = escape(clip(reason, REASON_SHOWN))
    limit = body.get("limit")
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        figure = f"{limit:g}"
        if figure not in text:
            text += f" (Heroku's limit is {figure})"
    return text + "."


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _read_each(items: Any, read: Callable[[Any], T], app: str, method: str) -> list[T]:
    """Each item of a list Heroku sent, read by `read` (None: an empty answer, no items)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _misshapen(app, method)
    return [_read_one(item, read, app, method) for item in items]


def _read_one(item: Any, read: Callable[[Any], T], app: str, method: str) -> T:
    """`read(item)`; an answer not of the shape Heroku's schema gives (an object for a list,
    a null quantity, a dyno without a name) is the same plain sentence as one that is not
    JSON, not a TypeError that would stop the autoscale tick for every app."""
    try:
        return read(item)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _misshapen(app, method) from None


def _misshapen(app: str, method: str) -> PlatformError:
    return _transport_error(ValueError("an answer of another shape"), app, method)


def _text_of(value: object, default: str = "") -> str:
    """A field Heroku gives as text, or `default` where it is missing; any other type is
    an answer of the wrong shape."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _formation(item: dict[str, Any]) -> Formation:
    kind, quantity = _text_of(item["type"]), item["quantity"]
    if not kind or type(quantity) is not int or quantity < 0:
        raise ValueError("not a formation")
    size = _text_of((item.get("dyno_size") or {}).get("name")) or _text_of(item.get("size"), "?")
    return Formation(type=kind, quantity=quantity, size=size)


def _dyno(item: dict[str, Any]) -> Dyno:
    name = _text_of(item["name"])
    if not name:
        raise ValueError("a dyno without a name")
    return Dyno(
        name=name,
        type=_text_of(item.get("type"), name.split(".")[0]),
        state=_text_of(item.get("state"), "unknown"),
        size=_text_of(item.get("size"), "?"),
        since=_parse_time(item.get("updated_at") or item.get("created_at")),
    )


def _maintenance(item: dict[str, Any]) -> bool:
    return bool(item["maintenance"])


def _dyno_order(dyno: Dyno) -> tuple[str, int]:
    kind, _, number = dyno.name.partition(".")
    return (kind, int(number) if number.isdigit() else 0)


def _build(item: dict[str, Any]) -> Build:
    blob = item.get("source_blob") or {}
    return Build(
        str(item["id"]),
        str(item.get("status") or "pending"),
        str(blob.get("version") or ""),
        _parse_time(item.get("created_at")),
        description=str(blob.get("version_description") or ""),
        user=str((item.get("user") or {}).get("email") or ""),
        output_url=str(item.get("output_stream_url") or ""),
    )


def _release(item: dict[str, Any]) -> Release:
    version = item["version"]
    if type(version) is not int or version < 0:
        raise ValueError("not a release")
    return Release(
        version=f"v{version}",
        description=_text_of(item.get("description")),
        created_at=_parse_time(item.get("created_at")),
        user=_text_of((item.get("user") or {}).get("email")),
        id=str(item.get("id", "")),
        status=str(item.get("status") or "succeeded"),
        current=bool(item.get("current", False)),
        slug=_text_of(_object_of(item.get("slug")).get("id")),
    )


def _object_of(value: object) -> dict[str, Any]:
    """A field Heroku gives as an object or null (as `{}`); any other type is an answer of
    the wrong shape."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value


def _promotions(
    found: list[dict[str, Any]], names: dict[str, str], promotion_id: str
) -> tuple[Promotion, ...]:
    """Pipeline promotion targets as `Promotion`s, each app named by `names` (id → name)."""
    return tuple(
        Promotion(
            names.get(str(t["app"]["id"]), str(t["app"]["id"])),
            str(t.get("status", "pending")),
            t.get("error_message"),
            promotion_id,
        )
        for t in found
    )
