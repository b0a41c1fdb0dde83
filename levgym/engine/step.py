"""One substep of the lending market, in the order of DESIGN.md."""

from __future__ import annotations

from typing import Any

import array_api_compat

from . import oracle as oracle_mod
from .backend import namespace
from .borrowers import act, current_rate_apr
from .cascade import run_cascade
from .drivers import DriverRow
from .interest import borrow_rate_apr, utilization
from .params import HOURS_PER_YEAR, EngineParams
from .pool import arbitrage, set_liquidity
from .state import State


def market_update(state: State, row: DriverRow, params: EngineParams) -> State:
    """Steps 1-3: the fundamental moves, liquidity providers follow the scenario's liquidity,
    arbitrage pulls the pool toward the fundamental, the TWAP samples the pool, the oracle reads."""
    xp = namespace(state.pool_asset)
    m = params.market
    now_h = state.time_h + params.run.substep_h
    pool_a, pool_d = set_liquidity(
        state.pool_asset, state.pool_debt, state.pool_liquidity_base * row.liquidity_frac
    )
    pool_a, pool_d = arbitrage(
        pool_a, pool_d, row.fundamental_usd / row.debt_price_usd, row.arb_speed_frac
    )
    pool_usd = pool_d / pool_a * row.debt_price_usd
    k = m.twap_window_substeps
    slot = state.substep_index % k
    onehot = xp.arange(k, device=array_api_compat.device(state.pool_asset)) == slot
    twap_buf = xp.where(onehot[None, :], pool_usd[:, None], state.twap_buffer_usd)
    twap = xp.mean(twap_buf, axis=1)
    source = oracle_mod.source_price(row.fundamental_usd, pool_usd, m.oracle_pool_weight_frac)
    new_oracle, new_updated = oracle_mod.refresh(
        m.oracle_kind_code,
        state.oracle_usd,
        state.oracle_updated_h,
        now_h,
        source,
        twap,
        row.oracle_bias_frac,
        row.oracle_frozen,
        m.oracle_deviation_frac,
        m.oracle_heartbeat_h,
    )
    return state.replace(
        fundamental_usd=row.fundamental_usd,
        debt_price_usd=row.debt_price_usd,
        gas_gwei=row.gas_gwei,
        pool_asset=pool_a,
        pool_debt=pool_d,
        twap_buffer_usd=twap_buf,
        oracle_usd=new_oracle,
        oracle_updated_h=new_updated,
        time_h=now_h,
    )


def accrue_interest(state: State, params: EngineParams) -> State:
    """Step 4: debt grows at the curve's rate; the reserve factor share goes to reserves."""
    xp = namespace(state.debt_usd)
    total = xp.sum(state.debt_usd, axis=1)
    u = utilization(total, state.supply_usd)
    rate = borrow_rate_apr(
        u, state.base_rate_apr, state.slope1_apr, state.slope2_apr, state.optimal_utilization_frac
    )
    growth = rate * (params.run.substep_h / HOURS_PER_YEAR)
    added = state.debt_usd * growth[:, None]
    interest = xp.sum(added, axis=1)
    to_reserves = interest * state.reserve_factor_frac
    return state.replace(
        debt_usd=state.debt_usd + added,
        interest_usd=state.interest_usd + interest,
        reserves_usd=state.reserves_usd + to_reserves,
        reserve_income_usd=state.reserve_income_usd + to_reserves,
        supply_usd=state.supply_usd + (interest - to_reserves),
    )


def substep(
    state: State,
    row: DriverRow,
    noise_u: Any,
    params: EngineParams,
    agent_share_frac: Any | None = None,
) -> tuple[State, Any]:
    """Advance every env by one substep. Returns the new state and the cascade rounds per env.

    ``noise_u`` is a uniform ``[E, N]`` array (the only randomness inside the engine: borrower
    reactions, exits and arrivals). ``agent_share_frac`` (``[E]``) is the share of each
    liquidation taken by an outside liquidator agent (Liquidator-v0); its collateral is not sold.
    """
    xp = namespace(state.pool_asset)
    state = market_update(state, row, params)
    state = accrue_interest(state, params)
    state = act(state, row, noise_u, params)
    state, rounds = run_cascade(
        state, params, row.oracle_bias_frac, row.oracle_frozen, agent_share_frac
    )
    pool_usd = state.pool_price_usd
    state = state.replace(
        fundamental_min_usd=xp.minimum(state.fundamental_min_usd, state.fundamental_usd),
        pool_min_usd=xp.minimum(state.pool_min_usd, pool_usd),
        cascade_rounds_max=xp.maximum(state.cascade_rounds_max, rounds),
        substep_index=state.substep_index + 1,
    )
    return state, rounds


__all__ = ["substep", "market_update", "accrue_interest", "current_rate_apr"]
