"""``pyinit rehearse`` end to end (issue 18): small apps that take SIGTERM in each
way the report knows (tests/helpers/stopper.py), rehearsed by the real CLI.

Rehearse need not be PID 1 (it is a subreaper), so these run it directly. Apps
print "ready" once set up and the rehearsal waits on ``--ready-log ready``;
timeouts are short (1-2 s) to keep the slow cases to a couple of seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.helpers.cli import PYINIT, Done, Runner, helper
from tests.helpers.net import free_port

pytestmark = pytest.mark.timeout(30)

READY = ["--ready-log", "ready"]


def stopper(mode: str, *args: object) -> list[str]:
    return helper("stopper.py", mode, *args)


def rehearse(cli: Runner, *args: str | list[str], command: list[str]) -> tuple[Done, Any]:
    """Run ``pyinit rehearse --json ARGS -- COMMAND``; the result and its JSON."""
    flat: list[str] = []
    for arg in args:
        flat += arg if isinstance(arg, list) else [arg]
    done = cli.run(["rehearse", "--json", *flat, "--", *command], namespace=False)
    return done, json.loads(done.out)


def by_role(data: Any, role: str) -> list[dict[str, Any]]:
    return [p for p in data["processes"] if p["role"] == role]


# -- the six cases of the issue -----------------------------------------------------


def test_clean_term_handler_passes(cli: Runner) -> None:
    done, data = rehearse(cli, READY, command=stopper("clean"))
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["passed"] is True
    assert data["signal"] == "SIGTERM" and data["sent_to"] == "group"
    assert data["exit_code"] == 0 and data["handled"] is True
    assert data["left_running"] == []
    assert data["exit_seconds"] < 5
    [app] = by_role(data, "app")
    assert "SIGTERM" in app["catches"] and app["stop_signal"] == "caught"
    assert app["outcome"] == "exited"


def test_app_ignoring_term_is_killed_at_the_deadline(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "1s", command=stopper("ignore"))
    assert done.code == 1, done
    assert data["verdict"] == "killed" and data["handled"] is False
    assert data["exit_code"] == 137
    assert data["exit_seconds"] == 1.0
    [app] = by_role(data, "app")
    assert "SIGTERM" in app["ignores"] and app["stop_signal"] == "ignored"
    assert data["left_running"] == [
        {"pid": app["pid"], "name": app["name"], "outcome": "killed-at-deadline"}
    ]


def test_shell_without_exec_alone_leaves_its_child_to_be_killed(cli: Runner) -> None:
    # As `docker stop` signals PID 1 only: sh dies of SIGTERM, python never hears it.
    shell = ["sh", "-c", f"{' '.join(stopper('clean'))}; echo done"]
    done, data = rehearse(cli, READY, "--timeout", "1s", "--single-child", command=shell)
    assert done.code == 1, done
    assert data["verdict"] == "killed" and data["sent_to"] == "app"
    [app] = by_role(data, "app")
    [child] = by_role(data, "worker")
    assert app["name"] == "sh" and app["stop_signal"] == "default"
    assert app["exit_code"] == 143 and app["outcome"] == "exited"
    assert child["received"] is False and child["outcome"] == "killed-at-deadline"
    assert any("`exec`" in tip for tip in data["advice"])


def test_shell_without_exec_under_pyinit_group_forwarding_stops(cli: Runner) -> None:
    shell = ["sh", "-c", f"{' '.join(stopper('clean'))}; echo done"]
    done, data = rehearse(cli, READY, "--timeout", "2s", command=shell)
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["exit_code"] == 143
    [child] = by_role(data, "worker")
    assert child["received"] is True and child["exit_code"] == 0
    assert any("`exec`" in tip for tip in data["advice"])


def test_background_worker_ignoring_term_is_left_running(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "1s", command=stopper("worker"))
    assert done.code == 1, done
    assert data["verdict"] == "killed"
    assert data["exit_code"] == 0 and data["handled"] is True
    [worker] = by_role(data, "worker")
    assert worker["stop_signal"] == "ignored" and worker["received"] is True
    assert [p["pid"] for p in data["left_running"]] == [worker["pid"]]


def test_slow_shutdown_past_the_timeout_is_killed(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "1s", command=stopper("slow", 10))
    assert done.code == 1, done
    assert data["verdict"] == "killed" and data["exit_code"] == 137
    [app] = by_role(data, "app")
    assert app["stop_signal"] == "caught" and app["outcome"] == "killed-at-deadline"
    assert any("grace period" in tip for tip in data["advice"])


def test_slow_shutdown_within_the_timeout_passes(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "3s", command=stopper("slow", 0.3))
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["exit_code"] == 0
    assert 0.3 <= data["exit_seconds"] < 3


def test_no_handler_as_pid1_is_dropped_and_killed(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "1s", "--as-pid1", command=stopper("plain"))
    assert done.code == 1, done
    assert data["verdict"] == "killed" and data["as_pid1"] is True
    assert data["exit_code"] == 137 and data["handled"] is False
    [app] = by_role(data, "app")
    assert app["ns_pid"] == 1 and app["stop_signal"] == "dropped"
    assert "SIGTERM" not in app["catches"]
    assert data["summary"].startswith("FAIL: as PID 1 your app ignores SIGTERM")


def test_no_handler_under_pyinit_ends_by_the_default_action(cli: Runner) -> None:
    # The same app without --as-pid1: SIGTERM's default action ends it (a pass).
    done, data = rehearse(cli, READY, "--timeout", "2s", command=stopper("plain"))
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["exit_code"] == 143
    [app] = by_role(data, "app")
    assert app["stop_signal"] == "default" and app["ns_pid"] == app["pid"]


def test_plain_sleep_ended_by_term_counts_as_clean(cli: Runner) -> None:
    done, data = rehearse(cli, "--after", "0.2s", command=["sleep", "30"])
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["exit_code"] == 143


# -- --as-pid1: what the namespace does to the processes PID 1 leaves ----------------


def test_as_pid1_worker_is_killed_with_pid1(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "2s", "--as-pid1", command=stopper("worker"))
    assert done.code == 1, done
    assert data["verdict"] == "left-behind" and data["exit_code"] == 0
    [worker] = by_role(data, "worker")
    assert worker["received"] is False and worker["outcome"] == "killed-with-pid1"


def test_as_pid1_app_that_stops_its_worker_passes(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--timeout", "2s", "--as-pid1", command=stopper("team"))
    assert done.code == 0, done
    assert data["verdict"] == "clean"
    [worker] = by_role(data, "worker")
    assert worker["outcome"] == "exited"


# -- readiness, signals, repeat, text -----------------------------------------------


def test_ready_port(cli: Runner) -> None:
    port = free_port()
    done, data = rehearse(cli, "--ready-port", str(port), command=stopper("listen", port))
    assert done.code == 0, done
    assert data["verdict"] == "clean" and data["ready"] is True


def test_ready_port_that_never_opens(cli: Runner) -> None:
    port = free_port()
    done, data = rehearse(
        cli, "--ready-port", str(port), "--ready-timeout", "0.5s", command=["sleep", "30"]
    )
    assert done.code == 1, done
    assert data["verdict"] == "not-ready" and data["ready"] is False
    assert data["summary"] == f"FAIL: never became ready: port {port} did not open within 0.5 s"
    assert done.elapsed < 10


def test_stop_signal_and_kubernetes_grace(cli: Runner) -> None:
    done, data = rehearse(
        cli, "--after", "0.2s", "--stop-signal", "SIGINT", "--kubernetes", command=["sleep", "30"]
    )
    assert done.code == 0, done
    assert data["signal"] == "SIGINT" and data["timeout_seconds"] == 30.0
    assert data["exit_code"] == 130


def test_repeat_reports_the_spread(cli: Runner) -> None:
    done, data = rehearse(cli, READY, "--repeat", "3", command=stopper("clean"))
    assert done.code == 0, done
    assert data["repeat"] == 3 and len(data["runs"]) == 3
    spread = data["exit_seconds"]
    assert spread["min"] <= spread["median"] <= spread["max"]
    assert spread["spread"] == pytest.approx(spread["max"] - spread["min"], abs=0.002)


def test_text_report_first_line_is_the_verdict(cli: Runner) -> None:
    done = cli.run(
        ["rehearse", *READY, "--timeout", "1s", "--", *stopper("worker")], namespace=False
    )
    assert done.code == 1, done
    lines = done.out.splitlines()
    assert lines[0].startswith("FAIL: the app exited 0 in ")
    assert any(line.endswith("ignored SIGTERM and was killed at 1.0 s") for line in lines)
    assert "What to do:" in lines


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("as_pid1", [[], ["--as-pid1"]])
def test_command_not_found(cli: Runner, as_pid1: list[str]) -> None:
    done = cli.run(["rehearse", *as_pid1, "--", "no-such-command-xyz"], namespace=False)
    assert done.code == 127
    assert done.out == ""
    assert done.err.splitlines() == [
        "pyinit rehearse: cannot run 'no-such-command-xyz': No such file or directory"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--signal", "NOPE"],
        ["--stop-signal", "99"],
        ["--timeout", "10x"],
        ["--after", "-1s"],
        ["--ready-timeout", "soon"],
        ["--repeat", "0"],
        ["--ready-port", "70000"],
        ["--after", "1s", "--ready-log", "x"],
    ],
)
def test_usage_errors(cli: Runner, args: list[str]) -> None:
    done = cli.run(["rehearse", *args, "--", "true"], namespace=False)
    assert done.code == 2, done
    assert done.err.startswith("pyinit rehearse: ")
    assert "Traceback" not in done.err


def test_as_pid1_without_pid_namespaces(cli: Runner) -> None:
    # A user namespace whose limit on PID namespaces is 0: unshare(CLONE_NEWPID)
    # fails as it would where namespaces are not allowed.
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    script = 'echo 0 > /proc/sys/user/max_pid_namespaces && exec "$@"'
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh"]
    argv += [*PYINIT, "rehearse", "--as-pid1", "--", "true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if "max_pid_namespaces" in done.stderr and done.returncode != 2:
        pytest.skip(f"cannot lower max_pid_namespaces here: {done.stderr.strip()}")
    assert done.returncode == 2, done
    [line] = done.stderr.splitlines()
    assert line.startswith("pyinit rehearse: --as-pid1: PID namespaces are not available")
