"""Stable-Baselines3 training from YAML: run folders, TensorBoard, checkpoints, resume."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback

from levgym import __version__, naming
from levgym.io import write_json, write_text

from .callbacks import ProtocolMetricsCallback
from .config import apply_overrides, check_algo, load_config, split_config
from .curriculum import Curriculum, CurriculumCallback
from .persist import (
    NormStats,
    UnsafeFileError,
    find_stats,
    guess_algo,
    inspect_model_zip,
    load_model_safely,
    save_model,
    write_stats_for,
)

CHECKPOINT_RE = re.compile(r"model_(\d+)_steps\.zip$")


def algo_class(algo: str):
    """The algorithm class of ``algo`` (one of :data:`agents.config.ALGOS`)."""
    algo = check_algo(algo)
    if algo == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3, "a2c": sb3.A2C}[algo]


def git_revision() -> str:
    """The repository's commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        # an installed wheel (site-packages): a git repository around it is not levgym's
        return "unknown"
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
    """CleanRL-style ``env__algo__seed__time`` (the scheme of levgym.naming)."""
    return naming.run_name(naming.env_part(env_id), algo, seed)


def make_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict[str, Any]):
    """The SB3 VecEnv for ``env_id`` (levgym's native vector env through its adapter) with
    episode statistics (``rollout/ep_rew_mean``); normalization is added by :func:`train`."""
    from stable_baselines3.common.vec_env import VecMonitor

    from levgym.envs import make_sb3_vec_env

    return VecMonitor(make_sb3_vec_env(env_id, num_envs=n_envs, seed=seed, **env_kwargs))


def checkpoint_files(run_dir: Path, steps: int) -> tuple[Path, Path]:
    """(model zip, normalization statistics) of the checkpoint at ``steps``."""
    ckpt_dir = run_dir / "checkpoints"
    return (
        ckpt_dir / f"model_{steps}_steps.zip",
        ckpt_dir / f"model_vecnormalize_{steps}_steps.json",
    )


def stats_file_for(model_path: Path) -> Path:
    """Where the statistics of a model file live: beside a checkpoint with its step number,
    ``vecnormalize.json`` beside any other model."""
    m = CHECKPOINT_RE.search(model_path.name)
    if m:
        return model_path.with_name(f"model_vecnormalize_{m.group(1)}_steps.json")
    return model_path.with_name("vecnormalize.json")


def _checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    ckpt_dir = run_dir / "checkpoints"
    found = []
    for path in ckpt_dir.glob("model_*_steps.zip") if ckpt_dir.exists() else []:
        m = CHECKPOINT_RE.search(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found, reverse=True)


@dataclass
class ResumePoint:
    """A checkpoint that can be resumed from: a whole model zip and its statistics."""

    path: Path
    steps: int
    stats: NormStats | None


def latest_checkpoint(
    run_dir: Path,
    normalize: bool = True,
    trust_pickle: bool = False,
    say: Callable[[str], None] | None = None,
) -> ResumePoint | None:
    """The newest *valid* checkpoint of a run: its zip is whole and, when the run normalizes,
    its statistics file of the same step exists and parses. Each newer checkpoint skipped is
    reported through ``say`` (one line). Pickled statistics need ``trust_pickle``."""
    say = say or (lambda msg: None)
    for steps, path in _checkpoints(Path(run_dir)):
        try:
            inspect_model_zip(path)
        except ValueError as exc:
            say(f"skipping checkpoint {path.name}: {_tail(exc)}")
            continue
        stats = None
        if normalize:
            json_stats = stats_file_for(path)
            try:
                stats = find_stats(json_stats, trust_pickle)
            except UnsafeFileError:
                raise
            except ValueError as exc:
                say(f"skipping checkpoint {path.name}: {_tail(exc)}")
                continue
            if stats is None:
                say(
                    f"skipping checkpoint {path.name}: its statistics {json_stats.name} are missing"
                )
                continue
        return ResumePoint(path, steps, stats)
    return None


