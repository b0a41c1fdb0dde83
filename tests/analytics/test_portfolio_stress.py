"""levgym.analytics.portfolio_stress: the multi-asset Monte Carlo stress."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym.analytics import portfolio_stress as P
from levgym.analytics.risk import expected_shortfall
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from levgym.engine.portfolio import OracleConfig
from levgym.scenarios import multiasset as MA

SYMBOLS = aave_v3_ethereum_reserves().symbols


def _cfg(**kw):
    base = dict(scenario="steth_depeg", paths=12, batch_size=4, positions=16, horizon_h=6)
    base.update(kw)
    return P.PortfolioStressConfig(**base)


class _Reversed:
    """An executor that runs the batches last to first (and returns them in that order)."""

    def map(self, fn, shared, items, progress=None):
        return [fn(shared, i) for i in reversed(list(items))]


@pytest.mark.parametrize("level", [0.95, 0.99, 0.9])
def test_euler_contributions_sum_to_cvar(level):
    rng = np.random.default_rng(3)
    parts = rng.exponential(1.0, (257, 4)) * (rng.random((257, 4)) < 0.3)
    cvar, contrib = P.cvar_contributions(parts, level)
    assert cvar == pytest.approx(expected_shortfall(parts.sum(axis=1), level), rel=1e-12)
    assert contrib.sum() == pytest.approx(cvar, rel=1e-12)
    assert np.all(contrib >= 0)


def test_reproducible_and_batch_order_independent():
    a = P.run_portfolio_paths(_cfg())
    b = P.run_portfolio_paths(_cfg())
    c = P.run_portfolio_paths(_cfg(), executor=_Reversed())
    for f in ("bad_debt_usd", "deficit_usd_by_asset", "tvl_usd", "liquidatable_usd"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        np.testing.assert_array_equal(getattr(a, f), getattr(c, f))
    # a batch is a pure function of (config, batch): batch 1 alone equals its rows in the run
    one = P.run_batch(_cfg(), 1)
    np.testing.assert_array_equal(one.tvl_usd, a.tvl_usd[4:8])
    other = P.run_portfolio_paths(_cfg(seed=1))
    assert not np.array_equal(other.tvl_usd, a.tvl_usd)


def test_heatmap_monotone_in_the_fall():
    res = P.run_portfolio_paths(_cfg(scenario="multiasset_2021"))
    s = P.summarize(res, SYMBOLS)
    heat = s["liquidation_heatmap_by_asset"]
    assert set(heat) == set(P.collateral_symbols())
    for rec in heat.values():
        v = np.asarray(rec["liquidatable_debt_usd"])
        assert np.all(np.diff(v) >= 0)
    assert heat["WETH"]["liquidatable_debt_usd"][-1] > 0  # a 50% ETH fall liquidates someone
    # per path too
    assert np.all(np.diff(res.liquidatable_usd, axis=2) >= 0)


def test_liquidatable_debt_hand_case():
    r = aave_v3_ethereum_reserves()
    w, u = r.index("WETH"), r.index("USDC")
    supply = np.zeros((1, 1, r.k))
    debt = np.zeros((1, 1, r.k))
    supply[0, 0, w] = 1.0
    oracle = np.ones((1, r.k))
    oracle[0, w] = 1000.0
    lt = r.lt[w]
    debt[0, 0, u] = 1000.0 * lt * 0.9  # HF 1/0.9: liquidatable after a fall of more than 10%
    out = P.liquidatable_debt(
        supply, debt, np.zeros((1, 1), dtype=int), oracle, r, w, (0.0, 0.05, 0.15)
    )
    np.testing.assert_allclose(out[0], [0.0, 0.0, 1000.0 * lt * 0.9])


def _market_wsteth():
    r = aave_v3_ethereum_reserves()
    rs = tuple(
        dataclasses.replace(x, oracle=OracleConfig()) if x.symbol == "wstETH" else x
        for x in r.reserves
    )
    return dataclasses.replace(r, reserves=rs)


def test_depeg_makes_deficits_in_the_loopers_debt_reserve(monkeypatch):
    # wstETH on a market oracle and a 40% stETH step depeg: the E-mode loopers (wstETH
    # collateral, WETH debt) go under; their deficits land in the WETH reserve only.
    monkeypatch.setattr(P, "aave_v3_ethereum_reserves", _market_wsteth)
    depeg = MA.MultiAssetScenario(
        "test_lst_step", "test", (MA.LSTDepeg(0.4, start_h=2.0, move_h=0.0, hold_h=100.0),)
    )
    monkeypatch.setitem(MA.SCENARIOS, "test_lst_step", depeg)
    res = P.run_portfolio_paths(_cfg(scenario="test_lst_step"))
    s = P.summarize(res, SYMBOLS)
    assert s["mean_bad_debt_by_asset_usd"]["WETH"] > 0
    assert all(v == 0 for k, v in s["mean_bad_debt_by_asset_usd"].items() if k != "WETH")
    for pct in (95, 99):
        c = s[f"cvar_{pct}_contribution_by_asset_usd"]
        assert sum(c.values()) == pytest.approx(s[f"cvar_{pct}_bad_debt_usd"], rel=1e-12)
        assert c["WETH"] == pytest.approx(s[f"cvar_{pct}_bad_debt_usd"], rel=1e-12)
    # the same paths with the exchange-rate oracle (the preset): no deficits
    monkeypatch.setattr(P, "aave_v3_ethereum_reserves", aave_v3_ethereum_reserves)
    base = P.run_portfolio_paths(_cfg(scenario="test_lst_step"))
    assert base.bad_debt_usd.sum() == 0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(scenario="shock"), "unknown multi-asset scenario"),
        (dict(paths=0), "paths=0"),
        (dict(horizon_h=2.5), "horizon_hours=2.5"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)
