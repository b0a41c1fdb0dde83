"""The multi-asset keepers' selection (``portfolio_market.select_calls``): capacity by profit
rank, gas per call in gwei, and the profitability filter (``alone``, ``in_block``, ``off``), on
the numpy path, the numba kernel and the loop twin."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from levgym.engine import portfolio_market as PM
from levgym.engine import rules as R
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from levgym.engine.portfolio import liquidate
from levgym.engine.reference_portfolio import ref_substep
from levgym.scenarios import multiasset as MA

RES = aave_v3_ethereum_reserves()
VOLATILE = np.array([s in ("WETH", "wstETH", "WBTC") for s in RES.symbols])
SETTINGS = settings(
    max_examples=14, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


def _setup(seed, e, n, params, steps, crash, res=RES):
    from levgym.engine.portfolio_books import draw_book

    paths = MA.simulate(e, steps + 1, 1.0, seed=seed)
    ratio = PM.initial_exchange_ratio(res, e)
    f = PM.fundamentals_from_paths(paths.prices_usd, paths.symbols, res, ratio)
    f = f * np.where(VOLATILE, 1.0 - crash, 1.0) ** np.arange(steps + 1)[:, None, None]
    empty = np.zeros((e, n, res.k))
    s0 = PM.init_state(res, params, empty, empty, 0, f[0])
    book = draw_book(res, s0.oracle_usd[0], e, n, seed=seed, median_collateral_usd=40_000.0)
    return PM.init_state(res, params, book.supply, book.debt, book.emode_row, f[0]), f


def _close(a, b, rtol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.2, 0.35]),
    mode=st.sampled_from(PM.KEEPER_FILTERS),
    capacity=st.sampled_from([math.inf, 1.0, 3.0]),
    gas_units=st.sampled_from([0.0, 400_000.0]),
    gwei=st.sampled_from([None, 30.0, "per_env"]),
    depth=st.sampled_from([2e6, 3e5]),
    rounds=st.sampled_from([1, 10]),
    feed=st.sampled_from(["exact", "chainlink"]),
    slippage=st.sampled_from([1.0, 0.02, 0.002]),
    fused=st.booleans(),
)
def test_keepers_numpy_numba_and_loop_twin_agree(
    seed, crash, mode, capacity, gas_units, gwei, depth, rounds, feed, slippage, fused
):
    """Every state array after three substeps: numba == numpy to 1e-12, both == the loop twin
    to 1e-9, the same cascade rounds; over books, crashes, the three filters, capacities (with
    gas prices above the congestion reference), gas per call, chunked calls, round caps and the
    numpy path's keeper pass (compiled or not)."""
    res = RES
    for r in RES.reserves:
        res = res.replace(r.symbol, oracle=dataclasses.replace(r.oracle, feed=feed))
    params = PM.PortfolioMarketParams(
        volatile_pool_depth_usd=depth, max_round_buy_frac=0.2, max_cascade_rounds=rounds,
        profitability_filter=mode, keeper_capacity_per_substep=capacity,
        gas_units_per_call=gas_units, congestion_ref_gwei=100.0,
        keeper_max_slippage_frac=slippage,
    )  # fmt: skip
    e = 3
    state, f = _setup(seed, e, 10, params, 3, crash, res)
    fast, ref = state, PM.state_to_dict(state)
    total = 0
    for t in range(1, f.shape[0]):
        g = np.array([20.0, 150.0, 450.0]) * (1 + 0.1 * t) if gwei == "per_env" else gwei
        state, r_np = PM.substep(state, f[t], res, params, fused, backend="numpy", gas_gwei=g)
        fast, r_nb = PM.substep(fast, f[t], res, params, backend="numba", gas_gwei=g)
        ref = ref_substep(res, ref, f[t], params, gas_gwei=g)
        np.testing.assert_array_equal(r_np, r_nb)
        total += int(r_np.sum())
    a, b = PM.state_to_dict(state), PM.state_to_dict(fast)
    for key, v in a.items():
        if isinstance(v, np.ndarray):
            _close(b[key], v, 1e-12)
            _close(v, ref[key], 1e-9)
    if capacity == 1.0:  # one call per substep at most
        assert np.all(state.liquidations <= f.shape[0] - 1)
    if crash >= 0.2 and depth == 2e6 and mode == "off":
        assert state.liquidations.sum() > 0  # the cascade ran


def _book(sizes_usd, hf, price=3000.0):
    """One env, positions with WETH collateral worth ``sizes_usd`` and USDC debt at HF ``hf``
    (LT of WETH), at WETH ``price``."""
    res = aave_v3_ethereum_reserves(("WETH", "USDC"))
    w, u = res.index("WETH"), res.index("USDC")
    lt = res.reserves[w].liquidation_threshold
    n = len(sizes_usd)
    supply, debt = np.zeros((1, n, 2)), np.zeros((1, n, 2))
    supply[0, :, w] = np.asarray(sizes_usd) / price
    debt[0, :, u] = np.asarray(sizes_usd) * lt / hf
    f = np.zeros((1, 2))
    f[0, w], f[0, u] = price, 1.0
    return res, supply, debt, f


