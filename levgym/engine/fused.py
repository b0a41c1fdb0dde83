"""A fused substep for the CPU: numba kernels, parallel over envs, computing what
:func:`levgym.engine.step.substep` computes in a few passes over each env's positions.

The batched engine (``step.py``) is the specification and ``reference.py`` the oracle; this
module is a third, faster implementation of the same rules, checked against the reference by
``tests/engine/test_fused_parity.py``. It works on numpy float64 arrays only (backend ``numba``).

Why it is faster than the array code: every stage is one or two passes over a position row in
registers instead of tens of full-size temporaries (borrowers that trade or borrow, and
positions that may be liquidatable, are listed in that pass and finished in short passes over
the lists); after its first cascade round an env runs only as many rounds as it needs itself,
and an env whose cascade has stopped costs nothing more; there is no Python per round; and a
substep is one parallel region over envs.

The cascade's rounds are shared by the batch in ``cascade.run_cascade``: a round runs while any
env has an eligible liquidation. Since every env's oracle reads its own pool before round 1
(``cascade.refresh_in_block``), a round without liquidations changes nothing in an env (its
refresh and write-off are no-ops), so each env can run its own cascade to its end: the kernel
does exactly that, and the result equals the lock-step loop.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any

import numpy as np

from .drivers import DRIVER_FIELDS, DriverRow
from .oracle import CHAINLINK, EXACT, TWAP
from .params import HOURS_PER_YEAR, EngineParams
from .state import DEFENSIVE, LOOPER, PASSIVE, POSITION_FIELDS, State

# numba's OpenMP workers otherwise spin while they wait for work. When the cores are shared with
# other busy processes, the spinning starves the thread that still has work and a parallel
# substep takes several times longer than on one thread (measured: 14 ms against 2.4 ms at
# 256 x 256 on 2 loaded cores). A user's own setting wins; it must be set before numba starts
# its threads, which happens at the first kernel call.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # numba is optional: the numpy and torch backends never need it
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        def wrap(fn):
            return fn

        return wrap if not args or not callable(args[0]) else args[0]

    prange = range  # type: ignore[assignment]


# Below this many positions (envs x slots) a substep runs on one thread: the work is then shorter
# than what waking the other threads costs.
PARALLEL_MIN_POSITIONS = 8192

# Position arrays [E, N] the kernel reads; of these it writes collateral, debt, active and
# ever_liquidated (the behaviour attributes never change inside a substep).
_NON_ENV = set(POSITION_FIELDS) | {"twap_buffer_usd", "time_h", "substep_index"}
# Every [E] float field of the state, packed as rows of one [F, E] array for the kernel.
ENV_FIELDS = tuple(f.name for f in dataclasses.fields(State) if f.name not in _NON_ENV)

# Row indices into the packed env array (module constants: numba freezes them at compile time).
_I = {name: i for i, name in enumerate(ENV_FIELDS)}
F_FUND = _I["fundamental_usd"]
F_PA = _I["pool_asset"]
F_PD = _I["pool_debt"]
F_LIQBASE = _I["pool_liquidity_base"]
F_ORACLE = _I["oracle_usd"]
F_UPDATED = _I["oracle_updated_h"]
F_DP = _I["debt_price_usd"]
F_GAS = _I["gas_gwei"]
F_LTV = _I["ltv"]
F_LT = _I["liquidation_threshold"]
F_BONUS = _I["liquidation_bonus"]
F_CF = _I["close_factor"]
F_BASE = _I["base_rate_apr"]
F_S1 = _I["slope1_apr"]
F_S2 = _I["slope2_apr"]
F_OPT = _I["optimal_utilization_frac"]
F_RF = _I["reserve_factor_frac"]
F_SUPPLY = _I["supply_usd"]
F_RESERVES = _I["reserves_usd"]
F_FMIN = _I["fundamental_min_usd"]
F_PMIN = _I["pool_min_usd"]
F_ADDED = _I["added_collateral_asset"]
F_WITHDRAWN = _I["withdrawn_collateral_asset"]
F_SEIZED = _I["seized_collateral_asset"]
F_BORROWED = _I["borrowed_usd"]
F_INTEREST = _I["interest_usd"]
F_REP_BORROWERS = _I["repaid_by_borrowers_usd"]
F_REP_LIQ = _I["repaid_by_liquidators_usd"]
F_BAD = _I["bad_debt_usd"]
F_BAD_RES = _I["bad_debt_from_reserves_usd"]
F_LENDER_LOSS = _I["lender_loss_usd"]
F_LIQS = _I["liquidations"]
F_FEE_ASSET = _I["protocol_fee_asset"]
F_FEE_USD = _I["protocol_fee_usd"]
F_RES_INCOME = _I["reserve_income_usd"]
F_ROUNDS_MAX = _I["cascade_rounds_max"]
F_KEEPER_SOLD = _I["keeper_sold_asset"]
F_KEEPER_PROFIT = _I["keeper_profit_usd"]
F_AGENT_SEIZED = _I["agent_seized_asset"]
F_AGENT_REPAID = _I["agent_repaid_usd"]
F_ARRIVALS = _I["arrivals"]
F_EXITS = _I["exits"]

# Driver row, packed [8, E] in DRIVER_FIELDS order.
_D = {name: i for i, name in enumerate(DRIVER_FIELDS)}
D_FUND = _D["fundamental_usd"]
D_LIQ = _D["liquidity_frac"]
D_ARB = _D["arb_speed_frac"]
D_GAS = _D["gas_gwei"]
D_BIAS = _D["oracle_bias_frac"]
D_FROZEN = _D["oracle_frozen"]
D_DP = _D["debt_price_usd"]
D_ARR = _D["arrival_mult"]

# Scalar parameters, packed into one float64 vector.
PARAM_NAMES = (
    "substep_h",
    "pool_fee_frac",
    "oracle_kind_code",
    "oracle_deviation_frac",
    "oracle_heartbeat_h",
    "oracle_pool_weight_frac",
    "gas_units_per_liquidation",
    "keeper_capacity_per_substep",
    "congestion_ref_gwei",
    "max_cascade_rounds",
    "keeper_chunk_ratio",
    "profitability_filter",
    "full_close_hf",
    "small_position_usd",
    "protocol_fee_frac",
    "borrow_cap_usd",
    "reaction_gas_ref_gwei",
    "ltv_elasticity",
    "ltv_ref",
    "rate_elasticity",
    "rate_ref_apr",
    "exit_rate_per_h",
    "arrival_rate_per_h",
    "defend_target_gap",
    "relever_band_frac",
    "delever_frac",
)
_P = {name: i for i, name in enumerate(PARAM_NAMES)}
P_DT = _P["substep_h"]
P_POOL_FEE = _P["pool_fee_frac"]
P_ORACLE_KIND = _P["oracle_kind_code"]
P_DEV = _P["oracle_deviation_frac"]
P_HEARTBEAT = _P["oracle_heartbeat_h"]
P_POOL_W = _P["oracle_pool_weight_frac"]
P_GAS_UNITS = _P["gas_units_per_liquidation"]
P_CAPACITY = _P["keeper_capacity_per_substep"]
P_CONGESTION = _P["congestion_ref_gwei"]
P_MAX_ROUNDS = _P["max_cascade_rounds"]
P_CHUNK = _P["keeper_chunk_ratio"]
P_FILTER = _P["profitability_filter"]
P_FULL_HF = _P["full_close_hf"]
P_SMALL = _P["small_position_usd"]
P_PROTO_FEE = _P["protocol_fee_frac"]
P_BORROW_CAP = _P["borrow_cap_usd"]
P_REACT_GAS = _P["reaction_gas_ref_gwei"]
P_LTV_EL = _P["ltv_elasticity"]
P_LTV_REF = _P["ltv_ref"]
P_RATE_EL = _P["rate_elasticity"]
P_RATE_REF = _P["rate_ref_apr"]
P_EXIT = _P["exit_rate_per_h"]
P_ARRIVAL = _P["arrival_rate_per_h"]
P_DEF_GAP = _P["defend_target_gap"]
P_BAND = _P["relever_band_frac"]
P_DELEVER = _P["delever_frac"]


@functools.lru_cache(maxsize=64)
def pack_params(params: EngineParams) -> np.ndarray:
    """The scalar parameters the kernel needs, as a float64 vector in ``PARAM_NAMES`` order."""
    m, p, b, r = params.market, params.protocol, params.borrowers, params.run
    values = {
        "substep_h": r.substep_h,
        "pool_fee_frac": m.pool_fee_frac,
        "oracle_kind_code": m.oracle_kind_code,
        "oracle_deviation_frac": m.oracle_deviation_frac,
        "oracle_heartbeat_h": m.oracle_heartbeat_h,
        "oracle_pool_weight_frac": m.oracle_pool_weight_frac,
        "gas_units_per_liquidation": m.gas_units_per_liquidation,
        "keeper_capacity_per_substep": m.keeper_capacity_per_substep,
        "congestion_ref_gwei": m.congestion_ref_gwei,
        "max_cascade_rounds": m.max_cascade_rounds,
        "keeper_chunk_ratio": m.keeper_chunk_ratio,
        "profitability_filter": 1.0 if m.profitability_filter else 0.0,
        "full_close_hf": p.full_close_hf,
        "small_position_usd": p.small_position_usd,
        "protocol_fee_frac": p.protocol_fee_frac,
        "borrow_cap_usd": p.borrow_cap_usd,
        "reaction_gas_ref_gwei": b.reaction_gas_ref_gwei,
        "ltv_elasticity": b.ltv_elasticity,
        "ltv_ref": b.ltv_ref,
        "rate_elasticity": b.rate_elasticity,
        "rate_ref_apr": b.rate_ref_apr,
        "exit_rate_per_h": b.exit_rate_per_h,
        "arrival_rate_per_h": b.arrival_rate_per_h,
        "defend_target_gap": b.defend_target_gap,
        "relever_band_frac": b.relever_band_frac,
        "delever_frac": b.delever_frac,
    }
    out = np.array([float(values[n]) for n in PARAM_NAMES], dtype=np.float64)
    out.setflags(write=False)
    return out


# ----------------------------------------------------------------------------- scalar helpers


@njit(inline="always", cache=True)
def _rate(total: float, supply: float, base: float, s1: float, s2: float, opt: float) -> float:
    """Kinked borrow rate at utilization ``total / supply`` (``interest.borrow_rate_apr``)."""
    u = total / supply if supply > 0 else 1.0
    u = min(max(u, 0.0), 1.0)
    return base + s1 * (min(u, opt) / opt) + s2 * (max(u - opt, 0.0) / (1.0 - opt))


@njit(inline="always", cache=True)
def _source(f: float, pool_usd: float, w: float) -> float:
    """``oracle.source_price``: geometric blend of the fundamental and the pool."""
    if w == 0.0:
        return f
    return math.exp((1.0 - w) * math.log(f) + w * math.log(pool_usd))


# ----------------------------------------------------------------------------- stages 1-5


@njit(cache=True)
def _market_env(
    e: int,
    env: np.ndarray,
    drv: np.ndarray,
    P: np.ndarray,
    twap_in: np.ndarray,
    twap_out: np.ndarray,
    slot: int,
    now_h: float,
) -> None:
    """Steps 1-3 for env ``e`` (``step.market_update``): liquidity, arbitrage, TWAP, oracle."""
    f = drv[D_FUND, e]
    dp = drv[D_DP, e]
    bias = drv[D_BIAS, e]
    frozen = drv[D_FROZEN, e] != 0.0
    pa = env[F_PA, e]
    pd = env[F_PD, e]
    scale = env[F_LIQBASE, e] * drv[D_LIQ, e] / math.sqrt(pa * pd)
    pa = pa * scale
    pd = pd * scale
    price = pd / pa
    lp = math.log(price)
    new_price = math.exp(lp + drv[D_ARB, e] * (math.log(f / dp) - lp))
    k = pa * pd
    pa = math.sqrt(k / new_price)
    pd = math.sqrt(k * new_price)
    pool_usd = pd / pa * dp
    kw = twap_in.shape[0]
    tsum = 0.0
    for j in range(kw):
        v = pool_usd if j == slot else twap_in[j]
        twap_out[j] = v
        tsum += v
    twap = tsum / kw
    src = _source(f, pool_usd, P[P_POOL_W])
    kind_code = int(P[P_ORACLE_KIND])
    oracle = env[F_ORACLE, e]
    updated = env[F_UPDATED, e]
    if kind_code == TWAP:
        cand = twap * (1.0 + bias)
        update = not frozen
    elif kind_code == EXACT:
        cand = src * (1.0 + bias)
        update = not frozen
    else:
        cand = src * (1.0 + bias)
        update = abs(cand / oracle - 1.0) > P[P_DEV]
        update = update or (now_h - updated) >= P[P_HEARTBEAT] - 1e-9
        update = update and not frozen
    if update:
        env[F_ORACLE, e] = cand
        env[F_UPDATED, e] = now_h
    env[F_FUND, e] = f
    env[F_DP, e] = dp
    env[F_GAS, e] = drv[D_GAS, e]
    env[F_PA, e] = pa
    env[F_PD, e] = pd


@njit(cache=True)
def _borrowers_env(
    e: int,
    env: np.ndarray,
    drv: np.ndarray,
    P: np.ndarray,
    c_in: np.ndarray,
    d_in: np.ndarray,
    active_in: np.ndarray,
    kind: np.ndarray,
    trigger: np.ndarray,
    react: np.ndarray,
    target: np.ndarray,
    repays: np.ndarray,
    tmpl_c: np.ndarray,
    tmpl_hf: np.ndarray,
    ever_in: np.ndarray,
    noise: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    active: np.ndarray,
    ever: np.ndarray,
    fscratch: np.ndarray,
    iscratch: np.ndarray,
) -> tuple[int, bool]:
    """Steps 4-5 for env ``e`` (``step.accrue_interest``, ``borrowers.act``), writing ``c``,
    ``d``, ``active`` and ``ever``. Returns the positions that may be liquidatable now (written
    to ``iscratch[0]``, in slot order: those with ``collateral * oracle * LT < debt * debt_price``) and
    whether an active position is left without collateral.

    One full pass does interest and every borrower's decision; the few slots that trade with the
    pool or borrow (delevering and relevering loopers, arrivals) are kept in a list and
    finished in short passes once the env's aggregate sale and purchase are known.
    """
    n = c_in.shape[0]
    # 4: interest
    total = 0.0
    for i in range(n):
        total += d_in[i]
    supply = env[F_SUPPLY, e]
    base, s1, s2, opt = env[F_BASE, e], env[F_S1, e], env[F_S2, e], env[F_OPT, e]
    growth = _rate(total, supply, base, s1, s2, opt) * (P[P_DT] / HOURS_PER_YEAR)
    interest = 0.0
    total1 = 0.0
    for i in range(n):
        added = d_in[i] * growth
        interest += added
        total1 += d_in[i] + added
    to_res = interest * env[F_RF, e]
    env[F_INTEREST, e] += interest
    env[F_RESERVES, e] += to_res
    env[F_RES_INCOME, e] += to_res
    supply = supply + (interest - to_res)
    env[F_SUPPLY, e] = supply

    # 5: borrowers
    o = env[F_ORACLE, e]
    dp = env[F_DP, e]
    lt = env[F_LT, e]
    ltv = env[F_LTV, e]
    olt = o * lt
    gas_factor = 1.0 / (1.0 + env[F_GAS, e] / P[P_REACT_GAS])
    rate = _rate(total1, supply, base, s1, s2, opt)
    attract = math.exp(P[P_LTV_EL] * (ltv - P[P_LTV_REF]) - P[P_RATE_EL] * (rate - P[P_RATE_REF]))
    dt = P[P_DT]
    exit_above = 1.0 - min(max(P[P_EXIT] * dt / attract, 0.0), 0.5)
    p_arrive = min(max(P[P_ARRIVAL] * dt * drv[D_ARR, e] * attract, 0.0), 0.5)
    gap = P[P_DEF_GAP]
    band = P[P_BAND]
    dfrac = P[P_DELEVER]
    hf_floor = lt / ltv
    cand = iscratch[0]
    # the slots that trade or borrow, and what they need later
    touched = iscratch[1]
    t_flag = iscratch[2]  # 2 arrival, else 0
    t_sell = fscratch[0]
    t_want = fscratch[1]
    t_arr_d = fscratch[2]
    t_debt = fscratch[3]  # debt after interest
    nt = 0
    ncand = 0
    has_empty = False
    total_sell = 0.0
    total_d1 = 0.0
    requested = 0.0
    sum_add = 0.0
    sum_withdrawn = 0.0
    sum_rep = 0.0
    n_exit = 0.0
    n_arr = 0.0
    for i in range(n):
        di = d_in[i] + d_in[i] * growth
        ci = c_in[i]
        ui = noise[i]
        ever[i] = ever_in[i]
        if not active_in[i]:
            if ui < p_arrive:  # a new borrower in a free slot
                a_d = tmpl_c[i] * o * lt / (max(tmpl_hf[i], hf_floor) * dp)
                requested += 0.0 + a_d
                touched[nt] = i
                t_sell[nt] = 0.0
                t_want[nt] = 0.0
                t_arr_d[nt] = a_d
                t_debt[nt] = di
                t_flag[nt] = 2
                nt += 1
                c[i] = ci
                d[i] = di
            else:
                c[i] = ci
                d[i] = di
                active[i] = False
                total_d1 += di
            continue
        dv = di * dp
        kd = kind[i]
        exits = False
        add_c = 0.0
        rep_def = 0.0
        sc = 0.0
        want = 0.0
        reacts = di > 0 and ui < react[i] * gas_factor
        if ui > exit_above or (reacts and kd != PASSIVE):
            cv = ci * o
            hf = ci * olt / dv if dv > 0 else math.inf
            exits = ui > exit_above and hf >= 1.0
            if reacts and kd == DEFENSIVE and hf < trigger[i]:
                tdef = trigger[i] + gap
                if repays[i]:
                    rep_def = min(max(dv - cv * lt / tdef, 0.0) / dp, di)
                else:
                    add_c = max(tdef * dv / lt - cv, 0.0) / o
            elif reacts and kd == LOOPER:
                tgt = target[i]
                if hf > tgt * (1.0 + band):
                    db = min((cv * lt - tgt * dv) / (tgt - lt), (cv * ltv - dv) / (1.0 - ltv))
                    want = max(db, 0.0) / dp
                if hf >= 1.0 and hf < 1.0 + dfrac * (tgt - 1.0):
                    su = min(max((tgt * dv - cv * lt) / (tgt - lt), 0.0), min(cv, dv))
                    sc = su / o
        wd = ci if exits else 0.0
        c1 = ci + add_c - sc - wd
        sum_add += add_c
        sum_withdrawn += sc + wd
        if exits:
            n_exit += 1.0
        if sc > 0.0 or want > 0.0:
            total_sell += sc
            requested += want + 0.0
            touched[nt] = i
            t_sell[nt] = sc
            t_want[nt] = want
            t_arr_d[nt] = 0.0
            t_debt[nt] = di
            t_flag[nt] = 0
            nt += 1
            c[i] = c1
            d[i] = di - rep_def  # the delever repay and the exit repay follow
            active[i] = True
            continue
        rep_exit = di if exits else 0.0
        d1 = di - rep_def - 0.0 - rep_exit
        sum_rep += rep_def + 0.0 + rep_exit
        total_d1 += d1
        c[i] = c1
        d[i] = d1
        act1 = not exits
        active[i] = act1
        if act1:
            if c1 <= 0.0:
                has_empty = True
            if d1 > 0.0 and c1 * olt < d1 * dp:
                cand[ncand] = i
                ncand += 1
    # the deleveraging sale, aggregated per env
    fee = P[P_POOL_FEE]
    pa = env[F_PA, e]
    pd = env[F_PD, e]
    eff = total_sell * (1.0 - fee)
    out = pd * eff / (pa + eff)
    pd = pd * pa / (pa + eff)
    pa = pa + eff
    ratio = out / total_sell if total_sell > 0 else 0.0
    for k in range(nt):
        i = touched[k]
        if t_flag[k] == 2:
            total_d1 += d[i]
            continue
        rep_del = min(t_sell[k] * ratio, t_debt[k])
        d1 = d[i] - rep_del - 0.0
        d[i] = d1
        sum_rep += rep_del
        total_d1 += d1
    # new borrowing within available liquidity and the borrow cap
    avail = max(min(supply - total_d1, P[P_BORROW_CAP] - total_d1), 0.0)
    bscale = min(avail / requested if requested > 0 else 1.0, 1.0)
    total_buy = 0.0
    for k in range(nt):
        total_buy += t_want[k] * bscale
    eff = total_buy * (1.0 - fee)
    got = pa * eff / (pd + eff)
    pa = pa * pd / (pd + eff)
    pd = pd + eff
    gratio = got / total_buy if total_buy > 0 else 0.0
    sum_borrow = 0.0
    first = ncand
    for k in range(nt):
        i = touched[k]
        borrow = t_want[k] * bscale
        bought = borrow * gratio
        arrival = t_flag[k] == 2
        ac = tmpl_c[i] if arrival else 0.0
        c2 = c[i] + bought + ac
        d2 = d[i] + borrow + t_arr_d[k] * bscale
        c[i] = c2
        d[i] = d2
        active[i] = True
        sum_add += bought + ac
        sum_borrow += borrow + t_arr_d[k] * bscale
        if arrival:
            n_arr += 1.0
        if c2 <= 0.0:
            has_empty = True
        if d2 > 0.0 and c2 * olt < d2 * dp:
            cand[ncand] = i
            ncand += 1
    if ncand > first and first > 0:
        cand[:ncand].sort()  # slot order, so that ties in profit go to the lower slot
    env[F_PA, e] = pa
    env[F_PD, e] = pd
    env[F_ADDED, e] += sum_add
    env[F_WITHDRAWN, e] += sum_withdrawn
    env[F_BORROWED, e] += sum_borrow
    env[F_REP_BORROWERS, e] += sum_rep
    env[F_ARRIVALS, e] += n_arr
    env[F_EXITS, e] += n_exit
    return ncand, has_empty


# ----------------------------------------------------------------------------- stage 6


@njit(cache=True)
def _scan_env(
    env: np.ndarray, e: int, c: np.ndarray, d: np.ndarray, active: np.ndarray, cand: np.ndarray
) -> tuple[int, bool]:
    """Positions with ``collateral * oracle * LT < debt * debt_price`` (the only ones whose
    health factor can be below 1), in slot order; and whether an active one has no collateral."""
    olt = env[F_ORACLE, e] * env[F_LT, e]
    dp = env[F_DP, e]
    ncand = 0
    has_empty = False
    for i in range(c.shape[0]):
        if not active[i]:
            continue
        ci = c[i]
        if ci <= 0.0:
            has_empty = True
        di = d[i]
        if di > 0.0 and ci * olt < di * dp:
            cand[ncand] = i
            ncand += 1
    return ncand, has_empty


@njit(cache=True)
def _stable_order(keys: np.ndarray, m: int, order: np.ndarray) -> None:
    """``order[:m]`` = a stable argsort of ``keys[:m]`` (insertion sort when short)."""
    if m > 32:
        order[:m] = np.argsort(keys[:m], kind="mergesort")
        return
    for r in range(m):
        order[r] = r
    for r in range(1, m):
        q = order[r]
        key = keys[q]
        j = r - 1
        while j >= 0 and keys[order[j]] > key:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = q


@njit(cache=True)
def _liquidate_env(
    e: int,
    env: np.ndarray,
    P: np.ndarray,
    cap_left: float,
    share: float,
    c: np.ndarray,
    d: np.ndarray,
    ever: np.ndarray,
    ncand: int,
    fscratch: np.ndarray,
    iscratch: np.ndarray,
) -> tuple[float, bool]:
    """One cascade round for env ``e`` over the slots ``iscratch[0, :ncand]`` (slot order; every
    liquidatable position must be among them): ``liquidation_terms``, ``_select`` and the
    round's updates of ``run_cascade``. Returns the number of liquidations and whether one of
    them took a position's last collateral (so that the write-off has work)."""
    if ncand == 0:
        return 0.0, False
    cand = iscratch[0]
    idx = iscratch[1]
    order = iscratch[2]
    neg_profit = fscratch[0]
    q_repay = fscratch[1]
    q_seize = fscratch[2]
    q_fee = fscratch[3]
    o = env[F_ORACLE, e]
    dp = env[F_DP, e]
    lt = env[F_LT, e]
    bonus = env[F_BONUS, e]
    cf = env[F_CF, e]
    pa = env[F_PA, e]
    pd = env[F_PD, e]
    fee = P[P_POOL_FEE]
    chunk = P[P_CHUNK]
    use_chunk = chunk != math.inf
    filt = P[P_FILTER] != 0.0
    full_hf = P[P_FULL_HF]
    small = P[P_SMALL]
    pfee = P[P_PROTO_FEE]
    gas_usd = env[F_GAS, e] * 1e-9 * P[P_GAS_UNITS] * env[F_FUND, e]
    olt = o * lt
    chunk_repay = pa * chunk * o / ((1.0 + bonus) * dp) if use_chunk else math.inf
    m = 0
    for k in range(ncand):
        i = cand[k]
        ci = c[i]
        di = d[i]
        dv = di * dp
        hf = ci * olt / dv
        if not hf < 1.0:
            continue
        full = hf <= full_hf or dv < small
        repay = (1.0 if full else cf) * di
        if use_chunk:
            repay = min(repay, chunk_repay)
        seize = repay * dp * (1.0 + bonus) / o
        if seize > ci:
            seize = ci
            repay = ci * o / ((1.0 + bonus) * dp)
        pf = pfee * max(seize - repay * dp / o, 0.0)
        eff = (seize - pf) * (1.0 - fee)
        quote = pd * eff / (pa + eff)
        profit = (quote - repay) * dp - gas_usd
        if profit > 0 or not filt:
            idx[m] = i
            neg_profit[m] = -profit
            q_repay[m] = repay
            q_seize[m] = seize
            q_fee[m] = pf
            m += 1
    if m == 0:
        return 0.0, False
    # keepers act in order of standalone profit, ties by slot index (a stable sort of -profit)
    _stable_order(neg_profit, m, order)
    count = 0.0
    repay_env = 0.0
    seize_env = 0.0
    fee_env = 0.0
    sold = 0.0
    emptied = False
    for r in range(m):
        q = order[r]
        repay = q_repay[q]
        seize = q_seize[q]
        pf = q_fee[q]
        net = seize - pf
        take = True
        if filt:
            sold += net
            eff_incl = sold * (1.0 - fee)
            eff_excl = eff_incl - net * (1.0 - fee)
            out = pd * eff_incl / (pa + eff_incl) - pd * eff_excl / (pa + eff_excl)
            take = (out - repay) * dp - gas_usd > 0
        if take and count + 1.0 <= cap_left:
            i = idx[q]
            count += 1.0
            repay_env += repay
            seize_env += seize
            fee_env += pf
            left = c[i] - seize
            c[i] = left
            d[i] = d[i] - repay
            ever[i] = True
            if left <= 0.0:
                emptied = True
    if count == 0.0:
        return 0.0, False
    net_env = seize_env - fee_env
    keeper_sell = net_env * (1.0 - share)
    eff = keeper_sell * (1.0 - fee)
    out = pd * eff / (pa + eff)
    env[F_PD, e] = pd * pa / (pa + eff)
    env[F_PA, e] = pa + eff
    gas_env = count * (1.0 - share) * gas_usd
    env[F_SEIZED, e] += seize_env
    env[F_REP_LIQ, e] += repay_env
    env[F_LIQS, e] += count
    env[F_FEE_ASSET, e] += fee_env
    env[F_FEE_USD, e] += fee_env * o
    env[F_KEEPER_SOLD, e] += keeper_sell
    env[F_KEEPER_PROFIT, e] += (out - repay_env * (1.0 - share)) * dp - gas_env
    env[F_AGENT_SEIZED, e] += net_env * share
    env[F_AGENT_REPAID, e] += repay_env * share
    return count, emptied


