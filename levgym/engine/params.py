"""Named, validated parameters of the lending market: protocol, market, borrower book, run."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HOURS_PER_YEAR = 24.0 * 365.0
MAX_USD = 1e15
"""Largest USD amount a parameter may take: far above any real market, small enough that sums,
products and squares of amounts stay finite in float32 and float64 (``inf`` or ``1e308`` would
overflow into NaN)."""


def closest_hint(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_range(
    owner: str,
    name: str,
    value: float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """Raise a ValueError naming ``owner.name``, the value and the allowed range. Infinite values
    are refused unless ``allow_inf`` (a field where ``inf`` means "no limit")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{owner}.{name}={value!r} must be a number")
    if math.isnan(value):
        raise ValueError(f"{owner}.{name}=nan is not allowed")
    bad = math.isinf(value) and not allow_inf
    if lo is not None:
        bad |= value <= lo if lo_open else value < lo
    if hi is not None:
        bad |= value >= hi if hi_open else value > hi
    if bad:
        left = "(" if lo_open or lo is None else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        if not allow_inf and hi is None:
            right, hi_s = ")", "inf"
        raise ValueError(
            f"{owner}.{name}={value:g} is out of range; allowed {left}{lo_s}, {hi_s}{right}"
        )


def validate_risk_params(owner: str, ltv: float, lt: float, bonus: float) -> None:
    """The configuration invariants every parameter set keeps: ``LTV <= LT`` and ``LT * (1 + bonus) < 1``."""
    _check_range(owner, "ltv", ltv, 0.0, 1.0, lo_open=True, hi_open=True)
    _check_range(owner, "liquidation_threshold", lt, 0.0, 1.0, lo_open=True, hi_open=True)
    _check_range(owner, "liquidation_bonus", bonus, 0.0, 0.5)
    if ltv > lt:
        raise ValueError(
            f"{owner}.ltv={ltv:g} exceeds {owner}.liquidation_threshold={lt:g}; allowed ltv <= liquidation_threshold"
        )
    if lt * (1.0 + bonus) >= 1.0:
        raise ValueError(
            f"{owner}.liquidation_threshold * (1 + liquidation_bonus) = {lt * (1 + bonus):g} "
            f"(liquidation_threshold={lt:g}, liquidation_bonus={bonus:g}); allowed < 1"
        )


@dataclass(frozen=True)
class ProtocolParams:
    """Risk and interest-rate parameters of the lending market (one collateral, one debt asset)."""

    ltv: float = 0.825
    """Maximum loan-to-value at which a position may borrow (fraction of collateral value)."""
    liquidation_threshold: float = 0.86
    """Collateral weight in the health factor; HF < 1 makes a position liquidatable."""
    liquidation_bonus: float = 0.052
    """Extra collateral a liquidator seizes per unit of repaid debt (fraction)."""
    close_factor: float = 0.5
    """Share of debt a liquidator may repay in one call while HF is above ``full_close_hf``."""
    full_close_hf: float = 0.95
    """At or below this health factor the whole debt may be repaid in one call."""
    small_position_usd: float = 2000.0
    """Positions with debt below this value may be closed whole regardless of HF (Aave v3.3)."""
    protocol_fee_frac: float = 0.10
    """Share of the liquidation bonus taken by the protocol treasury."""
    base_rate_apr: float = 0.0
    """Borrow rate at zero utilization (per year)."""
    slope1_apr: float = 0.04
    """Borrow rate added from zero to optimal utilization (per year)."""
    slope2_apr: float = 0.75
    """Borrow rate added from optimal to full utilization (per year)."""
    optimal_utilization_frac: float = 0.90
    """Kink of the interest-rate curve."""
    reserve_factor_frac: float = 0.10
    """Share of interest paid to the protocol's reserves."""
    borrow_cap_usd: float = math.inf
    """Total debt (debt-asset units) above which no new borrowing is allowed."""
    supply_cap_asset: float = math.inf
    """Total collateral (asset units) above which no new collateral is supplied: arrivals and
    loopers' re-levering purchases are scaled down to the room left (Aave v3's supply cap);
    defensive top-ups of existing positions are let through."""

    def __post_init__(self) -> None:
        o = "protocol"
        validate_risk_params(o, self.ltv, self.liquidation_threshold, self.liquidation_bonus)
        _check_range(o, "close_factor", self.close_factor, 0.0, 1.0, lo_open=True)
        _check_range(o, "full_close_hf", self.full_close_hf, 0.0, 1.0)
        _check_range(o, "small_position_usd", self.small_position_usd, 0.0, MAX_USD)
        _check_range(o, "protocol_fee_frac", self.protocol_fee_frac, 0.0, 1.0)
        _check_range(o, "base_rate_apr", self.base_rate_apr, 0.0, 10.0)
        _check_range(o, "slope1_apr", self.slope1_apr, 0.0, 10.0)
        _check_range(o, "slope2_apr", self.slope2_apr, 0.0, 100.0)
        _check_range(
            o,
            "optimal_utilization_frac",
            self.optimal_utilization_frac,
            0.0,
            1.0,
            lo_open=True,
            hi_open=True,
        )
        _check_range(o, "reserve_factor_frac", self.reserve_factor_frac, 0.0, 1.0)
        _check_range(o, "borrow_cap_usd", self.borrow_cap_usd, 0.0, lo_open=True, allow_inf=True)
        _check_range(o, "supply_cap_asset", self.supply_cap_asset, 0.0, allow_inf=True)


