"""Exit while leaving one process behind, for an init to stop.

    leftover.py FILE [--ignore-term] [--code N]

Forks a leftover that either records SIGTERM by writing ``TERM`` to FILE and
exiting, or (``--ignore-term``) ignores SIGTERM. Once the leftover's handler is
in place, prints ``ready leftover <pid>`` and exits with code N (default 0).
The leftover's stdio is /dev/null, so it holds no pipe of the test open.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    path = argv[0]
    ignore = "--ignore-term" in argv
    code = int(argv[argv.index("--code") + 1]) if "--code" in argv else 0
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)

        def on_term(signum: int, frame: object) -> None:
            with open(path, "w") as f:
                f.write("TERM\n")
            os._exit(0)

        signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else on_term)
        os.close(ready_w)  # the parent's read returns: our handler is in place
        while True:
            signal.pause()
    os.close(ready_w)
    os.read(ready_r, 1)
    os.write(1, f"ready leftover {pid}\n".encode())
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
