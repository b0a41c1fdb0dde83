"""Cross-margin rules (levgym.engine.portfolio): parity with the naive reference loop over random
multi-asset books, agreement with the single-asset rules at one collateral and one debt asset,
the issue's hand-built cases, parameter validation and the Aave v3 Ethereum preset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym.engine import rules
from levgym.engine.aave_v3_ethereum import (
    DEFAULT_SYMBOLS,
    aave_v3_ethereum_reserves,
    risk_params_2025_10,
)
from levgym.engine.portfolio import (
    EModeCategory,
    OracleConfig,
    Reserve,
    Reserves,
    account_data,
    borrow_rates_apr,
    isolation_total_debt,
    keeper_debt_to_cover,
    liquidate,
    liquidation_terms,
    max_new_borrow,
    oracle_prices_usd,
    write_off_deficit,
)
from levgym.engine.reference_portfolio import (
    ref_account,
    ref_liquidate,
    ref_max_borrow,
    ref_oracle,
)

from .strategies import PARITY_SETTINGS

RTOL = 1e-9

# ----------------------------------------------------------------------------- random markets


def random_reserves(rng: np.random.Generator, k: int) -> Reserves:
    """K reserves with every flag drawn (reserve 0 market-priced, the base of exchange rates)."""
    out = []
    for idx in range(k):
        coll = bool(rng.random() < 0.8) or idx == 0
        lt = float(rng.uniform(0.3, 0.9)) if coll else 0.0
        ltv = float(rng.uniform(0.0, lt)) if coll and rng.random() < 0.85 else 0.0
        bonus = float(rng.uniform(0.01, min(0.15, 1.0 / lt - 1.0))) if coll else 0.0
        borrow = bool(rng.random() < 0.8) or not coll
        kind = (
            "market"
            if idx == 0
            else str(rng.choice(["market", "exchange_rate", "stable_pinned", "stable_market"]))
        )
        oracle = OracleConfig(
            kind,
            base_symbol="A0" if kind == "exchange_rate" else "",
            max_yearly_ratio_growth_frac=float(rng.uniform(0.0, 0.2)),
            price_cap_usd=float(rng.uniform(1.0, 1.1)),
        )
        out.append(
            Reserve(
                symbol=f"A{idx}",
                can_collateral=coll,
                can_borrow=borrow,
                ltv=ltv,
                liquidation_threshold=lt,
                liquidation_bonus=bonus,
                protocol_fee_frac=float(rng.uniform(0.0, 0.3)),
                borrow_cap_asset=float(rng.uniform(1e3, 1e6)),
                debt_ceiling_usd=float(rng.uniform(1e3, 1e6))
                if coll and rng.random() < 0.3
                else 0.0,
                borrowable_in_isolation=borrow and bool(rng.random() < 0.5),
                oracle=oracle,
            )
        )
    emodes = []
    syms = [r.symbol for r in out]
    for cid in range(1, int(rng.integers(0, 3)) + 1):
        col = [s for s, r in zip(syms, out, strict=True) if r.can_collateral and rng.random() < 0.6]
        bor = [s for s, r in zip(syms, out, strict=True) if r.can_borrow and rng.random() < 0.6]
        lt = float(rng.uniform(0.85, 0.97))
        emodes.append(
            EModeCategory(
                cid,
                f"c{cid}",
                float(rng.uniform(0.7, lt)),
                lt,
                float(rng.uniform(0.005, 1.0 / lt - 1.0)),
                tuple(col),
                tuple(bor),
            )  # fmt: skip
        )
    return Reserves(tuple(out), tuple(emodes))


def random_book(rng: np.random.Generator, res: Reserves, e: int, n: int):
    """(supply, debt, market prices [E, K], E-mode rows [E, N]): sizes log-uniform from $300 to
    $3M so that the $2,000 and $1,000 thresholds are crossed; HFs spread around 1."""
    k = res.k
    price = np.exp(rng.uniform(-2.0, 9.0, (e, k)))
    usd = np.exp(rng.uniform(np.log(300.0), np.log(3e6), (e, n, 1)))
    w_s = rng.exponential(1.0, (e, n, k)) * (rng.random((e, n, k)) < 0.6)
    w_d = rng.exponential(1.0, (e, n, k)) * (rng.random((e, n, k)) < 0.5)
    w_s[..., 0] += (w_s.sum(-1) == 0) * 1.0
    lev = rng.uniform(0.3, 1.2, (e, n, 1))
    supply = usd * w_s / w_s.sum(-1, keepdims=True) / price[:, None, :]
    debt = lev * usd * w_d / np.maximum(w_d.sum(-1, keepdims=True), 1e-300) / price[:, None, :]
    rows = rng.integers(0, len(res.emodes) + 1, (e, n))
    return supply, debt, price, rows


book_cases = st.tuples(
    st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 3), st.integers(1, 12)
)


# ----------------------------------------------------------------------------- parity


@PARITY_SETTINGS
@given(book_cases)
def test_account_data_matches_reference(case) -> None:
    seed, k, e, n = case
    rng = np.random.default_rng(seed)
    res = random_reserves(rng, k)
    supply, debt, price, rows = random_book(rng, res, e, n)
    enabled = rng.random(supply.shape) < 0.8  # Aave's per-position collateral flag
    acct = account_data(supply, debt, price[:, None, :], res, rows, enabled)
    for ei in range(e):
        for ni in range(n):
            flags = [bool(x) for x in enabled[ei, ni]]
            ref = ref_account(
                res,
                list(supply[ei, ni]),
                list(debt[ei, ni]),
                list(price[ei]),
                int(rows[ei, ni]),
                flags,
            )
            for key, want in ref.items():
                got = getattr(acct, key)[ei, ni]
                if isinstance(want, bool) or key == "isolation_asset":
                    assert got == want, (key, ei, ni)
                else:
                    assert np.isclose(got, want, rtol=RTOL, atol=0.0) or got == want, (
                        key,
                        got,
                        want,
                    )


@PARITY_SETTINGS
@given(book_cases)
def test_liquidation_matches_reference(case) -> None:
    seed, k, e, n = case
    rng = np.random.default_rng(seed)
    res = random_reserves(rng, k)
    supply, debt, price, rows = random_book(rng, res, e, n)
    # half the cases switch some collateral off (Aave's per-position collateral flag)
    enabled = (rng.random(supply.shape) < 0.9) if rng.random() < 0.5 else None
    got = liquidate(supply, debt, price[:, None, :], res, rows, enabled)
    ref = ref_liquidate(res, supply, debt, price, rows, enabled)
    for key, want in ref.items():
        a = getattr(got, key)
        if key.endswith("index"):
            np.testing.assert_array_equal(a, want, err_msg=key)
        else:
            np.testing.assert_allclose(
                a, want, rtol=RTOL, atol=1e-9 * (1.0 + np.abs(want).max()), err_msg=key
            )


@PARITY_SETTINGS
@given(book_cases)
def test_borrow_limits_and_oracles_match_reference(case) -> None:
    seed, k, e, n = case
    rng = np.random.default_rng(seed)
    res = random_reserves(rng, k)
    supply, debt, price, rows = random_book(rng, res, e, n)
    total = debt.sum(axis=1)
    acct = account_data(supply, debt, price[:, None, :], res, rows)
    iso = isolation_total_debt(debt, res, acct)
    for j in range(k):
        got = max_new_borrow(supply, debt, price[:, None, :], res, j, rows, total, iso)
        for ei in range(e):
            for ni in range(n):
                want = ref_max_borrow(
                    res, list(supply[ei, ni]), list(debt[ei, ni]), list(price[ei]),
                    int(rows[ei, ni]), j, float(total[ei, j]), list(iso[ei]),
                )  # fmt: skip
                assert np.isclose(got[ei, ni], want, rtol=RTOL, atol=1e-12), (j, ei, ni)
    ratio = rng.uniform(1.0, 1.3, (e, k))
    snap = ratio / rng.uniform(0.95, 1.2, (e, k))
    hours = float(rng.uniform(0.0, 2000.0))
    got = oracle_prices_usd(res, price, ratio, snap, hours)
    for ei in range(e):
        want = ref_oracle(res, list(price[ei]), list(ratio[ei]), list(snap[ei]), hours)
        np.testing.assert_allclose(got[ei], want, rtol=1e-12)


@PARITY_SETTINGS
@given(book_cases)
def test_compiled_keeper_pass_matches_numpy(case) -> None:
    """The numba twin (the same rule texts compiled) gives the numpy pass's results."""
    from levgym.engine.portfolio_fused import liquidate_fused

    seed, k, e, n = case
    rng = np.random.default_rng(seed)
    res = random_reserves(rng, k)
    supply, debt, price, rows = random_book(rng, res, e, n)
    want = liquidate(supply, debt, price[:, None, :], res, rows)
    got = liquidate_fused(supply, debt, price, res, rows)
    for key in ("collateral_index", "debt_index"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key), err_msg=key)
    for key in ("supply", "debt", "deficit", "repay", "seized", "protocol_fee", "profit_usd"):
        np.testing.assert_allclose(
            getattr(got, key), getattr(want, key), rtol=1e-12, atol=1e-12, err_msg=key
        )


