"""Environment measurements: env-steps per second of the vector envs (alone and through the
Stable-Baselines3 adapter) and the share of a short PPO run's wall time spent in the env."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

ENV_IDS = ("levgym/Governance-v0", "levgym/Liquidator-v1")
WORKLOAD_ENV_IDS = (*ENV_IDS, "levgym/Governance-v1", "levgym/Liquidator-v0")
"""The envs of the workload rows (Governance-v1, the benchmark's governance env, steps with its
two step kernels, :mod:`levgym.envs.steward_program`; Liquidator-v0, one substep a step,
measures the overhead)."""
ACTION_KINDS = ("zero", "random")
"""The actions of the workload rows: all zeros, or pre-drawn random samples of the action space
(one per env per step, drawn before the clock starts)."""


def envs_available() -> bool:
    """Whether :mod:`levgym.envs` (and its registration with Gymnasium) can be imported."""
    try:
        import levgym.envs  # noqa: F401
    except ImportError:
        return False
    return True


def uses_fused_kernel(venv: Any) -> bool:
    """Whether a levgym vector env steps its market with the fused numba kernel: its batched
    market must hold the substep it calls as ``step_fn`` (as ``Simulator`` does, from
    :func:`levgym.engine.dispatch.substep_function`) and that must be the kernel."""
    from ..engine.fused import fused_substep

    core = getattr(getattr(venv, "unwrapped", venv), "core", None)
    return getattr(core, "step_fn", None) is fused_substep


def env_dispatches_numba(env_id: str) -> bool:
    """Whether ``gym.make_vec(env_id, backend="numba")`` runs the fused kernel (a tiny env is
    built to find out)."""
    import gymnasium as gym

    import levgym.envs  # noqa: F401

    venv = gym.make_vec(
        env_id,
        num_envs=1,
        vectorization_mode="vector_entry_point",
        num_positions=4,
        backend="numba",
    )
    try:
        return uses_fused_kernel(venv)
    finally:
        venv.close()


def projected_rate(
    vector: dict[str, Any], num_envs: int, substeps_per_step: int, kernel_ms_per_substep: float
) -> float:
    """Env-steps per second the env would reach if its engine time were the fused kernel's: the
    measured time outside the engine plus ``substeps_per_step`` kernel substeps per step. A
    projection from two measurements, not a measurement."""
    seconds_per_step = vector["seconds"] / vector["steps"]
    outside = seconds_per_step * (1.0 - vector["engine_share"])
    return num_envs / (outside + substeps_per_step * kernel_ms_per_substep / 1e3)


def vector_env_rate(
    env_id: str, num_envs: int, num_positions: int, steps: int, backend: str, seed: int = 0
) -> dict[str, Any]:
    """Env-steps per second of ``gym.make_vec(env_id, num_envs)`` on ``backend`` (the envs'
    own timer, :func:`levgym.envs.speed.env_steps_per_second`, which also reports the share
    of the time inside the engine)."""
    from ..envs.speed import env_steps_per_second

    out = env_steps_per_second(
        env_id,
        num_envs=num_envs,
        num_positions=num_positions,
        steps=steps,
        warmup=2,
        seed=seed,
        backend=backend,
    )
    return {
        "env_steps_per_s": float(out["env_steps_per_s"]),
        "engine_share": float(out.get("engine_share", float("nan"))),
        "seconds": float(out["seconds"]),
        "steps": steps,
        "substeps_per_step": int(out.get("substeps_per_step", 1)),
    }


def workload_rate(
    env_id: str,
    num_envs: int | None,
    num_positions: int,
    actions: str,
    steps: int,
    backend: str,
    seed: int = 0,
    warmup: int = 2,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Env-steps per second of one named workload, with the work it did (``env_kwargs`` go to
    the env, e.g. ``path_pool``).

    ``num_envs=None`` is the single env (``gym.make(env_id)``, reset by the loop when an episode
    ends, as a user's loop does); an integer is ``gym.make_vec(env_id, num_envs)`` (same-step
    autoreset). ``actions`` is ``"zero"`` or ``"random"`` (pre-drawn, not timed). Besides the
    rate the row states the cascade rounds the timed steps ran (the sum over envs and substeps
    of the rounds the engine returned), so overhead can be told from the cost of cascades, and
    the share of the timed steps spent outside the engine's calls (``outside_kernel_share``:
    the Python around the step kernel, episode starts included; ``kernel_seconds`` is the time
    inside them, the runner's ``engine_seconds``).
    """
    import gymnasium as gym

    import levgym.envs  # noqa: F401  (registers the ids)

    from ..engine.backend import to_numpy

    if actions not in ACTION_KINDS:
        raise ValueError(f"actions={actions!r} is unknown; allowed {', '.join(ACTION_KINDS)}")
    single = num_envs is None
    if single:
        env = gym.make(env_id, num_positions=num_positions, backend=backend, **env_kwargs)
        space, e = env.action_space, 1
    else:
        env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            num_positions=num_positions,
            backend=backend,
            **env_kwargs,
        )
        space, e = env.single_action_space, int(num_envs)
    try:
        shape = (warmup + steps, *(() if single else (e,)), *space.shape)
        if actions == "zero":
            drawn = np.zeros(shape, dtype=space.dtype)
        else:
            rng = np.random.default_rng(seed)
            drawn = rng.uniform(space.low, space.high, size=shape).astype(space.dtype)
        env.reset(seed=seed)
        core = env.unwrapped.vector_env.core if single else env.unwrapped.core
        for k in range(warmup):
            _, _, term, trunc, _ = env.step(drawn[k])
            if single and (term or trunc):
                env.reset()
        rounds0 = float(np.sum(to_numpy(core.rounds_total)))
        substeps0 = core.substeps_run
        kernel0 = core.engine_seconds
        t0 = time.perf_counter()
        if single:
            for k in range(warmup, warmup + steps):
                _, _, term, trunc, _ = env.step(drawn[k])
                if term or trunc:
                    env.reset()
        else:
            for k in range(warmup, warmup + steps):
                env.step(drawn[k])
        seconds = time.perf_counter() - t0
        kernel = core.engine_seconds - kernel0
        rounds = float(np.sum(to_numpy(core.rounds_total))) - rounds0
        substeps = core.substeps_run - substeps0
    finally:
        env.close()
    return {
        "env_steps_per_s": e * steps / seconds,
        "seconds": seconds,
        "steps": steps,
        "num_envs": e,
        "via": "gym.make" if single else "gym.make_vec",
        "positions": num_positions,
        "actions": actions,
        "backend": backend,
        "substeps": substeps,
        "cascade_rounds": rounds,
        "cascade_rounds_per_env_substep": rounds / max(e * substeps, 1),
        "kernel_seconds": kernel,
        "outside_kernel_share": 1.0 - kernel / seconds,
    }


