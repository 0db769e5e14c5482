"""Signal recorder: prints one line per signal received, until stdin reaches EOF.

    recorder.py [--child] [--exit-on NUM] [--role NAME] [--log FILE] SIGNUM...

Installs a handler for each signal number given, then prints
``ready <role> pid=<pid> pgid=<pgid> sid=<sid>`` and, for every signal,
``<role> sig <num>``. The role is ``cmd`` (or NAME); with ``--child`` it first
forks a grandchild (same process group, role ``grandchild``) that records the
same signals. Each process exits 0 when stdin reaches EOF, or after recording
the ``--exit-on`` signal. Lines are written with one ``os.write`` each, so lines
of the two processes never interleave.

With ``--log FILE`` (a supervised service: its stdin is no pipe the test holds)
the lines are appended to FILE and the recorder runs until the ``--exit-on``
signal or a signal it has no handler for.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    child = False
    exit_on: int | None = None
    role = "cmd"
    out = 1
    signums: list[int] = []
    args = iter(argv)
    for arg in args:
        if arg == "--child":
            child = True
        elif arg == "--exit-on":
            exit_on = int(next(args))
            signums.append(exit_on)
        elif arg == "--role":
            role = next(args)
        elif arg == "--log":
            out = os.open(next(args), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        else:
            signums.append(int(arg))

    def say(text: str) -> None:
        os.write(out, (text + "\n").encode())

    def on_signal(signum: int, frame: object) -> None:
        say(f"{role} sig {signum}")
        if signum == exit_on:
            os._exit(0)

    for signum in signums:
        signal.signal(signum, on_signal)
    if child and os.fork() == 0:
        role = "grandchild"
    say(f"ready {role} pid={os.getpid()} pgid={os.getpgrp()} sid={os.getsid(0)}")
    if out != 1:
        while True:
            signal.pause()
    # PEP 475: os.read is retried after each handler ran, so signals are
    # recorded while we wait for EOF.
    while os.read(0, 4096):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
