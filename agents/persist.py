"""Saving and loading models and normalization statistics without running code from the file.

A Stable-Baselines3 ``model.zip`` holds a ``data`` JSON (hyperparameters and state, some entries
cloudpickled under ``:serialized:``), ``policy.pth`` and optimizer state dicts. Unpickling a
``:serialized:`` entry (or a ``vecnormalize.pkl``) runs whatever code its author put there, so
levgym never does by default: the pickled entries it knows are rebuilt from plain fields (the env,
the run's ``config.yaml``), never decoded; weights are read with ``torch.load(weights_only=True)``;
normalization statistics are plain JSON. Old files that need unpickling load only with
``trust_pickle`` (``--trust-pickle`` on the command line).
"""

from __future__ import annotations

import copy
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from levgym.io import atomic_write, write_json

STATS_FORMAT = "levgym.vecnormalize/1"

# Pickled ``data`` entries that are never decoded: each is rebuilt when the algorithm is
# constructed from the env (spaces), the algorithm name (policy class) and the run's config
# (policy kwargs, schedules, buffer classes, train frequency, action noise), or is transient
# rollout state that SB3 itself discards on load (last observations, episode info buffers).
REBUILT_ENTRIES = frozenset(
    {
        "observation_space",
        "action_space",
        "policy_class",
        "policy_kwargs",
        "lr_schedule",
        "learning_rate",
        "clip_range",
        "clip_range_vf",
        "rollout_buffer_class",
        "replay_buffer_class",
        "train_freq",
        "action_noise",
        "_last_obs",
        "_last_original_obs",
        "_last_episode_starts",
        "ep_info_buffer",
        "ep_success_buffer",
    }
)

# Plain (JSON) training counters restored on resume; everything else comes from the config.
RESTORED_COUNTERS = ("num_timesteps", "_n_updates", "_episode_num")


class UnsafeFileError(ValueError):
    """A file that can only be loaded by unpickling it (running code from it)."""


def pickle_refusal(path: str | os.PathLike, what: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"{str(path)!r} {what}, and unpickling it would run code from the file; "
        "rerun with --trust-pickle only if you trust its author"
    )


# ---------------------------------------------------------------- normalization statistics


@dataclass
class NormStats:
    """The running statistics of a ``VecNormalize`` (observation and return), as plain data."""

    obs_mean: np.ndarray
    obs_var: np.ndarray
    obs_count: float
    ret_mean: float
    ret_var: float
    ret_count: float
    clip_obs: float
    clip_reward: float
    epsilon: float
    gamma: float
    norm_obs: bool
    norm_reward: bool

    @classmethod
    def from_vecnormalize(cls, vn: Any) -> NormStats:
        if isinstance(vn.obs_rms, dict):
            raise ValueError("dict observation spaces are not supported by the statistics file")
        return cls(
            obs_mean=np.asarray(vn.obs_rms.mean, dtype=np.float64).copy(),
            obs_var=np.asarray(vn.obs_rms.var, dtype=np.float64).copy(),
            obs_count=float(vn.obs_rms.count),
            ret_mean=float(np.asarray(vn.ret_rms.mean).reshape(-1)[0]),
            ret_var=float(np.asarray(vn.ret_rms.var).reshape(-1)[0]),
            ret_count=float(vn.ret_rms.count),
            clip_obs=float(vn.clip_obs),
            clip_reward=float(vn.clip_reward),
            epsilon=float(vn.epsilon),
            gamma=float(vn.gamma),
            norm_obs=bool(vn.norm_obs),
            norm_reward=bool(vn.norm_reward),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATS_FORMAT,
            "obs_rms": {
                "mean": self.obs_mean.tolist(),
                "var": self.obs_var.tolist(),
                "count": self.obs_count,
            },
            "ret_rms": {"mean": self.ret_mean, "var": self.ret_var, "count": self.ret_count},
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "epsilon": self.epsilon,
            "gamma": self.gamma,
            "norm_obs": self.norm_obs,
            "norm_reward": self.norm_reward,
        }

    @classmethod
    def from_json(cls, obj: Any, source: str) -> NormStats:
        def bad(what: str) -> ValueError:
            return ValueError(f"statistics file {source!r}: {what}")

        if not isinstance(obj, dict) or obj.get("format") != STATS_FORMAT:
            raise bad(f"not a levgym statistics file; allowed format {STATS_FORMAT!r}")
        try:
            obs, ret = obj["obs_rms"], obj["ret_rms"]
            mean = np.asarray(obs["mean"], dtype=np.float64)
            var = np.asarray(obs["var"], dtype=np.float64)
            nums = {
                "obs_rms.count": obs["count"],
                "ret_rms.mean": ret["mean"],
                "ret_rms.var": ret["var"],
                "ret_rms.count": ret["count"],
                "clip_obs": obj["clip_obs"],
                "clip_reward": obj["clip_reward"],
                "epsilon": obj["epsilon"],
                "gamma": obj["gamma"],
            }
            flags = {k: obj[k] for k in ("norm_obs", "norm_reward")}
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed entry {exc}") from None
        if mean.ndim != 1 or mean.shape != var.shape:
            raise bad(f"obs_rms mean {mean.shape} and var {var.shape} must be equal 1-D shapes")
        for name, value in nums.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(f"{name}={value!r} is not a number")
            if not math.isfinite(value) or value < 0 and name != "ret_rms.mean":
                raise bad(f"{name}={value!r} is out of range; allowed finite and >= 0")
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
            raise bad("obs_rms mean/var must be finite with var >= 0")
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise bad(f"{name}={value!r} is not true or false")
        return cls(
            mean,
            var,
            float(nums["obs_rms.count"]),
            float(nums["ret_rms.mean"]),
            float(nums["ret_rms.var"]),
            float(nums["ret_rms.count"]),
            float(nums["clip_obs"]),
            float(nums["clip_reward"]),
            float(nums["epsilon"]),
            float(nums["gamma"]),
            flags["norm_obs"],
            flags["norm_reward"],
        )

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        """What ``VecNormalize.normalize_obs`` returns with these statistics."""
        if not self.norm_obs:
            return obs
        out = (obs - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon)
        return np.clip(out, -self.clip_obs, self.clip_obs).astype(np.float32)

    def wrap(self, venv: Any, training: bool = True) -> Any:
        """A ``VecNormalize`` around ``venv`` holding these statistics."""
        from stable_baselines3.common.vec_env import VecNormalize

        shape = venv.observation_space.shape
        if tuple(shape) != self.obs_mean.shape:
            raise ValueError(
                f"normalization statistics are for observations of shape {self.obs_mean.shape}, "
                f"the env's are {tuple(shape)}"
            )
        vn = VecNormalize(
            venv,
            training=training,
            norm_obs=self.norm_obs,
            norm_reward=self.norm_reward,
            clip_obs=self.clip_obs,
            clip_reward=self.clip_reward,
            gamma=self.gamma,
            epsilon=self.epsilon,
        )
        vn.obs_rms.mean = self.obs_mean.copy()
        vn.obs_rms.var = self.obs_var.copy()
        vn.obs_rms.count = self.obs_count
        vn.ret_rms.mean = np.float64(self.ret_mean)
        vn.ret_rms.var = np.float64(self.ret_var)
        vn.ret_rms.count = self.ret_count
        return vn


