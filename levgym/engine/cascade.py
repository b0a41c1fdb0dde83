"""The liquidation cascade on arrays: rounds of liquidations whose collateral sales move the pool
and the oracle. The formulas are :mod:`levgym.engine.rules`; this module selects, orders and sums.

One cascade with a switch: ``masked=False`` stops at the first round with nothing eligible in
any env (one host sync per round); ``masked=True`` always runs ``market.max_cascade_rounds``
rounds and carries "the loop still runs" as a 0-d tensor, so nothing waits for the device (torch
on CUDA). Both give the same result.
"""

from __future__ import annotations

from typing import Any

from . import rules as R
from .backend import namespace
from .borrowers import health_factor
from .params import EngineParams
from .state import State


def keeper_capacity(gas_gwei: Any, params: EngineParams) -> Any:
    m = params.market
    return R.keeper_capacity(gas_gwei, m.congestion_ref_gwei, m.keeper_capacity_per_substep)


def gas_cost_usd(gas_gwei: Any, fundamental_usd: Any, params: EngineParams) -> Any:
    return R.gas_cost_usd(gas_gwei, params.market.gas_units_per_liquidation, fundamental_usd)


def routes(state: State, params: EngineParams) -> tuple[Any, Any, Any, Any]:
    """(aggregator asset, aggregator debt, CEX asset, CEX debt) reserves ``[E]`` of the keepers'
    off-pool venues at the fundamental price (zero for a venue with no depth)."""
    m = params.market
    aa, ad = R.venue_reserves(
        state.fundamental_usd, state.debt_price_usd, m.keeper_aggregator_depth_usd
    )
    ca, cd = R.venue_reserves(state.fundamental_usd, state.debt_price_usd, m.keeper_cex_depth_usd)
    return aa, ad, ca, cd


def _route_args(state: State, params: EngineParams, col: bool) -> tuple[Any, ...]:
    """The venue arguments of :func:`levgym.engine.rules.route_split` before the amount (as
    ``[E, 1]`` columns when ``col``)."""
    m = params.market
    aa, ad, ca, cd = routes(state, params)
    pa, pd = state.pool_asset, state.pool_debt
    if col:
        pa, pd, aa, ad, ca, cd = (v[:, None] for v in (pa, pd, aa, ad, ca, cd))
    return (
        pa, pd, m.pool_fee_frac, aa, ad, m.keeper_aggregator_fee_frac, ca, cd,
        m.keeper_cex_fee_frac,
    )  # fmt: skip


def _route_flags(params: EngineParams) -> tuple[bool, bool]:
    m = params.market
    return m.keeper_aggregator_depth_usd > 0.0, m.keeper_cex_depth_usd > 0.0


def cex_fills(state: State, params: EngineParams) -> State:
    """Collateral held for the CEX leg fills (a share ``market.keeper_cex_fill_frac`` of it) and
    is sold at the current fundamental: the keepers' profit takes the proceeds."""
    m = params.market
    if not (m.keeper_cex_depth_usd > 0.0 and m.keeper_cex_latency_substeps > 0.0):
        return state
    fill = R.cex_fill_asset(state.keeper_cex_pending_asset, m.keeper_cex_fill_frac)
    return state.replace(
        keeper_cex_pending_asset=state.keeper_cex_pending_asset - fill,
        keeper_profit_usd=state.keeper_profit_usd + fill * state.fundamental_usd,
    )


def liquidation_terms(state: State, params: EngineParams):
    """Per position: (liquidatable, repay [debt units], seize [asset], protocol fee [asset], profit [USD])."""
    xp = namespace(state.collateral_asset)
    p, m = params.protocol, params.market
    c, d = state.collateral_asset, state.debt_usd
    o = state.oracle_usd[:, None]
    dp = state.debt_price_usd[:, None]
    bonus = state.liquidation_bonus[:, None]
    hf = health_factor(state)
    liq = state.active & (d > 0) & (hf < 1.0)
    max_repay = R.INF
    if m.keeper_chunk_ratio != R.INF:
        reserve = state.pool_asset
        if m.keeper_split:
            aa, _, ca, _ = routes(state, params)
            reserve = R.route_reserve_asset(reserve, aa, ca)
        max_repay = R.chunk_repay(reserve[:, None], m.keeper_chunk_ratio, o, bonus, dp)
    repay, seize, fee = R.liquidation_call(
        c, d, hf, o, dp, bonus, state.close_factor[:, None], p.full_close_hf,
        p.small_position_usd, max_repay, p.protocol_fee_frac,
    )  # fmt: skip
    if m.keeper_split:
        out = R.route_out(*_route_args(state, params, True), seize - fee, *_route_flags(params))
    elif m.keeper_venue_frac > 0.0:
        va, vd = R.venue_reserves(
            state.fundamental_usd, state.debt_price_usd, m.keeper_venue_depth_usd
        )
        out = R.split_sale_out(
            state.pool_asset[:, None], state.pool_debt[:, None], va[:, None], vd[:, None],
            seize - fee, seize - fee, m.pool_fee_frac, m.keeper_venue_frac,
        )  # fmt: skip
    else:
        out = R.swap_out(
            state.pool_asset[:, None], state.pool_debt[:, None], seize - fee, m.pool_fee_frac
        )
    gas_usd = gas_cost_usd(state.gas_gwei, state.fundamental_usd, params)[:, None]
    profit = R.liquidation_profit(out, repay, dp, gas_usd)
    zero = xp.zeros_like(c)
    return (
        liq,
        xp.where(liq, repay, zero),
        xp.where(liq, seize, zero),
        xp.where(liq, fee, zero),
        xp.where(liq, profit, zero),
    )


