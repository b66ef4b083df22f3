"""app/report.py and app/plots.py: files, numbers that recompute, skipped plots, atomic writes."""

import json
import shutil
import subprocess
import sys
import types

import pytest
from recompute import recompute, recompute_family

import app.plots
from app.comparison import compare
from app.plots import PLOTS
from app.records import Run
from app.report import (
    build_report,
    fmt_ci,
    fmt_mean_std,
    fmt_p,
    fmt_pct,
    fmt_points,
    format_report_summary,
    render_markdown,
    write_report,
)
from app.results import adjust, comparison_row
from app.store import Store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 40
BASE = [1] * 30 + [0] * 10  # 75 %


def right(k: int) -> list[int]:
    return [1] * k + [0] * (N - k)


def shifted(run: list[int], k: int) -> list[int]:
    """The base run with its first k right answers turned wrong (k < 0: k wrong ones right)."""
    out = list(run)
    if k >= 0:
        for i in [i for i, x in enumerate(out) if x][:k]:
            out[i] = 0
    else:
        for i in [i for i, x in enumerate(out) if not x][:-k]:
            out[i] = 1
    return out


BASE_SEEDS = {"0": BASE, "1": shifted(BASE, 1), "2": shifted(BASE, -1)}


def configuration(label: str, seeds: dict[str, list[int]], runs: list[str], tier: str = "R1") -> dict:
    """One results["configurations"] entry built the way app.results does."""
    c = compare(BASE_SEEDS, seeds, label=label, n_boot=2000)
    return comparison_row(c, sweep=None, tier=tier, runs=runs, seeds=[int(k) for k in seeds])


def tier(label, t, acc, words, std=None):
    return {
        "label": label,
        "tier": t,
        "accuracy": acc,
        "std": std,
        "mean_words": words,
        "mean_tokens": words * 1.4,
        "no_answer": 0.1,
        "truncated": 0.05,
        "n": N,
        "seeds": 1 if label == "base" else 3,
    }


def run_row(rid, label, seed, best):
    return {
        "id": rid,
        "label": label,
        "seed": seed,
        "status": "done",
        "best_iter": best,
        "best_val_loss": 0.8,
        "stop_reason": "patience",
        "valid_disjoint_from_test": True if best else None,
    }


def make_results() -> dict:
    good = configuration("adaptive", {"0": right(36), "1": right(37), "2": right(38)}, ["ad-0", "ad-1", "ad-2"])
    bad = configuration("short-only", {"0": right(18), "1": right(19), "2": right(17)}, ["so-0"])
    adjust([good, bad], "R1")
    return {
        "problem_set": {"split": "test", "benchmark": None, "n": N},
        "base_model": "tiny-qwen",
        "judge": "rules (answer check only)",
        "grades": {"easy": 53, "medium": 10, "hard": 31, "ungraded": 2},
        "configurations": [good, bad],
        "ablations": [],
        "notes": [],
        "tiers": [tier("base", t, a, w) for t, a, w in (("R1", 0.75, 220.0), ("R2", 0.7, 150.0), ("R3", 0.6, 90.0))]
        + [
            tier("adaptive", t, a, w, 0.02) for t, a, w in (("R1", 0.8, 200.0), ("R2", 0.72, 140.0), ("R3", 0.65, 85.0))
        ],
        "categories": [
            {"label": lab, "tier": "R1", "category": cat, "section": None, "accuracy": acc, "n": 20}
            for lab, cat, acc in (
                ("base", "algebra", 0.8),
                ("base", "geometry", 0.7),
                ("adaptive", "algebra", 0.85),
                ("adaptive", "geometry", 0.75),
                ("short-only", "algebra", 0.5),
            )
        ],
        "runs": [
            run_row("ad-0", "adaptive", 0, 20),
            run_row("ad-1", "adaptive", 1, 30),
            run_row("so-0", "short-only", 0, None),
        ],
    }


EMPTY = {
    "problem_set": {"split": "test", "benchmark": None, "n": 0},
    "base_model": None,
    "judge": "rules (answer check only)",
    "grades": {"easy": 0, "medium": 0, "hard": 0, "ungraded": 0},
    "configurations": [],
    "tiers": [],
    "categories": [],
    "runs": [],
}


@pytest.fixture
def results():
    return make_results()


def add_runs(store):
    """Two runs with loss curves; ad-0's validation loss bottoms at its best_iter (20)."""
    for rid, seed, best in (("ad-0", 0, 20), ("ad-1", 1, 30)):
        store.insert_run(
            Run(
                id=rid,
                config={},
                seed=seed,
                label="adaptive",
                status="done",
                best_iter=best,
                best_val_loss=0.8,
                stop_reason="patience",
            )
        )
        for step in range(10, 50, 10):
            store.add_metrics(rid, step, {"train_loss": 2.0 - step / 50, "val_loss": 0.8 + abs(step - best) / 100})
    return store


