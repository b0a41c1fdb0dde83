"""Lending protocols as an axis: the rules of each protocol kind (Aave v3, Compound v3, Morpho
Blue) over a shared asset axis, and the unified margin layer's account-level rules.

Every protocol is a :class:`Protocol`: a kind, a name and a
:class:`~levgym.engine.portfolio.Reserves` over the **same symbols in the same order** as the
other protocols of the market (a symbol a protocol does not list is a reserve with
``can_collateral=False`` and ``can_borrow=False``), so positions of every protocol are ``[E, N, K]``
on one asset axis and share the per-asset pools. What the fields of a ``Reserve`` mean per kind:

- ``aave_v3``: Aave v3.3 as in :mod:`levgym.engine.portfolio` (its rules are called, not copied).
- ``compound_v3`` (Comet, ``compound-finance/comet`` ``Comet.sol``): one borrowable reserve, the
  **base** asset, which is not collateral; each collateral reserve has ``ltv`` =
  ``borrowCollateralFactor``, ``liquidation_threshold`` = ``liquidateCollateralFactor`` and
  ``liquidation_bonus`` = ``1 - liquidationFactor`` (the penalty: the account is credited
  ``liquidationFactor`` of its collateral's value). An account is liquidatable when its
  liquidity ``sum_i coll_i p_i liquidateCF_i - debt p_base`` is negative, i.e. its HF (LT =
  liquidateCF) is below 1. :func:`comet_absorb`: the protocol takes **all** its collateral into
  its collateral reserves and its debt; the account is credited ``sum_i coll_i p_i LF_i`` (the
  part above the debt is paid back to it as base); the protocol's base reserves fall by
  ``max(debt, credit)``. :func:`comet_quote_collateral` / :func:`comet_buy_collateral`: anyone
  buys collateral from the protocol with base at the oracle price discounted by
  ``storeFrontPriceFactor * (1 - liquidationFactor)``, **only while the base reserves are below
  ``targetReserves``** (``NotForSale`` otherwise) and not more than the protocol holds
  (``InsufficientReserves``).
- ``morpho_blue`` (``morpho-org/morpho-blue`` ``Morpho.sol``): one isolated market, one
  collateral reserve (``ltv = liquidation_threshold = LLTV``) and one loan reserve (the base);
  ``liquidation_bonus`` = ``LIF - 1`` with :func:`morpho_lif` ``LIF = min(1.15, 1 / (1 - 0.3 (1 -
  LLTV)))`` (checked). :func:`morpho_liquidate`: a position whose borrow exceeds ``coll * p * LLTV``
  may be liquidated whole (no close factor): the liquidator repays ``min(debt, coll p_c / (LIF
  p_l))`` and seizes ``repay * LIF * p_l / p_c`` (all the collateral when it binds); a position
  left with debt and no collateral has that debt **socialised at once** (``totalSupplyAssets``
  and ``totalBorrowAssets`` fall by it: the market's suppliers take the loss).

The unified margin layer (:func:`unified_health_factor`, :func:`unified_liquidation_target`):
an account spans protocols (slot ``n`` of every protocol is one account); its health factor is
``sum_p threshold_usd_p / sum_p debt_usd_p`` (linear over its collateral and debt, each protocol
weighting its collateral by its own thresholds at its own oracle), which is never below the
lowest per-protocol HF (a mediant). The layer liquidates only when that account HF is below 1,
and then one protocol per round: the one whose own HF is lowest (ties: the lowest protocol
index), with that protocol's own liquidation rule. docs/interoperable-margin.md states why.

Amounts are floats (no integer rounding of the contracts); every function is numpy and
vectorised over the leading axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .ops import minimum, where
from .params import _check_range
from .portfolio import Reserves, account_data, collateral_mask

PROTOCOL_KINDS = ("aave_v3", "compound_v3", "morpho_blue")
"""The protocol kinds the engine knows."""

MORPHO_MAX_LIF = 1.15
"""Morpho Blue's ``MAX_LIQUIDATION_INCENTIVE_FACTOR`` (``ConstantsLib``)."""
MORPHO_LIQUIDATION_CURSOR = 0.3
"""Morpho Blue's ``LIQUIDATION_CURSOR`` (``ConstantsLib``)."""
LIF_TOL = 1e-9
"""A Morpho reserve's ``liquidation_bonus`` must equal ``LIF(LLTV) - 1`` within this."""

Array = Any