ORACLE_KINDS = ("chainlink", "twap", "exact")


@dataclass(frozen=True)
class MarketParams:
    """The on-chain pool, the oracle, gas and keepers."""

    initial_price_usd: float = 2000.0
    """Fundamental price of the collateral asset at the start (synthetic scenarios)."""
    pool_depth_usd: float = 60e6
    """Debt-asset reserve of the constant-product pool where seized collateral is sold."""
    pool_fee_frac: float = 0.003
    """Swap fee (paid to liquidity providers outside the pool's reserves)."""
    arb_speed_frac: float = 0.5
    """Share of the log-gap between pool and fundamental that arbitrage closes per substep."""
    oracle_kind: str = "chainlink"
    """``chainlink`` (deviation threshold + heartbeat), ``twap`` (pool TWAP) or ``exact``."""
    oracle_deviation_frac: float = 0.005
    """Chainlink-style update when the source deviates from the answer by more than this."""
    oracle_heartbeat_h: float = 1.0
    """Chainlink-style update at least this often."""
    oracle_pool_weight_frac: float = 0.3
    """Weight of the on-chain pool in the oracle's source price (geometric blend with the fundamental)."""
    twap_window_substeps: int = 6
    """Length of the TWAP window (substeps)."""
    gas_units_per_liquidation: float = 400_000.0
    """Gas a liquidation with its swap costs."""
    keeper_capacity_per_substep: float = 200.0
    """Liquidations that fit in one substep at normal gas."""
    congestion_ref_gwei: float = 100.0
    """Above this gas price keeper capacity falls as ``ref / gas``."""
    max_cascade_rounds: int = 30
    """Upper bound on cascade rounds per substep."""
    keeper_max_slippage_frac: float = 0.02
    """Keepers size each liquidation call so that selling its collateral alone moves the pool by at
    most this much (Aave lets the liquidator choose the amount up to the close factor); large positions
    are then liquidated in several calls. 1 means no limit."""
    profitability_filter: bool = True
    """Liquidate only when the seized collateral, sold alone into the pool, pays for repay and gas.
    Off: every liquidatable position is liquidated (up to keeper capacity) whatever it pays."""
    keeper_venue_frac: float = 0.0
    """Share of keepers' sales routed off the on-chain pool (an aggregator route over deeper
    liquidity and CEX legs, lumped into one venue): sold at the fundamental price through a
    constant-product venue of depth ``keeper_venue_depth_usd`` that the pool's price never sees
    and that is full again at every cascade round. 0 (default): every sale goes to the pool."""
    keeper_venue_depth_usd: float = 500e6
    """Debt-asset depth of the off-pool venue (see ``keeper_venue_frac``)."""
    keeper_aggregator_depth_usd: float = 0.0
    """Debt-asset depth of the keepers' aggregator route (deeper on-chain liquidity reached
    through a router): a constant-product curve at the fundamental price that the pool's price
    never sees, full again at every cascade round. With it (or a CEX leg) keepers split every
    sale across the pool and these venues so that it returns the most (equal marginal prices,
    :func:`levgym.engine.rules.route_split`) instead of a fixed share. 0 (default): no route."""
    keeper_aggregator_fee_frac: float = 0.001
    """Fee of the aggregator route, on its input (the router's and its pools' fees)."""
    keeper_cex_depth_usd: float = 0.0
    """Debt-asset depth of the keepers' CEX leg: a constant-product curve at the fundamental
    price, full again at every cascade round, whose proceeds arrive late (see
    ``keeper_cex_latency_substeps``). 0 (default): no CEX leg."""
    keeper_cex_fee_frac: float = 0.001
    """Fee of the CEX leg (taker fee and the bridge / transfer cost), on its input."""
    keeper_cex_latency_substeps: float = 1.0
    """Mean delay, in substeps, before collateral routed to the CEX is sold there (the transfer
    and its confirmations). The keeper holds it meanwhile and sells at the fundamental price of
    the substep it fills in, so it bears the price move: each substep a share
    ``1 / latency`` of the held collateral fills (a geometric delay with this mean; one state
    field, ``keeper_cex_pending_asset``, instead of a queue). Keepers choose the split at the
    current fundamental (risk-neutral: the price is a martingale), so the latency moves the
    keepers' profit and inventory, not which liquidations happen. 0: sold at once; up to 1: all
    of it at the next substep."""

    def __post_init__(self) -> None:
        o = "market"
        _check_range(o, "initial_price_usd", self.initial_price_usd, 0.0, 1e9, lo_open=True)
        _check_range(o, "pool_depth_usd", self.pool_depth_usd, 0.0, MAX_USD, lo_open=True)
        _check_range(o, "pool_fee_frac", self.pool_fee_frac, 0.0, 0.1)
        _check_range(o, "arb_speed_frac", self.arb_speed_frac, 0.0, 1.0)
        if self.oracle_kind not in ORACLE_KINDS:
            raise ValueError(
                f"market.oracle_kind={self.oracle_kind!r} is unknown; allowed {', '.join(ORACLE_KINDS)}"
            )
        _check_range(o, "oracle_deviation_frac", self.oracle_deviation_frac, 0.0, 1.0)
        _check_range(o, "oracle_heartbeat_h", self.oracle_heartbeat_h, 0.0, 1e6, lo_open=True)
        _check_range(o, "oracle_pool_weight_frac", self.oracle_pool_weight_frac, 0.0, 1.0)
        _check_range(o, "twap_window_substeps", self.twap_window_substeps, 1, 10_000)
        _check_range(o, "gas_units_per_liquidation", self.gas_units_per_liquidation, 0.0, 1e9)
        _check_range(o, "keeper_capacity_per_substep", self.keeper_capacity_per_substep, 0.0, 1e9)
        _check_range(o, "congestion_ref_gwei", self.congestion_ref_gwei, 0.0, 1e7, lo_open=True)
        _check_range(o, "max_cascade_rounds", self.max_cascade_rounds, 1, 10_000)
        _check_range(
            o, "keeper_max_slippage_frac", self.keeper_max_slippage_frac, 0.0, 1.0, lo_open=True
        )
        _check_range(o, "keeper_venue_frac", self.keeper_venue_frac, 0.0, 1.0)
        _check_range(
            o, "keeper_venue_depth_usd", self.keeper_venue_depth_usd, 0.0, MAX_USD, lo_open=True
        )
        _check_range(
            o, "keeper_aggregator_depth_usd", self.keeper_aggregator_depth_usd, 0.0, MAX_USD
        )
        _check_range(o, "keeper_aggregator_fee_frac", self.keeper_aggregator_fee_frac, 0.0, 0.1)
        _check_range(o, "keeper_cex_depth_usd", self.keeper_cex_depth_usd, 0.0, MAX_USD)
        _check_range(o, "keeper_cex_fee_frac", self.keeper_cex_fee_frac, 0.0, 0.1)
        _check_range(o, "keeper_cex_latency_substeps", self.keeper_cex_latency_substeps, 0.0, 1e6)
        if self.keeper_split and self.keeper_venue_frac > 0.0:
            raise ValueError(
                f"market.keeper_venue_frac={self.keeper_venue_frac:g} with "
                "market.keeper_aggregator_depth_usd or market.keeper_cex_depth_usd > 0; allowed "
                "one routing: the fixed share to one venue, or the split across the aggregator "
                "route and the CEX leg (set keeper_venue_frac=0)"
            )
        if not isinstance(self.profitability_filter, bool):
            raise ValueError(
                f"market.profitability_filter={self.profitability_filter!r}; allowed true or false"
            )

    @property
    def keeper_split(self) -> bool:
        """Keepers split their sales across the pool, the aggregator route and the CEX leg
        (either has a depth)."""
        return self.keeper_aggregator_depth_usd > 0.0 or self.keeper_cex_depth_usd > 0.0

    @property
    def keeper_cex_fill_frac(self) -> float:
        """Share of the collateral held for the CEX that fills each substep (1 / latency; 1
        without latency)."""
        lat = self.keeper_cex_latency_substeps
        return 1.0 if lat <= 1.0 else 1.0 / lat

    @property
    def keeper_chunk_ratio(self) -> float:
        """Largest sale a keeper makes in one call, as a multiple of the pool's asset reserve."""
        s = self.keeper_max_slippage_frac
        return math.inf if s >= 1.0 else s / (1.0 - s)

    @property
    def oracle_kind_code(self) -> int:
        return ORACLE_KINDS.index(self.oracle_kind)


