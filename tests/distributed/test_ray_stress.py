"""Monte Carlo batches on Ray: bit-identical to the run in this process, failed tasks retried and
never dropped, and the workers import this checkout's levgym."""

from __future__ import annotations

import operator

import numpy as np
import pytest

from levgym import scenarios
from levgym.analytics.frontier import parse_sweep, run_sweep
from levgym.analytics.montecarlo import MonteCarloConfig, run_paths
from levgym.distributed import DistributedError, RayExecutor, RaySettings
from levgym.engine.params import EngineParams, preset

BASE = EngineParams(protocol=preset("conservative"))
CFG = MonteCarloConfig(paths=120, positions=16, horizon_h=4.0, seed=7, batch_size=30)
SHOCK = scenarios.get("shock").drivers  # a bound method: shipped to the workers by value


def _same(a, b) -> None:
    assert a.per_path.keys() == b.per_path.keys()
    for k in a.per_path:
        np.testing.assert_array_equal(a.per_path[k], b.per_path[k], err_msg=k)


@pytest.fixture(scope="module")
def executor(ray_local):
    with RayExecutor(RaySettings(workers=2)) as ex:
        yield ex


def test_stress_on_ray_equals_the_run_here_bit_for_bit(executor):
    here = run_paths(BASE, SHOCK, CFG, heatmap=True)
    on_ray = run_paths(BASE, SHOCK, CFG, heatmap=True, executor=executor)
    _same(here, on_ray)
    for field in ("edges_rel", "times_h", "debt_usd", "fundamental_rel", "oracle_rel"):
        np.testing.assert_array_equal(
            getattr(here.heatmap, field), getattr(on_ray.heatmap, field), err_msg=field
        )
    # both workers took part, and each task ran on one of them
    assert len({t.pid for t in executor.timings}) == 2
    assert here.per_path["bad_debt_measured_usd"].shape == (120,)


def test_sweep_grid_points_on_ray_equal_the_run_here(executor):
    axis = parse_sweep("protocol.liquidation_threshold=0.75,0.8")
    here = run_sweep(BASE, SHOCK, CFG, [axis]).to_dict()
    on_ray = run_sweep(BASE, SHOCK, CFG, [axis], executor=executor).to_dict()
    assert here == on_ray


def test_workers_import_this_checkout(executor):
    import levgym

    # the module travels by name: each worker reads its own levgym's __file__
    got = executor.map(getattr, levgym, ["__file__"] * 4)
    assert set(got) == {levgym.__file__}


def test_a_failed_task_is_retried_and_no_batch_is_dropped(executor, tmp_path):
    here = run_paths(BASE, SHOCK, CFG)
    executor.fail_once_dir = str(tmp_path)
    try:
        on_ray = run_paths(BASE, SHOCK, CFG, executor=executor)
    finally:
        executor.fail_once_dir = None
    # every one of the 4 batches failed once and was rerun
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"task_{i}" for i in range(4)]
    _same(here, on_ray)


def test_a_task_failing_past_its_retries_fails_the_run(executor):
    assert executor.settings.retries == 2
    with pytest.raises(DistributedError, match=r"task 1 failed 3 times .*ZeroDivisionError"):
        executor.map(operator.truediv, 1, [1, 0, 2])


@pytest.mark.slow
def test_a_training_seed_on_ray_equals_training_here(executor, tmp_path):
    """The benchmark's training task on a Ray worker (threads pinned there) gives the run that
    training in this process gives: same logged losses and returns, step for step."""
    from agents.benchmark import TrainJob, _train_task, train_job
    from agents.train import read_progress

    tiny = (
        "n_envs=2",
        "n_steps=32",
        "batch_size=32",
        "n_epochs=1",
        "env_kwargs.horizon_h=12",
        "env_kwargs.num_positions=8",
    )

    def job(where):
        return TrainJob("levgym/Governance-v1", 3, str(tmp_path / where), 128, "test", hyper=tiny)

    train_job(job("here"))
    executor.map(_train_task, None, [job("ray")])
    a, b = read_progress(tmp_path / "here"), read_progress(tmp_path / "ray")
    keys = [k for k in a[-1] if not k.startswith("time/") or k == "time/total_timesteps"]
    assert a and [{k: r.get(k) for k in keys} for r in a] == [
        {k: r.get(k) for k in keys} for r in b
    ]
