"""Significance tests, intervals and multiplicity corrections on per-problem correctness.

Pure functions on plain lists: no store, no I/O. app.comparison assembles them into the
comparison the report shows; each is public so a reader can recompute any number.

Conventions (why they are what they are):

* Outcomes are 0/1 per problem and per seed: ``{seed label: [0/1 per problem]}``, every
  list aligned by problem. Items that failed to run count as wrong, never dropped, or
  the pairing breaks.
* Nothing here returns p = 0 or p = 1 by decree. Permutation p-values are computed from
  the exact null distribution (or by seeded Monte Carlo, counting the observed value as
  one draw, which is never 0); a t-test whose differences have no spread is "undefined" (p None) with a
  note saying why.
* Every result is a dataclass whose `to_dict()` holds plain JSON numbers only — no numpy
  types, no NaN or infinity (those become None).
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
# McNemar detail: exact binomial test below this many discordant pairs, chi-square above.
MCNEMAR_EXACT_BELOW = 25
# Exact permutation distributions are convolutions over an integer grid; above this
# grid size (roughly problems × seeds) a seeded Monte Carlo is used instead.
EXACT_GRID_LIMIT = 20_000
N_FLIPS = 20_000


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


def correct01(values, what: str) -> list[int]:
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


def _matrix(runs: Mapping[str, Sequence], what: str) -> np.ndarray:
    """seeds × problems 0/1 matrix from {seed: list}; every list the same length."""
    if not runs:
        raise StatsError(f"{what}: no runs")
    rows = [correct01(v, f"{what}[{k}]") for k, v in runs.items()]
    if len({len(r) for r in rows}) != 1:
        raise StatsError(
            f"{what}: every seed must cover the same problems; got lengths {sorted({len(r) for r in rows})}"
        )
    if not rows[0]:
        raise StatsError(f"{what}: no problems")
    return np.array(rows, dtype=np.int64)


# -- summaries over seeds --------------------------------------------------------------


@dataclass
class Summary(_ToDict):
    """Mean ± sample std over seeds, with a t-distribution CI of the mean.

    n = 1: std, sem and the CI are None — a sample std of one value is undefined, and 0
    would claim a precision nobody measured. Zero spread (n >= 2, all equal): std 0, and
    the CI is None with zero_spread True — a t interval of [m, m] would claim the seeds
    pin the mean exactly, when all they show is that these n agreed.
    """

    n: int
    mean: float
    std: float | None
    sem: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    values: list[float]
    zero_spread: bool = False


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> Summary:
    xs = _floats(values, "values")
    if not xs:
        raise StatsError("no values to summarise")
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must be between 0 and 1, got {confidence}")
    n, mean = len(xs), statistics.fmean(xs)
    if n < 2:
        return Summary(n, mean, None, None, None, None, confidence, xs)
    if _identical(xs):
        return Summary(n, xs[0], 0.0, 0.0, None, None, confidence, xs, zero_spread=True)
    std = statistics.stdev(xs)  # ddof = 1
    sem = std / math.sqrt(n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return Summary(n, mean, std, sem, mean - half, mean + half, confidence, xs)


# -- t-tests over seeds (reported beside the headline test, never instead of it) --------


@dataclass
class TestResult(_ToDict):
    """A two-sided t-test over seed accuracies. p None = undefined, `note` says why:
    fewer than 2 seeds, or no spread (t would be 0/0 or ±inf; neither is evidence)."""

    __test__ = False  # not a pytest test class, despite the name

    test: str
    n: int
    df: float | None
    statistic: float | None
    p: float | None
    mean_difference: float
    note: str | None = None
    inputs: dict = field(default_factory=dict)


def paired_t(a_by_seed: Sequence[float], b_by_seed: Sequence[float]) -> TestResult:
    """Paired t-test of b − a over the same seeds, in the same order (scipy.stats.ttest_rel)."""
    a, b = _floats(a_by_seed, "a_by_seed"), _floats(b_by_seed, "b_by_seed")
    if len(a) != len(b):
        raise StatsError(f"paired t-test needs the same seeds on both sides: {len(a)} vs {len(b)} values")
    if not a:
        raise StatsError("no seed accuracies to test")
    diffs = [y - x for x, y in zip(a, b)]
    inputs = {"a": a, "b": b}
    mean_diff = statistics.fmean(diffs)
    if len(diffs) < 2:
        return TestResult("paired t", 1, None, None, None, mean_diff, "undefined: needs at least 2 seeds", inputs)
    if _identical(diffs):
        return TestResult(
            "paired t",
            len(a),
            len(a) - 1,
            None,
            None,
            mean_diff,
            "undefined: the seed differences have zero spread",
            inputs,
        )
    res = sps.ttest_rel(b, a)
    return TestResult("paired t", len(a), len(a) - 1, float(res.statistic), float(res.pvalue), mean_diff, None, inputs)


def welch_t(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's t-test of mean(b) − mean(a) for seeds that do not pair up (scipy.stats.ttest_ind)."""
    a, b = _floats(a, "a"), _floats(b, "b")
    if not a or not b:
        raise StatsError("no seed accuracies to test")
    diff = statistics.fmean(b) - statistics.fmean(a)
    inputs = {"a": a, "b": b}
    if len(a) < 2 or len(b) < 2:
        return TestResult(
            "Welch t", len(a) + len(b), None, None, None, diff, "undefined: needs at least 2 seeds on each side", inputs
        )
    if _identical(a) and _identical(b):
        return TestResult(
            "Welch t",
            len(a) + len(b),
            None,
            None,
            None,
            diff,
            "undefined: both sides have zero spread over seeds",
            inputs,
        )
    res = sps.ttest_ind(b, a, equal_var=False)
    return TestResult(
        "Welch t", len(a) + len(b), float(res.df), float(res.statistic), float(res.pvalue), diff, None, inputs
    )


