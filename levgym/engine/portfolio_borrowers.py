"""Borrower behaviour on the multi-asset (cross-margin) path: defensive positions that top up
collateral or repay debt when their health factor falls below a trigger, within the outside
funds they have; one phase of :func:`levgym.engine.portfolio_market.substep`.

The single-asset engine's *defensive* borrowers (:mod:`levgym.engine.borrowers`,
:func:`levgym.engine.rules.defend_topup_asset` / :func:`~levgym.engine.rules.defend_repay_debt`)
carried over to portfolios:

- **Who** (:func:`assign`, seeded, ``numpy.random.default_rng([seed, 1517])``): each slot is
  defensive with probability ``defensive_frac``; a defensive slot draws a trigger HF uniform in
  ``[trigger_hf_min, trigger_hf_max]``, repays (probability ``repay_share_frac``) or tops up
  (otherwise), and has outside funds (its **capacity**) of ``capacity_frac`` times its collateral
  at the start (USD at the start oracle). Passive slots have trigger 0 and never act.
- **When**: every substep, after interest and before the liquidation cascade (a borrower watching
  its position acts on the oracle the keepers see, before them), a defensive position with debt,
  ``HF < trigger`` and capacity left acts. By default every defender watches every substep.
  With reaction probabilities (``react_prob_min`` / ``react_prob_max`` below 1, or a state's
  ``defend_react_prob``) a slot acts in a substep only when it reacts, as in the single-asset
  engine (:func:`levgym.engine.rules.reacts`): its uniform ``noise_u`` (one per slot and
  substep, given to the substep) is below its probability divided by
  ``1 + gas / reaction_gas_ref_gwei`` (:func:`levgym.engine.rules.reaction_gas_factor`); a slot
  that does not react is passive for the substep (:func:`acting_trigger_hf`).
- **How much**: it aims at ``HF = trigger + target_gap`` (the single-asset
  ``defend_target_gap``). A top-up adds collateral in the asset it holds most of (USD at the
  oracle; first reserve on ties), ``(target * debt_usd - threshold_usd) / LT_i`` USD worth with
  ``LT_i`` that asset's effective (E-mode) threshold; a repayment repays the debt asset it owes
  most of, ``debt_usd - threshold_usd / target`` USD worth, at most that asset's debt (one asset
  per substep). Either is capped by the capacity left, which it then spends (USD at the oracle).
  Supply caps are not checked for top-ups (small next to the caps; ASSUMPTIONS.md).
- **Rebalancing up** (``rebalance``, default off): above ``HF = trigger + 2 * target_gap`` a
  defender goes back to ``trigger + target_gap`` the other way: one that tops up withdraws the
  collateral asset it holds most of (at most all of it; Aave's ``validateHFAndLtv`` holds since
  the HF stays above 1), one that repays borrows the debt asset it owes most of, within
  ``ValidationLogic.validateBorrow`` (:func:`levgym.engine.portfolio.max_new_borrow`: LTV room,
  E-mode and isolation borrowability, borrow cap and debt ceiling against the totals before the
  phase); the env's borrowing of a reserve is then scaled down together to the room its borrow
  cap and its available liquidity (lenders' supply less debt) leave. The funds go to its outside
  funds (the capacity grows by their USD value).
- **Accounting**: ``added_collateral_asset``, ``repaid_by_borrowers_asset``,
  ``withdrawn_collateral_asset`` and ``borrowed_asset`` (asset units), so the per-asset
  identities of :func:`levgym.engine.portfolio_market.accounting_gaps` hold; a repayment returns
  liquidity to the reserve and a borrow takes it (debt moves, lenders' supply unchanged).

- **Loopers** (:func:`loop`, after the defenders; ``looper_frac`` of the slots, default 0, or a
  state's ``looper_target_hf``): the single-asset engine's loopers
  (:mod:`levgym.engine.borrowers`) on positions that hold exactly one collateral reserve with a
  constant-product pool against USDC and owe only USDC (others do not loop: routes through two
  pools, StableSwap legs and multi-asset loops are not modelled). A looper that reacts (as a
  defender does, with the same reaction probability and gas factor) re-levers above
  ``target * (1 + relever_band_frac)``: it borrows USDC back down to its target, within its LTV
  counting the collateral it buys (:func:`levgym.engine.rules.looper_borrow_debt`), and buys
  collateral in the pool; it deleverages below ``1 + delever_frac * (target - 1)`` (at HF >= 1):
  it sells collateral into the pool back up to its target
  (:func:`levgym.engine.rules.looper_sell_asset`) and repays USDC with the proceeds (at most its
  debt). Per env and pool the sales are one sale, then the env's borrowing is scaled down to the
  USDC reserve's available liquidity and borrow cap (:func:`levgym.engine.rules.fill_ratio`,
  :func:`~levgym.engine.rules.borrow_available`) and the purchases are one purchase; proceeds
  and purchases are shared pro rata. The oracles then read the moved pools within the block
  (``portfolio_market.read_in_block``), as the single-asset cascade does before its first round.
  Supply caps on the purchases are checked with ``supply_cap_new_supply`` ("Exits and
  arrivals"). Counters: ``withdrawn_collateral_asset``,
  ``added_collateral_asset``, ``repaid_by_borrowers_asset``, ``borrowed_asset``.

- **Exits and arrivals** (:func:`exit_and_arrive`, first in the phase; ``exit_rate_per_h`` and
  ``arrival_rate_per_h``, default 0, and a state's ``active`` flags, :func:`with_turnover`):
  the single-asset engine's turnover (:func:`levgym.engine.borrowers.act`). One uniform per slot
  (``noise_u``) decides: an active position with ``HF >= 1`` exits when it is above
  ``1 - p_exit`` (:func:`levgym.engine.rules.exits`): it repays all its debt and withdraws all
  its collateral, and its slot is free; a free slot receives a new borrower when its uniform is
  below ``p_arrive``. Both come from :func:`~levgym.engine.rules.attractiveness` on the LTV of
  the slot's template collateral (E-mode row of the slot) and the USDC borrow rate after
  interest (:func:`~levgym.engine.rules.exit_prob`, :func:`~levgym.engine.rules.arrival_prob`
  with the substep's ``arrival_mult`` driver). Exits come before the defenders and loopers (an
  exiting slot neither defends nor loops); an arrival brings its template's collateral
  (``template_collateral_asset`` of ``template_reserve``) and borrows USDC to ``template_hf``
  within its LTV (:func:`~levgym.engine.rules.arrival_debt`, the slot's effective LT and LTV),
  together with the loopers' re-levering (:func:`loop`): new supply (arrivals' collateral,
  loopers' purchases at the oracle, :func:`~levgym.engine.rules.relever_collateral_asset`) is
  scaled per reserve to the room the supply cap leaves (``supply_cap_new_supply``; borrowers'
  and lenders' supply count; :func:`~levgym.engine.rules.supply_room`,
  :func:`~levgym.engine.rules.fill_ratio`), none in an env where the substep's ``freeze`` holds;
  an arrival scaled to nothing does not arrive; then the loopers' and arrivals' USDC borrowing
  is scaled jointly to the liquidity and the borrow cap
  (:func:`~levgym.engine.rules.borrow_available`). Counters ``arrivals``, ``exits`` (state,
  ``[E]``); the amounts in ``withdrawn_collateral_asset``, ``repaid_by_borrowers_asset``,
  ``added_collateral_asset``, ``borrowed_asset``.

``reference_portfolio.ref_substep`` is the naive loop twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rules as R
from .ops import and_, maximum, minimum, where
from .params import _check_range
from .portfolio import (
    Reserves,
    account_data,
    borrow_rates_apr,
    collateral_mask,
    effective_risk,
    isolation_total_debt,
    max_new_borrow,
)
from .rules import delevers, health_factor, looper_borrow_debt, looper_sell_asset, relevers


@dataclass(frozen=True)
class PortfolioBorrowerParams:
    """Defensive behaviour of multi-asset positions (units in the names). The default
    ``defensive_frac = 0`` keeps books passive (ASSUMPTIONS.md, "Cross-margin borrowers")."""

    defensive_frac: float = 0.0
    """Share of slots that defend (top up or repay below their trigger); 0 = passive books."""
    trigger_hf_min: float = 1.05
    """Trigger health factors are uniform in [trigger_hf_min, trigger_hf_max] (single-asset)."""
    trigger_hf_max: float = 1.30
    """See ``trigger_hf_min``."""
    target_gap: float = 0.30
    """A defending position aims at ``HF = trigger + target_gap`` (single-asset
    ``defend_target_gap``)."""
    repay_share_frac: float = 0.5
    """Share of defensive slots that repay debt (the others add collateral)."""
    capacity_frac: float = 0.5
    """Outside funds of a defensive slot, as a share of its collateral at the start (USD)."""
    rebalance: bool = False
    """Defenders also rebalance upward: above ``trigger + 2 * target_gap`` one that tops up
    withdraws collateral and one that repays borrows, back to ``trigger + target_gap``; the
    funds go to its outside funds (False: they only defend)."""
    react_prob_min: float = 1.0
    """Per-substep reaction probabilities of defensive slots are uniform in [react_prob_min,
    react_prob_max] (the single-asset ``borrowers.react_prob_min`` / ``react_prob_max``,
    0.05 / 0.5 there); both 1 (default): every defender acts every substep."""
    react_prob_max: float = 1.0
    """See ``react_prob_min``."""
    reaction_gas_ref_gwei: float = 150.0
    """Reaction probabilities are divided by ``1 + gas / reaction_gas_ref_gwei`` (the
    single-asset default); read only with reaction probabilities."""
    looper_frac: float = 0.0
    """Share of slots that loop (module docstring, "Loopers"); 0 (default): none. Drawn from the
    slots that do not defend (``defensive_frac + looper_frac <= 1``)."""
    looper_target_hf_min: float = 1.15
    """Loopers' target HFs are uniform in [looper_target_hf_min, looper_target_hf_max] (the
    single-asset defaults)."""
    looper_target_hf_max: float = 1.40
    """See ``looper_target_hf_min``."""
    relever_band_frac: float = 0.15
    """Loopers re-lever when ``HF > target * (1 + relever_band_frac)`` (single-asset default)."""
    delever_frac: float = 0.5
    """Loopers deleverage when ``1 <= HF < 1 + delever_frac * (target - 1)`` (single-asset
    default)."""
    exit_rate_per_h: float = 0.0
    """Hourly probability that an active healthy position repays everything and leaves, at the
    reference LTV and rate (module docstring, "Exits and arrivals"; single-asset 0.002); 0
    (default): none. Read only with a state's ``active`` flags."""
    arrival_rate_per_h: float = 0.0
    """Hourly probability that a free slot receives a new borrower (its template), at the
    reference LTV and rate (single-asset 0.01); 0 (default): none."""
    ltv_elasticity: float = 20.0
    """Arrival odds scale by ``exp(ltv_elasticity * (ltv - ltv_ref))``, exits by the inverse
    (single-asset default)."""
    ltv_ref: float = 0.825
    """LTV at which arrival and exit rates take their base values (single-asset default)."""
    rate_elasticity: float = 10.0
    """Arrival odds scale by ``exp(-rate_elasticity * (rate - rate_ref_apr))`` on the USDC
    borrow rate (single-asset default)."""
    rate_ref_apr: float = 0.05
    """Borrow rate at which arrival and exit rates take their base values."""
    supply_cap_new_supply: bool = False
    """New supply (arrivals' collateral, loopers' purchases) is scaled down to the room each
    reserve's supply cap leaves (the single-asset rule); False (default): caps not checked."""

    def __post_init__(self) -> None:
        o = "portfolio_borrowers"
        _check_range(o, "defensive_frac", self.defensive_frac, 0.0, 1.0)
        _check_range(o, "trigger_hf_min", self.trigger_hf_min, 1.0, 10.0)
        _check_range(o, "trigger_hf_max", self.trigger_hf_max, 1.0, 10.0)
        self._check_order("trigger_hf_min", "trigger_hf_max")
        _check_range(o, "target_gap", self.target_gap, 0.0, 10.0, lo_open=True)
        _check_range(o, "repay_share_frac", self.repay_share_frac, 0.0, 1.0)
        _check_range(o, "capacity_frac", self.capacity_frac, 0.0, 100.0)
        _check_range(o, "react_prob_min", self.react_prob_min, 0.0, 1.0)
        _check_range(o, "react_prob_max", self.react_prob_max, 0.0, 1.0)
        self._check_order("react_prob_min", "react_prob_max")
        _check_range(o, "reaction_gas_ref_gwei", self.reaction_gas_ref_gwei, 0.0, 1e7, lo_open=True)  # fmt: skip
        _check_range(o, "looper_frac", self.looper_frac, 0.0, 1.0 - self.defensive_frac)
        _check_range(o, "looper_target_hf_min", self.looper_target_hf_min, 1.0, 10.0, lo_open=True)  # fmt: skip
        _check_range(o, "looper_target_hf_max", self.looper_target_hf_max, 1.0, 10.0, lo_open=True)  # fmt: skip
        self._check_order("looper_target_hf_min", "looper_target_hf_max")
        _check_range(o, "relever_band_frac", self.relever_band_frac, 0.0, 10.0)
        _check_range(o, "delever_frac", self.delever_frac, 0.0, 1.0)
        _check_range(o, "exit_rate_per_h", self.exit_rate_per_h, 0.0, 1.0)
        _check_range(o, "arrival_rate_per_h", self.arrival_rate_per_h, 0.0, 1.0)
        _check_range(o, "ltv_elasticity", self.ltv_elasticity, -1e3, 1e3)
        _check_range(o, "ltv_ref", self.ltv_ref, 0.0, 1.0)
        _check_range(o, "rate_elasticity", self.rate_elasticity, -1e3, 1e3)
        _check_range(o, "rate_ref_apr", self.rate_ref_apr, 0.0, 10.0)

    def _check_order(self, low: str, high: str) -> None:
        lo, hi = getattr(self, low), getattr(self, high)
        if hi < lo:
            o = "portfolio_borrowers"
            raise ValueError(
                f"{o}.{high}={hi:g} is below {o}.{low}={lo:g}; allowed {high} >= {low}"
            )


