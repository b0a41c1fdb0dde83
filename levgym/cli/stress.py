"""`levgym stress`: Monte Carlo stress test of a parameter set: VaR / CVaR of bad debt, liquidations
at risk, liquidation heatmap, sensitivities and parameter frontiers, written as a report folder."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .. import scenarios
from ..analytics.frontier import BOOK_MODES, FRONTIER_X, checked_grid, parse_sweeps, run_sweep
from ..analytics.montecarlo import PATH_COLUMNS, DriverFactory, MonteCarloConfig, run_paths
from ..analytics.report import (
    headline_rows,
    other_rows,
    sensitivity_table,
    summary_markdown,
    sweep_table,
    write_paths_csv,
)
from ..analytics.risk import SE_METHODS, summarize_paths
from ..analytics.sensitivity import run_sensitivities, sensitivity_runs, to_records
from ..engine.params import PRESETS, EngineParams
from ..io import write_json, write_text
from ..naming import new_run_dir
from ..results import checked
from ..scenarios import csv_replay
from . import sizing
from .common import (
    COUNT_HELP,
    CliError,
    add_backend_arguments,
    add_book_arguments,
    add_csv_arguments,
    add_set_argument,
    add_yes_argument,
    apply_warmup,
    build_params,
    check_device,
    check_output_dir,
    count,
    note,
    parse_sets,
    print_json,
    read_csv_table,
    seed_value,
)
from .raycli import add_ray_arguments, describe, ray_settings, start_executor, warn_few_paths

DEFAULT_SCENARIO = "shock"
DEFAULT_PRESET = "aave_v3_weth"
BAD_DEBT_TEXT = {
    "written_off": "bad debt written off during the horizon (debt left on positions whose collateral is gone)",
    "written_off_plus_underwater": (
        "bad debt written off during the horizon plus the shortfall (debt minus collateral value at "
        "the oracle) of positions still open and underwater at the horizon"
    ),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stress",
        help="Monte Carlo stress test: VaR/CVaR of bad debt, liquidations at risk, heatmap, frontier",
        description=(
            "Run many market paths through the batched engine and report the tail of bad debt and of "
            "liquidations, in USD and as a share of TVL, with standard errors. Writes summary.json, "
            "paths.csv, PNG plots and summary.md to --out."
        ),
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=[*sorted(PRESETS), "aave_v3_ethereum"],
        help="protocol preset (default aave_v3_weth; aave_v3_ethereum: the multi-asset cross-margin market on a "
        "multi-asset scenario, see docs/cross-margin.md)",
    )
    p.add_argument(
        "--protocols",
        default=None,
        metavar="A,B,C",
        help="several lending protocols on shared markets (aave_v3_ethereum, compound_v3_usdc, "
        "morpho_wsteth_usdc; comma-separated) on a multi-asset scenario: systemic and "
        "per-protocol VaR/CVaR, contagion (shared minus isolated markets) and both margin modes "
        "on the same paths, see docs/interoperable-margin.md",
    )
    p.add_argument(
        "--margin",
        default=None,
        help="with --protocols: the headline margin mode, per_protocol (default) or unified "
        "(both are run on every path and compared)",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help=f"scenario name (default {DEFAULT_SCENARIO}; see `levgym scenarios`). With --price-csv: "
        "the scenario's liquidity, gas and oracle paths under the CSV's prices",
    )
    add_csv_arguments(
        p,
        "replay a price path from a CSV file on every path (with --preset aave_v3_ethereum: one "
        "price column per asset, timestamp,WETH,WBTC,...; the others drawn conditionally)",
    )
    add_book_arguments(p)
    p.add_argument(
        "--paths",
        type=count,
        default=2000,
        help=f"number of Monte Carlo paths (one market each; {COUNT_HELP})",
    )
    p.add_argument("--horizon-hours", type=float, default=24.0, help="length of each path in hours")
    p.add_argument("--positions", type=count, default=128, help="position slots per path")
    p.add_argument(
        "--seed", type=seed_value, default=0, help="root seed (paths, books, borrower noise)"
    )
    p.add_argument("--batch-size", type=count, default=500, help="paths simulated at once")
    add_set_argument(p)
    add_backend_arguments(p)
    p.add_argument(
        "--include-underwater",
        action="store_true",
        help="count the shortfall of positions still underwater at the horizon as bad debt too "
        "(default: written-off bad debt only)",
    )
    p.add_argument("--se", default="analytic", choices=SE_METHODS, help="standard-error method")
    p.add_argument(
        "--sensitivities",
        action="store_true",
        help="finite-difference delta and gamma w.r.t. price, LT, LTV, bonus and close factor",
    )
    p.add_argument(
        "--sens-paths",
        type=count,
        default=None,
        help="paths per sensitivity run (default min(--paths, 500))",
    )
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="SECTION.KEY=START:STOP:COUNT",
        help="sweep a parameter on the same paths (repeat once for a 2-D grid); also SECTION.KEY=V1,V2,...",
    )
    p.add_argument(
        "--book",
        default=None,
        choices=BOOK_MODES,
        help="with --sweep: keep the initial book fixed or redraw it per point (default fixed)",
    )
    p.add_argument(
        "--frontier-x",
        default=None,
        choices=FRONTIER_X,
        help="with --sweep: benefit axis of the frontier (default auto: revenue for --book fixed, "
        "debt for rescaled)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="report folder (default runs/stress/<timestamp>)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_ray_arguments(p, "the Monte Carlo batches (and grid points, sensitivity runs)")
    add_yes_argument(p)
    p.set_defaults(run=run)


def canonical_command(args: argparse.Namespace) -> str:
    """The command with every option that shapes the result spelled out (reproduces the run)."""
    parts = ["levgym", "stress", "--preset", args.preset]
    if args.price_csv:
        if args.scenario:
            parts += ["--scenario", args.scenario]
        parts += ["--price-csv", args.price_csv]
        for flag, value in (
            ("--time-column", args.time_column),
            ("--price-column", args.price_column),
            ("--csv-group", args.csv_group),
        ):
            if value is not None:
                parts += [flag, value]
        if args.allow_gaps:
            parts.append("--allow-gaps")
    else:
        parts += ["--scenario", args.scenario or DEFAULT_SCENARIO]
    parts += [
        "--paths", str(args.paths), "--horizon-hours", f"{args.horizon_hours:g}", "--positions", str(args.positions),
        "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--backend", args.backend,
        "--dtype", args.dtype, "--se", args.se,
    ]  # fmt: skip
    if args.device:
        parts += ["--device", args.device]
    if args.book_csv:
        parts += ["--book-csv", args.book_csv]
    if args.warmup_h is not None:
        parts += ["--warmup-h", f"{args.warmup_h:g}"]
    for item in args.sets:
        parts += ["--set", item]
    if args.include_underwater:
        parts.append("--include-underwater")
    if args.sensitivities:
        parts += ["--sensitivities", "--sens-paths", str(_sens_paths(args))]
    for item in args.sweep:
        parts += ["--sweep", item]
    if args.sweep:
        parts += ["--book", args.book or "fixed", "--frontier-x", args.frontier_x or "auto"]
    if args.out:
        parts += ["--out", args.out]
    if args.json:
        parts.append("--json")
    return shlex.join(parts)


def _sens_paths(args: argparse.Namespace) -> int:
    return args.sens_paths if args.sens_paths is not None else min(args.paths, 500)


def driver_factory(
    args: argparse.Namespace, sets: dict[str, dict[str, str]], table: Any = None
) -> tuple[str, DriverFactory]:
    """(name, factory) for ``--scenario``, ``--price-csv`` (its validated ``table``) or both (the
    CSV's prices under the scenario's other drivers); checks names and knobs up front."""
    scenario = None
    if args.scenario or not args.price_csv:
        scenario = scenarios.get(args.scenario or DEFAULT_SCENARIO)
    csv_knobs, scenario_knobs = sets["scenario"], sets["scenario"]
    if args.price_csv and scenario is not None:
        csv_knobs, scenario_knobs = csv_replay.split_knobs(sets["scenario"])
    if scenario is not None:
        scenario.resolve_knobs(scenario_knobs)
    if not args.price_csv:
        assert scenario is not None
        chosen = scenario

        def from_scenario(n: int, s: int, params: EngineParams, seed: int):
            return chosen.drivers(n, s, params, seed, scenario_knobs)

        return chosen.name, from_scenario

    def from_csv(n: int, s: int, params: EngineParams, seed: int):
        drivers = csv_replay.drivers_from_csv(
            args.price_csv,
            num_envs=n,
            num_substeps=s,
            params=params,
            overrides=csv_knobs,
            seed=seed,
            table=table,
        )
        if scenario is None:
            return drivers
        base = scenario.drivers(n, s, params, seed, scenario_knobs)
        return csv_replay.over_scenario(base, drivers)

    name = f"csv:{args.price_csv}" if scenario is None else f"{scenario.name}+csv:{args.price_csv}"
    return name, from_csv


def _validate(args: argparse.Namespace) -> None:
    for name, value, lo in (
        ("paths", args.paths, 1),
        ("positions", args.positions, 1),
        ("batch-size", args.batch_size, 1),
    ):
        if value < lo:
            raise ValueError(f"--{name}={value} is out of range; allowed >= {lo}")
    if not args.horizon_hours > 0:
        raise ValueError(f"--horizon-hours={args.horizon_hours:g} is out of range; allowed > 0")
    if args.sens_paths is not None and args.sens_paths < 2:
        raise ValueError(f"--sens-paths={args.sens_paths} is out of range; allowed >= 2")
    if args.sens_paths is not None and not args.sensitivities:
        raise CliError("--sens-paths has no effect without --sensitivities; allowed with it")
    for flag, value in (("--book", args.book), ("--frontier-x", args.frontier_x)):
        if value is not None and not args.sweep:
            raise CliError(f"{flag} {value} has no effect without --sweep; allowed with --sweep")
    check_device(args.backend, args.device)
    check_output_dir(args.out, "--out")
    if args.ray is not None and args.device not in (None, "cpu"):
        raise CliError(f"--device {args.device} with --ray is not supported; allowed cpu")


def _default_out(args: argparse.Namespace, scenario: str) -> Path:
    """``runs/stress/<preset>__<scenario>__<seed>__<time>`` (levgym.naming)."""
    return new_run_dir("stress", args.preset, scenario, args.seed)


class _Bar:
    """A tqdm bar on stderr (or nothing) that also prints warnings without breaking the bar."""

    def __init__(self, total: int, disable: bool) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(
            total=total, desc="levgym stress", unit="batch", file=sys.stderr, disable=disable
        )

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def warn(self, message: str) -> None:
        self._tqdm.write(f"levgym: warning: {message}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def run(args: argparse.Namespace) -> int:
    if args.protocols is not None:
        from .stress_multiprotocol import run_multiprotocol

        return run_multiprotocol(args)
    if args.margin is not None:
        raise CliError("--margin needs --protocols; allowed only with --protocols A,B,C")
    args.preset = args.preset or DEFAULT_PRESET
    if args.preset == "aave_v3_ethereum":
        from .stress_portfolio import run_portfolio

        return run_portfolio(args)
    t0 = time.perf_counter()
    _validate(args)
    settings = ray_settings(args)
    sets = parse_sets(args.sets)
    params = apply_warmup(build_params(args.preset, sets), args.warmup_h)
    book = None
    if args.book_csv:
        from ..scenarios.book_csv import read_book_csv

        book = read_book_csv(args.book_csv)
        args.positions = max(args.positions, book.rows)
    axes = parse_sweeps(args.sweep)
    table = read_csv_table(args)
    name, factory = driver_factory(args, sets, table)
    bad_debt = "written_off_plus_underwater" if args.include_underwater else "written_off"
    config = MonteCarloConfig(
        paths=args.paths,
        positions=args.positions,
        horizon_h=args.horizon_hours,
        seed=args.seed,
        batch_size=args.batch_size,
        backend=args.backend,
        dtype=args.dtype,
        device=args.device,
        bad_debt=bad_debt,
        book=book,
    )
    num_substeps = config.num_substeps(params)
    points = len(checked_grid(params, axes)[0]) if axes else 0
    sens_runs = sensitivity_runs(params) + 1 if args.sensitivities else 0
    sizing.check_stress(
        args.paths,
        args.positions,
        num_substeps,
        args.batch_size,
        args.dtype,
        args.backend,
        1 + points + sens_runs * _sens_paths(args) / args.paths,
        len(PATH_COLUMNS),
        args.yes,
    )
    if table is not None:  # a file too short for the horizon fails here, before any path runs
        factory(1, num_substeps, params, args.seed)
    sens_config = (
        MonteCarloConfig(**{**config.__dict__, "paths": _sens_paths(args)})
        if args.sensitivities
        else None
    )
    total = len(config.batches) * (1 + points)
    if sens_config is not None:
        reuse = sens_config.paths == config.paths
        total += len(sens_config.batches) * (sensitivity_runs(params) + (0 if reuse else 1))
    bar = _Bar(total, args.no_progress)
    warn_few_paths(bar, args.paths)
    executor = None
    try:
        executor = start_executor(settings)
        results = run_paths(params, factory, config, heatmap=True, progress=bar, executor=executor)
        summary: dict[str, Any] = {
            "command": canonical_command(args),
            "argv": shlex.join(sys.argv)
            if sys.argv and "levgym" in os.path.basename(sys.argv[0])
            else None,
            "scenario": name,
            "scenario_overrides": sets["scenario"],
            "preset": args.preset,
            "sets": list(args.sets),
            "seed": args.seed,
            "positions": args.positions,
            "horizon_hours": args.horizon_hours,
            "substeps": num_substeps,
            "batch_size": args.batch_size,
            "backend": args.backend,
            "dtype": args.dtype,
            "bad_debt_definition": bad_debt,
            "bad_debt_definition_text": BAD_DEBT_TEXT[bad_debt],
            "executor": describe(executor),
        }
        summary.update(summarize_paths(results.per_path, args.se))
        if sens_config is not None:
            base_sens = results if reuse else None
            rows = run_sensitivities(
                params,
                factory,
                sens_config,
                base_results=base_sens,
                progress=bar,
                executor=executor,
            )
            summary["sensitivity_paths"] = sens_config.paths
            summary["sensitivities"] = to_records(rows)
        sweep = None
        if axes:
            sweep = run_sweep(
                params,
                factory,
                config,
                axes,
                book=args.book or "fixed",
                x_metric=args.frontier_x or "auto",
                base_results=results,
                progress=bar,
                warn=bar.warn,
                executor=executor,
            )
            summary["sweep"] = sweep.to_dict()
    finally:
        bar.close()
        if executor is not None:
            executor.close()

    out = Path(args.out) if args.out else _default_out(args, name)
    files: dict[str, str] = {
        "summary (JSON)": "summary.json",
        "per-path outcomes": "paths.csv",
        "report": "summary.md",
    }
    write_paths_csv(out / "paths.csv", results.per_path)
    if not args.no_plots:
        from ..analytics.plots import plot_distributions, plot_frontier, plot_heatmap

        title = f"{name}, preset {args.preset}, {args.paths} paths, {args.horizon_hours:g} h"
        plot_distributions(results.per_path, summary, out / "bad_debt_distribution.png", title)
        files["bad-debt, liquidation and amplification distributions"] = "bad_debt_distribution.png"
        plot_heatmap(results.heatmap, out / "liquidation_heatmap.png", title)
        files["liquidation heatmap"] = "liquidation_heatmap.png"
        if sweep is not None:
            plot_frontier(sweep, out / "frontier.png", title)
            files["parameter frontier"] = "frontier.png"
    summary["wall_time_s"] = time.perf_counter() - t0
    summary["out_dir"] = str(out)
    summary["files"] = files
    full = dict(summary)
    full["heatmap"] = results.heatmap.to_dict()
    write_json(out / "summary.json", checked("stress", full))
    write_text(out / "summary.md", summary_markdown(summary, files))
    if args.json:
        print_json(summary)
    else:
        _print_text(summary)
    if table is not None:
        note(table.describe(args.price_csv))
    return 0


def _print_text(s: dict[str, Any]) -> None:
    print(f"{s['command']}")
    print(
        f"scenario {s['scenario']}, preset {s['preset']}, {s['paths']} paths, {s['horizon_hours']:g} h"
    )
    rows = headline_rows(s)
    w = max(len(r[0]) for r in rows)
    for label, usd, frac, _ in rows:
        print(f"  {label:<{w}}  {usd:>28}  {frac:>22} of TVL")
    for label, value in other_rows(s):
        print(f"  {label}: {value}")
    if s.get("sensitivities"):
        print()
        print(sensitivity_table(s["sensitivities"]))
    if s.get("sweep"):
        print()
        print(sweep_table(s["sweep"]))
    print(f"report written to {s['out_dir']} ({s['wall_time_s']:.1f} s)")
