"""Stable-Baselines3 training from YAML: run folders, TensorBoard, checkpoints, resume."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from levgym import __version__
from levgym.io import atomic_write, write_json, write_text

from .callbacks import ProtocolMetricsCallback
from .config import apply_overrides, check_algo, load_config, split_config

CHECKPOINT_RE = re.compile(r"model_(\d+)_steps\.zip$")


def algo_class(algo: str):
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3, "a2c": sb3.A2C}[check_algo(algo)]


def git_revision() -> str:
    """The repository's commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_name(env_id: str, algo: str, seed: int) -> str:
    """CleanRL-style ``env__algo__seed__time``."""
    slug = env_id.replace("/", "-")
    return f"{slug}__{algo}__{seed}__{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def make_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any]):
    """The SB3 VecEnv for ``env_id`` (levgym's native vector env through its adapter) with
    episode statistics (``rollout/ep_rew_mean``); normalization is added by :func:`train`."""
    from stable_baselines3.common.vec_env import VecMonitor

    from levgym.envs import make_sb3_vec_env

    return VecMonitor(make_sb3_vec_env(env_id, num_envs=n_envs, seed=seed, **env_kwargs))


def latest_checkpoint(run_dir: Path) -> tuple[Path, int] | None:
    """The newest checkpoint of a run that has a readable zip file, with its step count."""
    ckpt_dir = run_dir / "checkpoints"
    found = []
    for path in ckpt_dir.glob("model_*_steps.zip") if ckpt_dir.exists() else []:
        m = CHECKPOINT_RE.search(path.name)
        if m and path.stat().st_size > 0:
            found.append((int(m.group(1)), path))
    if not found:
        return None
    steps, path = max(found)
    return path, steps


def _save_model(model: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: model.save(tmp), ".zip")


def _save_vecnormalize(venv: Any, path: Path) -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(venv, VecNormalize):
        atomic_write(path, lambda tmp: venv.save(tmp), ".pkl")


