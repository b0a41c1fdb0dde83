"""A deliberately plain loop of the cross-margin rules (Aave v3.3): the test oracle of
:mod:`levgym.engine.portfolio`.

Python floats and explicit loops over envs, positions and reserves, written from Aave's Solidity
(``GenericLogic.calculateUserAccountData``, ``LiquidationLogic.executeLiquidationCall``,
``ValidationLogic.validateBorrow``, CAPO's adapters) rather than from the vectorised code, and
calling none of it: only the parameters are shared (the ``Reserve`` and ``EModeCategory``
objects, read field by field).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .portfolio import Reserves

YEAR_H = 24.0 * 365.0
LEFTOVER = 1000.0
SMALL = 2000.0
LEFTOVER_FLOOR = LEFTOVER * (1.0 - 1e-9)  # the same float slack as portfolio.LEFTOVER_TOL_FRAC


def _category(reserves: Reserves, row: int) -> Any:
    return None if row == 0 else reserves.emodes[row - 1]


def ref_oracle(
    reserves: Reserves, market: list[float], ratio: list[float] | None, snapshot: list[float] | None,
    hours: float,
) -> list[float]:  # fmt: skip
    """One env's oracle prices."""
    syms = [r.symbol for r in reserves.reserves]
    out = []
    for k, r in enumerate(reserves.reserves):
        kind = r.oracle.kind
        if kind == "market":
            out.append(float(market[k]))
        elif kind == "stable_pinned":
            out.append(1.0)
        elif kind == "stable_market":
            m = float(market[k])
            out.append(r.oracle.price_cap_usd if m > r.oracle.price_cap_usd else m)
        else:
            now = float(ratio[k])
            snap = now if snapshot is None else float(snapshot[k])
            growth_per_h = snap * r.oracle.max_yearly_ratio_growth_frac / YEAR_H
            max_ratio = snap + growth_per_h * hours
            if max_ratio < now:
                now = max_ratio
            out.append(float(market[syms.index(r.oracle.base_symbol)]) * now)
    return out


