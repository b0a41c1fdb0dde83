"""The batched engine equals the per-position reference loop, and numpy equals torch."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given

from levgym import scenarios
from levgym.engine import EngineParams, ProtocolParams
from levgym.engine.dispatch import substep_function
from levgym.engine.reference import reference_substep
from levgym.simulation import Simulator

from .helpers import compare_states as _compare
from .strategies import PARITY_SETTINGS, cases, numpy_rows, run_case


@PARITY_SETTINGS
@given(case=cases())
def test_batched_equals_reference(case):
    """Substep by substep from the same state: the array engine (numpy) equals the loop."""
    fast = substep_function("numpy")
    state = case.state()
    for t, row in enumerate(numpy_rows(case.drivers)):
        u = case.noise_u[t]
        out, rounds = fast(state, row, u, case.params, case.orders)
        slow, slow_rounds = reference_substep(state, row, u, case.params, case.orders)
        _compare(out, slow)
        np.testing.assert_array_equal(rounds, slow_rounds)
        state = slow


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("cascade", ["loop", "masked"])
@PARITY_SETTINGS
@given(case=cases())
def test_numpy_equals_torch_on_random_cases(cascade, case):
    """Each on its own trajectory: torch float64 (both cascades) tracks numpy."""
    numpy_run = run_case(case, substep_function("numpy"))
    torch_run = run_case(case, substep_function("torch", "cpu", cascade=cascade), "torch")
    for (a, ra), (b, rb) in zip(numpy_run, torch_run, strict=True):
        _compare(a, b.to_numpy(), rtol=1e-10)
        np.testing.assert_array_equal(ra, rb.numpy())


@pytest.mark.parametrize("scenario", ["shock", "calm"])
def test_numpy_equals_torch(scenario):
    pytest.importorskip("torch")
    params = EngineParams(protocol=ProtocolParams())
    drivers = scenarios.get(scenario).drivers(4, 36, params, 7, {})
    a = Simulator(params, drivers, 64, 7, backend="numpy")
    b = Simulator(params, drivers, 64, 7, backend="torch")
    for _ in range(36):
        a.substep()
        b.substep()
    _compare(a.state, b.state.to_numpy(), rtol=1e-10)


def test_float32_runs_close_to_float64():
    pytest.importorskip("torch")
    params = EngineParams()
    drivers = scenarios.get("shock").drivers(4, 36, params, 3, {"drop_frac": "0.3"})
    a = Simulator(params, drivers, 64, 3, backend="numpy")
    b = Simulator(params, drivers, 64, 3, backend="torch", dtype="float32")
    for _ in range(36):
        a.substep()
        b.substep()
    sb = b.state.to_numpy()
    assert sb.collateral_asset.dtype == np.float32
    assert np.all(np.isfinite(sb.debt_usd))
    total_a = a.state.debt_usd.sum()
    total_b = sb.debt_usd.astype(np.float64).sum()
    assert abs(total_a - total_b) / total_a < 1e-2
