"""The fitted multi-asset process, its overlays and the multi-column CSV replay (issue 15)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from levgym.scenarios import multiasset as ma
from levgym.scenarios.multiasset import (
    FACTORS,
    SYMBOLS,
    LSTDepeg,
    MultiAssetPaths,
    StablecoinDepeg,
    apply_overlays,
    fitted_params,
    read_multiasset_csv,
    replay,
    simulate,
)

VI = [FACTORS.index("WETH"), FACTORS.index("WBTC")]


def factor_logs(paths: MultiAssetPaths) -> np.ndarray:
    """Factor log levels ``[T, E, F]`` back from symbol prices (stETH -> the stETH/ETH ratio)."""
    logp = np.log(paths.prices_usd)
    s = logp.copy()
    s[:, :, FACTORS.index("stETH_per_ETH")] = (
        logp[:, :, SYMBOLS.index("stETH")] - logp[:, :, SYMBOLS.index("WETH")]
    )
    return s


def innovations(s: np.ndarray, dt_h: float) -> np.ndarray:
    """Each step's noise ``[(T-1) * E, F]``: ``s' - mean - phi * (s - mean)``."""
    p = fitted_params()
    phi = p.phi(dt_h)
    z = s[1:] - p.mean_log - phi * (s[:-1] - p.mean_log)
    return z.reshape(-1, s.shape[2])


def same_params(p: ma.MultiAssetParams, q: ma.MultiAssetParams) -> bool:
    names = ("kappa_per_h", "mean_log", "cov_per_h", "jump_mean_log", "jump_cov_log", "start_usd")
    return (
        all(np.array_equal(getattr(p, n), getattr(q, n)) for n in names)
        and p.jump_rate_per_h == q.jump_rate_per_h
        and p.info == q.info
    )


def col(values) -> np.ndarray:
    """A column ``[T, 1]`` to compare with ``[T, E]`` paths."""
    return np.asarray(values, dtype=np.float64)[:, None]


def assert_rows(actual: np.ndarray, expected_rows, rtol: float = 1e-12) -> None:
    """Every path of ``actual`` ``[T, E]`` equals ``expected_rows`` ``[T]``."""
    np.testing.assert_allclose(actual, np.broadcast_to(col(expected_rows), actual.shape), rtol=rtol)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- fit


def test_fit_reproduces_the_shipped_parameters():
    p, q = ma.fit(), fitted_params()
    for name in ("kappa_per_h", "mean_log", "cov_per_h", "jump_mean_log", "jump_cov_log"):
        np.testing.assert_allclose(getattr(p, name), getattr(q, name), rtol=1e-12, err_msg=name)
    assert p.jump_rate_per_h == pytest.approx(q.jump_rate_per_h, rel=1e-12)
    np.testing.assert_allclose(p.start_usd, q.start_usd, rtol=1e-12)
    assert p.info == pytest.approx(q.info, rel=1e-12)


def test_fit_command_writes_the_parameters_file(tmp_path):
    out = tmp_path / "params.csv"
    assert ma.main(["--fit", "--out", str(out)]) == 0
    assert same_params(ma.params_from_text(out.read_text()), fitted_params())
    assert ma.main([]) == 2


SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "prices").is_dir(), reason="no shared data folder here")
def test_build_slice_reproduces_the_shipped_slice():
    assert ma.build_slice(SHARED_DATA) == ma.data_text(ma.SLICE_FILE)


def test_fitted_parameters_are_plausible():
    p = fitted_params()
    assert np.all(np.linalg.eigvalsh(p.cov_per_h) > 0)
    corr = p.corr_per_h()
    # ETH and BTC move together; the stablecoins and the stETH/ETH ratio revert to about 1
    assert 0.5 < corr[0, 1] < 0.9
    for f in ("stETH_per_ETH", "DAI", "USDC", "USDT"):
        i = FACTORS.index(f)
        assert p.kappa_per_h[i] > 0
        assert abs(math.exp(p.mean_log[i]) - 1.0) < 0.01
    assert 0 < p.jump_rate_per_h < 0.05
    # the hourly slice has the year's hours and the fit used most of them
    t, x = ma.hourly_slice()
    assert t.size == 8760 and np.all(np.diff(t) == 3600.0)
    assert p.info["covariance_hours"] > 4000


def test_params_text_round_trip():
    p = fitted_params()
    assert same_params(ma.params_from_text(ma.params_to_text(p)), p)


def test_step_cov_is_exact_at_one_hour_and_linear_for_random_walks():
    p = fitted_params()
    np.testing.assert_allclose(p.step_cov(1.0), p.cov_per_h, rtol=1e-12, atol=1e-18)
    c = p.step_cov(1 / 6)
    assert np.all(np.linalg.eigvalsh(c) > -1e-15)
    np.testing.assert_allclose(c[np.ix_(VI, VI)], p.cov_per_h[np.ix_(VI, VI)] / 6, rtol=1e-12)


def test_params_validation_names_the_field():
    p = fitted_params()
    with pytest.raises(ValueError, match=r"MultiAssetParams\.jump_rate_per_h=2 .*allowed \[0, 1\]"):
        ma.MultiAssetParams(
            p.kappa_per_h,
            p.mean_log,
            p.cov_per_h,
            2.0,
            p.jump_mean_log,
            p.jump_cov_log,
            p.start_usd,
        )
    with pytest.raises(ValueError, match=r"MultiAssetParams\.cov_per_h has shape \(2, 2\)"):
        ma.MultiAssetParams(
            p.kappa_per_h, p.mean_log, np.eye(2), 0.0, p.jump_mean_log, p.jump_cov_log, p.start_usd
        )


# ----------------------------------------------------------------------------- simulate


def test_simulate_is_reproducible_and_seeded():
    a = simulate(8, 50, dt_h=1 / 6, seed=3)
    b = simulate(8, 50, dt_h=1 / 6, seed=3)
    c = simulate(8, 50, dt_h=1 / 6, seed=4)
    assert a.prices_usd.shape == (50, 8, len(SYMBOLS)) and a.symbols == SYMBOLS
    assert a.dt_h == pytest.approx(1 / 6)
    np.testing.assert_array_equal(a.prices_usd, b.prices_usd)
    assert not np.allclose(a.prices_usd[1:], c.prices_usd[1:])
    np.testing.assert_allclose(a.prices_usd[0], np.broadcast_to(fitted_params().start_usd, (8, 6)))
    assert not a.prices_usd.flags.writeable


def test_simulate_start_prices_and_symbol_selection():
    p = simulate(4, 3, seed=0, start_usd={"WETH": 2000.0, "stETH": 1900.0, "USDC": 0.99})
    np.testing.assert_allclose(p.prices_usd[0, :, SYMBOLS.index("WETH")], 2000.0)
    np.testing.assert_allclose(p.prices_usd[0, :, SYMBOLS.index("stETH")], 1900.0)
    np.testing.assert_allclose(p.prices_usd[0, :, SYMBOLS.index("USDC")], 0.99)
    sub = simulate(4, 3, seed=0, symbols=("USDC", "WETH"))
    full = simulate(4, 3, seed=0)
    np.testing.assert_array_equal(sub.prices_usd[:, :, 1], full.price("WETH"))
    with pytest.raises(
        ValueError, match=r"start_usd: symbol 'WTEH' is unknown \(did you mean 'WETH'"
    ):
        simulate(2, 2, start_usd={"WTEH": 1.0})
    with pytest.raises(ValueError, match=r"dt_h=0 is out of range"):
        simulate(2, 2, dt_h=0)
    with pytest.raises(ValueError, match=r"num_paths=0 is out of range"):
        simulate(0, 2)


def test_simulated_noise_recovers_the_fitted_covariance():
    """400k hourly steps without jumps: every variance within 2% and every correlation within
    0.01 of the fit (standard errors about 0.2% and 0.0016)."""
    p = fitted_params().without_jumps()
    paths = simulate(2000, 201, dt_h=1.0, seed=11, params=p)
    z = innovations(factor_logs(paths), 1.0)
    cov = np.cov(z, rowvar=False)
    np.testing.assert_allclose(np.diag(cov), np.diag(p.cov_per_h), rtol=0.02)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(cov / np.outer(sd, sd), p.corr_per_h(), atol=0.01)
    # a martingale in price: the random walks drift by -variance / 2
    np.testing.assert_allclose(z[:, VI].mean(axis=0), -0.5 * np.diag(p.cov_per_h)[VI], atol=2e-4)


def test_substeps_aggregate_to_the_hourly_covariance():
    """Simulated at 10-minute steps and read every hour, the noise has the hourly fit's law."""
    p = fitted_params().without_jumps()
    paths = simulate(1000, 6 * 100 + 1, dt_h=1 / 6, seed=12, params=p)
    s = factor_logs(paths)[::6]
    cov = np.cov(innovations(s, 1.0), rowvar=False)
    np.testing.assert_allclose(np.diag(cov), np.diag(p.cov_per_h), rtol=0.03)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(cov / np.outer(sd, sd), p.corr_per_h(), atol=0.015)