def save_stats(venv: Any, path: str | os.PathLike) -> Path:
    """Write a ``VecNormalize``'s statistics as JSON, atomically."""
    return write_json(path, NormStats.from_vecnormalize(venv).to_json())


def read_stats(path: str | os.PathLike) -> NormStats:
    """Statistics from a JSON file written by :func:`save_stats` (validated)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"statistics file {str(path)!r} is unreadable: {exc}") from None
    return NormStats.from_json(obj, str(path))


def read_legacy_stats(path: str | os.PathLike, trust_pickle: bool) -> NormStats:
    """Statistics from an old ``vecnormalize.pkl`` (a pickled ``VecNormalize``): only trusted."""
    if not trust_pickle:
        raise pickle_refusal(path, "holds pickled normalization statistics")
    import pickle

    with open(path, "rb") as fh:
        return NormStats.from_vecnormalize(pickle.load(fh))  # noqa: S301 (trusted by the user)


def find_stats(json_path: Path, trust_pickle: bool) -> NormStats | None:
    """The statistics at ``json_path`` or, trusted, its ``.pkl`` sibling; None when neither exists."""
    if json_path.exists():
        return read_stats(json_path)
    legacy = json_path.with_suffix(".pkl")
    if legacy.exists():
        return read_legacy_stats(legacy, trust_pickle)
    return None


# ---------------------------------------------------------------- models


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """``model.save`` into a temporary file, then one rename: a reader never sees half a zip."""
    return atomic_write(path, lambda tmp: model.save(tmp), ".zip")


def inspect_model_zip(path: str | os.PathLike) -> dict[str, Any]:
    """The ``data`` JSON of a model zip, after checking the archive is whole (CRCs included).

    Raises ``ValueError`` naming the file when it is truncated, corrupt or not an SB3 model.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"model file {str(p)!r} is corrupt (entry {broken!r})")
            names = set(archive.namelist())
            if "data" not in names or "policy.pth" not in names:
                # a truncated SB3 zip can still show the directory of an inner .pth archive
                raise ValueError(
                    f"model file {str(p)!r} is truncated or corrupt, or not a Stable-Baselines3 "
                    "model (no data or policy.pth entry)"
                )
            data = json.loads(archive.read("data").decode("utf-8"))
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"model file {str(p)!r} is truncated or corrupt ({exc})") from None
    except json.JSONDecodeError:
        raise ValueError(f"model file {str(p)!r} has a malformed data entry") from None
    if not isinstance(data, dict):
        raise ValueError(f"model file {str(p)!r} has a malformed data entry")
    return data


