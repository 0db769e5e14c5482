"""The pure dependency conditions and the main-command gate (pyinit/supervisor/conditions.py)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import pyinit
from pyinit.config import Condition, Config, load_config_text
from pyinit.service import Event, EventKind, ServiceMachine
from pyinit.supervisor import conditions


class Facts:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.machines = {n: ServiceMachine(cfg) for n, cfg in config.services.items()}
        self.healthy_names: set[str] = set()

    def members(self, name: str) -> tuple[str, ...]:
        return self.config.members(name)

    def machine(self, name: str) -> ServiceMachine:
        return self.machines[name]

    def healthy(self, name: str) -> bool:
        return name in self.healthy_names

    def run(self, name: str, *kinds: EventKind, pid: int = 1) -> None:
        m = self.machines[name]
        for kind in kinds:
            m.handle(Event(kind, pid=pid), 0.0)


CONFIG = load_config_text(
    textwrap.dedent(
        """
        services:
          db:
            command: ["db"]
            healthcheck: {test: ["CMD", "true"]}
          job: {command: ["job"], type: oneshot}
          web:
            command: ["web"]
            depends_on:
              db: {condition: service_healthy}
              job: {condition: service_completed_successfully}
        """
    ),
    "services.yaml",
    {},
    ids=(0, 0),
)


def test_verdicts_follow_the_machine() -> None:
    facts = Facts(CONFIG)
    assert conditions.condition(facts, "db", Condition.STARTED) == (None, "")
    facts.run("db", EventKind.START, EventKind.SPAWNED)
    assert conditions.condition(facts, "db", Condition.STARTED) == (True, "")
    assert conditions.condition(facts, "db", Condition.READY) == (None, "")
    assert conditions.condition(facts, "db", Condition.HEALTHY) == (None, "")
    facts.healthy_names.add("db")
    assert conditions.condition(facts, "db", Condition.HEALTHY) == (True, "")


def test_a_condition_that_never_can_hold_says_why() -> None:
    facts = Facts(CONFIG)
    facts.run("job", EventKind.START, EventKind.SPAWNED)
    facts.machines["job"].handle(Event(EventKind.EXITED, pid=1, status=None), 0.0)
    assert facts.machines["job"].state.value == "completed"
    facts.run("db", EventKind.START, EventKind.SPAWNED, EventKind.STOP)
    facts.machines["db"].handle(Event(EventKind.EXITED, pid=1), 0.0)
    verdict, why = conditions.dependencies(facts, CONFIG.services["web"])
    assert verdict is False
    assert why == "dependency db stopped before it was healthy (stopped)"


def test_dependencies_wait_and_name_what_they_wait_for() -> None:
    facts = Facts(CONFIG)
    assert conditions.dependencies(facts, CONFIG.services["web"]) == (None, "")
    assert conditions.waiting_for(facts, CONFIG.services["web"]) == ["db", "job"]


def test_the_main_gate_waits_for_every_service() -> None:
    """Oneshots completed, longruns ready; a service that never will closes the gate."""
    facts = Facts(CONFIG)
    cfgs = list(CONFIG.services.values())
    assert conditions.main_gate(facts, cfgs) == (None, "")
    for name in ("db", "web"):
        facts.run(name, EventKind.START, EventKind.SPAWNED, EventKind.READY)
    facts.run("job", EventKind.START, EventKind.SPAWNED, EventKind.EXITED)
    assert conditions.main_gate(facts, cfgs) == (True, "")
    facts.run("job", EventKind.START, EventKind.SPAWNED)
    facts.machines["job"].handle(Event(EventKind.SPAWN_FAILED, reason="no such file"), 0.0)
    verdict, why = conditions.main_gate(facts, cfgs)
    assert verdict is False and "dependency job did not complete successfully" in why


SCALED = load_config_text(
    textwrap.dedent(
        """
        services:
          web: {command: ["web"], scale: 3}
          idle: {command: ["idle"], scale: 0}
          api:
            command: ["api"]
            depends_on: {web: {condition: service_ready}, idle: {condition: service_ready}}
        """
    ),
    "services.yaml",
    {},
    ids=(0, 0),
)


def test_a_scaled_dependency_waits_for_every_instance() -> None:
    """depends_on a scaled service holds once every instance meets it; one that
    never can says which; a scale-0 service holds at once (nothing to wait for)."""
    facts = Facts(SCALED)
    api = SCALED.services["api"]
    assert conditions.waiting_for(facts, api) == ["web"]
    for name in ("web.1", "web.3"):
        facts.run(name, EventKind.START, EventKind.SPAWNED, EventKind.READY)
    assert conditions.dependencies(facts, api) == (None, "")
    facts.run("web.2", EventKind.START, EventKind.SPAWNED, EventKind.READY)
    assert conditions.dependencies(facts, api) == (True, "")
    assert conditions.waiting_for(facts, api) == []
    facts = Facts(SCALED)
    facts.run("web.2", EventKind.START, EventKind.SPAWNED, EventKind.STOP)
    facts.machines["web.2"].handle(Event(EventKind.EXITED, pid=1), 0.0)
    verdict, why = conditions.dependencies(facts, api)
    assert verdict is False and why.startswith("dependency web.2 stopped before it was ready")


def test_an_instance_has_the_dependants_of_its_scaled_service() -> None:
    index = conditions.Dependants(lambda: SCALED.services.values())
    assert index.of("web.2", "web") == ["api"]
    assert index.of("web.2") == []  # the instance alone


def test_dependants_transitively_and_alive_only() -> None:
    index = conditions.Dependants(lambda: CONFIG.services.values())
    assert index.of("db") == ["web"]
    alive = {"db", "web"}
    assert conditions.with_dependants(["job"], index.of, alive.__contains__) == ["job", "web"]
    assert conditions.with_dependants(["job"], index.of, lambda n: False) == ["job"]


IMPURE = {"os", "time", "socket", "subprocess", "select", "selectors"} | {
    f"pyinit.{m}" for m in ("reaper", "signals", "spawn", "loop", "proctree", "health", "monitor")
}


@pytest.mark.parametrize(
    "path",
    ["service.py", "exitstatus.py", "supervisor/conditions.py", "supervisor/shutdown.py"],
)
def test_pure_modules_import_nothing_that_touches_the_system(path: str) -> None:
    """No os, no clock, no I/O module at run time (``if TYPE_CHECKING`` imports aside).
    (service and conditions still import pyinit.config for its enums; config's model
    module takes that role once config is a package.)"""
    source = (Path(pyinit.__file__).parent / path).read_text()
    imported: set[str] = set()
    for node in ast.parse(source).body:  # module level: TYPE_CHECKING blocks are ast.If
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not imported & IMPURE, sorted(imported & IMPURE)


def test_the_dependants_index_follows_the_definitions_once_invalidated() -> None:
    """Built on first use, kept until invalidated (a reload replaced runtimes)."""
    cfgs = list(CONFIG.services.values())
    index = conditions.Dependants(lambda: cfgs)
    assert [index.of(n) for n in CONFIG.services] == [["web"], ["web"], []]
    cfgs[:] = [c for c in cfgs if c.name != "web"]
    assert index.of("db") == ["web"]  # not invalidated: the index of before
    index.invalidate()
    assert index.of("db") == []
