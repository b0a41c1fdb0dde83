"""Warm books for the envs: books that have lived through a calm burn-in before their episode.

``levgym simulate`` and ``stress`` warm each run's own book (``run.warmup_h``,
:func:`levgym.simulation.warm_up`); an env starts many short episodes, and warming every book
for two weeks of substeps would make each episode start cost as much as a long simulation. So
the envs (``warmup_h`` > 0, opt-in) draw their books from a cache instead:

- the cache holds :data:`WARM_BOOKS` books of ``num_positions`` slots, drawn as a runner draws
  them (env ``i`` seeded ``WARM_SEED + i``) and warmed together, in one batched run, through
  ``warmup_h`` hours of the calm burn-in of :func:`levgym.simulation.calm_bridge` at the
  market's ``initial_price_usd`` (a log-price Brownian bridge at the calibrated calm volatility
  back to that price, normal liquidity and gas); it is made once per process for each
  (parameters, slots, warm-up, dtype) and kept;
- an episode takes warmed book ``book_seed % WARM_BOOKS`` (its book seed is drawn as before, so
  the env's random stream is unchanged) and grafts its positions onto the episode's fresh state
  (:func:`graft_book`): collateral and debt keep their USD values and health factors at the
  episode's first price, counters start at zero, the pool, oracle and prices are the episode's.

That shared cache of 32 books is what the opt-in ``warmup_h`` of the ids before the warm-book
versions uses (kept bit for bit). The warm-book ids (``levgym/Governance-v2``,
``levgym/Liquidator-v3``) draw from a larger pool instead (``warm_pool`` books,
:class:`WarmPool`, default :data:`WARM_POOL`): book ``j`` of the pool is seeded by ``j`` alone
(:data:`POOL_SEED` ``+ j`` for its book, noise and burn-in path), so it is the same book whichever
other books are warmed beside it, and it is warmed only when an episode first takes it, together
with the other new books of that episode start, in one batched run. A pool's cost is paid per
distinct book used (about as much as a simulation of ``warmup_h`` hours of one book), once per
process (and, with the disk cache below, once per machine); after that an episode start costs
the graft alone.

A pool's warmed books are also kept on disk (:class:`WarmPool`, ``disk=True``, the default), so
that the next process starts with them: one ``.npz`` file per pool under
:func:`cache_dir` (``$LEVGYM_WARM_CACHE``, default ``~/.cache/levgym/warm``; ``off`` turns the
disk cache off), named by :func:`pool_key`, a hash of everything a warmed book depends on: the
source of the engine, the scenarios, the market runner and the warm-up (``levgym/engine``,
``levgym/scenarios``, ``market.py``, ``simulation.py``, ``warm.py``), the numpy and numba
versions, the parameters, slots, warm-up hours, pool size, dtype and backend. The file holds
the books as they were warmed (the same bits, so an env's outputs are the same with or without
it), is read with ``allow_pickle=False`` (never pickle), and is ignored when it cannot be read,
holds another key, or a field of the wrong dtype, shape or value (a stale or corrupt file is
then overwritten by the next save). A pool writes its file when it has warmed
:data:`SAVE_EVERY` books since the last write, when every book is warmed, and when the process
exits; a write first takes in the books another process saved meanwhile, replaces the file
atomically, and removes the least recently written pool files beyond the :data:`KEEP_FILES`
newest (each edit of the engine's source makes new keys) and any temporary file of a save older
than :data:`STALE_TMP_S` (left by a process killed mid-write).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .engine.params import EngineParams
from .engine.state import State

WARM_BOOKS = 32
"""Warmed books per cache: episodes share them (a book recurs every 32 episodes on average)."""
WARM_SEED = 90_210
"""Env ``i`` of the cache's batch is seeded ``WARM_SEED + i`` (book and borrower noise)."""

# The position fields an episode takes from its warmed book (the others are the fresh state's).
BOOK_FIELDS = (
    "active",
    "kind",
    "trigger_hf",
    "react_prob",
    "target_hf",
    "repays",
    "template_hf",
)


