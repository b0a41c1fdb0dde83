"""The Stable-Baselines3 adapter: VecEnv contract, attribute access, and training smoke runs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import A2C, PPO, SAC, TD3  # noqa: E402

from levgym.engine.params import ProtocolParams  # noqa: E402
from levgym.envs import GovernanceVectorEnv, make_sb3_vec_env  # noqa: E402
from levgym.envs.sb3 import Sb3VecEnvAdapter  # noqa: E402

from .helpers import ENVS, IDS, SMALL  # noqa: E402


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_info_contract_at_the_horizon(env_id, single, vector, horizon):
    venv = make_sb3_vec_env(env_id, num_envs=3, seed=5, horizon_h=horizon, **SMALL)
    obs = venv.reset()
    assert obs.shape == (3, *venv.observation_space.shape) and obs.dtype == np.float32
    steps = venv.venv.max_steps
    for t in range(steps):
        obs, rew, dones, infos = venv.step(
            np.zeros((3, *venv.action_space.shape), dtype=np.float32)
        )
        assert rew.dtype == np.float32 and dones.dtype == bool and len(infos) == 3
        if t < steps - 1:
            assert not dones.any() and infos == [{}, {}, {}]
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["end_cause"] == "horizon"
        term = info["terminal_observation"]
        assert term.shape == venv.observation_space.shape and not np.array_equal(term, obs[i])
        assert info["episode"]["l"] == steps and np.isfinite(info["episode"]["r"])


def test_seeding_through_the_adapter_matches_the_vector_env():
    a = make_sb3_vec_env("levgym/Governance-v0", num_envs=2, seed=9, **SMALL)
    b = GovernanceVectorEnv(2, **SMALL)
    np.testing.assert_array_equal(a.reset(), b.reset(seed=9)[0])
    act = np.full((2, 4), 0.3, dtype=np.float32)
    np.testing.assert_array_equal(a.step(act)[0], b.step(act)[0])
    assert a.get_attr("seed") == [9, 10]


def test_terminated_is_not_a_time_limit_truncation():
    venv = make_sb3_vec_env(
        "levgym/Liquidator-v1",
        num_envs=2,
        seed=0,
        scenarios=["shock"],
        scenario_overrides={"shock": {"start_hour": 0.0, "drop_frac": 0.35}},
        initial_cash_usd=1e3,
        max_share_frac=1.0,
        horizon_h=12.0,
        num_positions=48,
    )
    venv.reset()
    greedy_hold = np.array([[1.0, -1.0, -1.0]] * 2, dtype=np.float32)
    for _ in range(72):
        _, _, dones, infos = venv.step(greedy_hold)
        if dones.any():
            break
    i = int(np.flatnonzero(dones)[0])
    assert infos[i]["end_cause"] == "bankruptcy"
    assert infos[i]["TimeLimit.truncated"] is False


def test_get_set_attr_and_env_method_reach_the_envs():
    venv = make_sb3_vec_env("levgym/Governance-v0", num_envs=3, seed=1, render_mode="ansi", **SMALL)
    venv.reset()
    assert venv.get_attr("render_mode") == ["ansi"] * 3
    scen = venv.get_attr("scenario")
    assert len(scen) == 3 and all(isinstance(s, str) for s in scen)
    conservative = ProtocolParams(ltv=0.70, liquidation_threshold=0.75, liquidation_bonus=0.075)
    venv.set_attr("protocol_params", conservative, indices=[1])
    params = venv.get_attr("protocol_params")
    assert params[1].liquidation_threshold == pytest.approx(0.75)
    assert params[0].liquidation_threshold == pytest.approx(0.86)
    venv.set_attr("w_bad_debt", 5.0)
    assert venv.get_attr("w_bad_debt") == [5.0] * 3
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("w_bad_debt", 1.0, indices=[0])
    with pytest.raises(ValueError, match="cannot be set"):
        venv.set_attr("num_envs", 7)
    with pytest.raises(ValueError, match="w_bad_debt"):
        venv.set_attr("w_bad_debt", -1.0)
    lines = venv.env_method("render", indices=[0, 2])
    assert len(lines) == 2 and "env 0" in lines[0] and "env 2" in lines[1]
    assert venv.env_method("protocol_params", 1) == [venv.get_attr("protocol_params", 1)[0]] * 3
    assert venv.env_is_wrapped(object) == [False] * 3
    with pytest.raises(ValueError, match="SAME_STEP"):
        Sb3VecEnvAdapter(GovernanceVectorEnv(2, autoreset_mode="Disabled", **SMALL))


@pytest.mark.parametrize(("env_id", "single", "vector", "horizon"), ENVS, ids=IDS)
def test_ppo_learns_through_the_adapter(env_id, single, vector, horizon):
    venv = make_sb3_vec_env(env_id, num_envs=4, seed=0, num_positions=32, horizon_h=8 * horizon)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) > 0  # episodes were seen through info["episode"]
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (4, *venv.action_space.shape)


@pytest.mark.parametrize("algo", [A2C, SAC, TD3], ids=lambda a: a.__name__)
def test_other_algorithms_train_on_the_adapter(algo):
    venv = make_sb3_vec_env(
        "levgym/Liquidator-v1", num_envs=2, seed=0, num_positions=16, horizon_h=1.0
    )
    kwargs = (
        {"n_steps": 8}
        if algo is A2C
        else {"learning_starts": 16, "batch_size": 16, "buffer_size": 256}
    )
    model = algo("MlpPolicy", venv, seed=0, device="cpu", **kwargs)
    model.learn(total_timesteps=48)
    assert model.num_timesteps >= 48
