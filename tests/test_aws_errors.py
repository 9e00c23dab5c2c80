"""Every botocore failure, from Elastic Beanstalk or CloudWatch, reaches the user as one or
two plain sentences: no class name, no endpoint URL, no traceback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore import exceptions as boto

from bot.platforms.base import PlatformError, Throttled
from bot.platforms.beanstalk import BeanstalkPlatform
from bot.platforms.cloudwatch import requests_per_minute

URL = "https://elasticbeanstalk.us-east-1.amazonaws.com/"

# error → words the user sees
FAULTS = [
    (boto.EndpointConnectionError(endpoint_url=URL), "could not be reached. Try again"),
    (boto.ConnectTimeoutError(endpoint_url=URL), "could not be reached. Try again"),
    (boto.ReadTimeoutError(endpoint_url=URL), "did not answer in time"),
    (boto.ConnectionClosedError(endpoint_url=URL), "dropped before it answered"),
    (boto.IncompleteReadError(actual_bytes=1, expected_bytes=2), "dropped before it answered"),
    (boto.ResponseStreamingError(error="reset"), "dropped before it answered"),
    (boto.SSLError(endpoint_url=URL, error="bad cert"), "secure (TLS) connection"),
    (boto.ProxyConnectionError(proxy_url="http://proxy:3128", error="no"), "A proxy"),
    (boto.NoCredentialsError(), "no usable AWS credentials"),
    (boto.PartialCredentialsError(provider="env", cred_var="secret"), "no usable AWS credentials"),
    (boto.CredentialRetrievalError(provider="sso", error_msg="x"), "no usable AWS credentials"),
    (boto.TokenRetrievalError(provider="sso", error_msg="x"), "no usable AWS credentials"),
    (boto.ProfileNotFound(profile="prod"), "AWS profile for `shop`"),
    (boto.NoRegionError(), "not available in the region"),
    (boto.CapacityNotAvailableError(), "stopped retrying"),
    (boto.ParamValidationError(report="bad"), "a bug in deploybot"),
    (boto.HTTPClientError(error="odd"), "dropped before it answered"),
    (boto.BotoCoreError(), "could not be reached"),
]


class _Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, operation: str):  # type: ignore[no-untyped-def]
        def call(**params):  # type: ignore[no-untyped-def]
            raise self.error

        return call


def _failing(error: Exception) -> BeanstalkPlatform:
    """A platform whose every call, read or write, raises `error`."""
    platform = BeanstalkPlatform("us-east-1")
    platform._clients = dict.fromkeys((False, True), _Failing(error))
    return platform


def _plain(message: str) -> None:
    assert "amazonaws.com" not in message and "proxy:3128" not in message
    assert "Error" not in message and "Traceback" not in message
    assert message.endswith(".") and message.count(". ") <= 2 and len(message) < 220


@pytest.mark.parametrize(("error", "words"), FAULTS, ids=lambda v: type(v).__name__)
def test_beanstalk_words_every_botocore_error(error, words):
    platform = _failing(error)
    with pytest.raises(PlatformError) as read:
        platform.status("shop")
    assert words in str(read.value)
    _plain(str(read.value))
    assert read.value.changed is False  # a failed read changed nothing
    with pytest.raises(PlatformError) as write:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert words in str(write.value)
    _plain(str(write.value))


def test_a_lost_answer_to_a_change_may_have_changed_it():
    platform = _failing(boto.ReadTimeoutError(endpoint_url=URL))
    with pytest.raises(PlatformError) as caught:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert caught.value.changed is None and "Check `/deploy status shop`" in str(caught.value)


@pytest.mark.parametrize(("error", "words"), FAULTS, ids=lambda v: type(v).__name__)
def test_cloudwatch_words_every_botocore_error_as_its_own(error, words):
    with pytest.raises(PlatformError) as caught:
        requests_per_minute(_Failing(error), "app/x/1", datetime.now(UTC), 5, "shop")
    _plain(str(caught.value))
    assert "Elastic Beanstalk" not in str(caught.value)


def test_cloudwatch_access_denied_names_the_permission():
    denied = boto.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "User: arn:... is not authorized"}},
        "GetMetricData",
    )
    with pytest.raises(PlatformError, match="allow cloudwatch:GetMetricData"):
        requests_per_minute(_Failing(denied), "app/x/1", datetime.now(UTC), 5, "shop")


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded"])
def test_cloudwatch_throttling_by_any_of_its_codes_is_a_rate_limit(code):
    # AWS throttles with `Throttling`, and with `ThrottlingException` or
    # `RequestLimitExceeded` on some endpoints; the last read "CloudWatch answered
    # RequestLimitExceeded.", a failure in AWS's jargon, not a rate limit.
    throttled = boto.ClientError(
        {"Error": {"Code": code, "Message": "Rate exceeded"}}, "GetMetricData"
    )
    with pytest.raises(Throttled) as caught:
        requests_per_minute(_Failing(throttled), "app/x/1", datetime.now(UTC), 5, "shop")
    assert (
        str(caught.value) == "CloudWatch is throttling the bot's requests. Try again in a minute."
    )
    assert caught.value.changed is False


@pytest.mark.parametrize(
    "code",
    ["ExpiredToken", "ExpiredTokenException", "IncompleteSignature", "InvalidSignatureException"],
)
def test_cloudwatch_refusing_expired_or_broken_credentials_says_so(code):
    # Credentials that expire mid-run (a session token's hour) were told "CloudWatch
    # answered ExpiredToken. Try again in a minute.", as if it would pass; Beanstalk's own
    # calls, on the same credentials, said an admin should check the profile.
    refused = boto.ClientError(
        {
            "Error": {
                "Code": code,
                "Message": "The security token included in the request is expired",
            }
        },
        "GetMetricData",
    )
    with pytest.raises(PlatformError) as caught:
        requests_per_minute(_Failing(refused), "app/x/1", datetime.now(UTC), 5, "shop")
    said = str(caught.value)
    assert "Try again" not in said, said
    assert said == (
        f"AWS refused the bot's credentials for `shop` ({code}). An admin should check "
        "the profile named in the registry."
    )


@pytest.mark.parametrize(
    ("code", "message", "secret"),
    [
        # A key id pasted with a newline: AWS quotes the request's Authorization header.
        (
            "IncompleteSignature",
            "Authorization header requires 'Signature'. Credential=AKIAIOSFODNN7EXAMPLE\n/x",
            "AKIAIOSFODNN7EXAMPLE",
        ),
        (
            "InvalidParameterValue",
            "Invalid option value: 'sk_live_42' (Namespace: "
            "'aws:elasticbeanstalk:application:environment', OptionName: 'STRIPE_KEY'): too long",
            "sk_live_42",
        ),
        ("SomethingNew", "Rejected request with Credential=ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7"),
    ],
)
def test_aws_words_never_carry_a_credential_or_a_config_value(code, message, secret):
    error = boto.ClientError({"Error": {"Code": code, "Message": message}}, "UpdateEnvironment")
    platform = _failing(error)
    with pytest.raises(PlatformError) as caught:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert secret not in str(caught.value)


def test_aws_words_keep_a_rejected_scaling_value():
    message = (
        "Invalid option value: 'x' (Namespace: 'aws:autoscaling:asg', OptionName: 'MinSize'): "
        "Value is not an integer."
    )
    error = boto.ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "U")
    platform = _failing(error)
    with pytest.raises(PlatformError) as caught:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert "Invalid option value: 'x'" in str(caught.value)


def test_long_aws_words_are_clipped():
    # A Slack section holds 3,000 characters: AWS's message is cut, not the whole answer.
    message = "Invalid option value: '" + "z" * 10_000 + "'"
    error = boto.ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "U")
    platform = _failing(error)
    with pytest.raises(PlatformError) as caught:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert "Invalid option value: 'zzz" in str(caught.value) and "z…" in str(caught.value)
    assert len(str(caught.value)) < 600


def test_a_5xx_on_a_change_may_have_made_it_and_on_a_read_did_nothing():
    error = boto.ClientError(
        {
            "Error": {"Code": "InternalFailure", "Message": "unknown error"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        "UpdateEnvironment",
    )
    platform = _failing(error)
    with pytest.raises(PlatformError) as write:
        platform._call("update_environment", "shop", EnvironmentName="shop")
    assert write.value.changed is None and "so it may have been made" in str(write.value)
    with pytest.raises(PlatformError) as read:
        platform.status("shop")
    assert read.value.changed is False
    assert str(read.value) == (
        "Elastic Beanstalk failed (InternalFailure), so `shop` could not be read. "
        "Try again in a minute."
    )


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (
            "AccessDenied",
            "AWS does not let the bot call elasticbeanstalk:UpdateEnvironment for `shop` "
            "(AccessDenied). An admin should allow it in the IAM policy of the bot's AWS user.",
        ),
        (
            "InsufficientPrivilegesException",
            "The bot's AWS user lacks a permission that elasticbeanstalk:UpdateEnvironment needs "
            "for `shop` (InsufficientPrivilegesException). An admin should check its IAM policy.",
        ),
    ],
)
def test_a_permission_aws_refuses_is_not_said_to_be_a_credentials_problem(code, says):
    # Valid credentials without a permission were told "AWS refused the bot's credentials …
    # check the profile": an admin rotated keys that were fine, where a policy lacked an action.
    denied = boto.ClientError(
        {"Error": {"Code": code, "Message": "User: arn:aws:iam::123456789012:user/bot is not "
                   "authorized to perform: elasticbeanstalk:UpdateEnvironment"}},
        "UpdateEnvironment",
    )  # fmt: skip
    with pytest.raises(PlatformError) as caught:
        _failing(denied)._call("update_environment", "shop", EnvironmentName="shop")
    assert str(caught.value) == says
