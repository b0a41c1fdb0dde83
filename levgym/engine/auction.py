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

**Sales.** The agents' sales go into the pool in the same priority, one after another, each
paying the price impact of those before it: the higher bidder sells at the better price. The
engine runs them as one sale of their sum (placed where :mod:`levgym.engine.orders` places the
agent's sale): constant-product swaps in sequence, with the fee taken from the input outside
the reserves, leave the reserves where the bundle leaves them and return the same in total, so
the engine's path is the sequence's, and each agent's return in the sequence is computed from
the bundle's counters (:func:`sale_shares`; rules :func:`levgym.engine.rules.sale_impact_frac`
and :func:`levgym.engine.rules.sequence_sale_debt`).

With one agent (``M = 1``) the resolved orders are the agent's own: the claim passes through,
so a single-agent env gives the same numbers with or without this layer. The reference loop
has its own naive version (:func:`levgym.engine.reference.reference_agent_block` and
:func:`levgym.engine.reference.reference_agent_sales`).
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


def sale_shares(agent_orders: AgentOrders, delta: dict[str, Any], pool_fee_frac: float) -> Any:
    """Each agent's share ``[E, M]`` of what the block's sales returned, the sales going into
    the pool one after another in the block's priority (gas bid, highest first; ties by agent
    index), each paying the price impact of those before it.

    The engine runs the agents' sales as one bundle: constant-product swaps in sequence, with
    the fee taken from the input outside the reserves, leave the reserves exactly where the
    bundle of their sum does and return the same in total, so only the split is computed here.
    The pool's asset reserve before the sales is recovered from the bundle's price impact
    (:func:`levgym.engine.rules.sale_impact_frac`), each sale's return in the sequence is
    :func:`levgym.engine.rules.sequence_sale_debt`, and the shares are those returns over their
    sum. Exact for one block (to rounding); over several blocks with the same orders the
    recovered impact is the blocks' average (see docs/multiagent.md for how far that moves a
    share). One seller (the others selling nothing) gets a share of exactly 1."""
    xp = namespace(agent_orders.sell_asset)
    sells = agent_orders.sell_asset
    order = priority(agent_orders.gas_bid_frac)
    ranked = xp.take_along_axis(sells, order, axis=1)
    cols, run = [], xp.zeros_like(ranked[:, 0])
    for j in range(ranked.shape[1]):
        cols.append(run)
        run = run + ranked[:, j]
    before = xp.stack(cols, axis=1)
    block_total = run
    impact = R.sale_impact_frac(
        delta["agent_sale_debt"], delta["agent_sale_mid_debt"], pool_fee_frac
    )
    per_asset = R.per_unit(impact, block_total * (1.0 - pool_fee_frac))[:, None]
    ranked_out = R.sequence_sale_debt(per_asset, before, ranked, pool_fee_frac)
    inverse = xp.argsort(order, axis=1, stable=True)
    seq = xp.take_along_axis(ranked_out, inverse, axis=1)
    seq_total = xp.sum(seq, axis=1)[:, None]
    # no measurable impact (or nothing sold): every unit gets the average price
    return xp.where(
        seq_total > 0.0, R.per_unit(seq, seq_total), R.per_unit(sells, block_total[:, None])
    )


def attribute(
    agent_orders: AgentOrders,
    fills: Any,
    delta: dict[str, Any],
    block_auction: str = "private",
    pool_fee_frac: float | None = None,
) -> dict[str, Any]:
    """Each agent's flows ``[E, M]`` from the change ``delta`` (``[E]`` each) of the engine's
    agent counters over the blocks run with the resolved orders.

    Returns ``seized_asset``, ``repaid_debt``, ``gas_usd`` (at its bid, and its lost share's gas
    in a public auction) and, with sales (``pool_fee_frac``, the pool's fee, is then needed),
    ``sold_asset``, ``sale_debt`` (its return in the block's sequence of sales,
    :func:`sale_shares`) and ``sale_mid_debt`` (its units at the pool's mid before the block's
    sales). Every part is written as a share of the counter (``delta * fill / sum(fill)``), so
    one agent with the whole claim or sale gets the counter exactly."""
    check_block_auction(block_auction)
    xp = namespace(fills)
    total = xp.sum(fills, axis=1)[:, None]
    share = R.per_unit(fills, total)
    out: dict[str, Any] = {}
    for name, key in (("seized_asset", "agent_seized_asset"), ("repaid_debt", "agent_repaid_usd")):
        out[name] = delta[key][:, None] * share
    public = 1.0 if block_auction == "public" else 0.0
    out["gas_usd"] = R.agent_gas_usd(
        fills, agent_orders.claim_share_frac, total, delta["agent_gas_usd"][:, None],
        agent_orders.gas_bid_frac, public,
    )  # fmt: skip
    if agent_orders.sell_asset is not None:
        if pool_fee_frac is None:
            raise ValueError("pool_fee_frac is needed to attribute the agents' sales")
        sold = agent_orders.sell_asset
        sold_total = xp.sum(sold, axis=1)[:, None]
        out["sold_asset"] = sold
        out["sale_debt"] = delta["agent_sale_debt"][:, None] * sale_shares(
            agent_orders, delta, pool_fee_frac
        )
        out["sale_mid_debt"] = delta["agent_sale_mid_debt"][:, None] * R.per_unit(sold, sold_total)
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
    "sale_shares",
]
