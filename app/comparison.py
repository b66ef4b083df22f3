"""One configuration against its reference (the base, or a sweep's main cell), on the same problems.

`compare` is what every row of the report comes from. The headline test is problem-level
and valid at any spread (app.stats: a sign-flip permutation test when the seeds pair up,
exact McNemar with one seed, a within-problem permutation test when they do not); the
seed-level t-test is reported beside it; Δ's interval is a BCa bootstrap over seeds and
problems; the minimum detectable effect says how large a change this test set could see.
Adjusting p for multiplicity needs the whole family, so it happens in app.results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.stats import (
    Interval,
    McNemarResult,
    PermutationTest,
    StatsError,
    Summary,
    TestResult,
    _check_boot,
    _matrix,
    _ToDict,
    delta_interval,
    mcnemar,
    min_detectable_effect,
    paired_t,
    seed_summary,
    sign_flip_test,
    welch_t,
    within_problem_test,
)


@dataclass
class Side(_ToDict):
    label: str
    seeds: list[str]
    accuracies: list[float]
    summary: Summary  # its CI is the seed-to-seed spread
    correct: list[list[int]]  # per seed, per problem: the inputs, to recompute anything


@dataclass
class SeedMcNemar(_ToDict):
    seed: str
    result: McNemarResult


@dataclass
class Comparison(_ToDict):
    """`other` − `reference`. Accuracies and Δ are fractions in [0, 1].

    * paired: every seed of `other` was also evaluated for `reference`, so outcomes pair
      by (seed, problem); `seeds_note` says when they only partly overlap and so do not.
    * test: the headline problem-level test (see app.stats.PermutationTest).
    * seed_test: paired t (or Welch t unpaired) over seed accuracies; undefined (p None)
      with one seed or no spread.
    * flips: gained = right in `other` and wrong in `reference`, lost = the reverse, counted
      over (seed, problem) pairs when paired, over problems' seed means when not.
    * mcnemar: per paired seed, detail only — not a test of the configuration.
    * mde: the minimum detectable |Δ| at 80 % power and α (unadjusted).
    """

    reference: Side
    other: Side
    n_problems: int
    paired: bool
    seeds_note: str | None
    delta: float
    delta_ci: Interval
    test: PermutationTest
    seed_test: TestResult
    flips: dict
    mcnemar: list[SeedMcNemar]
    mde: float | None
    alpha: float
    n_boot: int
    boot_seed: int


def _is_run(x) -> bool:
    return isinstance(x, (Sequence, np.ndarray)) and not isinstance(x, (str, bytes))


def by_seed(runs, what: str) -> dict[str, list]:
    """{seed label: 0/1 list}; a list of lists is labelled 0, 1, ...; a flat list is one run "0"."""
    if isinstance(runs, Mapping):
        return {str(k): list(v) for k, v in runs.items()}
    runs = list(runs)
    if runs and not _is_run(runs[0]):
        runs = [runs]
    return {str(i): list(v) for i, v in enumerate(runs)}


def _side(label: str, runs: dict[str, list], m: np.ndarray, alpha: float) -> Side:
    accs = [float(x) for x in m.mean(axis=1)]
    return Side(label, list(runs), accs, seed_summary(accs, 1 - alpha), m.tolist())


def compare(
    reference,
    other,
    *,
    reference_label: str = "base",
    label: str = "distilled",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Comparison:
    """reference, other: {seed label: per-problem correctness} (or list forms, see by_seed),
    every list over the same problems in the same order."""
    _check_boot(n_boot, alpha)
    ref_runs, oth_runs = by_seed(reference, reference_label), by_seed(other, label)
    r_all, o = _matrix(ref_runs, reference_label), _matrix(oth_runs, label)
    if r_all.shape[1] != o.shape[1]:
        raise StatsError(f"{label} and {reference_label} cover different problems: {o.shape[1]} vs {r_all.shape[1]}")
    n = o.shape[1]
    paired = set(oth_runs) <= set(ref_runs)
    if paired:
        keep = list(oth_runs)
        r = np.array([ref_runs[s] for s in keep], dtype=np.int64)
        ref_used = {s: ref_runs[s] for s in keep}
        extra = sorted(set(ref_runs) - set(oth_runs))
        note = f"{reference_label} seeds {', '.join(extra)} not used: {label} has no runs at them" if extra else None
        test = sign_flip_test(r, o, seed=seed)
        seed_test = paired_t(r.mean(axis=1).tolist(), o.mean(axis=1).tolist())
        gained, lost = int(((o == 1) & (r == 0)).sum()), int(((o == 0) & (r == 1)).sum())
        flips = {"gained": gained, "lost": lost, "unit": "seed × problem pairs"}
        detail = [SeedMcNemar(s, mcnemar(ref_runs[s], oth_runs[s])) for s in keep]
    else:
        r, ref_used = r_all, ref_runs
        note = (
            f"seeds do not pair up ({reference_label}: {', '.join(ref_runs)}; {label}: {', '.join(oth_runs)}): "
            f"compared unpaired; evaluate {reference_label} at every seed of {label} to pair them"
        )
        test = within_problem_test(r, o, seed=seed)
        seed_test = welch_t(r.mean(axis=1).tolist(), o.mean(axis=1).tolist())
        diff = o.mean(axis=0) - r.mean(axis=0)
        flips = {"gained": int((diff > 0).sum()), "lost": int((diff < 0).sum()), "unit": "problems (seed means)"}
        detail = []
    ref_side = _side(reference_label, ref_used, r, alpha)
    oth_side = _side(label, oth_runs, o, alpha)
    delta = float(o.mean() - r.mean())
    ci = delta_interval(r, o, paired=paired, n_boot=n_boot, seed=seed, alpha=alpha)
    mde = min_detectable_effect(r, o, alpha=alpha)
    return Comparison(
        ref_side, oth_side, n, paired, note, delta, ci, test, seed_test, flips, detail, mde, alpha, int(n_boot), seed
    )
