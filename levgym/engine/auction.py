"""M agent liquidators in one block: gas-bid priority, the resolved orders and each agent's fills.

The engine's block takes one outside liquidator's orders (:class:`levgym.engine.orders.Orders`,
``[E]``). ``M`` agent liquidators each place per block (:data:`AGENT_ORDER_FIELDS`, ``[E, M]``):

- ``claim_share_frac``: the share of every liquidation of the block it asks for, in [0, 1];
- ``gas_bid_frac``: its priority fee, as a share of the base gas price (>= 0);
- ``sell_asset``: collateral it sells into the pool in the block (optional).

**Priority inside the block.** The agents' claims are ordered by gas bid, highest first, ties
by agent index (lower first), as competing transactions in a block are. In that order each
agent gets what it asked for, at most what the agents ahead of it left
(:func:`levgym.engine.rules.claim_fill`): the winner of a contested share takes it, a loser
gets nothing (two agents each asking for all of a liquidation: the higher bid takes all of it).
The background keepers take the rest (``1 -`` the sum of the fills), as they do of the single
agent's claim. The sum of the fills is the block's one agent claim (``Orders.claim_share_frac``),
so the engine's kernels (numpy, torch, the fused numba kernel) run unchanged: an agent claim is
linear in every liquidation of every cascade round (its share of the repay, of the seized
collateral net of the protocol fee and of the base gas), so agent ``i``'s part of the engine's
agent counters over the block is exactly ``fill_i / sum(fill)`` of their change
(:func:`attribute`; the same holds over several blocks with the same orders).

**Gas.** A winner pays the base gas of its share at its bid: ``(1 + gas_bid_frac)`` times the
base price. ``block_auction`` says what a loser pays (:func:`levgym.engine.rules.agent_gas_usd`):

- ``"private"`` (a builder's bundle, the default): a lost share costs nothing;
- ``"public"`` (a gas auction in the public mempool): a lost share still pays its gas at the
  agent's bid (its transaction lands and reverts).

**Sales.** The agents' sales are one sale in the block (a bundle: the sum of ``sell_asset``,
placed where :mod:`levgym.engine.orders` places the agent's sale); each agent gets the
proceeds of its units at the sale's average price (:func:`levgym.engine.rules.per_unit`).

With one agent (``M = 1``) the resolved orders are the agent's own: the claim passes through,
so a single-agent env gives the same numbers with or without this layer. The reference loop
has its own naive version (:func:`levgym.engine.reference.reference_claim_fills`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rules as R
from .backend import namespace
from .orders import Orders
from .schema import AGENT_ORDER_FIELDS

BLOCK_AUCTIONS = ("private", "public")
"""What a liquidator that loses a contested claim pays: nothing (``private``, a builder's
bundle) or its gas (``public``, a mempool gas auction)."""

# The engine's counters of the outside liquidator's flows that are split among the agents.
CLAIM_COUNTERS = ("agent_seized_asset", "agent_repaid_usd", "agent_gas_usd")
SALE_COUNTERS = ("agent_sold_asset", "agent_sale_debt", "agent_sale_mid_debt")


def check_block_auction(value: str) -> str:
    if value not in BLOCK_AUCTIONS:
        raise ValueError(f"block_auction={value!r} is unknown; allowed {', '.join(BLOCK_AUCTIONS)}")
    return value


@dataclass(frozen=True)
class AgentOrders:
    """One block's orders of ``M`` agent liquidators, each ``[E, M]`` (``sell_asset`` may be
    ``None``: nobody sells)."""

    claim_share_frac: Any
    """Share of every liquidation of the block the agent asks for, in [0, 1]."""
    gas_bid_frac: Any
    """Priority fee as a share of the base gas price, >= 0 (the order of the claims)."""
    sell_asset: Any = None
    """Collateral the agent sells into the pool in the block, >= 0."""

    def replace(self, **changes: Any) -> AgentOrders:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Raise a ValueError naming the field when an order is out of range, not finite or of
        another shape than the claims."""
        bounds = {
            "claim_share_frac": (0.0, 1.0),
            "gas_bid_frac": (0.0, np.inf),
            "sell_asset": (0.0, np.inf),
        }
        shape = None
        for name in AGENT_ORDER_FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            a = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64)
            if a.ndim != 2 or (shape is not None and a.shape != shape):
                raise ValueError(
                    f"agent_orders.{name} has shape {a.shape}; allowed [E, M] like the claims"
                )
            shape = a.shape
            lo, hi = bounds[name]
            if not np.all(np.isfinite(a)):
                raise ValueError(
                    f"agent_orders.{name} holds NaN or infinite values; allowed finite"
                )
            if np.any(a < lo) or np.any(a > hi):
                raise ValueError(
                    f"agent_orders.{name} has values in [{a.min():g}, {a.max():g}]; "
                    f"allowed [{lo:g}, {hi:g}]"
                )


