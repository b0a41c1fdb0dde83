"""levgym.engine.seeding.generator is np.random.default_rng: the same state and draws."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.engine.seeding import SeedWords, generator


def _entropies() -> list:
    rng = np.random.default_rng(2024)
    fixed = [0, 1, 2**32 - 1, 2**32, 2**63 - 2, 2**64 - 1, [0], [0, 0], [5, 123], [2**40, 7]]
    fixed += [[1, 2, 3, 4], [2**64 - 1, 2**64 - 1], [1, 2, 3, 4, 5], 2**200, np.int64(17)]
    books = [int(x) for x in rng.integers(0, 2**63 - 1, 300)]
    scenarios = [
        [int(a), int(b)]
        for a, b in zip(
            rng.integers(0, 2_000_000, 300), rng.integers(0, 2**31 - 1, 300), strict=True
        )
    ]
    return fixed + books + scenarios


def test_generator_is_default_rng():
    """Every entropy an episode start uses (book seeds below 2**63, a scenario seed with its
    name's hash) and the edges (0, word boundaries, more words than the pool: numpy's own
    seeding) give default_rng's state, and its draws."""
    for entropy in _entropies():
        ours, numpys = generator(entropy), np.random.default_rng(entropy)
        assert ours.bit_generator.state == numpys.bit_generator.state, entropy
        assert np.array_equal(ours.standard_normal(5), numpys.standard_normal(5)), entropy


def test_generator_refuses_what_numpy_refuses():
    for bad in (-1, [3, -2]):
        with pytest.raises(ValueError):
            np.random.default_rng(bad)
        with pytest.raises(ValueError):
            generator(bad)


def test_seed_words_hand_out_only_pcg64s_request():
    words = SeedWords(np.arange(4, dtype=np.uint64))
    assert np.array_equal(words.generate_state(4, np.uint64), np.arange(4))
    with pytest.raises(ValueError, match="SeedWords"):
        words.generate_state(8, np.uint32)
