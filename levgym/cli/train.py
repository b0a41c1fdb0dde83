"""`levgym train`: Stable-Baselines3 training from YAML, with checkpoints and resume."""

from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path
from typing import Any

from ..engine.params import closest_hint
from .common import (
    COUNT_HELP,
    CliError,
    check_env_id,
    check_input_file,
    check_output_dir,
    count,
    seed_value,
)

DEFAULT_ENV = "levgym/Governance-v0"
DEFAULT_ALGO = "ppo"

# Constructor arguments that levgym sets itself: a --hyper for them would clash or be ignored.
RESERVED = {
    "env": "the env comes from --env",
    "seed": "use --seed",
    "verbose": "levgym logs to TensorBoard and progress.csv",
    "device": "use --device",
    "tensorboard_log": "logs go to the run folder's logs/",
    "_init_setup_model": "internal to Stable-Baselines3",
}

# Run settings (not constructor arguments): (kind, lower bound) checked up front.
RUN_CHECKS: dict[str, tuple[str, float | None]] = {
    "n_envs": ("int", 1),
    "total_timesteps": ("int", 1),
    "checkpoint_freq": ("int", 1),
    "torch_threads": ("int", 1),
    "normalize": ("bool", None),
    "normalize_reward": ("bool", None),
    "policy": ("str", None),
    "env_kwargs": ("dict", None),
    "curriculum": ("dict", None),
    "init_action_mean": ("list", None),
    "init_from_baseline": ("str_or_dict", None),
}

