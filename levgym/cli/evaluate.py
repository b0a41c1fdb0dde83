"""`levgym evaluate`: a trained model or a baseline on the evaluation suite (held-out seeds)."""

from __future__ import annotations

import argparse

from ..results import checked
from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model or a baseline on a suite of scenarios")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--model",
        default=None,
        metavar="FILE",
        help="a trained model.zip or its run folder (its vecnormalize.json is used)",
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
        help="env id (default: the model's env from its config.yaml, else levgym/Governance-v0)",
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
        help="only these scenarios of the suite (repeatable)",
    )
    p.add_argument(
        "--price-csv",
        default=None,
        metavar="FILE",
        help="evaluate on a user's price path instead of the suite's scenarios",
    )
    p.add_argument("--time-column", default="time", help="time column of --price-csv")
    p.add_argument("--price-column", default="price", help="price column of --price-csv")
    p.add_argument(
        "--episodes", type=int, default=None, help="override the suite's episodes per scenario"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from agents.evaluate import evaluate, load_model_policy, load_suite, register_csv_scenario

    if args.trust_pickle and not args.model:
        raise ValueError("--trust-pickle is only used with --model")
    if args.env is None:
        args.env = _model_env(args.model) if args.model else None
        args.env = args.env or "levgym/Governance-v0"
    suite = load_suite(args.suite)
    suite.for_env(args.env)
    if args.episodes is not None:
        if args.episodes < 1:
            raise ValueError(f"--episodes={args.episodes} is out of range; allowed >= 1")
        suite = dataclasses.replace(suite, episodes=args.episodes)
    scenarios = args.scenario
    if args.price_csv:
        scenarios = [register_csv_scenario(args.price_csv, args.time_column, args.price_column)]
    elif scenarios:
        unknown = [s for s in scenarios if s not in suite.for_env(args.env).scenarios]
        if unknown:
            from levgym import scenarios as lib

            for s in unknown:
                lib.get(s)
    if args.model:
        policy = load_model_policy(args.model, args.env, trust_pickle=args.trust_pickle)
        who = args.model
    else:
        from agents.baselines import make_baseline

        policy = make_baseline(args.baseline, args.env, seed=args.seed)
        who = f"baseline:{args.baseline}"
    try:
        result = evaluate(policy, args.env, suite, scenarios=scenarios, progress=not args.json)
    finally:
        if args.price_csv:  # the CSV scenario lives for this command only
            from levgym.scenarios.base import unregister

            unregister(scenarios[0])
    result["policy"] = who
    checked("evaluate", result)
    if args.json:
        print_json(result)
        return 0
    print(
        f"{who} on {args.env}, suite {suite.name}: {suite.episodes} episodes per scenario, seeds from {suite.seed}"
    )
    from agents.reporting import RATE_METRICS, mean_ci, return_unit

    print(f"  (return in {return_unit(args.env, suite.for_env(args.env).env_kwargs)})")
    for scenario, metrics in result["scenarios"].items():
        cells = [
            f"{name} {mean_ci(v['mean'], v['ci95'], rate=name in RATE_METRICS)}"
            for name, v in metrics.items()
        ]
        print(f"  {scenario}: " + "; ".join(cells))
    return 0


def _model_env(model: str) -> str | None:
    """The env id in the run's config.yaml beside ``model`` (a model.zip or its run folder)."""
    from pathlib import Path

    from agents.train import _find_config

    path = Path(model)
    cfg = _find_config(path / "model.zip" if path.is_dir() else path)
    env = (cfg or {}).get("env_id")
    return env if isinstance(env, str) else None
