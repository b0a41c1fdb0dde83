"""The multi-protocol step (levgym.engine.multiprotocol): P = 1 equals the multi-asset step,
shared markets carry one protocol's liquidation wave into another's, the isolated-markets split,
the unified margin mode, accounting per protocol and parity with the naive loop twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from levgym.engine import multiprotocol as MP
from levgym.engine import portfolio_market as PM
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from levgym.engine.portfolio_books import draw_book
from levgym.engine.protocol_presets import PROTOCOL_PRESETS, draw_protocol_book, protocol_preset
from levgym.engine.protocols import Protocol
from levgym.scenarios import multiasset as MA

RES = aave_v3_ethereum_reserves()
VOLATILE = np.array([s in ("WETH", "wstETH", "WBTC") for s in RES.symbols])
SETTINGS = settings(
    max_examples=6, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


def _paths(seed: int, e: int, steps: int, crash: float) -> np.ndarray:
    paths = MA.simulate(e, steps + 1, 1.0, seed=seed)
    ratio = PM.initial_exchange_ratio(RES, e)
    f = PM.fundamentals_from_paths(paths.prices_usd, paths.symbols, RES, ratio)
    return f * np.where(VOLATILE, 1.0 - crash, 1.0) ** np.arange(steps + 1)[:, None, None]


def _books(names, params, f0, e, n, seed):
    protocols = tuple(protocol_preset(x) for x in names)
    out = []
    for pr in protocols:
        z = np.zeros((e, 1, RES.k))
        oracle0 = PM.init_state(pr.reserves, params.market, z, z, 0, f0).oracle_usd[0]
        out.append(draw_protocol_book(pr.name, oracle0, e, n, seed))
    return protocols, [b[0] for b in out], [b[1] for b in out], [b[2] for b in out]


def _close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.0, 0.05, 0.15]),
    weight=st.sampled_from([0.0, 0.3]),
    gas=st.sampled_from([0.0, 200.0]),
    fused=st.booleans(),
)
def test_one_aave_protocol_equals_the_multi_asset_step(seed, crash, weight, gas, fused):
    params = PM.PortfolioMarketParams(
        volatile_pool_depth_usd=3e6, oracle_pool_weight_frac=weight, gas_usd_per_call=gas
    )
    e, n = 2, 30
    f = _paths(seed, e, 4, crash)
    z = np.zeros((e, n, RES.k))
    s0 = PM.init_state(RES, params, z, z, 0, f[0])
    book = draw_book(RES, s0.oracle_usd[0], e, n, seed=seed, median_collateral_usd=20_000.0)
    ref = PM.init_state(RES, params, book.supply, book.debt, book.emode_row, f[0])
    ref = PM.run(ref, f, RES, params, fused)
    prot = (Protocol("aave", "aave_v3", RES),)
    mpp = MP.MultiParams(market=params)
    st_ = MP.init_state(prot, mpp, [book.supply], [book.debt], [book.emode_row], f[0])
    st_ = MP.run(st_, f, prot, mpp, fused)
    got = PM.state_to_dict(st_.books[0])
    got["keeper_pnl_usd"] = st_.keeper_pnl_usd
    for key, v in PM.state_to_dict(ref).items():
        if isinstance(v, np.ndarray):
            _close(got[key], v)
    if crash == 0.15:
        assert ref.liquidations.sum() > 0


def test_a_wave_in_one_protocol_raises_anothers_liquidations_on_shared_pools():
    """Morpho's wstETH/USDC book alone, then beside an Aave book of wstETH/USDC borrowers on the
    same pools and paths: Aave's keepers sell the wstETH they seize into the wstETH pool, which
    the Morpho oracle reads (pool weight 0.5), and more Morpho positions go under."""
    mp = PM.PortfolioMarketParams(volatile_pool_depth_usd=3e6, oracle_pool_weight_frac=0.5)
    params = MP.MultiParams(market=mp)
    e, n = 3, 60
    f = _paths(11, e, 6, 0.02)
    names = ("aave_v3_ethereum", "morpho_wsteth_usdc")
    protocols, s, d, r = _books(names, params, f[0], e, n, seed=11)
    # Aave's book: wstETH collateral against USDC, HF 1.01-1.2 at the start
    rng = np.random.default_rng(11)
    c, u = RES.index("wstETH"), RES.index("USDC")
    oracle0 = MP.init_state(protocols, params, s, d, r, f[0]).books[0].oracle_usd
    coll_usd = 40_000.0 * np.exp(rng.standard_normal((e, n)))
    hf = rng.uniform(1.01, 1.2, (e, n))
    s[0] = np.zeros((e, n, RES.k))
    d[0] = np.zeros((e, n, RES.k))
    s[0][..., c] = coll_usd / oracle0[:, c : c + 1]
    d[0][..., u] = coll_usd * RES.lt[c] / hf
    r[0] = np.zeros((e, n), dtype=np.int64)
    alone = MP.init_state(protocols[1:], params, s[1:], d[1:], r[1:], f[0])
    alone = MP.run(alone, f, protocols[1:], params)
    both = MP.init_state(protocols, params, s, d, r, f[0])
    both = MP.run(both, f, protocols, params)
    assert both.books[0].liquidations.sum() > 0
    assert both.books[1].liquidations.sum() > alone.books[0].liquidations.sum()
    assert both.books[1].pool_quote[:, c].min() < alone.books[0].pool_quote[:, c].min()


def test_isolated_markets_split_depth_by_collateral_share():
    params = MP.MultiParams(isolated_markets=True)
    e, n = 2, 20
    f = _paths(5, e, 1, 0.0)
    protocols, s, d, r = _books(PROTOCOL_PRESETS, params, f[0], e, n, seed=5)
    st_ = MP.init_state(protocols, params, s, d, r, f[0])
    shared = MP.init_state(protocols, MP.MultiParams(), s, d, r, f[0])
    value = np.stack([(x * f[0][:, None, :]).sum(axis=(1, 2)) for x in s], axis=1)
    share = value / value.sum(axis=1, keepdims=True)
    has_pool = np.array([sym != "USDC" for sym in RES.symbols])
    # each protocol's pools: its share of the collateral value times the shared depth, at the
    # same price; the depths add up to the shared pools'
    np.testing.assert_allclose(
        st_.pool_quote[..., has_pool], shared.pool_quote[..., has_pool] * share[..., None]
    )
    np.testing.assert_allclose(
        st_.pool_quote[..., has_pool].sum(axis=1), shared.pool_quote[:, 0][..., has_pool]
    )
    np.testing.assert_allclose(
        st_.pool_quote / st_.pool_asset, np.broadcast_to(shared.pool_quote / shared.pool_asset, st_.pool_quote.shape)
    )  # fmt: skip
    for p, b in enumerate(st_.books):
        np.testing.assert_array_equal(b.pool_asset, st_.pool_asset[:, p])


def test_accounting_identities_hold_per_protocol():
    mp = PM.PortfolioMarketParams(volatile_pool_depth_usd=2e6, oracle_pool_weight_frac=0.3)
    params = MP.MultiParams(market=mp)
    e, n = 2, 40
    f = _paths(3, e, 5, 0.05)
    protocols, s, d, r = _books(PROTOCOL_PRESETS, params, f[0], e, n, seed=3)
    st_ = MP.run(MP.init_state(protocols, params, s, d, r, f[0]), f, protocols, params)
    for b in st_.books:
        coll, debt = PM.accounting_gaps(b)
        scale = max(float(np.abs(b.counters["initial_debt_asset"]).max()), 1.0)
        assert np.abs(coll).max() < 1e-9 * scale and np.abs(debt).max() < 1e-9 * scale
    # Compound's collateral: absorbed = sold to keepers + still held
    np.testing.assert_allclose(
        st_.extra["absorbed_collateral_asset"][:, 1],
        st_.extra["bought_from_protocol_asset"][:, 1] + st_.collateral_reserve_asset[:, 1],
        atol=1e-9,
    )
    assert sum(b.liquidations.sum() for b in st_.books) > 0


def test_unified_margin_never_liquidates_accounts_solvent_everywhere():
    """Accounts every protocol keeps solvent are not liquidated in unified mode; an account whose
    surplus in one protocol covers its shortfall in another is kept whole."""
    from levgym.engine.protocol_presets import compound_v3_usdc_reserves

    aave = Protocol("aave", "aave_v3", RES)
    comet = Protocol("comet", "compound_v3", compound_v3_usdc_reserves(), target_reserves_base=1e9)
    protocols = (aave, comet)
    mp = PM.PortfolioMarketParams(volatile_pool_depth_usd=1e9)
    w, u = RES.index("WETH"), RES.index("USDC")
    f0 = np.array([[2000.0, 2000.0 * 1.21, 60_000.0, 1.0, 1.0, 1.0]])
    # account 0: under in Aave (HF 0.97 after the move), far above in Compound
    s_a = np.zeros((1, 2, RES.k))
    d_a = np.zeros((1, 2, RES.k))
    s_c = np.zeros((1, 2, RES.k))
    d_c = np.zeros((1, 2, RES.k))
    s_a[0, 0, w] = 10.0
    d_a[0, 0, u] = 10.0 * 2000.0 * RES.lt[w] / 1.02
    s_c[0, 0, w] = 100.0
    d_c[0, 0, u] = 10_000.0
    # account 1: under in both
    s_a[0, 1, w] = 10.0
    d_a[0, 1, u] = 10.0 * 2000.0 * RES.lt[w] / 1.02
    s_c[0, 1, w] = 10.0
    d_c[0, 1, u] = 10.0 * 2000.0 * 0.90 / 1.02
    f1 = f0 * np.where(np.arange(RES.k) == w, 0.95, 1.0)
    out = {}
    for mode in ("per_protocol", "unified"):
        params = MP.MultiParams(market=mp, margin=mode)
        st_ = MP.init_state(protocols, params, [s_a, s_c], [d_a, d_c], [0, 0], f0)
        st_, _ = MP.substep(st_, f1, protocols, params)
        out[mode] = st_
    per, uni = out["per_protocol"], out["unified"]
    # per protocol: account 0 is liquidated in Aave; unified: its Compound surplus covers it
    assert per.books[0].supply[0, 0, w] < 10.0
    assert uni.books[0].supply[0, 0, w] == 10.0 and uni.books[1].supply[0, 0, w] == 100.0
    # account 1 is under in both: the layer liquidates it (lowest HF first)
    assert uni.books[0].supply[0, 1, w] < 10.0 or uni.books[1].supply[0, 1, w] < 10.0
    with pytest.raises(ValueError, match="margin='x' is not allowed"):
        MP.MultiParams(margin="x")


def _assert_same(got: dict, ref: dict, rtol: float = 1e-9) -> None:
    for key, v in ref.items():
        if key == "books":
            for gb, rb in zip(got["books"], v, strict=True):
                _assert_same(gb, rb, rtol)
        elif isinstance(v, np.ndarray):
            _close(got[key], v, rtol)
        elif isinstance(v, float):
            assert got[key] == pytest.approx(v)


@settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 10_000),
    crash=st.sampled_from([0.03, 0.12]),
    weight=st.sampled_from([0.0, 0.4]),
    margin=st.sampled_from(["per_protocol", "unified"]),
    isolated=st.booleans(),
    gas=st.sampled_from([0.0, 150.0]),
)
def test_step_matches_reference_loop(seed, crash, weight, margin, isolated, gas):
    from levgym.engine.reference_multiprotocol import ref_multi_substep, ref_state

    mp = PM.PortfolioMarketParams(
        volatile_pool_depth_usd=1.5e6, oracle_pool_weight_frac=weight, gas_usd_per_call=gas,
        max_round_buy_frac=0.2,
    )  # fmt: skip
    params = MP.MultiParams(market=mp, margin=margin, isolated_markets=isolated)
    e, n = 2, 6
    f = _paths(seed, e, 3, crash)
    protocols, s, d, r = _books(PROTOCOL_PRESETS, params, f[0], e, n, seed=seed)
    state = MP.init_state(protocols, params, s, d, r, f[0], target_reserves_base=1e9)
    ref = ref_state(state)
    for t in range(1, f.shape[0]):
        state, _ = MP.substep(state, f[t], protocols, params, fused=bool(seed % 2))
        ref = ref_multi_substep(protocols, ref, f[t], params)
        _assert_same(ref_state(state), ref)


@settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(seed=st.integers(0, 10_000), crash=st.sampled_from([0.02, 0.08, 0.2]))
def test_unified_round_leaves_accounts_solvent_everywhere_untouched(seed, crash):
    """In a unified round, an account whose every protocol HF is at least 1 at the round's start
    keeps its balances in every protocol; every account that is liquidated had an account HF
    below 1."""
    from levgym.engine.protocols import protocol_account_values, unified_health_factor

    mp = PM.PortfolioMarketParams(volatile_pool_depth_usd=2e6, oracle_pool_weight_frac=0.3)
    params = MP.MultiParams(market=mp, margin="unified")
    e, n = 2, 40
    f = _paths(seed, e, 1, crash)
    protocols, s, d, r = _books(PROTOCOL_PRESETS, params, f[0], e, n, seed=seed)
    state = MP.init_state(protocols, params, s, d, r, f[0], target_reserves_base=1e9)
    state = MP.accrue_interest(MP.market_update(state, f[1], protocols, params), protocols, params)
    parts = [
        protocol_account_values(pr, b.supply, b.debt, b.oracle_usd[:, None, :], b.emode_row)
        for pr, b in zip(protocols, state.books, strict=True)
    ]
    thr, debt = [x[0] for x in parts], [x[1] for x in parts]
    hf_p = np.stack([np.where(dd > 0, t / np.where(dd > 0, dd, 1.0), np.inf) for t, dd in parts], -1)  # fmt: skip
    hf_u = unified_health_factor(np.stack(thr, -1), np.stack(debt, -1))
    new, _ = MP.cascade_round(state, protocols, params)
    touched = np.zeros((e, n), dtype=bool)
    for b0, b1 in zip(state.books, new.books, strict=True):
        touched |= (b0.supply != b1.supply).any(-1) | (b0.debt != b1.debt).any(-1)
    solvent_everywhere = (hf_p >= 1.0).all(-1)
    assert not (touched & solvent_everywhere).any()
    assert not (touched & (hf_u >= 1.0)).any()
    if crash == 0.2:  # the case liquidates some accounts
        assert touched.any()


@settings(
    max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 10_000),
    isolated=st.booleans(),
    quote_left=st.sampled_from([0.05, 0.4]),
)
def test_step_with_a_pool_drain_matches_reference_loop(seed, isolated, quote_left):
    from levgym.engine.reference_multiprotocol import ref_multi_substep, ref_state

    mp = PM.PortfolioMarketParams(volatile_pool_depth_usd=3e6, oracle_pool_weight_frac=0.5)
    params = MP.MultiParams(market=mp, isolated_markets=isolated)
    e, n, steps = 2, 6, 4
    f = _paths(seed, e, steps, 0.03)
    protocols, s, d, r = _books(PROTOCOL_PRESETS, params, f[0], e, n, seed=seed)
    wsteth = RES.index("wstETH")
    drain = np.ones((steps + 1, e, 2, RES.k))
    drain[:, :, 1, wsteth] = np.linspace(1.0, quote_left, steps + 1)[:, None]
    drain[:, :, 0, wsteth] = np.linspace(1.0, 0.7, steps + 1)[:, None]
    state = MP.init_state(protocols, params, s, d, r, f[0], target_reserves_base=1e9)
    ref = ref_state(state)
    for t in range(1, f.shape[0]):
        state, _ = MP.substep(state, f[t], protocols, params, True, drain[t])
        ref = ref_multi_substep(protocols, ref, f[t], params, drain[t])
        _assert_same(ref_state(state), ref)
    assert state.pool_quote[0, 0, wsteth] < state.pool_asset[0, 0, wsteth] * f[-1, 0, wsteth]
