"""Batched Monte Carlo runs of the engine: one path per env, in batches, with common random numbers.

Randomness: path batch ``b`` of a run with seed ``s`` uses the integer seed
``batch_seed(s, b)`` for both its scenario drivers and its book and borrower noise
(``levgym.simulation.Simulator``). Two runs with the same seed, path count and batch size
therefore see the same market paths, the same books and the same borrower uniforms, whatever
their parameters: the common random numbers behind sensitivities and sweeps. Results depend on
the batch size (paths are drawn batch by batch), which is recorded with every run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..engine.backend import check_backend, to_numpy
from ..engine.drivers import Drivers
from ..engine.params import EngineParams
from ..engine.state import set_protocol_params
from ..simulation import Simulator, UsdFlows, calm_bridge, per_env_summary, warm_up
from .heatmap import HeatmapAccumulator, HeatmapRecord

BAD_DEBT_DEFINITIONS = ("written_off", "written_off_plus_underwater")

DriverFactory = Callable[[int, int, EngineParams, int], Drivers]
"""``(num_envs, num_substeps, params, seed) -> Drivers`` for one batch of paths."""


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...


@dataclass(frozen=True)
class MonteCarloConfig:
    """How many paths, how long, in which batches, on which backend."""

    paths: int = 2000
    """Number of simulated paths (one env of the batched engine each)."""
    positions: int = 128
    """Position slots per path."""
    horizon_h: float = 24.0
    """Length of each path in hours (a whole number of substeps)."""
    seed: int = 0
    """Root seed; batch seeds are derived from it (see the module docstring)."""
    batch_size: int = 500
    """Paths simulated at once."""
    backend: str = "numpy"
    dtype: str = "float64"
    device: str | None = None
    bad_debt: str = "written_off"
    """``written_off`` (default): bad debt written off by the protocol during the horizon.
    ``written_off_plus_underwater``: plus the shortfall of positions still open at the horizon
    with debt above their collateral value at the oracle."""
    book: Any = None
    """Positions every path holds instead of a drawn book (a
    :class:`levgym.scenarios.book_csv.BookTable`, ``stress --book-csv``); ``positions`` must be
    at least its rows."""

    def __post_init__(self) -> None:
        if isinstance(self.paths, bool) or not isinstance(self.paths, int) or self.paths < 1:
            raise ValueError(f"paths={self.paths!r} is out of range; allowed an integer >= 1")
        if self.positions < 1:
            raise ValueError(f"positions={self.positions} is out of range; allowed >= 1")
        if not (self.horizon_h > 0 and math.isfinite(self.horizon_h)):
            raise ValueError(f"horizon_hours={self.horizon_h} is out of range; allowed > 0")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} is out of range; allowed >= 1")
        if self.bad_debt not in BAD_DEBT_DEFINITIONS:
            raise ValueError(
                f"bad_debt={self.bad_debt!r} is unknown; allowed {', '.join(BAD_DEBT_DEFINITIONS)}"
            )
        check_backend(self.backend, self.dtype)

    def num_substeps(self, params: EngineParams) -> int:
        """Substeps in the horizon; the horizon must be a whole number of substeps."""
        dt = params.run.substep_h
        s = self.horizon_h / dt
        if abs(s - round(s)) > 1e-6 or round(s) < 1:
            raise ValueError(
                f"horizon_hours={self.horizon_h:g} is not a whole number of substeps of "
                f"{dt:g} h; allowed multiples of run.substep_h"
            )
        return int(round(s))

    @property
    def batches(self) -> list[int]:
        """Sizes of the batches, in order."""
        full, rest = divmod(self.paths, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])


def batch_seed(seed: int, batch: int) -> int:
    """The integer seed of batch ``batch`` of a run with root seed ``seed``."""
    return int(
        np.random.SeedSequence([int(seed), int(batch)]).generate_state(1, dtype=np.uint32)[0]
    )


@dataclass
class PathResults:
    """Per-path outcomes (numpy ``[P]`` arrays) and, when asked for, the liquidation heatmap."""

    per_path: dict[str, np.ndarray]
    config: MonteCarloConfig
    heatmap: Any | None = None

    @property
    def num_paths(self) -> int:
        return int(next(iter(self.per_path.values())).shape[0])

    @property
    def bad_debt_usd(self) -> np.ndarray:
        """Bad debt per path under the configured definition (see ``MonteCarloConfig.bad_debt``), USD."""
        return self.per_path["bad_debt_measured_usd"]


# Columns of paths.csv; units and meanings in levgym.results. Debt-side amounts are valued in USD
# at the debt price of the substep in which they moved (stocks at the price of their time).
PATH_COLUMNS = (
    "path",
    "batch",
    "batch_seed",
    "bad_debt_measured_usd",
    "written_off_bad_debt_usd",
    "written_off_bad_debt_debt_asset",
    "underwater_shortfall_usd",
    "liquidated_usd",
    "liquidations",
    "initial_positions",
    "positions_liquidated",
    "liquidated_position_frac",
    "amplification",
    "fundamental_min_over_start",
    "pool_min_over_start",
    "fundamental_end_over_start",
    "debt_price_end_usd",
    "revenue_usd",
    "initial_debt_value_usd",
    "final_debt_value_usd",
    "borrowed_value_usd",
    "lender_loss_usd",
    "keeper_profit_usd",
    "cascade_rounds_max",
    "tvl_usd",
)


def _path_rows(
    sim: Simulator, flows: UsdFlows, active0: np.ndarray, bad_debt: str
) -> dict[str, np.ndarray]:
    s = sim.state
    env = per_env_summary(s, flows)
    ever = to_numpy(s.ever_liquidated)
    initial = active0.sum(axis=1).astype(np.float64)
    liq_initial = (ever & active0).sum(axis=1).astype(np.float64)
    written = env["bad_debt_value_usd"]
    under = env["underwater_shortfall_usd"]
    total = written + under if bad_debt == "written_off_plus_underwater" else written
    f_end = to_numpy(s.fundamental_usd) / to_numpy(s.fundamental_start_usd)
    return {
        "bad_debt_measured_usd": total,
        "written_off_bad_debt_usd": written,
        "written_off_bad_debt_debt_asset": env["bad_debt_usd"],
        "underwater_shortfall_usd": under,
        "liquidated_usd": env["repaid_by_liquidators_value_usd"],
        "liquidations": env["liquidations"],
        "initial_positions": initial,
        "positions_liquidated": liq_initial,
        "liquidated_position_frac": liq_initial / np.maximum(initial, 1.0),
        "amplification": env["amplification"],
        "fundamental_min_over_start": env["fundamental_min_over_start"],
        "pool_min_over_start": env["pool_min_over_start"],
        "fundamental_end_over_start": f_end,
        "debt_price_end_usd": env["debt_price_end_usd"],
        "revenue_usd": env["revenue_usd"],
        "initial_debt_value_usd": env["initial_debt_value_usd"],
        "final_debt_value_usd": env["final_debt_value_usd"],
        "borrowed_value_usd": env["borrowed_value_usd"],
        "lender_loss_usd": env["lender_loss_usd"],
        "keeper_profit_usd": env["keeper_profit_usd"],
        "cascade_rounds_max": env["cascade_rounds_max"],
        "tvl_usd": env["tvl_usd"],
    }


def scale_price(drivers: Drivers, factor: float) -> Drivers:
    """The same drivers with the fundamental price path multiplied by ``factor`` (a spot move)."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"price factor={factor!r} is out of range; allowed > 0")
    return drivers.replace(fundamental_usd=drivers.fundamental_usd * factor)


