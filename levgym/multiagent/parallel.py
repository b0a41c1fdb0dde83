"""One multi-agent market as a PettingZoo ``ParallelEnv``."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from ..envs.base import unbatch_info
from .markets import MultiAgentMarkets


class MarketParallelEnv(ParallelEnv):
    """levgym market_v0: a governor, ``num_liquidators`` agent liquidators and a market maker in
    one lending market (PettingZoo ``ParallelEnv``; ``levgym.multiagent.parallel_env(...)``).

    Agents: ``governor`` (``levgym/Governance-v0``'s spaces and reward), ``liquidator_0`` ..
    ``liquidator_{M-1}`` (``levgym/Liquidator-v1``'s observation and reward; a fourth action,
    its gas bid), ``market_maker`` (a pool liquidity provider with a perp hedge). One step is one
    governance period; see :class:`levgym.multiagent.MultiAgentMarkets` for the step, the
    in-block priority and the keyword arguments (all but ``num_envs`` are accepted here).

    Episode end: when the governor's episode ends (insolvency: terminated; the horizon:
    truncated) every agent leaves ``agents``; a liquidator whose equity reaches zero is
    terminated alone and leaves ``agents`` (PettingZoo's rule: an agent that is done is removed
    after the step that ends it, and never comes back in the episode). ``state()`` is the global
    view (every agent's observation and the liquidators' alive flags), ``state_space`` its
    space. Infos: the governor's is Governance-v0's step info; a liquidator's and the market
    maker's hold their flows (fills, gas, fees, impermanent loss, funding) in USD.
    """

    metadata = {"name": "levgym_market_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, num_liquidators: int = 3, render_mode: str | None = None, **kwargs: Any):
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r} is not supported; allowed None")
        if "num_envs" in kwargs:
            raise ValueError("num_envs belongs to the batched form; use MultiAgentMarkets")
        self.render_mode = None
        self.markets = MultiAgentMarkets(1, num_liquidators=num_liquidators, **kwargs)
        m = self.markets.num_liquidators
        self.liquidators = [f"liquidator_{i}" for i in range(m)]
        self.possible_agents = ["governor", *self.liquidators, "market_maker"]
        self.agents: list[str] = []
        self._role = {"governor": "governor", "market_maker": "market_maker"}
        self._role.update(dict.fromkeys(self.liquidators, "liquidator"))
        # one space object per agent (each can be seeded on its own)
        self._spaces = {
            a: copy.deepcopy(self.markets.spaces[self._role[a]]) for a in self.possible_agents
        }
        self.state_space = self.markets.state_space()
        self._seeded = False
        self._rng = np.random.default_rng()

    def observation_space(self, agent: str):
        return self._spaces[agent][0]

    def action_space(self, agent: str):
        return self._spaces[agent][1]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif not self._seeded:
            seed = int(self._rng.integers(0, 2**31 - 1))
        self._seeded = True
        obs = self.markets.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._obs(obs, self.agents), {a: {} for a in self.agents}

    def _obs(self, obs: dict[str, np.ndarray], agents: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for a in agents:
            role = self._role[a]
            if role == "liquidator":
                out[a] = obs[role][0, self.liquidators.index(a)].copy()
            else:
                out[a] = obs[role][0].copy()
        return out

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("every agent is done; call reset() before step()")
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise ValueError(f"actions for unknown agents {sorted(unknown)}; allowed {self.agents}")
        mk = self.markets
        ga = np.zeros((1, mk.spaces["governor"][1].shape[0]))
        la = np.zeros((1, mk.num_liquidators, mk.spaces["liquidator"][1].shape[0]))
        ma = np.zeros((1, mk.spaces["market_maker"][1].shape[0]))
        for a in self.agents:
            if a not in actions:
                raise ValueError(f"no action for live agent {a!r}; allowed one action per agent")
            role = self._role[a]
            target = ga[0] if role == "governor" else ma[0]
            if role == "liquidator":
                target = la[0, self.liquidators.index(a)]
            v = np.asarray(actions[a], dtype=np.float64)
            if v.shape != target.shape:
                raise ValueError(f"action of {a!r} has shape {v.shape}; allowed {target.shape}")
            target[...] = v
        obs, rew, term, trunc, info = mk.step(ga, la, ma)
        live = list(self.agents)
        o = self._obs(obs, live)
        rewards, terminations, truncations, infos = {}, {}, {}, {}
        gov_info = unbatch_info(info["governor"], 0)
        for a in live:
            role = self._role[a]
            if role == "liquidator":
                j = self.liquidators.index(a)
                rewards[a] = float(rew[role][0, j])
                terminations[a] = bool(term[role][0, j])
                truncations[a] = bool(trunc[role][0, j])
                infos[a] = {k: float(v[0, j]) for k, v in info[role].items()}
            else:
                rewards[a] = float(rew[role][0])
                terminations[a] = bool(term[role][0])
                truncations[a] = bool(trunc[role][0])
                infos[a] = gov_info if role == "governor" else {
                    k: float(v[0]) for k, v in info[role].items()
                }  # fmt: skip
        self.agents = [a for a in live if not (terminations[a] or truncations[a])]
        return o, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return self.markets.global_state()[0].copy()

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.markets.close()


__all__ = ["MarketParallelEnv"]
