"""pyinit in a locked-down container: an arbitrary uid with no passwd entry (as
OpenShift assigns: uid 1000870000, gid 0, no supplementary groups, no HOME), a
read-only root filesystem and a tmpfs /tmp.

How the container is made (root only; skipped otherwise): ``unshare --mount --pid
--fork --mount-proc`` runs a shell that makes every mount private, mounts a
test-owned directory at /srv (the "volume": config files, and what services
write for the test to read), mounts a tmpfs on /tmp, remounts / read-only, and
execs ``setpriv --reuid=UID --regid=0 --clear-groups`` into the real pyinit
console script, which is PID 1 of the new PID namespace.

The interpreter lives under /root (mode 0700 here: pyenv), which the uid cannot
traverse. Rather than copy the package and a Python, the shell bind-mounts a
stand-in directory (mode 0755) over every such directory on the way to the
interpreter, the package and the console script, with only the needed entry
(``.pyenv``) bind-mounted inside it: the uid runs exactly the installed code,
and nothing outside this mount namespace changes. The tmpfs on /tmp would hide a
venv or interpreter living under /tmp: the shell binds those entries of the old /tmp
back into the new one, so the tests do not depend on where the venv is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import PIPE, PYINIT, Proc, Runner
from tests.helpers.deadlines import DEFAULT_TIMEOUT, wait_until
from tests.helpers.net import free_port

UID, GID = 1000870000, 0
PY = sys.executable
VOLUME = "/srv" if os.path.isdir("/srv") else "/mnt"
RUNTIME = f"/tmp/pyinit-{UID}"  # the runtime dir's fallback for this uid

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"),
    reason="needs root, unshare(1) and setpriv(1) to make a locked-down container",
)


def _blocked_ancestors(paths: Sequence[str]) -> dict[Path, set[str]]:
    """Directory -> entries to keep, for each directory on the way to ``paths`` that
    "others" cannot traverse (the first such one on each path)."""
    blocked: dict[Path, set[str]] = {}
    for raw in paths:
        chain = [*reversed(Path(os.path.realpath(raw)).parents), Path(os.path.realpath(raw))]
        for parent, child in zip(chain, chain[1:], strict=False):
            if not os.stat(parent).st_mode & 0o001:
                blocked.setdefault(parent, set()).add(child.name)
                break
    return blocked


def _under_tmp(paths: Sequence[str]) -> list[str]:
    """The entries of /tmp that ``paths`` (or, for symlinks, their targets) live in."""
    names = set()
    for raw in paths:
        for path in (os.path.abspath(raw), os.path.realpath(raw)):
            parts = Path(path).parts
            if len(parts) > 2 and parts[:2] == ("/", "tmp"):
                names.add(parts[2])
    return sorted(names)


def _needed_paths() -> list[str]:
    import pyinit

    return [
        PYINIT[0] if len(PYINIT) == 1 else PY,
        PY,
        sys.prefix,
        os.path.dirname(pyinit.__file__),
        os.path.dirname(yaml.__file__),
    ]


def container_argv(
    work: Path,
    argv: Sequence[str],
    *,
    tmpfs: bool = True,
    env: dict[str, str] | None = None,
    setup: str = "",
) -> list[str]:
    """The command line running ``argv`` as PID 1 of a locked-down container; ``work``
    is mounted at VOLUME; ``setup`` is shell run as root just before the switch of uid
    (e.g. ``ulimit -Hn 1024``); ``tmpfs``: False leaves /tmp read-only too."""
    lines = ["set -e", "mount --make-rprivate /"]
    for n, (directory, keep) in enumerate(sorted(_blocked_ancestors(_needed_paths()).items())):
        standin = work.parent / f"{work.name}-standin{n}"
        standin.mkdir(mode=0o755, exist_ok=True)
        standin.chmod(0o755)
        for name in sorted(keep):
            target = standin / name
            source = directory / name
            if source.is_dir():
                target.mkdir(exist_ok=True)
            else:
                target.touch()
            lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}")
        lines.append(f"mount --rbind {shlex.quote(str(standin))} {shlex.quote(str(directory))}")
    lines.append(f"mount --bind {shlex.quote(str(work))} {VOLUME}")
    if tmpfs:
        # The tmpfs hides what lives under /tmp, the venv or the interpreter included
        # in some set-ups: reach the old /tmp through a bind mount kept aside, then
        # bind each needed top-level entry back into the new /tmp.
        under_tmp = _under_tmp(_needed_paths())
        aside = f"{VOLUME}/.old-tmp"
        if under_tmp:
            (work / ".old-tmp").mkdir(exist_ok=True)
            lines.append(f"mount --rbind /tmp {aside}")
        lines.append("mount -t tmpfs -o mode=1777 tmpfs /tmp")
        for name in under_tmp:
            quoted = shlex.quote(name)
            lines.append(
                f"if [ -d {aside}/{quoted} ]; then mkdir /tmp/{quoted}; "
                f"else touch /tmp/{quoted}; fi"
            )
            lines.append(f"mount --rbind {aside}/{quoted} /tmp/{quoted}")
        if under_tmp:
            lines.append(f"umount -l {aside}")
    else:
        # A read-only view of /tmp itself (what lives there, a venv maybe, stays).
        lines.append("mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp")
    lines.append("mount -o remount,bind,ro /")
    if setup:
        lines.append(setup)
    variables = {
        "PATH": f"{Path(PY).parent}:/usr/bin:/bin",
        "PYTHONPATH": f"{VOLUME}/pkg",
        **(env or {}),
    }
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
    lines.append(
        f'exec env -i {assignments} setpriv --reuid={UID} --regid={GID} --clear-groups "$@"'
    )
    return ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c",
            "\n".join(lines), "sh", *argv]  # fmt: skip


def volume(tmp_path: Path) -> Path:
    """The directory mounted at VOLUME, open to the uid (pytest's tmp dirs are 0700).

    It also carries a copy of the pyinit package, put first on PYTHONPATH: where the
    checkout itself lives (under /tmp in some CI clones, behind the tmpfs or the
    read-only bind of the container) the uid may not see it, and an editable install
    points there."""
    import shutil

    import pyinit

    work = tmp_path / "vol"
    work.mkdir(exist_ok=True)
    work.chmod(0o777)
    package = work / "pkg" / "pyinit"
    if not package.exists():
        shutil.copytree(
            os.path.dirname(pyinit.__file__), package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for path in [work / "pkg", *(work / "pkg").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    return work


def start(
    cli: Runner,
    tmp_path: Path,
    args: Sequence[str],
    *,
    stderr: int = subprocess.STDOUT,
    **kwargs: object,
) -> Proc:
    """pyinit ARGS as PID 1 of a locked-down container (stderr merged into stdout)."""
    argv = container_argv(volume(tmp_path), [*PYINIT, *args], **kwargs)  # type: ignore[arg-type]
    popen = subprocess.Popen(argv, stdin=PIPE, stdout=PIPE, stderr=stderr)
    proc = Proc(popen, namespaced=True)  # init_pid: unshare's child, which becomes pyinit
    cli.procs.append(proc)
    return proc


def inside(proc: Proc, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``pyinit ARGS`` in the container as the same uid (as `docker exec` would)."""
    return subprocess.run(
        ["nsenter", "-t", str(proc.init_pid), "-m", "-p", "--",
         "env", "-i", f"PATH={Path(PY).parent}:/usr/bin:/bin", f"PYTHONPATH={VOLUME}/pkg",
         "setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", *PYINIT, *args],
        capture_output=True, text=True, timeout=DEFAULT_TIMEOUT, check=False,
    )  # fmt: skip


def write(tmp_path: Path, name: str, text: str) -> str:
    """A file in the volume; returns its path inside the container."""
    path = volume(tmp_path) / name
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o644)
    return f"{VOLUME}/{name}"


