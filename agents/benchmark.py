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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from levgym import __version__, naming
from levgym.io import save_figure, write_json, write_text
from levgym.results import REGISTRY, checked, checked_columns

from .baselines import baseline_names, make_baseline
from .ceiling import CEILING_ENV, CeilingGrid, ceiling_for_suite, piecewise_ceiling_returns
from .evaluate import (
    SUITE_FALLBACK,
    evaluate,
    is_governance,
    load_model_policy,
    load_suite,
    rollout,
)
from .liquidator_procedure import ENV_ID as LIQUIDATOR_ENV
from .liquidator_procedure import (
    PROCEDURES,
    LiquidatorProcedure,
    from_record,
    judge,
    pick,
    report_section,
    select_jobs,
    select_task,
    summary_lines,
    validation_baseline,
)
from .reporting import (
    RATE_METRICS,
    ema,
    mean_ci,
    paired_verdict,
    plain,
    return_unit,
    tensorboard_command,
    verdict,
)
from .stats import ALPHA, compare, gap_closed
from .train import git_revision, read_progress, train

GOVERNANCE_ENVS = ("levgym/Governance-v0", "levgym/Governance-v1")
GOVERNANCE_V1 = GOVERNANCE_ENVS[1]
"""The governance env the benchmark can run (``BenchmarkConfig.governance_env``)."""
DEFAULT_GOVERNANCE_ENV = "levgym/Governance-v1"
"""The benchmark's governance env: v1 (a 300k-step PPO trial learns it: from -228 to about -9
bp of TVL per episode in training, +23 bp over ``static`` on held-out seeds; see the docs'
Governance-v1 page); ``--governance-env levgym/Governance-v0`` runs the older env."""
PORTFOLIO_ENV = "levgym/PortfolioGovernance-v0"
"""The multi-asset governance env, run with ``--portfolio`` (:meth:`BenchmarkConfig.with_portfolio`):
not in the default job, which it would lengthen by several minutes (docs: PortfolioGovernance)."""
PORTFOLIO_TIMESTEPS = {"quick": 4_096, "default": 32_768}
"""PPO steps per seed on PortfolioGovernance-v0 with ``--portfolio`` (``--full``: ppo.yaml's)."""
TRAINED = "ppo"
"""The trained policy's name in the report; it is compared with every other policy."""

# Objective of each env on the suite: the mean over scenarios of the mean episode return (the
# env's own reward: revenue - weighted bad debt - weighted user losses + weighted capacity for
# the governor; equity change - inventory-risk penalty for the liquidator).
OBJECTIVE = "return"

# Headline metrics per env for the report's tables (metric, label, scale, unit); the return's
# unit depends on the env's reward_scale (reporting.return_unit).
_GOVERNANCE_TABLE = (
    ("return", "return", 1.0, "return"),
    ("economic_bad_debt_usd", "bad debt incl. underwater", 1e-6, "$M"),
    ("revenue_usd", "revenue", 1e-3, "$k"),
    ("liquidated_usd", "liquidated", 1e-6, "$M"),
    ("insolvent", "insolvency rate", 1.0, ""),
)
_LIQUIDATOR_TABLE = (
    ("return", "return", 1.0, "return"),
    ("pnl_usd", "PnL", 1e-3, "$k"),
    ("max_drawdown_usd", "max drawdown", 1e-3, "$k"),
    ("bankrupt", "bankruptcy rate", 1.0, ""),
)
TABLE_METRICS = {
    "levgym/Governance-v0": _GOVERNANCE_TABLE,
    "levgym/Governance-v1": _GOVERNANCE_TABLE,
    PORTFOLIO_ENV: _GOVERNANCE_TABLE,
    "levgym/Liquidator-v1": _LIQUIDATOR_TABLE,
    LIQUIDATOR_ENV: _LIQUIDATOR_TABLE,
}
# Weight of the learning curves' exponential moving average (TensorBoard's default smoothing
# is 0.6; rollouts are logged often, so a little more).
SMOOTHING = 0.8
# The parameters drawn in the parameter-path plot, per governance env (info keys).
PATH_KEYS = {
    "levgym/Governance-v0": (
        ("liquidation_threshold", "liquidation threshold"),
        ("ltv", "LTV"),
        ("liquidation_bonus", "liquidation bonus"),
        ("slope1_apr", "rate slope1 (APR)"),
    ),
    "levgym/Governance-v1": (
        ("liquidation_threshold", "liquidation threshold"),
        ("liquidation_bonus", "liquidation bonus"),
        ("close_factor", "close factor"),
        ("slope2_apr", "rate slope2 (APR)"),
    ),
}
# Policies whose parameter paths through the crash are always drawn (the best one is added).
TRACED = ("ppo", "static", "steward")


