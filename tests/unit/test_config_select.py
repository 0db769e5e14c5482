"""Which services start at boot (profiles, --only) and did-you-mean for values."""

from __future__ import annotations

from pyinit.config.nodes import did_you_mean
from pyinit.config.profiles import from_env, unselected

SHAPE = {
    "db": ((), ()),
    "api": ((), ("db",)),
    "debug": (("debug", "tools"), ("shell",)),
    "shell": (("tools",), ()),
}


def test_profiles_and_only_select_with_dependencies() -> None:
    assert unselected(SHAPE, [], []) == ({"debug", "shell"}, [])
    assert unselected(SHAPE, ["debug"], []) == (set(), [])  # debug pulls shell in
    assert unselected(SHAPE, ["tools"], []) == (set(), [])
    assert unselected(SHAPE, [], ["api"]) == ({"debug", "shell"}, [])
    assert unselected(SHAPE, [], ["shell"]) == ({"db", "api", "debug"}, [])


def test_selection_problems_name_what_exists() -> None:
    _skipped, problems = unselected(SHAPE, ["tool"], ["dbb"])
    assert problems == [
        "--profile tool: no service has this profile (profiles: debug, tools)",
        "--only dbb: no such service; did you mean 'db'?",
    ]
    assert from_env(" a, b,,") == ["a", "b"]


def test_did_you_mean_values() -> None:
    options = ("no", "on-failure", "always", "unless-stopped")
    assert did_you_mean("on_failure", options) == "; did you mean 'on-failure'?"
    assert did_you_mean("allways", options) == "; did you mean 'always'?"
    assert did_you_mean("zzz", options) == ""


def test_shell_syntax_in_string_commands_is_found() -> None:
    from pyinit.config.shellwarn import shell_syntax, warnings

    assert shell_syntax("make && run") == "&&"
    assert shell_syntax("a || b") == "||"
    assert shell_syntax("a | b") == "|"
    assert shell_syntax("a; b") == ";"
    assert shell_syntax("a > log") == ">"
    assert shell_syntax("echo $(date)") == "$("
    assert shell_syntax("echo `date`") == "`"
    assert shell_syntax("echo 'a && b' \"x|y\"") is None
    assert shell_syntax("server --port 80") is None
    text = 'services:\n  a:\n    command: "make && run"\n  b:\n    command: [sh, -c, "a|b"]\n'
    assert warnings(text, "f.yaml") == [
        "f.yaml:3: warning: services.a.command holds shell syntax ('&&') but runs "
        'without a shell; to run it in one, write ["sh", "-c", "make && run"]'
    ]