def test_pair_rules_run_on_torch_as_on_numpy() -> None:
    """The scalar pair rules use only engine ops: on torch tensors they give numpy's numbers."""
    torch = pytest.importorskip("torch")
    from levgym.engine.portfolio import keeper_debt_to_cover, liquidation_call, stable_oracle_usd

    rng = np.random.default_rng(1)
    n = 64
    args = [
        rng.uniform(0.1, 10.0, n), rng.uniform(100.0, 20000.0, n), rng.uniform(500.0, 4000.0, n),
        np.ones(n), rng.uniform(0.01, 0.1, n),
    ]  # fmt: skip
    hf, tot = rng.uniform(0.8, 1.0, n), rng.uniform(1e3, 5e4, n)
    cover = keeper_debt_to_cover(*args, hf, tot)
    want = liquidation_call(*args, 0.1, hf, tot, cover)
    t = [torch.tensor(a) for a in args]
    t_cover = keeper_debt_to_cover(*t, torch.tensor(hf), torch.tensor(tot))
    got = liquidation_call(*t, 0.1, torch.tensor(hf), torch.tensor(tot), t_cover)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12)
    assert float(stable_oracle_usd(torch.tensor(1.2), False, 1.04)) == pytest.approx(1.04)


# ----------------------------------------------------------------------------- single asset


