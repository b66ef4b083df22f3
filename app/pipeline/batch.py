"""`tailor --batch SWEEP.toml`: run every cell of a sweep, unattended and resumably.

Order: the shared stages once (diagnose, grade), then each cell (sample → teach → verify
→ export → train, one run per seed), then eval (the base and every run of the sweep)
and the report. Each stage already skips finished work (attempt keys, the request
cache, done runs), so a re-run after a crash continues where it stopped and pays for
nothing twice. A cell's progress is kept in ``sweep_cells``; a failing cell is recorded
and the others still run; Ctrl-C marks the current cell interrupted and stops.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from app import stages as registry
from app.config import CONFIG_NAME, load_config
from app.dmc import DEFAULT_TOP
from app.errors import TailorError
from app.events import Events
from app.jobs import MlxJob
from app.store import Store
from app.sweep import Cell, Sweep, load_sweep


class SweepStopped(TailorError):
    """Ctrl-C, or a training run that was interrupted: the sweep stops, a re-run resumes."""

    exit_code = 130


class OverallEvents:
    """Every stage's progress, prefixed with the sweep's overall progress (steps done / all)."""

    def __init__(self, inner: Events, total: int, width: int = 10):
        self.inner, self.total, self.done_steps, self.width = inner, max(total, 1), 0, width

    def _prefix(self) -> str:
        filled = round(self.width * self.done_steps / self.total)
        return f"sweep {'▰' * filled}{'▱' * (self.width - filled)} {self.done_steps}/{self.total} · "

    def start(self, stage: str, total: int | None = None) -> None:
        self.inner.start(self._prefix() + stage, total)

    def advance(self, n: int = 1) -> None:
        self.inner.advance(n)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def done(self, summary: str = "") -> None:
        self.inner.done(summary)

    def finish_step(self, n: int = 1) -> None:
        self.done_steps += n


@dataclass
class SweepResult:
    name: str
    cells: dict[str, str] = field(default_factory=dict)  # label -> done | failed | interrupted
    failures: dict[str, str] = field(default_factory=dict)
    report: str | None = None
    table: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and all(s == "done" for s in self.cells.values())


def open_sweep(project: Path, path: Path | str) -> Sweep:
    # The project's own tailor.toml is checked first, so its errors name that file, not the sweep.
    load_config(project)
    return load_sweep(path, tomllib.loads((project / CONFIG_NAME).read_text("utf-8")))


def run_sweep(
    sweep: Sweep,
    store: Store,
    events: Events,
    *,
    project: Path | str = ".",
    job_cls=MlxJob,
    transport=None,
    retry=None,
    color: bool = False,
) -> SweepResult:
    from app.pipeline.train import reconcile_stale_runs

    project = Path(project)
    sec = sweep.section
    # A run left "running" by a killed process is marked interrupted before any cell looks,
    # so that it is resumed from its checkpoint instead of trained again from iteration 0.
    reconcile_stale_runs(store, project)
    stages = set(sec.stages)
    result = SweepResult(sweep.name)
    previous = store.cells(sweep.name)
    # A finished cell is skipped only if it ran with these keys and seeds (adding a seed
    # to the file trains just that seed; the stages skip what they already have).
    wanted = {cell.label: {**cell.keys.model_dump(), "seeds": sec.seeds} for cell in sweep.cells}
    for cell in sweep.cells:
        old = previous.get(cell.label)
        if old is None or old["keys"] != wanted[cell.label]:
            store.set_cell(sweep.name, cell.label, "pending", keys=wanted[cell.label])
    store.set_sweep_main(sweep.name, sweep.main)
    n = len(sweep.cells)
    before, after = (tuple(s for s in names if s in stages) for names in registry.shared_stages())
    cell_stages = [s for s in registry.cell_stages() if s in stages]
    events = OverallEvents(events, len(before) + len(after) + n * len(cell_stages))
    events.message(f"sweep {sweep.name}: {n} cells × seeds {sec.seeds}; stages {', '.join(sec.stages)}")
    run = _SweepRun(sweep, store, events, project, job_cls, transport, retry, result)

    for stage in before:
        _shared_stage(stage, run)
        events.finish_step()

    for i, cell in enumerate(sweep.cells, 1):
        if store.cells(sweep.name)[cell.label]["status"] == "done":
            events.message(f"[{i}/{n}] {cell.label}: already done")
            result.cells[cell.label] = "done"
            events.finish_step(len(cell_stages))
            continue
        stage, finished = None, 0
        try:
            for stage in cell_stages:
                events.message(f"[{i}/{n}] {cell.label}: {stage}")
                store.set_cell(sweep.name, cell.label, "running", stage=stage)
                _cell_stage(stage, sweep, cell, store, events, project, job_cls, transport, retry)
                events.finish_step()
                finished += 1
        except (KeyboardInterrupt, SweepStopped):
            store.set_cell(sweep.name, cell.label, "interrupted", stage=stage)
            raise SweepStopped(
                f"sweep {sweep.name} interrupted in cell {cell.label} ({stage}); run the same command again to resume"
            ) from None
        except TailorError as e:
            store.set_cell(sweep.name, cell.label, "failed", stage=stage, error=str(e))
            result.cells[cell.label], result.failures[cell.label] = "failed", f"{stage}: {e}"
            events.message(f"[{i}/{n}] {cell.label}: FAILED at {stage}: {e}")
            events.finish_step(len(cell_stages) - finished)  # the failed cell's remaining stages are skipped
            continue
        store.set_cell(sweep.name, cell.label, "done")
        result.cells[cell.label] = "done"

    for stage in after:
        _shared_stage(stage, run)
        events.finish_step()
    result.table = results_table(store, sweep, split=run.split, color=color)
    return result


@dataclass
class _SweepRun:
    """What a shared stage of one sweep run is given."""

    sweep: Sweep
    store: Store
    events: Events
    project: Path
    job_cls: type
    transport: object
    retry: object
    result: SweepResult

    @property
    def split(self) -> str:
        return self.sweep.section.split or self.sweep.config.eval.split

    def trained(self) -> bool:
        return any(r.sweep == self.sweep.name and r.status == "done" for r in self.store.runs())


def _shared_stage(stage: str, run: _SweepRun) -> None:
    """A stage run once for the whole sweep: its own handler, or the registry's generic call."""
    handler = _SHARED.get(stage)
    if handler is not None:
        handler(run)
        return
    sec = run.sweep.section
    res = registry.by_name(stage).run(
        run.sweep.config,
        run.store,
        run.events,
        project=run.project,
        sweep=run.sweep.name,
        split=sec.split,
        job_cls=run.job_cls,
        transport=run.transport,
        retry=run.retry,
    )
    _check(getattr(res, "status", "done"), stage)