@dataclass(frozen=True)
class Behaviours:
    """Per-slot behaviour ``[E, N]``."""

    trigger_hf: np.ndarray
    """Trigger HF of defensive slots, 0 for passive ones."""
    repays: np.ndarray
    """Defensive slots that repay (the others top up)."""
    capacity_usd: np.ndarray
    """Outside funds left (USD)."""
    react_prob: np.ndarray | None = None
    """Per-substep reaction probability of each slot; None: every slot acts every substep."""
    looper_target_hf: np.ndarray | None = None
    """Target HF of looping slots, 0 for the others; None: no loopers."""


KINDS = ("passive", "topup", "repay")
"""Behaviour codes 0, 1, 2 of :func:`assign`'s ``kinds`` (a book file's ``behaviour`` column)."""


def assign(
    params: PortfolioBorrowerParams, supply: np.ndarray, oracle_usd: np.ndarray, seed: int,
    reserves: Reserves, kinds: np.ndarray | None = None,
) -> Behaviours:  # fmt: skip
    """Behaviours of a book ``supply [E, N, K]`` at the start oracle ``oracle_usd [E, K]``
    (module docstring, "Who"); reproducible from ``seed`` alone. ``kinds [E, N]`` (codes of
    :data:`KINDS`, -1 = draw) fixes which slots defend and how; triggers and capacities are
    drawn all the same."""
    e, n, _ = supply.shape
    rng = np.random.default_rng([int(seed), 1517])
    u, v, w = rng.random((e, n)), rng.random((e, n)), rng.random((e, n))
    defensive = u < params.defensive_frac
    repays = defensive & (w < params.repay_share_frac)
    if kinds is not None:
        kinds = np.asarray(kinds)
        defensive = np.where(kinds >= 0, kinds > 0, defensive)
        repays = np.where(kinds >= 0, kinds == 2, repays)
    trigger = params.trigger_hf_min + (params.trigger_hf_max - params.trigger_hf_min) * v
    cm = collateral_mask(supply, reserves)
    coll_usd = np.where(cm, supply * oracle_usd[:, None, :], 0.0).sum(axis=-1)
    react = None  # drawn after the others, so they are the same with or without it
    if params.react_prob_min < 1.0:
        lo, hi = params.react_prob_min, params.react_prob_max
        react = lo + (hi - lo) * rng.random((e, n))
    target = None  # drawn last, so the draws above are the same with or without loopers
    if params.looper_frac > 0.0:
        lo, hi = params.looper_target_hf_min, params.looper_target_hf_max
        looper = (u >= params.defensive_frac) & (u < params.defensive_frac + params.looper_frac)
        if kinds is not None:
            looper = looper & (kinds < 0)
        target = np.where(looper, lo + (hi - lo) * rng.random((e, n)), 0.0)
    return Behaviours(
        trigger_hf=np.where(defensive, trigger, 0.0),
        repays=repays,
        capacity_usd=np.where(defensive, params.capacity_frac * coll_usd, 0.0),
        react_prob=react,
        looper_target_hf=target,
    )


