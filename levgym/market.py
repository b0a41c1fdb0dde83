"""The one market runner: E lending markets on the engine, each with its own episodes and seed.

``levgym simulate``, ``levgym stress``, the envs (:class:`levgym.envs.core.BatchedMarket`
adds their price tracker and position aggregates) and ``levgym bench`` all step this class, so
a seed means the same path everywhere.

Seed mapping. Env ``i`` of a run seeded ``s`` owns the generator ``default_rng(s + i)`` (the
Gymnasium convention for vector envs). Each episode draws from it, in this order: the scenario
of the mixture, the scenario seed (from ``[0, EVAL_SEED_OFFSET)`` for ``split="train"``, the next
block for ``"eval"``), the book seed and the 64-bit key of the borrower noise
(:mod:`levgym.engine.noise`). The env's scenario path is ``scenario.drivers(1, S, params,
scenario_seed)`` and its book ``init_state(params, 1, N, default_rng(book_seed))``. So
``levgym simulate --scenario X --seed s --num-envs E --steps T`` runs exactly the markets of a
Governance vector env with ``num_envs=E``, ``scenarios="X"``, ``horizon_h=T * step_h``, seeded
``s``, whose parameters stay fixed (tested in ``tests/test_market.py``).

A runner may instead be given its drivers (a CSV replay, a stress batch, a hand-built case):
then env ``i`` still draws its book seed and noise key as above, and its path is column ``i``.

With the opt-in pools (``path_pool``, ``book_pool``: :class:`MarketRunner`) an episode makes the
same draws in the same order; its path is then the pool's path of slot ``scenario_seed % P``
and its fresh book the pool's book ``book_seed % P``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .engine.backend import check_backend, make_converter, to_numpy
from .engine.dispatch import substep_function
from .engine.drivers import DriverRow, Drivers, unchecked, values_ok
from .engine.noise import splitmix_noise
from .engine.orders import Orders
from .engine.packed import PackedState, packed_substep
from .engine.params import EngineParams
from .engine.schema import DRIVER_SCHEMA, ENV_FIELDS
from .engine.state import (
    State,
    build_state,
    concat_books,
    draw_books,
    reset_envs,
    restarted,
    scatter_rows,
)
from .scenarios import EVAL_SEED_OFFSET
from .scenarios import get as get_scenario
from .warm import (
    WARM_BOOKS,
    check_pool_count,
    check_pool_size,
    graft_book,
    warm_books,
    warm_pool,
)

SPLITS = ("train", "eval")
DRIVERS_GIVEN = "custom"
_BOOL_DRIVERS = tuple(j for j, f in enumerate(DRIVER_SCHEMA) if f.dtype == "bool")
_DRIVER_NAMES = tuple(f.name for f in DRIVER_SCHEMA)
ENV_ROW_INDEX = {name: i for i, name in enumerate(ENV_FIELDS)}
_FIRST_ROW = ("fundamental_usd", "debt_price_usd", "liquidity_frac", "gas_gwei")
POOL_BYTES_FALLBACK = 4 * 2**30
"""The cap on a path pool's bytes where the physical memory cannot be read (4 GiB)."""


