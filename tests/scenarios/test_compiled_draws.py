"""Long GBM and Merton paths are drawn by compiled kernels from the same ``np.random.Generator``
(numba's implementation of its distributions): the paths, the jump counts and the generator's
state afterwards are NumPy's, bit for bit, so no scenario's paths changed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.engine.drivers import Drivers
from levgym.engine.params import EngineParams
from levgym.envs.governance import DEFAULT_GOVERNANCE_SCENARIOS
from levgym.envs.liquidator import DEFAULT_LIQUIDATOR_SCENARIOS
from levgym.scenarios import get, processes

pytestmark = pytest.mark.skipif(not processes.HAVE_NUMBA, reason="numba is not installed")


def _state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


NUMPY_ONLY = {"gbm": 10**12, "merton": 10**12}


def _numpy_only(monkeypatch) -> None:
    monkeypatch.setattr(processes, "COMPILED_MIN_DRAWS", NUMPY_ONLY)


def _compiled_always(monkeypatch) -> None:
    monkeypatch.setattr(processes, "COMPILED_MIN_DRAWS", {"gbm": 1, "merton": 1})


@pytest.mark.parametrize("process", ["gbm", "merton"])
def test_long_paths_use_the_kernels_and_short_ones_numpy(process):
    n = processes.COMPILED_MIN_DRAWS[process]
    assert processes._compiled(process, n, 1)
    assert not processes._compiled(process, n - 1, 1)
    assert processes._compiled(process, n // 4, 4)
    assert not processes._compiled(process, 144, 1)  # a one-day path (Liquidator-v0)
    assert processes._compiled(process, 4319, 1)  # a 30-day path (Governance-v0)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 300),
    envs=st.integers(1, 4),
    seed=st.integers(0, 2**63),
    mean_log=st.floats(-1e-3, 1e-3),
    sd_log=st.sampled_from([0.0, 1e-4, 3e-3, 0.05]),
    lead_zero=st.booleans(),
)
def test_gbm_kernel_equals_numpy(steps, envs, seed, mean_log, sd_log, lead_zero):
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    got = processes._gbm_log_kernel(a, steps, envs, mean_log, sd_log, lead_zero)
    old = processes.COMPILED_MIN_DRAWS
    try:
        processes.COMPILED_MIN_DRAWS = NUMPY_ONLY
        want = processes.gbm_log_path(b, steps, envs, mean_log, sd_log, lead_zero)
    finally:
        processes.COMPILED_MIN_DRAWS = old
    np.testing.assert_array_equal(got, want)
    assert _state(a) == _state(b)
    assert a.random() == b.random()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 300),
    envs=st.integers(1, 4),
    seed=st.integers(0, 2**63),
    jumps=st.sampled_from([0.0, 1e-3, 0.05, 0.9, 12.0, 40.0]),  # both of Poisson's algorithms
    jump_mean_log=st.floats(-0.2, 0.1),
    jump_sd_log=st.floats(0.0, 0.2),
)
def test_merton_kernel_equals_numpy(steps, envs, seed, jumps, jump_mean_log, jump_sd_log):
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    args = (steps, envs, -2e-6, 3e-3, jumps, jump_mean_log, jump_sd_log)
    got = processes._merton_log_kernel(a, *args)
    old = processes.COMPILED_MIN_DRAWS
    try:
        processes.COMPILED_MIN_DRAWS = NUMPY_ONLY
        want = processes.merton_log_path(b, *args)
    finally:
        processes.COMPILED_MIN_DRAWS = old
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert _state(a) == _state(b)
    assert a.random() == b.random()


def _paths(monkeypatch, force, fn):
    with monkeypatch.context() as m:
        force(m)
        return fn()


@pytest.mark.parametrize("envs", [1, 3])
def test_public_generators_give_numpys_paths(monkeypatch, envs):
    """gbm, merton and the built-in scenarios' GBM, 30 days of 10-minute substeps."""
    cases = {
        "gbm": lambda: processes.gbm(np.random.default_rng(7), 4320, envs, 1 / 6, 2000.0, 0.8, 0.1),
        "merton": lambda: processes.merton(
            np.random.default_rng(8), 4320, envs, 1 / 6, 2000.0, 0.6, 0.05, -0.04, 0.03
        ),
    }
    for name, fn in cases.items():
        fast = _paths(monkeypatch, _compiled_always, fn)
        slow = _paths(monkeypatch, _numpy_only, fn)
        fast, slow = (x if isinstance(x, tuple) else (x,) for x in (fast, slow))
        for f, s in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(f, s, err_msg=name)


def _drivers(name: str, num_substeps: int, seed: int) -> Drivers:
    return get(name).drivers(2, num_substeps, EngineParams(), seed)


@pytest.mark.parametrize(
    "name", sorted(set(DEFAULT_GOVERNANCE_SCENARIOS) | set(DEFAULT_LIQUIDATOR_SCENARIOS))
)
def test_default_scenarios_paths_unchanged_by_the_kernels(monkeypatch, name):
    """Every default scenario of Governance-v0 and Liquidator-v0 (30 days, two envs): the same
    drivers with the kernels as with NumPy alone."""
    for seed in (0, 12345):
        fast = _paths(monkeypatch, _compiled_always, lambda s=seed: _drivers(name, 4320, s))
        slow = _paths(monkeypatch, _numpy_only, lambda s=seed: _drivers(name, 4320, s))
        for field in Drivers.__dataclass_fields__:
            np.testing.assert_array_equal(
                np.asarray(getattr(fast, field)), np.asarray(getattr(slow, field)), err_msg=field
            )