def train(
    env_id: str,
    algo: str = "ppo",
    config_path: str | None = None,
    total_timesteps: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    hyper: list[str] | None = None,
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    command: str | None = None,
    device: str = "cpu",
) -> Path:
    """Train ``algo`` on ``env_id``; returns the run folder.

    The folder keeps ``config.yaml`` (resolved hyperparameters), ``command.txt``, ``meta.json``
    (git revision, seed, versions), ``logs/`` (TensorBoard events and ``progress.csv``),
    ``checkpoints/`` (periodic, with the normalization statistics) and ``model.zip`` (+
    ``vecnormalize.pkl``) at the end. ``resume`` continues a run folder from its newest checkpoint
    up to its ``total_timesteps`` (or the one given here).
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
    from stable_baselines3.common.logger import configure

    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").exists():
            raise FileNotFoundError(
                f"--resume {str(run_dir)!r} is not a run folder (no config.yaml)"
            )
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        env_id, algo, seed = saved["env_id"], saved["algo"], int(saved["seed"])
        config = saved["hyperparameters"]
        if total_timesteps is not None:
            config["total_timesteps"] = int(total_timesteps)
    else:
        algo = check_algo(algo)
        config = apply_overrides(load_config(env_id, algo, config_path), hyper)
        if total_timesteps is not None:
            config["total_timesteps"] = int(total_timesteps)
        run_dir = Path(out) if out else Path("runs") / "train" / run_name(env_id, algo, seed)
        if (run_dir / "config.yaml").exists():
            raise ValueError(
                f"--out {str(run_dir)!r} already holds a run; use --resume to continue it"
            )
    if int(config.get("total_timesteps", 0)) < 1:
        raise ValueError(
            f"total_timesteps={config.get('total_timesteps')} is out of range; allowed >= 1"
        )
    run, algo_kwargs = split_config(config)
    n_envs = int(run.get("n_envs", 8))
    normalize = bool(run.get("normalize", True))
    norm_reward = bool(run.get("normalize_reward", False))
    env_kwargs = dict(run.get("env_kwargs", {}))
    total = int(run["total_timesteps"])
    policy = run.get("policy", "MlpPolicy")

    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"env_id": env_id, "algo": algo, "seed": seed, "hyperparameters": config}
    if resume is None:
        write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        write_json(
            run_dir / "meta.json",
            {
                "env_id": env_id,
                "algo": algo,
                "seed": seed,
                "git_revision": git_revision(),
                "levgym_version": __version__,
                "python": platform.python_version(),
                "started": dt.datetime.now().isoformat(timespec="seconds"),
            },
        )
    with open(run_dir / "command.txt", "a", encoding="utf-8") as fh:
        fh.write(command + "\n")

    import torch

    # small MLPs on a few cores train faster on one thread, and the env's kernel keeps the others
    torch.set_num_threads(int(run.get("torch_threads", 1)))
    cls = algo_class(algo)
    venv = make_vec_env(env_id, n_envs, seed, env_kwargs)
    start_steps = 0
    if resume is not None and (found := latest_checkpoint(run_dir)) is not None:
        path, start_steps = found
        vn = path.with_name(
            path.name.replace("model_", "model_vecnormalize_").replace(".zip", ".pkl")
        )
        if normalize:
            from stable_baselines3.common.vec_env import VecNormalize

            venv = (
                VecNormalize.load(str(vn), venv)
                if vn.exists()
                else VecNormalize(venv, norm_obs=True, norm_reward=norm_reward)
            )
        model = cls.load(path, env=venv, device=device)
        start_steps = model.num_timesteps
    else:
        if resume is not None:
            print(f"no checkpoint in {run_dir}; starting from scratch", file=sys.stderr)
        if normalize:
            from stable_baselines3.common.vec_env import VecNormalize

            venv = VecNormalize(venv, norm_obs=True, norm_reward=norm_reward)
        model = cls(policy, venv, seed=seed, verbose=0, device=device, **algo_kwargs)
    # A fresh logger folder per session so that resuming does not truncate earlier CSV rows.
    session = len(list((run_dir / "logs").glob("session_*"))) if (run_dir / "logs").exists() else 0
    model.set_logger(
        configure(str(run_dir / "logs" / f"session_{session}"), ["csv", "tensorboard"])
    )
    freq = max(int(run.get("checkpoint_freq", max(total // 5, 1))) // n_envs, 1)
    callbacks = CallbackList(
        [
            CheckpointCallback(
                freq, str(run_dir / "checkpoints"), name_prefix="model", save_vecnormalize=normalize
            ),
            ProtocolMetricsCallback(),
        ]
    )
    remaining = total - start_steps
    if remaining > 0:
        model.learn(
            remaining, callback=callbacks, progress_bar=progress, reset_num_timesteps=resume is None
        )
    _save_model(model, run_dir / "model.zip")
    _save_vecnormalize(venv, run_dir / "vecnormalize.pkl")
    write_json(
        run_dir / "result.json",
        {"num_timesteps": int(model.num_timesteps), "total_timesteps": total},
    )
    venv.close()
    return run_dir


def load_policy(model_path: str | os.PathLike):
    """A trained model and its observation normalization (or None), from ``model.zip``."""
    path = Path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"--model {str(path)!r} does not exist")
    cfg_file = path.parent / "config.yaml"
    algo = "ppo"
    if cfg_file.exists():
        algo = yaml.safe_load(cfg_file.read_text()).get("algo", "ppo")
    model = algo_class(algo).load(path, device="cpu")
    vn = path.parent / "vecnormalize.pkl"
    return model, (vn if vn.exists() else None)


def read_progress(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """All rows of a run's ``progress.csv`` files, in session order."""
    import csv

    rows: list[dict[str, float]] = []
    for session in sorted(
        Path(run_dir, "logs").glob("session_*"), key=lambda p: int(p.name.split("_")[1])
    ):
        file = session / "progress.csv"
        if not file.exists() or file.stat().st_size == 0:
            continue
        with open(file, newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


__all__ = ["train", "load_policy", "latest_checkpoint", "read_progress", "git_revision", "json"]
