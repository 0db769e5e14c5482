"""Replicas in the supervisor, driven through its seams (tests/helpers/fakesup.py;
a process of instance i is named ``web.i``): ``pyinit scale`` starts or stops only
the difference, an operator's stop of one instance leaves the dependants serving
while a stop of the whole group takes them down first, and a dependant waits for
every instance. No process is started; the clock is fake."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from pyinit.config import load_config_text
from pyinit.statustable import format_scaled
from pyinit.supervisor.selection import apply_file_reload
from tests.unit.conftest import MakeFake

GROUP = """
    services:
      db:
        command: ["db"]
      web:
        command: ["web"]
        scale: 3
        depends_on: [db]
        stop_grace_period: 4s
      api:
        command: ["api"]
        depends_on: [web]
        stop_grace_period: 2s
"""


def started(fake_names: list[tuple[float, str]]) -> list[str]:
    return [name for _, name in fake_names]


def states(fake: object, *names: str) -> list[str]:
    from tests.helpers.fakesup import FakeSupervisor

    assert isinstance(fake, FakeSupervisor)
    return [fake.state(n) for n in names]


# -- pyinit scale -------------------------------------------------------------------------


def test_scale_up_starts_only_the_new_instances(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    assert started(fake.procs.spawned) == ["db", "web.1", "web.2", "web.3", "api"]
    before = dict(fake.sup.services)
    assert fake.sup.scale_service("web", 5) == (["web.4", "web.5"], [], [])
    fake.settle()
    assert started(fake.procs.spawned)[5:] == ["web.4", "web.5"]
    assert fake.procs.sent == []  # nothing else stopped, restarted or signalled
    for name, rt in before.items():
        assert fake.sup.services[name] is rt, name
    assert list(fake.sup.config.services) == [
        "db", "web.1", "web.2", "web.3", "web.4", "web.5", "api",
    ]  # fmt: skip
    assert fake.sup.config.scaled["web"].scale == 5
    assert fake.logged("scale web 3 -> 5: added web.4, web.5")
    snapshot = fake.sup.snapshot()
    assert snapshot.scaled == {"web": 5}
    assert snapshot.groups() == {"web": [f"web.{i}" for i in range(1, 6)]}


def test_scale_down_stops_only_the_highest(fakesup: MakeFake) -> None:
    """The removed instances stop gracefully (web.3 holds on until SIGKILL) and
    then leave; the others, and api that depends on web, are left alone."""
    fake = fakesup(GROUP)
    fake.procs.stubborn["web.3"] = {signal.SIGTERM}
    assert fake.sup.scale_service("web", 1) == ([], ["web.2", "web.3"], [])
    fake.settle()
    assert fake.procs.sent == [("web.2", signal.SIGTERM), ("web.3", signal.SIGTERM)]
    assert "web.2" not in fake.sup.services
    assert fake.state("web.3") == "stopping" and fake.sup.busy() == {"web.3"}
    fake.advance(4)
    assert fake.procs.signals_to("web.3") == [signal.SIGTERM, signal.SIGKILL]
    assert list(fake.sup.services) == ["db", "web.1", "api"]
    assert states(fake, "db", "web.1", "api") == ["running"] * 3
    assert len(fake.procs.spawned) == 5  # nothing restarted
    assert fake.logged("web.3: removed")
    assert fake.sup.snapshot().groups() == {"web": ["web.1"]}


def test_scale_to_zero_and_back(fakesup: MakeFake) -> None:
    """At 0 the group has no instance and api keeps running (a scaled service at 0
    stands for nothing to wait for); back at 2 the instances start again."""
    fake = fakesup(GROUP)
    assert fake.sup.scale_service("web", 0) == ([], ["web.1", "web.2", "web.3"], [])
    fake.settle()
    assert list(fake.sup.services) == ["db", "api"] and fake.state("api") == "running"
    assert fake.sup.snapshot().groups() == {"web": []}
    assert fake.sup.scale_service("web", 2) == (["web.1", "web.2"], [], [])
    fake.settle()
    assert started(fake.procs.spawned)[5:] == ["web.1", "web.2"]
    assert list(fake.sup.config.services) == ["db", "web.1", "web.2", "api"]


def test_scale_to_the_same_count_does_nothing(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    assert fake.sup.scale_service("web", 3) == ([], [], [])
    assert fake.logged("scale web: already 3")
    assert len(fake.procs.spawned) == 5 and fake.procs.sent == []


@pytest.mark.parametrize(
    ("name", "count", "error"),
    [
        ("web.2", 4, "web.2 is one instance of web; scale web"),
        ("db", 2, "db is not scaled; give it 'scale: 1' in the file to scale it at run time"),
        ("nope", 2, "no service named 'nope'"),
        ("web", -1, "expected a count from 0 to 10000; got -1"),
        ("web", 10_001, "expected a count from 0 to 10000; got 10001"),
        ("web", 10_000, "10002 services once scaled; the limit is 10000"),
    ],
)
def test_scale_refusals_change_nothing(
    fakesup: MakeFake, name: str, count: int, error: str
) -> None:
    fake = fakesup(GROUP)
    config = fake.sup.config
    assert fake.sup.scale_service(name, count) == ([], [], [error])
    fake.settle()
    assert fake.sup.config is config
    assert len(fake.procs.spawned) == 5 and fake.procs.sent == []


def test_scale_is_refused_while_shutting_down(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    fake.procs.stubborn["api"] = {signal.SIGTERM}  # the shutdown waits for it
    fake.signal(signal.SIGTERM)
    assert not fake.done
    assert fake.sup.scale_service("web", 5) == ([], [], ["pyinit is shutting down"])
    assert fake.sup.scale_service("web", 1) == ([], [], ["pyinit is shutting down"])
    assert fake.sup.config.scaled["web"].scale == 3
    assert len(fake.procs.spawned) == 5


def test_a_group_left_out_at_boot_stays_out_as_it_grows(fakesup: MakeFake) -> None:
    """web's profile is not active: its new instance is added stopped, is not
    announced as starting (a client would wait for it in vain) and starts with the
    others when an operator starts them."""
    fake = fakesup(
        """
        services:
          web: {command: ["web"], scale: 2, profiles: [debug]}
          api: {command: ["api"]}
        """
    )
    assert started(fake.procs.spawned) == ["api"]
    assert fake.sup.scale_service("web", 3) == ([], [], [])
    fake.settle()
    assert started(fake.procs.spawned) == ["api"]
    assert states(fake, "web.1", "web.2", "web.3") == ["stopped"] * 3
    assert fake.sup.unselected == {"web.1", "web.2", "web.3"}
    assert fake.sup.snapshot().services["web.3"].optional  # kept out of /readyz
    assert fake.sup.start_services(["web.1", "web.2", "web.3"])[1] == []
    fake.settle()
    assert sorted(started(fake.procs.spawned)) == ["api", "web.1", "web.2", "web.3"]


# -- operator stops and restarts ------------------------------------------------------------


def test_stopping_one_instance_leaves_the_dependants(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    assert fake.sup.stop_services(["web.2"]) == (["web.2"], [])
    fake.settle()
    assert fake.procs.sent == [("web.2", signal.SIGTERM)]
    assert states(fake, "db", "web.1", "web.2", "web.3", "api") == [
        "running", "running", "stopped", "running", "running",
    ]  # fmt: skip
    # and the last live one of the group stopping takes api with it
    targets, errors = fake.sup.stop_services(["web.1", "web.3"])
    assert sorted(targets) == ["api", "web.1", "web.3"] and errors == []


def test_stopping_the_whole_group_stops_the_dependants_first(fakesup: MakeFake) -> None:
    """What ``pyinit stop web`` sends (every instance): api stops first, and no
    instance is signalled until api is gone (it holds on until SIGKILL)."""
    fake = fakesup(GROUP)
    fake.procs.stubborn["api"] = {signal.SIGTERM}
    targets, errors = fake.sup.stop_services(["web.1", "web.2", "web.3"])
    assert sorted(targets) == ["api", "web.1", "web.2", "web.3"] and errors == []
    fake.settle()
    assert fake.procs.sent == [("api", signal.SIGTERM)]
    fake.advance(1.9)
    assert fake.procs.sent == [("api", signal.SIGTERM)]
    fake.advance(0.1)
    assert fake.procs.sent == [
        ("api", signal.SIGTERM),
        ("api", signal.SIGKILL),
        ("web.1", signal.SIGTERM),
        ("web.2", signal.SIGTERM),
        ("web.3", signal.SIGTERM),
    ]
    assert states(fake, "db", "web.1", "web.2", "web.3", "api") == [
        "running", "stopped", "stopped", "stopped", "stopped",
    ]  # fmt: skip


def test_stopping_the_dependency_of_the_group_stops_it_all(fakesup: MakeFake) -> None:
    """db's dependants are every instance (each depends on db), then api."""
    fake = fakesup(GROUP)
    targets, _ = fake.sup.stop_services(["db"])
    assert sorted(targets) == ["api", "db", "web.1", "web.2", "web.3"]
    fake.settle()
    assert [n for n, _ in fake.procs.sent] == ["api", "web.1", "web.2", "web.3", "db"]


