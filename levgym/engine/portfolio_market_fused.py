"""The multi-asset market substep compiled by numba: :func:`levgym.engine.portfolio_market.substep`
with ``backend="numba"``, one parallel region over envs, the same rule texts.

Every formula is a compiled copy of the function the numpy path calls: the pool, oracle and
interest rules of :mod:`levgym.engine.rules` (``fused.NR``), the oracle and liquidation rules of
:mod:`levgym.engine.portfolio` (``portfolio_fused.PR``) with the keeper's per-position call
(:func:`levgym.engine.portfolio_fused.position_call` / ``apply_call``, shared with
:func:`~levgym.engine.portfolio_fused.liquidate_fused`), and
:func:`levgym.engine.portfolio_market.buy_exact_out`. The kernel holds the control flow only,
in the numpy path's phases (the functions below, per env ``e`` or per position ``n``, one or
more per step of the :mod:`~levgym.engine.portfolio_market` docstring):

1-3. :func:`_market_env` (arbitrage, oracles, :func:`_oracle_env`); 4. :func:`_interest_growth_env`
(the rates), :func:`_interest_slot` (one position), :func:`_interest_close` (treasury and
lenders); 4b. :func:`_defend_slot` (one position's borrower phase, the rules of
:mod:`levgym.engine.portfolio_borrowers` compiled as ``BR``), with :func:`_borrow_totals` and
:func:`_defend_borrows` around the pass when defenders rebalance; 5. a round is
:func:`_slot_health` and :func:`_candidate_slot` per position (the keeper's call and its result
alone, StableSwap legs priced at the round's invariants :func:`_leg_invariants`),
:func:`_take_calls` (the keepers' selection, ``portfolio_market.select_calls``: rank, filter,
purchase limit, capacity; the calls made applied in slot order), then :func:`_close_round`
(bundled trades, counters, oracles), with :func:`_chunk_env` for chunked calls; 6.
:func:`_collateral_value` and :func:`_write_off_slot` per position.

With loopers (:func:`_loop_env`: the rules of
:func:`levgym.engine.portfolio_borrowers.loop`, ``LR``, over the compiled single-asset rules) 4
and 4b run in a pass of their own, then the loopers' bundled trades, the oracles' read in the
block and the first round's pass. Otherwise one pass over an env's positions runs 4, 4b, the first round's candidates of 5 and 6 per
position (a position's interest, its borrower's action, then its call at the pools before the
round, then its write-off); the selection follows the pass; later rounds and a last write-off
pass run only in envs whose cascade made a call (the oracle then moved). The borrower phase fits
the pass because a borrower acts on its own position only: what it may borrow is checked against
the env's totals before the phase (:func:`_borrow_totals`, computed before the pass), and the
env's borrowing is filled after the pass (:func:`_defend_borrows`), which changes no call of the
first round (a position that borrows stays above its target HF, above 1). Writing off in the
first pass is exact: without a call the env's oracle does not move again; with calls, the last
pass writes off at the oracle the cascade left (a position with a candidate call has collateral
and is not written off before it).

Why it is faster than the numpy path: one pass over an env's positions in registers instead of
``[E, N, K]`` temporaries per array operation; an env's cascade runs only as many rounds as it
needs. It equals the lock-step numpy cascade: a round in which an env makes no call changes
nothing in that env (its pools do not move and its oracle reads the same inputs again), so each
env can run its own cascade to its end.
"""

from __future__ import annotations

import collections
import functools

import numpy as np

from . import portfolio, portfolio_borrowers, portfolio_fused, portfolio_market, stableswap
from . import rules as R
from .fused import NR, compile_rules, rules_cache_dir
from .jit import njit, prange
from .portfolio import Reserves, effective_risk
from .portfolio_fused import PR, apply_call, position_call, position_health
from .portfolio_market import COUNTERS, PortfolioMarketParams, PortfolioState

MR = compile_rules(portfolio_market, ("buy_exact_out", "block_buy_cost"))
BR = compile_rules(portfolio_borrowers, portfolio_borrowers.BORROWER_RULE_NAMES)
BRM = compile_rules(portfolio, ("borrow_room_asset",))
LR = compile_rules(portfolio_borrowers, portfolio_borrowers.LOOPER_RULE_NAMES, base=NR)
SS = compile_rules(stableswap, stableswap.STABLESWAP_RULE_NAMES)

# counter rows of the packed counters [C, E, K]
C_SEIZED = COUNTERS.index("seized_collateral_asset")
C_FEE = COUNTERS.index("protocol_fee_asset")
C_INTEREST = COUNTERS.index("interest_asset")
C_TREASURY_INTEREST = COUNTERS.index("treasury_interest_asset")
C_REPAID = COUNTERS.index("repaid_by_liquidators_asset")
C_DEFICIT = COUNTERS.index("deficit_asset")
C_SOLD = COUNTERS.index("sold_asset")
C_SALE_Q = COUNTERS.index("sale_quote")
C_BOUGHT = COUNTERS.index("bought_asset")
C_PURCHASE_Q = COUNTERS.index("purchase_quote")
C_ADDED = COUNTERS.index("added_collateral_asset")
C_WITHDRAWN = COUNTERS.index("withdrawn_collateral_asset")
C_BORROWED = COUNTERS.index("borrowed_asset")
C_REPAID_B = COUNTERS.index("repaid_by_borrowers_asset")
C_VENUE = COUNTERS.index("venue_sold_asset")
C_AGG = COUNTERS.index("aggregator_sold_asset")
C_CEX = COUNTERS.index("cex_sold_asset")
C_FEE_USD = COUNTERS.index("protocol_fee_usd")

# oracle kinds as integers (portfolio.ORACLE_KINDS order)
O_MARKET = portfolio.ORACLE_KINDS.index("market")
O_EXCHANGE = portfolio.ORACLE_KINDS.index("exchange_rate")
O_PINNED = portfolio.ORACLE_KINDS.index("stable_pinned")
O_STABLE = portfolio.ORACLE_KINDS.index("stable_market")

Layout = collections.namedtuple(
    "Layout",
    "q has_pool fee can_coll lt bonus pfee rf base slope1 slope2 optimal okind obase ocap ogrowth "
    "fcode fdev fhb "
    "amp close route",
)
"""Per-reserve constants of the kernel: the quote's index, ``[K]`` arrays (pools, fees,
collateral flags, protocol fees, reserve factors, rate curves, oracle kinds and their
parameters, feed kinds as ``rules`` oracle codes with their deviation and heartbeat, each leg's
StableSwap amplification, 0 for constant product: ``portfolio_market.pool_amp``), the
effective LT and bonus per E-mode row ``[R, K]``, the calls' close terms ``[5]``
(``PortfolioMarketParams.close_terms``) and the keepers' routing ``[9]`` (:func:`_route_terms`:
0 pool, 1 a fixed share to a venue, 2 the split; the venue's share and depth, the aggregator's
depth and fee, the CEX leg's depth and fee, 1 when its collateral is held, its fill share)."""
BorrowerLayout = collections.namedtuple(
    "BorrowerLayout", "on rebalance gap ltv can_borrow emode_borrowable bii ceiling borrow_cap"
)
"""The borrower phase's constants (:mod:`levgym.engine.portfolio_borrowers`): whether any slot
defends, ``rebalance`` and ``target_gap``, the effective LTV per E-mode row ``[R, K]``, and per
reserve ``[K]``: borrowable, borrowable per E-mode row ``[R, K]``, borrowable in isolation,
debt ceiling (USD), borrow cap (asset units)."""
LooperLayout = collections.namedtuple("LooperLayout", "on band dfrac tradable")
"""The loopers' constants (:func:`levgym.engine.portfolio_borrowers.loop`): whether any slot
loops this substep, ``relever_band_frac``, ``delever_frac`` and the reserves a looper may hold
``[K]`` (:func:`levgym.engine.portfolio_market.looper_tradable`)."""
TurnoverLayout = collections.namedtuple(
    "TurnoverLayout",
    "on room cap exit_rate arrival_rate ltv_el ltv_ref rate_el rate_ref dt",
)
"""Exits and arrivals (:func:`levgym.engine.portfolio_borrowers.exit_and_arrive`): whether they
run this substep, whether the loopers' and arrivals' new supply is scaled to the supply caps'
room (``room``: arrivals, ``supply_cap_new_supply`` or a ``freeze``), the caps ``[K]`` (``inf``
where not checked), the rates, elasticities and references, the substep (hours)."""
Scalars = collections.namedtuple(
    "Scalars", "arb weight substep_h mode buy_frac max_rounds now slot chunk"
)
"""The market parameters the kernel reads (``mode``: the keepers' ``profitability_filter`` as
an index of ``portfolio_market.KEEPER_FILTERS``; ``chunk``: its ``keeper_chunk_ratio``), the
substep's time (hours) and its TWAP slot."""
F_ALONE = portfolio_market.KEEPER_FILTERS.index("alone")
F_IN_BLOCK = portfolio_market.KEEPER_FILTERS.index("in_block")
F_OFF = portfolio_market.KEEPER_FILTERS.index("off")


