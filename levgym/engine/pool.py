"""The constant-product pool (collateral asset against the debt asset): swaps, arbitrage, liquidity."""

from __future__ import annotations

from typing import Any

from .backend import namespace


def sell_asset(pool_asset: Any, pool_debt: Any, amount_asset: Any, fee_frac: float):
    """Sell ``amount_asset`` into the pool; returns (new_pool_asset, new_pool_debt, debt_out).

    The fee is taken from the input and paid to liquidity providers outside the reserves, so the
    reserves keep their constant product exactly.
    """
    eff = amount_asset * (1.0 - fee_frac)
    out = pool_debt * eff / (pool_asset + eff)
    return pool_asset + eff, pool_debt * pool_asset / (pool_asset + eff), out


def buy_asset(pool_asset: Any, pool_debt: Any, amount_debt: Any, fee_frac: float):
    """Pay ``amount_debt`` into the pool for the asset; returns (new_pool_asset, new_pool_debt, asset_out)."""
    eff = amount_debt * (1.0 - fee_frac)
    out = pool_asset * eff / (pool_debt + eff)
    return pool_asset * pool_debt / (pool_debt + eff), pool_debt + eff, out


def sell_quote(pool_asset: Any, pool_debt: Any, amount_asset: Any, fee_frac: float) -> Any:
    """Debt received for selling ``amount_asset`` alone against the current reserves."""
    eff = amount_asset * (1.0 - fee_frac)
    return pool_debt * eff / (pool_asset + eff)


def arbitrage(pool_asset: Any, pool_debt: Any, target_price: Any, speed_frac: Any):
    """Trade along the curve so the pool price closes ``speed_frac`` of its log-gap to ``target_price``."""
    xp = namespace(pool_asset, pool_debt)
    price = pool_debt / pool_asset
    new_price = xp.exp(xp.log(price) + speed_frac * (xp.log(target_price) - xp.log(price)))
    k = pool_asset * pool_debt
    return xp.sqrt(k / new_price), xp.sqrt(k * new_price)


def set_liquidity(pool_asset: Any, pool_debt: Any, target_liquidity: Any):
    """Add or remove liquidity at the current price so that ``sqrt(x * y) = target_liquidity``."""
    xp = namespace(pool_asset, pool_debt)
    scale = target_liquidity / xp.sqrt(pool_asset * pool_debt)
    return pool_asset * scale, pool_debt * scale