@pytest.fixture
def trained(store):
    return add_runs(store)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One full report shared by the read-only tests: drawing five PNGs is the slow part."""
    d = tmp_path_factory.mktemp("shared")
    with Store(d / "tailor.db") as store:
        add_runs(store)
        results = make_results()
        files = write_report(store, d / "out" / "rep", results=results)
        yield types.SimpleNamespace(store=store, results=results, files=files, out=d / "out")


@pytest.fixture
def out(tmp_path):
    """Parent of the report directory, apart from the project, so leftovers are easy to see."""
    d = tmp_path / "out"
    d.mkdir()
    return d


def load(files) -> dict:
    return json.loads(files.json.read_text(encoding="utf-8"))


def without_time(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "generated_at"}


# -- the full report -------------------------------------------------------------------


def test_all_plots_written_as_valid_pngs(written):
    files = written.files
    assert files.skipped == {}
    assert sorted(p.name for p in files.plots) == sorted(f"{n}.png" for n in PLOTS)
    for p in files.plots:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    md = files.markdown.read_text(encoding="utf-8")
    for name in PLOTS:
        assert f"(plots/{name}.png)" in md
    # Nothing but the report is left next to it (the temp dir is gone).
    assert [p.name for p in written.out.iterdir()] == ["rep"]
    assert str(files.markdown) in format_report_summary(files)


def test_json_is_the_build_report_dict_with_curves(written):
    data = load(written.files)
    assert without_time(data) == without_time(build_report(written.store, results=written.results))
    assert data["generated_by"]["tailor"] and data["generated_at"]
    for key in written.results:  # every number of results is kept, unchanged
        assert data[key] == json.loads(json.dumps(written.results[key]))
    c = data["curves"]["ad-0"]
    assert c["best_iter"] == 20
    assert c["val_loss"] == [
        [10, pytest.approx(0.9)],
        [20, pytest.approx(0.8)],
        [30, pytest.approx(0.9)],
        [40, pytest.approx(1.0)],
    ]
    assert [s for s, _ in c["train_loss"]] == [10, 20, 30, 40]
    # A run results knows but the store has no rows for still gets an (empty) entry.
    assert data["curves"]["so-0"] == {"train_loss": [], "val_loss": [], "best_iter": None}


def test_statistics_recompute_from_the_json_alone(written):
    data = load(written.files)
    for c in data["configurations"]:
        recompute(c)
    recompute_family(data["configurations"], "R1")


def test_markdown_holds_the_headline_numbers(written):
    md, data = written.files.markdown.read_text(encoding="utf-8"), load(written.files)
    assert "split test" in md and f"n = {N} problems" in md and "tiny-qwen" in md and "rules" in md
    for c in data["configurations"]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {c['label']} | {c['tier']} |"))
        for text in (
            fmt_mean_std(c["mean"], c["std"]),
            fmt_ci(c["ci"], unit=" %"),
            fmt_pct(c["base_mean"]),
            fmt_points(c["delta"]),
            fmt_ci(c["delta_ci"], signed=True),
            fmt_p(c["p"]),
            fmt_p(c["p_adjusted"]),
            c["test"],
        ):
            assert text in row
        seeds = ", ".join(f"{k}: {fmt_pct(v)}" for k, v in c["accuracy_by_seed"].items())
        assert f"per-seed accuracies: {seeds}" in md
    assert "| ad-0 | adaptive | 0 | done | 20 | 0.8000 | patience | yes |" in md
    assert "| so-0 | short-only | 0 | done | — | 0.8000 | patience | — |" in md
    assert "| adaptive | R2 | 72.0 ± 2.0 % | 140.0 | 196.0 | 10.0 % | 5.0 % |" in md
    assert "| short-only | R1 | algebra | — | 50.0 % | 20 |" in md
    assert "53 easy, 10 medium, 31 hard, 2 ungraded" in md
    assert "CoTQS not rated: the judge is the rules judge" in md


def headline_row(md: str, label: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {label} | R1 | 3 |"))


def test_degraded_configuration_is_marked(written):
    md = written.files.markdown.read_text(encoding="utf-8")
    assert "⚠ DEGRADED (adjusted p < 0.05)" in headline_row(md, "short-only")
    good = headline_row(md, "adaptive")
    assert "⚠" not in good and "better (adjusted p < 0.05)" in good
    assert "sign-flip" in md and "Holm" in md  # the legend names the tests


def markdown(store, results) -> str:
    """The Markdown alone (no plots drawn): for tests about the text only."""
    return render_markdown(build_report(store, results=results), [])


def test_below_base_but_not_significant_is_no_significant_difference(store, results):
    results["configurations"][1].update(p=0.3, p_adjusted=0.6, verdict="no significant difference", degraded=False)
    row = headline_row(markdown(store, results), "short-only")
    assert "no significant difference, Δ [" in row and "DEGRADED" not in row


def test_cotqs_shown_when_rated(store, results):
    results["judge"] = "openai deepseek-chat"
    results["configurations"][0].update(cotqs=4.25, base_cotqs=3.5)
    assert "| adaptive | R1 | 4.25 | 3.50 |" in markdown(store, results)
    results["configurations"][0].update(cotqs=None, base_cotqs=None)
    results["judge"] = "none (CoT quality not rated)"  # what app.results says when nothing was rated
    assert "CoTQS not rated: no CoT quality ratings are stored" in markdown(store, results)


# -- nothing to show -------------------------------------------------------------------


def test_empty_project_skips_every_plot_with_a_reason(store, out):
    files = write_report(store, out / "rep", results=EMPTY)
    assert files.plots == [] and set(files.skipped) == set(PLOTS)
    assert not list((out / "rep" / "plots").glob("*.png"))
    md = files.markdown.read_text(encoding="utf-8")
    assert "![" not in md
    for reason in files.skipped.values():
        assert f"not drawn — {reason}" in md
    assert "no training runs yet" in md and "no problems graded yet" in md
    assert "No distilled configuration has been evaluated yet" in md
    data = load(files)
    assert data["curves"] == {} and data["configurations"] == []


def test_empty_project_through_app_results(store, out):
    pytest.importorskip("app.results")
    files = write_report(store, out / "rep")  # results collected from the (empty) store
    assert files.plots == [] and set(files.skipped) == set(PLOTS)
    assert load(files)["problem_set"]["n"] == 0


def test_runs_without_points_are_a_reason_not_an_empty_plot(store, results, tmp_path):
    for name in ("grade_distribution", "accuracy_by_tier", "categories", "seed_dots"):
        assert getattr(app.plots, name)(EMPTY, tmp_path / "x.png")  # a reason, nothing drawn
    report = build_report(store, results=results)  # runs listed, no metrics stored
    assert app.plots.training_curves(report, tmp_path / "x.png") == "the training runs have no loss points recorded yet"
    assert not (tmp_path / "x.png").exists()


def test_rewrite_removes_plots_that_are_now_skipped(written, store, out):
    shutil.copytree(written.out / "rep", out / "rep")
    files = write_report(store, out / "rep", results=EMPTY)
    assert not list((out / "rep" / "plots").glob("*.png"))
    assert load(files)["configurations"] == []


# -- atomic writes ---------------------------------------------------------------------


def boom(report, path):
    path.write_bytes(b"half a png")
    raise RuntimeError("disk on fire")


def test_failure_mid_write_leaves_no_report(trained, results, out, monkeypatch):
    monkeypatch.setattr(app.plots, "accuracy_by_tier", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(trained, out / "rep", results=results)
    assert list(out.iterdir()) == []  # no report dir, no temp dir


def test_failure_keeps_the_previous_report_intact(written, store, out, monkeypatch):
    shutil.copytree(written.out / "rep", out / "rep")
    before = {p: p.read_bytes() for p in (out / "rep").rglob("*") if p.is_file()}
    monkeypatch.setattr(app.plots, "training_curves", boom)
    with pytest.raises(RuntimeError):
        write_report(store, out / "rep", results=EMPTY)
    assert {p: p.read_bytes() for p in (out / "rep").rglob("*") if p.is_file()} == before
    assert [p.name for p in out.iterdir()] == ["rep"]


# -- wiring ----------------------------------------------------------------------------


def test_results_are_collected_when_not_given(trained, results, monkeypatch):
    seen = {}

    def collect(store, *, split="test", benchmark=None):
        seen.update(split=split, benchmark=benchmark)
        return results

    monkeypatch.setitem(sys.modules, "app.results", types.SimpleNamespace(collect=collect))
    report = build_report(trained, split="valid", benchmark="math500")
    assert seen == {"split": "valid", "benchmark": "math500"}
    assert report["configurations"] == json.loads(json.dumps(results["configurations"]))


def test_results_are_not_mutated_and_clashing_keys_refused(trained, results):
    snapshot = json.dumps(results, sort_keys=True)
    build_report(trained, results=results)
    assert json.dumps(results, sort_keys=True) == snapshot
    with pytest.raises(ValueError, match="curves"):
        build_report(trained, results={**results, "curves": {}})


def test_importing_report_does_not_import_matplotlib():
    code = "import sys, app.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
