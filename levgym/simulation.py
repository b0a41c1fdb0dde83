"""Run the engine over a scenario: a stepping simulator and the `simulate --json` summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine.backend import namespace, to_numpy
from .engine.borrowers import health_factor, underwater_shortfall
from .engine.drivers import Drivers
from .engine.noise import splitmix_noise
from .engine.orders import Orders
from .engine.params import EngineParams
from .engine.portfolio_single import AssetAxisSteps, check_engine_options
from .engine.schema import DRIVER_SCHEMA
from .engine.state import State
from .market import MarketRunner, episode_drivers, run_markets

SUMMARY_KEYS = (
    "scenario",
    "seed",
    "num_envs",
    "positions",
    "steps",
    "initial_collateral_asset",
    "final_collateral_asset",
    "seized_collateral_asset",
    "added_collateral_asset",
    "withdrawn_collateral_asset",
    "initial_debt_usd",
    "final_debt_usd",
    "borrowed_usd",
    "interest_usd",
    "repaid_by_borrowers_usd",
    "repaid_by_liquidators_usd",
    "bad_debt_usd",
    "liquidations",
    "cascade_rounds_max",
    "fundamental_min_over_start",
    "pool_min_over_start",
    "amplification",
)


class Simulator(MarketRunner):
    """A batch of markets that replays ``drivers`` (``[S, E]``); advance it substep by substep.

    The market runner (:class:`levgym.market.MarketRunner`) in its given-drivers form: env ``i``
    is seeded ``seed + i`` and draws its book and borrower noise as every runner does, so a
    seed means the same book and noise in ``simulate``, ``stress``, the envs and the bench.
    ``state`` replaces the drawn initial state (a hand-built book).
    """

    def __init__(
        self,
        params: EngineParams,
        drivers: Drivers,
        num_positions: int,
        seed: int,
        backend: str = "numpy",
        dtype: str = "float64",
        device: str | None = None,
        state: State | None = None,
    ) -> None:
        super().__init__(
            params, drivers.num_envs, num_positions, drivers.num_substeps, backend=backend,
            dtype=dtype, device=device, drivers=drivers,
        )  # fmt: skip
        self.base_seed = int(seed)
        self.seed([self.base_seed + i for i in range(self.num_envs)])
        self.new_episodes(np.ones(self.num_envs, dtype=bool))
        if state is not None:
            self.state = state

    @property
    def drivers(self) -> Drivers:
        return self.given_drivers

    @drivers.setter
    def drivers(self, drivers: Drivers) -> None:
        """Replay other drivers from now on (same shape); the book and noise stay."""
        if drivers.fundamental_usd.shape != self.given_drivers.fundamental_usd.shape:
            raise ValueError(
                f"drivers of shape {drivers.fundamental_usd.shape}; allowed "
                f"{self.given_drivers.fundamental_usd.shape}"
            )
        self.given_drivers = drivers
        for j, f in enumerate(DRIVER_SCHEMA):
            self.bank[j] = np.asarray(getattr(drivers, f.name), dtype=self.fdtype).T

    @property
    def done(self) -> bool:
        return bool(np.any(self.t >= self.horizon_substeps))

    def noise_at(self, t: int) -> np.ndarray:
        """The borrower noise ``[E, N]`` of substep ``t`` (numpy, a new array)."""
        return splitmix_noise(
            self.noise_key, np.full(self.num_envs, t, dtype=np.int64), np.empty_like(self._u)
        )

    def substep(self, orders: Orders | None = None) -> Any:
        """Advance one substep with the agents' ``orders``; returns the cascade rounds per env."""
        if self.done:
            raise RuntimeError(f"the drivers have {self.horizon_substeps} substeps; all are used")
        return super().substep(orders)


def _book_state(
    params: EngineParams, book: Any, drawn: State, num_positions: int, backend: str, dtype: str,
    device: str | None,
) -> State:  # fmt: skip
    """``book`` in every env, at the prices of the drawn state ``drawn``."""
    from .scenarios.book_csv import book_state

    return book_state(
        params, book, drawn.num_envs, num_positions, to_numpy(drawn.fundamental_usd),
        to_numpy(drawn.debt_price_usd), backend, dtype, device,
    )  # fmt: skip


