"""Unit tests for the services.yaml loader: values, defaults and every error message."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from pyinit.config import (
    Backoff,
    Condition,
    Config,
    ConfigError,
    Dependency,
    InterpolationError,
    RestartPolicy,
    ServiceType,
    Settings,
    StartLimit,
    interpolate,
    load_config,
    load_config_text,
)


def load(text: str, environ: dict[str, str] | None = None, path: str = "services.yaml") -> Config:
    # As root (ids 0, 0): `user:` is valid whoever runs the tests.
    return load_config_text(textwrap.dedent(text), path, environ or {}, ids=(0, 0))


def problems(
    text: str, environ: dict[str, str] | None = None, path: str = "services.yaml"
) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, environ, path)
    return [str(p) for p in info.value.problems]


def one_problem(text: str, environ: dict[str, str] | None = None) -> str:
    found = problems(text, environ)
    assert len(found) == 1, found
    return found[0]


# -- values and defaults ---------------------------------------------------------------


def test_minimal_service_gets_every_default() -> None:
    """A service with only a command gets the documented defaults, and so do settings."""
    config = load(
        """\
        services:
          web:
            command: ["gunicorn", "app:app"]
        """
    )
    web = config.services["web"]
    assert web.command == ("gunicorn", "app:app")
    assert web.type is ServiceType.LONGRUN
    assert web.restart is RestartPolicy.NO
    assert web.depends_on == ()
    assert web.environment == {}
    assert web.working_dir is None and web.user is None
    assert web.backoff == Backoff() and web.start_limit == StartLimit()
    assert web.stop_signal == signal.SIGTERM
    assert web.stop_grace_period == 10.0
    assert web.critical is False
    assert web.logging == "capture"
    assert web.line == 2
    assert config.settings == Settings(shutdown_timeout=30.0, log_format="text")
    assert config.path == "services.yaml"


def test_every_key_is_read() -> None:
    """Each documented service key lands in its ServiceConfig field, converted."""
    config = load(
        """\
        settings:
          shutdown_timeout: 1m30s
          log_format: json
        services:
          db:
            command: postgres
          web:
            command: ["gunicorn", "app:app"]
            type: longrun
            depends_on: {db: {condition: service_started}}
            working_dir: /app
            user: "www-data:www-data"
            restart: unless-stopped
            backoff: {initial: 100ms, max: 1m, multiplier: 1.5, jitter: 0, reset_after: 30}
            start_limit: {burst: 3, interval: 10s}
            stop_signal: QUIT
            stop_grace_period: 2.5
            critical: true
            logging: inherit
        """
    )
    assert config.settings == Settings(shutdown_timeout=90.0, log_format="json")
    web = config.services["web"]
    assert web.depends_on == (Dependency("db", Condition.STARTED),)
    assert web.working_dir == "/app"
    assert web.user == "www-data:www-data"
    assert web.restart is RestartPolicy.UNLESS_STOPPED
    assert web.backoff == Backoff(
        initial=0.1, max=60.0, multiplier=1.5, jitter=0.0, reset_after=30.0
    )
    assert web.start_limit == StartLimit(burst=3, interval=10.0)
    assert web.stop_signal == signal.SIGQUIT
    assert web.stop_grace_period == 2.5
    assert web.critical is True
    assert web.logging == "inherit"
    assert list(config.services) == ["db", "web"]  # file order


def test_bare_no_is_restart_no_and_numbers_keep_their_text() -> None:
    """YAML 1.1 reads `no` as false and `1000:50` as a base-60 number; pyinit reads
    what the user wrote."""
    web = load(
        """\
        services:
          web:
            command: ["sleep", 5]
            restart: no
            user: 1000:50
            stop_signal: 9
            environment: {ZIP: 01234, DEBUG: yes}
        """
    ).services["web"]
    assert web.restart is RestartPolicy.NO
    assert web.command == ("sleep", "5")
    assert web.user == "1000:50"
    assert web.stop_signal == signal.SIGKILL
    assert web.environment == {"ZIP": "01234", "DEBUG": "yes"}


def test_string_command_is_split_like_a_shell_without_one() -> None:
    """A string command is split with shell quoting rules; no shell features apply."""
    web = load(
        """\
        services:
          web:
            command: redis-server --save "" --dir '/data dir' a|b $$HOME
        """
    ).services["web"]
    assert web.command == ("redis-server", "--save", "", "--dir", "/data dir", "a|b", "$HOME")


def test_oneshot_and_dependency_forms() -> None:
    """depends_on as a list means service_started; as a map each condition is kept."""
    config = load(
        """\
        services:
          migrate: {command: [migrate], type: oneshot, restart: on-failure}
          cache: {command: [redis]}
          web:
            command: [web]
            depends_on:
              migrate: {condition: service_completed_successfully}
              cache: {}
          worker:
            command: [worker]
            depends_on: [cache, migrate]
        """
    )
    assert config.services["migrate"].type is ServiceType.ONESHOT
    assert config.services["web"].depends_on == (
        Dependency("migrate", Condition.COMPLETED_SUCCESSFULLY),
        Dependency("cache", Condition.STARTED),
    )
    assert config.services["worker"].depends_on == (Dependency("cache"), Dependency("migrate"))


def test_start_tiers_group_by_dependency_depth() -> None:
    """Tier n holds the services whose deepest dependency is in tier n-1, file order."""
    config = load(
        """\
        services:
          web: {command: [w], depends_on: [migrate, cache]}
          migrate: {command: [m], type: oneshot, depends_on: [db]}
          cache: {command: [c]}
          db: {command: [d]}
          cron: {command: [c], depends_on: [web]}
        """
    )
    assert config.start_tiers() == [["cache", "db"], ["migrate"], ["web"], ["cron"]]


def test_merge_keys_and_extension_fields() -> None:
    """x-* keys are ignored and YAML anchors with << share settings; own keys win."""
    config = load(
        """\
        x-defaults: &defaults
          restart: always
          stop_grace_period: 3s
        services:
          a:
            <<: *defaults
            command: [a]
            restart: on-failure
            x-note: ignored
          b:
            <<: *defaults
            command: [b]
        """
    )
    assert config.services["a"].restart is RestartPolicy.ON_FAILURE
    assert config.services["a"].stop_grace_period == 3.0
    assert config.services["b"].restart is RestartPolicy.ALWAYS


# -- environment -----------------------------------------------------------------------


def test_environment_map_and_list_forms() -> None:
    """Map and list forms give the same strings; NAME alone takes pyinit's value."""
    environ = {"FROM_HOST": "h", "EMPTY": ""}
    config = load(
        """\
        services:
          a:
            command: [a]
            environment: {PORT: 8000, RATIO: 1.5, ON: true, NAME: x, FROM_HOST:, MISSING:}
          b:
            command: [b]
            environment: ["PORT=8000", "EQ=a=b", "EMPTY_VALUE=", FROM_HOST, MISSING, EMPTY]
        """,
        environ,
    )
    assert config.services["a"].environment == {
        "PORT": "8000",
        "RATIO": "1.5",
        "ON": "true",
        "NAME": "x",
        "FROM_HOST": "h",
    }
    assert config.services["b"].environment == {
        "PORT": "8000",
        "EQ": "a=b",
        "EMPTY_VALUE": "",
        "FROM_HOST": "h",
        "EMPTY": "",
    }


