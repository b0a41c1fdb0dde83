"""Every formula of the market, written once.

Each rule is a function of plain values written with arithmetic and the operations of
:mod:`levgym.engine.ops` only, so the same text runs element-wise on numpy arrays and torch
tensors (the array engine: ``borrowers.py``, ``cascade.py``, ``step.py``) and, compiled by numba
with the operations bound to scalar functions, on one position or env at a time (the fused
kernel, ``fused.py``). The executors hold only control flow: which positions a rule is applied
to, in what order, and how the results are summed. ``reference.py`` keeps its own, naive
formulas: it is the oracle these rules are tested against.

Units: collateral in asset units, debt in debt-asset units, prices in USD, time in hours.
A new mechanism is one rule here, its call in each executor, one line of the reference loop and
its fields in :mod:`levgym.engine.schema`.
"""

from __future__ import annotations

from typing import Any

from .ops import (
    INF,
    abs_,
    and_,
    clip,
    exp,
    floor,
    log,
    maximum,
    minimum,
    not_,
    or_,
    sqrt,
    where,
)

HOURS_PER_YEAR = 24.0 * 365.0

# Oracle kinds (``MarketParams.oracle_kind_code``).
CHAINLINK, TWAP, EXACT = 0, 1, 2

# Behaviour kinds of a position slot.
PASSIVE, DEFENSIVE, LOOPER = 0, 1, 2

Num = Any  # a number, a numpy array or a torch tensor


# ----------------------------------------------------------------------------- pool


def swap_out(reserve_in: Num, reserve_out: Num, amount_in: Num, fee_frac: Num) -> Num:
    """What ``amount_in`` buys from a constant-product pool against its current reserves."""
    eff = amount_in * (1.0 - fee_frac)
    return reserve_out * eff / (reserve_in + eff)


def sell_asset(pool_asset: Num, pool_debt: Num, amount_asset: Num, fee_frac: Num):
    """Sell ``amount_asset`` into the pool: (new pool asset, new pool debt, debt out).

    The fee is taken from the input and paid to liquidity providers outside the reserves, so the
    reserves keep their constant product exactly."""
    eff = amount_asset * (1.0 - fee_frac)
    out = pool_debt * eff / (pool_asset + eff)
    return pool_asset + eff, pool_debt * pool_asset / (pool_asset + eff), out


def buy_asset(pool_asset: Num, pool_debt: Num, amount_debt: Num, fee_frac: Num):
    """Pay ``amount_debt`` into the pool for the asset: (new pool asset, new pool debt, asset out)."""
    eff = amount_debt * (1.0 - fee_frac)
    out = pool_asset * eff / (pool_debt + eff)
    return pool_asset * pool_debt / (pool_debt + eff), pool_debt + eff, out


def block_sale_out(
    pool_asset: Num, pool_debt: Num, sold_through_asset: Num, amount_asset: Num, fee_frac: Num
) -> Num:
    """Debt received for the sale of ``amount_asset`` when it is the last of the block's sales
    totalling ``sold_through_asset`` (itself included), all against the same reserves."""
    eff_incl = sold_through_asset * (1.0 - fee_frac)
    eff_excl = eff_incl - amount_asset * (1.0 - fee_frac)
    return pool_debt * eff_incl / (pool_asset + eff_incl) - pool_debt * eff_excl / (
        pool_asset + eff_excl
    )


def venue_reserves(fundamental_usd: Num, debt_price_usd: Num, depth_usd: float):
    """(asset, debt) reserves of the keepers' off-pool venue: ``depth_usd`` of the debt asset
    against the asset at the fundamental price."""
    return depth_usd / fundamental_usd, depth_usd / debt_price_usd


