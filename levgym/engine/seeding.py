"""``np.random.default_rng(seed)`` in a few microseconds: the same generator, seeded the same way.

``default_rng(seed)`` is ``Generator(PCG64(SeedSequence(seed)))``: the seed sequence hashes the
seed's 32-bit words into a pool of four, ``PCG64`` asks it for four 64-bit words and seeds its
state from them. numpy does the hashing with numpy scalars under ``np.errstate``, which costs
about 11 microseconds per generator; an episode start makes two per env (its book's and its
scenario's). :func:`generator` computes the same four words with a compiled copy of numpy's
algorithm (``numpy/random/bit_generator.pyx``: ``SeedSequence.mix_entropy`` with the default
pool of four words and no spawn key, then ``generate_state(4, np.uint64)``) and hands them to
``PCG64`` as its seed sequence, so the generator's state, and every number it draws, is what
``default_rng(seed)`` gives (``tests/engine/test_seeding.py`` compares states for many seeds).
Entropy of more than four 32-bit words, or numba missing, falls back to numpy's own seeding.

The generator's ``bit_generator.seed_seq`` is then a :class:`SeedWords` holding those words,
not a ``SeedSequence``: nothing in levgym spawns from these generators.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.random import PCG64, Generator
from numpy.random.bit_generator import ISeedSequence

from .jit import HAVE_NUMBA, njit

_M32 = np.uint64(0xFFFFFFFF)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)
_XSHIFT = np.uint64(16)
_POOL = 4  # SeedSequence's default pool size, in 32-bit words


def _seed_words(w0, w1, w2, w3, n):  # pragma: no cover  (compiled)
    """numpy's ``SeedSequence(entropy).generate_state(4, np.uint64)`` for an entropy of ``n``
    (1 to 4) 32-bit words ``w0..w3`` (the unused ones 0), in 64-bit arithmetic masked to 32
    bits after every step."""
    words = np.empty(4, dtype=np.uint64)
    words[0], words[1], words[2], words[3] = w0, w1, w2, w3
    pool = np.empty(4, dtype=np.uint64)
    hc = _INIT_A
    for i in range(4):  # mix_entropy: hash each word (0 past the entropy) into the pool
        v = words[i] if i < n else np.uint64(0)
        v ^= hc
        hc = (hc * _MULT_A) & _M32
        v = (v * hc) & _M32
        v ^= v >> _XSHIFT
        pool[i] = v
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                v = pool[i_src] ^ hc
                hc = (hc * _MULT_A) & _M32
                v = (v * hc) & _M32
                v ^= v >> _XSHIFT
                r = (_MIX_MULT_L * pool[i_dst] - _MIX_MULT_R * v) & _M32
                r ^= r >> _XSHIFT
                pool[i_dst] = r
    out = np.empty(4, dtype=np.uint64)
    hb = _INIT_B
    for k in range(8):  # generate_state: 8 words of 32 bits, cycling the pool
        v = pool[k % 4] ^ hb
        hb = (hb * _MULT_B) & _M32
        v = (v * hb) & _M32
        v ^= v >> _XSHIFT
        if k % 2 == 0:
            out[k // 2] = v
        else:  # little-endian: the odd word is the high half
            out[k // 2] |= v << np.uint64(32)
    return out


if HAVE_NUMBA:
    _seed_words = njit(cache=True)(_seed_words)


class SeedWords(ISeedSequence):
    """A seed sequence that returns four 64-bit words computed already (what
    ``SeedSequence(entropy).generate_state(4, np.uint64)`` returns): ``PCG64`` seeds from it."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError("SeedWords holds the four 64-bit words PCG64 asks for, only those")
        return self.words.copy()


def _words32(entropy: int | Sequence[int]) -> list[int] | None:
    """The 32-bit words numpy's ``SeedSequence`` makes of ``entropy`` (an integer >= 0, or a
    sequence of them: each one's words, least significant first, 0 as one word), or None when
    they are not plain integers."""
    out: list[int] = []
    for n in (entropy,) if isinstance(entropy, int | np.integer) else entropy:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            return None
        n = int(n)
        out.append(n & 0xFFFFFFFF)
        n >>= 32
        while n > 0:
            out.append(n & 0xFFFFFFFF)
            n >>= 32
    return out


def generator(entropy: int | Sequence[int]) -> Generator:
    """``np.random.default_rng(entropy)`` (``entropy``: an integer >= 0 or a list of them), the
    same generator in state and draws, seeded without numpy's Python layer when the entropy
    fits SeedSequence's pool (four 32-bit words) and numba is installed."""
    words = _words32(entropy) if HAVE_NUMBA else None
    if words is None or not 1 <= len(words) <= _POOL:
        return Generator(PCG64(entropy))
    n = len(words)
    words += [0] * (_POOL - n)
    return Generator(PCG64(SeedWords(_seed_words(*words, n))))


__all__ = ["SeedWords", "generator"]
