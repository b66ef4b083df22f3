"""A fixed, deterministic demo project for the TUI tests and snapshots (fixed ids and
timestamps, nothing depends on the clock), plus a fake MLX job for run/cancel tests."""

from __future__ import annotations

import threading
from pathlib import Path

from app.cli import main
from app.config import DB_NAME
from app.jobs import JobOutcome
from app.records import Attempt, Dataset, DatasetItem, GradeRecord, Problem, Run, Trace
from app.store import Store

T = "2025-01-01T00:00:00+00:00"
CATS = [("arithmetic", "main"), ("algebra", "main"), ("geometry", "speed")]
GRADES = ["easy", "medium", "hard"]


def build_demo(d: Path, n: int = 12) -> Path:
    """A project with n problems (two thirds train), diagnosed, graded, taught and one run."""
    assert main(["init", str(d)]) == 0
    with Store(d / DB_NAME) as s:
        problems = []
        for i in range(n):
            cat, sec = CATS[i % 3]
            problems.append(
                Problem(
                    id=f"p{i:03d}",
                    question=f"What is {i} times 3, plus {i % 5}?",
                    answer=str(3 * i + i % 5),
                    solution=f"{i} * 3 = {3 * i}; plus {i % 5}.",
                    category=cat,
                    section=sec,
                    difficulty=1 + i % 3,
                    split="test" if i % 3 == 2 else "train",
                    source="demo",
                )
            )
        s.insert_problems(problems)
        train = [(i, p) for i, p in enumerate(problems) if p.split == "train"]
        for j, (i, p) in enumerate(train):
            right = i % 4 != 1
            aid = s.insert_attempt(
                Attempt(
                    key=f"k{i}",
                    problem_id=p.id,
                    purpose="diagnose",
                    model="tiny",
                    prompt_hash="h",
                    params={},
                    seed=i,
                    text=f"Compute {i} * 3 then add. The answer is \\boxed{{{p.answer if right else 0}}}",
                    extracted=p.answer if right else "0",
                    correct=right,
                    n_tokens=20 + i,
                    created_at=T,
                )
            )
            s.insert_grade(
                GradeRecord(
                    problem_id=p.id,
                    attempt_id=aid,
                    grade=GRADES[j % 3],
                    answer_correct=right,
                    judge_grade=GRADES[j % 3],
                    disagreement=i == 4,
                    rationale=f"steps checked for {p.id}",
                    provider="rules",
                    created_at=T,
                )
            )
        s.create_dataset(
            Dataset(
                name="demo",
                strategy="adaptive",
                k=3,
                seed=0,
                params={},
                created_at=T,
                items=[
                    DatasetItem(problem_id="p000", grade="easy", route="short"),
                    DatasetItem(problem_id="p001", grade="medium", route="short"),
                    DatasetItem(problem_id="p003", grade="hard", route="long"),
                ],
            )
        )
        s.upsert_trace(
            Trace(
                problem_id="p000",
                role="short",
                provider="reference",
                text="0 * 3 = 0. \\boxed{0}",
                extracted="0",
                verified=True,
                created_at=T,
            )
        )
        s.upsert_trace(
            Trace(
                problem_id="p000",
                role="long",
                provider="openai",
                model="teacher-b",
                text="First, multiply 0 by 3... \\boxed{1}",
                extracted="1",
                verified=False,
                reject_reason="answer 1 != reference 0",
                created_at=T,
            )
        )
        s.insert_run(
            Run(
                id="run-demo-s0",
                seed=0,
                config={},
                status="done",
                best_iter=30,
                best_val_loss=1.2,
                stop_reason="patience",
                label="demo/acotd",
                started_at=T,
                finished_at=T,
            )
        )
        for step in range(10, 61, 10):
            s.add_metrics(
                "run-demo-s0",
                step,
                {"train_loss": 3.0 - step / 30, "tokens_per_s": 600.0 + step, "peak_memory_gb": 1.5},
            )
            s.add_metrics("run-demo-s0", step, {"val_loss": 1.2 + abs(step - 30) / 50})
    return d


