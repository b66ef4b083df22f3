"""Runs: every training run with its seed, status and best iteration, and a live loss plot.

A run that starts training is selected and followed (its plot redraws as reports
arrive) until the user picks another row. `c` cancels the training stage; `r` resumes
the selected interrupted run from its last checkpoint, as `tailor train --resume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from app.tui.widgets.columns import Col, fill
from app.tui.widgets.loss_plot import LossPlot

STATUS_STYLE = {"running": "bold cyan", "done": "green", "interrupted": "yellow", "failed": "bold red"}
REFRESH_S = 2.0  # a training report arrives every few seconds at most
COLUMNS = (
    Col("run", min=12, max=60, flex=True),
    Col("label", min=5, max=24, drop=1),
    Col("seed", min=4, max=4),
    Col("status", min=6, max=11),
    Col("best iter", min=4, max=9, drop=3),
    Col("best val", min=6, max=8),
    Col("stop", min=4, max=11, drop=2),
    Col("tok/s", min=5, max=7, drop=4),
    Col("peak GB", min=5, max=7, drop=5),
)


class RunsScreen(Screen):
    BINDINGS: ClassVar = [
        Binding("f5", "reload", "Refresh"),
        Binding("c", "cancel", "Cancel training"),
        Binding("r", "resume", "Resume run"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="run-stats")
        yield LossPlot(id="loss-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.selected: str | None = None
        self.following: str | None = None  # the running run the cursor follows
        self._rows: list = []
        self._seen_running: set[str] = set()
        # Polls only while something may be writing curves (a run in the store is "running").
        self._timer = self.set_interval(REFRESH_S, self.reload, pause=True)
        self.reload()
        self.query_one("#runs-table", DataTable).focus()

    def on_screen_resume(self) -> None:
        if hasattr(self, "selected"):
            self.reload()

    def on_screen_suspend(self) -> None:
        self._timer.pause()

    def on_resize(self, event: events.Resize) -> None:
        if getattr(self, "_rows", None):
            self._fill(self._rows)

    def action_reload(self) -> None:
        self.reload()

    def action_cancel(self) -> None:
        self.app.cancel_stage()
        self.reload()  # says it is stopping

    def action_resume(self) -> None:
        run = next((r for r, _, _ in self._rows if r.id == self.selected), None)
        if run is None:
            self.notify("no run selected")
        elif run.status == "running" and self.app.job.status == "cancelling":
            self.notify(f"run {run.id} is still stopping: it saves a checkpoint at the end of its iteration")
        elif run.status not in ("interrupted", "failed"):
            self.notify(f"run {run.id} is {run.status}; only an interrupted run can be resumed", severity="warning")
        elif self.app.start_stage("train", {"resume": run.id}):
            self.following = run.id
            self.reload()  # polls again while the resumed run trains

    def reload(self) -> None:
        self.app.load(self, ("runs",), lambda store: store.tui_runs(), self._fill)

    def _fill(self, rows: list) -> None:
        self._rows = rows
        running = {r.id for r, _, _ in rows if r.status == "running"}
        started = [r.id for r, _, _ in rows if r.id in running - self._seen_running]
        self._seen_running |= running
        if started:  # a run began training: follow it
            self.following = started[-1]
        table = self.query_one("#runs-table", DataTable)
        keep = self.following or self.selected
        fill(
            table,
            COLUMNS,
            [
                [
                    r.id,
                    r.label or "",
                    "" if r.seed is None else str(r.seed),
                    Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                    "" if r.best_iter is None else str(r.best_iter),
                    "" if r.best_val_loss is None else f"{r.best_val_loss:.4f}",
                    r.stop_reason or "",
                    "" if tps is None else f"{tps:.0f}",
                    "" if peak is None else f"{peak:.2f}",
                ]
                for r, tps, peak in rows
            ],
            keys=[r.id for r, _, _ in rows],
        )
        ids = [r.id for r, _, _ in rows]
        if rows:
            table.move_cursor(row=ids.index(keep) if keep in ids else len(ids) - 1)
        live = bool(running) or self.app.job.running
        self._timer.resume() if live else self._timer.pause()
        self.show_run(ids[table.cursor_row] if rows else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # posted while the rows were refilled, since overtaken by the cursor
        if event.row_key.value != self.selected:
            self.following = None  # the user chose a row: stop following
            self.show_run(event.row_key.value)

    def show_run(self, run_id: str | None) -> None:
        self.selected = run_id
        if run_id is None:
            self.query_one("#loss-plot", LossPlot).show_run(None, [], [], None)
            self.query_one("#run-stats", Label).update("no training runs yet (Pipeline → train)")
            return
        self.app.load(self, ("run", run_id), lambda store: store.tui_run_detail(run_id), self._show_detail)

    def _show_detail(self, d: dict | None) -> None:
        if d is None or d["run"].id != self.selected:
            return
        run, train, val, tps, mem = d["run"], d["train_loss"], d["val_loss"], d["tokens_per_s"], d["peak_memory_gb"]
        self.query_one("#loss-plot", LossPlot).show_run(run.id, train, val, run.best_iter)
        parts = [f"{len(train)} train / {len(val)} val points"]
        if run.best_iter is not None:
            parts.append(f"best iteration {run.best_iter} (val {run.best_val_loss:.4f})")
        if tps:
            parts.append(f"{sum(v for _, v in tps) / len(tps):.0f} tok/s mean")
        if mem:
            parts.append(f"peak {max(v for _, v in mem):.2f} GB")
        if run.dtype or run.blas:
            parts.append(f"{run.dtype or ''} {Path(run.blas).name if run.blas else ''}".strip())
        if run.status in ("interrupted", "failed"):
            parts.append("r: resume")
        elif run.status == "running":
            job = self.app.job
            if job.running and run.id in job.phase and job.total:  # the stage's own count of updates
                parts.append(f"iteration {job.n:,}/{job.total:,}")
            # a stop takes effect at the end of the iteration, which saves the checkpoint resume starts from
            parts.append("stopping after this iteration…" if job.status == "cancelling" else "c: cancel")
        self.query_one("#run-stats", Label).update(" · ".join(parts))
