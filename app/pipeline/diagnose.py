"""`tailor diagnose`: the student answers every problem with CoT; one attempt per problem.

Resumable: an attempt's key hashes everything that determines it (problem, model,
adapter, prompt hash, sampling params, seed), so a re-run only generates what is missing.
Results are written as they stream out of the MLX child, in small transactions, so a
crash or Ctrl-C keeps every finished attempt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from app.answers import extract_answer, is_equivalent
from app.blas import find_blas, hint_once
from app.config import Config, thinking_params
from app.events import Events
from app.identity import identity, located
from app.jobs import JobError, MlxJob
from app.pipeline.sample import largest_remainder, pick
from app.prompts import load_prompt
from app.records import Attempt, Problem
from app.store import Batched, Store


@dataclass
class DiagnoseResult:
    total: int
    skipped: int
    generated: int = 0
    failed: int = 0
    correct: int = 0
    status: str = "done"
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        tps = self.stats.get("tokens_per_s")
        return (
            f"{self.generated} new attempts ({self.correct} correct, {self.failed} failed), "
            f"{self.skipped} already done" + (f", {tps:.0f} tok/s" if tps else "")
        )


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def item_seed(base_seed: int, problem_id: str) -> int:
    """A per-problem seed that does not depend on which other problems are in the run."""
    return int(hashlib.sha256(f"{base_seed}:{problem_id}".encode()).hexdigest()[:8], 16)


def attempt_key(
    problem_id: str,
    purpose: str,
    model: str,
    adapter: str | None,
    prompt_hash: str,
    params: dict,
    seed: int,
    tier: str | None = None,
) -> str:
    return _hash([problem_id, purpose, model, adapter, prompt_hash, params, seed, tier])


LIMIT_SEED = 0


def spread_limit(problems: list[Problem], limit: int | None, seed: int = LIMIT_SEED) -> list[Problem]:
    """A seeded stratified subset of ``limit`` problems: every (category, section) gets its
    proportional share by largest remainder, drawn within it by a seeded shuffle — so
    `--limit 32` covers every category in proportion instead of the first ones in some
    order. Deterministic for a given set of problems, and in the store's order."""
    if limit is None or limit >= len(problems):
        return problems
    groups: dict[tuple, list[str]] = {}
    for p in problems:
        groups.setdefault((p.category or "", p.section or ""), []).append(p.id)
    keys = sorted(groups)
    counts = largest_remainder(limit, [len(groups[k]) for k in keys])
    chosen = {pid for k, n in zip(keys, counts) for pid in pick(groups[k], n, seed, f"limit:{k[0]}:{k[1]}")}
    return [p for p in problems if p.id in chosen]


def student_model(cfg: Config, project, say=lambda s: None) -> str:
    """The configured model: a local path relative to the project, a GGUF file or a
    fetchable name (converted once into the cache), else an HF repo id."""
    from app.models import resolve_student

    return resolve_student(cfg.student.model, project, cfg.student.dtype, say)


def answer_fields(ev: dict, problem: Problem, tally) -> dict:
    """The attempt fields a result event determines (the answer checked against the
    reference), counted into `tally` (anything with generated / failed / correct)."""
    text = ev.get("text")
    extracted = extract_answer(text) if text else None
    # Only a failed item has no verdict. An answer cut off by the token budget is wrong
    # even when an earlier \boxed{} matches: the student never finished saying it.
    if ev.get("error"):
        correct = None
    else:
        correct = ev.get("finish_reason") != "length" and is_equivalent(extracted, problem.answer)
    tally.generated += 1
    tally.failed += bool(ev.get("error"))
    tally.correct += bool(correct)
    return {
        "key": ev["id"],
        "problem_id": problem.id,
        "text": text,
        "extracted": extracted,
        "correct": correct,
        "n_tokens": ev.get("n_tokens"),
        "finish_reason": ev.get("finish_reason"),
        "error": ev.get("error"),
    }


def stream_attempts(store: Store, events: Events, job, make, *, announce: bool = False):
    """Run a generate job, turning each result event into an attempt with ``make(event, dtype)``
    and storing them in small transactions as they arrive (a crash keeps what finished)."""
    dtype = None

    def on_event(ev: dict) -> None:
        nonlocal dtype
        kind = ev.get("event")
        if kind == "start":
            dtype = ev.get("dtype")
            if announce:
                events.message(f"student {ev.get('model')} on {ev.get('device')} ({dtype})")
        elif kind == "result":
            pending.add(make(ev, dtype))
            events.advance()

    with Batched(store.insert_attempts) as pending:
        return job.run(on_event)


def diagnose(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    project=".",
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    job_cls=MlxJob,
) -> DiagnoseResult:
    prompt = load_prompt("student_solve")
    model = student_model(cfg, project, events.message)
    adapter = cfg.student.adapter
    # attempts key on names that survive moving the project; the job loads the paths
    name, adapter_name = identity(model, project), identity(adapter, project)
    params = {
        "temperature": cfg.student.temperature,
        "top_p": cfg.student.top_p,
        "max_tokens": cfg.student.max_tokens,
        **thinking_params(cfg),
    }
    problems: list[Problem] = spread_limit(store.problems(split=split), limit)
    todo: dict[str, tuple[Problem, int]] = {}
    for p in problems:
        s = item_seed(seed, p.id)
        todo[attempt_key(p.id, "diagnose", name, adapter_name, prompt.hash, params, s)] = (p, s)
    done = store.attempt_keys(todo)
    result = DiagnoseResult(total=len(problems), skipped=len(done))
    items = [
        {"id": key, "messages": prompt.render(question=p.question), "max_tokens": params["max_tokens"], "seed": s}
        for key, (p, s) in todo.items()
        if key not in done
    ]
    events.start("diagnose", len(problems))
    events.advance(len(done))
    if not items:
        events.done(f"nothing to do: {len(done)} problems already diagnosed")
        return result

    blas = find_blas(cfg.student.blas)
    hint_once(blas, events.message)
    spec = {
        "kind": "generate",
        "model": model,
        "adapter": located(adapter_name, project),  # a configured "./runs/ID/adapters" is the project's
        "dtype": cfg.student.dtype,
        "thinking": cfg.student.thinking,
        "params": {"temperature": params["temperature"], "top_p": params["top_p"], "max_batch": cfg.student.max_batch},
        "items": items,
    }
    job = job_cls(spec, blas=blas)

    def make(ev: dict, dtype: str | None) -> Attempt:
        problem, s = todo[ev["id"]]
        return Attempt(
            **answer_fields(ev, problem, result),
            purpose="diagnose",
            model=name,
            adapter=adapter_name,
            prompt_hash=prompt.hash,
            params=params,
            seed=s,
            dtype=dtype,
            blas=blas,
        )

    outcome = stream_attempts(store, events, job, make, announce=True)
    result.status, result.stats = outcome.status, outcome.stats
    if outcome.status == "error":
        raise JobError(f"diagnose: {outcome.error}")
    events.done(result.summary())
    return result
