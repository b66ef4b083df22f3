"""`tailor report`: a Markdown report, its PNG plots and a JSON file holding every number.

build_report gathers the numbers (app.results.collect plus each run's loss curves) into
one JSON-safe dict; write_report draws the plots (app.plots), renders the Markdown and
writes all three into a temp directory next to the target, moving them into place only
once everything succeeded, so a failure never leaves a half-written report behind.

The JSON carries the inputs of every statistic (per-seed accuracies, per-problem
correctness inside each configuration's `comparison`), so a reader can recompute the
Markdown's numbers with app.stats — see `how_to_recompute` in the JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.config import OFFLINE_JUDGES
from app.plots import PLOTS, PlotResult
from app.selection_report import selection_markdown, selection_summary
from app.verdicts import DEGRADED

DEFAULT_ALPHA = 0.05
ADDED_KEYS = ("curves", "contamination", "data", "selection", "generated_by", "generated_at", "how_to_recompute")
HOW_TO_RECOMPUTE = {
    "units": "accuracies are fractions 0-1; the Markdown shows them x100 (percent, delta in points)",
    "inputs": "each row's comparison.reference.correct and comparison.other.correct: per seed, per problem "
    "0/1, seeds labelled as in comparison.*.seeds (the same label = the same sampling seed)",
    "mean, std, ci": "app.stats.seed_summary(list(accuracy_by_seed.values()), 0.95): mean, sample std "
    "(ddof 1), t 95 % CI of the mean clipped to [0, 1]; no CI when the seeds have zero spread",
    "p, test": "headline, problem-level: app.stats.sign_flip_test(reference, other) when paired (exact "
    "McNemar with one seed), else app.stats.within_problem_test; p is the mid-p value, "
    "comparison.test.p_conventional the conventional one",
    "seed_p": "app.stats.paired_t (or welch_t when unpaired) over the seed accuracies; undefined (null) "
    "with one seed or zero spread",
    "p_adjusted": "app.stats.holm over the first tier's rows with the same sweep and reference; "
    "app.stats.benjamini_hochberg over the other tiers' rows (exploratory)",
    "delta_ci": "app.stats.delta_interval(reference, other, paired=paired, n_boot, seed=boot_seed): "
    "BCa, resampling seeds and problems",
    "mde": "app.stats.min_detectable_effect(reference, other): |delta| detectable at 80 % power, alpha",
    "verdict": "better / DEGRADED when p_adjusted < alpha (by the sign of delta), else no significant difference",
}


def tailor_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tailor")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _curve(store, run: dict) -> dict:
    stored = store.get_run(run["id"])
    # A run that results knows but the store no longer has still gets its (empty) entry.
    best = stored.best_iter if stored is not None else run.get("best_iter")
    return {
        "train_loss": [[s, v] for s, v in store.curve(run["id"], "train_loss")],
        "val_loss": [[s, v] for s, v in store.curve(run["id"], "val_loss")],
        "best_iter": best,
    }


def build_report(
    store, *, split: str | None = "test", benchmark: str | None = None, results: dict | None = None
) -> dict:
    """The report's data: `results` plus loss curves per run, version and recompute notes."""
    if results is None:
        # Lazy: the evaluation code is only needed when no results were handed in.
        from app.results import collect

        results = collect(store, split=split, benchmark=benchmark)
    from app.stats import json_safe  # numpy/scipy: only when a report is built

    report = json_safe(results)
    clash = set(ADDED_KEYS) & set(report)
    if clash:
        raise ValueError(f"results already hold report keys {sorted(clash)}")
    report["curves"] = json_safe({r["id"]: _curve(store, r) for r in report.get("runs") or []})
    report["contamination"] = contamination_summary(store)
    report["data"] = data_summary(store, report.get("runs") or [])
    report["selection"] = selection_summary(store, report.get("runs") or [])
    report["generated_by"] = {"tailor": tailor_version()}
    report["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["how_to_recompute"] = dict(HOW_TO_RECOMPUTE)
    return report


def data_summary(store, runs: list[dict]) -> list[dict]:
    """Per configuration and dataset it trained on: the items sampled per stratum and how
    many of them have an accepted trace after verification (and refills)."""
    by_id = {}
    for r in runs:
        stored = store.get_run(r["id"])
        if stored is not None and stored.dataset_id is not None:
            by_id.setdefault(stored.dataset_id, set()).add(r["label"])
    out = []
    names = {}
    for name in store.dataset_names():
        ds = store.get_dataset(name)
        names[ds.id] = ds
    for ds_id, labels in sorted(by_id.items()):
        ds = names.get(ds_id)
        if ds is None:
            continue
        ok = {t.problem_id for t in store.traces([i.problem_id for i in ds.items]) if t.verified}
        sampled = {g: sum(1 for i in ds.items if i.grade == g) for g in ("easy", "medium", "hard")}
        kept = {g: sum(1 for i in ds.items if i.grade == g and i.problem_id in ok) for g in ("easy", "medium", "hard")}
        refill = ds.params.get("refill") or {}
        out.append(
            {
                "configurations": sorted(labels),
                "dataset": ds.name,
                "strategy": ds.strategy,
                "k": ds.k,
                "routing": ds.params.get("routing", "graded"),
                "sampled": sampled,
                "verified": kept,
                "refilled": refill.get("added", 0),
                "exhausted": refill.get("exhausted", []),
            }
        )
    return out


def contamination_summary(store) -> dict:
    from app.contamination import NGRAM, THRESHOLD, find_contamination

    pairs = find_contamination(store.problems())
    return {
        "method": f"normalised exact match, or ≥ {THRESHOLD:g} of a training question's word {NGRAM}-grams "
        "in one test / benchmark question",
        "pairs": len(pairs),
        "problems": sorted({p.train_id for p in pairs}),
        "top": [p.line() for p in pairs[:10]],
    }


# -- formatting (public so tests and the TUI format numbers the same way) ---------------


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def fmt_points(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}"


def fmt_ci(ci, signed: bool = False, unit: str = "") -> str:
    """A CI of fractions as percent (or points, signed); "—" when undefined (one seed)."""
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"[{f.format(100 * ci[0])}, {f.format(100 * ci[1])}]{unit}"


def fmt_mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{100 * mean:.1f} %" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f} %"


def fmt_p(p: float | None) -> str:
    return "—" if p is None else f"{p:.3g}"


def fmt_num(x, digits: int = 1) -> str:
    if x is None:
        return "—"
    return str(x) if isinstance(x, int) else f"{x:.{digits}f}"


def _alpha(c: dict) -> float:
    return (c.get("comparison") or {}).get("alpha", DEFAULT_ALPHA)


def verdict(c: dict) -> str:
    a, v = _alpha(c), c.get("verdict")
    tag = " (exploratory)" if c.get("exploratory") else ""
    if v == DEGRADED:
        return f"⚠ DEGRADED (adjusted p < {a:g}){tag}"
    if v == "better":
        return f"better (adjusted p < {a:g}){tag}"
    return f"no significant difference, Δ {fmt_ci(c.get('delta_ci'), signed=True)}{tag}"


def fmt_seed_ci(c: dict) -> str:
    """The seeds' t CI, or why there is none."""
    if c.get("zero_spread"):
        return f"zero spread over {len(c.get('seeds') or [])} seeds"
    return fmt_ci(c.get("ci"), unit=" %")


def fmt_flips(c: dict) -> str:
    f = c.get("flips") or {}
    return f"+{f.get('gained', 0)} / −{f.get('lost', 0)}" if f else "—"


def fmt_mde(x: float | None) -> str:
    return "undefined" if x is None else f"{100 * x:.1f}"


# -- Markdown --------------------------------------------------------------------------


LEGEND = (
    "Δ is the configuration minus its reference in percentage points; its 95 % CI is a BCa bootstrap that "
    "resamples training seeds and problems. **p** is the headline test, problem-level and valid at any spread: "
    "a paired sign-flip permutation test on each problem's difference of seed-mean correctness (exact McNemar "
    "with one seed; a within-problem permutation test when the seeds do not pair up), computed exactly, mid-p. "
    "**adj. p**: Holm across the configurations compared with the same reference at the first tier; other tiers "
    "are exploratory, Benjamini–Hochberg. Verdicts use adj. p. **seed t** is the paired t-test over seed "
    "accuracies, shown beside p; it is undefined with one seed or zero spread. **flips**: answers that became "
    "right / wrong, pooled over seeds. **MDE**: the smallest |Δ| (points) this test detects with 80 % power at "
    "α — a Δ much smaller than it cannot be told from noise here."
)
SEED_NOTE_INTRO = (
    "Per-seed values, to recompute mean, std and CI with `app.stats.seed_summary` (exact values in report.json):"
)


def _cell(x) -> str:
    return str(x if x is not None else "—").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def _plot(plots: dict[str, PlotResult], name: str) -> list[str]:
    p = plots.get(name)
    if p is None:
        return []
    if p.path is None:
        return [f"_{p.title}: not drawn — {p.reason}._", ""]
    return [f"![{p.title}](plots/{p.path.name})", ""]


def _seed_note(c: dict) -> str:
    by_seed = c.get("accuracy_by_seed") or {}
    values = ", ".join(f"{s}: {fmt_pct(v)}" for s, v in by_seed.items())
    return (
        f"- {_cell(c['label'])} ({c['tier']}) per-seed accuracies: {values or 'none'} → mean "
        f"{fmt_mean_std(c.get('mean'), c.get('std'))}, 95 % CI {fmt_seed_ci(c)}"
    )


COMPARISON_HEADER = [
    "configuration",
    "tier",
    "seeds",
    "mean ± std",
    "95 % CI",
    "reference",
    "Δ (points)",
    "Δ 95 % CI",
    "flips",
    "p",
    "adj. p",
    "seed t p",
    "MDE",
    "test",
    "verdict",
]


def comparison_cells(c: dict) -> list:
    return [
        c["label"],
        c["tier"],
        len(c.get("seeds") or []),
        fmt_mean_std(c.get("mean"), c.get("std")),
        fmt_seed_ci(c),
        fmt_pct(c.get("reference_mean")),
        fmt_points(c.get("delta")),
        fmt_ci(c.get("delta_ci"), signed=True),
        fmt_flips(c),
        fmt_p(c.get("p")),
        fmt_p(c.get("p_adjusted")),
        fmt_p(c.get("seed_p")),
        fmt_mde(c.get("mde")),
        c.get("test"),
        verdict(c),
    ]


def _headline(report: dict, plots: dict) -> list[str]:
    configs = report.get("configurations") or []
    out = ["## Distilled vs base", ""]
    if not configs:
        out += ["No distilled configuration has been evaluated yet (`tailor eval`).", ""]
        return out + _notes(report) + _plot(plots, "seeds")
    out += _table(COMPARISON_HEADER, [comparison_cells(c) for c in configs])
    out += [LEGEND, ""] + _notes(report) + [SEED_NOTE_INTRO, ""]
    out += [_seed_note(c) for c in configs] + [""]
    return out + _plot(plots, "seeds")


def _ablations(report: dict) -> list[str]:
    rows = report.get("ablations") or []
    if not rows:
        return []
    out = [
        "## Ablations vs the main cell",
        "",
        "Each ablation against its sweep's main cell (ACoTD's Table 4), paired by problem and seed; "
        "the reference column is the main cell's mean.",
        "",
    ]
    header = ["main"] + COMPARISON_HEADER
    return out + _table(header, [[c["against"]] + comparison_cells(c) for c in rows])


def _notes(report: dict) -> list[str]:
    notes = report.get("notes") or []
    return (["Notes:", ""] + [f"- {_cell(n)}" for n in notes] + [""]) if notes else []


def _cotqs(report: dict) -> list[str]:
    configs = report.get("configurations") or []
    out = ["## Reasoning quality (CoTQS, 1–5)", ""]
    rated = [c for c in configs if c.get("cotqs") is not None or c.get("base_cotqs") is not None]
    if rated:
        rows = [[c["label"], c["tier"], fmt_num(c.get("cotqs"), 2), fmt_num(c.get("base_cotqs"), 2)] for c in rated]
        return out + _table(["configuration", "tier", "CoTQS", "base CoTQS"], rows)
    name = str(report.get("judge") or "").split(" ")[0]
    if name in OFFLINE_JUDGES:
        why = (
            f"not rated: the judge is the {name} judge, an offline stand-in ({OFFLINE_JUDGES[name]}) "
            "that cannot rate reasoning."
        )
    else:
        # collect() names the judge from stored ratings, so "none" usually means an offline judge ran.
        why = (
            "not rated: no CoT quality ratings are stored. The offline stand-in judges "
            f"({', '.join(OFFLINE_JUDGES)}) cannot rate reasoning; an LLM judge rates CoTQS during `tailor eval`."
        )
    return out + [f"CoTQS {why}", ""]


def _tiers(report: dict, plots: dict) -> list[str]:
    tiers = report.get("tiers") or []
    out = ["## Accuracy by response-length tier", ""]
    if tiers:
        rows = [
            [
                t["label"],
                t["tier"],
                fmt_mean_std(t.get("accuracy"), t.get("std")),
                fmt_num(t.get("mean_words")),
                fmt_num(t.get("mean_tokens")),
                fmt_pct(t.get("no_answer")),
                fmt_pct(t.get("truncated")),
                t.get("n"),
                t.get("seeds"),
            ]
            for t in tiers
        ]
        out += _table(
            ["label", "tier", "accuracy", "mean words", "mean tokens", "no final answer", "truncated", "n", "seeds"],
            rows,
        )
        out += [
            'Answers are scored strictly: one without an explicit final answer (\\boxed, ####, "the answer '
            'is") or cut off by its token budget is wrong. *no final answer* and *truncated* are the shares of '
            "answers lost that way.",
            "",
        ]
    else:
        out += ["No tier evaluations yet.", ""]
    return out + _plot(plots, "accuracy_by_tier")


def _categories(report: dict, plots: dict) -> list[str]:
    cats = report.get("categories") or []
    out = ["## Accuracy per category / section", ""]
    if cats:
        rows = [
            [c["label"], c["tier"], c.get("category"), c.get("section"), fmt_pct(c.get("accuracy")), c.get("n")]
            for c in cats
        ]
        out += _table(["label", "tier", "category", "section", "accuracy", "n"], rows)
    else:
        out += ["No per-category results yet.", ""]
    return out + _plot(plots, "categories")


def _teachers(report: dict) -> list[str]:
    t = report.get("teachers") or {}
    out = ["## Teachers (capacity-gap protocol)", ""]
    if not t.get("rows"):
        return out + ["No remote teacher traces (reference solutions are not compared).", ""]
    out += _table(
        ["role", "teacher", "problems", "verified", "accuracy"],
        [[r["role"], r["teacher"], r["problems"], r["verified"], fmt_pct(r["accuracy"])] for r in t["rows"]],
    )
    for role, c in (t.get("choice") or {}).items():
        out += [
            f"- {role} CoT, on the {c['shared_problems']} problems every teacher had: "
            f"**{c['recommendation']}** — {c['reason']}",
            "",
        ]
    return out


def _yes_no(x: bool | None) -> str:
    return "—" if x is None else ("yes" if x else "NO")


def _runs(report: dict, plots: dict) -> list[str]:
    runs = report.get("runs") or []
    out = ["## Training runs", ""]
    if runs:
        rows = [
            [
                r["id"],
                r.get("label"),
                r.get("seed"),
                r.get("status"),
                r.get("best_iter"),
                fmt_num(r.get("best_val_loss"), 4),
                r.get("stop_reason"),
                _yes_no(r.get("valid_disjoint_from_test")),
            ]
            for r in runs
        ]
        out += _table(
            [
                "run",
                "configuration",
                "seed",
                "status",
                "best iteration",
                "best val loss",
                "stop reason",
                "stop chosen on data disjoint from test",
            ],
            rows,
        )
    else:
        out += ["No training runs yet.", ""]
    return out + _plot(plots, "training_curves")


def _data(report: dict) -> list[str]:
    rows = report.get("data") or []
    if not rows:
        return []
    out = [
        "## Training data per stratum",
        "",
        "Items sampled and items with an accepted trace after verification, Easy / Medium / Hard.",
        "",
    ]
    ems = lambda d: " / ".join(str(d.get(g, 0)) for g in ("easy", "medium", "hard"))  # noqa: E731
    return out + _table(
        [
            "configuration",
            "dataset",
            "strategy",
            "routing",
            "K",
            "sampled E/M/H",
            "verified E/M/H",
            "refilled",
            "ran out",
        ],
        [
            [
                ", ".join(r["configurations"]),
                r["dataset"],
                r["strategy"],
                r["routing"],
                r["k"],
                ems(r["sampled"]),
                ems(r["verified"]),
                r["refilled"],
                ", ".join(r["exhausted"]) or "—",
            ]
            for r in rows
        ],
    )


def _contamination(report: dict) -> list[str]:
    c = report.get("contamination")
    if not c:
        return []
    out = ["## Contamination check", "", f"Method: {c['method']}.", ""]
    if not c["pairs"]:
        return out + ["No train or valid problem overlaps a test or benchmark question.", ""]
    out += [
        f"**{len(c['problems'])} train/valid problems** overlap a test or benchmark question "
        f"({c['pairs']} pairs; `tailor contamination` lists them all, `tailor export --decontaminate` "
        "leaves them out of training). The closest:",
        "",
    ]
    return out + [f"- {line}" for line in c["top"]] + [""]


def render_markdown(report: dict, plot_results: list[PlotResult]) -> str:
    plots = {p.name: p for p in plot_results}
    ps = report.get("problem_set") or {}
    g = report.get("grades") or {}
    out = [
        "# tailor report",
        "",
        (
            f"Generated by tailor {report['generated_by']['tailor']} at {report.get('generated_at', '—')}. "
            "Every number here, with the per-seed and per-problem values behind it, is in "
            "[report.json](report.json)."
        ),
        "",
        "## Setup",
        "",
        (
            f"- problem set: {'benchmark ' + ps['benchmark'] if ps.get('benchmark') else 'split ' + str(ps.get('split'))}, "
            f"n = {ps.get('n', 0)} problems, {ps.get('evaluated', 0)} of them evaluated "
            "(comparisons use the problems every side answered; see n per row in the JSON)"
        ),
        f"- base model: {report.get('base_model') or 'not evaluated yet'}",
        f"- judge: {report.get('judge') or '—'}",
        (
            f"- judge grades of the diagnosed problems: {g.get('easy', 0)} easy, {g.get('medium', 0)} medium, {g.get('hard', 0)} hard, "
            f"{g.get('ungraded', 0)} ungraded"
        ),
        "",
    ]
    out += _plot(plots, "grades")
    out += _headline(report, plots) + _ablations(report) + _cotqs(report) + _tiers(report, plots)
    out += _categories(report, plots) + _teachers(report) + _data(report)
    out += selection_markdown(report.get("selection") or []) + _runs(report, plots)
    out += _contamination(report)
    return "\n".join(out).rstrip() + "\n"


# -- writing ---------------------------------------------------------------------------


@dataclass
class ReportFiles:
    markdown: Path
    json: Path
    plots: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # plot name -> why it was not drawn
    notes: list[str] = field(default_factory=list)  # comparisons not made or narrowed, and why


def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the finished files from tmp into out_dir; report.md last, once all it links to exists."""
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:
        new, old = tmp / "plots" / f"{name}.png", plots_dir / f"{name}.png"
        if new.exists():
            os.replace(new, old)
        else:  # skipped this time: an older report's PNG must not pass for current data
            old.unlink(missing_ok=True)
    os.replace(tmp / "report.json", out_dir / "report.json")
    os.replace(tmp / "report.md", out_dir / "report.md")


def write_report(
    store, out_dir, *, split: str | None = "test", benchmark: str | None = None, results: dict | None = None
) -> ReportFiles:
    from app.plots import draw_all

    out_dir = Path(out_dir)
    report = build_report(store, split=split, benchmark=benchmark, results=results)
    # Same parent as out_dir, so the final moves are renames on one filesystem.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", suffix=".tmp", dir=out_dir.parent))
    try:
        plots = draw_all(report, tmp / "plots")
        text = json.dumps(report, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
        (tmp / "report.json").write_text(text + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(report, plots), encoding="utf-8")
        _commit(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportFiles(
        markdown=out_dir / "report.md",
        json=out_dir / "report.json",
        plots=[out_dir / "plots" / p.path.name for p in plots if p.path is not None],
        skipped={p.name: p.reason for p in plots if p.path is None},
        notes=list(report.get("notes") or []),
    )


def format_report_summary(files: ReportFiles) -> str:
    skipped = f"; skipped {', '.join(files.skipped)}" if files.skipped else ""
    plots_dir = files.markdown.parent / "plots"
    head = f"report {files.markdown} (numbers in {files.json.name}; {len(files.plots)} plots in {plots_dir}{skipped})"
    return "\n".join([head] + [f"note: {n}" for n in files.notes])
