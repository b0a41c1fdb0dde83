"""Alternating best response in the multi-agent market (``levgym train --multiagent``).

Roles: the governor and the agent liquidators (one PPO policy shared by the M liquidator slots);
the market maker follows its rule (the scenario's liquidity). The run:

1. **Against rule keepers**: a governor trained against liquidators that leave every liquidation
   to the background keepers (the ``keepers`` rule), i.e. ``levgym/Governance-v0``'s world.
2. **Alternating best response**, from the static governor: in each round the liquidators are
   trained against the current (frozen) governor, then the governor against the new (frozen)
   liquidators.
3. **Exploitability estimate** after each round: a fresh policy of each role is trained, with the
   same budget, against the current profile's other role; its gain over the current policy of
   that role, both evaluated on held-out seeds against the same opponents, is what a best
   response still gains (clipped at 0 per role; their sum is a NashConv estimate). A falling
   estimate shows the profile settling; it is shown, not assumed.

Evaluation: held-out seeds (``split="eval"``), one episode per market, deterministic policies:
the governor's return (Governance-v0's reward), bad debt (fraction of TVL), its mean
parameters, and the liquidators' mean return.

Outputs in the run folder: ``report.md`` (tables answering: does a governor trained against
learning liquidators choose different parameters and earn a different objective than one
trained against rule keepers; does bad debt rise or fall when the rule keepers are replaced by
learning liquidators), ``results.json``, ``exploitability.png``, TensorBoard logs under
``logs/`` (one run per training), and the models (``*.zip``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from levgym.multiagent import MultiAgentMarkets
from levgym.multiagent.sb3 import DEFAULT_RULES, RoleVecEnv, _act

DEFAULT_SCENARIOS = ("shock", "black_thursday_2020", "may19_2021", "gbm_high_vol", "calm")


@dataclass(frozen=True)
class MultiAgentConfig:
    """Settings of a ``levgym train --multiagent`` run (short by default)."""

    rounds: int = 2
    """Rounds of alternating best response."""
    timesteps: int = 2048
    """PPO timesteps per training (per role and round, and per fresh best response)."""
    num_markets: int = 8
    num_positions: int = 64
    num_liquidators: int = 3
    horizon_h: float = 48.0
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    block_auction: str = "private"
    eval_markets: int = 16
    """Held-out markets (one episode each) per evaluation."""
    seed: int = 0
    ppo: dict[str, Any] = field(
        default_factory=lambda: {"n_steps": 64, "batch_size": 128, "n_epochs": 5, "gamma": 0.99}
    )

    def __post_init__(self) -> None:
        for name in ("rounds", "timesteps", "num_markets", "num_positions", "num_liquidators", "eval_markets"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} is out of range; allowed an integer >= 1")

    @classmethod
    def quick(cls, seed: int = 0) -> MultiAgentConfig:
        """The short form of ``levgym benchmark --quick`` (seconds, not minutes)."""
        return cls(
            rounds=1, timesteps=256, num_markets=4, num_positions=32, horizon_h=12.0,
            eval_markets=4, seed=seed,
        )  # fmt: skip

    def market_kwargs(self) -> dict[str, Any]:
        return dict(
            num_liquidators=self.num_liquidators,
            num_positions=self.num_positions,
            horizon_h=self.horizon_h,
            scenarios=list(self.scenarios),
            block_auction=self.block_auction,
        )


def _ppo(venv: RoleVecEnv, cfg: MultiAgentConfig, seed: int, logs: Path):
    from stable_baselines3 import PPO

    p = dict(cfg.ppo)
    n = venv.num_envs
    p["n_steps"] = max(8, int(p["n_steps"]) * 8 // n)  # about the same rollout for every role
    rollout = p["n_steps"] * n
    p["batch_size"] = max(
        d for d in range(1, min(int(p["batch_size"]), rollout) + 1) if rollout % d == 0
    )
    return PPO(
        "MlpPolicy", venv, seed=seed, device="cpu", verbose=0, tensorboard_log=str(logs), **p
    )


def train_role(
    role: str,
    policies: dict[str, Any],
    cfg: MultiAgentConfig,
    seed: int,
    logs: Path,
    name: str,
):
    """A PPO policy of ``role`` trained against ``policies`` (the other roles, frozen)."""
    venv = RoleVecEnv(role, cfg.num_markets, policies=policies, seed=seed, **cfg.market_kwargs())
    model = _ppo(venv, cfg, seed, logs)
    model.learn(cfg.timesteps, tb_log_name=name, progress_bar=False)
    venv.close()
    return model


def evaluate_profile(
    policies: dict[str, Any], cfg: MultiAgentConfig, seed: int
) -> dict[str, float]:
    """One held-out episode per market with every role on ``policies`` (deterministic)."""
    mk = MultiAgentMarkets(cfg.eval_markets, split="eval", **cfg.market_kwargs())
    obs = mk.reset(seed=seed)
    e, m = mk.num_envs, mk.num_liquidators
    gov_ret, liq_ret, mm_ret = np.zeros(e), np.zeros((e, m)), np.zeros(e)
    bad = np.zeros(e)
    params = {
        k: np.zeros(e) for k in ("liquidation_threshold", "ltv", "liquidation_bonus", "slope1_apr")
    }
    steps = np.zeros(e)
    live = np.ones(e, dtype=bool)
    liq_claims = np.zeros(e)
    for _ in range(mk.max_steps):
        acts = {}
        for role in ("governor", "liquidator", "market_maker"):
            o = obs[role].reshape(-1, obs[role].shape[-1])
            a = _act(policies[role], role, o)
            acts[role] = a.reshape(e, m, -1) if role == "liquidator" else a
        obs, rew, _, _, info = mk.step(acts["governor"], acts["liquidator"], acts["market_maker"])
        g = info["governor"]
        gov_ret += np.where(live, rew["governor"], 0.0)
        liq_ret += np.where(live[:, None], rew["liquidator"], 0.0)
        mm_ret += np.where(live, rew["market_maker"], 0.0)
        bad += np.where(live, g["bad_debt_usd"] / g["tvl_usd"], 0.0)
        liq_claims += np.where(live, info["liquidator"]["fill_frac"].sum(axis=1), 0.0)
        for k in params:
            params[k] += np.where(live, g[k], 0.0)
        steps += live
        live &= ~info["market_done"]
        if not live.any():
            break
        if info["market_done"].any():  # ended markets start anew, no longer counted
            obs = mk.reset(mask=info["market_done"])
    mk.close()
    s = np.maximum(steps, 1)
    return {
        "governor_return": float(gov_ret.mean()),
        "bad_debt_tvl_frac": float(bad.mean()),
        "liquidator_return": float(liq_ret.mean()),
        "market_maker_return": float(mm_ret.mean()),
        "agent_claim_share": float((liq_claims / s).mean()),
        **{f"mean_{k}": float((v / s).mean()) for k, v in params.items()},
    }


def run_multiagent(cfg: MultiAgentConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """The whole run (see the module doc); returns what results.json holds."""
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    t0 = time.perf_counter()
    say = print if progress else (lambda *a, **k: None)
    eval_seed = cfg.seed + 10_000
    rules = dict(DEFAULT_RULES)

    say("[1] governor vs rule keepers")
    gov_rule = train_role("governor", {"liquidator": "keepers", "market_maker": "scenario"}, cfg, cfg.seed, logs, "governor_vs_keepers")  # fmt: skip
    gov_rule.save(out / "governor_vs_keepers.zip")
    ev_gov_rule = evaluate_profile({**rules, "governor": gov_rule}, cfg, eval_seed)
    ev_static_keepers = evaluate_profile(rules, cfg, eval_seed)

    gov: Any = "static"
    liq: Any = "keepers"
    rounds: list[dict[str, Any]] = []
    ev_static_learning: dict[str, float] | None = None
    for r in range(1, cfg.rounds + 1):
        say(f"[2] round {r}: liquidators vs governor, then governor vs liquidators")
        liq = train_role("liquidator", {"governor": gov, "market_maker": "scenario"}, cfg, cfg.seed + 100 * r, logs, f"round{r}_liquidators")  # fmt: skip
        liq.save(out / f"round{r}_liquidators.zip")
        if r == 1:  # the static governor with rule keepers replaced by learning liquidators
            ev_static_learning = evaluate_profile({**rules, "liquidator": liq}, cfg, eval_seed)
        gov = train_role("governor", {"liquidator": liq, "market_maker": "scenario"}, cfg, cfg.seed + 100 * r + 1, logs, f"round{r}_governor")  # fmt: skip
        gov.save(out / f"round{r}_governor.zip")
        profile = {"governor": gov, "liquidator": liq, "market_maker": "scenario"}
        ev = evaluate_profile(profile, cfg, eval_seed)
        say(f"[3] round {r}: fresh best responses against the profile")
        br_gov = train_role("governor", {"liquidator": liq, "market_maker": "scenario"}, cfg, cfg.seed + 100 * r + 50, logs, f"round{r}_br_governor")  # fmt: skip
        br_liq = train_role("liquidator", {"governor": gov, "market_maker": "scenario"}, cfg, cfg.seed + 100 * r + 51, logs, f"round{r}_br_liquidators")  # fmt: skip
        ev_br_gov = evaluate_profile({**profile, "governor": br_gov}, cfg, eval_seed)
        ev_br_liq = evaluate_profile({**profile, "liquidator": br_liq}, cfg, eval_seed)
        gain_gov = ev_br_gov["governor_return"] - ev["governor_return"]
        gain_liq = ev_br_liq["liquidator_return"] - ev["liquidator_return"]
        rounds.append(
            {
                "round": r,
                "profile": ev,
                "best_response_gain_governor": gain_gov,
                "best_response_gain_liquidator": gain_liq,
                "exploitability": max(gain_gov, 0.0) + max(gain_liq, 0.0),
            }
        )
        say(
            f"    exploitability {rounds[-1]['exploitability']:.3f} (governor {gain_gov:+.3f}, liquidators {gain_liq:+.3f})"
        )
    assert ev_static_learning is not None
    results = {
        "config": {**asdict(cfg), "scenarios": list(cfg.scenarios)},
        "static_governor_rule_keepers": ev_static_keepers,
        "static_governor_learning_liquidators": ev_static_learning,
        "governor_vs_rule_keepers": ev_gov_rule,
        "rounds": rounds,
        "governor_vs_learning_liquidators": rounds[-1]["profile"],
        "seconds": time.perf_counter() - t0,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot_exploitability(rounds, out / "exploitability.png")
    (out / "report.md").write_text(render_report(results))
    return results


def plot_exploitability(rounds: list[dict[str, Any]], path: Path) -> None:
    from levgym.io import save_figure
    from levgym.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    x = [r["round"] for r in rounds]
    ax[0].plot(x, [r["exploitability"] for r in rounds], "o-", label="sum (NashConv estimate)")
    ax[0].plot(x, [r["best_response_gain_governor"] for r in rounds], "s--", label="governor")
    ax[0].plot(x, [r["best_response_gain_liquidator"] for r in rounds], "^--", label="liquidators")
    ax[0].axhline(0.0, color="grey", lw=0.8)
    ax[0].set(xlabel="round", ylabel="best-response gain (return)", title="Exploitability estimate")
    ax[0].legend(fontsize=7)
    ax[1].plot(x, [r["profile"]["governor_return"] for r in rounds], "o-", label="governor return")
    ax[1].set(xlabel="round", ylabel="governor return", title="Profile on held-out seeds")
    twin = ax[1].twinx()
    twin.plot(
        x, [100 * r["profile"]["bad_debt_tvl_frac"] for r in rounds], "s--", color="tab:red",
        label="bad debt, % TVL",
    )  # fmt: skip
    twin.set_ylabel("bad debt, % TVL", color="tab:red")
    for a in (*ax, twin):
        a.set_xticks(x)
    ax[1].legend(loc="upper left", fontsize=7)
    twin.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _row(name: str, ev: dict[str, float]) -> str:
    return (
        f"| {name} | {ev['governor_return']:.2f} | {100 * ev['bad_debt_tvl_frac']:.4f} | "
        f"{ev['mean_liquidation_threshold']:.4f} | {ev['mean_ltv']:.4f} | "
        f"{ev['mean_liquidation_bonus']:.4f} | {ev['mean_slope1_apr']:.4f} | "
        f"{ev['agent_claim_share']:.3f} | {ev['liquidator_return']:.2f} |"
    )


def multiagent_section(res: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The multi-agent section of the benchmark's results.json (keys in levgym.results)."""
    return {
        "run_folder": str(run_dir),
        "profiles": {
            "static_governor_rule_keepers": res["static_governor_rule_keepers"],
            "static_governor_learning_liquidators": res["static_governor_learning_liquidators"],
            "governor_vs_rule_keepers": res["governor_vs_rule_keepers"],
            "governor_vs_learning_liquidators": res["governor_vs_learning_liquidators"],
        },
        "exploitability_rounds": [
            {k: r[k] for k in ("round", "best_response_gain_governor", "best_response_gain_liquidator", "exploitability")}
            for r in res["rounds"]
        ],
    }  # fmt: skip