def with_behaviours(state: Any, b: Behaviours) -> Any:
    """``state`` whose slots act as ``b`` says."""
    return state.replace(
        defend_trigger_hf=np.array(b.trigger_hf, dtype=np.float64),
        defend_repays=np.array(b.repays, dtype=bool),
        defend_capacity_usd=np.array(b.capacity_usd, dtype=np.float64),
        defend_react_prob=None
        if b.react_prob is None
        else np.array(b.react_prob, dtype=np.float64),
        looper_target_hf=None
        if b.looper_target_hf is None
        else np.array(b.looper_target_hf, dtype=np.float64),
    )


# ----------------------------------------------------------------------------- rules
# Written with levgym.engine.ops only: :func:`defend` applies them to arrays, and the compiled
# substep (levgym.engine.portfolio_market_fused) compiles the same texts per position.


def acting_trigger_hf(trigger_hf: Any, noise_u: Any, react_prob: Any, gas_factor: Any) -> Any:
    """The trigger a slot acts on in this substep: its own when it reacts (its uniform below its
    probability times the gas factor, :func:`levgym.engine.rules.reacts`), 0 (passive for the
    substep) otherwise."""
    return where(R.reacts(noise_u, react_prob, gas_factor), trigger_hf, 0.0)


def phase_trigger_hf(
    state: Any, params: Any, noise_u: Any, gas_gwei: np.ndarray, trigger: Any = None
) -> Any:  # fmt: skip
    """``[E, N]`` triggers the borrower phase acts on (None without behaviours): the state's
    (``trigger``: other per-slot thresholds, the loopers' targets), each zeroed for the substep
    where its slot does not react (:func:`acting_trigger_hf`, with ``noise_u [E, N]`` and the
    gas price ``[E]`` in gwei) when the state has reaction probabilities. One computation for
    the numpy phase and the compiled substep."""
    trig = state.defend_trigger_hf if trigger is None else trigger
    if trig is None or state.defend_react_prob is None:
        return trig
    if noise_u is None:
        raise ValueError(
            "noise_u=None with reaction probabilities (state.defend_react_prob); allowed a "
            "uniform [E, N] array per substep"
        )
    noise_u = np.asarray(noise_u, dtype=np.float64)
    if noise_u.shape != trig.shape:
        raise ValueError(f"noise_u has shape {noise_u.shape}; allowed {trig.shape} ([E, N])")
    factor = R.reaction_gas_factor(gas_gwei, params.borrowers.reaction_gas_ref_gwei)
    return acting_trigger_hf(trig, noise_u, state.defend_react_prob, factor[:, None])


