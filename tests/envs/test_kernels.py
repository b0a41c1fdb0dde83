"""The envs' fused helpers against their plain versions: borrower noise (bit for bit), position
aggregates (to rounding), the cached aggregates, and the row-wise autoreset."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.engine.params import EngineParams
from levgym.engine.state import concat_states, from_book, reset_envs, scatter_rows
from levgym.envs import GovernanceVectorEnv
from levgym.envs.kernels import (
    HAVE_NUMBA,
    position_aggregates,
    position_aggregates_array,
    splitmix_noise,
    splitmix_noise_numpy,
)

from .helpers import SMALL, random_actions, stress_mix

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
THRESHOLDS = (1.0, 1.05, 1.25, 1.5, 2.0, 1.0 / 0.9, 1.0 / 0.75)


@needs_numba
@settings(max_examples=60, deadline=None)
@given(
    envs=st.integers(1, 5),
    slots=st.integers(1, 40),
    keys=st.lists(st.integers(0, 2**64 - 1), min_size=5, max_size=5),
    t=st.lists(st.integers(0, 10**9), min_size=5, max_size=5),
)
def test_noise_kernel_equals_numpy_bit_for_bit(envs, slots, keys, t):
    key = np.array(keys[:envs], dtype=np.uint64)
    tt = np.array(t[:envs], dtype=np.int64)
    want = splitmix_noise_numpy(key, tt, np.empty((envs, slots)))
    got = splitmix_noise(key, tt, np.full((envs, slots), np.nan))
    np.testing.assert_array_equal(got, want)
    assert np.all((got >= 0.0) & (got < 1.0))


def test_noise_known_values():
    """SplitMix64's published first output for seed 0 is 0xE220A8397B1DCDAF: key + golden with
    key 0, substep 0, slot 0 is exactly that state."""
    u = splitmix_noise(np.zeros(1, dtype=np.uint64), np.zeros(1, dtype=np.int64), np.empty((1, 1)))
    assert u[0, 0] == (0xE220A8397B1DCDAF >> 11) / 2**53


@st.composite
def books(draw):
    """States built by hand: free slots, zero debt, positions on both sides of every threshold."""
    e = draw(st.integers(1, 4))
    n = draw(st.integers(1, 33))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    coll = rng.uniform(0.0, 10.0, (e, n)) * (rng.random((e, n)) < 0.8)
    hf = rng.uniform(0.5, 3.0, (e, n))
    debt = np.where(rng.random((e, n)) < 0.9, coll * 2000.0 * 0.8 / hf, 0.0)
    price = rng.uniform(500.0, 3000.0, e)
    dp = rng.uniform(0.9, 1.1, e)
    return from_book(EngineParams(), coll, debt, price, debt_price_usd=dp)


@needs_numba
@settings(max_examples=60, deadline=None)
@given(books())
def test_aggregates_kernel_equals_the_engine_functions(state):
    got = position_aggregates(state, THRESHOLDS)
    want = position_aggregates_array(state, THRESHOLDS)
    for name, g, w in zip(got._fields, got, want, strict=True):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9, err_msg=name)


def test_aggregates_are_cached_per_state_and_recomputed_when_it_changes():
    env = GovernanceVectorEnv(3, **SMALL, horizon_h=6.0, scenarios=stress_mix())
    env.reset(seed=4)
    core = env.core
    first = core.aggregates(THRESHOLDS)
    assert core.aggregates(THRESHOLDS) is first  # same state: the cached result
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(random_actions(rng, env.action_space.shape))
        got = core.aggregates(THRESHOLDS)
        want = position_aggregates_array(core.state, THRESHOLDS)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)
    assert core.aggregates(THRESHOLDS[:2]).debt_below_usd.shape == (3, 2)


def test_row_reset_equals_the_masked_reset():
    """Writing the restarting rows into copies equals the engine's masked reset_envs."""
    env = GovernanceVectorEnv(4, **SMALL, horizon_h=6.0, scenarios=stress_mix())
    env.reset(seed=9)
    env.step(np.zeros((4, 4)))
    state = env.core.state
    idx = np.array([1, 3])
    fresh = concat_states([env.core._episode(int(i))[1] for i in idx])
    rows = reset_envs(state.select(idx), fresh, np.ones(2, dtype=bool))
    got = scatter_rows(state, rows, idx)
    gather = np.zeros(4, dtype=np.int64)
    gather[idx] = np.arange(2)
    full = fresh.select(gather)
    mask = np.zeros(4, dtype=bool)
    mask[idx] = True
    want = reset_envs(state, full, mask)
    for name in want.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    # the old state's arrays are untouched (earlier infos and caches may hold them)
    assert not np.shares_memory(got.collateral_asset, state.collateral_asset)
