"""Reloads racing a service's slow stop (reliability findings 2 and 3), as PID 1.

Each service here stops slowly on its own: its TERM handler blocks on a fifo the
test opens when it is ready (or, in the storm, sleeps half a second), so the
reloads land while the old instance is still stopping. Whatever the order, the
service the file names must end up running the file's definition, known to
``status``, ``start`` and ``wait``, and a later reload must find nothing to do.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Proc, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.supervisor import boot, ok, status, stop_pyinit, write_config

KEEP = f"""
  keep:
    command: {argv("sleep", "1000")}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYINIT_RUNTIME_DIR": str(tmp_path / "run")}


def gated_db(gate: Path, version: str = "v1") -> str:
    """db prints its version; on TERM it says so and stops only once ``gate`` opens."""
    script = f"echo \"up $VERSION\"; trap 'echo term; cat {gate} >/dev/null; exit 0' TERM; "
    script += "sleep 1000 & wait"
    return f"""
  db:
    command: {argv(*sh(script))}
    environment: {{VERSION: {version}}}
"""


def services(*parts: str) -> str:
    return "services:" + "".join(parts)


def release(gate: Path) -> None:
    """Let the blocked TERM handler finish (opening the fifo wakes its reader)."""
    fd = os.open(gate, os.O_WRONLY)
    os.close(fd)


def shut_down(proc: Proc, gate: Path, gated: str = "db") -> str:
    """Stop pyinit, letting the gated service's TERM handler through; pyinit's stdout."""
    assert proc.out is not None
    proc.signal(signal.SIGTERM)
    proc.out.expect(rf"^{gated} +\| term$")
    release(gate)
    code, out, err = proc.finish()
    assert code == 0, err
    return out


def reload(env: dict[str, str], tmp_path: Path, text: str) -> str:
    write_config(tmp_path, text)
    return ok(env, "reload")


def assert_runs(proc: Proc, env: dict[str, str], tmp_path: Path, text: str, version: str) -> None:
    """db is up with ``version``, every client knows it, and the file is what runs."""
    assert proc.out is not None
    started = proc.out.expect(r"^db +\| up (\S+)$", timeout=10)
    assert started.group(1) == version
    ok(env, "wait", "--ready", "db", "--timeout", "10s")
    assert status(env)["db"]["state"] == "running"
    ok(env, "start", "db")  # known (and already running)
    assert "no service changed" in reload(env, tmp_path, text)
    assert status(env)["db"]["state"] == "running"


@pytest.mark.timeout(40)
def test_re_added_while_its_old_instance_stops(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """Finding 2: removed, then re-added while its TERM handler still runs: the old
    instance finishes stopping, then the service starts again (not lost)."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    with_db = services(KEEP, gated_db(gate))
    proc = boot(cli, tmp_path, env, with_db, "keep", "db")
    assert proc.out is not None and proc.err is not None
    proc.out.expect(r"^db +\| up v1$")
    assert "removed db" in reload(env, tmp_path, services(KEEP))
    proc.out.expect(r"^db +\| term$")
    assert "added db" in reload(env, tmp_path, with_db)
    release(gate)
    assert_runs(proc, env, tmp_path, with_db, "v1")
    proc.err.read_available()
    assert "db: removed" not in proc.err.text()
    shut_down(proc, gate)


@pytest.mark.timeout(40)
def test_change_remove_re_add_runs_the_file_definition(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """Finding 3: v2 while v1 stops, then removed, then (v1 gone) v1 again: v1 runs,
    never the v2 that was only ever planned."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    v1 = services(KEEP, gated_db(gate, "v1"))
    proc = boot(cli, tmp_path, env, v1, "keep", "db")
    assert proc.out is not None and proc.err is not None
    proc.out.expect(r"^db +\| up v1$")
    assert "changed db" in reload(env, tmp_path, services(KEEP, gated_db(gate, "v2")))
    proc.out.expect(r"^db +\| term$")
    assert "removed db" in reload(env, tmp_path, services(KEEP))
    release(gate)
    proc.err.expect(r"db: removed")
    assert "db" not in status(env)
    assert "added db" in reload(env, tmp_path, v1)
    assert_runs(proc, env, tmp_path, v1, "v1")
    assert "up v2" not in shut_down(proc, gate)


@pytest.mark.timeout(60)
def test_sighup_storm_ends_with_the_file(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """200 SIGHUPs while the file flips between with and without db (which takes
    half a second to stop), ending with it: db ends up running."""
    slow = f"""
  db:
    command: {argv(*sh("echo up v1; trap 'sleep 0.5; exit 0' TERM; sleep 1000 & wait"))}
"""
    with_db, without = services(KEEP, slow), services(KEEP)
    proc = boot(cli, tmp_path, env, with_db, "keep", "db")
    assert proc.out is not None
    proc.out.expect(r"^db +\| up v1$")
    config = tmp_path / "services.yaml"
    for i in range(200):
        staged = tmp_path / "staged.yaml"
        staged.write_text(without if i % 2 == 0 else with_db)
        staged.rename(config)  # pyinit never reads half a file
        proc.signal(signal.SIGHUP)
    # A reload through the socket is answered after every SIGHUP before it was seen.
    assert "no service changed" in reload(env, tmp_path, with_db)
    ok(env, "wait", "--ready", "db", "--timeout", "15s")
    assert status(env)["db"]["state"] == "running"
    ok(env, "start", "db")
    assert "no service changed" in reload(env, tmp_path, with_db)
    stop_pyinit(proc)


@pytest.mark.timeout(40)
def test_re_added_before_its_stop_was_sent_keeps_its_instance(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """db waits for web (its dependant, slow to stop) before its own stop is sent:
    re-added unchanged in that window, db keeps running its pid; web, already
    told to stop, starts again once stopped."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    web = gated_db(gate).replace("db:", "web:") + "    depends_on: [db]\n"
    both = services(KEEP, f"\n  db:\n    command: {argv('sleep', '1002')}\n", web)
    proc = boot(cli, tmp_path, env, both, "keep", "db", "web")
    assert proc.out is not None and proc.err is not None
    before = status(env)["db"]["pid"]
    assert "removed db, web" in reload(env, tmp_path, services(KEEP))
    proc.out.expect(r"^web +\| term$")
    assert "added db, web" in reload(env, tmp_path, both)
    release(gate)
    proc.out.expect(r"^web +\| up v1$")
    ok(env, "wait", "--ready", "db", "web", "--timeout", "10s")
    after = status(env)
    assert after["db"]["pid"] == before and after["db"]["state"] == "running"
    assert "no service changed" in reload(env, tmp_path, both)
    proc.err.read_available()
    assert "removed" not in proc.err.text().replace("reload: removed", "")
    shut_down(proc, gate, "web")
