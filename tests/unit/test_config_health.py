"""Unit tests for ``healthcheck:``, ``ready:`` and the service_ready/service_healthy
conditions in services.yaml: the parsed dataclasses and every error message."""

from __future__ import annotations

import textwrap

import pytest

from pyinit.config import (
    Condition,
    ConfigError,
    Dependency,
    HealthCheck,
    Probe,
    Readiness,
    ServiceConfig,
    load_config_text,
)


def service(body: str, environ: dict[str, str] | None = None) -> ServiceConfig:
    """Load one service ``web`` whose settings are ``body`` (YAML, lines from 4 on)."""
    text = "services:\n  web:\n    command: [web]\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    return load_config_text(text, "services.yaml", environ or {}).services["web"]


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(textwrap.dedent(text), "services.yaml", environ or {})
    return [str(p) for p in info.value.problems]


def service_problems(body: str) -> list[str]:
    """Problems of one service ``web`` whose settings are ``body`` (lines from 4 on)."""
    text = "services:\n  web:\n    command: [web]\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    return problems_of(text)


def health(body: str, environ: dict[str, str] | None = None) -> HealthCheck | None:
    return service(
        "healthcheck:\n" + textwrap.indent(textwrap.dedent(body), "  "), environ
    ).healthcheck


def ready(body: str, environ: dict[str, str] | None = None) -> Readiness | None:
    return service("ready:\n" + textwrap.indent(textwrap.dedent(body), "  "), environ).ready


# -- healthcheck: valid forms ------------------------------------------------------------


def test_no_healthcheck_and_no_ready_by_default() -> None:
    """A service without the keys has neither (ready when started, never healthy)."""
    web = service("restart: always\n")
    assert web.healthcheck is None and web.ready is None


def test_healthcheck_cmd_with_compose_defaults() -> None:
    """[CMD, args...] execs the args; timings default as in Compose."""
    assert health("test: [CMD, curl, -f, http://localhost:8000/health]\n") == HealthCheck(
        probe=Probe("exec", ("curl", "-f", "http://localhost:8000/health")),
        interval=30.0,
        timeout=30.0,
        retries=3,
        start_period=0.0,
        start_interval=5.0,
    )


def test_healthcheck_cmd_shell_runs_through_sh() -> None:
    """[CMD-SHELL, command] becomes /bin/sh -c command."""
    check = health('test: ["CMD-SHELL", "pg_isready -U app || exit 1"]\n')
    assert check is not None
    assert check.probe == Probe("exec", ("/bin/sh", "-c", "pg_isready -U app || exit 1"))


def test_healthcheck_string_test_is_cmd_shell() -> None:
    """A plain string test is a CMD-SHELL, as in Compose."""
    check = health('test: "curl -f http://localhost/ || exit 1"\n')
    assert check is not None
    assert check.probe == Probe("exec", ("/bin/sh", "-c", "curl -f http://localhost/ || exit 1"))


def test_healthcheck_every_timing_key() -> None:
    """interval, timeout, retries, start_period and start_interval are read."""
    check = health(
        """\
        test: [CMD, true]
        interval: 10s
        timeout: 3s
        retries: 5
        start_period: 1m
        start_interval: 500ms
        """
    )
    assert check == HealthCheck(
        Probe("exec", ("true",)),
        interval=10.0,
        timeout=3.0,
        retries=5,
        start_period=60.0,
        start_interval=0.5,
    )


@pytest.mark.parametrize(
    "body",
    [
        "test: [NONE]\n",
        "test: [NONE]\ninterval: 10s\n",
        "disable: true\n",
        "disable: true\ninterval: 10s\nretries: 2\n",
    ],
)
def test_healthcheck_disabled_is_none(body: str) -> None:
    """test: [NONE] and disable: true turn the healthcheck off (Compose's forms)."""
    assert health(body) is None


def test_healthcheck_disable_false_keeps_it() -> None:
    """disable: false changes nothing."""
    check = health("disable: false\ntcp: 80\n")
    assert check is not None and check.probe == Probe("tcp", port=80)


