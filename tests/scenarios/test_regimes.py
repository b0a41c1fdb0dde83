"""The Markov-switching regime scenarios: spells last as long as their knobs say, paths are
reproducible, and a week's largest drawdown has the tail of ETH's history (the calibration the
docs state)."""

from __future__ import annotations

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine import EngineParams
from levgym.scenarios import data
from levgym.scenarios.regimes import REGIME_KNOBS, REGIMES, regime_path

WEEK = 7 * 24 * 6  # substeps


def _spells(codes: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {r: [] for r in range(len(REGIMES))}
    run, cur = 1, codes[0]
    for c in codes[1:]:
        if c == cur:
            run += 1
        else:
            out[int(cur)].append(run)
            run, cur = 1, c
    return out


def test_spells_last_as_long_as_their_knobs_say():
    rng = np.random.default_rng(0)
    mean_h = np.array([REGIME_KNOBS[f"{r}_hours"] for r in REGIMES])
    moves = np.array([[0, 0.9, 0.1], [0.75, 0, 0.25], [0.2, 0.8, 0]])
    dt = 1.0 / 6.0
    codes = regime_path(rng, 200_000 * 6, 1, dt, mean_h, moves, np.array([1.0, 0, 0]))[:, 0]
    spells = _spells(codes)
    for r, name in enumerate(REGIMES):
        got = np.mean(spells[r][:-1]) * dt
        assert got == pytest.approx(mean_h[r], rel=0.1), name
    # from calm, a tenth of the moves go to a crash
    starts = codes[1:][np.diff(codes) != 0]
    came_from = codes[:-1][np.diff(codes) != 0]
    assert np.mean(starts[came_from == 0] == 2) == pytest.approx(0.1, abs=0.03)


def test_paths_are_reproducible_and_start_at_the_start_price():
    params = EngineParams()
    a = scenarios.get("regime_switching").drivers(3, 200, params, 7)
    b = scenarios.get("regime_switching").drivers(3, 200, params, 7)
    np.testing.assert_array_equal(a.fundamental_usd, b.fundamental_usd)
    np.testing.assert_array_equal(a.gas_gwei, b.gas_gwei)
    assert np.all(a.fundamental_usd[0] == params.market.initial_price_usd)
    assert np.all(a.liquidity_frac <= 1.0 + 1e-12)  # the drought only withdraws liquidity
    with pytest.raises(ValueError, match="scenario.crash_hours"):
        scenarios.get("regime_switching").drivers(1, 10, params, 0, {"crash_hours": "0"})


def _max_drawdown(prices: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(prices, axis=0)
    return (1.0 - prices / peak).max(axis=0)


def test_a_weeks_largest_drawdown_has_eths_tail():
    r = data.hourly_log_returns()
    lp = np.concatenate([[0.0], np.cumsum(r)])
    weeks = np.stack([np.exp(lp[s : s + 169]) for s in range(0, len(lp) - 168, 24)], axis=1)
    eth = np.quantile(_max_drawdown(weeks), [0.9, 0.95, 0.99])
    sim = scenarios.get("regime_switching").drivers(300, WEEK, EngineParams(), 1_000_000)
    ours = np.quantile(_max_drawdown(sim.fundamental_usd), [0.9, 0.95, 0.99])
    np.testing.assert_allclose(ours, eth, atol=0.05)
    stress = scenarios.get("regime_stress").drivers(300, WEEK, EngineParams(), 1_000_000)
    assert np.median(_max_drawdown(stress.fundamental_usd)) > np.median(
        _max_drawdown(sim.fundamental_usd)
    )
