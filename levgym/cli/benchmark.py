"""`levgym benchmark`: the main job (train, evaluate against every baseline, write a report)."""

from __future__ import annotations

import argparse

from .common import check_output_dir, count
from .raycli import add_ray_arguments, ray_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="train the RL agents, evaluate them and the baselines, write a report"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small version: 1 seed, 16,384 PPO steps on the governor and the liquidator's "
        "procedure on two runs of 8,192 steps (about 3 minutes; used by the tests)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="the longer preset: levgym train's budgets (configs/agents/ppo.yaml; the "
        "liquidator's procedure two runs of 600,000 steps per seed) and 5 seeds per env (hours "
        "on 2 cores)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="report folder (default runs/benchmark/<kind>__<time>); rerun with the same folder to resume",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="when resuming into an existing --out: "
        + "load files that need unpickling (models or statistics from older levgym versions); unpickling runs code from the file, so only for files you trust",
    )
    p.add_argument(
        "--governance-env",
        default="levgym/Governance-v1",
        metavar="ID",
        help="the governance env to train and evaluate: levgym/Governance-v1 (default: the "
        "steward's levers, market regimes, the hindsight ceiling) or levgym/Governance-v0",
    )
    p.add_argument(
        "--portfolio",
        action="store_true",
        help="also train and evaluate levgym/PortfolioGovernance-v0 (the multi-asset steward; "
        "4,096 PPO steps per seed with --quick, 32,768 by default, ppo.yaml's with --full); off by "
        "default: it adds several minutes to the default job",
    )
    p.add_argument(
        "--seeds",
        type=count,
        default=None,
        metavar="N",
        help="PPO training seeds per env (0 .. N-1; default 3, 5 with --full, 1 with --quick); "
        "the report gives the objective's mean and 95%% interval over seeds, the tables show "
        "seed 0",
    )
    p.add_argument(
        "--jobs",
        type=count,
        default=None,
        metavar="J",
        help="training runs at once (default: this machine's cores, at most the number of runs; 1 "
        "with --quick): "
        "J > 1 trains them in a process pool (spawn), or on J Ray workers with --ray; results "
        "are the same whichever runs them",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress")
    add_ray_arguments(p, "the training runs (env x seed)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os

    from agents.benchmark import GOVERNANCE_ENVS, preset_config, run_benchmark, summary

    from .common import CliError

    if args.governance_env not in GOVERNANCE_ENVS:
        raise CliError(
            f"--governance-env {args.governance_env!r} is unknown; allowed {', '.join(GOVERNANCE_ENVS)}"
        )
    if args.quick and args.full:
        raise CliError("--quick and --full exclude each other; allowed one of them")
    check_output_dir(args.out, "--out")
    for flag, value in (("--seeds", args.seeds), ("--jobs", args.jobs)):
        if value is not None and value < 1:
            raise CliError(f"{flag}={value} is out of range; allowed >= 1")
    preset = "quick" if args.quick else "full" if args.full else "default"
    cfg = preset_config(preset, args.governance_env)
    if args.portfolio:
        cfg = cfg.with_portfolio(preset)
    seeds = cfg.num_seeds if args.seeds is None else args.seeds
    if args.jobs is None:  # the cores, at most one per training run (env x seed x run)
        per_seed = len(cfg.env_ids) - 1 + len(cfg.liquidator.risk_aversions)
        runs = 1 if args.quick else seeds * per_seed
        args.jobs = max(1, min(os.cpu_count() or 1, runs))
    settings = ray_settings(args)
    executor = None
    if settings is not None:
        from ..distributed import RayExecutor

        if settings.workers is None:
            settings.workers = args.jobs
        executor = RayExecutor(settings)
    elif args.jobs > 1:
        from ..distributed import ProcessPoolRunner

        executor = ProcessPoolRunner(args.jobs, threads=1)
    try:
        out = run_benchmark(
            args.out,
            quick=args.quick,
            progress=not args.no_progress,
            command=args.command_line,
            trust_pickle=args.trust_pickle,
            governance_env=args.governance_env,
            num_seeds=args.seeds,
            executor=executor,
            full=args.full,
            portfolio=args.portfolio,
        )
    finally:
        if settings is not None and executor is not None:
            executor.close()
    # the summary table, the verdict, where the models are and what to run next
    print(summary(out), end="")
    return 0
