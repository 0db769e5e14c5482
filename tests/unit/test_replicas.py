"""Replicas in the config (pyinit/config/replicas.py and the keys that declare
them): ``scale: N`` / ``deploy: {replicas: N}`` load as instances NAME.1..N in the
declaration's place, each bad input is one ``file:line: key.path: message``, a
run-time ``rescale`` keeps the running objects, and a reload that changes only a
count adds or removes instances and leaves every other service unchanged."""

from __future__ import annotations

import textwrap

import pytest

from pyinit.config import Config, ConfigError, load_config_text
from pyinit.config.model import LogFileOptions
from pyinit.config.profiles import unselected_in
from pyinit.config.replicas import (
    MAX_SCALE,
    instance,
    instance_log_path,
    rescale,
    split_instance,
)
from pyinit.reload import plan_reload

PATH = "/srv/app/services.yaml"


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config_text(textwrap.dedent(text), PATH, environ or {}, ids=(0, 0))


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    return [str(p) for p in info.value.problems]


SCALED = """
    services:
      db:
        command: db
      web:
        command: web --port 8000
        scale: 3
        environment: {MODE: prod}
        depends_on: [db]
      worker:
        command: work
        deploy: {replicas: 2}
      api:
        command: api
        depends_on: [web]
"""


# -- loading -------------------------------------------------------------------------


def test_instances_take_the_declarations_place() -> None:
    """A scaled service is its instances in Config.services, where it is declared;
    the declaration itself is in Config.scaled, by name, in file order."""
    config = load(SCALED)
    assert list(config.services) == ["db", "web.1", "web.2", "web.3", "worker.1", "worker.2", "api"]
    assert list(config.scaled) == ["web", "worker"]
    assert config.scaled["web"].scale == 3 and config.scaled["worker"].scale == 2
    assert config.scaled["web"].replica_of is None
    for i in (1, 2, 3):
        web = config.services[f"web.{i}"]
        assert (web.name, web.replica_of, web.replica, web.scale) == (f"web.{i}", "web", i, None)
        assert web.command == ("web", "--port", "8000")
        assert web.line == config.scaled["web"].line  # messages point at the declaration
        assert [d.name for d in web.depends_on] == ["db"]
    assert [d.name for d in config.services["api"].depends_on] == ["web"]  # not rewritten
    assert config.services["db"].replica_of is None and config.services["db"].replica == 0


def test_each_instance_is_told_its_service_and_number() -> None:
    """PYINIT_SERVICE and PYINIT_REPLICA join the declared environment (and win
    over a value the file gave them); the declaration's own environment has neither."""
    config = load(
        """
        services:
          web:
            command: web
            scale: 2
            environment: {MODE: prod, PYINIT_REPLICA: "7"}
        """
    )
    assert dict(config.services["web.2"].environment) == {
        "MODE": "prod",
        "PYINIT_REPLICA": "2",
        "PYINIT_SERVICE": "web",
    }
    assert config.services["web.1"].environment["PYINIT_REPLICA"] == "1"
    assert dict(config.scaled["web"].environment) == {"MODE": "prod", "PYINIT_REPLICA": "7"}


def test_the_shell_may_expand_the_instance_variables() -> None:
    """$$PYINIT_REPLICA is left to the command's shell; a value set in pyinit's own
    environment may be interpolated as any other."""
    config = load(
        """
        services:
          web:
            command: sh -c 'exec web --id $${PYINIT_SERVICE}-$$PYINIT_REPLICA'
            scale: 2
        """
    )
    assert config.services["web.2"].command == (
        "sh",
        "-c",
        "exec web --id ${PYINIT_SERVICE}-$PYINIT_REPLICA",
    )
    text = "services:\n  web: {command: web $PYINIT_REPLICA, scale: 1}\n"
    outer = load(text, {"PYINIT_REPLICA": "9"})
    assert outer.services["web.1"].command == ("web", "9")


