"""The fake Elastic Beanstalk, driven by real boto3 clients over real HTTP.

botocore parses every answer with the service model it ships, so a response that does not fit
its shape fails these tests before any assertion runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import botocore.retries.standard
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from bot.sandbox.fakes.beanstalk import (
    INSTANCE_TYPES,
    FakeBeanstalk,
    load_model,
    response_xml,
)

KEY = "AKIDTEST"
OTHER_KEY = "AKIDOTHER"
ENV = "web-prod"
NOT_READY = f"Environment named {ENV} is in an invalid state for this operation. Must be Ready."


@pytest.fixture
def fake() -> Iterator[FakeBeanstalk]:
    with FakeBeanstalk() as server:
        server.add_environment(ENV)
        yield server


def client(fake: FakeBeanstalk, key: str = KEY, region: str = "us-east-1", **retries: Any) -> Any:
    """A real boto3 client for the fake; by default it never retries, so faults surface."""
    return boto3.client(
        "elasticbeanstalk",
        endpoint_url=fake.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        config=Config(retries=retries or {"mode": "standard", "total_max_attempts": 1}),
    )


def raw_post(
    fake: FakeBeanstalk, form: dict[str, str], key: str = KEY, region: str = "us-east-1"
) -> requests.Response:
    """A Query request botocore would refuse to send, so the fake's own checks can be seen."""
    scope = f"{key}/20250101/{region}/elasticbeanstalk/aws4_request"
    auth = f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature={'0' * 64}"
    return requests.post(
        fake.url + "/",
        data={"Version": "2010-12-01", **form},
        headers={"Authorization": auth},
        timeout=5,
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return status, response["Error"]["Code"], response["Error"]["Message"]


def scale(eb: Any, **options: str) -> dict[str, Any]:
    namespaces = {
        "MinSize": "aws:autoscaling:asg",
        "MaxSize": "aws:autoscaling:asg",
        "InstanceType": "aws:autoscaling:launchconfiguration",
        "InstanceTypes": "aws:ec2:instances",
    }
    settings = [
        {"Namespace": namespaces[name], "OptionName": name, "Value": value}
        for name, value in options.items()
    ]
    return eb.update_environment(EnvironmentName=ENV, OptionSettings=settings)


def messages(fake: FakeBeanstalk) -> list[str]:
    return [event["Message"] for event in fake.events(ENV)]


# ---------------------------------------------------------------------------------------------
# Reads.


def test_describe_environments_fits_the_model(fake: FakeBeanstalk) -> None:
    found = client(fake).describe_environments(EnvironmentNames=[ENV])["Environments"]

    assert len(found) == 1
    env = found[0]
    assert env["EnvironmentName"] == ENV
    assert env["EnvironmentId"].startswith("e-") and len(env["EnvironmentId"]) == 12
    assert env["ApplicationName"] == "myapp"
    assert (env["Status"], env["Health"], env["HealthStatus"]) == ("Ready", "Green", "Ok")
    assert env["AbortableOperationInProgress"] is False
    assert env["Tier"] == {"Name": "WebServer", "Type": "Standard", "Version": "1.0"}
    assert isinstance(env["DateCreated"], datetime) and env["DateUpdated"] > env["DateCreated"]
    assert env["CNAME"].endswith(".elasticbeanstalk.com")
    assert env["EndpointURL"].endswith(".elb.amazonaws.com")
    assert fake.violations == []


def test_describe_environments_filters(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-staging", application="other")
    eb = client(fake)

    every = eb.describe_environments()["Environments"]
    by_app = eb.describe_environments(ApplicationName="other")["Environments"]
    unknown = eb.describe_environments(EnvironmentNames=["nope-env"])["Environments"]
    page = eb.describe_environments(MaxRecords=1)
    rest = eb.describe_environments(MaxRecords=1, NextToken=page["NextToken"])

    assert [e["EnvironmentName"] for e in every] == [ENV, "web-staging"]
    assert [e["EnvironmentName"] for e in by_app] == ["web-staging"]
    assert unknown == []
    assert [e["EnvironmentName"] for e in page["Environments"] + rest["Environments"]] == [
        ENV,
        "web-staging",
    ]
    assert "NextToken" not in rest


def test_terminated_environments_show_unless_excluded(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-old", status="Terminated")
    eb = client(fake)

    shown = eb.describe_environments()["Environments"]
    hidden = eb.describe_environments(IncludeDeleted=False)["Environments"]

    assert [e["Status"] for e in shown] == ["Ready", "Terminated"]
    assert [e["EnvironmentName"] for e in hidden] == [ENV]


def test_endpoint_from_the_standard_environment_variable(
    fake: FakeBeanstalk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", fake.url)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    eb = boto3.client(
        "elasticbeanstalk",
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key="secret",
    )

    assert eb.describe_environments()["Environments"][0]["EnvironmentName"] == ENV
    assert fake.calls("DescribeEnvironments")[0].access_key == KEY


def test_describe_configuration_settings(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-big", min_size=2, max_size=8, instance_type="m6i.large")

    settings = client(fake).describe_configuration_settings(
        ApplicationName="myapp", EnvironmentName="web-big"
    )["ConfigurationSettings"]

    options = {(o["Namespace"], o["OptionName"]): o["Value"] for o in settings[0]["OptionSettings"]}
    assert options[("aws:autoscaling:asg", "MinSize")] == "2"
    assert options[("aws:autoscaling:asg", "MaxSize")] == "8"
    assert options[("aws:autoscaling:launchconfiguration", "InstanceType")] == "m6i.large"
    assert options[("aws:ec2:instances", "InstanceTypes")] == "m6i.large"
    assert settings[0]["DeploymentStatus"] == "deployed"


def test_describe_configuration_settings_for_an_unknown_application(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake).describe_configuration_settings(ApplicationName="nope", EnvironmentName=ENV)

    assert error_of(excinfo) == (400, "InvalidParameterValue", "No Application named 'nope' found.")


def test_describe_environment_health_with_metrics(fake: FakeBeanstalk) -> None:
    fake.set_health(
        ENV,
        color="Yellow",
        causes=["5.0 % of the requests are failing with HTTP 5xx."],
        request_count=1000,
        latency_p95=1.5,
        status_5xx=50,
    )

    health = client(fake).describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])

    assert health["EnvironmentName"] == ENV
    # The model types Status as a colour; the service (and the model's own docs) say Ready.
    assert health["Status"] == "Ready"
    assert (health["Color"], health["HealthStatus"]) == ("Yellow", "Warning")
    assert health["Causes"] == ["5.0 % of the requests are failing with HTTP 5xx."]
    metrics = health["ApplicationMetrics"]
    assert metrics["Duration"] == 10 and metrics["RequestCount"] == 1000
    assert metrics["StatusCodes"] == {
        "Status2xx": 950,
        "Status3xx": 0,
        "Status4xx": 0,
        "Status5xx": 50,
    }
    assert metrics["Latency"]["P95"] == 1.5
    assert set(metrics["Latency"]) == {"P999", "P99", "P95", "P90", "P85", "P75", "P50", "P10"}
    assert health["InstancesHealth"]["Warning"] == 1
    assert sum(health["InstancesHealth"].values()) == 1
    assert isinstance(health["RefreshedAt"], datetime)
    assert "Environment health has transitioned from Ok to Warning." in messages(fake)[0]


def test_describe_environment_health_returns_only_what_was_asked(fake: FakeBeanstalk) -> None:
    eb = client(fake)

    bare = eb.describe_environment_health(EnvironmentName=ENV)
    some = eb.describe_environment_health(EnvironmentName=ENV, AttributeNames=["Color"])

    bare.pop("ResponseMetadata")
    some.pop("ResponseMetadata")
    assert bare == {"EnvironmentName": ENV}
    assert some == {"EnvironmentName": ENV, "Color": "Green"}


def test_describe_environment_resources(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-three", min_size=3, max_size=5)

    resources = client(fake).describe_environment_resources(EnvironmentName="web-three")

    found = resources["EnvironmentResources"]
    assert found["EnvironmentName"] == "web-three"
    assert len(found["AutoScalingGroups"]) == 1
    assert [i["Id"] for i in found["Instances"]] == fake.environment("web-three")["instance_ids"]
    assert all(i["Id"].startswith("i-") for i in found["Instances"])
    assert len(found["Instances"]) == 3
    assert len(found["LoadBalancers"]) == 1 and len(found["LaunchConfigurations"]) == 1
    assert found["Triggers"] == [] and found["Queues"] == []


def test_describe_instances_health(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-two", min_size=2, instance_type="c7g.large")
    eb = client(fake)

    everything = eb.describe_instances_health(EnvironmentName="web-two", AttributeNames=["All"])
    ids_only = eb.describe_instances_health(EnvironmentName="web-two")

    listed = everything["InstanceHealthList"]
    assert len(listed) == 2
    assert {i["InstanceType"] for i in listed} == {"c7g.large"}
    assert {i["HealthStatus"] for i in listed} == {"Ok"}
    assert listed[0]["System"]["LoadAverage"] == [0.12, 0.1, 0.08]
    assert [set(i) for i in ids_only["InstanceHealthList"]] == [{"InstanceId"}] * 2


def test_describe_events_filters_and_pages(fake: FakeBeanstalk) -> None:
    eb = client(fake)
    started = fake.now
    scale(eb, MinSize="2")
    fake.advance(60)

    recent = eb.describe_events(EnvironmentName=ENV, StartTime=started)["Events"]
    resources = eb.describe_environment_resources(EnvironmentName=ENV)["EnvironmentResources"]
    asg = resources["AutoScalingGroups"][0]["Name"]
    first = eb.describe_events(EnvironmentName=ENV, StartTime=started, MaxRecords=2)
    rest = eb.describe_events(EnvironmentName=ENV, StartTime=started, NextToken=first["NextToken"])
    warnings = eb.describe_events(EnvironmentName=ENV, Severity="WARN")["Events"]
    by_app = eb.describe_events(ApplicationName="myapp")["Events"]

    assert [e["Message"] for e in recent] == [
        "Environment update completed successfully.",
        "Successfully deployed new configuration to environment.",
        f"Added EC2 instance '{fake.environment(ENV)['instance_ids'][1]}' to Auto Scaling Group "
        f"'{asg}'.",
        f"Updating environment {ENV}'s configuration settings.",
        "Environment update is starting.",
    ]
    assert [e["EventDate"] for e in recent] == sorted(
        (e["EventDate"] for e in recent), reverse=True
    )
    assert first["Events"] + rest["Events"] == recent
    assert warnings == []
    assert len(by_app) > len(recent)  # the creation history is there too
    assert {e["Severity"] for e in recent} == {"INFO"}


# ---------------------------------------------------------------------------------------------
# Updates, restarts and the clock.


def test_update_lifecycle(fake: FakeBeanstalk) -> None:
    eb = client(fake)

    answer = scale(eb, MinSize="2", MaxSize="6", InstanceType="t3.large")

    assert (answer["Status"], answer["Health"], answer["HealthStatus"]) == (
        "Updating",
        "Grey",
        "Info",
    )
    assert answer["AbortableOperationInProgress"] is True
    state = fake.environment(ENV)
    assert state["status"] == "Updating" and state["instances"] == 1
    assert messages(fake)[:2] == [
        f"Updating environment {ENV}'s configuration settings.",
        "Environment update is starting.",
    ]

    fake.advance(59)
    assert fake.environment(ENV)["status"] == "Updating"

    fake.advance(1)
    state = fake.environment(ENV)
    assert state["status"] == "Ready" and state["health"] == "Green"
    assert (state["min_size"], state["max_size"], state["instance_type"]) == (2, 6, "t3.large")
    assert state["instances"] == 2  # clamped up to the new MinSize
    assert messages(fake)[:2] == [
        "Environment update completed successfully.",
        "Successfully deployed new configuration to environment.",
    ]
    described = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert described["Status"] == "Ready" and described["AbortableOperationInProgress"] is False
    assert described["DateUpdated"] > answer["DateUpdated"]


def test_shrinking_max_size_removes_instances(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-wide", min_size=1, max_size=8, instances=5)
    eb = client(fake)

    eb.update_environment(
        EnvironmentName="web-wide",
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "3"}
        ],
    )
    fake.advance(60)

    assert fake.environment("web-wide")["instances"] == 3
    assert sum("Removed EC2 instance" in e["Message"] for e in fake.events("web-wide")) == 2


def test_ec2_instance_types_option(fake: FakeBeanstalk) -> None:
    scale(client(fake), InstanceTypes="m7g.large,m7g.xlarge")
    fake.advance(60)

    state = fake.environment(ENV)
    assert state["instance_types"] == ["m7g.large", "m7g.xlarge"]
    assert state["instance_type"] == "m7g.large"


def test_update_while_updating_is_refused(fake: FakeBeanstalk) -> None:
    eb = client(fake)
    scale(eb, MinSize="2")

    with pytest.raises(ClientError) as excinfo:
        scale(eb, MinSize="3")

    assert error_of(excinfo) == (400, "InvalidParameterValue", NOT_READY)
    assert fake.environment(ENV)["min_size"] == 2
    fake.advance(60)
    scale(eb, MinSize="3")  # Ready again: accepted


@pytest.mark.parametrize(
    ("options", "code", "fragment"),
    [
        ({"MinSize": "5", "MaxSize": "2"}, "InvalidParameterValue", "MinSize (5)"),
        ({"MinSize": "6"}, "InvalidParameterValue", "MaxSize (4)"),
        ({"MaxSize": "two"}, "InvalidParameterValue", "not an integer"),
        ({"InstanceType": "t3.mega"}, "InvalidParameterValue", "'t3.mega'"),
        ({"InstanceTypes": "t3.micro,c5.8xlarge"}, "InvalidParameterValue", "'c5.8xlarge'"),
    ],
)
def test_invalid_option_values_are_refused(
    fake: FakeBeanstalk, options: dict[str, str], code: str, fragment: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        scale(client(fake), **options)

    status, found_code, message = error_of(excinfo)
    assert (status, found_code) == (400, code)
    assert fragment in message
    state = fake.environment(ENV)
    assert (state["status"], state["min_size"], state["max_size"]) == ("Ready", 1, 4)


def test_a_version_and_options_in_one_update_are_refused(fake: FakeBeanstalk) -> None:
    # UpdateEnvironment's documentation: "Attempting to update both the release and
    # configuration is not allowed and Elastic Beanstalk returns an
    # InvalidParameterCombination error." The fake had deployed and scaled at once.
    with pytest.raises(ClientError) as excinfo:
        client(fake).update_environment(
            EnvironmentName=ENV,
            VersionLabel="v1",
            OptionSettings=[
                {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"}
            ],
        )

    assert error_of(excinfo)[:2] == (400, "InvalidParameterCombination")
    state = fake.environment(ENV)
    assert (state["status"], state["min_size"]) == ("Ready", 1)


def test_unknown_option_is_a_configuration_validation_exception(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake).update_environment(
            EnvironmentName=ENV,
            OptionSettings=[
                {"Namespace": "aws:autoscaling:asg", "OptionName": "Minsize", "Value": "2"}
            ],
        )

    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "ConfigurationValidationException")
    assert "OptionName: 'Minsize'): Unknown configuration setting." in message


def test_update_of_an_unknown_environment(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake).update_environment(EnvironmentName="nope-env", OptionSettings=[])

    assert error_of(excinfo) == (
        400,
        "InvalidParameterValue",
        "No Environment found for EnvironmentName = 'nope-env'.",
    )


def test_update_by_environment_id(fake: FakeBeanstalk) -> None:
    env_id = fake.environment(ENV)["id"]

    answer = client(fake).update_environment(
        EnvironmentId=env_id,
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"}
        ],
    )

    assert answer["EnvironmentName"] == ENV and answer["Status"] == "Updating"


def test_failed_update_rolls_back_and_reports_errors(fake: FakeBeanstalk) -> None:
    eb = client(fake)
    fake.fail_update(ENV, "Instance deployment failed. For details, see 'eb-engine.log'.")

    answer = scale(eb, MinSize="3", InstanceType="m5.large")
    assert answer["Status"] == "Updating"
    assert fake.environment(ENV)["min_size"] == 3  # the new settings show while updating
    fake.advance(60)

    state = fake.environment(ENV)
    assert state["status"] == "Ready"
    assert (state["health"], state["health_status"]) == ("Red", "Degraded")
    assert (state["min_size"], state["instance_type"], state["instances"]) == (1, "t3.micro", 1)
    errors = eb.describe_events(EnvironmentName=ENV, Severity="ERROR")["Events"]
    assert [e["Message"] for e in errors] == [
        "Environment update completed unsuccessfully.",
        "Failed to deploy configuration.",
        "Instance deployment failed. For details, see 'eb-engine.log'.",
    ]
    assert {e["RequestId"] for e in errors} == {answer["ResponseMetadata"]["RequestId"]}
    health = eb.describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])
    assert (health["Color"], health["HealthStatus"]) == ("Red", "Degraded")

    # The failure was for one update only; the next one succeeds and clears the red.
    scale(eb, MinSize="2")
    fake.advance(60)
    state = fake.environment(ENV)
    assert (state["health"], state["min_size"], state["instances"]) == ("Green", 2, 2)


def test_restart_app_server(fake: FakeBeanstalk) -> None:
    eb = client(fake)

    answer = eb.restart_app_server(EnvironmentName=ENV)

    assert set(answer) == {"ResponseMetadata"}
    assert fake.environment(ENV)["status"] == "Updating"
    with pytest.raises(ClientError) as excinfo:
        eb.restart_app_server(EnvironmentName=ENV)
    assert error_of(excinfo) == (400, "InvalidParameterValue", NOT_READY)
    fake.advance(20)
    assert fake.environment(ENV)["status"] == "Ready"
    assert messages(fake)[:2] == [
        "restartAppServer completed successfully.",
        "restartAppServer is starting.",
    ]


def test_launching_environment_becomes_ready(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-new", status="Launching", min_size=2)
    eb = client(fake)

    launching = eb.describe_environments(EnvironmentNames=["web-new"])["Environments"][0]
    assert (launching["Status"], launching["Health"], launching["HealthStatus"]) == (
        "Launching",
        "Grey",
        "Pending",
    )
    assert fake.environment("web-new")["instances"] == 0

    fake.advance(fake.launch_seconds)

    ready = eb.describe_environments(EnvironmentNames=["web-new"])["Environments"][0]
    assert (ready["Status"], ready["Health"]) == ("Ready", "Green")
    assert fake.environment("web-new")["instances"] == 2
    assert "createEnvironment completed successfully." in [
        e["Message"] for e in fake.events("web-new")
    ]


def test_advance_finishes_operations_at_their_own_times(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-other")
    eb = client(fake)
    start = fake.now
    eb.restart_app_server(EnvironmentName=ENV)
    eb.update_environment(
        EnvironmentName="web-other",
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"}
        ],
    )

    assert fake.advance(300) == start + timedelta(seconds=300)

    restarted = fake.events(ENV)[0]
    updated = fake.events("web-other")[0]
    assert restarted["Message"] == "restartAppServer completed successfully."
    assert restarted["EventDate"] == start + timedelta(seconds=20)
    assert updated["Message"] == "Environment update completed successfully."
    assert updated["EventDate"] == start + timedelta(seconds=60)


def test_set_health_color_implies_status(fake: FakeBeanstalk) -> None:
    fake.set_health(ENV, color="Red")
    assert fake.environment(ENV)["health_status"] == "Degraded"
    fake.set_health(ENV, health_status="Severe")
    assert fake.environment(ENV)["health"] == "Red"
    fake.set_health(ENV, color="Green")
    assert fake.environment(ENV)["health_status"] == "Ok"


# ---------------------------------------------------------------------------------------------
# Credentials: each (access key, region) sees only its own environments.


def test_two_keys_and_two_regions_are_isolated(fake: FakeBeanstalk) -> None:
    owners = [(KEY, "eu-west-1"), (OTHER_KEY, "us-east-1"), (OTHER_KEY, "eu-west-1")]
    for key, region in owners:
        fake.add_environment(ENV, region=region, access_key=key, min_size=2)
    ids = {
        (key, region): fake.environment(ENV, region, key)["id"]
        for key, region in [(KEY, "us-east-1"), *owners]
    }
    assert len(set(ids.values())) == 4

    for (key, region), env_id in ids.items():
        seen = client(fake, key, region).describe_environments()["Environments"]
        assert [e["EnvironmentId"] for e in seen] == [env_id]

    scale(client(fake, OTHER_KEY, "eu-west-1"), MinSize="3")

    assert fake.environment(ENV, "eu-west-1", OTHER_KEY)["status"] == "Updating"
    for key, region in [(KEY, "us-east-1"), (KEY, "eu-west-1"), (OTHER_KEY, "us-east-1")]:
        assert fake.environment(ENV, region, key)["status"] == "Ready"
    last = fake.calls("UpdateEnvironment")[-1]
    assert (last.access_key, last.region) == (OTHER_KEY, "eu-west-1")
    assert last.params["OptionSettings"] == [
        {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "3"}
    ]


def test_another_key_cannot_reach_an_environment_by_name(fake: FakeBeanstalk) -> None:
    fake.add_environment("theirs-env", access_key=OTHER_KEY)

    with pytest.raises(ClientError) as excinfo:
        client(fake).describe_environment_health(EnvironmentName="theirs-env")

    assert error_of(excinfo)[1] == "InvalidParameterValue"
    assert client(fake).describe_events(EnvironmentName="theirs-env")["Events"] == []


def test_unknown_access_key_is_refused(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake, key="AKIDSTRANGER").describe_environments()

    assert error_of(excinfo) == (
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )


def test_request_without_credentials_is_refused(fake: FakeBeanstalk) -> None:
    response = requests.post(
        fake.url + "/", data={"Action": "DescribeEnvironments", "Version": "2010-12-01"}, timeout=5
    )

    assert response.status_code == 403
    assert "<Code>MissingAuthenticationToken</Code>" in response.text


# ---------------------------------------------------------------------------------------------
# The contract: unknown actions, bad parameters, violations.


def test_unknown_action(fake: FakeBeanstalk) -> None:
    response = raw_post(fake, {"Action": "FrobnicateEnvironment"})

    assert response.status_code == 400
    assert "<Code>InvalidAction</Code>" in response.text
    assert "<Type>Sender</Type>" in response.text
    assert fake.violations == ["FrobnicateEnvironment: the service model has no such action"]
    assert fake.calls("FrobnicateEnvironment")[0].params["Action"] == "FrobnicateEnvironment"


def test_operation_the_fake_does_not_implement(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake).terminate_environment(EnvironmentName=ENV)

    assert error_of(excinfo)[:2] == (501, "NotImplemented")


def test_missing_required_parameter_is_caught_by_botocore(fake: FakeBeanstalk) -> None:
    with pytest.raises(ParamValidationError, match="ApplicationName"):
        client(fake).describe_configuration_settings(EnvironmentName=ENV)

    assert fake.requests == []


def test_fake_catches_a_missing_required_parameter(fake: FakeBeanstalk) -> None:
    response = raw_post(fake, {"Action": "DescribeConfigurationSettings", "EnvironmentName": ENV})

    assert response.status_code == 400
    assert "<Code>MissingParameter</Code>" in response.text
    assert fake.violations == [
        "DescribeConfigurationSettings: missing required parameter ApplicationName"
    ]


def test_fake_catches_a_bad_enum_value(fake: FakeBeanstalk) -> None:
    response = raw_post(fake, {"Action": "DescribeEvents", "Severity": "LOUD"})

    assert response.status_code == 400
    assert "<Code>ValidationError</Code>" in response.text
    assert len(fake.violations) == 1 and "enum value set" in fake.violations[0]


def test_fake_records_unknown_parameters_but_answers(fake: FakeBeanstalk) -> None:
    response = raw_post(
        fake, {"Action": "DescribeEnvironments", "EnvironmentName": ENV, "Verbose": "1"}
    )

    assert response.status_code == 200
    assert fake.violations == [
        "DescribeEnvironments: unknown parameter EnvironmentName",
        "DescribeEnvironments: unknown parameter Verbose",
    ]


def test_fake_wants_environment_name_or_id(fake: FakeBeanstalk) -> None:
    with pytest.raises(ClientError) as excinfo:
        client(fake).restart_app_server()

    assert error_of(excinfo)[:2] == (400, "MissingParameter")
    assert fake.violations == ["RestartAppServer: neither EnvironmentName nor EnvironmentId given"]


def test_swap_takes_names_with_names_and_ids_with_ids_never_mixed(fake: FakeBeanstalk) -> None:
    # The API reference: a SourceEnvironmentName needs a DestinationEnvironmentName, and a
    # SourceEnvironmentId a DestinationEnvironmentId. The fake had swapped a name with an ID.
    fake.add_environment("web-green")
    eb = client(fake)
    green = eb.describe_environments(EnvironmentNames=["web-green"])["Environments"][0]
    blue, before = fake.cname(ENV), fake.cname("web-green")
    with pytest.raises(ClientError) as excinfo:
        eb.swap_environment_cnames(
            SourceEnvironmentName=ENV, DestinationEnvironmentId=green["EnvironmentId"]
        )

    assert error_of(excinfo)[:2] == (400, "MissingParameter")
    assert (fake.cname(ENV), fake.cname("web-green")) == (blue, before)
    assert fake.violations == [
        "SwapEnvironmentCNAMEs: a name on one side needs a name on the other, an ID an ID"
    ]
    eb.swap_environment_cnames(SourceEnvironmentName=ENV, DestinationEnvironmentName="web-green")
    assert (fake.cname(ENV), fake.cname("web-green")) == (before, blue)


def test_nested_parameters_decode_along_the_input_shape(fake: FakeBeanstalk) -> None:
    scale(client(fake), MinSize="2", MaxSize="5")

    recorded = fake.calls("UpdateEnvironment")[0]
    assert recorded.params == {
        "EnvironmentName": ENV,
        "OptionSettings": [
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"},
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "5"},
        ],
    }
    assert recorded.form["OptionSettings.member.2.Value"] == "5"
    assert fake.violations == []


def test_serialiser_refuses_values_that_do_not_fit_the_shape() -> None:
    operation = load_model().operation_model("DescribeEnvironments")

    with pytest.raises(ValueError, match="not one of"):
        response_xml(operation, {"Environments": [{"Status": "Sleeping"}]}, "rid")
    with pytest.raises(KeyError):
        response_xml(operation, {"Environments": [{"Colour": "Green"}]}, "rid")
    with pytest.raises(TypeError):
        response_xml(operation, {"Environments": [{"AbortableOperationInProgress": "no"}]}, "rid")


# ---------------------------------------------------------------------------------------------
# A bad day: throttling, server errors, latency.


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's real jitter would sleep up to a second per throttled attempt.
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0
    )


