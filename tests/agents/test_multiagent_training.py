"""`levgym train --multiagent`: bad input before any work, and (slow) a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from levgym.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "levgym/Governance-v0"], "--env would be ignored"),
        (["--rounds", "0"], "--rounds"),
        (["--block-auction", "dark"], "--block-auction 'dark' is unknown"),
        (["--total-timesteps", "10"], "--total-timesteps=10"),
    ],
)
def test_bad_multiagent_input_is_one_line(capsys, tmp_path, args, message) -> None:
    code = main(["train", "--multiagent", "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_multiagent_flags_need_multiagent(capsys) -> None:
    assert main(["train", "--rounds", "2"]) == 2
    assert "--rounds is only used with --multiagent" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_alternating_best_response_run(tmp_path) -> None:
    from pathlib import Path

    from agents.multiagent import MultiAgentConfig, run_multiagent

    cfg = MultiAgentConfig(
        rounds=2, timesteps=128, num_markets=2, num_positions=16, horizon_h=6.0, eval_markets=2
    )
    out = Path(tmp_path) / "ma"
    res = run_multiagent(cfg, out, progress=False)
    assert [r["round"] for r in res["rounds"]] == [1, 2]
    for r in res["rounds"]:
        assert r["exploitability"] >= 0.0
        assert r["exploitability"] == max(r["best_response_gain_governor"], 0) + max(
            r["best_response_gain_liquidator"], 0
        )
    assert json.loads((out / "results.json").read_text())["rounds"][1]["round"] == 2
    report = (out / "report.md").read_text()
    assert "governor trained vs learning liquidators" in report and "bad debt" in report
    assert (out / "exploitability.png").stat().st_size > 0
    assert any((out / "logs").rglob("events.out.tfevents.*"))
    assert (out / "round2_governor.zip").exists()
    from agents.multiagent import multiagent_section
    from levgym.results import checked

    checked("results.json", {"multiagent": multiagent_section(res, out)})


def test_the_benchmark_section_keys_are_registered() -> None:
    from pathlib import Path

    from agents.multiagent import multiagent_section, render_report
    from levgym.results import checked, problems

    ev = {
        "governor_return": -1.0, "bad_debt_tvl_frac": 0.001, "liquidator_return": 2.0,
        "market_maker_return": 0.5, "agent_claim_share": 0.3,
        "mean_liquidation_threshold": 0.86, "mean_ltv": 0.82, "mean_liquidation_bonus": 0.05,
        "mean_slope1_apr": 0.04,
    }  # fmt: skip
    rnd = {"round": 1, "profile": ev, "best_response_gain_governor": 0.5,
           "best_response_gain_liquidator": -0.2, "exploitability": 0.5}  # fmt: skip
    res = {
        "config": {"rounds": 1, "timesteps": 64, "num_markets": 1, "num_positions": 8,
                   "num_liquidators": 2, "horizon_h": 6.0, "scenarios": ["calm"],
                   "block_auction": "private", "eval_markets": 1, "seed": 0},
        "static_governor_rule_keepers": ev, "static_governor_learning_liquidators": {**ev, "bad_debt_tvl_frac": 0.002},
        "governor_vs_rule_keepers": ev, "governor_vs_learning_liquidators": ev,
        "rounds": [rnd], "seconds": 1.0,
    }  # fmt: skip
    section = multiagent_section(res, Path("x"))
    checked("results.json", {"multiagent": section})
    assert problems({"multiagent": {"unknown_key": 1}}, "results.json")
    text = render_report(res)
    assert "bad debt rises by 0.1000% of TVL" in text
