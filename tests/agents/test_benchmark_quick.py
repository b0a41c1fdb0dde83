"""`levgym benchmark --quick` end to end into a temporary folder."""

import csv
import json
from pathlib import Path

import pytest

from levgym import naming
from levgym.cli import main


@pytest.mark.slow
def test_quick_benchmark_writes_the_report(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["benchmark", "--quick", "--out", str(out), "--no-progress"]) == 0
    for name in (
        "report.md",
        "results.json",
        "results.csv",
        "parameter_paths.png",
        "bad_debt_revenue.png",
        "learning_curves.png",
    ):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    gov = results["objective"]["levgym/Governance-v1"]  # the default governance env
    assert {
        "ppo",
        "static",
        "conservative",
        "vol_rule",
        "steward",
        "pid",
        "chaos_caps",
        "toxic_spiral",
        "random",
    } <= set(gov)
    # paired comparisons of ppo with every other policy, Holm-corrected; the ceiling and the gap
    comps = results["comparisons"]["levgym/Governance-v1"]
    assert {c["baseline"] for c in comps} == set(gov) - {"ppo"}
    assert all(c["p_holm"] >= c["p_value"] and c["n"] == 6 for c in comps)
    ceiling = results["ceiling"]["levgym/Governance-v1"]
    assert ceiling["ceiling_objective"] >= gov["static"] - 1e-9
    assert results["gap_closed"]["levgym/Governance-v1"]["static"]["share"] in (0.0, None)
    assert "Hindsight ceiling" in (out / "report.md").read_text()
    assert {"ppo", "greedy", "greedy_hedged", "passive"} <= set(
        results["objective"]["levgym/Liquidator-v2"]
    )
    ma = results["multiagent"]  # the multi-agent section, short on --quick
    assert set(ma["profiles"]) == {
        "static_governor_rule_keepers",
        "static_governor_learning_liquidators",
        "governor_vs_rule_keepers",
        "governor_vs_learning_liquidators",
    }
    assert [r["round"] for r in ma["exploitability_rounds"]] == [1]
    assert "Multi-agent: alternating best response" in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    assert "How this was produced" in report and "benchmark --quick" in report
    assert ("beats every baseline" in report) or ("does not beat every baseline" in report)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert rows and {r["policy"] for r in rows} >= {"ppo", "static"}
    assert list((out / "train").rglob("events.out.tfevents.*"))
    # units, plain numbers and one TensorBoard command for both runs
    assert "bp of TVL" in report and "bp of initial capital" in report
    assert "e+0" not in report and "e-0" not in report
    assert f"tensorboard --logdir {out / 'train'}" in report
    # the command ends with the summary: tables, verdicts, models, what to run next
    printed = capsys.readouterr().out
    headers = [
        ln for ln in printed.splitlines() if ln.split()[:3] == ["rank", "policy", "objective"]
    ]
    assert len(headers) == 2 and printed.count("The trained PPO agent") == 2
    gov_run = naming.run_name(naming.env_part("levgym/Governance-v1"), "ppo", 0, time=False)
    assert f"model: {out / 'train' / gov_run / 'model.zip'}" in printed
    # the liquidator: issue 14's procedure, two runs per seed and the checkpoint selected
    target = results["liquidator_target"]
    chosen = target["by_seed"]["0"]["selected"]
    liq_runs = {
        str(
            out / "train" / naming.run_name("levgym-Liquidator-v2", "ppo", 0, f"ra{ra}", time=False)
        )
        for ra in (30, 100)
    }
    assert chosen["run"] in liq_runs and all(Path(r, "model.zip").is_file() for r in liq_runs)
    assert results["meta"]["models"]["levgym/Liquidator-v2"] == chosen["model_path"]
    assert Path(chosen["model_path"]).is_file() and target["target_met_by_seed"].keys() == {"0"}
    assert "Issue 14's liquidator target" in printed and "Issue 14's liquidator target" in report
    assert f"model: {chosen['model_path']}" in printed
    assert f"levgym evaluate --model {chosen['model_path']}" in printed
