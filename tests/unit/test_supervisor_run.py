"""The supervisor driven through its seams (tests/helpers/fakesup.py): start order by
dependencies, restart with backoff, a critical exit, the operator's stop cascade,
and a handler that raises. No process is started; the clock is fake."""

from __future__ import annotations

import signal

import pytest

from tests.unit.conftest import MakeFake

STAGES = """
    services:
      db:
        command: ["db"]
      migrate:
        command: ["migrate"]
        type: oneshot
        depends_on: [db]
      web:
        command: ["web"]
        depends_on:
          migrate: {condition: service_completed_successfully}
          db: {condition: service_ready}
"""


def test_start_order_follows_the_dependencies(fakesup: MakeFake) -> None:
    """db starts first; migrate once db started; web only once migrate completed."""
    fake = fakesup(STAGES)
    assert [name for _, name in fake.procs.spawned] == ["db", "migrate"]
    assert fake.state("web") == "pending"
    fake.procs.exit("migrate", 0)
    fake.settle()
    assert [name for _, name in fake.procs.spawned] == ["db", "migrate", "web"]
    assert fake.state("migrate") == "completed"
    assert fake.state("web") == "running"


def test_a_failed_dependency_fails_its_dependants(fakesup: MakeFake) -> None:
    """migrate exits 1: web never starts and fails, saying why."""
    fake = fakesup(STAGES)
    fake.procs.exit("migrate", 1)
    fake.settle()
    assert fake.state("web") == "failed"
    assert not fake.procs.starts("web")
    assert fake.logged("web: failed (dependency migrate did not complete successfully")


def test_restart_with_backoff_delays_that_grow(fakesup: MakeFake) -> None:
    """A crash loop restarts after 1, 2, 4 s (multiplier 2, no jitter), then at the 5 s
    cap; each run is shorter than reset_after (10 s), so the count is not reset."""
    fake = fakesup(
        """
        services:
          crashy:
            command: ["crashy"]
            restart: on-failure
            backoff: {initial: 1s, multiplier: 2, max: 5s, jitter: 0}
            start_limit: {burst: 100, interval: 60s}
        """
    )
    exits = []
    for _ in range(5):
        fake.procs.exit("crashy", 1)
        exits.append(fake.clock.now)
        fake.settle()
        assert fake.state("crashy") == "backoff"
        fake.advance(9.5)
        assert fake.state("crashy") == "running"
    starts = fake.procs.starts("crashy")[1:]
    assert [round(s - e, 3) for e, s in zip(exits, starts, strict=True)] == [1, 2, 4, 5, 5]
    assert fake.logged("crashy: exited (status 1); restart 3 in 4.0s")
    assert fake.sup.services["crashy"].machine.restarts == 5


def test_a_critical_exit_ends_the_container_with_its_code(fakesup: MakeFake) -> None:
    """web (critical) exits 3: the others are stopped and pyinit exits 3."""
    fake = fakesup(
        """
        services:
          cache:
            command: ["cache"]
          web:
            command: ["web"]
            critical: true
        """
    )
    fake.procs.exit("web", 3)
    fake.settle()
    assert fake.logged("web is critical and ended (failed); stopping the container with status 3")
    assert fake.procs.signals_to("cache") == [signal.SIGTERM]
    assert fake.done
    assert fake.exit_code == 3


CHAIN = """
    services:
      db:
        command: ["db"]
      app:
        command: ["app"]
        depends_on: [db]
      web:
        command: ["web"]
        depends_on: [app]
        stop_grace_period: 3s
      other:
        command: ["other"]
"""


