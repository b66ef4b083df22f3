"""Aggregation and significance tests for comparing a distilled student with its baseline.

Pure functions on plain lists: no store, no I/O. `tailor eval` / `tailor report` call
`compare`; the smaller functions are public so a report can show each number's origin.

Conventions (why they are what they are):

* Accuracies are fractions in [0, 1] wherever this module computes them from per-problem
  correctness; the report turns them into percent. `seed_summary` and the t-tests work
  on whatever scale they are given.
* Per-problem correctness lists are aligned by problem: index i is the same problem in
  every list. Items that failed to run (e.g. a prompt longer than the context) must be
  passed as wrong, not dropped, or the pairing breaks.
* Every result is a dataclass whose `to_dict()` holds plain JSON numbers only — no numpy
  types, no NaN or infinity (those become None) — plus the inputs needed to recompute it.
* User-reachable mistakes (mismatched lengths, empty input, non-0/1 correctness) raise
  StatsError, a TailorError, so the CLI prints one line; it is also a ValueError.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps

from app.errors import TailorError

# Spread below this (relative to the values' size) counts as "all identical": float
# noise such as mean([0.1]*3) != 0.1 otherwise turns a degenerate t-test into t = -1e16.
_ZERO_SPREAD = 1e-12
# McNemar: exact binomial test below this many discordant pairs, chi-square above.
MCNEMAR_EXACT_BELOW = 25


class StatsError(TailorError, ValueError):
    """Inputs that cannot be compared (lengths differ, nothing to test, not 0/1)."""


def json_safe(obj):
    """Plain-JSON copy: numpy scalars -> Python numbers, NaN / ±inf -> None."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


class _ToDict:
    def to_dict(self) -> dict:
        return json_safe(asdict(self))


def _floats(values, what: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise StatsError(f"{what}[{i}]: expected a number, got {v!r}") from None
        if not math.isfinite(x):
            raise StatsError(f"{what}[{i}]: expected a finite number, got {v!r}")
        out.append(x)
    return out


def _correct(values, what: str) -> list[int]:
    """0/1 per problem; bools, ints and floats equal to 0 or 1 are accepted."""
    out = []
    for i, v in enumerate(values):
        if v is None or isinstance(v, str) or v not in (0, 1):
            raise StatsError(f"{what}[{i}]: correctness must be true/false or 0/1, got {v!r}")
        out.append(int(v))
    return out


def _identical(xs: Sequence[float]) -> bool:
    scale = max(1.0, max(abs(x) for x in xs))
    return max(xs) - min(xs) <= _ZERO_SPREAD * scale


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_ZERO_SPREAD, abs_tol=_ZERO_SPREAD)


# -- summaries over seeds --------------------------------------------------------------


