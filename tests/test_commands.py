"""The /deploy grammar: a table of good and bad input, and properties over any text."""

from __future__ import annotations

import re
import shlex
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import rules
from policies.commands import (
    _SPACES,
    MUTATING_VERBS,
    VERBS,
    Change,
    Command,
    CommandError,
    _split,
    changing,
    help_text,
    is_dyno_name,
    parse,
    plan_kill,
    plan_scale,
    stops_dynos,
)
from policies.guardrails import FREEZE_EXEMPT_VERBS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("  ", Command("help")),
        ("help", Command("help")),
        ("HELP Scale", Command("help", topic="scale")),
        ("--help", Command("help")),
        ("scale web=2 myapp", Command("scale", "myapp", (Change("web", "=", 2),))),
        (
            "scale web=2:Standard-2X worker+1 -a myapp",
            Command(
                "scale",
                "myapp",
                (Change("web", "=", 2, "standard-2x"), Change("worker", "+", 1)),
            ),
        ),
        ("scale --app myapp web-1", Command("scale", "myapp", (Change("web", "-", 1),))),
        ("scale --app=myapp web=0", Command("scale", "myapp", (Change("web", "=", 0),))),
        # Without -a the app is the last word, even when it looks like a term.
        ("scale web-1 my-app-2", Command("scale", "my-app-2", (Change("web", "-", 1),))),
        ("scale my_worker=3 myapp", Command("scale", "myapp", (Change("my_worker", "=", 3),))),
        ("restart myapp", Command("restart", "myapp")),
        ("restart myapp web", Command("restart", "myapp", target="web")),
        ("restart myapp web.1", Command("restart", "myapp", target="web.1")),
        ("restart -a myapp web.12", Command("restart", "myapp", target="web.12")),
        ("kill myapp", Command("kill", "myapp")),
        ("kill myapp worker", Command("kill", "myapp", target="worker")),
        ("Status myapp", Command("status", "myapp")),
        ("status -a myapp", Command("status", "myapp")),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A no-break space (macOS's Option+Space, a command copied from a rendered page) had
        # made "`status demo` is not a command I know. Did you mean `status`?".
        ("status\u00a0myapp", Command("status", "myapp")),
        ("scale\u2009web=2\u3000myapp", Command("scale", "myapp", (Change("web", "=", 2),))),
        # Inside quotes it is part of the word, as typed.
        ('lock myapp "a\u00a0b"', Command("lock", "myapp", reason="a\u00a0b")),
    ],
)
def test_any_unicode_space_separates_words(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Invisible characters a copied command can carry (a zero-width space, a word joiner,
        # a byte-order mark, a soft hyphen) had made "`myapp` is not a valid app name",
        # naming a word that looks right.
        ("status myapp\u200b", Command("status", "myapp")),
        ("\ufeffstatus my\u2060app", Command("status", "myapp")),
        ("rollback my\u00adapp v2\u200b", Command("rollback", "myapp", target="v2")),
        ("scale web=2\u200b myapp", Command("scale", "myapp", (Change("web", "=", 2),))),
    ],
)
def test_invisible_characters_are_no_part_of_a_word(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_a_config_value_keeps_its_invisible_characters() -> None:
    # Stored as typed: a value changed unseen (the prompt masks values) would be data lost.
    command = parse("config set GREETING=gr\u00fc\u00dfe\u00adn\u200b myapp\u200b")
    assert command.app == "myapp"
    assert command.options == (("GREETING", "gr\u00fc\u00dfe\u00adn\u200b"),)


_SPACE_CHARS = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()]