@dataclass(frozen=True)
class BorrowerParams:
    """The book of positions: sizes, initial health, behaviour mix, arrivals and exits."""

    total_collateral_usd: float = 300e6
    """Collateral value of the initial book (sum over active slots)."""
    size_pareto_alpha: float = 1.2
    """Tail index of position sizes (Pareto); ~1.2 puts most debt in a few whales."""
    initial_active_frac: float = 0.9
    """Share of slots holding a position at the start; the rest are free for arrivals."""
    hf_floor: float = 1.03
    """Initial health factors are ``hf_floor + LogNormal(log(hf_median_excess), hf_sigma)``."""
    hf_median_excess: float = 0.45
    """Median of the initial health factor above ``hf_floor``."""
    hf_sigma: float = 0.6
    """Log-spread of the initial health factor excess."""
    hf_vol_elasticity: float = 0.0
    """Where the drawing knows the recent realized volatility (``levgym validate``, replays with
    earlier rows), the median excess scales by ``(vol / hf_vol_ref_annual) ** hf_vol_elasticity``:
    borrowers keep more room after a volatile fortnight. 0 = no dependence."""
    hf_vol_ref_annual: float = 1.0
    """Annualized volatility at which the median excess is ``hf_median_excess``."""
    passive_frac: float = 0.5
    """Share of slots that never act."""
    defensive_frac: float = 0.3
    """Share of slots that top up or repay when their HF falls below a trigger."""
    looper_frac: float = 0.2
    """Share of slots that re-lever when healthy and deleverage through the pool when not."""
    trigger_hf_min: float = 1.05
    """Defensive trigger health factors are uniform in [trigger_hf_min, trigger_hf_max]."""
    trigger_hf_max: float = 1.30
    """See ``trigger_hf_min``."""
    defend_target_gap: float = 0.30
    """A defensive position restores ``HF = trigger + defend_target_gap``."""
    repay_share_frac: float = 0.5
    """Share of defensive slots that repay debt (the others add collateral)."""
    react_prob_min: float = 0.05
    """Per-substep reaction probabilities are uniform in [react_prob_min, react_prob_max]."""
    react_prob_max: float = 0.5
    """See ``react_prob_min``."""
    reaction_gas_ref_gwei: float = 150.0
    """Reaction probabilities are divided by ``1 + gas / reaction_gas_ref_gwei``."""
    looper_target_hf_min: float = 1.15
    """Looper target health factors are uniform in [looper_target_hf_min, looper_target_hf_max]."""
    looper_target_hf_max: float = 1.40
    """See ``looper_target_hf_min``."""
    relever_band_frac: float = 0.15
    """Loopers re-lever when ``HF > target * (1 + relever_band_frac)``."""
    delever_frac: float = 0.5
    """Loopers deleverage when ``HF < 1 + delever_frac * (target - 1)``."""
    arrival_rate_per_h: float = 0.01
    """Hourly probability that a free slot receives a new borrower at reference LTV and rate."""
    exit_rate_per_h: float = 0.002
    """Hourly probability that a position repays and leaves at reference LTV and rate."""
    ltv_elasticity: float = 20.0
    """Arrival odds scale by ``exp(ltv_elasticity * (ltv - ltv_ref))``; exits by the inverse."""
    rate_elasticity: float = 10.0
    """Arrival odds scale by ``exp(-rate_elasticity * (borrow_rate - rate_ref_apr))``."""
    ltv_ref: float = 0.825
    """LTV at which arrival and exit rates take their base values."""
    rate_ref_apr: float = 0.05
    """Borrow rate at which arrival and exit rates take their base values."""
    initial_utilization_frac: float = 0.75
    """Lenders' supply is set so the initial book borrows this share of it."""
    initial_reserves_frac: float = 0.01
    """Reserves at the start as a share of the initial debt."""

    def __post_init__(self) -> None:
        o = "borrowers"
        _check_range(
            o, "total_collateral_usd", self.total_collateral_usd, 0.0, MAX_USD, lo_open=True
        )
        _check_range(o, "size_pareto_alpha", self.size_pareto_alpha, 0.5, 10.0)
        _check_range(o, "initial_active_frac", self.initial_active_frac, 0.0, 1.0, lo_open=True)
        _check_range(o, "hf_floor", self.hf_floor, 1.0, 10.0)
        _check_range(o, "hf_median_excess", self.hf_median_excess, 0.0, 100.0, lo_open=True)
        _check_range(o, "hf_sigma", self.hf_sigma, 0.0, 5.0)
        _check_range(o, "hf_vol_elasticity", self.hf_vol_elasticity, -5.0, 5.0)
        _check_range(o, "hf_vol_ref_annual", self.hf_vol_ref_annual, 0.0, 100.0, lo_open=True)
        for name in (
            "passive_frac",
            "defensive_frac",
            "looper_frac",
            "repay_share_frac",
            "delever_frac",
        ):
            _check_range(o, name, getattr(self, name), 0.0, 1.0)
        total = self.passive_frac + self.defensive_frac + self.looper_frac
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                f"borrowers.passive_frac + defensive_frac + looper_frac = {total:g}; allowed exactly 1"
            )
        _check_range(o, "trigger_hf_min", self.trigger_hf_min, 1.0, 10.0)
        _check_range(o, "trigger_hf_max", self.trigger_hf_max, self.trigger_hf_min, 10.0)
        _check_range(o, "defend_target_gap", self.defend_target_gap, 0.0, 10.0, lo_open=True)
        _check_range(o, "react_prob_min", self.react_prob_min, 0.0, 0.5)
        _check_range(o, "react_prob_max", self.react_prob_max, self.react_prob_min, 0.5)
        _check_range(o, "reaction_gas_ref_gwei", self.reaction_gas_ref_gwei, 0.0, 1e7, lo_open=True)
        _check_range(o, "looper_target_hf_min", self.looper_target_hf_min, 1.0, 10.0, lo_open=True)
        _check_range(
            o, "looper_target_hf_max", self.looper_target_hf_max, self.looper_target_hf_min, 10.0
        )
        _check_range(o, "relever_band_frac", self.relever_band_frac, 0.0, 10.0)
        _check_range(o, "arrival_rate_per_h", self.arrival_rate_per_h, 0.0, 1.0)
        _check_range(o, "exit_rate_per_h", self.exit_rate_per_h, 0.0, 1.0)
        _check_range(o, "ltv_elasticity", self.ltv_elasticity, 0.0, 1000.0)
        _check_range(o, "rate_elasticity", self.rate_elasticity, 0.0, 1000.0)
        _check_range(o, "ltv_ref", self.ltv_ref, 0.0, 1.0, lo_open=True, hi_open=True)
        _check_range(o, "rate_ref_apr", self.rate_ref_apr, 0.0, 10.0)
        _check_range(
            o, "initial_utilization_frac", self.initial_utilization_frac, 0.0, 1.0, lo_open=True
        )
        _check_range(o, "initial_reserves_frac", self.initial_reserves_frac, 0.0, 10.0)


