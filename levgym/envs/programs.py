"""The envs' step kernels (backend ``numba``): one kernel call per env step.

A step of a levgym env is: apply the action, run the engine's substeps (with the price tracker
after each), sum the step's flows, then compute the position aggregates, the reward and the
observation. On the array path (numpy and torch backends) that is tens of small array
operations per substep in Python. Here it is one numba call per step for the whole batch
(parallel over envs for large batches), working in place on the runner's packed buffers
(:mod:`levgym.engine.packed`):

- the engine part is :func:`levgym.engine.fused.substep_env`, the same kernel functions as the
  engine's fused substep;
- the env part calls the compiled formulas of :mod:`levgym.envs.formulas` (:data:`FR`), the same
  text the array path runs, so observations and rewards are written once;
- the aggregates are :func:`levgym.envs.kernels.aggregates_env`.

``tests/envs/test_programs.py`` checks the kernels against the array path.
"""

from __future__ import annotations

import numpy as np

from ..engine import fused as engine_fused
from ..engine.fused import NR, O_, compile_rules, rules_cache_dir, substep_env, substep_scratch
from ..engine.jit import SERIAL, njit, prange
from ..engine.schema import ENV_ROW
from . import formulas, kernels
from .kernels import aggregates_env, shortfall_env

F = ENV_ROW

with rules_cache_dir(formulas):
    FR = compile_rules(formulas, formulas.FORMULA_NAMES, base=NR)

# rows of the tracker-and-clock integer constants and of the float constants of a step kernel
ICONST = ("substeps", "slot0", "twap_window", "pos0", "ring", "lag_short", "lag_long", "horizon")
FCONST = ("time_h", "substep_h", "alpha_short", "alpha_long", "substeps_per_year")


