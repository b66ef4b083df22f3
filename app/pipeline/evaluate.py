"""`tailor eval`: the base student and its trained adapters on the same problems, same prompt.

Targets: the base model (always) and every selected run's adapter. Problems: a split
(default ``[eval] split``, "test") or every problem imported from one source
(``--benchmark math500``). Each target answers each problem with the student prompt, the
``[eval]`` sampling (temperature 0.6, top-p 0.9) and a per-problem seed, once per tier
(R1 only, or R1–R6 with ``tiers=True``): a tier appends its length instruction to the
prompt and caps the tokens. Seeds: each run at its own training seed and the base at
every one of those seeds, so base and distilled pair up by seed (``[eval] seeds``
overrides: the base at those, a run at its own seed when listed, else the first). Every
answer is an attempt (purpose "eval", run_id, tier); its key hashes all that determines it, so the base is generated once and reused by every configuration
that shares it, and a re-run only generates what is missing.

Then the judge rates each new CoT 1–5 for coherence, completeness and factual
correctness (prompts/cot_quality.md); CoTQS is their mean, stored in ``evals``. An
offline stand-in judge (``rules``, ``steps``) cannot rate a CoT, so with it nothing is
rated (and the report says so).
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from app.blas import find_blas, hint_once
from app.config import Config, thinking_params
from app.errors import TailorError
from app.events import Events
from app.identity import identity, located
from app.jobs import JobError, MlxJob
from app.pipeline import fewshot, token_lengths
from app.pipeline.diagnose import answer_fields, attempt_key, item_seed, spread_limit, stream_attempts, student_model
from app.pipeline.grade import judge_of
from app.prompts import Prompt, load_prompt
from app.records import Attempt, Problem, Run
from app.remote import ChatRequest, open_client
from app.replies import integer_score, parse_reply
from app.store import Batched, Store

PURPOSE = "eval"
RATING_KEYS = ("coherence", "completeness", "factual")
RATING_REPAIR = (
    "Your reply could not be used: {reason}. Reply again with only the JSON object "
    '{{"coherence": 1-5, "completeness": 1-5, "factual": 1-5, "rationale": "..."}}.'
)


class EvalError(TailorError):
    """Nothing to evaluate, or a run that cannot be evaluated with this configuration."""


@dataclass(frozen=True)
class Target:
    """What answers: the base model (run None) or one run's adapter."""

    label: str
    model: str  # what the MLX job loads
    adapter: str | None = None
    run: Run | None = None
    name: str = ""  # what attempts record and key on (app.identity): survives a moved project
    adapter_name: str | None = None

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run else None


@dataclass
class EvalResult:
    problems: int
    targets: list[str]
    tiers: list[str]
    generated: int = 0
    skipped: int = 0
    correct: int = 0
    failed: int = 0
    rated: int = 0
    unrated: int = 0
    rating_skipped: int = 0
    status: str = "done"
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # target -> tier -> accuracy
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (
            f"{self.problems} problems × {len(self.targets)} targets × {len(self.tiers)} tiers: "
            f"{self.generated} answers generated ({self.failed} failed), {self.skipped} already done"
        )
        rate = f"; CoT quality: {self.rated} rated, {self.unrated} unrated, {self.rating_skipped} already rated"
        return head + rate + ("" if self.status == "done" else f"; {self.status}")


# -- what to evaluate -------------------------------------------------------------------


def eval_problems(
    cfg: Config, store: Store, *, split: str | None, benchmark: str | None, limit: int | None = None
) -> list[Problem]:
    if benchmark:
        rows = store.problems(source=benchmark)
        if not rows:
            sources = sorted({p.source for p in store.problems()})
            raise EvalError(
                f"--benchmark {benchmark!r}: no problems imported from that source "
                f"(sources: {', '.join(sources) or 'none'}); import with --source {benchmark}"
            )
    else:
        split = split or cfg.eval.split
        rows = store.problems(split=split)
        if not rows:
            raise EvalError(f"eval: no problems in split {split!r}; run `tailor import` first")
    return spread_limit(rows, limit)


