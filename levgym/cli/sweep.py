"""`levgym sweep`: trials of `levgym train` (seeds x a hyperparameter grid or random draws, from a
YAML file) as Ray Tune trials, with a results table over seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CliError, check_input_file, check_output_dir
from .raycli import add_ray_arguments


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train seeds x hyperparameters as Ray Tune trials (each a `levgym train` run folder)",
        description=(
            "Run the trials of a sweep file (seeds x a hyperparameter grid, or seeded random draws) "
            "as Ray Tune trials. Each trial writes a `levgym train` run folder under "
            "OUT/trials/ (its command.txt reproduces it standalone); OUT/results.md, "
            "results.json and results.csv hold the mean and 95%% interval over seeds per "
            "configuration. Rerun the same command to resume: finished trials are read back. "
            "The file's keys: docs/ray.md; a sample: levgym/configs/sweeps/ppo_governance_lr.yaml. "
            "Needs Ray: pip install 'levgym[ray]'."
        ),
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="the sweep file")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="sweep folder (default runs/sweep/<env>__<algo>__<time>); rerun into it to resume",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_ray_arguments(p, "the trials (without --ray, Ray starts on this machine)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from agents.sweep import load_sweep, resolved_configs, run_sweep

    from .. import naming
    from ..distributed import RaySettings, check_address, import_ray
    from .train import validate_config

    check_input_file(args.config, "CONFIG", "a YAML file")
    spec = load_sweep(args.config)
    for label, config in resolved_configs(spec):
        try:
            validate_config(spec.env, spec.algo, config)
        except CliError as exc:
            raise CliError(f"sweep file {args.config!r}, configuration {label}: {exc}") from None
    check_output_dir(args.out, "--out")
    check_address(args.ray)
    settings = RaySettings(
        None if args.ray in (None, "local") else args.ray,
        args.ray_workers,
        args.ray_threads,
        args.ray_retries,
    )
    import_ray()
    out = (
        Path(args.out)
        if args.out
        else naming.new_run_dir("sweep", naming.env_part(spec.env), spec.algo)
    )
    folder = run_sweep(
        spec, out, settings, progress=not args.no_progress, command=args.command_line
    )
    print((folder / "results.md").read_text(), end="")
    print(f"results: {folder / 'results.md'}, results.json, results.csv")
    return 0
