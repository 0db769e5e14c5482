"""The runtime directory under attack, with pyinit (root) as PID 1 of a fresh PID
namespace: links planted under the names pyinit writes are never followed, and a
directory others could plant them in is refused in one line while pyinit runs on.

pyinit is PID 1, so the old predictable temp name was ``status.json.1.tmp``.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from tests.helpers.cli import DEVNULL, Proc, Runner
from tests.helpers.commands import argv, py, sh
from tests.helpers.deadlines import wait_until
from tests.helpers.supervisor import start, write_config

PRECIOUS = "root's own file\n"
# READY=1 to $NOTIFY_SOCKET (a path, or "@name": abstract), then stay up.
NOTIFY = py(
    """
    import os, socket, time
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    p = os.environ["NOTIFY_SOCKET"]
    s.connect("\\0" + p[1:] if p.startswith("@") else p)
    s.send(b"READY=1")
    time.sleep(1000)
    """
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own and chown files")


def precious(tmp_path: Path, name: str = "precious") -> Path:
    """A root-owned file outside the runtime directory, for links to point at."""
    path = tmp_path / name
    path.write_text(PRECIOUS)
    path.chmod(0o644)
    return path


def untouched(path: Path) -> bool:
    info = path.stat()
    return path.read_text() == PRECIOUS and stat.S_IMODE(info.st_mode) == 0o644


def status_file(run: Path) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def services_in(run: Path) -> dict[str, dict[str, object]]:
    data = status_file(run) or {}
    services: dict[str, dict[str, object]] = data.get("services", {})  # type: ignore[assignment]
    return services


def stop(proc: Proc) -> str:
    proc.signal(signal.SIGTERM)
    code, _out, err = proc.finish()
    assert code == 0, err
    return err


@pytest.mark.timeout(30)
def test_planted_links_are_never_followed(cli: Runner, tmp_path: Path) -> None:
    """In a sticky shared directory (accepted: only a file's owner may remove it),
    links to root-owned files sit at the old temp name, at status.json and at a
    notify socket's path. After several status changes every target is untouched,
    status.json is pyinit's own regular file, and the service still got ready."""
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o1777)
    targets = {}
    for name in ("status.json.1.tmp", "status.json", "notify-note.sock"):
        targets[name] = precious(tmp_path, f"target-{name}")
        (run / name).symlink_to(targets[name])
    config = write_config(
        tmp_path,
        f"""
        services:
          note:
            command: {NOTIFY}
            ready: notify
          blip:
            command: {argv(*sh("sleep 0.3; exit 3"))}
            restart: "no"
        """,
    )
    proc = start(cli, config, env={**os.environ, "PYINIT_RUNTIME_DIR": str(run)}, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r"note: ready \(notify READY=1")
    proc.err.expect(r"blip: failed \(status 3\)")

    def settled() -> bool:
        services = services_in(run)
        return (
            services.get("note", {}).get("ready") is True
            and services.get("blip", {}).get("state") == "failed"
        )

    wait_until(settled, "both changes in status.json")
    info = os.lstat(run / "status.json")
    assert stat.S_ISREG(info.st_mode) and info.st_uid == 0
    for name, target in targets.items():
        assert untouched(target), f"pyinit wrote through the link at {name}"
    err = stop(proc)
    assert "Traceback" not in err
    assert all(untouched(target) for target in targets.values())


def _world_writable(run: Path) -> str:
    run.mkdir()
    run.chmod(0o777)
    return "writable by other users (mode 0777) and not sticky"


def _group_writable(run: Path) -> str:
    run.mkdir()
    run.chmod(0o770)
    return "writable by other users (mode 0770) and not sticky"


def _foreign(run: Path) -> str:
    run.mkdir(mode=0o755)
    os.chown(run, 65534, 65534)
    return "owned by uid 65534, not by root"


def _symlink(run: Path) -> str:
    real = run.parent / "elsewhere"
    real.mkdir(mode=0o755)
    run.symlink_to(real)
    return "it is a symbolic link"


UNSAFE = {
    "world-writable": _world_writable,
    "group-writable": _group_writable,
    "other uid": _foreign,
    "symlink": _symlink,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(UNSAFE))
def test_unsafe_runtime_dir_refused(cli: Runner, tmp_path: Path, kind: str) -> None:
    """A runtime directory another user could plant links in is refused in one line
    naming it and why; pyinit runs the services anyway (no status file, no control
    socket, an abstract notify socket) and exits 0 on SIGTERM, having created
    nothing in it. ``pyinit health`` refuses it too, saying why."""
    run = tmp_path / "run"
    why = UNSAFE[kind](run)
    before = sorted(os.listdir(run))
    config = write_config(
        tmp_path,
        f"""
        services:
          note:
            command: {NOTIFY}
            ready: notify
          other:
            command: {argv("sleep", "1000")}
        """,
    )
    env = {**os.environ, "PYINIT_RUNTIME_DIR": str(run)}
    proc = start(cli, config, env=env, stdin=DEVNULL)
    assert proc.err is not None
    line = proc.err.expect(r"^pyinit: runtime directory .* refused: .*$").group(0)
    assert line == f"pyinit: runtime directory {run} refused: {why}"
    seen = " ".join(proc.err.expect(r"note: ready|other: started").group(0) for _ in "12")
    assert "note: ready" in seen and "other: started" in seen
    err = stop(proc)
    assert err.count("refused:") == 1, err  # once, though every status change retries
    assert sorted(os.listdir(run)) == before

    done = cli.run(["health"], namespace=False, env=env)
    assert done.code == 1
    assert f"{run} refused: {why}" in done.out
