"""Named observation features, their docstring tables, and the per-env price trackers behind them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..engine.backend import namespace, to_numpy
from ..engine.borrowers import health_factor
from ..engine.params import HOURS_PER_YEAR
from ..engine.state import State
from .formulas import annual_volatility, ewma_variance, log_return


class Feature(NamedTuple):
    """One entry of an observation (or action) vector: name, meaning and bounds."""

    name: str
    description: str
    low: float
    high: float


def render_table(features: Sequence[Feature]) -> str:
    """The Markdown table (index, name, description, min, max) written into an env's docstring."""
    lines = ["| index | name | description | min | max |", "|---|---|---|---|---|"]
    for i, f in enumerate(features):
        lines.append(f"| {i} | `{f.name}` | {f.description} | {f.low:g} | {f.high:g} |")
    return "\n".join(lines)


def bounds(features: Sequence[Feature]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of a feature vector as float32 arrays."""
    low = np.array([f.low for f in features], dtype=np.float32)
    high = np.array([f.high for f in features], dtype=np.float32)
    return low, high


def index(features: Sequence[Feature]) -> dict[str, int]:
    """Column of each feature by name."""
    return {f.name: i for i, f in enumerate(features)}


# Volatility trackers start from this annualized volatility (a typical ETH level) so the first
# hours of an episode do not read as a dead-calm market.
VOL_PRIOR_ANNUAL = 0.6
VOL_SHORT_HALFLIFE_H = 6.0
VOL_LONG_HALFLIFE_H = 168.0
HISTORY_H = 24.0


class PriceTracker:
    """Per-env price history for observations and rendering, updated once per substep.

    Holds ring buffers ``[E, L]`` of the fundamental, pool and oracle prices over the last
    ``HISTORY_H`` hours (one column per substep; the write position is shared by all envs),
    exponentially weighted variances of substep log returns of the fundamental (half-lives
    ``VOL_SHORT_HALFLIFE_H`` and ``VOL_LONG_HALFLIFE_H``) and the running maximum of the
    fundamental since the episode began. Always numpy ``float64``.
    """

    def __init__(self, num_envs: int, substep_h: float) -> None:
        self.substep_h = float(substep_h)
        self.length = int(round(HISTORY_H / substep_h)) + 1
        e, n = num_envs, self.length
        # the three rings in one [3, E, L] array (the step kernels take it as one argument)
        self.prices = np.zeros((3, e, n))
        self.fundamental, self.pool, self.oracle = self.prices  # views
        self.filled = np.zeros(e, dtype=np.int64)  # substeps recorded this episode (capped at L)
        self.pos = 0
        # both variances in one [2, E] array, updated by one expression per substep
        self._var = np.zeros((2, e))
        self.var_short, self.var_long = self._var  # views, always current
        self.max_fundamental = np.zeros(e)
        self.alpha_short = 1.0 - 0.5 ** (substep_h / VOL_SHORT_HALFLIFE_H)
        self.alpha_long = 1.0 - 0.5 ** (substep_h / VOL_LONG_HALFLIFE_H)
        self._alpha = np.array([[self.alpha_short], [self.alpha_long]])
        self.var_prior = VOL_PRIOR_ANNUAL**2 * substep_h / HOURS_PER_YEAR
        self.substeps_per_year = HOURS_PER_YEAR / substep_h

    def reset(self, state: State, mask: np.ndarray) -> None:
        """Start the history of the envs in ``mask`` from their current prices."""
        self.reset_prices(
            mask,
            to_numpy(state.fundamental_usd)[mask],
            to_numpy(state.pool_price_usd)[mask],
            to_numpy(state.oracle_usd)[mask],
        )

    def reset_prices(
        self, mask: np.ndarray, fundamental: np.ndarray, pool: np.ndarray, oracle: np.ndarray
    ) -> None:
        """:meth:`reset` from the prices of the envs in ``mask`` (``[k]`` each)."""
        f = fundamental
        self.fundamental[mask] = f[:, None]
        self.pool[mask] = pool[:, None]
        self.oracle[mask] = oracle[:, None]
        self.filled[mask] = 1
        self.var_short[mask] = self.var_prior
        self.var_long[mask] = self.var_prior
        self.max_fundamental[mask] = f

    def update(self, state: State) -> None:
        """Record the prices after a substep."""
        self.update_prices(
            to_numpy(state.fundamental_usd),
            to_numpy(state.pool_price_usd),
            to_numpy(state.oracle_usd),
        )

    def update_prices(self, f: np.ndarray, pool: np.ndarray, oracle: np.ndarray) -> None:
        """:meth:`update` from the prices ``[E]`` after a substep."""
        r = log_return(f, self.fundamental[:, self.pos])
        self.pos = (self.pos + 1) % self.length
        self.fundamental[:, self.pos] = f
        self.pool[:, self.pos] = pool
        self.oracle[:, self.pos] = oracle
        np.minimum(self.filled + 1, self.length, out=self.filled)
        self._var[...] = ewma_variance(self._var, r, self._alpha)
        np.maximum(self.max_fundamental, f, out=self.max_fundamental)

    def lag(self, hours: float) -> int:
        """Ring columns between now and ``hours`` ago (at most the ring's length - 1)."""
        return min(int(round(hours / self.substep_h)), self.length - 1)

    def log_return(self, hours: float) -> np.ndarray:
        """Log return of the fundamental over the last ``hours`` (shorter at an episode's start)."""
        past = (self.pos - self.lag(hours)) % self.length
        return log_return(self.fundamental[:, self.pos], self.fundamental[:, past])

    def vol_annual(self, which: str) -> np.ndarray:
        var = self.var_short if which == "short" else self.var_long
        return annual_volatility(var, self.substeps_per_year)

    def drawdown(self) -> np.ndarray:
        return 1.0 - self.fundamental[:, self.pos] / self.max_fundamental

    def history(self, env: int) -> dict[str, np.ndarray]:
        """The recorded prices of one env in time order, with hours relative to now."""
        k = int(self.filled[env])
        idx = (self.pos - np.arange(k)[::-1]) % self.length
        hours = -np.arange(k)[::-1] * self.substep_h
        return {
            "hours": hours,
            "fundamental": self.fundamental[env, idx],
            "pool": self.pool[env, idx],
            "oracle": self.oracle[env, idx],
        }


def debt_below_hf(state: State, thresholds: Sequence[float]) -> np.ndarray:
    """Debt (USD) of positions whose health factor is below each threshold, ``[E, K]`` numpy.

    ``HF < 1 / (1 - x)`` is the debt that becomes liquidatable if the oracle falls by ``x``.
    """
    xp = namespace(state.debt_usd)
    hf = health_factor(state)
    owed = state.debt_usd * state.debt_price_usd[:, None]
    zero = xp.zeros_like(owed)
    cols = [xp.sum(xp.where(hf < t, owed, zero), axis=1) for t in thresholds]
    return np.stack([to_numpy(c) for c in cols], axis=1)


def market_snapshot(
    state: State, totals: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Per-env aggregates used by several features, numpy ``[E]``.

    ``totals`` (total debt, total collateral per env), when the caller has them already
    (:class:`levgym.envs.kernels.PositionAggregates`), saves summing the positions again.
    """
    if totals is None:
        xp = namespace(state.debt_usd)
        total_debt = to_numpy(xp.sum(state.debt_usd, axis=1))
        total_coll = to_numpy(xp.sum(state.collateral_asset, axis=1))
    else:
        total_debt, total_coll = totals
    oracle = to_numpy(state.oracle_usd)
    dp = to_numpy(state.debt_price_usd)
    return {
        "fundamental_usd": to_numpy(state.fundamental_usd),
        "oracle_usd": oracle,
        "pool_usd": to_numpy(state.pool_price_usd),
        "pool_quote_usd": to_numpy(state.pool_debt) * dp,
        "debt_price_usd": dp,
        "total_debt": total_debt,
        "debt_value_usd": total_debt * dp,
        "collateral_value_usd": total_coll * oracle,
        "supply_usd": to_numpy(state.supply_usd),
        "reserves_usd": to_numpy(state.reserves_usd),
        "gas_gwei": to_numpy(state.gas_gwei),
    }


__all__ = [
    "Feature",
    "PriceTracker",
    "bounds",
    "debt_below_hf",
    "index",
    "market_snapshot",
    "render_table",
]