def select_runs(store: Store, *, runs: list[str] | None, sweep: str | None) -> list[Run]:
    """Runs named by id (or unique prefix), a sweep's runs, or every finished run.

    The O'Bryan find-stop run (one long run that only locates the stopping point) is
    left out unless it is named."""
    if runs:
        out = []
        for ref in runs:
            found = store.find_runs(ref)
            if not found:
                raise EvalError(f"--runs: no run {ref!r} (see `tailor runs`)")
            if len(found) > 1:
                raise EvalError(f"--runs: {ref!r} matches {len(found)} runs; give more of the id")
            out.append(found[0])
        return out
    chosen = [r for r in store.runs(status="done") if not r.config.get("find_stop")]
    if sweep is not None:
        chosen = [r for r in chosen if r.sweep == sweep]
        if not chosen:
            raise EvalError(f"--sweep {sweep!r}: no finished runs in that sweep")
    return chosen


def targets_for(cfg: Config, project, selected: list[Run]) -> list[Target]:
    model = student_model(cfg, project)
    name = identity(model, project)
    out = [Target("base", model, name=name)]
    for run in selected:
        trained_on = run.config.get("model")
        if trained_on != name:
            raise EvalError(
                f"run {run.id}: its adapter was trained on {trained_on!r} but the configured "
                f"student is {name!r}; set [student] model to the run's base model"
            )
        if run.status != "done" or not run.adapter_path:
            raise EvalError(f"run {run.id}: status {run.status}, no adapter to evaluate")
        adapter = located(run.adapter_path, project)
        if not (Path(adapter) / "adapters.safetensors").exists():
            raise EvalError(f"run {run.id}: adapter {adapter}/adapters.safetensors is missing")
        label = f"{run.configuration} seed {run.seed}"
        out.append(Target(label, model, adapter, run, name=name, adapter_name=run.adapter_path))
    return out


def target_seeds(cfg: Config, target: Target, runs: list[Run]) -> list[int]:
    """The base at every training seed of the runs evaluated with it (so every comparison
    pairs by seed), each run at its own; `[eval] seeds` overrides."""
    fixed = cfg.eval.seeds
    if target.run is None:
        if fixed:
            return list(fixed)
        return sorted({r.seed for r in runs if r.seed is not None}) or [0]
    own = target.run.seed if target.run.seed is not None else 0
    if not fixed or own in fixed:
        return [own]
    return [fixed[0]]


def tier_params(cfg: Config, tier: str, eval_seed: int) -> dict:
    t = cfg.eval.tiers[tier]
    return {
        "temperature": cfg.eval.temperature,
        "top_p": cfg.eval.top_p,
        # No tier may allow more than the unrestricted R1, the student's own max_tokens.
        "max_tokens": min(t.max_tokens or cfg.student.max_tokens, cfg.student.max_tokens),
        "instruction": t.instruction,
        "eval_seed": eval_seed,
        **thinking_params(cfg),
    }


def tier_messages(prompt: Prompt, question: str, instruction: str, shots: list[Problem] | None = None) -> list[dict]:
    """The student prompt (after the worked examples, with ``shots``) with the tier's length
    instruction appended to the last user turn."""
    messages = prompt.render(question=question) if shots is None else fewshot.shot_messages(prompt, question, shots)
    if instruction:
        last = messages[-1]
        messages[-1] = {**last, "content": f"{last['content'].rstrip()}\n\n{instruction}"}
    return messages


# -- the stage --------------------------------------------------------------------------