# -- permutation tests on per-problem outcomes (the headline test) ----------------------


@dataclass
class PermutationTest(_ToDict):
    """A two-sided problem-level permutation test of the mean difference other − reference.

    method "sign-flip": the seeds pair up; the per-problem difference of seed means is
    symmetric about 0 under no effect, so its sign is flipped per problem. With one seed
    per side this is exactly the exact McNemar test (test says so). method
    "within-problem": the seeds do not pair up; each problem's outcomes are shuffled
    between the two sides (a stratified permutation test). exact: the full null
    distribution (a convolution on an integer grid) rather than `n_flips` seeded draws.

    p is the mid-p value: the observed value's own probability counts half. The
    conventional p (the whole atom) is conservative on a lattice — simulated with no
    effect, it rejected 1.7 % of the time at α = 0.05 for 30 problems and one seed, and
    3.4 % for 500 — while mid-p stays near 5 % (benchmarks/stats_calibration.py), as
    Fagerland, Lydersen & Laake (2013) found for McNemar. Both are stored.
    """

    test: str
    method: str
    exact: bool
    statistic: float  # the observed mean difference, other − reference
    p: float | None  # mid-p: the headline p-value; None = undefined (note says why)
    p_conventional: float | None  # P(|T| >= |t|), including the observed value's whole atom
    n_problems: int
    n_informative: int  # problems whose outcomes can move under the null
    n_flips: int | None = None
    flip_seed: int | None = None
    note: str | None = None


NO_PROBLEM_DIFFERS = "undefined: on every problem the two sides have the same number right (summed over seeds)"
NOTHING_CAN_MOVE = "undefined: every problem was right everywhere or wrong everywhere, so no outcome can move"


def _two_sided(values: np.ndarray, pmf: np.ndarray, observed: int) -> tuple[float, float]:
    """(mid-p, exact p) for an integer-valued T with the given support and pmf: exact p is
    P(|T| >= |t|); mid-p counts the observed value's own atom half, P(|T| > |t|) + P(|T| = |t|) / 2."""
    mag = np.abs(values)
    above = float(pmf[mag > abs(observed)].sum())
    at = float(pmf[mag == abs(observed)].sum())
    return min(above + at / 2, 1.0), min(above + at, 1.0)