WARMUP_SEED_OFFSET = 7_919_000
"""The warm-up's borrower noise is seeded ``seed + WARMUP_SEED_OFFSET + i`` (not the run's)."""


def restart_counters(state: State, warmup_h: float) -> State:
    """``state`` (after a warm-up of ``warmup_h`` hours) as the start of a run: counters at zero,
    the start values (collateral, debt, prices) taken now, no position marked liquidated, the
    clock at 0 (the oracle's last update moved back by ``warmup_h``)."""
    from .engine.schema import COUNTER_FIELDS

    xp = namespace(state.collateral_asset)
    changes: dict[str, Any] = {name: getattr(state, name) * 0.0 for name in COUNTER_FIELDS}
    pool = state.pool_price_usd
    changes.update(
        initial_collateral_asset=xp.sum(state.collateral_asset, axis=1),
        initial_debt_usd=xp.sum(state.debt_usd, axis=1),
        fundamental_start_usd=state.fundamental_usd * 1.0,
        fundamental_min_usd=state.fundamental_usd * 1.0,
        pool_start_usd=pool * 1.0,
        pool_min_usd=pool * 1.0,
        ever_liquidated=state.ever_liquidated & False,
        oracle_updated_h=state.oracle_updated_h - state.time_h,
        time_h=0.0,
        substep_index=0,
    )
    return state.replace(**changes)


def warm_up(
    params: EngineParams,
    drivers: Drivers,
    state: State,
    seed: int,
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
    engine: str = "single",
) -> State:
    """``state`` after living through every row of ``drivers`` (the warm-up), restarted as the
    start of a run (:func:`restart_counters`); ``engine`` as in :func:`simulate`."""
    sim = Simulator(
        params, drivers, state.num_positions, seed + WARMUP_SEED_OFFSET,
        *_runner_options(engine, backend, dtype, device), state=state,
    )  # fmt: skip
    step = _stepper(sim, drivers, engine, backend)
    for _ in range(drivers.num_substeps):
        step()
    return restart_counters(sim.state, drivers.num_substeps * params.run.substep_h)


def _runner_options(
    engine: str, backend: str, dtype: str, device: str | None
) -> tuple[str, str, str | None]:
    """The market runner's (backend, dtype, device): ``simulate``'s, or numpy for the
    asset-axis step, which keeps its own arrays and writes the runner's state back as numpy."""
    return (backend, dtype, device) if engine == "single" else ("numpy", "float64", None)


def _stepper(sim: MarketRunner, drivers: Drivers | None, engine: str, backend: str) -> Any:
    """What makes ``sim``'s substeps: its own step, or the asset-axis step on its K = 1 market
    (:class:`levgym.engine.portfolio_single.AssetAxisSteps`, over ``drivers``, its rows)."""
    if engine == "single":
        return sim.substep
    assert drivers is not None
    return AssetAxisSteps(sim, drivers, backend)


def calm_bridge(
    fundamental_usd: np.ndarray,
    params: EngineParams,
    warmup_h: float,
    seed: int | Sequence[int],
) -> Drivers:
    """The burn-in before a synthetic scenario: ``warmup_h`` hours of a log-price Brownian
    bridge at the calm volatility (``levgym.scenarios.calibration.CALIBRATED['calm_vol_annual']``)
    from each env's first price back to it (``warmup_h / substep_h + 1`` rows, the first and the
    last at that price), with the market's normal liquidity and gas.

    ``seed`` an integer: the batch's steps are drawn from ``default_rng([seed, 4242])``; a
    sequence (one per env): env ``i``'s from ``default_rng([seed[i], 4242])``, so that an env's
    path does not depend on the other envs of the batch (:class:`levgym.warm.WarmPool`)."""
    from .scenarios.base import ScenarioContext
    from .scenarios.calibration import CALIBRATED
    from .scenarios.overlays import compose

    f0 = np.asarray(fundamental_usd, dtype=np.float64)
    sub_h = params.run.substep_h
    s = max(1, int(round(warmup_h / sub_h)))
    if isinstance(seed, int | np.integer):
        rng = np.random.default_rng([int(seed), 4242])
        z = rng.standard_normal((s, f0.size))
    else:
        if len(seed) != f0.size:
            raise ValueError(f"got {len(seed)} seeds for {f0.size} envs; allowed one per env")
        gens = [np.random.default_rng([int(k), 4242]) for k in seed]
        z = np.concatenate([g.standard_normal((s, 1)) for g in gens], axis=1)
        rng = gens[0] if gens else np.random.default_rng([0, 4242])
    sd = CALIBRATED["calm_vol_annual"] * np.sqrt(sub_h / (24.0 * 365.0))
    w = np.zeros((s + 1, f0.size))
    w[1:] = np.cumsum(z * sd, axis=0)
    frac = (np.arange(s + 1) / s)[:, None]
    prices = f0[None, :] * np.exp(w - frac * w[-1:])  # rows 0 and s are f0 exactly
    ctx = ScenarioContext(f0.size, s + 1, sub_h, params, rng)
    return compose(ctx, prices)