def _pair_market(lt: float, bonus: float, fee: float) -> Reserves:
    coll = Reserve(
        "ETH",
        True,
        False,
        ltv=lt * 0.9,
        liquidation_threshold=lt,
        liquidation_bonus=bonus,
        protocol_fee_frac=fee,
    )
    stable = Reserve("USD", False, True, protocol_fee_frac=fee)
    return Reserves((coll, stable))


@PARITY_SETTINGS
@given(
    st.floats(0.5, 0.9), st.floats(0.01, 0.1), st.floats(0.0, 0.3), st.floats(0.1, 1e4),
    st.floats(0.3, 1.3), st.floats(100.0, 5000.0), st.floats(0.95, 1.05),
)  # fmt: skip
def test_one_collateral_one_debt_agrees_with_single_asset_rules(
    lt, bonus, fee, coll, lev, p, dp
) -> None:
    """K = 1 collateral and J = 1 debt asset: HF equals rules.health_factor and the liquidation
    call equals rules.liquidation_call (close factor 0.5, full at HF <= 0.95, $2,000) to 1e-12
    wherever the call does not trip v3.3's leftover rule (which the single-asset engine does
    not have: see the next test)."""
    res = _pair_market(lt, bonus, fee)
    debt_units = lev * coll * p * lt / dp
    supply = np.array([[[coll, 0.0]]])
    debt = np.array([[[0.0, debt_units]]])
    price = np.array([[[p, dp]]])
    acct = account_data(supply, debt, price, res)
    hf_single = rules.health_factor(coll, debt_units, p, lt, dp)
    assert acct.health_factor[0, 0] == pytest.approx(hf_single, rel=1e-12)
    # the same asset on both sides (one reserve, K = 1)
    one = Reserves(
        (
            Reserve(
                "ETH", True, True, ltv=lt * 0.9, liquidation_threshold=lt, liquidation_bonus=bonus
            ),
        )
    )
    a1 = account_data(
        np.array([[[coll]]]), np.array([[[debt_units * dp / p]]]), np.array([[[p]]]), one
    )
    assert a1.health_factor[0, 0] == pytest.approx(
        rules.health_factor(coll, debt_units * dp / p, p, lt, p), rel=1e-12
    )
    if not hf_single < 1.0:
        return
    repay, seize, fee_single = rules.liquidation_call(
        coll, debt_units, hf_single, p, dp, bonus, 0.5, 0.95, 2000.0, math.inf, fee
    )
    terms = liquidation_terms(coll, debt_units, p, dp, bonus, fee, hf_single, debt_units * dp)
    if terms.reverts:
        return  # the documented difference (docs/cross-margin.md)
    assert terms.repay == pytest.approx(repay, rel=1e-12)
    assert terms.seized_total == pytest.approx(seize, rel=1e-12)
    assert terms.protocol_fee == pytest.approx(fee_single, rel=1e-12, abs=1e-15)


