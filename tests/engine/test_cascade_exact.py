"""Hand-built cascades: these positions, this shock, exactly these liquidations, this final price."""

import math

import numpy as np
import pytest

from .helpers import book_sim, quiet_params

LT, BONUS = 0.86, 0.052


def _sell(x, y, dx):
    return x + dx, x * y / (x + dx)


def test_two_round_spiral_exact():
    # Pool: 1000 asset / 100,000 USD (price 100). A at HF 1.05, B at HF 1.12, C at HF 3.
    params = quiet_params(pool_depth_usd=100_000.0)
    d_a, d_b, d_c = 10 * 100 * LT / 1.05, 10 * 100 * LT / 1.12, 10 * 100 * LT / 3.0
    sim = book_sim(params, [[10.0, 10.0, 10.0]], [[d_a, d_b, d_c]], [100.0, 90.0])
    sim.substep()  # nothing moves at 100
    assert float(sim.state.liquidations[0]) == 0.0
    rounds = sim.substep()  # the fundamental falls to 90; arbitrage speed 1 takes the pool there

    # by hand: arbitrage to 90 along x*y = 1e8
    k = 1000.0 * 100_000.0
    x, y = math.sqrt(k / 90.0), math.sqrt(k * 90.0)
    # round 1: A has HF 10*90*0.86/d_a = 0.945 <= 0.95 -> whole debt repaid, seize d_a*1.052/90
    assert 10 * 90 * LT / d_a <= 0.95
    seize_a = d_a * (1 + BONUS) / 90.0
    x, y = _sell(x, y, seize_a)
    p1 = y / x
    # round 2: B's HF at p1 is in (0.95, 1): half of its debt is repaid
    hf_b = 10 * p1 * LT / d_b
    assert 0.95 < hf_b < 1.0
    repay_b = 0.5 * d_b
    seize_b = repay_b * (1 + BONUS) / p1
    x, y = _sell(x, y, seize_b)
    p2 = y / x
    # B is healthy again at p2 (below the toxic frontier a partial liquidation heals), C untouched
    assert (10 - seize_b) * p2 * LT / (d_b - repay_b) > 1.0

    s = sim.state.to_numpy()
    assert int(rounds[0]) == 2
    assert s.liquidations[0] == 2.0
    np.testing.assert_allclose(
        s.collateral_asset[0], [10.0 - seize_a, 10.0 - seize_b, 10.0], rtol=1e-12
    )
    np.testing.assert_allclose(s.debt_usd[0], [0.0, d_b - repay_b, d_c], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.seized_collateral_asset[0], seize_a + seize_b, rtol=1e-12)
    np.testing.assert_allclose(s.repaid_by_liquidators_usd[0], d_a + repay_b, rtol=1e-12)
    np.testing.assert_allclose(s.pool_debt[0] / s.pool_asset[0], p2, rtol=1e-12)
    assert s.bad_debt_usd[0] == 0.0
    # A keeps what was not seized and owes nothing
    assert s.active[0, 0] and s.debt_usd[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_capped_seizure_leaves_bad_debt_covered_by_reserves_then_lenders():
    # One position far underwater after the fall: seizure is capped at the collateral.
    params = quiet_params(pool_depth_usd=1e9)
    d = 10 * 100 * LT / 1.02
    sim = book_sim(params, [[10.0]], [[d]], [100.0, 70.0])
    reserves0 = float(sim.state.reserves_usd[0])
    supply0 = float(sim.state.supply_usd[0])
    sim.substep()
    sim.substep()
    s = sim.state.to_numpy()
    price = s.pool_debt[0] / s.pool_asset[0]
    # the oracle read the pool before the sale: 70 (deep pool, arbitrage speed 1)
    repay = 10 * 70.0 / (1 + BONUS)
    bad = d - repay
    assert s.liquidations[0] == 1.0
    np.testing.assert_allclose(s.repaid_by_liquidators_usd[0], repay, rtol=1e-9)
    np.testing.assert_allclose(s.bad_debt_usd[0], bad, rtol=1e-9)
    from_reserves = min(bad, reserves0)
    np.testing.assert_allclose(s.bad_debt_from_reserves_usd[0], from_reserves, rtol=1e-9)
    np.testing.assert_allclose(s.lender_loss_usd[0], bad - from_reserves, rtol=1e-9)
    np.testing.assert_allclose(s.supply_usd[0], supply0 - (bad - from_reserves), rtol=1e-9)
    assert not s.active[0, 0]
    assert price < 70.0


def test_unprofitable_liquidation_is_left_to_rot():
    # Gas costs more than the bonus pays on a small position: nobody liquidates it.
    params = quiet_params(pool_depth_usd=1e9, gas_units_per_liquidation=500_000.0)
    d = 1.0 * 100 * LT / 1.05
    sim = book_sim(params, [[1.0]], [[d]], [100.0, 90.0])
    gas = 500.0  # gwei: 500e-9 * 5e5 * 90 = 22.5 USD of gas against a ~4.3 USD bonus
    sim.drivers = sim.drivers.replace(gas_gwei=np.full_like(sim.drivers.gas_gwei, gas))
    sim.substep()
    sim.substep()
    s = sim.state.to_numpy()
    hf = s.collateral_asset[0, 0] * s.oracle_usd[0] * LT / s.debt_usd[0, 0]
    assert hf < 1.0
    assert s.liquidations[0] == 0.0


def test_keeper_capacity_takes_the_most_profitable_first():
    params = quiet_params(pool_depth_usd=1e10, keeper_capacity_per_substep=1.0)
    coll = [[1.0, 5.0, 2.0]]
    debt = [[c * 100 * LT / 1.03 for c in coll[0]]]
    sim = book_sim(params, coll, debt, [100.0, 95.0])
    sim.substep()
    sim.substep()
    s = sim.state.to_numpy()
    assert s.liquidations[0] == 1.0
    assert s.ever_liquidated[0].tolist() == [False, True, False]