@dataclass(frozen=True)
class RunSpec:
    """One Monte Carlo run of a config: its parameters and how they are applied (see
    :func:`run_paths` for the meaning of each field)."""

    params: EngineParams
    book_params: EngineParams | None = None
    price_factor: float = 1.0
    heatmap: bool = False


@dataclass
class BatchResult:
    """The outcome of one batch: per-path rows (``[size]`` arrays, keys of :data:`PATH_COLUMNS`)
    and, when asked for, the heatmap records at each record time."""

    batch: int
    rows: dict[str, np.ndarray]
    heatmap: list[HeatmapRecord] | None = None


def run_batch(
    spec: RunSpec, driver_factory: DriverFactory, config: MonteCarloConfig, batch: int
) -> BatchResult:
    """Batch ``batch`` of ``config`` under ``spec``: a pure function of its arguments (its seeds
    are ``batch_seed(config.seed, batch)``), so any process computes the same numbers."""
    sizes = config.batches
    if not 0 <= batch < len(sizes):
        raise ValueError(f"batch={batch} is out of range; allowed 0..{len(sizes) - 1}")
    params = spec.params
    book_params = params if spec.book_params is None else spec.book_params
    num_substeps = config.num_substeps(params)
    steps_every = params.run.substeps_per_step
    size = sizes[batch]
    start = batch * config.batch_size
    seed_b = batch_seed(config.seed, batch)
    drivers = driver_factory(size, num_substeps, params, seed_b)
    if drivers.num_envs != size or drivers.num_substeps < num_substeps:
        raise ValueError(
            f"the drivers have shape [{drivers.num_substeps}, {drivers.num_envs}]; "
            f"allowed at least [{num_substeps}, {size}]"
        )
    sim = Simulator(
        book_params,
        drivers,
        config.positions,
        seed_b,
        config.backend,
        config.dtype,
        config.device,
    )
    if spec.book_params is not None and spec.book_params is not params:
        sim.params = params
        sim.state = set_protocol_params(sim.state, params.protocol)
    if config.book is not None:
        from ..scenarios.book_csv import book_state

        sim.state = book_state(
            params, config.book, size, config.positions,
            to_numpy(sim.state.fundamental_usd), to_numpy(sim.state.debt_price_usd),
            config.backend, config.dtype, config.device,
        )  # fmt: skip
    if params.run.warmup_h > 0:
        # a calm burn-in back to the start price (levgym.simulation.calm_bridge)
        bridge = calm_bridge(
            to_numpy(sim.state.fundamental_usd), params, params.run.warmup_h, seed_b
        )
        sim.state = warm_up(
            params, bridge, sim.state, seed_b, config.backend, config.dtype, config.device
        )
    if spec.price_factor != 1.0:
        sim.drivers = scale_price(drivers, spec.price_factor)
    active0 = to_numpy(sim.state.active).copy()
    flows = UsdFlows(sim.state)
    acc = HeatmapAccumulator() if spec.heatmap else None
    records: list[HeatmapRecord] | None = [] if acc is not None else None
    if acc is not None and records is not None:
        records.append(acc.snapshot(0.0, sim.state))
    for t in range(num_substeps):
        sim.substep()
        flows.update(sim.state)
        if acc is not None and records is not None:
            if (t + 1) % steps_every == 0 or t + 1 == num_substeps:
                records.append(acc.snapshot(sim.state.time_h, sim.state))
    rows = _path_rows(sim, flows, active0, config.bad_debt)
    rows["path"] = np.arange(start, start + size, dtype=np.float64)
    rows["batch"] = np.full(size, float(batch))
    rows["batch_seed"] = np.full(size, float(seed_b))
    return BatchResult(batch, rows, records)


