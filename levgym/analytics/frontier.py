"""Parameter sweeps with common random numbers and the frontier of revenue or borrowing against VaR.

Sweep syntax: ``section.key=start:stop:count`` (``count >= 2`` evenly spaced values, ends
included) or ``section.key=v1,v2,...``; one or two sweeps make a 1-D or 2-D grid. ``section`` is
``protocol``, ``market`` or ``borrowers`` and ``key`` one of its float fields.

Every grid point runs the same paths (same seeds, batch sizes and borrower noise; see
:mod:`levgym.analytics.montecarlo`). Book comparability, ``book``:

- ``fixed`` (default): the initial positions are drawn with the base parameters (preset and
  ``--set``) and the grid point's protocol parameters are written into the state right after
  the draw (``levgym.engine.state.set_protocol_params``). Every grid point starts from exactly
  the same collateral and debt: the question answered is "what would these parameters do to
  today's book". Market and borrower keys of the grid point apply from the start (they are the
  world the book lives in).
- ``rescaled``: the book is drawn with the grid point's parameters. Same seeds give the same
  position sizes, health-factor draws and behaviours, but debt is set from
  ``HF target * LT`` (and ``LT / LTV``) at the grid point, so a higher LT or LTV also means more
  borrowing: the question answered is "what if borrowers use the capacity these parameters
  give them at their usual health factor".

Grid points that break a parameter invariant (``LTV <= LT``, ``LT * (1 + bonus) < 1`` or a
field's range) are skipped with one warning line each, naming the point and the rule; fewer than
two valid points is an error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from ..engine.params import BorrowerParams, EngineParams, MarketParams, ProtocolParams
from .montecarlo import DriverFactory, MonteCarloConfig, PathResults, Progress, RunSpec, run_many
from .risk import Estimate, summarize_paths, value_at_risk

SWEEP_SECTIONS: dict[str, type] = {
    "protocol": ProtocolParams,
    "market": MarketParams,
    "borrowers": BorrowerParams,
}
BOOK_MODES = ("fixed", "rescaled")
FRONTIER_X = ("auto", "revenue", "debt", "capacity")
MAX_SWEEPS = 2
MAX_COUNT = 101
SYNTAX = "section.key=start:stop:count or section.key=v1,v2,..."

# Metrics of each grid point kept in the sweep table.
POINT_KEYS = (
    "var_95_bad_debt_usd",
    "var_95_bad_debt_usd_se",
    "var_99_bad_debt_usd",
    "var_99_bad_debt_usd_se",
    "cvar_99_bad_debt_usd",
    "cvar_99_bad_debt_usd_se",
    "var_99_bad_debt_tvl_frac",
    "mean_bad_debt_usd",
    "mean_bad_debt_usd_se",
    "prob_bad_debt",
    "prob_liquidation",
    "lar_99_liquidated_usd",
    "mean_revenue_usd",
    "mean_revenue_usd_se",
    "mean_final_debt_value_usd",
    "tvl_usd",
)


def float_fields(section: str) -> list[str]:
    """The float fields of a parameter section (the keys a sweep may vary)."""
    cls = SWEEP_SECTIONS[section]
    return [f.name for f in dataclasses.fields(cls) if isinstance(getattr(cls(), f.name), float)]


@dataclass(frozen=True)
class SweepAxis:
    """One swept parameter and its values."""

    section: str
    key: str
    values: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def _number(text: str, what: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"--sweep {item!r}: {what} {text!r} is not a number; allowed {SYNTAX}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"--sweep {item!r}: {what} {text!r} is not finite; allowed finite numbers")
    return value


def parse_sweep(item: str) -> SweepAxis:
    """Parse one ``--sweep`` value; raises ``ValueError`` naming the problem."""
    if "=" not in item:
        raise ValueError(f"--sweep {item!r} is malformed; allowed {SYNTAX}")
    lhs, rhs = item.split("=", 1)
    lhs = lhs.strip()
    if "." not in lhs:
        raise ValueError(f"--sweep {item!r} is malformed; allowed {SYNTAX}")
    section, key = lhs.split(".", 1)
    if section not in SWEEP_SECTIONS:
        raise ValueError(
            f"--sweep {item!r}: unknown section {section!r}; allowed {', '.join(SWEEP_SECTIONS)}"
        )
    allowed = float_fields(section)
    if key not in allowed:
        raise ValueError(
            f"--sweep {item!r}: unknown key {section}.{key}; allowed {section}.{{{', '.join(allowed)}}}"
        )
    rhs = rhs.strip()
    if ":" in rhs:
        parts = rhs.split(":")
        if len(parts) != 3:
            raise ValueError(
                f"--sweep {item!r}: range {rhs!r} is malformed; allowed start:stop:count"
            )
        start = _number(parts[0], "start", item)
        stop = _number(parts[1], "stop", item)
        try:
            count = int(parts[2])
        except ValueError:
            raise ValueError(
                f"--sweep {item!r}: count {parts[2]!r} is not an integer; allowed an integer >= 2"
            ) from None
        if count < 2 or count > MAX_COUNT:
            raise ValueError(
                f"--sweep {item!r}: count={count} is out of range; allowed 2..{MAX_COUNT}"
            )
        if start == stop:
            raise ValueError(
                f"--sweep {item!r}: start equals stop ({start:g}); allowed start != stop"
            )
        values = tuple(float(round(v, 12)) for v in np.linspace(start, stop, count))
    else:
        texts = [t for t in rhs.split(",") if t.strip()]
        values = tuple(_number(t.strip(), "value", item) for t in texts)
        if len(values) < 2:
            raise ValueError(
                f"--sweep {item!r}: {len(values)} value(s); allowed at least 2 ({SYNTAX})"
            )
        if len(set(values)) != len(values):
            raise ValueError(f"--sweep {item!r}: repeated values; allowed distinct values")
    return SweepAxis(section, key, values)


def parse_sweeps(items: list[str] | None) -> list[SweepAxis]:
    """Parse up to two ``--sweep`` values on distinct keys."""
    axes = [parse_sweep(i) for i in items or []]
    if len(axes) > MAX_SWEEPS:
        raise ValueError(f"{len(axes)} --sweep options given; allowed at most {MAX_SWEEPS}")
    if len(axes) == 2 and axes[0].name == axes[1].name:
        raise ValueError(f"--sweep {axes[0].name} is given twice; allowed two different keys")
    return axes


def apply_point(
    base: EngineParams, axes: list[SweepAxis], coords: tuple[float, ...]
) -> EngineParams:
    """``base`` with each axis' key set to its coordinate (validated; raises ``ValueError``)."""
    changes: dict[str, dict[str, float]] = {}
    for axis, value in zip(axes, coords, strict=True):
        changes.setdefault(axis.section, {})[axis.key] = value
    parts = {name: getattr(base, name) for name in ("protocol", "market", "borrowers", "run")}
    for section, values in changes.items():
        parts[section] = dataclasses.replace(parts[section], **values)
    return EngineParams(**parts)


