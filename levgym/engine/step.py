"""One substep of the lending market on arrays (numpy or torch), in the order of docs/model.md and
:mod:`levgym.engine.orders`. The formulas are :mod:`levgym.engine.rules`."""

from __future__ import annotations

from typing import Any

import array_api_compat

from . import rules as R
from .backend import namespace
from .borrowers import act, current_rate_apr
from .cascade import cex_fills, run_cascade
from .drivers import DriverRow
from .orders import NO_ORDERS, Orders
from .params import EngineParams
from .state import State


def market_update(
    state: State, row: DriverRow, params: EngineParams, oracle_held: Any = None
) -> State:
    """Steps 1-3: the fundamental moves, liquidity providers follow the scenario's liquidity,
    arbitrage pulls the pool toward the fundamental, the TWAP samples the pool, the oracle reads
    (unless ``oracle_held``, default the scenario's ``oracle_frozen``: see :func:`oracle_held`)."""
    xp = namespace(state.pool_asset)
    m = params.market
    now_h = state.time_h + params.run.substep_h
    pool_a, pool_d = R.set_liquidity(
        state.pool_asset, state.pool_debt, state.pool_liquidity_base * row.liquidity_frac
    )
    pool_a, pool_d = R.arbitrage(
        pool_a, pool_d, row.fundamental_usd / row.debt_price_usd, row.arb_speed_frac
    )
    pool_usd = R.pool_price_usd(pool_a, pool_d, row.debt_price_usd)
    k = m.twap_window_substeps
    slot = state.substep_index % k
    onehot = xp.arange(k, device=array_api_compat.device(state.pool_asset)) == slot
    twap_buf = xp.where(onehot[None, :], pool_usd[:, None], state.twap_buffer_usd)
    source = R.oracle_source(row.fundamental_usd, pool_usd, m.oracle_pool_weight_frac)
    new_oracle, new_updated = R.oracle_update(
        m.oracle_kind_code, state.oracle_usd, state.oracle_updated_h, now_h, source,
        xp.mean(twap_buf, axis=1), row.oracle_bias_frac,
        row.oracle_frozen if oracle_held is None else oracle_held,
        m.oracle_deviation_frac, m.oracle_heartbeat_h, False,
    )  # fmt: skip
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


def agent_orders(state: State, orders: Orders, params: EngineParams) -> State:
    """Steps 2-3 of :mod:`levgym.engine.orders`: the liquidity provider's change, then the outside
    liquidator's sale into the pool. An env with a zero order is left exactly as it was."""
    xp = namespace(state.pool_asset)
    if orders.liquidity_delta_frac is not None:
        # scaling by exactly 1.0 leaves an env with no order bit for bit as it was
        pool_a, pool_d, base = R.add_liquidity(
            state.pool_asset, state.pool_debt, state.pool_liquidity_base,
            orders.liquidity_delta_frac,
        )  # fmt: skip
        state = state.replace(
            pool_asset=pool_a,
            pool_debt=pool_d,
            pool_liquidity_base=base,
            liquidity_added_debt=state.liquidity_added_debt + (pool_d - state.pool_debt),
        )
    if orders.sell_asset is not None:
        amount = orders.sell_asset
        sells = amount > 0.0
        pool_a, pool_d, out = R.sell_asset(
            state.pool_asset, state.pool_debt, amount, params.market.pool_fee_frac
        )
        state = state.replace(
            pool_asset=xp.where(sells, pool_a, state.pool_asset),
            pool_debt=xp.where(sells, pool_d, state.pool_debt),
            agent_sold_asset=state.agent_sold_asset + amount,
            agent_sale_debt=state.agent_sale_debt + xp.where(sells, out, 0.0 * out),
            agent_sale_mid_debt=state.agent_sale_mid_debt
            + amount * (state.pool_debt / state.pool_asset),
        )
    return state


def oracle_held(row: DriverRow, orders: Orders) -> Any:
    """Whether each env's oracle keeps its answer this block: the scenario froze the feed or the
    governor's ``pause_oracle`` order holds it (:func:`levgym.engine.rules.oracle_held`)."""
    if orders.pause_oracle is None:
        return row.oracle_frozen
    return R.oracle_held(row.oracle_frozen, orders.pause_oracle != 0)


def accrue_interest(state: State, params: EngineParams) -> State:
    """Step 4: debt grows at the curve's rate; the reserve factor share goes to reserves."""
    xp = namespace(state.debt_usd)
    growth = R.interest_growth(current_rate_apr(state), params.run.substep_h)
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
    orders: Orders | None = None,
    masked: bool = False,
) -> tuple[State, Any]:
    """Advance every env by one substep. Returns the new state and the cascade rounds per env.

    ``noise_u`` is a uniform ``[E, N]`` array (the only randomness inside the engine: borrower
    reactions, exits and arrivals). ``orders`` are the agents' actions in the block
    (:class:`levgym.engine.orders.Orders`). ``masked`` runs the cascade without host
    synchronisation (:func:`levgym.engine.cascade.run_cascade`).
    """
    xp = namespace(state.pool_asset)
    orders = NO_ORDERS if orders is None else orders
    held = oracle_held(row, orders)
    freeze = None if orders.freeze_borrow is None else orders.freeze_borrow != 0
    state = market_update(state, row, params, held)
    state = agent_orders(state, orders, params)
    state = accrue_interest(state, params)
    state = act(state, row, noise_u, params, freeze)
    state = cex_fills(state, params)
    state, rounds = run_cascade(
        state, params, row.oracle_bias_frac, held, orders.claim_share_frac, masked
    )
    state = state.replace(
        fundamental_min_usd=xp.minimum(state.fundamental_min_usd, state.fundamental_usd),
        pool_min_usd=xp.minimum(state.pool_min_usd, state.pool_price_usd),
        cascade_rounds_max=xp.maximum(state.cascade_rounds_max, rounds),
        substep_index=state.substep_index + 1,
    )
    return state, rounds


def substep_masked(
    state: State, row: DriverRow, noise_u: Any, params: EngineParams, orders: Orders | None = None
) -> tuple[State, Any]:
    """:func:`substep` with the host-sync-free cascade (torch on CUDA)."""
    return substep(state, row, noise_u, params, orders, masked=True)


__all__ = [
    "accrue_interest",
    "agent_orders",
    "market_update",
    "oracle_held",
    "substep",
    "substep_masked",
]
