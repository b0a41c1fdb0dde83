"""`levgym bench`: how fast the engine and the environments are, measured side by side in one
run on this machine (ratios, not absolute claims), with the machine described."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .engine import (
    ALL_BACKENDS,
    available_backends,
    bandwidth_bound,
    copy_bandwidth_bytes_per_s,
    cuda_copy_bandwidth_bytes_per_s,
    default_grid,
    make_workload,
    profile_array_engine,
    reference_speedup,
    run_substeps,
    throughput_grid,
)
from .envs import (
    ACTION_KINDS,
    ENV_IDS,
    WORKLOAD_ENV_IDS,
    env_dispatches_numba,
    envs_available,
    episode_start_cost,
    episode_start_floor,
    multiagent_rate,
    ppo_env_share,
    projected_rate,
    sb3_env_rate,
    vector_env_rate,
    workload_rate,
)
from .machine import load_average, machine_info
from .multiprotocol import multiprotocol_rows
from .report import render_markdown, render_table

TARGET_SPEEDUP = 300.0
TARGET_GOVERNANCE_STEPS_PER_S = 28_000.0
TARGET_ENV_SHARE = 0.15
TARGET_MULTIAGENT_RATIO = 0.5
"""The multi-agent market's env-steps / s over Governance-v0's, same size, same run."""
# the per-step overhead targets (env-steps per second of workload rows with random actions,
# keyed by env and env count; 1 is the single env of gym.make), and the episode start
TARGET_WORKLOADS = {
    ("Governance-v0", 1): 15_000.0,
    ("Governance-v0", 16): 40_000.0,
    ("Governance-v0", 256): 69_000.0,
    ("Liquidator-v0", 1): 20_000.0,
    ("Liquidator-v0", 16): 120_000.0,
}
TARGET_OUTSIDE_KERNEL = {("Governance-v0", 16): 0.25}
"""The most of a step spent outside the step kernel (workload rows with random actions, keyed as
``TARGET_WORKLOADS``): the Python around the kernel, episode starts included."""
TARGET_EPISODE_START_US = 50.0
TARGET_NOTES = {
    ("Governance-v0", 256): "the issue's no-loss figure, measured on its host over a longer run; "
    "the A/B against that revision is on docs/performance.md (round six)",
}
"""What a workload target's figure is, where it is not a goal of its own."""
START_POOLS = {"path_pool": 64, "book_pool": 1024}
"""The pools of the episode-start rows that start from pools (not the target's row)."""
START_POOL_ROWS: tuple[tuple[str, dict[str, int]], ...] = (
    ("levgym/Governance-v0", START_POOLS),
    ("levgym/Liquidator-v0", {}),
    ("levgym/Liquidator-v0", START_POOLS),
)
"""The episode-start rows after the default Governance-v0 ones: (env id, pools)."""


def _pool_label(pools: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pools.items()) + ", pools filled"


