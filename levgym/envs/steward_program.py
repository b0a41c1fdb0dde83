"""Governance-v1's step kernels (backend ``numba``): a step in two compiled calls over the batch.

A Governance-v1 step (:class:`levgym.envs.governance_v1.GovernanceV1VectorEnv`) is: the steward
applies the action to its levers (limits, cool-downs, switches, the risk projection), the engine
runs the step's substeps with the price tracker after each, the flows are summed, then the
shortfall, the reward, the frame of features and the stack of recent frames. On the array path
that is several hundred small array operations per step in Python. Here it is:

1. :func:`steward_step`: the levers (:func:`levgym.envs.formulas.steward_level`,
   :func:`~levgym.envs.formulas.steward_switch`, :func:`~levgym.envs.formulas.risk_projection`),
   the substeps (:func:`levgym.engine.fused.substep_env`, the kernel of Governance-v0's step),
   the tracker's price rings and the flows (:func:`~levgym.envs.formulas.steward_substep_flows`);
2. numpy's logarithm of the price ratios the tracker needs (the array path takes its
   logarithms with numpy, whose vector code may differ from libm's in the last bit: taking
   them with numpy keeps the kernels bit for bit equal to the array path);
3. :func:`steward_finish`: the tracker's variances, the position aggregates
   (:func:`levgym.envs.kernels.aggregates_env`), the shortfall (unpaused price given by the
   caller, also from numpy), the reward (:func:`~levgym.envs.formulas.governance_reward`), the
   frame (:func:`~levgym.envs.formulas.governance_market_features`,
   :func:`~levgym.envs.formulas.steward_book_features`, the levers' positions and cool-downs),
   and the stacked observation.

Sums over positions that the array path takes with numpy's ``sum`` are taken here in numpy's
pairwise order (:func:`pairwise_sum`), and the aggregates in :func:`aggregates_env`'s order, so
the numbers are the array path's bit for bit (``tests/envs/test_golden.py``,
``tests/envs/test_steward_program.py``).
"""

from __future__ import annotations

import numpy as np

from ..engine import fused as engine_fused
from ..engine.fused import NR, compile_rules, rules_cache_dir, substep_env, substep_scratch  # noqa: F401
from ..engine.jit import SERIAL, njit, prange
from ..engine.schema import ENV_ROW
from . import formulas, kernels
from .kernels import aggregates_env
from .programs import FR

F = ENV_ROW

# rows of the step's output array [len(STEWARD_OUTPUTS) + L, E]; the levers' new values follow
STEWARD_OUTPUTS = (
    "reward",
    "terminated",
    "revenue_usd",
    "bad_debt_usd",
    "bad_debt_value_usd",
    "shortfall_usd",
    "economic_bad_debt_usd",
    "liquidation_loss_usd",
    "borrow_capacity_usd",
    "reward_revenue",
    "reward_bad_debt",
    "reward_liquidation",
    "reward_efficiency",
    "liquidations",
    "liquidated_debt_usd",
    "lender_loss_usd",
    "tvl_usd",
    "levers_changed",
)
# the steward's constants, in the order of the kernels' `sc` array
STEWARD_CONSTANTS = (
    "step_h", "margin", "on_target_tol", "year_frac", "w_bad_debt", "w_liquidation",
    "w_efficiency", "reward_scale", "insolvency_tolerance_frac",
)  # fmt: skip
# the columns of the levers' index array `cols` [4]: the levers of LTV, LT, bonus and the
# borrowing freeze (-1: not a lever of the schema)
STEWARD_COLUMNS = ("ltv", "liquidation_threshold", "liquidation_bonus", "freeze_borrow")
MARKET_COLUMNS = 29
_N_OUT = len(STEWARD_OUTPUTS)
"""Columns of the frame before the levers' (the market and the book)."""


