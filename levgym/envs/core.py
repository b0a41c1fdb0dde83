"""The batched market behind every levgym env: E engine envs with their own episodes and seeds.

An env of the batch has its own random stream (seeded ``seed + i``), its own scenario path and
its own episode clock, so env ``i`` of a batch behaves exactly like a batch of one seeded
``seed + i``, and envs can start new episodes at different times. All mechanics come from
:mod:`levgym.engine`; this module only feeds it drivers and noise and swaps episodes in and out.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..engine.backend import check_backend, make_converter
from ..engine.dispatch import substep_function
from ..engine.drivers import DRIVER_FIELDS, DriverRow, Drivers
from ..engine.orders import Orders
from ..engine.params import EngineParams, ProtocolParams, preset
from ..engine.state import State, init_state, reset_envs
from ..scenarios import EVAL_SEED_OFFSET
from ..scenarios import get as get_scenario
from ..scenarios import names as scenario_names
from .features import PriceTracker
from .kernels import PositionAggregates, position_aggregates, splitmix_noise

SPLITS = ("train", "eval")

ScenarioSpec = str | Sequence[str] | Mapping[str, float] | None


def resolve_params(params: EngineParams | ProtocolParams | str | None) -> EngineParams:
    """``EngineParams`` from an ``EngineParams``, a ``ProtocolParams``, a preset name or ``None``."""
    if params is None:
        return EngineParams()
    if isinstance(params, str):
        return EngineParams(protocol=preset(params))
    if isinstance(params, ProtocolParams):
        return EngineParams(protocol=params)
    if isinstance(params, EngineParams):
        return params
    raise ValueError(
        f"params={params!r} is not understood; allowed an EngineParams, a ProtocolParams or a preset name"
    )


def resolve_scenarios(
    scenarios: ScenarioSpec, preferred: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Scenario names and their sampling weights (summing to 1).

    ``None`` takes the names of ``preferred`` that are registered now (all registered scenarios
    if none is); a name or a list gives equal weights; a mapping gives name -> weight.
    """
    if scenarios is None:
        registered = set(scenario_names())
        chosen = [n for n in preferred if n in registered] or sorted(registered)
        if not chosen:
            raise ValueError(
                "no scenario is registered; allowed names come from levgym.scenarios.names()"
            )
        return chosen, np.full(len(chosen), 1.0 / len(chosen))
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if isinstance(scenarios, Mapping):
        names = [str(k) for k in scenarios]
        weights = np.array([float(scenarios[k]) for k in scenarios], dtype=np.float64)
    else:
        names = [str(s) for s in scenarios]
        weights = np.ones(len(names))
    if not names:
        raise ValueError(
            "scenarios=[] is empty; allowed one or more names from levgym.scenarios.names()"
        )
    for name in names:
        get_scenario(name)  # raises ValueError naming the allowed scenarios
    if np.any(~np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"scenario weights {weights.tolist()} are invalid; allowed finite, >= 0, sum > 0"
        )
    return names, weights / weights.sum()


def horizon_steps(horizon_h: float, step_h: float) -> int:
    """Number of env steps in ``horizon_h`` hours; it must be a whole number of steps."""
    if (
        isinstance(horizon_h, bool)
        or not isinstance(horizon_h, int | float)
        or not math.isfinite(horizon_h)
    ):
        raise ValueError(f"horizon_h={horizon_h!r} must be a finite number of hours")
    steps = horizon_h / step_h
    if horizon_h <= 0 or abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        raise ValueError(
            f"horizon_h={horizon_h:g} is not allowed; it must be a positive multiple of the step, {step_h:g} h"
        )
    return int(round(steps))


_FROZEN = DRIVER_FIELDS.index("oracle_frozen")


def fast_converter(backend: str, dtype: str = "float64", device: str | None = None):
    """:func:`levgym.engine.backend.make_converter`, except that on numpy (and numba) an array
    that already has the right dtype is passed through instead of copied. The envs only convert
    arrays they have just made (or, for the noise, a buffer the engine reads and never keeps)."""
    convert = make_converter(backend, dtype, device)
    if backend not in ("numpy", "numba"):
        return convert
    fdt = np.dtype(dtype)

    def to_np(a: Any) -> np.ndarray:
        if isinstance(a, np.ndarray) and (a.dtype == fdt or a.dtype.kind != "f"):
            return a
        return convert(a)

    return to_np


