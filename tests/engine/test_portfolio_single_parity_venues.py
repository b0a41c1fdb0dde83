"""K = 1 parity of the keepers' off-pool venues (docs/cross-margin.md, rows 12 and 15 of "What a
single-asset preset uses that the asset-axis step lacks"): the multi-asset step with one
collateral (WETH) and one debt asset (USDC), its keepers routing a fixed share of every sale to a
venue (``keeper_venue_frac``, ``aave_v2_weth``'s book preset: 90 % to a $200M venue) or splitting
it across the pool, an aggregator route and a CEX leg with latency (``keeper_aggregator_depth_usd``,
``keeper_cex_depth_usd``; the CEX leg's collateral held per reserve in
``PortfolioState.keeper_cex_pending_asset`` and filled by ``portfolio_market.cex_fills``), equals
the single engine's run to 1e-12 after every substep, numpy and numba. The keepers' routing is
mapped by :func:`levgym.engine.portfolio_single.single_market_params`; the helpers are
``test_portfolio_single_parity``'s."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine import portfolio_market as PM
from levgym.engine import portfolio_single as PS
from levgym.engine.params import BOOK_PRESETS, PRESETS
from levgym.engine.step import substep as single_substep

from .test_portfolio_single_parity import (
    GAS_GWEI,
    TOL,
    _portfolio_params,
    _reserves,
    _run_both,
    _single_params,
    _start_state,
)

V2_MARKET = BOOK_PRESETS["aave_v2_weth"]["market"]
ROUTES = {
    # aave_v2_weth's book preset: 90 % of every sale to a $200M venue, an $80M pool
    "v2_venue": dict(
        keeper_venue_frac=V2_MARKET["keeper_venue_frac"],
        keeper_venue_depth_usd=V2_MARKET["keeper_venue_depth_usd"],
        pool_depth_usd=V2_MARKET["pool_depth_usd"],
    ),
    # the split across a thin pool ($4M: the $3M book's sales move it) and an aggregator route
    "aggregator": dict(pool_depth_usd=4e6, keeper_aggregator_depth_usd=20e6),
    # the split with a CEX leg that fills over 3 substeps
    "aggregator_cex": dict(
        pool_depth_usd=4e6,
        keeper_aggregator_depth_usd=10e6,
        keeper_cex_depth_usd=30e6,
        keeper_cex_latency_substeps=3.0,
    ),  # fmt: skip
    # a CEX leg sold at once
    "cex_now": dict(pool_depth_usd=4e6, keeper_cex_depth_usd=20e6, keeper_cex_latency_substeps=0.0),
}
"""The single engine's routings compared (``market.*``)."""


def _case(route, oracle_kind, keepers, knobs, preset=None, steps=8):
    p = _single_params(oracle_kind, keepers, 0.3)
    p = dataclasses.replace(p, market=dataclasses.replace(p.market, **ROUTES[route]))
    if preset is not None:
        p = dataclasses.replace(p, protocol=PRESETS[preset])
    e, n = 6, 64
    drivers = scenarios.get("shock").drivers(
        e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]}
    )
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    res = _reserves(p)
    # the single engine's close factor (no leftover rule), bad-debt accounting and routing
    params = _portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    s = _start_state(p, drivers, e, n)
    return p, rows, res, params, s


def _venue_counters_agree(s0, s1, ps, res):
    """The venue counters and the CEX leg's held collateral, to 1e-12."""
    w = res.index("WETH")
    c = ps.counters

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * max(np.max(np.abs(b)), 1.0))

    close(c["sold_asset"][:, w], s1.keeper_sold_asset - s0.keeper_sold_asset)
    close(c["venue_sold_asset"][:, w], s1.keeper_venue_sold_asset - s0.keeper_venue_sold_asset)
    close(c["aggregator_sold_asset"][:, w], s1.keeper_aggregator_sold_asset - s0.keeper_aggregator_sold_asset)  # fmt: skip
    close(c["cex_sold_asset"][:, w], s1.keeper_cex_sold_asset - s0.keeper_cex_sold_asset)
    pend = ps.keeper_cex_pending_asset
    if pend is None:
        assert np.all(s1.keeper_cex_pending_asset == 0.0)
    else:
        close(pend[:, w], s1.keeper_cex_pending_asset)


