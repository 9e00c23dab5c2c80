"""A stateful fake of the Heroku Platform API, served over real HTTP on 127.0.0.1.

Every request is checked against Heroku's own JSON hyper-schema
(`specs/heroku-platform-api-schema.json`): a path that no link describes gets 404 and a body
that its link's schema rejects gets 422, and both land in `violations`, so a test can insist
that the client never sent anything the real API would refuse. Apps, formations, dynos and
releases live in memory; dynos boot on a clock that tests move with `advance()`. `fail_next()`
`drop_next()` and `latency` rehearse a bad day; `gather()` shows whether a client sent
requests together. Links the fake does not implement answer 501.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry
from referencing.jsonschema import DRAFT4
from werkzeug.wrappers import Request, Response

from bot.sandbox.fakes.heroku_webhooks import Dispatcher, notification
from bot.sandbox.fakes.server import LocalServer, ServedFake

SCHEMA_PATH = Path(__file__).parent / "specs" / "heroku-platform-api-schema.json"
RATE_LIMIT = 4500
DEFAULT_PAGE = 200  # Heroku's page size when a Range names no max
MAX_PAGE = 1000
DEFAULT_FORMATION: Mapping[str, tuple[int, str]] = {
    "web": (1, "standard-1x"),
    "worker": (0, "standard-1x"),
}
SIZES = (
    "Eco",
    "Basic",
    "Standard-1X",
    "Standard-2X",
    "Performance-M",
    "Performance-L",
    "Performance-L-RAM",
    "Performance-XL",
    "Performance-2XL",
    "Private-S",
    "Private-M",
    "Private-L",
)
# Heroku's default scaling limits (devcenter "Dyno Scaling and Process Limits"): one dyno
# per process type at Eco and Basic sizes; on Cedar ten per process type at Performance,
# Private and Shield sizes and 100 dynos in all; on Fir 255 per process type and in all.
SINGLE_DYNO_SIZES = frozenset({"Eco", "Basic"})
TEN_DYNO_FAMILIES = ("Performance-", "Private-", "Shield-")
TEN_DYNO_LIMIT = 10
APP_DYNO_LIMITS = {"cedar": 100, "fir": 255}
OWNER_EMAIL = "deployer@example.com"

_NAMESPACE = uuid.UUID("6b1c1e52-3a3e-4c55-9d59-5f1f3e0c8a10")
_SIZE_BY_KEY = {size.casefold(): size for size in SIZES}
_TEMPLATE = re.compile(r"\{\([^)]*\)\}")
_ACCEPT = re.compile(r"application/vnd\.heroku\+json;\s*version=3(?:\.[\w-]+)?(?:$|[;,\s])")
_RANGE = re.compile(
    r"^\s*(?P<field>[\w-]+)\s+(?P<open>\]?)(?P<start>[^;]*?)\.\.[^;]*(?:;(?P<params>.*))?$"
)
_COMMANDS = {"web": "gunicorn app:app", "worker": "python worker.py", "clock": "python clock.py"}


def _fixed_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


_SIZE_IDS = {size: _fixed_id(f"dyno-size/{size}") for size in SIZES}
_OWNER = {"email": OWNER_EMAIL, "id": _fixed_id("account")}
_REGION = {"id": _fixed_id("region/us"), "name": "us"}
_STACK = {"id": _fixed_id("stack/heroku-24"), "name": "heroku-24"}
_GENERATIONS = ("cedar", "fir")


# ---------------------------------------------------------------------------------------------
# The schema: links become routes, link schemas become validators.


@dataclass(frozen=True)
class Link:
    """One `links` entry; `pointer` locates it in the document (`/definitions/app/links/2`)."""

    method: str
    href: str
    title: str
    pointer: str
    has_schema: bool

    @property
    def route(self) -> str:
        """`METHOD /path` with each template segment written `{}`: `GET /apps/{}/dynos`."""
        return f"{self.method} {_TEMPLATE.sub('{}', self.href)}"

    @property
    def readable_href(self) -> str:
        """The href with named templates: `/apps/{app}/formations/{dyno.formation_type}`."""
        return _TEMPLATE.sub(_template_name, self.href)


def _template_name(found: re.Match[str]) -> str:
    # `{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}` → `{app}`
    parts = unquote(found.group(0)[2:-2]).split("/")
    kind, detail = parts[2] if len(parts) > 2 else "", parts[-1]
    return "{" + (kind if detail == "identity" else f"{kind}.{detail}") + "}"


@dataclass(frozen=True)
class _Route:
    # True where a segment is a template: the smallest tuple wins, so `/teams/apps/{x}`
    # beats `/teams/{team}/apps` for the path `/teams/apps/apps`.
    specificity: tuple[bool, ...]
    regex: re.Pattern[str]
    links: tuple[Link, ...]


class HerokuSchema:
    """The hyper-schema, its router, and Draft 4 validators that resolve `#/definitions/...`."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document = _ascii_classes(document)
        self._uri = str(document.get("id") or "urn:heroku-platform-api").rstrip("#")
        self._registry = Registry().with_resource(self._uri, DRAFT4.create_resource(document))
        self._validators: dict[str, Draft4Validator] = {}
        self._lock = threading.Lock()
        self.links = tuple(_links_of(document))
        self.routes = frozenset(link.route for link in self.links)
        self._router = _build_router(self.links)

    def match(self, method: str, path: str) -> tuple[tuple[Link, ...], tuple[str, ...]]:
        """The links of the most specific href matching the path, and its segment values."""
        best: tuple[_Route, tuple[str, ...]] | None = None
        for route in self._router.get((method.upper(), path.count("/")), ()):
            found = route.regex.match(path)
            if found and (best is None or route.specificity < best[0].specificity):
                best = (route, found.groups())
        return (best[0].links, best[1]) if best else ((), ())

    def validator(
        self, pointer: str, format_checker: FormatChecker | None = None
    ) -> Draft4Validator:
        """A Draft 4 validator for the subschema at `pointer`, e.g. `<link>/targetSchema`."""
        # A `$ref` into the document, rather than the bare subschema, keeps every
        # `#/definitions/...` inside it resolving against the whole document.
        if format_checker is not None:
            return self._new_validator(pointer, format_checker)
        with self._lock:
            if pointer not in self._validators:
                self._validators[pointer] = self._new_validator(pointer, None)
            return self._validators[pointer]

    def errors(self, pointer: str, instance: Any) -> list[ValidationError]:
        """Validation errors for `instance`, most relevant first."""
        return sorted(self.validator(pointer).iter_errors(instance), key=relevance, reverse=True)

    def _new_validator(self, pointer: str, format_checker: FormatChecker | None) -> Draft4Validator:
        ref = {"$ref": f"{self._uri}#{pointer}"}
        return Draft4Validator(ref, registry=self._registry, format_checker=format_checker)