def split_sale_out(
    pool_asset: Num, pool_debt: Num, venue_asset: Num, venue_debt: Num, sold_through_asset: Num,
    amount_asset: Num, fee_frac: Num, venue_frac: float,
) -> Num:  # fmt: skip
    """:func:`block_sale_out` with a share ``venue_frac`` of every sale routed to the venue and
    the rest to the pool (both priced after the block's earlier sales on the same route)."""
    on_pool = 1.0 - venue_frac
    pool = block_sale_out(
        pool_asset, pool_debt, sold_through_asset * on_pool, amount_asset * on_pool, fee_frac
    )
    venue = block_sale_out(
        venue_asset, venue_debt, sold_through_asset * venue_frac, amount_asset * venue_frac,
        fee_frac,
    )  # fmt: skip
    return pool + venue


def route_split(
    pool_asset: Num, pool_debt: Num, pool_fee_frac: Num, agg_asset: Num, agg_debt: Num,
    agg_fee_frac: float, cex_asset: Num, cex_debt: Num, cex_fee_frac: float, amount_asset: Num,
    use_agg: bool, use_cex: bool,
):  # fmt: skip
    """The keepers' split of a sale of ``amount_asset`` across the on-chain pool, the aggregator
    route and the CEX leg that returns the most: (to pool, to aggregator, to CEX), asset units.
    A venue not used (``use_agg`` / ``use_cex`` false, a parameter) gets 0.

    Each venue ``j`` is a constant-product curve ``(x_j, y_j)`` with a fee on the input
    (``e_j = 1 - fee_j``): selling ``a_j`` returns ``y_j e_j a_j / (x_j + e_j a_j)``, whose
    marginal price ``y_j e_j x_j / (x_j + e_j a_j)^2`` falls with ``a_j``. At the best split the
    venues that get a share have equal marginal prices and the others a lower one at zero: with
    ``w_j = sqrt(x_j y_j / e_j)`` and ``u_j = x_j / e_j``, ``a_j = max(w_j m - u_j, 0)``, where
    ``m = (A + sum_S u_j) / sum_S w_j`` for the set ``S`` of venues used. That ``m`` is the least
    of this expression over all non-empty sets (any set's value is at least the true one, since
    its sum of ``w_j m - u_j`` never exceeds the true allocation's; the used set's equals it), so
    no sorting is needed. The pool gets the rest of the sale, so the three add up to it."""
    a = amount_asset
    ep = 1.0 - pool_fee_frac
    wp = sqrt(pool_asset * pool_debt / ep)
    up = pool_asset / ep
    m = (a + up) / wp
    to_agg = a * 0.0
    to_cex = a * 0.0
    wa = ua = wc = uc = 0.0
    if use_agg:
        ea = 1.0 - agg_fee_frac
        wa = sqrt(agg_asset * agg_debt / ea)
        ua = agg_asset / ea
        m = minimum(m, (a + ua) / wa)
        m = minimum(m, (a + up + ua) / (wp + wa))
    if use_cex:
        ec = 1.0 - cex_fee_frac
        wc = sqrt(cex_asset * cex_debt / ec)
        uc = cex_asset / ec
        m = minimum(m, (a + uc) / wc)
        m = minimum(m, (a + up + uc) / (wp + wc))
        if use_agg:
            m = minimum(m, (a + ua + uc) / (wa + wc))
            m = minimum(m, (a + up + ua + uc) / (wp + wa + wc))
    if use_agg:
        to_agg = minimum(maximum(wa * m - ua, 0.0), a)
    if use_cex:
        to_cex = minimum(maximum(wc * m - uc, 0.0), a - to_agg)
    return maximum(a - to_agg - to_cex, 0.0), to_agg, to_cex


