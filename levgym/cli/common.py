"""Shared pieces of the CLI: parameter overrides, scenario drivers, errors and output."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from ..engine.params import EngineParams, closest_hint, override_many, preset_params
from ..io import finite_json

SECTIONS = ("protocol", "market", "borrowers", "run", "scenario")


class CliError(Exception):
    """An error shown to the user as one line, exit status 2."""


def parse_sets(items: list[str] | None) -> dict[str, dict[str, str]]:
    """``["protocol.ltv=0.8", ...]`` -> ``{"protocol": {"ltv": "0.8"}, ...}``."""
    out: dict[str, dict[str, str]] = {s: {} for s in SECTIONS}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r} is malformed; allowed section.key=value")
        lhs, value = item.split("=", 1)
        if "." not in lhs:
            raise ValueError(f"--set {item!r} is malformed; allowed section.key=value")
        section, key = lhs.split(".", 1)
        if section not in SECTIONS:
            raise ValueError(
                f"unknown section {section!r}{closest_hint(section, SECTIONS)} in --set {item}; "
                f"allowed {', '.join(SECTIONS)}"
            )
        out[section][key] = value
    return out


def build_params(preset_name: str | None, sets: dict[str, dict[str, str]]) -> EngineParams:
    """Engine parameters from a protocol preset and ``--set`` overrides (validated).

    All keys of a section are applied together and the section is validated once, so that keys
    checked against each other (``protocol.ltv`` and ``protocol.liquidation_threshold``) may be
    given in any order."""
    params = preset_params(preset_name or "aave_v3_weth")
    parts = {
        "protocol": params.protocol,
        "market": params.market,
        "borrowers": params.borrowers,
        "run": params.run,
    }
    for section, obj in parts.items():
        pending = sets.get(section, {})
        if pending:
            parts[section] = override_many(obj, section, pending)
    return EngineParams(**parts)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a parameter (sections: protocol, market, borrowers, run, scenario); repeatable",
    )


def add_book_arguments(parser: argparse.ArgumentParser) -> None:
    """``--book-csv`` and ``--warmup-h`` (simulate, stress)."""
    parser.add_argument(
        "--book-csv",
        default=None,
        metavar="FILE",
        help="load the positions from a CSV (columns collateral_asset, debt_usd, optional "
        "behaviour: passive, defensive, looper) instead of drawing a book; every env holds it. "
        "With --preset aave_v3_ethereum: collateral_<SYM>, debt_<SYM>, optional emode, behaviour "
        "(passive, topup, repay), see docs/cross-margin.md",
    )
    parser.add_argument(
        "--warmup-h",
        type=float,
        default=None,
        metavar="H",
        help="hours the book lives before t = 0 (a --price-csv's earlier rows, else a calm "
        "burn-in); default the preset's run.warmup_h (aave_v2_weth: fitted, others 0)",
    )


def apply_warmup(params: EngineParams, warmup_h: float | None) -> EngineParams:
    """``params`` with ``run.warmup_h`` from ``--warmup-h`` (when given), validated."""
    if warmup_h is None:
        return params
    if not math.isfinite(warmup_h) or not 0.0 <= warmup_h <= 1440.0:
        raise ValueError(f"--warmup-h={warmup_h:g} is out of range; allowed [0, 1440]")
    run = override_many(params.run, "run", {"warmup_h": repr(float(warmup_h))})
    return EngineParams(params.protocol, params.market, params.borrowers, run)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="numpy",
        choices=["numpy", "torch", "numba"],
        help="array backend (numba: the fused CPU kernel on numpy arrays)",
    )
    parser.add_argument(
        "--dtype", default="float64", choices=["float64", "float32"], help="float precision"
    )
    parser.add_argument(
        "--device", default=None, help="torch device (cpu, cuda); torch backend only"
    )


def command_tail(args: Any) -> list[str]:
    """The end of a multi-asset or multi-protocol stress's canonical command: its ``--set``
    items, ``--out`` and ``--json``."""
    parts: list[str] = []
    for item in args.sets:
        parts += ["--set", item]
    if args.out:
        parts += ["--out", args.out]
    if args.json:
        parts.append("--json")
    return parts


def finish_stress(
    summary: dict[str, Any], out: Path, files: dict[str, str], args: Any, t0: float,
    print_text: Any,
) -> int:  # fmt: skip
    """The end of a multi-asset or multi-protocol stress: wall time, folder and files into
    ``summary``, ``summary.json`` written (its keys checked against the output contract), the
    summary printed (``--json``) or ``print_text(summary)``; returns the exit status 0."""
    import time

    from ..io import write_json
    from ..results import checked

    summary["wall_time_s"] = time.perf_counter() - t0
    summary["out_dir"] = str(out)
    summary["files"] = files
    write_json(out / "summary.json", checked("stress", summary))
    if args.json:
        print_json(summary)
    else:
        print_text(summary)
    return 0


def print_json(obj: Any) -> None:
    """One JSON document on stdout; never NaN or Infinity (see :func:`finite_json`)."""
    print(json.dumps(finite_json(obj), indent=2, allow_nan=False))


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def count(text: str) -> int:
    """A whole number for a size flag: ``2000``, ``2_000``, ``1e6`` or ``2.0`` (not ``1.5``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 2000 or 1e6)")
    return int(value)