@pytest.mark.parametrize(
    ("value", "probe"),
    [
        ("6379", Probe("tcp", host="127.0.0.1", port=6379)),
        ('"6379"', Probe("tcp", host="127.0.0.1", port=6379)),
        ("db:5432", Probe("tcp", host="db", port=5432)),
        ('"10.0.0.5:80"', Probe("tcp", host="10.0.0.5", port=80)),
        ('"[::1]:6379"', Probe("tcp", host="::1", port=6379)),
        ('":8080"', Probe("tcp", host="127.0.0.1", port=8080)),
        ("${PORT:-6379}", Probe("tcp", host="127.0.0.1", port=6379)),
    ],
)
def test_healthcheck_tcp(value: str, probe: Probe) -> None:
    """tcp: a port (host 127.0.0.1) or host:port; IPv6 in brackets; interpolated."""
    check = health(f"tcp: {value}\n")
    assert check is not None and check.probe == probe


def test_tcp_describe_brackets_ipv6() -> None:
    """Probe.describe keeps an IPv6 host readable."""
    assert Probe("tcp", host="::1", port=6379).describe() == "tcp [::1]:6379"
    assert Probe("tcp", port=6379).describe() == "tcp 127.0.0.1:6379"


def test_healthcheck_http_with_and_without_expect_status() -> None:
    """http: a full http:// URL; expect_status is optional."""
    check = health("http: http://127.0.0.1:8000/health\n")
    assert check is not None
    assert check.probe == Probe("http", url="http://127.0.0.1:8000/health")
    check = health("http: http://localhost/ping?deep=1\nexpect_status: 204\n")
    assert check is not None
    assert check.probe == Probe("http", url="http://localhost/ping?deep=1", expect_status=204)


@pytest.mark.parametrize(
    ("value", "command"),
    [
        ("[redis-cli, ping]", ("redis-cli", "ping")),
        ("redis-cli -h 127.0.0.1 ping", ("redis-cli", "-h", "127.0.0.1", "ping")),
        ("\"sh -c 'test -f /tmp/ok'\"", ("sh", "-c", "test -f /tmp/ok")),
    ],
)
def test_healthcheck_exec_list_or_string(value: str, command: tuple[str, ...]) -> None:
    """exec: a list, or a string split like a shell would (never run by one)."""
    check = health(f"exec: {value}\n")
    assert check is not None and check.probe == Probe("exec", command)


def test_healthcheck_extension_keys_allowed() -> None:
    """x-* keys are ignored, as everywhere else."""
    check = health("tcp: 80\nx-note: anything\n")
    assert check is not None and check.probe.port == 80


