"""The packed runner (state kept in buffers, stepped in place by ``fused.substep_env``) against
the pure fused substep: the same numbers bit for bit, with orders and restarts, and a state read
from it is a copy that later substeps leave alone."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.engine.jit import HAVE_NUMBA
from levgym.engine.orders import Orders
from levgym.engine.packed import FIELD_HOME, PackedState
from levgym.engine.params import EngineParams
from levgym.engine.schema import STATE_SCHEMA
from levgym.market import MarketRunner

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


def _runner(packed: bool, envs: int = 4) -> MarketRunner:
    r = MarketRunner(
        EngineParams(), envs, 32, 40, scenarios=["shock", "merton_jumps"],
        scenario_weights=np.ones(2), backend="numba", packed=packed,
    )  # fmt: skip
    r.seed([3 + i for i in range(envs)])
    r.new_episodes(np.ones(envs, dtype=bool))
    return r


def _assert_same_state(a, b) -> None:
    for name in a.arrays():
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    assert a.time_h == b.time_h and a.substep_index == b.substep_index


def test_every_state_field_has_one_home():
    assert set(FIELD_HOME) == {f.name for f in STATE_SCHEMA}


def test_packed_runner_equals_the_fused_substep_bit_for_bit():
    plain, packed = _runner(False), _runner(True)
    assert packed.packed is not None and plain.packed is None
    rng = np.random.default_rng(0)
    for k in range(100):  # 2.5 episodes of 40 substeps: restarts of every env included
        orders = Orders(
            claim_share_frac=rng.random(4) * 0.5,
            sell_asset=rng.random(4) * 5.0 * (rng.random(4) < 0.5),
            liquidity_delta_frac=rng.uniform(-0.2, 0.2, 4) * (rng.random(4) < 0.3),
        )
        np.testing.assert_array_equal(plain.substep(orders), packed.substep(orders))
        ended = plain.at_horizon | (rng.random(4) < 0.05)  # some envs restart early
        if ended.any():
            plain.new_episodes(ended)
            packed.new_episodes(ended)
        if k % 9 == 0:
            _assert_same_state(plain.state, packed.state)
    _assert_same_state(plain.state, packed.state)
    np.testing.assert_array_equal(plain.rounds_total, packed.rounds_total)
    assert plain.substeps_run == packed.substeps_run == 100


def test_a_state_read_from_the_packed_runner_is_a_snapshot():
    r = _runner(True)
    before = r.state
    kept = {name: np.array(getattr(before, name), copy=True) for name in before.arrays()}
    for _ in range(5):
        r.substep()
    for name, values in kept.items():
        np.testing.assert_array_equal(np.asarray(getattr(before, name)), values)
    assert r.state is not before and r.state.time_h > before.time_h
    assert r.state is r.state  # made once per change


def test_writing_the_state_loads_the_buffers():
    r = _runner(True)
    s = r.state
    r.state = s.replace(ltv=np.asarray(s.ltv) * 0.5)
    np.testing.assert_array_equal(r.field("ltv"), np.asarray(s.ltv) * 0.5)
    fresh = PackedState(r.state)
    _assert_same_state(fresh.snapshot(), r.state)
