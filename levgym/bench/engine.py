"""Engine measurements: the batched engine against the reference loop, position-updates per
second by backend and batch size, and the memory-bandwidth bound of the largest case.

Every measurement runs a ``shock`` path whose fall starts at once (so the timed substeps have
liquidation cascades), from a book drawn by ``init_state``; only the substep calls are timed
(drivers, noise and their conversion to the backend are prepared outside the clock).

Work is counted in *position-updates*: per substep, each env's positions once for the market,
interest and borrower stages plus once more for every cascade round in which that env
liquidated (``sum_e N * (1 + rounds_e)``). Rounds are the engine's own output and equal on every
backend, so the count is the same work whichever backend does it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import scenarios
from ..engine.backend import make_converter, to_numpy
from ..engine.drivers import DriverRow, Drivers
from ..engine.params import EngineParams
from ..engine.state import State, init_state
from .machine import available_memory_bytes

SHOCK_KNOBS = {"start_hour": "0", "drop_hours": "1", "drop_frac": "0.4"}

# Bytes a fused kernel must move per position: one pass reading the position row (collateral,
# debt, active, kind, trigger, reaction probability, target, repays, template collateral and
# HF, ever-liquidated) and the borrower noise, writing collateral, debt, active and
# ever-liquidated; and per further cascade round a scan of collateral, debt and active.
BYTES_PER_POSITION_PASS = (8 + 8 + 1 + 8 + 8 + 8 + 8 + 1 + 8 + 8 + 1) + 8 + (8 + 8 + 1 + 1)
BYTES_PER_POSITION_ROUND = 8 + 8 + 1

# Peak bytes per position a backend needs for one substep (state, noise, outputs, temporaries);
# sizes above half the available memory are skipped.
PEAK_BYTES_PER_POSITION = {
    "numpy": 900,
    "torch": 900,
    "torch-masked": 1100,
    "numba": 200,
    "torch-cuda": 1100,
}


@dataclass(frozen=True)
class BackendSpec:
    """How to run one backend: the array backend of its state, its device and its substep."""

    name: str
    array_backend: str
    device: str | None
    substep: Callable[..., tuple[State, Any]]

    @property
    def cuda(self) -> bool:
        return bool(self.device and str(self.device).startswith("cuda"))

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()


def available_backends(requested: list[str] | None = None) -> list[BackendSpec]:
    """Backends that can run here, in a fixed order: numpy, torch (CPU, loop cascade),
    torch-masked (CPU, cascade without host syncs), numba (fused kernel) and torch-cuda (the
    sync-free path, when a GPU is present). ``requested`` keeps only the named ones."""
    from ..engine.step import substep, substep_masked

    specs = [BackendSpec("numpy", "numpy", None, substep)]
    try:
        import torch

        specs.append(BackendSpec("torch", "torch", "cpu", substep))
        specs.append(BackendSpec("torch-masked", "torch", "cpu", substep_masked))
        if torch.cuda.is_available():
            specs.append(BackendSpec("torch-cuda", "torch", "cuda", substep_masked))
    except ImportError:
        pass
    from ..engine.fused import HAVE_NUMBA, fused_substep

    if HAVE_NUMBA:
        specs.insert(
            3 if len(specs) >= 3 else len(specs), BackendSpec("numba", "numba", None, fused_substep)
        )
    if requested:
        known = [s.name for s in specs]
        for name in requested:
            if name not in ALL_BACKENDS:
                raise ValueError(f"backend {name!r} is unknown; allowed {', '.join(ALL_BACKENDS)}")
            if name not in known:
                raise ValueError(
                    f"backend {name!r} is not available here; available {', '.join(known)}"
                )
        specs = [s for s in specs if s.name in requested]
    return specs


ALL_BACKENDS = ("numpy", "torch", "torch-masked", "numba", "torch-cuda")


@dataclass
class Workload:
    """A batch and its prepared inputs: the initial numpy state, driver rows and noise."""

    params: EngineParams
    num_envs: int
    num_positions: int
    drivers: Drivers
    state0: State  # numpy
    seed: int

    def rows(self, convert: Callable[[np.ndarray], Any], count: int) -> list[DriverRow]:
        return [self.drivers.row(t, convert) for t in range(count)]

    def noise(self, t: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, t])
        return rng.random((self.num_envs, self.num_positions))


def make_workload(num_envs: int, num_positions: int, substeps: int, seed: int = 0) -> Workload:
    """The benchmark's standard batch: default parameters, a shock that starts falling at once."""
    params = EngineParams()
    drivers = scenarios.get("shock").drivers(
        num_envs, max(substeps, 1), params, seed, dict(SHOCK_KNOBS)
    )
    state0 = init_state(
        params,
        num_envs,
        num_positions,
        np.random.default_rng([seed, 0]),
        fundamental_usd=drivers.fundamental_usd[0],
        debt_price_usd=drivers.debt_price_usd[0],
        liquidity_frac=drivers.liquidity_frac[0],
        gas_gwei=drivers.gas_gwei[0],
    )
    return Workload(params, num_envs, num_positions, drivers, state0, seed)


