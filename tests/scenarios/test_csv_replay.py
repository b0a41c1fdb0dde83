"""`levgym simulate --price-csv FILE`: round trip and one clear error line per problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from levgym.cli import main
from levgym.engine.params import EngineParams
from levgym.scenarios.csv_replay import drivers_from_csv

PARAMS = EngineParams()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def hourly_crash_csv(
    tmp_path: Path,
    hours: int = 24,
    time_col: str = "time",
    price_col: str = "price",
    unix: bool = False,
) -> tuple[Path, np.ndarray]:
    """Hourly prices over ``hours`` hours plus a final 10-minute row, so the file spans exactly the
    default run (24 h minus one 10-minute substep); the minimum is inside."""
    rng = np.random.default_rng(5)
    p = 1800.0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(-0.01, 0.02, hours - 1)]))
    p[hours // 2] *= 0.8
    t0 = 1_600_000_000
    times = [t0 + 3600 * i for i in range(hours)]
    times.append(t0 + 3600 * (hours - 1) + 50 * 60)
    prices = list(p) + [p[-1] * 1.01]
    lines = [f"{time_col},{price_col},volume"]
    for t, x in zip(times, prices, strict=True):
        stamp = str(t) if unix else np.datetime_as_string(np.datetime64(t, "s")) + "Z"
        lines.append(f"{stamp},{x:.6f},1")
    path = write(tmp_path / "prices.csv", "\n".join(lines) + "\n")
    return path, np.round(np.array(prices), 6)


@pytest.mark.parametrize("unix", [False, True])
def test_round_trip_reports_the_file_drawdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unix: bool
) -> None:
    path, prices = hourly_crash_csv(tmp_path, unix=unix)
    rc = main(
        ["simulate", "--price-csv", str(path), "--json", "--num-envs", "2", "--positions", "64"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == f"csv:{path}"
    expect = prices.min() / prices[0]
    assert out["fundamental_min_over_start"] == pytest.approx(expect, rel=0.01)
    assert out["fundamental_min_over_start"] == pytest.approx(expect, rel=1e-9)  # rows on the grid


def test_resampling_reproduces_rows_and_interpolates_in_log(tmp_path: Path) -> None:
    path, prices = hourly_crash_csv(tmp_path)
    d = drivers_from_csv(path, 3, 144, PARAMS)
    f = d.fundamental_usd
    assert f.shape == (144, 3) and np.all(f == f[:, :1])
    np.testing.assert_allclose(f[0:138:6, 0], prices[:23], rtol=1e-12)
    np.testing.assert_allclose(f[143, 0], prices[-1], rtol=1e-12)
    np.testing.assert_allclose(f[3, 0], np.sqrt(prices[0] * prices[1]), rtol=1e-12)


def test_arrivals_respond_to_the_replayed_path_s_own_drawdown(tmp_path: Path) -> None:
    import dataclasses

    from levgym.scenarios.processes import drawdown_mult

    path, _ = hourly_crash_csv(tmp_path)
    plain = drivers_from_csv(path, 2, 144, PARAMS)
    assert np.all(plain.arrival_mult == 1.0)  # run.arrival_drawdown 0: no response
    run = dataclasses.replace(PARAMS.run, arrival_drawdown=8.0)
    thin = drivers_from_csv(path, 2, 144, dataclasses.replace(PARAMS, run=run))
    np.testing.assert_array_equal(thin.fundamental_usd, plain.fundamental_usd)
    f = plain.fundamental_usd[:, 0]
    peak = np.maximum.accumulate(f)  # the file spans a day: its trailing 720 h peak so far
    np.testing.assert_allclose(thin.arrival_mult[:, 0], (f / peak) ** 8.0, rtol=1e-12)
    assert thin.arrival_mult.min() < 0.2 and thin.arrival_mult[0, 0] == 1.0
    # the trailing window: a peak older than it no longer counts
    x = np.array([[2.0], [1.0], [1.0], [1.5], [1.0]])
    np.testing.assert_allclose(drawdown_mult(x, 2, 1.0)[:, 0], [1.0, 0.5, 1.0, 1.0, 1.0 / 1.5])
    np.testing.assert_array_equal(drawdown_mult(x, 2, 0.0), np.ones(x.shape))
    with pytest.raises(
        ValueError, match=r"arrival_drawdown=21.0 is out of range; allowed \[0, 20\]"
    ):
        drawdown_mult(x, 2, 21.0)
    with pytest.raises(ValueError, match="run.arrival_drawdown"):
        dataclasses.replace(PARAMS.run, arrival_drawdown=-1.0)


def test_custom_columns_and_knobs(tmp_path: Path) -> None:
    path, prices = hourly_crash_csv(tmp_path, time_col="ts", price_col="close")
    d = drivers_from_csv(
        path,
        2,
        144,
        PARAMS,
        time_column="ts",
        price_column="close",
        overrides={"start_price_usd": "100", "gas_gwei": "80"},
    )
    assert d.fundamental_usd[0, 0] == pytest.approx(100.0)
    assert d.fundamental_usd.min() == pytest.approx(100.0 * prices.min() / prices[0])
    assert np.all(d.gas_gwei == 80.0)
    with pytest.raises(
        ValueError,
        match=r"unknown key scenario\.nope for scenario 'csv'; allowed .*scenario\.hold_last",
    ):
        drivers_from_csv(
            path, 2, 144, PARAMS, time_column="ts", price_column="close", overrides={"nope": "1"}
        )


def test_hold_last_continues_a_short_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "short.csv", "time,price\n2020-03-12T00:00:00Z,100\n2020-03-12T01:00:00Z,90\n"
    )
    d = drivers_from_csv(path, 1, 144, PARAMS, overrides={"hold_last": "true"})
    assert np.all(d.fundamental_usd[6:, 0] == pytest.approx(90.0))


def cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    rc = main(["simulate", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("levgym: error: ")
    return err


GOOD = "time,price\n2020-03-12T00:00:00Z,100\n2020-03-12T01:00:00Z,90\n"


@pytest.mark.parametrize(
    ("text", "args", "pattern"),
    [
        (None, (), r"'.*missing\.csv': no such file"),
        (
            GOOD,
            ("--price-column", "close"),
            r"no column 'close' \(--price-column\); columns found: 'time', 'price'",
        ),
        (
            GOOD,
            ("--time-column", "date"),
            r"no column 'date' \(--time-column\); columns found: 'time', 'price'",
        ),
        (
            "time,price\n2020-03-12T00:00:00Z,100\n2020-03-12T01:00:00Z,abc\n",
            (),
            r"line 3: price 'abc' is not a number",
        ),
        (
            "time,price\n2020-03-12T00:00:00Z,100\n2020-03-12T01:00:00Z,\n",
            (),
            r"line 3: price '' is not a number",
        ),
        (
            "time,price\n2020-03-12T00:00:00Z,100\n2020-03-12T01:00:00Z,-5\n",
            (),
            r"line 3: price -5 is not allowed; prices must be finite and > 0",
        ),
        (
            "time,price\n2020-03-12T00:00:00Z,0\n2020-03-12T01:00:00Z,5\n",
            (),
            r"line 2: price 0 is not allowed",
        ),
        (
            "time,price\n2020-03-12T01:00:00Z,100\n2020-03-12T00:00:00Z,90\n",
            (),
            r"line 3: time '2020-03-12T00:00:00Z' is before the previous row's '2020-03-12T01:00:00Z'; times must be strictly increasing",
        ),
        (
            "time,price\n1584000000,100\n1584000000,90\n",
            (),
            r"line 3: time '1584000000' repeats the previous row's '1584000000'",
        ),
        (
            "time,price\nyesterday,100\ntoday,90\n",
            (),
            r"line 2: time 'yesterday' is neither ISO-8601",
        ),
        ("time,price\n2020-03-12T00:00:00Z,100\n", (), r"1 data row\(s\); at least 2 are needed"),
        ("", (), r"empty file"),
        (
            GOOD,
            (),
            r"spans 1 h \(2020-03-12T00:00:00Z to 2020-03-12T01:00:00Z, rows 1 h apart\): 7 substep\(s\) of "
            r"10 min; the run needs 144 \(24 step\(s\) of 6\); allowed --steps 1 or fewer, or "
            r"--set scenario.hold_last=true",
        ),
    ],
)
def test_each_error_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    args: tuple[str, ...],
    pattern: str,
) -> None:
    path = tmp_path / "missing.csv"
    if text is not None:
        path = write(tmp_path / "bad.csv", text)
    err = cli_error(capsys, "--price-csv", str(path), *args)
    assert re.search(pattern, err), err


def test_short_file_runs_with_fewer_steps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path / "ok.csv", GOOD)
    assert (
        main(
            [
                "simulate",
                "--price-csv",
                str(path),
                "--steps",
                "1",
                "--json",
                "--num-envs",
                "1",
                "--positions",
                "16",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["fundamental_min_over_start"] == pytest.approx(np.exp(np.log(0.9) * 5 / 6), rel=1e-9)


def test_hf_margin_mult_responds_to_the_trailing_return() -> None:
    from levgym.scenarios.processes import HF_PATH_MAX, hf_margin_mult

    x = np.array([[1.0, 2.0], [2.0, 2.0], [1.0, 1.0], [0.5, 4.0]])
    got = hf_margin_mult(x, 2, 1.0)
    # the price 2 rows before over the price now (the first rows: the first price)
    np.testing.assert_allclose(got, [[1.0, 1.0], [0.5, 1.0], [1.0, 2.0], [4.0, 0.5]])
    np.testing.assert_allclose(hf_margin_mult(x, 2, 2.0), got**2)
    np.testing.assert_array_equal(hf_margin_mult(x, 2, 0.0), np.ones(x.shape))
    for bad in (-0.5, HF_PATH_MAX + 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"hf_path_elasticity=.* is out of range; allowed"):
            hf_margin_mult(x, 2, bad)