def test_single_asset_difference_is_the_leftover_rule() -> None:
    """With one collateral and one debt asset v3.3's close-factor rule equals the single-asset
    one (a pair with less than $2,000 of collateral and HF > 0.95 owes less than $2,000); they
    part only where v3.3's leftover rule binds: the keeper repays less than 50 %."""
    lt, bonus, hf, p = 0.95, 0.05, 0.951, 1000.0
    coll = 2.01  # $2,010 of collateral, $2,008 of debt
    debt = coll * p * lt / hf
    repay_single, _, _ = rules.liquidation_call(
        coll, debt, hf, p, 1.0, bonus, 0.5, 0.95, 2000.0, math.inf, 0.0
    )
    assert repay_single == pytest.approx(0.5 * debt)
    assert bool(liquidation_terms(coll, debt, p, 1.0, bonus, 0.0, hf, debt).reverts)
    cover = keeper_debt_to_cover(coll, debt, p, 1.0, bonus, hf, debt)
    terms = liquidation_terms(coll, debt, p, 1.0, bonus, 0.0, hf, debt, cover)
    assert not terms.reverts and 0.0 < terms.repay < repay_single
    assert (coll - terms.seized_total) * p == pytest.approx(1000.0)


# ----------------------------------------------------------------------------- hand-built cases


@pytest.fixture(scope="module")
def aave() -> Reserves:
    return aave_v3_ethereum_reserves()


def _one(res: Reserves, supply: dict, debt: dict):
    s = np.zeros((1, 1, res.k))
    d = np.zeros((1, 1, res.k))
    for sym, v in supply.items():
        s[0, 0, res.index(sym)] = v
    for sym, v in debt.items():
        d[0, 0, res.index(sym)] = v
    return s, d


def _prices(
    res: Reserves,
    eth: float = 3000.0,
    steth_per_eth: float = 1.0,
    usdc: float = 1.0,
    ratio: float = 1.2,
):
    """Oracle inputs: market prices (wstETH's market = ratio * stETH/ETH * ETH) and the ratio."""
    market = np.array([[{"WETH": eth, "wstETH": ratio * steth_per_eth * eth, "WBTC": 60000.0,
                         "USDC": usdc, "USDT": 1.0, "DAI": 1.0}[s] for s in res.symbols]])  # fmt: skip
    return market, np.full((1, res.k), ratio)


