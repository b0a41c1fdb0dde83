"""`levgym stress --protocols a,b,c [--margin per_protocol|unified]`: the Monte Carlo stress of
several protocols on shared markets (:mod:`levgym.analytics.multiprotocol_stress`) as a report
folder."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..naming import new_run_dir
from .common import (
    CliError,
    check_output_dir,
    command_tail,
    finish_stress,
    parse_sets,
    refuse_with_preset,
)
from .raycli import describe, ray_settings, start_executor, warn_few_paths
from .stress_portfolio import single_asset_options


def canonical_command(args: argparse.Namespace, scenario: str, margin: str) -> str:
    parts = [
        "levgym", "stress", "--protocols", args.protocols, "--margin", margin,
        "--scenario", scenario, "--paths", str(args.paths),
        "--horizon-hours", f"{args.horizon_hours:g}", "--positions", str(args.positions),
        "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--se", args.se,
    ]  # fmt: skip
    return shlex.join(parts + command_tail(args))


def config_from_args(args: argparse.Namespace) -> Any:
    """The stress configuration of ``args``; every bad value is one line (exit 2) here, before
    any path runs."""
    from ..analytics import multiprotocol_stress as MS
    from ..engine.multiprotocol import MARGIN_MODES
    from ..engine.params import override_many
    from ..scenarios.multiprotocol import get_scenario
    from ..simulation_multiprotocol import parse_protocols

    names = parse_protocols(args.protocols)
    if args.preset:
        raise CliError(
            f"--preset {args.preset} is not allowed with --protocols; allowed one of them "
            "(the protocols name their presets)"
        )
    margin = args.margin or "per_protocol"
    if margin not in MARGIN_MODES:
        raise CliError(f"--margin {margin!r} is not allowed; allowed {', '.join(MARGIN_MODES)}")
    refuse_with_preset(
        "",
        (("--price-csv", args.price_csv), ("--book-csv", args.book_csv))
        + single_asset_options(args),
        args,
        context="--protocols",
    )
    sets = parse_sets(args.sets)
    other = [f"{sec}.{k}" for sec, kv in sets.items() if sec != "market" for k in kv]
    if other:
        raise CliError(
            f"--set {other[0]} is not supported with --protocols; allowed market.KEY=VALUE "
            "(the multi-asset market's parameters, levgym.engine.portfolio_market)"
        )
    scenario = get_scenario(args.scenario or MS.DEFAULT_SCENARIO)
    market = override_many(scenario.market_params(), "market", sets["market"])
    return MS.MultiProtocolStressConfig(
        protocols=names,
        margin=margin,
        scenario=scenario.name,
        paths=args.paths,
        positions=args.positions,
        horizon_h=args.horizon_hours,
        seed=args.seed,
        batch_size=args.batch_size,
        market=market,
    )


def run_multiprotocol(args: argparse.Namespace) -> int:
    from ..analytics import multiprotocol_stress as MS
    from . import sizing
    from .stress import _Bar

    t0 = time.perf_counter()
    config = config_from_args(args)
    check_output_dir(args.out, "--out")
    settings = ray_settings(args)
    runs = len(MS.RUNS)
    sizing.check_stress(
        args.paths, args.positions * len(config.protocols), config.steps, args.batch_size,
        "float64", "numpy", runs, 3 * runs * len(config.protocols), args.yes,
    )  # fmt: skip
    bar = _Bar(len(config.batches), args.no_progress)
    warn_few_paths(bar, args.paths)
    executor = None
    try:
        executor = start_executor(settings)
        res = MS.run_paths(config, executor=executor, progress=bar)
        summary: dict[str, Any] = {
            "command": canonical_command(args, config.scenario, config.margin),
            "argv": shlex.join(sys.argv)
            if sys.argv and "levgym" in os.path.basename(sys.argv[0])
            else None,
            "scenario": config.scenario,
            "protocols": list(config.protocols),
            "margin": config.margin,
            "seed": args.seed,
            "positions": args.positions,
            "horizon_hours": args.horizon_hours,
            "substeps": config.steps,
            "batch_size": args.batch_size,
            "backend": "numpy",
            "dtype": "float64",
            "bad_debt_definition": MS.BAD_DEBT_DEFINITION,
            "bad_debt_definition_text": MS.BAD_DEBT_TEXT,
            "executor": describe(executor),
        }
        summary.update(MS.summarize(res, config, args.se))
    finally:
        bar.close()
        if executor is not None:
            executor.close()
    label = "+".join(config.protocols)
    out = Path(args.out) if args.out else new_run_dir("stress", label, config.scenario, args.seed)
    files = {"summary (JSON)": "summary.json", "per-path outcomes": "paths.npz"}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "paths.npz",
        bad_debt_usd=res.bad_debt_usd,
        liquidated_usd=res.liquidated_usd,
        tvl_usd=res.tvl_usd,
        runs=np.array(MS.RUNS),
        protocols=np.array(config.protocols),
    )
    if not args.no_plots:
        title = (
            f"{config.scenario}, {', '.join(config.protocols)}, {args.paths} paths, "
            f"{args.horizon_hours:g} h"
        )
        MS.plot(summary, res, config, out / "multiprotocol_stress.png", title)
        files["bad-debt exceedance per protocol and per run"] = "multiprotocol_stress.png"
    return finish_stress(summary, out, files, args, t0, _print_text)


def _print_text(s: dict[str, Any]) -> None:
    print(s["command"])
    print(
        f"scenario {s['scenario']}, protocols {', '.join(s['protocols'])}, margin {s['margin']}, "
        f"{s['paths']} paths, {s['horizon_hours']:g} h"
    )
    for level in (95, 99):
        for kind in ("var", "cvar"):
            k = f"{kind}_{level}_bad_debt_usd"
            word = {"var": "VaR", "cvar": "CVaR"}[kind]
            print(f"  systemic {word} {level}%: {s[k]:,.0f} USD (se {s[k + '_se']:,.0f})")
        contrib = s[f"cvar_{level}_contribution_usd_by_protocol"]
        print("    by protocol: " + ", ".join(f"{n} {v:,.0f}" for n, v in contrib.items()))
    share = s["contagion_bad_debt_share_frac"]
    print(
        f"  contagion (shared - isolated): mean {s['mean_contagion_bad_debt_usd']:,.0f} USD "
        f"(se {s['mean_contagion_bad_debt_usd_se']:,.0f}), share "
        + ("n/a (no bad debt)" if share is None else f"{share:.1%}")
    )
    under = s["mean_underwater_usd_by_protocol"]
    print(
        "  still under water at the horizon: "
        + ", ".join(f"{n} {v:,.0f}" for n, v in under.items())
    )
    d = s["unified_minus_per_protocol"]
    print(
        f"  unified - per_protocol: mean {d['mean_bad_debt_usd']:,.0f} USD "
        f"(se {d['mean_bad_debt_usd_se']:,.0f}), CVaR 99% {d['cvar_99_bad_debt_usd']:,.0f} "
        f"(se {d['cvar_99_bad_debt_usd_se']:,.0f})"
    )
    print(f"report written to {s['out_dir']} ({s['wall_time_s']:.1f} s)")
