"""What the control socket's answers are made of, apart from the socket: the verdicts
of a ``wait`` (pure, on a Snapshot) and the chunks of a ``logs`` answer's body."""

from __future__ import annotations

from collections.abc import Iterator

from pyinit.snapshot import ServiceSnapshot, ServiceState, Snapshot

ANSWER_CHUNK = 64 * 1024  # a logs answer is built and held this much at a time


def answer_chunks(views: list[memoryview], size: int = ANSWER_CHUNK) -> Iterator[bytearray]:
    """The body of a ``logs`` answer: each view followed by a newline, in chunks of
    ``size`` bytes (the last one shorter). Consumes ``views`` as it goes, so the
    blocks already sent are no longer held by the answer."""
    views.reverse()
    buf = bytearray()
    while views:
        view = views.pop()
        pos = 0
        while len(view) - pos >= size - len(buf):
            take = size - len(buf)
            buf += view[pos : pos + take]
            pos += take
            yield buf
            buf = bytearray()
        buf += view[pos:]
        buf += b"\n"
        del view
        if len(buf) >= size:
            yield buf
            buf = bytearray()
    if buf:
        yield buf


def _ready(svc: ServiceSnapshot) -> bool:
    """Ready for a ``wait``: a longrun starting or running with its readiness
    reached, a oneshot completed."""
    if svc.oneshot:
        return svc.state is ServiceState.COMPLETED
    return svc.state in (ServiceState.STARTING, ServiceState.RUNNING) and svc.ready


def wait_verdict(
    snapshot: Snapshot, names: list[str], busy: set[str]
) -> tuple[list[str], list[str]]:
    """(not ready yet, failed for good) for a ``wait`` on ``names``.

    ``busy`` are services an operator request or a reload is about to stop or
    replace: whatever they show now is about to change, so they are not ready
    yet. Failed for good: ``failed``, or ended (stopped, exited) with nothing
    going to start it again; the message says which and why.
    """
    waiting: list[str] = []
    failed: list[str] = []
    for name in names:
        svc = snapshot.services.get(name)
        if svc is None:
            failed.append(f"no service named {name!r}")
        elif name in busy:
            waiting.append(name)
        elif _ready(svc):
            continue
        elif svc.state.final:
            why = f" ({svc.reason})" if svc.reason else ""
            failed.append(f"{name}: {svc.state}{why}")
        else:
            waiting.append(name)
    if snapshot.stopping and waiting:
        failed.append("pyinit is shutting down")
    return waiting, failed


def stopped_verdict(
    snapshot: Snapshot, names: list[str], busy: set[str]
) -> tuple[list[str], list[str]]:
    """(still running or about to, errors) for a ``wait`` until ``names`` stopped."""
    waiting = [
        n
        for n in names
        if n in snapshot.services and (n in busy or snapshot.services[n].state.alive)
    ]
    failed = [f"no service named {n!r}" for n in names if n not in snapshot.services]
    return waiting, failed


def gone_verdict(
    snapshot: Snapshot, names: list[str], busy: set[str]
) -> tuple[list[str], list[str]]:
    """(still there, no errors) for a ``wait`` until ``names`` were removed (a
    scale down): a removed service leaves the snapshot once it stopped."""
    return [n for n in names if n in snapshot.services], []
