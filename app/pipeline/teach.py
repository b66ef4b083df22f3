"""`tailor teach`: teachers write CoT for a dataset's problems.

Easy and Medium problems (route "short") go to teacher A with prompts/teach_short.md
(key steps only); Hard problems (route "long") go to teacher B with prompts/teach_long.md
(didactic: concepts, a justification for every step, examples). ``only="short"`` /
``only="long"`` are the paper's two ablations: every item goes to that style's teachers
with that style's prompt.

Every teacher of a style answers every problem routed to that style; all of their traces
are kept (no cross-teacher filtering: `tailor export --intersect` is that ablation).
The config has one teacher per style today (``[teachers.short]``, ``[teachers.long]``);
the functions here take ``{"short": [Teacher, ...], "long": [...]}`` so several per style
need no change below the config.

Resumable: teacher calls go through the request cache (api_calls), so a re-run pays for
nothing it already has, and a trace whose content did not change keeps its verification.
Traces are stored in small transactions as they arrive.

The shared vocabulary of teach / verify / export lives here: `Teacher`, `Slot` (one
problem for one teacher), `plan`, `load_dataset`, `fetch_traces`.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.config import CONFIG_NAME, Config
from app.errors import ConfigError, TailorError
from app.events import Events
from app.prompts import Prompt, load_prompt
from app.records import Dataset, Problem, Trace
from app.remote import ChatRequest, ChatResult, RemoteClient, RetryPolicy, open_client
from app.store import Batched, Store

STYLES = ("short", "long")


class DatasetError(TailorError):
    """Unknown or empty dataset, or a dataset with nothing to work on."""


# -- teachers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Teacher:
    """One teacher: a provider config and the CoT style it is asked for."""

    style: str  # "short" | "long": the prompt it gets and the trace role
    provider: Any  # ReferenceProvider | OpenAIProvider | MlxServerProvider
    role: str = ""  # the config key it came from (teachers.short); api_calls.role

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"teacher style must be short or long, not {self.style!r}")
        if not self.role:
            object.__setattr__(self, "role", f"teachers.{self.style}")

    @property
    def name(self) -> str:
        """The provider name stored with its traces: reference | openai | mlx-server."""
        return self.provider.provider

    @property
    def offline(self) -> bool:
        """The reference stand-in: it makes no call and is given no prompt."""
        return self.provider.offline

    @property
    def model(self) -> str:
        """The model stored with its traces (an mlx-server adapter is part of it)."""
        if self.offline:
            return self.name
        adapter = getattr(self.provider, "adapter", None)
        return self.provider.model + (f"+{adapter}" if adapter else "")

    @property
    def key(self) -> tuple[str, str, str]:
        """What tells teachers apart in the store: (style, provider, model)."""
        return (self.style, self.name, self.model)

    @property
    def label(self) -> str:
        return self.name if self.offline else f"{self.name}/{self.model}"

    @property
    def keeps_reasoning(self) -> bool:
        """Whether export puts this teacher's reasoning before its solution (see keep_reasoning)."""
        mode = getattr(self.provider, "keep_reasoning", None) or ("as-cot" if self.style == "long" else "drop")
        return mode == "as-cot"

    @property
    def prompt(self) -> Prompt | None:
        """The teach prompt; None for the reference teacher (it is given no prompt)."""
        return None if self.offline else load_prompt(f"teach_{self.style}")

    @property
    def prompt_hash(self) -> str:
        p = self.prompt
        return p.hash if p is not None else ""

    def owns(self, trace: Trace) -> bool:
        """Whether a stored trace was written by this teacher with the current prompt."""
        return (
            trace.role == self.style
            and trace.provider == self.name
            and trace.model == self.model
            and trace.prompt_hash == self.prompt_hash
        )


def configured_teachers(cfg: Config) -> dict[str, list[Teacher]]:
    """The teachers of tailor.toml, per style (one each today)."""
    return {
        "short": [Teacher("short", cfg.teachers.short, "teachers.short")],
        "long": [Teacher("long", cfg.teachers.long, "teachers.long")],
    }


