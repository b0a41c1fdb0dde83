"""Fused per-step helpers of the vector envs: borrower noise and position aggregates in one pass
over each env's row (numba), each with the plain numpy version it must equal.

These are not mechanics: the noise is the envs' random stream (SplitMix64 of a counter) and the
aggregates are sums over positions of quantities the engine defines (health factor, underwater
shortfall). The numpy versions are the specification; ``tests/envs/test_kernels.py`` checks
that the kernels give the same numbers (the noise bit for bit, the sums to rounding, since a
loop adds in a different order than numpy's pairwise sum).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..engine.fused import NR, rules_cache_dir  # noqa: E402
from ..engine.jit import HAVE_NUMBA, njit

# The borrower noise lives with the engine (levgym.engine.noise); re-exported for the envs.
from ..engine.noise import splitmix_noise, splitmix_noise_numpy  # noqa: E402

# ----------------------------------------------------------------------------- aggregates


class PositionAggregates(NamedTuple):
    """Per-env sums over the position slots, numpy ``[E]`` (``debt_below_usd`` ``[E, K]``)."""

    total_debt: np.ndarray
    """Sum of ``debt_usd`` (debt-asset units)."""
    total_collateral_asset: np.ndarray
    """Sum of ``collateral_asset``."""
    shortfall: np.ndarray
    """:func:`levgym.engine.borrowers.underwater_shortfall` (debt-asset units)."""
    debt_below_usd: np.ndarray
    """Debt value (USD, ``debt * debt_price``) of positions with health factor below each
    threshold (:func:`levgym.envs.features.debt_below_hf`)."""


@njit(cache=True, nogil=True, inline="always")
def _sum4(x: np.ndarray, n: int) -> float:  # pragma: no cover
    """Sum of ``x[:n]`` in four interleaved partial sums (independent add chains run in parallel
    in the CPU; one chain waits for each add)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        a0 += x[i]
        a1 += x[i + 1]
        a2 += x[i + 2]
        a3 += x[i + 3]
    for i in range(m, n):
        a0 += x[i]
    return (a0 + a1) + (a2 + a3)


def _aggregates_env(
    ce: np.ndarray, de: np.ndarray, o: float, lte: float, p: float, thresholds: np.ndarray,
    below: np.ndarray, hf: np.ndarray, owed: np.ndarray, gap: np.ndarray, picked: np.ndarray,
) -> tuple[float, float, float]:  # pragma: no cover  # fmt: skip
    """One env's aggregates from its position rows ``ce``, ``de``: (total debt, total
    collateral, underwater shortfall), and the debt below each threshold into ``below``
    (``hf``, ``owed``, ``gap``, ``picked`` are scratch rows of length N)."""
    n = ce.shape[0]
    for i in range(n):  # the engine's rules, compiled (levgym.engine.rules)
        gap[i] = NR.underwater(ce[i], de[i], o, p)
        owed[i] = de[i] * p
        hf[i] = NR.health_factor(ce[i], de[i], o, lte, p)
    for k in range(thresholds.shape[0]):
        t = thresholds[k]
        for i in range(n):
            picked[i] = owed[i] if hf[i] < t else 0.0
        below[k] = _sum4(picked, n)
    return _sum4(de, n), _sum4(ce, n), _sum4(gap, n)


def _aggregates(
    c: np.ndarray,
    d: np.ndarray,
    oracle: np.ndarray,
    lt: np.ndarray,
    dp: np.ndarray,
    thresholds: np.ndarray,
    total_debt: np.ndarray,
    total_coll: np.ndarray,
    shortfall: np.ndarray,
    below: np.ndarray,
) -> None:  # pragma: no cover
    num_envs, n = c.shape
    hf = np.empty(n)
    owed = np.empty(n)
    gap = np.empty(n)
    picked = np.empty(n)
    for e in range(num_envs):
        total_debt[e], total_coll[e], shortfall[e] = aggregates_env(
            c[e], d[e], oracle[e], lt[e], dp[e], thresholds, below[e], hf, owed, gap, picked
        )


with rules_cache_dir():
    aggregates_env = njit(cache=True, nogil=True, inline="always")(_aggregates_env)
    _aggregates_kernel = njit(cache=True, nogil=True)(_aggregates)


def position_aggregates(state: Any, thresholds: tuple[float, ...]) -> PositionAggregates:
    """:class:`PositionAggregates` of ``state``: one pass per env (numba) on numpy float64
    states, the engine's array functions otherwise (torch, or numba missing)."""
    arrays = (
        state.collateral_asset,
        state.debt_usd,
        state.oracle_usd,
        state.liquidation_threshold,
        state.debt_price_usd,
    )
    if not (
        HAVE_NUMBA and all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays)
    ):
        return position_aggregates_array(state, thresholds)
    c, d, o, lt, dp = (np.ascontiguousarray(a) for a in arrays)
    e = c.shape[0]
    out = PositionAggregates(np.empty(e), np.empty(e), np.empty(e), np.empty((e, len(thresholds))))
    th = np.asarray(thresholds, dtype=np.float64)
    _aggregates_kernel(c, d, o, lt, dp, th, *out)
    return out


def position_aggregates_array(state: Any, thresholds: tuple[float, ...]) -> PositionAggregates:
    """The specification of :func:`position_aggregates`, from the engine's array functions."""
    from ..engine.backend import namespace, to_numpy
    from ..engine.borrowers import underwater_shortfall
    from .features import debt_below_hf

    xp = namespace(state.debt_usd)
    return PositionAggregates(
        to_numpy(xp.sum(state.debt_usd, axis=1)),
        to_numpy(xp.sum(state.collateral_asset, axis=1)),
        to_numpy(underwater_shortfall(state)),
        debt_below_hf(state, thresholds),
    )


__all__ = [
    "HAVE_NUMBA",
    "PositionAggregates",
    "aggregates_env",
    "position_aggregates",
    "position_aggregates_array",
    "splitmix_noise",
    "splitmix_noise_numpy",
]
