"""`levgym train`: run folder contents, TensorBoard files, checkpoints and --resume."""

import json

import pytest
import yaml

from agents.config import apply_overrides, load_config
from agents.train import latest_checkpoint, read_progress, train
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
    for name in ("config.yaml", "command.txt", "meta.json", "model.zip", "vecnormalize.pkl"):
        assert (run / name).exists(), name
    assert list((run / "logs").rglob("events.out.tfevents.*")), "TensorBoard events"
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["git_revision"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["hyperparameters"]["n_steps"] == 32 and saved["env_id"] == "levgym/Governance-v0"
    found = latest_checkpoint(run)
    assert found is not None and found[1] == 256
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
        "levgym/Liquidator-v0",
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