# -- healthcheck: mistakes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "healthcheck: {interval: 10s}\n",
            "services.yaml:4: services.web.healthcheck: no probe: set test (as in Compose) "
            "or one of tcp, http, exec",
        ),
        (
            "healthcheck:\n",
            "services.yaml:4: services.web.healthcheck: no probe: set test (as in Compose) "
            "or one of tcp, http, exec",
        ),
        (
            "healthcheck:\n  test: [CMD, x]\n  tcp: 80\n",
            "services.yaml:6: services.web.healthcheck: more than one probe (test, tcp); keep one",
        ),
        (
            "healthcheck: {http: 'http://x/', exec: [x]}\n",
            "services.yaml:4: services.web.healthcheck: more than one probe (http, exec); keep one",
        ),
        (
            "healthcheck: {tcp: 70000}\n",
            "services.yaml:4: services.web.healthcheck.tcp: port 70000 is out of range 1-65535",
        ),
        (
            "healthcheck: {tcp: 0}\n",
            "services.yaml:4: services.web.healthcheck.tcp: port 0 is out of range 1-65535",
        ),
        (
            "healthcheck: {tcp: redis}\n",
            "services.yaml:4: services.web.healthcheck.tcp: expected a port number or "
            "host:port; got 'redis'",
        ),
        (
            "healthcheck: {tcp: 'db:http'}\n",
            "services.yaml:4: services.web.healthcheck.tcp: expected a port number or "
            "host:port; got 'db:http'",
        ),
        (
            "healthcheck: {tcp: '::1:80'}\n",
            "services.yaml:4: services.web.healthcheck.tcp: write an IPv6 address in "
            "brackets, as in [::1]:6379; got '::1:80'",
        ),
        (
            "healthcheck: {tcp: [80]}\n",
            "services.yaml:4: services.web.healthcheck.tcp: expected a port number or "
            "host:port; got a list",
        ),
        (
            "healthcheck: {http: 'https://localhost/health'}\n",
            "services.yaml:4: services.web.healthcheck.http: https is not supported: the "
            "http probe speaks plain HTTP only; probe a plain-HTTP port, or use exec with a "
            "client such as curl -f https://...",
        ),
        (
            "healthcheck: {http: /health}\n",
            "services.yaml:4: services.web.healthcheck.http: expected a URL such as "
            "http://127.0.0.1:8000/health; got '/health'",
        ),
        (
            "healthcheck: {http: 'http://localhost:99999/'}\n",
            "services.yaml:4: services.web.healthcheck.http: expected a URL such as "
            "http://127.0.0.1:8000/health with a port 1-65535; got 'http://localhost:99999/'",
        ),
        (
            "healthcheck: {http: 'http://localhost/a b'}\n",
            "services.yaml:4: services.web.healthcheck.http: a URL cannot contain spaces "
            "(write %20); got 'http://localhost/a b'",
        ),
        (
            "healthcheck: {tcp: 80, expect_status: 200}\n",
            "services.yaml:4: services.web.healthcheck.expect_status: applies only to an "
            "http probe, not to tcp",
        ),
        (
            "healthcheck: {http: 'http://x/', expect_status: 600}\n",
            "services.yaml:4: services.web.healthcheck.expect_status: expected an HTTP "
            "status code 100-599; got a number (600)",
        ),
        (
            "healthcheck: {exec: ''}\n",
            "services.yaml:4: services.web.healthcheck.exec: the command is empty",
        ),
        (
            "healthcheck: {test: [CMD]}\n",
            "services.yaml:4: services.web.healthcheck.test: CMD needs a command after it, "
            "as in [CMD, pg_isready]",
        ),
        (
            "healthcheck: {test: [CMD-SHELL, curl, -f, 'http://x/']}\n",
            "services.yaml:4: services.web.healthcheck.test: CMD-SHELL takes exactly one "
            "string, the shell command; for separate arguments use CMD",
        ),
        (
            "healthcheck: {test: [curl, -f, 'http://x/']}\n",
            "services.yaml:4: services.web.healthcheck.test[0]: expected CMD, CMD-SHELL or "
            "NONE first (as in Compose); got 'curl'",
        ),
        (
            "healthcheck: {test: [NONE, x]}\n",
            "services.yaml:4: services.web.healthcheck.test: NONE disables the healthcheck "
            "and takes nothing after it",
        ),
        (
            "healthcheck: {test: []}\n",
            "services.yaml:4: services.web.healthcheck.test: the list is empty; expected "
            "[CMD, arg, ...], [CMD-SHELL, command] or [NONE]",
        ),
        (
            "healthcheck: {test: {CMD: x}}\n",
            "services.yaml:4: services.web.healthcheck.test: expected a list such as "
            "[CMD, arg, ...] or a shell command string; got a mapping",
        ),
        (
            "healthcheck:\n  test: [CMD, x]\n  disable: true\n",
            "services.yaml:6: services.web.healthcheck.disable: disable: true turns the "
            "healthcheck off, yet it has a probe (test); remove one of them",
        ),
        (
            "healthcheck: {tcp: 80, disable: maybe}\n",
            "services.yaml:4: services.web.healthcheck.disable: expected true or false; "
            "got a string ('maybe')",
        ),
        (
            "healthcheck: {tcp: 80, retries: 0}\n",
            "services.yaml:4: services.web.healthcheck.retries: expected a whole number >= 1; "
            "got a number (0)",
        ),
        (
            "healthcheck: {tcp: 80, interval: 0s}\n",
            "services.yaml:4: services.web.healthcheck.interval: expected a duration longer than 0",
        ),
        (
            "healthcheck: {tcp: 80, start_period: soon}\n",
            "services.yaml:4: services.web.healthcheck.start_period: expected a duration such "
            "as 10s, 1m30s or 500ms; got 'soon'",
        ),
        (
            "healthcheck:\n  tcp: 80\n  intervall: 10s\n",
            "services.yaml:6: services.web.healthcheck.intervall: unknown key; did you mean "
            "'interval'?",
        ),
        (
            "healthcheck:\n  tset: [CMD, x]\n",
            "services.yaml:5: services.web.healthcheck.tset: unknown key; did you mean 'test'?",
        ),
        (
            "healthcheck: [CMD, x]\n",
            "services.yaml:4: services.web.healthcheck: expected a mapping such as "
            "{test: [CMD, ...], interval: 10s}; got a list",
        ),
    ],
)
def test_healthcheck_mistakes(body: str, expected: str) -> None:
    assert service_problems(body) == [expected]