@dataclass(frozen=True)
class BenchmarkConfig:
    """The embedded default of the main job (and its ``--quick`` and ``--full`` variants)."""

    suite: str
    timesteps: dict[str, int]
    """PPO steps per seed of each env id but the liquidator's (its runs are ``liquidator``'s)."""
    seed: int = 0
    crash_scenario: str = "black_thursday_2020"
    governance_env: str = DEFAULT_GOVERNANCE_ENV
    """The governance env trained and evaluated (v0, or v1 with the steward's levers)."""
    with_ceiling: bool = True
    """Run the hindsight ceiling (Governance-v1 only) and report each policy's share of the gap
    between ``static`` and it."""
    ceiling_segments: int = 3
    """Parts of an episode at whose starts the second, piecewise ceiling may change its
    parameters (1: the fixed ceiling only)."""
    num_seeds: int = 1
    """PPO training seeds per env: ``seed``, ``seed + 1``, ... The first one is the ``ppo``
    policy of every table; each one is evaluated on the suite and the report gives the
    objective's mean and 95% interval over seeds (3 in the default benchmark, 5 with
    ``--full``, 1 with ``--quick``)."""
    train_hyper: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """``--hyper`` overrides of the training runs per env id (none in the default; ``--quick``
    shrinks Governance-v1's behaviour-cloning warm start to its small budget)."""
    with_multiagent: bool = True
    """Run the multi-agent section (alternating best response, agents/multiagent.py; its short
    form on ``--quick``)."""
    portfolio: bool = False
    """Also train and evaluate ``levgym/PortfolioGovernance-v0`` (``--portfolio``; its budget is
    ``timesteps[PORTFOLIO_ENV]``)."""
    with_hedger: bool = True
    """Run the ``levgym/CrossProtocolHedger-v0`` section (agents/hedger_bench.py: its three
    baselines and a short PPO on the same held-out episodes; about a minute, a shorter form on
    ``--quick``)."""
    liquidator: LiquidatorProcedure = PROCEDURES["default"]
    """How the ``ppo`` liquidator is trained and selected, per seed (issue 14's procedure,
    agents/liquidator_procedure.py): two warm-started runs of ``levgym/Liquidator-v2``, one
    checkpoint selected across them on a validation set and judged on a test set (the budget
    per run: 500,000 steps by default, 600,000 with ``--full``, a smoke run with ``--quick``)."""

    def __post_init__(self) -> None:
        if LIQUIDATOR_ENV in self.timesteps:
            raise ValueError(
                f"timesteps[{LIQUIDATOR_ENV!r}] is not used; allowed the liquidator's budget in "
                "liquidator.timesteps_per_run"
            )
        if self.portfolio and PORTFOLIO_ENV not in self.timesteps:
            raise ValueError(
                f"portfolio=True needs timesteps[{PORTFOLIO_ENV!r}]; use BenchmarkConfig.with_portfolio"
            )
        if (
            isinstance(self.num_seeds, bool)
            or not isinstance(self.num_seeds, int)
            or self.num_seeds < 1
        ):
            raise ValueError(f"--seeds={self.num_seeds!r} is out of range; allowed an integer >= 1")
        if self.governance_env not in GOVERNANCE_ENVS:
            raise ValueError(
                f"governance_env={self.governance_env!r} is unknown; allowed {', '.join(GOVERNANCE_ENVS)}"
            )

    @property
    def env_ids(self) -> tuple[str, ...]:
        return (self.governance_env, LIQUIDATOR_ENV) + ((PORTFOLIO_ENV,) if self.portfolio else ())

    def with_portfolio(self, preset: str) -> BenchmarkConfig:
        """This configuration with PortfolioGovernance-v0 added: :data:`PORTFOLIO_TIMESTEPS` of
        the preset (``full``: ppo.yaml's ``total_timesteps``)."""
        if preset == "full":
            from .config import load_config

            steps = int(load_config(PORTFOLIO_ENV, "ppo")["total_timesteps"])
        else:
            steps = PORTFOLIO_TIMESTEPS[preset]
        return replace(self, portfolio=True, timesteps={**self.timesteps, PORTFOLIO_ENV: steps})

    @property
    def seeds(self) -> tuple[int, ...]:
        """The PPO training seeds, ``seed`` first."""
        return tuple(range(self.seed, self.seed + self.num_seeds))

    @classmethod
    def default(cls, governance_env: str = DEFAULT_GOVERNANCE_ENV) -> BenchmarkConfig:
        """``make demo``: :data:`DEMO_SEEDS` PPO seeds of :data:`DEMO_TIMESTEPS` steps on the
        governance env and of the liquidator's procedure (``PROCEDURES["default"]``: two runs
        of 500,000 steps per seed), sized so the whole job stays within 25 minutes on 2 cores
        with two training runs at once."""
        return cls(
            suite="default",
            timesteps={governance_env: DEMO_TIMESTEPS},
            governance_env=governance_env,
            num_seeds=DEMO_SEEDS,
            liquidator=PROCEDURES["default"],
        )

    @classmethod
    def full(cls, governance_env: str = DEFAULT_GOVERNANCE_ENV) -> BenchmarkConfig:
        """``--full``: the training budgets of levgym/configs/agents/ppo.yaml (``levgym train``'s
        defaults; for the liquidator's two runs per seed, Liquidator-v2's 600,000 steps each) and
        :data:`FULL_SEEDS` seeds per env."""
        from .config import load_config

        steps = {governance_env: int(load_config(governance_env, "ppo")["total_timesteps"])}
        return cls(
            suite="default",
            timesteps=steps,
            governance_env=governance_env,
            num_seeds=FULL_SEEDS,
            liquidator=PROCEDURES["full"],
        )

    @classmethod
    def quick(cls, governance_env: str = DEFAULT_GOVERNANCE_ENV) -> BenchmarkConfig:
        warm = ("init_from_baseline.steps=2048", "init_from_baseline.epochs=20")
        return cls(
            suite="quick",
            timesteps={governance_env: 16_384},
            governance_env=governance_env,
            train_hyper={GOVERNANCE_V1: warm} if governance_env == GOVERNANCE_V1 else {},
            liquidator=PROCEDURES["quick"],
        )


DEMO_SEEDS = 3
"""PPO training seeds per env in the default benchmark (``make demo``)."""
DEMO_TIMESTEPS = 300_000
"""PPO steps per seed on the governance env in the default benchmark (the liquidator's:
``PROCEDURES["default"].timesteps_per_run`` per run, two runs per seed)."""
FULL_SEEDS = 5
"""PPO training seeds per env in ``levgym benchmark --full``."""
PRESETS = ("quick", "default", "full")
"""The benchmark's embedded configurations (``--quick``, the default, ``--full``)."""