DEMO_RESULTS = {
    "problem_set": {"split": "test", "benchmark": None, "n": 4, "evaluated": 4},
    "base_model": "tiny",
    "judge": "rules",
    "grades": {"easy": 3, "medium": 3, "hard": 2, "ungraded": 0},
    "configurations": [
        {
            "label": "demo/acotd",
            "sweep": None,
            "tier": "R1",
            "runs": ["run-demo-s0"],
            "seeds": [0, 1],
            "accuracy_by_seed": {"0": 0.75, "1": 0.70},
            "mean": 0.725,
            "std": 0.035,
            "ci": [0.40, 1.0],
            "reference_mean": 0.5,
            "delta": 0.225,
            "delta_ci": [0.1, 0.35],
            "p": 0.02,
            "p_adjusted": 0.04,
            "test": "sign-flip over problems (2 paired seeds)",
            "against": "base",
            "verdict": "better",
            "degraded": False,
            "cotqs": 3.9,
            "reference_cotqs": 3.1,
        },
        {
            "label": "random/acotd",
            "sweep": None,
            "tier": "R1",
            "runs": ["run-r-s0"],
            "seeds": [0, 1],
            "accuracy_by_seed": {"0": 0.25, "1": 0.20},
            "mean": 0.225,
            "std": 0.035,
            "ci": [0.0, 0.6],
            "reference_mean": 0.5,
            "delta": -0.275,
            "delta_ci": [-0.4, -0.15],
            "p": 0.001,
            "p_adjusted": 0.002,
            "test": "sign-flip over problems (2 paired seeds)",
            "against": "base",
            "verdict": "DEGRADED",
            "degraded": True,
            "cotqs": None,
            "reference_cotqs": None,
        },
    ],
    "ablations": [
        {
            "label": "random/acotd",
            "sweep": "demo",
            "tier": "R1",
            "runs": ["run-r-s0"],
            "seeds": [0, 1],
            "mean": 0.225,
            "std": 0.035,
            "reference_mean": 0.725,
            "delta": -0.5,
            "delta_ci": [-0.7, -0.3],
            "p": 0.003,
            "p_adjusted": 0.003,
            "against": "demo/acotd",
            "verdict": "DEGRADED",
            "degraded": True,
            "cotqs": None,
            "reference_cotqs": 3.9,
        },
    ],
    "tiers": [
        {
            "label": "base",
            "tier": t,
            "accuracy": a,
            "std": None,
            "mean_words": w,
            "mean_tokens": w * 1.3,
            "n": 4,
            "seeds": 1,
        }
        for t, a, w in (("R1", 0.5, 220), ("R3", 0.4, 120), ("R6", 0.25, 31))
    ]
    + [
        {
            "label": "demo/acotd",
            "tier": t,
            "accuracy": a,
            "std": 0.02,
            "mean_words": w,
            "mean_tokens": w * 1.3,
            "n": 4,
            "seeds": 2,
        }
        for t, a, w in (("R1", 0.725, 200), ("R3", 0.6, 110), ("R6", 0.42, 30))
    ],
    "categories": [
        {"label": "base", "tier": "R1", "category": "arithmetic", "section": "main", "accuracy": 0.5, "n": 2},
        {"label": "demo/acotd", "tier": "R1", "category": "arithmetic", "section": "main", "accuracy": 1.0, "n": 2},
    ],
    "runs": [
        {
            "id": "run-demo-s0",
            "label": "demo/acotd",
            "seed": 0,
            "status": "done",
            "best_iter": 30,
            "best_val_loss": 1.2,
            "stop_reason": "patience",
        }
    ],
}


class FakeJob:
    """Stands in for MlxJob: answers the first `answer` items, then blocks until cancelled."""

    answer = 2
    reached = threading.Event()  # set once the job waits for cancel; reset per test

    def __init__(self, spec, blas=None):
        self.spec, self.blas = spec, blas
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self, on_event):
        on_event({"event": "start", "model": "fake", "device": "cpu", "dtype": "float32"})
        for item in self.spec["items"][: self.answer]:
            on_event(
                {
                    "event": "result",
                    "id": item["id"],
                    "text": "The answer is \\boxed{0}",
                    "n_tokens": 5,
                    "finish_reason": "stop",
                }
            )
        FakeJob.reached.set()
        self._cancel.wait(10)
        status = "cancelled" if self._cancel.is_set() else "done"
        return JobOutcome(status=status, returncode=130 if status == "cancelled" else 0)
