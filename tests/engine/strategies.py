"""One Hypothesis strategy for engine cases: parameters, a book and drivers in which every driver
varies (crashes, depegs, oracle bias and freeze windows, droughts, arbitrage speed, gas spikes,
arrivals, borrower noise). The reference, array (numpy, torch) and fused parity tests and the
invariant tests all draw their cases from :func:`cases`.

Hypothesis draws the knobs (sizes, which drivers are on, parameter values) and a seed; the
arrays are drawn from that seed with numpy, so a failing case shrinks to few knobs: fewer envs,
positions and substeps, and drivers switched off one by one.

``PARITY_SETTINGS`` is derandomized (the same examples on every run, so CI is reproducible).
Set ``LEVGYM_PARITY_EXAMPLES=500`` (and ``LEVGYM_PARITY_RANDOM=1`` for fresh examples) to search
deeper locally.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from levgym.engine import (
    PRESETS,
    BorrowerParams,
    Drivers,
    EngineParams,
    MarketParams,
    ProtocolParams,
)
from levgym.engine.orders import Orders
from levgym.engine.state import State, from_book

MAX_ENVS, MAX_POSITIONS, MAX_SUBSTEPS = 4, 24, 8

PARITY_SETTINGS = settings(
    max_examples=int(os.environ.get("LEVGYM_PARITY_EXAMPLES", "20")),
    deadline=None,
    derandomize=not os.environ.get("LEVGYM_PARITY_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@dataclass(frozen=True)
class Case:
    """One engine case: parameters, a book ``[E, N]``, drivers ``[S, E]``, the borrowers'
    uniforms ``[S, E, N]`` and, optionally, the agents' orders of every block (an outside
    liquidator's claim share and sale, a liquidity provider's change, a governor's borrowing
    freeze and oracle pause, each ``[E]``)."""

    params: EngineParams
    collateral_asset: np.ndarray
    debt_usd: np.ndarray
    kind: np.ndarray
    drivers: Drivers
    noise_u: np.ndarray
    orders: Orders | None
    knobs: dict[str, Any]

    @property
    def num_envs(self) -> int:
        return int(self.collateral_asset.shape[0])

    @property
    def num_positions(self) -> int:
        return int(self.collateral_asset.shape[1])

    @property
    def num_substeps(self) -> int:
        return self.drivers.num_substeps

    def state(self, backend: str = "numpy") -> State:
        """The initial state on ``backend`` (float64), at the drivers' first debt price."""
        return from_book(
            self.params,
            self.collateral_asset,
            self.debt_usd,
            self.start_price_usd,
            kind=self.kind,
            debt_price_usd=1.0,
            gas_gwei=self.drivers.gas_gwei[0],
            backend=backend,
        )

    @property
    def start_price_usd(self) -> np.ndarray:
        return self.knobs["start_price_usd"]

    def __repr__(self) -> str:  # what Hypothesis prints for a failing case
        k = {key: v for key, v in self.knobs.items() if key != "start_price_usd"}
        return (
            f"Case(E={self.num_envs}, N={self.num_positions}, S={self.num_substeps}, "
            f"orders={self.orders}, knobs={k}, params={self.params!r})"
        )


def _log_uniform(draw, lo: float, hi: float) -> float:
    return float(math.exp(draw(st.floats(math.log(lo), math.log(hi)))))


@st.composite
def protocol_params(draw) -> ProtocolParams:
    lt = draw(st.floats(0.5, 0.93))
    bonus = draw(st.floats(0.0, min(0.2, 1.0 / lt - 1.0 - 1e-3)))
    ltv = lt * draw(st.floats(0.6, 1.0))
    return ProtocolParams(
        ltv=ltv,
        liquidation_threshold=lt,
        liquidation_bonus=bonus,
        close_factor=draw(st.sampled_from([0.5, 1.0]) | st.floats(0.05, 1.0)),
        full_close_hf=draw(st.sampled_from([0.95, 0.0, 1.0]) | st.floats(0.0, 1.0)),
        small_position_usd=draw(st.sampled_from([0.0, 2000.0, 1e5])),
        protocol_fee_frac=draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 1.0)),
        base_rate_apr=draw(st.floats(0.0, 0.1)),
        slope1_apr=draw(st.floats(0.0, 0.3)),
        slope2_apr=draw(st.floats(0.0, 3.0)),
        optimal_utilization_frac=draw(st.floats(0.5, 0.95)),
        reserve_factor_frac=draw(st.floats(0.0, 0.5)),
        borrow_cap_usd=draw(st.sampled_from([math.inf, 1e6, 1e8])),
        supply_cap_asset=draw(st.sampled_from([math.inf, 0.0, 1e2, 1e4, 1e6])),
    )