# botocore's `max_attempts` counts retries, not attempts: 3 means up to four requests in all
# (`total_max_attempts` is the one that counts the first request too).
STANDARD_RETRIES = {"mode": "standard", "max_attempts": 3}


@pytest.mark.usefixtures("no_backoff")
def test_throttling_is_retried_by_standard_mode(fake: FakeBeanstalk) -> None:
    fake.fail_next(400, count=3)  # code Throttling, HTTP 400: how AWS throttles the Query API

    answer = client(fake, **STANDARD_RETRIES).describe_environments()

    assert answer["Environments"][0]["EnvironmentName"] == ENV
    assert answer["ResponseMetadata"]["RetryAttempts"] == 3
    assert len(fake.calls("DescribeEnvironments")) == 4


@pytest.mark.usefixtures("no_backoff")
def test_server_errors_exhaust_the_retries(fake: FakeBeanstalk) -> None:
    fake.fail_next(503, count=4)

    with pytest.raises(ClientError) as excinfo:
        client(fake, **STANDARD_RETRIES).describe_environments()

    assert error_of(excinfo)[:2] == (503, "ServiceUnavailable")
    assert len(fake.calls("DescribeEnvironments")) == 4


@pytest.mark.usefixtures("no_backoff")
def test_internal_failure_is_retried_then_succeeds(fake: FakeBeanstalk) -> None:
    fake.fail_next(500)

    answer = client(fake, **STANDARD_RETRIES).describe_environments()

    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def test_faults_can_target_one_action(fake: FakeBeanstalk) -> None:
    fake.fail_next(500, actions=["UpdateEnvironment"])
    eb = client(fake)

    eb.describe_environments()
    with pytest.raises(ClientError) as excinfo:
        scale(eb, MinSize="2")

    assert error_of(excinfo)[:2] == (500, "InternalFailure")
    assert fake.environment(ENV)["status"] == "Ready"