@functools.lru_cache(maxsize=8)
def warm_books(
    params: EngineParams, num_positions: int, warmup_h: float, dtype: str = "float64"
) -> State:
    """:data:`WARM_BOOKS` books of ``num_positions`` slots after ``warmup_h`` hours of calm
    burn-in at ``params.market.initial_price_usd`` (numpy; cached per process)."""
    from .engine.fused import HAVE_NUMBA
    from .simulation import Simulator, calm_bridge, warm_up

    backend = "numba" if HAVE_NUMBA and dtype == "float64" else "numpy"
    f0 = np.full(WARM_BOOKS, params.market.initial_price_usd)
    bridge = calm_bridge(f0, params, warmup_h, WARM_SEED)
    sim = Simulator(params, bridge, num_positions, WARM_SEED, backend, dtype)
    state = warm_up(params, bridge, sim.state, WARM_SEED, backend, dtype)
    return state.to_numpy()


WARM_BOOK_H = 336.0
"""The warm-book ids' default ``warmup_h``: two weeks, the ``run.warmup_h`` that
``levgym calibrate`` chose for the ``aave_v2_weth`` preset (ASSUMPTIONS.md, "Fidelity")."""
WARM_POOL = 1024
"""Books in the pool of the warm-book ids (their ``warm_pool`` default): an episode takes book
``book_seed % 1024``, so a book recurs every 1024 episodes on average."""
POOL_SEED = 51_966
"""Book ``j`` of a pool is drawn and warmed from seed ``POOL_SEED + j`` alone."""
MAX_POOL = 65_536
"""The largest ``warm_pool`` allowed (a pool holds up to that many books of every slot field)."""

# The fields a pool keeps per book: what graft_book reads.
POOL_FIELDS = (
    *BOOK_FIELDS,
    "collateral_asset",
    "debt_usd",
    "template_collateral_asset",
    "fundamental_usd",
    "debt_price_usd",
)


CACHE_ENV = "LEVGYM_WARM_CACHE"
"""The environment variable that moves the pools' disk cache (a folder), or turns it off
(``off``)."""
KEEP_FILES = 16
# A temporary file of a save older than this was left by a process killed mid-write (a save
# takes well under a second), so prune removes it.
STALE_TMP_S = 3600.0
"""A save leaves at most this many pool files in the folder, removing the least recently
written others (each edit of the engine's source makes a new key, so old files would pile up)."""
SAVE_EVERY = 32
"""A pool writes its file once it has warmed this many books since its last write (and when
every book is warmed, and at exit): about a second of warming per write of its file."""
_SOURCES = ("engine", "scenarios", "market.py", "simulation.py", "warm.py")


