"""Thread pinning: the one function that sets how many threads a process's numeric libraries use,
called the same way in a standalone run, in a process-pool worker and in a Ray worker, so that
a task reproduces its standalone run."""

from __future__ import annotations

import os
import sys

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Environment variables read by OpenMP, MKL and OpenBLAS when they start (a library already
started keeps its pool; numba and torch are set directly as well)."""


def pin_threads(threads: int | None = None, *, torch_threads: int | None = None) -> dict[str, int]:
    """Pin this process's threads; returns what was set.

    - ``threads``: numba's parallel kernels (``numba.set_num_threads``, capped at numba's pool
      size), the OpenMP / MKL / OpenBLAS variables, and torch unless ``torch_threads`` is given.
      ``None`` leaves them as they are.
    - ``torch_threads``: torch's intra-op threads (``torch.set_num_threads``). torch is set only
      if it is already imported or ``torch_threads`` is given (importing it costs a second); a
      later import reads ``OMP_NUM_THREADS``.

    numba's setting is per thread: call this in the thread that runs the work.
    """
    out: dict[str, int] = {}
    for name, value in (("threads", threads), ("torch_threads", torch_threads)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise ValueError(f"{name}={value!r} is out of range; allowed an integer >= 1")
    if threads is not None:
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(int(threads))
        try:
            import numba

            n = min(int(threads), int(numba.config.NUMBA_NUM_THREADS))
            numba.set_num_threads(n)
            out["numba_threads"] = n
        except ImportError:  # pragma: no cover - numba is a dependency
            pass
    want_torch = torch_threads if torch_threads is not None else threads
    if want_torch is not None and (torch_threads is not None or "torch" in sys.modules):
        import torch

        torch.set_num_threads(int(want_torch))
        out["torch_threads"] = int(want_torch)
    return out
