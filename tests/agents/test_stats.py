"""Paired comparisons on common random numbers (Holm, Wilcoxon, bootstrap intervals, effect
size), the share of the gap to the ceiling, and the hindsight ceiling itself."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import make_baseline
from agents.ceiling import CeilingGrid, ceiling_returns, piecewise_ceiling_returns
from agents.evaluate import rollout
from agents.stats import compare, gap_closed, holm, paired


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_paired_difference_interval_effect_size_and_p_value():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 10, 40)  # large episode-to-episode spread, common to both
    better = base + 1.0 + rng.normal(0, 0.5, 40)
    r = paired(better, base, seed=1)
    assert r["n"] == 40
    assert r["mean_diff"] == pytest.approx(float(np.mean(better - base)))
    lo, hi = r["mean_diff_ci95"]
    assert lo < r["mean_diff"] < hi and lo > 0.5 and hi < 1.5
    assert r["effect_size_dz"] > 1.0 and r["effect_size_dz_ci95"][0] > 0.5
    assert r["p_value"] < 1e-6  # paired: the common spread cancels
    same = paired(base, base)
    assert same["p_value"] == 1.0 and same["mean_diff_ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="one length"):
        paired([1.0, 2.0], [1.0])


def test_compare_holm_corrects_and_names_the_direction():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 5, 30)
    episodes = {
        "ppo": base + 2.0 + rng.normal(0, 0.3, 30),
        "static": base,
        "good": base + 3.0 + rng.normal(0, 0.3, 30),
        "twin": base + 2.0 + rng.normal(0, 0.3, 30),
    }
    recs = {r["baseline"]: r for r in compare(episodes, ["ppo"], ["static", "good", "twin"])}
    assert recs["static"]["verdict"] == "better"
    assert recs["good"]["verdict"] == "worse"
    assert recs["twin"]["verdict"] == "not significant"
    for r in recs.values():
        assert r["p_holm"] >= r["p_value"]


def test_gap_closed_is_zero_at_static_one_at_the_ceiling():
    rng = np.random.default_rng(3)
    static = rng.normal(-20, 10, 24)
    ceiling = static + rng.uniform(5, 30, 24)
    assert gap_closed(static, static, ceiling)["share"] == pytest.approx(0.0)
    assert gap_closed(ceiling, static, ceiling)["share"] == pytest.approx(1.0)
    half = gap_closed((static + ceiling) / 2, static, ceiling)
    lo, hi = half["share_ci95"]
    assert half["share"] == pytest.approx(0.5) and lo <= 0.5 <= hi
    assert gap_closed(static, static, static)["share"] is None


def test_the_ceiling_includes_static_and_is_never_below_it():
    env_kwargs = {"num_positions": 24, "horizon_h": 24.0}
    grid = CeilingGrid(
        {"ltv,liquidation_threshold": ((0.825, 0.86), (0.70, 0.75)), "close_factor": (0.5, 1.0)}
    )
    c = ceiling_returns("regime_stress", 3, 1_000_000, env_kwargs, grid)
    assert c["returns"].shape == (4, 3)
    static = make_baseline("static", "levgym/Governance-v1")
    ref = rollout(static, "levgym/Governance-v1", "regime_stress", 3, 1_000_000, env_kwargs)
    np.testing.assert_array_equal(c["returns"][0], ref["metrics"]["return"])  # same paths
    assert np.all(c["best"] >= ref["metrics"]["return"])
    assert np.all(c["best"] == c["returns"].max(axis=0))
    with pytest.raises(ValueError, match="lever 'nope'"):
        ceiling_returns("calm", 1, 1_000_000, env_kwargs, CeilingGrid({"nope": (1.0,)}))


def test_the_piecewise_ceiling_starts_from_the_fixed_one_and_never_falls_below_it():
    env_kwargs = {"num_positions": 24, "horizon_h": 48.0}
    grid = CeilingGrid(
        {"ltv,liquidation_threshold": ((0.825, 0.86), (0.70, 0.75)), "close_factor": (0.5, 1.0)}
    )
    fixed = ceiling_returns("regime_stress", 4, 1_000_000, env_kwargs, grid)
    pw = piecewise_ceiling_returns("regime_stress", 4, 1_000_000, env_kwargs, grid, segments=3)
    # pass 0 holds each point from the start: exactly the fixed ceiling
    np.testing.assert_array_equal(pw["fixed_best"], fixed["best"])
    assert np.all(pw["best"] >= pw["fixed_best"])
    assert pw["schedule"].shape == (3, 4) and pw["returns"].shape == (4, 4)
    # the last pass replays the chosen schedule: its best is the return of that schedule, and
    # replaying that schedule's point for the last part again gives the same return (no drift)
    j = pw["schedule"][-1]
    np.testing.assert_array_equal(pw["best"], pw["returns"][j, np.arange(4)])
    with pytest.raises(ValueError, match="segments=0"):
        piecewise_ceiling_returns("regime_stress", 1, 1_000_000, env_kwargs, grid, segments=0)


def test_the_paired_verdict_names_each_group():
    from agents.reporting import paired_verdict

    rng = np.random.default_rng(4)
    base = rng.normal(0, 5, 30)
    eps = {"ppo": base + 2 + rng.normal(0, 0.3, 30), "static": base, "vol_rule": base + 1}
    head, detail = paired_verdict(compare(eps, ["ppo"], ["static", "vol_rule"]))
    assert head.startswith("The trained PPO agent beats every baseline, significantly")
    assert "Holm-corrected over 2 comparisons" in head and "30 episodes" in head
    eps["good"] = base + 4 + rng.normal(0, 0.3, 30)
    head, detail = paired_verdict(compare(eps, ["ppo"], ["static", "vol_rule", "good"]))
    assert "significantly worse than 1 of 3" in head
    assert "worse: good" in detail and "better: " in detail


def test_unwinnable_counts_episodes_every_policy_lost():
    from agents.benchmark import unwinnable

    def result(flags):
        return {"scenarios": {"a": {}}, "episode_values": {"a": {"insolvent": flags}}}

    per = {"x": result([1.0, 1.0, 0.0, 1.0]), "y": result([1.0, 0.0, 0.0, 1.0])}
    assert unwinnable(per, "insolvent") == {"a": 0.5}


def test_benchmark_ceiling_with_a_piecewise_schedule_is_reported_and_registered():
    """run_ceiling with segments > 1: per scenario the fixed ceiling equals ceiling_returns' best
    and the piecewise one is never below it; the document passes the output contract and the
    report states both ceilings and both shares."""
    import json

    from agents.benchmark import _significance_lines, results_document, run_ceiling
    from agents.evaluate import load_suite
    from agents.stats import gap_closed
    from levgym import results as R

    suite = load_suite(name="quick")
    env_id = "levgym/Governance-v1"
    entry = suite.for_env(env_id)
    grid = CeilingGrid({"ltv,liquidation_threshold": ((0.825, 0.86), (0.70, 0.75))})
    c = run_ceiling(env_id, suite, grid, segments=2)
    assert c["segments"] == 2 and c["piecewise_objective"] >= c["ceiling_objective"]
    for s in entry.scenarios:
        fixed = ceiling_returns(s, suite.episodes, suite.seed, entry.env_kwargs, grid)["best"]
        np.testing.assert_array_equal(c["episode_values"][s]["return"], fixed)
        assert np.all(np.array(c["episode_values"][s]["piecewise"]) >= fixed)
    static = np.concatenate([c["episode_values"][s]["return"] for s in entry.scenarios]) - 1.0
    best = np.concatenate([c["episode_values"][s]["return"] for s in entry.scenarios])
    best_pw = np.concatenate([c["episode_values"][s]["piecewise"] for s in entry.scenarios])
    gap = gap_closed(static + 0.5, static, best)
    pw = gap_closed(static + 0.5, static, best_pw)
    gap["share_of_piecewise"], gap["share_of_piecewise_ci95"] = pw["share"], pw["share_ci95"]
    assert gap["share"] == pytest.approx(0.5) and pw["share"] <= gap["share"]
    doc = results_document({}, {}, ceilings={env_id: c}, gaps={env_id: {"ppo": gap}})
    doc = json.loads(json.dumps(doc))
    assert [p for p in R.problems(doc, "results.json") if "meta" not in p] == []
    obj, cis = {"ppo": 1.0, "static": 0.5}, {"ppo": 0.1, "static": 0.1}
    text = "\n".join(_significance_lines(env_id, doc, "reward", True, obj, cis))
    assert "A piecewise schedule in hindsight" in text and "share of the piecewise gap" in text
