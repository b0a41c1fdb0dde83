"""The engine's only randomness: borrower noise, a counter-based hash of (key, substep, slot).

Each env of a batch has a 64-bit key per episode; the uniform of slot ``n`` at substep ``t`` is
SplitMix64 of ``key + (t * N + n + 1) * golden``. So each env's stream depends on its own key
only, however envs are batched, and every runner (``levgym simulate``, ``levgym stress``, the
envs, the bench) draws the same numbers for the same seed. The numpy version is the
specification; the numba kernel must give the same bits (``tests/envs/test_kernels.py``).
"""

from __future__ import annotations

import numpy as np

from .jit import HAVE_NUMBA, njit

# SplitMix64 constants: noise is a counter-based hash of (episode key, substep, slot), so each
# env's stream depends only on its own seed, however the envs are batched.
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(v) for v in (30, 27, 31, 11))
_ONE = np.uint64(1)
_INV53 = 1.0 / 2**53


# ----------------------------------------------------------------------------- borrower noise


def splitmix_noise_numpy(key: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Uniforms ``out[e, n] = SplitMix64(key[e] + (t[e] * N + n + 1) * golden) >> 11 / 2**53``.

    ``key`` is uint64 ``[E]``, ``t`` the envs' substep counters ``[E]``, ``out`` float64
    ``[E, N]`` (filled and returned). Arithmetic wraps modulo 2**64. The specification of
    :func:`splitmix_noise`.
    """
    n = out.shape[1]
    slot = (np.arange(n, dtype=np.uint64) + _ONE) * GOLDEN
    base = key + t.astype(np.uint64) * np.uint64(n) * GOLDEN
    x = base[:, None] + slot[None, :]
    x ^= x >> _S30
    x *= MIX1
    x ^= x >> _S27
    x *= MIX2
    x ^= x >> _S31
    x >>= _S11
    np.multiply(x, _INV53, out=out, casting="unsafe")
    return out


@njit(cache=True, nogil=True, inline="always")
def noise_row(key: np.uint64, t: int, out: np.ndarray) -> None:  # pragma: no cover
    """One env's row of :func:`splitmix_noise_numpy`: ``out`` ``[N]`` for key ``key`` at
    substep ``t`` (called by the kernels that step one env at a time)."""
    n = out.shape[0]
    x0 = key + np.uint64(t) * np.uint64(n) * GOLDEN
    for i in range(n):
        x = x0 + (np.uint64(i) + _ONE) * GOLDEN
        x ^= x >> _S30
        x *= MIX1
        x ^= x >> _S27
        x *= MIX2
        x ^= x >> _S31
        out[i] = np.float64(x >> _S11) * _INV53


@njit(cache=True, nogil=True)
def _noise_kernel(key: np.ndarray, t: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for e in range(out.shape[0]):
        noise_row(key[e], t[e], out[e])


def splitmix_noise(key: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`splitmix_noise_numpy` in one pass (numba); the same bits."""
    if not HAVE_NUMBA:  # pragma: no cover
        return splitmix_noise_numpy(key, t, out)
    _noise_kernel(key, np.ascontiguousarray(t, dtype=np.int64), out)
    return out


__all__ = ["noise_row", "splitmix_noise", "splitmix_noise_numpy"]
