"""Stress overlays and their composition with a price path: oracle, liquidity, gas, depeg.

A scenario is a price path ``[S, E]`` plus overlays applied in order by :func:`compose`. Each
overlay is a frozen dataclass whose ``apply(drivers, ctx)`` returns new drivers; overlays read
the price path from ``drivers.fundamental_usd`` so they can respond to it (a drought follows
the drawdown, gas follows the volatility). Windows are in hours since the start of the run:
row ``k`` of the drivers is at ``k * substep_h`` hours (row 0 is the starting state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..engine.drivers import Drivers, checking, unchecked
from .base import ScenarioContext, calm_drivers
from .processes import ar1, trailing_realized_vol

# Floor of the realized volatility that drives congestion: a quiet chain, not a free one (about
# 18 gwei at the fitted reference level and elasticity).
MIN_VOL_ANNUAL = 0.1


class Overlay(Protocol):
    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers: ...


def row_hours(ctx: ScenarioContext) -> np.ndarray:
    """Hours since the start of each driver row, ``[S]`` (row 0 at 0 h)."""
    return np.arange(ctx.num_substeps) * ctx.substep_h


def window_mask(ctx: ScenarioContext, start_h: float, hours: float) -> np.ndarray:
    """Rows in ``[start_h, start_h + hours)``, ``[S]`` bool."""
    t = row_hours(ctx)
    return (t >= start_h - 1e-9) & (t < start_h + hours - 1e-9)


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ValueError(f"scenario.{name}={value:g} is out of range; allowed [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class OracleBias:
    """The collateral oracle reports ``source * (1 + bias_frac)`` during a window (manipulation).

    A debt-asset oracle that over-reports the debt asset by a factor ``q`` (Compound's DAI at
    1.30 on 2020-11-26) is the same for every health factor and every liquidation as a
    collateral oracle biased by ``1 / q - 1``; see :func:`bias_for_debt_oracle`.
    """

    bias_frac: float
    start_h: float
    hours: float

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        _check("bias_frac", self.bias_frac, -0.9, 10.0)
        m = window_mask(ctx, self.start_h, self.hours)
        bias = drivers.oracle_bias_frac.copy()
        bias[m] = self.bias_frac
        return drivers.replace(oracle_bias_frac=bias)


def bias_for_debt_oracle(debt_oracle_usd: np.ndarray | float) -> np.ndarray | float:
    """Collateral-oracle bias equivalent to a debt-asset oracle reading ``debt_oracle_usd``."""
    return 1.0 / np.asarray(debt_oracle_usd) - 1.0


@dataclass(frozen=True)
class OracleBiasPath:
    """A given collateral-oracle bias per row, ``[S]`` (the same for every env)."""

    bias_frac: np.ndarray

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        return drivers.replace(oracle_bias_frac=drivers.oracle_bias_frac + self.bias_frac[:, None])


@dataclass(frozen=True)
class OracleFreeze:
    """The oracle does not update (a stale feed) during a window."""

    start_h: float
    hours: float

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        m = window_mask(ctx, self.start_h, self.hours)
        frozen = drivers.oracle_frozen.copy()
        frozen[m] = True
        return drivers.replace(oracle_frozen=frozen)


@dataclass(frozen=True)
class Drought:
    """Liquidity providers withdraw as the price falls and arbitrage slows with them.

    ``liquidity_frac = (running_min(price) / price[0]) ** elasticity`` (withdrawn liquidity does
    not come back within the run, as in the Uniswap v2 data), and
    ``arb_speed_frac = base * liquidity_frac ** arb_exponent``.
    """

    elasticity: float
    arb_exponent: float = 1.0

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        _check("drought_elasticity", self.elasticity, 0.0, 20.0)
        _check("arb_exponent", self.arb_exponent, 0.0, 20.0)
        p = drivers.fundamental_usd
        frac = (np.minimum.accumulate(p, axis=0) / p[0]) ** self.elasticity
        return drivers.replace(
            liquidity_frac=drivers.liquidity_frac * frac,
            arb_speed_frac=drivers.arb_speed_frac * frac**self.arb_exponent,
        )


@dataclass(frozen=True)
class LiquidityPath:
    """Replayed pool liquidity relative to the start, ``[S]``; arbitrage follows as in Drought."""

    liquidity_frac: np.ndarray
    arb_exponent: float = 1.0

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        frac = self.liquidity_frac[:, None]
        return drivers.replace(
            liquidity_frac=drivers.liquidity_frac * frac,
            arb_speed_frac=drivers.arb_speed_frac * frac**self.arb_exponent,
        )


@dataclass(frozen=True)
class Congestion:
    """Gas that spikes with volatility:
    ``log gas = log ref_gwei + elasticity * log(rv / ref_vol_annual) + u``, where ``rv`` is the
    trailing one-hour realized volatility of the price path and ``u`` an AR(1) per hour
    (``phi`` and innovation ``noise_sd_log`` per 10-minute step, rescaled to the substep).
    Volatility is floored at ``MIN_VOL_ANNUAL`` (a flat path would otherwise mean free gas) and
    gas is clipped to [1, 20000] gwei.
    """

    ref_gwei: float
    elasticity: float
    ref_vol_annual: float
    phi: float
    noise_sd_log: float

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        _check("gas_ref_gwei", self.ref_gwei, 0.1, 20000.0)
        _check("gas_vol_elasticity", self.elasticity, 0.0, 10.0)
        _check("gas_noise_sd_log", self.noise_sd_log, 0.0, 5.0)
        rv = trailing_realized_vol(drivers.fundamental_usd, ctx.substep_h)
        log_gas = np.log(self.ref_gwei) + self.elasticity * np.log(
            np.maximum(rv, MIN_VOL_ANNUAL) / self.ref_vol_annual
        )
        # the AR(1) was fitted on 10-minute steps; keep its persistence per unit of time
        steps_10min = ctx.substep_h * 6.0
        phi = self.phi**steps_10min
        stationary_sd = self.noise_sd_log / np.sqrt(1.0 - self.phi**2)
        sd = stationary_sd * np.sqrt(1.0 - phi**2)
        z = ctx.rng.standard_normal(log_gas.shape)
        u = ar1(stationary_sd * z[0], phi, sd * z)
        gas = np.clip(np.exp(log_gas + u), 1.0, 20000.0)
        return drivers.replace(gas_gwei=gas)


@dataclass(frozen=True)
class GasPath:
    """Replayed gas price per row, ``[S]`` (gwei)."""

    gas_gwei: np.ndarray

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        return drivers.replace(
            gas_gwei=np.broadcast_to(self.gas_gwei[:, None], drivers.gas_gwei.shape).copy()
        )


@dataclass(frozen=True)
class Depeg:
    """The debt asset trades away from 1 USD: a trapezoid from 1 to ``peak_usd`` (rise, hold,
    fall, in hours, from ``start_h``), then back at 1."""

    peak_usd: float
    start_h: float
    rise_h: float
    hold_h: float
    fall_h: float

    def path(self, ctx: ScenarioContext) -> np.ndarray:
        _check("depeg_peak_usd", self.peak_usd, 0.05, 10.0)
        for name in ("rise_h", "hold_h", "fall_h"):
            _check(f"depeg_{name}", getattr(self, name), 0.0, 10_000.0)
        t = row_hours(ctx) - self.start_h
        up = np.clip(t / max(self.rise_h, 1e-9), 0.0, 1.0)
        down = np.clip((t - self.rise_h - self.hold_h) / max(self.fall_h, 1e-9), 0.0, 1.0)
        shape = np.where(t < 0, 0.0, up * (1.0 - down))
        return 1.0 + (self.peak_usd - 1.0) * shape

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        return drivers.replace(debt_price_usd=drivers.debt_price_usd * self.path(ctx)[:, None])


@dataclass(frozen=True)
class DebtPricePath:
    """Replayed USD price of the debt asset per row, ``[S]``."""

    debt_price_usd: np.ndarray

    def apply(self, drivers: Drivers, ctx: ScenarioContext) -> Drivers:
        return drivers.replace(debt_price_usd=drivers.debt_price_usd * self.debt_price_usd[:, None])


def compose(
    ctx: ScenarioContext, fundamental_usd: np.ndarray, *overlays: Overlay, gas_gwei: float = 30.0
) -> Drivers:
    """Drivers from a price path ``[S, E]`` and overlays applied in order.

    Starts from the market's normal liquidity, arbitrage speed and a flat ``gas_gwei``. Overlays
    that draw random numbers draw them after the price path, so switching one off leaves the
    price path (and every overlay before it) unchanged for the same seed.
    """
    # the intermediate drivers are not checked one by one: the final ones are, once (unless the
    # caller checks them itself: a market runner checks its episode starts together)
    checked = checking()
    with unchecked():
        drivers = calm_drivers(ctx, fundamental_usd, gas_gwei)
        for overlay in overlays:
            drivers = overlay.apply(drivers, ctx)
    if checked:
        drivers.check()
    return drivers
