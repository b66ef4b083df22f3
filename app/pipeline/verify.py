"""`tailor verify`: accept a teacher trace when its final answer matches the reference.

For every (problem, teacher) of a dataset (the plan `tailor teach` used, same ``only``):

- answer check: the trace's final answer (app/answers.extract_answer) must be equivalent
  to the reference answer. Reasons a trace is rejected: ``teacher call failed: ...``,
  ``truncated`` (finish_reason=length), ``no final answer``, ``wrong answer (got X)``;
- optional consistency check (``consistency=True``): the judge reads the worked solution
  with prompts/verify.md and answers ``{"consistent": bool, "reason": str}``; a trace it
  calls inconsistent is rejected with ``inconsistent (reason)``; a check that could not be
  made rejects it with ``consistency check failed: ...`` (re-run to retry). With an
  offline stand-in judge (``rules``, ``steps``) the check is skipped, with a message;
- optional rejection sampling (``resample=N``): a problem whose trace was rejected is
  asked again, variant 1, 2, ... N (a new cache key each, at the configured temperature),
  stopping at the first accepted trace. Only rejected problems are asked; the reference
  teacher is never re-asked (its answer cannot change).

The verdict is written back to each trace (extracted, verified, consistent,
reject_reason). Re-running is cheap: answer checks are local and every judge or teacher
call comes from the request cache.

Reported: acceptance per teacher (provider/model) and per style, first-try and after
resampling, the reasons for rejection, and the data-size ratio between teachers
(verified problems of the larger over the smaller).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from app.answers import extract_answer, is_equivalent
from app.config import Config
from app.events import Events
from app.pipeline.teach import (
    DatasetError,
    Slot,
    Teacher,
    check_only,
    configured_teachers,
    fetch_traces,
    load_dataset,
    plan,
    slot_traces,
    teachers_in,
)
from app.prompts import load_prompt
from app.records import Problem, Trace
from app.remote import ChatRequest, ChatResult, RetryPolicy, open_client, split_think
from app.replies import json_object
from app.store import Store

# Kajitsuka et al.: at about this ratio of verified examples, prefer the stronger teacher.
STRONGER_TEACHER_RATIO = 1.3


# -- the answer check --------------------------------------------------------------


def check_answer(trace: Trace, problem: Problem) -> Trace:
    """The trace with its answer verdict (extracted, verified, reject_reason); consistency reset."""
    t = trace.model_copy()
    t.consistent = None
    t.extracted = None
    if t.text is None:
        reason = t.reject_reason if (t.reject_reason or "").startswith("teacher call failed") else None
        t.verified, t.reject_reason = False, reason or "teacher call failed: no output"
        return t
    content, _ = split_think(t.text)  # a <think> block is not the answer
    t.extracted = extract_answer(content or "")
    if t.finish_reason == "length":
        t.verified, t.reject_reason = False, "truncated"
    elif t.extracted is None:
        t.verified, t.reject_reason = False, "no final answer"
    elif not is_equivalent(t.extracted, problem.answer):
        t.verified, t.reject_reason = False, f"wrong answer (got {_short(t.extracted)})"
    else:
        t.verified, t.reject_reason = True, None
    return t


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def reason_kind(reason: str | None) -> str:
    """The category of a reject reason: 'wrong answer (got 3)' -> 'wrong answer'."""
    if not reason:
        return ""
    return re.split(r" \(|:", reason, maxsplit=1)[0]


# -- the consistency check ---------------------------------------------------------


def parse_consistency(content: str | None) -> tuple[bool | None, str]:
    """(consistent, reason) from the judge's reply; consistent None = unreadable reply."""
    obj = json_object(content)
    if obj is None:
        return None, "judge reply is not a JSON object"
    value = obj.get("consistent")
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        return None, 'judge reply has no boolean "consistent"'
    return value, str(obj.get("reason") or "").strip()


