"""`levgym train`: Stable-Baselines3 training from YAML, with checkpoints and resume."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an SB3 agent on a levgym env (PPO, SAC, TD3, A2C)")
    p.add_argument(
        "--env",
        default="levgym/Governance-v0",
        help="env id (levgym/Governance-v0, levgym/Liquidator-v1)",
    )
    p.add_argument("--algo", default="ppo", help="ppo, sac, td3 or a2c")
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML hyperparameters (default: the shipped levgym/configs/agents/<algo>.yaml)",
    )
    p.add_argument(
        "--total-timesteps", type=int, default=None, help="override the config's total_timesteps"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="training seed (training seeds are disjoint from evaluation seeds)",
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
        help="override a hyperparameter (repeatable; e.g. learning_rate=1e-3, env_kwargs.horizon_h=48)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its newest valid checkpoint",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --resume: "
        + "load files that need unpickling (models or statistics from older levgym versions); unpickling runs code from the file, so only for files you trust",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from agents.train import train

    if args.total_timesteps is not None and args.total_timesteps < 1:
        raise ValueError(f"--total-timesteps={args.total_timesteps} is out of range; allowed >= 1")
    if args.trust_pickle and args.resume is None:
        raise ValueError("--trust-pickle is only used with --resume RUN_DIR")
    run_dir = train(
        args.env,
        args.algo,
        config_path=args.config,
        total_timesteps=args.total_timesteps,
        seed=args.seed,
        out=args.out,
        hyper=args.hyper,
        resume=args.resume,
        progress=not args.no_progress,
        command=args.command_line,
        trust_pickle=args.trust_pickle,
    )
    print(f"run folder: {run_dir}")
    print(f"model: {run_dir / 'model.zip'}")
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'logs'}")
    return 0
