"""app/stats.py against hand-computed values and scipy's own functions."""

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from app.calibration import outcomes, problem_probabilities, shifted
from app.comparison import Comparison, compare
from app.errors import TailorError
from app.stats import (
    StatsError,
    benjamini_hochberg,
    delta_interval,
    holm,
    mcnemar,
    min_detectable_effect,
    paired_t,
    seed_summary,
    sign_flip_test,
    welch_t,
    within_problem_test,
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


def test_seed_summary_identical_values_are_zero_spread_not_a_zero_width_ci():
    s = seed_summary([0.1, 0.1, 0.1])  # fmean is 0.1 + 1 ulp: float noise must not show as spread
    assert s.std == 0.0 and s.zero_spread and s.mean == 0.1
    assert (s.ci_low, s.ci_high) == (None, None)


def test_seed_summary_errors():
    with pytest.raises(StatsError):
        seed_summary([])
    with pytest.raises(StatsError, match=r"values\[1\]"):
        seed_summary([0.5, float("nan")])
    assert issubclass(StatsError, TailorError) and issubclass(StatsError, ValueError)


# -- t-tests over seeds ---------------------------------------------------------------


def test_paired_t_by_hand_and_scipy():
    a, b = [0.60, 0.62, 0.64], [0.65, 0.66, 0.70]
    # differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01 -> t = 0.05 / (0.01 / sqrt 3) = 8.660254.
    r = paired_t(a, b)
    assert r.statistic == pytest.approx(5 * math.sqrt(3), rel=1e-9)
    assert r.p == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert r.mean_difference == pytest.approx(0.05)
    assert r.inputs == {"a": a, "b": b}


def test_paired_t_zero_spread_and_one_seed_are_undefined_never_0_or_1():
    differs = paired_t([0.5, 0.6], [0.6, 0.7])  # 0.6-0.5 != 0.7-0.6 in floats; still "identical"
    same = paired_t([0.5, 0.6], [0.5, 0.6])
    one = paired_t([0.5], [0.7])
    for r in (differs, same, one):
        assert r.p is None and r.statistic is None and r.note.startswith("undefined")
        dumps(r)
    assert differs.mean_difference == pytest.approx(0.1)
    with pytest.raises(StatsError, match="same seeds"):
        paired_t([0.5, 0.6], [0.5])


def test_welch_t_matches_scipy_and_is_undefined_without_spread():
    a, b = [0.6, 0.65, 0.7], [0.7, 0.72]
    r = welch_t(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert r.p == pytest.approx(ref.pvalue) and r.df == pytest.approx(ref.df)
    assert welch_t([0.5, 0.5], [0.6, 0.6]).p is None
    assert welch_t([0.5], [0.6, 0.7]).p is None


# -- the headline permutation tests ----------------------------------------------------


def enumerate_sign_flips(ref, other) -> tuple[float, float]:
    """(mid-p, conventional p) by listing all 2^n sign patterns: the definition itself."""
    d = (np.asarray(other) - np.asarray(ref)).sum(axis=0)
    obs = abs(int(d.sum()))
    totals = [abs(int(np.dot(signs, d))) for signs in itertools.product((-1, 1), repeat=len(d))]
    above = sum(t > obs for t in totals) / len(totals)
    at = sum(t == obs for t in totals) / len(totals)
    return above + at / 2, above + at


def test_sign_flip_equals_exact_enumeration():
    rng = np.random.default_rng(4)
    for seeds in (1, 2, 3):
        for _ in range(5):
            ref = (rng.random((seeds, 12)) < 0.5).astype(int)
            other = (rng.random((seeds, 12)) < 0.6).astype(int)
            t = sign_flip_test(ref, other)
            if t.p is None:
                continue
            mid, conv = enumerate_sign_flips(ref, other)
            assert t.exact and t.p == pytest.approx(mid) and t.p_conventional == pytest.approx(conv)
            assert t.statistic == pytest.approx(other.mean() - ref.mean())


def test_sign_flip_with_one_seed_is_exact_mcnemar():
    base, other = table(20, 3, 11, 6)
    t = sign_flip_test([base], [other])
    assert t.test == "exact McNemar"
    assert t.p_conventional == pytest.approx(sps.binomtest(3, 14, 0.5).pvalue)
    assert t.p_conventional == pytest.approx(mcnemar(base, other).p)
    assert t.p < t.p_conventional  # mid-p halves the observed atom
    mid = 2 * sps.binom.sf(11, 14, 0.5) + sps.binom.pmf(11, 14, 0.5)  # P(X>11) + P(X<3) + P(X=11 or 3) / 2
    assert t.p == pytest.approx(mid)


def test_sign_flip_monte_carlo_agrees_with_exact_and_is_never_zero():
    rng = np.random.default_rng(0)
    ref = (rng.random((3, 200)) < 0.4).astype(int)
    other = (rng.random((3, 200)) < 0.47).astype(int)
    exact = sign_flip_test(ref, other)
    mc = sign_flip_test(ref, other, exact_limit=0, n_flips=20000, seed=1)
    assert not mc.exact and mc.n_flips == 20000
    assert mc.p == pytest.approx(exact.p, abs=0.01)
    assert mc.p == sign_flip_test(ref, other, exact_limit=0, n_flips=20000, seed=1).p  # seeded
    far = sign_flip_test(np.zeros((3, 200), int), np.ones((3, 200), int), exact_limit=0, n_flips=999)
    assert far.p == pytest.approx(0.5 / 1000) and far.p > 0


def test_sign_flip_no_difference_is_undefined():
    same = [[1, 0, 1, 0]]
    t = sign_flip_test(same, same)
    assert t.p is None and t.p_conventional is None and t.note.startswith("undefined")
    dumps(t)


def enumerate_within_problem(ref, other) -> float:
    """Conventional p by listing every way to split each problem's outcomes between sides."""
    ref, other = np.asarray(ref), np.asarray(other)
    s_o = other.shape[0]
    pools = [list(ref[:, i]) + list(other[:, i]) for i in range(ref.shape[1])]
    obs = abs(other.mean() - ref.mean())
    per_problem = []
    for pool in pools:
        splits = [
            (sum(pool[j] for j in pick), sum(pool) - sum(pool[j] for j in pick))
            for pick in itertools.combinations(range(len(pool)), s_o)
        ]
        per_problem.append(splits)
    hits = total = 0
    for combo in itertools.product(*per_problem):
        o = sum(x for x, _ in combo) / (s_o * len(pools))
        r = sum(y for _, y in combo) / (ref.shape[0] * len(pools))
        total += 1
        hits += abs(o - r) >= obs - 1e-12
    return hits / total


def test_within_problem_equals_exact_enumeration():
    ref = np.array([[1, 0, 0, 1, 0, 1]])
    other = np.array([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 1]])
    t = within_problem_test(ref, other)
    assert t.exact and t.method == "within-problem"
    assert t.p_conventional == pytest.approx(enumerate_within_problem(ref, other))
    assert t.statistic == pytest.approx(other.mean() - ref.mean())
    mc = within_problem_test(ref, other, exact_limit=0, n_flips=20000)
    assert mc.p == pytest.approx(t.p, abs=0.01)
    nothing = within_problem_test([[1, 0]], [[1, 0], [1, 0]])
    assert nothing.p is None and nothing.note.startswith("undefined")


# -- intervals and power ---------------------------------------------------------------


def test_delta_interval_deterministic_contains_estimate_and_covers_seed_variance():
    rng = np.random.default_rng(2)
    ref = (rng.random((5, 100)) < 0.5).astype(int)
    other = (rng.random((5, 100)) < 0.55).astype(int)
    ci = delta_interval(ref, other, paired=True, n_boot=2000, seed=3)
    assert ci == delta_interval(ref, other, paired=True, n_boot=2000, seed=3)
    assert ci.low < other.mean() - ref.mean() < ci.high and ci.method.startswith("BCa")
    # A seed-level shift (one adapter much better) must widen the interval: seeds are resampled.
    shifted = other.copy()
    shifted[0] = 1
    wide = delta_interval(ref, shifted, paired=True, n_boot=2000, seed=3)
    one_level = np.quantile([(shifted - ref)[:, rng.integers(0, 100, 100)].mean() for _ in range(2000)], [0.025, 0.975])
    assert wide.high - wide.low > 1.5 * (one_level[1] - one_level[0])


def test_delta_interval_when_nothing_differs():
    ci = delta_interval(np.ones((2, 10), int), np.ones((2, 10), int), paired=True)
    assert (ci.low, ci.high, ci.method) == (0.0, 0.0, "none") and "no problem differs" in ci.note
    with pytest.raises(StatsError, match="n_boot"):
        delta_interval(np.ones((1, 3)), np.ones((1, 3)), paired=True, n_boot=0)


def test_min_detectable_effect_has_the_power_it_claims():
    # Simulate an effect of exactly the MDE (the model it assumes) and count how often the test finds it.
    rng = np.random.default_rng(5)
    p = problem_probabilities(rng, 200)
    mde = min_detectable_effect(outcomes(rng, p, 3), outcomes(rng, p, 3))
    assert 0.03 < mde < 0.15
    found = sum(sign_flip_test(outcomes(rng, p, 3), outcomes(rng, shifted(p, mde), 3)).p < 0.05 for _ in range(400))
    assert 0.7 <= found / 400 <= 0.9
    # More seeds, smaller MDE.
    assert min_detectable_effect(outcomes(rng, p, 5), outcomes(rng, p, 5)) < mde


def test_min_detectable_effect_at_a_zero_base_and_when_nothing_can_reach_it():
    # A base that never answers right still has an MDE: the effect itself brings the noise.
    assert 0.1 < min_detectable_effect(np.zeros((2, 24)), np.zeros((2, 24))) < 0.3
    # Three problems: even every answer turning right is below 80 % power at α = 0.05.
    assert min_detectable_effect(np.zeros((1, 3)), np.zeros((1, 3))) is None


# -- multiplicity ----------------------------------------------------------------------


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 (m = 3): 0.03, max(0.03, 0.04) = 0.04, max(0.04, 0.04) = 0.04.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.01, None, 0.03]) == [pytest.approx(0.02), None, pytest.approx(0.03)]
    assert holm([]) == []


