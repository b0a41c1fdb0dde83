"""numba, or a stand-in where it is not installed: the compiled kernels then run as Python."""

from __future__ import annotations

from typing import Any

try:  # numba is a dependency of levgym; the numpy and torch backends never need it
    import numba
    from numba import get_num_threads, njit, prange, set_num_threads

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        def wrap(fn):
            return fn

        return wrap if not args or not callable(args[0]) else args[0]

    prange = range  # type: ignore[assignment]

    def get_num_threads() -> int:  # type: ignore[misc]
        return 1

    def set_num_threads(n: int) -> None:  # type: ignore[misc]
        pass


# A step kernel's ``threads`` argument: its plain loop over envs, its parallel loop on one thread
# (numba's threads set to one for the call by `call_kernel`), or its parallel loop on numba's
# threads (levgym.envs.base sets it per env batch).
SERIAL, ONE_THREAD, ALL_THREADS = 0, 1, 2


def call_kernel(kernel: Any, threads: int, *args: Any) -> Any:
    """``kernel(*args, threads)``, with numba's threads set to one for the call and restored
    after it when ``threads`` is ``ONE_THREAD`` (about 2 us). The kernels cannot set them
    themselves: numba's thread functions, called from compiled code, are a dynamic global,
    which its cache refuses, so every process would compile the kernel again (seconds)."""
    if threads != ONE_THREAD:
        return kernel(*args, threads)
    saved = get_num_threads()
    set_num_threads(1)
    try:
        return kernel(*args, threads)
    finally:
        set_num_threads(saved)


__all__ = [
    "ALL_THREADS",
    "HAVE_NUMBA",
    "ONE_THREAD",
    "SERIAL",
    "call_kernel",
    "get_num_threads",
    "njit",
    "numba",
    "prange",
    "set_num_threads",
]