def _round(res, supply, debt, f, params, gas_gwei=None, backend="numpy"):
    s = PM.init_state(res, params, supply, debt, np.zeros(supply.shape[:2], dtype=np.int64), f)
    return PM.substep(s, f, res, params, backend=backend, gas_gwei=gas_gwei)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_capacity_takes_the_most_profitable_calls_first(backend):
    """Three liquidatable positions of $50k, $400k and $150k, capacity 1 call per substep: the
    keeper makes the $400k call (the largest result), not the first slot's; capacity 2 adds the
    $150k one; at 300 gwei against a 100 gwei reference the capacity of 2 falls to 1 (the
    single-asset ``rules.keeper_capacity``); one round of the cascade per call."""
    res, supply, debt, f = _book([50e3, 400e3, 150e3], 0.99)
    for cap, gwei, want in ((1.0, 30.0, [1]), (2.0, 30.0, [1, 2]), (2.0, 300.0, [1])):
        params = PM.PortfolioMarketParams(
            keeper_capacity_per_substep=cap, max_cascade_rounds=1, substep_h=1e-9,
            volatile_pool_depth_usd=60e6,
        )  # fmt: skip
        s, _ = _round(res, supply, debt, f, params, gwei, backend)
        hit = np.flatnonzero(s.debt[0, :, 1] < debt[0, :, 1] * (1 - 1e-6))
        assert list(hit) == want, (cap, gwei)
        assert s.liquidations[0] == len(want)
    # across rounds: the capacity is per substep
    params = PM.PortfolioMarketParams(keeper_capacity_per_substep=2.0, substep_h=1e-9)
    s, _ = _round(res, supply, debt, f, params, 30.0, backend)
    assert s.liquidations[0] == 2


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_in_block_pricing_skips_a_call_the_earlier_sales_make_unprofitable(backend):
    """Two equal liquidations into a shallow pool: each pays alone at the round's pool, so the
    ``alone`` filter makes both; priced after the other's sale (``in_block``, the single-asset
    filter) the second no longer pays, and only the first (slot order on the tie) is made; with
    the filter ``off`` both are made whatever they pay."""
    res, supply, debt, f = _book([600e3, 600e3], 0.99)
    base = dict(max_cascade_rounds=1, substep_h=1e-9, volatile_pool_depth_usd=8e6)
    made = {}
    for mode in PM.KEEPER_FILTERS:
        params = PM.PortfolioMarketParams(profitability_filter=mode, **base)
        s, _ = _round(res, supply, debt, f, params, None, backend)
        made[mode] = int(s.liquidations[0])
    assert made == {"alone": 2, "in_block": 1, "off": 2}
    # the reason, by the rules: alone each pays, the second after the first does not
    w = res.index("WETH")
    params = PM.PortfolioMarketParams(**base)
    s0 = PM.init_state(res, params, supply, debt, np.zeros((1, 2), dtype=np.int64), f)
    r = liquidate(s0.supply, s0.debt, s0.oracle_usd[:, None, :], res, s0.emode_row)
    got, rep = r.seized[0, 0], r.repay[0, 0]
    pa, pq = s0.pool_asset[0, w], s0.pool_quote[0, w]
    alone = R.swap_out(pa, pq, got, params.pool_fee_frac)
    second = R.block_sale_out(pa, pq, 2 * got, got, params.pool_fee_frac)
    assert alone > rep > second


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_chunked_calls_seize_at_most_the_pools_share(backend):
    """With ``keeper_max_slippage_frac`` 2 % a $3M position at HF 0.99 against a $20M pool is
    liquidated by a call that seizes ``0.02 / 0.98`` of the pool's WETH (the single-asset
    ``rules.chunk_repay``)."""
    res, supply, debt, f = _book([3e6], 0.99)
    w, u = res.index("WETH"), res.index("USDC")
    base = dict(max_cascade_rounds=1, substep_h=1e-9, volatile_pool_depth_usd=20e6)
    whole, _ = _round(res, supply, debt, f, PM.PortfolioMarketParams(**base), None, backend)
    params = PM.PortfolioMarketParams(keeper_max_slippage_frac=0.02, **base)
    s, _ = _round(res, supply, debt, f, params, None, backend)
    s0 = PM.init_state(res, params, supply, debt, np.zeros((1, 1), dtype=np.int64), f)
    bonus = res.reserves[w].liquidation_bonus
    want = R.chunk_repay(s0.pool_asset[0, w], 0.02 / 0.98, s0.oracle_usd[0, w], bonus, 1.0)
    repaid = debt[0, 0, u] - s.debt[0, 0, u]
    assert repaid == pytest.approx(want, rel=1e-12)
    assert supply[0, 0, w] - s.supply[0, 0, w] == pytest.approx(
        s0.pool_asset[0, w] * 0.02 / 0.98, rel=1e-12
    )
    # without the limit the close factor's half would move the pool by more than the bonus: the
    # keeper makes no call (with the filter off it repays that half)
    assert whole.liquidations[0] == 0 and s.liquidations[0] == 1
    off = PM.PortfolioMarketParams(profitability_filter="off", **base)
    half, _ = _round(res, supply, debt, f, off, None, backend)
    assert debt[0, 0, u] - half.debt[0, 0, u] == pytest.approx(debt[0, 0, u] / 2, rel=1e-12)
    assert repaid < debt[0, 0, u] / 2


