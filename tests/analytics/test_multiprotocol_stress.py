"""The multi-protocol stress (levgym.analytics.multiprotocol_stress): its runs equal `simulate
--protocols` on the same seeds, batches are pure, and the summary's estimators on hand-built
samples."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.analytics import multiprotocol_stress as MS
from levgym.analytics.montecarlo import batch_seed
from levgym.analytics.risk import expected_shortfall, value_at_risk
from levgym.engine.portfolio_market import PortfolioMarketParams
from levgym.simulation_multiprotocol import simulate_multiprotocol

NAMES = ("aave_v3_ethereum", "compound_v3_usdc", "morpho_wsteth_usdc")
THIN = PortfolioMarketParams(volatile_pool_depth_usd=5e6, oracle_pool_weight_frac=0.3)


def _config(**kw):
    base = dict(protocols=NAMES, scenario="steth_depeg", paths=4, positions=8, horizon_h=6.0,
                batch_size=2, market=THIN)  # fmt: skip
    return MS.MultiProtocolStressConfig(**{**base, **kw})


def test_runs_equal_simulate_on_the_same_seed():
    c = _config(paths=2, batch_size=2, positions=16, horizon_h=36.0)
    b = MS.run_batch(c, 0)
    for margin, run in (("per_protocol", 0), ("unified", 1)):
        sim = simulate_multiprotocol(
            NAMES, "steth_depeg", 2, 16, 36, batch_seed(0, 0), margin=margin, contagion=True,
            market=THIN,
        )  # fmt: skip
        for p, n in enumerate(NAMES):
            assert b.liquidated_usd[:, run, p].mean() == pytest.approx(
                sim["liquidated_usd_by_protocol"][n], rel=1e-12, abs=1e-9
            )
            assert b.bad_debt_usd[:, run, p].mean() == pytest.approx(
                sim["bad_debt_usd_by_protocol"][n], rel=1e-12, abs=1e-9
            )
            if margin == "per_protocol":
                iso = b.bad_debt_usd[:, 0, p] - b.bad_debt_usd[:, 2, p]
                assert iso.mean() == pytest.approx(
                    sim["contagion_bad_debt_usd_by_protocol"][n], rel=1e-12, abs=1e-9
                )
    assert b.liquidated_usd[:, 0].sum() > 0  # the check above compares something


def test_batches_are_pure_and_concatenate_in_order():
    c = _config()
    whole = MS.run_paths(c)
    one = MS.run_batch(c, 1)
    np.testing.assert_array_equal(whole.bad_debt_usd[2:], one.bad_debt_usd)
    np.testing.assert_array_equal(whole.liquidated_usd[2:], one.liquidated_usd)
    assert whole.bad_debt_usd.shape == (4, len(MS.RUNS), 3)
    with pytest.raises(ValueError, match="batch=2 is out of range"):
        MS.run_batch(c, 2)


def _batch(shared, isolated, unified):
    """A hand-built result: bad debt ``[n, P]`` per run; liquidated = 10 x bad debt."""
    bad = np.stack([shared, unified, isolated], axis=1).astype(float)
    n, p = shared.shape
    return MS.MultiProtocolBatch(
        -1, bad, 10 * bad, (bad > 0).astype(float), np.full((n, p), 1e6), 2 * bad
    )


def test_summary_on_hand_built_samples():
    rng = np.random.default_rng(3)
    n = 200
    shared = np.where(rng.random((n, 3)) < 0.2, rng.exponential(1e4, (n, 3)), 0.0)
    isolated = shared * rng.uniform(0.0, 1.0, (n, 3))
    unified = shared * 1.5
    c = _config(paths=n, batch_size=n)
    s = MS.summarize(_batch(shared, isolated, unified), c)
    total = shared.sum(axis=1)
    assert s["var_99_bad_debt_usd"] == pytest.approx(value_at_risk(total, 0.99))
    assert s["cvar_95_bad_debt_usd"] == pytest.approx(expected_shortfall(total, 0.95))
    for level in (95, 99):
        assert sum(s[f"cvar_{level}_contribution_usd_by_protocol"].values()) == pytest.approx(
            s[f"cvar_{level}_bad_debt_usd"], rel=1e-12
        )
    for p, name in enumerate(NAMES):
        t = s["bad_debt_tail_by_protocol"][name]
        assert t["cvar_99_bad_debt_usd"] == pytest.approx(expected_shortfall(shared[:, p], 0.99))
        assert t["var_95_bad_debt_tvl_frac"] == pytest.approx(
            value_at_risk(shared[:, p], 0.95) / 1e6
        )
    cont = total - isolated.sum(axis=1)
    assert s["mean_contagion_bad_debt_usd"] == pytest.approx(cont.mean())
    assert s["contagion_bad_debt_share_frac"] == pytest.approx(cont.mean() / total.mean())
    assert 0.0 < s["cvar_99_contagion_share_frac"] <= 1.0
    # the unified run is 1.5 x the per-protocol one on every path: the differences are 0.5 x
    d = s["unified_minus_per_protocol"]
    assert d["mean_bad_debt_usd"] == pytest.approx(0.5 * total.mean())
    assert d["cvar_99_bad_debt_usd"] == pytest.approx(0.5 * expected_shortfall(total, 0.99))
    assert d["cvar_99_bad_debt_usd_se"] > 0
    assert s["bad_debt_by_run"]["isolated"]["mean_bad_debt_usd"] == pytest.approx(
        isolated.sum(axis=1).mean()
    )
    assert s["bad_debt_by_run"]["isolated"]["mean_underwater_usd"] == pytest.approx(
        2 * isolated.sum(axis=1).mean()
    )
    assert s["mean_underwater_usd_by_protocol"]["compound_v3_usdc"] == pytest.approx(
        2 * shared[:, 1].mean()
    )


def test_underwater_counts_open_positions_whose_debt_exceeds_their_assets():
    supply = np.array([[[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])  # [E=1, N=3, K=2]
    debt = np.array([[[0.0, 150.0], [0.0, 100.0], [0.0, 0.0]]])
    oracle = np.array([[100.0, 1.0]])
    # slot 0: 150 owed against 100 of collateral -> 50; slot 1 covered; slot 2 empty
    np.testing.assert_allclose(MS.underwater_usd(supply, debt, oracle), [50.0])


def test_unified_headline_reads_the_unified_run_and_zero_bad_debt_has_no_share():
    z = np.zeros((20, 3))
    u = z.copy()
    u[0, 2] = 5.0
    c = _config(paths=20, batch_size=20, margin="unified")
    s = MS.summarize(_batch(z, z, u), c)
    assert s["mean_bad_debt_usd"] == pytest.approx(0.25)
    assert s["bad_debt_tail_by_protocol"]["morpho_wsteth_usdc"]["prob_bad_debt"] == 0.05
    s = MS.summarize(_batch(z, z, z), c)
    assert s["contagion_bad_debt_share_frac"] is None
    assert s["cvar_99_contagion_share_frac"] is None


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(margin="cross"), "margin='cross' is not allowed"),
        (dict(protocols=("aave_v3_ethereum", "x")), "--protocols names 'x'"),
        (dict(scenario="shock"), "unknown multi-protocol scenario 'shock'"),
        (dict(paths=0), "paths=0 is out of range"),
        (dict(horizon_h=1.5), "horizon_hours=1.5 is out of range"),
    ],
)
def test_config_errors_name_the_value(kw, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(")):
        _config(**kw)