def _select(
    xp: Any, state: State, params: EngineParams, cand: Any, profit: Any, net: Any, repay: Any,
    cap_left: Any,
) -> Any:  # fmt: skip
    """Which candidates are liquidated this round.

    Keepers act in order of standalone profit (ties by slot index), as transactions in a block:
    each liquidation's sale is priced after the sales of all higher-ranked candidates. With the
    profitability filter on, a liquidation whose sale at that point no longer pays for repay and
    gas is skipped (its predecessors' sales still count, a conservative estimate). At most
    ``cap_left`` are taken per env.
    """
    m = params.market
    masked = xp.where(cand, profit, xp.full_like(profit, -float("inf")))
    order = xp.argsort(-masked, axis=1, stable=True)
    take = xp.take_along_axis(cand, order, axis=1)
    if m.profitability_filter:
        net_s = xp.take_along_axis(xp.where(cand, net, xp.zeros_like(net)), order, axis=1)
        repay_s = xp.take_along_axis(repay, order, axis=1)
        if m.keeper_split:
            out = R.block_route_out(
                *_route_args(state, params, True), xp.cumulative_sum(net_s, axis=1), net_s,
                *_route_flags(params),
            )  # fmt: skip
        elif m.keeper_venue_frac > 0.0:
            va, vd = R.venue_reserves(
                state.fundamental_usd, state.debt_price_usd, m.keeper_venue_depth_usd
            )
            out = R.split_sale_out(
                state.pool_asset[:, None], state.pool_debt[:, None], va[:, None], vd[:, None],
                xp.cumulative_sum(net_s, axis=1), net_s, m.pool_fee_frac, m.keeper_venue_frac,
            )  # fmt: skip
        else:
            out = R.block_sale_out(
                state.pool_asset[:, None], state.pool_debt[:, None],
                xp.cumulative_sum(net_s, axis=1), net_s, m.pool_fee_frac,
            )  # fmt: skip
        gas_usd = gas_cost_usd(state.gas_gwei, state.fundamental_usd, params)[:, None]
        take = take & (
            R.liquidation_profit(out, repay_s, state.debt_price_usd[:, None], gas_usd) > 0
        )
    taken_before = xp.cumulative_sum(xp.astype(take, profit.dtype), axis=1)
    take = take & (taken_before <= cap_left[:, None])
    inverse = xp.argsort(order, axis=1, stable=True)
    return xp.take_along_axis(take, inverse, axis=1)


def write_off(state: State) -> tuple[State, Any]:
    """Debt left on positions with no collateral becomes bad debt: reserves pay first, lenders
    the rest (debt-asset units, like debt)."""
    xp = namespace(state.collateral_asset)
    empty = state.active & (state.collateral_asset <= 0)
    bad = xp.where(empty & (state.debt_usd > 0), state.debt_usd, xp.zeros_like(state.debt_usd))
    bad_env = xp.sum(bad, axis=1)
    from_reserves, lenders = R.write_off_split(bad_env, state.reserves_usd)
    new = state.replace(
        debt_usd=state.debt_usd - bad,
        collateral_asset=xp.where(
            empty, xp.zeros_like(state.collateral_asset), state.collateral_asset
        ),
        active=state.active & ~empty,
        reserves_usd=state.reserves_usd - from_reserves,
        supply_usd=state.supply_usd - lenders,
        bad_debt_usd=state.bad_debt_usd + bad_env,
        bad_debt_from_reserves_usd=state.bad_debt_from_reserves_usd + from_reserves,
        lender_loss_usd=state.lender_loss_usd + lenders,
    )
    return new, bad_env


