"""Few-shot evaluation for the capacity-gap protocol: one prompt for every model, and the gap from the store."""

import json

import httpx
import pytest
from test_evaluate import FAST, FakeJob, add_problems, add_run, knows

from app.config import parse_config
from app.events import RecordingEvents
from app.pipeline.evaluate import EvalError, evaluate
from app.pipeline.fewshot import ShotsError, fewshot_rows, pick_shots
from app.pipeline.gap import gap_command
from app.records import Problem

TEACHERS = """
[teachers.short]
provider = "openai"
base_url = "https://small.test/v1"
model = "small"
[teachers.long]
provider = "openai"
base_url = "https://big.test/v1"
model = "big"
"""


@pytest.fixture(autouse=True)
def _reset_fake():
    FakeJob.specs, FakeJob.knows = [], {}


def add_shots(store, n=5):
    shots = [
        Problem(
            id=f"s{i}",
            question=f"Shot {i}: what is {i} * 3?",
            answer=str(3 * i),
            solution=f"{i} * 3 = {3 * i}.",
            category="arith",
            split="train",
        )
        for i in range(n)
    ]
    store.insert_problems(shots + [Problem(id="nosol", question="No worked solution here?", answer="1", split="train")])
    return shots


def test_shots_are_a_fixed_draw_of_train_problems_with_a_solution(store):
    add_shots(store)
    first = [p.id for p in pick_shots(store, 3)]
    assert first == [p.id for p in pick_shots(store, 3)] and len(set(first)) == 3 and "nosol" not in first
    with pytest.raises(ShotsError, match="--shots 6: only 5 train problems have a worked solution"):
        pick_shots(store, 6)


def test_every_model_sees_the_same_few_shot_prompt_and_the_gap_reads_it(project, store, tmp_path):
    probs = add_problems(store, 6)
    shots = add_shots(store)
    run = add_run(store, project, tmp_path, 0)
    knows(None, probs[:1])
    knows(run, probs[:3])
    sent = {}

    def teacher(request):
        body = json.loads(request.content)
        model = body["model"]
        question = body["messages"][-1]["content"]
        sent[(model, question)] = body["messages"]
        right = model == "big" or "t00" in question  # big knows all, small one problem
        answer = next(p.answer for p in probs if p.question in question) if right else "-1"
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"Work. The answer is \\boxed{{{answer}}}."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            },
        )

    cfg = parse_config(TEACHERS)
    res = evaluate(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        shots=2,
        teachers=True,
        job_cls=FakeJob,
        transport=httpx.MockTransport(teacher),
        retry=FAST,
    )
    assert res.accuracy["teacher openai big"]["R1"] == 1.0
    assert res.accuracy["teacher openai small"]["R1"] == pytest.approx(1 / 6)
    assert res.accuracy["base"]["R1"] == pytest.approx(1 / 6) and res.rated == 0

    # The student, its adapter and both teachers got identical messages for each problem:
    # system, two worked examples (user / assistant), then the problem.
    student = {
        spec["adapter"]: {i["messages"][-1]["content"]: i["messages"] for i in spec["items"]} for spec in FakeJob.specs
    }
    for p in probs:
        (question,) = [q for q in student[None] if p.question in q]
        same = [
            student[None][question],
            student[run.adapter_path][question],
            sent[("big", question)],
            sent[("small", question)],
        ]
        assert all(m == same[0] for m in same)
        roles = [m["role"] for m in same[0]]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        for user, assistant in (same[0][1:3], same[0][3:5]):  # each shot: its question, its worked answer
            (shot,) = [sh for sh in shots if sh.question in user["content"]]
            assert assistant["content"] == f"{shot.solution}\n\nThe answer is \\boxed{{{shot.answer}}}."
    # The zero-shot results never see these answers.
    assert store.eval_attempts() == []

    rows, notes = fewshot_rows(store)
    acc = {(r.task, r.model, r.role): r.accuracy for r in rows}
    assert acc[("algebra", "big", "teacher")] == 100.0
    assert ("algebra", run.adapter_path, "student") not in acc  # the distilled student is not the baseline
    assert "2-shot prompt" in notes[0] and "6 problems answered by all 3 models" in notes[0]
    out = json.loads(gap_command(None, 30, as_json=True, store=store))
    assert set(out["selected"]) == {"algebra", "arith"}

    # Re-running asks nobody again.
    calls = len(sent)
    FakeJob.specs.clear()
    again = evaluate(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        shots=2,
        teachers=True,
        job_cls=FakeJob,
        transport=httpx.MockTransport(teacher),
        retry=FAST,
    )
    assert (again.generated, len(sent), FakeJob.specs) == (0, calls, [])


def test_bad_few_shot_requests_are_one_line_errors(project, store):
    add_problems(store, 2)
    add_shots(store, 2)
    with pytest.raises(ShotsError, match="--shots 3: only 2"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, shots=3, job_cls=FakeJob)
    with pytest.raises(EvalError, match="main tier only"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, shots=1, tiers=True, job_cls=FakeJob)
    with pytest.raises(ShotsError, match="no few-shot answers yet"):
        gap_command(None, 30, store=store)