def defends(trigger_hf: Any, hf: Any, debt_usd: Any, collateral_usd: Any, capacity_usd: Any):
    """A defensive position (trigger above 0) with debt and collateral acts below its trigger
    while it has outside funds."""
    base = and_(and_(trigger_hf > 0.0, debt_usd > 0.0), collateral_usd > 0.0)
    return and_(and_(base, hf < trigger_hf), capacity_usd > 0.0)


def rebalances_up(
    trigger_hf: Any, hf: Any, debt_usd: Any, collateral_usd: Any, target_gap: Any, rebalance: Any
):  # fmt: skip
    """With ``rebalance``, a defensive position with debt and collateral above
    ``trigger + 2 * target_gap`` goes back down to ``trigger + target_gap``."""
    base = and_(and_(trigger_hf > 0.0, debt_usd > 0.0), collateral_usd > 0.0)
    return and_(and_(base, hf > trigger_hf + target_gap + target_gap), rebalance)


def defend_topup_usd(target_hf: Any, debt_usd: Any, threshold_usd: Any, lt_i: Any, capacity_usd: Any):  # fmt: skip
    """USD of collateral ``i`` (effective threshold ``lt_i``) a defender adds to get back to
    ``target_hf``, within its outside funds."""
    return minimum(maximum(target_hf * debt_usd - threshold_usd, 0.0) / lt_i, capacity_usd)


def defend_repay_usd(
    target_hf: Any, debt_usd: Any, threshold_usd: Any, capacity_usd: Any, debt_j_usd: Any
):  # fmt: skip
    """USD of debt ``j`` (``debt_j_usd`` owed) a defender repays to get back to ``target_hf``,
    within its outside funds."""
    need = maximum(debt_usd - threshold_usd / target_hf, 0.0)
    return minimum(minimum(need, capacity_usd), debt_j_usd)


