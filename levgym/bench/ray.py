"""The `levgym bench --ray` section: Monte Carlo stress throughput without Ray (numba on 1 and on 2
threads) and on Ray with 1 and 2 local workers (one thread each), the round trip of an empty
task, and each worker's one-time kernel load / compile, side by side in one run.

Workload: `levgym stress` batches (``levgym.analytics.montecarlo.run_batch``) of the ``shock``
scenario on the ``aave_v3_weth`` preset with the fused numba kernel. Every run computes the same
paths (same seed and batch size; the Ray runs are checked equal to the run here). Throughput is
paths per second of the timed run, after warm-up: the run without Ray is preceded by one untimed
batch (numba loads its cache or compiles there), and each Ray worker runs one untimed batch
before the timed run (its first task: the per-worker load / compile time reported beside).
"""

from __future__ import annotations

import operator
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TARGET_RAY_COST = 0.10
"""Ray with 2 workers may cost at most this share of the best run without it, on 2 cores."""


@dataclass(frozen=True)
class RayBenchConfig:
    """The stress workload and the Ray runs of the section."""

    paths: int = 2000
    batch_size: int = 250
    positions: int = 128
    horizon_h: float = 24.0
    seed: int = 0
    workers: tuple[int, ...] = (1, 2)
    threads: tuple[int, ...] = (1, 2)
    empty_tasks: int = 200
    repeats: int = 3
    """Timed runs per row; the fastest is kept (the others are listed): on shared cores the
    slower runs measure the neighbours."""
    address: str | None = None

    @classmethod
    def quick(cls, address: str | None = None) -> RayBenchConfig:
        return cls(
            paths=64, batch_size=16, positions=16, horizon_h=2.0, empty_tasks=20, address=address
        )

    def workload(self) -> str:
        return (
            f"levgym stress --scenario shock --preset aave_v3_weth --paths {self.paths} "
            f"--batch-size {self.batch_size} --positions {self.positions} "
            f"--horizon-hours {self.horizon_h:g} --seed {self.seed} --backend numba"
        )


def _setup(cfg: RayBenchConfig) -> tuple[Any, Any, Any]:
    from .. import scenarios
    from ..analytics.montecarlo import MonteCarloConfig
    from ..engine.params import EngineParams, preset

    params = EngineParams(protocol=preset("aave_v3_weth"))
    mc = MonteCarloConfig(
        paths=cfg.paths,
        positions=cfg.positions,
        horizon_h=cfg.horizon_h,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        backend="numba",
    )
    return params, scenarios.get("shock").drivers, mc


def _warm_config(mc: Any) -> Any:
    from dataclasses import replace

    return replace(mc, paths=mc.batch_size)


def ray_section(cfg: RayBenchConfig, progress: Any = None) -> dict[str, Any]:
    """Measure the section (see the module docstring); the JSON-able result."""
    from ..analytics.montecarlo import run_paths
    from ..distributed import RaySettings, pin_threads
    from ..distributed.ray_runtime import init_ray
    from .machine import load_average

    load_at_start = load_average()
    params, shock, mc = _setup(cfg)
    rows: list[dict[str, Any]] = []
    reference = None
    previous = None
    try:
        import numba

        previous = numba.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    try:
        for threads in cfg.threads:
            pin_threads(threads)
            run_paths(params, shock, _warm_config(mc))  # numba loads or compiles here
            runs = []
            for _ in range(cfg.repeats):
                t0 = time.perf_counter()
                res = run_paths(params, shock, mc)
                runs.append(time.perf_counter() - t0)
            reference = res if reference is None else reference
            rows.append(
                {
                    "runner": f"no Ray, numba {threads} thread(s)",
                    "ray_workers": 0,
                    "threads": threads,
                    "seconds": min(runs),
                    "paths_per_s": cfg.paths / min(runs),
                    "runs_s": runs,
                }
            )
            if progress is not None:
                progress.update(1)
    finally:
        if previous is not None:
            pin_threads(previous)
    best = max(rows, key=lambda r: r["paths_per_s"])
    overhead: dict[str, Any] = {}
    ray, started = init_ray(RaySettings(cfg.address, max(cfg.workers), 1, 0))
    try:
        overhead, jit = _ray_rows(cfg, rows, reference, params, shock, mc, progress)
    finally:
        if started:
            ray.shutdown()
    ray2 = next((r for r in rows if r["ray_workers"] == 2), None)
    ratio = ray2["paths_per_s"] / best["paths_per_s"] if ray2 else None
    return {
        "load_average_1_5_15": load_at_start,
        "config": asdict(cfg),
        "workload": cfg.workload(),
        "rows": rows,
        "best_without_ray": best["runner"],
        "ray_2_workers_over_best_without_ray": ratio,
        "target": f"Ray with 2 workers >= {1 - TARGET_RAY_COST:.2f} x the best run without Ray",
        "met": None if ratio is None else bool(ratio >= 1 - TARGET_RAY_COST),
        "empty_task": overhead,
        "worker_start": jit,
    }