def _diagnose_all(run: _SweepRun) -> None:
    from app.pipeline.diagnose import diagnose

    sec = run.sweep.section
    res = diagnose(
        run.sweep.config,
        run.store,
        run.events,
        project=run.project,
        split="train",
        limit=sec.diagnose_limit,
        job_cls=run.job_cls,
    )
    _check(res.status, "diagnose")


def _grade_all(run: _SweepRun) -> None:
    from app.pipeline.grade import grade

    grade(run.sweep.config, run.store, run.events, split="train", transport=run.transport, retry=run.retry)


def _eval_all(run: _SweepRun) -> None:
    sweep, sec = run.sweep, run.sweep.section
    if not run.trained():
        run.events.message(f"eval: skipped, sweep {sweep.name} has no finished runs")
        return
    from app.pipeline.evaluate import evaluate

    sets = [{"split": sec.split, "tiers": sec.tiers}] + (
        [{"benchmark": sec.benchmark, "tiers": False}] * bool(sec.benchmark)
    )
    for problems in sets:
        res = evaluate(
            sweep.config,
            run.store,
            run.events,
            project=run.project,
            sweep=sweep.name,
            limit=sec.eval_limit,
            job_cls=run.job_cls,
            transport=run.transport,
            retry=run.retry,
            **problems,
        )
        _check(res.status, "eval")


def _report(run: _SweepRun) -> None:
    from app.report import write_report

    sweep, sec = run.sweep, run.sweep.section
    out = run.project / "reports" / sweep.name
    run.result.report = str(write_report(run.store, out, split=run.split).markdown)
    if sec.benchmark and run.trained():
        write_report(run.store, out / sec.benchmark, split=None, benchmark=sec.benchmark)


_SHARED = {"diagnose": _diagnose_all, "grade": _grade_all, "eval": _eval_all, "report": _report}


def _check(status: str, stage: str) -> None:
    if status == "cancelled":
        raise SweepStopped(f"{stage} was cancelled; run the same command again to resume")