def _monte_carlo(draws: np.ndarray, observed: int) -> tuple[float, float]:
    """(mid-p, conventional p) from seeded null draws, the observed value counted as one
    more draw (tied with itself), so neither is ever 0."""
    mag, b = np.abs(draws), len(draws)
    above, at = int((mag > abs(observed)).sum()), int((mag == abs(observed)).sum())
    return (above + (at + 1) / 2) / (b + 1), (above + at + 1) / (b + 1)


def _binom_pmf(m: int) -> np.ndarray:
    return sps.binom.pmf(np.arange(m + 1), m, 0.5)


def sign_flip_test(
    ref: np.ndarray, other: np.ndarray, *, n_flips: int = N_FLIPS, seed: int = 0, exact_limit: int = EXACT_GRID_LIMIT
) -> PermutationTest:
    """ref, other: seeds × problems 0/1 arrays with seeds paired row by row."""
    ref, other = np.asarray(ref, dtype=np.int64), np.asarray(other, dtype=np.int64)
    if ref.shape != other.shape:
        raise StatsError(f"sign-flip test needs paired outcomes of the same shape: {ref.shape} vs {other.shape}")
    s, n = ref.shape
    d = (other - ref).sum(axis=0)  # integer per problem, in [-s, s]
    observed = int(d.sum())
    mags = np.abs(d)
    informative = int((mags > 0).sum())
    test = "exact McNemar" if s == 1 else f"sign-flip over problems ({s} paired seeds)"
    stat = observed / (s * n)
    grid = int(mags.sum())
    if informative == 0:
        return PermutationTest(test, "sign-flip", True, stat, None, None, n, 0, note=NO_PROBLEM_DIFFERS)
    if grid <= exact_limit:
        # T = sum(eps_i * |d_i|) = 2 U - M with U = sum over v of v * Binomial(m_v, 1/2).
        pmf = np.ones(1)
        for v in range(1, s + 1):
            m = int((mags == v).sum())
            if m:
                part = np.zeros(v * m + 1)
                part[::v] = _binom_pmf(m)
                pmf = np.convolve(pmf, part)
        values = 2 * np.arange(len(pmf)) - grid
        return PermutationTest(test, "sign-flip", True, stat, *_two_sided(values, pmf, observed), n, informative)
    rng = np.random.default_rng(seed)
    nz = mags[mags > 0]
    draws = []
    for start in range(0, n_flips, 2000):
        b = min(2000, n_flips - start)
        signs = rng.integers(0, 2, size=(b, len(nz)), dtype=np.int8) * 2 - 1
        draws.append(signs @ nz)
    return PermutationTest(
        test, "sign-flip", False, stat, *_monte_carlo(np.concatenate(draws), observed), n, informative, n_flips, seed
    )


