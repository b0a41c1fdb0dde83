"""The envs' own formulas (actions, rewards, observations), each written once.

Like :mod:`levgym.engine.rules`, every function here is written with arithmetic and the
operations of :mod:`levgym.engine.ops` only, so the same text runs on arrays (``[E]`` numpy or
torch: the envs' array path, used by the numpy and torch backends) and, compiled by numba with
scalar operations (:data:`FR`), per env inside the envs' step kernels
(:mod:`levgym.envs.programs`, the numba backend). A single env and a vector env, and every
backend, therefore compute their observations and rewards from the same lines.

The rules of the market (prices, interest, health factors) come from the engine's rules; the
functions here only combine their results. A call takes at most 30 arguments (CPython passes
more as ``*args``, which numba cannot inline).
"""

from __future__ import annotations

from typing import Any

from ..engine.ops import abs_, and_, clip, log, maximum, minimum, not_, or_, sqrt, where
from ..engine.rules import borrow_rate_apr, pool_price_usd, utilization

Num = Any


# ----------------------------------------------------------------------------- price tracker


def ewma_variance(var: Num, log_return: Num, alpha: Num) -> Num:
    """The tracker's exponentially weighted variance after a substep's log return."""
    return var + alpha * (log_return * log_return - var)


def annual_volatility(var: Num, substeps_per_year: Num) -> Num:
    """Annualized volatility of a per-substep variance."""
    return sqrt(var * substeps_per_year)


# ----------------------------------------------------------------------------- Governance


def steward_projection(
    ltv: Num, lt: Num, bonus: Num, slope1: Num, slope2: Num,
    a_lt: Num, a_gap: Num, a_bonus: Num, a_slope: Num,
    lt_step: float, gap_step: float, bonus_step: float, slope1_step: float, slope2_step: float,
    lt_min: float, lt_max: float, gap_min: float, gap_max: float, bonus_min: float,
    bonus_max: float, slope1_min: float, slope1_max: float, slope2_min: float,
    slope2_max: float, margin: float,
) -> tuple[Num, Num, Num, Num, Num]:  # fmt: skip
    """(LTV, LT, bonus, slope1, slope2) after a governance action; the steps of
    :func:`levgym.envs.governance.project_params`."""
    a_lt = clip(a_lt, -1.0, 1.0)
    a_gap = clip(a_gap, -1.0, 1.0)
    a_bonus = clip(a_bonus, -1.0, 1.0)
    a_slope = clip(a_slope, -1.0, 1.0)
    gap = clip(lt - ltv + a_gap * gap_step, gap_min, gap_max)
    new_lt = clip(lt + a_lt * lt_step, lt_min, lt_max)
    new_bonus = clip(bonus + a_bonus * bonus_step, bonus_min, bonus_max)
    s1 = clip(slope1 + a_slope * slope1_step, slope1_min, slope1_max)
    s2 = clip(slope2 + a_slope * slope2_step, slope2_min, slope2_max)
    new_lt = minimum(new_lt, (1.0 - margin) / (1.0 + new_bonus))
    return new_lt - gap, new_lt, new_bonus, s1, s2


def governance_substep_flows(
    revenue_value: Num, liq_loss: Num,
    reserve_income0: Num, fee0: Num, seized0: Num, repaid0: Num,
    reserve_income: Num, fee: Num, seized: Num, repaid: Num, oracle: Num, debt_price: Num,
) -> tuple[Num, Num]:  # fmt: skip
    """The step's running (revenue valued in USD, users' liquidation loss) after one substep:
    reserve income at this substep's debt price plus the fee; collateral value seized beyond
    the debt repaid (the bonus users lose)."""
    revenue_value = revenue_value + (reserve_income - reserve_income0) * debt_price + (fee - fee0)
    loss = (seized - seized0) * oracle - (repaid - repaid0) * debt_price
    return revenue_value, liq_loss + loss