@given(
    st.text(
        st.sampled_from(_SPACE_CHARS) | st.characters(blacklist_characters="'\"\\"), max_size=30
    )
)
def test_words_without_quotes_split_as_shlex_splits_them(text: str) -> None:
    # Text without quotes or backslashes skips shlex: the words must be the same.
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace, lexer.whitespace_split, lexer.commenters = _SPACES, True, ""
    assert _split(text) == list(lexer)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("deploy myapp", "`deploy` is not a command I know. Did you mean `ship myapp`?"),
        ("ps myapp", "Did you mean `status myapp`?"),
        # The command's own name typed again (a whole `/deploy status myapp` pasted after
        # the slash command) had been "`/deploy` is not a command I know. Try one of: …",
        # and `deploy status myapp` offered `status deploy myapp`, itself refused.
        (
            "/deploy status myapp",
            "`/deploy` is not a command I know. Did you mean `status myapp`? Type `/deploy` once.",
        ),
        ("deploy status myapp", "Did you mean `status myapp`? Type `/deploy` once."),
        ("/DEPLOY scale web=2 myapp", "Did you mean `scale web=2 myapp`? Type `/deploy` once."),
        ("myapp status", "Did you mean `status myapp`? The verb comes first."),
        # scale takes its app last: `scale myapp web=2`, offered here, was itself refused.
        ("myapp scale web=2", "Did you mean `scale web=2 myapp`? The verb comes first."),
        # The verb typed last had been "`web=2` is not a command I know. Try one of: …".
        ("web=2 myapp scale", "Did you mean `scale web=2 myapp`? The verb comes first."),
        # Full-width letters (a CJK keyboard's) had been offered the list of every verb.
        ("\uff53\uff54\uff41\uff54\uff55\uff53 myapp", "Did you mean `status myapp`?"),
        ("myapp web restart", "Did you mean `restart myapp web`? The verb comes first."),
        ("scale myapp web=2 worker+1", "Put the app last: `/deploy scale web=2 worker+1 myapp`."),
        # Words that are no app name are not offered back as one.
        ("Yes, ship it", "`Yes,` is not a command I know. Try one of:"),
        ("scale web=2", "Say which app"),
        ("scale myapp", "Say which process types"),
        ("scale web=two myapp", "`web=two`"),
        ("scale =2 myapp", "`=2`"),
        ("scale web=2 web=3 myapp", "`web` is scaled twice"),
        ("scale web+1:standard-2x myapp", "`web+1:standard-2x`"),
        ("scale web=100000 myapp", "more than 1000"),
        ("scale web=2 -a", "`-a` needs an app"),
        ("scale web=2 -a one -a two", "given twice"),
        # It had said only "The app is given twice (`myapp` and `extra`).", not what to do.
        ("alerts myapp extra", "The app is given twice (`myapp` and `extra`): name one app."),
        ("cost myapp other", "The app is given twice (`myapp` and `other`): name one app."),
        ("scale web=2 myapp --force", "`--force` needs a reason"),
        ("status myapp --force now", "`--force` only applies to changes"),
        ("history myapp 0", "Ask for 1 to 50"),
        ("history 5 6", "number of entries once"),
        ("whoami me", "`whoami` takes no other words"),
        ("restart", "Say which app"),
        ("restart myapp web.x", "`web.x`"),
        ("restart myapp web worker", "`worker` is one word too many"),
        ("kill myapp web.1", "`web.1` is not a process type"),
        ("status", "Say which app"),
        ("status my_app!", "`my_app!` is not a valid app name"),
        # As `heroku logs --tail` takes it: it had been "`--tail` is not an option I know."
        ("logs myapp --tail", "`--tail` follows logs live, which a Slack reply cannot: "),
        # All letters, but too long: it had been told "use letters, digits and dashes".
        ("status " + "d" * 41, "is 41 characters long, and an app name has at most 40."),
        # A look-alike (Cyrillic е) had been told "use letters, digits and dashes": it is one.
        ("status d\u0435mo", "its `\u0435` is U+0435, not a plain a-z letter or digit."),
        ("status \uff44emo", "its `\uff44` is U+FF44, not a plain a-z letter or digit."),
        # The Kelvin sign matches [a-z] under IGNORECASE: `deKmo` had been taken for an app.
        ("status de\u212amo", "its `\u212a` is U+212A, not a plain a-z letter or digit."),
        # A direction control had been dropped from the echo: "`demo` is not a valid app
        # name: use letters, digits and dashes", about a name that read as valid.
        ("status dem\u202eo", "`demo` has an invisible character in it (U+202E): type"),
        ("scale web=2 -a d\u2066emo", "`demo` has an invisible character in it (U+2066)"),
        ("status a b", "`b` is one word too many"),
        ("help nothing", "`nothing`"),
        # It had said "Ask for help on one verb at most." to someone who had named none.
        ("help -a demo", "`help` takes no app: `/deploy help VERB` shows one verb's help."),
        ('status "myapp', "unmatched quote"),
        ("status `rm -rf`", "is not an option I know"),
        # Settings that would stop the app, or could never be met or missed.
        ("autoscale demo on min=0 max=0", "Web dynos are never autoscaled to 0"),
        ("autoscale demo on max=0", "`/deploy kill demo` asks you to confirm first"),
        ("autoscale demo on min=0", "never autoscaled to 0"),
        ("autoscale demo on max=00", "never autoscaled to 0"),
        ("autoscale demo schedule add mon-fri 08:00-18:00 min=0 max=0", "never autoscaled to 0"),
        ("pin demo web=0 for 2h", "Web dynos are never pinned to 0"),
        ("autoscale demo on target=rpm:0", "a target must be more than 0"),
        ("autoscale demo on target=queue:0ms", "a target must be more than 0"),
        ("autoscale demo on target=p95:99999999999s", "a p95 target is at most 30s"),
        ("autoscale demo on target=rpm:2000000", "at most 1,000,000 rpm per dyno"),
        ("autoscale demo set max_step=0", "a whole number from 1 to 1000"),
        ("pin demo web=99999 for 1h", "Usage: `/deploy pin"),
        ("simulate demo 0d", "Replay from 1h to 14d"),
        # Minutes and weeks had been "`demo` is not a simulation".
        ("simulate demo 90m", "Replay from 1h to 14d"),
        ("simulate demo 2w", "Replay from 1h to 14d"),
        ("simulate demo 1.5d", "Replay from 1h to 14d"),
        ("simulate -a demo 90m", "Replay from 1h to 14d"),
        # An app with no span had been told "`demo` is not a simulation".
        ("simulate demo", "Say how far back to replay, like `/deploy simulate demo 7d`"),
        ("simulate spkie", "`spkie` is not a simulation"),
        ("autoscale demo schedule remove 0", "Windows are numbered from 1, as `schedule list`"),
        ("simulate 7d", "`7d` is not a simulation"),
        # Digits of other scripts: `min=３` was refused, `max_step=４` stored as typed.
        ("autoscale demo set max_step=４", "max_step must be a whole number from 1 to 1000"),
        ("autoscale demo set down_stabilization=２m", "must be a duration like 2m or 90s"),
        ("autoscale demo schedule add mon ０８:００-１８:００ min=2", "is not a time range"),
        ("autoscale demo schedule add mon 08:00-18:00 min=２", "is not min=N, max=N"),
        # `'²'.isdigit()` is true, and `int('²')` had raised out of the parser.
        ("autoscale demo schedule remove ²", "Say `schedule add mon-fri 08:00-18:00 min=3`"),
        # The last of two had been kept silently, as `set` and `on` refuse them.
        ("autoscale demo schedule add mon 08:00-09:00 min=2 min=3", "`min` is given twice"),
        ("autoscale demo schedule add mon 08:00-09:00 min=2 tz=UTC TZ=Asia/Tokyo", "`tz` is given"),
        ("logs demo web.1 web.2", "`web.2` is one word too many: name one dyno"),
        ("logs demo web.1 abc", "`abc` is one word too many: name one dyno"),
        ("logs demo 5 6", "`6` is a second number of lines"),
        # A number past int()'s 4,300 digits had been shown `/deploy help`'s usage.
        ("logs demo " + "9" * 5000, "Usage: `/deploy logs APP"),
        ("history demo " + "9" * 5000, "Usage: `/deploy history"),
    ],
)
def test_bad_input_names_the_token_and_shows_usage(text: str, names: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert names in caught.value.message
    assert "Usage: `/deploy" in caught.value.message


@given(st.text(max_size=200))
def test_any_text_parses_or_gets_a_short_message(text: str) -> None:
    try:
        command = parse(text)
    except CommandError as error:
        message = error.message
        assert message.count(". ") <= 3 and len(message) < 400
        assert "Traceback" not in message
        assert "Usage: `/deploy" in message
        # Ending in a full stop, as every answer does: the usage line had ended it bare.
        assert message.endswith("`.")
    else:
        assert command.verb in VERBS
        appless = ("help", "apps", "history", "whoami", "alerts", "cost", "about")
        assert command.app is not None or command.verb in appless


HOSTILE_WORD = "<!channel>&`x`"
_SLACK_MARKUP = re.compile(r"<[!@#]|<https?:|&(?!amp;|lt;|gt;)")


@pytest.mark.parametrize(
    "text",
    [
        "{w}",
        "help {w}",
        "status {w}",
        "status demo {w}",
        "status -{w} demo",
        "status demo -a {w}",
        "scale {w} demo",
        "scale web=2:{w} demo",
        "restart demo {w}",
        "kill demo {w}",
        "metrics demo {w}",
        "chart demo {w}",
        "autoscale demo on {w}",
        "autoscale demo set {w}",
        "rollback demo {w}",
        "config set {w} demo",
        "ship demo {w}",
        "logs demo {w}",
        "simulate {w} demo",
        "swap demo {w}",
        "history demo {w}",
    ],
)
def test_a_mistyped_word_is_echoed_escaped(text: str) -> None:
    # Slack would act on the raw word: ping the channel, or end the code span at the backtick.
    with pytest.raises(CommandError) as caught:
        parse(text.format(w=HOSTILE_WORD))
    message = caught.value.message
    assert "`&lt;!channel&gt;&amp;ˋxˋ`" in message or "&lt;!channel&gt;&amp;ˋxˋ`" in message
    assert not _SLACK_MARKUP.search(message), message
    assert message.count("`") % 2 == 0


@given(
    st.sampled_from(VERBS),
    st.lists(st.text(alphabet="<>&!@#`|:/= -ahtpweb1", max_size=12), max_size=4),
)
def test_no_error_message_carries_slack_markup(verb: str, words: list[str]) -> None:
    try:
        parse(" ".join([verb, *words, "demo"]))
    except CommandError as error:
        assert not _SLACK_MARKUP.search(error.message), error.message


_words = st.sampled_from(["web", "worker", "clock", "my_worker"])
_apps = st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True)


