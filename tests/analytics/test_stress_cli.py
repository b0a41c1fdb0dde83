"""`levgym stress` end to end on a tiny run: JSON keys, report files, errors as one line."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from levgym.cli import main

TINY = [
    "stress",
    "--paths",
    "40",
    "--positions",
    "8",
    "--horizon-hours",
    "2",
    "--batch-size",
    "20",
    "--no-progress",
]

REQUIRED = (
    "var_95_bad_debt_usd",
    "var_99_bad_debt_usd",
    "cvar_95_bad_debt_usd",
    "cvar_99_bad_debt_usd",
    "lar_95_liquidated_usd",
    "lar_99_liquidated_usd",
    "prob_bad_debt",
)


def test_json_summary_and_report_files(tmp_path, capsys):
    out = tmp_path / "report"
    assert main([*TINY, "--json", "--out", str(out), "--seed", "4"]) == 0
    captured = capsys.readouterr()
    s = json.loads(captured.out)
    for key in REQUIRED:
        assert isinstance(s[key], float)
        assert isinstance(s[f"{key}_se"], float)
    for key in REQUIRED[:-1]:
        assert s[key.replace("_usd", "_tvl_frac")] == pytest.approx(s[key] / s["tvl_usd"])
    assert s["cvar_99_bad_debt_usd"] >= s["var_99_bad_debt_usd"]
    assert s["seed"] == 4 and s["scenario"] == "shock" and s["preset"] == "aave_v3_weth"
    assert s["command"].startswith(
        "levgym stress --preset aave_v3_weth --scenario shock --paths 40"
    )
    assert s["bad_debt_definition"] == "written_off"
    for name in (
        "summary.json",
        "paths.csv",
        "summary.md",
        "bad_debt_distribution.png",
        "liquidation_heatmap.png",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "paths.csv").open()))
    assert len(rows) == 40
    bad = sorted(float(r["bad_debt_measured_usd"]) for r in rows)
    assert s["var_95_bad_debt_usd"] == bad[37]  # ceil(40 * 0.95) = 38th smallest
    full = json.loads((out / "summary.json").read_text())
    assert len(full["heatmap"]["before_debt_usd"]) == len(full["heatmap"]["price_rel_edges"]) - 1
    assert s["command"] in (out / "summary.md").read_text()
    assert "levgym: warning" in captured.err  # fewer than 100 paths


def test_same_seed_same_numbers_and_underwater_flag(tmp_path, capsys):
    main([*TINY, "--json", "--out", str(tmp_path / "a"), "--no-plots"])
    a = json.loads(capsys.readouterr().out)
    main([*TINY, "--json", "--out", str(tmp_path / "b"), "--no-plots", "--include-underwater"])
    b = json.loads(capsys.readouterr().out)
    assert b["bad_debt_definition"] == "written_off_plus_underwater"
    assert b["mean_bad_debt_usd"] >= a["mean_bad_debt_usd"]
    assert b["lar_99_liquidated_usd"] == a["lar_99_liquidated_usd"]


def test_sweep_and_sensitivities_end_to_end(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(
        [
            *TINY,
            "--preset", "conservative",
            "--sweep", "protocol.liquidation_threshold=0.75,0.85",
            "--sensitivities",
            "--json",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert [p["params"]["protocol.liquidation_threshold"] for p in s["sweep"]["points"]] == [
        0.75,
        0.85,
    ]
    inputs = {r["input"] for r in s["sensitivities"]}
    assert {
        "price",
        "protocol.liquidation_threshold",
        "protocol.ltv",
        "protocol.liquidation_bonus",
        "protocol.close_factor",
    } <= inputs
    assert (out / "frontier.png").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sweep", "protocol.nope=0.7:0.8:3"], "unknown key protocol.nope"),
        (["--sweep", "protocol.liquidation_threshold=0.7:0.8:1"], "count=1 is out of range"),
        (["--sweep", "protocol.liquidation_threshold=a:0.8:3"], "start 'a' is not a number"),
        (["--sweep", "protocol.liquidation_threshold=0.5,0.6"], "0 valid grid point(s) of 2"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--paths", "0"], "--paths=0 is out of range"),
        (["--horizon-hours", "0.05"], "not a whole number of substeps"),
        (["--price-csv", "/nonexistent/file.csv"], "no such file; allowed a CSV file"),
        (["--set", "protocol.ltv=0.99"], "exceeds protocol.liquidation_threshold"),
    ],
)
def test_errors_are_one_line(extra, message, tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("levgym: error:")
    assert message in err[0]
    assert not (tmp_path / "x").exists()


def test_price_csv_replay(tmp_path, capsys):
    csv_file = tmp_path / "prices.csv"
    hours = np.arange(0, 5)
    lines = ["time,price"] + [f"{3600 * h},{2000 * (1 - 0.08 * h)}" for h in hours]
    csv_file.write_text("\n".join(lines) + "\n")
    args = [
        *TINY,
        "--price-csv",
        str(csv_file),
        "--json",
        "--no-plots",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["scenario"] == f"csv:{csv_file}"
    rows = list(csv.DictReader((tmp_path / "o" / "paths.csv").open()))
    # every path replays the same fall; the last of the 12 substeps is 110 min after the start,
    # log-interpolated between the file's 1 h (0.92) and 2 h (0.84) rows
    expected = math.exp(math.log(0.92) + 5 / 6 * (math.log(0.84) - math.log(0.92)))
    ends = {round(float(r["fundamental_end_over_start"]), 9) for r in rows}
    assert ends == {round(expected, 9)}
