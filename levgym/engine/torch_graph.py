"""The substep with a cascade that never synchronises with the host (torch on CUDA).

``cascade.run_cascade`` asks after every round whether any env still has an eligible
liquidation (``bool(xp.any(...))``), which on a GPU waits for the device each round. Here the
round loop always runs ``market.max_cascade_rounds`` rounds and carries that answer as a 0-d
boolean tensor instead: once a round finds nothing eligible anywhere, every later round is
masked to a no-op, exactly as if the loop had stopped. Results equal the batched engine (tested
on CPU tensors, and for the absence of host syncs on torch's ``meta`` device, where any
conversion of a tensor to a Python value raises).

The rounds are the engine's own (``cascade.select_round`` and ``cascade.apply_round``); only the
loop is restated here, with masks.
"""

from __future__ import annotations

from typing import Any

from .backend import namespace
from .borrowers import act
from .cascade import apply_round, keeper_capacity, refresh_in_block, select_round
from .drivers import DriverRow
from .params import EngineParams
from .state import State
from .step import accrue_interest, market_update


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
        terms, eligible = select_round(state, params, cap_left)
        alive = alive & xp.any(eligible)
        eligible = eligible & alive[:, None]
        state, count = apply_round(state, params, terms, eligible, share, bias_frac, frozen, alive)
        cap_left = cap_left - count
        rounds = rounds + xp.astype(count > 0, rounds.dtype)
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