@pytest.mark.parametrize(
    ("path", "replica", "expected"),
    [
        ("/var/log/web.log", 2, "/var/log/web.2.log"),
        ("/var/log/web.tar.gz", 2, "/var/log/web.tar.2.gz"),
        ("/var/log/web", 3, "/var/log/web.3"),  # no extension: the number goes last
        ("/var/log/.web", 2, "/var/log/.web.2"),  # a dotfile's name is not an extension
        ("/var/log/.web.log", 2, "/var/log/.web.2.log"),
        ("/var/log.d/web", 2, "/var/log.d/web.2"),  # a dot in the directory is not one
        ("/var/log/web.", 2, "/var/log/web.2."),
    ],
)
def test_instance_log_paths(path: str, replica: int, expected: str) -> None:
    assert instance_log_path(path, replica) == expected


def test_each_instance_logs_to_a_file_of_its_own() -> None:
    config = load(
        """
        services:
          web:
            command: web
            scale: 2
            logging:
              driver: file
              options: {path: /var/log/app/web.log, max-size: 1m, max-file: 2}
        """
    )
    assert config.services["web.1"].log_file == LogFileOptions(
        "/var/log/app/web.1.log", 1 << 20, 2, True
    )
    log_file = config.services["web.2"].log_file
    assert log_file is not None and log_file.path == "/var/log/app/web.2.log"
    declared = config.scaled["web"].log_file
    assert declared is not None and declared.path == "/var/log/app/web.log"


def test_scale_zero_declares_a_service_with_no_instance() -> None:
    """scale: 0 runs nothing; a dependant of it is valid, waits for nothing and
    starts in the first tier."""
    config = load(
        """
        services:
          idle:
            command: idle
            scale: 0
          api:
            command: api
            depends_on: {idle: {condition: service_ready}}
        """
    )
    assert list(config.services) == ["api"]
    assert config.scaled["idle"].scale == 0
    assert config.members("idle") == ()
    assert config.start_tiers() == [["api"]]


def test_members() -> None:
    config = load(SCALED)
    assert config.members("web") == ("web.1", "web.2", "web.3")
    assert config.members("worker") == ("worker.1", "worker.2")
    assert config.members("db") == ("db",)
    assert config.members("web.2") == ("web.2",)  # an instance stands for itself


def test_a_dependant_of_a_scaled_service_starts_after_every_instance() -> None:
    assert load(SCALED).start_tiers() == [
        ["db", "worker.1", "worker.2"],
        ["web.1", "web.2", "web.3"],
        ["api"],
    ]


def test_deploy_replicas_is_scale() -> None:
    """Compose's other spelling gives the same instances, with the same definitions."""
    by_scale = load("services:\n  web: {command: web, scale: 2}\n")
    by_deploy = load("services:\n  web: {command: web, deploy: {replicas: 2}}\n")
    assert by_scale.services == by_deploy.services
    assert by_scale.scaled == by_deploy.scaled


def test_split_instance() -> None:
    assert split_instance("web.2") == ("web", 2)
    assert split_instance("api.v2.10") == ("api.v2", 10)
    assert split_instance("web") is None
    assert split_instance("web.x") is None
    assert split_instance(".2") is None


# -- mistakes --------------------------------------------------------------------------

