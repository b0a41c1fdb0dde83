"""A hindsight ceiling for ``levgym/Governance-v1``: per evaluation episode, the best fixed
parameter set on that very path.

Each point of a grid of parameter sets is run on the same episodes as the policies (the same
seeds, so the same scenario paths, books and borrower noise: common random numbers), set from
the first step and held (the steward's per-change limits and cool-downs do not apply to it),
and each episode keeps the best return over the grid. It sees the future, so it is a
reference, not a target: an adaptive policy can beat it (the best fixed set in hindsight is
not the best schedule). The grid contains the ``static`` policy's parameters, so the ceiling is
never below ``static`` on any episode. Everything runs as one batched vector env of
``grid points x episodes`` markets.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from levgym.engine.params import PRESETS

CEILING_ENV = "levgym/Governance-v1"


def _default_axes() -> dict[str, tuple[Any, ...]]:
    base = PRESETS["aave_v3_weth"]
    return {
        # (LTV, LT) pairs: Aave, a wider LTV gap, a lower LT, the conservative set, a looser set
        "ltv,liquidation_threshold": (
            (base.ltv, base.liquidation_threshold),
            (0.78, 0.86),
            (0.765, 0.80),
            (0.70, 0.75),
            (0.865, 0.90),
        ),
        "liquidation_bonus": (base.liquidation_bonus, 0.08, 0.12),
        "close_factor": (base.close_factor, 1.0),
        # both caps as multiples of the episode's initial collateral and debt
        "supply_cap,borrow_cap": ((1.5, 1.5), (1.0, 1.0)),
    }


@dataclass(frozen=True)
class CeilingGrid:
    """Axes of the grid: each key names one lever or several joined by commas (moved together),
    each value the levels (a number, or a tuple for joined levers). Levers not named keep their
    starting values (``static``'s). The product of the axes is the grid; the first level of
    every axis must be ``static``'s value."""

    axes: dict[str, tuple[Any, ...]] = field(default_factory=_default_axes)

    def points(self) -> list[dict[str, float]]:
        """Every grid point as ``{lever: value}`` (caps in multiples of their reference)."""
        keys = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            point: dict[str, float] = {}
            for key, level in zip(keys, combo, strict=True):
                names = key.split(",")
                values = level if isinstance(level, tuple | list) else (level,)
                if len(values) != len(names):
                    raise ValueError(
                        f"ceiling axis {key!r}: level {level!r} needs {len(names)} values"
                    )
                point.update({n: float(v) for n, v in zip(names, values, strict=True)})
            out.append(point)
        return out


def ceiling_returns(
    scenario: str,
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    grid: CeilingGrid | None = None,
) -> dict[str, Any]:
    """Episode returns of every grid point on ``episodes`` episodes seeded ``seed + i`` (as
    :func:`agents.evaluate.rollout` seeds them). Returns ``returns`` ``[G, episodes]``, the
    ``points``, per episode the ``best`` return and its ``best_point`` index."""
    from levgym.envs import GovernanceV1VectorEnv

    points = (grid or CeilingGrid()).points()
    g = len(points)
    venv = GovernanceV1VectorEnv(
        num_envs=g * episodes, scenarios=[scenario], split="eval", **dict(env_kwargs or {})
    )
    venv.reset(seed=[seed + i for _ in range(g) for i in range(episodes)])
    values = _lever_matrix(venv, points, np.repeat(np.arange(g), episodes))
    venv.set_levers(values)
    hold = np.zeros((venv.num_envs, len(venv.schema.levers)))
    total = np.zeros(venv.num_envs)
    done = np.zeros(venv.num_envs, dtype=bool)
    while not done.all():
        _, reward, terminated, truncated, _ = venv.step(hold)
        total += np.where(done, 0.0, reward)
        done |= terminated | truncated
    venv.close()
    returns = total.reshape(g, episodes)
    return {
        "points": points,
        "returns": returns,
        "best": returns.max(axis=0),
        "best_point": returns.argmax(axis=0),
    }


def _lever_matrix(venv: Any, points: Sequence[dict[str, float]], assign: np.ndarray) -> np.ndarray:
    """Lever values ``[E, L]``: each env's current levers with those its grid point
    ``points[assign[e]]`` names set (caps as multiples of the env's episode reference)."""
    schema = venv.schema
    col = schema.index()
    values = venv.lever_values()
    for k, point in enumerate(points):
        rows = assign == k
        if not rows.any():
            continue
        for name, v in point.items():
            if name not in col:
                raise ValueError(f"ceiling grid names lever {name!r}; allowed {', '.join(col)}")
            j = col[name]
            lever = schema.levers[j]
            if lever.bounds_of is not None:  # a multiple of the episode's reference
                values[rows, j] = v * venv.references[lever.bounds_of][rows]
            else:
                values[rows, j] = v
    return values


def piecewise_ceiling_returns(
    scenario: str,
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    grid: CeilingGrid | None = None,
    segments: int = 3,
) -> dict[str, Any]:
    """A second ceiling: per episode, a schedule of grid points that may change at the starts of
    ``segments`` equal parts of the episode, chosen greedily forward in hindsight.

    Pass ``j`` replays every episode from its start with the points already chosen for parts
    ``0 .. j-1`` and, from part ``j`` on, each grid point in turn (held to the end); each episode
    keeps the point of its best replay for part ``j``. Pass 0 is the fixed ceiling of
    :func:`ceiling_returns`, and every later pass can keep the point it had, so the result is
    never below the fixed ceiling; being greedy, it is a lower bound on the best schedule. Costs
    ``segments`` times the fixed ceiling. Returns ``returns`` ``[G, episodes]`` of the last pass,
    ``best`` per episode, ``schedule`` ``[segments, episodes]`` (grid indices) and ``fixed_best``
    (pass 0's best, the fixed ceiling)."""
    from levgym.envs import GovernanceV1VectorEnv

    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"segments={segments!r} is not allowed; allowed a whole number >= 1")
    points = (grid or CeilingGrid()).points()
    g = len(points)
    venv = GovernanceV1VectorEnv(
        num_envs=g * episodes, scenarios=[scenario], split="eval", **dict(env_kwargs or {})
    )
    length = -(-venv.max_steps // segments)  # steps per part (the last may be shorter)
    candidates = np.repeat(np.arange(g), episodes)
    schedule = np.zeros((segments, episodes), dtype=np.int64)
    hold = np.zeros((venv.num_envs, len(venv.schema.levers)))
    fixed_best = returns = None
    for j in range(segments):
        venv.reset(seed=[seed + i for _ in range(g) for i in range(episodes)])
        total = np.zeros(venv.num_envs)
        done = np.zeros(venv.num_envs, dtype=bool)
        t = 0
        while not done.all():
            if t % length == 0 and t // length <= j:
                part = t // length
                assign = candidates if part == j else np.tile(schedule[part], g)
                venv.set_levers(_lever_matrix(venv, points, assign), envs=~done)
            _, reward, terminated, truncated, _ = venv.step(hold)
            total += np.where(done, 0.0, reward)
            done |= terminated | truncated
            t += 1
        returns = total.reshape(g, episodes)
        schedule[j] = returns.argmax(axis=0)
        schedule[j + 1 :] = schedule[j]
        if j == 0:
            fixed_best = returns.max(axis=0)
    venv.close()
    assert returns is not None and fixed_best is not None
    return {
        "points": points,
        "returns": returns,
        "best": returns.max(axis=0),
        "schedule": schedule,
        "fixed_best": fixed_best,
    }


def ceiling_for_suite(
    scenarios: Sequence[str],
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    grid: CeilingGrid | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`ceiling_returns` per scenario (the suite's scenarios, episodes and seed)."""
    return {s: ceiling_returns(s, episodes, seed, env_kwargs, grid) for s in scenarios}


__all__ = [
    "CEILING_ENV",
    "CeilingGrid",
    "ceiling_for_suite",
    "ceiling_returns",
    "piecewise_ceiling_returns",
]
