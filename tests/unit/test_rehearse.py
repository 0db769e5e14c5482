"""``pyinit rehearse``'s pure parts: signal masks, dispositions, the verdict, the
report's text and JSON, the command line (issue 18)."""

from __future__ import annotations

import signal

import pytest

from pyinit.errors import UsageError
from pyinit.reaper import ExitStatus
from pyinit.rehearse import probe
from pyinit.rehearse.facts import (
    CLEAN,
    EXITED_EARLY,
    KILLED,
    KILLED_AT_DEADLINE,
    KILLED_WITH_PID1,
    LEFT_BEHIND,
    NOT_READY,
    ProcFacts,
    RunFacts,
    exit_meaning,
    killed_with_pid1,
    verdict,
)
from pyinit.rehearse.options import HelpRequested, parse_options
from pyinit.rehearse.report import advice, json_facts, repeat_json, summary, text_report

TERM = int(signal.SIGTERM)
STATUS = """\
Name:\tpython3
State:\tS (sleeping)
PPid:\t41
NSpid:\t1234\t7
SigBlk:\t0000000000000000
SigIgn:\t0000000001001000
SigCgt:\t0000000000004002
"""


def test_decode_mask() -> None:
    assert probe.decode_mask("0000000000004002") == {signal.SIGINT, signal.SIGTERM}
    assert probe.decode_mask("0000000001001000") == {signal.SIGPIPE, signal.SIGXFSZ}
    assert probe.decode_mask("0") == frozenset()
    assert probe.decode_mask("8000000000000000") == {64}


def test_parse_status() -> None:
    info = probe.parse_status(1234, STATUS, "python3 app.py", pgid=1234)
    assert (info.pid, info.ns_pid, info.ppid, info.name) == (1234, 7, 41, "python3")
    assert TERM in info.caught and TERM not in info.ignored
    assert not info.is_ns_init


def info(
    caught: set[int] = set(),  # noqa: B006 - read only
    ignored: set[int] = set(),  # noqa: B006
    blocked: set[int] = set(),  # noqa: B006
    pid: int = 100,
    ns_pid: int | None = None,
    ppid: int = 1,
    name: str = "app",
    pgid: int | None = None,
) -> probe.ProcInfo:
    return probe.ProcInfo(
        pid=pid,
        ns_pid=pid if ns_pid is None else ns_pid,
        ppid=ppid,
        pgid=pid if pgid is None else pgid,
        name=name,
        cmdline=name,
        caught=frozenset(caught),
        blocked=frozenset(blocked),
        ignored=frozenset(ignored),
    )


@pytest.mark.parametrize(
    ("proc", "signum", "expected"),
    [
        (info(caught={TERM}), TERM, probe.CAUGHT),
        (info(ignored={TERM}), TERM, probe.IGNORED),
        (info(blocked={TERM}), TERM, probe.BLOCKED),
        (info(blocked={TERM}, caught={TERM}), TERM, probe.BLOCKED),
        (info(), TERM, probe.DEFAULT),
        (info(), int(signal.SIGWINCH), probe.DEFAULT_NOTHING),
        (info(), int(signal.SIGTSTP), probe.DEFAULT_STOP),
        (info(ns_pid=1), TERM, probe.DROPPED),
        (info(ns_pid=1, caught={TERM}), TERM, probe.CAUGHT),
        (info(ns_pid=1, ignored={TERM}), TERM, probe.IGNORED),
    ],
)
def test_disposition(proc: probe.ProcInfo, signum: int, expected: str) -> None:
    assert probe.disposition(proc, signum) == expected


def facts(*procs: ProcFacts, **fields: object) -> RunFacts:
    run = RunFacts(
        command=["app"],
        signum=TERM,
        to_group=True,
        timeout=10.0,
        grace_source="Docker",
        as_pid1=False,
        ready_how="--after 1s",
    )
    run.processes = list(procs)
    for key, value in fields.items():
        setattr(run, key, value)
    return run


def app(outcome: str = "exited", status: ExitStatus | None = None, **kw: object) -> ProcFacts:
    return ProcFacts(
        info(**kw),  # type: ignore[arg-type]
        main=True,
        outcome=outcome,
        exit_seconds=0.42,
        status=status or ExitStatus(code=0),
    )


