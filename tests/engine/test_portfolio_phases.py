"""The borrower and treasury phases of the multi-asset step (levgym.engine.portfolio_borrowers,
levgym.engine.portfolio_treasury): parity with the naive loop, the accounting identities (with the
treasury's), their effect, and that the defaults leave the step as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym.engine import portfolio_borrowers as PB
from levgym.engine import portfolio_market as PM
from levgym.engine import portfolio_treasury as PT
from levgym.engine.portfolio import account_data
from levgym.engine.reference_portfolio import ref_substep

from .test_portfolio_market import RES, SETTINGS, _close, _setup


def _params(defensive: float, cover: str, **kw) -> PM.PortfolioMarketParams:
    return PM.PortfolioMarketParams(
        deficit_cover=cover,
        borrowers=PB.PortfolioBorrowerParams(defensive_frac=defensive, **kw),
        volatile_pool_depth_usd=2e6,
    )


def _with_behaviours(state: PM.PortfolioState, params, seed: int) -> PM.PortfolioState:
    b = PB.assign(params.borrowers, state.supply, state.oracle_usd, seed, RES)
    return PB.with_behaviours(state, b)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.15]),
    defensive=st.sampled_from([0.0, 0.6, 1.0]),
    cover=st.sampled_from(PT.DEFICIT_COVER),
    capacity=st.sampled_from([0.02, 0.5]),
    rebalance=st.booleans(),
)
def test_phases_match_reference_loop(seed, crash, defensive, cover, capacity, rebalance):
    params = _params(defensive, cover, capacity_frac=capacity, rebalance=rebalance)
    state, f = _setup(seed, 2, 8, params, 4, crash)
    state = _with_behaviours(state, params, seed)
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        state, _ = PM.substep(state, f[t], RES, params)
        ref = ref_substep(RES, ref, f[t], params)
    got = PM.state_to_dict(state)
    for key, v in got.items():
        if isinstance(v, np.ndarray):
            _close(v, ref[key])


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.0, 0.08, 0.2]),
    defensive=st.sampled_from([0.3, 1.0]),
    cover=st.sampled_from(PT.DEFICIT_COVER),
    rebalance=st.booleans(),
)
def test_identities_hold_with_behaviours_and_cover(seed, crash, defensive, cover, rebalance):
    params = _params(defensive, cover, rebalance=rebalance)
    state, f = _setup(seed, 3, 16, params, 5, crash)
    state = PM.run(_with_behaviours(state, params, seed), f, RES, params)
    coll_gap, debt_gap = PM.accounting_gaps(state)
    c = state.counters
    coll_scale = c["initial_collateral_asset"] + c["added_collateral_asset"] + 1.0
    debt_scale = c["initial_debt_asset"] + c["interest_asset"] + c["borrowed_asset"] + 1.0
    assert np.all(np.abs(coll_gap) <= 1e-10 * coll_scale)
    assert np.all(np.abs(debt_gap) <= 1e-10 * debt_scale)
    tre = PT.treasury_gap(state)
    assert np.all(
        np.abs(tre) <= 1e-10 * (c["treasury_interest_asset"] + c["protocol_fee_asset"] + 1.0)
    )
    assert np.all(state.treasury_asset >= -1e-12)
    assert np.all(c["deficit_covered_asset"] <= c["deficit_asset"] * (1 + 1e-12) + 1e-15)
    assert np.all(state.defend_capacity_usd >= 0)
    if crash == 0.2:
        assert c["added_collateral_asset"].sum() + c["repaid_by_borrowers_asset"].sum() > 0


def test_defaults_leave_the_step_unchanged():
    """Default params (passive books, no cover) give the step exactly as before the phases: the
    phases return the state untouched and the new counters only count."""
    params = PM.PortfolioMarketParams(volatile_pool_depth_usd=2e6)
    state, f = _setup(7, 2, 16, params, 4, 0.2)
    s1 = PM.run(state, f, RES, params)
    assert s1.defend_trigger_hf is None
    assert np.all(s1.counters["deficit_covered_asset"] == 0.0)
    assert np.all(s1.counters["added_collateral_asset"] == 0.0)
    assert s1.liquidations.sum() > 0 and s1.counters["deficit_asset"].sum() > 0
    # a state with behaviours but defensive_frac 0 is the same step
    b = PB.assign(params.borrowers, state.supply, state.oracle_usd, 7, RES)
    s2 = PM.run(PB.with_behaviours(state, b), f, RES, params)
    for key in PM.COUNTERS:
        assert np.array_equal(s1.counters[key], s2.counters[key])
    assert np.array_equal(s1.supply, s2.supply) and np.array_equal(s1.debt, s2.debt)


def test_defenders_survive_a_fall_that_liquidates_passive_twins():
    """The same book: every slot defensive with ample capacity vs passive; an 8% fall of the
    volatile assets per step. Defenders are liquidated less and end healthier."""
    base = _params(0.0, "none")
    state, f = _setup(11, 2, 32, base, 3, 0.08)
    passive = PM.run(state, f, RES, base)
    active = _params(1.0, "none", capacity_frac=1.0, trigger_hf_min=1.2, trigger_hf_max=1.2)
    s = PM.run(_with_behaviours(state, active, 11), f, RES, active)
    assert passive.liquidations.sum() > 0
    assert s.liquidations.sum() < passive.liquidations.sum()
    c = s.counters
    assert c["added_collateral_asset"].sum() > 0 and c["repaid_by_borrowers_asset"].sum() > 0
    hf = account_data(s.supply, s.debt, s.oracle_usd[:, None, :], RES, s.emode_row).health_factor
    assert np.all(hf[np.isfinite(hf)] >= 1.0)


def test_capacity_caps_what_a_defender_spends():
    params = _params(1.0, "none", capacity_frac=0.01)
    state, f = _setup(5, 2, 16, params, 4, 0.1)
    state = _with_behaviours(state, params, 5)
    cap0 = state.defend_capacity_usd.copy()
    s = PM.run(state, f, RES, params)
    spent = cap0 - s.defend_capacity_usd
    assert np.all(spent >= -1e-9) and np.all(spent <= cap0 + 1e-9)
    assert np.any(s.defend_capacity_usd[cap0 > 0] < cap0[cap0 > 0])


def test_treasury_covers_the_deficit_it_can_from_the_same_reserve():
    """A hand-made state: WETH deficit 10, treasury holds 4 WETH and 100 USDC; one cover covers
    4 WETH (no conversion from USDC) and leaves 6 outstanding."""
    params = _params(0.0, "treasury_each_step")
    state, _ = _setup(1, 1, 2, params, 1, 0.0)
    w, q = RES.index("WETH"), RES.index("USDC")
    c = {k: v.copy() for k, v in state.counters.items()}
    c["deficit_asset"][0, w] = 10.0
    tre = np.zeros_like(state.treasury_asset)
    tre[0, w], tre[0, q] = 4.0, 100.0
    s = PT.cover_deficit(state.replace(counters=c, treasury_asset=tre), params)
    assert s.counters["deficit_covered_asset"][0, w] == pytest.approx(4.0)
    assert s.counters["deficit_covered_asset"][0, q] == 0.0
    assert s.treasury_asset[0, w] == 0.0 and s.treasury_asset[0, q] == 100.0
    assert PT.outstanding_deficit(s)[0, w] == pytest.approx(6.0)
    none = dataclasses.replace(params, deficit_cover="none")
    assert PT.cover_deficit(state, none) is state


def test_param_errors_name_the_field():
    with pytest.raises(ValueError, match="deficit_cover='always' is not allowed"):
        PM.PortfolioMarketParams(deficit_cover="always")
    with pytest.raises(ValueError, match="defensive_frac"):
        PB.PortfolioBorrowerParams(defensive_frac=1.5)
    with pytest.raises(ValueError, match="trigger_hf_max=1.1 is below"):
        PB.PortfolioBorrowerParams(trigger_hf_min=1.2, trigger_hf_max=1.1)


def test_rebalancing_withdraws_and_borrows_within_the_rules():
    """Calm prices, every slot defensive and rebalancing: healthy positions far above their band
    withdraw or borrow back to their target, never past the LTV, the caps or the liquidity; the
    naive loop agrees."""
    params = _params(1.0, "none", rebalance=True)
    state, f = _setup(3, 2, 32, params, 2, 0.0)
    state = _with_behaviours(state, params, 3)
    ref = PM.state_to_dict(state)
    s1, _ = PM.substep(state, f[1], RES, params)
    ref = ref_substep(RES, ref, f[1], params)
    for key, v in PM.state_to_dict(s1).items():
        if isinstance(v, np.ndarray):
            _close(v, ref[key])
    c = s1.counters
    assert c["withdrawn_collateral_asset"].sum() > 0 and c["borrowed_asset"].sum() > 0
    # the phase alone, on the state it sees (after prices and interest)
    pre = PM.accrue_interest(PM.market_update(state, f[1], RES, params), RES, params)
    post = PB.defend(pre, RES, params)
    price = pre.oracle_usd[:, None, :]
    a0 = account_data(pre.supply, pre.debt, price, RES, pre.emode_row)
    a1 = account_data(post.supply, post.debt, price, RES, post.emode_row)
    wd = (post.supply < pre.supply).any(-1)
    bor = (post.debt > pre.debt).any(-1)
    assert wd.any() and bor.any()
    target = pre.defend_trigger_hf + params.borrowers.target_gap
    up = wd | bor
    assert np.all(a0.health_factor[up] > target[up] + params.borrowers.target_gap)
    assert np.all(a1.health_factor[up] >= target[up] * (1 - 1e-9))
    assert np.all(a1.health_factor[wd] == pytest.approx(target[wd], rel=1e-9))
    assert np.all(a1.debt_usd[bor] <= a0.borrow_limit_usd[bor] * (1 + 1e-9))
    assert np.all(post.debt.sum(1) <= RES.borrow_cap_asset * (1 + 1e-12))
    assert np.all(post.debt.sum(1) <= post.lender_supply_asset * (1 + 1e-12))
    # the funds went to the borrowers' outside funds
    assert np.all(post.defend_capacity_usd[up] > pre.defend_capacity_usd[up])


@SETTINGS
@given(seed=st.integers(0, 10_000), crash=st.sampled_from([0.08, 0.2]))
def test_numba_substep_covers_deficits_and_counts_the_treasury_as_numpy(seed, crash):
    """The compiled substep runs the deficit cover after its kernel and counts the treasury's
    interest: the same state as the numpy path, and the treasury identity holds."""
    params = _params(0.0, "treasury_each_step")
    state, f = _setup(seed, 2, 8, params, 4, crash)
    a = b = state
    for t in range(1, f.shape[0]):
        a, _ = PM.substep(a, f[t], RES, params)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba")
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v)
    c = b.counters
    scale = c["treasury_interest_asset"] + c["protocol_fee_asset"] + 1.0
    assert np.all(np.abs(PT.treasury_gap(b)) <= 1e-10 * scale)


def test_numba_substep_refuses_defensive_borrowers():
    params = _params(1.0, "none")
    state, f = _setup(3, 1, 8, params, 2, 0.1)
    state = _with_behaviours(state, params, 3)
    with pytest.raises(ValueError, match="backend='numba' does not run defensive borrowers"):
        PM.substep(state, f[1], RES, params, backend="numba")
