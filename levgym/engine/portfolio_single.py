"""The single-asset engine's market as the asset-axis step's K = 1 market: its parameters, its
drawn book and behaviours, its state and its driver rows mapped onto two reserves (WETH, the
collateral, and USDC, the debt asset) of :mod:`levgym.engine.portfolio_market`, and back.

docs/cross-margin.md, "What a single-asset preset uses that the asset-axis step lacks" (row 21):
every option below is one the asset-axis step has, set to the single engine's rule, so that a
K = 1 market stepped by :func:`levgym.engine.portfolio_market.substep` equals the single engine's
run to 1e-12 (:class:`AssetAxisSteps` steps a market runner's markets so;
``levgym.simulation.simulate(..., engine="portfolio")`` runs a whole ``simulate``). A single-engine
setting the asset-axis step cannot represent yet raises one line naming it
(:func:`check_supported`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from . import portfolio_borrowers as PB
from . import portfolio_market as PM
from .aave_v3_ethereum import aave_v3_ethereum_reserves
from .drivers import DriverRow, Drivers
from .noise import splitmix_noise
from .params import EngineParams
from .portfolio import OracleConfig, Reserves
from .rules import DEFENSIVE, LOOPER
from .state import State

COLLATERAL, DEBT = "WETH", "USDC"
"""The two reserves of the K = 1 market: the single engine's asset and its debt asset."""
SYMBOLS = (COLLATERAL, DEBT)

KEEPER_ROUTE_KEYS = (
    "keeper_venue_frac",
    "keeper_venue_depth_usd",
    "keeper_aggregator_depth_usd",
    "keeper_aggregator_fee_frac",
    "keeper_cex_depth_usd",
    "keeper_cex_fee_frac",
    "keeper_cex_latency_substeps",
)
"""``market.*`` keeper routing fields that the asset-axis step takes under the same names."""

NOT_YET = "is not yet supported by the asset-axis step (docs/cross-margin.md, rows 10-11)"


def check_supported(params: EngineParams) -> None:
    """Raise one ValueError line naming the first setting of ``params`` that the asset-axis step
    cannot represent yet: borrowers arriving into free slots or exiting (row 10: the ``active``
    flag and the templates) and a supply cap on loopers' purchases (row 11)."""
    b, pr = params.borrowers, params.protocol
    for name in ("arrival_rate_per_h", "exit_rate_per_h"):
        value = getattr(b, name)
        if value != 0.0:
            raise ValueError(f"borrowers.{name}={value:g} {NOT_YET}; allowed 0")
    if math.isfinite(pr.supply_cap_asset) and b.looper_frac > 0.0:
        raise ValueError(
            f"protocol.supply_cap_asset={pr.supply_cap_asset:g} with borrowers.looper_frac="
            f"{b.looper_frac:g} {NOT_YET}; allowed inf, or looper_frac=0"
        )


def single_reserves(params: EngineParams) -> Reserves:
    """WETH and USDC of Aave v3 Ethereum set to the single engine's protocol: WETH's LTV, LT,
    bonus, protocol fee and its oracle feed (``market.oracle_kind`` with its deviation and
    heartbeat), USDC's rate curve and reserve factor, the caps (``borrow_cap_usd`` on USDC,
    ``supply_cap_asset`` on WETH), and USDC priced at its market price as it is (the single
    engine's debt price has no oracle and no cap)."""
    pr, m = params.protocol, params.market
    res = aave_v3_ethereum_reserves(SYMBOLS)
    weth = res.reserves[res.index(COLLATERAL)]
    feed = dataclasses.replace(
        weth.oracle,
        feed=m.oracle_kind,
        deviation_frac=m.oracle_deviation_frac,
        heartbeat_h=m.oracle_heartbeat_h,
    )
    res = res.replace(
        COLLATERAL,
        oracle=feed,
        ltv=pr.ltv,
        liquidation_threshold=pr.liquidation_threshold,
        liquidation_bonus=pr.liquidation_bonus,
        protocol_fee_frac=pr.protocol_fee_frac,
        # a supply cap acts on new supply only (loopers' purchases, refused by check_supported)
        supply_cap_asset=pr.supply_cap_asset if pr.supply_cap_asset > 0.0 else math.inf,
    )
    return res.replace(
        DEBT,
        base_rate_apr=pr.base_rate_apr,
        slope1_apr=pr.slope1_apr,
        slope2_apr=pr.slope2_apr,
        optimal_utilization_frac=pr.optimal_utilization_frac,
        reserve_factor_frac=pr.reserve_factor_frac,
        borrow_cap_asset=pr.borrow_cap_usd,
        oracle=OracleConfig(kind="market"),
    )