def _apply_consistency(t: Trace, res: ChatResult) -> Trace:
    if res.error:
        t.verified, t.reject_reason = False, f"consistency check failed: {res.error}"
        return t
    if res.truncated:
        t.verified, t.reject_reason = False, "consistency check failed: judge reply truncated"
        return t
    consistent, reason = parse_consistency(res.content)
    if consistent is None:
        t.verified, t.reject_reason = False, f"consistency check failed: {reason}"
    elif consistent:
        t.consistent = True
    else:
        t.consistent, t.verified = False, False
        t.reject_reason = f"inconsistent ({_short(reason, 200)})" if reason else "inconsistent"
    return t


# -- report ------------------------------------------------------------------------


@dataclass
class Acceptance:
    problems: int = 0  # problems this teacher / style was asked
    taught: int = 0  # of them with a trace
    accepted: int = 0  # with an accepted trace (any variant)
    first_try: int = 0  # accepted at variant 0
    reasons: Counter = field(default_factory=Counter)  # reason kind of the still-rejected

    @property
    def rate(self) -> float | None:
        return self.accepted / self.taught if self.taught else None

    def line(self) -> str:
        rate = f"{100 * self.rate:.1f} %" if self.rate is not None else "n/a"
        s = f"{self.accepted}/{self.taught} accepted ({rate}; first try {self.first_try})"
        if self.taught < self.problems:
            s += f", {self.problems - self.taught} not taught"
        if self.reasons:
            s += "; rejected: " + ", ".join(f"{k} {v}" for k, v in self.reasons.most_common())
        return s


@dataclass
class VerifyResult:
    dataset: str
    only: str | None
    problems: int  # slots: (problem, teacher) pairs
    taught: int = 0
    accepted: int = 0
    traces_checked: int = 0
    by_teacher: dict[str, Acceptance] = field(default_factory=dict)  # "short openai/m"
    by_style: dict[str, Acceptance] = field(default_factory=dict)
    verified_by_teacher: dict[str, int] = field(default_factory=dict)
    size_ratio: float | None = None  # verified problems, larger teacher over smaller
    size_ratio_teachers: tuple[str, str] | None = None  # (larger, smaller)
    size_ratio_by_style: dict[str, float | None] = field(default_factory=dict)  # teachers of one style
    solved_by_all: dict[str, int] = field(default_factory=dict)  # per style: problems every teacher solved
    consistency: str = "off"  # off | on | skipped (<offline> judge)
    judge_calls: int = 0
    resample_calls: int = 0
    resample_accepted: int = 0

    def lines(self) -> list[str]:
        out = [
            f"dataset {self.dataset}"
            + (f" (only {self.only})" if self.only else "")
            + f": {self.accepted}/{self.taught} problem-teacher pairs accepted"
            + f" ({self.traces_checked} traces checked; consistency {self.consistency})"
        ]
        for label, acc in self.by_teacher.items():
            out.append(f"  teacher {label}: {acc.line()}")
        for style, acc in self.by_style.items():
            out.append(f"  style {style}: {acc.line()}")
        if self.size_ratio_teachers is not None:
            big, small = self.size_ratio_teachers
            out.append(
                f"  data-size ratio {big} / {small} = {_fmt_ratio(self.size_ratio)} "
                f"({self.verified_by_teacher[big]} vs {self.verified_by_teacher[small]} verified)"
            )
        for style, r in self.size_ratio_by_style.items():
            out.append(
                f"  {style}: problems solved by every {style} teacher: {self.solved_by_all.get(style, 0)}"
                + f"; ratio between them {_fmt_ratio(r)}"
            )
        if self.resample_calls or self.resample_accepted:
            out.append(
                f"  rejection sampling: {self.resample_calls} teacher calls, {self.resample_accepted} problems rescued"
            )
        return out


def _ratio(counts: dict[str, int]) -> tuple[float | None, tuple[str, str] | None]:
    """(larger / smaller, (larger, smaller)); inf when only one has data, None when neither."""
    if len(counts) < 2:
        return None, None
    order = sorted(counts, key=lambda k: (-counts[k], k))
    big, small = order[0], order[-1]
    if counts[big] == 0:
        return None, (big, small)
    return (counts[big] / counts[small] if counts[small] else float("inf")), (big, small)