@dataclass(frozen=True)
class RunParams:
    """Time discretization of a simulation."""

    substeps_per_step: int = 6
    """Blocks of time per governance period (env step)."""
    substep_h: float = 1.0 / 6.0
    """Length of one substep in hours (default 10 minutes)."""
    warmup_h: float = 0.0
    """Hours the drawn book lives before t = 0 (``simulate``, ``validate``): a replayed CSV's
    earlier rows, or a calm burn-in before a synthetic scenario; counters start at t = 0. The
    envs ignore it: their own ``warmup_h`` argument (default 0) starts episodes from cached
    warmed books (:mod:`levgym.warm`)."""
    arrival_drawdown: float = 0.0
    """Elasticity of new borrowing to the trailing drawdown in replays of real prices
    (``--price-csv`` in ``simulate`` and ``stress``, and ``validate``'s days): the arrival rate
    times ``(price / highest price of the 720 h before) ** arrival_drawdown``
    (:func:`levgym.scenarios.processes.drawdown_mult`), warm-up included. 0: no response.
    Synthetic scenarios and the envs ignore it."""

    def __post_init__(self) -> None:
        _check_range("run", "substeps_per_step", self.substeps_per_step, 1, 10_000)
        _check_range("run", "substep_h", self.substep_h, 0.0, 24.0, lo_open=True)
        _check_range("run", "warmup_h", self.warmup_h, 0.0, 1440.0)
        _check_range("run", "arrival_drawdown", self.arrival_drawdown, 0.0, 20.0)

    @property
    def step_h(self) -> float:
        return self.substeps_per_step * self.substep_h


