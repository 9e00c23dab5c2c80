"""Access rules and approvals on every path a change can take: into the other app of a
promote or swap, an approval of a prompt whose asker lost the right, a Confirm whose change
became a protected one, a rule written with the platform's name, a deleted user group, and
refusals in the audit trail. Each case got through (or locked everyone out) before."""

from __future__ import annotations

import pytest

from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from tests.conftest import ADMIN, OTHER_ADMIN, USER
from tests.test_beanstalk import PROD_KEY, aws  # noqa: F401  (fixture)
from tests.test_deployments import history, say, with_registry  # noqa: F401  (fixtures)
from tests.test_deployments_beanstalk import BLUE_GREEN
from tests.test_home import open_home
from tests.webclient import button

PROMOTE_REGISTRY = """\
heroku:
  allow_unlisted: false
access:
  - allow: [promote]
    users: [UUSER001]
    apps: [myapp]
  - deny: ["*"]
    users: [UUSER001]
    apps: [prod]
apps:
  myapp:
    platform: heroku
  prod:
    platform: heroku
    app: other-app
"""


def test_a_promotion_into_an_app_the_user_may_not_change_is_refused(with_registry, heroku, config):  # noqa: F811
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    driver = with_registry(PROMOTE_REGISTRY)
    assert "Denied by the rule" in say(driver, "ship prod", USER)["text"]
    text = say(driver, "promote myapp", USER)["text"]
    assert text.startswith("You may not promote into `prod`: Denied by the rule")
    assert heroku.calls("POST", "/pipeline-promotions") == []
    assert next((e.verb, e.outcome) for e in history(config)) == ("promote", "refused")
    heroku.promotion_pending_reads = 0  # done when first read: answered in the reply
    assert "promoted `myapp`" in say(driver, "promote myapp", ADMIN)["text"]


SWAP_RULES = """\
access:
  - allow: [swap]
    users: [UUSER001]
    apps: [shop-green]
  - deny: ["*"]
    users: [UUSER001]
    apps: [shop]
"""


def test_a_swap_needs_the_right_on_both_environments(with_registry, aws):  # noqa: F811
    aws.add_environment(
        "shop-green", region="us-east-1", access_key=PROD_KEY, application="shop", min_size=1
    )
    driver = with_registry(BLUE_GREEN + SWAP_RULES)
    assert "Denied by the rule" in say(driver, "swap shop shop-green", USER)["text"]
    # Named the other way round, it had passed the gate and moved shop's CNAME.
    text = say(driver, "swap shop-green shop", USER)["text"]
    assert text.startswith("You may not swap into `shop`: Denied by the rule")
    assert aws.calls("SwapEnvironmentCNAMEs") == []


PROTECTED = """\
apps:
  shop:
    platform: heroku
    guardrails:
      protected: true
      confirm_above_usd: 30
"""


def test_a_confirm_whose_change_became_a_protected_stop_is_refused(with_registry, heroku):  # noqa: F811
    heroku.add_app("shop", formation={"web": (1, "standard-1x"), "worker": (0, "standard-1x")})
    driver = with_registry(PROTECTED)
    # Costly, so it asks first; worker is already 0, so no approval is asked.
    prompt = say(driver, "scale web=3 worker=0 shop", ADMIN)
    assert button(prompt, CONFIRM_ACTION)["text"]["text"] == "Confirm"
    assert "worker 0 → 1" in say(driver, "scale worker=1 shop", OTHER_ADMIN)["text"]
    # Now the Confirm stops a running worker on a protected app: a second person's call.
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert text.startswith("Nothing was changed: `shop`'s worker went from 0 to 1 since")
    assert heroku.formation("shop")["worker"][0] == 1 and heroku.formation("shop")["web"][0] == 1


def test_a_confirm_acts_only_on_what_its_prompt_showed(with_registry, heroku, config):  # noqa: F811
    driver = with_registry("heroku:\n  allow_unlisted: true\n")
    prompt = say(driver, "kill myapp worker", ADMIN)
    assert "worker 1 → 0" in prompt["text"]
    assert "worker 1 → 3" in say(driver, "scale worker=3 myapp", OTHER_ADMIN)["text"]
    # It had stopped 3 workers where the prompt showed 1, and its saving.
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert text.startswith(
        "Nothing was changed: `myapp`'s worker went from 1 to 3 since it was asked. "
        "Run `/deploy kill myapp worker` again to see what it would do now."
    )
    assert heroku.formation("myapp")["worker"][0] == 3
    assert next(e.outcome for e in history(config)) == "refused"