def route_out(
    pool_asset: Num, pool_debt: Num, pool_fee_frac: Num, agg_asset: Num, agg_debt: Num,
    agg_fee_frac: float, cex_asset: Num, cex_debt: Num, cex_fee_frac: float, amount_asset: Num,
    use_agg: bool, use_cex: bool,
) -> Num:  # fmt: skip
    """Debt that the best split of ``amount_asset`` (:func:`route_split`) returns, all venues
    together (the CEX leg's at the current fundamental: what the keeper expects)."""
    to_pool, to_agg, to_cex = route_split(
        pool_asset, pool_debt, pool_fee_frac, agg_asset, agg_debt, agg_fee_frac, cex_asset,
        cex_debt, cex_fee_frac, amount_asset, use_agg, use_cex,
    )  # fmt: skip
    out = swap_out(pool_asset, pool_debt, to_pool, pool_fee_frac)
    if use_agg:
        out = out + swap_out(agg_asset, agg_debt, to_agg, agg_fee_frac)
    if use_cex:
        out = out + swap_out(cex_asset, cex_debt, to_cex, cex_fee_frac)
    return out


def block_route_out(
    pool_asset: Num, pool_debt: Num, pool_fee_frac: Num, agg_asset: Num, agg_debt: Num,
    agg_fee_frac: float, cex_asset: Num, cex_debt: Num, cex_fee_frac: float,
    sold_through_asset: Num, amount_asset: Num, use_agg: bool, use_cex: bool,
) -> Num:  # fmt: skip
    """:func:`block_sale_out` for split sales: what ``amount_asset`` adds to the best split's
    proceeds when it is the last of the block's sales totalling ``sold_through_asset``."""
    incl = route_out(
        pool_asset, pool_debt, pool_fee_frac, agg_asset, agg_debt, agg_fee_frac, cex_asset,
        cex_debt, cex_fee_frac, sold_through_asset, use_agg, use_cex,
    )  # fmt: skip
    excl = route_out(
        pool_asset, pool_debt, pool_fee_frac, agg_asset, agg_debt, agg_fee_frac, cex_asset,
        cex_debt, cex_fee_frac, maximum(sold_through_asset - amount_asset, 0.0), use_agg, use_cex,
    )  # fmt: skip
    return incl - excl


def route_reserve_asset(pool_asset: Num, agg_asset: Num, cex_asset: Num) -> Num:
    """The asset reserve a keeper's slippage limit (:func:`chunk_repay`) is measured against
    when it splits its sales: all its venues' together. At one price the best split is pro rata
    to the reserves, so a sale of ``chunk_ratio`` times their sum moves each venue as a sale of
    ``chunk_ratio`` times its own reserve moves a lone pool."""
    return pool_asset + agg_asset + cex_asset


def cex_fill_asset(pending_asset: Num, fill_frac: float) -> Num:
    """Collateral held for the CEX leg that fills this substep (a share ``fill_frac``, 1 /
    latency, of what is held: a geometric delay)."""
    return pending_asset * fill_frac


def arbitrage(pool_asset: Num, pool_debt: Num, target_price: Num, speed_frac: Num):
    """Trade along the curve so the pool price closes ``speed_frac`` of its log-gap to
    ``target_price`` (debt units per asset): (new pool asset, new pool debt)."""
    lp = log(pool_debt / pool_asset)
    new_price = exp(lp + speed_frac * (log(target_price) - lp))
    k = pool_asset * pool_debt
    return sqrt(k / new_price), sqrt(k * new_price)


def set_liquidity(pool_asset: Num, pool_debt: Num, target_liquidity: Num):
    """Add or remove liquidity at the current price so that ``sqrt(x * y) = target_liquidity``."""
    scale = target_liquidity / sqrt(pool_asset * pool_debt)
    return pool_asset * scale, pool_debt * scale


def add_liquidity(pool_asset: Num, pool_debt: Num, liquidity_base: Num, delta_frac: Num):
    """A liquidity provider adds (``delta_frac > 0``) or pulls liquidity at the pool's price: both
    reserves and the base liquidity scale by ``1 + delta_frac``. Returns (pool asset, pool debt,
    base liquidity)."""
    scale = 1.0 + delta_frac
    return pool_asset * scale, pool_debt * scale, liquidity_base * scale


