"""The market runner's opt-in pools (``path_pool``, ``book_pool``): which path and book an
episode takes, that a pooled episode is the episode of its pool path, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.engine.drivers import Drivers
from levgym.engine.params import EngineParams
from levgym.engine.schema import DRIVER_SCHEMA
from levgym.market import MarketRunner, draw_episode, episode_drivers
from levgym.scenarios import EVAL_SEED_OFFSET
from levgym.scenarios import get as get_scenario

MIX = ["shock", "calm"]
PARAMS = EngineParams()


def _runner(e: int, s: int = 30, **kwargs) -> MarketRunner:
    kwargs = {"scenarios": MIX, "scenario_weights": np.ones(len(MIX)), **kwargs}
    return MarketRunner(PARAMS, e, 12, s, **kwargs)


def _episodes(seed: int, count: int, split: str, cdf: np.ndarray) -> list[tuple]:
    """The first ``count`` episodes' draws of the env seeded ``seed`` (the documented order)."""
    rng = np.random.default_rng(seed)
    return [draw_episode(rng, cdf, split) for _ in range(count)]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_an_env_runs_the_pool_path_of_its_slot(split):
    """Over three rounds of starts, env e's bank row is k * P + x % P (scenario k, scenario seed
    x) and holds the scenario's drivers of seed x % P (train) or EVAL_SEED_OFFSET + x % P."""
    e, p, s = 6, 3, 30
    runner = _runner(e, s, split=split, path_pool=p)
    runner.seed([20 + i for i in range(e)])
    draws = [_episodes(20 + i, 3, split, runner.scenario_cdf) for i in range(e)]
    lo = EVAL_SEED_OFFSET if split == "eval" else 0
    for r in range(3):
        runner.new_episodes(np.ones(e, dtype=bool))
        for env in range(e):
            k, scenario_seed, _, key = draws[env][r]
            slot = scenario_seed % p
            assert runner.bank_rows[env] == k * p + slot
            assert runner.noise_key[env] == key
            want = get_scenario(MIX[k]).drivers(1, s, PARAMS, lo + slot)
            for j, f in enumerate(DRIVER_SCHEMA):
                np.testing.assert_array_equal(
                    runner.bank[j, runner.bank_rows[env]],
                    getattr(want, f.name)[:, 0].astype(np.float64),
                    err_msg=f.name,
                )
    assert runner.bank.shape[1] == len(MIX) * p


@pytest.mark.parametrize(("backend", "packed"), [("numpy", False), ("numba", True)])
def test_a_pooled_episode_is_the_episode_of_its_pool_path(backend, packed):
    """A runner with a path pool runs, env by env and bit for bit, what a runner given each
    env's pool path as its drivers runs (the same draws: book seed and noise key), over 20
    substeps; with a book pool too, against the pool's book."""
    e, p, s = 4, 2, 20
    pooled = _runner(e, s, path_pool=p, backend=backend, packed=packed)
    pooled.seed([7 + i for i in range(e)])
    pooled.new_episodes(np.ones(e, dtype=bool))
    paths = episode_drivers(pooled)
    given = MarketRunner(PARAMS, e, 12, s, drivers=paths, backend=backend, packed=packed)
    given.seed([7 + i for i in range(e)])
    given.new_episodes(np.ones(e, dtype=bool))
    for _ in range(s):
        pooled.substep()
        given.substep()
    a, b = pooled.state, given.state
    for name, value in b.arrays().items():
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(value), name)
    assert float(np.sum(a.liquidations)) >= 0.0


