"""The cross-protocol hedger's benchmark section (agents/hedger_bench.py)."""

from __future__ import annotations

import numpy as np

from agents.baselines import make_baseline
from agents.hedger_bench import (
    HEDGER_ENV,
    METRICS,
    HedgerBenchConfig,
    evaluate_policy,
    render_section,
    run_hedger_section,
)
from levgym.results import checked


def test_evaluation_is_paired_and_deterministic():
    hold = make_baseline("hold", HEDGER_ENV)
    a = evaluate_policy(hold, 2, 1_000)
    b = evaluate_policy(hold, 2, 1_000)
    for m in METRICS:
        np.testing.assert_array_equal(a[m], b[m])
    assert np.all(a["cost_usd"] == 0.0)  # hold pays nothing


def test_section_is_in_the_output_contract_and_renders(tmp_path):
    cfg = HedgerBenchConfig(timesteps=64, episodes=2, num_envs=1)
    doc = run_hedger_section(cfg, tmp_path / "hedger")
    checked("results.json", {"cross_protocol_hedger": doc})
    assert set(doc["hedger_results"]) == {"ppo", "hold", "threshold_rebalancer", "deleverage"}
    assert (tmp_path / "hedger" / "model.zip").exists()
    md = render_section(doc)
    assert "## Cross-protocol hedger" in md and "| deleverage |" in md


def test_section_trains_through_the_benchmark_path_and_reuses_a_finished_run(tmp_path):
    """The PPO is a `levgym train` run folder (agents.benchmark.train_job: ppo.yaml's block for
    the env, the section's n_envs on top); a second call reuses the finished model."""
    import yaml

    cfg = HedgerBenchConfig(timesteps=64, episodes=1, num_envs=1)
    doc = run_hedger_section(cfg, tmp_path / "h")
    config = yaml.safe_load((tmp_path / "h" / "config.yaml").read_text())
    assert config["env_id"] == HEDGER_ENV and config["hyperparameters"]["n_envs"] == 1
    assert config["hyperparameters"]["env_kwargs"]["scenarios"] == ["multiasset_2021"]
    stamp = (tmp_path / "h" / "model.zip").stat().st_mtime_ns
    again = run_hedger_section(cfg, tmp_path / "h")
    assert (tmp_path / "h" / "model.zip").stat().st_mtime_ns == stamp
    assert again["hedger_results"]["ppo"] == doc["hedger_results"]["ppo"]
