"""A governor's levers in the engine: the supply cap, the borrowing freeze (circuit breaker) and
the oracle pause, in every implementation (reference loop, array engine, fused kernel).

Exact hand-built cases for each lever, and property tests on the parity cases: a tighter supply
cap never gives more new borrowing, arrivals or added collateral; a frozen market borrows
nothing new; a paused oracle keeps its answer; orders that are all off equal no orders, bit for
bit."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given

from levgym.engine import BorrowerParams, Drivers
from levgym.engine.dispatch import substep_function
from levgym.engine.orders import Orders
from levgym.engine.reference import reference_substep
from levgym.engine.state import from_book

from .helpers import quiet_params
from .strategies import PARITY_SETTINGS, cases, numpy_rows

IMPLS = ["reference", "numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])


def _fn(impl: str):
    return reference_substep if impl == "reference" else substep_function(impl)


def _arrival_case(cap_asset: float, template_asset: float = 4.0):
    """One market: slot 0 holds 10 units of collateral (passive, healthy), slot 1 is free and
    its uniform (0) brings an arrival of ``template_asset`` units; the supply cap is
    ``cap_asset``."""
    params = quiet_params(pool_depth_usd=1e12)
    params = dataclasses.replace(
        params,
        borrowers=BorrowerParams(arrival_rate_per_h=1.0, exit_rate_per_h=0.0),
        protocol=dataclasses.replace(params.protocol, supply_cap_asset=cap_asset),
    )
    state = from_book(params, [[10.0, 0.0]], [[400.0, 0.0]], 100.0)
    state = state.replace(
        template_collateral_asset=np.array([[10.0, template_asset]]),
        template_hf=np.array([[2.0, 2.0]]),
        supply_usd=np.array([1e6]),  # lenders' supply never binds here
    )
    drivers = Drivers.from_price(np.array([[100.0], [100.0]]), arb_speed_frac=1.0, gas_gwei=0.0)
    row = drivers.row(1, np.asarray)
    noise = np.array([[0.3, 0.0]])
    return params, state, row, noise


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("cap", "arrived_asset"),
    [(math.inf, 4.0), (20.0, 4.0), (12.0, 2.0), (10.0, 0.0), (5.0, 0.0)],
)
def test_supply_cap_scales_an_arrival_to_the_room_left(impl, cap, arrived_asset):
    params, state, row, noise = _arrival_case(cap)
    new, _ = _fn(impl)(state, row, noise, params)
    s = new.to_numpy()
    assert s.collateral_asset[0, 1] == pytest.approx(arrived_asset, rel=1e-12)
    assert s.added_collateral_asset[0] == pytest.approx(arrived_asset, rel=1e-12)
    assert bool(s.active[0, 1]) == (arrived_asset > 0)
    assert s.arrivals[0] == (1.0 if arrived_asset > 0 else 0.0)
    # the arrival borrows at its drawn health factor on the collateral it brought
    lt = params.protocol.liquidation_threshold
    assert s.debt_usd[0, 1] == pytest.approx(arrived_asset * 100.0 * lt / 2.0, rel=1e-12)
    assert s.collateral_asset.sum() <= max(cap, 10.0) + 1e-9


@pytest.mark.parametrize("impl", IMPLS)
def test_freeze_stops_the_arrival_and_pause_holds_the_oracle(impl):
    params, state, row, noise = _arrival_case(math.inf)
    row = dataclasses.replace(row, fundamental_usd=np.array([80.0]))  # a 20% fall
    orders = Orders(freeze_borrow=np.array([True]), pause_oracle=np.array([True]))
    new, _ = _fn(impl)(state, row, noise, params, orders)
    s = new.to_numpy()
    assert s.arrivals[0] == 0.0 and s.borrowed_usd[0] == 0.0 and not s.active[0, 1]
    assert s.oracle_usd[0] == 100.0 and s.oracle_updated_h[0] == state.oracle_updated_h[0]
    # without the pause the exact oracle follows the pool down
    unpaused, _ = _fn(impl)(state, row, noise, params, Orders(freeze_borrow=np.array([True])))
    assert unpaused.to_numpy().oracle_usd[0] < 100.0


@PARITY_SETTINGS
@given(case=cases(share=False))
def test_a_tighter_supply_cap_never_brings_more_new_supply_or_borrowing(case):
    state = case.state()
    row = numpy_rows(case.drivers)[0]
    u = case.noise_u[0]
    held = state.collateral_asset.sum(axis=1)
    caps = [np.full(case.num_envs, math.inf)] + [held * f for f in (1.5, 1.0, 0.5, 0.0)]
    for impl in IMPLS:
        last = None
        for cap in caps:
            new, _ = _fn(impl)(state.replace(supply_cap_asset=cap), row, u, case.params)
            now = (new.borrowed_usd, new.arrivals, new.added_collateral_asset)
            if last is not None:
                for a, b, name in zip(now, last, ("borrowed", "arrivals", "added"), strict=True):
                    assert np.all(a <= b * (1 + 1e-9) + 1e-9), (impl, name, a, b)
            last = now


@PARITY_SETTINGS
@given(case=cases(share=False))
def test_a_frozen_market_borrows_nothing_new_and_a_paused_oracle_holds(case):
    state = case.state()
    e = case.num_envs
    on = np.arange(e) % 2 == 0  # every other env
    orders = Orders(freeze_borrow=on, pause_oracle=on)
    for impl in IMPLS:
        s = state
        for t, row in enumerate(numpy_rows(case.drivers)):
            new, _ = _fn(impl)(s, row, case.noise_u[t], case.params, orders)
            n, o = new.to_numpy(), s.to_numpy()
            assert np.all(n.borrowed_usd[on] == o.borrowed_usd[on]), impl
            assert np.all(n.arrivals[on] == o.arrivals[on]), impl
            assert np.all(n.oracle_usd[on] == o.oracle_usd[on]), impl
            assert np.all(n.oracle_updated_h[on] == o.oracle_updated_h[on]), impl
            s = new


@PARITY_SETTINGS
@given(case=cases(share=False))
def test_orders_that_are_off_change_nothing(case):
    """Explicit all-off switches equal no orders, bit for bit, in every implementation."""
    e = case.num_envs
    off = Orders(freeze_borrow=np.zeros(e, dtype=bool), pause_oracle=np.zeros(e))
    state = case.state()
    for impl in IMPLS:
        a = b = state
        for t, row in enumerate(numpy_rows(case.drivers)):
            a, ra = _fn(impl)(a, row, case.noise_u[t], case.params)
            b, rb = _fn(impl)(b, row, case.noise_u[t], case.params, off)
            for f in dataclasses.fields(a):
                np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), f.name)
            np.testing.assert_array_equal(ra, rb)


def test_switch_orders_are_checked():
    Orders(freeze_borrow=np.array([True, False]), pause_oracle=np.array([0.0, 1.0])).check()
    with pytest.raises(ValueError, match="orders.pause_oracle"):
        Orders(pause_oracle=np.array([0.5])).check()
    with pytest.raises(ValueError, match="orders.freeze_borrow"):
        Orders(freeze_borrow=np.array([2.0])).check()