@pytest.mark.parametrize("path_pool", [3, None])
def test_a_book_pool_book_is_the_book_of_its_seed(path_pool):
    """With a book pool of P, env e's starting state is init_state of the book drawn from
    default_rng(book_seed % P) at its path's first row, bit for bit; without, of book_seed
    (with or without a path pool)."""
    from levgym.engine.state import init_state

    e, p = 5, 4
    for book_pool in (p, None):
        runner = _runner(e, path_pool=path_pool, book_pool=book_pool, backend="numpy")
        runner.seed([40 + i for i in range(e)])
        for _ in range(2):
            runner.new_episodes(np.ones(e, dtype=bool))
            for env in range(e):
                seed = int(runner.book_seed[env])
                d = episode_drivers(runner).slice_envs(slice(env, env + 1))
                want = init_state(
                    PARAMS, 1, 12, np.random.default_rng(seed % p if book_pool else seed),
                    fundamental_usd=d.fundamental_usd[0], debt_price_usd=d.debt_price_usd[0],
                    liquidity_frac=d.liquidity_frac[0], gas_gwei=d.gas_gwei[0],
                )  # fmt: skip
                got = runner.state.select(np.array([env]))
                for name, value in want.arrays().items():
                    np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)


def test_pools_off_keep_one_bank_row_per_env():
    runner = _runner(3)
    runner.seed([0, 1, 2])
    runner.new_episodes(np.ones(3, dtype=bool))
    np.testing.assert_array_equal(runner.bank_rows, np.arange(3))
    assert runner.bank.shape[1] == 3


def test_new_knobs_redraw_the_pool_paths_and_keep_episodes_under_way():
    """Knobs set while episodes run: the envs under way keep their paths; an episode started
    after runs the pool path drawn with the new knobs."""
    e, p, s = 3, 2, 12
    runner = _runner(e, s, path_pool=p, scenarios=["gbm_calm"], scenario_weights=None)
    runner.seed([3, 4, 5])
    runner.new_episodes(np.ones(e, dtype=bool))
    before = episode_drivers(runner)
    runner.scenario_overrides = {"gbm_calm": {"vol_annual": "0.9"}}
    after = episode_drivers(runner)
    for f in DRIVER_SCHEMA:
        np.testing.assert_array_equal(getattr(after, f.name), getattr(before, f.name), f.name)
    runner.new_episodes(np.array([True, False, False]))
    slot = runner.bank_rows[0]
    want = get_scenario("gbm_calm").drivers(1, s, PARAMS, int(slot), {"vol_annual": "0.9"})
    np.testing.assert_array_equal(runner.bank[0, slot], want.fundamental_usd[:, 0])
    assert not np.array_equal(runner.bank[0, slot], before.fundamental_usd[:, 0])
    np.testing.assert_array_equal(
        episode_drivers(runner).fundamental_usd[:, 1:], before.fundamental_usd[:, 1:]
    )


@pytest.mark.parametrize("name", ["path_pool", "book_pool"])
@pytest.mark.parametrize("value", [True, 1.5, 0, -2, "4"])
def test_bad_pool_sizes_are_refused_in_one_line(name, value):
    with pytest.raises(ValueError, match=f"^{name}=") as err:
        _runner(2, **{name: value})
    assert "\n" not in str(err.value)


def test_a_path_pool_needs_scenarios():
    drivers = Drivers.from_price(np.full((5, 2), 100.0))
    with pytest.raises(ValueError, match="path_pool=4 needs scenarios") as err:
        MarketRunner(PARAMS, 2, 4, 5, drivers=drivers, path_pool=4)
    assert "\n" not in str(err.value)


def test_a_path_pool_over_the_memory_cap_is_refused_before_allocating(monkeypatch):
    import levgym.market as market

    monkeypatch.setattr(market, "pool_bytes_cap", lambda: 10_000)
    # 2 scenarios x 8 paths x 30 substeps x 8 fields x 8 bytes = 30,720 bytes
    with pytest.raises(ValueError, match=r"^path_pool=8 needs 30720 bytes .*at most 10000") as err:
        _runner(2, 30, path_pool=8)
    assert "\n" not in str(err.value)
    assert _runner(2, 30, path_pool=2).bank.nbytes == 7680  # under the cap: allowed
