"""`levgym bench`: engine and environment speed, side by side in one run; writes BENCHMARK.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import write_json, write_text
from .common import CliError, check_output_dir, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure engine and env speed (vs the reference loop, by backend and size) and write BENCHMARK.md",
        description=(
            "Measure the batched engine against the reference loop, position-updates per second by "
            "backend and batch size, env-steps per second of the vector envs (alone and through the "
            "SB3 adapter), env-steps per second by named workload (single env, 16 and 256 envs; zero "
            "and pre-drawn random actions; the cascade rounds they ran), the share of a short PPO run spent in the env, and the memory-bandwidth "
            "bound. Writes BENCHMARK.md and bench.json into --out."
        ),
    )
    p.add_argument(
        "--json", action="store_true", help="print the result as one JSON object instead of tables"
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes only (seconds; targets are not judged)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder for BENCHMARK.md and bench.json (default: BENCHMARK.md in . and "
        "runs/bench/bench.json; with --quick: runs/bench-quick)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time budget of the position-update grid, shared by the backends (default 120; quick 6)",
    )
    p.add_argument(
        "--backends",
        default=None,
        metavar="LIST",
        help="comma-separated engine backends to measure (numpy, torch, torch-masked, numba, torch-cuda; "
        "default: all available)",
    )
    p.add_argument(
        "--peer",
        default=None,
        metavar="DIR",
        help="a checkout of the peer governance env (xujiahuayz/auto-gov): time its single env "
        "beside levgym's in this run (runs its code; see levgym.bench.peer)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="add the Ray section: stress throughput without Ray (numba, 1 and 2 threads) and on "
        "Ray with 1 and 2 workers, the empty-task round trip and each worker's kernel load time "
        "(no ADDRESS: Ray on this machine; needs pip install 'levgym[ray]')",
    )
    p.add_argument(
        "--ray-only", action="store_true", help="with --ray: measure the Ray section only"
    )
    p.add_argument(
        "--cross-margin-only",
        action="store_true",
        help="measure only the cross-margin section: the multi-asset market step (K = 4 "
        "collateral, J = 2 debt) and the single-asset engine at the same size, in 3 alternating "
        "rounds (medians); see levgym.bench.portfolio",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import BenchConfig, render_markdown, render_table, run_bench

    backends = (
        tuple(b.strip() for b in args.backends.split(",") if b.strip()) if args.backends else ()
    )
    if args.peer is not None:
        from ..bench.peer import check_source

        try:
            check_source(args.peer)
        except ValueError as err:
            raise CliError(str(err)) from None
    if args.cross_margin_only and args.ray is not None:
        raise CliError("--cross-margin-only cannot be combined with --ray; allowed one of them")
    config = BenchConfig.for_mode(
        args.quick, args.budget_s, backends, args.peer, args.cross_margin_only
    )
    out_dir = Path(args.out) if args.out else Path("runs/bench-quick" if args.quick else ".")
    # the full default run puts BENCHMARK.md in the working folder and its JSON under runs/
    json_dir = out_dir if args.out or args.quick else Path("runs/bench")
    # checked before measuring: a bad folder must not cost the whole run
    check_output_dir(out_dir, "--out")
    check_output_dir(json_dir, "--out")
    if args.budget_s is not None and not (0 < args.budget_s < 1e6):
        raise CliError(f"--budget-s={args.budget_s:g} is out of range; allowed (0, 1e6) seconds")
    if args.ray_only and args.ray is None:
        raise CliError("--ray-only has no effect without --ray; allowed with --ray")
    ray_config = None
    if args.ray is not None:
        from ..bench.ray import RayBenchConfig
        from ..distributed import check_address, import_ray

        address = None if args.ray == "local" else check_address(args.ray)
        import_ray()
        ray_config = (
            RayBenchConfig.quick(address) if args.quick else RayBenchConfig(address=address)
        )
    if args.ray_only:
        import time

        from ..bench.machine import load_average, machine_info

        t0 = time.perf_counter()
        result = {"machine": machine_info(), "quick": config.quick}
    else:
        result = run_bench(config, progress=not args.no_progress)
    if ray_config is not None:
        from ..bench.ray import ray_section

        result["ray"] = ray_section(ray_config)
    if args.ray_only:
        result["machine"]["load_average_at_end"] = load_average()
        result["seconds"] = time.perf_counter() - t0
    command = (
        "levgym bench"
        + (" --quick" if args.quick else "")
        + ("" if args.ray is None else " --ray" + ("" if args.ray == "local" else f" {args.ray}"))
        + (" --ray-only" if args.ray_only else "")
        + (" --cross-margin-only" if args.cross_margin_only else "")
    )
    result["files"] = {
        "markdown": str(out_dir / "BENCHMARK.md"),
        "json": str(json_dir / "bench.json"),
    }
    write_json(json_dir / "bench.json", result)
    write_text(out_dir / "BENCHMARK.md", render_markdown(result, command))
    if args.json:
        print_json(result)
    else:
        print(render_table(result))
        print(f"\nwritten: {result['files']['markdown']}, {result['files']['json']}")
    return 0
