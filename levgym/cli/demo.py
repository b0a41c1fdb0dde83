"""`levgym demo`: the main job on its embedded default (what `make demo` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import scenarios
from ..engine.params import EngineParams
from ..io import write_json
from ..simulation import simulate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on its embedded default (writes under runs/)")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    params = EngineParams()
    steps, envs, positions, seed = 24, 64, 512, 0
    drivers = scenarios.get("shock").drivers(envs, steps * params.run.substeps_per_step, params, seed, {"drop_frac": "0.4"})
    result = simulate(drivers, params, positions, seed, steps, scenario="shock(drop_frac=0.4)")
    from ..plots import plot_simulation

    write_json(out / "stress.json", result.summary)
    plot_simulation(result, out / "stress.png", title="shock, drop 40%, 64 markets x 512 positions")
    print(f"wrote {out / 'stress.json'} and {out / 'stress.png'}")
    return 0
