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

``--select-checkpoints RUN`` judges every checkpoint of a training run on a validation set of
held-out seeds (:data:`VALIDATION_EPISODES` episodes per scenario from :data:`VALIDATION_SEED`)
and keeps the one whose weakest condition of the target holds by the most standard errors
(:func:`target_margins`, :func:`select_checkpoint`); ``--pool`` keeps one across several runs.
The kept model is then judged on another set (the benchmark's: 256 episodes from seed
4,000,000; docs/agents.md).

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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .stats import ALPHA, holm, paired

# The benchmark and this evaluation run the env versions they name (Governance-v1, Liquidator-v1
# and -v2) on purpose; Gymnasium's notice that a newer version is registered (Governance-v2,
# Liquidator-v3: the warm books) is not addressed to them. Set at import of this module, which
# the benchmark and the liquidator's procedure import: their spawned training and selection
# workers have it too.
warnings.filterwarnings(
    "ignore", message=r".*The environment levgym/\S+ is out of date", category=DeprecationWarning
)

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
    """The env a saved model was trained on: its run folder's ``config.yaml`` ``env_id`` (one
    level up for a checkpoint in ``checkpoints/``), else :data:`ENV_ID`."""
    from levgym.cli.evaluate import resolve_model

    from .train import _find_config

    path, env_id = resolve_model(str(model_path), None)
    if env_id is None:
        cfg = _find_config(path)
        if cfg is not None and isinstance(cfg.get("env_id"), str):
            env_id = cfg["env_id"]
    return env_id or ENV_ID


def baseline_episode_values(
    env_id: str,
    suite_name: str = "default",
    episodes: int | None = None,
    eval_seed: int | None = None,
) -> dict[str, Any]:
    """``greedy_hedged``'s episode values on ``env_id`` on the target's scenarios of the suite
    (``episodes`` and ``eval_seed`` as in :func:`evaluate_target`): the baseline side of
    :func:`target_verdict`, to evaluate once for several models."""
    from .baselines import make_baseline
    from .evaluate import evaluate

    suite = _suite(suite_name, episodes, eval_seed)
    return evaluate(
        make_baseline(BASELINE, env_id), env_id, suite, list(SCENARIOS), False, keep_episodes=True
    )["episode_values"]


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


VALIDATION_SEED = 2_000_000
"""First evaluation seed of the validation set that :func:`select_checkpoints` selects on by
default: held out from training, and distinct from the test set the selected model is judged on
(``--episodes 256 --eval-seed 3000000`` in docs/agents.md)."""
VALIDATION_EPISODES = 512
"""Episodes per scenario of the default validation set."""


