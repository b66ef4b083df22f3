"""The pipeline stages, in pipeline order: the one list the CLI, sweeps, the batch runner
and the TUI read. A stage is its name (the subcommand, the sweep stage, the TUI row), its
pipeline function (imported when it runs, so nothing here loads a stage's module), its
command-line options, whether a sweep runs it once or per cell, and how the TUI counts
what it has produced. A new stage is one entry here (plus its `cmd_NAME` in app/cli.py
when it prints more than its result's summary).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.config import STRATEGIES
from app.dmc import DEFAULT_TOP, METHODS
from app.records import SPLITS

RERUN = "run it again to continue"  # a cancelled stage's work is kept; a re-run skips it


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    function: str  # "module:function", called as function(cfg, store, events, **options)
    options: Callable[[argparse.ArgumentParser], None]
    sweep: Literal["shared", "cell"] | None = None  # once per sweep, once per cell, or not a sweep stage
    counts: Callable[[dict], str] | None = None  # the TUI's line from Store.tui_stage_counts(); None: not a row
    # What the TUI's pipeline screen gives it when it runs from there (split, dataset, name,
    # tiers); None: not runnable from the TUI (import needs a file).
    tui: tuple[str, ...] | None = ()
    needs_dataset: bool = False
    title: str | None = None  # the TUI's label, when it is not the name
    on_cancel: str = RERUN  # what the TUI tells a user who cancelled it

    @property
    def label(self) -> str:
        return self.title or self.name

    def load(self) -> Callable:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)

    def run(self, cfg, store, events, **available):
        """Call the stage with the options it takes out of ``available`` (the TUI's and a
        sweep's generic path: each offers what it knows, the stage picks its own)."""
        fn = self.load()
        params = inspect.signature(fn).parameters
        return fn(cfg, store, events, **{k: v for k, v in available.items() if k in params})


# -- command-line options -------------------------------------------------------


def _split(p, default: str | None = "train", help: str | None = None) -> None:
    p.add_argument("--split", default=default, choices=SPLITS, help=help)


def _limit(p, what: str = "problems of the split") -> None:
    p.add_argument("--limit", type=int, help=f"only N {what} (a seeded draw stratified over categories)")


def _only(p, help: str = "the --only the dataset was taught with") -> None:
    p.add_argument("--only", choices=["short", "long"], help=help)


def _dataset(p, required: bool = True, help: str = "a dataset made by `tailor sample`") -> None:
    p.add_argument("--dataset", required=required, metavar="NAME", help=help)


def problem_set_args(p: argparse.ArgumentParser) -> None:
    """--split | --benchmark: which evaluated problems (eval and report)."""
    where = p.add_mutually_exclusive_group()
    _split(where, None, "problems of this split (default: [eval] split, test)")
    where.add_argument(
        "--benchmark", metavar="SOURCE", help="every problem imported with --source SOURCE, e.g. math500"
    )


def csv_list(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected one or more comma-separated names")
    return items


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _import_options(p) -> None:
    p.add_argument("file", type=Path, help="a file, or a directory of them (a Hugging Face dataset download)")
    p.add_argument("--format", choices=["jsonl", "csv", "gsm8k", "math", "math500", "aime"])
    p.add_argument("--split", choices=SPLITS, help="split for every row (default: the row's own 'split', else train)")
    p.add_argument("--source", help="source label (default: the file name)")
    p.add_argument(
        "--resplit",
        action="store_true",
        help="move a problem already in another split to this file's split (else refused)",
    )


def _diagnose_options(p) -> None:
    _split(p)
    _limit(p)
    p.add_argument("--seed", type=int, default=0, help="base sampling seed (default 0)")


def _grade_options(p) -> None:
    _split(p)
    _limit(p, "diagnosed problems of the split")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="PROBLEM_ID=GRADE",
        help="record a manual grade (easy, medium or hard) instead of running the judge; "
        "repeatable; an override always wins",
    )


def _sample_options(p) -> None:
    p.add_argument("--name", required=True, help="dataset name (an existing name is an error)")
    p.add_argument("--strategy", choices=STRATEGIES, help="default: [sampling] strategy in tailor.toml")
    p.add_argument("--k", type=int, help="dataset size K (default: [sampling] k; ignored by --strategy all)")
    p.add_argument("--ratio", help="E:M:H for --strategy fixed (default: [sampling] ratio)")
    p.add_argument("--seed", type=int, help="sampling seed (default: [sampling] seed)")
    p.add_argument(
        "--allow-short",
        action="store_true",
        help="fill a stratum smaller than its quota from the other strata instead of failing",
    )
    p.add_argument(
        "--routing",
        choices=["graded", "blind"],
        default="graded",
        help="graded: Easy/Medium -> short CoT, Hard -> long (default); blind: the pool's short share "
        "at random, ignoring grades (ACoTD's random-sampling ablation)",
    )


def _teach_options(p) -> None:
    _dataset(p)
    _only(p, "ablation: every item gets this CoT style and its teacher (default: by difficulty)")


def _verify_options(p) -> None:
    _dataset(p)
    _only(p)
    p.add_argument(
        "--consistency",
        action="store_true",
        help="also ask the judge whether each accepted solution is consistent (prompts/verify.md)",
    )
    p.add_argument(
        "--resample",
        type=int,
        default=0,
        metavar="N",
        help="ask the teacher up to N more times for a rejected problem (default 0)",
    )
    p.add_argument(
        "--refill",
        action="store_true",
        help="replace rejected problems with new ones from the same stratum (taught and verified) "
        "until K and E:M:H hold or the stratum runs out (on by default in sweeps)",
    )


def _score_options(p) -> None:
    _dataset(p, False, "a verified dataset (`tailor verify`); required unless --capability")
    _only(p)
    p.add_argument("--adapter", metavar="RUN", help="score for the base student + this run's adapter (default: base)")
    p.add_argument(
        "--capability", action="store_true", help="show every scored student state's capability; score nothing"
    )


def _export_options(p) -> None:
    _dataset(p)
    _only(p)
    p.add_argument(
        "--select",
        choices=METHODS,
        help="keep the top --top %% of the traces by quality, difficulty, CAR (quality x difficulty) "
        "or DMC (`tailor score` first); full keeps all",
    )
    p.add_argument(
        "--top",
        type=float,
        default=DEFAULT_TOP,
        metavar="P",
        help=f"percent kept by --select (default {DEFAULT_TOP:g})",
    )
    p.add_argument("--adapter", metavar="RUN", help="the student state whose scores --select uses (default: base)")
    p.add_argument(
        "--rescore-pool",
        type=float,
        metavar="Q",
        help="dmc-dynamic: re-score only the top Q %% of the pool by quality before each epoch (e.g. 20)",
    )
    p.add_argument(
        "--intersect", action="store_true", help="ablation: keep only problems every teacher of the style solved"
    )
    p.add_argument("--out", type=Path, help="output directory (default: PROJECT/runs/datasets/NAME)")
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of problems in valid.jsonl, split by problem (default 0.1)",
    )
    p.add_argument(
        "--decontaminate",
        action="store_true",
        help="leave out problems whose question overlaps a test or benchmark one (see `tailor contamination`)",
    )


