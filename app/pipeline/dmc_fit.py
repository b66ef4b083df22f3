"""`tailor dmc fit`: does a data feature predict what distillation gained? The DMC
study's own analysis, on the user's data: for every evaluated configuration, the mean
quality, difficulty (PPL, CPPL, IFD), CAR-style product and DMC of the traces its runs
trained on (for the base student), against its accuracy gain over the base; Spearman's ρ
of each feature with the gain across configurations.

Difficulty is compared across datasets, so CAR and DMC use each trace's percentile in the
union of every configuration's traces (within one dataset, export ranks in that dataset).
ρ needs three configurations and a feature that varies; otherwise it is undefined.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from app import dmc
from app.config import Config
from app.store import Store

FEATURES = ("quality", "ppl", "cppl", "ifd", "car", "dmc")


def _data_dir(project, recorded: str) -> Path:
    """A run's export directory: as recorded when absolute, else found under this project's
    runs/ (a relative path was relative to wherever `tailor` was started)."""
    path = Path(recorded)
    if path.is_absolute() or "runs" not in path.parts:
        return path
    return Path(project).joinpath(*path.parts[path.parts.index("runs") :])


def _trained_on(run, project) -> list[int] | None:
    """The trace ids a run trained on, from its export's manifest (None when the export
    was rewritten after the run, or predates trace ids)."""
    from app.pipeline.export import read_manifest

    data = run.config.get("data") or {}
    manifest = read_manifest(_data_dir(project, data["dir"])) if data.get("dir") else None
    if not manifest:
        return None
    if manifest.get("files", {}).get("train.jsonl", {}).get("sha256") != data.get("train_sha256"):
        return None
    return manifest.get("trace_ids")


def fit(cfg: Config, store: Store, *, split: str | None = "test", benchmark: str | None = None, project=".") -> dict:
    from scipy.stats import spearmanr

    from app.pipeline.score import capability, quality_key, state_of
    from app.prompts import load_prompt
    from app.results import collect

    res = collect(store, split=split, benchmark=benchmark)
    first = next((c["tier"] for c in res["configurations"]), None)
    rows = [c for c in res["configurations"] if c["tier"] == first]
    runs = {r.id: r for r in store.runs()}
    state = state_of(cfg, store, project, None)
    scores = store.trace_scores(state.key, load_prompt("student_solve").hash)
    quality = store.trace_quality(*quality_key(cfg))
    cap = capability(cfg, store, state.key)
    notes: list[str] = []
    if cap is None:
        notes.append("the base student has no placement-test capability: DMC is left out (`tailor score` first)")

    traces_of: dict[str, list[int]] = {}
    for c in rows:
        ids = set()
        for rid in c["runs"]:
            got = _trained_on(runs[rid], project) if rid in runs else None
            if got is None:
                notes.append(f"{c['label']}: run {rid}'s export was rewritten or has no trace ids; left out")
            else:
                ids.update(got)
        usable = sorted(t for t in ids if t in scores and t in quality)
        if len(usable) < len(ids):
            notes.append(f"{c['label']}: {len(ids) - len(usable)} of {len(ids)} traces unscored (`tailor score`)")
        if usable:
            traces_of[c["label"]] = usable

    union = sorted({t for ids in traces_of.values() for t in ids})
    rank = dict(zip(union, dmc.percentile_ranks([scores[t][cfg.dmc.difficulty] for t in union]))) if union else {}
    table = []
    for c in rows:
        ids = traces_of.get(c["label"])
        if not ids:
            continue
        q = [quality[t]["quality"] for t in ids]
        d = [rank[t] for t in ids]
        feats = {
            "quality": statistics.fmean(q),
            **{k: statistics.fmean(scores[t][k] for t in ids) for k in ("ppl", "cppl", "ifd")},
            "car": statistics.fmean(dmc.values("car", q, d, None, cfg.dmc)),
            "dmc": statistics.fmean(dmc.values("dmc", q, d, cap[1], cfg.dmc)) if cap else None,
        }
        table.append({"label": c["label"], "traces": len(ids), "gain": c["delta"], **feats})

    rho = {}
    for f in FEATURES:
        pairs = [(r[f], r["gain"]) for r in table if r[f] is not None and r["gain"] is not None]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(pairs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
            rho[f] = {"rho": None, "p": None, "n": len(pairs), "note": "undefined: needs 3+ configurations that vary"}
            continue
        r = spearmanr(xs, ys)
        value, p = float(r.statistic), float(r.pvalue)
        rho[f] = {"rho": value if math.isfinite(value) else None, "p": p if math.isfinite(p) else None, "n": len(pairs)}
    return {
        "state": state.key,
        "capability": None if cap is None else {"absolute": cap[0], "relative": cap[1]},
        "tier": first,
        "difficulty": cfg.dmc.difficulty,
        "configurations": table,
        "spearman": rho,
        "notes": notes,
    }


def format_fit(out: dict) -> str:
    if not out["configurations"]:
        return "no evaluated configuration has scored training traces yet (`tailor score`, then train and eval)"
    lines = [
        f"{'configuration':<28} {'traces':>6} {'gain':>7} " + " ".join(f"{f:>8}" for f in FEATURES),
    ]
    for r in out["configurations"]:
        cells = " ".join("       —" if r[f] is None else f"{r[f]:>8.3f}" for f in FEATURES)
        lines.append(f"{r['label']:<28} {r['traces']:>6} {100 * r['gain']:>+6.1f}p {cells}")
    lines.append("")
    lines.append("Spearman's ρ with the gain (accuracy vs the base, first tier), across configurations:")
    for f in FEATURES:
        s = out["spearman"][f]
        shown = s.get("note") if s["rho"] is None else f"ρ = {s['rho']:+.3f} (p {s['p']:.3g}, n {s['n']})"
        lines.append(f"  {f:<8} {shown}")
    lines.append(
        "DMC is tailor's form of the metric (app/dmc.py, constants in [dmc]); CAR = quality × difficulty rank."
    )
    lines += [f"note: {n}" for n in out["notes"]]
    return "\n".join(lines)
