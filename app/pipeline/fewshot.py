"""Few-shot evaluation for the capacity-gap protocol: every model, the same N-shot prompt.

The capacity-gap paper's cheap proxy ("will distillation pay here?") compares the
few-shot accuracy of the teachers and of the student on the same problems with the same
prompt. `tailor eval --shots N` gives the student (and its adapters) N worked examples
from the train split — a fixed seeded draw, the same examples in the same order for every
model — as prior chat turns, each answer in the format the student is trained and
evaluated with; `--teachers` sends the identical messages to the remote teachers through
their endpoints. Answers are attempts with purpose "fewshot" (kept apart from the
zero-shot "eval" attempts the results compare), and `tailor gap --from-store` reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from fractions import Fraction

from app.config import Config
from app.errors import TailorError
from app.events import Events
from app.prompts import Prompt
from app.records import Problem
from app.store import Batched, Store

PURPOSE = "fewshot"
SHOTS_SEED = 0


class ShotsError(TailorError):
    """Few-shot evaluation cannot be set up as asked."""


def pick_shots(store: Store, n: int) -> list[Problem]:
    """n train problems with a worked solution: a seeded draw, in the drawn order."""
    from app.pipeline.sample import pick

    pool = {p.id: p for p in store.problems(split="train") if (p.solution or "").strip()}
    if n > len(pool):
        raise ShotsError(f"--shots {n}: only {len(pool)} train problems have a worked solution to show")
    return [pool[pid] for pid in pick(pool, n, SHOTS_SEED, "shots")]


def shots_hash(shots: list[Problem]) -> str:
    """What identifies the shots in an attempt's params: the examples and their order."""
    blob = json.dumps([[p.id, p.question, p.solution, p.answer] for p in shots], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def shot_messages(prompt: Prompt, question: str, shots: list[Problem]) -> list[dict]:
    """The student prompt for `question` after one user / assistant exchange per shot."""
    from app.pipeline.export import format_cot

    turns = []
    for shot in shots:
        rendered = prompt.render(question=shot.question)
        turns += [rendered[-1], {"role": "assistant", "content": format_cot(shot.solution or "", shot.answer)}]
    messages = prompt.render(question=question)
    return messages[:-1] + turns + messages[-1:]


# -- the remote teachers --------------------------------------------------------------


def remote_teachers(cfg: Config) -> tuple[list, list[str]]:
    """The configured teachers that are models (one per distinct model), and notes on the rest."""
    from app.pipeline.teach import configured_teachers

    chosen, notes, seen = [], [], set()
    for style, teachers in configured_teachers(cfg).items():
        for t in teachers:
            if t.offline:
                notes.append(
                    f"teachers.{style} is an offline stand-in ({t.provider.stand_in}), not a model: not evaluated"
                )
            elif (t.name, t.model) not in seen:
                seen.add((t.name, t.model))
                chosen.append(t)
    return chosen, notes


def ask_teachers(cfg: Config, store: Store, events: Events, plan: dict, make, *, transport=None, retry=None) -> None:
    """Send every (teacher, problem) of `plan` ({key: (teacher, problem, messages, params)})
    not yet answered; store each answer as an attempt via ``make(teacher, problem, params,
    key, result)`` as it arrives."""
    done = store.attempt_keys(plan)
    todo = {k: v for k, v in plan.items() if k not in done}
    if not todo:
        return
    by_teacher: dict = defaultdict(list)  # (provider, model) -> [(teacher, key, problem, messages, params)]
    for key, (teacher, problem, messages, params) in todo.items():
        by_teacher[(teacher.name, teacher.model)].append((teacher, key, problem, messages, params))
    events.start("eval teachers", len(todo))
    asyncio.run(_ask(cfg, store, events, list(by_teacher.values()), make, transport, retry))


async def _ask(cfg, store, events, groups, make, transport, retry) -> None:
    from app.pipeline.teach import open_teacher
    from app.remote import ChatRequest

    for group in groups:
        teacher = group[0][0]
        rows = [row[1:] for row in group]
        async with open_teacher(teacher, store, transport=transport, retry=retry) as client:
            reqs = [
                ChatRequest(
                    messages=messages,
                    stage="eval",
                    prompt_hash=params["prompt_hash"],
                    temperature=cfg.eval.temperature,
                    top_p=cfg.eval.top_p,
                )
                for _key, _p, messages, params in rows
            ]

            async def then(i: int, res, rows=rows, teacher=teacher) -> None:
                key, problem, _m, params = rows[i]
                answers.add(make(teacher, problem, params, key, res))

            with Batched(store.insert_attempts) as answers:
                await client.chat_many(reqs, events, then=then)


# -- what `tailor gap --from-store` reads ------------------------------------------------


def fewshot_rows(store: Store) -> tuple[list, list[str]]:
    """ScoreRows (one task per problem category) from the newest few-shot setting: the base
    student and every teacher, on the problems each of them answered (the same problems for
    all). Adapters are distilled students, not the baseline the proxy is about: left out."""
    from app.pipeline.gap import ScoreRow

    attempts = [a for a in store.attempts(purpose=PURPOSE) if a.adapter is None and not a.error]
    if not attempts:
        raise ShotsError("gap --from-store: no few-shot answers yet; run `tailor eval --shots N --teachers`")
    newest = max(attempts, key=lambda a: a.created_at or "")
    setting = (newest.prompt_hash, newest.params.get("shots_hash"))
    attempts = [a for a in attempts if (a.prompt_hash, a.params.get("shots_hash")) == setting]
    marks: dict = defaultdict(lambda: defaultdict(list))  # (model, role) -> problem -> [correct]
    for a in attempts:
        who = (a.model, "teacher" if a.params.get("teacher") else "student")
        marks[who][a.problem_id].append(bool(a.correct))
    if not any(role == "teacher" for _, role in marks):
        raise ShotsError(
            "gap --from-store: no teacher has few-shot answers with this prompt; run `tailor eval --shots N --teachers`"
        )
    if not any(role == "student" for _, role in marks):
        raise ShotsError(
            "gap --from-store: the base student has no few-shot answers with this prompt; run `tailor eval --shots N`"
        )
    common = set.intersection(*(set(by_problem) for by_problem in marks.values()))
    if not common:
        raise ShotsError("gap --from-store: the models answered no problem in common")
    category = {p.id: p.category or "all" for p in store.problems()}
    rows = []
    for (model, role), by_problem in sorted(marks.items()):
        per_task: dict = defaultdict(list)
        for pid in common:
            per_task[category.get(pid, "all")] += by_problem[pid]
        for task, ok in sorted(per_task.items()):
            exact = Fraction(100 * sum(ok), len(ok))
            rows.append(ScoreRow(task=task, model=model, role=role, accuracy=float(exact), exact=exact))
    shots = newest.params.get("shots")
    return rows, [
        f"{shots}-shot prompt (shots {setting[1]}), {len(common)} problems answered by all {len(marks)} models"
    ]