# the kernels inline the rules of portfolio.py and portfolio_market.py and the per-position
# functions of portfolio_fused.py: their numba cache is keyed by those sources too
with rules_cache_dir(portfolio, portfolio_market, portfolio_fused, portfolio_borrowers, stableswap):

    @njit(cache=True, inline="always")
    def _leg_price_usd(e, k, pa, pq, usdc_usd, L):
        """USD price of reserve ``k`` in its leg (``portfolio_market.pools_price``)."""
        if L.amp[k] > 0.0:
            return SS.stableswap_price(pa[e, k], pq[e, k], L.amp[k]) * usdc_usd
        return NR.pool_price_usd(pa[e, k], pq[e, k], usdc_usd)

    @njit(cache=True)
    def _oracle_env(e, f, pa, pq, ratio, snap, hours, L, w, src, out, feed, feed_h, buf, in_block, bias, held):  # fmt: skip
        """``portfolio_market._oracle`` for env ``e``: pool price (the fundamental where there is
        no pool), the source blend, each reserve's feed (``rules.oracle_update``, with the
        oracle drivers ``bias``, ``held`` ``[E, K]``; a NaN answer is none yet: the source, read
        at hour 0), each reserve's oracle kind; writes ``out[e]``, ``feed[e]`` and
        ``feed_h[e]``."""
        k_n = f.shape[1]
        q = L.q
        for k in range(k_n):
            if L.has_pool[k]:
                pu = _leg_price_usd(e, k, pa, pq, f[e, q], L)
            else:
                pu = f[e, k]
            src[k] = NR.oracle_source(f[e, k], pu, w)
            if np.isnan(feed[e, k]):
                feed[e, k], feed_h[e, k] = src[k], 0.0
            twap = 0.0
            if L.fcode[k] == R.TWAP and not in_block:
                for s in range(buf.shape[2]):
                    twap += buf[e, k, s]
                twap = twap / buf.shape[2]
            feed[e, k], feed_h[e, k] = NR.oracle_update(
                L.fcode[k], feed[e, k], feed_h[e, k], hours, src[k], twap, bias[e, k],
                held[e, k], L.fdev[k], L.fhb[k], in_block,
            )  # fmt: skip
        for k in range(k_n):
            kind = L.okind[k]
            if kind == O_MARKET:
                out[e, k] = feed[e, k]
            elif kind == O_PINNED:
                out[e, k] = 1.0
            elif kind == O_STABLE:
                out[e, k] = PR.stable_oracle_usd(feed[e, k], False, L.ocap[k])
            else:
                out[e, k] = PR.exchange_rate_oracle_usd(
                    ratio[e, k], feed[e, L.obase[k]], snap[e, k], hours, L.ogrowth[k]
                )

    @njit(cache=True)
    def _market_env(e, f, pa, pq, ratio, snap, oracle, now, L, S, src, feed, feed_h, buf, bias, held, arb, liq, base, use_liq):  # fmt: skip
        """Steps 1-3: with ``use_liq`` each pool's liquidity set to ``base * liq``
        (``rules.set_liquidity``), arbitrage of every pool toward ``f[e, k] / f[e, USDC]`` at
        ``arb[e, k]``, the TWAP window samples the pools (USDC: its fundamental), oracles read
        (between blocks)."""
        k_n = f.shape[1]
        q = L.q
        for k in range(k_n):
            if use_liq and L.has_pool[k]:
                pa[e, k], pq[e, k] = NR.set_liquidity(pa[e, k], pq[e, k], base[e, k] * liq[e, k])
            if L.has_pool[k] and L.amp[k] > 0.0:
                pa[e, k], pq[e, k] = SS.stableswap_arbitrage(
                    pa[e, k], pq[e, k], f[e, k] / f[e, q], arb[e, k], L.amp[k]
                )
                buf[e, k, S.slot] = _leg_price_usd(e, k, pa, pq, f[e, q], L)
            elif L.has_pool[k]:
                pa[e, k], pq[e, k] = NR.arbitrage(pa[e, k], pq[e, k], f[e, k] / f[e, q], arb[e, k])
                buf[e, k, S.slot] = NR.pool_price_usd(pa[e, k], pq[e, k], f[e, q])
            else:
                buf[e, k, S.slot] = f[e, k]
        _oracle_env(
            e, f, pa, pq, ratio, snap, now, L, S.weight, src, oracle, feed, feed_h, buf, False,
            bias, held,
        )  # fmt: skip

    @njit(cache=True)
    def _interest_growth_env(e, debt_in, lender, L, S, growth):
        """Step 4's rate (``portfolio_market.accrue_interest``): ``growth[k]``, the debt growth of
        reserve ``k`` over the substep at its curve's rate on utilization = debt / lenders."""
        n_n, k_n = debt_in.shape[1], debt_in.shape[2]
        for k in range(k_n):
            growth[k] = 0.0
        for n in range(n_n):
            for k in range(k_n):
                growth[k] += debt_in[e, n, k]
        for k in range(k_n):
            u = NR.utilization(growth[k], lender[e, k])
            rate = NR.borrow_rate_apr(u, L.base[k], L.slope1[k], L.slope2[k], L.optimal[k])
            growth[k] = NR.interest_growth(rate, S.substep_h)

    @njit(cache=True, inline="always")
    def _interest_slot(e, n, supply_in, debt_in, supply, debt, growth, interest):
        """Step 4 on one position: its debt grows by ``growth``; its balances are copied from the
        input arrays into the output ones; the interest is summed per reserve."""
        for k in range(supply.shape[2]):
            d = debt_in[e, n, k]
            added = d * growth[k]
            interest[k] += added
            debt[e, n, k] = d + added
            supply[e, n, k] = supply_in[e, n, k]

    @njit(cache=True)
    def _interest_close(e, lender, treasury, counters, L, interest):
        """Step 4's books: the reserve factor's share of the interest to the treasury, the rest
        to the lenders."""
        for k in range(interest.shape[0]):
            counters[C_INTEREST, e, k] += interest[k]
            counters[C_TREASURY_INTEREST, e, k] += interest[k] * L.rf[k]
            lender[e, k] += interest[k] * (1.0 - L.rf[k])
            treasury[e, k] += interest[k] * L.rf[k]

    @njit(cache=True, inline="always")
    def _collateral_value(e, n, supply, oracle, L):
        """USD value of a position's enabled collateral at the oracle (``write_off_deficit``)."""
        v = 0.0
        for k in range(supply.shape[2]):
            if supply[e, n, k] > 0.0 and L.can_coll[k]:
                v += supply[e, n, k] * oracle[e, k]
        return v

    @njit(cache=True, inline="always")
    def _write_off_slot(e, n, debt, counters):
        """Step 6 on one position without collateral value: its debt burnt into the deficits."""
        for k in range(debt.shape[2]):
            counters[C_DEFICIT, e, k] += debt[e, n, k]
            debt[e, n, k] = 0.0

    @njit(cache=True, inline="always")
    def _venues(e, i, f, L):
        """Asset ``i``'s off-pool venues at the fundamental (``portfolio_market.keeper_routes``,
        :func:`levgym.engine.rules.venue_reserves`): (venue or aggregator asset, its quote, CEX
        asset, its quote)."""
        rt = L.route
        fq = f[e, L.q]
        if rt[0] == 1.0:
            a1, q1 = NR.venue_reserves(f[e, i], fq, rt[2])
            return a1, q1, 0.0, 0.0
        a1, q1 = NR.venue_reserves(f[e, i], fq, rt[3])
        a2, q2 = NR.venue_reserves(f[e, i], fq, rt[5])
        return a1, q1, a2, q2

    @njit(cache=True, inline="always")
    def _routed_out(e, i, f, pa, pq, L, through, amount, alone):
        """``portfolio_market.routed_sale_out`` for asset ``i`` of env ``e``."""
        rt = L.route
        a1, q1, a2, q2 = _venues(e, i, f, L)
        if rt[0] == 1.0:
            if alone:
                through = amount
            return NR.split_sale_out(pa[e, i], pq[e, i], a1, q1, through, amount, L.fee[i], rt[1])
        use_agg, use_cex = rt[3] > 0.0, rt[5] > 0.0
        if alone:
            return NR.route_out(
                pa[e, i], pq[e, i], L.fee[i], a1, q1, rt[4], a2, q2, rt[6], amount, use_agg,
                use_cex,
            )  # fmt: skip
        return NR.block_route_out(
            pa[e, i], pq[e, i], L.fee[i], a1, q1, rt[4], a2, q2, rt[6], through, amount, use_agg,
            use_cex,
        )  # fmt: skip

    @njit(cache=True)
    def _chunk_env(e, f, pa, price, L, S, maxrep):
        """The keepers' limit on a call's repay per E-mode row and pair ``maxrep [R, K_i, K_j]``
        at the env's pools and oracle (``portfolio_market.chunk_max_repay``:
        :func:`levgym.engine.rules.chunk_repay`; ``inf`` where ``i`` has no pool), measured
        against the pool and the off-pool venues when the keepers split
        (:func:`levgym.engine.rules.route_reserve_asset`)."""
        k_n = price.shape[0]
        for r in range(maxrep.shape[0]):
            for i in range(k_n):
                reserve = pa[e, i]
                if L.route[0] == 2.0:
                    a1, _, a2, _ = _venues(e, i, f, L)
                    reserve = NR.route_reserve_asset(reserve, a1, a2)
                for j in range(k_n):
                    if L.has_pool[i]:
                        maxrep[r, i, j] = NR.chunk_repay(
                            reserve, S.chunk, price[i], L.bonus[r, i], price[j]
                        )
                    else:
                        maxrep[r, i, j] = np.inf

    @njit(cache=True, inline="always")
    def _candidate_slot(e, n, sup_e, deb_e, row, f, pa, pq, price, L, S, cm, hf, debt_usd, gas, cidx, cval, m, maxrep, dleg):  # fmt: skip
        """Step 5 on one liquidatable position (HF ``hf`` < 1) of env ``e`` (``sup_e``, ``deb_e``
        ``[N, K]``, E-mode row ``row``, oracle ``price [K]``, enabled collateral ``cm[0]``) in a
        round: the keeper's call (:func:`~levgym.engine.portfolio_fused.position_call`) and its
        USD result alone at the pools before the round (proceeds less purchase cost, less gas
        ``gas``: :func:`levgym.engine.rules.liquidation_profit`), recorded as the round's
        candidate ``m`` (``cidx[m]``: slot, i, j; ``cval[m]``: repay, collateral leaving, fee,
        result) when it is one (a call with a positive result; any call with the filter off).
        ``maxrep``: the keepers' repay limits (:func:`_chunk_env`). Returns the candidates
        recorded so far."""
        q = L.q
        i, j, rep, tot, fee, _ = position_call(
            sup_e, deb_e, n, price, L.bonus, row, L.pfee, cm, 0, hf, debt_usd, maxrep, row,
            L.close,
        )  # fmt: skip
        if i < 0:
            return m
        got = tot - fee
        if i == q:
            proceeds = got
        elif L.amp[i] > 0.0:
            proceeds = SS.stableswap_swap_out_at(
                pa[e, i], pq[e, i], got, L.fee[i], dleg[i], L.amp[i]
            )
        elif L.route[0] > 0.0:
            proceeds = _routed_out(e, i, f, pa, pq, L, got, got, True)
        else:
            proceeds = NR.swap_out(pa[e, i], pq[e, i], got, L.fee[i])
        if j == q:
            cost = rep
        elif L.amp[j] > 0.0:
            cost = SS.stableswap_buy_cost_at(pa[e, j], pq[e, j], rep, L.fee[j], dleg[j], L.amp[j])
        else:
            cost = MR.buy_exact_out(pa[e, j], pq[e, j], rep, L.fee[j])[2]
        pnl = NR.liquidation_profit(proceeds, cost, f[e, q], gas)
        if S.mode != F_OFF and not pnl > 0.0:
            return m
        cidx[m, 0], cidx[m, 1], cidx[m, 2] = n, i, j
        cval[m, 0], cval[m, 1], cval[m, 2], cval[m, 3] = rep, tot, fee, pnl
        return m + 1

    @njit(cache=True)
    def _take_calls(e, m, sup_e, deb_e, f, pa, pq, price, L, S, cm, gas, cap, cidx, cval, take, sums, ever):  # fmt: skip
        """The round's selection among its ``m`` candidates
        (:func:`levgym.engine.portfolio_market.select_calls`): in order of their result alone
        (highest first, ties by slot: a stable sort), with ``in_block`` each re-priced after the
        sales into its pool ``i`` and the purchases from its pool ``j`` of the candidates ranked
        above (:func:`levgym.engine.rules.block_sale_out`, ``block_buy_cost``); the purchase
        limit and the capacity ``cap`` in that order. The calls made are applied in slot order
        and added to the round's ``sums [8, K]``: rows 1-5 the liquidators' collateral, protocol
        fee, repaid, collateral that left, deficit (rows 0, 6, 7: the running purchases, sales
        and purchases of the ranking), and marked in ``ever [E, N]`` (an empty array: not kept).
        Returns the calls made."""
        q = L.q
        order = np.argsort(-cval[:m, 3], kind="mergesort")
        taken = 0
        for r in range(m):
            c = order[r]
            i, j = cidx[c, 1], cidx[c, 2]
            rep, got = cval[c, 0], cval[c, 1] - cval[c, 2]
            sums[6, i] += got
            sums[7, j] += rep
            ok = True
            if S.mode == F_IN_BLOCK:
                if i == q:
                    out = got
                elif L.route[0] > 0.0:
                    out = _routed_out(e, i, f, pa, pq, L, sums[6, i], got, False)
                else:
                    out = NR.block_sale_out(pa[e, i], pq[e, i], sums[6, i], got, L.fee[i])
                if j == q:
                    paid = rep
                else:
                    paid = MR.block_buy_cost(pa[e, j], pq[e, j], sums[7, j], rep, L.fee[j])
                ok = NR.liquidation_profit(out, paid, f[e, q], gas) > 0.0
            if ok:
                sums[0, j] += rep
                if L.has_pool[j] and sums[0, j] > S.buy_frac * pa[e, j]:
                    ok = False
            if ok:
                taken += 1
                if taken > cap:
                    ok = False
            take[c] = ok
        calls = 0
        for c in range(m):  # slot order
            if not take[c]:
                continue
            n, i, j = cidx[c, 0], cidx[c, 1], cidx[c, 2]
            rep, tot, fee = cval[c, 0], cval[c, 1], cval[c, 2]
            for k in range(sup_e.shape[1]):
                cm[0, k] = sup_e[n, k] > 0.0 and L.can_coll[k]
            before = sup_e[n, i]
            apply_call(sup_e, deb_e, n, price, cm, 0, i, j, rep, tot, sums, 5)
            sums[1, i] += tot - fee
            sums[2, i] += fee
            sums[3, j] += rep
            sums[4, i] += before - sup_e[n, i]
            if ever.shape[0] > 0:
                ever[e, n] = True
            calls += 1
        return calls

    @njit(cache=True, inline="always")
    def _leg_invariants(e, pa, pq, L, dleg):
        """``dleg[k]``: the StableSwap invariant of each StableSwap leg of env ``e`` at the
        pools before a round (the round's calls are priced against them)."""
        for k in range(dleg.shape[0]):
            if L.amp[k] > 0.0:
                dleg[k] = SS.stableswap_d(pa[e, k], pq[e, k], L.amp[k])

    @njit(cache=True, inline="always")
    def _slot_health(n, sup_e, deb_e, row, price, L, cm):
        """(HF, debt USD) of position ``n`` at the oracle
        (:func:`~levgym.engine.portfolio_fused.position_health`); fills ``cm[0]`` (enabled
        collateral: supplied and a collateral reserve)."""
        for k in range(sup_e.shape[1]):
            cm[0, k] = sup_e[n, k] > 0.0 and L.can_coll[k]
        return position_health(sup_e, deb_e, n, price, L.lt, row, cm, 0)

    @njit(cache=True)
    def _close_round(e, f, pa, pq, ratio, snap, oracle, treasury, counters, pnl, L, S, sums, calls, src, feed, feed_h, buf, gas, bias, held, pend):  # fmt: skip
        """The end of a round with ``calls`` calls in env ``e``: counters, the bundled sale into
        each pool (with the keepers' off-pool venues: ``portfolio_market.route_sales``, the CEX
        leg's late proceeds held in ``pend``) then the bundled purchase from it, the keepers'
        result, oracles read again."""
        k_n = f.shape[1]
        q = L.q
        usdc_in = sums[1, q]
        usdc_out = sums[3, q]
        for k in range(k_n):
            counters[C_SEIZED, e, k] += sums[4, k]
            counters[C_FEE, e, k] += sums[2, k]
            counters[C_FEE_USD, e, k] += sums[2, k] * oracle[e, k]
            counters[C_REPAID, e, k] += sums[3, k]
            counters[C_DEFICIT, e, k] += sums[5, k]
            treasury[e, k] += sums[2, k]
            if not L.has_pool[k]:
                continue
            sell = sums[1, k]
            if sell > 0.0:
                rt = L.route
                if L.amp[k] > 0.0:
                    pa[e, k], pq[e, k], out = SS.stableswap_sell(
                        pa[e, k], pq[e, k], sell, L.fee[k], L.amp[k]
                    )
                elif rt[0] == 1.0:
                    a1, q1, _, _ = _venues(e, k, f, L)
                    to_venue = sell * rt[1]
                    pa[e, k], pq[e, k], out = NR.sell_asset(
                        pa[e, k], pq[e, k], sell - to_venue, L.fee[k]
                    )
                    out += NR.swap_out(a1, q1, to_venue, L.fee[k])
                    counters[C_VENUE, e, k] += to_venue
                elif rt[0] == 2.0:
                    a1, q1, a2, q2 = _venues(e, k, f, L)
                    use_agg, use_cex = rt[3] > 0.0, rt[5] > 0.0
                    to_pool, to_agg, to_cex = NR.route_split(
                        pa[e, k], pq[e, k], L.fee[k], a1, q1, rt[4], a2, q2, rt[6], sell,
                        use_agg, use_cex,
                    )  # fmt: skip
                    pa[e, k], pq[e, k], out = NR.sell_asset(pa[e, k], pq[e, k], to_pool, L.fee[k])
                    if use_agg:
                        out += NR.swap_out(a1, q1, to_agg, rt[4])
                        counters[C_AGG, e, k] += to_agg
                    if use_cex:
                        cex_out = NR.swap_out(a2, q2, to_cex, rt[6])
                        if rt[7] > 0.0:
                            pend[e, k] += cex_out * f[e, q] / f[e, k]
                        else:
                            out += cex_out
                        counters[C_CEX, e, k] += to_cex
                else:
                    pa[e, k], pq[e, k], out = NR.sell_asset(pa[e, k], pq[e, k], sell, L.fee[k])
                counters[C_SOLD, e, k] += sell
                counters[C_SALE_Q, e, k] += out
                usdc_in += out
            buy = sums[3, k]
            if buy > 0.0:
                if L.amp[k] > 0.0:
                    pa[e, k], pq[e, k], paid = SS.stableswap_buy_exact_out(
                        pa[e, k], pq[e, k], buy, L.fee[k], L.amp[k]
                    )
                else:
                    pa[e, k], pq[e, k], paid = MR.buy_exact_out(pa[e, k], pq[e, k], buy, L.fee[k])
                counters[C_BOUGHT, e, k] += buy
                counters[C_PURCHASE_Q, e, k] += paid
                usdc_out += paid
        _oracle_env(
            e, f, pa, pq, ratio, snap, S.now, L, S.weight, src, oracle, feed, feed_h, buf, True,
            bias, held,
        )  # fmt: skip
        pnl[e] += (usdc_in - usdc_out) * f[e, q] - gas * calls

    @njit(cache=True)
    def _borrow_totals(e, supply_in, debt_in, growth, L, B, total, iso):
        """The env's debt per reserve after interest (``total [K]``) and its isolated debt per
        isolation asset (``iso [K]``, :func:`levgym.engine.portfolio.isolation_total_debt`):
        what the borrower phase's borrowing is checked against (before the phase)."""
        n_n, k_n = debt_in.shape[1], debt_in.shape[2]
        for k in range(k_n):
            total[k] = 0.0
            iso[k] = 0.0
        for n in range(n_n):
            owed = 0.0
            n_coll = 0
            first = -1
            for k in range(k_n):
                d = debt_in[e, n, k]
                d = d + d * growth[k]
                total[k] += d
                owed += d
                if supply_in[e, n, k] > 0.0 and L.can_coll[k]:
                    n_coll += 1
                    if first < 0:
                        first = k
            if n_coll == 1 and B.ceiling[first] > 0.0:
                iso[first] += owed

    @njit(cache=True, inline="always")
    def _defend_slot(e, n, sup_e, deb_e, row, price, L, B, trig, repays, cap, counters, total, iso, want_j, want, wanted):  # fmt: skip
        """The borrower phase (:func:`levgym.engine.portfolio_borrowers.defend`) on position
        ``n`` of env ``e``, after its interest: below its trigger it tops up or repays (in
        place, capacity ``cap[e, n]`` spent); above its band it withdraws (in place) or asks to
        borrow (``want_j[n]``, ``want[n]``, summed in ``wanted [K]``; :func:`_defend_borrows`
        fills it after the pass)."""
        t = trig[e, n]
        if not t > 0.0:
            return
        k_n = sup_e.shape[1]
        coll = 0.0
        thr = 0.0
        lim = 0.0
        debt_usd = 0.0
        n_coll = 0
        first = -1
        i = 0
        best_i = -1.0
        j = 0
        best_j = -1.0
        for k in range(k_n):
            if sup_e[n, k] > 0.0 and L.can_coll[k]:
                v = sup_e[n, k] * price[k]
                coll += v
                thr += v * L.lt[row, k]
                lim += v * B.ltv[row, k]
                n_coll += 1
                if first < 0:
                    first = k
                if v > best_i:
                    best_i, i = v, k
            dv = deb_e[n, k] * price[k]
            debt_usd += dv
            if dv > best_j:
                best_j, j = dv, k
        hf = PR.health_factor(thr, debt_usd)
        c = cap[e, n]
        act = BR.defends(t, hf, debt_usd, coll, c)
        up = BR.rebalances_up(t, hf, debt_usd, coll, B.gap, B.rebalance)
        if not (act or up):
            return
        target = t + B.gap
        lt_i = L.lt[row, i]
        if not lt_i > 0.0:
            lt_i = 1.0
        p_i, p_j = price[i], price[j]
        if act and repays[e, n]:
            usd = BR.defend_repay_usd(target, debt_usd, thr, c, deb_e[n, j] * p_j)
            amount = min(usd / p_j, deb_e[n, j])
            deb_e[n, j] -= amount
            counters[C_REPAID_B, e, j] += amount
            cap[e, n] = max(c - usd, 0.0)
        elif act:
            usd = BR.defend_topup_usd(target, debt_usd, thr, lt_i, c)
            amount = usd / p_i
            sup_e[n, i] += amount
            counters[C_ADDED, e, i] += amount
            cap[e, n] = max(c - usd, 0.0)
        elif repays[e, n]:
            isolated = n_coll == 1 and B.ceiling[first] > 0.0
            a = first if isolated else 0
            allowed = B.can_borrow[j] and (row == 0 or B.emode_borrowable[row, j])
            allowed = allowed and (not isolated or B.bii[j])
            room = BRM.borrow_room_asset(
                allowed, hf, lim, max(lim - debt_usd, 0.0), p_j,
                max(B.borrow_cap[j] - total[j], 0.0), isolated, max(B.ceiling[a] - iso[a], 0.0),
            )  # fmt: skip
            w = BR.rebalance_borrow_asset(target, debt_usd, thr, p_j, room)
            want_j[n], want[n] = j, w
            wanted[j] += w
        else:
            usd = BR.rebalance_withdraw_usd(target, debt_usd, thr, lt_i, sup_e[n, i] * p_i)
            amount = min(usd / p_i, sup_e[n, i])
            sup_e[n, i] -= amount
            counters[C_WITHDRAWN, e, i] += amount
            cap[e, n] = max(c, 0.0) + usd

    @njit(cache=True)
    def _defend_borrows(e, deb_e, price, lender, B, cap, counters, total, want_j, want, wanted):
        """The borrower phase's borrowing in env ``e``, after the pass: each reserve's wanted
        borrowing filled to what its cap and liquidity leave
        (:func:`~levgym.engine.portfolio_borrowers.borrow_fill_frac`), the funds to the
        borrowers' outside funds."""
        for k in range(wanted.shape[0]):
            wanted[k] = BR.borrow_fill_frac(wanted[k], B.borrow_cap[k], lender[e, k], total[k])
        for n in range(want.shape[0]):
            j = want_j[n]
            if j < 0:
                continue
            b = want[n] * wanted[j]
            deb_e[n, j] += b
            counters[C_BORROWED, e, j] += b
            cap[e, n] += b * price[j]

    @njit(cache=True)
    def _turnover_env(e, sup_e, deb_e, rows, price, lender, counters, L, B, T, cm, active, tres, noise, mult, arrive, exits):  # fmt: skip
        """Exits and the arrivals' draw of env ``e``
        (:func:`levgym.engine.portfolio_borrowers.exit_and_arrive`), after interest: the odds
        from the template reserve's LTV and the USDC rate; an exiting position repays and
        withdraws everything (in place); ``arrive[n]``: the free slots that receive a borrower."""
        n_n, k_n = sup_e.shape
        q = L.q
        owed = 0.0
        for n in range(n_n):
            owed += deb_e[n, q]
        u_q = NR.utilization(owed, lender[e, q])
        rate = NR.borrow_rate_apr(u_q, L.base[q], L.slope1[q], L.slope2[q], L.optimal[q])
        for n in range(n_n):
            arrive[n] = False
            row = rows[n]
            attract = NR.attractiveness(
                B.ltv[row, tres[e, n]], rate, T.ltv_el, T.ltv_ref, T.rate_el, T.rate_ref
            )
            u = noise[e, n]
            if active[e, n]:
                hf, _ = _slot_health(n, sup_e, deb_e, row, price, L, cm)
                if NR.exits(u, NR.exit_prob(T.exit_rate, T.dt, attract), hf):
                    for k in range(k_n):
                        counters[C_WITHDRAWN, e, k] += sup_e[n, k]
                        counters[C_REPAID_B, e, k] += deb_e[n, k]
                        sup_e[n, k] = 0.0
                        deb_e[n, k] = 0.0
                    active[e, n] = False
                    exits[e] += 1.0
            else:
                arrive[n] = u < NR.arrival_prob(T.arrival_rate, T.dt, mult[e], attract)

    @njit(cache=True)
    def _loop_env(e, sup_e, deb_e, rows, price, pa, pq, lender, counters, L, B, LP, ltgt, li, sell, want, tot, T, arrive, tres, tcoll, thf, frz, active, arrivals, ac, ad):  # fmt: skip
        """The loopers of env ``e`` (:func:`levgym.engine.portfolio_borrowers.loop`), after the
        defenders: each looper's sale or wanted borrowing (:func:`looper_trade`), the sales into
        each pool as one sale, the repayments, the borrowing filled within the quote's liquidity
        and borrow cap, the purchases from each pool as one purchase. With ``T.room`` the new
        supply (purchases at the oracle, the arrivals ``arrive [N]``) is first scaled to each
        reserve's room (``tot[2]``, ``tot[3]`` scratch), the arrivals borrow with the loopers
        and come in after the purchases (``ac``, ``ad``: their collateral and debt). Returns
        whether a pool moved."""
        n_n, k_n = sup_e.shape
        q = L.q
        for k in range(k_n):
            tot[0, k] = 0.0
            tot[1, k] = 0.0
        for n in range(n_n):
            li[n] = -1
            t = ltgt[e, n]
            if not t > 0.0:
                continue
            i = -1
            n_coll = 0
            other_debt = False
            for k in range(k_n):
                if sup_e[n, k] > 0.0 and L.can_coll[k]:
                    n_coll += 1
                    i = k
                if k != q and deb_e[n, k] > 0.0:
                    other_debt = True
            if n_coll != 1 or other_debt or not LP.tradable[i]:
                continue
            row = rows[n]
            s_n, w_n = LR.looper_trade(
                t, sup_e[n, i], deb_e[n, q], price[i], price[q], L.lt[row, i], B.ltv[row, i],
                LP.band, LP.dfrac,
            )  # fmt: skip
            li[n], sell[n], want[n] = i, s_n, w_n
            tot[0, i] += s_n
        moved = False
        for k in range(k_n):  # one sale into each pool: what a unit sold gets
            total = tot[0, k]
            if total > 0.0:
                pa[e, k], pq[e, k], out = NR.sell_asset(pa[e, k], pq[e, k], total, L.fee[k])
                tot[1, k] = NR.per_unit(out, total)
                counters[C_WITHDRAWN, e, k] += total
                moved = True
        wanted = 0.0
        debt_q = 0.0
        for n in range(n_n):
            i = li[n]
            if i >= 0:
                if sell[n] > 0.0:
                    rep = min(sell[n] * tot[1, i], deb_e[n, q])
                    sup_e[n, i] -= sell[n]
                    deb_e[n, q] -= rep
                    counters[C_REPAID_B, e, q] += rep
                wanted += want[n]
            debt_q += deb_e[n, q]
        if T.room:  # new supply within each reserve's supply cap, none while frozen
            for k in range(k_n):
                tot[2, k] = 0.0
                tot[3, k] = 0.0
            for n in range(n_n):
                for k in range(k_n):
                    tot[2, k] += sup_e[n, k]
                i = li[n]
                if i >= 0 and want[n] > 0.0:
                    tot[3, i] += NR.relever_collateral_asset(want[n], price[q], price[i])
                if T.on and arrive[n]:
                    tot[3, tres[e, n]] += tcoll[e, n]
            for k in range(k_n):
                room = NR.supply_room(T.cap[k], tot[2, k] + lender[e, k], frz[e])
                tot[2, k] = NR.fill_ratio(room, tot[3, k])
            wanted = 0.0
            for n in range(n_n):
                i = li[n]
                if i >= 0:
                    want[n] = want[n] * tot[2, i]
                    wanted += want[n]
            for n in range(n_n):
                if T.on and arrive[n]:
                    t = tres[e, n]
                    if tot[2, t] > 0.0:
                        ac[n] = tcoll[e, n] * tot[2, t]
                        row = rows[n]
                        if B.ltv[row, t] > 0.0:
                            ad[n] = NR.arrival_debt(
                                ac[n], price[t], L.lt[row, t], B.ltv[row, t], thf[e, n], price[q]
                            )
                        wanted += ad[n]
                    else:  # scaled to nothing: does not arrive
                        arrive[n] = False
        avail = NR.borrow_available(lender[e, q], B.borrow_cap[q], debt_q)
        fill = NR.fill_ratio(avail, wanted)
        for k in range(k_n):
            tot[0, k] = 0.0
        for n in range(n_n):
            if li[n] >= 0:
                want[n] = want[n] * fill
                tot[0, li[n]] += want[n]
        for k in range(k_n):  # one purchase from each pool: what a unit paid gets
            total = tot[0, k]
            tot[1, k] = 0.0
            if total > 0.0:
                pa[e, k], pq[e, k], got = NR.buy_asset(pa[e, k], pq[e, k], total, L.fee[k])
                tot[1, k] = NR.per_unit(got, total)
                moved = True
        for n in range(n_n):
            i = li[n]
            if i >= 0 and want[n] > 0.0:
                bought = want[n] * tot[1, i]
                sup_e[n, i] += bought
                deb_e[n, q] += want[n]
                counters[C_ADDED, e, i] += bought
                counters[C_BORROWED, e, q] += want[n]
        if T.on:  # the arrivals: their collateral and their debt, filled with the loopers'
            for n in range(n_n):
                if arrive[n]:
                    t = tres[e, n]
                    d = ad[n] * fill
                    sup_e[n, t] += ac[n]
                    deb_e[n, q] += d
                    counters[C_ADDED, e, t] += ac[n]
                    counters[C_BORROWED, e, q] += d
                    active[e, n] = True
                    arrivals[e] += 1.0
        return moved

    @njit(parallel=True, cache=True)
    def _substep_kernel(
        supply_in, debt_in, emode_row, f, supply, debt, pa, pq, ratio, snap, oracle, lender,
        treasury, counters, pnl, liquidations, rounds_max, rounds, feed, feed_h, buf, L, S,
        gas_usd, capacity, B, trig, repays, cap, bias, held, arb, liq, base, use_liq, pend, ever,
        LP, ltgt, T, active, tres, tcoll, thf, noise, mult, frz, arrivals, exits,
    ):  # fmt: skip
        e_n, n_n, k_n = supply.shape
        for e in prange(e_n):
            src = np.empty(k_n)
            growth = np.empty(k_n)
            interest = np.zeros(k_n)
            cm = np.empty((1, k_n), dtype=np.bool_)
            sums = np.zeros((8, k_n))
            cidx = np.empty((n_n, 3), dtype=np.int64)  # the round's candidates
            cval = np.empty((n_n, 4))
            take = np.empty(n_n, dtype=np.bool_)
            maxrep = np.full((L.bonus.shape[0], k_n, k_n), np.inf)  # no repay limit
            gas, cap_left = gas_usd[e], capacity[e]
            sup_e, deb_e, price, rows = supply[e], debt[e], oracle[e], emode_row[e]
            # the borrower phase's scratch: totals, isolated debt, borrowing asked for
            lend = B.on and B.rebalance
            total, iso, wanted = np.zeros(k_n), np.zeros(k_n), np.zeros(k_n)
            want_j = np.full(n_n if lend else 0, -1, dtype=np.int64)
            want = np.zeros(n_n if lend else 0)
            dleg = np.zeros(k_n)
            # 1-3. prices, arbitrage, oracles
            _market_env(
                e, f, pa, pq, ratio, snap, oracle, S.now, L, S, src, feed, feed_h, buf, bias, held,
                arb, liq, base, use_liq,
            )  # fmt: skip
            if L.route[7] > 0.0:  # portfolio_market.cex_fills: the CEX leg's held collateral fills
                for k in range(k_n):
                    fill = NR.cex_fill_asset(pend[e, k], L.route[8])
                    pend[e, k] -= fill
                    pnl[e] += fill * f[e, k]
            _leg_invariants(e, pa, pq, L, dleg)
            if S.chunk < np.inf:
                _chunk_env(e, f, pa, price, L, S, maxrep)
            # one pass over the positions: 4. interest, 4b. borrowers, the first round's
            # candidates of 5. and, where the round leaves the oracle as it is, 6.
            _interest_growth_env(e, debt_in, lender, L, S, growth)
            if lend:
                _borrow_totals(e, supply_in, debt_in, growth, L, B, total, iso)
            sep = LP.on or T.on
            arrive = np.zeros(n_n if T.on else 0, dtype=np.bool_)
            if sep and T.on:  # exits and arrivals: interest, then exits, then the defenders
                for n in range(n_n):
                    _interest_slot(e, n, supply_in, debt_in, supply, debt, growth, interest)
                _interest_close(e, lender, treasury, counters, L, interest)
                _turnover_env(
                    e, sup_e, deb_e, rows, price, lender, counters, L, B, T, cm, active, tres,
                    noise, mult, arrive, exits,
                )  # fmt: skip
                if lend:  # the totals before the defenders: after the exits
                    _borrow_totals(e, supply, debt, np.zeros(k_n), L, B, total, iso)
                for n in range(n_n):
                    if B.on and trig[e, n] > 0.0:
                        _defend_slot(
                            e, n, sup_e, deb_e, rows[n], price, L, B, trig, repays, cap,
                            counters, total, iso, want_j, want, wanted,
                        )  # fmt: skip
            elif sep:  # loopers trade through the pools: their own pass, before the candidates
                for n in range(n_n):
                    _interest_slot(e, n, supply_in, debt_in, supply, debt, growth, interest)
                    if B.on and trig[e, n] > 0.0:
                        _defend_slot(
                            e, n, sup_e, deb_e, rows[n], price, L, B, trig, repays, cap,
                            counters, total, iso, want_j, want, wanted,
                        )  # fmt: skip
                _interest_close(e, lender, treasury, counters, L, interest)
            if sep:
                if lend:
                    _defend_borrows(e, deb_e, price, lender, B, cap, counters, total, want_j, want, wanted)  # fmt: skip
                li = np.empty(n_n, dtype=np.int64)
                moved = _loop_env(
                    e, sup_e, deb_e, rows, price, pa, pq, lender, counters, L, B, LP, ltgt, li,
                    np.zeros(n_n), np.zeros(n_n), np.zeros((4, k_n)), T, arrive, tres, tcoll,
                    thf, frz, active, arrivals, np.zeros(n_n), np.zeros(n_n),
                )  # fmt: skip
                if moved:  # the oracles read the moved pools, in the block
                    _oracle_env(
                        e, f, pa, pq, ratio, snap, S.now, L, S.weight, src, oracle, feed, feed_h,
                        buf, True, bias, held,
                    )  # fmt: skip
                    _leg_invariants(e, pa, pq, L, dleg)
                    if S.chunk < np.inf:
                        _chunk_env(e, f, pa, price, L, S, maxrep)
            m = 0
            for n in range(n_n):
                if not sep:
                    _interest_slot(e, n, supply_in, debt_in, supply, debt, growth, interest)
                    if B.on and trig[e, n] > 0.0:
                        _defend_slot(
                            e, n, sup_e, deb_e, rows[n], price, L, B, trig, repays, cap,
                            counters, total, iso, want_j, want, wanted,
                        )  # fmt: skip
                hf, debt_usd = _slot_health(n, sup_e, deb_e, rows[n], price, L, cm)
                if hf < 1.0:
                    m = _candidate_slot(
                        e, n, sup_e, deb_e, rows[n], f, pa, pq, price, L, S, cm, hf, debt_usd,
                        gas, cidx, cval, m, maxrep, dleg,
                    )  # fmt: skip
                if _collateral_value(e, n, supply, oracle, L) == 0.0:
                    _write_off_slot(e, n, debt, counters)
                    if T.on:  # a slot without collateral is free again
                        active[e, n] = False
            if not sep:
                _interest_close(e, lender, treasury, counters, L, interest)
            if lend and not sep:  # a borrower's HF stays above its target: no call
                _defend_borrows(e, deb_e, price, lender, B, cap, counters, total, want_j, want, wanted)  # fmt: skip
            calls = 0
            if m > 0:
                calls = _take_calls(
                    e, m, sup_e, deb_e, f, pa, pq, price, L, S, cm, gas, cap_left, cidx, cval,
                    take, sums, ever,
                )  # fmt: skip
            r = 0
            while calls > 0:
                _close_round(
                    e, f, pa, pq, ratio, snap, oracle, treasury, counters, pnl, L, S, sums, calls,
                    src, feed, feed_h, buf, gas, bias, held, pend,
                )  # fmt: skip
                liquidations[e] += calls
                cap_left -= calls
                r += 1
                if r == S.max_rounds:
                    break
                # 5. the next round, at the oracle and pools the round's trades left
                _leg_invariants(e, pa, pq, L, dleg)
                sums[:] = 0.0
                if S.chunk < np.inf:
                    _chunk_env(e, f, pa, price, L, S, maxrep)
                m = 0
                for n in range(n_n):
                    hf, debt_usd = _slot_health(n, sup_e, deb_e, rows[n], price, L, cm)
                    if hf < 1.0:
                        m = _candidate_slot(
                            e, n, sup_e, deb_e, rows[n], f, pa, pq, price, L, S, cm, hf,
                            debt_usd, gas, cidx, cval, m, maxrep, dleg,
                        )  # fmt: skip
                calls = 0
                if m > 0:
                    calls = _take_calls(
                        e, m, sup_e, deb_e, f, pa, pq, price, L, S, cm, gas, cap_left, cidx,
                        cval, take, sums, ever,
                    )  # fmt: skip
            rounds[e] = r
            rounds_max[e] = max(rounds_max[e], r)
            if r > 0:  # 6. at the oracle the cascade left
                for n in range(n_n):
                    if _collateral_value(e, n, supply, oracle, L) == 0.0:
                        _write_off_slot(e, n, debt, counters)
                        if T.on:
                            active[e, n] = False


