"""`levgym sweep` on a local Ray instance: 3 seeds x 2 learning rates of a very short PPO run;
its table matches the trials' run folders, a trial rerun standalone with `levgym train` gives
the same numbers, and a rerun of the sweep resumes (reads finished trials back)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import yaml

from agents.sweep import trial_metrics
from levgym.cli import main

SWEEP = {
    "env": "levgym/Governance-v1",
    "algo": "ppo",
    "total_timesteps": 512,
    "seeds": [0, 1, 2],
    "grid": {"learning_rate": [0.0003, 0.001]},
    "hyper": {
        "n_envs": 4,
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 1,
        "env_kwargs.horizon_h": 24,
        "env_kwargs.num_positions": 16,
    },
}


@pytest.mark.slow
def test_sweep_table_matches_the_standalone_runs(ray_local, tmp_path, capsys):
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "sweep"
    assert main(["sweep", str(file), "--out", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["trials"]) == 6
    for rec in doc["trials"]:  # every trial is a complete `levgym train` run folder
        for name in ("config.yaml", "command.txt", "meta.json", "model.zip", "logs"):
            assert (out / "trials" / rec["trial"] / name).exists(), (rec["trial"], name)
        got = trial_metrics(rec["run_dir"])
        assert got["final_ep_rew_mean"] == rec["final_ep_rew_mean"]
    for row in doc["configurations"]:
        mine = [
            r["final_ep_rew_mean"]
            for r in doc["trials"]
            if r["configuration"] == row["configuration"]
        ]
        assert len(mine) == 3 and row["final_ep_rew_mean"] == pytest.approx(np.mean(mine))
        assert row["final_ep_rew_mean_ci95"] is not None
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 7
    assert "tensorboard --logdir" in (out / "results.md").read_text()

    # one trial again, standalone, with the command the sweep recorded for it
    rec = doc["trials"][4]
    argv = shlex.split(rec["train_command"])[1:]
    alone = tmp_path / "alone"
    argv[argv.index("--out") + 1] = str(alone)
    assert main(argv) == 0
    again = trial_metrics(alone)
    assert again["final_ep_rew_mean"] == rec["final_ep_rew_mean"]
    assert again["best_ep_rew_mean"] == rec["best_ep_rew_mean"]

    # resuming: the finished trials are read back, the table is the same
    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out), "--no-progress"]) == 0
    doc2 = json.loads((out / "results.json").read_text())
    assert doc2["trials"] == doc["trials"]
    assert doc2["configurations"] == doc["configurations"]
