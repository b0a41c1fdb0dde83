"""Issue 14's liquidator target: the verdict from per-episode values, checkpoint selection, and
the command's refusals (the benchmark's record of it: test_liquidator_procedure.py)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.liquidator_target import (
    BASELINE,
    SCENARIOS,
    main,
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
    rec = target_verdict(res["greedy"]["episode_values"], res[BASELINE]["episode_values"])
    checked("results.json", {"liquidator_target": rec})
    for name in SCENARIOS:
        r = rec["target_scenarios"][name]
        assert r["n"] == 4
        assert r["pnl_usd"] == pytest.approx(res["greedy"]["scenarios"][name]["pnl_usd"]["mean"])
        assert r["baseline_max_drawdown_usd"] == pytest.approx(
            res[BASELINE]["scenarios"][name]["max_drawdown_usd"]["mean"]
        )
        assert not r["pnl_better"]  # 4 episodes cannot reach p < 0.05 after Holm
    assert rec["target_met"] is False


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


# --- checkpoint selection on a validation set -------------------------------------------------


def _margins(model, base):
    from agents.liquidator_target import target_margins

    return target_margins(target_verdict(model, base), model, base)


def test_drawdown_z_is_the_paired_mean_in_standard_errors():
    from agents.liquidator_target import drawdown_z

    base = [10.0, 20.0, 30.0, 40.0]
    model = [9.0, 18.0, 28.0, 37.0]  # differences 1, 2, 2, 3: mean 2, sd sqrt(2/3)
    assert drawdown_z(model, base) == pytest.approx(2.0 / (np.sqrt(2 / 3) / 2))
    assert drawdown_z(base, model) == pytest.approx(-drawdown_z(model, base))
    assert drawdown_z(base, base) == 0.0
    assert drawdown_z([x - 1 for x in base], base) == np.inf
    with pytest.raises(ValueError, match="two or more episodes"):
        drawdown_z([1.0], [2.0])


def test_margins_are_non_negative_exactly_where_the_target_holds():
    """Each margin's sign is its condition of the target: PnL significantly better after Holm,
    mean drawdown no larger; the score (the weakest) is >= 0 exactly when the target is met."""
    from agents.liquidator_target import selection_score

    cases = [(5e3, -1e3), (5e3, 2e3), (0.0, -1e3), (-5e3, -1e3), (1e3, -300.0), (300.0, 0.0)]
    for seed, (pnl_shift, dd_shift) in enumerate(cases):
        for n in (16, 64):
            model, base = _episodes(seed, pnl_shift, dd_shift, n)
            v = target_verdict(model, base)
            m = _margins(model, base)
            for name in SCENARIOS:
                r = v["target_scenarios"][name]
                assert (m[name]["pnl"] >= 0) == r["pnl_better"], (seed, n, name)
                assert (m[name]["drawdown"] >= 0) == r["drawdown_ok"], (seed, n, name)
            assert (selection_score(m) >= 0) == v["target_met"]
            assert selection_score(m) == min(x for d in m.values() for x in d.values())


def test_a_loss_has_a_negative_pnl_margin_however_significant():
    model, base = _episodes(5, pnl_shift=-5e3, dd_shift=-1e3, n=64)
    v = target_verdict(model, base)
    assert all(r["pnl_p_holm"] < 1e-6 for r in v["target_scenarios"].values())
    assert all(m["pnl"] < -3 for m in _margins(model, base).values())


def test_select_checkpoint_keeps_the_strongest_weakest_margin_then_the_fewest_steps():
    from agents.liquidator_target import select_checkpoint

    def m(pnl_a, dd_a, pnl_b, dd_b):
        return {"a": {"pnl": pnl_a, "drawdown": dd_a}, "b": {"pnl": pnl_b, "drawdown": dd_b}}

    margins = {
        100: m(3.0, 0.2, 1.0, 1.0),  # weakest 0.2
        200: m(0.8, 0.9, 2.0, 5.0),  # weakest 0.8: the best
        300: m(9.0, 9.0, 9.0, -0.1),  # large gains, drawdown above in b: fails
        400: m(0.8, 2.0, 0.8, 3.0),  # ties 200 at 0.8, more steps
    }
    assert select_checkpoint(margins) == {"steps": 200, "score": 0.8, "target_met": True}
    bad = {100: m(-1.0, 2.0, 1.0, 1.0), 200: m(1.0, -0.5, 1.0, 1.0)}
    assert select_checkpoint(bad) == {"steps": 200, "score": -0.5, "target_met": False}
    with pytest.raises(ValueError, match="no checkpoints"):
        select_checkpoint({})


def test_select_across_runs_keeps_the_best_selected_model():
    from agents.liquidator_target import select_across

    def res(run, steps, score):
        sel = {"steps": steps, "score": score, "target_met": score >= 0, "path": f"{run}/m"}
        return {"run": run, "selected": sel}

    runs = [res("a", 500, 1.2), res("b", 75, 1.9), res("c", 50, 1.9)]
    assert select_across(runs) == {**runs[2]["selected"], "run": "c"}  # tie: fewer steps
    assert select_across(runs[:2])["run"] == "b"
    assert select_across([res("a", 50, -0.3), res("b", 50, -0.3)])["run"] == "a"
    with pytest.raises(ValueError, match="no runs"):
        select_across([])


def test_run_checkpoints_lists_a_runs_models_by_steps(tmp_path):
    from agents.liquidator_target import run_checkpoints

    assert run_checkpoints(tmp_path) == {}
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    for steps in (50, 100, 150):
        (ckpt / f"model_{steps}_steps.zip").write_bytes(b"")
        (ckpt / f"model_vecnormalize_{steps}_steps.json").write_text("{}")
    (ckpt / "notes.zip").write_bytes(b"")
    assert list(run_checkpoints(tmp_path)) == [50, 100, 150]
    assert list(run_checkpoints(tmp_path, max_steps=100)) == [50, 100]
    assert run_checkpoints(tmp_path)[100] == ckpt / "model_100_steps.zip"
    # the final model counts with its own step number unless a checkpoint has it
    import json
    import zipfile

    with zipfile.ZipFile(tmp_path / "model.zip", "w") as z:
        z.writestr("data", json.dumps({"num_timesteps": 160}))
        z.writestr("policy.pth", b"")
    assert list(run_checkpoints(tmp_path)) == [50, 100, 150, 160]
    assert run_checkpoints(tmp_path)[160] == tmp_path / "model.zip"
    assert 160 not in run_checkpoints(tmp_path, max_steps=150)


def test_a_checkpoint_is_evaluated_on_its_runs_env(tmp_path):
    from agents.liquidator_target import ENV_ID, model_env_id

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "model_100_steps.zip").write_bytes(b"")
    assert model_env_id(ckpt / "model_100_steps.zip") == ENV_ID
    (tmp_path / "config.yaml").write_text("env_id: levgym/Liquidator-v2\nalgo: ppo\nseed: 0\n")
    assert model_env_id(ckpt / "model_100_steps.zip") == "levgym/Liquidator-v2"


def test_select_command_refuses_bad_input(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    assert main(["--select-checkpoints", str(run)]) == 2
    assert "is not a run folder with checkpoints" in capsys.readouterr().err
    assert main(["--select-checkpoints", str(tmp_path / "nowhere")]) == 2
    assert "is not a run folder with checkpoints" in capsys.readouterr().err
    (run / "checkpoints" / "model_100_steps.zip").write_bytes(b"")
    assert main(["--select-checkpoints", str(run), "--max-steps", "50"]) == 2
    assert "of at most 50 steps" in capsys.readouterr().err
    assert main(["--select-checkpoints", str(run), "--max-steps", "0"]) == 2
    assert "--max-steps 0 is out of range" in capsys.readouterr().err
    assert main(["--select-checkpoints", str(run), "--constant", "1,0,0"]) == 2
    assert "allowed without model arguments or --constant" in capsys.readouterr().err
    assert main(["--select-checkpoints", str(run), "--eval-seed", "7"]) == 2
    assert "--eval-seed 7 is in the training range" in capsys.readouterr().err
    assert main(["--constant", "1,0,0", "--max-steps", "5"]) == 2
    assert "--max-steps is for --select-checkpoints" in capsys.readouterr().err
    assert main(["--constant", "1,0,0", "--pool"]) == 2
    assert "--pool is for --select-checkpoints" in capsys.readouterr().err
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "model_100_steps.zip").write_bytes(b"")
    (other / "config.yaml").write_text("env_id: levgym/Liquidator-v2\nalgo: ppo\n")
    assert (
        main(["--select-checkpoints", str(run), "--select-checkpoints", str(other), "--pool"]) == 2
    )
    assert "--pool needs runs of one env" in capsys.readouterr().err
    # a truncated final model is named, not a traceback
    (run / "model.zip").write_bytes(b"PK")
    assert main(["--select-checkpoints", str(run)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


@pytest.mark.slow
def test_select_checkpoints_of_a_short_run(tmp_path, capsys):
    """A short warm-started Liquidator-v2 run with three checkpoints: every one is judged on
    the validation set and the selected one is the one with the best weakest margin."""
    from agents.liquidator_target import select_checkpoints, selection_score
    from agents.train import train

    run = train(
        "levgym/Liquidator-v2",
        total_timesteps=3 * 512,
        seed=0,
        out=tmp_path / "run",
        progress=False,
        hyper=[
            "n_envs=2",
            "n_steps=256",
            "batch_size=128",
            "checkpoint_freq=512",
            "init_action_mean=[1, -0.5, -0.25]",
            "env_kwargs.num_positions=8",
            "env_kwargs.horizon_h=4",
        ],
    )
    res = select_checkpoints(run, episodes=4, eval_seed=2_000_000)
    assert sorted(res["verdicts"]) == [512, 1024, 1536]
    best = max(selection_score(m) for m in res["margins"].values())
    assert res["selected"]["score"] == best
    assert res["selected"]["path"] == res["paths"][res["selected"]["steps"]]
    code = main(["--select-checkpoints", str(run), "--episodes", "4", "--max-steps", "1024"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "selected:" in out and "1,536 steps" not in out