@dataclass
class SimulationResult:
    """Summary (means over envs), per-env final counters and time series for plots."""

    summary: dict[str, Any]
    per_env: dict[str, np.ndarray]
    series: dict[str, np.ndarray] = field(default_factory=dict)
    hf_before: np.ndarray | None = None
    hf_after: np.ndarray | None = None
    weights_before: np.ndarray | None = None
    weights_after: np.ndarray | None = None
    final_state: State | None = None
    """The batch's state after the last substep."""


def health_factors(state: State) -> tuple[np.ndarray, np.ndarray]:
    """Health factors of active indebted positions and their debt (weights), flattened, numpy."""
    s = state.to_numpy()
    mask = s.active & (s.debt_usd > 0)
    hf = health_factor(s)
    return hf[mask], (s.debt_usd * s.debt_price_usd[:, None])[mask]


# Debt-side flow counters of the state: kept in debt-asset units by the engine (USD only at a debt
# price of 1); :class:`UsdFlows` values them in USD substep by substep.
DEBT_FLOW_COUNTERS = (
    "borrowed_usd",
    "interest_usd",
    "repaid_by_borrowers_usd",
    "repaid_by_liquidators_usd",
    "bad_debt_usd",
    "lender_loss_usd",
    "reserve_income_usd",
)


class UsdFlows:
    """The debt-side flow counters valued in USD at the debt price of the substep in which each
    amount moved (the engine keeps them in debt-asset units). Call :meth:`update` after every
    substep; the sums stay on the state's backend until :meth:`result`."""

    def __init__(self, state: State) -> None:
        self.debt_price_start_usd = to_numpy(state.debt_price_usd).copy()
        # copies: a backend may update the state's arrays in place
        self.prev = {k: getattr(state, k) * 1.0 for k in DEBT_FLOW_COUNTERS}
        self.usd = {k: v * 0.0 for k, v in self.prev.items()}

    def update(self, state: State) -> None:
        dp = state.debt_price_usd
        for k in DEBT_FLOW_COUNTERS:
            cur = getattr(state, k)
            self.usd[k] = self.usd[k] + (cur - self.prev[k]) * dp
            self.prev[k] = cur * 1.0

    def result(self) -> dict[str, np.ndarray]:
        """USD value of each counter of :data:`DEBT_FLOW_COUNTERS` (numpy ``[E]``)."""
        return {k: to_numpy(v).copy() for k, v in self.usd.items()}