class _TeacherSource:
    """The two things `open_client` asks of a config, for one teacher's provider."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher

    def role(self, name: str) -> Any:
        return self.teacher.provider

    def api_key(self, name: str) -> str | None:
        env = getattr(self.teacher.provider, "api_key_env", None)
        if not env:
            return None
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{CONFIG_NAME}: {name}.api_key_env: environment variable {env} is not set")
        return value


@asynccontextmanager
async def open_teacher(
    teacher: Teacher,
    store: Store,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[RemoteClient]:
    """A client for an openai / mlx-server teacher (starts mlx_lm.server when needed)."""
    async with open_client(_TeacherSource(teacher), teacher.role, store, transport=transport, retry=retry) as client:
        yield client


# -- datasets and the plan ---------------------------------------------------------


def load_dataset(store: Store, name: str) -> Dataset:
    ds = store.get_dataset(name)
    if ds is None:
        known = store.dataset_names()
        hint = f"known: {', '.join(known)}" if known else "no datasets yet: run `tailor sample` first"
        raise DatasetError(f"unknown dataset {name!r} ({hint})")
    if not ds.items:
        raise DatasetError(f"dataset {name!r} has no items; nothing to do")
    return ds


def check_only(only: str | None) -> None:
    if only is not None and only not in STYLES:
        raise DatasetError(f"--only must be short or long, not {only!r}")


@dataclass(frozen=True)
class Slot:
    """One problem for one teacher: the unit that is taught, verified and exported."""

    problem: Problem
    grade: str | None
    route: str  # the item's route in the dataset
    teacher: Teacher

    @property
    def style(self) -> str:
        return self.teacher.style


def plan(store: Store, dataset: Dataset, teachers: dict[str, Sequence[Teacher]], only: str | None = None) -> list[Slot]:
    """Every (problem, teacher) pair a teach run covers: an item's style is its route, or
    ``only``; each teacher of that style answers it."""
    check_only(only)
    slots: list[Slot] = []
    for item in dataset.items:
        style = only or item.route
        team = list(teachers.get(style) or [])
        if not team:
            raise ConfigError(f"{CONFIG_NAME}: no teacher configured for {style} CoT ([teachers.{style}])")
        problem = store.get_problem(item.problem_id)
        if problem is None:  # impossible through the store's foreign keys; be clear anyway
            raise DatasetError(f"dataset {dataset.name!r}: problem {item.problem_id} is not in the store")
        for teacher in team:
            slots.append(Slot(problem, item.grade, item.route, teacher))
    return slots


def teachers_in(slots: Sequence[Slot]) -> list[Teacher]:
    """The distinct teachers of a plan, in plan order."""
    seen: dict[tuple, Teacher] = {}
    for s in slots:
        seen.setdefault(s.teacher.key, s.teacher)
    return list(seen.values())


def slot_traces(store: Store, slots: Sequence[Slot]) -> dict[int, dict[int, Trace]]:
    """Each slot's stored traces (by its index in ``slots``), keyed by variant."""
    wanted = {s.problem.id for s in slots}
    by_problem: dict[str, list[Trace]] = {}
    for t in store.traces(wanted):
        by_problem.setdefault(t.problem_id, []).append(t)
    out: dict[int, dict[int, Trace]] = {}
    for i, s in enumerate(slots):
        out[i] = {t.variant: t for t in by_problem.get(s.problem.id, []) if s.teacher.owns(t)}
    return out


# -- teacher calls -----------------------------------------------------------------


@dataclass
class FetchOutcome:
    traces: list[Trace] = field(default_factory=list)  # in job order, as stored
    new: int = 0  # stored or changed (their verification starts again)
    unchanged: int = 0  # same content as the stored trace: left as it was
    failed: int = 0
    truncated: int = 0
    calls: int = 0  # HTTP calls paid in this run (cache hits excluded)


def _trace(teacher: Teacher, problem: Problem, variant: int, res: ChatResult) -> Trace:
    return Trace(
        problem_id=problem.id,
        role=teacher.style,
        variant=variant,
        provider=teacher.name,
        model=teacher.model,
        prompt_hash=teacher.prompt_hash,
        # the reference teacher makes no call: nothing in api_calls to point at
        api_call_key=None if teacher.offline else res.key,
        text=(res.content or "") if res.ok else None,
        reasoning=res.reasoning,
        finish_reason=res.finish_reason,
        reject_reason=f"teacher call failed: {res.error}" if res.error else None,
    )


def _same_content(a: Trace, b: Trace) -> bool:
    return (a.text, a.reasoning, a.finish_reason, a.api_call_key, a.reject_reason if a.text is None else None) == (
        b.text,
        b.reasoning,
        b.finish_reason,
        b.api_call_key,
        b.reject_reason if b.text is None else None,
    )


