"""`--price-csv` with the multi-asset preset: the file's assets are replayed exactly on every path,
the others simulated conditionally on them, and every bad file or run is one line, exit 2."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from levgym import results as R
from levgym.cli import main
from levgym.scenarios import multiasset as MA
from levgym.simulation_portfolio import build_market

SAMPLE = str(resources.files("levgym") / "data" / "example_multiasset_hourly_2021-05-18_20.csv")
BASE = ["simulate", "--preset", "aave_v3_ethereum", "--num-envs", "2", "--positions", "32"]


def test_sample_replays_exactly_and_the_rest_is_conditional():
    table = MA.read_multiasset_csv(SAMPLE)
    assert table.symbols == ("WETH", "WBTC", "USDC")
    steps = 48
    state, f, reserves = build_market(None, 4, 16, steps, 0, price_table=table)
    grid = table.times_s[0] + 3600.0 * np.arange(steps + 1)
    for sym in table.symbols:
        want = np.exp(np.interp(grid, table.times_s, np.log(table.prices_usd[:, table.symbols.index(sym)])))  # fmt: skip
        got = f[:, :, reserves.index(sym)]
        np.testing.assert_allclose(got, np.broadcast_to(want[:, None], got.shape), rtol=1e-12)
    # simulated assets differ across paths but follow the replayed ETH: stETH/ETH stays near 1
    # (no invented depeg) although ETH fell about 30% in the window
    wst = f[:, :, reserves.index("wstETH")] / f[:, :, reserves.index("WETH")] / 1.21
    assert np.ptp(wst[-1]) > 0
    assert np.all(np.abs(wst - 1.0) < 0.05)
    usdt = f[:, :, reserves.index("USDT")]
    assert np.all(np.abs(usdt - 1.0) < 0.05)


def test_simulate_json_with_the_sample(capsys):
    assert main([*BASE, "--steps", "48", "--price-csv", SAMPLE, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == []
    assert d["replayed"] == ["WETH", "WBTC", "USDC"]
    assert d["scenario"].startswith("multiasset_2021+csv:")
    assert d["liquidations"] > 0  # 2021-05-19 in the window


def test_stress_json_with_the_sample(tmp_path, capsys):
    args = [
        "stress", "--preset", "aave_v3_ethereum", "--paths", "4", "--batch-size", "2",
        "--positions", "16", "--horizon-hours", "40", "--no-progress", "--no-plots",
        "--price-csv", SAMPLE, "--scenario", "steth_depeg", "--out", str(tmp_path / "r"), "--json",
        "--set", "market.deficit_cover=treasury_each_step", "--set", "borrowers.defensive_frac=0.5",
    ]  # fmt: skip
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "stress") == []
    assert d["replayed"] == ["WETH", "WBTC", "USDC"]
    assert "--price-csv" in d["command"] and "borrowers.defensive_frac=0.5" in d["command"]
    assert d["deficit_cover"] == "treasury_each_step" and d["defensive_frac"] == 0.5
    assert d["mean_deficit_covered_usd"] >= 0


def _write(tmp_path, text: str) -> str:
    p = tmp_path / "p.csv"
    p.write_text(text)
    return str(p)


ROWS = "".join(f"2021-05-18T{h:02d}:00:00Z,{3000 + h},{40000 + h}\n" for h in range(6))


@pytest.mark.parametrize(
    "text, extra, match",
    [
        ("timestamp,WETH,XYZ\n" + ROWS, [], "unknown symbol column 'XYZ'"),
        ("timestamp,WETH,wstETH\n" + ROWS, [], "wstETH is priced as stETH times"),
        (
            "timestamp,WETH,WBTC\n" + ROWS + "2021-05-18T06:00:00Z,abc,1\n",
            [],
            "line 8: WETH price 'abc' is not a number",
        ),  # fmt: skip
        (
            "timestamp,WETH,WBTC\n" + ROWS + "2021-05-18T06:00:00Z,-1,1\n",
            [],
            "line 8: WETH price -1 is not allowed",
        ),  # fmt: skip
        (
            "timestamp,WETH,WBTC\n2021-05-18T00:00:00Z,1,2\n",
            [],
            "1 data row(s); allowed at least 2",
        ),
        ("timestamp,WETH,WBTC\n" + ROWS, ["--steps", "9"], "covers 6 hourly row(s)"),
        (
            "timestamp,WETH,WBTC,USDC\n" + ROWS.replace("\n", ",1\n"),
            ["--steps", "2", "--scenario", "usdc_depeg"],
            "--scenario usdc_depeg moves USDC",
        ),  # fmt: skip
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, text, extra, match):
    path = _write(tmp_path, text)
    assert main([*BASE, "--price-csv", path, *(extra or ["--steps", "2"])]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