@dataclass(frozen=True)
class _Shared:
    """What every batch task of one call of :func:`run_many` needs (sent once per worker)."""

    specs: tuple[RunSpec, ...]
    driver_factory: DriverFactory
    config: MonteCarloConfig


def _batch_task(shared: _Shared, item: tuple[int, int]) -> BatchResult:
    run, batch = item
    return run_batch(shared.specs[run], shared.driver_factory, shared.config, batch)


def assemble(config: MonteCarloConfig, batches: list[BatchResult], heatmap: bool) -> PathResults:
    """One run's :class:`PathResults` from its batches, in batch order (which must be complete:
    batch ``b`` at position ``b``)."""
    if [b.batch for b in batches] != list(range(len(config.batches))):
        raise ValueError(
            f"batches {[b.batch for b in batches]} are incomplete or out of order; "
            f"allowed 0..{len(config.batches) - 1} in order"
        )
    per_path = {k: np.concatenate([b.rows[k] for b in batches]) for k in PATH_COLUMNS}
    acc = HeatmapAccumulator() if heatmap else None
    if acc is not None:
        for b, size in zip(batches, config.batches, strict=True):
            for point, rec in enumerate(b.heatmap or []):
                acc.add(point, rec)
            acc.add_paths(size)
    return PathResults(per_path, config, acc.result() if acc is not None else None)


def run_many(
    specs: list[RunSpec],
    driver_factory: DriverFactory,
    config: MonteCarloConfig,
    *,
    executor: Any = None,
    progress: Progress | None = None,
) -> list[PathResults]:
    """Every batch of every run in ``specs`` as one list of independent tasks (on ``executor``, a
    :class:`levgym.distributed.Executor`; default: in this process, in order), reassembled by
    run and batch index. Equal, bit for bit, to calling :func:`run_paths` on each spec."""
    from ..distributed import SerialExecutor

    for spec in specs:
        config.num_substeps(spec.params)  # a bad horizon fails before any task runs
    items = [(r, b) for r in range(len(specs)) for b in range(len(config.batches))]
    shared = _Shared(tuple(specs), driver_factory, config)
    results = (executor or SerialExecutor()).map(_batch_task, shared, items, progress)
    n = len(config.batches)
    return [
        assemble(config, results[r * n : (r + 1) * n], spec.heatmap) for r, spec in enumerate(specs)
    ]


def run_paths(
    params: EngineParams,
    driver_factory: DriverFactory,
    config: MonteCarloConfig,
    *,
    book_params: EngineParams | None = None,
    price_factor: float = 1.0,
    heatmap: bool = False,
    progress: Progress | None = None,
    executor: Any = None,
) -> PathResults:
    """Simulate ``config.paths`` paths of ``params`` in batches and collect per-path outcomes.

    - ``book_params``: parameters the initial book is drawn with (default ``params``). When they
      differ, the book is drawn with ``book_params`` and ``params`` then governs the run: its
      protocol parameters are written into the state with
      ``levgym.engine.state.set_protocol_params`` right after the draw. Sweeps use this to keep
      the same positions (same collateral and debt) at every grid point.
    - ``price_factor``: the book is drawn at the scenario's start price, then the whole
      fundamental path is multiplied by this factor (an instantaneous spot move at the first
      substep, for price sensitivities with common random numbers).
    - ``heatmap``: also accumulate the liquidation-price distribution at the start, at the end of
      each governance step and at the horizon.
    - ``executor``: where the batches run (:func:`run_many`); the result does not depend on it.
    """
    spec = RunSpec(params, book_params, price_factor, heatmap)
    return run_many([spec], driver_factory, config, executor=executor, progress=progress)[0]


def with_protocol(params: EngineParams, **changes: float) -> EngineParams:
    """``params`` with protocol fields changed (validated by ``ProtocolParams``)."""
    return dataclasses.replace(params, protocol=dataclasses.replace(params.protocol, **changes))
