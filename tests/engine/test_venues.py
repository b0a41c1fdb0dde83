"""Keepers' execution venues: a fixed share of every keeper sale to one off-pool venue
(``market.keeper_venue_frac``, ``keeper_venue_depth_usd``), or the best split over the pool, an
aggregator route and a CEX leg with latency (``keeper_aggregator_*``, ``keeper_cex_*``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.engine import rules as R
from levgym.engine.cascade import cex_fills, run_cascade
from levgym.engine.params import EngineParams, MarketParams
from levgym.engine.reference import _best_split
from levgym.engine.state import from_book

from .helpers import book_sim, quiet_params


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


# ----------------------------------------------------------------------------- the split


def _split(pool, agg=None, cex=None, amount=1.0):
    """route_split over (x, y, fee) venues; ``None`` for an absent one."""
    a = agg or (0.0, 0.0, 0.0)
    c = cex or (0.0, 0.0, 0.0)
    return R.route_split(*pool, *a, *c, amount, agg is not None, cex is not None)


def test_split_over_venues_at_one_price_is_pro_rata_to_depth():
    # a pool of 1000 ETH and an aggregator of 3000 ETH, both at 2000 USD, no fees: at the best
    # split both end at the same price, so each takes in proportion to its reserve
    to_pool, to_agg, to_cex = _split((1000.0, 2e6, 0.0), (3000.0, 6e6, 0.0), amount=400.0)
    assert to_pool == pytest.approx(100.0, rel=1e-12)
    assert to_agg == pytest.approx(300.0, rel=1e-12)
    assert to_cex == 0.0


def test_split_sells_into_the_dearer_venue_first():
    # the pool trades at 1900 after a fall, the aggregator at the fundamental 2000: the first
    # units go to the aggregator alone, until its price is down to 1900:
    # x' = x * sqrt(2000 / 1900), i.e. 1000 * (sqrt(2000/1900) - 1) = 25.978... ETH
    first = 1000.0 * (math.sqrt(2000.0 / 1900.0) - 1.0)
    pool = (2000.0, 2000.0 * 1900.0, 0.0)
    agg = (1000.0, 2e6, 0.0)
    to_pool, to_agg, _ = _split(pool, agg, amount=first * 0.999)
    assert to_pool == pytest.approx(0.0, abs=1e-9)  # the rest of the sale, up to rounding
    assert to_agg == pytest.approx(first * 0.999, rel=1e-12)
    # beyond it both take a share, at one marginal price
    to_pool, to_agg, _ = _split(pool, agg, amount=first + 60.0)
    assert to_pool > 0.0 and to_agg > first
    assert to_pool + to_agg == pytest.approx(first + 60.0, rel=1e-12)
    assert 1900.0 * 2000.0**2 / (2000.0 + to_pool) ** 2 == pytest.approx(
        2e6 * 1000.0 / (1000.0 + to_agg) ** 2, rel=1e-9
    )


def test_fees_enter_the_split():
    # the same reserves: the venue with the lower fee gets more
    to_pool, to_agg, to_cex = _split(
        (1000.0, 2e6, 0.003), (1000.0, 2e6, 0.0), (1000.0, 2e6, 0.01), amount=50.0
    )
    assert to_agg > to_pool > to_cex >= 0.0
    assert to_pool + to_agg + to_cex == pytest.approx(50.0, rel=1e-12)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    x=st.lists(st.floats(1e2, 1e6), min_size=3, max_size=3),
    price=st.lists(st.floats(1500.0, 2500.0), min_size=3, max_size=3),
    fee=st.lists(st.sampled_from([0.0, 0.001, 0.003, 0.01]), min_size=3, max_size=3),
    use=st.tuples(st.booleans(), st.booleans()),
    amount=st.floats(1e-2, 1e5),
)
def test_split_equals_the_reference_bisection_and_no_other_split_pays_more(
    x, price, fee, use, amount
):
    venues = [(xi, xi * p, f) for xi, p, f in zip(x, price, fee, strict=True)]
    got = _split(venues[0], venues[1] if use[0] else None, venues[2] if use[1] else None, amount)
    absent = (1.0, 0.0, 0.0)
    ref_venues = [venues[0], venues[1] if use[0] else absent, venues[2] if use[1] else absent]
    want = _best_split(ref_venues, amount)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * max(x) + 1e-9 * amount)
    assert sum(got) == pytest.approx(amount, rel=1e-12)

    def proceeds(parts):
        return sum(
            y * a * (1 - f) / (xx + a * (1 - f))
            for (xx, y, f), a in zip(ref_venues, parts, strict=True)
        )

    best = proceeds(got)
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.dirichlet(np.ones(3)) * amount
        if not use[0]:
            w[0] += w[1]
            w[1] = 0.0
        if not use[1]:
            w[0] += w[2]
            w[2] = 0.0
        assert proceeds(w) <= best * (1 + 1e-12)


def test_block_route_out_adds_up_to_the_bundle():
    args = (1000.0, 2e6, 0.003, 4000.0, 8e6, 0.001, 2000.0, 4e6, 0.001)
    sales = [10.0, 40.0, 5.0, 200.0]
    total = R.route_out(*args, sum(sales), True, True)
    through = np.cumsum(sales)
    parts = [
        R.block_route_out(*args, t, s, True, True) for t, s in zip(through, sales, strict=True)
    ]
    assert sum(parts) == pytest.approx(total, rel=1e-12)
    # each unit sold later gets less
    per_unit = [p / s for p, s in zip(parts, sales, strict=True)]
    assert all(a > b for a, b in zip(per_unit, per_unit[1:], strict=False))


# ----------------------------------------------------------------------------- in the cascade


def _split_cascade(**market):
    mk = dict(
        pool_depth_usd=20e6, keeper_max_slippage_frac=1.0, oracle_kind="exact",
        profitability_filter=False,
    )  # fmt: skip
    mk.update(market)
    params = EngineParams(market=MarketParams(**mk))
    coll = np.array([[1000.0, 500.0, 200.0]])
    debt = coll * 2000.0 * 0.86 / 0.98
    state = from_book(params, coll, debt, 2000.0)
    out, _ = run_cascade(state, params, np.zeros(1), np.zeros(1, dtype=bool))
    return state, out


def test_split_routes_every_sale_and_the_pool_sees_only_its_share():
    before, out = _split_cascade(keeper_aggregator_depth_usd=60e6, keeper_cex_depth_usd=40e6,
                                 keeper_cex_latency_substeps=0.0)  # fmt: skip
    agg, cex = out.keeper_aggregator_sold_asset, out.keeper_cex_sold_asset
    assert np.all(agg > 0) and np.all(cex > 0)
    to_pool = out.keeper_sold_asset - agg - cex
    assert np.all(to_pool > 0)
    np.testing.assert_allclose(
        out.pool_asset - before.pool_asset, to_pool * (1.0 - 0.003), rtol=1e-9
    )
    # deeper venues take more: the aggregator (60M, fee 0.1%) more than the CEX (40M, 0.1%)
    assert np.all(agg > cex)
    _, pool_only = _split_cascade()
    np.testing.assert_allclose(out.repaid_by_liquidators_usd, pool_only.repaid_by_liquidators_usd)
    assert np.all(out.pool_price_usd > pool_only.pool_price_usd)
    assert np.all(out.keeper_profit_usd > pool_only.keeper_profit_usd)
    assert np.all(out.keeper_cex_pending_asset == 0.0)


def test_cex_latency_holds_the_collateral_and_sells_it_at_the_later_price():
    """Latency 1: what went to the CEX in the crash substep is sold in the next one, at that
    substep's fundamental; the keeper gains what the price rose meanwhile."""
    market = dict(
        keeper_cex_depth_usd=200e6, keeper_cex_fee_frac=0.0, pool_depth_usd=20e6,
        keeper_max_slippage_frac=1.0, oracle_kind="exact", oracle_pool_weight_frac=0.0,
        profitability_filter=False, gas_units_per_liquidation=0.0,
    )  # fmt: skip
    coll = [[1000.0, 500.0]]
    debt = [[1000.0 * 2000.0 * 0.86 / 1.02, 500.0 * 2000.0 * 0.86 / 1.02]]
    prices = [2000.0, 1900.0, 2090.0, 2090.0]
    runs = {}
    for lat in (0.0, 1.0):
        params = quiet_params(**market, keeper_cex_latency_substeps=lat)
        sim = book_sim(params, coll, debt, prices)
        states = []
        for _ in range(len(prices)):
            sim.substep()
            states.append(sim.state)
        runs[lat] = states
    now, late = runs[0.0], runs[1.0]
    # the same liquidations, the same routing
    crash = next(t for t, s in enumerate(late) if s.liquidations[0] > 0)
    np.testing.assert_allclose(late[-1].keeper_cex_sold_asset, now[-1].keeper_cex_sold_asset)
    held = late[crash].keeper_cex_pending_asset[0]
    assert held > 0.0 and now[crash].keeper_cex_pending_asset[0] == 0.0
    # sold at the next substep's fundamental: profit differs by held * (F[t+1] - F[t])
    assert late[crash + 1].keeper_cex_pending_asset[0] == 0.0
    f_then = late[crash].fundamental_usd[0]
    f_next = late[crash + 1].fundamental_usd[0]
    assert f_next > f_then
    gain = late[crash + 1].keeper_profit_usd[0] - now[crash + 1].keeper_profit_usd[0]
    assert gain == pytest.approx(held * (f_next - f_then), rel=1e-9)


