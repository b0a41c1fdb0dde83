"""Env-steps per second of the native vector envs, and the share of it spent in the engine."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np


def env_steps_per_second(
    env_id: str,
    num_envs: int = 256,
    num_positions: int = 256,
    steps: int = 20,
    warmup: int = 3,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """Time ``steps`` steps of ``gym.make_vec(env_id, num_envs)`` after ``warmup`` steps.

    Actions are one fixed random batch (drawn once, so sampling is not timed). Returns
    env-steps per second (``num_envs * steps / seconds``) and ``engine_share``, the share of
    the time spent inside ``levgym.engine.substep`` (the rest is the env: actions, drivers,
    noise, observations, rewards, autoresets).
    """
    import levgym.envs  # noqa: F401  (registers the ids)

    for name, v in (("num_envs", num_envs), ("steps", steps)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} is out of range; allowed an integer >= 1")
    venv = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        num_positions=num_positions,
        **kwargs,
    )
    venv.reset(seed=seed)
    venv.action_space.seed(seed)
    actions = np.asarray(venv.action_space.sample())
    for _ in range(warmup):
        venv.step(actions)
    core = venv.unwrapped.core
    core.engine_seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    seconds = time.perf_counter() - t0
    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "num_positions": num_positions,
        "steps": steps,
        "substeps_per_step": venv.unwrapped.substeps_per_step,
        "backend": venv.unwrapped.backend,
        "seconds": seconds,
        "env_steps_per_s": num_envs * steps / seconds,
        "engine_share": core.engine_seconds / seconds,
    }


__all__ = ["env_steps_per_second"]
