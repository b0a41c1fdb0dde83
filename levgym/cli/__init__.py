"""The `levgym` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from .common import CliError, fail

# subcommand name -> module under levgym.cli
COMMANDS = {
    "simulate": "simulate",
    "scenarios": "scenarios",
    "demo": "demo",
    "stress": "stress",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="levgym",
        description="Leverage dynamics and liquidation cascades in DeFi lending: simulate, stress, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"levgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f".{module}", __name__)
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, CliError, FileNotFoundError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
