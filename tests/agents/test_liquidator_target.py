"""Issue 14's liquidator target: the verdict from per-episode values, its results.json record,
its report lines, and the command's refusal of a missing model."""

from __future__ import annotations

import numpy as np
import pytest

from agents.liquidator_target import (
    BASELINE,
    SCENARIOS,
    benchmark_target,
    main,
    report_lines,
    target_verdict,
    verdict_lines,
)
from levgym.results import checked


def _values(pnl, drawdown):
    return {"pnl_usd": list(pnl), "max_drawdown_usd": list(drawdown)}


def _episodes(seed: int, pnl_shift: float, dd_shift: float, n: int = 16):
    rng = np.random.default_rng(seed)
    out_b, out_m = {}, {}
    for name in SCENARIOS:
        pnl = rng.normal(20e3, 40e3, n)  # large spread common to both policies
        dd = rng.uniform(1e3, 50e3, n)
        out_b[name] = _values(pnl, dd)
        out_m[name] = _values(
            pnl + pnl_shift + rng.normal(0, 1e3, n), np.maximum(dd + dd_shift, 0.0)
        )
    return out_m, out_b


def test_met_only_with_a_significant_pnl_gain_at_no_larger_drawdown():
    model, base = _episodes(0, pnl_shift=5e3, dd_shift=-1e3)
    v = target_verdict(model, base)
    assert v["target_met"] and v["baseline"] == BASELINE
    for name in SCENARIOS:
        r = v["target_scenarios"][name]
        assert r["n"] == 16 and r["pnl_better"] and r["drawdown_ok"] and r["target_met"]
        lo, hi = r["pnl_diff_ci95_usd"]
        assert lo < r["pnl_diff_usd"] < hi and lo > 0
        assert r["pnl_p_holm"] >= r["pnl_p_value"]
        assert r["pnl_usd"] - r["baseline_pnl_usd"] == pytest.approx(r["pnl_diff_usd"])
    # more drawdown: PnL still better, target not met
    model, base = _episodes(0, pnl_shift=5e3, dd_shift=2e3)
    v = target_verdict(model, base)
    assert not v["target_met"]
    assert all(r["pnl_better"] and not r["drawdown_ok"] for r in v["target_scenarios"].values())
    # no PnL gain (only noise): not significant, not met, whatever the drawdown
    model, base = _episodes(1, pnl_shift=0.0, dd_shift=-1e3)
    v = target_verdict(model, base)
    assert not v["target_met"]
    assert not any(r["pnl_better"] for r in v["target_scenarios"].values())


def test_one_scenario_failing_fails_the_target_and_names_it():
    model, base = _episodes(2, pnl_shift=5e3, dd_shift=-1e3)
    worse = SCENARIOS[1]
    model[worse]["pnl_usd"] = [x - 10e3 for x in model[worse]["pnl_usd"]]
    v = target_verdict(model, base)
    assert not v["target_met"]
    assert v["target_scenarios"][SCENARIOS[0]]["target_met"]
    assert not v["target_scenarios"][worse]["target_met"]
    lines = verdict_lines(v)
    assert lines[-1].endswith(": not met") and lines[1].startswith(worse)
    with pytest.raises(ValueError, match="missing from the model"):
        target_verdict({SCENARIOS[0]: model[SCENARIOS[0]]}, base)


def test_benchmark_record_is_in_the_output_contract_with_each_seed():
    model, base = _episodes(3, pnl_shift=5e3, dd_shift=-1e3)
    other, _ = _episodes(3, pnl_shift=-5e3, dd_shift=-1e3)
    per_policy = {BASELINE: {"episode_values": base}}
    rec = benchmark_target(per_policy, {"0": model, "1": other}, seed=0)
    assert rec["target_met"] and rec["target_met_by_seed"] == {"0": True, "1": False}
    checked("results.json", {"liquidator_target": rec})
    text = "\n".join(report_lines(rec))
    assert "met by 1 of 2 training seeds" in text and "gbm_high_vol" in text
    assert benchmark_target({}, {"0": model}) is None
    assert report_lines(None) == []


