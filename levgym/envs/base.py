"""Shared machinery of the levgym envs: the native vector env on the batched market, and the
single env as a batch of one (so the two can never drift apart)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..engine.backend import to_numpy
from ..engine.jit import ALL_THREADS, ONE_THREAD, SERIAL
from ..engine.params import EngineParams, ProtocolParams
from ..engine.state import PARAM_FIELDS, set_protocol_params
from ..scenarios.base import get as get_scenario
from .core import BatchedMarket, ScenarioSpec, horizon_steps, resolve_params, resolve_scenarios
from .features import Feature, bounds

# np.clip(a, low, high) on float arrays is this ufunc behind three Python layers (np.clip,
# ndarray.clip, numpy._core._methods._clip); called directly it gives the same array
_clip = getattr(getattr(getattr(np, "_core", None), "umath", None), "clip", None) or np.clip

RENDER_MODES = ("rgb_array", "ansi")
AUTORESET_MODES = (AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)
# a serial step kernel with at least this many position-substeps runs its parallel loop on one
# thread (levgym.engine.jit.ONE_THREAD)
ONE_THREAD_MIN_POSITIONS = 2048


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    try:
        mode = value if isinstance(value, AutoresetMode) else AutoresetMode(value)
    except ValueError:
        mode = None
    if mode not in AUTORESET_MODES:
        allowed = ", ".join(m.value for m in AUTORESET_MODES)
        raise ValueError(f"autoreset_mode={value!r} is not supported; allowed {allowed}")
    return mode


def check_weight(name: str, value: Any) -> float:
    """A reward weight: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name}={value!r} must be a number")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}={v:g} is out of range; allowed a finite number >= 0")
    return v