def test_common_jumps_add_their_moments_and_fat_tails():
    p = fitted_params()
    paths = simulate(2000, 201, dt_h=1.0, seed=13, params=p)
    r = np.diff(np.log(paths.prices_usd[:, :, :2]), axis=0).reshape(-1, 2)
    total = p.total_cov(1.0)[np.ix_(VI, VI)]
    np.testing.assert_allclose(np.cov(r, rowvar=False), total, rtol=0.05)
    x = (r[:, 0] - r[:, 0].mean()) / r[:, 0].std()
    assert (x**4).mean() - 3.0 > 2.0  # excess kurtosis from the jumps
    calm = simulate(2000, 201, dt_h=1.0, seed=13, params=p.without_jumps())
    y = np.diff(np.log(calm.price("WETH")), axis=0).ravel()
    y = (y - y.mean()) / y.std()
    assert abs((y**4).mean() - 3.0) < 0.1


# ----------------------------------------------------------------------------- overlays


def test_lst_depeg_moves_the_ratio_as_stated():
    base = simulate(5, 1 + 24 * 6, dt_h=1.0, seed=1)
    o = LSTDepeg(discount_frac=0.1, start_h=10, move_h=20, hold_h=5, recover_h=40)
    out = o.apply(base)
    ratio = out.price("stETH") / base.price("stETH")
    t = base.times_h
    np.testing.assert_allclose(ratio[t <= 10], 1.0)
    np.testing.assert_allclose(ratio[(t >= 30) & (t <= 35)], 0.9)
    np.testing.assert_allclose(ratio[t == 20], 0.95)
    np.testing.assert_allclose(ratio[t >= 75], 1.0)
    np.testing.assert_array_equal(out.price("WETH"), base.price("WETH"))
    stuck = LSTDepeg(0.1, start_h=10, move_h=20, recovers=False).apply(base)
    np.testing.assert_allclose((stuck.price("stETH") / base.price("stETH"))[t >= 30], 0.9)


