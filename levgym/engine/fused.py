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

import contextlib
import functools
import hashlib
import math
import operator
import os
import types
from pathlib import Path
from typing import Any

import numpy as np

from . import rules
from .drivers import DriverRow
from .jit import HAVE_NUMBA, njit, numba, prange
from .noise import noise_row
from .ops import OP_NAMES
from .orders import ORDER_FIELDS, Orders
from .params import EngineParams
from .rules import DEFENSIVE, LOOPER, PASSIVE
from .schema import (
    DRIVER_FIELDS,
    DRIVER_ROW,
    ENV_FIELDS,
    ENV_ROW,
    KERNEL_PARAMS,
    PARAM_ROW,
    row_index,
)
from .state import State

# numba's OpenMP workers otherwise spin while they wait for work. When the cores are shared with
# other busy processes, the spinning starves the thread that still has work and a parallel
# substep takes several times longer than on one thread (measured: 14 ms against 2.4 ms at
# 256 x 256 on 2 loaded cores). A user's own setting wins; it must be set before numba starts
# its threads, which happens at the first kernel call.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _rules_cache_dir(*extra: types.ModuleType) -> str:
    """Where numba caches this module's kernels: a folder keyed by the source of the files whose
    functions the kernels inline (numba's own cache checks only the kernel's file, so a changed
    rule would otherwise run stale machine code); ``extra`` modules (an env's own rules) join
    the key. ``LEVGYM_NUMBA_CACHE`` moves the root."""
    from . import noise, ops, schema

    digest = hashlib.sha256()
    for module in (rules, ops, schema, noise, *extra):
        digest.update(Path(module.__file__).read_bytes())
    root = os.environ.get("LEVGYM_NUMBA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "levgym", "numba"
    )
    return os.path.join(root, digest.hexdigest()[:16])


@contextlib.contextmanager
def rules_cache_dir(*extra: types.ModuleType):
    """Decorate numba functions that call the compiled rules (:data:`NR`, or an ``extra``
    module's compiled by :func:`compile_rules`) inside this block so their cache is keyed by
    those rules' source too (see :func:`_rules_cache_dir`)."""
    if not HAVE_NUMBA:
        yield
        return
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = _rules_cache_dir(*extra)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = previous


# Every cache=True function below is located when it is decorated; the folder is set for this
# module only and restored at its end.
_PREVIOUS_CACHE_DIR = numba.config.CACHE_DIR if HAVE_NUMBA else None
if HAVE_NUMBA:
    numba.config.CACHE_DIR = _rules_cache_dir()

# Below this many positions (envs x slots) a substep runs on one thread: the work is then shorter
# than what waking the other threads costs.
PARALLEL_MIN_POSITIONS = 8192

# Row names of the packed arrays (from the schema): the kernel reads env[F.supply_usd, e].
F = ENV_ROW
D = DRIVER_ROW
P_ = PARAM_ROW
O_ = row_index(ORDER_FIELDS, "OrderRow")


# ----------------------------------------------------------------------------- the rules, compiled


def _scalar_ops() -> dict[str, Any]:
    """The operations of :mod:`levgym.engine.ops` as numba scalar functions."""
    inline = {"inline": "always", "cache": True}
    table = {
        "where": lambda c, a, b: a if c else b,
        "minimum": lambda a, b: min(a, b),
        "maximum": lambda a, b: max(a, b),
        "clip": lambda x, lo, hi: min(max(x, lo), hi),
        "exp": lambda x: math.exp(x),
        "log": lambda x: math.log(x),
        "sqrt": lambda x: math.sqrt(x),
        "floor": lambda x: math.floor(x),
        "abs_": lambda x: abs(x),
        "and_": lambda a, b: a and b,
        "or_": lambda a, b: a or b,
        "not_": lambda a: not a,
    }
    assert set(table) == set(OP_NAMES), "every op of ops.OP_NAMES needs a scalar binding"
    return {name: njit(**inline)(fn) for name, fn in table.items()}


def compile_rules(
    source: types.ModuleType, names: tuple[str, ...], base: types.ModuleType | None = None
) -> types.ModuleType:
    """The functions ``names`` of ``source`` compiled by numba: the same function texts, with
    the operations of :mod:`levgym.engine.ops` bound to scalar functions (and, given ``base``, a
    module compiled before, any of its functions that ``source`` calls bound to their compiled
    versions). Returned as a module so kernels call ``NR.rule(...)``."""
    namespace = dict(vars(source))
    if HAVE_NUMBA:
        namespace.update(_scalar_ops())
    if base is not None:
        for name, fn in vars(base).items():
            if name in namespace and callable(fn):
                namespace[name] = fn
    module = types.ModuleType(source.__name__ + "_numba")
    for name in names:
        fn = getattr(source, name)
        rebound = types.FunctionType(fn.__code__, namespace, name, fn.__defaults__)
        rebound.__doc__ = fn.__doc__
        compiled = njit(inline="always", error_model="numpy", cache=True)(rebound)
        namespace[name] = compiled
        setattr(module, name, compiled)
    return module


NR = compile_rules(rules, rules.RULE_NAMES)


