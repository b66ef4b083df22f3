"""Runs: every training run with its seed, status and best iteration, and a live loss plot."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from app.tui.widgets.loss_plot import LossPlot

STATUS_STYLE = {"running": "bold cyan", "done": "green", "interrupted": "yellow", "failed": "bold red"}
REFRESH_S = 2.0  # a training report arrives every few seconds at most


class RunsScreen(Screen):
    BINDINGS: ClassVar = [Binding("f5", "reload", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for col, width in (
            ("run", 22),
            ("label", 18),
            ("seed", 4),
            ("status", 11),
            ("best iter", 9),
            ("best val", 8),
            ("stop", 10),
            ("tok/s", 7),
            ("peak GB", 7),
        ):
            table.add_column(col, key=col, width=width)
        yield table
        yield Label("", id="run-stats")
        yield LossPlot(id="loss-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.selected: str | None = None
        # Polls only while something may be writing curves (a run in the store is "running").
        self._timer = self.set_interval(REFRESH_S, self.reload, pause=True)
        self.reload()
        self.query_one("#runs-table", DataTable).focus()

    def on_screen_resume(self) -> None:
        if hasattr(self, "selected"):
            self.reload()

    def on_screen_suspend(self) -> None:
        self._timer.pause()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        store = self.app.store
        runs = store.runs()
        table = self.query_one("#runs-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for r in runs:
            tps = store.curve(r.id, "tokens_per_s")
            mem = store.curve(r.id, "peak_memory_gb")
            table.add_row(
                r.id,
                r.label or "",
                "" if r.seed is None else str(r.seed),
                Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                "" if r.best_iter is None else str(r.best_iter),
                "" if r.best_val_loss is None else f"{r.best_val_loss:.4f}",
                r.stop_reason or "",
                f"{tps[-1][1]:.0f}" if tps else "",
                f"{max(v for _, v in mem):.2f}" if mem else "",
                key=r.id,
            )
        if runs:
            table.move_cursor(row=min(cursor, len(runs) - 1))
        live = any(r.status == "running" for r in runs) or self.app.job.running
        self._timer.resume() if live else self._timer.pause()
        self.show_run(runs[table.cursor_row].id if runs else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self.selected:
            self.show_run(event.row_key.value)

    def show_run(self, run_id: str | None) -> None:
        self.selected = run_id
        store = self.app.store
        run = store.get_run(run_id) if run_id else None
        plot = self.query_one("#loss-plot", LossPlot)
        if run is None:
            plot.show_run(None, [], [], None)
            self.query_one("#run-stats", Label).update("no training runs yet (Pipeline → train)")
            return
        train, val = store.curve(run.id, "train_loss"), store.curve(run.id, "val_loss")
        plot.show_run(run.id, train, val, run.best_iter)
        tps = store.curve(run.id, "tokens_per_s")
        mem = store.curve(run.id, "peak_memory_gb")
        parts = [f"{len(train)} train / {len(val)} val points"]
        if run.best_iter is not None:
            parts.append(f"best iteration {run.best_iter} (val {run.best_val_loss:.4f})")
        if tps:
            parts.append(f"{sum(v for _, v in tps) / len(tps):.0f} tok/s mean")
        if mem:
            parts.append(f"peak {max(v for _, v in mem):.2f} GB")
        if run.dtype or run.blas:
            parts.append(f"{run.dtype or ''} {run.blas or ''}".strip())
        self.query_one("#run-stats", Label).update(" · ".join(parts))