def single_market_params(
    params: EngineParams, statistics: bool = False
) -> PM.PortfolioMarketParams:
    """The asset-axis step's market parameters under the single engine's rules: its substep,
    pool, arbitrage speed and oracle blend; its keepers (gas per call priced in ETH, capacity,
    chunks, the profitability filter priced in the block, the off-pool routing); its close factor
    (``close_factor``, ``full_close_hf``, ``small_position_usd`` on the position's debt, no
    leftover rule); its bad-debt accounting (reserves, then lenders); its defenders' and loopers'
    bands. ``statistics``: keep the run statistics that ``simulate`` reports."""
    pr, m, b = params.protocol, params.market, params.borrowers
    return PM.PortfolioMarketParams(
        substep_h=params.run.substep_h,
        volatile_pool_depth_usd=m.pool_depth_usd,
        pool_fee_frac=m.pool_fee_frac,
        arb_speed_frac=m.arb_speed_frac,
        oracle_pool_weight_frac=m.oracle_pool_weight_frac,
        initial_utilization_frac=b.initial_utilization_frac,
        max_cascade_rounds=m.max_cascade_rounds,
        gas_usd_per_call=0.0,
        max_round_buy_frac=0.99,  # the debt asset is the quote: keepers buy nothing
        deficit_cover="reserves_then_lenders",
        borrowers=PB.PortfolioBorrowerParams(
            target_gap=b.defend_target_gap,
            reaction_gas_ref_gwei=b.reaction_gas_ref_gwei,
            relever_band_frac=b.relever_band_frac,
            delever_frac=b.delever_frac,
        ),
        twap_window_substeps=m.twap_window_substeps,
        gas_units_per_call=m.gas_units_per_liquidation,
        keeper_capacity_per_substep=m.keeper_capacity_per_substep,
        congestion_ref_gwei=m.congestion_ref_gwei,
        profitability_filter="in_block" if m.profitability_filter else "off",
        keeper_max_slippage_frac=m.keeper_max_slippage_frac,
        close_factor=pr.close_factor,
        full_close_hf=pr.full_close_hf,
        min_close_usd=pr.small_position_usd,
        min_close_by="position_debt",
        leftover_usd=0.0,
        statistics=statistics,
        **{k: getattr(m, k) for k in KEEPER_ROUTE_KEYS},
    )


def single_behaviours(state: State) -> PB.Behaviours:
    """The single book's behaviours as the asset-axis step's: defensive slots with their
    triggers, whether they repay and unlimited outside funds (the single engine's defenders have
    no budget); loopers with their targets (None when no slot loops); every slot's reaction
    probability (None when no slot acts)."""
    s = state.to_numpy() if not isinstance(state.kind, np.ndarray) else state
    defensive = s.active & (s.kind == DEFENSIVE)
    looper = s.active & (s.kind == LOOPER)
    acts = bool(defensive.any() or looper.any())
    return PB.Behaviours(
        trigger_hf=np.where(defensive, s.trigger_hf, 0.0),
        repays=defensive & s.repays,
        capacity_usd=np.where(defensive, np.inf, 0.0),
        react_prob=np.array(s.react_prob, dtype=np.float64) if acts else None,
        looper_target_hf=np.where(looper, s.target_hf, 0.0) if looper.any() else None,
    )


