"""The tailor app: one mode per screen, one stage running at a time in a thread worker."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from app.tui.job_state import JobState
from app.tui.loader import DataCache, load
from app.tui.runner import StageRun, StageUpdate, run_stage
from app.tui.stages import BY_KEY, STAGES

SCREENS = ("pipeline", "problems", "runs", "results", "settings")
WARM_AFTER_S = 0.5  # after the first screen has drawn
GC_GEN0 = 20_000


def _lazy(module: str, cls: str) -> Callable[[], Screen]:
    """A screen factory that imports its module on first use, to open the app quickly."""

    def make() -> Screen:
        return getattr(importlib.import_module(f"app.tui.screens.{module}"), cls)()

    return make


class TailorApp(App):
    CSS_PATH = "app.tcss"
    MODES: ClassVar = {
        "pipeline": _lazy("pipeline", "PipelineScreen"),
        "problems": _lazy("problems", "ProblemsScreen"),
        "runs": _lazy("runs", "RunsScreen"),
        "results": _lazy("results", "ResultsScreen"),
        "settings": _lazy("settings", "SettingsScreen"),
    }
    TITLE = "tailor"
    BINDINGS: ClassVar = [
        Binding("1", "show('pipeline')", "Pipeline"),
        Binding("2", "show('problems')", "Problems"),
        Binding("3", "show('runs')", "Runs"),
        Binding("4", "show('results')", "Results"),
        Binding("5", "show('settings')", "Settings"),
        Binding("t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        project: Path | str,
        *,
        job_cls=None,
        collect_results: Callable | None = None,
        ping: Callable | None = None,
    ):
        """job_cls: the MLX job class stages launch (tests pass a fake); collect_results and
        ping default to app.results.collect and app.pipeline.ping.ping."""
        # Mounting a screen allocates tens of thousands of short-lived objects; at
        # Python's default gen-0 threshold (700) the collector runs hundreds of times
        # over the whole heap while a screen draws. Ten first screens on 100k problems,
        # interleaved: median 0.81 s at the default, 0.68 s at this threshold (a one-off
        # script, not in benchmarks/); the app holds no large cyclic data.
        gc.set_threshold(max(gc.get_threshold()[0], GC_GEN0), *gc.get_threshold()[1:])
        super().__init__()
        self.project = Path(project)
        self.job_cls = job_cls
        self.collect_results = collect_results
        self.ping = ping
        self.job = JobState()
        self.stage_run: StageRun | None = None
        self._store = None
        self.data_cache = DataCache()
        self.sub_title = self.project.resolve().name

    # -- the UI thread's store (sqlite: one connection per thread) --------------

    @property
    def store(self):
        if self._store is None:
            from app.config import DB_NAME
            from app.store import Store

            self._store = Store(self.project / DB_NAME)
        return self._store

    def load(self, node, key, fn, done, failed=None) -> bool:
        """A screen's data off the UI thread, cached until the store changes (app.tui.loader)."""
        return load(self, node, key, fn, done, failed)

    def on_mount(self) -> None:
        from app.config import load_config
        from app.errors import ConfigError

        try:
            load_config(self.project)
        except ConfigError:  # Settings shows every problem at its line
            self.switch_mode("settings")
        else:
            self.switch_mode("pipeline")
        self.set_timer(WARM_AFTER_S, self._warm_imports)

    def _warm_imports(self) -> None:
        """Import the statistics (scipy, ~1 s) while the user reads the first screen, not
        when they first open Results: an import holds the interpreter wherever it runs."""

        def warm() -> None:
            import app.results  # noqa: F401

        self.run_worker(warm, thread=True, group="warm", exit_on_error=False)

    def on_unmount(self) -> None:
        if self.stage_run:
            self.stage_run.cancel()  # stop a child MLX process rather than orphan it
        if self._store is not None:
            self._store.close()

    # -- navigation -------------------------------------------------------------

    def action_show(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    # -- stages -----------------------------------------------------------------

    def start_stage(self, key: str, opts: dict) -> bool:
        """Start a stage in a thread worker; False (with a notice) if one is already running."""
        if self.job.running:
            self.notify(f"{self.job.key} is running; cancel it first", severity="warning")
            return False
        stage = BY_KEY[key]
        if stage.make is None:
            self.notify(f"{key}: run `tailor import FILE` in a shell", severity="warning")
            return False
        if stage.needs_dataset and not (opts.get("dataset") or opts.get("resume")):
            self.notify(f"{key} needs a dataset name", severity="warning")
            return False
        self.stage_run = run = StageRun(key)
        self.job.begin(key, self.store.tui_usage_totals(), stage.on_cancel)
        self._sync_pipeline()
        self.run_worker(
            partial(run_stage, self.project, run, stage.make(opts), self.post_message, self.job_cls),
            thread=True,
            group="stage",
            name=f"stage {key}",
            exit_on_error=False,
        )
        return True

    def cancel_stage(self) -> None:
        if not (self.job.running and self.stage_run):
            self.notify("no stage is running")
            return
        self.job.status = "cancelling"
        self.stage_run.cancel()
        self._sync_pipeline()

    def on_stage_update(self, msg: StageUpdate) -> None:
        if self.stage_run is None or msg.key != self.stage_run.key:
            return
        was_cancelling = self.job.status == "cancelling"
        self.job.apply(msg.kind, total=msg.total, n=msg.n, text=msg.text, status=msg.status)
        if was_cancelling and self.job.status == "running":
            self.job.status = "cancelling"
        if msg.kind == "finished":
            self.stage_run = None
            severity = {"done": "information", "cancelled": "warning"}.get(msg.status, "error")
            self.notify(f"{msg.key}: {msg.status}" + (f" — {msg.text}" if msg.text else ""), severity=severity)
        self._sync_pipeline(full=msg.kind == "finished")

    def _sync_pipeline(self, full: bool = False) -> None:
        try:
            stack = self.get_screen_stack("pipeline")
        except KeyError:  # not shown yet
            return
        for screen in stack:
            if screen.is_mounted and hasattr(screen, "sync_job"):
                screen.reload() if full else screen.sync_job()

    # -- command palette: every binding and every stage -------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        builtin = list(super().get_system_commands(screen))
        yield from builtin
        # The footer's keys of this app and screen, by their names: not the focused widget's
        # (a table's cursor moves), not hidden ones, none twice, none Textual already lists.
        seen = {c.title.lower() for c in builtin}
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not (b.description and b.show) or active.node not in (self, screen) or b.action.startswith("show("):
                continue  # (the screens are listed below as "Go to …")
            if b.description.lower() in seen:
                continue
            seen.add(b.description.lower())
            yield SystemCommand(
                b.description,
                f"key {key}",
                partial(self.call_later, self.run_action, b.action, active.node),
            )
        for n, name in enumerate(SCREENS, 1):
            yield SystemCommand(f"Go to {name}", f"key {n}", partial(self.action_show, name))
        for stage in STAGES:
            if stage.make is not None:
                yield SystemCommand(
                    f"Run stage: {stage.title}",
                    f"start `{stage.key}` with the pipeline screen's options",
                    partial(self._run_from_palette, stage.key),
                )
        if "cancel stage" not in seen:  # from any screen, not only the pipeline's key c
            yield SystemCommand("Cancel stage", "stop the running stage; finished work is kept", self.cancel_stage)

    def _run_from_palette(self, key: str) -> None:
        self.action_show("pipeline")
        screen = self.get_screen_stack("pipeline")[0]
        self.start_stage(key, screen.options())