def governance_reward_mix(
    revenue: Num, economic_bad: Num, liq_loss: Num, capacity: Num, tvl: Num, w_bad_debt: float,
    w_liquidation: float, w_efficiency: float, reward_scale: float,
) -> tuple[Num, Num, Num, Num, Num]:  # fmt: skip
    """The governors' reward from its parts in USD (the Rewards section of Governance-v0, v1
    and PortfolioGovernance-v0): (reward, revenue part, bad-debt part, liquidation part,
    efficiency part), each ``reward_scale / tvl`` times its weighted USD amount."""
    scale = reward_scale / tvl
    r_rev = scale * revenue
    r_bad = -scale * w_bad_debt * economic_bad
    r_liq = -scale * w_liquidation * liq_loss
    r_eff = scale * w_efficiency * capacity
    return r_rev + r_bad + r_liq + r_eff, r_rev, r_bad, r_liq, r_eff


def governance_reward(
    revenue: Num, bad: Num, shortfall: Num, shortfall0: Num, debt_price: Num, liq_loss: Num,
    ltv: Num, collateral_value: Num, tvl: Num, lender_loss: Num, reserves: Num,
    year_frac: float, w_bad_debt: float, w_liquidation: float, w_efficiency: float,
    reward_scale: float, insolvency_tolerance_frac: float,
) -> tuple[Num, Num, Num, Num, Num, Num, Num, Num, Num, Num]:  # fmt: skip
    """Governance-v0's reward and its parts (its docstring's Rewards section):
    (reward, revenue part, bad-debt part, liquidation part, efficiency part, economic bad debt
    USD, borrow capacity USD, lenders' loss USD, uncovered shortfall USD, terminated)."""
    economic_bad = bad + (shortfall - shortfall0) * debt_price
    capacity = ltv * collateral_value * year_frac
    reward, r_rev, r_bad, r_liq, r_eff = governance_reward_mix(
        revenue, economic_bad, liq_loss, capacity, tvl, w_bad_debt, w_liquidation, w_efficiency,
        reward_scale,
    )  # fmt: skip
    lender_loss_usd = lender_loss * debt_price
    uncovered = maximum(shortfall * debt_price - reserves * debt_price, 0.0)
    terminated = lender_loss_usd + uncovered > insolvency_tolerance_frac * tvl
    return (
        reward, r_rev, r_bad, r_liq, r_eff, economic_bad, capacity, lender_loss_usd, uncovered,
        terminated,
    )  # fmt: skip


def _share(below: Num, debt_value: Num) -> Num:
    return where(debt_value > 0, below / where(debt_value > 0, debt_value, 1.0), 0.0)


def debt_hf_shares(
    debt_value: Num, b_100: Num, b_105: Num, b_125: Num, b_150: Num, b_200: Num,
    b_shock10: Num, b_shock25: Num,
) -> tuple:  # fmt: skip
    """The book's debt by health-factor bucket as shares of its debt value ``debt_value`` (USD):
    below 1, 1-1.05, 1.05-1.25, 1.25-1.5, 1.5-2, above 2, and below 1 after a 10% and a 25%
    oracle fall (``b_*``: the debt, USD, below each threshold). Governance-v0's and v1's book
    features both start with these."""
    s0 = _share(b_100, debt_value)
    s1 = _share(b_105, debt_value)
    s2 = _share(b_125, debt_value)
    s3 = _share(b_150, debt_value)
    s4 = _share(b_200, debt_value)
    return (
        s0,
        s1 - s0,
        s2 - s1,
        s3 - s2,
        s4 - s3,
        where(debt_value > 0, 1.0 - s4, 0.0),
        _share(b_shock10, debt_value),
        _share(b_shock25, debt_value),
    )


def governance_market_features(
    r_1h: Num, r_24h: Num, var_short: Num, var_long: Num, max_fundamental: Num,
    substeps_per_year: float, fundamental: Num, oracle: Num, pool_asset: Num, pool_debt: Num,
    debt_price: Num, total_debt: Num, total_collateral: Num, supply: Num, base_rate: Num,
    slope1: Num, slope2: Num, optimal: Num,
) -> tuple:  # fmt: skip
    """Governance-v0's features 0-10 (``return_1h`` .. ``aggregate_ltv``) before clipping to the
    observation bounds; ``r_1h`` / ``r_24h`` are the tracker's log returns."""
    coll_value = total_collateral * oracle
    safe_coll = where(coll_value > 0, coll_value, 1.0)
    util = utilization(total_debt, supply)
    return (
        10.0 * r_1h,
        10.0 * r_24h,
        annual_volatility(var_short, substeps_per_year),
        annual_volatility(var_long, substeps_per_year),
        1.0 - fundamental / max_fundamental,
        10.0 * (oracle / fundamental - 1.0),
        10.0 * (pool_price_usd(pool_asset, pool_debt, debt_price) / fundamental - 1.0),
        pool_debt * debt_price / safe_coll,
        util,
        borrow_rate_apr(util, base_rate, slope1, slope2, optimal),
        total_debt * debt_price / safe_coll,
    )


