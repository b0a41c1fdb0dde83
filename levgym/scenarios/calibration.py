"""Calibration of the scenario library on the shipped market data (``levgym/data``).

:func:`calibrate` computes every fitted number from the data; :data:`CALIBRATED` holds the same
numbers as literals, and the registered scenarios take their defaults from it (a test checks
that the two agree). Regenerate after changing a method or the data with::

    python -m levgym.scenarios.calibration

Methods (ASSUMPTIONS.md, "Scenarios and calibration", states them with the numbers):

- GBM: annualized standard deviation of hourly log returns; realized volatility of
  non-overlapping 30-day blocks, 25th percentile = calm, 90th percentile = high volatility.
- Merton: jumps are hourly returns farther than 4 sigma from the median, sigma re-estimated on
  the remaining returns until it stops changing; jump rate = jumps per hour, jump size = mean
  and standard deviation of the jump returns, diffusion volatility = the remaining returns.
  ``crash_*``: the same threshold applied to the three crash days (2020-03-12, 2020-11-26,
  2021-05-19, the 24 hourly bars opening on each UTC date).
- GARCH(1,1): Gaussian quasi-maximum likelihood on demeaned hourly returns with variance
  targeting (``omega = (1 - alpha - beta) * sample variance``), maximized by a zooming grid.
- Congestion: log 90th-percentile gas of each 10-minute bucket regressed on the log trailing
  one-hour realized volatility of the 10-minute ETH closes with a fixed effect per day (six days
  whose gas and price times coincide); reference level = the average over days of the day
  means; residuals fitted as AR(1).
- Drought: log of the Uniswap v2 pool's liquidity ``sqrt(reserve_DAI * reserve_WETH)`` relative
  to the day's first value regressed (through the origin) on the log of the running minimum of
  the pool price relative to its first value; pooled over the six days and for the worst day.
- Depeg: the highest DAI/USD 10-minute high on 2020-03-12.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine.params import HOURS_PER_YEAR
from . import data
from .processes import trailing_realized_vol

SIG_DIGITS = 4
JUMP_THRESHOLD_SIGMA = 4.0
VOL_BLOCK_H = 720
CALM_QUANTILE = 0.25
HIGH_QUANTILE = 0.90
CRASH_DAYS_UTC = ("2020-03-12", "2020-11-26", "2021-05-19")

# The output of calibrate(), rounded to SIG_DIGITS significant digits. Scenario defaults read
# these; tests/scenarios/test_calibration.py checks that calibrate() still returns them.
CALIBRATED: dict[str, Any] = {
    "hourly_returns": 35486,
    "vol_annual": 1.098,
    "calm_vol_annual": 0.7556,
    "high_vol_annual": 1.669,
    "merton_vol_annual": 0.8456,
    "merton_jump_rate_per_h": 0.01696,
    "merton_jump_mean_log": -0.004659,
    "merton_jump_sd_log": 0.05793,
    "crash_vol_annual": 1.571,
    "crash_jump_rate_per_h": 0.25,
    "crash_jump_mean_log": -0.04728,
    "crash_jump_sd_log": 0.07594,
    "garch_omega": 3.21e-06,
    "garch_alpha": 0.1136,
    "garch_beta": 0.863,
    "mean_log_return_per_h": 7.049e-05,
    "gas_vol_elasticity": 0.7025,
    "gas_ref_gwei": 165.7,
    "gas_ref_vol_annual": 2.284,
    "gas_ar_phi": 0.8849,
    "gas_noise_sd_log": 0.2096,
    "drought_elasticity": 0.3867,
    "drought_elasticity_worst": 1.925,
    "dai_peak_usd": 1.126,
}


def round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    """``x`` rounded to ``digits`` significant digits."""
    return float(f"{x:.{digits}g}") if x != 0 else 0.0


def gbm_vols(returns: np.ndarray) -> dict[str, float]:
    """Overall, calm and high annualized volatility of hourly log returns."""
    n = returns.size // VOL_BLOCK_H
    blocks = returns[: n * VOL_BLOCK_H].reshape(n, VOL_BLOCK_H)
    vols = blocks.std(axis=1) * math.sqrt(HOURS_PER_YEAR)
    return {
        "vol_annual": float(returns.std() * math.sqrt(HOURS_PER_YEAR)),
        "calm_vol_annual": float(np.quantile(vols, CALM_QUANTILE)),
        "high_vol_annual": float(np.quantile(vols, HIGH_QUANTILE)),
    }


def jump_threshold(returns: np.ndarray, k: float = JUMP_THRESHOLD_SIGMA) -> tuple[float, float]:
    """(center, sigma): returns with ``|r - center| > k * sigma`` are jumps; sigma is the standard
    deviation of the other returns (fixed point, started from the MAD estimate)."""
    center = float(np.median(returns))
    sigma = 1.4826 * float(np.median(np.abs(returns - center)))
    for _ in range(100):
        new = float(returns[np.abs(returns - center) <= k * sigma].std())
        if abs(new - sigma) <= 1e-12:
            break
        sigma = new
    return center, sigma


def split_jumps(
    returns: np.ndarray, center: float, sigma: float, dt_h: float = 1.0
) -> dict[str, float]:
    """Jump rate, jump size and diffusion volatility of ``returns`` at a given threshold."""
    jump = np.abs(returns - center) > JUMP_THRESHOLD_SIGMA * sigma
    j = returns[jump]
    return {
        "vol_annual": float(returns[~jump].std() * math.sqrt(HOURS_PER_YEAR / dt_h)),
        "jump_rate_per_h": float(jump.sum() / (returns.size * dt_h)),
        "jump_mean_log": float(j.mean()) if j.size else 0.0,
        "jump_sd_log": float(j.std()) if j.size > 1 else 0.0,
    }


def crash_day_returns() -> np.ndarray:
    """Hourly log returns of the bars opening on the :data:`CRASH_DAYS_UTC` dates."""
    t, c = data.hourly_closes()
    r = np.diff(np.log(c))
    t1 = t[1:]
    ok = np.diff(t) == data.HOUR_S
    keep = np.zeros_like(ok)
    for day in CRASH_DAYS_UTC:
        s = data.parse_utc(day + "T00:00:00Z")
        keep |= (t1 >= s) & (t1 < s + 86400.0)
    return r[ok & keep]


def garch_nll(r2: np.ndarray, var: float, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Gaussian negative log-likelihood (up to a constant) of GARCH(1,1) with variance targeting,
    for arrays of ``alpha``, ``beta`` at once; the variance starts at the sample variance."""
    omega = (1.0 - alpha - beta) * var
    s2 = np.full(alpha.shape, var)
    total = np.zeros(alpha.shape)
    for x in r2:
        total += np.log(s2) + x / s2
        s2 = omega + alpha * x + beta * s2
    return 0.5 * total