def worker(outcome: str = "exited", **kw: object) -> ProcFacts:
    kw.setdefault("pid", 101)
    kw.setdefault("ppid", 100)
    kw.setdefault("pgid", 100)
    kw.setdefault("name", "worker")
    return ProcFacts(info(**kw), main=False, outcome=outcome, exit_seconds=0.1)  # type: ignore[arg-type]


def test_verdicts() -> None:
    assert verdict(facts(app())) == CLEAN
    assert verdict(facts(app(KILLED_AT_DEADLINE))) == KILLED
    assert verdict(facts(app(), worker(KILLED_AT_DEADLINE))) == KILLED
    assert verdict(facts(app(), worker(KILLED_WITH_PID1), as_pid1=True)) == LEFT_BEHIND
    assert verdict(facts(app(), late_killed=[info(pid=300)])) == KILLED
    assert verdict(facts(ready=False)) == NOT_READY
    assert verdict(facts(early_status=ExitStatus(code=1))) == EXITED_EARLY


@pytest.mark.parametrize(
    ("status", "ended_before_pid1", "expected"),
    [
        (ExitStatus(signal=signal.SIGKILL), False, True),  # the namespace took it down
        (ExitStatus(code=0), False, False),  # stopped by the app just before it exited
        (ExitStatus(signal=signal.SIGKILL), True, False),  # the app SIGKILLed it itself
        (None, False, True),  # no status (kernel < 6.15): timing decides
        (None, True, False),
    ],
)
def test_killed_with_pid1(
    status: ExitStatus | None, ended_before_pid1: bool, expected: bool
) -> None:
    assert killed_with_pid1(status, ended_before_pid1) is expected


def test_exit_meaning() -> None:
    assert exit_meaning(ExitStatus(code=0)) == "0: a clean exit"
    assert exit_meaning(ExitStatus(signal=15)) == "143 = 128+15: ended by SIGTERM"
    assert exit_meaning(ExitStatus(signal=9)).startswith("137 = 128+9: killed by SIGKILL")
    assert "how a shell reports a child ended by SIGTERM" in exit_meaning(ExitStatus(code=143))


def test_report_of_a_clean_stop() -> None:
    run = facts(app(caught={TERM}, name="python"), all_gone_seconds=0.42)
    run.main_status = ExitStatus(code=0)
    text = text_report(run)
    lines = text.splitlines()
    assert lines[0] == (
        "PASS: stops cleanly on SIGTERM: the app exited 0 in 0.42 s, nothing left running"
    )
    assert "app (pid 100, python) catches SIGTERM: yes, its handler decides how it stops" in lines
    assert "app (pid 100, python) exited 0 in 0.42 s" in lines
    assert "What to do:" not in lines


def test_report_of_a_worker_killed_at_the_deadline() -> None:
    run = facts(app(caught={TERM}), worker(KILLED_AT_DEADLINE, ignored={TERM}))
    lines = text_report(run).splitlines()
    assert lines[0].startswith("FAIL: the app exited 0 in 0.42 s, but 1 process still ran")
    assert "worker (pid 101, worker) ignored SIGTERM and was killed at 10.0 s" in lines
    assert any("handle SIGTERM in worker (pid 101, worker)" in line for line in lines)


def test_report_as_pid1_without_handler() -> None:
    main = app(KILLED_AT_DEADLINE, ExitStatus(signal=9), ns_pid=1, name="sleep")
    run = facts(main, as_pid1=True, to_group=False)
    assert summary(run) == (
        "FAIL: as PID 1 your app ignores SIGTERM: it has no handler, and the kernel gives "
        "PID 1 no default action; it was SIGKILLed at the end of the 10 s grace period"
    )
    tips = advice(run)
    assert any("ENTRYPOINT" in tip for tip in tips)
    assert any(tip.startswith("handle SIGTERM in the app") for tip in tips)