@functools.lru_cache(maxsize=32)
def _layout(reserves: Reserves, params: PortfolioMarketParams):
    """The kernel's per-reserve constants (:data:`Layout`)."""
    has_pool, fee, _ = portfolio_market._pool_layout(reserves, params)
    rows = np.arange(len(reserves.emode_table["lt"]))
    _, lt, bonus = effective_risk(reserves, rows)
    col = reserves._col
    kinds = [portfolio.ORACLE_KINDS.index(r.oracle.kind) for r in reserves.reserves]
    base = [
        reserves.index(r.oracle.base_symbol) if r.oracle.kind == "exchange_rate" else k
        for k, r in enumerate(reserves.reserves)
    ]
    return Layout(
        q=reserves.index(portfolio_market.QUOTE_SYMBOL),
        has_pool=np.ascontiguousarray(has_pool, dtype=np.bool_),
        fee=np.ascontiguousarray(fee, dtype=np.float64),
        can_coll=np.ascontiguousarray(reserves.can_collateral, dtype=np.bool_),
        lt=np.ascontiguousarray(lt, dtype=np.float64),
        bonus=np.ascontiguousarray(bonus, dtype=np.float64),
        pfee=np.ascontiguousarray(reserves.protocol_fee_frac, dtype=np.float64),
        rf=np.ascontiguousarray(col("reserve_factor_frac")),
        base=np.ascontiguousarray(col("base_rate_apr")),
        slope1=np.ascontiguousarray(col("slope1_apr")),
        slope2=np.ascontiguousarray(col("slope2_apr")),
        optimal=np.ascontiguousarray(col("optimal_utilization_frac")),
        okind=np.array(kinds, dtype=np.int64),
        obase=np.array(base, dtype=np.int64),
        ocap=np.array([r.oracle.price_cap_usd for r in reserves.reserves]),
        ogrowth=np.array([r.oracle.max_yearly_ratio_growth_frac for r in reserves.reserves]),
        fcode=np.array(
            [portfolio_market.FEED_CODES[r.oracle.feed] for r in reserves.reserves], dtype=np.int64
        ),
        fdev=np.array([r.oracle.deviation_frac for r in reserves.reserves]),
        fhb=np.array([r.oracle.heartbeat_h for r in reserves.reserves]),
        amp=np.ascontiguousarray(portfolio_market.pool_amp(reserves, params), dtype=np.float64),
        close=np.array(params.close_terms, dtype=np.float64),
        route=_route_terms(params),
    )