def _fmt_ratio(r: float | None) -> str:
    return "n/a (nothing verified)" if r is None else f"{r:.2f}x"


def _report(result: VerifyResult, slots: Sequence[Slot], traces: dict[int, dict[int, Trace]]) -> None:
    teachers = teachers_in(slots)
    for t in teachers:
        result.by_teacher.setdefault(t.label, Acceptance())
    for style in dict.fromkeys(s.style for s in slots):
        result.by_style.setdefault(style, Acceptance())
    solved: dict[tuple, set[str]] = {t.key: set() for t in teachers}
    for i, s in enumerate(slots):
        variants = traces.get(i, {})
        accs = (result.by_teacher[s.teacher.label], result.by_style[s.style])
        accepted = [v for v, t in variants.items() if t.verified]
        for acc in accs:
            acc.problems += 1
            if variants:
                acc.taught += 1
                if accepted:
                    acc.accepted += 1
                    acc.first_try += 0 in accepted
                else:
                    acc.reasons[reason_kind(variants[max(variants)].reject_reason)] += 1
        if accepted:
            solved[s.teacher.key].add(s.problem.id)
    result.taught = sum(1 for i in range(len(slots)) if traces.get(i))
    result.accepted = sum(1 for i in range(len(slots)) if any(t.verified for t in traces.get(i, {}).values()))
    counts: dict[str, int] = {}
    for t in teachers:  # a teacher of both styles counts once
        counts[t.label] = counts.get(t.label, 0) + len(solved[t.key])
    result.verified_by_teacher = counts
    result.size_ratio, result.size_ratio_teachers = _ratio(counts)
    for style in result.by_style:
        team = [t for t in teachers if t.style == style]
        problems = {s.problem.id for s in slots if s.style == style}
        result.solved_by_all[style] = len(set.intersection(*(solved[t.key] for t in team)) & problems) if team else 0
        if len(team) >= 2:
            result.size_ratio_by_style[style], _ = _ratio({t.label: len(solved[t.key]) for t in team})


# -- the stage ---------------------------------------------------------------------