def pool_price_usd(pool_asset: Num, pool_debt: Num, debt_price_usd: Num) -> Num:
    """Pool price of the asset in USD (the pool quotes it in the debt asset)."""
    return pool_debt / pool_asset * debt_price_usd


# ----------------------------------------------------------------------------- oracle


def oracle_source(fundamental_usd: Num, pool_usd: Num, pool_weight_frac: float) -> Num:
    """What an aggregating oracle reads: a geometric blend of the off-chain price and the pool."""
    if pool_weight_frac == 0.0:
        return fundamental_usd
    return exp((1.0 - pool_weight_frac) * log(fundamental_usd) + pool_weight_frac * log(pool_usd))


def oracle_update(
    kind: int,
    oracle_usd: Num,
    updated_h: Num,
    now_h: float,
    source_usd: Num,
    twap_usd: Num,
    bias_frac: Num,
    frozen: Num,
    deviation_frac: float,
    heartbeat_h: float,
    in_block: bool,
):
    """New (oracle answer, update time).

    Chainlink: updates when the candidate deviates by more than ``deviation_frac`` or, between
    blocks, when the heartbeat has passed; exact: every time; TWAP: the pool TWAP, never within
    a block. A frozen feed never updates; ``bias_frac`` is a manipulation of the reported value."""
    if kind == TWAP and in_block:
        return oracle_usd, updated_h
    if kind == TWAP:
        candidate = twap_usd * (1.0 + bias_frac)
        update = not_(frozen)
    elif kind == EXACT:
        candidate = source_usd * (1.0 + bias_frac)
        update = not_(frozen)
    else:
        candidate = source_usd * (1.0 + bias_frac)
        update = abs_(candidate / oracle_usd - 1.0) > deviation_frac
        if not in_block:
            update = or_(update, (now_h - updated_h) >= heartbeat_h - 1e-9)
        update = and_(update, not_(frozen))
    return where(update, candidate, oracle_usd), where(update, updated_h * 0.0 + now_h, updated_h)


def oracle_held(frozen: Num, paused: Num) -> Num:
    """The oracle keeps its last answer: its feed is frozen (a scenario's stale feed) or the
    governor paused it (a circuit breaker on a stale or manipulated feed)."""
    return or_(frozen, paused)


# ----------------------------------------------------------------------------- interest


def utilization(total_debt: Num, supply: Num) -> Num:
    """Borrowed share of the lenders' supply, in [0, 1] (1 when there is no supply)."""
    ok = supply > 0
    return clip(where(ok, total_debt / where(ok, supply, 1.0), 1.0), 0.0, 1.0)


def borrow_rate_apr(util: Num, base: Num, slope1: Num, slope2: Num, optimal: Num) -> Num:
    """Aave-style two-slope curve: ``base + slope1 * min(u, u*)/u* + slope2 * max(u - u*, 0)/(1 - u*)``."""
    return (
        base
        + slope1 * (minimum(util, optimal) / optimal)
        + slope2 * (maximum(util - optimal, 0.0) / (1.0 - optimal))
    )


def interest_growth(rate_apr: Num, substep_h: float) -> Num:
    """Debt growth over one substep at ``rate_apr`` (simple per substep)."""
    return rate_apr * (substep_h / HOURS_PER_YEAR)


# ----------------------------------------------------------------------------- positions


def health_factor(collateral: Num, debt: Num, oracle_usd: Num, lt: Num, debt_price_usd: Num) -> Num:
    """``HF = collateral * oracle * LT / (debt * debt_price)``; ``inf`` where there is no debt."""
    den = debt * debt_price_usd
    ok = den > 0
    return where(ok, collateral * (oracle_usd * lt) / where(ok, den, 1.0), INF)


def underwater(collateral: Num, debt: Num, oracle_usd: Num, debt_price_usd: Num) -> Num:
    """Debt exceeding the collateral's value at the oracle (debt units): bad debt not yet written off."""
    return maximum(debt - collateral * (oracle_usd / debt_price_usd), 0.0)


