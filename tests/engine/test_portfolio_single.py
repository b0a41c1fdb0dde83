""":mod:`levgym.engine.portfolio_single`: the single engine's market mapped onto the asset-axis
step's K = 1 market and back. The runs it makes equal are in ``test_portfolio_single_parity*.py``
and ``tests/test_simulation_single_portfolio.py``; here: the mapping itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine import portfolio_single as PS
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from levgym.engine.params import EngineParams, preset_params
from levgym.engine.rules import DEFENSIVE, LOOPER
from levgym.engine.schema import STATE_SCHEMA
from levgym.engine.state import init_state


def _state(p: EngineParams, e: int = 4, n: int = 48):
    d = scenarios.get("shock").drivers(e, 2, p, 1)
    return init_state(
        p, e, n, np.random.default_rng([7, 0]), fundamental_usd=d.fundamental_usd[0],
        debt_price_usd=d.debt_price_usd[0], liquidity_frac=d.liquidity_frac[0],
        gas_gwei=d.gas_gwei[0],
    )  # fmt: skip


@pytest.mark.parametrize("preset", ["aave_v3_weth", "aave_v2_weth"])
@pytest.mark.parametrize("statistics", [False, True])
def test_a_state_maps_there_and_back_unchanged(preset, statistics):
    """``to_single_state(from_single_state(s))`` is ``s``, every field (with a CEX leg that
    holds collateral, a warmed clock and reserves), and the portfolio state holds the single
    one's positions, pool, feed, lenders, reserves and behaviours where the step reads them."""
    p = preset_params(preset)
    p = dataclasses.replace(
        p, market=dataclasses.replace(p.market, keeper_cex_depth_usd=1e7, keeper_venue_frac=0.0)
    )
    s = _state(p)
    s = s.replace(
        keeper_cex_pending_asset=np.linspace(0.0, 3.0, s.num_envs),
        oracle_updated_h=np.full(s.num_envs, -0.5),
        time_h=12.0,
        substep_index=7,
    )
    res = PS.single_reserves(p)
    params = PS.single_market_params(p, statistics=statistics)
    ps = PS.from_single_state(s, res, params)
    w, u = res.index("WETH"), res.index("USDC")
    np.testing.assert_array_equal(ps.supply[..., w], s.collateral_asset)
    np.testing.assert_array_equal(ps.debt[..., u], s.debt_usd)
    assert not ps.supply[..., u].any() and not ps.debt[..., w].any()
    np.testing.assert_array_equal(ps.treasury_asset[:, u], s.reserves_usd)
    np.testing.assert_array_equal(ps.lender_supply_asset[:, u], s.supply_usd)
    np.testing.assert_array_equal(ps.feed_updated_h[:, w], s.oracle_updated_h)
    assert ps.time_h == 12.0 and ps.substep_index == 7
    defensive = s.active & (s.kind == DEFENSIVE)
    np.testing.assert_array_equal(ps.defend_trigger_hf > 0, defensive)
    assert np.all(np.isinf(ps.defend_capacity_usd[defensive]))
    np.testing.assert_array_equal(ps.looper_target_hf > 0, s.active & (s.kind == LOOPER))
    assert (ps.fundamental_min_usd is not None) == statistics
    back = PS.to_single_state(ps, s, res)
    for f in STATE_SCHEMA:
        np.testing.assert_array_equal(getattr(back, f.name), getattr(s, f.name), err_msg=f.name)
    assert back.time_h == s.time_h and back.substep_index == s.substep_index


def test_the_protocol_and_market_settings_reach_the_reserves_and_the_step():
    """Each single-engine setting lands on its asset-axis field."""
    p = preset_params("aave_v2_weth")
    pr = dataclasses.replace(p.protocol, borrow_cap_usd=5e6, supply_cap_asset=9e3)
    m = dataclasses.replace(p.market, oracle_kind="twap", profitability_filter=False)
    p = dataclasses.replace(p, protocol=pr, market=m)
    res = PS.single_reserves(p)
    weth, usdc = res.reserves
    assert (weth.ltv, weth.liquidation_threshold, weth.liquidation_bonus) == (0.80, 0.825, 0.05)
    assert weth.protocol_fee_frac == 0.0 and weth.oracle.feed == "twap"
    assert weth.supply_cap_asset == 9e3 and usdc.borrow_cap_asset == 5e6
    assert usdc.oracle.kind == "market" and usdc.slope2_apr == 0.60
    params = PS.single_market_params(p)
    assert params.close_terms == (0.5, 0.0, 0.0, 0.0, 0.0)
    assert params.profitability_filter == "off" and params.keeper_routing == "venue"
    assert params.volatile_pool_depth_usd == 80e6 and params.substep_h == p.run.substep_h
    assert params.deficit_cover == "reserves_then_lenders"


def test_a_passive_book_has_no_reaction_probabilities():
    """Without defenders or loopers no slot acts: the step needs no uniforms."""
    p = preset_params("aave_v3_weth")
    b = dataclasses.replace(p.borrowers, passive_frac=1.0, defensive_frac=0.0, looper_frac=0.0)
    s = _state(dataclasses.replace(p, borrowers=b))
    beh = PS.single_behaviours(s)
    assert beh.react_prob is None and beh.looper_target_hf is None
    assert not beh.trigger_hf.any()


def test_unsupported_settings_name_their_field():
    """Arrivals, exits (rows 10-11) and a supply cap on loopers' purchases: one line each."""
    p = preset_params("aave_v3_weth")
    with pytest.raises(ValueError, match=r"^borrowers.arrival_rate_per_h=0.01 .*rows 10-11"):
        PS.check_supported(p)
    b = dataclasses.replace(p.borrowers, arrival_rate_per_h=0.0)
    with pytest.raises(ValueError, match=r"^borrowers.exit_rate_per_h=0.002 .*allowed 0$"):
        PS.check_supported(dataclasses.replace(p, borrowers=b))
    b = dataclasses.replace(b, exit_rate_per_h=0.0)
    PS.check_supported(dataclasses.replace(p, borrowers=b))
    pr = dataclasses.replace(p.protocol, supply_cap_asset=5.0)
    with pytest.raises(
        ValueError, match=r"^protocol.supply_cap_asset=5 with borrowers.looper_frac"
    ):
        PS.check_supported(dataclasses.replace(p, borrowers=b, protocol=pr))
    b0 = dataclasses.replace(b, looper_frac=0.0, passive_frac=0.7)
    PS.check_supported(dataclasses.replace(p, borrowers=b0, protocol=pr))
    swapped = aave_v3_ethereum_reserves(("USDC", "WETH"))
    with pytest.raises(
        ValueError, match=r"^reserves \['USDC', 'WETH'\]; allowed \['WETH', 'USDC'\]$"
    ):
        PS.from_single_state(_state(p), swapped, PS.single_market_params(p))
