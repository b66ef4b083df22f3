"""Data-model compatibility: tailor's form of the DMC metric and the selections it drives.

The DMC study scores each trace by quality Q, relative difficulty D for this student, and
the student's capability C, and interpolates, as C grows, from a metric that favours
high-quality *hard* traces to one that favours high-quality *moderate* ones. Our copy of
the paper lost its fitted functional forms, so this is tailor's form, every constant in
``[dmc]`` (app/config.py):

    q in [0, 1]  the judge's rating, normalised (or the offline stand-in's share of checks)
    d in [0, 1]  the trace's difficulty score ([dmc] difficulty: IFD, CPPL or PPL) as a
                 percentile rank in the pool being selected from (0 = easiest)
    c in [0, 1]  the student state's capability (see `relative_capability`)

    f_low(q, d)  = q**a * d                                   rises with quality and difficulty
    f_high(q, d) = q**a * exp(-((d - moderate) / width)**2 / 2)  peaks at moderate difficulty
    phi(c)       = a logistic in c (phi_slope, phi_mid), rescaled so phi(0) = 0 and phi(1) = 1
    DMC          = (1 - phi(c)) * f_low + phi(c) * f_high

At c = 0 and a = 1 it ranks like the CAR-style product q * d; the capability is what makes
it DMC. `tailor dmc fit` checks the form against measured distillation results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The selections export and sweeps offer; dmc-dynamic selects like dmc before the first
# epoch, then again before every epoch inside training (mlx_backend/reselect.py).
METHODS = ("full", "quality", "difficulty", "car", "dmc", "dmc-dynamic")
DEFAULT_TOP = 12.5  # percent: the DMC study's main setting (also 10 and 7.5)


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank in [0, 1] (ties share their mean rank); one value ranks 0.5."""
    from scipy.stats import rankdata  # scipy loads in ~0.3 s; the CLI imports this module

    if len(values) == 1:
        return [0.5]
    ranks = rankdata(values, method="average")
    return [(r - 1) / (len(values) - 1) for r in ranks]


def phi(c: float, slope: float, mid: float) -> float:
    def s(x: float) -> float:
        return 1 / (1 + math.exp(-slope * (x - mid)))

    lo, hi = s(0.0), s(1.0)
    return (s(min(max(c, 0.0), 1.0)) - lo) / (hi - lo)


def f_low(q: float, d: float, power: float) -> float:
    return q**power * d


def f_high(q: float, d: float, power: float, moderate: float, width: float) -> float:
    return q**power * math.exp(-(((d - moderate) / width) ** 2) / 2)


def dmc(q: float, d: float, c: float, cfg) -> float:
    """DMC(q, d, c) with the constants of a `DmcConfig`."""
    w = phi(c, cfg.phi_slope, cfg.phi_mid)
    return (1 - w) * f_low(q, d, cfg.quality_power) + w * f_high(q, d, cfg.quality_power, cfg.moderate, cfg.width)


def relative_capability(absolute: float, bounds: tuple[float, float] | None) -> float:
    """C in [0, 1] from the mean log-likelihood per token of the placement traces: linear
    between [dmc] capability_bounds when set, else exp(C), the per-token likelihood (which
    needs no constant and is comparable across projects)."""
    if bounds is None:
        return math.exp(absolute)
    lo, hi = bounds
    return min(max((absolute - lo) / (hi - lo), 0.0), 1.0)


def values(method: str, q: Sequence[float], d: Sequence[float], c: float | None, cfg) -> list[float]:
    """Each trace's value under a selection method (higher is kept first)."""
    if method == "quality":
        return list(q)
    if method == "difficulty":
        return list(d)
    if method == "car":
        return [qi * di for qi, di in zip(q, d)]
    if method in ("dmc", "dmc-dynamic"):
        if c is None:
            raise ValueError("dmc needs the student's capability")
        return [dmc(qi, di, c, cfg) for qi, di in zip(q, d)]
    if method == "full":
        return [1.0] * len(q)
    raise ValueError(f"unknown selection method {method!r} (expected one of {', '.join(METHODS)})")


def top(ids: Sequence[int], vals: Sequence[float], percent: float) -> dict[int, float]:
    """The top ``percent`` % of ids by value (at least one)."""
    return top_n(ids, vals, max(1, math.ceil(len(ids) * percent / 100)))


def top_n(ids: Sequence[int], vals: Sequence[float], n: int) -> dict[int, float]:
    """The ``n`` ids of highest value, ties broken by id for a reproducible cut."""
    order = sorted(range(len(ids)), key=lambda i: (-vals[i], ids[i]))
    return {ids[i]: vals[i] for i in order[:n]}
