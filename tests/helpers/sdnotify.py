"""sd_notify client for tests: sends datagrams to $NOTIFY_SOCKET when told to.

    sdnotify.py FIFO
    sdnotify.py --watchdog COUNT

With FIFO it opens the fifo (read-write, so it never sees EOF), prints
``sdnotify: ready socket=<$NOTIFY_SOCKET>`` and then obeys one command per line:

    send MSG        send MSG as one datagram (a literal ``\\n`` becomes a newline)
    child-send MSG  the same from a forked child (same session, another pid)
    exit CODE       exit with CODE

printing ``sdnotify: sent MSG`` (or ``sdnotify: child sent MSG``) after each send.

With ``--watchdog COUNT`` it sends READY=1, then WATCHDOG=1 COUNT times every
$WATCHDOG_USEC/4, prints ``sdnotify: watchdog stopped`` and stays up without
sending anything more. A ``@`` prefix of $NOTIFY_SOCKET is an abstract socket.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def send(message: str) -> None:
    path = os.environ["NOTIFY_SOCKET"]
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.replace("\\n", "\n").encode(), address)


def watchdog(count: int) -> int:
    period = int(os.environ["WATCHDOG_USEC"]) / 1_000_000 / 4
    send("READY=1")
    say("sdnotify: sent READY=1")
    for i in range(count):
        time.sleep(period)
        send("WATCHDOG=1")
        say(f"sdnotify: sent WATCHDOG=1 ({i + 1})")
    say("sdnotify: watchdog stopped")
    while True:
        time.sleep(1000)


def main(argv: list[str]) -> int:
    if argv[0] == "--watchdog":
        return watchdog(int(argv[1]))
    fd = os.open(argv[0], os.O_RDWR)
    say(f"sdnotify: ready socket={os.environ.get('NOTIFY_SOCKET', '')}")
    with os.fdopen(fd, "r") as commands:
        for line in commands:
            verb, _, rest = line.rstrip("\n").partition(" ")
            if verb == "send":
                send(rest)
                say(f"sdnotify: sent {rest}")
            elif verb == "child-send":
                pid = os.fork()
                if pid == 0:
                    send(rest)
                    os._exit(0)
                os.waitpid(pid, 0)
                say(f"sdnotify: child sent {rest}")
            elif verb == "exit":
                return int(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
