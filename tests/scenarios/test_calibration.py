"""Calibration: the registered defaults equal what calibrate() computes from the shipped data,
and the synthetic processes have the volatility, jump frequency and clustering stated in
ASSUMPTIONS.md, within sampling error."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine.drivers import Drivers
from levgym.engine.params import HOURS_PER_YEAR, EngineParams
from levgym.scenarios import data, processes
from levgym.scenarios.base import ScenarioContext
from levgym.scenarios.calibration import CALIBRATED, calibrate
from levgym.scenarios.overlays import Congestion, Drought

C = CALIBRATED
ROOT = Path(__file__).resolve().parents[2]


def test_calibrated_literals_equal_what_the_data_gives() -> None:
    assert calibrate() == CALIBRATED


@pytest.mark.parametrize(
    ("scenario", "knob", "key"),
    [
        ("gbm_calm", "vol_annual", "calm_vol_annual"),
        ("gbm_high_vol", "vol_annual", "high_vol_annual"),
        ("merton_jumps", "vol_annual", "merton_vol_annual"),
        ("merton_jumps", "jump_rate_per_h", "merton_jump_rate_per_h"),
        ("merton_jumps", "jump_mean_log", "merton_jump_mean_log"),
        ("merton_jumps", "jump_sd_log", "merton_jump_sd_log"),
        ("merton_crash", "vol_annual", "crash_vol_annual"),
        ("merton_crash", "jump_rate_per_h", "crash_jump_rate_per_h"),
        ("merton_crash", "jump_mean_log", "crash_jump_mean_log"),
        ("merton_crash", "jump_sd_log", "crash_jump_sd_log"),
        ("garch_clustered", "omega", "garch_omega"),
        ("garch_clustered", "alpha", "garch_alpha"),
        ("garch_clustered", "beta", "garch_beta"),
        ("congestion", "gas_ref_gwei", "gas_ref_gwei"),
        ("congestion", "gas_vol_elasticity", "gas_vol_elasticity"),
        ("congestion", "gas_noise_sd_log", "gas_noise_sd_log"),
        ("liquidity_drought", "drought_elasticity", "drought_elasticity_worst"),
        ("black_thursday_2020", "drought_elasticity", "drought_elasticity"),
        ("crash_drought_congestion", "drought_elasticity", "drought_elasticity"),
        ("dai_depeg", "peak_usd", "dai_peak_usd"),
    ],
)
def test_registered_defaults_are_the_calibrated_numbers(scenario: str, knob: str, key: str) -> None:
    assert scenarios.get(scenario).knobs[knob] == CALIBRATED[key]


def test_assumptions_states_the_fitted_numbers() -> None:
    text = (ROOT / "ASSUMPTIONS.md").read_text()
    section = text.split("## Scenarios and calibration", 1)[1]
    for key, value in CALIBRATED.items():
        assert re.search(rf"`{key}`\s*\|\s*{re.escape(repr(value))}\s*\|", section), key


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_gbm_volatility() -> None:
    vol = C["high_vol_annual"]
    p = processes.gbm(rng(), 2001, 200, 1.0, 100.0, vol)
    r = np.diff(np.log(p), axis=0)
    est = r.std() * math.sqrt(HOURS_PER_YEAR)
    # standard error of a standard deviation from n normal draws: sigma / sqrt(2 n)
    assert abs(est - vol) < 4 * vol / math.sqrt(2 * r.size)


def _merton_exceed_prob(
    k: float, dt_h: float, vol: float, lam: float, mu: float, sd: float
) -> float:
    """P(|increment| > k) for the Merton increment over dt_h hours (Poisson mixture of normals)."""
    var_d = vol**2 * dt_h / HOURS_PER_YEAR
    total = 0.0
    for n in range(0, 40):
        w = math.exp(-lam * dt_h) * (lam * dt_h) ** n / math.factorial(n)
        m = -0.5 * var_d + n * mu
        s = math.sqrt(var_d + n * sd * sd)
        total += (
            w
            * 0.5
            * (math.erfc((k - m) / (s * math.sqrt(2))) + math.erfc((k + m) / (s * math.sqrt(2))))
        )
    return total


@pytest.mark.parametrize("prefix", ["merton", "crash"])
def test_merton_jump_frequency_and_volatility(prefix: str) -> None:
    vol, lam = C[f"{prefix}_vol_annual"], C[f"{prefix}_jump_rate_per_h"]
    mu, sd = C[f"{prefix}_jump_mean_log"], C[f"{prefix}_jump_sd_log"]
    p, jumps = processes.merton(rng(1), 2001, 500, 1.0, 100.0, vol, lam, mu, sd)
    n = jumps.size
    # jump frequency: Poisson counts, standard error sqrt(lam / n)
    assert abs(jumps.mean() - lam) < 4 * math.sqrt(lam / n)
    r = np.diff(np.log(p), axis=0)
    # diffusion volatility from the steps without a jump
    quiet = r[jumps == 0]
    est = quiet.std() * math.sqrt(HOURS_PER_YEAR)
    assert abs(est - vol) < 4 * vol / math.sqrt(2 * quiet.size)
    # the share of hours beyond the 4-sigma jump threshold of the data matches the model's
    k = 4 * C["merton_vol_annual"] / math.sqrt(HOURS_PER_YEAR)
    prob = _merton_exceed_prob(k, 1.0, vol, lam, mu, sd)
    share = float(np.mean(np.abs(r) > k))
    assert abs(share - prob) < 4 * math.sqrt(prob * (1 - prob) / n)


def test_garch_unconditional_volatility_and_clustering() -> None:
    om, a, b = C["garch_omega"], C["garch_alpha"], C["garch_beta"]
    p, var_path = processes.garch(rng(2), 4001, 400, 1.0, 100.0, om, a, b)
    r = np.diff(np.log(p), axis=0) + 0.5 * var_path  # remove the martingale correction
    uncond = om / (1 - a - b)
    assert abs(r.var() / uncond - 1) < 0.05
    # first autocorrelation of squared returns of GARCH(1,1) (Bollerslev 1986)
    rho1 = a * (1 - a * b - b * b) / (1 - 2 * a * b - b * b)
    x = r * r - (r * r).mean(axis=0)
    est = float((x[1:] * x[:-1]).sum() / (x * x).sum())
    # fourth moments exist (3a^2 + 2ab + b^2 < 1); the estimate is noisy: a wide band
    assert 3 * a * a + 2 * a * b + b * b < 1
    assert 0.5 * rho1 < est < 1.5 * rho1
    # and the hourly-scale volatility matches the data's (variance targeting)
    assert math.sqrt(uncond * HOURS_PER_YEAR) == pytest.approx(C["vol_annual"], rel=0.01)


def test_garch_substeps_keep_the_unconditional_variance() -> None:
    om, a, b = C["garch_omega"], C["garch_alpha"], C["garch_beta"]
    p, var_path = processes.garch(rng(3), 6 * 2000 + 1, 200, 1.0 / 6.0, 100.0, om, a, b)
    r = np.diff(np.log(p), axis=0) + 0.5 * var_path / 6.0
    hourly = r.reshape(2000, 6, 200).sum(axis=1)
    assert abs(hourly.var() / (om / (1 - a - b)) - 1) < 0.06


def test_bootstrap_matches_the_data() -> None:
    hist = data.hourly_log_returns()
    p = processes.block_bootstrap(rng(4), 6 * 240 + 1, 100, 1.0 / 6.0, 100.0, hist, 24, True)
    hourly = np.diff(np.log(p[::6]), axis=0)
    assert hourly.std() == pytest.approx(hist.std(), rel=0.1)
    assert abs(hourly.mean()) < 4 * hist.std() / math.sqrt(hourly.size / 24)
    # every hourly return is a historical one, demeaned
    pool = np.round(hist - hist.mean(), 12)
    assert np.isin(np.round(hourly[:, :5].ravel(), 12), pool).all()


def _ctx(S: int, E: int, seed: int = 0) -> ScenarioContext:
    params = EngineParams()
    return ScenarioContext(E, S, params.run.substep_h, params, rng(seed))


def test_congestion_gas_follows_volatility_with_the_fitted_elasticity() -> None:
    S, E = 6 * 24, 200
    ctx = _ctx(S, E)
    vols = np.exp(np.linspace(np.log(0.3), np.log(6.0), E))
    z = ctx.rng.standard_normal((S - 1, E))
    incr = vols * math.sqrt(ctx.substep_h / HOURS_PER_YEAR) * z
    price = processes.paths_from_increments(1000.0, incr)
    cong = Congestion(
        C["gas_ref_gwei"],
        C["gas_vol_elasticity"],
        C["gas_ref_vol_annual"],
        C["gas_ar_phi"],
        C["gas_noise_sd_log"],
    )
    gas = cong.apply(Drivers.from_price(price), ctx).gas_gwei
    rv = processes.trailing_realized_vol(price, ctx.substep_h)
    x, y = np.log(rv[6:]).ravel(), np.log(gas[6:]).ravel()
    slope = np.polyfit(x, y, 1)[0]
    assert slope == pytest.approx(C["gas_vol_elasticity"], abs=0.05)
    # at the reference volatility, the median gas is the reference gas
    near = np.abs(x - math.log(C["gas_ref_vol_annual"])) < 0.1
    assert np.exp(np.median(y[near])) == pytest.approx(C["gas_ref_gwei"], rel=0.1)


def test_drought_is_the_calibrated_power_of_the_running_drawdown() -> None:
    S, E = 30, 3
    ctx = _ctx(S, E)
    price = processes.gbm(ctx.rng, S, E, ctx.substep_h, 100.0, 3.0)
    d = Drought(C["drought_elasticity"]).apply(Drivers.from_price(price, arb_speed_frac=0.5), ctx)
    expect = (np.minimum.accumulate(price, axis=0) / price[0]) ** C["drought_elasticity"]
    np.testing.assert_allclose(d.liquidity_frac, expect)
    np.testing.assert_allclose(d.arb_speed_frac, 0.5 * expect)