def replicates(sweep: Sweep, cell: Cell) -> dict[int | None, str]:
    """{training seed: dataset name}. A random cell with no fixed sample_seed draws its own
    sample for every training seed (sampled with that seed), so the ablation's spread over
    seeds includes the draw; every other cell shares one dataset (key None)."""
    keys = cell.keys
    strategy = keys.strategy or sweep.config_for(cell).sampling.strategy
    name = sweep.dataset_name(cell)
    if strategy == "random" and keys.sample_seed is None:
        return {s: f"{name}-s{s}" for s in sweep.section.seeds}
    return {None: name}


def _cell_stage(
    stage: str, sweep: Sweep, cell: Cell, store: Store, events: Events, project: Path, job_cls, transport, retry
) -> None:
    cfg, keys = sweep.config_for(cell), cell.keys
    datasets = replicates(sweep, cell)
    if stage == "train":
        _train(sweep, cell, store, events, project, datasets, job_cls)
        return
    if stage == "score" and all(c.keys.select in (None, "full") for c in sweep.cells):
        return  # no export of this sweep depends on scores
    # (When one cell selects, every cell is scored first, so that the placement test is
    # drawn before any cell exports and no cell trains on it.)
    # "blind" routes are written into the dataset at sampling; teach follows them like graded ones.
    only = keys.routing if keys.routing in ("short", "long") else None
    for seed, name in datasets.items():
        if stage == "sample":
            _sample(cfg, store, events, name, keys, seed)
        elif stage == "verify":
            from app.pipeline.verify import verify

            verify(cfg, store, events, dataset=name, only=only, transport=transport, retry=retry)
            if sweep.section.refill:
                from app.pipeline.refill import refill

                refill(cfg, store, events, dataset=name, only=only, transport=transport, retry=retry)
        elif stage == "export":
            from app.pipeline.export import default_out_dir, export

            # Each dataset has its own name, so its export lives where `train --dataset` looks.
            export(
                cfg,
                store,
                events,
                dataset=name,
                project=project,
                out=default_out_dir(project, name),
                only=only,
                valid_fraction=sweep.section.valid_fraction,
                select=keys.select,
                top=keys.top or DEFAULT_TOP,
                rescore_pool=keys.rescore_pool,
            )
        else:  # teach, and any cell stage that needs only what every cell stage is offered
            res = registry.by_name(stage).run(
                cfg,
                store,
                events,
                dataset=name,
                only=only,
                project=project,
                job_cls=job_cls,
                transport=transport,
                retry=retry,
            )
            _check(getattr(res, "status", "done"), stage)


def _sample(cfg, store: Store, events: Events, name: str, keys, replicate_seed: int | None) -> None:
    from app.pipeline.sample import sample

    seed = (
        keys.sample_seed
        if keys.sample_seed is not None
        else (replicate_seed if replicate_seed is not None else cfg.sampling.seed)
    )
    routing = "blind" if keys.routing == "blind" else "graded"
    existing = store.get_dataset(name)
    if existing is not None:
        want = {
            "strategy": keys.strategy or cfg.sampling.strategy,
            "k": keys.k or cfg.sampling.k,
            "seed": seed,
            "routing": routing,
        }
        have = {
            "strategy": existing.strategy,
            "k": existing.k,
            "seed": existing.seed,
            "routing": existing.params.get("routing", "graded"),
        }
        if want != have:
            raise TailorError(
                f"dataset {name!r} exists with {have}, but the cell asks for {want}; rename the cell or the sweep"
            )
        events.message(f"dataset {name}: already sampled ({len(existing.items)} problems)")
        return
    sample(
        cfg, store, events, name=name, strategy=keys.strategy, k=keys.k, seed=seed, ratio=keys.ratio, routing=routing
    )


