"""What must hold before a process starts, checked offline: the settings the process needs,
the credentials the registry names, and AWS credentials for every Beanstalk app.

`deploybot check-config` prints every problem; `serve` and `socket` refuse to start (before
any migration) while one stands, with the same sentences.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from bot.config import Config, ConfigError, trim_aws_keys
from bot.registry import Registry, Target

# What each process needs from the environment, by Config field name.
NEEDS = {
    "serve": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
    "socket": ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"),
}


def problems(config: Config, registry: Registry, env: Mapping[str, str]) -> list[str]:
    """Every problem found, each a sentence naming the setting and what to do."""
    found = [problem] if (problem := database_problem(config, env)) else []
    found += registry.problems(env)
    found += aws_problems(registry.targets(), env)
    return found


def database_problem(config: Config, env: Mapping[str, str]) -> str | None:
    """No DATABASE_URL on a Heroku dyno (`DYNO` is set): the default SQLite file would be
    each dyno's own, lost at every restart, and the release phase would migrate a file its
    one-off dyno then throws away."""
    if config.database_url or not env.get("DYNO"):
        return None
    return (
        "DATABASE_URL is not set on a Heroku dyno, where a SQLite file would be each dyno's "
        "own and lost at every restart; attach Heroku Postgres "
        "(`heroku addons:create heroku-postgresql:essential-0`)"
    )


def require_database(config: Config, env: Mapping[str, str]) -> None:
    """Raise ConfigError with `database_problem`'s sentence, for `migrate` and the worker."""
    if problem := database_problem(config, env):
        raise ConfigError(problem + ".")


def require(process: str, config: Config, registry: Registry, env: Mapping[str, str]) -> None:
    """Raise ConfigError naming every problem that would stop `process` at run time."""
    config.require(*NEEDS.get(process, ()))
    found = problems(config, registry, env)
    if found:
        raise ConfigError(
            "; ".join(found) + ". Fix these, then start again (`python -m bot check-config` "
            "lists them)."
        )


def aws_problems(targets: list[Target], env: Mapping[str, str]) -> list[str]:
    """Beanstalk apps whose AWS credentials boto3's chain cannot find, without calling AWS.

    The EC2 instance metadata endpoint is turned off for the check: a Heroku dyno has none,
    and asking for it would only wait for a timeout. Credentials that a profile gets by
    assuming a role are found here but fetched only when first used.
    """
    beanstalk = [t for t in targets if t.platform == "beanstalk"]
    if not beanstalk:
        return []
    import boto3  # only when a Beanstalk app exists: it is heavy to import
    import botocore.exceptions

    found = []
    env = {**env, "AWS_EC2_METADATA_DISABLED": "true"}
    trim_aws_keys(env)  # as the bot reads them: a key pasted as a bare newline is none
    with _environment(env):
        for target in beanstalk:
            where = f"profile `{target.aws_profile}`" if target.aws_profile else "the default chain"
            try:
                session = boto3.Session(profile_name=target.aws_profile, region_name=target.region)
                credentials = session.get_credentials()
            except botocore.exceptions.ProfileNotFound:
                found.append(
                    f"{target.alias}: AWS profile `{target.aws_profile}` is not in "
                    f"{_profile_files(env)}"
                )
                continue
            except (botocore.exceptions.BotoCoreError, ValueError) as error:
                # ValueError: botocore's container provider refusing the host its
                # AWS_CONTAINER_CREDENTIALS_FULL_URI names (or its token), the only one in the
                # chain that raises it; it had ended check-config in a traceback.
                found.append(
                    _keys_from_environment(target, env)
                    or _not_on_a_dyno(target, where, error)
                    or f"{target.alias}: AWS credentials from {where} fail: {error}"
                )
                continue
            if credentials is None:
                found.append(
                    f"{target.alias}: no AWS credentials found through {where}; set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (README, 'Beanstalk and AWS')"
                )
    return found


ENVIRONMENT_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _keys_from_environment(target: Target, env: Mapping[str, str]) -> str | None:
    """For a profile that assumes its role with keys from the environment (the README's),
    the keys that are missing, in words: botocore's own text names neither variable."""
    import botocore.session

    profile = botocore.session.Session(profile=target.aws_profile).get_scoped_config()
    missing = [name for name in ENVIRONMENT_KEYS if not env.get(name)]
    if profile.get("credential_source") != "Environment" or not missing:
        return None
    named, verb, them = (
        (" and ".join(missing), "are", "them as config vars")
        if len(missing) > 1
        else (missing[0], "is", "it as a config var")
    )
    return (
        f"{target.alias}: AWS profile `{target.aws_profile}` assumes its role with keys from "
        f"the environment (credential_source = Environment), and {named} {verb} not set; "
        f"set {them} (README, 'Beanstalk and AWS')"
    )


# Where a role profile's `credential_source` takes its keys from, for the two a Heroku dyno
# lacks. botocore says "Error when retrieving credentials from Ec2InstanceMetadata: No
# credentials found in credential_source referenced in profile prod", naming neither the way
# out nor the README.
_ROLE_SOURCES = {
    "Ec2InstanceMetadata": "the EC2 instance metadata",
    "EcsContainer": "an ECS container's credentials endpoint",
}
_KEYS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as config vars (README, 'Beanstalk and AWS')"


def _not_on_a_dyno(target: Target, where: str, error: Exception) -> str | None:
    """For credentials that come from where a Heroku dyno has nothing (instance metadata, a
    container's endpoint), the problem in words with the way out; None for other errors."""
    import botocore.exceptions

    provider = (
        error.kwargs.get("provider")
        if isinstance(error, botocore.exceptions.CredentialRetrievalError)
        else None
    )
    if provider in _ROLE_SOURCES:
        return (
            f"{target.alias}: AWS profile `{target.aws_profile}` takes its keys from "
            f"{_ROLE_SOURCES[provider]} (credential_source = {provider}), which a Heroku dyno "
            f"does not have; set credential_source = Environment, and {_KEYS}"
        )
    if provider == "container-role" or isinstance(error, ValueError):
        return (
            f"{target.alias}: AWS credentials from {where} come from a container credentials "
            "endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or "
            "AWS_CONTAINER_CREDENTIALS_FULL_URI), which a Heroku dyno does not have; unset it, "
            f"and set {_KEYS}"
        )
    return None


def _profile_files(env: Mapping[str, str]) -> str:
    """The two files boto3 reads profiles from, as `env` points it: a dyno has no home
    folder's ~/.aws, so the README commits a file and names it in AWS_CONFIG_FILE."""
    named = []
    for variable, default in (
        ("AWS_CONFIG_FILE", "~/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ):
        path = env.get(variable)
        if not path:
            named.append(default)
        elif os.path.isfile(os.path.expanduser(path)):
            named.append(f"{path} ({variable})")
        else:
            named.append(f"{path} ({variable}: no such file)")
    return " or ".join(named)


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """boto3 reads os.environ itself: show it `env` for the duration of the check."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
