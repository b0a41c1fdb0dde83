"""`levgym simulate`: run a scenario through the batched engine and summarize it."""

from __future__ import annotations

import argparse

from .. import scenarios
from ..engine.portfolio_single import check_engine_options, check_supported
from ..io import write_json
from ..results import checked
from ..simulation import SUMMARY_KEYS, simulate
from . import sizing
from .common import (
    COUNT_HELP,
    add_backend_arguments,
    add_book_arguments,
    add_csv_arguments,
    add_set_argument,
    add_yes_argument,
    apply_warmup,
    build_params,
    check_device,
    check_output_file,
    count,
    note,
    parse_sets,
    print_json,
    read_csv_table,
    seed_value,
)

DEFAULT_SCENARIO = "shock"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a scenario through the engine and print its summary",
        description="Run a scenario (or a price CSV) through the batched engine and print its "
        f"summary. Sizes are checked against memory before anything runs. Counts: {COUNT_HELP}.",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help="scenario name (see `levgym scenarios`; default shock). With --price-csv: the "
        "scenario's liquidity, gas and oracle paths under the CSV's prices",
    )
    p.add_argument(
        "--seed", type=seed_value, default=0, help="random seed (book, paths, borrower noise)"
    )
    p.add_argument("--num-envs", type=count, default=8, help="markets simulated at once")
    p.add_argument("--positions", type=count, default=256, help="position slots per market")
    p.add_argument(
        "--steps", type=count, default=24, help="governance periods (1 hour each by default)"
    )
    p.add_argument(
        "--preset",
        default=None,
        help="preset (default aave_v3_weth; aave_v3_weth, aave_v3_weth_comet_params (single-asset, Aave-style mechanics with Comet's WETH factors, formerly compound_v3; Comet's own rules are the compound_v3_usdc protocol of --protocols), conservative; aave_v2_weth also sets the book, keepers and warm-up fitted on Aave v2, see `levgym validate`; aave_v3_ethereum: the multi-asset cross-margin market on a multi-asset scenario, see docs/cross-margin.md)",
    )
    p.add_argument(
        "--protocols",
        default=None,
        metavar="A,B,C",
        help="several lending protocols on shared markets (aave_v3_ethereum, compound_v3_usdc, "
        "morpho_wsteth_usdc; comma-separated) on a multi-asset scenario, see "
        "docs/interoperable-margin.md",
    )
    p.add_argument(
        "--margin",
        default=None,
        choices=["per_protocol", "unified"],
        help="with --protocols: each position in its protocol (per_protocol, default) or one "
        "account across protocols with one health factor (unified)",
    )
    p.add_argument(
        "--isolated-markets",
        action="store_true",
        help="with --protocols: each protocol trades against its own pools holding its share of "
        "the depth (its share of the collateral value)",
    )
    p.add_argument(
        "--contagion",
        action="store_true",
        help="with --protocols: also run isolated markets on the same paths and books and report "
        "each protocol's bad debt caused by sharing the markets",
    )
    add_csv_arguments(
        p,
        "replay a price path from a CSV file (with --preset aave_v3_ethereum: one price column "
        "per asset, timestamp,WETH,WBTC,...; the others simulated conditionally on them)",
    )
    add_book_arguments(p)
    add_set_argument(p)
    add_backend_arguments(p)
    p.add_argument(
        "--engine",
        default="single",
        choices=["single", "portfolio"],
        help="the step a single-asset preset runs on: single (default) or portfolio, the "
        "asset-axis step with one collateral and one debt asset (the same results to 1e-12; "
        "arrivals and exits not yet: set borrowers.arrival_rate_per_h=0 and "
        "borrowers.exit_rate_per_h=0; --backend numpy or numba), see docs/cross-margin.md",
    )
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
    add_yes_argument(p)
    p.set_defaults(run=run)