@dataclass(frozen=True)
class EngineParams:
    """Everything the engine needs that does not change within a run."""

    protocol: ProtocolParams = field(default_factory=ProtocolParams)
    market: MarketParams = field(default_factory=MarketParams)
    borrowers: BorrowerParams = field(default_factory=BorrowerParams)
    run: RunParams = field(default_factory=RunParams)


PRESETS: dict[str, ProtocolParams] = {
    # Aave v3 Ethereum WETH at launch.
    "aave_v3_weth": ProtocolParams(),
    # Compound v3 (Comet) USDC market's WETH factors under the single-asset engine's Aave-style
    # liquidation: borrow CF 0.825, liquidation CF 0.895, liquidation factor 0.95 (a 5%
    # discount), close factor 1 (Comet takes the whole position). Comet's own rules (absorb,
    # buyCollateral) are the `compound_v3_usdc` protocol of `--protocols`. Named `compound_v3`
    # before round two (PRESET_ALIASES).
    "aave_v3_weth_comet_params": ProtocolParams(
        ltv=0.825,
        liquidation_threshold=0.895,
        liquidation_bonus=0.05,
        close_factor=1.0,
        full_close_hf=1.0,
        protocol_fee_frac=0.0,
        base_rate_apr=0.0,
        slope1_apr=0.05,
        slope2_apr=1.0,
        optimal_utilization_frac=0.9,
        reserve_factor_frac=0.15,
    ),
    # A safer fixed set: lower LT and LTV, larger bonus to keep keepers interested.
    "conservative": ProtocolParams(ltv=0.70, liquidation_threshold=0.75, liquidation_bonus=0.075),
    # Aave v2 Ethereum WETH collateral against stablecoin debt (2021): LTV 0.80, LT 0.825, bonus
    # 5%; the close factor is always 50% (no full close, no small-position rule) and v2 takes no
    # protocol fee on the bonus; the USDC rate curve (optimal 90%, slopes 4% / 60%).
    "aave_v2_weth": ProtocolParams(
        ltv=0.80,
        liquidation_threshold=0.825,
        liquidation_bonus=0.05,
        close_factor=0.5,
        full_close_hf=0.0,
        small_position_usd=0.0,
        protocol_fee_frac=0.0,
        slope1_apr=0.04,
        slope2_apr=0.60,
        optimal_utilization_frac=0.90,
        reserve_factor_frac=0.10,
    ),
}

