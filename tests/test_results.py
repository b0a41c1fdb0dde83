"""The output contract: every key that simulate, stress, evaluate and the benchmark emit is declared
in levgym.results with an allowed unit, and the docs' table is the registry's."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from levgym import results as R
from levgym import scenarios
from levgym.cli import main
from levgym.engine.params import EngineParams
from levgym.simulation import SUMMARY_KEYS, simulate

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_DEBT_KEYS = (
    "initial_debt_usd",
    "final_debt_usd",
    "borrowed_usd",
    "interest_usd",
    "repaid_by_borrowers_usd",
    "repaid_by_liquidators_usd",
    "bad_debt_usd",
)
SUITE = """
name: tiny
episodes: 2
seed: 1000000
envs:
  levgym/Governance-v0:
    env_kwargs: {num_positions: 16, horizon_h: 3}
    scenarios: [shock]
  levgym/Liquidator-v1:
    env_kwargs: {num_positions: 16, horizon_h: 2}
    scenarios: [shock]
"""


def test_units_descriptions_and_outputs_are_from_the_allowed_sets():
    assert len(R.REGISTRY) > 100
    for key in R.REGISTRY.values():
        assert key.unit in R.UNITS, key
        assert key.description.strip() and not set("\n|") & set(key.description), key
        assert key.outputs and set(key.outputs) <= set(R.OUTPUTS), key
        assert key.shape in R.SHAPES, key
        # a name that states a unit states the right one
        if key.name.endswith("_debt_asset"):
            assert key.unit == "debt_asset", key
        if key.name.endswith("_tvl_frac") or key.name.endswith("_tvl_frac_se"):
            assert key.unit == "tvl_frac", key
        if key.name.endswith("_by_asset"):  # per-asset dicts keyed by symbol (multi-asset)
            # amounts in asset units, or a nested record per asset (its keys state their units)
            assert key.unit in ("asset_by_symbol", "object") and key.shape == "map", key
        elif key.name.endswith("_asset") and not key.name.endswith("_debt_asset"):
            assert key.unit == "asset", key
        if re.search(r"_usd(_se)?$", key.name) and key.name not in CONTRACT_DEBT_KEYS:
            assert key.unit in ("usd", "usd_per_debt_asset"), key


def test_the_contract_debt_keys_say_they_are_in_debt_asset_units():
    for name in CONTRACT_DEBT_KEYS:
        assert name in SUMMARY_KEYS
        assert R.unit_of(name) == "debt_asset"
        assert "debt-asset units" in R.REGISTRY[name].description
        assert R.unit_of(name.replace("_usd", "_value_usd")) == "usd"


def test_checked_refuses_undeclared_and_misplaced_keys():
    with pytest.raises(ValueError, match="not in levgym.results.REGISTRY"):
        R.checked("simulate", {"scenario": "shock", "made_up_usd": 1.0})
    with pytest.raises(ValueError, match="not declared for output 'simulate'"):
        R.checked("simulate", {"var_99_bad_debt_usd": 1.0})
    # nested records and lists of records are checked too; data-keyed maps are not
    assert R.problems({"sweep": {"points": [{"nope": 1}]}}, "stress")
    assert not R.problems({"files": {"any label": "x.png"}}, "stress")
    with pytest.raises(ValueError, match="not in levgym.results"):
        R.checked_columns("paths.csv", ["path", "nope"])


def test_simulate_json_keys_are_registered(capsys):
    args = ["simulate", "--scenario", "dai_depeg", "--num-envs", "2", "--positions", "16"]
    assert main([*args, "--steps", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert R.problems(out, "simulate") == []
    assert set(SUMMARY_KEYS) <= set(out)


def test_usd_values_use_the_debt_price_of_their_substep():
    """With the debt asset at 1.1 for the first half and 0.9 after, each ``*_value_usd`` flow is
    its per-substep amounts times that substep's price, and stocks use the price of their time."""
    params = EngineParams()
    steps = 4
    sub = steps * params.run.substeps_per_step
    d = scenarios.get("shock").drivers(3, sub, params, 5, {})
    dp = np.where(np.arange(sub)[:, None] < sub // 2, 1.1, 0.9) * np.ones((1, 3))
    d = d.replace(debt_price_usd=dp)
    res = simulate(d, params, 64, 5, steps, record=False)
    pe = res.per_env
    assert pe["repaid_by_liquidators_usd"].sum() > 0  # the shock liquidates something
    for name in ("borrowed", "interest", "repaid_by_borrowers", "repaid_by_liquidators"):
        debt_units = pe[f"{name}_usd"]
        value = pe[f"{name}_value_usd"]
        # between 0.9x and 1.1x of the debt-unit amount, and not equal to it unless it is zero
        assert np.all(value <= 1.1 * debt_units + 1e-6) and np.all(value >= 0.9 * debt_units - 1e-6)
    np.testing.assert_allclose(pe["initial_debt_value_usd"], 1.1 * pe["initial_debt_usd"])
    np.testing.assert_allclose(pe["final_debt_value_usd"], 0.9 * pe["final_debt_usd"])
    np.testing.assert_allclose(pe["debt_price_end_usd"], 0.9)
    # a constant price of 1.1 gives exactly 1.1x
    d2 = d.replace(debt_price_usd=np.full_like(dp, 1.1))
    pe2 = simulate(d2, params, 64, 5, steps, record=False).per_env
    for name in ("borrowed", "interest", "repaid_by_liquidators", "bad_debt"):
        np.testing.assert_allclose(pe2[f"{name}_value_usd"], 1.1 * pe2[f"{name}_usd"], rtol=1e-12)
    np.testing.assert_allclose(
        pe2["revenue_usd"], 1.1 * pe2["reserve_income_debt_asset"] + pe2["protocol_fee_usd"]
    )


def test_stress_summary_and_paths_csv_keys_are_registered(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["stress", "--paths", "6", "--positions", "8", "--horizon-hours", "1"]
    args += ["--batch-size", "6", "--no-progress", "--no-plots", "--json", "--out", str(out)]
    args += ["--sensitivities", "--sens-paths", "3"]
    args += ["--sweep", "protocol.liquidation_bonus=0.05,0.06"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert R.problems(printed, "stress") == []
    full = json.loads((out / "summary.json").read_text())
    assert {"heatmap", "sweep", "sensitivities"} <= set(full)
    assert R.problems(full, "stress") == []
    assert {r["metric"] for r in full["sensitivities"]} <= set(R.REGISTRY)
    with open(out / "paths.csv") as fh:
        header = next(csv.reader(fh))
    assert R.problems(dict.fromkeys(header), "paths.csv") == []


@pytest.fixture(scope="module")
def tiny_evaluations(tmp_path_factory):
    from agents.baselines import make_baseline
    from agents.evaluate import evaluate, load_suite

    path = tmp_path_factory.mktemp("suite") / "suite.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    out = {}
    for env_id, name in (("levgym/Governance-v0", "static"), ("levgym/Liquidator-v1", "greedy")):
        policy = make_baseline(name, env_id, seed=0)
        out[env_id] = {name: evaluate(policy, env_id, suite, progress=False)}
    return suite, out


def test_evaluate_output_is_registered_and_names_the_env_version(tiny_evaluations):
    _, results = tiny_evaluations
    for env_id, per in results.items():
        for r in per.values():
            assert R.problems({**r, "policy": "baseline:x"}, "evaluate") == []
            assert r["env_id"] == env_id and re.search(r"-v\d+$", r["env_id"])
            for metrics in r["scenarios"].values():
                assert tuple(metrics) == R.METRICS[env_id]


def test_evaluate_cli_json_is_registered(capsys, tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    args = ["evaluate", "--baseline", "static", "--env", "levgym/Governance-v0"]
    assert main([*args, "--suite", str(path), "--json"]) == 0
    assert R.problems(json.loads(capsys.readouterr().out), "evaluate") == []


def test_benchmark_results_json_and_csv_are_registered(tiny_evaluations):
    from agents.benchmark import BenchmarkConfig, _csv, _report, benchmark_meta, results_document

    suite, results = tiny_evaluations
    cfg = BenchmarkConfig.quick()
    meta = benchmark_meta(
        cfg,
        suite,
        "levgym benchmark --quick",
        True,
        {"total_s": 1.0},
        {e: f"runs/x/{e}" for e in results},
        {e: None for e in results},
        list(results),
    )
    doc = results_document(meta, results)
    assert R.problems(json.loads(json.dumps(doc)), "results.json") == []
    assert doc["meta"]["env_ids"] == ["levgym/Governance-v0", "levgym/Liquidator-v1"]
    rows = list(csv.reader(_csv(results).splitlines()))
    assert R.problems(dict.fromkeys(rows[0]), "results.csv") == []
    metric_col = rows[0].index("metric")
    assert {r[metric_col] for r in rows[1:]} <= set(R.REGISTRY)
    # the report names the env versions it ran (ppo is what it ranks against)
    with_ppo = {e: {"ppo": next(iter(per.values())), **per} for e, per in results.items()}
    doc = results_document(meta, with_ppo)
    report = _report(meta, with_ppo, doc["objective"], doc["objective_ci95"], {})
    assert "`levgym/Governance-v0`, `levgym/Liquidator-v1`" in report


def test_docs_table_is_the_registry():
    text = (ROOT / "docs" / "output-contract.md").read_text()
    start, end = "<!-- gen:results-table -->\n", "<!-- /gen:results-table -->"
    assert start in text and end in text, "docs/output-contract.md lacks the results-table markers"
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == R.markdown_table(), (
        "docs/output-contract.md's result-key table is stale: "
        "regenerate it with `python -m levgym.docs --write`"
    )
    # the table names every declared key
    for key in R.REGISTRY:
        assert f"| `{key}`" in table
