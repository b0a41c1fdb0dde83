"""`levgym sweep` files: every key and value checked up front (one line, exit 2), the trials and
their `levgym train` commands, and the table over seeds."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from agents.sweep import load_sweep, parse_sweep, results_csv, results_document, summarize, trials
from levgym.cli import main
from levgym.configs import config_dir

GOOD = {
    "env": "levgym/Governance-v1",
    "seeds": [0, 1],
    "total_timesteps": 256,
    "grid": {"learning_rate": [0.0003, 0.001]},
    "hyper": {"n_envs": 4},
}


def test_the_shipped_sample_is_valid():
    spec = load_sweep(config_dir("sweeps") / "ppo_governance_lr.yaml")
    assert spec.seeds == (0, 1, 2) and spec.grid == {"learning_rate": [0.0003, 0.001]}
    assert len(trials(spec, "out")) == 6


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"sedes": [0]}, "unknown key 'sedes'; allowed env, algo"),
        ({"env": "levgym/Nope-v0"}, "env 'levgym/Nope-v0' is unknown; allowed"),
        ({"algo": "dqn"}, "algo 'dqn' is unknown; allowed ppo"),
        ({"seeds": [0, 0]}, "seeds=[0, 0] is not allowed; allowed a list of distinct integers"),
        ({"seeds": []}, "seeds=[] is not allowed"),
        ({"total_timesteps": 0}, "total_timesteps=0 is out of range"),
        ({"grid": {"learning_rate": 0.1}}, "grid.learning_rate=0.1 is not a list"),
        ({"grid": {"learning_rate": [0.1, 0.1]}}, "grid.learning_rate repeats a value"),
        ({"hyper": {"learning_rate": 0.1}}, "'learning_rate' is in both grid and hyper"),
        ({"metric": "reward"}, "metric 'reward' is unknown; allowed final_ep_rew_mean"),
        ({"cpus_per_trial": 0}, "cpus_per_trial=0 is out of range"),
        ({"search": {"samples": 2}}, "search.space is missing or empty"),
        (
            {"search": {"samples": 2, "space": {"gamma": {"loguniform": [0, 1]}}}},
            "search.space.gamma.loguniform=[0, 1] is not allowed; allowed [LO, HI] with 0 < LO",
        ),
        (
            {"search": {"samples": 2, "space": {"gamma": {"normal": [0, 1]}}}},
            "allowed one of uniform, loguniform, choice",
        ),
        ({"search": {"samples": 0, "space": {}}}, "search.samples=0 is out of range"),
    ],
)
def test_bad_sweep_files_name_the_key(change, needle):
    with pytest.raises(ValueError, match="sweep file") as err:
        parse_sweep({**GOOD, **change})
    assert needle in str(err.value)


def test_random_search_is_seeded_and_in_range():
    data = {
        **GOOD,
        "grid": {},
        "search": {
            "samples": 5,
            "seed": 3,
            "space": {"learning_rate": {"loguniform": [1e-5, 1e-3]}},
        },
    }
    a, b = parse_sweep(data).configurations(), parse_sweep(data).configurations()
    assert a == b and len(a) == 5
    assert all(1e-5 <= p["learning_rate"] <= 1e-3 for p in a)


def test_trials_carry_the_standalone_command(tmp_path):
    spec = parse_sweep(GOOD)
    found = trials(spec, tmp_path)
    assert [t.name for t in found] == [
        "learning_rate=0.0003__seed0",
        "learning_rate=0.0003__seed1",
        "learning_rate=0.001__seed0",
        "learning_rate=0.001__seed1",
    ]
    cmd = found[2].command()
    assert cmd.startswith("levgym train --env levgym/Governance-v1 --algo ppo --seed 0")
    assert "--hyper n_envs=4 --hyper learning_rate=0.001" in cmd
    assert f"--out {tmp_path.resolve()}/trials/learning_rate=0.001__seed0" in cmd


def test_table_is_the_mean_and_t_interval_over_seeds(tmp_path):
    spec = parse_sweep(GOOD)
    values = {0: [1.0, 3.0], 1: [2.0, 2.0]}
    records = []
    for i, t in enumerate(trials(spec, tmp_path)):
        v = values[i // 2][i % 2]
        records.append(
            {
                "trial": t.name,
                "configuration": t.configuration,
                "seed": t.seed,
                "run_dir": t.run_dir,
                "train_command": t.command(),
                "final_ep_rew_mean": v,
                "best_ep_rew_mean": v + 1,
                "trained_timesteps": 256.0,
            }
        )
    rows = summarize(records, "final_ep_rew_mean")
    assert [r["configuration"] for r in rows] == ["learning_rate=0.0003", "learning_rate=0.001"]
    assert rows[0]["final_ep_rew_mean"] == 2.0
    # t(0.975, 1) * sd / sqrt(2) with sd = sqrt(2)
    assert rows[0]["final_ep_rew_mean_ci95"] == pytest.approx(12.706204736, rel=1e-6)
    assert rows[1]["final_ep_rew_mean_ci95"] == 0.0
    doc = results_document(spec, records, "levgym sweep x.yaml", 1.0)  # keys are registered
    assert results_csv(doc).splitlines()[0].startswith("configuration,seed,final_ep_rew_mean")
    assert np.isfinite(doc["wall_time_s"])


def _write(tmp_path, data) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"sedes": [0]}, "unknown key 'sedes'"),
        ({"grid": {"learning_rate": [-1.0, 0.1]}}, "learning_rate=-1.0 is out of range"),
        ({"grid": {"n_stepz": [8, 16]}}, "n_stepz is not a hyperparameter of PPO"),
    ],
)
def test_cli_rejects_a_bad_file_in_one_line_before_starting_ray(change, needle, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", _write(tmp_path, {**GOOD, **change}), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_cli_without_ray_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["sweep", _write(tmp_path, GOOD), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'levgym[ray]'" in err[0]
