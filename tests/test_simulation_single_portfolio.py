"""The K = 1 runner (:func:`levgym.simulation.simulate` with ``engine="portfolio"``): a
single-asset preset's ``simulate`` run through the asset-axis step (its book, behaviours,
scenario rows, substeps and warm-up mapped by :mod:`levgym.engine.portfolio_single`) equals the
single engine's run to 1e-12: the final state, field by field, and every per-env quantity of
``simulate --json``, on numpy and numba (docs/cross-margin.md, rows 21-22)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine.params import EngineParams, preset_params
from levgym.engine.schema import STATE_SCHEMA
from levgym.simulation import simulate

TOL = 1e-12


def _params(preset: str, warmup_h: float | None = None, **market) -> EngineParams:
    """The preset as it is (its book's exits and arrivals included), with ``warmup_h`` and
    ``market`` changes."""
    p = preset_params(preset)
    run = p.run if warmup_h is None else dataclasses.replace(p.run, warmup_h=warmup_h)
    return dataclasses.replace(p, run=run, market=dataclasses.replace(p.market, **market))


def _close(a, b, name: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if b.dtype == bool or b.dtype.kind in "iu":
        np.testing.assert_array_equal(a, b, err_msg=name)
        return
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1.0)
    np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * scale, err_msg=name)


def _same_runs(single, k1) -> None:
    """Every field of the final states and every per-env quantity of the summary."""
    s, p = single.final_state, k1.final_state
    for f in STATE_SCHEMA:
        _close(getattr(p, f.name), getattr(s, f.name), f.name)
    assert p.time_h == pytest.approx(s.time_h, rel=TOL) and p.substep_index == s.substep_index
    assert single.per_env.keys() == k1.per_env.keys()
    for key, v in single.per_env.items():
        _close(k1.per_env[key], v, key)
    assert single.summary.keys() == k1.summary.keys()
    for key, v in single.summary.items():
        if isinstance(v, float):
            assert k1.summary[key] == pytest.approx(v, rel=TOL, abs=TOL * max(abs(v), 1.0)), key
        else:
            assert k1.summary[key] == v, key
    for key, v in single.series.items():
        _close(k1.series[key], v, key)
    _close(k1.hf_after, single.hf_after, "hf_after")


def _both(params, backend, drivers=None, scenario="custom", knobs=None, steps=4, n=64, seed=5):
    kw = dict(scenario=scenario, scenario_knobs=knobs, num_envs=3, record=True)
    single = simulate(drivers, params, n, seed, steps, backend=backend, **kw)
    k1 = simulate(drivers, params, n, seed, steps, backend=backend, engine="portfolio", **kw)
    _same_runs(single, k1)
    return single


CASES = [
    # a calm path: the defenders and loopers of the default book act on gas and noise alone
    ("aave_v3_weth", "gbm_calm", None),
    # a crash: a 45 % fall within one substep at 0.4 h leaves positions without collateral
    ("aave_v3_weth", "shock", {"start_hour": "0.4", "drop_hours": "0.05", "drop_frac": "0.45"}),
    # a liquidity drought with slower arbitrage (the pool drivers) under another preset
    ("conservative", "liquidity_drought", {"start_hour": "0", "drop_hours": "3"}),
    # the oracle drivers: a stale feed during a fall, then a manipulation
    (
        "aave_v3_weth_comet_params",
        "oracle_frozen",
        {"start_hour": "0", "drop_hours": "1", "freeze_start_h": "0.5", "freeze_hours": "1.5"},
    ),  # fmt: skip
    ("aave_v3_weth", "oracle_manipulation", {"bias_start_h": "1", "bias_hours": "1"}),
    # a crash with a drought, congestion and a debt depeg, under aave_v2_weth's keepers
    ("aave_v2_weth", "perfect_storm", None),
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("preset", "scenario", "knobs"), CASES, ids=[c[1] for c in CASES])
def test_a_scenario_run_equals_the_single_engines(backend, preset, scenario, knobs):
    """Each env's scenario path, book and noise as ``simulate`` draws them, six substeps a
    step, the preset's book (exits and arrivals), keepers, close factor and bad-debt accounting:
    the run through the asset-axis step equals the single engine's to 1e-12."""
    single = _both(_params(preset, 0.0), backend, scenario=scenario, knobs=knobs)
    pe = single.per_env
    assert pe["added_collateral_asset"].sum() + pe["repaid_by_borrowers_usd"].sum() > 0
    assert pe["arrivals"].sum() + pe["exits"].sum() > 0  # the book turned over
    if scenario == "gbm_calm":
        assert pe["borrowed_usd"].sum() > 0  # the loopers re-levered
    else:
        assert pe["liquidations"].sum() > 0
    if scenario == "shock":
        assert pe["bad_debt_usd"].sum() > 0
    if scenario == "liquidity_drought":  # loopers sold into the falling pool
        assert pe["withdrawn_collateral_asset"].sum() > 0
    if preset == "aave_v2_weth":
        assert pe["keeper_venue_sold_asset"].sum() > 0  # 90 % of every sale off the pool


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_warm_up_before_a_scenario(backend):
    """``run.warmup_h``: the book lives through a calm burn-in (``calm_bridge``) before t = 0,
    stepped by the asset-axis step too, then restarts its counters; the run that follows equals
    the single engine's, and differs from the run without the warm-up."""
    knobs = {"start_hour": "0", "drop_hours": "2", "drop_frac": "0.35"}
    warm = _both(_params("aave_v3_weth", 12.0), backend, scenario="shock", knobs=knobs)
    cold = simulate(None, _params("aave_v3_weth", 0.0), 64, 5, 4, "shock", scenario_knobs=knobs, num_envs=3)  # fmt: skip
    assert warm.per_env["liquidations"].sum() > 0
    assert not np.allclose(warm.per_env["initial_debt_usd"], cold.per_env["initial_debt_usd"])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_given_drivers_with_a_warm_up_from_their_first_rows(backend):
    """Given drivers (a replay's form): the warm-up is their first ``warmup_h`` hours and the run
    the rows after; ``aave_v2_weth`` with its book, keepers and close factor, a fall during the
    run."""
    p = _params("aave_v2_weth", 2.0)
    knobs = {"start_hour": "2.5", "drop_hours": "1", "drop_frac": "0.4"}
    drivers = scenarios.get("shock").drivers(3, 12 + 24, p, 9, knobs)
    single = _both(p, backend, drivers=drivers)
    assert single.per_env["liquidations"].sum() > 0


def test_aave_v2_weths_own_warm_up():
    """``aave_v2_weth``'s own 336 h warm-up (2,016 substeps before t = 0) on a crash."""
    p = _params("aave_v2_weth")
    assert p.run.warmup_h == 336.0
    single = _both(p, "numpy", scenario="crash_drought_congestion", steps=2, n=32)
    assert single.per_env["liquidations"].sum() > 0


def test_unsupported_options_are_refused_in_one_line():
    """Torch or float32: one line naming the option, before anything runs."""
    d = dict(scenario="shock", num_envs=1, engine="portfolio")
    p = _params("aave_v3_weth")
    with pytest.raises(ValueError, match="^--backend torch --dtype float64 is not supported"):
        simulate(None, p, 8, 0, 1, backend="torch", **d)
    with pytest.raises(ValueError, match="^--backend numpy --dtype float32 is not supported"):
        simulate(None, p, 8, 0, 1, dtype="float32", **d)
    with pytest.raises(ValueError, match="^engine='both' is unknown; allowed single, portfolio$"):
        simulate(None, p, 8, 0, 1, **{**d, "engine": "both"})


def _capped_and_free(cap_field: str, start_key: str, margin: float):
    """aave_v3_weth on gbm_calm with ``protocol.<cap_field>`` just above the book's start
    (``margin`` x the largest ``per_env[start_key]``), run on both engines (:func:`_both`, the
    single engine's result), and the same run without the cap."""
    p = _params("aave_v3_weth", 0.0)
    probe = simulate(None, p, 64, 5, 1, "gbm_calm", num_envs=3)
    cap = float(probe.per_env[start_key].max()) * margin
    p = dataclasses.replace(p, protocol=dataclasses.replace(p.protocol, **{cap_field: cap}))
    capped = _both(p, "numpy", scenario="gbm_calm")
    free = simulate(None, _params("aave_v3_weth", 0.0), 64, 5, 4, "gbm_calm", num_envs=3)
    return capped, free


def test_a_supply_cap_that_binds_the_arrivals_and_loopers():
    """The single engine's supply cap (``protocol.supply_cap_asset``) as the WETH reserve's, on
    new supply only: a cap just above the book's collateral scales the arrivals' collateral and
    the loopers' purchases down alike."""
    capped, free = _capped_and_free("supply_cap_asset", "initial_collateral_asset", 1.001)
    assert capped.per_env["added_collateral_asset"].sum() < free.per_env["added_collateral_asset"].sum()  # fmt: skip


def test_a_borrow_cap_that_binds_the_loopers():
    """The single engine's borrow cap (``protocol.borrow_cap_usd``) as the USDC reserve's: a cap
    just above the book's debt scales the loopers' borrowing down alike."""
    single, free = _capped_and_free("borrow_cap_usd", "initial_debt_usd", 1.0005)
    assert single.per_env["borrowed_usd"].sum() < free.per_env["borrowed_usd"].sum()
