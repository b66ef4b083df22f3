"""Settings: the project's tailor.toml as loaded, its validation error in place, endpoint pings."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TextArea


def locate_key(toml_text: str, dotted: str) -> int | None:
    """The 0-based line where a dotted key (as a ConfigError names it) is set, if found."""
    table = ""
    best = None
    for i, line in enumerate(toml_text.splitlines()):
        s = line.strip()
        if m := re.match(r"^\[([^\[\]]+)\]", s):
            table = m.group(1).strip()
            if dotted == table or dotted.startswith(table + ".") and best is None:
                best = i
        elif m := re.match(r"^([A-Za-z0-9_\-]+)\s*=", s):
            full = f"{table}.{m.group(1)}" if table else m.group(1)
            if full == dotted:
                return i
    return best


class SettingsScreen(Screen):
    BINDINGS: ClassVar = [
        Binding("p", "ping", "Ping endpoints"),
        Binding("f5", "reload", "Reload config"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="config-status")
        yield TextArea(id="config-text", read_only=True, show_line_numbers=True, soft_wrap=False)
        yield DataTable(id="ping-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#ping-table", DataTable)
        for col in ("status", "role", "provider", "model", "latency", "detail"):
            table.add_column(col, key=col)
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        from app.config import CONFIG_NAME, load_config
        from app.errors import TailorError

        path = self.app.project / CONFIG_NAME
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        area = self.query_one("#config-text", TextArea)
        area.load_text(text)
        status = self.query_one("#config-status", Static)
        try:
            self.cfg = load_config(self.app.project)
        except TailorError as e:
            self.cfg = None
            msg = str(e).replace(str(path), CONFIG_NAME)
            parts = msg.split(": ")
            line = locate_key(text, parts[1]) if len(parts) > 2 else None
            where = f" (line {line + 1})" if line is not None else ""
            status.update(Text(f"✗ invalid{where}: {msg}"))
            status.set_classes("invalid")
            if line is not None:
                area.move_cursor((line, 0))
                area.select_line(line)
            return
        status.update(
            Text(
                f"✓ {CONFIG_NAME} is valid · student {self.cfg.student.model} · judge "
                f"{self.cfg.judge.provider} · press p to ping the endpoints"
            )
        )
        status.set_classes("valid")

    def action_ping(self) -> None:
        if self.cfg is None:
            self.notify("fix the configuration first", severity="error")
            return
        self.notify("pinging endpoints…")
        self._ping(self.cfg)

    @work(thread=True, exclusive=True, group="ping", exit_on_error=False)
    def _ping(self, cfg) -> None:
        ping = self.app.ping
        if ping is None:
            from app.pipeline.ping import ping
        try:
            results = ping(cfg)
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.notify, f"ping failed: {e}", severity="error")
            return
        self.app.call_from_thread(self._show_pings, results)

    def _show_pings(self, results) -> None:
        table = self.query_one("#ping-table", DataTable)
        table.clear()
        for r in results:
            lat = f"{r.latency_s * 1000:.0f} ms" if r.latency_s is not None else "—"
            table.add_row(
                Text("ok", style="green") if r.ok else Text("FAIL", style="bold red"),
                r.role,
                r.provider,
                r.model or "—",
                lat,
                r.detail,
            )
