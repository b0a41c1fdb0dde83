"""K = 1 parity of the asset-axis step's exits, arrivals and new-supply limits with the
single-asset engine (docs/cross-margin.md, rows 10 and 11 of "What a single-asset preset uses
that the asset-axis step lacks"): the single engine's default book (30 % defensive, 20 %
loopers, 10 % of the slots free at the start) with exits and arrivals, a supply cap that binds
and a freeze, mapped onto the asset-axis state by :mod:`levgym.engine.portfolio_single` (its
``active`` flags and templates through :func:`levgym.engine.portfolio_borrowers.with_turnover`),
stepped with the same
uniforms and compared after every substep to 1e-12 on numpy and numba."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levgym import scenarios
from levgym.engine import portfolio_borrowers as PB
from levgym.engine import portfolio_market as PM
from levgym.engine import portfolio_single as PS
from levgym.engine.orders import Orders
from levgym.engine.portfolio import collateral_mask
from levgym.engine.reference_portfolio import ref_substep

from . import test_portfolio_single_parity as SP
from . import test_portfolio_single_parity_borrowers as SB
from .test_portfolio_market import RES, SETTINGS, _close, _setup

ARRIVAL_RATE_PER_H = 1.0
EXIT_RATE_PER_H = 0.4
"""Rates above the single engine's defaults (1 %/h, 0.2 %/h) so that a short run on a small
book sees arrivals and exits in most envs."""


def _single_params(oracle_kind: str, keepers: str, supply_cap_asset: float = np.inf):
    p = SB._single_params(oracle_kind, keepers)
    b = dataclasses.replace(
        p.borrowers, arrival_rate_per_h=ARRIVAL_RATE_PER_H, exit_rate_per_h=EXIT_RATE_PER_H
    )
    pr = dataclasses.replace(p.protocol, supply_cap_asset=supply_cap_asset)
    return dataclasses.replace(p, borrowers=b, protocol=pr)


def _portfolio_params(p) -> PM.PortfolioMarketParams:
    """The K = 1 market parameters of ``p`` (:func:`levgym.engine.portfolio_single.single_market_params`:
    its exit and arrival rates, their odds' elasticities and the supply cap on new supply)."""
    return SP._portfolio_params(p, p.market.arb_speed_frac)


def _case(oracle_kind, keepers, knobs, scenario="shock", cap_frac=None, steps=8):
    """The single engine's start state on ``scenario``; with ``cap_frac`` a WETH supply cap of
    ``cap_frac`` times the median env's collateral at the start (some envs start above it)."""
    e, n = 6, 64
    p = _single_params(oracle_kind, keepers)
    gas = SP.GAS_GWEI[keepers]
    drivers = scenarios.get(scenario).drivers(e, steps, p, 3, {**knobs, "gas_gwei": gas})

    s = SP._start_state(p, drivers, e, n)
    if cap_frac is not None:
        cap = float(cap_frac * np.median(s.collateral_asset.sum(axis=1)))
        p = _single_params(oracle_kind, keepers, cap)
        s = SP._start_state(p, drivers, e, n)
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    return p, rows, SP._reserves(p), _portfolio_params(p), s


def _block(rows, freeze_at=()):
    """Each substep's ``arrival_mult`` driver, and the governor's freeze in substeps
    ``freeze_at`` of envs 0-2 (the single engine's ``freeze_borrow`` order)."""

    def block(t, row):
        extra = {"arrival_mult": row.arrival_mult}
        if t not in freeze_at:
            return None, extra
        frz = np.arange(row.arrival_mult.shape[0]) < 3
        return Orders(freeze_borrow=frz), {**extra, "freeze": frz}

    return block


def _agree(s0, s1, ps, res):
    """What ``SP._run_both`` does not compare: the borrowers' withdrawals and borrowing."""
    w, u = res.index("WETH"), res.index("USDC")
    c = ps.counters
    np.testing.assert_allclose(
        c["withdrawn_collateral_asset"][:, w],
        s1.withdrawn_collateral_asset - s0.withdrawn_collateral_asset,
        rtol=1e-12, atol=1e-9,
    )  # fmt: skip
    np.testing.assert_allclose(
        c["borrowed_asset"][:, u], s1.borrowed_usd - s0.borrowed_usd, rtol=1e-12, atol=1e-6
    )


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults")])
@pytest.mark.parametrize("knobs", [SB.FALL, SB.RISE], ids=["fall", "rise"])
def test_a_run_with_the_single_engines_exits_and_arrivals(backend, oracle_kind, keepers, knobs):
    """The single engine's default book with exits and arrivals: one uniform per slot decides
    reaction, exit (healthy, the top ``p_exit``) and arrival (a free slot, below
    ``p_arrive``), both odds from the LTV and the USDC rate; an arrival brings its template's
    collateral and borrows to its template HF, with the loopers' re-levering within the
    liquidity. The run equals the single engine's to 1e-12 after every substep, the ``active``
    flags and the counts of arrivals and exits exactly."""
    scenario = "gbm_calm" if knobs is SB.RISE else "shock"
    p, rows, res, params, s = _case(oracle_kind, keepers, knobs, scenario)
    assert np.any(~s.active)  # 10 % of the slots free at the start
    s0, s1, ps = SP._run_both(p, rows, res, params, s, backend, _block(rows))
    _agree(s0, s1, ps, res)
    assert ps.arrivals.sum() > 0 and ps.exits.sum() > 0
    assert np.any(s1.active & ~s0.active) and np.any(s0.active & ~s1.active)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_binding_supply_cap_and_a_freeze(backend):
    """A WETH supply cap near the book's collateral (the arrivals' collateral and the
    loopers' purchases scaled to its room, an arrival scaled to nothing stays out) and the
    governor's freeze in some substeps of half the envs (no new supply or borrowing there): the
    run equals the single engine's to 1e-12 after every substep; without the cap the arrivals
    bring more collateral, and without the freeze the frozen envs borrow more."""
    p, rows, res, params, s = _case("chainlink", "defaults", SB.RISE, "gbm_calm", cap_frac=1.02)
    frozen_at = (2, 3, 4)
    s0, s1, ps = SP._run_both(p, rows, res, params, s, backend, _block(rows, frozen_at))
    _agree(s0, s1, ps, res)
    w = res.index("WETH")
    open_params = dataclasses.replace(
        params, borrowers=dataclasses.replace(params.borrowers, supply_cap_new_supply=False)
    )
    po = _portfolio_only(s0, rows, res, open_params, backend, _block(rows, frozen_at))
    pf = _portfolio_only(s0, rows, res, params, backend, _block(rows))
    np.testing.assert_allclose(_portfolio_only(s0, rows, res, params, backend, _block(rows, frozen_at)).supply, ps.supply, rtol=1e-12)  # fmt: skip
    added = ps.counters["added_collateral_asset"][:, w].sum()
    assert po.counters["added_collateral_asset"][:, w].sum() > added
    u = res.index("USDC")
    b, bf = ps.counters["borrowed_asset"][:3, u], pf.counters["borrowed_asset"][:3, u]
    assert bf.sum() > b.sum()


def _portfolio_only(s0, rows, res, params, backend, block):
    """The asset-axis run alone from the mapped single state ``s0`` (as ``SP._run_both`` maps
    it), on the same uniforms and drivers."""
    ps = PS.from_single_state(s0, res, params)
    e, n = s0.collateral_asset.shape
    for t, row in enumerate(rows):
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        _, extra = block(t, row)
        ps, _ = PM.substep(
            ps, f, res, params, backend=backend, gas_gwei=row.gas_gwei, noise_u=noise, **extra
        )
    return ps


# ----------------------------------------------------------------------------- multi-asset books


def _turnover_book(seed: int, params, crash: float, free_frac: float = 0.25, steps: int = 4):
    """A multi-asset book with defenders and loopers (``params``), ``free_frac`` of its slots
    free at the start; every slot's template is its drawn position's largest collateral (USD)
    and amount, its HF uniform in [1.05, 2]."""
    state, f = _setup(seed, 2, 12, params, steps, crash)
    rng = np.random.default_rng([seed, 15])
    free = rng.random(state.shape[:2]) < free_frac
    free[:, 0] = False
    cm = collateral_mask(state.supply, RES)
    tres = np.argmax(np.where(cm, state.supply * state.oracle_usd[:, None, :], -1.0), axis=-1)
    tcoll = np.take_along_axis(state.supply, tres[..., None], axis=-1)[..., 0]
    supply = np.where(free[..., None], 0.0, state.supply)
    debt = np.where(free[..., None], 0.0, state.debt)
    state = PM.init_state(RES, params, supply, debt, state.emode_row, f[0])
    b = PB.assign(params.borrowers, state.supply, state.oracle_usd, seed, RES)
    state = PB.with_behaviours(state, b)
    thf = 1.05 + 0.95 * rng.random(free.shape)
    return PB.with_turnover(state, ~free, tres, tcoll, thf), f


def _capped(state, frac: float):
    """``RES`` with each reserve's supply cap ``frac`` times the largest env's supply (borrowers'
    and lenders') at the start."""
    held = state.supply.sum(axis=1) + state.lender_supply_asset
    res = RES
    for k, r in enumerate(RES.reserves):
        res = res.replace(r.symbol, supply_cap_asset=max(float(frac * held[:, k].max()), 1.0))
    return res


def _three_ways_turnover(state, f, res, params, seed, freeze_at=(), gas=30.0):
    """numpy, numba and the loop twin stepped through ``f`` on the same uniforms, with an
    ``arrival_mult`` of 1.5 and, in substeps ``freeze_at``, env 0 frozen."""
    a = b = state
    ref = PM.state_to_dict(state)
    e = state.shape[0]
    for t in range(1, f.shape[0]):
        noise = np.random.default_rng([seed, t]).random(state.shape[:2])
        kw = {"gas_gwei": gas, "noise_u": noise, "arrival_mult": np.full(e, 1.5)}
        if t in freeze_at:
            kw["freeze"] = np.arange(e) == 0
        a, _ = PM.substep(a, f[t], res, params, **kw)
        b, _ = PM.substep(b, f[t], res, params, backend="numba", **kw)
        ref = ref_substep(res, ref, f[t], params, **kw)
    return a, b, ref


def _turnover_params(looper: float, exit_rate: float, arrival_rate: float, caps: bool, **kw):
    return SB._book_params(
        looper, 0.3, exit_rate_per_h=exit_rate, arrival_rate_per_h=arrival_rate,
        supply_cap_new_supply=caps, **kw,
    )  # fmt: skip


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([-0.03, 0.02, 0.1]),
    looper=st.sampled_from([0.0, 0.4]),
    rates=st.sampled_from([(0.3, 0.5), (0.0, 0.9), (0.9, 0.0)]),
    caps=st.sampled_from([None, 1.0, 1.02]),
    react=st.sampled_from([(1.0, 1.0), (0.05, 0.5)]),
    rebalance=st.booleans(),
)
def test_exits_and_arrivals_numpy_numba_and_loop_agree(
    seed, crash, looper, rates, caps, react, rebalance
):
    """Exits and arrivals over multi-asset books, beside defenders and loopers, with and
    without supply caps on new supply (caps at or just above the start's supply: they bind),
    reaction probabilities, defenders that rebalance (borrowing against the totals after the
    exits) and a freeze in one substep: numpy and numba agree to 1e-12 and the loop twin to
    1e-9 (balances, pools, counters, ``active`` flags, arrivals and exits)."""
    params = _turnover_params(
        looper, rates[0], rates[1], caps is not None, react_prob_min=react[0],
        react_prob_max=react[1], rebalance=rebalance,
    )  # fmt: skip
    state, f = _turnover_book(seed, params, crash)
    res = RES if caps is None else _capped(state, caps)
    a, b, ref = _three_ways_turnover(state, f, res, params, seed, freeze_at=(2,))
    da, db = PM.state_to_dict(a), PM.state_to_dict(b)
    for key, v in da.items():
        if isinstance(v, np.ndarray):
            _close(db[key], v, rtol=1e-12)
            _close(v, ref[key])


