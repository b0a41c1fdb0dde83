"""`levgym validate`: replay the 2020-12 .. 2021-06 calibration days and compare the liquidated
debt with Aave v2's (levgym.analytics.validation)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ..io import save_figure, write_json
from ..results import checked
from .common import (
    add_set_argument,
    build_params,
    check_output_file,
    count,
    parse_sets,
    print_json,
    seed_value,
)

DEFAULT_PRESET = "aave_v2_weth"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..analytics.validation import AAVE_SLOTS, DEFAULT_PROTOCOL, PROTOCOLS

    p = sub.add_parser(
        "validate",
        help="replay real days and compare liquidations with Aave v2's",
        description="Replay the calibration days of 2020-12 .. 2021-06 (largest Aave v2 WETH "
        "liquidation volume, and every day ETH fell 5%% or more) with the real hourly ETH path, "
        "warmed up and fresh, and compare the model's liquidated debt with Aave v2's: per day, "
        "Spearman rank correlation, days within 2x, hourly timing on the big days, the fit/test "
        "split and the book's own noise ceiling.",
    )
    p.add_argument("--preset", default=DEFAULT_PRESET, help="preset (default aave_v2_weth)")
    p.add_argument(
        "--warmup-h",
        type=float,
        default=None,
        help="hours the book lives before each day starts (default: the preset's run.warmup_h)",
    )
    p.add_argument("--draws", type=count, default=8, help="books drawn per day (default 8)")
    p.add_argument(
        "--positions",
        type=count,
        default=AAVE_SLOTS,
        help=f"position slots per book (default {AAVE_SLOTS}, about Aave v2's WETH book)",
    )
    p.add_argument("--seed", type=seed_value, default=0, help="random seed of the books")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=DEFAULT_PROTOCOL,
        help="how the scores stay out of sample: split (default: the preset, fitted on "
        "2020-12 .. 2021-03, judged on 2021-04 .. 06), leave-one-day-out or leave-one-month-out "
        "(each day, or month, replayed with the warm-up and drawdown response that fit the other "
        "days' calibration days best; the grid's replays take several minutes more)",
    )
    add_replay_arguments(p)
    p.add_argument(
        "--hf-path",
        type=float,
        default=0.0,
        metavar="A",
        help="new borrowers open with their drawn health-factor excess times (close / close 30 "
        "days before) ** -A, warm-up included: nearer the edge after a rally, farther after a "
        f"crash (default 0: off; allowed [0, {_hf_path_max():g}])",
    )
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write a PNG")
    p.add_argument("--out-json", default=None, metavar="FILE", help="also write the JSON to FILE")
    p.set_defaults(run=run)


def add_replay_arguments(p: argparse.ArgumentParser) -> None:
    """``--gas`` and ``--path``: how the replays are built (levgym.analytics.validation)."""
    from ..analytics.validation import DEFAULT_GAS, DEFAULT_PATH, GASES, PATHS
    from ..scenarios.processes import ARRIVAL_DRAWDOWN_MAX

    p.add_argument(
        "--gas",
        choices=GASES,
        default=DEFAULT_GAS,
        help="gas of the replays: the congestion fit on the hourly path (congestion, default) or "
        "30 gwei throughout (flat, as before)",
    )
    p.add_argument(
        "--path",
        choices=PATHS,
        default=DEFAULT_PATH,
        help="price path: the hourly closes with a Brownian bridge between them at the hour's "
        "volatility, one per book (the intra-hour lows the closes do not show), and the "
        "10-minute closes inside the days the data hold them (bridge, default); the same "
        "without the bridge (finest, the default before), or the hourly closes only (hourly)",
    )
    p.add_argument(
        "--arrival-drawdown",
        type=float,
        default=None,
        metavar="K",
        help="new borrowers arrive at the preset's rate times (close / highest close of the "
        "30 days before) ** K, warm-up included (default the preset's run.arrival_drawdown; "
        f"0: no response; allowed [0, {ARRIVAL_DRAWDOWN_MAX:g}])",
    )


def arrival_drawdown_value(args: argparse.Namespace, params: Any) -> float:
    """``--arrival-drawdown`` (when not given, the preset's ``run.arrival_drawdown``), checked:
    one line, exit 2."""
    from ..scenarios.processes import ARRIVAL_DRAWDOWN_MAX

    k = params.run.arrival_drawdown if args.arrival_drawdown is None else args.arrival_drawdown
    if not (math.isfinite(k) and 0.0 <= k <= ARRIVAL_DRAWDOWN_MAX):
        raise ValueError(
            f"--arrival-drawdown={k:g} is out of range; allowed [0, {ARRIVAL_DRAWDOWN_MAX:g}]"
        )
    return k


def _hf_path_max() -> float:
    from ..scenarios.processes import HF_PATH_MAX

    return HF_PATH_MAX


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from ..analytics import validation as V

    if args.draws < 2:
        raise ValueError(f"--draws={args.draws} is out of range; allowed >= 2 (the noise ceiling)")
    check_output_file(args.plot, "--plot", ".png")
    check_output_file(args.out_json, "--out-json")
    sets = parse_sets(args.sets)
    params = build_params(args.preset, sets)
    warmup_h = params.run.warmup_h if args.warmup_h is None else args.warmup_h
    if not (math.isfinite(warmup_h) and 0.0 <= warmup_h <= 24.0 * 60):
        raise ValueError(f"--warmup-h={warmup_h:g} is out of range; allowed [0, 1440]")
    arrival_drawdown = arrival_drawdown_value(args, params)
    if not (math.isfinite(args.hf_path) and 0.0 <= args.hf_path <= _hf_path_max()):
        raise ValueError(
            f"--hf-path={args.hf_path:g} is out of range; allowed [0, {_hf_path_max():g}]"
        )
    if args.protocol != "split":
        for flag, given in (
            ("--warmup-h", args.warmup_h),
            ("--arrival-drawdown", args.arrival_drawdown),
        ):
            if given is not None:
                raise ValueError(
                    f"{flag} is chosen per month by --protocol {args.protocol}; allowed only "
                    "with --protocol split"
                )
    quiet = args.json
    report = V.validate(
        params,
        warmup_h,
        draws=args.draws,
        positions=args.positions,
        seed=args.seed,
        progress=None if quiet else (lambda m: print(m, file=sys.stderr)),
        gas=args.gas,
        path=args.path,
        arrival_drawdown=arrival_drawdown,
        protocol=args.protocol,
        hf_path=args.hf_path,
    )
    report = {"preset": args.preset, "command": args.command_line, **report}
    checked("validate", report)
    if args.out_json:
        write_json(args.out_json, report)
    if args.plot:
        plot_validation(report, args.plot)
    if args.json:
        print_json(report)
        return 0
    print_report(report)
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def print_report(r: dict[str, Any]) -> None:
    print(
        f"preset {r['preset']}, warm-up {r['warmup_h']:g} h, {r['draws']} books of "
        f"{r['positions']} slots per day, book collateral ${r['book_collateral_usd'] / 1e6:,.0f}M, "
        f"gas {r['replay_gas']}, path {r['replay_path']}"
    )
    print(f"fit {r['fit_period']}, test {r['test_period']}")
    if r["protocol"] == "split":
        margin = f", arrivals' margin path elasticity {r['hf_path']:g}" if r["hf_path"] else ""
        print(f"protocol split, arrival drawdown elasticity {r['arrival_drawdown']:g}{margin}")
    else:
        print(
            f"protocol {r['protocol']}: each {'day' if 'day' in r['protocol'] else 'month'} "
            "replayed with the grid point that fits the other calibration days best "
            f"({r['grid_draws']} books of {r['grid_positions']} slots per grid point); the "
            "warm-up and scores below are that replay's"
        )
        by_point: dict[str, list[str]] = {}
        for h in r["held_out"]:
            vals = ", ".join(
                f"{k} {v:g}" for k, v in h.items() if k not in ("group", "held_out_loss")
            )
            by_point.setdefault(vals, []).append(h["group"])
        for vals, groups in by_point.items():
            shown = ", ".join(groups) if len(groups) <= 8 else f"{len(groups)} of them"
            print(f"  {vals}: {shown}")
        a = r["all_days_choice"]
        print("  all days: " + ", ".join(f"{k} {v:g}" for k, v in a.items()))
    print(
        f"{'date':<10} {'set':<4} {'fall':>5} {'real $M':>8} {'model $M':>9} {'fresh $M':>9} "
        f"{'real sh':>7} {'model sh':>8} {'log2':>6} {'accts':>5} {'top':>4} {'again':>5}"
    )
    for d in r["calibration_days"]:
        print(
            f"{d['date']:<10} {d['split']:<4} {d['fall_frac']:>5.1%} {d['real_usd'] / 1e6:>8.2f} "
            f"{d['model_usd'] / 1e6:>9.2f} {d['model_fresh_usd'] / 1e6:>9.2f} "
            f"{d['real_share']:>7.3f} {d['model_share']:>8.3f} {d['log2_ratio']:>6.2f} "
            f"{d['real_accounts']:>5} {d['real_top_account_share']:>4.0%} "
            f"{d['real_repeat_share']:>5.0%}"
        )
    a = r["largest_account"]
    print(
        "accts: Aave accounts liquidated that day; top: the largest one's share of the day's real "
        "volume; again: the share repaid by accounts liquidated on an earlier day. The test days' "
        f"largest account ({a['address'][:10]}...) repaid {a['volume_share']:.0%} of their real "
        f"volume, on {len(a['dates'])} of them: {', '.join(x[5:] for x in a['dates'])}"
    )
    print()
    print(
        f"{'scores':<14} {'days':>4} {'spearman':>8} {'within 2x':>9} {'rms log2':>8} {'timing':>7}"
    )
    rows = dict(r["scores"])
    rows["noise ceiling"] = {
        "days": rows["test"]["days"],
        **r["noise_ceiling"],
        "rms_log2": math.nan,
    }
    rows["events ceiling"] = {
        "days": rows["test"]["days"],
        **r["noise_ceiling_events"],
        "rms_log2": math.nan,
    }
    for name, s in rows.items():
        print(
            f"{name:<14} {s['days']:>4} {_fmt(s['spearman']):>8} {_fmt(s['within_2x_frac']):>9} "
            f"{_fmt(s['rms_log2']):>8} {_fmt(s['timing_corr']):>7}"
        )
    print()
    e = r["noise_ceiling_events"]
    print(
        "noise ceiling: the model against one draw of its own book; events ceiling: its expected "
        f"volumes against histories of Aave's own liquidations ({e['borrower_days']} borrower-days "
        f"of the test days, {e['sims']} draws)"
    )
    print(
        "big test days, hourly timing correlation: "
        + ", ".join(f"{b['date']} {_fmt(b['timing_corr'], 2)}" for b in r["big_days"])
    )


def plot_validation(r: dict[str, Any], path: str) -> None:
    """Real against model daily shares (log-log), and the hourly profiles of the big test days."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    days = r["calibration_days"]
    big = r["big_days"]
    fig, axes = plt.subplots(1, 1 + len(big), figsize=(4.2 * (1 + len(big)), 4.0))
    ax = axes[0]
    for split, color in (("fit", "tab:blue"), ("test", "tab:red")):
        xs = [max(d["real_share"], 1e-4) for d in days if d["split"] == split]
        ys = [max(d["model_share"], 1e-4) for d in days if d["split"] == split]
        ax.scatter(xs, ys, s=14, color=color, label=split)
    lim = [1e-4, 1.0]
    ax.plot(lim, lim, color="black", lw=0.8)
    ax.plot(lim, [2 * x for x in lim], color="grey", lw=0.6, ls="--")
    ax.plot(lim, [x / 2 for x in lim], color="grey", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("real share of the set's volume")
    ax.set_ylabel("model share")
    t = r["scores"]["test"]
    ax.set_title(
        f"test: Spearman {_fmt(t['spearman'], 2)}, within 2x {_fmt(t['within_2x_frac'], 2)}"
    )
    ax.legend()
    for ax, b in zip(axes[1:], big, strict=True):
        h = np.arange(24)
        real = np.array(b["real_hourly_usd"])
        model = np.array(b["model_hourly_usd"])
        ax.bar(h - 0.2, real / max(real.sum(), 1e-9), width=0.4, label="Aave v2")
        ax.bar(h + 0.2, model / max(model.sum(), 1e-9), width=0.4, label="model")
        ax.set_title(
            f"{b['date']}: \\${real.sum() / 1e6:.1f}M real, \\${model.sum() / 1e6:.1f}M model "
            f"(corr {_fmt(b['timing_corr'], 2)})",
            fontsize=9,
        )
        ax.set_xlabel("hour (UTC)")
        ax.set_ylabel("share of the day's volume")
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


__all__ = ["add_parser", "run", "write_json"]
