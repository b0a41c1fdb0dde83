"""The protocol/, cascade/ and liquidator/ curves reach TensorBoard and progress.csv."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from agents.callbacks import GROUPS, ProtocolMetricsCallback, step_means
from agents.train import make_vec_env

SMALL = {"num_positions": 16, "horizon_h": 6}
GROUPS_BY_ENV = {
    "levgym/Governance-v0": ("protocol", "cascade"),
    "levgym/Governance-v1": ("protocol", "cascade", "steward"),
    "levgym/Liquidator-v1": ("liquidator",),
}


def _step_info(env_id: str) -> dict:
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **SMALL)
    venv.reset(seed=0)
    _, _, _, _, info = venv.step(np.zeros((2, *venv.single_action_space.shape), np.float32))
    return info


@pytest.mark.parametrize("env_id", list(GROUPS_BY_ENV))
def test_every_logged_key_is_in_the_envs_step_info(env_id):
    info = _step_info(env_id)
    for group in GROUPS_BY_ENV[env_id]:
        missing = [k for k in GROUPS[group] if k not in info]
        assert not missing, f"{group}/ keys the env's info lacks: {missing}"


def test_step_means_average_envs_and_skip_non_finite_and_non_numeric():
    info = {
        "bad_debt_usd": np.array([1.0, 3.0, np.nan]),
        "ltv": np.array([0.8, 0.7]),
        "equity_usd": np.array(["a", "b"], dtype=object),
        "unrelated": np.array([5.0]),
    }
    assert step_means(info) == {"protocol/bad_debt_usd": 2.0, "protocol/ltv": pytest.approx(0.75)}


def _tags_in_events(log_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for file in log_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(file))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


@pytest.mark.parametrize("env_id", list(GROUPS_BY_ENV))
def test_tiny_learn_logs_the_groups_to_tensorboard_and_csv(tmp_path, env_id):
    # the same stack as agents.train: adapter, VecMonitor, VecNormalize
    venv = VecNormalize(make_vec_env(env_id, 2, 0, SMALL))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(128, callback=ProtocolMetricsCallback())
    with open(tmp_path / "progress.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    events = _tags_in_events(tmp_path)
    for group in GROUPS_BY_ENV[env_id]:
        for key in GROUPS[group]:
            tag = f"{group}/{key}"
            assert tag in rows[-1] and rows[-1][tag] != "", tag
            assert np.isfinite(float(rows[-1][tag])), tag
            assert tag in events, tag
    other = {g for g in GROUPS if g not in GROUPS_BY_ENV[env_id]}
    assert not [t for t in events if t.split("/")[0] in other]


def test_per_env_infos_are_logged_without_the_adapter(tmp_path):
    venv = DummyVecEnv([lambda: gym.make("levgym/Liquidator-v1", **SMALL)])
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(32, callback=ProtocolMetricsCallback())
    with open(tmp_path / "progress.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert {f"liquidator/{k}" for k in GROUPS["liquidator"]} <= set(header)
