"""The per-role SB3 VecEnv: shapes, same-step reset, re-entry of bankrupt liquidators, frozen
policies for the other roles."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from levgym.envs.governance import project_params  # noqa: E402
from levgym.multiagent import MultiAgentMarkets  # noqa: E402
from levgym.multiagent.sb3 import RoleVecEnv  # noqa: E402

SMALL = dict(num_positions=16, horizon_h=6.0, scenarios=["shock", "calm"])


@pytest.mark.parametrize(
    ("role", "n", "obs_dim", "act_dim"),
    [("governor", 2, 28, 4), ("liquidator", 6, 21, 4), ("market_maker", 2, 22, 2)],
)
def test_role_vec_env_steps_and_resets(role: str, n: int, obs_dim: int, act_dim: int) -> None:
    venv = RoleVecEnv(role, 2, seed=4, **SMALL)
    assert venv.num_envs == n and venv.action_space.shape == (act_dim,)
    obs = venv.reset()
    assert obs.shape == (n, obs_dim)
    rng = np.random.default_rng(0)
    saw_done = False
    for _ in range(8):
        obs, rew, dones, infos = venv.step(rng.uniform(-1, 1, (n, act_dim)))
        assert obs.shape == (n, obs_dim) and rew.shape == (n,) and dones.shape == (n,)
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rew))
        for k in np.flatnonzero(dones):
            saw_done = True
            assert infos[k]["terminal_observation"].shape == (obs_dim,)
            assert "episode" in infos[k]
    assert saw_done  # the 6 h horizon ends every market within 8 steps


def test_bankrupt_liquidators_are_replaced_by_new_entrants() -> None:
    mk = MultiAgentMarkets(
        2, num_liquidators=2, block_auction="public", initial_cash_usd=1.0, num_positions=32,
        horizon_h=24.0, scenarios="shock",
    )  # fmt: skip
    venv = RoleVecEnv("liquidator", markets=mk, seed=0)
    venv.reset()
    # slot 0 of each market bids top, slot 1 the lowest: slot 1 loses and pays its gas
    a = np.tile(np.array([[1.0, -1.0, -1.0, 1.0], [1.0, -1.0, -1.0, -1.0]]), (2, 1))
    replaced = False
    for _ in range(24):
        _, _, dones, infos = venv.step(a)
        market_over = mk.market_done.any()
        for k in np.flatnonzero(dones):
            if not infos[k]["TimeLimit.truncated"] and k % 2 == 1:
                replaced = True
                assert mk.alive.reshape(-1)[k]  # a new entrant holds the slot
                assert mk.liq[0].reshape(-1)[k] == 1.0  # with fresh cash
        if replaced or market_over:
            break
    assert replaced


def test_other_roles_follow_frozen_models() -> None:
    from stable_baselines3 import PPO

    gov_env = RoleVecEnv("governor", 2, seed=1, **SMALL)
    frozen = PPO("MlpPolicy", gov_env, n_steps=8, batch_size=8, seed=0, device="cpu")
    venv = RoleVecEnv("liquidator", 2, policies={"governor": frozen}, seed=1, **SMALL)
    venv.reset()
    gov_obs = venv.markets.observations()["governor"]
    f = venv.markets.core.field
    names = ("ltv", "liquidation_threshold", "liquidation_bonus", "slope1_apr", "slope2_apr")
    before = [f(k).copy() for k in names]
    want, _ = frozen.predict(gov_obs, deterministic=True)
    expected = project_params(*before, np.clip(want.astype(float), -1, 1), venv.markets.gov.limits)
    venv.step(np.zeros((6, 4)))
    for k in names:
        np.testing.assert_allclose(venv.step_info["governor"][k], expected[k], rtol=1e-12)
    # a function of the observations works too: +1 on LT raises it
    up = RoleVecEnv(
        "market_maker", 2, policies={"governor": lambda o: np.ones((len(o), 4))}, seed=1, **SMALL
    )
    up.reset()
    base = up.markets.core.field("liquidation_threshold").copy()
    up.step(np.zeros((2, 2)))
    assert np.all(up.step_info["governor"]["liquidation_threshold"] > base)
    with pytest.raises(ValueError, match="rule"):
        RoleVecEnv("governor", 1, policies={"liquidator": "lazy"}, **SMALL)
    with pytest.raises(ValueError, match="role"):
        RoleVecEnv("keeper", 1, **SMALL)


def test_ppo_learns_a_few_steps_on_a_role() -> None:
    from stable_baselines3 import PPO

    venv = RoleVecEnv("market_maker", 2, seed=2, **SMALL)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(16)
    assert model.num_timesteps >= 16
