"""Typed rows the store hands out. Plain pydantic models; no database code here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Split = Literal["train", "valid", "test", "placement"]
SPLITS: tuple[str, ...] = ("train", "valid", "test", "placement")
Grade = Literal["easy", "medium", "hard"]


class Problem(BaseModel):
    id: str
    question: str
    answer: str
    solution: str | None = None
    category: str | None = None
    section: str | None = None
    difficulty: int | None = None
    year: int | None = None
    split: Split = "train"
    source: str = ""


class Attempt(BaseModel):
    id: int | None = None
    key: str
    problem_id: str
    purpose: str
    model: str
    adapter: str | None = None
    run_id: str | None = None
    prompt_hash: str
    params: dict
    seed: int | None = None
    tier: str | None = None
    text: str | None = None
    extracted: str | None = None
    correct: bool | None = None
    n_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    dtype: str | None = None
    blas: str | None = None
    created_at: str | None = None


class ApiCall(BaseModel):
    key: str
    stage: str
    role: str
    provider: str
    base_url: str | None = None
    model: str
    prompt_hash: str | None = None
    request: dict
    status: Literal["ok", "error"]
    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    latency_s: float | None = None
    retries: int = 0
    error: str | None = None
    created_at: str | None = None


class GradeRecord(BaseModel):
    """One grading of a problem's diagnosis attempt. `grade` None = ungraded (see error)."""

    id: int | None = None
    problem_id: str
    attempt_id: int | None = None
    grade: Grade | None = None
    answer_correct: bool | None = None
    logical: bool | None = None
    complete: bool | None = None
    minor_error: bool | None = None
    judge_grade: Grade | None = None  # what the judge said before the combination rules
    disagreement: bool = False
    rationale: str | None = None
    is_override: bool = False
    error: str | None = None
    provider: str
    model: str | None = None
    prompt_hash: str | None = None
    api_call_key: str | None = None
    tries: int = 1  # how many times the judge was asked for this grading (retries of an ungraded one)
    created_at: str | None = None


class DatasetItem(BaseModel):
    problem_id: str
    grade: Grade | None = None
    route: Literal["short", "long"]


class Dataset(BaseModel):
    id: int | None = None
    name: str
    strategy: str
    k: int | None = None
    seed: int | None = None
    params: dict
    items: list[DatasetItem] = []
    created_at: str | None = None


class Trace(BaseModel):
    id: int | None = None
    problem_id: str
    role: Literal["short", "long"]
    variant: int = 0
    provider: str
    model: str = ""
    prompt_hash: str = ""
    api_call_key: str | None = None
    text: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    extracted: str | None = None
    verified: bool | None = None
    consistent: bool | None = None
    reject_reason: str | None = None
    created_at: str | None = None


RunStatus = Literal["running", "done", "interrupted", "failed"]


class Run(BaseModel):
    """One training run (one seed). `config` holds the resolved hyperparameters and the data it saw."""

    id: str
    dataset_id: int | None = None
    seed: int | None = None
    profile: str | None = None
    config: dict
    status: RunStatus = "running"
    best_iter: int | None = None
    best_val_loss: float | None = None
    stop_reason: str | None = None  # patience | max_iters | interrupted | error
    adapter_path: str | None = None
    valid_disjoint_from_test: bool | None = None
    dtype: str | None = None
    blas: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    label: str | None = None  # the configuration this run is one seed of
    sweep: str | None = None

    @property
    def configuration(self) -> str:
        """The configuration a run is one seed of; runs from before labels existed fall
        back to their id without the seed and time (DATASET[-find-stop])."""
        return self.label or self.id.rsplit("-s", 1)[0]


class Metric(BaseModel):
    """One point of a run's curve: kind is train_loss, val_loss, learning_rate, tokens_per_s, ..."""

    run_id: str
    step: int
    kind: str
    value: float
    extra: dict | None = None
