"""A ControlServer in a real EventLoop, serving a fake supervisor (control.Operator)
with one running service, ``web``: for the fuzz and unit tests of the control socket."""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyinit.control import ControlServer, Operator
from pyinit.logstore import RecentLines
from pyinit.loop import EventLoop
from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot


class RecordingLoop(EventLoop):
    """The real loop, except that a callback's exception is recorded, not printed."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def guarded(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            self.errors.append(traceback.format_exc())

    _guarded = guarded  # the name before loop.py made it public

    def step(self) -> None:
        """One iteration of run(): whatever is ready now, then the due timers."""
        self.call_later(0, self.stop)
        self.run()


class FakeSupervisor:
    """A control.Operator: one running service, ``web``, whose output was
    ``one\ntwo \xff``; ``recent`` holds the kept lines of each name."""

    def __init__(self) -> None:
        self.loop = RecordingLoop()
        self.change_hooks: list[Callable[[], None]] = []
        self.log_hooks: list[Callable[[str, bytes], None]] = []
        self.messages: list[str] = []
        self.services = {"web"}
        web = RecentLines()
        web.add(b"one\ntwo \xff")
        self.recent = {"web": web}
        self.busy_names: set[str] = set()  # what busy() answers: held ``wait`` requests

    def log(self, message: str, level: int = 0) -> None:
        self.messages.append(message)

    def runtime_dir(self) -> str:
        raise OSError("the fake has no runtime directory")

    def snapshot(self) -> Snapshot:
        web = ServiceSnapshot("longrun", ServiceState.RUNNING, pid=7, ready=True)
        return Snapshot(pid=1, services={"web": web})

    def sampled_snapshot(self) -> Snapshot:
        return self.snapshot()

    def _act(self, names: list[str]) -> tuple[list[str], list[str]]:
        known = [n for n in names if n in self.services]
        return known, [f"no service named {n!r}" for n in names if n not in self.services]

    start_services = stop_services = restart_services = _act

    def signal_services(self, signum: int, names: list[str]) -> tuple[list[str], list[str]]:
        return self._act(names)

    def scale_service(self, name: str, count: int) -> tuple[list[str], list[str], list[str]]:
        if name not in self.services:
            return [], [], [f"no service named {name!r}"]
        return [], [], [f"{name} is not scaled"]

    def reload(self, on_done: Callable[[bool, list[str]], None] | None = None) -> None:
        # As the real one: answered later, from the loop, when the load is over.
        if on_done is not None:
            done = on_done
            self.loop.call_later(0, lambda: done(True, ["no change"]))

    def busy(self) -> set[str]:
        return set(self.busy_names)

    def recent_lines(self, name: str, count: int) -> tuple[int, list[memoryview]] | None:
        store = self.recent.get(name)
        if store is None:
            return (0, []) if name in self.services else None
        return store.tail(count)

    def timed_lines(self, name: str, count: int, since: float) -> list[tuple[float, bytes]]:
        store = self.recent.get(name)
        return [] if store is None else store.timed_tail(count, since)

    def add_log_hook(self, hook: Callable[[str, bytes], None]) -> None:
        self.log_hooks.append(hook)

    def remove_log_hook(self, hook: Callable[[str, bytes], None]) -> None:
        if hook in self.log_hooks:
            self.log_hooks.remove(hook)

    def add_change_hook(self, hook: Callable[[], None]) -> None:
        self.change_hooks.append(hook)

    def remove_change_hook(self, hook: Callable[[], None]) -> None:
        if hook in self.change_hooks:
            self.change_hooks.remove(hook)


def _is_an_operator(fake: FakeSupervisor) -> Operator:
    return fake  # mypy checks that the fake has every method of the Protocol


@contextmanager
def serving() -> Iterator[tuple[ControlServer, FakeSupervisor]]:
    with tempfile.TemporaryDirectory(prefix="pyinit-fuzz-") as tmp:
        sup = FakeSupervisor()
        server = ControlServer(sup, os.path.join(tmp, "control.sock"))
        try:
            yield server, sup
        finally:
            server.close()
            sup.loop.close()
        assert not sup.loop.errors, sup.loop.errors[0]
        assert not [m for m in sup.messages if "internal error" in m], sup.messages