RIGHTS = """\
access:
  - allow: [kill, scale]
    users: [UUSER001]
apps:
  shop:
    platform: heroku
    guardrails:
      protected: true
"""
REVOKED = RIGHTS.replace("allow: [kill, scale]", "deny: [kill, scale]")


def test_an_approval_judges_the_askers_own_right_again(with_registry, heroku, config):  # noqa: F811
    heroku.add_app("shop", formation={"web": (1, "standard-1x")})
    prompt = say(with_registry(RIGHTS), "kill shop", USER)
    assert "needs a second person's approval" in prompt["text"]
    after = with_registry(REVOKED)  # USER may no longer kill: the approval had killed anyway
    _, url = after.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = after.reply(url)["text"]
    assert text.startswith(f"<@{USER}>, who asked, may no longer kill `shop`")
    assert heroku.formation("shop")["web"][0] == 1
    [refused] = [e for e in history(config) if e.outcome == "refused"]
    assert (refused.verb, refused.user_id) == ("kill", ADMIN)


def test_a_refused_click_is_in_the_audit_trail(with_registry, heroku, config):  # noqa: F811
    heroku.add_app("shop", formation={"web": (1, "standard-1x")})
    driver = with_registry(RIGHTS)
    prompt = say(driver, "kill shop", USER)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], USER)
    assert "must come from someone other than" in driver.reply(url)["text"]
    [entry] = [e for e in history(config) if e.verb == "kill"]
    assert (entry.outcome, entry.user_id) == ("refused", USER)
    assert "must come from someone other than" in (entry.error or "")


HEROKU_NAME_RULE = """\
heroku:
  allow_unlisted: true
access:
  - allow: [scale]
    users: [UUSER001]
  - deny: ["*"]
    users: [UUSER001]
    apps: [other-app]
apps:
  prod:
    platform: heroku
    app: other-app
"""


def test_a_rule_written_with_the_heroku_name_holds_for_the_alias(with_registry, heroku):  # noqa: F811
    driver = with_registry(HEROKU_NAME_RULE)
    # It had matched the alias only, which the Heroku name is rewritten to first.
    for name in ("other-app", "prod"):
        assert "Denied by the rule" in say(driver, f"scale web=3 {name}", USER)["text"]
    assert heroku.formation("other-app")["web"][0] == 2
    assert "scaled `myapp`" in say(driver, "scale web=3 myapp", USER)["text"]


def test_a_deleted_user_group_has_no_members_and_stops_nothing_else(with_registry, heroku):  # noqa: F811
    # SGONE no longer exists: the fake Slack answers usergroups.users.list no_such_subteam.
    driver = with_registry(
        "heroku:\n  allow_unlisted: true\naccess:\n"
        "  - allow: [restart]\n    groups: [SGONE]\n    apps: [other-app]\n"
        "  - deny: [kill]\n    groups: [SGONE]\n    apps: [myapp]\n"
    )
    # Every command had answered "I could not check the members of Slack user group
    # SGONE … Try again in a minute", forever.
    assert "Status of `myapp`" in say(driver, "status myapp", USER)["text"]
    assert "scaled `myapp`" in say(driver, "scale web=3 myapp", ADMIN)["text"]
    # A rule about the verb and app asks Slack, which says the group is gone: no members.
    assert "asks to kill `myapp`" in say(driver, "kill myapp", ADMIN)["text"]


def test_a_refused_unlock_is_in_the_audit_trail(with_registry, heroku, config):  # noqa: F811
    driver = with_registry(
        "heroku:\n  allow_unlisted: true\naccess:\n  - allow: [lock, unlock]\n    users: [UUSER001]\n"
    )
    say(driver, "lock myapp incident 7", OTHER_ADMIN)
    refused = say(driver, "unlock myapp", USER)["text"]
    assert f"locked by <@{OTHER_ADMIN}>; only they or an admin may unlock it" in refused
    assert [(e.verb, e.outcome) for e in history(config)] == [("unlock", "refused"), ("lock", "ok")]


