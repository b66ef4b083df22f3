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