@njit(cache=True)
def _write_off_env(
    e: int, env: np.ndarray, c: np.ndarray, d: np.ndarray, active: np.ndarray
) -> None:
    """``cascade.write_off`` for env ``e``: debt on active positions without collateral is bad
    debt, paid by reserves first and then by lenders."""
    bad = 0.0
    for i in range(c.shape[0]):
        if active[i] and c[i] <= 0.0:
            if d[i] > 0.0:
                bad += d[i]
            d[i] = 0.0
            c[i] = 0.0
            active[i] = False
    from_res = min(bad, env[F_RESERVES, e])
    lenders = bad - from_res
    env[F_RESERVES, e] -= from_res
    env[F_SUPPLY, e] -= lenders
    env[F_BAD, e] += bad
    env[F_BAD_RES, e] += from_res
    env[F_LENDER_LOSS, e] += lenders


@njit(cache=True)
def _refresh_in_block(
    e: int, env: np.ndarray, drv: np.ndarray, P: np.ndarray, now_h: float
) -> bool:
    """The oracle reads the moved pool within the block (deviation only); True if it moved."""
    kind_code = int(P[P_ORACLE_KIND])
    if kind_code == TWAP:
        return False
    if drv[D_FROZEN, e] != 0.0:
        return False
    pool_usd = env[F_PD, e] / env[F_PA, e] * env[F_DP, e]
    cand = _source(env[F_FUND, e], pool_usd, P[P_POOL_W]) * (1.0 + drv[D_BIAS, e])
    old = env[F_ORACLE, e]
    if kind_code == CHAINLINK and not abs(cand / old - 1.0) > P[P_DEV]:
        return False
    env[F_ORACLE, e] = cand
    env[F_UPDATED, e] = now_h
    return cand != old