def _train_options(p) -> None:
    _dataset(p, False, "an export in PROJECT/runs/datasets/NAME (`tailor export`)")
    p.add_argument("--profile", choices=["acotd", "obryan"], help="hyperparameter set (default: [train] profile)")
    p.add_argument("--iters", type=int, metavar="N", help="train exactly N iterations (wins over the profile's epochs)")
    p.add_argument(
        "--max-iters",
        type=int,
        metavar="N",
        help="at most N iterations (early stopping may end sooner); --find-stop: default 1000",
    )
    p.add_argument(
        "--find-stop",
        action="store_true",
        help="O'Bryan protocol: one run with evaluations, then report where the validation loss is lowest",
    )
    p.add_argument(
        "--seeds",
        type=seed_list,
        metavar="S,S,...",
        help="one run per seed, run one after another, e.g. 0,1,2,3,4 (default: [train] seeds)",
    )
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint")
    p.add_argument(
        "--patience", type=int, metavar="N", help="stop after N evaluations without improvement (0 = no early stopping)"
    )
    p.add_argument(
        "--min-delta",
        type=float,
        metavar="D",
        help="a validation-loss drop smaller than D is not an improvement (default 0)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any [train] key, e.g. --set rank=16 --set learning_rate=1e-4 (repeatable)",
    )
    p.add_argument(
        "--label",
        metavar="NAME",
        help="the configuration these runs are seeds of, as reports name it (default: DATASET/PROFILE)",
    )


def _eval_options(p) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--runs", type=csv_list, metavar="RUN,...", help="these runs (ids or unique prefixes)")
    which.add_argument("--sweep", metavar="NAME", help="the finished runs of one sweep")
    problem_set_args(p)
    p.add_argument("--tiers", action="store_true", help="also the response-length tiers R2..R6 ([eval.tiers])")
    _limit(p, "problems")
    p.add_argument(
        "--shots",
        type=int,
        metavar="N",
        help="capacity-gap evaluation: N worked train examples before each problem, the same for "
        "every model (read by `tailor gap --from-store`)",
    )
    p.add_argument(
        "--teachers", action="store_true", help="also ask the remote teachers, with the same prompt (use with --shots)"
    )


