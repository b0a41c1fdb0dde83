"""`--book-csv`: bad files give one line naming the line, the column, the value and what is
allowed, exit 2, before any simulation; a good file is the book of every env."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from levgym.cli import main
from levgym.scenarios.book_csv import read_book_csv

EXAMPLE = Path(__file__).resolve().parents[2] / "levgym" / "data" / "example_book.csv"

BAD = [
    ("", "empty file; allowed a header row with columns collateral_asset, debt_usd, behaviour"),
    (
        "collateral,debt_usd\n1,1\n",
        "line 1: no column 'collateral_asset' (found collateral, debt_usd)",
    ),
    ("collateral_asset,debt_usd,color\n1,1,red\n", "line 1: column 'color' is unknown"),
    (
        "collateral_asset,debt_usd\n10,100\n1,abc\n",
        "line 3, column debt_usd: 'abc' is not allowed; allowed a finite number >= 0",
    ),
    ("collateral_asset,debt_usd\n-5,100\n", "line 2, column collateral_asset: '-5' is not allowed"),
    (
        "collateral_asset,debt_usd\nnan,100\n",
        "line 2, column collateral_asset: 'nan' is not allowed",
    ),
    (
        "collateral_asset,debt_usd\n0,100\n",
        "line 2: debt_usd 100 on collateral_asset 0; allowed debt only on collateral > 0",
    ),
    ("collateral_asset,debt_usd\n1,2,3\n", "line 2 has 3 fields but the header has 2"),
    (
        "collateral_asset,debt_usd,behaviour\n1,1,whale\n",
        "line 2, column behaviour: 'whale' is unknown; allowed passive, defensive, looper",
    ),
    ("collateral_asset,debt_usd\n0,0\n", "no position with collateral > 0"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_book_files_exit_2_with_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "book.csv"
    path.write_text(text)
    out_json = tmp_path / "summary.json"
    rc = main(["simulate", "--book-csv", str(path), "--steps", "1", "--out-json", str(out_json)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out_json.exists()


def test_missing_book_file(tmp_path, capsys):
    rc = main(["simulate", "--book-csv", str(tmp_path / "nope.csv"), "--steps", "1"])
    assert rc == 2
    assert "no such file; allowed a CSV file" in capsys.readouterr().err


def test_example_book_is_every_envs_book():
    book = read_book_csv(EXAMPLE)
    assert book.rows == 10
    assert set(book.kind.tolist()) == {0, 1, 2}
    from levgym.engine.params import EngineParams
    from levgym.scenarios.book_csv import book_state

    state = book_state(EngineParams(), book, 3, 16, np.full(3, 2000.0), np.ones(3))
    assert state.collateral_asset.shape == (3, 16)
    np.testing.assert_array_equal(
        state.collateral_asset[:, :10], np.tile(book.collateral_asset, (3, 1))
    )
    np.testing.assert_array_equal(state.debt_usd[:, :10], np.tile(book.debt_usd, (3, 1)))
    assert not state.active[:, 10:].any()


def test_simulate_with_the_example_book(capsys):
    rc = main(
        ["simulate", "--book-csv", str(EXAMPLE), "--num-envs", "2", "--positions", "4",
         "--steps", "2", "--json"]
    )  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    book = read_book_csv(EXAMPLE)
    assert out["positions"] == 10  # the file's rows when --positions is smaller
    assert out["initial_collateral_asset"] == pytest.approx(book.collateral_asset.sum())
    assert out["initial_debt_usd"] == pytest.approx(book.debt_usd.sum())