def make_drivers(args: argparse.Namespace, params, sets, num_substeps: int, table=None):
    """Drivers for ``--scenario``, ``--price-csv`` or both (the CSV's prices under the
    scenario's other drivers); returns (name, drivers)."""
    scenario = None
    if args.scenario or not args.price_csv:
        scenario = scenarios.get(args.scenario or DEFAULT_SCENARIO)
    csv_knobs, scenario_knobs = sets["scenario"], sets["scenario"]
    if args.price_csv and scenario is not None:
        from ..scenarios.csv_replay import split_knobs

        csv_knobs, scenario_knobs = split_knobs(sets["scenario"])
    if scenario is not None:
        scenario.resolve_knobs(scenario_knobs)  # unknown knobs fail before any work
    if not args.price_csv:
        assert scenario is not None
        return scenario.name, None  # the market runner draws each env's path (levgym.market)
    from ..scenarios import csv_replay

    drivers = csv_replay.drivers_from_csv(
        args.price_csv,
        num_envs=args.num_envs,
        num_substeps=num_substeps,
        params=params,
        overrides=csv_knobs,
        seed=args.seed,
        table=table if table is not None else read_csv_table(args),
    )
    if scenario is None:
        return f"csv:{args.price_csv}", drivers
    base = scenario.drivers(args.num_envs, num_substeps, params, args.seed, scenario_knobs)
    return f"{scenario.name}+csv:{args.price_csv}", csv_replay.over_scenario(base, drivers)


def run_portfolio(args: argparse.Namespace) -> int:
    """``--preset aave_v3_ethereum``: the multi-asset market (levgym.simulation_portfolio)."""
    from ..simulation_portfolio import PRESET, params_from_sets, simulate_portfolio
    from .common import preset_book, preset_price_table, refuse_with_preset

    refuse_with_preset(
        PRESET,
        (
            ("--plot", args.plot),
            ("--warmup-h", args.warmup_h),
        ),
        args,
    )
    params = params_from_sets(parse_sets(args.sets))
    table = preset_price_table(args, args.steps + 1, f"--steps {args.steps}")
    book = preset_book(args, table)
    check_output_file(args.out_json, "--out-json")
    sizing.check_simulate(
        args.num_envs, args.positions, args.steps, "float64", False, "numpy", args.yes
    )
    summary = checked("simulate", simulate_portfolio(
        args.scenario, args.num_envs, args.positions, args.steps, args.seed, params,
        price_table=table, price_csv=args.price_csv, book=book,
    ))  # fmt: skip
    if args.out_json:
        write_json(args.out_json, summary)
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:<34}  {value}")
    return 0


