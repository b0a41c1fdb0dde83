"""`levgym train`: run folder contents, TensorBoard files, checkpoints and --resume (newest
valid checkpoint, statistics kept, SIGINT saves, a failed start leaves nothing in the way)."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents import train as train_module
from agents.config import apply_overrides, load_config
from agents.persist import read_stats
from agents.train import (
    TrainingInterrupted,
    checkpoint_files,
    latest_checkpoint,
    read_progress,
    train,
)
from levgym.cli import main

SMALL = [
    "n_envs=4",
    "n_steps=32",
    "batch_size=64",
    "n_epochs=1",
    "checkpoint_freq=128",
    "env_kwargs.num_positions=16",
    "env_kwargs.horizon_h=6",
]


def test_config_merges_default_env_block_and_overrides():
    cfg = load_config("levgym/Governance-v0", "ppo")
    assert cfg["policy"] == "MlpPolicy" and cfg["env_kwargs"]["horizon_h"] == 72
    cfg = apply_overrides(
        cfg, ["learning_rate=1e-3", "env_kwargs.horizon_h=12", "policy_kwargs.net_arch=[32, 32]"]
    )
    assert cfg["learning_rate"] == 1e-3 and cfg["env_kwargs"]["horizon_h"] == 12
    assert cfg["env_kwargs"]["num_positions"] == 64 and cfg["policy_kwargs"]["net_arch"] == [32, 32]
    with pytest.raises(ValueError, match=r"--algo 'dqn' is unknown; allowed ppo, sac, td3, a2c"):
        load_config("levgym/Governance-v0", "dqn")
    with pytest.raises(ValueError, match=r"--hyper 'oops' is malformed"):
        apply_overrides(cfg, ["oops"])


def test_train_writes_the_run_folder_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    run = train(
        "levgym/Governance-v0",
        "ppo",
        total_timesteps=256,
        seed=3,
        out=out,
        hyper=SMALL,
        progress=False,
        command="pytest",
    )
    for name in ("config.yaml", "command.txt", "meta.json", "model.zip", "vecnormalize.json"):
        assert (run / name).exists(), name
    assert list((run / "logs").rglob("events.out.tfevents.*")), "TensorBoard events"
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["git_revision"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["hyperparameters"]["n_steps"] == 32 and saved["env_id"] == "levgym/Governance-v0"
    found = latest_checkpoint(run)
    assert found is not None and found.steps == 256 and found.stats is not None
    rows = read_progress(run)
    assert rows and rows[-1]["time/total_timesteps"] == 256
    # an interrupted run: resume to a larger budget continues from the newest checkpoint
    train(
        "levgym/Governance-v0",
        resume=run,
        total_timesteps=512,
        progress=False,
        command="pytest resume",
    )
    assert json.loads((run / "result.json").read_text())["num_timesteps"] == 512
    assert read_progress(run)[-1]["time/total_timesteps"] == 512
    assert "pytest resume" in (run / "command.txt").read_text()


@pytest.mark.parametrize("algo", ["sac", "a2c"])
def test_other_algorithms_train(tmp_path, algo):
    hyper = [
        "n_envs=2",
        "env_kwargs.num_positions=16",
        "env_kwargs.horizon_h=6",
        "checkpoint_freq=1000",
    ]
    if algo == "sac":
        hyper += ["learning_starts=32", "batch_size=32", "buffer_size=1000"]
    run = train(
        "levgym/Liquidator-v1",
        algo,
        total_timesteps=128,
        seed=0,
        out=tmp_path / algo,
        hyper=hyper,
        progress=False,
        command="pytest",
    )
    assert (run / "model.zip").exists()


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["train", "--algo", "dqn", "--out", str(tmp_path / "x")]) == 2
    assert "--algo 'dqn' is unknown" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert main(["train", "--total-timesteps", "0"]) == 2
    assert "--total-timesteps=0 is out of range" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("env_id: levgym/Governance-v0\n")
    assert main(["train", "--resume", str(tmp_path / "half")]) == 2
    assert "config.yaml lacks algo, seed, hyperparameters" in capsys.readouterr().err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 256-step run with checkpoints at 128 and 256 steps."""
    out = tmp_path_factory.mktemp("resume") / "run"
    train(
        "levgym/Governance-v0",
        "ppo",
        total_timesteps=256,
        seed=2,
        out=out,
        hyper=SMALL,
        progress=False,
        command="pytest",
    )
    return out


