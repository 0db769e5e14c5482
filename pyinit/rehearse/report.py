"""The rehearsal's report: a verdict line, the facts with their consequence in a
container, and what to do about each problem; or the same facts as JSON.
Pure functions of RunFacts (unit-tested without processes)."""

from __future__ import annotations

import shlex
import statistics
from typing import Any

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
    passed,
    verdict,
)
from pyinit.signals import signal_name

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"})
ENTRYPOINT = 'ENTRYPOINT ["pyinit", "--"]'


def secs(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def label(proc: ProcFacts) -> str:
    role = "app" if proc.main else "worker"
    return f"{role} (pid {proc.info.ns_pid}, {proc.info.name})"


def _grace(facts: RunFacts) -> str:
    return f"the end of the {facts.timeout:g} s grace period"


def _ended_how(proc: ProcFacts, signum: int) -> str:
    """``exited 0 in 0.42 s``, ``was ended by SIGTERM's default action in ...``."""
    status, took = proc.status, secs(proc.exit_seconds)
    if status is None:
        return f"ended in {took}"
    if status.signal == signum:
        name = signal_name(signum)
        return f"was ended by {name}'s default action in {took} (exit {status.shell_code})"
    if status.signal is not None:
        return f"was killed by {signal_name(status.signal)} in {took} (exit {status.shell_code})"
    return f"exited {status.code} in {took}"


def _killed_reason(proc: ProcFacts, facts: RunFacts) -> str:
    sig = signal_name(facts.signum)
    if not proc.received(facts):
        return f"never received {sig} (only the app was signalled)"
    return {
        probe.IGNORED: f"ignored {sig}",
        probe.CAUGHT: f"was still in its {sig} handler",
        probe.BLOCKED: f"kept {sig} blocked",
        probe.DROPPED: f"ignored {sig} (as PID 1 with no handler, the kernel discarded it)",
        probe.DEFAULT_NOTHING: f"took no action on {sig}",
    }.get(proc.disposition(facts.signum), "was still running")


def disposition_line(proc: ProcFacts, facts: RunFacts) -> str:
    sig = signal_name(facts.signum)
    what = proc.disposition(facts.signum)
    text = {
        probe.CAUGHT: f"catches {sig}: yes, its handler decides how it stops",
        probe.IGNORED: f"ignores {sig}: it keeps running until the runtime SIGKILLs it",
        probe.BLOCKED: f"blocks {sig}: the signal waits until the process unblocks it",
        probe.DEFAULT: f"catches {sig}: no; its default action ends it at once, with no cleanup",
        probe.DEFAULT_NOTHING: f"catches {sig}: no; its default action does nothing",
        probe.DEFAULT_STOP: f"catches {sig}: no; its default action suspends it",
        probe.DROPPED: f"catches {sig}: no; as PID 1 it has no default action either, "
        "so the kernel discards the signal",
    }[what]
    sent = "" if proc.received(facts) else f" (not sent {sig}: outside the signalled group)"
    if not facts.to_group and not proc.main:
        sent = f" (not sent {sig}: only the app is signalled)"
    return f"{label(proc)} {text}{sent}"


def outcome_line(proc: ProcFacts, facts: RunFacts) -> str:
    if proc.outcome == KILLED_AT_DEADLINE:
        return (
            f"{label(proc)} {_killed_reason(proc, facts)} and was killed at {facts.timeout:.1f} s"
        )
    if proc.outcome == KILLED_WITH_PID1:
        return (
            f"{label(proc)} was still running when PID 1 exited at {secs(proc.exit_seconds)}: "
            "the kernel SIGKILLed it with the namespace"
        )
    return f"{label(proc)} {_ended_how(proc, facts.signum)}"


def summary(facts: RunFacts) -> str:
    """The verdict line."""
    sig = signal_name(facts.signum)
    main = facts.main
    kind = verdict(facts)
    if kind == NOT_READY:
        return f"FAIL: never became ready: {facts.not_ready} within {facts.ready_timeout:g} s"
    if kind == EXITED_EARLY:
        assert facts.early_status is not None
        return (
            f"FAIL: the app ended before the stop signal ({facts.early_status.describe()}, "
            f"after {secs(facts.ready_seconds)}); nothing to rehearse"
        )
    assert main is not None
    if kind == CLEAN:
        ended = _ended_how(main, facts.signum)
        return f"PASS: stops cleanly on {sig}: the app {ended}, nothing left running"
    if kind == LEFT_BEHIND:
        left = facts.left_behind()
        return (
            f"FAIL: as PID 1 the app {_ended_how(main, facts.signum)}, and the kernel "
            f"SIGKILLed the {_count(len(left))} it left running: {_names(left)}"
        )
    assert kind == KILLED
    if main.outcome == KILLED_AT_DEADLINE:
        if main.disposition(facts.signum) == probe.DROPPED:
            return (
                f"FAIL: as PID 1 your app ignores {sig}: it has no handler, and the kernel gives "
                f"PID 1 no default action; it was SIGKILLed at {_grace(facts)}"
            )
        return f"FAIL: the app {_killed_reason(main, facts)} and was SIGKILLed at {_grace(facts)}"
    killed = facts.killed()
    count = len(killed) + len(facts.late_killed)
    return (
        f"FAIL: the app {_ended_how(main, facts.signum)}, but {_count(count)} still ran at "
        f"{_grace(facts)} and was SIGKILLed: {_names(killed)}"
    ).rstrip(": ")


def _count(n: int) -> str:
    return f"{n} process" if n == 1 else f"{n} processes"


def _names(procs: list[ProcFacts]) -> str:
    return ", ".join(label(p) for p in procs)


def advice(facts: RunFacts) -> list[str]:
    """What to do about each problem found, most important first, no repeats."""
    kind = verdict(facts)
    tips: list[str] = []
    if kind == NOT_READY:
        tips.append(
            "check the readiness condition (--ready-port, --ready-log) or raise --ready-timeout"
        )
    if kind == EXITED_EARLY:
        tips.append("the app must keep running until it is stopped: see its output above")
    main = facts.main
    if main is None or kind in (NOT_READY, EXITED_EARLY):
        return tips
    sig = signal_name(facts.signum)
    if _shell_without_exec(facts):
        tips.append(
            "use `exec` in the shell entrypoint (`exec python app.py`): the app then gets the "
            "signal itself, and its exit code becomes the container's"
        )
    tips += _signal_tips(facts, sig)
    if facts.left_behind():
        tips.append(
            f"run under pyinit as ENTRYPOINT ({ENTRYPOINT}): when the app exits, pyinit stops "
            "what it left gracefully; or have the app wait for its workers before exiting"
        )
    if facts.late_killed:
        tips.append(
            "do not start new processes while stopping, or stop them within the grace period"
        )
    plain = main.disposition(facts.signum) == probe.DEFAULT and main.received(facts)
    if kind == CLEAN and plain and not _shell_without_exec(facts):
        tips.append(
            f"if the app has anything to flush or close, handle {sig}: the default action "
            "ends it mid-write"
        )
    return list(dict.fromkeys(tips))


def _signal_tips(facts: RunFacts, sig: str) -> list[str]:
    """What to do about how the processes SIGKILLed took the stop signal."""
    killed = facts.killed()
    tips: list[str] = []
    dropped = [p for p in killed if p.disposition(facts.signum) == probe.DROPPED]
    if dropped or any(not p.received(facts) for p in killed):
        tips.append(
            f"run under pyinit as ENTRYPOINT ({ENTRYPOINT}): it handles {sig} as PID 1 and "
            "forwards it to the app's whole process group"
        )
    if dropped:
        tips.append(f"handle {sig} in the app (a handler that exits works even as PID 1)")
    ignoring = [p for p in killed if p.disposition(facts.signum) == probe.IGNORED]
    if any(p.main for p in ignoring):
        tips.append(f"handle {sig} in the app instead of ignoring it")
    workers = [p for p in ignoring if not p.main]
    if workers:
        tips.append(
            f"handle {sig} in {_names(workers)} instead of ignoring it, or have the app "
            "stop its workers before it exits"
        )
    if any(p.disposition(facts.signum) == probe.BLOCKED for p in killed):
        tips.append(f"unblock {sig} (a thread or library that blocks it keeps it pending)")
    if any(p.disposition(facts.signum) == probe.CAUGHT and p.received(facts) for p in killed):
        tips.append(
            "lower the shutdown time, or raise the grace period (docker stop -t, Compose "
            "stop_grace_period, Kubernetes terminationGracePeriodSeconds)"
        )
    return tips


def _shell_without_exec(facts: RunFacts) -> bool:
    """The app is a shell that runs the real program as its child."""
    main = facts.main
    if main is None:
        return False
    # A script started by its #! line is named after the script: look at argv[0].
    argv0 = main.info.cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
    if main.info.name not in SHELLS and argv0 not in SHELLS:
        return False
    return any(not p.main and p.info.ppid == main.info.pid for p in facts.processes)


def text_report(facts: RunFacts) -> str:
    lines = [summary(facts)]
    sig = signal_name(facts.signum)
    if facts.ready and facts.early_status is None:
        lines.append("")
        where = "as PID 1 of its own PID namespace (no init)" if facts.as_pid1 else "under pyinit"
        target = "its process group" if facts.to_group else "the app alone"
        lines.append(
            f"ran {_command(facts)} {where}; up after {secs(facts.ready_seconds)} "
            f"({facts.ready_how}); sent {sig} to {target}"
        )
        lines += [disposition_line(p, facts) for p in facts.processes]
        lines += [outcome_line(p, facts) for p in facts.processes]
        lines += [
            f"a process started while stopping ({info.name}, pid {info.ns_pid}) was still "
            f"running and was killed at {facts.timeout:.1f} s"
            for info in facts.late_killed
        ]
        status = facts.main_status
        if status is not None:
            lines.append(f"exit code {exit_meaning(status)}")
        if facts.all_gone_seconds is not None and passed(facts):
            whose = facts.grace_source
            default = f" ({whose}'s default)" if whose in ("Docker", "Kubernetes") else ""
            lines.append(
                f"every process had ended {secs(facts.all_gone_seconds)} after {sig}, within "
                f"the {facts.timeout:g} s grace period{default}"
            )
    tips = advice(facts)
    if tips:
        lines += ["", "What to do:"] + [f"- {tip}" for tip in tips]
    return "\n".join(lines) + "\n"


def _command(facts: RunFacts) -> str:
    text = shlex.join(facts.command)
    return f"'{text}'" if len(text) <= 60 else f"'{text[:57]}...'"


def json_facts(facts: RunFacts) -> dict[str, Any]:
    status = facts.main_status or facts.early_status
    left = [
        {"pid": p.info.pid, "name": p.info.name, "outcome": p.outcome}
        for p in facts.processes
        if p.outcome in (KILLED_AT_DEADLINE, KILLED_WITH_PID1)
    ] + [{"pid": i.pid, "name": i.name, "outcome": KILLED_AT_DEADLINE} for i in facts.late_killed]
    return {
        "verdict": verdict(facts),
        "passed": passed(facts),
        "summary": summary(facts),
        "command": facts.command,
        "signal": signal_name(facts.signum),
        "sent_to": "group" if facts.to_group else "app",
        "as_pid1": facts.as_pid1,
        "timeout_seconds": facts.timeout,
        "ready": facts.ready,
        "ready_seconds": round(facts.ready_seconds, 3),
        "exit_code": facts.exit_code,
        "exit_meaning": None if status is None else exit_meaning(status),
        "exit_seconds": _round(facts.main_exit_seconds),
        "all_gone_seconds": _round(facts.all_gone_seconds),
        "handled": facts.handled,
        "left_running": left,
        "processes": [_json_process(p, facts) for p in facts.processes],
        "advice": advice(facts),
    }


def _json_process(proc: ProcFacts, facts: RunFacts) -> dict[str, Any]:
    info = proc.info
    status = proc.status
    return {
        "pid": info.pid,
        "ns_pid": info.ns_pid,
        "ppid": info.ppid,
        "name": info.name,
        "cmdline": info.cmdline,
        "role": "app" if proc.main else "worker",
        "catches": _signal_names(info.caught),
        "blocks": _signal_names(info.blocked),
        "ignores": _signal_names(info.ignored),
        "stop_signal": proc.disposition(facts.signum),
        "received": proc.received(facts),
        "outcome": proc.outcome,
        "exit_seconds": _round(proc.exit_seconds),
        "exit_code": None if status is None else status.shell_code,
    }


def _signal_names(nums: frozenset[int]) -> list[str]:
    return [signal_name(n) for n in sorted(nums)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- --repeat ---------------------------------------------------------------
def spread(runs: list[RunFacts]) -> dict[str, float] | None:
    times = [r.main_exit_seconds for r in runs if r.main_exit_seconds is not None]
    if not times:
        return None
    return {
        "min": round(min(times), 3),
        "median": round(statistics.median(times), 3),
        "max": round(max(times), 3),
        "spread": round(max(times) - min(times), 3),
    }


def repeat_summary(runs: list[RunFacts]) -> str:
    good = sum(passed(r) for r in runs)
    sig = signal_name(runs[0].signum)
    head = "PASS" if good == len(runs) else "FAIL"
    text = f"{head}: {good} of {len(runs)} runs stopped cleanly on {sig}"
    times = spread(runs)
    if times is not None:
        text += (
            f"; exit times {times['min']:.2f}-{times['max']:.2f} s (median {times['median']:.2f} s)"
        )
    return text


def repeat_text(runs: list[RunFacts]) -> str:
    """The verdict over all runs, then the report of the first failing run (or the
    last), then the spread: shutdown races show up as variance."""
    shown = next((r for r in runs if not passed(r)), runs[-1])
    index = runs.index(shown) + 1
    lines = [repeat_summary(runs), "", f"run {index} of {len(runs)}: {text_report(shown)}"]
    times = spread(runs)
    if times is not None:
        lines.append(
            f"exit times over {len(runs)} runs: min {times['min']:.2f} s, median "
            f"{times['median']:.2f} s, max {times['max']:.2f} s (spread {times['spread']:.2f} s)"
        )
        verdicts = {verdict(r) for r in runs}
        if len(verdicts) > 1 or times["spread"] > max(0.5, times["median"]):
            lines.append("the runs differ: a race in the shutdown path (workers, flushes, locks)")
    return "\n".join(lines) + "\n"


def repeat_json(runs: list[RunFacts]) -> dict[str, Any]:
    worst = next((r for r in runs if not passed(r)), runs[-1])
    return {
        "verdict": verdict(worst),
        "passed": all(passed(r) for r in runs),
        "summary": repeat_summary(runs),
        "repeat": len(runs),
        "exit_seconds": spread(runs),
        "runs": [json_facts(r) for r in runs],
    }
