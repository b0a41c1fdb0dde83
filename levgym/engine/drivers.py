"""Exogenous inputs of the engine, one row per substep: what scenarios produce and the engine reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

DRIVER_FIELDS = (
    "fundamental_usd",
    "liquidity_frac",
    "arb_speed_frac",
    "gas_gwei",
    "oracle_bias_frac",
    "oracle_frozen",
    "debt_price_usd",
    "arrival_mult",
)


@dataclass(frozen=True)
class Drivers:
    """Exogenous paths for a batch, each ``[S, E]`` (substeps by envs), as numpy arrays.

    - ``fundamental_usd``: off-chain reference price of the collateral asset.
    - ``liquidity_frac``: pool liquidity relative to ``market.pool_depth_usd`` (a drought < 1).
    - ``arb_speed_frac``: share of the pool's log-gap to the fundamental closed per substep.
    - ``gas_gwei``: gas price; sets liquidation cost, keeper capacity and borrower reactions.
    - ``oracle_bias_frac``: the oracle reports ``source * (1 + bias)`` (manipulation); 0 normally.
    - ``oracle_frozen``: the oracle does not update (stale feed) where true.
    - ``debt_price_usd``: USD price of the debt asset (1 unless it depegs).
    - ``arrival_mult``: multiplier on borrower arrival rates.
    """

    fundamental_usd: np.ndarray
    liquidity_frac: np.ndarray
    arb_speed_frac: np.ndarray
    gas_gwei: np.ndarray
    oracle_bias_frac: np.ndarray
    oracle_frozen: np.ndarray
    debt_price_usd: np.ndarray
    arrival_mult: np.ndarray

    def __post_init__(self) -> None:
        shape = np.shape(self.fundamental_usd)
        if len(shape) != 2:
            raise ValueError(f"drivers.fundamental_usd has shape {shape}; allowed [substeps, envs]")
        for name in DRIVER_FIELDS:
            a = getattr(self, name)
            if np.shape(a) != shape:
                raise ValueError(f"drivers.{name} has shape {np.shape(a)}; allowed {shape}")
            if name != "oracle_frozen" and not np.all(np.isfinite(a)):
                raise ValueError(
                    f"drivers.{name} holds NaN or infinite values; allowed finite numbers"
                )
        for name in ("fundamental_usd", "liquidity_frac", "debt_price_usd"):
            if np.any(getattr(self, name) <= 0):
                raise ValueError(f"drivers.{name} has a value <= 0; allowed > 0")
        if np.any(self.gas_gwei < 0) or np.any(self.arrival_mult < 0):
            raise ValueError("drivers.gas_gwei and drivers.arrival_mult must be >= 0")
        if np.any((self.arb_speed_frac < 0) | (self.arb_speed_frac > 1)):
            raise ValueError("drivers.arb_speed_frac has a value outside [0, 1]")
        if np.any(self.oracle_bias_frac <= -1):
            raise ValueError("drivers.oracle_bias_frac has a value <= -1; allowed > -1")

    @property
    def num_substeps(self) -> int:
        return int(self.fundamental_usd.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.fundamental_usd.shape[1])

    @classmethod
    def from_price(
        cls, fundamental_usd: np.ndarray, arb_speed_frac: float = 0.5, gas_gwei: float = 30.0
    ) -> Drivers:
        """Drivers with the given price path ``[S, E]`` and calm everything else."""
        f = np.asarray(fundamental_usd, dtype=np.float64)
        ones = np.ones_like(f)
        return cls(
            fundamental_usd=f,
            liquidity_frac=ones.copy(),
            arb_speed_frac=ones * arb_speed_frac,
            gas_gwei=ones * gas_gwei,
            oracle_bias_frac=np.zeros_like(f),
            oracle_frozen=np.zeros(f.shape, dtype=bool),
            debt_price_usd=ones.copy(),
            arrival_mult=ones.copy(),
        )

    def replace(self, **changes: Any) -> Drivers:
        return dataclasses.replace(self, **changes)

    def row(self, t: int, convert) -> DriverRow:
        """Substep ``t`` as ``[E]`` arrays of the engine's backend (``convert`` from backend.make_converter)."""
        return DriverRow(**{name: convert(getattr(self, name)[t]) for name in DRIVER_FIELDS})

    def slice_envs(self, index: Any) -> Drivers:
        return Drivers(**{name: getattr(self, name)[:, index] for name in DRIVER_FIELDS})


@dataclass(frozen=True)
class DriverRow:
    """One substep of :class:`Drivers`: each field ``[E]`` on the engine's backend."""

    fundamental_usd: Any
    liquidity_frac: Any
    arb_speed_frac: Any
    gas_gwei: Any
    oracle_bias_frac: Any
    oracle_frozen: Any
    debt_price_usd: Any
    arrival_mult: Any