@functools.lru_cache(maxsize=64)
def pack_params(params: EngineParams) -> np.ndarray:
    """The scalar parameters the kernel needs, as a float64 vector in ``KERNEL_PARAMS`` order."""
    out = np.array(
        [float(getattr(getattr(params, sec), attr)) for _, sec, attr in KERNEL_PARAMS],
        dtype=np.float64,
    )
    out.setflags(write=False)
    return out


# ----------------------------------------------------------------------------- stages 1-5


@njit(cache=True)
def _market_env(
    e: int, env: np.ndarray, drv: np.ndarray, P: np.ndarray, orders: np.ndarray,
    twap_in: np.ndarray, twap_out: np.ndarray, slot: int, now_h: float, held: bool,
) -> None:  # fmt: skip
    """Steps 1-3 for env ``e`` (``step.market_update`` and ``step.agent_orders``): liquidity,
    arbitrage, TWAP, oracle; then the liquidity provider's and the outside liquidator's orders."""
    f = drv[D.fundamental_usd, e]
    dp = drv[D.debt_price_usd, e]
    pa, pd = NR.set_liquidity(
        env[F.pool_asset, e], env[F.pool_debt, e],
        env[F.pool_liquidity_base, e] * drv[D.liquidity_frac, e],
    )  # fmt: skip
    pa, pd = NR.arbitrage(pa, pd, f / dp, drv[D.arb_speed_frac, e])
    pool_usd = NR.pool_price_usd(pa, pd, dp)
    kw = twap_in.shape[0]
    tsum = 0.0
    for j in range(kw):
        v = pool_usd if j == slot else twap_in[j]
        twap_out[j] = v
        tsum += v
    src = NR.oracle_source(f, pool_usd, P[P_.oracle_pool_weight_frac])
    oracle, updated = NR.oracle_update(
        int(P[P_.oracle_kind_code]), env[F.oracle_usd, e], env[F.oracle_updated_h, e], now_h,
        src, tsum / kw, drv[D.oracle_bias_frac, e], held,
        P[P_.oracle_deviation_frac], P[P_.oracle_heartbeat_h], False,
    )  # fmt: skip
    env[F.oracle_usd, e] = oracle
    env[F.oracle_updated_h, e] = updated
    env[F.fundamental_usd, e] = f
    env[F.debt_price_usd, e] = dp
    env[F.gas_gwei, e] = drv[D.gas_gwei, e]
    delta = orders[O_.liquidity_delta_frac, e]
    if delta != 0.0:
        pd0 = pd
        pa, pd, env[F.pool_liquidity_base, e] = NR.add_liquidity(
            pa, pd, env[F.pool_liquidity_base, e], delta
        )
        env[F.liquidity_added_debt, e] += pd - pd0
    amount = orders[O_.sell_asset, e]
    env[F.agent_sold_asset, e] += amount
    if amount > 0.0:
        env[F.agent_sale_mid_debt, e] += amount * (pd / pa)
        pa, pd, out = NR.sell_asset(pa, pd, amount, P[P_.pool_fee_frac])
        env[F.agent_sale_debt, e] += out
    env[F.pool_asset, e] = pa
    env[F.pool_debt, e] = pd


