"""Protocol kinds (levgym.engine.protocols): Compound's absorb and buyCollateral, Morpho's
liquidation incentive and bad-debt socialisation against hand calculations, the unified margin
layer's health factor (a property test), validation and the presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.engine.portfolio import Reserve, Reserves
from levgym.engine.protocol_presets import (
    PROTOCOL_PRESETS,
    draw_protocol_book,
    protocol_preset,
)
from levgym.engine.protocols import (
    Protocol,
    comet_absorb,
    comet_buy_collateral,
    comet_quote_collateral,
    morpho_lif,
    morpho_liquidate,
    same_asset_axis,
    unified_health_factor,
    unified_liquidation_target,
)

OFF = dict(can_collateral=False, can_borrow=False)


def _comet() -> Protocol:
    res = Reserves(
        (
            Reserve("WETH", can_borrow=False, ltv=0.82, liquidation_threshold=0.90,
                    liquidation_bonus=0.05, protocol_fee_frac=0.0),
            Reserve("USDC", can_collateral=False, can_borrow=True),
        )
    )  # fmt: skip
    return Protocol("comet", "compound_v3", res, store_front_price_factor=0.5)


def _morpho(lltv: float = 0.86) -> Protocol:
    lif = float(morpho_lif(lltv))
    res = Reserves(
        (
            Reserve("wstETH", can_borrow=False, ltv=lltv, liquidation_threshold=lltv,
                    liquidation_bonus=lif - 1.0, protocol_fee_frac=0.0),
            Reserve("USDC", can_collateral=False, can_borrow=True),
        )
    )  # fmt: skip
    return Protocol("morpho", "morpho_blue", res, collateral_symbol="wstETH")


def test_comet_absorb_by_hand():
    pr = _comet()
    # 10 WETH at $2,000 each; debts 18,500 (HF 0.973), 21,000 (HF 0.857), 15,000 (HF 1.2)
    supply = np.array([[10.0, 0.0], [10.0, 0.0], [10.0, 0.0]])
    debt = np.array([[0.0, 18_500.0], [0.0, 21_000.0], [0.0, 15_000.0]])
    ab = comet_absorb(supply, debt, np.array([2000.0, 1.0]), pr)
    assert ab.absorbed.tolist() == [True, True, False]
    # the protocol takes all the collateral and the debt
    np.testing.assert_allclose(ab.supply[:, 0], [0.0, 0.0, 10.0])
    np.testing.assert_allclose(ab.debt[:, 1], [0.0, 0.0, 15_000.0])
    np.testing.assert_allclose(ab.collateral_taken[:, 0], [10.0, 10.0, 0.0])
    # credit = 20,000 * 0.95 = 19,000: the first account gets 500 back, the second is short
    np.testing.assert_allclose(ab.credit_base[:2], [19_000.0, 19_000.0])
    np.testing.assert_allclose(ab.refund_base, [500.0, 0.0, 0.0])
    np.testing.assert_allclose(ab.reserves_delta_base, [-19_000.0, -21_000.0, 0.0])
    # the loss beyond the collateral's value (20,000) hits reserves: 1,000 on the second
    np.testing.assert_allclose(ab.shortfall_base, [0.0, 1_000.0, 0.0])
    np.testing.assert_allclose(ab.debt_absorbed, [18_500.0, 21_000.0, 0.0])


def test_comet_buy_collateral_only_below_target_reserves():
    lf, sf = 0.95, 0.5
    # discount = 0.5 * (1 - 0.95) = 2.5 %: 1,950 USDC buys one WETH at $2,000
    assert comet_quote_collateral(1950.0, 2000.0, 1.0, lf, sf) == pytest.approx(1.0, rel=1e-15)
    reserves = np.array([4e6, 5e6, 6e6, 4e6])
    held = np.array([10.0, 10.0, 10.0, 0.5])
    got, paid, done = comet_buy_collateral(1950.0, reserves, 5e6, held, 2000.0, 1.0, lf, sf)
    # below target: sold; at or above target: NotForSale; more than held: InsufficientReserves
    assert done.tolist() == [True, False, False, False]
    np.testing.assert_allclose(got, [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(paid, [1950.0, 0.0, 0.0, 0.0])


def test_morpho_lif_formula():
    assert morpho_lif(0.86) == pytest.approx(1.0 / (1.0 - 0.3 * 0.14), rel=1e-15)
    assert morpho_lif(0.945) == pytest.approx(1.0 / 0.9835, rel=1e-15)
    assert morpho_lif(0.5) == 1.15  # capped: 1 / 0.85 = 1.176
    assert morpho_lif(0.0) == 1.15


def test_morpho_liquidation_and_socialisation_by_hand():
    pr = _morpho(0.86)
    lif = 1.0 / 0.958
    price = np.array([2400.0, 1.0])
    # 10 wstETH = $24,000; max borrow 20,640. Debts: 21,000 (debt binds), 23,500 (collateral
    # binds: 24,000 / LIF = 22,992 repaid, 508 socialised), 20,000 (healthy)
    supply = np.array([[10.0, 0.0], [10.0, 0.0], [10.0, 0.0]])
    debt = np.array([[0.0, 21_000.0], [0.0, 23_500.0], [0.0, 20_000.0]])
    r = morpho_liquidate(supply, debt, price, pr)
    assert r.liquidated.tolist() == [True, True, False]
    np.testing.assert_allclose(r.repay, [21_000.0, 24_000.0 / lif, 0.0], rtol=1e-12)
    np.testing.assert_allclose(r.seized, [21_000.0 * lif / 2400.0, 10.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(r.bad_debt, [0.0, 23_500.0 - 24_000.0 / lif, 0.0], rtol=1e-12)
    assert 23_500.0 - 24_000.0 / lif == pytest.approx(508.0, abs=0.01)
    np.testing.assert_allclose(r.supply[:, 0], [10.0 - 21_000.0 * lif / 2400.0, 0.0, 10.0])
    np.testing.assert_allclose(r.debt[:, 1], [0.0, 0.0, 20_000.0])


def test_morpho_socialisation_through_the_step():
    """A crash below the LIF's cover: the market's suppliers lose the bad debt at once."""
    from levgym.engine import multiprotocol as MP
    from levgym.engine import portfolio_market as PM

    pr = _morpho(0.86)
    params = MP.MultiParams(PM.PortfolioMarketParams(volatile_pool_depth_usd=1e9))
    supply = np.array([[[10.0, 0.0]]])
    debt = np.array([[[0.0, 20_000.0]]])
    st = MP.init_state((pr,), params, [supply], [debt], [0], np.array([[2400.0, 1.0]]))
    lender0 = st.books[0].lender_supply_asset[0, 1]
    interest0 = 0.0
    st, _ = MP.substep(st, np.array([[2000.0, 1.0]]), (pr,), params)  # $20,000 of collateral
    b = st.books[0]
    interest0 = b.counters["interest_asset"][0, 1]
    owed = 20_000.0 + interest0
    repaid = 20_000.0 / (1.0 / 0.958)
    assert b.counters["repaid_by_liquidators_asset"][0, 1] == pytest.approx(repaid, rel=1e-12)
    assert b.counters["deficit_asset"][0, 1] == pytest.approx(owed - repaid, rel=1e-12)
    assert b.debt.sum() == 0.0 and b.supply.sum() == 0.0
    assert b.lender_supply_asset[0, 1] == pytest.approx(lender0 + interest0 - (owed - repaid))


def test_comet_absorb_and_sale_through_the_step():
    """Absorb, then keepers buy the collateral from the protocol while its reserves are below
    target and sell it on the pool; above target the protocol keeps it."""
    from levgym.engine import multiprotocol as MP
    from levgym.engine import portfolio_market as PM

    pr = _comet()
    params = MP.MultiParams(PM.PortfolioMarketParams(volatile_pool_depth_usd=1e9))
    supply = np.array([[[10.0, 0.0]], [[10.0, 0.0]]])
    debt = np.array([[[0.0, 18_500.0]], [[0.0, 18_500.0]]])
    f0 = np.array([[2000.0, 1.0], [2000.0, 1.0]])
    # env 0: reserves 1,000 below a 1,000,000 target; env 1: reserves at 2,000,000
    st = MP.init_state(
        (pr,), params, [supply], [debt], [0], f0, reserves_base=[[1_000.0], [2e6]],
        target_reserves_base=[[1e6], [1e6]],
    )  # fmt: skip
    st, _ = MP.substep(st, f0 * [1.0, 1.0], (pr,), params)
    assert st.extra["absorbs"][:, 0].tolist() == [1, 1]
    # env 0 sold all 10 WETH at 1,950; env 1 keeps them
    assert st.extra["collateral_buys"][:, 0].tolist() == [1, 0]
    np.testing.assert_allclose(st.collateral_reserve_asset[:, 0, 0], [0.0, 10.0], atol=1e-9)
    interest = st.books[0].counters["interest_asset"][:, 1]
    rf = pr.reserves.reserves[1].reserve_factor_frac
    owed = 18_500.0 + interest
    credit = 19_000.0
    want = np.array([1_000.0, 2e6]) + interest * rf - np.maximum(owed, credit) + [19_500.0, 0.0]
    np.testing.assert_allclose(st.reserves_base[:, 0], want, rtol=1e-12)
    assert (st.keeper_pnl_usd[0] > 0.0) and st.keeper_pnl_usd[1] == 0.0


def test_validation_names_the_field():
    res = _comet().reserves
    with pytest.raises(ValueError, match="kind='x' is not allowed"):
        Protocol("p", "x", res)
    with pytest.raises(ValueError, match="borrows only its base"):
        Protocol("p", "compound_v3", res, base_symbol="WETH")
    bad = Reserves(
        (
            Reserve("wstETH", can_borrow=False, ltv=0.86, liquidation_threshold=0.86,
                    liquidation_bonus=0.05),
            Reserve("USDC", can_collateral=False, can_borrow=True),
        )
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"allowed LIF\(LLTV\) - 1"):
        Protocol("m", "morpho_blue", bad, collateral_symbol="wstETH")
    with pytest.raises(ValueError, match="same symbols in the same order"):
        same_asset_axis((_comet(), _morpho()))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    thr=st.lists(st.floats(0.0, 1e7), min_size=1, max_size=4),
    debt=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e7)), min_size=4, max_size=4),
)
def test_unified_hf_is_never_below_the_lowest_protocol_hf(thr, debt):
    p = len(thr)
    t, d = np.array(thr), np.array(debt[:p])
    hf_p = np.where(d > 0, t / np.where(d > 0, d, 1.0), np.inf)
    hf_u = unified_health_factor(t, d)
    assert hf_u >= hf_p.min() * (1.0 - 1e-12)
    # so the layer never liquidates an account that every protocol keeps solvent
    if np.all(hf_p >= 1.0):
        assert unified_liquidation_target(t, d) == -1
    target = int(unified_liquidation_target(t, d))
    if target >= 0:
        assert hf_p[target] == hf_p.min() and hf_p[target] < 1.0


@pytest.mark.parametrize("name", PROTOCOL_PRESETS)
def test_presets_share_the_asset_axis_and_books_start_healthy(name):
    from levgym.engine.portfolio import account_data

    pr = protocol_preset(name)
    assert pr.reserves.symbols == protocol_preset("aave_v3_ethereum").reserves.symbols
    price = np.array([2500.0, 3000.0, 60_000.0, 1.0, 1.0, 1.0])
    s, d, r = draw_protocol_book(name, price, 2, 50, seed=4)
    hf = account_data(s, d, price, pr.reserves, r).health_factor
    assert np.all(hf > 1.0) and np.all(np.isfinite(s + d))
    s2, d2, _ = draw_protocol_book(name, price, 2, 50, seed=4)
    np.testing.assert_array_equal(d, d2)
    borrowable = pr.reserves.can_borrow
    assert np.all(d[..., ~borrowable] == 0.0)
    assert math.isfinite(float(hf.min()))
    with pytest.raises(ValueError, match="protocol 'x' is unknown"):
        protocol_preset("x")
