"""The deployment verbs' pure parts: grammar, canonical text (config values never in it),
the deploy lock rule, and secret masking in log lines."""

from __future__ import annotations

import pytest

from policies import rules
from policies.commands import CommandError, parse
from policies.config_vars import refusal
from policies.guardrails import lock_refusal
from policies.redact import MASK, mask


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("releases myapp", "releases myapp 10"),
        ("releases -a myapp 20", "releases myapp 20"),
        ("rollback myapp", "rollback myapp"),
        ("rollback myapp v41", "rollback myapp v41"),
        ("maintenance myapp ON", "maintenance myapp on"),
        ("config myapp", "config myapp"),
        ("config set A=1 B_2=x=y myapp", "config set A=… B_2=… myapp"),
        (
            "config set spring.profiles.active=prod myapp",
            "config set spring.profiles.active=… myapp",
        ),
        ("config unset A myapp", "config unset A myapp"),
        # The reason is prose, echoed as typed: it had been shell-quoted, `'fixing the basket'`.
        ("lock myapp fixing the basket", "lock myapp fixing the basket"),
        ('lock myapp "fixing the basket"', "lock myapp fixing the basket"),
        ("lock myapp don't ship", "lock myapp don't ship"),
        ("lock myapp hotfix - do not ship", "lock myapp hotfix - do not ship"),
        # Quoted where the words alone would read otherwise: `-a` would name the app.
        ('lock myapp "hold -a while"', "lock myapp 'hold -a while'"),
        ('lock myapp "say \\"no\\""', "lock myapp 'say \"no\"'"),
        ("unlock myapp", "unlock myapp"),
        ("ship myapp", "ship myapp"),
        ("ship myapp release/2026-11", "ship myapp release/2026-11"),
        ("promote myapp", "promote myapp"),
        ("swap shop shop-green", "swap shop shop-green"),
        (
            "run myapp python manage.py migrate --noinput",
            "run myapp python manage.py migrate --noinput",
        ),
        ("logs myapp", "logs myapp 100"),
        ("logs myapp web.1 20", "logs myapp web.1 20"),
        # `-a APP` names the app on every line, as help says; `run` had taken `-a` for it.
        ("run -a myapp python manage.py check", "run myapp python manage.py check"),
        ("run --app=myapp python manage.py check", "run myapp python manage.py check"),
        ("run myapp python manage.py check -a x", "run myapp python manage.py check -a x"),
    ],
)
def test_deployment_verbs_parse_to_canonical_text(text, canonical):
    assert parse(text).text() == canonical
    if text.startswith("lock"):  # the echo reads back as the same lock (values aside)
        assert parse(canonical) == parse(text)