@st.composite
def market_params(draw) -> MarketParams:
    return MarketParams(
        pool_depth_usd=_log_uniform(draw, 1e6, 1e9),
        pool_fee_frac=draw(st.sampled_from([0.0, 0.003, 0.01])),
        oracle_kind=draw(st.sampled_from(["chainlink", "twap", "exact"])),
        oracle_deviation_frac=draw(st.sampled_from([0.0, 0.005]) | st.floats(0.0, 0.05)),
        oracle_heartbeat_h=draw(st.sampled_from([1.0 / 6.0, 0.5, 1.0]) | st.floats(0.05, 3.0)),
        oracle_pool_weight_frac=draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)),
        twap_window_substeps=draw(st.integers(1, 6)),
        gas_units_per_liquidation=draw(st.sampled_from([0.0, 400_000.0, 2e6])),
        keeper_capacity_per_substep=draw(st.sampled_from([0.0, 1.0, 2.0, 5.0, 200.0])),
        congestion_ref_gwei=draw(st.floats(10.0, 300.0)),
        max_cascade_rounds=draw(st.integers(1, 30)),
        keeper_max_slippage_frac=draw(st.sampled_from([0.005, 0.02, 0.1, 1.0])),
        profitability_filter=draw(st.booleans()),
        keeper_venue_depth_usd=_log_uniform(draw, 1e6, 1e10),
        **draw(keeper_routing()),
    )


@st.composite
def keeper_routing(draw) -> dict:
    """The keepers' routing: all into the pool, a fixed share to one venue, or the best split
    over the pool, an aggregator route and a CEX leg (with or without latency)."""
    mode = draw(st.sampled_from(["pool", "fixed", "split", "split"]))
    if mode == "pool":
        return {"keeper_venue_frac": 0.0}
    if mode == "fixed":
        return {
            "keeper_venue_frac": draw(st.sampled_from([0.3, 1.0]) | st.floats(0.0, 1.0)),
        }
    agg, cex = draw(st.sampled_from([(True, False), (False, True), (True, True), (True, True)]))
    return {
        "keeper_venue_frac": 0.0,
        "keeper_aggregator_depth_usd": _log_uniform(draw, 1e6, 1e10) if agg else 0.0,
        "keeper_aggregator_fee_frac": draw(st.sampled_from([0.0, 0.001, 0.005])),
        "keeper_cex_depth_usd": _log_uniform(draw, 1e6, 1e10) if cex else 0.0,
        "keeper_cex_fee_frac": draw(st.sampled_from([0.0, 0.001])),
        "keeper_cex_latency_substeps": draw(st.sampled_from([0.0, 1.0, 3.0]) | st.floats(0.0, 6.0)),
    }


@st.composite
def borrower_params(draw, ltv: float = 0.825) -> BorrowerParams:
    passive = draw(st.sampled_from([1.0, 0.0]) | st.floats(0.0, 1.0))
    defensive = (1.0 - passive) * draw(st.floats(0.0, 1.0))
    looper = max(0.0, 1.0 - passive - defensive)
    trig_lo = draw(st.floats(1.0, 1.4))
    react_lo = draw(st.floats(0.0, 0.5))
    target_lo = draw(st.floats(1.05, 1.6))
    return BorrowerParams(
        passive_frac=passive,
        defensive_frac=defensive,
        looper_frac=looper,
        trigger_hf_min=trig_lo,
        trigger_hf_max=trig_lo + draw(st.floats(0.0, 0.4)),
        defend_target_gap=draw(st.floats(0.01, 0.5)),
        repay_share_frac=draw(st.floats(0.0, 1.0)),
        react_prob_min=react_lo,
        react_prob_max=draw(st.floats(react_lo, 0.5)),
        looper_target_hf_min=target_lo,
        looper_target_hf_max=target_lo + draw(st.floats(0.0, 0.4)),
        relever_band_frac=draw(st.floats(0.0, 0.4)),
        delever_frac=draw(st.floats(0.0, 1.0)),
        arrival_rate_per_h=draw(st.sampled_from([0.0, 0.01]) | st.floats(0.0, 1.0)),
        exit_rate_per_h=draw(st.sampled_from([0.0, 0.002]) | st.floats(0.0, 0.5)),
        # arrivals and exits respond to LTV and rates; keep the reference near this LTV so that
        # arrivals happen in a few substeps
        ltv_elasticity=draw(st.sampled_from([20.0, 0.0])),
        rate_elasticity=draw(st.sampled_from([10.0, 0.0])),
        ltv_ref=min(ltv * draw(st.floats(0.9, 1.1)), 0.99),
        initial_utilization_frac=draw(st.floats(0.3, 0.99)),
        initial_reserves_frac=draw(st.sampled_from([0.0, 0.01, 0.1])),
    )


