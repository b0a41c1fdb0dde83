"""Keepers' execution venues (``market.keeper_venue_frac``, ``keeper_venue_depth_usd``): a share of
every keeper sale goes to an off-pool venue at the fundamental price; the pool sees the rest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym.engine.cascade import run_cascade
from levgym.engine.params import EngineParams, MarketParams
from levgym.engine.state import from_book


def _cascade(frac: float, depth: float = 500e6, filt: bool = True):
    market = MarketParams(
        pool_depth_usd=20e6, keeper_venue_frac=frac, keeper_venue_depth_usd=depth,
        keeper_max_slippage_frac=1.0, oracle_kind="exact", profitability_filter=filt,
    )  # fmt: skip
    params = EngineParams(market=market)
    # two envs, positions just under HF 1 at price 2000
    coll = np.array([[1000.0, 500.0, 200.0], [1000.0, 500.0, 200.0]])
    debt = coll * 2000.0 * 0.86 / 0.98
    state = from_book(params, coll, debt, 2000.0)
    e = state.num_envs
    out, _ = run_cascade(state, params, np.zeros(e), np.zeros(e, dtype=bool))
    return state, out


def test_no_venue_sells_everything_into_the_pool():
    _, out = _cascade(0.0)
    assert np.all(out.keeper_venue_sold_asset == 0.0)
    assert np.all(out.keeper_sold_asset > 0.0)


@pytest.mark.parametrize("frac", [0.3, 1.0])
def test_the_venue_takes_its_share_and_the_pool_only_the_rest(frac):
    before, out = _cascade(frac)
    np.testing.assert_allclose(out.keeper_venue_sold_asset, frac * out.keeper_sold_asset)
    pool_in = out.pool_asset - before.pool_asset
    np.testing.assert_allclose(
        pool_in, (1.0 - frac) * out.keeper_sold_asset * (1.0 - 0.003), rtol=1e-9, atol=1e-9
    )


def test_routing_to_a_deep_venue_moves_the_pool_less_and_pays_keepers_more():
    # the same liquidations (no profitability filter): half of each sale skips the pool
    _, pool_only = _cascade(0.0, filt=False)
    _, venue = _cascade(0.5, 5e9, filt=False)
    np.testing.assert_allclose(venue.repaid_by_liquidators_usd, pool_only.repaid_by_liquidators_usd)
    assert np.all(venue.pool_price_usd > pool_only.pool_price_usd)
    assert np.all(venue.keeper_profit_usd > pool_only.keeper_profit_usd)


def test_a_venue_makes_liquidations_pay_that_the_pool_alone_would_not():
    _, pool_only = _cascade(0.0)
    _, venue = _cascade(1.0, 5e9)
    assert np.all(venue.liquidations >= pool_only.liquidations)
    assert np.all(venue.repaid_by_liquidators_usd > pool_only.repaid_by_liquidators_usd)


def test_venue_params_are_checked():
    with pytest.raises(ValueError, match=r"market.keeper_venue_frac=1.5 is out of range"):
        MarketParams(keeper_venue_frac=1.5)
    with pytest.raises(ValueError, match=r"market.keeper_venue_depth_usd=0 is out of range"):
        MarketParams(keeper_venue_depth_usd=0.0)
    assert dataclasses.replace(MarketParams(), keeper_venue_frac=0.0) == MarketParams()