def test_env_file_then_environment_later_wins(tmp_path: Path) -> None:
    """env_file paths are relative to the config's directory; files apply in order,
    then `environment` overrides them."""
    (tmp_path / "base.env").write_text(
        textwrap.dedent(
            """\
            # comment

            export A=1
            B = "two words"
            C='single $quoted'
            D=from-base
            HOSTVAR
            """
        )
    )
    (tmp_path / "local.env").write_text("D=from-local\nE=e\n")
    config_file = tmp_path / "services.yaml"
    config_file.write_text(
        textwrap.dedent(
            """\
            services:
              web:
                command: [web]
                env_file: [base.env, local.env, {path: absent.env, required: false}]
                environment: {E: from-environment}
            """
        )
    )
    web = load_config(str(config_file), {"HOSTVAR": "h"}).services["web"]
    assert web.environment == {
        "A": "1",
        "B": "two words",
        "C": "single $quoted",
        "D": "from-local",
        "HOSTVAR": "h",
        "E": "from-environment",
    }
    assert list(web.environment) == ["A", "B", "C", "D", "HOSTVAR", "E"]


def test_env_file_single_path(tmp_path: Path) -> None:
    """env_file may be one path instead of a list."""
    (tmp_path / ".env").write_text("X=1\n")
    config_file = tmp_path / "services.yaml"
    config_file.write_text("services:\n  web:\n    command: [web]\n    env_file: .env\n")
    assert load_config(str(config_file), {}).services["web"].environment == {"X": "1"}