@st.composite
def engine_params(draw) -> EngineParams:
    # the shipped presets, or a random valid set
    protocol = draw(st.sampled_from(list(PRESETS.values())) | protocol_params())
    return EngineParams(
        protocol=protocol,
        market=draw(market_params()),
        borrowers=draw(borrower_params(protocol.ltv)),
    )


def _windows(rng: np.random.Generator, s: int, e: int, prob: float) -> np.ndarray:
    """A ``[S, E]`` mask: in each env, with probability ``prob``, one window of substeps."""
    out = np.zeros((s, e), dtype=bool)
    for j in range(e):
        if rng.random() < prob:
            a = int(rng.integers(0, s))
            b = int(rng.integers(a + 1, s + 1))
            out[a:b, j] = True
    return out


def _drivers(rng: np.random.Generator, s: int, start: np.ndarray, on: dict[str, bool]) -> Drivers:
    e = start.shape[0]
    # fundamental: a random walk with, where on, a crash at a random substep (and a partial rebound)
    vol = rng.uniform(0.0, 0.03)
    log_f = np.cumsum(vol * rng.standard_normal((s, e)), axis=0)
    if on["crash"]:
        crash = _windows(rng, s, e, 0.8)
        drop = rng.uniform(0.05, 0.7, e)
        started = np.cumsum(crash, axis=0) > 0
        log_f += np.where(started, np.log1p(-drop), 0.0)
        log_f += np.where(started & ~crash, np.log1p(drop * rng.uniform(0, 0.5, e)), 0.0)
    fundamental = start[None, :] * np.exp(log_f)
    ones = np.ones((s, e))
    debt_price = ones.copy()
    if on["depeg"]:
        debt_price = np.where(_windows(rng, s, e, 0.9), rng.uniform(0.85, 1.2, e), 1.0)
        debt_price *= 1.0 + 0.01 * rng.standard_normal((s, e))
    bias = np.zeros((s, e))
    if on["bias"]:
        bias = np.where(_windows(rng, s, e, 0.9), rng.uniform(-0.3, 0.3, e), 0.0)
    frozen = _windows(rng, s, e, 0.9) if on["frozen"] else np.zeros((s, e), dtype=bool)
    liquidity = ones.copy()
    if on["drought"]:
        liquidity = np.where(_windows(rng, s, e, 0.9), rng.uniform(0.03, 1.0, e), 1.0)
        liquidity *= rng.uniform(0.8, 1.3, (s, e))
    arb = ones.copy()
    if on["arb"]:
        arb = rng.uniform(0.0, 1.0, (s, e))
        arb[rng.random((s, e)) < 0.2] = 0.0
        arb[rng.random((s, e)) < 0.2] = 1.0
    gas = ones * rng.uniform(0.0, 60.0, e)
    if on["gas"]:
        gas = np.where(_windows(rng, s, e, 0.9), rng.uniform(100.0, 3000.0, (s, e)), gas)
    arrivals = rng.uniform(0.0, 5.0, (s, e)) if on["arrivals"] else ones.copy()
    return Drivers(
        fundamental_usd=fundamental,
        liquidity_frac=liquidity,
        arb_speed_frac=arb,
        gas_gwei=gas,
        oracle_bias_frac=bias,
        oracle_frozen=frozen,
        debt_price_usd=debt_price,
        arrival_mult=arrivals,
    )


def _book(rng: np.random.Generator, e: int, n: int, params: EngineParams, knobs: dict):
    b = params.borrowers
    start = knobs["start_price_usd"]
    weights = rng.pareto(knobs["size_alpha"], (e, n)) + 1.0
    coll = weights / weights.sum(axis=1, keepdims=True) * knobs["book_usd"] / start[:, None]
    coll[rng.random((e, n)) < knobs["empty_frac"]] = 0.0
    u = rng.random((e, n))
    under, near = knobs["under_frac"], knobs["near_frac"]
    hf = np.where(
        u < under,
        rng.uniform(0.5, 1.0, (e, n)),
        np.where(
            u < under + near,
            rng.uniform(1.0, 1.08, (e, n)),
            1.08 + rng.lognormal(np.log(0.4), 0.7, (e, n)),
        ),
    )
    debt = coll * start[:, None] * params.protocol.liquidation_threshold / hf
    debt[rng.random((e, n)) < 0.05] = 0.0  # a few collateral-only positions
    u_kind = rng.random((e, n))
    kind = np.where(
        u_kind < b.passive_frac, 0, np.where(u_kind < b.passive_frac + b.defensive_frac, 1, 2)
    ).astype(np.int64)
    return coll, debt, kind