def _pair(collateral: Any, debt: Any) -> np.ndarray:
    """``[E, 2]``: ``collateral`` in the WETH column, ``debt`` in the USDC column."""
    return np.stack(
        np.broadcast_arrays(np.asarray(collateral, float), np.asarray(debt, float)), axis=1
    )


def from_single_state(
    state: State, reserves: Reserves, params: PM.PortfolioMarketParams
) -> PM.PortfolioState:
    """The single engine's state (numpy) as a K = 1 portfolio state of ``reserves``
    (:func:`single_reserves`): positions ``[E, N, 2]``, the pool, the oracle's last answer and
    time, the TWAP window and its position, the pool's liquidity base, the lenders' supply, the
    reserves as the USDC treasury, the clock, the keepers' CEX holdings, the behaviours
    (:func:`single_behaviours`) and, with ``params.statistics``, the run statistics. Counters
    start at 0 (the initial balances are the state's)."""
    s = state.to_numpy() if not isinstance(state.collateral_asset, np.ndarray) else state
    if reserves.symbols != SYMBOLS:
        raise ValueError(f"reserves {list(reserves.symbols)}; allowed {list(SYMBOLS)}")
    w, u = reserves.index(COLLATERAL), reserves.index(DEBT)
    e, n = s.collateral_asset.shape
    supply, debt = np.zeros((e, n, 2)), np.zeros((e, n, 2))
    supply[..., w], debt[..., u] = s.collateral_asset, s.debt_usd
    f = _pair(s.fundamental_usd, s.debt_price_usd)
    ps = PM.init_state(reserves, params, supply, debt, np.zeros((e, n), dtype=np.int64), f)

    def col(a: np.ndarray, k: int, v: Any) -> np.ndarray:
        a = a.copy()
        a[:, k] = v
        return a

    buf = ps.twap_buffer_usd.copy()
    buf[:, w, :] = s.twap_buffer_usd
    changes: dict[str, Any] = dict(
        pool_asset=col(ps.pool_asset, w, s.pool_asset),
        pool_quote=col(ps.pool_quote, w, s.pool_debt),
        pool_liquidity_base=col(ps.pool_liquidity_base, w, s.pool_liquidity_base),
        oracle_usd=_pair(s.oracle_usd, s.debt_price_usd),
        feed_usd=col(ps.feed_usd, w, s.oracle_usd),
        feed_updated_h=col(ps.feed_updated_h, w, s.oracle_updated_h),
        twap_buffer_usd=buf,
        lender_supply_asset=col(ps.lender_supply_asset, u, s.supply_usd),
        treasury_asset=col(ps.treasury_asset, u, s.reserves_usd),
        time_h=float(s.time_h),
        substep_index=int(s.substep_index),
    )
    if params.keeper_cex_latent:
        changes["keeper_cex_pending_asset"] = col(np.zeros((e, 2)), w, s.keeper_cex_pending_asset)
    elif np.any(s.keeper_cex_pending_asset != 0.0):
        raise ValueError(
            "keeper_cex_pending_asset > 0 needs market.keeper_cex_latency_substeps > 0"
        )
    if params.statistics:
        changes.update(
            fundamental_min_usd=_pair(s.fundamental_min_usd, s.debt_price_usd),
            pool_min_usd=_pair(s.pool_min_usd, s.debt_price_usd),
            ever_liquidated=np.array(s.ever_liquidated, dtype=bool),
        )
    return PB.with_behaviours(ps.replace(**changes), single_behaviours(s))