@njit(cache=True)
def _borrowers_env(
    e: int, env: np.ndarray, drv: np.ndarray, P: np.ndarray, c_in: np.ndarray, d_in: np.ndarray,
    active_in: np.ndarray, kind: np.ndarray, trigger: np.ndarray, react: np.ndarray,
    target: np.ndarray, repays: np.ndarray, tmpl_c: np.ndarray, tmpl_hf: np.ndarray,
    ever_in: np.ndarray, noise: np.ndarray, c: np.ndarray, d: np.ndarray, active: np.ndarray,
    ever: np.ndarray, fscratch: np.ndarray, iscratch: np.ndarray, frozen: bool,
) -> tuple[int, bool]:  # fmt: skip
    """Steps 4-5 for env ``e`` (``step.accrue_interest``, ``borrowers.act``), writing ``c``,
    ``d``, ``active`` and ``ever``. Returns the positions that may be liquidatable now (written
    to ``iscratch[0]``, in slot order: those with ``collateral * oracle * LT < debt * debt_price``)
    and whether an active position is left without collateral.

    One full pass does interest and every borrower's decision; the few slots that trade with the
    pool or borrow (delevering and relevering loopers, arrivals) are kept in a list and
    finished in short passes once the env's aggregate sale and purchase are known.
    """
    n = c_in.shape[0]
    dt = P[P_.substep_h]
    # 4: interest
    total = 0.0
    for i in range(n):
        total += d_in[i]
    supply = env[F.supply_usd, e]
    base, s1 = env[F.base_rate_apr, e], env[F.slope1_apr, e]
    s2, opt = env[F.slope2_apr, e], env[F.optimal_utilization_frac, e]
    rate0 = NR.borrow_rate_apr(NR.utilization(total, supply), base, s1, s2, opt)
    growth = NR.interest_growth(rate0, dt)
    interest = 0.0
    total1 = 0.0
    for i in range(n):
        added = d_in[i] * growth
        interest += added
        total1 += d_in[i] + added
    to_res = interest * env[F.reserve_factor_frac, e]
    env[F.interest_usd, e] += interest
    env[F.reserves_usd, e] += to_res
    env[F.reserve_income_usd, e] += to_res
    supply = supply + (interest - to_res)
    env[F.supply_usd, e] = supply

    # 5: borrowers
    o = env[F.oracle_usd, e]
    dp = env[F.debt_price_usd, e]
    lt = env[F.liquidation_threshold, e]
    ltv = env[F.ltv, e]
    olt = o * lt
    gas_factor = NR.reaction_gas_factor(env[F.gas_gwei, e], P[P_.reaction_gas_ref_gwei])
    rate = NR.borrow_rate_apr(NR.utilization(total1, supply), base, s1, s2, opt)
    attract = NR.attractiveness(
        ltv, rate, P[P_.ltv_elasticity], P[P_.ltv_ref], P[P_.rate_elasticity], P[P_.rate_ref_apr]
    )
    p_exit = NR.exit_prob(P[P_.exit_rate_per_h], dt, attract)
    p_arrive = NR.arrival_prob(P[P_.arrival_rate_per_h], dt, drv[D.arrival_mult, e], attract)
    exit_above = 1.0 - p_exit  # a uniform above this may exit (rules.exits)
    gap = P[P_.defend_target_gap]
    band = P[P_.relever_band_frac]
    dfrac = P[P_.delever_frac]
    cand = iscratch[0]
    # the slots that trade or borrow, and what they need later
    touched = iscratch[1]
    t_flag = iscratch[2]  # 2 arrival, else 0
    t_sell = fscratch[0]
    t_want = fscratch[1]
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
    total_c1 = 0.0  # collateral held after this pass (what the supply cap counts)
    wanted_c = 0.0  # collateral new supply would bring: arrivals, re-levering at the oracle
    for i in range(n):
        di = d_in[i] + d_in[i] * growth
        ci = c_in[i]
        ui = noise[i]
        ever[i] = ever_in[i]
        c[i] = ci
        d[i] = di
        if not active_in[i]:
            total_c1 += ci
            if ui < p_arrive:  # a new borrower in a free slot
                a_d = NR.arrival_debt(tmpl_c[i], o, lt, ltv, tmpl_hf[i], dp)
                requested += 0.0 + a_d
                wanted_c += tmpl_c[i]
                touched[nt] = i
                t_sell[nt] = 0.0
                t_want[nt] = 0.0
                t_debt[nt] = di
                t_flag[nt] = 2
                nt += 1
            else:
                active[i] = False
                total_d1 += di
            continue
        kd = kind[i]
        exits = False
        add_c = 0.0
        rep_def = 0.0
        sc = 0.0
        want = 0.0
        reacts = di > 0 and NR.reacts(ui, react[i], gas_factor)
        if ui > exit_above or (reacts and kd != PASSIVE):
            cv = ci * o
            dv = di * dp
            hf = NR.health_factor(ci, di, o, lt, dp)
            exits = NR.exits(ui, p_exit, hf)
            if reacts and kd == DEFENSIVE and hf < trigger[i]:
                tdef = trigger[i] + gap
                if repays[i]:
                    rep_def = NR.defend_repay_debt(cv, dv, lt, dp, di, tdef)
                else:
                    add_c = NR.defend_topup_asset(cv, dv, lt, o, tdef)
            elif reacts and kd == LOOPER:
                tgt = target[i]
                if NR.relevers(hf, tgt, band):
                    want = NR.looper_borrow_debt(cv, dv, lt, ltv, tgt, dp)
                if NR.delevers(hf, tgt, dfrac):
                    sc = NR.looper_sell_asset(cv, dv, lt, tgt, o)
        wd = ci if exits else 0.0
        c1 = ci + add_c - sc - wd
        c[i] = c1
        total_c1 += c1
        sum_add += add_c
        sum_withdrawn += sc + wd
        if exits:
            n_exit += 1.0
        if sc > 0.0 or want > 0.0:
            total_sell += sc
            requested += want + 0.0
            wanted_c += NR.relever_collateral_asset(want, dp, o)
            touched[nt] = i
            t_sell[nt] = sc
            t_want[nt] = want
            t_debt[nt] = di
            t_flag[nt] = 0
            nt += 1
            d[i] = di - rep_def  # the delever repay and the exit repay follow
            active[i] = True
            continue
        rep_exit = di if exits else 0.0
        d1 = di - rep_def - 0.0 - rep_exit
        sum_rep += rep_def + 0.0 + rep_exit
        total_d1 += d1
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
    fee = P[P_.pool_fee_frac]
    pa, pd, out = NR.sell_asset(env[F.pool_asset, e], env[F.pool_debt, e], total_sell, fee)
    ratio = NR.per_unit(out, total_sell)
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
    # new supply within the supply cap (none while frozen), then new borrowing within available
    # liquidity and the borrow cap
    room = NR.supply_room(env[F.supply_cap_asset, e], total_c1, frozen)
    sfill = NR.fill_ratio(room, wanted_c)
    avail = NR.borrow_available(supply, env[F.borrow_cap_usd, e], total_d1)
    bscale = NR.fill_ratio(avail, requested * sfill)
    total_buy = 0.0
    for k in range(nt):
        total_buy += t_want[k] * sfill * bscale
    pa, pd, got = NR.buy_asset(pa, pd, total_buy, fee)
    gratio = NR.per_unit(got, total_buy)
    sum_borrow = 0.0
    first = ncand
    for k in range(nt):
        i = touched[k]
        arrival = t_flag[k] == 2
        if arrival and not sfill > 0.0:
            active[i] = False  # no room left: the borrower does not arrive
            continue
        borrow = t_want[k] * sfill * bscale
        bought = borrow * gratio
        ac = tmpl_c[i] * sfill if arrival else 0.0
        a_d = NR.arrival_debt(ac, o, lt, ltv, tmpl_hf[i], dp) if arrival else 0.0
        c2 = c[i] + bought + ac
        d2 = d[i] + borrow + a_d * bscale
        c[i] = c2
        d[i] = d2
        active[i] = True
        sum_add += bought + ac
        sum_borrow += borrow + a_d * bscale
        if arrival:
            n_arr += 1.0
        if c2 <= 0.0:
            has_empty = True
        if d2 > 0.0 and c2 * olt < d2 * dp:
            cand[ncand] = i
            ncand += 1
    if ncand > first and first > 0:
        cand[:ncand].sort()  # slot order, so that ties in profit go to the lower slot
    env[F.pool_asset, e] = pa
    env[F.pool_debt, e] = pd
    env[F.added_collateral_asset, e] += sum_add
    env[F.withdrawn_collateral_asset, e] += sum_withdrawn
    env[F.borrowed_usd, e] += sum_borrow
    env[F.repaid_by_borrowers_usd, e] += sum_rep
    env[F.arrivals, e] += n_arr
    env[F.exits, e] += n_exit
    return ncand, has_empty