def morpho_lif(lltv: Array) -> Array:
    """Morpho Blue's liquidation incentive factor: ``min(1.15, 1 / (1 - 0.3 * (1 - LLTV)))``."""
    return minimum(MORPHO_MAX_LIF, 1.0 / (1.0 - MORPHO_LIQUIDATION_CURSOR * (1.0 - lltv)))


@dataclass(frozen=True)
class Protocol:
    """One lending protocol (or, for ``morpho_blue``, one isolated market) on the asset axis."""

    name: str
    kind: str
    """One of :data:`PROTOCOL_KINDS`."""
    reserves: Reserves
    base_symbol: str = "USDC"
    """``compound_v3``: the base asset (the only borrowable one); ``morpho_blue``: the loan asset."""
    collateral_symbol: str = ""
    """``morpho_blue``: the market's collateral asset."""
    store_front_price_factor: float = 0.5
    """``compound_v3``: share of the liquidation penalty given to collateral buyers as a discount."""
    target_reserves_base: float = 0.0
    """``compound_v3``: ``targetReserves`` in base units; collateral is sold only below it."""
    initial_reserves_base: float = 0.0
    """``compound_v3``: the protocol's base reserves at the start (base units)."""

    def __post_init__(self) -> None:
        o = f"protocol[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"protocol.name={self.name!r} must be a non-empty string")
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(
                f"{o}.kind={self.kind!r} is not allowed; allowed {list(PROTOCOL_KINDS)}"
            )
        if not isinstance(self.reserves, Reserves):
            raise ValueError(f"{o}.reserves must be a Reserves")
        _check_range(o, "store_front_price_factor", self.store_front_price_factor, 0.0, 1.0)
        _check_range(o, "target_reserves_base", self.target_reserves_base, 0.0, 1e13)
        _check_range(o, "initial_reserves_base", self.initial_reserves_base, -1e13, 1e13)
        if self.kind == "aave_v3":
            return
        res = self.reserves
        base = res.index(self.base_symbol)
        borrowable = [r.symbol for r in res.reserves if r.can_borrow]
        if borrowable != [self.base_symbol]:
            raise ValueError(
                f"{o}: a {self.kind} protocol borrows only its base {self.base_symbol!r}; "
                f"borrowable reserves are {borrowable}"
            )
        if res.reserves[base].can_collateral:
            raise ValueError(f"{o}: the base {self.base_symbol!r} cannot be collateral")
        if res.emodes or any(r.debt_ceiling_usd > 0 for r in res.reserves):
            raise ValueError(f"{o}: a {self.kind} protocol has no E-mode and no isolation mode")
        if self.kind == "morpho_blue":
            coll = [r.symbol for r in res.reserves if r.can_collateral]
            if coll != [self.collateral_symbol]:
                raise ValueError(
                    f"{o}: a morpho_blue market has one collateral {self.collateral_symbol!r}; "
                    f"collateral reserves are {coll}"
                )
            r = res.reserves[res.index(self.collateral_symbol)]
            if r.ltv != r.liquidation_threshold:
                raise ValueError(f"{o}: morpho_blue needs ltv == liquidation_threshold (LLTV)")
            want = float(morpho_lif(r.liquidation_threshold)) - 1.0
            if abs(r.liquidation_bonus - want) > LIF_TOL:
                raise ValueError(
                    f"{o}: reserve {r.symbol!r} liquidation_bonus={r.liquidation_bonus:g}; "
                    f"allowed LIF(LLTV) - 1 = {want:.12g}"
                )

    @property
    def base_index(self) -> int:
        return self.reserves.index(self.base_symbol)

    @property
    def liquidation_factor(self) -> np.ndarray:
        """``compound_v3``: Comet's ``liquidationFactor`` per reserve ``[K]`` (1 - bonus)."""
        return 1.0 - self.reserves.bonus

    @property
    def lltv(self) -> float:
        """``morpho_blue``: the market's LLTV."""
        return float(self.reserves.lt[self.reserves.index(self.collateral_symbol)])


def same_asset_axis(protocols: tuple[Protocol, ...]) -> tuple[str, ...]:
    """The symbols every protocol lists, in order (an error naming the first that differs)."""
    if not protocols:
        raise ValueError("protocols=() is empty; allowed at least one protocol")
    syms = protocols[0].reserves.symbols
    names = [p.name for p in protocols]
    if len(set(names)) != len(names):
        raise ValueError(f"protocol names {names} repeat; allowed each once")
    for p in protocols[1:]:
        if p.reserves.symbols != syms:
            raise ValueError(
                f"protocol {p.name!r} lists {list(p.reserves.symbols)}; every protocol must list "
                f"the same symbols in the same order as {protocols[0].name!r}: {list(syms)}"
            )
    return syms


