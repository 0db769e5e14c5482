"""A small app for ``pyinit rehearse`` tests: how it takes SIGTERM is its first argument.

  clean            a SIGTERM handler that exits 0
  ignore           ignores SIGTERM
  plain            no handler at all (the default action, or nothing as PID 1)
  slow SECONDS     a SIGTERM handler that takes SECONDS before exiting 0
  worker           a handler that exits 0, and a forked worker that ignores SIGTERM
  team             a handler that stops its worker (which has a handler), waits, exits 0
  listen PORT      a SIGTERM handler that exits 0, once PORT accepts connections

Prints "ready" (flushed) once its handlers and workers are in place, so tests
wait on ``--ready-log ready`` rather than on a guessed delay.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time


def _exit_on_term(delay: float = 0.0) -> None:
    def handler(signum: int, frame: object) -> None:
        if delay:
            time.sleep(delay)
        os._exit(0)

    signal.signal(signal.SIGTERM, handler)


def _catches_term(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def main() -> None:
    mode = sys.argv[1]
    keep: list[socket.socket] = []
    if mode == "clean":
        _exit_on_term()
    elif mode == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif mode == "slow":
        _exit_on_term(float(sys.argv[2]))
    elif mode == "worker":
        ready_r, ready_w = os.pipe()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(ready_w, b"x")
            while True:
                signal.pause()
        os.read(ready_r, 1)  # the worker ignores SIGTERM before we say ready
        _exit_on_term()
    elif mode == "team":
        worker = os.fork()
        if worker == 0:
            _exit_on_term()
            while True:
                signal.pause()

        def stop_team(signum: int, frame: object) -> None:
            os.kill(worker, signal.SIGTERM)
            os.waitpid(worker, 0)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop_team)
        # the worker's handler is in place once /proc says it catches SIGTERM
        while not _catches_term(worker):
            time.sleep(0.01)
    elif mode == "listen":
        _exit_on_term()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(sys.argv[2])))
        listener.listen()
        keep.append(listener)
    elif mode != "plain":
        sys.exit(f"stopper: unknown mode {mode!r}")
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