@njit(cache=True)
def _cascade_rest_env(
    e: int,
    env: np.ndarray,
    drv: np.ndarray,
    P: np.ndarray,
    now_h: float,
    max_rounds: int,
    count1: float,
    write_off1: bool,
    cap_left: float,
    share: float,
    c: np.ndarray,
    d: np.ndarray,
    active: np.ndarray,
    ever: np.ndarray,
    rounds: np.ndarray,
    fscratch: np.ndarray,
    iscratch: np.ndarray,
) -> None:
    """Env ``e``'s cascade after round 1, given that the batch's loop went on past round 1
    (``write_off1``: round 1 left an active position without collateral).

    Why an env can run alone from here: in ``run_cascade`` an env with nothing eligible in a
    round is changed by that round only through the write-off and the oracle refresh. After the
    first refresh both are no-ops for it until it liquidates again (same pool, same source
    price, no empty position left), so its later rounds do not depend on how long other envs
    go on. Only round 1's refresh does (it reads the pool as the borrowers left it), and it runs
    exactly when some env liquidated in round 1, which the caller checks. The write-off is a
    no-op unless a position has no collateral left, so it runs only then.
    """
    dirty = count1 > 0.0
    if write_off1:
        _write_off_env(e, env, c, d, active)
        dirty = True
    if count1 > 0.0:
        cap_left -= count1
        rounds[e] += 1.0
    if _refresh_in_block(e, env, drv, P, now_h):
        dirty = True
    if not dirty:
        return  # round 2 would see exactly what round 1 saw after its (empty) selection
    for _r in range(1, max_rounds):
        ncand, _ = _scan_env(env, e, c, d, active, iscratch[0])
        cnt, emptied = _liquidate_env(
            e, env, P, cap_left, share, c, d, ever, ncand, fscratch, iscratch
        )
        if cnt == 0.0:
            return
        if emptied:
            _write_off_env(e, env, c, d, active)
        cap_left -= cnt
        rounds[e] += 1.0
        _refresh_in_block(e, env, drv, P, now_h)