def test_cex_latency_fills_a_share_each_substep():
    params = EngineParams(
        market=MarketParams(keeper_cex_depth_usd=1e8, keeper_cex_latency_substeps=4.0)
    )
    state = from_book(params, np.array([[1.0]]), np.array([[100.0]]), 2000.0)
    state = state.replace(keeper_cex_pending_asset=np.array([8.0]))
    out = cex_fills(state, params)
    assert out.keeper_cex_pending_asset[0] == 6.0
    assert out.keeper_profit_usd[0] == 2.0 * 2000.0


def test_split_params_are_checked():
    with pytest.raises(ValueError, match=r"market.keeper_venue_frac=0.5 with"):
        MarketParams(keeper_venue_frac=0.5, keeper_aggregator_depth_usd=1e8)
    with pytest.raises(ValueError, match=r"market.keeper_cex_fee_frac=0.5 is out of range"):
        MarketParams(keeper_cex_fee_frac=0.5)
    with pytest.raises(ValueError, match=r"market.keeper_cex_latency_substeps=-1 is out of range"):
        MarketParams(keeper_cex_latency_substeps=-1.0)
    assert not MarketParams().keeper_split
    assert MarketParams(keeper_cex_depth_usd=1e8).keeper_split
    assert MarketParams(keeper_cex_latency_substeps=4.0).keeper_cex_fill_frac == 0.25
    assert MarketParams(keeper_cex_latency_substeps=0.5).keeper_cex_fill_frac == 1.0


