"""Formatting for benchmark reports and summaries: plain numbers, intervals, return units,
the verdict and its significance, smoothed curves, the TensorBoard command."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# What one unit of reward is a fraction of, per env (the reward is divided by it, times
# ``reward_scale``).
RETURN_BASIS = {
    "levgym/Governance-v0": "TVL",
    "levgym/Governance-v1": "TVL",
    "levgym/Governance-v2": "TVL",
    "levgym/Liquidator-v1": "initial capital",
    "levgym/Liquidator-v2": "initial capital",
    "levgym/Liquidator-v3": "initial capital",
    "levgym/PortfolioGovernance-v0": "TVL",
    "levgym/CrossProtocolHedger-v0": "initial equity",
}
SCALE_NAMES = {1e4: "bp", 100.0: "%", 1.0: "fraction"}
# Per-episode metrics that are fractions of episodes: their intervals are clipped to [0, 1].
RATE_METRICS = ("insolvent", "bankrupt", "liquidated")


def plain(x: float, sig: int = 3) -> str:
    """``x`` with ``sig`` significant digits in fixed notation with thousands separators
    (``4,912``, ``12.3``, ``0.0123``), never in exponent notation; ``n/a`` when not finite."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return fixed(x, decimals_for(x, sig))


def fixed(x: float, decimals: int) -> str:
    """``x`` with ``decimals`` decimals and thousands separators; no ``-0``."""
    text = f"{x:,.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text


def decimals_for(x: float, sig: int) -> int:
    """Decimals that show ``sig`` significant digits of ``x`` (none for ``|x| >= 10**(sig-1)``;
    none either when that would take more than 9, so a value below about 1e-7 prints as 0)."""
    if x == 0 or not math.isfinite(x):
        return 0
    d = max(sig - 1 - math.floor(math.log10(abs(x))), 0)
    return int(d) if d <= 9 else 0


def mean_ci(mean: float, ci: float | None, rate: bool = False) -> str:
    """A table cell: ``mean ± half-width``, both rounded to two significant digits of the
    half-width (``-300 ± 1,200``, ``1.23 ± 0.57``), so no digit below the noise is shown. A rate
    (a fraction of episodes) shows its interval as ``[low, high]`` clipped to [0, 1] instead,
    since a rate cannot leave it."""
    if ci is None or not math.isfinite(ci):
        return plain(mean)
    if not math.isfinite(mean):
        return "n/a"
    d = decimals_for(ci, 2) if ci > 0 else decimals_for(mean, 3)
    if rate:
        lo, hi = max(mean - ci, 0.0), min(mean + ci, 1.0)
        d = min(max(d, 2), 3)
        return f"{fixed(mean, d)} [{fixed(lo, d)}, {fixed(hi, d)}]"
    if ci >= 10:  # round to tens, hundreds, ...: two significant digits of the interval
        step = 10.0 ** (math.floor(math.log10(ci)) - 1)
        return f"{fixed(round(mean / step) * step, 0)} ± {fixed(round(ci / step) * step, 0)}"
    return f"{fixed(mean, d)} ± {fixed(ci, d)}"


def default_reward_scale(env_id: str) -> float:
    """The ``reward_scale`` default of an env's vector class (read, not restated)."""
    from levgym.envs import (
        CrossProtocolHedgerVectorEnv,
        GovernanceV1VectorEnv,
        GovernanceV2VectorEnv,
        GovernanceVectorEnv,
        LiquidatorV3VectorEnv,
        LiquidatorVectorEnv,
        PortfolioGovernanceVectorEnv,
    )
    from levgym.envs.base import init_defaults
    from levgym.envs.liquidator import LiquidatorV2VectorEnv

    cls = {
        "levgym/Governance-v0": GovernanceVectorEnv,
        "levgym/Governance-v1": GovernanceV1VectorEnv,
        "levgym/Governance-v2": GovernanceV2VectorEnv,
        "levgym/Liquidator-v1": LiquidatorVectorEnv,
        "levgym/Liquidator-v2": LiquidatorV2VectorEnv,
        "levgym/Liquidator-v3": LiquidatorV3VectorEnv,
        "levgym/PortfolioGovernance-v0": PortfolioGovernanceVectorEnv,
        "levgym/CrossProtocolHedger-v0": CrossProtocolHedgerVectorEnv,
    }
    return float(init_defaults(cls[env_id])["reward_scale"])