def rebalance_withdraw_usd(
    target_hf: Any, debt_usd: Any, threshold_usd: Any, lt_i: Any, collateral_i_usd: Any
):  # fmt: skip
    """USD of collateral ``i`` a top-up defender above its band withdraws, back down to
    ``target_hf`` (at most all of it)."""
    return minimum(maximum(threshold_usd - target_hf * debt_usd, 0.0) / lt_i, collateral_i_usd)


def rebalance_borrow_asset(
    target_hf: Any, debt_usd: Any, threshold_usd: Any, price_j: Any, room_asset: Any
):  # fmt: skip
    """Debt ``j`` (asset units) a repaying defender above its band borrows, back down to
    ``target_hf``, within its room (:func:`levgym.engine.portfolio.borrow_room_asset`)."""
    return minimum(maximum(threshold_usd / target_hf - debt_usd, 0.0) / price_j, room_asset)


def borrow_fill_frac(wanted_asset: Any, borrow_cap_asset: Any, lender_supply_asset: Any, total_debt_asset: Any):  # fmt: skip
    """Share of an env's wanted borrowing of a reserve that is filled: all of it, or what the
    borrow cap's room and the available liquidity (lenders' supply less debt) leave."""
    avail = maximum(
        minimum(borrow_cap_asset - total_debt_asset, lender_supply_asset - total_debt_asset), 0.0
    )
    return where(wanted_asset > avail, avail / where(wanted_asset > 0.0, wanted_asset, 1.0), 1.0)


def looper_trade(
    target_hf: Any, collateral_asset: Any, debt_asset: Any, oracle_usd: Any, debt_price_usd: Any,
    lt: Any, ltv: Any, band_frac: Any, delever_frac: Any,
):  # fmt: skip
    """(collateral sold, debt wanted) of a looper (target above 0) holding one collateral against
    one debt asset: the single-asset engine's rules (:func:`levgym.engine.rules.relevers`,
    :func:`~levgym.engine.rules.delevers`, :func:`~levgym.engine.rules.looper_borrow_debt`,
    :func:`~levgym.engine.rules.looper_sell_asset`) on its balances; 0 and 0 without debt or in
    its band."""
    cv = collateral_asset * oracle_usd
    dv = debt_asset * debt_price_usd
    hf = health_factor(collateral_asset, debt_asset, oracle_usd, lt, debt_price_usd)
    on = and_(target_hf > 0.0, debt_asset > 0.0)
    up = and_(on, relevers(hf, target_hf, band_frac))
    down = and_(on, delevers(hf, target_hf, delever_frac))
    want = where(up, looper_borrow_debt(cv, dv, lt, ltv, target_hf, debt_price_usd), 0.0)
    sell = where(down, looper_sell_asset(cv, dv, lt, target_hf, oracle_usd), 0.0)
    return sell, want


LOOPER_RULE_NAMES = ("looper_trade",)
"""The loopers' rule, compiled for the numba substep over the compiled single-asset rules."""


