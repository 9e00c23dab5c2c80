"""The settings access starts from: DEPLOYBOT_ADMINS, and PORT, read from the environment."""

import pytest

from bot.config import Config, ConfigError, parse_admins


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
