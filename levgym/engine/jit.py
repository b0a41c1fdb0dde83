"""numba, or a stand-in where it is not installed: the compiled kernels then run as Python."""

from __future__ import annotations

from typing import Any

try:  # numba is a dependency of levgym; the numpy and torch backends never need it
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        def wrap(fn):
            return fn

        return wrap if not args or not callable(args[0]) else args[0]

    prange = range  # type: ignore[assignment]

__all__ = ["HAVE_NUMBA", "njit", "numba", "prange"]