def render_report(
    res: dict[str, Any], heading: str = "# Multi-agent training: alternating best response"
) -> str:
    cfg = res["config"]
    a, b = res["governor_vs_rule_keepers"], res["governor_vs_learning_liquidators"]
    s0, s1 = res["static_governor_rule_keepers"], res["static_governor_learning_liquidators"]
    sub = "#" if heading.startswith("## ") else ""
    lines = [
        heading,
        "",
        f"{cfg['rounds']} rounds, {cfg['timesteps']} PPO timesteps per training, "
        f"{cfg['num_markets']} markets x {cfg['num_positions']} positions, "
        f"{cfg['num_liquidators']} agent liquidators, horizon {cfg['horizon_h']:g} h, scenarios "
        f"{', '.join(cfg['scenarios'])}, block auction {cfg['block_auction']}, seed {cfg['seed']}. "
        f"Evaluation: {cfg['eval_markets']} held-out markets, one episode each. "
        f"Took {res['seconds']:.0f} s.",
        "",
        "| profile | governor return | bad debt % TVL | LT | LTV | bonus | slope1 | agents' claim share | liquidator return |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("static governor, rule keepers", s0),
        _row("static governor, learning liquidators (round 1)", s1),
        _row("governor trained vs rule keepers", a),
        _row("governor trained vs learning liquidators (last round)", b),
        "",
        f"{sub}## Exploitability after each round",
        "",
        "| round | governor BR gain | liquidators' BR gain | exploitability |",
        "|---|---|---|---|",
    ]
    for r in res["rounds"]:
        lines.append(
            f"| {r['round']} | {r['best_response_gain_governor']:+.3f} | "
            f"{r['best_response_gain_liquidator']:+.3f} | {r['exploitability']:.3f} |"
        )
    d_lt = b["mean_liquidation_threshold"] - a["mean_liquidation_threshold"]
    d_bonus = b["mean_liquidation_bonus"] - a["mean_liquidation_bonus"]
    d_obj = b["governor_return"] - a["governor_return"]
    d_bad = s1["bad_debt_tvl_frac"] - s0["bad_debt_tvl_frac"]
    lines += [
        "",
        f"{sub}## Answers (from this run's numbers; short runs are noisy)",
        "",
        f"- Governor against learning liquidators vs against rule keepers: mean LT {d_lt:+.4f}, "
        f"bonus {d_bonus:+.4f}, objective (governor return) {d_obj:+.2f}.",
        f"- Replacing the rule keepers by learning liquidators under the static governor: bad "
        f"debt {'rises' if d_bad > 0 else 'falls' if d_bad < 0 else 'is unchanged'} by "
        f"{100 * abs(d_bad):.4f}% of TVL ({100 * s0['bad_debt_tvl_frac']:.4f}% -> "
        f"{100 * s1['bad_debt_tvl_frac']:.4f}%).",
        "",
        "Plot: exploitability.png. TensorBoard: `tensorboard --logdir logs`.",
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "MultiAgentConfig",
    "evaluate_profile",
    "multiagent_section",
    "render_report",
    "run_multiagent",
    "train_role",
]