def test_config_values_stay_in_the_command_but_never_in_its_text():
    command = parse("config set DATABASE_URL=postgres://u:pw@h/db myapp")
    assert command.options == (("DATABASE_URL", "postgres://u:pw@h/db"),)
    assert "pw" not in command.text() and command.mutating
    assert not parse("config myapp").mutating


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("releases myapp 0", "Ask for 1 to 50 releases"),
        ("rollback myapp v1 v2", "one word too many"),
        ("rollback myapp `v1`", "is not a release"),
        ("maintenance myapp maybe", "`maybe` is not a maintenance setting: use `on` or `off`"),
        ("maintenance myapp", "Say `on` or `off`; `/deploy status myapp` shows whether it is on"),
        # It had said "Say `on` or `off`" to someone who had said `on`.
        ("maintenance on myapp", "Put the app first: `/deploy maintenance myapp on`."),
        # It had said "The app is given twice (`myapp` and `canceled`)".
        ("history myapp canceled", "`canceled` is not a filter: use one of refused, cancelled"),
        # A name no platform takes; `1A` and `a.b` wait for the app's own rule (Beanstalk's).
        ("config set A$B=x myapp", "not a valid config var name"),
        # Said as "not a valid config var name: use letters, digits and underscores", of a
        # name of just those: its length, the one thing wrong, went unsaid.
        ("config set " + "A" * 129 + "=x myapp", "is 129 characters long; a config var name"),
        ("config unset spring." + "a" * 130 + " myapp", "a config var name has at most 128."),
        ("config set A myapp", "needs a value"),
        # It had been "`""` is not a valid config var name".
        ("config set =x myapp", "A config var name is missing: write `LOG_LEVEL=debug` to"),
        ('config unset "" myapp', "A config var name is missing"),
        ("config unset A=1 myapp", "names only"),
        ("config set A=1 A=2 myapp", "given twice"),
        # Config words in the wrong place had echoed the value: "`KEY=hunter2` is not a valid
        # app name", "Did you mean `config set KEY=hunter2 myapp`?", "`KEY=hunter2` is one
        # word too many".
        ("config set myapp KEY=hunter2", "Put the app last: `/deploy config set KEY=… myapp`."),
        ("config set myapp A=1 KEY=hunter2", "`/deploy config set A=… KEY=… myapp`"),
        # It had been "`LOG_LEVEL` is not a valid app name".
        (
            "config unset myapp LOG_LEVEL",
            "Put the app last: `/deploy config unset LOG_LEVEL myapp`.",
        ),
        # `set` left out with the app first had been "`KEY=…` is one word too many".
        ("config myapp KEY=hunter2", "Did you mean `config set KEY=… myapp`?"),
        ("config myapp A=1 KEY=hunter2", "Did you mean `config set A=… KEY=… myapp`?"),
        # `set` left out, as `heroku config:set` takes it: "`KEY=…` is not a valid app name".
        ("config KEY=hunter2 myapp", "Did you mean `config set KEY=… myapp`?"),
        ("config A=1 KEY=hunter2 myapp", "Did you mean `config set A=… KEY=… myapp`?"),
        ("config -a myapp KEY=hunter2", "Did you mean `config set KEY=… myapp`?"),
        ("confg set KEY=hunter2 myapp", "Did you mean `config set KEY=… myapp`?"),
        ("myapp config set KEY=hunter2", "Did you mean `config set KEY=… myapp`?"),
        ("config set KEY=hunter2" + "9" * 5000 + " myapp", "`KEY=…` holds a number far too"),
        # A variable after the app had been "`B=…` is not a valid app name"; the word before
        # it may be the rest of A's value, so it is not named as the app either.
        (
            "config set A=hunter2 myapp B=1",
            "The app goes last, after the variables: `/deploy config set A=… B=… APP`.",
        ),
        ("config set A=hunter2 B=1", "Say which app, after the variables: `/deploy config set A=…"),
        # Reading had been "did you mean `set`?" (a write) or "`myapp` is one word too many";
        # the Heroku CLI's spelling had been "Did you mean `config KEY=… myapp`?" (no action).
        ("config get KEY myapp", "`get` is not a config action: `/deploy config myapp` lists"),
        ("config show myapp", "`show` is not a config action: `/deploy config myapp` lists"),
        ("config -a myapp list", "`list` is not a config action: `/deploy config myapp` lists"),
        ("config:set KEY=hunter2 myapp", "Did you mean `config set KEY=… myapp`?"),
        ("config:unset KEY -a myapp", "Did you mean `config unset KEY -a myapp`?"),
        ("config:get KEY -a myapp", "Did you mean `config myapp`?"),
        # "Did you mean `maintenance -a myapp`?" had left out `on`; `pipelines:promote` had
        # been no command at all.
        ("maintenance:on -a myapp", "Did you mean `maintenance -a myapp on`?"),
        ("maintenance:off myapp", "Did you mean `maintenance myapp off`?"),
        ("pipelines:promote -a myapp", "Did you mean `promote -a myapp`?"),
        # It had said `lock APP fixing the checkout bug` to someone who had named the app.
        ("lock myapp", "Say why, so others know: `/deploy lock myapp fixing the checkout bug`."),
        ("lock -a myapp", "Say why, so others know: `/deploy lock myapp fixing the checkout bug`."),
        ("ship myapp ../../etc", "not a git ref"),
        # Names git refuses for a ref (`git check-ref-format`): the build had started, and
        # failed at the source host.
        ("ship myapp main.lock", "not a git ref"),
        ("ship myapp feature//x", "not a git ref"),
        ("ship myapp feature/", "not a git ref"),
        ("ship myapp feature/.x", "not a git ref"),
        ("ship myapp main.", "not a git ref"),
        ("swap shop shop", "two different environments"),
        ("swap shop", "Name the two environments"),
        ("run myapp", "Say which command"),
        # It had been "`` is not a command `myapp` may run from chat", asked of the platform.
        ('run myapp ""', "Say which command"),
        ("run myapp '  '", "Say which command"),
        # The whole of it had been echoed back ("Working on `run myapp xxx…`"), 5,000 characters.
        ("run myapp " + "x" * 5000, "A command to run is at most 200 characters"),
        ("logs myapp web.1 9999", "Ask for 1 to 1500 lines"),
        # A negative count had been "`-5` is neither a dyno nor a number", "is not a filter".
        ("logs myapp web.1 -5", "Ask for 1 to 1500 lines"),
        ("logs myapp -5", "Ask for 1 to 1500 lines"),
        ("history myapp -5", "Ask for 1 to 50 entries"),
        ("history -5", "Ask for 1 to 50 entries"),
    ],
)
def test_bad_deployment_input_gets_a_sentence(text, says):
    with pytest.raises(CommandError) as raised:
        parse(text)
    assert says in raised.value.message
    assert "hunter2" not in raised.value.message


