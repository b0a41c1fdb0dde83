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
    close: tuple | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """``executeLiquidationCall(collateral i, debt j, debtToCover)``; None when it reverts
    (HF not below 1, nothing to seize or repay, or dust left). ``close``: (close factor,
    full-close HF, small-size USD, 1 if the size test is the pair's collateral and debt else the
    position's debt, leftover USD with 0 for no leftover rule); None: v3.3's."""
    factor, full_hf, small, by_pair, leftover = (
        (0.5, 0.95, SMALL, 1.0, LEFTOVER) if close is None else close
    )
    floor = leftover * (1.0 - 1e-9)
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
    big = coll_base >= small and debt_base >= small if by_pair else a["debt_usd"] >= small
    if big and a["health_factor"] > full_hf:
        half = a["debt_usd"] * factor
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
        if (user_debt - actual) * price[j] < floor or (user_coll - coll_amount) * price[i] < floor:
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
    limit: float = math.inf,
    close: tuple | None = None,
) -> float:
    """A keeper's ``debtToCover`` on pair (i, j): everything up to its own ``limit``; if that
    reverts on dust, the most that leaves the leftover ($1,000) of the pair's debt and
    collateral (``close``: :func:`ref_liquidation_call`'s)."""
    call = ref_liquidation_call(reserves, supply, debt, price, row, i, j, limit, enabled, close)
    if call is not None:
        return limit
    leftover = LEFTOVER if close is None else close[4]
    r = reserves.reserves[i]
    cat = _category(reserves, row)
    bonus = (
        cat.liquidation_bonus
        if cat is not None and r.symbol in cat.collateral
        else r.liquidation_bonus
    )
    by_debt = (debt[j] * price[j] - leftover) / price[j]
    by_coll = (supply[i] * price[i] - leftover) / (price[j] * (1.0 + bonus))
    return max(min(by_debt, by_coll, limit), 0.0)


def ref_liquidate(
    reserves: Reserves, supply: np.ndarray, debt: np.ndarray, price: np.ndarray, rows: np.ndarray,
    enabled: np.ndarray | None = None, pool_asset: np.ndarray | None = None,
    max_slippage_frac: float = 1.0, close: tuple | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One keeper call on every liquidatable position of a book ``[E, N, K]`` (prices ``[E, K]``,
    E-mode rows ``[E, N]``, optional collateral flags ``[E, N, K]``): the pair with the largest
    gain, first pair on ties. With ``max_slippage_frac`` < 1 the keeper sizes each call so that
    what it seizes of ``i`` is at most ``s / (1 - s)`` of pool ``i``'s asset reserve
    (``pool_asset [E, K]``; USDC has no pool)."""
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
                    limit = math.inf
                    r = reserves.reserves[i]
                    if max_slippage_frac < 1.0 and r.symbol != "USDC":
                        cat = _category(reserves, row)
                        member = cat is not None and r.symbol in cat.collateral
                        bonus = cat.liquidation_bonus if member else r.liquidation_bonus
                        most = pool_asset[e, i] * max_slippage_frac / (1.0 - max_slippage_frac)
                        limit = most * p[i] / (1.0 + bonus) / p[j]
                    cover = ref_keeper_cover(reserves, s, d, p, row, i, j, en, limit, close)
                    res = ref_liquidation_call(reserves, s, d, p, row, i, j, cover, en, close)
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


# ----------------------------------------------------------------------------- market substep


def _ref_rate(r: Any, debt_total: float, supply_total: float) -> float:
    u = 1.0 if supply_total <= 0 else min(max(debt_total / supply_total, 0.0), 1.0)
    opt = r.optimal_utilization_frac
    if u <= opt:
        return r.base_rate_apr + r.slope1_apr * u / opt
    return r.base_rate_apr + r.slope1_apr + r.slope2_apr * (u - opt) / (1.0 - opt)


def _ref_oracles(
    reserves: Reserves, params: Any, st: dict, e: int, in_block: bool = False,
    bias: Any = None, held: Any = None,
) -> list[float]:  # fmt: skip
    """One env's oracle: the market source (fundamental blended with the pool), through each
    reserve's feed (``exact``: the source; ``chainlink``: the last answer unless the source moved
    more than the deviation threshold from it or, between blocks, the heartbeat passed; the
    feed's answer and time kept in ``st``), into the reserve's oracle kind. ``bias [E, K]``: the
    reported answer is the candidate times ``1 + bias``; ``held [E, K]``: the feed keeps its
    answer."""
    syms = [r.symbol for r in reserves.reserves]
    q = syms.index("USDC")
    w = params.oracle_pool_weight_frac
    src = []
    for k in range(len(syms)):
        f = float(st["fundamental_usd"][e, k])
        if k == q or w == 0.0:
            src.append(f)
            continue
        amp = _ref_amp(reserves, params)[k]
        price = _ref_pool_price(st["pool_asset"][e, k], st["pool_quote"][e, k], amp)
        pool = price * st["fundamental_usd"][e, q]
        src.append(f ** (1.0 - w) * pool**w)
    now = st["time_h"]
    for k, r in enumerate(reserves.reserves):
        o = r.oracle
        b = 0.0 if bias is None else float(bias[e, k])
        frozen = False if held is None else bool(held[e, k])
        if o.feed == "exact":
            if not frozen:
                st["feed_usd"][e, k] = src[k] * (1.0 + b)
                st["feed_updated_h"][e, k] = now
            continue
        if o.feed == "twap":  # the window's mean, between blocks only
            if not in_block and not frozen:
                window = st["twap_buffer_usd"][e, k]
                st["feed_usd"][e, k] = sum(window) / len(window) * (1.0 + b)
                st["feed_updated_h"][e, k] = now
            continue
        last = float(st["feed_usd"][e, k])
        if math.isnan(last):  # no answer yet: the source, read at hour 0
            last = st["feed_usd"][e, k] = src[k]
            st["feed_updated_h"][e, k] = 0.0
        candidate = src[k] * (1.0 + b)
        moved = abs(candidate / last - 1.0) > o.deviation_frac
        stale = (not in_block) and now - st["feed_updated_h"][e, k] >= o.heartbeat_h - 1e-9
        if (moved or stale) and not frozen:
            st["feed_usd"][e, k] = candidate
            st["feed_updated_h"][e, k] = now
    feed = [float(st["feed_usd"][e, k]) for k in range(len(syms))]
    return ref_oracle(
        reserves, feed, list(st["exchange_ratio"][e]), list(st["snapshot_ratio"][e]), now
    )


def _ref_gas_and_capacity(reserves: Reserves, params: Any, st: dict, gas_gwei: Any):
    """Per env: (USD gas of one keeper call, keeper calls the substep holds). Gas: the fixed USD
    plus ``units * gwei * 1e-9`` ETH at the WETH fundamental; capacity: all at normal gas,
    ``ref / gas`` of it above the congestion reference, rounded down, at least one."""
    e_n = st["supply"].shape[0]
    syms = [r.symbol for r in reserves.reserves]
    gwei = [float(params.gas_price_gwei)] * e_n
    if gas_gwei is not None:
        g = np.broadcast_to(np.asarray(gas_gwei, dtype=float), (e_n,))
        gwei = [float(x) for x in g]
    gas, cap = [], []
    for e in range(e_n):
        usd = float(params.gas_usd_per_call)
        if params.gas_units_per_call > 0:
            eth = st["fundamental_usd"][e, syms.index("WETH")]
            usd = usd + gwei[e] * 1e-9 * params.gas_units_per_call * eth
        gas.append(usd)
        c = params.keeper_capacity_per_substep
        if not math.isinf(c):
            busy = min(params.congestion_ref_gwei / max(gwei[e], 1e-12), 1.0)
            c = max(math.floor(c * busy), 1)
        cap.append(c)
    return gas, cap


def _ref_pick(params: Any, cands: list, pa: Any, pq: Any, fee: list, q: int, usdc: float,
              gas: float, cap_left: float, routed: Any = None) -> set:  # fmt: skip
    """The slots whose calls a round makes, from the candidates ``(result alone, slot, i, j,
    collateral got, repay)`` in slot order: ranked by their result (highest first, slot order on
    ties); with the ``in_block`` filter a call's sale and purchase are priced as the last of the
    ranked candidates' trades in that pool so far (the pool's output for all of them less its
    output for those before); the round's purchases of an asset stay within the share of its
    pool; at most ``cap_left`` calls. ``routed(k, amount)``: what a sale returns across the pool
    and the keepers' off-pool venues (:func:`_ref_route`); None: the pool alone."""

    def sale(k: int, amount: float) -> float:
        if routed is not None:
            return routed(k, amount)
        eff = amount * (1.0 - fee[k])
        return pq[k] * eff / (pa[k] + eff)

    def buy(k: int, amount: float) -> float:
        return math.inf if amount >= pa[k] else pq[k] * amount / (pa[k] - amount) / (1.0 - fee[k])

    k_n = len(fee)
    sold_so_far, bought_so_far, bought = [0.0] * k_n, [0.0] * k_n, [0.0] * k_n
    made, taken = set(), 0
    for _, n, i, j, got, repay in sorted(cands, key=lambda c: -c[0]):
        sold_so_far[i] += got
        bought_so_far[j] += repay
        if params.profitability_filter == "in_block":
            out = got if i == q else sale(i, sold_so_far[i]) - sale(i, sold_so_far[i] - got)
            if j == q:
                paid = repay
            else:
                paid = buy(j, bought_so_far[j]) - buy(j, bought_so_far[j] - repay)
            if not (out - paid) * usdc - gas > 0.0:
                continue
        bought[j] += repay
        if j != q and bought[j] > params.max_round_buy_frac * pa[j]:
            continue
        taken += 1
        if taken > cap_left:
            continue
        made.add(n)
    return made


