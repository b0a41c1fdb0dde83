"""The `levgym` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from .. import __version__
from ..distributed.executor import DistributedError
from .common import CliError, Parser, fail

# subcommand name -> module under levgym.cli
COMMANDS = {
    "simulate": "simulate",
    "scenarios": "scenarios",
    "train": "train",
    "evaluate": "evaluate",
    "benchmark": "benchmark",
    "stress": "stress",
    "bench": "bench",
    "sweep": "sweep",
    "validate": "validate",
    "calibrate": "calibrate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`levgym scenarios --json | head`): stop quietly, as Unix tools do
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured by tests)
        pass


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(raw)
    # the exact command, recorded by commands that write run folders and reports
    args.command_line = "levgym " + " ".join(shlex.quote(a) for a in raw)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        rc = int(args.run(args) or 0)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        raise
    except (ValueError, CliError, FileNotFoundError, DistributedError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt as exc:
        # training saves a checkpoint first and says where (agents.train.TrainingInterrupted)
        fail(str(exc) or "interrupted")
        return 130
    except OSError as exc:  # e.g. a disk that filled up or a folder made read-only mid-run
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")
    except MemoryError:
        return fail("out of memory; allowed a smaller run (fewer envs, positions, steps or paths)")


if __name__ == "__main__":
    sys.exit(main())
