"""Shutdown, phase by phase: the pure phase table, and the supervisor driven through
its seams (tests/helpers/fakesup.py) with a fake clock and no process at all."""

from __future__ import annotations

import signal

import pytest

from pyinit.supervisor.shutdown import IllegalPhaseChange, Phase, Phases, Step
from tests.unit.conftest import MakeFake

TWO = """
    settings: {shutdown_timeout: 20s}
    services:
      db:
        command: ["db"]
      app:
        command: ["app"]
        depends_on: [db]
"""


def test_the_phase_table_walks_forward() -> None:
    phases = Phases()
    for step, phase in [
        (Step.BEGIN_WITH_MAIN, Phase.STOPPING_MAIN),
        (Step.MAIN_GONE, Phase.STOPPING_SERVICES),
        (Step.SWEEP, Phase.SWEEPING),
        (Step.FORCE, Phase.FORCED),
        (Step.FINISH, Phase.DONE),
    ]:
        assert phases.advance(step) is True
        assert phases.phase is phase


def test_a_step_already_taken_is_moot() -> None:
    """A second stop signal, a second sweep, a timer due after the end: no change."""
    phases = Phases()
    phases.advance(Step.BEGIN)
    assert phases.advance(Step.BEGIN) is False
    phases.advance(Step.FORCE)
    assert phases.advance(Step.FORCE) is False
    assert phases.advance(Step.SWEEP) is False  # no SIGTERM sweep after SIGKILL
    phases.advance(Step.FINISH)
    assert phases.advance(Step.FORCE) is False
    assert phases.phase is Phase.DONE


@pytest.mark.parametrize(
    ("walk", "step"),
    [
        ([], Step.FORCE),  # nothing to force before a shutdown began
        ([], Step.FINISH),
        ([], Step.SWEEP),
        ([Step.BEGIN_WITH_MAIN], Step.SWEEP),  # services wait for the main command
        ([Step.BEGIN], Step.FINISH),  # not before the leftovers were swept
        ([Step.BEGIN], Step.MAIN_GONE),
    ],
)
def test_an_illegal_step_raises(walk: list[Step], step: Step) -> None:
    phases = Phases()
    for taken in walk:
        phases.advance(taken)
    with pytest.raises(IllegalPhaseChange, match=step.value):
        phases.advance(step)


def test_graceful_shutdown_dependants_first(fakesup: MakeFake) -> None:
    """SIGTERM: app (the dependant) stops first, db once app is gone; then the sweep
    finds nothing left and pyinit exits 0."""
    fake = fakesup(TWO)
    fake.procs.stubborn["app"] = {signal.SIGTERM}
    fake.signal(signal.SIGTERM)
    assert fake.phase is Phase.STOPPING_SERVICES
    assert fake.procs.sent == [("app", signal.SIGTERM)]
    fake.procs.exit("app", 0)
    fake.settle()
    assert fake.procs.sent == [("app", signal.SIGTERM), ("db", signal.SIGTERM)]
    assert fake.done and fake.exit_code == 0
    assert fake.logged("all processes gone after 0.00s; exiting with status 0")


def test_the_main_command_stops_first(fakesup: MakeFake) -> None:
    """With a main command, SIGTERM goes to it alone; the services wait for it. It
    ignores SIGTERM, so after MAIN_STOP_GRACE (half of shutdown_timeout, 10 s at most)
    it is SIGKILLed; then the services stop, and the container exits 137."""
    fake = fakesup(TWO, main=["main"])
    assert [n for _, n in fake.procs.spawned] == ["db", "app", "main"]
    fake.procs.stubborn["main"] = {signal.SIGTERM}
    fake.signal(signal.SIGTERM)
    assert fake.phase is Phase.STOPPING_MAIN
    assert fake.procs.sent == [("main", signal.SIGTERM)]
    fake.advance(9.9)
    assert fake.procs.sent == [("main", signal.SIGTERM)]
    fake.advance(0.1)
    assert fake.logged("main command main still running 10.0s after SIGTERM; SIGKILL")
    assert fake.procs.sent[1:] == [
        ("main", signal.SIGKILL),
        ("app", signal.SIGTERM),
        ("db", signal.SIGTERM),
    ]
    assert fake.done and fake.exit_code == 137


