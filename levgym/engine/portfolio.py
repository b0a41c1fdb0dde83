"""Cross-margin market rules of Aave v3.3 over an asset axis: reserves, E-mode, isolation, oracles,
account values, liquidation terms, the keeper's pair and repay, and deficits.

Positions are arrays ``[E, N, K]`` (envs by slots by reserves): a supply balance and a debt
balance per reserve, in asset units; prices are ``[E, K]`` in USD; a position's E-mode is an
``[E, N]`` integer row into :attr:`Reserves.emode_table` (0 = no E-mode). Every function is
numpy and vectorised over the leading axes; none loops over positions. The rules follow
``aave-dao/aave-v3-origin`` at tag ``v3.3.0`` (``GenericLogic.calculateUserAccountData``,
``LiquidationLogic.executeLiquidationCall``, ``ValidationLogic.validateBorrow``,
``EModeLogic`` / ``validateSetUserEMode``, ``IsolationModeLogic``, ``UserConfiguration
.getIsolationModeState``) and, for the oracles, ``bgd-labs/aave-capo`` (``PriceCapAdapterBase``,
``PriceCapAdapterStable``). Aave's integer rounding (wad / ray / percentage math) is not
reproduced: amounts are floats. ``reference_portfolio.py`` keeps its own, naive loop of the same
rules: it is the oracle these functions are tested against. docs/cross-margin.md states the rules
and what is not yet wired into the engine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .ops import and_, maximum, minimum, or_, where
from .params import HOURS_PER_YEAR, MAX_USD, _check_range
from .rules import borrow_rate_apr, utilization

# LiquidationLogic (v3.3) constants, in USD (Aave's base currency on Ethereum, 8 decimals).
DEFAULT_CLOSE_FACTOR = 0.5
"""Share of the position's total debt (in USD) one call may repay while the close-factor rule binds."""
CLOSE_FACTOR_HF_THRESHOLD = 0.95
"""At or below this health factor a call may repay the whole debt of the reserve."""
MIN_BASE_MAX_CLOSE_FACTOR_USD = 2000.0
"""A pair whose collateral or debt is below this (USD) may be closed whole."""
MIN_LEFTOVER_USD = MIN_BASE_MAX_CLOSE_FACTOR_USD / 2.0
"""A call that clears neither the debt nor the collateral of its pair must leave at least this
much (USD) of each (``MIN_LEFTOVER_BASE``), else it reverts (``MUST_NOT_LEAVE_DUST``)."""
V33_CLOSE_TERMS = (
    DEFAULT_CLOSE_FACTOR,
    CLOSE_FACTOR_HF_THRESHOLD,
    MIN_BASE_MAX_CLOSE_FACTOR_USD,
    1.0,
    MIN_LEFTOVER_USD,
)
"""The close-factor and leftover terms of a call, ``(close_factor, full_close_hf, min_close_usd,
min_close_by_pair, leftover_usd)`` (:func:`liquidation_call`), as v3.3 has them; the multi-asset
step takes others from ``PortfolioMarketParams`` (the single-asset engine's at K = 1)."""
LEFTOVER_TOL_FRAC = 1e-9
"""Float slack of the leftover check: a leftover counts as $1,000 from ``1000 * (1 - 1e-9)`` on,
so a keeper's call sized to leave exactly $1,000 is not refused by rounding (Aave's amounts are
integers and need no slack)."""

ORACLE_KINDS = ("market", "exchange_rate", "stable_pinned", "stable_market")
"""``market``: the asset's market price (Chainlink-style feed). ``exchange_rate``: the protocol's
exchange ratio (e.g. stETH per wstETH) capped by a yearly growth, times the base reserve's market
price (CAPO's ``PriceCapAdapterBase``): a market depeg of the token against its base does not
reach it. ``stable_pinned``: 1 USD. ``stable_market``: the market price capped above at
``price_cap_usd`` (CAPO's ``PriceCapAdapterStable``): a depeg below 1 reaches it."""

FEED_KINDS = ("exact", "chainlink", "twap")
"""How a reserve's market price is fed to the protocol (:attr:`OracleConfig.feed`)."""

Array = Any


@dataclass(frozen=True)
class OracleConfig:
    """How the protocol's oracle prices one reserve."""

    kind: str = "market"
    """One of :data:`ORACLE_KINDS`."""
    base_symbol: str = ""
    """``exchange_rate``: the reserve whose market price is the base (``WETH`` for wstETH)."""
    max_yearly_ratio_growth_frac: float = 0.0
    """``exchange_rate``: the cap on the ratio grows linearly by this share of the snapshot ratio
    per year (CAPO's ``maxYearlyRatioGrowthPercent``)."""
    price_cap_usd: float = 1.04
    """``stable_market``: the oracle never reports more than this."""
    feed: str = "exact"
    """How the reserve's market price reaches the protocol (one of :data:`FEED_KINDS`; the
    multi-asset market step, :mod:`levgym.engine.portfolio_market`): ``exact`` reads it every
    time; ``chainlink`` keeps its last answer until the price deviates from it by more than
    ``deviation_frac`` or, between blocks, ``heartbeat_h`` has passed; ``twap`` reads the mean
    pool price over the market's TWAP window, never within a block (the single-asset rule
    :func:`levgym.engine.rules.oracle_update`). An exchange-rate reserve uses its base's feed."""
    deviation_frac: float = 0.005
    """``chainlink``: the deviation threshold (ETH/USD on Ethereum: 0.5 %)."""
    heartbeat_h: float = 1.0
    """``chainlink``: the heartbeat (ETH/USD on Ethereum: 1 hour)."""

    def __post_init__(self) -> None:
        o = "oracle"
        if self.kind not in ORACLE_KINDS:
            raise ValueError(f"{o}.kind={self.kind!r} is not allowed; allowed {list(ORACLE_KINDS)}")
        if self.feed not in FEED_KINDS:
            raise ValueError(f"{o}.feed={self.feed!r} is not allowed; allowed {list(FEED_KINDS)}")
        _check_range(o, "deviation_frac", self.deviation_frac, 0.0, 1.0)
        _check_range(o, "heartbeat_h", self.heartbeat_h, 0.0, 24.0 * 365.0, lo_open=True)
        if self.kind == "exchange_rate" and not self.base_symbol:
            raise ValueError(
                f"{o}.base_symbol='' is not allowed with kind 'exchange_rate'; name the base reserve"
            )
        _check_range(
            o, "max_yearly_ratio_growth_frac", self.max_yearly_ratio_growth_frac, 0.0, 10.0
        )
        _check_range(o, "price_cap_usd", self.price_cap_usd, 0.0, 2.0, lo_open=True)