def test_the_audit_trail_names_who_approved(with_registry, heroku, config):  # noqa: F811
    heroku.add_app("shop", formation={"web": (1, "standard-1x")})
    driver = with_registry(RIGHTS)
    prompt = say(driver, "kill shop", USER)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "killed `shop`" in driver.reply(url)["text"]
    # The approver had been kept only in the prompt row (deleted after 7 days) and Slack.
    [entry] = [e for e in history(config) if e.verb == "kill"]
    assert (entry.user_id, entry.confirmed_by, entry.outcome) == (USER, ADMIN, "ok")
    assert f"`kill shop`, approved by <@{ADMIN}>" in say(driver, "history shop", ADMIN)["text"]
    # A rollback the asker confirmed names them: a click, not a second person.
    heroku.add_release("shop", "Deploy abc1234")
    prompt = say(driver, "rollback shop", ADMIN)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "rolled `shop` back" in driver.reply(url)["text"]
    [rollback] = [e for e in history(config) if e.verb == "rollback"]
    assert rollback.confirmed_by == ADMIN
    assert "approved by" not in say(driver, "history shop 1", ADMIN)["text"]


def test_a_pin_or_autoscale_max_above_the_guardrail_is_refused(with_registry, heroku, config):  # noqa: F811
    driver = with_registry(
        "heroku:\n  allow_unlisted: true\napps:\n  capped:\n    platform: heroku\n"
        "    app: myapp\n    guardrails:\n      max: {web: 4}\n"
    )
    # The pin had been accepted ("pinned at web=9") and clamped to 4 by the tick in silence.
    text = say(driver, "pin capped web=9 for 1h", ADMIN)["text"]
    assert text == (
        "`capped` allows at most 4 `web` dynos (the registry's `max`), so a pin at web=9 is "
        "refused. Ask for 4 or fewer, or raise the registry's `max`."
    )
    assert "pinned `capped` at web=4" in say(driver, "pin capped web=4 for 1h", ADMIN)["text"]
    text = say(driver, "autoscale capped on min=1 max=9", ADMIN)["text"]
    assert "allows at most 4 `web` dynos" in text and "max=9 is refused" in text
    assert [e.outcome for e in history(config)][:3] == ["refused", "ok", "refused"]


def test_an_approver_may_still_decline_and_a_late_cancel_promises_nothing(
    with_registry,  # noqa: F811
    heroku,
    config,
):
    heroku.add_app("shop", formation={"web": (1, "standard-1x")})
    driver = with_registry(RIGHTS)
    prompt = say(driver, "kill shop", USER)
    # The asker's right, judged again for an approval, had been judged for Cancel too,
    # as the right to "approve": the approver could no longer decline.
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert f"<@{ADMIN}> cancelled `kill shop`" in driver.reply(url)["text"]
    prompt = say(driver, "kill shop", USER)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "killed `shop`" in driver.reply(url)["text"]
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], USER)
    # An approval had been called "already confirmed", a word that is the asker's own.
    assert driver.reply(url)["text"] == f"`kill shop` was already approved by <@{ADMIN}>."


def test_whoami_agrees_with_a_rule_written_with_the_heroku_name(with_registry, heroku):  # noqa: F811
    driver = with_registry(HEROKU_NAME_RULE)
    assert "Denied by the rule" in say(driver, "scale web=3 prod", USER)["text"]
    text = say(driver, "whoami", USER)["text"]
    scale = next(line for line in text.splitlines() if "`scale`" in line)
    assert "every app" not in scale and "prod" in scale, scale


HIDDEN_RULES = """\
heroku:
  allow_unlisted: false
access:
  - deny: [history, cost]
    users: [UUSER001]
    apps: [other-app]
apps:
  myapp:
    platform: heroku
  other-app:
    platform: heroku
"""