def run_cascade(
    state: State,
    params: EngineParams,
    bias_frac: Any,
    frozen: Any,
    claim_share_frac: Any | None = None,
    masked: bool = False,
) -> tuple[State, Any]:
    """Liquidate in rounds until nothing liquidatable is profitable, capacity is spent, or the
    round limit. Returns the new state and the number of rounds with a liquidation, per env.

    In each round every liquidatable position whose liquidation pays for gas and slippage is
    liquidated, in order of standalone profit, each priced after the sales ranked before it
    (see :func:`_select`), up to the keeper capacity left. Background keepers sell their seized
    collateral, net of the protocol fee, into the pool in one trade per env; a share
    ``claim_share_frac`` of every liquidation goes to an outside agent, whose collateral is not
    sold. Then bad debt is written off and the oracle reads the moved pool (deviation only: the
    cascade is within one block). Before the first round the oracle reads the pool as the block
    left it so far. ``masked``: see the module doc.
    """
    xp = namespace(state.collateral_asset)
    state = refresh_in_block(state, params, bias_frac, frozen)
    cap_left = keeper_capacity(state.gas_gwei, params)
    rounds = xp.zeros_like(state.oracle_usd)
    share = xp.zeros_like(state.oracle_usd) if claim_share_frac is None else claim_share_frac
    alive = xp.ones_like(state.oracle_usd[:1], dtype=xp.bool) if masked else None
    for _ in range(params.market.max_cascade_rounds):
        terms, eligible = select_round(state, params, cap_left)
        if masked:
            alive = alive & xp.any(eligible)
            eligible = eligible & alive[:, None]
        elif not bool(xp.any(eligible)):
            break
        state, count = apply_round(state, params, terms, eligible, share, bias_frac, frozen, alive)
        cap_left = cap_left - count
        rounds = rounds + xp.astype(count > 0, rounds.dtype)
    return state, rounds


def select_round(state: State, params: EngineParams, cap_left: Any) -> tuple[tuple, Any]:
    """The liquidation terms of every position and which are liquidated this round."""
    xp = namespace(state.collateral_asset)
    terms = liquidation_terms(state, params)
    liq, repay, seize, fee, profit = terms
    cand = liq & (profit > 0) if params.market.profitability_filter else liq
    return terms, _select(xp, state, params, cand, profit, seize - fee, repay, cap_left)


