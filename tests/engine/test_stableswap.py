"""Curve StableSwap legs (levgym.engine.stableswap): the invariant held by trades, agreement with
Curve's own iterations (the loop twin's), near-1:1 small trades, a depeg that drains the leg as
Curve's pools drain, the comparison with constant product, the compiled rules, and the legs
inside the multi-asset step (numpy, numba and the loop twin)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym.engine import portfolio_market as PM
from levgym.engine import rules as R
from levgym.engine import stableswap as SS
from levgym.engine.fused import compile_rules
from levgym.engine.reference_portfolio import _ref_ss_d, _ref_ss_price, _ref_ss_y, ref_substep
from levgym.simulation_portfolio import PRESET_MARKET

from .test_portfolio_market import RES, SETTINGS, _close, _setup

CS = compile_rules(SS, SS.STABLESWAP_RULE_NAMES)
BAL = st.floats(1e3, 1e10)
AMP = st.sampled_from([1.0, 10.0, 100.0, 200.0, 2000.0, 5000.0])


@SETTINGS
@given(x=BAL, ratio=st.floats(1e-4, 1e4), amp=AMP)
def test_d_and_y_equal_curves_iterations(x, ratio, amp):
    """``D`` (fixed Newton steps) and ``y`` (closed form) equal Curve's get_D and get_y iterated
    to convergence (the loop twin's), to 1e-12; the invariant holds at (x, y, D)."""
    y = x * ratio
    d = SS.stableswap_d(x, y, amp)
    assert d == pytest.approx(_ref_ss_d(x, y, amp), rel=1e-12)
    assert SS.stableswap_y(x, d, amp) == pytest.approx(y, rel=1e-11)
    assert SS.stableswap_y(x, d, amp) == pytest.approx(_ref_ss_y(x, d, amp), rel=1e-11)
    ann = 2.0 * amp
    lhs, rhs = ann * (x + y) + d, ann * d + d**3 / (4.0 * x * y)
    assert lhs == pytest.approx(rhs, rel=1e-12)
    assert d <= (x + y) * (1 + 1e-15) and d >= 2.0 * math.sqrt(x * y) * (1 - 1e-15)


@SETTINGS
@given(x=BAL, ratio=st.floats(1e-3, 1e3), amp=AMP, trade=st.floats(1e-6, 0.9), fee=st.sampled_from([0.0, 1e-4, 3e-3]))  # fmt: skip
def test_trades_keep_the_invariant_and_compiled_rules_agree(x, ratio, amp, trade, fee):
    """A sale and an exact-out purchase move along the invariant (``D`` unchanged to 1e-12: the
    fee is paid outside the reserves); buying back what a sale put in costs, without fee, what
    the sale paid out; the numba-compiled rules give the same numbers."""
    y = x * ratio
    d = SS.stableswap_d(x, y, amp)
    x2, y2, out = SS.stableswap_sell(x, y, trade * x, fee, amp)
    assert SS.stableswap_d(x2, y2, amp) == pytest.approx(d, rel=1e-12)
    assert 0.0 < out < y and y2 == y - out
    # Curve's get_y iterated (the loop twin), to the precision of its subtraction
    assert out == pytest.approx(y - _ref_ss_y(x + trade * x * (1 - fee), d, amp), abs=1e-12 * y)
    assert out == pytest.approx(SS.stableswap_swap_out(x, y, trade * x, fee, amp), rel=1e-12)
    x3, y3, paid = SS.stableswap_buy_exact_out(x, y, trade * x, fee, amp)
    assert SS.stableswap_d(x3, y3, amp) == pytest.approx(d, rel=1e-12)
    assert x3 == pytest.approx(x - trade * x, rel=1e-12) and paid > 0.0
    # round trip without fee: sell dx, buy dx back for what the sale paid out
    x4, y4, out0 = SS.stableswap_sell(x, y, trade * x, 0.0, amp)
    _, _, back = SS.stableswap_buy_exact_out(x4, y4, trade * x, 0.0, amp)
    assert back == pytest.approx(out0, rel=1e-9)
    for name, args in (
        ("stableswap_sell", (x, y, trade * x, fee, amp)),
        ("stableswap_buy_exact_out", (x, y, trade * x, fee, amp)),
        ("stableswap_price", (x, y, amp)),
    ):
        a, b = np.atleast_1d(getattr(SS, name)(*args)), np.atleast_1d(getattr(CS, name)(*args))
        np.testing.assert_allclose(b, a, rtol=1e-13)
    assert math.isinf(SS.stableswap_buy_exact_out(x, y, x, fee, amp)[2])


@SETTINGS
@given(d=st.floats(1e4, 1e10), price=st.floats(0.05, 20.0), amp=AMP, speed=st.floats(0.0, 1.0))
def test_arbitrage_reaches_its_price_on_the_invariant(d, price, amp, speed):
    """The balance found for a price has that price (to 1e-12, against the loop twin's price
    formula too); arbitrage closes ``speed`` of the log gap, as the constant-product rule does,
    and keeps ``D``."""
    x = SS.stableswap_x_at_price(d, price, amp)
    y = SS.stableswap_y(x, d, amp)
    assert SS.stableswap_price(x, y, amp) == pytest.approx(price, rel=1e-11)
    assert _ref_ss_price(x, y, amp) == pytest.approx(price, rel=1e-11)
    x0, y0 = SS.stableswap_balances(d / 2.0, 1.0, amp)
    x1, y1 = SS.stableswap_arbitrage(x0, y0, price, speed, amp)
    want = math.exp(speed * math.log(price))
    assert SS.stableswap_price(x1, y1, amp) == pytest.approx(want, rel=1e-11)
    assert SS.stableswap_d(x1, y1, amp) == pytest.approx(SS.stableswap_d(x0, y0, amp), rel=1e-12)


def test_small_trades_are_near_one_to_one_and_beat_constant_product():
    """A balanced $100M + $100M leg at A = 2000 (3pool's): $1M in returns 0.99999 of it, against
    0.990 from a constant-product leg of the same reserves; the slippage grows with the size
    and falls with A."""
    x = y = 100e6
    ss = SS.stableswap_swap_out(x, y, 1e6, 0.0, 2000.0)
    cp = R.swap_out(x, y, 1e6, 0.0)
    assert ss / 1e6 > 0.99999 and ss < 1e6
    assert cp / 1e6 == pytest.approx(100.0 / 101.0, rel=1e-12)
    assert SS.stableswap_price(x, y, 2000.0) == pytest.approx(1.0, rel=1e-15)
    sizes = [1e5, 1e6, 1e7, 5e7]
    slip = [1.0 - SS.stableswap_swap_out(x, y, s, 0.0, 2000.0) / s for s in sizes]
    assert all(a < b for a, b in zip(slip, slip[1:], strict=False))
    by_amp = [1.0 - SS.stableswap_swap_out(x, y, 1e7, 0.0, a) / 1e7 for a in (10.0, 100.0, 2000.0)]
    assert by_amp[0] > by_amp[1] > by_amp[2]


def test_a_depeg_drains_the_leg_as_curve_pools_drain():
    """Arbitrage to a price of 0.87 (USDC per coin, a USDC-style break of the other side): the
    StableSwap leg at A = 2000 keeps about 2 % of its value in USDC (almost all of it went out
    for the depegged coin, as in Curve's pools: CIP#25's thread, the y pool at A = 2000 with
    DAI at 2-3 % of the pool); the constant-product leg keeps 0.87 / 1.87 = 46.5 %. Near the
    peg (0.999) the StableSwap leg has already given up more than half of its USDC."""
    x = y = 100e6
    sx, sy = SS.stableswap_arbitrage(x, y, 0.87, 1.0, 2000.0)
    cx, cy = R.arbitrage(x, y, 0.87, 1.0)
    share_ss = sy / (sx * 0.87 + sy)
    share_cp = cy / (cx * 0.87 + cy)
    assert share_ss < 0.03
    assert share_cp == pytest.approx(0.5, rel=1e-12)  # value shares: half and half at any price
    assert cy / (cx + cy) == pytest.approx(0.87 / 1.87, rel=1e-12)
    nx, ny = SS.stableswap_arbitrage(x, y, 0.999, 1.0, 2000.0)
    assert ny < 0.5 * y and nx > 1.5 * x
    # a lower A holds more USDC at the same depeg
    lx, ly = SS.stableswap_arbitrage(x, y, 0.87, 1.0, 50.0)
    assert ly > sy


def test_the_preset_uses_stableswap_and_the_envs_keep_constant_product():
    """``stable_pool`` defaults to ``cpmm`` (the envs, PortfolioGovernance-v0 and
    CrossProtocolHedger-v0, and the multi-protocol step); the ``aave_v3_ethereum`` preset's
    market is StableSwap at 3pool's A; the legs start at the fundamental ratio."""
    assert PM.PortfolioMarketParams().stable_pool == "cpmm"
    assert PRESET_MARKET.stable_pool == "stableswap" and PRESET_MARKET.stable_pool_amp == 2000.0
    amp = PM.pool_amp(RES, PRESET_MARKET)
    assert [RES.symbols[k] for k in np.flatnonzero(amp)] == ["USDT", "DAI"]
    assert not PM.pool_amp(RES, PM.PortfolioMarketParams()).any()
    state, f = _setup(1, 2, 4, PRESET_MARKET, 1, 0.0)
    price = PM.pools_price(state.pool_asset, state.pool_quote, amp)
    q = RES.index("USDC")
    for k in np.flatnonzero(amp):
        np.testing.assert_allclose(price[:, k], f[0, :, k] / f[0, :, q], rtol=1e-12)
    with pytest.raises(ValueError, match="stable_pool='curve' is not allowed"):
        PM.PortfolioMarketParams(stable_pool="curve")
    with pytest.raises(ValueError, match="stable_pool_amp"):
        PM.PortfolioMarketParams(stable_pool_amp=0.0)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.2]),
    weight=st.sampled_from([0.0, 0.5]),
    stable_depth=st.sampled_from([3e5, 2e6, 2e8]),
    depeg=st.sampled_from([("USDT", 0.9), ("DAI", 1.03), ("USDT", 1.0)]),
    amp=st.sampled_from([100.0, 2000.0]),
)
def test_stableswap_step_matches_numba_and_reference(seed, crash, weight, stable_depth, depeg, amp):  # fmt: skip
    """The multi-asset step with StableSwap legs: numba equals numpy to 1e-12 and the loop twin
    (Curve's own iterations) to 1e-9, with the same rounds, over books, crashes, pool weights in
    the oracle, leg depths and a stablecoin drifting off its peg."""
    params = PM.PortfolioMarketParams(
        volatile_pool_depth_usd=2e6, stable_pool_depth_usd=stable_depth,
        oracle_pool_weight_frac=weight, stable_pool="stableswap", stable_pool_amp=amp,
    )  # fmt: skip
    state, f = _setup(seed, 3, 8, params, 3, crash)
    f = f.copy()
    sym, end = depeg
    f[:, :, RES.index(sym)] *= np.linspace(1.0, end, f.shape[0])[:, None]
    a = b = state
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        a, r_np = PM.substep(a, f[t], RES, params)
        b, r_nb = PM.substep(b, f[t], RES, params, backend="numba")
        ref = ref_substep(RES, ref, f[t], params)
        np.testing.assert_array_equal(r_np, r_nb)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(ref[key], v, rtol=1e-9)
    coll, debt = PM.accounting_gaps(a)
    assert np.all(np.abs(coll) <= 1e-9 * (a.counters["initial_collateral_asset"] + 1.0))
    assert np.all(np.abs(debt) <= 1e-9 * (a.counters["initial_debt_asset"] + 1.0))


def test_stableswap_buys_stable_debt_cheaper_than_constant_product():
    """The same book and crash with shallow stable legs ($2M): keepers repaying USDT and DAI
    debt pay a tenth of the premium per coin (USDC paid over coins bought, less 1) from
    StableSwap legs that they pay from constant-product legs."""
    out = {}
    for pool in ("cpmm", "stableswap"):
        params = PM.PortfolioMarketParams(
            volatile_pool_depth_usd=2e6, stable_pool_depth_usd=2e6, stable_pool=pool
        )
        state, f = _setup(4, 3, 32, params, 3, 0.2)
        s = PM.run(state, f, RES, params, backend="numba")
        c = s.counters
        cols = [RES.index("USDT"), RES.index("DAI")]
        bought = c["bought_asset"][:, cols].sum()
        assert bought > 0
        out[pool] = c["purchase_quote"][:, cols].sum() / bought
    # measured: 1.0016 USDC per coin against 1.0393 (seed 4)
    assert out["stableswap"] - 1.0 < 0.1 * (out["cpmm"] - 1.0)