def test_latency(fake: FakeBeanstalk) -> None:
    fake.latency = 0.2
    started = time.monotonic()

    client(fake).describe_environments()

    assert time.monotonic() - started >= 0.2


# ---------------------------------------------------------------------------------------------
# Set-up guards.


def test_add_environment_refuses_what_aws_would() -> None:
    fake = FakeBeanstalk()
    with pytest.raises(ValueError, match="environment name"):
        fake.add_environment("web")  # shorter than the model's 4 characters
    with pytest.raises(ValueError, match="instance type"):
        fake.add_environment("web-prod", instance_type="t3.24xlarge")
    with pytest.raises(ValueError, match="min_size"):
        fake.add_environment("web-prod", min_size=5, max_size=2)
    fake.add_environment("web-prod")
    with pytest.raises(ValueError, match="already exists"):
        fake.add_environment("web-prod")


def test_known_instance_types() -> None:
    for known in (
        "t2.nano",
        "t3a.2xlarge",
        "t4g.micro",
        "m5.24xlarge",
        "c6i.32xlarge",
        "r6i.large",
    ):
        assert known in INSTANCE_TYPES
    for unknown in ("t3.4xlarge", "m7g.nano", "c5.8xlarge", "x1.large"):
        assert unknown not in INSTANCE_TYPES


