"""The keepers' off-pool venues of the multi-asset step (``PortfolioMarketParams.keeper_venue_frac``
and the split across the pool, an aggregator route and a CEX leg, with the CEX leg's held
collateral per reserve): numpy, numba and the loop twin agree on multi-asset books; the
defaults route nothing; the settings are checked."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym.engine import portfolio_market as PM
from levgym.engine.reference_portfolio import ref_substep

from .test_portfolio_market import RES, SETTINGS, _close, _setup

ROUTINGS = [
    dict(keeper_venue_frac=0.9, keeper_venue_depth_usd=5e6),
    dict(keeper_venue_frac=0.3, keeper_venue_depth_usd=1e6),
    dict(keeper_aggregator_depth_usd=4e6),
    dict(keeper_cex_depth_usd=3e6, keeper_cex_latency_substeps=0.0),
    dict(
        keeper_aggregator_depth_usd=2e6,
        keeper_aggregator_fee_frac=0.0,
        keeper_cex_depth_usd=6e6,
        keeper_cex_latency_substeps=2.5,
    ),  # fmt: skip
    dict(keeper_cex_depth_usd=6e6, keeper_cex_latency_substeps=1.0, keeper_cex_fee_frac=0.002),
]


def _params(
    routing: dict, keepers: str, chunk: float, arb: float = 1.0
) -> PM.PortfolioMarketParams:
    """Shallow pools; arbitrage closes the pools' gap each substep (``arb``), so that the split
    routes sales off them from the first round (a lagging pool above the fundamental pays more
    than the venues until the sales bring it down)."""
    return PM.PortfolioMarketParams(
        arb_speed_frac=arb,
        volatile_pool_depth_usd=2e6,
        stable_pool_depth_usd=3e6,
        profitability_filter=keepers,
        keeper_max_slippage_frac=chunk,
        gas_usd_per_call=5.0,
        **routing,
    )


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.08, 0.2]),
    routing=st.sampled_from(ROUTINGS),
    keepers=st.sampled_from(list(PM.KEEPER_FILTERS)),
    chunk=st.sampled_from([1.0, 0.01]),
    arb=st.sampled_from([1.0, 0.5]),
    statistics=st.booleans(),
)
def test_venues_numpy_numba_and_loop_agree(seed, crash, routing, keepers, chunk, arb, statistics):
    """Multi-asset books on a fall: every counter, the pools, the keepers' result, the CEX
    leg's held collateral and, with ``statistics``, the lowest prices, the positions liquidated
    and the protocol fee in USD: numpy and numba to 1e-12, the loop twin (its own split by
    bisection on the marginal price) to 1e-9."""
    params = dataclasses.replace(_params(routing, keepers, chunk, arb), statistics=statistics)
    state, f = _setup(seed, 2, 8, params, 4, crash)
    a = b = state
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        a, _ = PM.substep(a, f[t], RES, params)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba")
        ref = ref_substep(RES, ref, f[t], params)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])
    assert (db["keeper_cex_pending_asset"] is None) == (da["keeper_cex_pending_asset"] is None)
    c = a.counters
    off = c["venue_sold_asset"] + c["aggregator_sold_asset"] + c["cex_sold_asset"]
    if arb == 1.0 and c["sold_asset"].sum() > 0:  # pools at the fundamental: the venues pay more
        assert off.sum() > 0
    assert (a.ever_liquidated is not None) == statistics
    if statistics and a.liquidations.sum() > 0:
        assert a.ever_liquidated.any() and np.all(a.pool_min_usd <= a.fundamental_min_usd * 1.5)


def test_routes_carry_sales_and_keep_the_identities():
    """A fall with each routing: the off-pool counters are parts of ``sold_asset``, sales went
    off the pool, the accounting identities hold, and the pools moved less than with the pool
    alone."""
    plain = _params({}, "alone", 1.0)
    state, f = _setup(5, 2, 16, plain, 5, 0.15)
    base = PM.run(state, f, RES, plain)
    assert base.liquidations.sum() > 0
    for routing in ROUTINGS:
        params = _params(routing, "alone", 1.0)
        s1 = PM.run(state, f, RES, params)
        c = s1.counters
        off = c["venue_sold_asset"] + c["aggregator_sold_asset"] + c["cex_sold_asset"]
        assert off.sum() > 0, routing
        assert np.all(off <= c["sold_asset"] * (1 + 1e-12) + 1e-12)
        coll_gap, debt_gap = PM.accounting_gaps(s1)
        assert np.all(np.abs(coll_gap) <= 1e-9 * (c["initial_collateral_asset"] + 1.0))
        assert np.all(np.abs(debt_gap) <= 1e-9 * (c["initial_debt_asset"] + c["interest_asset"] + 1.0))  # fmt: skip
        # the volatile pools kept more of their price than when every sale hit them
        w = RES.index("WETH")
        price = s1.pool_quote[:, w] / s1.pool_asset[:, w]
        assert np.all(price >= base.pool_quote[:, w] / base.pool_asset[:, w] * (1 - 1e-12))
        latent = params.keeper_cex_latent
        assert (s1.keeper_cex_pending_asset is not None) == latent
        if latent:
            assert s1.keeper_cex_pending_asset.sum() > 0


def test_default_routing_is_the_pool_and_settings_are_checked():
    p = PM.PortfolioMarketParams()
    assert p.keeper_routing == "pool" and not p.keeper_cex_latent
    assert PM.keeper_routes(p, np.ones((1, 2)), 1) is None
    state, f = _setup(3, 2, 8, p, 3, 0.2)
    s1 = PM.run(state, f, RES, p)
    assert s1.keeper_cex_pending_asset is None
    for key in ("venue_sold_asset", "aggregator_sold_asset", "cex_sold_asset"):
        assert np.all(s1.counters[key] == 0.0)
    with pytest.raises(ValueError, match="keeper_venue_frac=1.5 is out of range"):
        PM.PortfolioMarketParams(keeper_venue_frac=1.5)
    with pytest.raises(ValueError, match="allowed one routing"):
        PM.PortfolioMarketParams(keeper_venue_frac=0.5, keeper_cex_depth_usd=1e6)
    with pytest.raises(ValueError, match="stable_pool='stableswap' are not supported"):
        PM.PortfolioMarketParams(keeper_venue_frac=0.5, stable_pool="stableswap")
    split = PM.PortfolioMarketParams(keeper_cex_depth_usd=1e6, keeper_cex_latency_substeps=4.0)
    assert split.keeper_routing == "split" and split.keeper_cex_fill_frac == 0.25
    assert dataclasses.replace(split, keeper_cex_latency_substeps=0.0).keeper_cex_latent is False
