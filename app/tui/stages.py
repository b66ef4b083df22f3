"""The pipeline stages as the TUI shows and runs them: rows from the stage registry
(app/stages.py), called with the pipeline screen's options. Pipeline modules are
imported when a stage starts, so the app opens without loading them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app import stages as registry

Call = Callable[..., object]  # (cfg, store, events, *, project, job_cls) -> result


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    counts: Callable[[dict], str]
    # opts (split, dataset, tiers) -> the call; None = not runnable from here (import needs a file)
    make: Callable[[dict], Call] | None
    needs_dataset: bool = False
    on_cancel: str = registry.RERUN


def _maker(stage: registry.Stage) -> Callable[[dict], Call]:
    def make(o: dict) -> Call:
        def call(cfg, store, events, *, project, job_cls):
            # The dataset box names the set the later stages use; sample has its own boxes.
            given = {
                "split": o.get("split"),
                "resume": o.get("resume"),
                "dataset": o.get("dataset"),
                "name": o.get("sample_name"),
                "tiers": o.get("tiers"),
                **{k: o.get(k) for k in ("strategy", "k", "seed")},
            }
            options = {k: given[k] for k in stage.tui if given[k] is not None}
            return stage.run(cfg, store, events, project=project, job_cls=job_cls, **options)

        return call

    return make


def tui_stages() -> tuple[Stage, ...]:
    return tuple(
        Stage(s.name, s.label, s.counts, _maker(s) if s.tui is not None else None, s.needs_dataset, s.on_cancel)
        for s in registry.STAGES
        if s.counts is not None
    )


STAGES: tuple[Stage, ...] = tui_stages()
BY_KEY = {s.key: s for s in STAGES}
