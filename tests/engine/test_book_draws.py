"""book_draws takes its seven uniform draws in one call: the numbers of nine separate calls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym.engine.params import EngineParams
from levgym.engine.state import book_draws


def _nine_calls(params, e, n, rng):
    """The book's draws as they were made before: one generator call per array."""
    b = params.borrowers
    shape = (e, n)
    return (
        rng.pareto(b.size_pareto_alpha, shape),
        rng.standard_normal(shape),
        rng.random(shape),
        rng.uniform(b.trigger_hf_min, b.trigger_hf_max, shape),
        rng.uniform(b.react_prob_min, b.react_prob_max, shape),
        rng.uniform(b.looper_target_hf_min, b.looper_target_hf_max, shape),
        rng.random(shape),
        rng.random(shape),
        rng.random(shape),
    )


@pytest.mark.parametrize("e, n", [(1, 1), (1, 256), (3, 17)])
def test_book_draws_equal_nine_calls(e, n):
    base = EngineParams()
    odd = dataclasses.replace(
        base,
        borrowers=dataclasses.replace(
            base.borrowers, trigger_hf_min=1.013, trigger_hf_max=1.37, react_prob_min=0.07
        ),
    )
    for params in (base, odd):
        for seed in range(20):
            ours = book_draws(params, e, n, np.random.default_rng(seed))
            old = _nine_calls(params, e, n, np.random.default_rng(seed))
            for a, b in zip(ours, old, strict=True):
                assert a.shape == b.shape and np.array_equal(a, b)


def test_draw_books_of_many_envs_equal_one_env_each():
    """draw_books scales the joined uniforms once: the books of one env at a time, joined."""
    from levgym.engine.state import concat_books, draw_book, draw_books

    params = EngineParams()
    joined = draw_books(params, 9, [np.random.default_rng(s) for s in range(5)])
    alone = concat_books([draw_book(params, 1, 9, np.random.default_rng(s)) for s in range(5)])
    assert joined.keys() == alone.keys()
    for key in joined:
        assert np.array_equal(joined[key], alone[key]), key
