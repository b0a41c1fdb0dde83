"""One role of the multi-agent market as a Stable-Baselines3 ``VecEnv``.

The roles' spaces differ (the governor sees 28 features and sets 4 levers, a liquidator 21 and
4, the market maker 22 and 2), so SuperSuit's ``pettingzoo_env_to_vec_env_v1``, which stacks
agents that share one observation and one action space, does not fit. :class:`RoleVecEnv`
exposes instead the agents of one role across all E markets (E envs for the governor or the
market maker, E x M for the liquidators) while the other roles follow frozen policies or their
rules (:data:`RULES`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from .markets import ROLES, MultiAgentMarkets

RULES: dict[str, dict[str, tuple[float, ...]]] = {
    "governor": {"static": (0.0, 0.0, 0.0, 0.0)},
    "liquidator": {
        # leave every liquidation to the background keepers, sell what is held
        "keepers": (-1.0, 1.0, -1.0, -1.0),
        # claim every liquidation, sell it all in the next step, no hedge, a middle gas bid
        "greedy": (1.0, 1.0, -1.0, 0.0),
    },
    # follow the scenario's liquidity (no change of its own), no hedge
    "market_maker": {"scenario": (0.0, -1.0)},
}
"""The rule each role plays when it is not learning: a constant action per rule name. The
first of each role is the rule the agent replaces (with them every market runs as
``levgym/Governance-v0`` does, see the equivalence test)."""

DEFAULT_RULES = {role: next(iter(RULES[role])) for role in ROLES}

Policy = str | Callable[[np.ndarray], np.ndarray] | Any


def _act(policy: Policy, role: str, obs: np.ndarray) -> np.ndarray:
    """The actions ``[B, A]`` of ``policy`` (a rule name, an object with SB3's ``predict``, or a
    function of the observations) for observations ``[B, F]``."""
    if isinstance(policy, str):
        if policy not in RULES[role]:
            raise ValueError(
                f"rule {policy!r} is unknown for the {role}; allowed {', '.join(RULES[role])}"
            )
        return np.tile(np.asarray(RULES[role][policy]), (obs.shape[0], 1))
    if hasattr(policy, "predict"):
        action, _ = policy.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)
    return np.asarray(policy(obs), dtype=np.float64)


class RoleVecEnv(VecEnv):
    """SB3's ``VecEnv`` over one role of :class:`MultiAgentMarkets`.

    - ``role``: ``governor``, ``liquidator`` or ``market_maker``; ``policies`` maps the other
      roles to a rule name of :data:`RULES`, a frozen SB3 model (its deterministic ``predict``)
      or a function of the observations ``[B, F]`` (default: the rules the agents replace).
    - Env ``k`` is market ``k`` (governor, market maker) or liquidator ``k % M`` of market
      ``k // M``.
    - Same-step reset: a market whose governor's episode ended starts a new one at once (every
      agent of it is done: ``terminal_observation``, ``TimeLimit.truncated`` at the horizon); a
      bankrupt liquidator is done and a new liquidator with fresh books takes its slot in the
      same market (so every env is always live).
    - ``step_info``: the markets' info of the last step (arrays by role), for callbacks.
    """

    def __init__(
        self,
        role: str,
        num_envs: int = 8,
        *,
        policies: Mapping[str, Policy] | None = None,
        seed: int | None = None,
        markets: MultiAgentMarkets | None = None,
        **market_kwargs: Any,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role={role!r} is unknown; allowed {', '.join(ROLES)}")
        self.role = role
        self.markets = markets or MultiAgentMarkets(num_envs, **market_kwargs)
        mk = self.markets
        self.policies = {r: DEFAULT_RULES[r] for r in ROLES if r != role}
        for r, p in dict(policies or {}).items():
            if r not in self.policies:
                raise ValueError(
                    f"policies[{r!r}]: allowed the other roles {', '.join(self.policies)}"
                )
            if isinstance(p, str):
                _act(p, r, np.zeros((1, 1)))  # a bad rule name fails here
            self.policies[r] = p
        self.m = mk.num_liquidators
        n = mk.num_envs * (self.m if role == "liquidator" else 1)
        obs_space, act_space = mk.spaces[role]
        self.render_mode = None
        super().__init__(n, obs_space, act_space)
        self._obs: dict[str, np.ndarray] = {}
        self._actions: np.ndarray | None = None
        self._return = np.zeros(n)
        self._length = np.zeros(n, dtype=np.int64)
        self._t0 = time.time()
        self.step_info: dict[str, Any] = {}
        if seed is not None:
            self.seed(int(seed))

    def _role_obs(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        o = obs[self.role]
        return o.reshape(-1, o.shape[-1]).copy()

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0] if self._seeds else None
        self._obs = self.markets.reset(seed=None if seed is None else int(seed))
        self._reset_seeds()
        self._return[:] = 0.0
        self._length[:] = 0
        return self._role_obs(self._obs)

    def _actions_of(self, role: str, mine: np.ndarray | None) -> np.ndarray:
        mk = self.markets
        obs = self._obs[role]
        flat = obs.reshape(-1, obs.shape[-1])
        a = mine if role == self.role else _act(self.policies[role], role, flat)
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(mk.num_envs, self.m, -1) if role == "liquidator" else a

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        mk = self.markets
        acts = {r: self._actions_of(r, self._actions) for r in ROLES}
        self._actions = None
        obs, rew, term, trunc, info = mk.step(
            acts["governor"], acts["liquidator"], acts["market_maker"]
        )
        self.step_info = info
        r = rew[self.role].reshape(-1)
        te = term[self.role].reshape(-1)
        tr = trunc[self.role].reshape(-1)
        dones = te | tr
        self._return += r
        self._length += 1
        last = self._role_obs(obs)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        elapsed = round(time.time() - self._t0, 6)
        for k in np.flatnonzero(dones):
            market = k // self.m if self.role == "liquidator" else k
            infos[k] = {
                "terminal_observation": last[k],
                "TimeLimit.truncated": bool(tr[k] and not te[k]),
                "episode": {"r": float(self._return[k]), "l": int(self._length[k]), "t": elapsed},
                "market": int(market),
            }
        self._return[dones] = 0.0
        self._length[dones] = 0
        ended = info["market_done"]
        if ended.any():
            obs = mk.reset(mask=ended)
        bankrupt = term["liquidator"] & ~ended[:, None]
        if bankrupt.any():
            obs = mk.enter_liquidators(bankrupt)
        self._obs = obs
        return self._role_obs(obs), r.astype(np.float32), dones, infos

    def close(self) -> None:
        self.markets.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise ValueError(f"attribute {attr_name!r} cannot be set on a RoleVecEnv")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kw: Any
    ) -> list[Any]:
        raise ValueError(f"method {method_name!r}: a RoleVecEnv has no per-env methods")

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


__all__ = ["DEFAULT_RULES", "RULES", "RoleVecEnv"]
