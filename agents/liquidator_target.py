"""The liquidator's target of issue 14: a trained liquidator beats ``greedy_hedged`` on PnL at
equal or lower drawdown on ``gbm_high_vol`` and ``merton_crash``, significantly.

Verdict, per scenario, on the suite's held-out episodes (common random numbers: the same paths
for both policies, episode ``i`` seeded ``suite.seed + i``):

- PnL: the per-episode difference ``pnl_usd(model) - pnl_usd(greedy_hedged)``, its mean with a
  95% bootstrap interval and the two-sided Wilcoxon signed-rank p-value
  (:func:`agents.stats.paired`), Holm-corrected over the scenarios together;
- drawdown: the mean of ``max_drawdown_usd`` of each policy (and, for information, the paired
  p-value of its differences, uncorrected).

A scenario meets the target when the PnL difference is positive with ``p_holm < alpha`` and the
model's mean drawdown is at most ``greedy_hedged``'s; the target is met when every scenario
meets it. Run ``python -m agents.liquidator_target MODEL...`` (model files or run folders) to
evaluate saved models on the default suite.

The env is the one each model was trained on (its run folder's ``config.yaml`` ``env_id``;
``levgym/Liquidator-v1`` when there is none): a ``levgym/Liquidator-v2`` model is evaluated on
v2, with the suite's Liquidator-v1 scenarios, ``env_kwargs`` and seeds (the suite's fallback,
:data:`agents.evaluate.SUITE_FALLBACK`), against ``greedy_hedged`` on v2 too (the same rule:
a short of the inventory still held after the step's sale).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .stats import ALPHA, holm, paired

ENV_ID = "levgym/Liquidator-v1"
BASELINE = "greedy_hedged"
SCENARIOS = ("gbm_high_vol", "merton_crash")
"""The scenarios of the target (both in the default suite's Liquidator-v1 block)."""


def target_verdict(
    model: Mapping[str, Mapping[str, Sequence[float]]],
    baseline: Mapping[str, Mapping[str, Sequence[float]]],
    scenarios: Sequence[str] = SCENARIOS,
    alpha: float = ALPHA,
    seed: int = 0,
) -> dict[str, Any]:
    """The target's verdict from per-episode values (``evaluate(..., keep_episodes=True)``'s
    ``episode_values``: scenario -> metric -> list over the same episodes for both policies).

    Returns ``{"baseline", "target_met", "target_scenarios": {name: record}}`` (result keys of
    levgym.results); each record has ``n``, the mean ``pnl_usd`` and ``baseline_pnl_usd``, the
    paired ``pnl_diff_usd`` with its 95% bootstrap interval ``pnl_diff_ci95_usd``, the Wilcoxon
    ``pnl_p_value`` and ``pnl_p_holm`` (Holm over the scenarios), the mean
    ``max_drawdown_usd`` and ``baseline_max_drawdown_usd``, ``drawdown_p_value`` (paired,
    uncorrected, for information), ``pnl_better``, ``drawdown_ok`` and ``target_met``."""
    if not scenarios:
        raise ValueError("scenarios is empty; allowed one or more scenario names")
    for name in scenarios:
        for side, values in (("model", model), ("baseline", baseline)):
            if name not in values:
                raise ValueError(
                    f"scenario {name!r} is missing from the {side}'s episode values; "
                    f"allowed {', '.join(values) or 'none'}"
                )
    records: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(scenarios):
        m, b = model[name], baseline[name]
        pnl = paired(m["pnl_usd"], b["pnl_usd"], seed=seed + 17 * k)
        dd_m = np.asarray(m["max_drawdown_usd"], dtype=np.float64)
        dd_b = np.asarray(b["max_drawdown_usd"], dtype=np.float64)
        records[name] = {
            "n": pnl["n"],
            "pnl_usd": float(np.mean(m["pnl_usd"])),
            "baseline_pnl_usd": float(np.mean(b["pnl_usd"])),
            "pnl_diff_usd": pnl["mean_diff"],
            "pnl_diff_ci95_usd": pnl["mean_diff_ci95"],
            "pnl_p_value": pnl["p_value"],
            "max_drawdown_usd": float(dd_m.mean()),
            "baseline_max_drawdown_usd": float(dd_b.mean()),
            "drawdown_p_value": paired(dd_m, dd_b, seed=seed + 17 * k + 7)["p_value"],
        }
    adjusted = holm([r["pnl_p_value"] for r in records.values()])
    for rec, p in zip(records.values(), adjusted, strict=True):
        rec["pnl_p_holm"] = p
        rec["pnl_better"] = bool(p < alpha and rec["pnl_diff_usd"] > 0)
        rec["drawdown_ok"] = bool(rec["max_drawdown_usd"] <= rec["baseline_max_drawdown_usd"])
        rec["target_met"] = rec["pnl_better"] and rec["drawdown_ok"]
    return {
        "baseline": BASELINE,
        "target_met": all(r["target_met"] for r in records.values()),
        "target_scenarios": records,
    }


def benchmark_target(
    per_policy: Mapping[str, Mapping[str, Any]],
    seed_values: Mapping[str, Mapping[str, Any]],
    seed: int = 0,
) -> dict[str, Any] | None:
    """results.json's ``liquidator_target``: :func:`target_verdict` of the first PPO seed
    (``seed_values``' first entry: seed -> its model's ``episode_values``) against
    ``per_policy[BASELINE]`` (``evaluate`` results with ``episode_values``), plus
    ``target_met_by_seed``. None when the baseline or a target scenario is missing."""
    base = per_policy.get(BASELINE, {}).get("episode_values")
    if not base or not seed_values or any(s not in base for s in SCENARIOS):
        return None
    by_seed = {k: target_verdict(v, base, SCENARIOS, seed=seed) for k, v in seed_values.items()}
    first = next(iter(by_seed.values()))
    return {**first, "target_met_by_seed": {k: v["target_met"] for k, v in by_seed.items()}}


def report_lines(target: Mapping[str, Any] | None) -> list[str]:
    """The benchmark report's lines for ``liquidator_target`` (none when absent)."""
    if not target:
        return []
    lines = verdict_lines(target, "ppo")
    seeds = target.get("target_met_by_seed", {})
    met = sum(bool(v) for v in seeds.values())
    head = lines[-1] + (
        f" (seed {next(iter(seeds))}; met by {met} of {len(seeds)} training seeds)"
        if len(seeds) > 1
        else ""
    )
    return [
        f"Issue 14's {head}. Per scenario (PnL paired on the same episodes, Wilcoxon, Holm over "
        "the two scenarios; the target needs a significantly higher PnL at a mean max drawdown "
        "no larger than greedy_hedged's; `python -m agents.liquidator_target MODEL` reruns it):",
        "",
        *[f"- {line}" for line in lines[:-1]],
        "",
    ]


def _k(v: float) -> str:
    return f"${v / 1e3:,.1f}k" if math.isfinite(v) else "n/a"


def verdict_lines(verdict: Mapping[str, Any], label: str = "model") -> list[str]:
    """One line per scenario and a last line with the overall verdict."""
    lines = []
    for name, r in verdict["target_scenarios"].items():
        lo, hi = r["pnl_diff_ci95_usd"]
        lines.append(
            f"{name}: PnL {label} {_k(r['pnl_usd'])} vs {BASELINE} {_k(r['baseline_pnl_usd'])}, "
            f"difference {_k(r['pnl_diff_usd'])} [{_k(lo)}, {_k(hi)}] (Holm p {r['pnl_p_holm']:.3g}, "
            f"n {r['n']}); max drawdown {_k(r['max_drawdown_usd'])} vs "
            f"{_k(r['baseline_max_drawdown_usd'])}: {'met' if r['target_met'] else 'not met'}"
        )
    names = ", ".join(verdict["target_scenarios"])
    met = "met" if verdict["target_met"] else "not met"
    lines.append(f"target vs {BASELINE} on {names}: {met}")
    return lines


def model_env_id(model_path: str | Path) -> str:
    """The env a saved model was trained on: its run folder's ``config.yaml`` ``env_id``, else
    :data:`ENV_ID`."""
    from levgym.cli.evaluate import resolve_model

    return resolve_model(str(model_path), None)[1] or ENV_ID


def evaluate_target(
    model_path: str | Path,
    suite_name: str = "default",
    scenarios: Sequence[str] = SCENARIOS,
    baseline_values: Mapping[str, Any] | None = None,
    progress: bool = False,
    env_id: str | None = None,
    episodes: int | None = None,
    eval_seed: int | None = None,
) -> dict[str, Any]:
    """Evaluate a saved liquidator model and ``greedy_hedged`` on ``scenarios`` of the suite,
    both on ``env_id`` (default: the model's, :func:`model_env_id`), and return
    :func:`target_verdict` (with ``baseline_values`` reused when given: they must come from the
    same env). ``episodes`` replaces the suite's episodes per scenario (the same held-out seeds
    from the suite's first one on: more episodes, more power); ``eval_seed`` replaces the suite's
    first evaluation seed (a fresh held-out set, e.g. to confirm a setting chosen on the suite's
    own episodes)."""
    from .baselines import make_baseline
    from .evaluate import evaluate, load_model_policy

    env_id = env_id or model_env_id(model_path)
    suite = _suite(suite_name, episodes, eval_seed)
    names = list(scenarios)
    if baseline_values is None:
        base = make_baseline(BASELINE, env_id)
        baseline_values = evaluate(base, env_id, suite, names, progress, keep_episodes=True)[
            "episode_values"
        ]
    policy = load_model_policy(model_path, env_id)
    values = evaluate(policy, env_id, suite, names, progress, keep_episodes=True)
    return target_verdict(values["episode_values"], baseline_values, names, seed=suite.seed)


def parse_constant(text: str) -> tuple[float, float, float]:
    """``"take,sell,hedge"`` (each in ``[-1, 1]``) for ``--constant``."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values):
        raise ValueError(
            f"--constant {text!r} is invalid; allowed three numbers in [-1, 1] as take,sell,hedge"
        )
    return values  # type: ignore[return-value]


def constant_policy(action: Sequence[float], env_id: str) -> Any:
    """A policy that plays the same ``action`` every step on ``env_id`` (``--constant``): the
    fixed rules a learned liquidator should beat before it beats ``greedy_hedged``."""
    from .baselines import LiquidatorBaseline

    class Constant(LiquidatorBaseline):
        name = "constant"

        def _act(self, obs: np.ndarray) -> np.ndarray:
            return np.tile(np.asarray(action, dtype=float), (obs.shape[0], 1))

    return Constant(env_id=env_id)


def _suite(name: str, episodes: int | None, seed: int | None = None) -> Any:
    from levgym import scenarios

    from .evaluate import load_suite

    suite = load_suite(name=name)
    if episodes is not None:
        if episodes < 2:
            raise ValueError(f"--episodes {episodes} is out of range; allowed >= 2")
        suite = dataclasses.replace(suite, episodes=int(episodes))
    if seed is not None:
        if not scenarios.is_eval_seed(seed):
            raise ValueError(
                f"--eval-seed {seed} is in the training range; allowed >= "
                f"{scenarios.EVAL_SEED_OFFSET}"
            )
        suite = dataclasses.replace(suite, seed=int(seed))
    return suite


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agents.liquidator_target",
        description="Evaluate saved Liquidator-v1 or -v2 models (each on the env it was trained "
        "on) against greedy_hedged on that env on gbm_high_vol "
        "and merton_crash (the default suite's held-out episodes): PnL difference with its 95% "
        "interval and Holm p, mean drawdowns, and whether issue 14's target holds.",
    )
    parser.add_argument("models", nargs="*", help="model.zip files or training run folders")
    parser.add_argument(
        "--constant",
        action="append",
        default=[],
        metavar="TAKE,SELL,HEDGE",
        help="also judge a policy that plays this fixed action every step (repeatable)",
    )
    parser.add_argument(
        "--env",
        default="levgym/Liquidator-v2",
        help="env of the --constant policies (default: levgym/Liquidator-v2)",
    )
    parser.add_argument("--suite", default="default", help="evaluation suite (default: default)")
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="episodes per scenario instead of the suite's (16 in the default suite): the same "
        "held-out seeds from the suite's first on",
    )
    parser.add_argument(
        "--eval-seed",
        type=int,
        default=None,
        help="first evaluation seed instead of the suite's (held-out range, >= 1,000,000): a "
        "fresh set of episodes",
    )
    args = parser.parse_args(argv)
    try:
        suite = _suite(args.suite, args.episodes, args.eval_seed)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        constants = [parse_constant(c) for c in args.constant]
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.env not in (ENV_ID, "levgym/Liquidator-v2"):
        print(
            f"--env {args.env!r} is unknown; allowed {ENV_ID} or levgym/Liquidator-v2",
            file=sys.stderr,
        )
        return 2
    if not args.models and not constants:
        print("nothing to judge; allowed model files, run folders or --constant", file=sys.stderr)
        return 2
    for m in args.models:
        p = Path(m)
        if not (p.is_file() or (p / "model.zip").is_file()):
            print(f"model {m!r} is not a model.zip or a run folder with one", file=sys.stderr)
            return 2
    from .baselines import make_baseline
    from .evaluate import evaluate

    bases: dict[str, Any] = {}
    all_met = True

    def base_values(env_id: str) -> Any:
        if env_id not in bases:
            bases[env_id] = evaluate(
                make_baseline(BASELINE, env_id), env_id, suite, list(SCENARIOS), False,
                keep_episodes=True,
            )["episode_values"]  # fmt: skip
        return bases[env_id]

    for m in args.models:
        env_id = model_env_id(m)
        v = evaluate_target(
            m, args.suite, SCENARIOS, baseline_values=base_values(env_id), env_id=env_id,
            episodes=args.episodes, eval_seed=args.eval_seed,
        )  # fmt: skip
        all_met &= v["target_met"]
        print(f"{m} ({env_id})")
        for line in verdict_lines(v, "model"):
            print("  " + line)
    for action in constants:
        values = evaluate(
            constant_policy(action, args.env), args.env, suite, list(SCENARIOS), False,
            keep_episodes=True,
        )["episode_values"]  # fmt: skip
        v = target_verdict(values, base_values(args.env), SCENARIOS, seed=suite.seed)
        all_met &= v["target_met"]
        print(f"constant {','.join(f'{a:g}' for a in action)} ({args.env})")
        for line in verdict_lines(v, "constant"):
            print("  " + line)
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