def _pairwise_block(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover
    """numpy's pairwise sum of ``a[lo:lo + n]`` for ``n <= 128``: eight interleaved partial
    sums (a plain loop below 8 values), the rest added in order."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    m = n - n % 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover
    """The sum of ``a[lo:lo + n]`` in numpy's pairwise order (``pairwise_sum`` of its add loop:
    blocks of up to 128 by :func:`_pairwise_block`; above, the sum of the two halves, the first
    a multiple of 8). numpy recurses; this walks the same tree with a stack (numba's cache does
    not take recursive functions)."""
    if n <= 128:
        return _pairwise_block(a, lo, n)
    sl = np.empty(64, np.int64)
    sn = np.empty(64, np.int64)
    sd = np.empty(64, np.int64)  # 0: to split, 1: its first half is being summed, 2: its second
    sv = np.empty(64)  # the first half's sum
    top = 0
    sl[0] = lo
    sn[0] = n
    sd[0] = 0
    while True:
        m = sn[top]
        if m > 128:
            n2 = m // 2
            n2 -= n2 % 8
            sd[top] = 1
            top += 1
            sl[top] = sl[top - 1]
            sn[top] = n2
            sd[top] = 0
            continue
        v = _pairwise_block(a, sl[top], m)
        while True:  # hand the sum up the tree
            top -= 1
            if top < 0:
                return v
            if sd[top] == 1:  # the first half is done: sum the second
                sv[top] = v
                sd[top] = 2
                m = sn[top]
                n2 = m // 2
                n2 -= n2 % 8
                top += 1
                sl[top] = sl[top - 1] + n2
                sn[top] = m - n2
                sd[top] = 0
                break
            v = sv[top] + v


def _row_sum(a: np.ndarray) -> float:  # pragma: no cover
    """What ``a.sum()`` (numpy, float64, contiguous) gives: the reduction starts from 0 and adds
    the pairwise sum."""
    return 0.0 + _pairwise_sum(a, 0, a.shape[0])


def _steward_step_env(
    e: int, env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, max_f: np.ndarray, filled: np.ndarray,
    ic: np.ndarray, fc: np.ndarray, sc: np.ndarray, actions: np.ndarray, switch: np.ndarray,
    last: np.ndarray, since: np.ndarray, low: np.ndarray, high: np.ndarray, table: np.ndarray,
    rows: np.ndarray, cols: np.ndarray, length: np.ndarray, ratios: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    """The levers, substeps, price rings and flows of env ``e`` (``_advance`` up to the
    aggregates); the price ratios of the tracker's logarithms into ``ratios[e]``."""
    nl = table.shape[0]
    now = length[e] * sc[0]
    old = np.empty(nl)
    new = np.empty(nl)
    for j in range(nl):
        a = min(max(actions[e, j], -1.0), 1.0)
        if table[j, 0] != 0.0:
            old[j] = switch[e, j]
            new[j] = FR.steward_switch(
                old[j], a, now, last[e, j], since[e, j], table[j, 1], table[j, 2], table[j, 6]
            )
        else:
            old[j] = env[rows[j], e]
            new[j] = FR.steward_level(
                old[j], a, now, last[e, j], since[e, j], table[j, 1], table[j, 2], table[j, 3],
                table[j, 4], table[j, 5], low[e, j], high[e, j],
            )  # fmt: skip
    c_ltv, c_lt, c_bonus = cols[0], cols[1], cols[2]
    if c_ltv >= 0 or c_lt >= 0 or c_bonus >= 0:
        ltv = new[c_ltv] if c_ltv >= 0 else env[F.ltv, e]
        lt = new[c_lt] if c_lt >= 0 else env[F.liquidation_threshold, e]
        bonus = new[c_bonus] if c_bonus >= 0 else env[F.liquidation_bonus, e]
        ltv, lt = FR.risk_projection(ltv, lt, bonus, sc[1])
        if c_ltv >= 0:
            new[c_ltv] = ltv
        if c_lt >= 0:
            new[c_lt] = lt
    changed = 0
    for j in range(nl):
        if FR.steward_changed(new[j], old[j], sc[2]):
            changed += 1
            last[e, j] = now
            if table[j, 0] != 0.0:
                since[e, j] = now if new[j] != 0.0 else np.nan
        if table[j, 0] != 0.0:
            switch[e, j] = new[j]
            orders[rows[j], e] = 1.0 if new[j] != 0.0 else 0.0
        else:
            env[rows[j], e] = new[j]
        out[_N_OUT + j, e] = new[j]
    bad0 = env[F.bad_debt_usd, e]
    liqs0 = env[F.liquidations, e]
    revenue = 0.0
    liquidated = 0.0
    bad = 0.0
    liq_loss = 0.0
    now_h = fc[0]
    ring = ic[4]
    fscratch, iscratch = substep_scratch(posf.shape[2])
    for k in range(ic[0]):
        reserve0 = env[F.reserve_income_usd, e]
        fee0 = env[F.protocol_fee_usd, e]
        repaid0 = env[F.repaid_by_liquidators_usd, e]
        bad_0 = env[F.bad_debt_usd, e]
        seized0 = env[F.seized_collateral_asset, e]
        now_h = now_h + fc[1]
        substep_env(
            e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
            (ic[1] + k) % ic[2], now_h, fscratch, iscratch,
        )  # fmt: skip
        step_rounds[e] += rounds[e]
        dp = env[F.debt_price_usd, e]
        oracle = env[F.oracle_usd, e]
        # the tracker's rings (PriceTracker.update_prices; its variances follow the kernel)
        f = env[F.fundamental_usd, e]
        pos_old = (ic[3] + k) % ring
        pos = (ic[3] + k + 1) % ring
        ratios[e, k] = f / prices[0, e, pos_old]
        prices[0, e, pos] = f
        prices[1, e, pos] = NR.pool_price_usd(env[F.pool_asset, e], env[F.pool_debt, e], dp)
        prices[2, e, pos] = oracle
        filled[e] = min(filled[e] + 1, ring)
        max_f[e] = max(max_f[e], f)
        revenue, liquidated, bad, liq_loss = FR.steward_substep_flows(
            revenue, liquidated, bad, liq_loss, reserve0, fee0, repaid0, bad_0, seized0,
            env[F.reserve_income_usd, e], env[F.protocol_fee_usd, e],
            env[F.repaid_by_liquidators_usd, e], env[F.bad_debt_usd, e],
            env[F.seized_collateral_asset, e], oracle, dp,
        )  # fmt: skip
    s = ic[0]
    pos = (ic[3] + s) % ring
    ratios[e, s] = prices[0, e, pos] / prices[0, e, (pos - ic[5]) % ring]
    ratios[e, s + 1] = prices[0, e, pos] / prices[0, e, (pos - ic[6]) % ring]
    out[2, e] = revenue
    out[3, e] = env[F.bad_debt_usd, e] - bad0
    out[4, e] = bad
    out[7, e] = liq_loss
    out[13, e] = env[F.liquidations, e] - liqs0
    out[14, e] = liquidated
    out[17, e] = float(changed)


