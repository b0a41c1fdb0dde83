"""The Gymnasium environments: single envs, native vector envs on the batched engine, and the
Stable-Baselines3 adapter. Importing ``levgym`` registers ``levgym/Governance-v0``,
``levgym/Governance-v1``, ``levgym/Governance-v2``, ``levgym/PortfolioGovernance-v0``,
``levgym/Liquidator-v1``, ``levgym/Liquidator-v2``, ``levgym/Liquidator-v3`` and
``levgym/CrossProtocolHedger-v0`` (and the older ``levgym/Liquidator-v0``)."""

from __future__ import annotations

from typing import Any

from .base import LevgymEnv, LevgymVectorEnv
from .cross_protocol import CrossProtocolHedgerEnv, CrossProtocolHedgerVectorEnv
from .features import Feature, render_table
from .governance import GovernanceEnv, GovernanceVectorEnv, StewardLimits, project_params
from .governance_v1 import (
    GovernanceV1Env,
    GovernanceV1VectorEnv,
    GovernanceV2Env,
    GovernanceV2VectorEnv,
)
from .liquidator import (
    LiquidatorEnv,
    LiquidatorV2Env,
    LiquidatorV2VectorEnv,
    LiquidatorV3Env,
    LiquidatorV3VectorEnv,
    LiquidatorVectorEnv,
)
from .portfolio_governance import PortfolioGovernanceEnv, PortfolioGovernanceVectorEnv
from .registration import ENV_SPECS, register_envs

register_envs()


def make_sb3_vec_env(env_id: str, num_envs: int = 8, seed: int | None = None, **kwargs: Any):
    """A Stable-Baselines3 ``VecEnv`` of ``num_envs`` envs of ``env_id`` on the native vector
    env (see :func:`levgym.envs.sb3.make_sb3_vec_env`; imported lazily, as SB3 imports torch)."""
    from .sb3 import make_sb3_vec_env as _make

    return _make(env_id, num_envs=num_envs, seed=seed, **kwargs)


__all__ = [
    "ENV_SPECS",
    "CrossProtocolHedgerEnv",
    "CrossProtocolHedgerVectorEnv",
    "Feature",
    "GovernanceEnv",
    "GovernanceV1Env",
    "GovernanceV1VectorEnv",
    "GovernanceV2Env",
    "GovernanceV2VectorEnv",
    "GovernanceVectorEnv",
    "LevgymEnv",
    "LevgymVectorEnv",
    "LiquidatorEnv",
    "LiquidatorV2Env",
    "LiquidatorV2VectorEnv",
    "LiquidatorV3Env",
    "LiquidatorV3VectorEnv",
    "LiquidatorVectorEnv",
    "PortfolioGovernanceEnv",
    "PortfolioGovernanceVectorEnv",
    "StewardLimits",
    "make_sb3_vec_env",
    "project_params",
    "register_envs",
    "render_table",
]
