"""Access, first cut: read-only verbs for everyone, changes for DEPLOYBOT_ADMINS only."""

import pytest

from bot.config import Config, ConfigError, parse_admins
from policies.access import authorize

ADMINS = frozenset({"U0ADMIN"})


@pytest.mark.parametrize(
    ("user", "verb", "admins", "allowed"),
    [
        ("U0ADMIN", "scale", ADMINS, True),
        ("U0ADMIN", "kill", ADMINS, True),
        ("U0OTHER", "restart", ADMINS, False),
        ("U0OTHER", "kill", ADMINS, False),
        ("U0OTHER", "status", ADMINS, True),
        ("U0OTHER", "help", ADMINS, True),
        ("U0ADMIN", "scale", frozenset(), False),
        ("U0OTHER", "status", frozenset(), True),
    ],
)
def test_authorize(user: str, verb: str, admins: frozenset[str], allowed: bool) -> None:
    decision = authorize(user, verb, admins)
    assert decision.allowed is allowed
    assert decision.reason


def test_no_admins_says_who_must_fix_it() -> None:
    assert "DEPLOYBOT_ADMINS" in authorize("U0ADMIN", "kill", frozenset()).reason


def test_admins_parse_and_reject_malformed_ids() -> None:
    assert parse_admins(" U012AB3CD, W0ABCDEF ,") == frozenset({"U012AB3CD", "W0ABCDEF"})
    assert parse_admins("") == frozenset()
    with pytest.raises(ConfigError, match="alice"):
        parse_admins("U012AB3CD,alice")


@pytest.mark.parametrize("port", ["²", "9" * 5000, "0", "65536", "web"])
def test_a_port_that_is_no_port_is_one_plain_sentence(port):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"PORT": port})
    assert str(caught.value).startswith("PORT must be a TCP port number, not ")
    assert len(str(caught.value)) < 80
