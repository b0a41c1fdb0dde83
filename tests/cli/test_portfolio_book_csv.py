"""`--book-csv` with the multi-asset preset: the sample book, the rules a row must meet (one line
naming the line and column, exit 2) and the book in simulate and stress."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from levgym import results as R
from levgym.cli import main
from levgym.engine.aave_v3_ethereum import DEFAULT_SYMBOLS, aave_v3_ethereum_reserves
from levgym.engine.portfolio import account_data
from levgym.scenarios.portfolio_book_csv import (
    book_arrays,
    check_book,
    read_portfolio_book_csv,
)
from levgym.simulation_portfolio import start_oracle

RES = aave_v3_ethereum_reserves()
SAMPLE = str(resources.files("levgym") / "data" / "example_portfolio_book.csv")
SAMPLE_PRICES = str(
    resources.files("levgym") / "data" / "example_multiasset_hourly_2021-05-18_20.csv"
)
BASE = ["simulate", "--preset", "aave_v3_ethereum", "--num-envs", "2", "--positions", "4"]


def test_sample_book_reads_and_starts_healthy():
    book = read_portfolio_book_csv(SAMPLE, RES)
    assert book.rows == 10
    w, weth, usdc = RES.index("wstETH"), RES.index("WETH"), RES.index("USDC")
    assert book.supply[1, w] == 800 and book.debt[1, weth] == 850
    assert book.emode_row[1] == RES.emode_row(8) and book.emode_row[3] == RES.emode_row(1)
    assert book.supply[6, usdc] == 2_000_000 and book.debt[6, weth] == 300
    assert list(book.behaviour[:4]) == [0, 0, 2, 1]
    oracle = start_oracle(None)
    check_book(book, RES, oracle)
    acct = account_data(book.supply, book.debt, oracle, RES, book.emode_row)
    has = acct.debt_usd > 0
    assert np.all(acct.health_factor[has] >= 1.0)
    arr = book_arrays(book, 3, 16)
    assert arr["supply"].shape == (3, 16, RES.k) and np.all(arr["supply"][:, 10:] == 0)
    assert np.array_equal(arr["behaviour"][:, 10:], np.zeros((3, 6)))


def test_simulate_and_stress_hold_the_book(capsys, tmp_path):
    assert main([*BASE, "--book-csv", SAMPLE, "--steps", "48", "--price-csv", SAMPLE_PRICES, "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert R.problems(d, "simulate") == []
    assert d["positions"] == 10  # the book's rows (more than --positions)
    book = read_portfolio_book_csv(SAMPLE, RES)
    for k, s in enumerate(RES.symbols):
        assert d["initial_collateral_by_asset"][s] == pytest.approx(book.supply[:, k].sum())
        assert d["initial_debt_by_asset"][s] == pytest.approx(book.debt[:, k].sum())
    assert d["added_collateral_start_usd"] > 0 and d["repaid_by_borrowers_start_usd"] > 0
    args = [
        "stress", "--preset", "aave_v3_ethereum", "--paths", "4", "--batch-size", "2",
        "--positions", "12", "--horizon-hours", "12", "--no-progress", "--no-plots",
        "--book-csv", SAMPLE, "--out", str(tmp_path / "r"), "--json",
    ]  # fmt: skip
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert R.problems(s, "stress") == []
    assert s["positions"] == 12 and "--book-csv" in s["command"]


HEAD = "position,emode,collateral_WETH,collateral_wstETH,debt_WETH,debt_USDC,behaviour\n"


@pytest.mark.parametrize(
    "text, match",
    [
        ("collateral_WETH,debt_XYZ\n1,0\n", "line 1: column 'debt_XYZ': 'XYZ' is not a reserve"),
        ("collateral_WETH,loan_USDC\n1,0\n", "line 1: column 'loan_USDC' is unknown"),
        ("debt_USDC\n10\n", "line 1: no collateral_<SYMBOL> column"),
        (HEAD + "a,0,abc,0,0,0,\n", "line 2, column collateral_WETH: 'abc' is not allowed"),
        (HEAD + "a,0,1,0,0,-5,\n", "line 2, column debt_USDC: '-5' is not allowed"),
        (HEAD + "a,0,1,0,0,5\n", "line 2 has 6 fields but the header has 7"),
        (HEAD + "a,0,0,0,0,500,\n", "line 2: debt in USDC on no collateral"),
        (HEAD + "a,3,1,0,0,0,\n", "line 2, column emode: '3' is not a category"),
        (HEAD + "a,8,0,10,0,100,\n", "line 2: debt in USDC with emode 8 (wstETH/ETH)"),
        (HEAD + "a,0,1,0,0,100,looper\n", "line 2, column behaviour: 'looper' is unknown"),
        (HEAD + "a,0,0,0,0,0,\n", "no position with collateral > 0"),
    ],
)
def test_bad_rows_name_line_and_column(tmp_path, capsys, text, match):
    p = tmp_path / "b.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=None) as exc:
        read_portfolio_book_csv(p, RES)
    assert match in str(exc.value) and "\n" not in str(exc.value)
    assert main([*BASE, "--steps", "2", "--book-csv", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err


def test_a_position_under_water_at_the_start_is_refused(tmp_path, capsys):
    p = tmp_path / "b.csv"
    p.write_text(HEAD + "ok,0,10,0,0,1000,\nbad,0,10,0,0,40000,\n")
    assert main([*BASE, "--steps", "2", "--book-csv", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 3: HF 0.7" in err and "allowed HF >= 1" in err and "\n" not in err


def test_isolation_mode_rules():
    res = aave_v3_ethereum_reserves((*DEFAULT_SYMBOLS, "LDO"))
    with pytest.raises(ValueError, match="debt in WETH on isolated collateral LDO"):
        _read(res, "collateral_LDO,debt_WETH\n1000,0.1\n")
    with pytest.raises(ValueError, match="isolated positions owe 8,000,000"):
        _read(res, "collateral_LDO,debt_USDC\n1e7,4e6\n1e7,4e6\n")
    book = _read(res, "collateral_LDO,collateral_WETH,debt_WETH\n1e5,10,1\n")  # not isolated
    assert book.rows == 1


def _read(res, text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "b.csv"
        p.write_text(text)
        return read_portfolio_book_csv(p, res)