class BatchedMarket:
    """E lending markets on the engine, each running its own episode of a scenario mixture.

    - Drivers: one bank ``[F, E, S]`` (driver field, env, substep; ``S`` is the episode length
      in substeps; ``oracle_frozen`` is stored as 0 / 1); an env's row is replaced when it starts
      an episode, and each substep's :class:`DriverRow` gathers ``bank[:, e, t_e]`` with the
      env's own clock ``t_e`` in one indexing operation.
    - Randomness: env ``e`` draws everything from its own generator (``seed_e``): per episode,
      the scenario, the scenario seed, the book seed and a 64-bit noise key. Borrower noise at
      substep ``t`` of slot ``n`` is SplitMix64 of ``key + (t * N + n + 1) * golden``, computed
      for all envs in one pass (:func:`levgym.envs.kernels.splitmix_noise`).
    - Aggregates: :meth:`aggregates` sums the positions once per state (debt, collateral,
      underwater shortfall, debt below health-factor thresholds) and caches the result until
      the state's arrays change, so rewards and observations of one step share one pass.
    - Autoreset: :meth:`new_episodes` builds fresh one-env states and swaps them in with
      :func:`levgym.engine.state.reset_envs` (on numpy, applied to the restarting rows only and
      written into copies of the state's arrays); the engine's clock ``state.time_h`` is shared.

    Scenario seeds come from ``[0, EVAL_SEED_OFFSET)`` for ``split="train"`` and from
    ``[EVAL_SEED_OFFSET, 2 * EVAL_SEED_OFFSET)`` for ``split="eval"``. A scenario that returns
    fewer substeps than the episode needs holds its last row (replays shorter than the horizon).
    """

    def __init__(
        self,
        params: EngineParams,
        num_envs: int,
        num_positions: int,
        horizon_substeps: int,
        scenarios: list[str],
        scenario_weights: np.ndarray,
        scenario_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        split: str = "train",
        backend: str = "numba",
        dtype: str = "float64",
        device: str | None = None,
    ) -> None:
        for name, value in (("num_envs", num_envs), ("num_positions", num_positions)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r} is out of range; allowed an integer >= 1")
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is unknown; allowed {', '.join(SPLITS)}")
        check_backend(backend, dtype)
        overrides = {str(k): dict(v) for k, v in (scenario_overrides or {}).items()}
        for name in overrides:
            if name not in scenarios:
                raise ValueError(
                    f"scenario_overrides names {name!r}, which is not in the mixture; allowed {', '.join(scenarios)}"
                )
            get_scenario(name).resolve_knobs({k: v for k, v in overrides[name].items()})
        self.params = params
        self.num_envs = int(num_envs)
        self.num_positions = int(num_positions)
        self.horizon_substeps = int(horizon_substeps)
        self.scenarios = list(scenarios)
        self.scenario_cdf = np.cumsum(scenario_weights)
        self.scenario_overrides = overrides
        self.split = split
        self.backend, self.dtype, self.device = backend, dtype, device
        self.convert = fast_converter(backend, dtype, device)
        # the engine's substep for this backend (numba: the fused kernel); `levgym bench` reads it
        self.step_fn = substep_function(backend, device)
        self.fdtype = np.dtype(dtype)

        e, s = self.num_envs, self.horizon_substeps
        self.bank = np.zeros((len(DRIVER_FIELDS), e, s), dtype=self.fdtype)
        self.t = np.zeros(e, dtype=np.int64)
        self.scenario_index = np.zeros(e, dtype=np.int64)
        self.noise_key = np.zeros(e, dtype=np.uint64)
        self.rngs: list[np.random.Generator] | None = None
        self.seeds: list[int] = []
        self.state: State | None = None
        self.tracker = PriceTracker(e, params.run.substep_h)
        self.engine_seconds = 0.0  # wall time inside levgym.engine.substep (for benchmarks)
        self._envs = np.arange(e)
        self._u = np.empty((e, self.num_positions), dtype=np.float64)
        self._agg_key: tuple[Any, ...] = ()
        self._agg: PositionAggregates | None = None

    # ------------------------------------------------------------------ seeding and episodes
    def seed(self, seeds: Sequence[int]) -> None:
        """Give env ``i`` the generator ``default_rng(seeds[i])``."""
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"got {len(seeds)} seeds for {self.num_envs} envs; allowed one per env"
            )
        clean = []
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
                raise ValueError(f"seed={s!r} is not allowed; allowed an integer >= 0")
            clean.append(int(s))
        self.seeds = clean
        self.rngs = [np.random.default_rng(s) for s in clean]

    def _episode(self, env: int) -> tuple[Drivers, State]:
        """Draw env ``env``'s next episode: scenario path and a one-env book (numpy)."""
        assert self.rngs is not None
        rng = self.rngs[env]
        k = int(
            np.searchsorted(self.scenario_cdf, rng.random() * self.scenario_cdf[-1], side="right")
        )
        k = min(k, len(self.scenarios) - 1)
        lo = EVAL_SEED_OFFSET if self.split == "eval" else 0
        scenario_seed = int(rng.integers(lo, lo + EVAL_SEED_OFFSET))
        book_seed = int(rng.integers(0, 2**63 - 1))
        self.noise_key[env] = rng.integers(0, 2**64 - 1, dtype=np.uint64, endpoint=True)
        self.scenario_index[env] = k
        name = self.scenarios[k]
        drivers = get_scenario(name).drivers(
            1, self.horizon_substeps, self.params, scenario_seed, self.scenario_overrides.get(name)
        )
        if drivers.num_envs != 1 or drivers.num_substeps < 1:
            raise ValueError(
                f"scenario {name!r} returned drivers of shape {drivers.fundamental_usd.shape}; "
                f"expected ({self.horizon_substeps}, 1)"
            )
        book = init_state(
            self.params,
            1,
            self.num_positions,
            np.random.default_rng(book_seed),
            fundamental_usd=drivers.fundamental_usd[0],
            debt_price_usd=drivers.debt_price_usd[0],
            liquidity_frac=drivers.liquidity_frac[0],
            gas_gwei=drivers.gas_gwei[0],
            backend="numpy",
            dtype=self.dtype,
        )
        return drivers, book

    def new_episodes(self, mask: np.ndarray) -> None:
        """Start a new episode in every env of ``mask`` (bool ``[E]``); the others are untouched."""
        if self.rngs is None:
            raise RuntimeError("seed() must be called before the first episode")
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        books = []
        s = self.horizon_substeps
        for env in idx:
            drivers, book = self._episode(int(env))
            got = min(drivers.num_substeps, s)
            rows = self.bank[:, env, :]  # [F, S], contiguous per field
            for j, f in enumerate(DRIVER_FIELDS):
                col = getattr(drivers, f)[:got, 0]
                rows[j, :got] = col
                if got < s:
                    rows[j, got:] = col[-1]
            books.append(book)
        fresh = _concat_states(books)  # env j of `fresh` starts env idx[j]
        if self.state is None:
            if not mask.all():
                raise RuntimeError("the first episodes must start in every env at once")
            self.state = _convert_state(fresh, self.convert)
        elif idx.size == self.num_envs:
            self.state = reset_envs(
                self.state, _convert_state(fresh, self.convert), self.convert(mask)
            )
        elif isinstance(self.state.collateral_asset, np.ndarray):
            # numpy: the engine's reset rule on the k restarting rows only, then those rows are
            # written into copies of the state's arrays (no full-size gather or select)
            old = self.state.select(idx)
            merged = reset_envs(old, fresh, np.ones(idx.size, dtype=bool))
            self.state = _scatter_rows(self.state, merged, idx)
        else:
            gather = np.zeros(self.num_envs, dtype=np.int64)
            gather[idx] = np.arange(idx.size)
            full = _convert_state(_select_rows(fresh, gather), self.convert)
            self.state = reset_envs(self.state, full, self.convert(mask))
        self.t[idx] = 0
        self.tracker.reset(self.state, mask)

    # ------------------------------------------------------------------ stepping
    def noise(self) -> np.ndarray:
        """Uniform ``[E, N]`` borrower noise for each env's current substep (see class doc).

        The array is a buffer overwritten by the next call."""
        return splitmix_noise(self.noise_key, self.t, self._u)

    def driver_row(self) -> DriverRow:
        """Each env's drivers at its own substep ``t_e`` (clamped to the last row)."""
        t = np.minimum(self.t, self.horizon_substeps - 1)
        rows = self.bank[:, self._envs, t]  # [F, E], one gather
        values = {f: self.convert(rows[j]) for j, f in enumerate(DRIVER_FIELDS)}
        values["oracle_frozen"] = self.convert(rows[_FROZEN] != 0)
        return DriverRow(**values)

    def substep(self, orders: Orders | None = None) -> Any:
        """Advance every env by one engine substep with the agents' ``orders``; returns the
        cascade rounds per env."""
        assert self.state is not None
        row = self.driver_row()
        noise = self.convert(self.noise())
        t0 = time.perf_counter()
        self.state, rounds = self.step_fn(self.state, row, noise, self.params, orders)
        self.engine_seconds += time.perf_counter() - t0
        self.t += 1
        self.tracker.update(self.state)
        return rounds

    def aggregates(self, thresholds: tuple[float, ...]) -> PositionAggregates:
        """:func:`levgym.envs.kernels.position_aggregates` of the current state, computed once
        per state: the result is kept while the state's position arrays, oracle, liquidation
        threshold and debt price are the same objects (the engine never writes into an array
        it has returned, so the same objects hold the same values)."""
        s = self.state
        assert s is not None
        arrays = (
            s.collateral_asset,
            s.debt_usd,
            s.oracle_usd,
            s.liquidation_threshold,
            s.debt_price_usd,
        )
        key = (tuple(thresholds), *arrays)
        cached = self._agg_key
        if (
            self._agg is None
            or cached[0] != key[0]
            or any(a is not b for a, b in zip(cached[1:], key[1:], strict=True))
        ):
            self._agg = position_aggregates(s, tuple(thresholds))
            self._agg_key = key  # holds the arrays, so their ids cannot be reused meanwhile
        return self._agg

    @property
    def at_horizon(self) -> np.ndarray:
        """Envs whose episode has used all its substeps."""
        return self.t >= self.horizon_substeps

    def scenario_of(self, env: int) -> str:
        return self.scenarios[int(self.scenario_index[env])]


