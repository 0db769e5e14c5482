"""Leave N orphans to PID 1, then report whether any of them is left behind.

    orphans.py N [PER_PARENT]

Intermediate children each fork PER_PARENT (default 100) grandchildren and exit
without waiting for them, so every grandchild is re-parented to the init. The
grandchildren block on a "go" pipe and all exit together once every
intermediate is gone (a burst of SIGCHLDs for the init to coalesce). We then
wait, with a deadline, until /proc shows no process other than PID 1 and us,
and print ``orphans N zombies Z others K``; exit 0 only if Z == K == 0.

Run as the command of an init in a fresh PID namespace (``--mount-proc``).
"""

from __future__ import annotations

import os
import sys
import time

DEADLINE = 20.0


def state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()[0].decode()


def others() -> dict[int, str]:
    """Every process in the namespace but PID 1 and us, with its state letter."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, os.getpid()):
            state = state_of(int(entry))
            if state is not None:
                found[int(entry)] = state
    return found


def main(total: int, per_parent: int) -> int:
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    left = total
    while left:
        batch = min(per_parent, left)
        left -= batch
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(done_r)
            for _ in range(batch):
                if os.fork() == 0:
                    os.read(go_r, 1)  # EOF once the go pipe's writer closes
                    os._exit(0)  # closes done_w: the last one gives us EOF
            os._exit(0)
        os.waitpid(pid, 0)  # reap the intermediate ourselves; orphans are not ours
    os.close(go_r)
    os.close(done_w)
    os.close(go_w)  # go: every orphan exits now
    os.read(done_r, 1)  # EOF: every orphan has at least begun exiting
    deadline = time.monotonic() + DEADLINE
    remaining = others()
    while remaining and time.monotonic() < deadline:
        time.sleep(0.01)  # no event tells us another process's reaping: poll
        remaining = others()
    zombies = sum(1 for state in remaining.values() if state == "Z")
    print(f"orphans {total} zombies {zombies} others {len(remaining)}", flush=True)
    return 0 if not remaining else 1


if __name__ == "__main__":
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    sys.exit(main(int(sys.argv[1]), per))
