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
