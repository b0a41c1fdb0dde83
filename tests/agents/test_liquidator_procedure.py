"""The benchmark's liquidator (issue 14's procedure): its settings per preset, the training and
selection jobs it makes, its results.json record, report and summary lines, and its refusals."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from agents.benchmark import (
    DEMO_SEEDS,
    LIQUIDATOR_ENV,
    BenchmarkConfig,
    liquidator_train_jobs,
    preset_config,
    summary,
)
from agents.liquidator_procedure import (
    DESIGN_NOTE,
    ENV_ID,
    PROCEDURES,
    LiquidatorProcedure,
    from_record,
    pick,
    report_section,
    select_jobs,
    summary_lines,
    target_record,
)
from agents.liquidator_target import BASELINE, SCENARIOS, target_verdict
from levgym.results import checked


def _episodes(seed: int, pnl_shift: float, dd_shift: float, n: int = 32):
    rng = np.random.default_rng(seed)
    model, base = {}, {}
    for name in SCENARIOS:
        pnl = rng.normal(20e3, 40e3, n)
        dd = rng.uniform(1e3, 50e3, n)
        base[name] = {"pnl_usd": list(pnl), "max_drawdown_usd": list(dd)}
        model[name] = {
            "pnl_usd": list(pnl + pnl_shift + rng.normal(0, 1e3, n)),
            "max_drawdown_usd": list(np.maximum(dd + dd_shift, 0.0)),
        }
    return model, base


def _selected(run: str, ra: float, steps: int, score: float) -> dict:
    return {
        "run": run,
        "risk_aversion": ra,
        "checkpoint_steps": steps,
        "validation_score": score,
        "validation_target_met": score >= 0,
        "model_path": f"{run}/checkpoints/model_{steps}_steps.zip",
    }


def _record(proc: LiquidatorProcedure) -> dict:
    """A record of two seeds: seed 0 meets the target, seed 1 gains nothing."""
    good, base = _episodes(0, pnl_shift=5e3, dd_shift=-1e3)
    flat, _ = _episodes(0, pnl_shift=0.0, dd_shift=-1e3)
    by_seed = {}
    for seed, values, sel in (
        ("0", good, _selected("/r/ra30", 30, 499_840, 1.96)),
        ("1", flat, _selected("/r/ra100", 100, 74_976, -0.5)),
    ):
        v = target_verdict(values, base)
        by_seed[seed] = {
            "selected": sel,
            "target_met": v["target_met"],
            "target_scenarios": v["target_scenarios"],
        }
    return target_record(proc, by_seed)


def test_presets_set_the_liquidators_budget_and_keep_the_procedure():
    """make demo: two runs of 500,000 steps per seed; --full 600,000; --quick a smoke run; the
    rest of the procedure is the same in each (the one the docs measured)."""
    default, full, quick = (preset_config(p) for p in ("default", "full", "quick"))
    assert default.liquidator is PROCEDURES["default"]
    assert default.liquidator.timesteps_per_run == 500_000
    assert full.liquidator.timesteps_per_run == 600_000
    assert quick.liquidator.timesteps_per_run < 20_000
    for cfg in (default, full):
        proc = cfg.liquidator
        assert LIQUIDATOR_ENV == ENV_ID == "levgym/Liquidator-v2"
        assert LIQUIDATOR_ENV in cfg.env_ids and LIQUIDATOR_ENV not in cfg.timesteps
        assert proc.risk_aversions == (30, 100) and proc.checkpoint_freq == 25_000
        assert (proc.validation_episodes, proc.validation_seed) == (512, 2_000_000)
        assert (proc.test_episodes, proc.test_seed) == (256, 4_000_000)
        assert proc.hyper(30) == (
            "init_action_mean=[1, -0.5, -0.25]",
            "policy_kwargs.log_std_init=-1.0",
            "env_kwargs.risk_aversion=30",
            "env_kwargs.scenarios=[gbm_high_vol, merton_crash]",
            "checkpoint_freq=25000",
        )
    assert default.num_seeds == DEMO_SEEDS == 3
    # the procedure round-trips through results.json's config
    data = json.loads(json.dumps(asdict(default)))
    assert from_record(data["liquidator"]) == default.liquidator
    checked("results.json", {"meta": {"config": data}})


def test_training_and_selection_jobs_of_the_procedure(tmp_path):
    """Per seed one run per risk aversion, in its own folder, with the procedure's overrides
    (then the config's own for the env); selection only from checkpoints within the budget."""
    cfg = replace(
        preset_config("default"), train_hyper={LIQUIDATOR_ENV: ("n_envs=2",)}, num_seeds=2
    )
    jobs = liquidator_train_jobs(cfg, tmp_path, "cmd")
    assert [(j.seed, Path(j.run_dir).name) for j in jobs] == [
        (0, "levgym-Liquidator-v2__ppo__0__ra30"),
        (0, "levgym-Liquidator-v2__ppo__0__ra100"),
        (1, "levgym-Liquidator-v2__ppo__1__ra30"),
        (1, "levgym-Liquidator-v2__ppo__1__ra100"),
    ]
    assert all(j.env_id == LIQUIDATOR_ENV and j.timesteps == 500_000 for j in jobs)
    assert jobs[1].hyper == cfg.liquidator.hyper(100) + ("n_envs=2",)
    assert all(Path(j.run_dir).parent == tmp_path / "train" for j in jobs)
    sel = select_jobs(cfg.liquidator, tmp_path / "train", cfg.seeds)
    assert [s.run_dir for s in sel] == [j.run_dir for j in jobs]
    assert {(s.episodes, s.eval_seed, s.max_steps) for s in sel} == {(512, 2_000_000, 500_000)}


def test_pick_keeps_the_best_run_and_names_its_risk_aversion():
    runs = {30: "/r/ra30", 100: "/r/ra100"}
    results = [
        {"run": "/r/ra30", "selected": {"steps": 74_976, "score": 0.4, "target_met": True,
                                        "path": "/r/ra30/checkpoints/model_74976_steps.zip"}},
        {"run": "/r/ra100", "selected": {"steps": 49_984, "score": 1.5, "target_met": True,
                                         "path": "/r/ra100/checkpoints/model_49984_steps.zip"}},
    ]  # fmt: skip
    chosen = pick(runs, results)
    assert chosen == {
        "run": "/r/ra100",
        "risk_aversion": 100,
        "checkpoint_steps": 49_984,
        "validation_score": 1.5,
        "validation_target_met": True,
        "model_path": "/r/ra100/checkpoints/model_49984_steps.zip",
    }


def test_record_is_in_the_output_contract_and_met_only_on_every_seed():
    proc = PROCEDURES["default"]
    rec = _record(proc)
    checked("results.json", {"liquidator_target": rec})
    assert rec["target_met_by_seed"] == {"0": True, "1": False}
    assert rec["target_met"] is False and rec["baseline"] == BASELINE
    assert rec["env_id"] == ENV_ID and rec["procedure"] == asdict(proc)
    assert rec["by_seed"]["0"]["selected"]["checkpoint_steps"] == 499_840
    one = target_record(proc, {"0": rec["by_seed"]["0"]})
    assert one["target_met"] is True
    with pytest.raises(ValueError, match="by_seed is empty"):
        target_record(proc, {})


def test_report_and_summary_give_the_verdict_per_seed_and_where_the_models_are():
    rec = _record(PROCEDURES["default"])
    text = "\n".join(report_section(rec))
    assert (
        "Issue 14's liquidator target (beat greedy_hedged on PnL at equal or lower drawdown on "
        "gbm_high_vol, merton_crash, significantly): not met (met on 1 of 2 training seeds; test "
        "set: 256 episodes per scenario from seed 4,000,000)" in text
    )
    assert DESIGN_NOTE in text and DESIGN_NOTE.startswith(
        "The test set played no part in any choice"
    )
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0 |") or ln.startswith("| 1 |")]
    assert len(rows) == 2
    assert rows[0].startswith("| 0 | 30, 499,840 (+1.96) | +$")
    assert "**met**" in rows[0] and "/r/ra30/checkpoints/model_499840_steps.zip" in rows[0]
    assert "not met" in rows[1] and "100, 74,976 (-0.50)" in rows[1]
    assert "--episodes 256 --eval-seed 4000000" in text
    lines = summary_lines(rec)
    assert lines[0].endswith("not met (met on 1 of 2 training seeds; test set: 256 episodes per "
                             "scenario from seed 4,000,000):")  # fmt: skip
    assert lines[1].startswith("  seed 0: risk aversion 30, 499,840 steps (validation margin "
                               "+1.96): gbm_high_vol PnL +$")  # fmt: skip
    assert lines[1].endswith(": met") and lines[3].endswith(": not met")
    assert lines[2] == "    model: /r/ra30/checkpoints/model_499840_steps.zip"
    assert report_section(None) == [] and summary_lines(None) == []


def test_benchmark_summary_prints_the_target_and_the_selected_model(tmp_path):
    rec = _record(PROCEDURES["default"])
    model = rec["by_seed"]["0"]["selected"]["model_path"]
    data = {
        "meta": {
            "runs": {LIQUIDATOR_ENV: "/r/ra30"},
            "models": {LIQUIDATOR_ENV: model},
            "config": {},
            "eval_suite": {
                "name": "default",
                "episodes": 16,
                "envs": {"levgym/Liquidator-v1": {"scenario_names": ["gbm_high_vol"]}},
            },
        },
        "objective": {LIQUIDATOR_ENV: {"ppo": 40.0, BASELINE: 35.0}},
        "objective_ci95": {LIQUIDATOR_ENV: {"ppo": 5.0, BASELINE: 4.0}},
        "liquidator_target": rec,
    }
    (tmp_path / "results.json").write_text(json.dumps(data))
    text = summary(tmp_path)
    assert (
        "Issue 14's liquidator target" in text and "not met (met on 1 of 2 training seeds;" in text
    )
    assert f"levgym evaluate --model {model} --env {LIQUIDATOR_ENV}" in text
    assert text.count(f"model: {model}") == 1


def test_bad_procedure_settings_are_refused_naming_the_field():
    ok = PROCEDURES["default"]
    for change, match in (
        ({"timesteps_per_run": 0}, "timesteps_per_run=0 is out of range"),
        ({"checkpoint_freq": 600_000}, "checkpoint_freq=600000 is out of range"),
        ({"risk_aversions": ()}, "risk_aversions=\\(\\) is invalid"),
        ({"risk_aversions": (30, 30)}, "distinct"),
        ({"risk_aversions": (-1,)}, "allowed >= 0"),
        ({"validation_episodes": 1}, "validation_episodes=1 is out of range"),
        ({"test_seed": 5}, "test_seed=5 is in the training range"),
        ({"test_seed": 2_000_100}, "overlap"),
    ):
        with pytest.raises(ValueError, match=match):
            replace(ok, **change)
    with pytest.raises(ValueError, match="liquidator.timesteps_per_run"):
        BenchmarkConfig(suite="quick", timesteps={LIQUIDATOR_ENV: 1})


@pytest.mark.slow
def test_the_procedure_trains_selects_and_judges_tiny_runs(tmp_path):
    """Two tiny runs of one seed through the benchmark's own steps: training jobs, selection
    on the validation set (every checkpoint within the budget), the test-set record."""
    from agents.benchmark import select_liquidators, train_job
    from agents.liquidator_procedure import judge

    tiny = (
        "n_envs=2",
        "n_steps=256",
        "batch_size=128",
        "env_kwargs.num_positions=8",
        "env_kwargs.horizon_h=4",
    )
    proc = LiquidatorProcedure(
        timesteps_per_run=1024,
        checkpoint_freq=512,
        validation_episodes=4,
        test_episodes=4,
        extra_hyper=tiny,
    )
    cfg = replace(preset_config("quick"), liquidator=proc)
    for job in liquidator_train_jobs(cfg, tmp_path, "test"):
        train_job(job)
    picks = select_liquidators(cfg, tmp_path)
    chosen = picks["0"]
    assert chosen["risk_aversion"] in (30, 100) and chosen["checkpoint_steps"] in (512, 1024)
    assert Path(chosen["model_path"]).is_file() and chosen["run"].endswith(
        f"ra{chosen['risk_aversion']:g}"
    )
    rec = judge(proc, picks)
    checked("results.json", {"liquidator_target": rec})
    assert set(rec["by_seed"]) == {"0"} and rec["by_seed"]["0"]["selected"] == chosen
    assert all(r["n"] == 4 for r in rec["by_seed"]["0"]["target_scenarios"].values())