BORROWER_RULE_NAMES = (
    "defends",
    "rebalances_up",
    "defend_topup_usd",
    "defend_repay_usd",
    "rebalance_withdraw_usd",
    "rebalance_borrow_asset",
    "borrow_fill_frac",
)
"""The scalar rules of the borrower phase (numpy here, compiled in the numba substep)."""


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def defend(
    state: Any, reserves: Reserves, params: Any, noise_u: Any = None, gas_gwei: Any = None
) -> Any:
    """The borrower phase (module docstring, "When", "How much"): defensive positions below
    their trigger top up or repay; with ``rebalance``, above ``trigger + 2 * target_gap`` they
    withdraw or borrow back to the target. A state without behaviours is returned unchanged.
    ``noise_u [E, N]`` and ``gas_gwei [E]``: the substep's uniforms and gas price, read when the
    state has reaction probabilities (:func:`phase_trigger_hf`)."""
    trig = phase_trigger_hf(state, params, noise_u, gas_gwei)
    if trig is None or not np.any(trig > 0.0):
        return state
    bp = params.borrowers
    price = state.oracle_usd[:, None, :]
    acct = account_data(state.supply, state.debt, price, reserves, state.emode_row)
    cap = state.defend_capacity_usd
    hf = acct.health_factor
    target = trig + bp.target_gap
    act = defends(trig, hf, acct.debt_usd, acct.collateral_usd, cap)
    up = rebalances_up(
        trig, hf, acct.debt_usd, acct.collateral_usd, bp.target_gap, bool(bp.rebalance)
    )
    if not (act.any() or up.any()):
        return state
    k = reserves.k
    repays = state.defend_repays
    # the collateral asset held most (USD) at its effective threshold; the debt asset owed most
    cm = collateral_mask(state.supply, reserves)
    i = np.argmax(np.where(cm, state.supply * price, -1.0), axis=-1)
    _, lt, _ = effective_risk(reserves, state.emode_row)
    lt_i = _take(lt, i)
    lt_i = np.where(lt_i > 0.0, lt_i, 1.0)
    p_i = _take(np.broadcast_to(price, state.supply.shape), i)
    dv = state.debt * price
    j = np.argmax(dv, axis=-1)
    p_j = _take(np.broadcast_to(price, state.debt.shape), j)
    thr, debt_usd = acct.threshold_usd, acct.debt_usd
    # top-up / repayment below the trigger, within the capacity
    top_usd = np.where(act & ~repays, defend_topup_usd(target, debt_usd, thr, lt_i, cap), 0.0)
    rep_usd = defend_repay_usd(target, debt_usd, thr, cap, _take(dv, j))
    rep_usd = np.where(act & repays, rep_usd, 0.0)
    # withdrawal / borrowing above the band, back to the target
    wd_usd = rebalance_withdraw_usd(target, debt_usd, thr, lt_i, _take(state.supply, i) * p_i)
    wd_usd = np.where(up & ~repays, wd_usd, 0.0)
    borrow = np.zeros(state.debt.shape[:2])
    if (up & repays).any():
        total = state.debt.sum(axis=1)
        iso = isolation_total_debt(state.debt, reserves, acct)
        rooms = np.stack(
            [
                max_new_borrow(
                    state.supply, state.debt, price, reserves, jj, state.emode_row, total, iso
                )
                for jj in range(k)
            ],
            axis=-1,
        )
        want = rebalance_borrow_asset(target, debt_usd, thr, p_j, _take(rooms, j))
        borrow = np.where(up & repays, want, 0.0)
        # the env's borrowing of a reserve within its cap and its available liquidity
        oh = j[..., None] == np.arange(k)
        wanted = np.where(oh, borrow[..., None], 0.0).sum(axis=1)  # [E, K]
        fill = borrow_fill_frac(wanted, reserves.borrow_cap_asset, state.lender_supply_asset, total)
        borrow = borrow * np.take_along_axis(fill, j, axis=1)
    oh_i = i[..., None] == np.arange(k)
    oh_j = j[..., None] == np.arange(k)
    add = np.where(oh_i, (top_usd / p_i)[..., None], 0.0)
    wd = np.minimum(np.where(oh_i, (wd_usd / p_i)[..., None], 0.0), state.supply)
    rep = np.minimum(np.where(oh_j, (rep_usd / p_j)[..., None], 0.0), state.debt)
    bor = np.where(oh_j, borrow[..., None], 0.0)
    c = dict(state.counters)
    c["added_collateral_asset"] = c["added_collateral_asset"] + add.sum(axis=1)
    c["repaid_by_borrowers_asset"] = c["repaid_by_borrowers_asset"] + rep.sum(axis=1)
    c["withdrawn_collateral_asset"] = c["withdrawn_collateral_asset"] + wd.sum(axis=1)
    c["borrowed_asset"] = c["borrowed_asset"] + bor.sum(axis=1)
    return state.replace(
        supply=state.supply + add - wd,
        debt=state.debt - rep + bor,
        defend_capacity_usd=np.maximum(cap - top_usd - rep_usd, 0.0) + wd_usd + borrow * p_j,
        counters=c,
    )


def looper_slots(supply: Any, debt: Any, reserves: Reserves, tradable: np.ndarray, quote: int):
    """(collateral index ``i [E, N]``, whether the slot can loop ``[E, N]``): a position loops
    when it holds exactly one collateral reserve ``i``, with a constant-product pool against the
    quote (``tradable [K]``), and owes only the quote (USDC)."""
    cm = collateral_mask(supply, reserves)
    i = np.argmax(cm, axis=-1)
    others = np.delete(np.asarray(debt), quote, axis=-1)
    ok = (cm.sum(axis=-1) == 1) & tradable[i] & ~np.any(others > 0.0, axis=-1)
    return i, ok


def with_turnover(
    state: Any, active: Any, template_reserve: Any, template_collateral_asset: Any,
    template_hf: Any,
) -> Any:  # fmt: skip
    """``state`` with exits and arrivals (module docstring, "Exits and arrivals"): which slots
    hold a position ``[E, N]`` (a free slot must hold nothing) and each slot's template, the
    collateral reserve ``[E, N]`` and amount (asset units) an arrival brings and the HF it
    borrows to; counters ``arrivals`` and ``exits`` at 0."""
    shape = state.shape[:2]
    act = np.array(np.broadcast_to(np.asarray(active, dtype=bool), shape))
    tres = np.array(np.broadcast_to(np.asarray(template_reserve, dtype=np.int64), shape))
    tc = np.array(np.broadcast_to(np.asarray(template_collateral_asset, dtype=np.float64), shape))
    thf = np.array(np.broadcast_to(np.asarray(template_hf, dtype=np.float64), shape))
    k = state.shape[2]
    if np.any((tres < 0) | (tres >= k)):
        raise ValueError(
            f"template_reserve has values outside [0, {k - 1}]; allowed reserve indices"
        )
    if np.any(tc < 0.0) or not np.all(np.isfinite(tc)):
        raise ValueError("template_collateral_asset must be finite and >= 0")
    if np.any(~(thf > 0.0)) or not np.all(np.isfinite(thf)):
        raise ValueError("template_hf must be finite and > 0")
    held = (state.supply > 0.0).any(axis=-1) | (state.debt > 0.0).any(axis=-1)
    if np.any(held & ~act):
        raise ValueError("active=False on slots that hold a position; allowed only on empty slots")
    e = shape[0]
    return state.replace(
        active=act, template_reserve=tres, template_collateral_asset=tc, template_hf=thf,
        arrivals=np.zeros(e), exits=np.zeros(e),
    )  # fmt: skip


