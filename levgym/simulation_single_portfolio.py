"""``simulate`` of a single-asset preset through the asset-axis step: the K = 1 runner
(docs/cross-margin.md, rows 21-22 of "What a single-asset preset uses that the asset-axis step
lacks"; ``levgym simulate --engine portfolio``).

The run is :func:`levgym.simulation.simulate`'s, market for market: the same drawn book (or
``--book-csv`` book), scenario path, borrower noise and warm-up (``run.warmup_h``: a calm burn-in
before a synthetic scenario, a replay's earlier rows), ``run.substeps_per_step`` substeps a step
each reading its driver row. Only the stepping differs: the single engine's start state is mapped
onto a K = 1 market (WETH and USDC; :mod:`levgym.engine.portfolio_single`) and stepped by
:func:`levgym.engine.portfolio_market.substep` (numpy or numba); after every substep it is
mapped back for the summary, which is therefore ``simulate``'s, to 1e-12. Settings the
asset-axis step cannot represent yet (arrivals, exits: rows 10-11) are refused in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .engine import portfolio_market as PM
from .engine import portfolio_single as PS
from .engine.drivers import Drivers
from .engine.noise import splitmix_noise
from .engine.params import EngineParams
from .engine.portfolio import Reserves
from .engine.state import State
from .market import episode_drivers, run_markets
from .simulation import (
    WARMUP_SEED_OFFSET,
    RunRecord,
    SimulationResult,
    Simulator,
    _book_state,
    calm_bridge,
    restart_counters,
)

Noise = Callable[[int], np.ndarray]


def check_engine_options(backend: str, dtype: str, device: str | None) -> None:
    """One line when the asset-axis step cannot run with these options (it runs numpy and
    numba arrays in float64)."""
    if backend not in PM.BACKENDS or dtype != "float64" or device is not None:
        raise ValueError(
            f"--backend {backend} --dtype {dtype} is not supported by the asset-axis step; "
            f"allowed --backend {' or '.join(PM.BACKENDS)} with --dtype float64"
        )


def _noise_of(keys: np.ndarray, num_positions: int) -> Noise:
    """The borrower noise of substep ``t`` of markets whose noise keys are ``keys`` (what the
    market runner gives its engine: :mod:`levgym.engine.noise`)."""
    e = keys.shape[0]

    def at(t: int) -> np.ndarray:
        return splitmix_noise(keys, np.full(e, t, dtype=np.int64), np.empty((e, num_positions)))

    return at


def _start(
    drivers: Drivers | None, params: EngineParams, num_positions: int, seed: int, steps: int,
    warm: int, scenario: str, scenario_knobs: dict[str, Any] | None, num_envs: int | None,
    book: Any,
) -> tuple[State, Drivers, Noise, Drivers | None, Noise | None]:  # fmt: skip
    """What :func:`levgym.simulation.simulate` starts from: (the drawn state, the run's drivers
    and noise, the warm-up's drivers and noise, None without a warm-up)."""
    n = num_positions
    sub = steps * params.run.substeps_per_step
    if drivers is None:
        if num_envs is None:
            raise ValueError("simulate needs drivers or num_envs with a scenario")
        runner = run_markets(
            params, num_envs, n, sub, seed, scenario=scenario, scenario_knobs=scenario_knobs,
        )  # fmt: skip
        start = runner.state
        if book is not None:
            start = _book_state(params, book, start, n, "numpy", "float64", None)
        run_rows, run_noise = episode_drivers(runner), _noise_of(runner.noise_key.copy(), n)
        if warm == 0:
            return start, run_rows, run_noise, None, None
        bridge = calm_bridge(start.fundamental_usd, params, params.run.warmup_h, seed)
        warm_sim = Simulator(params, bridge, n, seed + WARMUP_SEED_OFFSET, state=start)
        return start, run_rows, run_noise, bridge, warm_sim.noise_at
    if drivers.num_substeps < warm + sub:
        raise ValueError(
            f"the scenario provides {drivers.num_substeps} substeps; steps={steps} needs {sub}"
            + (f" after a warm-up of {warm}" if warm else "")
        )
    first = Simulator(params, drivers, n, seed)  # the book and the noise keys of every env
    start = first.state
    if book is not None:
        start = _book_state(params, book, start, n, "numpy", "float64", None)
    if warm == 0:
        return start, drivers, first.noise_at, None, None
    head = drivers.slice_substeps(slice(0, warm + 1))
    warm_sim = Simulator(params, head, n, seed + WARMUP_SEED_OFFSET, state=start)
    rest = drivers.slice_substeps(slice(warm, drivers.num_substeps))
    return start, rest, first.noise_at, head, warm_sim.noise_at


class K1Market:
    """A single-asset market as the asset-axis step's K = 1 market, stepped on driver rows."""

    def __init__(self, params: EngineParams, backend: str = "numpy") -> None:
        PS.check_supported(params)
        self.params = params
        self.backend = backend
        self.reserves: Reserves = PS.single_reserves(params)
        self.market = PS.single_market_params(params, statistics=True)

    def to_portfolio(self, s: State) -> PM.PortfolioState:
        return PS.from_single_state(s, self.reserves, self.market)

    def substep(
        self, ps: PM.PortfolioState, drivers: Drivers, t: int, noise: Noise
    ) -> tuple[PM.PortfolioState, np.ndarray]:
        """Substep ``t`` of ``drivers`` with its borrower noise."""
        kw = PS.substep_drivers(drivers.row(t, np.asarray), self.reserves, self.market)
        f = kw.pop("fundamental_usd")
        return PM.substep(
            ps, f, self.reserves, self.market, backend=self.backend, noise_u=noise(t), **kw
        )

    def to_single_at(self, ps: PM.PortfolioState, like: State, drivers: Drivers, t: int) -> State:
        """``ps`` mapped back onto ``like`` (:func:`levgym.engine.portfolio_single.to_single_state`)
        after substep ``t`` of ``drivers`` (its gas price in the state)."""
        return PS.to_single_state(ps, like, self.reserves, drivers.gas_gwei[t])

    def warm_up(self, start: State, drivers: Drivers, noise: Noise) -> State:
        """:func:`levgym.simulation.warm_up` on the asset-axis step: ``start`` after every row of
        ``drivers``, restarted as the start of a run (:func:`levgym.simulation.restart_counters`)."""
        ps = self.to_portfolio(start)
        for t in range(drivers.num_substeps):
            ps, _ = self.substep(ps, drivers, t, noise)
        lived = self.to_single_at(ps, start, drivers, drivers.num_substeps - 1)
        return restart_counters(lived, drivers.num_substeps * self.params.run.substep_h)


def simulate_asset_axis(
    drivers: Drivers | None,
    params: EngineParams,
    num_positions: int,
    seed: int,
    steps: int,
    scenario: str = "custom",
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
    record: bool = True,
    scenario_knobs: dict[str, Any] | None = None,
    num_envs: int | None = None,
    book: Any = None,
) -> SimulationResult:
    """:func:`levgym.simulation.simulate` (same arguments, same result to 1e-12) with every
    substep, the warm-up's included, made by the asset-axis step on the K = 1 market of
    ``params`` (module doc). ``backend``: ``numpy`` or ``numba`` (the asset-axis kernel)."""
    check_engine_options(backend, dtype, device)
    if steps < 1:
        raise ValueError(f"steps={steps} is out of range; allowed >= 1")
    k1 = K1Market(params, backend)
    sub = steps * params.run.substeps_per_step
    warm = int(round(params.run.warmup_h / params.run.substep_h))
    start, rows, noise, warm_rows, warm_noise = _start(
        drivers, params, num_positions, seed, steps, warm, scenario, scenario_knobs, num_envs, book
    )
    if warm_rows is not None and warm_noise is not None:
        start = k1.warm_up(start, warm_rows, warm_noise)
    ps = k1.to_portfolio(start)
    run = RunRecord(start, record)
    s = start
    for t in range(sub):
        ps, rounds = k1.substep(ps, rows, t, noise)
        s = k1.to_single_at(ps, start, rows, t)
        run.update(s, rounds.astype(np.float64))
    return run.result(s, params, scenario, seed, num_positions, steps, backend, dtype)


__all__ = ["K1Market", "check_engine_options", "simulate_asset_axis"]