def governance_book_features(
    total_debt: Num, debt_price: Num,
    b_100: Num, b_105: Num, b_125: Num, b_150: Num, b_200: Num, b_shock10: Num, b_shock25: Num,
    bad_debt: Num, reserves: Num, initial_collateral: Num, fundamental_start: Num, gas: Num,
    ltv: Num, lt: Num, bonus: Num, slope1: Num, slope2: Num, time_left: Num,
) -> tuple:  # fmt: skip
    """Governance-v0's features 11-27 (``debt_hf_below_1`` .. ``time_left``) before clipping;
    ``b_*`` are the debt (USD) below each health-factor threshold."""
    debt_value = total_debt * debt_price
    tvl = initial_collateral * fundamental_start
    return debt_hf_shares(debt_value, b_100, b_105, b_125, b_150, b_200, b_shock10, b_shock25) + (
        100.0 * bad_debt * debt_price / tvl,
        100.0 * reserves * debt_price / tvl,
        gas / 100.0,
        ltv,
        lt,
        10.0 * bonus,
        slope1,
        slope2,
        time_left,
    )


# ----------------------------------------------------------------------------- the steward's levers
# The rows of :class:`levgym.envs.steward.StewardSchema` (Governance-v1, PortfolioGovernance-v0):
# one lever of one batch entry per call, on arrays (:meth:`StewardSchema.apply`) or compiled per
# env in Governance-v1's step kernel (:mod:`levgym.envs.steward_program`).


def steward_ready(now_h: Num, last_change_h: Num, on_since_h: Num, cooldown_h: Num) -> Num:
    """Whether a lever may change now: its cool-down has passed since its last change, or it
    is a switch that is on (``on_since_h`` not NaN: it may always go off)."""
    return or_(now_h - last_change_h >= cooldown_h - 1e-9, on_since_h == on_since_h)


def steward_switch(
    value: Num, a: Num, now_h: Num, last_change_h: Num, on_since_h: Num, cooldown_h: Num,
    deadband: Num, max_on_h: Num,
) -> Num:  # fmt: skip
    """A switch lever's new value (1 on, 0 off) after its action ``a``: on while ``a >
    deadband``; it goes on only when ready (:func:`steward_ready`) and off by itself after
    ``max_on_h`` hours on."""
    was_on = value != 0.0
    want_on = a > deadband
    ready = steward_ready(now_h, last_change_h, on_since_h, cooldown_h)
    expired = and_(was_on, now_h - on_since_h >= max_on_h - 1e-9)
    on = where(was_on, and_(want_on, not_(expired)), and_(want_on, ready))
    return where(on, 1.0, 0.0)


def steward_level(
    old: Num, a: Num, now_h: Num, last_change_h: Num, on_since_h: Num, cooldown_h: Num,
    deadband: Num, step_up: Num, step_down: Num, relative: Num, low: Num, high: Num,
) -> Num:  # fmt: skip
    """A level lever's new value after its action ``a`` (clipped to ``[-1, 1]`` by the caller):
    ``f = (|a| - deadband) / (1 - deadband)`` of the step up (``a > 0``) or down, times the
    value when ``relative`` (non-zero), within ``[low, high]``; unchanged unless ready."""
    ready = steward_ready(now_h, last_change_h, on_since_h, cooldown_h)
    f = clip((abs_(a) - deadband) / (1.0 - deadband), 0.0, 1.0)
    size = where(a > 0, step_up, -step_down) * f
    delta = where(relative != 0.0, size * old, size)
    moved = minimum(maximum(old + delta, low), high)
    return where(and_(ready, f > 0), moved, old)


def risk_projection(ltv: Num, lt: Num, bonus: Num, margin: float) -> tuple[Num, Num]:
    """``(ltv, lt)`` projected so that ``LT * (1 + bonus) <= 1 - margin`` (LT gives way to the
    bonus: liquidators stay paid) and ``LTV <= LT``."""
    lt = minimum(lt, (1.0 - margin) / (1.0 + bonus))
    return minimum(ltv, lt), lt


