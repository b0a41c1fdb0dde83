"""The ``--ray`` options shared by `stress`, `benchmark` and `sweep`, and the executor they make."""

from __future__ import annotations

import argparse
from typing import Any

from ..distributed import RaySettings, check_address, import_ray
from .common import CliError


def add_ray_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--ray [ADDRESS]``, ``--ray-workers``, ``--ray-threads``, ``--ray-retries``."""
    from .common import count

    g = parser.add_argument_group(
        "Ray (optional extra: pip install 'levgym[ray]'; see docs/ray.md)"
    )
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help=f"run {what} as Ray tasks: no ADDRESS starts Ray on this machine; `auto` or "
        "`ray://HOST:PORT` joins a cluster (results equal the run without Ray)",
    )
    g.add_argument(
        "--ray-workers",
        type=count,
        default=None,
        metavar="N",
        help="Ray workers (default: cores / --ray-threads here, or the cluster's CPUs)",
    )
    g.add_argument(
        "--ray-threads",
        type=count,
        default=1,
        metavar="N",
        help="threads per Ray worker (numba, torch, OpenMP)",
    )
    g.add_argument(
        "--ray-retries",
        type=int,
        default=2,
        metavar="N",
        help="resubmissions of a failed Ray task before the run fails",
    )


def ray_settings(args: argparse.Namespace) -> RaySettings | None:
    """The settings of ``--ray`` (None without it), checked up front: a bad value, Ray-only
    options without ``--ray``, or Ray not installed is one line and exit status 2."""
    if args.ray is None:
        for flag, value, default in (
            ("--ray-workers", args.ray_workers, None),
            ("--ray-threads", args.ray_threads, 1),
            ("--ray-retries", args.ray_retries, 2),
        ):
            if value != default:
                raise CliError(f"{flag} {value} has no effect without --ray; allowed with --ray")
        return None
    check_address(args.ray)
    settings = RaySettings(args.ray, args.ray_workers, args.ray_threads, args.ray_retries)
    import_ray()
    return settings


def describe(executor: Any) -> str:
    """How the work ran, for reports: ``ray (2 workers x 1 thread, local)`` or ``this process``."""
    if executor is None:
        return "this process"
    s = executor.settings
    where = "local" if not s.remote else s.address
    return f"ray ({executor.workers} workers x {s.threads} thread(s), {where})"


def start_executor(settings: RaySettings | None) -> Any:
    """A started :class:`levgym.distributed.RayExecutor` for ``settings``, or ``None`` (no
    ``--ray``: the work runs in this process). The caller closes it."""
    if settings is None:
        return None
    from ..distributed import RayExecutor

    executor = RayExecutor(settings)
    executor.start()
    return executor


def warn_few_paths(bar: Any, paths: int) -> None:
    """A stress run's warning when its 99% quantiles rest on less than one tail path."""
    if paths < 100:
        bar.warn(
            f"--paths={paths}: the 99% quantiles rest on fewer than one tail path; use >= 1000"
        )
