"""`levgym train` and `levgym evaluate` on levgym/CrossProtocolHedger-v0: its PPO block, its suite
entries (held-out seeds) and its evaluate metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from agents.baselines import make_baseline
from agents.evaluate import load_suite, make_eval_env, rollout
from agents.hedger_bench import evaluate_policy
from agents.train import train
from levgym import results as R
from levgym.cli import main
from levgym.scenarios import is_eval_seed

ENV = "levgym/CrossProtocolHedger-v0"
SUITE = """
name: tiny
episodes: 2
seed: 1000000
envs:
  levgym/CrossProtocolHedger-v0:
    env_kwargs: {num_positions: 8, horizon_h: 12, crash_start_h_range: [2, 4]}
    scenarios: [multiasset_2021]
"""


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return path


@pytest.mark.parametrize("name", ["default", "quick"])
def test_shipped_suites_evaluate_the_hedger_on_held_out_seeds(name):
    suite = load_suite(name=name)
    entry = suite.for_env(ENV)
    assert is_eval_seed(suite.seed) and entry.scenarios
    env = make_eval_env(ENV, entry.scenarios[0], 1, entry.env_kwargs)
    try:
        assert env.core.split == "eval"
    finally:
        env.close()


@pytest.mark.parametrize("baseline", ["hold", "threshold_rebalancer"])
def test_evaluate_rollout_equals_the_benchmark_sections_episodes(baseline):
    """The suite's rollout and agents/hedger_bench.py's evaluation are two loops over the same
    env (default settings, split eval, same seeds): the same per-episode values."""
    policy = make_baseline(baseline, ENV)
    got = rollout(policy, ENV, "multiasset_2021", 2, 1_000_000, {})["metrics"]
    ref = evaluate_policy(make_baseline(baseline, ENV), 2, 1_000_000)
    assert tuple(got) == R.METRICS[ENV]
    for key in ("return", "liquidation_loss_usd", "cost_usd", "liquidated"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=1e-9)
    # the return is the equity change less the liquidation bonus once more, in bp of equity
    equity0 = (got["equity_change_usd"] - got["liquidation_loss_usd"]) * 1e4 / got["return"]
    assert np.all(equity0 > 0)
    if baseline == "hold":
        assert np.all(got["cost_usd"] == 0.0)


def test_evaluate_a_hedger_baseline_on_the_command_line(capsys, suite_file):
    args = ["evaluate", "--baseline", "hold", "--env", ENV, "--suite", str(suite_file), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert R.problems(out, "evaluate") == []
    assert out["env_id"] == ENV and out["seed"] == 1_000_000
    metrics = out["scenarios"]["multiasset_2021"]
    assert tuple(metrics) == R.METRICS[ENV]
    assert metrics["cost_usd"]["mean"] == 0.0 and metrics["return"]["n"] == 2
    assert main(["evaluate", "--baseline", "greedy", "--env", ENV, "--suite", str(suite_file)]) == 2
    assert "allowed hold" in capsys.readouterr().err


def test_train_a_tiny_hedger_run_and_evaluate_it(capsys, tmp_path, suite_file):
    hyper = ["n_envs=2", "n_steps=32", "batch_size=32", "n_epochs=1"]
    run = train(ENV, total_timesteps=64, out=tmp_path / "run", hyper=hyper, progress=False)
    config = yaml.safe_load((run / "config.yaml").read_text())
    # the env's block of ppo.yaml: trained on the multiasset_2021 process's train seeds
    assert config["hyperparameters"]["env_kwargs"]["scenarios"] == ["multiasset_2021"]
    assert config["env_id"] == ENV
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run), "--suite", str(suite_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert R.problems(out, "evaluate") == [] and out["env_id"] == ENV
    assert tuple(out["scenarios"]["multiasset_2021"]) == R.METRICS[ENV]