def within_problem_test(
    ref: np.ndarray, other: np.ndarray, *, n_flips: int = N_FLIPS, seed: int = 0, exact_limit: int = EXACT_GRID_LIMIT
) -> PermutationTest:
    """ref: S_r × problems, other: S_o × problems, seeds not paired. Under no effect every
    one of a problem's S_r + S_o outcomes could have come from either side, so the number
    right on the `other` side is hypergeometric given the problem's total right."""
    ref, other = np.asarray(ref, dtype=np.int64), np.asarray(other, dtype=np.int64)
    if ref.shape[1] != other.shape[1]:
        raise StatsError(f"within-problem test needs the same problems: {ref.shape[1]} vs {other.shape[1]}")
    s_r, n = ref.shape
    s_o = other.shape[0]
    total = s_r + s_o
    k = ref.sum(axis=0) + other.sum(axis=0)
    x_obs = int(other.sum())
    # n·Δ·s_o·s_r = W·(s_r + s_o) − s_o·Σk with W = Σ x_i: integer, so ties compare exactly.
    scaled = lambda w: w * total - s_o * int(k.sum())  # noqa: E731
    observed = scaled(x_obs)
    stat = observed / (n * s_o * s_r)
    moving = k[(k > 0) & (k < total)]
    test = f"within-problem permutation ({s_o} vs {s_r} unpaired seeds)"
    if len(moving) == 0:
        return PermutationTest(test, "within-problem", True, stat, None, None, n, 0, note=NOTHING_CAN_MOVE)
    if int(len(moving)) * s_o <= exact_limit:
        pmf, lo = np.ones(1), 0
        for kk in moving:
            support = np.arange(max(0, kk - s_r), min(kk, s_o) + 1)
            part = sps.hypergeom.pmf(support, total, kk, s_o)
            pmf, lo = np.convolve(pmf, part), lo + int(support[0])
        fixed = int(other[:, k == total].sum())  # problems every draw got right: x_i = s_o
        w = lo + fixed + np.arange(len(pmf))
        return PermutationTest(
            test, "within-problem", True, stat, *_two_sided(scaled(w), pmf, observed), n, int(len(moving))
        )
    rng = np.random.default_rng(seed)
    fixed = int(other[:, k == total].sum())
    draws = [
        rng.hypergeometric(moving, total - moving, s_o, size=(min(500, n_flips - i), len(moving))).sum(axis=1)
        for i in range(0, n_flips, 500)
    ]
    return PermutationTest(
        test,
        "within-problem",
        False,
        stat,
        *_monte_carlo(scaled(np.concatenate(draws) + fixed), observed),
        n,
        int(len(moving)),
        n_flips,
        seed,
    )


# -- McNemar per seed (detail in report.json) -------------------------------------------


@dataclass
class McNemarResult(_ToDict):
    """2×2 table of base vs other on the same problems, and the McNemar p-value.

    method: "exact" (two-sided binomial test of base_only vs Binomial(b + c, 1/2)) when
    b + c < 25; "chi2" (1 df, continuity correction, (|b − c| − 1)² / (b + c) with the
    |b − c| − 1 clipped at 0) otherwise; "undefined" (p None) when b + c == 0: the two
    never disagree, so there is nothing to test.
    """

    n: int
    both_right: int
    base_only: int
    other_only: int
    both_wrong: int
    method: str
    statistic: float | None
    p: float | None


def mcnemar(base_correct: Sequence, other_correct: Sequence) -> McNemarResult:
    a, b = correct01(base_correct, "base_correct"), correct01(other_correct, "other_correct")
    if len(a) != len(b):
        raise StatsError(f"McNemar needs the same problems on both sides: {len(a)} vs {len(b)}")
    both = sum(1 for x, y in zip(a, b) if x and y)
    base_only = sum(1 for x, y in zip(a, b) if x and not y)
    other_only = sum(1 for x, y in zip(a, b) if y and not x)
    neither = len(a) - both - base_only - other_only
    disc = base_only + other_only
    if disc == 0:
        method, stat, p = "undefined", None, None
    elif disc < MCNEMAR_EXACT_BELOW:
        method, stat = "exact", None
        p = min(float(sps.binomtest(base_only, disc, 0.5).pvalue), 1.0)
    else:
        method = "chi2"
        stat = max(abs(base_only - other_only) - 1, 0) ** 2 / disc
        p = float(sps.chi2.sf(stat, 1))
    return McNemarResult(len(a), both, base_only, other_only, neither, method, stat, p)


# -- intervals -------------------------------------------------------------------------


def _check_boot(n_boot: int, alpha: float) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise StatsError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")


@dataclass
class Interval(_ToDict):
    low: float
    high: float
    method: str
    confidence: float
    note: str | None = None


