"""Exogenous drivers for a batch of envs: named, seeded scenarios (synthetic and replayed)."""

from . import builtin  # noqa: F401  (registers the built-in scenarios)
from .base import EVAL_SEED_OFFSET, Scenario, ScenarioContext, all_scenarios, get, names, register

__all__ = ["EVAL_SEED_OFFSET", "Scenario", "ScenarioContext", "all_scenarios", "get", "names", "register"]
