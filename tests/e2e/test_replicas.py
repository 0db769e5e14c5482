"""Replicas end to end, pyinit as PID 1: ``scale: N`` (or ``deploy.replicas``) runs
instances NAME.1 … NAME.N, each an ordinary service with PYINIT_SERVICE and
PYINIT_REPLICA and a log file of its own; ``depends_on`` a scaled service waits
for every instance; control commands take NAME or NAME.i; ``pyinit scale`` and a
reload change the count, leaving the other instances running (same pid);
status, /metrics, the termination report and ``pyinit check`` show them.

Every instance here says ``up NAME I`` when it starts and ``term`` on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import promtext
from tests.helpers.cli import DEVNULL, PYINIT, Proc, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import LineReader, wait_for_file, wait_line
from tests.helpers.net import free_port, get
from tests.helpers.supervisor import (
    boot,
    ctl,
    make_fifo,
    ok,
    pids,
    start,
    status,
    write_config,
    write_fifo,
)

# $PYINIT_SERVICE/$PYINIT_REPLICA reach the shell: argv() doubles each '$'.
UP = "echo up $PYINIT_SERVICE $PYINIT_REPLICA"
INSTANCE = f"trap 'echo term; exit 0' TERM; {UP}; sleep 1000 & wait"


def web(scale: int = 3, extra: str = "") -> str:
    return f"""
  web:
    command: {argv(*sh(INSTANCE))}
    scale: {scale}
    stop_grace_period: 2s{extra}
"""


def api(condition: str = "service_started", script: str = "echo up; exec sleep 1000") -> str:
    return f"""
  api:
    command: {argv(*sh(script))}
    stop_grace_period: 5s
    depends_on:
      web: {{condition: {condition}}}
"""


def gated_api(gate: Path) -> str:
    """api: on SIGTERM it says ``term`` and stops only once ``gate`` opens."""
    return api(script=f"trap 'echo term; cat {gate} >/dev/null; exit 0' TERM; sleep 1000 & wait")


def services(*parts: str) -> str:
    return "services:" + "".join(parts)


def release(gate: Path) -> None:
    """Let a TERM handler blocked on ``gate`` finish (opening the fifo wakes its reader)."""
    fd = os.open(gate, os.O_WRONLY)
    os.close(fd)


def states(env: dict[str, str]) -> dict[str, str]:
    return {n: s["state"] for n, s in status(env).items()}


def status_doc(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(env, "status", "--json"))
    return doc


def instances(env: dict[str, str], name: str = "web") -> dict[str, int | None]:
    """The pids of ``name``'s instances, as ``pyinit status --json`` lists them."""
    return {n: s["pid"] for n, s in status(env).items() if s.get("replica_of") == name}


def client(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], LineReader]:
    """``pyinit ARGS`` running in the background, its stdout read line by line."""
    proc = subprocess.Popen([*PYINIT, *args], env=env, stdout=subprocess.PIPE, stdin=DEVNULL)
    assert proc.stdout is not None
    return proc, LineReader(proc.stdout.fileno(), f"pyinit {args[0]}")


def shut_down(proc: Proc) -> str:
    """SIGTERM pyinit, which must exit 0; its stderr."""
    proc.signal(signal.SIGTERM)
    code, _out, err = proc.finish()
    assert code == 0, err
    return err

# api's TERM handler blocked on its gate: no instance of web was told to stop yet.
ONLY_API_STOPPING = {"web.1": "running", "web.2": "running", "web.3": "running", "api": "stopping"}


