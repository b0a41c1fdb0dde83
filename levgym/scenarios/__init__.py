"""Exogenous drivers for a batch of envs: named, seeded scenarios (synthetic and replayed)."""

from . import (
    builtin,  # noqa: F401  (registers calm and shock)
    library,  # noqa: F401  (registers the synthetic and stress scenarios)
    regimes,  # noqa: F401  (registers the Markov-switching regime scenarios)
    replays,  # noqa: F401  (registers the crash replays)
)
from .base import (
    EVAL_SEED_OFFSET,
    Scenario,
    ScenarioContext,
    all_scenarios,
    eval_seed,
    get,
    is_eval_seed,
    names,
    register,
    train_seed,
)
from .presets import register_presets

PRESETS = register_presets()

__all__ = [
    "EVAL_SEED_OFFSET",
    "PRESETS",
    "Scenario",
    "ScenarioContext",
    "all_scenarios",
    "eval_seed",
    "get",
    "is_eval_seed",
    "names",
    "register",
    "train_seed",
]