BOOK_PRESETS: dict[str, dict[str, dict[str, float | int | bool | str]]] = {
    # The book and keepers fitted on Aave v2's WETH liquidations of 2020-12 .. 2021-03 by
    # `levgym calibrate` (levgym.analytics.validation.fit; ASSUMPTIONS.md, "Fidelity"). Chainlink
    # reads centralized exchanges: the on-chain pool carries no weight in the oracle.
    "aave_v2_weth": {
        "market": {
            "oracle_pool_weight_frac": 0.0,
            "pool_depth_usd": 80e6,
            "keeper_venue_frac": 0.9,
            "keeper_venue_depth_usd": 2e8,
        },
        "borrowers": {
            "hf_floor": 1.0,
            "hf_median_excess": 0.3,
            "hf_sigma": 1.0,
            "size_pareto_alpha": 1.6,
            "arrival_rate_per_h": 0.018,
            "exit_rate_per_h": 0.002,
            "total_collateral_usd": 50.2e6,
            "looper_frac": 0.2,
            "passive_frac": 0.5,
            # Loopers that ride nearer the edge (targets 1.10-1.40, re-lever 5% above target):
            # the held-out protocol's choice (docs/fidelity.md, "Loopers nearer the edge").
            "looper_target_hf_min": 1.10,
            "relever_band_frac": 0.05,
        },
        "run": {"warmup_h": 336.0, "arrival_drawdown": 8.0},
    },
}
"""Non-protocol sections of a preset (market, borrowers, run), as ``section -> key -> value``:
a preset named here sets these too (:func:`preset_params`); the others only set the protocol."""


