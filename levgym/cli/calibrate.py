"""`levgym calibrate`: refit the book and keepers of the ``aave_v2_weth`` preset on the fit period
(levgym.analytics.validation.fit) and print the numbers to paste into
``levgym.engine.params.BOOK_PRESETS`` and ASSUMPTIONS.md."""

from __future__ import annotations

import argparse
import sys

from .common import count, print_json, seed_value
from .validate import add_replay_arguments, arrival_drawdown_value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="refit the aave_v2_weth book on Aave v2's 2020-12 .. 2021-03 liquidations",
        description="Grid searches on the fit-period days (2020-12-17 .. 2021-03-31) only: first "
        "the book (warm-up, turnover, health factors near the edge, their response to recent "
        "volatility), then the two keeper parameters (the share of keepers' sales routed off the "
        "pool and that venue's depth); the book's size scaled to the fit days' real total. "
        "Prints the fitted values (paste them into BOOK_PRESETS and ASSUMPTIONS.md).",
    )
    p.add_argument("--draws", type=count, default=4, help="books drawn per day (default 4)")
    p.add_argument("--positions", type=count, default=1000, help="slots per book (default 1000)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed of the books")
    p.add_argument(
        "--keepers",
        choices=("share", "split"),
        default="share",
        help="keeper stage: a fixed share of sales to one off-pool venue (share, the preset's) "
        "or the best split over the pool, an aggregator route and a CEX leg, fitting their two "
        "depths (split)",
    )
    p.add_argument(
        "--keepers-only",
        action="store_true",
        help="run the keeper stage alone, from the preset's book",
    )
    add_replay_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analytics import validation as V
    from ..engine.params import preset_params

    k = arrival_drawdown_value(args, preset_params("aave_v2_weth"))
    out = V.fit(
        draws=args.draws,
        positions=args.positions,
        seed=args.seed,
        progress=lambda m: print(m, file=sys.stderr),
        keepers=args.keepers,
        keepers_only=args.keepers_only,
        gas=args.gas,
        path=args.path,
        arrival_drawdown=k,
    )
    if args.json:
        print_json(out)
        return 0
    for key, value in out.items():
        print(f"{key} = {value!r}")
    return 0