def test_restarting_one_instance_leaves_the_dependants(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    assert fake.sup.restart_services(["web.1"]) == (["web.1"], [])
    fake.settle()
    assert fake.procs.sent == [("web.1", signal.SIGTERM)]
    assert started(fake.procs.spawned)[5:] == ["web.1"]
    assert fake.state("api") == "running"


def test_restarting_the_group_brings_the_dependants_back_after_it(fakesup: MakeFake) -> None:
    fake = fakesup(GROUP)
    fake.sup.restart_services(["web.1", "web.2", "web.3"])
    fake.settle()
    assert [n for n, _ in fake.procs.sent] == ["api", "web.1", "web.2", "web.3"]
    assert started(fake.procs.spawned)[5:] == ["web.1", "web.2", "web.3", "api"]
    assert fake.sup.restart_set == set()


def test_starting_the_group_brings_the_dependants_back_after_it(fakesup: MakeFake) -> None:
    """``pyinit stop web`` took api down; ``pyinit start web`` brings api back once
    every instance started again, not as soon as the first one did (the others
    had started before the stop, which must not count)."""
    fake = fakesup(GROUP)
    fake.sup.stop_services(["web.1", "web.2", "web.3"])
    fake.settle()
    assert states(fake, "web.1", "api") == ["stopped", "stopped"]
    assert fake.sup.start_services(["web.1", "web.2", "web.3"]) == (
        ["web.1", "web.2", "web.3", "api"],
        [],
    )
    fake.settle()
    assert started(fake.procs.spawned)[5:] == ["web.1", "web.2", "web.3", "api"]


# -- dependants wait for every instance ---------------------------------------------------

READY = """
    services:
      web:
        command: ["web"]
        scale: 3
        ready: notify
      api:
        command: ["api"]
        depends_on: {web: {condition: service_ready}}
"""


def test_a_dependant_starts_once_every_instance_is_ready(fakesup: MakeFake) -> None:
    fake = fakesup(READY)
    assert started(fake.procs.spawned) == ["web.1", "web.2", "web.3"]
    fake.ready("web.3")
    fake.ready("web.1")
    assert fake.state("api") == "pending" and not fake.procs.starts("api")
    fake.ready("web.2")
    assert started(fake.procs.spawned)[3:] == ["api"]


def test_a_scale_up_makes_a_waiting_dependant_wait_for_the_new_ones(
    fakesup: MakeFake,
) -> None:
    fake = fakesup(READY)
    for name in ("web.1", "web.2"):
        fake.ready(name)
    assert fake.sup.scale_service("web", 4) == (["web.4"], [], [])
    fake.settle()
    fake.ready("web.3")
    assert fake.state("api") == "pending"
    fake.ready("web.4")
    assert fake.state("api") == "running"


def test_a_scale_down_may_be_what_a_dependant_waited_for(fakesup: MakeFake) -> None:
    """web.3 never gets ready; scaling to 2 removes it, and api starts."""
    fake = fakesup(READY)
    for name in ("web.1", "web.2"):
        fake.ready(name)
    assert fake.state("api") == "pending"
    fake.sup.scale_service("web", 2)
    fake.settle()
    assert fake.state("api") == "running"
    assert "web.3" not in fake.sup.services


# -- edge cases found in review ----------------------------------------------------------


def test_a_group_grown_from_zero_follows_the_boot_selection(fakesup: MakeFake) -> None:
    """At scale 0 there is no instance to follow: the new ones follow the boot's
    selection, as a reload adding them does (web's profile is not active)."""
    text = """
        services:
          web: {command: ["web"], scale: 0, profiles: [debug]}
          api: {command: ["api"]}
        """
    fake = fakesup(text)
    assert fake.sup.scale_service("web", 2) == ([], [], [])
    fake.settle()
    assert started(fake.procs.spawned) == ["api"]
    assert states(fake, "web.1", "web.2") == ["stopped"] * 2
    fake = fakesup(text, selection=(["debug"], []))
    assert fake.sup.scale_service("web", 2) == (["web.1", "web.2"], [], [])
    fake.settle()
    assert states(fake, "web.1", "web.2") == ["running"] * 2


def test_a_reload_grows_a_started_group_as_started(fakesup: MakeFake, tmp_path: Path) -> None:
    """A group left out at boot but started by an operator since: the instances a
    reload adds start with it (they follow the group, not the boot's profiles)."""
    text = """
        services:
          web: {command: ["web"], scale: 2, profiles: [debug]}
          api: {command: ["api"]}
        """
    fake = fakesup(text)
    assert fake.sup.start_services(["web.1", "web.2"])[1] == []
    fake.settle()
    new = load_config_text(
        textwrap.dedent(text).replace("scale: 2", "scale: 3"),
        str(tmp_path / "services.yaml"),
        {},
        ids=(0, 0),
    )
    apply_file_reload(fake.sup.actions, fake.sup.selection, new)
    fake.settle()
    assert states(fake, "web.1", "web.2", "web.3") == ["running"] * 3
    assert "web.3" not in fake.sup.unselected


def test_a_reload_under_only_naming_a_scale_zero_group_holds_what_it_adds(
    fakesup: MakeFake, tmp_path: Path
) -> None:
    """--only web, then web goes to scale 0 in the file: --only still selects
    nothing else, so a service the reload adds is held (not started as if there
    were no --only)."""
    fake = fakesup(
        """
        services:
          web: {command: ["web"], scale: 2}
          api: {command: ["api"]}
        """,
        selection=([], ["web"]),
    )
    assert states(fake, "web.1", "web.2", "api") == ["running", "running", "stopped"]
    new = load_config_text(
        textwrap.dedent(
            """
            services:
              web: {command: ["web"], scale: 0}
              api: {command: ["api"]}
              extra: {command: ["extra"]}
            """
        ),
        str(tmp_path / "services.yaml"),
        {},
        ids=(0, 0),
    )
    apply_file_reload(fake.sup.actions, fake.sup.selection, new)
    fake.settle()
    assert states(fake, "api", "extra") == ["stopped", "stopped"]
    assert "extra" not in started(fake.procs.spawned)


def test_starting_one_instance_does_not_bring_back_the_group_dependants(
    fakesup: MakeFake,
) -> None:
    """After ``stop web`` took api down, ``start web.1`` alone leaves api stopped:
    api waits for every instance; ``start web`` then brings it back."""
    fake = fakesup(GROUP)
    assert fake.sup.stop_services(["web.1", "web.2", "web.3"])[1] == []
    fake.settle()
    assert fake.sup.start_services(["web.1"]) == (["web.1"], [])
    fake.settle()
    assert states(fake, "web.1", "web.2", "web.3", "api") == [
        "running", "stopped", "stopped", "stopped",
    ]  # fmt: skip
    assert fake.sup.start_services(["web.2", "web.3"]) == (["web.2", "web.3", "api"], [])
    fake.settle()
    assert states(fake, "web.2", "web.3", "api") == ["running"] * 3


def test_a_group_is_its_current_count_while_removed_ones_stop(fakesup: MakeFake) -> None:
    """After a scale down, web.3 still stopping is not part of web: ``restart web``
    names web.1 and web.2, and status counts 2 of 2."""
    fake = fakesup(GROUP)
    fake.procs.stubborn["web.3"] = {signal.SIGTERM}
    fake.sup.scale_service("web", 2)
    fake.settle()
    snapshot = fake.sup.snapshot()
    assert "web.3" in snapshot.services
    assert snapshot.groups() == {"web": ["web.1", "web.2"]}
    assert format_scaled(snapshot) == "\nscaled: web 2/2 running\n"
