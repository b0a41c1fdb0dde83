"""`levgym simulate`: the JSON contract, the accounting identities from its numbers, backends, errors."""

import json

import pytest

from levgym.cli import main
from levgym.simulation import SUMMARY_KEYS

ARGS = [
    "simulate",
    "--scenario",
    "shock",
    "--set",
    "scenario.drop_frac=0.4",
    "--num-envs",
    "4",
    "--positions",
    "64",
    "--steps",
    "12",
    "--seed",
    "1",
    "--json",
]


def _run_json(capsys, args):
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract_and_identities(capsys):
    out = _run_json(capsys, ARGS)
    for key in SUMMARY_KEYS:
        assert key in out, key
    coll = (
        out["initial_collateral_asset"]
        + out["added_collateral_asset"]
        - out["seized_collateral_asset"]
        - out["withdrawn_collateral_asset"]
    )
    assert coll == pytest.approx(out["final_collateral_asset"], rel=1e-9)
    debt = (
        out["initial_debt_usd"]
        + out["borrowed_usd"]
        + out["interest_usd"]
        - out["repaid_by_borrowers_usd"]
        - out["repaid_by_liquidators_usd"]
        - out["bad_debt_usd"]
    )
    assert debt == pytest.approx(out["final_debt_usd"], rel=1e-9)
    assert out["liquidations"] > 0
    assert out["fundamental_min_over_start"] < 0.61


def test_torch_backend_agrees(capsys):
    pytest.importorskip("torch")
    a = _run_json(capsys, ARGS)
    b = _run_json(capsys, ARGS + ["--backend", "torch"])
    for key in SUMMARY_KEYS:
        if isinstance(a[key], float):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key


def test_plot_is_written(tmp_path, capsys):
    path = tmp_path / "sim.png"
    assert main(ARGS[:-1] + ["--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "protocol.ltv=0.95"],
            "protocol.ltv=0.95 exceeds protocol.liquidation_threshold=0.86",
        ),
        (
            ["--set", "protocol.liquidation_bonus=0.2"],
            "liquidation_threshold * (1 + liquidation_bonus)",
        ),
        (["--set", "market.pool_depth_usd=-5"], "market.pool_depth_usd=-5 is out of range"),
        (["--set", "protocol.nope=1"], "unknown key protocol.nope"),
        (["--set", "scenario.nope=1"], "unknown key scenario.nope"),
        (["--set", "scenario.drop_frac=1.5"], "scenario.drop_frac=1.5 is out of range"),
        (["--set", "bogus"], "--set 'bogus' is malformed"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--num-envs", "0"], "--num-envs=0 is out of range"),
    ],
)
def test_errors_are_one_line(capsys, extra, message):
    args = ["simulate", "--steps", "2", "--positions", "8", "--num-envs", "1"] + extra
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("levgym ")


NO_ARRIVALS = ["--set", "borrowers.arrival_rate_per_h=0", "--set", "borrowers.exit_rate_per_h=0"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--preset", "aave_v3_weth", "--backend", "numba"],
        ["--preset", "aave_v2_weth", "--warmup-h", "6", "--steps", "3"],
        ["--preset", "conservative", "--scenario", "liquidity_drought"],
    ],
    ids=["aave_v3_weth-numba", "aave_v2_weth-warmup", "conservative-drought"],
)
def test_engine_portfolio_equals_the_single_engine(capsys, extra):
    """``--engine portfolio``: the same run through the asset-axis step (K = 1), the same JSON
    keys and values to 1e-12."""
    args = ARGS[:-1] + NO_ARRIVALS + extra + ["--json"]
    single = _run_json(capsys, args)
    k1 = _run_json(capsys, args + ["--engine", "portfolio"])
    assert k1.keys() == single.keys()
    for key, v in single.items():
        if isinstance(v, float):
            assert k1[key] == pytest.approx(v, rel=1e-12, abs=1e-12 * max(abs(v), 1.0)), key
        else:
            assert k1[key] == v, key
    assert single["liquidations"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "borrowers.arrival_rate_per_h=0.01 is not yet supported by the asset-axis step"),
        (NO_ARRIVALS + ["--backend", "torch"], "--backend torch --dtype float64 is not supported"),
        (NO_ARRIVALS + ["--dtype", "float32"], "--backend numpy --dtype float32 is not supported"),
        (["--preset", "aave_v3_ethereum"], "--engine portfolio is not allowed with --preset"),
    ],
)
def test_engine_portfolio_refuses_in_one_line(capsys, extra, message):
    """Settings the asset-axis step does not take yet: exit 2, one line naming them."""
    assert main(ARGS + extra + ["--engine", "portfolio"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