def test_a_main_command_that_obeys_exits_0(fakesup: MakeFake) -> None:
    fake = fakesup(TWO, main=["main"])
    fake.signal(signal.SIGTERM)
    assert fake.done and fake.exit_code == 0


def test_leftovers_are_swept_then_killed(fakesup: MakeFake) -> None:
    """Once the services are down, leftovers (an escaped daemon) get SIGTERM and
    SWEEP_GRACE (2 s); one that ignores it is SIGKILLed; then pyinit exits."""
    fake = fakesup(TWO)
    fake.procs.orphan("daemon")
    fake.procs.stubborn["daemon"] = {signal.SIGTERM}
    fake.signal(signal.SIGTERM)
    assert fake.phase is Phase.SWEEPING
    assert fake.logged("1 leftover process(es) sent SIGTERM; SIGKILL in 2.0s")
    fake.advance(1.9)
    assert fake.procs.is_live("daemon")
    fake.advance(0.1)
    assert fake.procs.signals_to("daemon") == [signal.SIGTERM, signal.SIGKILL]
    assert fake.logged("sent SIGKILL to 1 process(es)")
    assert fake.done and fake.exit_code == 0
    assert fake.sup.orphans_reaped == 1


def test_the_budget_forces_a_kill(fakesup: MakeFake) -> None:
    """A service that ignores SIGTERM with a long stop_grace_period is SIGKILLed when
    shutdown_timeout runs out, not after its own grace; killed, it makes the
    requested shutdown exit 137."""
    fake = fakesup(
        """
        settings: {shutdown_timeout: 5s}
        services:
          slow:
            command: ["slow"]
            stop_grace_period: 60s
        """
    )
    fake.procs.stubborn["slow"] = {signal.SIGTERM}
    fake.signal(signal.SIGTERM)
    fake.advance(4.9)
    assert fake.phase is Phase.STOPPING_SERVICES
    fake.advance(0.1)
    assert fake.logged("shutdown_timeout (5s) reached; killing everything")
    assert fake.procs.signals_to("slow") == [signal.SIGTERM, signal.SIGKILL]
    assert fake.done and fake.exit_code == 137


def test_a_second_sigterm_forces_the_kill(fakesup: MakeFake) -> None:
    fake = fakesup(TWO)
    fake.procs.stubborn["app"] = {signal.SIGTERM}
    fake.signal(signal.SIGTERM)
    assert fake.phase is Phase.STOPPING_SERVICES
    fake.signal(signal.SIGTERM)
    assert fake.logged("SIGTERM received again; killing everything now")
    assert fake.procs.signals_to("app") == [signal.SIGTERM, signal.SIGKILL]
    assert fake.done and fake.exit_code == 137


def test_after_the_kill_pyinit_waits_at_most_kill_wait_limit(fakesup: MakeFake) -> None:
    """A process that does not die of SIGKILL (stuck in the kernel) does not keep
    pyinit: KILL_WAIT_LIMIT (2 s) after the kill it exits anyway."""
    fake = fakesup(TWO)
    fake.procs.orphan("stuck")
    fake.procs.unkillable.add("stuck")
    fake.signal(signal.SIGTERM)
    assert fake.phase is Phase.SWEEPING
    fake.advance(2)
    assert fake.phase is Phase.FORCED
    assert fake.procs.signals_to("stuck") == [signal.SIGTERM, signal.SIGKILL]
    fake.advance(1.9)
    assert fake.phase is Phase.FORCED
    fake.advance(0.1)
    assert fake.done and fake.exit_code == 0
    assert fake.procs.is_live("stuck")
