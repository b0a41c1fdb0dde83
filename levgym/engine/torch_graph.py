"""The substep with a cascade that never synchronises with the host (torch on CUDA).

``cascade.run_cascade`` asks after every round whether any env still has an eligible
liquidation (``bool(xp.any(...))``), which on a GPU waits for the device each round. Here the
round loop always runs ``market.max_cascade_rounds`` rounds and carries that answer as a 0-d
boolean tensor instead: once a round finds nothing eligible anywhere, every later round is
masked to a no-op, exactly as if the loop had stopped. Results equal the batched engine (tested
on CPU tensors, and for the absence of host syncs on torch's ``meta`` device, where any
conversion of a tensor to a Python value raises).

The building blocks (liquidation terms, the keepers' selection, write-off, the oracle) are the
engine's own; only the loop is restated here with masks.
"""

from __future__ import annotations

from typing import Any

from . import oracle as oracle_mod
from .backend import namespace
from .borrowers import act
from .cascade import _select, keeper_capacity, liquidation_terms, refresh_in_block, write_off
from .drivers import DriverRow
from .params import EngineParams
from .pool import sell_asset
from .state import State
from .step import accrue_interest, market_update

# Fields that ``cascade.write_off`` changes; masked back when the round loop has stopped.
_WRITE_OFF_FIELDS = (
    "debt_usd",
    "collateral_asset",
    "active",
    "reserves_usd",
    "supply_usd",
    "bad_debt_usd",
    "bad_debt_from_reserves_usd",
    "lender_loss_usd",
)


def run_cascade_masked(
    state: State,
    params: EngineParams,
    bias_frac: Any,
    frozen: Any,
    agent_share_frac: Any | None = None,
) -> tuple[State, Any]:
    """:func:`levgym.engine.cascade.run_cascade` with a fixed round count and masks: the same
    result, no host synchronisation (no Python branch on tensor values)."""
    xp = namespace(state.collateral_asset)
    m = params.market
    state = refresh_in_block(state, params, bias_frac, frozen)
    cap_left = keeper_capacity(state.gas_gwei, params)
    rounds = xp.zeros_like(state.oracle_usd)
    share = xp.zeros_like(state.oracle_usd) if agent_share_frac is None else agent_share_frac
    alive = xp.ones_like(state.oracle_usd[:1], dtype=xp.bool)  # [1]: the shared loop still runs
    for _ in range(m.max_cascade_rounds):
        liq, repay, seize, fee, profit = liquidation_terms(state, params)
        cand = liq & (profit > 0) if m.profitability_filter else liq
        eligible = _select(xp, state, params, cand, profit, seize - fee, repay, cap_left)
        alive = alive & xp.any(eligible)
        eligible = eligible & alive[:, None]
        count = xp.sum(xp.astype(eligible, repay.dtype), axis=1)
        zero = xp.zeros_like(repay)
        repay = xp.where(eligible, repay, zero)
        seize = xp.where(eligible, seize, zero)
        fee = xp.where(eligible, fee, zero)
        repay_env = xp.sum(repay, axis=1)
        seize_env = xp.sum(seize, axis=1)
        fee_env = xp.sum(fee, axis=1)
        net_env = seize_env - fee_env
        keeper_sell = net_env * (1.0 - share)
        pool_a, pool_d, out = sell_asset(
            state.pool_asset, state.pool_debt, keeper_sell, m.pool_fee_frac
        )
        dp = state.debt_price_usd
        gas_env = (
            count
            * (1.0 - share)
            * (state.gas_gwei * 1e-9 * m.gas_units_per_liquidation * state.fundamental_usd)
        )
        state = state.replace(
            collateral_asset=state.collateral_asset - seize,
            debt_usd=state.debt_usd - repay,
            ever_liquidated=state.ever_liquidated | eligible,
            pool_asset=xp.where(alive, pool_a, state.pool_asset),
            pool_debt=xp.where(alive, pool_d, state.pool_debt),
            seized_collateral_asset=state.seized_collateral_asset + seize_env,
            repaid_by_liquidators_usd=state.repaid_by_liquidators_usd + repay_env,
            liquidations=state.liquidations + count,
            protocol_fee_asset=state.protocol_fee_asset + fee_env,
            protocol_fee_usd=state.protocol_fee_usd + fee_env * state.oracle_usd,
            keeper_sold_asset=state.keeper_sold_asset + keeper_sell,
            keeper_profit_usd=xp.where(
                alive,
                state.keeper_profit_usd + (out - repay_env * (1.0 - share)) * dp - gas_env,
                state.keeper_profit_usd,
            ),
            agent_seized_asset=state.agent_seized_asset + net_env * share,
            agent_repaid_usd=state.agent_repaid_usd + repay_env * share,
        )
        written, _ = write_off(state)
        masked = {}
        for name in _WRITE_OFF_FIELDS:
            new, old = getattr(written, name), getattr(state, name)
            cond = alive if new.ndim == 1 else alive[:, None]
            masked[name] = xp.where(cond, new, old)
        state = state.replace(**masked)
        cap_left = cap_left - count
        rounds = rounds + xp.astype(count > 0, rounds.dtype)
        source = oracle_mod.source_price(
            state.fundamental_usd, state.pool_price_usd, m.oracle_pool_weight_frac
        )
        new_oracle, new_updated = oracle_mod.refresh(
            m.oracle_kind_code,
            state.oracle_usd,
            state.oracle_updated_h,
            state.time_h,
            source,
            None,
            bias_frac,
            frozen | ~alive,  # a stopped loop refreshes nothing
            m.oracle_deviation_frac,
            None,
        )
        state = state.replace(oracle_usd=new_oracle, oracle_updated_h=new_updated)
    return state, rounds


def substep_masked(
    state: State,
    row: DriverRow,
    noise_u: Any,
    params: EngineParams,
    agent_share_frac: Any | None = None,
) -> tuple[State, Any]:
    """:func:`levgym.engine.step.substep` with :func:`run_cascade_masked` as its cascade."""
    xp = namespace(state.pool_asset)
    state = market_update(state, row, params)
    state = accrue_interest(state, params)
    state = act(state, row, noise_u, params)
    state, rounds = run_cascade_masked(
        state, params, row.oracle_bias_frac, row.oracle_frozen, agent_share_frac
    )
    state = state.replace(
        fundamental_min_usd=xp.minimum(state.fundamental_min_usd, state.fundamental_usd),
        pool_min_usd=xp.minimum(state.pool_min_usd, state.pool_price_usd),
        cascade_rounds_max=xp.maximum(state.cascade_rounds_max, rounds),
        substep_index=state.substep_index + 1,
    )
    return state, rounds


__all__ = ["run_cascade_masked", "substep_masked"]
