"""`tailor grade`: a judge grades every diagnosed problem Easy / Medium / Hard for this student.

For each problem of a split (default train) with a diagnosis attempt (the latest one
when there are several) the judge reads the problem, the reference answer, the
student's extracted answer and its full CoT (prompts/grade.md) and returns a JSON
object: booleans ``logical``, ``complete``, ``minor_error`` (and ``answer_correct``),
a ``grade`` and a short ``rationale``, validated with pydantic (`JudgeVerdict`). The
grade stored is not the judge's own: it is `combine_grade` of the deterministic answer
check (`app.answers.is_equivalent`) and the judge's booleans, so the rules below hold
whatever the judge writes. The judge's grade is kept as ``judge_grade``; a judge grade
that differs from the combined one, or a judge ``answer_correct`` that contradicts the
checker, is a *disagreement* (flagged on the row and counted).

Faults: output that is not a valid verdict gets one repair call (the bad reply and a
short instruction appended, so its cache key differs); still bad -> the problem is
stored as ungraded (grade NULL) with the reason. A failed call or a failed diagnosis
is ungraded with its reason too. There is never a silent default grade.
`RemoteFatalError` (bad key, no credit, wrong model) stops the stage; grades written so
far stay.

Resumable: a problem whose grade in force came from the same judge (provider, model,
prompt hash) for the same attempt is skipped, so a re-run only grades what is missing,
and changing prompts/grade.md grades everything again. Ungraded problems are tried
again (a cached reply costs nothing). Grades are written in small transactions as
chunks of results arrive. A manual override (`record_overrides`) always wins and is
never re-graded by the judge.

The offline judges (`app.config.OFFLINE_JUDGES`) are deterministic stand-ins for an LLM
judge and make no calls; the stored grade is theirs (no combination, no disagreement):
``rules`` grades from answer correctness alone (Easy if correct, else Hard; its rationale
says the CoT was not assessed); ``steps`` also counts the reference solution's steps the
CoT reaches (`app.remote.steps_grade`: answer right and at least half the steps -> Easy,
right with fewer -> Medium, wrong with at least half -> Medium, else Hard; its rationale
says e.g. "2/3 reference steps reached"). Their identity has no prompt hash, so switching
between them, or to an LLM judge, grades everything again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from app.answers import is_equivalent
from app.config import Config
from app.errors import TailorError
from app.events import Events
from app.pipeline.diagnose import spread_limit
from app.prompts import load_prompt
from app.records import Attempt, GradeRecord, Problem
from app.remote import UNREADABLE, ChatRequest, open_client
from app.replies import json_object
from app.store import Batched, Store

GRADES: tuple[str, ...] = ("easy", "medium", "hard")
PROMPT_NAME = "grade"
STAGE = "grade"
MAX_RATIONALE_CHARS = 1000
MAX_SHOWN_REASONS = 5
REPAIR_INSTRUCTION = (
    "Your reply could not be used: {reason}. Reply again with only the JSON object "
    '{{"answer_correct": ..., "logical": ..., "complete": ..., "minor_error": ..., '
    '"grade": "easy" | "medium" | "hard", "rationale": "..."}} and nothing else.'
)


class GradeError(TailorError):
    """A user-facing problem with grading (nothing to grade, a bad --override)."""


class JudgeOutputError(GradeError):
    """The judge's reply is not a valid verdict; the message is one line."""


# -- the judge's verdict --------------------------------------------------------------


class JudgeVerdict(BaseModel):
    """What the judge must return. Extra keys are ignored; the grade is case-insensitive."""

    model_config = ConfigDict(extra="ignore")

    logical: bool
    complete: bool
    minor_error: bool
    grade: str
    answer_correct: bool | None = None
    rationale: str = ""

    @field_validator("grade", mode="before")
    @classmethod
    def _grade(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"grade must be a string, got {v!r}")
        g = v.strip().strip(".").lower()
        if g not in GRADES:
            raise ValueError(f"grade {v!r} is not one of easy, medium, hard")
        return g

    @field_validator("rationale", mode="before")
    @classmethod
    def _rationale(cls, v: Any) -> str:
        if v is None:
            return ""
        text = v if isinstance(v, str) else json.dumps(v)
        return " ".join(text.split())[:MAX_RATIONALE_CHARS]


