"""Unit tests for the config keys of scheduled jobs, file watching and log files
(pyinit/config/extras.py): values, and each bad input as ``file:line: key: message``."""

from __future__ import annotations

import textwrap

import pytest

from pyinit.config import Config, ConfigError, load_config_text
from pyinit.config.extras import parse_size
from pyinit.config.model import LogFileOptions
from pyinit.watch import WatchSpec

PATH = "/srv/app/services.yaml"


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text), PATH, {}, ids=(0, 0))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def test_values() -> None:
    """Each key read as documented: schedule, concurrency, develop.watch relative to
    the config file, logging's file driver with Docker's sizes and file count."""
    config = load(
        """
        services:
          backup:
            type: oneshot
            command: backup
            schedule: "30  3 * * *"
            concurrency: replace
          tick:
            type: oneshot
            command: tick
            schedule: "@every 1m30s"
          web:
            command: web
            develop:
              watch:
                - {path: ./src, action: restart, ignore: ["*.pyc", .git/]}
                - {path: /etc/app.toml, action: restart}
            logging:
              driver: file
              options: {path: /var/log/app/web.log, max-size: 10m, max-file: "3", stdout: false}
          plain:
            command: plain
            logging: inherit
        """
    )
    backup, tick, web = (config.services[n] for n in ("backup", "tick", "web"))
    assert backup.schedule is not None and backup.schedule.cron == "30 3 * * *"
    assert backup.concurrency == "replace"
    assert tick.schedule is not None and tick.schedule.every == 90.0
    assert tick.concurrency == "forbid"
    assert web.watch == (
        WatchSpec("/srv/app/src", ("*.pyc", ".git/")),
        WatchSpec("/etc/app.toml", ()),
    )
    assert web.log_file == LogFileOptions("/var/log/app/web.log", 10 << 20, 3, False)
    assert web.logging == "capture"
    assert config.services["plain"].logging == "inherit"
    assert config.services["plain"].log_file is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("10m", 10 << 20), ("500k", 500 << 10), ("1g", 1 << 30), ("2MiB", 2 << 20), ("1.5k", 1536)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (
            "type: oneshot\n    schedule: '61 * * * *'",
            "services.yaml:5: services.a.schedule: bad cron expression '61 * * * *': ",
        ),
        (
            "type: oneshot\n    schedule: '@every soon'",
            "services.yaml:5: services.a.schedule: '@every soon': expected a duration",
        ),
        (
            "schedule: '@daily'",
            "services.yaml:4: services.a.schedule: a schedule runs a oneshot at times",
        ),
        (
            "type: oneshot\n    schedule: '@daily'\n    concurrency: allow",
            "services.yaml:6: services.a.concurrency: 'allow' is not offered",
        ),
        (
            "type: oneshot\n    schedule: '@daily'\n    concurency: forbid",
            "services.yaml:6: services.a.concurency: unknown key; did you mean 'concurrency'?",
        ),
        (
            "type: oneshot\n    develop: {watch: [{path: ., action: restart}]}",
            "services.yaml:5: services.a.develop.watch: restarting on file change is for a longrun",
        ),
        (
            "develop: {watch: [{path: ., action: rebuild}]}",
            "services.yaml:4: services.a.develop.watch[0].action: 'rebuild' is a Compose action",
        ),
        (
            "develop: {watch: [{path: ., action: restart, ignores: []}]}",
            "services.yaml:4: services.a.develop.watch[0].ignores: unknown key; did you mean",
        ),
        (
            "develop: {watch: [{action: restart}]}",
            "services.yaml:4: services.a.develop.watch[0].path: required key missing",
        ),
        (
            "logging: {driver: file, options: {path: /x.log, max-size: 10}}",
            "services.yaml:4: services.a.logging.options.max-size: expected a size with a unit",
        ),
        (
            "logging: {driver: file, options: {path: logs/x.log}}",
            "services.yaml:4: services.a.logging.options.path: must be an absolute path",
        ),
        (
            "logging: {driver: file, options: {path: /x.log, max-file: 3}}",
            "services.yaml:4: services.a.logging.options.max-file: needs max-size",
        ),
        (
            "logging: {driver: file, options: {path: /x.log, max-sise: 1m}}",
            "services.yaml:4: services.a.logging.options.max-sise: unknown key; did you mean",
        ),
        (
            "logging: {driver: syslog}",
            "services.yaml:4: services.a.logging.driver: expected file; got 'syslog'",
        ),
        (
            "logging: {driver: file}",
            "services.yaml:4: services.a.logging.options: required key missing",
        ),
        ("logging: capturee", "services.yaml:4: services.a.logging: expected one of capture"),
    ],
)
def test_bad_input(service: str, expected: str) -> None:
    """Each mistake names the file, the line and the key path, and says what is wrong."""
    found = problems(f"services:\n  a:\n    command: x\n    {service}\n")
    assert any(p.startswith(PATH.replace("services.yaml", "") + expected) for p in found), found


def test_nothing_depends_on_a_scheduled_job() -> None:
    found = problems(
        """
        services:
          job:
            type: oneshot
            command: x
            schedule: "@hourly"
          web:
            command: y
            depends_on: {job: {condition: service_completed_successfully}}
        """
    )
    assert found == [
        f"{PATH}:9: services.web.depends_on.job: 'job' is a scheduled job (@hourly): it runs "
        "at times, not once, so there is no moment a dependant could start on; drop the "
        "dependency or the schedule"
    ]
