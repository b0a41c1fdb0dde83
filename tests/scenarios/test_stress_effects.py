"""Congestion and a liquidity drought raise bad debt against the same price path without them.

Bad debt here is the protocol's shortfall: debt written off after liquidations plus the debt of
positions whose collateral no longer covers it (``underwater_shortfall_usd``), the measure risk
dashboards call bad debt. Written-off debt alone can fall in a drought: keepers stop liquidating
when slippage eats the bonus, so losses stay on the books instead of being realized.
"""

from __future__ import annotations

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine.params import EngineParams
from levgym.simulation import simulate

PARAMS = EngineParams()
STEPS = 24
S = STEPS * PARAMS.run.substeps_per_step


def run(name: str, overrides: dict[str, str], seed: int):
    d = scenarios.get(name).drivers(8, S, PARAMS, seed, overrides)
    result = simulate(d, PARAMS, 256, seed, STEPS, record=False)
    pe = result.per_env
    return d, pe["bad_debt_value_usd"] + pe["underwater_shortfall_usd"]


@pytest.mark.parametrize(
    ("name", "knob"), [("congestion", "congestion"), ("liquidity_drought", "drought")]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_stress_raises_bad_debt_on_the_same_path(name: str, knob: str, seed: int) -> None:
    on_d, on = run(name, {knob: "true"}, seed)
    off_d, off = run(name, {knob: "false"}, seed)
    np.testing.assert_array_equal(on_d.fundamental_usd, off_d.fundamental_usd)
    assert off.mean() > 1e6  # the fall alone already costs something
    assert on.mean() > 1.02 * off.mean()
    assert np.mean(on > off) >= 0.75


def test_congestion_spikes_gas_during_the_fall() -> None:
    d = scenarios.get("congestion").drivers(16, S, PARAMS, 0)
    hours = np.arange(S) * PARAMS.run.substep_h
    k = scenarios.get("congestion").knobs
    falling = (hours > k["start_hour"] + 1) & (hours < k["start_hour"] + k["drop_hours"])
    before = hours < k["start_hour"]
    assert np.median(d.gas_gwei[falling]) > 1.5 * np.median(d.gas_gwei[before])
    assert (
        np.median(d.gas_gwei[falling]) > PARAMS.market.congestion_ref_gwei
    )  # keeper capacity falls


def test_drought_withdraws_liquidity_and_slows_arbitrage_as_the_price_falls() -> None:
    d = scenarios.get("liquidity_drought").drivers(4, S, PARAMS, 0)
    k = scenarios.get("liquidity_drought").knobs
    f = d.fundamental_usd
    expect = (np.minimum.accumulate(f, axis=0) / f[0]) ** k["drought_elasticity"]
    np.testing.assert_allclose(d.liquidity_frac, expect)
    assert np.all(np.diff(d.liquidity_frac, axis=0) <= 0)
    # half the price gone: about (1/2) ** 1.925 = 0.26 of the liquidity left, noise aside
    assert np.all(d.liquidity_frac[-1] < 0.4)
    np.testing.assert_allclose(d.arb_speed_frac, PARAMS.market.arb_speed_frac * d.liquidity_frac)