def steward_changed(new: Num, old: Num, tol: Num) -> Num:
    """Whether a lever moved: by more than ``tol`` relative to ``max(|old|, 1)``."""
    return abs_(new - old) > tol * maximum(abs_(old), 1.0)


def steward_cooldown_left(now_h: Num, last_change_h: Num, on_since_h: Num, cooldown_h: Num) -> Num:
    """Share of a lever's cool-down still to run, in [0, 1] (0: ready; 0 while a switch is on)."""
    left = cooldown_h - (now_h - last_change_h)
    share = where(cooldown_h > 0, left / where(cooldown_h > 0, cooldown_h, 1.0), 0.0)
    share = where(on_since_h == on_since_h, 0.0, share)
    return clip(share, 0.0, 1.0)


def lever_position(value: Num, low: Num, high: Num) -> Num:
    """A level lever's value as its position within its bounds (0 low, 1 high; 0 if they meet)."""
    span = high - low
    return where(span > 0, (value - low) / where(span > 0, span, 1.0), 0.0)


def steward_substep_flows(
    revenue: Num, liquidated: Num, bad: Num, liq_loss: Num,
    reserve_income0: Num, fee0: Num, repaid0: Num, bad_debt0: Num, seized0: Num,
    reserve_income: Num, fee: Num, repaid: Num, bad_debt: Num, seized: Num, oracle: Num,
    debt_price: Num,
) -> tuple[Num, Num, Num, Num]:  # fmt: skip
    """Governance-v1's running (revenue USD, debt liquidated USD, bad debt written off USD,
    users' liquidation loss USD) after one substep: every debt-side amount in USD at this
    substep's debt price (v0's :func:`governance_substep_flows` added reserve income in
    debt-asset units to fees in USD)."""
    repaid_usd = (repaid - repaid0) * debt_price
    return (
        revenue + ((reserve_income - reserve_income0) * debt_price + (fee - fee0)),
        liquidated + repaid_usd,
        bad + (bad_debt - bad_debt0) * debt_price,
        liq_loss + ((seized - seized0) * oracle - repaid_usd),
    )


def steward_capacity(
    ltv: Num, collateral_value: Num, borrow_cap: Num, debt_price: Num, frozen: Num
) -> Num:
    """Borrowing the parameters allow now (USD): LTV times the collateral value, at most the
    borrow cap, none while new borrowing is frozen (``frozen`` non-zero)."""
    cap = minimum(ltv * collateral_value, borrow_cap * debt_price)
    return where(frozen != 0.0, 0.0, cap)


def toxic_debt(
    collateral: Num, debt: Num, oracle: Num, debt_price: Num, bonus: Num
) -> tuple[Num, Num]:
    """A position's debt value (USD) if it is toxic (collateral value at the oracle below ``1 +
    bonus`` times the debt: a liquidation lowers its HF), else 0; and the same after a 10%
    oracle fall."""
    dv = debt * debt_price
    cv = collateral * oracle
    line = (1.0 + bonus) * dv
    live = dv > 0
    return where(and_(live, cv < line), dv, 0.0), where(and_(live, 0.9 * cv < line), dv, 0.0)


def steward_book_features(
    total_debt: Num, total_collateral: Num, debt_price: Num,
    b_100: Num, b_105: Num, b_125: Num, b_150: Num, b_200: Num, b_shock10: Num, b_shock25: Num,
    toxic: Num, toxic_10: Num, initial_collateral: Num, initial_debt: Num, supply_cap: Num,
    borrow_cap: Num, bad_debt: Num, shortfall: Num, reserves: Num, tvl: Num,
) -> tuple:  # fmt: skip
    """Governance-v1's features 12-28 (``debt_hf_below_1`` .. ``reserves``) before clipping;
    ``b_*`` are the debt (USD) below each health-factor threshold, ``toxic*`` the toxic debt
    (USD, :func:`toxic_debt` summed)."""
    debt_value = total_debt * debt_price
    safe_debt = where(debt_value > 0, debt_value, 1.0)
    return debt_hf_shares(debt_value, b_100, b_105, b_125, b_150, b_200, b_shock10, b_shock25) + (
        toxic / safe_debt,
        toxic_10 / safe_debt,
        total_collateral / where(initial_collateral > 0, initial_collateral, 1.0),
        total_debt / where(initial_debt > 0, initial_debt, 1.0),
        where(supply_cap > 0, total_collateral / where(supply_cap > 0, supply_cap, 1.0), 2.0),
        where(borrow_cap > 0, total_debt / where(borrow_cap > 0, borrow_cap, 1.0), 2.0),
        100.0 * bad_debt * debt_price / tvl,
        100.0 * shortfall * debt_price / tvl,
        100.0 * reserves * debt_price / tvl,
    )


