"""Environment values are secrets: pyinit prints none of them, anywhere.

A services file sets DB_PASSWORD=hunter2 in `environment:` and in an `env_file`;
the service really gets both (it counts them, without printing them), yet
"hunter2" appears in none of: `pyinit check`'s output, `pyinit status` and
`status --json`, the status file, the HTTP /status endpoint, or pyinit's own log
(at -vv, through a failed start, a reload that changes the value, and shutdown).
"""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.helpers.cli import PYINIT, Runner
from tests.helpers.commands import argv, sh
from tests.helpers.deadlines import DEFAULT_TIMEOUT, wait_for_lines
from tests.helpers.net import free_port
from tests.helpers.supervisor import runtime_env, write_config

SECRET = "hunter2"


def pyinit(tmp_path: Path, *args: str) -> str:
    """stdout + stderr of a client command against this test's runtime dir."""
    done = subprocess.run(
        [*PYINIT, *args],
        env=runtime_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    return done.stdout + done.stderr


def config_text(tmp_path: Path, port: int, value: str) -> str:
    count = tmp_path / "count"
    return f"""
        settings:
          http: "127.0.0.1:{port}"
        services:
          web:
            command: {argv(*sh(f"env | grep -c {SECRET} > {count}.tmp; mv {count}.tmp {count}; exec sleep 1000"))}
            environment:
              DB_PASSWORD: "{value}"
              OTHER: "x-{value}-y"
            env_file: secrets.env
            ready: {{log_line: never-printed, timeout: 0}}
          broken:
            command: [sleep, "1000"]
            working_dir: /nonexistent-dir
            environment: [API_TOKEN={SECRET}]
        """  # noqa: E501


def test_environment_values_are_never_printed(cli: Runner, tmp_path: Path) -> None:
    """The secret reaches the service through environment and env_file but no output
    of pyinit's: check, status (table and JSON), status.json, /status, its log."""
    (tmp_path / "secrets.env").write_text(f"FILE_PASSWORD={SECRET}\nexport KEY='{SECRET}-2'\n")
    port = free_port()
    config = write_config(tmp_path, config_text(tmp_path, port, SECRET))
    seen: dict[str, str] = {"check": pyinit(tmp_path, "check", str(config))}
    assert "valid" in seen["check"], seen["check"]

    proc = cli.start(
        ["-vv", "-c", str(config)],
        env=runtime_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.err is not None
    # env | grep -c: DB_PASSWORD, OTHER, FILE_PASSWORD, KEY (API_TOKEN is broken's).
    wait_for_lines(tmp_path / "count", ["4"])
    proc.err.expect(r"broken: failed \(cannot run 'sleep': working directory")
    seen["status"] = pyinit(tmp_path, "status")
    seen["status --json"] = pyinit(tmp_path, "status", "--json")
    assert '"web"' in seen["status --json"]
    seen["status.json"] = (tmp_path / "rt" / "status.json").read_text()
    url = f"http://127.0.0.1:{port}/status"
    with urllib.request.urlopen(url, timeout=DEFAULT_TIMEOUT) as response:
        seen["/status"] = response.read().decode()
    assert '"broken"' in seen["/status"]

    # A reload that changes only the secret restarts web and says so, without it.
    config.write_text(config.read_text().replace(f'"{SECRET}"', f'"{SECRET}-new"'))
    proc.signal(signal.SIGHUP)
    proc.err.expect(r"changed web")
    proc.signal(signal.SIGTERM)
    code, out, err = proc.finish()
    assert code in (0, 1), err
    seen["pyinit stdout"] = out
    seen["pyinit stderr"] = err
    assert "web: started" in err
    leaks = {where: text for where, text in seen.items() if SECRET in text}
    assert not leaks, leaks