class _SharedWeight:
    """A class attribute for a name of ``SHARED_SETTABLE``: every assignment goes through
    :func:`check_weight`. A descriptor on those names only, so the envs' other attributes (set
    many times a step) are plain assignments, not a ``__setattr__`` override."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        d = obj.__dict__
        d[self.name] = check_weight(self.name, value)
        # a step kernel's constants are remade when this changes
        d["weights_version"] = d.get("weights_version", 0) + 1


class LevgymVectorEnv(VectorEnv):
    """Base of the native vector envs: E envs of one :class:`BatchedMarket`.

    Subclasses set ``FEATURES`` and ``ACTIONS`` (named once, rendered into docstrings) and
    implement ``_advance`` (apply actions, run the engine, return rewards and terminations),
    ``_observe`` (fill ``self._obs``) and ``_reset_agent``. This class owns seeding, autoreset,
    the info dictionaries, per-env attribute access and rendering.

    Autoreset: ``AutoresetMode.SAME_STEP`` (default). When env ``i`` ends at a step, that
    step returns the first observation of its next episode, ``info["final_obs"][i]`` holds the
    last observation of the ended one (with mask ``info["_final_obs"]``) and
    ``info["final_info"]`` the step's info with ``episode`` = ``{"r": return, "l": length}``.
    The other info keys describe the step just taken, for every env. With
    ``AutoresetMode.DISABLED`` (used by the single-env classes) ended envs must be reset with
    ``reset(options={"reset_mask": mask})`` before they are stepped again.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }
    env_id: ClassVar[str] = ""
    FEATURES: ClassVar[tuple[Feature, ...]] = ()
    ACTIONS: ClassVar[tuple[Feature, ...]] = ()
    DEFAULT_SCENARIOS: ClassVar[tuple[str, ...]] = ()
    TERMINAL_CAUSE: ClassVar[str] = "terminated"
    SHARED_SETTABLE: ClassVar[tuple[str, ...]] = ()
    weights_version: int = 0
    """Bumped by every assignment of a ``SHARED_SETTABLE`` weight (the step kernels' cache key)."""
    scalar_info: bool = False
    """Set by the single env on its batch of one: info values may be Python floats."""
    PACKED: ClassVar[bool] = False
    """Backend numba keeps the state in the runner's packed buffers and steps it with the env's
    step kernel (:mod:`levgym.envs.programs`)."""
    PER_ENV_ATTRS: ClassVar[tuple[str, ...]] = (
        "scenario",
        "protocol_params",
        "episode_step",
        "episode_return",
        "seed",
    )
    PER_ENV_METHODS: ClassVar[tuple[str, ...]] = ("render",)

    def __init__(
        self,
        num_envs: int,
        *,
        substeps_per_step: int | None,
        num_positions: int,
        horizon_h: float,
        scenarios: ScenarioSpec,
        params: EngineParams | ProtocolParams | str | None,
        scenario_overrides: Mapping[str, Mapping[str, Any]] | None,
        split: str,
        backend: str,
        dtype: str,
        device: str | None,
        render_mode: str | None,
        autoreset_mode: AutoresetMode | str,
        warmup_h: float = 0.0,
        warm_pool: int | None = None,
        path_pool: int | None = None,
        book_pool: int | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode={render_mode!r} is unknown; allowed None, {', '.join(RENDER_MODES)}"
            )
        self.params = resolve_params(params)
        names, weights = resolve_scenarios(scenarios, self.DEFAULT_SCENARIOS)
        self.substeps_per_step = (
            self.params.run.substeps_per_step
            if substeps_per_step is None
            else int(substeps_per_step)
        )
        self.step_h = self.substeps_per_step * self.params.run.substep_h
        self.horizon_h = float(horizon_h) if isinstance(horizon_h, int | float) else horizon_h
        self.max_steps = horizon_steps(horizon_h, self.step_h)
        self.core = BatchedMarket(
            self.params,
            num_envs,
            num_positions,
            self.max_steps * self.substeps_per_step,
            names,
            weights,
            scenario_overrides,
            split,
            backend,
            dtype,
            device,
            packed=self.PACKED,
            warmup_h=warmup_h,
            warm_pool=warm_pool,
            path_pool=path_pool,
            book_pool=book_pool,
        )
        self._init_batch(render_mode, autoreset_mode)

    def _init_batch(self, render_mode: str | None, autoreset_mode: AutoresetMode | str) -> None:
        """The part of ``__init__`` after ``self.core`` exists: spaces from ``FEATURES`` and
        ``ACTIONS``, render and autoreset modes, episode counters. An env on another market
        (:mod:`levgym.envs.portfolio_governance`) builds its own core and then calls this."""
        self.num_envs = self.core.num_envs
        self.num_positions = self.core.num_positions
        self.backend = self.core.backend
        self.render_mode = render_mode
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}

        low, high = bounds(self.FEATURES)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"{type(self).__name__}.FEATURES must have finite bounds")
        self._obs_low, self._obs_high = low.astype(np.float64), high.astype(np.float64)
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        alow, ahigh = bounds(self.ACTIONS)
        self._act_low, self._act_high = alow.astype(np.float64), ahigh.astype(np.float64)
        self.single_action_space = spaces.Box(alow, ahigh, dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        e = self.num_envs
        self._obs = np.zeros((e, len(self.FEATURES)), dtype=np.float32)
        self._episode_return = np.zeros(e)
        self._episode_length = np.zeros(e, dtype=np.int64)
        self._ended = np.zeros(e, dtype=bool)
        self._causes = (self.TERMINAL_CAUSE, "horizon")
        self._scenario_names = np.array(self.core.scenarios, dtype=object)
        self.end_counts = {c: np.zeros(e, dtype=np.int64) for c in self._causes}
        self._no_cause = np.full(e, "", dtype=object)
        self._scenario_now = np.full(e, "", dtype=object)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.SHARED_SETTABLE:
            if not isinstance(getattr(cls, name, None), _SharedWeight):
                setattr(cls, name, _SharedWeight(name))

    # ------------------------------------------------------------------ hooks
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply clipped actions ``[E, A]`` and run one env step. Returns (reward, terminated, info)."""
        raise NotImplementedError

    def _observe(self, envs: np.ndarray | None = None) -> None:
        """Fill ``self._obs`` ``[E, F]`` from the current state. ``envs`` (env indices, after
        an autoreset: the envs that restarted) says that only those rows are wanted; the other
        rows may be left as they are (an env may compute every row anyway)."""
        raise NotImplementedError

    def _step_kernel_buffers(self, outputs: int, lags_h: tuple[float, float]) -> None:
        """Scratch and constants shared by the step kernels (:mod:`levgym.envs.programs`), made
        once on the first packed step: orders, drivers, noise and rounds scratch, ``outputs``
        output rows, the observation thresholds, and the integer and float constants (the
        tracker's ring and the lags ``lags_h`` of the two log returns the features read)."""
        from ..engine.fused import PARALLEL_MIN_POSITIONS, pack_orders
        from ..engine.schema import DRIVER_FIELDS
        from .programs import FCONST, ICONST

        core, e, n = self.core, self.num_envs, self.num_positions
        tr = core.tracker
        self._k_orders = pack_orders(None, e)
        self._k_drv = np.empty((len(DRIVER_FIELDS), e))
        self._k_noise = np.empty((e, n))
        self._k_rounds = np.empty(e)
        self._k_step_rounds = np.empty(e)
        self._k_out = np.empty((outputs, e))
        self._k_thresholds = np.asarray(self._thresholds, dtype=np.float64)
        ic = np.zeros(len(ICONST), dtype=np.int64)
        for name, v in dict(
            substeps=self.substeps_per_step,
            twap_window=int(self.params.market.twap_window_substeps),
            ring=tr.length,
            lag_short=tr.lag(lags_h[0]),
            lag_long=tr.lag(lags_h[1]),
            horizon=core.horizon_substeps,
        ).items():
            ic[ICONST.index(name)] = v
        self._k_ic = ic
        self._k_ic_obs = ic.copy()
        self._all_envs = np.arange(self.num_envs, dtype=np.int64)  # the observe kernels' envs
        self._k_ic_obs[ICONST.index("substeps")] = 0
        self._k_fc = np.zeros(len(FCONST))
        for name, v in dict(
            substep_h=self.params.run.substep_h,
            alpha_short=tr.alpha_short,
            alpha_long=tr.alpha_long,
            substeps_per_year=tr.substeps_per_year,
        ).items():
            self._k_fc[FCONST.index(name)] = v
        # a step is substeps_per_step substeps of work: the threshold of one parallel substep
        work = e * n * self.substeps_per_step
        self._k_parallel = e > 1 and work >= PARALLEL_MIN_POSITIONS
        # Below it a batch still runs the kernel's parallel loop, with numba's threads set to
        # one around the call (ONE_THREAD, by engine.jit.call_kernel): numba compiles a parallel
        # loop's body as a function of its own, and the same per-env code called from it cost
        # about an eighth less CPU time at 16 x 256 (Liquidator-v0) than from the plain loop
        # (why was not established); the numbers are the same, env by env. A single env keeps
        # the plain loop.
        one_thread = not self._k_parallel and work >= ONE_THREAD_MIN_POSITIONS
        self._k_threads = ALL_THREADS if self._k_parallel else ONE_THREAD if one_thread else SERIAL

    def _store_observation(self, f: np.ndarray) -> None:
        """Clip the features ``f`` ``[E, F]`` (float64, in place) to the observation bounds, zero
        their NaNs and store them as ``self._obs``. The bounds are finite, so after the clip NaN
        is the only non-finite value left (what ``np.nan_to_num(nan=0.0)`` would replace)."""
        np.clip(f, self._obs_low, self._obs_high, out=f)
        np.copyto(f, 0.0, where=np.isnan(f))
        self._obs[...] = f

    def _reset_agent(self, mask: np.ndarray) -> None:
        """Reset the agent-side state of the envs in ``mask`` after their new episode began."""

    def _reset_info(self, info: dict[str, Any]) -> None:
        """Add env-specific keys to the info returned by ``reset``."""

    def summary_line(self, env: int) -> str:
        """One line describing env ``env`` now (the ``"ansi"`` render)."""
        raise NotImplementedError

    def render_text(self, env: int) -> list[str]:
        """Lines of the text panel of the ``"rgb_array"`` render."""
        raise NotImplementedError

    # ------------------------------------------------------------------ API
    @property
    def state(self):
        """The batched engine state (``levgym.engine.State``) of all envs."""
        return self.core.state

    def check_actions(self, actions: Any) -> np.ndarray:
        """Actions as float64 ``[E, A]`` clipped to the action bounds; ValueError if malformed."""
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"actions={actions!r} are not numbers; allowed an array of shape {self.action_space.shape}"
            ) from None
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"actions have shape {a.shape}; allowed {self.action_space.shape} (num_envs, {len(self.ACTIONS)})"
            )
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(
                f"actions contain NaN or infinite values (first at env {bad[0]}, component {bad[1]}); allowed finite numbers"
            )
        return _clip(a, self._act_low, self._act_high)

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes. ``seed`` (int) seeds env ``i`` with ``seed + i``; a sequence gives
        each env its seed. Without a seed the envs continue their own random streams.
        ``options={"reset_mask": mask}`` resets only the envs in ``mask``."""
        if seed is None or isinstance(seed, int | np.integer):
            super().reset(seed=None if seed is None else int(seed))
        else:
            super().reset(seed=int(seed[0]) if len(seed) else None)
        e = self.num_envs
        mask = np.ones(e, dtype=bool)
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (e,):
                raise ValueError(f"options['reset_mask'] has shape {mask.shape}; allowed ({e},)")
        if seed is not None:
            if isinstance(seed, int | np.integer):
                seeds = [int(seed) + i for i in range(e)]
            else:
                seeds = list(seed)
                if len(seeds) != e:
                    raise ValueError(
                        f"got {len(seeds)} seeds for {e} envs; allowed an int or one seed per env"
                    )
            if self.core.rngs is None or mask.all():
                self.core.seed(seeds)
            else:
                current = list(self.core.seeds)
                rngs = list(self.core.rngs)
                self.core.seed(seeds)
                keep = np.flatnonzero(~mask)
                for i in keep:
                    self.core.seeds[i], self.core.rngs[i] = current[i], rngs[i]
        elif self.core.rngs is None:
            base = int(self.np_random.integers(0, 2**31 - 1))
            self.core.seed([base + i for i in range(e)])
        if not self.core.started and not mask.all():
            raise ValueError("the first reset must reset every env; drop options['reset_mask']")
        self._start_episodes(mask)
        self._observe()
        info: dict[str, Any] = {"scenario": self._scenario_array()}
        self._reset_info(info)
        return self._obs.copy(), info

    def _start_episodes(self, mask: np.ndarray) -> None:
        self.core.new_episodes(mask)
        self._scenario_now = self._scenario_array()  # the episodes' scenarios, until the next start
        self._reset_agent(mask)
        self._episode_return[mask] = 0.0
        self._episode_length[mask] = 0
        self._ended[mask] = False

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self.core.started:
            raise RuntimeError("call reset() before step()")
        return self._step(self.check_actions(actions))

    def _step(
        self, a: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`step` with actions already checked and clipped (float64 ``[E, A]``)."""
        if self._ended.any():
            raise RuntimeError(
                f"env(s) {np.flatnonzero(self._ended).tolist()} have ended their episode; "
                "reset them with reset(options={'reset_mask': mask}) before stepping"
            )
        reward, terminated, info = self._advance(a)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = self.core.at_horizon
        truncated &= ~terminated
        self._episode_return += reward
        self._episode_length += 1
        ended = terminated | truncated
        info["scenario"] = self._scenario_now.copy()
        info["episode_step"] = self._episode_length.copy()
        self._observe()
        obs = self._obs.copy()
        cause = self._no_cause.copy()
        if ended.any():
            cause[terminated] = self.TERMINAL_CAUSE
            cause[truncated] = "horizon"
            self.end_counts[self.TERMINAL_CAUSE] += terminated
            self.end_counts["horizon"] += truncated
            final_info = dict(info)
            final_info["end_cause"] = cause
            final_info["episode"] = {
                "r": self._episode_return.copy(),
                "l": self._episode_length.copy(),
                "_r": ended.copy(),
                "_l": ended.copy(),
            }
            final_info["_episode"] = ended.copy()
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = obs[i].copy()
            info["final_obs"] = final_obs
            info["_final_obs"] = ended.copy()
            info["final_info"] = final_info
            info["_final_info"] = ended.copy()
            if self.autoreset_mode is AutoresetMode.SAME_STEP:
                self._start_episodes(ended)
                self._observe(np.flatnonzero(ended))
                obs[ended] = self._obs[ended]
            else:
                self._ended |= ended
        info["end_cause"] = cause
        info["end_counts"] = {c: v.copy() for c, v in self.end_counts.items()}
        return obs, reward, terminated, truncated, info

    def _step_one(self, a: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """:meth:`_step` of a batch of one without autoreset (the single env's step), returning
        env 0's observation, reward, terminated, truncated and :func:`unbatch_info` of the info
        :meth:`_step` would return. The same ``_advance`` (kernel, features, rewards) and the
        same bookkeeping, on env 0's scalars instead of ``[E]`` arrays."""
        if self._ended[0]:
            raise RuntimeError(
                "env(s) [0] have ended their episode; "
                "reset them with reset(options={'reset_mask': mask}) before stepping"
            )
        reward, terminated, batch_info = self._advance(a)
        info = unbatch_info(batch_info, 0)
        term = bool(terminated[0])
        core = self.core
        trunc = not term and int(core.t[0]) >= core.horizon_substeps  # core.at_horizon[0]
        self._episode_return += reward
        self._episode_length += 1
        info["scenario"] = self._scenario_now[0]
        info["episode_step"] = int(self._episode_length[0])
        self._observe()
        obs = self._obs[0].copy()
        cause = ""
        if term or trunc:
            cause = self.TERMINAL_CAUSE if term else "horizon"
            self.end_counts[cause][0] += 1
            final_info = dict(info)
            final_info["end_cause"] = cause
            final_info["episode"] = {
                "r": float(self._episode_return[0]),
                "l": int(self._episode_length[0]),
            }
            info["final_obs"] = obs.copy()
            info["final_info"] = final_info
            self._ended[0] = True
        info["end_cause"] = cause
        info["end_counts"] = {c: int(v[0]) for c, v in self.end_counts.items()}
        return obs, float(reward[0]), term, trunc, info

    def _scenario_array(self) -> np.ndarray:
        return self._scenario_names[self.core.scenario_index]

    # ------------------------------------------------------------------ per-env access
    def protocol_params(self, env: int) -> ProtocolParams:
        """The protocol parameters env ``env`` runs with now."""
        s = self.core.state
        values = {name: float(to_numpy(getattr(s, name))[env]) for name in PARAM_FIELDS}
        return dataclasses.replace(self.params.protocol, **values)

    def get_env_attr(self, name: str, env: int) -> Any:
        """Attribute ``name`` of env ``env``: per-env values for ``PER_ENV_ATTRS``, otherwise the
        batch's attribute (shared by all envs)."""
        self._check_env_index(env)
        if name == "scenario":
            return self.core.scenario_of(env)
        if name == "protocol_params":
            return self.protocol_params(env)
        if name == "episode_step":
            return int(self._episode_length[env])
        if name == "episode_return":
            return float(self._episode_return[env])
        if name == "seed":
            return self.core.seeds[env] if self.core.seeds else None
        return getattr(self, name)

    def set_env_attr(self, name: str, value: Any, envs: Sequence[int]) -> None:
        """Set ``name`` for the envs ``envs``. ``protocol_params`` (a ``ProtocolParams``) is
        written into those envs' state; the names in ``SHARED_SETTABLE`` are shared by the batch
        and can only be set for every env at once."""
        envs = [int(i) for i in envs]
        for i in envs:
            self._check_env_index(i)
        if name == "protocol_params":
            if not isinstance(value, ProtocolParams):
                raise ValueError(
                    f"protocol_params={value!r} must be a levgym.engine.ProtocolParams"
                )
            self._check_protocol(value)
            mask = np.zeros(self.num_envs, dtype=bool)
            mask[envs] = True
            self.core.state = set_protocol_params(self.core.state, value, self.core.convert(mask))
            return
        if name not in self.SHARED_SETTABLE:
            allowed = ", ".join(("protocol_params", *self.SHARED_SETTABLE))
            raise ValueError(
                f"attribute {name!r} cannot be set on {self.env_id}; allowed {allowed}"
            )
        if sorted(set(envs)) != list(range(self.num_envs)):
            raise ValueError(
                f"attribute {name!r} is shared by all {self.num_envs} envs of the batch; set it for every index"
            )
        setattr(self, name, value)

    def _check_protocol(self, value: ProtocolParams) -> None:
        """Env-specific checks of protocol parameters written by ``set_env_attr``."""

    @property
    def scenario_names(self) -> tuple[str, ...]:
        """The scenarios of the mixture."""
        return tuple(self.core.scenarios)

    @property
    def scenario_knobs(self) -> dict[str, dict[str, Any]]:
        """The knobs set on top of each scenario's defaults (a copy)."""
        return {k: dict(v) for k, v in self.core.scenario_overrides.items()}

    def set_scenario_knobs(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Set knobs of scenarios in the mixture for the episodes that start from now on
        (``{scenario: {knob: value}}``, on top of those given at construction; episodes under
        way keep their paths). Scenario and knob names are checked first (a ValueError names
        them); values are checked by the scenario when it draws an episode."""
        core = self.core
        merged = {k: dict(v) for k, v in core.scenario_overrides.items()}
        for name, knobs in overrides.items():
            if name not in core.scenarios:
                raise ValueError(
                    f"scenario {name!r} is not in the mixture; allowed {', '.join(core.scenarios)}"
                )
            merged.setdefault(name, {}).update(dict(knobs))
        for name in overrides:
            get_scenario(name).resolve_knobs(merged[name])
        core.scenario_overrides = merged

    def call_env(self, name: str, env: int, *args: Any, **kwargs: Any) -> Any:
        """Call method ``name`` for env ``env``: ``render`` draws that env; any other public
        method of the batch is called on the batch."""
        self._check_env_index(env)
        if name == "render":
            return self.render_env(env)
        if name.startswith("_"):
            raise ValueError(
                f"method {name!r} is private; allowed public methods of {type(self).__name__}"
            )
        method = getattr(self, name)
        if not callable(method):
            raise ValueError(f"{name!r} is not a method of {type(self).__name__}")
        return method(*args, **kwargs)

    def _check_env_index(self, env: int) -> None:
        if not 0 <= int(env) < self.num_envs:
            raise ValueError(f"env index {env} is out of range; allowed 0..{self.num_envs - 1}")

    # ------------------------------------------------------------------ rendering
    def render_env(self, env: int) -> Any:
        """Render env ``env`` in ``render_mode``: an RGB array or a one-line string."""
        self._check_env_index(env)
        if not self.core.started:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return self.summary_line(env)
        if self.render_mode == "rgb_array":
            from .render import draw_env

            return draw_env(self, env)
        gym.logger.warn(
            "render() was called without a render_mode; set render_mode='rgb_array' or 'ansi'"
        )
        return None

    def render(self) -> tuple[Any, ...] | None:
        """Frames of every env (a tuple), as Gymnasium's vector envs return them."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() was called without a render_mode; set render_mode='rgb_array' or 'ansi'"
            )
            return None
        return tuple(self.render_env(i) for i in range(self.num_envs))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id}, num_envs={self.num_envs})"


