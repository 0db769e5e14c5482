"""The typed snapshot (pyinit/snapshot.py): built by a real Supervisor, its JSON is
the one the status file, ``pyinit status --json`` and /status always had, key for
key and in the same order; what it reads back is checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyinit.config import load_config_text
from pyinit.service import State
from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot, SnapshotError
from pyinit.supervisor import Supervisor
from tests.helpers.snapshots import svc

# The keys, in order, of Supervisor.snapshot() when it was a dict (pyinit status --json
# prints them in this order: scripts may depend on it).
TOP_KEYS = ["pid", "stopping", "started", "orphans_reaped", "signals_forwarded", "services"]
SERVICE_KEYS = [
    "type",
    "state",
    "pid",
    "ready",
    "health",
    "health_detail",
    "restarts",
    "last_exit",
    "reason",
    "status_text",
    "uptime",
]
# One snapshot as the dict-building code encoded it (control.encode's separators).
GOLDEN = (
    '{"pid":7,"stopping":false,"started":1700000000.25,"orphans_reaped":3,'
    '"signals_forwarded":2,"services":{"web":{"type":"longrun","state":"running",'
    '"pid":10,"ready":true,"health":"healthy","health_detail":"HTTP 200","restarts":1,'
    '"last_exit":143,"reason":"","status_text":"serving","uptime":12.5},'
    '"job":{"type":"oneshot","state":"completed","pid":null,"ready":true,"health":null,'
    '"health_detail":"","restarts":0,"last_exit":0,"reason":"","status_text":"",'
    '"uptime":null}}}'
)


def test_states_are_the_state_machines() -> None:
    """The snapshot's state names are service.State's values, in the same order
    (the metrics list them in this order)."""
    assert [(s.name, s.value) for s in ServiceState] == [(s.name, s.value) for s in State]
    assert {s.value for s in ServiceState if s.alive} == {s.value for s in State if s.alive}
    assert {s.value for s in ServiceState if s.final} == {s.value for s in State if s.final}


def test_a_supervisors_snapshot_has_the_old_keys_in_order() -> None:
    config = load_config_text(
        "services:\n"
        "  web:\n    command: [sleep, '1']\n"
        "  job:\n    command: ['true']\n    type: oneshot\n",
        "services.yaml",
    )
    snapshot = Supervisor(config).snapshot()
    doc = snapshot.to_json()
    assert list(doc) == TOP_KEYS
    assert list(doc["services"]) == ["web", "job"]  # the config's order
    for entry in doc["services"].values():
        assert list(entry) == SERVICE_KEYS
        assert entry["state"] == "pending" and entry["ready"] is False
    assert doc["services"]["job"]["type"] == "oneshot"
    assert Snapshot.from_json(json.loads(json.dumps(doc))) == snapshot


# A scaled service adds a last key to the document and to each instance's entry;
# a document without one is GOLDEN's shape, byte for byte.
GOLDEN_SCALED = (
    '{"pid":7,"stopping":false,"started":1700000000.25,"orphans_reaped":0,'
    '"signals_forwarded":0,"services":{"web.1":{"type":"longrun","state":"running",'
    '"pid":10,"ready":true,"health":null,"health_detail":"","restarts":0,'
    '"last_exit":null,"reason":"","status_text":"","uptime":1.0,"replica_of":"web"}},'
    '"scaled":{"web":1,"idle":0}}'
)


def test_a_scaled_supervisors_snapshot_adds_keys_at_the_end() -> None:
    config = load_config_text(
        "services:\n"
        "  web:\n    command: [sleep, '1']\n    scale: 2\n"
        "  idle:\n    command: [sleep, '1']\n    scale: 0\n"
        "  job:\n    command: ['true']\n    type: oneshot\n",
        "services.yaml",
    )
    snapshot = Supervisor(config).snapshot()
    doc = snapshot.to_json()
    assert list(doc) == [*TOP_KEYS, "scaled"] and doc["scaled"] == {"web": 2, "idle": 0}
    assert list(doc["services"]) == ["web.1", "web.2", "job"]
    assert list(doc["services"]["web.2"]) == [*SERVICE_KEYS, "replica_of"]
    assert list(doc["services"]["job"]) == SERVICE_KEYS
    assert snapshot.groups() == {"web": ["web.1", "web.2"], "idle": []}
    assert Snapshot.from_json(json.loads(json.dumps(doc))) == snapshot
    scaled = Snapshot.from_json(json.loads(GOLDEN_SCALED))
    assert json.dumps(scaled.to_json(), separators=(",", ":")) == GOLDEN_SCALED


def test_json_is_byte_identical_to_the_dict_format() -> None:
    obj = json.loads(GOLDEN)
    snapshot = Snapshot.from_json(obj)
    assert snapshot.services["web"].state is ServiceState.RUNNING
    assert json.dumps(snapshot.to_json(), separators=(",", ":")) == GOLDEN
    # the status file's form (sorted keys) and /status's (indented) follow
    assert json.dumps(snapshot.to_json(), sort_keys=True) == json.dumps(obj, sort_keys=True)


def test_stable_json_leaves_out_only_uptimes() -> None:
    snapshot = Snapshot.from_json(json.loads(GOLDEN))
    stable = snapshot.stable_json()
    assert stable["services"]["web"]["uptime"] is None
    assert {**stable["services"]["web"], "uptime": 12.5} == snapshot.services["web"].to_json()
    assert snapshot.services["web"].uptime == 12.5  # the snapshot itself is untouched


def test_missing_keys_take_defaults() -> None:
    """An older pyinit may write fewer keys; only a service's state is required."""
    assert Snapshot.from_json({}) == Snapshot()
    entry = ServiceSnapshot.from_json({"state": "backoff"})
    assert entry == ServiceSnapshot("longrun", ServiceState.BACKOFF)
    assert ServiceSnapshot.from_json(svc()).to_json() == svc()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({"services": []}, "'services'"),
        ({"services": {"a": "running"}}, "must be an object"),
        ({"services": {"a": {}}}, "unknown service state None"),
        ({"services": {"a": {"state": "dancing"}}}, "unknown service state 'dancing'"),
        ({"services": {"a": {"state": ["x"]}}}, "unknown service state"),
        ({"services": {"a": svc(pid="7")}}, "'pid'"),
        ({"services": {"a": svc(restarts=True)}}, "'restarts'"),
        ({"services": {"a": svc(ready=1)}}, "'ready'"),
        ({"stopping": "no"}, "'stopping'"),
    ],
)
def test_what_is_not_a_snapshot(doc: Any, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        Snapshot.from_json(doc)