def preset_config(preset: str, governance_env: str = DEFAULT_GOVERNANCE_ENV) -> BenchmarkConfig:
    """The embedded configuration named ``preset`` (one of :data:`PRESETS`)."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; allowed {', '.join(PRESETS)}")
    return getattr(BenchmarkConfig, preset)(governance_env)


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
    trust_pickle: bool = False,
    governance_env: str = DEFAULT_GOVERNANCE_ENV,
    num_seeds: int | None = None,
    executor: Any = None,
    full: bool = False,
    portfolio: bool = False,
) -> Path:
    """Train, evaluate, report. Returns the report folder. Rerun on the same folder, it reuses
    trained models and resumes interrupted training; files there that need unpickling (models
    or statistics from older versions) load only with ``trust_pickle``. ``num_seeds`` PPO seeds
    are trained per env, as tasks on ``executor`` (a :class:`levgym.distributed.Executor`:
    a process pool or Ray; default: one after the other in this process). ``portfolio`` adds
    ``levgym/PortfolioGovernance-v0`` (:meth:`BenchmarkConfig.with_portfolio`)."""
    if quick and full:
        raise ValueError("--quick and --full exclude each other; allowed one of them")
    preset = "quick" if quick else "full" if full else "default"
    cfg = config or preset_config(preset, governance_env)
    if num_seeds is not None and num_seeds != cfg.num_seeds:
        cfg = replace(cfg, num_seeds=num_seeds)
    if portfolio and not cfg.portfolio:
        cfg = cfg.with_portfolio(preset)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    out_dir = Path(out) if out else naming.new_run_dir("benchmark", cfg.suite, cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = load_suite(name=cfg.suite)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    models: dict[str, str] = {}
    traces: dict[str, dict[str, list[dict[str, float]]]] = {}
    trained_on: dict[str, list[str] | None] = {}
    comparisons: dict[str, list[dict[str, Any]]] = {}
    ceilings: dict[str, dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    lost: dict[str, dict[str, float]] = {}
    liq_target: dict[str, Any] | None = None
    # every training run is one task: here in order, in a process pool (--jobs) or on Ray
    # (--ray); a run's folder and numbers do not depend on which. The liquidator's runs (the
    # longest) go first.
    jobs = liquidator_train_jobs(cfg, out_dir, command, trust_pickle) + [
        TrainJob(
            env_id,
            seed,
            str(_run_dir(out_dir, env_id, seed)),
            cfg.timesteps[env_id],
            command,
            trust_pickle,
            cfg.train_hyper.get(env_id, ()),
        )
        for env_id in cfg.env_ids
        if env_id != LIQUIDATOR_ENV
        for seed in cfg.seeds
    ]
    t0 = time.perf_counter()
    liq = cfg.liquidator
    _say(
        progress,
        "training PPO: "
        + ", ".join(
            f"{_slug(e)} {cfg.timesteps[e]:,} steps" for e in cfg.env_ids if e != LIQUIDATOR_ENV
        )
        + f", {_slug(LIQUIDATOR_ENV)} {len(liq.risk_aversions)} runs of "
        f"{liq.timesteps_per_run:,} steps (risk aversion "
        + ", ".join(f"{r:g}" for r in liq.risk_aversions)
        + f"); seeds {', '.join(map(str, cfg.seeds))} ({describe_executor(executor)})",
    )
    _map(executor, _train_task, None, jobs, "levgym benchmark training", progress, train_job)
    timings["train_s"] = time.perf_counter() - t0
    # the liquidator: one checkpoint per seed, selected across its runs on the validation set
    t0 = time.perf_counter()
    _say(
        progress,
        f"[{_slug(LIQUIDATOR_ENV)}] selecting a checkpoint per seed on the validation set "
        f"({liq.validation_episodes} episodes per scenario from seed {liq.validation_seed:,})",
    )
    picks = select_liquidators(cfg, out_dir, executor, progress)
    timings["select_liquidator_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    liq_target = judge(liq, picks, progress=(lambda x: _say(progress, x)))
    timings["test_liquidator_s"] = time.perf_counter() - t0
    model_files = {
        env_id: {
            seed: Path(picks[str(seed)]["model_path"])
            if env_id == LIQUIDATOR_ENV
            else _run_dir(out_dir, env_id, seed) / "model.zip"
            for seed in cfg.seeds
        }
        for env_id in cfg.env_ids
    }
    seed_objectives: dict[str, dict[str, float]] = {}
    for env_id in cfg.env_ids:
        slug = _slug(env_id)
        model_file = model_files[env_id][cfg.seed]
        run_dir = (
            Path(picks[str(cfg.seed)]["run"])
            if env_id == LIQUIDATOR_ENV
            else _run_dir(out_dir, env_id, cfg.seed)
        )
        runs[env_id] = str(run_dir)
        models[env_id] = str(model_file)
        trained_on[env_id] = _training_scenarios(run_dir)
        policies: dict[str, Any] = {
            "ppo": load_model_policy(model_file, env_id, trust_pickle=trust_pickle)
        }
        for name in baseline_names(env_id):
            policies[name] = make_baseline(name, env_id, seed=cfg.seed)
        t0 = time.perf_counter()
        results[env_id] = {}
        for name, policy in policies.items():
            _say(progress, f"[{slug}] evaluating {name}")
            results[env_id][name] = evaluate(
                policy, env_id, suite, progress=progress, keep_episodes=True
            )
        per_seed = {str(cfg.seed): objective(results[env_id][TRAINED])}
        for seed in cfg.seeds[1:]:
            _say(progress, f"[{slug}] evaluating ppo seed {seed}")
            policy = load_model_policy(model_files[env_id][seed], env_id, trust_pickle=trust_pickle)
            res = evaluate(policy, env_id, suite, progress=progress)
            per_seed[str(seed)] = objective(res)
        seed_objectives[env_id] = per_seed
        timings[f"evaluate_{slug}_s"] = time.perf_counter() - t0
        # paired comparisons on the same episodes (common random numbers), Holm-corrected
        episodes = {n: episode_returns(r) for n, r in results[env_id].items()}
        comparisons[env_id] = compare(
            episodes, [TRAINED], [n for n in episodes if n != TRAINED], seed=cfg.seed
        )
        lost[env_id] = unwinnable(
            results[env_id], "insolvent" if is_governance(env_id) else "bankrupt"
        )
        if cfg.with_ceiling and env_id == CEILING_ENV:
            _say(
                progress,
                f"[{slug}] hindsight ceiling (best fixed parameters per episode"
                + (
                    f"; a piecewise schedule over {cfg.ceiling_segments} parts)"
                    if cfg.ceiling_segments > 1
                    else ")"
                ),
            )
            t0 = time.perf_counter()
            ceilings[env_id] = run_ceiling(env_id, suite, segments=cfg.ceiling_segments)
            timings[f"ceiling_{slug}_s"] = time.perf_counter() - t0
            scen_ids = suite.for_env(env_id).scenarios
            values = ceilings[env_id]["episode_values"]
            best = np.concatenate([values[s]["return"] for s in scen_ids])
            gaps[env_id] = {
                n: gap_closed(ep, episodes["static"], best, seed=cfg.seed)
                for n, ep in episodes.items()
            }
            if cfg.ceiling_segments > 1:
                best_pw = np.concatenate([values[s]["piecewise"] for s in scen_ids])
                for n, ep in episodes.items():
                    pw = gap_closed(ep, episodes["static"], best_pw, seed=cfg.seed)
                    gaps[env_id][n]["share_of_piecewise"] = pw["share"]
                    gaps[env_id][n]["share_of_piecewise_ci95"] = pw["share_ci95"]
        if is_governance(env_id) and env_id in PATH_KEYS:  # single-asset crash replays only
            entry = suite.for_env(env_id)
            traces[env_id] = {}
            best = max(results[env_id], key=lambda n: objective(results[env_id][n]))
            for name in dict.fromkeys((*TRACED, best)):
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
    ma_doc: dict[str, Any] | None = None
    ma_md = ""
    if cfg.with_multiagent:
        from .multiagent import MultiAgentConfig, multiagent_section, render_report, run_multiagent

        _say(progress, "[multiagent] alternating best response (governor vs learning liquidators)")
        t0 = time.perf_counter()
        ma_cfg = MultiAgentConfig.quick(cfg.seed) if quick else MultiAgentConfig(seed=cfg.seed)
        ma_dir = out_dir / "multiagent"
        ma_res = run_multiagent(ma_cfg, ma_dir, progress=progress)
        timings["multiagent_s"] = time.perf_counter() - t0
        ma_doc = multiagent_section(ma_res, ma_dir)
        ma_md = "\n" + render_report(ma_res, heading="## Multi-agent: alternating best response")
    hedger_doc: dict[str, Any] | None = None
    hedger_md = ""
    if cfg.with_hedger:
        from .hedger_bench import HedgerBenchConfig, render_section, run_hedger_section

        _say(progress, "[crossprotocolhedger-v0] the baselines and a short PPO")
        t0 = time.perf_counter()
        h_cfg = HedgerBenchConfig.quick(cfg.seed) if quick else HedgerBenchConfig(seed=cfg.seed)
        hedger_doc = run_hedger_section(h_cfg, out_dir / "hedger", progress=progress)
        timings["hedger_s"] = time.perf_counter() - t0
        hedger_md = "\n" + render_section(hedger_doc)
    timings["total_s"] = time.perf_counter() - started

    meta = benchmark_meta(cfg, suite, command, quick, timings, runs, trained_on, list(results))
    meta["executor"] = describe_executor(executor)
    meta["models"] = models
    doc = results_document(
        meta, results, comparisons, ceilings, gaps, lost, seed_objectives, ma_doc, liq_target,
        hedger_doc,
    )  # fmt: skip
    write_json(out_dir / "results.json", doc)
    write_text(out_dir / "results.csv", _csv(results))
    plots = _plots(out_dir, results, traces, runs, doc["objective"], meta)
    report = _report(meta, results, doc["objective"], doc["objective_ci95"], plots, doc)
    write_text(out_dir / "report.md", report + ma_md + hedger_md)
    _say(progress, f"report written to {out_dir / 'report.md'} ({timings['total_s']:.0f} s)")
    return out_dir


def benchmark_meta(
    cfg: BenchmarkConfig,
    suite: Any,
    command: str,
    quick: bool,
    timings: dict[str, float],
    runs: dict[str, str],
    trained_on: dict[str, list[str] | None],
    env_ids: list[str],
) -> dict[str, Any]:
    """How the benchmark was produced: command, config, suite, env ids with versions, machine."""
    return {
        "command": command,
        "quick": quick,
        "config": asdict(cfg),
        "env_ids": list(env_ids),
        "eval_suite": {
            "name": suite.name,
            "episodes": suite.episodes,
            "seed": suite.seed,
            "envs": {
                k: {"scenario_names": list(v.scenarios), "env_kwargs": v.env_kwargs}
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


def episode_returns(result: dict[str, Any]) -> np.ndarray:
    """A policy's episode returns over the suite, scenario after scenario in the suite's order
    (episode ``i`` of a scenario seeded ``suite.seed + i``: the same paths for every policy)."""
    values = result["episode_values"]
    return np.concatenate([np.asarray(values[s]["return"]) for s in result["scenarios"]])


def unwinnable(per_policy: dict[str, dict[str, Any]], key: str) -> dict[str, float]:
    """Per scenario, the share of episodes that every policy ended by ``key`` (insolvency,
    bankruptcy): episodes no evaluated policy could save."""
    first = next(iter(per_policy.values()))
    out = {}
    for scenario in first["scenarios"]:
        ended = np.stack(
            [np.asarray(r["episode_values"][scenario][key]) for r in per_policy.values()]
        )
        out[scenario] = float(np.mean(np.all(ended > 0, axis=0)))
    return out


def run_ceiling(
    env_id: str, suite: Any, grid: CeilingGrid | None = None, segments: int = 1
) -> dict[str, Any]:
    """The hindsight ceiling on the suite's episodes of ``env_id``: per scenario its mean with a
    95% interval, every episode's value, the objective (mean over scenarios) and the grid size.
    With ``segments`` > 1 also the best piecewise schedule
    (:func:`agents.ceiling.piecewise_ceiling_returns`, ``segments`` times the cost): its
    objective, per scenario and per episode under ``piecewise``."""
    from .evaluate import mean_ci as estimate

    entry = suite.for_env(env_id)
    grid = grid or CeilingGrid()
    if segments > 1:
        runs = {
            s: piecewise_ceiling_returns(
                s, suite.episodes, suite.seed, entry.env_kwargs, grid, segments
            )
            for s in entry.scenarios
        }
        fixed = {s: r["fixed_best"] for s, r in runs.items()}
    else:
        runs = ceiling_for_suite(
            entry.scenarios, suite.episodes, suite.seed, entry.env_kwargs, grid
        )
        fixed = {s: r["best"] for s, r in runs.items()}
    scen = {s: {OBJECTIVE: estimate(b)} for s, b in fixed.items()}
    values = {s: {OBJECTIVE: [float(x) for x in b]} for s, b in fixed.items()}
    out = {
        "ceiling_objective": float(np.mean([v[OBJECTIVE]["mean"] for v in scen.values()])),
        "grid_points": len(grid.points()),
        "segments": segments,
        "scenarios": scen,
        "episode_values": values,
    }
    if segments > 1:
        for s, r in runs.items():
            scen[s]["piecewise"] = estimate(r["best"])
            values[s]["piecewise"] = [float(x) for x in r["best"]]
        out["piecewise_objective"] = float(np.mean([v["piecewise"]["mean"] for v in scen.values()]))
    return out


def results_document(
    meta: dict[str, Any],
    results: dict[str, dict[str, Any]],
    comparisons: dict[str, list[dict[str, Any]]] | None = None,
    ceilings: dict[str, dict[str, Any]] | None = None,
    gaps: dict[str, dict[str, Any]] | None = None,
    lost: dict[str, dict[str, float]] | None = None,
    seed_objectives: dict[str, dict[str, float]] | None = None,
    multiagent: dict[str, Any] | None = None,
    liquidator_target: dict[str, Any] | None = None,
    hedger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results.json object (objective per env and policy, evaluate's results, meta, the
    paired comparisons, the hindsight ceiling and the share of its gap each policy closes, the
    liquidator's target of issue 14 when evaluated), checked against the output contract
    (levgym.results)."""
    doc = {
        "meta": meta,
        "objective": {
            env_id: {name: objective(r) for name, r in per.items()}
            for env_id, per in results.items()
        },
        "objective_ci95": {
            env_id: {name: objective_ci(r) for name, r in per.items()}
            for env_id, per in results.items()
        },
        "results": results,
        "comparisons": comparisons or {},
        "ceiling": ceilings or {},
        "gap_closed": gaps or {},
        "unwinnable": lost or {},
        "ppo_seeds": {
            env_id: seed_summary(per_seed) for env_id, per_seed in (seed_objectives or {}).items()
        },
    }
    if multiagent is not None:
        doc["multiagent"] = multiagent
    if liquidator_target is not None:
        doc["liquidator_target"] = liquidator_target
    if hedger is not None:
        doc["cross_protocol_hedger"] = hedger
    return checked("results.json", doc)