def test_report_shell_without_exec() -> None:
    shell = app(status=ExitStatus(signal=TERM), name="sh")
    child = worker(KILLED_AT_DEADLINE, caught={TERM}, name="python", pgid=100)
    run = facts(shell, child, to_group=False)
    tips = advice(run)
    assert tips[0].startswith("use `exec` in the shell entrypoint")
    assert "never received SIGTERM" in text_report(run)


def test_shell_script_named_after_itself_is_a_shell() -> None:
    script = ProcFacts(
        probe.ProcInfo(100, 1, 0, 100, "entrypoint.sh", "/bin/sh ./entrypoint.sh",
                       frozenset(), frozenset(), frozenset()),
        main=True, status=ExitStatus(signal=TERM),
    )  # fmt: skip
    run = facts(script, worker(caught={TERM}, name="python"))
    assert advice(run)[0].startswith("use `exec` in the shell entrypoint")


def test_slow_shutdown_advice() -> None:
    run = facts(app(KILLED_AT_DEADLINE, ExitStatus(signal=9), caught={TERM}))
    assert summary(run) == (
        "FAIL: the app was still in its SIGTERM handler and was SIGKILLed at the end of the "
        "10 s grace period"
    )
    assert any("raise the grace period" in tip for tip in advice(run))


def test_json_facts() -> None:
    run = facts(app(caught={TERM}), worker(KILLED_AT_DEADLINE, ignored={TERM}))
    run.main_status = ExitStatus(code=0)
    run.main_exit_seconds = 0.4242
    data = json_facts(run)
    assert data["verdict"] == "killed" and data["passed"] is False
    assert data["exit_code"] == 0 and data["exit_seconds"] == 0.424
    assert data["signal"] == "SIGTERM" and data["handled"] is True
    assert data["left_running"] == [{"pid": 101, "name": "worker", "outcome": KILLED_AT_DEADLINE}]
    assert data["processes"][0]["catches"] == ["SIGTERM"]
    assert data["processes"][1]["stop_signal"] == "ignored"


def test_repeat_json_spread() -> None:
    runs = []
    for seconds in (0.2, 0.5, 0.3):
        run = facts(app())
        run.main_exit_seconds = seconds
        runs.append(run)
    data = repeat_json(runs)
    assert data["exit_seconds"] == {"min": 0.2, "median": 0.3, "max": 0.5, "spread": 0.3}
    assert data["passed"] is True and data["repeat"] == 3


# -- the command line ------------------------------------------------------------------


def test_options_defaults() -> None:
    opts = parse_options(["--", "app", "-x"])
    assert opts.command == ["app", "-x"]
    assert (opts.signum, opts.timeout, opts.after, opts.ready_timeout) == (TERM, 10.0, 1.0, 30.0)


def test_options_kubernetes_and_timeout() -> None:
    assert parse_options(["--kubernetes", "app"]).timeout == 30.0
    assert parse_options(["--timeout", "5s", "--kubernetes", "app"]).timeout == 5.0
    assert parse_options(["--kubernetes", "--timeout", "5s", "app"]).timeout == 5.0


def test_options_signals() -> None:
    assert parse_options(["--stop-signal", "SIGQUIT", "app"]).signum == signal.SIGQUIT
    assert parse_options(["--signal", "INT", "--stop-signal", "2", "app"]).signum == 2


def test_options_ready_port() -> None:
    assert parse_options(["--ready-port", "8000", "app"]).ready_port == ("127.0.0.1", 8000)
    assert parse_options(["--ready-port", "::1:80", "app"]).ready_port == ("::1", 80)


@pytest.mark.parametrize(
    "args",
    [
        ["--signal", "NOPE", "app"],
        ["--signal", "KILL", "app"],
        ["--signal", "TERM", "--stop-signal", "INT", "app"],
        ["--timeout", "10x", "app"],
        ["--after", "1s", "--ready-port", "80", "app"],
        ["--ready-log", "(", "app"],
        ["--repeat", "x", "app"],
        ["--ready-port", "0", "app"],
        [],
    ],
)
def test_options_usage_errors(args: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_options(args)


def test_options_help() -> None:
    with pytest.raises(HelpRequested):
        parse_options(["--help"])
