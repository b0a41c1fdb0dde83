"""`levgym benchmark`, the main job: train the RL agents, evaluate them and every baseline on the
suite, and write a report folder (report.md, results.json, results.csv, PNG plots, TensorBoard logs)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from levgym import __version__
from levgym.io import save_figure, write_json, write_text

from .baselines import baseline_names, make_baseline
from .evaluate import ENV_IDS, evaluate, load_model_policy, load_suite, rollout
from .train import git_revision, read_progress, train

# Objective of each env on the suite: the mean over scenarios of the mean episode return (the
# env's own reward: revenue - weighted bad debt - weighted user losses + weighted capacity for
# the governor; equity change - inventory-risk penalty for the liquidator).
OBJECTIVE = "return"

# Headline metrics per env for the report's tables (metric, label, scale, unit).
TABLE_METRICS = {
    "levgym/Governance-v0": (
        ("return", "return", 1.0, ""),
        ("bad_debt_usd", "bad debt incl. underwater", 1e-6, "$M"),
        ("revenue_usd", "revenue", 1e-3, "$k"),
        ("liquidated_usd", "liquidated", 1e-6, "$M"),
        ("insolvent", "insolvency rate", 1.0, ""),
    ),
    "levgym/Liquidator-v0": (
        ("return", "return", 1.0, ""),
        ("pnl_usd", "PnL", 1e-3, "$k"),
        ("max_drawdown_usd", "max drawdown", 1e-3, "$k"),
        ("bankrupt", "bankruptcy rate", 1.0, ""),
    ),
}


@dataclass(frozen=True)
class BenchmarkConfig:
    """The embedded default of the main job (and its ``--quick`` variant)."""

    suite: str
    timesteps: dict[str, int]
    seed: int = 0
    crash_scenario: str = "black_thursday_2020"

    @classmethod
    def default(cls) -> BenchmarkConfig:
        from .config import load_config

        # the training budgets are the ones in levgym/configs/agents/ppo.yml
        steps = {e: int(load_config(e, "ppo")["total_timesteps"]) for e in ENV_IDS}
        return cls(suite="default", timesteps=steps)

    @classmethod
    def quick(cls) -> BenchmarkConfig:
        return cls(
            suite="quick",
            timesteps={"levgym/Governance-v0": 16_384, "levgym/Liquidator-v0": 16_384},
        )


def _slug(env_id: str) -> str:
    return env_id.split("/")[-1].lower()


def objective(result: dict[str, Any]) -> float:
    """Mean over the suite's scenarios of the mean episode return."""
    return float(np.mean([s[OBJECTIVE]["mean"] for s in result["scenarios"].values()]))


def objective_ci(result: dict[str, Any]) -> float | None:
    """Half-width of the objective's 95% interval, combining the scenarios' intervals as
    independent: ``sqrt(sum ci_s^2) / S``."""
    cis = [s[OBJECTIVE]["ci95"] for s in result["scenarios"].values()]
    if any(c is None for c in cis):
        return None
    return float(np.sqrt(np.sum(np.square(cis))) / len(cis))


