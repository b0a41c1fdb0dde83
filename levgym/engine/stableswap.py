"""Curve's StableSwap invariant for a two-coin leg (a stablecoin against USDC): the rules written
once with :mod:`levgym.engine.ops`, applied to arrays by the multi-asset step
(:mod:`levgym.engine.portfolio_market`) and compiled by numba for its kernel
(:mod:`levgym.engine.portfolio_market_fused`, via :func:`levgym.engine.fused.compile_rules`).

The invariant, as Curve's contracts write it (``StableSwap3Pool.vy`` ``get_D`` / ``get_y``,
``Ann = A * n``, ``A`` the pool's ``A()``), for ``n = 2`` balances ``x`` (the stablecoin) and
``y`` (USDC)::

    Ann (x + y) + D = Ann D + D^3 / (4 x y)

- :func:`stableswap_d` solves it for ``D`` by Curve's Newton iteration from ``D = x + y``
  (a fixed :data:`D_ITERATIONS` steps, no branch on a value: it converges in under 16 steps for
  balance ratios up to 10^6 at A = 100 and A = 2000, checked by the tests);
- :func:`stableswap_y` gives the other balance for a given one at fixed ``D``: Curve's
  ``get_y`` iterates ``y = (y^2 + c) / (2 y + b - D)``; with two coins that is the quadratic
  ``y^2 + (b - D) y = c``, solved here in closed form (the root without cancellation);
- :func:`stableswap_price` is the marginal price of ``x`` in ``y`` (``-dy/dx`` along the
  invariant: ``(Ann + D^3 / (4 x^2 y)) / (Ann + D^3 / (4 x y^2))``; 1 when balanced; ``y / x``,
  the constant product's, as ``A -> 0``);
- trades hold ``D``: the fee is taken from the input and paid outside the reserves, as the
  constant-product pools of this market do (Curve charges it on the output and keeps part in
  the pool, raising ``D``; not modelled: ASSUMPTIONS.md);
- :func:`stableswap_arbitrage` moves the leg along its invariant until its marginal price has
  closed ``speed_frac`` of its log gap to the target (the constant-product rule
  :func:`levgym.engine.rules.arbitrage`'s definition), by bisection on ``log x``
  (:data:`PRICE_ITERATIONS` halvings of a ``[-40, 40]`` bracket around ``log D``).

A depeg drains a leg as it drains a Curve pool: near 1 the curve is almost constant-sum, so an
arbitrageur who moves the price to 0.87 has taken almost all of the pool's USDC out (the
constant-product leg at the same price keeps about half of its USDC; tests).
"""

from __future__ import annotations

import math
from typing import Any

from .ops import exp, log, sqrt, where

Num = Any

D_ITERATIONS = 32
"""Newton steps of :func:`stableswap_d` (Curve's ``get_D`` stops on convergence within 255)."""
PRICE_ITERATIONS = 64
"""Bisection halvings of :func:`stableswap_x_at_price` (a bracket of width 80 in ``log x``:
below 1e-17 relative at the end)."""


def stableswap_d(x: Num, y: Num, amp: Num) -> Num:
    """The invariant ``D`` of balances ``x``, ``y`` (both > 0) at amplification ``amp``
    (Curve's ``A``): Curve's ``get_D`` Newton step, :data:`D_ITERATIONS` times from
    ``D = x + y``."""
    ann = 2.0 * amp
    s = x + y
    d = s
    for _ in range(D_ITERATIONS):
        dp = d * d / (2.0 * x) * d / (2.0 * y)
        d = (ann * s + 2.0 * dp) * d / ((ann - 1.0) * d + 3.0 * dp)
    return d


def stableswap_y(x: Num, d: Num, amp: Num) -> Num:
    """The other balance when one is ``x`` (> 0), at invariant ``d``: the positive root of
    ``y^2 + (x + D / Ann - D) y = D^3 / (4 Ann x)`` (Curve's ``get_y`` for two coins)."""
    ann = 2.0 * amp
    b = x + d / ann - d
    c = d * d / (4.0 * x) * d / ann
    disc = sqrt(b * b + 4.0 * c)
    return where(b >= 0.0, 2.0 * c / (b + disc), (disc - b) / 2.0)


def stableswap_price(x: Num, y: Num, amp: Num) -> Num:
    """Marginal price of ``x`` in units of ``y`` (``-dy/dx`` along the invariant)."""
    ann = 2.0 * amp
    d = stableswap_d(x, y, amp)
    a = d * d / (2.0 * x) * d / (2.0 * y)  # D^3 / (4 x y)
    return (ann + a / x) / (ann + a / y)


def stableswap_x_at_price(d: Num, price: Num, amp: Num) -> Num:
    """The balance ``x`` at which a leg of invariant ``d`` prices ``x`` at ``price`` (units of
    ``y``): bisection on ``log x`` (the price falls as ``x`` grows)."""
    ann = 2.0 * amp
    lo = log(d) - 40.0
    hi = log(d) + 40.0
    for _ in range(PRICE_ITERATIONS):
        mid = 0.5 * (lo + hi)
        x = exp(mid)
        y = stableswap_y(x, d, amp)
        a = d * d / (2.0 * x) * d / (2.0 * y)
        above = (ann + a / x) / (ann + a / y) > price
        lo = where(above, mid, lo)
        hi = where(above, hi, mid)
    return exp(0.5 * (lo + hi))


