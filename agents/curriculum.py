"""A curriculum over crash size for training: the training scenarios' crash knobs start small and
grow to their full values over the first part of training.

Set in a run's config (``levgym/configs/agents/<algo>.yaml`` or ``--hyper``)::

    curriculum:
      knobs: [crash_jump_mean_log, crash_vol_annual]   # knobs of the training scenarios
      start_frac: 0.25     # each knob at 25% of its value at the first step
      full_at_frac: 0.5    # ... growing linearly to 100% at half of total_timesteps

At the start of every rollout the callback sets each named knob of every training scenario that
has it to ``factor x`` its value (the scenario's default, or the run's ``scenario_overrides``),
``factor = start_frac + (1 - start_frac) * min(step / (full_at_frac * total), 1)``. Only
episodes that start afterwards see the new size. Evaluation always runs the full-size
scenarios, so a curriculum changes how the agent learns, never what it is judged on. The factor
is logged as ``curriculum/factor``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

DEFAULT_KNOBS = ("crash_jump_mean_log", "crash_vol_annual")
"""The knobs of a crash's size in the regime scenarios: the mean log jump and the volatility
of the crash regime."""


@dataclass(frozen=True)
class Curriculum:
    """Crash knobs scaled by a factor that grows from ``start_frac`` to 1 by ``full_at_frac`` of
    the run's total timesteps."""

    knobs: tuple[str, ...] = DEFAULT_KNOBS
    start_frac: float = 0.25
    full_at_frac: float = 0.5

    def __post_init__(self) -> None:
        if not self.knobs or not all(isinstance(k, str) and k for k in self.knobs):
            raise ValueError(
                f"curriculum.knobs={list(self.knobs)!r}; allowed a non-empty list of knob names"
            )
        for name, value, lo, hi in (
            ("start_frac", self.start_frac, 0.0, 1.0),
            ("full_at_frac", self.full_at_frac, 0.0, 1.0),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not lo <= value <= hi
                or (name == "full_at_frac" and value == 0.0)
            ):
                left = "(" if name == "full_at_frac" else "["
                raise ValueError(f"curriculum.{name}={value!r}; allowed {left}{lo:g}, {hi:g}]")

    @classmethod
    def from_config(cls, obj: Any) -> Curriculum:
        """From the run config's ``curriculum`` mapping (unknown keys are refused)."""
        if not isinstance(obj, Mapping):
            raise ValueError(
                f"curriculum={obj!r}; allowed a mapping with knobs, start_frac, full_at_frac"
            )
        allowed = ("knobs", "start_frac", "full_at_frac")
        for key in obj:
            if key not in allowed:
                raise ValueError(f"curriculum.{key} is unknown; allowed {', '.join(allowed)}")
        knobs = obj.get("knobs", DEFAULT_KNOBS)
        if isinstance(knobs, str):
            knobs = (knobs,)
        if not isinstance(knobs, Sequence):
            raise ValueError(f"curriculum.knobs={knobs!r}; allowed a list of knob names")
        return cls(
            knobs=tuple(knobs),
            start_frac=obj.get("start_frac", cls.start_frac),
            full_at_frac=obj.get("full_at_frac", cls.full_at_frac),
        )

    def factor(self, step: int, total: int) -> float:
        """The scale of the crash knobs at training step ``step`` of ``total``."""
        ramp = min(step / (self.full_at_frac * max(total, 1)), 1.0)
        return self.start_frac + (1.0 - self.start_frac) * ramp

    def overrides(
        self,
        factor: float,
        scenarios: Sequence[str],
        base: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, dict[str, float]]:
        """``{scenario: {knob: factor x value}}`` for every scenario of ``scenarios`` that has
        the knobs (its value from ``base`` overrides, else its default). A knob that no
        scenario has is an error naming it."""
        from levgym.scenarios.base import get as get_scenario

        out: dict[str, dict[str, float]] = {}
        used: set[str] = set()
        for name in scenarios:
            knobs = get_scenario(name).resolve_knobs(dict((base or {}).get(name, {})))
            scaled = {k: factor * float(knobs[k]) for k in self.knobs if k in knobs}
            used |= set(scaled)
            if scaled:
                out[name] = scaled
        missing = [k for k in self.knobs if k not in used]
        if missing:
            raise ValueError(
                f"curriculum knob {missing[0]!r} is not a knob of the training scenarios "
                f"({', '.join(scenarios)})"
            )
        return out


class CurriculumCallback(BaseCallback):
    """Sets the training env's crash knobs before every rollout (see the module doc); at the
    start of training it also restarts the first episodes, which began at full size."""

    def __init__(self, curriculum: Curriculum, total_timesteps: int) -> None:
        super().__init__()
        self.curriculum = curriculum
        self.total = int(total_timesteps)
        self.factor: float | None = None
        self.scenarios: list[str] = []
        self.base: dict[str, dict[str, Any]] = {}

    def _apply(self) -> bool:
        factor = self.curriculum.factor(int(self.num_timesteps), self.total)
        self.logger.record("curriculum/factor", factor)
        if factor == self.factor:
            return False
        overrides = self.curriculum.overrides(factor, self.scenarios, self.base)
        self.training_env.env_method("set_scenario_knobs", overrides, indices=[0])
        self.factor = factor
        return True

    def _on_training_start(self) -> None:
        env = self.training_env
        self.scenarios = list(env.get_attr("scenario_names", indices=[0])[0])
        self.base = env.get_attr("scenario_knobs", indices=[0])[0]
        if self._apply():
            # the episodes SB3 started before training ran at full size: start them again
            self.model._last_obs = env.reset()
            self.model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)

    def _on_rollout_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        return True


__all__ = ["DEFAULT_KNOBS", "Curriculum", "CurriculumCallback"]