def per_env_summary(state: State, flows: UsdFlows) -> dict[str, np.ndarray]:
    """Final values and counters per env (numpy ``[E]``), named and valued as in
    :mod:`levgym.results`: the contract's ``*_usd`` debt-side keys in debt-asset units, their USD
    values beside them as ``*_value_usd``."""
    s = state.to_numpy()
    usd = flows.result()
    dp_end = s.debt_price_usd
    out = {
        "initial_collateral_asset": s.initial_collateral_asset,
        "final_collateral_asset": s.collateral_asset.sum(axis=1),
        "initial_debt_usd": s.initial_debt_usd,
        "final_debt_usd": s.debt_usd.sum(axis=1),
    }
    for name in (
        "seized_collateral_asset",
        "added_collateral_asset",
        "withdrawn_collateral_asset",
        "borrowed_usd",
        "interest_usd",
        "repaid_by_borrowers_usd",
        "repaid_by_liquidators_usd",
        "bad_debt_usd",
        "liquidations",
        "cascade_rounds_max",
        "protocol_fee_asset",
        "protocol_fee_usd",
        "keeper_profit_usd",
        "keeper_sold_asset",
        "keeper_venue_sold_asset",
        "keeper_aggregator_sold_asset",
        "keeper_cex_sold_asset",
        "arrivals",
        "exits",
    ):
        out[name] = getattr(s, name)
    out["debt_price_start_usd"] = flows.debt_price_start_usd
    out["debt_price_end_usd"] = dp_end
    out["initial_debt_value_usd"] = s.initial_debt_usd * flows.debt_price_start_usd
    out["final_debt_value_usd"] = out["final_debt_usd"] * dp_end
    for name in (
        "borrowed",
        "interest",
        "repaid_by_borrowers",
        "repaid_by_liquidators",
        "bad_debt",
    ):
        out[f"{name}_value_usd"] = usd[f"{name}_usd"]
    for name in ("reserve_income", "lender_loss"):
        out[f"{name}_debt_asset"] = getattr(s, f"{name}_usd")
        out[f"{name}_usd"] = usd[f"{name}_usd"]
    fund_dd = 1.0 - s.fundamental_min_usd / s.fundamental_start_usd
    pool_dd = 1.0 - s.pool_min_usd / s.pool_start_usd
    out["fundamental_min_over_start"] = s.fundamental_min_usd / s.fundamental_start_usd
    out["pool_min_over_start"] = s.pool_min_usd / s.pool_start_usd
    out["amplification"] = np.where(fund_dd > 1e-6, pool_dd / np.maximum(fund_dd, 1e-6), 1.0)
    out["positions_liquidated"] = s.ever_liquidated.sum(axis=1).astype(np.float64)
    out["revenue_usd"] = usd["reserve_income_usd"] + s.protocol_fee_usd
    out["underwater_shortfall_usd"] = underwater_shortfall(s) * dp_end
    out["tvl_usd"] = s.initial_collateral_asset * s.fundamental_start_usd
    return out


def simulate(
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
    engine: str = "single",
) -> SimulationResult:
    """Run ``steps`` governance periods (``steps * substeps_per_step`` substeps) of ``drivers``,
    or, with ``drivers=None``, of ``num_envs`` markets of the registered ``scenario`` (with its
    ``scenario_knobs``) drawn as the envs draw them (:mod:`levgym.market`). ``book`` (a
    :class:`levgym.scenarios.book_csv.BookTable`, ``--book-csv``) replaces the drawn book in
    every env.

    Warm-up (``params.run.warmup_h`` > 0): the book lives through that many hours before t = 0.
    With ``drivers``, they are the first rows of ``drivers`` (a replayed CSV's earlier rows: the
    run starts ``warmup_h`` hours after the first row, and ``drivers`` must cover both); with a
    scenario, a calm burn-in (:func:`calm_bridge`) from each env's first price back to it.

    ``engine``: ``single`` (the single engine's step) or ``portfolio``: every substep, the
    warm-up's included, made by the asset-axis step on the preset's K = 1 market (WETH and USDC,
    :mod:`levgym.engine.portfolio_single`; ``backend`` numpy or numba, float64), the same draws
    and the same result to 1e-12 (docs/cross-margin.md, rows 21-22)."""
    sub = steps * params.run.substeps_per_step
    if steps < 1:
        raise ValueError(f"steps={steps} is out of range; allowed >= 1")
    check_engine_options(engine, backend, dtype, device)
    warm = int(round(params.run.warmup_h / params.run.substep_h))
    opts = _runner_options(engine, backend, dtype, device)
    sim: MarketRunner
    if drivers is None:
        if num_envs is None:
            raise ValueError("simulate needs drivers or num_envs with a scenario")
        sim = run_markets(
            params, num_envs, num_positions, sub, seed, scenario=scenario,
            scenario_knobs=scenario_knobs, backend=opts[0], dtype=opts[1], device=opts[2],
        )  # fmt: skip
        if book is not None:
            sim.state = _book_state(params, book, sim.state, num_positions, *opts)
        if warm > 0:
            start = sim.state
            f0 = to_numpy(start.fundamental_usd)
            bridge = calm_bridge(f0, params, params.run.warmup_h, seed)
            sim.state = warm_up(params, bridge, start, seed, backend, dtype, device, engine)
        rows = episode_drivers(sim) if engine != "single" else None
    else:
        if drivers.num_substeps < warm + sub:
            raise ValueError(
                f"the scenario provides {drivers.num_substeps} substeps; steps={steps} needs {sub}"
                + (f" after a warm-up of {warm}" if warm else "")
            )
        state = None
        if book is not None:
            probe = Simulator(params, drivers, num_positions, seed, *opts)
            state = _book_state(params, book, probe.state, num_positions, *opts)
        if warm > 0:
            first = Simulator(params, drivers, num_positions, seed, *opts, state)
            # rows 0 .. warm: the run's t = 0 is row `warm` (its first substep stays there)
            head = drivers.slice_substeps(slice(0, warm + 1))
            state = warm_up(params, head, first.state, seed, backend, dtype, device, engine)
            drivers = drivers.slice_substeps(slice(warm, drivers.num_substeps))
        sim = Simulator(params, drivers, num_positions, seed, *opts, state)
        rows = drivers
    run = RunRecord(sim.state, record)
    step = _stepper(sim, rows, engine, backend)
    for _ in range(sub):
        rounds = step()
        run.update(sim.state, rounds)
    return run.result(sim.state, params, scenario, seed, num_positions, steps, backend, dtype)


