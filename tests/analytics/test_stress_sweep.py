"""Sweeps: syntax errors, invalid grid points, common random numbers and VaR monotone in LT."""

from __future__ import annotations

import numpy as np
import pytest

from levgym import scenarios
from levgym.analytics.frontier import (
    SweepAxis,
    grid,
    pareto_front,
    parse_sweep,
    parse_sweeps,
    run_sweep,
)
from levgym.analytics.montecarlo import MonteCarloConfig, run_paths, with_protocol
from levgym.engine.params import EngineParams, preset


def shock(n, s, params, seed):
    return scenarios.get("shock").drivers(n, s, params, seed)


BASE = EngineParams(protocol=preset("conservative"))  # ltv 0.70, LT 0.75, bonus 0.075
CFG = MonteCarloConfig(paths=400, positions=32, horizon_h=12.0, seed=3, batch_size=200)


@pytest.fixture(scope="module")
def lt_sweep():
    axis = parse_sweep("protocol.liquidation_threshold=0.75:0.9:4")
    return run_sweep(BASE, shock, CFG, [axis], book="fixed")


def test_parse_range_and_list():
    a = parse_sweep("protocol.liquidation_threshold=0.75:0.9:7")
    assert a.name == "protocol.liquidation_threshold"
    assert a.values == pytest.approx((0.75, 0.775, 0.8, 0.825, 0.85, 0.875, 0.9))
    b = parse_sweep("protocol.liquidation_bonus=0.05,0.075,0.1")
    assert b.values == (0.05, 0.075, 0.1)
    assert [
        x.name for x in parse_sweeps(["protocol.ltv=0.6:0.7:3", "market.pool_depth_usd=1e7,6e7"])
    ] == [
        "protocol.ltv",
        "market.pool_depth_usd",
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("protocol.liquidation_threshold", "malformed"),
        ("liquidation_threshold=0.7:0.8:3", "malformed"),
        ("protocl.ltv=0.7:0.8:3", "unknown section 'protocl'"),
        ("protocol.lt=0.7:0.8:3", "unknown key protocol.lt"),
        ("market.oracle_kind=1:2:3", "unknown key market.oracle_kind"),
        ("protocol.ltv=a:0.8:3", "start 'a' is not a number"),
        ("protocol.ltv=0.6:x:3", "stop 'x' is not a number"),
        ("protocol.ltv=0.6:0.8:1", "count=1 is out of range"),
        ("protocol.ltv=0.6:0.8:2.5", "count '2.5' is not an integer"),
        ("protocol.ltv=0.6:0.8", "malformed"),
        ("protocol.ltv=0.6:0.6:3", "start equals stop"),
        ("protocol.ltv=0.6", "allowed at least 2"),
        ("protocol.ltv=0.6,0.6", "repeated"),
        ("protocol.ltv=0.6:inf:3", "not finite"),
    ],
)
def test_bad_sweep_syntax_names_the_problem(item, message):
    with pytest.raises(ValueError, match=message):
        parse_sweep(item)


def test_too_many_or_repeated_sweeps():
    with pytest.raises(ValueError, match="at most 2"):
        parse_sweeps(["protocol.ltv=0.6,0.7"] * 3)
    with pytest.raises(ValueError, match="given twice"):
        parse_sweeps(["protocol.ltv=0.6,0.7", "protocol.ltv=0.5,0.6"])


def test_invalid_grid_points_are_skipped_with_the_rule_named():
    axis = SweepAxis("protocol", "liquidation_threshold", (0.8, 0.825, 0.86, 0.96))
    valid, skipped = grid(EngineParams(), [axis])  # aave: ltv 0.825, bonus 0.052
    assert [c for c, _ in valid] == [(0.825,), (0.86,)]
    reasons = dict(skipped)
    assert "ltv=0.825 exceeds protocol.liquidation_threshold=0.8" in reasons[(0.8,)]
    assert "liquidation_threshold * (1 + liquidation_bonus)" in reasons[(0.96,)]
    one = SweepAxis("protocol", "liquidation_threshold", (0.5, 0.6, 0.86))
    with pytest.raises(ValueError, match=r"1 valid grid point\(s\) of 3"):
        run_sweep(EngineParams(), shock, CFG, [one])
    warnings: list[str] = []
    tiny = MonteCarloConfig(paths=10, positions=4, horizon_h=1.0, batch_size=10)
    res = run_sweep(EngineParams(), shock, tiny, [axis], warn=warnings.append)
    assert len(warnings) == 2 and warnings[0].startswith(
        "skipping grid point protocol.liquidation_threshold=0.8: protocol.ltv=0.825 exceeds"
    )
    assert [p["params"]["protocol.liquidation_threshold"] for p in res.points] == [0.825, 0.86]
    assert [p["params"]["protocol.liquidation_threshold"] for p in res.skipped] == [0.8, 0.96]