def ref_account(
    reserves: Reserves, supply: list[float], debt: list[float], price: list[float], row: int,
    enabled: list[bool] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``calculateUserAccountData`` of one position, plus its isolation state."""
    cat = _category(reserves, row)
    total_coll = total_debt = avg_ltv = avg_lt = 0.0
    n_coll, first, zero_ltv = 0, -1, False
    for k, r in enumerate(reserves.reserves):
        on = supply[k] > 0 and r.liquidation_threshold != 0 and (enabled is None or enabled[k])
        if on:
            n_coll += 1
            if first < 0:
                first = k
            value = supply[k] * price[k]
            total_coll += value
            in_cat = cat is not None and r.symbol in cat.collateral
            if r.ltv != 0:
                avg_ltv += value * (cat.ltv if in_cat else r.ltv)
            else:
                zero_ltv = True
            avg_lt += value * (cat.liquidation_threshold if in_cat else r.liquidation_threshold)
        if debt[k] > 0:
            total_debt += debt[k] * price[k]
    hf = math.inf if total_debt == 0 else avg_lt / total_debt
    isolated = n_coll == 1 and reserves.reserves[first].debt_ceiling_usd != 0
    return {
        "collateral_usd": total_coll,
        "debt_usd": total_debt,
        "threshold_usd": avg_lt,
        "borrow_limit_usd": avg_ltv,
        "health_factor": hf,
        "available_borrows_usd": max(avg_ltv - total_debt, 0.0),
        "isolated": isolated,
        "isolation_asset": first if isolated else -1,
        "has_zero_ltv_collateral": zero_ltv,
    }


def ref_max_borrow(
    reserves: Reserves, supply: list[float], debt: list[float], price: list[float], row: int, j: int,
    total_debt_j: float | None, iso_debt: list[float] | None,
) -> float:  # fmt: skip
    """Most of reserve ``j`` ``validateBorrow`` lets the position take."""
    r = reserves.reserves[j]
    a = ref_account(reserves, supply, debt, price, row)
    if not r.can_borrow:
        return 0.0
    cat = _category(reserves, row)
    if cat is not None and r.symbol not in cat.borrowable:
        return 0.0
    if a["health_factor"] <= 1.0 or a["borrow_limit_usd"] <= 0.0:
        return 0.0
    if a["isolated"] and not r.borrowable_in_isolation:
        return 0.0
    room = a["available_borrows_usd"] / price[j]
    if total_debt_j is not None:
        room = min(room, max(r.borrow_cap_asset - total_debt_j, 0.0))
    if a["isolated"] and iso_debt is not None:
        k = a["isolation_asset"]
        room = min(room, max(reserves.reserves[k].debt_ceiling_usd - iso_debt[k], 0.0))
    return room


def ref_liquidation_call(
    reserves: Reserves, supply: list[float], debt: list[float], price: list[float], row: int,
    i: int, j: int, debt_to_cover: float, enabled: list[bool] | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """``executeLiquidationCall(collateral i, debt j, debtToCover)``; None when it reverts
    (HF not below 1, nothing to seize or repay, or dust left)."""
    a = ref_account(reserves, supply, debt, price, row, enabled)
    r = reserves.reserves[i]
    if enabled is not None and not enabled[i]:
        return None
    if not (
        a["health_factor"] < 1.0 and r.liquidation_threshold != 0 and supply[i] > 0 and debt[j] > 0
    ):
        return None
    cat = _category(reserves, row)
    bonus = (
        cat.liquidation_bonus
        if cat is not None and r.symbol in cat.collateral
        else r.liquidation_bonus
    )
    user_coll, user_debt = supply[i], debt[j]
    debt_base = user_debt * price[j]
    coll_base = user_coll * price[i]
    max_liq = user_debt
    if coll_base >= SMALL and debt_base >= SMALL and a["health_factor"] > 0.95:
        half = a["debt_usd"] * 0.5
        if debt_base > half:
            max_liq = half / price[j]
    actual = debt_to_cover if debt_to_cover < max_liq else max_liq
    base_coll = price[j] * actual / price[i]
    max_coll = base_coll * (1.0 + bonus)
    if max_coll > user_coll:
        coll_amount = user_coll
        actual = price[i] * coll_amount / price[j] / (1.0 + bonus)
    else:
        coll_amount = max_coll
    bonus_coll = coll_amount - coll_amount / (1.0 + bonus)
    fee = bonus_coll * r.protocol_fee_frac
    if actual < user_debt and coll_amount < user_coll:
        if (user_debt - actual) * price[j] < LEFTOVER_FLOOR or (user_coll - coll_amount) * price[
            i
        ] < LEFTOVER_FLOOR:
            return None
    if actual <= 0:
        return None
    new_supply, new_debt = list(supply), list(debt)
    new_supply[i] = 0.0 if coll_amount >= user_coll else user_coll - coll_amount
    new_debt[j] = user_debt - actual
    deficit = [0.0] * len(debt)
    other = 0.0
    for k, rk in enumerate(reserves.reserves):
        on = enabled is None or enabled[k]
        if k != i and supply[k] > 0 and rk.liquidation_threshold != 0 and on:
            other += supply[k] * price[k]
    if coll_amount >= user_coll and other == 0.0:
        for k in range(len(debt)):
            deficit[k] = new_debt[k]
            new_debt[k] = 0.0
    return {
        "repay": actual,
        "seized": coll_amount - fee,
        "protocol_fee": fee,
        "seized_total": coll_amount,
        "supply": new_supply,
        "debt": new_debt,
        "deficit": deficit,
        "profit_usd": (coll_amount - fee) * price[i] - actual * price[j],
    }


def ref_keeper_cover(
    reserves: Reserves,
    supply: list[float],
    debt: list[float],
    price: list[float],
    row: int,
    i: int,
    j: int,
    enabled: list[bool] | None = None,
) -> float:
    """A keeper's ``debtToCover`` on pair (i, j): everything; if that reverts on dust, the most that
    leaves $1,000 of the pair's debt and collateral."""
    if (
        ref_liquidation_call(reserves, supply, debt, price, row, i, j, math.inf, enabled)
        is not None
    ):
        return math.inf
    r = reserves.reserves[i]
    cat = _category(reserves, row)
    bonus = (
        cat.liquidation_bonus
        if cat is not None and r.symbol in cat.collateral
        else r.liquidation_bonus
    )
    by_debt = (debt[j] * price[j] - LEFTOVER) / price[j]
    by_coll = (supply[i] * price[i] - LEFTOVER) / (price[j] * (1.0 + bonus))
    return max(min(by_debt, by_coll), 0.0)


def ref_liquidate(
    reserves: Reserves, supply: np.ndarray, debt: np.ndarray, price: np.ndarray, rows: np.ndarray,
    enabled: np.ndarray | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One keeper call on every liquidatable position of a book ``[E, N, K]`` (prices ``[E, K]``,
    E-mode rows ``[E, N]``, optional collateral flags ``[E, N, K]``): the pair with the largest
    gain, first pair on ties."""
    e_n, n_n, k_n = supply.shape
    out = {
        "supply": supply.astype(float).copy(),
        "debt": debt.astype(float).copy(),
        "deficit": np.zeros_like(supply, dtype=float),
        "collateral_index": np.full((e_n, n_n), -1),
        "debt_index": np.full((e_n, n_n), -1),
        "repay": np.zeros((e_n, n_n)),
        "seized": np.zeros((e_n, n_n)),
        "protocol_fee": np.zeros((e_n, n_n)),
        "profit_usd": np.zeros((e_n, n_n)),
    }
    for e in range(e_n):
        p = [float(x) for x in price[e]]
        for n in range(n_n):
            s = [float(x) for x in supply[e, n]]
            d = [float(x) for x in debt[e, n]]
            row = int(rows[e, n])
            en = None if enabled is None else [bool(x) for x in enabled[e, n]]
            calls = []
            for i in range(k_n):
                for j in range(k_n):
                    cover = ref_keeper_cover(reserves, s, d, p, row, i, j, en)
                    res = ref_liquidation_call(reserves, s, d, p, row, i, j, cover, en)
                    if res is not None:
                        calls.append((i, j, res))
            if not calls:
                continue
            top = max(c[2]["profit_usd"] for c in calls)
            # the first pair within 1e-9 of the best gain (portfolio.PAIR_TIE_FRAC)
            i, j, res = next(c for c in calls if c[2]["profit_usd"] >= top - 1e-9 * abs(top))
            out["supply"][e, n] = res["supply"]
            out["debt"][e, n] = res["debt"]
            out["deficit"][e, n] = res["deficit"]
            out["collateral_index"][e, n] = i
            out["debt_index"][e, n] = j
            for key in ("repay", "seized", "protocol_fee", "profit_usd"):
                out[key][e, n] = res[key]
    return out