def seed_summary(per_seed: dict[str, float]) -> dict[str, Any]:
    """The objective of each PPO training seed and their mean with a 95% Student-t interval
    over seeds (``ci95`` null with one seed)."""
    from .evaluate import mean_ci as estimate

    est = estimate(np.array(list(per_seed.values())))
    return {"seed_objectives": dict(per_seed), **est}


CSV_COLUMNS = ("env_id", "policy", "scenario", "metric", "mean", "ci95", "n")


def _training_env_kwargs(run_dir: Path) -> dict[str, Any]:
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    return dict(cfg["hyperparameters"].get("env_kwargs", {}))


def _training_scenarios(run_dir: Path) -> list[str] | None:
    """The scenario mix a run trained on (None: the env's default mix)."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    names = cfg["hyperparameters"].get("env_kwargs", {}).get("scenarios")
    return [names] if isinstance(names, str) else (list(names) if names else None)


def _run_dir(out_dir: Path, env_id: str, seed: int) -> Path:
    """A training run's folder: the run-folder scheme of levgym.naming, without the time (the
    report folder has it)."""
    return out_dir / "train" / naming.run_name(naming.env_part(env_id), "ppo", seed, time=False)


@dataclass(frozen=True)
class TrainJob:
    """One PPO training run of the benchmark (plain arguments: it runs in any process)."""

    env_id: str
    seed: int
    run_dir: str
    timesteps: int
    command: str
    trust_pickle: bool = False
    hyper: tuple[str, ...] = ()
    """``--hyper`` overrides (:attr:`BenchmarkConfig.train_hyper`; tests make runs tiny with them)."""


def train_job(job: TrainJob, progress: bool = False) -> str:
    """Train ``job`` into its folder, reuse it when finished, or resume it when interrupted."""
    run_dir = Path(job.run_dir)
    slug = _slug(job.env_id)
    if (run_dir / "model.zip").exists():
        _say(progress, f"[{slug}] reusing the trained model in {run_dir}")
    elif (run_dir / "config.yaml").exists():
        train(
            job.env_id,
            resume=run_dir,
            progress=progress,
            command=job.command,
            trust_pickle=job.trust_pickle,
        )
    else:
        train(
            job.env_id,
            "ppo",
            total_timesteps=job.timesteps,
            seed=job.seed,
            out=run_dir,
            hyper=list(job.hyper),
            progress=progress,
            command=job.command,
        )
    return str(run_dir)


def _train_task(shared: Any, job: TrainJob) -> str:
    return train_job(job, progress=False)


def liquidator_train_jobs(
    cfg: BenchmarkConfig, out_dir: Path, command: str, trust_pickle: bool = False
) -> list[TrainJob]:
    """The liquidator's training runs: per seed one run per risk aversion of
    ``cfg.liquidator`` (:meth:`LiquidatorProcedure.hyper`; ``cfg.train_hyper`` of the
    liquidator's env after them), into ``<out_dir>/train``."""
    proc = cfg.liquidator
    extra = cfg.train_hyper.get(LIQUIDATOR_ENV, ())
    return [
        TrainJob(
            LIQUIDATOR_ENV,
            seed,
            str(run),
            proc.timesteps_per_run,
            command,
            trust_pickle,
            proc.hyper(ra) + tuple(extra),
        )
        for seed in cfg.seeds
        for ra, run in proc.run_dirs(out_dir / "train", seed).items()
    ]


def select_liquidators(
    cfg: BenchmarkConfig, out_dir: Path, executor: Any = None, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Per training seed, the checkpoint selected across its liquidator runs on the validation
    set (:func:`agents.liquidator_procedure.pick`; each run's checkpoints judged as one task on
    ``executor``, against ``greedy_hedged``'s validation episodes evaluated once here)."""
    proc = cfg.liquidator
    train_dir = out_dir / "train"
    jobs = select_jobs(proc, train_dir, cfg.seeds)
    results = _map(
        executor,
        select_task,
        validation_baseline(proc),
        jobs,
        "levgym benchmark checkpoint selection",
        progress,
    )
    picks, k = {}, 0
    for seed in cfg.seeds:
        run_dirs = proc.run_dirs(train_dir, seed)
        picks[str(seed)] = pick(run_dirs, results[k : k + len(run_dirs)])
        k += len(run_dirs)
        sel = picks[str(seed)]
        _say(
            progress,
            f"[{_slug(LIQUIDATOR_ENV)}] seed {seed}: selected risk aversion "
            f"{sel['risk_aversion']:g}, {sel['checkpoint_steps']:,} steps (validation margin "
            f"{sel['validation_score']:+.2f})",
        )
    return picks


def _map(
    executor: Any,
    fn: Any,
    shared: Any,
    jobs: list[Any],
    desc: str,
    progress: bool,
    here: Any = None,
) -> list[Any]:
    """``fn(shared, job)`` for every job, on ``executor`` with a progress bar, or in this
    process in order (``here(job, progress)`` instead when given)."""
    if executor is None:
        if here is not None:
            return [here(job, progress) for job in jobs]
        return [fn(shared, job) for job in jobs]
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="task", disable=not progress, file=sys.stderr)
    try:
        return executor.map(fn, shared, jobs, bar)
    finally:
        bar.close()


def describe_executor(executor: Any) -> str:
    """``this process``, ``process pool (J workers, spawn)`` or ``ray (...)``."""
    if executor is None:
        return "this process"
    if hasattr(executor, "settings"):
        s = executor.settings
        return f"ray ({executor.workers} workers x {s.threads} thread(s), {s.address or 'local'})"
    return f"process pool ({executor.workers} workers, spawn)"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _csv(results: dict[str, dict[str, Any]]) -> str:
    """results.csv: one row per env, policy, scenario and metric (every metric a result key)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(checked_columns("results.csv", CSV_COLUMNS))
    for env_id, per in results.items():
        for policy, r in per.items():
            for scenario, metrics in r["scenarios"].items():
                for metric, v in metrics.items():
                    if metric not in REGISTRY:
                        raise ValueError(f"metric {metric!r} is not in levgym.results.REGISTRY")
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


def _fmt(v: dict[str, Any], scale: float, rate: bool = False) -> str:
    ci = None if v["ci95"] is None else v["ci95"] * scale
    return mean_ci(v["mean"] * scale, ci, rate=rate)


def _eval_kwargs(meta: dict[str, Any], env_id: str) -> dict[str, Any]:
    return _suite_entry(meta, env_id).get("env_kwargs", {})


def _suite_entry(meta: dict[str, Any], env_id: str) -> dict[str, Any]:
    """The suite's entry an env was evaluated with (its own, else :data:`SUITE_FALLBACK`'s)."""
    envs = meta["eval_suite"]["envs"]
    return envs.get(env_id) or envs.get(SUITE_FALLBACK.get(env_id, ""), {})


def _model_file(meta: dict[str, Any], env_id: str) -> str:
    """The ``ppo`` model of ``env_id``: ``meta["models"]``' (the liquidator's selected
    checkpoint), else its run's ``model.zip``; empty when the env was not trained."""
    model = meta.get("models", {}).get(env_id)
    if model:
        return str(model)
    run = meta.get("runs", {}).get(env_id)
    return str(Path(run) / "model.zip") if run else ""


