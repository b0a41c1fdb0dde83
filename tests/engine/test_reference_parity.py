"""The batched engine equals the per-position reference loop, and numpy equals torch."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from levgym import scenarios
from levgym.engine import EngineParams, MarketParams, ProtocolParams, substep
from levgym.engine.backend import make_converter
from levgym.engine.reference import reference_substep
from levgym.simulation import Simulator

from .helpers import compare_states as _compare


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    envs=st.integers(1, 3),
    positions=st.integers(1, 24),
    drop=st.floats(0.0, 0.7),
    oracle=st.sampled_from(["chainlink", "twap", "exact"]),
    weight=st.floats(0.0, 1.0),
    capacity=st.sampled_from([2.0, 200.0]),
    filt=st.booleans(),
    slip=st.sampled_from([0.01, 0.05, 1.0]),
    gas=st.sampled_from([5.0, 30.0, 400.0]),
    preset=st.sampled_from(["aave_v3_weth", "compound_v3", "conservative"]),
)
def test_batched_equals_reference(
    seed, envs, positions, drop, oracle, weight, capacity, filt, slip, gas, preset
):
    from levgym.engine.params import PRESETS

    params = EngineParams(
        protocol=PRESETS[preset],
        market=MarketParams(
            oracle_kind=oracle,
            oracle_pool_weight_frac=weight,
            keeper_capacity_per_substep=capacity,
            pool_depth_usd=20e6,
            profitability_filter=filt,
            keeper_max_slippage_frac=slip,
        ),
    )
    steps = 12
    drivers = scenarios.get("shock").drivers(
        envs, steps, params, seed, {"drop_frac": str(drop), "drop_hours": "1", "gas_gwei": str(gas)}
    )
    sim = Simulator(params, drivers, positions, seed)
    conv = make_converter("numpy")
    for t in range(steps):
        row = drivers.row(t, conv)
        u = sim.noise_at(t)
        fast, rounds = substep(sim.state, row, u, params)
        slow, slow_rounds = reference_substep(sim.state, row, u, params)
        _compare(fast, slow)
        np.testing.assert_array_equal(rounds, slow_rounds)
        sim.state = fast


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