def to_single_state(
    ps: PM.PortfolioState, like: State, reserves: Reserves, gas_gwei: Any = None
) -> State:
    """The K = 1 portfolio state ``ps`` as the single engine's state: what it holds (positions,
    pool, oracle, TWAP window, lenders' supply, reserves, clock, keepers' CEX holdings and, when
    kept, the run statistics) and its counters, added to ``like``'s (the single state it was
    mapped from by :func:`from_single_state`); the rest (behaviours, parameters, start values)
    is ``like``'s. A slot holds a position while it has collateral (the single engine frees a
    slot when its debt is written off). ``gas_gwei``: the last substep's gas price (the state's
    ``gas_gwei``; None: ``like``'s)."""
    w, u = reserves.index(COLLATERAL), reserves.index(DEBT)
    c = ps.counters
    coll = ps.supply[..., w]
    counters = {
        "added_collateral_asset": c["added_collateral_asset"][:, w],
        "withdrawn_collateral_asset": c["withdrawn_collateral_asset"][:, w],
        "seized_collateral_asset": c["seized_collateral_asset"][:, w],
        "borrowed_usd": c["borrowed_asset"][:, u],
        "interest_usd": c["interest_asset"][:, u],
        "repaid_by_borrowers_usd": c["repaid_by_borrowers_asset"][:, u],
        "repaid_by_liquidators_usd": c["repaid_by_liquidators_asset"][:, u],
        "bad_debt_usd": c["deficit_asset"][:, u],
        "bad_debt_from_reserves_usd": c["deficit_covered_asset"][:, u],
        "lender_loss_usd": c["lender_loss_asset"][:, u],
        "liquidations": ps.liquidations,
        "protocol_fee_asset": c["protocol_fee_asset"][:, w],
        "protocol_fee_usd": c["protocol_fee_usd"][:, w],
        "reserve_income_usd": c["treasury_interest_asset"][:, u],
        "keeper_sold_asset": c["sold_asset"][:, w],
        "keeper_venue_sold_asset": c["venue_sold_asset"][:, w],
        "keeper_aggregator_sold_asset": c["aggregator_sold_asset"][:, w],
        "keeper_cex_sold_asset": c["cex_sold_asset"][:, w],
        "keeper_profit_usd": ps.keeper_pnl_usd,
    }
    changes: dict[str, Any] = {k: getattr(like, k) + v for k, v in counters.items()}
    changes.update(
        collateral_asset=coll,
        debt_usd=ps.debt[..., u],
        active=like.active & (coll > 0.0),
        fundamental_usd=ps.fundamental_usd[:, w],
        debt_price_usd=ps.fundamental_usd[:, u],
        pool_asset=ps.pool_asset[:, w],
        pool_debt=ps.pool_quote[:, w],
        pool_liquidity_base=ps.pool_liquidity_base[:, w],
        oracle_usd=ps.oracle_usd[:, w],
        oracle_updated_h=ps.feed_updated_h[:, w],
        twap_buffer_usd=ps.twap_buffer_usd[:, w, :],
        supply_usd=ps.lender_supply_asset[:, u],
        reserves_usd=ps.treasury_asset[:, u],
        cascade_rounds_max=np.maximum(like.cascade_rounds_max, ps.cascade_rounds_max),
        time_h=float(ps.time_h),
        substep_index=int(ps.substep_index),
    )
    if gas_gwei is not None:
        changes["gas_gwei"] = np.broadcast_to(
            np.asarray(gas_gwei, dtype=np.float64), coll.shape[:1]
        ).copy()
    if ps.keeper_cex_pending_asset is not None:
        changes["keeper_cex_pending_asset"] = ps.keeper_cex_pending_asset[:, w]
    if ps.fundamental_min_usd is not None:
        changes["fundamental_min_usd"] = ps.fundamental_min_usd[:, w]
        changes["pool_min_usd"] = ps.pool_min_usd[:, w]
    if ps.ever_liquidated is not None:
        changes["ever_liquidated"] = ps.ever_liquidated
    return like.replace(**changes)