@given(
    st.lists(
        st.tuples(_words, st.sampled_from("=+-"), st.integers(0, 1000)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    ),
    _apps,
)
def test_canonical_text_parses_back_to_the_same_command(terms, app) -> None:
    text = "scale " + " ".join(f"{t}{op}{n}" for t, op, n in terms) + f" -a {app}"
    command = parse(text)
    assert parse(command.text()) == command


def test_plan_scale_resolves_relative_terms() -> None:
    current = {"web": (2, "standard-1x"), "worker": (1, "standard-1x")}
    changes = parse("scale web+3 worker-1 myapp").changes
    assert plan_scale(changes, current) == {"web": (5, None), "worker": (0, None)}


def test_plan_scale_refuses_an_unknown_type_and_a_negative_result() -> None:
    current = {"web": (1, "standard-1x")}
    with pytest.raises(CommandError, match="no `clock` process type"):
        plan_scale(parse("scale clock=1 myapp").changes, current)
    with pytest.raises(CommandError, match="would leave -1"):
        plan_scale(parse("scale web-2 myapp").changes, current)


def test_kill_targets_every_type_or_one() -> None:
    current = {"web": (2, "basic"), "worker": (1, "basic")}
    assert plan_kill(current, None) == {"web": (0, None), "worker": (0, None)}
    assert plan_kill(current, "worker") == {"worker": (0, None)}
    with pytest.raises(CommandError, match="no `clock`"):
        plan_kill(current, "clock")


def test_only_targets_that_move_a_count_or_a_size_change_anything() -> None:
    current = {"web": (2, "Standard-1X"), "worker": (0, "basic")}
    assert changing(current, plan_kill(current, None)) == {"web": (0, None)}
    assert changing(current, {"web": (2, "standard-1x")}) == {}
    assert changing(current, {"web": (2, "standard-2x")}) == {"web": (2, "standard-2x")}
    assert changing(current, {"clock": (1, None)}) == {"clock": (1, None)}


def test_scaling_a_running_type_to_zero_counts_as_a_kill() -> None:
    current = {"web": (2, "basic"), "worker": (0, "basic")}
    assert stops_dynos(current, {"web": (0, None)})
    assert not stops_dynos(current, {"worker": (0, None)})
    assert not stops_dynos(current, {"web": (1, None)})


def test_help_lists_every_verb_and_explains_one() -> None:
    text = help_text()
    for verb in VERBS:
        assert f"/deploy {verb}" in text
    assert "scale web=2 myapp" in help_text("scale")
    # Every change that asks first is named: `config unset` asks as `config set` does, and
    # `maintenance on` takes the site offline for its users.
    assert (
        "`kill`, `rollback`, `config set`, `config unset`, `maintenance on` and anything that"
        in text
    )


@pytest.mark.parametrize("verb", VERBS)
def test_help_names_force_where_the_verb_takes_it(verb: str) -> None:
    # No help said `--force` at all: a freeze's refusal was the first a user read of it.
    # The verbs a freeze never holds back (`lock`, `unlock`, `watch`) refuse it.
    takes_force = verb in MUTATING_VERBS and verb not in FREEZE_EXEMPT_VERBS
    assert ('`--force "reason"`' in help_text(verb)) == takes_force
    assert '`--force "reason"`' in help_text()


def test_help_s_lock_line_names_what_a_lock_holds_back() -> None:
    # It had said "nobody else may change the app", but a lock leaves scaling, restarts and
    # maintenance mode to whoever is on call (docs/deployments.md).
    [line] = [line for line in help_text().splitlines() if "`/deploy lock APP" in line]
    assert "change the app" not in line
    for held in ("roll back", "ship", "promote", "swap", "config", "run"):
        assert held in line.split("`: ")[1], line


def test_help_s_config_line_says_who_sees_the_values() -> None:
    # It had said "(values masked)" to admins, who see them (as `help config` and the
    # README say: masked unless you may change them).
    [line] = [line for line in help_text().splitlines() if "`/deploy config APP" in line]
    assert "values masked unless you may change them" in line


@pytest.mark.parametrize(
    "text",
    [
        'status "myapp\n"',
        'rollback myapp "v2\n"',
        'ship myapp "main\n"',
        'logs myapp "web.1\n"',
        'swap myapp "other\n"',
        'restart myapp "web\n"',
        'scale "web=2\n" myapp',
        'metrics myapp "1h\n"',
    ],
)
def test_a_quoted_word_ending_in_a_newline_is_no_name(text: str) -> None:
    # `$` matches before a final newline: `ship myapp "main⏎"` (Slack sends what shift-enter
    # types) had passed as the ref `main\n`, into the source URL, and `status "myapp⏎"` had
    # asked Heroku for an app `myapp\n`.
    with pytest.raises(CommandError):
        parse(text)


@pytest.mark.parametrize("dash", ["\u2014", "\u2013"])
def test_an_option_whose_dashes_smart_punctuation_joined_still_reads(dash: str) -> None:
    # macOS and iOS turn a typed `--` into a long dash: `—force` had been answered
    # "`demo` is not a scale term", and `—app demo` "`—app` is not a valid app name".
    forced = parse(f'scale web=2 myapp {dash}force "hotfix 1"')
    assert forced == Command("scale", app="myapp", changes=forced.changes, force="hotfix 1")
    assert parse(f"status {dash}app myapp").app == "myapp"
    assert parse(f"status {dash}app=myapp").app == "myapp"
    assert parse(f"status {dash}a myapp").app == "myapp"
    assert parse(f"restart myapp {dash}force now").force == "now"


@pytest.mark.parametrize("dash", ["\u2014", "\u2013"])
def test_a_lock_reads_an_option_whose_dashes_smart_punctuation_joined(dash: str) -> None:
    # Every other verb reads `—force` and `—a` as the options: `lock demo —force x` had
    # locked `demo` with the reason "—force x", and `lock —a demo why` had been answered
    # "`—a` is not a valid app name". A lone dash in the prose stays part of it.
    with pytest.raises(CommandError) as caught:
        parse(f"lock demo {dash}force x")
    assert caught.value.problem.startswith("`--force` only passes a freeze")
    assert parse(f"lock {dash}a demo release freeze") == Command(
        "lock", app="demo", reason="release freeze"
    )
    assert parse(f"lock {dash}app demo why").app == "demo"
    assert parse(f"lock demo hotfix {dash} do not ship").reason == f"hotfix {dash} do not ship"


def test_curly_single_quotes_around_words_quote_as_straight_ones() -> None:
    # macOS and iOS curl a typed `'` too: `--force ‘hot fix’` had been answered "`fix’` is
    # neither a process type (`web`) nor a dyno", and `status ‘demo’` "not a valid app
    # name". An apostrophe inside a word (`don’t`) is no quote and stays as typed.
    assert parse("restart myapp --force \u2018hot fix\u2019").force == "hot fix"
    assert parse("status \u2018myapp\u2019").app == "myapp"
    assert parse("restart myapp --force don\u2019t").force == "don\u2019t"
    assert parse("lock myapp don\u2019t ship").reason == "don\u2019t ship"


def test_curly_double_quotes_quote_as_straight_ones_but_in_a_config_value() -> None:
    # macOS and iOS curl a typed `"`: `--force “hot fix”` had left `fix”` over, answered
    # "`fix”` is neither a process type nor a dyno".
    assert parse("restart myapp --force \u201chot fix\u201d").force == "hot fix"
    assert parse("scale web=2 myapp --force \u201chot fix\u201d").force == "hot fix"
    # A config value is stored as typed, so its curly quotes are named rather than read:
    # the answer had only said to use quotes, to someone who had.
    with pytest.raises(CommandError) as caught:
        parse("config set K=\u201ca b\u201d myapp")
    assert "A value with spaces goes in quotes" in caught.value.message
    assert 'Yours are curly (\u201c \u201d): type straight ones, `"`.' in caught.value.message


def test_a_verb_s_help_says_every_window_it_takes() -> None:
    # Both take any span in their range: help had offered `[5m | 1h | 24h]` and `7d` alone,
    # so `metrics myapp 6h` or `simulate myapp 3d` read as not allowed.
    assert parse("metrics myapp 6h").limit == 6 * 60
    assert "/deploy metrics APP [WINDOW]" in help_text("metrics")
    assert "WINDOW from 1m to 24h (default 1h)" in help_text("metrics")
    assert parse("simulate myapp 3d").limit == 3 * 24 * 60
    assert "/deploy simulate APP SPAN" in help_text("simulate")
    assert "SPAN from 1h to 14d" in help_text("simulate")


@pytest.mark.parametrize(
    "text",
    ["logs myapp -n 50", "logs myapp --num 50", "logs -a myapp -n 50", "logs myapp --num=50"],
)
def test_logs_takes_the_heroku_cli_s_count_option(text: str) -> None:
    # The bot itself points at `heroku logs -n 300 -a APP` when a reply is cut, and `-n 50`
    # typed here the same way had been "`-n` is not an option I know."
    assert parse(text) == Command("logs", app="myapp", limit=50)


def test_logs_count_option_without_a_count_says_what_goes_after_it() -> None:
    with pytest.raises(CommandError) as caught:
        parse("logs myapp -n")
    assert caught.value.problem == "`-n` needs a number of lines after it, like `-n 50`."


def test_metrics_help_names_where_a_beanstalk_environment_s_figures_come_from() -> None:
    # Help said "(from the log drain)" alone, and `drain` refuses a Beanstalk environment:
    # its figures come from CloudWatch and its health reports, as the README says.
    assert "log drain, or CloudWatch on Beanstalk" in help_text("metrics")
    assert "from the log drain or CloudWatch" in help_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('kill myapp --force "hotfix 123"', Command("kill", app="myapp", force="hotfix 123")),
        ("history", Command("history", limit=10)),
        ("history myapp 20", Command("history", app="myapp", limit=20)),
        ("history 5 -a myapp", Command("history", app="myapp", limit=5)),
        ("whoami", Command("whoami")),
        ("alerts", Command("alerts")),
        ("alerts myapp", Command("alerts", app="myapp")),
        ("alerts -a myapp", Command("alerts", app="myapp")),
    ],
)
def test_history_whoami_and_force(text: str, expected: Command) -> None:
    assert parse(text) == expected
    assert parse(expected.text()) == expected  # canonical text round-trips


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("chart myapp", 24 * 60), ("chart myapp 6h", 6 * 60), ("chart -a myapp 7D", 7 * 24 * 60)],
)
def test_chart_windows(text, minutes):
    command = parse(text)
    assert (command.verb, command.app, command.limit) == ("chart", "myapp", minutes)
    assert parse(command.text()) == command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("chart myapp 3h", "`3h` is not a chart window: use 6h, 24h, 7d."),
        ("chart", "Say which app."),
        ("chart myapp 6h 7d", "`7d` is one word too many."),
        ("about now", "`about` takes no other words."),
    ],
)
def test_dashboard_verbs_refuse_bad_input(text, says):
    with pytest.raises(CommandError, match=re.escape(says)):
        parse(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("releases 5 myapp", "Put the app first: `/deploy releases myapp 5`."),
        ("metrics 30m myapp", "Put the app first: `/deploy metrics myapp 30m`."),
        ("chart 7d myapp", "Put the app first: `/deploy chart myapp 7d`."),
        # These had been "`web=5` is not a valid app name", "`7d` is not a simulation" and
        # "`web.1` is not a valid app name".
        ("pin web=5 for 2h myapp", "Put the app first: `/deploy pin myapp web=5 for 2h`."),
        ("simulate 7d myapp", "Put the app first: `/deploy simulate myapp 7d`."),
        ("logs web.1 myapp", "Put the app first: `/deploy logs myapp web.1`."),
        ("logs web.1 200 myapp", "Put the app first: `/deploy logs myapp web.1 200`."),
        # "`v1.4.2` is not a valid app name": a ref or version label no app is called.
        ("ship v1.4.2 myapp", "Put the app first: `/deploy ship myapp v1.4.2`."),
        ("rollback shop-1.3.2 myapp", "Put the app first: `/deploy rollback myapp shop-1.3.2`."),
        # Two numbers: no app in sight, the plain answer.
        ("releases 5 0", "Ask for 1 to 50 releases or application versions."),
        ("builds 5 myapp", "Put the app first: `/deploy builds myapp 5`."),
        ("builds myapp 0", "Ask for 1 to 50 builds."),
        ("builds myapp 51", "Ask for 1 to 50 builds."),
        # "Ask for 1 to 50 releases" alone had not said the word was no number at all.
        ("builds myapp ten", "`ten` is not a number. Ask for 1 to 50 builds."),
        (
            "releases myapp abc",
            "`abc` is not a number. Ask for 1 to 50 releases or application versions.",
        ),
        ("releases myapp -1", "Ask for 1 to 50 releases or application versions."),
        ("builds", "Say which app."),
    ],
)
def test_a_number_before_the_app_is_answered_with_the_order(text, says):
    with pytest.raises(CommandError, match=re.escape(says)):
        parse(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # maintenance had built its own: it echoed a quoted name with a space unquoted (three
        # words, as typed), an empty one as "", and clipped a long name alone, at 40.
        ('maintenance on "my app"', "Put the app first: `/deploy maintenance 'my app' on`."),
        ('maintenance on ""', "Put the app first: `/deploy maintenance '' on`."),
        (
            "maintenance off " + "x" * 60,
            "Put the app first: `/deploy maintenance " + "x" * 59 + "…`.",
        ),
        # releases, metrics and chart had not clipped at all (97 characters here).
        (
            "releases " + "1" * 39 + " " + "a" * 40,
            "Put the app first: `/deploy releases " + "a" * 40 + " " + "1" * 21 + "…`.",
        ),
    ],
)
def test_put_the_app_first_is_one_wording_for_every_verb(text, says):
    """Every verb's "Put the app first" is `_app_first`'s: the command quoted as it would be
    typed, clipped as a whole at 80 characters."""
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.message.startswith(says + " Usage: ")