_RANGE = f"expected a whole number of instances from 0 to {MAX_SCALE}"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("scale: -1", [f"{PATH}:5: services.web.scale: {_RANGE}; got a number (-1)"]),
        ("scale: 1.5", [f"{PATH}:5: services.web.scale: {_RANGE}; got a number (1.5)"]),
        ("scale: three", [f"{PATH}:5: services.web.scale: {_RANGE}; got a string ('three')"]),
        ('scale: "3"', [f"{PATH}:5: services.web.scale: {_RANGE}; got a string ('3')"]),
        ("scale: true", [f"{PATH}:5: services.web.scale: {_RANGE}; got a boolean (true)"]),
        ("scale: null", [f"{PATH}:5: services.web.scale: {_RANGE}; got nothing (null)"]),
        ("scale: 10001", [f"{PATH}:5: services.web.scale: {_RANGE}; got a number (10001)"]),
        (
            "deploy: {replicas: -2}",
            [f"{PATH}:5: services.web.deploy.replicas: {_RANGE}; got a number (-2)"],
        ),
        (
            "deploy: 3",
            [
                f"{PATH}:5: services.web.deploy: expected a mapping such as {{replicas: 3}}; "
                "got a number (3)"
            ],
        ),
        (
            "scale: 2\n    deploy: {replicas: 3}",
            [f"{PATH}:6: services.web.deploy.replicas: scale is set too; keep one of the two"],
        ),
        (
            "deploy:\n      replicas: 2\n      resources: {limits: {cpus: '0.5'}}\n"
            "      restart_policy: {condition: on-failure}\n      replica: 3",
            [
                f"{PATH}:7: services.web.deploy.resources: pyinit reads only deploy.replicas; "
                "use ulimits",
                f"{PATH}:8: services.web.deploy.restart_policy: pyinit reads only "
                "deploy.replicas; use restart and backoff",
                f"{PATH}:9: services.web.deploy.replica: unknown key; did you mean 'replicas'?",
            ],
        ),
        (
            "deploy: {mode: global}",
            [
                f"{PATH}:5: services.web.deploy.mode: pyinit reads only deploy.replicas; "
                "every service is one process or scale: N of them"
            ],
        ),
        (
            "command: web $PYINIT_REPLICA\n    scale: 2",
            [
                f"{PATH}:5: services.web.command: $PYINIT_REPLICA is set in each instance's "
                "environment when it starts, not when the file is read; write "
                "$$PYINIT_REPLICA to leave it to the shell (sh -c '...')"
            ],
        ),
        (
            "environment: {ID: '${PYINIT_SERVICE}'}\n    scale: 2",
            [
                f"{PATH}:5: services.web.environment.ID: $PYINIT_SERVICE is set in each "
                "instance's environment when it starts, not when the file is read; write "
                "$$PYINIT_SERVICE to leave it to the shell (sh -c '...')"
            ],
        ),
    ],
)
def test_bad_counts(service: str, expected: list[str]) -> None:
    text = f"services:\n  db:\n    command: db\n  web:\n    {service}\n"
    if not service.startswith("command"):
        text += "    command: web\n"
    assert problems(text) == expected


@pytest.mark.parametrize("key", ["scale: 2", "deploy: {replicas: 2}"])
def test_a_oneshot_is_not_scaled(key: str) -> None:
    name = key.split(":")[0]
    assert problems(f"services:\n  job:\n    type: oneshot\n    command: job\n    {key}\n") == [
        f"{PATH}:5: services.job.{name}: replicas are for a longrun; a oneshot runs once "
        "(give it a schedule to repeat it)"
    ]


def test_a_name_an_instance_has_or_may_have() -> None:
    """web.2 beside a scaled web is refused, and so is web.7 (a later scale up
    would run it), and web.1 beside a web at scale 0; an unscaled web leaves
    such names free."""
    assert problems(
        """
        services:
          web: {command: web, scale: 3}
          web.2: {command: other}
          web.7: {command: other}
        """
    ) == [
        f"{PATH}:4: services.web.2: this name belongs to the instances of 'web' "
        "(scale: 3 runs web.1 … web.3); rename the service",
        f"{PATH}:5: services.web.7: this name belongs to the instances of 'web' "
        "(scale: 3 runs web.1 … web.3); rename the service",
    ]
    assert problems("services:\n  web.1: {command: x}\n  web: {command: web, scale: 0}\n") == [
        f"{PATH}:2: services.web.1: this name belongs to the instances of 'web' "
        "(scale: 0 runs no instance); rename the service"
    ]
    assert problems("services:\n  web: {command: web, scale: 1}\n  web.1: {command: x}\n") == [
        f"{PATH}:3: services.web.1: this name belongs to the instances of 'web' "
        "(scale: 1 runs web.1); rename the service"
    ]
    config = load("services:\n  web: {command: web}\n  web.2: {command: x}\n")
    assert list(config.services) == ["web", "web.2"]