def convert_state(state: State, spec: BackendSpec) -> State:
    """``state`` (numpy) on ``spec``'s backend and device."""
    conv = make_converter(spec.array_backend, "float64", spec.device)
    out = {}
    for f in dataclasses.fields(state):
        v = getattr(state, f.name)
        out[f.name] = v if isinstance(v, int | float) else conv(v)
    return State(**out)


def _free_memory(spec: BackendSpec) -> int | None:
    """Free bytes where ``spec`` keeps its arrays (the GPU's memory for CUDA, else the host's)."""
    if spec.cuda:
        import torch

        return int(torch.cuda.mem_get_info()[0])
    return available_memory_bytes()


def _work(rounds: Any, num_positions: int) -> float:
    r = to_numpy(rounds).astype(np.float64)
    return float(num_positions * np.sum(1.0 + r))


def _states_agree(a: State, b: State, rtol: float = 1e-9, atol: float = 1e-6) -> bool:
    for f in dataclasses.fields(a):
        x = np.asarray(to_numpy(getattr(a, f.name)), dtype=float)
        y = np.asarray(to_numpy(getattr(b, f.name)), dtype=float)
        if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


def run_substeps(
    spec: BackendSpec, work: Workload, count: int, repeats: int = 1
) -> tuple[float, float, float, State]:
    """Run substeps ``0..count-1`` of ``work`` on ``spec`` ``repeats`` times after one untimed
    warm-up substep (compilation, caches); returns (best seconds, position-updates, total
    cascade rounds, final state of the last repeat)."""
    conv = make_converter(spec.array_backend, "float64", spec.device)
    rows = work.rows(conv, count)
    noises = [conv(work.noise(t)) for t in range(count)]
    state0 = convert_state(work.state0, spec)
    spec.substep(state0, rows[0], noises[0], work.params)  # warm-up
    spec.sync()
    best = math.inf
    updates = 0.0
    rounds_total = 0.0
    state = state0
    for _ in range(max(repeats, 1)):
        state = state0
        rounds_list = []
        spec.sync()
        t0 = time.perf_counter()
        for t in range(count):
            state, rounds = spec.substep(state, rows[t], noises[t], work.params)
            rounds_list.append(rounds)
        spec.sync()
        best = min(best, time.perf_counter() - t0)
        updates = sum(_work(r, work.num_positions) for r in rounds_list)
        rounds_total = float(sum(float(np.sum(to_numpy(r))) for r in rounds_list))
    return best, updates, rounds_total, state


def reference_speedup(
    specs: list[BackendSpec],
    num_envs: int,
    num_positions: int,
    substeps: int,
    repeats: int,
    progress: Any = None,
) -> dict[str, Any]:
    """The batched backends against :func:`levgym.engine.reference.reference_substep` on the
    same work (same book, same shock, same noise): seconds, speed-up and whether the final
    states agree (rtol 1e-9)."""
    from ..engine.reference import reference_substep

    work = make_workload(num_envs, num_positions, substeps, seed=1)
    conv = make_converter("numpy")
    rows = work.rows(conv, substeps)
    state = work.state0
    ref_rounds = 0.0
    t0 = time.perf_counter()
    for t in range(substeps):
        state, rounds = reference_substep(state, rows[t], work.noise(t), work.params)
        ref_rounds += float(np.sum(rounds))
    ref_s = time.perf_counter() - t0
    ref_state = state
    if progress is not None:
        progress.update(1)
    out: dict[str, Any] = {
        "case": {
            "num_envs": num_envs,
            "positions": num_positions,
            "substeps": substeps,
            "scenario": "shock " + " ".join(f"{k}={v}" for k, v in SHOCK_KNOBS.items()),
            "cascade_rounds": ref_rounds,
            "liquidations": float(np.sum(ref_state.liquidations)),
        },
        "reference_s": ref_s,
        "backends": {},
    }
    for spec in specs:
        if progress is not None:
            progress.set_postfix_str(f"reference vs {spec.name}")
        seconds, _, rounds, final = run_substeps(spec, work, substeps, repeats)
        out["backends"][spec.name] = {
            "seconds": seconds,
            "speedup": ref_s / seconds if seconds > 0 else math.inf,
            "agrees_with_reference": bool(_states_agree(ref_state, final) and rounds == ref_rounds),
        }
        if progress is not None:
            progress.update(1)
    return out