def evaluate(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    project=".",
    runs: list[str] | None = None,
    sweep: str | None = None,
    split: str | None = None,
    benchmark: str | None = None,
    tiers: bool = False,
    limit: int | None = None,
    shots: int | None = None,
    teachers: bool = False,
    job_cls=MlxJob,
    transport=None,
    retry=None,
) -> EvalResult:
    """``shots`` / ``teachers``: the capacity-gap evaluation (app/pipeline/fewshot.py) — the
    same N-shot prompt for the student, its adapters and (``teachers``) the remote teachers,
    stored as purpose "fewshot"; no CoT rating."""
    gap_mode = shots is not None or teachers
    if gap_mode and tiers:
        raise EvalError("--shots / --teachers evaluate the main tier only: drop --tiers")
    if shots is not None and shots < 0:
        raise EvalError(f"--shots {shots}: give 0 or more worked examples")
    shown = fewshot.pick_shots(store, shots or 0) if gap_mode else None
    problems = eval_problems(cfg, store, split=split, benchmark=benchmark, limit=limit)
    if shown:
        shot_ids = {p.id for p in shown}
        if any(p.id in shot_ids for p in problems):
            events.message(
                f"{len(shot_ids & {p.id for p in problems})} worked examples are left out of the problems evaluated"
            )
            problems = [p for p in problems if p.id not in shot_ids]
    targets = targets_for(cfg, project, select_runs(store, runs=runs, sweep=sweep))
    tier_names = list(cfg.eval.tiers) if tiers else list(cfg.eval.tiers)[:1]
    prompt = load_prompt("student_solve")
    result = EvalResult(problems=len(problems), targets=[t.label for t in targets], tiers=tier_names)

    trained = [t.run for t in targets if t.run is not None]
    plans = [_plan(cfg, prompt, t, problems, tier_names, target_seeds(cfg, t, trained), shown) for t in targets]
    done = store.attempt_keys(k for plan in plans for k in plan)
    total = sum(len(plan) for plan in plans)
    result.skipped = len(done)
    events.start("eval", total)
    events.advance(len(done))
    events.message(
        f"{len(problems)} problems, {len(targets)} targets (base + {len(targets) - 1} adapters), "
        f"tiers {', '.join(tier_names)}; {total - len(done)} answers to generate"
    )
    for run in trained:
        if line := token_lengths.eval_budget_warning(run, cfg.student.max_tokens):
            events.message(line)
    blas = find_blas(cfg.student.blas)
    hint_once(blas, events.message)
    for target, plan in zip(targets, plans):
        todo = {k: v for k, v in plan.items() if k not in done}
        if todo:
            status = _generate(cfg, store, events, target, todo, prompt, blas, job_cls, result, shown)
            if status != "done":
                result.status = status
                break

    got = store.attempts_by_key(k for plan in plans for k in plan)
    if result.status == "done" and not gap_mode:
        _rate(cfg, store, events, got, {p.id: p for p in problems}, tier_names, result, transport, retry)
    _fill_accuracy(got, targets, plans, result)
    if teachers and result.status == "done":
        _ask_teachers(cfg, store, events, prompt, problems, tier_names[0], shown, result, transport, retry)
    events.done(result.summary())
    return result


def _shot_params(shots: list[Problem] | None) -> dict:
    return {} if shots is None else {"shots": len(shots), "shots_hash": fewshot.shots_hash(shots)}


def _plan(
    cfg: Config,
    prompt: Prompt,
    target: Target,
    problems: list[Problem],
    tier_names: list[str],
    seeds: list[int],
    shots: list[Problem] | None = None,
) -> dict[str, tuple]:
    """{attempt key: (problem, tier, params, item seed)} of everything this target answers."""
    plan = {}
    purpose = PURPOSE if shots is None else fewshot.PURPOSE
    for tier in tier_names:
        for s in seeds:
            params = {**tier_params(cfg, tier, s), **_shot_params(shots)}
            for p in problems:
                seed = item_seed(s, p.id)
                key = attempt_key(p.id, purpose, target.name, target.adapter_name, prompt.hash, params, seed, tier)
                plan[key] = (p, tier, params, seed)
    return plan


