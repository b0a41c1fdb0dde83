"""Paired comparisons of policies on common random numbers: the same evaluation episodes (same
scenario paths, books and borrower noise) for every policy, so each episode gives one
difference per pair of policies.

For each (policy, baseline) pair: the mean difference of episode returns with a 95% bootstrap
interval (BCa, scipy), the standardized effect size ``d_z = mean(d) / sd(d)`` with its
bootstrap interval, and the two-sided Wilcoxon signed-rank p-value (scipy); the p-values of
all pairs of one env are Holm-corrected together (family-wise error at ``alpha``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 2000


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (the family-wise error of all tests at once).

    ``p_(i)`` sorted ascending is multiplied by ``m - i`` (0-based ``i``), made non-decreasing
    and capped at 1. Written here because scipy has none (its ``false_discovery_control`` is
    Benjamini-Hochberg, which controls the false discovery rate, not the family-wise error)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return [float(x) for x in out]


def _interval(data: np.ndarray, statistic: Any, seed: int) -> tuple[float, float]:
    from scipy import stats

    if data.size < 3 or np.all(data == data[0]):
        v = float(statistic(data)) if data.size else math.nan
        return v, v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (data,),
            statistic,
            confidence_level=0.95,
            n_resamples=N_RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            res = stats.bootstrap(
                (data,),
                statistic,
                confidence_level=0.95,
                n_resamples=N_RESAMPLES,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return lo, hi


def _dz(x: np.ndarray, axis: int = -1) -> np.ndarray:
    sd = np.std(x, axis=axis, ddof=1)
    m = np.mean(x, axis=axis)
    return np.where(sd > 0, m / np.where(sd > 0, sd, 1.0), 0.0)


def paired(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``a - b`` episode by episode: mean difference with its 95% bootstrap interval, effect
    size ``d_z`` with its interval, Wilcoxon signed-rank p-value (two-sided), ``n``."""
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"paired samples must be two vectors of one length; got {x.shape}, {y.shape}"
        )
    d = x - y
    n = int(d.size)
    if n == 0:
        raise ValueError("paired samples are empty")
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    lo, hi = _interval(d, np.mean, seed)
    dz_lo, dz_hi = _interval(d, _dz, seed + 1)
    return {
        "n": n,
        "mean_diff": float(d.mean()),
        "mean_diff_ci95": [lo, hi],
        "effect_size_dz": float(_dz(d)),
        "effect_size_dz_ci95": [dz_lo, dz_hi],
        "p_value": p,
    }


def compare(
    episodes: Mapping[str, Sequence[float]],
    candidates: Sequence[str],
    baselines: Sequence[str],
    alpha: float = ALPHA,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every candidate against every baseline (``episodes``: policy -> per-episode returns on
    the same episodes, in the same order). Returns one record per pair with :func:`paired`'s
    fields, ``p_holm`` (Holm over all the pairs here) and ``verdict``: ``better`` or ``worse``
    when ``p_holm < alpha`` (by the sign of the mean difference), else ``not significant``."""
    records = []
    k = 0
    for c in candidates:
        for b in baselines:
            if b == c:
                continue
            rec = {"policy": c, "baseline": b, **paired(episodes[c], episodes[b], seed + 17 * k)}
            records.append(rec)
            k += 1
    for rec, p in zip(records, holm([r["p_value"] for r in records]), strict=True):
        rec["p_holm"] = p
        if p < alpha:
            rec["verdict"] = "better" if rec["mean_diff"] > 0 else "worse"
        else:
            rec["verdict"] = "not significant"
    return records


def gap_closed(
    policy: Sequence[float],
    static: Sequence[float],
    ceiling: Sequence[float],
    seed: int = 0,
) -> dict[str, Any]:
    """Share of the gap between ``static`` and the hindsight ``ceiling`` that ``policy`` closes:
    ``(mean(policy) - mean(static)) / (mean(ceiling) - mean(static))`` over the same episodes,
    with a paired 95% bootstrap interval (percentile). 1 reaches the best fixed parameters in
    hindsight; above 1 beats them (an adaptive policy can); below 0 is worse than ``static``.
    ``None`` when the gap is zero."""
    from scipy import stats

    p, s, c = (np.asarray(v, dtype=np.float64) for v in (policy, static, ceiling))
    gap = float(c.mean() - s.mean())
    if not gap > 0:
        return {"share": None, "share_ci95": [None, None]}

    def share(pp, ss, cc, axis=-1):
        g = np.mean(cc, axis=axis) - np.mean(ss, axis=axis)
        return (np.mean(pp, axis=axis) - np.mean(ss, axis=axis)) / np.where(g > 0, g, np.nan)

    value = float(share(p, s, c))
    lo = hi = value
    if p.size >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (p, s, c),
                share,
                paired=True,
                confidence_level=0.95,
                n_resamples=N_RESAMPLES,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return {"share": value, "share_ci95": [lo, hi]}


__all__ = ["ALPHA", "compare", "gap_closed", "holm", "paired"]
