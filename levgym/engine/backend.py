"""Array-namespace helpers so one engine runs on numpy and torch (CPU or CUDA)."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "torch", "numba")
DTYPES = ("float64", "float32")


def namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (numpy or torch, wrapped by array-api-compat)."""
    return array_api_compat.array_namespace(*arrays)


def check_backend(backend: str, dtype: str = "float64") -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is unknown; allowed {', '.join(BACKENDS)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is unknown; allowed {', '.join(DTYPES)}")
    if backend == "numba" and dtype != "float64":
        raise ValueError(f"dtype {dtype!r} is not supported by backend 'numba'; allowed float64")


def make_converter(backend: str, dtype: str = "float64", device: str | None = None):
    """A function that turns numpy arrays into arrays of ``backend`` (floats as ``dtype``)."""
    check_backend(backend, dtype)
    if backend in ("numpy", "numba"):  # numba runs on numpy arrays
        fdt = np.dtype(dtype)

        def to_np(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a)
            return a.astype(fdt) if a.dtype.kind == "f" else a

        return to_np
    import torch

    tdt = getattr(torch, dtype)
    dev = torch.device(device or "cpu")

    def to_torch(a: np.ndarray):
        a = np.asarray(a)
        t = torch.from_numpy(np.ascontiguousarray(a))
        if a.dtype.kind == "f":
            t = t.to(tdt)
        return t.to(dev)

    return to_torch


def to_numpy(a: Any) -> np.ndarray:
    """A numpy copy of a numpy or torch array."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