def fit_garch(returns: np.ndarray, passes: int = 9, points: int = 11) -> dict[str, float]:
    """GARCH(1,1) by zooming grid search over (alpha, alpha + beta); returns omega, alpha, beta."""
    r = returns - returns.mean()
    r2 = r * r
    var = float(r2.mean())
    a_lo, a_hi, p_lo, p_hi = 0.005, 0.4, 0.5, 0.9995
    best_a = best_p = 0.0
    for _ in range(passes):
        a, p = np.meshgrid(np.linspace(a_lo, a_hi, points), np.linspace(p_lo, p_hi, points))
        a, p = a.ravel(), p.ravel()
        ok = a < p
        a, p = a[ok], p[ok]
        i = int(np.argmin(garch_nll(r2, var, a, p - a)))
        best_a, best_p = float(a[i]), float(p[i])
        wa, wp = (a_hi - a_lo) / (points - 1), (p_hi - p_lo) / (points - 1)
        a_lo, a_hi = max(1e-5, best_a - wa), best_a + wa
        p_lo, p_hi = max(a_lo + 1e-5, best_p - wp), min(0.99999, best_p + wp)
    return {
        "garch_omega": (1.0 - best_p) * var,
        "garch_alpha": best_a,
        "garch_beta": best_p - best_a,
    }