# ----------------------------------------------------------------------------- stage 6


@njit(cache=True)
def _scan_env(
    env: np.ndarray, e: int, c: np.ndarray, d: np.ndarray, active: np.ndarray, cand: np.ndarray
) -> tuple[int, bool]:
    """Positions with ``collateral * oracle * LT < debt * debt_price`` (the only ones whose
    health factor can be below 1), in slot order; and whether an active one has no collateral."""
    olt = env[F.oracle_usd, e] * env[F.liquidation_threshold, e]
    dp = env[F.debt_price_usd, e]
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
def _rescan_env(
    env: np.ndarray, e: int, c: np.ndarray, d: np.ndarray, active: np.ndarray, cand: np.ndarray,
    ncand: int,
) -> int:  # fmt: skip
    """:func:`_scan_env`'s test on the listed slots ``cand[:ncand]`` only, in place (slot order
    kept): the candidates when no position outside the list can have become one."""
    olt = env[F.oracle_usd, e] * env[F.liquidation_threshold, e]
    dp = env[F.debt_price_usd, e]
    m = 0
    for k in range(ncand):
        i = cand[k]
        if not active[i]:
            continue
        di = d[i]
        if di > 0.0 and c[i] * olt < di * dp:
            cand[m] = i
            m += 1
    return m


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
    e: int, env: np.ndarray, P: np.ndarray, cap_left: float, share: float, c: np.ndarray,
    d: np.ndarray, ever: np.ndarray, ncand: int, fscratch: np.ndarray, iscratch: np.ndarray,
) -> tuple[float, bool]:  # fmt: skip
    """One cascade round for env ``e`` over the slots ``iscratch[0, :ncand]`` (slot order; every
    liquidatable position must be among them): ``cascade.liquidation_terms``, ``_select`` and
    ``apply_round``. Returns the number of liquidations and whether one of them took a
    position's last collateral (so that the write-off has work)."""
    if ncand == 0:
        return 0.0, False
    cand = iscratch[0]
    idx = iscratch[1]
    order = iscratch[2]
    neg_profit = fscratch[0]
    q_repay = fscratch[1]
    q_seize = fscratch[2]
    q_fee = fscratch[3]
    o = env[F.oracle_usd, e]
    dp = env[F.debt_price_usd, e]
    lt = env[F.liquidation_threshold, e]
    bonus = env[F.liquidation_bonus, e]
    cf = env[F.close_factor, e]
    pa = env[F.pool_asset, e]
    pd = env[F.pool_debt, e]
    fee = P[P_.pool_fee_frac]
    chunk = P[P_.keeper_chunk_ratio]
    filt = P[P_.profitability_filter] != 0.0
    full_hf = P[P_.full_close_hf]
    small = P[P_.small_position_usd]
    pfee = P[P_.protocol_fee_frac]
    gas_usd = NR.gas_cost_usd(
        env[F.gas_gwei, e], P[P_.gas_units_per_liquidation], env[F.fundamental_usd, e]
    )
    vfrac = P[P_.keeper_venue_frac]
    va = vd = 0.0
    if vfrac > 0.0:
        va, vd = NR.venue_reserves(env[F.fundamental_usd, e], dp, P[P_.keeper_venue_depth_usd])
    split = P[P_.keeper_split] != 0.0
    use_agg = P[P_.keeper_aggregator_depth_usd] > 0.0
    use_cex = P[P_.keeper_cex_depth_usd] > 0.0
    agg_fee = P[P_.keeper_aggregator_fee_frac]
    cex_fee = P[P_.keeper_cex_fee_frac]
    aa = ad = ca = cd = 0.0
    if split:
        aa, ad = NR.venue_reserves(env[F.fundamental_usd, e], dp, P[P_.keeper_aggregator_depth_usd])
        ca, cd = NR.venue_reserves(env[F.fundamental_usd, e], dp, P[P_.keeper_cex_depth_usd])
    reserve = NR.route_reserve_asset(pa, aa, ca) if split else pa
    max_repay = NR.chunk_repay(reserve, chunk, o, bonus, dp) if chunk != math.inf else math.inf
    m = 0
    for k in range(ncand):
        i = cand[k]
        hf = NR.health_factor(c[i], d[i], o, lt, dp)
        if not hf < 1.0:
            continue
        repay, seize, pf = NR.liquidation_call(
            c[i], d[i], hf, o, dp, bonus, cf, full_hf, small, max_repay, pfee
        )
        if split:
            quote = NR.route_out(
                pa, pd, fee, aa, ad, agg_fee, ca, cd, cex_fee, seize - pf, use_agg, use_cex
            )
        elif vfrac > 0.0:
            quote = NR.split_sale_out(pa, pd, va, vd, seize - pf, seize - pf, fee, vfrac)
        else:
            quote = NR.swap_out(pa, pd, seize - pf, fee)
        profit = NR.liquidation_profit(quote, repay, dp, gas_usd)
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
            if split:
                out = NR.block_route_out(
                    pa, pd, fee, aa, ad, agg_fee, ca, cd, cex_fee, sold, net, use_agg, use_cex
                )
            elif vfrac > 0.0:
                out = NR.split_sale_out(pa, pd, va, vd, sold, net, fee, vfrac)
            else:
                out = NR.block_sale_out(pa, pd, sold, net, fee)
            take = NR.liquidation_profit(out, repay, dp, gas_usd) > 0
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
    if split:
        to_pool, to_agg, to_cex = NR.route_split(
            pa, pd, fee, aa, ad, agg_fee, ca, cd, cex_fee, keeper_sell, use_agg, use_cex
        )
        pa1, pd1, out = NR.sell_asset(pa, pd, to_pool, fee)
        if use_agg:
            out += NR.swap_out(aa, ad, to_agg, agg_fee)
            env[F.keeper_aggregator_sold_asset, e] += to_agg
        if use_cex:
            cex_out = NR.swap_out(ca, cd, to_cex, cex_fee)
            if P[P_.keeper_cex_latency_substeps] > 0.0:
                env[F.keeper_cex_pending_asset, e] += cex_out * dp / env[F.fundamental_usd, e]
            else:
                out += cex_out
            env[F.keeper_cex_sold_asset, e] += to_cex
    elif vfrac > 0.0:
        to_venue = keeper_sell * vfrac
        pa1, pd1, out = NR.sell_asset(pa, pd, keeper_sell - to_venue, fee)
        out += NR.swap_out(va, vd, to_venue, fee)
        env[F.keeper_venue_sold_asset, e] += to_venue
    else:
        pa1, pd1, out = NR.sell_asset(pa, pd, keeper_sell, fee)
    env[F.pool_asset, e] = pa1
    env[F.pool_debt, e] = pd1
    env[F.seized_collateral_asset, e] += seize_env
    env[F.repaid_by_liquidators_usd, e] += repay_env
    env[F.liquidations, e] += count
    env[F.protocol_fee_asset, e] += fee_env
    env[F.protocol_fee_usd, e] += fee_env * o
    env[F.keeper_sold_asset, e] += keeper_sell
    env[F.keeper_profit_usd, e] += NR.liquidation_profit(
        out, repay_env * (1.0 - share), dp, count * (1.0 - share) * gas_usd
    )
    env[F.agent_seized_asset, e] += net_env * share
    env[F.agent_repaid_usd, e] += repay_env * share
    env[F.agent_gas_usd, e] += count * share * gas_usd
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
    from_res, lenders = NR.write_off_split(bad, env[F.reserves_usd, e])
    env[F.reserves_usd, e] -= from_res
    env[F.supply_usd, e] -= lenders
    env[F.bad_debt_usd, e] += bad
    env[F.bad_debt_from_reserves_usd, e] += from_res
    env[F.lender_loss_usd, e] += lenders