def _route_terms(params: PortfolioMarketParams) -> np.ndarray:
    """The keepers' routing as the kernel reads it (:data:`Layout`'s ``route``)."""
    mode = ("pool", "venue", "split").index(params.keeper_routing)
    return np.array(
        [
            mode, params.keeper_venue_frac, params.keeper_venue_depth_usd,
            params.keeper_aggregator_depth_usd, params.keeper_aggregator_fee_frac,
            params.keeper_cex_depth_usd, params.keeper_cex_fee_frac,
            1.0 if params.keeper_cex_latent else 0.0, params.keeper_cex_fill_frac,
        ],
        dtype=np.float64,
    )  # fmt: skip


@functools.lru_cache(maxsize=32)
def _borrower_layout(reserves: Reserves, params: PortfolioMarketParams, on: bool) -> BorrowerLayout:
    """The borrower phase's constants (:data:`BorrowerLayout`); ``on``: some slot defends."""
    rows = np.arange(len(reserves.emode_table["lt"]))
    ltv, _, _ = effective_risk(reserves, rows)
    bp = params.borrowers
    return BorrowerLayout(
        on=bool(on),
        rebalance=bool(bp.rebalance),
        gap=float(bp.target_gap),
        ltv=np.ascontiguousarray(ltv, dtype=np.float64),
        can_borrow=np.ascontiguousarray(reserves.can_borrow, dtype=np.bool_),
        emode_borrowable=np.ascontiguousarray(reserves.emode_table["borrowable"], dtype=np.bool_),
        bii=np.ascontiguousarray(reserves.borrowable_in_isolation, dtype=np.bool_),
        ceiling=np.ascontiguousarray(reserves.debt_ceiling_usd, dtype=np.float64),
        borrow_cap=np.ascontiguousarray(reserves.borrow_cap_asset, dtype=np.float64),
    )