# ----------------------------------------------------------------------------- Compound v3


@dataclass(frozen=True)
class AbsorbResult:
    """``Comet.absorb`` on every liquidatable account of a book ``[..., K]``."""

    absorbed: np.ndarray
    """Which accounts were absorbed ``[...]``."""
    supply: np.ndarray
    """Balances after ``[..., K]`` (the collateral is gone)."""
    debt: np.ndarray
    """Debt after ``[..., K]`` (0 for absorbed accounts)."""
    collateral_taken: np.ndarray
    """Collateral moved into the protocol's collateral reserves ``[..., K]``."""
    debt_absorbed: np.ndarray
    """Base debt the protocol took over ``[...]`` (base units)."""
    credit_base: np.ndarray
    """``sum_i coll_i p_i LF_i / p_base`` ``[...]``: what the account is credited."""
    refund_base: np.ndarray
    """``max(credit - debt, 0)``: base paid back to the account ``[...]``."""
    reserves_delta_base: np.ndarray
    """Change of the protocol's base reserves ``-max(debt, credit)`` ``[...]``."""
    shortfall_base: np.ndarray
    """``max(debt - collateral value at the oracle, 0) / p_base`` ``[...]``: the loss beyond the
    collateral's value, borne by the reserves (the bad debt)."""


def comet_absorb(
    supply: Array, debt: Array, oracle_usd: Array, protocol: Protocol, mask: Array | None = None
) -> AbsorbResult:
    """``absorbInternal`` on every account of ``[..., K]`` balances with HF < 1 (and ``mask``
    where given): all collateral to the protocol, the debt to the protocol, the credit
    ``sum coll p LF`` against the debt (module docstring)."""
    supply = np.asarray(supply, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    res = protocol.reserves
    b = protocol.base_index
    acct = account_data(supply, debt, price, res)
    on = (acct.health_factor < 1.0) & (acct.debt_usd > 0.0)
    if mask is not None:
        on = on & np.asarray(mask, dtype=bool)
    cm = collateral_mask(supply, res)
    taken = np.where(on[..., None] & cm, supply, 0.0)
    value_usd = (taken * price).sum(axis=-1)
    credit_usd = (taken * price * protocol.liquidation_factor).sum(axis=-1)
    pb = price[..., b]
    d = np.where(on, debt[..., b], 0.0)
    credit = credit_usd / pb
    return AbsorbResult(
        absorbed=on,
        supply=supply - taken,
        debt=np.where(on[..., None], 0.0, debt),
        collateral_taken=taken,
        debt_absorbed=d,
        credit_base=credit,
        refund_base=np.maximum(credit - d, 0.0),
        reserves_delta_base=-np.maximum(d, credit),
        shortfall_base=np.where(on, np.maximum(d * pb - value_usd, 0.0) / pb, 0.0),
    )


def comet_collateral_price_base(
    price_asset_usd: Array, price_base_usd: Array, liquidation_factor: Array, store_front: Array
) -> Array:
    """Base paid per unit of collateral by a buyer: the oracle price discounted by
    ``store_front * (1 - liquidationFactor)``, in base units (``quoteCollateral``'s inverse)."""
    return price_asset_usd * (1.0 - store_front * (1.0 - liquidation_factor)) / price_base_usd


def comet_quote_collateral(
    base_amount: Array, price_asset_usd: Array, price_base_usd: Array, liquidation_factor: Array,
    store_front: Array,
) -> Array:  # fmt: skip
    """``quoteCollateral``: collateral (asset units) that ``base_amount`` buys."""
    return base_amount / comet_collateral_price_base(
        price_asset_usd, price_base_usd, liquidation_factor, store_front
    )


def comet_buy_collateral(
    base_amount: Array, reserves_base: Array, target_reserves_base: Array,
    collateral_reserve_asset: Array, price_asset_usd: Array, price_base_usd: Array,
    liquidation_factor: Array, store_front: Array,
):  # fmt: skip
    """``buyCollateral``: (collateral bought, base paid, done). Nothing happens (``done``
    False) when the reserves are at or above target (``NotForSale``) or the quote exceeds the
    collateral the protocol holds (``InsufficientReserves``)."""
    amount = comet_quote_collateral(
        base_amount, price_asset_usd, price_base_usd, liquidation_factor, store_front
    )
    done = (reserves_base < target_reserves_base) & (amount <= collateral_reserve_asset)
    return where(done, amount, 0.0), where(done, base_amount, 0.0), done


# ----------------------------------------------------------------------------- Morpho Blue


@dataclass(frozen=True)
class MorphoResult:
    """``Morpho.liquidate`` by a keeper that seizes as much as it may, on every position."""

    liquidated: np.ndarray
    supply: np.ndarray
    debt: np.ndarray
    repay: np.ndarray
    """Loan asset repaid ``[...]``."""
    seized: np.ndarray
    """Collateral seized ``[...]``."""
    bad_debt: np.ndarray
    """Loan asset socialised to the market's suppliers ``[...]`` (the position's collateral is 0)."""


def morpho_liquidate(
    supply: Array, debt: Array, oracle_usd: Array, protocol: Protocol, mask: Array | None = None
) -> MorphoResult:
    """Liquidate every unhealthy position (``debt p_l > coll p_c LLTV``; ``mask`` where given) of
    a Morpho market whole: repay ``min(debt, coll p_c / (LIF p_l))``, seize ``repay LIF p_l / p_c``
    (all the collateral when that binds); debt left on a position without collateral is bad debt,
    socialised at once."""
    supply = np.asarray(supply, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    price = np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), supply.shape)
    res = protocol.reserves
    c, b = res.index(protocol.collateral_symbol), protocol.base_index
    lltv = protocol.lltv
    lif = float(morpho_lif(lltv))
    coll, d = supply[..., c], debt[..., b]
    pc, pl = price[..., c], price[..., b]
    on = (d > 0.0) & (d * pl > coll * pc * lltv)
    if mask is not None:
        on = on & np.asarray(mask, dtype=bool)
    max_repay = coll * pc / (lif * pl)
    coll_binds = max_repay <= d
    repay = np.where(on, np.where(coll_binds, max_repay, d), 0.0)
    seized = np.where(on, np.where(coll_binds, coll, np.minimum(repay * lif * pl / pc, coll)), 0.0)
    left_coll = coll - seized
    left_debt = d - repay
    bad = np.where(on & (left_coll <= 0.0), left_debt, 0.0)
    new_supply = supply.copy()
    new_supply[..., c] = np.where(on, np.where(coll_binds, 0.0, left_coll), coll)
    new_debt = debt.copy()
    new_debt[..., b] = np.where(on, left_debt - bad, d)
    return MorphoResult(
        liquidated=on,
        supply=new_supply,
        debt=new_debt,
        repay=repay,
        seized=seized,
        bad_debt=bad,
    )


