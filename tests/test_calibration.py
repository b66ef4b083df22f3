"""The check that matters: with no effect the headline test rejects about 5 % of the time.

Seeded and deterministic, no MLX: app.calibration simulates per-problem outcomes
(problems of varied difficulty, every seed answering independently) and runs the same
test app.comparison uses. The rates were measured with these seeds; the bounds are the
issue's [0.03, 0.07], about ±4 standard errors at 2,000 repetitions.
"""

from app.calibration import family_rejection_rate, rejection_rate


def test_no_effect_rejects_about_5_percent_paired():
    assert 0.03 <= rejection_rate(100, 5, 2000, seed=11) <= 0.07


def test_no_effect_rejects_about_5_percent_with_one_seed_exact_mcnemar():
    assert 0.03 <= rejection_rate(100, 1, 2000, seed=12) <= 0.07


def test_no_effect_rejects_about_5_percent_unpaired():
    assert 0.03 <= rejection_rate(100, 5, 1000, base_seeds=2, seed=13) <= 0.07


def test_a_true_8_point_effect_is_found():
    # Measured 0.88 at 100 problems × 5 seeds; a floor of 0.8 is the conventional target power.
    assert rejection_rate(100, 5, 500, delta=0.08, seed=14) >= 0.8


def test_holm_family_of_three_keeps_the_family_wise_rate():
    assert 0.03 <= family_rejection_rate(100, 5, 2000, configs=3, seed=15) <= 0.07
