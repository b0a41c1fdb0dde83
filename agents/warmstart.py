"""Warm starts of a Gaussian policy before reinforcement learning (the ``init_from_baseline`` run
key of ``levgym train``): behaviour cloning of a rule-based baseline, critic included.

The rule plays ``steps`` env-steps in the training envs (through the observation and reward
normalization the run uses, whose statistics start from these steps); the policy's mean action
is then fitted to the rule's actions and its value head to the discounted normalized returns of
the rule's episodes, by mean squared error, for ``epochs`` passes in minibatches of 256. PPO
then trains from that policy as from any other weights. The env-steps of the warm start are not
counted in ``total_timesteps`` (the run's log states them).

Why the critic too: PPO's first updates use advantages from the value head; a random critic
would move the cloned policy by noise before it learns anything. The returns are the
discounted sums of the normalized rewards within each finished episode (steps after an env's
last episode end are dropped; a time-limit end counts as an end, as it does for the rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

DEFAULTS: dict[str, Any] = {
    "steps": 32_768,
    "epochs": 100,
    "learning_rate": 1e-3,
    "dagger_rounds": 0,
}
"""``steps``: about 12 week-long Governance-v1 episodes per env at 16 envs, enough to visit the
regimes of the training mixture; ``epochs`` at Adam's usual rate: the governors' actions move
the parameters step after step, so small errors add up over an episode and the clone must be
close. On Governance-v1 with ``vol_rule`` these defaults bring the mean action's squared error
from 0.28 to 0.002 and the clone's suite objective to -67.0 against the rule's -62.6; 16,384
steps and 20 epochs left 0.016 and -166 (docs/governance-v1.md). ``dagger_rounds``: rounds of
DAgger (Ross et al., 2011) after the first fit: the cloned policy plays ``steps`` more env-steps
(its mean action), the rule labels the observations it meets, and the fit goes on over all the
steps so far; 0 is plain behaviour cloning."""

MINIBATCH = 256
GAUSSIAN_ALGOS = ("ppo", "a2c")


def check_spec(spec: Any, env_id: str, algo: str) -> dict[str, Any]:
    """The resolved ``init_from_baseline`` block (``name`` plus :data:`DEFAULTS`), or a
    ValueError naming the bad key or value."""
    from .baselines import baseline_names, teacher_names

    if algo not in GAUSSIAN_ALGOS:
        raise ValueError(
            f"init_from_baseline is for feed-forward Gaussian policies; allowed with "
            f"{' or '.join(GAUSSIAN_ALGOS)}, not {algo!r}"
        )
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(
            f"init_from_baseline={spec!r} is invalid; allowed a baseline name or a mapping with "
            f"name, steps, epochs, learning_rate, dagger_rounds"
        )
    unknown = sorted(set(spec) - {"name", *DEFAULTS})
    if unknown:
        raise ValueError(
            f"init_from_baseline.{unknown[0]} is unknown; allowed name, steps, epochs, "
            f"learning_rate, dagger_rounds"
        )
    names = baseline_names(env_id) + teacher_names(env_id)
    if spec["name"] not in names:
        raise ValueError(
            f"init_from_baseline.name={spec['name']!r} is unknown for {env_id}; allowed "
            f"{', '.join(names)}"
        )
    out = {**DEFAULTS, **dict(spec)}
    for key, least in (("steps", 1), ("epochs", 1), ("dagger_rounds", 0)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ValueError(
                f"init_from_baseline.{key}={v!r} is out of range; allowed an integer >= {least}"
            )
    lr = out["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not (0 < lr < np.inf):
        raise ValueError(
            f"init_from_baseline.learning_rate={lr!r} is out of range; allowed a number > 0"
        )
    return out


def _raw_obs(venv: Any, obs: np.ndarray) -> np.ndarray:
    get = getattr(venv, "get_original_obs", None)
    return get() if get is not None else obs


def rollout(venv: Any, rule: Any, steps: int, actor: Any = None) -> dict[str, np.ndarray]:
    """``steps`` env-steps (rounded up to whole vector steps) played by ``actor`` (default: the
    rule; else a policy with ``predict`` on the observations it sees), labelled by ``rule``:
    the observations the policy sees ``[T, n, obs]``, the rule's actions, rewards and dones
    ``[T, n]``."""
    n = venv.num_envs
    obs = venv.reset()
    rows: dict[str, list[np.ndarray]] = {"obs": [], "act": [], "rew": [], "done": []}
    for _ in range(-(-steps // n)):
        act, _ = rule.predict(_raw_obs(venv, obs), deterministic=True)
        rows["obs"].append(np.asarray(obs, dtype=np.float32).copy())
        rows["act"].append(np.asarray(act, dtype=np.float32))
        if actor is not None:
            act, _ = actor.predict(obs, deterministic=True)
        obs, rew, done, _ = venv.step(act)
        rows["rew"].append(np.asarray(rew, dtype=np.float64))
        rows["done"].append(np.asarray(done, dtype=bool))
    return {k: np.stack(v) for k, v in rows.items()}


def discounted_returns(
    rew: np.ndarray, done: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per env, the discounted return from each step to its episode's end ``[T, n]`` and the mask
    of steps whose episode ended within the rollout (the others have no known return)."""
    t_n = rew.shape[0]
    ret = np.zeros_like(rew)
    known = np.zeros(rew.shape, dtype=bool)
    g = np.zeros(rew.shape[1])
    seen = np.zeros(rew.shape[1], dtype=bool)
    for t in range(t_n - 1, -1, -1):
        g = np.where(done[t], rew[t], rew[t] + gamma * g)
        seen |= done[t]
        ret[t], known[t] = g, seen
    return ret, known


