"""The pipeline stages the TUI can run: how each is called (exactly as app/cli.py calls
it) and how its counts read. Pipeline modules are imported when a stage starts, so the
app opens without loading them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Call = Callable[..., object]  # (cfg, store, events, *, project, job_cls) -> result


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    counts: Callable[[dict], str]
    # opts (split, dataset) -> the call; None = not runnable from here (import needs a file)
    make: Callable[[dict], Call] | None
    needs_dataset: bool = False


def _diagnose(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.diagnose import diagnose

        return diagnose(cfg, store, events, project=project, split=o["split"], job_cls=job_cls)

    return call


def _grade(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.grade import grade

        return grade(cfg, store, events, split=o["split"])

    return call


def _sample(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.sample import sample

        return sample(cfg, store, events, name=o["dataset"])

    return call


def _teach(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.teach import teach

        return teach(cfg, store, events, dataset=o["dataset"])

    return call


def _verify(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.verify import verify

        return verify(cfg, store, events, dataset=o["dataset"])

    return call


def _export(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.export import export

        return export(cfg, store, events, dataset=o["dataset"], project=project)

    return call


def _train(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.train import train

        return train(cfg, store, events, project=project, dataset=o["dataset"], job_cls=job_cls)

    return call


def _evaluate(o: dict) -> Call:
    def call(cfg, store, events, *, project, job_cls):
        from app.pipeline.evaluate import evaluate

        return evaluate(cfg, store, events, project=project, tiers=o.get("tiers", False), job_cls=job_cls)

    return call


STAGES: tuple[Stage, ...] = (
    Stage("import", "import", lambda c: f"{c['problems']:,} problems", None),
    Stage("diagnose", "diagnose", lambda c: f"{c['diagnosed']:,} diagnosed", _diagnose),
    Stage(
        "grade",
        "grade",
        lambda c: (
            f"E {c['easy']:,} / M {c['medium']:,} / H {c['hard']:,}"
            + (f" / ? {c['ungraded']:,}" if c["ungraded"] else "")
        ),
        _grade,
    ),
    Stage("sample", "sample", lambda c: f"{c['sampled']:,} sampled in {c['datasets']} sets", _sample, True),
    Stage("teach", "teach", lambda c: f"{c['taught']:,} traces", _teach, True),
    Stage("verify", "verify", lambda c: f"{c['verified']:,} verified, {c['rejected']:,} rejected", _verify, True),
    Stage("export", "export", lambda c: "train/valid JSONL", _export, True),
    Stage("train", "train", lambda c: f"{c['runs_done']} of {c['runs']} runs done", _train, True),
    Stage("evaluate", "evaluate", lambda c: f"{c['evaluated']:,} eval attempts, {c['rated']:,} rated", _evaluate),
)

BY_KEY = {s.key: s for s in STAGES}