def _generate(
    cfg: Config,
    store: Store,
    events: Events,
    target: Target,
    todo: dict,
    prompt: Prompt,
    blas: str | None,
    job_cls,
    result: EvalResult,
    shots: list[Problem] | None = None,
) -> str:
    items = [
        {
            "id": key,
            "messages": tier_messages(prompt, p.question, params["instruction"], shots),
            "max_tokens": params["max_tokens"],
            "seed": seed,
        }
        for key, (p, _tier, params, seed) in todo.items()
    ]
    spec = {
        "kind": "generate",
        "model": target.model,
        "adapter": target.adapter,
        "dtype": cfg.student.dtype,
        "thinking": cfg.student.thinking,
        "params": {"temperature": cfg.eval.temperature, "top_p": cfg.eval.top_p, "max_batch": cfg.student.max_batch},
        "items": items,
    }
    events.message(f"eval {target.label}: {len(items)} answers")
    job = job_cls(spec, blas=blas)

    def make(ev: dict, dtype: str | None) -> Attempt:
        problem, tier, params, seed = todo[ev["id"]]
        return Attempt(
            **answer_fields(ev, problem, result),
            purpose=PURPOSE if shots is None else fewshot.PURPOSE,
            model=target.name,
            adapter=target.adapter_name,
            run_id=target.run_id,
            prompt_hash=prompt.hash,
            params=params,
            seed=seed,
            tier=tier,
            dtype=dtype,
            blas=blas,
        )

    outcome = stream_attempts(store, events, job, make)
    if outcome.status == "error":
        raise JobError(f"eval {target.label}: {outcome.error}")
    return outcome.status


def _ask_teachers(
    cfg: Config,
    store: Store,
    events: Events,
    prompt: Prompt,
    problems: list[Problem],
    tier: str,
    shots: list[Problem] | None,
    result: EvalResult,
    transport,
    retry,
) -> None:
    """The remote teachers answer the same problems with the same messages, once each."""
    teachers, notes = fewshot.remote_teachers(cfg)
    for note in notes:
        result.notes.append(note)
        events.message(note)
    instruction = cfg.eval.tiers[tier].instruction
    plan = {}
    for t in teachers:
        params = {
            "temperature": cfg.eval.temperature,
            "top_p": cfg.eval.top_p,
            "instruction": instruction,
            **_shot_params(shots),
            "teacher": t.role,
            "provider": t.name,
            "prompt_hash": prompt.hash,
        }
        for p in problems:
            key = attempt_key(p.id, fewshot.PURPOSE, t.model, None, prompt.hash, params, 0, tier)
            plan[key] = (t, p, tier_messages(prompt, p.question, instruction, shots), params)

    def make(teacher, problem: Problem, params: dict, key: str, res) -> Attempt:
        ev = {
            "id": key,
            "text": res.content,
            "finish_reason": res.finish_reason,
            "error": res.error,
            "n_tokens": res.completion_tokens,
        }
        return Attempt(
            **answer_fields(ev, problem, result),
            purpose=fewshot.PURPOSE,
            model=teacher.model,
            prompt_hash=prompt.hash,
            params=params,
            seed=0,
            tier=tier,
        )

    fewshot.ask_teachers(cfg, store, events, plan, make, transport=transport, retry=retry)
    got = store.attempts_by_key(plan)
    for t in teachers:
        marks = [bool(got[k].correct) for k, (who, *_rest) in plan.items() if who is t and k in got]
        if marks:
            label = f"teacher {t.name} {t.model}"
            result.targets.append(label)
            result.accuracy[label] = {tier: statistics.fmean(marks)}


# -- CoT quality --------------------------------------------------------------------------


class Rating(BaseModel):
    model_config = ConfigDict(extra="ignore")
    coherence: int
    completeness: int
    factual: int

    @field_validator("coherence", "completeness", "factual", mode="before")
    @classmethod
    def _score(cls, v):
        return integer_score(v, 1, 5)

    @property
    def cotqs(self) -> float:
        return (self.coherence + self.completeness + self.factual) / 3