def episode_start_cost(
    env_id: str,
    num_envs: int,
    num_positions: int,
    backend: str,
    repeats: int = 5,
    seed: int = 0,
    cached: bool = False,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Microseconds per env of an episode start, amortised over a batch: the best of
    ``repeats`` resets of every env of ``gym.make_vec(env_id, num_envs, **env_kwargs)`` (drawing
    the scenario path and the book, building the state, the first observation).

    Each timed reset starts new episodes, so an env with warm books from a pool (``warm_pool``,
    the warm-book ids) warms the books it takes for the first time inside the timed reset: the
    first-use cost. ``cached=True`` runs the same sequence of resets twice from ``seed`` and
    times the second pass, whose books are all warmed already: the cost once a pool holds the
    books (for the others the two passes cost the same). A pool starts with the books earlier
    processes saved (:mod:`levgym.warm`'s disk cache): time a first use with
    ``LEVGYM_WARM_CACHE=off`` or an empty folder there."""
    import gymnasium as gym

    import levgym.envs  # noqa: F401  (registers the ids)

    venv = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        num_positions=num_positions,
        backend=backend,
        **env_kwargs,
    )
    try:
        everyone = {"reset_mask": np.ones(num_envs, dtype=bool)}
        for _ in range(2 if cached else 1):
            venv.reset(seed=seed)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                venv.reset(options=everyone)
                best = min(best, time.perf_counter() - t0)
        warmup_h = float(venv.core.warmup_h)
    finally:
        venv.close()
    return {
        "env": env_id.split("/", 1)[1],
        "num_envs": num_envs,
        "positions": num_positions,
        "backend": backend,
        "us_per_env": 1e6 * best / num_envs,
        "repeats": repeats,
        "warmup_h": warmup_h,
        "cached": bool(cached),
    }


def _mixture(env_id: str, **env_kwargs: Any) -> tuple[list[str], int, Any]:
    """The scenario names, episode length in substeps and engine parameters of ``env_id``'s
    episodes (an env of 8 positions built to read them)."""
    import gymnasium as gym

    import levgym.envs  # noqa: F401  (registers the ids)

    venv = gym.make_vec(
        env_id, num_envs=1, vectorization_mode="vector_entry_point", num_positions=8, **env_kwargs
    )
    try:
        core = venv.unwrapped.core
        return list(core.scenarios), int(core.horizon_substeps), core.params
    finally:
        venv.close()


def scenario_path_cost(
    env_id: str, seeds: int = 30, repeats: int = 7, **env_kwargs: Any
) -> dict[str, Any]:
    """Microseconds of one env's scenario path at an episode start, alone: for each scenario of
    the env's mixture, the best of ``repeats`` timings of drawing its drivers for one env and
    the env's episode length from ``seeds`` seeds (values not checked, as the market runner
    draws them), averaged over the scenarios with equal weight; and each scenario's figure."""
    return _path_costs(env_id, *_mixture(env_id, **env_kwargs), seeds, repeats)


def _path_costs(
    env_id: str, names: list[str], s: int, params: Any, seeds: int, repeats: int
) -> dict[str, Any]:
    """:func:`scenario_path_cost` of a mixture already read (:func:`_mixture`)."""
    from ..engine.drivers import unchecked
    from ..scenarios import get

    each: dict[str, float] = {}
    for name in names:
        scenario = get(name)
        with unchecked():
            scenario.drivers(1, s, params, 0)  # compile or load any kernels first
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            with unchecked():
                for seed in range(seeds):
                    scenario.drivers(1, s, params, seed)
            best = min(best, (time.perf_counter() - t0) / seeds)
        each[name] = 1e6 * best
    return {
        "env": env_id.split("/", 1)[1],
        "num_substeps": s,
        "us_per_path": sum(each.values()) / len(each),
        "us_per_path_by_scenario": each,
    }


def episode_start_floor(
    env_id: str,
    num_envs: int,
    num_positions: int,
    seeds: int = 30,
    repeats: int = 7,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """What a fresh episode start of ``env_id`` costs in its own draws alone, without the market
    runner around them: the scenario paths (:func:`scenario_path_cost`: the cheapest scenario
    of the mixture and the mean), the random numbers of the cheapest kind of path (one standard
    normal per substep from the env's fresh generator, a GBM path's draws; ``normals_us``), and
    a book of ``num_positions`` slots per env (:func:`levgym.engine.state.draw_books` of
    ``num_envs`` fresh generators, as a batch start draws them; best of ``repeats``).
    ``floor_us`` is the cheapest path plus a book: what a start drawing a new path and book
    costs at the least, whatever the Python around it."""
    from ..engine.state import draw_books

    names, s, params = _mixture(env_id, **env_kwargs)  # the env is built once
    paths = _path_costs(env_id, names, s, params, seeds, repeats)
    normals = book = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for seed in range(seeds):
            np.random.default_rng(seed).standard_normal(s)
        normals = min(normals, (time.perf_counter() - t0) / seeds)
        t0 = time.perf_counter()
        draw_books(params, num_positions, [np.random.default_rng(i) for i in range(num_envs)])
        book = min(book, (time.perf_counter() - t0) / num_envs)
    by_scenario = paths["us_per_path_by_scenario"]
    cheapest = min(by_scenario, key=by_scenario.get)
    return {
        "env": paths["env"],
        "num_envs": num_envs,
        "positions": num_positions,
        "num_substeps": s,
        "cheapest_scenario": cheapest,
        "path_us_min": by_scenario[cheapest],
        "path_us_mean": paths["us_per_path"],
        "normals_us": 1e6 * normals,
        "book_us_per_env": 1e6 * book,
        "floor_us": by_scenario[cheapest] + 1e6 * book,
    }


def starting_book_edge(
    env_id: str,
    num_envs: int = 256,
    num_positions: int = 64,
    seed: int = 0,
    falls: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.30),
    **env_kwargs: Any,
) -> dict[str, Any]:
    """How close to liquidation the books of ``num_envs`` first episodes of ``env_id`` start
    (seeded ``seed``): the share of their debt (all books together) that an oracle fall of each
    of ``falls`` makes liquidatable (health factor below ``1 / (1 - fall)``), active slots and
    debt per book. Compares fresh books with warmed ones (``levgym/Governance-v2``)."""
    import gymnasium as gym

    import levgym.envs  # noqa: F401  (registers the ids)

    from ..simulation import health_factors

    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
        num_positions=num_positions, **env_kwargs,
    )  # fmt: skip
    try:
        venv.reset(seed=seed)
        state = venv.core.state.to_numpy()
    finally:
        venv.close()
    hf, debt = health_factors(state)
    out: dict[str, Any] = {"env": env_id.split("/", 1)[1], "num_envs": num_envs}
    for fall in falls:
        out[f"liquidatable_after_{100 * fall:g}pct_fall_frac"] = float(
            debt[hf < 1.0 / (1.0 - fall)].sum() / debt.sum()
        )
    out["active_slots_mean"] = float(state.active.sum(axis=1).mean())
    out["debt_per_book_usd"] = float(state.debt_usd.sum(axis=1).mean())
    return out