# ----------------------------------------------------------------------------- unified margin


def unified_health_factor(threshold_usd: Array, debt_usd: Array) -> np.ndarray:
    """The account-level HF of the unified margin layer over the protocol axis (last axis ``P``):
    ``sum_p threshold_usd_p / sum_p debt_usd_p`` (``inf`` without debt). A mediant of the
    per-protocol HFs ``threshold_p / debt_p``: never below the lowest of them."""
    thr = np.asarray(threshold_usd, dtype=np.float64).sum(axis=-1)
    d = np.asarray(debt_usd, dtype=np.float64).sum(axis=-1)
    ok = d > 0.0
    return np.where(ok, thr / np.where(ok, d, 1.0), np.inf)


def unified_liquidation_target(threshold_usd: Array, debt_usd: Array) -> np.ndarray:
    """Which protocol the layer liquidates in this round, per account ``[...]`` (``-1``: none):
    when the account HF is below 1, the protocol with the lowest own HF (ties: the lowest index);
    that protocol's HF is then below 1 too (it is at most the account's)."""
    thr = np.asarray(threshold_usd, dtype=np.float64)
    d = np.asarray(debt_usd, dtype=np.float64)
    ok = d > 0.0
    hf_p = np.where(ok, thr / np.where(ok, d, 1.0), np.inf)
    target = np.argmin(hf_p, axis=-1)
    under = unified_health_factor(thr, d) < 1.0
    return np.where(under, target, -1)


def protocol_account_values(
    protocol: Protocol, supply: Array, debt: Array, oracle_usd: Array, emode_row: Array = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(threshold USD, debt USD) of each position ``[...]`` under ``protocol``'s own weights and
    oracle: the inputs of the unified layer."""
    a = account_data(supply, debt, oracle_usd, protocol.reserves, emode_row)
    return a.threshold_usd, a.debt_usd
