"""Warm books for the envs: books that have lived through a calm burn-in before their episode.

``levgym simulate`` and ``stress`` warm each run's own book (``run.warmup_h``,
:func:`levgym.simulation.warm_up`); an env starts many short episodes, and warming every book
for two weeks of substeps would make each episode start cost as much as a long simulation. So
the envs (``warmup_h`` > 0, opt-in) draw their books from a cache instead:

- the cache holds :data:`WARM_BOOKS` books of ``num_positions`` slots, drawn as a runner draws
  them (env ``i`` seeded ``WARM_SEED + i``) and warmed together, in one batched run, through
  ``warmup_h`` hours of the calm burn-in of :func:`levgym.simulation.calm_bridge` at the
  market's ``initial_price_usd`` (a log-price Brownian bridge at the calibrated calm volatility
  back to that price, normal liquidity and gas); it is made once per process for each
  (parameters, slots, warm-up, dtype) and kept;
- an episode takes warmed book ``book_seed % WARM_BOOKS`` (its book seed is drawn as before, so
  the env's random stream is unchanged) and grafts its positions onto the episode's fresh state
  (:func:`graft_book`): collateral and debt keep their USD values and health factors at the
  episode's first price, counters start at zero, the pool, oracle and prices are the episode's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .engine.params import EngineParams
from .engine.state import State

WARM_BOOKS = 32
"""Warmed books per cache: episodes share them (a book recurs every 32 episodes on average)."""
WARM_SEED = 90_210
"""Env ``i`` of the cache's batch is seeded ``WARM_SEED + i`` (book and borrower noise)."""

# The position fields an episode takes from its warmed book (the others are the fresh state's).
BOOK_FIELDS = (
    "active",
    "kind",
    "trigger_hf",
    "react_prob",
    "target_hf",
    "repays",
    "template_hf",
)


@functools.lru_cache(maxsize=8)
def warm_books(
    params: EngineParams, num_positions: int, warmup_h: float, dtype: str = "float64"
) -> State:
    """:data:`WARM_BOOKS` books of ``num_positions`` slots after ``warmup_h`` hours of calm
    burn-in at ``params.market.initial_price_usd`` (numpy; cached per process)."""
    from .engine.fused import HAVE_NUMBA
    from .simulation import Simulator, calm_bridge, warm_up

    backend = "numba" if HAVE_NUMBA and dtype == "float64" else "numpy"
    f0 = np.full(WARM_BOOKS, params.market.initial_price_usd)
    bridge = calm_bridge(f0, params, warmup_h, WARM_SEED)
    sim = Simulator(params, bridge, num_positions, WARM_SEED, backend, dtype)
    state = warm_up(params, bridge, sim.state, WARM_SEED, backend, dtype)
    return state.to_numpy()


def graft_book(fresh: State, warmed: State, rows: np.ndarray, params: EngineParams) -> State:
    """``fresh`` (numpy, one env per episode) with the positions of ``warmed``'s envs ``rows``
    (one per env of ``fresh``): collateral scaled by the ratio of the warmed price to the fresh
    first price and debt by the ratio of the debt prices, so that every position keeps its USD
    value and health factor; lenders' supply and reserves rebuilt from the debt as a drawn book
    has them; start values taken now."""
    b = params.borrowers
    fdt = fresh.collateral_asset.dtype
    warmed = warmed.map_arrays(lambda a, f: a.astype(fdt) if a.dtype.kind == "f" else a)
    price = (warmed.fundamental_usd[rows] / fresh.fundamental_usd)[:, None]
    dp = (warmed.debt_price_usd[rows] / fresh.debt_price_usd)[:, None]
    coll = warmed.collateral_asset[rows] * price
    debt = warmed.debt_usd[rows] * dp
    total_debt = debt.sum(axis=1)
    changes: dict[str, Any] = {name: getattr(warmed, name)[rows].copy() for name in BOOK_FIELDS}
    changes.update(
        collateral_asset=coll,
        debt_usd=debt,
        template_collateral_asset=warmed.template_collateral_asset[rows] * price,
        ever_liquidated=np.zeros_like(fresh.ever_liquidated),
        supply_usd=total_debt / b.initial_utilization_frac,
        reserves_usd=total_debt * b.initial_reserves_frac,
        initial_collateral_asset=coll.sum(axis=1),
        initial_debt_usd=total_debt,
    )
    return fresh.replace(**changes)


__all__ = ["BOOK_FIELDS", "WARM_BOOKS", "WARM_SEED", "graft_book", "warm_books"]