def _hf(res, s, d, oracle, row=0) -> float:
    return float(account_data(s, d, oracle[:, None, :], res, np.array([[row]])).health_factor[0, 0])


def test_emode_wsteth_weth_loop_survives_a_ten_percent_fall_of_both(aave) -> None:
    row = aave.emode_row(8)
    s, d = _one(aave, {"wstETH": 100.0}, {"WETH": 100.0 * 1.2 * 0.955 / 1.03})
    market, ratio = _prices(aave)
    hf0 = _hf(aave, s, d, oracle_prices_usd(aave, market, ratio), row)
    assert hf0 == pytest.approx(1.03)
    market, ratio = _prices(aave, eth=2700.0)
    hf1 = _hf(aave, s, d, oracle_prices_usd(aave, market, ratio), row)
    assert hf1 == pytest.approx(1.03)
    assert (
        liquidate(
            s, d, oracle_prices_usd(aave, market, ratio)[:, None, :], aave, np.array([[row]])
        ).collateral_index[0, 0]
        == -1
    )
    # outside E-mode the same position is far below 1 (LT 0.81 instead of 0.955)
    assert _hf(aave, s, d, oracle_prices_usd(aave, market, ratio), 0) < 0.9


def test_steth_depeg_liquidates_under_a_market_oracle_not_under_the_exchange_rate(aave) -> None:
    row = aave.emode_row(8)
    s, d = _one(aave, {"wstETH": 100.0}, {"WETH": 100.0 * 1.2 * 0.955 / 1.03})
    market, ratio = _prices(aave, steth_per_eth=0.9)
    rate = oracle_prices_usd(aave, market, ratio)
    assert _hf(aave, s, d, rate, row) == pytest.approx(1.03)
    market_oracle = aave.replace("wstETH", oracle=OracleConfig("market"))
    mkt = oracle_prices_usd(market_oracle, market, ratio)
    assert _hf(market_oracle, s, d, mkt, row) == pytest.approx(1.03 * 0.9)
    got = liquidate(s, d, mkt[:, None, :], market_oracle, np.array([[row]]))
    assert (got.collateral_index[0, 0], got.debt_index[0, 0]) == (
        aave.index("wstETH"),
        aave.index("WETH"),
    )
    assert got.repay[0, 0] > 0
    assert liquidate(s, d, rate[:, None, :], aave, np.array([[row]])).collateral_index[0, 0] == -1


def test_usdc_depeg_moves_debtors_up_and_holders_down(aave) -> None:
    owes, _ = _one(aave, {"WETH": 10.0}, {})
    _, owes_d = _one(aave, {}, {"USDC": 20000.0})
    holds, _ = _one(aave, {"USDC": 30000.0}, {})
    _, holds_d = _one(aave, {}, {"WETH": 6.0})
    before = oracle_prices_usd(aave, *_prices(aave))
    after = oracle_prices_usd(aave, *_prices(aave, usdc=0.87))
    assert after[0, aave.index("USDC")] == pytest.approx(0.87)
    assert _hf(aave, owes, owes_d, after) == pytest.approx(_hf(aave, owes, owes_d, before) / 0.87)
    assert _hf(aave, holds, holds_d, after) == pytest.approx(
        _hf(aave, holds, holds_d, before) * 0.87
    )
    pinned = aave.replace("USDC", oracle=OracleConfig("stable_pinned"))
    p_after = oracle_prices_usd(pinned, *_prices(pinned, usdc=0.87))
    assert _hf(pinned, owes, owes_d, p_after) == pytest.approx(_hf(aave, owes, owes_d, before))
    # the stable oracle is capped above at 1.04
    assert oracle_prices_usd(aave, *_prices(aave, usdc=1.2))[
        0, aave.index("USDC")
    ] == pytest.approx(1.04)