def default_grid(quick: bool) -> list[tuple[int, int]]:
    """Batch sizes (envs, positions) from 1 x 256 up to 4096 x 4096 (quick: small ones only)."""
    if quick:
        return [(1, 256), (16, 256), (64, 256)]
    return [(1, 256), (16, 256), (256, 256), (256, 1024), (1024, 1024), (4096, 1024), (4096, 4096)]


def throughput_grid(
    specs: list[BackendSpec],
    grid: list[tuple[int, int]],
    budget_s: float,
    substeps: int,
    min_time_s: float,
    progress: Any = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Position-updates per second per backend and batch size. Each backend gets
    ``budget_s / len(specs)`` seconds; a size is skipped when its predicted time (from the cost
    per position of the size before) exceeds what is left, or its memory half of what is free.
    Returns (rows, skipped)."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    per_backend = budget_s / max(len(specs), 1)
    for spec in specs:
        spent = 0.0
        cost_per_position = None  # seconds per position-substep at the size before
        for e, n in grid:
            if progress is not None:
                progress.set_postfix_str(f"{spec.name} {e}x{n}")
            positions = e * n
            free = _free_memory(spec)
            need = positions * PEAK_BYTES_PER_POSITION.get(spec.name, 1000)
            if free is not None and need > 0.5 * free:
                skipped.append({"backend": spec.name, "size": f"{e}x{n}", "reason": "memory"})
                if progress is not None:
                    progress.update(1)
                continue
            if cost_per_position is not None:
                # warm-up + timed substeps + drawing the book (~0.2 us per position)
                # (doubled: costs per position grow once the state leaves the caches)
                predicted = 2.0 * cost_per_position * positions * (substeps + 1) + 2e-7 * positions
                if spent + predicted > per_backend:
                    skipped.append(
                        {"backend": spec.name, "size": f"{e}x{n}", "reason": "time budget"}
                    )
                    if progress is not None:
                        progress.update(1)
                    continue
            t0 = time.perf_counter()
            work = make_workload(e, n, substeps, seed=0)
            count = substeps
            seconds, updates, rounds, _ = run_substeps(spec, work, count, repeats=1)
            if seconds < min_time_s and count > 0:
                # small and fast: repeat for a steadier figure (best of several)
                repeats = int(min(20, max(2, math.ceil(min_time_s / max(seconds, 1e-6)))))
                seconds, updates, rounds, _ = run_substeps(spec, work, count, repeats=repeats)
            spent += time.perf_counter() - t0
            cost_per_position = seconds / (positions * count)
            rows.append(
                {
                    "backend": spec.name,
                    "envs": e,
                    "positions": n,
                    "substeps": count,
                    "seconds": seconds,
                    "ms_per_substep": 1e3 * seconds / count,
                    "position_updates": updates,
                    "position_updates_per_s": updates / seconds,
                    "cascade_rounds_per_env_substep": rounds / (e * count),
                }
            )
            if progress is not None:
                progress.update(1)
    return rows, skipped


def profile_array_engine(
    num_envs: int, num_positions: int, substeps: int, top: int = 8
) -> dict[str, Any]:
    """Where the numpy array engine spends its time (cProfile, own time per function), on the
    benchmark's shock workload: the profile that motivates the fused kernel."""
    import cProfile
    import pstats

    from ..engine.step import substep

    work = make_workload(num_envs, num_positions, substeps, seed=3)
    conv = make_converter("numpy")
    rows = work.rows(conv, substeps)
    noises = [work.noise(t) for t in range(substeps)]
    prof = cProfile.Profile()
    state = work.state0
    prof.enable()
    for t in range(substeps):
        state, _ = substep(state, rows[t], noises[t], work.params)
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # own time
    items = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    out = []
    for (file, line, name), (_, ncalls, tottime, _, _) in items:
        where = file.split("levgym/", 1)[-1] if "levgym/" in file else file.rsplit("/", 1)[-1]
        out.append(
            {"function": f"{where}:{line}({name})", "calls": ncalls, "own_share": tottime / total}
        )
    return {
        "case": f"numpy {num_envs}x{num_positions}, {substeps} substeps",
        "seconds": total,
        "top": out,
    }


def copy_bandwidth_bytes_per_s(size_bytes: int = 256 * 2**20, repeats: int = 5) -> dict[str, Any]:
    """Measured copy bandwidth (bytes read + written per second) with a large numpy copy, and
    with a parallel numba copy where numba is present (the better of the two is the bound)."""
    n = size_bytes // 8
    src = np.ones(n)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    out: dict[str, Any] = {
        "array_mib": size_bytes / 2**20,
        "numpy_copy_gb_per_s": 2 * size_bytes / best / 1e9,
    }
    try:
        from .kernels import parallel_copy

        parallel_copy(dst[:1024], src[:1024])
        best_p = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            parallel_copy(dst, src)
            best_p = min(best_p, time.perf_counter() - t0)
        out["numba_parallel_copy_gb_per_s"] = 2 * size_bytes / best_p / 1e9
    except ImportError:
        pass
    out["bandwidth_gb_per_s"] = max(v for k, v in out.items() if k.endswith("gb_per_s"))
    return out


def cuda_copy_bandwidth_bytes_per_s(
    size_bytes: int = 1024 * 2**20, repeats: int = 5
) -> float | None:
    """Device copy bandwidth (bytes read + written per second) on the first GPU, if any."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    src = torch.ones(size_bytes // 8, dtype=torch.float64, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * size_bytes / best


def bandwidth_bound(
    rows: list[dict[str, Any]], bandwidth: dict[str, Any], gpu_bw: float | None
) -> dict[str, Any]:
    """For each backend's largest measured case: the position-updates per second that moving
    ``BYTES_PER_POSITION_PASS`` per position-substep and ``BYTES_PER_POSITION_ROUND`` per
    further cascade round at the measured copy bandwidth would allow, and how far the measured
    rate is from it."""
    out: dict[str, Any] = {
        "model": {
            "bytes_per_position_pass": BYTES_PER_POSITION_PASS,
            "bytes_per_position_round": BYTES_PER_POSITION_ROUND,
            "note": "one pass over the position row per substep (round 1 fused in), one scan of "
            "collateral, debt and active per further round with a liquidation",
        },
        "copy_bandwidth": bandwidth,
        "gpu_copy_gb_per_s": None if gpu_bw is None else gpu_bw / 1e9,
        "largest_case": {},
    }
    best_by_backend: dict[str, dict[str, Any]] = {}
    for row in rows:
        cur = best_by_backend.get(row["backend"])
        if cur is None or row["envs"] * row["positions"] > cur["envs"] * cur["positions"]:
            best_by_backend[row["backend"]] = row
    for name, row in best_by_backend.items():
        bw = gpu_bw if name == "torch-cuda" and gpu_bw else bandwidth["bandwidth_gb_per_s"] * 1e9
        e, n, s = row["envs"], row["positions"], row["substeps"]
        extra_rounds = row["cascade_rounds_per_env_substep"] * e * s  # rounds with a liquidation
        bytes_total = (
            e * n * s * BYTES_PER_POSITION_PASS + n * extra_rounds * BYTES_PER_POSITION_ROUND
        )
        bound_s = bytes_total / bw
        bound_rate = row["position_updates"] / bound_s
        out["largest_case"][name] = {
            "size": f"{e}x{n}",
            "bytes_moved_at_least": bytes_total,
            "bound_position_updates_per_s": bound_rate,
            "measured_position_updates_per_s": row["position_updates_per_s"],
            "measured_over_bound": row["position_updates_per_s"] / bound_rate,
            "times_slower_than_bound": bound_rate / row["position_updates_per_s"],
        }
    return out


__all__ = [
    "ALL_BACKENDS",
    "BYTES_PER_POSITION_PASS",
    "BYTES_PER_POSITION_ROUND",
    "BackendSpec",
    "Workload",
    "available_backends",
    "bandwidth_bound",
    "copy_bandwidth_bytes_per_s",
    "cuda_copy_bandwidth_bytes_per_s",
    "default_grid",
    "make_workload",
    "profile_array_engine",
    "reference_speedup",
    "run_substeps",
    "throughput_grid",
]
