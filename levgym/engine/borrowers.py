"""Borrower behaviour in one substep on arrays: which positions act and how their trades are
aggregated. The amounts are :mod:`levgym.engine.rules`."""

from __future__ import annotations

from typing import Any

from . import rules as R
from .backend import namespace
from .drivers import DriverRow
from .params import EngineParams
from .rules import DEFENSIVE, HOURS_PER_YEAR, LOOPER
from .state import State

__all__ = ["HOURS_PER_YEAR", "act", "health_factor", "current_rate_apr", "underwater_shortfall"]


def health_factor(
    state: State, collateral_asset: Any | None = None, debt_usd: Any | None = None
) -> Any:
    """:func:`levgym.engine.rules.health_factor` of every position ``[E, N]``."""
    c = state.collateral_asset if collateral_asset is None else collateral_asset
    d = state.debt_usd if debt_usd is None else debt_usd
    return R.health_factor(
        c,
        d,
        state.oracle_usd[:, None],
        state.liquidation_threshold[:, None],
        state.debt_price_usd[:, None],
    )


def underwater_shortfall(state: State) -> Any:
    """Per env: debt value exceeding collateral value at the oracle, summed over positions (the
    bad debt the protocol holds but has not written off), in debt-asset units."""
    xp = namespace(state.collateral_asset)
    gap = R.underwater(
        state.collateral_asset,
        state.debt_usd,
        state.oracle_usd[:, None],
        state.debt_price_usd[:, None],
    )
    return xp.sum(gap, axis=1)


def current_rate_apr(state: State, total_debt: Any | None = None) -> Any:
    xp = namespace(state.debt_usd)
    if total_debt is None:
        total_debt = xp.sum(state.debt_usd, axis=1)
    u = R.utilization(total_debt, state.supply_usd)
    return R.borrow_rate_apr(
        u, state.base_rate_apr, state.slope1_apr, state.slope2_apr, state.optimal_utilization_frac
    )


def act(
    state: State, row: DriverRow, noise_u: Any, params: EngineParams, freeze: Any = None
) -> State:
    """Borrowers act on the state at the start of the stage; ``noise_u`` is uniform ``[E, N]``.

    One uniform per slot decides everything: an active slot reacts when ``u < p_react`` and exits
    when ``u > 1 - p_exit`` (disjoint, both probabilities are at most 1/2); a free slot receives a
    new borrower when ``u < p_arrive``. Pool trades are aggregated per env: deleveraging sells go
    first as one sale, re-levering buys second as one purchase, proceeds shared pro rata.

    New supply (arrivals' collateral and re-levering loopers' purchases, counted at the oracle)
    is scaled down to the room the supply cap leaves (none where ``freeze`` is true: a frozen
    market takes no new supply or borrowing); an arrival scaled to nothing does not arrive. New
    borrowing is then scaled down to what the supply and the borrow cap allow.
    """
    xp = namespace(state.collateral_asset)
    b, m = params.borrowers, params.market
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

    gas_factor = R.reaction_gas_factor(state.gas_gwei, b.reaction_gas_ref_gwei)
    reacts = has_debt & R.reacts(noise_u, state.react_prob, gas_factor[:, None])
    attract = R.attractiveness(
        state.ltv,
        current_rate_apr(state),
        b.ltv_elasticity,
        b.ltv_ref,
        b.rate_elasticity,
        b.rate_ref_apr,
    )
    p_exit = R.exit_prob(b.exit_rate_per_h, dt_h, attract)
    p_arrive = R.arrival_prob(b.arrival_rate_per_h, dt_h, row.arrival_mult, attract)
    exits = active & R.exits(noise_u, p_exit[:, None], hf)
    arrives = (~active) & (noise_u < p_arrive[:, None])

    # Defensive: restore HF = trigger + gap by adding collateral or repaying debt.
    defend = reacts & (state.kind == DEFENSIVE) & (hf < state.trigger_hf)
    target_def = state.trigger_hf + b.defend_target_gap
    add_c = xp.where(defend & ~state.repays, R.defend_topup_asset(cv, dv, lt, o, target_def), zero)
    rep_def = xp.where(
        defend & state.repays, R.defend_repay_debt(cv, dv, lt, dp, d, target_def), zero
    )

    # Loopers: re-lever to their target when healthy, deleverage through the pool when close.
    looper = reacts & (state.kind == LOOPER)
    tgt = state.target_hf
    relever = looper & R.relevers(hf, tgt, b.relever_band_frac)
    delever = looper & R.delevers(hf, tgt, b.delever_frac)
    want_borrow = xp.where(relever, R.looper_borrow_debt(cv, dv, lt, ltv, tgt, dp), zero)
    sell_c = xp.where(delever, R.looper_sell_asset(cv, dv, lt, tgt, o), zero)

    # Deleveraging sale, aggregated per env.
    fee = m.pool_fee_frac
    total_sell = xp.sum(sell_c, axis=1)
    pool_a, pool_d, out = R.sell_asset(state.pool_asset, state.pool_debt, total_sell, fee)
    proceeds = sell_c * R.per_unit(out, total_sell)[:, None]
    rep_delever = xp.minimum(proceeds, d)

    # Exits repay everything and withdraw everything.
    rep_exit = xp.where(exits, d, zero)
    wd_exit = xp.where(exits, c, zero)

    c1 = c + add_c - sell_c - wd_exit
    d1 = d - rep_def - rep_delever - rep_exit
    active1 = active & ~exits

    # New supply within the supply cap (nothing while frozen): arrivals and re-levering scaled.
    frozen = False if freeze is None else freeze
    arr_c = xp.where(arrives, state.template_collateral_asset, zero)
    room = R.supply_room(state.supply_cap_asset, xp.sum(c1, axis=1), frozen)
    wanted_c = arr_c + R.relever_collateral_asset(want_borrow, dp, o)
    sfill = R.fill_ratio(room, xp.sum(wanted_c, axis=1))
    arrives = arrives & (sfill > 0.0)[:, None]
    arr_c = arr_c * sfill[:, None]
    want_borrow = want_borrow * sfill[:, None]

    # New borrowing (re-levering and arrivals) within available liquidity and the borrow cap.
    arr_d = R.arrival_debt(arr_c, o, lt, ltv, state.template_hf, dp)
    avail = R.borrow_available(state.supply_usd, state.borrow_cap_usd, xp.sum(d1, axis=1))
    scale = R.fill_ratio(avail, xp.sum(want_borrow + arr_d, axis=1))[:, None]
    borrow = want_borrow * scale
    arr_d = arr_d * scale

    total_buy = xp.sum(borrow, axis=1)
    pool_a, pool_d, got = R.buy_asset(pool_a, pool_d, total_buy, fee)
    bought = borrow * R.per_unit(got, total_buy)[:, None]

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
