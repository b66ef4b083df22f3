"""Recompute every statistic of a report.json comparison row from the outcomes it stores
(shared by test_report.py and test_evaluate.py), with scipy where scipy has the test."""

import numpy as np
import pytest
from scipy import stats as sps

from app.stats import (
    benjamini_hochberg,
    delta_interval,
    holm,
    min_detectable_effect,
    paired_t,
    seed_summary,
    sign_flip_test,
    welch_t,
    within_problem_test,
)


def recompute(c: dict) -> None:
    """Every statistic of one report.json row, from the per-problem outcomes it stores."""
    s = seed_summary(list(c["accuracy_by_seed"].values()), 0.95)
    assert s.mean == pytest.approx(c["mean"]) and s.std == pytest.approx(c["std"])
    assert c["ci"] is None if s.zero_spread else [max(s.ci_low, 0), min(s.ci_high, 1)] == pytest.approx(c["ci"])
    cmp = c["comparison"]
    ref = np.array(cmp["reference"]["correct"])
    other = np.array(cmp["other"]["correct"])
    assert c["delta"] == pytest.approx(other.mean() - ref.mean())
    assert c["delta"] == pytest.approx(c["mean"] - c["reference_mean"])
    test = (sign_flip_test if c["paired"] else within_problem_test)(ref, other)
    assert (test.p, test.test) == (c["p"], c["test"])
    if c["paired"]:
        # scipy's own exact binomial (McNemar) / t-test agree where they apply.
        if ref.shape[0] == 1:
            b, k = int(((ref == 1) & (other == 0)).sum()), int((ref != other).sum())
            assert test.p_conventional == pytest.approx(sps.binomtest(b, k, 0.5).pvalue)
        t = paired_t(ref.mean(axis=1), other.mean(axis=1))
        assert t.p == c["seed_p"]
        if t.p is not None:
            assert t.p == pytest.approx(sps.ttest_rel(other.mean(axis=1), ref.mean(axis=1)).pvalue)
    ci = delta_interval(ref, other, paired=c["paired"], n_boot=cmp["n_boot"], seed=cmp["boot_seed"], alpha=cmp["alpha"])
    assert [ci.low, ci.high] == pytest.approx(c["delta_ci"])
    assert c["mde"] == pytest.approx(min_detectable_effect(ref, other, alpha=cmp["alpha"]))
    if c["paired"]:
        gained, lost = int(((other == 1) & (ref == 0)).sum()), int(((other == 0) & (ref == 1)).sum())
        assert c["flips"] == {"gained": gained, "lost": lost, "unit": "seed × problem pairs"}
    else:
        assert welch_t(ref.mean(axis=1), other.mean(axis=1)).p == c["seed_p"]
        diff = other.mean(axis=0) - ref.mean(axis=0)
        assert c["flips"] == {
            "gained": int((diff > 0).sum()),
            "lost": int((diff < 0).sum()),
            "unit": "problems (seed means)",
        }


def recompute_family(rows: list[dict], primary: str) -> None:
    first = [r for r in rows if r["tier"] == primary]
    for r, a in zip(first, holm([r["p"] for r in first])):
        assert r["p_adjusted"] == pytest.approx(a)
        assert r["verdict"] == (
            "no significant difference" if a is None or a >= 0.05 else ("better" if r["delta"] > 0 else "DEGRADED")
        )
    rest = [r for r in rows if r["tier"] != primary]
    for r, a in zip(rest, benjamini_hochberg([r["p"] for r in rest])):
        assert r["p_adjusted"] == pytest.approx(a) and r["exploratory"]
