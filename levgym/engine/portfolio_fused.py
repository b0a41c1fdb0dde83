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
from .fused import compile_rules
from .jit import njit, prange
from .portfolio import LiquidationResult, Reserves, collateral_mask, effective_risk

PR = compile_rules(portfolio, portfolio.PAIR_RULE_NAMES)
TIE = portfolio.PAIR_TIE_FRAC


@njit(parallel=True, cache=True)
def _kernel(
    supply, debt, price, lt, bonus, fee_frac, cm, out_supply, out_debt, out_deficit, idx, amounts
):
    e_n, n_n, k_n = supply.shape
    for e in prange(e_n):
        for n in range(n_n):
            coll_usd = 0.0
            thr = 0.0
            debt_usd = 0.0
            for k in range(k_n):
                if cm[e, n, k]:
                    v = supply[e, n, k] * price[e, k]
                    coll_usd += v
                    thr += v * lt[e, n, k]
                debt_usd += debt[e, n, k] * price[e, k]
            hf = thr / debt_usd if debt_usd > 0.0 else np.inf
            if not hf < 1.0:
                continue
            best = -np.inf
            for i in range(k_n):
                if not cm[e, n, i]:
                    continue
                for j in range(k_n):
                    if not debt[e, n, j] > 0.0:
                        continue
                    c, d = supply[e, n, i], debt[e, n, j]
                    pi, pj, b = price[e, i], price[e, j], bonus[e, n, i]
                    cover = PR.keeper_debt_to_cover(c, d, pi, pj, b, hf, debt_usd)
                    rep, tot, fee, rev = PR.liquidation_call(
                        c, d, pi, pj, b, fee_frac[i], hf, debt_usd, cover
                    )
                    if rev or not rep > 0.0:
                        continue
                    g = PR.pair_gain_usd(tot, fee, rep, pi, pj)
                    if g > best:
                        best = g
            if best == -np.inf:
                continue
            done = False
            for i in range(k_n):
                if done or not cm[e, n, i]:
                    continue
                for j in range(k_n):
                    if done or not debt[e, n, j] > 0.0:
                        continue
                    c, d = supply[e, n, i], debt[e, n, j]
                    pi, pj, b = price[e, i], price[e, j], bonus[e, n, i]
                    cover = PR.keeper_debt_to_cover(c, d, pi, pj, b, hf, debt_usd)
                    rep, tot, fee, rev = PR.liquidation_call(
                        c, d, pi, pj, b, fee_frac[i], hf, debt_usd, cover
                    )
                    if rev or not rep > 0.0:
                        continue
                    g = PR.pair_gain_usd(tot, fee, rep, pi, pj)
                    if g < best - TIE * abs(best):
                        continue
                    done = True
                    idx[e, n, 0], idx[e, n, 1] = i, j
                    amounts[e, n, 0], amounts[e, n, 1], amounts[e, n, 2], amounts[e, n, 3] = (
                        rep,
                        tot - fee,
                        fee,
                        g,
                    )
                    out_debt[e, n, j] = d - rep
                    if tot >= c:
                        out_supply[e, n, i] = 0.0
                        others = 0.0
                        for k in range(k_n):
                            if k != i and cm[e, n, k]:
                                others += supply[e, n, k] * price[e, k]
                        if others == 0.0:
                            for k in range(k_n):
                                out_deficit[e, n, k] = out_debt[e, n, k]
                                out_debt[e, n, k] = 0.0
                    else:
                        out_supply[e, n, i] = max(c - tot, 0.0)


def liquidate_fused(
    supply: np.ndarray, debt: np.ndarray, oracle_usd: np.ndarray, reserves: Reserves,
    emode_row: np.ndarray | int = 0, collateral_enabled: np.ndarray | None = None,
) -> LiquidationResult:  # fmt: skip
    """:func:`levgym.engine.portfolio.liquidate` on a book ``[E, N, K]`` with prices ``[E, K]``,
    compiled (same results to float rounding)."""
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