MEANT = 'Did you mean `config set KEY=… myapp`? A value with spaces goes in quotes: `KEY="…"`.'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # "`K=…` is one word too many", "`K=…` is not a valid app name", "`world` needs a
        # value": none said the command to type, and the last quoted what may be a value's rest.
        ("config myapp KEY=hunter2 world", MEANT),
        ("config -a myapp KEY=hunter2 world", MEANT),
        ("config KEY=hunter2 world myapp", MEANT),
        ("config set KEY=hunter2 world myapp", MEANT),
        (
            "config set A=1 KEY=hunter2 world myapp",
            "Did you mean `config set A=… KEY=… myapp`? A value with spaces goes in quotes: "
            '`KEY="…"`.',
        ),
        # It had been "The app is given twice: `world` and `myapp` after `-a`".
        (
            "config set KEY=hunter2 world -a myapp",
            "The app is given twice: before `-a` and `myapp` after it. Name it once; a value "
            'with spaces goes in quotes: `KEY="…"`.',
        ),
        # Both had been "Say which variable and which app." to someone who had said one.
        ("config set KEY=hunter2", "Say which app: `/deploy config set KEY=… APP`."),
        ("config set myapp", "Say which variable: `/deploy config set KEY=VALUE myapp`."),
        ("config unset KEY", "Say which variable and which app."),
        # `config unset demo` had been "Say which variable and which app." too: a lowercase
        # name that can be an app is one (var names are in capitals); one that cannot be an
        # app (`_` in it) is the variable.
        ("config unset demo", "Say which variable: `/deploy config unset KEY demo`."),
        ("config unset LOG_LEVEL", "Say which app: `/deploy config unset LOG_LEVEL APP`."),
    ],
)
def test_config_answers_say_what_to_type_and_never_a_value(text, says):
    with pytest.raises(CommandError) as raised:
        parse(text)
    assert raised.value.problem == says
    assert "world" not in raised.value.message and "hunter2" not in raised.value.message


def test_a_value_with_spaces_in_quotes_is_one_value():
    command = parse('config set KEY="hunter2 world" myapp')
    assert command.options == (("KEY", "hunter2 world"),) and command.app == "myapp"


def test_config_names_and_values_follow_the_apps_own_platform():
    # Beanstalk's environment properties take `_ . : / + \\ - @` in a name; both take a
    # digit first, as Heroku's schema (`^\w+$`) does.
    for key in ("spring.profiles.active", "a:b/c+d\\e-f@g", "KÉY"):
        assert refusal("beanstalk", {key: "on"}, {}) is None
        assert "not a valid config var name on Heroku" in refusal("heroku", {key: "on"}, {})
    assert refusal("beanstalk", {"9LIVES": "on"}, {}) is None
    assert refusal("heroku", {"9LIVES": "on"}, {}) is None
    assert refusal("beanstalk", {"K" * 128: "on"}, {}) is None
    assert refusal("heroku", {"K" * 128: "on"}, {}) is None
    assert refusal("heroku", {"LOG_LEVEL": "x" * 5000 + ";&"}, {}) is None  # no value rule
    assert refusal("heroku", {"spring.x": None}, {}) is not None  # nor unset such a name
    # Values: letters, digits, white space and `_ . : / = + \\ - @ ' "`, 256 characters at most.
    said = refusal("beanstalk", {"K": "hunter2;"}, {})
    assert said is not None and "has a character Beanstalk does not take" in said
    assert "hunter2" not in said
    assert refusal("beanstalk", {"K": "a b=c:d/e+f\\g-h@i'j\"k_l.m"}, {}) is None
    assert refusal("beanstalk", {"K": ""}, {}) is None
    assert refusal("beanstalk", {"K": "x" * 256}, {}) is None
    assert "longer than the 256 characters" in refusal("beanstalk", {"K": "x" * 257}, {})
    # All of them together, as KEY=VALUE, no more than 4,096 bytes: what is there counts,
    # what is unset does not.
    present = {f"K{n:02}": "x" * 250 for n in range(16)}  # 16 × 254 = 4,064 bytes
    assert refusal("beanstalk", {"NEW": "x" * 28}, present) is None  # 32 more: 4,096
    too_many = refusal("beanstalk", {"NEW": "x" * 29}, present)
    assert too_many == (
        "The environment properties would come to 4,097 bytes as KEY=VALUE, over the 4,096 "
        "Beanstalk takes."
    )
    assert refusal("beanstalk", {"NEW": "x" * 29, "K00": None}, present) is None