def _store_results(
    store: Store,
    teacher: Teacher,
    jobs: Sequence[tuple[Problem, int]],
    results: Sequence[ChatResult],
    out: FetchOutcome,
) -> None:
    existing = {
        (t.problem_id, t.variant): t
        for t in store.traces({p.id for p, _ in jobs}, role=teacher.style)
        if teacher.owns(t)
    }
    with store.transaction():
        for (problem, variant), res in zip(jobs, results):
            trace = _trace(teacher, problem, variant, res)
            old = existing.get((problem.id, variant))
            if old is not None and _same_content(old, trace):
                out.traces.append(old)
                out.unchanged += 1
            else:
                trace.id = store.upsert_trace(trace)
                out.traces.append(trace)
                out.new += 1
            out.failed += bool(res.error)
            out.truncated += bool(res.truncated)


async def fetch_traces(
    store: Store,
    events: Events | None,
    teacher: Teacher,
    jobs: Sequence[tuple[Problem, int]],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> FetchOutcome:
    """Ask a teacher for (problem, variant) jobs and store the traces as they arrive.

    Variant 0 is the first answer; variant v >= 1 is a further sample (a different cache
    key, the configured temperature). Each finished job advances ``events`` by one; the
    caller owns start/done.
    """
    out = FetchOutcome()
    if not jobs:
        return out
    if teacher.offline:
        results = [teacher.provider.offline_teach(p, teacher.role) for p, _ in jobs]
        _store_results(store, teacher, jobs, results, out)
        if events is not None:
            events.advance(len(jobs))
        return out
    prompt = teacher.prompt
    assert prompt is not None
    async with open_teacher(teacher, store, transport=transport, retry=retry) as client:
        requests = [
            ChatRequest(
                prompt.render(question=p.question),
                stage="teach",
                prompt_hash=prompt.hash,
                variant=None if v == 0 else str(v),
            )
            for p, v in jobs
        ]

        def write(arrived: list[tuple[int, ChatResult]]) -> None:
            _store_results(store, teacher, [jobs[i] for i, _ in arrived], [r for _, r in arrived], out)

        async def then(i: int, res: ChatResult) -> None:
            arrived.add((i, res))

        with Batched(write) as arrived:  # a sliding window over every job; traces stored as they arrive
            await client.chat_many(requests, events, then=then)
        out.calls = client.totals.requests - client.totals.cached
    return out


# -- the stage ---------------------------------------------------------------------


@dataclass
class TeacherTally:
    label: str
    style: str
    slots: int = 0
    new: int = 0
    unchanged: int = 0
    failed: int = 0
    truncated: int = 0
    calls: int = 0


@dataclass
class TeachResult:
    dataset: str
    only: str | None
    items: int
    slots: int  # (problem, teacher) pairs
    by_teacher: list[TeacherTally] = field(default_factory=list)
    by_style: Counter = field(default_factory=Counter)  # slots per style

    @property
    def new(self) -> int:
        return sum(t.new for t in self.by_teacher)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.by_teacher)

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.by_teacher)

    def summary(self) -> str:
        parts = [
            f"{t.style} {t.label}: {t.slots} problems, {t.new} new, {t.unchanged} unchanged"
            + (f", {t.failed} failed" if t.failed else "")
            + (f", {t.truncated} truncated" if t.truncated else "")
            + f", {t.calls} calls"
            for t in self.by_teacher
        ]
        return "; ".join(parts)


def teach(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    dataset: str,
    only: str | None = None,
    teachers: dict[str, Sequence[Teacher]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> TeachResult:
    """Teacher traces (variant 0) for every item of a dataset; see the module docstring."""
    check_only(only)
    ds = load_dataset(store, dataset)
    slots = plan(store, ds, teachers if teachers is not None else configured_teachers(cfg), only)
    result = TeachResult(
        dataset=ds.name, only=only, items=len(ds.items), slots=len(slots), by_style=Counter(s.style for s in slots)
    )
    title = "teach" + (f" (only {only})" if only else "")
    events.start(title, len(slots))
    if only:
        events.message(f"ablation: every item gets {only} CoT (teach_{only} prompt)")

    async def run() -> None:
        for teacher in teachers_in(slots):
            ids = dict.fromkeys(s.problem.id for s in slots if s.teacher.key == teacher.key)
            problems = {s.problem.id: s.problem for s in slots}
            jobs = [(problems[pid], 0) for pid in ids]
            tally = TeacherTally(teacher.label, teacher.style, slots=len(jobs))
            result.by_teacher.append(tally)
            out = await fetch_traces(store, events, teacher, jobs, transport=transport, retry=retry)
            tally.new, tally.unchanged, tally.failed = out.new, out.unchanged, out.failed
            tally.truncated, tally.calls = out.truncated, out.calls

    asyncio.run(run())
    if result.failed:
        events.message(f"{result.failed} teacher calls failed; run `tailor teach` again to retry them")
    events.done(result.summary())
    return result
