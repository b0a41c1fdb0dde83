"""A deliberately plain loop of the multi-protocol step: the test oracle of
:mod:`levgym.engine.multiprotocol`.

Python floats and explicit loops over envs, protocols, positions and assets, written from the
contracts' rules (Comet's ``absorbInternal`` / ``quoteCollateral`` / ``buyCollateral``, Morpho
Blue's ``liquidate``) and the step's text, calling none of the vectorised code. The Aave keeper's
call, the oracles and the account values come from the single-protocol oracle
(:mod:`levgym.engine.reference_portfolio`), itself independent of the vectorised rules.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .reference_portfolio import _ref_oracles, _ref_rate, ref_account, ref_liquidate

YEAR_H = 24.0 * 365.0
STABLE = {"USDC", "USDT", "DAI"}


def ref_state(state: Any) -> dict[str, Any]:
    """A :class:`~levgym.engine.multiprotocol.MultiState` as plain dicts and copied arrays."""
    from .portfolio_market import state_to_dict

    return {
        "books": [state_to_dict(b) for b in state.books],
        "pool_asset": state.pool_asset.copy(),
        "pool_quote": state.pool_quote.copy(),
        "pool_group": list(state.pool_group),
        "reserves_base": state.reserves_base.copy(),
        "target_reserves_base": state.target_reserves_base.copy(),
        "collateral_reserve_asset": state.collateral_reserve_asset.copy(),
        **{f"extra:{k}": v.copy() for k, v in state.extra.items()},
        "keeper_pnl_usd": state.keeper_pnl_usd.copy(),
        "cascade_rounds_max": state.cascade_rounds_max.copy(),
        "time_h": state.time_h,
        "pool_reserve_frac": (
            np.ones((state.pool_asset.shape[0], 2, state.pool_asset.shape[2]))
            if state.pool_reserve_frac is None
            else state.pool_reserve_frac.copy()
        ),
    }


def _view(book: dict, st: dict, g: int) -> dict:
    """The book with its group's pools (what ``_ref_oracles`` reads)."""
    v = dict(book)
    v["pool_asset"] = st["pool_asset"][:, g]
    v["pool_quote"] = st["pool_quote"][:, g]
    return v


def _reprice(protocols, st, params, e):
    for p, pr in enumerate(protocols):
        b = st["books"][p]
        b["oracle_usd"][e] = _ref_oracles(pr.reserves, params, _view(b, st, st["pool_group"][p]), e)


def _hf_parts(pr, b, e, n) -> tuple[float, float]:
    a = ref_account(
        pr.reserves, list(b["supply"][e, n]), list(b["debt"][e, n]), list(b["oracle_usd"][e]),
        int(b["emode_row"][e, n]),
    )  # fmt: skip
    return a["threshold_usd"], a["debt_usd"]