def parse_rating(text: str | None) -> Rating:
    """The judge's CoT-quality reply; raises ValueError with a one-line reason."""
    return parse_reply(text, Rating, "coherence")


def _rate(
    cfg: Config,
    store: Store,
    events: Events,
    got: dict[str, Attempt],
    problems: dict[str, Problem],
    tier_names: list[str],
    result: EvalResult,
    transport,
    retry,
) -> None:
    mode = cfg.eval.cot_quality
    if mode == "none":
        return
    if "rate" not in cfg.judge.can:
        result.notes.append(
            f"CoT quality not rated: the {cfg.judge.provider} judge is an offline stand-in "
            f"({cfg.judge.stand_in}) that does not rate reasoning"
        )
        events.message(result.notes[-1])
        return
    rated_tiers = set(tier_names) if mode == "all" else {list(cfg.eval.tiers)[0]}
    prompt = load_prompt("cot_quality")
    judge = judge_of(cfg, prompt.hash)
    attempts = [a for a in got.values() if a.tier in rated_tiers and not a.error]
    have = store.eval_ratings(a.id for a in attempts)
    todo = []
    for a in attempts:
        old = have.get(a.id)
        if old and (old["provider"], old["model"], old["prompt_hash"]) == (
            judge.provider,
            judge.model,
            judge.prompt_hash,
        ):
            result.rating_skipped += 1
        else:
            todo.append(a)
    if not todo:
        return
    events.start("cot quality", len(todo))
    asyncio.run(_rate_remote(cfg, store, events, prompt, judge.model, todo, problems, result, transport, retry))


async def _rate_remote(
    cfg,
    store,
    events,
    prompt: Prompt,
    model: str,
    todo: list[Attempt],
    problems: dict[str, Problem],
    result: EvalResult,
    transport,
    retry,
) -> None:
    """A sliding window over every rating; each is stored as it arrives, a few at a time."""

    def write(batch: list[dict]) -> None:
        store.put_eval_ratings(batch)
        result.rated += len(batch)

    async with open_client(cfg, "judge", store, transport=transport, retry=retry) as client:
        reqs = [
            ChatRequest(
                messages=prompt.render(
                    question=problems[a.problem_id].question,
                    reference_answer=problems[a.problem_id].answer,
                    cot=(a.text or "").strip() or "(empty response)",
                ),
                stage="cot_quality",
                prompt_hash=prompt.hash,
                json_mode=True,
            )
            for a in todo
        ]

        async def then(i: int, res) -> None:
            got = await client.parse_or_repair(reqs[i], res, parse_rating, RATING_REPAIR)
            if got.error:
                result.unrated += 1
            else:
                rows.add(_row(todo[i], got.value, cfg, model, prompt, got.result.key))

        with Batched(write) as rows:
            await client.chat_many(reqs, events, then=then)


def _row(a: Attempt, r: Rating, cfg: Config, model: str, prompt: Prompt, key: str | None) -> dict:
    return {
        "attempt_id": a.id,
        "coherence": r.coherence,
        "completeness": r.completeness,
        "factual": r.factual,
        "cotqs": r.cotqs,
        "provider": cfg.judge.provider,
        "model": model,
        "prompt_hash": prompt.hash,
        "api_call_key": key,
    }


def _fill_accuracy(got: dict[str, Attempt], targets: list[Target], plans: list[dict], result: EvalResult) -> None:
    for target, plan in zip(targets, plans):
        for tier in result.tiers:
            marks = [bool(got[k].correct) for k, (_, t, _, _) in plan.items() if t == tier and k in got]
            if marks:
                result.accuracy.setdefault(target.label, {})[tier] = statistics.fmean(marks)


def format_eval(result: EvalResult) -> str:
    lines = [result.summary()]
    for label, by_tier in result.accuracy.items():
        cells = ", ".join(f"{t} {100 * acc:.1f} %" for t, acc in by_tier.items())
        lines.append(f"  {label}: {cells}")
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)