def test_now_only_moves_with_advance() -> None:
    fake = FakeBeanstalk()
    before = fake.now
    assert fake.advance(90) == before + timedelta(seconds=90)
    with pytest.raises(ValueError):
        fake.advance(-1)


def test_environments_added_mid_operation_finish_on_the_clock(fake: FakeBeanstalk) -> None:
    fake.add_environment("web-busy", status="Updating")
    fake.add_environment("web-dying", status="Terminating")
    eb = client(fake)

    with pytest.raises(ClientError) as excinfo:
        eb.restart_app_server(EnvironmentName="web-busy")
    assert "Must be Ready." in error_of(excinfo)[2]

    fake.advance(fake.terminate_seconds)

    assert fake.environment("web-busy")["status"] == "Ready"
    assert fake.environment("web-dying")["status"] == "Terminated"
    assert fake.environment("web-dying")["instances"] == 0


def test_a_bug_in_the_fake_is_an_internal_failure(
    fake: FakeBeanstalk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FakeBeanstalk, env: Any) -> dict[str, Any]:
        return {"Status": "Sleeping"}

    monkeypatch.setattr(FakeBeanstalk, "_description", broken)

    with pytest.raises(ClientError) as excinfo:
        client(fake).describe_environments()

    status, code, message = error_of(excinfo)
    assert (status, code) == (500, "InternalFailure")
    assert "fake bug" in message