def ref_multi_substep(
    protocols: tuple, st: dict[str, Any], fundamental_usd: np.ndarray, params: Any,
    pool_reserve_frac: np.ndarray | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The substep of :func:`levgym.engine.multiprotocol.substep` on ``st`` (from
    :func:`ref_state`); ``params`` is a ``MultiParams``; ``pool_reserve_frac`` ``[E, 2, K]`` the
    pool-drain driver's row (None: no drain). Returns a new dict."""
    mp = params.market
    unified = params.margin == "unified"
    st = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
    st["books"] = [
        {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in b.items()}
        for b in st["books"]
    ]
    syms = [r.symbol for r in protocols[0].reserves.reserves]
    q = syms.index("USDC")
    fee = [mp.stable_pool_fee_frac if s in STABLE else mp.pool_fee_frac for s in syms]
    e_n, n_n, k_n = st["books"][0]["supply"].shape
    p_n = len(protocols)
    g_n = st["pool_asset"].shape[1]
    win = mp.twap_window_substeps
    slots = []
    for b in st["books"]:  # each book's TWAP window (a window full of the last fundamental)
        buf = b.get("twap_buffer_usd")
        if buf is None or buf.shape[-1] != win:
            b["twap_buffer_usd"] = np.repeat(b["fundamental_usd"][:, :, None], win, axis=2)
        slots.append(b.get("substep_index", 0) % win)
    st["time_h"] = st["time_h"] + mp.substep_h
    for b in st["books"]:
        b["fundamental_usd"] = np.array(fundamental_usd, dtype=float)
        b["time_h"] = st["time_h"]
    f = np.array(fundamental_usd, dtype=float)
    if pool_reserve_frac is not None:
        # the drain: each pool's reserves go from the last applied fractions to the new ones
        for e in range(e_n):
            for k in range(k_n):
                for side, key in ((0, "pool_asset"), (1, "pool_quote")):
                    new = float(pool_reserve_frac[e, side, k])
                    old = float(st["pool_reserve_frac"][e, side, k])
                    for g in range(g_n):
                        st[key][e, g, k] = st[key][e, g, k] * new / old
                    st["pool_reserve_frac"][e, side, k] = new
    for e in range(e_n):
        for g in range(g_n):
            for k in range(k_n):
                if k == q:
                    continue
                x, y = st["pool_asset"][e, g, k], st["pool_quote"][e, g, k]
                target = f[e, k] / f[e, q]
                lp = math.log(y / x)
                p_new = math.exp(lp + mp.arb_speed_frac * (math.log(target) - lp))
                st["pool_asset"][e, g, k] = math.sqrt(x * y / p_new)
                st["pool_quote"][e, g, k] = math.sqrt(x * y * p_new)
        # each book's TWAP window samples its group's pool prices (USDC: its fundamental)
        for p, b in enumerate(st["books"]):
            g = st["pool_group"][p]
            for k in range(k_n):
                if k == q:
                    b["twap_buffer_usd"][e, k, slots[p]] = f[e, k]
                else:
                    price = st["pool_quote"][e, g, k] / st["pool_asset"][e, g, k]
                    b["twap_buffer_usd"][e, k, slots[p]] = price * f[e, q]
        _reprice(protocols, st, mp, e)
        # interest per protocol and reserve
        for p, pr in enumerate(protocols):
            b = st["books"][p]
            for k, r in enumerate(pr.reserves.reserves):
                tot = float(b["debt"][e, :, k].sum())
                rate = _ref_rate(r, tot, b["lender_supply_asset"][e, k])
                interest = 0.0
                for n in range(n_n):
                    add = b["debt"][e, n, k] * rate * mp.substep_h / YEAR_H
                    b["debt"][e, n, k] += add
                    interest += add
                b["counter:interest_asset"][e, k] += interest
                b["lender_supply_asset"][e, k] += interest * (1.0 - r.reserve_factor_frac)
                b["treasury_asset"][e, k] += interest * r.reserve_factor_frac
                b["counter:treasury_interest_asset"][e, k] += interest * r.reserve_factor_frac
                if pr.kind == "compound_v3" and k == pr.base_index:
                    st["reserves_base"][e, p] += interest * r.reserve_factor_frac
    rounds = np.zeros(e_n, dtype=np.int64)
    for _ in range(mp.max_cascade_rounds):
        any_call = False
        # Aave keeper calls on every book first (prices of the round's start)
        aave = {
            p: ref_liquidate(pr.reserves, st["books"][p]["supply"], st["books"][p]["debt"],
                             st["books"][p]["oracle_usd"], st["books"][p]["emode_row"])
            for p, pr in enumerate(protocols) if pr.kind == "aave_v3"
        }  # fmt: skip
        for e in range(e_n):
            calls = 0
            target = [-1] * n_n
            if unified:
                for n in range(n_n):
                    thr, debt = 0.0, 0.0
                    best, best_hf = -1, math.inf
                    for p, pr in enumerate(protocols):
                        t, d = _hf_parts(pr, st["books"][p], e, n)
                        thr += t
                        debt += d
                        hf = t / d if d > 0 else math.inf
                        if best < 0 or hf < best_hf:
                            best, best_hf = p, hf
                    if debt > 0 and thr / debt < 1.0:
                        target[n] = best
            # Compound absorbs
            for p, pr in enumerate(protocols):
                if pr.kind != "compound_v3":
                    continue
                b = st["books"][p]
                kb = pr.base_index
                price = b["oracle_usd"][e]
                for n in range(n_n):
                    t, d_usd = _hf_parts(pr, b, e, n)
                    if not (d_usd > 0 and t / d_usd < 1.0) or (unified and target[n] != p):
                        continue
                    value = credit = 0.0
                    for k, r in enumerate(pr.reserves.reserves):
                        amt = b["supply"][e, n, k]
                        if amt > 0 and r.liquidation_threshold != 0:
                            value += amt * price[k]
                            credit += amt * price[k] * (1.0 - r.liquidation_bonus)
                            b["counter:seized_collateral_asset"][e, k] += amt
                            st["collateral_reserve_asset"][e, p, k] += amt
                            st["extra:absorbed_collateral_asset"][e, p, k] += amt
                            b["supply"][e, n, k] = 0.0
                    debt = b["debt"][e, n, kb]
                    credit /= price[kb]
                    short = max(debt * price[kb] - value, 0.0) / price[kb]
                    b["counter:repaid_by_liquidators_asset"][e, kb] += debt - short
                    b["counter:deficit_asset"][e, kb] += short
                    st["reserves_base"][e, p] -= max(debt, credit)
                    st["extra:refund_base"][e, p, kb] += max(credit - debt, 0.0)
                    for k in range(k_n):
                        b["debt"][e, n, k] = 0.0
                    b["liquidations"][e] += 1
                    st["extra:absorbs"][e, p] += 1
                    calls += 1
            # every protocol's opportunities: (p, what, n or k, i, j, got, repay, detail)
            opps = []
            for p, pr in enumerate(protocols):
                b = st["books"][p]
                price = b["oracle_usd"][e]
                if pr.kind == "aave_v3":
                    res = aave[p]
                    for n in range(n_n):
                        i, j = int(res["collateral_index"][e, n]), int(res["debt_index"][e, n])
                        if i < 0 or (unified and target[n] != p):
                            continue
                        opps.append((p, "aave", n, i, j, float(res["seized"][e, n]), float(res["repay"][e, n]), res))  # fmt: skip
                elif pr.kind == "morpho_blue":
                    c = syms.index(pr.collateral_symbol)
                    lb = pr.base_index
                    lltv = pr.reserves.reserves[c].liquidation_threshold
                    lif = min(1.15, 1.0 / (1.0 - 0.3 * (1.0 - lltv)))
                    for n in range(n_n):
                        coll, d = b["supply"][e, n, c], b["debt"][e, n, lb]
                        if not (d > 0 and d * price[lb] > coll * price[c] * lltv):
                            continue
                        if unified and target[n] != p:
                            continue
                        cover = coll * price[c] / (lif * price[lb])
                        if cover <= d:
                            repay, seized, bad = cover, coll, d - cover
                        else:
                            repay, seized, bad = d, min(d * lif * price[lb] / price[c], coll), 0.0
                            if coll - seized <= 0.0:
                                bad = 0.0
                        if seized > 0.0:
                            opps.append((p, "morpho", n, c, lb, seized, repay, bad))
                else:
                    kb = pr.base_index
                    if not st["reserves_base"][e, p] < st["target_reserves_base"][e, p]:
                        continue
                    for k, r in enumerate(pr.reserves.reserves):
                        amt = st["collateral_reserve_asset"][e, p, k]
                        if k == kb or k == q or amt <= 0.0:
                            continue
                        disc = pr.store_front_price_factor * r.liquidation_bonus
                        unit = price[k] * (1.0 - disc) / price[kb]
                        # the profit-maximising purchase: sell until the pool's marginal price
                        # (x y (1 - fee) / (x + e)^2) falls to the unit price
                        g = st["pool_group"][p]
                        x, y = st["pool_asset"][e, g, k], st["pool_quote"][e, g, k]
                        e_best = math.sqrt(x * y * (1.0 - fee[k]) / unit) - x
                        amt = min(max(e_best / (1.0 - fee[k]), 0.0), amt)
                        if amt <= 0.0:
                            continue
                        base_paid = amt * unit
                        opps.append((p, "buy", k, k, kb, amt, base_paid, None))
            # price each at the pools before the round
            ranked = []
            for idx, o in enumerate(opps):
                p, _, _, i, j, got, repay, _ = o
                g = st["pool_group"][p]
                pa, pq = st["pool_asset"][e, g], st["pool_quote"][e, g]
                if i == q:
                    proceeds = got
                else:
                    eff = got * (1.0 - fee[i])
                    proceeds = pq[i] * eff / (pa[i] + eff)
                if j == q:
                    cost = repay
                elif repay >= pa[j]:
                    cost = math.inf
                else:
                    cost = pq[j] * repay / (pa[j] - repay) / (1.0 - fee[j])
                pnl = (proceeds - cost) * f[e, q] - mp.gas_usd_per_call
                if pnl > 0.0:
                    ranked.append((-pnl, idx))
            ranked.sort()
            bought = [[0.0] * k_n for _ in range(g_n)]
            made = []
            for _, idx in ranked:
                p, _, _, _, j, _, repay, _ = opps[idx]
                g = st["pool_group"][p]
                bought[g][j] += repay
                if j != q and bought[g][j] > mp.max_round_buy_frac * st["pool_asset"][e, g, j]:
                    continue
                made.append(idx)
            if not made and calls == 0:
                continue
            if calls:
                any_call = True
            if not made:
                rounds[e] += 1
                continue
            any_call = True
            sold_p = [[0.0] * k_n for _ in range(p_n)]
            buys_p = [[0.0] * k_n for _ in range(p_n)]
            for idx in sorted(made):
                p, what, n, i, j, got, repay, detail = opps[idx]
                b = st["books"][p]
                sold_p[p][i] += got
                buys_p[p][j] += repay
                calls += 1
                if what == "buy":
                    st["collateral_reserve_asset"][e, p, i] -= got
                    st["reserves_base"][e, p] += repay
                    st["extra:collateral_buys"][e, p] += 1
                    st["extra:bought_from_protocol_asset"][e, p, i] += got
                    continue
                b["liquidations"][e] += 1
                b["counter:repaid_by_liquidators_asset"][e, j] += repay
                if what == "aave":
                    res = detail
                    for k in range(k_n):
                        b["counter:seized_collateral_asset"][e, k] += (
                            b["supply"][e, n, k] - res["supply"][e, n, k]
                        )
                        b["counter:deficit_asset"][e, k] += res["deficit"][e, n, k]
                    b["supply"][e, n] = res["supply"][e, n]
                    b["debt"][e, n] = res["debt"][e, n]
                    b["counter:protocol_fee_asset"][e, i] += res["protocol_fee"][e, n]
                    b["counter:protocol_fee_usd"][e, i] += (
                        res["protocol_fee"][e, n] * b["oracle_usd"][e, i]
                    )
                    b["treasury_asset"][e, i] += res["protocol_fee"][e, n]
                else:
                    bad = detail
                    b["counter:seized_collateral_asset"][e, i] += got
                    b["supply"][e, n, i] = (
                        0.0
                        if bad > 0 or got >= b["supply"][e, n, i]
                        else b["supply"][e, n, i] - got
                    )
                    b["debt"][e, n, j] = b["debt"][e, n, j] - repay - bad
                    if bad > 0:
                        b["debt"][e, n, j] = 0.0
                    b["counter:deficit_asset"][e, j] += bad
                    b["lender_supply_asset"][e, j] -= bad
            rounds[e] += 1
            usdc_in = usdc_out = 0.0
            for g in range(g_n):
                members = [p for p in range(p_n) if st["pool_group"][p] == g]
                pa, pq = st["pool_asset"][e, g], st["pool_quote"][e, g]
                for k in range(k_n):
                    amount = sum(sold_p[p][k] for p in members)
                    if k == q:
                        usdc_in += amount
                        continue
                    if amount == 0.0:
                        continue
                    eff = amount * (1.0 - fee[k])
                    out = pq[k] * eff / (pa[k] + eff)
                    new_x = pa[k] + eff
                    pq[k] = pa[k] * pq[k] / new_x
                    pa[k] = new_x
                    usdc_in += out
                    for p in members:
                        share = sold_p[p][k] / amount
                        st["books"][p]["counter:sold_asset"][e, k] += amount * share
                        st["books"][p]["counter:sale_quote"][e, k] += out * share
                for k in range(k_n):
                    amount = sum(buys_p[p][k] for p in members)
                    if k == q:
                        usdc_out += amount
                        continue
                    if amount == 0.0:
                        continue
                    eff = pq[k] * amount / (pa[k] - amount)
                    pa[k] = pa[k] - amount
                    pq[k] = pq[k] + eff
                    usdc_out += eff / (1.0 - fee[k])
                    for p in members:
                        share = buys_p[p][k] / amount
                        st["books"][p]["counter:bought_asset"][e, k] += amount * share
                        st["books"][p]["counter:purchase_quote"][e, k] += (
                            eff / (1.0 - fee[k]) * share
                        )
            st["keeper_pnl_usd"][e] += (usdc_in - usdc_out) * f[e, q] - mp.gas_usd_per_call * len(
                made
            )
            _reprice(protocols, st, mp, e)
        if not any_call:
            break
    # write-off: Aave burns into deficits, Morpho socialises
    for p, pr in enumerate(protocols):
        if pr.kind == "compound_v3":
            continue
        b = st["books"][p]
        for e in range(e_n):
            for n in range(n_n):
                coll = 0.0
                for k, r in enumerate(pr.reserves.reserves):
                    if b["supply"][e, n, k] > 0 and r.liquidation_threshold != 0:
                        coll += b["supply"][e, n, k] * b["oracle_usd"][e, k]
                if coll != 0.0:
                    continue
                for k in range(k_n):
                    d = b["debt"][e, n, k]
                    b["counter:deficit_asset"][e, k] += d
                    if pr.kind == "morpho_blue":
                        b["lender_supply_asset"][e, k] -= d
                    b["debt"][e, n, k] = 0.0
    st["cascade_rounds_max"] = np.maximum(st["cascade_rounds_max"], rounds)
    for p, b in enumerate(st["books"]):
        b["cascade_rounds_max"] = np.maximum(b["cascade_rounds_max"], rounds)
        b["pool_asset"] = st["pool_asset"][:, st["pool_group"][p]].copy()
        b["pool_quote"] = st["pool_quote"][:, st["pool_group"][p]].copy()
    for b in st["books"]:
        b["substep_index"] = b.get("substep_index", 0) + 1
    return st