def run_multiprotocol(args: argparse.Namespace) -> int:
    """``--protocols a,b,c``: several protocols on shared markets (levgym.simulation_multiprotocol)."""
    from ..scenarios.multiprotocol import get_scenario
    from ..simulation_multiprotocol import parse_protocols, simulate_multiprotocol
    from ..simulation_portfolio import DEFAULT_SCENARIO
    from .common import CliError

    names = parse_protocols(args.protocols)
    if args.preset:
        raise CliError(
            f"--preset {args.preset} is not allowed with --protocols; allowed one of them "
            "(the protocols name their presets)"
        )
    if args.contagion and args.isolated_markets:
        raise CliError(
            "--contagion compares shared with isolated markets; allowed without --isolated-markets"
        )
    for flag, value in (
        ("--price-csv", args.price_csv),
        ("--book-csv", args.book_csv),
        ("--plot", args.plot),
        ("--warmup-h", args.warmup_h),
    ):
        if value:
            raise CliError(f"{flag} is not supported with --protocols yet; allowed without it")
    sets = parse_sets(args.sets)
    other = [f"{sec}.{k}" for sec, kv in sets.items() if sec != "market" for k in kv]
    if other:
        raise CliError(
            f"--set {other[0]} is not supported with --protocols; allowed market.KEY=VALUE "
            "(the multi-asset market's parameters, levgym.engine.portfolio_market)"
        )
    from ..engine.params import override_many

    scenario = get_scenario(args.scenario or DEFAULT_SCENARIO)  # one line naming the scenarios
    market = override_many(scenario.market_params(), "market", sets["market"])
    if args.backend != "numpy" or args.dtype != "float64" or args.device:
        raise CliError(
            f"--backend {args.backend} --dtype {args.dtype} is not supported with --protocols; "
            "allowed the default (numpy float64, keeper pass compiled by numba)"
        )
    check_output_file(args.out_json, "--out-json")
    runs = 2 if args.contagion else 1
    sizing.check_simulate(
        args.num_envs, args.positions * len(names) * runs, args.steps, "float64", False, "numpy",
        args.yes,
    )  # fmt: skip
    summary = checked("simulate", simulate_multiprotocol(
        names, args.scenario, args.num_envs, args.positions, args.steps, args.seed,
        margin=args.margin or "per_protocol", isolated_markets=args.isolated_markets,
        contagion=args.contagion, market=market,
    ))  # fmt: skip
    if args.out_json:
        write_json(args.out_json, summary)
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:<38}  {value}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.engine != "single" and (
        args.protocols is not None or args.preset == "aave_v3_ethereum"
    ):
        where = "--protocols" if args.protocols is not None else "--preset aave_v3_ethereum"
        raise ValueError(
            f"--engine {args.engine} is not allowed with {where} (its markets run on their own "
            "step); allowed with a single-asset preset"
        )
    if args.protocols is not None:
        return run_multiprotocol(args)
    for flag, value in (
        ("--margin", args.margin),
        ("--isolated-markets", args.isolated_markets),
        ("--contagion", args.contagion),
    ):
        if value:
            raise ValueError(f"{flag} needs --protocols; allowed only with --protocols A,B,C")
    if args.preset == "aave_v3_ethereum":
        return run_portfolio(args)
    for flag, value in (
        ("--num-envs", args.num_envs),
        ("--positions", args.positions),
        ("--steps", args.steps),
    ):
        if value < 1:
            raise ValueError(f"{flag}={value} is out of range; allowed >= 1")
    check_device(args.backend, args.device)
    check_engine_options(args.engine, args.backend, args.dtype, args.device)
    check_output_file(args.plot, "--plot", ".png")
    check_output_file(args.out_json, "--out-json")
    sets = parse_sets(args.sets)
    params = apply_warmup(build_params(args.preset, sets), args.warmup_h)
    if args.engine == "portfolio":
        check_supported(params)
    book = None
    if args.book_csv:
        from ..scenarios.book_csv import read_book_csv

        book = read_book_csv(args.book_csv)
        args.positions = max(args.positions, book.rows)
    num_substeps = args.steps * params.run.substeps_per_step
    warm_substeps = int(round(params.run.warmup_h / params.run.substep_h))
    sizing.check_simulate(
        args.num_envs,
        args.positions,
        num_substeps,
        args.dtype,
        bool(args.plot),
        args.backend,
        args.yes,
    )
    table = read_csv_table(args)
    # a replayed CSV's warm-up is its own earlier rows: the drivers cover both
    csv_substeps = num_substeps + (warm_substeps if args.price_csv else 0)
    try:
        name, drivers = make_drivers(args, params, sets, csv_substeps, table)
    except ValueError as exc:
        if not (args.price_csv and warm_substeps and "the run needs" in str(exc)):
            raise
        raise ValueError(
            f"--price-csv {args.price_csv!r} is too short for a warm-up of "
            f"{params.run.warmup_h:g} h (run.warmup_h: the file's first rows) plus {args.steps} "
            "step(s); allowed --warmup-h 0 or a smaller one, fewer --steps, or a file that starts "
            "earlier"
        ) from None
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
        book=book,
        engine=args.engine,
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
    if table is not None:
        note(table.describe(args.price_csv))
    return 0