# ----------------------------------------------------------------------------- borrowers


def reaction_gas_factor(gas_gwei: Num, ref_gwei: float) -> Num:
    """Reaction probabilities are divided by ``1 + gas / ref``."""
    return 1.0 / (1.0 + gas_gwei / ref_gwei)


def attractiveness(
    ltv: Num, rate_apr: Num, ltv_elasticity: float, ltv_ref: float, rate_elasticity: float,
    rate_ref_apr: float,
) -> Num:  # fmt: skip
    """How much more borrowers arrive (and less they leave) than at the reference LTV and rate."""
    return exp(ltv_elasticity * (ltv - ltv_ref) - rate_elasticity * (rate_apr - rate_ref_apr))


def exit_prob(exit_rate_per_h: float, substep_h: float, attract: Num) -> Num:
    return clip(exit_rate_per_h * substep_h / attract, 0.0, 0.5)


def arrival_prob(
    arrival_rate_per_h: float, substep_h: float, arrival_mult: Num, attract: Num
) -> Num:
    return clip(arrival_rate_per_h * substep_h * arrival_mult * attract, 0.0, 0.5)


def reacts(noise_u: Num, react_prob: Num, gas_factor: Num) -> Num:
    """Whether a position acts this substep (the slot's uniform below its reaction probability)."""
    return noise_u < react_prob * gas_factor


def exits(noise_u: Num, p_exit: Num, hf: Num) -> Num:
    """A healthy position repays everything and leaves (the top ``p_exit`` of the uniform)."""
    return and_(noise_u > 1.0 - p_exit, hf >= 1.0)


def defend_topup_asset(
    coll_usd: Num, debt_usd: Num, lt: Num, oracle_usd: Num, target_hf: Num
) -> Num:
    """Collateral a defensive position adds to get back to ``target_hf``."""
    return maximum(target_hf * debt_usd / lt - coll_usd, 0.0) / oracle_usd


def defend_repay_debt(
    coll_usd: Num, debt_usd: Num, lt: Num, debt_price_usd: Num, debt: Num, target_hf: Num
) -> Num:
    """Debt a defensive position repays to get back to ``target_hf`` (at most all of it)."""
    return minimum(maximum(debt_usd - coll_usd * lt / target_hf, 0.0) / debt_price_usd, debt)


def relevers(hf: Num, target_hf: Num, band_frac: float) -> Num:
    return hf > target_hf * (1.0 + band_frac)


def delevers(hf: Num, target_hf: Num, delever_frac: float) -> Num:
    return and_(hf >= 1.0, hf < 1.0 + delever_frac * (target_hf - 1.0))


def looper_borrow_debt(
    coll_usd: Num, debt_usd: Num, lt: Num, ltv: Num, target_hf: Num, debt_price_usd: Num
) -> Num:
    """Debt a looper borrows to get back down to its target HF, within the LTV."""
    want = minimum(
        (coll_usd * lt - target_hf * debt_usd) / (target_hf - lt),
        (coll_usd * ltv - debt_usd) / (1.0 - ltv),
    )
    return maximum(want, 0.0) / debt_price_usd


def looper_sell_asset(
    coll_usd: Num, debt_usd: Num, lt: Num, target_hf: Num, oracle_usd: Num
) -> Num:
    """Collateral a looper sells (to repay) to get back up to its target HF."""
    sell_usd = minimum(
        maximum((target_hf * debt_usd - coll_usd * lt) / (target_hf - lt), 0.0),
        minimum(coll_usd, debt_usd),
    )
    return sell_usd / oracle_usd


def arrival_debt(
    collateral: Num, oracle_usd: Num, lt: Num, ltv: Num, template_hf: Num, debt_price_usd: Num
) -> Num:
    """Debt a new borrower takes on its collateral, at its drawn HF but within the LTV."""
    return collateral * oracle_usd * lt / (maximum(template_hf, lt / ltv) * debt_price_usd)


