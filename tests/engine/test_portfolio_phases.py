"""The borrower and treasury phases of the multi-asset step (levgym.engine.portfolio_borrowers,
levgym.engine.portfolio_treasury): parity with the naive loop, the accounting identities (with the
treasury's), their effect, and that the defaults leave the step as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym.engine import portfolio
from levgym.engine import portfolio_borrowers as PB
from levgym.engine import portfolio_market as PM
from levgym.engine import portfolio_treasury as PT
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
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
    if cover == "reserves_then_lenders":  # the treasury, then the lenders, pay all of it
        paid = c["deficit_covered_asset"] + c["lender_loss_asset"]
        assert np.allclose(paid, c["deficit_asset"], rtol=1e-12, atol=1e-9)
        assert np.all(c["lender_loss_asset"] >= 0.0)
    else:
        assert np.all(c["lender_loss_asset"] == 0.0)
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


def test_reserves_then_lenders_pays_the_deficit_as_the_single_engine():
    """A hand-made state: USDC deficit 10 (3 of it covered already), the USDC treasury holds 4:
    the treasury pays 4 and the lenders 3 (their supply falls by 3, the single engine's
    ``write_off_split``); a WETH deficit of 2 against a treasury of 5 WETH is paid by the
    treasury alone. Nothing stays outstanding; the treasury identity holds."""
    params = _params(0.0, "reserves_then_lenders")
    state, _ = _setup(1, 1, 2, params, 1, 0.0)
    w, q = RES.index("WETH"), RES.index("USDC")
    c = {k: v.copy() for k, v in state.counters.items()}
    c["deficit_asset"][0, q], c["deficit_covered_asset"][0, q] = 10.0, 3.0
    c["deficit_asset"][0, w] = 2.0
    c["treasury_interest_asset"][0, q], c["treasury_interest_asset"][0, w] = 7.0, 5.0
    tre = np.zeros_like(state.treasury_asset)
    tre[0, w], tre[0, q] = 5.0, 4.0
    lend = state.lender_supply_asset.copy()
    s = PT.cover_deficit(state.replace(counters=c, treasury_asset=tre), params)
    assert s.counters["deficit_covered_asset"][0, q] == pytest.approx(7.0)
    assert s.counters["lender_loss_asset"][0, q] == pytest.approx(3.0)
    assert s.lender_supply_asset[0, q] == pytest.approx(lend[0, q] - 3.0)
    assert s.treasury_asset[0, q] == 0.0 and s.treasury_asset[0, w] == pytest.approx(3.0)
    assert s.counters["lender_loss_asset"][0, w] == 0.0
    assert s.lender_supply_asset[0, w] == lend[0, w]
    assert np.all(PT.outstanding_deficit(s) == 0.0)
    assert np.allclose(PT.treasury_gap(s), 0.0)
    # a second cover finds nothing left to pay
    s2 = PT.cover_deficit(s, params)
    assert np.array_equal(s2.lender_supply_asset, s.lender_supply_asset)
    assert np.array_equal(s2.treasury_asset, s.treasury_asset)


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
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.08, 0.2]),
    cover=st.sampled_from(["treasury_each_step", "reserves_then_lenders"]),
)
def test_numba_substep_covers_deficits_and_counts_the_treasury_as_numpy(seed, crash, cover):
    """The compiled substep runs the deficit cover after its kernel and counts the treasury's
    interest: the same state as the numpy path, and the treasury identity holds."""
    params = _params(0.0, cover)
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


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.0, 0.05, 0.15]),
    defensive=st.sampled_from([0.3, 1.0]),
    capacity=st.sampled_from([0.02, 0.5]),
    repay_share=st.sampled_from([0.0, 0.5, 1.0]),
    trigger=st.sampled_from([(1.05, 1.3), (1.2, 1.6)]),
    rebalance=st.booleans(),
    cover=st.sampled_from(PT.DEFICIT_COVER),
)
def test_numba_borrower_phase_matches_numpy_and_reference(
    seed, crash, defensive, capacity, repay_share, trigger, rebalance, cover
):
    """The compiled substep runs the borrower phase (the same rules, compiled): with behaviours
    drawn by Hypothesis, every state array (capacities included) equals the numpy path to 1e-12
    and the loop twin to 1e-9, with the same cascade rounds per env."""
    params = _params(
        defensive, cover, capacity_frac=capacity, repay_share_frac=repay_share,
        trigger_hf_min=trigger[0], trigger_hf_max=trigger[1], rebalance=rebalance,
    )  # fmt: skip
    state, f = _setup(seed, 3, 8, params, 3, crash)
    a = b = _with_behaviours(state, params, seed)
    ref = PM.state_to_dict(a)
    for t in range(1, f.shape[0]):
        a, r_np = PM.substep(a, f[t], RES, params)
        b, r_nb = PM.substep(b, f[t], RES, params, backend="numba")
        ref = ref_substep(RES, ref, f[t], params)
        np.testing.assert_array_equal(r_np, r_nb)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(db[key], ref[key], rtol=1e-9)


def test_numba_borrower_phase_acts_as_numpy_on_a_fall_and_in_calm():
    """Not a vacuous parity: on a fall the defenders top up and repay, in calm the rebalancers
    withdraw and borrow, and the compiled phase does the same to 1e-12."""
    for crash, rebalance, counters in (
        (0.1, False, ("added_collateral_asset", "repaid_by_borrowers_asset")),
        (0.0, True, ("withdrawn_collateral_asset", "borrowed_asset")),
    ):
        params = _params(1.0, "none", rebalance=rebalance)
        state, f = _setup(3, 2, 32, params, 3, crash)
        a = b = _with_behaviours(state, params, 3)
        for t in range(1, f.shape[0]):
            a, _ = PM.substep(a, f[t], RES, params)
            b, _ = PM.substep(b, f[t], RES, params, backend="numba")
        for c in counters:
            assert a.counters[c].sum() > 0
            _close(b.counters[c], a.counters[c], rtol=1e-12)
        _close(b.defend_capacity_usd, a.defend_capacity_usd, rtol=1e-12)
        assert not np.array_equal(b.defend_capacity_usd, state.defend_capacity_usd)


ISO = aave_v3_ethereum_reserves(("WETH", "wstETH", "WBTC", "USDC", "USDT", "DAI", "LDO"))


@pytest.mark.parametrize("ceiling_usd, usdc_cap", [(7.5e6, 5e9), (2e5, 5e9), (7.5e6, None)])
def test_numba_borrowing_in_isolation_and_under_caps_matches_numpy(ceiling_usd, usdc_cap):
    """Rebalancers that borrow in isolation mode (LDO collateral alone: only borrowable-in-
    isolation stablecoins, within the debt ceiling) and against a borrow cap that the env's
    borrowing fills (scaled down together): the compiled phase equals numpy and the loop twin,
    and the ceiling and the cap hold."""
    res = ISO.replace("LDO", debt_ceiling_usd=ceiling_usd)
    params = _params(1.0, "none", rebalance=True, repay_share_frac=1.0)
    state6, f6 = _setup(9, 2, 16, params, 2, 0.0)
    e, n, _ = state6.shape
    ldo = res.index("LDO")
    f = np.concatenate([f6, np.full(f6.shape[:2] + (1,), 2.0)], axis=-1)
    supply = np.concatenate([state6.supply, np.zeros((e, n, 1))], axis=-1)
    debt = np.concatenate([state6.debt, np.zeros((e, n, 1))], axis=-1)
    q = res.index("USDC")
    supply[:, ::2, :] = 0.0
    debt[:, ::2, :] = 0.0
    supply[:, ::2, ldo] = 200_000.0  # $400k of LDO, alone: isolation mode
    debt[:, ::2, q] = 40_000.0  # far above the band: the rebalancers borrow
    if usdc_cap is None:  # a cap just above the env's USDC debt: the fill binds
        usdc_cap = float(debt[..., q].sum(axis=1).max()) + 50_000.0
    res = res.replace("USDC", borrow_cap_asset=usdc_cap)
    state = PM.init_state(res, params, supply, debt, state6.emode_row, f[0])
    b = PB.assign(params.borrowers, state.supply, state.oracle_usd, 9, res)
    a = nb = PB.with_behaviours(state, b)
    ref = PM.state_to_dict(a)
    for t in range(1, f.shape[0]):
        a, _ = PM.substep(a, f[t], res, params)
        nb, _ = PM.substep(nb, f[t], res, params, backend="numba")
        ref = ref_substep(res, ref, f[t], params)
    da, db = PM.state_to_dict(a), PM.state_to_dict(nb)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(db[key], ref[key], rtol=1e-9)
    borrowed = nb.counters["borrowed_asset"]
    assert borrowed[:, q].sum() > 0
    # isolated positions: $320k of debt per env at the start; a $200k ceiling leaves no room
    iso_borrowed = nb.debt[:, ::2, q] - debt[:, ::2, q]
    if ceiling_usd < 320_000.0:
        assert np.all(iso_borrowed < 1e-3 * debt[:, ::2, q])  # interest only
    else:
        assert np.any(iso_borrowed > 1_000.0)
    # new borrowing stays within the cap (interest may pass it, as on Aave)
    cap_plus_interest = usdc_cap + nb.counters["interest_asset"][:, q]
    assert np.all(nb.debt[..., q].sum(axis=1) <= cap_plus_interest * (1 + 1e-12))
    # WETH and LDO are not borrowable in isolation
    assert np.all(nb.debt[:, ::2, :][..., [res.index("WETH"), ldo]] == 0.0)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.15]),
    react=st.sampled_from([(0.05, 0.5), (0.0, 0.2), (0.5, 1.0)]),
    gas=st.sampled_from([0.0, 30.0, 400.0]),
    rebalance=st.booleans(),
)
def test_reaction_probabilities_numpy_numba_and_loop_agree(seed, crash, react, gas, rebalance):
    """Defenders that react with a probability (the single engine's ``react_prob`` over
    ``1 + gas / reaction_gas_ref_gwei``), on uniforms given per substep: numpy and numba to
    1e-12, and the loop twin, over a path; the uniforms decide (a slot whose uniform is above its
    probability does not act, so the run differs from one where every defender acts)."""
    lo, hi = react
    params = _params(
        0.6, "reserves_then_lenders", react_prob_min=lo, react_prob_max=hi, rebalance=rebalance
    )
    state, f = _setup(seed, 2, 8, params, 4, crash)
    state = _with_behaviours(state, params, seed)
    assert state.defend_react_prob is not None
    a = b = state
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        noise = np.random.default_rng([seed, t]).random(state.shape[:2])
        a, _ = PM.substep(a, f[t], RES, params, gas_gwei=gas, noise_u=noise)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba", gas_gwei=gas, noise_u=noise)
        ref = ref_substep(RES, ref, f[t], params, gas_gwei=gas, noise_u=noise)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_reaction_probabilities_decide_who_acts():
    """Hand-made: every slot defensive, a fall; with probability 0 nobody acts (the step equals
    the passive one), with 1 everyone acts (the step equals the one without probabilities), and
    the gas factor divides the probability (a uniform of 0.4 against 0.5 reacts at 0 gwei and
    not at 150 gwei with the reference at 150: 0.5 / 2 = 0.25)."""
    base = _params(1.0, "none", capacity_frac=1.0)
    state, f = _setup(5, 2, 16, base, 2, 0.15)
    b = PB.assign(base.borrowers, state.supply, state.oracle_usd, 5, RES)
    s_beh = PB.with_behaviours(state, b)
    noise = np.full(state.shape[:2], 0.4)

    def step(s, gas=0.0):
        return PM.substep(s, f[1], RES, base, gas_gwei=gas, noise_u=noise)[0]

    passive = PM.substep(state, f[1], RES, base)[0]
    every = PM.substep(s_beh, f[1], RES, base)[0]
    assert every.counters["added_collateral_asset"].sum() > 0
    never = step(s_beh.replace(defend_react_prob=np.zeros(state.shape[:2])))
    assert np.array_equal(never.supply, passive.supply) and np.array_equal(never.debt, passive.debt)
    sure = step(s_beh.replace(defend_react_prob=np.ones(state.shape[:2])))
    assert np.array_equal(sure.supply, every.supply) and np.array_equal(sure.debt, every.debt)
    half = s_beh.replace(defend_react_prob=np.full(state.shape[:2], 0.5))
    assert np.array_equal(step(half, 0.0).supply, every.supply)
    cold = step(half, 150.0)
    assert np.array_equal(cold.supply, passive.supply) and np.array_equal(cold.debt, passive.debt)
    with pytest.raises(ValueError, match="noise_u=None with reaction probabilities"):
        PM.substep(half, f[1], RES, base)
    with pytest.raises(ValueError, match="react_prob_max=0.1 is below"):
        PB.PortfolioBorrowerParams(react_prob_min=0.2, react_prob_max=0.1)


def test_reaction_probabilities_leave_the_other_draws_and_run_draws_noise():
    """The reaction probabilities are drawn after the triggers, kinds and capacities (the same
    with or without them); ``run`` draws the uniforms from its ``noise_seed``."""
    plain = _params(0.5, "none")
    react = _params(0.5, "none", react_prob_min=0.1, react_prob_max=0.3)
    state, f = _setup(9, 2, 16, plain, 3, 0.1)
    b0 = PB.assign(plain.borrowers, state.supply, state.oracle_usd, 9, RES)
    b1 = PB.assign(react.borrowers, state.supply, state.oracle_usd, 9, RES)
    assert b0.react_prob is None
    assert np.array_equal(b0.trigger_hf, b1.trigger_hf) and np.array_equal(b0.repays, b1.repays)
    assert np.all((b1.react_prob >= 0.1) & (b1.react_prob <= 0.3))
    s = PB.with_behaviours(state, b1)
    r1 = PM.run(s, f, RES, react, noise_seed=1)
    r2 = PM.run(s, f, RES, react, noise_seed=1)
    assert np.array_equal(r1.supply, r2.supply)
    manual = s
    for t in range(1, f.shape[0]):
        noise = np.random.default_rng([1, 1518, t]).random(s.shape[:2])
        manual, _ = PM.substep(manual, f[t], RES, react, noise_u=noise)
    assert np.array_equal(manual.supply, r1.supply) and np.array_equal(manual.debt, r1.debt)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.08, 0.2]),
    close=st.sampled_from(
        [
            (0.5, 0.0, 0.0, "position_debt", 0.0),
            (1.0, 1.0, 2000.0, "position_debt", 0.0),
            (0.25, 0.9, 50_000.0, "pair", 1000.0),
            (0.5, 0.95, 2000.0, "pair", 20_000.0),
        ]
    ),  # fmt: skip
)
def test_close_terms_numpy_numba_and_loop_agree(seed, crash, close):
    """The close-factor and leftover options (the single-asset presets' terms, and v3.3's with
    other sizes) on multi-asset books: numpy and numba to 1e-12, the loop twin to 1e-9."""
    cf, full_hf, small, by, leftover = close
    params = dataclasses.replace(
        _params(0.0, "none"), close_factor=cf, full_close_hf=full_hf, min_close_usd=small,
        min_close_by=by, leftover_usd=leftover,
    )  # fmt: skip
    state, f = _setup(seed, 2, 8, params, 4, crash)
    a = b = state
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        a, _ = PM.substep(a, f[t], RES, params)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba")
        ref = ref_substep(RES, ref, f[t], params)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_close_terms_default_to_v33_and_refuse_bad_values():
    assert PM.PortfolioMarketParams().close_terms == portfolio.V33_CLOSE_TERMS
    with pytest.raises(ValueError, match="min_close_by='debt' is not allowed"):
        PM.PortfolioMarketParams(min_close_by="debt")
    with pytest.raises(ValueError, match="close_factor=0 is out of range"):
        PM.PortfolioMarketParams(close_factor=0.0)
    # a hand-made call: 50 % always (no full close at HF 0.5, no small-position rule)
    c, d = 1.0, 2_500.0  # 1 WETH at $3,000 against $2,500: HF 3000 * 0.8 / 2500 = 0.96
    v2 = (0.5, 0.0, 0.0, 0.0, 0.0)
    rep, tot, fee, rev = portfolio.liquidation_call(c, d, 3000.0, 1.0, 0.05, 0.0, 0.5, d, d, *v2)
    assert rep == pytest.approx(1_250.0) and not rev
    rep33, *_ = portfolio.liquidation_call(c, d, 3000.0, 1.0, 0.05, 0.0, 0.5, d, d)
    assert rep33 == pytest.approx(d)  # v3.3: all of it at HF <= 0.95


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.15]),
    feed=st.sampled_from(["exact", "chainlink", "twap"]),
    bias_size=st.sampled_from([0.0, -0.1, 0.05]),
    held_share=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_oracle_drivers_numpy_numba_and_loop_agree(seed, crash, feed, bias_size, held_share):
    """The oracle drivers per env and reserve (a manipulation of the reported answer, a feed
    that keeps its answer), drawn per substep, on multi-asset books with every reserve's feed
    ``exact``, ``chainlink`` or ``twap``: numpy and numba to 1e-12, the loop twin to 1e-9."""
    from .test_portfolio_market import _with_feed

    res = _with_feed(RES, feed)
    params = _params(0.0, "none")
    state, f = _setup(seed, 2, 8, params, 4, crash)
    a = b = state
    ref = PM.state_to_dict(state)
    rng = np.random.default_rng([seed, 7])
    for t in range(1, f.shape[0]):
        bias = bias_size * (rng.random(state.oracle_usd.shape) < 0.5)
        held = rng.random(state.oracle_usd.shape) < held_share
        kw = dict(oracle_bias_frac=bias, oracle_held=held)
        a, _ = PM.substep(a, f[t], res, params, **kw)
        b, _ = PM.substep(b, f[t], res, params, backend="numba", **kw)
        ref = ref_substep(res, ref, f[t], params, **kw)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_oracle_drivers_hold_and_bias_the_feed():
    """Hand-made: a held feed keeps its answer through a fall (no liquidation), a bias moves
    the answer by exactly ``1 + bias``; no drivers is the step as before."""
    params = _params(0.0, "none")
    state, f = _setup(3, 2, 16, params, 1, 0.3)
    plain, _ = PM.substep(state, f[1], RES, params)
    zero, _ = PM.substep(state, f[1], RES, params, oracle_bias_frac=0.0, oracle_held=False)
    assert np.array_equal(plain.supply, zero.supply) and np.array_equal(plain.oracle_usd, zero.oracle_usd)  # fmt: skip
    held, _ = PM.substep(state, f[1], RES, params, oracle_held=True)
    assert np.array_equal(held.oracle_usd, state.oracle_usd)
    assert held.liquidations.sum() == 0 and plain.liquidations.sum() > 0
    w = RES.index("WETH")
    bias = np.zeros(state.oracle_usd.shape)
    bias[:, w] = 0.1
    up, _ = PM.substep(state, f[1], RES, params, oracle_bias_frac=bias)
    np.testing.assert_allclose(up.feed_usd[:, w], plain.feed_usd[:, w] * 1.1, rtol=1e-12)
    with pytest.raises(ValueError, match="oracle_bias_frac must be finite and > -1"):
        PM.substep(state, f[1], RES, params, oracle_bias_frac=-1.0)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.05, 0.15]),
    liq=st.sampled_from([None, 1.0, 0.3]),
    arb=st.sampled_from([None, 0.1, 1.0]),
    curve=st.sampled_from(["cpmm", "stableswap"]),
)
def test_pool_drivers_numpy_numba_and_loop_agree(seed, crash, liq, arb, curve):
    """The pool drivers per env and reserve (liquidity relative to the start, arbitrage speed),
    drawn per substep around the sampled level, constant-product or StableSwap stable legs:
    numpy and numba to 1e-12, the loop twin to 1e-9."""
    params = dataclasses.replace(_params(0.0, "none"), stable_pool=curve)
    state, f = _setup(seed, 2, 8, params, 4, crash)
    a = b = state
    ref = PM.state_to_dict(state)
    rng = np.random.default_rng([seed, 8])
    shape = state.oracle_usd.shape
    for t in range(1, f.shape[0]):
        kw = {}
        if liq is not None:
            kw["liquidity_frac"] = liq * rng.uniform(0.8, 1.0, shape)
        if arb is not None:
            kw["arb_speed_frac"] = arb * rng.uniform(0.5, 1.0, shape)
        a, _ = PM.substep(a, f[t], RES, params, **kw)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba", **kw)
        ref = ref_substep(RES, ref, f[t], params, **kw)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_pool_drivers_set_the_depth_and_the_speed():
    """Hand-made: ``liquidity_frac`` 0.5 halves every pool's ``sqrt(x * y)`` against its base;
    ``arb_speed_frac`` 0 leaves the pools' prices where they were; the default speed as a
    driver is the step without drivers; bad values are refused."""
    params = _params(0.0, "none")
    state, f = _setup(4, 2, 8, params, 1, 0.1)
    has_pool, _, _ = PM.pool_layout(RES, params)
    half, _ = PM.substep(state, f[1], RES, params, liquidity_frac=0.5)
    depth = np.sqrt(half.pool_asset * half.pool_quote)
    np.testing.assert_allclose(depth[:, has_pool], 0.5 * state.pool_liquidity_base[:, has_pool], rtol=1e-9)  # fmt: skip
    calm, fc = _setup(4, 2, 8, params, 1, 0.0)
    still, _ = PM.substep(calm, fc[1], RES, params, arb_speed_frac=0.0)
    assert still.liquidations.sum() == 0
    np.testing.assert_allclose(still.pool_quote / still.pool_asset, calm.pool_quote / calm.pool_asset, rtol=1e-12)  # fmt: skip
    plain, _ = PM.substep(state, f[1], RES, params)
    same, _ = PM.substep(state, f[1], RES, params, arb_speed_frac=params.arb_speed_frac)
    assert np.array_equal(plain.pool_asset, same.pool_asset)
    with pytest.raises(ValueError, match="liquidity_frac must be finite and > 0"):
        PM.substep(state, f[1], RES, params, liquidity_frac=0.0)
    with pytest.raises(ValueError, match="arb_speed_frac must be in"):
        PM.substep(state, f[1], RES, params, arb_speed_frac=1.5)