def _preview(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return repr(one[:n] + ("…" if len(one) > n else ""))


def _json_object(text: str) -> dict:
    """The verdict object in a reply: the whole reply, a fenced block, or one inside prose."""
    obj = json_object(text, prefer_key="grade")
    if obj is None:
        raise JudgeOutputError(f"judge output is not a JSON object: {_preview(text.strip())}")
    return obj


def parse_judge_output(text: str | None) -> JudgeVerdict:
    """Validate a judge reply; raises `JudgeOutputError` with a one-line reason."""
    if text is None or not text.strip():
        raise JudgeOutputError("judge output is empty")
    obj = _json_object(text)
    try:
        return JudgeVerdict.model_validate(obj)
    except ValidationError as e:
        missing = [str(err["loc"][0]) for err in e.errors() if err["type"] == "missing"]
        if missing:
            raise JudgeOutputError(f"judge JSON lacks {', '.join(missing)}") from None
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if where == "grade":
            raise JudgeOutputError(f"judge {msg}") from None
        raise JudgeOutputError(f"judge JSON field {where}: {msg} (got {err.get('input')!r})") from None


# -- the grading rules ------------------------------------------------------------------


def combine_grade(answer_correct: bool, logical: bool, complete: bool, minor_error: bool) -> str:
    """The grade from the checker's verdict on the answer and the judge's view of the CoT.

    ACoTD's definitions, made total:

    * answer correct, CoT logical and complete                     -> easy
    * answer correct, CoT illogical or incomplete                  -> medium  (decision, below)
    * answer wrong, CoT complete and logical or only minor errors  -> medium
    * answer wrong, CoT incomplete, or illogical beyond a minor error -> hard

    "Answer right, reasoning flawed" is Medium: it cannot be Easy (the paper's Easy needs
    a logical and complete CoT, and training on it as mastered would reinforce the flawed
    reasoning), and it is not Hard (Hard is "answer wrong"; the student reaches the answer,
    so it nearly knows the problem). Medium routes it to teacher A's short, key-steps CoT,
    which is what fixes reasoning the student almost has; a lucky guess with no real
    reasoning is the case to fix by hand with ``--override ID=hard``.

    For a wrong answer, ``minor_error`` stands for "only minor errors" and so excuses an
    illogical step, but not an incomplete CoT: incomplete is always Hard.
    """
    if answer_correct:
        return "easy" if (logical and complete) else "medium"
    if complete and (logical or minor_error):
        return "medium"
    return "hard"


def is_disagreement(combined: str, judge_grade: str | None, checker_correct: bool, judge_correct: bool | None) -> bool:
    """The judge's own grade differs from the combined one, or it contradicts the checker."""
    if judge_grade is not None and judge_grade != combined:
        return True
    return judge_correct is not None and judge_correct != checker_correct


def format_ratio(easy: int, medium: int, hard: int) -> str:
    """E:M:H normalised so the smallest non-zero stratum is 1, e.g. "5.3:1:3.1"."""
    counts = (easy, medium, hard)
    nonzero = [c for c in counts if c > 0]
    if not nonzero:
        return "0:0:0"
    low = min(nonzero)

    def fmt(c: int) -> str:
        s = f"{c / low:.1f}"
        return s[:-2] if s.endswith(".0") else s

    return ":".join(fmt(c) for c in counts)


def parse_override(spec: str) -> tuple[str, str]:
    """``PROBLEM_ID=GRADE`` -> (id, grade); the grade is case-insensitive."""
    pid, sep, g = spec.rpartition("=")
    pid, g = pid.strip(), g.strip().lower()
    if not sep or not pid or not g:
        raise GradeError(f"--override {spec!r}: expected PROBLEM_ID=GRADE (GRADE: easy, medium or hard)")
    if g not in GRADES:
        raise GradeError(f"--override {spec!r}: grade {g!r} is not one of easy, medium, hard")
    return pid, g


# -- the stage ------------------------------------------------------------------------


@dataclass
class GradeResult:
    """This run: graded / ungraded (reasons by problem id) / skipped / overrides.
    The grades in force for the split (what `tailor sample` sees, earlier runs and
    overrides included): easy, medium, hard, ungraded_in_force, disagreements, ratio."""

    split: str
    judge: str
    total: int = 0  # diagnosed problems considered
    graded: int = 0
    ungraded: int = 0
    skipped: int = 0
    given_up: int = 0  # ungraded after [judge] grade_tries unreadable replies: not asked again
    overrides: int = 0
    new_disagreements: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    easy: int = 0
    medium: int = 0
    hard: int = 0
    ungraded_in_force: int = 0
    disagreements: int = 0
    ratio: str = "0:0:0"

    def summary(self) -> str:
        head = []
        if self.overrides:
            head.append(f"{self.overrides} overrides recorded")
        if self.total or not self.overrides:
            head.append(
                f"{self.graded} graded, {self.ungraded} ungraded, {self.skipped} already graded"
                + (f", {self.given_up} left ungraded after every try" if self.given_up else "")
            )
        tail = (
            f"E:M:H = {self.ratio} ({self.easy} easy / {self.medium} medium / {self.hard} hard"
            + (f", {self.ungraded_in_force} ungraded" if self.ungraded_in_force else "")
            + f"), {self.disagreements} judge/checker disagreements"
        )
        return "; ".join(head + [tail])


def _fill_in_force(result: GradeResult, store: Store) -> None:
    cur = store.current_grades(split=result.split)
    result.easy = sum(g.grade == "easy" for g in cur.values())
    result.medium = sum(g.grade == "medium" for g in cur.values())
    result.hard = sum(g.grade == "hard" for g in cur.values())
    result.ungraded_in_force = sum(g.grade is None for g in cur.values())
    result.disagreements = sum(g.disagreement for g in cur.values())
    result.ratio = format_ratio(result.easy, result.medium, result.hard)


def latest_diagnoses(store: Store, problem_ids) -> dict[str, Attempt]:
    """Each problem's latest diagnosis attempt (highest id)."""
    wanted = set(problem_ids)
    latest: dict[str, Attempt] = {}
    for a in store.attempts(purpose="diagnose"):  # ordered by id: the last one wins
        if a.problem_id in wanted:
            latest[a.problem_id] = a
    return latest


@dataclass(frozen=True)
class _Judge:
    provider: str
    model: str
    prompt_hash: str | None
    stand_in: str | None = None  # what an offline judge checks; None for a model

    def label(self) -> str:
        if self.stand_in:
            return f"{self.provider} ({self.stand_in}; offline stand-in)"
        return f"{self.provider} {self.model} (prompt grade {self.prompt_hash})"


def judge_of(cfg: Config, prompt_hash: str) -> _Judge:
    prov = cfg.judge
    if prov.offline:
        return _Judge(prov.provider, prov.provider, None, prov.stand_in)
    model = prov.model + (f"+{prov.adapter}" if getattr(prov, "adapter", None) else "")
    return _Judge(prov.provider, model, prompt_hash)


def _same_judge(g: GradeRecord, judge: _Judge, attempt: Attempt) -> bool:
    return (g.provider, g.model, g.prompt_hash) == (
        judge.provider,
        judge.model,
        judge.prompt_hash,
    ) and g.attempt_id == attempt.id


def _ungraded(
    judge: _Judge, problem: Problem, attempt: Attempt, correct: bool | None, reason: str, key: str | None = None
) -> GradeRecord:
    return GradeRecord(
        problem_id=problem.id,
        attempt_id=attempt.id,
        grade=None,
        answer_correct=correct,
        error=reason,
        provider=judge.provider,
        model=judge.model,
        prompt_hash=judge.prompt_hash,
        api_call_key=key,
    )


def _graded(judge: _Judge, problem: Problem, attempt: Attempt, correct: bool, v: JudgeVerdict, key: str) -> GradeRecord:
    combined = combine_grade(correct, v.logical, v.complete, v.minor_error)
    return GradeRecord(
        problem_id=problem.id,
        attempt_id=attempt.id,
        grade=combined,
        answer_correct=correct,
        logical=v.logical,
        complete=v.complete,
        minor_error=v.minor_error,
        judge_grade=v.grade,
        disagreement=is_disagreement(combined, v.grade, correct, v.answer_correct),
        rationale=v.rationale or None,
        provider=judge.provider,
        model=judge.model,
        prompt_hash=judge.prompt_hash,
        api_call_key=key,
    )


def _offline(cfg: Config, judge: _Judge, problem: Problem, attempt: Attempt, correct: bool) -> GradeRecord:
    r = cfg.judge.offline_grade(problem, attempt.text, correct)
    return GradeRecord(
        problem_id=problem.id,
        attempt_id=attempt.id,
        grade=r.grade,
        answer_correct=correct,
        judge_grade=r.grade,
        disagreement=False,
        rationale=r.rationale,
        provider=judge.provider,
        model=judge.model,
        prompt_hash=None,
    )


def _chunks(seq: list, n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def grade(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    split: str = "train",
    limit: int | None = None,
    transport=None,
    retry=None,
) -> GradeResult:
    """Grade the split's diagnosed problems with the configured judge; see the module doc.

    ``transport`` / ``retry`` are passed to the remote client (tests)."""
    prompt = load_prompt(PROMPT_NAME)
    judge = judge_of(cfg, prompt.hash)
    result = GradeResult(split=split, judge=judge.label())

    problems = store.problems(split=split)
    latest = latest_diagnoses(store, (p.id for p in problems))
    work = [p for p in problems if p.id in latest]
    work = spread_limit(work, limit)
    if not work:
        raise GradeError(f"grade: no diagnosed problems in split {split!r}; run `tailor diagnose` first")
    result.total = len(work)

    current = store.current_grades(split=split)
    failed: list[GradeRecord] = []  # diagnosis failed: ungraded without asking the judge
    todo: list[tuple[Problem, Attempt, bool, GradeRecord | None]] = []
    tries = getattr(cfg.judge, "grade_tries", 1)
    for p in work:
        a, cur = latest[p.id], current.get(p.id)
        if cur is not None and cur.is_override:
            result.skipped += 1
            continue
        # This judge's ungraded row for this attempt: a retry replaces it instead of adding one.
        prior = cur if cur is not None and cur.grade is None and _same_judge(cur, judge, a) else None
        if a.error:
            reason = f"diagnosis failed: {a.error}"
            if prior is not None and prior.error == reason:
                result.skipped += 1
            else:
                failed.append(
                    _ungraded(judge, p, a, None, reason).model_copy(update={"id": prior.id if prior else None})
                )
            continue
        if cur is not None and cur.grade is not None and _same_judge(cur, judge, a):
            result.skipped += 1
            continue
        if prior is not None and (prior.error or "").startswith(UNREADABLE) and prior.tries >= tries:
            result.given_up += 1  # asked `grade_tries` times, never readable: an override is the way on
            continue
        todo.append((p, a, is_equivalent(a.extracted, p.answer), prior))

    events.start("grade", len(failed) + len(todo))
    events.message(f"judge: {judge.label()}; {len(todo)} to grade, {result.skipped} already graded")

    def write(records: list[GradeRecord]) -> None:
        with store.transaction():
            for g in records:
                store.insert_grade(g)
        for g in records:
            if g.grade is None:
                result.ungraded += 1
                result.reasons[g.problem_id] = g.error or "unknown"
                if len(result.reasons) <= MAX_SHOWN_REASONS:
                    events.message(f"ungraded {g.problem_id}: {g.error}")
            else:
                result.graded += 1
                result.new_disagreements += g.disagreement

    if failed:
        events.advance(len(failed))
    if todo and not judge.stand_in:
        # The failed diagnoses go with the first chunk: a judge that cannot even start
        # (missing key, server that will not start) leaves the store as it was.
        asyncio.run(_grade_remote(cfg, store, events, prompt, judge, todo, failed, write, transport, retry))
    else:
        if failed:
            write(failed)
        for chunk in _chunks(todo, 64):
            write(
                [
                    _offline(cfg, judge, p, a, c).model_copy(update={"id": prior.id if prior else None})
                    for p, a, c, prior in chunk
                ]
            )
            events.advance(len(chunk))

    _fill_in_force(result, store)
    if result.ungraded > MAX_SHOWN_REASONS:
        events.message(f"{result.ungraded - MAX_SHOWN_REASONS} more ungraded, reasons not shown")
    events.done(result.summary())
    return result


def _messages(prompt, problem: Problem, attempt: Attempt) -> list[dict]:
    return prompt.render(
        question=problem.question,
        reference_answer=problem.answer,
        student_answer=attempt.extracted or "(no final answer found)",
        student_cot=(attempt.text or "").strip() or "(empty response)",
    )


async def _grade_remote(cfg, store, events, prompt, judge: _Judge, todo, failed, write, transport, retry) -> None:
    """Every request in flight under the judge's concurrency (a sliding window, not chunks);
    each verdict is written as it arrives, a few at a time. An ungraded problem asked again
    gets a new request (its try number is part of the cache key: the unreadable reply and
    its repair are cached) and keeps its one grade row."""
    async with open_client(cfg, "judge", store, transport=transport, retry=retry) as client:
        reqs = [
            ChatRequest(
                messages=_messages(prompt, p, a),
                stage=STAGE,
                prompt_hash=prompt.hash,
                json_mode=True,
                variant=None if prior is None else f"try{prior.tries + 1}",
            )
            for p, a, _, prior in todo
        ]

        async def then(i: int, res) -> None:
            p, a, correct, prior = todo[i]
            rec = await _verdict(client, judge, reqs[i], res, p, a, correct)
            if prior is not None:
                rec = rec.model_copy(update={"id": prior.id, "tries": prior.tries + 1})
            pending.add(rec)

        # Opened only once the judge is reachable: a judge that cannot start leaves no rows.
        # What arrived before a fatal error is kept.
        with Batched(write) as pending:
            for rec in failed:
                pending.add(rec)
            await client.chat_many(reqs, events, then=then)


async def _verdict(client, judge: _Judge, req, res, p: Problem, a: Attempt, correct: bool) -> GradeRecord:
    """The grade record for one judge reply, after one repair call when it cannot be read."""
    got = await client.parse_or_repair(req, res, parse_judge_output, REPAIR_INSTRUCTION, (JudgeOutputError,))
    if got.error:
        return _ungraded(judge, p, a, correct, got.error, got.result.key)
    return _graded(judge, p, a, correct, got.value, got.result.key)


# -- manual overrides ----------------------------------------------------------------


def record_overrides(
    cfg: Config, store: Store, events: Events, specs: list[str], *, split: str = "train"
) -> GradeResult:
    """Record ``PROBLEM_ID=GRADE`` manual grades (provider "manual", is_override). All specs
    are validated before anything is written; then one transaction writes them all."""
    wanted: dict[str, str] = {}
    for spec in specs:
        pid, g = parse_override(spec)
        if wanted.get(pid, g) != g:
            raise GradeError(f"--override: problem {pid} is given two grades ({wanted[pid]}, {g})")
        wanted[pid] = g
    if not wanted:
        raise GradeError("--override: no PROBLEM_ID=GRADE given")
    missing = sorted(set(wanted) - store.existing_problem_ids(wanted))
    if missing:
        more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GradeError(f"--override: no problem with id {missing[0]!r}{more}")
    latest = latest_diagnoses(store, wanted)
    problems = {pid: store.get_problem(pid) for pid in wanted}
    events.start("grade --override", len(wanted))
    with store.transaction():
        for pid, g in wanted.items():
            a = latest.get(pid)
            correct = is_equivalent(a.extracted, problems[pid].answer) if a and not a.error else None
            store.insert_grade(
                GradeRecord(
                    problem_id=pid,
                    attempt_id=a.id if a else None,
                    grade=g,
                    answer_correct=correct,
                    rationale="manual override",
                    is_override=True,
                    provider="manual",
                    model=None,
                )
            )
    events.advance(len(wanted))
    result = GradeResult(split=split, judge="manual", overrides=len(wanted))
    other = sorted(pid for pid, p in problems.items() if p.split != split)
    if other:
        events.message(f"note: {len(other)} overridden problems are not in split {split!r} (e.g. {other[0]})")
    _fill_in_force(result, store)
    events.done(result.summary())
    return result