def test_env_file_bad_line_names_the_env_file_and_hides_the_value(tmp_path: Path) -> None:
    """A malformed env file line is reported at that file's line, without its text."""
    (tmp_path / "web.env").write_text("OK=1\nSECRET hunter2\n")
    config_file = tmp_path / "services.yaml"
    config_file.write_text("services:\n  web:\n    command: [web]\n    env_file: web.env\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file), {})
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path}/web.env:2: services.web.env_file: "
        "expected NAME=value, a # comment or a blank line"
    ]
    assert "hunter2" not in str(info.value)


def test_dotenv_next_to_the_config_feeds_interpolation(tmp_path: Path) -> None:
    """Compose's .env: its variables interpolate; the process environment wins;
    $PYINIT_ENV_FILE (--env-file) picks another file, which must exist."""
    (tmp_path / ".env").write_text("PORT=8000\nNAME=from-dotenv\n")
    (tmp_path / "other.env").write_text("PORT=9000\n")
    config_file = tmp_path / "services.yaml"
    config_file.write_text("services:\n  web:\n    command: [web, '${PORT}', '${NAME}']\n")
    assert load_config(str(config_file), {}).services["web"].command == (
        "web",
        "8000",
        "from-dotenv",
    )
    assert load_config(str(config_file), {"NAME": "env"}).services["web"].command[2] == "env"
    chosen = {"PYINIT_ENV_FILE": str(tmp_path / "other.env")}
    assert load_config(str(config_file), chosen).services["web"].command[1:] == ("9000", "")
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file), {"PYINIT_ENV_FILE": str(tmp_path / "nope.env")})
    assert "--env-file: env file" in str(info.value) and "not found" in str(info.value)


