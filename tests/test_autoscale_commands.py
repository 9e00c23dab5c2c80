"""`/deploy autoscale` and `/deploy pin` through the web app: settings stored, audited,
readable by everyone, changeable only by those allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.autoscale_settings import AutoscaleStore
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from tests.conftest import ADMIN, USER
from tests.webclient import SlackDriver, ack_text, button


@pytest.fixture
def web(new_app, config):
    return new_app(config)


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


@pytest.fixture
def with_registry(new_app, slack, tmp_path, monkeypatch, config):
    """A driver of a web app reading this registry text."""

    def made(text: str) -> SlackDriver:
        registry = tmp_path / "deploybot.yml"
        registry.write_text(text)
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
        return SlackDriver(new_app(config).test_client(), slack)

    return made


def say(driver, text, user=ADMIN):
    _, url = driver.command(text, user)
    return driver.reply(url)


def test_turning_it_on_shadow_and_off(driver, web):
    reply = say(driver, "autoscale myapp on max=6 target=queue:300ms")
    assert reply["response_type"] == "in_channel"
    assert "set autoscaling of `myapp`: on, web 1–6, target p95 queue time 300 ms" in reply["text"]
    # The autoscaler is never asked about cost, so the max's bill is said (6 Standard-1X).
    assert "At max=6, web costs ≈ $150/month at list prices." in reply["text"]
    store = AutoscaleStore(web.extensions["deploybot"].db)
    settings = store.settings("myapp")
    assert (settings.mode, settings.min, settings.max, settings.target_kind) == (
        "on",
        1,
        6,
        "queue_p95",
    )

    # Later changes keep what they do not mention.
    say(driver, "autoscale myapp shadow min=2")
    settings = store.settings("myapp")
    assert (settings.mode, settings.min, settings.max, settings.target_value) == (
        "shadow",
        2,
        6,
        300.0,
    )
    say(driver, "autoscale myapp off")
    assert store.settings("myapp").mode == "off"
    assert store.all_enabled() == []


def test_status_is_open_to_everyone_changes_are_not(driver):
    say(driver, "autoscale myapp on target=rpm:1200")
    status = say(driver, "autoscale myapp status", USER)["text"]
    assert (
        "Autoscaling of `myapp`: on, web 1–10, target requests 1200 rpm per dyno (chat, <@"
        in status
    )
    # What scale-down follows depends on the target: a rate's noise allowance, or a hold.
    assert "Scale-down keeps room for the rate's noise" in status
    refused = say(driver, "autoscale myapp off", USER)["text"]
    assert "You may not autoscale `myapp`" in refused
    say(driver, "autoscale myapp on target=queue:300ms")
    status = say(driver, "autoscale myapp status", USER)["text"]
    assert "Scale-down follows the highest wish of the last 1–5 min" in status


def test_pins_hold_until_they_expire_or_are_lifted(driver, web):
    reply = say(driver, "pin myapp web=4 for 90m")["text"]
    assert "pinned `myapp` at web=4 until" in reply
    # Only the autoscaler acts on a pin: with autoscaling off, the reply says nothing holds it.
    assert "autoscaling of `myapp` is off, so nothing acts on the pin" in reply
    say(driver, "autoscale myapp on")
    assert "the autoscaler holds it there" in say(driver, "pin myapp web=4 for 90m")["text"]
    assert "Pinned at web=4" in say(driver, "autoscale myapp status", USER)["text"]
    assert "unpinned `myapp`" in say(driver, "pin myapp off")["text"]
    assert "`myapp` was not pinned." in say(driver, "pin myapp off")["text"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("autoscale myapp", "Say on, off, shadow or status"),
        ("autoscale myapp on min=9 max=2", "min=9 is more than max=2"),
        ("autoscale myapp on target=p99:300ms", "is not a target"),
        ("autoscale myapp off max=3", "takes no settings"),
        ("pin myapp worker=2 for 1h", "only `web` can be pinned"),
        ("pin myapp web=2 for ever", "not a duration up to 7d"),
        # A worker type held at 0 for good is a stop, which `scale worker=0` asks about.
        (
            "autoscale myapp worker on max=0",
            "max=0 would hold `worker` at 0 whatever its queue holds: `/deploy scale worker=0 "
            "myapp` stops it after you confirm, and `/deploy autoscale myapp worker off` leaves it",
        ),
        # `pin` is its own command.
        ("autoscale myapp pin web=3", "A pin is its own command: `/deploy pin myapp web=N for 2h`"),
    ],
)
def test_bad_settings_are_refused(driver, web, text, says):
    ack, _ = driver.command(text, ADMIN)  # bad input is answered in the ack itself
    assert says in ack_text(ack)
    assert AutoscaleStore(web.extensions["deploybot"].db).settings("myapp") is None


def test_a_window_that_is_not_one_is_told_in_a_whole_sentence(driver):
    bad_time = say(driver, "autoscale myapp schedule add mon-fri 08:00-25:00 min=3")["text"]
    # What was typed had been quoted as Python does ('25:00', 'mo-fr'), not as Slack code.
    assert bad_time == "Not a schedule window: time `25:00`: use 24-hour HH:MM, such as `08:00`."
    days = say(driver, "autoscale myapp schedule add mo-fr 08:00-18:00 min=3")["text"]
    assert days.startswith("Not a schedule window: days `mo-fr`: use `mon`, `tue`"), days
    zone = say(driver, "autoscale myapp schedule add mon 08:00-18:00 min=3 tz=Mars/<Base>")
    assert "unknown timezone `Mars/&lt;Base&gt;`; use an IANA name" in zone["text"], zone["text"]
    zone = say(driver, "autoscale myapp schedule add mon 08:00-18:00 min=3 tz=europe/paris")
    assert zone["text"].endswith("did you mean `Europe/Paris`?"), zone["text"]


def test_settings_and_schedule_windows_change_from_chat(driver, web):
    say(driver, "autoscale myapp on max=6")
    reply = say(driver, "autoscale myapp set down_stabilization=2m max_step=4")
    assert reply["response_type"] == "in_channel", reply["text"]
    assert "set `myapp`'s autoscaler: down_stabilization=2m, max_step=4" in reply["text"]
    added = say(driver, "autoscale myapp schedule add mon-fri 08:00-18:00 min=3 tz=Europe/Paris")
    assert "added to `myapp`'s schedule: min 3 Mon–Fri 08:00–18:00 Europe/Paris" in added["text"]
    say(driver, "autoscale myapp schedule add sat,sun 00:00-00:00 max=2")
    listed = say(driver, "autoscale myapp schedule list", USER)["text"]
    assert "1. Mon–Fri 08:00–18:00 Europe/Paris: min 3" in listed
    assert "2. Sat,Sun 00:00–00:00 UTC: max 2" in listed
    status = say(driver, "autoscale myapp status", USER)["text"]
    assert f"last 2 min (chat, <@{ADMIN}>" in status
    assert "Step per tick: 4 dynos (chat," in status
    assert "Schedule: Mon–Fri 08:00–18:00 Europe/Paris: min 3" in status
    # Each change is audited.
    history = say(driver, "history myapp")["text"]
    assert "autoscale myapp schedule add mon-fri 08:00-18:00 min=3 tz=Europe/Paris" in history
    assert "autoscale myapp set down_stabilization=2m max_step=4" in history

    removed = say(driver, "autoscale myapp schedule remove 1")["text"]
    assert "removed `myapp`'s window Mon–Fri 08:00–18:00 Europe/Paris" in removed
    say(driver, "autoscale myapp set down_stabilization=default")
    status = say(driver, "autoscale myapp status")["text"]
    assert "longer the jumpier the traffic (default)" in status
    assert "Mon–Fri" not in status and "Sat,Sun 00:00–00:00 UTC: max 2" in status
    assert "no schedule window 5" in say(driver, "autoscale myapp schedule remove 5")["text"]
    # It had read "99h is longer than the 1h most a scale-down may wait.", the value bare.
    assert say(driver, "autoscale myapp set down_stabilization=99h")["text"] == (
        "`99h` is longer than an hour, the longest a scale-down may wait: write a span such "
        "as 5m or 30m."
    )
    # Past timedelta's range it had raised OverflowError: "Something went wrong".
    huge = "9" * 20 + "h"
    assert say(driver, f"autoscale myapp set down_stabilization={huge}")["text"] == (
        f"`{huge}` is longer than an hour, the longest a scale-down may wait: write a span "
        "such as 5m or 30m."
    )


def test_chat_cannot_change_what_the_registry_sets(with_registry):
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    autoscale:\n      down_stabilization: 3m\n"
        "      schedule:\n        - {days: daily, from: '08:00', to: '20:00', min: 2}\n"
    )
    text = say(driver, "autoscale myapp set down_stabilization=1m")["text"]
    assert "registry entry sets `autoscale: down_stabilization:`" in text
    text = say(driver, "autoscale myapp schedule add daily 00:00-06:00 max=1")["text"]
    assert "registry entry has `autoscale: schedule:`" in text
    status = say(driver, "autoscale myapp status")["text"]
    assert "last 3 min (registry)" in status
    assert "Schedule: daily 08:00–20:00 UTC: min 2" in status


def test_a_pin_that_raises_the_cost_past_the_threshold_asks_first(driver, web, heroku):
    store = AutoscaleStore(web.extensions["deploybot"].db)
    # `scale web=20 myapp` asks first (+19 Standard-1X, past the default $250): a pin at 20
    # had been kept at once, and the autoscaler, which is never asked, then ran 20.
    prompt = say(driver, "pin myapp web=20 for 2h")
    assert prompt["text"].startswith(f"<@{ADMIN}> asks to pin `myapp`: web 1 → 20.")
    assert "past this app's threshold, so I ask first" in prompt["text"]
    assert store.pin("myapp", _now()) is None
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled `pin myapp web=20 for 2h`" in driver.reply(url)["text"]
    assert store.pin("myapp", _now()) is None

    prompt = say(driver, "pin myapp web=20 for 2h")
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert text.startswith(f"<@{ADMIN}> pinned `myapp` at web=20 until"), text
    pin = store.pin("myapp", _now())
    assert pin is not None and pin.quantity == 20
    assert timedelta(minutes=119) < pin.until - _now() <= timedelta(hours=2)
    history = say(driver, "history myapp")["text"]
    assert "pin myapp web=20 for 2h" in history and "cancelled" in history
    # A pin that costs less than the threshold is kept at once, as `scale` does it.
    assert "pinned `myapp` at web=3" in say(driver, "pin myapp web=3 for 1h")["text"]
    assert heroku.formation("myapp")["web"][0] == 1  # the autoscaler, not the pin, scales


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_window_already_there_is_refused_and_only_the_first_covering_one_is_now(driver):
    say(driver, "autoscale myapp schedule add daily 00:00-00:00 min=2")
    # The same days and hours again had been kept as window 2, which never applied.
    again = say(driver, "autoscale myapp schedule add daily 00:00-00:00 min=5")["text"]
    assert again.startswith(
        "`myapp`'s window 1 already covers daily 00:00–00:00 UTC: `schedule remove 1` first "
        "to change its limits."
    )
    say(driver, "autoscale myapp schedule add mon-sun 06:00-05:59 min=4")
    listed = say(driver, "autoscale myapp schedule list")["text"]
    assert "2. daily 06:00–05:59 UTC: min 4" in listed and "3." not in listed
    # Both cover now, and only the first applies (`policies.autoscale.bounds`): status had
    # marked both "(now)".
    status = say(driver, "autoscale myapp status")["text"]
    assert status.count("(now)") == 1
    assert "Schedule: daily 00:00–00:00 UTC: min 2 (now)" in status


def test_a_chat_window_above_the_registry_max_is_refused(with_registry):
    driver = with_registry("apps:\n  myapp:\n    platform: heroku\n    max: 4\n")
    # The registry refuses such a window at load; chat had kept it, and every tick it
    # covered was then clamped by the guardrail.
    text = say(driver, "autoscale myapp schedule add mon-fri 08:00-18:00 min=6")["text"]
    assert text.startswith(
        "`myapp` allows at most 4 `web` dynos (the registry's `max`), so a window asking for 6 "
        "is refused. Ask for 4 or fewer, or raise the registry's `max`."
    )
    assert "no schedule windows" in say(driver, "autoscale myapp schedule list")["text"]
    assert (
        "(window 1)"
        in say(driver, "autoscale myapp schedule add mon-fri 08:00-18:00 max=4")["text"]
    )


def test_a_beanstalk_environment_is_told_its_own_group_scales_it(tmp_path):
    from tests.test_console import run_lines

    output = run_lines(
        tmp_path,
        "autoscale demo-shop status",
        "autoscale demo-shop schedule list",
        "autoscale demo-shop off",
        "history demo-shop",
    )
    said = (
        "`demo-shop` is an Elastic Beanstalk environment: its Auto Scaling group scales it "
        "(`aws:autoscaling:asg` MinSize/MaxSize and triggers), not this autoscaler"
    )
    # Status had listed Heroku's scale-down hold and step, and `schedule list` offered a
    # `schedule add` that is refused.
    assert output.count(said) == 3, output
    assert "Step per tick" not in output and "Add one with" not in output
    # `off` had read the environment and stored web 2–8 settings that nothing uses.
    assert "set autoscaling of `demo-shop`" not in output
    # It had read "…is off: `demo-shop` is an Elastic Beanstalk environment: …".
    assert f"Autoscaling of `demo-shop` is off. {said}." in output


def test_a_min_that_raises_the_cost_past_the_threshold_asks_first(driver, web):
    store = AutoscaleStore(web.extensions["deploybot"].db)
    # min=20 is 19 more Standard-1X dynos at the next tick, as `scale web=20` would be.
    prompt = say(driver, "autoscale myapp on min=20 max=30")
    assert prompt["text"].startswith(f"<@{ADMIN}> asks to autoscale `myapp`: web 1 → 20.")
    assert store.settings("myapp") is None
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert text.startswith(f"<@{ADMIN}> set autoscaling of `myapp`: on, web 20–30"), text
    # The same min in shadow mode changes nothing, so it is kept at once; so is a small one.
    assert "shadow, web 20–30" in say(driver, "autoscale myapp shadow")["text"]
    assert "on, web 3–30" in say(driver, "autoscale myapp on min=3")["text"]
    # Refused for what it is, not asked about first and refused after the click.
    assert say(driver, "autoscale myapp on min=40")["text"].startswith("min=40 is more than max=30")


def test_the_status_of_an_app_that_is_not_there_says_so(driver):
    # It had answered "web off (never set)" and the defaults, as for a real app.
    text = say(driver, "autoscale nosuchapp status", USER)["text"]
    assert text.startswith("Heroku has no app called `nosuchapp`"), text
    text = say(driver, "autoscale nosuchapp schedule list", USER)["text"]
    assert text.startswith("Heroku has no app called `nosuchapp`"), text
    assert "Autoscaling of `myapp`: web off" in say(driver, "autoscale myapp status", USER)["text"]


def test_a_step_above_the_registry_max_step_is_refused(with_registry):
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    guardrails:\n      max_step: 4\n"
    )
    # Kept, each tick's larger step was then refused by the guardrail ("Not done:").
    text = say(driver, "autoscale myapp set max_step=6")["text"]
    assert text.startswith(
        "`myapp` changes a process type by at most 4 per command (the registry's "
        "`guardrails: max_step:`), so max_step=6 is refused."
    ), text
    assert "Step per tick: +100 %" in say(driver, "autoscale myapp status")["text"]
    assert "max_step=3" in say(driver, "autoscale myapp set max_step=3")["text"]


def test_a_scale_down_hold_of_nothing_reads_as_such(driver):
    say(driver, "autoscale myapp set down_stabilization=0s")
    # It had read "the highest wish of the last 0 min".
    status = say(driver, "autoscale myapp status")["text"]
    assert "Scale-down follows each tick's own wish, with no hold (chat, <@" in status
    say(driver, "autoscale myapp set down_stabilization=90s")
    assert (
        "the highest wish of the last 1.5 min (chat"
        in say(driver, "autoscale myapp status")["text"]
    )


def test_a_worker_type_without_a_queue_endpoint_is_told_what_it_needs_first(driver):
    # It had offered `autoscale myapp worker on …`, which is then refused for the endpoint.
    status = say(driver, "autoscale myapp worker status")["text"]
    assert status.endswith(
        "Worker `worker`: off (never set); it scales from the app's job queue once the "
        "registry names its endpoint (`autoscale: queue_url:`)."
    ), status


def test_settings_made_while_autoscaling_is_off_say_nothing_acts_on_them_yet(driver):
    # As a pin says it: a window or a step kept for an autoscaler that is off had read as
    # in force.
    idle = (
        "Autoscaling of `myapp` is off, so nothing acts on it until `/deploy autoscale myapp on`."
    )
    assert idle in say(driver, "autoscale myapp schedule add daily 08:00-09:00 min=2")["text"]
    assert idle in say(driver, "autoscale myapp set max_step=2")["text"]
    say(driver, "autoscale myapp on")
    assert "nothing acts" not in say(driver, "autoscale myapp set max_step=3")["text"]


def test_a_schedule_window_whose_min_raises_the_cost_past_the_threshold_asks_first(driver, web):
    store = AutoscaleStore(web.extensions["deploybot"].db)
    # A window's min=20 is 19 more Standard-1X dynos each time it opens, as a pin at 20 or
    # `autoscale on min=20` would be, which ask first: the window had been kept at once.
    asked = "autoscale myapp schedule add mon-fri 08:00-18:00 min=20 max=30"
    prompt = say(driver, asked)
    assert prompt["text"].startswith(f"<@{ADMIN}> asks to autoscale `myapp`: web 1 → 20."), prompt
    assert "past this app's threshold, so I ask first" in prompt["text"]
    assert store.overrides().windows("myapp") == []
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert f"cancelled `{asked}`" in driver.reply(url)["text"]
    assert store.overrides().windows("myapp") == []

    prompt = say(driver, asked)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert "added to `myapp`'s schedule: min 20, max 30 Mon–Fri 08:00–18:00 UTC" in text, text
    assert len(store.overrides().windows("myapp")) == 1
    # A small min, a max alone and a removal are kept at once.
    assert (
        "added to" in say(driver, "autoscale myapp schedule add sat,sun 08:00-18:00 min=2")["text"]
    )
    assert "added to" in say(driver, "autoscale myapp schedule add daily 00:00-06:00 max=1")["text"]
    assert "removed" in say(driver, "autoscale myapp schedule remove 1")["text"]


def test_hundreds_of_schedule_windows_are_counted_and_said_where_to_read(with_registry):
    # Status had listed every window until the message was cut, ending "Ask about one app
    # to see it", about the one app asked about; its pin and decisions were cut with them.
    windows = "".join(
        f"        - {{days: daily, from: '{n // 60:02}:{n % 60:02}', to: '23:59', "
        f"min: 2, timezone: America/Argentina/Buenos_Aires}}\n"
        for n in range(400)
    )
    driver = with_registry(
        f"apps:\n  myapp:\n    platform: heroku\n    autoscale:\n      schedule:\n{windows}"
    )
    status = say(driver, "autoscale myapp status")["text"]
    assert status.count("Schedule: daily") == 10
    assert (
        "…and 390 more schedule windows: `/deploy autoscale myapp schedule list` lists them."
        in status
    )
    assert "Ask about one app" not in status and "more than one Slack message" not in status
    listed = say(driver, "autoscale myapp schedule list")["text"]
    shown = [line for line in listed.splitlines() if " daily " in line]
    assert 0 < len(shown) < 400
    assert listed.endswith(
        f"…and {400 - len(shown):,} more windows, more than one Slack message holds. The "
        "registry's `autoscale: schedule:` for `myapp` has them all."
    ), listed[-300:]


def test_counts_past_heroku_s_limit_at_the_size_are_refused_or_warned(driver, heroku):
    # Kept, each was a setting the autoscaler could never reach: Heroku refused every step
    # past one Basic dyno, and past ten Performance-M until its support raised the limit.
    heroku.add_app("tiny", formation={"web": (1, "basic")})
    heroku.add_app("big", formation={"web": (2, "performance-m")})
    one = "Heroku runs at most one Basic dyno per process type, so {} can never be reached"
    for text, asked in [
        ("autoscale tiny on max=5", "max=5"),
        ("autoscale tiny shadow", "the default max=10"),
        ("pin tiny web=3 for 1h", "a pin at web=3"),
        ("autoscale tiny schedule add mon-fri 09:00-17:00 min=2", "a window asking for 2"),
    ]:
        reply = say(driver, text)["text"]
        assert reply.startswith(one.format(asked)), reply
        assert "`/deploy scale web=1:standard-1x tiny`" in reply
    assert "web off (never set)" in say(driver, "autoscale tiny status")["text"]
    assert "autoscaling of `tiny`: off" in say(driver, "autoscale tiny off")["text"]
    assert "pinned `tiny` at web=1" in say(driver, "pin tiny web=1 for 1h")["text"]
    # Performance-M: kept, with what Heroku will do until its support raises the limit.
    ten = (
        "Heroku runs at most 10 Performance-M dynos per process type unless its support has "
        "raised this app's limit, so until then each step past 10 toward {} is refused."
    )
    reply = say(driver, "autoscale big on max=12")["text"]
    assert reply.startswith(f"<@{ADMIN}> set autoscaling of `big`: on, web 2–12"), reply
    assert "\n" + ten.format("max=12") in reply
    prompt = say(driver, "pin big web=11 for 1h")  # +9 Performance-M: asked first
    assert "\n" + ten.format("web=11") + "\n" in prompt["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    reply = driver.reply(url)["text"]
    assert "pinned `big` at web=11" in reply and "\n" + ten.format("a pin at web=11") in reply
    assert "Heroku runs at most" not in say(driver, "autoscale big on max=10")["text"]
    # A scale that asks first for its cost says it too: the confirmer is about to pay for it.
    once = ten.replace("each step past 10 toward {}", "{}")
    prompt = say(driver, "scale web=12 big")
    assert "\n" + once.format("web=12") + "\n" in prompt["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "Cannot update to more than 10 Performance-M size dynos" in driver.reply(url)["text"]
    # A max kept from before is named as such, not as the default, once the size shrinks.
    heroku.add_app("mid", formation={"web": (1, "standard-1x")})
    assert "on, web 1–5" in say(driver, "autoscale mid on max=5")["text"]
    assert "(Standard-1X → Basic)" in say(driver, "scale web=1:basic mid")["text"]
    assert say(driver, "autoscale mid shadow")["text"].startswith(
        one.format("the max=5 already set")
    )


def test_autoscaling_turns_off_whatever_max_the_registry_now_allows(with_registry):
    # The registry's max lowered below the max chat had set: `off` had been refused as
    # "… so the max=6 already set is refused", leaving the autoscaler on.
    entry = "apps:\n  myapp:\n    platform: heroku\n"
    say(with_registry(entry), "autoscale myapp on max=6")
    driver = with_registry(entry + "    max: 4\n")
    reply = say(driver, "autoscale myapp off")
    assert reply["response_type"] == "in_channel", reply["text"]
    assert "set autoscaling of `myapp`: off" in reply["text"]
    assert "costs" not in reply["text"]


def test_settings_for_an_app_heroku_does_not_have_are_refused_as_on_is(driver):
    # `on` said there is no such app; `set` and `schedule add` had kept and audited the
    # settings of a name no app goes by.
    for command in ("set max_step=2", "schedule add daily 08:00-09:00 min=2"):
        text = say(driver, f"autoscale nosuchapp {command}")["text"]
        assert text.startswith("Heroku has no app called `nosuchapp`"), text
    # Nothing was kept that would make the name read as an app's.
    text = say(driver, "autoscale nosuchapp status", USER)["text"]
    assert text.startswith("Heroku has no app called `nosuchapp`"), text


def test_the_status_of_a_type_the_app_does_not_run_offers_no_command_to_type(with_registry):
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    autoscale:\n"
        "      queue_url: https://myapp.example.com\n"
    )
    # It had offered `autoscale myapp urgent on target=latency:30s`, then refused as
    # "myapp has no `urgent` process type".
    status = say(driver, "autoscale myapp urgent status")["text"]
    assert status.endswith(
        "Worker `urgent`: `myapp` has no `urgent` process type (it has: `web`, `worker`)."
    ), status
    status = say(driver, "autoscale myapp worker status")["text"]
    assert status.endswith(
        "Worker `worker`: off (never set); `/deploy autoscale myapp worker on "
        "target=latency:30s` scales it from its job queue."
    ), status


@pytest.mark.parametrize("command", ["on", "worker off"])
def test_an_on_for_an_app_heroku_does_not_have_leaves_one_finished_row(driver, command):
    # Its started row had stayed "…" (under way) forever beside the `failed` one.
    text = say(driver, f"autoscale nosuchapp {command}")["text"]
    assert text.startswith("Heroku has no app called `nosuchapp`"), text
    lines = say(driver, "history nosuchapp", USER)["text"].splitlines()
    assert len(lines) == 2 and lines[1].startswith("✗ failed"), lines


def test_a_hand_scale_of_autoscaled_web_dynos_says_the_autoscaler_moves_them_again(driver):
    # The reply had said only "scaled `myapp`: web 1 → 2.": nothing of the autoscaler, which
    # moved it back from traffic on its next tick, nor of how to hold it.
    say(driver, "autoscale myapp on max=6")
    text = say(driver, "scale web=2 myapp")["text"].split("\n")[0]
    assert text.endswith(
        "scaled `myapp`: web 1 → 2. The autoscaler is on for its web dynos and will move "
        "them again from traffic. To hold it, `/deploy pin myapp web=2 for 2h`."
    ), text
    # In shadow it only decides: nothing will move it.
    say(driver, "autoscale myapp shadow")
    text = say(driver, "scale web=3 myapp")["text"].split("\n")[0]
    assert text.endswith("scaled `myapp`: web 2 → 3."), text


def test_a_min_above_the_default_max_with_no_max_given_is_refused_saying_so(driver, web):
    # `on min=15` with no max had quietly raised the default max (10) to 15: the reply read
    # "web 15–15", an autoscaler that could never scale, and nothing said why.
    for mode in ("on", "shadow"):
        reply = say(driver, f"autoscale myapp {mode} min=15")["text"]
        assert reply == (
            "min=15 is more than the default max=10 (none was given): give a max too, 15 or "
            f"more, as in `/deploy autoscale myapp {mode} min=15 max=20`."
        ), reply
    assert AutoscaleStore(web.extensions["deploybot"].db).settings("myapp") is None
    # Given together, or with a min within the default, it is set as before.
    assert "shadow, web 12–20" in say(driver, "autoscale myapp shadow min=12 max=20")["text"]


@pytest.mark.parametrize(
    "text",
    [
        "scale clock=1 myapp",
        "kill myapp clock",
        "restart myapp clock",
        "logs myapp clock",
        "autoscale myapp clock on",
        "autoscale myapp clock status",
    ],
)
def test_every_verb_says_a_missing_process_type_in_one_sentence(with_registry, text):
    # Scale and kill said "has no `clock` process type (it has: …)", restart and logs "has
    # no process type `clock` (it has: …)", autoscale "…; its formation has …".
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    autoscale:\n"
        "      queue_url: https://myapp.example.com\n"
    )
    said = "`myapp` has no `clock` process type (it has: `web`, `worker`)."
    assert said in say(driver, text)["text"]