def sb3_env_rate(
    env_id: str, num_envs: int, num_positions: int, steps: int, backend: str, seed: int = 0
) -> dict[str, Any]:
    """Env-steps per second through the SB3 adapter (``step_async`` + ``step_wait``, autoreset
    and info dicts included), with one fixed batch of random actions."""
    from ..envs import make_sb3_vec_env

    venv = make_sb3_vec_env(
        env_id, num_envs=num_envs, seed=seed, num_positions=num_positions, backend=backend
    )
    try:
        venv.reset()
        space = venv.action_space
        space.seed(seed)
        actions = np.stack([np.asarray(space.sample()) for _ in range(num_envs)])
        for _ in range(2):
            venv.step_async(actions)
            venv.step_wait()
        t0 = time.perf_counter()
        for _ in range(steps):
            venv.step_async(actions)
            venv.step_wait()
        seconds = time.perf_counter() - t0
        fused = uses_fused_kernel(venv.venv)
    finally:
        venv.close()
    return {
        "env_steps_per_s": num_envs * steps / seconds,
        "seconds": seconds,
        "steps": steps,
        "fused_kernel": fused,
    }


def ppo_env_share(
    env_id: str,
    num_envs: int,
    num_positions: int,
    n_steps: int,
    rollouts: int,
    n_epochs: int,
    batch_size: int,
    backend: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Share of a short Stable-Baselines3 PPO run's wall time spent inside the env.

    The adapter is wrapped so that ``reset``, ``step_async`` and ``step_wait`` are timed;
    the rest of ``model.learn`` is the policy's forward passes during rollouts and the
    gradient updates. PPO runs with SB3's defaults except ``n_steps``, ``n_epochs`` and
    ``batch_size`` (given), on the CPU, after one untimed reset of the env (``learn`` resets it
    again, timed).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from ..envs import make_sb3_vec_env

    class TimedVecEnv(VecEnvWrapper):
        """Adds up the wall time spent in the wrapped VecEnv."""

        def __init__(self, venv: Any) -> None:
            super().__init__(venv)
            self.env_seconds = 0.0

        def reset(self) -> Any:
            t0 = time.perf_counter()
            obs = self.venv.reset()
            self.env_seconds += time.perf_counter() - t0
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            t0 = time.perf_counter()
            self.venv.step_async(actions)
            self.env_seconds += time.perf_counter() - t0

        def step_wait(self) -> Any:
            t0 = time.perf_counter()
            out = self.venv.step_wait()
            self.env_seconds += time.perf_counter() - t0
            return out

    venv = TimedVecEnv(
        make_sb3_vec_env(
            env_id, num_envs=num_envs, seed=seed, num_positions=num_positions, backend=backend
        )
    )
    threads = torch.get_num_threads()
    # One torch thread: the fastest setting for SB3's small MLP here (several threads on a small,
    # shared CPU make each gradient step many times slower, which would flatter the env's share).
    torch.set_num_threads(1)
    try:
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=n_steps,
            n_epochs=n_epochs,
            batch_size=batch_size,
            seed=seed,
            device="cpu",
            verbose=0,
        )
        total = n_steps * num_envs * rollouts
        # One untimed reset first: the process's first writes into the driver bank (tens of MB
        # at 256 envs) fault its pages in, on hosts with transparent huge pages a compaction
        # that moves by 0.1 s between runs: a one-time cost, as compiling the kernels is.
        venv.reset()
        venv.env_seconds = 0.0
        t0 = time.perf_counter()
        model.learn(total_timesteps=total)
        learn_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
        venv.close()
    return {
        "share": venv.env_seconds / learn_s,
        "env_seconds": venv.env_seconds,
        "learn_seconds": learn_s,
        "config": {
            "env_id": env_id,
            "backend": backend,
            "num_envs": num_envs,
            "positions": num_positions,
            "n_steps": n_steps,
            "n_epochs": n_epochs,
            "batch_size": batch_size,
            "total_timesteps": total,
            "policy": "MlpPolicy (SB3 default 64x64)",
            "torch_threads": 1,
        },
    }