@pytest.mark.timeout(40)
def test_instances_are_services_of_their_own(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """scale: 3 runs web.1..3, each with PYINIT_SERVICE/PYINIT_REPLICA, its own log
    prefix, log file (web.log -> web.2.log) and state: a killed instance restarts
    alone. ``status`` lists them with a ``scaled:`` line, ``--json`` has
    ``replica_of`` and ``scaled``; ``logs web`` shows every instance."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = f"""
    restart: always
    backoff: {{initial: 0.1s}}
    logging:
      driver: file
      options:
        path: {logs / "web.log"}"""
    proc = boot(cli, tmp_path, env, services(web(3, log_file)), "web")
    assert proc.out is not None
    proc.out.expect_all([f"web.{i} | up web {i}" for i in (1, 2, 3)])
    for i in (1, 2, 3):
        assert wait_for_file(logs / f"web.{i}.log", f" up web {i}\n").endswith(f" up web {i}\n")
    assert sorted(os.listdir(logs)) == ["web.1.log", "web.2.log", "web.3.log"]

    table = ok(env, "status")
    assert [line.split()[:2] for line in table.splitlines()[1:4]] == [
        ["web.1", "running"],
        ["web.2", "running"],
        ["web.3", "running"],
    ]
    assert table.endswith("\nscaled: web 3/3 running\n")
    doc = status_doc(env)
    assert doc["scaled"] == {"web": 3}
    assert {n: s["replica_of"] for n, s in doc["services"].items()} == {
        "web.1": "web",
        "web.2": "web",
        "web.3": "web",
    }
    assert doc["services"]["web.2"]["log_file"]["path"] == str(logs / "web.2.log")
    assert sorted(ok(env, "logs", "web").splitlines()) == [
        f"web.{i} | up web {i}" for i in (1, 2, 3)
    ]
    assert ok(env, "logs", "web.2") == "up web 2\n"

    before = instances(env)
    assert ok(env, "signal", "KILL", "web.2") == "signalled: web.2\n"
    proc.out.expect(r"^web\.2 \| up web 2$")
    ok(env, "wait", "--ready", "web.2", "--timeout", "10s")
    after = status(env)
    assert [after[f"web.{i}"]["restarts"] for i in (1, 2, 3)] == [0, 1, 0]
    assert after["web.2"]["pid"] != before["web.2"]
    assert {n: after[n]["pid"] for n in ("web.1", "web.3")} == {
        "web.1": before["web.1"],
        "web.3": before["web.3"],
    }
    shut_down(proc)


@pytest.mark.timeout(40)
def test_deploy_replicas_scale_zero_and_check(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """Compose's ``deploy: {replicas: 2}`` runs two instances; ``scale: 0`` declares
    a service that runs nothing, and what depends on it starts (nothing to wait
    for). ``pyinit check`` shows each as ``NAME xN``."""
    text = f"""
services:
  web:
    command: {argv(*sh(INSTANCE))}
    deploy: {{replicas: 2}}
  idle:
    command: {argv("sleep", "1000")}
    scale: 0
  api:
    command: {argv("sleep", "1000")}
    depends_on: [idle, web]
"""
    config = write_config(tmp_path, text)
    done = ctl(env, "check", str(config))
    assert done.returncode == 0, done.stderr
    rows = [line.split()[:2] for line in done.stdout.splitlines()[1:-1]]
    assert sorted(rows) == [["api", "longrun,"], ["idle", "x0"], ["web", "x2"]]
    assert done.stdout.splitlines()[-1] == "start order: [web.1, web.2] -> [api]"

    proc = boot(cli, tmp_path, env, text, "web", "api")
    assert states(env) == {"web.1": "running", "web.2": "running", "api": "running"}
    assert status_doc(env)["scaled"] == {"web": 2, "idle": 0}
    assert ok(env, "status").endswith("\nscaled: web 2/2 running, idle 0/0 running\n")
    shut_down(proc)


def test_bare_replica_variable_is_a_config_error(tmp_path: Path, env: dict[str, str]) -> None:
    """``$PYINIT_REPLICA`` in the file would expand to nothing when it is read: a
    problem naming the key, exit 2; ``$$PYINIT_REPLICA`` is the shell's."""
    config = write_config(
        tmp_path,
        """
        services:
          web:
            command: ["sh", "-c", "echo $PYINIT_REPLICA"]
            scale: 2
        """,
    )
    done = ctl(env, "check", str(config))
    assert done.returncode == 2
    assert "$PYINIT_REPLICA is set in each instance's environment" in done.stderr
    assert "write $$PYINIT_REPLICA" in done.stderr
    assert re.search(r"services\.yaml:3: services\.web\.command", done.stderr), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(40)
def test_dependant_waits_for_every_instance(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """api (service_ready on web) stays pending while any instance is not ready
    (each waits for a fifo of its own); it starts once the last one is. ``pyinit
    scale`` waits for a new instance to be ready until ``--timeout``; api, already
    running, is left alone."""
    gates = [make_fifo(tmp_path, f"gate.{i}") for i in (1, 2, 3)]
    gated = f"""
  web:
    command: {argv(*sh(f"read x < {tmp_path}/gate.$PYINIT_REPLICA; echo ready; exec sleep 1000"))}
    scale: 3
    ready: {{log_line: "^ready$$"}}
"""
    proc = boot(cli, tmp_path, env, services(gated, api("service_ready")))
    for gate in gates[:2]:
        write_fifo(gate, "go\n")
    ok(env, "wait", "--ready", "web.1", "web.2", "--timeout", "10s")
    assert states(env) == {
        "web.1": "running",
        "web.2": "running",
        "web.3": "starting",
        "api": "pending",
    }
    write_fifo(gates[2], "go\n")
    ok(env, "wait", "--ready", "api", "--timeout", "10s")
    api_pid = pids(env)["api"]

    # pyinit scale waits for the new instance to be ready, up to --timeout
    gates.append(make_fifo(tmp_path, "gate.4"))
    done = ctl(env, "scale", "web", "4", "--timeout", "1s")
    assert (done.returncode, done.stdout) == (1, "starting: web.4\n")
    assert done.stderr == (
        "pyinit: scale: timed out after 1s; still waiting for web.4 (to be ready)\n"
    )
    write_fifo(gates[3], "go\n")
    ok(env, "wait", "--ready", "web.4", "--timeout", "10s")
    assert pids(env)["api"] == api_pid
    assert proc.err is not None
    last_ready = max(wait_line(proc.err, rf"^pyinit: web\.{i}: ready") for i in (1, 2, 3))
    assert wait_line(proc.err, r"^pyinit: api: started") > last_ready
    shut_down(proc)


@pytest.mark.timeout(40)
def test_one_instance_stopped_or_restarted_leaves_dependants(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """``stop web.2`` and ``restart web.3`` act on that instance alone: api (which
    depends on web) and the other instances keep running, same pid."""
    proc = boot(cli, tmp_path, env, services(web(), api()), "web", "api")
    before = pids(env)
    assert ok(env, "stop", "web.2") == "stopping: web.2\nstopped: web.2\n"
    assert ok(env, "restart", "web.3") == "restarting: web.3\nready: web.3\n"
    after = pids(env)
    assert after["web.2"] is None
    assert after["web.3"] != before["web.3"]
    assert {n: after[n] for n in ("web.1", "api")} == {n: before[n] for n in ("web.1", "api")}
    assert states(env)["api"] == "running"
    assert ok(env, "start", "web.2") == "starting: web.2\nready: web.2\n"
    assert pids(env)["api"] == before["api"]
    assert ok(env, "status").endswith("\nscaled: web 3/3 running\n")
    shut_down(proc)


@pytest.mark.timeout(40)
def test_stopping_every_instance_stops_dependants_first(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """``stop web`` stops every instance and api, api first: while api's TERM handler
    runs, every instance is still running. ``start web`` brings api back once every
    instance has started, not as soon as the first has."""
    gate = make_fifo(tmp_path, "gate")
    proc = boot(cli, tmp_path, env, services(web(), gated_api(gate)), "web", "api")
    assert proc.out is not None and proc.err is not None
    stop, said = client(env, "stop", "web")
    first = said.next_line() or ""
    assert sorted(first.removeprefix("stopping: ").split(", ")) == [
        "api",
        "web.1",
        "web.2",
        "web.3",
    ]
    proc.out.expect(r"^api +\| term$")
    assert states(env) == ONLY_API_STOPPING
    release(gate)
    assert sorted(said.read_to_eof().splitlines()[1:]) == [
        "stopped: api",
        "stopped: web.1",
        "stopped: web.2",
        "stopped: web.3",
    ]
    assert stop.wait(10) == 0
    assert set(states(env).values()) == {"stopped"}
    assert ok(env, "status").endswith("\nscaled: web 0/3 running\n")

    stopped = [wait_line(proc.err, rf"^pyinit: {n}: stopped") for n in ("web.1", "web.2", "web.3")]
    assert wait_line(proc.err, r"^pyinit: api: stopped") < min(stopped)
    mark = max(stopped) + 1
    ok(env, "start", "web")
    started = [wait_line(proc.err, rf"^pyinit: web\.{i}: started", start=mark) for i in (1, 2, 3)]
    assert wait_line(proc.err, r"^pyinit: api: started", start=mark) > max(started)
    assert set(states(env).values()) == {"running"}
    proc.signal(signal.SIGTERM)
    proc.out.expect(r"^api +\| term$")
    release(gate)
    assert proc.finish()[0] == 0


@pytest.mark.timeout(40)
def test_shutdown_stops_dependants_before_every_instance(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """On SIGTERM api stops first: while its TERM handler runs, no instance of web
    was told to stop. The termination report lists every instance."""
    gate = make_fifo(tmp_path, "gate")
    proc = boot(cli, tmp_path, env, services(web(), gated_api(gate)), "web", "api")
    assert proc.out is not None
    proc.signal(signal.SIGTERM)
    proc.out.expect(r"^api +\| term$")
    assert states(env) == ONLY_API_STOPPING
    release(gate)
    code, out, err = proc.finish()
    assert code == 0, err
    assert sorted(re.findall(r"^(web\.\d) +\| term$", out, re.M)) == ["web.1", "web.2", "web.3"]
    report = re.findall(r"^pyinit: report: (\S+): stopped", err, re.M)
    assert report == ["web.1", "web.2", "web.3", "api"]


@pytest.mark.timeout(40)
def test_scale_starts_and_removes_instances_leaving_the_others(
    cli: Runner, tmp_path: Path, env: dict[str, str]
) -> None:
    """``pyinit scale web 5`` starts web.4 and web.5 and waits until they are
    ready; ``scale web 2`` stops web.3..5 gracefully (their TERM handler runs) and
    waits until they are gone. web.1, web.2 and api keep their pid throughout.
    Scaling what is not a scaled service is an error (exit 1)."""
    proc = boot(cli, tmp_path, env, services(web(), api()), "web", "api")
    assert proc.out is not None
    before = pids(env)
    assert ok(env, "scale", "web", "5") == "starting: web.4, web.5\nready: web.4\nready: web.5\n"
    proc.out.expect_all(["web.4 | up web 4", "web.5 | up web 5"])
    assert list(instances(env)) == [f"web.{i}" for i in (1, 2, 3, 4, 5)]
    assert {n: p for n, p in pids(env).items() if n in before} == before
    assert ok(env, "status").endswith("\nscaled: web 5/5 running\n")

    assert ok(env, "scale", "web", "2") == (
        "stopping: web.3, web.4, web.5\ngone: web.3\ngone: web.4\ngone: web.5\n"
    )
    proc.out.expect_all([f"web.{i} | term" for i in (3, 4, 5)])
    kept = ("web.1", "web.2", "api")
    assert pids(env) == {n: before[n] for n in kept}
    assert status_doc(env)["scaled"] == {"web": 2}

    assert ok(env, "scale", "web", "3", "--no-wait") == "starting: web.3\n"
    ok(env, "wait", "--ready", "web.3", "--timeout", "10s")
    for args, message in [
        (("api", "2"), "api is not scaled; give it 'scale: 1' in the file to scale it at run time"),
        (("web.1", "2"), "web.1 is one instance of web; scale web"),
        (("nope", "2"), "no service named 'nope'"),
    ]:
        done = ctl(env, "scale", *args)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"pyinit: {message}\n")
    assert ctl(env, "scale", "web").returncode == 2
    assert ok(env, "scale", "web", "0") == (
        "stopping: web.1, web.2, web.3\ngone: web.1\ngone: web.2\ngone: web.3\n"
    )
    assert pids(env) == {"api": before["api"]}  # nothing left to wait for
    assert ok(env, "status").endswith("\nscaled: web 0/0 running\n")

    shut_down(proc)


@pytest.mark.timeout(40)
def test_reload_with_a_changed_scale(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """A reload with ``scale: 4`` in the file starts web.4 alone; after ``pyinit
    scale web 1`` a SIGHUP brings back the file's 4; ``scale: 2`` then removes
    web.3 and web.4. The instances kept (and api) never change pid."""
    proc = boot(cli, tmp_path, env, services(web(3), api()), "web", "api")
    assert proc.err is not None
    before = pids(env)
    write_config(tmp_path, services(web(4), api()))
    answer = ok(env, "reload")
    assert "added web.4" in answer and "web.1" not in answer, answer
    ok(env, "wait", "--ready", "web.4", "--timeout", "10s")
    assert {n: p for n, p in pids(env).items() if n in before} == before

    ok(env, "scale", "web", "1")
    assert list(instances(env)) == ["web.1"]
    proc.signal(signal.SIGHUP)
    proc.err.expect(r"^pyinit: reload: added web\.2, web\.3, web\.4$")
    ok(env, "wait", "--ready", "web", "--timeout", "10s")
    now = pids(env)
    assert {n: now[n] for n in ("web.1", "api")} == {n: before[n] for n in ("web.1", "api")}
    assert status_doc(env)["scaled"] == {"web": 4}

    write_config(tmp_path, services(web(2), api()))
    proc.signal(signal.SIGHUP)
    proc.err.expect(r"^pyinit: reload: removed web\.3, web\.4$")
    proc.err.expect_all(["pyinit: web.3: removed", "pyinit: web.4: removed"])
    assert pids(env) == {n: now[n] for n in ("web.1", "web.2", "api")}
    shut_down(proc)


@pytest.mark.timeout(40)
def test_metrics_and_termination_report(cli: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    """/metrics has a series per instance and, per scaled service, the count asked
    for and how many instances are alive; the termination report (stderr and
    $PYINIT_TERMINATION_LOG) lists every instance."""
    port = free_port()
    termination_log = tmp_path / "termination-log"
    env = {**env, "PYINIT_TERMINATION_LOG": str(termination_log)}
    config = write_config(tmp_path, services(web()))
    proc = start(cli, config, "--http", f"127.0.0.1:{port}", env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r"^pyinit: serving HTTP on ")
    ok(env, "wait", "--ready", "web", "--timeout", "10s")
    ok(env, "stop", "web.2")
    code, _, body = get(port, "/metrics")
    assert code == 200
    families = promtext.parse(body.decode())
    assert families["pyinit_service_up"].by("service") == {"web.1": 1, "web.2": 0, "web.3": 1}
    assert families["pyinit_service_replicas"].samples == [({"service": "web"}, 3)]
    assert families["pyinit_service_replicas_running"].samples == [({"service": "web"}, 2)]

    err = shut_down(proc)
    assert re.findall(r"^pyinit: report: (\S+): ", err, re.M) == ["web.1", "web.2", "web.3"]
    report = json.loads(termination_log.read_text())
    assert [s["name"] for s in report["services"]] == ["web.1", "web.2", "web.3"]


@pytest.mark.timeout(40)
@pytest.mark.parametrize(
    ("only", "running"),
    [("web", ["web.1", "web.2"]), ("api", ["web.1", "web.2", "api"])],
)
def test_only_selects_every_instance(
    cli: Runner, tmp_path: Path, env: dict[str, str], only: str, running: list[str]
) -> None:
    """``--only web`` runs every instance of web (not api); ``--only api`` pulls in
    every instance of web, which api depends on; other is left out either way."""
    other = f"\n  other:\n    command: {argv('sleep', '1000')}\n"
    config = write_config(tmp_path, services(web(2), api(), other))
    proc = start(cli, config, "--only", only, env=env, stdin=DEVNULL)
    assert proc.err is not None
    proc.err.expect(r": started \(pid \d+\)")
    ok(env, "wait", "--ready", *running, "--timeout", "10s")
    assert states(env) == {
        n: "running" if n in running else "stopped" for n in ("web.1", "web.2", "api", "other")
    }
    shut_down(proc)