# -- ready: valid forms ----------------------------------------------------------------


def test_ready_notify_defaults() -> None:
    """notify: true, with the common defaults (timeout 60s, no watchdog)."""
    assert ready("notify: true\n") == Readiness(
        "notify",
        pattern="",
        fd=0,
        probe=None,
        interval=1.0,
        probe_timeout=1.0,
        timeout=60.0,
        watchdog=0.0,
    )


def test_ready_notify_short_form() -> None:
    """ready: notify is short for {notify: true}."""
    assert service("ready: notify\n").ready == Readiness("notify")


def test_ready_notify_with_watchdog_and_timeout() -> None:
    assert ready("notify: true\nwatchdog: 30s\ntimeout: 2m\n") == Readiness(
        "notify", watchdog=30.0, timeout=120.0
    )


def test_ready_timeout_zero_means_no_limit() -> None:
    ready_ = ready("notify: true\ntimeout: 0\n")
    assert ready_ is not None and ready_.timeout == 0.0


def test_ready_log_line() -> None:
    """log_line keeps the regex as written; '$$' is a literal '$' (interpolation)."""
    assert ready('log_line: "Ready to accept connections$$"\n') == Readiness(
        "log_line", pattern="Ready to accept connections$"
    )
    assert ready(r"log_line: '^\d+ listening on port \d+'" + "\n") == Readiness(
        "log_line", pattern=r"^\d+ listening on port \d+"
    )


def test_ready_fd() -> None:
    assert ready("fd: 3\n") == Readiness("fd", fd=3)
    assert ready("fd: 255\n") == Readiness("fd", fd=255)


def test_ready_tcp_probe_defaults() -> None:
    """A probe polls every 1s with a 1s per-try timeout by default."""
    assert ready("tcp: 6379\n") == Readiness(
        "probe", probe=Probe("tcp", port=6379), interval=1.0, probe_timeout=1.0, timeout=60.0
    )


def test_ready_probe_timings() -> None:
    assert ready(
        "http: http://127.0.0.1:8080/ready\nexpect_status: 200\ninterval: 250ms\n"
        "probe_timeout: 2s\ntimeout: 5m\n"
    ) == Readiness(
        "probe",
        probe=Probe("http", url="http://127.0.0.1:8080/ready", expect_status=200),
        interval=0.25,
        probe_timeout=2.0,
        timeout=300.0,
    )


def test_ready_exec_string_and_list() -> None:
    assert ready("exec: pg_isready -q\n") == Readiness(
        "probe", probe=Probe("exec", ("pg_isready", "-q"))
    )
    assert ready("exec: [test, -S, /run/app.sock]\n") == Readiness(
        "probe", probe=Probe("exec", ("test", "-S", "/run/app.sock"))
    )