def _steward_step(
    env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, max_f: np.ndarray, filled: np.ndarray,
    ic: np.ndarray, fc: np.ndarray, sc: np.ndarray, actions: np.ndarray, switch: np.ndarray,
    last: np.ndarray, since: np.ndarray, low: np.ndarray, high: np.ndarray, table: np.ndarray,
    rows: np.ndarray, cols: np.ndarray, length: np.ndarray, ratios: np.ndarray,
    out: np.ndarray, threads: int,
) -> None:  # pragma: no cover  # fmt: skip
    num_envs = env.shape[1]
    # a loop, not `step_rounds[:] = 0.0`: in a parallel function an array expression is a
    # parallel loop, which would start the thread pool on every call (slow when another library
    # in the process, such as torch after set_num_threads(1), shares the OpenMP runtime)
    for e in range(num_envs):
        step_rounds[e] = 0.0
    if threads != SERIAL:
        for e in prange(num_envs):
            _steward_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, max_f, filled, ic, fc, sc, actions, switch, last, since,
                low, high, table, rows, cols, length, ratios, out,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            _steward_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, max_f, filled, ic, fc, sc, actions, switch, last, since,
                low, high, table, rows, cols, length, ratios, out,
            )  # fmt: skip


def _steward_finish_env(
    e: int, env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray,
    var: np.ndarray, max_f: np.ndarray, ic: np.ndarray, fc: np.ndarray, sc: np.ndarray,
    thresholds: np.ndarray, logs: np.ndarray, nsub: int, step: bool, unpaused: np.ndarray,
    shortfall: np.ndarray, switch: np.ndarray, last: np.ndarray, since: np.ndarray,
    low: np.ndarray, high: np.ndarray, table: np.ndarray, rows: np.ndarray, cols: np.ndarray,
    length: np.ndarray, offset: int, frame: np.ndarray, frames: np.ndarray,
    lags: np.ndarray, frame_low: np.ndarray, frame_high: np.ndarray, obs: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    """Env ``e``'s tracker variances (``nsub`` substeps of ``logs[e]``), shortfall and reward
    (when ``step``), frame and stacked observation (``_advance`` from the aggregates on, and
    ``_observe``)."""
    for k in range(nsub):
        var[0, e] = FR.ewma_variance(var[0, e], logs[e, k], fc[2])
        var[1, e] = FR.ewma_variance(var[1, e], logs[e, k], fc[3])
    n_th = thresholds.shape[0]
    below = np.empty(n_th)
    acc = np.empty((2, posf.shape[2]))  # aggregates_env's scratch [2, >= N]
    c = posf[0, e]
    d = posf[1, e]
    o = env[F.oracle_usd, e]
    dp = env[F.debt_price_usd, e]
    total_debt, total_coll, short = aggregates_env(
        c, d, o, env[F.liquidation_threshold, e], dp, thresholds, below, acc
    )
    n = c.shape[0]
    scratch = np.empty(n)
    tvl = env[F.initial_collateral_asset, e] * env[F.fundamental_start_usd, e]
    if step:
        price = unpaused[e]
        if price == price:  # the oracle is paused: the shortfall at the price it would report
            for i in range(n):
                scratch[i] = NR.underwater(c[i], d[i], price, dp)
            short = _row_sum(scratch)
        shortfall0 = shortfall[e]
        shortfall[e] = short
        frozen = switch[e, cols[3]] if cols[3] >= 0 else 0.0
        capacity = FR.steward_capacity(
            env[F.ltv, e], total_coll * o, env[F.borrow_cap_usd, e], dp, frozen
        )
        parts = FR.governance_reward(
            out[2, e], out[4, e], short, shortfall0, dp, out[7, e], 1.0, capacity, tvl,
            env[F.lender_loss_usd, e], env[F.reserves_usd, e], sc[3], sc[4], sc[5], sc[6],
            sc[7], sc[8],
        )  # fmt: skip
        out[0, e] = parts[0]
        out[1, e] = 1.0 if parts[9] else 0.0
        out[5, e] = short * dp
        out[6, e] = parts[5]
        out[8, e] = parts[6]
        out[9, e] = parts[1]
        out[10, e] = parts[2]
        out[11, e] = parts[3]
        out[12, e] = parts[4]
        out[15, e] = parts[7]
        out[16, e] = tvl
    else:
        short = shortfall[e]
    bonus = env[F.liquidation_bonus, e]
    tox = np.empty(n)
    for i in range(n):
        scratch[i], tox[i] = FR.toxic_debt(c[i], d[i], o, dp, bonus)
    toxic = _row_sum(scratch)
    toxic_10 = _row_sum(tox)
    market = FR.governance_market_features(
        logs[e, nsub], logs[e, nsub + 1], var[0, e], var[1, e], max_f[e], fc[4],
        env[F.fundamental_usd, e], o, env[F.pool_asset, e], env[F.pool_debt, e], dp,
        total_debt, total_coll, env[F.supply_usd, e], env[F.base_rate_apr, e],
        env[F.slope1_apr, e], env[F.slope2_apr, e], env[F.optimal_utilization_frac, e],
    )  # fmt: skip
    book = FR.steward_book_features(
        total_debt, total_coll, dp, below[0], below[1], below[2], below[3], below[4],
        below[5], below[6], toxic, toxic_10, env[F.initial_collateral_asset, e],
        env[F.initial_debt_usd, e], env[F.supply_cap_asset, e], env[F.borrow_cap_usd, e],
        env[F.bad_debt_usd, e], short, env[F.reserves_usd, e], tvl,
    )  # fmt: skip
    fr = frame[e]
    j = 0
    for v in market[:8]:
        fr[j] = v
        j += 1
    fr[j] = env[F.gas_gwei, e] / 100.0
    j += 1
    for v in market[8:]:
        fr[j] = v
        j += 1
    for v in book:
        fr[j] = v
        j += 1
    nl = table.shape[0]
    now = (length[e] + offset) * sc[0]
    for m in range(nl):
        if table[m, 0] != 0.0:
            fr[j + m] = switch[e, m]
        else:
            fr[j + m] = FR.lever_position(env[rows[m], e], low[e, m], high[e, m])
    j += nl
    for m in range(nl):
        if table[m, 1] > 0:
            fr[j] = FR.steward_cooldown_left(now, last[e, m], since[e, m], table[m, 1])
            j += 1
    fr[j] = 1.0 - t[e] / ic[7]
    nf = fr.shape[0]
    for i in range(nf):  # np.clip to the bounds, then NaN as 0 (as the array path)
        v = fr[i]
        fr[i] = 0.0 if v != v else min(max(v, frame_low[i]), frame_high[i])
    # the history: frame of step t at ring slot t % R; a new episode fills every slot
    tt = length[e] + offset
    ring = frames.shape[1]
    if tt == 0:
        for r in range(ring):
            frames[e, r, :] = fr
    else:
        frames[e, tt % ring, :] = fr
    for h in range(lags.shape[0]):
        lag = lags[h]
        slot = (tt - lag) % ring if lag <= tt else 0
        for i in range(nf):
            obs[e, h * nf + i] = frames[e, slot, i]


def _steward_finish(
    env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray, var: np.ndarray,
    max_f: np.ndarray, ic: np.ndarray, fc: np.ndarray, sc: np.ndarray,
    thresholds: np.ndarray, logs: np.ndarray, nsub: int, step: bool, unpaused: np.ndarray,
    shortfall: np.ndarray, switch: np.ndarray, last: np.ndarray, since: np.ndarray,
    low: np.ndarray, high: np.ndarray, table: np.ndarray, rows: np.ndarray, cols: np.ndarray,
    length: np.ndarray, offset: int, frame: np.ndarray, frames: np.ndarray,
    lags: np.ndarray, frame_low: np.ndarray, frame_high: np.ndarray, obs: np.ndarray,
    out: np.ndarray, parallel: bool,
) -> None:  # pragma: no cover  # fmt: skip
    num_envs = env.shape[1]
    if parallel:
        for e in prange(num_envs):
            _steward_finish_env(
                e, env, posf, t, prices, var, max_f, ic, fc, sc, thresholds, logs, nsub, step,
                unpaused, shortfall, switch, last, since, low, high, table, rows, cols, length,
                offset, frame, frames, lags, frame_low, frame_high, obs, out,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            _steward_finish_env(
                e, env, posf, t, prices, var, max_f, ic, fc, sc, thresholds, logs, nsub, step,
                unpaused, shortfall, switch, last, since, low, high, table, rows, cols, length,
                offset, frame, frames, lags, frame_low, frame_high, obs, out,
            )  # fmt: skip


# the kernels below link the engine's substep (fused.py) and the aggregates (kernels.py);
# numba's cache checks only this file, so their source joins the cache's key
with rules_cache_dir(formulas, engine_fused, kernels):
    _pairwise_block = njit(cache=True, inline="always")(_pairwise_block)
    _pairwise_sum = njit(cache=True)(_pairwise_sum)
    pairwise_sum = _pairwise_sum
    _row_sum = njit(cache=True, inline="always")(_row_sum)
    _steward_step_env = njit(cache=True)(_steward_step_env)
    steward_step = njit(cache=True, parallel=True)(_steward_step)
    _steward_finish_env = njit(cache=True)(_steward_finish_env)
    steward_finish = njit(cache=True, parallel=True)(_steward_finish)


__all__ = [
    "MARKET_COLUMNS",
    "STEWARD_COLUMNS",
    "STEWARD_CONSTANTS",
    "STEWARD_OUTPUTS",
    "pairwise_sum",
    "steward_finish",
    "steward_step",
]