def test_exits_and_arrivals_keep_the_identities_and_empty_slots():
    """With exits and arrivals (and loopers) the per-asset identities hold; exited slots hold
    nothing and free slots are what arrivals fill; with the rates at 0 the ``active`` flags
    change nothing (the run equals the run without them)."""
    params = _turnover_params(0.4, 0.5, 0.9, True)
    state, f = _turnover_book(11, params, -0.03, steps=6)
    res = _capped(state, 1.02)
    a, b, _ = _three_ways_turnover(state, f, res, params, 11, freeze_at=(3,))
    assert a.arrivals.sum() > 0 and a.exits.sum() > 0
    for s in (a, b):
        coll_gap, debt_gap = PM.accounting_gaps(s)
        _close(coll_gap, np.zeros_like(coll_gap))
        _close(debt_gap, np.zeros_like(debt_gap))
        held = (s.supply > 0).any(axis=-1) | (s.debt > 0).any(axis=-1)
        assert not np.any(held & ~s.active)
    off = _turnover_params(0.4, 0.0, 0.0, False)
    with_flags, _, _ = _three_ways_turnover(state, f, RES, off, 11)
    plain = state.replace(active=None, template_reserve=None, template_collateral_asset=None,
                          template_hf=None, arrivals=None, exits=None)  # fmt: skip
    without, _, _ = _three_ways_turnover(plain, f, RES, off, 11)
    np.testing.assert_array_equal(with_flags.supply, without.supply)
    np.testing.assert_array_equal(with_flags.debt, without.debt)