def fit_congestion() -> dict[str, float]:
    """Gas (90th percentile) against trailing one-hour realized volatility on the stress days."""
    xs, ys, day_of = [], [], []
    for day in data.stress_days():
        t, _, close = data.eth_10min(day)
        gt, gas = data.gas_10min(day)
        rv = trailing_realized_vol(close[:, None], data.BAR_10MIN_S / data.HOUR_S)[:, 0]
        gas_at = dict(zip(gt.tolist(), gas.tolist(), strict=True))
        # only bars whose trailing hour is six consecutive 10-minute returns
        steps = np.diff(t)
        for i in range(6, t.size):
            if np.all(steps[i - 6 : i] == data.BAR_10MIN_S) and t[i] in gas_at and rv[i] > 0:
                xs.append(math.log(rv[i]))
                ys.append(math.log(gas_at[t[i]]))
                day_of.append(day)
    x, y, d = np.array(xs), np.array(ys), np.array(day_of)
    days = sorted(set(day_of))
    xd, yd = x.copy(), y.copy()
    x_means, y_means = [], []
    for day in days:
        m = d == day
        x_means.append(x[m].mean())
        y_means.append(y[m].mean())
        xd[m] -= x[m].mean()
        yd[m] -= y[m].mean()
    b = float((xd * yd).sum() / (xd * xd).sum())
    res = yd - b * xd
    num = den = 0.0
    for day in days:
        u = res[d == day]
        num += float((u[1:] * u[:-1]).sum())
        den += float((u[:-1] ** 2).sum())
    phi = num / den
    innov = np.concatenate([res[d == day][1:] - phi * res[d == day][:-1] for day in days])
    return {
        "gas_vol_elasticity": b,
        "gas_ref_gwei": math.exp(float(np.mean(y_means))),
        "gas_ref_vol_annual": math.exp(float(np.mean(x_means))),
        "gas_ar_phi": phi,
        "gas_noise_sd_log": float(innov.std()),
    }


def fit_drought() -> dict[str, float]:
    """Elasticity of pool liquidity to the running drawdown of the pool price."""
    xs, ys, per_day = [], [], []
    for day in data.reserve_days():
        _, dai, weth = data.reserves_10min(day)
        liq = np.sqrt(dai * weth)
        price = dai / weth
        x = np.log(np.minimum.accumulate(price) / price[0])
        y = np.log(liq / liq[0])
        xs.append(x)
        ys.append(y)
        per_day.append(float((x * y).sum() / (x * x).sum()))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return {
        "drought_elasticity": float((x * y).sum() / (x * x).sum()),
        "drought_elasticity_worst": max(per_day),
    }


def calibrate() -> dict[str, Any]:
    """Every fitted number, computed from the shipped data and rounded to 4 significant digits."""
    r = data.hourly_log_returns()
    out: dict[str, Any] = {"hourly_returns": int(r.size)}
    out.update(gbm_vols(r))
    center, sigma = jump_threshold(r)
    out.update({f"merton_{k}": v for k, v in split_jumps(r, center, sigma).items()})
    out.update(
        {f"crash_{k}": v for k, v in split_jumps(crash_day_returns(), center, sigma).items()}
    )
    out.update(fit_garch(r))
    out["mean_log_return_per_h"] = float(r.mean())
    out.update(fit_congestion())
    out.update(fit_drought())
    _, _, high, _ = data.dai_10min()
    out["dai_peak_usd"] = float(high.max())
    return {k: v if k == "hourly_returns" else round_sig(float(v)) for k, v in out.items()}


def main() -> None:
    """Print the calibration as a Python literal (paste into :data:`CALIBRATED`)."""
    print("CALIBRATED: dict[str, Any] = {")
    for k, v in calibrate().items():
        print(f'    "{k}": {v!r},')
    print("}")


if __name__ == "__main__":
    main()
