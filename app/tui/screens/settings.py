"""Settings: the project's tailor.toml as loaded, every problem with it at its line, endpoint pings."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TextArea

SHOWN = 6  # problems listed above the file; the editor keeps the rest of the screen


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
        from app.config import CONFIG_NAME, config_problems, load_config
        from app.errors import TailorError

        path = self.app.project / CONFIG_NAME
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        except UnicodeDecodeError:
            text = path.read_text(encoding="utf-8", errors="replace")
        area = self.query_one("#config-text", TextArea)
        area.load_text(text)
        status = self.query_one("#config-status", Static)
        try:
            self.cfg = load_config(self.app.project)
        except TailorError as e:
            self.cfg = None
            # every problem at its line, TOML syntax errors included; the file-level ones
            # (missing, not UTF-8) have no line
            problems = config_problems(text) if path.exists() and "UTF-8" not in str(e) else []
            problems = problems or [(None, str(e).replace(str(path), CONFIG_NAME))]
            lines = [f"line {line}: {msg}" if line else msg for line, msg in problems[:SHOWN]]
            if len(problems) > SHOWN:
                lines.append(f"… and {len(problems) - SHOWN} more")
            head = f"✗ {CONFIG_NAME} is invalid ({len(problems)} problem{'s' * (len(problems) > 1)}):"
            status.update(Text("\n".join([head, *lines])))
            status.set_classes("invalid")
            first = next((line for line, _ in problems if line), None)
            if first is not None:
                area.move_cursor((first - 1, 0))
                area.select_line(first - 1)
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