# on in 3 of 4 draws; shrinks to off, so a failure names the drivers it needs
_SWITCH = st.sampled_from([False, True, True, True])
DRIVER_SWITCHES = ("crash", "depeg", "bias", "frozen", "drought", "arb", "gas", "arrivals")


@st.composite
def cases(
    draw,
    max_envs: int = MAX_ENVS,
    max_positions: int = MAX_POSITIONS,
    max_substeps: int = MAX_SUBSTEPS,
    share: bool = True,
) -> Case:
    """A whole case. Every driver is on unless Hypothesis switches it off while shrinking."""
    params = draw(engine_params())
    e = draw(st.integers(1, max_envs))
    n = draw(st.integers(1, max_positions))
    s = draw(st.integers(1, max_substeps))
    seed = draw(st.integers(0, 2**32 - 1))
    on = {name: draw(_SWITCH) for name in DRIVER_SWITCHES}
    rng = np.random.default_rng(seed)
    knobs: dict[str, Any] = {
        "seed": seed,
        "drivers_on": [k for k, v in on.items() if v],
        # the book against the pool's depth: from a ripple to many times the pool (slippage,
        # multi-round cascades)
        "book_usd": params.market.pool_depth_usd * _log_uniform(draw, 1e-3, 30.0),
        "size_alpha": draw(st.floats(0.8, 3.0)),
        "empty_frac": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "under_frac": draw(st.floats(0.0, 0.5)),
        "near_frac": draw(st.floats(0.0, 0.5)),
    }
    knobs["start_price_usd"] = rng.uniform(50.0, 4000.0, e)
    coll, debt, kind = _book(rng, e, n, params, knobs)
    drivers = _drivers(rng, s, knobs["start_price_usd"], on)
    noise = rng.random((s, e, n))
    orders = None
    if share and draw(st.booleans()):
        pool_asset = params.market.pool_depth_usd / knobs["start_price_usd"]
        some = lambda: rng.random(e) < 0.6  # noqa: E731  (each env places each order or not)
        orders = Orders(
            claim_share_frac=rng.uniform(0.0, 0.8, e),
            sell_asset=np.where(some(), rng.uniform(0.0, 0.03, e) * pool_asset, 0.0)
            if draw(st.booleans())
            else None,
            liquidity_delta_frac=np.where(some(), rng.uniform(-0.4, 0.4, e), 0.0)
            if draw(st.booleans())
            else None,
            freeze_borrow=some() if draw(st.booleans()) else None,
            pause_oracle=some() if draw(st.booleans()) else None,
        )
    return Case(params, coll, debt, kind, drivers, noise, orders, knobs)


def numpy_rows(drivers: Drivers):
    """The drivers' rows as numpy arrays (what the numpy and numba paths read)."""
    return [drivers.row(t, np.asarray) for t in range(drivers.num_substeps)]


def torch_rows(drivers: Drivers):
    """The drivers' rows as CPU torch tensors (float64, bool)."""
    import torch

    return [
        drivers.row(t, lambda a: torch.from_numpy(np.ascontiguousarray(a)))
        for t in range(drivers.num_substeps)
    ]


def run_case(case: Case, step_fn, backend: str = "numpy", state: State | None = None):
    """Run ``step_fn`` (a ``substep(state, row, noise_u, params, orders)``) over the
    whole case on its own trajectory, from ``state`` (default: the case's initial state);
    yields ``(state, rounds)`` after each substep."""
    if backend == "torch":
        import torch

        rows = torch_rows(case.drivers)
        noise = [torch.from_numpy(u) for u in case.noise_u]
        share = case.orders
        if share is not None:
            share = Orders(
                **{
                    k: None if v is None else torch.from_numpy(v)
                    for k, v in dataclasses.asdict(share).items()
                }
            )
    else:
        rows, noise, share = numpy_rows(case.drivers), list(case.noise_u), case.orders
    state = case.state(backend) if state is None else state
    for row, u in zip(rows, noise, strict=True):
        state, rounds = step_fn(state, row, u, case.params, share)
        yield state, rounds