@njit(cache=True)
def _refresh_in_block(
    e: int, env: np.ndarray, drv: np.ndarray, P: np.ndarray, now_h: float, held: bool
) -> bool:
    """``cascade.refresh_in_block`` for env ``e``; True if the oracle's answer moved."""
    pool_usd = NR.pool_price_usd(
        env[F.pool_asset, e], env[F.pool_debt, e], env[F.debt_price_usd, e]
    )
    src = NR.oracle_source(env[F.fundamental_usd, e], pool_usd, P[P_.oracle_pool_weight_frac])
    old = env[F.oracle_usd, e]
    oracle, updated = NR.oracle_update(
        int(P[P_.oracle_kind_code]), old, env[F.oracle_updated_h, e], now_h, src, 0.0,
        drv[D.oracle_bias_frac, e], held,
        P[P_.oracle_deviation_frac], P[P_.oracle_heartbeat_h], True,
    )  # fmt: skip
    env[F.oracle_usd, e] = oracle
    env[F.oracle_updated_h, e] = updated
    return oracle != old


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
    held: bool,
    ncand: int,
) -> None:
    """Env ``e``'s cascade after round 1, given that the batch's loop went on past round 1
    (``write_off1``: round 1 left an active position without collateral); ``iscratch[0, :ncand]``
    holds round 1's candidates (every position that :func:`_scan_env` would list then).

    A round's candidates are those of the round before that still qualify, unless the oracle's
    answer moved in between (then all positions are scanned again): a position that was no
    candidate was not liquidated, so its collateral and debt are unchanged, and with the same
    oracle, threshold and debt price it still does not qualify (the write-off only removes
    positions). The list keeps slot order, so the rounds see exactly what a full scan gives.

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
    moved = _refresh_in_block(e, env, drv, P, now_h, held)
    if moved:
        dirty = True
    if not dirty:
        return  # round 2 would see exactly what round 1 saw after its (empty) selection
    for _r in range(1, max_rounds):
        if moved:
            ncand, _ = _scan_env(env, e, c, d, active, iscratch[0])
        else:
            ncand = _rescan_env(env, e, c, d, active, iscratch[0], ncand)
        cnt, emptied = _liquidate_env(
            e, env, P, cap_left, share, c, d, ever, ncand, fscratch, iscratch
        )
        if cnt == 0.0:
            return
        if emptied:
            _write_off_env(e, env, c, d, active)
        cap_left -= cnt
        rounds[e] += 1.0
        moved = _refresh_in_block(e, env, drv, P, now_h, held)


@njit(cache=True)
def _env_substep(
    e: int, env: np.ndarray, drv: np.ndarray, P: np.ndarray, orders: np.ndarray,
    twap_in: np.ndarray, twap_out: np.ndarray, slot: int, now_h: float, c_in: np.ndarray,
    d_in: np.ndarray, active_in: np.ndarray, kind: np.ndarray, trigger: np.ndarray,
    react: np.ndarray, target: np.ndarray, repays: np.ndarray, tmpl_c: np.ndarray,
    tmpl_hf: np.ndarray, ever_in: np.ndarray, noise: np.ndarray, c: np.ndarray, d: np.ndarray,
    active: np.ndarray, ever: np.ndarray, rounds: np.ndarray, fscratch: np.ndarray,
    iscratch: np.ndarray,
) -> None:  # fmt: skip
    """Env ``e``'s substep up to its cascade's round 1; if it liquidated in round 1, the batch's
    loop certainly goes on, so its whole cascade is finished here too. ``fscratch`` ``[4, N]``
    and ``iscratch`` ``[3, N]`` are scratch (:func:`substep_scratch`)."""
    held = NR.oracle_held(drv[D.oracle_frozen, e] != 0.0, orders[O_.pause_oracle, e] != 0.0)
    _market_env(e, env, drv, P, orders, twap_in[e], twap_out[e], slot, now_h, held)
    ncand, has_empty = _borrowers_env(
        e, env, drv, P, c_in[e], d_in[e], active_in[e], kind[e], trigger[e], react[e],
        target[e], repays[e], tmpl_c[e], tmpl_hf[e], ever_in[e], noise[e], c[e], d[e],
        active[e], ever[e], fscratch, iscratch, orders[O_.freeze_borrow, e] != 0.0,
    )  # fmt: skip
    if P[P_.keeper_cex_depth_usd] > 0.0 and P[P_.keeper_cex_latency_substeps] > 0.0:
        # cascade.cex_fills: the CEX leg's held collateral fills at the current fundamental
        fill = NR.cex_fill_asset(env[F.keeper_cex_pending_asset, e], P[P_.keeper_cex_fill_frac])
        env[F.keeper_cex_pending_asset, e] -= fill
        env[F.keeper_profit_usd, e] += fill * env[F.fundamental_usd, e]
    # the oracle reads the pool as the block left it so far (cascade.refresh_in_block); the
    # candidates were listed at the old oracle, so list them again if it moved
    if _refresh_in_block(e, env, drv, P, now_h, held):
        ncand, _ = _scan_env(env, e, c[e], d[e], active[e], iscratch[0])
    cap_left = NR.keeper_capacity(
        env[F.gas_gwei, e], P[P_.congestion_ref_gwei], P[P_.keeper_capacity_per_substep]
    )
    share = orders[O_.claim_share_frac, e]
    rounds[e] = 0.0
    cnt, emptied = _liquidate_env(
        e, env, P, cap_left, share, c[e], d[e], ever[e], ncand, fscratch, iscratch
    )
    if cnt > 0.0:
        _cascade_rest_env(
            e, env, drv, P, now_h, int(P[P_.max_cascade_rounds]), cnt, has_empty or emptied,
            cap_left, share, c[e], d[e], active[e], ever[e], rounds, fscratch, iscratch, held,
            ncand,
        )  # fmt: skip


@njit(cache=True, inline="always")
def substep_scratch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The scratch of one env's substep over ``n`` position slots (reusable between substeps:
    nothing in it outlives a substep)."""
    return np.empty((4, n)), np.empty((3, n), dtype=np.int64)


