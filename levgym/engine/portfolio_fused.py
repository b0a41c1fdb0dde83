"""The cross-margin keeper pass compiled by numba: one position at a time, the same rule texts.

:func:`liquidate_fused` is :func:`levgym.engine.portfolio.liquidate` as a per-position loop over
envs (in parallel) and slots: the scalar rules of ``portfolio.PAIR_RULE_NAMES`` are compiled
from their source by :func:`levgym.engine.fused.compile_rules`, so the formulas exist once; the
kernel holds only the control flow (which pairs, which is best, how the balances change).
Where numba is missing the kernel runs as plain Python (slow, same results).
"""

from __future__ import annotations

import numpy as np

from . import portfolio
from .fused import _rules_cache_dir, compile_rules
from .jit import HAVE_NUMBA, njit, numba, prange
from .portfolio import LiquidationResult, Reserves, collateral_mask, effective_risk

# The kernels below inline the rules of portfolio.py: their numba cache is keyed by its source
# too (fused._rules_cache_dir), so a changed rule never runs stale machine code. The folder is
# set for this module's decorations and restored at its end.
_PREVIOUS_CACHE_DIR = numba.config.CACHE_DIR if HAVE_NUMBA else None
if HAVE_NUMBA:
    numba.config.CACHE_DIR = _rules_cache_dir(portfolio)

PR = compile_rules(portfolio, portfolio.PAIR_RULE_NAMES)
TIE = portfolio.PAIR_TIE_FRAC


# The per-position functions address a position by its row ``n`` in an env's ``[N, K]`` arrays
# (and the per-row tables by a row index), never by a row view: a view per position costs its
# reference counting, which was most of a healthy position's cost.


@njit(cache=True, inline="always")
def position_health(supply, debt, n, price, lt, lrow, cm, crow):
    """(health factor, debt in USD) of position ``n`` of an env (``supply``, ``debt`` ``[N, K]``)
    at its oracle ``price [K]``, with the effective LT ``lt[lrow]`` and the enabled collateral
    ``cm[crow]``: :func:`levgym.engine.portfolio.health_factor` of the sums
    ``sum_i coll_i p_i LT_i`` and ``sum_j debt_j p_j`` (as ``account_data``)."""
    thr = 0.0
    debt_usd = 0.0
    for k in range(supply.shape[1]):
        if cm[crow, k]:
            thr += supply[n, k] * price[k] * lt[lrow, k]
        debt_usd += debt[n, k] * price[k]
    return PR.health_factor(thr, debt_usd), debt_usd


@njit(cache=True, inline="always")
def _pair(supply, debt, n, price, bonus, brow, fee_frac, i, j, hf, debt_usd, maxrep, mrow, ct):
    """The keeper's call on pair (i, j): (repay, collateral leaving, fee, reverts, gain);
    ``ct``: the close terms ``[5]`` (:data:`levgym.engine.portfolio.V33_CLOSE_TERMS`' form)."""
    c, d = supply[n, i], debt[n, j]
    pi, pj, b = price[i], price[j], bonus[brow, i]
    cover = PR.keeper_debt_to_cover(
        c, d, pi, pj, b, hf, debt_usd, maxrep[mrow, i, j], ct[0], ct[1], ct[2], ct[3], ct[4]
    )
    rep, tot, fee, rev = PR.liquidation_call(
        c, d, pi, pj, b, fee_frac[i], hf, debt_usd, cover, ct[0], ct[1], ct[2], ct[3], ct[4]
    )
    return rep, tot, fee, rev, PR.pair_gain_usd(tot, fee, rep, pi, pj)


@njit(cache=True)
def position_call(
    supply, debt, n, price, bonus, brow, fee_frac, cm, crow, hf, debt_usd, maxrep, mrow, ct
):  # fmt: skip
    """The keeper's call on position ``n`` (``supply``, ``debt`` ``[N, K]``; oracle ``[K]``;
    effective bonus ``bonus[brow]``; protocol fees ``[K]``; enabled collateral ``cm[crow]``; its
    health factor and debt from :func:`position_health`; the keeper's limit on each pair's repay
    ``maxrep[mrow] [K_i, K_j]``, ``inf`` for none; the close terms ``ct [5]``): (collateral
    index, debt index, repay, collateral leaving the position, protocol fee, gain at the oracle); index -1 when there is no
    call (HF >= 1 or no pair repays anything). The pair is
    :func:`levgym.engine.portfolio.best_pair`'s: the largest gain, ties within
    ``PAIR_TIE_FRAC`` to the lowest collateral, then debt, index. Callers test ``hf < 1`` first
    (the call's code is large; skipping the call keeps a healthy position cheap)."""
    k_n = supply.shape[1]
    if not hf < 1.0:
        return -1, -1, 0.0, 0.0, 0.0, 0.0
    best = -np.inf
    for i in range(k_n):
        if not cm[crow, i]:
            continue
        for j in range(k_n):
            if not debt[n, j] > 0.0:
                continue
            rep, tot, fee, rev, g = _pair(
                supply, debt, n, price, bonus, brow, fee_frac, i, j, hf, debt_usd, maxrep, mrow,
                ct,
            )  # fmt: skip
            if rev or not rep > 0.0:
                continue
            if g > best:
                best = g
    if best == -np.inf:
        return -1, -1, 0.0, 0.0, 0.0, 0.0
    for i in range(k_n):
        if not cm[crow, i]:
            continue
        for j in range(k_n):
            if not debt[n, j] > 0.0:
                continue
            rep, tot, fee, rev, g = _pair(
                supply, debt, n, price, bonus, brow, fee_frac, i, j, hf, debt_usd, maxrep, mrow,
                ct,
            )  # fmt: skip
            if rev or not rep > 0.0:
                continue
            if g < best - TIE * abs(best):
                continue
            return i, j, rep, tot, fee, g
    return -1, -1, 0.0, 0.0, 0.0, 0.0