def supply_room(supply_cap_asset: Num, total_collateral: Num, frozen: Num) -> Num:
    """Collateral that new supply may still add: the supply cap less the collateral held, none
    while new borrowing is frozen (a frozen reserve takes no new supply or borrowing)."""
    return where(frozen, 0.0, maximum(supply_cap_asset - total_collateral, 0.0))


def relever_collateral_asset(borrow_debt: Num, debt_price_usd: Num, oracle_usd: Num) -> Num:
    """Collateral a looper's re-levering borrow brings, at the oracle (what the supply cap counts
    against the room before the purchase)."""
    return borrow_debt * debt_price_usd / oracle_usd


def borrow_available(supply: Num, borrow_cap: Num, total_debt: Num) -> Num:
    """New debt that the supply and the borrow cap still allow."""
    return maximum(minimum(supply - total_debt, borrow_cap - total_debt), 0.0)


def per_unit(total_out: Num, total_in: Num) -> Num:
    """What each unit of an aggregated trade gets (0 when nothing was traded)."""
    ok = total_in > 0
    return where(ok, total_out / where(ok, total_in, 1.0), 0.0)


def fill_ratio(available: Num, requested: Num) -> Num:
    """Share of a request that is filled (requests are scaled down pro rata)."""
    ok = requested > 0
    return minimum(where(ok, available / where(ok, requested, 1.0), 1.0), 1.0)


# ----------------------------------------------------------------------------- liquidation


def keeper_capacity(gas_gwei: Num, congestion_ref_gwei: float, capacity: float) -> Num:
    """Liquidations that fit in one substep: all at normal gas, ``ref / gas`` of them above
    ``congestion_ref_gwei``, at least one."""
    frac = minimum(congestion_ref_gwei / maximum(gas_gwei, 1e-12), 1.0)
    return maximum(floor(capacity * frac), 1.0)


def gas_cost_usd(gas_gwei: Num, gas_units: float, fundamental_usd: Num) -> Num:
    """USD cost of one liquidation's gas (paid in the collateral asset, ETH)."""
    return gas_gwei * 1e-9 * gas_units * fundamental_usd


def chunk_repay(
    pool_asset: Num, chunk_ratio: float, oracle_usd: Num, bonus: Num, debt_price_usd: Num
) -> Num:
    """Largest repay of one keeper call: its seized collateral is at most ``chunk_ratio`` of the
    pool's asset reserve (the keeper's slippage limit; with split sales, ``pool_asset`` is the
    reserve of all its venues, :func:`route_reserve_asset`)."""
    return pool_asset * chunk_ratio * oracle_usd / ((1.0 + bonus) * debt_price_usd)


def liquidation_call(
    collateral: Num, debt: Num, hf: Num, oracle_usd: Num, debt_price_usd: Num, bonus: Num,
    close_factor: Num, full_close_hf: float, small_position_usd: float, max_repay: Num,
    protocol_fee_frac: float,
):  # fmt: skip
    """One liquidation call: (repay [debt], seize [asset], protocol fee [asset]).

    The keeper repays the close factor's share of the debt (all of it at or below
    ``full_close_hf`` or for a small position), at most ``max_repay``; it seizes
    ``repay * (1 + bonus)`` worth of collateral at the oracle, capped at the collateral (then the
    repay shrinks to what the collateral covers); the protocol takes its fee from the bonus."""
    full = or_(hf <= full_close_hf, debt * debt_price_usd < small_position_usd)
    repay = minimum(where(full, 1.0, close_factor) * debt, max_repay)
    seize = repay * debt_price_usd * (1.0 + bonus) / oracle_usd
    capped = seize > collateral
    seize = where(capped, collateral, seize)
    repay = where(capped, collateral * oracle_usd / ((1.0 + bonus) * debt_price_usd), repay)
    fee = protocol_fee_frac * maximum(seize - repay * debt_price_usd / oracle_usd, 0.0)
    return repay, seize, fee