def behaviour_clone(
    model: Any,
    venv: Any,
    env_id: str,
    spec: Mapping[str, Any],
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Fit ``model``'s policy (mean action and value head) to the baseline ``spec['name']`` on
    ``venv`` (see the module docstring). Returns the mean squared errors of the action before
    and after, and the value error after: the run's log shows them."""
    import torch as th

    from .baselines import make_baseline

    rule = make_baseline(spec["name"], env_id, seed=seed)
    policy = model.policy
    device = policy.device
    parts: list[tuple[np.ndarray, ...]] = []

    def collect(actor: Any = None) -> None:
        data = rollout(venv, rule, int(spec["steps"]), actor)
        ret, known = discounted_returns(data["rew"], data["done"], float(model.gamma))
        width = data["obs"].shape[-1]
        parts.append(
            (
                data["obs"].reshape(-1, width),
                data["act"].reshape(-1, data["act"].shape[-1]),
                ret.reshape(-1),
                known.reshape(-1),
            )
        )

    collect()
    before = None
    opt = th.optim.Adam(policy.parameters(), lr=float(spec["learning_rate"]))
    rng = np.random.default_rng(seed)
    for round_ in range(int(spec["dagger_rounds"]) + 1):
        if round_ > 0:
            collect(model)  # DAgger: the states the clone meets, labelled by the rule
        obs, act, ret_f, known_f = (np.concatenate(c) for c in zip(*parts, strict=True))
        obs_t = th.as_tensor(obs, device=device)
        act_t = th.as_tensor(act, device=device)
        ret_t = th.as_tensor(ret_f, dtype=th.float32, device=device)
        known_t = th.as_tensor(known_f, device=device)
        if before is None:
            before, _ = _errors(policy, obs_t, act_t, ret_t, known_t)
        _fit(policy, opt, obs_t, act_t, ret_t, known_t, int(spec["epochs"]), rng)
    after, value_err = _errors(policy, obs_t, act_t, ret_t, known_t)
    out = {
        "steps": float(len(obs)),
        "action_mse_before": before,
        "action_mse_after": after,
        "value_mse_after": value_err,
    }
    if say is not None:
        rounds = int(spec["dagger_rounds"])
        how = f" and {rounds} DAgger round(s)" if rounds else ""
        say(
            f"warm start: cloned {spec['name']} on {len(obs):,} env-steps{how} (not counted in "
            f"total_timesteps); action MSE {before:.4f} -> {after:.4f}, value MSE {value_err:.4f}"
        )
    return out


def _errors(policy: Any, obs_t: Any, act_t: Any, ret_t: Any, known_t: Any) -> tuple[float, float]:
    """The mean squared errors of the mean action (clipped to the action space) and of the value
    on the steps with a known return."""
    import torch as th

    with th.no_grad():
        mean = policy.get_distribution(obs_t).distribution.mean
        value = policy.predict_values(obs_t).squeeze(-1)
        a = float(((mean.clamp(-1, 1) - act_t) ** 2).mean())
        v = float(((value - ret_t)[known_t] ** 2).mean()) if bool(known_t.any()) else 0.0
    return a, v


def _fit(
    policy: Any,
    opt: Any,
    obs_t: Any,
    act_t: Any,
    ret_t: Any,
    known_t: Any,
    epochs: int,
    rng: np.random.Generator,
) -> None:
    """``epochs`` passes of minibatch Adam on the action and value errors."""
    import torch as th

    device = policy.device
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = rng.permutation(len(obs_t))
        for start in range(0, len(order), MINIBATCH):
            idx = th.as_tensor(order[start : start + MINIBATCH], device=device)
            mean = policy.get_distribution(obs_t[idx]).distribution.mean
            loss = ((mean - act_t[idx]) ** 2).mean()
            k = known_t[idx]
            if bool(k.any()):
                value = policy.predict_values(obs_t[idx]).squeeze(-1)
                loss = loss + ((value - ret_t[idx])[k] ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    policy.set_training_mode(False)