SERIES_KEYS = (
    "fundamental_usd",
    "pool_usd",
    "oracle_usd",
    "liquidations",
    "bad_debt_value_usd",
    "rounds",
)
"""The time series of a recorded run (:attr:`SimulationResult.series`, besides ``time_h``)."""


class RunRecord:
    """What a run of ``simulate`` keeps as it goes, from its start state: the USD flows
    (:class:`UsdFlows`), the health factors at the start, and with ``record`` the time series
    (:data:`SERIES_KEYS`). Call :meth:`update` after every substep, :meth:`result` at the end."""

    def __init__(self, start: State, record: bool) -> None:
        self.flows = UsdFlows(start)
        self.hf_before, self.w_before = health_factors(start)
        self.record = record
        self.series: dict[str, list[np.ndarray]] = {k: [] for k in SERIES_KEYS}

    def update(self, s: State, rounds: Any) -> None:
        self.flows.update(s)
        if self.record:
            series = self.series
            series["fundamental_usd"].append(to_numpy(s.fundamental_usd))
            series["pool_usd"].append(to_numpy(s.pool_price_usd))
            series["oracle_usd"].append(to_numpy(s.oracle_usd))
            series["liquidations"].append(to_numpy(s.liquidations))
            series["bad_debt_value_usd"].append(to_numpy(self.flows.usd["bad_debt_usd"]))
            series["rounds"].append(to_numpy(rounds))

    def result(
        self, final: State, params: EngineParams, scenario: str, seed: int, num_positions: int,
        steps: int, backend: str, dtype: str,
    ) -> SimulationResult:  # fmt: skip
        """The run's :class:`SimulationResult` from its final state."""
        hf_after, w_after = health_factors(final)
        per_env = per_env_summary(final, self.flows)
        num_envs = final.num_envs
        summary: dict[str, Any] = {
            "scenario": scenario,
            "seed": int(seed),
            "num_envs": num_envs,
            "positions": num_positions,
            "steps": steps,
            "backend": backend,
            "dtype": dtype,
        }
        for key, values in per_env.items():
            summary[key] = float(np.mean(values))
        summary["cascade_rounds_max"] = float(np.max(per_env["cascade_rounds_max"]))
        xs = {k: np.stack(v) if v else np.zeros((0, num_envs)) for k, v in self.series.items()}
        if self.record:
            sub = len(self.series["rounds"])
            xs["time_h"] = (np.arange(sub) + 1) * params.run.substep_h
        return SimulationResult(
            summary, per_env, xs, self.hf_before, hf_after, self.w_before, w_after, final
        )


__all__ = [
    "SUMMARY_KEYS",
    "SERIES_KEYS",
    "DEBT_FLOW_COUNTERS",
    "RunRecord",
    "Simulator",
    "UsdFlows",
    "SimulationResult",
    "simulate",
    "per_env_summary",
    "namespace",
]