# Constructor arguments with a range beyond their type: (low, high, low open).
RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, math.inf, True),
    "gamma": (0.0, 1.0, True),
    "gae_lambda": (0.0, 1.0, False),
    "clip_range": (0.0, math.inf, True),
    "n_steps": (1, math.inf, False),
    "batch_size": (1, math.inf, False),
    "n_epochs": (1, math.inf, False),
    "buffer_size": (1, math.inf, False),
    "learning_starts": (0, math.inf, False),
    "tau": (0.0, 1.0, True),
    "ent_coef": (0.0, math.inf, False),
    "vf_coef": (0.0, math.inf, False),
    "max_grad_norm": (0.0, math.inf, True),
}


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for options whose default is resolved later (shown as None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, []):
            return action.help or ""
        return super()._get_help_string(action)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an SB3 agent on a levgym env (PPO, SAC, TD3, A2C)",
        description=(
            "Train a Stable-Baselines3 agent on a levgym env. Hyperparameters come from "
            "configs/agents/<algo>.yml (its `default` block, then the env's block), then --hyper "
            "overrides; every key and value is checked before anything starts. The run folder keeps "
            "the resolved config.yaml, command.txt, meta.json, TensorBoard logs, checkpoints and "
            f"model.zip. --resume continues a run folder with its own settings. Counts: {COUNT_HELP}."
        ),
        formatter_class=_DefaultsFormatter,
    )
    p.add_argument(
        "--env",
        default=None,
        help=f"env id (default {DEFAULT_ENV}): levgym/Governance-v0, -v1 or -v2 (warm books), levgym/Liquidator-v1, -v2 or -v3 (warm books), levgym/PortfolioGovernance-v0",
    )
    p.add_argument(
        "--algo",
        default=None,
        help=f"ppo, sac, td3, a2c or recurrent_ppo (sb3-contrib's PPO with an LSTM policy) (default {DEFAULT_ALGO})",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML hyperparameters (default: the shipped levgym/configs/agents/<algo>.yaml)",
    )
    p.add_argument(
        "--total-timesteps",
        type=count,
        default=None,
        help="override the config's total_timesteps (default: the config's)",
    )
    p.add_argument(
        "--seed",
        type=seed_value,
        default=None,
        help="training seed; training seeds are disjoint from evaluation seeds (default 0)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="run folder (default runs/train/<env>__<algo>__<seed>__<time>)",
    )
    p.add_argument(
        "--hyper",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (repeatable; e.g. learning_rate=1e-3, "
        "env_kwargs.horizon_h=48)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its newest checkpoint, with its saved settings "
        "(refused together with --env, --algo, --config, --hyper, --seed or --out)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device of the policy: cpu, cuda or cuda:N (small MLPs train fastest on cpu)",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --resume: "
        + "load files that need unpickling (models or statistics from older levgym versions); unpickling runs code from the file, so only for files you trust",
    )
    p.add_argument(
        "--multiagent",
        action="store_true",
        help="alternating best response in the multi-agent market (governor vs learning "
        "liquidators, agents/multiagent.py): a report with exploitability per round; "
        "--total-timesteps is then per training (default 2048)",
    )
    p.add_argument(
        "--rounds",
        type=count,
        default=None,
        help="with --multiagent: rounds of alternating best response (default 2)",
    )
    p.add_argument(
        "--num-liquidators",
        type=count,
        default=None,
        help="with --multiagent: agent liquidators per market (default 3)",
    )
    p.add_argument(
        "--block-auction",
        default=None,
        help="with --multiagent: private (a losing liquidator pays nothing) or public (it pays "
        "its gas) (default private)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def run_multiagent_cli(args: argparse.Namespace) -> int:
    """``levgym train --multiagent``: checks every value, then runs agents/multiagent.py."""
    import time

    from ..engine.auction import check_block_auction

    given = [
        flag
        for flag, value in (
            ("--env", args.env),
            ("--algo", args.algo),
            ("--config", args.config),
            ("--hyper", args.hyper or None),
            ("--resume", args.resume),
        )
        if value is not None
    ]
    if given:
        raise CliError(
            f"--multiagent trains its own roles with PPO; {', '.join(given)} would be ignored; "
            "allowed with --multiagent: --rounds, --num-liquidators, --block-auction, "
            "--total-timesteps, --seed, --out, --no-progress"
        )
    for flag, v in (("--rounds", args.rounds), ("--num-liquidators", args.num_liquidators)):
        if v is not None and not 1 <= v <= 64:
            raise CliError(f"{flag}={v} is out of range; allowed 1..64")
    if args.total_timesteps is not None and args.total_timesteps < 64:
        raise CliError(f"--total-timesteps={args.total_timesteps} is out of range; allowed >= 64")
    try:
        auction = check_block_auction(args.block_auction or "private")
    except ValueError as exc:
        raise CliError(
            f"--block-auction {args.block_auction!r} is unknown; allowed private, public"
        ) from exc
    check_output_dir(args.out, "--out")
    from agents.multiagent import MultiAgentConfig, run_multiagent

    kw: dict[str, Any] = {"block_auction": auction, "seed": 0 if args.seed is None else args.seed}
    if args.rounds is not None:
        kw["rounds"] = args.rounds
    if args.num_liquidators is not None:
        kw["num_liquidators"] = args.num_liquidators
    if args.total_timesteps is not None:
        kw["timesteps"] = args.total_timesteps
    cfg = MultiAgentConfig(**kw)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = (
        Path(args.out) if args.out else Path("runs") / "train" / f"multiagent__{cfg.seed}__{stamp}"
    )
    run_multiagent(cfg, out, progress=not args.no_progress)
    (out / "command.txt").write_text((args.command_line or "levgym train --multiagent") + "\n")
    print(f"run folder: {out}")
    print(f"report: {out / 'report.md'}")
    print(f"TensorBoard: tensorboard --logdir {out / 'logs'}")
    return 0


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_value(key: str, value: Any, kind: str, low: float | None = None) -> None:
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            raise CliError(f"--hyper {key}={value!r} is not an integer; allowed an integer")
    elif kind == "float" and not _is_number(value):
        raise CliError(f"--hyper {key}={value!r} is not a number; allowed a number")
    elif kind == "bool" and not isinstance(value, bool):
        raise CliError(f"--hyper {key}={value!r} is not true or false; allowed true or false")
    elif kind == "str" and not isinstance(value, str):
        raise CliError(f"--hyper {key}={value!r} is not a name; allowed a name such as MlpPolicy")
    elif kind == "list" and not (
        isinstance(value, list) and value and all(_is_number(v) and math.isfinite(v) for v in value)
    ):
        raise CliError(
            f"--hyper {key}={value!r} is not a list of finite numbers; allowed e.g. [1, -0.5, -0.25]"
        )
    elif kind == "str_or_dict" and not isinstance(value, str | dict):
        raise CliError(
            f"--hyper {key}={value!r} is not a baseline name or a mapping; allowed e.g. "
            f"{key}=vol_rule or {key}.name=vol_rule"
        )
    elif kind == "dict" and not isinstance(value, dict):
        raise CliError(f"--hyper {key}={value!r} is not a mapping; allowed {key}.KEY=VALUE")
    if _is_number(value) and not math.isfinite(value):
        raise CliError(f"--hyper {key}={value!r} is not finite; allowed a finite number")
    if low is not None and _is_number(value) and value < low:
        raise CliError(f"--hyper {key}={value!r} is out of range; allowed >= {low:g}")


def validate_config(env_id: str, algo: str, config: dict[str, Any]) -> None:
    """Every key and value of the resolved hyperparameters, checked before anything starts."""
    from agents.config import RUN_KEYS
    from agents.train import algo_class

    from . import sizing

    cls = algo_class(algo)
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted({k for k in params if k not in ("self", "policy")} - set(RESERVED))
    allowed += list(RUN_KEYS)
    for key, value in config.items():
        if key in RESERVED:
            raise CliError(f"--hyper {key} cannot be set: {RESERVED[key]}")
        if key in RUN_CHECKS:
            kind, low = RUN_CHECKS[key]
            _check_value(key, value, kind, low)
            continue
        if key not in params:
            raise CliError(
                f"--hyper {key} is not a hyperparameter of {algo.upper()}{closest_hint(key, allowed)}; "
                f"allowed {', '.join(allowed)}"
            )
        default = params[key].default
        if key in RANGES:
            lo, hi, lo_open = RANGES[key]
            if isinstance(default, str) and isinstance(value, str):
                continue  # e.g. SAC's ent_coef="auto"
            _check_value(key, value, "int" if isinstance(lo, int) else "float")
            if not ((value > lo if lo_open else value >= lo) and value <= hi):
                left = "(" if lo_open else "["
                right = "inf)" if math.isinf(hi) else f"{hi:g}]"
                raise CliError(
                    f"--hyper {key}={value!r} is out of range; allowed {left}{lo:g}, {right}"
                )
        elif isinstance(default, bool):
            _check_value(key, value, "bool")
        elif _is_number(default):
            _check_value(key, value, "int" if isinstance(default, int) else "float")
        elif key == "policy_kwargs" and value is not None and not isinstance(value, dict):
            _check_value(key, value, "dict")
    env_kwargs = dict(config.get("env_kwargs") or {})
    known = sizing.env_defaults(env_id)
    for key in env_kwargs:
        if key not in known or key in ("num_envs", "render_mode"):
            names = [k for k in known if k not in ("num_envs", "render_mode")]
            raise CliError(
                f"--hyper env_kwargs.{key} is not an argument of {env_id}{closest_hint(key, names)}; "
                f"allowed {', '.join(names)}"
            )
    sizing.check_env_kwargs("n_envs", env_id, int(config.get("n_envs", 8)), env_kwargs)
    # a one-env build checks the env's own values (scenario names, horizon multiple of a step, ...)
    env = sizing.env_class(env_id)(num_envs=1, **env_kwargs)
    try:
        if config.get("curriculum") is not None:
            from agents.curriculum import Curriculum

            try:
                cur = Curriculum.from_config(config["curriculum"])
                cur.overrides(cur.start_frac, env.scenario_names, env.scenario_knobs)
            except ValueError as exc:
                raise CliError(f"--hyper {exc}") from None
    finally:
        env.close()


def check_train_device(device: str) -> None:
    """``cpu``, or ``cuda``/``cuda:N`` on a machine that has that GPU."""
    if device == "cpu":
        return
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise CliError(f"--device {device!r} is unknown; allowed cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise CliError(f"--device {device}: no CUDA GPU is available on this machine; allowed cpu")
    index = int(device[5:]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise CliError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            f"allowed cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )


def run(args: argparse.Namespace) -> int:
    from agents.train import train

    if args.multiagent:
        return run_multiagent_cli(args)
    for flag, v in (
        ("--rounds", args.rounds),
        ("--num-liquidators", args.num_liquidators),
        ("--block-auction", args.block_auction),
    ):
        if v is not None:
            raise CliError(f"{flag} is only used with --multiagent")

    if args.total_timesteps is not None and args.total_timesteps < 1:
        raise ValueError(f"--total-timesteps={args.total_timesteps} is out of range; allowed >= 1")
    if args.trust_pickle and args.resume is None:
        raise CliError("--trust-pickle is only used with --resume RUN_DIR")
    check_train_device(args.device)
    if args.resume is not None:
        given = [
            flag
            for flag, value in (
                ("--env", args.env),
                ("--algo", args.algo),
                ("--config", args.config),
                ("--hyper", args.hyper or None),
                ("--seed", args.seed),
                ("--out", args.out),
            )
            if value is not None
        ]
        if given:
            raise CliError(
                f"--resume continues a run with its saved settings; {', '.join(given)} would be "
                "ignored; allowed with --resume: --total-timesteps, --no-progress"
            )
        if not Path(args.resume).is_dir():
            raise CliError(
                f"--resume {args.resume!r} is not a run folder (no such folder); allowed a run "
                "folder holding config.yaml"
            )
    else:
        from agents.config import ALGOS, apply_overrides, load_config

        env_id = check_env_id(args.env or DEFAULT_ENV)
        algo = (args.algo or DEFAULT_ALGO).lower()
        if algo not in ALGOS:
            raise CliError(
                f"--algo {args.algo!r} is unknown{closest_hint(algo, ALGOS)}; allowed {', '.join(ALGOS)}"
            )
        check_input_file(args.config, "--config", "a YAML file")
        check_output_dir(args.out, "--out")
        config = apply_overrides(load_config(env_id, algo, args.config), args.hyper)
        if args.total_timesteps is not None:
            config["total_timesteps"] = int(args.total_timesteps)
        validate_config(env_id, algo, config)
    run_dir = train(
        args.env or DEFAULT_ENV,
        args.algo or DEFAULT_ALGO,
        config_path=args.config,
        total_timesteps=args.total_timesteps,
        seed=0 if args.seed is None else args.seed,
        out=args.out,
        hyper=args.hyper,
        resume=args.resume,
        progress=not args.no_progress,
        command=args.command_line,
        trust_pickle=args.trust_pickle,
        device=args.device,
    )
    print(f"run folder: {run_dir}")
    print(f"model: {run_dir / 'model.zip'}")
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'logs'}")
    return 0
