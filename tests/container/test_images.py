"""Images built for real: Dockerfile.test (its test command run inside, pyinit its
PID 1), every Dockerfile example of README.md and docs/, and README's install and
Quick start lines, so that documentation that rots fails here."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers.podman import (
    BASE,
    BUILD_TIMEOUT,
    PYTHON_IMAGE,
    ROOT,
    Containers,
    podman,
    workdir,
)

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

TEST_IMAGE = "localhost/pyinit-test"

# Dockerfile.test's test command, on a representative subset: the unit tests and the
# e2e files closest to being a container's init (the full suite inside takes minutes
# more than the container step's budget; .ci/run runs it in full on the host).
INNER_SUBSET = [
    "tests/unit",
    "tests/e2e/test_wrapper.py",
    "tests/e2e/test_tty.py",
    "tests/e2e/test_supervisor_shutdown.py",
    "tests/e2e/test_tini.py",
    "tests/e2e/test_dumb_init.py",
]


def test_dockerfile_test(images: Path, containers: Containers) -> None:
    """Built on the local base (--build-arg BASE), pip offline from the wheelhouse,
    apt from the host's Debian mirror; then its ENTRYPOINT (pyinit) runs pytest."""
    podman(
        "build", "--quiet", "--network=host", "-f", str(ROOT / "Dockerfile.test"),
        "--build-arg", f"BASE={BASE}", "--build-arg", "PIP_NO_INDEX=1",
        "--build-arg", "PIP_FIND_LINKS=/wheels", "--build-arg", "PIP_INDEX_URL=",
        "-v", f"{images}:/wheels:ro", "-t", TEST_IMAGE, str(ROOT),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    inspect = podman("image", "inspect", "-f", "{{json .Config.Entrypoint}}", TEST_IMAGE)
    assert json.loads(inspect.stdout) == ["pyinit", "--"]
    run = containers.run(
        "--privileged", image=TEST_IMAGE,
        argv=["sh", "-c", 'test "$(cat /proc/1/comm)" = pyinit || { echo "PID 1 is not pyinit";'
              ' exit 99; }; exec python3 -m pytest -q -p no:cacheprovider "$@"', "sh",
              *INNER_SUBSET],
    )  # fmt: skip
    code, out = run.finish(timeout=420)
    assert code == 0, out[-5000:]
    assert re.search(r"\d+ passed", out), out[-2000:]


def dockerfile_blocks() -> list[tuple[str, str]]:
    """(where, text) of every ```dockerfile block in README.md and docs/*.md."""
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for n, match in enumerate(re.finditer(r"^```dockerfile\n(.*?)^```", text, re.M | re.S)):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{path.relative_to(ROOT)}:{line}#{n}", match.group(1)))
    return blocks


def containerfile(block: str) -> str:
    """A whole Dockerfile from a documented one: its FROM becomes the local Python
    image; a fragment gets what the page's earlier blocks set up (pyinit installed
    from the wheel, services.yaml in /etc/pyinit) unless it does so itself."""
    if block.startswith("FROM "):
        return re.sub(r"^FROM \S+", f"FROM {PYTHON_IMAGE}", block)
    prelude = [f"FROM {PYTHON_IMAGE}"]
    if "pip install" not in block:
        prelude += ["COPY wheels/ /tmp/wheels/",
                    "RUN pip install /tmp/wheels/pyinit_supervisor-*.whl"]  # fmt: skip
    if "/etc/pyinit/services.yaml" in block and "COPY services.yaml" not in block:
        prelude.append("COPY services.yaml /etc/pyinit/services.yaml")
    return "\n".join(prelude) + "\n" + block


def entrypoint(block: str) -> list[str]:
    found = re.findall(r"^ENTRYPOINT (.*)$", block, re.M)
    assert found, "no ENTRYPOINT"
    value = json.loads(found[-1])  # fails on a shell-form ENTRYPOINT (or a trailing comment)
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize(
    ("where", "block"), [pytest.param(w, b, id=w.split("#")[0]) for w, b in dockerfile_blocks()]
)
def test_documented_dockerfile(
    images: Path, containers: Containers, where: str, block: str
) -> None:
    """Each example builds; its image runs: a wrapper-style ENTRYPOINT (ending in
    `--`) gives a command's exit status, a supervisor one runs services.yaml
    (services.example.yaml) until `podman stop`, with its HEALTHCHECK passing."""
    if "ENTRYPOINT" not in block:  # a HEALTHCHECK line: in the supervisor's image
        block += 'ENTRYPOINT ["pyinit", "-c", "/etc/pyinit/services.yaml"]\n'
    with workdir() as context:
        (context / "wheels").mkdir()
        for wheel in images.glob("pyinit_supervisor-*.whl"):
            shutil.copy(wheel, context / "wheels")
        shutil.copy(ROOT / "services.example.yaml", context / "services.yaml")
        (context / "Containerfile").write_text(containerfile(block))
        tag = "localhost/pyinit-doc-example"
        podman("build", "--quiet", "--network=none", "--format", "docker",
               "-f", str(context / "Containerfile"), "-t", tag, str(context),
               timeout=BUILD_TIMEOUT)  # fmt: skip
    if entrypoint(block)[-1] == "--":
        run = containers.run(image=tag, argv=["sh", "-c", "exit 3"])
        code, out = run.finish()
        assert code == 3, f"{where}: {out}"
        return
    run = containers.run(image=tag)
    run.seen(r"worker.*poll \d+: 200", timeout=60)
    if "HEALTHCHECK" in block:
        health = podman("healthcheck", "run", run.name, check=False)
        assert health.returncode == 0, f"{where}: {health.stdout}{health.stderr}"
    run.stop(grace=30)
    code, out = run.finish()
    assert code == 0, f"{where}: {out}"


def readme_sh_lines(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = re.search(rf"^## {section}\n(.*?)(?=^## )", text, re.M | re.S)
    assert body, section
    return [line for block in re.findall(r"^```sh\n(.*?)^```", body.group(1), re.M | re.S)
            for line in block.splitlines() if line.strip()]  # fmt: skip


def test_readme_install_and_quick_start(containers: Containers) -> None:
    """README's Install line, then its Quick start commands, verbatim, in a copy of
    the source tree in a fresh Python image (pip offline from the wheelhouse). The
    first Quick start command runs until interrupted: SIGINT after 20 s."""
    install = readme_sh_lines("Install")
    supervisor, wrapper = readme_sh_lines("Quick start")
    assert install == ["pip install ."], install
    script = "\n".join([
        "set -e",
        "mkdir /tmp/src && tar -C /src --exclude=./.venv --exclude=./.git -cf - . "
        "| tar -C /tmp/src -xf - && cd /tmp/src",
        *install,
        # Its trace is not asserted whole: when the forwarded USR1 arrives after the
        # `sleep 0.3` started (a slow host), that sleep dies of it and sh exits 138.
        f"( {wrapper} ) || echo wrapper-status=$?",
        # `timeout` signals the whole group, so the `sh -c` running the line dies of
        # SIGINT too (130), whatever pyinit's status: that is read from its log.
        f"timeout -s INT 20 sh -c {json.dumps(supervisor)} || echo quick-start-status=$?",
        "echo all-done",
    ])  # fmt: skip
    run = containers.run("-v", f"{ROOT}:/src:ro", image=PYTHON_IMAGE, argv=["sh", "-c", script])
    code, out = run.finish(timeout=120)
    assert code == 0, out
    assert "app: got USR1" in out, out
    assert re.search(r"SIGUSR1 received; forwarded to process group \d+", out), out
    assert re.search(r"reaped orphan pid \d+", out), out  # killed by USR1, or done already
    assert re.search(r"poll \d+: 200 'hello from pyinit'", out), out
    stop = out.index("pyinit: SIGINT received; stopping")
    assert re.search(r"all processes gone after [\d.]+s; exiting with status 0", out[stop:]), out
    assert out.rstrip().endswith("all-done"), out
