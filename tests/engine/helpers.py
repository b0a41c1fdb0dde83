"""Shared builders for engine tests: quiet parameter sets and hand-made books."""

from __future__ import annotations

import dataclasses

import numpy as np

from levgym.engine import BorrowerParams, Drivers, EngineParams, MarketParams, ProtocolParams
from levgym.engine.state import from_book
from levgym.simulation import Simulator


def quiet_params(**market: object) -> EngineParams:
    """No interest, no fees, no arrivals or exits, exact oracle on the pool, free gas: only the
    cascade moves, so outcomes can be computed by hand."""
    protocol = ProtocolParams(
        slope1_apr=0.0,
        slope2_apr=0.0,
        base_rate_apr=0.0,
        protocol_fee_frac=0.0,
        small_position_usd=0.0,
    )
    mk = dict(
        pool_fee_frac=0.0,
        oracle_kind="exact",
        oracle_pool_weight_frac=1.0,
        keeper_capacity_per_substep=1e6,
        gas_units_per_liquidation=0.0,
        keeper_max_slippage_frac=1.0,
    )
    mk.update(market)
    borrowers = BorrowerParams(arrival_rate_per_h=0.0, exit_rate_per_h=0.0)
    return EngineParams(protocol=protocol, market=MarketParams(**mk), borrowers=borrowers)


def compare_states(a_state, b_state, rtol: float = 1e-9) -> None:
    """Every field of two states agrees (numpy or torch arrays, ints, floats)."""
    for f in dataclasses.fields(a_state):
        a = np.asarray(getattr(a_state, f.name), dtype=float)
        b = np.asarray(getattr(b_state, f.name), dtype=float)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6, err_msg=f.name)


def book_sim(
    params: EngineParams, coll, debt, prices, arb_speed: float = 1.0, backend: str = "numpy"
) -> Simulator:
    """A simulator over a hand-made book and a price path ``[S]`` shared by all envs."""
    coll = np.atleast_2d(np.asarray(coll, dtype=float))
    debt = np.atleast_2d(np.asarray(debt, dtype=float))
    e = coll.shape[0]
    path = np.repeat(np.asarray(prices, dtype=float)[:, None], e, axis=1)
    drivers = Drivers.from_price(path, arb_speed_frac=arb_speed, gas_gwei=0.0)
    state = from_book(params, coll, debt, path[0], backend=backend)
    return Simulator(params, drivers, coll.shape[1], seed=0, backend=backend, state=state)


def with_market(params: EngineParams, **changes: object) -> EngineParams:
    return dataclasses.replace(params, market=dataclasses.replace(params.market, **changes))
