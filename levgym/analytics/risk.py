"""Tail-risk estimators on Monte Carlo samples of a loss: VaR, CVaR, probabilities, standard errors.

Conventions (documented in docs/stress.md):

- A loss is a number per path where larger is worse (bad debt, liquidated volume), ``>= 0``.
- ``VaR_a`` is the lower ``a``-quantile of the loss: ``inf{x : F(x) >= a}``, estimated by the
  ``ceil(n a)``-th order statistic (numpy's ``inverted_cdf`` quantile).
- ``CVaR_a`` (expected shortfall) is ``1/(1-a) * int_a^1 VaR_u du`` (Acerbi and Tasche), the
  mean of the worst ``(1-a)`` share of paths with the boundary path counted fractionally. It is
  coherent and always ``>= VaR_a``; for a continuous loss it equals ``E[X | X >= VaR_a]``.
- Standard errors, ``analytic`` method (default):
  * VaR: the distribution-free order-statistic (binomial) interval. The number of samples
    below the true quantile is ``Binomial(n, a)``; its +-1 sd ranks are
    ``n a +- sqrt(n a (1 - a))``; the SE is half the distance between those order statistics.
    This is the Siddiqui-Bloch-Gastwirth sparsity estimator of ``sqrt(a(1-a)/n) / f(VaR)``
    and needs no density; it is 0 where the quantile sits on an atom (e.g. VaR = 0 when
    fewer than ``1-a`` of paths have bad debt), which is right for such a quantile.
  * CVaR: the plug-in delta method. The influence function of ``CVaR_a`` is
    ``VaR + (x - VaR)_+ / (1-a) - CVaR``, so ``SE = sd((X - VaR)_+) / ((1-a) sqrt(n))``.
  * probabilities: ``sqrt(p (1-p) / n)``, with a Wilson 95% interval beside it (useful when
    no path, or every path, had the event and the SE is 0).
  * means: ``sd / sqrt(n)``.
- ``bootstrap`` method: the sd of the statistic over ``n_boot`` resamples of the paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SE_METHODS = ("analytic", "bootstrap")


def _sample(x: np.ndarray | list[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("an estimator got an empty sample; allowed at least 1 path")
    if not np.all(np.isfinite(a)):
        raise ValueError("an estimator got NaN or infinite values; allowed finite numbers")
    return a


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is out of range; allowed (0, 1)")


def value_at_risk(x: np.ndarray | list[float], level: float) -> float:
    """``VaR_level`` of the loss sample ``x``: its ``ceil(n * level)``-th smallest value."""
    _check_level(level)
    a = np.sort(_sample(x))
    k = max(1, math.ceil(a.size * level - 1e-9))
    return float(a[k - 1])


def expected_shortfall(x: np.ndarray | list[float], level: float) -> float:
    """``CVaR_level`` (expected shortfall) of the loss sample ``x``; always ``>= VaR_level``.

    ``(1 / (n (1-a))) * (sum of the order statistics above rank k + (k - n a) * X_(k))`` with
    ``k = ceil(n a)``: the empirical version of ``1/(1-a) int_a^1 VaR_u du``.
    """
    _check_level(level)
    a = np.sort(_sample(x))
    n = a.size
    k = max(1, math.ceil(n * level - 1e-9))
    tail = a[k:].sum() + (k - n * level) * a[k - 1]
    return float(tail / (n * (1.0 - level)))


def var_se_order_statistic(x: np.ndarray | list[float], level: float) -> float:
    """Standard error of :func:`value_at_risk` from the binomial order-statistic interval."""
    _check_level(level)
    a = np.sort(_sample(x))
    n = a.size
    half = math.sqrt(n * level * (1.0 - level))
    lo = min(max(1, math.floor(n * level - half)), n)
    hi = min(max(1, math.ceil(n * level + half)), n)
    return float((a[hi - 1] - a[lo - 1]) / 2.0)


def cvar_se_delta(x: np.ndarray | list[float], level: float) -> float:
    """Standard error of :func:`expected_shortfall` by the delta method (influence function)."""
    a = _sample(x)
    if a.size < 2:
        return 0.0
    var = value_at_risk(a, level)
    excess = np.clip(a - var, 0.0, None)
    return float(np.std(excess, ddof=1) / ((1.0 - level) * math.sqrt(a.size)))


def mean_se(x: np.ndarray | list[float]) -> float:
    """Standard error of the sample mean."""
    a = _sample(x)
    return float(np.std(a, ddof=1) / math.sqrt(a.size)) if a.size > 1 else 0.0


def probability_se(p: float, n: int) -> float:
    """Binomial standard error ``sqrt(p (1-p) / n)`` of a frequency ``p`` over ``n`` paths."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial probability (95% by default)."""
    if n < 1:
        raise ValueError(f"n={n} is out of range; allowed >= 1")
    p = successes / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_se(
    x: np.ndarray | list[float],
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 400,
    seed: int = 0,
) -> float:
    """Standard deviation of ``statistic`` over ``n_boot`` resamples (with replacement) of ``x``."""
    a = _sample(x)
    if n_boot < 2:
        raise ValueError(f"n_boot={n_boot} is out of range; allowed >= 2")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for i in range(n_boot):
        stats[i] = statistic(a[rng.integers(0, a.size, a.size)])
    return float(np.std(stats, ddof=1))


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its standard error."""

    value: float
    se: float


def var_estimate(
    x: np.ndarray, level: float, se_method: str = "analytic", seed: int = 0
) -> Estimate:
    """VaR with its standard error (``analytic``: order statistics; ``bootstrap``)."""
    value = value_at_risk(x, level)
    if se_method == "bootstrap":
        return Estimate(value, bootstrap_se(x, lambda s: value_at_risk(s, level), seed=seed))
    return Estimate(value, var_se_order_statistic(x, level))


def cvar_estimate(
    x: np.ndarray, level: float, se_method: str = "analytic", seed: int = 0
) -> Estimate:
    """CVaR with its standard error (``analytic``: delta method; ``bootstrap``)."""
    value = expected_shortfall(x, level)
    if se_method == "bootstrap":
        return Estimate(value, bootstrap_se(x, lambda s: expected_shortfall(s, level), seed=seed))
    return Estimate(value, cvar_se_delta(x, level))


def mean_estimate(x: np.ndarray, se_method: str = "analytic", seed: int = 0) -> Estimate:
    a = _sample(x)
    if se_method == "bootstrap":
        return Estimate(float(a.mean()), bootstrap_se(a, np.mean, seed=seed))
    return Estimate(float(a.mean()), mean_se(a))


def check_se_method(name: str) -> None:
    if name not in SE_METHODS:
        raise ValueError(f"se method {name!r} is unknown; allowed {', '.join(SE_METHODS)}")


LEVELS = (0.95, 0.99)


def tail_block(
    x: np.ndarray,
    tvl_usd: np.ndarray,
    prefix_var: str,
    name: str,
    *,
    with_cvar: bool,
    se_method: str = "analytic",
) -> dict[str, float]:
    """Flat summary keys for a loss sample at 95% and 99%, in USD and as a share of TVL.

    Keys: ``{prefix_var}_{95,99}_{name}_usd`` (+ ``cvar_...`` when ``with_cvar``), each with
    ``_se``, and the same with ``_tvl_frac`` in place of ``_usd``. ``prefix_var`` is ``var``
    for bad debt and ``lar`` (liquidations at risk) for liquidated volume.
    """
    x = _sample(x)
    frac = x / np.asarray(tvl_usd, dtype=np.float64)
    out: dict[str, float] = {}
    for level in LEVELS:
        pct = round(level * 100)
        for unit, sample in (("usd", x), ("tvl_frac", frac)):
            est = var_estimate(sample, level, se_method)
            key = f"{prefix_var}_{pct}_{name}_{unit}"
            out[key], out[f"{key}_se"] = est.value, est.se
            if with_cvar:
                est = cvar_estimate(sample, level, se_method)
                key = f"cvar_{pct}_{name}_{unit}"
                out[key], out[f"{key}_se"] = est.value, est.se
    return out


def distribution_block(x: np.ndarray, name: str, se_method: str = "analytic") -> dict[str, float]:
    """``{name}_mean``, ``_p50``, ``_p95``, ``_p99`` (each with ``_se``) and ``{name}_max``."""
    x = _sample(x)
    out: dict[str, float] = {}
    est = mean_estimate(x, se_method)
    out[f"{name}_mean"], out[f"{name}_mean_se"] = est.value, est.se
    for level in (0.5, 0.95, 0.99):
        est = var_estimate(x, level, se_method)
        key = f"{name}_p{round(level * 100)}"
        out[key], out[f"{key}_se"] = est.value, est.se
    out[f"{name}_max"] = float(x.max())
    return out


def probability_block(event: np.ndarray, name: str) -> dict[str, float | list[float]]:
    """``{name}``, ``{name}_se`` and the Wilson 95% interval ``{name}_ci95`` of a boolean sample."""
    e = np.asarray(event, dtype=bool).ravel()
    n = e.size
    if n == 0:
        raise ValueError("an estimator got an empty sample; allowed at least 1 path")
    k = int(e.sum())
    p = k / n
    lo, hi = wilson_interval(k, n)
    return {name: p, f"{name}_se": probability_se(p, n), f"{name}_ci95": [lo, hi]}


AMPLIFICATION_MIN_DRAWDOWN_FRAC = 0.02
"""Amplification (pool drawdown / fundamental drawdown) is summarized over the paths whose
fundamental fell by at least this much: on nearly flat paths the ratio divides by ~0 and says
nothing about the cascade."""


def amplification_sample(per_path: dict[str, np.ndarray]) -> np.ndarray:
    """Per-path amplification of the paths with a fundamental drawdown of at least 2%."""
    amp = np.asarray(per_path["amplification"], dtype=np.float64)
    if "fundamental_min_over_start" not in per_path:
        return amp
    dd = 1.0 - np.asarray(per_path["fundamental_min_over_start"], dtype=np.float64)
    return amp[dd >= AMPLIFICATION_MIN_DRAWDOWN_FRAC]


def summarize_paths(
    per_path: dict[str, np.ndarray], se_method: str = "analytic"
) -> dict[str, object]:
    """The flat risk summary of a Monte Carlo run from its per-path outcomes.

    ``per_path`` needs ``bad_debt_measured_usd``, ``liquidated_usd``, ``tvl_usd``,
    ``liquidated_position_frac``, ``liquidations``, ``amplification``, ``revenue_usd`` and
    ``final_debt_value_usd`` (and ``fundamental_min_over_start`` to condition amplification, see
    :data:`AMPLIFICATION_MIN_DRAWDOWN_FRAC`). Every estimate ``k`` comes with ``k_se``; USD amounts also as
    ``_tvl_frac`` (per-path value over the path's initial collateral value).
    """
    check_se_method(se_method)
    bad = _sample(per_path["bad_debt_measured_usd"])
    liq = _sample(per_path["liquidated_usd"])
    tvl = _sample(per_path["tvl_usd"])
    out: dict[str, object] = {"paths": int(bad.size), "tvl_usd": float(tvl.mean())}
    out.update(tail_block(bad, tvl, "var", "bad_debt", with_cvar=True, se_method=se_method))
    out.update(tail_block(liq, tvl, "lar", "liquidated", with_cvar=False, se_method=se_method))
    out.update(probability_block(bad > 0, "prob_bad_debt"))
    for name, sample in (("bad_debt", bad), ("liquidated", liq)):
        for unit, s in (("usd", sample), ("tvl_frac", sample / tvl)):
            est = mean_estimate(s, se_method)
            out[f"mean_{name}_{unit}"], out[f"mean_{name}_{unit}_se"] = est.value, est.se
    est = mean_estimate(per_path["liquidated_position_frac"], se_method)
    out["prob_liquidation"], out["prob_liquidation_se"] = est.value, est.se
    out.update(probability_block(np.asarray(per_path["liquidations"]) > 0, "prob_any_liquidation"))
    amp = amplification_sample(per_path)
    out["amplification_min_drawdown_frac"] = AMPLIFICATION_MIN_DRAWDOWN_FRAC
    out["amplification_paths"] = int(amp.size)
    if amp.size:
        out.update(distribution_block(amp, "amplification", se_method))
    else:
        for key in ("mean", "p50", "p95", "p99"):
            out[f"amplification_{key}"] = out[f"amplification_{key}_se"] = None
        out["amplification_max"] = None
    for name in ("revenue_usd", "final_debt_value_usd"):
        est = mean_estimate(per_path[name], se_method)
        out[f"mean_{name}"], out[f"mean_{name}_se"] = est.value, est.se
    out["se_method"] = se_method
    return out
