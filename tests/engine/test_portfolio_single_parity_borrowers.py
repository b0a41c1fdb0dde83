"""K = 1 parity of the asset-axis step's borrower phase with the single-asset engine's default
book behaviours (docs/cross-margin.md, rows 9-11 of "What a single-asset preset uses that the
asset-axis step lacks"): the single engine's loopers re-lever through the pool and deleverage
into it (:func:`levgym.engine.portfolio_borrowers.loop`). Runs are chained over the substeps and
compared after every one to 1e-12, on numpy and numba, with the helpers of
``test_portfolio_single_parity`` (the loopers' targets and bands mapped by
:mod:`levgym.engine.portfolio_single`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym import scenarios
from levgym.engine import portfolio_borrowers as PB
from levgym.engine import portfolio_market as PM
from levgym.engine.reference_portfolio import ref_substep
from levgym.engine.rules import LOOPER

from . import test_portfolio_single_parity as SP
from .test_portfolio_market import RES, SETTINGS, _close, _setup


def _single_params(oracle_kind: str, keepers: str, looper_frac: float = 0.2):
    """The single engine's default book behaviours: 30 % defensive, ``looper_frac`` loopers
    (20 % by default), the rest passive; no arrivals or exits."""
    p = SP._single_params(oracle_kind, keepers, 0.3)
    b = dataclasses.replace(p.borrowers, passive_frac=0.7 - looper_frac, looper_frac=looper_frac)
    return dataclasses.replace(p, borrowers=b)


def _shock_case(oracle_kind, keepers, knobs, scenario="shock", looper_frac=0.2, steps=8):
    p = _single_params(oracle_kind, keepers, looper_frac)
    e, n = 6, 64
    gas = SP.GAS_GWEI[keepers]
    drivers = scenarios.get(scenario).drivers(e, steps, p, 3, {**knobs, "gas_gwei": gas})
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    res = SP._reserves(p)
    params = SP._portfolio_params(p, p.market.arb_speed_frac)
    s = SP._start_state(p, drivers, e, n)
    return p, rows, res, params, s


FALL = {"start_hour": "0", "drop_hours": "1", "drop_frac": "0.4"}
JUMP = {"start_hour": "0.4", "drop_hours": "0.05", "drop_frac": "0.3"}
RISE = {"drift_annual": "100", "vol_annual": "0.4"}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), SP.RUN_CASES)
@pytest.mark.parametrize("knobs", [FALL, JUMP, RISE], ids=["fall", "jump", "rise"])
def test_a_run_with_the_single_engines_loopers(backend, oracle_kind, keepers, knobs):
    """The single engine's default book (30 % defensive, 20 % loopers, each reacting with its
    probability over ``1 + gas / 150 gwei``): loopers above ``target (1 + band)`` borrow and buy
    collateral in the pool, loopers below ``1 + delever_frac (target - 1)`` sell collateral into
    it and repay, sales then purchases one trade per env. Given the same uniforms and the single
    state's targets (``state.looper_target_hf``), the asset-axis step makes the same trades and
    the run equals the single engine's to 1e-12 after every substep (pool, balances, counters,
    the cascade)."""
    scenario = "gbm_calm" if knobs is RISE else "shock"
    p, rows, res, params, s = _shock_case(oracle_kind, keepers, knobs, scenario)
    assert np.any(s.active & (s.kind == LOOPER))
    s0, s1, ps = SP._run_both(p, rows, res, params, s, backend)
    w, u = res.index("WETH"), res.index("USDC")
    c = ps.counters
    # the loopers traded: sales into the pool on a fall, purchases on a rise
    sold = s1.withdrawn_collateral_asset - s0.withdrawn_collateral_asset
    np.testing.assert_allclose(c["withdrawn_collateral_asset"][:, w], sold, rtol=1e-12, atol=1e-9)
    borrowed = s1.borrowed_usd - s0.borrowed_usd
    np.testing.assert_allclose(c["borrowed_asset"][:, u], borrowed, rtol=1e-12, atol=1e-6)
    if knobs is RISE:
        assert borrowed.sum() > 0
    else:
        assert sold.sum() > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("route", ["v2_venue", "aggregator_cex"])
@pytest.mark.parametrize("knobs", [FALL, JUMP], ids=["fall", "jump"])
def test_loopers_beside_the_keepers_off_pool_venues(backend, route, knobs):
    """Rows 9 and 15 together, as the single engine runs them: its default book's loopers trade
    through the pool while the keepers sell seized collateral to the off-pool venues
    (``aave_v2_weth``'s book venue, or the aggregator / CEX split with a latency), with the
    single engine's close terms: the run equals the single engine's to 1e-12 after every
    substep, and so do the venue counters and the CEX leg's held collateral."""
    from . import test_portfolio_single_parity_venues as V

    p = _single_params("chainlink", "defaults")
    p = dataclasses.replace(p, market=dataclasses.replace(p.market, **V.ROUTES[route]))
    e, n, steps = 6, 64, 8
    knobs = {**knobs, "gas_gwei": SP.GAS_GWEI["defaults"]}
    drivers = scenarios.get("shock").drivers(e, steps, p, 3, knobs)
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    res = SP._reserves(p)
    # the single engine's looper bands, close factor, bad-debt accounting and keeper routing
    params = SP._portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    s = SP._start_state(p, drivers, e, n)
    assert np.any(s.active & (s.kind == LOOPER))
    s0, s1, ps = SP._run_both(p, rows, res, params, s, backend)
    V._venue_counters_agree(s0, s1, ps, res)
    sold_by_loopers = s1.withdrawn_collateral_asset - s0.withdrawn_collateral_asset
    off = s1.keeper_venue_sold_asset + s1.keeper_aggregator_sold_asset + s1.keeper_cex_sold_asset
    assert sold_by_loopers.sum() > 0 and off.sum() > 0 and s1.liquidations.sum() > 0


# ----------------------------------------------------------------------------- multi-asset books


def _book_params(looper_frac: float, defensive: float = 0.3, **kw) -> PM.PortfolioMarketParams:
    return PM.PortfolioMarketParams(
        deficit_cover="reserves_then_lenders",
        borrowers=PB.PortfolioBorrowerParams(
            defensive_frac=defensive, looper_frac=looper_frac, **kw
        ),
        volatile_pool_depth_usd=2e6,
    )


def _book(seed: int, params, crash: float, steps: int = 4):
    state, f = _setup(seed, 2, 12, params, steps, crash)
    b = PB.assign(params.borrowers, state.supply, state.oracle_usd, seed, RES)
    return PB.with_behaviours(state, b), f


def _three_ways(state, f, params, seed, gas=30.0):
    """numpy, numba and the loop twin stepped through ``f`` on the same uniforms."""
    a = b = state
    ref = PM.state_to_dict(state)
    for t in range(1, f.shape[0]):
        noise = np.random.default_rng([seed, t]).random(state.shape[:2])
        a, _ = PM.substep(a, f[t], RES, params, gas_gwei=gas, noise_u=noise)
        b, _ = PM.substep(b, f[t], RES, params, backend="numba", gas_gwei=gas, noise_u=noise)
        ref = ref_substep(RES, ref, f[t], params, gas_gwei=gas, noise_u=noise)
    return a, b, ref


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([-0.03, 0.02, 0.1]),
    looper=st.sampled_from([0.3, 0.7]),
    react=st.sampled_from([(1.0, 1.0), (0.05, 0.5)]),
    band=st.sampled_from([(0.15, 0.5), (0.02, 0.9)]),
)
def test_loopers_numpy_numba_and_loop_agree(seed, crash, looper, react, band):
    """Loopers over multi-asset books (one collateral with a constant-product pool against USDC
    debt loops; other positions do not), beside defenders, with and without reaction
    probabilities, on rising and falling paths: numpy and numba agree to 1e-12 and the loop twin
    to 1e-9, pools, balances and counters."""
    params = _book_params(
        looper, 0.3 if looper < 0.5 else 0.2, react_prob_min=react[0], react_prob_max=react[1],
        relever_band_frac=band[0], delever_frac=band[1],
    )  # fmt: skip
    state, f = _book(seed, params, crash)
    a, b, ref = _three_ways(state, f, params, seed)
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_loopers_trade_through_the_pools_and_keep_the_identities():
    """On a rise the loopers borrow USDC and buy collateral (the pools' asset falls, the
    borrowed and added counters grow); on a fall they sell collateral and repay; the per-asset
    identities hold; a book without looper targets is stepped as before (the phase is skipped)."""
    for crash, sign in ((-0.03, 1), (0.1, -1)):
        params = _book_params(0.7, 0.2, delever_frac=0.9)
        state, f = _book(5, params, crash)
        looping = state.looper_target_hf > 0
        i, ok = PB.looper_slots(state.supply, state.debt, RES, PM.looper_tradable(RES, params), RES.index("USDC"))  # fmt: skip
        assert np.any(looping & ok)
        a, b, _ = _three_ways(state, f, params, 5)
        c = a.counters
        q = RES.index("USDC")
        if sign > 0:
            assert c["borrowed_asset"][:, q].sum() > 0
        else:
            assert c["withdrawn_collateral_asset"].sum() > 0
            assert c["repaid_by_borrowers_asset"][:, q].sum() > 0
        coll_gap, debt_gap = PM.accounting_gaps(a)
        _close(coll_gap, np.zeros_like(coll_gap))
        _close(debt_gap, np.zeros_like(debt_gap))
        plain = state.replace(looper_target_hf=None)
        p1, _, _ = _three_ways(plain, f, params, 5)
        assert not np.allclose(p1.pool_asset, a.pool_asset, rtol=1e-9)