@njit(cache=True)
def _env_substep(
    e: int,
    env: np.ndarray,
    drv: np.ndarray,
    P: np.ndarray,
    share: np.ndarray,
    twap_in: np.ndarray,
    twap_out: np.ndarray,
    slot: int,
    now_h: float,
    c_in: np.ndarray,
    d_in: np.ndarray,
    active_in: np.ndarray,
    kind: np.ndarray,
    trigger: np.ndarray,
    react: np.ndarray,
    target: np.ndarray,
    repays: np.ndarray,
    tmpl_c: np.ndarray,
    tmpl_hf: np.ndarray,
    ever_in: np.ndarray,
    noise: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    active: np.ndarray,
    ever: np.ndarray,
    rounds: np.ndarray,
    cap_left: np.ndarray,
    count1: np.ndarray,
    write_off1: np.ndarray,
) -> None:
    """Env ``e``'s substep up to its cascade's round 1; if it liquidated in round 1, the batch's
    loop certainly goes on, so its whole cascade is finished here too."""
    n = c.shape[1]
    fscratch = np.empty((4, n))
    iscratch = np.empty((3, n), dtype=np.int64)
    _market_env(e, env, drv, P, twap_in[e], twap_out[e], slot, now_h)
    ncand, has_empty = _borrowers_env(
        e, env, drv, P, c_in[e], d_in[e], active_in[e], kind[e], trigger[e], react[e],
        target[e], repays[e], tmpl_c[e], tmpl_hf[e], ever_in[e], noise[e], c[e], d[e],
        active[e], ever[e], fscratch, iscratch,
    )  # fmt: skip
    # the oracle reads the pool as the borrowers left it (cascade.refresh_in_block); the
    # candidates were listed at the old oracle, so list them again if it moved
    if _refresh_in_block(e, env, drv, P, now_h):
        ncand, _ = _scan_env(env, e, c[e], d[e], active[e], iscratch[0])
    frac = min(P[P_CONGESTION] / max(env[F_GAS, e], 1e-12), 1.0)
    cap_left[e] = max(math.floor(P[P_CAPACITY] * frac), 1.0)
    rounds[e] = 0.0
    cnt, emptied = _liquidate_env(
        e, env, P, cap_left[e], share[e], c[e], d[e], ever[e], ncand, fscratch, iscratch
    )
    count1[e] = cnt
    write_off1[e] = has_empty or emptied
    if cnt > 0.0:
        _cascade_rest_env(
            e, env, drv, P, now_h, int(P[P_MAX_ROUNDS]), cnt, write_off1[e], cap_left[e],
            share[e], c[e], d[e], active[e], ever[e], rounds, fscratch, iscratch,
        )  # fmt: skip