def test_a_listing_across_apps_leaves_out_the_apps_a_rule_hides(with_registry, config):  # noqa: F811
    from datetime import UTC, datetime

    from bot.store.db import Database
    from bot.store.incidents import Alerts
    from policies.incidents import Event

    driver = with_registry(HIDDEN_RULES)
    say(driver, "scale web=3 other-app", ADMIN)
    say(driver, "scale web=2 myapp", ADMIN)
    db = Database(config.database_url)
    try:
        now = datetime.now(UTC)
        Alerts(db).record([Event("other-app", "crash", "web", now, "web.1")], now, lambda a: None)
    finally:
        db.dispose()
    assert "Denied by the rule" in say(driver, "history other-app", USER)["text"]
    # Named, they were refused; unnamed, `history`, `alerts` and `cost` had listed them.
    listed = say(driver, "history", USER)["text"]
    assert "scale web=2 myapp" in listed and "other-app" not in listed
    assert "other-app" not in say(driver, "alerts", USER)["text"]
    costs = say(driver, "cost", USER)["text"]
    assert "`myapp`" in costs and "other-app" not in costs
    # Whom no rule hides an app from sees it all.
    assert "scale web=3 other-app" in say(driver, "history", ADMIN)["text"]
    assert "other-app" in say(driver, "alerts", ADMIN)["text"]


def test_a_cost_listing_with_every_app_hidden_says_so(with_registry):  # noqa: F811
    driver = with_registry(HIDDEN_RULES.replace("apps: [other-app]", "apps: [myapp, other-app]"))
    # It had said "I manage no apps yet, so there is nothing to price."
    text = say(driver, "cost", USER)["text"]
    assert text.startswith("The access rules let you see the cost of no app I manage (2 in all).")


def test_history_across_apps_says_how_many_apps_the_rules_leave_out(with_registry):  # noqa: F811
    driver = with_registry(HIDDEN_RULES)
    say(driver, "scale web=3 other-app", ADMIN)
    say(driver, "scale web=2 myapp", ADMIN)
    # It had said "Recent changes to every app", one of them left out.
    header = say(driver, "history", USER)["text"].splitlines()[0]
    assert header == (
        "*Recent changes to the apps you may see*, newest first (the access rules keep "
        "1 app from you)"
    )
    assert say(driver, "history", ADMIN)["text"].startswith("*Recent changes to every app*")


@pytest.mark.parametrize("denied", ["about", "status"])
def test_about_and_home_name_no_drain_of_an_app_the_rules_hide(with_registry, config, denied):  # noqa: F811
    """One rule for both: a rule denying `about` or `status` for an app keeps its drain's
    name out of `/deploy about` and out of App Home's header. Each had followed its own verb
    (`about` the one, App Home `status`), so either rule showed the drain in the other."""
    from datetime import UTC, datetime

    from bot.store.db import Database
    from bot.store.drains import Drains

    driver = with_registry(HIDDEN_RULES.replace("deny: [history, cost]", f"deny: [{denied}]"))
    db = Database(config.database_url)
    try:
        for app in ("myapp", "other-app"):
            Drains(db).get_or_create(app, "https://bot.example", ADMIN, datetime.now(UTC))
    finally:
        db.dispose()
    text = say(driver, "about", USER)["text"]
    assert "Drain `myapp`" in text and "other-app" not in text
    assert "Drains: the access rules keep 1 more from you" in text
    assert "Drain `other-app`" in say(driver, "about", ADMIN)["text"]
    header = open_home(driver, USER)["blocks"][1]["elements"][0]["text"]
    assert "Drain `myapp`" in header and "other-app" not in header
    assert "Drains: the access rules keep 1 more from you" in header


GROUP_RULES = (
    "heroku:\n  allow_unlisted: true\naccess:\n  - allow: [config, scale]\n    groups: [S0OPS]\n"
)


def test_config_answers_when_slack_cannot_say_who_is_in_a_group(with_registry, slack):  # noqa: F811
    slack.set_usergroup("S0OPS", [USER])
    driver = with_registry(GROUP_RULES)
    slack.fail_next("usergroups.users.list", count=10, status=500)
    # It had ended in "Something went wrong inside deploybot" and a traceback in the log.
    assert say(driver, "config myapp", USER)["text"].startswith(
        "I could not check the members of Slack user group S0OPS"
    )


def test_apps_lists_them_when_slack_cannot_say_who_is_in_a_group(with_registry, slack):  # noqa: F811
    slack.set_usergroup("S0OPS", [USER])
    driver = with_registry(GROUP_RULES)
    slack.fail_next("usergroups.users.list", count=10, status=500)
    # `apps` only reads: it had been refused for the group a `scale` rule names.
    listed = say(driver, "apps", USER)["text"]
    assert listed.startswith("*Apps I manage*"), listed
    assert listed.endswith("You may make changes: `/deploy whoami` says which, on which apps.")