def _tail(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def save_checkpoint(model: Any, venv: Any, run_dir: Path) -> Path:
    """Write the statistics, then the model, of the current step, each atomically: a checkpoint
    zip on disk always has its statistics beside it."""
    zip_path, stats_path = checkpoint_files(run_dir, int(model.num_timesteps))
    write_stats_for(venv, stats_path)
    save_model(model, zip_path)
    return zip_path


class CheckpointSaver(BaseCallback):
    """Periodic checkpoints (model + statistics, atomic), and one more when a stop is requested
    (SIGINT), after which training stops at the end of the current step."""

    def __init__(self, every_calls: int, run_dir: Path, venv: Any) -> None:
        super().__init__()
        self.every_calls = every_calls
        self.run_dir = run_dir
        self.venv = venv
        self.stop_requested = False
        self.saved: Path | None = None

    def _on_step(self) -> bool:
        if self.n_calls % self.every_calls == 0 or self.stop_requested:
            self.saved = save_checkpoint(self.model, self.venv, self.run_dir)
        return not self.stop_requested


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT after saving a checkpoint (the message says where)."""


@contextlib.contextmanager
def _stop_on_sigint(saver: CheckpointSaver):
    """While training, the first Ctrl-C asks ``saver`` to checkpoint and stop; a second one
    interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        saver.stop_requested = True
        print("stopping: saving a checkpoint (Ctrl-C again to quit at once)", file=sys.stderr)
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _never_saved(run_dir: Path) -> bool:
    """A run folder from a start that failed before its first checkpoint."""
    return not _checkpoints(run_dir) and not (run_dir / "model.zip").exists()


def set_initial_action_mean(model: Any, algo: str, mean: Any) -> None:
    """Start a Gaussian policy (PPO, A2C, recurrent PPO) at a given mean action: the
    ``init_action_mean`` run key. The action head's bias is set to ``mean`` and its weights to
    zero, so the untrained policy's deterministic action is ``mean`` in every state (a warm start
    from a constant rule such as ``greedy_hedged`` on ``levgym/Liquidator-v2``, whose action is
    ``[1, -0.5, -0.25]``); the exploration noise is ``log_std_init``'s, and training moves the
    head from there like any other weights."""
    import torch

    if algo not in ("ppo", "a2c", "recurrent_ppo"):
        raise ValueError(
            f"init_action_mean is for Gaussian policies; allowed with ppo, a2c or recurrent_ppo, "
            f"not {algo!r}"
        )
    dim = int(np.prod(model.action_space.shape))
    values = np.asarray(mean, dtype=float).reshape(-1) if isinstance(mean, list | tuple) else None
    low, high = model.action_space.low.reshape(-1), model.action_space.high.reshape(-1)
    if values is None or values.shape != (dim,) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"init_action_mean={mean!r} is invalid; allowed a list of {dim} finite numbers"
        )
    if np.any(values < low) or np.any(values > high):
        raise ValueError(
            f"init_action_mean={mean!r} is out of range; allowed within the action space "
            f"[{low.min():g}, {high.max():g}]"
        )
    head = model.policy.action_net
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.as_tensor(values, dtype=head.bias.dtype))


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
    trust_pickle: bool = False,
    device: str = "cpu",
) -> Path:
    """Train ``algo`` on ``env_id``; returns the run folder.

    The folder keeps ``config.yaml`` (resolved hyperparameters), ``command.txt``, ``meta.json``
    (git revision, seed, versions), ``logs/`` (TensorBoard events and ``progress.csv``),
    ``checkpoints/`` (periodic, each model zip with its ``model_vecnormalize_<steps>_steps.json``,
    written atomically) and ``model.zip`` (+ ``vecnormalize.json``) at the end.

    ``resume`` continues a run folder from its newest valid checkpoint up to its
    ``total_timesteps`` (or the one given here); a truncated or corrupt checkpoint, or one without
    its statistics, is skipped with one line on stderr. The first SIGINT saves a checkpoint and
    raises :class:`TrainingInterrupted`. A start that fails before the first checkpoint removes
    the folder it created (and a folder left by one is accepted by a rerun).
    """
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure

    def say(msg: str) -> None:
        print(msg, file=sys.stderr)

    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").exists():
            raise FileNotFoundError(
                f"--resume {str(run_dir)!r} is not a run folder (no config.yaml)"
            )
        saved = _find_config(run_dir / "model.zip") or {}
        missing = [k for k in ("env_id", "algo", "seed", "hyperparameters") if k not in saved]
        if missing or not isinstance(saved["hyperparameters"], dict):
            raise ValueError(
                f"--resume {str(run_dir)!r}: config.yaml lacks {', '.join(missing) or 'hyperparameters'}"
            )
        env_id, algo, seed = saved["env_id"], check_algo(str(saved["algo"])), int(saved["seed"])
        config = saved["hyperparameters"]
        if total_timesteps is not None:
            config["total_timesteps"] = int(total_timesteps)
    else:
        algo = check_algo(algo)
        config = apply_overrides(load_config(env_id, algo, config_path), hyper)
        if total_timesteps is not None:
            config["total_timesteps"] = int(total_timesteps)
        run_dir = Path(out) if out else Path("runs") / "train" / run_name(env_id, algo, seed)
        if (run_dir / "config.yaml").exists() and not _never_saved(run_dir):
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
    point = None
    if resume is not None:
        point = latest_checkpoint(run_dir, normalize, trust_pickle, say)
        if point is None:
            say(f"no valid checkpoint in {run_dir}; starting from scratch")

    curriculum = None
    if run.get("curriculum") is not None:
        curriculum = Curriculum.from_config(run["curriculum"])

    from levgym.distributed import pin_threads

    # small MLPs on a few cores train faster on one thread, and the env's kernel keeps the others;
    # the same function pins a sweep's trials and the benchmark's seed workers
    pin_threads(torch_threads=int(run.get("torch_threads", 1)))
    cls = algo_class(algo)
    warm = None
    if point is None and run.get("init_from_baseline") is not None:
        from .warmstart import check_spec

        warm = check_spec(run["init_from_baseline"], env_id, algo)
    # Everything that can fail on the arguments happens before the folder is made.
    venv = make_vec_env(env_id, n_envs, seed, env_kwargs)
    try:
        if point is not None:
            if point.stats is not None:
                venv = point.stats.wrap(venv, training=True)
            model = load_model_safely(
                point.path,
                algo,
                venv,
                policy,
                algo_kwargs,
                seed=seed,
                restore_training_state=True,
                trust_pickle=trust_pickle,
                device=device,
            )
            say(f"resuming {run_dir} from {point.path.name} ({model.num_timesteps} steps)")
        else:
            if normalize:
                from stable_baselines3.common.vec_env import VecNormalize

                venv = VecNormalize(venv, norm_obs=True, norm_reward=norm_reward)
            # a copy: SB3 edits policy_kwargs in place (A2C adds its optimizer class)
            kwargs = copy.deepcopy(algo_kwargs)
            model = cls(policy, venv, seed=seed, verbose=0, device=device, **kwargs)
            if warm is not None:
                from .warmstart import behaviour_clone

                behaviour_clone(model, venv, env_id, warm, seed=seed, say=say)
            if run.get("init_action_mean") is not None:
                set_initial_action_mean(model, algo, run["init_action_mean"])
    except BaseException:
        venv.close()
        raise
    start_steps = int(model.num_timesteps)

    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"env_id": env_id, "algo": algo, "seed": seed, "hyperparameters": config}
    try:
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
        # A fresh logger folder per session so that resuming does not truncate earlier CSV rows.
        logs = run_dir / "logs"
        session = len(list(logs.glob("session_*"))) if logs.exists() else 0
        model.set_logger(configure(str(logs / f"session_{session}"), ["csv", "tensorboard"]))
        freq = max(int(run.get("checkpoint_freq", max(total // 5, 1))) // n_envs, 1)
        saver = CheckpointSaver(freq, run_dir, venv)
        extra = [] if curriculum is None else [CurriculumCallback(curriculum, total)]
        callbacks = CallbackList([saver, ProtocolMetricsCallback(), *extra])
        remaining = total - start_steps
        if remaining > 0:
            with _stop_on_sigint(saver):
                model.learn(
                    remaining,
                    callback=callbacks,
                    progress_bar=progress,
                    reset_num_timesteps=point is None,
                )
        if saver.stop_requested and model.num_timesteps < total:
            where = checkpoint_files(run_dir, int(model.num_timesteps))[0]
            if saver.saved != where:  # the stop came after the last step's callback
                where = save_checkpoint(model, venv, run_dir)
            raise TrainingInterrupted(
                f"interrupted at {model.num_timesteps} steps; checkpoint {where}; "
                f"continue with: levgym train --resume {run_dir}"
            )
        write_stats_for(venv, run_dir / "vecnormalize.json")
        save_model(model, run_dir / "model.zip")
        write_json(
            run_dir / "result.json",
            {"num_timesteps": int(model.num_timesteps), "total_timesteps": total},
        )
    except BaseException as exc:
        if created and resume is None and _never_saved(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, TrainingInterrupted):
            raise TrainingInterrupted(
                f"interrupted at {model.num_timesteps} steps before a checkpoint was saved"
            ) from None
        raise
    finally:
        venv.close()
    return run_dir


def _find_config(model_path: Path) -> dict[str, Any] | None:
    """The run's resolved config for a model file: ``config.yaml`` beside it, or one level up
    for a checkpoint."""
    for folder in (model_path.parent, model_path.parent.parent):
        file = folder / "config.yaml"
        if file.exists():
            try:
                cfg = yaml.safe_load(file.read_text())
            except yaml.YAMLError as exc:
                raise ValueError(
                    f"{str(file)!r} is not valid YAML: {str(exc).splitlines()[0]}"
                ) from None
            if not isinstance(cfg, dict):
                raise ValueError(f"{str(file)!r} is not a levgym run config")
            return cfg
    return None


def load_policy(
    model_path: str | os.PathLike, env_id: str | None = None, trust_pickle: bool = False
) -> tuple[Any, NormStats | None]:
    """A trained model and its observation normalization (or None) from ``model.zip`` (or a run
    folder holding one), without unpickling anything unless ``trust_pickle``.

    The algorithm, policy and hyperparameters come from the run's ``config.yaml`` and the spaces
    from ``env_id`` (default: the run's env); see :func:`agents.persist.load_model_safely`.
    """
    path = Path(model_path)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise FileNotFoundError(f"--model {str(model_path)!r} does not exist")
    cfg = _find_config(path)
    data = inspect_model_zip(path)
    if cfg is not None:
        algo = check_algo(str(cfg.get("algo", "ppo")))
        hyper = dict(cfg.get("hyperparameters") or {})
        trained_on = cfg.get("env_id")
        if env_id is not None and trained_on is not None and env_id != trained_on:
            raise ValueError(
                f"--env {env_id!r} is not the env the model was trained on; allowed {trained_on!r}"
            )
        env_id = env_id or trained_on
    else:
        guessed = guess_algo(data)
        if guessed is None:
            raise ValueError(
                f"cannot tell the algorithm of {str(path)!r}; put the run's config.yaml beside it"
            )
        algo, hyper = guessed, {}
    if env_id is None:
        raise ValueError(f"--env is needed for {str(path)!r} (no config.yaml beside it)")
    run, algo_kwargs = split_config(hyper)
    # Prediction needs only the policy's architecture; the training settings (buffers, schedules)
    # are kept so that the algorithm builds as it was trained, but on a single env.
    env = make_vec_env(env_id, 1, 0, dict(run.get("env_kwargs", {})))
    try:
        model = load_model_safely(
            path,
            algo,
            env,
            run.get("policy", "MlpPolicy"),
            _for_prediction(algo, algo_kwargs),
            trust_pickle=trust_pickle,
        )
    finally:
        env.close()
    stats_path = stats_file_for(path)
    stats = find_stats(stats_path, trust_pickle)
    if stats is None and cfg is not None and bool(run.get("normalize", True)):
        raise ValueError(
            f"model {str(path)!r} was trained with normalized observations but "
            f"{stats_path.name} is missing beside it"
        )
    return model, stats


def _for_prediction(algo: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    if algo in ("sac", "td3"):
        out["buffer_size"] = 1  # a replay buffer is never filled when only predicting
        out.pop("learning_starts", None)
    else:  # one env: keep the rollout small and the minibatch consistent with it
        out["n_steps"] = min(int(out.get("n_steps", 2048)), 64)
        if "batch_size" in out:
            out["batch_size"] = out["n_steps"]
    return out


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


__all__ = [
    "train",
    "load_policy",
    "latest_checkpoint",
    "save_checkpoint",
    "read_progress",
    "git_revision",
    "TrainingInterrupted",
    "json",
]
