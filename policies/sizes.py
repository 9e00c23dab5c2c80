"""Which sizes exist on which platform: Heroku dyno sizes and EC2 instance types; what
each platform calls the thing of that size an app runs on; and how many dynos of a size
Heroku runs per process type by default."""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.names import suggest
from policies.slack_text import escape

# Replies name what runs an app in its platform's word: a Beanstalk environment has
# instances, and "dynos" of one names something it does not have.
_UNITS = {"heroku": "dyno", "beanstalk": "instance"}


def unit_of(platform: str) -> str:
    """What an app of `platform` (a registry's `platform:`) runs on: "dyno" or "instance"."""
    return _UNITS[platform]


# Heroku's dyno sizes (devcenter "Dyno Types"); names are case-insensitive in the API.
HEROKU_SIZES = (
    "eco",
    "basic",
    "standard-1x",
    "standard-2x",
    "performance-m",
    "performance-l",
    "performance-l-ram",
    "performance-xl",
    "performance-2xl",
    "private-s",
    "private-m",
    "private-l",
    "private-l-ram",
    "private-xl",
    "private-2xl",
    "shield-s",
    "shield-m",
    "shield-l",
    "shield-l-ram",
    "shield-xl",
    "shield-2xl",
)
# Eco and Basic dynos run at most one dyno per process type.
SINGLE_DYNO_SIZES = frozenset({"eco", "basic"})
# Heroku's default scaling limits per process type (devcenter "Dyno Scaling and Process
# Limits", Cedar): one Eco or Basic dyno, which nothing raises; ten Performance, Private or
# Shield dynos, which Heroku support raises for an app on request. The bot cannot see a
# raised limit, so only the first is a refusal; past the second is a warning.
RAISABLE_LIMIT = 10
_RAISABLE_FAMILIES = ("performance-", "private-", "shield-")


@dataclass(frozen=True)
class PastLimit:
    """A count Heroku would refuse at a size by default: `refused` when no request to
    Heroku raises the limit, so there is no point keeping the setting."""

    refused: bool
    text: str


def past_heroku_limit(
    app: str, ptype: str, size: str, count: int, asked: str, stepwise: bool = True
) -> PastLimit | None:
    """Whether `count` `ptype` dynos of `size` (as the formation names it) is past Heroku's
    default limit per process type; `asked` is what the user asked for, as "max=12";
    `stepwise` when the autoscaler gets there a step at a time (not one `scale`)."""
    key = size.lower()
    if key in SINGLE_DYNO_SIZES and count > 1:
        return PastLimit(
            True,
            f"Heroku runs at most one {escape(size)} dyno per process type, so {asked} can "
            f"never be reached: scale `{ptype}` to a Standard size first "
            f"(`/deploy scale {ptype}=1:standard-1x {app}`).",
        )
    if key.startswith(_RAISABLE_FAMILIES) and count > RAISABLE_LIMIT:
        return PastLimit(
            False,
            f"Heroku runs at most {RAISABLE_LIMIT} {escape(size)} dynos per process type "
            "unless its support has raised this app's limit, so until then "
            + (f"each step past {RAISABLE_LIMIT} toward {asked}" if stepwise else asked)
            + " is refused.",
        )
    return None


# EC2 instance types: family (letters, generation digit, attribute letters) . size
_EC2_TYPE = re.compile(
    r"^(?P<family>[a-z]+\d+[a-z-]*)\."
    r"(?P<size>nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(-\d+xl)?)\Z"
)
_EC2_FAMILIES = frozenset(
    [
        "t2",
        "t3",
        "t3a",
        "t4g",
        "m4",
        "m5",
        "m5a",
        "m5d",
        "m5n",
        "m6a",
        "m6g",
        "m6gd",
        "m6i",
        "m6id",
        "m7a",
        "m7g",
        "m7gd",
        "m7i",
        "m7i-flex",
        "m8g",
        "c4",
        "c5",
        "c5a",
        "c5d",
        "c5n",
        "c6a",
        "c6g",
        "c6gd",
        "c6gn",
        "c6i",
        "c6id",
        "c7a",
        "c7g",
        "c7gd",
        "c7gn",
        "c7i",
        "c7i-flex",
        "c8g",
        "r4",
        "r5",
        "r5a",
        "r5b",
        "r5d",
        "r5n",
        "r6a",
        "r6g",
        "r6gd",
        "r6i",
        "r6id",
        "r7a",
        "r7g",
        "r7gd",
        "r7i",
        "r7iz",
        "r8g",
        "x2gd",
        "x2idn",
        "x2iedn",
        "z1d",
        "i3",
        "i3en",
        "i4g",
        "i4i",
        "d3",
        "g4dn",
        "g5",
        "g6",
        "p3",
        "p4d",
        "inf1",
        "inf2",
    ]
)


def check_size(platform: str, size: str) -> str | None:
    """None when `size` exists on `platform`, else a sentence saying what would."""
    size = size.lower()
    if platform == "heroku":
        if size in HEROKU_SIZES:
            return None
        hint = suggest(size, HEROKU_SIZES)
        extra = (
            f" Did you mean {hint}?" if hint else " Try standard-1x, standard-2x or performance-m."
        )
        return f"`{size}` is not a Heroku dyno size.{extra}"
    match = _EC2_TYPE.match(size)
    if match and match["family"] in _EC2_FAMILIES:
        return None
    return (
        f"`{size}` is not an EC2 instance type I know. "
        "Write it as AWS does, for example t3.small or m6i.large."
    )
