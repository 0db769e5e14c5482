"""Reloads: the config file is loaded in a short-lived forked child, off PID 1's loop.

Parsing a large services file in pure-Python YAML takes seconds; done in the loop
it would freeze restarts, logs and signal handling meanwhile. The child loads the
file and writes the result into a pipe that the loop reads without blocking, and
exits: the first problems and their count, or the new Config as the difference
from the running one, in frames the loop unpickles a slice at a time
(pyinit/reload_delta.py) so that no pass of the loop takes long. The
supervisor's reaper routes its exit status here (``register_child``); the result
is used once both the pipe's end and the exit status are in. A child that dies,
hangs or writes garbage is a failed reload, never a crash.

Requests arriving while a load runs are coalesced into one more load after it:
that one reads the file as it is after the latest request.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from pyinit.config import Config, ConfigError, load_config
from pyinit.loop import EventLoop, Timer
from pyinit.reaper import ExitStatus
from pyinit.reload import ReloadPlan
from pyinit.reload_delta import BadResult, Head, Step, assemble, encode, frame, read_frames
from pyinit.signals import catchable_signals, fork_blocked

MAX_PROBLEMS = 50  # shown per failed reload; the rest are counted
LOAD_TIMEOUT = 120.0  # a 4 MiB file of dense YAML takes ~40 s on a slow core
RESULT_CAP = 256 * 1024 * 1024  # a pickled Config is a few times its YAML at most
_CHUNK = 1024 * 1024
_PIPE_SIZE = 1024 * 1024  # fewer wake-ups for a large result (best effort)
SLICE = 0.02  # seconds of rebuilding the result per pass of the loop, about

Done = Callable[[bool, list[str]], None]  # (applied, messages), for a control client


@dataclass(frozen=True)
class LoadResult:
    config: Config | None = None
    plan: ReloadPlan | None = None  # config against the base the load was given
    problems: tuple[str, ...] = ()  # the first MAX_PROBLEMS
    total: int = 0  # how many problems there were
    failure: str = ""  # the loader itself failed


def problem_lines(result: LoadResult) -> list[str]:
    """The problems to show: the first MAX_PROBLEMS, then how many more there were."""
    lines = list(result.problems[:MAX_PROBLEMS])
    more = result.total - len(lines)
    if more > 0:
        lines.append(f"... and {more} more problem{'s' if more != 1 else ''}")
    return lines


def load_result(path: str) -> LoadResult:
    """What the child sends back for ``path``."""
    try:
        return LoadResult(config=load_config(path))
    except ConfigError as exc:
        shown = tuple(str(p) for p in exc.problems[:MAX_PROBLEMS])
        return LoadResult(problems=shown, total=len(exc.problems))


class ConfigLoad:
    """One load of ``path`` in a child; ``on_done`` gets its LoadResult once, unless
    ``kill`` came first. ``base``: the running config; the child sends only what
    differs from it, and the result carries the plan."""

    def __init__(
        self,
        loop: EventLoop,
        path: str,
        register_child: Callable[[int, Callable[[ExitStatus], None]], None],
        on_done: Callable[[LoadResult], None],
        timeout: float = LOAD_TIMEOUT,
        base: Config | None = None,
    ) -> None:
        self.loop = loop
        self.path = path
        self.register_child = register_child
        self.on_done = on_done
        self.timeout = timeout
        self.pid: int | None = None
        self.fd = -1
        self.data = bytearray()
        self.eof = False
        self.status: ExitStatus | None = None
        self.finished = False
        self.timer: Timer | None = None
        self.base = base
        self.steps: Step | None = None  # rebuilding the result, a slice per pass
        self.abandoned = False

    def start(self) -> None:
        """Fork the loader; OSError when it cannot be started."""
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = fork_blocked(close_on_error=(r, w))
        if pid == 0:  # pragma: no cover - the child
            _child(r, w, self.path, self.base)
        os.close(w)
        self.pid, self.fd = pid, r
        os.set_blocking(r, False)
        try:
            import fcntl

            fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: the default 64 KiB works too
        self.register_child(pid, self._exited)
        self.loop.add_reader(r, self._readable)
        self.timer = self.loop.call_later(self.timeout, self._timed_out)

    def kill(self) -> None:
        """Abandon the load (shutdown): SIGKILL the child; on_done is not called.
        Its exit still goes through the reaper, to ``_exited``, which ignores it."""
        self.finished = self.abandoned = True
        self.steps = None
        self._close()
        if self.status is None and self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1

    def _readable(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, _CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fail(f"cannot read the loader's result: {exc}")
                return
            if not chunk:
                self.eof = True
                self._close()
                self._settle()
                return
            self.data += chunk
            if len(self.data) > RESULT_CAP:
                self._fail(f"the loader's result is over {RESULT_CAP // (1024 * 1024)} MiB")
                return

    def _exited(self, status: ExitStatus) -> None:
        self.status = status
        self._settle()

    def _timed_out(self) -> None:
        self.timer = None
        self._fail(f"loading took longer than {self.timeout:g}s")

    def _fail(self, message: str) -> None:
        if self.finished:
            return
        self.kill()
        self._deliver(LoadResult(failure=message))

    def _settle(self) -> None:
        if self.finished or not self.eof or self.status is None:
            return
        self.finished = True
        self._close()
        opened = self._open(self.status)
        if isinstance(opened, LoadResult):
            self._deliver(opened)
        else:
            self.steps = opened
            self._pump()

    def _open(self, status: ExitStatus) -> LoadResult | Step:
        """The result, or the steps that rebuild it from the frames."""
        if not status.success:
            return LoadResult(failure=f"the loader failed ({status.describe()})")
        try:
            frames = read_frames(self.data)
            first = next(frames, None)
            if first is None:
                raise BadResult("nothing was sent")
            head = pickle.loads(first)
        except Exception as exc:
            return _unreadable(exc)
        if isinstance(head, Head):
            return assemble(head, frames, self.base)
        if not isinstance(head, LoadResult) or head.config is not None:
            return LoadResult(failure=f"the loader sent a {type(head).__name__}")
        return head

    def _decode(self, status: ExitStatus) -> LoadResult:
        """The whole result at once (tests)."""
        opened = self._open(status)
        if isinstance(opened, LoadResult):
            return opened
        return _drain(opened, float("inf")) or LoadResult(failure="unfinished")

    def _pump(self) -> None:
        if self.abandoned or self.steps is None:
            return
        result = _drain(self.steps, SLICE)
        if result is None:
            self.loop.call_later(0, self._pump)
        else:
            self.steps = None
            self._deliver(result)

    def _deliver(self, result: LoadResult) -> None:
        self.data = bytearray()
        self.on_done(result)


def _unreadable(exc: Exception) -> LoadResult:
    return LoadResult(failure=f"the loader's result is unreadable: {exc!r}")


def _drain(steps: Step, budget: float) -> LoadResult | None:
    """Run steps for about ``budget`` seconds; the result once they are over."""
    start = time.monotonic()
    try:
        while True:
            next(steps)
            if time.monotonic() - start >= budget:
                return None
    except StopIteration as stop:
        config, plan = stop.value
        return LoadResult(config=config, plan=plan)
    except Exception as exc:
        return _unreadable(exc)


def _child(r: int, w: int, path: str, base: Config | None) -> NoReturn:  # pragma: no cover
    code = 70  # EX_SOFTWARE: anything went wrong before the result was written
    try:
        signal.set_wakeup_fd(-1)
        for signum in catchable_signals():
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.close(r)
        try:
            result = load_result(path)
            if result.config is None:
                frames = [frame(result)]
            else:  # the plan and the services it adds or changes, in frames
                frames = list(encode(base, result.config))
        except Exception as exc:  # a bug in the loader: say what, let PID 1 go on
            frames = [frame(LoadResult(failure=f"internal error in the loader: {exc!r}"))]
        for data in frames:
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
        code = 0
    finally:
        os._exit(code)


class Reloader:
    """Runs loads one at a time and coalesces requests; ``apply`` gets each valid
    Config with its plan against ``base()`` (None: compute it), ``log`` the outcome
    of each load. ``base``: the running config, which the child compares with."""

    def __init__(
        self,
        loop: EventLoop,
        path: Callable[[], str],
        register_child: Callable[[int, Callable[[ExitStatus], None]], None],
        apply: Callable[[Config, ReloadPlan | None], list[str]],
        log: Callable[[str], None],
        base: Callable[[], Config | None] = lambda: None,
    ) -> None:
        self.loop = loop
        self.path = path
        self.register_child = register_child
        self.apply = apply
        self.log = log
        self.base = base
        self.current: ConfigLoad | None = None
        self.current_waiters: list[Done] = []
        self.next_waiters: list[Done] = []
        self.again = False  # a request came while loading: one more load after it

    @property
    def busy(self) -> bool:
        return self.current is not None

    def request(self, on_done: Done | None = None) -> None:
        if on_done is not None:
            self.next_waiters.append(on_done)
        if self.current is not None:
            self.again = True
            return
        self._start()

    def cancel(self, reason: str) -> None:
        """Shutdown: kill a running load; every waiting client gets ``reason``."""
        if self.current is not None:
            self.current.kill()
            self.current = None
        self.again = False
        waiters, self.current_waiters, self.next_waiters = (
            self.current_waiters + self.next_waiters,
            [],
            [],
        )
        self._answer(waiters, False, [reason])

    def _start(self) -> None:
        self.again = False
        self.current_waiters, self.next_waiters = self.next_waiters, []
        load = ConfigLoad(
            self.loop, self.path(), self.register_child, self._loaded, base=self.base()
        )
        try:
            load.start()
        except OSError as exc:
            message = f"cannot start the loader: {exc}"
            self.log(f"reload: {message}; keeping the running configuration")
            waiters, self.current_waiters = self.current_waiters, []
            self._answer(waiters, False, [message])
            return
        self.current = load

    def _loaded(self, result: LoadResult) -> None:
        load, self.current = self.current, None
        waiters, self.current_waiters = self.current_waiters, []
        try:
            if result.config is not None:
                try:
                    # The plan holds against the config the child compared with
                    # (replaced only here: a safeguard); else apply computes it.
                    base = load.base if load is not None else None
                    fresh = base is not None and base is self.base()
                    messages = self.apply(result.config, result.plan if fresh else None)
                except Exception as exc:  # answered, then reported by the loop
                    self._answer(waiters, False, [f"internal error: {exc!r}"])
                    raise
                self._answer(waiters, True, messages)
            elif result.failure:
                self.log(f"reload: {result.failure}; keeping the running configuration")
                self._answer(waiters, False, [result.failure])
            else:
                lines = problem_lines(result)
                for line in lines:
                    self.log(f"reload: {line}")
                count = f"{result.total} problem{'s' if result.total != 1 else ''}"
                self.log(f"reload: {count}; keeping the running configuration")
                self._answer(waiters, False, lines)
        finally:
            if self.again:
                self.loop.guarded(self._start)

    def _answer(self, waiters: list[Done], applied: bool, messages: list[str]) -> None:
        for done in waiters:
            self.loop.guarded(lambda done=done: done(applied, messages))  # type: ignore[misc]