def verify(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    dataset: str,
    only: str | None = None,
    consistency: bool = False,
    resample: int = 0,
    teachers: dict[str, Sequence[Teacher]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> VerifyResult:
    """Verify the traces `tailor teach` wrote for a dataset (same ``only``); see the module docstring."""
    check_only(only)
    if resample < 0:
        raise DatasetError(f"--resample must be 0 or more, not {resample}")
    ds = load_dataset(store, dataset)
    slots = plan(store, ds, teachers if teachers is not None else configured_teachers(cfg), only)
    traces = slot_traces(store, slots)
    result = VerifyResult(dataset=ds.name, only=only, problems=len(slots))
    untaught = [i for i in range(len(slots)) if not traces[i]]
    if len(untaught) == len(slots):
        hint = f" --only {only}" if only else ""
        extra = (
            (
                "; its problems have traces of another style, teacher or prompt version: pass the "
                "--only you taught with, or teach again"
            )
            if _other_traces(store, slots)
            else ""
        )
        raise DatasetError(
            f"dataset {ds.name!r} has no teacher traces for this configuration: "
            f"run `tailor teach --dataset {ds.name}{hint}` first{extra}"
        )
    if untaught:
        events.message(
            f"{len(untaught)} of {len(slots)} problem-teacher pairs have no trace yet (run `tailor teach` to fill them)"
        )

    use_judge = consistency
    if consistency and "rate" not in cfg.judge.can:
        events.message(
            f"consistency check skipped: the judge is the offline stand-in '{cfg.judge.provider}' "
            "(configure an openai or mlx-server [judge] to use it)"
        )
        result.consistency, use_judge = f"skipped ({cfg.judge.provider} judge)", False
    elif consistency:
        result.consistency = "on"

    async def run() -> None:
        judge_prompt = load_prompt("verify")

        async def check_all(items: list[tuple[int, Trace]], judge) -> None:
            """Answer check, then consistency for the answer-verified; store the verdicts."""
            checked = [(i, check_answer(t, slots[i].problem)) for i, t in items]
            if judge is not None:
                todo = [(i, t) for i, t in checked if t.verified]
                if todo:
                    reqs = [
                        ChatRequest(
                            judge_prompt.render(
                                question=slots[i].problem.question,
                                reference_answer=slots[i].problem.answer,
                                solution=split_think(t.text)[0] or "",
                            ),
                            stage="verify",
                            prompt_hash=judge_prompt.hash,
                            temperature=0.0,
                        )
                        for i, t in todo
                    ]
                    events.start("verify: consistency", len(reqs))
                    before = judge.totals.requests - judge.totals.cached
                    answers = await judge.chat_many(reqs, events)
                    result.judge_calls += judge.totals.requests - judge.totals.cached - before
                    for (_, t), res in zip(todo, answers):
                        _apply_consistency(t, res)
                    events.done(f"{sum(1 for _, t in todo if t.consistent)} of {len(todo)} consistent")
            with store.transaction():
                for i, t in checked:
                    store.upsert_trace(t)
                    traces[i][t.variant] = t
            result.traces_checked += len(checked)

        def accepted(i: int) -> bool:
            return any(t.verified for t in traces[i].values())

        async def body(judge) -> None:
            await check_all([(i, t) for i in range(len(slots)) for _, t in sorted(traces[i].items())], judge)
            first = {i for i in range(len(slots)) if accepted(i)}
            events.message(f"verify: {len(first)} of {len(slots) - len(untaught)} problem-teacher pairs accepted")
            rejected = [i for i in range(len(slots)) if traces[i] and not accepted(i)]
            fixed = [i for i in rejected if slots[i].teacher.offline]
            if resample and fixed:
                events.message(
                    f"rejection sampling: {len(fixed)} problems of the reference teacher "
                    "are not asked again (its answer cannot change)"
                )
            pending = [i for i in rejected if not slots[i].teacher.offline]
            for v in range(1, resample + 1):
                pending = [i for i in pending if not accepted(i)]
                if not pending:
                    break
                # a variant answered in an earlier run is not asked again, unless its call failed
                ask = [i for i in pending if v not in traces[i] or traces[i][v].text is None]
                events.start(f"verify: resample {v}/{resample}", len(ask))
                fetched: list[tuple[int, Trace]] = []
                for teacher in teachers_in([slots[i] for i in ask]):
                    mine = [i for i in ask if slots[i].teacher.key == teacher.key]
                    out = await fetch_traces(
                        store, events, teacher, [(slots[i].problem, v) for i in mine], transport=transport, retry=retry
                    )
                    result.resample_calls += out.calls
                    fetched += list(zip(mine, out.traces))
                events.done(f"{len(ask)} problems asked again")
                await check_all(fetched, judge)
            result.resample_accepted = sum(1 for i in range(len(slots)) if accepted(i) and i not in first)

        if use_judge:
            async with open_client(cfg, "judge", store, transport=transport, retry=retry) as judge:
                await body(judge)
        else:
            await body(None)

    asyncio.run(run())
    _report(result, slots, traces)
    for style, r in result.size_ratio_by_style.items():
        if r is not None and r >= STRONGER_TEACHER_RATIO:
            events.message(
                f"{style} teachers differ a lot in verified data ({_fmt_ratio(r)} >= "
                f"{STRONGER_TEACHER_RATIO}x): consider keeping only the stronger one"
            )
    return result


def _other_traces(store: Store, slots: Sequence[Slot]) -> bool:
    """Whether the dataset's problems have traces this plan does not own (style, teacher, prompt)."""
    return bool(store.traces({s.problem.id for s in slots}))


def format_verify(result: VerifyResult) -> str:
    return "\n".join(result.lines())
