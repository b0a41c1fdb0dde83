"""The cross-margin row of `levgym bench`: position-updates per second of the multi-asset market
substep (:func:`levgym.engine.portfolio_market.substep`) with K = 4 collateral and J = 2 debt
assets, beside the single-asset engine's figure in the same run, and the memory of a position
slot in each engine's state.

The configuration: the reserves WETH, wstETH, WBTC, USDC and USDT of
:func:`levgym.engine.aave_v3_ethereum.aave_v3_ethereum_reserves` (5 on the asset axis). Every
slot supplies the four collateral assets WETH, wstETH, WBTC and USDC (Dirichlet(1) shares of a
log-normal USD size, median $50,000) and owes the two debt assets USDC and USDT (a uniform
split), at a health factor drawn as the single-asset book draws it (``hf_floor +
lognormal(hf_median_excess, hf_sigma)`` of ``EngineParams().borrowers``) at the start oracle (no
E-mode). The path is the single-asset workload's (:data:`levgym.bench.engine.SHOCK_KNOBS`: the
``shock`` scenario falling 40 % from the first hour) as a ratio to its start, applied to the
volatile assets (WETH, wstETH, WBTC); the stablecoins stay at 1; substeps of
``EngineParams().run.substep_h`` (10 minutes). Work is counted as the single-asset
engine counts it (:func:`levgym.bench.engine._work`): per substep, each env's positions once,
plus once per cascade round in which that env liquidated.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import scenarios
from ..engine import portfolio_market as PM
from ..engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from ..engine.params import EngineParams
from ..engine.portfolio import Reserves, account_data
from .engine import SHOCK_KNOBS

SYMBOLS = ("WETH", "wstETH", "WBTC", "USDC", "USDT")
"""The bench market's reserves (the asset axis, K = 5 entries)."""
COLLATERAL = ("WETH", "wstETH", "WBTC", "USDC")
"""What every slot supplies (K = 4 collateral assets)."""
DEBT = ("USDC", "USDT")
"""What every slot owes (J = 2 debt assets)."""
VOLATILE = ("WETH", "wstETH", "WBTC")
START_USD = {"WETH": 3000.0, "stETH": 3000.0, "WBTC": 90_000.0, "USDC": 1.0, "USDT": 1.0}
"""Fundamental prices at the start (wstETH: stETH times the exchange ratio)."""


def bench_reserves() -> Reserves:
    return aave_v3_ethereum_reserves(SYMBOLS)


def make_portfolio_workload(
    num_envs: int, num_positions: int, substeps: int, seed: int = 0
) -> tuple[Reserves, PM.PortfolioMarketParams, PM.PortfolioState, np.ndarray]:  # fmt: skip
    """(reserves, params, start state, fundamentals ``[substeps + 1, E, K]``) of the module's
    configuration; row 0 is the start."""
    res = bench_reserves()
    substep_h = EngineParams().run.substep_h
    params = PM.PortfolioMarketParams(substep_h=substep_h)
    e, n, k = num_envs, num_positions, res.k
    ratio = PM.initial_exchange_ratio(res, e)
    start = np.array(
        [START_USD[PM.LST_BASE.get(s, s)] for s in res.symbols], dtype=np.float64
    ) * ratio[0]  # fmt: skip
    # the single-asset workload's shock path (levgym.bench.engine.SHOCK_KNOBS), as a ratio to
    # its start: row 0 is the start, substep t reads the shock's row t - 1 (as run_substeps does)
    shock = scenarios.get("shock").drivers(e, max(substeps, 1), EngineParams(), seed, dict(SHOCK_KNOBS))  # fmt: skip
    path = np.asarray(shock.fundamental_usd[:substeps, 0]) / float(shock.fundamental_usd[0, 0])
    fall = np.concatenate([[1.0], path])
    volatile = np.array([s in VOLATILE for s in res.symbols])
    f = start * np.where(volatile, fall[:, None], 1.0)  # [T, K]
    f = np.broadcast_to(f[:, None, :], (substeps + 1, e, k)).copy()
    empty = np.zeros((e, 1, k))
    oracle = PM.init_state(res, params, empty, empty, 0, f[0]).oracle_usd  # [E, K]
    rng = np.random.default_rng([seed, 15, 4, 2])
    b = EngineParams().borrowers
    coll_cols = [res.index(s) for s in COLLATERAL]
    debt_cols = [res.index(s) for s in DEBT]
    size_usd = 50_000.0 * np.exp(1.5 * rng.standard_normal((e, n)))
    shares = rng.dirichlet(np.ones(len(coll_cols)), size=(e, n))
    supply = np.zeros((e, n, k))
    supply[..., coll_cols] = size_usd[..., None] * shares / oracle[:, None, coll_cols]
    acct = account_data(supply, np.zeros_like(supply), oracle[:, None, :], res)
    hf = b.hf_floor + np.exp(np.log(b.hf_median_excess) + b.hf_sigma * rng.standard_normal((e, n)))
    debt_usd = acct.threshold_usd / hf
    split = rng.random((e, n))
    debt = np.zeros((e, n, k))
    debt[..., debt_cols[0]] = debt_usd * split / oracle[:, None, debt_cols[0]]
    debt[..., debt_cols[1]] = debt_usd * (1.0 - split) / oracle[:, None, debt_cols[1]]
    state = PM.init_state(res, params, supply, debt, np.zeros((e, n), dtype=np.int64), f[0])
    return res, params, state, f