def test_close_factor_half_of_total_debt_or_all(aave) -> None:
    usdc = aave.index("USDC")
    price = np.array([[[3000.0, 3600.0, 60000.0, 1.0, 1.0, 1.0]]])
    lt = 0.83
    # HF 0.97: the close factor binds, 50 % of the debt
    s, d = _one(aave, {"WETH": 10.0}, {"USDC": 30000.0 * lt / 0.97})
    got = liquidate(s, d, price, aave)
    assert got.repay[0, 0] == pytest.approx(0.5 * d[0, 0, usdc])
    # HF 0.94: all of it (here the collateral runs out first: repay what it covers)
    s, d = _one(aave, {"WETH": 10.0}, {"USDC": 30000.0 * lt / 0.94})
    got = liquidate(s, d, price, aave)
    assert got.repay[0, 0] == pytest.approx(min(d[0, 0, usdc], 30000.0 / 1.05))
    # a pair below $2,000 of debt is closed whole at HF 0.97 (collateral WETH $30k, USDC $1,500)
    res = liquidation_terms(10.0, 1500.0, 3000.0, 1.0, 0.05, 0.1, 0.97, 30000.0 * lt / 0.97)
    assert res.repay == pytest.approx(1500.0) and not res.reverts
    # 50 % is of the TOTAL debt: a reserve holding 30 % of it may be repaid whole
    total = 30000.0 * lt / 0.97
    res = liquidation_terms(10.0, 0.3 * total, 3000.0, 1.0, 0.05, 0.1, 0.97, total)
    assert res.repay == pytest.approx(0.3 * total)
    res = liquidation_terms(10.0, 0.7 * total, 3000.0, 1.0, 0.05, 0.1, 0.97, total)
    assert res.repay == pytest.approx(0.5 * total)


def test_leftover_rule_reverts_dust_and_the_keeper_repays_less() -> None:
    # reserve debt $5,500 of a $10,000 total at HF 0.97: 50 % of the total would leave $500
    total, debt_j, coll, p = 10000.0, 5500.0, 20.0, 3000.0
    full = liquidation_terms(coll, debt_j, p, 1.0, 0.05, 0.1, 0.97, total)
    assert bool(full.reverts) and full.repay == 0.0
    cover = keeper_debt_to_cover(coll, debt_j, p, 1.0, 0.05, 0.97, total)
    assert cover == pytest.approx(4500.0)
    ok = liquidation_terms(coll, debt_j, p, 1.0, 0.05, 0.1, 0.97, total, cover)
    assert not ok.reverts and (debt_j - ok.repay) == pytest.approx(1000.0)
    # collateral side: $2,100 of collateral against $2,500 of debt at HF 0.97 leaves < $1,000
    res = liquidation_terms(0.7, 2500.0, 3000.0, 1.0, 0.05, 0.1, 0.97, 2500.0)
    assert bool(res.reverts)
    cover = keeper_debt_to_cover(0.7, 2500.0, 3000.0, 1.0, 0.05, 0.97, 2500.0)
    ok = liquidation_terms(0.7, 2500.0, 3000.0, 1.0, 0.05, 0.1, 0.97, 2500.0, cover)
    assert not ok.reverts and (0.7 - ok.seized_total) * 3000.0 == pytest.approx(1000.0)