@functools.lru_cache(maxsize=32)
def _looper_layout(reserves: Reserves, params: PortfolioMarketParams, on: bool) -> LooperLayout:
    """The loopers' constants (:data:`LooperLayout`); ``on``: some slot loops this substep."""
    bp = params.borrowers
    return LooperLayout(
        on=bool(on),
        band=float(bp.relever_band_frac),
        dfrac=float(bp.delever_frac),
        tradable=np.ascontiguousarray(
            portfolio_market.looper_tradable(reserves, params), dtype=np.bool_
        ),
    )


@functools.lru_cache(maxsize=32)
def _turnover_layout(
    reserves: Reserves, params: PortfolioMarketParams, on: bool, frozen: bool
) -> TurnoverLayout:
    """Exits' and arrivals' constants (:data:`TurnoverLayout`); ``on``: they run this substep;
    ``frozen``: the substep has a ``freeze``."""
    bp = params.borrowers
    k = reserves.k
    cap = reserves.supply_cap_asset if bp.supply_cap_new_supply else np.full(k, np.inf)
    return TurnoverLayout(
        on=bool(on),
        room=bool(on or bp.supply_cap_new_supply or frozen),
        cap=np.ascontiguousarray(cap, dtype=np.float64),
        exit_rate=float(bp.exit_rate_per_h),
        arrival_rate=float(bp.arrival_rate_per_h),
        ltv_el=float(bp.ltv_elasticity),
        ltv_ref=float(bp.ltv_ref),
        rate_el=float(bp.rate_elasticity),
        rate_ref=float(bp.rate_ref_apr),
        dt=float(params.substep_h),
    )


