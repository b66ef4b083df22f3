"""`tailor score --dataset NAME [--adapter RUN]`: what data-model compatibility needs to
know about a dataset's verified traces, for one student state (the base, or base + a
run's adapter).

* Quality Q per trace, from the judge (prompts/quality.md, 1-10, normalised to [0, 1]),
  through the remote client and its cache. The offline judges have no model to ask: their
  stand-in is the share of checks a trace passes — its answer was verified, it was not cut
  off, its length is within [dmc] min_words..max_words, and (``steps`` only) the share of
  the reference solution's steps it reaches. Reports say it is a stand-in.
* Relative difficulty D per trace, for this state: PPL of the response alone, CPPL given
  the question, IFD = CPPL / PPL (mlx_backend/score.py), each trace scored exactly as
  export renders it for training.
* Capability C of this state: the mean log-likelihood per token, given the question, of
  the placement test — up to [dmc] placement_size traces drawn once from the top
  [dmc] placement_top % by quality of the rated verified traces, frozen, and never
  exported for training.

Everything is stored keyed by trace and state (model, adapter, prompt hash) or by judge,
so a re-run scores only what is missing.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, field_validator

from app import dmc
from app.config import Config
from app.errors import TailorError
from app.events import Events
from app.identity import identity, located
from app.jobs import JobError, MlxJob
from app.pipeline.diagnose import student_model
from app.pipeline.grade import judge_of
from app.pipeline.teach import configured_teachers, load_dataset, plan
from app.prompts import load_prompt
from app.records import Problem, Trace
from app.remote import ChatRequest, open_client
from app.replies import integer_score, parse_reply
from app.store import Batched, Store

QUALITY_REPAIR = (
    "Your reply could not be used: {reason}. Reply again with only the JSON object "
    '{{"score": 1-10, "rationale": "..."}}.'
)


class ScoreError(TailorError):
    """Nothing to score, or a state that cannot be scored."""


@dataclass
class ScoreResult:
    dataset: str
    state: str
    pool: int = 0
    quality_by: str = ""
    rated: int = 0
    unrated: int = 0
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    placement: int = 0
    placement_drawn: bool = False
    capability: float | None = None  # mean log-likelihood per token of the placement traces
    relative: float | None = None  # in [0, 1]
    status: str = "done"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        cap = "capability not measured (no placement test)"
        if self.capability is not None:
            cap = f"capability {self.capability:.3f} nats/token (relative {self.relative:.3f})"
        return (
            f"{self.pool} traces of {self.dataset}: quality by {self.quality_by} ({self.rated} new"
            + (f", {self.unrated} unreadable" if self.unrated else "")
            + f"); scored for {self.state}: {self.scored} new, {self.skipped} already, {self.failed} failed; "
            f"placement test {self.placement} traces{' (drawn now)' if self.placement_drawn else ''}; {cap}"
        )


@dataclass(frozen=True)
class Item:
    """One verified trace as DMC sees it."""

    trace: Trace
    problem: Problem
    keeps_reasoning: bool


# -- the pool and the student state -----------------------------------------------


def pool(cfg: Config, store: Store, events: Events, dataset: str, only: str | None = None) -> list[Item]:
    """The traces export would choose for a dataset (one verified trace per slot)."""
    from app.pipeline.export import choose_traces

    ds = load_dataset(store, dataset)
    slots = plan(store, ds, configured_teachers(cfg), only)
    chosen = choose_traces(store, events, ds, slots, only)
    return [Item(t, slots[i].problem, slots[i].teacher.keeps_reasoning) for i, t in sorted(chosen.items())]


@dataclass(frozen=True)
class State:
    """The student whose likelihoods are measured: the base model, or base + an adapter."""

    model: str  # what the MLX job loads
    adapter: str | None = None
    run_id: str | None = None
    name: str = ""  # the model's recorded name (app.identity), which scores key on

    @property
    def key(self) -> str:
        return (self.name or self.model) + (f"+run:{self.run_id}" if self.run_id else "")

    @property
    def label(self) -> str:
        return f"run {self.run_id}" if self.run_id else "the base student"


def state_of(cfg: Config, store: Store, project, adapter: str | None) -> State:
    model = student_model(cfg, project)
    name = identity(model, project)
    if adapter is None:
        return State(model, name=name)
    found = store.find_runs(adapter)
    if len(found) != 1:
        raise ScoreError(
            f"--adapter {adapter!r}: {'no run' if not found else f'{len(found)} runs'} match (see `tailor runs`)"
        )
    run = found[0]
    if run.status != "done" or not run.adapter_path:
        raise ScoreError(f"--adapter {run.id}: status {run.status}, no adapter")
    if run.config.get("model") != name:
        raise ScoreError(f"--adapter {run.id}: trained on {run.config.get('model')!r}, not the student {name!r}")
    return State(model, located(run.adapter_path, project), run.id, name)


# -- quality ------------------------------------------------------------------------


class QualityReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    score: int
    rationale: str = ""

    @field_validator("score", mode="before")
    @classmethod
    def _score(cls, v):
        return integer_score(v, 1, 10)


def parse_quality(text: str | None) -> QualityReply:
    return parse_reply(text, QualityReply, "score")


def training_text(item: Item, student) -> str:
    """The trace as the student is trained on it (export's rendering): what quality rates."""
    from app.pipeline.export import example_messages

    return example_messages(student, item.problem, item.trace, item.keeps_reasoning)[-1]["content"]


def stand_in_quality(cfg: Config, item: Item) -> tuple[float, str]:
    """(q, rationale) for an offline judge: the share of its checks the trace passes."""
    text = item.trace.text or ""
    words = len(text.split())
    checks = {
        "answer verified": bool(item.trace.verified),
        "not cut off": item.trace.finish_reason != "length",
        f"{cfg.dmc.min_words}-{cfg.dmc.max_words} words": cfg.dmc.min_words <= words <= cfg.dmc.max_words,
    }
    extras = cfg.judge.quality_extras(item.problem, text)
    q = (sum(checks.values()) + sum(extras.values())) / (len(checks) + len(extras))
    why = ", ".join(
        [f"{k} {'yes' if v else 'no'}" for k, v in checks.items()] + [f"{k} {v:.2f}" for k, v in extras.items()]
    )
    return q, f"{cfg.judge.provider} stand-in: {why}"


def quality_key(cfg: Config) -> tuple[str, str, str]:
    """Whose quality ratings are in force: (provider, model, prompt hash) of the judge, or
    for a stand-in its checks' settings (a change re-rates)."""
    judge = judge_of(cfg, load_prompt("quality").hash)
    if judge.stand_in:
        return judge.provider, judge.model, f"stand-in words {cfg.dmc.min_words}-{cfg.dmc.max_words}"
    return judge.provider, judge.model, judge.prompt_hash


def rate(cfg: Config, store: Store, events: Events, items: list[Item], result: ScoreResult, transport, retry) -> tuple:
    """Each trace's quality by the configured judge; returns `quality_key`."""
    prompt = load_prompt("quality")
    judge = judge_of(cfg, prompt.hash)
    key = quality_key(cfg)
    result.quality_by = (
        f"the {judge.provider} judge's stand-in"
        if judge.stand_in
        else f"{judge.provider} {judge.model} (prompt {prompt.hash})"
    )
    have = store.trace_quality(*key)
    todo = [it for it in items if it.trace.id not in have]
    if not todo:
        return key
    events.start("quality", len(todo))

    def row(it: Item, q: float, raw: float, why: str, api_key: str | None = None) -> dict:
        return dict(
            trace_id=it.trace.id,
            provider=key[0],
            model=key[1],
            prompt_hash=key[2],
            raw=raw,
            quality=q,
            rationale=why,
            api_call_key=api_key,
        )

    if "rate" not in cfg.judge.can:
        rows = []
        for it in todo:
            q, why = stand_in_quality(cfg, it)
            rows.append(row(it, q, q, why))
        store.put_trace_quality(rows)
        result.rated += len(rows)
        events.advance(len(rows))
        return key

    def write(batch: list[dict]) -> None:
        store.put_trace_quality(batch)
        result.rated += len(batch)

    student = load_prompt("student_solve")

    async def ask() -> None:
        async with open_client(cfg, "judge", store, transport=transport, retry=retry) as client:
            reqs = [
                ChatRequest(
                    messages=prompt.render(
                        question=it.problem.question,
                        reference_answer=it.problem.answer,
                        solution=training_text(it, student),
                    ),
                    stage="quality",
                    prompt_hash=prompt.hash,
                    json_mode=True,
                )
                for it in todo
            ]

            async def then(i: int, res) -> None:
                got = await client.parse_or_repair(reqs[i], res, parse_quality, QUALITY_REPAIR)
                if got.error:
                    result.unrated += 1
                else:
                    r = got.value
                    rows.add(row(todo[i], (r.score - 1) / 9, r.score, r.rationale, got.result.key))

            with Batched(write) as rows:
                await client.chat_many(reqs, events, then=then)

    asyncio.run(ask())
    return key


# -- the placement test -------------------------------------------------------------


def ensure_placement(cfg: Config, store: Store, events: Events, judge_key: tuple, result: ScoreResult) -> dict:
    """The placement test, drawn now if it does not exist: from the top placement_top %
    by quality of every rated verified trace, placement_size of them at random (seeded)."""
    have = store.placement()
    if have:
        return have
    rated = store.trace_quality(*judge_key)
    traces = {t.id: t for t in store.traces() if t.verified and t.id in rated}
    if not traces:
        return {}
    ranked = sorted(traces, key=lambda t: (-rated[t]["quality"], t))
    top = ranked[: max(1, math.ceil(len(ranked) * cfg.dmc.placement_top / 100))]
    drawn = sorted(random.Random(cfg.dmc.seed).sample(top, min(cfg.dmc.placement_size, len(top))))
    store.set_placement(
        {"trace_id": t, "problem_id": traces[t].problem_id, "quality": rated[t]["quality"]} for t in drawn
    )
    result.placement_drawn = True
    if len(drawn) < cfg.dmc.placement_size:
        result.notes.append(
            f"placement test: {len(drawn)} traces, fewer than placement_size {cfg.dmc.placement_size} "
            f"(the top {cfg.dmc.placement_top:g} % of {len(ranked)} rated traces); capability is noisier"
        )
    events.message(
        f"placement test drawn: {len(drawn)} traces from the top {cfg.dmc.placement_top:g} % by quality; "
        "their problems are never exported for training"
    )
    return store.placement()


def placement_items(cfg: Config, store: Store, placement: dict) -> list[Item]:
    teachers = configured_teachers(cfg)
    traces = {t.id: t for t in store.traces({r["problem_id"] for r in placement.values()}) if t.id in placement}
    problems = {p.id: p for p in store.problems_by_id({t.problem_id for t in traces.values()})}
    return [Item(t, problems[t.problem_id], teachers[t.role][0].keeps_reasoning) for _, t in sorted(traces.items())]


# -- likelihoods and capability --------------------------------------------------------


def measure(cfg: Config, store: Store, events: Events, items: list[Item], state: State, result: ScoreResult, job_cls):
    """PPL, CPPL and IFD of every item not yet scored for this state (a `score` job)."""
    from app.pipeline.export import example_messages

    student = load_prompt("student_solve")
    have = store.trace_scores(state.key, student.hash, (it.trace.id for it in items))
    todo = {it.trace.id: it for it in items if it.trace.id not in have}
    result.skipped = len(items) - len(todo)
    if not todo:
        return
    specs = []
    for tid, it in todo.items():
        messages = example_messages(student, it.problem, it.trace, it.keeps_reasoning)
        specs.append({"id": str(tid), "messages": messages[:-1], "response": messages[-1]["content"]})
    from app.blas import find_blas

    spec = {
        "kind": "score",
        "model": state.model,
        "adapter": state.adapter,
        "dtype": cfg.student.dtype,
        "thinking": cfg.student.thinking,
        "params": {"max_batch": cfg.student.max_batch},
        "items": specs,
    }
    events.start(f"score ({state.label})", len(specs))
    keys = ("cond_logprob", "uncond_logprob", "ppl", "cppl", "ifd", "n_tokens")

    def on_event(ev: dict) -> None:
        if ev.get("event") != "result":
            return
        events.advance()
        if "error" in ev:
            result.failed += 1
            events.message(f"trace {ev['id']}: {ev['error']}")
            return
        rows.add(
            {"trace_id": int(ev["id"]), "state": state.key, "prompt_hash": student.hash, **{k: ev[k] for k in keys}}
        )
        result.scored += 1

    with Batched(store.put_trace_scores) as rows:
        outcome = job_cls(spec, blas=find_blas(cfg.student.blas)).run(on_event)
    result.status = "cancelled" if outcome.status == "cancelled" else result.status
    if outcome.status == "error":
        raise JobError(f"score: {outcome.error}")


def _absolute(store: Store, state_key: str) -> tuple[float, int] | None:
    """(mean log-likelihood per token, traces) of a state on the placement test."""
    placement = store.placement()
    scores = store.trace_scores(state_key, load_prompt("student_solve").hash, placement)
    if not placement or len(scores) < len(placement):
        return None
    return statistics.fmean(r["cond_logprob"] for r in scores.values()), len(scores)


def capability_bounds(cfg: Config, store: Store) -> tuple[float, float] | None:
    """The linear map's bounds ([dmc] capability_bounds, or the measured states' range with
    capability_scale = "states"); None: exp(C). Raises ScoreError while "states" is undefined."""
    if cfg.dmc.capability_bounds is not None:
        return tuple(cfg.dmc.capability_bounds)
    if cfg.dmc.capability_scale == "likelihood":
        return None
    measured = [got[0] for s in store.score_states(load_prompt("student_solve").hash) if (got := _absolute(store, s))]
    if len(set(measured)) < 2:
        raise ScoreError(
            f'capability_scale = "states": {len(measured)} student state(s) measured, so the range is undefined; '
            "score another state (`tailor score --adapter RUN`) or set [dmc] capability_bounds"
        )
    return min(measured), max(measured)


def capability(cfg: Config, store: Store, state_key: str) -> tuple[float, float, int] | None:
    """(absolute, relative, traces) of a state on the placement test, None when unmeasured."""
    got = _absolute(store, state_key)
    if got is None:
        return None
    return got[0], dmc.relative_capability(got[0], capability_bounds(cfg, store)), got[1]


def capabilities(cfg: Config, store: Store) -> list[dict]:
    """Every state measured on the placement test, with its capability."""
    out = []
    for state in store.score_states(load_prompt("student_solve").hash):
        got = capability(cfg, store, state)
        if got is not None:
            out.append({"state": state, "absolute": got[0], "relative": got[1], "traces": got[2]})
    return out


def score(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    dataset: str,
    project=".",
    adapter: str | None = None,
    only: str | None = None,
    job_cls=MlxJob,
    transport=None,
    retry=None,
) -> ScoreResult:
    state = state_of(cfg, store, project, adapter)
    items = pool(cfg, store, events, dataset, only)
    result = ScoreResult(dataset, state.label, pool=len(items))
    judge_key = rate(cfg, store, events, items, result, transport, retry)
    placement = ensure_placement(cfg, store, events, judge_key, result)
    result.placement = len(placement)
    mine = {it.trace.id for it in items}
    wanted = items + [it for it in placement_items(cfg, store, placement) if it.trace.id not in mine]
    measure(cfg, store, events, wanted, state, result, job_cls)
    got = capability(cfg, store, state.key)
    if got is not None:
        result.capability, result.relative, _ = got
    for note in result.notes:
        events.message(note)
    events.done(result.summary())
    return result
