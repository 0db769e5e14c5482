"""Unit tests for the reload result the loader child sends (pyinit/reload_delta.py):
the plan computed child-side and the Config rebuilt from bounded frames must be
exactly what a plain load and plan_reload give, on random configs."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest

from pyinit import configload, reload_delta
from pyinit.config import Config, Dependency, ServiceConfig, Settings, load_config
from pyinit.configload import ConfigLoad, LoadResult
from pyinit.loop import EventLoop
from pyinit.reload import plan_reload
from pyinit.reload_delta import BadResult, Head, assemble, encode, read_frames
from tests.helpers.configload import FakeReaper

NAMES = [f"s{i}" for i in range(12)]


def random_config(rng: random.Random) -> Config:
    services: dict[str, ServiceConfig] = {}
    for name in rng.sample(NAMES, rng.randint(0, len(NAMES))):
        env = {f"K{i}": rng.choice("ab") for i in range(rng.choice([0, 2, 9]))}
        services[name] = ServiceConfig(
            name=name,
            command=tuple(rng.choice("xy") for _ in range(rng.choice([1, 2, 7]))),
            depends_on=tuple(Dependency(d) for d in rng.sample(NAMES, rng.choice([0, 1, 5]))),
            environment=env,
            critical=rng.random() < 0.2,
            line=rng.choice([3, 4]),
        )
    return Config("s.yaml", services, Settings(shutdown_timeout=rng.choice([1.0, 2.0])))


def rebuild(base: Config | None, new: Config) -> tuple[Config, object, int]:
    """Encode as the child does, rebuild as the loop does; also the number of steps."""
    data = b"".join(encode(base, new))
    frames = read_frames(data)
    head = pickle.loads(next(frames))
    assert isinstance(head, Head)
    steps = assemble(head, frames, base)
    count = 0
    while True:
        try:
            next(steps)
            count += 1
        except StopIteration as stop:
            config, plan = stop.value
            return config, plan, count


@pytest.mark.parametrize("seed", range(200))
def test_rebuilt_config_and_plan_equal_a_plain_load(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny frames and pieces, so that services and environments are split."""
    monkeypatch.setattr(reload_delta, "FRAME_BYTES", 300)
    monkeypatch.setattr(reload_delta, "PIECE_ITEMS", 3)
    monkeypatch.setattr(reload_delta, "STEP_NAMES", 2)
    rng = random.Random(seed)
    base, new = random_config(rng), random_config(rng)
    config, plan, _ = rebuild(base, new)
    assert config == new and list(config.services) == list(new.services)
    assert plan == plan_reload(base, new)
    for name in plan_reload(base, new).unchanged:  # not sent: the running object
        if base.services[name].line == new.services[name].line:
            assert config.services[name] is base.services[name]
    # Without a base (no running config), everything is sent and no plan comes back.
    config, plan, _ = rebuild(None, new)
    assert config == new and plan is None


def test_only_added_and_changed_services_are_sent() -> None:
    env = {f"V{i}": "x" for i in range(5000)}
    base = Config("s.yaml", {"big": ServiceConfig("big", ("a",), environment=env, line=3)})
    same = Config("s.yaml", {"big": ServiceConfig("big", ("a",), environment=dict(env), line=9)})
    data = b"".join(encode(base, same))
    assert len(data) < 2000  # the head: the plan and the moved line
    config, plan, _ = rebuild(base, same)
    assert config == same and config.services["big"].line == 9


def test_a_big_changed_service_comes_in_bounded_frames() -> None:
    """170,000 environment entries: many frames, none much over FRAME_BYTES."""
    env = {f"V{i:07d}": f"x{i}" for i in range(170_000)}
    base = Config("s.yaml", {"big": ServiceConfig("big", ("a",), environment=env)})
    new = Config("s.yaml", {"big": ServiceConfig("big", ("b",), environment=env)})
    sizes = [len(f) for f in read_frames(b"".join(encode(base, new)))]
    assert len(sizes) > 40 and max(sizes[1:]) < 2 * reload_delta.FRAME_BYTES
    config, _, steps = rebuild(base, new)
    assert config == new and steps >= len(sizes) - 1


def test_garbled_frames_are_bad_results() -> None:
    base = random_config(random.Random(1))
    new = Config("s.yaml", {"a": ServiceConfig("a", ("x",))})
    data = b"".join(encode(base, new))
    with pytest.raises(BadResult):
        list(read_frames(data[:-1]))
    frames = list(read_frames(data))
    head = pickle.loads(frames[0])
    with pytest.raises(BadResult, match="fewer sent"):
        list(assemble(head, iter([]), base))
    with pytest.raises(BadResult, match="more frames"):
        list(assemble(head, iter(frames[1:] * 2), base))
    with pytest.raises(BadResult, match="a Head where"):
        list(assemble(head, iter(frames[:1]), base))
    # A plan relative to a config the loop does not hold: a name is missing.
    fields = {"path": "s.yaml", "settings": Settings()}
    head = Head(fields, ("ghost",), plan_reload(new, new), {}, 0)
    with pytest.raises(BadResult, match="ghost was not sent"):
        list(assemble(head, iter([]), None))


def write_services(path: Path, count: int, arg: str) -> None:
    lines = ["services:"]
    for i in range(count):
        lines += [f"  s{i}:", f"    command: [sleep, '1', '{arg if i % 2 else 'same'}']"]
    path.write_text("\n".join(lines) + "\n")


def test_the_loop_rebuilds_the_result_a_slice_per_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real child, given the running config: the result equals load_config and
    plan_reload, and arrives over several passes of the loop (one step each)."""
    monkeypatch.setattr(configload, "SLICE", 0.0)
    monkeypatch.setattr(reload_delta, "FRAME_BYTES", 1000)
    path = tmp_path / "s.yaml"
    write_services(path, 200, "old")
    base = load_config(str(path))
    write_services(path, 300, "new")
    loop = EventLoop()
    reaper = FakeReaper(loop)
    results: list[LoadResult] = []
    passes = 0
    load = ConfigLoad(loop, str(path), reaper.register, results.append, base=base)
    real_pump = load._pump

    def counted() -> None:
        nonlocal passes
        passes += 1
        real_pump()

    monkeypatch.setattr(load, "_pump", counted)
    load.start()
    reaper.run_until(lambda: bool(results) and not reaper.owners)
    new = load_config(str(path))
    assert results == [LoadResult(config=new, plan=plan_reload(base, new))]
    assert passes > 5
    plan = results[0].plan
    assert plan is not None and len(plan.changed) == 100 and len(plan.added) == 100


def test_kill_during_the_rebuild_delivers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(configload, "SLICE", 0.0)
    monkeypatch.setattr(reload_delta, "FRAME_BYTES", 1000)
    path = tmp_path / "s.yaml"
    write_services(path, 300, "x")
    loop = EventLoop()
    reaper = FakeReaper(loop)
    results: list[LoadResult] = []
    load = ConfigLoad(loop, str(path), reaper.register, results.append, base=None)
    load.start()
    reaper.run_until(lambda: load.steps is not None or bool(results))
    assert load.steps is not None and not results  # mid-way through the rebuild
    load.kill()
    reaper.run_until(lambda: not reaper.owners)
    loop.call_later(0, loop.stop)
    loop.run()
    assert results == []
