"""The batched market behind every levgym env: E engine envs with their own episodes and seeds.

An env of the batch has its own random stream (seeded ``seed + i``), its own scenario path and
its own episode clock, so env ``i`` of a batch behaves exactly like a batch of one seeded
``seed + i``, and envs can start new episodes at different times. All mechanics come from
:mod:`levgym.engine`; this module only feeds it drivers and noise and swaps episodes in and out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..engine.orders import Orders
from ..engine.params import EngineParams, ProtocolParams, preset
from ..engine.rules import pool_price_usd
from ..market import SPLITS, MarketRunner, fast_converter
from ..scenarios import get as get_scenario
from ..scenarios import names as scenario_names
from .features import PriceTracker
from .kernels import PositionAggregates, position_aggregates

ScenarioSpec = str | Sequence[str] | Mapping[str, float] | None


def resolve_params(params: EngineParams | ProtocolParams | str | None) -> EngineParams:
    """``EngineParams`` from an ``EngineParams``, a ``ProtocolParams``, a preset name or ``None``."""
    if params is None:
        return EngineParams()
    if isinstance(params, str):
        return EngineParams(protocol=preset(params))
    if isinstance(params, ProtocolParams):
        return EngineParams(protocol=params)
    if isinstance(params, EngineParams):
        return params
    raise ValueError(
        f"params={params!r} is not understood; allowed an EngineParams, a ProtocolParams or a preset name"
    )


def resolve_scenarios(
    scenarios: ScenarioSpec, preferred: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Scenario names and their sampling weights (summing to 1).

    ``None`` takes the names of ``preferred`` that are registered now (all registered scenarios
    if none is); a name or a list gives equal weights; a mapping gives name -> weight.
    """
    if scenarios is None:
        registered = set(scenario_names())
        chosen = [n for n in preferred if n in registered] or sorted(registered)
        if not chosen:
            raise ValueError(
                "no scenario is registered; allowed names come from levgym.scenarios.names()"
            )
        return chosen, np.full(len(chosen), 1.0 / len(chosen))
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if isinstance(scenarios, Mapping):
        names = [str(k) for k in scenarios]
        weights = np.array([float(scenarios[k]) for k in scenarios], dtype=np.float64)
    else:
        names = [str(s) for s in scenarios]
        weights = np.ones(len(names))
    if not names:
        raise ValueError(
            "scenarios=[] is empty; allowed one or more names from levgym.scenarios.names()"
        )
    for name in names:
        get_scenario(name)  # raises ValueError naming the allowed scenarios
    if np.any(~np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"scenario weights {weights.tolist()} are invalid; allowed finite, >= 0, sum > 0"
        )
    return names, weights / weights.sum()


def horizon_steps(horizon_h: float, step_h: float) -> int:
    """Number of env steps in ``horizon_h`` hours; it must be a whole number of steps."""
    if (
        isinstance(horizon_h, bool)
        or not isinstance(horizon_h, int | float)
        or not math.isfinite(horizon_h)
    ):
        raise ValueError(f"horizon_h={horizon_h!r} must be a finite number of hours")
    steps = horizon_h / step_h
    if horizon_h <= 0 or abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        raise ValueError(
            f"horizon_h={horizon_h:g} is not allowed; it must be a positive multiple of the step, {step_h:g} h"
        )
    return int(round(steps))


class BatchedMarket(MarketRunner):
    """The market runner of the envs (:class:`levgym.market.MarketRunner`, whose doc gives the
    seed mapping), plus what observations and rewards read:

    - a price tracker (returns, volatility, drawdown) updated after every substep;
    - aggregates: :meth:`aggregates` sums the positions once per state (debt, collateral,
      underwater shortfall, debt below health-factor thresholds) and caches the result until
      the state's arrays change, so rewards and observations of one step share one pass.

    Scenario seeds come from ``[0, EVAL_SEED_OFFSET)`` for ``split="train"`` and from
    ``[EVAL_SEED_OFFSET, 2 * EVAL_SEED_OFFSET)`` for ``split="eval"``.
    """

    def __init__(self, params: EngineParams, *args: Any, **kwargs: Any) -> None:
        super().__init__(params, *args, **kwargs)
        self.tracker = PriceTracker(self.num_envs, params.run.substep_h)
        self._agg_key: tuple[Any, ...] = ()
        self._agg: PositionAggregates | None = None

    def new_episodes(self, mask: np.ndarray) -> np.ndarray:
        idx = super().new_episodes(mask)
        if idx.size:
            mask = np.asarray(mask, dtype=bool)
            f, pool, oracle = self.prices()
            self.tracker.reset_prices(mask, f[mask], pool[mask], oracle[mask])
        return idx

    def substep(self, orders: Orders | None = None) -> Any:
        rounds = super().substep(orders)
        self.tracker.update_prices(*self.prices())
        return rounds

    def prices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fundamental, pool and oracle prices of every env now (numpy ``[E]``)."""
        pool = pool_price_usd(
            self.field("pool_asset"), self.field("pool_debt"), self.field("debt_price_usd")
        )
        return self.field("fundamental_usd").copy(), pool, self.field("oracle_usd").copy()

    def aggregates(self, thresholds: tuple[float, ...]) -> PositionAggregates:
        """:func:`levgym.envs.kernels.position_aggregates` of the current state, computed once
        per state: the result is kept while the state's position arrays, oracle, liquidation
        threshold and debt price are the same objects (the engine never writes into an array
        it has returned, so the same objects hold the same values)."""
        s = self.state
        assert s is not None
        arrays = (
            s.collateral_asset,
            s.debt_usd,
            s.oracle_usd,
            s.liquidation_threshold,
            s.debt_price_usd,
        )
        key = (tuple(thresholds), *arrays)
        cached = self._agg_key
        if (
            self._agg is None
            or cached[0] != key[0]
            or any(a is not b for a, b in zip(cached[1:], key[1:], strict=True))
        ):
            self._agg = position_aggregates(s, tuple(thresholds))
            self._agg_key = key  # holds the arrays, so their ids cannot be reused meanwhile
        return self._agg


__all__ = [
    "BatchedMarket",
    "SPLITS",
    "fast_converter",
    "horizon_steps",
    "resolve_params",
    "resolve_scenarios",
]