@njit(parallel=True, cache=True)
def _substep_kernel(
    env: np.ndarray, drv: np.ndarray, P: np.ndarray, orders: np.ndarray, twap_in: np.ndarray,
    twap_out: np.ndarray, slot: int, now_h: float, c_in: np.ndarray, d_in: np.ndarray,
    active_in: np.ndarray, kind: np.ndarray, trigger: np.ndarray, react: np.ndarray,
    target: np.ndarray, repays: np.ndarray, tmpl_c: np.ndarray, tmpl_hf: np.ndarray,
    ever_in: np.ndarray, noise: np.ndarray, c: np.ndarray, d: np.ndarray, active: np.ndarray,
    ever: np.ndarray, rounds: np.ndarray, parallel: bool,
) -> None:  # fmt: skip
    num_envs = c.shape[0]
    if parallel:
        for e in prange(num_envs):
            fscratch, iscratch = substep_scratch(c.shape[1])
            _env_substep(
                e, env, drv, P, orders, twap_in, twap_out, slot, now_h, c_in, d_in, active_in,
                kind, trigger, react, target, repays, tmpl_c, tmpl_hf, ever_in, noise, c, d,
                active, ever, rounds, fscratch, iscratch,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            fscratch, iscratch = substep_scratch(c.shape[1])
            _env_substep(
                e, env, drv, P, orders, twap_in, twap_out, slot, now_h, c_in, d_in, active_in,
                kind, trigger, react, target, repays, tmpl_c, tmpl_hf, ever_in, noise, c, d,
                active, ever, rounds, fscratch, iscratch,
            )  # fmt: skip
    for e in range(num_envs):
        _bookkeep_env(e, env, rounds)


# ----------------------------------------------------------------------------- packed buffers
# A runner that keeps its state in packed buffers between substeps (levgym.engine.packed) calls
# substep_env per env: no packing, no allocation of the state's arrays, and an env program
# (levgym.envs.programs) can run all substeps of an env step in one kernel call.

# rows of the packed float position array posf [POSF, E, N] and of the bool array posb [POSB, E, N]
POSF = ("c_in", "d_in", "c_out", "d_out", "trigger_hf", "react_prob", "target_hf",
        "template_collateral_asset", "template_hf")  # fmt: skip
POSB = ("active_in", "ever_in", "active_out", "ever_out", "repays")


@njit(cache=True, inline="always")
def _bookkeep_env(e: int, env: np.ndarray, rounds: np.ndarray) -> None:
    """Step 7 for env ``e`` (bookkeeping of ``step.substep``): running minima and the deepest
    cascade."""
    pool_usd = NR.pool_price_usd(
        env[F.pool_asset, e], env[F.pool_debt, e], env[F.debt_price_usd, e]
    )
    env[F.fundamental_min_usd, e] = min(env[F.fundamental_min_usd, e], env[F.fundamental_usd, e])
    env[F.pool_min_usd, e] = min(env[F.pool_min_usd, e], pool_usd)
    env[F.cascade_rounds_max, e] = max(env[F.cascade_rounds_max, e], rounds[e])


@njit(cache=True)
def substep_env(
    e: int, env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray, kind: np.ndarray,
    drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray, slot: int, now_h: float,
    fscratch: np.ndarray, iscratch: np.ndarray,
) -> None:  # fmt: skip
    """One substep of env ``e`` on packed buffers, in place: the driver row of the env's own
    clock ``t[e]`` from the bank ``[F, R, S]`` at the env's bank row ``bank_rows[e]`` (the last
    substep held), its borrower noise
    (:mod:`levgym.engine.noise`), the substep of :func:`fused_substep` and its bookkeeping; then
    the new positions and TWAP become the inputs of the next substep and ``t[e]`` advances.
    ``drv`` ``[F, E]`` and ``noise`` ``[E, N]`` are scratch (only row / column ``e`` is used),
    and so are ``fscratch`` and ``iscratch`` (:func:`substep_scratch`, for this env only)."""
    s = bank.shape[2]
    te = t[e] if t[e] < s else s - 1
    row = bank_rows[e]
    for j in range(bank.shape[0]):
        drv[j, e] = bank[j, row, te]
    noise_row(key[e], t[e], noise[e])
    _env_substep(
        e, env, drv, P, orders, twap[0], twap[1], slot, now_h, posf[0], posf[1], posb[0], kind,
        posf[4], posf[5], posf[6], posb[4], posf[7], posf[8], posb[1], noise, posf[2], posf[3],
        posb[2], posb[3], rounds, fscratch, iscratch,
    )  # fmt: skip
    _bookkeep_env(e, env, rounds)
    # element loops: a slice assignment checks for overlap and costs several times more
    c_in, d_in, c_out, d_out = posf[0, e], posf[1, e], posf[2, e], posf[3, e]
    a_in, v_in, a_out, v_out = posb[0, e], posb[1, e], posb[2, e], posb[3, e]
    for i in range(c_in.shape[0]):
        c_in[i] = c_out[i]
        d_in[i] = d_out[i]
        a_in[i] = a_out[i]
        v_in[i] = v_out[i]
    w_in, w_out = twap[0, e], twap[1, e]
    for j in range(w_in.shape[0]):
        w_in[j] = w_out[j]
    t[e] += 1


@njit(parallel=True, cache=True)
def packed_substep_kernel(
    env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray, kind: np.ndarray,
    drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray, slot: int, now_h: float,
    parallel: bool,
) -> None:  # fmt: skip
    """:func:`substep_env` for every env (in parallel over envs when ``parallel``)."""
    num_envs = env.shape[1]
    if parallel:
        for e in prange(num_envs):
            fscratch, iscratch = substep_scratch(posf.shape[2])
            substep_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                slot, now_h, fscratch, iscratch,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            fscratch, iscratch = substep_scratch(posf.shape[2])
            substep_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                slot, now_h, fscratch, iscratch,
            )  # fmt: skip


