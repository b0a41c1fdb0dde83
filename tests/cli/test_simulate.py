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
