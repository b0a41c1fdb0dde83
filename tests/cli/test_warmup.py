"""`run.warmup_h` / `--warmup-h`: the book lives through the hours before t = 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from levgym.cli import main
from levgym.scenarios.csv_replay import read_price_csv

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "levgym" / "data" / "example_eth_hourly_2021-05-19.csv"
)
BASE = ["simulate", "--num-envs", "2", "--positions", "32", "--json", "--seed", "3"]


def _run(capsys, args):
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_csv_warmup_starts_the_run_after_the_files_earlier_rows(capsys):
    out = _run(capsys, BASE + ["--price-csv", str(EXAMPLE), "--steps", "6", "--warmup-h", "4"])
    _, prices = read_price_csv(EXAMPLE)
    # the run's start is the row 4 hours after the first; its minimum is over the run only
    lo = prices[4:11].min() / prices[4]
    assert out["fundamental_min_over_start"] == pytest.approx(lo, rel=1e-9)


def test_warmed_run_keeps_the_identities_from_t0(capsys):
    for extra in (["--scenario", "shock"], ["--price-csv", str(EXAMPLE)]):
        out = _run(capsys, BASE + extra + ["--steps", "6", "--warmup-h", "12"])
        coll = (
            out["initial_collateral_asset"] + out["added_collateral_asset"]
            - out["seized_collateral_asset"] - out["withdrawn_collateral_asset"]
        )  # fmt: skip
        assert coll == pytest.approx(out["final_collateral_asset"], rel=1e-9)
        debt = (
            out["initial_debt_usd"] + out["borrowed_usd"] + out["interest_usd"]
            - out["repaid_by_borrowers_usd"] - out["repaid_by_liquidators_usd"]
            - out["bad_debt_usd"]
        )  # fmt: skip
        assert debt == pytest.approx(out["final_debt_usd"], rel=1e-9)


def test_warmup_changes_the_book_and_zero_is_the_old_run(capsys):
    args = BASE + ["--scenario", "shock", "--steps", "4"]
    cold = _run(capsys, args)
    zero = _run(capsys, args + ["--warmup-h", "0"])
    warm = _run(capsys, args + ["--warmup-h", "48"])
    assert zero == cold
    assert warm["initial_debt_usd"] != cold["initial_debt_usd"]
    # the calm burn-in returns each env's price to where the scenario starts
    assert warm["fundamental_min_over_start"] == pytest.approx(cold["fundamental_min_over_start"])


def test_calm_bridge_ends_at_the_start_price():
    from levgym.engine.params import EngineParams
    from levgym.simulation import calm_bridge

    d = calm_bridge(np.array([2000.0, 3000.0]), EngineParams(), 24.0, 0)
    assert d.fundamental_usd.shape == (145, 2)
    np.testing.assert_allclose(d.fundamental_usd[0], [2000.0, 3000.0])
    np.testing.assert_allclose(d.fundamental_usd[-1], [2000.0, 3000.0])
    assert np.all(d.fundamental_usd.std(axis=0) > 0)


@pytest.mark.parametrize("value", ["-1", "1e9", "nan"])
def test_bad_warmup(capsys, value):
    rc = main(["simulate", "--steps", "1", f"--warmup-h={value}"])
    assert rc == 2
    assert "--warmup-h" in capsys.readouterr().err


def test_stress_takes_a_book_and_a_warmup(tmp_path, capsys):
    book = Path(__file__).resolve().parents[2] / "levgym" / "data" / "example_book.csv"
    args = ["stress", "--paths", "4", "--positions", "8", "--no-progress", "--json",
            "--book-csv", str(book), "--warmup-h", "6", "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert "--book-csv" in out["command"] and "--warmup-h 6" in out["command"]
    assert out["positions"] == 10  # the book's rows


def test_a_csv_too_short_for_its_warmup_says_so(capsys):
    rc = main(
        ["simulate", "--preset", "aave_v2_weth", "--price-csv", str(EXAMPLE), "--steps", "12"]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "too short for a warm-up of 336 h" in err and "allowed --warmup-h 0" in err


def test_aave_v2_weth_replays_take_the_drawdown_response(capsys):
    """The preset's run.arrival_drawdown (8): fewer arrivals while a replayed CSV sits under its
    own trailing peak (May 19, 2021); 0 restores the rate; a scenario ignores it."""
    args = BASE + ["--preset", "aave_v2_weth", "--price-csv", str(EXAMPLE), "--steps", "18",
                   "--positions", "256", "--num-envs", "4",
                   "--warmup-h", "4"]  # fmt: skip
    thin = _run(capsys, args)
    plain = _run(capsys, args + ["--set", "run.arrival_drawdown=0"])
    assert thin["arrivals"] < 0.5 * plain["arrivals"]
    assert thin["borrowed_usd"] < plain["borrowed_usd"]
    synth = BASE + ["--preset", "aave_v2_weth", "--scenario", "shock", "--steps", "4",
                    "--warmup-h", "4"]  # fmt: skip
    assert _run(capsys, synth) == _run(capsys, synth + ["--set", "run.arrival_drawdown=0"])
