"""A Supervisor with no process at all, for unit tests that run in milliseconds.

``FakeProcesses`` stands behind the supervisor's three process seams (launcher,
signal sender, child reaper) with a table of pretend processes; ``FakeClock`` is
its clock, which its event loop shares, so timers follow it. ``FakeSupervisor``
plays the loop's part: ``settle`` hands the supervisor each pending SIGCHLD as a
batch of the signal intake would, and ``advance`` moves the clock from one due
timer to the next, firing them in order. Nothing sleeps and nothing is spawned.
"""

from __future__ import annotations

import itertools
import signal
import textwrap
from pathlib import Path

from pyinit.config import load_config_text
from pyinit.config.profiles import unselected_in
from pyinit.exitstatus import ExitStatus
from pyinit.reaper import Reaped
from pyinit.spawn import SpawnError, SpawnSpec
from pyinit.supervisor import Supervisor
from pyinit.supervisor.shutdown import Phase

# What a process with default dispositions survives.
HARMLESS = frozenset({signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGCONT})


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeProcesses:
    """Pretend processes, named by argv[0] (``argv[0].i`` for instance i of a scaled
    service: every instance runs the same command). A process dies of any signal it
    does not survive (``HARMLESS``, or what ``stubborn`` lists for its name); SIGKILL
    always, unless it is ``unkillable``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.live: dict[int, str] = {}  # pid -> name
        self.spawned: list[tuple[float, str]] = []  # (when, name), in order
        self.sent: list[tuple[str, int]] = []  # (name, signum), in order
        self.stubborn: dict[str, set[int]] = {}
        self.unkillable: set[str] = set()  # stuck in the kernel: not even SIGKILL
        self.unstartable: set[str] = set()
        self.sigchld = False  # an exit the supervisor has not been told of
        self._exits: list[Reaped] = []
        self._pids = itertools.count(100)

    # -- the test's side ---------------------------------------------------------
    def pid_of(self, name: str) -> int:
        pids = [pid for pid, n in self.live.items() if n == name]
        assert len(pids) == 1, f"{name}: live pids {pids}"
        return pids[0]

    def is_live(self, name: str) -> bool:
        return name in self.live.values()

    def exit(self, name: str, code: int = 0) -> None:
        """``name`` exits on its own with ``code``."""
        self._end(self.pid_of(name), ExitStatus(code=code))

    def orphan(self, name: str) -> int:
        """A process nobody started on purpose (an escaped daemon): a child of pyinit."""
        pid = next(self._pids)
        self.live[pid] = name
        return pid

    def starts(self, name: str) -> list[float]:
        return [when for when, n in self.spawned if n == name]

    def signals_to(self, name: str) -> list[int]:
        return [s for n, s in self.sent if n == name]

    def _end(self, pid: int, status: ExitStatus) -> None:
        del self.live[pid]
        self._exits.append(Reaped(pid, status))
        self.sigchld = True

    def _deliver(self, pid: int, signum: int) -> None:
        name = self.live[pid]
        self.sent.append((name, signum))
        survives = HARMLESS | self.stubborn.get(name, set())
        if name in self.unkillable:
            return
        if signum == signal.SIGKILL or signum not in survives:
            self._end(pid, ExitStatus(signal=signum))

    # -- Launcher -------------------------------------------------------------------
    def spawn(self, spec: SpawnSpec) -> int:
        name = spec.argv[0]
        replica = (spec.env or {}).get("PYINIT_REPLICA")
        if replica is not None:
            name = f"{name}.{replica}"
        if name in self.unstartable:
            raise SpawnError(None, name, "exec", 2)
        pid = next(self._pids)
        self.live[pid] = name
        self.spawned.append((self.clock.now, name))
        return pid

    def release_tty(self) -> bool:
        return False

    # -- SignalSender ----------------------------------------------------------------
    def kill(self, pid: int, signum: int) -> None:
        if abs(pid) not in self.live:
            raise ProcessLookupError(f"no process {abs(pid)}")
        self._deliver(abs(pid), signum)

    def kill_all(self, signum: int) -> int:
        pids = list(self.live)
        for pid in pids:
            self._deliver(pid, signum)
        return len(pids)

    # -- ChildReaper -----------------------------------------------------------------
    def reap(self) -> tuple[list[Reaped], bool]:
        reaped, self._exits = self._exits, []
        return reaped, not self.live

    def children_left(self) -> bool:
        return bool(self.live or self._exits)


class FakeSupervisor:
    """A real Supervisor (real event loop, log router, monitors) over fakes."""

    def __init__(
        self,
        tmp_path: Path,
        text: str,
        main: list[str] | None = None,
        selection: tuple[list[str], list[str]] = ([], []),
    ) -> None:
        """``selection``: (active profiles, --only names), as the command line gives."""
        config = load_config_text(
            textwrap.dedent(text), str(tmp_path / "services.yaml"), {}, ids=(0, 0)
        )
        skipped, problems = unselected_in(config, *selection)
        assert not problems, problems
        self.clock = FakeClock()
        self.procs = FakeProcesses(self.clock)
        self.sup = Supervisor(
            config,
            main,
            verbosity=1,
            unselected=frozenset(skipped),
            selection=selection,
            clock=self.clock,
            launcher=self.procs,
            sender=self.procs,
            reaper=self.procs,
        )
        self.lines: list[str] = []
        # pyinit's own log lines, as written to stderr, without the "pyinit: " prefix
        self.sup.logs.event = lambda message, service="pyinit": self.lines.append(message)  # type: ignore[method-assign]

    def start(self) -> FakeSupervisor:
        self.sup.begin()
        self.settle()
        return self

    def settle(self) -> None:
        """Tell the supervisor of every exit, one SIGCHLD per batch as the intake
        would, and fire the timers due now (status writes), until nothing is left."""
        loop = self.sup.loop
        while not self.done:  # a stopped loop runs nothing more
            if self.procs.sigchld:
                self.procs.sigchld = False
                self.sup.handle_signals([signal.SIGCHLD])
                continue
            due = loop.next_due()
            if due is None or due > self.clock.now:
                return
            loop.run_due_timers()

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on, firing each timer at its own time."""
        target = self.clock.now + seconds
        while not self.done:
            due = self.sup.loop.next_due()
            if due is None or due > target:
                break
            self.clock.now = max(self.clock.now, due)
            self.settle()
        self.clock.now = max(self.clock.now, target)
        self.settle()

    def ready(self, name: str) -> None:
        """``name``'s readiness source says it is ready (as its monitor reports it)."""
        self.sup.services[name].monitor.on_ready("test")
        self.settle()

    def signal(self, *signums: int) -> None:
        """pyinit receives ``signums`` in one batch."""
        self.sup.handle_signals(signums)
        self.settle()

    @property
    def phase(self) -> Phase:
        return self.sup.shutdown.phase

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def exit_code(self) -> int | None:
        return self.sup.shutdown.exit_code

    def state(self, name: str) -> str:
        return self.sup.services[name].machine.state.value

    def logged(self, fragment: str) -> list[str]:
        return [line for line in self.lines if fragment in line]

    def close(self) -> None:
        for rt in self.sup.services.values():
            rt.monitor.close()
        self.sup.loop.close()