def _report_options(p) -> None:
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: PROJECT/report)")
    p.add_argument("--json", action="store_true", help="also print the report's JSON (every number) to stdout")
    problem_set_args(p)


def _grades(c: dict) -> str:
    return f"E {c['easy']:,} / M {c['medium']:,} / H {c['hard']:,}" + (
        f" / ? {c['ungraded']:,}" if c["ungraded"] else ""
    )


STAGES: tuple[Stage, ...] = (
    Stage(
        "import",
        "import problems from a file (JSONL, JSON, CSV, Parquet) or a dataset directory",
        "app.pipeline.importing:import_file",
        _import_options,
        counts=lambda c: f"{c['problems']:,} problems",
        tui=None,
    ),
    Stage(
        "diagnose",
        "the student answers every problem with CoT",
        "app.pipeline.diagnose:diagnose",
        _diagnose_options,
        sweep="shared",
        counts=lambda c: f"{c['diagnosed']:,} diagnosed",
        tui=("split",),
    ),
    Stage(
        "grade",
        "the judge grades each diagnosed problem easy / medium / hard",
        "app.pipeline.grade:grade",
        _grade_options,
        sweep="shared",
        counts=_grades,
        tui=("split",),
    ),
    Stage(
        "sample",
        "draw a named distillation set from the graded train problems",
        "app.pipeline.sample:sample",
        _sample_options,
        sweep="cell",
        counts=lambda c: f"{c['sampled']:,} sampled in {c['datasets']} sets",
        tui=("name", "strategy", "k", "seed"),
    ),
    Stage(
        "teach",
        "teachers write short / long CoT for a dataset's problems",
        "app.pipeline.teach:teach",
        _teach_options,
        sweep="cell",
        counts=lambda c: f"{c['taught']:,} traces",
        tui=("dataset",),
        needs_dataset=True,
    ),
    Stage(
        "verify",
        "accept teacher traces whose final answer matches the reference",
        "app.pipeline.verify:verify",
        _verify_options,
        sweep="cell",
        counts=lambda c: f"{c['verified']:,} verified, {c['rejected']:,} rejected",
        tui=("dataset",),
        needs_dataset=True,
    ),
    Stage(
        "score",
        "data-model compatibility: quality, difficulty (PPL, CPPL, IFD) and capability for a dataset's traces",
        "app.pipeline.score:score",
        _score_options,
        sweep="cell",
        counts=lambda c: f"{c['scored']:,} scores, {c['rated_traces']:,} rated traces",
        tui=("dataset",),
        needs_dataset=True,
    ),
    Stage(
        "export",
        "write mlx_lm train/valid JSONL of the verified traces",
        "app.pipeline.export:export",
        _export_options,
        sweep="cell",
        counts=lambda c: "train/valid JSONL",
        tui=("dataset",),
        needs_dataset=True,
    ),
    Stage(
        "train",
        "LoRA-train the student on an exported dataset, one run per seed",
        "app.pipeline.train:train",
        _train_options,
        sweep="cell",
        counts=lambda c: f"{c['runs_done']} of {c['runs']} runs done",
        tui=("dataset", "resume"),
        needs_dataset=True,
        on_cancel="the run is kept at its last checkpoint: resume it from Runs (r)",
    ),
    Stage(
        "eval",
        "evaluate the base student and trained adapters on the same problems",
        "app.pipeline.evaluate:evaluate",
        _eval_options,
        sweep="shared",
        counts=lambda c: f"{c['evaluated']:,} eval attempts, {c['rated']:,} rated",
        tui=("tiers",),
        title="evaluate",
    ),
    Stage(
        "report",
        "Markdown report with PNG plots and a JSON file holding every number",
        "app.report:write_report",
        _report_options,
        sweep="shared",
        tui=None,
    ),
)


def by_name(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


def sweep_stages() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES if s.sweep)


def cell_stages() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES if s.sweep == "cell")


def shared_stages() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The shared stages a sweep runs before its cells, and those it runs after them."""
    first = next(i for i, s in enumerate(STAGES) if s.sweep == "cell")
    before = tuple(s.name for s in STAGES[:first] if s.sweep == "shared")
    return before, tuple(s.name for s in STAGES[first:] if s.sweep == "shared")