def test_deficit_when_the_last_collateral_goes(aave) -> None:
    price = np.array([[[3000.0, 3600.0, 60000.0, 1.0, 1.0, 1.0]]])
    s, d = _one(aave, {"WETH": 0.3}, {"USDC": 1000.0, "DAI": 200.0})
    got = liquidate(s, d, price, aave)
    usdc, dai = aave.index("USDC"), aave.index("DAI")
    # the USDC pair takes all $900 of WETH, the DAI pair $210 of it: the keeper takes USDC's
    assert got.collateral_index[0, 0] == aave.index("WETH")
    assert got.supply[0, 0].sum() == 0.0 and got.debt[0, 0].sum() == 0.0
    repaid = got.repay[0, 0]
    assert repaid == pytest.approx(900.0 / 1.05)
    j = got.debt_index[0, 0]
    assert j == usdc
    assert got.deficit[0, 0, usdc] == pytest.approx(1000.0 - repaid)
    assert got.deficit[0, 0, dai] == pytest.approx(200.0)
    # an already empty position is written off whole
    debt_after, deficit = write_off_deficit(np.zeros((1, 1, aave.k)), d, price, aave)
    assert debt_after.sum() == 0.0 and deficit.sum() == pytest.approx(1200.0)
    # with collateral left in another reserve no deficit is created
    s2, d2 = _one(aave, {"WETH": 0.3, "WBTC": 0.001}, {"USDC": 1000.0, "DAI": 200.0})
    got2 = liquidate(s2, d2, price, aave)
    assert got2.deficit.sum() == 0.0


def test_isolation_debt_ceiling_blocks_borrowing() -> None:
    res = aave_v3_ethereum_reserves(DEFAULT_SYMBOLS + ("LDO",))
    ldo, usdc, weth = res.index("LDO"), res.index("USDC"), res.index("WETH")
    s, d = _one(res, {"LDO": 1_000_000.0}, {"USDC": 100_000.0})
    price = np.array([[[3000.0, 3600.0, 60000.0, 1.0, 1.0, 1.0, 2.0]]])
    acct = account_data(s, d, price, res)
    assert bool(acct.isolated[0, 0]) and acct.isolation_asset[0, 0] == ldo
    iso = np.zeros((1, res.k))
    free = max_new_borrow(s, d, price, res, usdc, 0, None, iso)[0, 0]
    assert free == pytest.approx(2_000_000.0 * 0.4 - 100_000.0)  # the LTV binds first
    iso[0, ldo] = 7_500_000.0 - 50_000.0  # the ceiling has $50k left
    assert max_new_borrow(s, d, price, res, usdc, 0, None, iso)[0, 0] == pytest.approx(50_000.0)
    iso[0, ldo] = 7_500_000.0
    assert max_new_borrow(s, d, price, res, usdc, 0, None, iso)[0, 0] == 0.0
    assert (
        max_new_borrow(s, d, price, res, weth, 0, None, iso * 0)[0, 0] == 0.0
    )  # not borrowable in isolation
    # a second collateral ends isolation
    s2, _ = _one(res, {"LDO": 1_000_000.0, "WETH": 1.0}, {})
    assert not bool(account_data(s2, d, price, res).isolated[0, 0])
    assert isolation_total_debt(d, res, acct)[0, ldo] == pytest.approx(100_000.0)


def test_emode_borrowable_list_limits_borrowing(aave) -> None:
    price = np.array([[[3000.0, 3600.0, 60000.0, 1.0, 1.0, 1.0]]])
    s, d = _one(aave, {"wstETH": 10.0}, {})
    row = np.array([[aave.emode_row(8)]])
    assert max_new_borrow(s, d, price, aave, aave.index("USDC"), row)[0, 0] == 0.0
    assert max_new_borrow(s, d, price, aave, aave.index("WETH"), row)[0, 0] == pytest.approx(
        36000.0 * 0.935 / 3000.0
    )


def test_exchange_rate_cap_binds_only_on_fast_growth(aave) -> None:
    market, ratio = _prices(aave)
    k = aave.index("wstETH")
    snap = ratio.copy()
    grown = ratio * 1.2  # 20 % in 30 days: far above 9.68 % a year
    got = oracle_prices_usd(aave, market, grown, snap, hours_since_snapshot=720.0)
    assert got[0, k] == pytest.approx(1.2 * (1 + 0.0968 * 720 / 8760) * 3000.0)
    got = oracle_prices_usd(aave, market, ratio * 1.001, snap, hours_since_snapshot=720.0)
    assert got[0, k] == pytest.approx(1.2 * 1.001 * 3000.0)


