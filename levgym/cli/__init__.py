"""The `levgym` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from .. import __version__
from .common import CliError, fail

# subcommand name -> module under levgym.cli
COMMANDS = {
    "simulate": "simulate",
    "scenarios": "scenarios",
    "train": "train",
    "evaluate": "evaluate",
    "benchmark": "benchmark",
    "stress": "stress",
    "bench": "bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="levgym",
        description="Leverage dynamics and liquidation cascades in DeFi lending: simulate, stress, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"levgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        mod = importlib.import_module(f".{module}", __name__)
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(raw)
    # the exact command, recorded by commands that write run folders and reports
    args.command_line = "levgym " + " ".join(shlex.quote(a) for a in raw)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, CliError, FileNotFoundError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt as exc:
        # training saves a checkpoint first and says where (agents.train.TrainingInterrupted)
        fail(str(exc) or "interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