def test_gas_per_call_is_the_single_asset_rule_at_the_weth_price():
    params = PM.PortfolioMarketParams(gas_units_per_call=400_000.0, gas_usd_per_call=5.0)
    f = np.array([[3000.0, 3630.0, 90000.0, 1.0, 1.0, 1.0], [2000.0, 2420.0, 6e4, 1.0, 1.0, 1.0]])
    g = PM.keeper_gas_usd(RES, params, f, np.array([30.0, 200.0]))
    want = 5.0 + R.gas_cost_usd(np.array([30.0, 200.0]), 400_000.0, f[:, RES.index("WETH")])
    np.testing.assert_array_equal(g, want)
    assert g[0] == pytest.approx(5.0 + 30e-9 * 4e5 * 3000.0)
    # the default: no gas units, the fixed USD only; no capacity limit
    np.testing.assert_array_equal(PM.keeper_gas_usd(RES, PM.PortfolioMarketParams(), f, 50.0), 0.0)
    assert np.all(np.isinf(PM.keeper_capacity(PM.PortfolioMarketParams(), 500.0, 2)))
    no_weth = aave_v3_ethereum_reserves(("WBTC", "USDC"))
    with pytest.raises(ValueError, match="gas_units_per_call=400000 prices gas in WETH"):
        PM.keeper_gas_usd(no_weth, params, f[:, :2], None)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("profitability_filter", "block", "profitability_filter='block'; allowed alone"),
        ("keeper_capacity_per_substep", -1.0, "keeper_capacity_per_substep"),
        ("gas_units_per_call", -5.0, "gas_units_per_call"),
        ("congestion_ref_gwei", 0.0, "congestion_ref_gwei"),
        ("keeper_max_slippage_frac", 0.0, "keeper_max_slippage_frac"),
    ],
)
def test_keeper_settings_are_checked(field, value, match):
    with pytest.raises(ValueError, match=match):
        PM.PortfolioMarketParams(**{field: value})


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_round_purchase_limit_goes_by_profit_rank(backend):
    """Two positions owing WETH against USDC: the keepers buy the WETH they repay from the WETH
    pool, and one round may buy 1 % of its reserve (200 WETH of a $60M pool). Both calls pay
    alone; together they exceed the limit. The larger, more profitable call (slot 1, 180 WETH)
    is made and the first slot's (150 WETH) waits, as capacity goes by rank (before these
    settings the limit went by slot and made the first)."""
    res = aave_v3_ethereum_reserves(("WETH", "USDC"))
    w, u = res.index("WETH"), res.index("USDC")
    lt = res.reserves[u].liquidation_threshold
    price = 3000.0
    debt_weth = np.array([300.0, 360.0])
    supply, debt = np.zeros((1, 2, 2)), np.zeros((1, 2, 2))
    debt[0, :, w] = debt_weth
    supply[0, :, u] = debt_weth * price * 0.99 / lt  # HF 0.99
    f = np.array([[0.0, 0.0]])
    f[0, w], f[0, u] = price, 1.0
    params = PM.PortfolioMarketParams(max_round_buy_frac=0.01, max_cascade_rounds=1, substep_h=1e-9)
    s, _ = _round(res, supply, debt, f, params, None, backend)
    repaid = debt[0, :, w] - s.debt[0, :, w]
    assert s.liquidations[0] == 1
    assert abs(repaid[0]) < 1e-6 and repaid[1] == pytest.approx(180.0, rel=1e-9)
    assert s.counters["bought_asset"][0, w] == pytest.approx(180.0, rel=1e-9)


def test_the_multi_protocol_step_refuses_keeper_settings_it_does_not_run():
    from levgym.engine.multiprotocol import KEEPER_SETTINGS_NOT_HERE, MultiParams

    MultiParams(market=PM.PortfolioMarketParams(gas_usd_per_call=5.0))  # its own gas: fine
    for name, value in zip(
        KEEPER_SETTINGS_NOT_HERE,
        ("in_block", 200.0, 400_000.0, 0.02, 0.5, 1e6, 1e6),
        strict=True,
    ):
        with pytest.raises(ValueError, match=f"market.{name}=.* is not in the multi-protocol"):
            MultiParams(market=PM.PortfolioMarketParams(**{name: value}))


def test_in_block_pricing_is_refused_with_stableswap_legs():
    from levgym.engine.portfolio_market import PortfolioMarketParams

    with pytest.raises(ValueError, match="in_block.*stableswap"):
        PortfolioMarketParams(stable_pool="stableswap", profitability_filter="in_block")
    PortfolioMarketParams(stable_pool="cpmm", profitability_filter="in_block")
    PortfolioMarketParams(stable_pool="stableswap", profitability_filter="alone")