# ----------------------------------------------------------------------------- StableSwap legs
# Curve's own procedures, iterated to convergence (an independent oracle for
# levgym.engine.stableswap, which solves get_y in closed form and the price by bisection).


def _ref_ss_d(x: float, y: float, amp: float) -> float:
    """Curve's ``get_D`` for two coins (``Ann = 2 A``), Newton until it stops moving."""
    s, ann = x + y, 2.0 * amp
    d = s
    for _ in range(255):
        dp = d
        for bal in (x, y):
            dp = dp * d / (bal * 2.0)
        prev = d
        d = (ann * s + dp * 2.0) * d / ((ann - 1.0) * d + 3.0 * dp)
        if abs(d - prev) <= 1e-15 * d:
            break
    return d


def _ref_ss_y(x: float, d: float, amp: float) -> float:
    """Curve's ``get_y`` for two coins: ``y = (y^2 + c) / (2 y + b - D)`` from ``y = D``."""
    ann = 2.0 * amp
    c = d * d / (x * 2.0) * d / (ann * 2.0)
    b = x + d / ann
    y = d
    for _ in range(255):
        prev = y
        y = (y * y + c) / (2.0 * y + b - d)
        if abs(y - prev) <= 1e-15 * y:
            break
    return y


def _ref_ss_price(x: float, y: float, amp: float) -> float:
    """``-dy/dx`` on the invariant: the partial derivatives' ratio."""
    d = _ref_ss_d(x, y, amp)
    ann = 2.0 * amp
    return (ann + d**3 / (4.0 * x * x * y)) / (ann + d**3 / (4.0 * x * y * y))


def _ref_ss_x_at(d: float, price: float, amp: float) -> float:
    """The balance ``x`` whose price is ``price`` at invariant ``d``: bisection on ``x``."""
    lo, hi = d * 1e-12, d * 1e12
    while hi / lo - 1.0 > 1e-15:
        mid = math.sqrt(lo * hi)
        if _ref_ss_price(mid, _ref_ss_y(mid, d, amp), amp) > price:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _ref_amp(reserves: Reserves, params: Any) -> list[float]:
    on = getattr(params, "stable_pool", "cpmm") == "stableswap"
    return [
        params.stable_pool_amp if on and r.symbol in ("USDT", "DAI") else 0.0
        for r in reserves.reserves
    ]