def _ray_rows(
    cfg: RayBenchConfig,
    rows: list[dict[str, Any]],
    reference: Any,
    params: Any,
    shock: Any,
    mc: Any,
    progress: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Ray rows (appended to ``rows``), the empty-task cost and the workers' start costs.
    One pool at a time: the Ray instance has exactly the CPUs of the largest pool."""
    from ..analytics.montecarlo import run_paths
    from ..distributed import RayExecutor, RaySettings

    overhead: dict[str, Any] = {}
    for workers in cfg.workers:
        settings = RaySettings(cfg.address, workers, 1, 0)
        with RayExecutor(settings) as ex:
            t0 = time.perf_counter()
            # one untimed batch per worker: its first task loads (or compiles) the kernels
            ex.map(_first_batch, (params, shock, mc), list(range(workers)))
            warm_s = time.perf_counter() - t0
            ex.timings.clear()
            runs = []
            for _ in range(cfg.repeats):
                t0 = time.perf_counter()
                res = run_paths(params, shock, mc, executor=ex)
                runs.append(time.perf_counter() - t0)
            seconds = min(runs)
            same = all(
                np.array_equal(res.per_path[k], reference.per_path[k]) for k in reference.per_path
            )
            steady = [t.seconds for t in ex.timings]
            rows.append(
                {
                    "runner": f"Ray, {workers} worker(s) x 1 thread",
                    "ray_workers": workers,
                    "threads": 1,
                    "seconds": seconds,
                    "paths_per_s": cfg.paths / seconds,
                    "same_paths_as_without_ray": same,
                    "runs_s": runs,
                    "warm_up_s": warm_s,
                    "task_s_median": float(np.median(steady)) if steady else None,
                }
            )
            if workers == max(cfg.workers):
                overhead = _empty_task_cost(ex, cfg.empty_tasks)
        if progress is not None:
            progress.update(1)
    jit = _jit_times(cfg.address, params, shock, mc, max(cfg.workers))
    return overhead, jit


def _first_batch(shared: tuple[Any, Any, Any], item: int) -> float:
    from ..analytics.montecarlo import RunSpec, run_batch

    params, shock, mc = shared
    t0 = time.perf_counter()
    run_batch(RunSpec(params), shock, mc, 0)
    return time.perf_counter() - t0


def _jit_times(
    address: str | None, params: Any, shock: Any, mc: Any, workers: int
) -> list[dict[str, Any]]:
    """Per worker of a fresh pool: its first batch (loads or compiles numba's kernels) minus its
    next one (steady state)."""
    from ..distributed import RayExecutor, RaySettings

    out = []
    with RayExecutor(RaySettings(address, workers, 1, 0), depth=1) as fresh:
        firsts = fresh.map(_first_batch, (params, shock, mc), list(range(workers)))
        seconds = fresh.map(_first_batch, (params, shock, mc), list(range(workers)))
        by_pid: dict[int, list[float]] = {}
        for t in fresh.timings:
            by_pid.setdefault(t.pid, []).append(t.seconds)
    for times in by_pid.values():
        if len(times) >= 2:
            out.append(
                {
                    "first_batch_s": times[0],
                    "steady_batch_s": float(np.median(times[1:])),
                    "compile_or_load_s": times[0] - float(np.median(times[1:])),
                }
            )
    if not out:  # one worker took every task: pair the runs instead
        out = [
            {"first_batch_s": a, "steady_batch_s": b, "compile_or_load_s": a - b}
            for a, b in zip(firsts, seconds, strict=True)
        ]
    return out


def _empty_task_cost(ex: Any, n: int) -> dict[str, Any]:
    """The round trip of a task that does nothing (``operator.add``): submit, run, return."""
    ex.map(operator.add, 0, list(range(ex.workers)))  # warm
    t0 = time.perf_counter()
    ex.map(operator.add, 0, list(range(n)))
    seconds = time.perf_counter() - t0
    return {"tasks": n, "workers": ex.workers, "ms_per_task": 1e3 * seconds / n}


def render(section: dict[str, Any], markdown: bool) -> list[str]:
    """The section's lines (a table and the figures beside it)."""
    from .report import _num, _table

    lines = [
        f"Workload: `{section['workload']}` (the paths of every row are the same; Ray rows checked "
        "equal to the run without Ray). Paths per second of the fastest of "
        f"{section['config']['repeats']} timed runs, after warm-up; load average "
        f"{section.get('load_average_1_5_15')} at the start of the section.",
        "",
    ]
    best = max(r["paths_per_s"] for r in section["rows"])
    rows = [
        [
            r["runner"],
            f"{r['seconds']:.2f}",
            f"{r['paths_per_s']:.1f}",
            f"{r['paths_per_s'] / best:.2f}",
            _num(r.get("same_paths_as_without_ray")),
        ]
        for r in section["rows"]
    ]
    lines += _table(["runner", "s", "paths / s", "vs best", "same paths"], rows, markdown)
    lines.append("")
    ratio = section["ray_2_workers_over_best_without_ray"]
    if ratio is not None:
        verdict = "met" if section["met"] else "not met"
        lines.append(
            f"Ray with 2 workers: {ratio:.2f} x the best run without Ray "
            f"({section['best_without_ray']}); target {section['target']}: {verdict}."
        )
    e = section.get("empty_task")
    if e:
        lines.append(
            f"Empty task round trip: {e['ms_per_task']:.2f} ms per task ({e['tasks']} tasks on "
            f"{e['workers']} warm workers)."
        )
    for i, w in enumerate(section.get("worker_start", [])):
        lines.append(
            f"Worker {i} start: first batch {w['first_batch_s']:.2f} s, then {w['steady_batch_s']:.2f} s "
            f"per batch: {w['compile_or_load_s']:.2f} s to load (or compile) numba's kernels."
        )
    return lines
