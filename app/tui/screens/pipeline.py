"""Pipeline: every stage with its counts, status, progress, run/cancel, usage and errors."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    ListView,
    ProgressBar,
    RichLog,
    Select,
    Static,
)

from app.config import STRATEGIES
from app.records import SPLITS
from app.tui.stages import STAGES
from app.tui.widgets.labels import printable
from app.tui.widgets.stage_row import StageRow


def fresh_name(taken: list[str]) -> str:
    n = len(taken) + 1
    while f"set-{n}" in taken:
        n += 1
    return f"set-{n}"


class PipelineScreen(Screen):
    BINDINGS: ClassVar = [
        Binding("r", "run", "Run stage"),
        Binding("c", "cancel", "Cancel stage"),
        Binding("f5", "reload", "Refresh counts"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pipeline-options"):
            yield Label("split", classes="option-label")
            yield Select([(s, s) for s in SPLITS], value="train", allow_blank=False, id="split", compact=True)
            yield Label("dataset", classes="option-label")
            yield Input(placeholder="dataset name", id="dataset", compact=True)
            yield Checkbox("tiers R1–R6", id="tiers", compact=True)
        # sample makes a new set, so it has its own name (a fresh one by default) and draw
        with Horizontal(id="sample-options"):
            yield Label("sample into", classes="option-label")
            yield Input(id="sample-name", compact=True)
            yield Select([(s, s) for s in STRATEGIES], prompt="strategy: config", id="sample-strategy", compact=True)
            yield Input(placeholder="k: config", id="sample-k", type="integer", compact=True)
            yield Input(placeholder="seed: config", id="sample-seed", type="integer", compact=True)
        yield Static("", id="usage")
        yield ListView(*(StageRow(s.key, s.title, s.make is not None) for s in STAGES), id="stages")
        with Horizontal(id="progress-row"):
            yield Label("", id="progress-label")
            yield ProgressBar(total=None, show_eta=True, id="stage-progress")
        with Horizontal(id="pipeline-bottom"):
            with Vertical(id="log-box"):
                yield Label("log", classes="section-title")
                yield RichLog(id="log", max_lines=500, wrap=True)  # a long path wraps, not cut
            with Vertical(id="errors-box"):
                yield Label("last errors", classes="section-title")
                yield Static("none", id="errors")
        yield Footer()

    def on_mount(self) -> None:
        # Token and cost counters move while a stage runs; the timer idles otherwise.
        self._ticker = self.set_interval(1.0, self._tick, pause=True)
        self._logged = 0
        self._counts: dict | None = None
        self._usage: dict | None = None
        self._names: list[str] | None = None
        self.query_one("#progress-row").display = self.app.job.running
        self.reload()
        self.query_one("#stages", ListView).focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def options(self) -> dict:
        def number(wid: str) -> int | None:
            text = self.query_one(wid, Input).value.strip()
            return int(text) if text.lstrip("-").isdigit() else None

        strategy = self.query_one("#sample-strategy", Select)
        return {
            "split": self.query_one("#split", Select).value,
            "dataset": self.query_one("#dataset", Input).value.strip(),
            "tiers": self.query_one("#tiers", Checkbox).value,
            "sample_name": self.query_one("#sample-name", Input).value.strip(),
            "strategy": None if strategy.is_blank() else strategy.value,
            "k": number("#sample-k"),
            "seed": number("#sample-seed"),
        }

    def _selected_key(self) -> str:
        item = self.query_one("#stages", ListView).highlighted_child
        return item.key if isinstance(item, StageRow) else STAGES[0].key

    # -- actions ------------------------------------------------------------------

    def action_run(self) -> None:
        self.app.start_stage(self._selected_key(), self.options())

    def action_cancel(self) -> None:
        self.app.cancel_stage()

    def action_reload(self) -> None:
        self.reload()

    def on_stage_row_pressed(self, event: StageRow.Pressed) -> None:
        job = self.app.job
        if job.running and job.key == event.key:
            self.app.cancel_stage()
        else:
            self.app.start_stage(event.key, self.options())

    # -- rendering ------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the counts (a few aggregate queries, off the UI thread) and redraw every row."""

        def fetch(store) -> tuple[dict, list[str], dict]:
            return store.tui_stage_counts(), store.dataset_names(), store.tui_usage_totals()

        self.app.load(self, ("pipeline",), fetch, self._loaded)

    def _loaded(self, data: tuple[dict, list[str], dict]) -> None:
        first = self._names is None
        self._counts, self._names, self._usage = data
        if first:
            if self._names:
                self.query_one("#dataset", Input).value = self._names[-1]
            self.query_one("#sample-name", Input).value = fresh_name(self._names)
        self._follow_new_set()
        self.sync_job()

    def _follow_new_set(self) -> None:
        """Once sample has made the set named in its box, the later stages use it and the
        box offers a fresh name: it never holds a name that is taken."""
        box = self.query_one("#sample-name", Input)
        if box.value.strip() in self._names:
            self.query_one("#dataset", Input).value = box.value.strip()
            box.value = fresh_name(self._names)

    def _tick(self) -> None:
        self.reload()

    def sync_job(self) -> None:
        job = self.app.job
        for row in self.query(StageRow):
            stage = next(s for s in STAGES if s.key == row.key)
            active = job.key == row.key and job.status != "idle"
            counts = "…" if self._counts is None else stage.counts(self._counts)
            row.show(counts, job.status if active else "", job.total, job.n, active)
        # Only a running stage has a bar: a finished one's would animate or count down its ETA.
        self.query_one("#progress-row").display = job.running
        if job.running:
            self.query_one("#progress-label", Label).update(job.phase or job.key or "")
            self.query_one("#stage-progress", ProgressBar).update(total=job.total, progress=job.n)
        if job.running:
            self._ticker.resume()
        else:
            self._ticker.pause()
        self._show_usage()
        log = self.query_one("#log", RichLog)
        new = job.logged - self._logged
        if new > len(job.log):  # more than the deque kept: redraw what is left
            log.clear()
            new = len(job.log)
        if new:
            for line in list(job.log)[-new:]:
                log.write(Text(printable(line)))  # Text, not markup, like the errors
        self._logged = job.logged
        # Text, not markup: an error quoting "[...]" from a model is shown as written
        self.query_one("#errors", Static).update(Text(printable("\n".join(job.errors)) or "none"))

    def _show_usage(self) -> None:
        u = self._usage
        if u is None:
            self.query_one("#usage", Static).update("loading…")
            return
        text = (
            f"remote: {u['calls']:,} calls ({u['errors']:,} errors) · "
            f"{u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion tokens · ${u['cost']:.4f}"
        )
        job = self.app.job
        if job.running and job.usage_start:
            s = job.usage_start
            toks = u["prompt_tokens"] + u["completion_tokens"] - s["prompt_tokens"] - s["completion_tokens"]
            text += f"   this run: +{toks:,} tokens, +${u['cost'] - s['cost']:.4f}"
        self.query_one("#usage", Static).update(text)
