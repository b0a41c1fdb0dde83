"""Evaluation on a suite of named scenarios with held-out seeds: per-episode metrics, means and
95% confidence intervals, for trained models and rule-based baselines alike."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from levgym import __version__
from levgym import scenarios as scenario_lib
from levgym.configs import config_dir
from levgym.results import METRICS

from .persist import NormStats

SUITE_DIR = config_dir("suites")
ENV_IDS = (
    "levgym/Governance-v0",
    "levgym/Governance-v1",
    "levgym/Governance-v2",
    "levgym/Liquidator-v1",
    "levgym/Liquidator-v2",
    "levgym/Liquidator-v3",
    "levgym/PortfolioGovernance-v0",
    "levgym/CrossProtocolHedger-v0",
)
"""The env ids evaluate knows (their per-episode metrics are ``levgym.results.METRICS``)."""

SUITE_FALLBACK = {
    "levgym/Liquidator-v2": "levgym/Liquidator-v1",
    "levgym/Liquidator-v3": "levgym/Liquidator-v1",
    "levgym/Governance-v2": "levgym/Governance-v1",
}
"""The suite entry an env id without its own uses (same scenarios, settings and seeds; the
warm-book ids keep their warm books, which the entry's ``env_kwargs`` do not name)."""

# Per-episode metrics, by env (units and meanings in levgym.results).
GOVERNANCE_METRICS = METRICS["levgym/Governance-v0"]
LIQUIDATOR_METRICS = METRICS["levgym/Liquidator-v1"]


MULTIASSET_ENVS = ("levgym/PortfolioGovernance-v0", "levgym/CrossProtocolHedger-v0")
"""Env ids whose scenarios are multi-asset ones (:mod:`levgym.scenarios.multiasset`)."""

HEDGER_ENVS = ("levgym/CrossProtocolHedger-v0",)
"""Env ids of the cross-protocol hedger (one leveraged account kept out of liquidation)."""


def is_governance(env_id: str) -> bool:
    """Whether ``env_id`` is a governance env (any version, single- or multi-asset)."""
    return env_id.startswith(("levgym/Governance-", "levgym/PortfolioGovernance-"))


def hedger_cost_usd(info: dict[str, Any]) -> np.ndarray:
    """The hedger's protection cost of one step ``[E]`` (USD): gas, pool slippage and perp fees
    paid, less perp funding received (``cost_usd`` in :mod:`levgym.results`)."""
    return info["gas_usd"] + info["slippage_usd"] + info["perp_fee_usd"] - info["funding_usd"]


@dataclass(frozen=True)
class EnvSuite:
    """The scenarios and env settings one env is evaluated on."""

    scenarios: tuple[str, ...]
    env_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A named evaluation suite: episodes per scenario, the first evaluation seed, envs."""

    name: str
    episodes: int
    seed: int
    envs: dict[str, EnvSuite]

    def for_env(self, env_id: str) -> EnvSuite:
        """The env's entry; a suite without one for a newer version of an env it has uses that
        env's entry (:data:`SUITE_FALLBACK`: Liquidator-v2 and -v3 are evaluated on
        Liquidator-v1's scenarios and ``env_kwargs``, Governance-v2 on Governance-v1's)."""
        if env_id not in self.envs and SUITE_FALLBACK.get(env_id) in self.envs:
            return self.envs[SUITE_FALLBACK[env_id]]
        if env_id not in self.envs:
            raise ValueError(
                f"suite {self.name!r} has no entry for {env_id!r}; it has {', '.join(self.envs)}"
            )
        return self.envs[env_id]


def load_suite(path: str | os.PathLike | None = None, name: str = "default") -> Suite:
    """A suite from YAML: ``path``, else the shipped ``levgym/configs/suites/<name>.yaml``."""
    file = Path(path) if path else SUITE_DIR / f"{name}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"suite file {str(file)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(
            f"suite file {str(file)!r} is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    episodes = int(data.get("episodes", 8))
    if episodes < 1:
        raise ValueError(f"suite {str(file)!r}: episodes={episodes} is out of range; allowed >= 1")
    seed = int(data.get("seed", scenario_lib.eval_seed(0)))
    if not scenario_lib.is_eval_seed(seed):
        raise ValueError(
            f"suite {str(file)!r}: seed={seed} is in the training range; allowed >= {scenario_lib.EVAL_SEED_OFFSET}"
        )
    envs = {}
    for env_id, block in (data.get("envs") or {}).items():
        names = tuple(block.get("scenarios", ()))
        for n in names:  # unknown names fail here, with the allowed list
            if env_id in MULTIASSET_ENVS:
                from levgym.scenarios.multiasset import get_scenario

                get_scenario(n)
            else:
                scenario_lib.get(n)
        envs[env_id] = EnvSuite(names, dict(block.get("env_kwargs", {})))
    return Suite(str(data.get("name", file.stem)), episodes, seed, envs)


class NormalizedPolicy:
    """A trained SB3 model behind the observation normalization it was trained with."""

    def __init__(self, model: Any, stats: NormStats | None) -> None:
        self.model = model
        self.stats = stats

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        obs = observation if self.stats is None else self.stats.normalize_obs(observation)
        return self.model.predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )


def load_model_policy(
    model_path: str | os.PathLike, env_id: str | None = None, trust_pickle: bool = False
) -> NormalizedPolicy:
    """A saved model (``model.zip`` or its run folder) with its statistics, loaded without
    unpickling unless ``trust_pickle`` (see :mod:`agents.persist`)."""
    from .train import load_policy

    model, stats = load_policy(model_path, env_id=env_id, trust_pickle=trust_pickle)
    return NormalizedPolicy(model, stats)


def make_eval_env(env_id: str, scenario: str, episodes: int, env_kwargs: dict[str, Any]):
    """The native vector env for one scenario of the suite, on held-out seeds."""
    from levgym.envs import (
        CrossProtocolHedgerVectorEnv,
        GovernanceV1VectorEnv,
        GovernanceV2VectorEnv,
        GovernanceVectorEnv,
        LiquidatorVectorEnv,
        PortfolioGovernanceVectorEnv,
    )
    from levgym.envs.liquidator import LiquidatorV2VectorEnv, LiquidatorV3VectorEnv

    classes = {
        "levgym/Governance-v0": GovernanceVectorEnv,
        "levgym/Governance-v1": GovernanceV1VectorEnv,
        "levgym/Governance-v2": GovernanceV2VectorEnv,
        "levgym/Liquidator-v1": LiquidatorVectorEnv,
        "levgym/Liquidator-v2": LiquidatorV2VectorEnv,
        "levgym/Liquidator-v3": LiquidatorV3VectorEnv,
        "levgym/PortfolioGovernance-v0": PortfolioGovernanceVectorEnv,
        "levgym/CrossProtocolHedger-v0": CrossProtocolHedgerVectorEnv,
    }
    if env_id not in classes:
        raise ValueError(f"--env {env_id!r} is unknown; allowed {', '.join(classes)}")
    return classes[env_id](num_envs=episodes, scenarios=[scenario], split="eval", **env_kwargs)


def mean_ci(values: np.ndarray) -> dict[str, float | None]:
    """Mean and the half-width of a 95% Student-t confidence interval."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci95": None, "n": n}
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci95": half, "n": n}