SHOCKS = [("0", "1", "0.4"), ("0.4", "0.05", "0.3")]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults"), ("chainlink", "chunks")])  # fmt: skip
@pytest.mark.parametrize(("start_hour", "drop_hours", "drop_frac"), SHOCKS)
def test_a_run_with_the_single_engines_keeper_routing(
    backend, route, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """The single engine's keeper routings (:data:`ROUTES`) with its defensive borrowers and
    keeper settings: after every substep the run equals the single engine's to 1e-12 (pool,
    oracle, positions, keepers' result, bad debt: ``_run_both``) and so do the venue counters
    and the CEX leg's held collateral; the routes carried sales."""
    knobs = {"start_hour": start_hour, "drop_hours": drop_hours, "drop_frac": drop_frac}
    p, rows, res, params, s = _case(route, oracle_kind, keepers, knobs)
    assert params.keeper_routing == ("venue" if route == "v2_venue" else "split")
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    _venue_counters_agree(s0, s1, ps, res)
    assert s1.liquidations.sum() > 0
    off = s1.keeper_venue_sold_asset + s1.keeper_aggregator_sold_asset + s1.keeper_cex_sold_asset
    assert off.sum() > 0
    if route == "aggregator_cex":  # collateral still held at the end, and some of it filled
        assert s1.keeper_cex_pending_asset.sum() > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults")])
def test_aave_v2_weths_book_preset_venue_and_close_factor(backend, oracle_kind, keepers):
    """``aave_v2_weth`` with its book preset's keepers (90 % of sales to a $200M venue, an $80M
    pool) and its close factor (``_single_close``): equal to 1e-12; the pool alone (the step's
    default routing) gives another run."""
    knobs = {"start_hour": "0", "drop_hours": "1", "drop_frac": "0.4"}
    p, rows, res, params, s = _case("v2_venue", oracle_kind, keepers, knobs, "aave_v2_weth")
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    _venue_counters_agree(s0, s1, ps, res)
    w = res.index("WETH")
    plain_params = dataclasses.replace(params, keeper_venue_frac=0.0)
    plain = PS.from_single_state(s0, res, plain_params)
    e, n = s0.collateral_asset.shape
    for t, row in enumerate(rows):
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        plain, _ = PM.substep(
            plain, f, res, plain_params, backend=backend, gas_gwei=row.gas_gwei, noise_u=noise
        )
    assert not np.allclose(plain.pool_asset[:, w], ps.pool_asset[:, w], rtol=1e-6)
    assert not np.allclose(plain.keeper_pnl_usd, ps.keeper_pnl_usd, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("route", ["v2_venue", "aggregator_cex"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults")])
@pytest.mark.parametrize(("start_hour", "drop_hours", "drop_frac"), SHOCKS)
def test_the_single_engines_statistics_fields(
    backend, route, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """``market.statistics``: the lowest fundamental and pool price so far, the positions
    liquidated at least once and the protocol fee at the oracle (the single engine's
    ``fundamental_min_usd``, ``pool_min_usd``, ``ever_liquidated``, ``protocol_fee_usd``) equal
    the single engine's after every substep to 1e-12 (with its keepers' routing and defensive
    borrowers); without the option they are not kept."""
    knobs = {"start_hour": start_hour, "drop_hours": drop_hours, "drop_frac": drop_frac}
    p, rows, res, params, s = _case(route, oracle_kind, keepers, knobs, "aave_v3_weth")
    params = dataclasses.replace(params, statistics=True)
    e, n = s.collateral_asset.shape
    w, u = res.index("WETH"), res.index("USDC")
    ps = PS.from_single_state(s, res, params)
    s0 = s

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * max(np.max(np.abs(b)), 1.0))

    for t, row in enumerate(rows):
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        s, _ = single_substep(s, row, noise, p)
        ps, _ = PM.substep(
            ps, f, res, params, backend=backend, gas_gwei=row.gas_gwei, noise_u=noise
        )
        close(ps.fundamental_min_usd[:, w], s.fundamental_min_usd)
        close(ps.pool_min_usd[:, w], s.pool_min_usd)
        np.testing.assert_array_equal(ps.ever_liquidated, s.ever_liquidated)
        close(ps.counters["protocol_fee_usd"][:, w], s.protocol_fee_usd - s0.protocol_fee_usd)
        close(ps.keeper_pnl_usd, s.keeper_profit_usd - s0.keeper_profit_usd)
        assert np.all(ps.fundamental_min_usd[:, u] == 1.0)
    assert s.ever_liquidated.sum() > 0 and s.protocol_fee_usd.sum() > 0
    assert np.all(s.pool_min_usd < s0.pool_min_usd)
    off = dataclasses.replace(params, statistics=False)
    noise = np.random.default_rng([3, 1, 0]).random((e, n))
    plain = PM.substep(PS.from_single_state(s0, res, off), f, res, off, backend=backend, noise_u=noise)[0]  # fmt: skip
    assert plain.fundamental_min_usd is None and plain.ever_liquidated is None
