"""The array engine (numpy) and the fused kernel (numba) agree over whole named scenarios that
drive the branches random cases reach less often: a frozen oracle, a manipulated oracle, a
depegged debt asset, a drought with congestion. Each implementation runs the scenario on its own
trajectory (no resynchronisation), as ``levgym simulate`` would."""

import math

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine import EngineParams
from levgym.simulation import simulate

pytest.importorskip("numba")

ENVS, POSITIONS, STEPS, SEED = 8, 128, 24, 3


# what each scenario must switch on, so the test cannot pass on calm drivers
ACTIVE = {
    "perfect_storm": lambda d: d.oracle_frozen.any() and (d.debt_price_usd > 1.1).any(),
    "crash_oracle_attack": lambda d: (d.oracle_bias_frac < -0.05).any(),
    "dai_depeg": lambda d: (d.debt_price_usd > 1.1).any(),
    "oracle_frozen": lambda d: d.oracle_frozen.any(),
}


@pytest.mark.parametrize("scenario", sorted(ACTIVE))
def test_array_and_fused_agree_on_scenario(scenario):
    params = EngineParams()
    drivers = scenarios.get(scenario).drivers(
        ENVS, STEPS * params.run.substeps_per_step, params, SEED
    )
    assert ACTIVE[scenario](drivers)
    runs = {
        backend: simulate(drivers, params, POSITIONS, SEED, STEPS, scenario, backend=backend)
        for backend in ("numpy", "numba")
    }
    a, b = runs["numpy"], runs["numba"]
    # per substep and env: the same liquidations and the same cascade rounds
    np.testing.assert_array_equal(
        np.diff(a.series["liquidations"], axis=0, prepend=0.0),
        np.diff(b.series["liquidations"], axis=0, prepend=0.0),
    )
    np.testing.assert_array_equal(a.series["rounds"], b.series["rounds"])
    for key, x in a.series.items():  # prices, oracle and bad debt along the way
        np.testing.assert_allclose(b.series[key], x, rtol=1e-9, atol=1e-9, err_msg=key)
    # every summary value within 1e-9 relative, or absolute for values near zero
    for key, x in a.summary.items():
        if isinstance(x, float):
            assert math.isclose(x, b.summary[key], rel_tol=1e-9, abs_tol=1e-9), key
        elif key != "backend":
            assert x == b.summary[key], key
    for key, x in a.per_env.items():
        np.testing.assert_allclose(b.per_env[key], x, rtol=1e-9, atol=1e-9, err_msg=key)
    assert a.summary["liquidations"] > 0
