"""The Monte Carlo pipeline against a case solvable by hand: one passive position under GBM.

Setup: one position per path with health factor ``HF0`` at the start, a passive borrower, no
arrivals or exits, zero interest, an exact oracle reading the fundamental only, a pool so deep
that liquidations do not move it and no gas. Then ``HF_t = HF0 * P_t / P_0`` and the position is
liquidated exactly when the price first falls below ``P_0 / HF0``: the probability is the
first-passage probability of Brownian motion with drift ``-sigma^2 / 2`` below ``-ln HF0``
(reflection principle), monitored at the substeps. Discrete monitoring is handled with the
Broadie-Glasserman-Kou correction: shift the barrier away by ``0.5826 sigma sqrt(dt)``.

The engine starts the book at the first driver row, so the path has ``S - 1`` increments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from levgym import scenarios
from levgym.analytics.heatmap import debt_by_price, liquidation_prices_rel
from levgym.analytics.montecarlo import MonteCarloConfig, run_paths
from levgym.analytics.risk import summarize_paths
from levgym.analytics.sensitivity import run_sensitivities
from levgym.engine.params import (
    HOURS_PER_YEAR,
    BorrowerParams,
    EngineParams,
    MarketParams,
    ProtocolParams,
)
from levgym.simulation import Simulator

HF0 = 1.1
VOL = 2.0
HORIZON_H = 24.0
BGK_BETA = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi)


def barrier_params() -> EngineParams:
    return EngineParams(
        protocol=ProtocolParams(base_rate_apr=0.0, slope1_apr=0.0, slope2_apr=0.0),
        market=MarketParams(
            oracle_kind="exact",
            oracle_pool_weight_frac=0.0,
            pool_depth_usd=1e15,
            gas_units_per_liquidation=0.0,
        ),
        borrowers=BorrowerParams(
            total_collateral_usd=1e6,
            initial_active_frac=1.0,
            hf_floor=1.0,
            hf_median_excess=HF0 - 1.0,
            hf_sigma=0.0,
            passive_frac=1.0,
            defensive_frac=0.0,
            looper_frac=0.0,
            arrival_rate_per_h=0.0,
            exit_rate_per_h=0.0,
        ),
    )


def factory(n, s, params, seed):
    return scenarios.get("calm").drivers(
        n, s, params, seed, {"vol_annual": str(VOL), "gas_gwei": "0"}
    )


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def first_passage(a: float, sigma: float, t: float) -> float:
    """P(min_{s<=t} X_s <= -a) for X = nu s + sigma W, nu = -sigma^2/2, a > 0."""
    nu = -0.5 * sigma * sigma
    b = -a
    s = sigma * math.sqrt(t)
    return _norm_cdf((b - nu * t) / s) + math.exp(2 * nu * b / sigma**2) * _norm_cdf(
        (b + nu * t) / s
    )


def discrete_probability(hf0: float, params: EngineParams, substeps: int) -> float:
    dt = params.run.substep_h / HOURS_PER_YEAR
    t = (substeps - 1) * dt
    a = math.log(hf0) + BGK_BETA * VOL * math.sqrt(dt)
    return first_passage(a, VOL, t)


def test_liquidation_probability_is_the_barrier_probability():
    params = barrier_params()
    cfg = MonteCarloConfig(paths=4000, positions=1, horizon_h=HORIZON_H, seed=5, batch_size=4000)
    res = run_paths(params, factory, cfg)
    s = summarize_paths(res.per_path)
    expected = discrete_probability(HF0, params, cfg.num_substeps(params))
    continuous = first_passage(math.log(HF0), VOL, cfg.horizon_h / HOURS_PER_YEAR)
    assert 0.2 < expected < 0.6
    assert s["prob_liquidation"] == pytest.approx(
        expected, abs=4 * s["prob_liquidation_se"] + 0.004
    )
    # one position per path: the share of positions liquidated is the any-liquidation frequency
    assert s["prob_liquidation"] == pytest.approx(s["prob_any_liquidation"])
    # the continuity correction matters at this resolution and the estimate sits below the
    # continuous-monitoring probability, as it must
    assert continuous - expected > 0.02
    assert s["prob_liquidation"] < continuous
    # gap-free paths with a 5% bonus and 1/LT > 1 + bonus: liquidations leave no bad debt
    assert s["prob_bad_debt"] == 0.0


def test_price_delta_matches_the_closed_form():
    """Scaling the path by 1 +- h right after the book is drawn moves HF0 to HF0 (1 +- h)."""
    params = barrier_params()
    cfg = MonteCarloConfig(paths=3000, positions=1, horizon_h=HORIZON_H, seed=9, batch_size=3000)
    h = 0.03
    rows = run_sensitivities(params, factory, cfg, price_bump_frac=h, param_bumps={})
    row = next(r for r in rows if r.input == "price" and r.metric == "prob_liquidation")
    s = cfg.num_substeps(params)
    up = discrete_probability(HF0 * (1 + h), params, s)
    down = discrete_probability(HF0 * (1 - h), params, s)
    assert row.value_up == pytest.approx(up, abs=0.035)
    assert row.value_down == pytest.approx(down, abs=0.035)
    expected_delta = (up - down) / (2 * h) * 0.01
    assert row.method == "central"
    assert row.delta_per_unit < 0
    assert row.delta_per_unit == pytest.approx(
        expected_delta, abs=4 * row.delta_per_unit_se + 0.001
    )


def test_heatmap_places_the_debt_at_the_liquidation_price():
    params = barrier_params()
    drivers = factory(16, 6, params, 0)
    sim = Simulator(params, drivers, 1, 0)
    rel, debt = liquidation_prices_rel(sim.state)
    assert np.allclose(rel, 1.0 / HF0)
    edges = np.linspace(0.0, 1.5, 61)
    hist = debt_by_price(sim.state, edges)
    assert hist.sum() == pytest.approx(debt.sum())
    k = np.searchsorted(edges, 1.0 / HF0) - 1
    assert hist[k] == pytest.approx(debt.sum())
    # after a move the liquidation price (relative to the start) is unchanged for a passive,
    # interest-free position: only the price moved, not the position
    for _ in range(6):
        sim.substep()
    rel_after, _ = liquidation_prices_rel(sim.state)
    alive = debt_by_price(sim.state, edges)
    untouched = ~np.asarray(sim.state.ever_liquidated)[:, 0]
    assert np.allclose(rel_after[untouched], 1.0 / HF0)
    assert alive.sum() > 0