@pytest.mark.parametrize(
    ("symbol", "price"),
    [("USDC", 0.87), ("DAI", 1.126), ("USDT", 0.3)],
    ids=["debt-below", "debt-above", "collateral-breaks"],
)
def test_stablecoin_depeg_either_side(symbol, price):
    base = simulate(5, 73, dt_h=1.0, seed=2)
    o = StablecoinDepeg(symbol, price, start_h=6, move_h=6, hold_h=12, recovers=price != 0.3)
    out = apply_overlays(base, [o])
    rel = out.price(symbol) / base.price(symbol)
    t = base.times_h
    np.testing.assert_allclose(rel[(t >= 12) & (t <= 24)], price)
    np.testing.assert_allclose(rel[t <= 6], 1.0)
    if price == 0.3:
        np.testing.assert_allclose(rel[t >= 12], 0.3)
        assert out.price(symbol)[-1].max() < 0.31
    else:
        np.testing.assert_allclose(rel[t >= 48], 1.0)
    others = [s for s in SYMBOLS if s != symbol]
    np.testing.assert_array_equal(out.select(others).prices_usd, base.select(others).prices_usd)


def test_depeg_weight_steps_when_durations_are_zero():
    w = ma.depeg_weight(np.arange(6.0), 2.0, 0.0, 1.0, 0.0, True)
    np.testing.assert_array_equal(w, [0, 0, 1, 0, 0, 0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LSTDepeg(1.5), r"LSTDepeg\.discount_frac=1\.5 is out of range; allowed \(0, 1\)"),
        (lambda: LSTDepeg(0.0), r"LSTDepeg\.discount_frac=0\.0 is out of range"),
        (lambda: LSTDepeg(0.1, start_h=-1), r"LSTDepeg\.start_h=-1 is out of range; allowed \[0,"),
        (lambda: LSTDepeg(0.1, recover_h=math.nan), r"LSTDepeg\.recover_h=nan is out of range"),
        (lambda: LSTDepeg(0.1, recovers=1), r"LSTDepeg\.recovers=1 is not allowed; allowed True"),
        (
            lambda: LSTDepeg(0.1, symbol="rETH"),
            r"LSTDepeg\.symbol='rETH' is not allowed; allowed stETH",
        ),
        (
            lambda: StablecoinDepeg("USDD", 0.9),
            r"StablecoinDepeg\.symbol='USDD' is not allowed \(did you mean 'USDT'\?\); allowed DAI",
        ),
        (
            lambda: StablecoinDepeg("USDC", 1.0),
            r"StablecoinDepeg\.depeg_price_usd=1\.0 is no depeg",
        ),
        (
            lambda: StablecoinDepeg("USDC", 2.5),
            r"StablecoinDepeg\.depeg_price_usd=2\.5 is out of range; allowed \(0, 2\]",
        ),
        (
            lambda: StablecoinDepeg("DAI", 0.9, move_h=-2),
            r"StablecoinDepeg\.move_h=-2 is out of range",
        ),
    ],
)
def test_overlay_validation_names_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_overlay_on_paths_without_the_symbol():
    paths = simulate(2, 3, seed=0, symbols=("WETH", "USDC"))
    with pytest.raises(
        ValueError, match=r"symbol 'stETH' is not in the paths.*; allowed WETH, USDC"
    ):
        LSTDepeg(0.05).apply(paths)