def _ascii_classes(schema: Any) -> Any:
    """`schema` with each `pattern` and `patternProperties` key read as JSON Schema's regex
    dialect (ECMA 262) reads it: `\\w` and `\\d` are ASCII there, any letter or digit in
    Python's `re` (`^\\w+$` would take a config var `KÉY` Heroku refuses). `(?a)` says so;
    the schema uses no `\\s`, which ECMA 262 keeps Unicode."""
    if isinstance(schema, list):
        return [_ascii_classes(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            copy[key] = f"(?a){value}"
        elif key == "patternProperties" and isinstance(value, dict):
            copy[key] = {f"(?a){k}": _ascii_classes(v) for k, v in value.items()}
        else:
            copy[key] = _ascii_classes(value)
    return copy


def _links_of(document: dict[str, Any]) -> Iterable[Link]:
    groups = [
        ("", document),
        *((f"/definitions/{k}", v) for k, v in document["definitions"].items()),
    ]
    for prefix, holder in groups:
        for index, link in enumerate(holder.get("links", ())):
            if "method" in link:
                yield Link(
                    method=link["method"].upper(),
                    href=link["href"],
                    title=link.get("title", ""),
                    pointer=f"{prefix}/links/{index}",
                    has_schema="schema" in link,
                )


def _build_router(links: Iterable[Link]) -> dict[tuple[str, int], list[_Route]]:
    grouped: dict[tuple[str, str], list[Link]] = {}
    for link in links:
        grouped.setdefault((link.method, link.href), []).append(link)
    router: dict[tuple[str, int], list[_Route]] = {}
    for (method, href), same in grouped.items():
        segments = href.strip("/").split("/")
        templated = tuple(bool(_TEMPLATE.fullmatch(segment)) for segment in segments)
        pattern = "/".join(
            "([^/]+)" if is_template else re.escape(segment)
            for segment, is_template in zip(segments, templated, strict=True)
        )
        route = _Route(templated, re.compile(f"^/{pattern}$"), tuple(same))
        router.setdefault((method, len(segments)), []).append(route)
    return router


@functools.cache
def load_schema() -> HerokuSchema:
    """The vendor schema, parsed once per process."""
    return HerokuSchema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def canonical_size(name: str) -> str | None:
    """Heroku's spelling of a dyno size name given in any case, or None if there is none."""
    return _SIZE_BY_KEY.get(name.casefold())


# ---------------------------------------------------------------------------------------------
# Wire-level records, errors and replies.


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it; `json` is the parsed body or None."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, status: int, error_id: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"id": error_id, "message": message, **extra}

    def reply(self) -> _Reply:
        return _Reply(self.status, self.body)


def _not_found(resource: str, message: str) -> _ApiError:
    # Heroku names the missing kind of thing in `resource`; clients branch on it.
    return _ApiError(404, "not_found", message, resource=resource)


def _type_limit(generation: str, size: str) -> int | None:
    """Heroku's default limit on one process type's dynos at `size`; None: only the app's
    limit in all applies."""
    if size in SINGLE_DYNO_SIZES:
        return 1
    if generation == "cedar" and size.startswith(TEN_DYNO_FAMILIES):
        return TEN_DYNO_LIMIT
    return APP_DYNO_LIMITS["fir"] if generation == "fir" else None


def _invalid(message: str) -> _ApiError:
    return _ApiError(422, "invalid_params", message)


_FAULT_BODIES = {
    400: ("bad_request", "Invalid request."),
    401: ("unauthorized", "Invalid credentials provided."),
    403: ("forbidden", "You do not have access to that app."),
    404: ("not_found", "Couldn't find that resource."),
    422: ("invalid_params", "The request was invalid."),
    429: (
        "rate_limit",
        "Your account reached the API rate limit. Please wait a few minutes before making "
        "new requests.",
    ),
}


@dataclass
class _Fault:
    status: int
    count: int
    retry_after: float | None
    methods: frozenset[str] | None
    body: dict[str, Any] | None = None  # exactly this error body, e.g. one without a message
    path: str | None = None  # only requests for this path (`/apps/myapp/dynos`)

    def reply(self) -> _Reply:
        default = ("unavailable", "The API is temporarily unavailable. Please try again later.")
        if self.status < 500:
            default = ("bad_request", "Invalid request.")
        error_id, message = _FAULT_BODIES.get(self.status, default)
        body = self.body if self.body is not None else {"id": error_id, "message": message}
        reply = _Reply(self.status, dict(body))
        if self.retry_after is not None:
            reply.headers["Retry-After"] = _number(self.retry_after)
        if self.status == 429:
            reply.headers["RateLimit-Remaining"] = "0"
        return reply


@dataclass(frozen=True)
class _Call:
    params: tuple[str, ...]
    body: Any
    range: str | None


# ---------------------------------------------------------------------------------------------
# State.


@dataclass
class _Process:
    id: str
    type: str
    quantity: int
    size: str
    command: str
    created_at: datetime
    updated_at: datetime


@dataclass
class _Dyno:
    id: str
    type: str
    number: int
    size: str
    command: str
    created_at: datetime
    started_at: datetime
    ready_at: datetime
    crashed: bool = False
    fir: bool = False  # named as on Fir, `web-1234abcde-123ab`: no number in it

    @property
    def name(self) -> str:
        if self.fir:
            # On Fir a name holds no number: the type, a hash, and a random suffix (here
            # from the dyno's id, so it stays the same).
            return f"{self.type}-{self.id[:8]}{self.id[9]}-{self.id[-5:]}"
        return f"{self.type}.{self.number}"

    def start(self, now: datetime, boot_seconds: float) -> None:
        self.crashed = False
        self.started_at = now
        self.ready_at = now + timedelta(seconds=boot_seconds)


@dataclass
class _Release:
    id: str
    version: int
    description: str
    created_at: datetime
    status: str = "succeeded"  # pending, succeeded, failed
    user: str = OWNER_EMAIL
    # The app's config vars as this release made them: a rollback to it restores them,
    # as Heroku's does.
    config: dict[str, str] = field(default_factory=dict)
    # The id of the slug it runs: a build's own, or the one it took (a config change, a
    # rollback or a promotion makes a release of a slug that exists). Empty: a slug of its own.
    slug: str = ""

    def __post_init__(self) -> None:
        self.slug = self.slug or _fixed_id(f"slug/{self.id}")


@dataclass
class _App:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    processes: dict[str, _Process] = field(default_factory=dict)
    dynos: list[_Dyno] = field(default_factory=list)
    releases: list[_Release] = field(default_factory=list)
    log_drains: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)  # with their secrets
    maintenance: bool = False
    config: dict[str, str] = field(default_factory=dict)
    builds: list[dict[str, Any]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # logplex lines, oldest first
    generation: str = "cedar"  # or "fir": its dynos are named as Fir names them

    @property
    def current(self) -> _Release:
        """The release the app runs: the newest that did not fail (a failed one never ran)."""
        good = [r for r in self.releases if r.status == "succeeded"]
        return good[-1] if good else self.releases[-1]


# Implemented links, by route; everything else the schema knows answers 501.
_HANDLERS: dict[str, str] = {
    "GET /account/rate-limits": "_rate_limits",
    "GET /apps": "_app_list",
    "GET /apps/{}": "_app_info",
    "PATCH /apps/{}": "_app_update",
    "GET /apps/{}/config-vars": "_config_var_info",
    "PATCH /apps/{}/config-vars": "_config_var_update",
    "POST /apps/{}/releases": "_release_create",
    "POST /apps/{}/builds": "_build_create",
    "GET /apps/{}/builds/{}": "_build_info",
    "GET /apps/{}/builds": "_build_list",
    "POST /apps/{}/dynos": "_dyno_create",
    "POST /apps/{}/log-sessions": "_log_session_create",
    "GET /apps/{}/pipeline-couplings": "_coupling_of_app",
    "GET /pipelines/{}/pipeline-couplings": "_couplings_of_pipeline",
    "POST /pipeline-promotions": "_promotion_create",
    "GET /pipeline-promotions/{}": "_promotion_info",
    "GET /pipeline-promotions/{}/promotion-targets": "_promotion_targets",
    "GET /apps/{}/formation": "_formation_list",
    "GET /apps/{}/formation/{}": "_formation_info",
    "PATCH /apps/{}/formation": "_formation_batch_update",
    "PATCH /apps/{}/formation/{}": "_formation_update",
    "GET /apps/{}/dynos": "_dyno_list",
    "GET /apps/{}/dynos/{}": "_dyno_info",
    "DELETE /apps/{}/dynos": "_restart_all",
    "DELETE /apps/{}/dynos/{}": "_restart_dyno",
    "DELETE /apps/{}/formations/{}": "_restart_type",
    "GET /apps/{}/releases": "_release_list",
    "GET /apps/{}/releases/{}": "_release_info",
    "POST /apps/{}/log-drains": "_log_drain_create",
    "GET /apps/{}/log-drains": "_log_drain_list",
    "POST /apps/{}/webhooks": "_webhook_create",
    "GET /apps/{}/webhooks": "_webhook_list",
    "PATCH /apps/{}/webhooks/{}": "_webhook_update",
}
IMPLEMENTED = frozenset(_HANDLERS)
_UNCOUNTED = "GET /account/rate-limits"  # the schema: it "does not count towards the rate limit"


class FakeHeroku(ServedFake):
    """Heroku's Platform API for tests and the sandbox: schema-checked, stateful, faultable.

    Public state tests may read: `requests` (every `Recorded` request), `violations` (every
    request the schema forbids, as text), `rate_limit_remaining`, `now`. Tests may set
    `latency` (seconds to sleep before answering) and `boot_seconds` (how long a started
    dyno stays `starting`; 0 means it is `up` at once).
    """

    def __init__(
        self,
        api_keys: Iterable[str] = ("test-key",),
        boot_seconds: float = 0.0,
        now: datetime | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        boot_delays: Iterator[float] | None = None,
    ) -> None:
        schema = load_schema()
        if missing := IMPLEMENTED - schema.routes:
            raise RuntimeError(f"the schema has no link for {sorted(missing)}")
        self.api_keys = frozenset(api_keys)
        self.boot_seconds = boot_seconds
        self.latency = 0.0
        self.slow_methods: frozenset[str] | None = None  # latency only for these; None: all
        self.rate_limit_remaining = RATE_LIMIT
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._fixed_now = (now or datetime.now(UTC)).replace(microsecond=0)
        # The closed-loop benchmark runs the fake on its compressed clock (`clock`) and draws
        # each started dyno's boot time as the simulator does (`boot_delays`).
        self.clock = clock
        self.boot_delays = boot_delays
        # (when, app, process type, quantity): every formation quantity set, from the start.
        self.formation_changes: list[tuple[datetime, str, str, int]] = []
        self._apps: dict[str, _App] = {}
        self._faults: list[_Fault] = []
        self._drops: list[tuple[int, frozenset[str] | None]] = []
        self._ids = random.Random(0)  # seeded: the same test sees the same ids every run
        self._lock = threading.RLock()
        self._server = LocalServer(self)
        # Builds: their output streams, and the next build of an app that will fail.
        self._streams: dict[str, list[str]] = {}
        self._failing_builds: dict[str, list[str]] = {}
        self._failing_releases: dict[str, list[str]] = {}  # release phase output, by app
        self._pipelines: dict[str, dict[str, str]] = {}  # pipeline id → app name → stage
        # Promotion id → [the promotion, its targets, reads it still answers pending].
        self._promotions: dict[str, list[Any]] = {}
        # How many reads of a promotion (or its targets) answer `pending` before it ends, as
        # Heroku's stay pending for seconds; the releases are made at once, as a build's are.
        self.promotion_pending_reads = 1
        # Whether Heroku can download a build's `source_blob.url` (a ref the host has): a
        # build from one it cannot fails at its fetch, making no slug and no release.
        self.source_exists: Callable[[str], bool] = lambda url: True
        # One-off commands: what each prints and the status it exits with.
        self.run_output: dict[str, tuple[list[str], int]] = {}
        # Requests for build output and log sessions, which are not API calls.
        self.stream_requests: list[Recorded] = []
        # Webhook notifications sent to subscribers, in order; `.wait()` lets them land.
        self.deliveries = Dispatcher()

    def stop(self) -> None:
        self.deliveries.stop()
        super().stop()

    # -- clock ----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The fake's clock (UTC); it moves only when `advance()` is called, or follows
        `clock` when one was given."""
        with self._lock:
            return self._now

    @property
    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else self._fixed_now

    @_now.setter
    def _now(self, value: datetime) -> None:
        if self.clock is not None:
            raise RuntimeError("this fake's clock follows `clock`; advance() cannot move it")
        self._fixed_now = value

    def _boot_seconds(self) -> float:
        return next(self.boot_delays) if self.boot_delays is not None else self.boot_seconds

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward, e.g. past `boot_seconds` so starting dynos are up."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    # -- set-up and inspection ------------------------------------------------------------

    def add_app(
        self,
        name: str,
        formation: Mapping[str, tuple[int, str]] | None = None,
        releases: int = 3,
        generation: str = "cedar",
    ) -> dict[str, Any]:
        """Create an app whose dynos are already up; returns its API representation. A
        `generation` of "fir" names its dynos as Fir does (`web-1234abcde-123ab`)."""
        name_schema = load_schema().document["definitions"]["app"]["definitions"]["name"]
        if not re.search(name_schema["pattern"], name):
            raise ValueError(f"{name!r} is not a valid Heroku app name")
        if releases < 1:
            raise ValueError("an app needs at least one release")
        if generation not in _GENERATIONS:
            raise ValueError(f"no such generation as {generation!r}")
        with self._lock:
            if name in self._apps:
                raise ValueError(f"app {name!r} already exists")
            app = self._new_app(name, releases)
            app.generation = generation
            for process_type, (quantity, size) in (formation or DEFAULT_FORMATION).items():
                self._add_process(app, process_type, quantity, size)
            self._apps[name] = app
            return self._app_json(app)

    def formation(self, app: str) -> dict[str, tuple[int, str]]:
        """`{type: (quantity, size)}` with sizes spelled the way Heroku spells them."""
        with self._lock:
            return {p.type: (p.quantity, p.size) for p in self._apps[app].processes.values()}

    def ready_times(self, app: str, process_type: str = "web") -> list[datetime]:
        """When each running dyno of `process_type` is (or was) up, by dyno number."""
        with self._lock:
            mine = [d for d in self._apps[app].dynos if d.type == process_type]
            return [d.ready_at for d in sorted(mine, key=_dyno_order)]

    def dynos(self, app: str) -> list[dict[str, Any]]:
        """The app's dynos as `GET /apps/{app}/dynos` would show them, by type and number."""
        with self._lock:
            found = self._apps[app]
            return [self._dyno_json(found, d) for d in sorted(found.dynos, key=_dyno_order)]

    def webhooks(self, app: str) -> list[dict[str, Any]]:
        """The app's webhook subscriptions, `secret` included (the API never shows it)."""
        with self._lock:
            return [dict(hook) for hook in self._apps[app].webhooks]

    def log_drains(self, app: str) -> list[dict[str, Any]]:
        """The app's log drains as the API shows them (`url` among them)."""
        with self._lock:
            return [dict(drain) for drain in self._apps[app].log_drains]

    def app_names(self) -> list[str]:
        with self._lock:
            return sorted(self._apps)

    def release(self, app: str, description: str, email: str = OWNER_EMAIL) -> int:
        """Add a succeeded release (a deploy by `email`) as the current one, telling no
        subscriber; returns its version."""
        with self._lock:
            return self._new_release(self._apps[app], description, "succeeded", email).version

    def add_release(
        self, app: str, description: str, status: str = "succeeded", user: str = OWNER_EMAIL
    ) -> dict[str, Any]:
        """Record a new release (a deploy done elsewhere), `failed` or `succeeded`; subscribers
        of `api:release` are told. Returns it as the API shows it."""
        with self._lock:
            found = self._apps[app]
            release = self._new_release(found, description, status, user)
            data = self._release_json(found, release)
            self._publish(found, "api:release", "release", "update", data, {"status": "pending"})
            return data

    def expire_release(self, app: str, version: int) -> None:
        """Mark release `version` `expired`, as Heroku does once its slug is gone: it can no
        longer be rolled back to."""
        with self._lock:
            [release] = [r for r in self._apps[app].releases if r.version == version]
            release.status = "expired"

    def fail_next_build(self, app: str, output: Iterable[str]) -> None:
        """The app's next build fails, its output ending with `output`."""
        with self._lock:
            self._failing_builds[app] = list(output)

    def fail_next_release_phase(self, app: str, output: Iterable[str]) -> None:
        """The next release the app makes from a successful build or a rollback fails in
        its release phase (its `release` command), its output `output`: status `failed`,
        never live. A rollback's answer says `pending`, as while the command runs."""
        with self._lock:
            self._failing_releases[app] = list(output)

    def add_build(
        self,
        app: str,
        version: str,
        description: str | None = None,
        failing: Iterable[str] | None = None,
        user: str = OWNER_EMAIL,
        ago: timedelta = timedelta(0),
    ) -> str:
        """Record a build pushed from elsewhere (`git push heroku`): it fails with `failing`
        as its output's last lines, or succeeds and is released. Returns its id (it may be
        made before the fake serves, when its output's URL is not known yet). A failed build
        can be dated `ago`; a released one is made now, as its release is."""
        with self._lock:
            found = self._apps[app]
            lines = None if failing is None else list(failing)
            url = f"https://example.com/{app}/{version}.tgz"
            when = self._now - ago if lines is not None else self._now
            build = self._new_build(found, url, version, lines, description, user, when)
            return str(build["id"])

    def log(self, app: str, dyno: str, message: str, source: str = "app") -> None:
        """Add one line to the app's logs (`app[web.1]: message`)."""
        with self._lock:
            self._apps[app].logs.append(f"{_timestamp(self._now)} {source}[{dyno}]: {message}")

    def add_pipeline(self, name: str, stages: Mapping[str, str]) -> str:
        """A pipeline coupling each app to its stage (`{"demo-staging": "staging"}`)."""
        with self._lock:
            pipeline_id = _fixed_id(f"pipeline/{name}")
            self._pipelines[pipeline_id] = dict(stages)
            return pipeline_id

    def releases(self, app: str) -> list[dict[str, Any]]:
        with self._lock:
            found = self._apps[app]
            return [self._release_json(found, r) for r in found.releases]

    def config_vars(self, app: str) -> dict[str, str]:
        with self._lock:
            return dict(self._apps[app].config)

    def set_config_vars(self, app: str, values: Mapping[str, str]) -> None:
        """Config vars the app has had all along: every release has them, so no rollback
        undoes them, and none is made (a setup leaves the release list as it was)."""
        with self._lock:
            found = self._apps[app]
            found.config.update(values)
            for release in found.releases:
                release.config.update(values)

    def maintenance(self, app: str) -> bool:
        with self._lock:
            return self._apps[app].maintenance

    def set_maintenance(self, app: str, on: bool) -> None:
        """Switch maintenance as someone else (the dashboard, a lost request) would."""
        with self._lock:
            self._apps[app].maintenance = on

    def crash(self, app: str, dyno: str) -> dict[str, Any]:
        """Crash one dyno (`web.1`): it shows `crashed` until restarted, and subscribers of
        `api:dyno` are told. Returns the dyno as the API shows it."""
        with self._lock:
            found = self._apps[app]
            target = self._dyno(found, dyno)
            target.crashed = True
            data = self._dyno_json(found, target)
            self._publish(found, "dyno", "dyno", "update", data, {"state": "up"})
            return data

    def run_one_off(
        self,
        app: str,
        command: str,
        process_type: str = "run",
        exit_status: int = 0,
        management: str | None = "run:detached",
    ) -> dict[str, Any]:
        """A one-off dyno (`heroku run:detached`, or Heroku Scheduler with `scheduler`)
        runs `command` and exits with `exit_status`: subscribers of `dyno` are told how it
        ended (`crashed` for a non-zero exit, as Heroku shows it, else `down`), with the
        `exit_status` and `management` that dyno notifications carry. It is never part of
        the formation. Returns the notification's data."""
        with self._lock:
            found = self._apps[app]
            number = 1000 + self._ids.randrange(9000)
            current = found.releases[-1]
            data = {
                "app": {"id": found.id, "name": found.name},
                "attach_url": None,
                "command": command,
                "created_at": _timestamp(self._now),
                "exit_status": exit_status,
                "id": self._new_id(),
                "management": management,
                "name": f"{process_type}.{number}",
                "release": {"id": current.id, "version": current.version},
                "size": "Basic",
                "state": "crashed" if exit_status else "down",
                "type": process_type,
                "updated_at": _timestamp(self._now),
            }
            self._publish(found, "dyno", "dyno", "update", data, {"state": "up"})
            return data

    def calls(self, method: str, path: str | re.Pattern[str]) -> list[Recorded]:
        """Recorded requests with `method` whose path ends with `path`, or matches it if a regex."""
        with self._lock:
            recorded = list(self.requests)

        def hit(candidate: str) -> bool:
            if isinstance(path, re.Pattern):
                return path.search(candidate) is not None
            return candidate.endswith(path)

        return [r for r in recorded if r.method == method.upper() and hit(r.path)]

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        methods: Iterable[str] | None = None,
        body: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` requests (of `methods` and for `path`, if given) with
        `status`, and with `body` if given (Heroku's error bodies vary: some have no
        `message`). A path picks one of reads a client makes at once, whatever their order.

        Faults queue up: `fail_next(429)` then `fail_next(503)` fails two requests in turn.
        A failed request takes its token from `rate_limit_remaining` as any other does (a
        429 takes none: it says the pool is empty).
        """
        if not 400 <= status <= 599:
            raise ValueError("a fault needs a 4xx or 5xx status")
        wanted = frozenset(m.upper() for m in methods) if methods is not None else None
        with self._lock:
            self._faults.append(_Fault(status, count, retry_after, wanted, body, path))

    def drop_next(self, count: int = 1, methods: Iterable[str] | None = None) -> None:
        """Carry out the next `count` requests (of `methods`, if given) as usual, then close
        the connection without answering: a change applied, and a client that cannot tell."""
        wanted = frozenset(m.upper() for m in methods) if methods is not None else None
        with self._lock:
            self._drops.append((count, wanted))

    def _take_drop(self, method: str) -> bool:
        for index, (count, methods) in enumerate(self._drops):
            if methods is None or method in methods:
                if count <= 1:
                    del self._drops[index]
                else:
                    self._drops[index] = (count - 1, methods)
                return True
        return False

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/streams/"):
            # Build output and log sessions: plain text on their own host in Heroku, no key.
            with self._lock:
                self.stream_requests.append(
                    Recorded("GET", request.path, dict(request.headers), None)
                )
                lines = self._streams.get(request.path.rsplit("/", 1)[-1])
            text = "".join(f"{line}\n" for line in lines or ())
            status = 200 if lines is not None else 404
            return Response(text, status=status, content_type="text/plain")(environ, start_response)
        reply = self._handle(request)
        response = Response(
            json.dumps(reply.body),
            status=reply.status,
            headers=reply.headers,
            content_type="application/json",
        )
        return response(environ, start_response)

    def _handle(self, request: Request) -> _Reply:
        body, bad_json = _read_json(request)
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.path, dict(request.headers), body)
            )
        # Recorded first: a client that timed out can still see that its request arrived.
        self._arrived()
        if self.latency and (self.slow_methods is None or request.method in self.slow_methods):
            time.sleep(self.latency)
        with self._lock:
            reply = self._answer(request, body, bad_json)
            reply.headers.setdefault("RateLimit-Remaining", str(self.rate_limit_remaining))
            drop = self._take_drop(request.method)
        if drop and (connection := request.environ.get("werkzeug.socket")) is not None:
            connection.shutdown(socket.SHUT_RDWR)  # done, but the client never hears so
        reply.headers["Request-Id"] = str(uuid.uuid4())
        return reply

    def _answer(self, request: Request, body: Any, bad_json: bool) -> _Reply:
        links, params = load_schema().match(request.method, request.path)
        accept_error = self._accept_error(request)
        route_error = self._route_error(request, links)
        body_error = self._body_error(request, links, body, bad_json)
        # Heroku's rate limits: every call takes a token from the account's pool, whatever
        # its answer, so a fault is counted like any other; an empty pool answers 429 first
        # (taking none), and a queued fault waits for a call that gets through.
        counted = not (links and links[0].route == _UNCOUNTED)
        if counted and self.rate_limit_remaining == 0:
            return _Fault(429, 1, None, None).reply()
        fault = self._take_fault(request.method, request.path)
        if counted and (fault is None or fault.status != 429):  # a 429 found the pool empty
            self.rate_limit_remaining -= 1
        if fault is not None:
            return fault.reply()
        for error in (accept_error, self._auth_error(request), route_error, body_error):
            if error is not None:
                return error.reply()
        return self._dispatch(links[0], _Call(params, body, request.headers.get("Range")))

    def _dispatch(self, link: Link, call: _Call) -> _Reply:
        handler = _HANDLERS.get(link.route)
        if handler is None:
            message = (
                f"The fake does not implement {link.title} ({link.method} {link.readable_href})."
            )
            return _ApiError(501, "not_implemented", message).reply()
        try:
            return getattr(self, handler)(call)
        except _ApiError as error:
            return error.reply()

    # -- request checks: each records a violation when the client broke the contract ------

    def _violation(self, request: Request, detail: str) -> None:
        self.violations.append(f"{request.method} {request.path}: {detail}")

    def _accept_error(self, request: Request) -> _ApiError | None:
        if _ACCEPT.search(request.headers.get("Accept", "")):
            return None
        self._violation(request, "the Accept header does not ask for version=3")
        return _ApiError(
            400,
            "bad_request",
            "Please specify a version along with Heroku's API MIME type. For example, "
            "`Accept: application/vnd.heroku+json; version=3`.",
        )

    def _route_error(self, request: Request, links: tuple[Link, ...]) -> _ApiError | None:
        if links:
            return None
        self._violation(request, "no link in the schema has this method and path")
        return _ApiError(404, "not_found", f"No such endpoint: {request.method} {request.path}.")

    def _body_error(
        self, request: Request, links: tuple[Link, ...], body: Any, bad_json: bool
    ) -> _ApiError | None:
        if bad_json:
            self._violation(request, "the body is not JSON")
            return _ApiError(400, "bad_request", "The request body is not valid JSON.")
        checked = [link for link in links if link.has_schema]
        if not checked:
            return None
        instance = dict(request.args) if request.method == "GET" else body
        # Links sharing a method and href (release Create and Rollback): any one may accept it.
        errors = [load_schema().errors(f"{link.pointer}/schema", instance) for link in checked]
        if any(not found for found in errors):
            return None
        best = errors[0][0]
        where = "/".join(str(part) for part in best.absolute_path)
        self._violation(request, best.message + (f" (at {where})" if where else ""))
        return _invalid(best.message)

    def _auth_error(self, request: Request) -> _ApiError | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return _ApiError(401, "unauthorized", "No credentials in the Authorization header.")
        if _key_of(header) not in self.api_keys:
            return _ApiError(401, "unauthorized", "Invalid credentials provided.")
        return None

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if (fault.methods is None or method in fault.methods) and fault.path in (None, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- handlers -------------------------------------------------------------------------

    def _rate_limits(self, call: _Call) -> _Reply:
        return _Reply(200, {"remaining": self.rate_limit_remaining})

    def _app_list(self, call: _Call) -> _Reply:
        items = [self._app_json(app) for app in self._apps.values()]
        return _page(items, call.range, ("name", "id"))

    def _app_info(self, call: _Call) -> _Reply:
        return _Reply(200, self._app_json(self._app(call.params[0])))

    def _formation_list(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        items = [self._formation_json(app, p) for p in app.processes.values()]
        return _page(items, call.range, ("type", "id"))

    def _formation_info(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return _Reply(200, self._formation_json(app, self._process(app, call.params[1])))

    def _formation_batch_update(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        # Check every update before applying any: one bad entry changes nothing.
        changes = [self._change(app, update) for update in call.body["updates"]]
        self._check_total(app, changes)
        before = {process.type: process.quantity for process, _, _ in changes}
        updated = [self._apply(app, *change) for change in changes]
        for process in updated:
            self._formation_changed(app, process, before[process.type])
        return _Reply(200, [self._formation_json(app, process) for process in updated])

    def _formation_update(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        change = self._change(app, {**call.body, "type": call.params[1]})
        self._check_total(app, [change])
        before = change[0].quantity
        process = self._apply(app, *change)
        self._formation_changed(app, process, before)
        return _Reply(200, self._formation_json(app, process))

    def _dyno_list(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        items = [self._dyno_json(app, d) for d in sorted(app.dynos, key=_dyno_order)]
        return _page(items, call.range, ("name", "id"))

    def _dyno_info(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return _Reply(200, self._dyno_json(app, self._dyno(app, call.params[1])))

    def _restart_all(self, call: _Call) -> _Reply:
        return self._restart(self._app(call.params[0]).dynos)

    def _restart_type(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        process = self._process(app, call.params[1])
        return self._restart([d for d in app.dynos if d.type == process.type])

    def _restart_dyno(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return self._restart([self._dyno(app, call.params[1])])

    def _release_list(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        items = [self._release_json(app, release) for release in app.releases]
        return _page(items, call.range, ("version", "id"))

    def _release_info(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return _Reply(200, self._release_json(app, self._release(app, call.params[1])))

    def _release_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        if "release" not in call.body:
            message = "The fake builds no slugs: it implements Rollback, not Create."
            raise _ApiError(501, "not_implemented", message)
        target = self._release(app, call.body["release"])
        if target.status != "succeeded":
            raise _invalid(
                f"Release v{target.version} cannot be rolled back to: it {target.status}."
            )
        phase = self._failing_releases.pop(app.name, None)
        status = "failed" if phase is not None else "succeeded"
        release = self._new_release(
            app, f"Rollback to v{target.version}", status, OWNER_EMAIL, target.slug
        )
        if phase is not None:
            # Its release command fails after the answer, which says pending: never live.
            self._streams[release.id] = ["Running release command...", *phase]
            release.config = dict(target.config)
            pending = {**self._release_json(app, release), "status": "pending"}
            return _Reply(201, pending)
        app.config = dict(target.config)  # Heroku rolls back code and config together
        release.config = dict(target.config)
        # A release restarts every dyno on the new code.
        for dyno in app.dynos:
            dyno.start(self._now, self._boot_seconds())
        data = self._release_json(app, release)
        self._publish(app, "api:release", "release", "create", data, {})
        return _Reply(201, data)

    def _build_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        blob = call.body["source_blob"]
        failing = self._failing_builds.pop(app.name, None)
        fetched = self.source_exists(blob["url"])
        build = self._new_build(
            app, blob["url"], blob.get("version") or "unknown", failing, fetched=fetched
        )
        # The first answer says pending, as Heroku's does: the build runs after the request.
        shown = {**self._build_json(build), "status": "pending", "release": None, "slug": None}
        return _Reply(201, shown)

    def _new_build(
        self,
        app: _App,
        url: str,
        version: str,
        failing: list[str] | None,
        description: str | None = None,
        user: str = OWNER_EMAIL,
        when: datetime | None = None,
        fetched: bool = True,
    ) -> dict[str, Any]:
        """A build run to its end at once: failed with `failing` as its output's last lines,
        or at its fetch when its source could not be `fetched`, else succeeded and released
        (the dynos restart on it), as Heroku's own would."""
        build_id = self._new_id()
        output = ["-----> Building on the Heroku-24 stack", f"-----> Fetching source {version}"]
        if fetched:
            output += [
                "-----> Using buildpack: heroku/python",
                "-----> Installing requirements with pip",
            ]
        build = {
            "app": {"id": app.id},
            "buildpacks": [{"url": "heroku/python", "name": "heroku/python"}],
            "created_at": _timestamp(when or self._now),
            "id": build_id,
            # A path until shown (`_build_json`): a build can be made before the fake serves.
            "output_stream_url": f"/streams/builds/{build_id}",
            "release": None,
            "slug": None,
            "source_blob": {
                "checksum": None,
                "url": url,
                "version": version,
                "version_description": description,
            },
            "stack": _STACK["name"],
            "generation": app.generation,
            "status": "pending",
            "updated_at": _timestamp(when or self._now),
            "user": {**_OWNER, "email": user},
        }
        if not fetched:
            # The URL may carry its grant (a signed tarball URL): it is not printed.
            output += [" !     The source could not be fetched: its URL answered 404 Not Found."]
            build["status"] = "failed"
        elif failing is not None:
            output += [*failing, " !     Push rejected, failed to compile Python app."]
            build["status"] = "failed"
        else:
            phase = self._failing_releases.pop(app.name, None)
            status = "failed" if phase is not None else "succeeded"
            release = self._new_release(app, f"Deploy {version}", status, user)
            if phase is not None:
                self._streams[release.id] = ["Running release command...", *phase]
            for dyno in app.dynos if phase is None else ():
                dyno.start(self._now, self._boot_seconds())
            output += ["-----> Discovering process types", f"       Released v{release.version}"]
            build["status"] = "succeeded"
            build["release"] = {"id": release.id}
            build["slug"] = {"id": release.slug}
        self._streams[build_id] = output
        app.builds.append(build)
        return build

    def _build_json(self, build: dict[str, Any]) -> dict[str, Any]:
        return {**build, "output_stream_url": self.url + build["output_stream_url"]}

    def _build_list(self, call: _Call) -> _Reply:
        """Builds ordered as the Range asks. Heroku ranges them by `id` or `started_at`,
        which no build shows: the order they were made in stands for it."""
        app = self._app(call.params[0])
        wanted = _parse_range(call.range, ("id", "started_at"))
        made = list(enumerate(app.builds))
        if wanted.field == "id":
            made.sort(key=lambda pair: pair[1]["id"])
        if wanted.descending:
            made.reverse()
        page = [self._build_json(build) for _, build in made[: wanted.max]]
        return _Reply(200, page, {"Accept-Ranges": "id, started_at"})

    def _build_info(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        for build in app.builds:
            if build["id"] == call.params[1]:
                return _Reply(200, self._build_json(build))
        raise _not_found("build", "Couldn't find that build.")

    def _dyno_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        command = call.body["command"]
        number = 1000 + len([line for line in app.logs if "Starting process with command" in line])
        name = f"run.{number}"
        printed, status = self.run_output.get(command, ([f"ran {command}"], 0))
        self.log(app.name, name, f"Starting process with command `{command}`", source="heroku")
        for line in printed:
            self.log(app.name, name, line)
        self.log(app.name, name, f"Process exited with status {status}", source="heroku")
        self.log(app.name, name, "State changed from up to complete", source="heroku")
        # The one-off has already finished: it never shows in the dyno list.
        process = _Process(self._new_id(), "run", 1, "Basic", command, self._now, self._now)
        dyno = self._new_dyno(process, number, self._now, 0.0)
        data = self._dyno_json(app, dyno)
        return _Reply(201, {**data, "name": name, "type": "run", "state": "starting"})

    def _log_session_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        body = call.body or {}
        # One dyno by its name, or every dyno of a process type, as the API's two fields do.
        dyno, ptype = body.get("dyno_name"), body.get("type")
        lines = [
            line
            for line in app.logs
            if (dyno is None or f"[{dyno}]" in line) and (ptype is None or f"[{ptype}." in line)
        ]
        count = int(body.get("lines", 100))
        session_id = self._new_id()
        self._streams[session_id] = lines[-count:] if count else []
        now = _timestamp(self._now)
        return _Reply(
            201,
            {
                "created_at": now,
                "id": session_id,
                "logplex_url": f"{self.url}/streams/logs/{session_id}",
                "updated_at": now,
            },
        )

    def _coupling_of_app(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        for pipeline_id, stages in self._pipelines.items():
            if app.name in stages:
                return _Reply(200, self._coupling_json(pipeline_id, app, stages[app.name]))
        raise _not_found("pipeline-coupling", "Couldn't find that pipeline coupling.")

    def _couplings_of_pipeline(self, call: _Call) -> _Reply:
        stages = self._pipelines.get(call.params[0])
        if stages is None:
            raise _not_found("pipeline", "Couldn't find that pipeline.")
        items = [
            self._coupling_json(call.params[0], self._app(name), stage)
            for name, stage in stages.items()
        ]
        return _Reply(200, items)

    def _promotion_create(self, call: _Call) -> _Reply:
        pipeline_id = call.body["pipeline"]["id"]
        source = self._app(call.body["source"]["app"]["id"])
        promotion_id = self._new_id()
        targets = []
        for target in call.body["targets"]:
            app = self._app(target["app"]["id"])
            release = self._new_release(
                app,
                f"Promote {source.name} v{source.current.version}",
                "succeeded",
                OWNER_EMAIL,
                source.current.slug,
            )
            targets.append(
                {
                    "app": {"id": app.id},
                    "error_message": None,
                    "id": self._new_id(),
                    "pipeline_promotion": {"id": promotion_id},
                    "release": {"id": release.id},
                    "status": "succeeded",
                }
            )
        now = _timestamp(self._now)
        promotion = {
            "created_at": now,
            "id": promotion_id,
            "pipeline": {"id": pipeline_id},
            "source": {"app": {"id": source.id}, "release": {"id": source.current.id}},
            "status": "completed",
            "updated_at": now,
        }
        self._promotions[promotion_id] = [promotion, targets, self.promotion_pending_reads]
        return _Reply(201, {**promotion, "status": "pending", "updated_at": None})

    def _promotion_read(self, promotion_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The promotion and its targets as a read sees them: pending (no release yet) for
        the first `promotion_pending_reads` reads, then as it ended."""
        found = self._promotions.get(promotion_id)
        if found is None:
            raise _not_found("pipeline-promotion", "Couldn't find that promotion.")
        promotion, targets, pending = found
        if pending > 0:
            found[2] = pending - 1
            return (
                {**promotion, "status": "pending", "updated_at": None},
                [{**t, "status": "pending", "release": None} for t in targets],
            )
        return dict(promotion), [dict(t) for t in targets]

    def _promotion_info(self, call: _Call) -> _Reply:
        return _Reply(200, self._promotion_read(call.params[0])[0])

    def _promotion_targets(self, call: _Call) -> _Reply:
        return _Reply(200, self._promotion_read(call.params[0])[1])

    def _coupling_json(self, pipeline_id: str, app: _App, stage: str) -> dict[str, Any]:
        created = _timestamp(app.created_at)
        return {
            "app": {"id": app.id},
            "created_at": created,
            "id": _fixed_id(f"coupling/{pipeline_id}/{app.name}"),
            "pipeline": {"id": pipeline_id},
            "stage": stage,
            "updated_at": created,
        }

    def _app_update(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        if "name" in call.body or "build_stack" in call.body:
            raise _ApiError(501, "not_implemented", "The fake only changes `maintenance`.")
        if "maintenance" in call.body:
            app.maintenance = bool(call.body["maintenance"])
            app.updated_at = self._now
        return _Reply(200, self._app_json(app))

    def _config_var_info(self, call: _Call) -> _Reply:
        return _Reply(200, dict(self._app(call.params[0]).config))

    def _config_var_update(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        for key, value in call.body.items():
            if value is None:
                app.config.pop(key, None)
            else:
                app.config[key] = value
        # Heroku makes a release for every config change.
        keys = ", ".join(sorted(call.body))
        self._new_release(
            app, f"Set {keys} config vars", "succeeded", OWNER_EMAIL, app.current.slug
        )
        return _Reply(200, dict(app.config))

    def _log_drain_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        url = call.body["url"]
        if not url.startswith(("https://", "http://", "syslog://", "syslog+tls://")):
            raise _invalid(f"Url {url} is not a valid drain URL.")
        if any(drain["url"] == url for drain in app.log_drains):
            raise _invalid("Url has already been taken")
        now = _timestamp(self._now)
        drain = {
            "addon": None,
            "app": {"id": app.id, "name": app.name},
            "created_at": now,
            "id": self._new_id(),
            "token": f"d.{self._new_id()}",
            "updated_at": now,
            "url": url,
        }
        app.log_drains.append(drain)
        return _Reply(201, dict(drain))

    def _log_drain_list(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return _Reply(200, [dict(drain) for drain in app.log_drains])

    def _webhook_create(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        url = call.body["url"]
        if not url.startswith(("https://", "http://")):
            raise _invalid(f"Url {url} is not a valid webhook URL.")
        if any(hook["url"] == url for hook in app.webhooks):
            raise _invalid("Url has already been taken")
        now = _timestamp(self._now)
        hook = {
            "app": {"id": app.id, "name": app.name},
            "created_at": now,
            "id": self._new_id(),
            "include": list(call.body["include"]),
            "level": call.body["level"],
            "updated_at": now,
            "url": url,
            # Kept for tests that sign deliveries; Heroku never returns these two.
            "secret": call.body.get("secret"),
            "authorization": call.body.get("authorization"),
        }
        app.webhooks.append(hook)
        return _Reply(201, _webhook_json(hook))

    def _webhook_update(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        for hook in app.webhooks:
            if hook["id"] == call.params[1]:
                hook.update(call.body)
                hook["updated_at"] = _timestamp(self._now)
                return _Reply(200, _webhook_json(hook))
        raise _not_found("webhook", "Couldn't find that webhook.")

    def _webhook_list(self, call: _Call) -> _Reply:
        app = self._app(call.params[0])
        return _Reply(200, [_webhook_json(hook) for hook in app.webhooks])

    # -- lookups --------------------------------------------------------------------------

    def _app(self, identity: str) -> _App:
        for app in self._apps.values():
            if identity in (app.name, app.id):
                return app
        raise _not_found("app", "Couldn't find that app.")

    def _process(self, app: _App, identity: str) -> _Process:
        for process in app.processes.values():
            if identity in (process.type, process.id):
                return process
        raise _not_found("formation", f"Couldn't find that process type ({identity}).")

    def _dyno(self, app: _App, identity: str) -> _Dyno:
        for dyno in app.dynos:
            if identity in (dyno.name, dyno.id):
                return dyno
        raise _not_found("dyno", "Couldn't find that dyno.")

    def _release(self, app: _App, identity: str) -> _Release:
        for release in app.releases:
            if identity in (str(release.version), release.id):
                return release
        raise _not_found("release", "Couldn't find that release.")

    # -- changes --------------------------------------------------------------------------

    def _change(self, app: _App, update: dict[str, Any]) -> tuple[_Process, int | None, str | None]:
        """Check one formation update; returns what `_apply` needs."""
        process = self._process(app, update["type"])
        quantity = update.get("quantity")
        if quantity is not None and quantity < 0:
            raise _invalid(f"Quantity must be zero or more, not {quantity}.")
        size = _size_of(update)
        final_size = size or process.size
        final_quantity = process.quantity if quantity is None else quantity
        most = _type_limit(app.generation, final_size)
        if most is not None and final_quantity > most:
            raise _invalid(
                f"Cannot update to more than {most} {final_size} size dynos per process type."
            )
        return process, quantity, size

    def _check_total(
        self, app: _App, changes: list[tuple[_Process, int | None, str | None]]
    ) -> None:
        """Heroku's limit on an app's dynos in all, over the formation as it would be."""
        after = {p.type: p.quantity for p in app.processes.values()}
        after.update({p.type: q for p, q, _ in changes if q is not None})
        most = APP_DYNO_LIMITS[app.generation]
        if sum(after.values()) > most:
            raise _invalid(f"Cannot update to more than {most} dynos in total for this app.")

    def _apply(
        self, app: _App, process: _Process, quantity: int | None, size: str | None
    ) -> _Process:
        if size is not None and size != process.size:
            process.size = size
            # A resize restarts the process type's dynos on the new size.
            for dyno in app.dynos:
                if dyno.type == process.type:
                    dyno.size = size
                    dyno.start(self._now, self._boot_seconds())
        if quantity is not None:
            process.quantity = quantity
            self._scale(app, process)
            self.formation_changes.append((self._now, app.name, process.type, quantity))
        process.updated_at = self._now
        return process

    def _scale(self, app: _App, process: _Process) -> None:
        mine = sorted((d for d in app.dynos if d.type == process.type), key=_dyno_order)
        # Numbers stay 1..n, as on Heroku: scaling down drops the highest-numbered dynos.
        for dyno in mine[process.quantity :]:
            app.dynos.remove(dyno)
        for number in range(len(mine) + 1, process.quantity + 1):
            app.dynos.append(
                self._new_dyno(process, number, self._now, self._boot_seconds(), app.generation)
            )

    def _formation_changed(self, app: _App, process: _Process, before: int) -> None:
        data = self._formation_json(app, process)
        self._publish(app, "api:formation", "formation", "update", data, {"quantity": before})

    def _publish(
        self,
        app: _App,
        include: str,
        resource: str,
        action: str,
        data: dict[str, Any],
        previous: dict[str, Any],
    ) -> None:
        """Notify every subscription to `include` (`dyno`, `api:formation`, …)."""
        for hook in app.webhooks:
            if include in hook["include"]:
                at = _timestamp(self._now)
                self.deliveries.send(
                    notification(hook, include, resource, action, data, previous, at, OWNER_EMAIL)
                )

    def _restart(self, dynos: Iterable[_Dyno]) -> _Reply:
        for dyno in dynos:
            dyno.start(self._now, self._boot_seconds())
        return _Reply(202, {})

    # -- construction ---------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _new_app(self, name: str, releases: int) -> _App:
        created = self._now - timedelta(days=30)
        app = _App(self._new_id(), name, created, self._now - timedelta(hours=1))
        for version in range(1, releases + 1):
            description = "Initial release" if version == 1 else f"Deploy {self._new_id()[:7]}"
            # The latest release went out an hour ago; earlier ones a day apart before it.
            when = self._now - timedelta(hours=1, days=releases - version)
            app.releases.append(_Release(self._new_id(), version, description, when))
        return app

    def _new_release(
        self, app: _App, description: str, status: str, user: str, slug: str = ""
    ) -> _Release:
        """A release of `slug` (a slug that exists), or of a new one (a deploy)."""
        version = app.releases[-1].version + 1
        release = _Release(
            self._new_id(), version, description, self._now, status, user, dict(app.config), slug
        )
        app.releases.append(release)
        app.updated_at = self._now
        return release

    def _add_process(self, app: _App, process_type: str, quantity: int, size: str) -> None:
        canonical = canonical_size(size)
        if canonical is None:
            raise ValueError(f"no such dyno size as {size!r}")
        command = _COMMANDS.get(process_type, f"bin/{process_type}")
        created = app.created_at
        process = _Process(
            self._new_id(), process_type, quantity, canonical, command, created, created
        )
        app.processes[process_type] = process
        self.formation_changes.append((self._now, app.name, process_type, quantity))
        booted = app.releases[-1].created_at  # the dynos have been up since the last release
        for number in range(1, quantity + 1):
            app.dynos.append(self._new_dyno(process, number, booted, 0.0, app.generation))

    def _new_dyno(
        self, process: _Process, number: int, when: datetime, boot: float, generation: str = ""
    ) -> _Dyno:
        ready = when + timedelta(seconds=boot)
        return _Dyno(
            self._new_id(),
            process.type,
            number,
            process.size,
            process.command,
            when,
            when,
            ready,
            fir=generation == "fir",
        )

    # -- representations (the schema's shapes) -------------------------------------------

    def _app_json(self, app: _App) -> dict[str, Any]:
        return {
            "acm": False,
            "archived_at": None,
            "buildpack_provided_description": "Python",
            "build_stack": dict(_STACK),
            "created_at": _timestamp(app.created_at),
            "generation": _generation(app.generation),
            "git_url": f"https://git.heroku.com/{app.name}.git",
            "id": app.id,
            "internal_routing": None,
            "maintenance": app.maintenance,
            "name": app.name,
            "organization": None,
            "owner": dict(_OWNER),
            "region": dict(_REGION),
            "released_at": _timestamp(app.current.created_at),
            "repo_size": None,
            "slug_size": None,
            "space": None,
            "stack": dict(_STACK),
            "team": None,
            "updated_at": _timestamp(app.updated_at),
            "web_url": f"https://{app.name}-{app.id.replace('-', '')[:12]}.herokuapp.com/",
        }

    def _formation_json(self, app: _App, process: _Process) -> dict[str, Any]:
        return {
            "app": {"id": app.id, "name": app.name},
            "command": process.command,
            "created_at": _timestamp(process.created_at),
            "dyno_size": {"id": _SIZE_IDS[process.size], "name": process.size},
            "id": process.id,
            "quantity": process.quantity,
            "size": process.size,
            "type": process.type,
            "updated_at": _timestamp(process.updated_at),
        }

    def _dyno_json(self, app: _App, dyno: _Dyno) -> dict[str, Any]:
        up = self._now >= dyno.ready_at
        current = app.current
        return {
            "app": {"id": app.id, "name": app.name},
            "attach_url": None,
            "command": dyno.command,
            "created_at": _timestamp(dyno.created_at),
            "id": dyno.id,
            "name": dyno.name,
            "release": {"id": current.id, "version": current.version},
            "size": dyno.size,
            "state": "crashed" if dyno.crashed else "up" if up else "starting",
            "type": dyno.type,
            # `updated_at` is when the dyno last changed state.
            "updated_at": _timestamp(dyno.ready_at if up else dyno.started_at),
        }

    def _release_json(self, app: _App, release: _Release) -> dict[str, Any]:
        current = release is app.current
        slug = {"id": release.slug}
        return {
            "addon_plan_names": ["heroku-postgresql:essential-0"],
            "app": {"id": app.id, "name": app.name},
            "artifacts": [{"type": "slug", **slug}],
            "created_at": _timestamp(release.created_at),
            "current": current,
            "description": release.description,
            "eligible_for_rollback": not current and release.status == "succeeded",
            "id": release.id,
            "output_stream_url": (
                f"{self.url}/streams/releases/{release.id}" if release.id in self._streams else None
            ),
            "slug": slug,
            "status": release.status,
            "updated_at": _timestamp(release.created_at),
            "user": {**_OWNER, "email": release.user},
            "version": release.version,
        }


# ---------------------------------------------------------------------------------------------
# Small pure helpers.


def _webhook_json(hook: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in hook.items() if name not in ("secret", "authorization")}


def _read_json(request: Request) -> tuple[Any, bool]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _key_of(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # heroku3 sends ":key"; the Heroku CLI sends "email:key". The key is the password.
    return decoded.partition(":")[2]


def _size_of(update: dict[str, Any]) -> str | None:
    wanted = update.get("dyno_size") or {}
    given = wanted.get("name") or wanted.get("id") or update.get("size")
    if given is None:
        return None
    for size, size_id in _SIZE_IDS.items():
        if given == size_id:
            return size
    canonical = canonical_size(given)
    if canonical is None:
        raise _invalid(f"No such size as {given}.")
    return canonical


def _generation(name: str) -> dict[str, str]:
    return {"id": _fixed_id(f"generation/{name}"), "name": name}


def _dyno_order(dyno: _Dyno) -> tuple[str, int]:
    return (dyno.type, dyno.number)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class _Range:
    field: str
    start: str | None
    exclusive: bool
    descending: bool
    max: int


def _parse_range(header: str | None, fields: tuple[str, ...]) -> _Range:
    """Heroku's `Range: <field> [[]start]..[end]; order=desc, max=N`; anything else: defaults."""
    found = _RANGE.match(header or "")
    if not found:
        return _Range(fields[0], None, False, False, DEFAULT_PAGE)
    params = dict(re.findall(r"(\w+)\s*=\s*(\w+)", found["params"] or ""))
    size = int(params["max"]) if params.get("max", "").isdigit() else DEFAULT_PAGE
    return _Range(
        field=found["field"] if found["field"] in fields else fields[0],
        start=found["start"].strip() or None,
        exclusive=bool(found["open"]),
        descending=params.get("order") == "desc",
        max=min(max(size, 1), MAX_PAGE),
    )


def _page(items: list[dict[str, Any]], header: str | None, fields: tuple[str, ...]) -> _Reply:
    """One page of a list, ordered and cut as the Range asks; 206 and Next-Range if cut short."""
    wanted = _parse_range(header, fields)
    ordered = sorted(items, key=lambda item: item[wanted.field], reverse=wanted.descending)
    if wanted.start is not None and ordered:
        ordered = [i for i in ordered if _after(i[wanted.field], wanted)]
    page = ordered[: wanted.max]
    reply = _Reply(200, page, {"Accept-Ranges": ", ".join(fields)})
    if not page:
        return reply
    first, last = page[0][wanted.field], page[-1][wanted.field]
    reply.headers["Content-Range"] = f"{wanted.field} {first}..{last}"
    if len(ordered) > len(page):
        order = "order=desc, " if wanted.descending else ""
        reply.status = 206
        reply.headers["Next-Range"] = f"{wanted.field} ]{last}..; {order}max={wanted.max}"
    return reply


def _after(value: Any, wanted: _Range) -> bool:
    start: Any = wanted.start
    if isinstance(value, int):
        try:
            start = int(start)
        except ValueError:
            return True
    if value == start:
        return not wanted.exclusive
    return value < start if wanted.descending else value > start