def test_scaling_to_zero_parks_the_environment(fake: FakeBeanstalk) -> None:
    scale(client(fake), MinSize="0", MaxSize="0")
    fake.advance(60)

    state = fake.environment(ENV)
    assert (state["status"], state["instances"]) == ("Ready", 0)
    assert (state["health"], state["health_status"]) == ("Grey", "NoData")
    health = client(fake).describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])
    assert health["ApplicationMetrics"] == {"RequestCount": 0}
    assert sum(health["InstancesHealth"].values()) == 0


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        # The developer guide's "Environment property limits": what the bot refuses first.
        ("DATABASE_URL", "postgres://db?sslmode=require", "character"),
        ("K", "x" * 257, "256"),
        ("K" * 129, "on", "128"),
        ("K!", "on", "character"),
    ],
)
def test_environment_properties_past_the_service_limits_are_refused(
    fake: FakeBeanstalk, name: str, value: str, why: str
) -> None:
    option = {"Namespace": PROPERTIES, "OptionName": name, "Value": value}
    with pytest.raises(ClientError) as excinfo:
        client(fake).update_environment(EnvironmentName=ENV, OptionSettings=[option])
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "InvalidParameterValue") and why in message
    assert f"OptionName: '{name}'" in message
    assert fake.environment(ENV)["status"] == "Ready"  # nothing was started


def test_environment_properties_over_4096_bytes_in_all_are_refused(fake: FakeBeanstalk) -> None:
    eb = client(fake)
    # Each `Pnn=` and 249 characters is 253 bytes: sixteen come to 4,048, seventeen past 4,096.
    options = [
        {"Namespace": PROPERTIES, "OptionName": f"P{n:02}", "Value": "v" * 249} for n in range(16)
    ]
    eb.update_environment(EnvironmentName=ENV, OptionSettings=options)
    fake.advance(600)
    more = {"Namespace": PROPERTIES, "OptionName": "P16", "Value": "v" * 249}
    with pytest.raises(ClientError) as excinfo:
        eb.update_environment(EnvironmentName=ENV, OptionSettings=[more])
    assert "4096" in error_of(excinfo)[2]
    # Unsetting one while setting another keeps the total under: accepted.
    eb.update_environment(
        EnvironmentName=ENV,
        OptionSettings=[more],
        OptionsToRemove=[{"Namespace": PROPERTIES, "OptionName": "P00"}],
    )


PROPERTIES = "aws:elasticbeanstalk:application:environment"
