"""Warm books for the envs (``warmup_h``, levgym.warm): opt-in, cached, grafted onto the episode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym import warm
from levgym.engine.params import EngineParams
from levgym.engine.rules import health_factor
from levgym.envs.governance import GovernanceVectorEnv
from levgym.envs.liquidator import LiquidatorVectorEnv
from levgym.market import run_markets

WARM_H = 24.0
SLOTS = 16


def _env(cls=GovernanceVectorEnv, backend="numpy", **kw):
    return cls(3, num_positions=SLOTS, scenarios="shock", horizon_h=6.0, backend=backend, **kw)


def test_warmup_zero_is_the_env_as_it_was():
    a, b = _env(), _env(warmup_h=0.0)
    oa, _ = a.reset(seed=4)
    ob, _ = b.reset(seed=4)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(a.core.state.debt_usd, b.core.state.debt_usd)


@pytest.mark.parametrize(
    ("cls", "backend"),
    [
        (GovernanceVectorEnv, "numpy"),
        (LiquidatorVectorEnv, "numpy"),
        (GovernanceVectorEnv, "numba"),
    ],
)
def test_an_episode_starts_from_the_cached_book_of_its_book_seed(cls, backend):
    if backend == "numba":
        pytest.importorskip("numba")  # the packed buffers: the graft goes through their reset
    env = _env(cls, backend, warmup_h=WARM_H)
    env.reset(seed=4)
    core = env.core
    cache = warm.warm_books(core.params, SLOTS, WARM_H, "float64")
    s = core.state
    for e in range(3):
        j = int(core.book_seed[e] % warm.WARM_BOOKS)
        # the same positions (the cache's price is the scenario's first price here)
        np.testing.assert_allclose(s.collateral_asset[e], cache.collateral_asset[j], rtol=1e-12)
        np.testing.assert_allclose(s.debt_usd[e], cache.debt_usd[j], rtol=1e-12)
        np.testing.assert_array_equal(s.kind[e], cache.kind[j])
        np.testing.assert_array_equal(s.active[e], cache.active[j])
    # counters start at zero, start values are the episode's
    assert np.all(s.liquidations == 0) and np.all(s.repaid_by_liquidators_usd == 0)
    np.testing.assert_allclose(s.initial_debt_usd, s.debt_usd.sum(axis=1))
    assert not np.any(s.ever_liquidated)
    # the same seed restarts from the same books; an autoreset of one env takes its next one
    before = s.debt_usd.copy()
    env.reset(seed=4)
    np.testing.assert_array_equal(env.core.state.debt_usd, before)
    core.new_episodes(np.array([False, True, False]))
    j = int(core.book_seed[1] % warm.WARM_BOOKS)
    np.testing.assert_allclose(core.state.debt_usd[1], cache.debt_usd[j], rtol=1e-12)
    np.testing.assert_array_equal(core.state.debt_usd[0], before[0])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_warmed_start_draws_no_fresh_book_and_starts_the_same(backend, monkeypatch):
    if backend == "numba":
        pytest.importorskip("numba")
    import levgym.market as market

    def drawn_books(runner, seeds):  # the fresh books a start without the stand-in draws
        rngs = [np.random.default_rng(int(b)) for b in seeds]
        return market.draw_books(runner.params, runner.num_positions, rngs)

    def started(env):
        env.reset(seed=4)
        env.core.new_episodes(np.array([False, True, True]))
        return env.core.state

    env = _env(backend=backend, warmup_h=WARM_H)
    started(env)  # the warm cache built and the stand-in book drawn
    calls = []
    real = market.draw_books
    monkeypatch.setattr(market, "draw_books", lambda *a: calls.append(1) or real(*a))
    a = started(env)
    assert not calls  # no book drawn for the 5 episodes started
    monkeypatch.setattr(market, "draw_books", real)
    monkeypatch.setattr(market.MarketRunner, "_starting_books", drawn_books)
    b = started(_env(backend=backend, warmup_h=WARM_H))
    for f in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


def test_the_warm_up_changes_the_book_and_the_cache_is_built_once():
    fresh = _env()
    fresh.reset(seed=4)
    warm.warm_books.cache_clear()
    env = _env(warmup_h=WARM_H)
    env.reset(seed=4)
    env.reset(seed=5)
    env2 = _env(warmup_h=WARM_H)
    env2.reset(seed=6)
    info = warm.warm_books.cache_info()
    assert info.misses == 1 and info.hits >= 2
    assert not np.array_equal(env.core.state.debt_usd, fresh.core.state.debt_usd)
    # the cache's books lived: borrowers arrived, left or re-levered during the burn-in
    cache = warm.warm_books(env.core.params, SLOTS, WARM_H, "float64")
    assert cache.num_envs == warm.WARM_BOOKS
    drawn = run_markets(EngineParams(), warm.WARM_BOOKS, SLOTS, 1, seed=warm.WARM_SEED,
                        scenario="calm", backend="numpy")  # fmt: skip
    assert not np.allclose(cache.debt_usd, drawn.state.debt_usd)


def test_graft_keeps_values_and_health_factors_at_another_price():
    params = EngineParams()
    cache = warm.warm_books(params, SLOTS, WARM_H, "float64")
    runner = run_markets(params, 2, SLOTS, 1, seed=1, scenario="calm", backend="numpy")
    fresh = runner.state.replace(fundamental_usd=np.array([1000.0, 3000.0]),
                                 oracle_usd=np.array([1000.0, 3000.0]))  # fmt: skip
    rows = np.array([0, 5])
    out = warm.graft_book(fresh, cache, rows, params)
    for e, j in enumerate(rows):
        np.testing.assert_allclose(
            out.collateral_asset[e] * out.fundamental_usd[e],
            cache.collateral_asset[j] * cache.fundamental_usd[j],
            rtol=1e-12,
        )
        hf_out = health_factor(out.collateral_asset[e], out.debt_usd[e], out.oracle_usd[e],
                               out.liquidation_threshold[e], out.debt_price_usd[e])  # fmt: skip
        hf_in = health_factor(cache.collateral_asset[j], cache.debt_usd[j],
                              cache.fundamental_usd[j], cache.liquidation_threshold[j],
                              cache.debt_price_usd[j])  # fmt: skip
        np.testing.assert_allclose(hf_out, hf_in, rtol=1e-12)
    utilization = params.borrowers.initial_utilization_frac
    np.testing.assert_allclose(out.supply_usd, out.debt_usd.sum(axis=1) / utilization)


@pytest.mark.parametrize("value", [-1.0, 2000.0, True, "24"])
def test_bad_warmup_is_refused(value):
    with pytest.raises(ValueError, match=r"warmup_h=.* is out of range; allowed"):
        _env(warmup_h=value)


# ---------------------------------------------------------------- the pool of the warm-book ids


def test_a_pool_book_depends_on_its_index_alone():
    params = EngineParams()
    batch = warm.warm_rows(params, SLOTS, WARM_H, np.array([3, 7, 9]))
    alone = warm.warm_rows(params, SLOTS, WARM_H, np.array([7]))
    for name in warm.POOL_FIELDS:
        np.testing.assert_array_equal(getattr(batch, name)[1], getattr(alone, name)[0])
    # and the books differ from one another, and from a fresh draw of the same seed
    assert not np.array_equal(batch.debt_usd[0], batch.debt_usd[1])
    drawn = run_markets(params, 1, SLOTS, 1, seed=warm.POOL_SEED + 7, scenario="calm",
                        backend="numpy")  # fmt: skip
    assert not np.allclose(alone.debt_usd[0], drawn.state.debt_usd[0])


def test_a_pool_warms_only_the_books_episodes_take_and_keeps_them():
    pool_size = 97
    env = _env(warmup_h=WARM_H, warm_pool=pool_size)
    env.reset(seed=4)
    core = env.core
    pool = warm.warm_pool(core.params, SLOTS, WARM_H, pool_size, "float64")
    rows = core.book_seed % pool_size
    assert set(np.flatnonzero(pool.ready)) == set(rows.tolist())
    s = core.state
    for e, j in enumerate(rows):
        np.testing.assert_allclose(s.debt_usd[e], pool.debt_usd[j], rtol=1e-12)
        np.testing.assert_array_equal(s.kind[e], pool.kind[j])
    warmed = pool.warmed_books
    env.reset(seed=4)  # the same books: nothing new to warm
    assert pool.warmed_books == warmed
    np.testing.assert_array_equal(env.core.state.debt_usd, s.debt_usd)
    core.new_episodes(np.array([True, False, True]))  # new books for envs 0 and 2 only
    new = set((core.book_seed % pool_size).tolist()) - set(rows.tolist())
    assert pool.warmed_books == warmed + len(new)
    np.testing.assert_array_equal(core.state.debt_usd[1], s.debt_usd[1])


def test_the_warm_book_ids_are_the_previous_ids_with_warm_books():
    import gymnasium as gym

    from levgym.envs import GovernanceV2VectorEnv, LiquidatorV3VectorEnv

    for new, old, cls in (
        ("levgym/Governance-v2", "levgym/Governance-v1", GovernanceV2VectorEnv),
        ("levgym/Liquidator-v3", "levgym/Liquidator-v2", LiquidatorV3VectorEnv),
    ):
        kw = {"num_envs": 2, "vectorization_mode": "vector_entry_point", "num_positions": SLOTS}
        venv = gym.make_vec(new, **kw)
        assert type(venv) is cls
        assert venv.core.warmup_h == warm.WARM_BOOK_H and venv.core.warm_pool == warm.WARM_POOL
        # with warmup_h=0 the new id is the old one, step for step
        a = gym.make_vec(new, warmup_h=0.0, **kw)
        b = gym.make_vec(old, **kw)
        oa, _ = a.reset(seed=3)
        ob, _ = b.reset(seed=3)
        np.testing.assert_array_equal(oa, ob)
        act = np.zeros((2, *a.single_action_space.shape))
        for _ in range(3):
            np.testing.assert_array_equal(a.step(act)[0], b.step(act)[0])
        # warm books by default: the same seed starts from other books
        venv.reset(seed=3)
        a.reset(seed=3)
        assert not np.array_equal(venv.core.state.debt_usd, a.core.state.debt_usd)
        for v in (venv, a, b):
            v.close()


@pytest.mark.parametrize("value", [0, -3, 2**20, 1.5, True, "64"])
def test_bad_pool_size_is_refused(value):
    with pytest.raises(ValueError, match=r"warm_pool=.* is out of range; allowed None or"):
        _env(warmup_h=WARM_H, warm_pool=value)


def test_the_warm_book_ids_declare_their_parents_arguments_with_their_own_defaults():
    from agents.reporting import default_reward_scale
    from levgym.cli.sizing import env_defaults

    gov1, gov2 = env_defaults("levgym/Governance-v1"), env_defaults("levgym/Governance-v2")
    assert set(gov2) == set(gov1)  # train's --hyper env_kwargs and the size checks read these
    assert gov2["warmup_h"] == warm.WARM_BOOK_H and gov1["warmup_h"] == 0.0
    assert gov2["warm_pool"] == warm.WARM_POOL and gov1["warm_pool"] is None
    assert {k: v for k, v in gov2.items() if not k.startswith("warm")} == {
        k: v for k, v in gov1.items() if not k.startswith("warm")
    }
    liq3 = env_defaults("levgym/Liquidator-v3")
    assert liq3["num_positions"] == env_defaults("levgym/Liquidator-v2")["num_positions"]
    assert default_reward_scale("levgym/Liquidator-v3") == default_reward_scale(
        "levgym/Liquidator-v2"
    )


# ---------------------------------------------------------------- the pools' disk cache


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """The pools' disk cache in a temporary folder (the suite runs with it off)."""
    monkeypatch.setenv(warm.CACHE_ENV, str(tmp_path))
    warm.warm_pool.cache_clear()
    yield tmp_path
    warm.warm_pool.cache_clear()


