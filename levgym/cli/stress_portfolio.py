"""`levgym stress --preset aave_v3_ethereum`: the multi-asset Monte Carlo stress
(:mod:`levgym.analytics.portfolio_stress`) as a report folder."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..naming import new_run_dir
from .common import (
    check_output_dir,
    command_tail,
    finish_stress,
    preset_book,
    preset_price_table,
    refuse_with_preset,
)
from .raycli import describe, ray_settings, start_executor, warn_few_paths


def single_asset_options(args: argparse.Namespace) -> tuple[tuple[str, Any], ...]:
    """The ``stress`` options of the single-asset engine only (name, value given), which the
    multi-asset and multi-protocol stresses refuse."""
    return (
        ("--warmup-h", args.warmup_h),
        ("--include-underwater", args.include_underwater),
        ("--sensitivities", args.sensitivities),
        ("--sens-paths", args.sens_paths),
        ("--sweep", args.sweep),
        ("--book", args.book),
        ("--frontier-x", args.frontier_x),
    )


def _refuse_unsupported(args: argparse.Namespace, preset: str) -> None:
    refuse_with_preset(preset, single_asset_options(args), args)


def canonical_command(args: argparse.Namespace, scenario: str) -> str:
    parts = [
        "levgym", "stress", "--preset", args.preset, "--scenario", scenario,
        "--paths", str(args.paths), "--horizon-hours", f"{args.horizon_hours:g}",
        "--positions", str(args.positions), "--seed", str(args.seed),
        "--batch-size", str(args.batch_size), "--se", args.se,
    ]  # fmt: skip
    if args.price_csv:
        parts += ["--price-csv", args.price_csv]
    if args.book_csv:
        parts += ["--book-csv", args.book_csv]
        if args.allow_gaps:
            parts.append("--allow-gaps")
    return shlex.join(parts + command_tail(args))


def run_portfolio(args: argparse.Namespace) -> int:
    from ..analytics import portfolio_stress as PS
    from ..engine.aave_v3_ethereum import aave_v3_ethereum_reserves
    from .stress import _Bar

    t0 = time.perf_counter()
    _refuse_unsupported(args, PS.PRESET)
    scenario = args.scenario or PS.DEFAULT_SCENARIO
    from ..simulation_portfolio import params_from_sets
    from .common import parse_sets

    market = dataclasses.replace(params_from_sets(parse_sets(args.sets)), substep_h=PS.ROW_H)
    table = preset_price_table(args, 0, "")
    book = preset_book(args, table)  # read and checked; its length against the config's
    config = PS.PortfolioStressConfig(
        scenario=scenario,
        paths=args.paths,
        positions=args.positions,
        horizon_h=args.horizon_hours,
        seed=args.seed,
        batch_size=args.batch_size,
        price_table=table,
        price_csv=args.price_csv,
        market=market,
        book=book,
    )  # unknown scenario, bad counts or horizon: one line, exit 2, before any path runs
    check_output_dir(args.out, "--out")
    settings = ray_settings(args)
    symbols = aave_v3_ethereum_reserves().symbols
    bar = _Bar(len(config.batches), args.no_progress)
    warn_few_paths(bar, args.paths)
    executor = None
    try:
        executor = start_executor(settings)
        res = PS.run_portfolio_paths(config, executor=executor, progress=bar)
        summary: dict[str, Any] = {
            "command": canonical_command(args, scenario),
            "argv": shlex.join(sys.argv)
            if sys.argv and "levgym" in os.path.basename(sys.argv[0])
            else None,
            "scenario": scenario if table is None else f"{scenario}+csv:{args.price_csv}",
            "replayed": [] if table is None else list(table.symbols),
            "deficit_cover": market.deficit_cover,
            "defensive_frac": market.borrowers.defensive_frac,
            "preset": PS.PRESET,
            "reserves": list(symbols),
            "seed": args.seed,
            "positions": config.slots,
            "horizon_hours": args.horizon_hours,
            "substeps": config.steps,
            "batch_size": args.batch_size,
            "backend": "numpy",
            "dtype": "float64",
            "bad_debt_definition": PS.BAD_DEBT_DEFINITION,
            "bad_debt_definition_text": PS.BAD_DEBT_TEXT,
            "executor": describe(executor),
        }
        summary.update(PS.summarize(res, symbols, args.se))
    finally:
        bar.close()
        if executor is not None:
            executor.close()
    out = Path(args.out) if args.out else new_run_dir("stress", PS.PRESET, scenario, args.seed)
    files = {"summary (JSON)": "summary.json", "per-path outcomes": "paths.npz"}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "paths.npz",
        bad_debt_usd=res.bad_debt_usd,
        deficit_usd_by_asset=res.deficit_usd_by_asset,
        tvl_usd=res.tvl_usd,
        reserves=np.array(symbols),
    )
    if not args.no_plots:
        title = f"{scenario}, preset {PS.PRESET}, {args.paths} paths, {args.horizon_hours:g} h"
        PS.plot(summary, res.bad_debt_usd, out / "portfolio_stress.png", title)
        files["bad-debt distribution and liquidation heatmap per collateral"] = (
            "portfolio_stress.png"
        )
    return finish_stress(summary, out, files, args, t0, _print_text)


def _print_text(s: dict[str, Any]) -> None:
    print(s["command"])
    print(
        f"scenario {s['scenario']}, preset {s['preset']}, {s['paths']} paths, {s['horizon_hours']:g} h"
    )
    for level in (95, 99):
        for kind in ("var", "cvar"):
            k = f"{kind}_{level}_bad_debt_usd"
            print(f"  {kind.upper()} {level}% bad debt: {s[k]:,.0f} USD (se {s[k + '_se']:,.0f})")
        contrib = s[f"cvar_{level}_contribution_by_asset_usd"]
        parts = ", ".join(f"{a} {v:,.0f}" for a, v in contrib.items() if v)
        print(f"    CVaR {level}% by debt reserve: {parts or 'none'}")
    for sym, rec in s["liquidation_heatmap_by_asset"].items():
        i = rec["price_fall_frac"].index(0.2)
        print(f"  {sym} -20%: {rec['liquidatable_debt_usd'][i]:,.0f} USD of debt liquidatable")
    print(f"report written to {s['out_dir']} ({s['wall_time_s']:.1f} s)")
