"""What a service inherits: fds 0, 1 and 2, nothing of pyinit's, and not the
fds pyinit itself inherited open without close-on-exec (posixspawn lists those
once, on the first spawn, and checks them again on every later one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import PYTHON, Runner
from tests.helpers.commands import argv
from tests.helpers.supervisor import runtime_env, start, write_config

pytestmark = pytest.mark.timeout(60)

# Prints which of the given fds are open in the service, and how many fds it has.
CHECK = """
import os, sys
fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
print(sys.argv[1], "holds", fds[:-1])  # the last is the listing's own
"""


def test_services_get_no_fd_pyinit_inherited(cli: Runner, tmp_path: Path) -> None:
    # Each later service starts after the one before has ended, so the second
    # and third spawns take the path that checks only what the first one found.
    config = write_config(
        tmp_path,
        f"""
        services:
          first:
            type: oneshot
            command: {argv(PYTHON, "-c", CHECK, "first")}
          second:
            type: oneshot
            command: {argv(PYTHON, "-c", CHECK, "second")}
            depends_on: {{first: {{condition: service_completed_successfully}}}}
          third:
            type: oneshot
            command: {argv(PYTHON, "-c", CHECK, "third")}
            depends_on: {{second: {{condition: service_completed_successfully}}}}
        """,
    )
    read_end, write_end = os.pipe()
    try:
        # pass_fds: open in pyinit and inheritable, as a launcher might leave one.
        proc = start(cli, config, env=runtime_env(tmp_path), pass_fds=(read_end, write_end))
        code, out, err = proc.finish()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert code == 0, err
    lines = sorted(line.split(" | ", 1)[1] for line in out.splitlines() if " holds " in line)
    assert lines == [f"{name} holds [0, 1, 2]" for name in ("first", "second", "third")]