def stableswap_arbitrage(x: Num, y: Num, target_price: Num, speed_frac: Num, amp: Num):
    """Trade along the invariant so the marginal price closes ``speed_frac`` of its log gap to
    ``target_price`` (``y`` per ``x``): (new x, new y)."""
    d = stableswap_d(x, y, amp)
    lp = log(stableswap_price(x, y, amp))
    new_price = exp(lp + speed_frac * (log(target_price) - lp))
    x2 = stableswap_x_at_price(d, new_price, amp)
    return x2, stableswap_y(x2, d, amp)


def stableswap_dy(x: Num, y: Num, dx: Num, d: Num, amp: Num) -> Num:
    """``y - y(x + dx)`` at invariant ``d`` (``dx`` > ``-x``), without subtracting balances:
    from the quadratic at both points, ``(y - y2) (K / (x y) + y2) = dx (y2 + K / (x (x + dx)))``
    with ``K = D^3 / (4 Ann)`` and ``y2 = y(x + dx)``. Both sides are sums of positive terms, so
    the result keeps its relative precision when the trade is small against the leg (``y -
    y2`` would lose it: a $1,000 trade on a $200M leg keeps 5 digits)."""
    ann = 2.0 * amp
    x2 = x + dx
    y2 = stableswap_y(x2, d, amp)
    k = d * d / 4.0 * d / ann
    return dx * (y2 + k / (x * x2)) / (k / (x * y) + y2)


def stableswap_swap_out_at(x: Num, y: Num, amount_in: Num, fee_frac: Num, d: Num, amp: Num) -> Num:  # fmt: skip
    """What ``amount_in`` of ``x`` buys of ``y`` (fee on the input) from a leg whose invariant
    ``d`` is known (a keeper pricing many calls against the same leg computes it once)."""
    return stableswap_dy(x, y, amount_in * (1.0 - fee_frac), d, amp)


def stableswap_buy_cost_at(x: Num, y: Num, amount_out: Num, fee_frac: Num, d: Num, amp: Num) -> Num:  # fmt: skip
    """``y`` (fee included) that buys exactly ``amount_out`` of ``x`` from a leg of invariant
    ``d``; ``inf`` when ``amount_out`` is all of ``x`` or more."""
    ok = amount_out < x
    eff = -stableswap_dy(x, y, -where(ok, amount_out, 0.0), d, amp)
    return where(ok, eff / (1.0 - fee_frac), math.inf)


def stableswap_swap_out(x: Num, y: Num, amount_in: Num, fee_frac: Num, amp: Num) -> Num:
    """What ``amount_in`` of ``x`` buys of ``y`` (fee on the input)."""
    return stableswap_swap_out_at(x, y, amount_in, fee_frac, stableswap_d(x, y, amp), amp)


def stableswap_sell(x: Num, y: Num, amount_in: Num, fee_frac: Num, amp: Num):
    """Sell ``amount_in`` of ``x`` into the leg: (new x, new y, y out); the fee is paid outside
    the reserves, so ``D`` is unchanged (to rounding)."""
    d = stableswap_d(x, y, amp)
    eff = amount_in * (1.0 - fee_frac)
    out = stableswap_dy(x, y, eff, d, amp)
    return x + eff, y - out, out


def stableswap_buy_exact_out(x: Num, y: Num, amount_out: Num, fee_frac: Num, amp: Num):
    """Buy exactly ``amount_out`` of ``x`` with ``y``: (new x, new y, y paid, fee included);
    ``inf`` paid (leg unchanged) when ``amount_out`` is all of ``x`` or more."""
    ok = amount_out < x
    paid = stableswap_buy_cost_at(x, y, amount_out, fee_frac, stableswap_d(x, y, amp), amp)
    take = where(ok, amount_out, 0.0)
    return x - take, y + where(ok, paid * (1.0 - fee_frac), 0.0), paid


def stableswap_balances(depth: Num, price: Num, amp: Num):
    """A leg holding ``depth`` of each coin when balanced, moved along its invariant to
    ``price``: (x, y) (how a market's stable legs start at the fundamental ratio)."""
    d = stableswap_d(depth, depth, amp)
    x = stableswap_x_at_price(d, price, amp)
    return x, stableswap_y(x, d, amp)


STABLESWAP_RULE_NAMES = (
    "stableswap_d",
    "stableswap_y",
    "stableswap_price",
    "stableswap_x_at_price",
    "stableswap_arbitrage",
    "stableswap_dy",
    "stableswap_swap_out_at",
    "stableswap_buy_cost_at",
    "stableswap_swap_out",
    "stableswap_sell",
    "stableswap_buy_exact_out",
    "stableswap_balances",
)
"""The rules, in the order :func:`levgym.engine.fused.compile_rules` compiles them (callees
first)."""