__all__ = [
    "ACTION_KINDS",
    "ENV_IDS",
    "WORKLOAD_ENV_IDS",
    "episode_start_cost",
    "episode_start_floor",
    "scenario_path_cost",
    "starting_book_edge",
    "envs_available",
    "ppo_env_share",
    "sb3_env_rate",
    "uses_fused_kernel",
    "vector_env_rate",
    "workload_rate",
]


def multiagent_rate(
    num_envs: int,
    num_positions: int,
    num_liquidators: int,
    steps: int,
    backend: str,
    seed: int = 0,
    warmup: int = 2,
) -> dict[str, Any]:
    """Env-steps per second of the batched multi-agent market
    (:class:`levgym.multiagent.MultiAgentMarkets`: a governor, ``num_liquidators`` agent
    liquidators and a market maker per market), with random actions drawn before the timer;
    one env-step is one market's governance period, as for ``levgym/Governance-v0``."""
    from ..multiagent import MultiAgentMarkets

    mk = MultiAgentMarkets(
        num_envs, num_liquidators=num_liquidators, num_positions=num_positions, backend=backend
    )
    mk.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total = warmup + steps
    ga = rng.uniform(-1, 1, (total, num_envs, 4))
    la = rng.uniform(-1, 1, (total, num_envs, num_liquidators, 4))
    ma = rng.uniform(-1, 1, (total, num_envs, 2))
    t0 = 0.0
    for t in range(total):
        if t == warmup:
            t0 = time.perf_counter()
        if mk.market_done.any():
            mk.reset(mask=mk.market_done)
        mk.step(ga[t], la[t], ma[t])
    seconds = time.perf_counter() - t0
    mk.close()
    return {
        "env_steps_per_s": num_envs * steps / seconds,
        "seconds": seconds,
        "steps": steps,
        "num_envs": num_envs,
        "positions": num_positions,
        "liquidators": num_liquidators,
        "backend": backend,
    }