def test_operator_stop_cascades_dependants_first(fakesup: MakeFake) -> None:
    """Stopping db stops web, then app, then db, each only once its dependants are
    gone (web holds on until SIGKILL); other is left running."""
    fake = fakesup(CHAIN)
    fake.procs.stubborn["web"] = {signal.SIGTERM}
    targets, errors = fake.sup.stop_services(["db"])
    assert sorted(targets) == ["app", "db", "web"] and errors == []
    fake.settle()
    assert [n for n, _ in fake.procs.sent] == ["web"]
    assert fake.sup.stop_set == {"app", "db", "web"}
    fake.advance(2.9)
    assert fake.procs.sent == [("web", signal.SIGTERM)]
    fake.advance(0.1)
    assert fake.procs.sent == [
        ("web", signal.SIGTERM),
        ("web", signal.SIGKILL),
        ("app", signal.SIGTERM),
        ("db", signal.SIGTERM),
    ]
    assert [fake.state(n) for n in ("db", "app", "web", "other")] == [
        "stopped",
        "stopped",
        "stopped",
        "running",
    ]
    assert fake.sup.stop_set == set()
    assert not fake.done  # an operator's stop does not end the container


def test_operator_restart_brings_the_chain_back_in_order(fakesup: MakeFake) -> None:
    """Restarting db restarts app and web after it, dependencies first."""
    fake = fakesup(CHAIN)
    fake.sup.restart_services(["db"])
    fake.settle()
    assert [n for _, n in fake.procs.spawned][4:] == ["db", "app", "web"]
    assert fake.sup.restart_set == set()


def test_start_of_stopped_dependencies_brings_the_dependant_back_after_all(
    fakesup: MakeFake,
) -> None:
    """``stop db cache`` takes api down; ``start db cache`` starts api only once both
    started again: cache's run before the stop does not count (started one by one,
    db's being ready at once brought api back before cache was started)."""
    fake = fakesup(
        """
        services:
          db:
            command: ["db"]
          cache:
            command: ["cache"]
          api:
            command: ["api"]
            depends_on: [db, cache]
        """
    )
    fake.sup.stop_services(["db", "cache"])
    fake.settle()
    assert [fake.state(n) for n in ("db", "cache", "api")] == ["stopped"] * 3
    started, errors = fake.sup.start_services(["db", "cache"])
    assert (started, errors) == (["db", "cache", "api"], [])
    fake.settle()
    assert [n for _, n in fake.procs.spawned][3:] == ["db", "cache", "api"]


def test_a_raising_handler_is_logged_and_the_batch_goes_on(
    fakesup: MakeFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """The signal sender raises when forwarding SIGWINCH (a fault injected through the
    seam). The loop reports it and goes on: the SIGCHLD read in the same batch is
    still handled, so the crashed service is restarted, and later signals work."""
    fake = fakesup(
        """
        services:
          victim:
            command: ["victim"]
            restart: always
            backoff: {initial: 100ms, jitter: 0}
        """
    )
    real_kill = fake.procs.kill

    def faulty_kill(pid: int, signum: int) -> None:
        if signum == signal.SIGWINCH:
            raise RuntimeError("injected fault")
        real_kill(pid, signum)

    fake.procs.kill = faulty_kill  # type: ignore[method-assign]
    fake.procs.exit("victim", 1)
    fake.procs.sigchld = False  # delivered below, in the same batch as SIGWINCH
    fake.signal(signal.SIGWINCH, signal.SIGCHLD)
    err = capsys.readouterr().err
    assert "pyinit: internal error (continuing):" in err
    assert "RuntimeError: injected fault" in err
    assert fake.logged("victim: exited (status 1); restart 1 in 0.1s")
    fake.advance(0.1)
    assert len(fake.procs.starts("victim")) == 2
    fake.signal(signal.SIGTERM)
    assert fake.done and fake.exit_code == 0


def test_operator_start_brings_a_dependant_back_after_all_it_depends_on(
    fakesup: MakeFake,
) -> None:
    """A stop of a and b took api down; starting both brings api back after both
    started, not once a alone did (b's start before the stop must not count)."""
    fake = fakesup(
        """
        services:
          a: {command: ["a"]}
          b: {command: ["b"]}
          api: {command: ["api"], depends_on: [a, b]}
        """
    )
    fake.sup.stop_services(["a", "b"])
    fake.settle()
    assert fake.sup.start_services(["a", "b"]) == (["a", "b", "api"], [])
    fake.settle()
    assert [n for _, n in fake.procs.spawned] == ["a", "b", "api", "a", "b", "api"]
