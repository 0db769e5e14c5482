"""PID 1 duties shared by every face of pyinit: native, ``tini`` and ``dumb-init``.

Where the real tool is installed, the same command line is run under it too and
the exit codes must agree (differential tests).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Runner, helper, real_tool
from tests.helpers.commands import expect_ready, recorder, sh
from tests.helpers.deadlines import wait_until
from tests.helpers.procs import proc_status

pytestmark = pytest.mark.timeout(20)

FACES = [None, "tini", "dumb-init"]
DROP_INS = ["tini", "dumb-init"]


def face_id(face: str | None) -> str:
    return face or "pyinit"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("face", DROP_INS)
def test_orphans_reaped(cli: Runner, face: str) -> None:
    """As PID 1, the drop-ins reap every orphan too: no zombie is left."""
    done = cli.run(["--", *helper("orphans.py", 500)], personality=face, timeout=25)
    assert (done.code, done.out) == (0, "orphans 500 zombies 0 others 0")


def _dirty() -> None:
    """What a launcher may leave behind (nohup ignores HUP): for preexec_fn."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


def _signal_state(out: str) -> list[int]:
    """SigBlk, SigIgn and SigCgt of a ``cat /proc/self/status``."""
    fields = dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
    return [int(fields[k], 16) for k in ("SigBlk", "SigIgn", "SigCgt")]


def _bits(*signums: int) -> int:
    return sum(1 << (s - 1) for s in signums)


@pytest.mark.parametrize("program", ["pyinit", "dumb-init", "real dumb-init"])
def test_cmd_starts_with_clean_signal_state(cli: Runner, program: str) -> None:
    """pyinit and dumb-init start CMD with an empty mask and nothing ignored or
    caught, whatever they inherited."""
    if program == "real dumb-init":
        done = cli.run(
            ["cat", "/proc/self/status"], program=[real_tool("dumb-init")], preexec_fn=_dirty
        )
    else:
        face = None if program == "pyinit" else program
        done = cli.run(["cat", "/proc/self/status"], personality=face, preexec_fn=_dirty)
    assert done.code == 0
    assert _signal_state(done.out) == [0, 0, 0]


@pytest.mark.parametrize("program", ["ours", "real"])
def test_tini_hands_cmd_the_signal_state_it_inherited(cli: Runner, program: str) -> None:
    """Under the tini name, CMD gets the mask and the ignored signals tini was
    started with (nohup tini -- app keeps HUP ignored), TTIN included, which tini
    ignores for itself meanwhile; nothing is caught."""
    kwargs = {"personality": "tini"} if program == "ours" else {"program": [real_tool("tini")]}
    done = cli.run(["--", "cat", "/proc/self/status"], preexec_fn=_dirty, **kwargs)  # type: ignore[arg-type]
    assert done.code == 0
    ignored = _bits(signal.SIGHUP, signal.SIGQUIT, signal.SIGTTIN)
    assert _signal_state(done.out) == [_bits(signal.SIGUSR1), ignored, 0]


@pytest.mark.parametrize("program", ["ours", "real"])
def test_tini_cmd_starts_clean_from_a_clean_start(cli: Runner, program: str) -> None:
    """From a clean start, tini's CMD is clean too: TTIN/TTOU, which tini ignores
    for itself, are default again in CMD."""
    kwargs = {"personality": "tini"} if program == "ours" else {"program": [real_tool("tini")]}
    done = cli.run(["--", "cat", "/proc/self/status"], **kwargs)  # type: ignore[arg-type]
    assert done.code == 0
    assert _signal_state(done.out) == [0, 0, 0]


@pytest.mark.parametrize("face", [None, "dumb-init"], ids=face_id)
def test_blocked_signal_still_forwarded(cli: Runner, face: str | None) -> None:
    """A signal blocked by whoever started the init is still received and forwarded."""
    usr1 = int(signal.SIGUSR1)
    proc = cli.start(
        [*recorder(usr1)],
        personality=face,
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {usr1}),
    )
    expect_ready(proc.out, ["cmd"])
    proc.signal(usr1)
    proc.out.expect(f"^cmd sig {usr1}$")
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("program", ["ours", "real"])
def test_tini_forwards_a_blocked_signal_that_stays_blocked_in_cmd(
    cli: Runner, program: str
) -> None:
    """tini takes a signal its launcher blocked and forwards it; CMD inherited the
    block, so there the signal waits, pending."""
    usr1 = int(signal.SIGUSR1)
    kwargs = {"personality": "tini"} if program == "ours" else {"program": [real_tool("tini")]}
    proc = cli.start(
        ["--", *recorder(usr1)],
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {usr1}),
        **kwargs,  # type: ignore[arg-type]
    )
    expect_ready(proc.out, ["cmd"])
    (cmd,) = proc.lineage(1)
    proc.signal(usr1)
    wait_until(
        lambda: int(proc_status(cmd).get("ShdPnd", "0"), 16) & (1 << (usr1 - 1)),
        "SIGUSR1 pending in CMD",
    )
    assert f"cmd sig {usr1}" not in proc.out.lines
    assert proc.finish()[0] == 0


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_no_leaked_fds(cli: Runner, face: str | None) -> None:
    """CMD sees only 0, 1, 2 (and ls's own directory fd)."""
    done = cli.run(["ls", "/proc/self/fd"], personality=face)
    assert sorted(done.out.split()) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("face", FACES, ids=face_id)