def _train(sweep: Sweep, cell: Cell, store: Store, events: Events, project: Path, datasets: dict, job_cls) -> None:
    from app.pipeline.train import train

    keys = cell.keys
    dataset_for = (lambda seed: datasets[None]) if None in datasets else datasets.__getitem__  # noqa: E731
    mine = [r for r in store.runs() if r.sweep == sweep.name and r.label == cell.label]
    iters = keys.iters
    if keys.find_stop:
        found = [r for r in mine if r.config.get("find_stop") and r.status == "done"]
        if not found:
            stale = [r for r in mine if r.config.get("find_stop") and r.status == "interrupted"]
            first = sweep.section.seeds[0]
            res = (
                train(sweep.config, store, events, project=project, resume=stale[-1].id, job_cls=job_cls)
                if stale
                else train(
                    sweep.config,
                    store,
                    events,
                    project=project,
                    dataset=dataset_for(first),
                    profile=keys.profile,
                    max_iters=keys.max_iters,
                    find_stop=True,
                    seeds=[first],
                    patience=keys.patience,
                    overrides=keys.set,
                    label=cell.label,
                    sweep=sweep.name,
                    job_cls=job_cls,
                )
            )
            _train_status(res)
            found = [
                r
                for r in store.runs()
                if r.sweep == sweep.name and r.label == cell.label and r.config.get("find_stop") and r.status == "done"
            ]
        iters = found[-1].best_iter or 1
        events.message(f"{cell.label}: validation loss lowest at iteration {iters}; training the seeds for that long")
    for seed in sweep.section.seeds:
        # Only a run trained on this seed's dataset counts: a cell whose keys changed
        # (another draw, another routing) trains again rather than reusing old data's runs.
        ds = store.get_dataset(dataset_for(seed))
        runs = [
            r
            for r in mine
            if r.seed == seed and not r.config.get("find_stop") and (ds is None or r.dataset_id in (None, ds.id))
        ]
        if any(r.status == "done" for r in runs):
            continue
        stale = [r for r in runs if r.status == "interrupted"]
        if stale:
            res = train(sweep.config, store, events, project=project, resume=stale[-1].id, job_cls=job_cls)
        else:
            res = train(
                sweep.config,
                store,
                events,
                project=project,
                dataset=dataset_for(seed),
                profile=keys.profile,
                iters=iters,
                max_iters=None if keys.find_stop else keys.max_iters,
                seeds=[seed],
                patience=keys.patience,
                overrides=keys.set,
                label=cell.label,
                sweep=sweep.name,
                job_cls=job_cls,
            )
        _train_status(res)


def _train_status(res) -> None:
    if res.status == "interrupted":
        raise SweepStopped("training was interrupted")
    if res.status == "failed":
        errors = "; ".join(r.error or r.stop_reason or "failed" for r in res.runs if r.status == "failed")
        raise TailorError(f"training failed: {errors}")


RED, RESET = "\033[31m", "\033[0m"


def results_table(store: Store, sweep: Sweep, *, split: str | None, color: bool = False) -> str:
    """For the sweep's first tier: each configuration vs the base, then each ablation vs the
    main cell — mean ± std, Δ with its interval, headline p and Holm-adjusted p, verdict;
    a DEGRADED configuration in red (on a terminal)."""
    from app.results import collect

    res = collect(store, split=split)
    first = next(iter(sweep.config.eval.tiers))
    lines = []
    for key, title in (("configurations", "vs base"), ("ablations", f"vs main cell {sweep.main}")):
        rows = [c for c in res[key] if c["sweep"] == sweep.name and c["tier"] == first]
        if not rows:
            continue
        head = (
            f"{title:<24} {'seeds':>5}  {'accuracy':>14}  {'ref':>6}  {'Δ':>6}  {'Δ 95% CI':>15}  "
            f"{'p':>6}  {'adj p':>6}  verdict"
        )
        lines += [head, "-" * len(head)]
        for c in rows:
            std = f" ± {100 * c['std']:.1f}" if c["std"] is not None else ""
            lo, hi = c["delta_ci"]
            line = (
                f"{c['label']:<24} {len(c['seeds']):>5}  {100 * c['mean']:>7.1f} %{std:<6}  "
                f"{100 * c['reference_mean']:>4.1f} %  {100 * c['delta']:>+6.1f}  "
                f"[{100 * lo:+5.1f}, {100 * hi:+5.1f}]  {_p(c['p']):>6}  {_p(c['p_adjusted']):>6}  {c['verdict']}"
            )
            lines.append(f"{RED}{line}{RESET}" if color and c["degraded"] else line)
        lines.append("")
    if not lines:
        return "no evaluated configurations yet"
    lines += [f"note: {n}" for n in res.get("notes") or []]
    if store is not None:
        from app.contamination import find_contamination

        near = {p.train_id for p in find_contamination(store.problems())}
        if near:
            lines.append(
                f"warning: {len(near)} train/valid problems overlap a test or benchmark question "
                "(`tailor contamination`); `export --decontaminate` leaves them out"
            )
    lines.append(
        "p: problem-level sign-flip permutation test, mid-p (exact McNemar with one seed); "
        "adj p: Holm within each table; report.md names each row's test"
    )
    return "\n".join(lines)


def _p(p: float | None) -> str:
    return "undef" if p is None else f"{p:.3g}"
