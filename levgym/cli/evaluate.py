"""`levgym evaluate`: a trained model or a baseline on the evaluation suite (held-out seeds)."""

from __future__ import annotations

import argparse

from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model or a baseline on a suite of scenarios")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--model",
        default=None,
        metavar="FILE",
        help="a trained model.zip (its vecnormalize.pkl is used)",
    )
    who.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help="a rule-based baseline (static, steward, greedy, ...)",
    )
    p.add_argument("--env", default="levgym/Governance-v0", help="env id")
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
        policy = load_model_policy(args.model)
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