# ----------------------------------------------------------------------------- Liquidator


def perp_basis(pool_usd: Num, fundamental_usd: Num, mean_frac: Num, beta: Num) -> Num:
    """Premium of the perpetual over the fundamental: ``mean_frac + beta * (pool / fundamental - 1)``.

    Perps trade at a small premium in calm markets (longs pay shorts); when liquidations push
    the on-chain pool below the fundamental, the perp is sold too and trades at a discount, so
    holding a short costs funding exactly when it pays off.
    """
    return mean_frac + beta * (pool_usd / fundamental_usd - 1.0)


def liquidator_action(
    a_take: Num, a_sell: Num, a_hedge: Num, max_share_frac: float, max_hedge_ratio: float,
    max_hedge_deviation: float, hedge_on_inventory: float,
) -> tuple[Num, Num, Num]:  # fmt: skip
    """(claim share, share of the inventory to sell, hedge ratio) of a Liquidator action.

    The hedge ratio is ``(a + 1) / 2 * max_hedge_ratio`` (of the equity; Liquidator-v0/v1,
    ``hedge_on_inventory`` 0) or ``1 + a * max_hedge_deviation`` (of the inventory;
    Liquidator-v2, ``hedge_on_inventory`` 1): see :func:`liquidator_hedge`."""
    return (
        0.5 * (a_take + 1.0) * max_share_frac,
        0.5 * (a_sell + 1.0),
        where(
            hedge_on_inventory != 0.0,
            1.0 + a_hedge * max_hedge_deviation,
            0.5 * (a_hedge + 1.0) * max_hedge_ratio,
        ),
    )


def liquidator_sale(
    cash: Num, inventory: Num, sold: Num, proceeds_usd: Num, mid_usd: Num
) -> tuple[Num, Num, Num]:
    """(cash, inventory, slippage USD) after selling ``sold`` of the inventory for
    ``proceeds_usd``; the slippage is against the value ``mid_usd`` at the pool's mid price."""
    return cash + proceeds_usd, inventory - sold, mid_usd - proceeds_usd


def liquidator_hedge(
    cash: Num, inventory: Num, perp: Num, mark: Num, price: Num, pool_usd: Num, hedge: Num,
    fee_frac: float, hedge_on_inventory: float,
) -> tuple[Num, Num, Num, Num]:  # fmt: skip
    """Rebalance the perp hedge at ``price``, settling from its last ``mark`` first: (cash, new
    perp position, settlement USD, fee USD). The target is a short of ``hedge`` times the
    equity (cash plus inventory at the pool price, floored at 0) when ``hedge_on_inventory`` is
    0 (Liquidator-v0/v1), or of ``hedge`` times the inventory (``hedge`` 1: a short of exactly
    the asset held, the perp notional equal to the inventory at ``price``) when it is 1
    (Liquidator-v2)."""
    settle = perp * (price - mark)
    cash = cash + settle
    equity_now = cash + inventory * pool_usd
    base_usd = where(hedge_on_inventory != 0.0, inventory * price, maximum(equity_now, 0.0))
    target = -hedge * base_usd / price
    fee = fee_frac * abs_(target - perp) * price
    return cash - fee, target, settle, fee


def liquidator_fills(
    cash: Num, inventory: Num, seized: Num, repaid_debt: Num, gas_usd: Num, debt_price: Num
) -> tuple[Num, Num, Num]:
    """(cash, inventory, repaid USD) after the block's liquidations: the seized collateral
    joins the inventory, the repaid debt and the gas leave the cash."""
    repaid = repaid_debt * debt_price
    return cash - (repaid + gas_usd), inventory + seized, repaid


