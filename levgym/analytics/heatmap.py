"""Liquidation-price distribution ("liquidation heatmap"): debt that becomes liquidatable at each
price level, read from the engine's state.

A position's liquidation price is the oracle price at which its health factor reaches 1. The
health factor is linear in the oracle price (``levgym.engine.borrowers.health_factor``), so the
liquidation price is ``oracle / HF`` with the engine's own HF: no second copy of the formula.
Prices are expressed relative to each market's start price (``fundamental_start_usd``) so that
paths and times share one axis. Positions already below HF 1 sit above the current price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.backend import to_numpy
from ..engine.borrowers import health_factor
from ..engine.state import State

DEFAULT_EDGES = np.round(np.linspace(0.0, 1.5, 61), 6)
"""Relative price grid (share of the start price): 60 bins of 2.5%; the end bins take overflow."""


def liquidation_prices_rel(state: State) -> tuple[np.ndarray, np.ndarray]:
    """Per active indebted position: (liquidation price / start price, debt in USD), ``[E, N]``.

    Positions without debt get liquidation price 0 and weight 0.
    """
    hf = to_numpy(health_factor(state))
    oracle = to_numpy(state.oracle_usd)[:, None]
    start = to_numpy(state.fundamental_start_usd)[:, None]
    debt = to_numpy(state.debt_usd) * to_numpy(state.debt_price_usd)[:, None]
    mask = to_numpy(state.active) & (debt > 0) & np.isfinite(hf)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mask, oracle / np.where(mask, hf, 1.0) / start, 0.0)
    return rel, np.where(mask, debt, 0.0)


def debt_by_price(state: State, edges: np.ndarray = DEFAULT_EDGES) -> np.ndarray:
    """Debt (USD) whose liquidation price falls in each bin of ``edges``, summed over envs, ``[B]``.

    Values outside the grid are put into the first or last bin.
    """
    rel, w = liquidation_prices_rel(state)
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) * 1e-9
    r = np.clip(rel[w > 0], lo, hi - span)
    hist, _ = np.histogram(r, bins=edges, weights=w[w > 0])
    return hist


@dataclass(frozen=True)
class HeatmapRecord:
    """One batch at one record time: debt by liquidation-price bin ``[B]`` and the fundamental
    and oracle prices relative to the start ``[E]``."""

    time_h: float
    debt_usd: np.ndarray
    fundamental_rel: np.ndarray
    oracle_rel: np.ndarray


@dataclass
class HeatmapAccumulator:
    """Sums :func:`debt_by_price` over batches at fixed times (start, each step, end) of a run."""

    edges: np.ndarray = field(default_factory=lambda: DEFAULT_EDGES.copy())
    times_h: list[float] = field(default_factory=list)
    sums: list[np.ndarray] = field(default_factory=list)
    fundamental_rel: list[list[np.ndarray]] = field(default_factory=list)
    oracle_rel: list[list[np.ndarray]] = field(default_factory=list)
    num_paths: int = 0

    def snapshot(self, time_h: float, state: State) -> HeatmapRecord:
        """What one batch contributes at one record time (plain arrays: a batch computed in
        another process sends these back)."""
        start = to_numpy(state.fundamental_start_usd)
        return HeatmapRecord(
            float(time_h),
            debt_by_price(state, self.edges),
            to_numpy(state.fundamental_usd) / start,
            to_numpy(state.oracle_usd) / start,
        )

    def record(self, index: int, time_h: float, state: State) -> None:
        """Add the state of one batch at record point ``index`` (same order in every batch)."""
        self.add(index, self.snapshot(time_h, state))

    def add(self, index: int, rec: HeatmapRecord) -> None:
        """Add one batch's record at record point ``index``; batches are added in batch order
        (the sums then equal, bit for bit, whichever process computed each batch)."""
        time_h, hist, f, o = rec.time_h, rec.debt_usd, rec.fundamental_rel, rec.oracle_rel
        if index == len(self.sums):
            self.times_h.append(float(time_h))
            self.sums.append(hist)
            self.fundamental_rel.append([f])
            self.oracle_rel.append([o])
        else:
            self.sums[index] = self.sums[index] + hist
            self.fundamental_rel[index].append(f)
            self.oracle_rel[index].append(o)

    def add_paths(self, n: int) -> None:
        self.num_paths += n

    def result(self) -> LiquidationHeatmap:
        if not self.sums or self.num_paths == 0:
            raise ValueError("the heatmap has no recorded states")
        mean = np.stack(self.sums) / self.num_paths
        f = np.stack([np.concatenate(v) for v in self.fundamental_rel])
        o = np.stack([np.concatenate(v) for v in self.oracle_rel])
        return LiquidationHeatmap(self.edges.copy(), np.asarray(self.times_h), mean, f, o)


@dataclass(frozen=True)
class LiquidationHeatmap:
    """Mean debt (USD per path) by liquidation price (relative to the start price) over time.

    ``debt_usd[t, b]`` is the expected debt whose liquidation price lies in bin ``b`` at record
    time ``times_h[t]`` (0, the end of each step, and the horizon). ``fundamental_rel`` and
    ``oracle_rel`` are ``[T, P]`` price paths relative to the start, for overlays.
    """

    edges_rel: np.ndarray
    times_h: np.ndarray
    debt_usd: np.ndarray
    fundamental_rel: np.ndarray
    oracle_rel: np.ndarray

    @property
    def centers_rel(self) -> np.ndarray:
        return 0.5 * (self.edges_rel[1:] + self.edges_rel[:-1])

    @property
    def before_usd(self) -> np.ndarray:
        return self.debt_usd[0]

    @property
    def after_usd(self) -> np.ndarray:
        return self.debt_usd[-1]

    def liquidatable_below_usd(self, t: int) -> np.ndarray:
        """Debt that is liquidatable if the price falls to each bin's lower edge (cumulative from
        the top), ``[B]``, at record time ``t``."""
        return np.cumsum(self.debt_usd[t][::-1])[::-1]

    def to_dict(self) -> dict:
        """JSON form: grid, before and after profiles and the cumulative 'liquidatable at' curves."""
        return {
            "price_rel_edges": self.edges_rel.tolist(),
            "before_debt_usd": self.before_usd.tolist(),
            "after_debt_usd": self.after_usd.tolist(),
            "before_liquidatable_at_or_above_usd": self.liquidatable_below_usd(0).tolist(),
            "after_liquidatable_at_or_above_usd": self.liquidatable_below_usd(-1).tolist(),
            "times_h": self.times_h.tolist(),
            "definition": (
                "mean over paths of the debt (USD) whose liquidation price, oracle / HF with the "
                "engine's health factor, lies in each bin; prices relative to the start price; "
                "'liquidatable_at_or_above' sums bins from the top: the debt liquidatable once the "
                "price falls to the bin's lower edge"
            ),
        }