def pool_bytes_cap() -> int:
    """The most bytes a runner's path pool may hold: a quarter of the physical memory
    (:data:`POOL_BYTES_FALLBACK` where ``os.sysconf`` cannot tell it)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES")) // 4
    except (AttributeError, ValueError, OSError):
        return POOL_BYTES_FALLBACK


def fast_converter(backend: str, dtype: str = "float64", device: str | None = None):
    """:func:`levgym.engine.backend.make_converter`, except that on numpy (and numba) an array
    that already has the right dtype is passed through instead of copied. The runner only
    converts arrays it has just made (or, for the noise, a buffer the engine reads and never
    keeps)."""
    convert = make_converter(backend, dtype, device)
    if backend not in ("numpy", "numba"):
        return convert
    fdt = np.dtype(dtype)

    def to_np(a: Any) -> np.ndarray:
        if isinstance(a, np.ndarray) and (a.dtype == fdt or a.dtype.kind != "f"):
            return a
        return convert(a)

    return to_np


def draw_episode(rng: np.random.Generator, scenario_cdf: np.ndarray, split: str):
    """One episode's draws from an env's generator, in the documented order: (scenario index,
    scenario seed, book seed, noise key)."""
    k = int(scenario_cdf.searchsorted(rng.random() * scenario_cdf[-1], side="right"))
    k = min(k, len(scenario_cdf) - 1)
    lo = EVAL_SEED_OFFSET if split == "eval" else 0
    scenario_seed = int(rng.integers(lo, lo + EVAL_SEED_OFFSET))
    book_seed = int(rng.integers(0, 2**63 - 1))
    noise_key = rng.integers(0, 2**64 - 1, dtype=np.uint64, endpoint=True)
    return k, scenario_seed, book_seed, noise_key


def env_generators(
    seeds: Sequence[int], num_envs: int
) -> tuple[list[int], list[np.random.Generator]]:
    """One seed per env, each an integer >= 0 (one-line errors otherwise), and the generators
    ``default_rng(seed)`` of the envs: how every market of the envs seeds its episodes."""
    if len(seeds) != num_envs:
        raise ValueError(f"got {len(seeds)} seeds for {num_envs} envs; allowed one per env")
    clean = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
            raise ValueError(f"seed={s!r} is not allowed; allowed an integer >= 0")
        clean.append(int(s))
    return clean, [np.random.default_rng(s) for s in clean]


class MarketRunner:
    """E markets on the engine with their own episodes, seeds and clocks.

    - Drivers: one bank ``[F, R, S]`` (driver field, bank row, substep; ``S`` is the episode
      length in substeps; boolean drivers stored as 0 / 1) and each env's bank row
      :attr:`bank_rows` ``[E]``. Without a path pool R = E and env ``e`` owns row ``e``, replaced
      when it starts an episode; each substep's :class:`DriverRow` gathers
      ``bank[:, bank_rows[e], t_e]`` with the env's own clock ``t_e`` in one indexing operation.
    - Randomness: see the module doc (seed mapping).
    - Autoreset: :meth:`new_episodes` builds fresh one-env states and swaps them in with
      :func:`levgym.engine.state.reset_envs` (on numpy, applied to the restarting rows only and
      written into copies of the state's arrays); the engine's clock ``state.time_h`` is shared.

    ``path_pool`` None (default): each episode draws its own path. An integer P: the bank holds
    a pool of ``K * P`` paths (K scenarios); an episode of scenario ``k`` with scenario seed
    ``x`` runs path ``x % P`` of its scenario, bank row ``k * P + x % P``, the scenario's drivers
    drawn with seed ``x % P`` (``EVAL_SEED_OFFSET + x % P`` for ``split="eval"``) and checked the
    first time an episode takes it, then kept: a start only points the env at its row
    (:attr:`bank_rows`). ``book_pool`` None (default): each episode draws its book; an integer
    P: its fresh book is book ``book_seed % P`` of a pool of P books, book ``b`` drawn (on first
    use, then kept) from ``default_rng(b)``. Both keep the episode's draws and their order; they
    trade the diversity of paths and books for cheaper starts.

    ``warmup_h`` > 0: every episode starts from a warmed book (:mod:`levgym.warm`: a cached book
    that lived through ``warmup_h`` hours of calm burn-in, chosen by the episode's book seed)
    instead of its freshly drawn one; 0 (default) leaves every draw as it was. ``warm_pool``
    None (default): the book comes from the shared cache of 32 books; an integer P: from a pool
    of P books, each warmed when an episode first takes it (:class:`levgym.warm.WarmPool`).

    Give either ``scenarios`` (names) with ``scenario_weights``, or ``drivers`` (``[S, E]``,
    every episode of env ``i`` replays column ``i``). A scenario that returns fewer substeps than
    the episode needs holds its last row (replays shorter than the horizon).
    """

    def __init__(
        self,
        params: EngineParams,
        num_envs: int,
        num_positions: int,
        horizon_substeps: int,
        scenarios: list[str] | None = None,
        scenario_weights: np.ndarray | None = None,
        scenario_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        split: str = "train",
        backend: str = "numba",
        dtype: str = "float64",
        device: str | None = None,
        drivers: Drivers | None = None,
        packed: bool = False,
        warmup_h: float = 0.0,
        warm_pool: int | None = None,
        path_pool: int | None = None,
        book_pool: int | None = None,
    ) -> None:
        if (
            isinstance(warmup_h, bool)
            or not isinstance(warmup_h, int | float)
            or not 0.0 <= warmup_h <= 1440.0
        ):
            raise ValueError(
                f"warmup_h={warmup_h!r} is out of range; allowed a number of hours in [0, 1440]"
            )
        self.warm_pool = check_pool_size(warm_pool)
        self.path_pool = check_pool_count("path_pool", path_pool)
        self.book_pool = check_pool_count("book_pool", book_pool)
        if drivers is not None and self.path_pool is not None:
            raise ValueError(
                f"path_pool={self.path_pool} needs scenarios; a runner given its drivers allows "
                "path_pool=None"
            )
        for name, value in (("num_envs", num_envs), ("num_positions", num_positions)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r} is out of range; allowed an integer >= 1")
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is unknown; allowed {', '.join(SPLITS)}")
        check_backend(backend, dtype)
        if drivers is not None:
            if drivers.num_envs != num_envs:
                raise ValueError(
                    f"the drivers hold {drivers.num_envs} envs; num_envs={num_envs} needs as many"
                )
            scenarios, scenario_weights = [DRIVERS_GIVEN], np.ones(1)
        elif not scenarios:
            raise ValueError("a market runner needs scenarios or drivers")
        overrides = {str(k): dict(v) for k, v in (scenario_overrides or {}).items()}
        for name in overrides:
            if name not in scenarios:
                raise ValueError(
                    f"scenario_overrides names {name!r}, which is not in the mixture; allowed {', '.join(scenarios)}"
                )
            get_scenario(name).resolve_knobs({k: v for k, v in overrides[name].items()})
        self.params = params
        self.given_drivers = drivers
        self.num_envs = int(num_envs)
        self.num_positions = int(num_positions)
        self.horizon_substeps = int(horizon_substeps)
        self.scenarios = list(scenarios)
        weights = np.ones(1) if scenario_weights is None else np.asarray(scenario_weights, float)
        self.scenario_cdf = np.cumsum(weights)
        self._overrides = overrides
        self.split = split
        self.backend, self.dtype, self.device = backend, dtype, device
        self.convert = fast_converter(backend, dtype, device)
        # numpy and numba: the bank's float rows (dtype) pass through the converter unchanged
        self._numpy_backend = backend in ("numpy", "numba")
        # the engine's substep for this backend (numba: the fused kernel); `levgym bench` reads it
        self.step_fn = substep_function(backend, device)
        self.fdtype = np.dtype(dtype)

        e, s = self.num_envs, self.horizon_substeps
        nf = len(DRIVER_SCHEMA)
        if self.path_pool is None:
            self.bank = np.zeros((nf, e, s), dtype=self.fdtype)
        else:
            rows = len(self.scenarios) * self.path_pool
            need = nf * s * rows * self.fdtype.itemsize
            if need > pool_bytes_cap():
                raise ValueError(
                    f"path_pool={self.path_pool} needs {need} bytes ({len(self.scenarios)} "
                    f"scenarios x {self.path_pool} paths x {s} substeps x {nf} fields x "
                    f"{self.fdtype.itemsize} bytes); allowed at most {pool_bytes_cap()} bytes "
                    "(a quarter of the physical memory)"
                )
            self.bank = np.zeros((nf, rows, s), dtype=self.fdtype)
        # each pool row: whether its path is drawn, and its first row in float64 (what a fresh
        # path's first row gives the initial state)
        self._pool_ready = np.zeros(self.bank.shape[1], dtype=bool)
        self._pool_first = np.zeros((len(_FIRST_ROW), self.bank.shape[1]))
        self._books: dict[str, np.ndarray] | None = None  # the book pool, made on first use
        self._books_ready = np.zeros(self.book_pool or 0, dtype=bool)
        self._stand_in: dict[str, np.ndarray] | None = None  # _starting_books, warmup_h > 0
        # the bank row of each env (the kernels and driver_row read bank[:, bank_rows[e], t_e])
        self.bank_rows = (
            np.arange(e, dtype=np.int64) if self.path_pool is None else np.zeros(e, np.int64)
        )
        self.t = np.zeros(e, dtype=np.int64)
        self.scenario_index = np.zeros(e, dtype=np.int64)
        self.noise_key = np.zeros(e, dtype=np.uint64)
        self.book_seed = np.zeros(e, dtype=np.int64)
        # > 0: episodes start from warmed books (levgym.warm), drawn by their book seed
        self.warmup_h = float(warmup_h)
        self.rngs: list[np.random.Generator] | None = None
        self.seeds: list[int] = []
        self._state: State | None = None
        # backend numba with packed=True: the state lives in packed buffers stepped in place
        # (levgym.engine.packed); `state` is then a copy made when read
        self.packed_mode = bool(packed) and backend == "numba"
        self.packed: PackedState | None = None
        self._snapshot: State | None = None
        self.engine_seconds = 0.0  # wall time inside the engine's substep (for benchmarks)
        # the cascade rounds run so far per env, and the substeps run (for benchmarks: what a
        # timed stretch did); backend arrays, summed without a host sync
        self.rounds_total: Any = None
        self.substeps_run = 0
        self._u = np.empty((e, self.num_positions), dtype=np.float64)

    # ------------------------------------------------------------------ the state
    @property
    def state(self) -> State | None:
        """The batch's current state. In packed mode a copy of the buffers, made once per
        change (so a state read before a substep keeps its values after it)."""
        if self.packed is None:
            return self._state
        if self._snapshot is None:
            self._snapshot = self.packed.snapshot()
        return self._snapshot

    @state.setter
    def state(self, value: State | None) -> None:
        if self.packed is None or value is None:
            self._state = value
            if value is None:
                self.packed = None
            return
        self.packed.load(value)
        self._snapshot = value

    @property
    def started(self) -> bool:
        """Whether the first episodes have started (there is a state)."""
        return self.packed is not None or self._state is not None

    def changed(self) -> None:
        """Tell the runner that a kernel wrote into its packed buffers (drops the state copy)."""
        self._snapshot = None

    def set_fields(self, values: Mapping[str, Any]) -> None:
        """Write per-env fields ``{name: [E] values}`` into the state (the same as
        ``state = state.replace(**values)``; in packed mode written into the buffers' rows)."""
        if self.packed is None:
            assert self._state is not None
            self._state = self._state.replace(**values)
            return
        for name, v in values.items():
            self.packed.env[ENV_ROW_INDEX[name]] = v
        self._snapshot = None

    def field(self, name: str) -> np.ndarray:
        """The current ``[E]`` values of the per-env field ``name`` (numpy). In packed mode a
        view of the buffers: read it before the next substep, do not keep it."""
        if self.packed is not None:
            return self.packed.env[ENV_ROW_INDEX[name]]
        return to_numpy(getattr(self._state, name))

    @property
    def scenario_overrides(self) -> dict[str, dict[str, Any]]:
        """``{scenario: {knob: value}}`` of the episodes that start from now on."""
        return self._overrides

    @scenario_overrides.setter
    def scenario_overrides(self, value: Mapping[str, Mapping[str, Any]]) -> None:
        new = {str(k): dict(v) for k, v in value.items()}
        if self.path_pool is not None:
            changed = [
                k for k, name in enumerate(self.scenarios)
                if new.get(name) != self._overrides.get(name)
            ]  # fmt: skip
            if changed:
                self._drop_pool_paths(changed)
        self._overrides = new

    def _drop_pool_paths(self, scenarios: list[int]) -> None:
        """Forget the pool's paths of the scenarios ``scenarios`` (their knobs changed): they
        are drawn again when next taken. Episodes under way keep their paths: the rows they
        read move to rows after the pool's (the bank is rebuilt, rarely)."""
        p = int(self.path_pool or 0)
        pool_rows = len(self.scenarios) * p
        stale = np.zeros(self.bank.shape[1], dtype=bool)
        stale[pool_rows:] = True
        for k in scenarios:
            stale[k * p : (k + 1) * p] = True
        keep = np.unique(self.bank_rows[stale[self.bank_rows] & self._pool_ready[self.bank_rows]])
        bank = np.zeros(
            (self.bank.shape[0], pool_rows + keep.size, self.bank.shape[2]), self.fdtype
        )
        bank[:, :pool_rows] = self.bank[:, :pool_rows]
        bank[:, pool_rows:] = self.bank[:, keep]
        ready = np.zeros(bank.shape[1], dtype=bool)
        ready[:pool_rows] = self._pool_ready[:pool_rows] & ~stale[:pool_rows]
        ready[pool_rows:] = True
        first = np.zeros((len(_FIRST_ROW), bank.shape[1]))
        first[:, :pool_rows] = self._pool_first[:, :pool_rows]
        first[:, pool_rows:] = self._pool_first[:, keep]
        moved = np.full(self.bank.shape[1], -1, dtype=np.int64)
        moved[keep] = pool_rows + np.arange(keep.size)
        on_kept = moved[self.bank_rows] >= 0
        self.bank_rows[on_kept] = moved[self.bank_rows[on_kept]]
        self.bank, self._pool_ready, self._pool_first = bank, ready, first

    # ------------------------------------------------------------------ seeding and episodes
    def seed(self, seeds: Sequence[int]) -> None:
        """Give env ``i`` the generator ``default_rng(seeds[i])``."""
        self.seeds, self.rngs = env_generators(seeds, self.num_envs)

    def _episode(self, env: int) -> tuple[Drivers, State]:
        """Draw env ``env``'s next episode: scenario path and a one-env book (numpy)."""
        drivers, book_rng = self._draw(env)
        drivers.check()
        book = draw_books(self.params, self.num_positions, [book_rng])
        return drivers, self._build(drivers, [book])

    def _build(self, first: Drivers | list[Drivers] | np.ndarray, books: list[dict]) -> State:
        """The initial state of ``books`` (one per env) at the first row of each env's drivers
        (or of the first rows ``[4, E]`` given as an array, float64, in :data:`_FIRST_ROW`'s
        order)."""
        if isinstance(first, np.ndarray):
            row = dict(zip(_FIRST_ROW, first, strict=True))
        else:
            firsts = [first] if isinstance(first, Drivers) else first
            row = {
                name: np.concatenate([getattr(d, name)[0] for d in firsts]) for name in _FIRST_ROW
            }
        return build_state(
            self.params, concat_books(books), **row, backend="numpy", dtype=self.dtype
        )

    def _draw(self, env: int) -> tuple[Drivers, np.random.Generator]:
        """Env ``env``'s next episode: its scenario path, whose values are not checked yet (the
        caller checks them: :meth:`new_episodes` for all its envs in one pass), and the
        generator of its book (``default_rng(book_seed)``, for :func:`draw_books`)."""
        drivers, book_seed = self._draw_path(env)
        return drivers, np.random.default_rng(book_seed)

    def _draw_path(self, env: int) -> tuple[Drivers, int]:
        """Env ``env``'s next episode's draws: its scenario path (values not checked yet) and
        its book seed."""
        k, scenario_seed, book_seed = self._draw_ids(env)
        if self.given_drivers is not None:
            return self.given_drivers.slice_envs(slice(env, env + 1)), book_seed
        return self._path(k, scenario_seed), book_seed

    def _draw_ids(self, env: int) -> tuple[int, int, int]:
        """Env ``env``'s next episode's draws (:func:`draw_episode`), its noise key, scenario
        and book seed stored: returns (scenario index, scenario seed, book seed)."""
        assert self.rngs is not None
        k, scenario_seed, book_seed, key = draw_episode(
            self.rngs[env], self.scenario_cdf, self.split
        )
        self.noise_key[env] = key
        self.scenario_index[env] = k
        self.book_seed[env] = book_seed
        return k, scenario_seed, book_seed

    def _path(self, k: int, scenario_seed: int) -> Drivers:
        """Scenario ``k``'s path of seed ``scenario_seed`` for one env, the runner's horizon
        and knobs (values not checked yet)."""
        name = self.scenarios[k]
        with unchecked():
            drivers = get_scenario(name).drivers(
                1, self.horizon_substeps, self.params, scenario_seed,
                self.scenario_overrides.get(name),
            )  # fmt: skip
        drivers.check_shapes()
        if drivers.num_envs != 1 or drivers.num_substeps < 1:
            raise ValueError(
                f"scenario {name!r} returned drivers of shape {drivers.fundamental_usd.shape}; "
                f"expected ({self.horizon_substeps}, 1)"
            )
        return drivers

    def _write_path(self, row: int, drivers: Drivers) -> np.ndarray:
        """Copy one env's ``drivers`` into bank row ``row`` (a short path holds its last
        substep); returns the row's view ``[F, S]``."""
        s = self.horizon_substeps
        got = min(drivers.num_substeps, s)
        rows = self.bank[:, row, :]  # [F, S], contiguous per field
        for j, name in enumerate(_DRIVER_NAMES):
            col = getattr(drivers, name)[:got, 0]
            rows[j, :got] = col
            if got < s:
                rows[j, got:] = col[-1]
        return rows

    def _pool_row(self, k: int, scenario_seed: int) -> int:
        """The bank row of the pool path of scenario ``k`` that an episode of scenario seed
        ``scenario_seed`` runs, drawn and checked now if no episode took it before."""
        p = int(self.path_pool or 0)
        slot = scenario_seed % p
        row = k * p + slot
        if not self._pool_ready[row]:
            lo = EVAL_SEED_OFFSET if self.split == "eval" else 0
            self._pool_first[:, row] = self._store_path(row, self._path(k, lo + slot), k)
            self._pool_ready[row] = True
        return row

    def _pool_books(self, seeds: np.ndarray) -> dict:
        """The fresh books of the episodes of book seeds ``seeds`` from the book pool: book
        ``seed % book_pool``, drawn from ``default_rng(b)`` on first use."""
        p = int(self.book_pool or 0)
        ids = seeds % p
        missing = np.unique(ids[~self._books_ready[ids]])
        if missing.size:
            drawn = draw_books(
                self.params, self.num_positions, [np.random.default_rng(int(b)) for b in missing]
            )
            if self._books is None:
                self._books = {
                    name: np.zeros((p, *np.shape(a)[1:]), dtype=np.asarray(a).dtype)
                    for name, a in drawn.items()
                }
            for name, a in drawn.items():
                self._books[name][missing] = a
            self._books_ready[missing] = True
        assert self._books is not None
        return {name: a[ids] for name, a in self._books.items()}

    def new_episodes(self, mask: np.ndarray) -> np.ndarray:
        """Start a new episode in every env of ``mask`` (bool ``[E]``); the others are untouched.
        Returns the indices of the envs that started.

        Each env draws its path and book from its own generators. Each path is checked by its
        fields' minimum and maximum over the bank row it was just copied into
        (:meth:`Drivers.check` names a bad field); the books' arithmetic
        (:func:`draw_books`) and the initial states are done once for the batch."""
        if self.rngs is None:
            raise RuntimeError("seed() must be called before the first episode")
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return idx
        if self.path_pool is not None:
            fresh = self._pool_starts(idx)
        else:
            fresh = self._fresh_starts(idx)
        if self.warmup_h > 0.0:
            fresh = graft_book(fresh, *self.warm_source(idx), self.params)
        if self.packed is not None:
            # the engine's reset rule (reset_envs) on the restarting rows takes all of `fresh`
            # but the fields that restart at the shared clock: written into the buffers
            self.packed.load_rows(fresh.replace(**restarted(fresh, self.packed.time_h)), idx)
            self._snapshot = None
        elif self.state is None and self.packed_mode:
            if not mask.all():
                raise RuntimeError("the first episodes must start in every env at once")
            self.packed = PackedState(fresh)
            self._snapshot = None
        elif self.state is None:
            if not mask.all():
                raise RuntimeError("the first episodes must start in every env at once")
            self.state = fresh.map_arrays(lambda a, f: self.convert(a))
        elif idx.size == self.num_envs:
            self.state = reset_envs(
                self.state, fresh.map_arrays(lambda a, f: self.convert(a)), self.convert(mask)
            )
        elif isinstance(self.state.collateral_asset, np.ndarray):
            # numpy: the engine's reset rule on the k restarting rows only, then those rows are
            # written into copies of the state's arrays (no full-size gather or select)
            merged = fresh.replace(**restarted(fresh, self.state.time_h))
            self.state = scatter_rows(self.state, merged, idx)
        else:
            gather = np.zeros(self.num_envs, dtype=np.int64)
            gather[idx] = np.arange(idx.size)
            full = fresh.map_arrays(lambda a, f: self.convert(a[gather]))
            self.state = reset_envs(self.state, full, self.convert(mask))
        self.t[idx] = 0
        return idx

    def _fresh_starts(self, idx: np.ndarray) -> State:
        """The episodes of envs ``idx`` without a path pool: each env's path stored in its bank
        row (:meth:`_store_path`) and dropped at once (keeping every env's path alive until all
        are drawn cost each start fresh memory); the initial states (env j of the result
        starts env ``idx[j]``)."""
        first = np.empty((len(_FIRST_ROW), idx.size))
        for j, env in enumerate(idx):
            drivers, _ = self._draw_path(int(env))
            first[:, j] = self._store_path(int(env), drivers, int(self.scenario_index[env]))
        return self._build(first, [self._starting_books(self.book_seed[idx])])

    def _pool_starts(self, idx: np.ndarray) -> State:
        """The episodes of envs ``idx`` with a path pool: each env pointed at its pool row (no
        copy, no check: a pool path is checked when first drawn); the initial states."""
        rows = np.empty(idx.size, dtype=np.int64)
        for i, env in enumerate(idx):
            k, scenario_seed, _ = self._draw_ids(int(env))
            rows[i] = self._pool_row(k, scenario_seed)
        self.bank_rows[idx] = rows
        return self._build(self._pool_first[:, rows], [self._starting_books(self.book_seed[idx])])

    def _starting_books(self, seeds: np.ndarray) -> dict:
        """The fresh books of the episodes of book seeds ``seeds``: each drawn from
        ``default_rng(seed)``, or from the book pool. With ``warmup_h`` > 0 the warmed book
        replaces every field a fresh book gives the state (:func:`graft_book`), so none is
        drawn: one book, drawn once, stands in for each (the same states)."""
        if self.warmup_h > 0.0:
            if self._stand_in is None:
                self._stand_in = draw_books(
                    self.params, self.num_positions, [np.random.default_rng(0)]
                )
            return {k: np.repeat(a, seeds.size, axis=0) for k, a in self._stand_in.items()}
        if self.book_pool is not None:
            return self._pool_books(seeds)
        return draw_books(
            self.params, self.num_positions, [np.random.default_rng(int(b)) for b in seeds]
        )

    def _store_path(self, row: int, drivers: Drivers, k: int) -> list[float]:
        """Copy ``drivers`` (a path of scenario ``k``) into bank row ``row`` and check it there,
        by its fields' minimum and maximum while the row is in the cache (ValueError naming the
        field, by :meth:`Drivers.check`); returns its first row in float64, in
        :data:`_FIRST_ROW`'s order (what the initial state starts from)."""
        values = self._write_path(row, drivers)
        if not values_ok(values.min(axis=1), values.max(axis=1)):
            drivers.check()  # raises ValueError naming the field
            raise ValueError(f"the drivers of scenario {self.scenarios[k]!r} hold a bad value")
        return [getattr(drivers, name)[0, 0] for name in _FIRST_ROW]

    def warm_source(self, idx: np.ndarray) -> tuple[Any, np.ndarray]:
        """The warmed books of the episodes starting in envs ``idx`` (``warmup_h`` > 0): the
        cache or pool, and each episode's row in it (its book seed modulo their number); a
        pool's new rows are warmed now."""
        if self.warm_pool is None:
            cache = warm_books(self.params, self.num_positions, self.warmup_h, self.dtype)
            return cache, self.book_seed[idx] % WARM_BOOKS
        rows = self.book_seed[idx] % self.warm_pool
        pool = warm_pool(self.params, self.num_positions, self.warmup_h, self.warm_pool, self.dtype)
        return pool.ensure(rows), rows

    # ------------------------------------------------------------------ stepping
    def noise(self) -> np.ndarray:
        """Uniform ``[E, N]`` borrower noise for each env's current substep (see the module
        doc). The array is a buffer overwritten by the next call."""
        return splitmix_noise(self.noise_key, self.t, self._u)

    def driver_row(self) -> DriverRow:
        """Each env's drivers at its own substep ``t_e`` (clamped to the last row)."""
        t = np.minimum(self.t, self.horizon_substeps - 1)
        rows = self.bank[:, self.bank_rows, t]  # [F, E], one gather
        values = dict(zip(_DRIVER_NAMES, rows, strict=True))
        for j in _BOOL_DRIVERS:
            values[_DRIVER_NAMES[j]] = rows[j] != 0
        if not self._numpy_backend:
            values = {k: self.convert(v) for k, v in values.items()}
        # DriverRow(**values) without its frozen __init__ setting each field (it has no checks)
        out = object.__new__(DriverRow)
        out.__dict__.update(values)
        return out

    def substep(self, orders: Orders | None = None) -> Any:
        """Advance every env by one engine substep with the agents' ``orders``; returns the
        cascade rounds per env."""
        if self.packed is not None:
            return self._packed_substep(orders)
        assert self.state is not None
        row = self.driver_row()
        noise = self.convert(self.noise())
        t0 = time.perf_counter()
        self.state, rounds = self.step_fn(self.state, row, noise, self.params, orders)
        self.engine_seconds += time.perf_counter() - t0
        self.t += 1
        self.count_rounds(rounds)
        return rounds

    def count_rounds(self, rounds: Any, substeps: int = 1) -> None:
        """Add ``rounds`` (per env) to :attr:`rounds_total` and ``substeps`` to
        :attr:`substeps_run`."""
        self.rounds_total = (
            rounds + 0.0 if self.rounds_total is None else self.rounds_total + rounds
        )
        self.substeps_run += substeps

    def _packed_substep(self, orders: Orders | None) -> np.ndarray:
        """:meth:`substep` on the packed buffers: one kernel call, the same numbers."""
        p = self.packed
        assert p is not None
        t0 = time.perf_counter()
        rounds = packed_substep(
            p, self.bank, self.bank_rows, self.t, self.noise_key, self.params, orders
        )
        self.engine_seconds += time.perf_counter() - t0
        self._snapshot = None
        self.count_rounds(rounds)
        return rounds

    @property
    def at_horizon(self) -> np.ndarray:
        """Envs whose episode has used all its substeps."""
        return self.t >= self.horizon_substeps

    def scenario_of(self, env: int) -> str:
        return self.scenarios[int(self.scenario_index[env])]


def run_markets(
    params: EngineParams,
    num_envs: int,
    num_positions: int,
    num_substeps: int,
    seed: int,
    scenario: str | None = None,
    scenario_knobs: Mapping[str, Any] | None = None,
    drivers: Drivers | None = None,
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
    split: str = "train",
) -> MarketRunner:
    """A runner seeded ``seed + i`` per env, its first episodes started: of the scenario
    ``scenario`` (with its knobs) or of the given ``drivers``."""
    runner = MarketRunner(
        params, num_envs, num_positions, num_substeps,
        scenarios=None if scenario is None else [scenario],
        scenario_overrides=None if scenario is None or not scenario_knobs else {scenario: scenario_knobs},
        split=split, backend=backend, dtype=dtype, device=device, drivers=drivers,
    )  # fmt: skip
    runner.seed([int(seed) + i for i in range(num_envs)])
    runner.new_episodes(np.ones(num_envs, dtype=bool))
    return runner


def episode_drivers(runner: MarketRunner) -> Drivers:
    """The drivers of the runner's current episodes, ``[S, E]`` numpy."""
    bank = runner.bank[:, runner.bank_rows]
    values = {
        f.name: (bank[j].T != 0) if j in _BOOL_DRIVERS else bank[j].T.astype(np.float64)
        for j, f in enumerate(DRIVER_SCHEMA)
    }
    return Drivers(**values)


__all__ = [
    "DRIVERS_GIVEN",
    "MarketRunner",
    "SPLITS",
    "draw_episode",
    "episode_drivers",
    "fast_converter",
    "run_markets",
]
