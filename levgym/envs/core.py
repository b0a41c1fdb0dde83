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
from ..engine.params import EngineParams, ProtocolParams, preset
from ..engine.state import State, init_state, reset_envs
from ..scenarios import EVAL_SEED_OFFSET
from ..scenarios import get as get_scenario
from ..scenarios import names as scenario_names
from .features import PriceTracker

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


# SplitMix64 constants: noise is a counter-based hash of (episode key, substep, slot), so each
# env's stream depends only on its own seed, however the envs are batched.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(v) for v in (30, 27, 31, 11))


class BatchedMarket:
    """E lending markets on the engine, each running its own episode of a scenario mixture.

    - Drivers: a bank ``[S, E]`` per driver field, where ``S`` is the episode length in
      substeps; an env's column is replaced when it starts an episode, and each substep's
      :class:`DriverRow` gathers ``drivers[t_e, e]`` with the env's own clock ``t_e``.
    - Randomness: env ``e`` draws everything from its own generator (``seed_e``): per episode,
      the scenario, the scenario seed, the book seed and a 64-bit noise key. Borrower noise at
      substep ``t`` of slot ``n`` is SplitMix64 of ``key + (t * N + n + 1) * golden``, computed
      for all envs in one vectorized pass.
    - Autoreset: :meth:`new_episodes` builds fresh one-env states and swaps them in with
      :func:`levgym.engine.state.reset_envs`; the engine's clock ``state.time_h`` is shared.

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
        self.convert = make_converter(backend, dtype, device)
        self._substep = substep_function(backend, device)  # numba: the fused kernel
        self.fdtype = np.dtype(dtype)

        e, s, n = self.num_envs, self.horizon_substeps, self.num_positions
        self.bank: dict[str, np.ndarray] = {
            f: np.zeros((s, e), dtype=bool if f == "oracle_frozen" else self.fdtype)
            for f in DRIVER_FIELDS
        }
        self.t = np.zeros(e, dtype=np.int64)
        self.scenario_index = np.zeros(e, dtype=np.int64)
        self.noise_key = np.zeros(e, dtype=np.uint64)
        self.rngs: list[np.random.Generator] | None = None
        self.seeds: list[int] = []
        self.state: State | None = None
        self.tracker = PriceTracker(e, params.run.substep_h)
        self.engine_seconds = 0.0  # wall time inside levgym.engine.substep (for benchmarks)
        self._envs = np.arange(e)
        self._slot_hash = (np.arange(n, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        self._x = np.empty((e, n), dtype=np.uint64)
        self._y = np.empty((e, n), dtype=np.uint64)
        self._u = np.empty((e, n), dtype=np.float64)

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
            got = drivers.num_substeps
            for f in DRIVER_FIELDS:
                col = getattr(drivers, f)[:, 0]
                if got >= s:
                    self.bank[f][:, env] = col[:s]
                else:
                    self.bank[f][:got, env] = col
                    self.bank[f][got:, env] = col[-1]
            books.append(book)
        gather = np.zeros(self.num_envs, dtype=np.int64)
        gather[idx] = np.arange(idx.size)
        fresh = _concat_states(books, gather)
        converted = {
            f.name: (v if isinstance(v, int | float) else self.convert(v))
            for f in dataclasses.fields(fresh)
            for v in [getattr(fresh, f.name)]
        }
        fresh = State(**converted)
        if self.state is None:
            if not mask.all():
                raise RuntimeError("the first episodes must start in every env at once")
            self.state = fresh
        else:
            self.state = reset_envs(self.state, fresh, self.convert(mask))
        self.t[idx] = 0
        self.tracker.reset(self.state, mask)

    # ------------------------------------------------------------------ stepping
    def noise(self) -> np.ndarray:
        """Uniform ``[E, N]`` borrower noise for each env's current substep (see class doc)."""
        x, y = self._x, self._y
        base = self.noise_key + self.t.astype(np.uint64) * np.uint64(self.num_positions) * _GOLDEN
        np.add(base[:, None], self._slot_hash[None, :], out=x)
        np.right_shift(x, _S30, out=y)
        np.bitwise_xor(x, y, out=x)
        np.multiply(x, _MIX1, out=x)
        np.right_shift(x, _S27, out=y)
        np.bitwise_xor(x, y, out=x)
        np.multiply(x, _MIX2, out=x)
        np.right_shift(x, _S31, out=y)
        np.bitwise_xor(x, y, out=x)
        np.right_shift(x, _S11, out=x)
        np.multiply(x, 1.0 / 2**53, out=self._u, casting="unsafe")
        return self._u

    def driver_row(self) -> DriverRow:
        """Each env's drivers at its own substep ``t_e`` (clamped to the last row)."""
        t = np.minimum(self.t, self.horizon_substeps - 1)
        return DriverRow(**{f: self.convert(self.bank[f][t, self._envs]) for f in DRIVER_FIELDS})

    def substep(self, agent_share_frac: Any | None = None) -> Any:
        """Advance every env by one engine substep; returns the cascade rounds per env."""
        assert self.state is not None
        row = self.driver_row()
        noise = self.convert(self.noise())
        t0 = time.perf_counter()
        self.state, rounds = self._substep(self.state, row, noise, self.params, agent_share_frac)
        self.engine_seconds += time.perf_counter() - t0
        self.t += 1
        self.tracker.update(self.state)
        return rounds

    @property
    def at_horizon(self) -> np.ndarray:
        """Envs whose episode has used all its substeps."""
        return self.t >= self.horizon_substeps

    def scenario_of(self, env: int) -> str:
        return self.scenarios[int(self.scenario_index[env])]


def _concat_states(states: list[State], gather: np.ndarray) -> State:
    """One state whose env ``e`` is env 0 of ``states[gather[e]]`` (numpy)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(State):
        first = getattr(states[0], f.name)
        if isinstance(first, int | float):
            out[f.name] = first
            continue
        stacked = np.concatenate([getattr(s, f.name) for s in states], axis=0)
        out[f.name] = stacked[gather]
    return State(**out)


__all__ = ["BatchedMarket", "SPLITS", "horizon_steps", "resolve_params", "resolve_scenarios"]