def init_defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of ``cls.__init__``, with those of the parents' ``__init__`` that
    a subclass passes on through ``**kwargs`` (a version that only changes some defaults, such
    as ``levgym/Governance-v2``'s ``warmup_h``); the nearest class's default wins."""
    import inspect

    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        for k, p in params.items():
            if p.default is not inspect.Parameter.empty:
                out.setdefault(k, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return out


def unbatch_info(info: Mapping[str, Any], env: int) -> dict[str, Any]:
    """The info of env ``env`` from a vector info dict (arrays become Python scalars; values
    that are Python scalars already, as a single env's kernel writes them, pass through)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key[0] == "_":
            continue
        t = type(value)
        if t is float:
            out[key] = value  # the common case first: a value of the env already
        elif t is np.ndarray:
            if value.ndim == 1 and value.dtype.kind != "O":
                out[key] = value.item(env)  # a numeric [E] array
            else:
                v = value[env]
                out[key] = v.item() if isinstance(v, np.generic) else v
        elif isinstance(value, Mapping):
            out[key] = unbatch_info(value, env)
        else:
            out[key] = value
    return out


class LevgymEnv(gym.Env):
    """Base of the single envs: a :class:`LevgymVectorEnv` of one env without autoreset.

    Env 0 of a vector env seeded ``s`` and a single env seeded ``s`` see the same episodes,
    step for step, because they are the same code on the same per-env random stream.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}
    vector_class: ClassVar[type[LevgymVectorEnv]]

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if "num_envs" in kwargs or "autoreset_mode" in kwargs:
            raise ValueError(
                "num_envs and autoreset_mode belong to the vector env; use gym.make_vec"
            )
        self.vector_env = self.vector_class(
            1, render_mode=render_mode, autoreset_mode=AutoresetMode.DISABLED, **kwargs
        )
        # a batch of one serving this env: its kernels may write the info as Python floats
        self.vector_env.scalar_info = True
        self.observation_space = self.vector_env.single_observation_space
        self.action_space = self.vector_env.single_action_space
        self.render_mode = render_mode

    @property
    def state(self):
        """The engine state (a batch of one env)."""
        return self.vector_env.core.state

    @property
    def params(self) -> EngineParams:
        return self.vector_env.params

    @property
    def end_counts(self) -> dict[str, int]:
        return {k: int(v[0]) for k, v in self.vector_env.end_counts.items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and self.vector_env.core.rngs is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        obs, info = self.vector_env.reset(seed=seed)
        return obs[0], unbatch_info(info, 0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"action={action!r} is not numeric; allowed shape {self.action_space.shape}"
            ) from None
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}; allowed {self.action_space.shape}")
        # a finite sum means finite values (one reduction instead of two); only an overflowing
        # sum of finite values needs the element-wise check
        if not math.isfinite(a.sum()) and not np.isfinite(a).all():
            raise ValueError(
                f"action {a.tolist()} contains NaN or infinite values; allowed finite numbers"
            )
        venv = self.vector_env
        if not venv.core.started:
            raise RuntimeError("call reset() before step()")
        # checked above: only the clip of the vector env's check is left to do (two ufuncs:
        # np.clip costs several times more on a few values)
        a = np.minimum(np.maximum(a, venv._act_low), venv._act_high)
        return venv._step_one(a.reshape(1, -1))

    def render(self) -> Any:
        return self.vector_env.render_env(0)

    def close(self) -> None:
        self.vector_env.close()
        super().close()


__all__ = ["LevgymEnv", "LevgymVectorEnv", "check_weight", "init_defaults", "unbatch_info"]
