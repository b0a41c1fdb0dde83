"""Shared pieces of the CLI: parameter overrides, scenario drivers, errors and output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..engine.params import EngineParams, override, preset

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
                f"unknown section {section!r} in --set {item}; allowed {', '.join(SECTIONS)}"
            )
        out[section][key] = value
    return out


def build_params(preset_name: str | None, sets: dict[str, dict[str, str]]) -> EngineParams:
    """Engine parameters from a protocol preset and ``--set`` overrides (validated)."""
    protocol = preset(preset_name or "aave_v3_weth")
    params = EngineParams(protocol=protocol)
    parts = {
        "protocol": params.protocol,
        "market": params.market,
        "borrowers": params.borrowers,
        "run": params.run,
    }
    for section in ("protocol", "market", "borrowers", "run"):
        obj = parts[section]
        pending = sets.get(section, {})
        if not pending:
            continue
        # apply all at once so that e.g. ltv and liquidation_threshold may move together
        import dataclasses

        values = {}
        for key, raw in pending.items():
            values[key] = getattr(override(obj, section, key, raw), key)
        parts[section] = dataclasses.replace(obj, **values)
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


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=_clean))


def _clean(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def fail(message: str) -> int:
    print(f"levgym: error: {message}", file=sys.stderr)
    return 2