def position_bytes_per_slot(arrays: dict[str, Any], num_envs: int, num_positions: int) -> dict:
    """Bytes of a state's arrays per position slot, from the arrays themselves: ``position``
    counts the arrays with one entry (or a row) per slot (leading shape ``[E, N]``), ``total``
    every array of the state (per-env ones spread over the slots)."""
    slots = num_envs * num_positions
    per_slot = total = 0
    for v in arrays.values():
        a = np.asarray(v)
        total += a.nbytes
        if a.ndim >= 2 and a.shape[:2] == (num_envs, num_positions):
            per_slot += a.nbytes
    return {"position": per_slot / slots, "total": total / slots}


def portfolio_arrays(state: PM.PortfolioState) -> dict[str, np.ndarray]:
    return {k: v for k, v in PM.state_to_dict(state).items() if isinstance(v, np.ndarray)}


def portfolio_rate(
    num_envs: int, num_positions: int, substeps: int, backend: str = "numba", repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """The cross-margin row: ``substeps`` substeps of the workload after one untimed warm-up
    substep, best of ``repeats`` runs; position-updates per second as the single-asset engine
    counts them, cascade rounds and calls, and the memory per slot."""
    res, params, state0, f = make_portfolio_workload(num_envs, num_positions, substeps, seed)
    PM.substep(state0, f[1], res, params, backend=backend)  # warm-up (compiles)
    best = math.inf
    runs = []
    for _ in range(max(repeats, 1)):
        state = state0
        rounds = []
        t0 = time.perf_counter()
        for t in range(1, substeps + 1):
            state, r = PM.substep(state, f[t], res, params, backend=backend)
            rounds.append(r)
        dt = time.perf_counter() - t0
        runs.append(dt)
        best = min(best, dt)
    r_all = np.stack(rounds)
    updates = float(num_positions * np.sum(1.0 + r_all))
    mem = position_bytes_per_slot(portfolio_arrays(state0), num_envs, num_positions)
    return {
        "backend": backend,
        "envs": num_envs,
        "positions": num_positions,
        "reserves": list(res.symbols),
        "collateral_assets": list(COLLATERAL),
        "debt_assets": list(DEBT),
        "substeps": substeps,
        "seconds": best,
        "runs_seconds": runs,
        "ms_per_substep": 1e3 * best / substeps,
        "position_updates": updates,
        "position_updates_per_s": updates / best,
        "cascade_rounds_per_env_substep": float(r_all.sum()) / (num_envs * substeps),
        "liquidations": int(state.liquidations.sum()),
        "bytes_per_slot": mem["position"],
        "state_bytes_per_slot": mem["total"],
        "workload": f"K={len(COLLATERAL)} collateral ({', '.join(COLLATERAL)}), J={len(DEBT)} "
        f"debt ({', '.join(DEBT)}); volatile assets on the single-asset shock path",
    }


def single_asset_bytes_per_slot(num_envs: int, num_positions: int) -> dict[str, float]:
    """:func:`position_bytes_per_slot` of the single-asset engine's state (the bench's book)."""
    from .engine import make_workload

    state = make_workload(num_envs, num_positions, 1).state0
    return position_bytes_per_slot(state.arrays(), num_envs, num_positions)


TARGET_RATIO = 1.0 / 3.0
"""The issue's target: the cross-margin rate over the single-asset rate, same run and size."""


def single_asset_rate(
    backend: str, num_envs: int, num_positions: int, substeps: int, repeats: int = 3
) -> dict[str, Any]:
    """The single-asset engine's row (the throughput grid's measurement,
    :func:`levgym.bench.engine.run_substeps` on :func:`~levgym.bench.engine.make_workload`)."""
    from .engine import available_backends, make_workload, run_substeps

    spec = available_backends([backend])[0]
    work = make_workload(num_envs, num_positions, substeps, seed=0)
    seconds, updates, rounds, final = run_substeps(spec, work, substeps, repeats)
    mem = single_asset_bytes_per_slot(num_envs, num_positions)
    return {
        "backend": backend,
        "envs": num_envs,
        "positions": num_positions,
        "substeps": substeps,
        "seconds": seconds,
        "ms_per_substep": 1e3 * seconds / substeps,
        "position_updates_per_s": updates / seconds,
        "cascade_rounds_per_env_substep": rounds / (num_envs * substeps),
        "liquidations": float(np.sum(final.liquidations)),
        "bytes_per_slot": mem["position"],
        "state_bytes_per_slot": mem["total"],
        "source": "measured beside the cross-margin row",
    }


def cross_margin_section(
    backend: str, num_envs: int, num_positions: int, substeps: int, repeats: int,
    rounds: int = 1, grid_rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The bench section: ``rounds`` alternating measurements of the single-asset row and the
    cross-margin row, each the best of ``repeats`` timed runs (the same for both, so neither
    gets more tries); the ratio of each round, the median round and the median rates. The
    throughput grid's single-asset row of this backend and size (``grid_rows``, same run), when
    there is one, is recorded beside it (``grid_single_asset_position_updates_per_s``)."""
    grid = next(
        (
            r
            for r in grid_rows or []
            if r["backend"] == backend and (r["envs"], r["positions"]) == (num_envs, num_positions)
        ),
        None,
    )
    singles, crosses = [], []
    for _ in range(max(rounds, 1)):
        singles.append(single_asset_rate(backend, num_envs, num_positions, substeps, repeats))
        crosses.append(portfolio_rate(num_envs, num_positions, substeps, backend, repeats))
    ratios = [
        c["position_updates_per_s"] / s["position_updates_per_s"]
        for c, s in zip(crosses, singles, strict=True)
    ]
    order = sorted(range(len(ratios)), key=lambda i: ratios[i])
    mid = order[len(order) // 2]  # the median round
    med = lambda xs: float(np.median(xs))  # noqa: E731
    return {
        "single_asset": singles[mid],
        "cross_margin": crosses[mid],
        "ratio_to_single_asset": ratios[mid],
        "rounds": len(ratios),
        "ratios": ratios,
        "median_single_asset_position_updates_per_s": med(
            [s["position_updates_per_s"] for s in singles]
        ),
        "median_cross_margin_position_updates_per_s": med(
            [c["position_updates_per_s"] for c in crosses]
        ),
        "grid_single_asset_position_updates_per_s": None
        if grid is None
        else grid["position_updates_per_s"],
        "target_ratio": TARGET_RATIO,
    }
