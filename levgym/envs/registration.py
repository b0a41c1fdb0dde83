"""Registration of the levgym ids with Gymnasium (``entry_point`` and ``vector_entry_point``)."""

from __future__ import annotations

import gymnasium as gym

# No max_episode_steps: the horizon is the env argument horizon_h and the envs truncate
# themselves, so the single env, the vector env and the SB3 adapter agree on where an episode
# ends (a TimeLimit wrapper would cut a longer horizon_h short).
ENV_SPECS: dict[str, dict[str, str]] = {
    "levgym/Governance-v0": {
        "entry_point": "levgym.envs.governance:GovernanceEnv",
        "vector_entry_point": "levgym.envs.governance:GovernanceVectorEnv",
    },
    "levgym/Governance-v1": {
        "entry_point": "levgym.envs.governance_v1:GovernanceV1Env",
        "vector_entry_point": "levgym.envs.governance_v1:GovernanceV1VectorEnv",
    },
    "levgym/Liquidator-v0": {
        "entry_point": "levgym.envs.liquidator:LiquidatorV0Env",
        "vector_entry_point": "levgym.envs.liquidator:LiquidatorV0VectorEnv",
    },
    "levgym/Liquidator-v1": {
        "entry_point": "levgym.envs.liquidator:LiquidatorEnv",
        "vector_entry_point": "levgym.envs.liquidator:LiquidatorVectorEnv",
    },
    "levgym/PortfolioGovernance-v0": {
        "entry_point": "levgym.envs.portfolio_governance:PortfolioGovernanceEnv",
        "vector_entry_point": "levgym.envs.portfolio_governance:PortfolioGovernanceVectorEnv",
    },
    "levgym/Liquidator-v2": {
        "entry_point": "levgym.envs.liquidator:LiquidatorV2Env",
        "vector_entry_point": "levgym.envs.liquidator:LiquidatorV2VectorEnv",
    },
    "levgym/Governance-v2": {
        "entry_point": "levgym.envs.governance_v1:GovernanceV2Env",
        "vector_entry_point": "levgym.envs.governance_v1:GovernanceV2VectorEnv",
    },
    "levgym/Liquidator-v3": {
        "entry_point": "levgym.envs.liquidator:LiquidatorV3Env",
        "vector_entry_point": "levgym.envs.liquidator:LiquidatorV3VectorEnv",
    },
    "levgym/CrossProtocolHedger-v0": {
        "entry_point": "levgym.envs.cross_protocol:CrossProtocolHedgerEnv",
        "vector_entry_point": "levgym.envs.cross_protocol:CrossProtocolHedgerVectorEnv",
    },
}


# gym.make returns the env itself, without Gymnasium's OrderEnforcing and PassiveEnvChecker
# wrappers: the envs refuse step() and render() before reset() themselves, the test suite runs
# gymnasium's check_env on each of them, and the two wrappers' Python layers cost a single env
# about a fifth of a Liquidator-v0 step. gym.make(id, disable_env_checker=False) adds the
# checker back.
WRAPPERS = {"order_enforce": False, "disable_env_checker": True}


def register_envs() -> None:
    """Register every levgym id once (idempotent)."""
    for env_id, spec in ENV_SPECS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **spec, **WRAPPERS)


__all__ = ["ENV_SPECS", "register_envs"]