def pickled_entries(data: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v)


def unsafe_entries(data: dict[str, Any], rebuilt: frozenset[str] = REBUILT_ENTRIES) -> list[str]:
    """Pickled entries that levgym cannot rebuild from plain fields."""
    return [k for k in pickled_entries(data) if k not in rebuilt]


def guess_algo(data: dict[str, Any]) -> str | None:
    """The algorithm of a model zip from its plain fields (for a model without config.yaml)."""
    if "policy_delay" in data:
        return "td3"
    if "target_entropy" in data:
        return "sac"
    if "n_epochs" in data:
        return "ppo"
    if "vf_coef" in data:
        return "a2c"
    return None


def _read_weights(path: Path, device: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    import torch

    params: dict[str, Any] = {}
    variables = None
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".pth"):
                continue
            with archive.open(name) as fh:
                obj = torch.load(fh, map_location=device, weights_only=True)
            if name in ("pytorch_variables.pth", "tensors.pth"):
                variables = obj
            else:
                params[name[: -len(".pth")]] = obj
    return params, variables


def load_model_safely(
    path: str | os.PathLike,
    algo: str,
    env: Any,
    policy: str = "MlpPolicy",
    algo_kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    restore_training_state: bool = False,
    trust_pickle: bool = False,
    device: str = "cpu",
) -> Any:
    """An SB3 model from ``path`` rebuilt fresh (``ALGO(policy, env, **algo_kwargs)``) with its
    weights, never unpickling an entry of the file.

    ``env`` gives the spaces; ``algo_kwargs`` (the run's resolved hyperparameters) give everything
    else. With ``restore_training_state`` the optimizers, counters and extra torch variables are
    restored too (for resuming). A pickled entry outside :data:`REBUILT_ENTRIES` is refused (one
    line naming it) unless ``trust_pickle``, where SB3's own ``load`` is used.
    """
    from .train import algo_class

    p = Path(path)
    data = inspect_model_zip(p)
    cls = algo_class(algo)
    unsafe = unsafe_entries(data)
    if unsafe:
        if not trust_pickle:
            raise pickle_refusal(p, f"has pickled entry {unsafe[0]!r} that levgym cannot rebuild")
        return cls.load(p, env=env, device=device)
    if policy not in cls.policy_aliases:
        raise ValueError(
            f"policy {policy!r} is unknown for {algo}; allowed {', '.join(cls.policy_aliases)}"
        )
    kwargs = copy.deepcopy(dict(algo_kwargs or {}))  # SB3 edits policy_kwargs in place
    if "policy_kwargs" not in kwargs and isinstance(data.get("policy_kwargs"), dict):
        if ":serialized:" not in data["policy_kwargs"]:
            kwargs["policy_kwargs"] = data["policy_kwargs"]
        elif not trust_pickle:
            raise pickle_refusal(
                p, "has pickled entry 'policy_kwargs' and no config.yaml beside it to rebuild it"
            )
        else:
            return cls.load(p, env=env, device=device)
    try:
        model = cls(policy, env, seed=seed, verbose=0, device=device, **kwargs)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild {algo} from the run's hyperparameters: {exc}") from None
    params, variables = _read_weights(p, device)
    state_names, variable_names = model._get_torch_save_params()
    unknown = sorted(set(params) - set(state_names))
    if unknown:
        raise ValueError(f"model file {str(p)!r} has unexpected weights entry {unknown[0]!r}")
    if not restore_training_state:
        params = {k: v for k, v in params.items() if k == "policy"}
    try:
        model.set_parameters(params, exact_match=restore_training_state, device=device)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"model file {str(p)!r} does not fit {algo} on this env's spaces and hyperparameters: {first}"
        ) from None
    if restore_training_state:
        for name in variable_names:
            value = (variables or {}).get(name)
            if value is not None:
                _set_tensor(model, name, value)
        for key in RESTORED_COUNTERS:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(model, key, value)
    return model


def _set_tensor(model: Any, name: str, value: Any) -> None:
    import torch
    from stable_baselines3.common.save_util import recursive_getattr

    if not isinstance(value, torch.Tensor):
        raise ValueError(f"torch variable {name!r} is not a tensor")
    target = recursive_getattr(model, name)
    if target.shape != value.shape:
        raise ValueError(f"torch variable {name!r} has shape {tuple(value.shape)}")
    target.data = value.data.to(target.device)


def write_stats_for(venv: Any, path: str | os.PathLike) -> Path | None:
    """Save ``venv``'s statistics when it is a ``VecNormalize``."""
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(venv, VecNormalize):
        return save_stats(venv, path)
    return None