def run_benchmark(
    out: str | os.PathLike | None = None,
    quick: bool = False,
    progress: bool = True,
    config: BenchmarkConfig | None = None,
    command: str | None = None,
) -> Path:
    """Train, evaluate, report. Returns the report folder."""
    cfg = config or (BenchmarkConfig.quick() if quick else BenchmarkConfig.default())
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = (
        Path(out)
        if out
        else Path("runs") / "benchmark" / f"{'quick' if quick else 'default'}__{stamp}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = load_suite(name=cfg.suite)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    traces: dict[str, dict[str, list[dict[str, float]]]] = {}
    trained_on: dict[str, list[str] | None] = {}
    for env_id in ENV_IDS:
        slug = _slug(env_id)
        _say(progress, f"[{slug}] training PPO for {cfg.timesteps[env_id]:,} steps")
        t0 = time.perf_counter()
        run_dir = out_dir / "train" / slug
        if (run_dir / "model.zip").exists():
            _say(progress, f"[{slug}] reusing the trained model in {run_dir}")
        elif (run_dir / "config.yaml").exists():
            train(env_id, resume=run_dir, progress=progress, command=command)
        else:
            train(
                env_id,
                "ppo",
                total_timesteps=cfg.timesteps[env_id],
                seed=cfg.seed,
                out=run_dir,
                progress=progress,
                command=command,
            )
        timings[f"train_{slug}_s"] = time.perf_counter() - t0
        runs[env_id] = str(run_dir)
        trained_on[env_id] = _training_scenarios(run_dir)
        policies: dict[str, Any] = {"ppo": load_model_policy(run_dir / "model.zip")}
        for name in baseline_names(env_id):
            policies[name] = make_baseline(name, env_id, seed=cfg.seed)
        t0 = time.perf_counter()
        results[env_id] = {}
        for name, policy in policies.items():
            _say(progress, f"[{slug}] evaluating {name}")
            results[env_id][name] = evaluate(policy, env_id, suite, progress=progress)
        timings[f"evaluate_{slug}_s"] = time.perf_counter() - t0
        if env_id.endswith("Governance-v0"):
            entry = suite.for_env(env_id)
            traces[env_id] = {}
            for name in ("ppo", "static", "steward"):
                if name in policies:
                    run = rollout(
                        policies[name],
                        env_id,
                        cfg.crash_scenario,
                        1,
                        suite.seed,
                        entry.env_kwargs,
                        record=True,
                    )
                    traces[env_id][name] = run["trace"]
    timings["total_s"] = time.perf_counter() - started

    meta = {
        "command": command,
        "quick": quick,
        "config": asdict(cfg),
        "suite": {
            "name": suite.name,
            "episodes": suite.episodes,
            "seed": suite.seed,
            "envs": {
                k: {"scenarios": list(v.scenarios), "env_kwargs": v.env_kwargs}
                for k, v in suite.envs.items()
            },
        },
        "git_revision": git_revision(),
        "levgym_version": __version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "runs": runs,
        "training_scenarios": trained_on,
    }
    objectives = {
        env_id: {name: objective(r) for name, r in per.items()} for env_id, per in results.items()
    }
    objective_cis = {
        env_id: {name: objective_ci(r) for name, r in per.items()}
        for env_id, per in results.items()
    }
    write_json(
        out_dir / "results.json",
        {
            "meta": meta,
            "objective": objectives,
            "objective_ci95": objective_cis,
            "results": results,
        },
    )
    write_text(out_dir / "results.csv", _csv(results))
    plots = _plots(out_dir, results, traces, runs)
    write_text(out_dir / "report.md", _report(meta, results, objectives, objective_cis, plots))
    _say(progress, f"report written to {out_dir / 'report.md'} ({timings['total_s']:.0f} s)")
    return out_dir


def _training_scenarios(run_dir: Path) -> list[str] | None:
    """The scenario mix a run trained on (None: the env's default mix)."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    names = cfg["hyperparameters"].get("env_kwargs", {}).get("scenarios")
    return [names] if isinstance(names, str) else (list(names) if names else None)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _csv(results: dict[str, dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["env_id", "policy", "scenario", "metric", "mean", "ci95", "n"])
    for env_id, per in results.items():
        for policy, r in per.items():
            for scenario, metrics in r["scenarios"].items():
                for metric, v in metrics.items():
                    w.writerow(
                        [
                            env_id,
                            policy,
                            scenario,
                            metric,
                            repr(v["mean"]),
                            "" if v["ci95"] is None else repr(v["ci95"]),
                            v["n"],
                        ]
                    )
    return buf.getvalue()


def _fmt(v: dict[str, Any], scale: float) -> str:
    mean = v["mean"] * scale
    if v["ci95"] is None:
        return f"{mean:.3g}"
    return f"{mean:.3g} ± {v['ci95'] * scale:.2g}"


def _report(
    meta: dict[str, Any],
    results: dict[str, dict[str, Any]],
    objectives: dict[str, dict[str, float]],
    objective_cis: dict[str, dict[str, float | None]],
    plots: dict[str, str],
) -> str:
    lines = ["# levgym benchmark report", ""]
    lines += [
        "How this was produced:",
        "",
        f"- command: `{meta['command']}`",
        f"- levgym {meta['levgym_version']}, git {meta['git_revision']}, Python {meta['python']}, {meta['machine']}, finished {meta['finished']}",
        f"- training: PPO ({', '.join(f'{k}: {v:,} steps' for k, v in meta['config']['timesteps'].items())}), seed {meta['config']['seed']}, "
        "hyperparameters from `levgym/configs/agents/ppo.yml` (the resolved config is in each run folder)",
        f"- evaluation: suite `{meta['suite']['name']}`, {meta['suite']['episodes']} episodes per scenario on held-out seeds "
        f"from {meta['suite']['seed']:,} (training never uses seeds in the evaluation range); cells are mean ± half-width of a "
        "95% Student-t interval over episodes",
        f"- wall time: {meta['timings_s']['total_s']:.0f} s ({', '.join(f'{k} {v:.0f}' for k, v in meta['timings_s'].items() if k != 'total_s')})",
        "",
    ]
    for env_id, per in results.items():
        obj = objectives[env_id]
        ranked = sorted(obj, key=lambda n: -obj[n])
        lines += [f"## {env_id}", ""]
        lines += ["Objective (mean over scenarios of mean episode return; higher is better):", ""]
        cis = objective_cis[env_id]
        lines += ["| rank | policy | objective | 95% interval |", "|---|---|---|---|"]
        lines += [
            f"| {i + 1} | {n} | {obj[n]:.3f} | {'n/a' if cis[n] is None else f'± {cis[n]:.3f}'} |"
            for i, n in enumerate(ranked)
        ]
        lines.append("")
        beaten = [n for n in obj if n != "ppo" and obj[n] >= obj["ppo"]]
        close = [
            n
            for n in obj
            if n != "ppo"
            and n not in beaten
            and cis["ppo"] is not None
            and cis[n] is not None
            and obj["ppo"] - obj[n] < cis["ppo"] + cis[n]
        ]
        if not beaten:
            lines.append("**The trained PPO agent beats every baseline on the suite's objective.**")
            if close:
                lines.append(
                    f"The margin over {', '.join(close)} is within the 95% intervals, so that part of the ranking "
                    "is not significant at this number of episodes."
                )
        else:
            lines.append(
                f"**The trained PPO agent does not beat every baseline**: {', '.join(sorted(beaten, key=lambda n: -obj[n]))} "
                f"score{'s' if len(beaten) == 1 else ''} at least as high on the suite's objective."
            )
        lines.append("")
        metrics = TABLE_METRICS[env_id]
        trained = meta["training_scenarios"].get(env_id)
        if trained:
            lines += [f"PPO trained on: {', '.join(trained)} (training seeds).", ""]
        for scenario in next(iter(per.values()))["scenarios"]:
            note = (
                " (never seen in training)"
                if trained and scenario not in trained
                else " (held-out seeds)"
            )
            lines += [f"### {scenario}{note}", ""]
            header = (
                "| policy | "
                + " | ".join(
                    f"{label}{f' ({unit})' if unit else ''}" for _, label, _, unit in metrics
                )
                + " |"
            )
            lines += [header, "|" + "---|" * (len(metrics) + 1)]
            for policy in ranked:
                m = per[policy]["scenarios"][scenario]
                lines.append(
                    f"| {policy} | " + " | ".join(_fmt(m[k], s) for k, _, s, _ in metrics) + " |"
                )
            lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for title, file in plots.items():
            lines += [f"### {title}", "", f"![{title}]({file})", ""]
    lines += [f"TensorBoard logs of both runs: `{tensorboard_command(meta['runs'])}`", ""]
    return "\n".join(lines)


def tensorboard_command(runs: dict[str, str]) -> str:
    """One ``tensorboard`` command that loads every run's logs (``--logdir`` given twice keeps
    only the last): their parent folder when the runs are siblings (as the benchmark's are),
    else named ``--logdir_spec`` entries."""
    dirs = [Path(d) for d in runs.values()]
    if len(dirs) == 1:
        return f"tensorboard --logdir {shlex.quote(str(dirs[0] / 'logs'))}"
    parents = {d.parent for d in dirs}
    if len(parents) == 1 and str(next(iter(parents))) not in ("", ".", os.sep):
        return f"tensorboard --logdir {shlex.quote(str(next(iter(parents))))}"
    spec = ",".join(f"{_slug(env_id)}:{d / 'logs'}" for env_id, d in zip(runs, dirs, strict=True))
    return f"tensorboard --logdir_spec {shlex.quote(spec)}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plots(out_dir: Path, results, traces, runs) -> dict[str, str]:
    plt = _plt()
    files: dict[str, str] = {}
    # Parameter paths through a crash.
    gov = "levgym/Governance-v0"
    if traces.get(gov):
        keys = [
            ("liquidation_threshold", "liquidation threshold"),
            ("ltv", "LTV"),
            ("liquidation_bonus", "liquidation bonus"),
            ("slope1_apr", "rate slope1 (APR)"),
        ]
        fig, axes = plt.subplots(2, 3, figsize=(15, 7))
        flat = axes.ravel()
        for name, trace in traces[gov].items():
            t = np.arange(1, len(trace) + 1)
            for ax, (key, label) in zip(flat, keys, strict=False):
                ax.plot(t, [row.get(key, np.nan) for row in trace], label=name)
                ax.set_title(label)
            economic = [row.get("economic_bad_debt_usd", 0.0) for row in trace]
            flat[4].plot(t, np.cumsum(economic) / 1e6, label=name)
            flat[4].set_title("bad debt incl. underwater, cumulative ($M)")
            flat[5].plot(
                t, np.cumsum([row.get("revenue_usd", 0.0) for row in trace]) / 1e3, label=name
            )
            flat[5].set_title("revenue, cumulative ($k)")
        for ax in flat:
            ax.set_xlabel("hours")
        flat[0].legend()
        fig.suptitle(
            "parameters chosen through black_thursday_2020 (never trained on); a line ends where its episode ends"
        )
        fig.tight_layout()
        save_figure(fig, out_dir / "parameter_paths.png")
        plt.close(fig)
        files["Parameter paths through a crash"] = "parameter_paths.png"
    # Bad debt and revenue by policy.
    if gov in results:
        per = results[gov]
        names = list(per)
        bad = [
            np.mean([s["bad_debt_usd"]["mean"] for s in per[n]["scenarios"].values()]) / 1e6
            for n in names
        ]
        rev = [
            np.mean([s["revenue_usd"]["mean"] for s in per[n]["scenarios"].values()]) / 1e3
            for n in names
        ]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        axes[0].bar(names, bad, color="tab:purple")
        axes[0].set_title("bad debt per episode, mean over scenarios ($M)")
        axes[1].bar(names, rev, color="tab:green")
        axes[1].set_title("revenue per episode, mean over scenarios ($k)")
        fig.tight_layout()
        save_figure(fig, out_dir / "bad_debt_revenue.png")
        plt.close(fig)
        files["Bad debt and revenue by policy"] = "bad_debt_revenue.png"
    # Learning curves.
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, (env_id, run_dir) in zip(axes[0], runs.items(), strict=False):
        rows = [r for r in read_progress(run_dir) if "rollout/ep_rew_mean" in r]
        if rows:
            ax.plot(
                [r["time/total_timesteps"] for r in rows], [r["rollout/ep_rew_mean"] for r in rows]
            )
        ax.set_title(f"{env_id}: mean episode return while training")
        ax.set_xlabel("timesteps")
    fig.tight_layout()
    save_figure(fig, out_dir / "learning_curves.png")
    plt.close(fig)
    files["Learning curves"] = "learning_curves.png"
    return files