def test_benjamini_hochberg_by_hand():
    # m = 4, sorted 0.01, 0.02, 0.03, 0.2: 0.04, 0.04, 0.04, 0.2 (min over the ranks above).
    assert benjamini_hochberg([0.2, 0.01, 0.03, 0.02]) == pytest.approx([0.2, 0.04, 0.04, 0.04])
    assert benjamini_hochberg([None, 0.05]) == [None, pytest.approx(0.05)]


# -- compare ---------------------------------------------------------------------------


def test_compare_paired_by_seed():
    base = {1: run(70), 2: run(71), 3: run(69)}
    dist = {1: run(60), 2: run(62), 3: run(58)}
    c = compare(base, dist, label="adaptive")
    assert isinstance(c, Comparison) and c.paired and c.seeds_note is None
    assert c.test.method == "sign-flip" and c.test.p < 0.001
    assert c.delta == pytest.approx(-0.1)
    assert c.seed_test.p == pytest.approx(sps.ttest_rel([0.60, 0.62, 0.58], [0.70, 0.71, 0.69]).pvalue)
    assert c.flips == {"gained": 0, "lost": 30, "unit": "seed × problem pairs"}
    assert [m.seed for m in c.mcnemar] == ["1", "2", "3"]
    assert c.delta_ci.low <= c.delta <= c.delta_ci.high < 0
    assert c.mde is not None and 0 < c.mde < 0.2


