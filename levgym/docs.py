"""Generated blocks of the documentation site: tables from the registries and the CLI's ``--help``.

A page marks a block with ``<!-- gen:NAME -->`` ... ``<!-- /gen:NAME -->``; :func:`render` fills
it with :data:`BLOCKS` ``[NAME]()``. The MkDocs hook (``docs/hooks.py``) renders every page at
build time, so the site never carries a stale block. Blocks in :data:`COMMITTED` are also kept in
the Markdown files, so they read on GitHub too; ``python -m levgym.docs --write`` refreshes them
and ``--check`` (and a test) fails when one is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HELP_COLUMNS = 100
_BLOCK = re.compile(
    r"(?P<open><!-- gen:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(?P<close><!-- /gen:(?P=name) -->)",
    re.DOTALL,
)


def scenario_table() -> str:
    """Every registered scenario: name, kind, description, source."""
    from . import scenarios
    from .scenarios.docs import markdown_table

    del scenarios  # imported for its registrations
    return markdown_table()


def results_table() -> str:
    """Every declared result key with its unit, the outputs that emit it and its meaning."""
    from .results import markdown_table

    return markdown_table()


def state_schema_table() -> str:
    """Every field of the engine's state and drivers, from :mod:`levgym.engine.schema`."""
    from .engine.schema import DRIVER_SCHEMA, STATE_SCHEMA, markdown_table

    return (
        "State (`levgym.engine.schema.STATE_SCHEMA`; axes E env, N slot, W TWAP window):\n\n"
        + markdown_table(STATE_SCHEMA)
        + "\n\nDrivers (`DRIVER_SCHEMA`; axes S substep, E env):\n\n"
        + markdown_table(DRIVER_SCHEMA)
        + "\n"
    )


def steward_levers_table() -> str:
    """Governance-v1's steward schema: one row per lever (bounds, per-change limit, cool-down)."""
    from .envs.steward import steward_table

    return steward_table() + "\n"


def portfolio_levers_table() -> str:
    """PortfolioGovernance-v0's steward schema: per row group (reserves, E-mode categories) its
    levers (bounds, per-change limit, cool-down)."""
    from .envs.portfolio_governance import steward_rows_table

    return steward_rows_table() + "\n"


def regime_knobs_table() -> str:
    """The regime scenario's knobs and defaults (``regime_switching``)."""
    from .scenarios import get

    knobs = get("regime_switching").knobs
    lines = ["| knob | default |", "|---|---|"]
    lines += [
        f"| `{k}` | {v:g} |" if isinstance(v, float) else f"| `{k}` | {v} |"
        for k, v in knobs.items()
    ]
    return "\n".join(lines) + "\n"


def multiasset_scenario_table() -> str:
    """The named multi-asset scenarios (:data:`levgym.scenarios.multiasset.SCENARIOS`)."""
    from .scenarios.multiasset import SCENARIOS

    lines = ["| name | description |", "|---|---|"]
    lines += [f"| `{s.name}` | {s.description} |" for s in SCENARIOS.values()]
    return "\n".join(lines) + "\n"


def multiprotocol_scenario_table() -> str:
    """The scenarios that only the multi-protocol market takes
    (:data:`levgym.scenarios.multiprotocol.SCENARIOS` beyond the multi-asset ones)."""
    from .scenarios.multiasset import SCENARIOS as MULTIASSET
    from .scenarios.multiprotocol import SCENARIOS

    lines = ["| name | description |", "|---|---|"]
    lines += [
        f"| `{s.name}` | {s.description} |" for n, s in SCENARIOS.items() if n not in MULTIASSET
    ]
    return "\n".join(lines) + "\n"


def multiasset_fit_table() -> str:
    """The shipped multi-asset fit (``python -m levgym.scenarios.multiasset --summary``)."""
    from .scenarios.multiasset import fitted_params, summary

    return summary(fitted_params()) + "\n"


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    # argparse wraps help text to $COLUMNS; fix it so the page does not depend on the terminal
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def cli_reference() -> str:
    """``levgym --help`` and each command's ``--help``, one section per command."""
    from .cli import build_parser

    with _columns(HELP_COLUMNS):
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parts = ["## `levgym`", "", "```text", parser.format_help().rstrip(), "```"]
        for name, command in sub.choices.items():
            parts += ["", f"## `levgym {name}`", "", "```text", command.format_help().rstrip()]
            parts.append("```")
    return "\n".join(parts) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "scenario-table": scenario_table,
    "results-table": results_table,
    "cli-reference": cli_reference,
    "state-schema": state_schema_table,
    "steward-levers": steward_levers_table,
    "portfolio-levers": portfolio_levers_table,
    "regime-knobs": regime_knobs_table,
    "multiasset-scenarios": multiasset_scenario_table,
    "multiasset-fit": multiasset_fit_table,
    "multiprotocol-scenarios": multiprotocol_scenario_table,
}
# blocks whose generated text is also committed in the Markdown (checked by a test)
COMMITTED = frozenset(
    {
        "scenario-table",
        "results-table",
        "state-schema",
        "steward-levers",
        "portfolio-levers",
        "regime-knobs",
        "multiasset-scenarios",
        "multiasset-fit",
        "multiprotocol-scenarios",
    }
)


def blocks_in(text: str) -> list[str]:
    """The names of the generated blocks a page marks, in order."""
    return [m["name"] for m in _BLOCK.finditer(text)]


def render(text: str, names: frozenset[str] | None = None) -> str:
    """``text`` with every marked block (or those in ``names``) regenerated."""
    cache: dict[str, str] = {}

    def fill(m: re.Match[str]) -> str:
        name = m["name"]
        if names is not None and name not in names:
            return m[0]
        if name not in BLOCKS:
            raise ValueError(f"unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
        if name not in cache:
            cache[name] = BLOCKS[name]().rstrip("\n") + "\n"
        return m["open"] + cache[name] + m["close"]

    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m levgym.docs",
        description="Refresh (--write) or check (--check) the generated blocks committed in docs/.",
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs folder")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite stale blocks in place")
    mode.add_argument("--check", action="store_true", help="exit 1 when a block is stale")
    args = parser.parse_args(argv)
    stale = []
    for page in sorted(args.docs.rglob("*.md")):
        text = page.read_text()
        new = render(text, COMMITTED)
        if new != text:
            stale.append(page)
            if args.write:
                page.write_text(new)
    verb = "rewrote" if args.write else "stale"
    for page in stale:
        print(f"{verb}: {page}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
