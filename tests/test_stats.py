"""app/stats.py against hand-computed values and scipy's own functions."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from app.errors import TailorError
from app.stats import (
    Comparison,
    StatsError,
    bootstrap_ci,
    bootstrap_diff_ci,
    compare,
    mcnemar,
    one_sample_t,
    paired_t,
    seed_summary,
)


def dumps(obj) -> str:
    return json.dumps(obj.to_dict() if hasattr(obj, "to_dict") else obj, allow_nan=False)


def run(k: int, n: int = 100) -> list[bool]:
    """k of n problems right: the first k."""
    return [True] * k + [False] * (n - k)


# -- seed_summary ----------------------------------------------------------------------


def test_seed_summary_by_hand():
    # mean 0.7; deviations -0.1, 0, 0.1 -> SS 0.02, var 0.02/2 = 0.01, std 0.1;
    # sem 0.1/sqrt(3) = 0.0577350; t(0.975, df 2) = 4.302653 -> half-width 0.248414.
    s = seed_summary([0.6, 0.7, 0.8])
    assert (s.n, s.mean, s.std) == (3, pytest.approx(0.7), pytest.approx(0.1))
    assert s.sem == pytest.approx(0.0577350, abs=1e-7)
    assert s.ci_low == pytest.approx(0.7 - 0.248414, abs=1e-6)
    assert s.ci_high == pytest.approx(0.7 + 0.248414, abs=1e-6)
    # ... and scipy's own CI of the mean agrees.
    ci = sps.ttest_1samp([0.6, 0.7, 0.8], 0).confidence_interval(0.95)
    assert (s.ci_low, s.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_seed_summary_matches_numpy_and_obryan_scale():
    vals = [69.2, 69.4, 69.5, 69.6, 69.45]
    s = seed_summary(vals)
    assert s.mean == pytest.approx(np.mean(vals))
    assert s.std == pytest.approx(np.std(vals, ddof=1))
    assert s.values == vals


def test_seed_summary_one_value_has_no_spread():
    s = seed_summary([0.64])
    assert (s.n, s.mean, s.std, s.sem, s.ci_low, s.ci_high) == (1, 0.64, None, None, None, None)
    dumps(s)


def test_seed_summary_identical_values_zero_width():
    s = seed_summary([0.1, 0.1, 0.1])  # fmean is 0.1 + 1 ulp: float noise must not show as spread
    assert s.std == 0.0
    assert s.ci_low == pytest.approx(0.1) and s.ci_high == pytest.approx(0.1)


def test_seed_summary_errors():
    with pytest.raises(StatsError):
        seed_summary([])
    with pytest.raises(StatsError, match=r"values\[1\]"):
        seed_summary([0.5, float("nan")])
    assert issubclass(StatsError, TailorError) and issubclass(StatsError, ValueError)


# -- t-tests ---------------------------------------------------------------------------


def test_one_sample_t_by_hand_and_scipy():
    # t = (0.7 - 0.5) / (0.1 / sqrt 3) = 2 * sqrt 3 = 3.464102; df 2; p = 0.0741799.
    r = one_sample_t([0.6, 0.7, 0.8], 0.5)
    assert r.statistic == pytest.approx(2 * math.sqrt(3))
    assert r.df == 2 and r.n == 3
    assert r.p == pytest.approx(0.0741799, abs=1e-6)
    assert r.p == pytest.approx(sps.ttest_1samp([0.6, 0.7, 0.8], 0.5).pvalue)
    assert r.mean_difference == pytest.approx(0.2)
    assert r.inputs == {"values": [0.6, 0.7, 0.8], "reference": 0.5}
    assert r.note is None


def test_one_sample_t_zero_variance():
    differs = one_sample_t([0.1, 0.1, 0.1], 0.2)  # scipy: t = -1e16 from float noise
    assert (differs.p, differs.statistic, differs.df) == (0.0, None, 2)
    assert "zero variance" in differs.note
    same = one_sample_t([0.1, 0.1, 0.1], 0.1)  # scipy: nan
    assert (same.p, same.statistic) == (1.0, 0.0)
    dumps(differs), dumps(same)


def test_one_sample_t_single_seed_is_untestable():
    r = one_sample_t([0.7], 0.6)
    assert (r.statistic, r.p, r.df) == (None, None, 0)
    assert r.mean_difference == pytest.approx(0.1)
    dumps(r)


def test_paired_t_by_hand_and_scipy():
    a, b = [0.60, 0.62, 0.64], [0.65, 0.66, 0.70]
    # differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01 -> t = 0.05 / (0.01 / sqrt 3) = 8.660254.
    r = paired_t(a, b)
    assert r.statistic == pytest.approx(5 * math.sqrt(3), rel=1e-9)
    assert r.p == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert r.mean_difference == pytest.approx(0.05)
    assert r.inputs == {"a": a, "b": b}


def test_paired_t_constant_difference_and_errors():
    assert paired_t([0.5, 0.6], [0.6, 0.7]).p == 0.0  # 0.6-0.5 != 0.7-0.6 in floats; still "identical"
    assert paired_t([0.5, 0.6], [0.5, 0.6]).p == 1.0
    with pytest.raises(StatsError, match="same seeds"):
        paired_t([0.5, 0.6], [0.5])


# -- bootstrap -------------------------------------------------------------------------


def test_bootstrap_deterministic_and_contains_estimate():
    correct = run(60, 200)
    a = bootstrap_ci(correct, n_boot=2000, seed=7)
    assert a == bootstrap_ci(correct, n_boot=2000, seed=7)
    assert a != bootstrap_ci(correct, n_boot=2000, seed=8)
    lo, hi = a
    assert lo < 0.3 < hi
    assert all(isinstance(x, float) for x in a)


def test_bootstrap_narrows_with_n_and_matches_normal_width():
    small = bootstrap_ci(run(12, 20))
    large = bootstrap_ci(run(1200, 2000))
    assert small[0] < 0.6 < small[1] and large[0] < 0.6 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 5
    # Normal approximation: 2 * 1.96 * sqrt(0.6 * 0.4 / 2000) = 0.04294.
    assert large[1] - large[0] == pytest.approx(0.04294, rel=0.1)


def test_bootstrap_matches_index_resampling():
    # The multinomial shortcut must agree with the textbook index bootstrap.
    rng = np.random.default_rng(1)
    x = (rng.random(300) < 0.55).astype(int)
    idx = rng.integers(0, len(x), size=(20000, len(x)))
    ref = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    lo, hi = bootstrap_ci(x.tolist(), n_boot=20000)
    assert lo == pytest.approx(ref[0], abs=0.006) and hi == pytest.approx(ref[1], abs=0.006)


def test_bootstrap_degenerate_and_errors():
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    with pytest.raises(StatsError):
        bootstrap_ci([])
    with pytest.raises(StatsError, match=r"correct\[1\]"):
        bootstrap_ci([1, 2])
    with pytest.raises(StatsError, match="n_boot"):
        bootstrap_ci([1, 0], n_boot=0)
    with pytest.raises(StatsError, match="alpha"):
        bootstrap_ci([1, 0], alpha=1.5)


def test_bootstrap_diff_paired():
    base = run(60, 200)
    other = run(70, 200)  # every base-right problem is also right here: diff is +10/200
    lo, hi = bootstrap_diff_ci(base, other, n_boot=4000, seed=3)
    assert lo < 0.05 < hi and lo > 0  # pairing: only 10 discordant problems, all one way
    assert (lo, hi) == bootstrap_diff_ci(base, other, n_boot=4000, seed=3)
    assert bootstrap_diff_ci(base, base) == (0.0, 0.0)
    with pytest.raises(StatsError, match="same problems"):
        bootstrap_diff_ci(base, other[:-1])


# -- McNemar ---------------------------------------------------------------------------


def table(both: int, base_only: int, other_only: int, neither: int):
    base = [1] * both + [1] * base_only + [0] * other_only + [0] * neither
    other = [1] * both + [0] * base_only + [1] * other_only + [0] * neither
    return base, other


def test_mcnemar_exact_branch_by_hand():
    # b = 2, c = 8, b + c = 10 < 25: p = 2 * P(X <= 2 | Bin(10, 1/2)) = 2 * (1 + 10 + 45) / 1024.
    r = mcnemar(*table(5, 2, 8, 5))
    assert (r.n, r.both_right, r.base_only, r.other_only, r.both_wrong) == (20, 5, 2, 8, 5)
    assert r.method == "exact" and r.statistic is None
    assert r.p == pytest.approx(112 / 1024)
    assert r.p == pytest.approx(sps.binomtest(2, 10, 0.5).pvalue)


def test_mcnemar_chi2_branch_by_hand():
    # b = 10, c = 20: (|10 - 20| - 1)^2 / 30 = 81 / 30 = 2.7; chi2(1) survival = erfc(sqrt(2.7 / 2)).
    r = mcnemar(*table(40, 10, 20, 30))
    assert r.method == "chi2"
    assert r.statistic == pytest.approx(2.7)
    assert r.p == pytest.approx(math.erfc(math.sqrt(2.7 / 2)))
    assert r.p == pytest.approx(0.100348, abs=1e-6)


def test_mcnemar_branch_boundary_and_balance():
    assert mcnemar(*table(0, 12, 12, 0)).method == "exact"  # b + c = 24
    balanced = mcnemar(*table(0, 13, 12, 0))  # b + c = 25: chi2, |b - c| - 1 = 0
    assert balanced.method == "chi2" and balanced.statistic == 0.0 and balanced.p == 1.0
    assert mcnemar(*table(0, 15, 15, 0)).p == 1.0  # clipped correction: b == c is p = 1


def test_mcnemar_no_discordant_pairs_and_errors():
    r = mcnemar(*table(7, 0, 0, 3))
    assert (r.method, r.p, r.statistic) == ("none", 1.0, None)
    dumps(r)
    with pytest.raises(StatsError, match="same problems"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(StatsError, match="true/false or 0/1"):
        mcnemar([1, None], [1, 0])
    assert mcnemar([True, False], [np.bool_(True), 1.0]).other_only == 1


# -- compare ---------------------------------------------------------------------------


def test_compare_degraded_student():
    base = run(70)
    seeds = {0: run(60), 1: run(62), 2: run(58), 3: run(61), 4: run(59)}
    c = compare(base, seeds, label="adaptive")
    assert isinstance(c, Comparison)
    assert c.n_problems == 100 and c.base.accuracies == [0.7]
    assert c.distilled.seeds == ["0", "1", "2", "3", "4"]
    assert c.distilled.summary.mean == pytest.approx(0.6)
    assert c.delta == pytest.approx(-0.1)
    ref = sps.ttest_1samp([0.60, 0.62, 0.58, 0.61, 0.59], 0.7)
    assert c.seed_test.test == "one-sample t" and c.seed_test.p == pytest.approx(ref.pvalue)
    assert c.p_source == "one-sample t" and c.p_value == c.seed_test.p
    assert c.worse and c.degraded
    # McNemar per seed: seed 0 has 10 base-only problems and no other-only ones.
    assert len(c.mcnemar) == 5 and c.mcnemar[0].result.base_only == 10
    assert c.mcnemar_median_p == pytest.approx(np.median([m.result.p for m in c.mcnemar]))
    lo, hi = c.delta_ci
    assert lo <= c.delta <= hi < 0


def test_compare_worse_but_not_significant():
    base = run(70)
    c = compare(base, [run(71), run(68), run(70), run(69)])
    assert c.delta == pytest.approx(-0.005)
    assert c.worse and not c.degraded and c.p_value > 0.05


def test_compare_better_is_neither_worse_nor_degraded():
    c = compare(run(60), [run(70), run(72), run(69)])
    assert not c.worse and not c.degraded and c.p_value < 0.05


def test_compare_paired_seeds_and_errors():
    base = {1: run(70), 2: run(71), 3: run(69)}
    dist = {1: run(66), 2: run(66), 3: run(63)}
    c = compare(base, dist)
    assert c.seed_test.test == "paired t"
    assert c.seed_test.p == pytest.approx(sps.ttest_rel([0.66, 0.66, 0.63], [0.70, 0.71, 0.69]).pvalue)
    assert [(m.seed, m.base_seed) for m in c.mcnemar] == [("1", "1"), ("2", "2"), ("3", "3")]
    assert c.delta == pytest.approx(-0.05)
    with pytest.raises(StatsError, match="seeds"):
        compare(base, {1: run(66), 2: run(66), 9: run(63)})
    with pytest.raises(StatsError, match="same problems"):
        compare(run(70), [run(60), run(60, 99)])
    with pytest.raises(StatsError, match="no runs"):
        compare(run(70), {})


def test_compare_single_seed_falls_back_to_mcnemar():
    c = compare(run(70), [run(55)])
    assert c.seed_test.p is None
    assert c.p_source == "mcnemar" and c.p_value == c.mcnemar[0].result.p
    assert c.mcnemar[0].result.method == "exact" and c.degraded  # 15 base-only, 0 other-only


def test_compare_to_dict_is_plain_json_and_recomputable():
    seeds = {0: run(70), 1: run(70), 2: run(70)}  # zero variance: scipy's t would be inf
    c = compare(run(60), seeds, n_boot=500)
    d = json.loads(dumps(c))
    assert d["seed_test"]["statistic"] is None and d["seed_test"]["p"] == 0.0
    assert d["distilled"]["accuracies"] == [0.7, 0.7, 0.7]
    assert d["distilled"]["summary"]["values"] == [0.7, 0.7, 0.7]
    # The inputs are there: recompute the accuracies and the test from the JSON alone.
    again = compare(d["base"]["correct"][0], d["distilled"]["correct"], n_boot=d["n_boot"], seed=d["boot_seed"])
    assert json.loads(dumps(again))["delta_ci"] == d["delta_ci"]
    for key in ("delta", "delta_ci", "mcnemar_median_p", "p_value", "degraded", "worse", "alpha"):
        assert key in d