def _ref_pool_price(pa: float, pq: float, amp: float) -> float:
    return _ref_ss_price(pa, pq, amp) if amp > 0.0 else pq / pa


def _ref_best_split(venues: list, amount: float) -> list[float]:
    """The split of a sale of ``amount`` across constant-product venues ``(x, y, 1 - fee)`` that
    returns the most, by bisection on the common marginal price ``lam``: venue ``j`` takes
    ``a_j(lam) = max((sqrt(y e x / lam) - x) / e, 0)`` (its marginal price ``y e x / (x + e a)^2``
    equals ``lam``), ``sum a_j(lam) = amount``; the first venue (the pool) takes the rest."""
    if not amount > 0.0:
        return [0.0] * len(venues)

    def take(lam: float) -> list[float]:
        return [max((math.sqrt(y * e * x / lam) - x) / e, 0.0) for x, y, e in venues]

    hi = max(y * e / x for x, y, e in venues)  # nothing is sold above the best start price
    lo = hi
    while sum(take(lo)) < amount:
        lo *= 0.5
    for _ in range(400):
        mid = math.sqrt(lo * hi)
        if mid in (lo, hi):
            break
        if sum(take(mid)) < amount:
            hi = mid
        else:
            lo = mid
    parts = take(math.sqrt(lo * hi))
    rest = amount
    out = []
    for a in parts[1:]:
        a = min(a, rest)
        out.append(a)
        rest -= a
    return [max(rest, 0.0), *out]


def _ref_route(
    params: Any, x: float, y: float, fee: float, f_k: float, f_q: float, amount: float
) -> tuple[float, list]:  # fmt: skip
    """A keeper's sale of ``amount`` of an asset (its pool ``x`` asset, ``y`` USDC, fee ``fee``;
    fundamentals ``f_k``, USDC ``f_q``) across the pool and the off-pool venues: (into the pool,
    ``[(counter, amount, USDC out, arrives late)]``). A fixed share ``keeper_venue_frac`` goes to
    a curve of ``keeper_venue_depth_usd`` USD a side at the fundamental (the pool's fee); with an
    aggregator route or a CEX leg (their own depths and fees) the sale is split where it returns
    the most (:func:`_ref_best_split`); the CEX leg's USDC arrives late when it has latency."""

    def out(vx: float, vy: float, e: float, a: float) -> float:
        return vy * e * a / (vx + e * a)

    agg = getattr(params, "keeper_aggregator_depth_usd", 0.0)
    cex = getattr(params, "keeper_cex_depth_usd", 0.0)
    if agg > 0.0 or cex > 0.0:
        venues, names = [(x, y, 1.0 - fee)], []
        if agg > 0.0:
            venues.append((agg / f_k, agg / f_q, 1.0 - params.keeper_aggregator_fee_frac))
            names.append("aggregator_sold_asset")
        if cex > 0.0:
            venues.append((cex / f_k, cex / f_q, 1.0 - params.keeper_cex_fee_frac))
            names.append("cex_sold_asset")
        parts = _ref_best_split(venues, amount)
        late = params.keeper_cex_latency_substeps > 0.0
        legs = [
            (name, a, out(*v, a), name == "cex_sold_asset" and late)
            for name, a, v in zip(names, parts[1:], venues[1:], strict=True)
        ]
        return parts[0], legs
    frac = getattr(params, "keeper_venue_frac", 0.0)
    if frac > 0.0:
        d = params.keeper_venue_depth_usd
        to_venue = amount * frac
        return amount - to_venue, [
            ("venue_sold_asset", to_venue, out(d / f_k, d / f_q, 1.0 - fee, to_venue), False)
        ]
    return amount, []


def _ref_close(params: Any) -> tuple:
    """The market's close terms in :func:`ref_liquidation_call`'s form (v3.3's by default)."""
    by_pair = 1.0 if getattr(params, "min_close_by", "pair") == "pair" else 0.0
    return (
        getattr(params, "close_factor", 0.5), getattr(params, "full_close_hf", 0.95),
        getattr(params, "min_close_usd", SMALL), by_pair, getattr(params, "leftover_usd", LEFTOVER),
    )  # fmt: skip


