"""The report's data-selection section: which selection each configuration trained on
(from its export's manifest) and, for dynamic DMC, the student's capability at every
epoch and how often each trace was chosen by its quality rank — the "core courses"
chosen every epoch and the "electives" that come and go."""

from __future__ import annotations

import json
from pathlib import Path

QUANTILES = 5  # quality bands, best first


def selection_summary(store, runs: list[dict]) -> list[dict]:
    out = []
    for r in runs:
        run = store.get_run(r["id"])
        if run is None:
            continue
        dyn = run.config.get("dmc")
        if not dyn:
            continue
        pool = _pool(dyn["pool"])
        if not pool:
            continue
        picks = [s for s in store.selections(dyn["dataset"]) if s["method"] == "dmc-dynamic"]
        epochs = {0: {s["trace_id"] for s in picks if s["epoch"] == 0}}
        for s in picks:
            if s["state"] == f"run:{run.id}":
                epochs.setdefault(s["epoch"], set()).add(s["trace_id"])
        capability = {0: dyn.get("capability_at_start")}
        # one point per re-selection, at its iteration: epochs 1, 2, ... in order
        for epoch, (_, value) in enumerate(store.curve(run.id, "dmc_capability"), 1):
            capability[epoch] = value
        ranked = sorted(pool, key=lambda t: (-pool[t], t))
        n = len(epochs)
        freq = {t: sum(t in ids for ids in epochs.values()) / n for t in ranked}
        bands = []
        for b in range(QUANTILES):
            part = ranked[b * len(ranked) // QUANTILES : (b + 1) * len(ranked) // QUANTILES]
            if part:
                bands.append({"band": b + 1, "traces": len(part), "frequency": sum(freq[t] for t in part) / len(part)})
        out.append(
            {
                "run": run.id,
                "label": r["label"],
                "epochs": n,
                "capability": [capability.get(e) for e in sorted(epochs)],
                "core": sum(f == 1 for f in freq.values()),
                "electives": sum(0 < f < 1 for f in freq.values()),
                "never": sum(f == 0 for f in freq.values()),
                "pool": len(pool),
                "by_quality": bands,
            }
        )
    return out


def _pool(path: str) -> dict[int, float]:
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError:
        return {}
    return {row["id"]: row["quality"] for row in map(json.loads, filter(str.strip, lines))}


def selection_markdown(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = [
        "## Dynamic DMC: what each epoch selected",
        "",
        "Capability is the student's relative capability on the placement test before each epoch "
        "(epoch 0: the base student). Core: traces selected in every epoch; electives: in some. "
        f"Selection frequency by quality band (1 = the best {100 // QUANTILES} % of the pool by quality).",
        "",
        "| run | epochs | capability per epoch | core | electives | never | frequency by quality band |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        caps = " → ".join("—" if c is None else f"{c:.3f}" for c in r["capability"])
        bands = ", ".join(f"{b['band']}: {b['frequency']:.2f}" for b in r["by_quality"])
        out.append(
            f"| {r['run']} ({r['label']}) | {r['epochs']} | {caps} | {r['core']} | {r['electives']} | {r['never']} | {bands} |"
        )
    return out + [""]
