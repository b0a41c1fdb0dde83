"""The envs' ``path_pool`` and ``book_pool`` options: the backends agree, the eval split takes
eval seeds, bad values are refused (env i of a vector env equals a single env seeded s + i with
them too: tests/envs/test_vector.py)."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.scenarios import EVAL_SEED_OFFSET
from levgym.scenarios import get as get_scenario

from .helpers import SMALL, random_actions, stress_mix

POOLS = {"path_pool": 2, "book_pool": 3}


def test_numpy_and_numba_backends_agree_with_pools():
    """The numba step kernels read the bank through each env's row as numpy's gather does."""
    from levgym.envs import GovernanceVectorEnv

    kw = {**SMALL, "horizon_h": 3.0, "scenarios": stress_mix(), **POOLS}
    a, b = GovernanceVectorEnv(4, backend="numpy", **kw), GovernanceVectorEnv(4, **kw)
    oa, _ = a.reset(seed=2)
    ob, _ = b.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(8):
        actions = random_actions(rng, a.action_space.shape)
        oa, ra, *_ = a.step(actions)
        ob, rb, *_ = b.step(actions)
        np.testing.assert_allclose(oa, ob, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ra, rb, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(a.core.bank_rows, b.core.bank_rows)


def test_the_eval_split_takes_eval_seeds():
    from levgym.envs import GovernanceVectorEnv

    env = GovernanceVectorEnv(
        2, **SMALL, horizon_h=3.0, scenarios="shock", split="eval", path_pool=2
    )
    env.reset(seed=1)
    core = env.core
    for e in range(2):
        row = int(core.bank_rows[e])
        want = get_scenario("shock").drivers(
            1, core.horizon_substeps, env.params, EVAL_SEED_OFFSET + row
        )
        np.testing.assert_array_equal(core.bank[0, row], want.fundamental_usd[:, 0])


@pytest.mark.parametrize("name", ["path_pool", "book_pool"])
@pytest.mark.parametrize("value", [True, 0.5, 0])
def test_env_pool_options_are_checked_in_one_line(name, value):
    from levgym.envs import LiquidatorVectorEnv

    with pytest.raises(ValueError, match=f"^{name}=") as err:
        LiquidatorVectorEnv(1, **SMALL, horizon_h=1.0, **{name: value})
    assert "\n" not in str(err.value)