@pytest.mark.parametrize("latency", [0.0, 2.0])
def test_split_engines_agree_over_a_crash(latency):
    """The array engine, the fused kernel and the reference loop, substep by substep, on a crash
    where keepers route through all three venues (and hold collateral for the CEX)."""
    pytest.importorskip("numba")
    from levgym import scenarios
    from levgym.engine.backend import make_converter
    from levgym.engine.dispatch import substep_function
    from levgym.engine.reference import reference_substep
    from levgym.simulation import Simulator

    from .helpers import compare_states

    market = MarketParams(
        pool_depth_usd=20e6, keeper_aggregator_depth_usd=50e6, keeper_cex_depth_usd=30e6,
        keeper_cex_latency_substeps=latency,
    )  # fmt: skip
    params = EngineParams(market=market)
    drivers = scenarios.get("shock").drivers(
        3, 18, params, 4, {"drop_frac": "0.4", "drop_hours": "1"}
    )
    sim = Simulator(params, drivers, 64, 4)
    state = sim.state
    fused, array = substep_function("numba"), substep_function("numpy")
    held = 0.0
    for t in range(18):
        row, u = drivers.row(t, make_converter("numpy")), sim.noise_at(t)
        slow, slow_rounds = reference_substep(state, row, u, params)
        for fn in (fused, array):
            fast, rounds = fn(state, row, u, params)
            compare_states(fast, slow)
            np.testing.assert_array_equal(rounds, slow_rounds)
        held = max(held, float(slow.keeper_cex_pending_asset.max()))
        state = slow
    assert float(state.keeper_aggregator_sold_asset.min()) > 0.0
    assert float(state.keeper_cex_sold_asset.min()) > 0.0
    assert (held > 0.0) == (latency > 0.0)


def test_the_slippage_limit_counts_every_venue_of_a_split_sale():
    """A keeper call seizes at most ``chunk_ratio`` times the asset reserve of its venues: the
    pool alone, or the pool, the aggregator route and the CEX leg together."""
    from levgym.engine.cascade import liquidation_terms

    coll = np.array([[50_000.0]])  # far larger than one call
    debt = coll * 2000.0 * 0.86 / 0.98
    seized = {}
    for name, extra in (("pool", {}), ("split", {"keeper_aggregator_depth_usd": 60e6,
                                                 "keeper_cex_depth_usd": 20e6})):  # fmt: skip
        market = MarketParams(pool_depth_usd=20e6, keeper_max_slippage_frac=0.02, **extra)
        params = EngineParams(market=market)
        state = from_book(params, coll, debt, 2000.0)
        _, _, seize, _, _ = liquidation_terms(state, params)
        reserve = 20e6 / 2000.0 + sum(extra.values()) / 2000.0
        assert seize[0, 0] == pytest.approx(market.keeper_chunk_ratio * reserve, rel=1e-12)
        seized[name] = seize[0, 0]
    assert seized["split"] == pytest.approx(5.0 * seized["pool"], rel=1e-12)