def apply_round(
    state: State, params: EngineParams, terms: tuple, eligible: Any, share: Any, bias_frac: Any,
    frozen: Any, alive: Any | None = None,
) -> tuple[State, Any]:  # fmt: skip
    """Liquidate ``eligible``, sell the keepers' collateral, write off bad debt, refresh the
    oracle. Returns the new state and the liquidations per env.

    ``alive`` (bool ``[1]``, the masked cascade) marks whether the shared loop still runs; when it
    does not, nothing changes, not even by rounding."""
    xp = namespace(state.collateral_asset)
    m = params.market
    _, repay, seize, fee, _ = terms
    count = xp.sum(xp.astype(eligible, repay.dtype), axis=1)
    zero = xp.zeros_like(repay)
    repay_env = xp.sum(xp.where(eligible, repay, zero), axis=1)
    seize_pos = xp.where(eligible, seize, zero)
    seize_env = xp.sum(seize_pos, axis=1)
    fee_env = xp.sum(xp.where(eligible, fee, zero), axis=1)
    net_env = seize_env - fee_env
    keeper_sell = net_env * (1.0 - share)
    venue_changes = {}
    if m.keeper_split:
        use_agg, use_cex = _route_flags(params)
        args = _route_args(state, params, False)
        to_pool, to_agg, to_cex = R.route_split(*args, keeper_sell, use_agg, use_cex)
        pool_a, pool_d, out = R.sell_asset(
            state.pool_asset, state.pool_debt, to_pool, m.pool_fee_frac
        )
        _, _, _, aa, ad, agg_fee, ca, cd, cex_fee = args
        if use_agg:
            out = out + R.swap_out(aa, ad, to_agg, agg_fee)
            venue_changes["keeper_aggregator_sold_asset"] = (
                state.keeper_aggregator_sold_asset + to_agg
            )
        if use_cex:
            cex_out = R.swap_out(ca, cd, to_cex, cex_fee)
            if m.keeper_cex_latency_substeps > 0.0:
                venue_changes["keeper_cex_pending_asset"] = state.keeper_cex_pending_asset + (
                    cex_out * state.debt_price_usd / state.fundamental_usd
                )
            else:
                out = out + cex_out
            venue_changes["keeper_cex_sold_asset"] = state.keeper_cex_sold_asset + to_cex
    elif m.keeper_venue_frac > 0.0:
        to_venue = keeper_sell * m.keeper_venue_frac
        va, vd = R.venue_reserves(
            state.fundamental_usd, state.debt_price_usd, m.keeper_venue_depth_usd
        )
        pool_a, pool_d, out = R.sell_asset(
            state.pool_asset, state.pool_debt, keeper_sell - to_venue, m.pool_fee_frac
        )
        out = out + R.swap_out(va, vd, to_venue, m.pool_fee_frac)
        venue_changes["keeper_venue_sold_asset"] = state.keeper_venue_sold_asset + to_venue
    else:
        pool_a, pool_d, out = R.sell_asset(
            state.pool_asset, state.pool_debt, keeper_sell, m.pool_fee_frac
        )
    dp = state.debt_price_usd
    gas_one = gas_cost_usd(state.gas_gwei, state.fundamental_usd, params)
    gas_keepers = count * (1.0 - share) * gas_one
    profit = state.keeper_profit_usd + R.liquidation_profit(
        out, repay_env * (1.0 - share), dp, gas_keepers
    )
    if alive is not None:
        pool_a = xp.where(alive, pool_a, state.pool_asset)
        pool_d = xp.where(alive, pool_d, state.pool_debt)
        profit = xp.where(alive, profit, state.keeper_profit_usd)
    before = state.replace(
        collateral_asset=state.collateral_asset - seize_pos,
        debt_usd=state.debt_usd - xp.where(eligible, repay, zero),
        ever_liquidated=state.ever_liquidated | eligible,
        pool_asset=pool_a,
        pool_debt=pool_d,
        seized_collateral_asset=state.seized_collateral_asset + seize_env,
        repaid_by_liquidators_usd=state.repaid_by_liquidators_usd + repay_env,
        liquidations=state.liquidations + count,
        protocol_fee_asset=state.protocol_fee_asset + fee_env,
        protocol_fee_usd=state.protocol_fee_usd + fee_env * state.oracle_usd,
        keeper_sold_asset=state.keeper_sold_asset + keeper_sell,
        keeper_profit_usd=profit,
        agent_seized_asset=state.agent_seized_asset + net_env * share,
        agent_repaid_usd=state.agent_repaid_usd + repay_env * share,
        agent_gas_usd=state.agent_gas_usd + count * share * gas_one,
        **venue_changes,
    )
    written, _ = write_off(before)
    if alive is not None:
        masked = {}
        for name in WRITE_OFF_FIELDS:
            new, old = getattr(written, name), getattr(before, name)
            masked[name] = xp.where(alive if new.ndim == 1 else alive[:, None], new, old)
        written = before.replace(**masked)
        frozen = frozen | ~alive  # a stopped loop refreshes nothing
    return refresh_in_block(written, params, bias_frac, frozen), count


# The fields write_off changes.
WRITE_OFF_FIELDS = (
    "debt_usd",
    "collateral_asset",
    "active",
    "reserves_usd",
    "supply_usd",
    "bad_debt_usd",
    "bad_debt_from_reserves_usd",
    "lender_loss_usd",
)


def refresh_in_block(state: State, params: EngineParams, bias_frac: Any, frozen: Any) -> State:
    """The oracle reads the pool as it stands, within the block: deviation updates only (a TWAP
    does not move within a block). Run once before the first round, so that each env's oracle
    has seen the block's trades so far, and after each round; for an env whose pool did not
    move since, it is a no-op, which keeps every env's outcome independent of the batch."""
    m = params.market
    source = R.oracle_source(state.fundamental_usd, state.pool_price_usd, m.oracle_pool_weight_frac)
    new_oracle, new_updated = R.oracle_update(
        m.oracle_kind_code, state.oracle_usd, state.oracle_updated_h, state.time_h, source, None,
        bias_frac, frozen, m.oracle_deviation_frac, m.oracle_heartbeat_h, True,
    )  # fmt: skip
    return state.replace(oracle_usd=new_oracle, oracle_updated_h=new_updated)


__all__ = [
    "apply_round",
    "cex_fills",
    "routes",
    "gas_cost_usd",
    "keeper_capacity",
    "liquidation_terms",
    "refresh_in_block",
    "run_cascade",
    "select_round",
    "write_off",
]