def test_borrow_rates_follow_each_reserve_curve(aave) -> None:
    supply = np.full((1, aave.k), 100.0)
    rates = borrow_rates_apr(aave, supply * 0.9, supply)
    weth, wbtc = aave.index("WETH"), aave.index("WBTC")
    assert rates[0, weth] == pytest.approx(0.038)  # at the kink: base + slope1
    assert rates[0, wbtc] == pytest.approx(0.04 + 3.0 * (0.9 - 0.45) / 0.55)


# ----------------------------------------------------------------------------- parameters


def test_preset_takes_ltv_lt_bonus_from_the_2025_file(aave) -> None:
    risk = risk_params_2025_10()
    for r in aave.reserves:
        ltv, lt, bonus, borrowing = risk[r.symbol]
        assert (r.ltv, r.liquidation_threshold, r.can_borrow) == (ltv, lt, borrowing)
        assert r.liquidation_bonus == pytest.approx(bonus, abs=1e-12)
    assert risk["WETH"][:3] == (0.805, 0.83, pytest.approx(0.05))
    assert [c.id for c in aave.emodes] == [1, 8]
    assert aave.reserves[aave.index("wstETH")].oracle.kind == "exchange_rate"
    assert aave_v3_ethereum_reserves(("WETH", "USDC")).emodes[0].collateral == ("WETH",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ltv=0.9, liquidation_threshold=0.8, liquidation_bonus=0.05), r"reserve\['X'\].ltv=0.9 exceeds"),
        (dict(ltv=0.5, liquidation_threshold=0.97, liquidation_bonus=0.05), "liquidation_threshold \\* \\(1 \\+ liquidation_bonus\\)"),
        (dict(ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.6), r"liquidation_bonus=0.6 is out of range; allowed \[0, 0.5\]"),
        (dict(ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.05, protocol_fee_frac=2.0), "protocol_fee_frac=2 is out of range"),
        (dict(ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.05, optimal_utilization_frac=1.0), "optimal_utilization_frac=1 is out of range"),
        (dict(can_collateral=False, liquidation_threshold=0.5), "with can_collateral=False"),
        (dict(ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.05, debt_ceiling_usd=-1.0), "debt_ceiling_usd=-1 is out of range"),
        (dict(ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.05, emode_category=300), "emode_category=300 is out of range"),
    ],
)  # fmt: skip
def test_reserve_validation_names_the_field(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Reserve("X", **kwargs)


def test_market_validation_names_the_problem() -> None:
    a = Reserve("A", ltv=0.5, liquidation_threshold=0.8, liquidation_bonus=0.05)
    with pytest.raises(ValueError, match="duplicate symbols"):
        Reserves((a, a))
    with pytest.raises(ValueError, match=r"emode\[1\] names 'B'"):
        Reserves((a,), (EModeCategory(1, "x", 0.9, 0.93, 0.01, ("B",), ("A",)),))
    with pytest.raises(ValueError, match="allowed ltv <= liquidation_threshold"):
        EModeCategory(1, "x", 0.95, 0.93, 0.01, ("A",), ("A",))
    with pytest.raises(ValueError, match="oracle.kind='chainlink' is not allowed"):
        OracleConfig("chainlink")
    with pytest.raises(ValueError, match="emode_category=2 is not a category"):
        Reserves(
            (
                Reserve(
                    "A",
                    ltv=0.5,
                    liquidation_threshold=0.8,
                    liquidation_bonus=0.05,
                    emode_category=2,
                ),
            )
        )
    with pytest.raises(ValueError, match="symbols \\['XYZ'\\] unknown"):
        aave_v3_ethereum_reserves(("XYZ",))
