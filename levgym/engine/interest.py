"""Kinked interest-rate curve and accrual."""

from __future__ import annotations

from typing import Any

from .backend import namespace, safe_div


def utilization(total_debt_usd: Any, supply_usd: Any) -> Any:
    xp = namespace(total_debt_usd)
    return xp.clip(safe_div(xp, total_debt_usd, supply_usd, 1.0), 0.0, 1.0)


def borrow_rate_apr(util: Any, base: Any, slope1: Any, slope2: Any, optimal: Any) -> Any:
    """Aave-style two-slope curve: ``base + slope1 * min(u, u*)/u* + slope2 * max(u - u*, 0)/(1 - u*)``."""
    xp = namespace(util)
    below = xp.minimum(util, optimal) / optimal
    above = xp.clip(util - optimal, 0.0, None) / (1.0 - optimal)
    return base + slope1 * below + slope2 * above
