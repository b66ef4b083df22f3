"""Dynamic DMC inside the training child: before every epoch after the first, the pool is
scored with the current weights (LoRA in place), the student's capability is measured
on the placement test, and the top P % by DMC becomes the next epoch's data.

Epoch 0 trains on the export's own selection (tailor made it with the base student, which
is what the model is at iteration 0: LoRA starts with B = 0). Each epoch has the same
number of examples, so it has the same number of iterations. The selection in force is
saved in every checkpoint: a run resumed mid-epoch trains on the same examples in the
same order; one resumed at an epoch boundary re-scores with the same weights, so it
selects the same traces.

The metric is app/dmc.py's (pure Python, no tailor state), so tailor and the child rank
with one formula.

Job key ``dmc``: {"pool": pool.jsonl, "placement": placement.jsonl, "top": P,
"rescore_pool": Q | null, "difficulty": "ifd", "constants": {...}, "capability_bounds"}.
pool.jsonl rows: {"id": trace id, "messages": [..., assistant], "quality": q in [0, 1]}.
Event per selection: {"event": "selection", "epoch", "iter", "capability", "relative",
"trace_ids", "values"}.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

from .errors import BadJobError


def _rows(path: str, what: str) -> list[dict]:
    try:
        rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise BadJobError(f"dmc.{what}: cannot read {path} ({e})") from None
    for i, r in enumerate(rows, 1):
        if not isinstance(r.get("messages"), list) or r["messages"][-1].get("role") != "assistant" or "id" not in r:
            raise BadJobError(f"{path}:{i}: expected id and messages ending with the assistant turn")
    return rows


def pool_rows(spec: dict) -> list[dict]:
    """The pool as chat rows, for measuring their lengths before training."""
    return [{"messages": r["messages"]} for r in _rows(spec["pool"], "pool")]


class DynamicSelection:
    def __init__(self, spec: dict, n_keep: int, batch_size: int, resume: dict | None):
        self.pool = _rows(spec["pool"], "pool")
        self.placement = _rows(spec["placement"], "placement")
        if not self.placement:
            raise BadJobError("dmc: the placement test is empty; capability cannot be measured")
        self.top = float(spec["top"])
        self.difficulty = spec.get("difficulty", "ifd")
        self.cfg = SimpleNamespace(**spec["constants"])
        self.bounds = spec.get("capability_bounds")
        rescore = spec.get("rescore_pool")
        ranked = sorted(self.pool, key=lambda r: (-r["quality"], r["id"]))
        self.candidates = ranked[: max(n_keep, math.ceil(len(ranked) * rescore / 100))] if rescore else ranked
        self.n_keep = n_keep
        self.epoch_iters = max(1, n_keep // batch_size)
        self.current = dict(resume) if resume else {"epoch": 0, "ids": None}

    def epoch_of(self, it: int) -> int:
        return it // self.epoch_iters

    def rows_for(self, epoch: int, model, tokenizer, events, it: int, train_rows: list[dict]) -> list[dict]:
        """The chat rows epoch ``epoch`` trains on (selecting them now if needed)."""
        if epoch == 0:
            return train_rows
        if self.current["epoch"] != epoch or self.current["ids"] is None:
            self.current = self.select(model, tokenizer, events, epoch, it)
        keep = set(self.current["ids"])
        return [{"messages": r["messages"]} for r in self.pool if r["id"] in keep]

    def _loglik(self, model, tokenizer, rows: list[dict]) -> dict:
        from .score import score

        items = [
            {"id": r["id"], "messages": r["messages"][:-1], "response": r["messages"][-1]["content"]} for r in rows
        ]
        out = {}
        for res in score(model, tokenizer, items):
            if "error" in res:
                raise BadJobError(f"dmc: trace {res['id']} cannot be scored: {res['error']}")
            out[res["id"]] = res
        return out

    def select(self, model, tokenizer, events, epoch: int, it: int) -> dict:
        from app import dmc

        model.eval()  # no LoRA dropout while scoring
        try:
            placed = self._loglik(model, tokenizer, self.placement)
            scored = self._loglik(model, tokenizer, self.candidates)
        finally:
            model.train()
        absolute = statistics.fmean(r["cond_logprob"] for r in placed.values())
        relative = dmc.relative_capability(absolute, tuple(self.bounds) if self.bounds else None)
        ids = [r["id"] for r in self.candidates]
        q = [r["quality"] for r in self.candidates]
        d = dmc.percentile_ranks([scored[str(i)][self.difficulty] for i in ids])
        kept = dmc.top_n(ids, dmc.values("dmc", q, d, relative, self.cfg), self.n_keep)
        events.emit(
            "selection",
            epoch=epoch,
            iter=it,
            capability=absolute,
            relative=relative,
            trace_ids=list(kept),
            values=list(kept.values()),
        )
        return {"epoch": epoch, "ids": list(kept), "capability": absolute}