if HAVE_NUMBA:
    numba.config.CACHE_DIR = _PREVIOUS_CACHE_DIR


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


def pack_orders(orders: Orders | None, num_envs: int) -> np.ndarray:
    """Orders as a ``[len(ORDER_FIELDS), E]`` float64 array (an absent order is 0: a no-op)."""
    out = np.zeros((len(ORDER_FIELDS), num_envs))
    if orders is not None:
        for j, name in enumerate(ORDER_FIELDS):
            v = getattr(orders, name)
            if v is not None:
                out[j] = np.asarray(v, dtype=np.float64)
    return out


_ENV_GETTER = operator.attrgetter(*ENV_FIELDS)
_DRIVER_GETTER = operator.attrgetter(*DRIVER_FIELDS)
_LAST_PARAMS: tuple[EngineParams, np.ndarray] | None = None


def _params_packed(params: EngineParams) -> np.ndarray:
    """:func:`pack_params`, with the last parameters kept by identity (they are frozen), which
    spares hashing the nested dataclasses on every substep."""
    global _LAST_PARAMS
    last = _LAST_PARAMS
    if last is not None and last[0] is params:
        return last[1]
    packed = pack_params(params)
    _LAST_PARAMS = (params, packed)
    return packed


_LAST_PACKED: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None
"""The packed ``[F, E]`` env array of the last substep and the row views it returned as the new
state's env fields: the next substep usually gets exactly those rows back."""