def test_builds_lists_ten_by_default_and_is_read_only():
    assert (parse("builds myapp").app, parse("builds myapp").limit) == ("myapp", 10)
    assert parse("builds -a myapp 20").limit == 20
    assert "builds" in rules.READ_ONLY_VERBS and "builds" not in MUTATING_VERBS


def test_an_app_named_by_a_number_still_takes_its_count():
    assert (parse("releases 5 3").app, parse("releases 5 3").limit) == ("5", 3)


@pytest.mark.parametrize(
    "text",
    [
        "metrics demo 24h",
        "metrics demo 90m",
        "simulate demo 7d",
        "simulate demo 36h",
        "pin demo web=5 for 2h",
        "pin demo web=5 for 1d",
        "pin demo web=5 for 90m",
    ],
)
def test_a_span_is_written_back_as_typed(text):
    # The echo ("Working on …") and audit rows had read 1440m, 168h and 120m.
    assert parse(text).text() == text


def test_cost_takes_an_optional_app():
    assert parse("cost").app is None and parse("cost myapp").app == "myapp"
    assert not parse("cost myapp").mutating and not parse("chart myapp").mutating


@pytest.mark.parametrize(
    "text",
    [
        "scale {w}=1 demo",
        "restart demo {w}",
        "restart demo {w}.1",
        "kill demo {w}",
        "logs demo {w}",
        "scale web=2:{w} demo",
    ],
)
def test_a_huge_word_is_refused_clipped(text: str) -> None:
    # Not sent to Heroku, nor echoed whole: a name is at most 30 characters, a size 40.
    with pytest.raises(CommandError) as caught:
        parse(text.format(w="a" * 10_000))
    assert "a" * 30 + "…`" in caught.value.message and len(caught.value.message) < 300


