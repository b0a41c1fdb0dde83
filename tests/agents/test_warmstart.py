"""Behaviour-cloning warm start (``init_from_baseline``): its checks, the returns it fits the
critic to, and that it moves the policy to the rule."""

import numpy as np
import pytest

from agents.config import RUN_KEYS
from agents.warmstart import DEFAULTS, behaviour_clone, check_spec, discounted_returns
from levgym.cli import main
from levgym.cli.train import RUN_CHECKS

ENV = "levgym/Governance-v1"


def test_every_run_key_has_a_check():
    assert set(RUN_KEYS) <= set(RUN_CHECKS)


def test_spec_defaults_and_errors():
    assert check_spec("vol_rule", ENV, "ppo") == {"name": "vol_rule", **DEFAULTS}
    assert check_spec({"name": "steward", "steps": 64}, ENV, "a2c")["steps"] == 64
    assert check_spec("vol_steep", ENV, "ppo")["name"] == "vol_steep"  # a clone target only
    cases = [
        ("vol_rule", "sac", "allowed with ppo or a2c, not 'sac'"),
        ({"steps": 5}, "ppo", "allowed a baseline name or a mapping"),
        ({"name": "vol_rule", "speed": 1}, "ppo", "init_from_baseline.speed is unknown"),
        ({"name": "greedy"}, "ppo", "init_from_baseline.name='greedy' is unknown for"),
        ("vol_steep", "ppo", "vol_steep' is unknown for levgym/Governance-v0", "v0"),
        ({"name": "vol_rule", "steps": 0}, "ppo", "init_from_baseline.steps=0 is out of range"),
        ({"name": "vol_rule", "learning_rate": -1}, "ppo", "learning_rate=-1 is out of range"),
    ]
    for spec, algo, msg, *v0 in cases:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            check_spec(spec, "levgym/Governance-v0" if v0 else ENV, algo)


def test_discounted_returns_by_hand():
    rew = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    done = np.array([[False, True], [True, False], [False, False]])
    ret, known = discounted_returns(rew, done, 0.5)
    # env 0: episode ends at t=1 -> G1 = 2, G0 = 1 + 0.5 * 2; t=2 starts an unfinished episode
    np.testing.assert_allclose(ret[:2, 0], [2.0, 2.0])
    np.testing.assert_array_equal(known[:, 0], [True, True, False])
    # env 1: ends at t=0 (G = 1); t=1.. never end
    assert ret[0, 1] == 1.0
    np.testing.assert_array_equal(known[:, 1], [True, False, False])


def test_cloning_moves_the_policy_to_the_rule():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.train import make_vec_env

    venv = VecNormalize(make_vec_env(ENV, 4, 0, {"num_positions": 16, "horizon_h": 24}))
    try:
        model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0)
        spec = check_spec({"name": "vol_rule", "steps": 1024, "epochs": 30}, ENV, "ppo")
        out = behaviour_clone(model, venv, ENV, spec, seed=0)
        assert out["steps"] == 1024
        assert out["action_mse_after"] < 0.5 * out["action_mse_before"]
    finally:
        venv.close()


def test_dagger_rounds_label_the_clones_own_states():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.baselines import make_baseline
    from agents.train import make_vec_env
    from agents.warmstart import rollout

    venv = VecNormalize(make_vec_env(ENV, 4, 0, {"num_positions": 16, "horizon_h": 24}))
    try:
        model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0)
        rule = make_baseline("vol_steep", ENV)
        # played by the (untrained) policy, labelled by the rule: the labels are the rule's
        # actions on the raw observations the policy's play led to
        data = rollout(venv, rule, 64, actor=model)
        assert data["act"].shape == (16, 4, 10)
        played = rollout(venv, rule, 64)
        assert not np.allclose(data["obs"][-1], played["obs"][-1])  # other states than the rule's
        spec = check_spec(
            {"name": "vol_steep", "steps": 512, "epochs": 10, "dagger_rounds": 1}, ENV, "ppo"
        )
        out = behaviour_clone(model, venv, ENV, spec, seed=0)
        assert out["steps"] == 1024  # the rule's 512 steps and the clone's 512
        assert out["action_mse_after"] < 0.5 * out["action_mse_before"]
    finally:
        venv.close()
    with pytest.raises(
        ValueError, match="dagger_rounds=-1 is out of range; allowed an integer >= 0"
    ):
        check_spec({"name": "vol_rule", "dagger_rounds": -1}, ENV, "ppo")


def test_command_line_checks_before_anything_starts(capsys, tmp_path):
    args = ["train", "--env", ENV, "--out", str(tmp_path / "x")]
    assert main([*args, "--hyper", "init_from_baseline=[1, 2]"]) == 2
    assert "is not a baseline name or a mapping" in capsys.readouterr().err
    assert main([*args, "--hyper", "init_from_baseline=nobody"]) == 2
    assert "init_from_baseline.name='nobody' is unknown" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
