"""Starting a service's process and the main command, through the launcher seam.

A service gets /dev/null as stdin and, with ``logging: capture``, two pipes the
log router reads; its readiness source adds what it needs (env, fds). Whatever
goes wrong before exec is the service's failure to start, reported to its state
machine, never an exception in PID 1's loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pyinit.exitstatus import ExitStatus
from pyinit.logs import LogRouter
from pyinit.service import Event, EventKind
from pyinit.spawn import SpawnError, SpawnSpec
from pyinit.startdir import default_cwd
from pyinit.supervisor.runtime import MainCommand, Owners, ServiceRuntime
from pyinit.supervisor.seams import Launcher
from pyinit.users import resolve_user


class Launch:
    def __init__(
        self,
        launcher: Launcher,
        logs: LogRouter,
        owners: Owners,
        feed: Callable[[ServiceRuntime, Event], None],
        log: Callable[[str], None],
    ) -> None:
        self.launcher = launcher
        self.logs = logs
        self.owners = owners
        self.feed = feed
        self.log = log
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def service(self, rt: ServiceRuntime) -> None:
        """Spawn ``rt``'s command and tell its machine how that went."""
        pipes: list[tuple[int, int]] = []
        try:
            pid = self.launcher.spawn(self._spec(rt, pipes))
        except SpawnError as exc:
            if exc.pid is not None:  # reaped quietly: its failure is reported here
                self.owners[exc.pid] = None
            self._failed(rt, pipes, ExitStatus(code=exc.exit_code), str(exc))
            return
        except (LookupError, OSError, PermissionError) as exc:
            self._failed(rt, pipes, ExitStatus(code=126), f"cannot start: {exc}")
            return
        for (read_fd, write_fd), stream in zip(pipes, ("stdout", "stderr"), strict=False):
            os.close(write_fd)
            self.logs.attach(rt.name, pid, stream, read_fd)  # type: ignore[arg-type]
        self.owners[pid] = rt
        self.feed(rt, Event(EventKind.SPAWNED, pid=pid))
        rt.monitor.started(pid)  # may report ready at once (no readiness source)

    def _spec(self, rt: ServiceRuntime, pipes: list[tuple[int, int]]) -> SpawnSpec:
        """What to spawn; the pipes it opens are appended to ``pipes`` as they come."""
        cfg = rt.cfg
        uid = gid = None
        groups: list[int] | None = None
        if cfg.user:
            uid, gid, groups = resolve_user(cfg.user)
        fds = {0: self._devnull}
        if cfg.logging == "capture":
            # One at a time: out of fds, the second fails and the first is closed.
            pipes.append(os.pipe2(os.O_CLOEXEC))
            pipes.append(os.pipe2(os.O_CLOEXEC))
            fds[1], fds[2] = pipes[0][1], pipes[1][1]
            if uid is not None:
                # A service that reopens /dev/stdout by path (nginx, some
                # loggers) opens the pipe anew: it must belong to its user.
                for _, write_end in pipes:
                    os.fchown(write_end, uid, -1 if gid is None else gid)
        env = dict(os.environ)
        env.update(cfg.environment)
        rt.monitor.prepare(env, fds)
        return SpawnSpec(
            argv=cfg.command,
            env=env,
            cwd=default_cwd(cfg.working_dir),
            uid=uid,
            gid=gid,
            groups=groups,
            umask=cfg.umask,
            fds=fds,
            no_new_privs=cfg.no_new_privs,
            rlimits=cfg.ulimits,
        )

    def _failed(
        self, rt: ServiceRuntime, pipes: list[tuple[int, int]], status: ExitStatus, reason: str
    ) -> None:
        for read_fd, write_fd in pipes:
            os.close(read_fd)
            os.close(write_fd)
        rt.monitor.spawn_failed()
        self.feed(rt, Event(EventKind.SPAWN_FAILED, status=status, reason=reason))

    def main(self, main: MainCommand) -> int | None:
        """Start the main command; None once it runs, else the code to stop with."""
        # The main command is the interactive one (docker run -it): it gets the
        # terminal and its foreground, so Ctrl-C reaches it, not the supervisor.
        take_tty = self.launcher.release_tty()
        spec = SpawnSpec(argv=main.argv, take_tty=take_tty, cwd=default_cwd(None))
        try:
            main.pid = self.launcher.spawn(spec)
        except SpawnError as exc:
            if exc.pid is not None:
                self.owners[exc.pid] = None
            self.log(str(exc))
            main.status = ExitStatus(code=exc.exit_code)
            return exc.exit_code
        self.owners[main.pid] = main
        self.log(f"main command {main.argv[0]} started (pid {main.pid})")
        return None