def test_term_to_init_kills_cmd_143(cli: Runner, face: str | None) -> None:
    """SIGTERM to the init reaches CMD; it dies of it and the init exits 143."""
    proc = cli.start(sh("echo ready; exec sleep 30"), personality=face)
    proc.out.expect("^ready$")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 143


def _no_shebang(tmp_path: Path) -> str:
    script = tmp_path / "plain"
    script.write_text("exit 5\n")
    script.chmod(0o755)
    return str(script)


def _not_executable(tmp_path: Path) -> str:
    script = tmp_path / "noexec"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    return str(script)


# (id, argv builder, expected code for tini, expected code for dumb-init)
CASES = [
    ("exit0", lambda t: sh("exit 0"), 0, 0),
    ("exit3", lambda t: sh("exit 3"), 3, 3),
    ("exit255", lambda t: sh("exit 255"), 255, 255),
    ("killed-by-TERM", lambda t: sh("kill -TERM $$"), 143, 143),
    ("killed-by-KILL", lambda t: sh("kill -KILL $$"), 137, 137),
    ("not-found", lambda t: ["no-such-command-xyz"], 127, 2),
    ("not-executable", _not_executable, 126, 2),
    ("not-a-directory", lambda t: ["/etc/passwd/x"], 1, 2),
    ("no-shebang", lambda t: [_no_shebang(t)], 5, 5),
]


@pytest.mark.parametrize("tool", DROP_INS)
@pytest.mark.parametrize(
    ("argv", "tini_code", "dumb_code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_exit_code_matches_real_tool(
    cli: Runner, tmp_path: Path, tool: str, argv: object, tini_code: int, dumb_code: int
) -> None:
    """The drop-in exits with the code the real tool documents (and gives) for the
    same command: CMD's code, 128+N, and the tool's own exec-failure codes
    (tini 127/126/1, dumb-init 2)."""
    command = argv(tmp_path)  # type: ignore[operator]
    expected = tini_code if tool == "tini" else dumb_code
    # Real tini permutes its options (GNU getopt): the command must follow "--".
    ours = cli.run(["--", *command], personality=tool)
    real = cli.run(["--", *command], program=[real_tool(tool)])
    assert (ours.code, real.code) == (expected, expected)


@pytest.mark.parametrize(
    ("tool", "args", "code"),
    [
        ("tini", [], 1),
        ("tini", ["-Z", "true"], 1),
        ("tini", ["-e", "256", "true"], 1),
        ("tini", ["--version"], 0),
        ("tini", ["-h"], 0),
        ("tini", ["-l"], 0),
        ("dumb-init", [], 1),
        ("dumb-init", ["-Z", "true"], 1),
        ("dumb-init", ["-r", "USR1:USR2", "true"], 1),
        ("dumb-init", ["-r", "99:1", "true"], 1),
        ("dumb-init", ["--version"], 0),
        ("dumb-init", ["-h"], 0),
    ],
)
def test_usage_exit_codes_match_real_tool(
    cli: Runner, tool: str, args: list[str], code: int
) -> None:
    """Usage errors exit 1; --version and help exit 0, like the real tool."""
    ours = cli.run(args, personality=tool, namespace=False)
    real = cli.run(args, program=[real_tool(tool)], namespace=False)
    assert (ours.code, real.code) == (code, code)
    assert "Traceback" not in ours.err


@pytest.mark.parametrize("tool", DROP_INS)
@pytest.mark.parametrize("flag", ["--version", "-h"])
def test_help_and_version_like_real_tool(cli: Runner, tool: str, flag: str) -> None:
    """--version and -h write to the same stream as the real tool (tini: stdout,
    dumb-init: stderr), and the version line starts with the tool's name."""
    ours = cli.run([flag], personality=tool, namespace=False)
    real = cli.run([flag], program=[real_tool(tool)], namespace=False)
    assert (bool(ours.out), bool(ours.err)) == (bool(real.out), bool(real.err))
    if flag == "--version":
        assert (ours.out + ours.err).split()[0] == (real.out + real.err).split()[0] == tool
