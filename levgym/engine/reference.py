"""A deliberately plain per-position loop of the substep rules: the test oracle of the batched engine.

Everything here is Python floats and explicit loops over envs and positions, written from
the model's rules (docs/model.md) rather than from the vectorized code. It is slow on purpose and used only by
tests and by `levgym bench` as the baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .drivers import DriverRow
from .orders import Orders
from .params import HOURS_PER_YEAR, EngineParams
from .rules import DEFENSIVE, LOOPER
from .schema import DRIVER_FIELDS, ENV_FIELDS, ORDER_FIELDS, POSITION_FIELDS
from .state import State


def _hf(c: float, d: float, o: float, lt: float, dp: float) -> float:
    den = d * dp
    return c * (o * lt) / den if den > 0 else math.inf


def _rate(total: float, supply: float, m: dict) -> float:
    u = total / supply if supply > 0 else 1.0
    u = min(max(u, 0.0), 1.0)
    opt = m["optimal_utilization_frac"]
    return (
        m["base_rate_apr"]
        + m["slope1_apr"] * min(u, opt) / opt
        + m["slope2_apr"] * max(u - opt, 0.0) / (1.0 - opt)
    )


def _sell(x: float, y: float, dx: float, fee: float) -> tuple[float, float, float]:
    eff = dx * (1.0 - fee)
    out = y * eff / (x + eff)
    return x + eff, y * x / (x + eff), out


def _buy(x: float, y: float, dy: float, fee: float) -> tuple[float, float, float]:
    eff = dy * (1.0 - fee)
    out = x * eff / (y + eff)
    return x * y / (y + eff), y + eff, out


def _best_split(venues: list[tuple[float, float, float]], amount: float) -> list[float]:
    """How much of ``amount`` to sell into each constant-product venue ``(x, y, fee)`` so that
    the sale returns the most, by bisection on the common marginal price: at marginal price
    ``lam`` a venue takes what brings its marginal price ``y e x / (x + e a)^2`` down to ``lam``
    (nothing if it starts below); the total falls as ``lam`` rises."""
    if amount <= 0.0:
        return [0.0] * len(venues)

    def takes(lam: float) -> list[float]:
        out = []
        for x, y, fee in venues:
            e = 1.0 - fee
            out.append(max((math.sqrt(y * e * x / lam) - x) / e, 0.0))
        return out

    hi = max(y * (1.0 - fee) / x for x, y, fee in venues)  # nobody sells above this
    lo = hi
    while sum(takes(lo)) < amount:
        lo *= 0.5
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if sum(takes(mid)) >= amount:
            lo = mid
        else:
            hi = mid
    return takes(lo)


def _source(f: float, pool_usd: float, w: float) -> float:
    if w == 0.0:
        return f
    return math.exp((1.0 - w) * math.log(f) + w * math.log(pool_usd))


def _refresh(
    m: dict,
    params: EngineParams,
    now: float,
    source: float,
    twap: float | None,
    bias: float,
    frozen: bool,
    in_block: bool,
) -> None:
    mk = params.market
    kind = mk.oracle_kind
    if kind == "twap":
        if in_block:
            return
        cand, update = twap * (1.0 + bias), not frozen
    elif kind == "exact":
        cand, update = source * (1.0 + bias), not frozen
    else:
        cand = source * (1.0 + bias)
        update = abs(cand / m["oracle_usd"] - 1.0) > mk.oracle_deviation_frac
        if not in_block:
            update = update or (now - m["oracle_updated_h"]) >= mk.oracle_heartbeat_h - 1e-9
        update = update and not frozen
    if update:
        m["oracle_usd"] = cand
        m["oracle_updated_h"] = now


def reference_substep(
    state: State,
    row: DriverRow,
    noise_u: np.ndarray,
    params: EngineParams,
    orders: Orders | None = None,
) -> tuple[State, np.ndarray]:
    """The same substep as :func:`levgym.engine.step.substep`, one position at a time (numpy in and out)."""
    order = {}
    for name in ORDER_FIELDS:
        v = None if orders is None else getattr(orders, name)
        order[name] = [0.0] * state.num_envs if v is None else [float(x) for x in np.asarray(v)]
    s = state.to_numpy()
    e_count, n_count = s.num_envs, s.num_positions
    r = {name: np.asarray(getattr(row, name)) for name in DRIVER_FIELDS}
    u = np.asarray(noise_u)
    mk, b, pr, run = params.market, params.borrowers, params.protocol, params.run
    dt = run.substep_h
    now = s.time_h + dt
    fee = mk.pool_fee_frac

    envs: list[dict[str, Any]] = []
    for e in range(e_count):
        m: dict[str, Any] = {}
        for f_ in ENV_FIELDS:
            m[f_] = float(getattr(s, f_)[e])
        m["twap"] = [float(v) for v in s.twap_buffer_usd[e]]
        m["pos"] = [
            {name: getattr(s, name)[e, i].item() for name in POSITION_FIELDS}
            for i in range(n_count)
        ]
        envs.append(m)

    # 1-3: fundamental, liquidity, arbitrage, TWAP sample, oracle.
    for e, m in enumerate(envs):
        f, dp = float(r["fundamental_usd"][e]), float(r["debt_price_usd"][e])
        x, y = m["pool_asset"], m["pool_debt"]
        scale = m["pool_liquidity_base"] * float(r["liquidity_frac"][e]) / math.sqrt(x * y)
        x, y = x * scale, y * scale
        price = y / x
        new_price = math.exp(
            math.log(price) + float(r["arb_speed_frac"][e]) * (math.log(f / dp) - math.log(price))
        )
        k = x * y
        x, y = math.sqrt(k / new_price), math.sqrt(k * new_price)
        pool_usd = y / x * dp
        m["twap"][s.substep_index % mk.twap_window_substeps] = pool_usd
        twap = sum(m["twap"]) / len(m["twap"])
        src = _source(f, pool_usd, mk.oracle_pool_weight_frac)
        _refresh(
            m,
            params,
            now,
            src,
            twap,
            float(r["oracle_bias_frac"][e]),
            bool(r["oracle_frozen"][e]) or order["pause_oracle"][e] != 0.0,
            False,
        )
        m.update(
            fundamental_usd=f,
            debt_price_usd=dp,
            gas_gwei=float(r["gas_gwei"][e]),
            pool_asset=x,
            pool_debt=y,
        )
        # the agents' orders: the liquidity provider, then the outside liquidator's sale
        lp = order["liquidity_delta_frac"][e]
        if lp != 0.0:
            m["pool_liquidity_base"] *= 1.0 + lp
            m["liquidity_added_debt"] += m["pool_debt"] * (1.0 + lp) - m["pool_debt"]
            m["pool_asset"] *= 1.0 + lp
            m["pool_debt"] *= 1.0 + lp
        sell = order["sell_asset"][e]
        m["agent_sold_asset"] += sell
        if sell > 0.0:
            m["agent_sale_mid_debt"] += sell * (m["pool_debt"] / m["pool_asset"])
            x, y, out = _sell(m["pool_asset"], m["pool_debt"], sell, fee)
            m["pool_asset"], m["pool_debt"] = x, y
            m["agent_sale_debt"] += out

    # 4: interest.
    for m in envs:
        total = sum(p["debt_usd"] for p in m["pos"])
        growth = _rate(total, m["supply_usd"], m) * (dt / HOURS_PER_YEAR)
        interest = 0.0
        for p in m["pos"]:
            add = p["debt_usd"] * growth
            p["debt_usd"] += add
            interest += add
        to_res = interest * m["reserve_factor_frac"]
        m["interest_usd"] += interest
        m["reserves_usd"] += to_res
        m["reserve_income_usd"] += to_res
        m["supply_usd"] += interest - to_res

    # 5: borrowers.
    for e, m in enumerate(envs):
        o, dp, lt, ltv = m["oracle_usd"], m["debt_price_usd"], m["liquidation_threshold"], m["ltv"]
        gas_factor = 1.0 / (1.0 + m["gas_gwei"] / b.reaction_gas_ref_gwei)
        rate = _rate(sum(p["debt_usd"] for p in m["pos"]), m["supply_usd"], m)
        attract = math.exp(
            b.ltv_elasticity * (ltv - b.ltv_ref) - b.rate_elasticity * (rate - b.rate_ref_apr)
        )
        p_exit = min(max(b.exit_rate_per_h * dt / attract, 0.0), 0.5)
        p_arr = min(
            max(b.arrival_rate_per_h * dt * float(r["arrival_mult"][e]) * attract, 0.0), 0.5
        )
        plans = []
        for i, p in enumerate(m["pos"]):
            c, d = p["collateral_asset"], p["debt_usd"]
            cv, dv = c * o, d * dp
            hf = _hf(c, d, o, lt, dp)
            ui = float(u[e, i])
            plan = {
                "add": 0.0,
                "rep": 0.0,
                "sell": 0.0,
                "want": 0.0,
                "exit": False,
                "arrive": False,
            }
            if p["active"]:
                reacts = d > 0 and ui < p["react_prob"] * gas_factor
                plan["exit"] = ui > 1.0 - p_exit and hf >= 1.0
                if reacts and p["kind"] == DEFENSIVE and hf < p["trigger_hf"]:
                    target = p["trigger_hf"] + b.defend_target_gap
                    if p["repays"]:
                        plan["rep"] = min(max(dv - cv * lt / target, 0.0) / dp, d)
                    else:
                        plan["add"] = max(target * dv / lt - cv, 0.0) / o
                if reacts and p["kind"] == LOOPER:
                    t = p["target_hf"]
                    if hf > t * (1.0 + b.relever_band_frac):
                        want = min((cv * lt - t * dv) / (t - lt), (cv * ltv - dv) / (1.0 - ltv))
                        plan["want"] = max(want, 0.0) / dp
                    if 1.0 <= hf < 1.0 + b.delever_frac * (t - 1.0):
                        plan["sell"] = min(max((t * dv - cv * lt) / (t - lt), 0.0), min(cv, dv)) / o
            else:
                plan["arrive"] = ui < p_arr
            plans.append(plan)
        total_sell = sum(pl["sell"] for pl in plans)
        x, y, out = _sell(m["pool_asset"], m["pool_debt"], total_sell, fee)
        for p, pl in zip(m["pos"], plans, strict=True):
            proceeds = pl["sell"] * (out / total_sell if total_sell > 0 else 0.0)
            rep_del = min(proceeds, p["debt_usd"])
            rep_exit = p["debt_usd"] if pl["exit"] else 0.0
            wd_exit = p["collateral_asset"] if pl["exit"] else 0.0
            p["collateral_asset"] += pl["add"] - pl["sell"] - wd_exit
            p["debt_usd"] -= pl["rep"] + rep_del + rep_exit
            if pl["exit"]:
                p["active"] = False
            m["added_collateral_asset"] += pl["add"]
            m["withdrawn_collateral_asset"] += pl["sell"] + wd_exit
            m["repaid_by_borrowers_usd"] += pl["rep"] + rep_del + rep_exit
            m["exits"] += 1.0 if pl["exit"] else 0.0
        # the supply cap (no room at all while the governor freezes the market) scales new supply
        held = sum(p["collateral_asset"] for p in m["pos"])
        if order["freeze_borrow"][e] != 0.0:
            room = 0.0
        else:
            room = max(m["supply_cap_asset"] - held, 0.0)
        wanted = sum(
            p["template_collateral_asset"] if pl["arrive"] else pl["want"] * dp / o
            for p, pl in zip(m["pos"], plans, strict=True)
        )
        fill = min(room / wanted, 1.0) if wanted > 0 else 1.0
        arr_c = []
        for p, pl in zip(m["pos"], plans, strict=True):
            pl["want"] *= fill
            if pl["arrive"] and fill <= 0.0:
                pl["arrive"] = False
            arr_c.append(p["template_collateral_asset"] * fill if pl["arrive"] else 0.0)
        total_debt = sum(p["debt_usd"] for p in m["pos"])
        cap = m["borrow_cap_usd"]
        avail = max(min(m["supply_usd"] - total_debt, cap - total_debt), 0.0)
        arr_d = []
        for p, pl, ac in zip(m["pos"], plans, arr_c, strict=True):
            if pl["arrive"]:
                hf_arr = max(p["template_hf"], lt / ltv)
                arr_d.append(ac * o * lt / (hf_arr * dp))
            else:
                arr_d.append(0.0)
        requested = sum(pl["want"] for pl in plans) + sum(arr_d)
        scale = min(avail / requested, 1.0) if requested > 0 else 1.0
        total_buy = sum(pl["want"] * scale for pl in plans)
        x, y, got = _buy(x, y, total_buy, fee)
        m["pool_asset"], m["pool_debt"] = x, y
        for p, pl, ad, ac in zip(m["pos"], plans, arr_d, arr_c, strict=True):
            borrow = pl["want"] * scale
            bought = borrow * (got / total_buy if total_buy > 0 else 0.0)
            p["collateral_asset"] += bought
            p["debt_usd"] += borrow
            m["added_collateral_asset"] += bought
            m["borrowed_usd"] += borrow
            if pl["arrive"]:
                p["collateral_asset"] += ac
                p["debt_usd"] += ad * scale
                p["active"] = True
                m["added_collateral_asset"] += ac
                m["borrowed_usd"] += ad * scale
                m["arrivals"] += 1.0

    # 6: the cascade. First each oracle reads its pool as the borrowers left it (within the block).
    def refresh_in_block(e: int, m: dict) -> None:
        pool_usd = m["pool_debt"] / m["pool_asset"] * m["debt_price_usd"]
        src = _source(m["fundamental_usd"], pool_usd, mk.oracle_pool_weight_frac)
        bias = float(r["oracle_bias_frac"][e])
        frozen = bool(r["oracle_frozen"][e]) or order["pause_oracle"][e] != 0.0
        _refresh(m, params, now, src, None, bias, frozen, True)

    split = mk.keeper_aggregator_depth_usd > 0.0 or mk.keeper_cex_depth_usd > 0.0

    def split_out(m: dict, amount: float) -> tuple[float, list[float], list[float]]:
        """Best split of ``amount`` over the pool, the aggregator route and the CEX leg (both at
        the fundamental, absent without depth): (total out, out per venue, amount per venue)."""
        dp_ = m["debt_price_usd"]
        venues = [(m["pool_asset"], m["pool_debt"], fee)]
        for depth, vfee in (
            (mk.keeper_aggregator_depth_usd, mk.keeper_aggregator_fee_frac),
            (mk.keeper_cex_depth_usd, mk.keeper_cex_fee_frac),
        ):
            if depth > 0.0:
                venues.append((depth / m["fundamental_usd"], depth / dp_, vfee))
            else:
                venues.append((1.0, 0.0, 0.0))  # absent: its marginal price is 0
        parts = _best_split(venues, amount)
        outs = [
            y * a * (1.0 - f) / (x + a * (1.0 - f))
            for (x, y, f), a in zip(venues, parts, strict=True)
        ]
        return sum(outs), outs, parts

    # Before the cascade the CEX leg's held collateral fills at the current fundamental.
    if mk.keeper_cex_depth_usd > 0.0 and mk.keeper_cex_latency_substeps > 0.0:
        lat = mk.keeper_cex_latency_substeps
        for m in envs:
            fill = m["keeper_cex_pending_asset"] * (1.0 if lat <= 1.0 else 1.0 / lat)
            m["keeper_cex_pending_asset"] -= fill
            m["keeper_profit_usd"] += fill * m["fundamental_usd"]
    for e, m in enumerate(envs):
        refresh_in_block(e, m)
    # Then rounds, shared by all envs.
    share = order["claim_share_frac"]
    cap_left = []
    for m in envs:
        frac = min(mk.congestion_ref_gwei / max(m["gas_gwei"], 1e-12), 1.0)
        cap_left.append(max(math.floor(mk.keeper_capacity_per_substep * frac), 1.0))
    rounds = [0.0] * e_count
    for _ in range(mk.max_cascade_rounds):
        any_liq = False
        plans_all = []
        for m in envs:
            o, dp, lt, bonus = (
                m["oracle_usd"],
                m["debt_price_usd"],
                m["liquidation_threshold"],
                m["liquidation_bonus"],
            )
            gas_usd = m["gas_gwei"] * 1e-9 * mk.gas_units_per_liquidation * m["fundamental_usd"]
            cands = []
            for i, p in enumerate(m["pos"]):
                c, d = p["collateral_asset"], p["debt_usd"]
                hf = _hf(c, d, o, lt, dp)
                if not (p["active"] and d > 0 and hf < 1.0):
                    continue
                full = hf <= pr.full_close_hf or d * dp < pr.small_position_usd
                repay = (1.0 if full else m["close_factor"]) * d
                if mk.keeper_chunk_ratio != math.inf:
                    # the slippage limit: against the pool, or all the venues of a split sale
                    depth_asset = m["pool_asset"]
                    if split:
                        depth_asset += (
                            mk.keeper_aggregator_depth_usd + mk.keeper_cex_depth_usd
                        ) / m["fundamental_usd"]
                    repay = min(
                        repay, depth_asset * mk.keeper_chunk_ratio * o / ((1.0 + bonus) * dp)
                    )
                seize = repay * dp * (1.0 + bonus) / o
                if seize > c:
                    seize = c
                    repay = c * o / ((1.0 + bonus) * dp)
                fee_a = pr.protocol_fee_frac * max(seize - repay * dp / o, 0.0)
                # keepers' execution: the best split over the pool, aggregator and CEX; or a
                # share to the off-pool venue (fundamental price, fixed depth)
                if split:
                    quote = split_out(m, seize - fee_a)[0]
                    profit = (quote - repay) * dp - gas_usd
                    if profit > 0 or not mk.profitability_filter:
                        cands.append((profit, i, repay, seize, fee_a))
                    continue
                vx = mk.keeper_venue_depth_usd / m["fundamental_usd"]
                vy = mk.keeper_venue_depth_usd / dp
                v = mk.keeper_venue_frac
                eff = (seize - fee_a) * (1.0 - v) * (1.0 - fee)
                quote = m["pool_debt"] * eff / (m["pool_asset"] + eff)
                if v > 0.0:
                    veff = (seize - fee_a) * v * (1.0 - fee)
                    quote += vy * veff / (vx + veff)
                profit = (quote - repay) * dp - gas_usd
                if profit > 0 or not mk.profitability_filter:
                    cands.append((profit, i, repay, seize, fee_a))
            # keepers act in order of standalone profit, each sale priced after those before it
            cands.sort(key=lambda t: (-t[0], t[1]))
            taken = []
            sold = 0.0
            for cand in cands:
                net = cand[3] - cand[4]
                ok = True
                if mk.profitability_filter and split:
                    out = split_out(m, sold + net)[0] - split_out(m, sold)[0]
                    ok = (out - cand[2]) * dp - gas_usd > 0
                elif mk.profitability_filter:
                    v = mk.keeper_venue_frac
                    before = sold * (1.0 - v) * (1.0 - fee)
                    after = (sold + net) * (1.0 - v) * (1.0 - fee)
                    y0, x0 = m["pool_debt"], m["pool_asset"]
                    out = y0 * after / (x0 + after) - y0 * before / (x0 + before)
                    if v > 0.0:
                        vb = sold * v * (1.0 - fee)
                        va_ = (sold + net) * v * (1.0 - fee)
                        vx = mk.keeper_venue_depth_usd / m["fundamental_usd"]
                        vy = mk.keeper_venue_depth_usd / dp
                        out += vy * va_ / (vx + va_) - vy * vb / (vx + vb)
                    ok = (out - cand[2]) * dp - gas_usd > 0
                sold += net
                if ok and len(taken) < cap_left[envs.index(m)]:
                    taken.append(cand)
            plans_all.append(taken)
            any_liq = any_liq or bool(taken)
        if not any_liq:
            break
        for e, (m, cands) in enumerate(zip(envs, plans_all, strict=True)):
            count = float(len(cands))
            repay_env = sum(t[2] for t in cands)
            seize_env = sum(t[3] for t in cands)
            fee_env = sum(t[4] for t in cands)
            for _, i, repay, seize, _fee in cands:
                p = m["pos"][i]
                p["collateral_asset"] -= seize
                p["debt_usd"] -= repay
                p["ever_liquidated"] = True
            net = seize_env - fee_env
            keeper_sell = net * (1.0 - share[e])
            to_venue = 0.0 if split else keeper_sell * mk.keeper_venue_frac
            to_pool = keeper_sell - to_venue
            if split:
                _, outs, parts = split_out(m, keeper_sell)
                to_pool = keeper_sell - sum(parts[1:])
                if mk.keeper_aggregator_depth_usd > 0.0:
                    m["keeper_aggregator_sold_asset"] += parts[1]
                if mk.keeper_cex_depth_usd > 0.0:
                    m["keeper_cex_sold_asset"] += parts[2]
                    if mk.keeper_cex_latency_substeps > 0.0:
                        # held until it fills, at what the CEX quotes now
                        m["keeper_cex_pending_asset"] += (
                            outs[2] * m["debt_price_usd"] / m["fundamental_usd"]
                        )
                        outs[2] = 0.0
            x, y, out = _sell(m["pool_asset"], m["pool_debt"], to_pool, fee)
            if split:
                out += outs[1] + outs[2]
            m["pool_asset"], m["pool_debt"] = x, y
            if to_venue > 0.0:
                vx = mk.keeper_venue_depth_usd / m["fundamental_usd"]
                vy = mk.keeper_venue_depth_usd / m["debt_price_usd"]
                veff = to_venue * (1.0 - fee)
                out += vy * veff / (vx + veff)
                m["keeper_venue_sold_asset"] += to_venue
            gas_env = (
                count
                * (1.0 - share[e])
                * (m["gas_gwei"] * 1e-9 * mk.gas_units_per_liquidation * m["fundamental_usd"])
            )
            m["seized_collateral_asset"] += seize_env
            m["repaid_by_liquidators_usd"] += repay_env
            m["liquidations"] += count
            m["protocol_fee_asset"] += fee_env
            m["protocol_fee_usd"] += fee_env * m["oracle_usd"]
            m["keeper_sold_asset"] += keeper_sell
            m["keeper_profit_usd"] += (out - repay_env * (1.0 - share[e])) * m[
                "debt_price_usd"
            ] - gas_env
            m["agent_seized_asset"] += net * share[e]
            m["agent_repaid_usd"] += repay_env * share[e]
            m["agent_gas_usd"] += (
                count
                * share[e]
                * (m["gas_gwei"] * 1e-9 * mk.gas_units_per_liquidation * m["fundamental_usd"])
            )
            # bad debt
            bad = 0.0
            for p in m["pos"]:
                if p["active"] and p["collateral_asset"] <= 0:
                    if p["debt_usd"] > 0:
                        bad += p["debt_usd"]
                    p["debt_usd"] = 0.0
                    p["collateral_asset"] = 0.0
                    p["active"] = False
            from_res = min(bad, m["reserves_usd"])
            m["reserves_usd"] -= from_res
            m["supply_usd"] -= bad - from_res
            m["bad_debt_usd"] += bad
            m["bad_debt_from_reserves_usd"] += from_res
            m["lender_loss_usd"] += bad - from_res
            cap_left[e] -= count
            rounds[e] += 1.0 if count > 0 else 0.0
            refresh_in_block(e, m)

    # 7: bookkeeping, back to arrays.
    out_arrays: dict[str, Any] = {}
    for name in POSITION_FIELDS:
        arr = np.array([[p[name] for p in m["pos"]] for m in envs], dtype=getattr(s, name).dtype)
        out_arrays[name] = arr
    for m, rd in zip(envs, rounds, strict=True):
        pool_usd = m["pool_debt"] / m["pool_asset"] * m["debt_price_usd"]
        m["fundamental_min_usd"] = min(m["fundamental_min_usd"], m["fundamental_usd"])
        m["pool_min_usd"] = min(m["pool_min_usd"], pool_usd)
        m["cascade_rounds_max"] = max(m["cascade_rounds_max"], rd)
    scalars = [k for k in envs[0] if k not in ("pos", "twap")]
    for name in scalars:
        out_arrays[name] = np.array([m[name] for m in envs], dtype=np.float64)
    out_arrays["twap_buffer_usd"] = np.array([m["twap"] for m in envs], dtype=np.float64)
    new = s.replace(**out_arrays, time_h=now, substep_index=s.substep_index + 1)
    return new, np.array(rounds)


def reference_agent_block(
    claims: Any, bids: Any, block_gas_usd: Any, public: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Agent liquidators' fills and gas in one block, one env and one agent at a time (the
    oracle of :mod:`levgym.engine.auction`): agents sorted by gas bid, highest first, ties by
    index; each takes what it asked for while any share is left, else nothing. A winner pays its
    share of ``block_gas_usd`` (gas of all the block's liquidations at the base price) times
    ``1 + bid``; a loser pays the same on the share it lost in a public auction, nothing in a
    private one. Returns (fills, gas) ``[E, M]``."""
    claims, bids = np.asarray(claims, dtype=float), np.asarray(bids, dtype=float)
    e_count, m_count = claims.shape
    fills = np.zeros((e_count, m_count))
    gas = np.zeros((e_count, m_count))
    for e in range(e_count):
        ranked = sorted(range(m_count), key=lambda i: (-float(bids[e, i]), i))
        left = 1.0
        for i in ranked:
            want = float(claims[e, i])
            got = want if want <= left else max(left, 0.0)
            left -= got
            fills[e, i] = got
            lost = want - got if public else 0.0
            gas[e, i] = (got + lost) * float(block_gas_usd[e]) * (1.0 + float(bids[e, i]))
    return fills, gas


def reference_agent_sales(
    sells: Any, bids: Any, pool_asset: Any, pool_debt: Any, fee: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agent liquidators' sales in one block, one env and one agent at a time (the oracle of
    :func:`levgym.engine.auction.sale_shares`): agents sorted by gas bid, highest first, ties by
    index; each sells into the pool as it is after the sales ahead of it. Returns (debt each
    received ``[E, M]``, the pool's asset and debt reserves after the sales ``[E]``)."""
    sells, bids = np.asarray(sells, dtype=float), np.asarray(bids, dtype=float)
    e_count, m_count = sells.shape
    out = np.zeros((e_count, m_count))
    xs, ys = np.zeros(e_count), np.zeros(e_count)
    for e in range(e_count):
        x, y = float(pool_asset[e]), float(pool_debt[e])
        for i in sorted(range(m_count), key=lambda i: (-float(bids[e, i]), i)):
            if sells[e, i] > 0.0:
                x, y, out[e, i] = _sell(x, y, float(sells[e, i]), fee)
        xs[e], ys[e] = x, y
    return out, xs, ys
