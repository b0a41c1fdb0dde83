"""Seeding, the vector env against N single envs, and same-step autoreset."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from .helpers import ENVS, IDS, SMALL, random_actions, stress_mix


def rollout(env, seed: int, steps: int, action_seed: int = 0):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [obs]
    for _ in range(steps):
        obs, r, te, tr, _ = env.step(random_actions(rng, env.action_space.shape))
        out.append(np.append(obs, [r, te, tr]))
        if te or tr:
            obs, _ = env.reset()
    return np.concatenate(out)


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_same_seed_same_rollout_and_different_seeds_differ(env_id, single, vector, horizon):
    kw = {**SMALL, "horizon_h": horizon, "scenarios": stress_mix()}
    a = rollout(single(**kw), seed=7, steps=8)
    b = rollout(single(**kw), seed=7, steps=8)
    c = rollout(single(**kw), seed=8, steps=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("pools", [{}, {"path_pool": 2, "book_pool": 3}], ids=["", "pools"])
@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_vector_env_equals_single_envs_step_by_step(env_id, single, vector, horizon, pools):
    """Env i of a vector env seeded s is a single env seeded s + i, across autoresets; also
    with the opt-in path and book pools (the same pools in each)."""
    e = 3
    kw = {**SMALL, "horizon_h": horizon, "scenarios": stress_mix(), **pools}
    venv = vector(e, **kw)
    singles = [single(**kw) for _ in range(e)]
    vobs, vinfo = venv.reset(seed=100)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=100 + i)
        np.testing.assert_array_equal(vobs[i], obs)
        assert info["scenario"] == vinfo["scenario"][i]
    rng = np.random.default_rng(5)
    steps = 2 * venv.max_steps + 2  # through two autoresets
    ended_seen = 0
    for _ in range(steps):
        actions = random_actions(rng, venv.action_space.shape)
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
        for i, env in enumerate(singles):
            obs, rew, term, trunc, info = env.step(actions[i])
            assert (term, trunc) == (bool(vterm[i]), bool(vtrunc[i]))
            assert rew == vrew[i]
            if term or trunc:
                ended_seen += 1
                np.testing.assert_array_equal(vinfo["final_obs"][i], obs)
                assert vinfo["_final_obs"][i]
                obs, _ = env.reset()
            np.testing.assert_array_equal(vobs[i], obs)
    assert ended_seen >= 2 * e
    if pools:  # the bank is the pool: path_pool paths per scenario
        assert venv.core.bank.shape[1] == len(venv.core.scenarios) * pools["path_pool"]


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_partial_reset_restarts_one_env_on_its_own_stream(env_id, single, vector, horizon):
    """Envs reset at different times stay equal to their single-env twins (shared clock)."""
    kw = {**SMALL, "horizon_h": 4 * horizon, "scenarios": stress_mix()}
    venv = vector(2, **kw, autoreset_mode=AutoresetMode.DISABLED)
    twin = single(**kw)
    venv.reset(seed=40)
    twin.reset(seed=41)
    rng = np.random.default_rng(1)
    for _ in range(2):
        a = random_actions(rng, venv.action_space.shape)
        venv.step(a)
        twin.step(a[1])
    vobs, _ = venv.reset(options={"reset_mask": np.array([False, True])})
    tobs, _ = twin.reset()
    np.testing.assert_array_equal(vobs[1], tobs)
    for _ in range(3):
        a = random_actions(rng, venv.action_space.shape)
        vobs, vrew, *_ = venv.step(a)
        tobs, trew, *_ = twin.step(a[1])
        np.testing.assert_array_equal(vobs[1], tobs)
        assert vrew[1] == trew


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_same_step_autoreset_contract(env_id, single, vector, horizon):
    venv = vector(2, **SMALL, horizon_h=horizon)
    obs0, _ = venv.reset(seed=3)
    zeros = np.zeros(venv.action_space.shape)
    for t in range(venv.max_steps):
        obs, rew, term, trunc, info = venv.step(zeros)
        if t < venv.max_steps - 1:
            assert not (term | trunc).any() and "final_obs" not in info
            assert list(info["end_cause"]) == ["", ""]
    # The horizon ends both episodes as truncations; the step returns the next episodes' start.
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all() and info["_final_info"].all()
    assert list(info["end_cause"]) == ["horizon", "horizon"]
    assert info["end_counts"]["horizon"].tolist() == [1, 1]
    ep = info["final_info"]["episode"]
    assert ep["l"].tolist() == [venv.max_steps] * 2
    assert np.isfinite(ep["r"]).all()
    time_left = list(venv.FEATURES).index(next(f for f in venv.FEATURES if f.name == "time_left"))
    assert all(info["final_obs"][i][time_left] == 0.0 for i in range(2))
    assert (obs[:, time_left] == 1.0).all()
    # The next episode keeps going (no reset needed) and counts steps from 1.
    obs, rew, term, trunc, info = venv.step(zeros)
    assert info["episode_step"].tolist() == [1, 1]


def test_disabled_autoreset_requires_a_reset():
    from levgym.envs import GovernanceVectorEnv

    venv = GovernanceVectorEnv(2, **SMALL, horizon_h=1.0, autoreset_mode="Disabled")
    venv.reset(seed=0)
    venv.step(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(np.zeros((2, 4)))
    venv.reset(options={"reset_mask": np.array([True, True])})
    venv.step(np.zeros((2, 4)))


def test_numpy_and_torch_backends_agree():
    pytest.importorskip("torch")
    from levgym.envs import LiquidatorVectorEnv

    kw = {**SMALL, "horizon_h": 1.0, "scenarios": stress_mix()}
    a = LiquidatorVectorEnv(2, **kw)
    b = LiquidatorVectorEnv(2, **kw, backend="torch")
    oa, _ = a.reset(seed=2)
    ob, _ = b.reset(seed=2)
    np.testing.assert_allclose(oa, ob, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(8):
        act = random_actions(rng, a.action_space.shape)
        ra, rb = a.step(act), b.step(act)
        np.testing.assert_allclose(ra[0], rb[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ra[1], rb[1], rtol=1e-6, atol=1e-6)
