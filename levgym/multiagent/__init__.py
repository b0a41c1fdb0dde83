"""Multi-agent markets: a governor, M agent liquidators and a market maker in one market.

- :class:`MultiAgentMarkets`: the batched form, E markets on the batched engine;
- :func:`parallel_env`: one market as a PettingZoo ``ParallelEnv`` (needs the ``multiagent``
  extra: ``pip install levgym[multiagent]``);
- :class:`RoleVecEnv`: one role's agents across all markets as a Stable-Baselines3 ``VecEnv``,
  the other roles following frozen policies or their rules.

See docs/multiagent.md.
"""

from __future__ import annotations

from typing import Any

from .markets import (
    MA_LIQUIDATOR_ACTIONS,
    MARKET_MAKER_ACTIONS,
    MARKET_MAKER_FEATURES,
    ROLES,
    MultiAgentMarkets,
)


def parallel_env(**kwargs: Any):
    """A PettingZoo ``ParallelEnv`` of one market (:class:`levgym.multiagent.parallel.MarketParallelEnv`)."""
    from .parallel import MarketParallelEnv

    return MarketParallelEnv(**kwargs)


def __getattr__(name: str) -> Any:
    if name == "RoleVecEnv":
        from .sb3 import RoleVecEnv

        return RoleVecEnv
    if name == "MarketParallelEnv":
        from .parallel import MarketParallelEnv

        return MarketParallelEnv
    raise AttributeError(name)


__all__ = [
    "MA_LIQUIDATOR_ACTIONS",
    "MARKET_MAKER_ACTIONS",
    "MARKET_MAKER_FEATURES",
    "ROLES",
    "MultiAgentMarkets",
    "parallel_env",
]