def _pack_env(state: State, e_count: int) -> np.ndarray:
    """The state's env fields packed as a fresh ``[F, E]`` float64 array.

    When a field is the very row view the last substep returned, its values are that row of the
    last packed array (a view shows every in-place write), so one copy of the whole array replaces
    F row writes; only the fields set since (new parameters, a restarted env) are written."""
    values = _ENV_GETTER(state)
    last = _LAST_PACKED  # one read: the pair belongs together even if another thread steps
    if last is not None and last[0].shape == (len(ENV_FIELDS), e_count):
        env = last[0].copy()
        for i, (a, b) in enumerate(zip(values, last[1], strict=True)):
            if a is not b:
                env[i] = a
        return env
    env = np.empty((len(ENV_FIELDS), e_count))
    for i, a in enumerate(values):
        env[i] = a
    return env


def fused_substep(
    state: State,
    row: DriverRow,
    noise_u: Any,
    params: EngineParams,
    orders: Orders | None = None,
) -> tuple[State, np.ndarray]:
    """The same substep as :func:`levgym.engine.step.substep` in one numba kernel (numpy float64).

    Pure like the array version: ``state`` is not modified; the new state's arrays are fresh.
    """
    require_numba()
    e_count, n_count = state.num_envs, state.num_positions
    env = _pack_env(state, e_count)
    drv = np.empty((len(DRIVER_FIELDS), e_count))
    for j, a in enumerate(_DRIVER_GETTER(row)):
        drv[j] = a  # float64 conversion by assignment (booleans as 0 / 1)
    twap_in = _f64(state.twap_buffer_usd)
    twap_out = np.empty_like(twap_in)
    c = np.empty((e_count, n_count))
    d = np.empty((e_count, n_count))
    active = np.empty((e_count, n_count), dtype=np.bool_)
    ever = np.empty((e_count, n_count), dtype=np.bool_)
    rounds = np.empty(e_count)
    now_h = state.time_h + params.run.substep_h
    slot = int(state.substep_index) % int(params.market.twap_window_substeps)
    _substep_kernel(
        env, drv, _params_packed(params), pack_orders(orders, e_count), twap_in, twap_out, slot, now_h,
        _f64(state.collateral_asset), _f64(state.debt_usd), np.asarray(state.active, dtype=np.bool_),
        np.asarray(state.kind, dtype=np.int64), _f64(state.trigger_hf), _f64(state.react_prob),
        _f64(state.target_hf), np.asarray(state.repays, dtype=np.bool_),
        _f64(state.template_collateral_asset), _f64(state.template_hf),
        np.asarray(state.ever_liquidated, dtype=np.bool_), np.asarray(noise_u, dtype=np.float64),
        c, d, active, ever, rounds, e_count * n_count >= PARALLEL_MIN_POSITIONS,
    )  # fmt: skip
    rows = tuple(env)  # row views, made in C
    global _LAST_PACKED
    _LAST_PACKED = (env, rows)
    changes: dict[str, Any] = dict(zip(ENV_FIELDS, rows, strict=True))
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


__all__ = [
    "HAVE_NUMBA",
    "NR",
    "compile_rules",
    "rules_cache_dir",
    "fused_substep",
    "pack_orders",
    "pack_params",
    "require_numba",
    "packed_substep_kernel",
    "substep_env",
    "substep_scratch",
    "POSB",
    "POSF",
]