def cache_dir() -> Path | None:
    """The folder of the pools' files: ``$LEVGYM_WARM_CACHE``, or ``~/.cache/levgym/warm``;
    None when ``LEVGYM_WARM_CACHE`` is ``off``."""
    root = os.environ.get(CACHE_ENV, "")
    if root.strip().lower() == "off":
        return None
    return Path(root) if root else Path.home() / ".cache" / "levgym" / "warm"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A hash of the source files a warmed book depends on (:data:`_SOURCES` under the levgym
    package, every ``.py`` file of the folders) and of the numpy and numba versions."""
    from .engine.jit import numba

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = package / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes())
    digest.update(f"numpy {np.__version__} numba {getattr(numba, '__version__', None)}".encode())
    return digest.hexdigest()


def pool_key(
    params: EngineParams, num_positions: int, warmup_h: float, size: int, dtype: str
) -> str:
    """The name of a pool's file: a hash of :func:`source_digest`, the parameters (their
    ``repr``, every value at full precision), slots, warm-up, size, dtype and backend."""
    from .engine.fused import HAVE_NUMBA

    backend = "numba" if HAVE_NUMBA and dtype == "float64" else "numpy"
    what = (
        f"{source_digest()}|{params!r}|{int(num_positions)}|{float(warmup_h)!r}|{int(size)}|"
        f"{dtype}|{backend}|{POOL_SEED}"
    )
    return hashlib.sha256(what.encode()).hexdigest()[:32]


def _field_spec(name: str, k: int, num_positions: int, dtype: str) -> tuple[tuple, np.dtype]:
    """The shape and dtype of pool field ``name`` for ``k`` books (from the state schema)."""
    from .engine.schema import STATE_SCHEMA

    field = next(f for f in STATE_SCHEMA if f.name == name)
    kinds = {"float": np.dtype(dtype), "bool": np.dtype(bool), "int": np.dtype(np.int64)}
    shape = (k, num_positions) if "slot" in field.axes else (k,)
    return shape, kinds[field.dtype]


def check_pool_count(name: str, value: Any, most: int | None = None) -> int | None:
    """The option ``name`` of a pool's size (``warm_pool``, ``path_pool``, ``book_pool``) as
    given: None, or an integer >= 1 (and <= ``most`` where given); a one-line ``ValueError``
    naming the value otherwise."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < 1
        or (most is not None and value > most)
    ):
        allowed = "an integer >= 1" if most is None else f"an integer in [1, {most}]"
        raise ValueError(f"{name}={value!r} is out of range; allowed None or {allowed}")
    return int(value)


def check_pool_size(warm_pool: Any) -> int | None:
    """``warm_pool`` as given (None: the shared cache of :data:`WARM_BOOKS`), or a one-line
    ``ValueError`` naming the value."""
    return check_pool_count("warm_pool", warm_pool, MAX_POOL)


def warm_rows(
    params: EngineParams,
    num_positions: int,
    warmup_h: float,
    rows: np.ndarray,
    dtype: str = "float64",
) -> State:
    """Books ``rows`` of a pool (one env each, numpy): book ``j`` drawn as env ``j`` of a runner
    seeded ``POOL_SEED + j`` draws it, then run, with the borrower noise of that env, through
    ``warmup_h`` hours of the calm burn-in of :func:`levgym.simulation.calm_bridge` at
    ``params.market.initial_price_usd`` (its path drawn from that seed alone), restarted as the
    start of a run. Each book depends on its own index only, not on the other rows."""
    from .engine.fused import HAVE_NUMBA
    from .market import MarketRunner
    from .simulation import calm_bridge, restart_counters

    seeds = [POOL_SEED + int(j) for j in rows]
    k = len(seeds)
    backend = "numba" if HAVE_NUMBA and dtype == "float64" else "numpy"
    f0 = np.full(k, params.market.initial_price_usd)
    bridge = calm_bridge(f0, params, warmup_h, seeds)
    runner = MarketRunner(
        params, k, num_positions, bridge.num_substeps, drivers=bridge, backend=backend,
        dtype=dtype, packed=True,
    )  # fmt: skip
    runner.seed(seeds)
    runner.new_episodes(np.ones(k, dtype=bool))
    for _ in range(bridge.num_substeps):
        runner.substep()
    return restart_counters(runner.state, bridge.num_substeps * params.run.substep_h).to_numpy()


