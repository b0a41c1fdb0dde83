"""Finite-difference sensitivities (delta, gamma) of liquidation probability and expected bad debt,
with common random numbers: every bumped run uses the same seeds, paths, book and borrower noise.

- Price: the book is drawn at the start price, then the whole fundamental path is scaled by
  ``1 + x`` (an instantaneous spot move at the first substep); ``x = -h, 0, +h``.
- Protocol parameters (LT, LTV, bonus, close factor): the book is drawn with the base parameters
  and the bumped value is written into the state after the draw (as in ``--book fixed``
  sweeps); central differences where both bumps keep the parameter invariants, one-sided
  otherwise (the table says which), none when neither side is valid.

Derivatives are reported per 0.01 of the input (a 1% price move, one percentage point of a
parameter); gamma per 0.01 squared. Standard errors come from the per-path differences, which
is where common random numbers pay: ``sd(f+_i - f-_i) / (2 h sqrt(n))`` for the central delta,
``sd(f+_i - 2 f0_i + f-_i) / (h^2 sqrt(n))`` for gamma.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..engine.params import EngineParams
from .montecarlo import (
    DriverFactory,
    MonteCarloConfig,
    PathResults,
    Progress,
    RunSpec,
    run_many,
    with_protocol,
)

PRICE_BUMP_FRAC = 0.05
PARAM_BUMPS: dict[str, float] = {
    "liquidation_threshold": 0.01,
    "ltv": 0.01,
    "liquidation_bonus": 0.01,
    "close_factor": 0.1,
}
METRICS = {
    "prob_liquidation": "liquidated_position_frac",
    "mean_bad_debt_usd": "bad_debt_measured_usd",
}
UNIT = 0.01


@dataclass(frozen=True)
class Sensitivity:
    """One input's finite-difference derivatives of one metric (per 0.01 of the input)."""

    input: str
    metric: str
    base_input: float
    bump: float
    method: str
    value: float
    value_down: float | None
    value_up: float | None
    delta_per_unit: float
    delta_per_unit_se: float
    gamma_per_unit2: float | None
    gamma_per_unit2_se: float | None


def _se(diff: np.ndarray) -> float:
    return float(np.std(diff, ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0


def finite_differences(
    down: np.ndarray | None, base: np.ndarray, up: np.ndarray | None, h: float
) -> tuple[str, float, float, float | None, float | None]:
    """``(method, delta, delta_se, gamma, gamma_se)`` per unit of the input from per-path samples
    at ``x - h``, ``x`` and ``x + h`` (``None`` where that side is not available)."""
    if h <= 0:
        raise ValueError(f"bump={h} is out of range; allowed > 0")
    if up is not None and down is not None:
        d = (up - down) / (2 * h)
        g = (up - 2 * base + down) / (h * h)
        return "central", float(d.mean()), _se(d), float(g.mean()), _se(g)
    if up is not None:
        d = (up - base) / h
        return "forward", float(d.mean()), _se(d), None, None
    if down is not None:
        d = (base - down) / h
        return "backward", float(d.mean()), _se(d), None, None
    raise ValueError("no valid bump on either side")


def _rows(
    name: str,
    x0: float,
    h: float,
    runs: dict[str, PathResults | None],
) -> list[Sensitivity]:
    out = []
    base = runs["base"]
    assert base is not None
    for metric, column in METRICS.items():
        samples = {k: (None if r is None else r.per_path[column]) for k, r in runs.items()}
        method, d, dse, g, gse = finite_differences(
            samples["down"], samples["base"], samples["up"], h
        )
        mean = {k: (None if v is None else float(np.mean(v))) for k, v in samples.items()}
        out.append(
            Sensitivity(
                input=name,
                metric=metric,
                base_input=x0,
                bump=h,
                method=method,
                value=float(mean["base"]),
                value_down=mean["down"],
                value_up=mean["up"],
                delta_per_unit=d * UNIT,
                delta_per_unit_se=dse * UNIT,
                gamma_per_unit2=None if g is None else g * UNIT * UNIT,
                gamma_per_unit2_se=None if gse is None else gse * UNIT * UNIT,
            )
        )
    return out


def sensitivity_runs(params: EngineParams) -> int:
    """Number of Monte Carlo runs :func:`run_sensitivities` makes besides the base run."""
    n = 2
    for key, h in PARAM_BUMPS.items():
        x0 = float(getattr(params.protocol, key))
        for x in (x0 - h, x0 + h):
            try:
                with_protocol(params, **{key: x})
                n += 1
            except ValueError:
                pass
    return n


def run_sensitivities(
    params: EngineParams,
    driver_factory: DriverFactory,
    config: MonteCarloConfig,
    *,
    base_results: PathResults | None = None,
    price_bump_frac: float = PRICE_BUMP_FRAC,
    param_bumps: dict[str, float] | None = None,
    progress: Progress | None = None,
    executor: Any = None,
) -> list[Sensitivity]:
    """Delta and gamma of each metric in :data:`METRICS` with respect to the price and to each
    protocol parameter in ``param_bumps`` (default :data:`PARAM_BUMPS`), on the same paths."""
    if not 0 < price_bump_frac < 1:
        raise ValueError(f"price bump={price_bump_frac} is out of range; allowed (0, 1)")
    bumps = PARAM_BUMPS if param_bumps is None else param_bumps
    # every run (price bumps, parameter bumps, the base when not given) in one list of tasks
    specs: dict[tuple[str, str], RunSpec] = {}
    if base_results is None:
        specs[("base", "base")] = RunSpec(params)
    for side, sign in (("down", -1.0), ("up", 1.0)):
        specs[("price", side)] = RunSpec(params, price_factor=1.0 + sign * price_bump_frac)
    for key, h in bumps.items():
        x0 = float(getattr(params.protocol, key))
        for side, sign in (("down", -1.0), ("up", 1.0)):
            try:
                bumped = with_protocol(params, **{key: x0 + sign * h})
            except ValueError:
                continue
            specs[(key, side)] = RunSpec(bumped, book_params=params)
    done = dict(
        zip(
            specs,
            run_many(
                list(specs.values()), driver_factory, config, executor=executor, progress=progress
            ),
            strict=True,
        )
    )
    if base_results is None:
        base_results = done[("base", "base")]
    rows: list[Sensitivity] = []
    runs: dict[str, PathResults | None] = {
        "base": base_results,
        "down": done[("price", "down")],
        "up": done[("price", "up")],
    }
    rows += _rows("price", 1.0, price_bump_frac, runs)
    for key, h in bumps.items():
        x0 = float(getattr(params.protocol, key))
        runs = {"base": base_results, "down": done.get((key, "down")), "up": done.get((key, "up"))}
        if runs["down"] is None and runs["up"] is None:
            continue
        rows += _rows(f"protocol.{key}", x0, h, runs)
    return rows


def to_records(rows: list[Sensitivity]) -> list[dict]:
    return [asdict(r) for r in rows]
