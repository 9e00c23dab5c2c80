"""A stateful fake of the AWS Elastic Beanstalk Query API, served over real HTTP on 127.0.0.1.

boto3 reaches it through `endpoint_url=fake.url` or `AWS_ENDPOINT_URL_ELASTIC_BEANSTALK`. The
service model shipped inside botocore (`elasticbeanstalk/2010-12-01/service-2.json`) drives both
directions: incoming form parameters are decoded and checked against the operation's input shape
(a missing required member, a bad enum value, an unknown parameter all land in `violations`), and
every answer is serialised shape by shape from the output shape, so botocore's parser gets XML
that fits by construction.

Environments belong to an (access key, region) pair read from the SigV4 credential scope; a
request signed with another pair does not see them, and an unregistered key gets 403. Signatures
are not verified. Environments move through Launching/Updating → Ready on a clock that tests
move with `advance()`; updates and restarts emit the events the real service emits.
`fail_update()`, `fail_next()` and `latency` rehearse a bad day. Operations the model knows but the
fake does not implement answer 501; actions the model does not know answer 400 InvalidAction.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from werkzeug.wrappers import Request, Response

from bot.sandbox.fakes.server import LocalServer, ServedFake

API_VERSION = "2010-12-01"
XML_NAMESPACE = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"
DEFAULT_ACCESS_KEY = "AKIDTEST"
DEFAULT_REGION = "us-east-1"
SOLUTION_STACK = "64bit Amazon Linux 2023 v4.3.0 running Python 3.11"
PLATFORM = "Python 3.11 running on 64bit Amazon Linux 2023/4.3.0"

_T_SIZES = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
_M5_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_C5_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge")
_6I_SIZES = (*_M5_SIZES, "32xlarge")
_7G_SIZES = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
# The sizes each family really sells: `t3.24xlarge` or `c5.8xlarge` do not exist.
_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "t2": _T_SIZES,
    "t3": _T_SIZES,
    "t3a": _T_SIZES,
    "t4g": _T_SIZES,
    "m5": _M5_SIZES,
    "r5": _M5_SIZES,
    "c5": _C5_SIZES,
    "m6i": _6I_SIZES,
    "c6i": _6I_SIZES,
    "r6i": _6I_SIZES,
    "m7g": _7G_SIZES,
    "c7g": _7G_SIZES,
}
INSTANCE_TYPES = frozenset(
    f"{family}.{size}" for family, sizes in _FAMILIES.items() for size in sizes
)

STATUSES = ("Launching", "Updating", "Ready", "Terminating", "Terminated")
COLORS = ("Green", "Yellow", "Red", "Grey")
LOAD_BALANCER_TYPES = ("application", "classic", "network")
SEVERITIES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# Enhanced health: each status has one colour (docs: "Health colors and statuses").
HEALTH_COLORS: Mapping[str, str] = {
    "Ok": "Green",
    "Info": "Green",
    "Warning": "Yellow",
    "Degraded": "Red",
    "Severe": "Red",
    "Pending": "Grey",
    "Unknown": "Grey",
    "NoData": "Grey",
    "Suspended": "Grey",
}
_STATUS_OF_COLOR = {"Green": "Ok", "Yellow": "Warning", "Red": "Degraded", "Grey": "Unknown"}
_LATENCY_DEFAULTS = {
    "P999": 0.5,
    "P99": 0.2,
    "P95": 0.12,
    "P90": 0.09,
    "P85": 0.07,
    "P75": 0.05,
    "P50": 0.03,
    "P10": 0.01,
}
_REQUESTS_PER_INSTANCE = 60  # per 10-second window: enough traffic that metrics are non-trivial
_ENV_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{2,38})[A-Za-z0-9]$")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
# Form parameters that are the protocol's, not the operation's.
_PROTOCOL_PARAMS = frozenset({"Action", "Version"})

# The model says DescribeEnvironmentHealth's `Status` is an EnvironmentHealth colour, but its own
# documentation ("The environment's operational status. Ready, Launching, Updating, ...") and the
# live service disagree: AWS answers `Ready`. The fake follows the service, and skips the output
# enum self-check for this one member.
_MODEL_ERRATA = frozenset({("DescribeEnvironmentHealthResult", "Status")})

_log = logging.getLogger(__name__)

_ASG = "aws:autoscaling:asg"
_LAUNCH = "aws:autoscaling:launchconfiguration"
_ENV_PROPERTIES = "aws:elasticbeanstalk:application:environment"
_EC2 = "aws:ec2:instances"


@functools.cache
def load_model() -> ServiceModel:
    """botocore's Elastic Beanstalk service model, loaded once per process."""
    return botocore.session.get_session().get_service_model("elasticbeanstalk")