def test_paths_validation():
    with pytest.raises(ValueError, match=r"MultiAssetPaths\.prices_usd has shape \(3, 2\)"):
        MultiAssetPaths(np.ones((3, 2)), ("WETH",), 1.0)
    with pytest.raises(ValueError, match=r"non-finite or <= 0"):
        MultiAssetPaths(-np.ones((3, 2, 1)), ("WETH",), 1.0)
    with pytest.raises(ValueError, match=r"MultiAssetPaths\.dt_h=0 is out of range"):
        MultiAssetPaths(np.ones((3, 2, 1)), ("WETH",), 0.0)


# ----------------------------------------------------------------------------- CSV


HOURS = [f"2021-05-19T{h:02d}:00:00Z" for h in range(6)]


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (
            "timestamp,WETH,WBTX",
            [f"{t},1,2" for t in HOURS],
            r"unknown symbol column 'WBTX' \(did you mean 'WBTC'\?\); allowed WETH, WBTC, stETH",
        ),
        ("timestamp,WETH,weth", [f"{t},1,2" for t in HOURS], r"symbol 'WETH' appears twice"),
        (
            "price,WETH",
            [f"{t},1" for t in HOURS],
            r"first column 'price' is not a time column; allowed timestamp",
        ),
        ("timestamp", HOURS, r"allowed a time column then one price column per asset"),
        (
            "timestamp,WETH,WBTC",
            [f"{HOURS[0]},1,2", f"{HOURS[1]},1"],
            r"line 3 has 2 fields; allowed 3 as in the header",
        ),
        (
            "timestamp,WETH,WBTC",
            [f"{HOURS[0]},1,2", f"{HOURS[1]},1,nan"],
            r"line 3: WBTC price nan is not allowed; allowed finite > 0",
        ),
        (
            "timestamp,WETH,WBTC",
            [f"{HOURS[0]},1,2", f"{HOURS[1]},,2"],
            r"line 3: WETH price is empty; allowed a finite price > 0 in every row \(leave the column out",
        ),
        (
            "timestamp,WETH,WBTC",
            [f"{HOURS[0]},1,2", f"{HOURS[1]},abc,2"],
            r"line 3: WETH price 'abc' is not a number",
        ),
        (
            "timestamp,WETH,WBTC",
            [f"{HOURS[0]},1,2", f"{HOURS[1]},0,2"],
            r"line 3: WETH price 0 is not allowed",
        ),
        (
            "timestamp,WETH",
            [f"{HOURS[1]},1", f"{HOURS[0]},1"],
            r"line 3: time '2021-05-19T00:00:00Z' is not after the previous row's; allowed strictly increasing",
        ),
        (
            "timestamp,WETH",
            [f"{HOURS[0]},1", f"{HOURS[0]},1"],
            r"line 3: time .* is not after the previous row's",
        ),
        (
            "timestamp,WETH",
            ["yesterday,1", f"{HOURS[0]},1"],
            r"line 2: time 'yesterday' is neither ISO-8601",
        ),
        (
            "timestamp,WETH",
            ["1621382400,1", f"{HOURS[1]},1"],
            r"line 3: time .* does not match the earlier rows' format",
        ),
        ("timestamp,WETH", [f"{HOURS[0]},1"], r"1 data row\(s\); allowed at least 2"),
        (
            "timestamp,WETH",
            [f"{t},1" for t in HOURS] + ["2021-05-25T00:00:00Z,1"],
            r"line 8: a gap of 139 h, 139 x the median spacing; allowed up to 24 x",
        ),
    ],
)
def test_csv_errors_are_one_clear_line(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "p.csv", header, rows)
    with pytest.raises(ValueError, match=message) as err:
        read_multiasset_csv(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_csv_reads_symbols_and_unix_ms(tmp_path):
    rows = [f"{1621382400000 + 3600000 * i},{3000 - i},{1.0 + i / 1000}" for i in range(4)]
    table = read_multiasset_csv(write_csv(tmp_path / "p.csv", "Timestamp,weth,usdc", rows))
    assert table.symbols == ("WETH", "USDC")
    np.testing.assert_array_equal(np.diff(table.times_s), 3600.0)
    assert table.times_s[0] == 1621382400.0
    with pytest.raises(ValueError, match=r"no such file"):
        read_multiasset_csv(tmp_path / "missing.csv")


# ----------------------------------------------------------------------------- replay


def _weth_file(tmp_path: Path, prices: np.ndarray) -> Path:
    rows = [f"{1609459200 + 3600 * i},{float(x)!r}" for i, x in enumerate(prices)]
    return write_csv(tmp_path / "weth.csv", "timestamp,WETH", rows)


def test_replay_reproduces_the_file_and_is_seeded(tmp_path):
    rows = [f"{HOURS[i]},{3000 * (1 - 0.05 * i)},{0.999 - i / 1000}" for i in range(6)]
    path = write_csv(tmp_path / "p.csv", "timestamp,WETH,USDC", rows)
    a = replay(path, num_paths=50, num_rows=31, dt_h=1 / 6, seed=5)
    b = replay(path, num_paths=50, num_rows=31, dt_h=1 / 6, seed=5)
    c = replay(path, num_paths=50, num_rows=31, dt_h=1 / 6, seed=6)
    assert a.replayed == ("WETH", "USDC") and a.prices_usd.shape == (31, 50, 6)
    np.testing.assert_array_equal(a.prices_usd, b.prices_usd)
    assert not np.array_equal(a.price("WBTC"), c.price("WBTC"))
    hourly = a.prices_usd[::6]
    assert_rows(hourly[:, :, 0], 3000 * (1 - 0.05 * np.arange(6)))
    assert_rows(hourly[:, :, SYMBOLS.index("USDC")], 0.999 - np.arange(6) / 1000)
    fast = replay(path, num_paths=2, num_rows=6, dt_h=0.5, speed=2.0, seed=5)  # a file hour a row
    assert_rows(fast.price("WETH"), 3000 * (1 - 0.05 * np.arange(6)))
    assert fast.dt_h == 0.5
    with pytest.raises(
        ValueError, match=r"p\.csv' covers 31 row\(s\) of 0\.166667 h .*allowed num_rows <= 31"
    ):
        replay(path, num_paths=2, num_rows=32, dt_h=1 / 6)
    with pytest.raises(ValueError, match=r"start_usd\['WETH'\] given but WETH is replayed"):
        replay(path, num_paths=2, num_rows=3, start_usd={"WETH": 1.0})


def test_conditioned_paths_correlate_with_the_replayed_asset_as_fitted(tmp_path):
    """A WETH path drawn from the fitted process, replayed: WBTC simulated given it has the fitted
    beta and correlation to WETH (pooled over 3,000 hours x 100 paths)."""
    p = fitted_params()
    weth = simulate(1, 3001, dt_h=1.0, seed=21).price("WETH")[:, 0]
    paths = replay(_weth_file(tmp_path, weth), num_paths=100, num_rows=3001, seed=22)
    z = innovations(factor_logs(paths), 1.0).reshape(3000, 100, len(FACTORS))
    x = z[:, :, 0].ravel()  # the replayed WETH moves, the same on every path
    total = p.total_cov(1.0)
    for sym in ("WBTC", "stETH_per_ETH", "USDC"):
        j = FACTORS.index(sym)
        y = z[:, :, j].ravel()
        beta = total[j, 0] / total[0, 0]
        corr = total[j, 0] / math.sqrt(total[0, 0] * total[j, j])
        xc, yc = x - x.mean(), y - y.mean()
        assert (xc * yc).sum() / (xc * xc).sum() == pytest.approx(beta, rel=0.05, abs=0.003), sym
        assert np.corrcoef(x, y)[0, 1] == pytest.approx(corr, abs=0.03), sym
    r = np.diff(np.log(paths.prices_usd), axis=0)
    # the paths differ from each other only by the conditional noise
    assert r[:, :, 1].std(axis=1).mean() > 0


def test_a_replayed_crash_moves_the_others_by_the_fitted_beta(tmp_path):
    p = fitted_params()
    weth = np.array([3000.0, 3000.0, 2100.0, 2100.0])
    paths = replay(_weth_file(tmp_path, weth), num_paths=4000, num_rows=4, seed=1)
    total = p.total_cov(1.0)
    beta = total[1, 0] / total[0, 0]
    cond_sd = math.sqrt(total[1, 1] - beta * total[1, 0])
    move = np.log(paths.price("WBTC")[2] / paths.price("WBTC")[1])
    # conditional mean of the WBTC noise given the WETH move (both carry the drift and jump mean)
    m = -0.5 * np.diag(p.cov_per_h)[VI] + p.jump_prob(1.0) * p.jump_mean_log
    expected = m[1] + beta * (math.log(0.7) - m[0])
    assert move.mean() == pytest.approx(expected, abs=4 * cond_sd / math.sqrt(move.size))
    assert move.std() == pytest.approx(cond_sd, rel=0.05)


def test_a_calm_replay_never_invents_a_crash(tmp_path):
    """Replayed WETH calm: WBTC's hourly moves stay within 6 conditional sds (Gaussian: never in
    200k draws); without the replay the fitted common jumps break that bound."""
    p = fitted_params()
    weth = 3000.0 * np.exp(0.001 * np.sin(np.arange(1001)))
    paths = replay(_weth_file(tmp_path, weth), num_paths=200, num_rows=1001, seed=3)
    total = p.total_cov(1.0)
    cond_sd = math.sqrt(total[1, 1] - total[1, 0] ** 2 / total[0, 0])
    r = np.diff(np.log(paths.price("WBTC")), axis=0)
    assert np.abs(r - r.mean()).max() < 6 * cond_sd
    stables = paths.select(("DAI", "USDC", "USDT")).prices_usd
    assert np.abs(stables - 1.0).max() < 0.03
    free = simulate(200, 1001, seed=3).price("WBTC")
    rf = np.diff(np.log(free), axis=0)
    assert np.abs(rf - rf.mean()).max() > 6 * cond_sd


def test_replaying_steth_alone_conditions_weth_and_the_ratio(tmp_path):
    rows = [f"{HOURS[i]},{3000 * (1 - 0.02 * i)}" for i in range(6)]
    path = write_csv(tmp_path / "p.csv", "timestamp,stETH", rows)
    paths = replay(path, num_paths=500, num_rows=6, seed=4)
    assert_rows(paths.price("stETH"), 3000 * (1 - 0.02 * np.arange(6)))
    # WETH carries most of the fall (its variance dwarfs the ratio's), not none of it
    weth_fall = np.log(paths.price("WETH")[-1] / paths.price("WETH")[0]).mean()
    assert weth_fall < 0.5 * math.log(0.9)
    ratio = paths.price("stETH") / paths.price("WETH")
    assert np.abs(ratio - 1).max() < 0.1


def test_replaying_every_symbol_gives_identical_paths(tmp_path):
    rows = [f"{HOURS[i]},{3000 - i},{40000 + i},{2990 - i},1.0,1.001,0.999" for i in range(6)]
    path = write_csv(tmp_path / "p.csv", "timestamp," + ",".join(SYMBOLS), rows)
    paths = replay(path, num_paths=3, num_rows=6)
    assert paths.replayed == SYMBOLS
    np.testing.assert_array_equal(paths.prices_usd[:, 0], paths.prices_usd[:, 2])


# ----------------------------------------------------------------------------- named scenarios


def test_named_scenarios_build_and_apply_their_overlays():
    for name, sc in ma.SCENARIOS.items():
        paths = sc.build(4, 25, dt_h=1.0, seed=1)
        assert paths.prices_usd.shape == (25, 4, len(SYMBOLS)), name
    base = ma.get_scenario("multiasset_2021").build(4, 200, seed=1)
    dep = ma.get_scenario("usdc_depeg").build(4, 200, seed=1)
    rel = dep.price("USDC") / base.price("USDC")
    np.testing.assert_allclose(rel[24:37], 0.87)
    np.testing.assert_array_equal(dep.price("WETH"), base.price("WETH"))
    calm = ma.get_scenario("multiasset_2021_no_jumps").params()
    assert calm.jump_rate_per_h == 0.0
    with pytest.raises(
        ValueError, match=r"unknown multi-asset scenario 'usdc_depg' \(did you mean"
    ):
        ma.get_scenario("usdc_depg")


def test_a_scenario_beside_a_price_file(tmp_path):
    rows = [f"{HOURS[i]},{3000 * (1 - 0.05 * i)}" for i in range(6)]
    path = write_csv(tmp_path / "p.csv", "timestamp,stETH", rows)
    paths = ma.get_scenario("usdc_depeg").build(3, 6, seed=0, price_csv=path)
    assert paths.replayed == ("stETH",)
    with pytest.raises(
        ValueError, match=r"scenario 'steth_depeg' moves stETH \(LSTDepeg\) but stETH is replayed"
    ):
        ma.get_scenario("steth_depeg").build(3, 6, seed=0, price_csv=path)