@dataclass(frozen=True)
class BenchConfig:
    """What one `levgym bench` run measures; :meth:`for_mode` gives the default and quick sets."""

    quick: bool = False
    """Small sizes only (seconds, for tests and smoke checks); targets are not judged."""
    grid_budget_s: float = 120.0
    """Seconds the position-update grid may take, shared equally by the backends."""
    backends: tuple[str, ...] = ()
    """Engine backends to measure (empty: every one available here)."""
    reference_case: tuple[int, int, int] = (64, 256, 12)
    """(envs, positions, substeps) of the comparison with the reference loop."""
    reference_repeats: int = 3
    """Best of this many runs for each batched backend in the reference comparison."""
    grid: tuple[tuple[int, int], ...] = field(default_factory=lambda: tuple(default_grid(False)))
    """(envs, positions) sizes of the position-update grid."""
    grid_substeps: int = 6
    """Timed substeps per grid size (after one warm-up substep)."""
    grid_min_time_s: float = 0.3
    """A size timed faster than this is rerun (best of several)."""
    env_num_envs: int = 256
    """Envs per vector env in the env-step measurements."""
    env_positions: int = 256
    """Positions per env in the env-step and training measurements."""
    env_steps: dict[str, int] = field(
        default_factory=lambda: {
            "levgym/Governance-v0/numpy": 5,
            "levgym/Governance-v0/numba": 40,
            "levgym/Liquidator-v1/numpy": 20,
            "levgym/Liquidator-v1/numba": 150,
        }
    )
    """Timed steps per env id and backend."""
    multiagent_liquidators: int = 3
    """Agent liquidators per market in the multi-agent row (at ``env_num_envs`` x ``env_positions``)."""
    multiagent_steps: int = 40
    """Timed steps of the multi-agent row."""
    workload_sizes: tuple[int | None, ...] = (None, 16, 256)
    """Env counts of the workload rows (``None``: the single env of ``gym.make``)."""
    workload_positions: int = 256
    """Positions per env in the workload rows."""
    workload_steps: dict[str, int] = field(
        default_factory=lambda: {
            "levgym/Governance-v0/1": 2000,
            "levgym/Governance-v0/16": 300,
            "levgym/Governance-v0/256": 100,
            "levgym/Liquidator-v1/1": 4000,
            "levgym/Liquidator-v1/16": 800,
            "levgym/Liquidator-v1/256": 100,
            "levgym/Governance-v1/1": 2000,
            "levgym/Governance-v1/16": 300,
            "levgym/Governance-v1/256": 100,
            "levgym/Liquidator-v0/1": 4000,
            "levgym/Liquidator-v0/16": 800,
            "levgym/Liquidator-v0/256": 100,
        }
    )
    """Timed steps per env id and env count of the workload rows (default 3), after 2 untimed
    steps from a fresh reset. The 256-env rows run 100 steps: in a shorter window the first
    steps after the reset dominate (fresh books' cascades, and envs whose episodes end and
    restart; about 100 of 256 Governance-v0 envs in the first 30 steps under random actions)."""
    workload_repeats: int = 3
    """Each workload row is the median of this many timed runs."""
    episode_start_sizes: tuple[int, ...] = (1, 256)
    """Env counts of the episode-start measurement (Governance-v0)."""
    start_floor_seeds: int = 30
    start_floor_repeats: int = 7
    """Seeds and repeats (best of) of the start's floor (:func:`~levgym.bench.envs.episode_start_floor`)."""
    peer_source: str | None = None
    """A checkout of the peer env (``levgym bench --peer DIR``, :mod:`levgym.bench.peer`)."""
    peer_steps: int = 5000
    """Timed steps of the peer's single env (and of levgym's beside it) per round."""
    peer_rounds: int = 3
    """Alternating rounds of the peer and levgym's single env; medians are reported."""
    ppo: dict[str, int] = field(
        default_factory=lambda: {
            "num_envs": 256,
            "n_steps": 16,
            "rollouts": 2,
            "n_epochs": 10,
            "batch_size": 64,
        }
    )
    """The short PPO run of the env-share measurement (SB3 defaults otherwise)."""
    ppo_all_backends: bool = True
    """Measure the training share on every env backend (else only the fastest)."""
    multiprotocol_case: tuple[int, int, int] = (64, 768, 6)
    """(envs, total positions per env, substeps) of the P = 3 vs P = 1 rows
    (:mod:`levgym.bench.multiprotocol`)."""
    multiprotocol_repeats: int = 3
    cross_margin_size: tuple[int, int] = (256, 256)
    """(envs, positions) of the cross-margin row (:mod:`levgym.bench.portfolio`)."""
    cross_margin_substeps: int = 6
    """Timed substeps of the cross-margin row (after one warm-up substep)."""
    cross_margin_repeats: int = 3
    """The cross-margin row and the single-asset row measured beside it are each the best of this
    many timed runs."""
    cross_margin_only: bool = False
    """Measure only the cross-margin section: the single-asset row and the cross-margin row in
    ``cross_margin_rounds`` alternating rounds (``levgym bench --cross-margin-only``)."""
    cross_margin_rounds: int = 3
    """Alternating rounds of ``cross_margin_only`` (medians and the median round's ratio)."""

    @classmethod
    def for_mode(
        cls,
        quick: bool,
        budget_s: float | None = None,
        backends: tuple[str, ...] = (),
        peer_source: str | None = None,
        cross_margin_only: bool = False,
    ) -> BenchConfig:
        if budget_s is not None and (not math.isfinite(budget_s) or budget_s <= 0):
            raise ValueError(f"--budget-s={budget_s:g} is out of range; allowed a number > 0")
        for name in backends:
            if name not in ALL_BACKENDS:
                raise ValueError(f"backend {name!r} is unknown; allowed {', '.join(ALL_BACKENDS)}")
        if not quick:
            return cls(
                grid_budget_s=budget_s or 120.0,
                backends=backends,
                peer_source=peer_source,
                cross_margin_only=cross_margin_only,
            )
        return cls(
            quick=True,
            cross_margin_only=cross_margin_only,
            cross_margin_size=(64, 256),
            cross_margin_substeps=3,
            cross_margin_repeats=1,
            cross_margin_rounds=1,
            peer_source=peer_source,
            grid_budget_s=budget_s or 6.0,
            backends=backends,
            reference_case=(4, 48, 6),
            reference_repeats=1,
            grid=tuple(default_grid(True)),
            grid_substeps=3,
            grid_min_time_s=0.02,
            env_num_envs=8,
            env_positions=32,
            env_steps={},  # 3 steps each
            multiagent_steps=3,
            workload_sizes=(None, 4),
            workload_positions=32,
            workload_steps={},  # 3 steps each
            workload_repeats=1,
            episode_start_sizes=(1, 4),
            start_floor_seeds=2,
            start_floor_repeats=1,
            peer_steps=200,
            peer_rounds=1,
            ppo={"num_envs": 8, "n_steps": 16, "rollouts": 1, "n_epochs": 1, "batch_size": 64},
            ppo_all_backends=False,
            multiprotocol_case=(4, 48, 3),
            multiprotocol_repeats=1,
        )


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="levgym bench", file=sys.stderr, disable=not enabled, leave=False)