def test_depending_on_one_instance_says_to_depend_on_the_service() -> None:
    assert problems(
        """
        services:
          web: {command: web, scale: 3}
          api:
            command: api
            depends_on: [web.2]
          other:
            command: other
            depends_on: [nope.2]
        """
    ) == [
        f"{PATH}:6: services.api.depends_on.web.2: 'web.2' is one instance of the scaled "
        "service 'web'; depend on 'web' (it waits for every instance)",
        f"{PATH}:9: services.other.depends_on.nope.2: no service named 'nope.2'",
    ]


def test_too_many_services_once_scaled() -> None:
    """The limit counts every instance; the problem points at the services key."""
    assert problems(
        """
        services:
          web: {command: web, scale: 6000}
          api: {command: api, scale: 4000}
          db: {command: db}
        """
    ) == [f"{PATH}:2: services: 10001 services once scaled; the limit is 10000"]
    config = load("services:\n  web: {command: web, scale: 9999}\n  db: {command: db}\n")
    assert len(config.services) == 10_000


# -- rescale ----------------------------------------------------------------------------

FOUR = load(
    """
    services:
      a: {command: a}
      web: {command: web, scale: 2}
      idle: {command: idle, scale: 0}
      b: {command: b}
      last: {command: last, scale: 0}
    """
)


def test_rescale_up_keeps_the_running_objects_and_appends() -> None:
    new = rescale(FOUR, "web", 4)
    assert list(new.services) == ["a", "web.1", "web.2", "web.3", "web.4", "b"]
    for name in ("a", "web.1", "web.2", "b"):
        assert new.services[name] is FOUR.services[name]
    assert new.services["web.4"] == instance(FOUR.scaled["web"], 4)
    assert new.scaled["web"].scale == 4 and FOUR.scaled["web"].scale == 2  # a new Config
    assert new.scaled["idle"] is FOUR.scaled["idle"]
    assert new.members("web") == ("web.1", "web.2", "web.3", "web.4")
    assert (new.path, new.settings) == (FOUR.path, FOUR.settings)


def test_rescale_down_drops_the_highest() -> None:
    new = rescale(FOUR, "web", 1)
    assert list(new.services) == ["a", "web.1", "b"]
    assert new.services["web.1"] is FOUR.services["web.1"]
    assert list(rescale(FOUR, "web", 0).services) == ["a", "b"]
    assert rescale(FOUR, "web", 2).services == FOUR.services


def test_rescale_from_zero_puts_the_instances_where_the_declaration_sits() -> None:
    assert list(rescale(FOUR, "idle", 2).services) == [
        "a", "web.1", "web.2", "idle.1", "idle.2", "b",
    ]  # fmt: skip
    assert list(rescale(FOUR, "last", 1).services) == ["a", "web.1", "web.2", "b", "last.1"]
    back = rescale(rescale(FOUR, "web", 0), "web", 2)
    assert list(back.services) == list(FOUR.services)
    assert back.services == FOUR.services  # the same definitions: nothing to replace