def test_ready_notify_false_is_no_source() -> None:
    """notify: false does not count as a source (so ${NOTIFY:-false} works)."""
    assert ready("notify: false\ntcp: 80\n") == Readiness("probe", probe=Probe("tcp", port=80))


def test_ready_and_healthcheck_together() -> None:
    web = service("ready: {log_line: started}\nhealthcheck: {tcp: 8000, interval: 5s}\n")
    assert web.ready == Readiness("log_line", pattern="started")
    assert web.healthcheck == HealthCheck(Probe("tcp", port=8000), interval=5.0)


# -- ready: mistakes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "ready: {timeout: 10s}\n",
            "services.yaml:4: services.web.ready: no readiness source: set one of notify, "
            "log_line, fd, tcp, http, exec",
        ),
        (
            "ready: {notify: false}\n",
            "services.yaml:4: services.web.ready: no readiness source: set one of notify, "
            "log_line, fd, tcp, http, exec",
        ),
        (
            "ready:\n  notify: true\n  tcp: 80\n",
            "services.yaml:6: services.web.ready: more than one readiness source (notify, "
            "tcp); keep one",
        ),
        (
            "ready: {log_line: 'listening on (port', timeout: 5s}\n",
            "services.yaml:4: services.web.ready.log_line: invalid regular expression "
            "'listening on (port': missing ), unterminated subpattern at position 13",
        ),
        (
            "ready: {log_line: ''}\n",
            "services.yaml:4: services.web.ready.log_line: the pattern is empty; it would "
            "match any line",
        ),
        (
            "ready: {log_line: 'ready$'}\n",
            "services.yaml:4: services.web.ready.log_line: invalid interpolation at '$': '$' "
            "must be followed by a name or '{'; write '$$' for a literal '$'",
        ),
        (
            "ready: {fd: 1}\n",
            "services.yaml:4: services.web.ready.fd: expected a file descriptor 3-255 (0-2 are "
            "stdin, stdout and stderr); got a number (1)",
        ),
        (
            "ready: {fd: 256}\n",
            "services.yaml:4: services.web.ready.fd: expected a file descriptor 3-255 (0-2 are "
            "stdin, stdout and stderr); got a number (256)",
        ),
        (
            "ready: {fd: true}\n",
            "services.yaml:4: services.web.ready.fd: expected a file descriptor 3-255 (0-2 are "
            "stdin, stdout and stderr); got a boolean (true)",
        ),
        (
            "ready: {tcp: 6379, watchdog: 30s}\n",
            "services.yaml:4: services.web.ready.watchdog: applies only to notify: true "
            "(WATCHDOG=1 comes over $NOTIFY_SOCKET), not to tcp",
        ),
        (
            "ready: {notify: true, interval: 2s}\n",
            "services.yaml:4: services.web.ready.interval: applies only to a probe (tcp, http "
            "or exec), not to notify",
        ),
        (
            "ready: {fd: 3, probe_timeout: 2s}\n",
            "services.yaml:4: services.web.ready.probe_timeout: applies only to a probe (tcp, "
            "http or exec), not to fd",
        ),
        (
            "ready: {log_line: up, expect_status: 200}\n",
            "services.yaml:4: services.web.ready.expect_status: applies only to an http "
            "probe, not to log_line",
        ),
        (
            "ready: {tcp: 80, interval: 0}\n",
            "services.yaml:4: services.web.ready.interval: expected a duration longer than 0",
        ),
        (
            "ready: {tcp: 80, timeout: -1}\n",
            "services.yaml:4: services.web.ready.timeout: a duration cannot be negative; got -1",
        ),
        (
            "ready: {http: 'https://localhost:8443/'}\n",
            "services.yaml:4: services.web.ready.http: https is not supported: the http probe "
            "speaks plain HTTP only; probe a plain-HTTP port, or use exec with a client such "
            "as curl -f https://...",
        ),
        (
            "ready: {tcp: 'localhost:0'}\n",
            "services.yaml:4: services.web.ready.tcp: port 0 is out of range 1-65535",
        ),
        (
            "ready: {notify: yes please}\n",
            "services.yaml:4: services.web.ready.notify: expected true or false; got a string "
            "('yes please')",
        ),
        (
            "ready:\n  log-line: up\n",
            "services.yaml:5: services.web.ready.log-line: unknown key; did you mean 'log_line'?",
        ),
        (
            "ready:\n  tcp: 80\n  probe_timout: 2s\n",
            "services.yaml:6: services.web.ready.probe_timout: unknown key; did you mean "
            "'probe_timeout'?",
        ),
        (
            "ready: tcp\n",
            "services.yaml:4: services.web.ready: expected a mapping such as {tcp: 6379} or "
            "{log_line: regex}, or notify; got a string ('tcp')",
        ),
        (
            "ready: true\n",
            "services.yaml:4: services.web.ready: expected a mapping such as {tcp: 6379} or "
            "{log_line: regex}, or notify; got a boolean (true)",
        ),
    ],
)
def test_ready_mistakes(body: str, expected: str) -> None:
    assert service_problems(body) == [expected]