def run_bench(config: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Run every measurement of ``config`` and return the JSON-able result (see BENCHMARK.md for
    what each key means)."""
    t_start = time.perf_counter()
    specs = available_backends(list(config.backends) or None)
    numba_spec = next((sp for sp in specs if sp.name == "numba"), None)
    cm_backend = "numba" if numba_spec is not None else "numpy"
    if config.cross_margin_only:
        result: dict[str, Any] = {"machine": machine_info(), "quick": config.quick}
        result["cross_margin"] = _cross_margin(config, cm_backend, None)
        result["targets"] = judge_targets(result, config)
        result["machine"]["load_average_at_end"] = load_average()
        result["seconds"] = time.perf_counter() - t_start
        return result
    have_envs = envs_available()
    # the envs run the fused kernel only if they dispatch on their backend; otherwise a "numba"
    # env is the array engine again, so it is not measured twice (a projection is shown instead)
    env_backends = ["numpy"]
    env_numba: dict[str, bool] = {}
    if have_envs and numba_spec is not None:
        env_numba = {env_id: env_dispatches_numba(env_id) for env_id in ENV_IDS}
        if all(env_numba.values()):
            env_backends.append("numba")
    ppo_backends = env_backends if config.ppo_all_backends else env_backends[-1:]
    tasks = (1 + len(specs)) + len(specs) * len(config.grid) + 1 + 1
    if have_envs:
        tasks += len(ENV_IDS) * len(env_backends) * 2 + len(ppo_backends)
        tasks += len(WORKLOAD_ENV_IDS) * len(config.workload_sizes) * len(ACTION_KINDS)
        tasks += len(config.episode_start_sizes) + 2 + (config.peer_source is not None) + 1
    tasks += 1  # the cross-margin row
    result = {"machine": machine_info(), "quick": config.quick}
    bar = _progress(tasks, progress)
    try:
        # 1. the batched engine against the reference loop, same work
        bar.set_description("reference loop")
        e, n, s = config.reference_case
        ref = reference_speedup(specs, e, n, s, config.reference_repeats, progress=bar)
        result["reference_case"] = ref
        result["speedup_vs_reference"] = {k: v["speedup"] for k, v in ref["backends"].items()}

        # 2. position-updates per second by backend and size
        bar.set_description("engine grid")
        rows, skipped = throughput_grid(
            specs,
            list(config.grid),
            config.grid_budget_s,
            config.grid_substeps,
            config.grid_min_time_s,
            progress=bar,
        )
        result["throughput"] = rows
        result["throughput_skipped"] = skipped
        per: dict[str, dict[str, float]] = {}
        for row in rows:
            per.setdefault(row["backend"], {})[f"{row['envs']}x{row['positions']}"] = row[
                "position_updates_per_s"
            ]
        result["position_updates_per_s"] = per

        bar.set_description("cross-margin")
        result["cross_margin"] = _cross_margin(config, cm_backend, rows)
        bar.update(1)

        bar.set_description("profile")
        result["profile"] = profile_array_engine(*((16, 64, 3) if config.quick else (256, 256, 6)))

        # 3. the memory-bandwidth bound of each backend's largest case
        bar.set_description("copy bandwidth")
        bw = copy_bandwidth_bytes_per_s(64 * 2**20 if config.quick else 256 * 2**20)
        result["bandwidth_bound"] = bandwidth_bound(rows, bw, cuda_copy_bandwidth_bytes_per_s())
        bar.update(1)

        # 3b. several protocols: P = 3 next to P = 1 at the same total positions
        bar.set_description("multi-protocol")
        result["multiprotocol"] = multiprotocol_rows(
            *config.multiprotocol_case, repeats=config.multiprotocol_repeats
        )
        bar.update(1)

        # 4. the environments
        env_rates: dict[str, Any] = {}
        env_details: list[dict[str, Any]] = []
        share: dict[str, float] = {}
        training: dict[str, Any] = {}
        if have_envs:
            ne, npos = config.env_num_envs, config.env_positions
            for env_id in ENV_IDS:
                short = env_id.split("/", 1)[1]
                env_rates[short] = {"vector": {}, "sb3": {}}
                for backend in env_backends:
                    steps = config.env_steps.get(f"{env_id}/{backend}", 3)
                    bar.set_description(f"{short} vector {backend}")
                    vec = vector_env_rate(env_id, ne, npos, steps, backend)
                    env_rates[short]["vector"][backend] = vec["env_steps_per_s"]
                    env_details.append({"env": short, "via": "vector", "backend": backend, **vec})
                    bar.update(1)
                    bar.set_description(f"{short} sb3 {backend}")
                    sb3 = sb3_env_rate(env_id, ne, npos, steps, backend)
                    env_rates[short]["sb3"][backend] = sb3["env_steps_per_s"]
                    env_details.append({"env": short, "via": "sb3", "backend": backend, **sb3})
                    bar.update(1)
            # the named workloads, on the fastest env backend measured here
            wl_backend = env_backends[-1]
            bar.set_description(f"multi-agent {wl_backend}")
            ma_row = multiagent_rate(
                ne, npos, config.multiagent_liquidators, config.multiagent_steps, wl_backend
            )
            gov_same = env_rates.get("Governance-v0", {}).get("vector", {}).get(wl_backend)
            if gov_same:
                ma_row["governance_env_steps_per_s"] = gov_same
                ma_row["ratio_to_governance"] = ma_row["env_steps_per_s"] / gov_same
            result["multiagent"] = ma_row
            bar.update(1)
            workloads: list[dict[str, Any]] = []
            for env_id in WORKLOAD_ENV_IDS:
                short = env_id.split("/", 1)[1]
                for ne in config.workload_sizes:
                    count = 1 if ne is None else ne
                    steps = config.workload_steps.get(f"{env_id}/{count}", 3)
                    for kind in ACTION_KINDS:
                        bar.set_description(f"{short} x{count} {kind}")
                        runs = [
                            workload_rate(
                                env_id, ne, config.workload_positions, kind, steps, wl_backend
                            )
                            for _ in range(config.workload_repeats)
                        ]
                        runs.sort(key=lambda r: r["env_steps_per_s"])
                        row = runs[len(runs) // 2]  # the median run
                        row["runs_env_steps_per_s"] = [r["env_steps_per_s"] for r in runs]
                        workloads.append({"env": short, **row})
                        bar.update(1)
            result["env_workloads"] = workloads
            starts = []
            for ne in config.episode_start_sizes:
                bar.set_description(f"episode start x{ne}")
                starts.append(
                    episode_start_cost(
                        "levgym/Governance-v0", ne, config.workload_positions, wl_backend
                    )
                )
                bar.update(1)
            # starts from pools (opt-in, docs/performance.md), timed once they are filled, and
            # Liquidator-v0's start beside its pooled one
            bar.set_description("episode starts from pools")
            big = max(config.episode_start_sizes)
            for env_id, pools in START_POOL_ROWS:
                row = episode_start_cost(
                    env_id, big, config.workload_positions, wl_backend, cached=True, **pools
                )
                starts.append({**row, "pools": _pool_label(pools)} if pools else row)
            bar.update(1)
            result["episode_starts"] = starts
            # the draws alone of the default start: what it cannot cost less than
            bar.set_description("episode start floor")
            result["episode_start_floor"] = episode_start_floor(
                "levgym/Governance-v0",
                big,
                config.workload_positions,
                seeds=config.start_floor_seeds,
                repeats=config.start_floor_repeats,
            )
            bar.update(1)
            if config.peer_source is not None:
                bar.set_description("peer")
                result["peer"] = peer_comparison(config, wl_backend)
                bar.update(1)
            if numba_spec is not None and "numba" not in env_backends:
                result["env_fused_kernel"] = {
                    "used_by_envs": env_numba,
                    "note": "the vector envs step levgym.engine.step.substep whatever their backend "
                    "(levgym.envs.core.BatchedMarket does not dispatch with "
                    "levgym.engine.dispatch.substep_function), so backend='numba' envs were not "
                    "measured; the projection replaces their engine time by the fused kernel's",
                    "projected_env_steps_per_s": projections(
                        numba_spec, env_details, config.env_num_envs, npos
                    ),
                }
            p = config.ppo
            for backend in ppo_backends:
                bar.set_description(f"PPO share {backend}")
                out = ppo_env_share(
                    "levgym/Governance-v0",
                    p["num_envs"],
                    npos,
                    p["n_steps"],
                    p["rollouts"],
                    p["n_epochs"],
                    p["batch_size"],
                    backend,
                )
                share[backend] = out["share"]
                training[backend] = out
                bar.update(1)
        result["env_steps_per_s"] = env_rates
        result["env_details"] = env_details
        result["env_config"] = {"num_envs": config.env_num_envs, "positions": config.env_positions}
        proj = result.get("env_fused_kernel", {}).get("projected_env_steps_per_s", {})
        gov_rate = env_rates.get("Governance-v0", {}).get("vector", {}).get("numpy")
        if "numpy" in training and "Governance-v0" in proj and gov_rate:
            t = training["numpy"]
            env_s = t["env_seconds"] * gov_rate / proj["Governance-v0"]
            t["projected_share_with_fused_kernel"] = env_s / (
                t["learn_seconds"] - t["env_seconds"] + env_s
            )
        result["env_share_of_training"] = share
        result["training_case"] = training
        if not have_envs:
            result["envs_missing"] = "levgym.envs could not be imported; env measurements skipped"
    finally:
        bar.close()
    result["targets"] = judge_targets(result, config)
    result["machine"]["load_average_at_end"] = load_average()
    result["seconds"] = time.perf_counter() - t_start
    return result


def _cross_margin(config: BenchConfig, backend: str, grid_rows: Any) -> dict[str, Any]:
    """The cross-margin section (:func:`levgym.bench.portfolio.cross_margin_section`)."""
    from .portfolio import cross_margin_section

    e, n = config.cross_margin_size
    return cross_margin_section(
        backend,
        e,
        n,
        config.cross_margin_substeps,
        config.cross_margin_repeats,
        config.cross_margin_rounds if config.cross_margin_only else 1,
        grid_rows,
    )


def peer_comparison(config: BenchConfig, backend: str) -> dict[str, Any]:
    """The peer's single env (:mod:`levgym.bench.peer`) and levgym's Governance-v0 single env
    with random actions, in alternating rounds of this run; medians of the rounds."""
    from .peer import PEER_NAME, peer_rate

    peer, ours = [], []
    for k in range(config.peer_rounds):
        peer.append(peer_rate(config.peer_source, config.peer_steps, seed=k)["env_steps_per_s"])
        row = workload_rate(
            "levgym/Governance-v0", None, config.workload_positions, "random",
            config.peer_steps, backend, seed=k,
        )  # fmt: skip
        ours.append(row["env_steps_per_s"])
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {
        "peer": PEER_NAME,
        "peer_env_steps_per_s": med(peer),
        "levgym_env_steps_per_s": med(ours),
        "ratio": med(ours) / med(peer),
        "rounds": config.peer_rounds,
        "steps": config.peer_steps,
        "peer_runs": peer,
        "levgym_runs": ours,
        "levgym_workload": f"Governance-v0 via gym.make, {config.workload_positions} positions, "
        f"random actions, backend {backend}",
    }


def projections(
    numba_spec: Any, env_details: list[dict[str, Any]], num_envs: int, num_positions: int
) -> dict[str, float]:
    """Per env, the env-steps per second its vector env would reach with the fused kernel as
    its engine (see :func:`levgym.bench.envs.projected_rate`), the kernel timed on the bench's
    shock workload at the env's batch size."""
    work = make_workload(num_envs, num_positions, 6, seed=2)
    seconds, _, _, _ = run_substeps(numba_spec, work, 6, repeats=3)
    kernel_ms = 1e3 * seconds / 6
    out: dict[str, float] = {"kernel_ms_per_substep": kernel_ms}
    for d in env_details:
        if d["via"] == "vector" and d["backend"] == "numpy":
            out[d["env"]] = projected_rate(d, num_envs, d["substeps_per_step"], kernel_ms)
    return out


def judge_targets(result: dict[str, Any], config: BenchConfig) -> dict[str, Any]:
    """The issue's targets against the measured values (not judged on ``--quick`` sizes)."""
    out: dict[str, Any] = {}
    speed = result.get("speedup_vs_reference", {})
    if speed:
        best = max(speed, key=lambda k: speed[k])
        out["speedup_vs_reference"] = {
            "target": f">= {TARGET_SPEEDUP:g}x",
            "best_backend": best,
            "value": speed[best],
            "met": None if config.quick else bool(speed[best] >= TARGET_SPEEDUP),
        }
    cm = result.get("cross_margin")
    if cm:
        c, one = cm["cross_margin"], cm["single_asset"]
        out["cross_margin_position_updates_per_s"] = {
            "target": f">= {cm['target_ratio']:.3g} x the single-asset engine's position-updates "
            f"/ s in the same run ({one['backend']}, {c['envs']} envs x {c['positions']} "
            "positions, K = 4 collateral, J = 2 debt)",
            "best_backend": c["backend"],
            "value": c["position_updates_per_s"],
            "ratio": cm["ratio_to_single_asset"],
            "met": None
            if config.quick
            else bool(cm["ratio_to_single_asset"] >= cm["target_ratio"]),
        }
    gov = result.get("env_steps_per_s", {}).get("Governance-v0", {}).get("vector", {})
    if gov:
        best = max(gov, key=lambda k: gov[k])
        out["governance_env_steps_per_s"] = {
            "target": f">= {TARGET_GOVERNANCE_STEPS_PER_S:,.0f} at 256 envs x 256 positions",
            "best_backend": best,
            "value": gov[best],
            "met": None if config.quick else bool(gov[best] >= TARGET_GOVERNANCE_STEPS_PER_S),
        }
    ma = result.get("multiagent", {})
    if "ratio_to_governance" in ma:
        out["multiagent_env_steps_per_s"] = {
            "target": f">= {TARGET_MULTIAGENT_RATIO:g} x Governance-v0's env-steps / s in the "
            f"same run ({ma['num_envs']} markets x {ma['positions']} positions, "
            f"{ma['liquidators']} liquidators)",
            "best_backend": ma["backend"],
            "value": ma["env_steps_per_s"],
            "ratio": ma["ratio_to_governance"],
            "met": None
            if config.quick
            else bool(ma["ratio_to_governance"] >= TARGET_MULTIAGENT_RATIO),
        }
    for w in result.get("env_workloads", []):
        want = TARGET_WORKLOADS.get((w["env"], w["num_envs"]))
        if want is None or w["actions"] != "random":
            continue
        label = "single env" if w["via"] == "gym.make" else f"{w['num_envs']} envs"
        out[f"{w['env']} {label} x {w['positions']} positions, random actions"] = {
            "target": f">= {want:,.0f} env-steps / s"
            + (f" ({note})" if (note := TARGET_NOTES.get((w["env"], w["num_envs"]))) else ""),
            "best_backend": w["backend"],
            "value": w["env_steps_per_s"],
            "met": None if config.quick else bool(w["env_steps_per_s"] >= want),
        }
        most = TARGET_OUTSIDE_KERNEL.get((w["env"], w["num_envs"]))
        if most is not None and "outside_kernel_share" in w:
            out[f"{w['env']} {label} x {w['positions']} positions, time outside the kernel"] = {
                "target": f"<= {most:.0%} of a step (the Python around the step kernel, "
                "episode starts included)",
                "best_backend": w["backend"],
                "value": w["outside_kernel_share"],
                "met": None if config.quick else bool(w["outside_kernel_share"] <= most),
            }
    all_starts = result.get("episode_starts", [])
    for label, pooled in (("", False), (" from pools (opt-in)", True)):
        # the default Governance-v0 start, and the same start from filled pools (its label
        # names them): judged apart, so the default never borrows the pools' figure
        starts = [r for r in all_starts if ("pools" in r) == pooled and r["env"] == "Governance-v0"]
        if not starts:
            continue
        big = max(starts, key=lambda r: r["num_envs"])
        floor = result.get("episode_start_floor")
        if pooled:  # the pools it starts from
            note = f" ({big['pools']})"
        elif floor:  # what the default start's own draws cost, in the same run
            note = f" (its own draws alone cost {floor['floor_us']:.1f}: Episode starts)"
        else:
            note = ""
        out[f"episode start per env (amortised){label}"] = {
            "target": f"<= {TARGET_EPISODE_START_US:g} us at {big['num_envs']} envs{note}",
            "best_backend": big["backend"],
            "value": big["us_per_env"],
            "met": None if config.quick else bool(big["us_per_env"] <= TARGET_EPISODE_START_US),
        }
    share = result.get("env_share_of_training", {})
    if share:
        best = min(share, key=lambda k: share[k])
        out["env_share_of_training"] = {
            "target": f"< {TARGET_ENV_SHARE:g}",
            "best_backend": best,
            "value": share[best],
            "met": None if config.quick else bool(share[best] < TARGET_ENV_SHARE),
        }
    return out


__all__ = [
    "BenchConfig",
    "judge_targets",
    "peer_comparison",
    "render_markdown",
    "render_table",
    "run_bench",
]