def turnover_on(state: Any, params: Any) -> bool:
    """Whether the substep runs exits and arrivals: the state has ``active`` flags and an exit
    or arrival rate is above 0."""
    bp = params.borrowers
    return state.active is not None and (bp.exit_rate_per_h > 0.0 or bp.arrival_rate_per_h > 0.0)


def turnover_drivers(arrival_mult: Any, freeze: Any, num_envs: int):
    """The substep's ``arrival_mult`` (``[E]``, default 1) and ``freeze`` (``[E]`` bool or
    None) as arrays."""
    mult = np.ones(num_envs)
    if arrival_mult is not None:
        mult = np.array(np.broadcast_to(np.asarray(arrival_mult, dtype=np.float64), (num_envs,)))
        if not np.all(np.isfinite(mult)) or np.any(mult < 0.0):
            raise ValueError("arrival_mult must be finite and >= 0")
    frz = None
    if freeze is not None:
        frz = np.array(np.broadcast_to(np.asarray(freeze, dtype=bool), (num_envs,)))
    return mult, frz


def turnover_odds(state: Any, reserves: Reserves, params: Any, arrival_mult: Any, quote: int):
    """(``p_exit``, ``p_arrive``) ``[E, N]``: the single-asset rules on the LTV of each slot's
    template reserve (its E-mode row) and the USDC borrow rate of the state."""
    bp = params.borrowers
    ltv, _, _ = effective_risk(reserves, state.emode_row)
    ltv_t = _take(ltv, state.template_reserve)
    rate = borrow_rates_apr(reserves, state.debt.sum(axis=1), state.lender_supply_asset)
    attract = R.attractiveness(
        ltv_t, rate[:, quote, None], bp.ltv_elasticity, bp.ltv_ref, bp.rate_elasticity,
        bp.rate_ref_apr,
    )  # fmt: skip
    p_exit = R.exit_prob(bp.exit_rate_per_h, params.substep_h, attract)
    p_arrive = R.arrival_prob(
        bp.arrival_rate_per_h, params.substep_h, arrival_mult[:, None], attract
    )
    return p_exit, p_arrive


def exit_and_arrive(
    state: Any, reserves: Reserves, params: Any, noise_u: Any, arrival_mult: np.ndarray,
    quote: int,
):  # fmt: skip
    """Exits and the arrivals' draw, first in the borrower phase (module docstring, "Exits and
    arrivals"): returns the state after the exits and which free slots receive a new borrower
    ``[E, N]`` (:func:`loop` brings them in)."""
    if noise_u is None:
        raise ValueError("noise_u=None with exits or arrivals; allowed a uniform [E, N] array")
    u = np.asarray(noise_u, dtype=np.float64)
    if u.shape != state.shape[:2]:
        raise ValueError(f"noise_u has shape {u.shape}; allowed {state.shape[:2]} ([E, N])")
    p_exit, p_arrive = turnover_odds(state, reserves, params, arrival_mult, quote)
    price = state.oracle_usd[:, None, :]
    hf = account_data(state.supply, state.debt, price, reserves, state.emode_row).health_factor
    active = state.active
    exits = active & R.exits(u, p_exit, hf)
    arrives = ~active & (u < p_arrive)
    if not exits.any():
        return state, arrives
    wd = np.where(exits[..., None], state.supply, 0.0)
    rep = np.where(exits[..., None], state.debt, 0.0)
    c = dict(state.counters)
    c["withdrawn_collateral_asset"] = c["withdrawn_collateral_asset"] + wd.sum(axis=1)
    c["repaid_by_borrowers_asset"] = c["repaid_by_borrowers_asset"] + rep.sum(axis=1)
    return state.replace(
        supply=np.where(exits[..., None], 0.0, state.supply),
        debt=np.where(exits[..., None], 0.0, state.debt),
        active=active & ~exits,
        exits=state.exits + exits.sum(axis=1),
        counters=c,
    ), arrives