def test_turnover_params_and_templates_are_checked():
    """Bad rates, templates and flags name what is allowed."""
    with pytest.raises(ValueError, match="exit_rate_per_h"):
        PB.PortfolioBorrowerParams(exit_rate_per_h=1.5)
    with pytest.raises(ValueError, match="arrival_rate_per_h"):
        PB.PortfolioBorrowerParams(arrival_rate_per_h=-0.1)
    state, _ = _setup(3, 2, 6, SB._book_params(0.0), 1, 0.0)
    with pytest.raises(ValueError, match="active=False on slots that hold a position"):
        PB.with_turnover(state, False, 0, 1.0, 1.5)
    with pytest.raises(ValueError, match="template_reserve"):
        PB.with_turnover(state, True, RES.k, 1.0, 1.5)
    with pytest.raises(ValueError, match="template_hf"):
        PB.with_turnover(state, True, 0, 1.0, 0.0)
    on = PB.with_turnover(state, True, 0, 1.0, 1.5)
    params = _turnover_params(0.0, 0.1, 0.1, False)
    f = state.fundamental_usd
    with pytest.raises(ValueError, match="noise_u=None"):
        PM.substep(on, f, RES, params)
    with pytest.raises(ValueError, match="arrival_mult"):
        PM.substep(on, f, RES, params, noise_u=np.zeros(on.shape[:2]), arrival_mult=-1.0)