@pytest.fixture
def run(finished, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(finished, dst)
    return dst


def resume(run, total, capsys):
    train("levgym/Governance-v0", resume=run, total_timesteps=total, progress=False)
    return capsys.readouterr().err


def test_truncated_newest_checkpoint_falls_back_to_the_previous(run, capsys):
    newest, _ = checkpoint_files(run, 256)
    raw = newest.read_bytes()
    newest.write_bytes(raw[: len(raw) // 2])
    err = resume(run, 384, capsys)
    assert "skipping checkpoint model_256_steps.zip" in err and "truncated or corrupt" in err
    assert "from model_128_steps.zip (128 steps)" in err
    assert json.loads((run / "result.json").read_text())["num_timesteps"] == 384


def test_corrupt_newest_checkpoint_falls_back(run, capsys):
    newest, _ = checkpoint_files(run, 256)
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped byte inside the compressed weights: the CRC catches it
    newest.write_bytes(bytes(raw))
    err = resume(run, 384, capsys)
    assert "skipping checkpoint model_256_steps.zip" in err
    assert "from model_128_steps.zip" in err


def test_missing_statistics_never_restart_them(run, capsys):
    _, stats_256 = checkpoint_files(run, 256)
    stats_256.unlink()
    point = latest_checkpoint(run)
    assert point.steps == 128
    kept = read_stats(checkpoint_files(run, 128)[1])
    assert point.stats.to_json() == kept.to_json() and kept.obs_count > 1
    err = resume(run, 384, capsys)
    assert "skipping checkpoint model_256_steps.zip: its statistics" in err
    assert "from model_128_steps.zip" in err
    # statistics continued from the checkpoint's: more samples than a fresh start would have
    final = read_stats(run / "vecnormalize.json")
    assert final.obs_count > kept.obs_count + 1


def test_resume_with_no_valid_checkpoint_says_so(run, capsys):
    for steps in (128, 256):
        checkpoint_files(run, steps)[0].write_bytes(b"")
    err = resume(run, 128, capsys)
    assert "no valid checkpoint" in err and "starting from scratch" in err


def test_sigint_saves_a_checkpoint_and_resume_continues(tmp_path, monkeypatch, capsys):
    sent = []
    on_step = train_module.ProtocolMetricsCallback._on_step

    def interrupt_at_96(self):
        if self.num_timesteps >= 96 and not sent:
            sent.append(self.num_timesteps)
            os.kill(os.getpid(), signal.SIGINT)
        return on_step(self)

    monkeypatch.setattr(train_module.ProtocolMetricsCallback, "_on_step", interrupt_at_96)
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, Python's handler otherwise
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(
            "levgym/Governance-v0",
            "ppo",
            total_timesteps=100_000,
            out=out,
            hyper=[*SMALL, "checkpoint_freq=100000"],
            progress=False,
        )
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    point = latest_checkpoint(out)
    assert point is not None and point.steps == 100 and point.stats is not None
    assert not (out / "model.zip").exists()
    monkeypatch.setattr(train_module.ProtocolMetricsCallback, "_on_step", on_step)
    capsys.readouterr()
    err = resume(out, 160, capsys)
    assert "from model_100_steps.zip (100 steps)" in err
    # PPO finishes its rollout (4 envs x 32 steps) past the budget
    assert json.loads((out / "result.json").read_text())["num_timesteps"] == 100 + 128


@pytest.mark.slow
def test_sigint_on_the_command_line(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "levgym", "train", "--out", str(out), "--no-progress"]
    cmd += ["--total-timesteps", "10000000"]
    for h in [*SMALL, "checkpoint_freq=10000000"]:
        cmd += ["--hyper", h]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        import time

        deadline = time.time() + 120
        while not list(out.glob("logs/session_0/events.*")) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    lines = [ln for ln in err.splitlines() if ln.startswith("levgym: error:")]
    assert len(lines) == 1 and "checkpoint" in lines[0] and "Traceback" not in err
    assert latest_checkpoint(out) is not None


def test_failed_start_leaves_nothing_in_the_way(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    # a bad hyperparameter fails before the folder is made
    with pytest.raises(TypeError):
        train("levgym/Governance-v0", out=out, hyper=[*SMALL, "no_such_arg=1"], progress=False)
    assert not out.exists()

    # an exception after the folder is made but before the first checkpoint removes it
    def broken_learn(self, *args, **kwargs):
        raise RuntimeError("boom before the first step")

    import stable_baselines3 as sb3

    monkeypatch.setattr(sb3.PPO, "learn", broken_learn)
    with pytest.raises(RuntimeError, match="boom"):
        train("levgym/Governance-v0", total_timesteps=64, out=out, hyper=SMALL, progress=False)
    assert not out.exists()
    monkeypatch.undo()

    # a folder left by a start killed outright (config.yaml, no checkpoint) blocks nothing
    out.mkdir()
    (out / "config.yaml").write_text("env_id: x\n")
    train("levgym/Governance-v0", total_timesteps=64, out=out, hyper=SMALL, progress=False)
    assert (out / "model.zip").exists()

    left = tmp_path / "left"
    train("levgym/Governance-v0", total_timesteps=64, out=left, hyper=SMALL, progress=False)
    shutil.rmtree(left / "checkpoints")
    (left / "model.zip").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(left), "--no-progress"]) == 0
    assert "no valid checkpoint" in capsys.readouterr().err
    assert (left / "model.zip").exists()


def test_recurrent_ppo_trains_loads_safely_and_keeps_its_memory_in_evaluation(tmp_path):
    """sb3-contrib's RecurrentPPO: the run folder, a pickle-free load equal to sb3-contrib's own
    load, and a rollout that carries the LSTM state from step to step (an episode's actions depend
    on what the policy saw before, which a stateless call would lose)."""
    import numpy as np
    from sb3_contrib import RecurrentPPO

    from agents.evaluate import load_model_policy, rollout

    run = train(
        "levgym/Governance-v1",
        "recurrent_ppo",
        total_timesteps=128,
        seed=0,
        out=tmp_path / "rppo",
        hyper=SMALL,
        progress=False,
        command="pytest",
    )
    policy = load_model_policy(run)
    assert isinstance(policy.model, RecurrentPPO)
    reference = RecurrentPPO.load(run / "model.zip", device="cpu")
    for a, b in zip(
        policy.model.policy.state_dict().values(),
        reference.policy.state_dict().values(),
        strict=True,
    ):
        assert np.array_equal(a.numpy(), b.numpy())
    obs = np.random.default_rng(0).normal(size=(3, *policy.stats.obs_mean.shape)).astype(np.float32)
    starts = np.ones(3, dtype=bool)
    first, state = policy.predict(obs, episode_start=starts)
    again, _ = policy.predict(obs, state=state, episode_start=~starts)
    fresh, _ = policy.predict(obs, state=state, episode_start=starts)
    assert np.array_equal(first, fresh) and not np.array_equal(first, again)

    calls: list[tuple[bool, bool]] = []

    class Spy:
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            calls.append((state is None, bool(np.all(episode_start))))
            return policy.predict(observation, state, episode_start, deterministic)

    env_kwargs = {"num_positions": 16, "horizon_h": 6}
    out = rollout(Spy(), "levgym/Governance-v1", "gbm_calm", 2, 1000, env_kwargs)
    assert np.isfinite(out["metrics"]["return"]).all()
    # the first call starts every episode without a state; later calls pass the state back on
    assert calls[0] == (True, True) and all(c == (False, False) for c in calls[1:])


def test_init_action_mean_starts_ppo_at_greedy_hedged_on_liquidator_v2():
    from stable_baselines3 import PPO

    from agents.baselines import make_baseline
    from agents.train import make_vec_env, set_initial_action_mean

    venv = make_vec_env("levgym/Liquidator-v2", 2, 0, {"num_positions": 16, "horizon_h": 6})
    try:
        model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0)
        obs = venv.reset()
        before, _ = model.predict(obs, deterministic=True)
        rule = make_baseline("greedy_hedged", "levgym/Liquidator-v2")
        target = rule.predict(obs, deterministic=True)[0]
        assert not np.allclose(before, target)  # an untrained PPO is not the rule
        set_initial_action_mean(model, "ppo", [1.0, -0.5, -0.25])
        inventory = rule.col["inventory"]
        for _ in range(5):
            action, _ = model.predict(obs, deterministic=True)
            want = rule.predict(obs, deterministic=True)[0]
            np.testing.assert_allclose(action[:, :2], want[:, :2])
            # the hedge is a short of (1 + a) x the inventory: with none held, any a shorts nothing
            held = obs[:, inventory] > 0
            np.testing.assert_allclose(action[held, 2], want[held, 2])
            obs, *_ = venv.step(action)
        with pytest.raises(ValueError, match="allowed a list of 3 finite numbers"):
            set_initial_action_mean(model, "ppo", [1.0, 0.0])
        with pytest.raises(ValueError, match="out of range"):
            set_initial_action_mean(model, "ppo", [2.0, 0.0, 0.0])
        with pytest.raises(ValueError, match="allowed with ppo, a2c or recurrent_ppo"):
            set_initial_action_mean(model, "sac", [1.0, 0.0, 0.0])
    finally:
        venv.close()


def test_init_action_mean_on_the_command_line_is_checked(capsys, tmp_path):
    args = ["train", "--env", "levgym/Liquidator-v2", "--out", str(tmp_path / "x")]
    assert main([*args, "--hyper", "init_action_mean=oops"]) == 2
    assert "is not a list of finite numbers" in capsys.readouterr().err
    assert main([*args, "--hyper", "init_action_mean=[1, 0]"]) == 2
    assert "allowed a list of 3 finite numbers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