@njit(parallel=True, cache=True)
def _substep_kernel(
    env: np.ndarray,
    drv: np.ndarray,
    P: np.ndarray,
    share: np.ndarray,
    twap_in: np.ndarray,
    twap_out: np.ndarray,
    slot: int,
    now_h: float,
    c_in: np.ndarray,
    d_in: np.ndarray,
    active_in: np.ndarray,
    kind: np.ndarray,
    trigger: np.ndarray,
    react: np.ndarray,
    target: np.ndarray,
    repays: np.ndarray,
    tmpl_c: np.ndarray,
    tmpl_hf: np.ndarray,
    ever_in: np.ndarray,
    noise: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    active: np.ndarray,
    ever: np.ndarray,
    rounds: np.ndarray,
    parallel: bool,
) -> None:
    num_envs = c.shape[0]
    cap_left = np.empty(num_envs)
    count1 = np.empty(num_envs)
    write_off1 = np.empty(num_envs, dtype=np.bool_)
    if parallel:
        for e in prange(num_envs):
            _env_substep(
                e, env, drv, P, share, twap_in, twap_out, slot, now_h, c_in, d_in, active_in, kind,
                trigger, react, target, repays, tmpl_c, tmpl_hf, ever_in, noise, c, d, active,
                ever, rounds, cap_left, count1, write_off1,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            _env_substep(
                e, env, drv, P, share, twap_in, twap_out, slot, now_h, c_in, d_in, active_in, kind,
                trigger, react, target, repays, tmpl_c, tmpl_hf, ever_in, noise, c, d, active,
                ever, rounds, cap_left, count1, write_off1,
            )  # fmt: skip
    # 7: bookkeeping (step.substep)
    for e in range(num_envs):
        pool_usd = env[F_PD, e] / env[F_PA, e] * env[F_DP, e]
        env[F_FMIN, e] = min(env[F_FMIN, e], env[F_FUND, e])
        env[F_PMIN, e] = min(env[F_PMIN, e], pool_usd)
        env[F_ROUNDS_MAX, e] = max(env[F_ROUNDS_MAX, e], rounds[e])


# ----------------------------------------------------------------------------- Python entry


def require_numba() -> None:
    """Raise a ValueError naming the missing package when numba cannot be imported."""
    if not HAVE_NUMBA:
        raise ValueError(
            "backend 'numba' needs the numba package; install it with `pip install numba`"
        )


def _f64(a: Any) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.float64:
        raise ValueError(f"backend 'numba' works on float64 arrays; got {a.dtype}")
    return a


def fused_substep(
    state: State,
    row: DriverRow,
    noise_u: Any,
    params: EngineParams,
    agent_share_frac: Any | None = None,
) -> tuple[State, np.ndarray]:
    """The same substep as :func:`levgym.engine.step.substep` in one numba kernel (numpy float64).

    Pure like the array version: ``state`` is not modified; the new state's arrays are fresh.
    """
    require_numba()
    e_count, n_count = state.num_envs, state.num_positions
    env = np.empty((len(ENV_FIELDS), e_count))
    for i, name in enumerate(ENV_FIELDS):
        env[i] = getattr(state, name)
    drv = np.empty((len(DRIVER_FIELDS), e_count))
    for j, name in enumerate(DRIVER_FIELDS):
        drv[j] = np.asarray(getattr(row, name), dtype=np.float64)
    share = (
        np.zeros(e_count)
        if agent_share_frac is None
        else np.ascontiguousarray(
            np.broadcast_to(np.asarray(agent_share_frac, dtype=np.float64), (e_count,))
        )
    )
    twap_in = _f64(state.twap_buffer_usd)
    twap_out = np.empty_like(twap_in)
    c = np.empty((e_count, n_count))
    d = np.empty((e_count, n_count))
    active = np.empty((e_count, n_count), dtype=np.bool_)
    ever = np.empty((e_count, n_count), dtype=np.bool_)
    rounds = np.empty(e_count)
    P = pack_params(params)
    now_h = state.time_h + params.run.substep_h
    slot = int(state.substep_index) % int(params.market.twap_window_substeps)
    _substep_kernel(
        env, drv, P, share, twap_in, twap_out, slot, now_h,
        _f64(state.collateral_asset), _f64(state.debt_usd), np.asarray(state.active, dtype=np.bool_),
        np.asarray(state.kind, dtype=np.int64), _f64(state.trigger_hf), _f64(state.react_prob),
        _f64(state.target_hf), np.asarray(state.repays, dtype=np.bool_),
        _f64(state.template_collateral_asset), _f64(state.template_hf),
        np.asarray(state.ever_liquidated, dtype=np.bool_), np.asarray(noise_u, dtype=np.float64),
        c, d, active, ever, rounds, e_count * n_count >= PARALLEL_MIN_POSITIONS,
    )  # fmt: skip
    changes: dict[str, Any] = {name: env[i] for i, name in enumerate(ENV_FIELDS)}
    new = state.replace(
        collateral_asset=c,
        debt_usd=d,
        active=active,
        ever_liquidated=ever,
        twap_buffer_usd=twap_out,
        time_h=now_h,
        substep_index=state.substep_index + 1,
        **changes,
    )
    return new, rounds


__all__ = ["HAVE_NUMBA", "fused_substep", "pack_params", "require_numba", "ENV_FIELDS"]