class WarmPool:
    """``size`` warmed books of ``num_positions`` slots, each warmed when an episode first takes
    it (:meth:`ensure`; :func:`warm_rows`) and kept for the process, and on disk (``disk``:
    the books a previous process saved are taken when the pool is made; see the module doc).
    Its per-book arrays (:data:`POOL_FIELDS`, ``[size, N]`` or ``[size]``) are what
    :func:`graft_book` reads; the rows not warmed yet hold no book."""

    def __init__(
        self,
        params: EngineParams,
        num_positions: int,
        warmup_h: float,
        size: int,
        dtype: str,
        disk: bool = True,
    ) -> None:
        self.params = params
        self.num_positions = int(num_positions)
        self.warmup_h = float(warmup_h)
        self.size = int(size)
        self.dtype = dtype
        self.ready = np.zeros(self.size, dtype=bool)
        for name in POOL_FIELDS:
            shape, dt = _field_spec(name, self.size, self.num_positions, dtype)
            setattr(self, name, np.zeros(shape, dtype=dt))
        self.warmed_books = 0  # books warmed so far (by this process)
        self.warm_seconds = 0.0  # wall time spent warming them
        self.loaded_books = 0  # books taken from the disk cache
        self.unsaved_books = 0  # books warmed since the file was last written
        folder = cache_dir() if disk else None
        self.path: Path | None = None
        if folder is not None:
            key = pool_key(params, self.num_positions, self.warmup_h, self.size, dtype)
            self.key = key
            self.path = folder / f"pool-{key}.npz"
            self.loaded_books = self._take(self.read())
            _POOLS.add(self)

    def ensure(self, rows: np.ndarray) -> WarmPool:
        """Warm the books of ``rows`` not warmed yet, in one batched run; returns the pool."""
        import time

        rows = np.asarray(rows, dtype=np.int64)
        need = np.unique(rows[~self.ready[rows]])
        if need.size == 0:
            return self
        t0 = time.perf_counter()
        state = warm_rows(self.params, self.num_positions, self.warmup_h, need, self.dtype)
        for name in POOL_FIELDS:
            getattr(self, name)[need] = getattr(state, name)
        self.ready[need] = True
        self.warmed_books += int(need.size)
        self.unsaved_books += int(need.size)
        self.warm_seconds += time.perf_counter() - t0
        if self.path is not None and (self.unsaved_books >= SAVE_EVERY or self.ready.all()):
            self.save()
        return self

    # ------------------------------------------------------------------ the disk cache
    def read(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The books of this pool's file (rows, ``{field: [k, ...]}``), or None when there is
        no file or it cannot be trusted: unreadable (a truncated or corrupt file), another key,
        a missing field, or a field of the wrong dtype or shape, rows out of range or repeated,
        or float values that are not finite."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if z["key"].dtype.kind != "U" or str(z["key"]) != self.key:
                    return None
                rows = z["rows"]
                if rows.dtype != np.int64 or rows.ndim != 1:
                    return None
                if rows.size and (rows.min() < 0 or rows.max() >= self.size):
                    return None
                if np.unique(rows).size != rows.size:
                    return None
                books = {}
                for name in POOL_FIELDS:
                    a = z[name]
                    shape, dt = _field_spec(name, rows.size, self.num_positions, self.dtype)
                    if a.shape != shape or a.dtype != dt:
                        return None
                    if dt.kind == "f" and not np.isfinite(a).all():
                        return None
                    books[name] = a
        except Exception:  # unreadable: np.load's and zipfile's errors vary by damage
            return None
        return rows, books

    def _take(self, saved: tuple[np.ndarray, dict[str, np.ndarray]] | None) -> int:
        """Take the saved books this pool does not hold yet; returns how many."""
        if saved is None:
            return 0
        rows, books = saved
        new = ~self.ready[rows]
        if not new.any():
            return 0
        for name in POOL_FIELDS:
            getattr(self, name)[rows[new]] = books[name][new]
        self.ready[rows[new]] = True
        return int(new.sum())

    def save(self) -> bool:
        """Write every warmed book to the pool's file (first taking those another process saved
        meanwhile), atomically; False when there is no disk cache or the write failed (an env
        never fails for its cache)."""
        if self.path is None:
            return False
        self.loaded_books += self._take(self.read())
        rows = np.flatnonzero(self.ready).astype(np.int64)
        books = {name: getattr(self, name)[rows] for name in POOL_FIELDS}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez(f, key=np.array(self.key), rows=rows, **books)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        self.unsaved_books = 0
        prune(self.path.parent, keep=self.path)
        return True


def prune(folder: Path, keep: Path | None = None, limit: int = KEEP_FILES) -> list[Path]:
    """Remove the least recently written pool files of ``folder`` beyond the ``limit`` newest
    (never ``keep``), and the temporary files of saves older than :data:`STALE_TMP_S` (left by a
    process killed mid-write); returns the removed paths. Files another process removes first,
    or that cannot be removed, are skipped."""
    files = []
    for f in folder.glob("pool-*.npz"):
        try:
            files.append((f.stat().st_mtime, f))
        except OSError:
            continue
    files.sort(reverse=True)
    removed = []
    now = time.time()
    for f in folder.glob(".pool-*.tmp"):  # left by a process killed mid-save
        try:
            if now - f.stat().st_mtime > STALE_TMP_S:
                f.unlink()
                removed.append(f)
        except OSError:
            continue
    for _, f in files[limit:]:
        if keep is not None and f == keep:
            continue
        try:
            f.unlink()
            removed.append(f)
        except OSError:
            continue
    return removed


_POOLS: weakref.WeakSet[WarmPool] = weakref.WeakSet()


@atexit.register
def save_pools() -> None:
    """Write the books each pool of the process warmed since its last write (run at exit)."""
    for pool in list(_POOLS):
        if pool.unsaved_books:
            pool.save()


@functools.lru_cache(maxsize=8)
def warm_pool(
    params: EngineParams, num_positions: int, warmup_h: float, size: int, dtype: str = "float64"
) -> WarmPool:
    """The process's :class:`WarmPool` for (parameters, slots, warm-up, size, dtype), made on
    first call (with the books of its disk cache) and shared by every env that asks for it."""
    return WarmPool(params, num_positions, warmup_h, size, dtype)


def graft_book(
    fresh: State, warmed: State | WarmPool, rows: np.ndarray, params: EngineParams
) -> State:
    """``fresh`` (numpy, one env per episode) with the positions of ``warmed``'s envs ``rows``
    (one per env of ``fresh``): collateral scaled by the ratio of the warmed price to the fresh
    first price and debt by the ratio of the debt prices, so that every position keeps its USD
    value and health factor; lenders' supply and reserves rebuilt from the debt as a drawn book
    has them; start values taken now."""
    b = params.borrowers
    fdt = fresh.collateral_asset.dtype

    def take(name: str) -> np.ndarray:
        """Rows ``rows`` of the warmed field ``name`` (a copy), floats in the fresh dtype."""
        a = getattr(warmed, name)[rows]
        return a.astype(fdt) if a.dtype.kind == "f" else a

    price = (take("fundamental_usd") / fresh.fundamental_usd)[:, None]
    dp = (take("debt_price_usd") / fresh.debt_price_usd)[:, None]
    coll = take("collateral_asset") * price
    debt = take("debt_usd") * dp
    total_debt = debt.sum(axis=1)
    changes: dict[str, Any] = {name: take(name) for name in BOOK_FIELDS}
    changes.update(
        collateral_asset=coll,
        debt_usd=debt,
        template_collateral_asset=take("template_collateral_asset") * price,
        ever_liquidated=np.zeros_like(fresh.ever_liquidated),
        supply_usd=total_debt / b.initial_utilization_frac,
        reserves_usd=total_debt * b.initial_reserves_frac,
        initial_collateral_asset=coll.sum(axis=1),
        initial_debt_usd=total_debt,
    )
    return fresh.replace(**changes)


__all__ = [
    "BOOK_FIELDS",
    "CACHE_ENV",
    "KEEP_FILES",
    "SAVE_EVERY",
    "MAX_POOL",
    "POOL_FIELDS",
    "POOL_SEED",
    "WARM_BOOKS",
    "WARM_BOOK_H",
    "WARM_POOL",
    "WARM_SEED",
    "WarmPool",
    "cache_dir",
    "check_pool_count",
    "check_pool_size",
    "graft_book",
    "pool_key",
    "prune",
    "save_pools",
    "source_digest",
    "warm_books",
    "warm_pool",
    "warm_rows",
]
