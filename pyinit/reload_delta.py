"""What a reload's loader child sends back, and how the loop rebuilds it in slices.

Unpickling a 4 MiB config and comparing 10,000 services take a few hundred ms:
in PID 1's loop that would freeze it. The child inherited the running config at
fork (loads run one at a time), so it computes the ReloadPlan itself and sends
only the definitions the plan adds or changes; an unchanged service comes back
as the running object (or, if it moved in the file, its new line). Everything
goes out as frames of bounded size: a head (the plan, the service names in file
order, Config's other fields), then the services, each big environment or
argument list split into pieces. The loop unpickles frames from ``assemble``,
a generator that yields after each bounded step, so its driver can stop when a
slice's time is up and go on in a later pass.
"""

from __future__ import annotations

import dataclasses
import pickle
import struct
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyinit.config import Config, ServiceConfig
from pyinit.reload import ReloadPlan, plan_reload

FRAME_BYTES = 64 * 1024  # a frame unpickles in ~2 ms
PIECE_ITEMS = 2000  # a bigger tuple or mapping field is sent in pieces this long
STEP_NAMES = 500  # names placed per step when the services are put in order
_LEN = struct.Struct(">I")

# A part of a service: (name, None, skeleton) or (name, field, items of that field):
# a mapping's as (keys, values), two lists of strings. Not (key, value) tuples:
# 170,000 new tuples would set off full garbage collections in the loop.
Part = tuple[str, str | None, Any]
Step = Generator[None, None, tuple[Config, ReloadPlan | None]]


class BadResult(Exception):
    """The frames do not make a config (a bug or a garbled pipe)."""


@dataclass(frozen=True)
class Head:
    fields: dict[str, Any]  # Config's fields but ``services``
    names: tuple[str, ...]  # the new file's services, in file order
    plan: ReloadPlan | None  # against the base, when the child had one
    moved: dict[str, int]  # unchanged services declared at another line: the new line
    frames: int  # how many service frames follow the head


def frame(obj: object) -> bytes:
    data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


def encode(base: Config | None, new: Config) -> Iterator[bytes]:
    """The frames for ``new``, relative to ``base`` (the running config) if any."""
    plan = plan_reload(base, new) if base is not None else None
    if plan is not None and base is not None:
        send = [*plan.added, *plan.changed]
        moved = {
            n: new.services[n].line
            for n in plan.unchanged
            if new.services[n].line != base.services[n].line
        }
    else:
        send, moved = list(new.services), {}
    frames: list[bytes] = []
    batch: list[Part] = []
    size = 0
    for part in _parts(new.services[n] for n in send):
        cost = len(pickle.dumps(part, pickle.HIGHEST_PROTOCOL))
        if batch and size + cost > FRAME_BYTES:
            frames.append(frame(batch))
            batch, size = [], 0
        batch.append(part)
        size += cost
    if batch:
        frames.append(frame(batch))
    fields = {f.name: getattr(new, f.name) for f in dataclasses.fields(Config)}
    del fields["services"]
    yield frame(Head(fields, tuple(new.services), plan, moved, len(frames)))
    yield from frames


def _parts(services: Iterator[ServiceConfig]) -> Iterator[Part]:
    for cfg in services:
        big: dict[str, Any] = {}
        for f in dataclasses.fields(ServiceConfig):
            value = getattr(cfg, f.name)
            if isinstance(value, (tuple, dict)) and len(value) > PIECE_ITEMS:
                big[f.name] = value
        yield (cfg.name, None, dataclasses.replace(cfg, **{k: type(v)() for k, v in big.items()}))
        for key, value in big.items():
            if isinstance(value, dict):
                keys, values = list(value), list(value.values())
                for i in range(0, len(keys), PIECE_ITEMS):
                    piece = (keys[i : i + PIECE_ITEMS], values[i : i + PIECE_ITEMS])
                    yield (cfg.name, key, piece)
            else:
                items = list(value)
                for i in range(0, len(items), PIECE_ITEMS):
                    yield (cfg.name, key, items[i : i + PIECE_ITEMS])


def read_frames(data: bytes | bytearray) -> Iterator[memoryview]:
    """Split the child's output into frames; BadResult if it is cut or garbled."""
    view = memoryview(data)
    at = 0
    while at < len(view):
        if at + _LEN.size > len(view):
            raise BadResult("a frame is cut short")
        (length,) = _LEN.unpack_from(view, at)
        at += _LEN.size
        if at + length > len(view):
            raise BadResult("a frame is cut short")
        yield view[at : at + length]
        at += length


def assemble(head: Head, frames: Iterator[memoryview], base: Config | None) -> Step:
    """Rebuild the new Config from the service frames; yields after each frame
    or STEP_NAMES names. ``base``: the config the child compared with."""
    skeletons: dict[str, ServiceConfig] = {}
    pieces: dict[str, dict[str, Any]] = {}  # name -> field -> the dict or list so far
    for _ in range(head.frames):
        try:
            parts = pickle.loads(next(frames))
        except StopIteration:
            raise BadResult(f"{head.frames} service frames announced, fewer sent") from None
        if not isinstance(parts, list):
            raise BadResult(f"a {type(parts).__name__} where service parts were due")
        for name, key, payload in parts:
            _take_part(skeletons, pieces, name, key, payload)
        yield
    if next(frames, None) is not None:
        raise BadResult("more frames than announced")
    # Fields sent in pieces go back into their services (few: each piece is long).
    for name, got in pieces.items():
        values: dict[str, Any] = {k: v if isinstance(v, dict) else tuple(v) for k, v in got.items()}
        skeletons[name] = dataclasses.replace(skeletons[name], **values)
        yield
    services: dict[str, ServiceConfig] = {}
    running: Mapping[str, ServiceConfig] = base.services if base is not None else {}
    for i, name in enumerate(head.names):
        cfg = skeletons.get(name)
        if cfg is None:
            old = running.get(name)
            if old is None or head.plan is None:
                raise BadResult(f"service {name} was not sent")
            line = head.moved.get(name)
            cfg = old if line is None else dataclasses.replace(old, line=line)
        services[name] = cfg
        if i % STEP_NAMES == STEP_NAMES - 1:
            yield
    return Config(services=services, **head.fields), head.plan


def _take_part(
    skeletons: dict[str, ServiceConfig],
    pieces: dict[str, dict[str, Any]],
    name: str,
    key: str | None,
    payload: Any,
) -> None:
    """One part of a frame: a service without its long fields (``key`` None), or a
    piece of one of its long fields."""
    if key is None:
        if not isinstance(payload, ServiceConfig) or payload.name != name:
            raise BadResult(f"a {type(payload).__name__} where service {name} was due")
        skeletons[name] = payload
        return
    skeleton = skeletons.get(name)
    if skeleton is None:
        raise BadResult(f"a piece of {name}, which was not sent")
    got = pieces.setdefault(name, {})
    if isinstance(getattr(skeleton, key), dict):
        keys, values = payload
        got.setdefault(key, {}).update(zip(keys, values, strict=True))
    else:
        got.setdefault(key, []).extend(payload)


def decode_head(first: memoryview) -> object:
    return pickle.loads(first)
