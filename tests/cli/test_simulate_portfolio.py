"""`levgym simulate --preset aave_v3_ethereum`: the multi-asset market's JSON, its per-asset
accounting, and one-line errors for what it does not take."""

from __future__ import annotations

import json

import pytest

from levgym import results as R
from levgym.cli import main

BASE = ["simulate", "--preset", "aave_v3_ethereum", "--num-envs", "2", "--positions", "64"]


def _identity_gaps(d: dict) -> list[tuple[str, float, float]]:
    out = []
    for s in d["reserves"]:
        coll = (
            d["initial_collateral_by_asset"][s]
            + d["added_collateral_by_asset"][s]
            - d["withdrawn_collateral_by_asset"][s]
            - d["seized_collateral_by_asset"][s]
            - d["final_collateral_by_asset"][s]
        )
        debt = (
            d["initial_debt_by_asset"][s]
            + d["borrowed_by_asset"][s]
            + d["interest_by_asset"][s]
            - d["repaid_by_borrowers_by_asset"][s]
            - d["repaid_by_liquidators_by_asset"][s]
            - d["bad_debt_by_asset"][s]
            - d["final_debt_by_asset"][s]
        )
        scale = 1.0 + d["initial_collateral_by_asset"][s] + d["initial_debt_by_asset"][s]
        out.append((s, coll / scale, debt / scale))
    return out


def test_json_is_registered_and_identities_hold_per_asset(capsys):
    assert main([*BASE, "--steps", "24", "--seed", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == []
    assert d["reserves"] == ["WETH", "wstETH", "WBTC", "USDC", "USDT", "DAI"]
    for _, coll, debt in _identity_gaps(d):
        assert abs(coll) < 1e-12 and abs(debt) < 1e-12
    assert d["interest_start_usd"] > 0
    assert d["initial_collateral_start_usd"] > d["initial_debt_start_usd"] > 0


def test_a_crash_liquidates_and_reports_per_asset(capsys):
    """The fitted process with jumps over a week: some liquidations (seed chosen so one happens),
    and every repaid asset is one the books owe."""
    assert main([*BASE, "--steps", "168", "--seed", "1", "--scenario", "usdt_break", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["liquidations"] > 0
    assert d["seized_collateral_by_asset"]["USDT"] == 0.0  # the books hold no USDT collateral
    for s, v in d["repaid_by_liquidators_by_asset"].items():
        assert v <= d["initial_debt_by_asset"][s] + d["interest_by_asset"][s]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--scenario", "shock"], "unknown multi-asset scenario 'shock'"),
        (["--price-csv", "x.csv"], "--price-csv 'x.csv' does not exist"),
        (["--time-column", "t"], "--time-column is not supported with --preset aave_v3_ethereum"),
        (["--allow-gaps"], "--allow-gaps has no effect without --price-csv"),
        (["--backend", "torch"], "--backend torch"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(capsys, extra, match):
    assert main([*BASE, "--steps", "2", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err


def test_cover_and_defenders_from_the_json(capsys):
    """May 2021 replayed: deficits appear; with the treasury covering each step and defensive
    borrowers, the identities hold per asset (the treasury's too) and the borrowers act."""
    from importlib import resources

    sample = str(resources.files("levgym") / "data" / "example_multiasset_hourly_2021-05-18_20.csv")
    args = [*BASE, "--steps", "40", "--price-csv", sample, "--json"]
    sets = ["--set", "market.deficit_cover=treasury_each_step"]
    sets += ["--set", "borrowers.rebalance=true"]
    assert main([*args, *sets, "--set", "borrowers.defensive_frac=0.3"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == []
    assert d["deficit_cover"] == "treasury_each_step" and d["defensive_frac"] == 0.3
    for _, coll, debt in _identity_gaps(d):
        assert abs(coll) < 1e-12 and abs(debt) < 1e-12
    for s in d["reserves"]:
        gap = (
            d["treasury_interest_by_asset"][s]
            + d["protocol_fee_by_asset"][s]
            - d["deficit_covered_by_asset"][s]
            - d["final_treasury_by_asset"][s]
        )
        assert abs(gap) <= 1e-9 * (1.0 + d["treasury_interest_by_asset"][s])
        assert d["deficit_covered_by_asset"][s] <= d["bad_debt_by_asset"][s] + 1e-12
    assert d["added_collateral_start_usd"] > 0 and d["repaid_by_borrowers_start_usd"] > 0
    assert d["withdrawn_collateral_start_usd"] > 0 and d["borrowed_start_usd"] > 0
    assert d["deficit_covered_start_usd"] > 0
    assert d["deficit_outstanding_start_usd"] == pytest.approx(
        d["bad_debt_start_usd"] - d["deficit_covered_start_usd"]
    )


@pytest.mark.parametrize(
    "item, match",
    [
        ("protocol.ltv=0.5", "--set protocol.ltv is not supported with --preset aave_v3_ethereum"),
        ("market.substep_h=2", "--set market.substep_h is not supported"),
        ("market.deficit_cover=always", "deficit_cover='always' is not allowed"),
        ("borrowers.defensive_frac=2", "defensive_frac"),
        ("borrowers.nope=1", "unknown key borrowers.nope"),
        ("borrowers.exit_rate_per_h=0.01", "--set borrowers.exit_rate_per_h is not supported"),
    ],
)
def test_set_errors_exit_2_with_one_line(capsys, item, match):
    assert main([*BASE, "--steps", "2", "--set", item]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err


def test_reserves_then_lenders_from_the_json(capsys):
    """May 2021 replayed with the single-asset engine's bad-debt accounting: the treasury of each
    reserve pays what it can, the lenders the rest, and nothing stays outstanding; the keys are
    registered and absent under the other settings."""
    from importlib import resources

    sample = str(resources.files("levgym") / "data" / "example_multiasset_hourly_2021-05-18_20.csv")
    args = [*BASE, "--steps", "40", "--price-csv", sample, "--json"]
    assert main([*args, "--set", "market.deficit_cover=reserves_then_lenders"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == []
    assert d["deficit_cover"] == "reserves_then_lenders"
    assert d["bad_debt_start_usd"] > 0 and d["lender_loss_start_usd"] > 0
    assert abs(d["deficit_outstanding_start_usd"]) <= 1e-9 * d["bad_debt_start_usd"]
    for s in d["reserves"]:
        paid = d["deficit_covered_by_asset"][s] + d["lender_loss_by_asset"][s]
        assert abs(paid - d["bad_debt_by_asset"][s]) <= 1e-9 * (1.0 + d["bad_debt_by_asset"][s])
    assert main([*args]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "lender_loss_start_usd" not in plain and "lender_loss_by_asset" not in plain
    assert plain["bad_debt_start_usd"] == d["bad_debt_start_usd"]
