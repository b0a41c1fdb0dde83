"""VaR, CVaR and their standard errors against closed forms on known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from levgym.analytics.risk import (
    bootstrap_se,
    cvar_se_delta,
    expected_shortfall,
    probability_block,
    summarize_paths,
    value_at_risk,
    var_se_order_statistic,
    wilson_interval,
)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


Z = {0.95: 1.6448536269514722, 0.99: 2.3263478740408408}


def test_var_cvar_exact_on_a_small_sample_by_hand():
    x = np.arange(1, 101, dtype=float)  # 1..100, shuffled below
    rng = np.random.default_rng(1)
    rng.shuffle(x)
    assert value_at_risk(x, 0.95) == 95.0
    assert expected_shortfall(x, 0.95) == pytest.approx((96 + 97 + 98 + 99 + 100) / 5)
    assert value_at_risk(x, 0.99) == 99.0
    assert expected_shortfall(x, 0.99) == pytest.approx(100.0)
    # n * level not an integer: k = ceil(10 * 0.95) = 10, the boundary path counts 0.5
    y = np.arange(1, 11, dtype=float)
    assert value_at_risk(y, 0.95) == 10.0
    assert expected_shortfall(y, 0.95) == pytest.approx(10.0)
    assert value_at_risk(y, 0.85) == 9.0
    # (X_(10) + (9 - 8.5) * X_(9)) / (10 * 0.15) = (10 + 4.5) / 1.5
    assert expected_shortfall(y, 0.85) == pytest.approx(14.5 / 1.5)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_normal_and_exponential_closed_forms(level):
    rng = np.random.default_rng(7)
    n = 400_000
    z = rng.standard_normal(n)
    assert value_at_risk(z, level) == pytest.approx(Z[level], abs=0.02)
    assert expected_shortfall(z, level) == pytest.approx(_phi(Z[level]) / (1 - level), abs=0.02)
    lam = 2.0
    e = rng.exponential(1 / lam, n)
    var = -math.log(1 - level) / lam
    assert value_at_risk(e, level) == pytest.approx(var, rel=0.02)
    assert expected_shortfall(e, level) == pytest.approx(var + 1 / lam, rel=0.02)


def test_cvar_is_at_least_var_including_atoms():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        x = np.where(rng.random(n) < rng.random(), 0.0, rng.pareto(1.5, n))
        for level in (0.5, 0.9, 0.95, 0.99):
            assert expected_shortfall(x, level) >= value_at_risk(x, level) - 1e-12


def test_point_mass_at_zero():
    x = np.zeros(1000)
    x[:20] = np.arange(1, 21)  # 2% of paths have bad debt
    assert value_at_risk(x, 0.95) == 0.0
    assert var_se_order_statistic(x, 0.95) == 0.0
    assert value_at_risk(x, 0.99) == 10.0
    # worst 10 paths: 11..20
    assert expected_shortfall(x, 0.99) == pytest.approx(15.5)
    p = probability_block(x > 0, "p")
    assert p["p"] == pytest.approx(0.02)
    assert p["p_se"] == pytest.approx(math.sqrt(0.02 * 0.98 / 1000))


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_standard_errors_match_the_spread_of_the_estimator(level):
    """Over many replications, the analytic SEs are close to the sd of the estimates."""
    rng = np.random.default_rng(11)
    n, reps = 2000, 300
    samples = rng.lognormal(0.0, 1.0, (reps, n))
    vars_ = np.array([value_at_risk(s, level) for s in samples])
    cvars = np.array([expected_shortfall(s, level) for s in samples])
    var_se = np.mean([var_se_order_statistic(s, level) for s in samples])
    cvar_se = np.mean([cvar_se_delta(s, level) for s in samples])
    assert var_se == pytest.approx(np.std(vars_), rel=0.25)
    assert cvar_se == pytest.approx(np.std(cvars), rel=0.3)
    # the bootstrap agrees with the analytic SE on one sample
    s = samples[0]
    boot = bootstrap_se(s, lambda a: expected_shortfall(a, level), n_boot=300)
    assert boot == pytest.approx(cvar_se_delta(s, level), rel=0.35)


def test_wilson_interval_covers_zero_events():
    lo, hi = wilson_interval(0, 1000)
    assert lo == 0.0
    assert 0.001 < hi < 0.006


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="level=1.5"):
        value_at_risk([1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="empty"):
        expected_shortfall([], 0.9)
    with pytest.raises(ValueError, match="NaN"):
        value_at_risk([1.0, float("nan")], 0.9)


def test_summary_keys_and_tvl_fractions():
    rng = np.random.default_rng(0)
    n = 500
    per_path = {
        "bad_debt_measured_usd": np.where(rng.random(n) < 0.3, rng.exponential(1e6, n), 0.0),
        "liquidated_usd": rng.exponential(1e7, n),
        "tvl_usd": np.full(n, 3e8),
        "liquidated_position_frac": rng.random(n),
        "liquidations": rng.integers(0, 5, n).astype(float),
        "amplification": 1 + rng.exponential(0.3, n),
        "revenue_usd": rng.random(n),
        "final_debt_value_usd": rng.random(n),
    }
    s = summarize_paths(per_path)
    for key in (
        "var_95_bad_debt_usd",
        "var_99_bad_debt_usd",
        "cvar_95_bad_debt_usd",
        "cvar_99_bad_debt_usd",
        "lar_95_liquidated_usd",
        "lar_99_liquidated_usd",
        "prob_bad_debt",
    ):
        assert f"{key}_se" in s
        assert s[key] >= 0
    assert s["var_99_bad_debt_tvl_frac"] == pytest.approx(s["var_99_bad_debt_usd"] / 3e8)
    assert s["cvar_95_bad_debt_tvl_frac_se"] == pytest.approx(s["cvar_95_bad_debt_usd_se"] / 3e8)
    assert s["cvar_99_bad_debt_usd"] >= s["var_99_bad_debt_usd"]
    assert s["prob_bad_debt"] == pytest.approx(np.mean(per_path["bad_debt_measured_usd"] > 0))


def test_amplification_is_summarized_over_paths_that_fell():
    n = 100
    per_path = {
        "bad_debt_measured_usd": np.zeros(n),
        "liquidated_usd": np.zeros(n),
        "tvl_usd": np.full(n, 1e6),
        "liquidated_position_frac": np.zeros(n),
        "liquidations": np.zeros(n),
        "amplification": np.r_[np.full(50, 1000.0), np.linspace(1.0, 2.0, 50)],
        "fundamental_min_over_start": np.r_[np.full(50, 0.999), np.full(50, 0.9)],
        "revenue_usd": np.zeros(n),
        "final_debt_value_usd": np.zeros(n),
    }
    s = summarize_paths(per_path)
    assert s["amplification_paths"] == 50
    assert s["amplification_max"] == 2.0
    assert s["amplification_mean"] == pytest.approx(1.5)
    per_path["fundamental_min_over_start"] = np.full(n, 0.995)
    s = summarize_paths(per_path)
    assert s["amplification_paths"] == 0 and s["amplification_mean"] is None