def _scalars(params: PortfolioMarketParams, now: float, slot: int) -> Scalars:
    return Scalars(
        float(params.arb_speed_frac),
        float(params.oracle_pool_weight_frac),
        float(params.substep_h),
        portfolio_market.KEEPER_FILTERS.index(params.profitability_filter),
        float(params.max_round_buy_frac),
        int(params.max_cascade_rounds),
        float(now),
        int(slot),
        float(params.keeper_chunk_ratio),
    )


def substep(
    state: PortfolioState, fundamental_usd: np.ndarray, reserves: Reserves,
    params: PortfolioMarketParams, gas_gwei=None, noise_u=None, oracle_bias_frac=None,
    oracle_held=None, liquidity_frac=None, arb_speed_frac=None, arrival_mult=None, freeze=None,
) -> tuple[PortfolioState, np.ndarray]:  # fmt: skip
    """:func:`levgym.engine.portfolio_market.substep` compiled (same results to float
    rounding): the new state (fresh arrays) and the cascade rounds with calls per env ``[E]``.
    ``gas_gwei``: the substep's gas price (a number or ``[E]``; None:
    ``params.gas_price_gwei``); ``noise_u``: the slots' uniforms ``[E, N]`` (read with reaction
    probabilities: :func:`levgym.engine.portfolio_borrowers.phase_trigger_hf` zeroes the
    triggers of the slots that do not react, before the kernel); ``oracle_bias_frac``,
    ``oracle_held``: the oracle drivers ``[E, K]`` (None: none;
    :func:`levgym.engine.portfolio_market.oracle_drivers`); ``liquidity_frac``,
    ``arb_speed_frac``: the pool drivers (:func:`levgym.engine.portfolio_market.pool_drivers`);
    ``arrival_mult``, ``freeze``: the arrivals' driver and the governor's freeze ``[E]``
    (:func:`levgym.engine.portfolio_borrowers.turnover_drivers`)."""
    e, n, k = state.shape
    f = np.ascontiguousarray(
        np.broadcast_to(np.asarray(fundamental_usd, dtype=np.float64), (e, k))
    ).copy()
    L = _layout(reserves, params)
    now = state.time_h + params.substep_h
    w = params.twap_window_substeps
    S = _scalars(params, now, state.substep_index % w)
    if state.twap_buffer_usd is None or state.twap_buffer_usd.shape[-1] != w:
        buf = np.repeat(state.fundamental_usd[:, :, None].astype(np.float64), w, axis=2)
    else:
        buf = np.ascontiguousarray(state.twap_buffer_usd, dtype=np.float64).copy()
    supply_in = np.ascontiguousarray(state.supply, dtype=np.float64)
    debt_in = np.ascontiguousarray(state.debt, dtype=np.float64)
    supply, debt = np.empty_like(supply_in), np.empty_like(debt_in)
    emode = np.ascontiguousarray(state.emode_row, dtype=np.int64)
    pa, pq = state.pool_asset.astype(np.float64), state.pool_quote.astype(np.float64)
    oracle = np.empty((e, k))
    lender = state.lender_supply_asset.astype(np.float64)
    treasury = state.treasury_asset.astype(np.float64)
    counters = np.stack([state.counters[c] for c in COUNTERS]).astype(np.float64)
    pnl = state.keeper_pnl_usd.astype(np.float64)
    liquidations = state.liquidations.astype(np.int64)
    rounds_max = state.cascade_rounds_max.astype(np.int64)
    rounds = np.zeros(e, dtype=np.int64)
    ratio = np.ascontiguousarray(state.exchange_ratio, dtype=np.float64)
    snap = np.ascontiguousarray(state.snapshot_ratio, dtype=np.float64)
    if state.feed_usd is None or state.feed_updated_h is None:  # no answer yet (NaN)
        feed, feed_h = np.full((e, k), np.nan), np.zeros((e, k))
    else:
        feed = state.feed_usd.astype(np.float64)
        feed_h = state.feed_updated_h.astype(np.float64)
    gas_usd = portfolio_market.keeper_gas_usd(reserves, params, f, gas_gwei)
    capacity = portfolio_market.keeper_capacity(params, gas_gwei, e)
    gwei = portfolio_market.gas_gwei_per_env(params, gas_gwei, e)
    bias_a, held_a = portfolio_market.oracle_drivers(oracle_bias_frac, oracle_held, (e, k))
    bias_a = np.zeros((e, k)) if bias_a is None else np.ascontiguousarray(bias_a)
    held_a = np.zeros((e, k), dtype=np.bool_) if held_a is None else np.ascontiguousarray(held_a)
    liq_a, arb_a = portfolio_market.pool_drivers(liquidity_frac, arb_speed_frac, state, params)
    arb_a = np.ascontiguousarray(arb_a)
    use_liq = liq_a is not None
    liq_a = np.ascontiguousarray(liq_a) if use_liq else np.ones((e, k))
    base_a = np.ones((e, k)) if not use_liq else np.ascontiguousarray(state.pool_liquidity_base, dtype=np.float64)  # fmt: skip
    acting = portfolio_borrowers.phase_trigger_hf(state, params, noise_u, gwei)
    on = acting is not None and bool(np.any(acting > 0.0))
    B = _borrower_layout(reserves, params, on)
    if state.ever_liquidated is not None:  # the positions liquidated so far (statistics)
        ever = np.array(state.ever_liquidated, dtype=np.bool_)
    else:
        ever = np.zeros((0, 0), dtype=np.bool_)
    latent = params.keeper_cex_latent  # the CEX leg's held collateral (cex_fills)
    if latent and state.keeper_cex_pending_asset is not None:
        pend = np.array(state.keeper_cex_pending_asset, dtype=np.float64)
    else:
        pend = np.zeros((e, k))
    if on:  # the borrower phase's per-slot behaviours; the capacity is written (a fresh array)
        trig = np.ascontiguousarray(acting, dtype=np.float64)
        repays = np.ascontiguousarray(state.defend_repays, dtype=np.bool_)
        cap = np.array(state.defend_capacity_usd, dtype=np.float64)
    else:
        trig, repays, cap = np.zeros((1, 1)), np.zeros((1, 1), dtype=np.bool_), np.zeros((1, 1))
    looping = state.looper_target_hf  # the loopers' targets, zeroed where a slot does not react
    if looping is not None:
        looping = portfolio_borrowers.phase_trigger_hf(state, params, noise_u, gwei, looping)
    LP = _looper_layout(reserves, params, looping is not None and bool(np.any(looping > 0.0)))
    mult, frz = portfolio_borrowers.turnover_drivers(arrival_mult, freeze, e)
    turnover = portfolio_borrowers.turnover_on(state, params)
    if turnover and noise_u is None:
        raise ValueError("noise_u=None with exits or arrivals; allowed a uniform [E, N] array")
    T = _turnover_layout(reserves, params, turnover, frz is not None)
    if not LP.on:
        ltgt = np.zeros((e, n) if T.on else (1, 1))
    else:
        ltgt = np.ascontiguousarray(looping, dtype=np.float64)
    frz = np.zeros(e, dtype=np.bool_) if frz is None else np.ascontiguousarray(frz)
    if turnover:  # the flags and counters are written (fresh arrays)
        active = np.array(state.active, dtype=np.bool_)
        tres = np.ascontiguousarray(state.template_reserve, dtype=np.int64)
        tcoll = np.ascontiguousarray(state.template_collateral_asset, dtype=np.float64)
        thf = np.ascontiguousarray(state.template_hf, dtype=np.float64)
        noise = np.ascontiguousarray(noise_u, dtype=np.float64)
        if noise.shape != (e, n):
            raise ValueError(f"noise_u has shape {noise.shape}; allowed {(e, n)} ([E, N])")
        arrivals = np.array(state.arrivals, dtype=np.float64)
        exits = np.array(state.exits, dtype=np.float64)
    else:
        active, tres = np.ones((1, 1), dtype=np.bool_), np.zeros((1, 1), dtype=np.int64)
        tcoll, thf, noise = np.zeros((1, 1)), np.ones((1, 1)), np.zeros((1, 1))
        arrivals, exits = np.zeros(1), np.zeros(1)
    _substep_kernel(
        supply_in, debt_in, emode, f, supply, debt, pa, pq, ratio, snap, oracle, lender,
        treasury, counters, pnl, liquidations, rounds_max, rounds, feed, feed_h, buf, L, S,
        gas_usd, capacity, B, trig, repays, cap, bias_a, held_a, arb_a, liq_a, base_a, use_liq,
        pend, ever, LP, ltgt, T, active, tres, tcoll, thf, noise, mult, frz, arrivals, exits,
    )  # fmt: skip
    if turnover:
        state = state.replace(active=active, arrivals=arrivals, exits=exits)
    if state.ever_liquidated is not None:
        state = state.replace(ever_liquidated=ever)
    if on:
        state = state.replace(defend_capacity_usd=cap)
    if latent:
        state = state.replace(keeper_cex_pending_asset=pend)
    return state.replace(
        supply=supply,
        debt=debt,
        fundamental_usd=f,
        oracle_usd=oracle,
        pool_asset=pa,
        pool_quote=pq,
        lender_supply_asset=lender,
        treasury_asset=treasury,
        counters={c: counters[i] for i, c in enumerate(COUNTERS)},
        keeper_pnl_usd=pnl,
        liquidations=liquidations,
        cascade_rounds_max=rounds_max,
        time_h=now,
        feed_usd=feed,
        feed_updated_h=feed_h,
        twap_buffer_usd=buf,
        substep_index=state.substep_index + 1,
    ), rounds
