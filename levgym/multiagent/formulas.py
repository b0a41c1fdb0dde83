"""The market maker's formulas (the other agents' are the single-agent envs' own,
:mod:`levgym.envs.formulas`), written with arithmetic and :mod:`levgym.engine.ops` only.

The market maker owns ``own_units`` of the pool's liquidity ``sqrt(x * y)``: its share of both
reserves is ``own_units / sqrt(x * y)`` (at most 1). The scenario's liquidity (other providers
coming and going) changes the pool's depth and so its share, not its units; only its own orders
change its units.
Pool fees are paid outside the reserves (:func:`levgym.engine.rules.sell_asset`), to the liquidity
providers pro rata.
"""

from __future__ import annotations

from typing import Any

from ..engine.ops import minimum, sqrt, where

Num = Any


def market_maker_lp(
    own_units: Num, pool_asset: Num, pool_debt: Num, debt_price_usd: Num
) -> tuple[Num, Num, Num]:
    """(share of the pool, asset it holds in the pool, value of its position in USD); at the
    pool's price both sides of a constant-product position are worth the same."""
    share = minimum(own_units / sqrt(pool_asset * pool_debt), 1.0)
    return share, share * pool_asset, 2.0 * share * pool_debt * debt_price_usd


def market_maker_flows(
    cash: Num, deposit_usd: Num, volume_asset: Num, fee_frac: float, share: Num,
    own_units: Num, price0: Num, price1: Num, debt_price_usd: Num,
) -> tuple[Num, Num, Num]:  # fmt: skip
    """(cash, fee income USD, impermanent loss USD) over a step.

    - ``deposit_usd``: liquidity it added (negative: pulled) at the pool's price, paid from (to)
      its cash;
    - fee income: its ``share`` of the pool fee on the step's recorded sales into the pool
      (``volume_asset``: the keepers' and the agent liquidators' sales; arbitrage pays no fee in
      the engine), valued at the pool price ``price1`` (debt units per asset) at the step's end;
    - impermanent loss: what ``own_units`` of constant-product liquidity lose against holding
      their assets when the pool's price moves from ``price0`` to ``price1``:
      ``L * (sqrt(p1) - sqrt(p0))^2 / sqrt(p0)`` (>= 0). It is part of the change of the
      position's value, which the reward counts as it is."""
    fees = share * fee_frac * volume_asset * price1 * debt_price_usd
    root0 = sqrt(price0)
    gap = sqrt(price1) - root0
    il = own_units * gap * gap / root0 * debt_price_usd
    return cash - deposit_usd + fees, fees, il


def market_maker_reward(
    cash: Num, value: Num, equity_before: Num, capital: Num, reward_scale: float
) -> tuple[Num, Num, Num]:
    """(reward, equity USD, PnL USD): the change of its equity (cash plus its position at the
    pool price; the perp's variation margin, funding and fees went through cash) per unit of its
    starting capital, times ``reward_scale``. So the reward is fee income minus impermanent loss,
    funding and perp fees, plus the unhedged part of the price move of its asset."""
    equity = cash + value
    pnl = equity - equity_before
    return reward_scale * pnl / where(capital > 0, capital, 1.0), equity, pnl


__all__ = ["market_maker_flows", "market_maker_lp", "market_maker_reward"]