def _pool(size=50, params=None, slots=SLOTS, warmup_h=WARM_H):
    return warm.WarmPool(params or EngineParams(), slots, warmup_h, size, "float64")


def test_a_new_pool_starts_from_the_books_a_previous_one_saved(disk):
    first = _pool()
    first.ensure(np.array([3, 7, 3]))
    assert first.warmed_books == 2 and first.loaded_books == 0
    assert first.save() and first.path.parent == disk and first.unsaved_books == 0
    second = _pool()  # as a new process makes it
    assert second.loaded_books == 2 and second.warmed_books == 0
    np.testing.assert_array_equal(second.ready, first.ready)
    for name in warm.POOL_FIELDS:
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    second.ensure(np.array([7, 11]))  # only book 11 is new
    assert second.warmed_books == 1
    # a save takes in what another process saved meanwhile
    first.ensure(np.array([20]))
    first.save()
    second.save()
    third = _pool()
    assert set(np.flatnonzero(third.ready)) == {3, 7, 11, 20}


def test_env_outputs_are_the_same_with_and_without_the_disk_cache(disk, monkeypatch):
    def run():
        warm.warm_pool.cache_clear()
        env = _env(warmup_h=WARM_H, warm_pool=97)
        obs = [env.reset(seed=4)[0]]
        act = np.random.default_rng(0).uniform(-1, 1, (8, 3, *env.single_action_space.shape))
        for a in act:
            out = env.step(a)
            obs += [out[0], out[1]]
        pool = warm.warm_pool(env.core.params, SLOTS, WARM_H, 97, "float64")
        env.close()
        return obs, pool

    monkeypatch.setenv(warm.CACHE_ENV, "off")
    plain, pool = run()
    assert pool.path is None and pool.warmed_books > 0
    monkeypatch.setenv(warm.CACHE_ENV, str(disk))
    _, pool = run()
    assert pool.warmed_books > 0
    warm.save_pools()  # what the process's exit does
    cached, pool = run()
    assert pool.loaded_books > 0 and pool.warmed_books == 0  # every book came from the file
    for a, b in zip(plain, cached, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_cache_key_changes_with_whatever_a_book_depends_on(disk, monkeypatch):
    params = EngineParams()
    key = warm.pool_key(params, SLOTS, WARM_H, 50, "float64")
    assert key == warm.pool_key(EngineParams(), SLOTS, WARM_H, 50, "float64")
    other = dataclasses.replace(
        params, protocol=dataclasses.replace(params.protocol, liquidation_bonus=0.051)
    )
    for changed in (
        warm.pool_key(other, SLOTS, WARM_H, 50, "float64"),
        warm.pool_key(params, SLOTS + 1, WARM_H, 50, "float64"),
        warm.pool_key(params, SLOTS, WARM_H + 1e-9, 50, "float64"),
        warm.pool_key(params, SLOTS, WARM_H, 51, "float64"),
    ):
        assert changed != key
    monkeypatch.setattr(warm, "source_digest", lambda: "an edited engine")
    assert warm.pool_key(params, SLOTS, WARM_H, 50, "float64") != key
    monkeypatch.undo()
    monkeypatch.setenv(warm.CACHE_ENV, str(disk))
    # a pool of other parameters does not take the books saved for these
    saved = _pool()
    saved.ensure(np.array([1, 2]))
    saved.save()
    changed = _pool(params=other)
    assert changed.loaded_books == 0 and not changed.ready.any()
    # not even from a file under its own name that holds another key (a stale file)
    changed.path.write_bytes(saved.path.read_bytes())
    assert _pool(params=other).loaded_books == 0


def _corrupt(path, how):
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":  # a byte of the books' data changed: the zip's checksum fails
        b = bytearray(data)
        b[len(b) // 2] ^= 0xFF
        path.write_bytes(bytes(b))
    else:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if how == "dtype":
            arrays["kind"] = arrays["kind"].astype(np.float64)
        elif how == "shape":
            arrays["debt_usd"] = arrays["debt_usd"][:, :-1]
        elif how == "rows":
            arrays["rows"] = arrays["rows"] + 1000
        elif how == "nan":
            arrays["debt_usd"][0, 0] = np.nan
        elif how == "missing":
            del arrays["target_hf"]
        with open(path, "wb") as f:
            np.savez(f, **arrays)


@pytest.mark.parametrize(
    "how", ["garbage", "truncated", "flipped", "dtype", "shape", "rows", "nan", "missing"]
)
def test_a_corrupt_cache_file_is_ignored_and_rebuilt(disk, how):
    good = _pool()
    good.ensure(np.array([1, 2]))
    good.save()
    _corrupt(good.path, how)
    pool = _pool()
    assert pool.loaded_books == 0 and not pool.ready.any()
    pool.ensure(np.array([1, 2]))  # warmed again, the same books
    for name in warm.POOL_FIELDS:
        np.testing.assert_array_equal(getattr(pool, name)[[1, 2]], getattr(good, name)[[1, 2]])
    assert pool.save()  # and the file is whole again
    assert _pool().loaded_books == 2


def test_a_pool_saves_after_save_every_books_and_off_writes_nothing(disk, monkeypatch):
    pool = _pool(size=200)
    pool.ensure(np.arange(warm.SAVE_EVERY - 1))
    assert not pool.path.exists() and pool.unsaved_books == warm.SAVE_EVERY - 1
    pool.ensure(np.array([warm.SAVE_EVERY - 1]))
    assert pool.path.exists() and pool.unsaved_books == 0
    monkeypatch.setenv(warm.CACHE_ENV, "off")
    off = _pool(size=200)
    assert off.path is None and off.loaded_books == 0 and not off.save()
    assert [p.name for p in disk.iterdir()] == [pool.path.name]


def test_a_save_keeps_only_the_newest_pool_files(disk):
    import os

    for i in range(warm.KEEP_FILES + 3):  # files of older keys, oldest first
        old = disk / f"pool-old{i:02d}.npz"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    (disk / "other.txt").write_text("not a pool")
    pool = _pool()
    pool.ensure(np.array([1]))
    assert pool.save()
    left = sorted(p.name for p in disk.glob("pool-*.npz"))
    assert len(left) == warm.KEEP_FILES and pool.path.name in left
    # the newest old files stay, the oldest went
    assert f"pool-old{warm.KEEP_FILES + 2:02d}.npz" in left and "pool-old00.npz" not in left
    assert (disk / "other.txt").exists()
    newest_first = sorted(disk.glob("pool-old*.npz"), reverse=True)
    assert warm.prune(disk, keep=pool.path, limit=0) == newest_first
    assert [p.name for p in disk.glob("pool-*.npz")] == [pool.path.name]


def test_prune_removes_only_stale_temporary_files(tmp_path):
    """A save's temporary file older than STALE_TMP_S (its writer was killed) goes; a recent one
    (a save in progress in another process) and other files stay."""
    import os
    import time

    stale = tmp_path / ".pool-abc.npz.123.tmp"
    fresh = tmp_path / ".pool-abc.npz.456.tmp"
    other = tmp_path / ".other.tmp"
    for f in (stale, fresh, other):
        f.write_bytes(b"partial")
    old = time.time() - warm.STALE_TMP_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert warm.prune(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists() and other.exists()