def test_a_lock_holds_back_others_from_deploy_verbs_only():
    assert lock_refusal("rollback", "myapp", "UA", "hotfix", "UA") is None
    assert lock_refusal("scale", "myapp", "UA", "hotfix", "UB") is None
    # Maintenance mode is an incident tool: the holder may be away when the site burns.
    assert lock_refusal("maintenance", "myapp", "UA", "hotfix", "UB") is None
    assert lock_refusal("rollback", "myapp", None, None, "UB") is None
    said = {}
    for verb in ("rollback", "ship", "promote", "swap", "config", "run"):
        refusal = lock_refusal(verb, "myapp", "UA", "hotfix", "UB")
        assert refusal and "<@UA>" in refusal and "hotfix" in refusal
        said[verb] = refusal.split("so only they may ")[1].split(".")[0]
    # "only they may rollback it" had used the noun; a promotion is refused into a locked
    # app as well as out of one. A config change makes a release and restarts every dyno
    # (an environment update on Beanstalk), so a lock holds it back too; so does `run`, whose
    # one-off commands (migrations) change what is live.
    assert said == {
        "rollback": "roll it back",
        "ship": "ship it",
        "promote": "promote to or from it",
        "swap": "swap it",
        "config": "change its config",
        "run": "run commands on it",
    }


def test_a_lock_and_an_access_rule_say_a_verb_in_the_same_words():
    # Two tables had said what each verb does ("roll back `shop`", "roll it back").
    for verb in ("rollback", "promote", "config", "ship"):
        refusal = lock_refusal(verb, "shop", "UA", "hotfix", "UB")
        assert refusal is not None
        doing = refusal.split("so only they may ")[1].split(". Ask")[0]
        assert doing == rules.doing(verb, "it")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("DATABASE_URL=postgres://u:pw@db/x up", f"DATABASE_URL={MASK} up"),
        ("connect postgres://u:pw@db/x", f"connect postgres://u:{MASK}@db/x"),
        ("password=hunter2 ok", f"password={MASK} ok"),
        ('api_key="abc def" ok', f"api_key={MASK} ok"),
        ("at=info method=GET path=/ status=200", "at=info method=GET path=/ status=200"),
        ("WARNING: disk 91% full", "WARNING: disk 91% full"),
        # A plain key's value may hold a secret's (a URL's query string).
        ("path=/cb?code=x&access_token=abc1 ok", f"path=/cb?code=x&access_token={MASK} ok"),
        ('path="/cb?access_token=abc1" ok', f'path="/cb?access_token={MASK}" ok'),
        ("url=https://h/a.tgz?token=abc ok", f"url=https://h/a.tgz?token={MASK} ok"),
        ("error:STRIPE_KEY=sk_live_1", f"error:STRIPE_KEY={MASK}"),
        ('{"password": "hunter2", "user": "bob"}', f'{{"password": {MASK}, "user": "bob"}}'),
        ("aws_secret_access_key = wJalr/K7", f"aws_secret_access_key = {MASK}"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: {MASK}"),
        ("curl -H 'Authorization: Bearer eyJh.x.y'", f"curl -H 'Authorization: {MASK}"),
        ("retry Bearer eyJhbGciOi.x.y now", f"retry Bearer {MASK} now"),
        ("Basic authentication failed", "Basic authentication failed"),
        ("REDIS_TLS_URL is rediss://:p4ss@ec2:6379", f"REDIS_TLS_URL is rediss://:{MASK}@ec2:6379"),
        ("key AKIAIOSFODNN7EXAMPLE signed", f"key {MASK} signed"),
        # A query parameter's value ends at `&` or `#`: the parameters after it stay.
        ("s3?X-Amz-Signature=ab12&x=1", f"s3?X-Amz-Signature={MASK}&x=1"),
        (
            "GET /cb?access_token=ab1&page=2#top HTTP/1.1",
            f"GET /cb?access_token={MASK}&page=2#top HTTP/1.1",
        ),
        ("/a?PASSWORD=x&y=1&SECRET_KEY=z", f"/a?PASSWORD={MASK}&y=1&SECRET_KEY={MASK}"),
        ("TOKEN=a&b ok", f"TOKEN={MASK} ok"),  # outside a URL, `&` may be part of the value
        # Heroku's router lines name the paths the bot is posted at or polls, tokens and all.
        ('path="/hirefire/hf0Tok/info" status=200', 'path="/hirefire/[redacted]/info" status=200'),
        ("POST path=/drain/dr4In_-x host=bot", "POST path=/drain/[redacted] host=bot"),
        ("sent xoxb-12-34-abcd to slack", "sent [redacted] to slack"),
    ],
)
def test_mask_hides_secret_values_and_keeps_the_rest(line, shown):
    assert mask(line) == shown


