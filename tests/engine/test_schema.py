"""The field schema is the one declaration: State, Drivers, the kernel's packing derive from it."""

from __future__ import annotations

import dataclasses

import numpy as np

from levgym.engine import EngineParams
from levgym.engine.drivers import DriverRow, Drivers
from levgym.engine.schema import (
    CLOCK_FIELDS,
    DRIVER_ROW,
    DRIVER_SCHEMA,
    ENV_FIELDS,
    ENV_ROW,
    KERNEL_PARAMS,
    PARAM_ROW,
    STATE_SCHEMA,
)
from levgym.engine.state import State, init_state, reset_envs

UNITS = {"asset", "debt", "usd", "frac", "apr", "h", "gwei", "count", "hf", "bool", "code"}


def test_state_and_drivers_are_the_schema():
    names = [f.name for f in dataclasses.fields(State)]
    assert names == [f.name for f in STATE_SCHEMA] + list(CLOCK_FIELDS)
    assert [f.name for f in dataclasses.fields(Drivers)] == [f.name for f in DRIVER_SCHEMA]
    assert [f.name for f in dataclasses.fields(DriverRow)] == [f.name for f in DRIVER_SCHEMA]
    assert len(set(names)) == len(names)
    assert {f.unit for f in STATE_SCHEMA + DRIVER_SCHEMA} <= UNITS


def test_kernel_rows_name_every_packed_field_once():
    assert tuple(ENV_ROW._fields) == ENV_FIELDS
    assert list(ENV_ROW) == list(range(len(ENV_FIELDS)))
    assert list(DRIVER_ROW) == list(range(len(DRIVER_SCHEMA)))
    params = EngineParams()
    for name, section, attr in KERNEL_PARAMS:
        value = getattr(getattr(params, section), attr)
        assert isinstance(value, int | float), name
    assert len(PARAM_ROW) == len(KERNEL_PARAMS)


def test_arrays_have_the_declared_shapes_and_dtypes():
    params = EngineParams()
    s = init_state(params, 3, 5, 0, np.full(3, 2000.0), np.ones(3), np.ones(3), np.full(3, 30.0))
    size = {"env": 3, "slot": 5, "twap": params.market.twap_window_substeps}
    kinds = {"float": "f", "bool": "b", "int": "i"}
    for f in STATE_SCHEMA:
        a = getattr(s, f.name)
        assert a.shape == tuple(size[x] for x in f.axes), f.name
        assert a.dtype.kind == kinds[f.dtype], f.name


def test_reset_follows_the_schema_reset_rule():
    params = EngineParams()
    args = (np.full(2, 2000.0), np.ones(2), np.ones(2), np.full(2, 30.0))
    old = init_state(params, 2, 4, 0, *args).replace(time_h=5.0)
    fresh = init_state(params, 2, 4, 1, *args)
    new = reset_envs(old, fresh, np.array([True, False]))
    assert new.oracle_updated_h[0] == 5.0  # reset="now": the shared clock
    np.testing.assert_array_equal(new.debt_usd[0], fresh.debt_usd[0])
    np.testing.assert_array_equal(new.debt_usd[1], old.debt_usd[1])