def test_compare_uses_the_reference_at_the_other_sides_seeds():
    base = {0: run(70), 1: run(71), 2: run(69), 3: run(70)}
    c = compare(base, {0: run(70), 1: run(71)})
    assert c.paired and c.reference.seeds == ["0", "1"] and "2, 3 not used" in c.seeds_note


def test_compare_unpaired_seeds_say_so_and_use_the_within_problem_test():
    c = compare({0: run(70)}, {0: run(60), 1: run(61), 2: run(59)})
    assert not c.paired and c.test.method == "within-problem" and "do not pair up" in c.seeds_note
    assert c.seed_test.test == "Welch t" and c.seed_test.p is None  # one base seed
    assert c.flips["unit"] == "problems (seed means)" and c.mcnemar == []


def test_demo_zero_spread_case_gives_no_p_of_0():
    # Two seeds at 4.2 % against a base at 0 % on 24 problems: the one-sample t used to say p = 0.
    base = {0: [0] * 24, 1: [0] * 24}
    dist = {0: [1] + [0] * 23, 1: [1] + [0] * 23}
    c = compare(base, dist)
    assert c.seed_test.p is None and "zero spread" in c.seed_test.note
    assert c.other.summary.zero_spread and c.other.summary.ci_low is None
    # One problem flipped, at both seeds: |T| = 2 under every sign, so the data carry no evidence.
    assert c.test.p == pytest.approx(0.5) and c.test.p_conventional == pytest.approx(1.0)
    assert c.delta_ci.low <= 0 <= c.delta_ci.high


def test_compare_errors_name_the_side():
    with pytest.raises(StatsError, match="different problems"):
        compare(run(70), [run(60, 99)])
    with pytest.raises(StatsError, match="same problems"):
        compare(run(70), [run(60), run(60, 99)])
    with pytest.raises(StatsError, match="no runs"):
        compare(run(70), {})


def test_compare_to_dict_is_plain_json_and_recomputable():
    c = compare({0: run(60), 1: run(62)}, {0: run(70), 1: run(70)}, n_boot=500)
    d = json.loads(dumps(c))
    again = compare(
        dict(zip(d["reference"]["seeds"], d["reference"]["correct"])),
        dict(zip(d["other"]["seeds"], d["other"]["correct"])),
        n_boot=d["n_boot"],
        seed=d["boot_seed"],
    )
    assert json.loads(dumps(again)) == d


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
    assert (r.method, r.p, r.statistic) == ("undefined", None, None)
    dumps(r)
    with pytest.raises(StatsError, match="same problems"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(StatsError, match="true/false or 0/1"):
        mcnemar([1, None], [1, 0])
    assert mcnemar([True, False], [np.bool_(True), 1.0]).other_only == 1
