"""Exogenous inputs of the engine, one row per substep: what scenarios produce and the engine reads."""

from __future__ import annotations

import contextvars
import dataclasses
import math
from typing import Any

import numpy as np

from .schema import DRIVER_FIELDS, DRIVER_SCHEMA

_UNCHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "drivers_unchecked", default=False
)


class _Unchecked:
    """The context manager of :func:`unchecked` (a class: a generator-based one costs several
    times more, and every episode start enters two)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _UNCHECKED.set(True)

    def __exit__(self, *exc: object) -> None:
        _UNCHECKED.reset(self._token)


def unchecked() -> _Unchecked:
    """Drivers built inside this block skip their checks: for intermediate drivers that a
    builder transforms further (a scenario's overlays), whose final drivers it then checks once
    with :meth:`Drivers.check`."""
    return _Unchecked()


def checking() -> bool:
    """Whether drivers built now are checked (False inside :func:`unchecked`)."""
    return not _UNCHECKED.get()


# The allowed values of each float driver field: (lowest, lowest allowed itself, highest).
# Drivers.check raises on the first violation with its message; values_ok judges drivers from
# each field's minimum and maximum (a market runner's episode starts).
_BOUNDS = {
    "fundamental_usd": (0.0, False, np.inf),
    "liquidity_frac": (0.0, False, np.inf),
    "debt_price_usd": (0.0, False, np.inf),
    "gas_gwei": (0.0, True, np.inf),
    "arrival_mult": (0.0, True, np.inf),
    "arb_speed_frac": (0.0, True, 1.0),
    "oracle_bias_frac": (-1.0, False, np.inf),
}
_FIELD_SET = frozenset(DRIVER_FIELDS)
_FLOAT_BOUNDS = tuple(
    (j, *_BOUNDS[f.name]) for j, f in enumerate(DRIVER_SCHEMA) if f.dtype == "float"
)


def values_ok(lowest: np.ndarray, highest: np.ndarray) -> bool:
    """Whether driver values whose minimum and maximum per field are ``lowest`` and ``highest``
    (``[F]``, fields in DRIVER_SCHEMA order, booleans as 0 / 1) pass :meth:`Drivers.check`'s
    value checks: the float fields all finite (a NaN makes its field's minimum and maximum NaN)
    and within their bounds (booleans are not judged). On the ``F`` numbers as Python floats:
    numpy's per-call cost would exceed the work."""
    lows, highs = lowest.tolist(), highest.tolist()
    isfinite = math.isfinite
    for j, lo, inclusive, hi in _FLOAT_BOUNDS:
        a, b = lows[j], highs[j]
        if not (isfinite(a) and isfinite(b)) or b > hi or a < lo or (a == lo and not inclusive):
            return False
    return True


def _made(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)`` for a frozen dataclass whose fields are exactly ``values`` (Drivers),
    without the frozen ``__init__``'s one ``object.__setattr__`` per field (an episode start
    makes several); ``__post_init__`` (the checks) runs as in ``__init__``."""
    out = object.__new__(cls)
    out.__dict__.update(values)
    out.__post_init__()
    return out


def _filled(shape: tuple[int, ...], value: Any) -> np.ndarray:
    """A new float64 array of ``shape`` holding ``value`` (``np.full`` without its Python layer:
    an episode start makes several)."""
    a = np.empty(shape)
    a[...] = value
    return a


class _DriversMethods:
    def __post_init__(self) -> None:
        if not _UNCHECKED.get():
            self.check()

    def check(self) -> None:
        """Raise ValueError naming the first field with a bad shape or value (array methods, not
        ``np.all`` / ``np.any``: every episode start runs this)."""
        self.check_shapes()
        for f in DRIVER_SCHEMA:
            name, a = f.name, getattr(self, f.name)
            if f.dtype == "float" and not np.isfinite(a).all():
                raise ValueError(
                    f"drivers.{name} holds NaN or infinite values; allowed finite numbers"
                )
        for name in ("fundamental_usd", "liquidity_frac", "debt_price_usd"):
            if (getattr(self, name) <= 0).any():
                raise ValueError(f"drivers.{name} has a value <= 0; allowed > 0")
        if (self.gas_gwei < 0).any() or (self.arrival_mult < 0).any():
            raise ValueError("drivers.gas_gwei and drivers.arrival_mult must be >= 0")
        if ((self.arb_speed_frac < 0) | (self.arb_speed_frac > 1)).any():
            raise ValueError("drivers.arb_speed_frac has a value outside [0, 1]")
        if (self.oracle_bias_frac <= -1).any():
            raise ValueError("drivers.oracle_bias_frac has a value <= -1; allowed > -1")

    def check_shapes(self) -> tuple[int, ...]:
        """The shape checks of :meth:`check` (every field ``[substeps, envs]``, the same);
        returns the shape."""
        shape = np.shape(self.fundamental_usd)
        if len(shape) != 2:
            raise ValueError(f"drivers.fundamental_usd has shape {shape}; allowed [substeps, envs]")
        values = self.__dict__
        for name in DRIVER_FIELDS:
            a = values[name]
            # an array's own shape (np.shape's Python layer only for other values)
            if (a.shape if type(a) is np.ndarray else np.shape(a)) != shape:
                raise ValueError(f"drivers.{name} has shape {np.shape(a)}; allowed {shape}")
        return shape

    @property
    def num_substeps(self) -> int:
        return int(self.fundamental_usd.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.fundamental_usd.shape[1])

    @classmethod
    def from_price(
        cls, fundamental_usd: np.ndarray, arb_speed_frac: float = 0.5, gas_gwei: float = 30.0
    ) -> Drivers:
        """Drivers with the given price path ``[S, E]`` and calm everything else."""
        f = np.asarray(fundamental_usd, dtype=np.float64)
        return _made(
            cls,
            {
                "fundamental_usd": f,
                "liquidity_frac": _filled(f.shape, 1.0),
                "arb_speed_frac": _filled(f.shape, arb_speed_frac),
                "gas_gwei": _filled(f.shape, gas_gwei),
                "oracle_bias_frac": np.zeros(f.shape),
                "oracle_frozen": np.zeros(f.shape, dtype=bool),
                "debt_price_usd": _filled(f.shape, 1.0),
                "arrival_mult": _filled(f.shape, 1.0),
            },
        )

    def replace(self, **changes: Any) -> Drivers:
        """These drivers with ``changes`` (``dataclasses.replace``: checked unless inside
        :func:`unchecked`; an unknown field raises its TypeError)."""
        if not _FIELD_SET.issuperset(changes):
            return dataclasses.replace(self, **changes)  # raises, naming the field
        values = dict(self.__dict__)
        values.update(changes)
        return _made(type(self), values)

    def row(self, t: int, convert) -> DriverRow:
        """Substep ``t`` as ``[E]`` arrays of the engine's backend (``convert`` from backend.make_converter)."""
        return DriverRow(**{name: convert(getattr(self, name)[t]) for name in DRIVER_FIELDS})

    def slice_envs(self, index: Any) -> Drivers:
        """Envs ``index`` of these drivers; not checked again (a slice of checked drivers is
        valid, and every episode start of a runner given its drivers takes one)."""
        with unchecked():
            return Drivers(**{name: getattr(self, name)[:, index] for name in DRIVER_FIELDS})

    def slice_substeps(self, index: slice) -> Drivers:
        """Rows ``index`` of these drivers (e.g. a warm-up's and the run's), not checked again."""
        with unchecked():
            return Drivers(**{name: getattr(self, name)[index] for name in DRIVER_FIELDS})


Drivers = dataclasses.make_dataclass(
    "Drivers",
    [(f.name, np.ndarray) for f in DRIVER_SCHEMA],
    bases=(_DriversMethods,),
    frozen=True,
)
Drivers.__doc__ = (
    "Exogenous paths for a batch, each ``[S, E]`` (substeps by envs), as numpy arrays; one "
    "attribute per field of :data:`levgym.engine.schema.DRIVER_SCHEMA`:\n\n"
    + "\n".join(f"- ``{f.name}`` ({f.unit}): {f.doc}." for f in DRIVER_SCHEMA)
)

DriverRow = dataclasses.make_dataclass(
    "DriverRow", [(f.name, Any) for f in DRIVER_SCHEMA], frozen=True
)
Drivers.__module__ = DriverRow.__module__ = __name__
DriverRow.__doc__ = "One substep of :class:`Drivers`: each field ``[E]`` on the engine's backend."
