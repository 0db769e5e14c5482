"""The Textual app of ``pyinit top``: draws a TopModel and turns keys into requests.

Requests go through a Transport (the control socket in real use, a fake in the
unit tests), each in a worker thread so a slow answer never freezes the keys.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Log, Static

from pyinit.top.model import COLUMNS, TopModel

LOG_WINDOW = 200  # lines asked for on each refresh of the followed log


class Transport(Protocol):
    def request(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def logs(self, name: str, lines: int) -> list[str]: ...


class TransportError(Exception):
    """pyinit did not answer, or not as this client expects; the message says why."""


class Confirm(ModalScreen[bool]):
    """y/n before an operation that takes a service down."""

    BINDINGS = [("y", "answer(True)", "yes"), ("n,escape", "answer(False)", "no")]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Label { border: round $warning; padding: 1 2; width: auto; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Label(f"{self.question} [y/n]")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class AskSignal(ModalScreen[str | None]):
    """Which signal to send: a name (HUP, SIGUSR1) or a number, typed then Enter.
    Keys are taken by on_key, as the filter's are (no focus to wait for)."""

    DEFAULT_CSS = """
    AskSignal { align: center middle; }
    AskSignal > Label { border: round $accent; padding: 1 2; width: auto; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.service = name
        self.typed = ""

    def compose(self) -> ComposeResult:
        yield Label(self._prompt())

    def _prompt(self) -> str:
        return f"Signal to send to {self.service} (HUP, USR1, 9...): {self.typed}\u2588"

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key == "escape":
            self.dismiss(None)
        elif event.key == "enter":
            self.dismiss(self.typed.strip() or None)
        elif event.key == "backspace":
            self.typed = self.typed[:-1]
        elif event.is_printable and event.character is not None:
            self.typed += event.character
        self.query_one(Label).update(self._prompt())


class TopApp(App[int]):
    """Services table on top, the selected service's log below, keys in the footer."""

    TITLE = "pyinit top"
    CSS = """
    #summary { height: 1; padding: 0 1; }
    #services { height: 1fr; min-height: 4; }
    #log { height: 1fr; border-top: solid $secondary; }
    #filter { height: 1; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("r", "restart", "restart"),
        Binding("s", "start", "start"),
        Binding("x", "stop", "stop"),
        Binding("k", "signal", "signal"),
        Binding("slash", "filter", "filter", key_display="/"),
    ]

    def __init__(self, transport: Transport, interval: float = 1.0) -> None:
        super().__init__()
        self.transport = transport
        self.interval = interval
        self.model = TopModel()
        self._refreshing = False
        self._drawing = False
        self._status: dict[str, Any] = {}
        self._filtering = False  # keys go to the filter (after `/`, until Enter or Esc)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="summary")
            table: DataTable[str] = DataTable(id="services", cursor_type="row", zebra_stripes=False)
            yield table
            yield Log(id="log", max_lines=2000)
            yield Static("/ to filter by name", id="filter")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#services", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        table.focus()
        await self.refresh_now()
        self.set_interval(self.interval, self.refresh_now)

    # -- refreshing -------------------------------------------------------------------

    async def refresh_now(self) -> None:
        if self._refreshing:
            return  # the previous answer is still on its way
        self._refreshing = True
        try:
            answer = await self._ask({"cmd": "status"})
            if answer is not None:
                status = answer.get("status")
                self._status = status if isinstance(status, dict) else {}
                self.model.update(self._status, time.monotonic())
                self._draw_table(self._status)
            await self._refresh_log()
        finally:
            self._refreshing = False

    async def _refresh_log(self) -> None:
        name = self.model.followed
        log = self.query_one("#log", Log)
        log.border_title = f"log: {name}" if name else "log"
        if name is None:
            return
        try:
            lines = await asyncio.to_thread(self.transport.logs, name, LOG_WINDOW)
        except TransportError as exc:
            self._say(str(exc))
            return
        if name != self.model.followed:
            return  # the selection moved while we waited
        new = self.model.set_log(lines)
        if len(new) == len(self.model.log_lines):
            log.clear()
        log.write_lines(new)

    def _draw_table(self, status: dict[str, Any]) -> None:
        table = self.query_one("#services", DataTable)
        rows = self.model.rows()
        self._drawing = True  # moving the cursor here is not the user selecting
        try:
            if [str(key.value) for key in table.rows] == [row.name for row in rows]:
                for row in rows:
                    for column, cell in zip(COLUMNS, row.cells, strict=True):
                        table.update_cell(row.name, column, cell)
            else:
                table.clear()
                for row in rows:
                    table.add_row(*row.cells, key=row.name)
            names = [row.name for row in rows]
            if self.model.selected in names:
                table.move_cursor(row=names.index(self.model.selected))
        finally:
            self._drawing = False
        if self.model.follow(self.model.selected):  # the filter moved the selection
            self.query_one("#log", Log).clear()
            if not self._refreshing:
                self.call_later(self._refresh_log)
        pid = status.get("pid", "?")
        shown = f"{len(rows)} of {len(self.model.services)}"
        where = f"filter '{self.model.filter}': {shown}" if self.model.filter else shown
        stopping = "  SHUTTING DOWN" if status.get("stopping") else ""
        line = f"pyinit pid {pid}  services {where}{stopping}"
        if self.model.message:
            line += f"  | {self.model.message}"
        self.query_one("#summary", Static).update(line)

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(self.transport.request, request)
        except TransportError as exc:
            self._say(str(exc))
            return None

    def _say(self, message: str) -> None:
        self.model.message = message
        self.query_one("#summary", Static).update(message)

    # -- selection and filter ----------------------------------------------------------

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._drawing or event.row_key.value is None:
            return
        self.model.select(str(event.row_key.value))
        if self.model.follow(self.model.selected):
            self.query_one("#log", Log).clear()
            await self._refresh_log()

    def action_filter(self) -> None:
        # Typed into by on_key rather than an Input widget: focus moves later than
        # keys arrive, so `/web` typed fast would lose letters to the table's keys.
        self._filtering = True
        self._show_filter()

    def on_key(self, event: events.Key) -> None:
        if not self._filtering:
            return
        event.stop()
        event.prevent_default()
        if event.key in ("enter", "escape"):
            self._filtering = False
            if event.key == "escape":
                self.model.set_filter("")
        elif event.key == "backspace":
            self.model.set_filter(self.model.filter[:-1])
        elif event.is_printable and event.character is not None:
            self.model.set_filter(self.model.filter + event.character)
        self._show_filter()
        self._redraw()

    def _show_filter(self) -> None:
        if self._filtering:
            text = f"/{self.model.filter}\u2588  (Enter: keep, Esc: clear)"
        elif self.model.filter:
            text = f"filter: {self.model.filter}  (/ to change)"
        else:
            text = "/ to filter by name"
        self.query_one("#filter", Static).update(text)

    def _redraw(self) -> None:
        self._draw_table(self._status)

    # -- operations --------------------------------------------------------------------

    async def _operate(self, cmd: str, **extra: Any) -> None:
        name = self.model.selected
        if name is None:
            return
        answer = await self._ask({"cmd": cmd, "services": [name], **extra})
        if answer is None:
            return
        if answer.get("ok"):
            done = ", ".join(answer.get("done", [])) or name
            self._say(f"{cmd}: {done}")
        else:
            errors = answer.get("errors") or [answer.get("error", "failed")]
            self._say(f"{cmd} {name}: {'; '.join(str(e) for e in errors)}")
        await self.refresh_now()

    async def action_restart(self) -> None:
        await self._operate("restart")

    async def action_start(self) -> None:
        await self._operate("start")

    def action_stop(self) -> None:
        name = self.model.selected
        if name is None:
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._operate("stop")

        self.push_screen(Confirm(f"Stop {name} (and what depends on it)?"), answered)

    def action_signal(self) -> None:
        name = self.model.selected
        if name is None:
            return

        async def answered(signal: str | None) -> None:
            if signal:
                await self._operate("signal", signal=signal)

        self.push_screen(AskSignal(name), answered)
