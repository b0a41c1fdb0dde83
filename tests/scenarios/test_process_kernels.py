"""The compiled time recursions of the price processes give the Python loops' numbers, bit for bit
(so compiling them changed no scenario's paths)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.scenarios import processes

pytestmark = pytest.mark.skipif(not processes.HAVE_NUMBA, reason="numba is not installed")


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 60),
    m=st.integers(1, 3),
    envs=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(0.0, 0.3),
    persistence=st.floats(0.5, 0.999),
    h=st.sampled_from([1.0 / 6.0, 0.5, 1.0]),
)
def test_garch_kernel_equals_the_python_loop(steps, m, envs, seed, alpha, persistence, h):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((steps, m, envs)) * 3.0  # fat shocks too
    s2 = rng.uniform(1e-6, 1e-3, envs)
    beta = max(persistence - alpha, 0.0)
    omega = 3e-6
    want = processes.garch_recursion_python(z, s2.copy(), h, omega, alpha, beta)
    got = processes._garch_kernel(z, s2.copy(), h, omega, alpha, beta)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 80),
    envs=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    phi=st.floats(-0.99, 0.99),
)
def test_ar1_equals_the_python_loop(steps, envs, seed, phi):
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((steps, envs))
    first = rng.standard_normal(envs)
    np.testing.assert_array_equal(
        processes.ar1(first, phi, shocks), processes.ar1_python(first, phi, shocks)
    )


def test_garch_generator_uses_the_kernel_with_the_same_paths(monkeypatch):
    """The public generator gives the same prices with the kernel and with the Python loop."""
    args = (200, 3, 1.0 / 6.0, 2000.0, 3.21e-6, 0.1136, 0.863)  # S, E, dt_h, start, GARCH
    fast = processes.garch(np.random.default_rng(5), *args)
    monkeypatch.setattr(processes, "HAVE_NUMBA", False)
    slow = processes.garch(np.random.default_rng(5), *args)
    for f, s in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(f, s)


def test_ar1_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="ar1"):
        processes.ar1(np.zeros(3), 0.5, np.zeros((10, 2)))
