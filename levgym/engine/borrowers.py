"""Borrower behaviour in one substep: defensive top-ups and repays, loopers, arrivals and exits."""

from __future__ import annotations

from typing import Any

from .backend import namespace, safe_div
from .drivers import DriverRow
from .interest import borrow_rate_apr, utilization
from .params import HOURS_PER_YEAR, EngineParams
from .pool import buy_asset, sell_asset
from .state import DEFENSIVE, LOOPER, State

__all__ = ["HOURS_PER_YEAR", "act", "health_factor", "current_rate_apr", "underwater_shortfall"]


def health_factor(
    state: State, collateral_asset: Any | None = None, debt_usd: Any | None = None
) -> Any:
    """``HF = collateral * oracle * LT / (debt * debt_price)``; ``inf`` where there is no debt."""
    xp = namespace(state.collateral_asset)
    c = state.collateral_asset if collateral_asset is None else collateral_asset
    d = state.debt_usd if debt_usd is None else debt_usd
    num = c * (state.oracle_usd * state.liquidation_threshold)[:, None]
    den = d * state.debt_price_usd[:, None]
    return safe_div(xp, num, den, float("inf"))


def underwater_shortfall(state: State) -> Any:
    """Per env: debt value exceeding collateral value at the oracle, summed over positions (the
    bad debt the protocol holds but has not written off), in debt-asset units."""
    xp = namespace(state.collateral_asset)
    owed = state.debt_usd
    value = state.collateral_asset * (state.oracle_usd / state.debt_price_usd)[:, None]
    return xp.sum(xp.clip(owed - value, 0.0, None), axis=1)


def current_rate_apr(state: State, total_debt: Any | None = None) -> Any:
    xp = namespace(state.debt_usd)
    if total_debt is None:
        total_debt = xp.sum(state.debt_usd, axis=1)
    u = utilization(total_debt, state.supply_usd)
    return borrow_rate_apr(
        u, state.base_rate_apr, state.slope1_apr, state.slope2_apr, state.optimal_utilization_frac
    )