def loop(
    state: Any, reserves: Reserves, params: Any, noise_u: Any, gas_gwei: Any,
    fee_frac: np.ndarray, tradable: np.ndarray, quote: int, arrives: Any = None,
    freeze: Any = None,
) -> Any:  # fmt: skip
    """The loopers of the borrower phase (module docstring, "Loopers"), after the defenders, and
    the arrivals ``arrives [E, N]`` (:func:`exit_and_arrive`; None: none) with them: a state
    without looper targets (``looper_target_hf``) or arrivals is returned unchanged.
    ``fee_frac [K]``: each pool's fee; ``tradable [K]``: reserves a looper may hold
    (:func:`looper_slots`); ``quote``: the USDC column; ``freeze [E]`` (None: none): no new
    supply or borrowing in those envs."""
    some_arrive = arrives is not None and bool(np.any(arrives))
    if state.looper_target_hf is None and not some_arrive:
        return state
    if state.looper_target_hf is None:
        tgt = np.zeros(state.shape[:2])
    else:
        tgt = phase_trigger_hf(state, params, noise_u, gas_gwei, state.looper_target_hf)
    if not np.any(tgt > 0.0) and not some_arrive:
        return state
    bp = params.borrowers
    i, ok = looper_slots(state.supply, state.debt, reserves, tradable, quote)
    tgt = np.where(ok, tgt, 0.0)
    if not np.any(tgt > 0.0) and not some_arrive:
        return state
    k = reserves.k
    ltv, lt, _ = effective_risk(reserves, state.emode_row)
    price = state.oracle_usd
    c_i, d_q = _take(state.supply, i), state.debt[..., quote]
    p_i, p_q = np.take_along_axis(price, i, axis=1), price[:, quote : quote + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sell, want = looper_trade(
            tgt, c_i, d_q, p_i, p_q, _take(lt, i), _take(ltv, i), bp.relever_band_frac,
            bp.delever_frac,
        )  # fmt: skip
    oh = i[..., None] == np.arange(k)
    pa, pq = state.pool_asset, state.pool_quote
    # the deleveraging sales, one sale into each pool; proceeds pro rata, repaying the quote
    total_sell = np.where(oh, sell[..., None], 0.0).sum(axis=1)  # [E, K]
    sells = total_sell > 0.0
    pa2, pq2, out = R.sell_asset(pa, pq, total_sell, fee_frac)
    pa, pq = np.where(sells, pa2, pa), np.where(sells, pq2, pq)
    proceeds = sell * np.take_along_axis(R.per_unit(out, total_sell), i, axis=1)
    repaid = np.minimum(proceeds, d_q)
    supply = state.supply - np.where(oh, sell[..., None], 0.0)
    debt = state.debt.copy()
    debt[..., quote] = d_q - repaid
    arr_c = arr_d = None
    if arrives is not None or bp.supply_cap_new_supply or freeze is not None:
        # new supply within each reserve's supply cap (none while frozen): arrivals, re-levering
        tres = np.zeros_like(i) if state.template_reserve is None else state.template_reserve
        oh_t = tres[..., None] == np.arange(k)
        arr_c = np.zeros(tgt.shape) if arrives is None else np.where(arrives, state.template_collateral_asset, 0.0)  # fmt: skip
        cap = reserves.supply_cap_asset if bp.supply_cap_new_supply else np.full(k, np.inf)
        frozen = False if freeze is None else np.asarray(freeze)[:, None]
        room = R.supply_room(cap, supply.sum(axis=1) + state.lender_supply_asset, frozen)
        relever_c = R.relever_collateral_asset(want, p_q, p_i)
        wanted_c = np.where(oh_t, arr_c[..., None], 0.0) + np.where(oh, relever_c[..., None], 0.0)
        sfill = R.fill_ratio(room, wanted_c.sum(axis=1))  # [E, K]
        fill_t = np.take_along_axis(sfill, tres, axis=1)
        if arrives is not None:
            arrives = arrives & (fill_t > 0.0)
        arr_c = arr_c * fill_t
        want = want * np.take_along_axis(sfill, i, axis=1)
        if arrives is not None:  # the arrivals' USDC debt at their template HF, within the LTV
            ltv, lt, _ = effective_risk(reserves, state.emode_row)
            ltv_t, lt_t = _take(ltv, tres), _take(lt, tres)
            p_t = np.take_along_axis(price, tres, axis=1)
            safe = np.where(ltv_t > 0.0, ltv_t, 1.0)
            arr_d = np.where(
                arrives & (ltv_t > 0.0),
                R.arrival_debt(arr_c, p_t, lt_t, safe, state.template_hf, p_q),
                0.0,
            )
    # the re-levering (and the arrivals) borrow within the quote's liquidity and borrow cap, one
    # purchase a pool
    avail = R.borrow_available(
        state.lender_supply_asset[:, quote], reserves.borrow_cap_asset[quote],
        debt[..., quote].sum(axis=1),
    )  # fmt: skip
    asked = want.sum(axis=1) if arr_d is None else want.sum(axis=1) + arr_d.sum(axis=1)
    scale = R.fill_ratio(avail, asked)[:, None]
    borrow = want * scale
    total_buy = np.where(oh, borrow[..., None], 0.0).sum(axis=1)
    buys = total_buy > 0.0
    pa3, pq3, got = R.buy_asset(pa, pq, total_buy, fee_frac)
    pa, pq = np.where(buys, pa3, pa), np.where(buys, pq3, pq)
    bought = borrow * np.take_along_axis(R.per_unit(got, total_buy), i, axis=1)
    supply = supply + np.where(oh, bought[..., None], 0.0)
    debt[..., quote] = debt[..., quote] + borrow
    c = dict(state.counters)
    c["withdrawn_collateral_asset"] = c["withdrawn_collateral_asset"] + total_sell
    c["added_collateral_asset"] = c["added_collateral_asset"] + np.where(
        oh, bought[..., None], 0.0
    ).sum(axis=1)
    rep_q, bor_q = np.zeros_like(total_sell), np.zeros_like(total_sell)
    rep_q[:, quote], bor_q[:, quote] = repaid.sum(axis=1), borrow.sum(axis=1)
    c["repaid_by_borrowers_asset"] = c["repaid_by_borrowers_asset"] + rep_q
    c["borrowed_asset"] = c["borrowed_asset"] + bor_q
    out = state.replace(supply=supply, debt=debt, pool_asset=pa, pool_quote=pq, counters=c)
    if arrives is None:
        return out
    arr_d = arr_d * scale
    add_c = np.where(oh_t, arr_c[..., None], 0.0)
    supply = supply + add_c
    debt[..., quote] = debt[..., quote] + arr_d
    c["added_collateral_asset"] = c["added_collateral_asset"] + add_c.sum(axis=1)
    c["borrowed_asset"][:, quote] = c["borrowed_asset"][:, quote] + arr_d.sum(axis=1)
    return out.replace(
        supply=supply, debt=debt, active=state.active | arrives,
        arrivals=state.arrivals + arrives.sum(axis=1), counters=c,
    )  # fmt: skip