@dataclass(frozen=True)
class Reserve:
    """One reserve (asset) of a cross-margin market: Aave v3's per-reserve configuration.

    Fractions are plain shares (``ltv=0.805`` is 80.5 %); ``liquidation_bonus`` is the extra
    share (0.05, Aave's 10500); caps are in asset units (``inf`` = no cap, Aave's 0)."""

    symbol: str
    can_collateral: bool = True
    """Usable as collateral (Aave: ``liquidationThreshold != 0``)."""
    can_borrow: bool = True
    """Borrowing enabled."""
    ltv: float = 0.0
    """Loan-to-value: share of the collateral's value that may be borrowed against (0 allowed)."""
    liquidation_threshold: float = 0.0
    """Weight of the collateral in the health factor."""
    liquidation_bonus: float = 0.0
    """Extra collateral a liquidator seizes per unit of repaid debt (fraction)."""
    protocol_fee_frac: float = 0.10
    """Share of the seized bonus that goes to the treasury (``liquidationProtocolFee``)."""
    reserve_factor_frac: float = 0.10
    """Share of interest kept by the protocol."""
    supply_cap_asset: float = math.inf
    borrow_cap_asset: float = math.inf
    base_rate_apr: float = 0.0
    slope1_apr: float = 0.04
    slope2_apr: float = 0.75
    optimal_utilization_frac: float = 0.90
    emode_category: int = 0
    """Aave's legacy (pre-3.2) one E-mode category of the asset, 0 = none; informational: membership
    that counts is the categories' ``collateral`` and ``borrowable`` lists."""
    debt_ceiling_usd: float = 0.0
    """Isolation mode: a position whose only collateral is this reserve may owe at most this in
    total across such positions; 0 = not an isolated asset."""
    borrowable_in_isolation: bool = False
    """May be borrowed by positions in isolation mode."""
    oracle: OracleConfig = OracleConfig()

    def __post_init__(self) -> None:
        o = f"reserve[{self.symbol!r}]"
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError(f"reserve.symbol={self.symbol!r} must be a non-empty string")
        for name in ("can_collateral", "can_borrow", "borrowable_in_isolation"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ValueError(f"{o}.{name}={getattr(self, name)!r} must be True or False")
        _check_range(o, "ltv", self.ltv, 0.0, 1.0, hi_open=True)
        _check_range(o, "liquidation_threshold", self.liquidation_threshold, 0.0, 1.0, hi_open=True)
        _check_range(o, "liquidation_bonus", self.liquidation_bonus, 0.0, 0.5)
        if self.ltv > self.liquidation_threshold:
            raise ValueError(
                f"{o}.ltv={self.ltv:g} exceeds {o}.liquidation_threshold="
                f"{self.liquidation_threshold:g}; allowed ltv <= liquidation_threshold"
            )
        if self.can_collateral:
            if self.liquidation_threshold == 0.0 or self.liquidation_bonus == 0.0:
                raise ValueError(
                    f"{o}.liquidation_threshold={self.liquidation_threshold:g} and "
                    f"{o}.liquidation_bonus={self.liquidation_bonus:g}: a collateral reserve needs both > 0"
                )
        elif self.liquidation_threshold != 0.0 or self.ltv != 0.0:
            raise ValueError(
                f"{o}.liquidation_threshold={self.liquidation_threshold:g}, {o}.ltv={self.ltv:g} "
                f"with can_collateral=False; allowed 0 (Aave: LT = 0 means not collateral)"
            )
        if self.liquidation_threshold * (1.0 + self.liquidation_bonus) > 1.0:
            raise ValueError(
                f"{o}.liquidation_threshold * (1 + liquidation_bonus) = "
                f"{self.liquidation_threshold * (1 + self.liquidation_bonus):g}; allowed <= 1"
            )
        _check_range(o, "protocol_fee_frac", self.protocol_fee_frac, 0.0, 1.0)
        _check_range(o, "reserve_factor_frac", self.reserve_factor_frac, 0.0, 1.0)
        _check_range(
            o, "supply_cap_asset", self.supply_cap_asset, 0.0, lo_open=True, allow_inf=True
        )
        _check_range(
            o, "borrow_cap_asset", self.borrow_cap_asset, 0.0, lo_open=True, allow_inf=True
        )
        _check_range(o, "base_rate_apr", self.base_rate_apr, 0.0, 10.0)
        _check_range(o, "slope1_apr", self.slope1_apr, 0.0, 10.0)
        _check_range(o, "slope2_apr", self.slope2_apr, 0.0, 100.0)
        _check_range(
            o, "optimal_utilization_frac", self.optimal_utilization_frac, 0.0, 1.0,
            lo_open=True, hi_open=True,
        )  # fmt: skip
        if isinstance(self.emode_category, bool) or not isinstance(self.emode_category, int):
            raise ValueError(
                f"{o}.emode_category={self.emode_category!r} must be an integer in [0, 255]"
            )
        _check_range(o, "emode_category", self.emode_category, 0, 255)
        _check_range(o, "debt_ceiling_usd", self.debt_ceiling_usd, 0.0, MAX_USD)
        if self.debt_ceiling_usd > 0.0 and not self.can_collateral:
            raise ValueError(
                f"{o}.debt_ceiling_usd={self.debt_ceiling_usd:g} needs can_collateral=True"
            )
        if self.borrowable_in_isolation and not self.can_borrow:
            raise ValueError(f"{o}.borrowable_in_isolation=True needs can_borrow=True")
        if not isinstance(self.oracle, OracleConfig):
            raise ValueError(f"{o}.oracle={self.oracle!r} must be an OracleConfig")


@dataclass(frozen=True)
class EModeCategory:
    """An E-mode category (Aave v3.2+): its own LTV, LT and bonus for its collateral assets, and
    the assets a position in it may borrow."""

    id: int
    label: str
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    collateral: tuple[str, ...]
    """Symbols that get the category's LTV, LT and bonus as collateral (``collateralBitmap``)."""
    borrowable: tuple[str, ...]
    """Symbols a position in the category may borrow (``borrowableBitmap``)."""

    def __post_init__(self) -> None:
        o = f"emode[{self.id!r}]"
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise ValueError(f"{o}.id={self.id!r} must be an integer in [1, 255]")
        _check_range(o, "id", self.id, 1, 255)
        _check_range(o, "ltv", self.ltv, 0.0, 1.0, hi_open=True)
        _check_range(
            o,
            "liquidation_threshold",
            self.liquidation_threshold,
            0.0,
            1.0,
            lo_open=True,
            hi_open=True,
        )
        _check_range(o, "liquidation_bonus", self.liquidation_bonus, 0.0, 0.5, lo_open=True)
        if self.ltv > self.liquidation_threshold:
            raise ValueError(
                f"{o}.ltv={self.ltv:g} exceeds {o}.liquidation_threshold={self.liquidation_threshold:g}; "
                "allowed ltv <= liquidation_threshold"
            )
        if self.liquidation_threshold * (1.0 + self.liquidation_bonus) > 1.0:
            raise ValueError(
                f"{o}.liquidation_threshold * (1 + liquidation_bonus) = "
                f"{self.liquidation_threshold * (1 + self.liquidation_bonus):g}; allowed <= 1"
            )
        object.__setattr__(self, "collateral", tuple(self.collateral))
        object.__setattr__(self, "borrowable", tuple(self.borrowable))


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Reserves:
    """The K reserves of one market and its E-mode categories; per-reserve arrays ``[K]`` and the
    E-mode table (row 0 = no E-mode, row ``r`` = ``emodes[r - 1]``) are derived once."""

    reserves: tuple[Reserve, ...]
    emodes: tuple[EModeCategory, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reserves", tuple(self.reserves))
        object.__setattr__(self, "emodes", tuple(self.emodes))
        if not self.reserves:
            raise ValueError("reserves.reserves=() is empty; allowed at least one Reserve")
        syms = [r.symbol for r in self.reserves]
        dup = sorted({s for s in syms if syms.count(s) > 1})
        if dup:
            raise ValueError(f"reserves.reserves has duplicate symbols {dup}; allowed each once")
        ids = [c.id for c in self.emodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"reserves.emodes has duplicate ids {ids}; allowed each once")
        by = {r.symbol: r for r in self.reserves}
        for c in self.emodes:
            for s in c.collateral + c.borrowable:
                if s not in by:
                    raise ValueError(f"emode[{c.id}] names {s!r}; allowed one of {syms}")
            for s in c.collateral:
                if not by[s].can_collateral:
                    raise ValueError(
                        f"emode[{c.id}].collateral names {s!r}, which has can_collateral=False"
                    )
            for s in c.borrowable:
                if not by[s].can_borrow:
                    raise ValueError(
                        f"emode[{c.id}].borrowable names {s!r}, which has can_borrow=False"
                    )
        for r in self.reserves:
            if r.emode_category and r.emode_category not in ids:
                raise ValueError(
                    f"reserve[{r.symbol!r}].emode_category={r.emode_category} is not a category of "
                    f"this market; allowed 0 or one of {ids}"
                )
            if r.oracle.kind == "exchange_rate" and r.oracle.base_symbol not in by:
                raise ValueError(
                    f"reserve[{r.symbol!r}].oracle.base_symbol={r.oracle.base_symbol!r}; allowed one of {syms}"
                )
            if (
                r.oracle.kind == "exchange_rate"
                and by[r.oracle.base_symbol].oracle.kind == "exchange_rate"
            ):
                raise ValueError(
                    f"reserve[{r.symbol!r}].oracle.base_symbol={r.oracle.base_symbol!r} is itself "
                    "exchange-rate priced; allowed a market- or stable-priced base"
                )

    # --------------------------------------------------------------- lookups
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.reserves)

    @property
    def k(self) -> int:
        return len(self.reserves)

    def index(self, symbol: str) -> int:
        """Position of ``symbol`` on the asset axis."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise ValueError(
                f"reserve {symbol!r} is not in this market; allowed one of {list(self.symbols)}"
            ) from None

    def emode_row(self, category_id: int) -> int:
        """Row of E-mode category ``category_id`` in the table (0 for no E-mode)."""
        if category_id == 0:
            return 0
        for r, c in enumerate(self.emodes, start=1):
            if c.id == category_id:
                return r
        raise ValueError(
            f"emode category {category_id} is not in this market; allowed 0 or {[c.id for c in self.emodes]}"
        )

    def _col(self, name: str, dtype: Any = np.float64) -> np.ndarray:
        return _ro(np.array([getattr(r, name) for r in self.reserves], dtype=dtype))

    # --------------------------------------------------------------- per-reserve arrays [K]
    @cached_property
    def ltv(self) -> np.ndarray:
        return self._col("ltv")

    @cached_property
    def lt(self) -> np.ndarray:
        return self._col("liquidation_threshold")

    @cached_property
    def bonus(self) -> np.ndarray:
        return self._col("liquidation_bonus")

    @cached_property
    def protocol_fee_frac(self) -> np.ndarray:
        return self._col("protocol_fee_frac")

    @cached_property
    def can_collateral(self) -> np.ndarray:
        return self._col("can_collateral", bool)

    @cached_property
    def can_borrow(self) -> np.ndarray:
        return self._col("can_borrow", bool)

    @cached_property
    def debt_ceiling_usd(self) -> np.ndarray:
        return self._col("debt_ceiling_usd")

    @cached_property
    def borrowable_in_isolation(self) -> np.ndarray:
        return self._col("borrowable_in_isolation", bool)

    @cached_property
    def supply_cap_asset(self) -> np.ndarray:
        return self._col("supply_cap_asset")

    @cached_property
    def borrow_cap_asset(self) -> np.ndarray:
        return self._col("borrow_cap_asset")

    # --------------------------------------------------------------- E-mode table, row 0 = none
    @cached_property
    def emode_table(self) -> dict[str, np.ndarray]:
        """``ltv``, ``lt``, ``bonus`` ``[C + 1]`` and ``collateral``, ``borrowable`` ``[C + 1, K]``."""
        c1 = len(self.emodes) + 1
        col = np.zeros((c1, self.k), dtype=bool)
        bor = np.zeros((c1, self.k), dtype=bool)
        ltv, lt, bonus = np.zeros(c1), np.zeros(c1), np.zeros(c1)
        for r, c in enumerate(self.emodes, start=1):
            ltv[r], lt[r], bonus[r] = c.ltv, c.liquidation_threshold, c.liquidation_bonus
            for s in c.collateral:
                col[r, self.index(s)] = True
            for s in c.borrowable:
                bor[r, self.index(s)] = True
        return {
            k: _ro(v)
            for k, v in dict(ltv=ltv, lt=lt, bonus=bonus, collateral=col, borrowable=bor).items()
        }

    def replace(self, symbol: str, **changes: Any) -> Reserves:
        """A copy with one reserve's fields changed (validated again)."""
        i = self.index(symbol)
        new = list(self.reserves)
        new[i] = dataclasses.replace(new[i], **changes)
        return Reserves(tuple(new), self.emodes)


# ----------------------------------------------------------------------------- oracles


def exchange_rate_oracle_usd(
    ratio: Array, base_usd: Array, snapshot_ratio: Array, hours_since_snapshot: Array,
    max_yearly_ratio_growth_frac: Array,
) -> Array:  # fmt: skip
    """CAPO's ratio oracle: ``min(ratio, snapshot * (1 + g * t / year)) * base_usd``.

    ``ratio`` is the protocol's exchange ratio (stETH per wstETH from Lido's contract), not a
    market price, so a market depeg of stETH against ETH does not reach it; the cap only binds
    when the ratio grows faster than ``g`` a year (a manipulated or broken ratio)."""
    cap = snapshot_ratio * (
        1.0 + max_yearly_ratio_growth_frac * hours_since_snapshot / HOURS_PER_YEAR
    )
    return minimum(ratio, cap) * base_usd


def stable_oracle_usd(market_usd: Array, pinned: Array, price_cap_usd: Array) -> Array:
    """A stablecoin's oracle: 1 when pinned, else the market price capped above at
    ``price_cap_usd`` (CAPO's ``PriceCapAdapterStable``; a depeg below 1 is reported)."""
    return where(pinned, 1.0, minimum(market_usd, price_cap_usd))


def oracle_prices_usd(
    reserves: Reserves,
    market_usd: Array,
    exchange_ratio: Array | None = None,
    snapshot_ratio: Array | None = None,
    hours_since_snapshot: float = 0.0,
) -> np.ndarray:
    """The protocol's oracle price of every reserve ``[..., K]`` from market prices ``[..., K]``.

    ``exchange_ratio [..., K]`` gives the protocol's ratio for ``exchange_rate`` reserves (other
    columns ignored); ``snapshot_ratio`` (default: the ratio itself, so the cap does not bind)
    and ``hours_since_snapshot`` set the growth cap. The market price of an exchange-rate reserve
    is not used: only its ratio and the base's market price."""
    market = np.asarray(market_usd, dtype=np.float64)
    out = market.copy()
    for k, r in enumerate(reserves.reserves):
        o = r.oracle
        if o.kind == "stable_pinned":
            out[..., k] = 1.0
        elif o.kind == "stable_market":
            out[..., k] = stable_oracle_usd(market[..., k], False, o.price_cap_usd)
        elif o.kind == "exchange_rate":
            if exchange_ratio is None:
                raise ValueError(
                    f"exchange_ratio is needed: reserve {r.symbol!r} has an exchange-rate oracle"
                )
            ratio = np.asarray(exchange_ratio, dtype=np.float64)[..., k]
            snap = (
                ratio
                if snapshot_ratio is None
                else np.asarray(snapshot_ratio, dtype=np.float64)[..., k]
            )
            base = market[..., reserves.index(o.base_symbol)]
            out[..., k] = exchange_rate_oracle_usd(
                ratio, base, snap, hours_since_snapshot, o.max_yearly_ratio_growth_frac
            )
    return out


# ----------------------------------------------------------------------------- accounts


def effective_risk(
    reserves: Reserves, emode_row: Array
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(LTV, LT, bonus) ``[..., K]`` each reserve has for positions in E-mode row ``emode_row``
    ``[...]``: the category's for its collateral assets, the reserve's own otherwise. A reserve
    whose own LTV is 0 keeps LTV 0 in E-mode (``GenericLogic``: ``if (vars.ltv != 0)``)."""
    t = reserves.emode_table
    row = np.asarray(emode_row, dtype=np.int64)
    member = t["collateral"][row]
    ltv = np.where(member, t["ltv"][row][..., None], reserves.ltv)
    ltv = np.where(reserves.ltv == 0.0, 0.0, ltv)
    lt = np.where(member, t["lt"][row][..., None], reserves.lt)
    bonus = np.where(member, t["bonus"][row][..., None], reserves.bonus)
    return ltv, lt, bonus


def collateral_mask(
    supply: Array, reserves: Reserves, collateral_enabled: Array | None = None
) -> np.ndarray:
    """Which balances count as collateral ``[..., K]``: supplied, a collateral reserve (LT > 0)
    and enabled by the position (default: every collateral reserve it supplies)."""
    m = (np.asarray(supply) > 0.0) & reserves.can_collateral
    if collateral_enabled is not None:
        m = m & np.asarray(collateral_enabled, dtype=bool)
    return m


@dataclass(frozen=True)
class AccountData:
    """``GenericLogic.calculateUserAccountData`` for every position, plus isolation mode."""

    collateral_usd: np.ndarray
    """Sum of collateral balances at the oracle (collateral reserves the position enables)."""
    debt_usd: np.ndarray
    threshold_usd: np.ndarray
    """``sum_i coll_i * price_i * LT_i`` (E-mode LT for the category's collateral)."""
    borrow_limit_usd: np.ndarray
    """``sum_i coll_i * price_i * LTV_i``."""
    health_factor: np.ndarray
    """``threshold_usd / debt_usd``; ``inf`` without debt."""
    available_borrows_usd: np.ndarray
    """``max(borrow_limit_usd - debt_usd, 0)``: the LTV-based borrowing power left."""
    isolated: np.ndarray
    """Exactly one collateral reserve enabled and it has a debt ceiling."""
    isolation_asset: np.ndarray
    """That reserve's index, -1 when not isolated."""
    has_zero_ltv_collateral: np.ndarray

    @property
    def avg_ltv(self) -> np.ndarray:
        c = self.collateral_usd
        return np.where(c > 0, self.borrow_limit_usd / np.where(c > 0, c, 1.0), 0.0)

    @property
    def avg_lt(self) -> np.ndarray:
        c = self.collateral_usd
        return np.where(c > 0, self.threshold_usd / np.where(c > 0, c, 1.0), 0.0)


def health_factor(threshold_usd: Array, debt_usd: Array) -> np.ndarray:
    """``HF = sum_i coll_i p_i LT_i / sum_j debt_j p_j`` from the two sums (the threshold
    ``sum_i coll_i p_i LT_i`` and the debt, USD); ``inf`` where there is no debt. Written with
    :mod:`levgym.engine.ops` only (compiled for the fused kernels)."""
    ok = debt_usd > 0
    return where(ok, threshold_usd / where(ok, debt_usd, 1.0), math.inf)


def account_data(
    supply: Array,
    debt: Array,
    oracle_usd: Array,
    reserves: Reserves,
    emode_row: Array = 0,
    collateral_enabled: Array | None = None,
) -> AccountData:
    """Collateral, debt, HF, borrowing power and isolation of positions ``[..., K]`` at oracle
    prices ``oracle_usd`` (broadcast against the positions, e.g. ``[E, 1, K]``)."""
    supply = np.asarray(supply, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    price = np.asarray(oracle_usd, dtype=np.float64)
    ltv, lt, _ = effective_risk(reserves, emode_row)
    cm = collateral_mask(supply, reserves, collateral_enabled)
    coll_usd_k = np.where(cm, supply * price, 0.0)
    coll = coll_usd_k.sum(axis=-1)
    debt_usd = (debt * price).sum(axis=-1)
    thr = (coll_usd_k * lt).sum(axis=-1)
    lim = (coll_usd_k * ltv).sum(axis=-1)
    n_coll = cm.sum(axis=-1)
    first = np.argmax(cm, axis=-1)
    ceiling = reserves.debt_ceiling_usd[first]
    isolated = (n_coll == 1) & (ceiling > 0.0)
    zero_ltv = (cm & (reserves.ltv == 0.0)).any(axis=-1)
    return AccountData(
        collateral_usd=coll,
        debt_usd=debt_usd,
        threshold_usd=thr,
        borrow_limit_usd=lim,
        health_factor=health_factor(thr, debt_usd),
        available_borrows_usd=np.maximum(lim - debt_usd, 0.0),
        isolated=isolated,
        isolation_asset=np.where(isolated, first, -1),
        has_zero_ltv_collateral=zero_ltv,
    )


def isolation_total_debt(debt: Array, reserves: Reserves, account: AccountData) -> np.ndarray:
    """``isolationModeTotalDebt`` per collateral reserve ``[E, K]`` of a book ``[E, N, K]``: the
    debt of isolated positions, summed per isolation asset, in nominal units of the borrowed
    assets (Aave counts ``amount / 10**(decimals - 2)``: one unit of any borrowed asset as one
    USD, meant for stablecoins)."""
    debt = np.asarray(debt, dtype=np.float64)
    nominal = np.where(account.isolated, debt.sum(axis=-1), 0.0)  # [E, N]
    onehot = account.isolation_asset[..., None] == np.arange(reserves.k)  # [E, N, K]
    return (nominal[..., None] * onehot).sum(axis=-2)


def max_new_borrow(
    supply: Array,
    debt: Array,
    oracle_usd: Array,
    reserves: Reserves,
    j: int,
    emode_row: Array = 0,
    total_debt_asset: Array | None = None,
    isolation_debt_usd: Array | None = None,
    collateral_enabled: Array | None = None,
) -> np.ndarray:
    """Most of reserve ``j`` (asset units) each position ``[..., K]`` may borrow now
    (``ValidationLogic.validateBorrow``): 0 unless ``j`` is borrowable, borrowable in the
    position's E-mode, borrowable in isolation (when isolated) and the HF is above 1 with an LTV
    above 0; then the least of the LTV room ``available_borrows / price_j``, the borrow cap's room
    ``borrow_cap - total_debt_asset[..., j]`` (``total_debt_asset [E, K]``, default no debt) and,
    when isolated, the debt ceiling's room ``ceiling - isolation_debt_usd[iso asset]``
    (``[E, K]``, in nominal units: see :func:`isolation_total_debt`). Siloed borrowing is not
    modelled."""
    supply = np.asarray(supply, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    acct = account_data(supply, debt, price, reserves, emode_row, collateral_enabled)
    row = np.broadcast_to(np.asarray(emode_row, dtype=np.int64), acct.debt_usd.shape)
    allowed = reserves.can_borrow[j] & ((row == 0) | reserves.emode_table["borrowable"][row, j])
    allowed = allowed & (~acct.isolated | reserves.borrowable_in_isolation[j])
    cap_room = math.inf
    if total_debt_asset is not None:
        cap_room = np.maximum(
            reserves.borrow_cap_asset[j] - np.asarray(total_debt_asset)[..., j], 0.0
        )[..., None]
    ceil_room = math.inf
    if isolation_debt_usd is not None:
        iso = np.asarray(isolation_debt_usd, dtype=np.float64)  # [E, K]
        a = np.maximum(acct.isolation_asset, 0)
        used = np.take_along_axis(iso, a, axis=-1)
        ceil_room = np.maximum(reserves.debt_ceiling_usd[a] - used, 0.0)
    return borrow_room_asset(
        allowed, acct.health_factor, acct.borrow_limit_usd, acct.available_borrows_usd,
        price[..., j], cap_room, acct.isolated, ceil_room,
    )  # fmt: skip


def borrow_room_asset(
    allowed: Array, hf: Array, borrow_limit_usd: Array, available_borrows_usd: Array,
    price_j: Array, cap_room_asset: Array, isolated: Array, ceiling_room_asset: Array,
) -> Array:  # fmt: skip
    """Most of reserve ``j`` one position may borrow (:func:`max_new_borrow`'s rule on its
    terms): 0 unless ``allowed`` (``j`` borrowable, in the position's E-mode and, when isolated,
    in isolation), HF above 1 and a borrowing limit above 0; then the least of the LTV room
    ``available_borrows_usd / price_j``, the borrow cap's room and, when ``isolated``, the debt
    ceiling's room (asset units; ``inf`` for none). Written with :mod:`levgym.engine.ops` only
    (compiled for the multi-asset kernel's borrower phase)."""
    ok = and_(and_(allowed, hf > 1.0), borrow_limit_usd > 0.0)
    room = minimum(available_borrows_usd / price_j, cap_room_asset)
    room = where(isolated, minimum(room, ceiling_room_asset), room)
    return where(ok, room, 0.0)


# ----------------------------------------------------------------------------- liquidation


def close_factor_max_repay(
    debt_j: Array, price_j: Array, coll_i: Array, price_i: Array, hf: Array, total_debt_usd: Array,
    close_factor: Any = DEFAULT_CLOSE_FACTOR, full_close_hf: Any = CLOSE_FACTOR_HF_THRESHOLD,
    min_close_usd: Any = MIN_BASE_MAX_CLOSE_FACTOR_USD, min_close_by_pair: Any = 1.0,
) -> Array:  # fmt: skip
    """Most debt of reserve ``j`` one call may repay (v3.3 with the defaults): all of it, unless
    the pair's collateral and debt are both at least ``min_close_usd`` ($2,000) and HF >
    ``full_close_hf`` (0.95); then at most ``close_factor`` (50 %) of the position's total debt
    (USD) worth of ``j``, if the reserve's debt exceeds that. ``min_close_by_pair = 0``: the
    small-position test is on the position's total debt instead (the single-asset engine's
    ``small_position_usd``, :func:`levgym.engine.rules.liquidation_call`)."""
    debt_usd = debt_j * price_j
    by_pair = and_(coll_i * price_i >= min_close_usd, debt_usd >= min_close_usd)
    limited = where(min_close_by_pair > 0.0, by_pair, total_debt_usd >= min_close_usd)
    limited = and_(limited, hf > full_close_hf)
    half_usd = close_factor * total_debt_usd
    return where(and_(limited, debt_usd > half_usd), half_usd / price_j, debt_j)


@dataclass(frozen=True)
class LiquidationTerms:
    """One ``liquidationCall`` on a (collateral i, debt j) pair (asset units)."""

    repay: np.ndarray
    """Debt of ``j`` repaid by the liquidator."""
    seized_total: np.ndarray
    """Collateral of ``i`` that leaves the position: the liquidator's and the fee."""
    protocol_fee: np.ndarray
    """Collateral of ``i`` sent to the treasury."""
    reverts: np.ndarray
    """The call would leave dust (``MUST_NOT_LEAVE_DUST``) and reverts: nothing happens."""

    @property
    def seized(self) -> np.ndarray:
        """Collateral of ``i`` the liquidator receives (after the protocol fee)."""
        return self.seized_total - self.protocol_fee


def liquidation_call(
    coll_i: Array, debt_j: Array, price_i: Array, price_j: Array, bonus_i: Array,
    protocol_fee_frac_i: Array, hf: Array, total_debt_usd: Array, debt_to_cover: Array,
    close_factor: Any = DEFAULT_CLOSE_FACTOR, full_close_hf: Any = CLOSE_FACTOR_HF_THRESHOLD,
    min_close_usd: Any = MIN_BASE_MAX_CLOSE_FACTOR_USD, min_close_by_pair: Any = 1.0,
    leftover_usd: Any = MIN_LEFTOVER_USD,
):  # fmt: skip
    """``executeLiquidationCall`` (v3.3) for a pair: (repay, collateral leaving the position,
    protocol fee, reverts). The repay is ``debt_to_cover`` within the close factor
    (:func:`close_factor_max_repay`); the collateral leaving the position is
    ``repay * p_j * (1 + bonus) / p_i``, at most the balance (then the repay shrinks to
    ``coll * p_i / ((1 + bonus) p_j)``); the treasury takes ``fee * (seized_total -
    seized_total / (1 + bonus))``; a call that repays less than the reserve's debt and takes less
    than all the collateral reverts (all outputs 0) unless it leaves at least ``leftover_usd``
    ($1,000; 0 = no leftover rule, the single-asset engine's) of both. ``bonus_i`` is the
    effective bonus (E-mode's for the category's collateral); the close-factor arguments are
    :func:`close_factor_max_repay`'s. Written with :mod:`levgym.engine.ops` only: it runs on
    numpy and torch and compiles with numba."""
    cap = close_factor_max_repay(
        debt_j, price_j, coll_i, price_i, hf, total_debt_usd, close_factor, full_close_hf,
        min_close_usd, min_close_by_pair,
    )  # fmt: skip
    repay = minimum(debt_to_cover, cap)
    gross = 1.0 + bonus_i
    total = repay * price_j * gross / price_i
    capped = total > coll_i
    total = where(capped, coll_i, total)
    repay = where(capped, coll_i * price_i / (price_j * gross), repay)
    fee = protocol_fee_frac_i * (total - total / gross)
    partial = and_(repay < debt_j, total < coll_i)
    floor_usd = leftover_usd * (1.0 - LEFTOVER_TOL_FRAC)
    dust = or_((debt_j - repay) * price_j < floor_usd, (coll_i - total) * price_i < floor_usd)
    reverts = and_(partial, dust)
    return where(reverts, 0.0, repay), where(reverts, 0.0, total), where(reverts, 0.0, fee), reverts


def liquidation_terms(
    coll_i: Array, debt_j: Array, price_i: Array, price_j: Array, bonus_i: Array,
    protocol_fee_frac_i: Array, hf: Array, total_debt_usd: Array, debt_to_cover: Array = math.inf,
    close_terms: tuple = V33_CLOSE_TERMS,
) -> LiquidationTerms:  # fmt: skip
    """:func:`liquidation_call` as a :class:`LiquidationTerms` (``debt_to_cover`` defaults to
    everything; ``close_terms``: :data:`V33_CLOSE_TERMS`' form)."""
    repay, total, fee, reverts = liquidation_call(
        coll_i, debt_j, price_i, price_j, bonus_i, protocol_fee_frac_i, hf, total_debt_usd,
        debt_to_cover, *close_terms,
    )  # fmt: skip
    return LiquidationTerms(repay=repay, seized_total=total, protocol_fee=fee, reverts=reverts)


def keeper_debt_to_cover(
    coll_i: Array, debt_j: Array, price_i: Array, price_j: Array, bonus_i: Array, hf: Array,
    total_debt_usd: Array, max_repay: Array = math.inf,
    close_factor: Any = DEFAULT_CLOSE_FACTOR, full_close_hf: Any = CLOSE_FACTOR_HF_THRESHOLD,
    min_close_usd: Any = MIN_BASE_MAX_CLOSE_FACTOR_USD, min_close_by_pair: Any = 1.0,
    leftover_usd: Any = MIN_LEFTOVER_USD,
) -> Array:  # fmt: skip
    """The ``debtToCover`` a keeper sends: the most the close factor allows, at most
    ``max_repay`` (the keeper's own limit, e.g. its slippage chunk
    :func:`levgym.engine.rules.chunk_repay`; ``inf`` for none), unless that call would revert on
    the leftover rule; then the most that leaves $1,000 of the pair's debt and of its collateral
    (0 when no such amount exists). The close-factor and leftover arguments are
    :func:`liquidation_call`'s."""
    cap = close_factor_max_repay(
        debt_j, price_j, coll_i, price_i, hf, total_debt_usd, close_factor, full_close_hf,
        min_close_usd, min_close_by_pair,
    )  # fmt: skip
    cap = minimum(cap, max_repay)
    gross = 1.0 + bonus_i
    total = cap * price_j * gross / price_i
    clears = or_(cap >= debt_j, total >= coll_i)
    floor_usd = leftover_usd * (1.0 - LEFTOVER_TOL_FRAC)
    left_ok = and_((debt_j - cap) * price_j >= floor_usd, (coll_i - total) * price_i >= floor_usd)
    keep = minimum(
        (debt_j * price_j - leftover_usd) / price_j,
        (coll_i * price_i - leftover_usd) / (price_j * gross),
    )
    return where(or_(clears, left_ok), cap, maximum(minimum(keep, cap), 0.0))


def pair_gain_usd(
    seized_total: Array, fee: Array, repay: Array, price_i: Array, price_j: Array
) -> Array:
    """The keeper's gain from a call at the oracle: collateral received less debt repaid (USD)."""
    return (seized_total - fee) * price_i - repay * price_j


PAIR_RULE_NAMES = (
    "health_factor",
    "exchange_rate_oracle_usd",
    "stable_oracle_usd",
    "close_factor_max_repay",
    "liquidation_call",
    "keeper_debt_to_cover",
    "pair_gain_usd",
)
"""The scalar rules written with :mod:`levgym.engine.ops` only (numpy, torch, numba)."""


@dataclass(frozen=True)
class LiquidationResult:
    """One liquidation call per liquidatable position on the keeper's pair."""

    supply: np.ndarray
    """Supply after the call ``[..., K]``."""
    debt: np.ndarray
    """Debt after the call (deficit burnt) ``[..., K]``."""
    collateral_index: np.ndarray
    """The pair's collateral reserve ``[...]``, -1 where no call happened."""
    debt_index: np.ndarray
    repay: np.ndarray
    """Debt repaid by the liquidator, asset units of ``debt_index``."""
    seized: np.ndarray
    """Collateral to the liquidator, asset units of ``collateral_index``."""
    protocol_fee: np.ndarray
    profit_usd: np.ndarray
    """``seized * p_i - repay * p_j`` at the oracle: the keeper's criterion."""
    deficit: np.ndarray
    """Debt burnt into the reserves' deficit ``[..., K]`` (``DeficitCreated``)."""


def pair_terms(
    supply: Array, debt: Array, oracle_usd: Array, reserves: Reserves, emode_row: Array = 0,
    collateral_enabled: Array | None = None, max_repay: Array = math.inf,
    close_terms: tuple = V33_CLOSE_TERMS,
) -> tuple[AccountData, LiquidationTerms, np.ndarray]:  # fmt: skip
    """The keeper's call on every (i, j) pair of every position: (account data, terms
    ``[..., K_i, K_j]``, profit ``[..., K_i, K_j]`` with ``-inf`` where no call is possible: HF
    >= 1, ``i`` not an enabled collateral, no debt in ``j``, or the repay would be 0).
    ``max_repay`` (broadcast to ``[..., K_i, K_j]``, asset units of ``j``): the keeper's own
    limit on each pair's repay (:func:`keeper_debt_to_cover`)."""
    supply = np.asarray(supply, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    acct = account_data(supply, debt, price, reserves, emode_row, collateral_enabled)
    _, _, bonus = effective_risk(reserves, emode_row)
    bonus = np.broadcast_to(bonus, supply.shape)
    cm = collateral_mask(supply, reserves, collateral_enabled)
    ci, pi, bi = supply[..., :, None], price[..., :, None], bonus[..., :, None]
    fi = reserves.protocol_fee_frac[:, None]
    dj, pj = debt[..., None, :], price[..., None, :]
    hf = acct.health_factor[..., None, None]
    tot = acct.debt_usd[..., None, None]
    cover = keeper_debt_to_cover(ci, dj, pi, pj, bi, hf, tot, max_repay, *close_terms)
    terms = liquidation_terms(ci, dj, pi, pj, bi, fi, hf, tot, cover, close_terms)
    profit = pair_gain_usd(terms.seized_total, terms.protocol_fee, terms.repay, pi, pj)
    valid = (hf < 1.0) & cm[..., :, None] & (dj > 0.0) & (terms.repay > 0.0) & ~terms.reverts
    return acct, terms, np.where(valid, profit, -np.inf)


PAIR_TIE_FRAC = 1e-9
"""Pairs whose gains are within this share of the best count as tied (the gain is the same for
every debt reserve when the collateral runs out; floats differ in the last digits)."""


def best_pair(profit: Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keeper's pair: (collateral index, debt index, profit) maximising its USD gain at the
    oracle (the seized bonus net of the protocol fee) over ``profit [..., K, K]``; ties (within
    :data:`PAIR_TIE_FRAC`) go to the lowest collateral, then debt, index; -1 where no pair is
    possible."""
    k = profit.shape[-1]
    flat = profit.reshape(*profit.shape[:-2], k * k)
    top = flat.max(axis=-1, keepdims=True)
    ok = np.isfinite(top[..., 0])
    near = np.isfinite(flat) & (flat >= top - PAIR_TIE_FRAC * np.abs(top))
    best = np.argmax(near, axis=-1)
    gain = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
    return np.where(ok, best // k, -1), np.where(ok, best % k, -1), np.where(ok, gain, 0.0)


def liquidate(
    supply: Array, debt: Array, oracle_usd: Array, reserves: Reserves, emode_row: Array = 0,
    collateral_enabled: Array | None = None, max_repay: Array = math.inf,
    close_terms: tuple = V33_CLOSE_TERMS,
) -> LiquidationResult:  # fmt: skip
    """One keeper call on every liquidatable position (HF < 1): the most profitable pair, the
    keeper's ``debtToCover`` (within ``max_repay [..., K_i, K_j]``, :func:`pair_terms`), and
    v3.3's deficit rule: when the call takes the position's last collateral (the pair's
    collateral is all there is and all of it leaves), the rest of its debt in every reserve is
    burnt and added to that reserve's deficit."""
    supply = np.asarray(supply, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    _, terms, profit = pair_terms(
        supply, debt, price, reserves, emode_row, collateral_enabled, max_repay, close_terms
    )
    i, j, gain = best_pair(profit)
    on = i >= 0
    ii, jj = np.maximum(i, 0), np.maximum(j, 0)

    def at(a: np.ndarray) -> np.ndarray:
        g = np.take_along_axis(a, ii[..., None, None], axis=-2)[..., 0, :]
        return np.where(on, np.take_along_axis(g, jj[..., None], axis=-1)[..., 0], 0.0)

    repay, taken, fee = at(terms.repay), at(terms.seized_total), at(terms.protocol_fee)
    seized = taken - fee
    k = reserves.k
    oh_i = (ii[..., None] == np.arange(k)) & on[..., None]
    oh_j = (jj[..., None] == np.arange(k)) & on[..., None]
    new_supply = np.where(oh_i, np.maximum(supply - taken[..., None], 0.0), supply)
    coll_i = np.take_along_axis(supply, ii[..., None], axis=-1)[..., 0]
    all_taken = on & (taken >= coll_i)
    cm = collateral_mask(supply, reserves, collateral_enabled)
    others = (np.where(cm & ~oh_i, supply * price, 0.0)).sum(axis=-1)
    no_coll_left = all_taken & (others == 0.0)
    new_debt = np.where(oh_j, debt - repay[..., None], debt)
    new_supply = np.where(oh_i & all_taken[..., None], 0.0, new_supply)
    deficit = np.where(no_coll_left[..., None], new_debt, 0.0)
    new_debt = np.where(no_coll_left[..., None], 0.0, new_debt)
    return LiquidationResult(
        supply=new_supply,
        debt=new_debt,
        collateral_index=i,
        debt_index=j,
        repay=repay,
        seized=seized,
        protocol_fee=fee,
        profit_usd=gain,
        deficit=deficit,
    )


def write_off_deficit(
    supply: Array, debt: Array, oracle_usd: Array, reserves: Reserves,
    collateral_enabled: Array | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(debt after, deficit ``[..., K]``): a position with debt and no collateral left has all its
    debt burnt into the reserves' deficits. v3.3 does this inside the liquidation that takes the
    last collateral (:func:`liquidate`); a position that is already empty cannot be liquidated in
    v3.3 (no collateral to name) and keeps its debt; a simulator writes it off here."""
    debt = np.asarray(debt, dtype=np.float64)
    empty = no_collateral_value(supply, oracle_usd, reserves, collateral_enabled)[..., None]
    deficit = np.where(empty, debt, 0.0)
    return np.where(empty, 0.0, debt), deficit


def no_collateral_value(
    supply: Array, oracle_usd: Array, reserves: Reserves, collateral_enabled: Array | None = None
) -> np.ndarray:
    """``[...]``: positions whose enabled collateral is worth nothing at the oracle (what
    :func:`write_off_deficit` writes off; with exits and arrivals such a slot is free again)."""
    supply = np.asarray(supply, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    cm = collateral_mask(supply, reserves, collateral_enabled)
    return np.where(cm, supply * price, 0.0).sum(axis=-1) == 0.0


# ----------------------------------------------------------------------------- interest


def borrow_rates_apr(
    reserves: Reserves, total_debt_asset: Array, total_supply_asset: Array
) -> np.ndarray:
    """Each reserve's variable borrow rate ``[..., K]`` on its kinked curve (the single-asset
    engine's rule, :func:`levgym.engine.rules.borrow_rate_apr`, per reserve)."""
    u = utilization(
        np.asarray(total_debt_asset, dtype=np.float64),
        np.asarray(total_supply_asset, dtype=np.float64),
    )
    col = reserves._col
    return borrow_rate_apr(
        u,
        col("base_rate_apr"),
        col("slope1_apr"),
        col("slope2_apr"),
        col("optimal_utilization_frac"),
    )