def _liquidator_text(config: dict[str, Any]) -> str:
    proc = config.get("liquidator")
    if not proc:
        return "none"
    return from_record(proc).describe() + " (agents/liquidator_procedure.py)"


def _objective_rows(obj: dict[str, float], cis: dict[str, float | None]) -> list[list[str]]:
    """rank, policy, objective, 95% interval, best first (the mean to the interval's precision)."""
    rows = []
    for i, name in enumerate(sorted(obj, key=lambda n: -obj[n])):
        cell = mean_ci(obj[name], cis[name])
        mean, _, half = cell.partition(" ± ")
        rows.append([str(i + 1), name, mean, f"± {half}" if half else "n/a"])
    return rows


def _report(
    meta: dict[str, Any],
    results: dict[str, dict[str, Any]],
    objectives: dict[str, dict[str, float]],
    objective_cis: dict[str, dict[str, float | None]],
    plots: dict[str, str],
    doc: dict[str, Any] | None = None,
) -> str:
    doc = doc or {}
    lines = ["# levgym benchmark report", ""]
    lines += [
        "How this was produced:",
        "",
        f"- command: `{meta['command']}`",
        f"- levgym {meta['levgym_version']}, git {meta['git_revision']}, Python {meta['python']}, {meta['machine']}, finished {meta['finished']}",
        f"- environments (Gymnasium ids; the `-vN` suffix is the env version): {', '.join(f'`{e}`' for e in meta['env_ids'])}",
        f"- training: PPO ({', '.join(f'{k}: {v:,} steps' for k, v in meta['config']['timesteps'].items())}), {_seed_text(meta['config'])} "
        "hyperparameters from `levgym/configs/agents/ppo.yaml` (the resolved config is in each run folder)",
        f"- the liquidator: {_liquidator_text(meta['config'])}",
        f"- evaluation: suite `{meta['eval_suite']['name']}`, {meta['eval_suite']['episodes']} episodes per scenario on held-out seeds "
        f"from {meta['eval_suite']['seed']:,} (training never uses seeds in the evaluation range); cells are mean ± half-width of a "
        "95% Student-t interval over episodes ([low, high] clipped to [0, 1] for rates)",
        f"- wall time: {meta['timings_s']['total_s']:.0f} s ({', '.join(f'{k} {v:.0f}' for k, v in meta['timings_s'].items() if k != 'total_s')})",
        "",
    ]
    for env_id, per in results.items():
        obj = objectives[env_id]
        ranked = sorted(obj, key=lambda n: -obj[n])
        unit = return_unit(env_id, _eval_kwargs(meta, env_id))
        lines += [f"## {env_id}", ""]
        lines += [
            f"Objective (mean over scenarios of mean episode return, in {unit}; higher is better):",
            "",
        ]
        cis = objective_cis[env_id]
        lines += [f"| rank | policy | objective ({unit}) | 95% interval |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in _objective_rows(obj, cis)]
        lines.append("")
        lines += _significance_lines(env_id, doc, unit, True, obj, cis)
        lines += _seed_lines(doc.get("ppo_seeds", {}).get(env_id), unit)
        if env_id == LIQUIDATOR_ENV:
            lines += report_section(doc.get("liquidator_target"))
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
            labels = [
                f"{label} ({unit if u == 'return' else u})" if u else label
                for _, label, _, u in metrics
            ]
            lines += ["| policy | " + " | ".join(labels) + " |", "|" + "---|" * (len(metrics) + 1)]
            for policy in ranked:
                m = per[policy]["scenarios"][scenario]
                cells = [_fmt(m[k], s, rate=k in RATE_METRICS) for k, _, s, _ in metrics]
                lines.append(f"| {policy} | " + " | ".join(cells) + " |")
            lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for title, file in plots.items():
            lines += [f"### {title}", "", f"![{title}]({file})", ""]
    lines += [f"TensorBoard logs of both runs: `{tensorboard_command(meta['runs'])}`", ""]
    return "\n".join(lines)


def _seed_text(config: dict[str, Any]) -> str:
    n = int(config.get("num_seeds", 1))
    first = int(config["seed"])
    return (
        f"seed {first}," if n == 1 else f"seeds {first} to {first + n - 1} (tables: seed {first}),"
    )


def _seed_lines(seeds: dict[str, Any] | None, unit: str) -> list[str]:
    """The PPO objective over training seeds (only when more than one seed was trained)."""
    if not seeds or seeds["n"] < 2:
        return []
    values = ", ".join(f"seed {k}: {plain(v)}" for k, v in seeds["seed_objectives"].items())
    return [
        f"PPO over {seeds['n']} training seeds (objective in {unit}, each seed's model on the "
        f"whole suite): {mean_ci(seeds['mean'], seeds['ci95'])} (mean ± 95% interval over "
        f"seeds); {values}. The tables show seed {next(iter(seeds['seed_objectives']))}.",
        "",
    ]


def summary(out_dir: str | os.PathLike) -> str:
    """What ``levgym benchmark`` prints at the end, from the report folder's ``results.json``:
    per env the objective table, the verdict with its significance and where the model is;
    then the report, the TensorBoard command and an ``evaluate`` command to try next."""
    import json

    out = Path(out_dir)
    data = json.loads((out / "results.json").read_text())
    meta = data["meta"]
    lines: list[str] = []
    for env_id, obj in data["objective"].items():
        cis = data["objective_ci95"][env_id]
        unit = return_unit(env_id, _eval_kwargs(meta, env_id))
        suite = meta["eval_suite"]
        lines += [
            "",
            f"{env_id}: objective = mean episode return in {unit} (higher is better), "
            f"suite {suite['name']}, {suite['episodes']} held-out episodes per scenario",
        ]
        rows = [["rank", "policy", "objective", "95% interval"], *_objective_rows(obj, cis)]
        widths = [max(len(r[j]) for r in rows) for j in range(4)]
        for r in rows:
            lines.append(
                "  "
                + "  ".join(
                    c.rjust(w) if j in (0, 2) else c.ljust(w)
                    for j, (c, w) in enumerate(zip(r, widths, strict=True))
                ).rstrip()
            )
        lines += ["  " + x for x in _significance_lines(env_id, data, unit, False, obj, cis)]
        lines += ["  " + x for x in _seed_lines(data.get("ppo_seeds", {}).get(env_id), unit) if x]
        target = data.get("liquidator_target") if env_id == LIQUIDATOR_ENV else None
        lines += ["  " + x for x in summary_lines(target)]
        model = _model_file(meta, env_id)
        if model and not target:  # the liquidator's: in its target's lines, per seed
            lines.append(f"  model: {model}")
    lines += ["", f"report: {out / 'report.md'} (tables per scenario, plots)"]
    if meta.get("runs"):
        lines.append(f"training curves: {tensorboard_command(meta['runs'])}")
        lines.append("try next:")
        crash = meta["config"].get("crash_scenario")
        for env_id in meta["runs"]:
            model = shlex.quote(_model_file(meta, env_id))
            cmd = f"levgym evaluate --model {model} --env {env_id}"
            if crash and crash in _suite_entry(meta, env_id).get("scenario_names", []):
                cmd += f" --scenario {crash}"
            lines.append(f"  {cmd}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _significance_lines(
    env_id: str,
    doc: dict[str, Any],
    unit: str,
    markdown: bool,
    obj: dict[str, float],
    cis: dict[str, float | None],
) -> list[str]:
    """The verdict: from the paired comparisons when the document has them (else from the
    intervals of the objective ``obj``, ``cis``), then the unwinnable episodes, the hindsight
    ceiling and the share of its gap closed."""
    records = doc.get("comparisons", {}).get(env_id)
    if records:
        headline, detail = paired_verdict(records, TRAINED, ALPHA)
    else:
        headline, detail = verdict(obj, cis)
    lines = [f"**{headline}** {detail}", ""] if markdown else [headline, detail]
    if records and markdown:
        lines += [
            f"Paired on the same episodes ({unit} per episode; {TRAINED} minus the baseline):",
            "",
            "| baseline | mean difference | 95% interval | effect size d_z [95%] | Wilcoxon p | Holm p | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sorted(records, key=lambda r: -r["mean_diff"]):
            lo, hi = r["mean_diff_ci95"]
            dlo, dhi = r["effect_size_dz_ci95"]
            lines.append(
                f"| {r['baseline']} | {plain(r['mean_diff'])} | [{plain(lo)}, {plain(hi)}] | "
                f"{plain(r['effect_size_dz'], 2)} [{plain(dlo, 2)}, {plain(dhi, 2)}] | "
                f"{r['p_value']:.2g} | {r['p_holm']:.2g} | {r['verdict']} |"
            )
        lines.append("")
    lost = {s: f for s, f in doc.get("unwinnable", {}).get(env_id, {}).items() if f > 0}
    if lost:
        text = "Unwinnable episodes (every policy ended insolvent or bankrupt): " + ", ".join(
            f"{s} {100 * f:.0f}%" for s, f in lost.items()
        )
        lines += [text + ".", ""] if markdown else [text + "."]
    elif "unwinnable" in doc:
        lines += (
            ["No episode was lost by every policy.", ""]
            if markdown
            else ["No episode was lost by every policy."]
        )
    ceiling = doc.get("ceiling", {}).get(env_id)
    gaps = doc.get("gap_closed", {}).get(env_id, {})
    if ceiling:
        text = (
            f"Hindsight ceiling: {plain(ceiling['ceiling_objective'])} ({unit}; the best of "
            f"{ceiling['grid_points']} fixed parameter sets per episode, chosen after seeing the "
            "path: a reference, not a target)."
        )
        piecewise = ceiling.get("piecewise_objective")
        if piecewise is not None:
            text += (
                f" A piecewise schedule in hindsight (the set may change at the starts of "
                f"{ceiling['segments']} equal parts of the episode, chosen greedily forward): "
                f"{plain(piecewise)}."
            )
        text += " Share of the gap between static and the fixed ceiling closed:"
        shares = sorted(
            ((n, g) for n, g in gaps.items() if g["share"] is not None),
            key=lambda x: -x[1]["share"],
        )
        if markdown:
            lines += [
                text,
                "",
                "| policy | share of the gap closed | 95% interval | share of the piecewise gap | 95% interval |",
                "|---|---|---|---|---|",
            ]
            for n, g in shares:
                lo, hi = g["share_ci95"]
                pw = g.get("share_of_piecewise")
                plo, phi = g.get("share_of_piecewise_ci95") or (None, None)
                pw_cells = (
                    f"{plain(pw, 2)} | [{plain(plo, 2)}, {plain(phi, 2)}]"
                    if pw is not None
                    else "- | -"
                )
                lines.append(
                    f"| {n} | {plain(g['share'], 2)} | [{plain(lo, 2)}, {plain(hi, 2)}] | "
                    f"{pw_cells} |"
                )
            lines.append("")
        else:
            lines.append(text + " " + ", ".join(f"{n} {plain(g['share'], 2)}" for n, g in shares))
    return lines


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plots(out_dir: Path, results, traces, runs, objectives, meta) -> dict[str, str]:
    plt = _plt()
    files: dict[str, str] = {}
    # Parameter paths through a crash; the policy with the best objective drawn thick.
    gov = next((e for e in results if e in PATH_KEYS), "levgym/Governance-v0")
    if traces.get(gov):
        obj = objectives.get(gov, {})
        best = max(obj, key=obj.get) if obj else None
        keys = PATH_KEYS[gov]
        fig, axes = plt.subplots(2, 3, figsize=(15, 7))
        flat = axes.ravel()
        for name, trace in traces[gov].items():
            t = np.arange(1, len(trace) + 1)
            style: dict[str, Any] = {"label": name, "linewidth": 1.2, "alpha": 0.85}
            if name == best:
                style.update(label=f"{name} (best objective)", linewidth=3.0, alpha=1.0, zorder=5)
            for ax, (key, label) in zip(flat, keys, strict=False):
                ax.plot(t, [row.get(key, np.nan) for row in trace], **style)
                ax.set_title(label)
            economic = [row.get("economic_bad_debt_usd", 0.0) for row in trace]
            flat[4].plot(t, np.cumsum(economic) / 1e6, **style)
            flat[4].set_title("bad debt incl. underwater, cumulative ($M)")
            flat[5].plot(
                t, np.cumsum([row.get("revenue_usd", 0.0) for row in trace]) / 1e3, **style
            )
            flat[5].set_title("revenue, cumulative ($k)")
        for ax in flat:
            ax.set_xlabel("hours")
        flat[0].legend()
        fig.suptitle(
            f"parameters chosen through {meta['config']['crash_scenario']} (never trained on); "
            "a line ends where its episode ends"
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
            np.mean([s["economic_bad_debt_usd"]["mean"] for s in per[n]["scenarios"].values()])
            / 1e6
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
    # Learning curves: the logged points faint, their moving average on top.
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, (env_id, run_dir) in zip(axes[0], runs.items(), strict=False):
        rows = [r for r in read_progress(run_dir) if "rollout/ep_rew_mean" in r]
        if rows:
            x = [r["time/total_timesteps"] for r in rows]
            y = [r["rollout/ep_rew_mean"] for r in rows]
            ax.plot(x, y, color="tab:blue", alpha=0.35, linewidth=1.0, label="logged")
            ax.plot(x, ema(y, SMOOTHING), color="tab:blue", linewidth=2.0, label="smoothed (EMA)")
            ax.legend(loc="lower right")
        ax.set_title(f"{env_id}: mean episode return while training")
        ax.set_xlabel("timesteps")
        ax.set_ylabel(f"return ({return_unit(env_id, _training_env_kwargs(Path(run_dir)))})")
    fig.tight_layout()
    save_figure(fig, out_dir / "learning_curves.png")
    plt.close(fig)
    files["Learning curves"] = "learning_curves.png"
    return files
