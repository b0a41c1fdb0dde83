"""Markov-switching regimes: calm, turbulent and crash markets that last hours to days.

The regime follows a continuous-time Markov chain: a regime lasts an exponential time with its
own mean, then moves to another with the probabilities of its row. Within a regime the price
is a jump-diffusion with that regime's volatility and jumps (the calibrated calm, high-volatility
and crash-day fits of :mod:`levgym.scenarios.calibration`), so a governor that reads the
volatility and the drawdown can tell which regime it is in, and the regime persists long
enough for that to pay. Pool liquidity withdraws with the drawdown and gas rises with
realized volatility (the calibrated :class:`~levgym.scenarios.overlays.Drought` and
:class:`~levgym.scenarios.overlays.Congestion` overlays), as they did on the crash days.

The durations and moves are set so that the distribution of a week's largest drawdown matches
ETH's hourly history 2017-2021 in its tail (90/95/99% quantiles 0.25/0.31/0.45 against
0.25/0.32/0.46 in the data, 300 paths; the median is higher, 0.14 against 0.10, since the calm
regime's volatility is the calm quartile of 30-day windows, which includes their jumps).

Registered: ``regime_switching`` (starts calm, the training and evaluation mixture of
``levgym/Governance-v1``) and ``regime_stress`` (starts turbulent, crashes more often: a
harder evaluation mix).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import HOURS_PER_YEAR
from .base import Scenario, ScenarioContext, check_knob, register
from .calibration import CALIBRATED as C
from .overlays import Congestion, Drought, compose

REGIMES = ("calm", "turbulent", "crash")
"""Regime codes 0, 1, 2."""


def regime_path(
    rng: np.random.Generator,
    num_substeps: int,
    num_envs: int,
    dt_h: float,
    mean_hours: np.ndarray,
    moves: np.ndarray,
    start_probs: np.ndarray,
) -> np.ndarray:
    """Regime codes ``[S, E]`` of a continuous-time Markov chain sampled at each substep.

    ``mean_hours[r]`` is the mean time in regime ``r`` (exponential); ``moves[r]`` the
    probabilities of the regime it moves to (``moves[r, r] == 0``); ``start_probs`` those of
    the regime at row 0. Random numbers are drawn per env in a fixed order (start, then a
    duration and a destination per spell), so env ``j`` of a batch equals a batch of one drawn
    from the same generator state only for ``j == 0``; paths are reproducible from the seed.
    """
    out = np.empty((num_substeps, num_envs), dtype=np.int64)
    total_h = num_substeps * dt_h
    for j in range(num_envs):
        r = int(rng.choice(len(REGIMES), p=start_probs))
        t = 0.0
        while True:
            dur = float(rng.exponential(mean_hours[r]))
            lo = int(np.ceil(t / dt_h - 1e-9))
            t_end = t + dur
            hi = min(int(np.ceil(t_end / dt_h - 1e-9)), num_substeps)
            out[lo:hi, j] = r
            if hi >= num_substeps or t_end >= total_h:
                out[hi:, j] = r
                break
            r = int(rng.choice(len(REGIMES), p=moves[r]))
            t = t_end
    return out


def _knob_arrays(knobs: dict[str, Any]) -> dict[str, np.ndarray]:
    name = "regime_switching"
    for r in REGIMES:
        check_knob(name, f"{r}_hours", knobs[f"{r}_hours"], 0.1, 10_000.0)
        check_knob(name, f"{r}_vol_annual", knobs[f"{r}_vol_annual"], 0.0, 10.0)
        check_knob(name, f"{r}_jump_rate_per_h", knobs[f"{r}_jump_rate_per_h"], 0.0, 10.0)
        check_knob(name, f"{r}_jump_mean_log", knobs[f"{r}_jump_mean_log"], -1.0, 1.0)
        check_knob(name, f"{r}_jump_sd_log", knobs[f"{r}_jump_sd_log"], 0.0, 1.0)
        check_knob(name, f"start_{r}", knobs[f"start_{r}"], 0.0, 1.0)
    for key in ("calm_to_crash", "turbulent_to_crash", "crash_to_calm"):
        check_knob(name, key, knobs[key], 0.0, 1.0)
    start = np.array([knobs[f"start_{r}"] for r in REGIMES], dtype=np.float64)
    if start.sum() <= 0:
        raise ValueError(
            "scenario.start_calm + start_turbulent + start_crash = 0; allowed a positive sum"
        )
    moves = np.array(
        [
            [0.0, 1.0 - knobs["calm_to_crash"], knobs["calm_to_crash"]],
            [1.0 - knobs["turbulent_to_crash"], 0.0, knobs["turbulent_to_crash"]],
            [knobs["crash_to_calm"], 1.0 - knobs["crash_to_calm"], 0.0],
        ]
    )
    return {
        "mean_hours": np.array([knobs[f"{r}_hours"] for r in REGIMES], dtype=np.float64),
        "vol": np.array([knobs[f"{r}_vol_annual"] for r in REGIMES], dtype=np.float64),
        "jump_rate": np.array([knobs[f"{r}_jump_rate_per_h"] for r in REGIMES]),
        "jump_mean": np.array([knobs[f"{r}_jump_mean_log"] for r in REGIMES]),
        "jump_sd": np.array([knobs[f"{r}_jump_sd_log"] for r in REGIMES]),
        "moves": moves,
        "start": start / start.sum(),
    }


def regimes_and_price(knobs: dict[str, Any], ctx: ScenarioContext) -> tuple[np.ndarray, np.ndarray]:
    """The regime codes ``[S, E]`` and the price path ``[S, E]`` of one draw (row 0 is the start
    price; the increment into row ``k`` uses the regime of row ``k``)."""
    k = _knob_arrays(knobs)
    s, e, dt_h = ctx.num_substeps, ctx.num_envs, ctx.substep_h
    regime = regime_path(ctx.rng, s, e, dt_h, k["mean_hours"], k["moves"], k["start"])
    r = regime[1:]
    dt = dt_h / HOURS_PER_YEAR
    vol = k["vol"][r]
    z = ctx.rng.standard_normal(r.shape)
    n = ctx.rng.poisson(k["jump_rate"][r] * dt_h)
    zj = ctx.rng.standard_normal(r.shape)
    incr = -0.5 * vol**2 * dt + vol * np.sqrt(dt) * z
    incr = incr + n * k["jump_mean"][r] + np.sqrt(n) * k["jump_sd"][r] * zj
    start = float(knobs["start_price_usd"] or ctx.params.market.initial_price_usd)
    logp = np.zeros((s, e))
    np.cumsum(incr, axis=0, out=logp[1:])
    return regime, start * np.exp(logp)


def _build(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    check_knob("regime_switching", "start_price_usd", knobs["start_price_usd"], 0.0, 1e9)
    check_knob("regime_switching", "gas_gwei", knobs["gas_gwei"], 0.0, 20000.0)
    _, price = regimes_and_price(knobs, ctx)
    overlays = []
    if knobs["drought"]:
        overlays.append(Drought(knobs["drought_elasticity"], 1.0))
    if knobs["congestion"]:
        overlays.append(
            Congestion(
                C["gas_ref_gwei"],
                C["gas_vol_elasticity"],
                C["gas_ref_vol_annual"],
                C["gas_ar_phi"],
                C["gas_noise_sd_log"],
            )
        )
    return compose(ctx, price, *overlays, gas_gwei=float(knobs["gas_gwei"]))


REGIME_KNOBS: dict[str, Any] = {
    # calm: ETH's calm (25th percentile) 30-day volatility, no jumps; about 6 days
    "calm_hours": 144.0,
    "calm_vol_annual": C["calm_vol_annual"],
    "calm_jump_rate_per_h": 0.0,
    "calm_jump_mean_log": 0.0,
    "calm_jump_sd_log": 0.0,
    # turbulent: the high (90th percentile) volatility with ETH's hourly jumps; about a day
    "turbulent_hours": 24.0,
    "turbulent_vol_annual": C["high_vol_annual"],
    "turbulent_jump_rate_per_h": C["merton_jump_rate_per_h"],
    "turbulent_jump_mean_log": C["merton_jump_mean_log"],
    "turbulent_jump_sd_log": C["merton_jump_sd_log"],
    # crash: the jumps and volatility of the three crash days; about 6 hours
    "crash_hours": 6.0,
    "crash_vol_annual": C["crash_vol_annual"],
    "crash_jump_rate_per_h": C["crash_jump_rate_per_h"],
    "crash_jump_mean_log": C["crash_jump_mean_log"],
    "crash_jump_sd_log": C["crash_jump_sd_log"],
    # where a regime goes when it ends
    "calm_to_crash": 0.1,
    "turbulent_to_crash": 0.25,
    "crash_to_calm": 0.2,
    # the regime at the start
    "start_calm": 1.0,
    "start_turbulent": 0.0,
    "start_crash": 0.0,
    "drought": True,
    "drought_elasticity": C["drought_elasticity"],
    "congestion": True,
    "start_price_usd": 0.0,
    "gas_gwei": 30.0,
}

_SOURCE = (
    "synthetic: 3-regime continuous-time Markov chain; per regime a jump-diffusion with the "
    "calibrated calm, high-volatility and crash-day fits; drought and congestion overlays"
)
register(
    Scenario(
        name="regime_switching",
        kind="regime",
        description=(
            "Markov-switching calm (~6 days), turbulent (~1 day) and crash (~6 h) regimes; "
            "starts calm; liquidity dries up and gas rises in the falls; weekly drawdowns as ETH's"
        ),
        source=_SOURCE,
        build=_build,
        knobs=dict(REGIME_KNOBS),
    )
)
register(
    Scenario(
        name="regime_stress",
        kind="regime",
        description=(
            "regime_switching starting turbulent, crashing more often and for longer (~8 h)"
        ),
        source=_SOURCE,
        build=_build,
        knobs={
            **REGIME_KNOBS,
            "start_calm": 0.0,
            "start_turbulent": 1.0,
            "calm_to_crash": 0.3,
            "turbulent_to_crash": 0.5,
            "crash_hours": 8.0,
        },
    )
)


__all__ = ["REGIMES", "REGIME_KNOBS", "regime_path", "regimes_and_price"]