def test_looper_params_and_draws():
    """Looper shares are drawn from the non-defending slots, after the other draws (which stay
    the same); bad values name the field."""
    state, _ = _setup(3, 2, 40, _book_params(0.0), 1, 0.0)
    b0 = PB.assign(_book_params(0.0, 0.3).borrowers, state.supply, state.oracle_usd, 3, RES)
    b1 = PB.assign(_book_params(0.5, 0.3).borrowers, state.supply, state.oracle_usd, 3, RES)
    assert b0.looper_target_hf is None
    np.testing.assert_array_equal(b0.trigger_hf, b1.trigger_hf)
    loop_ = b1.looper_target_hf > 0
    assert loop_.any() and not np.any(loop_ & (b1.trigger_hf > 0))
    assert np.all((b1.looper_target_hf[loop_] >= 1.15) & (b1.looper_target_hf[loop_] <= 1.40))
    with pytest.raises(ValueError, match="looper_frac"):
        PB.PortfolioBorrowerParams(defensive_frac=0.6, looper_frac=0.5)
    with pytest.raises(ValueError, match="looper_target_hf_max=1.1 is below"):
        PB.PortfolioBorrowerParams(looper_target_hf_min=1.2, looper_target_hf_max=1.1)
    with pytest.raises(ValueError, match="delever_frac"):
        PB.PortfolioBorrowerParams(delever_frac=1.5)
