"""Supervisor mode end to end: restart on file change (``develop.watch``), with
pyinit as PID 1 of a fresh PID namespace watching a directory of the test's own."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, entry_point
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import LineReader, wait_for_count
from tests.helpers.supervisor import start, write_config

RESTART = r"^pyinit: web: (.*) changed; restarting$"


def watched_web(tmp_path: Path, extra: str = "", scale: int | None = None) -> Path:
    """``web`` records each start in ``starts``; it watches ./src (relative to the
    config file), ignoring *.pyc and .git/; ``scale``: run that many instances."""
    (tmp_path / "src" / ".git").mkdir(parents=True)
    starts = tmp_path / "starts"
    config = write_config(
        tmp_path,
        f"""
        services:
          web:
            command: {argv(*sh(f"echo $$ >> {starts}; exec sleep 1000"))}
            {f"scale: {scale}" if scale is not None else ""}
            develop:
              watch:
                - path: ./src
                  action: restart
                  ignore: ["*.pyc", ".git/"]
        """,
    )
    if extra:  # more services, written at the indentation of `services:`
        config.write_text(config.read_text() + textwrap.indent(textwrap.dedent(extra), "  "))
    return config


def restarted(err: LineReader) -> str:
    """The next restart line's paths text; the restart itself completes after it."""
    match = err.expect(RESTART)
    err.expect(r"^pyinit: web: started")
    return match.group(1)


@pytest.mark.timeout(40)
def test_burst_is_one_restart_and_ignores_hold(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """A change restarts the service; a burst of 100 files is one restart; ignored
    files (*.pyc, anything under .git/) restart nothing; a directory created later
    is watched too, so a file written inside it restarts the service."""
    config = watched_web(tmp_path)
    src = tmp_path / "src"
    proc = start(cli, config, env=env)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: web: started")

    (src / "app.py").write_text("x")
    assert restarted(proc.err) == "src/app.py"

    for i in range(100):
        (src / f"m{i}.py").write_text("x")
    assert restarted(proc.err) == "src/m0.py and 99 more"

    (src / "x.pyc").write_text("x")
    (src / ".git" / "index").write_text("x")
    (src / "real.py").write_text("x")  # the only change of this batch
    assert restarted(proc.err) == "src/real.py"

    (src / "pkg" / "sub").mkdir(parents=True)
    restarted(proc.err)
    (src / "pkg" / "sub" / "mod.py").write_text("x")
    assert restarted(proc.err) == "src/pkg/sub/mod.py"

    starts = wait_for_count(tmp_path / "starts", 6)
    assert len(starts) == 6 == len(set(starts)), starts  # 1 + 5 restarts, no extra one
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
    assert err.count("changed; restarting") == 5  # nothing came after the last one


@pytest.mark.timeout(40)
def test_dependants_restart_too(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """The restart is ``pyinit restart``'s: a dependant is stopped first and
    started again after the watched service."""
    worker_starts = tmp_path / "worker-starts"
    config = watched_web(
        tmp_path,
        f"""
        worker:
          command: {argv(*sh(f"echo $$ >> {worker_starts}; exec sleep 1000"))}
          depends_on: [web]
        """,
    )
    proc = start(cli, config, env=env)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: worker: started")
    (tmp_path / "src" / "app.py").write_text("x")
    proc.err.expect(RESTART)
    proc.err.expect(r"^pyinit: worker: stopped")
    proc.err.expect(r"^pyinit: web: stopped")
    proc.err.expect(r"^pyinit: web: started")
    proc.err.expect(r"^pyinit: worker: started")
    assert len(wait_for_count(worker_starts, 2)) == 2
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err


@pytest.mark.timeout(40)
def test_watch_limit_is_one_warning(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """When the inotify watch limit is reached, one warning names
    fs.inotify.max_user_watches and pyinit keeps running: what it could watch
    still restarts the service. (The limit is lowered to 2 in a user namespace of
    the test's own: /proc/sys/user/max_inotify_watches is per user namespace.)"""
    for name in ("a", "b", "c"):
        (tmp_path / "src" / name).mkdir(parents=True)
    config = watched_web(tmp_path)
    lower = 'echo 2 > /proc/sys/user/max_inotify_watches && exec "$@"'
    program = ["unshare", "--user", "--map-root-user", "sh", "-c", lower, "sh", *entry_point()]
    proc = cli.start(["-c", str(config)], program=program, env=env)
    assert proc.err is not None
    warning = proc.err.expect(r"^pyinit: web: .*fs\.inotify\.max_user_watches.*$").group(0)
    assert "changes under" in warning and "are not seen" in warning
    proc.err.expect(r"^pyinit: web: started")
    (tmp_path / "src" / "top.py").write_text("x")  # the top directory is watched
    assert restarted(proc.err) == "src/top.py"
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "max_user_watches" in line]
    assert len(warnings) == 1  # one warning, not one per directory


@pytest.mark.timeout(40)
def test_instances_share_one_watcher(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A scaled service's instances share one inotify instance (one each would
    soon meet fs.inotify.max_user_instances, lowered to 1 here in a user
    namespace of the test's own): a change is one restart line, and every
    instance restarts."""
    config = watched_web(tmp_path, scale=3)
    starts = tmp_path / "starts"
    lower = 'echo 1 > /proc/sys/user/max_inotify_instances && exec "$@"'
    program = ["unshare", "--user", "--map-root-user", "sh", "-c", lower, "sh", *entry_point()]
    proc = cli.start(["-c", str(config)], program=program, env=env)
    assert proc.err is not None
    assert len(wait_for_count(starts, 3)) == 3
    (tmp_path / "src" / "app.py").write_text("x")
    assert proc.err.expect(r"^pyinit: web: (.*) changed; restarting$").group(1) == "src/app.py"
    started = wait_for_count(starts, 6)
    assert len(set(started)) == 6, started  # each instance ran twice, each with a new pid
    proc.signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
    assert "max_user_instances" not in err
    assert err.count("changed; restarting") == 1
