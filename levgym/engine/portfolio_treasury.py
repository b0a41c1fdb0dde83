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
  ``"none"`` (the default: a deficit stays on the books, as before this phase existed),
  ``"treasury_each_step"``: at the end of every substep, after the write-off, the outstanding
  deficit of each reserve (:func:`outstanding_deficit`) is covered up to the treasury's balance
  of that reserve; or ``"reserves_then_lenders"``: the single-asset engine's accounting (Aave
  v2-style socialisation, :func:`levgym.engine.cascade.write_off`): the treasury of the reserve
  (the single engine's ``reserves_usd``) pays what it can and the lenders of that reserve the
  rest (their supply falls: :func:`levgym.engine.rules.write_off_split`, the single engine's
  rule), so no deficit stays outstanding. The single engine splits after each cascade round;
  the treasury changes only by the write-offs within a cascade, so one split of the substep's
  deficit is the sum of the rounds' splits (up to float rounding).
- **Accounting** (asset units, per reserve): ``deficit_covered_asset`` counts what was covered;
  the treasury identity ``treasury_interest + protocol_fee - deficit_covered = treasury``
  (:func:`treasury_gap`) holds beside the collateral and debt identities of
  :func:`levgym.engine.portfolio_market.accounting_gaps` (unchanged: the debt written off stays
  ``deficit_asset`` whether or not it is covered later). Covering burns the backstop's aTokens
  against the hole the deficit left in the reserve: the lenders' supply and the borrowers' debt
  do not change. With ``"reserves_then_lenders"`` ``lender_loss_asset`` counts the lenders'
  part (the single engine's ``lender_loss_usd``; ``deficit_covered_asset`` its
  ``bad_debt_from_reserves_usd``) and the lenders' supply falls by it.

``reference_portfolio.ref_substep`` covers deficits in its own loop (the test oracle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import rules as R

DEFICIT_COVER = ("none", "treasury_each_step", "reserves_then_lenders")
"""Allowed values of ``PortfolioMarketParams.deficit_cover``."""


def check_deficit_cover(value: Any) -> None:
    """One line unless ``value`` is one of :data:`DEFICIT_COVER`."""
    if value not in DEFICIT_COVER:
        raise ValueError(
            f"portfolio_market.deficit_cover={value!r} is not allowed; allowed "
            f"{', '.join(DEFICIT_COVER)}"
        )


def outstanding_deficit(state: Any) -> np.ndarray:
    """``[E, K]``: deficit written off and not yet covered, by the treasury or the lenders (asset
    units)."""
    c = state.counters
    return np.maximum(c["deficit_asset"] - c["deficit_covered_asset"] - c["lender_loss_asset"], 0.0)


def cover_deficit(state: Any, params: Any) -> Any:
    """The coverage phase: with ``params.deficit_cover == "treasury_each_step"`` each reserve's
    outstanding deficit is covered by ``min(outstanding, treasury)`` of its own treasury balance;
    with ``"reserves_then_lenders"`` the lenders pay the rest
    (:func:`levgym.engine.rules.write_off_split`); with ``"none"`` the state is returned
    unchanged."""
    if params.deficit_cover == "none":
        return state
    covered, lenders = R.write_off_split(
        outstanding_deficit(state), np.maximum(state.treasury_asset, 0.0)
    )
    c = dict(state.counters)
    c["deficit_covered_asset"] = c["deficit_covered_asset"] + covered
    changes: dict[str, Any] = {}
    if params.deficit_cover == "reserves_then_lenders":
        c["lender_loss_asset"] = c["lender_loss_asset"] + lenders
        changes["lender_supply_asset"] = state.lender_supply_asset - lenders
    return state.replace(treasury_asset=state.treasury_asset - covered, counters=c, **changes)


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
