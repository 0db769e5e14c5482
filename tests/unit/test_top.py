"""``pyinit top``: the view model as plain data, and the app driven by Textual's pilot
against a fake transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyinit.errors import UsageError
from pyinit.statustable import format_bytes
from pyinit.top import parse_interval
from pyinit.top.app import TopApp, TransportError
from pyinit.top.model import TopModel


def svc(state: str = "running", **extra: Any) -> dict[str, Any]:
    return {"state": state, "ready": True, "health": None, "restarts": 0, "uptime": 5.0, **extra}


def test_rows_filter_and_selection() -> None:
    model = TopModel()
    model.update({"services": {"web": svc(), "worker": svc(), "db": svc("backoff")}}, 0.0)
    assert [r.name for r in model.rows()] == ["web", "worker", "db"]
    assert model.selected == "web"
    model.move(+1)
    assert model.selected == "worker"
    model.set_filter("D")  # case-insensitive
    assert [r.name for r in model.rows()] == ["db"]
    assert model.selected == "db"  # the selection stays on what is shown
    model.set_filter("")
    model.move(-5)
    assert model.selected == "web"
    row = model.rows()[2]
    assert row.cells[:3] == ("db", "backoff", "yes")


def test_cpu_percent_from_successive_answers_and_memory_column() -> None:
    model = TopModel()
    first = svc(cpu_seconds=10.0, cpu_percent=3.0, memory_rss_bytes=52 * 1024 * 1024, processes=2)
    model.update({"services": {"web": first}}, 100.0)
    assert model.cpu_percent("web") == 3.0  # pyinit's own figure on the first look
    model.update({"services": {"web": svc(cpu_seconds=10.5)}}, 102.0)
    assert model.cpu_percent("web") == 25.0
    cells = dict(zip(("cpu", "mem"), model.rows()[0].cells[6:8], strict=True))
    assert cells == {"cpu": "25.0", "mem": "-"}
    model.update({"services": {"web": first}}, 103.0)  # a new run: the counter fell
    assert model.rows()[0].cells[6:8] == ("3.0", "52.0M")
    model.update({"services": {"web": svc()}}, 104.0)  # an older pyinit: no figures
    assert model.rows()[0].cells[6:8] == ("-", "-")
    down = svc("backoff", cpu_seconds=None, memory_rss_bytes=0, processes=0)
    model.update({"services": {"web": down}}, 105.0)  # no process: nothing to show
    assert model.rows()[0].cells[6:8] == ("-", "-")


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (None, 500, 2048, 150 * 1024**2, 3 * 1024**3)] == [
        "-",
        "500B",
        "2.0K",
        "150M",
        "3.0G",
    ]


def test_followed_log_appends_only_new_lines() -> None:
    model = TopModel()
    assert model.follow("web")
    assert not model.follow("web")
    assert model.set_log(["a", "b"]) == ["a", "b"]
    assert model.set_log(["a", "b", "c"]) == ["c"]
    assert model.set_log(["b", "c", "d", "e"]) == ["d", "e"]  # the window slid on
    assert model.set_log(["x", "y"]) == ["x", "y"]  # no overlap: start over
    assert model.log_lines == ["x", "y"]
    assert model.follow("db") and model.log_lines == []


def test_interval_option() -> None:
    assert parse_interval([]) == 1.0
    assert parse_interval(["--interval", "500ms"]) == 0.5
    assert parse_interval(["--interval=2s"]) == 2.0
    for bad in (["--interval"], ["--interval", "0"], ["--interval", "x"], ["web"]):
        with pytest.raises(UsageError):
            parse_interval(bad)


class FakePyinit:
    """A pyinit as the control socket shows it: restarts count, logs grow."""

    def __init__(self) -> None:
        self.services = {"web": svc(), "worker": svc(), "db": svc()}
        self.lines: dict[str, list[str]] = {n: [f"{n} line 1"] for n in self.services}
        self.requests: list[dict[str, Any]] = []
        self.down = False

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise TransportError("cannot reach pyinit at /run/pyinit/control.sock: gone")
        self.requests.append(request)
        cmd = request["cmd"]
        if cmd == "status":
            return {"ok": True, "status": {"pid": 1, "services": self.services}}
        for name in request["services"]:
            if cmd == "restart":
                self.services[name]["restarts"] += 1
                self.lines[name].append(f"{name} restarted")
            elif cmd == "stop":
                self.services[name]["state"] = "stopped"
        return {"ok": True, "done": request["services"]}

    def logs(self, name: str, lines: int) -> list[str]:
        return self.lines[name][-lines:]


def run(coro: Any) -> None:
    asyncio.run(coro)


def table_text(app: TopApp) -> list[list[str]]:
    table = app.query_one("#services")
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]  # type: ignore[attr-defined]


def log_text(app: TopApp) -> list[str]:
    return list(app.query_one("#log").lines)  # type: ignore[attr-defined]


def test_app_select_follow_restart_stop_and_filter() -> None:
    fake = FakePyinit()

    async def scenario() -> None:
        app = TopApp(fake, interval=60)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert [row[0] for row in table_text(app)] == ["web", "worker", "db"]
            assert log_text(app) == ["web line 1"]
            await pilot.press("down")
            await pilot.pause()
            assert app.model.selected == "worker"
            assert log_text(app) == ["worker line 1"]
            await pilot.press("r")
            await pilot.pause()
            assert {"cmd": "restart", "services": ["worker"]} in fake.requests
            assert table_text(app)[1][4] == "1"  # RESTARTS
            assert log_text(app) == ["worker line 1", "worker restarted"]
            # stop asks first: n keeps it running, y stops it
            await pilot.press("x")
            await pilot.press("n")
            await pilot.pause()
            assert not any(r["cmd"] == "stop" for r in fake.requests)
            await pilot.press("x")
            await pilot.press("y")
            await pilot.pause()
            assert {"cmd": "stop", "services": ["worker"]} in fake.requests
            assert table_text(app)[1][1] == "stopped"
            # signal: asks which
            await pilot.press("k")
            await pilot.press(*"HUP", "enter")
            await pilot.pause()
            assert {"cmd": "signal", "services": ["worker"], "signal": "HUP"} in fake.requests
            # filter
            await pilot.press("slash", "d", "b", "enter")
            await pilot.pause()
            assert [row[0] for row in table_text(app)] == ["db"]
            assert log_text(app) == ["db line 1"]
            await pilot.press("q")
        assert app.return_code in (0, None)

    run(scenario())


def test_app_keeps_running_when_pyinit_goes_away() -> None:
    fake = FakePyinit()

    async def scenario() -> None:
        app = TopApp(fake, interval=60)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            fake.down = True
            await app.refresh_now()
            await pilot.pause()
            summary = str(app.query_one("#summary").render())
            assert "cannot reach pyinit" in summary
            assert [row[0] for row in table_text(app)] == ["web", "worker", "db"]

    run(scenario())
