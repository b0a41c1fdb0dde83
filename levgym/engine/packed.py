"""A batch's state kept in packed buffers between substeps, for kernels that step it in place.

:func:`levgym.engine.fused.fused_substep` is pure: it packs a :class:`State` into arrays, runs
the kernel and unpacks a new State, every substep. A runner that steps the same batch for many
substeps (the envs) instead keeps the state here and calls :func:`levgym.engine.fused.substep_env`
per env, in place; a :class:`State` is made only when someone reads it (:meth:`snapshot`, a
copy). Both paths run the same kernel functions, so they give the same numbers
(``tests/engine/test_packed.py``).

Layout (every field of :data:`levgym.engine.schema.STATE_SCHEMA` has exactly one home):

- ``env`` ``[F, E]`` float64: the per-env fields in ``ENV_FIELDS`` order (rows named by
  ``schema.ENV_ROW``);
- ``posf`` ``[len(POSF), E, N]`` float64: positions and TWAP-free per-slot floats, with an input
  and an output row for the fields a substep rewrites (the output becomes the next input);
- ``posb`` ``[len(POSB), E, N]`` bool, likewise; ``kind`` ``[E, N]`` int64;
- ``twap`` ``[2, E, W]``: the TWAP ring, input and output;
- ``time_h`` and ``substep_index``: the shared clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fused import (
    PARALLEL_MIN_POSITIONS,
    POSB,
    POSF,
    _params_packed,
    pack_orders,
    packed_substep_kernel,
)
from .orders import Orders
from .params import EngineParams
from .schema import DRIVER_FIELDS, ENV_FIELDS, STATE_SCHEMA
from .state import State

# where each state field lives: (buffer name, row) or (buffer name, None) for a whole array
FIELD_HOME: dict[str, tuple[str, int | None]] = {
    "collateral_asset": ("posf", POSF.index("c_in")),
    "debt_usd": ("posf", POSF.index("d_in")),
    "trigger_hf": ("posf", POSF.index("trigger_hf")),
    "react_prob": ("posf", POSF.index("react_prob")),
    "target_hf": ("posf", POSF.index("target_hf")),
    "template_collateral_asset": ("posf", POSF.index("template_collateral_asset")),
    "template_hf": ("posf", POSF.index("template_hf")),
    "active": ("posb", POSB.index("active_in")),
    "ever_liquidated": ("posb", POSB.index("ever_in")),
    "repays": ("posb", POSB.index("repays")),
    "kind": ("kind", None),
    "twap_buffer_usd": ("twap", 0),
    **{name: ("env", i) for i, name in enumerate(ENV_FIELDS)},
}
_missing = {f.name for f in STATE_SCHEMA} ^ set(FIELD_HOME)
assert not _missing, f"packed layout and STATE_SCHEMA disagree on {sorted(_missing)}"


_NOT_ENV = tuple(name for name, (buf, _) in FIELD_HOME.items() if buf != "env")


class PackedState:
    """The state of a batch of E envs in packed numpy float64 buffers (see the module doc)."""

    def __init__(self, state: State) -> None:
        e, n = state.num_envs, state.num_positions
        w = int(np.asarray(state.twap_buffer_usd).shape[1])
        self.num_envs, self.num_positions = e, n
        self.env = np.empty((len(ENV_FIELDS), e))
        self.posf = np.empty((len(POSF), e, n))
        self.posb = np.empty((len(POSB), e, n), dtype=np.bool_)
        self.kind = np.empty((e, n), dtype=np.int64)
        self.twap = np.empty((2, e, w))
        self.time_h = 0.0
        self.substep_index = 0
        self.load(state)

    def _home(self, name: str) -> np.ndarray:
        buf, row = FIELD_HOME[name]
        a = getattr(self, buf)
        return a if row is None else a[row]

    def load(self, state: State) -> None:
        """Write every field of ``state`` (numpy, same E and N) into the buffers."""
        for name in FIELD_HOME:
            self._home(name)[...] = getattr(state, name)
        self.time_h = float(state.time_h)
        self.substep_index = int(state.substep_index)

    def load_rows(self, rows: State, idx: np.ndarray) -> None:
        """Write env ``j`` of ``rows`` into env ``idx[j]`` (the clock is the batch's)."""
        # the per-env fields in one scatter (the rows of `env` are ENV_FIELDS in order)
        self.env[:, idx] = np.stack([getattr(rows, name) for name in ENV_FIELDS])
        for name in _NOT_ENV:
            buf, row = FIELD_HOME[name]
            a = getattr(self, buf)
            if row is None:
                a[idx] = getattr(rows, name)
            else:
                a[row, idx] = getattr(rows, name)

    def rows(self, idx: np.ndarray) -> State:
        """The envs ``idx`` as a new State (copies)."""
        values: dict[str, Any] = {}
        env = self.env[:, idx]
        for name in FIELD_HOME:
            buf, row = FIELD_HOME[name]
            if buf == "env":
                values[name] = env[row]
            elif row is None:
                values[name] = getattr(self, buf)[idx]
            else:
                values[name] = getattr(self, buf)[row, idx]
        return State(time_h=self.time_h, substep_index=self.substep_index, **values)

    def snapshot(self) -> State:
        """The whole batch as a new State (copies; later substeps do not change it)."""
        values: dict[str, Any] = {}
        env = self.env.copy()
        for name in FIELD_HOME:
            buf, row = FIELD_HOME[name]
            if buf == "env":
                values[name] = env[row]
            else:
                values[name] = self._home(name).copy()
        return State(time_h=self.time_h, substep_index=self.substep_index, **values)


def packed_substep(
    p: PackedState,
    bank: np.ndarray,
    bank_rows: np.ndarray,
    t: np.ndarray,
    key: np.ndarray,
    params: EngineParams,
    orders: Orders | None = None,
) -> np.ndarray:
    """One substep of every env of ``p`` in place (what :func:`levgym.engine.fused.fused_substep`
    computes): drivers from ``bank`` ``[F, R, S]`` at each env's bank row ``bank_rows`` and clock
    ``t`` (advanced here), noise from the keys ``key``. Returns the cascade rounds per env."""
    e, n = p.num_envs, p.num_positions
    rounds = np.empty(e)
    slot = p.substep_index % int(params.market.twap_window_substeps)
    now_h = p.time_h + params.run.substep_h
    packed_substep_kernel(
        p.env, bank, bank_rows, t, key, _params_packed(params), pack_orders(orders, e), p.twap, p.posf,
        p.posb, p.kind, np.empty((len(DRIVER_FIELDS), e)), np.empty((e, n)), rounds, slot, now_h,
        e * n >= PARALLEL_MIN_POSITIONS,
    )  # fmt: skip
    p.time_h, p.substep_index = now_h, p.substep_index + 1
    return rounds


__all__ = ["FIELD_HOME", "PackedState", "packed_substep"]
