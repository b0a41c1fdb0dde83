"""Deficit coverage of the multi-asset market: the treasury's revenue of a reserve pays off that
reserve's deficit (Aave v3.3 ``Pool.eliminateReserveDeficit``), one phase of
:func:`levgym.engine.portfolio_market.substep`.

On Aave v3.3 a liquidation that takes a position's last collateral burns its remaining debt into
the reserve's ``deficit`` (``DeficitCreated``); the deficit stays on the reserve's books until the
Umbrella contract (the protocol's backstop, funded by the DAO) calls
``eliminateReserveDeficit(asset, amount)``, which burns aTokens of that same reserve that the
caller holds, ``min(amount, deficit)`` of them, and lowers the deficit by as much
(``ReserveDeficitCovered``). The model:

- **What pays**: the treasury's accrued revenue *of that reserve* (``treasury_asset[:, j]``: the
  reserve factor's share of the interest and the liquidation protocol fees paid in that asset),
  taken as aTokens the backstop holds; nothing converts another reserve's revenue (a WETH
  deficit is never paid from USDC fees) and no outside funds (Umbrella stakers) are modelled.
- **When** (:attr:`~levgym.engine.portfolio_market.PortfolioMarketParams.deficit_cover`):
  ``"none"`` (the default: a deficit stays on the books, as before this phase existed) or
  ``"treasury_each_step"``: at the end of every substep, after the write-off, the outstanding
  deficit of each reserve (``deficit_asset - deficit_covered_asset``) is covered up to the
  treasury's balance of that reserve.
- **Accounting** (asset units, per reserve): ``deficit_covered_asset`` counts what was covered;
  the treasury identity ``treasury_interest + protocol_fee - deficit_covered = treasury``
  (:func:`treasury_gap`) holds beside the collateral and debt identities of
  :func:`levgym.engine.portfolio_market.accounting_gaps` (unchanged: the debt written off stays
  ``deficit_asset`` whether or not it is covered later). Covering burns the backstop's aTokens
  against the hole the deficit left in the reserve: the lenders' supply and the borrowers' debt
  do not change.

``reference_portfolio.ref_substep`` covers deficits in its own loop (the test oracle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFICIT_COVER = ("none", "treasury_each_step")
"""Allowed values of ``PortfolioMarketParams.deficit_cover``."""


def check_deficit_cover(value: Any) -> None:
    """One line unless ``value`` is one of :data:`DEFICIT_COVER`."""
    if value not in DEFICIT_COVER:
        raise ValueError(
            f"portfolio_market.deficit_cover={value!r} is not allowed; allowed "
            f"{', '.join(DEFICIT_COVER)}"
        )


def outstanding_deficit(state: Any) -> np.ndarray:
    """``[E, K]``: deficit written off and not yet covered (asset units)."""
    c = state.counters
    return np.maximum(c["deficit_asset"] - c["deficit_covered_asset"], 0.0)


def cover_deficit(state: Any, params: Any) -> Any:
    """The coverage phase: with ``params.deficit_cover == "treasury_each_step"`` each reserve's
    outstanding deficit is covered by ``min(outstanding, treasury)`` of its own treasury balance;
    with ``"none"`` the state is returned unchanged."""
    if params.deficit_cover == "none":
        return state
    covered = np.minimum(outstanding_deficit(state), np.maximum(state.treasury_asset, 0.0))
    c = dict(state.counters)
    c["deficit_covered_asset"] = c["deficit_covered_asset"] + covered
    return state.replace(treasury_asset=state.treasury_asset - covered, counters=c)


def treasury_gap(state: Any) -> np.ndarray:
    """``[E, K]``: ``treasury_interest + protocol_fee - deficit_covered - treasury`` (0 up to
    float rounding): where every unit the treasury holds came from and went."""
    c = state.counters
    return (
        c["treasury_interest_asset"]
        + c["protocol_fee_asset"]
        - c["deficit_covered_asset"]
        - state.treasury_asset
    )