def _concat_states(states: list[State]) -> State:
    """One state whose env ``j`` is env 0 of ``states[j]`` (numpy)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(State):
        first = getattr(states[0], f.name)
        if isinstance(first, int | float):
            out[f.name] = first
        elif len(states) == 1:
            out[f.name] = first
        else:
            out[f.name] = np.concatenate([getattr(s, f.name) for s in states], axis=0)
    return State(**out)


def _select_rows(state: State, rows: np.ndarray) -> State:
    """``state`` with env ``e`` taken from env ``rows[e]`` (numpy)."""
    return State(
        **{
            f.name: v if isinstance(v, int | float) else v[rows]
            for f in dataclasses.fields(state)
            for v in [getattr(state, f.name)]
        }
    )


def _convert_state(state: State, convert: Any) -> State:
    return State(
        **{
            f.name: v if isinstance(v, int | float) else convert(v)
            for f in dataclasses.fields(state)
            for v in [getattr(state, f.name)]
        }
    )


def _scatter_rows(state: State, rows: State, idx: np.ndarray) -> State:
    """A new state: ``state`` with envs ``idx`` replaced by the envs of ``rows`` (numpy; the
    arrays of ``state`` are copied, never written, since earlier results may still hold them)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(state):
        old = getattr(state, f.name)
        if isinstance(old, int | float):
            out[f.name] = old
            continue
        new = old.copy()
        new[idx] = getattr(rows, f.name)
        out[f.name] = new
    return State(**out)


__all__ = ["BatchedMarket", "SPLITS", "horizon_steps", "resolve_params", "resolve_scenarios"]
