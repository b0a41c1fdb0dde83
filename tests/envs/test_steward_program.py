"""Governance-v1's step kernels (:mod:`levgym.envs.steward_program`) against the same env stepping
its packed buffers substep by substep from Python: bit for bit equal observations, rewards,
ends and infos, through autoresets, lever settings, weight changes, oracle pauses and schemas
without some levers; and the kernels' pairwise sum against numpy's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from levgym.engine.jit import HAVE_NUMBA
from levgym.envs import GovernanceV1VectorEnv
from levgym.envs.steward import GOVERNANCE_V1_LEVERS, StewardSchema
from levgym.envs.steward_program import pairwise_sum

from .helpers import random_actions, stress_mix

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


class PythonStep(GovernanceV1VectorEnv):
    """Governance-v1 on packed buffers, stepped from Python (no step kernel)."""

    STEP_KERNEL = False


def _same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, Mapping):
        assert set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == np.asarray(b).dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), where


def _run(cls: type, schema: StewardSchema | None, num_envs: int, positions: int, history: int):
    venv = cls(
        num_envs, num_positions=positions, horizon_h=9.0, scenarios=stress_mix(),
        schema=schema, history=history, history_every_h=2.0,
    )  # fmt: skip
    rng = np.random.default_rng(7)
    out = [venv.reset(seed=11)]
    for k in range(40):
        if k == 13:
            venv.set_env_attr("w_bad_debt", 3.5, list(range(num_envs)))
        if k == 21:  # the hindsight ceiling's setting of every lever, in some envs
            values = venv.lever_values()
            values[:, 0] *= 1.3
            values[:, -1] = 1.0
            venv.set_levers(values, envs=np.arange(num_envs) % 2 == 0)
        actions = random_actions(rng, venv.action_space.shape)
        actions[:, -1] = np.where(rng.random(num_envs) < 0.5, 1.0, actions[:, -1])  # pauses
        out.append(venv.step(actions))
    venv.close()
    return out


@pytest.mark.parametrize(
    ("schema", "num_envs", "positions", "history"),
    [
        (None, 3, 150, 4),  # pairwise sums over more than 128 positions
        (None, 1, 24, 1),
        # no LTV, freeze or cap levers: the projection reads the state's LTV
        (StewardSchema(tuple(GOVERNANCE_V1_LEVERS[i] for i in (3, 4, 6, 9))), 2, 40, 3),
    ],
    ids=["default", "one-env-one-frame", "four-levers"],
)
def test_step_kernel_equals_the_python_step_bit_for_bit(schema, num_envs, positions, history):
    got = _run(GovernanceV1VectorEnv, schema, num_envs, positions, history)
    want = _run(PythonStep, schema, num_envs, positions, history)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w)
        for j, (a, b) in enumerate(zip(g, w, strict=True)):
            _same(a, b, f"step {k} item {j}")


def test_the_step_kernel_runs_and_pauses_happen():
    venv = GovernanceV1VectorEnv(2, num_positions=16, horizon_h=6.0, scenarios=stress_mix())
    venv.reset(seed=1)
    paused = 0.0
    for _ in range(6):
        actions = np.zeros(venv.action_space.shape)
        actions[:, -1] = 1.0
        _, _, _, _, info = venv.step(actions)
        paused += float(np.sum(info["pause_oracle"]))
    assert hasattr(venv, "_k_ic")  # the kernels' buffers exist: the kernels ran
    assert paused > 0


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 64, 127, 128, 129, 200, 256, 1000, 4099])
def test_pairwise_sum_is_numpys(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)
    x[x < -2.0] = 0.0
    assert 0.0 + pairwise_sum(x, 0, n) == x.sum()
    if n > 3:
        assert 0.0 + pairwise_sum(x, 2, n - 3) == x[2 : n - 1].sum()
