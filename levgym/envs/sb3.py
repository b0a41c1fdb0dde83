"""A Stable-Baselines3 ``VecEnv`` over levgym's native vector envs (no per-env Python objects)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from .base import LevgymVectorEnv


class Sb3VecEnvAdapter(VecEnv):
    """SB3's ``VecEnv`` API on a :class:`LevgymVectorEnv` (the lean pattern of Isaac Lab's
    ``Sb3VecEnvWrapper``).

    - Same-step reset: the vector env autoresets (``AutoresetMode.SAME_STEP``); for an env that
      ended, ``step_wait`` returns the first observation of its next episode and
      ``done = terminated or truncated``.
    - ``infos`` is a list of dicts; only envs that ended get a non-empty one, with
      ``terminal_observation`` (the last observation of the ended episode),
      ``TimeLimit.truncated`` (truncated and not terminated), ``episode`` (``r``, ``l``, ``t``,
      which SB3 logs as ``rollout/ep_rew_mean``) and ``end_cause``.
    - ``step_info`` is the vector env's info of the last step (arrays ``[E]``: revenue, bad debt,
      parameters, liquidations, equity, ...), kept by reference, not copied: a callback that
      logs metrics (``agents.callbacks.ProtocolMetricsCallback``) reduces the arrays it needs
      once per step instead of the adapter building a dict per env per step.
    - ``seed(s)`` (SB3 gives env ``i`` the seed ``s + i``) and ``set_options`` apply at the next
      ``reset``, exactly as the vector env's ``reset(seed=s)`` seeds env ``i`` with ``s + i``.
    - ``get_attr``, ``set_attr`` and ``env_method`` reach per-env values where the vector env
      has them (``scenario``, ``protocol_params``, ``episode_step``, ``episode_return``,
      ``seed``; ``render``) and the batch's shared attributes otherwise (setting a shared one
      needs every index).
    """

    def __init__(self, venv: LevgymVectorEnv) -> None:
        base = venv.unwrapped if hasattr(venv, "unwrapped") else venv
        if not isinstance(base, LevgymVectorEnv):
            raise ValueError(
                f"venv={venv!r} is not a levgym vector env; use gym.make_vec on a levgym id"
            )
        if base.metadata.get("autoreset_mode") is not AutoresetMode.SAME_STEP:
            raise ValueError(
                f"the vector env's autoreset_mode is {base.metadata.get('autoreset_mode')}; "
                "the SB3 adapter needs AutoresetMode.SAME_STEP"
            )
        self.venv = base
        super().__init__(base.num_envs, base.single_observation_space, base.single_action_space)
        self._actions: np.ndarray | None = None
        self._t0 = time.time()
        self.step_info: dict[str, Any] = {}

    def reset(self) -> VecEnvObs:
        seeds = self._seeds
        seed: list[int] | None = None
        if any(s is not None for s in seeds):
            if any(s is None for s in seeds):
                raise ValueError(f"seeds {seeds} are partly None; seed every env or none")
            seed = [int(s) for s in seeds]  # type: ignore[arg-type]
        options = self._options[0] if self._options and self._options[0] else None
        obs, info = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        scen = info.get("scenario")
        self.reset_infos = [
            {"scenario": scen[i]} if scen is not None else {} for i in range(self.num_envs)
        ]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        self.step_info = info
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = info["final_obs"]
            final = info["final_info"]
            ep = final["episode"]
            elapsed = round(time.time() - self._t0, 6)
            for i in np.flatnonzero(dones):
                infos[i] = {
                    "terminal_observation": final_obs[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {"r": float(ep["r"][i]), "l": int(ep["l"][i]), "t": elapsed},
                    "end_cause": final["end_cause"][i],
                    "scenario": final["scenario"][i],
                }
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self.venv.get_env_attr(attr_name, i) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.venv.set_env_attr(attr_name, value, list(self._get_indices(indices)))

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Per-env methods (``render``) run once per index; a method of the batch runs once and
        its result is returned for every index."""
        idx = list(self._get_indices(indices))
        if method_name in self.venv.PER_ENV_METHODS:
            return [self.venv.call_env(method_name, i, *method_args, **method_kwargs) for i in idx]
        if not idx:
            return []
        result = self.venv.call_env(method_name, idx[0], *method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        # The envs are rows of one batched state, never wrapped in gymnasium wrappers.
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.venv.render_mode != "rgb_array":
            return [None for _ in range(self.num_envs)]
        return [self.venv.render_env(i) for i in range(self.num_envs)]


def make_sb3_vec_env(
    env_id: str, num_envs: int = 8, seed: int | None = None, **kwargs: Any
) -> Sb3VecEnvAdapter:
    """A Stable-Baselines3 ``VecEnv`` of ``num_envs`` envs of ``env_id`` (a levgym id) on the
    native vector env: ``gym.make_vec(env_id, num_envs, **kwargs)`` wrapped in
    :class:`Sb3VecEnvAdapter`. With ``seed``, the first reset seeds env ``i`` with
    ``seed + i``. ``kwargs`` are the env's arguments (``num_positions``, ``scenarios``, ...)."""
    import levgym.envs  # noqa: F401  (registers the ids)

    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    adapter = Sb3VecEnvAdapter(venv)
    if seed is not None:
        adapter.seed(int(seed))
    return adapter


__all__ = ["Sb3VecEnvAdapter", "make_sb3_vec_env"]
