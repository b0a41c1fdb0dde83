"""Registration, Gymnasium and Stable-Baselines3 env checkers, rendering, invalid input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import levgym  # noqa: F401  (registers the ids)

from .helpers import ENVS, IDS, SMALL


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_make_and_make_vec_return_the_levgym_classes(env_id, single, vector, horizon):
    env = gym.make(env_id, **SMALL)
    assert isinstance(env.unwrapped, single)
    venv = gym.make_vec(env_id, num_envs=5, **SMALL)
    assert type(venv) is vector
    assert venv.num_envs == 5
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert venv.observation_space.shape == (5, *env.observation_space.shape)
    assert venv.action_space.shape == (5, *env.action_space.shape)
    spec = gym.spec(env_id)
    assert spec.vector_entry_point and spec.entry_point


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_gymnasium_check_env(env_id, single, vector, horizon):
    env = gym.make(env_id, **SMALL)
    gym_check_env(env.unwrapped)


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_sb3_check_env(env_id, single, vector, horizon, recwarn):
    env = gym.make(env_id, **SMALL)
    sb3_check_env(env.unwrapped, warn=True)
    assert not [w for w in recwarn if "stable_baselines3" in str(w.filename)], [
        str(w.message) for w in recwarn
    ]


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_render_modes(env_id, single, vector, horizon):
    env = gym.make(env_id, render_mode="rgb_array", **SMALL)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 100
    assert img.std() > 0  # something was drawn
    env = gym.make(env_id, render_mode="ansi", **SMALL)
    env.reset(seed=0)
    line = env.render()
    assert isinstance(line, str) and "\n" not in line and env_id.split("/")[1] in line
    venv = gym.make_vec(env_id, num_envs=2, render_mode="ansi", **SMALL)
    venv.reset(seed=0)
    frames = venv.render()
    assert len(frames) == 2 and all(isinstance(f, str) for f in frames)


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_invalid_actions_raise_and_out_of_range_is_clipped(env_id, single, vector, horizon):
    env = single(**SMALL)
    env.reset(seed=1)
    k = env.action_space.shape[0]
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(k, np.nan))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(k + 1))
    with pytest.raises(ValueError, match="not numeric"):
        env.step(["a"] * k)
    venv = vector(3, **SMALL)
    venv.reset(seed=1)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((2, k)))
    with pytest.raises(ValueError, match="NaN"):
        venv.step(np.array([[0.0] * k, [np.inf] * k, [0.0] * k]))
    # Out of range is clipped: 7 behaves exactly like 1.
    a, b = single(**SMALL), single(**SMALL)
    a.reset(seed=4)
    b.reset(seed=4)
    big = np.resize(np.array([7.0, -7.0, 3.0, -2.0]), k)
    oa, ra, *_ = a.step(big)
    ob, rb, *_ = b.step(np.clip(big, -1, 1))
    np.testing.assert_array_equal(oa, ob)
    assert ra == rb


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_bad_arguments_raise_one_clear_error(env_id, single, vector, horizon):
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        single(scenarios=["nope"], **SMALL)
    with pytest.raises(ValueError, match="horizon_h"):
        single(horizon_h=0.05, **SMALL)
    with pytest.raises(ValueError, match="num_positions"):
        single(num_positions=0)
    with pytest.raises(ValueError, match="backend"):
        single(backend="jax", **SMALL)
    with pytest.raises(ValueError, match="render_mode"):
        single(render_mode="human", **SMALL)
    with pytest.raises(ValueError, match="preset 'nope'"):
        single(params="nope", **SMALL)
    with pytest.raises(ValueError, match="split"):
        single(split="test", **SMALL)
    with pytest.raises(ValueError, match="autoreset_mode"):
        vector(2, autoreset_mode="NextStep", **SMALL)


def test_step_before_reset_and_after_the_end_raise():
    from levgym.envs import GovernanceEnv

    env = GovernanceEnv(horizon_h=1.0, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4))
    env.reset(seed=0)
    *_, truncated, _ = env.step(np.zeros(4))
    assert truncated
    with pytest.raises(RuntimeError, match="ended"):
        env.step(np.zeros(4))


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_make_returns_the_env_itself_which_enforces_reset_first(env_id, single, vector, horizon):
    """No OrderEnforcing / PassiveEnvChecker layers on the step (the env checks the order
    itself); the checker is one argument away."""
    env = gym.make(env_id, render_mode="ansi", **SMALL)
    assert type(env) is single
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    with pytest.raises(RuntimeError, match="reset"):
        env.render()
    checked = gym.make(env_id, disable_env_checker=False, **SMALL)
    assert isinstance(checked, gym.wrappers.PassiveEnvChecker)
    assert isinstance(checked.unwrapped, single)


def test_speed_helper_reports_env_steps_and_engine_share():
    from levgym.envs.speed import env_steps_per_second

    out = env_steps_per_second("levgym/Liquidator-v1", num_envs=4, num_positions=16, steps=3)
    assert out["env_steps_per_s"] > 0 and 0 < out["engine_share"] < 1
    assert out["substeps_per_step"] == 1
    with pytest.raises(ValueError, match="steps"):
        env_steps_per_second("levgym/Liquidator-v1", steps=0)