def liquidator_carry(
    cash: Num, perp: Num, price0: Num, price1: Num, basis: Num, funding_frac: float,
    credit_rate_apr: float, year_frac: float,
) -> tuple[Num, Num, Num]:  # fmt: skip
    """(cash, variation margin USD, funding USD, credit interest USD) over the step: the perp's
    variation margin from ``price0`` to ``price1``, funding (longs pay shorts ``basis`` times the
    notional per interval; ``funding_frac`` = step / interval), then interest on drawn credit."""
    variation = perp * (price1 - price0)
    funding = -perp * price1 * basis * funding_frac
    cash = cash + (variation + funding)
    credit = minimum(cash, 0.0) * credit_rate_apr * year_frac
    return cash + credit, variation, funding, credit


def liquidator_reward(
    cash: Num, inventory: Num, perp: Num, equity_before: Num, mid_usd: Num, price: Num,
    vol_short: Num, sqrt_year_frac: float, risk_aversion: float, reward_scale: float,
    initial_cash_usd: float,
) -> tuple[Num, Num, Num, Num, Num]:  # fmt: skip
    """Liquidator's reward (its docstring's Rewards section): (reward, equity USD, PnL USD,
    inventory penalty USD, terminated)."""
    equity = cash + inventory * mid_usd
    pnl = equity - equity_before
    net = inventory * mid_usd + perp * price
    sigma = vol_short * sqrt_year_frac
    scale = reward_scale / initial_cash_usd
    penalty = 0.5 * risk_aversion * (net * sigma) ** 2 / initial_cash_usd
    return scale * (pnl - penalty), equity, pnl, penalty, equity <= 0.0


def liquidator_features(
    r_substep: Num, r_1h: Num, var_short: Num, var_long: Num, max_fundamental: Num,
    substeps_per_year: float, fundamental: Num, oracle: Num, pool_asset: Num, pool_debt: Num,
    debt_price: Num, total_debt: Num, total_collateral: Num, supply: Num, gas: Num, bonus: Num,
    b_now: Num, b_2: Num, b_5: Num, b_10: Num, inventory: Num, perp: Num, cash: Num,
    equity: Num, basis: Num, initial_cash_usd: float, time_left: Num,
) -> tuple:  # fmt: skip
    """Liquidator's 21 features in the order of ``LIQUIDATOR_FEATURES`` (before clipping);
    ``b_*`` are the debt (USD) below the opportunity thresholds, the perp is marked at the
    fundamental."""
    coll_value = total_collateral * oracle
    pool_usd = pool_price_usd(pool_asset, pool_debt, debt_price)
    cap = initial_cash_usd
    return (
        100.0 * r_substep,
        10.0 * r_1h,
        annual_volatility(var_short, substeps_per_year),
        annual_volatility(var_long, substeps_per_year),
        1.0 - fundamental / max_fundamental,
        10.0 * (oracle / fundamental - 1.0),
        10.0 * (pool_usd / fundamental - 1.0),
        pool_debt * debt_price / where(coll_value > 0, coll_value, 1.0),
        utilization(total_debt, supply),
        gas / 100.0,
        10.0 * bonus,
        b_now / cap,
        b_2 / cap,
        b_5 / cap,
        b_10 / cap,
        inventory * pool_usd / cap,
        perp * fundamental / cap,
        cash / cap,
        equity / cap,
        100.0 * basis,
        time_left,
    )


def log_return(now: Num, past: Num) -> Num:
    """Log return between two prices."""
    return log(now / past)


# The functions the kernels compile (every public function above).
FORMULA_NAMES = tuple(
    name
    for name, obj in list(globals().items())
    if callable(obj) and getattr(obj, "__module__", None) == __name__
)

__all__ = [
    "debt_hf_shares",
    "liquidator_action",
    "liquidator_carry",
    "liquidator_features",
    "liquidator_fills",
    "liquidator_hedge",
    "liquidator_reward",
    "liquidator_sale",
    "perp_basis",
    "annual_volatility",
    "ewma_variance",
    "governance_book_features",
    "governance_market_features",
    "governance_reward",
    "governance_substep_flows",
    "lever_position",
    "log_return",
    "risk_projection",
    "steward_book_features",
    "steward_capacity",
    "steward_changed",
    "steward_cooldown_left",
    "steward_level",
    "steward_projection",
    "steward_ready",
    "steward_substep_flows",
    "steward_switch",
    "toxic_debt",
]