# -- conditions ------------------------------------------------------------------------


def test_service_ready_needs_no_source() -> None:
    """service_ready is valid on any service: without ready: or healthcheck: it means
    started."""
    config = load_config_text(
        textwrap.dedent(
            """\
            services:
              db:
                command: [db]
              web:
                command: [web]
                depends_on:
                  db: {condition: service_ready}
            """
        ),
        "services.yaml",
        {},
    )
    assert config.services["web"].depends_on == (Dependency("db", Condition.READY),)


def test_service_healthy_with_a_healthcheck() -> None:
    config = load_config_text(
        textwrap.dedent(
            """\
            services:
              db:
                command: [db]
                healthcheck: {tcp: 5432}
              web:
                command: [web]
                depends_on:
                  db: {condition: service_healthy}
            """
        ),
        "services.yaml",
        {},
    )
    assert config.services["web"].depends_on == (Dependency("db", Condition.HEALTHY),)


def test_service_healthy_without_healthcheck() -> None:
    """A dependency without a healthcheck (or with it disabled) is never healthy; a
    readiness source does not make it so."""
    assert problems_of(
        """\
        services:
          db:
            command: [db]
            ready: {tcp: 5432}
          cache:
            command: [cache]
            healthcheck: {test: [NONE]}
          web:
            command: [web]
            depends_on:
              db: {condition: service_healthy}
              cache: {condition: service_healthy}
        """
    ) == [
        "services.yaml:11: services.web.depends_on.db: service_healthy: 'db' has no "
        "healthcheck, so it is never healthy; give it a healthcheck or use service_ready",
        "services.yaml:12: services.web.depends_on.cache: service_healthy: 'cache' has its "
        "healthcheck disabled, so it is never healthy; give it a healthcheck or use "
        "service_ready",
    ]


def test_service_healthy_on_an_invalid_healthcheck_reports_only_the_healthcheck() -> None:
    """A healthcheck with a mistake is reported once, not again by its dependants."""
    assert problems_of(
        """\
        services:
          db:
            command: [db]
            healthcheck: {tcp: 99999}
          web:
            command: [web]
            depends_on:
              db: {condition: service_healthy}
        """
    ) == ["services.yaml:4: services.db.healthcheck.tcp: port 99999 is out of range 1-65535"]


def test_many_health_problems_at_once() -> None:
    """Problems in healthcheck and ready are collected with the rest, sorted by line."""
    assert problems_of(
        """\
        services:
          web:
            command: [web]
            restart: sometimes
            healthcheck: {}
            ready: {fd: 0}
        """
    ) == [
        "services.yaml:4: services.web.restart: expected one of no, on-failure, always, "
        "unless-stopped; got 'sometimes'",
        "services.yaml:5: services.web.healthcheck: no probe: set test (as in Compose) or "
        "one of tcp, http, exec",
        "services.yaml:6: services.web.ready.fd: expected a file descriptor 3-255 (0-2 are "
        "stdin, stdout and stderr); got a number (0)",
    ]