@pytest.mark.parametrize("dash", ["\u2013", "\u2014", "\u2212"])
def test_a_schedule_window_copied_as_the_bot_writes_it_reads(dash: str) -> None:
    # `schedule list` and the replies write a window with en dashes ("Mon–Fri 08:00–18:00
    # UTC"); typed back, or curled by smart punctuation, it had been refused: "`08:00–18:00`
    # is not a time range like 08:00-18:00", and its days "use … ranges (mon-fri)".
    command = parse(f"autoscale demo schedule add Mon{dash}Fri 08:00{dash}18:00 min=3")
    assert command.options[:3] == (("days", "mon-fri"), ("start", "08:00"), ("end", "18:00"))


def test_a_worker_type_may_still_autoscale_to_zero_and_targets_at_the_edge_pass() -> None:
    assert parse("autoscale demo worker on min=0 max=3 target=jobs:5").options[0] == ("min", "0")
    assert parse("autoscale demo on target=queue:30s min=1").options[0] == ("target", "queue:30s")


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("autoscale demo on max=0", "/deploy autoscale APP [TYPE] on|off|shadow|status"),
        ("autoscale demo set max_step=0", "/deploy autoscale APP set down_stabilization"),
        ("autoscale demo schedule add x", "/deploy autoscale APP schedule add DAYS"),
    ],
)
def test_an_autoscale_error_shows_the_usage_of_the_form_typed(text: str, usage: str) -> None:
    # The whole usage of all three forms made every error about 380 characters long.
    with pytest.raises(CommandError) as caught:
        parse(text)
    shown_usage = caught.value.message.split("Usage: ")[1]
    assert shown_usage.startswith(f"`{usage}") and shown_usage.count("/deploy") == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # The misspelt action passed for the app, and the word after it was blamed:
        # "`KEY=v` is one word too many".
        (
            "config sett KEY=v demo",
            "`sett` is not a config action: did you mean `set`? Use `set` or `unset`, "
            "or only the app to list the vars.",
        ),
        ("config sett KEY=v -a demo", "`sett` is not a config action: did you mean `set`?"),
        ("config demo set KEY=secret", "Put `set` first: `/deploy config set KEY=… demo`."),
        # An action near no other had passed for the app: "`demo` is one word too many".
        (
            "config frob demo",
            "`frob` is not a config action: use `set` or `unset`, or only the app to list "
            "the vars.",
        ),
        ("config -a demo frob", "`frob` is not a config action: use `set` or `unset`"),
        ("config frob KEY demo", "`frob` is not a config action: use `set` or `unset`"),
        ("autoscale demo sett max_step=4", "`sett` is not a mode: did you mean `set`?"),
        ("autoscale demo schedul add mon-fri 08:00-18:00 min=3", "`schedul` is not a mode"),
        # "Name the two environments to swap", to someone who had named three.
        ("swap a b extra", "`extra` is one word too many."),
        # "`demo` is one word too many": the app typed where APP goes and with -a as well.
        ("status demo -a demo-api", "The app is given twice: `demo` and `demo-api` after `-a`."),
        ("restart demo web -a demo-api", "The app is given twice: `demo` and `demo-api`"),
        ("releases demo -a demo-api", "The app is given twice"),
        ("scale web=2 demo -a demo-api", "The app is given twice"),
        ("config set K=v demo -a demo-api", "The app is given twice"),
        # Words after the option are not the app: the word too many is.
        ("restart -a demo web web.1", "`web.1` is one word too many."),
        # "`of` is not a mode." named no mode.
        (
            "autoscale demo worker of",
            "`of` is not a mode: did you mean `off`? Use `on`, `off`, `shadow` or `status`.",
        ),
        (
            "autoscale demo of",
            "`of` is not a mode: did you mean `off`? Use `on`, `off`, `shadow`, `status`, `set` "
            "or `schedule`.",
        ),
        ("autoscale demo worker bogus", "`bogus` is not a mode: use `on`, `off`, `shadow` or"),
        # "`worker` is not a mode: use `on`, …" did not say a type takes a mode after it.
        (
            "autoscale demo worker",
            "`worker` is not a mode. After a process type, say on, off, shadow or status, like "
            "`/deploy autoscale demo worker status`.",
        ),
        # `enable` had been read as a process type left without its mode, and answered
        # with a command for a type `enable` (`/deploy autoscale demo enable status`).
        (
            "autoscale demo enable",
            "`enable` is not a mode: did you mean `on`? Use `on`, `off`, `shadow`, `status`, "
            "`set` or `schedule`.",
        ),
        ("autoscale demo disable", "`disable` is not a mode: did you mean `off`?"),
        ("autoscale demo worker enable", "`enable` is not a mode: did you mean `on`?"),
        ("maintenance demo disable", "`disable` is not a maintenance setting: did you mean `off`?"),
        # "Say `on` or `off`." and "Write the count and how long…" named no word.
        (
            "maintenance demo of",
            "`of` is not a maintenance setting: did you mean `off`? Use `on` or `off`.",
        ),
        ("maintenance demo bogus", "`bogus` is not a maintenance setting: use `on` or `off`."),
        (
            "pin demo web=5 fr 2h",
            "`fr` is not `for`: write the count, `for` and how long, like `web=5 for 2h`.",
        ),
        # A word after a whole command had been "Say `on` or `off`.", "Write the count and
        # how long, like `web=5 for 2h`." and "`demo` is not a simulation."
        ("maintenance demo on extra", "`extra` is one word too many."),
        ("pin demo web=5 for 2h extra", "`extra` is one word too many."),
        ("pin demo off extra", "`extra` is one word too many."),
        ("simulate demo 7d extra", "`extra` is one word too many."),
        # A span typed as two words had blamed the app: "`demo` is not a simulation."
        ("simulate demo 7 d", "Write the span as one word: `/deploy simulate demo 7d`."),
        ("simulate demo 12 Hours", "Write the span as one word: `/deploy simulate demo 12h`."),
        # Metrics and chart had said "`m` is one word too many." to a window in two words.
        ("metrics demo 5 m", "Write the window as one word: `/deploy metrics demo 5m`."),
        ("metrics demo 2 hours", "Write the window as one word: `/deploy metrics demo 2h`."),
        ("metrics -a Demo 5 minutes", "Write the window as one word: `/deploy metrics demo 5m`."),
        ("chart demo 6 h", "Write the window as one word: `/deploy chart demo 6h`."),
        ("chart demo 7 days", "Write the window as one word: `/deploy chart demo 7d`."),
        # `lines` after the count had been read as a process type the app lacks.
        ("logs demo 5 lines", "Write the number of lines alone: `/deploy logs demo 5`."),
        ("logs demo web 20 Lines", "Write the number of lines alone: `/deploy logs demo web 20`."),
        # Pin had said "`hours` is one word too many."
        (
            "pin demo web=5 for 2 hours",
            "Write the duration as one word: `/deploy pin demo web=5 for 2h`.",
        ),
        (
            "pin -a demo web=5 for 90 min",
            "Write the duration as one word: `/deploy pin demo web=5 for 90m`.",
        ),
    ],
)
def test_an_error_blames_the_word_that_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.problem.startswith(problem)
    assert "KEY=v" not in caught.value.message and "secret" not in caught.value.message


