"""The two built-in drivers: ``calm`` (low-volatility GBM) and ``shock`` (a fall, then a drift)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import HOURS_PER_YEAR
from .base import Scenario, ScenarioContext, calm_drivers, check_knob, register
from .processes import gbm_log_path


def gbm_paths(
    ctx: ScenarioContext, start: float, vol_annual: float, drift_annual: float = 0.0
) -> np.ndarray:
    """Geometric Brownian motion ``[S, E]`` sampled at the end of each substep."""
    dt = ctx.substep_h / HOURS_PER_YEAR
    mean_log = (drift_annual - 0.5 * vol_annual**2) * dt
    logp = gbm_log_path(
        ctx.rng, ctx.num_substeps, ctx.num_envs, mean_log, vol_annual * np.sqrt(dt), False
    )
    return start * np.exp(logp)


def _calm(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    check_knob("calm", "vol_annual", knobs["vol_annual"], 0.0, 5.0)
    price = gbm_paths(ctx, ctx.params.market.initial_price_usd, knobs["vol_annual"])
    return calm_drivers(ctx, price, knobs["gas_gwei"])


def shock_path(ctx: ScenarioContext, knobs: dict[str, Any]) -> np.ndarray:
    """A linear-in-log fall by ``drop_frac`` over ``drop_hours`` from ``start_hour``, then GBM.

    The noise is drawn the same way whatever the drop, so a deeper drop gives a lower path at
    every substep, seed for seed.
    """
    t = ctx.times_h
    progress = np.clip((t - knobs["start_hour"]) / max(knobs["drop_hours"], 1e-9), 0.0, 1.0)
    level = np.exp(np.log1p(-knobs["drop_frac"]) * progress)
    noise = gbm_paths(ctx, 1.0, knobs["vol_annual"])
    after = t >= knobs["start_hour"] + knobs["drop_hours"]
    # noise only after the fall has finished, relative to its value there
    idx = int(np.argmax(after)) if after.any() else len(t)
    rel = np.ones_like(noise)
    if idx < len(t):
        rel[idx:] = noise[idx:] / noise[idx]
    return ctx.params.market.initial_price_usd * level[:, None] * rel


def _shock(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    check_knob("shock", "drop_frac", knobs["drop_frac"], 0.0, 0.99)
    check_knob("shock", "drop_hours", knobs["drop_hours"], 0.0, 1000.0)
    check_knob("shock", "start_hour", knobs["start_hour"], 0.0, 10_000.0)
    check_knob("shock", "vol_annual", knobs["vol_annual"], 0.0, 5.0)
    return calm_drivers(ctx, shock_path(ctx, knobs), knobs["gas_gwei"])


register(
    Scenario(
        name="calm",
        kind="synthetic",
        description="Geometric Brownian motion at a low volatility; normal liquidity and gas",
        source="synthetic: GBM(vol_annual)",
        build=_calm,
        knobs={"vol_annual": 0.4, "gas_gwei": 30.0},
    )
)
register(
    Scenario(
        name="shock",
        kind="synthetic",
        description="The price falls by drop_frac over drop_hours, then drifts as GBM",
        source="synthetic: log-linear fall + GBM(vol_annual)",
        build=_shock,
        knobs={
            "drop_frac": 0.3,
            "drop_hours": 3.0,
            "start_hour": 1.0,
            "vol_annual": 0.8,
            "gas_gwei": 30.0,
        },
    )
)