def test_rules_can_name_every_deployment_verb_and_reading_ones_are_open():
    from policies.rules import is_read_only, validate_verb

    for verb in (
        "rollback",
        "maintenance",
        "config",
        "lock",
        "unlock",
        "ship",
        "promote",
        "swap",
        "run",
    ):
        assert validate_verb(verb) == verb and not is_read_only(verb)
    for verb in ("releases", "logs"):
        assert validate_verb(verb) == verb and is_read_only(verb)


def test_the_config_vars_a_release_list_changed_are_read_from_heroku_s_descriptions():
    from policies.config_vars import changed_by

    assert changed_by(
        [
            "Set API_TOKEN config vars",
            "Deploy 1a2b3c4",
            "Remove DEBUG, API_TOKEN config vars",
            "Set 9LIVES config vars",
            "Rollback to v2",
            "Set the table config vars in prose",
        ]
    ) == ["API_TOKEN", "DEBUG", "9LIVES"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # Said before the app is known, so true of Beanstalk too: each had been said in
        # Heroku's words only ("use letters, digits and underscores", "1 to 50 releases"),
        # and a label too long "is not a git ref or version label".
        (
            "config set A$B=x shop",
            "`A$B` is not a valid config var name: use letters, digits and underscores "
            "(Beanstalk also takes `. : / + \\ - @`).",
        ),
        ("releases shop 5000", "Ask for 1 to 50 releases or application versions."),
        (
            "ship shop " + "x" * 101,
            f"`{'x' * 39}…` is 101 characters long; a git ref or version label has at most 100.",
        ),
        (
            "rollback shop " + "x" * 101,
            f"`{'x' * 39}…` is 101 characters long; a release or version label has at most 100.",
        ),
    ],
)
def test_words_said_before_the_platform_is_known_fit_beanstalk_too(text, says):
    with pytest.raises(CommandError) as raised:
        parse(text)
    assert str(raised.value).startswith(f"{says} Usage: ")


@pytest.mark.parametrize("ref", ["v1.2.0+build.5", "release/2026-11", "3f2c1a9"])
def test_a_ref_or_label_with_semver_build_metadata_is_taken(ref):
    # `+` (SemVer build metadata, which git and Beanstalk labels take) had been refused.
    assert parse(f"ship shop {ref}").target == ref
    if "/" not in ref:
        assert parse(f"rollback shop {ref}").target == ref


def test_a_ref_that_is_none_says_what_one_looks_like():
    with pytest.raises(CommandError) as raised:
        parse("ship shop ../etc")
    # It had named the word and no example of a ref.
    assert str(raised.value).startswith(
        "`../etc` is not a git ref or version label: write a branch, tag or commit, like "
        "`main`, `v1.4.2` or `3f2c1a9`. Usage: "
    )
