"""Reloads interleaved with slow stops, against the pure reload table.

A small model of the supervisor carries out the table's decisions on fake
instances (up, asked to stop, signalled, down). Hypothesis interleaves reloads
of random files (a few names, a couple of versions, moving line numbers) with
stops being sent and finishing, and operator stops. A file may scale a service
``s`` (instances s.1..s.N, config/replicas.py), and ``pyinit scale`` changes only
its count. After every step: no name the file has is lost, nothing settled runs a
stale definition, and once every pending stop finishes the running definitions
are exactly the last file's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pyinit.config import ServiceConfig
from pyinit.config.replicas import instance
from pyinit.reload import definition
from pyinit.reload_state import Add, Decision, Drop, ReloadTable, Replace, Stop, Withdraw

NAMES = ("a", "b", "c")


def cfg(name: str, version: int, line: int) -> ServiceConfig:
    return ServiceConfig(name=name, command=("run", f"v{version}"), line=line)


MAX_COUNT = 3
INSTANCES = tuple(f"s.{i}" for i in range(1, MAX_COUNT + 1))
Scaled = tuple[int, int, int]  # the scaled service s: (version, line, count)


def instances(scaled: Scaled | None) -> dict[str, ServiceConfig]:
    """What a file declaring ``s`` with ``scale: count`` runs (no instance at 0)."""
    if scaled is None:
        return {}
    version, line, count = scaled
    declared = ServiceConfig(name="s", command=("run", f"v{version}"), line=line, scale=count)
    return {f"s.{i}": instance(declared, i) for i in range(1, count + 1)}


plain_files = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(st.integers(1, 2), st.integers(1, 3)),
).map(lambda d: {n: cfg(n, v, line) for n, (v, line) in d.items()})
scaled_service = st.none() | st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(0, 3))
files = st.tuples(plain_files, scaled_service)


@dataclass
class Instance:
    cfg: ServiceConfig
    phase: str = "up"  # up | asked (in stop_set) | signalled | down
    operator: bool = False  # an operator stop is (or was) part of its stop


class World:
    """What the supervisor holds, changed only by the table's decisions."""

    def __init__(self, file: dict[str, ServiceConfig]) -> None:
        self.table = ReloadTable(file)
        self.instances = {n: Instance(c) for n, c in file.items()}
        self.last_file = dict(file)  # what the supervisor's plan compares with

    def execute(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Add):
                assert d.cfg.name not in self.instances, "a runtime overwritten"
                self.instances[d.cfg.name] = Instance(d.cfg)
            elif isinstance(d, Stop):
                inst = self.instances[d.name]
                if inst.phase == "up":
                    inst.phase = "asked"
            elif isinstance(d, Withdraw):
                inst = self.instances[d.name]
                assert inst.phase == "asked" and not inst.operator
                inst.phase = "up"
            elif isinstance(d, Drop):
                assert self.instances.pop(d.name).phase == "down"
            elif isinstance(d, Replace):
                assert self.instances[d.cfg.name].phase == "down"
                self.instances[d.cfg.name] = Instance(d.cfg)
        # The supervisor's pass that follows: a pending name whose instance is
        # already down is settled at once.
        for name in [n for n, i in self.instances.items() if i.phase == "down"]:
            if self.table.pending(name):
                self.execute(self.table.stopped(name))

    def reload(self, file: dict[str, ServiceConfig]) -> None:
        signalled = {n for n, i in self.instances.items() if i.phase in ("signalled", "down")}
        shared = {
            n
            for n, i in self.instances.items()
            if i.operator and i.phase == "asked" and not self.table.pending(n)
        }
        # As the supervisor does: the plan's unchanged names (same definition as in
        # the previous file) are passed on, so the table's fast path is explored too.
        prev, self.last_file = self.last_file, dict(file)
        unchanged = {
            n for n, c in file.items() if n in prev and definition(prev[n]) == definition(c)
        }
        self.execute(self.table.reload(file, signalled, shared, unchanged))

    def finish(self, name: str) -> None:
        self.instances[name].phase = "down"
        if self.table.pending(name):
            self.execute(self.table.stopped(name))

    def stopping(self) -> list[str]:
        return sorted(n for n, i in self.instances.items() if i.phase in ("asked", "signalled"))


class ReloadRaces(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.scaled: Scaled | None = (1, 3, 2)
        self.file = {"a": cfg("a", 1, 1), "b": cfg("b", 1, 2), **instances(self.scaled)}
        self.world = World(self.file)

    @rule(drawn=files)
    def reload(self, drawn: tuple[dict[str, ServiceConfig], Scaled | None]) -> None:
        plain, self.scaled = drawn
        self.file = {**plain, **instances(self.scaled)}
        self.world.reload(self.file)

    @precondition(lambda self: self.scaled is not None)
    @rule(count=st.integers(0, MAX_COUNT))
    def scale(self, count: int) -> None:
        """``pyinit scale s COUNT``: the running file with only s's count changed."""
        assert self.scaled is not None
        version, line, _ = self.scaled
        self.scaled = (version, line, count)
        plain = {n: c for n, c in self.file.items() if c.replica_of is None}
        self.file = {**plain, **instances(self.scaled)}
        self.world.reload(self.file)

    @precondition(lambda self: any(i.phase == "asked" for i in self.world.instances.values()))
    @rule(data=st.data())
    def send_stop(self, data: st.DataObject) -> None:
        asked = sorted(n for n, i in self.world.instances.items() if i.phase == "asked")
        self.world.instances[data.draw(st.sampled_from(asked))].phase = "signalled"

    @precondition(lambda self: bool(self.world.stopping()))
    @rule(data=st.data())
    def stop_finishes(self, data: st.DataObject) -> None:
        self.world.finish(data.draw(st.sampled_from(self.world.stopping())))

    @precondition(lambda self: any(i.phase == "up" for i in self.world.instances.values()))
    @rule(data=st.data())
    def operator_stop(self, data: st.DataObject) -> None:
        up = sorted(n for n, i in self.world.instances.items() if i.phase == "up")
        inst = self.world.instances[data.draw(st.sampled_from(up))]
        inst.phase, inst.operator = "asked", True

    @invariant()
    def the_table_describes_what_runs(self) -> None:
        table, instances = self.world.table, self.world.instances
        assert table.running() == {n: i.cfg for n, i in instances.items()}
        assert table.desired() == self.file
        assert set(table.replacements()) <= set(self.file)

    @invariant()
    def no_name_lost_nothing_settled_stale(self) -> None:
        for name in self.file:
            assert name in self.world.instances, f"{name} is in the file, nothing holds it"
        for name, inst in self.world.instances.items():
            if self.world.table.pending(name):
                assert inst.phase in ("asked", "signalled"), (name, inst)
            else:
                assert name in self.file, f"{name} left the file and was never stopped"
                assert definition(inst.cfg) == definition(self.file[name]), f"{name} is stale"

    @invariant()
    def once_stops_drain_the_file_runs(self) -> None:
        world = copy.deepcopy(self.world)
        while world.stopping():
            world.finish(world.stopping()[0])
        held = {n: definition(i.cfg) for n, i in world.instances.items()}
        assert held == {n: definition(c) for n, c in self.file.items()}
        assert not any(world.table.pending(n) for n in (*NAMES, *INSTANCES))


TestReloadRaces = ReloadRaces.TestCase
