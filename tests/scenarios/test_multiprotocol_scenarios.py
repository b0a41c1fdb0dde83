"""Multi-protocol scenarios (levgym.scenarios.multiprotocol) and the pool-drain driver of the
multi-protocol step: the CRV-style scenario liquidates in several protocols through the shared
thin pool."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym.engine import multiprotocol as MP
from levgym.engine.protocol_presets import THIN_SYMBOLS
from levgym.scenarios import multiprotocol as MPS
from levgym.simulation_multiprotocol import build, market_paths, simulate_multiprotocol

CRV = THIN_SYMBOLS.index("CRV")
PAIR = ("aave_v3_ethereum", "compound_v3_usdc")


def _start(names=PAIR, e=2, n=16, steps=4, scenario="crv_pool_drain"):
    sc = MPS.get_scenario(scenario)
    params = MP.MultiParams(sc.market_params())
    f, drain = market_paths(names, scenario, e, steps, 0)
    prot, s, d, r, rb, tg = build(names, e, n, 0, f[0], params, sc.symbols)
    return prot, params, f, drain, (s, d, r, rb, tg)


def test_drain_driver_scales_the_pools_and_ones_change_nothing():
    prot, params, f, drain, (s, d, r, rb, tg) = _start()
    plain = MP.init_state(prot, params, s, d, r, f[0], rb, tg)
    drained = MP.init_state(prot, params, s, d, r, f[0], rb, tg, drain[0])
    np.testing.assert_allclose(drained.pool_quote[..., CRV], 0.1 * plain.pool_quote[..., CRV])
    np.testing.assert_allclose(drained.pool_asset[..., CRV], 0.1 * plain.pool_asset[..., CRV])
    np.testing.assert_array_equal(drained.pool_quote[..., :CRV], plain.pool_quote[..., :CRV])
    # the quote side taken faster than the asset side: the pool price falls, the depth too
    frac = np.ones_like(drain[0])
    frac[:, 1, CRV] = 0.5
    out = MP.drain_pools(plain, frac, prot, params)
    price = out.pool_quote[..., CRV] / out.pool_asset[..., CRV]
    np.testing.assert_allclose(price, 0.5 * plain.pool_quote[..., CRV] / plain.pool_asset[..., CRV])
    assert np.all(out.books[0].oracle_usd[:, CRV] < plain.books[0].oracle_usd[:, CRV])
    # a driver of ones is no drain: the substep is the one without a driver, bit for bit
    a, _ = MP.substep(plain, f[1], prot, params)
    b, _ = MP.substep(plain, f[1], prot, params, True, np.ones_like(drain[1]))
    for x, y in zip(a.books, b.books, strict=True):
        np.testing.assert_array_equal(x.supply, y.supply)
        np.testing.assert_array_equal(x.oracle_usd, y.oracle_usd)
    np.testing.assert_array_equal(a.pool_quote, b.pool_quote)
    with pytest.raises(ValueError, match="pool_reserve_frac has a value <= 0"):
        MP.drain_pools(plain, 0 * frac, prot, params)


def _crv_seized(names, scenario="crv_pool_drain"):
    d = simulate_multiprotocol(names, scenario, 4, 64, 24, 0)
    return {n: v["seized_collateral_by_asset"]["CRV"] for n, v in d["by_protocol"].items()}


def test_crv_scenario_liquidates_across_protocols_through_the_shared_thin_pool(monkeypatch):
    both = _crv_seized(PAIR)
    assert both["aave_v3_ethereum"] > 0 and both["compound_v3_usdc"] > 0
    alone = _crv_seized(("aave_v3_ethereum",))
    # the same Aave book and paths: Compound's absorbed CRV sold into the same pool liquidates
    # more of Aave's CRV borrowers than Aave's own liquidations do
    assert both["aave_v3_ethereum"] > alone["aave_v3_ethereum"]
    # no drain, same everything else: the CEX price holds and nobody's CRV is liquidated
    calm = dataclasses.replace(MPS.CRV_POOL_DRAIN, name="crv_calm", drain=None)
    monkeypatch.setitem(MPS.SCENARIOS, "crv_calm", calm)
    assert _crv_seized(PAIR, "crv_calm") == {n: 0.0 for n in PAIR}


def test_scenario_registry_and_errors():
    assert "crv_pool_drain" in MPS.SCENARIOS and "steth_depeg" in MPS.SCENARIOS
    assert MPS.get_scenario("steth_depeg").symbols == THIN_SYMBOLS[:-1]
    with pytest.raises(ValueError, match="unknown multi-protocol scenario 'crv'"):
        MPS.get_scenario("crv")
    with pytest.raises(ValueError, match=r"PoolDrain.quote_left_frac=0 is out of range"):
        MPS.PoolDrain("CRV", quote_left_frac=0)
    times = np.arange(10.0)
    r = MPS.CRV_POOL_DRAIN.drain.reserve_frac(times, THIN_SYMBOLS, 2)
    assert r.shape == (10, 2, 2, len(THIN_SYMBOLS))
    assert r[0, 0, 1, CRV] == pytest.approx(0.1) and r[-1, 0, 1, CRV] == pytest.approx(0.005)
    assert np.all(r[..., :CRV] == 1.0)
