"""botocore's failures as one or two plain sentences, for every AWS service the bot calls
(Elastic Beanstalk, CloudWatch).

`ClientError` (AWS answered, with an error code) is each service's own to word, since its
codes differ; this module words everything botocore raises before or instead of an
answer: missing credentials or region, an endpoint that cannot be reached, a timeout, a
dropped connection. What decides the advice is whether a change may have landed: a
request that never left changed nothing, one whose answer was lost may have.
"""

from __future__ import annotations

import logging

from botocore import exceptions as boto

from bot.platforms.base import PlatformError, lost_answer

log = logging.getLogger(__name__)

# The error codes with which AWS refuses the credentials themselves, for any service: a key
# it does not know, a signature that does not match (a key pasted with a newline or space:
# the message quotes the Authorization header), a session token that expired mid-run.
REFUSED_CREDENTIALS = (
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "AuthorizationHeaderMalformed",
    "ExpiredToken",
    "ExpiredTokenException",
)
# The error codes with which AWS throttles a caller, for any service: `Throttling` on the Query
# APIs (Elastic Beanstalk, CloudWatch), `ThrottlingException` on JSON ones, and
# `RequestLimitExceeded` on some endpoints (botocore's retries count all three as throttles).
THROTTLING = ("Throttling", "ThrottlingException", "RequestLimitExceeded")
_CREDENTIALS = (
    boto.NoCredentialsError,
    boto.PartialCredentialsError,
    boto.CredentialRetrievalError,
    boto.MetadataRetrievalError,
    boto.NoAuthTokenError,
    boto.TokenRetrievalError,
    boto.SSOError,
    boto.LoginError,
)
_CONFIGURATION = (boto.ProfileNotFound, boto.ConfigNotFound, boto.ConfigParseError)
_REGION = (boto.NoRegionError, boto.InvalidRegionError, boto.ServiceNotInRegionError)
# The request was sent, then the connection ended before a whole answer came back
# (HTTPClientError is the HTTP layer's own base class: checked after the read timeout).
_DROPPED = (boto.IncompleteReadError, boto.HTTPClientError)


def botocore_error(
    error: boto.BotoCoreError, service: str, app: str, *, write: bool = False
) -> PlatformError:
    """`error` from a call to `service` ("Elastic Beanstalk", "CloudWatch") for `app`;
    `write` says the call changes something, so a lost answer may hide a change."""
    # The class name only: botocore's messages carry endpoint URLs and profile paths.
    log.warning("aws request failed", extra={"service": service, "error": type(error).__name__})
    if isinstance(error, _CREDENTIALS):
        return PlatformError(
            f"The bot has no usable AWS credentials for `{app}`. An admin should configure "
            "the profile named in the registry (or the AWS_* variables).",
            app=app,
        )
    if isinstance(error, _CONFIGURATION):
        return PlatformError(
            f"The AWS profile for `{app}` is missing or unreadable on the bot. An admin should "
            "add it (or fix the registry's `aws_profile`).",
            app=app,
        )
    if isinstance(error, _REGION):
        return PlatformError(
            f"{service} is not available in the region the registry gives for `{app}`. "
            "Check its `region`.",
            app=app,
        )
    if isinstance(error, boto.SSLError):
        return PlatformError(
            f"The bot could not make a secure (TLS) connection to {service}. An admin should "
            "check the network."
        )
    if isinstance(error, boto.ProxyConnectionError):
        return PlatformError(
            f"A proxy between the bot and {service} refused the connection. Try again in a minute."
        )
    if isinstance(error, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return PlatformError(f"{service} could not be reached. Try again in a minute.")
    if isinstance(error, boto.ReadTimeoutError):
        return lost_answer(f"{service} did not answer in time.", app, write=write)
    if isinstance(error, _DROPPED):
        return lost_answer(
            f"The connection to {service} dropped before it answered.", app, write=write
        )
    if isinstance(error, boto.CapacityNotAvailableError):
        return PlatformError(
            f"{service} kept failing and the bot stopped retrying. Try again in a few minutes."
        )
    if isinstance(error, boto.ParamValidationError):
        log.error("aws request refused by botocore's model", extra={"service": service})
        return PlatformError(
            f"The bot built a request {service} does not accept: a bug in deploybot, "
            "logged for its maintainers."
        )
    return lost_answer(f"{service} could not be reached.", app, write=write)
