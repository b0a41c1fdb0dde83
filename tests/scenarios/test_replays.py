"""Crash replays: the default path is the data as it happened (every point, so start, minimum and
end), at hourly resolution with the 10-minute bars where the data has them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from levgym import scenarios
from levgym.cli import main
from levgym.engine.params import EngineParams
from levgym.scenarios import data, replays
from levgym.scenarios.overlays import bias_for_debt_oracle

PARAMS = EngineParams()
S = 24 * PARAMS.run.substeps_per_step
SUB_S = PARAMS.run.substep_h * 3600.0
REPLAYS = sorted(replays.SOURCES)


def row_of(t: np.ndarray, start: float) -> np.ndarray:
    return np.round((t - start) / SUB_S).astype(int)


@pytest.mark.parametrize("name", REPLAYS)
def test_every_data_point_in_the_run_is_reproduced_exactly(name: str) -> None:
    d = scenarios.get(name).drivers(3, S, PARAMS, 0)
    f = d.fundamental_usd[:, 0]
    t, p = replays.price_points(name)
    start = data.parse_utc(replays.SOURCES[name].start_utc)
    inside = (t >= start) & (t <= start + (S - 1) * SUB_S)
    assert inside.sum() >= 24
    np.testing.assert_allclose(f[row_of(t[inside], start)], p[inside], rtol=1e-12)
    w = replays.window_summary(name, S, PARAMS.run.substep_h)
    assert f[0] == pytest.approx(w["start_usd"], rel=1e-12)
    assert f.min() == pytest.approx(w["min_usd"], rel=1e-12)
    assert f[-1] == pytest.approx(w["end_usd"], rel=1e-12)


def test_ten_minute_bars_are_used_where_the_data_has_them() -> None:
    t, p = replays.price_points("black_thursday_2020")
    bar, open_, close = data.eth_10min("03-12-2020")
    on_day = (t >= bar[0]) & (t <= bar[-1] + 600)
    assert on_day.sum() == 145 and np.all(np.diff(t[on_day]) == 600)
    np.testing.assert_array_equal(p[on_day], np.concatenate([open_[:1], close]))
    assert np.all(np.diff(t[t > bar[-1] + 600]) == 3600)  # hourly afterwards
    # no 10-minute bars for 2020-11-26: hourly only
    t2, _ = replays.price_points("compound_dai_oracle_2020")
    assert np.all(np.diff(t2) == 3600)


def test_black_thursday_window_is_the_crash() -> None:
    w = replays.window_summary("black_thursday_2020", S, PARAMS.run.substep_h)
    # ETH/USD fell from about 185 to 96.62 (Binance close of the 2020-03-13 01:00 bar)
    assert w["min_usd"] == 96.62
    assert 0.5 < w["min_over_start"] < 0.55


def test_black_thursday_replays_gas_and_dai_and_withdraws_liquidity() -> None:
    d = scenarios.get("black_thursday_2020").drivers(2, S, PARAMS, 0)
    start = data.parse_utc(replays.SOURCES["black_thursday_2020"].start_utc)
    bucket, gwei = data.gas_10min("03-12-2020")
    t = bucket + 600
    inside = (t >= start) & (t <= start + (S - 1) * SUB_S)
    np.testing.assert_allclose(d.gas_gwei[row_of(t[inside], start), 0], gwei[inside])
    bar, _, _, close = data.dai_10min()
    t = bar + 600
    inside = (t >= start) & (t <= start + (S - 1) * SUB_S)
    np.testing.assert_allclose(d.debt_price_usd[row_of(t[inside], start), 0], close[inside])
    assert d.debt_price_usd.max() == pytest.approx(close.max())
    assert d.liquidity_frac[-1, 0] < 1.0 and np.all(np.diff(d.liquidity_frac[:, 0]) <= 0)
    off = scenarios.get("black_thursday_2020").drivers(
        2, S, PARAMS, 0, {"gas": "false", "depeg": "false", "drought": "false"}
    )
    np.testing.assert_array_equal(off.fundamental_usd, d.fundamental_usd)
    assert (
        np.all(off.gas_gwei == 30.0)
        and np.all(off.debt_price_usd == 1.0)
        and np.all(off.liquidity_frac == 1.0)
    )


def test_may19_replays_the_pool_liquidity() -> None:
    d = scenarios.get("may19_2021").drivers(2, S, PARAMS, 0)
    start = data.parse_utc(replays.SOURCES["may19_2021"].start_utc)
    t, dai, weth = data.reserves_10min("05-19-2021")
    liq = np.sqrt(dai * weth)
    inside = (t >= start) & (t <= start + (S - 1) * SUB_S)
    np.testing.assert_allclose(d.liquidity_frac[row_of(t[inside], start), 0], liq[inside] / liq[0])
    assert np.all(d.liquidity_frac[row_of(t[:1], start)[0] :: -1, 0] == 1.0)  # before the data


def test_compound_oracle_spike() -> None:
    d = scenarios.get("compound_dai_oracle_2020").drivers(2, S, PARAMS, 0)
    hours = np.arange(S) * PARAMS.run.substep_h  # window starts at 00:00 UTC
    spike = (hours >= 8.0) & (hours < 9.0)
    assert np.all(d.oracle_bias_frac[~spike] == 0.0)
    assert d.oracle_bias_frac.min() == pytest.approx(bias_for_debt_oracle(1.30))
    assert np.all(d.oracle_bias_frac[spike][1:] < 0)
    assert np.all(d.debt_price_usd == 1.0)  # the market price of DAI did not move


def test_rescale_speed_and_continuation() -> None:
    sc = scenarios.get("black_thursday_2020")
    base = sc.drivers(1, S, PARAMS, 0).fundamental_usd[:, 0]
    scaled = sc.drivers(1, S, PARAMS, 0, {"start_price_usd": "2000"}).fundamental_usd[:, 0]
    np.testing.assert_allclose(scaled, base * 2000.0 / base[0])
    fast = sc.drivers(1, S // 2, PARAMS, 0, {"speed": "2"}).fundamental_usd[:, 0]
    np.testing.assert_allclose(fast, base[::2][: S // 2])
    # past the end of the data the last price is held
    t, p = replays.price_points("black_thursday_2020")
    start = data.parse_utc(replays.SOURCES["black_thursday_2020"].start_utc)
    offset = (t[-1] - start) / 3600.0 - 2.0
    late = sc.drivers(1, S, PARAMS, 0, {"start_offset_h": str(offset)}).fundamental_usd[:, 0]
    np.testing.assert_allclose(late[12:], p[-1], rtol=1e-12)


def test_cli_black_thursday_reports_the_real_drawdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "black_thursday_2020",
                "--json",
                "--num-envs",
                "2",
                "--positions",
                "64",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    w = replays.window_summary("black_thursday_2020", S, PARAMS.run.substep_h)
    assert out["fundamental_min_over_start"] == pytest.approx(w["min_over_start"], rel=1e-9)