def test_command_refuses_a_missing_model(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "is not a model.zip" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere"), "--episodes", "1"]) == 2
    assert "--episodes 1 is out of range; allowed >= 2" in capsys.readouterr().err
    assert main(["--constant", "1,0,0", "--eval-seed", "5"]) == 2
    assert "--eval-seed 5 is in the training range" in capsys.readouterr().err
    assert main(["--constant", "1,2,0"]) == 2
    assert "--constant '1,2,0' is invalid" in capsys.readouterr().err
    assert main([]) == 2
    assert "nothing to judge" in capsys.readouterr().err


def test_constant_greedy_hedged_action_ties_the_rule_exactly(capsys):
    """On Liquidator-v2 greedy_hedged's action is the constant (1, -0.5, -0.25) (its hedge of a
    zero inventory shorts nothing either way), so the constant policy's PnL differences are 0."""
    assert main(["--constant", "1,-0.5,-0.25", "--episodes", "2"]) == 1
    out = capsys.readouterr().out
    assert out.count("difference $0.0k [$0.0k, $0.0k]") == 2
    assert "constant 1,-0.5,-0.25 (levgym/Liquidator-v2)" in out


def test_episodes_replace_the_suites_count_on_the_same_seeds():
    from agents.liquidator_target import _suite

    base = _suite("default", None)
    more = _suite("default", 64)
    assert (more.episodes, more.seed, more.envs) == (64, base.seed, base.envs)
    assert base.episodes == 16
    fresh = _suite("default", 64, 2_000_000)
    assert (fresh.episodes, fresh.seed) == (64, 2_000_000)


def test_benchmark_summary_states_the_target(tmp_path):
    import json

    from agents.benchmark import LIQUIDATOR_ENV, summary

    model, base = _episodes(4, pnl_shift=5e3, dd_shift=-1e3)
    rec = benchmark_target({BASELINE: {"episode_values": base}}, {"0": model, "1": base})
    out = tmp_path / "bench"
    out.mkdir()
    data = {
        "meta": {
            "runs": {},
            "config": {},
            "eval_suite": {"name": "default", "episodes": 16, "envs": {}},
        },
        "objective": {LIQUIDATOR_ENV: {"ppo": 40.0, BASELINE: 35.0}},
        "objective_ci95": {LIQUIDATOR_ENV: {"ppo": 5.0, BASELINE: 4.0}},
        "liquidator_target": rec,
    }
    (out / "results.json").write_text(json.dumps(data))
    text = summary(out)
    assert (
        "target vs greedy_hedged on gbm_high_vol, merton_crash: met (seed 0; met by 1 of 2 "
        "training seeds)." in text
    )


def test_verdict_from_real_rollouts_of_two_rules():
    """``greedy`` (sells at once, no hedge) as the model on a tiny suite: the record is built from
    evaluate's episode values, and its means are evaluate's."""
    from agents.baselines import make_baseline
    from agents.evaluate import EnvSuite, Suite, evaluate

    env_id = "levgym/Liquidator-v1"
    suite = Suite(
        "tiny", 4, 1_000_000, {env_id: EnvSuite(SCENARIOS, {"num_positions": 8, "horizon_h": 2})}
    )
    res = {
        name: evaluate(make_baseline(name, env_id), env_id, suite, None, False, keep_episodes=True)
        for name in ("greedy", BASELINE)
    }
    rec = benchmark_target(res, {"0": res["greedy"]["episode_values"]})
    checked("results.json", {"liquidator_target": rec})
    for name in SCENARIOS:
        r = rec["target_scenarios"][name]
        assert r["n"] == 4
        assert r["pnl_usd"] == pytest.approx(res["greedy"]["scenarios"][name]["pnl_usd"]["mean"])
        assert r["baseline_max_drawdown_usd"] == pytest.approx(
            res[BASELINE]["scenarios"][name]["max_drawdown_usd"]["mean"]
        )
        assert not r["pnl_better"]  # 4 episodes cannot reach p < 0.05 after Holm
    assert rec["target_met"] is False and rec["target_met_by_seed"] == {"0": False}


def test_v2_model_is_evaluated_on_v2_with_the_suites_v1_entry(tmp_path):
    """A run folder's config.yaml names the env the target evaluates on (v1 without one); a
    suite without a Liquidator-v2 block evaluates v2 on its Liquidator-v1 entry, and the
    baselines run on v2 with their v2 actions."""
    from agents.baselines import make_baseline
    from agents.evaluate import EnvSuite, Suite, evaluate
    from agents.liquidator_target import ENV_ID, model_env_id

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.zip").write_bytes(b"")
    assert model_env_id(run) == ENV_ID
    (run / "config.yaml").write_text("env_id: levgym/Liquidator-v2\nalgo: ppo\nseed: 0\n")
    assert model_env_id(run) == "levgym/Liquidator-v2"

    v1_entry = EnvSuite(("gbm_high_vol",), {"num_positions": 8, "horizon_h": 1})
    suite = Suite("tiny", 2, 1_000_000, {ENV_ID: v1_entry})
    assert suite.for_env("levgym/Liquidator-v2") is v1_entry
    with pytest.raises(ValueError, match="has no entry"):
        suite.for_env("levgym/Governance-v1")
    res = evaluate(
        make_baseline(BASELINE, "levgym/Liquidator-v2"), "levgym/Liquidator-v2", suite, None, False
    )
    assert res["env_id"] == "levgym/Liquidator-v2" and "gbm_high_vol" in res["scenarios"]
