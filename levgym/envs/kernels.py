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
    below: np.ndarray, acc: np.ndarray,
) -> tuple[float, float, float]:  # pragma: no cover  # fmt: skip
    """One env's aggregates from its position rows ``ce``, ``de``: (total debt, total
    collateral, underwater shortfall), and the debt below each threshold into ``below``.

    Every sum is :func:`_sum4`'s (four interleaved partial sums, the tail added to the first),
    so the numbers are those of summing each quantity's row with ``_sum4``. The lanes are kept
    in registers: one pass sums debt, collateral and shortfall; then each position's health
    factor and debt value go into ``acc`` ``[2, >= N]`` (scratch), and one short pass per
    threshold sums the debt below it (each lane still adds its positions in slot order)."""
    n = ce.shape[0]
    k_count = thresholds.shape[0]
    m = n - n % 4
    d0 = d1 = d2 = d3 = 0.0
    c0 = c1 = c2 = c3 = 0.0
    u0 = u1 = u2 = u3 = 0.0
    for i in range(0, m, 4):  # the engine's rules, compiled (levgym.engine.rules)
        d0 += de[i]
        d1 += de[i + 1]
        d2 += de[i + 2]
        d3 += de[i + 3]
        c0 += ce[i]
        c1 += ce[i + 1]
        c2 += ce[i + 2]
        c3 += ce[i + 3]
        u0 += NR.underwater(ce[i], de[i], o, p)
        u1 += NR.underwater(ce[i + 1], de[i + 1], o, p)
        u2 += NR.underwater(ce[i + 2], de[i + 2], o, p)
        u3 += NR.underwater(ce[i + 3], de[i + 3], o, p)
    for i in range(m, n):
        d0 += de[i]
        c0 += ce[i]
        u0 += NR.underwater(ce[i], de[i], o, p)
    hf = acc[0]
    owed = acc[1]
    for i in range(n):
        hf[i] = NR.health_factor(ce[i], de[i], o, lte, p)
        owed[i] = de[i] * p
    for k in range(k_count):
        th = thresholds[k]
        b0 = b1 = b2 = b3 = 0.0
        for i in range(0, m, 4):
            b0 += owed[i] if hf[i] < th else 0.0
            b1 += owed[i + 1] if hf[i + 1] < th else 0.0
            b2 += owed[i + 2] if hf[i + 2] < th else 0.0
            b3 += owed[i + 3] if hf[i + 3] < th else 0.0
        for i in range(m, n):
            b0 += owed[i] if hf[i] < th else 0.0
        below[k] = (b0 + b1) + (b2 + b3)
    return (d0 + d1) + (d2 + d3), (c0 + c1) + (c2 + c3), (u0 + u1) + (u2 + u3)


def _shortfall_env(ce: np.ndarray, de: np.ndarray, o: float, p: float) -> float:  # pragma: no cover
    """The underwater shortfall of one env (the third aggregate of :func:`aggregates_env`,
    summed in the same order)."""
    n = ce.shape[0]
    m = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, m, 4):
        a0 += NR.underwater(ce[i], de[i], o, p)
        a1 += NR.underwater(ce[i + 1], de[i + 1], o, p)
        a2 += NR.underwater(ce[i + 2], de[i + 2], o, p)
        a3 += NR.underwater(ce[i + 3], de[i + 3], o, p)
    for i in range(m, n):
        a0 += NR.underwater(ce[i], de[i], o, p)
    return (a0 + a1) + (a2 + a3)


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
    num_envs = c.shape[0]
    acc = np.empty((2, c.shape[1]))
    for e in range(num_envs):
        total_debt[e], total_coll[e], shortfall[e] = aggregates_env(
            c[e], d[e], oracle[e], lt[e], dp[e], thresholds, below[e], acc
        )


with rules_cache_dir():
    aggregates_env = njit(cache=True, nogil=True, inline="always")(_aggregates_env)
    shortfall_env = njit(cache=True, nogil=True, inline="always")(_shortfall_env)
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
    "shortfall_env",
    "position_aggregates",
    "position_aggregates_array",
    "splitmix_noise",
    "splitmix_noise_numpy",
]