def return_unit(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> str:
    """The unit of an env's (episode) return: ``bp of TVL`` for the governor and ``bp of initial
    capital`` for the liquidator at the default ``reward_scale`` of 1e4."""
    kwargs = env_kwargs or {}
    scale = float(kwargs.get("reward_scale", default_reward_scale(env_id)))
    basis = RETURN_BASIS[env_id]
    if scale in SCALE_NAMES:
        return f"{SCALE_NAMES[scale]} of {basis}"
    return f"{basis} x {scale:,.6f}".rstrip("0").rstrip(".")


def compare(
    objectives: Mapping[str, float], cis: Mapping[str, float | None], policy: str = "ppo"
) -> dict[str, list[str]]:
    """How ``policy`` stands against every other: ``beaten_by`` (score at least as high),
    ``beats``, and which of those gaps are ``within`` the 95% intervals (the intervals overlap,
    or one is unknown: not significant at this number of episodes)."""
    mine, my_ci = objectives[policy], cis.get(policy)
    out: dict[str, list[str]] = {"beaten_by": [], "beats": [], "within": []}
    for name in sorted(objectives, key=lambda n: -objectives[n]):
        if name == policy:
            continue
        other_ci = cis.get(name)
        out["beaten_by" if objectives[name] >= mine else "beats"].append(name)
        if my_ci is None or other_ci is None or abs(mine - objectives[name]) <= my_ci + other_ci:
            out["within"].append(name)
    return out


def verdict(
    objectives: Mapping[str, float], cis: Mapping[str, float | None], policy: str = "ppo"
) -> tuple[str, str]:
    """A headline (does the trained agent beat every baseline?) and its significance."""
    c = compare(objectives, cis, policy)
    upper = policy.upper()
    if not c["beaten_by"]:
        headline = f"The trained {upper} agent beats every baseline on the suite's objective."
        close = [n for n in c["beats"] if n in c["within"]]
        if not close:
            detail = "Every margin is larger than the 95% intervals: the win is significant."
        elif len(close) == len(c["beats"]):
            detail = (
                f"Its margin over every baseline ({', '.join(close)}) is inside the 95% "
                "intervals: the win is not significant at this number of episodes."
            )
        else:
            detail = (
                f"The margin over {', '.join(close)} is inside the 95% intervals, so that part "
                "of the ranking is not significant at this number of episodes; over the others "
                "it is."
            )
        return headline, detail
    above = c["beaten_by"]
    headline = (
        f"The trained {upper} agent does not beat every baseline: {', '.join(above)} "
        f"score{'s' if len(above) == 1 else ''} at least as high on the suite's objective."
    )
    sig = [n for n in above if n not in c["within"]]
    if not sig:
        detail = (
            "Every one of those gaps is inside the 95% intervals: not significant at this "
            "number of episodes."
        )
    else:
        detail = f"Significantly better than {upper} (outside the 95% intervals): {', '.join(sig)}."
    return headline, detail


def paired_verdict(
    records: Sequence[Mapping[str, Any]], policy: str = "ppo", alpha: float = 0.05
) -> tuple[str, str]:
    """A headline and its detail from paired comparisons (:func:`agents.stats.compare`): which
    baselines ``policy`` beats, loses to, or cannot be told from, Holm-corrected at ``alpha``."""
    mine = [r for r in records if r["policy"] == policy]
    upper = policy.upper()
    groups: dict[str, list[str]] = {"better": [], "worse": [], "not significant": []}
    for r in sorted(mine, key=lambda r: -r["mean_diff"]):
        groups[r["verdict"]].append(
            f"{r['baseline']} ({'+' if r['mean_diff'] >= 0 else ''}{plain(r['mean_diff'])}, "
            f"p_holm {r['p_holm']:.2g})"
        )
    how = (
        f"paired Wilcoxon signed-rank tests on the same {mine[0]['n'] if mine else 0} episodes, "
        f"Holm-corrected over {len(mine)} comparisons at alpha {alpha:g}"
    )
    if mine and len(groups["better"]) == len(mine):
        headline = f"The trained {upper} agent beats every baseline, significantly ({how})."
    elif groups["worse"]:
        headline = (
            f"The trained {upper} agent does not beat every baseline: it is significantly worse "
            f"than {len(groups['worse'])} of {len(mine)} ({how})."
        )
    else:
        headline = f"The trained {upper} agent does not beat every baseline significantly ({how})."
    parts = [f"{k}: {', '.join(v)}" for k, v in groups.items() if v]
    detail = "Mean difference in return per episode; " + "; ".join(parts) + "."
    return headline, detail


def ema(values: Sequence[float], weight: float = 0.8) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are
    not pulled toward zero. ``weight`` in [0, 1): 0 returns the values."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight={weight} is out of range; allowed 0 <= weight < 1")
    v = np.asarray(values, dtype=np.float64)
    out = np.empty_like(v)
    acc, norm = 0.0, 0.0
    for i, x in enumerate(v):
        acc = weight * acc + (1.0 - weight) * x
        norm = weight * norm + (1.0 - weight)
        out[i] = acc / norm
    return out


def tensorboard_command(runs: Mapping[str, str | os.PathLike]) -> str:
    """One ``tensorboard`` command that loads every run's logs (``--logdir`` given twice keeps
    only the last): their parent folder when the runs are siblings (as the benchmark's are),
    else named ``--logdir_spec`` entries."""
    dirs = [Path(d) for d in runs.values()]
    if len(dirs) == 1:
        return f"tensorboard --logdir {shlex.quote(str(dirs[0] / 'logs'))}"
    parents = {d.parent for d in dirs}
    if len(parents) == 1 and str(next(iter(parents))) not in ("", ".", os.sep):
        return f"tensorboard --logdir {shlex.quote(str(next(iter(parents))))}"
    spec = ",".join(
        f"{env_id.split('/')[-1].lower()}:{d / 'logs'}"
        for env_id, d in zip(runs, dirs, strict=True)
    )
    return f"tensorboard --logdir_spec {shlex.quote(spec)}"


__all__ = [
    "RATE_METRICS",
    "compare",
    "decimals_for",
    "default_reward_scale",
    "ema",
    "fixed",
    "mean_ci",
    "paired_verdict",
    "plain",
    "return_unit",
    "tensorboard_command",
    "verdict",
]