@njit(cache=True, inline="always")
def apply_call(supply, debt, n, price, cm, crow, i, j, rep, tot, deficit, drow):
    """Write a call from :func:`position_call` into position ``n`` (in place): ``j``'s debt less
    the repay; ``i``'s collateral less what leaves (0 when all of it goes); when that was the
    position's last collateral, every debt is burnt into ``deficit[drow]`` (added; v3.3's
    ``DeficitCreated``). Returns whether the debt was burnt."""
    k_n = supply.shape[1]
    c = supply[n, i]
    debt[n, j] = debt[n, j] - rep
    if tot >= c:
        others = 0.0
        for k in range(k_n):
            if k != i and cm[crow, k]:
                others += supply[n, k] * price[k]
        supply[n, i] = 0.0
        if others == 0.0:
            for k in range(k_n):
                deficit[drow, k] += debt[n, k]
                debt[n, k] = 0.0
            return True
    else:
        supply[n, i] = max(c - tot, 0.0)
    return False


@njit(parallel=True, cache=True)
def _kernel(
    supply, debt, price, lt, bonus, fee_frac, cm, out_supply, out_debt, out_deficit, idx, amounts,
    maxrep, mrows, ct,
):  # fmt: skip
    e_n, n_n, k_n = supply.shape
    for e in prange(e_n):
        s_e, d_e, p_e, lt_e, b_e, cm_e = supply[e], debt[e], price[e], lt[e], bonus[e], cm[e]
        mr_e, mrows_e = maxrep[e], mrows[e]
        os_e, od_e, def_e = out_supply[e], out_debt[e], out_deficit[e]
        for n in range(n_n):
            hf, debt_usd = position_health(s_e, d_e, n, p_e, lt_e, n, cm_e, n)
            if not hf < 1.0:
                continue
            i, j, rep, tot, fee, g = position_call(
                s_e, d_e, n, p_e, b_e, n, fee_frac, cm_e, n, hf, debt_usd, mr_e, mrows_e[n], ct
            )
            if i < 0:
                continue
            idx[e, n, 0], idx[e, n, 1] = i, j
            amounts[e, n, 0], amounts[e, n, 1], amounts[e, n, 2], amounts[e, n, 3] = (
                rep,
                tot - fee,
                fee,
                g,
            )
            apply_call(os_e, od_e, n, p_e, cm_e, n, i, j, rep, tot, def_e, n)


if HAVE_NUMBA:
    numba.config.CACHE_DIR = _PREVIOUS_CACHE_DIR


def liquidate_fused(
    supply: np.ndarray, debt: np.ndarray, oracle_usd: np.ndarray, reserves: Reserves,
    emode_row: np.ndarray | int = 0, collateral_enabled: np.ndarray | None = None,
    max_repay_by_row: np.ndarray | None = None, close_terms: tuple = portfolio.V33_CLOSE_TERMS,
) -> LiquidationResult:  # fmt: skip
    """:func:`levgym.engine.portfolio.liquidate` on a book ``[E, N, K]`` with prices ``[E, K]``,
    compiled (same results to float rounding). ``max_repay_by_row``: the keeper's limit on each
    pair's repay per E-mode row ``[E, R, K_i, K_j]`` (a position reads its row's; None: no
    limit); ``close_terms``: :data:`levgym.engine.portfolio.V33_CLOSE_TERMS`' form."""
    supply = np.ascontiguousarray(supply, dtype=np.float64)
    debt = np.ascontiguousarray(debt, dtype=np.float64)
    e_n, n_n, k_n = supply.shape
    price = np.ascontiguousarray(
        np.broadcast_to(np.asarray(oracle_usd, dtype=np.float64), (e_n, k_n))
    )
    rows = np.broadcast_to(np.asarray(emode_row, dtype=np.int64), (e_n, n_n))
    _, lt, bonus = effective_risk(reserves, rows)
    lt = np.ascontiguousarray(np.broadcast_to(lt, supply.shape))
    bonus = np.ascontiguousarray(np.broadcast_to(bonus, supply.shape))
    cm = np.ascontiguousarray(collateral_mask(supply, reserves, collateral_enabled))
    out_supply, out_debt = supply.copy(), debt.copy()
    out_deficit = np.zeros_like(supply)
    idx = np.full((e_n, n_n, 2), -1, dtype=np.int64)
    amounts = np.zeros((e_n, n_n, 4))
    fee_frac = np.ascontiguousarray(reserves.protocol_fee_frac)
    if max_repay_by_row is None:
        maxrep = np.full((e_n, 1, k_n, k_n), np.inf)
        mrows = np.zeros((e_n, n_n), dtype=np.int64)
    else:
        maxrep = np.ascontiguousarray(max_repay_by_row, dtype=np.float64)
        mrows = np.ascontiguousarray(rows)
    _kernel(
        supply,
        debt,
        price,
        lt,
        bonus,
        fee_frac,
        cm,
        out_supply,
        out_debt,
        out_deficit,
        idx,
        amounts,
        maxrep,
        mrows,
        np.array(close_terms, dtype=np.float64),
    )
    return LiquidationResult(
        supply=out_supply,
        debt=out_debt,
        collateral_index=idx[..., 0],
        debt_index=idx[..., 1],
        repay=amounts[..., 0],
        seized=amounts[..., 1],
        protocol_fee=amounts[..., 2],
        profit_usd=amounts[..., 3],
        deficit=out_deficit,
    )
