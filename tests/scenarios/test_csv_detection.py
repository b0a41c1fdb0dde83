"""Reading users' CSVs: column detection, epoch units, thousands separators, gaps, short files,
grouped files, and a CSV's prices under a named scenario's other drivers."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from levgym.cli import main
from levgym.cli.common import parse_sets
from levgym.cli.simulate import make_drivers
from levgym.engine.params import EngineParams
from levgym.scenarios import get as get_scenario
from levgym.scenarios.csv_replay import (
    MAX_GAP_RATIO,
    detect_columns,
    drivers_from_csv,
    read_price_table,
)

DATA = Path(__file__).resolve().parents[2] / "levgym" / "data"
T0 = 1_621_382_400  # 2021-05-19T00:00:00Z


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["time", "price"], ("time", "price")),
        (["Timestamp", "Close"], ("Timestamp", "Close")),
        (["DATE", "open", "high", "low", "close", "volume"], ("DATE", "close")),
        (["datetime", "usd_price"], ("datetime", "usd_price")),
        (["unix", "eth_price"], ("unix", "eth_price")),
        (["timestamp(ms)", "price_usd"], ("timestamp(ms)", "price_usd")),
        (["time_period_start_utc", "open", "high", "close"], ("time_period_start_utc", "close")),
        (["unix_hour_open_utc", "close"], ("unix_hour_open_utc", "close")),
        (["scenario", "inferred_time_utc", "implied_price_DAI_per_WETH"], ("inferred_time_utc", "implied_price_DAI_per_WETH")),
        (["a", "b"], (None, None)),
    ],
)  # fmt: skip
def test_detects_the_usual_column_names(header, expected) -> None:
    assert detect_columns(header) == expected


# bundled CSVs that are not price paths, each read by its own loader
NOT_PRICES = {
    "aave_v2_weth_stable_liquidations_2020-12_2021-06.csv",  # levgym.scenarios.data
    "example_book.csv",  # levgym.scenarios.book_csv
    "aave_v3_ethereum_risk_params_2025-10.csv",  # levgym.engine.aave_v3_ethereum
    "multiasset_hourly_2021.csv",  # levgym.scenarios.multiasset (several assets, with gaps)
    "multiasset_params_2021.csv",  # levgym.scenarios.multiasset (fitted parameters)
    "example_multiasset_hourly_2021-05-18_20.csv",  # multiasset.read_multiasset_csv (several)
    "example_portfolio_book.csv",  # levgym.scenarios.portfolio_book_csv
}


@pytest.mark.parametrize(
    "path", sorted(p for p in DATA.glob("*.csv") if p.name not in NOT_PRICES), ids=lambda p: p.name
)
def test_every_bundled_csv_reads_without_flags(path: Path) -> None:
    table = read_price_table(path)
    assert len(table.prices) >= 24
    assert np.all(np.diff(table.times_s) > 0) and np.all(table.prices > 0)
    assert 1.2e9 < table.times_s[0] < 1.7e9  # 2008..2023: the epoch unit was read right
    assert table.time_column in table.describe(path) and table.price_column in table.describe(path)


def test_the_bundled_non_price_csvs_read_with_their_loaders() -> None:
    from levgym.scenarios import data
    from levgym.scenarios.book_csv import read_book_csv

    assert {p.name for p in DATA.glob("*.csv")} >= NOT_PRICES
    t, v = data.aave_liquidations()
    assert t.size == 2433 and np.all(v > 0) and np.all(np.diff(t) >= 0)
    assert read_book_csv(DATA / "example_book.csv").rows == 10
    from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
    from levgym.scenarios.multiasset import read_multiasset_csv
    from levgym.scenarios.portfolio_book_csv import read_portfolio_book_csv

    sample = read_multiasset_csv(DATA / "example_multiasset_hourly_2021-05-18_20.csv")
    assert sample.symbols == ("WETH", "WBTC", "USDC") and sample.times_s.size == 64
    book = read_portfolio_book_csv(DATA / "example_portfolio_book.csv", aave_v3_ethereum_reserves())
    assert book.rows == 10
    from levgym.scenarios import multiasset

    hours, levels = multiasset.hourly_slice()
    assert hours.size == 8760 and levels.shape == (8760, len(multiasset.FACTORS))
    assert multiasset.fitted_params().jump_rate_per_h > 0


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_unit_is_detected_by_magnitude(tmp_path: Path, unit: str, scale: int) -> None:
    rows = "".join(f"{(T0 + 3600 * i) * scale},{100 + i}\n" for i in range(5))
    table = read_price_table(write(tmp_path / "p.csv", "timestamp,close\n" + rows))
    assert table.time_unit == unit
    np.testing.assert_array_equal(table.times_s, T0 + 3600 * np.arange(5))


def test_unquoted_thousands_separator_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv", "time,price\n2021-05-19T00:00:00Z,3375\n2021-05-19T01:00:00Z,3,354.13\n"
    )
    with pytest.raises(
        ValueError, match=r"line 3 has 3 fields but the header has 2; .*thousands separator"
    ):
        read_price_table(path)


def test_quoted_thousands_separator_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        'time,price\n2021-05-19T00:00:00Z,"3,375.07"\n2021-05-19T01:00:00Z,"1,234"\n',
    )
    np.testing.assert_array_equal(read_price_table(path).prices, [3375.07, 1234.0])


def hourly_with_gap(tmp_path: Path, gap_h: int) -> Path:
    times = [T0 + 3600 * i for i in range(48)] + [T0 + 3600 * (47 + gap_h + i) for i in range(48)]
    body = "".join(f"{t},{2000 + i}\n" for i, t in enumerate(times))
    return write(tmp_path / "gap.csv", "unix,price\n" + body)


def test_a_week_long_gap_is_an_error_unless_allowed(tmp_path: Path) -> None:
    path = hourly_with_gap(tmp_path, 24 * 7)
    with pytest.raises(
        ValueError,
        match=r"line 50: a gap of 7 days after 2021-05-20T23:00:00Z, 168 x the file's median spacing of 1 h; allowed up to 24 x \(--allow-gaps",
    ):
        read_price_table(path)
    assert len(read_price_table(path, allow_gaps=True).prices) == 96
    assert len(read_price_table(hourly_with_gap(tmp_path, int(MAX_GAP_RATIO))).prices) == 96


def test_rows_seconds_apart_get_settings_that_fit(tmp_path: Path, capsys) -> None:
    body = "".join(f"{T0 + i},{3000 - i}\n" for i in range(30))
    path = write(tmp_path / "fast.csv", "unix,usd_price\n" + body)
    assert main(["simulate", "--price-csv", str(path), "--steps", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "spans 29 s" in err and "rows 1 s apart" in err and "--steps 0" not in err
    fix = err.split("one substep per row: ")[1].split(", or")[0].split()
    assert fix[:2] == ["--steps", "1"]
    assert main(["simulate", "--price-csv", str(path), "--json", *fix]) == 0
    assert (
        "time column 'unix' (unix s), price column 'usd_price', 30 rows" in capsys.readouterr().err
    )


def test_grouped_file_reads_the_first_series_or_the_chosen_one(tmp_path: Path) -> None:
    path = DATA / "eth_usd_10min_crash_days_2020-2021.csv"
    first = read_price_table(path)
    assert first.group is not None and first.group[1] == "03-12-2020" and first.group[2] == 7
    assert "scenario='03-12-2020' (first of 7" in first.describe(path)
    other = read_price_table(path, group="05-19-2021")
    assert other.times_s[0] > first.times_s[-1]
    with pytest.raises(
        ValueError, match=r"--csv-group '05-19-2012' is not a value .*did you mean '05-19-2021'"
    ):
        read_price_table(path, group="05-19-2012")


def test_named_column_is_case_insensitive_and_a_typo_gets_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "Time,Close\n2021-05-19T00:00:00Z,1\n2021-05-19T01:00:00Z,2\n")
    assert read_price_table(path, "time", "close").price_column == "Close"
    with pytest.raises(
        ValueError, match=r"no column 'Closs' \(--price-column\) \(did you mean 'Close'\?\)"
    ):
        read_price_table(path, price_column="Closs")


def test_price_csv_over_a_scenario_keeps_its_other_drivers(tmp_path: Path) -> None:
    """``--price-csv`` with ``--scenario``: the CSV's prices, the scenario's liquidity and gas."""
    path = DATA / "example_eth_hourly_2021-05-19.csv"
    args = argparse.Namespace(
        scenario="liquidity_drought", price_csv=str(path), num_envs=3, seed=4,
        time_column=None, price_column=None, allow_gaps=False, csv_group=None,
    )  # fmt: skip
    sets = parse_sets(["scenario.hold_last=true"])
    params = EngineParams()
    name, d = make_drivers(args, params, sets, 144)
    assert name == f"liquidity_drought+csv:{path}"
    base = get_scenario("liquidity_drought").drivers(3, 144, params, 4, {})
    replay = drivers_from_csv(path, 3, 144, params, overrides={"hold_last": "true"}, seed=4)
    np.testing.assert_array_equal(d.fundamental_usd, replay.fundamental_usd)
    for field in (
        "liquidity_frac",
        "gas_gwei",
        "arb_speed_frac",
        "oracle_bias_frac",
        "debt_price_usd",
    ):
        np.testing.assert_array_equal(getattr(d, field), getattr(base, field))
    assert d.liquidity_frac.min() < 1.0  # the drought is there
