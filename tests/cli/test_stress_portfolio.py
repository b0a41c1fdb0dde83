"""`levgym stress --preset aave_v3_ethereum`: the multi-asset stress's JSON and report folder,
and one-line errors for what it does not take."""

from __future__ import annotations

import json

import pytest

from levgym import results as R
from levgym.cli import main

BASE = [
    "stress", "--preset", "aave_v3_ethereum", "--paths", "8", "--batch-size", "4",
    "--positions", "16", "--horizon-hours", "6", "--no-progress",
]  # fmt: skip


def test_json_report_and_registered_keys(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*BASE, "--scenario", "steth_depeg", "--out", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "stress") == []
    for key in (
        "var_95_bad_debt_usd",
        "cvar_99_bad_debt_usd_se",
        "cvar_95_contribution_by_asset_usd",
    ):
        assert key in d
    assert set(d["cvar_99_contribution_by_asset_usd"]) == set(d["reserves"])
    assert sum(d["cvar_95_contribution_by_asset_usd"].values()) == pytest.approx(
        d["cvar_95_bad_debt_usd"], rel=1e-12, abs=1e-9
    )
    assert "WETH" in d["liquidation_heatmap_by_asset"]
    assert (out / "summary.json").exists() and (out / "portfolio_stress.png").exists()
    assert json.loads((out / "summary.json").read_text())["paths"] == 8


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--scenario", "shock"], "unknown multi-asset scenario 'shock'"),
        (["--sensitivities"], "--sensitivities is not supported with --preset aave_v3_ethereum"),
        (["--sweep", "protocol.lt=0.8:0.9:2"], "--sweep is not supported"),
        (["--include-underwater"], "--include-underwater is not supported"),
        (["--dtype", "float32"], "--dtype float32 is not supported"),
        (["--horizon-hours", "1.5"], "horizon_hours=1.5 is out of range"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(extra, text, capsys, tmp_path):
    out = tmp_path / "never"
    assert main([*BASE, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0]
    assert not out.exists()


def test_other_presets_still_refuse_multiasset_scenarios(capsys):
    assert (
        main(["stress", "--preset", "aave_v3_weth", "--scenario", "steth_depeg", "--paths", "2"])
        == 2
    )