def ref_substep(
    reserves: Reserves, st: dict[str, Any], fundamental_usd: np.ndarray, params: Any,
    gas_gwei: Any = None, noise_u: Any = None, oracle_bias_frac: Any = None,
    oracle_held: Any = None, liquidity_frac: Any = None, arb_speed_frac: Any = None,
    arrival_mult: Any = None, freeze: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """The multi-asset market substep of :mod:`levgym.engine.portfolio_market` as plain loops over
    envs, positions and reserves, with its own formulas (pools, arbitrage, oracle blend, interest,
    keeper gate, ranking, in-block pricing, round buy limit, capacity, gas, bundled sales and
    purchases, write-off) and the keeper's pair from :func:`ref_liquidate`. ``st`` holds the
    state's arrays by field name (``counters`` as ``counter:<name>``) and ``time_h``; returns a
    new dict of the same keys."""
    st = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
    shape = st["oracle_usd"].shape
    bias = None if oracle_bias_frac is None else np.broadcast_to(oracle_bias_frac, shape)
    held = None if oracle_held is None else np.broadcast_to(oracle_held, shape)
    liq = None if liquidity_frac is None else np.broadcast_to(liquidity_frac, shape)
    arb = None if arb_speed_frac is None else np.broadcast_to(arb_speed_frac, shape)
    if st.get("feed_usd") is None or st.get("feed_updated_h") is None:
        st["feed_usd"] = np.full(st["oracle_usd"].shape, np.nan)
        st["feed_updated_h"] = np.zeros(st["oracle_usd"].shape)
    syms = [r.symbol for r in reserves.reserves]
    q = syms.index("USDC")
    stable = {"USDC", "USDT", "DAI"}
    fee = [params.stable_pool_fee_frac if s in stable else params.pool_fee_frac for s in syms]
    amp = _ref_amp(reserves, params)
    e_n, n_n, k_n = st["supply"].shape
    win = params.twap_window_substeps
    buf = st.get("twap_buffer_usd")
    if buf is None or buf.shape[-1] != win:  # a window full of the last fundamental
        st["twap_buffer_usd"] = np.repeat(st["fundamental_usd"][:, :, None], win, axis=2)
    slot = st.get("substep_index", 0) % win
    start = {  # the prices before the substep: a run's start when no statistics are kept yet
        "fundamental_min_usd": np.array(st["fundamental_usd"], dtype=float),
        "pool_min_usd": np.array(
            [
                [
                    st["fundamental_usd"][e, k] if k == q else _ref_pool_price(
                        st["pool_asset"][e, k], st["pool_quote"][e, k], amp[k]
                    ) * st["fundamental_usd"][e, q]
                    for k in range(k_n)
                ]
                for e in range(e_n)
            ]
        ),
    } if getattr(params, "statistics", False) else {}  # fmt: skip
    st["fundamental_usd"] = np.array(fundamental_usd, dtype=float)
    st["time_h"] = st["time_h"] + params.substep_h
    for e in range(e_n):
        # with a liquidity driver: both reserves scaled so that sqrt(x * y) = base * frac; then
        # arbitrage: close a share (the env's speed) of the log gap, keep x * y
        for k in range(k_n):
            if k == q:
                continue
            if liquidity_frac is not None:
                x, y = st["pool_asset"][e, k], st["pool_quote"][e, k]
                want = float(st["pool_liquidity_base"][e, k]) * float(liq[e, k])
                scale = want / math.sqrt(x * y)
                st["pool_asset"][e, k], st["pool_quote"][e, k] = x * scale, y * scale
            x, y = st["pool_asset"][e, k], st["pool_quote"][e, k]
            target = st["fundamental_usd"][e, k] / st["fundamental_usd"][e, q]
            p0 = _ref_pool_price(x, y, amp[k])
            speed = params.arb_speed_frac if arb_speed_frac is None else float(arb[e, k])
            p_new = math.exp(math.log(p0) + speed * (math.log(target) - math.log(p0)))
            if amp[k] > 0.0:  # along the StableSwap invariant
                d = _ref_ss_d(x, y, amp[k])
                st["pool_asset"][e, k] = _ref_ss_x_at(d, p_new, amp[k])
                st["pool_quote"][e, k] = _ref_ss_y(st["pool_asset"][e, k], d, amp[k])
                continue
            st["pool_asset"][e, k] = math.sqrt(x * y / p_new)
            st["pool_quote"][e, k] = math.sqrt(x * y * p_new)
        # the TWAP window samples each pool's price (USDC: its fundamental)
        for k in range(k_n):
            if k == q:
                st["twap_buffer_usd"][e, k, slot] = st["fundamental_usd"][e, k]
            else:
                price = _ref_pool_price(st["pool_asset"][e, k], st["pool_quote"][e, k], amp[k])
                st["twap_buffer_usd"][e, k, slot] = price * st["fundamental_usd"][e, q]
        st["oracle_usd"][e] = _ref_oracles(reserves, params, st, e, False, bias, held)
        # interest
        for k, r in enumerate(reserves.reserves):
            tot = float(st["debt"][e, :, k].sum())
            rate = _ref_rate(r, tot, st["lender_supply_asset"][e, k])
            interest = 0.0
            for n in range(n_n):
                add = st["debt"][e, n, k] * rate * params.substep_h / YEAR_H
                st["debt"][e, n, k] += add
                interest += add
            st["counter:interest_asset"][e, k] += interest
            st["lender_supply_asset"][e, k] += interest * (1.0 - r.reserve_factor_frac)
            st["treasury_asset"][e, k] += interest * r.reserve_factor_frac
            st["counter:treasury_interest_asset"][e, k] += interest * r.reserve_factor_frac
        mult = 1.0 if arrival_mult is None else float(np.broadcast_to(arrival_mult, (e_n,))[e])
        frozen = freeze is not None and bool(np.broadcast_to(freeze, (e_n,))[e])
        arrive = _ref_turnover(reserves, st, params, e, noise_u, mult, q)
        _ref_defend(reserves, st, params, e, gas_gwei, noise_u)
        if _ref_loop(reserves, st, params, e, gas_gwei, noise_u, fee, amp, q, arrive, frozen):
            st["oracle_usd"][e] = _ref_oracles(reserves, params, st, e, True, bias, held)
        # the CEX leg's held collateral: a share (1 / latency) fills at the fundamental
        lat = getattr(params, "keeper_cex_latency_substeps", 0.0)
        if getattr(params, "keeper_cex_depth_usd", 0.0) > 0.0 and lat > 0.0:
            if st.get("keeper_cex_pending_asset") is None:
                st["keeper_cex_pending_asset"] = np.zeros((e_n, k_n))
            for k in range(k_n):
                fill = st["keeper_cex_pending_asset"][e, k] * (1.0 if lat <= 1.0 else 1.0 / lat)
                st["keeper_cex_pending_asset"][e, k] -= fill
                st["keeper_pnl_usd"][e] += fill * st["fundamental_usd"][e, k]
    rounds = np.zeros(e_n, dtype=np.int64)
    stats = getattr(params, "statistics", False)
    if stats and st.get("ever_liquidated") is None:
        st["ever_liquidated"] = np.zeros((e_n, n_n), dtype=bool)
    split = (
        getattr(params, "keeper_aggregator_depth_usd", 0.0) > 0.0
        or getattr(params, "keeper_cex_depth_usd", 0.0) > 0.0
    )
    routed_on = split or getattr(params, "keeper_venue_frac", 0.0) > 0.0
    gas_one, cap_left = _ref_gas_and_capacity(reserves, params, st, gas_gwei)
    for _ in range(params.max_cascade_rounds):
        chunk_reserve = st["pool_asset"]
        if split:  # the keepers' size limit counts every venue's asset reserve
            depth = params.keeper_aggregator_depth_usd + params.keeper_cex_depth_usd
            chunk_reserve = st["pool_asset"] + depth / st["fundamental_usd"]
        res = ref_liquidate(
            reserves, st["supply"], st["debt"], st["oracle_usd"], st["emode_row"],
            pool_asset=chunk_reserve, max_slippage_frac=params.keeper_max_slippage_frac,
            close=_ref_close(params),
        )  # fmt: skip
        any_call = False
        for e in range(e_n):
            pa, pq = st["pool_asset"][e], st["pool_quote"][e]
            usdc = st["fundamental_usd"][e, q]
            f_e = st["fundamental_usd"][e]

            def routed(k: int, amount: float, pa=pa, pq=pq, f_e=f_e) -> float:
                to_pool, legs = _ref_route(params, pa[k], pq[k], fee[k], f_e[k], f_e[q], amount)
                eff = to_pool * (1.0 - fee[k])
                return pq[k] * eff / (pa[k] + eff) + sum(leg[2] for leg in legs)

            cands = []
            for n in range(n_n):
                i, j = int(res["collateral_index"][e, n]), int(res["debt_index"][e, n])
                if i < 0:
                    continue
                got, repay = float(res["seized"][e, n]), float(res["repay"][e, n])
                if i == q:
                    proceeds = got
                elif amp[i] > 0.0:
                    d = _ref_ss_d(pa[i], pq[i], amp[i])
                    proceeds = pq[i] - _ref_ss_y(pa[i] + got * (1.0 - fee[i]), d, amp[i])
                elif routed_on:
                    proceeds = routed(i, got)
                else:
                    eff = got * (1.0 - fee[i])
                    proceeds = pq[i] * eff / (pa[i] + eff)
                if j == q:
                    cost = repay
                elif repay >= pa[j]:
                    cost = math.inf
                elif amp[j] > 0.0:
                    d = _ref_ss_d(pa[j], pq[j], amp[j])
                    cost = (_ref_ss_y(pa[j] - repay, d, amp[j]) - pq[j]) / (1.0 - fee[j])
                else:
                    cost = pq[j] * repay / (pa[j] - repay) / (1.0 - fee[j])
                pnl = (proceeds - cost) * usdc - gas_one[e]
                if params.profitability_filter != "off" and not pnl > 0.0:
                    continue
                cands.append((pnl, n, i, j, got, repay))
            made = _ref_pick(
                params, cands, pa, pq, fee, q, usdc, gas_one[e], cap_left[e],
                routed if routed_on else None,
            )  # fmt: skip
            buys = [0.0] * k_n  # purchases of the calls made
            sold = [0.0] * k_n
            calls = 0
            for n in sorted(made):
                i, j = int(res["collateral_index"][e, n]), int(res["debt_index"][e, n])
                got, repay = float(res["seized"][e, n]), float(res["repay"][e, n])
                calls += 1
                for k in range(k_n):
                    st["counter:seized_collateral_asset"][e, k] += (
                        st["supply"][e, n, k] - res["supply"][e, n, k]
                    )
                    st["counter:deficit_asset"][e, k] += res["deficit"][e, n, k]
                st["supply"][e, n] = res["supply"][e, n]
                st["debt"][e, n] = res["debt"][e, n]
                st["counter:protocol_fee_asset"][e, i] += res["protocol_fee"][e, n]
                st["counter:protocol_fee_usd"][e, i] += (
                    res["protocol_fee"][e, n] * st["oracle_usd"][e, i]
                )
                if stats:
                    st["ever_liquidated"][e, n] = True
                st["treasury_asset"][e, i] += res["protocol_fee"][e, n]
                st["counter:repaid_by_liquidators_asset"][e, j] += repay
                buys[j] += repay
                sold[i] += got
            if calls == 0:
                continue
            any_call = True
            rounds[e] += 1
            st["liquidations"][e] += calls
            usdc_in = sold[q]
            usdc_out = 0.0
            # sales into each pool, one bundle
            for k in range(k_n):
                if k == q or sold[k] == 0.0:
                    continue
                to_pool, legs = _ref_route(params, pa[k], pq[k], fee[k], f_e[k], f_e[q], sold[k])
                for name, amount, leg_out, late in legs:
                    st[f"counter:{name}"][e, k] += amount
                    if late:  # held as collateral at the fundamental until it fills
                        st["keeper_cex_pending_asset"][e, k] += leg_out * f_e[q] / f_e[k]
                    else:
                        usdc_in += leg_out
                        st["counter:sale_quote"][e, k] += leg_out
                eff = to_pool * (1.0 - fee[k])
                if amp[k] > 0.0:
                    d = _ref_ss_d(pa[k], pq[k], amp[k])
                    new_y = _ref_ss_y(pa[k] + eff, d, amp[k])
                    out = pq[k] - new_y
                    pa[k], pq[k] = pa[k] + eff, new_y
                else:
                    out = pq[k] * eff / (pa[k] + eff)
                    new_x = pa[k] + eff
                    pq[k] = pa[k] * pq[k] / new_x
                    pa[k] = new_x
                usdc_in += out
                st["counter:sold_asset"][e, k] += sold[k]
                st["counter:sale_quote"][e, k] += out
            for k in range(k_n):
                if k == q:
                    usdc_out += buys[k]
                    continue
                if buys[k] == 0.0:
                    continue
                if amp[k] > 0.0:
                    d = _ref_ss_d(pa[k], pq[k], amp[k])
                    new_y = _ref_ss_y(pa[k] - buys[k], d, amp[k])
                    eff = new_y - pq[k]
                else:
                    eff = pq[k] * buys[k] / (pa[k] - buys[k])
                pa[k] = pa[k] - buys[k]
                pq[k] = pq[k] + eff
                usdc_out += eff / (1.0 - fee[k])
                st["counter:bought_asset"][e, k] += buys[k]
                st["counter:purchase_quote"][e, k] += eff / (1.0 - fee[k])
            st["keeper_pnl_usd"][e] += (usdc_in - usdc_out) * usdc - gas_one[e] * calls
            cap_left[e] = cap_left[e] - calls
            st["oracle_usd"][e] = _ref_oracles(reserves, params, st, e, True, bias, held)
        if not any_call:
            break
    # write-off: debt without collateral
    bp = params.borrowers
    turnover = st.get("active") is not None and (
        bp.exit_rate_per_h > 0.0 or bp.arrival_rate_per_h > 0.0
    )
    for e in range(e_n):
        for n in range(n_n):
            coll = 0.0
            for k, r in enumerate(reserves.reserves):
                if st["supply"][e, n, k] > 0 and r.liquidation_threshold != 0:
                    coll += st["supply"][e, n, k] * st["oracle_usd"][e, k]
            if coll == 0.0:
                for k in range(k_n):
                    st["counter:deficit_asset"][e, k] += st["debt"][e, n, k]
                    st["debt"][e, n, k] = 0.0
                if turnover:  # with exits and arrivals the slot is free again
                    st["active"][e, n] = False
    # deficit coverage from the treasury's revenue of the same reserve; with
    # reserves_then_lenders (the single-asset engine's accounting) the lenders pay what is left
    if params.deficit_cover in ("treasury_each_step", "reserves_then_lenders"):
        lenders_pay = params.deficit_cover == "reserves_then_lenders"
        for e in range(e_n):
            for k in range(k_n):
                owed = (
                    st["counter:deficit_asset"][e, k]
                    - st["counter:deficit_covered_asset"][e, k]
                    - st["counter:lender_loss_asset"][e, k]
                )
                owed = max(owed, 0.0)
                pay = min(owed, max(st["treasury_asset"][e, k], 0.0))
                st["counter:deficit_covered_asset"][e, k] += pay
                st["treasury_asset"][e, k] -= pay
                if lenders_pay:
                    st["counter:lender_loss_asset"][e, k] += owed - pay
                    st["lender_supply_asset"][e, k] -= owed - pay
    if stats:  # the lowest fundamental and pool price of each reserve so far
        for name in ("fundamental_min_usd", "pool_min_usd"):
            if st.get(name) is None:
                st[name] = start[name]
        for e in range(e_n):
            for k in range(k_n):
                f_k = st["fundamental_usd"][e, k]
                price = f_k
                if k != q:
                    pool = _ref_pool_price(st["pool_asset"][e, k], st["pool_quote"][e, k], amp[k])
                    price = pool * st["fundamental_usd"][e, q]
                st["fundamental_min_usd"][e, k] = min(st["fundamental_min_usd"][e, k], f_k)
                st["pool_min_usd"][e, k] = min(st["pool_min_usd"][e, k], price)
    st["cascade_rounds_max"] = np.maximum(st["cascade_rounds_max"], rounds)
    st["substep_index"] = st.get("substep_index", 0) + 1
    return st


def _ref_risk(reserves: Reserves, row: int, k: int) -> tuple[float, float]:
    """(LTV, LT) of reserve ``k`` for a position in E-mode row ``row``."""
    cat = _category(reserves, row)
    r = reserves.reserves[k]
    member = cat is not None and r.symbol in cat.collateral
    lt = cat.liquidation_threshold if member else r.liquidation_threshold
    ltv = 0.0 if r.ltv == 0.0 else (cat.ltv if member else r.ltv)
    return ltv, lt


def _ref_turnover(
    reserves: Reserves, st: dict[str, Any], params: Any, e: int, noise_u: Any, mult: float,
    q: int,
) -> list[int]:  # fmt: skip
    """Exits of env ``e``, in place, and the free slots that receive a borrower
    (``portfolio_borrowers.exit_and_arrive``): with the odds at the reference LTV and rate
    multiplied by ``exp(ltv_el (LTV - ref) - rate_el (rate - ref))`` (the template reserve's
    LTV, the USDC rate), capped at 1/2, a healthy active position whose uniform is in the top
    ``p_exit`` repays and withdraws everything; a free slot whose uniform is below ``p_arrive``
    receives a borrower."""
    bp = params.borrowers
    if st.get("active") is None or (bp.exit_rate_per_h <= 0.0 and bp.arrival_rate_per_h <= 0.0):
        return []
    if noise_u is None:
        raise ValueError("noise_u is needed with exits or arrivals")
    r_q = reserves.reserves[q]
    rate = _ref_rate(r_q, float(st["debt"][e, :, q].sum()), st["lender_supply_asset"][e, q])
    p = [float(x) for x in st["oracle_usd"][e]]
    arrive = []
    for n in range(st["supply"].shape[1]):
        row = int(st["emode_row"][e, n])
        ltv, _ = _ref_risk(reserves, row, int(st["template_reserve"][e, n]))
        odds = math.exp(
            bp.ltv_elasticity * (ltv - bp.ltv_ref) - bp.rate_elasticity * (rate - bp.rate_ref_apr)
        )
        u = float(noise_u[e, n])
        if st["active"][e, n]:
            p_exit = min(max(bp.exit_rate_per_h * params.substep_h / odds, 0.0), 0.5)
            a = ref_account(reserves, list(st["supply"][e, n]), list(st["debt"][e, n]), p, row)
            if u > 1.0 - p_exit and a["health_factor"] >= 1.0:
                for k in range(len(p)):
                    st["counter:withdrawn_collateral_asset"][e, k] += st["supply"][e, n, k]
                    st["counter:repaid_by_borrowers_asset"][e, k] += st["debt"][e, n, k]
                    st["supply"][e, n, k] = 0.0
                    st["debt"][e, n, k] = 0.0
                st["active"][e, n] = False
                st["exits"][e] += 1.0
        else:
            p_arrive = min(max(bp.arrival_rate_per_h * params.substep_h * mult * odds, 0.0), 0.5)
            if u < p_arrive:
                arrive.append(n)
    return arrive


def _ref_loop(
    reserves: Reserves, st: dict[str, Any], params: Any, e: int, gas_gwei: Any, noise_u: Any,
    fee: list[float], amp: list[float], q: int, arrive: list[int] | None = None,
    frozen: bool = False,
) -> bool:  # fmt: skip
    """Loopers of env ``e`` (``portfolio_borrowers.loop``), in place: a slot with a target that
    reacts (as a defender does), holding one collateral reserve with a constant-product pool and
    owing only USDC, sells collateral below ``1 + delever_frac (target - 1)`` to reach its target
    (at most its debt's and its collateral's worth) and borrows above ``target (1 + band)`` to
    reach it (at most what its LTV allows counting what it buys); all sales into a pool as one,
    then borrowing scaled to the USDC reserve's liquidity and cap, then all purchases from a
    pool as one. Arrivals ``arrive`` (free slots) bring their template's collateral; with them
    and the purchases counted at the oracle, each reserve's new supply is scaled to what its
    supply cap leaves above the borrowers' and lenders' supply (with
    ``supply_cap_new_supply``; nothing when ``frozen``), an arrival scaled to nothing stays
    out; an arrival borrows USDC to its template HF within its LTV, scaled with the loopers'
    borrowing. Returns whether a pool moved."""
    arrive = arrive or []
    tgt_all = st.get("looper_target_hf")
    if tgt_all is None and not arrive:
        return False
    bp = params.borrowers
    react = st.get("defend_react_prob")
    odds = 1.0
    if react is not None:
        gwei = float(params.gas_price_gwei)
        if gas_gwei is not None:
            e_n = st["supply"].shape[0]
            gwei = float(np.broadcast_to(np.asarray(gas_gwei, dtype=float), (e_n,))[e])
        odds = 1.0 / (1.0 + gwei / bp.reaction_gas_ref_gwei)
    p = [float(x) for x in st["oracle_usd"][e]]
    k_n, n_n = len(p), st["supply"].shape[1]
    plans = []  # (n, i, sold, wanted borrowing)
    sold = [0.0] * k_n
    for n in range(n_n if tgt_all is not None else 0):
        t = float(tgt_all[e, n])
        if t <= 0.0 or (react is not None and not noise_u[e, n] < react[e, n] * odds):
            continue
        s = [float(x) for x in st["supply"][e, n]]
        d = [float(x) for x in st["debt"][e, n]]
        held = [k for k, r in enumerate(reserves.reserves) if s[k] > 0 and r.liquidation_threshold > 0]  # fmt: skip
        if len(held) != 1 or any(d[k] > 0 for k in range(k_n) if k != q) or d[q] <= 0:
            continue
        i = held[0]
        if i == q or amp[i] > 0.0:
            continue
        r = reserves.reserves[i]
        cat = _category(reserves, int(st["emode_row"][e, n]))
        member = cat is not None and r.symbol in cat.collateral
        lt = cat.liquidation_threshold if member else r.liquidation_threshold
        ltv = 0.0 if r.ltv == 0.0 else (cat.ltv if member else r.ltv)
        coll, owed = s[i] * p[i], d[q] * p[q]
        hf = coll * lt / owed
        if hf > t * (1.0 + bp.relever_band_frac):
            # borrow x: (coll + x) lt = t (owed + x), within (coll + x) ltv >= owed + x
            x = min((coll * lt - t * owed) / (t - lt), (coll * ltv - owed) / (1.0 - ltv))
            plans.append((n, i, 0.0, max(x, 0.0) / p[q]))
        elif 1.0 <= hf < 1.0 + bp.delever_frac * (t - 1.0):
            # sell y: (coll - y) lt = t (owed - y), at most the debt and the collateral
            y = min(max((t * owed - coll * lt) / (t - lt), 0.0), coll, owed)
            plans.append((n, i, y / p[i], 0.0))
            sold[i] += y / p[i]
    if not plans and not arrive:
        return False
    moved = False
    per_sold = [0.0] * k_n
    for k in range(k_n):
        if sold[k] > 0.0:
            x, y = st["pool_asset"][e, k], st["pool_quote"][e, k]
            into = sold[k] * (1.0 - fee[k])
            st["pool_asset"][e, k], st["pool_quote"][e, k] = x + into, x * y / (x + into)
            per_sold[k] = (y - x * y / (x + into)) / sold[k]
            st["counter:withdrawn_collateral_asset"][e, k] += sold[k]
            moved = True
    for n, i, y, _ in plans:
        if y > 0.0:
            paid = min(y * per_sold[i], st["debt"][e, n, q])
            st["supply"][e, n, i] -= y
            st["debt"][e, n, q] -= paid
            st["counter:repaid_by_borrowers_asset"][e, q] += paid
    comes = []  # (n, reserve, collateral, debt) of the arrivals
    if arrive or bp.supply_cap_new_supply or frozen:
        new = [0.0] * k_n
        for _, i, _, w in plans:
            new[i] += w * p[q] / p[i]
        for n in arrive:
            new[int(st["template_reserve"][e, n])] += float(st["template_collateral_asset"][e, n])
        share_new = []
        for k, r in enumerate(reserves.reserves):
            held = float(st["supply"][e, :, k].sum()) + st["lender_supply_asset"][e, k]
            cap = r.supply_cap_asset if bp.supply_cap_new_supply else math.inf
            room = 0.0 if frozen else max(cap - held, 0.0)
            share_new.append(1.0 if new[k] <= room else room / new[k])
        plans = [(n, i, y, w * share_new[i]) for n, i, y, w in plans]
        for n in arrive:
            t = int(st["template_reserve"][e, n])
            if share_new[t] <= 0.0:
                continue
            c = float(st["template_collateral_asset"][e, n]) * share_new[t]
            row = int(st["emode_row"][e, n])
            ltv, lt = _ref_risk(reserves, row, t)
            d = 0.0
            if ltv > 0.0:  # HF = c p lt / (d p_q) at the template HF, at most the LTV's limit
                d = c * p[t] * lt / (max(float(st["template_hf"][e, n]), lt / ltv) * p[q])
            comes.append((n, t, c, d))
    asked = sum(w for _, _, _, w in plans) + sum(d for _, _, _, d in comes)
    owed_all = float(st["debt"][e, :, q].sum())
    free = min(st["lender_supply_asset"][e, q] - owed_all, reserves.reserves[q].borrow_cap_asset - owed_all)  # fmt: skip
    share = 1.0 if asked <= max(free, 0.0) else max(free, 0.0) / asked
    paid_in = [0.0] * k_n
    for _, i, _, w in plans:
        paid_in[i] += w * share
    per_paid = [0.0] * k_n
    for k in range(k_n):
        if paid_in[k] > 0.0:
            x, y = st["pool_asset"][e, k], st["pool_quote"][e, k]
            into = paid_in[k] * (1.0 - fee[k])
            st["pool_asset"][e, k], st["pool_quote"][e, k] = x * y / (y + into), y + into
            per_paid[k] = (x - x * y / (y + into)) / paid_in[k]
            moved = True
    for n, i, _, w in plans:
        if w > 0.0:
            st["supply"][e, n, i] += w * share * per_paid[i]
            st["debt"][e, n, q] += w * share
            st["counter:added_collateral_asset"][e, i] += w * share * per_paid[i]
            st["counter:borrowed_asset"][e, q] += w * share
    for n, t, c, d in comes:
        st["supply"][e, n, t] += c
        st["debt"][e, n, q] += d * share
        st["counter:added_collateral_asset"][e, t] += c
        st["counter:borrowed_asset"][e, q] += d * share
        st["active"][e, n] = True
        st["arrivals"][e] += 1.0
    return moved


def _ref_defend(
    reserves: Reserves, st: dict[str, Any], params: Any, e: int, gas_gwei: Any, noise_u: Any
) -> None:  # fmt: skip
    """Defensive borrowers of env ``e`` (``portfolio_borrowers``), in place: each position from
    its own balances; borrowing within the caps and liquidity left before the phase, scaled
    down together when the env's positions want more. With reaction probabilities a slot acts
    only when its uniform is below its probability over ``1 + gas / reaction_gas_ref_gwei``."""
    trig_all = st.get("defend_trigger_hf")
    if trig_all is None:
        return
    react = st.get("defend_react_prob")
    if react is not None:
        if noise_u is None:
            raise ValueError("noise_u is needed with reaction probabilities")
        gwei = float(params.gas_price_gwei)
        if gas_gwei is not None:
            e_n = st["supply"].shape[0]
            gwei = float(np.broadcast_to(np.asarray(gas_gwei, dtype=float), (e_n,))[e])
        odds = 1.0 / (1.0 + gwei / params.borrowers.reaction_gas_ref_gwei)
        trig_all = np.array(trig_all, dtype=float)
        for n in range(trig_all.shape[1]):
            if not noise_u[e, n] < react[e, n] * odds:
                trig_all[e, n] = 0.0  # does not watch its position this substep
    bp = params.borrowers
    gap = bp.target_gap
    p = [float(x) for x in st["oracle_usd"][e]]
    k_n = len(p)
    n_n = st["supply"].shape[1]
    total = [float(st["debt"][e, :, k].sum()) for k in range(k_n)]
    iso = [0.0] * k_n
    for n in range(n_n):
        a = ref_account(
            reserves,
            list(st["supply"][e, n]),
            list(st["debt"][e, n]),
            p,
            int(st["emode_row"][e, n]),
        )
        if a["isolated"]:
            iso[a["isolation_asset"]] += float(st["debt"][e, n].sum())
    borrows = []  # (n, j, amount, price) wanted
    for n in range(n_n):
        trig = float(trig_all[e, n])
        cap = float(st["defend_capacity_usd"][e, n])
        if trig <= 0.0:
            continue
        s = [float(x) for x in st["supply"][e, n]]
        d = [float(x) for x in st["debt"][e, n]]
        row = int(st["emode_row"][e, n])
        a = ref_account(reserves, s, d, p, row)
        if not (a["debt_usd"] > 0 and a["collateral_usd"] > 0):
            continue
        target = trig + gap
        down = a["health_factor"] < trig and cap > 0.0
        up = bp.rebalance and a["health_factor"] > target + gap
        if not (down or up):
            continue
        j, best = 0, -1.0
        for k in range(k_n):
            if d[k] * p[k] > best:
                j, best = k, d[k] * p[k]
        i, best = 0, -1.0
        for k, r in enumerate(reserves.reserves):
            if s[k] > 0 and r.liquidation_threshold != 0 and s[k] * p[k] > best:
                i, best = k, s[k] * p[k]
        cat = _category(reserves, row)
        r = reserves.reserves[i]
        lt = (
            cat.liquidation_threshold
            if cat is not None and r.symbol in cat.collateral
            else r.liquidation_threshold
        )
        if down and st["defend_repays"][e, n]:
            usd = min(max(a["debt_usd"] - a["threshold_usd"] / target, 0.0), cap, d[j] * p[j])
            amount = min(usd / p[j], d[j])
            st["debt"][e, n, j] = d[j] - amount
            st["counter:repaid_by_borrowers_asset"][e, j] += amount
            st["defend_capacity_usd"][e, n] = max(cap - usd, 0.0)
        elif down:
            usd = min(max(target * a["debt_usd"] - a["threshold_usd"], 0.0) / lt, cap)
            st["supply"][e, n, i] = s[i] + usd / p[i]
            st["counter:added_collateral_asset"][e, i] += usd / p[i]
            st["defend_capacity_usd"][e, n] = max(cap - usd, 0.0)
        elif st["defend_repays"][e, n]:
            want = max(a["threshold_usd"] / target - a["debt_usd"], 0.0) / p[j]
            room = ref_max_borrow(reserves, s, d, p, row, j, total[j], iso)
            borrows.append((n, j, min(want, room)))
        else:
            usd = min(max(a["threshold_usd"] - target * a["debt_usd"], 0.0) / lt, s[i] * p[i])
            amount = min(usd / p[i], s[i])
            st["supply"][e, n, i] = s[i] - amount
            st["counter:withdrawn_collateral_asset"][e, i] += amount
            st["defend_capacity_usd"][e, n] = cap + usd
    wanted = [0.0] * k_n
    for _, j, amount in borrows:
        wanted[j] += amount
    for n, j, amount in borrows:
        r = reserves.reserves[j]
        avail = max(
            min(r.borrow_cap_asset - total[j], st["lender_supply_asset"][e, j] - total[j]), 0.0
        )
        if wanted[j] > avail:
            amount = amount * avail / wanted[j]
        st["debt"][e, n, j] += amount
        st["counter:borrowed_asset"][e, j] += amount
        st["defend_capacity_usd"][e, n] += amount * p[j]