# -- interpolation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A", "a"),
        ("x$A-y", "xa-y"),
        ("${UNSET}", ""),
        ("$UNSET", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${UNSET-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:-dflt}", "a"),
        ("${UNSET:-${A}}", "a"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${A:?needed}", "a"),
        ("${EMPTY?needed}", ""),
        ("$$A and $${A}", "$A and ${A}"),
        ("no dollars", "no dollars"),
    ],
)
def test_interpolation_forms(text: str, expected: str) -> None:
    """Each Compose interpolation form expands as Compose documents it."""
    assert interpolate(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${X:?set X to the URL}", "required variable X is not set: set X to the URL"),
        ("${X?}", "required variable X is not set"),
        ("${EMPTY:?must not be empty}", "required variable EMPTY is empty: must not be empty"),
        (
            "echo $1",
            "invalid interpolation at '$1': '$' must be followed by a name or '{'; "
            "write '$$' for a literal '$'",
        ),
        ("${", "unclosed '${' in '${'"),
        (
            "${1X}",
            "invalid interpolation '${1X}'; expected ${NAME}, ${NAME:-default} or ${NAME:?message}",
        ),
        (
            "${X!y}",
            "invalid interpolation '${X!y}'; after the name expected '}', ':-', '-', "
            "':?', '?', ':+' or '+'",
        ),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    """Malformed expressions and unset required variables raise with a clear message."""
    with pytest.raises(InterpolationError) as info:
        interpolate(text, {"EMPTY": ""})
    assert str(info.value) == message


def test_interpolation_applies_to_values_not_keys() -> None:
    """Every string value is interpolated; a plain scalar is then typed as if the
    result had been written there; quoted ones stay strings; keys are left alone."""
    config = load(
        """\
        services:
          web:
            command: ["${BIN:-gunicorn}", "--bind=0.0.0.0:${PORT}"]
            stop_grace_period: ${GRACE:-10}
            critical: ${CRITICAL:-false}
            restart: ${RESTART:-no}
            environment:
              PLAIN: ${PORT}
              QUOTED: '${PORT}'
              LITERAL: "$${PORT}"
        """,
        {"PORT": "8000", "CRITICAL": "true", "KEY": "k"},
    )
    web = config.services["web"]
    assert web.command == ("gunicorn", "--bind=0.0.0.0:8000")
    assert web.stop_grace_period == 10.0
    assert web.critical is True
    assert web.restart is RestartPolicy.NO
    assert web.environment == {"PLAIN": "8000", "QUOTED": "8000", "LITERAL": "${PORT}"}
    # Keys are not interpolated: `${KEY}` stays a (here invalid) variable name.
    assert problems(
        """\
        services:
          web:
            command: [web]
            environment:
              ${KEY}: v
        """,
        {"KEY": "k"},
    ) == ["services.yaml:5: services.web.environment.${KEY}: invalid variable name '${KEY}'"]


def test_interpolation_uses_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit environ, pyinit's own environment is used."""
    monkeypatch.setenv("PYINIT_TEST_BIN", "/bin/true")
    config = load_config_text("services:\n  a:\n    command: $PYINIT_TEST_BIN\n", "s.yaml")
    assert config.services["a"].command == ("/bin/true",)


# -- one golden message per kind of mistake --------------------------------------------


def test_yaml_syntax_error() -> None:
    """A YAML syntax error is one problem at the parser's line, with its message."""
    assert one_problem("services:\n  web:\n    command: [a\n  db: {}\n") == (
        "services.yaml:4: YAML syntax error: while parsing a flow sequence; "
        "expected ',' or ']', but got ':' (column 5)"
    )


def test_duplicate_key() -> None:
    """A key given twice in one mapping is an error, naming the first occurrence."""
    assert (
        one_problem(
            """\
        services:
          web:
            command: [a]
            command: [b]
        """
        )
        == "services.yaml:4: services.web.command: duplicate key (first at line 3)"
    )


def test_unknown_key_with_suggestion() -> None:
    """An unknown key is an error with a did-you-mean when one is close."""
    found = problems(
        """\
        services:
          web:
            comand: [a]
            flavour: vanilla
        """
    )
    assert found == [
        "services.yaml:2: services.web.command: required key missing",
        "services.yaml:3: services.web.comand: unknown key; did you mean 'command'?",
        "services.yaml:4: services.web.flavour: unknown key",
    ]


def test_unknown_top_level_and_settings_keys() -> None:
    """Unknown keys are caught at every level, including Compose's obsolete version."""
    assert problems(
        """\
        version: "3.8"
        setings: {}
        settings: {shutdown_timout: 3s}
        services: {a: {command: [a]}}
        """
    ) == [
        "services.yaml:1: version: unknown key (Compose's 'version' is not used by pyinit; "
        "remove it)",
        "services.yaml:2: setings: unknown key; did you mean 'settings'?",
        "services.yaml:3: settings.shutdown_timout: unknown key; did you mean 'shutdown_timeout'?",
    ]


def test_bad_enum_value() -> None:
    """An enum key lists the accepted values and shows what it got."""
    assert one_problem(
        """\
        services:
          web:
            command: [a]
            restart: allways
        """
    ) == (
        "services.yaml:4: services.web.restart: expected one of no, on-failure, always, "
        "unless-stopped; got 'allways'; did you mean 'always'?"
    )


def test_bad_type() -> None:
    """A value of the wrong type says what was expected and what was found."""
    assert problems(
        """\
        services:
          web:
            command: {run: a}
            critical: "yes"
            type: 3
            environment: 12
        """
    ) == [
        "services.yaml:3: services.web.command: expected a list of strings or a string; "
        "got a mapping",
        "services.yaml:4: services.web.critical: expected true or false; got a string ('yes')",
        "services.yaml:5: services.web.type: expected one of longrun, oneshot; got a number (3)",
        "services.yaml:6: services.web.environment: expected a mapping of NAME: value or a "
        "list of NAME=value; got a number (12)",
    ]


def test_bad_duration() -> None:
    """A duration that does not parse names the accepted forms."""
    assert one_problem(
        """\
        services:
          web:
            command: [a]
            stop_grace_period: 10 parsecs
        """
    ) == (
        "services.yaml:4: services.web.stop_grace_period: expected a duration such as 10s, "
        "1m30s or 500ms; got '10 parsecs'"
    )


def test_bad_signal() -> None:
    """An unknown stop_signal is named, with the accepted forms."""
    assert one_problem(
        """\
        services:
          web:
            command: [a]
            stop_signal: SIGFOO
        """
    ) == (
        "services.yaml:4: services.web.stop_signal: unknown signal 'SIGFOO'; expected a name "
        "such as SIGTERM or TERM, or a number"
    )


def test_bad_numbers_in_backoff_and_start_limit() -> None:
    """Backoff and start_limit numbers are range-checked."""
    assert problems(
        """\
        services:
          web:
            command: [a]
            backoff: {multiplier: 0.5, jitter: 2}
            start_limit: {burst: 0, interval: 0}
          db:
            command: [b]
            backoff: {initial: 1m, max: 10s}
          cron:
            command: [c]
            backoff: {multiplier: .nan}
        """
    ) == [
        "services.yaml:4: services.web.backoff.multiplier: expected a number >= 1; got 0.5",
        "services.yaml:4: services.web.backoff.jitter: expected a fraction 0..1; got 2",
        "services.yaml:5: services.web.start_limit.burst: expected a whole number >= 1; "
        "got a number (0)",
        "services.yaml:8: services.db.backoff: initial (60s) is longer than max (10s)",
        "services.yaml:11: services.cron.backoff.multiplier: expected a finite number; got .nan",
    ]


def test_bad_user_and_service_name() -> None:
    """user is checked for syntax only; service names have a restricted alphabet."""
    assert problems(
        """\
        services:
          web:
            command: [a]
            user: "a:b:c"
          "-bad name":
            command: [a]
        """
    ) == [
        "services.yaml:4: services.web.user: expected a user: name, uid, name:group or "
        "uid:gid; got 'a:b:c'",
        "services.yaml:5: services.-bad name: invalid service name; use letters, digits, '_', "
        "'.' and '-', starting with a letter or digit",
    ]


def test_unknown_dependency_and_self_dependency() -> None:
    """A dependency on a missing service or on itself is named."""
    assert problems(
        """\
        services:
          web:
            command: [a]
            depends_on: [db, web]
        """
    ) == [
        "services.yaml:4: services.web.depends_on.db: no service named 'db'",
        "services.yaml:4: services.web.depends_on.web: a service cannot depend on itself",
    ]


def test_dependency_cycle() -> None:
    """A cycle is one problem naming it, starting from its first service in the file."""
    assert (
        one_problem(
            """\
        services:
          a: {command: [a], depends_on: [b]}
          b: {command: [b], depends_on: {c: {condition: service_started}}}
          c: {command: [c], depends_on: [a]}
          d: {command: [d], depends_on: [a]}
        """
        )
        == "services.yaml:2: services.a.depends_on: dependency cycle: a -> b -> c -> a"
    )


def test_completed_successfully_needs_a_oneshot() -> None:
    """A longrun never completes, so waiting for that would hang: an error."""
    assert one_problem(
        """\
        services:
          db: {command: [db]}
          web:
            command: [web]
            depends_on: {db: {condition: service_completed_successfully}}
        """
    ) == (
        "services.yaml:5: services.web.depends_on.db: service_completed_successfully needs "
        "'db' to be a oneshot (type: oneshot); a longrun never completes"
    )


def test_oneshot_restart_always_is_rejected() -> None:
    """A oneshot restarted after success would never stay completed."""
    assert one_problem(
        """\
        services:
          migrate: {command: [m], type: oneshot, restart: always}
        """
    ) == (
        "services.yaml:2: services.migrate.restart: a oneshot is not restarted after it "
        "completes; 'always' would run it forever (use no or on-failure)"
    )


def test_missing_and_empty_command() -> None:
    """Every service needs a non-empty command that splits cleanly."""
    assert problems(
        """\
        services:
          a: {type: oneshot}
          b: {command: []}
          c: {command: ""}
          d: {command: "echo 'unclosed"}
          e: {command: [echo, null]}
        """
    ) == [
        "services.yaml:2: services.a.command: required key missing",
        "services.yaml:3: services.b.command: the command is empty",
        "services.yaml:4: services.c.command: the command is empty",
        "services.yaml:5: services.d.command: cannot split the command like a shell would: "
        "No closing quotation",
        "services.yaml:6: services.e.command[1]: expected a string; got nothing (null)",
    ]


def test_missing_or_empty_services() -> None:
    """`services` is required and must declare at least one service."""
    assert one_problem("settings: {log_format: json}\n") == (
        "services.yaml:1: services: required key missing"
    )
    assert one_problem("services: {}\n") == (
        "services.yaml:1: services: expected at least one service"
    )
    assert one_problem("services: [a, b]\n") == (
        "services.yaml:1: services: expected a mapping of service names to services; got a list"
    )
    assert one_problem("") == (
        "services.yaml: the file is empty; expected a mapping with a 'services' key"
    )
    assert one_problem("- a\n") == (
        "services.yaml:1: expected a mapping with a 'services' key; got a list"
    )


def test_required_variable() -> None:
    """${X:?message} with X unset is a problem naming X, the message and the line."""
    assert one_problem(
        """\
        services:
          web:
            command: [web]
            environment:
              DATABASE_URL: ${DATABASE_URL:?set DATABASE_URL to the database}
        """
    ) == (
        "services.yaml:5: services.web.environment.DATABASE_URL: required variable "
        "DATABASE_URL is not set: set DATABASE_URL to the database"
    )


def test_missing_env_file(tmp_path: Path) -> None:
    """A missing env_file is a problem at its line, unless marked required: false."""
    config_file = tmp_path / "services.yaml"
    config_file.write_text("services:\n  web:\n    command: [web]\n    env_file: [.env]\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file), {})
    assert [str(p) for p in info.value.problems] == [
        f"{config_file}:4: services.web.env_file[0]: env file '{tmp_path}/.env' not found"
    ]


def test_healthcheck_ready_and_their_conditions_are_accepted() -> None:
    """healthcheck, ready, service_ready and service_healthy load (details in
    test_config_health.py)."""
    config = load(
        """\
        services:
          db:
            command: [db]
            healthcheck: {test: [CMD, pg_isready]}
            ready: {tcp: 5432}
          web:
            command: [web]
            depends_on:
              db: {condition: service_healthy}
          worker:
            command: [worker]
            depends_on:
              web: {condition: service_ready}
        """
    )
    db = config.services["db"]
    assert db.healthcheck is not None and db.healthcheck.probe.command == ("pg_isready",)
    assert db.ready is not None and db.ready.kind == "probe"
    assert config.services["web"].depends_on == (Dependency("db", Condition.HEALTHY),)
    assert config.services["worker"].depends_on == (Dependency("web", Condition.READY),)


def test_invalid_environment_names_do_not_echo_values() -> None:
    """A bad variable name is reported by name only; the value may be a secret."""
    found = problems(
        """\
        services:
          web:
            command: [web]
            environment: ["1BAD=hunter2"]
        """
    )
    assert found == ["services.yaml:4: services.web.environment[0]: invalid variable name '1BAD'"]


def test_unreadable_file() -> None:
    """load_config turns a missing file into a ConfigError, not an OSError."""
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/services.yaml")
    assert str(info.value) == "/nonexistent/services.yaml: cannot read: No such file or directory"


def test_many_problems_reported_at_once_sorted_by_line() -> None:
    """Every problem in the file is reported in one ConfigError, sorted by line."""
    found = problems(
        """\
        services:
          web:
            depends_on: [ghost]
            restart: sometimes
          db:
            command: [db]
            stop_grace_period: forever
        settings:
          log_format: xml
        """
    )
    assert found == [
        "services.yaml:2: services.web.command: required key missing",
        "services.yaml:3: services.web.depends_on.ghost: no service named 'ghost'",
        "services.yaml:4: services.web.restart: expected one of no, on-failure, always, "
        "unless-stopped; got 'sometimes'",
        "services.yaml:7: services.db.stop_grace_period: expected a duration such as 10s, "
        "1m30s or 500ms; got 'forever'",
        "services.yaml:9: settings.log_format: expected one of text, json; got 'xml'",
    ]


def test_relative_working_dir_is_relative_to_the_config_file() -> None:
    """As Compose has it (and as env_file is): pyinit itself moves to / once started."""
    text = """
        services:
          a: {command: "true", working_dir: data}
          b: {command: "true", working_dir: /srv}
        """
    config = load(text, path="/etc/app/services.yaml")
    assert config.services["a"].working_dir == "/etc/app/data"
    assert config.services["b"].working_dir == "/srv"