def seed_value(text: str) -> int:
    """A seed: a whole number >= 0 (``1e6`` notation allowed, as for counts)."""
    value = count(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; allowed a whole number >= 0")
    return value


COUNT_HELP = "whole numbers accept 1e6 and 1_000_000"


def add_yes_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes",
        action="store_true",
        help="start a run estimated to take more than an hour (otherwise refused with the estimate)",
    )


def check_input_file(path: str | None, flag: str, what: str = "a file") -> None:
    """Refuse a missing path, a folder or an unreadable file given to ``flag``."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise CliError(f"{flag} {path!r} does not exist; allowed {what}")
    if p.is_dir():
        raise CliError(f"{flag} {path!r} is a folder; allowed {what}")
    if not os.access(p, os.R_OK):
        raise CliError(f"{flag} {path!r} is not readable; allowed {what}")


def _writable_parent(p: Path) -> Path | None:
    """The nearest existing ancestor of ``p`` when it is a writable folder, else None."""
    q = p.absolute()
    while not q.exists():
        if q.parent == q:
            return None
        q = q.parent
    if not q.is_dir():
        return None
    try:  # a real probe: permissions bits say nothing for root or read-only mounts
        with tempfile.TemporaryFile(dir=q):
            pass
    except OSError:
        return None
    return q


def check_output_dir(path: str | os.PathLike | None, flag: str) -> None:
    """Refuse an output folder that is a file, or that cannot be created or written."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f"{flag} {str(path)!r} is a file; allowed a folder (new or writable)")
    if p.is_dir():
        if _writable_parent(p) is None:
            raise CliError(f"{flag} {str(path)!r} is not writable; allowed a writable folder")
        return
    if _writable_parent(p) is None:
        raise CliError(
            f"{flag} {str(path)!r} cannot be created (a parent is a file or not writable); "
            "allowed a folder that can be created"
        )


def check_output_file(path: str | None, flag: str, suffix: str | None = None) -> None:
    """Refuse an output file that is a folder, has the wrong suffix or cannot be written."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise CliError(f"{flag} {path!r} is a folder; allowed a file path")
    if suffix and p.suffix.lower() != suffix:
        raise CliError(f"{flag} {path!r} does not end in {suffix}; allowed a {suffix} file path")
    if p.exists() and not os.access(p, os.W_OK):
        raise CliError(f"{flag} {path!r} is not writable; allowed a writable file path")
    if _writable_parent(p.parent) is None:
        raise CliError(
            f"{flag} {path!r}: its folder cannot be created or written; allowed a writable file path"
        )


def check_device(backend: str, device: str | None) -> None:
    """``--device`` goes with ``--backend torch`` only, and ``cuda`` needs a CUDA GPU."""
    if device is None:
        return
    if backend != "torch":
        raise CliError(
            f"--device {device} has no effect with --backend {backend}; allowed with --backend torch only"
        )
    if device.startswith("cuda"):
        try:
            import torch
        except ImportError:
            raise CliError(f"--device {device} needs torch, which is not installed") from None
        if not torch.cuda.is_available():
            raise CliError(
                f"--device {device}: no CUDA GPU is available on this machine; allowed cpu"
            )
    elif device not in ("cpu", "mps"):
        raise CliError(f"--device {device!r} is unknown; allowed cpu, cuda, cuda:N")


def fail(message: str) -> int:
    """Print ``message`` as one line on stderr; return exit status 2."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"levgym: error: {text}", file=sys.stderr)
    return 2


def add_csv_arguments(parser: argparse.ArgumentParser, help_csv: str) -> None:
    """``--price-csv FILE`` and the flags that say how to read it."""
    parser.add_argument("--price-csv", default=None, metavar="FILE", help=help_csv)
    parser.add_argument(
        "--time-column",
        default=None,
        metavar="NAME",
        help="time column of --price-csv (default: detected, e.g. time, timestamp, date, unix)",
    )
    parser.add_argument(
        "--price-column",
        default=None,
        metavar="NAME",
        help="price column of --price-csv (default: detected, e.g. price, close, *_price)",
    )
    parser.add_argument(
        "--allow-gaps",
        action="store_true",
        help="--price-csv: interpolate across gaps longer than 24 x the median row spacing "
        "(default: such a gap is an error)",
    )
    parser.add_argument(
        "--csv-group",
        default=None,
        metavar="VALUE",
        help="--price-csv: the series to read from a file with an event/scenario/symbol column "
        "(default: the first)",
    )


