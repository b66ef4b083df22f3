"""The report's five PNG plots, drawn from the report dict (app.report.build_report).

Each plot function takes the report dict and a target path and returns None when it drew
the plot, or a one-line reason when there is nothing to draw — never placeholder data.
matplotlib is imported inside the functions so `import app.report` stays cheap, and
figures are plain `Figure` objects on an Agg canvas rather than pyplot: no GUI backend,
no global figure registry to leak, and safe from a TUI worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEADLINE_TIER = "R1"  # the full-length tier: the one the headline, categories and seeds use
DPI = 110
# File stem -> title, in report order. app.report uses the stems to clear stale PNGs.
PLOTS = {
    "training_curves": "Training curves",
    "grades": "Grade distribution",
    "accuracy_by_tier": "Accuracy by tier vs mean words",
    "categories": "Base vs distilled per category",
    "seeds": "Per-seed accuracy with mean and CI",
}


@dataclass
class PlotResult:
    name: str  # file stem in plots/
    title: str
    path: Path | None  # None when skipped
    reason: str | None = None  # why it was skipped


def _figure(width: float = 7.0, height: float = 4.2):
    import matplotlib

    matplotlib.use("Agg")  # non-interactive: reports are written on headless machines too
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")


def _colors(report: dict) -> dict[str, str]:
    """One colour per label across all plots, so a configuration looks the same everywhere."""
    labels = [r["label"] for key in ("configurations", "tiers", "categories") for r in report.get(key) or []]
    distilled = [x for x in dict.fromkeys(labels) if x != "base"]
    return {"base": "#555555", **{x: f"C{i % 10}" for i, x in enumerate(distilled)}}


def _base_first(labels) -> list[str]:
    """Unique labels in first-seen order, with "base" moved to the front."""
    seen = list(dict.fromkeys(labels))
    return (["base"] if "base" in seen else []) + [x for x in seen if x != "base"]


# -- (1) training curves ---------------------------------------------------------------


def training_curves(report: dict, path: Path) -> str | None:
    curves = report.get("curves") or {}
    if not curves:
        return "no training runs yet"
    drawn = {rid: c for rid, c in curves.items() if c["train_loss"] or c["val_loss"]}
    if not drawn:
        return "the training runs have no loss points recorded yet"
    fig = _figure()
    ax = fig.add_subplot()
    for i, (rid, c) in enumerate(drawn.items()):
        color = f"C{i % 10}"
        if c["train_loss"]:
            xs, ys = zip(*c["train_loss"])
            ax.plot(xs, ys, color=color, lw=1, alpha=0.7, label=f"{rid} train")
        if c["val_loss"]:
            xs, ys = zip(*c["val_loss"])
            ax.plot(xs, ys, color=color, lw=1.6, ls="--", marker=".", label=f"{rid} val")
        best = c.get("best_iter")
        if best is not None:
            # The early-stop point: the checkpoint the run kept (lowest validation loss).
            ax.axvline(best, color=color, lw=0.8, ls=":")
            at = [v for s, v in c["val_loss"] if s == best]
            if at:
                ax.plot([best], at, marker="*", ms=13, color=color, mec="black", zorder=5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("Training curves (★ / dotted line: best validation loss, the kept checkpoint)", fontsize=9)
    ax.legend(fontsize=7, ncol=2 if len(drawn) > 3 else 1)
    _save(fig, path)
    return None


# -- (2) grade distribution ------------------------------------------------------------


GRADE_ORDER = ("easy", "medium", "hard", "ungraded")


def grade_distribution(report: dict, path: Path) -> str | None:
    grades = report.get("grades") or {}
    counts = [int(grades.get(g) or 0) for g in GRADE_ORDER]
    if not any(counts):
        return "no problems graded yet"
    fig = _figure(5.5, 3.8)
    ax = fig.add_subplot()
    bars = ax.bar(GRADE_ORDER, counts, color=["#4c9a2a", "#e0a030", "#c0392b", "#999999"])
    ax.bar_label(bars, labels=[str(c) for c in counts])
    ax.set_ylabel("problems")
    easy, medium, hard = counts[:3]
    # Stated relative to Medium, the way ACoTD reports its pool (5.3 : 1 : 3.1).
    ratio = f"{easy / medium:.1f} : 1 : {hard / medium:.1f}" if medium else f"{easy} : 0 : {hard}"
    ax.set_title(f"Grade distribution ({easy + medium + hard} graded; E:M:H = {ratio})", fontsize=10)
    _save(fig, path)
    return None


# -- (3) accuracy by tier vs mean words --------------------------------------------------


def accuracy_by_tier(report: dict, path: Path) -> str | None:
    tiers = report.get("tiers") or []
    if not tiers:
        return "no tier evaluations yet"
    fig = _figure()
    ax = fig.add_subplot()
    colors = _colors(report)
    for label in _base_first(t["label"] for t in tiers):
        rows = sorted((t for t in tiers if t["label"] == label), key=lambda t: t["tier"])
        xs = [t["mean_words"] for t in rows]
        ys = [100 * t["accuracy"] for t in rows]
        # Seed spread as error bars where there is one (a single run has none).
        err = [100 * t["std"] if t.get("std") is not None else 0.0 for t in rows]
        ax.errorbar(xs, ys, yerr=err if any(err) else None, marker="o", capsize=3, color=colors[label], label=label)
        for t, x, y in zip(rows, xs, ys):
            ax.annotate(t["tier"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("mean words per response")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy by response-length tier", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)
    return None


# -- (4) base vs distilled per category ------------------------------------------------


def category_group(row: dict) -> str:
    parts = [p for p in (row.get("category"), row.get("section")) if p]
    return " / ".join(parts) or "(uncategorised)"


def categories(report: dict, path: Path) -> str | None:
    rows = [r for r in report.get("categories") or [] if r["tier"] == HEADLINE_TIER]
    if not rows:
        return f"no per-category results at tier {HEADLINE_TIER} yet"
    labels = _base_first(r["label"] for r in rows)
    if "base" not in labels:
        return f"no base evaluation per category at tier {HEADLINE_TIER} yet"
    if len(labels) < 2:
        return f"no distilled configuration evaluated per category at tier {HEADLINE_TIER} yet"
    groups = list(dict.fromkeys(category_group(r) for r in rows))
    acc = {(r["label"], category_group(r)): 100 * r["accuracy"] for r in rows}
    width, colors = 0.8 / len(labels), _colors(report)
    fig = _figure(max(6.0, 1.1 * len(groups) + 2), 4.2)
    ax = fig.add_subplot()
    for i, label in enumerate(labels):
        # A (label, category) pair with no result is left out, not drawn as 0 %.
        shift = (i - (len(labels) - 1) / 2) * width
        xs = [j + shift for j, g in enumerate(groups) if (label, g) in acc]
        ys = [acc[(label, g)] for g in groups if (label, g) in acc]
        ax.bar(xs, ys, width, label=label, color=colors[label])
    slanted = len(groups) > 4
    ax.set_xticks(range(len(groups)), groups, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Base vs distilled per category (tier {HEADLINE_TIER})", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)
    return None


# -- (5) per-seed dots with mean and CI ------------------------------------------------


def seed_dots(report: dict, path: Path) -> str | None:
    configs = [
        c for c in report.get("configurations") or [] if c["tier"] == HEADLINE_TIER and c.get("accuracy_by_seed")
    ]
    if not configs:
        return f"no distilled configuration evaluated at tier {HEADLINE_TIER} yet"
    fig = _figure(max(5.0, 1.3 * len(configs) + 2), 4.2)
    ax = fig.add_subplot()
    colors = _colors(report)
    for i, c in enumerate(configs):
        vals = [100 * v for v in c["accuracy_by_seed"].values()]
        # Deterministic spread so equal values stay visible; no random jitter.
        offs = [0.0] if len(vals) == 1 else [-0.15 + 0.3 * k / (len(vals) - 1) for k in range(len(vals))]
        ax.scatter(
            [i + o for o in offs],
            vals,
            s=22,
            color=colors[c["label"]],
            zorder=3,
            label="per-seed accuracy" if i == 0 else None,
        )
        mean = 100 * c["mean"]
        if c.get("ci"):
            lo, hi = (100 * x for x in c["ci"])
            ax.errorbar(
                [i + 0.3],
                [mean],
                yerr=[[mean - lo], [hi - mean]],
                fmt="none",
                ecolor="black",
                capsize=4,
                label="95 % CI of the mean" if i == 0 else None,
            )
        ax.plot([i - 0.25, i + 0.35], [mean, mean], color="black", lw=2, label="mean" if i == 0 else None)
    base = {round(c["base_mean"], 12) for c in configs}
    if len(base) == 1:
        b = 100 * configs[0]["base_mean"]
        ax.axhline(b, color="#c0392b", ls="--", lw=1.2, label=f"base mean {b:.1f} %")
    else:  # configurations compared on different base runs: one segment each
        for i, c in enumerate(configs):
            ax.plot(
                [i - 0.4, i + 0.4],
                [100 * c["base_mean"]] * 2,
                color="#c0392b",
                ls="--",
                lw=1.2,
                label="base mean" if i == 0 else None,
            )
    ax.set_xticks(range(len(configs)), [c["label"] for c in configs], rotation=30 if len(configs) > 4 else 0)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Per-seed accuracy, mean and 95 % CI (tier {HEADLINE_TIER})", fontsize=10)
    ax.legend(fontsize=7)
    _save(fig, path)
    return None


def draw_all(report: dict, plots_dir: Path) -> list[PlotResult]:
    """Draw every plot into plots_dir. Any exception propagates: the caller aborts the report."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    # The functions are looked up at call time (not a module-level table) so a test can
    # monkeypatch one; the order matches PLOTS.
    draws = (training_curves, grade_distribution, accuracy_by_tier, categories, seed_dots)
    out = []
    for (name, title), draw in zip(PLOTS.items(), draws, strict=True):
        path = plots_dir / f"{name}.png"
        reason = draw(report, path)
        out.append(PlotResult(name, title, None if reason else path, reason))
    return out
