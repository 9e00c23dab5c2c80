"""Which config var names and values each platform takes.

Heroku takes the names its Platform API schema does, `^\\w+$` in ECMA 262 (ASCII letters,
digits and underscores, a digit first too: `9LIVES`).
Beanstalk's environment properties (namespace aws:elasticbeanstalk:application:environment)
take more, by the limits its developer guide lists under "Environment property limits":
names of letters, digits and `_ . : / + \\ - @` (`spring.profiles.active`), up to 128
characters; values of letters, digits, white space and `_ . : / = + \\ - @ ' "`, up to 256
characters; all of them together no more than 4,096 bytes written as `key=value`.

The grammar takes any name one of them does (`NAME_RE`); `refusal` applies the app's own
platform's rule once the app is known. Values are never quoted back: they may be secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from policies.slack_text import code, shown

NAME_MAX = 128
# Matched whole (`fullmatch`). Beanstalk's name characters; Heroku's names are a part of them.
NAME_RE = re.compile(rf"[\w.:/+\\@-]{{1,{NAME_MAX}}}")
HEROKU_NAME_RE = re.compile(rf"[A-Za-z0-9_]{{1,{NAME_MAX}}}")
# "Alphanumeric" read as any letter or digit: AWS has the last word on one it does not take.
_BEANSTALK_VALUE_RE = re.compile(r"[\w\s.:/=+\\@'\"-]*")
BEANSTALK_VALUE_MAX, BEANSTALK_TOTAL_MAX = 256, 4096


def not_a_name(key: str, where: str = "") -> str:
    """The refusal of `key` as a name: the rule every platform takes."""
    if not key:
        return "A config var name is missing: write `LOG_LEVEL=debug` to set one, `LOG_LEVEL` to unset it."
    if len(key) > NAME_MAX:
        # Its characters may all be fine: the rule below would blame what is not wrong.
        return (
            f"{shown(key)} is {len(key):,} characters long; a config var name{where} has at "
            f"most {NAME_MAX}."
        )
    # Said before the app, so its platform, is known: Beanstalk takes more than Heroku.
    more = "" if where else " (Beanstalk also takes `. : / + \\ - @`)"
    return (
        f"{shown(key)} is not a valid config var name{where}: use letters, digits and "
        f"underscores{more}."
    )


def refusal(
    platform: str, changes: Mapping[str, str | None], present: Mapping[str, str]
) -> str | None:
    """Why `platform` would refuse `changes` (a value of None unsets) to a config that is
    `present`, or None."""
    if platform != "beanstalk":
        for key in changes:
            if not HEROKU_NAME_RE.fullmatch(key):
                return not_a_name(key, " on Heroku")
        return None
    for key, value in changes.items():
        if value is None:
            continue
        if not _BEANSTALK_VALUE_RE.fullmatch(value):
            return (
                f"The value of {code(key)} has a character Beanstalk does not take: use "
                "letters, digits, spaces and `_ . : / = + \\ - @ ' \"`."
            )
        if len(value) > BEANSTALK_VALUE_MAX:
            return (
                f"The value of {code(key)} is longer than the {BEANSTALK_VALUE_MAX} "
                "characters Beanstalk takes."
            )
    after = {**present, **changes}
    total = sum(len(f"{k}={v}".encode()) for k, v in after.items() if v is not None)
    if total > BEANSTALK_TOTAL_MAX:
        return (
            f"The environment properties would come to {total:,} bytes as KEY=VALUE, over "
            f"the {BEANSTALK_TOTAL_MAX:,} Beanstalk takes."
        )
    return None


def read_back(changes: Mapping[str, str | None], now: Mapping[str, str]) -> tuple[bool, str]:
    """Whether the config `now` holds the `changes` (None: unset), and a clause saying how
    each variable stands, its value never shown. Its wording fits the read-back's
    "I read it back: …, so it was made" and "…, not what was asked, yet"."""
    as_asked, otherwise = [], []
    for key in sorted(changes):
        wanted, name = changes[key], code(key)
        if wanted is None and key in now:
            otherwise.append(f"{name} is still set")
        elif wanted is None:
            as_asked.append(f"{name} is unset as asked")
        elif key not in now:
            otherwise.append(f"{name} is not set")
        elif now[key] != wanted:
            otherwise.append(f"{name} has another value")
        else:
            as_asked.append(f"{name} holds the value asked")
    if not otherwise:
        return True, _and(as_asked)
    # The ones as asked first, so "not what was asked" follows the ones it is about.
    return False, (f"{_and(as_asked)} but " if as_asked else "") + _and(otherwise)


# How Heroku describes a release a config change made ("Set FOO, BAR config vars").
_CONFIG_RELEASE = re.compile(r"(?:Set|Remove) (?P<keys>\w+(?:, \w+)*) config vars")


def changed_by(descriptions: Iterable[str]) -> list[str]:
    """The config var names the releases described changed, in order, each once: a
    rollback past them puts them back as they were, since Heroku rolls back config with
    code."""
    names: dict[str, None] = {}
    for description in descriptions:
        found = _CONFIG_RELEASE.fullmatch(description.strip())
        if found:
            names.update(dict.fromkeys(found["keys"].split(", ")))
    return list(names)


def _and(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else f"{', '.join(clauses[:-1])} and {clauses[-1]}"
