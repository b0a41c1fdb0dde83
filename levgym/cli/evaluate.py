"""`levgym evaluate`: a trained model or a baseline on the evaluation suite (held-out seeds)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import scenarios as lib
from ..engine.params import closest_hint
from ..results import checked
from .common import (
    COUNT_HELP,
    CliError,
    add_csv_arguments,
    check_env_id,
    check_input_file,
    count,
    note,
    print_json,
    read_csv_table,
    seed_value,
)

DEFAULT_ENV = "levgym/Governance-v0"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model or a baseline on a suite of scenarios")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--model",
        default=None,
        metavar="FILE|RUN_DIR",
        help="a trained model.zip (its vecnormalize.json is used), or a run folder holding one",
    )
    who.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help="a rule-based baseline (static, steward, greedy, ...)",
    )
    p.add_argument(
        "--env",
        default=None,
        help=f"env id (default: the model's, read from its run's config.yaml; else {DEFAULT_ENV})",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --model: "
        + "load files that need unpickling (models or statistics from older levgym versions); unpickling runs code from the file, so only for files you trust",
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="FILE",
        help="suite YAML (default: the shipped levgym/configs/suites/default.yaml)",
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="NAME",
        help="only these scenarios of the suite (repeatable); with --price-csv, each one's "
        "liquidity, gas and oracle paths under the CSV's prices",
    )
    add_csv_arguments(p, "evaluate on a user's price path instead of the suite's scenarios")
    p.add_argument(
        "--episodes",
        type=count,
        default=None,
        help=f"override the suite's episodes per scenario ({COUNT_HELP})",
    )
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the random baseline")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def resolve_model(model: str, env: str | None) -> tuple[Path, str | None]:
    """(model.zip, env id): ``model`` may be the file or a run folder holding it; the env id is
    ``env``, else the run's ``config.yaml`` ``env_id``. A mismatch between the two is refused."""
    path = Path(model)
    allowed = "allowed a model.zip or a run folder holding one"
    if not path.exists():
        raise CliError(f"--model {model!r} does not exist; {allowed}")
    if path.is_dir():
        if not (path / "model.zip").is_file():
            raise CliError(f"--model {model!r} is a folder without model.zip; {allowed}")
        path = path / "model.zip"
    trained_on = None
    cfg = path.parent / "config.yaml"
    if cfg.is_file():
        import yaml

        try:
            data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("env_id"), str):
            trained_on = data["env_id"]
    if env is not None and trained_on is not None and env != trained_on:
        raise CliError(
            f"--env {env} differs from the env the model was trained on ({trained_on}, in {cfg}); "
            f"allowed --env {trained_on} or no --env"
        )
    return path, env or trained_on


def _register_csv(args: argparse.Namespace, table, bases: list[str] | None) -> list[str]:
    """Register ``--price-csv`` (over each scenario of ``bases``, if any) for this command."""
    from ..scenarios.base import Scenario, register
    from ..scenarios.csv_replay import drivers_from_csv, over_scenario

    path = args.price_csv
    names = []
    for base_name in bases or [None]:
        base = lib.get(base_name) if base_name else None

        def build(knobs, ctx, base=base):
            replay = drivers_from_csv(
                path, ctx.num_envs, ctx.num_substeps, ctx.params, overrides=knobs, table=table
            )
            if base is None:
                return replay
            return over_scenario(base.build(base.resolve_knobs(None), ctx), replay)

        name = f"csv:{path}" if base is None else f"{base.name}+csv:{path}"
        if name not in lib.names():
            register(
                Scenario(
                    name=name,
                    kind="replay",
                    description=f"user price path {path}",
                    source=path,
                    build=build,
                    # an episode longer than the file holds its last price
                    knobs={"hold_last": True},
                )
            )
        names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from agents.evaluate import MULTIASSET_ENVS, evaluate, load_model_policy, load_suite

    from . import sizing

    if args.trust_pickle and not args.model:
        raise CliError("--trust-pickle is only used with --model")
    env = args.env
    if args.model:
        model_path, env = resolve_model(args.model, env)
    env = check_env_id(env or DEFAULT_ENV)
    if args.baseline:
        from agents.baselines import BASELINES, teacher_names

        names = [*BASELINES[env], *teacher_names(env)]
        if args.baseline not in names:
            raise CliError(
                f"--baseline {args.baseline!r} is unknown for {env}"
                f"{closest_hint(args.baseline, names)}; allowed {', '.join(names)}"
            )
    check_input_file(args.suite, "--suite", "a suite YAML file")
    if args.episodes is not None and args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes} is out of range; allowed >= 1")
    suite = load_suite(args.suite)
    entry = suite.for_env(env)
    if args.episodes is not None:
        suite = dataclasses.replace(suite, episodes=args.episodes)
    sizing.check_env_kwargs(
        "--episodes" if args.episodes is not None else f"suite {suite.name} episodes",
        env,
        suite.episodes,
        entry.env_kwargs,
    )
    if env in MULTIASSET_ENVS:
        if args.price_csv:
            raise CliError(
                f"--price-csv is not supported with --env {env} (its scenarios are multi-asset "
                "ones); allowed --scenario with the names of levgym.scenarios.multiasset"
            )
        from ..scenarios.multiasset import get_scenario as multiasset_scenario

        for s in args.scenario or []:
            multiasset_scenario(s)  # unknown names fail here with the allowed
    else:
        for s in args.scenario or []:
            if s not in entry.scenarios:
                lib.get(s)  # unknown names fail here with the closest and the allowed
    table = read_csv_table(args)
    scenarios = args.scenario
    registered: list[str] = []
    if table is not None:
        scenarios = registered = _register_csv(args, table, args.scenario)
    if args.model:
        policy = load_model_policy(model_path, env, trust_pickle=args.trust_pickle)
        who = str(model_path)
    else:
        from agents.baselines import make_baseline

        policy = make_baseline(args.baseline, env, seed=args.seed)
        who = f"baseline:{args.baseline}"
    try:
        result = evaluate(policy, env, suite, scenarios=scenarios, progress=not args.json)
    finally:
        from levgym.scenarios.base import unregister

        for name in registered:  # the CSV scenarios live for this command only
            unregister(name)
    result["policy"] = who
    checked("evaluate", result)
    if table is not None:
        note(table.describe(args.price_csv))
    if args.json:
        print_json(result)
        return 0
    print(
        f"{who} on {env}, suite {suite.name}: {suite.episodes} episodes per scenario, seeds from {suite.seed}"
    )
    from agents.reporting import RATE_METRICS, mean_ci, return_unit

    print(f"  (return in {return_unit(env, entry.env_kwargs)})")
    for scenario, metrics in result["scenarios"].items():
        cells = [
            f"{name} {mean_ci(v['mean'], v['ci95'], rate=name in RATE_METRICS)}"
            for name, v in metrics.items()
        ]
        print(f"  {scenario}: " + "; ".join(cells))
    return 0
