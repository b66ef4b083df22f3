"""Simulated evaluations for checking the headline test's size and power (tests, benchmarks).

Problems differ in difficulty: problem i is answered right with probability p_i, drawn
once per problem set from Beta(0.5, 0.8) (mean 0.38, many problems nearly always or
never solved, as on real sets). Every seed of every side answers independently. With no
effect both sides share p_i; with an effect of δ points the other side's probability is
p_i + δ (1 − p_i) / mean(1 − p), which raises the mean by exactly δ and stays below 1.
"""

from __future__ import annotations

import numpy as np


def problem_probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.beta(0.5, 0.8, size=n)


def shifted(p: np.ndarray, delta: float) -> np.ndarray:
    return np.clip(p + delta * (1 - p) / (1 - p).mean(), 0, 1)


def outcomes(rng: np.random.Generator, p: np.ndarray, seeds: int) -> np.ndarray:
    """seeds × problems 0/1 outcomes."""
    return (rng.random((seeds, len(p))) < p).astype(np.int64)


def rejection_rate(
    n_problems: int,
    seeds: int,
    reps: int,
    *,
    delta: float = 0.0,
    alpha: float = 0.05,
    base_seeds: int | None = None,
    seed: int = 0,
) -> float:
    """How often the headline test of app.comparison rejects at alpha (paired when
    base_seeds is None, else unpaired with that many base seeds)."""
    from app.stats import sign_flip_test, within_problem_test

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        p = problem_probabilities(rng, n_problems)
        base = outcomes(rng, p, base_seeds or seeds)
        other = outcomes(rng, shifted(p, delta), seeds)
        t = sign_flip_test(base, other) if base_seeds is None else within_problem_test(base, other)
        hits += t.p < alpha
    return hits / reps


def family_rejection_rate(
    n_problems: int, seeds: int, reps: int, *, configs: int = 3, alpha: float = 0.05, seed: int = 0
) -> float:
    """How often at least one of `configs` configurations with no effect, each compared with
    the same base, is rejected after Holm's adjustment (the family-wise error rate)."""
    from app.stats import holm, sign_flip_test

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        p = problem_probabilities(rng, n_problems)
        base = outcomes(rng, p, seeds)
        ps = [sign_flip_test(base, outcomes(rng, p, seeds)).p for _ in range(configs)]
        hits += any(a is not None and a < alpha for a in holm(ps))
    return hits / reps