def test_a_word_after_an_app_first_is_blamed_once_the_first_word_names_an_app() -> None:
    # `config demo frob` said "`demo` is not a config action": the app blamed for the
    # word after it. Only the registry knows which of the two is the app, so the error
    # offers its other reading, for when the first word names one.
    with pytest.raises(CommandError) as caught:
        parse("config demo frob")
    assert caught.value.problem.startswith("`demo` is not a config action")
    assert caught.value.if_app is not None
    word, instead = caught.value.if_app
    assert word == "demo"
    assert instead.problem == (
        "`frob` after the app is one word too many: `/deploy config demo` lists the vars, "
        "and `set` or `unset` goes before the app."
    )
    with pytest.raises(CommandError) as caught:
        parse("config -a demo frob")  # the app is known: nothing to offer
    assert caught.value.if_app is None


def test_a_word_before_the_app_option_is_still_read_when_the_command_holds() -> None:
    assert parse("restart web -a demo") == Command("restart", "demo", target="web")
    assert parse("config sets").app == "sets"  # near `set`, but alone it is the app


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # `-a` in a lock was taken for words of the reason: app `demo`, reason `-a demo-api`.
        ('lock -a demo "release freeze"', Command("lock", "demo", reason="release freeze")),
        ("lock -a demo release freeze", Command("lock", "demo", reason="release freeze")),
        ("lock --app=demo don't ship", Command("lock", "demo", reason="don't ship")),
        (
            "lock -a demo hotfix - do not ship",
            Command("lock", "demo", reason="hotfix - do not ship"),
        ),
        # A dash or an option-like word inside the prose stays the reason's own.
        ("lock demo hotfix - do not ship", Command("lock", "demo", reason="hotfix - do not ship")),
        ("lock demo -- see #ops", Command("lock", "demo", reason="-- see #ops")),
        ('lock demo "hold -a while"', Command("lock", "demo", reason="hold -a while")),
    ],
)
def test_the_app_and_force_options_are_read_in_a_lock(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # These locked `demo` with the reason `-a demo-api …` or `--force x`.
        ("lock demo -a demo-api", "The app is given twice: `demo` and `demo-api` after `-a`."),
        ('lock demo -a demo-api "release freeze"', "The app is given twice: `demo` and `demo-api`"),
        ("lock demo --app demo-api why", "The app is given twice: `demo` and `demo-api`"),
        ("lock demo --app=demo-api why", "The app is given twice: `demo` and `demo-api`"),
        (
            'lock demo --force "x"',
            "`--force` only passes a freeze, and no freeze holds back `lock`",
        ),
        ("lock demo --force x", "`--force` only passes a freeze, and no freeze holds back `lock`"),
        ("lock demo don't --force", "`--force` only passes a freeze"),
        (
            "unlock demo --force x",
            "`--force` only passes a freeze, and no freeze holds back `unlock`",
        ),
        # `watch` is exempt from freezes too: its `--force` had been ignored without a word.
        (
            'watch demo --force "x"',
            "`--force` only passes a freeze, and no freeze holds back `watch`",
        ),
    ],
)
def test_an_app_or_force_option_in_a_lock_is_not_a_word_of_its_reason(
    text: str, problem: str
) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.problem.startswith(problem), caught.value.problem


