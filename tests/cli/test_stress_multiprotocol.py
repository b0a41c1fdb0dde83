"""`levgym stress --protocols`: the JSON and report folder, registered keys, one-line errors."""

from __future__ import annotations

import json

import pytest

from levgym import results as R
from levgym.cli import main

NAMES = "aave_v3_ethereum,compound_v3_usdc,morpho_wsteth_usdc"
BASE = [
    "stress", "--protocols", NAMES, "--paths", "4", "--batch-size", "2", "--positions", "8",
    "--horizon-hours", "4", "--no-progress",
]  # fmt: skip


def test_json_report_and_registered_keys(tmp_path, capsys):
    out = tmp_path / "r"
    args = [*BASE, "--scenario", "steth_depeg", "--margin", "unified", "--out", str(out)]
    assert main([*args, "--set", "market.volatile_pool_depth_usd=5e6", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "stress") == []
    assert d["protocols"] == NAMES.split(",") and d["margin"] == "unified"
    assert set(d["bad_debt_tail_by_protocol"]) == set(d["protocols"])
    assert set(d["bad_debt_by_run"]) == {"shared_per_protocol", "shared_unified", "isolated"}
    assert d["mean_bad_debt_usd"] == d["bad_debt_by_run"]["shared_unified"]["mean_bad_debt_usd"]
    for key in ("var_95_bad_debt_usd", "cvar_99_contribution_usd_by_protocol",
                "mean_contagion_bad_debt_usd", "contagion_bad_debt_share_frac",
                "unified_minus_per_protocol"):  # fmt: skip
        assert key in d
    assert "--set market.volatile_pool_depth_usd=5e6" in d["command"]
    assert (out / "summary.json").exists() and (out / "multiprotocol_stress.png").exists()
    assert (out / "paths.npz").exists()


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--margin", "cross"], "--margin 'cross' is not allowed; allowed per_protocol, unified"),
        (["--preset", "aave_v3_weth"], "--preset aave_v3_weth is not allowed with --protocols"),
        (["--scenario", "shock"], "unknown multi-protocol scenario 'shock'"),
        (["--sensitivities"], "--sensitivities is not supported with --protocols"),
        (["--dtype", "float32"], "--dtype float32 is not supported with --protocols"),
        (["--set", "protocol.lt=0.8"], "--set protocol.lt is not supported with --protocols"),
        (["--horizon-hours", "1.5"], "horizon_hours=1.5 is out of range"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(extra, text, capsys, tmp_path):
    out = tmp_path / "never"
    assert main([*BASE, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0]
    assert not out.exists()


def test_unknown_protocol_and_margin_without_protocols(capsys):
    assert main(["stress", "--protocols", "aave_v3_ethereum,nope", "--paths", "2"]) == 2
    assert "--protocols names 'nope'" in capsys.readouterr().err
    assert main(["stress", "--margin", "unified", "--paths", "2"]) == 2
    assert "--margin needs --protocols" in capsys.readouterr().err


def test_crv_scenario_runs_in_stress_and_simulate(tmp_path, capsys):
    args = ["--protocols", "aave_v3_ethereum,compound_v3_usdc", "--scenario", "crv_pool_drain"]
    assert main(["simulate", *args, "--num-envs", "2", "--positions", "16", "--steps", "10",
                 "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == [] and "CRV" in d["reserves"]
    assert d["by_protocol"]["compound_v3_usdc"]["seized_collateral_by_asset"]["CRV"] > 0
    out = tmp_path / "s"
    assert main(["stress", *args, "--paths", "2", "--positions", "16", "--horizon-hours", "10",
                 "--no-progress", "--out", str(out), "--json"]) == 0  # fmt: skip
    s = json.loads(capsys.readouterr().out)
    assert R.problems(s, "stress") == [] and s["scenario"] == "crv_pool_drain"
    assert s["bad_debt_by_run"]["shared_per_protocol"]["mean_liquidated_usd"] > 0
