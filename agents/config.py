"""Hyperparameters from YAML, RL Baselines3 Zoo style: one file per algorithm, keyed by env id,
with a ``default`` block; command-line overrides on top."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from levgym.configs import config_dir

ALGOS = ("ppo", "sac", "td3", "a2c", "recurrent_ppo")
"""SB3's PPO, SAC, TD3 and A2C, and sb3-contrib's RecurrentPPO (PPO with an LSTM policy)."""
CONFIG_DIR = config_dir("agents")

# Keys that configure the run rather than the SB3 algorithm's constructor.
RUN_KEYS = (
    "n_envs",
    "total_timesteps",
    "normalize",
    "normalize_reward",
    "env_kwargs",
    "checkpoint_freq",
    "policy",
    "torch_threads",
    "curriculum",
    "init_action_mean",
    "init_from_baseline",
)


def check_algo(algo: str) -> str:
    algo = algo.lower()
    if algo not in ALGOS:
        raise ValueError(f"--algo {algo!r} is unknown; allowed {', '.join(ALGOS)}")
    return algo


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(env_id: str, algo: str, path: str | Path | None = None) -> dict[str, Any]:
    """The resolved hyperparameters of ``algo`` on ``env_id``: the file's ``default`` block, then
    the block keyed by ``env_id`` on top. ``path`` defaults to the shipped ``levgym/configs/agents/<algo>.yaml``."""
    algo = check_algo(algo)
    file = Path(path) if path else CONFIG_DIR / f"{algo}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"config file {str(file)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(
            f"config file {str(file)!r} is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(file)!r} must map env ids (and 'default') to blocks")
    for key, block in data.items():
        if not isinstance(block, dict):
            raise ValueError(f"config file {str(file)!r}: block {key!r} must be a mapping")
    return _deep_merge(data.get("default", {}), data.get(env_id, {}))


def parse_value(raw: str) -> Any:
    """A command-line value: YAML scalars and flow collections (``3e-4``, ``true``, ``[64, 64]``)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"value {raw!r} is NaN; allowed a number")
    return value


def apply_overrides(config: dict[str, Any], items: list[str] | None) -> dict[str, Any]:
    """``["learning_rate=1e-3", "policy_kwargs.net_arch=[64,64]"]`` on top of ``config``."""
    out = copy.deepcopy(config)
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--hyper {item!r} is malformed; allowed key=value or key.sub=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--hyper {item!r}: {part!r} is not a mapping")
        node[parts[-1]] = parse_value(raw)
    return out


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, algorithm keyword arguments)."""
    run = {k: config[k] for k in RUN_KEYS if k in config}
    algo_kwargs = {k: v for k, v in config.items() if k not in RUN_KEYS}
    return run, algo_kwargs