# ---------------------------------------------------------------------------------------------
# Wire level: query parameters in, XML out, both directed by the model's shapes.


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it.

    `params` is the form decoded along the operation's input shape (lists as lists, integers as
    ints), or the raw form when the action is unknown; `form` is always the raw form.
    """

    action: str
    params: dict[str, Any]
    access_key: str | None
    region: str | None
    form: dict[str, str]
    request_id: str


class _AwsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> _AwsError:
    return _AwsError(400, "InvalidParameterValue", message)


@dataclass
class _Problems:
    """What the input shape rejects; `missing` and `invalid` the real API refuses with 400."""

    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def decode_params(
    operation: OperationModel, form: Mapping[str, str]
) -> tuple[dict[str, Any], _Problems]:
    """The flat query form (`OptionSettings.member.1.Namespace=...`) as nested values."""
    problems = _Problems()
    used: set[str] = set(_PROTOCOL_PARAMS)
    shape = operation.input_shape
    params = _decode(shape, form, "", used, problems) if shape is not None else {}
    problems.unknown.extend(sorted(key for key in form if key not in used))
    return params or {}, problems


def _present(form: Mapping[str, str], prefix: str) -> bool:
    return prefix in form or any(key.startswith(prefix + ".") for key in form)


def _decode(
    shape: Shape, form: Mapping[str, str], prefix: str, used: set[str], problems: _Problems
) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            key = f"{prefix}.{wire}" if prefix else wire
            if _present(form, key):
                out[name] = _decode(member, form, key, used, problems)
            elif name in shape.required_members:
                problems.missing.append(key)
        return out
    if kind == "list":
        if form.get(prefix) == "":  # botocore's spelling of an empty list
            used.add(prefix)
            return []
        step = shape.member.serialization.get("name", "member")
        pattern = re.compile(rf"^{re.escape(prefix)}\.{re.escape(step)}\.(\d+)(?:\.|$)")
        indexes = sorted({int(m.group(1)) for k in form if (m := pattern.match(k))})
        item_shape = shape.member
        return [_decode(item_shape, form, f"{prefix}.{step}.{i}", used, problems) for i in indexes]
    if kind == "map":
        raise NotImplementedError("Elastic Beanstalk inputs have no maps")
    used.add(prefix)
    return _scalar(shape, form[prefix], prefix, problems)


def _scalar(shape: Shape, raw: str, where: str, problems: _Problems) -> Any:
    kind = shape.type_name
    meta = shape.metadata
    try:
        if kind in ("integer", "long"):
            value: Any = int(raw)
            if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
                problems.invalid.append(
                    f"Value '{raw}' at '{where}' failed to satisfy constraint: Member must have "
                    f"value between {meta.get('min')} and {meta.get('max')}"
                )
            return value
        if kind in ("double", "float"):
            return float(raw)
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise ValueError(raw)
            return raw == "true"
        if kind == "timestamp":
            return _parse_time(raw)
    except ValueError:
        problems.invalid.append(f"Value '{raw}' at '{where}' is not a valid {kind}")
        return raw
    enum = meta.get("enum")
    if enum and raw not in enum:
        problems.invalid.append(
            f"Value '{raw}' at '{where}' failed to satisfy constraint: Member must satisfy enum "
            f"value set: [{', '.join(enum)}]"
        )
    if "min" in meta and len(raw) < meta["min"]:
        problems.invalid.append(
            f"Value '{raw}' at '{where}' failed to satisfy constraint: Member must have length "
            f"greater than or equal to {meta['min']}"
        )
    if "max" in meta and len(raw) > meta["max"]:
        problems.invalid.append(
            f"Value '{raw}' at '{where}' failed to satisfy constraint: Member must have length "
            f"less than or equal to {meta['max']}"
        )
    return raw


def _parse_time(raw: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except ValueError:
        pass
    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def response_xml(
    operation: OperationModel, result: Mapping[str, Any] | None, request_id: str
) -> bytes:
    """`<{Action}Response>` with the result serialised along the operation's output shape.

    A value that does not fit its shape raises: that is a bug in the fake, not in the client.
    """
    root = ElementTree.Element(f"{operation.name}Response", xmlns=XML_NAMESPACE)
    shape = operation.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
        _to_xml(root, wrapper, shape, result or {}, check_enum=True)
    elif result:
        raise ValueError(f"{operation.name} has no output shape but the fake built a result")
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = request_id
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def error_xml(status: int, code: str, message: str, request_id: str) -> bytes:
    """The Query protocol's `<ErrorResponse>`: Sender for 4xx, Receiver for 5xx."""
    root = ElementTree.Element("ErrorResponse", xmlns=XML_NAMESPACE)
    error = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(error, "Type").text = "Sender" if status < 500 else "Receiver"
    ElementTree.SubElement(error, "Code").text = code
    ElementTree.SubElement(error, "Message").text = message
    ElementTree.SubElement(root, "RequestId").text = request_id
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _to_xml(
    parent: ElementTree.Element, name: str, shape: Shape, value: Any, check_enum: bool
) -> None:
    kind = shape.type_name
    if kind == "list" and shape.serialization.get("flattened"):
        for item in value:
            _to_xml(parent, name, shape.member, item, check_enum=True)
        return
    node = ElementTree.SubElement(parent, name)
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            raise TypeError(f"{shape.name} needs a mapping, got {value!r}")
        if extra := set(value) - set(shape.members):
            raise KeyError(f"{shape.name} has no members {sorted(extra)}")
        for member, member_shape in shape.members.items():
            if value.get(member) is not None:
                wire = member_shape.serialization.get("name", member)
                errata = (shape.name, member) in _MODEL_ERRATA
                _to_xml(node, wire, member_shape, value[member], check_enum=not errata)
    elif kind == "list":
        if not isinstance(value, list | tuple):
            raise TypeError(f"{shape.name} needs a list, got {value!r}")
        step = shape.member.serialization.get("name", "member")
        for item in value:
            _to_xml(node, step, shape.member, item, check_enum=True)
    elif kind == "timestamp":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"{shape.name} needs an aware datetime, got {value!r}")
        node.text = _timestamp(value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError(f"{shape.name} needs a bool, got {value!r}")
        node.text = "true" if value else "false"
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{shape.name} needs an int, got {value!r}")
        node.text = str(value)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{shape.name} needs a number, got {value!r}")
        node.text = repr(float(value))
    elif kind == "string":
        if not isinstance(value, str):
            raise TypeError(f"{shape.name} needs a str, got {value!r}")
        enum = shape.metadata.get("enum")
        if check_enum and enum and value not in enum:
            raise ValueError(f"{value!r} is not one of {shape.name}'s values {enum}")
        node.text = value
    else:
        raise NotImplementedError(f"the fake never answers with a {kind} ({shape.name})")


def _timestamp(moment: datetime) -> str:
    # Milliseconds and a Z, as the service writes them: 2015-08-07T20:48:49.599Z.
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# State.


@dataclass(frozen=True)
class _Config:
    min_size: int
    max_size: int
    instance_types: tuple[str, ...]


@dataclass
class _Instance:
    id: str
    launched_at: datetime
    zone: str


@dataclass
class _Operation:
    kind: str  # launch | update | restart | terminate
    ends_at: datetime
    request_id: str
    previous: _Config | None = None
    failure: str | None = None
    failing: bool = False
    version_label: str | None = None  # a deploy: the version the environment moves to
    properties: dict[str, str] | None = None  # environment properties after the update


@dataclass
class _Version:
    application: str
    label: str
    description: str
    created: datetime
    region: str
    access_key: str


@dataclass
class _Event:
    date: datetime
    seq: int
    message: str
    severity: str
    application: str
    environment: str
    request_id: str | None
    access_key: str
    region: str


@dataclass
class _Environment:
    name: str
    id: str
    application: str
    region: str
    access_key: str
    account: str
    config: _Config
    status: str
    color: str
    health_status: str | None
    version_label: str | None  # None: launched with no version (AWS's sample application)
    created: datetime
    updated: datetime
    cname: str
    endpoint: str
    load_balancer: str
    auto_scaling_group: str
    launch_configuration: str
    seq: int
    instances: list[_Instance] = field(default_factory=list)
    target_instances: int = 0
    causes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    operation: _Operation | None = None
    fail_next_update: bool = False
    failure_message: str | None = None
    failed: bool = False
    description: str | None = None
    terminated_at: datetime | None = None
    properties: dict[str, str] = field(default_factory=dict)  # environment properties
    # What a tail bundle holds: (instance ID, or None for every instance's, line).
    log_lines: list[tuple[str | None, str]] = field(default_factory=list)
    tail_requested: bool = False
    # False: a single-instance environment, with no load balancer (EnvironmentType
    # SingleInstance), whose one instance answers at an Elastic IP.
    load_balanced: bool = True
    # What Beanstalk made it (LoadBalancerType): "application", "classic" or "network".
    load_balancer_type: str = "application"
    # False: basic health reporting (SystemType basic), and DescribeEnvironmentHealth refused.
    enhanced_health: bool = True

    @property
    def instance_type(self) -> str:
        return self.config.instance_types[0]


@dataclass
class _Fault:
    status: int
    code: str
    message: str
    count: int
    actions: frozenset[str] | None


_FAULT_MESSAGES = {
    "Throttling": "Rate exceeded",
    "InternalFailure": (
        "The request processing has failed because of an unknown error, exception or failure."
    ),
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}

# Implemented actions, by name; every other operation of the model answers 501.
_HANDLERS: dict[str, str] = {
    "DescribeEnvironments": "_describe_environments",
    "DescribeConfigurationSettings": "_describe_configuration_settings",
    "UpdateEnvironment": "_update_environment",
    "RestartAppServer": "_restart_app_server",
    "DescribeEnvironmentHealth": "_describe_environment_health",
    "DescribeEnvironmentResources": "_describe_environment_resources",
    "DescribeEvents": "_describe_events",
    "DescribeInstancesHealth": "_describe_instances_health",
    "DescribeApplicationVersions": "_describe_application_versions",
    "SwapEnvironmentCNAMEs": "_swap_environment_cnames",
    "CreateApplicationVersion": "_create_application_version",
    "RequestEnvironmentInfo": "_request_environment_info",
    "RetrieveEnvironmentInfo": "_retrieve_environment_info",
}
IMPLEMENTED = frozenset(_HANDLERS)


@dataclass(frozen=True)
class _Incoming:
    """A request as decoded, before the fake decides how to answer it."""

    action: str
    operation: OperationModel | None
    params: dict[str, Any]
    problems: _Problems
    form: dict[str, str]
    access_key: str | None
    region: str | None
    service: str | None
    request_id: str


@dataclass(frozen=True)
class _Call:
    action: str
    params: dict[str, Any]
    access_key: str
    region: str
    request_id: str


class FakeBeanstalk(ServedFake):
    """Elastic Beanstalk's Query API for tests and the sandbox: model-checked, stateful, faultable.

    Public state tests may read: `requests` (every `Recorded` request), `violations` (every
    request the model or the docs forbid, as text), `now`, `access_keys`. Tests may set `latency`
    (seconds to sleep before answering) and the durations `launch_seconds`, `update_seconds`,
    `restart_seconds` and `terminate_seconds`.
    """

    def __init__(
        self,
        access_keys: Iterable[str] = (DEFAULT_ACCESS_KEY,),
        now: datetime | None = None,
        update_seconds: float = 60.0,
        restart_seconds: float = 20.0,
        launch_seconds: float = 300.0,
        terminate_seconds: float = 120.0,
    ) -> None:
        model = load_model()
        if missing := IMPLEMENTED - set(model.operation_names):
            raise RuntimeError(f"botocore's model has no operation {sorted(missing)}")
        self.access_keys: set[str] = set(access_keys)
        self.update_seconds = update_seconds
        self.restart_seconds = restart_seconds
        self.launch_seconds = launch_seconds
        self.terminate_seconds = terminate_seconds
        self.latency = 0.0
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._now = (now or datetime.now(UTC)).replace(microsecond=0)
        self._environments: list[_Environment] = []
        self._versions: list[_Version] = []
        # (bucket, key) pairs S3 has no object for: CreateApplicationVersion fails on them.
        self.missing_bundles: set[tuple[str, str]] = set()
        self._events: list[_Event] = []
        self._faults: list[_Fault] = []
        self._seq = 0
        self._ids = random.Random(0)  # seeded: the same test sees the same ids every run
        self._lock = threading.RLock()
        self._server = LocalServer(self)

    # -- clock ----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The fake's clock (UTC); it moves only when `advance()` is called."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward, finishing every launch, update and restart that falls due.

        Operations finish in the order they fall due, each at its own moment, so their events
        carry the times the real service would have written.
        """
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            target = self._now + timedelta(seconds=seconds)
            while due := [
                (env.operation.ends_at, env.seq, env)
                for env in self._environments
                if env.operation is not None and env.operation.ends_at <= target
            ]:
                ends_at, _, env = min(due)  # seq is unique: ties never compare environments
                self._now = max(self._now, ends_at)
                self._finish(env)
            self._now = target
            return target

    # -- set-up and inspection ------------------------------------------------------------

    def add_environment(
        self,
        name: str,
        region: str = DEFAULT_REGION,
        access_key: str = DEFAULT_ACCESS_KEY,
        application: str = "myapp",
        min_size: int = 1,
        max_size: int = 4,
        instance_type: str = "t3.micro",
        status: str = "Ready",
        health: str = "Green",
        instances: int | None = None,
        version_label: str | None = "v1",
        load_balanced: bool = True,
        enhanced_health: bool = True,
        load_balancer_type: str = "application",
    ) -> dict[str, Any]:
        """Create an environment owned by (access_key, region); registers the key.

        `load_balanced=False` makes a single-instance environment: no load balancer among its
        resources, `EnvironmentType` SingleInstance. `load_balancer_type` "classic" or
        "network" names its load balancer as AWS does: a classic ELB by its name, an ALB or NLB
        by its ARN. `enhanced_health=False` reports basic
        health only: DescribeEnvironmentHealth answers 400 InvalidRequestException.

        A `Ready` environment has `instances` (default `min_size`) running; a `Launching` one
        has none until `launch_seconds` pass; `Updating` and `Terminating` finish on the clock
        like any other operation. Returns `environment()`'s view of it.
        """
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment name (4-40 letters, digits, -)")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if health not in COLORS:
            raise ValueError(f"health must be one of {COLORS}")
        if instance_type not in INSTANCE_TYPES:
            raise ValueError(f"{instance_type!r} is not an instance type the fake knows")
        if load_balancer_type not in LOAD_BALANCER_TYPES:
            raise ValueError(f"load_balancer_type must be one of {LOAD_BALANCER_TYPES}")
        if not 0 <= min_size <= max_size:
            raise ValueError("need 0 <= min_size <= max_size")
        count = min_size if instances is None else instances
        if not min_size <= count <= max_size:
            raise ValueError("instances must lie within [min_size, max_size]")
        with self._lock:
            if self._find(name, region, access_key):
                raise ValueError(f"environment {name!r} already exists for that key and region")
            self.access_keys.add(access_key)
            env = self._new_environment(
                name, region, access_key, application, _Config(min_size, max_size, (instance_type,))
            )
            env.color = health
            env.version_label = version_label
            env.load_balanced = load_balanced
            env.load_balancer_type = load_balancer_type
            if load_balancer_type != "classic":
                kind = "app" if load_balancer_type == "application" else "net"
                env.load_balancer = (
                    f"arn:aws:elasticloadbalancing:{region}:{env.account}:loadbalancer/{kind}/"
                    f"{env.load_balancer[:32]}/{_hex16(env.load_balancer)}"
                )
            env.enhanced_health = enhanced_health
            if version_label and not self._version(application, version_label, region, access_key):
                created = self._now - timedelta(days=1)
                self._versions.append(
                    _Version(application, version_label, "", created, region, access_key)
                )
            env.target_instances = count
            self._environments.append(env)
            self._begin(env, status)
            return self._snapshot(env)

    def add_version(
        self,
        application: str,
        label: str,
        description: str = "",
        region: str = DEFAULT_REGION,
        access_key: str = DEFAULT_ACCESS_KEY,
        age_hours: float = 0.0,
    ) -> None:
        """Register an application version (a bundle uploaded earlier), `age_hours` old."""
        with self._lock:
            if self._version(application, label, region, access_key):
                raise ValueError(f"version {label!r} of {application!r} already exists")
            created = self._now - timedelta(hours=age_hours)
            self._versions.append(
                _Version(application, label, description, created, region, access_key)
            )

    def remove_version(
        self,
        application: str,
        label: str,
        region: str = DEFAULT_REGION,
        access_key: str = DEFAULT_ACCESS_KEY,
    ) -> None:
        """Delete an application version (as in the console); as AWS, not one that an
        environment runs."""
        with self._lock:
            version = self._version(application, label, region, access_key)
            if version is None:
                raise KeyError(f"no version {label!r} of {application!r}")
            if any(
                (env.application, env.version_label) == (application, label)
                and env.status != "Terminated"
                for env in self._environments
                if (env.region, env.access_key) == (region, access_key)
            ):
                raise ValueError(f"version {label!r} is deployed to an environment")
            self._versions.remove(version)

    def log(self, name: str, line: str, instance: str | None = None) -> None:
        """Add a line to the environment's instance logs (what `tail` retrieves): to one
        instance's, or to every instance's."""
        with self._lock:
            self._lookup(name, None, None).log_lines.append((instance, line))

    def set_properties(self, name: str, values: Mapping[str, str]) -> None:
        """Set environment properties directly (as if set in the console)."""
        with self._lock:
            self._lookup(name, None, None).properties.update(values)

    def cname(self, name: str) -> str:
        with self._lock:
            return self._lookup(name, None, None).cname

    def environment(
        self, name: str, region: str | None = None, access_key: str | None = None
    ) -> dict[str, Any]:
        """The environment's state: status, health, min_size, max_size, instance_type, instances…

        `region` and `access_key` may be left out while only one environment has the name.
        """
        with self._lock:
            return self._snapshot(self._lookup(name, region, access_key))

    def events(
        self, name: str, region: str | None = None, access_key: str | None = None
    ) -> list[dict[str, Any]]:
        """The environment's events, newest first, as DescribeEvents would list them."""
        with self._lock:
            env = self._lookup(name, region, access_key)
            found = [e for e in self._events if self._event_of(e, env)]
            return [self._event_json(e) for e in _newest_first(found)]

    def set_health(
        self,
        name: str,
        *,
        region: str | None = None,
        access_key: str | None = None,
        color: str | None = None,
        health_status: str | None = None,
        causes: Iterable[str] | None = None,
        request_count: int | None = None,
        status_2xx: int | None = None,
        status_3xx: int | None = None,
        status_4xx: int | None = None,
        status_5xx: int | None = None,
        latency_p99: float | None = None,
        latency_p95: float | None = None,
        latency_p50: float | None = None,
        latency: Mapping[str, float] | None = None,
    ) -> None:
        """Set what enhanced health reports while the environment is Ready.

        Give `color` (Green/Yellow/Red/Grey), `health_status` (Ok/Warning/Degraded/Severe/...),
        or both; one alone implies the other. Metrics left out keep their previous value;
        `latency` takes any of P999/P99/P95/P90/P85/P75/P50/P10 in seconds.
        """
        if color is not None and color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}")
        if health_status is not None and health_status not in HEALTH_COLORS:
            raise ValueError(f"health_status must be one of {sorted(HEALTH_COLORS)}")
        percentiles = dict(latency or {})
        for key, given in (("P99", latency_p99), ("P95", latency_p95), ("P50", latency_p50)):
            if given is not None:
                percentiles[key] = given
        if unknown := set(percentiles) - set(_LATENCY_DEFAULTS):
            raise ValueError(f"unknown latency percentiles {sorted(unknown)}")
        with self._lock:
            env = self._lookup(name, region, access_key)
            before = self._health(env)[1]
            if color is not None or health_status is not None:
                env.color = color or HEALTH_COLORS[health_status]  # type: ignore[index]
                env.health_status = health_status
                env.failed = False
            if causes is not None:
                env.causes = list(causes)
            counts = {
                "RequestCount": request_count,
                "Status2xx": status_2xx,
                "Status3xx": status_3xx,
                "Status4xx": status_4xx,
                "Status5xx": status_5xx,
            }
            env.metrics.update({k: v for k, v in counts.items() if v is not None})
            env.metrics.setdefault("Latency", {}).update(percentiles)
            self._health_event(env, before)

    def fail_update(
        self,
        name: str,
        message: str | None = None,
        *,
        region: str | None = None,
        access_key: str | None = None,
    ) -> None:
        """Make the environment's next UpdateEnvironment fail when it completes.

        The update is accepted and runs as usual; at the end the configuration rolls back, the
        environment is Ready with Red health, and ERROR events (`message` first, if given)
        explain it.
        """
        with self._lock:
            env = self._lookup(name, region, access_key)
            env.fail_next_update, env.failure_message = True, message

    def calls(self, action: str) -> list[Recorded]:
        """Recorded requests for `action`, e.g. `calls("UpdateEnvironment")`."""
        with self._lock:
            return [r for r in self.requests if r.action == action]

    def fail_next(
        self,
        status: int,
        code: str | None = None,
        count: int = 1,
        message: str | None = None,
        actions: Iterable[str] | None = None,
    ) -> None:
        """Answer the next `count` requests (for `actions`, if given) with an error.

        `code` defaults by status: 4xx → `Throttling` (how AWS throttles: HTTP 400), 503 →
        `ServiceUnavailable`, other 5xx → `InternalFailure`. Faults queue up in order.
        """
        if not 400 <= status <= 599:
            raise ValueError("a fault needs a 4xx or 5xx status")
        if code is None:
            code = "Throttling" if status < 500 else "InternalFailure"
            if status == 503:
                code = "ServiceUnavailable"
        text = message or _FAULT_MESSAGES.get(code, f"{code} (injected by the fake)")
        wanted = frozenset(actions) if actions is not None else None
        with self._lock:
            self._faults.append(_Fault(status, code, text, count, wanted))

    def clear_faults(self) -> None:
        """Forget the faults not served yet: AWS answers normally again."""
        with self._lock:
            self._faults.clear()

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/tail/"):
            # The presigned S3 URL a tail bundle is retrieved from.
            with self._lock:
                _, _, env_id, instance = request.path.split("/")[:4]
                found = [e for e in self._environments if e.id == env_id]
                text = "".join(
                    f"{line}\n"
                    for at, line in (found[0].log_lines if found else [])
                    if at in (None, instance)
                )
            status = 200 if found else 404
            return Response(text, status=status, content_type="text/plain")(environ, start_response)
        status, body, request_id = self._handle(request)
        response = Response(
            body,
            status=status,
            headers={"x-amzn-RequestId": request_id},
            content_type="text/xml",
        )
        return response(environ, start_response)

    def _handle(self, request: Request) -> tuple[int, bytes, str]:
        incoming = _incoming(request)
        with self._lock:
            self.requests.append(
                Recorded(
                    incoming.action,
                    incoming.params,
                    incoming.access_key,
                    incoming.region,
                    incoming.form,
                    incoming.request_id,
                )
            )
        # Recorded first: a client that timed out can still see that its request arrived.
        self._arrived()
        if self.latency:
            time.sleep(self.latency)
        rid = incoming.request_id
        try:
            with self._lock:
                result = self._answer(incoming)
            assert incoming.operation is not None  # _answer refuses unknown actions
            return 200, response_xml(incoming.operation, result, rid), rid
        except _AwsError as error:
            return error.status, error_xml(error.status, error.code, error.message, rid), rid
        except Exception as error:
            # A bug in the fake: say so in a body botocore can parse rather than werkzeug's HTML.
            _log.exception("the fake Elastic Beanstalk failed on %s", incoming.action)
            return 500, error_xml(500, "InternalFailure", f"fake bug: {error!r}", rid), rid

    def _answer(self, incoming: _Incoming) -> dict[str, Any] | None:
        action, form, problems = incoming.action, incoming.form, incoming.problems
        where = action or "(no Action)"
        # Contract checks come first so a faulted request still lands in `violations`.
        if incoming.operation is None:
            self._violation(where, "the service model has no such action")
        if form.get("Version") != API_VERSION:
            self._violation(where, f"Version is {form.get('Version')!r}, not {API_VERSION!r}")
        if incoming.service not in (None, "elasticbeanstalk"):
            self._violation(where, f"signed for service {incoming.service!r}, not elasticbeanstalk")
        for text in problems.missing:
            self._violation(where, f"missing required parameter {text}")
        for text in problems.invalid:
            self._violation(where, text)
        for text in problems.unknown:
            self._violation(where, f"unknown parameter {text}")

        if (fault := self._take_fault(action)) is not None:
            raise _AwsError(fault.status, fault.code, fault.message)
        access_key, region = incoming.access_key, incoming.region
        if access_key is None or region is None:
            raise _AwsError(
                403, "MissingAuthenticationToken", "Request is missing Authentication Token"
            )
        if access_key not in self.access_keys:
            raise _AwsError(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        if incoming.operation is None or form.get("Version") != API_VERSION:
            raise _AwsError(
                400,
                "InvalidAction",
                f"Could not find operation {action} for version {form.get('Version')}",
            )
        if problems.missing:
            raise _AwsError(
                400,
                "MissingParameter",
                f"The request must contain the parameter {problems.missing[0]}",
            )
        if problems.invalid:
            count = len(problems.invalid)
            raise _AwsError(
                400,
                "ValidationError",
                f"{count} validation error{'s' if count > 1 else ''} detected: "
                + "; ".join(problems.invalid),
            )
        handler = _HANDLERS.get(action)
        if handler is None:
            raise _AwsError(501, "NotImplemented", f"The fake does not implement {action}.")
        call = _Call(action, incoming.params, access_key, region, incoming.request_id)
        return getattr(self, handler)(call)

    def _violation(self, action: str, detail: str) -> None:
        self.violations.append(f"{action}: {detail}")

    def _take_fault(self, action: str) -> _Fault | None:
        for fault in self._faults:
            if fault.actions is None or action in fault.actions:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- handlers -------------------------------------------------------------------------

    def _describe_environments(self, call: _Call) -> dict[str, Any]:
        p = call.params
        names, ids = p.get("EnvironmentNames"), p.get("EnvironmentIds")
        deleted_back_to = p.get("IncludedDeletedBackTo")
        found = []
        for env in self._scope(call):
            if (names and env.name not in names) or (ids and env.id not in ids):
                continue
            if p.get("ApplicationName") not in (None, env.application):
                continue
            if p.get("VersionLabel") not in (None, env.version_label):
                continue
            if env.status == "Terminated":
                # IncludeDeleted defaults to true: recently terminated environments still show.
                if not p.get("IncludeDeleted", True):
                    continue
                if deleted_back_to and env.terminated_at and env.terminated_at < deleted_back_to:
                    continue
            found.append(self._description(env))
        page, token = _page(found, p)
        return {"Environments": page, "NextToken": token}

    def _describe_configuration_settings(self, call: _Call) -> dict[str, Any]:
        p = call.params
        if "TemplateName" in p:
            raise _AwsError(
                501, "NotImplemented", "The fake does not implement configuration templates."
            )
        if "EnvironmentName" not in p:
            self._violation(call.action, "neither EnvironmentName nor TemplateName given")
            raise _AwsError(
                400, "MissingParameter", "Either EnvironmentName or TemplateName must be specified."
            )
        application = p["ApplicationName"]
        if not any(env.application == application for env in self._scope(call)):
            raise _invalid(f"No Application named '{application}' found.")
        env = self._target(call)
        if env.application != application:
            raise _invalid(f"No Environment found for EnvironmentName = '{env.name}'.")
        return {
            "ConfigurationSettings": [
                {
                    "SolutionStackName": SOLUTION_STACK,
                    "PlatformArn": _platform_arn(env.region),
                    "ApplicationName": env.application,
                    "EnvironmentName": env.name,
                    "Description": env.description,
                    "DeploymentStatus": "deployed",
                    "DateCreated": env.created,
                    "DateUpdated": env.updated,
                    "OptionSettings": _option_settings(env),
                }
            ]
        }

    def _describe_application_versions(self, call: _Call) -> dict[str, Any]:
        p = call.params
        labels = p.get("VersionLabels")
        found = [
            v
            for v in self._versions
            if (v.access_key, v.region) == (call.access_key, call.region)
            and p.get("ApplicationName") in (None, v.application)
            and (not labels or v.label in labels)
        ]
        found.sort(key=lambda v: v.created, reverse=True)
        items = [self._version_json(v) for v in found]
        page, token = _page(items, p)
        return {"ApplicationVersions": page, "NextToken": token}

    def _create_application_version(self, call: _Call) -> dict[str, Any]:
        p = call.params
        application, label = p["ApplicationName"], p["VersionLabel"]
        if not any(env.application == application for env in self._scope(call)):
            raise _invalid(f"No Application named '{application}' found.")
        if self._version(application, label, call.region, call.access_key):
            raise _invalid(f"Application Version {label} already exists.")
        bundle = p.get("SourceBundle") or {}
        if (bundle.get("S3Bucket"), bundle.get("S3Key")) in self.missing_bundles:
            raise _invalid(
                f"Unable to download from S3 location (Bucket: {bundle.get('S3Bucket')} "
                f"Key: {bundle.get('S3Key')}). Reason: Not Found"
            )
        version = _Version(
            application, label, p.get("Description", ""), self._now, call.region, call.access_key
        )
        self._versions.append(version)
        return {"ApplicationVersion": self._version_json(version)}

    def _swap_environment_cnames(self, call: _Call) -> None:
        p = call.params
        # The API reference's conditions: a source name goes with a destination name and a
        # source ID with a destination ID (both, both), never a name with an ID.
        kinds = {
            side: {k for k in ("Name", "Id") if p.get(f"{side}Environment{k}") is not None}
            for side in ("Source", "Destination")
        }
        if kinds["Source"] and kinds["Destination"] and kinds["Source"] != kinds["Destination"]:
            self._violation(
                call.action, "a name on one side needs a name on the other, an ID an ID"
            )
            raise _AwsError(
                400,
                "MissingParameter",
                "SourceEnvironmentName goes with DestinationEnvironmentName, and "
                "SourceEnvironmentId with DestinationEnvironmentId.",
            )

        def named(side: str) -> _Call:
            params = {
                "EnvironmentName": p.get(f"{side}EnvironmentName"),
                "EnvironmentId": p.get(f"{side}EnvironmentId"),
            }
            return _Call(
                call.action,
                {k: v for k, v in params.items() if v is not None},
                call.access_key,
                call.region,
                call.request_id,
            )

        source, other = self._target(named("Source")), self._target(named("Destination"))
        if source is other:
            raise _invalid("Source and destination environments must differ.")
        _must_be_ready(source)
        _must_be_ready(other)
        source.cname, other.cname = other.cname, source.cname
        for env in (source, other):
            self._event(
                env, "Completed swapping CNAMEs for environments.", request_id=call.request_id
            )
        return None

    def _request_environment_info(self, call: _Call) -> None:
        env = self._target(call)
        if call.params.get("InfoType") != "tail":
            raise _AwsError(501, "NotImplemented", "The fake gathers tail logs only.")
        env.tail_requested = True
        self._event(env, "requestEnvironmentInfo is starting.", request_id=call.request_id)
        return None

    def _retrieve_environment_info(self, call: _Call) -> dict[str, Any]:
        env = self._target(call)
        if not env.tail_requested:
            return {"EnvironmentInfo": []}
        return {
            "EnvironmentInfo": [
                {
                    "InfoType": "tail",
                    "Ec2InstanceId": instance.id,
                    "SampleTimestamp": self._now,
                    "Message": f"{self.url}/tail/{env.id}/{instance.id}",
                }
                for instance in env.instances  # as AWS does: one per instance that sent one
            ]
        }

    @staticmethod
    def _version_json(v: _Version) -> dict[str, Any]:
        return {
            "ApplicationVersionArn": (
                f"arn:aws:elasticbeanstalk:{v.region}:{_account_of(v.access_key)}:"
                f"applicationversion/{v.application}/{v.label}"
            ),
            "ApplicationName": v.application,
            "Description": v.description,
            "VersionLabel": v.label,
            "SourceBundle": {"S3Bucket": "elasticbeanstalk-bundles", "S3Key": f"{v.label}.zip"},
            "DateCreated": v.created,
            "DateUpdated": v.created,
            "Status": "Processed",
        }

    def _update_environment(self, call: _Call) -> dict[str, Any]:
        p = call.params
        unsupported = sorted(
            set(p)
            - {
                "ApplicationName",
                "EnvironmentId",
                "EnvironmentName",
                "Description",
                "OptionSettings",
                "OptionsToRemove",
                "VersionLabel",
            }
        )
        if unsupported:
            raise _AwsError(
                501,
                "NotImplemented",
                f"The fake does not implement UpdateEnvironment's {unsupported}.",
            )
        if "VersionLabel" in p and ("OptionSettings" in p or "OptionsToRemove" in p):
            # Documented: "Attempting to update both the release and configuration is not
            # allowed and Elastic Beanstalk returns an InvalidParameterCombination error."
            raise _AwsError(
                400,
                "InvalidParameterCombination",
                "An application version and configuration settings cannot be updated at once.",
            )
        env = self._target(call)
        if p.get("ApplicationName") not in (None, env.application):
            raise _invalid(f"No Environment found for EnvironmentName = '{env.name}'.")
        _must_be_ready(env)
        label = p.get("VersionLabel")
        if label is not None and not self._version(
            env.application, label, env.region, env.access_key
        ):
            raise _invalid(f"No Application Version named '{label}' found.")
        properties = dict(env.properties)
        options = []
        for option in p.get("OptionSettings", []):
            if option.get("Namespace") == _ENV_PROPERTIES:
                _check_property(option["OptionName"], option.get("Value", ""))
                properties[option["OptionName"]] = option.get("Value", "")
            else:
                options.append(option)
        for option in p.get("OptionsToRemove", []):
            if option.get("Namespace") != _ENV_PROPERTIES:
                raise _AwsError(
                    501, "NotImplemented", "The fake removes environment properties only."
                )
            properties.pop(option["OptionName"], None)
        total = sum(len(f"{k}={v}".encode()) for k, v in properties.items())
        if total > _PROPERTIES_BYTES:
            raise _invalid(
                f"Environment properties cannot exceed {_PROPERTIES_BYTES} bytes in total "
                f"(KEY=VALUE); these come to {total}."
            )
        new = _apply_options(env.config, options)
        previous = env.config
        env.config = new
        if "Description" in p:
            env.description = p["Description"]
        env.operation = _Operation(
            "update",
            self._now + timedelta(seconds=self.update_seconds),
            call.request_id,
            previous=previous,
            failure=env.failure_message,
            failing=env.fail_next_update,
            version_label=label,
            properties=properties,
        )
        env.fail_next_update, env.failure_message = False, None
        env.status = "Updating"
        env.updated = self._now
        self._event(env, "Environment update is starting.", request_id=call.request_id)
        if label is not None:
            self._event(
                env, f"Deploying new version to instance(s): {label}.", request_id=call.request_id
            )
        else:
            self._event(
                env,
                f"Updating environment {env.name}'s configuration settings.",
                request_id=call.request_id,
            )
        return self._description(env)

    def _restart_app_server(self, call: _Call) -> None:
        env = self._target(call)
        _must_be_ready(env)
        env.operation = _Operation(
            "restart", self._now + timedelta(seconds=self.restart_seconds), call.request_id
        )
        env.status = "Updating"
        env.updated = self._now
        self._event(env, "restartAppServer is starting.", request_id=call.request_id)
        return None

    def _describe_environment_health(self, call: _Call) -> dict[str, Any]:
        env = self._target(call)
        if not env.enhanced_health:
            # The operation's documented error for a request it cannot serve.
            raise _AwsError(
                400,
                "InvalidRequestException",
                f"Environment {env.name} does not have enhanced health reporting enabled.",
            )
        wanted = set(call.params.get("AttributeNames", []))
        every = "All" in wanted
        _, health_status, color = self._health(env)
        full: dict[str, Any] = {
            "Status": env.status,  # operational status: see _MODEL_ERRATA
            "HealthStatus": health_status,
            "Color": color,
            "Causes": list(self._causes(env)),
            "ApplicationMetrics": self._metrics(env, len(env.instances)),
            "InstancesHealth": self._instances_health(env, health_status),
            "RefreshedAt": self._now,
        }
        # Without AttributeNames the service answers with the name alone (documented).
        chosen = {k: v for k, v in full.items() if every or k in wanted}
        return {"EnvironmentName": env.name, **chosen}

    def _describe_instances_health(self, call: _Call) -> dict[str, Any]:
        env = self._target(call)
        wanted = set(call.params.get("AttributeNames", []))
        every = "All" in wanted
        _, health_status, color = self._health(env)
        share = self._metrics(env, len(env.instances), per_instance=True)
        listed = []
        for instance in env.instances:
            full: dict[str, Any] = {
                "HealthStatus": health_status,
                "Color": color,
                "Causes": list(self._causes(env)),
                "LaunchedAt": instance.launched_at,
                "ApplicationMetrics": share,
                "System": {
                    "CPUUtilization": {"User": 12.5, "System": 1.5, "Idle": 85.0, "IOWait": 0.5},
                    "LoadAverage": [0.12, 0.1, 0.08],
                },
                "Deployment": {
                    "VersionLabel": env.version_label,
                    "DeploymentId": 1,
                    "Status": "Deployed",
                    "DeploymentTime": instance.launched_at,
                },
                "AvailabilityZone": instance.zone,
                "InstanceType": env.instance_type,
            }
            chosen = {k: v for k, v in full.items() if every or k in wanted}
            listed.append({"InstanceId": instance.id, **chosen})
        result: dict[str, Any] = {"InstanceHealthList": listed}
        if every or "RefreshedAt" in wanted:
            result["RefreshedAt"] = self._now
        return result

    def _describe_environment_resources(self, call: _Call) -> dict[str, Any]:
        env = self._target(call)
        return {
            "EnvironmentResources": {
                "EnvironmentName": env.name,
                "AutoScalingGroups": [{"Name": env.auto_scaling_group}],
                "Instances": [{"Id": instance.id} for instance in env.instances],
                "LaunchConfigurations": [{"Name": env.launch_configuration}],
                "LaunchTemplates": [],
                "LoadBalancers": [{"Name": env.load_balancer}] if env.load_balanced else [],
                "Triggers": [],
                "Queues": [],
            }
        }

    def _describe_events(self, call: _Call) -> dict[str, Any]:
        p = call.params
        floor = SEVERITIES.index(p.get("Severity", "TRACE"))
        found = []
        for event in self._events:
            if (event.access_key, event.region) != (call.access_key, call.region):
                continue
            if p.get("ApplicationName") not in (None, event.application):
                continue
            if p.get("EnvironmentName") not in (None, event.environment):
                continue
            if "EnvironmentId" in p and not self._event_has_id(event, p["EnvironmentId"]):
                continue
            if p.get("RequestId") not in (None, event.request_id):
                continue
            if SEVERITIES.index(event.severity) < floor:
                continue
            # StartTime is inclusive, EndTime exclusive (API reference).
            if "StartTime" in p and event.date < p["StartTime"]:
                continue
            if "EndTime" in p and event.date >= p["EndTime"]:
                continue
            found.append(event)
        page, token = _page([self._event_json(e) for e in _newest_first(found)], p)
        return {"Events": page, "NextToken": token}

    # -- lookups --------------------------------------------------------------------------

    def _version(
        self, application: str, label: str, region: str, access_key: str
    ) -> _Version | None:
        for version in self._versions:
            if (version.application, version.label, version.region, version.access_key) == (
                application,
                label,
                region,
                access_key,
            ):
                return version
        return None

    def _scope(self, call: _Call) -> list[_Environment]:
        return [
            env
            for env in self._environments
            if (env.access_key, env.region) == (call.access_key, call.region)
        ]

    def _target(self, call: _Call) -> _Environment:
        """The live environment a call names by EnvironmentId or EnvironmentName."""
        p = call.params
        name, env_id = p.get("EnvironmentName"), p.get("EnvironmentId")
        if name is None and env_id is None:
            self._violation(call.action, "neither EnvironmentName nor EnvironmentId given")
            raise _AwsError(
                400,
                "MissingParameter",
                "Either EnvironmentName or EnvironmentId must be specified.",
            )
        for env in self._scope(call):
            if env.status == "Terminated":
                continue
            if (env_id is None or env.id == env_id) and (name is None or env.name == name):
                return env
        if env_id is not None:
            raise _invalid(f"No Environment found for EnvironmentId = '{env_id}'.")
        raise _invalid(f"No Environment found for EnvironmentName = '{name}'.")

    def _find(self, name: str, region: str | None, access_key: str | None) -> list[_Environment]:
        return [
            env
            for env in self._environments
            if env.name == name
            and region in (None, env.region)
            and access_key in (None, env.access_key)
        ]

    def _lookup(self, name: str, region: str | None, access_key: str | None) -> _Environment:
        found = self._find(name, region, access_key)
        if not found:
            raise KeyError(f"no environment {name!r} (region={region}, access_key={access_key})")
        if len(found) > 1:
            raise ValueError(
                f"{len(found)} environments are named {name!r}: give region/access_key"
            )
        return found[0]

    def _event_has_id(self, event: _Event, env_id: str) -> bool:
        return any(self._event_of(event, env) for env in self._environments if env.id == env_id)

    @staticmethod
    def _event_of(event: _Event, env: _Environment) -> bool:
        return (event.environment, event.access_key, event.region) == (
            env.name,
            env.access_key,
            env.region,
        )

    # -- lifecycle ------------------------------------------------------------------------

    def _new_environment(
        self, name: str, region: str, access_key: str, application: str, config: _Config
    ) -> _Environment:
        env_id = "e-" + self._random_id(string.ascii_lowercase + string.digits, 10)
        suffix = self._random_id(string.ascii_uppercase + string.digits, 13)
        load_balancer = f"awseb-{env_id[:3]}-AWSEBLoa-{suffix}"
        created = self._now - timedelta(days=1)
        self._seq += 1
        return _Environment(
            name=name,
            id=env_id,
            application=application,
            region=region,
            access_key=access_key,
            account=_account_of(access_key),
            config=config,
            status="Ready",
            color="Green",
            health_status=None,
            version_label="v1",
            created=created,
            updated=created,
            cname=f"{name}.{region}.elasticbeanstalk.com",
            endpoint=f"{load_balancer}-{self._random_id(string.digits, 10)}.{region}.elb.amazonaws.com",
            load_balancer=load_balancer,
            auto_scaling_group=(
                f"awseb-{env_id}-stack-AWSEBAutoScalingGroup-{self._random_id(string.ascii_uppercase + string.digits, 12)}"
            ),
            launch_configuration=(
                f"awseb-{env_id}-stack-AWSEBAutoScalingLaunchConfiguration-{self._random_id(string.ascii_uppercase + string.digits, 12)}"
            ),
            seq=self._seq,
        )

    def _begin(self, env: _Environment, status: str) -> None:
        """Put a new environment in `status`, scheduling whatever operation that implies."""
        request_id = str(uuid.uuid4())
        if status == "Launching":
            env.created = env.updated = self._now
            self._event(env, "createEnvironment is starting.", request_id=request_id)
            env.operation = _Operation(
                "launch", self._now + timedelta(seconds=self.launch_seconds), request_id
            )
            env.status = "Launching"
            return
        # Anything past launching has a history: created a day ago, launched, instances up.
        self._event(env, "createEnvironment is starting.", request_id=request_id, at=env.created)
        launched = env.created + timedelta(seconds=self.launch_seconds)
        env.updated = launched
        self._resize(env, env.target_instances, at=launched, quiet=True)
        self._event(env, f"Successfully launched environment: {env.name}", at=launched)
        if status == "Updating":
            env.operation = _Operation(
                "update",
                self._now + timedelta(seconds=self.update_seconds),
                request_id,
                previous=env.config,
            )
            self._event(env, "Environment update is starting.", request_id=request_id)
        elif status == "Terminating":
            env.operation = _Operation(
                "terminate", self._now + timedelta(seconds=self.terminate_seconds), request_id
            )
            self._event(env, "terminateEnvironment is starting.", request_id=request_id)
        elif status == "Terminated":
            env.instances.clear()
            env.terminated_at = env.updated = self._now
            self._event(env, "terminateEnvironment completed successfully.", request_id=request_id)
        env.status = status

    def _finish(self, env: _Environment) -> None:
        operation = env.operation
        assert operation is not None
        env.operation = None
        env.updated = self._now
        rid = operation.request_id
        before = "Pending" if operation.kind == "launch" else _ready_health(env)
        if operation.kind == "launch":
            env.status = "Ready"
            self._resize(env, env.target_instances)
            self._event(env, f"Successfully launched environment: {env.name}")
            self._event(env, "createEnvironment completed successfully.", request_id=rid)
        elif operation.kind == "restart":
            env.status = "Ready"
            self._event(env, "restartAppServer completed successfully.", request_id=rid)
        elif operation.kind == "terminate":
            env.status = "Terminated"
            env.terminated_at = self._now
            self._resize(env, 0)
            self._event(env, "terminateEnvironment completed successfully.", request_id=rid)
            return
        elif operation.failing:
            assert operation.previous is not None
            # The service rolls the configuration back and leaves the environment Ready, red.
            env.config = operation.previous
            env.status = "Ready"
            env.failed = True
            env.color, env.health_status = "Red", "Degraded"
            env.causes = [operation.failure or "Configuration update failed."]
            if operation.failure:
                self._event(env, operation.failure, "ERROR", request_id=rid)
            self._event(env, "Failed to deploy configuration.", "ERROR", request_id=rid)
            self._event(
                env, "Environment update completed unsuccessfully.", "ERROR", request_id=rid
            )
        else:
            assert operation.previous is not None
            if env.failed:
                # A successful update clears the red the last failure left behind.
                env.failed = False
                env.color, env.health_status, env.causes = "Green", None, []
            if env.instance_type != operation.previous.instance_types[0]:
                self._resize(env, 0)  # every instance is replaced by one of the new type
            if operation.version_label is not None:
                env.version_label = operation.version_label
                self._event(
                    env,
                    "New application version was deployed to running EC2 instances.",
                    request_id=rid,
                )
            if operation.properties is not None:
                env.properties = operation.properties
            low, high = env.config.min_size, env.config.max_size
            env.target_instances = min(max(env.target_instances, low), high)
            self._resize(env, env.target_instances)
            env.status = "Ready"
            self._event(
                env, "Successfully deployed new configuration to environment.", request_id=rid
            )
            self._event(env, "Environment update completed successfully.", request_id=rid)
        self._health_event(env, before)

    def _resize(
        self, env: _Environment, count: int, at: datetime | None = None, quiet: bool = False
    ) -> None:
        when = at or self._now
        zones = ("a", "b", "c")
        while len(env.instances) > count:
            gone = env.instances.pop()
            if not quiet:
                self._event(
                    env,
                    f"Removed EC2 instance '{gone.id}' from Auto Scaling Group "
                    f"'{env.auto_scaling_group}'.",
                    at=when,
                )
        while len(env.instances) < count:
            zone = env.region + zones[len(env.instances) % len(zones)]
            new = _Instance("i-" + self._random_id("0123456789abcdef", 17), when, zone)
            env.instances.append(new)
            if not quiet:
                # Wording from the service's own events, as quoted in the `eb scale` docs.
                self._event(
                    env,
                    f"Added EC2 instance '{new.id}' to Auto Scaling Group "
                    f"'{env.auto_scaling_group}'.",
                    at=when,
                )

    def _random_id(self, alphabet: str, length: int) -> str:
        return "".join(self._ids.choice(alphabet) for _ in range(length))

    def _event(
        self,
        env: _Environment,
        message: str,
        severity: str = "INFO",
        request_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self._seq += 1
        self._events.append(
            _Event(
                at or self._now,
                self._seq,
                message,
                severity,
                env.application,
                env.name,
                request_id,
                env.access_key,
                env.region,
            )
        )

    # -- health ---------------------------------------------------------------------------

    def _health(self, env: _Environment) -> tuple[str, str, str]:
        """(legacy Health colour, enhanced HealthStatus, enhanced Color) as the API shows them."""
        if env.status == "Launching":
            return "Grey", "Pending", "Grey"
        if env.status == "Updating":
            # Legacy health checks are suspended during updates (docs: "Grey ... during an
            # UpdateEnvironment or RestartEnvironment request"); enhanced health says Info.
            return "Grey", "Info", "Green"
        if env.status in ("Terminating", "Terminated"):
            return "Grey", "Suspended", "Grey"
        color = env.color if env.instances else "Grey"  # no instance, nothing to measure
        return color, _ready_health(env), color

    def _causes(self, env: _Environment) -> list[str]:
        if env.status == "Updating":
            return ["Configuration update is in progress on all instances."]
        return env.causes

    def _health_event(self, env: _Environment, before: str) -> None:
        after = self._health(env)[1]
        if after == before:
            return
        worse = ("Ok", "Info", "Warning", "Degraded", "Severe")
        rising = before in worse and after in worse and worse.index(after) > worse.index(before)
        self._event(
            env,
            f"Environment health has transitioned from {before} to {after}."
            + (f" {env.causes[0]}" if env.causes else ""),
            "WARN" if rising else "INFO",
        )

    def _metrics(
        self, env: _Environment, instances: int, per_instance: bool = False
    ) -> dict[str, Any]:
        if env.status != "Ready" or not instances:
            return {"RequestCount": 0}
        m = env.metrics
        total = m.get("RequestCount", _REQUESTS_PER_INSTANCE * instances)
        codes = {k: m.get(k, 0) for k in ("Status3xx", "Status4xx", "Status5xx")}
        codes["Status2xx"] = m.get("Status2xx", max(total - sum(codes.values()), 0))
        if per_instance:
            total = total // instances
            codes = {k: v // instances for k, v in codes.items()}
        if not total:
            return {"RequestCount": 0}
        latency = {**_LATENCY_DEFAULTS, **m.get("Latency", {})}
        return {
            "Duration": 10,
            "RequestCount": total,
            "StatusCodes": {
                k: codes[k] for k in ("Status2xx", "Status3xx", "Status4xx", "Status5xx")
            },
            "Latency": latency,
        }

    @staticmethod
    def _instances_health(env: _Environment, health_status: str) -> dict[str, int]:
        buckets = dict.fromkeys(
            ("NoData", "Unknown", "Pending", "Ok", "Info", "Warning", "Degraded", "Severe"), 0
        )
        bucket = "Unknown" if health_status == "Suspended" else health_status
        buckets[bucket] += len(env.instances)
        return buckets

    # -- representations ------------------------------------------------------------------

    def _description(self, env: _Environment) -> dict[str, Any]:
        health, health_status, _ = self._health(env)
        return {
            "EnvironmentName": env.name,
            "EnvironmentId": env.id,
            "ApplicationName": env.application,
            "VersionLabel": env.version_label,
            "SolutionStackName": SOLUTION_STACK,
            "PlatformArn": _platform_arn(env.region),
            "Description": env.description,
            "EndpointURL": env.endpoint,
            "CNAME": env.cname,
            "DateCreated": env.created,
            "DateUpdated": env.updated,
            "Status": env.status,
            "AbortableOperationInProgress": (
                env.operation is not None and env.operation.kind == "update"
            ),
            "Health": health,
            "HealthStatus": health_status,
            "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
            "EnvironmentLinks": [],
            "EnvironmentArn": (
                f"arn:aws:elasticbeanstalk:{env.region}:{env.account}:environment/"
                f"{env.application}/{env.name}"
            ),
        }

    def _snapshot(self, env: _Environment) -> dict[str, Any]:
        health, health_status, color = self._health(env)
        operation = env.operation
        return {
            "name": env.name,
            "id": env.id,
            "application": env.application,
            "region": env.region,
            "access_key": env.access_key,
            "status": env.status,
            "health": health,
            "health_status": health_status,
            "color": color,
            "causes": list(self._causes(env)),
            "min_size": env.config.min_size,
            "max_size": env.config.max_size,
            "instance_type": env.instance_type,
            "instance_types": list(env.config.instance_types),
            "instances": len(env.instances),
            "instance_ids": [instance.id for instance in env.instances],
            "version_label": env.version_label,
            "load_balancer": env.load_balancer,
            "operation": operation.kind if operation else None,
            "operation_ends_at": operation.ends_at if operation else None,
            "update_will_fail": env.fail_next_update,
        }

    @staticmethod
    def _event_json(event: _Event) -> dict[str, Any]:
        return {
            "EventDate": event.date,
            "Message": event.message,
            "ApplicationName": event.application,
            "EnvironmentName": event.environment,
            "Severity": event.severity,
            "RequestId": event.request_id,
        }


# ---------------------------------------------------------------------------------------------
# Helpers.


def _incoming(request: Request) -> _Incoming:
    # AWS Query takes the parameters from a POST body or, less often, the query string.
    form = {**request.args.to_dict(), **request.form.to_dict()}
    access_key, region, service = _credential(request, form)
    action = form.get("Action", "")
    model = load_model()
    operation = model.operation_model(action) if action in model.operation_names else None
    if operation is not None:
        params, problems = decode_params(operation, form)
    else:
        params, problems = dict(form), _Problems()
    return _Incoming(
        action, operation, params, problems, form, access_key, region, service, str(uuid.uuid4())
    )


def _credential(
    request: Request, form: Mapping[str, str]
) -> tuple[str | None, str | None, str | None]:
    """(access key, region, service) from the SigV4 credential scope, header or presigned."""
    found = _CREDENTIAL.search(request.headers.get("Authorization", ""))
    if found is None and "X-Amz-Credential" in form:
        found = _CREDENTIAL.search("Credential=" + form["X-Amz-Credential"])
    if found is None:
        return None, None, None
    return found.group(1), found.group(3), found.group(4)


def _hex16(name: str) -> str:
    # From the name, not the seeded ids: another draw would move every later instance ID
    # (and the transcripts in the docs that show them).
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _account_of(access_key: str) -> str:
    # A stable 12-digit account per key, so ARNs differ between keys as they would in AWS.
    return str(int(hashlib.sha256(access_key.encode()).hexdigest(), 16))[:12]


def _platform_arn(region: str) -> str:
    return f"arn:aws:elasticbeanstalk:{region}::platform/{PLATFORM}"


def _ready_health(env: _Environment) -> str:
    """The enhanced health status the environment reports whenever it is Ready."""
    if not env.instances:
        return "NoData"
    return env.health_status or _STATUS_OF_COLOR[env.color]


def _must_be_ready(env: _Environment) -> None:
    if env.status != "Ready":
        # Verbatim from the service: clients match on this text.
        raise _invalid(
            f"Environment named {env.name} is in an invalid state for this operation. Must be Ready."
        )


def _option_settings(env: _Environment) -> list[dict[str, str]]:
    asg, launch = "AWSEBAutoScalingGroup", "AWSEBAutoScalingLaunchConfiguration"
    settings = [
        (_ASG, "Availability Zones", "Any", asg),
        (_ASG, "Cooldown", "360", asg),
        (_ASG, "MaxSize", str(env.config.max_size), asg),
        (_ASG, "MinSize", str(env.config.min_size), asg),
        (_LAUNCH, "InstanceType", env.instance_type, launch),
        (_EC2, "EnableSpot", "false", None),
        (_EC2, "InstanceTypes", ",".join(env.config.instance_types), None),
        (
            "aws:elasticbeanstalk:healthreporting:system",
            "SystemType",
            "enhanced" if env.enhanced_health else "basic",
            None,
        ),
    ]
    if env.load_balanced:
        settings += [
            ("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced", None),
            ("aws:elasticbeanstalk:environment", "LoadBalancerType", env.load_balancer_type, None),
        ]
    else:
        settings.append(
            ("aws:elasticbeanstalk:environment", "EnvironmentType", "SingleInstance", None)
        )
    settings += [(_ENV_PROPERTIES, k, v, None) for k, v in env.properties.items()]
    out = []
    for namespace, option, value, resource in sorted(settings, key=lambda s: (s[0], s[1])):
        item = {"Namespace": namespace, "OptionName": option, "Value": value}
        if resource:
            item["ResourceName"] = resource
        out.append(item)
    return out


# The developer guide's "Environment property limits" (Configuring environment properties):
# names of alphanumerics and `_ . : / + \ - @` up to 128 characters; values of alphanumerics,
# white space and `_ . : / = + \ - @ ' "` up to 256; 4,096 bytes in all as KEY=VALUE. The
# service words its refusal as it does any option's (`Invalid option value: …`).
_PROPERTY_NAME = re.compile(r"[\w.:/+\\@-]+")
_PROPERTY_VALUE = re.compile(r"[\w\s.:/=+\\@'\"-]*")
_PROPERTY_NAME_MAX, _PROPERTY_VALUE_MAX, _PROPERTIES_BYTES = 128, 256, 4096


def _check_property(name: str, value: str) -> None:
    """The 400 the service answers to an environment property past its limits, if any."""
    why = None
    if not _PROPERTY_NAME.fullmatch(name):
        why = "The option name contains a character that is not allowed."
    elif len(name) > _PROPERTY_NAME_MAX:
        why = f"The option name is longer than {_PROPERTY_NAME_MAX} characters."
    elif not _PROPERTY_VALUE.fullmatch(value):
        why = "The value contains a character that is not allowed."
    elif len(value) > _PROPERTY_VALUE_MAX:
        why = f"The value is longer than {_PROPERTY_VALUE_MAX} characters."
    if why is not None:
        raise _invalid(
            f"Invalid option value: '{value}' (Namespace: '{_ENV_PROPERTIES}', OptionName: "
            f"'{name}'): {why}"
        )


def _apply_options(config: _Config, options: list[dict[str, Any]]) -> _Config:
    """The configuration after `options`, or the 400 the service would answer."""
    min_size, max_size, types = config.min_size, config.max_size, config.instance_types
    for option in options:
        namespace, name = option.get("Namespace"), option.get("OptionName")
        value = option.get("Value", "")

        def bad(
            why: str, namespace: Any = namespace, name: Any = name, value: Any = value
        ) -> _AwsError:
            return _invalid(
                f"Invalid option value: '{value}' (Namespace: '{namespace}', OptionName: "
                f"'{name}'): {why}"
            )

        if (namespace, name) in ((_ASG, "MinSize"), (_ASG, "MaxSize")):
            if not re.fullmatch(r"\d+", value):
                raise bad("Value is not an integer.")
            number = int(value)
            # The option reference lists 1-10000 for both, yet setting both to 0 is the known
            # way to park an environment without terminating it; the fake allows 0.
            if number > 10000:
                raise bad("Value is greater than 10000.")
            if name == "MinSize":
                min_size = number
            else:
                max_size = number
        elif (namespace, name) in ((_LAUNCH, "InstanceType"), (_EC2, "InstanceTypes")):
            listed = tuple(t.strip() for t in value.split(",") if t.strip())
            if not listed:
                raise bad("At least one instance type is required.")
            for instance_type in listed:
                if instance_type not in INSTANCE_TYPES:
                    raise bad(f"'{instance_type}' is not a valid instance type.")
            # Both options name the same thing; the service keeps them in step.
            types = listed if name == "InstanceTypes" else (listed[0], *types[1:])
        else:
            raise _AwsError(
                400,
                "ConfigurationValidationException",
                f"Configuration validation exception: Invalid option specification (Namespace: "
                f"'{namespace}', OptionName: '{name}'): Unknown configuration setting.",
            )
    if min_size > max_size:
        raise _invalid(
            f"Invalid option value: '{min_size}' (Namespace: '{_ASG}', OptionName: 'MinSize'): "
            f"MinSize ({min_size}) must be less than or equal to MaxSize ({max_size})."
        )
    return replace(config, min_size=min_size, max_size=max_size, instance_types=types)


def _newest_first(events: list[_Event]) -> list[_Event]:
    return sorted(events, key=lambda e: (e.date, e.seq), reverse=True)


def _page(
    items: list[dict[str, Any]], params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `items` after NextToken, at most MaxRecords long, and the next token."""
    token = params.get("NextToken")
    start = 0
    if token is not None:
        if not token.isdigit():
            raise _invalid("Invalid NextToken.")
        start = int(token)
    size = params.get("MaxRecords", 1000)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)
