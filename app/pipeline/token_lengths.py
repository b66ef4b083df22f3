"""The exported examples' lengths in the student's own tokens, measured at export.

Why at export: an example longer than max_seq_length loses its final answer line in
training, and a response longer than the student's generation budget is cut off at
evaluation and counted wrong. Both are cheaper to see before anything trains. The count
is a `lengths` job (the student's tokenizer only, the same ChatDataset rendering that
training uses), so the numbers are the ones training will see.
"""

from __future__ import annotations

from app.config import Config
from app.errors import TailorError
from app.jobs import MlxJob


def measure(cfg: Config, examples: list[dict], model: str, *, job_cls=MlxJob) -> dict:
    """{longest, longest_response, context, max_seq_length, fitted, over_max_seq_length,
    generation_budget, over_generation_budget, examples} for chat examples ({messages})."""
    # offline: the student was loaded by diagnose already; export never waits on a download
    spec = {
        "kind": "lengths",
        "model": model,
        "thinking": cfg.student.thinking,
        "offline": True,
        "items": [{"id": str(i), "messages": ex["messages"]} for i, ex in enumerate(examples)],
    }
    got: dict[str, dict] = {}
    start: dict = {}

    def on_event(ev: dict) -> None:
        if ev.get("event") == "result":
            got[ev["id"]] = ev
        elif ev.get("event") == "start":
            start.update(ev)

    outcome = job_cls(spec).run(on_event)
    if outcome.status != "done":
        raise TailorError(outcome.error or f"the lengths job ended {outcome.status}")
    failed = [r for r in got.values() if "error" in r]
    if failed:
        raise TailorError(f"example {int(failed[0]['id']) + 1} cannot be tokenised: {failed[0]['error']}")
    tokens = [got[str(i)]["tokens"] for i in range(len(examples))]
    responses = [got[str(i)]["response_tokens"] for i in range(len(examples))]
    context = start.get("context")
    configured = cfg.train.resolved().get("max_seq_length")
    longest = max(tokens)
    max_seq = configured or (min(longest, context) if context else longest)
    budget = cfg.student.max_tokens
    return {
        "examples": len(tokens),
        "longest": longest,
        "longest_response": max(responses),
        "context": context,
        "max_seq_length": max_seq,
        "fitted": configured is None,
        "over_max_seq_length": sum(n > max_seq for n in tokens),
        "generation_budget": budget,
        "over_generation_budget": sum(n > budget for n in responses),
    }


def messages(t: dict) -> list[str]:
    """What export says about a measurement: the sizes, and each limit that examples exceed."""
    fitted = "fitted to the longest" if t["fitted"] else "from [train]"
    out = [
        f"{t['examples']} examples in the student's tokens: longest {t['longest']}, longest response "
        f"{t['longest_response']}; max_seq_length {t['max_seq_length']} ({fitted}"
        + (f", context {t['context']})" if t["context"] else ")")
    ]
    if t["over_max_seq_length"]:
        out.append(
            f"warning: {t['over_max_seq_length']} examples are longer than max_seq_length "
            f"{t['max_seq_length']}; training refuses when more than 1 % are (or set truncate = true)"
        )
    if t["over_generation_budget"]:
        out.append(
            f"warning: {t['over_generation_budget']} responses are longer than the student's generation "
            f"budget ([student] max_tokens = {t['generation_budget']}): a student trained on them is cut "
            f"off at evaluation and counted wrong; set max_tokens = {t['longest_response']}"
        )
    return out


def eval_budget_warning(run, budget: int) -> str | None:
    """A line when `run` was trained on responses its evaluation budget would cut off."""
    from pathlib import Path

    from app.pipeline.export import read_manifest

    train = (run.config.get("data") or {}).get("train")
    manifest = read_manifest(Path(train).parent) if train else None
    longest = ((manifest or {}).get("tokens") or {}).get("longest_response")
    if not longest or longest <= budget:
        return None
    return (
        f"warning: run {run.id} was trained on responses up to {longest} tokens, longer than the "
        f"evaluation budget ([student] max_tokens = {budget}): its long answers are cut off and counted "
        f"wrong; set max_tokens = {longest}"
    )