@dataclass
class Summary(_ToDict):
    """Mean ± sample std over seeds, with a t-distribution CI of the mean.

    n = 1: std, sem and the CI are None — a sample std of one value is undefined, and
    0 would claim a precision nobody measured. Zero spread (n >= 2, all equal) gives
    std 0 and a zero-width CI, which is what the data say.
    """

    n: int
    mean: float
    std: float | None
    sem: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    values: list[float]


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> Summary:
    xs = _floats(values, "values")
    if not xs:
        raise StatsError("no values to summarise")
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must be between 0 and 1, got {confidence}")
    n, mean = len(xs), statistics.fmean(xs)
    if n < 2:
        return Summary(n, mean, None, None, None, None, confidence, xs)
    std = 0.0 if _identical(xs) else statistics.stdev(xs)  # ddof = 1
    sem = std / math.sqrt(n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return Summary(n, mean, std, sem, mean - half, mean + half, confidence, xs)


# -- t-tests over seeds ----------------------------------------------------------------


@dataclass
class TestResult(_ToDict):
    """A two-sided t-test. `statistic` is None when it is undefined or infinite.

    Degenerate cases, decided here rather than passing scipy's NaN on:
    * fewer than 2 values: statistic, p None (df 0) — nothing to test;
    * zero variance (all values, or all paired differences, identical): p = 0.0 if the
      mean differs from the reference (t would be ±inf; the limit of the test), p = 1.0
      and t = 0.0 if it equals it. `note` says so.
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    n: int
    df: int
    statistic: float | None
    p: float | None
    mean_difference: float
    note: str | None = None
    inputs: dict = field(default_factory=dict)


def _t_test(name: str, diffs: list[float], run, inputs: dict) -> TestResult:
    """Shared degenerate-case handling for tests on differences from a reference."""
    n = len(diffs)
    mean_diff = statistics.fmean(diffs)
    if n < 2:
        return TestResult(name, n, 0, None, None, mean_diff, "needs at least 2 seeds", inputs)
    if _identical(diffs):
        if _close(mean_diff, 0.0):
            return TestResult(name, n, n - 1, 0.0, 1.0, mean_diff,
                              "zero variance and no difference: p = 1", inputs)
        return TestResult(name, n, n - 1, None, 0.0, mean_diff,
                          "zero variance and a nonzero difference: t = ±inf, p = 0", inputs)
    res = run()
    return TestResult(name, n, n - 1, float(res.statistic), float(res.pvalue), mean_diff, None, inputs)


def one_sample_t(seed_accuracies: Sequence[float], base_accuracy: float) -> TestResult:
    """Are the seeds' accuracies different from the base's? (scipy.stats.ttest_1samp)

    The base is treated as a fixed number, as in the O'Bryan study; its own sampling
    noise over problems is what McNemar and the bootstrap account for.
    """
    xs = _floats(seed_accuracies, "seed_accuracies")
    (base,) = _floats([base_accuracy], "base_accuracy")
    if not xs:
        raise StatsError("no seed accuracies to test")
    return _t_test("one-sample t", [x - base for x in xs],
                   lambda: sps.ttest_1samp(xs, base),
                   {"values": xs, "reference": base})


def paired_t(a_by_seed: Sequence[float], b_by_seed: Sequence[float]) -> TestResult:
    """Paired t-test of b − a over the same seeds, in the same order (scipy.stats.ttest_rel)."""
    a, b = _floats(a_by_seed, "a_by_seed"), _floats(b_by_seed, "b_by_seed")
    if len(a) != len(b):
        raise StatsError(f"paired t-test needs the same seeds on both sides: {len(a)} vs {len(b)} values")
    if not a:
        raise StatsError("no seed accuracies to test")
    return _t_test("paired t", [y - x for x, y in zip(a, b)],
                   lambda: sps.ttest_rel(b, a),
                   {"a": a, "b": b})


# -- bootstrap over problems -----------------------------------------------------------


def _check_boot(n_boot: int, alpha: float) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise StatsError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")


def _boot_means(values: Sequence[float], n_boot: int, seed: int) -> np.ndarray:
    """Means of n_boot resamples (with replacement) of `values`.

    Resampling n items with replacement is the same, in distribution, as drawing how
    often each item is picked from Multinomial(n, 1/n each); grouping items with equal
    values gives Multinomial(n, share of each distinct value). Per-problem correctness has
    2 distinct values (3 for paired differences), so this is exact and costs
    O(n_boot × distinct values) instead of an (n_boot × n) index matrix.
    """
    x = np.asarray(values, dtype=float)
    distinct, counts = np.unique(x, return_counts=True)
    rng = np.random.default_rng(seed)
    picks = rng.multinomial(len(x), counts / len(x), size=int(n_boot))
    return picks @ distinct / len(x)


def _percentile_ci(means: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _per_problem(values, what: str) -> list[float]:
    """0/1 correctness, or a per-problem fraction of seeds correct (compare uses those)."""
    xs = _floats(values, what)
    for i, x in enumerate(xs):
        if not 0 <= x <= 1:
            raise StatsError(f"{what}[{i}]: expected correctness in [0, 1], got {x!r}")
    return xs


def bootstrap_ci(correct: Sequence, n_boot: int = 10_000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI of accuracy over problems; the same seed gives the same CI."""
    _check_boot(n_boot, alpha)
    xs = _per_problem(correct, "correct")
    if not xs:
        raise StatsError("no problems to bootstrap")
    return _percentile_ci(_boot_means(xs, n_boot, seed), alpha)


def bootstrap_diff_ci(base_correct: Sequence, other_correct: Sequence, n_boot: int = 10_000,
                      seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Paired percentile bootstrap CI of accuracy(other) − accuracy(base) over problems.

    Paired: each resample picks problems, and a picked problem brings both its base and
    its other result — i.e. the bootstrap of per-problem differences.
    """
    _check_boot(n_boot, alpha)
    a, b = _per_problem(base_correct, "base_correct"), _per_problem(other_correct, "other_correct")
    if len(a) != len(b):
        raise StatsError(f"paired bootstrap needs the same problems on both sides: {len(a)} vs {len(b)}")
    if not a:
        raise StatsError("no problems to bootstrap")
    return _percentile_ci(_boot_means([y - x for x, y in zip(a, b)], n_boot, seed), alpha)


# -- McNemar on paired per-problem correctness -----------------------------------------


@dataclass
class McNemarResult(_ToDict):
    """2×2 table of base vs other on the same problems, and the McNemar p-value.

    method: "exact" (two-sided binomial test of base_only vs Binomial(b + c, 1/2)) when
    b + c < 25; "chi2" (1 df, continuity correction, (|b − c| − 1)² / (b + c) with the
    |b − c| − 1 clipped at 0 so b == c gives p = 1) otherwise; "none" when b + c == 0
    (the models never disagree: p = 1.0).
    """

    n: int
    both_right: int
    base_only: int
    other_only: int
    both_wrong: int
    method: str
    statistic: float | None
    p: float


def mcnemar(base_correct: Sequence, other_correct: Sequence) -> McNemarResult:
    a, b = _correct(base_correct, "base_correct"), _correct(other_correct, "other_correct")
    if len(a) != len(b):
        raise StatsError(f"McNemar needs the same problems on both sides: {len(a)} vs {len(b)}")
    both = sum(1 for x, y in zip(a, b) if x and y)
    base_only = sum(1 for x, y in zip(a, b) if x and not y)
    other_only = sum(1 for x, y in zip(a, b) if y and not x)
    neither = len(a) - both - base_only - other_only
    disc = base_only + other_only
    if disc == 0:
        method, stat, p = "none", None, 1.0
    elif disc < MCNEMAR_EXACT_BELOW:
        method, stat = "exact", None
        p = float(sps.binomtest(base_only, disc, 0.5).pvalue)
    else:
        method = "chi2"
        stat = max(abs(base_only - other_only) - 1, 0) ** 2 / disc
        p = float(sps.chi2.sf(stat, 1))
    return McNemarResult(len(a), both, base_only, other_only, neither, method, stat, min(p, 1.0))


# -- the comparison the report shows ---------------------------------------------------


@dataclass
class SeedMcNemar(_ToDict):
    seed: str
    base_seed: str | None
    result: McNemarResult


@dataclass
class Side(_ToDict):
    """One configuration: per-seed accuracies, their summary and a problem-bootstrap CI."""

    label: str
    seeds: list[str]
    accuracies: list[float]
    summary: Summary  # its CI is the seed-to-seed spread
    # Resamples problems of the per-problem mean over seeds: the uncertainty from which
    # problems were drawn, the part a single run's accuracy still has.
    bootstrap_ci: tuple[float, float]
    correct: list[list[int]]  # per seed, per problem: the inputs, to recompute anything


@dataclass
class Comparison(_ToDict):
    """Distilled vs base on the same problems. Accuracies are fractions in [0, 1].

    * seed_test: one-sample t of the distilled seeds' accuracies vs the base accuracy
      when the base is one run; a paired t by seed label when the base has the same seeds.
    * mcnemar: base vs each distilled seed separately (paired by seed label when the base
      has seeds), all kept; mcnemar_median_p summarises them. Chosen over a seed-majority
      vote, which is an ensemble nobody deploys and is undefined on ties.
    * delta_ci: paired bootstrap over problems of (per-problem mean correctness over the
      distilled seeds) − (the same for the base); its centre is exactly `delta`.
    * degraded: the distilled mean is below the base and p < alpha, where p is the seed
      test's, or — with a single distilled seed, where no t-test exists — McNemar's
      (p_source says which). worse: below the base at all, significant or not.
    """

    base: Side
    distilled: Side
    n_problems: int
    delta: float
    delta_ci: tuple[float, float]
    seed_test: TestResult
    mcnemar: list[SeedMcNemar]
    mcnemar_median_p: float
    alpha: float
    p_value: float
    p_source: str
    worse: bool
    degraded: bool
    n_boot: int
    boot_seed: int


def _is_run(x) -> bool:
    return isinstance(x, (Sequence, np.ndarray)) and not isinstance(x, (str, bytes))


def _by_seed(runs, what: str) -> dict[str, list[int]]:
    """{seed label: 0/1 list}; a flat list of correctness is one run labelled "0"."""
    if isinstance(runs, Mapping):
        items = [(str(k), v) for k, v in runs.items()]
    else:
        runs = list(runs)
        if runs and not _is_run(runs[0]):
            runs = [runs]  # one run: a flat list of per-problem correctness
        items = [(str(i), v) for i, v in enumerate(runs)]
    if not items:
        raise StatsError(f"{what}: no runs")
    return {k: _correct(v, f"{what}[{k}]") for k, v in items}


def _side(label: str, runs: dict[str, list[int]], n_boot: int, seed: int, alpha: float) -> Side:
    accs = [statistics.fmean(v) for v in runs.values()]
    per_problem = np.mean(np.array(list(runs.values()), dtype=float), axis=0)
    return Side(label, list(runs), accs, seed_summary(accs, 1 - alpha),
                bootstrap_ci(per_problem, n_boot, seed, alpha), list(runs.values()))


def compare(base_correct, distilled_correct_by_seed, *, base_label: str = "base",
            label: str = "distilled", n_boot: int = 10_000, seed: int = 0,
            alpha: float = 0.05) -> Comparison:
    """Compare a distilled configuration (several training seeds) with its own baseline.

    base_correct: one run's per-problem correctness (list of bool/0/1), or several runs
    as a list of lists or {seed: list}. distilled_correct_by_seed: {seed: list} or a list
    of lists (seeds labelled 0, 1, ...). All lists cover the same problems in the same order.
    """
    _check_boot(n_boot, alpha)
    base_runs = _by_seed(base_correct, "base_correct")
    dist_runs = _by_seed(distilled_correct_by_seed, "distilled_correct_by_seed")
    sizes = {len(v) for v in base_runs.values()} | {len(v) for v in dist_runs.values()}
    if len(sizes) != 1:
        raise StatsError(f"every run must cover the same problems; got lengths {sorted(sizes)}")
    (n,) = sizes
    if n == 0:
        raise StatsError("no problems to compare")

    base = _side(base_label, base_runs, n_boot, seed, alpha)
    dist = _side(label, dist_runs, n_boot, seed, alpha)
    paired_seeds = len(base_runs) > 1
    if paired_seeds and set(base_runs) != set(dist_runs):
        raise StatsError(f"base seeds {sorted(base_runs)} and {label} seeds {sorted(dist_runs)} differ; "
                         "evaluate the base with the same seeds, or pass a single base run")

    if paired_seeds:
        seed_test = paired_t([statistics.fmean(base_runs[s]) for s in dist_runs], dist.accuracies)
        pairs = [(s, s) for s in dist_runs]
    else:
        seed_test = one_sample_t(dist.accuracies, base.summary.mean)
        only = next(iter(base_runs))
        pairs = [(s, only) for s in dist_runs]
    tests = [SeedMcNemar(s, b, mcnemar(base_runs[b], dist_runs[s])) for s, b in pairs]
    median_p = float(statistics.median(t.result.p for t in tests))

    base_pp = np.mean(np.array(list(base_runs.values()), dtype=float), axis=0)
    dist_pp = np.mean(np.array(list(dist_runs.values()), dtype=float), axis=0)
    delta = dist.summary.mean - base.summary.mean
    delta_ci = bootstrap_diff_ci(base_pp, dist_pp, n_boot, seed, alpha)

    if seed_test.p is not None:
        p, source = seed_test.p, seed_test.test
    else:  # one distilled seed: McNemar is the only test there is
        p, source = median_p, "mcnemar"
    worse = delta < 0 and not _close(delta, 0.0)
    return Comparison(base, dist, n, delta, delta_ci, seed_test, tests, median_p, alpha,
                      p, source, worse, worse and p < alpha, int(n_boot), seed)