def test_a_reason_past_its_limit_is_cut_with_a_mark() -> None:
    # Both had been cut at 200 characters without a word of it: the lock's reply read
    # "locked `demo`: long long … long . Only they may", as if that were all of it.
    reason = parse("lock demo " + "long " * 60).reason or ""
    assert len(reason) == 200 and reason.endswith(" long…")
    force = parse('scale web=2 demo --force "' + "hotfix " * 40 + '"').force or ""
    assert len(force) == 200 and force.endswith("…")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Before `-a`, a release number or a word that can be no app is the version or ref,
        # as in `heroku releases:rollback v12 -a APP`; after it, any version or ref is.
        ("rollback v12 -a demo", Command("rollback", "demo", target="v12")),
        ("rollback 12 -a demo", Command("rollback", "demo", target="12")),
        ("rollback app-1.2.3 -a demo", Command("rollback", "demo", target="app-1.2.3")),
        ("rollback -a demo-api demo", Command("rollback", "demo-api", target="demo")),
        ("rollback -a demo-api build-17", Command("rollback", "demo-api", target="build-17")),
        ("ship -a demo-api demo", Command("ship", "demo-api", target="demo")),
        ("ship v1.4.2 -a demo", Command("ship", "demo", target="v1.4.2")),
        ("ship release/2026-11 -a demo", Command("ship", "demo", target="release/2026-11")),
        ("ship demo main", Command("ship", "demo", target="main")),
        # A commit SHA (7 to 40 hex characters, digits and letters both) is no app's name
        # anyone types: it had been told that it stands where the usage puts APP.
        ("ship 3f2c1a9 -a demo", Command("ship", "demo", target="3f2c1a9")),
        ("ship 3F2C1A9 -a demo", Command("ship", "demo", target="3F2C1A9")),
        ("ship " + "3f2c1a9e" * 5 + " -a demo", Command("ship", "demo", target="3f2c1a9e" * 5)),
    ],
)
def test_a_version_or_ref_is_read_on_either_side_of_the_app_option(
    text: str, expected: Command
) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # These took `demo` for the version (or the git ref) of `demo-api`.
        (
            "rollback demo -a demo-api",
            "`demo` stands where the usage puts APP, and `-a` names `demo-api` too. If `demo` "
            "is the version, put it after the app: `rollback demo-api demo`; if it is the app, "
            "leave out `-a`.",
        ),
        (
            "ship demo -a demo-api",
            "`demo` stands where the usage puts APP, and `-a` names `demo-api` too. If `demo` "
            "is the git ref, put it after the app: `ship demo-api demo`; if it is the app, "
            "leave out `-a`.",
        ),
        # A ref typed first is told where it goes, not only that an app is given twice.
        ("ship main -a demo", "`main` stands where the usage puts APP, and `-a` names `demo`"),
        ("rollback build-17 -a demo", "`build-17` stands where the usage puts APP"),
        # Hex without a digit, or too short for a SHA, may well be an app.
        ("ship deadbeef -a demo", "`deadbeef` stands where the usage puts APP"),
        ("ship 3f2c1a -a demo", "`3f2c1a` stands where the usage puts APP"),
        ("rollback 3f2c1a9 -a demo", "`3f2c1a9` stands where the usage puts APP"),
    ],
)
def test_an_app_typed_before_the_app_option_is_not_taken_for_a_version_or_ref(
    text: str, problem: str
) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.problem == problem or caught.value.problem.startswith(problem)


