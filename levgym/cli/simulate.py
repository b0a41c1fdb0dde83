"""`levgym simulate`: run a scenario through the batched engine and summarize it."""

from __future__ import annotations

import argparse

from .. import scenarios
from ..io import write_json
from ..results import checked
from ..simulation import SUMMARY_KEYS, simulate
from .common import add_backend_arguments, add_set_argument, build_params, parse_sets, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run a scenario through the engine and print its summary")
    p.add_argument("--scenario", default="shock", help="scenario name (see `levgym scenarios`)")
    p.add_argument("--seed", type=int, default=0, help="random seed (book, paths, borrower noise)")
    p.add_argument("--num-envs", type=int, default=8, help="markets simulated at once")
    p.add_argument("--positions", type=int, default=256, help="position slots per market")
    p.add_argument(
        "--steps", type=int, default=24, help="governance periods (1 hour each by default)"
    )
    p.add_argument(
        "--preset",
        default="aave_v3_weth",
        help="protocol preset (aave_v3_weth, compound_v3, conservative)",
    )
    p.add_argument(
        "--price-csv", default=None, metavar="FILE", help="replay a price path from a CSV file"
    )
    p.add_argument("--time-column", default="time", help="time column of --price-csv")
    p.add_argument("--price-column", default="price", help="price column of --price-csv")
    add_set_argument(p)
    add_backend_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--plot",
        default=None,
        metavar="FILE.png",
        help="write a PNG of prices, liquidations and HF",
    )
    p.add_argument(
        "--out-json", default=None, metavar="FILE", help="also write the JSON summary to FILE"
    )
    p.set_defaults(run=run)


def make_drivers(args: argparse.Namespace, params, sets, num_substeps: int):
    """Drivers for ``--scenario`` or ``--price-csv``; returns (name, drivers)."""
    if args.price_csv:
        from ..scenarios import csv_replay

        drivers = csv_replay.drivers_from_csv(
            args.price_csv,
            num_envs=args.num_envs,
            num_substeps=num_substeps,
            params=params,
            time_column=args.time_column,
            price_column=args.price_column,
            overrides=sets["scenario"],
            seed=args.seed,
        )
        return f"csv:{args.price_csv}", drivers
    scenario = scenarios.get(args.scenario)
    scenario.resolve_knobs(dict(sets["scenario"]))  # an unknown knob fails before any work
    return scenario.name, None  # the market runner draws each env's path (levgym.market)


def run(args: argparse.Namespace) -> int:
    if args.num_envs < 1:
        raise ValueError(f"--num-envs={args.num_envs} is out of range; allowed >= 1")
    if args.positions < 1:
        raise ValueError(f"--positions={args.positions} is out of range; allowed >= 1")
    if args.steps < 1:
        raise ValueError(f"--steps={args.steps} is out of range; allowed >= 1")
    sets = parse_sets(args.sets)
    params = build_params(args.preset, sets)
    num_substeps = args.steps * params.run.substeps_per_step
    name, drivers = make_drivers(args, params, sets, num_substeps)
    result = simulate(
        drivers,
        params,
        args.positions,
        args.seed,
        args.steps,
        scenario=name,
        backend=args.backend,
        dtype=args.dtype,
        device=args.device,
        record=bool(args.plot),
        scenario_knobs=dict(sets["scenario"]),
        num_envs=args.num_envs,
    )
    summary = checked("simulate", result.summary)
    if args.plot:
        from ..plots import plot_simulation

        plot_simulation(result, args.plot, title=f"{name} (seed {args.seed})")
    if args.out_json:
        write_json(args.out_json, summary)
    if args.json:
        print_json(summary)
    else:
        width = max(len(k) for k in summary)
        for key in SUMMARY_KEYS + tuple(k for k in summary if k not in SUMMARY_KEYS):
            value = summary[key]
            text = f"{value:,.4f}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {text}")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0
