"""The reload table: what each service name is owed across reloads and slow stops."""

from __future__ import annotations

import pytest

from pyinit.config import ServiceConfig
from pyinit.reload_state import (
    _TRANSITIONS,
    Add,
    Drop,
    IllegalReloadTransition,
    Phase,
    ReloadTable,
    Replace,
    Stop,
    Want,
    Withdraw,
)


def cfg(name: str, version: int = 1, line: int = 1) -> ServiceConfig:
    return ServiceConfig(name=name, command=("run", f"v{version}"), line=line)


def test_remove_stops_then_drops() -> None:
    t = ReloadTable({"db": cfg("db")})
    assert t.reload({}) == [Stop("db")]
    assert t.phase("db") is Phase.RETIRING
    assert t.stopped("db") == [Drop("db")]
    assert t.phase("db") is Phase.ABSENT and t.running() == {}


def test_re_added_while_retiring_is_replaced_not_lost() -> None:
    """Finding 2: removed, then re-added while its old instance still stops."""
    t = ReloadTable({"db": cfg("db")})
    t.reload({})
    # Its stop has been sent: it cannot be withdrawn, so it restarts.
    assert t.reload({"db": cfg("db", line=4)}, signalled={"db"}) == []
    assert t.phase("db") is Phase.REPLACING
    assert t.stopped("db") == [Replace(cfg("db", line=4))]
    assert t.phase("db") is Phase.CURRENT
    assert t.reload({"db": cfg("db", line=4)}) == []  # later reloads: no change


def test_re_added_before_its_stop_was_sent_keeps_running() -> None:
    t = ReloadTable({"db": cfg("db")})
    t.reload({})
    assert t.reload({"db": cfg("db", line=9)}) == [Withdraw("db")]
    assert t.phase("db") is Phase.CURRENT and not t.pending("db")


def test_an_operator_stop_is_never_withdrawn() -> None:
    t = ReloadTable({"db": cfg("db")})
    t.reload({}, shared={"db"})
    assert t.reload({"db": cfg("db")}) == []
    assert t.phase("db") is Phase.REPLACING


def test_change_remove_re_add_runs_the_last_definition() -> None:
    """Finding 3: v2 while v1 stops, then removed, then v1 again: v1 runs after."""
    t = ReloadTable({"db": cfg("db", 1)})
    assert t.reload({"db": cfg("db", 2)}) == [Stop("db")]
    assert t.replacements() == {"db": cfg("db", 2)}
    assert t.reload({}, signalled={"db"}) == []
    assert t.replacements() == {}
    assert t.reload({"db": cfg("db", 1)}, signalled={"db"}) == []
    assert t.stopped("db") == [Replace(cfg("db", 1))]
    assert t.running() == {"db": cfg("db", 1)} and t.replacements() == {}


def test_added_name_starts_and_a_changed_one_is_replaced_by_the_newest() -> None:
    t = ReloadTable({})
    assert t.reload({"web": cfg("web")}) == [Add(cfg("web"))]
    assert t.reload({"web": cfg("web", 2)}) == [Stop("web")]
    assert t.reload({"web": cfg("web", 3)}, signalled={"web"}) == []
    assert t.stopped("web") == [Replace(cfg("web", 3))]


def test_line_numbers_are_not_a_change() -> None:
    t = ReloadTable({"db": cfg("db", line=1)})
    assert t.reload({"db": cfg("db", line=7)}) == []
    assert t.phase("db") is Phase.CURRENT


@pytest.mark.parametrize("phase", [Phase.ABSENT, Phase.CURRENT])
def test_a_stop_nobody_asked_for_is_illegal(phase: Phase) -> None:
    t = ReloadTable({"db": cfg("db")} if phase is Phase.CURRENT else {})
    with pytest.raises(IllegalReloadTransition, match="db: stopped while"):
        t.stopped("db")


def test_the_table_covers_every_meaningful_pair() -> None:
    illegal = {
        (Phase.ABSENT, Want.SAME),
        (Phase.ABSENT, Want.STOPPED),
        (Phase.CURRENT, Want.STOPPED),
    }
    every = {(p, w) for p in Phase for w in Want}
    assert set(_TRANSITIONS) == every - illegal
