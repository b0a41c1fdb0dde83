"""Real crash replays: Black Thursday 2020, Compound's DAI oracle 2020-11-26, May 19 2021.

A replay's price path is the history as it happened: the 10-minute closes where the data has
them (one source for the whole stress day), the Binance spot hourly closes elsewhere in the
event's window. Each point sits at its bar's close time (the first 10-minute bar also gives its
open at the bar's start). Row ``k`` of the drivers is the price at ``start + k * substep_h * speed``
hours, by linear interpolation in log price between points, so at the defaults (10-minute
substeps, speed 1) every data point inside the run is reproduced exactly, and with it the start,
the minimum and the end. After the data ends the last value is held (price, gas, DAI and
liquidity alike); before it starts the first value is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from . import data
from .base import Scenario, ScenarioContext, check_knob, register
from .calibration import CALIBRATED
from .overlays import (
    DebtPricePath,
    Drought,
    GasPath,
    LiquidityPath,
    OracleBiasPath,
    bias_for_debt_oracle,
    compose,
)
from .processes import gbm, resample_log


@dataclass(frozen=True)
class ReplaySource:
    """Where a replay's data lives and where its default window starts."""

    event: str
    """Event label in the hourly crash-window file."""
    day_10min: str | None
    """Day label in the 10-minute ETH file, or None where there are no 10-minute bars."""
    start_utc: str
    """Default start of the window (UTC)."""


SOURCES: dict[str, ReplaySource] = {
    # The fall ran from 2020-03-12 to the low at 2020-03-13 01:00-02:00 UTC: starting at 03:00
    # puts the 10-minute day and the low inside the default 24 hours.
    "black_thursday_2020": ReplaySource(
        "black_thursday_2020-03-12", "03-12-2020", "2020-03-12T03:00:00Z"
    ),
    "compound_dai_oracle_2020": ReplaySource(
        "compound_dai_oracle_2020-11-26", None, "2020-11-26T00:00:00Z"
    ),
    "may19_2021": ReplaySource("may19_crash_2021-05-19", "05-19-2021", "2021-05-19T00:00:00Z"),
}

# Compound's oracle read DAI from Coinbase Pro, where it traded up to 1.30 "from approximately
# 12:00am to 1:00am PT" (08:00-09:00 UTC) on 2020-11-26 (Coinbase's post-mortem; the shipped
# data has no DAI feed for that day, so the spike's shape is modeled, not replayed).
COMPOUND_DAI_PRINT_USD = 1.30
COMPOUND_SPIKE_START_UTC_H = 8.0
COMPOUND_SPIKE_HOURS = 1.0