PRESET_ALIASES: dict[str, str] = {"compound_v3": "aave_v3_weth_comet_params"}
"""Old preset names still accepted, with a FutureWarning naming the new one: ``compound_v3``
ran Aave-style mechanics with Comet's factors, so its name now says so (the output contract's
``<rules>_<version>_<market>`` scheme), and ``compound_v3_usdc`` is Comet's own rules."""


def resolve_preset_name(name: str) -> str:
    """``name``, or the new name of an old one (:data:`PRESET_ALIASES`, with a FutureWarning)."""
    if name in PRESET_ALIASES:
        import warnings

        new = PRESET_ALIASES[name]
        warnings.warn(
            f"preset {name!r} is renamed {new!r} (Aave-style liquidation with Comet's WETH "
            "factors; Comet's own rules: --protocols compound_v3_usdc)",
            FutureWarning,
            stacklevel=3,
        )
        return new
    return name


def preset(name: str) -> ProtocolParams:
    """The protocol preset called ``name`` (an old name of :data:`PRESET_ALIASES` too)."""
    name = resolve_preset_name(name)
    if name not in PRESETS:
        raise ValueError(
            f"preset {name!r} is unknown{closest_hint(name, PRESETS)}; allowed {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[name]


def preset_params(name: str) -> EngineParams:
    """All engine parameters of the preset ``name``: its protocol and, for a preset of
    :data:`BOOK_PRESETS`, its market, book and run values."""
    name = resolve_preset_name(name)
    params = EngineParams(protocol=preset(name))
    sections = BOOK_PRESETS.get(name, {})
    parts = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for section, values in sections.items():
        parts[section] = dataclasses.replace(parts[section], **values)
    return EngineParams(**parts)


def _coerce(current: Any, raw: str, key: str) -> Any:
    if isinstance(current, bool):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{key}={raw!r} must be true or false")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            pass
        try:  # 1e3 and 2.0 are whole numbers too
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value.is_integer()):
            raise ValueError(f"{key}={raw!r} must be an integer")
        return int(value)
    if isinstance(current, float):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} must be a number") from None
        if math.isnan(value):
            raise ValueError(f"{key}=nan is not allowed")
        return value
    return raw


def override(obj: Any, section: str, key: str, raw: str) -> Any:
    """Return ``obj`` (a frozen dataclass) with field ``key`` set from the string ``raw``."""
    return override_many(obj, section, {key: raw})


def override_many(obj: Any, section: str, raws: Mapping[str, str]) -> Any:
    """Return ``obj`` (a frozen dataclass) with every field of ``raws`` set from its string, then
    validated once, so that fields checked against each other (``ltv <= liquidation_threshold``)
    may move together in any order."""
    names = [f.name for f in dataclasses.fields(obj)]
    values = {}
    for key, raw in raws.items():
        if key not in names:
            raise ValueError(
                f"unknown key {section}.{key}{closest_hint(key, names)}; "
                f"allowed {section}.{{{', '.join(names)}}}"
            )
        values[key] = _coerce(getattr(obj, key), raw, f"{section}.{key}")
    return dataclasses.replace(obj, **values)
