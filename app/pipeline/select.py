"""Export's selection step: keep the top P % of a dataset's verified traces by quality,
difficulty, the CAR-style product or DMC (app/dmc.py), for one student state, from what
`tailor score` stored. What was kept is stored (``selections``) and put in the manifest."""

from __future__ import annotations

import json

from app import dmc
from app.config import Config
from app.errors import TailorError
from app.events import Events
from app.records import Trace
from app.store import Store

NEEDS = {"quality": ("quality",), "difficulty": ("difficulty",), "car": ("quality", "difficulty")}
NEEDS["dmc"] = NEEDS["dmc-dynamic"] = ("quality", "difficulty", "capability")
CONSTANTS = ("quality_power", "moderate", "width", "phi_slope", "phi_mid")  # what the training child ranks with


class SelectError(TailorError):
    """A selection whose scores are not all there."""


def select_traces(
    cfg: Config,
    store: Store,
    events: Events,
    dataset: str,
    chosen: dict[int, Trace],
    method: str,
    top: float,
    *,
    adapter: str | None = None,
    project=".",
    epoch: int = 0,
    rescore_pool: float | None = None,
) -> tuple[dict[int, Trace], dict]:
    """(the kept part of ``chosen``, the manifest's record of the selection). Nothing is
    stored here: export calls `store_selection` once its files are written."""
    from app.pipeline.score import capability, capability_bounds, quality_key, state_of
    from app.prompts import load_prompt

    if method not in dmc.METHODS:
        raise SelectError(f"--select {method!r}: expected one of {', '.join(dmc.METHODS)}")
    if not 0 < top <= 100:
        raise SelectError(f"--top {top:g}: expected a percentage in (0, 100]")
    if rescore_pool is not None and (method != "dmc-dynamic" or not top <= rescore_pool <= 100):
        raise SelectError(f"--rescore-pool {rescore_pool:g}: only with dmc-dynamic, and from --top to 100")
    if method == "dmc-dynamic" and adapter is not None:
        raise SelectError("--select dmc-dynamic starts from the base student; give no --adapter")
    slots = sorted(chosen)
    ids = [chosen[i].id for i in slots]
    record = {"method": method, "top": top, "of": len(ids), "epoch": epoch, "dataset": dataset}
    if method == "full":
        record["kept"] = len(ids)
        return chosen, record
    state = state_of(cfg, store, project, adapter)
    need = NEEDS[method]
    hint = f"run `tailor score --dataset {dataset}" + (f" --adapter {adapter}" if adapter else "") + "` first"
    q = d = c = None
    if "quality" in need:
        judge = quality_key(cfg)
        rated = store.trace_quality(*judge)
        missing = [t for t in ids if t not in rated]
        if missing:
            raise SelectError(f"--select {method}: {len(missing)} of {len(ids)} traces have no quality rating; {hint}")
        q = [rated[t]["quality"] for t in ids]
    if "difficulty" in need:
        scores = store.trace_scores(state.key, load_prompt("student_solve").hash, ids)
        missing = [t for t in ids if t not in scores]
        if missing:
            raise SelectError(
                f"--select {method}: {len(missing)} of {len(ids)} traces are not scored for {state.label}; {hint}"
            )
        d = dmc.percentile_ranks([scores[t][cfg.dmc.difficulty] for t in ids])
    if "capability" in need:
        got = capability(cfg, store, state.key)
        if got is None:
            raise SelectError(f"--select dmc: {state.label} is not measured on the placement test; {hint}")
        c = got[1]
        record["capability"] = {"absolute": got[0], "relative": c}
    n = len(ids)
    vals = dmc.values(method, q or [0.0] * n, d or [0.0] * n, c, cfg.dmc)
    kept = dmc.top(ids, vals, top)
    record.update(
        kept=len(kept),
        state=state.key,
        difficulty=cfg.dmc.difficulty if d is not None else None,
        quality_by=" ".join(judge) if q is not None else None,
        trace_ids=sorted(kept),
        values={str(t): v for t, v in kept.items()},
    )
    if method == "dmc-dynamic":
        record["dynamic"] = {
            "rescore_pool": rescore_pool,
            "difficulty": cfg.dmc.difficulty,
            "constants": {k: getattr(cfg.dmc, k) for k in CONSTANTS},
            # frozen now: the child maps its capability the same way as this selection did
            "capability_bounds": list(bounds) if (bounds := capability_bounds(cfg, store)) else None,
            "quality": {str(t): v for t, v in zip(ids, q)},
        }
    events.message(
        f"--select {method} --top {top:g}: {len(kept)} of {n} traces kept for {state.label}"
        + (f" (capability {c:.3f})" if c is not None else "")
    )
    return {i: chosen[i] for i in slots if chosen[i].id in kept}, record


def store_selection(store: Store, record: dict | None) -> None:
    """Keep what an export's selection chose (after its files are written)."""
    if record and "values" in record:
        kept = {int(t): v for t, v in record["values"].items()}
        store.put_selection(record["dataset"], record["method"], record["top"], record["epoch"], record["state"], kept)


def dynamic_files(cfg: Config, store: Store, student, slots, pool: dict[int, Trace], record: dict, valid_ids) -> dict:
    """{file name: bytes} a dmc-dynamic export adds for the training child: pool.jsonl (every
    candidate trace outside the fixed validation problems, with its quality) and
    placement.jsonl (the placement test, rendered the same way)."""
    from app.pipeline.export import example_messages
    from app.pipeline.score import placement_items

    quality = record["dynamic"].pop("quality")
    valid = set(valid_ids)

    def line(trace_id: int, messages: list[dict], **extra) -> str:
        return json.dumps({"id": trace_id, "messages": messages, **extra}, ensure_ascii=False) + "\n"

    rows = [
        line(
            t.id,
            example_messages(student, slots[i].problem, t, slots[i].teacher.keeps_reasoning),
            quality=quality[str(t.id)],
        )
        for i, t in sorted(pool.items())
        if slots[i].problem.id not in valid
    ]
    placed = [
        line(it.trace.id, example_messages(student, it.problem, it.trace, it.keeps_reasoning))
        for it in placement_items(cfg, store, store.placement())
    ]
    return {"pool.jsonl": "".join(rows).encode("utf-8"), "placement.jsonl": "".join(placed).encode("utf-8")}