@pytest.mark.parametrize(
    ("name", "count", "message"),
    [
        ("web.1", 3, "web.1 is one instance of web; scale web"),
        ("a", 3, "a is not scaled; give it 'scale: 1' in the file to scale it at run time"),
        ("nope", 3, "no service named 'nope'"),
        ("web.9", 3, "no service named 'web.9'"),
        ("web", -1, f"expected a count from 0 to {MAX_SCALE}; got -1"),
        ("web", MAX_SCALE + 1, f"expected a count from 0 to {MAX_SCALE}; got {MAX_SCALE + 1}"),
        # a, b and the count: over the limit on services
        ("web", MAX_SCALE, f"{MAX_SCALE + 2} services once scaled; the limit is 10000"),
    ],
)
def test_rescale_refuses(name: str, count: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        rescale(FOUR, name, count)
    assert str(info.value) == message


def test_rescale_up_to_the_limit() -> None:
    new = rescale(FOUR, "web", MAX_SCALE - 2)
    assert len(new.services) == MAX_SCALE


# -- reload plans -----------------------------------------------------------------------


def test_a_reload_that_changes_a_count_adds_or_removes_only() -> None:
    """An instance's definition does not depend on the count: scaling 3 -> 5 adds
    web.4 and web.5, 3 -> 1 removes web.2 and web.3, and every other service
    (instances kept, dependants, the unscaled) is unchanged."""
    three = load(SCALED)
    five = load(SCALED.replace("scale: 3", "scale: 5"))
    plan = plan_reload(three, five)
    assert (plan.added, plan.removed, plan.changed) == (["web.4", "web.5"], [], [])
    assert plan.unchanged == list(three.services)
    one = load(SCALED.replace("scale: 3", "scale: 1"))
    plan = plan_reload(three, one)
    assert (plan.added, plan.removed, plan.changed) == ([], ["web.2", "web.3"], [])
    assert plan.unchanged == ["db", "web.1", "worker.1", "worker.2", "api"]
    # deploy.replicas changed the same way, and a line moved by the longer text
    more = load(SCALED.replace("deploy: {replicas: 2}", "deploy:\n          replicas: 3"))
    plan = plan_reload(three, more)
    assert (plan.added, plan.removed, plan.changed) == (["worker.3"], [], [])


def test_a_template_change_changes_every_instance() -> None:
    three = load(SCALED)
    plan = plan_reload(three, load(SCALED.replace("web --port 8000", "web --port 9000")))
    assert (plan.added, plan.removed) == ([], [])
    assert plan.changed == ["web.1", "web.2", "web.3"]
    plan = plan_reload(three, load(SCALED.replace("MODE: prod", "MODE: dev")))
    assert plan.changed == ["web.1", "web.2", "web.3"]
    # a change and a count together: the kept ones change, the new ones are added
    plan = plan_reload(three, load(SCALED.replace("scale: 3", "scale: 4").replace("prod", "x")))
    assert (plan.added, plan.changed) == (["web.4"], ["web.1", "web.2", "web.3"])


def test_a_rescaled_config_reloads_to_the_files_count() -> None:
    """After ``pyinit scale web 5`` a reload of the unchanged file brings back 3."""
    three = load(SCALED)
    plan = plan_reload(rescale(three, "web", 5), three)
    assert (plan.added, plan.removed, plan.changed) == ([], ["web.4", "web.5"], [])


# -- profiles and --only ------------------------------------------------------------------


def test_profiles_and_only_select_instances() -> None:
    """A scaled service's name in --only or depends_on means its instances; one at
    scale 0 still declares its profiles, and --only naming it says it runs nothing."""
    config = load(
        """
        services:
          db: {command: db}
          web: {command: web, scale: 2, depends_on: [db], profiles: [web]}
          debug: {command: debug, scale: 0, profiles: [debug]}
          api: {command: api, depends_on: [web]}
        """
    )
    assert unselected_in(config, [], ["api"]) == (set(), [])  # api pulls web, web pulls db
    assert unselected_in(config, [], ["web"]) == ({"api"}, [])
    assert unselected_in(config, [], ["db"]) == ({"web.1", "web.2", "api"}, [])
    assert unselected_in(config, ["debug"], []) == (set(), [])
    assert unselected_in(config, ["nope"], [])[1] == [
        "--profile nope: no service has this profile (profiles: debug, web)"
    ]
    assert unselected_in(config, [], ["debug"])[1] == [
        "--only debug: scale: 0 runs no instance of it"
    ]
