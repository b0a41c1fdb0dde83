"""`levgym benchmark --portfolio`: PortfolioGovernance-v0 joins the job only when asked."""

import json

import pytest

from agents.benchmark import PORTFOLIO_ENV, PORTFOLIO_TIMESTEPS, BenchmarkConfig, preset_config
from levgym.cli import main


def test_the_default_job_leaves_the_portfolio_env_out_and_the_option_adds_it():
    for preset in ("quick", "default"):
        cfg = preset_config(preset)
        assert PORTFOLIO_ENV not in cfg.env_ids and PORTFOLIO_ENV not in cfg.timesteps
        more = cfg.with_portfolio(preset)
        assert more.env_ids == (*cfg.env_ids, PORTFOLIO_ENV)
        assert more.timesteps[PORTFOLIO_ENV] == PORTFOLIO_TIMESTEPS[preset]
        assert {k: v for k, v in more.timesteps.items() if k != PORTFOLIO_ENV} == cfg.timesteps
    with pytest.raises(ValueError, match="with_portfolio"):
        BenchmarkConfig(suite="quick", timesteps={}, portfolio=True)


@pytest.mark.slow
def test_quick_benchmark_with_portfolio_reports_the_env(tmp_path):
    out = tmp_path / "bench"
    argv = ["benchmark", "--quick", "--portfolio", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    port = results["objective"][PORTFOLIO_ENV]
    assert {"ppo", "static", "conservative", "vol_rule", "steward", "random"} <= set(port)
    assert {c["baseline"] for c in results["comparisons"][PORTFOLIO_ENV]} == set(port) - {"ppo"}
    assert results["meta"]["config"]["portfolio"] is True
    assert f"## {PORTFOLIO_ENV}" in (out / "report.md").read_text()