def test_an_approvers_cancel_when_slack_cannot_say_who_is_in_a_group_says_so(
    with_registry,  # noqa: F811
    heroku,
    slack,
):
    heroku.add_app("shop", formation={"web": (1, "standard-1x")})
    slack.set_usergroup("S0OPS", [ADMIN])
    driver = with_registry(
        RIGHTS.replace("apps:", "  - allow: [approve]\n    groups: [S0OPS]\napps:")
    )
    prompt = say(driver, "kill shop", USER)
    assert "needs a second person's approval" in prompt["text"]
    slack.fail_next("usergroups.users.list", count=10, status=500)
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    # It had said "Only <@asker>, who asked, can cancel this." to an approver.
    assert driver.reply(url)["text"].startswith(
        "I could not check the members of Slack user group S0OPS"
    )
    assert heroku.formation("shop")["web"][0] == 1


def test_history_says_which_apps_it_leaves_out_because_slack_cannot_say(with_registry, slack):  # noqa: F811
    slack.set_usergroup("S0OPS", ["UOTHER99"])
    driver = with_registry(HIDDEN_RULES.replace("users: [UUSER001]", "groups: [S0OPS]"))
    say(driver, "scale web=3 other-app", ADMIN)
    say(driver, "scale web=2 myapp", ADMIN)
    slack.fail_next("usergroups.users.list", count=10, status=500)
    # It had said "the access rules keep 1 app from you": no rule does, Slack failed.
    lines = say(driver, "history", USER)["text"].splitlines()
    assert lines[0] == "*Recent changes to the apps you may see*, newest first"
    assert lines[1] == (
        ":warning: I could not check the members of Slack user group S0OPS, which the access "
        "rules name. Try again in a minute. Until then I leave out the 1 app its rules decide."
    )
    assert "scale web=2 myapp" in lines[2]


SHARED = """\
access:
  - allow: ["*"]
    channels: [CSHARED]
apps:
  myapp:
    platform: heroku
    guardrails:
      protected: true
"""
PARTNER = "T0PARTNER"  # a partner organisation's workspace, in a Slack Connect channel
OUTSIDER = (
    "You are a member of another Slack organisation: only members of this workspace may "
    "change apps."
)


def test_a_member_of_another_organisation_may_not_change_apps(with_registry, heroku, config):  # noqa: F811
    driver = with_registry(SHARED)
    # A rule about a channel is about anyone in it: in a shared channel, a partner's people too.
    _, url = driver.command("restart myapp", "UPARTNER1", channel="CSHARED", team=PARTNER)
    assert driver.reply(url)["text"] == OUTSIDER
    assert heroku.calls("DELETE", "/apps/myapp/dynos") == []
    assert next((e.user_id, e.verb, e.outcome) for e in history(config)) == (
        "UPARTNER1",
        "restart",
        "refused",
    )
    # `whoami` says so, rather than list the changes the channel's rule allows.
    _, url = driver.command("whoami", "UPARTNER1", channel="CSHARED", team=PARTNER)
    lines = driver.reply(url)["text"].splitlines()
    assert lines[1] == OUTSIDER and not any("`restart`" in line for line in lines)
    # Reads stay as the rules say.
    _, url = driver.command("status myapp", "UPARTNER1", channel="CSHARED", team=PARTNER)
    assert driver.reply(url)["text"] != OUTSIDER
    # Stopping a protected app's workers waits for a second person: not the partner's
    # approval, told by the team Slack names for the clicker (`user.team_id`), not `team.id`.
    prompt = say(driver, "kill myapp worker", ADMIN)
    value = button(prompt, CONFIRM_ACTION)["value"]
    _, url = driver.click(
        CONFIRM_ACTION, value, "UPARTNER1", channel_id="CSHARED", user_team_id=PARTNER
    )
    assert driver.reply(url)["text"] == f"You may not approve changes to `myapp`. {OUTSIDER}"
    assert heroku.formation("myapp")["worker"][0] == 1
    # A member of this workspace in the same channel still may.
    _, url = driver.click(CONFIRM_ACTION, value, USER, channel_id="CSHARED")
    assert driver.reply(url)["text"] != OUTSIDER
    assert heroku.formation("myapp")["worker"][0] == 0
