"""Calibration and power of the headline test, side by side for 1/3/5 seeds × 30/100/500 problems.

    python benchmarks/stats_calibration.py [--reps 2000] [--coverage-reps 300]

For each size, simulated with app.calibration (problems of varied difficulty, no effect
unless stated):
  size mid-p   how often the headline test (mid-p, as the report uses) rejects at α = 0.05
               with no effect — should be ≈ 0.05, inside [0.03, 0.07]
  size conv.   the same for the conventional permutation p (the observed atom counted
               whole): conservative on small sets, which is why the report uses mid-p
  power +8     how often a true +8-point effect is found
  MDE          the mean minimum detectable effect the report prints (computed on no-effect data), and
  power@MDE    how often an effect of exactly that size is found: should be ≈ 0.80
  Holm FWER    three no-effect configurations against one base, Holm-adjusted: how often
               any is rejected
  CI cover     how often the Δ interval holds the true Δ (0), with no seed effect, and
  +seed eff.   when each trained seed's adapter moves every problem by its own ±3 points
               (a training-seed effect of mean 0: the procedure changes nothing on average,
               but any one set of seeds does) — the case the two-level bootstrap is for
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.calibration import family_rejection_rate, outcomes, problem_probabilities, shifted  # noqa: E402
from app.stats import delta_interval, min_detectable_effect, sign_flip_test  # noqa: E402

ALPHA = 0.05
SEED_EFFECT = 0.03


def null_rates(n: int, seeds: int, reps: int, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    mid = conv = 0
    mdes = []
    for _ in range(reps):
        p = problem_probabilities(rng, n)
        base, other = outcomes(rng, p, seeds), outcomes(rng, p, seeds)
        t = sign_flip_test(base, other)
        mid += t.p is not None and t.p < ALPHA
        conv += t.p_conventional is not None and t.p_conventional < ALPHA
        m = min_detectable_effect(base, other, alpha=ALPHA)
        if m is not None:
            mdes.append(m)
    return mid / reps, conv / reps, float(np.mean(mdes))


def power(n: int, seeds: int, reps: int, delta: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        p = problem_probabilities(rng, n)
        t = sign_flip_test(outcomes(rng, p, seeds), outcomes(rng, shifted(p, delta), seeds))
        hits += t.p is not None and t.p < ALPHA
    return hits / reps


def seed_shifted(p: np.ndarray, effect: float) -> np.ndarray:
    """p moved by exactly `effect` on average, up in proportion to room, down to mass."""
    return shifted(p, effect) if effect >= 0 else p * (1 + effect / p.mean())


def coverage(n: int, seeds: int, reps: int, seed: int, seed_effect: float = 0.0) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(reps):
        p = problem_probabilities(rng, n)
        signs = rng.choice([-1.0, 1.0], size=seeds) if seed_effect else np.zeros(seeds)
        other = np.vstack([outcomes(rng, seed_shifted(p, seed_effect * sgn), 1) for sgn in signs])
        ci = delta_interval(outcomes(rng, p, seeds), other, paired=True, n_boot=1000, seed=i)
        hits += ci.low <= 0 <= ci.high
    return hits / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--coverage-reps", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(
        f"no-effect and effect simulations, α = {ALPHA}, {args.reps} repetitions each "
        f"(standard error of a rate near 0.05: ±{np.sqrt(0.05 * 0.95 / args.reps):.3f})\n"
    )
    head = (
        f"{'problems':>8} {'seeds':>5} | {'size mid-p':>10} {'size conv.':>10} | {'power +8':>8} "
        f"{'MDE pts':>7} {'power@MDE':>9} | {'Holm FWER':>9} | {'CI cover':>8} {'+seed eff.':>10}"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for n in (30, 100, 500):
        for seeds in (1, 3, 5):
            s = 1000 * n + seeds
            mid, conv, mde = null_rates(n, seeds, args.reps, s)
            pw = power(n, seeds, args.reps // 2, 0.08, s + 1)
            at_mde = power(n, seeds, args.reps // 2, mde, s + 2)
            fwer = family_rejection_rate(n, seeds, args.reps // 2, configs=3, seed=s + 3)
            cover = coverage(n, seeds, args.coverage_reps, s + 4)
            cover_seed = coverage(n, seeds, args.coverage_reps, s + 5, seed_effect=SEED_EFFECT)
            ok &= 0.03 <= mid <= 0.07
            print(
                f"{n:>8} {seeds:>5} | {mid:>10.3f} {conv:>10.3f} | {pw:>8.3f} {100 * mde:>7.1f} {at_mde:>9.3f} | "
                f"{fwer:>9.3f} | {cover:>8.3f} {cover_seed:>10.3f}"
            )
    print(
        f"\nheadline size inside [0.03, 0.07] at every size: {'yes' if ok else 'NO'}  "
        f"({time.perf_counter() - t0:.0f} s)"
    )


if __name__ == "__main__":
    main()
