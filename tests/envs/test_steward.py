"""The steward's action schema: per-change limits, deadband, cool-downs, switches, bounds, the
risk projection, any batch shape (a reserve per asset), and its generated table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from levgym.envs.steward import (
    GOVERNANCE_V1_SCHEMA,
    Lever,
    StewardClock,
    StewardSchema,
    project_risk,
)

CAP = Lever(
    "cap", "supply_cap_asset", "level", "asset", 0.25, 4.0, step_up=1.0, step_down=0.5,
    relative=True, cooldown_h=72.0, bounds_of="ref",
)  # fmt: skip
LT = Lever(
    "lt", "liquidation_threshold", "level", "frac", 0.5, 0.95, step_up=0.005, step_down=0.005
)
BONUS = Lever(
    "bonus", "liquidation_bonus", "level", "frac", 0.02, 0.15, step_up=0.01, step_down=0.01
)
FREEZE = Lever(
    "freeze", "freeze_borrow", "switch", "bool", 0, 1, cooldown_h=6.0, max_on_h=3.0, deadband=0.5
)
SCHEMA = StewardSchema((CAP, LT, BONUS, FREEZE))


def _bounds(shape, ref=100.0):
    return SCHEMA.bounds({"ref": np.full(shape, ref)}, shape)


def test_a_cap_moves_by_its_relative_limit_then_waits_its_cool_down():
    low, high = _bounds((1,))
    clock = StewardClock.new((1, 4))
    v = np.array([[150.0, 0.86, 0.05, 0.0]])
    up = np.array([[1.0, 0.0, 0.0, 0.0]])
    v, changed = SCHEMA.apply(v, up, clock, 0.0, low, high, {"ltv": np.array([0.8])})
    assert v[0, 0] == pytest.approx(300.0) and changed[0].tolist() == [True, False, False, False]
    for t in (1.0, 71.0):  # cooling down: the same action does nothing
        v2, changed = SCHEMA.apply(v, up, clock, t, low, high, {"ltv": np.array([0.8])})
        assert v2[0, 0] == 300.0 and not changed.any()
    v3, _ = SCHEMA.apply(v, up, clock, 72.0, low, high, {"ltv": np.array([0.8])})
    assert v3[0, 0] == pytest.approx(400.0)  # +100% would be 600: the bound (4 x 100) holds
    down = np.array([[-0.5, 0.0, 0.0, 0.0]])
    v4, _ = SCHEMA.apply(v3, down, clock, 144.0, low, high, {"ltv": np.array([0.8])})
    assert v4[0, 0] == pytest.approx(400.0 * (1 - 0.5 * 0.5))  # half the -50% limit


def test_absolute_steps_bounds_and_the_risk_projection():
    low, high = _bounds((3,))
    clock = StewardClock.new((3, 4))
    v = np.array([[100.0, 0.86, 0.05, 0.0], [100.0, 0.95, 0.05, 0.0], [100.0, 0.93, 0.10, 0.0]])
    a = np.array([[0, -0.4, 0.0, 0], [0, 1.0, 0.0, 0], [0, 1.0, 1.0, 0]], dtype=float)
    fixed = {"ltv": np.array([0.9, 0.9, 0.9])}
    new, _ = SCHEMA.apply(v, a, clock, 0.0, low, high, fixed)
    assert new[0, 1] == pytest.approx(0.86 - 0.4 * 0.005)
    assert new[1, 1] <= 0.95  # at the bound: clipped
    # row 2: the bonus rose to 0.11, so LT gives way to (1 - margin) / 1.11
    assert new[2, 2] == pytest.approx(0.11)
    assert new[2, 1] == pytest.approx(0.999 / 1.11)
    assert np.all(new[:, 1] * (1 + new[:, 2]) <= 0.999 + 1e-12)
    ltv, lt = project_risk(np.array([0.9]), np.array([0.85]), np.array([0.05]), 0.001)
    assert ltv[0] == lt[0] == 0.85


def test_a_switch_turns_on_above_its_deadband_expires_and_waits_to_go_on_again():
    low, high = _bounds((1,))
    clock = StewardClock.new((1, 4))
    v = np.array([[100.0, 0.86, 0.05, 0.0]])
    fixed = {"ltv": np.array([0.8])}
    on = np.array([[0, 0, 0, 0.9]])
    assert SCHEMA.apply(v, np.array([[0, 0, 0, 0.4]]), clock, 0.0, low, high, fixed)[0][0, 3] == 0
    v, _ = SCHEMA.apply(v, on, clock, 0.0, low, high, fixed)
    assert v[0, 3] == 1.0
    v, _ = SCHEMA.apply(v, on, clock, 2.0, low, high, fixed)
    assert v[0, 3] == 1.0
    v, _ = SCHEMA.apply(v, on, clock, 3.0, low, high, fixed)  # max_on_h = 3: off by itself
    assert v[0, 3] == 0.0
    v, _ = SCHEMA.apply(v, on, clock, 8.0, low, high, fixed)  # 5 h off < 6 h cool-down
    assert v[0, 3] == 0.0
    v, _ = SCHEMA.apply(v, on, clock, 9.0, low, high, fixed)
    assert v[0, 3] == 1.0
    v, _ = SCHEMA.apply(v, -on, clock, 9.0 + 1.0, low, high, fixed)  # off at any time
    assert v[0, 3] == 0.0


def test_the_schema_applies_per_reserve_in_any_batch_shape():
    """A multi-asset env governs each reserve with the same rows: [E, K, L] equals K runs of [E, L]."""
    rng = np.random.default_rng(0)
    e, k = 3, 4
    refs = rng.uniform(50, 200, (e, k))
    low, high = SCHEMA.bounds({"ref": refs}, (e, k))
    v = np.stack(
        [refs * 1.5, np.full((e, k), 0.86), np.full((e, k), 0.05), np.zeros((e, k))], axis=-1
    )
    clock = StewardClock.new((e, k, 4))
    fixed = {"ltv": np.full((e, k), 0.8)}
    times = rng.uniform(0, 100, (e, k))
    out = v
    for t in range(5):
        a = rng.uniform(-1, 1, (e, k, 4))
        out, _ = SCHEMA.apply(out, a, clock, times + 10 * t, low, high, fixed)
        for j in range(k):
            assert np.all(out[:, j] >= low[:, j] - 1e-12) and np.all(
                out[:, j] <= high[:, j] + 1e-12
            )
    # one reserve alone gives the same result
    rng = np.random.default_rng(0)
    rng.uniform(50, 200, (e, k))
    clock1 = StewardClock.new((e, 4))
    one = v[:, 1]
    rng.uniform(0, 100, (e, k))
    for t in range(5):
        a = rng.uniform(-1, 1, (e, k, 4))
        one, _ = SCHEMA.apply(
            one,
            a[:, 1],
            clock1,
            times[:, 1] + 10 * t,
            low[:, 1],
            high[:, 1],
            {"ltv": fixed["ltv"][:, 1]},
        )
    np.testing.assert_array_equal(one, out[:, 1])


def test_bad_rows_and_starting_values_raise_one_clear_error():
    with pytest.raises(ValueError, match="target 'nope'"):
        Lever("x", "nope", "level", "frac", 0, 1)
    with pytest.raises(ValueError, match="kind"):
        Lever("x", "ltv", "dial", "frac", 0, 1)
    with pytest.raises(ValueError, match="low=2"):
        Lever("x", "ltv", "level", "frac", 2, 1)
    with pytest.raises(ValueError, match="distinct names"):
        StewardSchema((LT, LT))
    low, high = _bounds((1,))
    with pytest.raises(ValueError, match="liquidation_threshold=0.99 is outside lever lt"):
        SCHEMA.check_contains(np.array([[100.0, 0.99, 0.05, 0.0]]), low, high)
    with pytest.raises(ValueError, match="needs the reference 'ref'"):
        SCHEMA.bounds({}, (1,))


def test_governance_v1_schema_and_its_table():
    table = GOVERNANCE_V1_SCHEMA.markdown_table()
    for v in GOVERNANCE_V1_SCHEMA.levers:
        assert f"`{v.name}`" in table and f"`{v.target}`" in table
    assert table.count("\n") == len(GOVERNANCE_V1_SCHEMA.levers) + 1
    caps = [v for v in GOVERNANCE_V1_SCHEMA.levers if v.relative]
    assert {v.name for v in caps} == {"supply_cap", "borrow_cap"}
    assert all(v.step_up == 1.0 and v.cooldown_h == 72.0 for v in caps)  # +100% per 3 days
    assert all(math.isfinite(v.max_on_h) for v in GOVERNANCE_V1_SCHEMA.levers if v.is_switch)
