"""Price oracles: Chainlink-style (deviation threshold + heartbeat), pool TWAP, exact."""

from __future__ import annotations

from typing import Any

from .backend import namespace

CHAINLINK, TWAP, EXACT = 0, 1, 2


def source_price(fundamental_usd: Any, pool_price_usd: Any, pool_weight_frac: float) -> Any:
    """What an aggregating oracle reads: a geometric blend of the off-chain price and the pool."""
    xp = namespace(fundamental_usd, pool_price_usd)
    if pool_weight_frac == 0.0:
        return fundamental_usd
    return xp.exp(
        (1.0 - pool_weight_frac) * xp.log(fundamental_usd)
        + pool_weight_frac * xp.log(pool_price_usd)
    )


def refresh(
    kind: int,
    oracle_usd: Any,
    updated_h: Any,
    now_h: float,
    source_usd: Any,
    twap_usd: Any,
    bias_frac: Any,
    frozen: Any,
    deviation_frac: float,
    heartbeat_h: float | None,
):
    """New (oracle_usd, updated_h). ``heartbeat_h=None`` means only deviation may trigger
    (used inside a cascade, within one block); a TWAP oracle then does not move."""
    xp = namespace(oracle_usd)
    if kind == TWAP:
        if heartbeat_h is None:
            return oracle_usd, updated_h
        candidate = twap_usd * (1.0 + bias_frac)
        update = ~frozen
    elif kind == EXACT:
        candidate = source_usd * (1.0 + bias_frac)
        update = ~frozen
    else:
        candidate = source_usd * (1.0 + bias_frac)
        update = xp.abs(candidate / oracle_usd - 1.0) > deviation_frac
        if heartbeat_h is not None:
            update = update | ((now_h - updated_h) >= heartbeat_h - 1e-9)
        update = update & ~frozen
    return xp.where(update, candidate, oracle_usd), xp.where(
        update, updated_h * 0.0 + now_h, updated_h
    )