def drawdown_z(model_dd: Sequence[float], baseline_dd: Sequence[float]) -> float:
    """How far a model's mean max drawdown is below the baseline's, in standard errors of the
    paired mean difference: ``mean(d) / (sd(d) / sqrt(n))`` with ``d = baseline - model`` per
    episode (0 when every difference is 0; +-inf when they are all equal and not 0)."""
    d = np.asarray(baseline_dd, dtype=np.float64) - np.asarray(model_dd, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"drawdown_z needs two or more episodes; got {d.size}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(d.size))


def target_margins(
    verdict: Mapping[str, Any],
    model: Mapping[str, Mapping[str, Sequence[float]]],
    baseline: Mapping[str, Mapping[str, Sequence[float]]],
    alpha: float = ALPHA,
) -> dict[str, dict[str, float]]:
    """The margin of each of the target's conditions, in standard errors (>= 0: it holds),
    per scenario of ``verdict`` (a :func:`target_verdict` of the episode values ``model`` and
    ``baseline``):

    - ``pnl``: the Holm p-value of the PnL difference as a two-sided normal quantile, signed by
      the difference, minus the quantile of ``alpha`` (1.96 at 0.05): >= 0 exactly when the PnL
      is significantly higher after Holm;
    - ``drawdown``: :func:`drawdown_z` of the max drawdowns: >= 0 exactly when the model's mean
      max drawdown is at most the baseline's."""
    from scipy.stats import norm

    crit = float(norm.isf(alpha / 2))
    out = {}
    for name, r in verdict["target_scenarios"].items():
        p = float(r["pnl_p_holm"])
        z = float(norm.isf(min(max(p, 1e-300), 1.0) / 2)) if math.isfinite(p) else 0.0
        out[name] = {
            "pnl": math.copysign(z, r["pnl_diff_usd"]) - crit if r["pnl_diff_usd"] else -crit,
            "drawdown": drawdown_z(
                model[name]["max_drawdown_usd"], baseline[name]["max_drawdown_usd"]
            ),
        }
    return out


def selection_score(margins: Mapping[str, Mapping[str, float]]) -> float:
    """The weakest of the target's margins (:func:`target_margins`, every scenario, PnL and
    drawdown): how many standard errors the model is from failing the target, >= 0 when it
    meets it."""
    return min(v for m in margins.values() for v in m.values())


def select_checkpoint(margins: Mapping[int, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """The checkpoint to keep from its validation margins (``steps -> target_margins``): the
    highest :func:`selection_score` (the weakest condition of the target held by the most
    standard errors), ties to the fewest steps (nearest the warm start).

    Returns ``{"steps", "score", "target_met"}`` of the choice (``target_met``: score >= 0, the
    target holds on the validation set)."""
    if not margins:
        raise ValueError("no checkpoints to select from; allowed one or more")
    scores = {int(steps): selection_score(m) for steps, m in margins.items()}
    steps = max(scores, key=lambda s: (scores[s], -s))
    return {"steps": steps, "score": scores[steps], "target_met": scores[steps] >= 0.0}


def run_checkpoints(run_dir: str | Path, max_steps: int | None = None) -> dict[int, Path]:
    """A training run's models by step count: every ``checkpoints/model_<steps>_steps.zip`` and
    the final ``model.zip`` (its ``num_timesteps``) unless a checkpoint has the same count; only
    those of at most ``max_steps`` when given."""
    from .persist import inspect_model_zip
    from .train import _checkpoints

    run = Path(run_dir)
    found = {steps: path for steps, path in _checkpoints(run)}
    final = run / "model.zip"
    if final.is_file():
        steps = int(inspect_model_zip(final).get("num_timesteps", 0))
        found.setdefault(steps, final)
    return {s: p for s, p in sorted(found.items()) if max_steps is None or s <= max_steps}


def select_checkpoints(
    run_dir: str | Path,
    suite_name: str = "default",
    episodes: int = VALIDATION_EPISODES,
    eval_seed: int = VALIDATION_SEED,
    max_steps: int | None = None,
    baseline_values: Mapping[str, Any] | None = None,
    say: Any = None,
) -> dict[str, Any]:
    """Judge every model of a run (:func:`run_checkpoints`) against ``greedy_hedged`` on a
    validation set (``episodes`` per scenario from ``eval_seed``; ``baseline_values``, the
    baseline's episode values there, are evaluated when not given) and pick one with
    :func:`select_checkpoint`. Returns ``{"run", "env_id", "paths": {steps: path}, "verdicts":
    {steps: target_verdict}, "margins": {steps: target_margins}, "selected":
    {...select_checkpoint..., "path"}}``. ``say`` (a callable) gets one line per model."""
    from .baselines import make_baseline
    from .evaluate import evaluate, load_model_policy

    paths = run_checkpoints(run_dir, max_steps)
    if not paths:
        raise ValueError(
            f"run {str(run_dir)!r} has no checkpoints or model.zip"
            + (f" of at most {max_steps} steps" if max_steps is not None else "")
        )
    env_id = model_env_id(next(iter(paths.values())))
    suite = _suite(suite_name, episodes, eval_seed)
    names = list(SCENARIOS)
    if baseline_values is None:
        baseline_values = evaluate(
            make_baseline(BASELINE, env_id), env_id, suite, names, False, keep_episodes=True
        )["episode_values"]
    verdicts, margins = {}, {}
    for steps, path in paths.items():
        policy = load_model_policy(path, env_id)
        values = evaluate(policy, env_id, suite, names, False, keep_episodes=True)
        verdicts[steps] = target_verdict(
            values["episode_values"], baseline_values, names, seed=suite.seed
        )
        margins[steps] = target_margins(verdicts[steps], values["episode_values"], baseline_values)
        if say is not None:
            say(selection_line(steps, verdicts[steps], margins[steps]))
    chosen = select_checkpoint(margins)
    return {
        "run": str(run_dir),
        "env_id": env_id,
        "paths": {s: str(p) for s, p in paths.items()},
        "verdicts": verdicts,
        "margins": margins,
        "selected": {
            **chosen,
            "target_met": bool(verdicts[chosen["steps"]]["target_met"]),
            "path": str(paths[chosen["steps"]]),
        },
    }


def select_across(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One model across several runs (``--pool``: e.g. one seed trained with several settings)
    from their :func:`select_checkpoints` results: the run whose selected model has the highest
    score, ties to the fewest steps, then to the first run given. Returns that run's
    ``selected`` with ``"run"``."""
    if not results:
        raise ValueError("no runs to select from; allowed one or more")
    best = max(
        enumerate(results),
        key=lambda kr: (kr[1]["selected"]["score"], -kr[1]["selected"]["steps"], -kr[0]),
    )[1]
    return {**best["selected"], "run": best["run"]}


def selection_line(
    steps: int, verdict: Mapping[str, Any], margins: Mapping[str, Mapping[str, float]]
) -> str:
    """One model's validation result: per scenario the PnL difference with its Holm p and the
    drawdowns, each with its margin in standard errors, then the weakest margin."""
    parts = []
    for name, r in verdict["target_scenarios"].items():
        m = margins[name]
        parts.append(
            f"{name} {_k(r['pnl_diff_usd'])} (p {r['pnl_p_holm']:.2g}, {m['pnl']:+.1f}), "
            f"drawdown {_k(r['max_drawdown_usd'])} of {_k(r['baseline_max_drawdown_usd'])} "
            f"({m['drawdown']:+.1f})"
        )
    return f"{steps:>9,} steps: " + "; ".join(parts) + f"; score {selection_score(margins):+.2f}"


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
    parser.add_argument(
        "--select-checkpoints",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="judge every checkpoint of a training run (and its model.zip) on a validation set "
        f"(--episodes, default {VALIDATION_EPISODES}; --eval-seed, default {VALIDATION_SEED:,}) "
        "and pick the one whose weakest scenario's PnL gain is most significant among those "
        "with drawdowns no larger than greedy_hedged's; judge it afterwards on another set "
        "(repeatable)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="with --select-checkpoints: only checkpoints of at most this many steps",
    )
    parser.add_argument(
        "--pool",
        action="store_true",
        help="with --select-checkpoints: select one model across all the runs given (one "
        "training seed run with several settings) instead of one per run",
    )
    args = parser.parse_args(argv)
    if args.select_checkpoints:
        return _main_select(args)
    if args.max_steps is not None or args.pool:
        flag = "--max-steps" if args.max_steps is not None else "--pool"
        print(f"{flag} is for --select-checkpoints; allowed only with it", file=sys.stderr)
        return 2
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


def _main_select(args: argparse.Namespace) -> int:
    """``--select-checkpoints``: exit 0 when every run's selected model meets the target on the
    validation set, 1 when one does not, 2 on bad input."""
    if args.models or args.constant:
        print(
            "--select-checkpoints judges runs' checkpoints only; allowed without model "
            "arguments or --constant",
            file=sys.stderr,
        )
        return 2
    episodes = VALIDATION_EPISODES if args.episodes is None else args.episodes
    seed = VALIDATION_SEED if args.eval_seed is None else args.eval_seed
    try:
        _suite(args.suite, episodes, seed)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.max_steps is not None and args.max_steps < 1:
        print(f"--max-steps {args.max_steps} is out of range; allowed >= 1", file=sys.stderr)
        return 2
    for run in args.select_checkpoints:
        try:
            found = run_checkpoints(run, args.max_steps) if Path(run).is_dir() else {}
        except ValueError as exc:
            print(f"--select-checkpoints {run!r}: {exc}", file=sys.stderr)
            return 2
        if not found:
            print(
                f"--select-checkpoints {run!r} is not a run folder with checkpoints"
                + (f" of at most {args.max_steps} steps" if args.max_steps is not None else ""),
                file=sys.stderr,
            )
            return 2
    envs = {
        run: model_env_id(next(iter(run_checkpoints(run, args.max_steps).values())))
        for run in args.select_checkpoints
    }
    if args.pool and len(set(envs.values())) > 1:
        print(
            f"--pool needs runs of one env; got {', '.join(sorted(set(envs.values())))}",
            file=sys.stderr,
        )
        return 2
    all_met = True
    bases: dict[str, Any] = {}
    results = []
    for run in args.select_checkpoints:
        env_id = envs[run]
        if env_id not in bases:
            from .baselines import make_baseline
            from .evaluate import evaluate

            bases[env_id] = evaluate(
                make_baseline(BASELINE, env_id), env_id, _suite(args.suite, episodes, seed),
                list(SCENARIOS), False, keep_episodes=True,
            )["episode_values"]  # fmt: skip
        print(f"{run} ({env_id}): validation set of {episodes} episodes from seed {seed:,}")
        res = select_checkpoints(
            run, args.suite, episodes, seed, args.max_steps, bases[env_id],
            say=lambda line: print("  " + line, flush=True),
        )  # fmt: skip
        results.append(res)
        sel = res["selected"]
        all_met &= sel["target_met"]
        print(
            f"  {'best of this run' if args.pool else 'selected'}: {sel['path']} "
            f"({sel['steps']:,} steps, score {sel['score']:+.2f}; target on the validation set: "
            f"{'met' if sel['target_met'] else 'not met'})"
        )
    if args.pool:
        sel = select_across(results)
        all_met = sel["target_met"]
        print(
            f"selected across the {len(results)} runs: {sel['path']} ({sel['steps']:,} steps, "
            f"score {sel['score']:+.2f}; target on the validation set: "
            f"{'met' if sel['target_met'] else 'not met'})"
        )
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
