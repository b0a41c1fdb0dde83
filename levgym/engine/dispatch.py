"""Which substep implementation a backend runs: the array engine, the fused numba kernel, or the
array engine with the host-sync-free cascade (torch on CUDA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backend import check_backend

CASCADE_MODES = ("auto", "loop", "masked")

SubstepFn = Callable[..., tuple[Any, Any]]


def substep_function(backend: str, device: str | None = None, cascade: str = "auto") -> SubstepFn:
    """The ``substep(state, row, noise_u, params, orders=None)`` for ``backend``.

    - ``numpy``: :func:`levgym.engine.step.substep`.
    - ``numba``: :func:`levgym.engine.fused.fused_substep` (numpy float64 arrays, CPU threads).
    - ``torch``: the array engine; its cascade is ``loop`` (stops at the first round with nothing
      to liquidate, one host sync per round) or ``masked`` (fixed round count, no host sync,
      :func:`levgym.engine.step.substep_masked`). ``auto`` picks ``masked`` on CUDA and ``loop`` elsewhere.
    """
    check_backend(backend)
    if cascade not in CASCADE_MODES:
        raise ValueError(f"cascade={cascade!r} is unknown; allowed {', '.join(CASCADE_MODES)}")
    if backend == "numba":
        from .fused import fused_substep, require_numba

        require_numba()
        return fused_substep
    if cascade == "auto":
        cascade = (
            "masked" if backend == "torch" and str(device or "cpu").startswith("cuda") else "loop"
        )
    if cascade == "masked":
        from .step import substep_masked

        return substep_masked
    from .step import substep

    return substep


__all__ = ["CASCADE_MODES", "substep_function"]
