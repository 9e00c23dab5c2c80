"""AWS Elastic Beanstalk client (boto3) behind the same `Platform` interface as Heroku.

An environment has one process type, `web`; its quantity is the number of instances.
scale sets the Auto Scaling group's MinSize and MaxSize to the count asked for (and the
instance type if a size is given); kill is a scale to zero; restart is restart_app_server.
Updates take minutes and lock the environment, so changes return at once and
`wait_until_settled` follows them to Ready, explaining failures with `describe_events`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any

import boto3
import botocore.exceptions
import requests
from botocore.config import Config as BotoConfig

from bot.config import trim_aws_keys
from bot.http_bodies import UNREADABLE, fetch_tail
from bot.platforms.aws_errors import REFUSED_CREDENTIALS, THROTTLING, botocore_error
from bot.platforms.base import (
    NO_MAINTENANCE,
    RESTART_WHOLE,
    AppStatus,
    Dyno,
    Formation,
    LogTail,
    NotSupported,
    PlatformError,
    ReadFailed,
    Release,
    Settled,
    Targets,
    Throttled,
    Traffic,
    lost_answer,
)
from bot.platforms.cloudwatch import request_metric, requests_per_minute
from bot.platforms.together import read_together
from policies.redact import MASK, mask
from policies.sizes import unit_of
from policies.slack_text import clip, code, escape, listed

PROCESS_TYPE = "web"
SERVICE = "Elastic Beanstalk"  # as error messages name it
# How often a follow-up asks whether an update has finished (tests shorten it).
POLL_SECONDS = 10.0
TAIL_WAIT_SECONDS = 60.0  # instances upload a tail bundle within seconds
# The events (newest first, AWS's wording) that say a version went out: a deployment's end,
# or the launch of an environment created with it.
_DEPLOYED = re.compile(r"^(New application version was deployed|Successfully launched environment)")
# To date the running version, events are read newest first, a page at a time, until its
# deployment is found: a status costs a page, not DescribeEvents' 1,000, and past the cap
# the age is said to be unknown rather than guessed.
EVENTS_PAGE, EVENTS_MOST = 50, 200
# DescribeApplicationVersions' largest page, and how many are read for labels that differ
# only by case (AWS's quota is 1,000 versions a region unless raised).
VERSIONS_PAGE, VERSIONS_PAGES = 1000, 10
ASG = "aws:autoscaling:asg"
LAUNCH = "aws:autoscaling:launchconfiguration"
EC2 = "aws:ec2:instances"
ENV_PROPERTIES = "aws:elasticbeanstalk:application:environment"
HEALTH_SYSTEM = "aws:elasticbeanstalk:healthreporting:system"
ENVIRONMENT = "aws:elasticbeanstalk:environment"
BASIC_HEALTH = "enhanced health reporting is off, so there are no causes or request figures"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOTO_CONFIG = BotoConfig(
    connect_timeout=3,
    read_timeout=15,
    retries={"mode": "standard", "max_attempts": 4},
)
# A change is sent once: one answered 5xx may have been made, and botocore's retry would then
# meet "invalid state" and read as "busy, try again" (a throttled change says try again).
_WRITE_CONFIG = _BOTO_CONFIG.merge(
    BotoConfig(retries={"mode": "standard", "total_max_attempts": 1})
)


class BeanstalkPlatform:
    """`Platform` for Beanstalk environments in one region with one set of credentials."""

    name = "beanstalk"
    unit = unit_of(name)

    def __init__(self, region: str, profile: str | None = None) -> None:
        self.region = region
        self.profile = profile
        self._clients: dict[bool, Any] = {}  # by `write`: changes go without retries
        self._cloudwatch_client: Any = None
        # Each environment's latest change: when it began by the service's clock, and its
        # request ID. The events from then on that carry no other request's ID say how it
        # ended (as the EB CLI reads them): those since `DateUpdated` alone had held the
        # last change's failure too, and a scale had read every event the environment kept.
        self._asked: dict[str, tuple[datetime, str | None]] = {}
        # When each environment's version was deployed, by (version, DateUpdated) read then.
        self._deployed: dict[str, tuple[tuple[Any, Any], datetime | None, bool]] = {}

    def _eb(self, write: bool = False) -> Any:
        # Built on first use: start-up never touches AWS, and a bad profile is reported per app.
        client = self._clients.get(write)
        if client is None:
            try:
                session = self._session()
            except botocore.exceptions.ProfileNotFound:
                raise PlatformError(
                    f"The AWS profile {code(self.profile)} is not configured on the bot. "
                    "An admin should add it (or fix the registry)."
                ) from None
            # A missing region raises here, inside `_call`, which words it for the app.
            config = _WRITE_CONFIG if write else _BOTO_CONFIG
            client = self._clients[write] = session.client("elasticbeanstalk", config=config)
        return client

    def _session(self) -> boto3.Session:
        trim_aws_keys(os.environ)  # boto3 reads the keys there, as they were pasted
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def settles_slowly(self) -> bool:
        return True

    def traffic(self, app: str, minutes: int, now: datetime, alias: str | None = None) -> Traffic:
        """Requests per minute from CloudWatch, and the last 10 s from the health report.
        Why the minutes are missing names the app `alias`, the name it was asked by."""
        resources = self._call("describe_environment_resources", app, EnvironmentName=app)
        balancers = resources.get("EnvironmentResources", {}).get("LoadBalancers", [])
        per_minute = [0] * minutes
        problem = None
        if not balancers:
            # CloudWatch counts requests at the load balancer: without one there are none to
            # read, and zeros would show a busy single-instance environment as an idle one.
            problem = (
                f"`{alias or app}` is a single-instance environment, with no load balancer "
                "to count them."
            )
        elif request_metric(balancers[0]["Name"]) is None:
            problem = (
                f"`{alias or app}` is behind a Network Load Balancer, which counts connections, "
                "not requests."
            )
        else:
            try:
                per_minute = requests_per_minute(
                    self._cloudwatch(app), balancers[0]["Name"], now, minutes, app
                )
            except PlatformError as error:
                # Enhanced health still answers: show it, and say why the minutes are missing
                # (kept, not raised: named here as `Registered` names what is raised).
                error.name_as(app, alias or app)
                problem = str(error)
        metrics, latest_problem = self._latest_metrics(app, alias or app)
        codes = metrics.get("StatusCodes") or {}
        latency = metrics.get("Latency") or {}
        return Traffic(
            per_minute=tuple(per_minute),
            per_minute_problem=problem,
            latest_problem=latest_problem,
            unreported_minutes=0 if problem else minutes - len(per_minute),
            latest_seconds=int(metrics.get("Duration") or 10),
            latest_requests=int(metrics.get("RequestCount") or 0),
            latest_statuses={key[-3:].lower(): int(n) for key, n in codes.items()},
            latency_ms={
                name.lower(): value * 1000
                for name, value in latency.items()
                if name in ("P50", "P90", "P95", "P99")
            },
        )

    def _latest_metrics(self, app: str, said: str) -> tuple[dict[str, Any], str | None]:
        """Enhanced health's ApplicationMetrics, or none and why when the environment reports
        basic health only (AWS then refuses DescribeEnvironmentHealth, as `status` meets)."""
        try:
            return self.health_metrics(app)[1], None
        except Throttled:
            raise  # another read now would only add to the account's throttle
        except PlatformError:
            if self._settings(self._environment(app))["health_system"] != "basic":
                raise
        return {}, f"enhanced health reporting is off for `{said}`."

    def health_metrics(self, app: str) -> tuple[datetime | None, dict[str, Any]]:
        """Enhanced health's ApplicationMetrics (the last `Duration` seconds, usually 10)
        and when the service computed them."""
        health = self._call(
            "describe_environment_health",
            app,
            EnvironmentName=app,
            AttributeNames=["ApplicationMetrics", "RefreshedAt"],
        )
        return health.get("RefreshedAt"), health.get("ApplicationMetrics") or {}

    def environment_health(self, app: str) -> dict[str, Any]:
        """Enhanced health's colour, status and causes, in one call (`status` makes four):
        {"Color": "Red", "HealthStatus": "Severe", "Causes": [...]}."""
        return self._call(
            "describe_environment_health",
            app,
            EnvironmentName=app,
            AttributeNames=["Color", "HealthStatus", "Causes"],
        )

    def _cloudwatch(self, app: str) -> Any:
        if self._cloudwatch_client is None:
            try:
                session = self._session()
                self._cloudwatch_client = session.client("cloudwatch", config=_BOTO_CONFIG)
            except botocore.exceptions.BotoCoreError as error:
                raise botocore_error(error, "CloudWatch", app) from None
        return self._cloudwatch_client

    def formation(self, app: str) -> tuple[Formation, ...]:
        environment = self._environment(app)
        settings = self._settings(environment)
        instances = self._instances(app)
        return (Formation(PROCESS_TYPE, len(instances), settings["instance_type"]),)

    def scale(self, app: str, targets: Targets) -> tuple[Formation, ...]:
        _only_web(targets)
        quantity, size = targets[PROCESS_TYPE]
        environment = self._environment(app)
        _refuse_if_busy(environment)
        options = [
            {"Namespace": ASG, "OptionName": "MinSize", "Value": str(quantity)},
            {"Namespace": ASG, "OptionName": "MaxSize", "Value": str(quantity)},
        ]
        if size:
            options.append({"Namespace": EC2, "OptionName": "InstanceTypes", "Value": size})
        # Read before the write: a failed read after it would say "nothing was changed" of
        # a change made, and `scale web+1` asked again would add a second instance.
        settings = self._settings(environment)
        _refuse_if_single(environment, settings, quantity)
        current = size or settings["instance_type"]
        self._change("update_environment", environment, OptionSettings=options)
        return (Formation(PROCESS_TYPE, quantity, current),)

    def refuse_scale(self, app: str, targets: Targets) -> None:
        """What `scale` to `targets` would refuse whatever the environment's state, raised
        before a prompt: its Confirm could only have been refused."""
        _only_web(targets)
        environment = self._environment(app)
        _refuse_if_single(environment, self._settings(environment), targets[PROCESS_TYPE][0])

    def restart(self, app: str, target: str | None) -> None:
        if target not in (None, PROCESS_TYPE):
            raise PlatformError(RESTART_WHOLE.format(app=app, target=target), app=app)
        environment = self._environment(app)
        _refuse_if_busy(environment)
        self._change("restart_app_server", environment)

    def status(self, app: str) -> AppStatus:
        """The environment, then at once what needs only it: its settings, health,
        instances and when its version went out. A failure is the first one's in that
        order, as when they were read one after another."""
        environment = self._environment(app)  # builds the client the reads below share
        label = environment.get("VersionLabel")
        settings, health, instances, deployed = read_together(
            (
                lambda: self._settings(environment),
                _kept(
                    lambda: self._call(
                        "describe_environment_health",
                        app,
                        EnvironmentName=app,
                        AttributeNames=["All"],
                    )
                ),
                _kept(lambda: self._instances(app)),
                _kept(lambda: self._deployed_at(app, environment) if label else (None, False)),
            )
        )
        notes = [f"instances {settings['min']}–{settings['max']} (Auto Scaling group)"]
        if isinstance(health, PlatformError) and settings["health_system"] == "basic":
            # Basic health: AWS refuses DescribeEnvironmentHealth, and the environment's own
            # Health colour (below) is all there is.
            health = {}
            notes.append(BASIC_HEALTH)
        for read in (health, instances, deployed):
            if isinstance(read, PlatformError):
                raise read  # the first failure in the order the reads are listed
        deployed_at, beyond = deployed
        if environment.get("CNAME"):
            # What a blue/green swap moves: which environment answers at which address.
            notes.append(f"answers at {environment['CNAME']}")
        notes += [f"cause: {cause}" for cause in health.get("Causes", [])]
        metrics = _metrics_note(health.get("ApplicationMetrics") or {})
        if metrics:
            notes.append(metrics)
        if beyond:
            notes.insert(
                0,
                f"the age of {label} is unknown: its deployment is not among the environment's "
                f"newest {EVENTS_MOST} events",
            )
        return AppStatus(
            app=app,
            formation=(Formation(PROCESS_TYPE, len(instances), settings["instance_type"]),),
            dynos=tuple(
                Dyno(i["Id"], PROCESS_TYPE, "running", settings["instance_type"], None)
                for i in instances
            ),
            release=Release(label, "", deployed_at, "") if label else None,
            state=environment.get("Status"),
            health=environment.get("Health") or health.get("Color"),
            notes=tuple(notes),
            unit=self.unit,
        )

    def releases(self, app: str, limit: int) -> tuple[Release, ...]:
        """The environment's application's versions, newest first, the deployed one marked:
        after the newest `limit`, if it is older (other environments of the application
        make versions too). Unmarked, the newest would be taken for what runs."""
        environment = self._environment(app)
        application = environment["ApplicationName"]
        found = self._call(
            "describe_application_versions",
            app,
            ApplicationName=application,
            MaxRecords=min(max(limit, 1), 1000),
        ).get("ApplicationVersions", [])
        found = sorted(found, key=lambda v: v.get("DateCreated") or _EPOCH, reverse=True)
        found = found[:limit]
        current = environment.get("VersionLabel")
        if current and all(v["VersionLabel"] != current for v in found):
            found += self._labelled(app, application, current)
        return tuple(_version_release(v, current) for v in found)

    def version(self, app: str, label: str) -> Release | None:
        """The environment's application's version `label`, however old (`releases` lists
        only the newest), the deployed one marked; None if the application has none."""
        environment = self._environment(app)
        found = self._labelled(app, environment["ApplicationName"], label)
        return _version_release(found[0], environment.get("VersionLabel")) if found else None

    def case_twins(self, app: str, label: str) -> tuple[str, ...]:
        """The labels of the environment's application's versions that differ from `label`
        only by case, however old, sorted: labels are case-sensitive, what people type is
        not always. Read only when no version is labelled `label` exactly."""
        application = self._environment(app)["ApplicationName"]
        twins, token = set(), None
        for _ in range(VERSIONS_PAGES):
            page = self._call(
                "describe_application_versions",
                app,
                ApplicationName=application,
                MaxRecords=VERSIONS_PAGE,
                **({"NextToken": token} if token else {}),
            )
            twins.update(
                v["VersionLabel"]
                for v in page.get("ApplicationVersions", [])
                if v["VersionLabel"] != label and v["VersionLabel"].lower() == label.lower()
            )
            token = page.get("NextToken")
            if not token:
                break
        return tuple(sorted(twins))

    def _labelled(self, app: str, application: str, label: str) -> list[dict[str, Any]]:
        """Application version `label` looked up by its label: none or one."""
        found = self._call(
            "describe_application_versions",
            app,
            ApplicationName=application,
            VersionLabels=[label],
        ).get("ApplicationVersions", [])
        return [v for v in found if v.get("VersionLabel") == label][:1]

    def rollback(self, app: str, release: Release) -> Release:
        """Deploy an earlier application version; the update takes minutes (follow it up)."""
        environment = self._environment(app)
        _refuse_if_busy(environment)
        self._change("update_environment", environment, VersionLabel=release.version)
        return release

    def deploy_version(self, app: str, label: str) -> Release:
        """`ship`: deploy an existing application version by its label."""
        return self.rollback(app, Release(label, "", None, "", id=label))

    def create_version(self, app: str, label: str, bucket: str, key: str) -> None:
        """A new application version from an S3 bundle (which `ship` then deploys)."""
        environment = self._environment(app)
        self._call(
            "create_application_version",
            app,
            ApplicationName=environment["ApplicationName"],
            VersionLabel=label,
            Description=f"Shipped from chat: s3://{bucket}/{key}"[:200],
            SourceBundle={"S3Bucket": bucket, "S3Key": key},
            Process=True,
        )

    def swap(self, app: str, other: str) -> None:
        """Swap the two environments' CNAMEs (blue/green); both must be Ready."""
        for name in (app, other):
            _refuse_if_busy(self._environment(name))
        self._call(
            "swap_environment_cnames",
            app,
            SourceEnvironmentName=app,
            DestinationEnvironmentName=other,
        )

    def cname(self, app: str) -> str:
        return str(self._environment(app).get("CNAME", ""))

    def log_tail(self, app: str, dyno: str | None, lines: int) -> LogTail:
        """The tail of one instance's logs (`dyno`, an instance ID; else the one that sent
        the newest): ask the instances, then fetch its bundle. An ID that is not one of the
        environment's instances is refused before anything is asked."""
        if dyno is not None:
            ids = [i.get("Id", "") for i in self._instances(app)]
            if dyno not in ids:
                raise NotSupported(
                    f"{code(dyno)} is not one of {code(app)}'s instances "
                    f"({listed(sorted(ids))}): name one of those, or none for the newest "
                    "tail of any.",
                    app=app,
                )
        self._call("request_environment_info", app, EnvironmentName=app, InfoType="tail")
        deadline = time.monotonic() + TAIL_WAIT_SECONDS
        while True:
            found = [
                info
                for info in self._call(
                    "retrieve_environment_info", app, EnvironmentName=app, InfoType="tail"
                ).get("EnvironmentInfo", [])
                if dyno is None or info.get("Ec2InstanceId") == dyno
            ]
            if found or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        if not found:
            return LogTail(dyno, [])
        # Tails stay listed for a while, and an instance may have sent more than one: the
        # newest, of the instance named or of any (the first listed can be a stale one).
        info = max(found, key=_sampled)
        shown = str(info.get("Ec2InstanceId") or "") or None
        others = tuple(sorted({str(i.get("Ec2InstanceId") or "") for i in found} - {"", shown}))
        try:
            # A presigned S3 URL: it carries its own signature, so no credentials go with it.
            tail = fetch_tail(requests.get, info["Message"], (3.05, 15))[-lines:]
        except UNREADABLE:
            tail = ["(the log bundle could not be read)"]
        return LogTail(shown, tail, others)

    def maintenance(self, app: str) -> bool:
        raise NotSupported(NO_MAINTENANCE.format(app=app), app=app)

    def set_maintenance(self, app: str, on: bool) -> bool:
        raise NotSupported(NO_MAINTENANCE.format(app=app), app=app)

    def config_vars(self, app: str) -> dict[str, str]:
        """Environment properties (namespace aws:elasticbeanstalk:application:environment)."""
        environment = self._environment(app)
        found = self._call(
            "describe_configuration_settings",
            app,
            ApplicationName=environment["ApplicationName"],
            EnvironmentName=app,
        )
        return {
            o["OptionName"]: o.get("Value", "")
            for s in found.get("ConfigurationSettings", [])
            for o in s.get("OptionSettings", [])
            if o.get("Namespace") == ENV_PROPERTIES
        }

    def set_config(self, app: str, changes: dict[str, str | None]) -> None:
        environment = self._environment(app)
        _refuse_if_busy(environment)
        options = [
            {"Namespace": ENV_PROPERTIES, "OptionName": k, "Value": v}
            for k, v in changes.items()
            if v is not None
        ]
        removals = [
            {"Namespace": ENV_PROPERTIES, "OptionName": k} for k, v in changes.items() if v is None
        ]
        params: dict[str, Any] = {}
        if options:
            params["OptionSettings"] = options
        if removals:
            params["OptionsToRemove"] = removals
        self._change("update_environment", environment, **params)

    def wait_until_settled(
        self, app: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        # Said by the name the change was asked by: the thread under `scale web=3 shop`
        # named `shop-prod`, a name the asker may never have typed.
        said = f"`{alias or app}`"
        deadline = time.monotonic() + timeout
        while True:
            environment = self._environment(app)
            if environment.get("Status") == "Ready":
                break
            if time.monotonic() >= deadline:
                return Settled(
                    ok=False,
                    summary=f"{said} is still {escape(environment.get('Status', 'busy'))} after "
                    f"{int(timeout // 60)} minutes; check the AWS console.",
                )
            if stopping.wait(POLL_SECONDS):
                return Settled(
                    ok=False,
                    summary=f"{said} was still {escape(environment.get('Status', 'busy'))} when I "
                    "stopped watching it.",
                )
        since, asked = self._asked.get(app, (None, None))
        query = {"StartTime": since} if since else {}
        events = self._call(
            "describe_events", app, EnvironmentName=app, MaxRecords=100, **query
        ).get("Events", [])
        errors = tuple(
            e["Message"]
            for e in reversed(events)
            if e.get("Severity") in ("ERROR", "FATAL") and _of_change(e, asked)
        )
        if errors:
            return Settled(ok=False, summary=f"{said} update failed.", events=errors)
        return Settled(
            ok=True, summary=f"{said} is Ready ({escape(environment.get('Health', 'unknown'))})."
        )

    def _deployed_at(self, app: str, environment: dict[str, Any]) -> tuple[datetime | None, bool]:
        """When the environment's version went out: the newest event that says a version was
        deployed (or the environment launched with it), not `DateUpdated`, which any update
        moves (a scale, a config change). None past the events AWS keeps (six weeks), and
        with True past the newest `EVENTS_MOST`, which are all that is read. Read again only
        once `DateUpdated` has moved."""
        key = (environment.get("VersionLabel"), environment.get("DateUpdated"))
        known = self._deployed.get(app)
        if known is not None and known[0] == key:
            return known[1], known[2]
        at, beyond, token = None, False, None
        # Counted in pages, not events: a page may come back short with a token all the same.
        for _ in range(EVENTS_MOST // EVENTS_PAGE):
            page = self._call(
                "describe_events",
                app,
                EnvironmentName=app,
                MaxRecords=EVENTS_PAGE,
                **({"NextToken": token} if token else {}),
            )
            events = page.get("Events", [])
            at = next(
                (e.get("EventDate") for e in events if _DEPLOYED.match(e.get("Message", ""))),
                None,
            )
            token = page.get("NextToken")
            if at is not None or not token:
                break
        else:
            beyond = True
        self._deployed[app] = (key, at, beyond)
        return at, beyond

    def _environment(self, app: str) -> dict[str, Any]:
        found = self._call("describe_environments", app, EnvironmentNames=[app])
        live = [e for e in found.get("Environments", []) if e.get("Status") != "Terminated"]
        if not live:
            raise PlatformError(
                f"There is no Beanstalk environment `{app}` in {self.region} that the bot's "
                "AWS credentials can see. Check the registry's environment and region.",
                app=app,
                own=True,
            )
        return live[0]

    def _settings(self, environment: dict[str, Any]) -> dict[str, Any]:
        found = self._call(
            "describe_configuration_settings",
            environment["EnvironmentName"],
            ApplicationName=environment["ApplicationName"],
            EnvironmentName=environment["EnvironmentName"],
        )
        values = {
            (o.get("Namespace"), o.get("OptionName")): o.get("Value")
            for s in found.get("ConfigurationSettings", [])
            for o in s.get("OptionSettings", [])
        }
        instance_type = (values.get((EC2, "InstanceTypes")) or "").split(",")[0] or values.get(
            (LAUNCH, "InstanceType"), "?"
        )
        return {
            "min": int(values.get((ASG, "MinSize")) or 0),
            "max": int(values.get((ASG, "MaxSize")) or 0),
            "instance_type": instance_type,
            "health_system": values.get((HEALTH_SYSTEM, "SystemType")) or "",
            "environment_type": values.get((ENVIRONMENT, "EnvironmentType")) or "",
        }

    def _instances(self, app: str) -> list[dict[str, Any]]:
        found = self._call("describe_environment_resources", app, EnvironmentName=app)
        return list(found.get("EnvironmentResources", {}).get("Instances", []))

    def _change(self, operation: str, environment: dict[str, Any], **params: Any) -> None:
        """Ask for a change to `environment` (as read just before) that `wait_until_settled`
        follows, keeping when it began and its request ID."""
        app = environment["EnvironmentName"]
        began = environment.get("DateUpdated") or datetime.now(UTC)
        answer = self._call(operation, app, EnvironmentName=app, **params)
        self._asked[app] = (began, answer.get("ResponseMetadata", {}).get("RequestId"))

    def _call(self, operation: str, app: str, **params: Any) -> dict[str, Any]:
        write = not operation.startswith(("describe_", "retrieve_", "list_"))
        try:
            return getattr(self._eb(write), operation)(**params)
        except botocore.exceptions.ClientError as error:
            raise _client_error(error, app, write) from None
        except botocore.exceptions.BotoCoreError as error:
            raise botocore_error(error, SERVICE, app, write=write) from None


# `Invalid option value: 'sk_live_…' (Namespace: 'aws:elasticbeanstalk:application:
# environment', …)` quotes a config var's value, which is never shown beyond its command.
_ENVIRONMENT_VALUE = re.compile(
    r"(Invalid option value: ')[^']*('\s*\(Namespace: 'aws:elasticbeanstalk:application:environment')"
)


def _client_error(error: botocore.exceptions.ClientError, app: str, write: bool) -> PlatformError:
    code = error.response.get("Error", {}).get("Code", "")
    # AWS's own words go into Slack text and the audit: shown as typed, never as mentions or
    # links, and masked, as they can quote a request's credential or a rejected value.
    raw = error.response.get("Error", {}).get("Message", "").strip()
    # Clipped after masking (a cut secret would escape the mask): Slack refuses long blocks.
    message = escape(clip(mask(_ENVIRONMENT_VALUE.sub(rf"\g<1>{MASK}\g<2>", raw)), 300))
    # A permission the credentials lack is no credentials problem: the IAM policy is.
    action = f"elasticbeanstalk:{error.operation_name}"
    if code in ("AccessDenied", "AccessDeniedException"):
        return PlatformError(
            f"AWS does not let the bot call {action} for `{app}` ({code}). An admin should "
            "allow it in the IAM policy of the bot's AWS user.",
            app=app,
        )
    if code == "InsufficientPrivilegesException":
        return PlatformError(
            f"The bot's AWS user lacks a permission that {action} needs for `{app}` ({code}). "
            "An admin should check its IAM policy.",
            app=app,
        )
    if code in REFUSED_CREDENTIALS:
        return PlatformError(
            f"AWS refused the bot's credentials for `{app}` ({code}). An admin should check "
            "the profile named in the registry.",
            app=app,
        )
    if code in THROTTLING:
        # Throttled: nothing was done, and callers on a clock (the health sampler) back off.
        return Throttled(
            "AWS is throttling the bot's requests. Try again in a minute.",
            until=datetime.now(UTC) + timedelta(minutes=1),
        )
    if "invalid state" in message.lower():
        return PlatformError(
            f"`{app}` is busy with another update; try again when it is Ready.", app=app
        )
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if status >= 500 and write:
        return lost_answer(
            f"Elastic Beanstalk failed ({code or status}) after the change to `{app}` was "
            "sent, so it may have been made.",
            app,
            write=True,
        )
    if status >= 500:
        return ReadFailed(
            f"Elastic Beanstalk failed ({code or status}), so `{app}` could not be read. "
            "Try again in a minute.",
        )
    # AWS's words end the reply: as a sentence, though AWS's own may stop short of a full stop.
    said = message if message.endswith((".", "…", "!", "?")) else f"{message or 'no reason given'}."
    if code == "InvalidParameterValue":
        what = "the change to" if write else "the request about"
        return PlatformError(f"Elastic Beanstalk refused {what} `{app}`: {said}", app=app)
    return PlatformError(f"Elastic Beanstalk answered {code or 'an error'}: {said}")


def _version_release(version: dict[str, Any], current: str | None) -> Release:
    """An application version as a release, marked if it is `current`, what runs."""
    return Release(
        version=version["VersionLabel"],
        description=version.get("Description", ""),
        created_at=version.get("DateCreated"),
        user="",
        id=version["VersionLabel"],
        status=version.get("Status", "Processed"),
        current=version["VersionLabel"] == current,
    )


def _refuse_if_busy(environment: dict[str, Any]) -> None:
    status = environment.get("Status")
    if status != "Ready":
        since = environment.get("DateUpdated")
        when = f" since {since.astimezone(UTC):%H:%M} UTC" if isinstance(since, datetime) else ""
        name = environment["EnvironmentName"]
        if status == "Terminating":
            # Never Ready again: waiting for it is no advice.
            since = f" ({when.strip()})" if when else ""
            raise PlatformError(
                f"`{name}` is being terminated{since}, so it cannot be changed.", app=name
            )
        raise PlatformError(
            f"`{name}` is busy ({status}{when}); try again when it is Ready.", app=name
        )


def _refuse_if_single(environment: dict[str, Any], settings: dict[str, Any], quantity: int) -> None:
    """A single-instance environment's Auto Scaling group is held at one instance whatever
    MinSize and MaxSize say: another count would be sent, reported as made, and not happen."""
    if settings["environment_type"] == "SingleInstance" and quantity != 1:
        name = environment["EnvironmentName"]
        wanted = "stop it" if quantity == 0 else f"run {quantity}"
        raise PlatformError(
            f"`{name}` is a single-instance environment, which always runs one instance; to "
            f"{wanted}, an admin should make it load balanced (Environment type, under "
            "Capacity in its configuration).",
            app=name,
        )


def _kept(read: Callable[[], Any]) -> Callable[[], Any]:
    """`read`, its failure returned rather than raised: `status` weighs a refused health
    read against the settings read beside it, then raises the first failure in turn."""

    def kept() -> Any:
        try:
            return read()
        except PlatformError as error:
            return error

    return kept


def _only_web(targets: Targets) -> None:
    other = sorted(set(targets) - {PROCESS_TYPE})
    if other:
        raise PlatformError(
            f"Beanstalk environments have one process type, `web`; there is no `{other[0]}`."
        )


def _metrics_note(metrics: dict[str, Any]) -> str | None:
    if not metrics.get("RequestCount") and not metrics.get("Latency"):
        return None
    duration = metrics.get("Duration") or 10
    parts = [f"{metrics.get('RequestCount', 0)} requests in the last {duration}s"]
    p95 = (metrics.get("Latency") or {}).get("P95")
    if p95 is not None:
        parts.append(f"p95 {p95 * 1000:.0f} ms")
    codes = metrics.get("StatusCodes") or {}
    if codes.get("Status5xx"):
        parts.append(f"{codes['Status5xx']} 5xx")
    return ", ".join(parts)


def _of_change(event: dict[str, Any], asked: str | None) -> bool:
    """Whether an event since a change began may be that change's: one carrying another
    request's ID is not (how the EB CLI filters an operation's events)."""
    other = event.get("RequestId")
    return not (asked and other and other != asked)


def _sampled(info: dict[str, Any]) -> datetime:
    """When an instance sent this tail; one that does not say, oldest."""
    at = info.get("SampleTimestamp")
    return at if isinstance(at, datetime) else _EPOCH