@cache
def price_points(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(unix_s, price) of a replay's whole event window, sorted, without duplicate times
    (cached, read-only: every episode of the replay starts from them)."""
    t, p = (np.array(a, dtype=np.float64) for a in _price_points(name))  # own copies
    t.setflags(write=False)
    p.setflags(write=False)
    return t, p


def _price_points(name: str) -> tuple[np.ndarray, np.ndarray]:
    src = SOURCES[name]
    t, p = data.crash_window_hourly(src.event)
    if src.day_10min is not None:
        bar, open_, close = data.eth_10min(src.day_10min)
        lo, hi = bar[0], bar[-1] + data.BAR_10MIN_S
        keep = (t < lo) | (t > hi)
        t = np.concatenate([t[keep], bar[:1], bar + data.BAR_10MIN_S])
        p = np.concatenate([p[keep], open_[:1], close])
        order = np.argsort(t, kind="stable")
        t, p = t[order], p[order]
    return t, p


def window_times(name: str, knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    """Unix seconds of each driver row for this replay and its knobs, ``[S]`` (cached,
    read-only: every episode of a replay with the same knobs and length has the same rows)."""
    return _window_times(
        name, knobs["start_offset_h"], knobs["speed"], ctx.num_substeps, ctx.substep_h
    )


@lru_cache(maxsize=64)
def _window_times(
    name: str, start_offset_h: float, speed: float, num_substeps: int, substep_h: float
) -> np.ndarray:
    t, _ = price_points(name)
    start = data.parse_utc(SOURCES[name].start_utc) + start_offset_h * data.HOUR_S
    if not (t[0] <= start < t[-1]):
        lo = (t[0] - data.parse_utc(SOURCES[name].start_utc)) / data.HOUR_S
        hi = (t[-1] - data.parse_utc(SOURCES[name].start_utc)) / data.HOUR_S
        raise ValueError(
            f"scenario.start_offset_h={start_offset_h:g} starts {name} outside its data "
            f"({data.utc_text(t[0])} .. {data.utc_text(t[-1])}); allowed [{lo:g}, {hi:g})"
        )
    grid = start + np.arange(num_substeps) * substep_h * speed * data.HOUR_S
    grid.setflags(write=False)
    return grid


@lru_cache(maxsize=64)
def _on_grid(series: str, grid_bytes: bytes) -> np.ndarray:
    """A replayed series at the row times ``grid_bytes`` (a grid's float64 bytes), cached
    read-only: ``price:<replay>`` (:func:`resample_log` of its price points), ``gas:<day>``,
    ``dai`` (the DAI 10-minute closes) or ``liquidity:<day>`` (the pool's liquidity relative to
    the first row)."""
    grid = np.frombuffer(grid_bytes, dtype=np.float64)
    kind, _, arg = series.partition(":")
    if kind == "price":
        out = resample_log(*price_points(arg), grid)
    elif kind == "gas":
        bucket, gwei = data.gas_10min(arg)
        out = np.interp(grid, bucket + data.BAR_10MIN_S, gwei)
    elif kind == "dai":
        bar, open_, _, close = data.dai_10min()
        dt = np.concatenate([bar[:1], bar + data.BAR_10MIN_S])
        dp = np.concatenate([open_[:1], close])
        out = np.interp(grid, dt, dp)
    elif kind == "liquidity":
        t, dai, weth = data.reserves_10min(arg)
        liq = np.sqrt(dai * weth)
        out = np.interp(grid, t, liq) / np.interp(grid[0], t, liq)
    else:
        raise ValueError(f"series={series!r} is unknown; allowed price:, gas:, dai, liquidity:")
    out.setflags(write=False)
    return out


def replay_price(
    name: str, knobs: dict[str, Any], ctx: ScenarioContext, grid: np.ndarray
) -> np.ndarray:
    """The replayed price ``[S, E]``: rescaled if ``start_price_usd > 0``, jittered per env if
    ``jitter_vol_annual > 0`` (a driftless multiplicative GBM factor, 1 at row 0)."""
    path = _on_grid(f"price:{name}", grid.tobytes())
    if knobs["start_price_usd"] > 0:
        path = path * (knobs["start_price_usd"] / path[0])
    prices = np.repeat(path[:, None], ctx.num_envs, axis=1)
    if knobs["jitter_vol_annual"] > 0:
        prices = prices * gbm(
            ctx.rng, ctx.num_substeps, ctx.num_envs, ctx.substep_h, 1.0, knobs["jitter_vol_annual"]
        )
    return prices


def _check_common(name: str, knobs: dict[str, Any]) -> None:
    check_knob(name, "speed", knobs["speed"], 0.01, 100.0)
    check_knob(name, "start_price_usd", knobs["start_price_usd"], 0.0, 1e9)
    check_knob(name, "jitter_vol_annual", knobs["jitter_vol_annual"], 0.0, 5.0)
    check_knob(name, "gas_gwei", knobs["gas_gwei"], 0.0, 20000.0)


def _gas_path(day: str, grid: np.ndarray) -> np.ndarray:
    return _on_grid(f"gas:{day}", grid.tobytes())


def _black_thursday(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    name = "black_thursday_2020"
    _check_common(name, knobs)
    grid = window_times(name, knobs, ctx)
    price = replay_price(name, knobs, ctx, grid)
    overlays: list[Any] = []
    if knobs["gas"]:
        overlays.append(GasPath(_gas_path("03-12-2020", grid)))
    if knobs["drought"]:
        # no pool reserves for 2020-03-12 in the data: the calibrated drought response instead
        overlays.append(Drought(knobs["drought_elasticity"], knobs["arb_exponent"]))
    if knobs["depeg"]:
        overlays.append(DebtPricePath(_on_grid("dai", grid.tobytes())))
    return compose(ctx, price, *overlays, gas_gwei=knobs["gas_gwei"])


def _may19(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    name = "may19_2021"
    _check_common(name, knobs)
    grid = window_times(name, knobs, ctx)
    price = replay_price(name, knobs, ctx, grid)
    overlays: list[Any] = []
    if knobs["gas"]:
        overlays.append(GasPath(_gas_path("05-19-2021", grid)))
    if knobs["liquidity"]:
        rel = _on_grid("liquidity:05-19-2021", grid.tobytes())
        overlays.append(LiquidityPath(rel, knobs["arb_exponent"]))
    return compose(ctx, price, *overlays, gas_gwei=knobs["gas_gwei"])


def compound_dai_oracle_usd(knobs: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """DAI as Compound's oracle read it on 2020-11-26, at the grid times: 1, rising linearly to
    ``dai_oracle_peak_usd`` over the first 5/6 of the spike, held for the last 1/6, then 1."""
    day = data.parse_utc("2020-11-26T00:00:00Z")
    t0 = day + knobs["spike_start_utc_h"] * data.HOUR_S
    length = knobs["spike_hours"] * data.HOUR_S
    u = (grid - t0) / max(length, 1e-9)
    shape = np.where((u >= 0) & (u < 1), np.clip(u * 6.0 / 5.0, 0.0, 1.0), 0.0)
    return 1.0 + (knobs["dai_oracle_peak_usd"] - 1.0) * shape


def _compound(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    name = "compound_dai_oracle_2020"
    _check_common(name, knobs)
    check_knob(name, "dai_oracle_peak_usd", knobs["dai_oracle_peak_usd"], 0.1, 10.0)
    check_knob(name, "spike_hours", knobs["spike_hours"], 0.0, 24.0)
    grid = window_times(name, knobs, ctx)
    price = replay_price(name, knobs, ctx, grid)
    overlays: list[Any] = []
    if knobs["oracle"]:
        overlays.append(OracleBiasPath(bias_for_debt_oracle(compound_dai_oracle_usd(knobs, grid))))
    return compose(ctx, price, *overlays, gas_gwei=knobs["gas_gwei"])


def window_summary(
    name: str, num_substeps: int, substep_h: float, start_offset_h: float = 0.0
) -> dict[str, float]:
    """Start, minimum and end of the replayed price over a run of ``num_substeps`` at the default
    speed, computed from the data points directly: the points inside the run's span plus the
    interpolated values at its two ends (equal to data points at the defaults)."""
    t, p = price_points(name)
    start = data.parse_utc(SOURCES[name].start_utc) + start_offset_h * data.HOUR_S
    end = start + (num_substeps - 1) * substep_h * data.HOUR_S
    inside = (t >= start) & (t <= end)
    first = float(np.exp(np.interp(start, t, np.log(p))))
    last = float(np.exp(np.interp(end, t, np.log(p))))
    low = min(first, last, float(p[inside].min()) if inside.any() else first)
    return {"start_usd": first, "min_usd": low, "end_usd": last, "min_over_start": low / first}


_COMMON = {"start_offset_h": 0.0, "speed": 1.0, "start_price_usd": 0.0, "jitter_vol_annual": 0.0}

register(
    Scenario(
        name="black_thursday_2020",
        kind="replay",
        description=(
            "ETH 2020-03-12 03:00 UTC on (10-min bars, then hourly): price, gas (p90) and DAI "
            "(up to 1.086) replayed; pool liquidity withdrawn as calibrated"
        ),
        source=(
            "levgym/data: eth_usd_10min (03-12-2020), Binance spot hourly, gas p90, DAI 10-min; "
            "drought elasticity from Uniswap v2 reserves"
        ),
        build=_black_thursday,
        knobs={
            **_COMMON,
            "gas": True,
            "depeg": True,
            "drought": True,
            "drought_elasticity": CALIBRATED["drought_elasticity"],
            "arb_exponent": 1.0,
            "gas_gwei": 30.0,
        },
    )
)
register(
    Scenario(
        name="may19_2021",
        kind="replay",
        description=(
            "ETH 2021-05-19 (10-min bars, then hourly): price, gas (p90) and Uniswap v2 DAI/WETH "
            "liquidity replayed"
        ),
        source="levgym/data: eth_usd_10min (05-19-2021), Binance spot hourly, gas p90, Uniswap v2 reserves",
        build=_may19,
        knobs={**_COMMON, "gas": True, "liquidity": True, "arb_exponent": 1.0, "gas_gwei": 30.0},
    )
)
register(
    Scenario(
        name="compound_dai_oracle_2020",
        kind="replay",
        description=(
            "ETH 2020-11-26 (hourly) with Compound's DAI oracle printing 1.30 at 08:00-09:00 UTC "
            "(as a collateral-oracle bias of 1/1.30-1)"
        ),
        source="levgym/data: Binance spot hourly; DAI oracle spike modeled from Coinbase's report",
        build=_compound,
        knobs={
            **_COMMON,
            "oracle": True,
            "dai_oracle_peak_usd": COMPOUND_DAI_PRINT_USD,
            "spike_start_utc_h": COMPOUND_SPIKE_START_UTC_H,
            "spike_hours": COMPOUND_SPIKE_HOURS,
            "gas_gwei": 30.0,
        },
    )
)