def read_csv_table(args: argparse.Namespace) -> Any:
    """The validated :class:`~levgym.scenarios.csv_replay.PriceTable` of ``--price-csv`` (or None);
    the CSV-only flags without ``--price-csv`` are refused rather than ignored."""
    if not args.price_csv:
        for flag, value in (
            ("--time-column", args.time_column),
            ("--price-column", args.price_column),
            ("--allow-gaps", args.allow_gaps or None),
            ("--csv-group", args.csv_group),
        ):
            if value is not None:
                raise CliError(
                    f"{flag} has no effect without --price-csv; allowed with --price-csv"
                )
        return None
    from ..scenarios.csv_replay import read_price_table

    return read_price_table(
        args.price_csv, args.time_column, args.price_column, args.allow_gaps, args.csv_group
    )


def note(message: str) -> None:
    print(f"levgym: {message}", file=sys.stderr)


def check_env_id(env_id: str, flag: str = "--env") -> str:
    """``env_id`` when it is a levgym env id; else one line with the closest and the allowed."""
    from ..envs.registration import ENV_SPECS

    if env_id not in ENV_SPECS:
        raise CliError(
            f"{flag} {env_id!r} is unknown{closest_hint(env_id, ENV_SPECS)}; "
            f"allowed {', '.join(ENV_SPECS)}"
        )
    return env_id


def refuse_with_preset(preset: str, flags: Any, args: Any, context: str | None = None) -> None:
    """One line for the first of ``flags`` (``(flag, value)`` pairs) given with ``--preset
    preset`` (or ``context``, e.g. ``"--protocols"``), and for a backend other than numpy
    float64: what the multi-asset preset (or the multi-protocol market) does not take yet. The
    single-asset ``--price-csv`` column flags are refused too (the preset's file names its
    columns by symbol)."""
    where = context or f"--preset {preset}"
    flags = [
        *flags,
        ("--time-column", getattr(args, "time_column", None)),
        ("--price-column", getattr(args, "price_column", None)),
        ("--csv-group", getattr(args, "csv_group", None)),
    ]
    for flag, value in flags:
        if value:
            raise CliError(f"{flag} is not supported with {where} yet; allowed without it")
    if args.backend != "numpy" or args.dtype != "float64" or args.device:
        raise CliError(
            f"--backend {args.backend} --dtype {args.dtype} is not supported with {where}; "
            "allowed the default (numpy float64, keeper pass compiled by numba)"
        )


def preset_price_table(args: Any, rows: int, what: str) -> Any:
    """The multi-asset preset's ``--price-csv`` (``timestamp,WETH,WBTC,...``) read and checked
    against the run before any work (:func:`levgym.simulation_portfolio.check_price_table`): a
    :class:`~levgym.scenarios.multiasset.MultiAssetTable`, or None without ``--price-csv``.
    ``rows`` is the hourly rows the run needs and ``what`` the flag that sets them. Also checks
    ``--scenario`` (a multi-asset scenario)."""
    from ..scenarios.multiasset import get_scenario, read_multiasset_csv
    from ..simulation_portfolio import check_price_table

    if args.scenario:
        get_scenario(args.scenario)  # a one-line error naming the multi-asset scenarios
    if not args.price_csv:
        if args.allow_gaps:
            raise CliError(
                "--allow-gaps has no effect without --price-csv; allowed with --price-csv"
            )
        return None
    check_input_file(args.price_csv, "--price-csv", "a CSV file (timestamp,WETH,WBTC,...)")
    table = read_multiasset_csv(args.price_csv, allow_gaps=args.allow_gaps)
    check_price_table(table, args.scenario, rows, f"--price-csv {args.price_csv!r}", what)
    return table


def preset_book(args: Any, price_table: Any) -> Any:
    """The multi-asset preset's ``--book-csv`` read and checked (every row's rules, then HF >= 1
    at the run's start oracle) before any work: a
    :class:`~levgym.scenarios.portfolio_book_csv.PortfolioBookTable`, or None."""
    if not args.book_csv:
        return None
    from ..engine.aave_v3_ethereum import aave_v3_ethereum_reserves
    from ..scenarios.portfolio_book_csv import check_book, read_portfolio_book_csv
    from ..simulation_portfolio import start_oracle

    check_input_file(args.book_csv, "--book-csv", "a CSV file (collateral_WETH,debt_USDC,...)")
    reserves = aave_v3_ethereum_reserves()
    book = read_portfolio_book_csv(args.book_csv, reserves)
    check_book(book, reserves, start_oracle(args.scenario, args.seed, price_table))
    return book
