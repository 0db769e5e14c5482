"""Replicas where the outside sees them: the snapshot's ``scaled`` and
``replica_of`` (and its groups), names and globs expanded for the control
commands, the ``scale`` request and ``pyinit scale``'s command line, the
metrics, ``pyinit status``'s summary line and ``pyinit check``'s rows."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from pyinit.answers import gone_verdict
from pyinit.check import summary
from pyinit.cli import main
from pyinit.client import parse_client_args
from pyinit.config import load_config_text
from pyinit.errors import UsageError
from pyinit.metrics import render_metrics
from pyinit.protocol import RequestError, parse_request
from pyinit.snapshot import Snapshot, SnapshotError
from pyinit.statustable import format_scaled, format_status
from pyinit.targets import expand
from tests.helpers import promtext
from tests.helpers.snapshots import svc

NOW = 1_700_000_100.0


def scaled_snapshot() -> Snapshot:
    """web at 3 (web.2 in backoff, web.3 stopped), idle at 0, db unscaled."""
    return Snapshot.from_json(
        {
            "pid": 1,
            "services": {
                "db": svc(),
                "web.1": svc(replica_of="web"),
                "web.2": svc(replica_of="web", state="backoff", pid=None),
                "web.3": svc(replica_of="web", state="stopped", pid=None),
            },
            "scaled": {"web": 3, "idle": 0},
        }
    )


# -- the snapshot ---------------------------------------------------------------------------


def test_groups_are_the_instances_of_each_scaled_service() -> None:
    snapshot = scaled_snapshot()
    assert snapshot.groups() == {"web": ["web.1", "web.2", "web.3"], "idle": []}
    assert snapshot.services["web.2"].replica_of == "web"
    assert snapshot.services["db"].replica_of is None
    assert Snapshot.from_json({"services": {"db": svc()}}).groups() == {}


def test_scaled_json_round_trip() -> None:
    """``scaled`` comes last, ``replica_of`` last in an instance's entry, and only
    when there is something to say: what reads them back gets the same snapshot."""
    snapshot = scaled_snapshot()
    doc = snapshot.to_json()
    assert list(doc)[-2:] == ["services", "scaled"] and doc["scaled"] == {"web": 3, "idle": 0}
    assert list(doc["services"]["web.1"])[-1] == "replica_of"
    assert "replica_of" not in doc["services"]["db"]
    assert Snapshot.from_json(json.loads(json.dumps(doc))) == snapshot
    unscaled = Snapshot.from_json({"services": {"db": svc()}})
    assert "scaled" not in unscaled.to_json()
    assert "replica_of" not in unscaled.to_json()["services"]["db"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"scaled": []}, "'scaled'"),
        ({"scaled": {"web": "3"}}, "'scaled': expected counts"),
        ({"scaled": {"web": True}}, "'scaled': expected counts"),
        ({"scaled": {"web": 1.5}}, "'scaled': expected counts"),
        ({"services": {"web.1": svc(replica_of=3)}}, "'replica_of'"),
    ],
)
def test_what_is_not_a_scaled_snapshot(doc: Any, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        Snapshot.from_json(doc)


# -- names for the control commands -----------------------------------------------------------


def test_a_scaled_name_means_its_instances() -> None:
    snapshot = scaled_snapshot()
    names, groups = list(snapshot.services), snapshot.groups()
    assert expand(["web"], names, groups) == (["web.1", "web.2", "web.3"], [])
    assert expand(["web.2"], names, groups) == (["web.2"], [])
    assert expand(["web.2", "web", "db"], names, groups) == (
        ["web.2", "web.1", "web.3", "db"],
        [],
    )
    assert expand(["web.*"], names, groups) == (["web.1", "web.2", "web.3"], [])
    assert expand(["all"], names, groups) == (names, [])
    assert expand(["idle"], names, groups) == ([], [])  # at 0: nothing to act on
    assert expand(["web"], names) == (["web"], [])  # no groups: as before
    assert expand(["w*"], names, groups) == (["web.1", "web.2", "web.3"], [])


def test_gone_verdict_waits_until_the_names_left() -> None:
    snapshot = scaled_snapshot()
    assert gone_verdict(snapshot, ["web.3", "web.4"], set()) == (["web.3"], [])
    assert gone_verdict(snapshot, ["web.9"], {"web.9"}) == ([], [])


# -- the scale request ------------------------------------------------------------------------


def req(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_scale_request() -> None:
    parsed = parse_request(req({"cmd": "scale", "service": "web", "count": 4}))
    assert (parsed.cmd, parsed.services, parsed.count) == ("scale", ["web"], 4)
    assert parse_request(req({"cmd": "scale", "service": "web", "count": 0})).count == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"service": "web"}, '"count" must be a whole number >= 0'),
        ({"service": "web", "count": -1}, '"count" must be a whole number >= 0'),
        ({"service": "web", "count": "3"}, '"count" must be a whole number >= 0'),
        ({"service": "web", "count": 2.0}, '"count" must be a whole number >= 0'),
        ({"service": "web", "count": True}, '"count" must be a whole number >= 0'),
        ({"service": "web", "count": None}, '"count" must be a whole number >= 0'),
        ({"count": 3}, '"service" must be the name of a scaled service'),
        ({"service": "", "count": 3}, '"service" must be the name of a scaled service'),
        ({"service": ["web"], "count": 3}, '"service" must be the name of a scaled service'),
        ({"services": ["web"], "count": 3}, '"service" must be the name of a scaled service'),
    ],
)
def test_bad_scale_requests(body: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(req({"cmd": "scale", **body}))
    assert str(info.value) == message


# -- pyinit scale's command line --------------------------------------------------------------


def test_scale_command_line() -> None:
    parsed = parse_client_args("scale", ["web", "3"])
    assert parsed.request == {"cmd": "scale", "service": "web", "count": 3}
    assert parsed.names == ["web"] and parsed.wait == 60.0
    parsed = parse_client_args("scale", ["--timeout", "5s", "web", "0"])
    assert parsed.request["count"] == 0 and parsed.wait == 5.0
    assert parse_client_args("scale", ["web", "007", "--no-wait"]).wait is None
    assert parse_client_args("scale", ["web", "007"]).request["count"] == 7


USAGE = "scale: expected NAME COUNT (e.g. pyinit scale web 3)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], USAGE),
        (["web"], USAGE),  # no count
        (["web", "three"], USAGE),
        (["web", "3.0"], USAGE),
        (["web", "+3"], USAGE),
        (["web", ""], USAGE),
        (["web", "²"], USAGE),  # a digit to str.isdigit, not to int()
        (["web", "٣"], USAGE),  # an Arabic-Indic 3: ASCII digits only
        (["web", "3", "4"], USAGE),
        (["web", "-1"], "scale: unknown option '-1'"),
        (["web", "9" * 5000], USAGE),  # more digits than int() takes
        (["web", "3", "--json"], "scale: option 'json' does not apply"),
    ],
)
def test_scale_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_client_args("scale", args)
    assert str(info.value) == message


@pytest.mark.parametrize("args", [["web"], ["web", "x"], ["web", "²"], ["web", "9" * 5000]])
def test_scale_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Before any connection: a message and exit status 2, never a traceback."""
    with pytest.raises(SystemExit) as info:
        main(["pyinit", "scale", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pyinit: scale: ") and "Traceback" not in err
    assert err.endswith("Try 'pyinit --help' for more information.\n")


# -- metrics, status, check ----------------------------------------------------------------


def test_replica_metrics() -> None:
    """The count asked for and the instances alive (backoff and stopped are not),
    per scaled service; each instance keeps its own series under its own name."""
    families = promtext.parse(render_metrics(scaled_snapshot(), NOW))
    assert families["pyinit_service_replicas"].type == "gauge"
    assert families["pyinit_service_replicas"].by("service") == {"web": 3, "idle": 0}
    assert families["pyinit_service_replicas_running"].by("service") == {"web": 1, "idle": 0}
    assert families["pyinit_service_up"].by("service") == {
        "db": 1, "web.1": 1, "web.2": 0, "web.3": 0,
    }  # fmt: skip
    plain = promtext.parse(render_metrics(Snapshot.from_json({"services": {"db": svc()}}), NOW))
    assert "pyinit_service_replicas" not in plain
    assert "pyinit_service_replicas_running" not in plain


def test_format_scaled() -> None:
    snapshot = scaled_snapshot()
    assert format_scaled(snapshot) == "\nscaled: web 1/3 running, idle 0/0 running\n"
    table = format_status(snapshot)
    assert table.endswith("\nscaled: web 1/3 running, idle 0/0 running\n")
    assert [line.split()[0] for line in table.splitlines()[1:5]] == [
        "db", "web.1", "web.2", "web.3",
    ]  # fmt: skip
    assert format_scaled(Snapshot.from_json({"services": {"db": svc()}})) == ""


def test_check_shows_a_scaled_service_once() -> None:
    config = load_config_text(
        textwrap.dedent(
            """
            services:
              db: {command: db}
              web: {command: web, scale: 3, depends_on: [db]}
              idle: {command: idle, scale: 0}
              api: {command: api, depends_on: [web]}
            """
        ),
        "services.yaml",
        {},
        ids=(0, 0),
    )
    lines = summary(config).splitlines()
    assert [line.split()[0:2] for line in lines[1:5]] == [
        ["db", "longrun,"],
        ["web", "x3"],
        ["api", "longrun,"],
        ["idle", "x0"],
    ]
    assert lines[-1] == "start order: [db] -> [web.1, web.2, web.3] -> [api]"
