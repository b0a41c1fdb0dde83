"""The benchmark's training seeds as tasks: a process pool (spawn) gives the same runs as training
in this process, seed for seed; the report aggregates the objective over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from agents.benchmark import TrainJob, _train_task, seed_summary, train_job
from agents.train import read_progress
from levgym import scenarios
from levgym.analytics.montecarlo import MonteCarloConfig, run_paths
from levgym.distributed import ProcessPoolRunner
from levgym.engine.params import EngineParams

TINY = (
    "n_envs=2",
    "n_steps=32",
    "batch_size=32",
    "n_epochs=1",
    "env_kwargs.horizon_h=12",
    "env_kwargs.num_positions=8",
)


def test_stress_batches_in_a_process_pool_equal_the_run_here():
    cfg = MonteCarloConfig(paths=40, positions=8, horizon_h=2.0, seed=1, batch_size=10)
    shock = scenarios.get("shock").drivers
    here = run_paths(EngineParams(), shock, cfg, heatmap=True)
    pooled = run_paths(EngineParams(), shock, cfg, heatmap=True, executor=ProcessPoolRunner(2))
    for k in here.per_path:
        np.testing.assert_array_equal(here.per_path[k], pooled.per_path[k], err_msg=k)
    np.testing.assert_array_equal(here.heatmap.debt_usd, pooled.heatmap.debt_usd)


def test_seed_summary_is_the_mean_and_t_interval_over_seeds():
    s = seed_summary({"0": 1.0, "1": 3.0})
    assert s["mean"] == 2.0 and s["n"] == 2
    assert s["ci95"] == pytest.approx(12.706204736, rel=1e-6)
    assert seed_summary({"0": 5.0})["ci95"] is None


@pytest.mark.slow
def test_training_seeds_in_a_process_pool_equal_training_here(tmp_path):
    def jobs(where):
        return [
            TrainJob(
                "levgym/Governance-v1",
                seed,
                str(tmp_path / where / f"s{seed}"),
                128,
                "test",
                hyper=TINY,
            )
            for seed in (0, 1)
        ]

    for job in jobs("here"):
        train_job(job)
    ProcessPoolRunner(2, threads=1).map(_train_task, None, jobs("pool"))
    for seed in (0, 1):
        a = read_progress(tmp_path / "here" / f"s{seed}")
        b = read_progress(tmp_path / "pool" / f"s{seed}")
        keys = [k for k in a[-1] if not k.startswith("time/") or k == "time/total_timesteps"]
        assert a and [{k: r.get(k) for k in keys} for r in a] == [
            {k: r.get(k) for k in keys} for r in b
        ]
    # different seeds are different runs
    assert (
        read_progress(tmp_path / "here" / "s0")[-1] != read_progress(tmp_path / "here" / "s1")[-1]
    )


def test_presets_train_several_seeds_except_quick():
    """make demo trains 3 seeds per env on a shorter budget, --full levgym train's budgets with 5
    seeds, --quick one seed; an unknown preset is named."""
    from agents.benchmark import DEMO_TIMESTEPS, preset_config
    from agents.config import load_config

    default, full, quick = (preset_config(p) for p in ("default", "full", "quick"))
    assert default.num_seeds == 3 and set(default.timesteps.values()) == {DEMO_TIMESTEPS}
    assert full.num_seeds == 5 and quick.num_seeds == 1
    for env_id, steps in full.timesteps.items():
        assert steps == int(load_config(env_id, "ppo")["total_timesteps"]) > DEMO_TIMESTEPS
    with pytest.raises(ValueError, match="preset='long' is unknown; allowed quick, default, full"):
        preset_config("long")


def test_pinned_env_versions_do_not_print_gymnasiums_out_of_date_notice():
    # The benchmark runs Liquidator-v2 and Governance-v1 on purpose; a newer version of each is
    # registered, so Gymnasium would tell every worker to upgrade. Importing the benchmark or the
    # liquidator's procedure (what its selection workers import) or the standalone evaluation
    # hides it for levgym ids only.
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "import gymnasium as gym, levgym\n"
        "{imp}"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    gym.make('levgym/Liquidator-v2').close()\n"
        "print(sum('out of date' in str(w.message) for w in seen))\n"
    )
    counts = [
        subprocess.run(
            [sys.executable, "-c", code.format(imp=imp)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for imp in (
            "",
            "import agents.benchmark\n",
            "import agents.liquidator_procedure\n",
            "import agents.liquidator_target\n",
        )
    ]
    assert counts == ["1", "0", "0", "0"]