def act(state: State, row: DriverRow, noise_u: Any, params: EngineParams) -> State:
    """Borrowers act on the state at the start of the stage; ``noise_u`` is uniform ``[E, N]``.

    One uniform per slot decides everything: an active slot reacts when ``u < p_react`` and exits
    when ``u > 1 - p_exit`` (disjoint, both probabilities are at most 1/2); a free slot receives a
    new borrower when ``u < p_arrive``. Pool trades are aggregated per env: deleveraging sells go
    first as one sale, re-levering buys second as one purchase, proceeds shared pro rata.
    """
    xp = namespace(state.collateral_asset)
    b, m, p = params.borrowers, params.market, params.protocol
    dt_h = params.run.substep_h
    c, d = state.collateral_asset, state.debt_usd
    o = state.oracle_usd[:, None]
    dp = state.debt_price_usd[:, None]
    lt = state.liquidation_threshold[:, None]
    ltv = state.ltv[:, None]
    zero = xp.zeros_like(c)
    cv, dv = c * o, d * dp  # USD values
    hf = health_factor(state)
    active = state.active
    has_debt = active & (d > 0)

    gas_factor = 1.0 / (1.0 + state.gas_gwei / b.reaction_gas_ref_gwei)
    reacts = has_debt & (noise_u < state.react_prob * gas_factor[:, None])
    rate = current_rate_apr(state)
    attract = xp.exp(
        b.ltv_elasticity * (state.ltv - b.ltv_ref) - b.rate_elasticity * (rate - b.rate_ref_apr)
    )
    p_exit = xp.clip(b.exit_rate_per_h * dt_h / attract, 0.0, 0.5)
    p_arrive = xp.clip(b.arrival_rate_per_h * dt_h * row.arrival_mult * attract, 0.0, 0.5)
    exits = active & (noise_u > 1.0 - p_exit[:, None]) & (hf >= 1.0)
    arrives = (~active) & (noise_u < p_arrive[:, None])

    # Defensive: restore HF = trigger + gap by adding collateral or repaying debt.
    defend = reacts & (state.kind == DEFENSIVE) & (hf < state.trigger_hf)
    target_def = state.trigger_hf + b.defend_target_gap
    topup = defend & ~state.repays
    repay_def = defend & state.repays
    add_c = xp.where(topup, xp.clip(target_def * dv / lt - cv, 0.0, None) / o, zero)
    rep_def = xp.where(
        repay_def, xp.minimum(xp.clip(dv - cv * lt / target_def, 0.0, None) / dp, d), zero
    )

    # Loopers: re-lever to their target when healthy, deleverage through the pool when close.
    looper = reacts & (state.kind == LOOPER)
    tgt = state.target_hf
    relever = looper & (hf > tgt * (1.0 + b.relever_band_frac))
    delever = looper & (hf >= 1.0) & (hf < 1.0 + b.delever_frac * (tgt - 1.0))
    d_borrow_usd = xp.minimum((cv * lt - tgt * dv) / (tgt - lt), (cv * ltv - dv) / (1.0 - ltv))
    want_borrow = xp.where(relever, xp.clip(d_borrow_usd, 0.0, None) / dp, zero)
    sell_usd = xp.minimum(xp.clip((tgt * dv - cv * lt) / (tgt - lt), 0.0, None), xp.minimum(cv, dv))
    sell_c = xp.where(delever, sell_usd / o, zero)

    # Deleveraging sale, aggregated per env.
    fee = m.pool_fee_frac
    total_sell = xp.sum(sell_c, axis=1)
    pool_a, pool_d, out = sell_asset(state.pool_asset, state.pool_debt, total_sell, fee)
    proceeds = sell_c * safe_div(xp, out, total_sell, 0.0)[:, None]
    rep_delever = xp.minimum(proceeds, d)

    # Exits repay everything and withdraw everything.
    rep_exit = xp.where(exits, d, zero)
    wd_exit = xp.where(exits, c, zero)

    c1 = c + add_c - sell_c - wd_exit
    d1 = d - rep_def - rep_delever - rep_exit
    active1 = active & ~exits

    # New borrowing (re-levering and arrivals) within available liquidity and the borrow cap.
    arr_c = xp.where(arrives, state.template_collateral_asset, zero)
    hf_arr = xp.maximum(state.template_hf, lt / ltv)
    arr_d = arr_c * o * lt / (hf_arr * dp)
    total_debt1 = xp.sum(d1, axis=1)
    avail = xp.clip(
        xp.minimum(state.supply_usd - total_debt1, p.borrow_cap_usd - total_debt1), 0.0, None
    )
    requested = xp.sum(want_borrow + arr_d, axis=1)
    scale = xp.clip(safe_div(xp, avail, requested, 1.0), None, 1.0)[:, None]
    borrow = want_borrow * scale
    arr_d = arr_d * scale

    total_buy = xp.sum(borrow, axis=1)
    pool_a, pool_d, got = buy_asset(pool_a, pool_d, total_buy, fee)
    bought = borrow * safe_div(xp, got, total_buy, 0.0)[:, None]

    c2 = c1 + bought + arr_c
    d2 = d1 + borrow + arr_d
    active2 = active1 | arrives

    return state.replace(
        collateral_asset=c2,
        debt_usd=d2,
        active=active2,
        pool_asset=pool_a,
        pool_debt=pool_d,
        added_collateral_asset=state.added_collateral_asset
        + xp.sum(add_c + bought + arr_c, axis=1),
        withdrawn_collateral_asset=state.withdrawn_collateral_asset
        + xp.sum(sell_c + wd_exit, axis=1),
        borrowed_usd=state.borrowed_usd + xp.sum(borrow + arr_d, axis=1),
        repaid_by_borrowers_usd=state.repaid_by_borrowers_usd
        + xp.sum(rep_def + rep_delever + rep_exit, axis=1),
        arrivals=state.arrivals + xp.sum(xp.astype(arrives, c.dtype), axis=1),
        exits=state.exits + xp.sum(xp.astype(exits, c.dtype), axis=1),
    )
