"""The risk steward's action schema: rows of levers, each with bounds, a per-change limit and a
cool-down, mapping a normalised ``Box(-1, 1)`` action to parameter changes.

A :class:`Lever` is one row: the engine field it moves (a per-env protocol parameter of
:data:`levgym.engine.schema.STATE_SCHEMA`, or a switch order of :class:`levgym.engine.orders.Orders`),
its bounds (absolute, or multiples of a per-env reference such as the episode's initial
collateral), the largest increase and decrease one change may make (absolute, or a share of the
current value for caps), the cool-down that must pass after a change before the next one, and
for a switch the longest it may stay on. A :class:`StewardSchema` is the table of rows; its
:meth:`StewardSchema.apply` turns actions into new values for any batch shape ``[..., L]`` (one
market ``[E, L]`` here, a reserve per asset ``[E, K, L]`` in a multi-asset env), so an env that
governs several reserves reuses the same rows per reserve.

The limits follow how risk stewards work on Aave: the Generalized Risk Stewards cap LT, LTV and
bonus moves to small absolute steps with a minimum delay between updates of one parameter, and
Chaos Labs' Edge risk oracles raise supply and borrow caps by at most 100% per 3 days. The
parameters that must hold together are projected after the steps
(:func:`project_risk`): ``LTV <= LT`` and ``LT * (1 + bonus) <= 1 - margin``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.orders import SWITCHES
from ..engine.schema import PARAM_FIELDS
from .features import Feature
from .formulas import (
    lever_position,
    risk_projection,
    steward_changed,
    steward_cooldown_left,
    steward_level,
    steward_ready,
    steward_switch,
)

KINDS = ("level", "switch")
LEVER_COLUMNS = ("switch", "cooldown_h", "deadband", "step_up", "step_down", "relative", "max_on_h")
"""The columns of :meth:`StewardSchema.table` (one row per lever; ``switch`` and ``relative``
are 0 / 1)."""

RESERVE_TARGETS = (
    "liquidation_threshold",
    "ltv_gap",
    "liquidation_bonus",
    "supply_cap_asset",
    "borrow_cap_asset",
    "base_rate_apr",
    "slope1_apr",
    "slope2_apr",
    "optimal_utilization_frac",
)
"""Fields a lever of scope ``reserve`` may move: a field of one reserve (or E-mode category) of
the cross-margin market (:class:`levgym.engine.portfolio.Reserve`), or ``ltv_gap``, the LTV as
its gap below the liquidation threshold (``LTV = LT - gap``)."""
SCOPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "engine": (PARAM_FIELDS, SWITCHES),
    "reserve": (RESERVE_TARGETS, ()),
}
"""What a lever may move, per scope: (level targets, switch targets). ``engine``: a per-env
parameter or switch order of the single-asset engine; ``reserve``: a reserve's field, one row of
the multi-asset schema (:class:`StewardRows`)."""


def _finite(name: str, value: float, lo: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"lever {name}: {value!r} must be a finite number")
    if value < lo:
        raise ValueError(f"lever {name}: {value:g} is out of range; allowed >= {lo:g}")


@dataclass(frozen=True)
class Lever:
    """One row of the steward's schema.

    A ``level`` lever moves an engine parameter: an action ``a`` in ``[-1, 1]`` with
    ``|a| <= deadband`` leaves it alone; otherwise its share ``f = (|a| - deadband) / (1 -
    deadband)`` of the largest change is applied, ``+f * step_up`` or ``-f * step_down``
    (times the current value when ``relative``), and the result is clipped to the bounds. A
    ``switch`` lever turns an order on when ``a > deadband`` and off otherwise.

    A change (the value moved, for any reason) starts the cool-down: the lever does not move
    again until ``cooldown_h`` hours have passed. A switch may go off at any time, but on again
    only ``cooldown_h`` hours after it went off, and it goes off by itself after ``max_on_h``.
    """

    name: str
    """Name of the action component (and of the observation features of this lever)."""
    target: str
    """The engine field it moves: a protocol parameter of the state, or a switch order."""
    kind: str
    """``level`` (a parameter) or ``switch`` (an order that is on or off)."""
    unit: str
    """Unit of the value (as the engine field's)."""
    low: float
    """Lower bound (times the reference ``bounds_of`` when given)."""
    high: float
    """Upper bound (times the reference ``bounds_of`` when given)."""
    step_up: float = 0.0
    """Largest increase of one change (a share of the current value when ``relative``)."""
    step_down: float = 0.0
    """Largest decrease of one change (a share of the current value when ``relative``)."""
    relative: bool = False
    """Steps are shares of the current value (caps) rather than absolute amounts."""
    cooldown_h: float = 0.0
    """Hours after a change before the next one (a switch: after it went off, before it goes on)."""
    max_on_h: float = math.inf
    """A switch goes off by itself after this many hours on."""
    deadband: float = 0.0
    """Actions with ``|a|`` up to this leave a level alone; a switch is on above it."""
    bounds_of: str | None = None
    """Name of a per-env reference value the bounds are multiples of (``None``: absolute)."""
    doc: str = ""
    """What the lever does, one line."""
    scope: str = "engine"
    """What ``target`` names (:data:`SCOPES`): a field of the single-asset engine (``engine``) or
    of one reserve of the cross-margin market (``reserve``)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"lever {self.name}: kind {self.kind!r}; allowed {', '.join(KINDS)}")
        if self.scope not in SCOPES:
            raise ValueError(
                f"lever {self.name}: scope {self.scope!r}; allowed {', '.join(SCOPES)}"
            )
        levels, switches = SCOPES[self.scope]
        allowed = switches if self.kind == "switch" else levels
        if self.target not in allowed:
            raise ValueError(
                f"lever {self.name}: target {self.target!r}; allowed for a {self.kind} "
                f"{', '.join(allowed) or 'nothing'} (scope {self.scope})"
            )
        for name in ("low", "high", "step_up", "step_down", "cooldown_h"):
            _finite(f"{self.name}.{name}", getattr(self, name))
        if not self.low <= self.high:
            raise ValueError(f"lever {self.name}: low={self.low:g} > high={self.high:g}")
        if not (isinstance(self.max_on_h, int | float) and self.max_on_h > 0):
            raise ValueError(f"lever {self.name}: max_on_h={self.max_on_h!r}; allowed > 0")
        if not 0.0 <= self.deadband < 1.0:
            raise ValueError(f"lever {self.name}: deadband={self.deadband:g}; allowed [0, 1)")
        if self.relative and self.step_down > 1.0:
            raise ValueError(
                f"lever {self.name}: a relative step_down={self.step_down:g} would go below 0; "
                "allowed <= 1"
            )

    @property
    def is_switch(self) -> bool:
        return self.kind == "switch"

    def limit_text(self) -> str:
        """The per-change limit in words (for the generated table)."""
        if self.is_switch:
            on = "no limit" if math.isinf(self.max_on_h) else f"at most {self.max_on_h:g} h"
            return f"on when a > {self.deadband:g}; {on} on"
        if self.relative:
            return f"+{100 * self.step_up:g}% / -{100 * self.step_down:g}%"
        return f"+{self.step_up:g} / -{self.step_down:g}"


@dataclass
class StewardClock:
    """Per-lever timing state of a batch ``[..., L]``: when each lever last changed and, for
    switches, since when it is on (``nan`` while off)."""

    last_change_h: np.ndarray
    on_since_h: np.ndarray

    @classmethod
    def new(cls, shape: tuple[int, ...]) -> StewardClock:
        return cls(np.full(shape, -np.inf), np.full(shape, np.nan))

    def reset(self, mask: np.ndarray) -> None:
        """Forget the timing of the batch entries in ``mask`` (a new episode)."""
        self.last_change_h[mask] = -np.inf
        self.on_since_h[mask] = np.nan


def _per_lever(now_h: Any) -> np.ndarray:
    """A time (number or per batch entry ``[...]``) broadcastable against ``[..., L]``."""
    now = np.asarray(now_h, dtype=np.float64)
    return now[..., None] if now.ndim else now


project_risk = risk_projection
"""``(ltv, lt)`` projected so that ``LT * (1 + bonus) <= 1 - margin`` (LT gives way to the
bonus: liquidators stay paid) and ``LTV <= LT`` (:func:`levgym.envs.formulas.risk_projection`)."""


@dataclass(frozen=True)
class StewardSchema:
    """The steward's levers as rows; the action is one component per row, in order."""

    levers: tuple[Lever, ...]
    margin: float = 0.001
    """The projection keeps ``LT * (1 + bonus) <= 1 - margin``."""
    on_target_tol: float = field(default=1e-12, repr=False)
    """A value that moved by less than this (relative) did not change."""

    def __post_init__(self) -> None:
        names = [v.name for v in self.levers]
        if len(set(names)) != len(names):
            raise ValueError(f"steward levers must have distinct names; got {names}")
        targets = [v.target for v in self.levers]
        if len(set(targets)) != len(targets):
            raise ValueError(f"steward levers must move distinct fields; got {targets}")
        if not 0.0 < self.margin < 0.5:
            raise ValueError(f"steward margin={self.margin:g}; allowed (0, 0.5)")

    # ------------------------------------------------------------------ description
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.levers)

    def index(self) -> dict[str, int]:
        return {v.name: i for i, v in enumerate(self.levers)}

    def by_target(self) -> dict[str, int]:
        return {v.target: i for i, v in enumerate(self.levers)}

    @property
    def level_columns(self) -> np.ndarray:
        return np.array([not v.is_switch for v in self.levers])

    def action_features(self) -> tuple[Feature, ...]:
        """The action components (name, meaning, -1, 1), one per lever."""
        out = []
        for v in self.levers:
            if v.is_switch:
                text = f"{v.doc}: on when > {v.deadband:g}"
            else:
                text = f"{v.doc}: change, x its per-change limit"
            out.append(Feature(v.name, text, -1.0, 1.0))
        return tuple(out)

    def markdown_table(self) -> str:
        """The schema as a Markdown table (the docs' generated ``steward-levers`` block)."""
        lines = [
            "| index | lever | moves | kind | bounds | per change | cool-down | meaning |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, v in enumerate(self.levers):
            ref = f" x `{v.bounds_of}`" if v.bounds_of else ""
            bounds = "off / on" if v.is_switch else f"[{v.low:g}, {v.high:g}]{ref} ({v.unit})"
            cool = f"{v.cooldown_h:g} h" if v.cooldown_h else "none"
            if v.is_switch and v.cooldown_h:
                cool = f"{v.cooldown_h:g} h off before on again"
            lines.append(
                f"| {i} | `{v.name}` | `{v.target}` | {v.kind} | {bounds} | {v.limit_text()} | "
                f"{cool} | {v.doc} |"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ bounds
    def bounds(
        self, refs: Mapping[str, np.ndarray], shape: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds ``shape + (L,)``; ``refs`` holds the per-entry references
        (arrays of ``shape``) that relative bounds are multiples of."""
        low = np.empty((*shape, len(self.levers)))
        high = np.empty_like(low)
        for j, v in enumerate(self.levers):
            scale = 1.0
            if v.bounds_of is not None:
                if v.bounds_of not in refs:
                    raise ValueError(
                        f"lever {v.name} needs the reference {v.bounds_of!r}; given {sorted(refs)}"
                    )
                scale = np.asarray(refs[v.bounds_of], dtype=np.float64)
            low[..., j] = v.low * scale
            high[..., j] = v.high * scale
        return low, high

    def check_contains(self, values: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        """Raise a ValueError naming the lever when a starting value lies outside its bounds."""
        for j, v in enumerate(self.levers):
            x = values[..., j]
            if v.is_switch:
                bad = ~np.isin(x, (0.0, 1.0))
            else:
                tol = 1e-9 * np.maximum(np.abs(high[..., j]), 1.0)
                bad = (x < low[..., j] - tol) | (x > high[..., j] + tol)
            if np.any(bad):
                k = np.argwhere(np.atleast_1d(bad))[0]
                xv = float(np.atleast_1d(x)[tuple(k)])
                lo, hi = (
                    float(np.atleast_1d(low[..., j])[tuple(k)]),
                    float(np.atleast_1d(high[..., j])[tuple(k)]),
                )
                raise ValueError(
                    f"{v.target}={xv:g} is outside lever {v.name}'s bounds; allowed "
                    f"[{lo:g}, {hi:g}] (change the starting parameters or the lever)"
                )

    # ------------------------------------------------------------------ the step
    def ready(self, clock: StewardClock, now_h: Any) -> np.ndarray:
        """Whether each lever may change now ``[..., L]`` (its cool-down has passed; a switch
        that is on may always go off). ``now_h``: a number, or the time of each batch entry."""
        cool = np.array([v.cooldown_h for v in self.levers])
        return steward_ready(_per_lever(now_h), clock.last_change_h, clock.on_since_h, cool)

    def cooldown_left(self, clock: StewardClock, now_h: Any) -> np.ndarray:
        """Share of each lever's cool-down still to run ``[..., L]`` in [0, 1] (0: ready)."""
        cool = np.array([v.cooldown_h for v in self.levers])
        return steward_cooldown_left(_per_lever(now_h), clock.last_change_h, clock.on_since_h, cool)

    def positions(self, values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Each level lever's value as its position within its bounds ``[..., L]`` (0 low,
        1 high); switches keep their value (0 / 1)."""
        return np.where(self.level_columns, lever_position(values, low, high), values)

    def table(self) -> np.ndarray:
        """The levers as the rows of a float64 array ``[L, len(LEVER_COLUMNS)]`` (what a
        compiled step reads: :data:`LEVER_COLUMNS`)."""
        return np.array(
            [
                [
                    float(v.is_switch), v.cooldown_h, v.deadband, v.step_up, v.step_down,
                    float(v.relative), v.max_on_h,
                ]
                for v in self.levers
            ],
            dtype=np.float64,
        ).reshape(len(self.levers), len(LEVER_COLUMNS))  # fmt: skip

    def apply(
        self,
        values: np.ndarray,
        action: np.ndarray,
        clock: StewardClock,
        now_h: Any,
        low: np.ndarray,
        high: np.ndarray,
        fixed: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """New lever values ``[..., L]`` after ``action`` ``[..., L]`` (finite; clipped to
        ``[-1, 1]``) at time ``now_h``; updates ``clock``. Returns ``(values, changed)``.

        Steps: levels move by their share of the per-change limit where ready, clipped to the
        bounds; switches turn on where ``a > deadband`` and ready, off where ``a <= deadband``
        or after ``max_on_h``; then :func:`project_risk` on the LTV, LT and bonus (``fixed``
        gives those that are not levers here). A value that moved starts its cool-down.
        """
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        now = np.asarray(now_h, dtype=np.float64)
        old = np.asarray(values, dtype=np.float64)
        new = old.copy()
        last, since = clock.last_change_h, clock.on_since_h
        for j, v in enumerate(self.levers):
            clock_j = (now, last[..., j], since[..., j], v.cooldown_h, v.deadband)
            if v.is_switch:
                new[..., j] = steward_switch(old[..., j], a[..., j], *clock_j, v.max_on_h)
            else:
                new[..., j] = steward_level(
                    old[..., j], a[..., j], *clock_j, v.step_up, v.step_down,
                    float(v.relative), low[..., j], high[..., j],
                )  # fmt: skip
        self._project(new, fixed or {})
        changed = steward_changed(new, old, self.on_target_tol)
        stamp = np.broadcast_to(_per_lever(now_h), changed.shape)
        clock.last_change_h[changed] = stamp[changed]
        switch = ~self.level_columns
        turned_on = changed & switch & (new != 0.0)
        turned_off = changed & switch & (new == 0.0)
        clock.on_since_h[turned_on] = stamp[turned_on]
        clock.on_since_h[turned_off] = np.nan
        return new, changed

    def _project(self, new: np.ndarray, fixed: Mapping[str, np.ndarray]) -> None:
        col = self.by_target()
        names = ("ltv", "liquidation_threshold", "liquidation_bonus")
        if "ltv_gap" in col:
            self._project_gap(new, fixed)
            return
        if not any(n in col for n in names):
            return
        got = {}
        for n in names:
            if n in col:
                got[n] = new[..., col[n]]
            elif n in fixed:
                got[n] = np.asarray(fixed[n], dtype=np.float64)
            else:
                raise ValueError(
                    f"the steward moves some of {', '.join(names)}; pass the others ({n}) in fixed"
                )
        ltv, lt = project_risk(
            got["ltv"], got["liquidation_threshold"], got["liquidation_bonus"], self.margin
        )
        if "ltv" in col:
            new[..., col["ltv"]] = ltv
        if "liquidation_threshold" in col:
            new[..., col["liquidation_threshold"]] = lt

    def _project_gap(self, new: np.ndarray, fixed: Mapping[str, np.ndarray]) -> None:
        """The projection when the LTV is a gap below LT (``LTV = LT - gap``, so ``LTV <= LT``
        holds by construction): LT gives way to the bonus as in :func:`project_risk`, then the
        gap is at most LT (``LTV >= 0``)."""
        col = self.by_target()
        got = {}
        for n in ("liquidation_threshold", "liquidation_bonus"):
            if n in col:
                got[n] = new[..., col[n]]
            elif n in fixed:
                got[n] = np.asarray(fixed[n], dtype=np.float64)
            else:
                raise ValueError(f"the steward moves ltv_gap; pass {n} in fixed")
        lt = got["liquidation_threshold"]
        _, lt = project_risk(lt, lt, got["liquidation_bonus"], self.margin)
        if "liquidation_threshold" in col:
            new[..., col["liquidation_threshold"]] = lt
        g = col["ltv_gap"]
        new[..., g] = np.minimum(new[..., g], lt)


def lever_table(levers: Sequence[Lever]) -> str:
    """The Markdown table of a sequence of levers (see :meth:`StewardSchema.markdown_table`)."""
    return StewardSchema(tuple(levers)).markdown_table()


# ---------------------------------------------------------------------- rows of one schema
@dataclass(frozen=True)
class RowGroup:
    """Rows that share one :class:`StewardSchema`: the same levers, limits and cool-downs for
    every row (each reserve of a market, each E-mode category), each row with its own values,
    bounds and clock."""

    name: str
    """Name of the group (``reserve``, ``emode``)."""
    schema: StewardSchema
    rows: tuple[str, ...]
    """Name of each row (a reserve's symbol, an E-mode category's label)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        if not self.rows:
            raise ValueError(f"row group {self.name}: rows=() is empty; allowed one or more")
        if len(set(self.rows)) != len(self.rows):
            raise ValueError(f"row group {self.name}: rows {list(self.rows)} must be distinct")
        if not isinstance(self.schema, StewardSchema):
            raise ValueError(f"row group {self.name}: schema must be a StewardSchema")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, levers)``."""
        return len(self.rows), len(self.schema.levers)

    @property
    def size(self) -> int:
        return len(self.rows) * len(self.schema.levers)


@dataclass(frozen=True)
class StewardRows:
    """A steward's schema over several rows: the multi-asset form of :class:`StewardSchema`.

    Each :class:`RowGroup` applies its schema per row (``[E, R, L]`` arrays: the schema's own
    :meth:`StewardSchema.apply` over a batch of rows); the action is every group's rows, row by
    row, flattened in order: component ``offset_g + r * L_g + j`` is lever ``j`` of row ``r`` of
    group ``g``, named ``{row}.{lever}``."""

    groups: tuple[RowGroup, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        names = [g.name for g in self.groups]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"steward rows need distinct, non-empty group names; got {names}")
        feats = [f.name for f in self.action_features()]
        if len(set(feats)) != len(feats):
            raise ValueError("steward rows: two rows of different groups share a name")

    @property
    def size(self) -> int:
        """Components of the action."""
        return sum(g.size for g in self.groups)

    def slices(self) -> dict[str, slice]:
        """Each group's components in the action."""
        out, start = {}, 0
        for g in self.groups:
            out[g.name] = slice(start, start + g.size)
            start += g.size
        return out

    def group(self, name: str) -> RowGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise ValueError(f"row group {name!r} is unknown; allowed {[g.name for g in self.groups]}")

    def split(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """The action ``[..., A]`` as each group's ``[..., R, L]`` (views)."""
        a = np.asarray(action)
        return {
            g.name: a[..., sl].reshape(*a.shape[:-1], *g.shape)
            for g, sl in zip(self.groups, self.slices().values(), strict=True)
        }

    def action_features(self) -> tuple[Feature, ...]:
        """The action components, row by row: ``{row}.{lever}``, the lever's meaning."""
        out = []
        for g in self.groups:
            base = g.schema.action_features()
            for row in g.rows:
                out += [
                    Feature(f"{row}.{f.name}", f"{row}: {f.description}", -1.0, 1.0) for f in base
                ]
        return tuple(out)

    def markdown_table(self) -> str:
        """Each group's levers as a Markdown table, headed by the rows they apply to."""
        parts = []
        for g in self.groups:
            rows = ", ".join(f"`{r}`" for r in g.rows)
            parts.append(f"Rows of group `{g.name}` ({rows}):\n\n{g.schema.markdown_table()}")
        return "\n\n".join(parts)


# ---------------------------------------------------------------------- Governance-v1's rows
DAY_H = 24.0

GOVERNANCE_V1_LEVERS: tuple[Lever, ...] = (
    Lever(
        "supply_cap", "supply_cap_asset", "level", "asset", 0.25, 4.0,
        step_up=1.0, step_down=0.5, relative=True, cooldown_h=3 * DAY_H,
        bounds_of="initial_collateral_asset",
        doc="supply cap of the collateral (Chaos Labs' Edge: +100% per 3 days)",
    ),
    Lever(
        "borrow_cap", "borrow_cap_usd", "level", "debt", 0.25, 4.0,
        step_up=1.0, step_down=0.5, relative=True, cooldown_h=3 * DAY_H,
        bounds_of="initial_debt_usd",
        doc="borrow cap of the debt asset (Chaos Labs' Edge: +100% per 3 days)",
    ),
    Lever(
        "ltv", "ltv", "level", "frac", 0.40, 0.93, step_up=0.005, step_down=0.01,
        doc="loan-to-value limit of new borrowing (kept <= LT)",
    ),
    Lever(
        "liquidation_threshold", "liquidation_threshold", "level", "frac", 0.50, 0.95,
        step_up=0.005, step_down=0.005,
        doc="liquidation threshold (a cut liquidates users of the live book)",
    ),
    Lever(
        "liquidation_bonus", "liquidation_bonus", "level", "frac", 0.02, 0.15,
        step_up=0.005, step_down=0.005,
        doc="liquidation bonus (a dynamic bonus against toxic spirals)",
    ),
    Lever(
        "close_factor", "close_factor", "level", "frac", 0.2, 1.0, step_up=0.25, step_down=0.25,
        doc="share of debt one liquidation may repay above the full-close HF",
    ),
    Lever(
        "slope2", "slope2_apr", "level", "apr", 0.05, 3.0, step_up=0.25, step_down=0.25,
        cooldown_h=6.0, doc="rate slope above the kink (Chaos Labs' slope2 oracle)",
    ),
    Lever(
        "optimal_utilization", "optimal_utilization_frac", "level", "frac", 0.5, 0.95,
        step_up=0.05, step_down=0.05, cooldown_h=6.0, doc="kink of the rate curve",
    ),
    Lever(
        "freeze_borrow", "freeze_borrow", "switch", "bool", 0.0, 1.0, cooldown_h=6.0,
        max_on_h=DAY_H, deadband=0.5,
        doc="circuit breaker: freeze new supply and borrowing",
    ),
    Lever(
        "pause_oracle", "pause_oracle", "switch", "bool", 0.0, 1.0, cooldown_h=DAY_H,
        max_on_h=2.0, deadband=0.5,
        doc="hold the oracle at its last answer (a stale or manipulated feed)",
    ),
)  # fmt: skip
"""The levers of ``levgym/Governance-v1``: caps, the risk parameters, the rate curve and the
circuit breakers. LT, LTV and bonus move in small absolute steps every hour (the order of
Aave's steward caps, per hour); caps move by at most +100% / -50% once per 3 days (Chaos
Labs' Edge cap updates); slope2 and the kink once per 6 hours; the freeze lasts at most a day
and the oracle pause two hours (then the feed must resume)."""

GOVERNANCE_V1_SCHEMA = StewardSchema(GOVERNANCE_V1_LEVERS)


def steward_table() -> str:
    """The generated docs block ``steward-levers``: Governance-v1's schema."""
    return GOVERNANCE_V1_SCHEMA.markdown_table()


__all__ = [
    "GOVERNANCE_V1_LEVERS",
    "GOVERNANCE_V1_SCHEMA",
    "KINDS",
    "Lever",
    "RESERVE_TARGETS",
    "RowGroup",
    "SCOPES",
    "StewardClock",
    "StewardRows",
    "StewardSchema",
    "lever_table",
    "project_risk",
    "steward_table",
]
