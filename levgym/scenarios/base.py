"""Scenario registry: named, seeded generators of engine drivers for a batch of envs."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import EngineParams, closest_hint

# Train and evaluation seeds are drawn from disjoint ranges so a policy is never evaluated on
# the paths it trained on: training seeds are below EVAL_SEED_OFFSET, evaluation seeds above.
EVAL_SEED_OFFSET = 1_000_000


def train_seed(i: int) -> int:
    """The ``i``-th training seed (``0 <= i < EVAL_SEED_OFFSET``); never an evaluation seed."""
    if (
        isinstance(i, bool)
        or not isinstance(i, numbers.Integral)
        or not (0 <= i < EVAL_SEED_OFFSET)
    ):
        raise ValueError(
            f"train seed index {i!r} is out of range; allowed integers in [0, {EVAL_SEED_OFFSET})"
        )
    return int(i)


def eval_seed(i: int) -> int:
    """The ``i``-th evaluation seed (``EVAL_SEED_OFFSET + i``, ``i >= 0``); never a training seed."""
    if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0:
        raise ValueError(f"eval seed index {i!r} is out of range; allowed integers >= 0")
    return EVAL_SEED_OFFSET + int(i)


def is_eval_seed(seed: int) -> bool:
    """Whether ``seed`` lies in the evaluation range (training seeds are below it)."""
    return int(seed) >= EVAL_SEED_OFFSET


@dataclass(frozen=True)
class ScenarioContext:
    """What a generator needs besides its knobs."""

    num_envs: int
    num_substeps: int
    substep_h: float
    params: EngineParams
    rng: np.random.Generator

    @property
    def times_h(self) -> np.ndarray:
        """End time of each substep in hours, ``[S]``."""
        return (np.arange(self.num_substeps) + 1) * self.substep_h


Builder = Callable[[dict[str, Any], ScenarioContext], Drivers]


@dataclass(frozen=True)
class Scenario:
    """A named scenario: description, kind, source and knobs with their defaults."""

    name: str
    kind: str
    description: str
    source: str
    build: Builder
    knobs: dict[str, Any] = field(default_factory=dict)

    def resolve_knobs(self, overrides: dict[str, str] | None) -> dict[str, Any]:
        knobs = dict(self.knobs)
        for key, raw in (overrides or {}).items():
            if key not in knobs:
                allowed = ", ".join(f"scenario.{k}" for k in sorted(knobs)) or "none"
                hint = closest_hint(key, knobs)
                raise ValueError(
                    f"unknown key scenario.{key}{hint} for scenario {self.name!r}; allowed {allowed}"
                )
            knobs[key] = _coerce_knob(self.name, key, knobs[key], raw)
        return knobs

    def drivers(
        self,
        num_envs: int,
        num_substeps: int,
        params: EngineParams,
        seed: int,
        overrides: dict[str, str] | None = None,
    ) -> Drivers:
        """Drivers ``[num_substeps, num_envs]`` for this scenario, reproducible from ``seed``."""
        knobs = self.resolve_knobs(overrides)
        # default_rng([...]), seeded without numpy's Python layer (the same generator)
        rng = np.random.default_rng([int(seed), _stable_hash(self.name)])
        ctx = ScenarioContext(num_envs, num_substeps, params.run.substep_h, params, rng)
        return self.build(knobs, ctx)


@cache  # every episode start of a scenario seeds its generator with it
def _stable_hash(name: str) -> int:
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


def _coerce_knob(scenario: str, key: str, current: Any, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if isinstance(current, bool):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"scenario.{key}={raw!r} must be true or false")
    if isinstance(current, int | float):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"scenario.{key}={raw!r} must be a number") from None
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"scenario.{key}={raw!r} must be a finite number")
        return int(value) if isinstance(current, int) and value.is_integer() else value
    return raw


_REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name in _REGISTRY:
        raise ValueError(f"scenario {scenario.name!r} is already registered")
    _REGISTRY[scenario.name] = scenario
    return scenario


def unregister(name: str) -> None:
    """Remove a scenario registered at run time (e.g. a user's CSV path); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Scenario:
    """The registered scenario ``name``, or the preset in the YAML file ``name`` (``*.yaml``)."""
    if name not in _REGISTRY and name.endswith((".yaml", ".yml")):
        from .presets import preset_from_yaml

        return preset_from_yaml(name)
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown scenario {name!r}{closest_hint(name, _REGISTRY)}; allowed {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def names() -> list[str]:
    return sorted(_REGISTRY)


def all_scenarios() -> list[Scenario]:
    return [_REGISTRY[n] for n in names()]


def calm_drivers(
    ctx: ScenarioContext, fundamental_usd: np.ndarray, gas_gwei: float = 30.0
) -> Drivers:
    """Drivers with the given price path and the market's normal liquidity, arbitrage and gas."""
    return Drivers.from_price(
        fundamental_usd, arb_speed_frac=ctx.params.market.arb_speed_frac, gas_gwei=gas_gwei
    )


def check_knob(scenario: str, key: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ValueError(
            f"scenario.{key}={value:g} is out of range for {scenario!r}; allowed [{lo:g}, {hi:g}]"
        )
