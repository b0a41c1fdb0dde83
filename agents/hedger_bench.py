"""The cross-protocol hedger's section of ``levgym benchmark``: the three baselines of
``levgym/CrossProtocolHedger-v0`` and a short PPO run, evaluated on the same held-out episodes.

Kept cheap on purpose (it runs inside ``make demo``): one PPO seed of
:attr:`HedgerBenchConfig.timesteps` steps through :func:`agents.benchmark.train_job` (the rest of the
benchmark's path: :func:`agents.train.train` with ``ppo.yaml``'s block for the env and
observation normalization; a finished run folder is reused, an interrupted one resumed), then every policy on ``episodes`` held-out episodes
(``split="eval"``, env ``i`` seeded ``seed + i``: the same episodes for every policy, so
differences are paired).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import baseline_names, make_baseline
from .reporting import mean_ci

HEDGER_ENV = "levgym/CrossProtocolHedger-v0"
EVAL_SEED = 1_000
"""Held-out episodes start from this seed (training uses seed ``0 ..``, split ``train``)."""
METRICS = ("return", "liquidation_loss_usd", "cost_usd", "liquidated")
"""Per policy: mean episode return (bp of initial equity), liquidation loss (USD), protection
cost (gas, slippage, perp fees and funding paid, USD) and the share of episodes that ended
fully liquidated."""


@dataclass(frozen=True)
class HedgerBenchConfig:
    """The section's settings."""

    timesteps: int = 16_384
    """PPO steps (one seed)."""
    episodes: int = 16
    """Held-out episodes per policy."""
    num_envs: int = 8
    """Training envs of the vector env."""
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> HedgerBenchConfig:
        return cls(timesteps=2_048, episodes=8, seed=seed)


def evaluate_policy(policy: Any, episodes: int, seed: int) -> dict[str, np.ndarray]:
    """One episode per env of a vector env of ``episodes`` envs (``split="eval"``, seeded
    ``seed``): per-episode arrays of :data:`METRICS`."""
    from levgym.envs.cross_protocol import CrossProtocolHedgerVectorEnv

    venv = CrossProtocolHedgerVectorEnv(episodes, split="eval", autoreset_mode="Disabled")
    obs, _ = venv.reset(seed=seed)
    out = {m: np.zeros(episodes) for m in METRICS}
    done = np.zeros(episodes, dtype=bool)
    while not done.all():
        act, _ = policy.predict(obs, deterministic=True)
        obs, rew, term, trunc, info = venv.step(act)
        live = ~done
        out["return"] += np.where(live, rew, 0.0)
        out["liquidation_loss_usd"] += np.where(live, info["liquidation_loss_usd"], 0.0)
        cost = info["gas_usd"] + info["slippage_usd"] + info["perp_fee_usd"] - info["funding_usd"]
        out["cost_usd"] += np.where(live, cost, 0.0)
        out["liquidated"] += np.where(live & term, 1.0, 0.0)
        done |= term | trunc
    venv.close()
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else 0.0
    return {"mean": float(np.mean(values)), "ci95": 1.96 * sd / np.sqrt(n) if n > 1 else 0.0}


def run_hedger_section(
    cfg: HedgerBenchConfig, out_dir: str | Path, progress: bool = False
) -> dict[str, Any]:
    """Train the short PPO (``out_dir`` is its run folder), evaluate it and the baselines; the
    ``cross_protocol_hedger`` object of results.json."""
    from .benchmark import TrainJob, train_job
    from .evaluate import load_model_policy

    out = Path(out_dir)
    t0 = time.perf_counter()
    job = TrainJob(
        HEDGER_ENV,
        cfg.seed,
        str(out),
        cfg.timesteps,
        command=f"agents.hedger_bench: {cfg}",
        hyper=(f"n_envs={cfg.num_envs}",),
    )
    run = train_job(job)
    train_s = time.perf_counter() - t0
    policies: dict[str, Any] = {"ppo": load_model_policy(run, HEDGER_ENV)}
    for name in baseline_names(HEDGER_ENV):
        policies[name] = make_baseline(name, HEDGER_ENV, seed=cfg.seed)
    results = {}
    for name, policy in policies.items():
        if progress:
            print(f"[crossprotocolhedger-v0] evaluating {name}", flush=True)
        ep = evaluate_policy(policy, cfg.episodes, EVAL_SEED + cfg.seed)
        results[name] = {m: _summary(ep[m]) for m in METRICS}
    return {
        "env_id": HEDGER_ENV,
        "timesteps": {HEDGER_ENV: int(cfg.timesteps)},
        "episodes": int(cfg.episodes),
        "run_folder": str(out),
        "hedger_results": results,
        "train_s": train_s,
        "total_s": time.perf_counter() - t0,
    }


def render_section(doc: dict[str, Any]) -> str:
    """The report's Markdown section."""
    res = doc["hedger_results"]
    lines = [
        "## Cross-protocol hedger",
        "",
        f"`{doc['env_id']}`: one leveraged account over Aave, Compound and Morpho through a "
        f"crash; PPO trained {doc['timesteps'][doc['env_id']]:,} steps (a short run: a smoke "
        f"test of learnability, not a tuned agent), every policy on the same "
        f"{doc['episodes']} held-out episodes. Mean and 95% interval per episode.",
        "",
        "| policy | return (bp of initial equity) | liquidation loss ($k) | protection cost ($k) "
        "| fully liquidated |",
        "|---|---|---|---|---|",
    ]
    order = sorted(res, key=lambda n: -res[n]["return"]["mean"])
    for n in order:
        r = res[n]
        lines.append(
            f"| {n} | {mean_ci(r['return']['mean'], r['return']['ci95'])} | "
            f"{mean_ci(r['liquidation_loss_usd']['mean'] / 1e3, r['liquidation_loss_usd']['ci95'] / 1e3)} | "
            f"{mean_ci(r['cost_usd']['mean'] / 1e3, r['cost_usd']['ci95'] / 1e3)} | "
            f"{mean_ci(r['liquidated']['mean'], r['liquidated']['ci95'], rate=True)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.hedger_bench [--quick] [--out DIR]``: the section alone, printed."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m agents.hedger_bench", description=__doc__.splitlines()[0])  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="the --quick benchmark's short form")
    ap.add_argument("--out", default=None, metavar="DIR", help="where the PPO model goes")
    args = ap.parse_args(argv)
    cfg = HedgerBenchConfig.quick() if args.quick else HedgerBenchConfig()
    out = args.out or tempfile.mkdtemp(prefix="hedger_")
    doc = run_hedger_section(cfg, out, progress=True)
    print(render_section(doc))
    print(f"trained in {doc['train_s']:.0f} s, {doc['total_s']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "HEDGER_ENV",
    "HedgerBenchConfig",
    "evaluate_policy",
    "render_section",
    "run_hedger_section",
]