def _bca(theta: float, boots: np.ndarray, jack: np.ndarray, alpha: float) -> tuple[float, float]:
    """Bias-corrected and accelerated percentile interval (Efron 1987).

    z0 counts ties as half, so a bootstrap distribution sitting on θ̂ does not send z0 to
    ±inf; the acceleration comes from the jackknife over problems."""
    b = len(boots)
    below = (np.sum(boots < theta) + 0.5 * np.sum(boots == theta)) / b
    z0 = float(sps.norm.ppf(np.clip(below, 1 / (b + 1), b / (b + 1))))
    dev = jack.mean() - jack
    denom = 6 * float(np.sum(dev**2)) ** 1.5
    a = float(np.sum(dev**3)) / denom if denom > 0 else 0.0
    out = []
    for q in (alpha / 2, 1 - alpha / 2):
        z = float(sps.norm.ppf(q))
        adj = float(sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
        out.append(float(np.quantile(boots, np.clip(adj, 0, 1))))
    return out[0], out[1]


def delta_interval(
    ref: np.ndarray, other: np.ndarray, *, paired: bool, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> Interval:
    """BCa interval of mean(other) − mean(ref) from a two-level bootstrap.

    Each replicate resamples seeds (paired: a seed brings both sides' outcomes; unpaired:
    each side's seeds separately) and, independently, problems (shared by both sides), so
    the interval holds training-seed variance as well as which problems were drawn.
    Seeds and problems are crossed, not nested, so they are resampled as two factors.
    That (Owen's pigeonhole bootstrap) counts the seed × problem noise twice: with no seed
    effect its 95 % interval covered the truth 99–100 % of the time in simulation. So
    when paired seeds are ≥ 2, its spread around Δ̂ is rescaled to the unbiased two-way
    ANOVA estimate of Var(Δ̂) = σ²_seed/S + σ²_problem/n + σ²_noise/(S·n) (`_crossed_variance`),
    keeping the BCa shape, widened by t(df)/z for the Satterthwaite df (a few seeds pin the
    seed component poorly) and kept inside the range the reference's accuracy leaves for Δ;
    benchmarks/stats_calibration.py prints the coverage.
    A replicate's mean is w·M·u / (seeds·problems) for multinomial seed counts w and
    problem counts u: no index matrices, O(n_boot × seeds × problems)."""
    _check_boot(n_boot, alpha)
    ref, other = np.asarray(ref, dtype=float), np.asarray(other, dtype=float)
    n = ref.shape[1]
    rng = np.random.default_rng(seed)
    u = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)

    def side(m: np.ndarray) -> np.ndarray:
        s = m.shape[0]
        w = rng.multinomial(s, np.full(s, 1 / s), size=n_boot)
        return np.einsum("bs,sn,bn->b", w, m, u) / (s * n)

    method = "BCa, seeds × problems bootstrap"
    if paired:
        d = other - ref
        boots, theta = side(d), float(d.mean())
        per_problem = d.mean(axis=0)
        spread = float(boots.var())
        if d.shape[0] >= 2 and n >= 2 and spread > 0:
            var, df = _crossed_variance(d)
            # A handful of seeds pins the seed component poorly: widen as a t interval would.
            widen = float(sps.t.ppf(1 - alpha / 2, df) / sps.norm.ppf(1 - alpha / 2))
            # Rescaled replicates can leave the range an accuracy allows; keep Δ inside
            # [−accuracy(ref), 1 − accuracy(ref)], as every unscaled replicate already is.
            acc = float(ref.mean())
            boots = np.clip(theta + (boots - theta) * math.sqrt(var / spread) * widen, -acc, 1 - acc)
            method += f", variance-corrected (df {df:.1f})"
    else:
        boots = side(other) - side(ref)
        per_problem = other.mean(axis=0) - ref.mean(axis=0)
        theta = float(per_problem.mean())
    conf = 1 - alpha
    if np.all(per_problem == 0) and np.all(boots == theta):
        return Interval(theta, theta, "none", conf, "no problem differs between the two sides")
    jack = (per_problem.sum() - per_problem) / (n - 1) if n > 1 else per_problem
    lo, hi = _bca(theta, boots, jack, alpha)
    return Interval(lo, hi, method, conf)


def _crossed_variance(d: np.ndarray) -> tuple[float, float]:
    """Var(mean of d) for a seeds × problems table with random seed and problem effects,
    from the two-way ANOVA mean squares: (MS_seeds + MS_problems − MS_noise) / (S·n),
    floored at the pure-noise MS_noise / (S·n) (the components cannot be negative); and
    its Satterthwaite degrees of freedom (about S − 1 when the seed effect dominates)."""
    s, n = d.shape
    grand, rows, cols = d.mean(), d.mean(axis=1), d.mean(axis=0)
    ms_rows = n * float(((rows - grand) ** 2).sum()) / (s - 1)
    ms_cols = s * float(((cols - grand) ** 2).sum()) / (n - 1)
    resid = d - rows[:, None] - cols[None, :] + grand
    ms_e = float((resid**2).sum()) / ((s - 1) * (n - 1))
    combined = ms_rows + ms_cols - ms_e
    if combined <= ms_e:
        return ms_e / (s * n), float((s - 1) * (n - 1))
    df = combined**2 / (ms_rows**2 / (s - 1) + ms_cols**2 / (n - 1) + ms_e**2 / ((s - 1) * (n - 1)))
    # The negative MS_noise term can take Satterthwaite's df below the seeds' own S − 1.
    return combined / (s * n), max(df, float(s - 1))


# -- power -----------------------------------------------------------------------------


def min_detectable_effect(
    ref: np.ndarray, other: np.ndarray, *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Smallest Δ the headline test finds with this power (normal approximation), or None
    when no Δ this problem set allows reaches it.

    Each problem's chance of being right, p_i, is estimated by pooling both sides (with
    the N / (N − 1) correction of p̂(1 − p̂)). An effect δ is assumed to lift each problem
    in proportion to its room to improve, μ_i = δ (1 − p_i) / mean(1 − p) — the model
    app.calibration simulates. The permutation test compares Σd_i with the spread of its
    own sign flips, √Σd_i², which grows with the effect; so power is
    Φ((n δ − z √Σ(v_i + μ_i²)) / √Σv_i) with v_i the variance of d_i under the effect."""
    ref, other = np.asarray(ref, dtype=float), np.asarray(other, dtype=float)
    s_r, n = ref.shape
    s_o = other.shape[0]
    total = s_r + s_o
    p = (ref.sum(axis=0) + other.sum(axis=0)) / total
    u = p * (1 - p) * total / (total - 1)
    room = float((1 - p).mean())
    z = float(sps.norm.ppf(1 - alpha / 2))
    if room <= 0:
        return None

    def power_at(delta: float) -> float:
        mu = delta * (1 - p) / room
        v = u / s_r + np.clip(u + mu * (1 - 2 * p) - mu**2, 0, None) / s_o
        margin = n * delta - z * math.sqrt(float((v + mu**2).sum()))
        sd = math.sqrt(float(v.sum()))
        if sd == 0:  # no noise left: the test finds the effect or it cannot
            return float(margin > 0)
        return float(sps.norm.cdf(margin / sd))

    lo, hi = 0.0, room  # at δ = mean(1 − p) every problem is always right on the other side
    if power_at(hi) < power:
        return None
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_at(mid) < power else (lo, mid)
    return hi


# -- multiplicity ----------------------------------------------------------------------


def holm(ps: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error). None stays None and is not
    counted in the family."""
    idx = [i for i, p in enumerate(ps) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(ps)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: ps[i])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def benjamini_hochberg(ps: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), via scipy."""
    idx = [i for i, p in enumerate(ps) if p is not None]
    out: list[float | None] = [None] * len(ps)
    if idx:
        adj = sps.false_discovery_control([ps[i] for i in idx], method="bh")
        for i, a in zip(idx, adj):
            out[i] = float(a)
    return out