def priority(gas_bid_frac: Any) -> Any:
    """The agents of each env in the block's order ``[E, M]``: highest gas bid first, ties by
    agent index."""
    xp = namespace(gas_bid_frac)
    return xp.argsort(-gas_bid_frac, axis=1, stable=True)


def claim_fills(claim_share_frac: Any, gas_bid_frac: Any) -> Any:
    """Each agent's filled share of the block's liquidations ``[E, M]`` (see the module doc)."""
    xp = namespace(claim_share_frac)
    order = priority(gas_bid_frac)
    asked = xp.take_along_axis(claim_share_frac, order, axis=1)
    claimed = xp.zeros_like(asked[:, 0])
    cols = []
    for j in range(asked.shape[1]):
        got = R.claim_fill(asked[:, j], claimed)
        claimed = claimed + got
        cols.append(got)
    filled = xp.stack(cols, axis=1)
    inverse = xp.argsort(order, axis=1, stable=True)
    return xp.take_along_axis(filled, inverse, axis=1)


def resolve(agent_orders: AgentOrders, orders: Orders | None = None) -> tuple[Orders, Any]:
    """The block's one-agent orders and each agent's fill ``[E, M]``.

    ``orders`` carries the other agents' orders of the block (a liquidity provider, a
    governor's switches); its claim and sale are replaced by the agents' resolved ones."""
    xp = namespace(agent_orders.claim_share_frac)
    fills = claim_fills(agent_orders.claim_share_frac, agent_orders.gas_bid_frac)
    base = orders if orders is not None else Orders()
    sell = None
    if agent_orders.sell_asset is not None:
        sell = xp.sum(agent_orders.sell_asset, axis=1)
    return base.replace(claim_share_frac=xp.sum(fills, axis=1), sell_asset=sell), fills


def attribute(
    agent_orders: AgentOrders,
    fills: Any,
    delta: dict[str, Any],
    block_auction: str = "private",
) -> dict[str, Any]:
    """Each agent's flows ``[E, M]`` from the change ``delta`` (``[E]`` each) of the engine's
    agent counters over the blocks run with the resolved orders.

    Returns ``seized_asset``, ``repaid_debt``, ``gas_usd`` (at its bid, and its lost share's gas
    in a public auction) and, with sales, ``sold_asset``, ``sale_debt``, ``sale_mid_debt``."""
    check_block_auction(block_auction)
    total = namespace(fills).sum(fills, axis=1)
    out: dict[str, Any] = {}
    for name, key in (("seized_asset", "agent_seized_asset"), ("repaid_debt", "agent_repaid_usd")):
        out[name] = R.per_unit(delta[key], total)[:, None] * fills
    block_gas = R.per_unit(delta["agent_gas_usd"], total)[:, None]
    public = 1.0 if block_auction == "public" else 0.0
    out["gas_usd"] = R.agent_gas_usd(
        fills, agent_orders.claim_share_frac, block_gas, agent_orders.gas_bid_frac, public
    )
    if agent_orders.sell_asset is not None:
        sold = agent_orders.sell_asset
        sold_total = namespace(sold).sum(sold, axis=1)
        out["sold_asset"] = sold
        for name, key in (
            ("sale_debt", "agent_sale_debt"),
            ("sale_mid_debt", "agent_sale_mid_debt"),
        ):
            out[name] = R.per_unit(delta[key], sold_total)[:, None] * sold
    return out


__all__ = [
    "AGENT_ORDER_FIELDS",
    "AgentOrders",
    "BLOCK_AUCTIONS",
    "CLAIM_COUNTERS",
    "SALE_COUNTERS",
    "attribute",
    "check_block_auction",
    "claim_fills",
    "priority",
    "resolve",
]
