"""The multi-asset lending market step: cross-margin positions ``[E, N, K]``, one pool per asset
against USDC, per-asset oracles, interest per reserve and the liquidation cascade.

One substep (:func:`substep`), in this order:

1. **Prices**: the fundamental USD price of every reserve ``[E, K]`` is read from a
   :class:`~levgym.scenarios.multiasset.MultiAssetPaths` row (:func:`fundamentals_from_paths`:
   wstETH is the stETH path times the exchange ratio).
2. **Arbitrage**: every non-USDC reserve has one constant-product pool against **USDC, the quote
   token**; volatile assets (WETH, wstETH, WBTC, ...) trade in pools of depth
   ``volatile_pool_depth_usd``, the other stablecoins (USDT, DAI) in the *stable pool*: one
   constant-product leg per stablecoin against USDC, deeper (``stable_pool_depth_usd``) and
   cheaper (``stable_pool_fee_frac``). Arbitrage closes ``arb_speed_frac`` of each pool's log gap
   to ``fundamental_k / fundamental_USDC`` with the single-asset rule
   :func:`levgym.engine.rules.arbitrage`.
3. **Oracles**: the oracle's market source is the single-asset blend
   :func:`levgym.engine.rules.oracle_source` of the fundamental and the pool (USDC: the
   fundamental); :func:`levgym.engine.portfolio.oracle_prices_usd` turns it into each reserve's
   oracle (market, exchange-rate with growth cap, pinned or capped stablecoin), each reserve's
   market source first passing its feed (:func:`feed_update`, ``OracleConfig.feed``: ``exact``
   reads at once, ``chainlink`` updates on its deviation threshold or, between blocks, its
   heartbeat, ``twap`` the mean pool price over ``twap_window_substeps``, never within a
   block, all by :func:`levgym.engine.rules.oracle_update`).
4. **Interest**: each reserve's debt grows at its kinked curve's rate
   (:func:`levgym.engine.portfolio.borrow_rates_apr` on utilization = borrowers' debt / lenders'
   supply, :func:`levgym.engine.rules.interest_growth`); the reserve factor's share goes to the
   treasury, the rest to the lenders' supply.
4b. **Borrowers**: with ``active`` flags in the state and an exit or arrival rate, exits first
   and the arrivals' draw (:func:`levgym.engine.portfolio_borrowers.exit_and_arrive`; the
   arrivals come in with the loopers' purchases); then
   (:func:`levgym.engine.portfolio_borrowers.defend`) defensive positions below
   their trigger HF top up collateral or repay debt within their outside funds (default
   ``borrowers.defensive_frac = 0``: none, the books are passive); then loopers
   (:func:`levgym.engine.portfolio_borrowers.loop`, default ``borrowers.looper_frac = 0``:
   none) re-lever or deleverage through the pools, and the oracles read the moved pools within
   the block (:func:`read_in_block`).
5. **Liquidation cascade**: up to ``max_cascade_rounds`` rounds. In a round every position with
   HF < 1 gets the keeper's call (:func:`levgym.engine.portfolio.liquidate`, or its numba twin
   :func:`levgym.engine.portfolio_fused.liquidate_fused`): the most profitable (collateral i,
   debt j) pair at the oracle, v3.3's close factor and leftover rule, the protocol fee to the
   treasury and v3.3's deficit when the last collateral goes. **Routing**: the keeper sells the
   collateral it receives into pool ``i`` for USDC (nothing to sell when ``i`` is USDC) and buys
   the repaid debt ``j`` with USDC from pool ``j`` (exact-out, :func:`buy_exact_out`; nothing to
   buy when ``j`` is USDC). Which calls are made is the single-asset engine's selection
   (:func:`select_calls`): ranked by their USD result alone at the pools before the round,
   filtered by ``profitability_filter`` (default: that result is positive), the round's
   purchases of one asset below ``max_round_buy_frac`` of that pool's reserve and at most the
   keeper capacity left, in rank order (later ones wait for the next round); calls may be
   chunked (``keeper_max_slippage_frac``, :func:`chunk_max_repay`) and pay gas
   (:func:`keeper_gas_usd`). The round's sales into a pool are one bundled sale, then its
   purchases one bundled purchase; the oracles are read again from the moved pools and the next
   round starts. The cascade stops when no env liquidates. With off-pool venues
   (``keeper_venue_frac``, or an aggregator route or CEX leg: :func:`keeper_routes`) each sale
   is priced and made across the pool and the venues by the single-asset rules
   (:func:`routed_sale_out`, :func:`route_sales`); collateral held for a CEX leg with latency
   fills before the cascade (:func:`cex_fills`).
6. **Deficits**: a position left with debt and no collateral has its debt burnt into the
   reserves' deficits (:func:`levgym.engine.portfolio.write_off_deficit`), counted in
   ``deficit_asset``.
7. **Deficit coverage** (:func:`levgym.engine.portfolio_treasury.cover_deficit`, v3.3's
   ``eliminateReserveDeficit``): with ``deficit_cover = "treasury_each_step"`` the treasury's
   revenue of each reserve covers that reserve's outstanding deficit; with
   ``"reserves_then_lenders"`` (the single-asset engine's accounting) the treasury of the
   reserve pays what it can and its lenders the rest; with ``"none"`` (the default) a deficit
   stays on the books.
8. **Statistics** (``statistics``, off by default: :func:`keep_statistics`): each reserve's
   lowest fundamental and pool price so far, the positions liquidated at least once.

Defensive borrowers add collateral and repay (step 4b), and with ``borrowers.rebalance`` also
withdraw and borrow. Accounting per asset, in
asset units: ``collateral: initial + added - withdrawn - seized = final`` and ``debt: initial +
borrowed + interest - repaid_by_borrowers - repaid_by_liquidators - written_off = final``
(:func:`accounting_gaps`), and the treasury's ``treasury_interest + protocol_fee -
deficit_covered = treasury`` (:func:`levgym.engine.portfolio_treasury.treasury_gap`).
``reference_portfolio.ref_substep`` is the naive loop twin; ``substep(...,
backend="numba")`` runs the same phases as one compiled kernel over the same rule functions
(:mod:`levgym.engine.portfolio_market_fused`, the borrower phase included).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rules as R
from . import stableswap as SS
from .ops import where
from .params import _check_range
from .portfolio import (
    Reserves,
    borrow_rates_apr,
    effective_risk,
    liquidate,
    no_collateral_value,
    oracle_prices_usd,
    write_off_deficit,
)
from .portfolio_borrowers import (
    PortfolioBorrowerParams,
    defend,
    exit_and_arrive,
    loop,
    turnover_drivers,
    turnover_on,
)
from .portfolio_treasury import check_deficit_cover, cover_deficit

QUOTE_SYMBOL = "USDC"
"""The quote token of every pool: the market needs a USDC reserve."""
STABLE_SYMBOLS = ("USDC", "USDT", "DAI")
"""Reserves that trade in the stable pool (against USDC)."""
LST_BASE = {"wstETH": "stETH"}
"""Reserves priced from another path symbol times their exchange ratio."""
DEFAULT_EXCHANGE_RATIO = {"wstETH": 1.21}
"""stETH per wstETH at the start (Lido's ``stEthPerToken``, about 1.21 in late 2025)."""
STABLE_POOLS = ("cpmm", "stableswap")
"""Curves of the stable pool's legs (:attr:`PortfolioMarketParams.stable_pool`)."""


MIN_CLOSE_BY = ("pair", "position_debt")
"""``PortfolioMarketParams.min_close_by``'s values."""
KEEPER_FILTERS = ("alone", "in_block", "off")
"""``PortfolioMarketParams.profitability_filter``'s values (:func:`select_calls`)."""
GAS_SYMBOL = "WETH"
"""The reserve whose fundamental prices gas (ETH)."""


@dataclass(frozen=True)
class PortfolioMarketParams:
    """Market parameters of the multi-asset step (units in the names)."""

    substep_h: float = 1.0
    """Hours per substep (interest accrues over it)."""
    volatile_pool_depth_usd: float = 60e6
    """USDC reserve (USD at start) of each volatile asset's pool (the single-asset default)."""
    stable_pool_depth_usd: float = 200e6
    """USDC reserve (USD at start) of each leg of the stable pool."""
    pool_fee_frac: float = 0.003
    """Swap fee of a volatile pool (to liquidity providers, outside the reserves)."""
    stable_pool_fee_frac: float = 0.0001
    """Swap fee of the stable pool."""
    arb_speed_frac: float = 0.5
    """Share of each pool's log gap to the fundamental that arbitrage closes per substep."""
    oracle_pool_weight_frac: float = 0.0
    """Weight of the pool in a market oracle's source (geometric blend with the fundamental)."""
    initial_utilization_frac: float = 0.8
    """Lenders' supply at the start is ``total debt / this`` for each borrowed reserve."""
    max_cascade_rounds: int = 10
    gas_usd_per_call: float = 0.0
    """Gas a keeper pays per call (USD); 0 = no gas."""
    max_round_buy_frac: float = 0.5
    """A round's purchases of one asset take at most this share of its pool's reserve."""
    deficit_cover: str = "none"
    """When the treasury covers deficits (:mod:`levgym.engine.portfolio_treasury`): ``none``,
    ``treasury_each_step`` or ``reserves_then_lenders`` (the single-asset engine's accounting:
    the treasury of the reserve first, then its lenders, whose supply falls)."""
    borrowers: PortfolioBorrowerParams = PortfolioBorrowerParams()
    """Borrower behaviour (:mod:`levgym.engine.portfolio_borrowers`; default passive)."""
    twap_window_substeps: int = 6
    """Substeps a ``twap`` feed averages (the pool price at each, the fundamental for USDC)."""
    gas_units_per_call: float = 0.0
    """Gas one keeper call uses, paid in ETH: ``gas_price_gwei * 1e-9 * units`` times the WETH
    fundamental (the single-asset ``market.gas_units_per_liquidation``, priced by
    :func:`levgym.engine.rules.gas_cost_usd`); added to ``gas_usd_per_call``. 0 = none."""
    gas_price_gwei: float = 30.0
    """Gas price (gwei) when :func:`substep` is given none (``gas_gwei``)."""
    keeper_capacity_per_substep: float = math.inf
    """Keeper calls that fit in one substep at normal gas, taken by profit rank across the
    cascade's rounds (the single-asset ``market.keeper_capacity_per_substep``, by
    :func:`levgym.engine.rules.keeper_capacity`); ``inf`` (default) = no limit."""
    congestion_ref_gwei: float = 100.0
    """Above this gas price the keeper capacity falls as ``ref / gas``."""
    keeper_max_slippage_frac: float = 1.0
    """Keepers size each call so that selling its collateral alone moves that asset's pool by at
    most this much (the single-asset ``market.keeper_max_slippage_frac``: the seized collateral
    at most ``s / (1 - s)`` of the pool's asset reserve, :func:`levgym.engine.rules.chunk_repay`;
    USDC collateral has no pool and no limit); large positions are then liquidated over several
    calls. 1 (default) = no limit."""
    profitability_filter: str = "alone"
    """Which calls the keepers make (:func:`select_calls`): ``alone`` (default) the calls whose
    result at the round's pools, each priced alone, is positive; ``in_block`` the single-asset
    engine's filter: each call priced after the trades of the calls ranked above it (by their
    result alone) in the same pools, made when that is positive; ``off`` every liquidatable
    position's call (the single-asset ``profitability_filter=false``)."""
    stable_pool: str = "cpmm"
    """The stable pool's curve (:data:`STABLE_POOLS`): ``cpmm``, one constant-product leg per
    stablecoin against USDC (the envs' and the multi-protocol step's), or ``stableswap``, one
    two-coin Curve StableSwap leg per stablecoin (:mod:`levgym.engine.stableswap`; the
    ``aave_v3_ethereum`` preset's, :data:`levgym.simulation_portfolio.PRESET_MARKET`)."""
    stable_pool_amp: float = 2000.0
    """Amplification ``A`` of the StableSwap legs (Curve's ``A()``; 3pool's, ASSUMPTIONS.md)."""
    close_factor: float = 0.5
    """Share of the position's total debt (USD) one call may repay while the close factor binds
    (v3.3's 50 %; the single-asset ``protocol.close_factor``: 1 for ``aave_v3_weth_comet_params``)."""
    full_close_hf: float = 0.95
    """At or below this HF a call may repay all of the pair's debt (v3.3's 0.95; the single-asset
    ``protocol.full_close_hf``: 0 for ``aave_v2_weth``, no full close)."""
    min_close_usd: float = 2000.0
    """Below this size a call may repay all of the pair's debt (v3.3's $2,000; the single-asset
    ``protocol.small_position_usd``: 0 for ``aave_v2_weth``)."""
    min_close_by: str = "pair"
    """What ``min_close_usd`` is compared with (:data:`MIN_CLOSE_BY`): ``pair``, the pair's
    collateral and its debt (v3.3), or ``position_debt``, the position's total debt (the
    single-asset engine's ``small_position_usd``)."""
    leftover_usd: float = 1000.0
    """v3.3's leftover rule: a call that clears neither the pair's debt nor its collateral must
    leave at least this much (USD) of each (``MUST_NOT_LEAVE_DUST``); 0 = no rule (the
    single-asset engine's)."""
    keeper_venue_frac: float = 0.0
    """Share of the keepers' sale of each collateral routed off its pool, to a constant-product
    venue of depth ``keeper_venue_depth_usd`` at the fundamental price that the pool never sees,
    full again every round (the single-asset ``market.keeper_venue_frac``,
    :func:`keeper_routes`); 0 (default): every sale goes to the pool. Sales only: the debt
    bought back comes from its pool."""
    keeper_venue_depth_usd: float = 500e6
    """USDC depth of that venue (per collateral asset; the single-asset
    ``market.keeper_venue_depth_usd``)."""
    keeper_aggregator_depth_usd: float = 0.0
    """USDC depth of the keepers' aggregator route per collateral asset (the single-asset
    ``market.keeper_aggregator_depth_usd``): with it or a CEX leg the keepers split each sale
    across the pool, the route and the leg where it returns the most
    (:func:`levgym.engine.rules.route_split`). 0 (default): none."""
    keeper_aggregator_fee_frac: float = 0.001
    """Fee of the aggregator route, on its input."""
    keeper_cex_depth_usd: float = 0.0
    """USDC depth of the keepers' CEX leg per collateral asset (the single-asset
    ``market.keeper_cex_depth_usd``); its proceeds arrive late (``keeper_cex_latency_substeps``:
    the collateral is held in ``PortfolioState.keeper_cex_pending_asset`` and sold at the
    fundamental of the substep it fills in). 0 (default): none."""
    keeper_cex_fee_frac: float = 0.001
    """Fee of the CEX leg, on its input."""
    keeper_cex_latency_substeps: float = 1.0
    """Mean delay (substeps) of the CEX leg: each substep ``keeper_cex_fill_frac`` of what is held
    fills (:func:`levgym.engine.rules.cex_fill_asset`); 0: sold at once."""
    statistics: bool = False
    """Keep the single-asset engine's run statistics in the state (:func:`keep_statistics`):
    each reserve's lowest fundamental and pool price so far (``fundamental_min_usd``,
    ``pool_min_usd`` ``[E, K]``) and the positions liquidated at least once
    (``ever_liquidated`` ``[E, N]``). False (default): not kept (None)."""

    def __post_init__(self) -> None:
        o = "portfolio_market"
        _check_range(o, "substep_h", self.substep_h, 0.0, 24.0 * 365.0, lo_open=True)
        _check_range(o, "volatile_pool_depth_usd", self.volatile_pool_depth_usd, 0.0, 1e13, lo_open=True)  # fmt: skip
        _check_range(o, "stable_pool_depth_usd", self.stable_pool_depth_usd, 0.0, 1e13, lo_open=True)  # fmt: skip
        _check_range(o, "pool_fee_frac", self.pool_fee_frac, 0.0, 0.1)
        _check_range(o, "stable_pool_fee_frac", self.stable_pool_fee_frac, 0.0, 0.1)
        _check_range(o, "arb_speed_frac", self.arb_speed_frac, 0.0, 1.0)
        _check_range(o, "oracle_pool_weight_frac", self.oracle_pool_weight_frac, 0.0, 1.0)
        _check_range(o, "initial_utilization_frac", self.initial_utilization_frac, 0.0, 1.0, lo_open=True)  # fmt: skip
        if not isinstance(self.max_cascade_rounds, int) or self.max_cascade_rounds < 1:
            raise ValueError(
                f"{o}.max_cascade_rounds={self.max_cascade_rounds!r}; allowed an integer >= 1"
            )
        _check_range(o, "gas_usd_per_call", self.gas_usd_per_call, 0.0, 1e6)
        _check_range(o, "max_round_buy_frac", self.max_round_buy_frac, 0.0, 1.0, lo_open=True, hi_open=True)  # fmt: skip
        check_deficit_cover(self.deficit_cover)
        if not isinstance(self.borrowers, PortfolioBorrowerParams):
            raise ValueError(f"{o}.borrowers={self.borrowers!r} must be a PortfolioBorrowerParams")
        if not isinstance(self.twap_window_substeps, int) or self.twap_window_substeps < 1:
            raise ValueError(
                f"{o}.twap_window_substeps={self.twap_window_substeps!r}; allowed an integer >= 1"
            )
        _check_range(o, "gas_units_per_call", self.gas_units_per_call, 0.0, 1e9)
        _check_range(o, "gas_price_gwei", self.gas_price_gwei, 0.0, 1e7)
        _check_range(o, "keeper_capacity_per_substep", self.keeper_capacity_per_substep, 0.0, allow_inf=True)  # fmt: skip
        _check_range(o, "congestion_ref_gwei", self.congestion_ref_gwei, 0.0, 1e7, lo_open=True)
        _check_range(o, "keeper_max_slippage_frac", self.keeper_max_slippage_frac, 0.0, 1.0, lo_open=True)  # fmt: skip
        if self.profitability_filter not in KEEPER_FILTERS:
            raise ValueError(
                f"{o}.profitability_filter={self.profitability_filter!r}; allowed "
                f"{', '.join(KEEPER_FILTERS)}"
            )
        if self.stable_pool not in STABLE_POOLS:
            raise ValueError(
                f"{o}.stable_pool={self.stable_pool!r} is not allowed; allowed {list(STABLE_POOLS)}"
            )
        _check_range(o, "stable_pool_amp", self.stable_pool_amp, 1.0, 1e6)
        _check_range(o, "close_factor", self.close_factor, 0.0, 1.0, lo_open=True)
        _check_range(o, "full_close_hf", self.full_close_hf, 0.0, 1.0)
        _check_range(o, "min_close_usd", self.min_close_usd, 0.0, 1e12)
        if self.min_close_by not in MIN_CLOSE_BY:
            raise ValueError(
                f"{o}.min_close_by={self.min_close_by!r} is not allowed; allowed "
                f"{', '.join(MIN_CLOSE_BY)}"
            )
        _check_range(o, "leftover_usd", self.leftover_usd, 0.0, 1e12)
        _check_range(o, "keeper_venue_frac", self.keeper_venue_frac, 0.0, 1.0)
        _check_range(o, "keeper_venue_depth_usd", self.keeper_venue_depth_usd, 0.0, 1e13, lo_open=True)  # fmt: skip
        _check_range(o, "keeper_aggregator_depth_usd", self.keeper_aggregator_depth_usd, 0.0, 1e13)  # fmt: skip
        _check_range(o, "keeper_aggregator_fee_frac", self.keeper_aggregator_fee_frac, 0.0, 0.1)
        _check_range(o, "keeper_cex_depth_usd", self.keeper_cex_depth_usd, 0.0, 1e13)
        _check_range(o, "keeper_cex_fee_frac", self.keeper_cex_fee_frac, 0.0, 0.1)
        _check_range(o, "keeper_cex_latency_substeps", self.keeper_cex_latency_substeps, 0.0, 1e6)
        if not isinstance(self.statistics, bool):
            raise ValueError(f"{o}.statistics={self.statistics!r}; allowed true or false")
        if self.keeper_split and self.keeper_venue_frac > 0.0:
            raise ValueError(
                f"{o}.keeper_venue_frac={self.keeper_venue_frac:g} with "
                f"{o}.keeper_aggregator_depth_usd or keeper_cex_depth_usd > 0; allowed one "
                "routing: the fixed share to one venue, or the split (set keeper_venue_frac=0)"
            )
        if self.stable_pool == "stableswap" and self.keeper_routing != "pool":
            raise ValueError(
                f"{o}.keeper_venue_frac / keeper_aggregator_depth_usd / keeper_cex_depth_usd "
                "with stable_pool='stableswap' are not supported yet (the venues' pricing is "
                "constant product's); allowed stable_pool='cpmm' with off-pool venues"
            )
        if self.stable_pool == "stableswap" and self.profitability_filter == "in_block":
            raise ValueError(
                f"{o}.profitability_filter='in_block' with stable_pool='stableswap' is not "
                "supported yet (the in-block pricing is constant product's); allowed 'alone' or "
                "'off' with StableSwap legs, or stable_pool='cpmm'"
            )

    @property
    def close_terms(self) -> tuple[float, float, float, float, float]:
        """The call's close-factor and leftover terms in
        :data:`levgym.engine.portfolio.V33_CLOSE_TERMS`' form (equal to it by default)."""
        by_pair = 1.0 if self.min_close_by == "pair" else 0.0
        return (
            float(self.close_factor), float(self.full_close_hf), float(self.min_close_usd),
            by_pair, float(self.leftover_usd),
        )  # fmt: skip

    @property
    def keeper_split(self) -> bool:
        """Keepers split their sales across the pool, the aggregator route and the CEX leg
        (either has a depth; the single-asset ``market.keeper_split``)."""
        return self.keeper_aggregator_depth_usd > 0.0 or self.keeper_cex_depth_usd > 0.0

    @property
    def keeper_routing(self) -> str:
        """``pool`` (every sale into the pool), ``venue`` (a fixed share off it) or ``split``."""
        if self.keeper_split:
            return "split"
        return "venue" if self.keeper_venue_frac > 0.0 else "pool"

    @property
    def keeper_cex_latent(self) -> bool:
        """The CEX leg's collateral is held and fills over the next substeps."""
        return self.keeper_cex_depth_usd > 0.0 and self.keeper_cex_latency_substeps > 0.0

    @property
    def keeper_cex_fill_frac(self) -> float:
        """Share of the collateral held for the CEX that fills each substep (1 / latency; 1
        without latency; the single-asset ``market.keeper_cex_fill_frac``)."""
        lat = self.keeper_cex_latency_substeps
        return 1.0 if lat <= 1.0 else 1.0 / lat

    @property
    def keeper_chunk_ratio(self) -> float:
        """Largest seizure of one call as a multiple of the pool's asset reserve (``inf``: no
        limit); the single-asset ``MarketParams.keeper_chunk_ratio``."""
        s = self.keeper_max_slippage_frac
        return math.inf if s >= 1.0 else s / (1.0 - s)


COUNTERS = (
    "initial_collateral_asset",
    "added_collateral_asset",
    "withdrawn_collateral_asset",
    "seized_collateral_asset",
    "protocol_fee_asset",
    "initial_debt_asset",
    "borrowed_asset",
    "interest_asset",
    "repaid_by_borrowers_asset",
    "repaid_by_liquidators_asset",
    "deficit_asset",
    "sold_asset",
    "sale_quote",
    "bought_asset",
    "purchase_quote",
    "treasury_interest_asset",
    "deficit_covered_asset",
    "lender_loss_asset",
    "venue_sold_asset",
    "aggregator_sold_asset",
    "cex_sold_asset",
    "protocol_fee_usd",
)
"""Per-asset counters ``[E, K]`` (asset units; ``sale_quote`` / ``purchase_quote`` in USDC):
``seized_collateral_asset`` is all collateral that left positions (the liquidator's and the
protocol fee); ``deficit_asset`` the debt written off (v3.3 deficit); ``sold_asset`` the
liquidators' sales into the asset's pool, ``bought_asset`` their purchases of it;
``treasury_interest_asset`` the reserve factor's share of the interest, ``deficit_covered_asset``
the deficit the treasury covered and ``lender_loss_asset`` the part the lenders paid
(``deficit_cover="reserves_then_lenders"``, :mod:`levgym.engine.portfolio_treasury`);
``venue_sold_asset``, ``aggregator_sold_asset`` and ``cex_sold_asset`` the parts of
``sold_asset`` the keepers sold off the pool (:func:`keeper_routes`), the single-asset
``keeper_venue_sold_asset``, ``keeper_aggregator_sold_asset`` and ``keeper_cex_sold_asset``;
``protocol_fee_usd`` the protocol fee in USD at the oracle of the round that took it (the
single-asset ``protocol_fee_usd``)."""


@dataclass(frozen=True, eq=False)
class PortfolioState:
    """State of E multi-asset markets (numpy arrays; replaced, never written in place)."""

    supply: np.ndarray
    """Collateral (supply) balances ``[E, N, K]``, asset units."""
    debt: np.ndarray
    """Debt balances ``[E, N, K]``, asset units."""
    emode_row: np.ndarray
    """E-mode row of each position ``[E, N]`` (0 = none)."""
    fundamental_usd: np.ndarray
    """Fundamental price ``[E, K]``."""
    oracle_usd: np.ndarray
    """The protocol's oracle ``[E, K]``."""
    exchange_ratio: np.ndarray
    """Exchange ratio ``[E, K]`` of exchange-rate reserves (1 elsewhere)."""
    snapshot_ratio: np.ndarray
    """The CAPO snapshot ratio ``[E, K]``."""
    pool_asset: np.ndarray
    """Asset reserve of each asset's pool ``[E, K]`` (1 in the USDC column: no pool)."""
    pool_quote: np.ndarray
    """USDC reserve of each asset's pool ``[E, K]``."""
    lender_supply_asset: np.ndarray
    """Lenders' supply of each reserve ``[E, K]`` (utilization's denominator)."""
    treasury_asset: np.ndarray
    """Reserve-factor interest and liquidation protocol fees ``[E, K]``."""
    counters: dict[str, np.ndarray]
    """:data:`COUNTERS`, each ``[E, K]``."""
    keeper_pnl_usd: np.ndarray
    """Keepers' realised result ``[E]`` (USDC out of sales less USDC into purchases less gas, USD)."""
    liquidations: np.ndarray
    """Calls made ``[E]``."""
    cascade_rounds_max: np.ndarray
    """Most rounds one substep's cascade took ``[E]``."""
    time_h: float = 0.0
    defend_trigger_hf: np.ndarray | None = None
    """Trigger HF of defensive slots ``[E, N]`` (0 = passive); None: every slot passive
    (:mod:`levgym.engine.portfolio_borrowers`)."""
    defend_repays: np.ndarray | None = None
    """Defensive slots that repay rather than top up ``[E, N]``."""
    defend_capacity_usd: np.ndarray | None = None
    """Outside funds left to defensive slots ``[E, N]`` (USD)."""
    defend_react_prob: np.ndarray | None = None
    """Per-substep reaction probability of each slot ``[E, N]``; None: defenders act every
    substep (:func:`levgym.engine.portfolio_borrowers.phase_trigger_hf`)."""
    feed_usd: np.ndarray | None = None
    """The feeds' last answers ``[E, K]`` (each reserve's market source through its
    ``OracleConfig.feed``; :func:`feed_update`); None: read at once (as ``exact``)."""
    feed_updated_h: np.ndarray | None = None
    """When each feed last updated ``[E, K]`` (hours)."""
    twap_buffer_usd: np.ndarray | None = None
    """The TWAP window ``[E, K, W]``: the pool price (USDC: the fundamental) of the last ``W``
    substeps, written at slot ``substep_index % W``; None: full of the last fundamental."""
    substep_index: int = 0
    """Substeps taken (the TWAP window's write position)."""
    pool_liquidity_base: np.ndarray | None = None
    """``sqrt(asset * quote)`` of each pool at liquidity 1 ``[E, K]`` (the single-asset
    ``pool_liquidity_base``; the pools at the start), read with a ``liquidity_frac`` driver
    (:func:`pool_drivers`)."""
    keeper_cex_pending_asset: np.ndarray | None = None
    """Collateral the keepers hold for their CEX leg ``[E, K]`` (the single-asset
    ``keeper_cex_pending_asset`` per reserve; :func:`cex_fills`); None: none held."""
    fundamental_min_usd: np.ndarray | None = None
    """Each reserve's lowest fundamental so far ``[E, K]`` (with ``params.statistics``;
    :func:`keep_statistics`); None: not kept."""
    pool_min_usd: np.ndarray | None = None
    """Each reserve's lowest pool price so far ``[E, K]`` (USD; USDC: its fundamental)."""
    ever_liquidated: np.ndarray | None = None
    """Positions liquidated at least once ``[E, N]`` (with ``params.statistics``)."""
    looper_target_hf: np.ndarray | None = None
    """Target HF of looping slots ``[E, N]`` (0 = not a looper); None: no loopers
    (:func:`levgym.engine.portfolio_borrowers.loop`)."""
    active: np.ndarray | None = None
    """Slots holding a position ``[E, N]`` (bool; a free slot holds nothing and may receive an
    arrival); None: every slot active, no exits or arrivals
    (:func:`levgym.engine.portfolio_borrowers.with_turnover`)."""
    template_reserve: np.ndarray | None = None
    """The collateral reserve an arrival into each slot brings ``[E, N]`` (int)."""
    template_collateral_asset: np.ndarray | None = None
    """The collateral an arrival into each slot brings ``[E, N]`` (asset units)."""
    template_hf: np.ndarray | None = None
    """The health factor an arrival into each slot borrows to ``[E, N]`` (within its LTV)."""
    arrivals: np.ndarray | None = None
    """Arrivals so far ``[E]`` (with ``active``)."""
    exits: np.ndarray | None = None
    """Exits so far ``[E]`` (with ``active``)."""

    def replace(self, **changes: Any) -> PortfolioState:
        return dataclasses.replace(self, **changes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.supply.shape


# ----------------------------------------------------------------------------- rules


def buy_exact_out(pool_asset: Any, pool_quote: Any, amount_out: Any, fee_frac: Any):
    """Buy exactly ``amount_out`` of the asset from a constant-product pool with the quote token
    (fee on the input, outside the reserves): (new pool asset, new pool quote, quote paid).
    ``inf`` paid (pool unchanged) when ``amount_out`` is the whole reserve or more. The inverse of
    :func:`levgym.engine.rules.buy_asset`."""
    ok = amount_out < pool_asset
    left = where(ok, pool_asset - amount_out, pool_asset)
    eff = pool_quote * amount_out / left
    paid = where(ok, eff / (1.0 - fee_frac), math.inf)
    return left, where(ok, pool_quote + eff, pool_quote), paid


def block_buy_cost(
    pool_asset: Any, pool_quote: Any, bought_through: Any, amount_out: Any, fee_frac: Any
) -> Any:
    """Quote paid for buying ``amount_out`` exact-out when it is the last of a block's purchases
    from one constant-product pool totalling ``bought_through`` (itself included), all against
    the same reserves ``x`` (asset), ``y`` (quote): the difference of :func:`buy_exact_out`'s
    price for the total and for the purchases before it, ``y x a / ((x - B)(x - B + a)) / (1 -
    fee)`` with ``B = bought_through``. ``inf`` when ``B`` reaches the reserve. Alone (``B =
    a``) it is :func:`buy_exact_out`'s ``y a / (x - a) / (1 - fee)``. The purchase twin of
    :func:`levgym.engine.rules.block_sale_out`."""
    ok = bought_through < pool_asset
    left = where(ok, pool_asset - bought_through, 1.0)
    paid = pool_quote * pool_asset * amount_out / (left * (left + amount_out)) / (1.0 - fee_frac)
    return where(ok, paid, math.inf)


# ----------------------------------------------------------------------------- pools
# Each pool is a leg against USDC: constant product, or StableSwap where ``pool_amp`` > 0 (the
# stablecoins' legs under ``stable_pool="stableswap"``). These apply the leg's rule per column
# (``[E, K]``) or per position (gathered ``[E, N]``); the kernel branches the same way.


def pool_amp(reserves: Reserves, params: PortfolioMarketParams) -> np.ndarray:
    """Amplification ``[K]`` of each reserve's leg: ``stable_pool_amp`` for the stablecoins'
    legs under ``stable_pool="stableswap"``, 0 (constant product) elsewhere."""
    has_pool, _, _ = _pool_layout(reserves, params)
    stable = np.array([s in STABLE_SYMBOLS for s in reserves.symbols]) & has_pool
    on = params.stable_pool == "stableswap"
    return np.where(stable & on, params.stable_pool_amp, 0.0)


def pools_arbitrage(pool_asset, pool_quote, target, speed_frac, amp):
    """:func:`levgym.engine.rules.arbitrage` per leg ``[E, K]``, the StableSwap legs (``amp [K]``
    > 0) by :func:`levgym.engine.stableswap.stableswap_arbitrage`."""
    pa, pq = R.arbitrage(pool_asset, pool_quote, target, speed_frac)
    c = np.flatnonzero(amp > 0.0)
    if c.size:
        pa, pq = np.array(pa), np.array(pq)
        speed = speed_frac[:, c] if np.ndim(speed_frac) == 2 else speed_frac
        pa[:, c], pq[:, c] = SS.stableswap_arbitrage(
            pool_asset[:, c], pool_quote[:, c], target[:, c], speed, amp[c]
        )
    return pa, pq


def pools_price(pool_asset, pool_quote, amp):
    """Each leg's marginal price (USDC per asset) ``[E, K]``."""
    p = pool_quote / pool_asset
    c = np.flatnonzero(amp > 0.0)
    if c.size:
        p = np.array(p)
        p[:, c] = SS.stableswap_price(pool_asset[:, c], pool_quote[:, c], amp[c])
    return p


def pools_sell(pool_asset, pool_quote, amount, fee_frac, amp):
    """:func:`levgym.engine.rules.sell_asset` per leg ``[E, K]`` (StableSwap legs by
    :func:`~levgym.engine.stableswap.stableswap_sell`)."""
    pa, pq, out = R.sell_asset(pool_asset, pool_quote, amount, fee_frac)
    c = np.flatnonzero(amp > 0.0)
    if c.size:
        pa, pq, out = np.array(pa), np.array(pq), np.array(out)
        pa[:, c], pq[:, c], out[:, c] = SS.stableswap_sell(
            pool_asset[:, c], pool_quote[:, c], amount[:, c], fee_frac[:, c], amp[c]
        )
    return pa, pq, out


def pools_buy_exact_out(pool_asset, pool_quote, amount, fee_frac, amp):
    """:func:`buy_exact_out` per leg ``[E, K]`` (StableSwap legs by
    :func:`~levgym.engine.stableswap.stableswap_buy_exact_out`)."""
    pa, pq, paid = buy_exact_out(pool_asset, pool_quote, amount, fee_frac)
    c = np.flatnonzero(amp > 0.0)
    if c.size:
        pa, pq, paid = np.array(pa), np.array(pq), np.array(paid)
        pa[:, c], pq[:, c], paid[:, c] = SS.stableswap_buy_exact_out(
            pool_asset[:, c], pool_quote[:, c], amount[:, c], fee_frac[:, c], amp[c]
        )
    return pa, pq, paid


def _legs_swap_out(pa, pq, amount, fee_frac, amp):
    """What ``amount`` buys of USDC from the legs gathered per position ``[E, N]`` (``amp``
    gathered likewise)."""
    out = R.swap_out(pa, pq, amount, fee_frac)
    ss = amp > 0.0
    if ss.any():
        a = np.where(ss, amp, 1.0)
        out = np.where(ss, SS.stableswap_swap_out(pa, pq, amount, fee_frac, a), out)
    return out


def _legs_buy_cost(pa, pq, amount, fee_frac, amp):
    """USDC that buys exactly ``amount`` from the legs gathered per position ``[E, N]``."""
    cost = buy_exact_out(pa, pq, amount, fee_frac)[2]
    ss = amp > 0.0
    if ss.any():
        a = np.where(ss, amp, 1.0)
        cost = np.where(ss, SS.stableswap_buy_exact_out(pa, pq, amount, fee_frac, a)[2], cost)
    return cost


# ----------------------------------------------------------------------------- setup


def looper_tradable(reserves: Reserves, params: PortfolioMarketParams) -> np.ndarray:
    """Reserves ``[K]`` a looper may hold as its collateral: collateral reserves with a
    constant-product pool against USDC (:func:`levgym.engine.portfolio_borrowers.looper_slots`)."""
    has_pool, _, _ = _pool_layout(reserves, params)
    return has_pool & (pool_amp(reserves, params) == 0.0) & np.asarray(reserves.can_collateral)


def _pool_layout(reserves: Reserves, params: PortfolioMarketParams):
    """(has_pool ``[K]``, fee ``[K]``, depth_usd ``[K]``) of every reserve."""
    syms = reserves.symbols
    if QUOTE_SYMBOL not in syms:
        raise ValueError(
            f"reserves {list(syms)} lack {QUOTE_SYMBOL!r}; the market quotes every pool in USDC"
        )
    has_pool = np.array([s != QUOTE_SYMBOL for s in syms])
    stable = np.array([s in STABLE_SYMBOLS for s in syms])
    fee = np.where(stable, params.stable_pool_fee_frac, params.pool_fee_frac)
    depth = np.where(stable, params.stable_pool_depth_usd, params.volatile_pool_depth_usd)
    return has_pool, fee, depth


def fundamentals_from_paths(
    prices_usd: np.ndarray, path_symbols: tuple[str, ...], reserves: Reserves,
    exchange_ratio: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Fundamental USD prices ``[..., K]`` of the reserves from path prices ``[..., P]``: a reserve
    named in the paths takes its column; wstETH is the stETH column times its exchange ratio
    (``exchange_ratio [..., K]``); any other reserve is an error naming it."""
    prices_usd = np.asarray(prices_usd, dtype=np.float64)
    cols = []
    for k, s in enumerate(reserves.symbols):
        if s in path_symbols:
            cols.append(prices_usd[..., path_symbols.index(s)])
        elif s in LST_BASE and LST_BASE[s] in path_symbols:
            cols.append(prices_usd[..., path_symbols.index(LST_BASE[s])] * exchange_ratio[..., k])
        else:
            raise ValueError(
                f"reserve {s!r} has no price path; the paths hold {list(path_symbols)}"
            )
    return np.stack(cols, axis=-1)


def initial_exchange_ratio(reserves: Reserves, num_envs: int) -> np.ndarray:
    """``[E, K]``: :data:`DEFAULT_EXCHANGE_RATIO` for exchange-rate reserves, 1 elsewhere."""
    r = np.array([DEFAULT_EXCHANGE_RATIO.get(s, 1.0) for s in reserves.symbols])
    return np.broadcast_to(r, (num_envs, reserves.k)).copy()


FEED_CODES = {"exact": R.EXACT, "chainlink": R.CHAINLINK, "twap": R.TWAP}
"""``OracleConfig.feed`` as :func:`levgym.engine.rules.oracle_update`'s kind codes."""


def feed_update(
    reserves: Reserves, source_usd: np.ndarray, feed_usd: np.ndarray | None,
    feed_updated_h: np.ndarray | None, now_h: float, in_block: bool,
    twap_usd: np.ndarray | None = None, bias_frac: np.ndarray | None = None,
    held: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(feed answer, its update time) ``[E, K]``: each reserve's market source through its feed
    (:attr:`levgym.engine.portfolio.OracleConfig.feed`), by the single-asset rule
    :func:`levgym.engine.rules.oracle_update` (``exact``: the source; ``chainlink``: the last
    answer until the source deviates by more than ``deviation_frac`` or, between blocks
    (``in_block`` false), the heartbeat passed; ``twap``: the window's mean ``twap_usd``
    ``[E, K]``, between blocks only). Without a previous answer (``feed_usd`` None) the source
    is the previous answer, read at hour 0. ``bias_frac`` and ``held`` ``[E, K]`` (None: 0 and
    false): the single-asset engine's oracle drivers, a manipulation of each reported answer
    (``source * (1 + bias)``) and a feed that keeps its last answer (a stale feed or the
    governor's pause), by the same rule."""
    source_usd = np.asarray(source_usd, dtype=np.float64)
    if feed_usd is None or feed_updated_h is None:
        feed_usd, feed_updated_h = source_usd, np.zeros_like(source_usd)
    feed, updated = np.empty_like(source_usd), np.empty_like(source_usd)
    no_hold = np.zeros(source_usd.shape[:-1], dtype=bool)
    for k, r in enumerate(reserves.reserves):
        frozen = no_hold if held is None else held[..., k]
        bias = 0.0 if bias_frac is None else bias_frac[..., k]
        o = r.oracle
        code = FEED_CODES[o.feed]
        if code == R.TWAP and twap_usd is None and not in_block:
            raise ValueError(f"reserve {r.symbol!r} has a twap feed: twap_usd is needed")
        feed[..., k], updated[..., k] = R.oracle_update(
            code, feed_usd[..., k], feed_updated_h[..., k], now_h, source_usd[..., k],
            None if twap_usd is None else twap_usd[..., k], bias, frozen, o.deviation_frac,
            o.heartbeat_h, in_block,
        )  # fmt: skip
    return feed, updated


def _pool_usd(
    reserves: Reserves, params: PortfolioMarketParams, fundamental, pool_asset, pool_quote
):
    """USD price of each reserve in its pool ``[E, K]`` (the fundamental where there is none)."""
    has_pool, _, _ = _pool_layout(reserves, params)
    q = reserves.index(QUOTE_SYMBOL)
    price = pools_price(pool_asset, pool_quote, pool_amp(reserves, params))
    return np.where(has_pool, price * fundamental[:, q : q + 1], fundamental)


def _oracle(
    reserves: Reserves, params: PortfolioMarketParams, fundamental: np.ndarray, pool_asset, pool_quote,
    ratio, snapshot, time_h: float, feed_usd=None, feed_updated_h=None, in_block: bool = False,
    twap_usd=None, bias_frac=None, held=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(oracle, feed answer, feed update time) ``[E, K]``: the market source (the fundamental
    blended with the pool), through each reserve's feed (:func:`feed_update`, with the oracle
    drivers ``bias_frac`` and ``held``), into each reserve's oracle kind."""
    pool_usd = _pool_usd(reserves, params, fundamental, pool_asset, pool_quote)
    source = R.oracle_source(fundamental, pool_usd, params.oracle_pool_weight_frac)
    feed, updated = feed_update(
        reserves, source, feed_usd, feed_updated_h, time_h, in_block, twap_usd, bias_frac, held
    )
    return oracle_prices_usd(reserves, feed, ratio, snapshot, time_h), feed, updated


def init_state(
    reserves: Reserves, params: PortfolioMarketParams, supply: np.ndarray, debt: np.ndarray,
    emode_row: np.ndarray, fundamental_usd: np.ndarray, exchange_ratio: np.ndarray | None = None,
) -> PortfolioState:  # fmt: skip
    """A market at its start: pools at the fundamental with their depths, oracles read, lenders'
    supply at ``initial_utilization_frac`` (at least the borrowers' debt), counters at 0 but the
    initial balances."""
    supply = np.array(supply, dtype=np.float64)
    debt = np.array(debt, dtype=np.float64)
    e, n, k = supply.shape
    if debt.shape != supply.shape or k != reserves.k:
        raise ValueError(
            f"supply {supply.shape} and debt {debt.shape} must both be [E, N, K={reserves.k}]"
        )
    if np.any(supply < 0) or np.any(debt < 0) or not np.all(np.isfinite(supply + debt)):
        raise ValueError("supply and debt must be finite and >= 0")
    fundamental = np.broadcast_to(np.asarray(fundamental_usd, dtype=np.float64), (e, k)).copy()
    ratio = initial_exchange_ratio(reserves, e) if exchange_ratio is None else exchange_ratio
    ratio = np.broadcast_to(np.asarray(ratio, dtype=np.float64), (e, k)).copy()
    has_pool, _, depth = _pool_layout(reserves, params)
    q = reserves.index(QUOTE_SYMBOL)
    pool_quote = np.where(has_pool, depth / fundamental[:, q : q + 1], 1.0)
    pool_asset = np.where(has_pool, depth / fundamental, 1.0)
    amp = pool_amp(reserves, params)
    c = np.flatnonzero(amp > 0.0)
    if c.size:  # StableSwap legs: balanced at the depth, moved along the curve to the price
        pool_asset[:, c], pool_quote[:, c] = SS.stableswap_balances(
            pool_quote[:, c], fundamental[:, c] / fundamental[:, q : q + 1], amp[c]
        )
    total_debt = debt.sum(axis=1)
    lender = np.maximum(total_debt / params.initial_utilization_frac, total_debt)
    zeros = np.zeros((e, k))
    counters = {c: zeros.copy() for c in COUNTERS}
    counters["initial_collateral_asset"] = supply.sum(axis=1)
    counters["initial_debt_asset"] = total_debt.copy()
    oracle, feed, feed_h = _oracle(
        reserves, params, fundamental, pool_asset, pool_quote, ratio, ratio, 0.0,
        twap_usd=fundamental,  # the window starts full of the start price
    )  # fmt: skip
    return PortfolioState(
        supply=supply,
        debt=debt,
        emode_row=np.broadcast_to(np.asarray(emode_row, dtype=np.int64), (e, n)).copy(),
        fundamental_usd=fundamental,
        oracle_usd=oracle,
        exchange_ratio=ratio,
        snapshot_ratio=ratio.copy(),
        pool_asset=pool_asset,
        pool_quote=pool_quote,
        lender_supply_asset=lender,
        treasury_asset=zeros.copy(),
        counters=counters,
        keeper_pnl_usd=np.zeros(e),
        liquidations=np.zeros(e, dtype=np.int64),
        cascade_rounds_max=np.zeros(e, dtype=np.int64),
        feed_usd=feed,
        feed_updated_h=feed_h,
        twap_buffer_usd=np.repeat(fundamental[:, :, None], params.twap_window_substeps, axis=2),
        pool_liquidity_base=np.sqrt(pool_asset * pool_quote),
    )


# ----------------------------------------------------------------------------- the substep


def pool_drivers(
    liquidity_frac: Any, arb_speed_frac: Any, state: PortfolioState, params: PortfolioMarketParams
) -> tuple[np.ndarray | None, np.ndarray]:
    """The substep's pool drivers as ``[E, K]`` arrays: the pools' liquidity relative to
    ``pool_liquidity_base`` (None: not set; the single-asset ``liquidity_frac``, a drought < 1)
    and the arbitrage speed (``params.arb_speed_frac`` where not given; the single-asset
    ``arb_speed_frac`` per env and step)."""
    shape = state.oracle_usd.shape
    liq = None
    if liquidity_frac is not None:
        if state.pool_liquidity_base is None:
            raise ValueError("liquidity_frac needs state.pool_liquidity_base (init_state sets it)")
        liq = np.broadcast_to(np.asarray(liquidity_frac, dtype=np.float64), shape)
        if not np.all(np.isfinite(liq)) or np.any(liq <= 0.0):
            raise ValueError("liquidity_frac must be finite and > 0")
    a = params.arb_speed_frac if arb_speed_frac is None else arb_speed_frac
    arb = np.broadcast_to(np.asarray(a, dtype=np.float64), shape)
    if np.any(arb < 0.0) or np.any(arb > 1.0):
        raise ValueError("arb_speed_frac must be in [0, 1]")
    return liq, arb


def oracle_drivers(
    oracle_bias_frac: Any, oracle_held: Any, shape: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The substep's oracle drivers as ``[E, K]`` arrays (None where not given): a manipulation
    of each reported answer and which feeds keep their last answer (the single-asset drivers
    ``oracle_bias_frac`` and ``oracle_frozen`` or the governor's ``pause_oracle``, per reserve)."""
    bias = held = None
    if oracle_bias_frac is not None:
        bias = np.broadcast_to(np.asarray(oracle_bias_frac, dtype=np.float64), shape)
        if not np.all(np.isfinite(bias)) or np.any(bias <= -1.0):
            raise ValueError("oracle_bias_frac must be finite and > -1")
    if oracle_held is not None:
        held = np.broadcast_to(np.asarray(oracle_held, dtype=bool), shape)
    return bias, held


def market_update(
    state: PortfolioState, fundamental_usd: np.ndarray, reserves: Reserves,
    params: PortfolioMarketParams, oracle_bias_frac: Any = None, oracle_held: Any = None,
    liquidity_frac: Any = None, arb_speed_frac: Any = None,
) -> PortfolioState:  # fmt: skip
    """Steps 1-3: new fundamentals, the pools' liquidity set (with a ``liquidity_frac`` driver:
    :func:`levgym.engine.rules.set_liquidity` to ``pool_liquidity_base * liquidity_frac``, as
    the single-asset step does), arbitrage of every pool toward them (at ``arb_speed_frac``,
    :func:`pool_drivers`), oracles read (with the oracle drivers ``[E, K]``,
    :func:`oracle_drivers`)."""
    f = np.asarray(fundamental_usd, dtype=np.float64)
    has_pool, _, _ = _pool_layout(reserves, params)
    q = reserves.index(QUOTE_SYMBOL)
    liq, arb = pool_drivers(liquidity_frac, arb_speed_frac, state, params)
    pa0, pq0 = state.pool_asset, state.pool_quote
    if liq is not None:
        la, lq = R.set_liquidity(pa0, pq0, state.pool_liquidity_base * liq)
        pa0, pq0 = np.where(has_pool, la, pa0), np.where(has_pool, lq, pq0)
    pa, pq = pools_arbitrage(
        pa0, pq0, f / f[:, q : q + 1], arb, pool_amp(reserves, params),
    )  # fmt: skip
    pa, pq = np.where(has_pool, pa, pa0), np.where(has_pool, pq, pq0)
    now = state.time_h + params.substep_h
    w = params.twap_window_substeps
    buf = state.twap_buffer_usd
    if buf is None or buf.shape[-1] != w:
        buf = np.repeat(state.fundamental_usd[:, :, None], w, axis=2)
    buf = buf.copy()
    buf[:, :, state.substep_index % w] = _pool_usd(reserves, params, f, pa, pq)
    oracle, feed, feed_h = _oracle(
        reserves, params, f, pa, pq, state.exchange_ratio, state.snapshot_ratio, now,
        state.feed_usd, state.feed_updated_h, False, np.mean(buf, axis=2), oracle_bias_frac,
        oracle_held,
    )  # fmt: skip
    return state.replace(
        fundamental_usd=f, pool_asset=pa, pool_quote=pq, oracle_usd=oracle, time_h=now,
        feed_usd=feed, feed_updated_h=feed_h, twap_buffer_usd=buf,
    )  # fmt: skip


def accrue_interest(
    state: PortfolioState, reserves: Reserves, params: PortfolioMarketParams
) -> PortfolioState:
    """Step 4: each reserve's debt grows at its curve's rate; the reserve factor's share of the
    interest goes to the treasury, the rest to the lenders."""
    total = state.debt.sum(axis=1)
    rate = borrow_rates_apr(reserves, total, state.lender_supply_asset)
    growth = R.interest_growth(rate, params.substep_h)  # [E, K]
    added = state.debt * growth[:, None, :]
    interest = added.sum(axis=1)
    rf = reserves._col("reserve_factor_frac")
    c = dict(state.counters)
    c["interest_asset"] = c["interest_asset"] + interest
    c["treasury_interest_asset"] = c["treasury_interest_asset"] + interest * rf
    return state.replace(
        debt=state.debt + added,
        lender_supply_asset=state.lender_supply_asset + interest * (1.0 - rf),
        treasury_asset=state.treasury_asset + interest * rf,
        counters=c,
    )


def _gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[e, idx[e, n]]`` for ``a [E, K]``, ``idx [E, N]``."""
    return np.take_along_axis(a, idx, axis=1)


def gas_gwei_per_env(params: PortfolioMarketParams, gas_gwei: Any, num_envs: int) -> np.ndarray:
    """The substep's gas price ``[E]`` (gwei): ``gas_gwei`` (a number or ``[E]``) or, when None,
    ``params.gas_price_gwei``."""
    g = params.gas_price_gwei if gas_gwei is None else gas_gwei
    g = np.broadcast_to(np.asarray(g, dtype=np.float64), (num_envs,)).copy()
    if not np.all(np.isfinite(g)) or np.any(g < 0.0):
        raise ValueError("gas_gwei must be finite and >= 0")
    return g


def keeper_gas_usd(
    reserves: Reserves, params: PortfolioMarketParams, fundamental_usd: np.ndarray, gas_gwei: Any
) -> np.ndarray:
    """USD gas of one keeper call ``[E]``: ``gas_usd_per_call`` plus ``gas_units_per_call`` at the
    gas price, paid in ETH at the WETH fundamental (:func:`levgym.engine.rules.gas_cost_usd`,
    the single-asset rule)."""
    e = fundamental_usd.shape[0]
    fixed = np.full(e, float(params.gas_usd_per_call))
    if params.gas_units_per_call == 0.0:
        return fixed
    if GAS_SYMBOL not in reserves.symbols:
        raise ValueError(
            f"portfolio_market.gas_units_per_call={params.gas_units_per_call:g} prices gas in "
            f"{GAS_SYMBOL}, which the reserves {list(reserves.symbols)} lack; allowed 0 here"
        )
    g = reserves.index(GAS_SYMBOL)
    gwei = gas_gwei_per_env(params, gas_gwei, e)
    return fixed + R.gas_cost_usd(gwei, params.gas_units_per_call, fundamental_usd[:, g])


def keeper_capacity(params: PortfolioMarketParams, gas_gwei: Any, num_envs: int) -> np.ndarray:
    """Keeper calls one substep can hold ``[E]`` (float; ``inf`` without a limit), by the
    single-asset rule :func:`levgym.engine.rules.keeper_capacity` at the gas price."""
    if math.isinf(params.keeper_capacity_per_substep):
        return np.full(num_envs, math.inf)
    gwei = gas_gwei_per_env(params, gas_gwei, num_envs)
    return R.keeper_capacity(gwei, params.congestion_ref_gwei, params.keeper_capacity_per_substep)


def chunk_max_repay(
    reserves: Reserves, params: PortfolioMarketParams, pool_asset: np.ndarray,
    oracle_usd: np.ndarray,
) -> np.ndarray | None:  # fmt: skip
    """The keepers' limit on one call's repay per E-mode row and pair ``[E, R, K_i, K_j]`` (asset
    units of ``j``): the single-asset :func:`levgym.engine.rules.chunk_repay` with pool ``i``'s
    asset reserve, ``i``'s oracle and effective bonus and ``j``'s oracle; ``inf`` where ``i`` has
    no pool. None without a limit (``keeper_max_slippage_frac = 1``)."""
    ratio = params.keeper_chunk_ratio
    if math.isinf(ratio):
        return None
    has_pool, _, _ = _pool_layout(reserves, params)
    _, _, bonus = effective_risk(reserves, np.arange(len(reserves.emode_table["lt"])))  # [R, K]
    p = oracle_usd[:, None, :, None]
    mr = R.chunk_repay(
        pool_asset[:, None, :, None],
        ratio,
        p,
        bonus[None, :, :, None],
        oracle_usd[:, None, None, :],
    )
    return np.where(has_pool[:, None], mr, math.inf)


def keeper_routes(
    params: PortfolioMarketParams, fundamental_usd: np.ndarray, q: int
) -> tuple[np.ndarray, ...] | None:
    """The keepers' off-pool venues of each asset ``[E, K]`` at the fundamental against USDC at
    its own (the single-asset :func:`levgym.engine.cascade.routes`, by
    :func:`levgym.engine.rules.venue_reserves`): ``(venue asset, venue quote)`` with a fixed
    share (``keeper_venue_frac``), ``(aggregator asset, aggregator quote, CEX asset, CEX quote)``
    with the split; None when every sale goes to the pool (the default)."""
    mode = params.keeper_routing
    if mode == "pool":
        return None
    f = np.asarray(fundamental_usd, dtype=np.float64)
    fq = np.broadcast_to(f[:, q : q + 1], f.shape)
    if mode == "venue":
        return R.venue_reserves(f, fq, params.keeper_venue_depth_usd)
    aa, ad = R.venue_reserves(f, fq, params.keeper_aggregator_depth_usd)
    ca, cd = R.venue_reserves(f, fq, params.keeper_cex_depth_usd)
    return aa, ad, ca, cd


def _route_flags(params: PortfolioMarketParams) -> tuple[bool, bool]:
    return params.keeper_aggregator_depth_usd > 0.0, params.keeper_cex_depth_usd > 0.0


def routed_sale_out(
    pool_asset: Any, pool_quote: Any, fee_frac: Any, routes: tuple, sold_through: Any,
    amount: Any, params: PortfolioMarketParams, alone: bool,
) -> Any:  # fmt: skip
    """USDC a keeper's sale of ``amount`` returns across its pool and the off-pool venues
    ``routes`` (:func:`keeper_routes`' arrays, gathered like the pool's), by the single-asset
    rules: alone (``alone``) :func:`levgym.engine.rules.split_sale_out` or
    :func:`~levgym.engine.rules.route_out`, else as the last of the block's sales totalling
    ``sold_through`` (:func:`~levgym.engine.rules.split_sale_out`,
    :func:`~levgym.engine.rules.block_route_out`). The venues take the pool's fee (the
    single-asset engine's)."""
    if params.keeper_routing == "venue":
        va, vq = routes
        through = amount if alone else sold_through
        return R.split_sale_out(
            pool_asset, pool_quote, va, vq, through, amount, fee_frac, params.keeper_venue_frac
        )
    aa, ad, ca, cd = routes
    args = (
        pool_asset, pool_quote, fee_frac, aa, ad, params.keeper_aggregator_fee_frac, ca, cd,
        params.keeper_cex_fee_frac,
    )  # fmt: skip
    if alone:
        return R.route_out(*args, amount, *_route_flags(params))
    return R.block_route_out(*args, sold_through, amount, *_route_flags(params))


def route_sales(
    pool_asset: np.ndarray, pool_quote: np.ndarray, fee_frac: np.ndarray, routes: tuple,
    sell: np.ndarray, params: PortfolioMarketParams,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """The round's bundled sale of each asset ``sell [E, K]`` split as the single-asset
    :func:`levgym.engine.cascade.apply_round` splits it: (into the pool, USDC the off-pool
    venues return now, the amounts sold off the pool by counter name, USDC the CEX leg returns
    late: held as collateral until it fills, :func:`cex_fills`)."""
    zero = np.zeros_like(sell)
    if params.keeper_routing == "venue":
        va, vq = routes
        to_venue = sell * params.keeper_venue_frac
        out = R.swap_out(va, vq, to_venue, fee_frac)
        return sell - to_venue, out, {"venue_sold_asset": to_venue}, zero
    aa, ad, ca, cd = routes
    use_agg, use_cex = _route_flags(params)
    to_pool, to_agg, to_cex = R.route_split(
        pool_asset, pool_quote, fee_frac, aa, ad, params.keeper_aggregator_fee_frac, ca, cd,
        params.keeper_cex_fee_frac, sell, use_agg, use_cex,
    )  # fmt: skip
    out, late, parts = zero, zero, {}
    if use_agg:
        out = out + R.swap_out(aa, ad, to_agg, params.keeper_aggregator_fee_frac)
        parts["aggregator_sold_asset"] = to_agg
    if use_cex:
        cex_out = R.swap_out(ca, cd, to_cex, params.keeper_cex_fee_frac)
        if params.keeper_cex_latent:
            late = cex_out
        else:
            out = out + cex_out
        parts["cex_sold_asset"] = to_cex
    return to_pool, out, parts, late


def cex_fills(state: PortfolioState, params: PortfolioMarketParams) -> PortfolioState:
    """The collateral held for the CEX leg fills (a share ``keeper_cex_fill_frac`` of each
    asset's, :func:`levgym.engine.rules.cex_fill_asset`) and is sold at the current
    fundamental: the keepers' result takes the proceeds (the single-asset
    :func:`levgym.engine.cascade.cex_fills`, per reserve)."""
    if not params.keeper_cex_latent:
        return state
    pend = state.keeper_cex_pending_asset
    if pend is None:  # nothing held yet
        pend = np.zeros_like(state.fundamental_usd)
    fill = R.cex_fill_asset(pend, params.keeper_cex_fill_frac)
    return state.replace(
        keeper_cex_pending_asset=pend - fill,
        keeper_pnl_usd=state.keeper_pnl_usd + (fill * state.fundamental_usd).sum(axis=1),
    )


def select_calls(
    on: np.ndarray, i: np.ndarray, j: np.ndarray, got: np.ndarray, repay: np.ndarray,
    pool_asset: np.ndarray, pool_quote: np.ndarray, fee: np.ndarray, has_pool: np.ndarray, q: int,
    usdc_usd: np.ndarray, gas_usd: np.ndarray, cap_left: np.ndarray, params: PortfolioMarketParams,
    amp: np.ndarray | None = None, routes: tuple | None = None,
) -> np.ndarray:  # fmt: skip
    """Which of a round's keeper calls are made ``[E, N]`` (``on``: a call exists; pair ``i``,
    ``j``; the liquidator's collateral ``got`` and the repay, asset units; the pools ``[E, K]``
    before the round, their fees ``[K]``; the USDC price ``[E, 1]``, the gas of one call and the
    capacity left ``[E]``). The single-asset engine's selection
    (:func:`levgym.engine.cascade.select_round`) with sales into pool ``i`` and purchases from
    pool ``j``, by the same rules:

    - each call's result alone at the round's pools: the sale's proceeds
      (:func:`levgym.engine.rules.swap_out`; USDC collateral is not sold) less the purchase's
      cost (:func:`buy_exact_out`; a USDC debt is not bought), in USD, less gas
      (:func:`levgym.engine.rules.liquidation_profit`);
    - candidates: the calls with a positive result alone (``profitability_filter`` ``alone`` or
      ``in_block``), every call (``off``);
    - the keepers act in order of that result (highest first, ties by slot), as transactions in
      a block; with ``in_block`` a call's sale is priced after the sales into pool ``i`` of the
      candidates ranked above it (:func:`levgym.engine.rules.block_sale_out`) and its purchase
      after their purchases from pool ``j`` (:func:`block_buy_cost`), and it is made when that
      result is positive (the candidates it skips still count ahead of the later ones, as in the
      single engine; trades in the opposite direction in the same pool are not netted);
    - the round's purchases of one asset stay below ``max_round_buy_frac`` of its pool, in rank
      order (a call past it waits for the next round);
    - at most ``cap_left`` calls, in rank order (the keeper capacity).

    ``routes`` (:func:`keeper_routes`, ``[E, K]``): the keepers' off-pool venues; each sale is
    then priced across the pool and the venues (:func:`routed_sale_out`), alone and in the
    block, as the single-asset engine prices it."""
    k = pool_asset.shape[1]
    fee_n = np.broadcast_to(fee, pool_asset.shape)
    pa_i, pq_i, f_i = _gather(pool_asset, i), _gather(pool_quote, i), _gather(fee_n, i)
    pa_j, pq_j, f_j = _gather(pool_asset, j), _gather(pool_quote, j), _gather(fee_n, j)
    if amp is None:
        amp = np.zeros(k)
    amp_n = np.broadcast_to(amp, pool_asset.shape)
    a_i, a_j = _gather(amp_n, i), _gather(amp_n, j)
    if routes is None:
        proceeds = np.where(i == q, got, _legs_swap_out(pa_i, pq_i, got, f_i, a_i))
    else:
        r_i = tuple(_gather(v, i) for v in routes)
        alone = routed_sale_out(pa_i, pq_i, f_i, r_i, got, got, params, True)
        proceeds = np.where(i == q, got, alone)
    cost = np.where(j == q, repay, _legs_buy_cost(pa_j, pq_j, repay, f_j, a_j))
    gas = gas_usd[:, None]
    pnl = R.liquidation_profit(proceeds, cost, usdc_usd, gas)
    mode = params.profitability_filter
    cand = on if mode == "off" else on & (pnl > 0.0)
    if not cand.any():
        return cand
    order = np.argsort(-np.where(cand, pnl, -np.inf), axis=1, kind="stable")

    def ranked(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, order, axis=1)

    take, i_s, j_s, rep_s = ranked(cand), ranked(i), ranked(j), ranked(repay)
    oh_j = j_s[..., None] == np.arange(k)  # [E, N, K]
    if mode == "in_block":
        got_s, cand_s = ranked(got), take
        oh_i = i_s[..., None] == np.arange(k)
        sold = np.cumsum(np.where(oh_i & cand_s[..., None], got_s[..., None], 0.0), axis=1)
        bought = np.cumsum(np.where(oh_j & cand_s[..., None], rep_s[..., None], 0.0), axis=1)
        sold_through = np.take_along_axis(sold, i_s[..., None], axis=-1)[..., 0]
        bought_through = np.take_along_axis(bought, j_s[..., None], axis=-1)[..., 0]
        if routes is None:
            out = R.block_sale_out(ranked(pa_i), ranked(pq_i), sold_through, got_s, ranked(f_i))
        else:
            out = routed_sale_out(
                ranked(pa_i), ranked(pq_i), ranked(f_i), tuple(ranked(v) for v in r_i),
                sold_through, got_s, params, False,
            )  # fmt: skip
        out = np.where(i_s == q, got_s, out)
        paid = block_buy_cost(ranked(pa_j), ranked(pq_j), bought_through, rep_s, ranked(f_j))
        paid = np.where(j_s == q, rep_s, paid)
        take = take & (R.liquidation_profit(out, paid, usdc_usd, gas) > 0.0)
    # the round's purchases of each asset stay below a share of its pool (rank order)
    oh_take = oh_j & take[..., None]
    bought_cum = np.cumsum(np.where(oh_take, rep_s[..., None], 0.0), axis=1)
    room = params.max_round_buy_frac * pool_asset  # [E, K]
    take = take & ~(oh_take & has_pool & (bought_cum > room[:, None, :])).any(axis=-1)
    take = take & (np.cumsum(take, axis=1) <= cap_left[:, None])
    return np.take_along_axis(take, np.argsort(order, axis=1, kind="stable"), axis=1)


def cascade_round(
    state: PortfolioState, reserves: Reserves, params: PortfolioMarketParams, fused: bool = True,
    cap_left: np.ndarray | None = None, gas_usd: np.ndarray | None = None,
    oracle_bias_frac: Any = None, oracle_held: Any = None,
) -> tuple[PortfolioState, np.ndarray]:  # fmt: skip
    """One round of the cascade (see the module docstring); returns the state and the calls made
    per env ``[E]``. ``cap_left``: keeper calls the substep still holds ``[E]`` (default no
    limit); ``gas_usd``: one call's gas ``[E]`` (default :func:`keeper_gas_usd` at
    ``params.gas_price_gwei``); the oracle drivers ``[E, K]`` (:func:`oracle_drivers`) apply to
    the oracles' reads after the round."""
    from .portfolio_fused import liquidate_fused

    e, n, k = state.shape
    has_pool, fee, _ = _pool_layout(reserves, params)
    q = reserves.index(QUOTE_SYMBOL)
    if cap_left is None:
        cap_left = np.full(e, math.inf)
    if gas_usd is None:
        gas_usd = keeper_gas_usd(reserves, params, state.fundamental_usd, None)
    routes = keeper_routes(params, state.fundamental_usd, q)
    reserve = state.pool_asset
    if params.keeper_routing == "split":  # the chunks are measured against every venue
        reserve = R.route_reserve_asset(reserve, routes[0], routes[2])
    mr = chunk_max_repay(reserves, params, reserve, state.oracle_usd)
    if fused:
        res = liquidate_fused(
            state.supply, state.debt, state.oracle_usd, reserves, state.emode_row,
            max_repay_by_row=mr, close_terms=params.close_terms,
        )  # fmt: skip
    else:
        by_slot = math.inf if mr is None else mr[np.arange(e)[:, None], state.emode_row]
        res = liquidate(
            state.supply, state.debt, state.oracle_usd[:, None, :], reserves, state.emode_row,
            max_repay=by_slot, close_terms=params.close_terms,
        )  # fmt: skip
    on = res.collateral_index >= 0
    if not on.any():  # nothing liquidatable anywhere: the round changes nothing
        return state, np.zeros(e, dtype=np.int64)
    i, j = np.maximum(res.collateral_index, 0), np.maximum(res.debt_index, 0)
    got, repay = res.seized, res.repay
    fee_n = np.broadcast_to(fee, (e, k))
    amp = pool_amp(reserves, params)
    usdc_usd = state.fundamental_usd[:, q : q + 1]
    accept = select_calls(
        on, i, j, got, repay, state.pool_asset, state.pool_quote, fee, has_pool, q, usdc_usd,
        gas_usd, cap_left, params, amp, routes,
    )  # fmt: skip
    if not accept.any():
        return state, np.zeros(e, dtype=np.int64)
    a3 = accept[..., None]
    oh_i = (i[..., None] == np.arange(k)) & a3
    oh_j = (j[..., None] == np.arange(k)) & a3
    leaving = state.supply - res.supply  # collateral that left each reserve
    supply = np.where(a3, res.supply, state.supply)
    debt = np.where(a3, res.debt, state.debt)
    deficit = np.where(a3, res.deficit, 0.0).sum(axis=1)
    seized_k = np.where(a3, leaving, 0.0).sum(axis=1)
    fee_k = np.where(oh_i, res.protocol_fee[..., None], 0.0).sum(axis=1)
    got_k = np.where(oh_i, got[..., None], 0.0).sum(axis=1)
    repay_k = np.where(oh_j, repay[..., None], 0.0).sum(axis=1)
    # bundled sales, then bundled purchases, per pool
    sell = np.where(has_pool, got_k, 0.0)
    to_pool, off_out, off_parts, late = sell, 0.0, {}, None
    if routes is not None:  # the off-pool venues' shares (keeper_routes)
        to_pool, off_out, off_parts, late = route_sales(
            state.pool_asset, state.pool_quote, fee_n, routes, sell, params
        )
    pa, pq, sale_out = pools_sell(state.pool_asset, state.pool_quote, to_pool, fee_n, amp)
    sells = sell > 0.0
    pa, pq, sale_out = np.where(sells, pa, state.pool_asset), np.where(sells, pq, state.pool_quote), np.where(sells, sale_out + off_out, 0.0)  # fmt: skip
    buy = np.where(has_pool, repay_k, 0.0)
    pa2, pq2, paid = pools_buy_exact_out(pa, pq, buy, fee_n, amp)
    buys = buy > 0.0
    pa, pq, paid = np.where(buys, pa2, pa), np.where(buys, pq2, pq), np.where(buys, paid, 0.0)
    usdc_in = sale_out.sum(axis=1) + got_k[:, q]
    usdc_out = paid.sum(axis=1) + repay_k[:, q]
    calls = accept.sum(axis=1)
    c = dict(state.counters)
    c["seized_collateral_asset"] = c["seized_collateral_asset"] + seized_k
    c["protocol_fee_asset"] = c["protocol_fee_asset"] + fee_k
    c["protocol_fee_usd"] = c["protocol_fee_usd"] + fee_k * state.oracle_usd
    c["repaid_by_liquidators_asset"] = c["repaid_by_liquidators_asset"] + repay_k
    c["deficit_asset"] = c["deficit_asset"] + deficit
    c["sold_asset"] = c["sold_asset"] + sell
    c["sale_quote"] = c["sale_quote"] + sale_out
    c["bought_asset"] = c["bought_asset"] + buy
    c["purchase_quote"] = c["purchase_quote"] + paid
    extra = {}
    if state.ever_liquidated is not None:
        extra["ever_liquidated"] = state.ever_liquidated | accept
    for name, part in off_parts.items():
        c[name] = c[name] + np.where(sells, part, 0.0)
    if late is not None and params.keeper_cex_latent:  # held at the fundamental until it fills
        pend = state.keeper_cex_pending_asset
        pend = np.zeros_like(sell) if pend is None else pend
        held_k = np.where(sells, late * usdc_usd / state.fundamental_usd, 0.0)
        extra["keeper_cex_pending_asset"] = pend + held_k
    oracle, feed, feed_h = _oracle(
        reserves, params, state.fundamental_usd, pa, pq, state.exchange_ratio,
        state.snapshot_ratio, state.time_h, state.feed_usd, state.feed_updated_h, True, None,
        oracle_bias_frac, oracle_held,
    )  # fmt: skip
    pnl_usd = (usdc_in - usdc_out) * usdc_usd[:, 0] - gas_usd * calls
    return state.replace(
        supply=supply,
        debt=debt,
        pool_asset=pa,
        pool_quote=pq,
        oracle_usd=oracle,
        feed_usd=feed,
        feed_updated_h=feed_h,
        treasury_asset=state.treasury_asset + fee_k,
        counters=c,
        keeper_pnl_usd=state.keeper_pnl_usd + pnl_usd,
        liquidations=state.liquidations + calls,
        **extra,
    ), calls


def keep_statistics(
    state: PortfolioState, before: PortfolioState, reserves: Reserves, params: PortfolioMarketParams
) -> PortfolioState:  # fmt: skip
    """With ``params.statistics``: each reserve's lowest fundamental and pool price so far after
    the substep (the single-asset step's ``fundamental_min_usd`` and ``pool_min_usd``, per
    reserve), from ``before``'s (the state the substep started from; where it has none, its own
    prices: a run's start)."""
    if not params.statistics:
        return state
    pool = _pool_usd(reserves, params, state.fundamental_usd, state.pool_asset, state.pool_quote)
    fmin, pmin = before.fundamental_min_usd, before.pool_min_usd
    if fmin is None:
        fmin = before.fundamental_usd
    if pmin is None:
        pmin = _pool_usd(reserves, params, before.fundamental_usd, before.pool_asset, before.pool_quote)  # fmt: skip
    return state.replace(
        fundamental_min_usd=np.minimum(fmin, state.fundamental_usd),
        pool_min_usd=np.minimum(pmin, pool),
    )


def start_statistics(state: PortfolioState, params: PortfolioMarketParams) -> PortfolioState:
    """``ever_liquidated`` all false where ``params.statistics`` asks for it and the state has
    none yet."""
    if not params.statistics or state.ever_liquidated is not None:
        return state
    return state.replace(ever_liquidated=np.zeros(state.shape[:2], dtype=bool))


def read_in_block(
    state: PortfolioState, reserves: Reserves, params: PortfolioMarketParams,
    oracle_bias_frac: Any = None, oracle_held: Any = None,
) -> PortfolioState:  # fmt: skip
    """The oracles read the pools as the block left them so far (within the block, as after a
    cascade round; the single-asset ``cascade.refresh_in_block`` before the first round): after
    the loopers' trades. Reading pools that did not move changes nothing."""
    oracle, feed, feed_h = _oracle(
        reserves, params, state.fundamental_usd, state.pool_asset, state.pool_quote,
        state.exchange_ratio, state.snapshot_ratio, state.time_h, state.feed_usd,
        state.feed_updated_h, True, None, oracle_bias_frac, oracle_held,
    )  # fmt: skip
    return state.replace(oracle_usd=oracle, feed_usd=feed, feed_updated_h=feed_h)


def write_off(
    state: PortfolioState, reserves: Reserves, params: PortfolioMarketParams | None = None
) -> PortfolioState:
    """Step 6: positions with debt and no collateral have their debt burnt into the deficits;
    with exits and arrivals in ``params`` (:func:`levgym.engine.portfolio_borrowers.turnover_on`;
    None: none) a slot without collateral is free again (the single engine's
    ``cascade.write_off``)."""
    price = state.oracle_usd[:, None, :]
    debt, deficit = write_off_deficit(state.supply, state.debt, price, reserves)
    c = dict(state.counters)
    c["deficit_asset"] = c["deficit_asset"] + deficit.sum(axis=1)
    if params is None or not turnover_on(state, params):
        return state.replace(debt=debt, counters=c)
    freed = no_collateral_value(state.supply, price, reserves)
    return state.replace(debt=debt, counters=c, active=state.active & ~freed)


BACKENDS = ("numpy", "numba")
"""Backends of :func:`substep`: ``numpy`` (the phase functions above) and ``numba`` (the whole
substep in one compiled kernel, :mod:`levgym.engine.portfolio_market_fused`)."""


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed; allowed {list(BACKENDS)}")


def substep(
    state: PortfolioState, fundamental_usd: np.ndarray, reserves: Reserves,
    params: PortfolioMarketParams, fused: bool = True, backend: str = "numpy",
    gas_gwei: Any = None, noise_u: Any = None, oracle_bias_frac: Any = None,
    oracle_held: Any = None, liquidity_frac: Any = None, arb_speed_frac: Any = None,
    arrival_mult: Any = None, freeze: Any = None,
) -> tuple[PortfolioState, np.ndarray]:  # fmt: skip
    """One substep of every env (module docstring, steps 1-7); returns the state and the cascade
    rounds with calls per env ``[E]``. ``fused`` runs the numpy path's keeper pass compiled by
    numba (same results to float rounding). ``backend="numba"`` runs steps 1-6 compiled
    (:func:`levgym.engine.portfolio_market_fused.substep`, same phases and rule functions, same
    results to float rounding; ``fused`` is then moot), the borrower phase included, and the
    deficit cover after it. ``gas_gwei``: the substep's gas price (a number or ``[E]``; None:
    ``params.gas_price_gwei``), for the keepers' gas (``gas_units_per_call``) and capacity and
    the borrowers' reactions. ``noise_u``: uniforms ``[E, N]``, one per slot, read only when the
    state has reaction probabilities (``defend_react_prob``: who reacts this substep).
    ``oracle_bias_frac`` and ``oracle_held`` (``[E, K]``, broadcast; None: none): the
    single-asset engine's oracle drivers per reserve (:func:`oracle_drivers`), applied to every
    oracle read of the substep, between blocks and within the cascade. ``liquidity_frac`` and
    ``arb_speed_frac`` (``[E, K]``, broadcast; None: the pools as they are and
    ``params.arb_speed_frac``): the single-asset pool drivers (:func:`pool_drivers`).
    ``arrival_mult`` (``[E]``, default 1): the single-asset driver scaling the arrivals' odds;
    ``freeze`` (``[E]`` bool, None: none): the governor's ``freeze_borrow``, no new supply or
    borrowing by loopers and arrivals in those envs (:mod:`levgym.engine.portfolio_borrowers`,
    "Exits and arrivals"); ``noise_u`` is then read for exits and arrivals too."""
    _check_backend(backend)
    bias, held = oracle_drivers(oracle_bias_frac, oracle_held, state.oracle_usd.shape)
    before = state = start_statistics(state, params)
    if backend == "numba":
        from . import portfolio_market_fused

        state, rounds = portfolio_market_fused.substep(
            state, fundamental_usd, reserves, params, gas_gwei, noise_u, bias, held,
            liquidity_frac, arb_speed_frac, arrival_mult, freeze,
        )  # fmt: skip
        state = keep_statistics(state, before, reserves, params)
        return cover_deficit(state, params), rounds
    state = market_update(
        state, fundamental_usd, reserves, params, bias, held, liquidity_frac, arb_speed_frac
    )
    state = accrue_interest(state, reserves, params)
    e = state.shape[0]
    gwei = gas_gwei_per_env(params, gas_gwei, e)
    q = reserves.index(QUOTE_SYMBOL)
    mult, frz = turnover_drivers(arrival_mult, freeze, e)
    arrives = None
    if turnover_on(state, params):  # exits first, the arrivals' draw (they come with the loopers)
        state, arrives = exit_and_arrive(state, reserves, params, noise_u, mult, q)
    state = defend(state, reserves, params, noise_u, gwei)  # levgym.engine.portfolio_borrowers
    if state.looper_target_hf is not None or arrives is not None:  # loopers trade in the pools
        _, fee, _ = _pool_layout(reserves, params)
        looped = loop(
            state, reserves, params, noise_u, gwei, fee, looper_tradable(reserves, params), q,
            arrives, frz,
        )  # fmt: skip
        if looped is not state:  # the oracles read the pools the loopers moved, in the block
            state = read_in_block(looped, reserves, params, bias, held)
    state = cex_fills(state, params)
    rounds = np.zeros(e, dtype=np.int64)
    gas_usd = keeper_gas_usd(reserves, params, state.fundamental_usd, gas_gwei)
    cap_left = keeper_capacity(params, gas_gwei, e)
    for _ in range(params.max_cascade_rounds):
        state, calls = cascade_round(state, reserves, params, fused, cap_left, gas_usd, bias, held)
        cap_left = cap_left - calls
        rounds += calls > 0
        if not calls.any():
            break
    state = write_off(state, reserves, params)
    state = cover_deficit(state, params)  # treasury (levgym.engine.portfolio_treasury)
    state = keep_statistics(state, before, reserves, params)
    return state.replace(
        cascade_rounds_max=np.maximum(state.cascade_rounds_max, rounds),
        substep_index=state.substep_index + 1,
    ), rounds


def run(
    state: PortfolioState, fundamentals_usd: np.ndarray, reserves: Reserves,
    params: PortfolioMarketParams, fused: bool = True, backend: str = "numpy",
    noise_seed: int = 0,
) -> PortfolioState:  # fmt: skip
    """Step ``state`` through fundamentals ``[T, E, K]`` (row 0 is the start: stepping begins at
    row 1). With reaction probabilities or exits and arrivals in the state, substep ``t`` draws
    its uniforms from
    ``numpy.random.default_rng([noise_seed, 1518, t])`` (none are drawn otherwise)."""
    _check_backend(backend)
    for t in range(1, fundamentals_usd.shape[0]):
        noise = None
        if state.defend_react_prob is not None or turnover_on(state, params):
            noise = np.random.default_rng([int(noise_seed), 1518, t]).random(state.shape[:2])
        state, _ = substep(
            state, fundamentals_usd[t], reserves, params, fused, backend, noise_u=noise
        )
    return state


# ----------------------------------------------------------------------------- accounting


def final_collateral(state: PortfolioState) -> np.ndarray:
    return state.supply.sum(axis=1)


def final_debt(state: PortfolioState) -> np.ndarray:
    return state.debt.sum(axis=1)


def accounting_gaps(state: PortfolioState) -> tuple[np.ndarray, np.ndarray]:
    """(collateral gap, debt gap) ``[E, K]`` in asset units: each identity's left side less its
    right side (0 up to float rounding)."""
    c = state.counters
    coll = (
        c["initial_collateral_asset"]
        + c["added_collateral_asset"]
        - c["withdrawn_collateral_asset"]
        - c["seized_collateral_asset"]
        - final_collateral(state)
    )
    debt = (
        c["initial_debt_asset"]
        + c["borrowed_asset"]
        + c["interest_asset"]
        - c["repaid_by_borrowers_asset"]
        - c["repaid_by_liquidators_asset"]
        - c["deficit_asset"]
        - final_debt(state)
    )
    return coll, debt


def state_to_dict(state: PortfolioState) -> dict[str, Any]:
    """The state's arrays by field name, counters as ``counter:<name>`` (the reference loop's
    form, :func:`levgym.engine.reference_portfolio.ref_substep`)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(state):
        v = getattr(state, f.name)
        if f.name == "counters":
            out.update({f"counter:{c}": np.array(a, dtype=float) for c, a in v.items()})
        elif isinstance(v, np.ndarray):
            out[f.name] = v.copy()
        else:
            out[f.name] = v
    return out


# public names of the layout and oracle helpers, for the multi-protocol step
# (levgym.engine.multiprotocol), which runs the same pools and oracles per protocol
pool_layout = _pool_layout
oracle_from_pools = _oracle
pool_usd = _pool_usd