def rollout(
    policy: Any,
    env_id: str,
    scenario: str,
    episodes: int,
    seed: int,
    env_kwargs: dict[str, Any],
    record: bool = False,
) -> dict[str, Any]:
    """Run one episode in each of ``episodes`` envs (seeds ``seed + i``) and return per-episode
    metrics (``[episodes]`` arrays) and, with ``record``, the per-step infos of env 0."""
    env = make_eval_env(env_id, scenario, episodes, env_kwargs)
    obs, _ = env.reset(seed=seed)
    gov = is_governance(env_id)
    hedger = env_id in HEDGER_ENVS
    names = METRICS[env_id]
    acc = {k: np.zeros(episodes) for k in names}
    done = np.zeros(episodes, dtype=bool)
    equity_peak = np.zeros(episodes)
    trace: list[dict[str, float]] = []
    if not gov and not hedger:
        equity_peak[:] = float(env.initial_cash_usd)
    # a recurrent policy's hidden state, reset where an episode starts (every env at first)
    state, starts = None, np.ones(episodes, dtype=bool)
    while not done.all():
        actions, state = policy.predict(obs, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(episodes, dtype=bool)
        obs, reward, terminated, truncated, info = env.step(actions)
        live = ~done
        acc["return"] += np.where(live, reward, 0.0)
        if gov:
            # economic bad debt: written off plus the change in underwater shortfall
            acc["economic_bad_debt_usd"] += np.where(live, info["economic_bad_debt_usd"], 0.0)
            # reserve income valued at each substep's debt price (info only; see levgym.results)
            acc["revenue_usd"] += np.where(live, info["revenue_value_usd"], 0.0)
            acc["liquidated_usd"] += np.where(live, info["liquidated_debt_usd"], 0.0)
            acc["liquidation_loss_usd"] += np.where(live, info["liquidation_loss_usd"], 0.0)
        elif hedger:
            # the account's equity change, its liquidation bonus paid, its protection cost
            acc["equity_change_usd"] += np.where(live, info["pnl_usd"], 0.0)
            acc["liquidation_loss_usd"] += np.where(live, info["liquidation_loss_usd"], 0.0)
            acc["cost_usd"] += np.where(live, hedger_cost_usd(info), 0.0)
        else:
            equity = info["equity_usd"]
            equity_peak = np.where(live, np.maximum(equity_peak, equity), equity_peak)
            acc["max_drawdown_usd"] = np.where(
                live,
                np.maximum(acc["max_drawdown_usd"], equity_peak - equity),
                acc["max_drawdown_usd"],
            )
            acc["pnl_usd"] += np.where(live, info["pnl_usd"], 0.0)
            acc["seized_asset"] += np.where(live, info["seized_asset"], 0.0)
            acc["gas_usd"] += np.where(live, info["gas_usd"], 0.0)
        if record and live[0]:
            trace.append(
                {
                    k: float(np.asarray(v)[0])
                    for k, v in info.items()
                    if _is_numeric_vector(v, episodes)
                }
            )
        ended = (terminated | truncated) & live
        key = "insolvent" if gov else "liquidated" if hedger else "bankrupt"
        acc[key] = np.where(ended, terminated.astype(float), acc[key])
        done |= ended
    env.close()
    out: dict[str, Any] = {"metrics": acc}
    if record:
        out["trace"] = trace
    return out


def _is_numeric_vector(v: Any, n: int) -> bool:
    a = np.asarray(v)
    return a.shape == (n,) and a.dtype.kind in "fiub"


def evaluate(
    policy: Any,
    env_id: str,
    suite: Suite,
    scenarios: list[str] | None = None,
    progress: bool = True,
    keep_episodes: bool = False,
) -> dict[str, Any]:
    """Mean and 95% CI of each metric per scenario of the suite (or of ``scenarios``); with
    ``keep_episodes`` also every episode's values (``episode_values``: scenario -> metric ->
    list, episode ``i`` seeded ``suite.seed + i``, the same paths for every policy)."""
    from tqdm import tqdm

    entry = suite.for_env(env_id)
    names = list(scenarios) if scenarios else list(entry.scenarios)
    results: dict[str, Any] = {}
    episodes: dict[str, Any] = {}
    for name in tqdm(names, desc=f"evaluate {env_id}", disable=not progress, leave=False):
        run = rollout(policy, env_id, name, suite.episodes, suite.seed, entry.env_kwargs)
        results[name] = {k: mean_ci(v) for k, v in run["metrics"].items()}
        episodes[name] = {k: [float(x) for x in v] for k, v in run["metrics"].items()}
    out = {
        "env_id": env_id,
        "levgym_version": __version__,
        "suite": suite.name,
        "episodes": suite.episodes,
        "seed": suite.seed,
        "scenarios": results,
    }
    if keep_episodes:
        out["episode_values"] = episodes
    return out