def liquidation_profit(debt_out: Num, repay: Num, debt_price_usd: Num, gas_usd: Num) -> Num:
    """A keeper's USD profit: what the sale returns less the repay, less gas."""
    return (debt_out - repay) * debt_price_usd - gas_usd


# ----------------------------------------------------------------------------- agent liquidators


def claim_fill(request_frac: Num, claimed_before_frac: Num) -> Num:
    """Share of the block's liquidations an agent liquidator gets: what it asked for, at most
    what the agents ahead of it in gas-bid priority left (the winner of a contested share takes
    it, a loser gets nothing)."""
    return minimum(request_frac, maximum(1.0 - claimed_before_frac, 0.0))


def agent_gas_usd(
    fill_frac: Num, request_frac: Num, filled_frac: Num, filled_gas_usd: Num, gas_bid_frac: Num,
    public: float,
) -> Num:  # fmt: skip
    """Gas an agent liquidator pays for the block: ``filled_gas_usd`` is the base gas of the
    agents' filled share ``filled_frac`` of the block's liquidations (what the engine counted);
    the agent pays its ``fill_frac`` of that share at its bid, ``(1 + gas_bid_frac)`` times the
    base price, and, in a public gas auction (``public`` = 1), also its lost share
    ``request - fill`` (reverted transactions still pay gas); in a private bundle (``public`` =
    0) a lost share costs nothing. Written as a share of the counted gas, so an agent that
    fills the whole claim at bid 0 pays exactly what the engine counted."""
    paid_frac = fill_frac + public * maximum(request_frac - fill_frac, 0.0)
    return (1.0 + gas_bid_frac) * (filled_gas_usd * per_unit(paid_frac, filled_frac))


def sale_impact_frac(sale_debt: Num, sale_mid_debt: Num, fee_frac: Num) -> Num:
    """A sale's price impact ``e * S / x`` (``e = 1 - fee_frac``, ``S`` the asset sold, ``x``
    the pool's asset reserve before it), recovered from what the sale returned and its value at
    the pool's mid before it: a constant-product sale with the fee on the input returns
    ``out = mid / (1 + e S / x) * e``, so ``e S / x = mid * e / out - 1``. 0 when nothing was
    sold (or the impact is below the rounding of the two values)."""
    return maximum(per_unit(sale_mid_debt * (1.0 - fee_frac), sale_debt) - 1.0, 0.0)


def sequence_sale_debt(
    pool_per_asset: Num, sold_before_asset: Num, amount_asset: Num, fee_frac: Num
) -> Num:
    """What one of a block's sales returns, per unit of the pool's debt reserve, when the sales
    go into the pool one after another: ``sold_before_asset`` went in ahead of it and
    ``pool_per_asset`` is ``1 / x`` before the first. The constant-product swap (fee on the
    input, outside the reserves) after the earlier ones, ``y e a x / ((x + e B)(x + e B + e a))``
    (:func:`block_sale_out` without its difference of two near values). The sales in sequence
    leave the reserves where one bundled sale of their sum does, and their returns add up to
    the bundle's."""
    eff = amount_asset * pool_per_asset * (1.0 - fee_frac)
    before = sold_before_asset * pool_per_asset * (1.0 - fee_frac)
    return eff / ((1.0 + before) * (1.0 + before + eff))


def write_off_split(bad_debt: Num, reserves: Num):
    """Who pays bad debt: (from reserves, from lenders); reserves pay first."""
    from_reserves = minimum(bad_debt, reserves)
    return from_reserves, bad_debt - from_reserves


# The rules the fused kernel compiles (every public function above).
RULE_NAMES = tuple(
    name
    for name, obj in list(globals().items())
    if callable(obj) and getattr(obj, "__module__", None) == __name__ and not name.startswith("_")
)