def test_var99_never_falls_when_lt_rises_on_the_same_paths(lt_sweep):
    lts = [p["params"]["protocol.liquidation_threshold"] for p in lt_sweep.points]
    assert lts == sorted(lts)
    var99 = np.array([p["var_99_bad_debt_usd"] for p in lt_sweep.points])
    var95 = np.array([p["var_95_bad_debt_usd"] for p in lt_sweep.points])
    cvar99 = np.array([p["cvar_99_bad_debt_usd"] for p in lt_sweep.points])
    assert np.all(np.diff(var99) >= 0), var99
    assert np.all(np.diff(var95) >= 0), var95
    assert np.all(np.diff(cvar99) >= 0), cvar99
    assert var99[-1] > var99[0]  # not flat: the test would notice a reversal
    # the fixed book: every grid point starts from the same debt
    debts = [p["mean_initial_debt_value_usd"] for p in lt_sweep.points]
    assert np.allclose(debts, debts[0])
    # the grid point equal to the preset reproduces the base run exactly (same paths, same book)
    base = lt_sweep.base_point
    same = next(p for p in lt_sweep.points if p["params"]["protocol.liquidation_threshold"] == 0.75)
    assert same["var_99_bad_debt_usd"] == base["var_99_bad_debt_usd"]
    assert same["mean_bad_debt_usd"] == base["mean_bad_debt_usd"]


def test_common_random_numbers_make_differences_precise():
    """Same seeds at two LTs: the per-path difference varies far less than with other seeds."""
    lo = with_protocol(BASE, liquidation_threshold=0.80)
    hi = with_protocol(BASE, liquidation_threshold=0.82)
    a = run_paths(lo, shock, CFG, book_params=BASE)
    b = run_paths(hi, shock, CFG, book_params=BASE)
    other_seed = MonteCarloConfig(**{**CFG.__dict__, "seed": CFG.seed + 1})
    c = run_paths(hi, shock, other_seed, book_params=BASE)
    assert np.array_equal(
        a.per_path["fundamental_min_over_start"], b.per_path["fundamental_min_over_start"]
    )
    assert np.array_equal(
        a.per_path["initial_debt_value_usd"], b.per_path["initial_debt_value_usd"]
    )
    for key, ratio in (
        ("liquidated_usd", 0.6),
        ("liquidated_position_frac", 0.7),
        ("bad_debt_measured_usd", 1.0),
    ):
        crn = np.std(b.per_path[key] - a.per_path[key])
        independent = np.std(c.per_path[key] - a.per_path[key])
        assert crn < ratio * independent, (key, crn, independent)


def test_rescaled_book_borrows_more_at_higher_lt():
    axis = parse_sweep("protocol.liquidation_threshold=0.75,0.85")
    cfg = MonteCarloConfig(**{**CFG.__dict__, "paths": 100, "batch_size": 100})
    res = run_sweep(BASE, shock, cfg, [axis], book="rescaled")
    assert res.x_metric == "debt"
    d = [p["mean_initial_debt_value_usd"] for p in res.points]
    assert d[1] > d[0] * 1.05
    assert res.points[1]["var_99_bad_debt_usd"] >= res.points[0]["var_99_bad_debt_usd"]


def test_pareto_front():
    x = np.array([1.0, 2.0, 3.0, 2.0])
    y = np.array([1.0, 1.5, 3.0, 2.0])
    assert pareto_front(x, y).tolist() == [True, True, True, False]