def in_container(proc: Proc, path: str) -> Path:
    """A path of the container's filesystem, seen from the host."""
    return Path(f"/proc/{proc.init_pid}/root{path}")


def expect_each(proc: Proc, patterns: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Consume output lines until each regex (re.search) matched one, in any order."""
    assert proc.out is not None
    deadline = time.monotonic() + timeout
    missing = list(patterns)
    while missing:
        line = proc.out.next_line(max(0.001, deadline - time.monotonic()))
        if line is None:
            pytest.fail(f"EOF before {missing!r}; got {proc.out.lines!r}")
        missing = [p for p in missing if not re.search(p, line)]


@pytest.fixture
def runner() -> Iterator[Runner]:
    r = Runner()
    yield r
    r.cleanup()


def test_wrapper_as_arbitrary_uid(runner: Runner, tmp_path: Path) -> None:
    """Wrapper mode as uid 1000870000 (no passwd entry, no HOME) on a read-only root:
    the command runs as that uid and gid 0, orphans are reaped, the read-only root
    and the writable /tmp are what the command sees, and its status is pyinit's."""
    script = (
        'echo "ids $(id -u) $(id -g) home=${HOME:-unset}"; '
        "(sleep 0.1 &); "
        "touch /etc/pyinit-test 2>/dev/null && echo root-writable || echo root-read-only; "
        "touch /tmp/x && echo tmp-writable; exit 3"
    )
    proc = start(runner, tmp_path, ["-v", "--", "sh", "-c", script])
    code, out, _ = proc.finish(timeout=DEFAULT_TIMEOUT)
    assert code == 3, out
    assert f"ids {UID} {GID} home=unset" in out
    assert "root-read-only" in out and "tmp-writable" in out
    assert "Traceback" not in out


def test_supervisor_as_arbitrary_uid(runner: Runner, tmp_path: Path) -> None:
    """Supervisor mode as an arbitrary uid on a read-only root with a tmpfs /tmp:
    a service with a tcp ready probe and an exec healthcheck, an sd_notify service,
    and a hardened service all run; the runtime dir is /tmp/pyinit-UID (control
    socket, status.json, notify socket, owned by the uid); `pyinit status`, `status
    --json`, `health` and `restart` work as the same uid; SIGTERM exits 0. The
    hardening keys are visible in /proc: NoNewPrivs, Umask and the limits."""
    port = free_port()
    notify = (
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.connect(os.environ['NOTIFY_SOCKET'])\n"
        "s.send(b'READY=1\\nSTATUS=serving')\n"
        "time.sleep(1000)\n"
    )
    hardened = (
        "cat /proc/self/status /proc/self/limits > /srv/hard.txt.tmp && "
        "mv /srv/hard.txt.tmp /srv/hard.txt && exec sleep 1000"
    ).replace("/srv", VOLUME)
    config = write(
        tmp_path,
        "services.yaml",
        f"""
        services:
          web:
            command: {json.dumps([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"])}
            ready: {{tcp: {port}, interval: 100ms}}
            healthcheck: {{test: ["CMD", "true"], interval: 200ms}}
            stop_signal: SIGINT
          note:
            command: {json.dumps([PY, "-c", notify])}
            ready: notify
          hard:
            command: {json.dumps(["sh", "-c", hardened])}
            user: "{UID}:{GID}"
            no_new_privs: true
            umask: "0027"
            ulimits:
              nofile: {{soft: 200, hard: 300}}
              core: 0
              nproc: [512, 1024]
        """,
    )
    proc = start(runner, tmp_path, ["-c", config])
    assert proc.out is not None
    expect_each(
        proc, [r"web: ready \(tcp 127\.0\.0\.1", r"web: healthy", r"note: ready \(notify READY=1"]
    )

    status = inside(proc, "status")
    assert status.returncode == 0, status.stderr
    table = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert table["web"][1:2] == ["running"] and "yes" in table["web"], status.stdout
    assert table["note"][1] == "running", status.stdout
    snapshot = json.loads(inside(proc, "status", "--json").stdout)
    assert snapshot["services"]["note"]["status_text"] == "serving"
    assert snapshot["services"]["web"]["health"] == "healthy"
    health = inside(proc, "health")
    assert (health.returncode, health.stdout.strip()) == (0, "healthy: 3 services")

    runtime = in_container(proc, RUNTIME)
    names = {p.name: p.lstat() for p in runtime.iterdir()}
    assert {"control.sock", "status.json", "notify-note.sock"} <= set(names), names
    assert all(info.st_uid == UID for info in names.values()), names
    assert json.loads((runtime / "status.json").read_text())["services"]["web"]["ready"]

    report = tmp_path / "vol" / "hard.txt"  # written, then renamed into place
    hard = wait_until(
        lambda: report.exists() and report.read_text(), "the hardened service's /proc files"
    )
    fields = dict(line.split(":", 1) for line in hard.splitlines() if ":" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Umask"].strip() == "0027"
    limits = {line[:26].strip(): line[26:].split()[:2] for line in hard.splitlines()}
    assert limits["Max open files"] == ["200", "300"]
    assert limits["Max core file size"] == ["0", "0"]
    assert limits["Max processes"] == ["512", "1024"]

    restart = inside(proc, "restart", "web")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    proc.out.expect(r"web: ready \(tcp", timeout=DEFAULT_TIMEOUT)

    proc.signal(signal.SIGTERM)
    code, out, _ = proc.finish(timeout=DEFAULT_TIMEOUT)
    assert code == 0, proc.out.text()
    text = proc.out.text()
    assert "cannot" not in text and "Traceback" not in text, text


def test_user_switch_rejected_at_check_time(runner: Runner, tmp_path: Path) -> None:
    """Not root, a `user:` naming another uid is a config problem with file:line: key,
    from `pyinit check` and from `pyinit -c` (exit 2, nothing started)."""
    config = write(
        tmp_path,
        "services.yaml",
        """
        services:
          web:
            command: [sleep, "1000"]
            user: "1000:1000"
        """,
    )
    expected = (
        f"{config}:4: services.web.user: switching to another user needs root; "
        f"pyinit runs as uid {UID}"
    )
    check = start(runner, tmp_path, ["check", config])
    code, out, _ = check.finish()
    assert code == 2 and expected in out, out
    run = start(runner, tmp_path, ["-c", config])
    code, out, _ = run.finish()
    assert code == 2 and expected in out and "nothing started" in out, out


def test_ulimit_above_hard_limit_fails_clearly(runner: Runner, tmp_path: Path) -> None:
    """Not root, a limit above pyinit's hard limit is a failed start whose line names
    the limit, the value asked for, the hard limit and that only root can raise it;
    pyinit keeps running the other services."""
    config = write(
        tmp_path,
        "services.yaml",
        """
        services:
          big:
            command: [sleep, "1000"]
            ulimits: {nofile: 4096}
          other:
            command: [sleep, "1000"]
        """,
    )
    proc = start(runner, tmp_path, ["-c", config], setup="ulimit -n 1024")
    assert proc.out is not None
    proc.out.expect(
        r"big: .*cannot run 'sleep': ulimit nofile 4096:4096: Operation not permitted "
        r"\(the hard limit is 1024; only root can raise it\)"
    )
    proc.out.expect(r"other: started")
    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.text()


def test_no_writable_runtime_dir(runner: Runner, tmp_path: Path) -> None:
    """With /tmp read-only too and no PYINIT_RUNTIME_DIR: pyinit says once that it runs
    without the control socket, an sd_notify service still becomes ready (an abstract
    socket needs no file), and SIGTERM exits 0. With PYINIT_RUNTIME_DIR on the volume,
    everything lives there instead."""
    notify = (
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "p = os.environ['NOTIFY_SOCKET']\n"
        "s.connect('\\0' + p[1:] if p.startswith('@') else p)\n"
        "s.send(b'READY=1')\n"
        "time.sleep(1000)\n"
    )
    config = write(
        tmp_path,
        "services.yaml",
        f"""
        services:
          note:
            command: {json.dumps([PY, "-c", notify])}
            ready: notify
        """,
    )
    proc = start(runner, tmp_path, ["-c", config], tmpfs=False)
    assert proc.out is not None
    proc.out.expect(r"control socket: disabled \(no writable runtime directory")
    proc.out.expect(r"note: ready \(notify READY=1")
    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.text()

    # A world-writable volume directory is refused (another user could plant links
    # in it), in one line naming it; pyinit runs on without it.
    run = tmp_path / "vol" / "run"
    run.mkdir(mode=0o777)
    run.chmod(0o777)
    env = {"PYINIT_RUNTIME_DIR": f"{VOLUME}/run"}
    proc = start(runner, tmp_path, ["-c", config], tmpfs=False, env=env)
    assert proc.out is not None
    proc.out.expect(
        rf"runtime directory {VOLUME}/run refused: writable by other users \(mode 0777\)"
        r" and not sticky$"
    )
    proc.out.expect(r"note: ready \(notify READY=1")
    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.text()
    assert proc.out.text().count("refused:") == 1, proc.out.text()
    assert sorted(os.listdir(run)) == []

    # Given to pyinit's uid (as an fsGroup or an init container would), it is used.
    os.chown(run, UID, GID)
    run.chmod(0o700)
    proc = start(runner, tmp_path, ["-c", config], tmpfs=False, env=env)
    assert proc.out is not None
    proc.out.expect(r"note: ready \(notify READY=1")
    wait_until(lambda: (tmp_path / "vol" / "run" / "status.json").exists(), "status.json")
    assert (tmp_path / "vol" / "run" / "control.sock").exists()
    proc.signal(signal.SIGTERM)
    code, _, _ = proc.finish()
    assert code == 0, proc.out.text()