def grid(
    base: EngineParams, axes: list[SweepAxis]
) -> tuple[list[tuple[tuple[float, ...], EngineParams]], list[tuple[tuple[float, ...], str]]]:
    """Valid grid points ``(coords, params)`` and skipped ones ``(coords, reason)``."""
    valid, skipped = [], []
    for coords in product(*(a.values for a in axes)):
        try:
            valid.append((coords, apply_point(base, axes, coords)))
        except ValueError as exc:
            skipped.append((coords, str(exc)))
    return valid, skipped


def checked_grid(
    base: EngineParams, axes: list[SweepAxis]
) -> tuple[list[tuple[tuple[float, ...], EngineParams]], list[tuple[tuple[float, ...], str]]]:
    """:func:`grid`, raising ``ValueError`` when fewer than two points are valid."""
    valid, skipped = grid(base, axes)
    if len(valid) < 2:
        raise ValueError(
            f"the sweep has {len(valid)} valid grid point(s) of {len(valid) + len(skipped)}; "
            "allowed at least 2 (points must keep ltv <= liquidation_threshold, "
            "liquidation_threshold * (1 + liquidation_bonus) < 1 and each field's range)"
        )
    return valid, skipped


def point_label(axes: list[SweepAxis], coords: tuple[float, ...]) -> str:
    return ", ".join(f"{a.name}={v:g}" for a, v in zip(axes, coords, strict=True))


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of points not dominated by another (larger or equal ``x`` and smaller or equal ``y``,
    one strictly): the efficient frontier when ``x`` is a benefit and ``y`` a risk."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.ones(x.size, dtype=bool)
    for i in range(x.size):
        dominated = (x >= x[i]) & (y <= y[i]) & ((x > x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


def resolve_frontier_x(which: str, book: str) -> str:
    """``auto`` is ``revenue`` for a fixed book (its initial debt does not move) and ``debt`` for a
    rescaled book (borrowing that the parameters let the same borrowers take)."""
    if which not in FRONTIER_X:
        raise ValueError(f"frontier x {which!r} is unknown; allowed {', '.join(FRONTIER_X)}")
    if which != "auto":
        return which
    return "revenue" if book == "fixed" else "debt"


def frontier_x(summary: dict[str, Any], params: EngineParams, which: str) -> float:
    """The benefit coordinate of a point: ``revenue`` (mean protocol revenue over the horizon:
    reserve income plus the protocol's share of liquidation bonuses), ``debt`` (mean initial
    debt: the borrowing the book carries) or ``capacity`` (borrowing power of the book's
    collateral, TVL x LTV)."""
    if which == "auto":
        raise ValueError("frontier x 'auto' must be resolved first (resolve_frontier_x)")
    if which == "revenue":
        return float(summary["mean_revenue_usd"])
    if which == "debt":
        return float(summary["mean_initial_debt_value_usd"])
    if which == "capacity":
        return float(summary["tvl_usd"]) * params.protocol.ltv
    raise ValueError(f"frontier x {which!r} is unknown; allowed {', '.join(FRONTIER_X)}")


@dataclass
class SweepResult:
    """The evaluated grid (same paths everywhere) and the base point."""

    axes: list[SweepAxis]
    book: str
    x_metric: str
    points: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    base_point: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "axes": [{"key": a.name, "values": list(a.values)} for a in self.axes],
            "book": self.book,
            "frontier_x_metric": self.x_metric,
            "points": self.points,
            "skipped": self.skipped,
            "base": self.base_point,
        }


def _point_record(
    coords: dict[str, float], res: PathResults, params: EngineParams, x_metric: str
) -> dict[str, Any]:
    s = summarize_paths(res.per_path)
    s["mean_initial_debt_value_usd"] = float(np.mean(res.per_path["initial_debt_value_usd"]))
    rec: dict[str, Any] = {"params": coords}
    rec.update({k: s[k] for k in POINT_KEYS})
    rec["mean_initial_debt_value_usd"] = s["mean_initial_debt_value_usd"]
    rec["frontier_x"] = frontier_x(s, params, x_metric)
    return rec


def paired_var_difference(
    x: np.ndarray, y: np.ndarray, level: float, n_boot: int = 400, seed: int = 0
) -> Estimate:
    """``VaR(x) - VaR(y)`` for losses on the same paths, with a paired-bootstrap SE (paths are
    resampled jointly, so the common random numbers shrink the SE of the difference)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples have shapes {x.shape} and {y.shape}; allowed equal")
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, x.size, x.size)
        boots[i] = value_at_risk(x[idx], level) - value_at_risk(y[idx], level)
    return Estimate(value_at_risk(x, level) - value_at_risk(y, level), float(np.std(boots, ddof=1)))


def run_sweep(
    base: EngineParams,
    driver_factory: DriverFactory,
    config: MonteCarloConfig,
    axes: list[SweepAxis],
    *,
    book: str = "fixed",
    x_metric: str = "auto",
    base_results: PathResults | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    executor: Any = None,
) -> SweepResult:
    """Evaluate every valid grid point on the same paths and mark the Pareto frontier.

    ``base_results`` (a run of ``base`` with the same config) is reused for the base point;
    otherwise it is run here. ``warn`` receives one line per skipped grid point. ``executor``
    runs the batches of all grid points as one list of tasks (:func:`montecarlo.run_many`).
    """
    if book not in BOOK_MODES:
        raise ValueError(f"book={book!r} is unknown; allowed {', '.join(BOOK_MODES)}")
    x_metric = resolve_frontier_x(x_metric, book)
    valid, skipped = checked_grid(base, axes)
    result = SweepResult(axes, book, x_metric)
    for coords, reason in skipped:
        label = point_label(axes, coords)
        result.skipped.append(
            {"params": dict(zip([a.name for a in axes], coords, strict=True)), "reason": reason}
        )
        if warn is not None:
            warn(f"skipping grid point {label}: {reason}")
    specs = [
        RunSpec(
            params,
            dataclasses.replace(params, protocol=base.protocol) if book == "fixed" else params,
        )
        for _, params in valid
    ]
    if base_results is None:
        specs.insert(0, RunSpec(base))
    # every batch of every grid point is one task (one list: the executor keeps all workers busy)
    runs = run_many(specs, driver_factory, config, executor=executor, progress=progress)
    if base_results is None:
        base_results = runs.pop(0)
    base_coords = {a.name: float(getattr(getattr(base, a.section), a.key)) for a in axes}
    result.base_point = _point_record(base_coords, base_results, base, x_metric)
    for (coords, params), res in zip(valid, runs, strict=True):
        names = [a.name for a in axes]
        rec = _point_record(dict(zip(names, coords, strict=True)), res, params, x_metric)
        diff = paired_var_difference(res.bad_debt_usd, base_results.bad_debt_usd, 0.99)
        rec["var_99_minus_base_usd"], rec["var_99_minus_base_usd_se"] = diff.value, diff.se
        result.points.append(rec)
    xs = np.array([p["frontier_x"] for p in result.points] + [result.base_point["frontier_x"]])
    ys = np.array(
        [p["var_99_bad_debt_usd"] for p in result.points]
        + [result.base_point["var_99_bad_debt_usd"]]
    )
    front = pareto_front(xs, ys)
    for p, f in zip(result.points, front[:-1], strict=True):
        p["on_frontier"] = bool(f)
    result.base_point["on_frontier"] = bool(front[-1])
    return result