def _scratch(thresholds: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover
    """Scratch of an env's aggregates over ``n`` positions: row 0 the debt below each
    threshold, rows 1-2 the scratch of :func:`levgym.envs.kernels.aggregates_env`."""
    return np.empty((3, max(thresholds.shape[0], n)))


def _tracker_update_env(
    e: int, prices: np.ndarray, var: np.ndarray, max_f: np.ndarray, filled: np.ndarray,
    pos_old: int, pos: int, f: float, pool: float, oracle: float, alpha_s: float,
    alpha_l: float,
) -> None:  # pragma: no cover  # fmt: skip
    """:meth:`levgym.envs.features.PriceTracker.update` for env ``e``."""
    r = FR.log_return(f, prices[0, e, pos_old])
    prices[0, e, pos] = f
    prices[1, e, pos] = pool
    prices[2, e, pos] = oracle
    filled[e] = min(filled[e] + 1, prices.shape[2])
    var[0, e] = FR.ewma_variance(var[0, e], r, alpha_s)
    var[1, e] = FR.ewma_variance(var[1, e], r, alpha_l)
    max_f[e] = max(max_f[e], f)


def _governance_observe_env(
    e: int, env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray,
    var: np.ndarray, max_f: np.ndarray, ic: np.ndarray, fc: np.ndarray,
    thresholds: np.ndarray, low: np.ndarray, high: np.ndarray, obs: np.ndarray,
    scratch: np.ndarray,
) -> tuple[float, float, float]:  # pragma: no cover  # fmt: skip
    """Env ``e``'s observation into ``obs[e]`` (clipped to ``[low, high]``, NaN as 0).
    Returns its (total debt, total collateral, shortfall) aggregates."""
    ring = ic[4]
    pos = (ic[3] + ic[0]) % ring
    below = scratch[0]
    acc = scratch[1:]
    o = env[F.oracle_usd, e]
    dp = env[F.debt_price_usd, e]
    total_debt, total_coll, shortfall = aggregates_env(
        posf[0, e], posf[1, e], o, env[F.liquidation_threshold, e], dp, thresholds, below,
        acc,
    )  # fmt: skip
    now = prices[0, e, pos]
    market = FR.governance_market_features(
        FR.log_return(now, prices[0, e, (pos - ic[5]) % ring]),
        FR.log_return(now, prices[0, e, (pos - ic[6]) % ring]),
        var[0, e], var[1, e], max_f[e], fc[4], env[F.fundamental_usd, e], o,
        env[F.pool_asset, e], env[F.pool_debt, e], dp, total_debt, total_coll,
        env[F.supply_usd, e], env[F.base_rate_apr, e], env[F.slope1_apr, e],
        env[F.slope2_apr, e], env[F.optimal_utilization_frac, e],
    )  # fmt: skip
    book = FR.governance_book_features(
        total_debt, dp, below[0], below[1], below[2], below[3], below[4], below[5], below[6],
        env[F.bad_debt_usd, e], env[F.reserves_usd, e], env[F.initial_collateral_asset, e],
        env[F.fundamental_start_usd, e], env[F.gas_gwei, e], env[F.ltv, e],
        env[F.liquidation_threshold, e], env[F.liquidation_bonus, e], env[F.slope1_apr, e],
        env[F.slope2_apr, e], 1.0 - t[e] / ic[7],
    )  # fmt: skip
    j = 0
    for v in market:  # np.clip to the bounds, then NaN as 0 (the env's _store_observation)
        obs[e, j] = 0.0 if v != v else min(max(v, low[j]), high[j])
        j += 1
    for v in book:
        obs[e, j] = 0.0 if v != v else min(max(v, low[j]), high[j])
        j += 1
    return total_debt, total_coll, shortfall


def _governance_step_env(
    e: int, env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, var: np.ndarray, max_f: np.ndarray, filled: np.ndarray,
    ic: np.ndarray, fc: np.ndarray, actions: np.ndarray, lim: np.ndarray, w: np.ndarray,
    thresholds: np.ndarray, low: np.ndarray, high: np.ndarray, obs: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    """One Governance step of env ``e`` (``GovernanceVectorEnv._advance`` and ``_observe``);
    the cascade rounds of its substeps are summed into ``step_rounds[e]``."""
    scratch = _scratch(thresholds, posf.shape[2])
    fscratch, iscratch = substep_scratch(posf.shape[2])
    # the shortfall before the step (the projection changes parameters only)
    shortfall0 = shortfall_env(
        posf[0, e], posf[1, e], env[F.oracle_usd, e], env[F.debt_price_usd, e]
    )
    ltv, lt, bonus, s1, s2 = FR.steward_projection(
        env[F.ltv, e], env[F.liquidation_threshold, e], env[F.liquidation_bonus, e],
        env[F.slope1_apr, e], env[F.slope2_apr, e], actions[e, 0], actions[e, 1],
        actions[e, 2], actions[e, 3], lim[0], lim[1], lim[2], lim[3], lim[4], lim[5], lim[6],
        lim[7], lim[8], lim[9], lim[10], lim[11], lim[12], lim[13], lim[14], lim[15],
    )  # fmt: skip
    env[F.ltv, e] = ltv
    env[F.liquidation_threshold, e] = lt
    env[F.liquidation_bonus, e] = bonus
    env[F.slope1_apr, e] = s1
    env[F.slope2_apr, e] = s2
    revenue0 = env[F.reserve_income_usd, e] + env[F.protocol_fee_usd, e]
    bad0 = env[F.bad_debt_usd, e]
    liqs0 = env[F.liquidations, e]
    liquidated0 = env[F.repaid_by_liquidators_usd, e]
    revenue_value = 0.0
    liq_loss = 0.0
    now_h = fc[0]
    ring = ic[4]
    for k in range(ic[0]):
        seized0 = env[F.seized_collateral_asset, e]
        repaid0 = env[F.repaid_by_liquidators_usd, e]
        reserve0 = env[F.reserve_income_usd, e]
        fee0 = env[F.protocol_fee_usd, e]
        now_h = now_h + fc[1]
        substep_env(
            e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
            (ic[1] + k) % ic[2], now_h, fscratch, iscratch,
        )  # fmt: skip
        step_rounds[e] += rounds[e]
        dp = env[F.debt_price_usd, e]
        oracle = env[F.oracle_usd, e]
        _tracker_update_env(
            e, prices, var, max_f, filled, (ic[3] + k) % ring, (ic[3] + k + 1) % ring,
            env[F.fundamental_usd, e], NR.pool_price_usd(env[F.pool_asset, e], env[F.pool_debt, e], dp),
            oracle, fc[2], fc[3],
        )  # fmt: skip
        revenue_value, liq_loss = FR.governance_substep_flows(
            revenue_value, liq_loss, reserve0, fee0, seized0, repaid0,
            env[F.reserve_income_usd, e], env[F.protocol_fee_usd, e],
            env[F.seized_collateral_asset, e], env[F.repaid_by_liquidators_usd, e], oracle, dp,
        )  # fmt: skip
    total_debt, total_coll, shortfall = _governance_observe_env(
        e, env, posf, t, prices, var, max_f, ic, fc, thresholds, low, high, obs, scratch
    )
    dp = env[F.debt_price_usd, e]
    tvl = env[F.initial_collateral_asset, e] * env[F.fundamental_start_usd, e]
    revenue = env[F.reserve_income_usd, e] + env[F.protocol_fee_usd, e] - revenue0
    bad = (env[F.bad_debt_usd, e] - bad0) * dp
    parts = FR.governance_reward(
        revenue, bad, shortfall, shortfall0, dp, liq_loss, ltv,
        total_coll * env[F.oracle_usd, e], tvl, env[F.lender_loss_usd, e],
        env[F.reserves_usd, e], w[0], w[1], w[2], w[3], w[4], w[5],
    )  # fmt: skip
    # the rows of GOVERNANCE_OUTPUTS
    out[0, e] = parts[0]
    out[1, e] = 1.0 if parts[9] else 0.0
    out[2, e] = revenue
    out[3, e] = revenue_value
    out[4, e] = bad
    out[5, e] = shortfall * dp
    out[6, e] = parts[5]
    out[7, e] = liq_loss
    out[8, e] = parts[6]
    out[9, e] = parts[1]
    out[10, e] = parts[2]
    out[11, e] = parts[3]
    out[12, e] = parts[4]
    out[13, e] = env[F.liquidations, e] - liqs0
    out[14, e] = (env[F.repaid_by_liquidators_usd, e] - liquidated0) * dp
    out[15, e] = parts[7]
    out[16, e] = tvl
    out[17, e] = ltv
    out[18, e] = lt
    out[19, e] = bonus
    out[20, e] = s1
    out[21, e] = s2


def _governance_step(
    env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, var: np.ndarray, max_f: np.ndarray, filled: np.ndarray,
    ic: np.ndarray, fc: np.ndarray, actions: np.ndarray, lim: np.ndarray, w: np.ndarray,
    thresholds: np.ndarray, low: np.ndarray, high: np.ndarray, obs: np.ndarray,
    out: np.ndarray, threads: int,
) -> None:  # pragma: no cover  # fmt: skip
    num_envs = env.shape[1]
    for e in range(num_envs):  # a loop: an array expression would be a parallel region
        step_rounds[e] = 0.0
    if threads != SERIAL:
        for e in prange(num_envs):
            _governance_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, var, max_f, filled, ic, fc, actions, lim, w, thresholds, low, high,
                obs, out,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            _governance_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, var, max_f, filled, ic, fc, actions, lim, w, thresholds, low, high,
                obs, out,
            )  # fmt: skip


def _governance_observe(
    env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray, var: np.ndarray,
    max_f: np.ndarray, ic: np.ndarray, fc: np.ndarray, thresholds: np.ndarray,
    low: np.ndarray, high: np.ndarray, obs: np.ndarray, envs: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    scratch = _scratch(thresholds, posf.shape[2])
    for e in envs:  # the envs whose observation is wanted (all, or those that restarted)
        _governance_observe_env(
            e, env, posf, t, prices, var, max_f, ic, fc, thresholds, low, high, obs, scratch
        )


# ----------------------------------------------------------------------------- Liquidator

# rows of the Liquidator's agent array [len(AGENT), E]
AGENT = ("cash_usd", "inventory_asset", "perp_asset", "perp_mark_usd", "equity_usd", "basis_frac")
# its constants, in the order of the kernel's `lc` array
LIQUIDATOR_CONSTANTS = (
    "max_share_frac", "max_hedge_ratio", "perp_fee_frac", "basis_mean_frac", "basis_beta",
    "funding_frac", "credit_rate_apr", "year_frac", "sqrt_year_frac", "risk_aversion",
    "reward_scale", "initial_cash_usd", "pool_fee_frac", "sale_in_block", "max_hedge_deviation",
    "hedge_on_inventory",
)  # fmt: skip


def _liquidator_observe_env(
    e: int, env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray,
    var: np.ndarray, max_f: np.ndarray, agent: np.ndarray, ic: np.ndarray, fc: np.ndarray,
    lc: np.ndarray, thresholds: np.ndarray, low: np.ndarray, high: np.ndarray,
    obs: np.ndarray, scratch: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    """Env ``e``'s Liquidator observation into ``obs[e]`` (clipped, NaN as 0)."""
    ring = ic[4]
    pos = (ic[3] + ic[0]) % ring
    below = scratch[0]
    acc = scratch[1:]
    o = env[F.oracle_usd, e]
    dp = env[F.debt_price_usd, e]
    total_debt, total_coll, _ = aggregates_env(
        posf[0, e], posf[1, e], o, env[F.liquidation_threshold, e], dp, thresholds, below,
        acc,
    )  # fmt: skip
    now = prices[0, e, pos]
    feats = FR.liquidator_features(
        FR.log_return(now, prices[0, e, (pos - ic[5]) % ring]),
        FR.log_return(now, prices[0, e, (pos - ic[6]) % ring]),
        var[0, e], var[1, e], max_f[e], fc[4], env[F.fundamental_usd, e], o,
        env[F.pool_asset, e], env[F.pool_debt, e], dp, total_debt, total_coll,
        env[F.supply_usd, e], env[F.gas_gwei, e], env[F.liquidation_bonus, e], below[0],
        below[1], below[2], below[3], agent[1, e], agent[2, e], agent[0, e], agent[4, e],
        agent[5, e], lc[11], 1.0 - t[e] / ic[7],
    )  # fmt: skip
    j = 0
    for v in feats:
        obs[e, j] = 0.0 if v != v else min(max(v, low[j]), high[j])
        j += 1


def _liquidator_step_env(
    e: int, env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, var: np.ndarray, max_f: np.ndarray,
    filled: np.ndarray, agent: np.ndarray, ic: np.ndarray, fc: np.ndarray, lc: np.ndarray,
    actions: np.ndarray, thresholds: np.ndarray, low: np.ndarray, high: np.ndarray,
    obs: np.ndarray, out: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    """One Liquidator step (one substep) of env ``e`` (``LiquidatorVectorEnv._advance`` and
    ``_observe``)."""
    scratch = _scratch(thresholds, posf.shape[2])
    fscratch, iscratch = substep_scratch(posf.shape[2])
    take, sell, hedge = FR.liquidator_action(
        actions[e, 0], actions[e, 1], actions[e, 2], lc[0], lc[1], lc[14], lc[15]
    )
    cash, inventory, perp = agent[0, e], agent[1, e], agent[2, e]
    sold = sell * inventory
    proceeds = 0.0
    slippage = 0.0
    in_block = lc[13] != 0.0
    if not in_block:
        # v0: the sale goes into the pool before the block, outside the engine's orders
        pa, pd = env[F.pool_asset, e], env[F.pool_debt, e]
        pool_a, pool_d, got = NR.sell_asset(pa, pd, sold, lc[12])
        env[F.pool_asset, e] = pool_a
        env[F.pool_debt, e] = pool_d
        env[F.agent_sold_asset, e] = env[F.agent_sold_asset, e] + sold
        env[F.agent_sale_debt, e] = env[F.agent_sale_debt, e] + got
        env[F.agent_sale_mid_debt, e] = env[F.agent_sale_mid_debt, e] + sold * (pd / pa)
        dp = env[F.debt_price_usd, e]
        proceeds = got * dp
        cash, inventory, slippage = FR.liquidator_sale(
            cash, inventory, sold, proceeds, sold * (pd / pa * dp)
        )
    # 1. the hedge, at the perp price before the block (the fundamental)
    p0 = env[F.fundamental_usd, e]
    pool_now = NR.pool_price_usd(
        env[F.pool_asset, e], env[F.pool_debt, e], env[F.debt_price_usd, e]
    )
    cash, perp, settle, perp_fee = FR.liquidator_hedge(
        cash, inventory, perp, agent[3, e], p0, pool_now, hedge, lc[2], lc[15]
    )
    # 2. the block, with the agent's orders
    orders[O_.claim_share_frac, e] = take
    orders[O_.sell_asset, e] = sold if in_block else 0.0
    sale0 = env[F.agent_sale_debt, e]
    mid0 = env[F.agent_sale_mid_debt, e]
    seized0 = env[F.agent_seized_asset, e]
    repaid0 = env[F.agent_repaid_usd, e]
    gas0 = env[F.agent_gas_usd, e]
    ring = ic[4]
    substep_env(
        e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
        ic[1] % ic[2], fc[0] + fc[1], fscratch, iscratch,
    )  # fmt: skip
    step_rounds[e] = rounds[e]
    dp = env[F.debt_price_usd, e]
    fund = env[F.fundamental_usd, e]
    pool_usd = NR.pool_price_usd(env[F.pool_asset, e], env[F.pool_debt, e], dp)
    _tracker_update_env(
        e, prices, var, max_f, filled, ic[3] % ring, (ic[3] + 1) % ring, fund, pool_usd,
        env[F.oracle_usd, e], fc[2], fc[3],
    )  # fmt: skip
    if in_block:
        proceeds = (env[F.agent_sale_debt, e] - sale0) * dp
        cash, inventory, slippage = FR.liquidator_sale(
            cash, inventory, sold, proceeds, (env[F.agent_sale_mid_debt, e] - mid0) * dp
        )
    seized = env[F.agent_seized_asset, e] - seized0
    gas = env[F.agent_gas_usd, e] - gas0
    cash, inventory, repaid = FR.liquidator_fills(
        cash, inventory, seized, env[F.agent_repaid_usd, e] - repaid0, gas, dp
    )
    # 4-5. perp variation margin and funding, credit interest
    basis = FR.perp_basis(pool_usd, fund, lc[3], lc[4])
    cash, variation, funding, credit = FR.liquidator_carry(
        cash, perp, p0, fund, basis, lc[5], lc[6], lc[7]
    )
    reward, equity, pnl, penalty, terminated = FR.liquidator_reward(
        cash, inventory, perp, agent[4, e], pool_usd, fund,
        FR.annual_volatility(var[0, e], fc[4]), lc[8], lc[9], lc[10], lc[11],
    )  # fmt: skip
    agent[0, e] = cash
    agent[1, e] = inventory
    agent[2, e] = perp
    agent[3, e] = fund
    agent[4, e] = equity
    agent[5, e] = basis
    _liquidator_observe_env(
        e, env, posf, t, prices, var, max_f, agent, ic, fc, lc, thresholds, low, high, obs,
        scratch,
    )  # fmt: skip
    # the rows of LIQUIDATOR_OUTPUTS
    out[0, e] = reward
    out[1, e] = 1.0 if terminated else 0.0
    out[2, e] = equity
    out[3, e] = pnl
    out[4, e] = penalty
    out[5, e] = cash
    out[6, e] = inventory
    out[7, e] = perp
    out[8, e] = take
    out[9, e] = seized
    out[10, e] = repaid
    out[11, e] = gas
    out[12, e] = sold
    out[13, e] = proceeds
    out[14, e] = slippage
    out[15, e] = perp_fee
    out[16, e] = variation + settle
    out[17, e] = funding
    out[18, e] = -credit
    out[19, e] = basis


def _liquidator_step(
    env: np.ndarray, bank: np.ndarray, bank_rows: np.ndarray, t: np.ndarray, key: np.ndarray, P: np.ndarray,
    orders: np.ndarray, twap: np.ndarray, posf: np.ndarray, posb: np.ndarray,
    kind: np.ndarray, drv: np.ndarray, noise: np.ndarray, rounds: np.ndarray,
    step_rounds: np.ndarray, prices: np.ndarray, var: np.ndarray, max_f: np.ndarray,
    filled: np.ndarray, agent: np.ndarray, ic: np.ndarray, fc: np.ndarray, lc: np.ndarray,
    actions: np.ndarray, thresholds: np.ndarray, low: np.ndarray, high: np.ndarray,
    obs: np.ndarray, out: np.ndarray, threads: int,
) -> None:  # pragma: no cover  # fmt: skip
    num_envs = env.shape[1]
    if threads != SERIAL:
        for e in prange(num_envs):
            _liquidator_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, var, max_f, filled, agent, ic, fc, lc, actions,
                thresholds, low, high, obs, out,
            )  # fmt: skip
    else:
        for e in range(num_envs):
            _liquidator_step_env(
                e, env, bank, bank_rows, t, key, P, orders, twap, posf, posb, kind, drv, noise, rounds,
                step_rounds, prices, var, max_f, filled, agent, ic, fc, lc, actions,
                thresholds, low, high, obs, out,
            )  # fmt: skip


def _liquidator_observe(
    env: np.ndarray, posf: np.ndarray, t: np.ndarray, prices: np.ndarray, var: np.ndarray,
    max_f: np.ndarray, agent: np.ndarray, ic: np.ndarray, fc: np.ndarray, lc: np.ndarray,
    thresholds: np.ndarray, low: np.ndarray, high: np.ndarray, obs: np.ndarray, envs: np.ndarray,
) -> None:  # pragma: no cover  # fmt: skip
    scratch = _scratch(thresholds, posf.shape[2])
    for e in envs:  # the envs whose observation is wanted (all, or those that restarted)
        _liquidator_observe_env(
            e, env, posf, t, prices, var, max_f, agent, ic, fc, lc, thresholds, low, high, obs,
            scratch,
        )  # fmt: skip


LIQUIDATOR_OUTPUTS = (
    "reward",
    "terminated",
    "equity_usd",
    "pnl_usd",
    "inventory_penalty_usd",
    "cash_usd",
    "inventory_asset",
    "perp_asset",
    "take_frac",
    "seized_asset",
    "repaid_usd",
    "gas_usd",
    "sold_asset",
    "sale_proceeds_usd",
    "slippage_usd",
    "perp_fee_usd",
    "perp_variation_usd",
    "funding_usd",
    "credit_interest_usd",
    "basis_frac",
)


# the kernels below inline or link the engine's substep (fused.py) and the aggregates
# (kernels.py); numba's cache checks only this file, so their source joins the cache's key
with rules_cache_dir(formulas, engine_fused, kernels):
    _scratch = njit(cache=True, inline="always")(_scratch)
    _tracker_update_env = njit(cache=True, inline="always")(_tracker_update_env)
    _governance_observe_env = njit(cache=True)(_governance_observe_env)
    _governance_step_env = njit(cache=True)(_governance_step_env)
    governance_step = njit(cache=True, parallel=True)(_governance_step)
    governance_observe = njit(cache=True)(_governance_observe)
    _liquidator_observe_env = njit(cache=True)(_liquidator_observe_env)
    _liquidator_step_env = njit(cache=True)(_liquidator_step_env)
    liquidator_step = njit(cache=True, parallel=True)(_liquidator_step)
    liquidator_observe = njit(cache=True)(_liquidator_observe)

# the rows of the governance step kernel's `out` array
GOVERNANCE_OUTPUTS = (
    "reward",
    "terminated",
    "revenue_usd",
    "revenue_value_usd",
    "bad_debt_usd",
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
    "ltv",
    "liquidation_threshold",
    "liquidation_bonus",
    "slope1_apr",
    "slope2_apr",
)

__all__ = [
    "AGENT",
    "FCONST",
    "FR",
    "GOVERNANCE_OUTPUTS",
    "ICONST",
    "LIQUIDATOR_CONSTANTS",
    "LIQUIDATOR_OUTPUTS",
    "governance_observe",
    "governance_step",
    "liquidator_observe",
    "liquidator_step",
]
