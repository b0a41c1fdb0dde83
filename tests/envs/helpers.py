"""Small, fast configurations of the levgym envs for tests."""

from __future__ import annotations

import numpy as np

from levgym.envs import (
    GovernanceEnv,
    GovernanceV1Env,
    GovernanceV1VectorEnv,
    GovernanceV2Env,
    GovernanceV2VectorEnv,
    GovernanceVectorEnv,
    LiquidatorEnv,
    LiquidatorV2Env,
    LiquidatorV2VectorEnv,
    LiquidatorV3Env,
    LiquidatorV3VectorEnv,
    LiquidatorVectorEnv,
)

# (env id, single class, vector class, a short horizon in hours: 3 Governance steps, 6 Liquidator steps)
ENVS = [
    ("levgym/Governance-v0", GovernanceEnv, GovernanceVectorEnv, 3.0),
    ("levgym/Governance-v1", GovernanceV1Env, GovernanceV1VectorEnv, 3.0),
    ("levgym/Liquidator-v1", LiquidatorEnv, LiquidatorVectorEnv, 1.0),
    ("levgym/Liquidator-v2", LiquidatorV2Env, LiquidatorV2VectorEnv, 1.0),
    # the warm-book ids (their episodes start from warmed books, levgym.warm.WarmPool)
    ("levgym/Governance-v2", GovernanceV2Env, GovernanceV2VectorEnv, 3.0),
    ("levgym/Liquidator-v3", LiquidatorV3Env, LiquidatorV3VectorEnv, 1.0),
]
IDS = [e[0].split("/")[1] for e in ENVS]
SMALL = {"num_positions": 24}
# A stressed mix so that liquidations (and so the interesting code paths) happen early.
STRESS = ["shock", "black_thursday_2020_fast", "liquidity_drought", "calm"]


def stress_mix() -> list[str]:
    """The stressed scenarios that are registered (the library grows independently)."""
    from levgym.scenarios import names

    got = [n for n in STRESS if n in names()]
    return got or ["shock"]


def random_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Actions in [-1.2, 1.2] so that clipping is exercised too."""
    return rng.uniform(-1.2, 1.2, shape)