def substep_drivers(row: DriverRow, reserves: Reserves, params: PM.PortfolioMarketParams) -> dict:
    """The single engine's driver row as :func:`levgym.engine.portfolio_market.substep`'s
    arguments: the fundamentals ``[E, 2]`` (WETH's, and the debt price as USDC's), gas, and on
    the WETH feed and pool the oracle drivers (``oracle_bias_frac``, ``oracle_frozen``) and the
    pool drivers (``liquidity_frac``, ``arb_speed_frac``); USDC has none. ``arrival_mult`` is
    not read (no arrivals: :func:`check_supported`)."""
    w = reserves.index(COLLATERAL)
    f = _pair(row.fundamental_usd, row.debt_price_usd)
    e = f.shape[0]
    bias, held = np.zeros((e, 2)), np.zeros((e, 2), dtype=bool)
    liq, arb = np.ones((e, 2)), np.full((e, 2), params.arb_speed_frac)
    bias[:, w], held[:, w] = row.oracle_bias_frac, row.oracle_frozen
    liq[:, w], arb[:, w] = row.liquidity_frac, row.arb_speed_frac
    return dict(
        fundamental_usd=f, gas_gwei=np.asarray(row.gas_gwei, dtype=np.float64),
        oracle_bias_frac=bias, oracle_held=held, liquidity_frac=liq, arb_speed_frac=arb,
    )  # fmt: skip


ENGINES = ("single", "portfolio")
"""What ``simulate`` steps a single-asset preset's markets with: the single engine's step, or the
asset-axis step on their K = 1 market (:class:`AssetAxisSteps`)."""


def check_engine_options(engine: str, backend: str, dtype: str, device: str | None) -> None:
    """One line when ``engine`` is unknown, or is the asset-axis step and these options are ones
    it cannot run (it runs numpy and numba arrays in float64)."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is unknown; allowed {', '.join(ENGINES)}")
    if engine == "portfolio" and (
        backend not in PM.BACKENDS or dtype != "float64" or device is not None
    ):
        raise ValueError(
            f"--backend {backend} --dtype {dtype} is not supported by the asset-axis step; "
            f"allowed --backend {' or '.join(PM.BACKENDS)} with --dtype float64"
        )


class AssetAxisSteps:
    """The substeps of a market runner's markets (:class:`levgym.market.MarketRunner`, a
    single-asset preset) made by the asset-axis step on their K = 1 market: call it as the
    runner's ``substep``. It starts from the runner's state, reads ``drivers`` (the runner's,
    ``[S, E]``) row by row with the runner's borrower noise, and after every substep writes the
    state mapped back (:func:`to_single_state`) into ``runner.state``. ``backend``: ``numpy``
    or ``numba`` (the asset-axis kernel). Settings it cannot represent yet raise one line
    (:func:`check_supported`)."""

    def __init__(self, runner: Any, drivers: Drivers, backend: str = "numpy") -> None:
        check_supported(runner.params)
        self.runner = runner
        self.drivers = drivers
        self.backend = backend
        self.reserves = single_reserves(runner.params)
        self.market = single_market_params(runner.params, statistics=True)
        self.start: State = runner.state
        self.state = from_single_state(self.start, self.reserves, self.market)
        self.noise_key = np.array(runner.noise_key, copy=True)
        self.t = 0

    def __call__(self) -> np.ndarray:
        """One substep; returns the cascade rounds per env (float64, as the runner's)."""
        t = self.t
        e, n = self.start.num_envs, self.start.num_positions
        u = splitmix_noise(self.noise_key, np.full(e, t, dtype=np.int64), np.empty((e, n)))
        kw = substep_drivers(self.drivers.row(t, np.asarray), self.reserves, self.market)
        f = kw.pop("fundamental_usd")
        self.state, rounds = PM.substep(
            self.state, f, self.reserves, self.market, backend=self.backend, noise_u=u, **kw
        )
        gas = self.drivers.gas_gwei[t]
        self.runner.state = to_single_state(self.state, self.start, self.reserves, gas)
        self.t = t + 1
        return np.asarray(rounds, dtype=np.float64)


__all__ = [
    "ENGINES",
    "AssetAxisSteps",
    "COLLATERAL",
    "DEBT",
    "SYMBOLS",
    "check_engine_options",
    "check_supported",
    "from_single_state",
    "single_behaviours",
    "single_market_params",
    "single_reserves",
    "substep_drivers",
    "to_single_state",
]
