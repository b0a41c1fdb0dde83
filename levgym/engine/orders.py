"""What agents do inside a block: the one input to ``substep`` besides the state and drivers.

Orders carry the actions of agents that trade in the market the engine simulates (one outside
liquidator and one liquidity provider per env). Each field is ``[E]`` on the engine's backend,
or ``None`` when nobody places that order. ``M`` agent liquidators (the agent axis, ``[E, M]``
orders with gas bids: :mod:`levgym.engine.auction`) are resolved by gas-bid priority into the
one liquidator's claim and sale below, and their fills attributed back per agent exactly.

Priority inside a block (substep), in the order the engine applies them:

1. **Scenario and arbitrage** (``market_update``): the fundamental moves, the scenario sets the
   pool's liquidity, arbitrageurs trade the pool toward the fundamental, the oracle's heartbeat.
2. **Liquidity provider** ``liquidity_delta_frac``: adds (> 0) or pulls (< 0, at least -0.99)
   liquidity at the pool's price, as a share of its current base liquidity; the change persists
   (the scenario's liquidity multiplier applies on top of the new base from the next block on).
3. **Liquidator's sale** ``sell_asset``: the agent sells inventory into the pool (fee and price
   impact paid; proceeds in ``State.agent_sale_debt``). Its transaction lands before the
   borrowers' and keepers', as a liquidator bidding above the base gas price would.
4. **Interest** accrues and **borrowers** act (rules).
5. **Cascade**: the oracle reads the pool as everything above left it (deviation only, within
   the block), then keepers liquidate in rounds; the agent takes ``claim_share_frac`` of every
   liquidation (it repays that share, receives that share of the seized collateral net of the
   protocol fee, pays that share of the gas, and does not sell it in the block). Keepers sell
   their part.

A governor's circuit breakers hold for the whole block: ``freeze_borrow`` (true or 1) freezes
the market, so no new collateral is supplied and nothing new is borrowed in step 4 (repaying,
topping up, withdrawing and liquidations go on, as on a frozen Aave reserve); ``pause_oracle``
(true or 1) holds the oracle at its last answer in steps 1 and 5, as a frozen feed does.

Parameter changes (a governor) are written into the state's per-env parameter fields between
steps (:func:`levgym.engine.state.set_param_values`); they take effect from the next block.
Account orders (a position adding collateral, repaying or borrowing) arrive with cross-margin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .schema import ORDER_FIELDS

SWITCHES = ("freeze_borrow", "pause_oracle")
"""Orders that are on or off for the block (bool, or 0 / 1)."""


@dataclass(frozen=True)
class Orders:
    """One block's orders, each ``[E]`` (or ``None``: nobody places it)."""

    claim_share_frac: Any = None
    """Share of every liquidation the outside liquidator takes, in [0, 1]."""
    sell_asset: Any = None
    """Collateral asset the outside liquidator sells into the pool, >= 0."""
    liquidity_delta_frac: Any = None
    """Relative change of the pool's base liquidity by its liquidity provider, >= -0.99."""
    freeze_borrow: Any = None
    """The governor freezes the market for the block: no new supply or borrowing (bool, or 0 / 1)."""
    pause_oracle: Any = None
    """The governor holds the oracle at its last answer for the block (bool, or 0 / 1)."""

    def replace(self, **changes: Any) -> Orders:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Raise a ValueError naming the field when an order is out of its range or not finite."""
        bounds = {
            "claim_share_frac": (0.0, 1.0),
            "sell_asset": (0.0, np.inf),
            "liquidity_delta_frac": (-0.99, np.inf),
            "freeze_borrow": (0.0, 1.0),
            "pause_oracle": (0.0, 1.0),
        }
        for name, (lo, hi) in bounds.items():
            v = getattr(self, name)
            if v is None:
                continue
            a = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"orders.{name} holds NaN or infinite values; allowed finite")
            if np.any(a < lo) or np.any(a > hi):
                raise ValueError(
                    f"orders.{name} has values in [{a.min():g}, {a.max():g}]; allowed [{lo:g}, {hi:g}]"
                )
            if name in SWITCHES and not np.all((a == 0.0) | (a == 1.0)):
                raise ValueError(f"orders.{name} holds values other than 0 and 1; allowed a bool")


NO_ORDERS = Orders()


__all__ = ["NO_ORDERS", "ORDER_FIELDS", "SWITCHES", "Orders"]