def test_config_alone_asks_for_the_app() -> None:
    # The `config demo K=v` suggestion had read the first word of none: an IndexError, so
    # `/deploy config` got no answer (found by test_slack_edge's property test in CI).
    with pytest.raises(CommandError, match="Say which app"):
        parse("config")


def test_one_pattern_names_a_dyno_for_the_parser_and_the_platform() -> None:
    # The parser and Heroku's client each had a pattern; the client's took any `\w`.
    assert is_dyno_name("web.1") and is_dyno_name("web-1234abcde-123ab")
    assert not is_dyno_name("web") and not is_dyno_name("web.1234567")
    assert not is_dyno_name("wéb.1") and not is_dyno_name("web.١")
    assert parse("logs demo web-1234abcde-123ab").target == "web-1234abcde-123ab"
    # The Kelvin sign is `k` under IGNORECASE alone: a process type is ASCII, as Heroku's.
    with pytest.raises(CommandError):
        parse("restart demo wor\u212aer")


@pytest.mark.parametrize("term", ["web\u212a=2", "w\u0130b=2", "web=\u0662", "web+\u0661"])
def test_a_scale_term_is_ascii_as_heroku_s_process_types_are(term: str) -> None:
    # Under IGNORECASE alone `web\u212a=2` had been taken as a scale of `webk`, and `web=\u0662`
    # (an Arabic-Indic two) as `web=2`: a count or a type the user never typed.
    with pytest.raises(CommandError) as caught:
        parse(f"scale {term} demo")
    assert "is not a scale term" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("scale web 2 demo", "`/deploy scale web=2 demo`"),
        ("scale web 2 worker=1 demo", "`/deploy scale web=2 worker=1 demo`"),
        ("scale -a demo web 3", "`/deploy scale web=3 demo`"),
    ],
)
def test_a_scale_written_as_type_then_count_is_given_back_as_one_word(text, meant) -> None:
    # `heroku ps:scale web 2` habits: it had said "`web` is not a scale term".
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"Write each change as one word: {meant}."), caught.value


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "scale web=-1 demo",
            "`web=-1`: a dyno count cannot be negative. Write `web=0` to stop `web` "
            "(or `/deploy kill demo web`), or `web-1` to take 1 dyno away.",
        ),
        (
            "scale worker=-3:standard-2x -a demo",
            "`worker=-3:standard-2x`: a dyno count cannot be negative. Write `worker=0` to stop "
            "`worker` (or `/deploy kill demo worker`), or `worker-3` to take 3 dynos away.",
        ),
        # `web-99999`, which it had offered, is refused: only `web=0` is offered.
        (
            "scale web=-99999 demo",
            "`web=-99999`: a dyno count cannot be negative. Write `web=0` to stop `web` "
            "(or `/deploy kill demo web`).",
        ),
        # It had said "`web-99999` asks for more than 1000 dynos", of a word that asks
        # for fewer.
        (
            "scale web-99999 demo",
            "`web-99999` takes more than 1000 dynos away, more than a process type runs. "
            "Write `web=0` to stop `web`.",
        ),
    ],
)
def test_a_negative_count_says_so_and_what_to_write(text: str, said: str) -> None:
    # It had said "`web=-1` is not a scale term: write TYPE=N, TYPE+N or TYPE-N.", which
    # reads as if `web=-1` were none of those, and named no way to stop the type.
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert str(caught.value).startswith(said), caught.value


def test_scale_takes_at_most_twenty_terms() -> None:
    terms = [f"t{n}=1" for n in range(1, 21)]
    assert len(parse("scale " + " ".join(terms) + " demo").changes) == 20
    # Thousands of terms had been parsed, echoed in the ack and looked up one by one.
    with pytest.raises(CommandError) as caught:
        parse("scale " + " ".join([*terms, "t21=1"]) + " demo")
    assert str(caught.value).startswith(
        "That is 21 scale terms, and one `scale` takes at most 20 (one per process type): "
        "scale fewer types at a time."
    ), caught.value
    with pytest.raises(CommandError) as caught:
        parse("scale " + " ".join(f"t{n}=1" for n in range(5000)) + " demo")
    assert "That is 5,000 scale terms" in str(caught.value)
    assert len(str(caught.value)) < 300
