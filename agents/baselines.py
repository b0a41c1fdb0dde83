"""Rule-based baseline agents for ``levgym/Governance-v0``, ``levgym/Governance-v1``,
``levgym/PortfolioGovernance-v0``, ``levgym/Liquidator-v1`` and ``levgym/CrossProtocolHedger-v0``.

Every baseline has Stable-Baselines3's ``predict(observation, state=None, episode_start=None,
deterministic=True) -> (actions, state)``, so evaluation treats a trained model and a rule the
same way. ``observation`` is a batch ``[n_envs, obs_dim]`` (actions ``[n_envs, act_dim]``) or a
single observation ``[obs_dim]`` (action ``[act_dim]``); actions are ``float32`` inside the
env's action space. The rules are vectorized over envs (no Python loop over envs) and
stateless: ``state`` is returned unchanged and ``episode_start`` is ignored.

The rules read the env's *raw* observations (the named features of
``GovernanceVectorEnv.FEATURES`` / ``LiquidatorVectorEnv.FEATURES``, looked up by name, never by
offset). Do not feed them observations normalized by ``VecNormalize``.

Public API:

- :func:`make_baseline` ``(name, env_or_env_id, seed=0)`` -> a policy;
- :func:`baseline_names` ``(env_id)`` -> the names available for an env;
- :func:`teacher_names` ``(env_id)`` -> clone targets of a warm start that are not baselines;
- :data:`BASELINES` ``{env_id: {name: class}}``.

Governance rules act on the *changes* of the parameters (the action space is a change scaled
by a per-step cap of :class:`levgym.envs.StewardLimits`). They all work the same way: read the
current parameters from the observation's parameter features, de-normalized exactly as the env
normalizes them (``ltv``, ``liquidation_threshold``, ``slope1`` and ``slope2`` as they are, the
bonus divided by 10), pick target parameters, and output
``clip((target - current) / step_cap, -speed, speed)`` per component, so a target is reached
at up to ``speed`` times the per-step cap and then held exactly. The rate-curve action moves
slope1 and slope2 together (1:10), so the rules steer slope1 (which prices the utilization the
market normally runs at, below the kink) and slope2 follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from levgym.engine.params import PRESETS, ProtocolParams
from levgym.engine.portfolio import Reserves
from levgym.envs.base import LevgymEnv, LevgymVectorEnv
from levgym.envs.cross_protocol import ACTIONS as HEDGER_ACTIONS
from levgym.envs.cross_protocol import FEATURES as HEDGER_FEATURES
from levgym.envs.cross_protocol import SHORT_NAMES as HEDGER_LEGS
from levgym.envs.features import VOL_PRIOR_ANNUAL, Feature, bounds, index
from levgym.envs.governance import GOVERNANCE_ACTIONS, GOVERNANCE_FEATURES, StewardLimits
from levgym.envs.governance_v1 import (
    DEFAULT_HISTORY,
    DEFAULT_HISTORY_EVERY_H,
    GovernanceV1VectorEnv,
    frame_features,
    stacked_features,
)
from levgym.envs.liquidator import LIQUIDATOR_ACTIONS, LIQUIDATOR_FEATURES, LIQUIDATOR_V2_ACTIONS
from levgym.envs.portfolio_governance import DEFAULT_RESERVES as PORTFOLIO_RESERVES
from levgym.envs.portfolio_governance import (
    PortfolioGovernanceVectorEnv,
    portfolio_features,
    portfolio_rows,
)
from levgym.envs.steward import GOVERNANCE_V1_SCHEMA, StewardSchema

GOVERNANCE_ID = "levgym/Governance-v0"
GOVERNANCE_V1_ID = "levgym/Governance-v1"
LIQUIDATOR_ID = "levgym/Liquidator-v1"
LIQUIDATOR_V2_ID = "levgym/Liquidator-v2"
# the warm-book ids: v1 / v2 whose episodes start from warmed books (the same spaces and rules)
GOVERNANCE_V2_ID = "levgym/Governance-v2"
LIQUIDATOR_V3_ID = "levgym/Liquidator-v3"
HEDGE_ON_INVENTORY_IDS = (LIQUIDATOR_V2_ID, LIQUIDATOR_V3_ID)
"""The liquidator ids whose hedge action is a correction around a short of the inventory."""
PORTFOLIO_ID = "levgym/PortfolioGovernance-v0"
HEDGER_ID = "levgym/CrossProtocolHedger-v0"
ENV_IDS = (
    GOVERNANCE_ID,
    GOVERNANCE_V1_ID,
    GOVERNANCE_V2_ID,
    LIQUIDATOR_ID,
    LIQUIDATOR_V2_ID,
    LIQUIDATOR_V3_ID,
    PORTFOLIO_ID,
    HEDGER_ID,
)

# A parameter closer to its target than this (in parameter units) counts as on target. The
# observation is float32 (about 1e-7 relative resolution), so a parameter read back from it is
# off by up to ~1e-7; 1e-6 absorbs that and is far below any per-step cap (>= 2.5e-3 by default).
ON_TARGET_TOL = 1e-6


# ---------------------------------------------------------------------- env resolution
def _vector_env_of(env: Any) -> LevgymVectorEnv:
    """The native levgym vector env behind ``env`` (a vector env, a single env, a Gymnasium
    wrapper of either, or the SB3 adapter)."""
    seen: set[int] = set()
    obj = env
    while id(obj) not in seen:
        seen.add(id(obj))
        if isinstance(obj, LevgymVectorEnv):
            return obj
        if isinstance(obj, LevgymEnv):
            return obj.vector_env
        nxt = getattr(obj, "venv", None)  # SB3 VecEnv wrappers and levgym's adapter
        if nxt is None:
            nxt = getattr(obj, "unwrapped", None)  # Gymnasium wrappers
        if nxt is None:
            break
        obj = nxt
    raise ValueError(
        f"env={env!r} is not a levgym env; allowed an env id ({', '.join(ENV_IDS)}), a levgym "
        "env or vector env, a Gymnasium wrapper of one, or levgym's SB3 VecEnv"
    )


def _env_id_and_venv(env_or_env_id: Any) -> tuple[str, LevgymVectorEnv | None]:
    if isinstance(env_or_env_id, str):
        if env_or_env_id not in ENV_IDS:
            raise ValueError(f"env id {env_or_env_id!r} is unknown; allowed {', '.join(ENV_IDS)}")
        return env_or_env_id, None
    venv = _vector_env_of(env_or_env_id)
    if venv.env_id not in ENV_IDS:
        raise ValueError(f"env id {venv.env_id!r} is unknown; allowed {', '.join(ENV_IDS)}")
    return venv.env_id, venv


# ---------------------------------------------------------------------- base class
class BaselinePolicy:
    """Base of the rule-based policies: SB3's ``predict`` around a batched ``_act``.

    Subclasses set ``FEATURES`` and ``ACTIONS`` (the env's named observation and action
    vectors) and implement ``_act(obs) -> actions``, ``obs`` float64 ``[n, obs_dim]``, actions
    float64 ``[n, act_dim]`` (clipped to the action bounds here).
    """

    name: ClassVar[str] = ""
    env_id: ClassVar[str] = ""
    FEATURES: ClassVar[tuple[Feature, ...]] = ()
    ACTIONS: ClassVar[tuple[Feature, ...]] = ()

    def __init__(self) -> None:
        self.col = index(self.FEATURES)
        low, high = bounds(self.FEATURES)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        alow, ahigh = bounds(self.ACTIONS)
        self.action_space = spaces.Box(alow, ahigh, dtype=np.float32)
        self._act_low = alow.astype(np.float64)
        self._act_high = ahigh.astype(np.float64)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Actions for ``observation`` (``[obs_dim]`` or ``[n_envs, obs_dim]``), as SB3's
        ``BaseAlgorithm.predict``. Returns ``(actions, state)``; ``state`` is passed through
        (the rules keep no recurrent state)."""
        obs = np.asarray(observation, dtype=np.float64)
        dim = len(self.FEATURES)
        single = obs.ndim == 1
        if obs.ndim not in (1, 2) or obs.shape[-1] != dim:
            raise ValueError(
                f"observation has shape {obs.shape}; allowed ({dim},) or (n_envs, {dim}) "
                f"for {self.env_id}"
            )
        batch = obs[None, :] if single else obs
        act = np.clip(self._act(batch), self._act_low, self._act_high).astype(np.float32)
        return (act[0] if single else act), state

    def _act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id}, name={self.name!r})"


# ---------------------------------------------------------------------- governance
class GovernanceBaseline(BaselinePolicy):
    """Base of the governance rules: move the parameters toward targets within the caps.

    ``limits`` are the env's :class:`StewardLimits` (the per-step caps that scale the action).
    ``_targets(obs)`` gives the target LT, gap ``LT - LTV``, bonus and slope1 ``[n]`` and
    ``_speeds(obs)`` the largest share of each cap to use this step ``[n, 4]`` in [0, 1].
    """

    env_id = GOVERNANCE_ID
    FEATURES = GOVERNANCE_FEATURES
    ACTIONS = GOVERNANCE_ACTIONS

    def __init__(self, limits: StewardLimits | None = None) -> None:
        super().__init__()
        if limits is not None and not isinstance(limits, StewardLimits):
            raise ValueError(f"limits={limits!r} must be a levgym.envs.StewardLimits")
        self.limits = limits or StewardLimits()
        lim = self.limits
        self._caps = np.array([lim.lt_step, lim.gap_step, lim.bonus_step, lim.slope1_step_apr])

    def current_params(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """The parameters in force, de-normalized from the observation ``[n, obs_dim]``
        exactly as the env normalizes them (only the bonus is scaled, by 10)."""
        c = self.col
        return {
            "ltv": obs[:, c["ltv"]],
            "liquidation_threshold": obs[:, c["liquidation_threshold"]],
            "liquidation_bonus": obs[:, c["liquidation_bonus"]] / 10.0,
            "slope1_apr": obs[:, c["slope1"]],
            "slope2_apr": obs[:, c["slope2"]],
        }

    def _targets(self, obs: np.ndarray) -> np.ndarray:
        """Targets ``[n, 4]``: LT, gap, bonus, slope1."""
        raise NotImplementedError

    def _speeds(self, obs: np.ndarray) -> np.ndarray:
        return np.ones((obs.shape[0], 4))

    def _act(self, obs: np.ndarray) -> np.ndarray:
        p = self.current_params(obs)
        current = np.stack(
            [
                p["liquidation_threshold"],
                p["liquidation_threshold"] - p["ltv"],
                p["liquidation_bonus"],
                p["slope1_apr"],
            ],
            axis=1,
        )
        diff = self._targets(obs) - current
        diff[np.abs(diff) <= ON_TARGET_TOL] = 0.0
        caps = np.where(self._caps > 0, self._caps, 1.0)
        raw = np.where(self._caps > 0, diff / caps, 0.0)
        speed = self._speeds(obs)
        return np.clip(raw, -speed, speed)


def _param_vector(p: ProtocolParams) -> np.ndarray:
    """LT, gap, bonus, slope1 of a parameter set (the quantities the actions move)."""
    return np.array(
        [
            p.liquidation_threshold,
            p.liquidation_threshold - p.ltv,
            p.liquidation_bonus,
            p.slope1_apr,
        ]
    )


class _FixedTargetGovernor(GovernanceBaseline):
    target_preset: ClassVar[str] = ""

    def __init__(self, limits: StewardLimits | None = None, params: ProtocolParams | None = None):
        super().__init__(limits)
        if params is not None and not isinstance(params, ProtocolParams):
            raise ValueError(f"params={params!r} must be a levgym.engine.ProtocolParams")
        self.params = params or PRESETS[self.target_preset]
        self._target = _param_vector(self.params)

    def _targets(self, obs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._target, (obs.shape[0], 4))


class StaticGovernor(_FixedTargetGovernor):
    """``static``: the ``aave_v3_weth`` preset held fixed (the protocol today, never re-tuned).

    Rule: since actions are changes, output ``clip((preset - current) / cap, -1, 1)`` per
    component: exactly zero while the parameters are at the preset (the env starts there by
    default), and a move back at up to the per-step caps if they are elsewhere (another start
    preset, or an env whose parameters were set by hand).

    Constants: target LT 0.86, LTV 0.825 (gap 0.035), bonus 0.052, slope1 0.04 APR (slope2
    0.75 follows) - Aave v3 Ethereum WETH at launch, ``levgym.engine.params.PRESETS
    ["aave_v3_weth"]``; ``params`` overrides it. A parameter within ``ON_TARGET_TOL`` (1e-6)
    of its target counts as on target, so the float32 observation's rounding never makes the
    parameters drift.
    """

    name = "static"
    target_preset = "aave_v3_weth"


class ConservativeGovernor(_FixedTargetGovernor):
    """``conservative``: drive the parameters to a safer fixed set, then hold it.

    Rule: ``clip((target - current) / cap, -1, 1)`` per component: the full per-step cap
    toward the target until it is reached, then zero. From the Aave preset this takes 22 hourly
    steps (LT 0.86 -> 0.75 at 0.005 per step).

    Constants: the ``conservative`` preset of ``levgym.engine.params.PRESETS``: LT 0.75, LTV
    0.70 (gap 0.05), bonus 0.075, slopes as Aave (0.04 / 0.75 APR): a 13% lower LT leaves
    borrowers room for a ~13% larger fall before liquidation, a wider LTV gap keeps new loans
    further from liquidation, and a larger bonus keeps keepers paid when slippage is high.
    ``params`` overrides the target.
    """

    name = "conservative"
    target_preset = "conservative"


class VolRuleGovernor(GovernanceBaseline):
    """``vol_rule``: the liquidation threshold and the LTV fall linearly with realized volatility.

    The rule Auto.gov compares against (a deterministic volatility-indexed collateral factor):

    ``target LT = clip(LT0 - K * (vol - VOL0), LT_LO, LT_HI)``, ``target LTV = target LT -
    GAP0`` (the LTV keeps its gap), bonus and slopes held at the preset; each moves toward its
    target within the per-step caps (``clip((target - current) / cap, -1, 1)``).

    Constants (why):

    - ``vol`` is the observation's ``vol_short`` (annualized EWMA volatility, 6 h half-life):
      it reacts within hours to a crash; the 7-day one would react after the cascade.
    - ``LT0 = 0.86``, ``GAP0 = 0.035``, bonus 0.052, slope1 0.04: the ``aave_v3_weth`` preset,
      so the rule is "static" at normal volatility.
    - ``VOL0 = 0.6``: a typical annualized ETH volatility (the env's own volatility prior,
      ``levgym.envs.features.VOL_PRIOR_ANNUAL``), where the rule keeps the preset.
    - ``K = 0.1`` per unit of annualized volatility: at 1.6 (a high-volatility regime) LT is
      0.76, about the ``conservative`` preset; a crash (vol 2.2 and above) reaches the floor.
    - ``LT_LO = 0.70``: the floor, 0.05 below the conservative preset, so a crash cannot push
      LT (and with it half the book) into liquidation without bound.
    - ``LT_HI = 0.90``: in calm markets (vol below 0.6) LT may rise up to 0.04 above the preset,
      the capital-efficiency side of the rule; 0.90 * (1 + 0.052) stays well below 1.
    """

    name = "vol_rule"
    LT0: ClassVar[float] = 0.86
    GAP0: ClassVar[float] = 0.035
    VOL0: ClassVar[float] = VOL_PRIOR_ANNUAL
    K: ClassVar[float] = 0.1
    LT_LO: ClassVar[float] = 0.70
    LT_HI: ClassVar[float] = 0.90

    def __init__(self, limits: StewardLimits | None = None) -> None:
        super().__init__(limits)
        self._base = _param_vector(PRESETS["aave_v3_weth"])

    def target_lt(self, vol: np.ndarray) -> np.ndarray:
        """The rule's target liquidation threshold for annualized volatility ``vol``."""
        return np.clip(self.LT0 - self.K * (vol - self.VOL0), self.LT_LO, self.LT_HI)

    def _targets(self, obs: np.ndarray) -> np.ndarray:
        t = np.tile(self._base, (obs.shape[0], 1))
        t[:, 0] = self.target_lt(obs[:, self.col["vol_short"]])
        t[:, 1] = self.GAP0
        return t


class StewardGovernor(GovernanceBaseline):
    """``steward``: tighten fast under stress, relax slowly when calm, hold in between.

    Modeled on how risk stewards (Chaos Labs / Gauntlet under Aave's risk-steward caps) work:
    react to stress quickly, give capital efficiency back cautiously.

    Rule: the stress level is ``z = max(vol_short / VOL_TIGHT, near / NEAR_TIGHT)`` with
    ``near`` the observation's ``debt_liquidatable_10`` (share of debt that a further 10%
    oracle fall would make liquidatable).

    - ``z >= 1`` (stress): move toward the TIGHT set at the full per-step caps;
    - ``z < RELAX_BELOW`` (calm): move back toward the BASE set at ``RELAX_SPEED`` of the caps;
    - otherwise: hold (zero change). The band between is a hysteresis that keeps noise in the
      volatility estimate from flipping the parameters back and forth.

    Constants (why):

    - BASE = the ``aave_v3_weth`` preset (where the market starts; the steward's normal).
    - TIGHT = the ``conservative`` preset (LT 0.75, LTV 0.70, bonus 0.075, same slopes).
    - ``VOL_TIGHT = 1.2``: twice the typical annualized ETH volatility (0.6); in levgym's
      scenarios calm markets read 0.4-0.7, high-volatility regimes 1.5-1.8, crashes 3-5.
    - ``NEAR_TIGHT = 0.05``: 5% of debt one 10% fall from liquidation; a freshly drawn book
      has none (its health factors start above 1.11), a crash pushes it to 0.3-0.8.
    - ``RELAX_BELOW = 0.75``: relax only when both signals are below 3/4 of their triggers
      (vol < 0.9, near < 3.75%).
    - ``RELAX_SPEED = 0.2``: relaxing at a fifth of the caps (LT +0.1% per hour, 55 h from
      conservative back to Aave) mirrors stewards' slow loosening after a stress.
    """

    name = "steward"
    VOL_TIGHT: ClassVar[float] = 1.2
    NEAR_TIGHT: ClassVar[float] = 0.05
    RELAX_BELOW: ClassVar[float] = 0.75
    RELAX_SPEED: ClassVar[float] = 0.2

    def __init__(self, limits: StewardLimits | None = None) -> None:
        super().__init__(limits)
        self._base = _param_vector(PRESETS["aave_v3_weth"])
        self._tight = _param_vector(PRESETS["conservative"])

    def stress(self, obs: np.ndarray) -> np.ndarray:
        """The stress level ``z`` ``[n]`` of observations ``[n, obs_dim]``."""
        c = self.col
        return np.maximum(
            obs[:, c["vol_short"]] / self.VOL_TIGHT,
            obs[:, c["debt_liquidatable_10"]] / self.NEAR_TIGHT,
        )

    def _targets(self, obs: np.ndarray) -> np.ndarray:
        stressed = (self.stress(obs) >= 1.0)[:, None]
        return np.where(stressed, self._tight, self._base)

    def _speeds(self, obs: np.ndarray) -> np.ndarray:
        z = self.stress(obs)
        speed = np.where(z >= 1.0, 1.0, np.where(z < self.RELAX_BELOW, self.RELAX_SPEED, 0.0))
        return np.repeat(speed[:, None], 4, axis=1)


class RandomPolicy(BaselinePolicy):
    """``random``: actions uniform in the action space ``[-1, 1]^act_dim``, from a numpy
    ``Generator`` seeded with ``seed`` (the same seed gives the same action sequence). It is a
    floor, not a rule: ``deterministic`` is ignored (a deterministic "random" policy would be a
    constant one)."""

    name = "random"

    def __init__(self, env_id: str, seed: int = 0, venv: LevgymVectorEnv | None = None) -> None:
        if env_id not in ENV_IDS:
            raise ValueError(f"env id {env_id!r} is unknown; allowed {', '.join(ENV_IDS)}")
        self.env_id = env_id  # type: ignore[misc]
        spaces_of = {
            GOVERNANCE_ID: (GOVERNANCE_FEATURES, GOVERNANCE_ACTIONS),
            GOVERNANCE_V1_ID: (GovernanceV1VectorEnv.FEATURES, GovernanceV1VectorEnv.ACTIONS),
            GOVERNANCE_V2_ID: (GovernanceV1VectorEnv.FEATURES, GovernanceV1VectorEnv.ACTIONS),
            LIQUIDATOR_ID: (LIQUIDATOR_FEATURES, LIQUIDATOR_ACTIONS),
            LIQUIDATOR_V2_ID: (LIQUIDATOR_FEATURES, LIQUIDATOR_V2_ACTIONS),
            LIQUIDATOR_V3_ID: (LIQUIDATOR_FEATURES, LIQUIDATOR_V2_ACTIONS),
            PORTFOLIO_ID: (
                PortfolioGovernanceVectorEnv.FEATURES,
                PortfolioGovernanceVectorEnv.ACTIONS,
            ),
        }
        features, actions = spaces_of[env_id]
        if venv is not None:  # the env's own (a v1 env's depend on its schema and history)
            features, actions = venv.FEATURES, venv.ACTIONS
        self.FEATURES = features  # type: ignore[misc]
        self.ACTIONS = actions  # type: ignore[misc]
        super().__init__()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(
            self._act_low, self._act_high, size=(obs.shape[0], len(self.ACTIONS))
        )


# ---------------------------------------------------------------------- steward levers
class LeverSteps:
    """The one mapping of the steward rules from target lever values to actions, for the levers
    of a :class:`levgym.envs.steward.StewardSchema` (Governance-v1's, or one row group of
    PortfolioGovernance-v0's, over any leading axes ``[..., L]``).

    The action toward a target ``x*`` from ``x`` is ``sign * min(|x* - x| / step, 1)`` with
    ``step`` the lever's largest change that way (times ``x`` for a relative lever), scaled past
    its deadband; a lever within ``ON_TARGET_TOL`` (relative for a relative lever) of its target,
    or whose target is NaN, gets 0; a switch gets 1 when its target is above 0.5, else -1.
    ``unit`` (``[..., L]``, default 1) converts the schema's bounds to the units the targets are
    in: a lever bounded by multiples of a reference known to the rule (a reserve's starting LT)
    is read and steered in the parameter's own units."""

    def __init__(self, schema: StewardSchema, unit: np.ndarray | None = None) -> None:
        v = schema.levers
        self.unit = None if unit is None else np.asarray(unit, dtype=np.float64)
        low = np.array([x.low for x in v])
        high = np.array([x.high for x in v])
        self.low = low if self.unit is None else low * self.unit
        self.high = high if self.unit is None else high * self.unit
        self.up = np.array([x.step_up for x in v])
        self.down = np.array([x.step_down for x in v])
        self.relative = np.array([x.relative for x in v])
        self.deadband = np.array([x.deadband for x in v])
        self.switch = ~schema.level_columns

    def current(self, position: np.ndarray) -> np.ndarray:
        """Lever values from their positions within the bounds (the observation's features)."""
        return self.low + position * (self.high - self.low)

    def actions(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Actions ``[..., L]`` moving the levers ``x`` toward ``target`` (see the class doc)."""
        diff = target - x
        scale = np.where(self.relative, np.maximum(np.abs(x), 1e-12), 1.0)
        step = np.where(diff > 0, self.up, self.down) * scale
        frac = np.where(step > 0, np.abs(diff) / np.where(step > 0, step, 1.0), 0.0)
        frac = np.minimum(frac, 1.0)
        tol = np.where(self.relative, ON_TARGET_TOL * scale, ON_TARGET_TOL)
        frac = np.where(np.isnan(diff) | (np.abs(diff) <= tol), 0.0, frac)
        a = np.sign(diff) * (self.deadband + (1.0 - self.deadband) * frac)
        a = np.where(frac > 0, a, 0.0)
        on = target[..., self.switch] > 0.5
        a[..., self.switch] = np.where(on, 1.0, -1.0)
        return np.nan_to_num(a)


# ---------------------------------------------------------------------- governance v1
class StewardBaseline(BaselinePolicy):
    """Base of the ``levgym/Governance-v1`` rules: pick target lever values, move toward them
    within each lever's per-change limit.

    The rules read the newest frame of the observation (its first ``len(frame)`` entries; the
    older frames only where a rule says so), by feature name. A lever's value is read back from
    its position feature: ``low + position * (high - low)``, caps in multiples of their
    reference (initial collateral, initial debt). ``_targets(frames)`` returns target values
    ``[n, L]`` in those units (NaN: leave the lever alone) and ``_switches(frames)`` whether
    each switch should be on ``[n, L]`` (NaN: off). The action toward a target ``x*`` from
    ``x`` is ``sign * min(|x* - x| / step, 1)`` with ``step`` the lever's largest change that
    way (times ``x`` for a relative lever), scaled past its deadband; a lever within
    ``ON_TARGET_TOL`` (relative for caps) of its target gets 0. A lever cooling down ignores
    its action anyway. Constants shared by the rules: BASE = the ``aave_v3_weth`` preset,
    TIGHT = the ``conservative`` preset, caps held at their start (1.5 x) unless a rule moves
    them.
    """

    env_id = GOVERNANCE_V1_ID
    FEATURES = GovernanceV1VectorEnv.FEATURES
    ACTIONS = GovernanceV1VectorEnv.ACTIONS
    CAP_START: ClassVar[float] = 1.5

    def __init__(
        self,
        schema: StewardSchema | None = None,
        history: int = DEFAULT_HISTORY,
        history_every_h: float = DEFAULT_HISTORY_EVERY_H,
    ) -> None:
        if schema is not None and not isinstance(schema, StewardSchema):
            raise ValueError(f"schema={schema!r} must be a levgym.envs.steward.StewardSchema")
        self.schema = schema or GOVERNANCE_V1_SCHEMA
        self.frame = frame_features(self.schema)
        self.FEATURES = stacked_features(self.frame, history, history_every_h)  # type: ignore[misc]
        self.ACTIONS = self.schema.action_features()  # type: ignore[misc]
        super().__init__()
        self.fcol = index(self.frame)
        self.lev = self.schema.index()
        self.steps = LeverSteps(self.schema)
        self._low, self._high = self.steps.low, self.steps.high
        self._up, self._down = self.steps.up, self.steps.down
        base, tight = PRESETS["aave_v3_weth"], PRESETS["conservative"]
        self.base = self.preset_targets(base)
        self.tight = self.preset_targets(tight)

    def preset_targets(self, p: ProtocolParams) -> np.ndarray:
        """Target values ``[L]`` of a preset: its parameters, caps at their start, switches off."""
        out = np.full(len(self.schema.levers), np.nan)
        for j, v in enumerate(self.schema.levers):
            if v.is_switch:
                out[j] = 0.0
            elif v.bounds_of is not None:
                out[j] = self.CAP_START
            else:
                out[j] = float(getattr(p, v.target))
        return out

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation, dtype=np.float64)
        f = len(self.frame)
        if obs.ndim not in (1, 2) or obs.shape[-1] % f:
            raise ValueError(
                f"observation has shape {obs.shape}; allowed a multiple of {f} (frames of "
                f"{self.env_id}) as (k * {f},) or (n_envs, k * {f})"
            )
        single = obs.ndim == 1
        batch = obs[None, :] if single else obs
        act = np.clip(self._act(batch), self._act_low, self._act_high).astype(np.float32)
        return (act[0] if single else act), state

    def frames(self, obs: np.ndarray) -> np.ndarray:
        """The observation as frames ``[n, k, F]``, newest first."""
        return obs.reshape(obs.shape[0], -1, len(self.frame))

    def current(self, frame: np.ndarray) -> np.ndarray:
        """Lever values ``[n, L]`` from a frame ``[n, F]`` (caps in multiples of their reference)."""
        pos = np.stack([frame[:, self.fcol[v.name]] for v in self.schema.levers], axis=1)
        return self._low + pos * (self._high - self._low)

    def feature(self, frame: np.ndarray, name: str) -> np.ndarray:
        return frame[:, self.fcol[name]]

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.base, (frames.shape[0], len(self.base))).copy()

    def _act(self, obs: np.ndarray) -> np.ndarray:
        frames = self.frames(obs)
        now = frames[:, 0]
        x = self.current(now)
        return self.steps.actions(x, self._targets(frames))


class StaticSteward(StewardBaseline):
    """``static``: the ``aave_v3_weth`` preset and the starting caps held fixed, switches off.

    Rule: move every lever to BASE (exactly zero while it is there, as from the default start).
    Constants: LTV 0.825, LT 0.86, bonus 0.052, close factor 0.5, slope2 0.75, kink 0.90 (Aave v3
    Ethereum WETH at launch); caps 1.5 x the episode's initial collateral and debt."""

    name = "static"


class ConservativeSteward(StewardBaseline):
    """``conservative``: drive LTV, LT and bonus to the ``conservative`` preset (LTV 0.70, LT
    0.75, bonus 0.075) within the per-change limits and hold; the rest as ``static``."""

    name = "conservative"

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.tight, (frames.shape[0], len(self.tight))).copy()


class VolRuleSteward(StewardBaseline):
    """``vol_rule``: LT falls linearly with realized volatility, LTV keeps its gap (v0's rule).

    ``target LT = clip(0.86 - 0.1 * (vol_short - 0.6), 0.70, 0.90)``, ``LTV = LT - 0.035``; the
    other levers as ``static``. Constants as v0's :class:`VolRuleGovernor` (why: see there)."""

    name = "vol_rule"

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        t = super()._targets(frames)
        vol = self.feature(frames[:, 0], "vol_short")
        lt = VolRuleGovernor.target_lt(VolRuleGovernor, vol)
        t[:, self.lev["liquidation_threshold"]] = lt
        t[:, self.lev["ltv"]] = lt - VolRuleGovernor.GAP0
        return t


class StewardRuleSteward(StewardBaseline):
    """``steward``: tighten fast under stress, relax slowly when calm, caps within their limits.

    Stress ``z = max(vol_short / 1.2, debt_liquidatable_10 / 0.05)`` as v0's ``steward``.
    ``z >= 1``: LTV, LT and bonus to TIGHT and both caps cut to 1.1 x their use (no room for new
    leverage; at most -50% per 3 days); ``z < 0.75``: LTV, LT and bonus back to BASE at a fifth
    of their per-change limit and caps raised to 1.5 x their use (at most +100% per 3 days);
    in between: hold. Constants as v0's ``steward`` (why: see :class:`StewardGovernor`); 1.1
    and 1.5 are the headroom a steward leaves above use when cutting and when relaxing."""

    name = "steward"
    CUT_HEADROOM: ClassVar[float] = 1.1
    RELAX_HEADROOM: ClassVar[float] = 1.5

    def stress(self, frame: np.ndarray) -> np.ndarray:
        return np.maximum(
            self.feature(frame, "vol_short") / StewardGovernor.VOL_TIGHT,
            self.feature(frame, "debt_liquidatable_10") / StewardGovernor.NEAR_TIGHT,
        )

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        now = frames[:, 0]
        z = self.stress(now)
        x = self.current(now)
        stressed = z >= 1.0
        calm = z < StewardGovernor.RELAX_BELOW
        t = np.where(stressed[:, None], self.tight, self.base)
        risk = [self.lev[n] for n in ("ltv", "liquidation_threshold", "liquidation_bonus")]
        # relax at a fifth of the limit: a fifth of the way to BASE this step
        relax = x[:, risk] + StewardGovernor.RELAX_SPEED * np.clip(
            t[:, risk] - x[:, risk],
            -self._down[risk],
            self._up[risk],
        )
        t[:, risk] = np.where(
            calm[:, None], relax, np.where(stressed[:, None], t[:, risk], x[:, risk])
        )
        for cap, use in (("supply_cap", "supply_cap_use"), ("borrow_cap", "borrow_cap_use")):
            j = self.lev[cap]
            used = self.feature(now, use) * x[:, j]  # use in multiples of the reference
            t[:, j] = np.where(
                stressed,
                self.CUT_HEADROOM * used,
                np.where(calm, self.RELAX_HEADROOM * used, x[:, j]),
            )
        return t


class PidRateSteward(StewardBaseline):
    """``pid``: a PID controller of utilization through the rate curve's slope2 (Bastankhah et
    al., "Thinking Fast and Slow: Data-Driven Adaptive DeFi Borrow-Lending Protocol", AFT 2024).

    Error ``e = utilization - U_TARGET`` in each frame; ``slope2 target = slope2 + KP * e0 + KI
    * sum_k e_k * every_h / 24 + KD * (e0 - e1) * 24 / every_h`` (the integral over the
    observation's frames, per day; the derivative from the newest two frames, per day), within
    slope2's bounds and per-change limit; the other levers as ``static``. High utilization
    raises slope2 (borrowing costs more, fewer borrowers arrive), low utilization lowers it.

    Constants: ``U_TARGET = 0.85`` (below Aave's kink of 0.90, so the curve's steep part is the
    controller's reserve); ``KP = 2.0`` APR per unit of error (a 5-point overshoot adds 0.10
    APR, under the 0.25 per-change limit); ``KI = 0.5`` APR per unit-day; ``KD = 0.5`` APR per
    unit of error change per day (damps a fast rise)."""

    name = "pid"
    U_TARGET: ClassVar[float] = 0.85
    KP: ClassVar[float] = 2.0
    KI: ClassVar[float] = 0.5
    KD: ClassVar[float] = 0.5

    def __init__(
        self, schema=None, history=DEFAULT_HISTORY, history_every_h=DEFAULT_HISTORY_EVERY_H
    ):
        super().__init__(schema, history, history_every_h)
        self.every_h = float(history_every_h)

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        t = super()._targets(frames)
        e = frames[:, :, self.fcol["utilization"]] - self.U_TARGET  # [n, k]
        integral = e.sum(axis=1) * self.every_h / 24.0
        deriv = (e[:, 0] - e[:, 1]) * 24.0 / self.every_h if e.shape[1] > 1 else 0.0 * e[:, 0]
        j = self.lev["slope2"]
        x = self.current(frames[:, 0])[:, j]
        t[:, j] = np.clip(
            x + self.KP * e[:, 0] + self.KI * integral + self.KD * deriv,
            self._low[j],
            self._high[j],
        )
        return t


class ChaosCapsSteward(StewardBaseline):
    """``chaos_caps``: Chaos Labs-style cap rule: raise caps toward demand within +100% per 3
    days, cut them on stress; the other levers as ``static``.

    For each cap with use ``u`` (total over the cap): when ``u >= RAISE_AT`` raise it to ``use
    * TARGET_HEADROOM`` (at most doubling, once per 3 days, the lever's limit); under stress
    (``vol_short >= 1.2`` or a ``drawdown`` of 10% or more) cut it to ``use * CUT_HEADROOM``
    (at most -50%); otherwise hold. Constants: ``RAISE_AT = 0.9`` and ``TARGET_HEADROOM =
    1.25`` (Edge raises a cap when use nears it, to leave a quarter of room), ``CUT_HEADROOM =
    1.05`` (no room for new leverage while prices fall), the stress lines of v0's ``steward``
    (1.2 annualized volatility) and a 10% drawdown."""

    name = "chaos_caps"
    RAISE_AT: ClassVar[float] = 0.9
    TARGET_HEADROOM: ClassVar[float] = 1.25
    CUT_HEADROOM: ClassVar[float] = 1.05
    DRAWDOWN: ClassVar[float] = 0.10

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        t = super()._targets(frames)
        now = frames[:, 0]
        x = self.current(now)
        stressed = (self.feature(now, "vol_short") >= StewardGovernor.VOL_TIGHT) | (
            self.feature(now, "drawdown") >= self.DRAWDOWN
        )
        for cap, use in (("supply_cap", "supply_cap_use"), ("borrow_cap", "borrow_cap_use")):
            j = self.lev[cap]
            u = self.feature(now, use)
            used = u * x[:, j]
            t[:, j] = np.where(
                stressed,
                np.minimum(self.CUT_HEADROOM * used, x[:, j]),
                np.where(u >= self.RAISE_AT, self.TARGET_HEADROOM * used, x[:, j]),
            )
        return t


class ToxicSpiralSteward(StewardBaseline):
    """``toxic_spiral``: against toxic liquidation spirals (Warmuz et al., "Toxic Liquidation
    Spirals", 2022): when positions would become toxic, raise the close factor and cut the bonus.

    A position is toxic when its collateral is worth less than ``1 + bonus`` times its debt: a
    liquidation then lowers its health factor, and each round makes the next more likely. When
    the share of debt that a 10% fall would make toxic (``debt_toxic_10``) reaches
    ``TRIGGER``: close factor to 1 (liquidate such positions whole, before they turn toxic) and
    the bonus to ``BONUS_LOW`` (a lower bonus lowers the toxic line ``1 + bonus``); below
    ``TRIGGER / 2``: back to BASE (close factor 0.5, bonus 0.052); in between: hold. Constants:
    ``TRIGGER = 0.02`` (2% of debt one 10% fall from toxic: a freshly drawn book has none),
    ``BONUS_LOW = 0.04`` (below Aave's lowest 4.5%, as the paper's lower incentive; keepers
    still earn it in a deep pool)."""

    name = "toxic_spiral"
    TRIGGER: ClassVar[float] = 0.02
    BONUS_LOW: ClassVar[float] = 0.04

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        t = super()._targets(frames)
        now = frames[:, 0]
        x = self.current(now)
        risk = self.feature(now, "debt_toxic_10")
        on = risk >= self.TRIGGER
        hold = ~on & (risk >= self.TRIGGER / 2.0)
        cf, b = self.lev["close_factor"], self.lev["liquidation_bonus"]
        t[:, cf] = np.where(on, 1.0, np.where(hold, x[:, cf], t[:, cf]))
        t[:, b] = np.where(on, self.BONUS_LOW, np.where(hold, x[:, b], t[:, b]))
        return t


class VolSteepSteward(StewardBaseline):
    """``vol_steep``: ``vol_rule`` three points lower and twice as steep; a clone target
    (:data:`TEACHERS`), not one of the benchmark's baselines.

    ``target LT = clip(LT0 - K * (vol_short - VOL0), 0.70, 0.90)``, ``LTV = LT - 0.035``; the
    other levers as ``static``. Constants: ``LT0 = 0.83`` and ``K = 0.2`` per unit of annualized
    volatility, the rest as ``vol_rule``. At the calm regime's volatility (0.76) LT is 0.80,
    between ``vol_rule``'s 0.845 and ``conservative``'s 0.75; at 1.6 (turbulent) it is 0.70.
    Why: chosen on a validation set of held-out seeds distinct from the suite's (48 episodes
    each of ``regime_switching``, ``regime_stress`` and ``oracle_manipulation`` from seed
    2,000,000; never the real replays) as the variant of ``vol_rule`` with the best mean return
    that also beats ``conservative`` episode by episode: ``vol_rule`` gains about 1 bp of TVL
    per calm week over it and loses tens in a crash (docs/governance-v1.md)."""

    name = "vol_steep"
    LT0: ClassVar[float] = 0.83
    K: ClassVar[float] = 0.2

    def _targets(self, frames: np.ndarray) -> np.ndarray:
        t = super()._targets(frames)
        vol = self.feature(frames[:, 0], "vol_short")
        v = VolRuleGovernor
        lt = np.clip(self.LT0 - self.K * (vol - v.VOL0), v.LT_LO, v.LT_HI)
        t[:, self.lev["liquidation_threshold"]] = lt
        t[:, self.lev["ltv"]] = lt - v.GAP0
        return t


# ---------------------------------------------------------------------- portfolio governance
class PortfolioStewardBaseline(BaselinePolicy):
    """Base of the ``levgym/PortfolioGovernance-v0`` rules: Governance-v1's rules applied per
    row of the steward's schema (each reserve, each E-mode category), through the same
    target-to-action mapping (:class:`LeverSteps`, one per row group).

    A lever's value is read back from its position feature ``{row}.{lever}``, in the
    parameter's own units for LT, the LTV gap, the bonus and slope2 (their bounds are multiples
    of the row's starting value, which the rule knows from the reserves) and in multiples of the
    episode's supply or debt for the caps. ``_targets(obs, x)`` returns target values per group
    ``{group: [n, R, L]}`` in those units (NaN: leave the lever alone). BASE is every row at its
    starting values (caps 1.5 x); TIGHT moves LT, gap and bonus of every row as
    ``conservative`` moves Aave's WETH preset (LT x 0.75 / 0.86, gap + 0.015, bonus x 0.075 /
    0.052: the ratios of the ``conservative`` and ``aave_v3_weth`` presets)."""

    env_id = PORTFOLIO_ID
    FEATURES = PortfolioGovernanceVectorEnv.FEATURES
    ACTIONS = PortfolioGovernanceVectorEnv.ACTIONS
    CAP_START: ClassVar[float] = 1.5
    RISK: ClassVar[tuple[str, ...]] = ("liquidation_threshold", "ltv_gap", "liquidation_bonus")

    def __init__(self, reserves: Reserves | None = None) -> None:
        if reserves is not None and not isinstance(reserves, Reserves):
            raise ValueError(f"reserves={reserves!r} must be a levgym.engine.portfolio.Reserves")
        self.reserves = reserves or PORTFOLIO_RESERVES
        self.rows = portfolio_rows(self.reserves)
        self.FEATURES = portfolio_features(self.rows)  # type: ignore[misc]
        self.ACTIONS = self.rows.action_features()  # type: ignore[misc]
        super().__init__()
        base, aave = PRESETS["conservative"], PRESETS["aave_v3_weth"]
        self.lt_ratio = base.liquidation_threshold / aave.liquidation_threshold
        self.gap_widen = (base.liquidation_threshold - base.ltv) - (
            aave.liquidation_threshold - aave.ltv
        )
        self.bonus_ratio = base.liquidation_bonus / aave.liquidation_bonus
        self.steps: dict[str, LeverSteps] = {}
        self.base: dict[str, np.ndarray] = {}
        self.tight: dict[str, np.ndarray] = {}
        self.lev: dict[str, dict[str, int]] = {}
        for g in self.rows.groups:
            objs = self.reserves.reserves if g.name == "reserve" else self.reserves.emodes
            unit = np.ones(g.shape)
            start = np.zeros(g.shape)
            for j, v in enumerate(g.schema.levers):
                for r, o in enumerate(objs):
                    ref = {
                        "start_liquidation_threshold": o.liquidation_threshold,
                        "start_liquidation_bonus": o.liquidation_bonus,
                        "start_slope2_apr": getattr(o, "slope2_apr", 1.0),
                    }
                    unit[r, j] = ref.get(v.bounds_of, 1.0) if v.bounds_of else 1.0
                    if v.target in ("supply_cap_asset", "borrow_cap_asset"):
                        start[r, j] = self.CAP_START
                    elif v.target == "ltv_gap":
                        start[r, j] = o.liquidation_threshold - o.ltv
                    else:
                        start[r, j] = getattr(o, v.target)
            self.steps[g.name] = LeverSteps(g.schema, unit)
            self.base[g.name] = start
            lev = g.schema.index()
            self.lev[g.name] = lev
            tight = start.copy()
            tight[:, lev["liquidation_threshold"]] *= self.lt_ratio
            tight[:, lev["ltv_gap"]] += self.gap_widen
            tight[:, lev["liquidation_bonus"]] *= self.bonus_ratio
            self.tight[g.name] = tight
        self.fcol = index(self.FEATURES)

    def current(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Lever values ``{group: [n, R, L]}`` from the observation's position features."""
        out = {}
        for g in self.rows.groups:
            pos = np.stack(
                [
                    np.stack([obs[:, self.fcol[f"{row}.{v.name}"]] for v in g.schema.levers], -1)
                    for row in g.rows
                ],
                axis=1,
            )
            out[g.name] = self.steps[g.name].current(pos)
        return out

    def reserve_feature(self, obs: np.ndarray, name: str) -> np.ndarray:
        """A per-reserve feature ``[n, K]`` (``{symbol}.{name}``)."""
        return np.stack([obs[:, self.fcol[f"{s}.{name}"]] for s in self.reserves.symbols], -1)

    def _targets(self, obs: np.ndarray, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = obs.shape[0]
        return {k: np.broadcast_to(v, (n, *v.shape)).copy() for k, v in self.base.items()}

    def _act(self, obs: np.ndarray) -> np.ndarray:
        x = self.current(obs)
        t = self._targets(obs, x)
        n = obs.shape[0]
        parts = [
            self.steps[g.name].actions(x[g.name], t[g.name]).reshape(n, -1)
            for g in self.rows.groups
        ]
        return np.concatenate(parts, axis=1)


class PortfolioStatic(PortfolioStewardBaseline):
    """``static``: every reserve and E-mode category held at its starting parameters (Aave v3
    Ethereum's), caps at their start (1.5 x the episode's supply and debt)."""

    name = "static"


class PortfolioConservative(PortfolioStewardBaseline):
    """``conservative``: every row's LT, gap and bonus driven to TIGHT within the per-change
    limits and held (LT x 0.872, gap + 0.015, bonus x 1.44; a category's LT stops at its lower
    bound, 0.9 x its start); the rest as ``static``."""

    name = "conservative"

    def _targets(self, obs, x):
        t = super()._targets(obs, x)
        for g in self.rows.groups:
            cols = [self.lev[g.name][k] for k in self.RISK]
            t[g.name][:, :, cols] = self.tight[g.name][:, cols]
        return t


class PortfolioVolRule(PortfolioStewardBaseline):
    """``vol_rule``: each reserve's LT falls linearly with its own realized volatility (v0's
    rule per reserve), its gap held; E-mode categories and the rest as ``static``.

    ``target LT_k = clip(LT0_k - 0.1 * (vol_short_k - 0.6), LT0_k - 0.16, LT0_k)``: the
    constants of :class:`VolRuleGovernor` (``K``, ``VOL0``, and the floor ``LT0 - LT_LO``
    below the start). Unlike v0 it never raises LT above the start: ``VOL0 = 0.6`` is an ETH
    level and the stablecoins' calm volatility is far below it, so the calm-market side of v0's
    rule would raise every stablecoin's LT; a depeg's volatility still cuts it."""

    name = "vol_rule"

    def _targets(self, obs, x):
        t = super()._targets(obs, x)
        j = self.lev["reserve"]["liquidation_threshold"]
        lt0 = self.base["reserve"][:, j]
        vol = self.reserve_feature(obs, "vol_short")
        g = VolRuleGovernor
        lt = lt0 - g.K * (vol - g.VOL0)
        t["reserve"][:, :, j] = np.clip(lt, lt0 - (g.LT0 - g.LT_LO), lt0)
        return t


class PortfolioStewardRule(PortfolioStewardBaseline):
    """``steward``: Governance-v1's ``steward`` rule per reserve row: tighten a stressed reserve
    fast, relax it slowly when calm, hold in between.

    A reserve's stress ``z_k = max(vol_short_k / 1.2, debt_liquidatable_10_k / 0.05)`` (its
    own volatility; the share of the book's debt that a 10% fall of its price would make
    liquidatable). ``z >= 1``: LT, gap and bonus to TIGHT and the reserve's caps cut to 1.1 x
    their use; ``z < 0.75``: LT, gap and bonus back toward BASE at a fifth of their limit and
    caps raised to 1.5 x their use; in between: hold. E-mode categories are held at BASE: their
    loopers' collateral and debt move together (wstETH's exchange-rate oracle follows WETH),
    so no one asset's volatility or fall says they are at risk, and tightening them liquidates
    loopers that sit at HF 1.02-1.10 by design. Constants as Governance-v1's ``steward`` (why:
    see :class:`StewardGovernor` and :class:`StewardRuleSteward`)."""

    name = "steward"

    def stress(self, obs: np.ndarray) -> np.ndarray:
        """Stress per reserve ``[n, K]``."""
        return np.maximum(
            self.reserve_feature(obs, "vol_short") / StewardGovernor.VOL_TIGHT,
            self.reserve_feature(obs, "debt_liquidatable_10") / StewardGovernor.NEAR_TIGHT,
        )

    def _targets(self, obs, x):
        t = super()._targets(obs, x)
        lev, xg, tg = self.lev["reserve"], x["reserve"], t["reserve"]
        z = self.stress(obs)
        stressed = (z >= 1.0)[..., None]
        calm = (z < StewardGovernor.RELAX_BELOW)[..., None]
        risk = [lev[k] for k in self.RISK]
        steps = self.steps["reserve"]
        goal = np.where(stressed, self.tight["reserve"][:, risk], self.base["reserve"][:, risk])
        relax = xg[..., risk] + StewardGovernor.RELAX_SPEED * np.clip(
            goal - xg[..., risk], -steps.down[risk], steps.up[risk]
        )
        tg[..., risk] = np.where(calm, relax, np.where(stressed, goal, xg[..., risk]))
        for cap, use in (("supply_cap", "supply_cap_use"), ("borrow_cap", "borrow_cap_use")):
            j = lev[cap]
            used = self.reserve_feature(obs, use) * xg[..., j]
            tg[..., j] = np.where(
                stressed[..., 0],
                StewardRuleSteward.CUT_HEADROOM * used,
                np.where(calm[..., 0], StewardRuleSteward.RELAX_HEADROOM * used, xg[..., j]),
            )
        return t


# ---------------------------------------------------------------------- liquidator
class LiquidatorBaseline(BaselinePolicy):
    """Base of the liquidator rules, for ``levgym/Liquidator-v1`` (``env_id``, the default) or
    ``levgym/Liquidator-v2``. Actions map to ``[0, 1]`` as ``(a + 1) / 2``: take share (times
    ``max_share_frac``), share of inventory sold this step, and the hedge: on v1 a short hedge
    ratio of the equity (times ``max_hedge_ratio``, the env's, default 1); on v2 a short of
    ``1 + a * max_hedge_deviation`` times the inventory (the env's, default 1; see
    :meth:`hedge_action`)."""

    env_id = LIQUIDATOR_ID
    FEATURES = LIQUIDATOR_FEATURES
    ACTIONS = LIQUIDATOR_ACTIONS

    def __init__(
        self,
        max_hedge_ratio: float = 1.0,
        env_id: str = LIQUIDATOR_ID,
        max_hedge_deviation: float = 1.0,
    ) -> None:
        super().__init__()
        if not (np.isfinite(max_hedge_ratio) and max_hedge_ratio >= 0):
            raise ValueError(
                f"max_hedge_ratio={max_hedge_ratio!r} is out of range; allowed a finite number >= 0"
            )
        allowed = (LIQUIDATOR_ID, *HEDGE_ON_INVENTORY_IDS)
        if env_id not in allowed:
            raise ValueError(f"env_id={env_id!r} is unknown; allowed {', '.join(allowed)}")
        if not (np.isfinite(max_hedge_deviation) and 0 <= max_hedge_deviation <= 1):
            raise ValueError(
                f"max_hedge_deviation={max_hedge_deviation!r} is out of range; allowed [0, 1]"
            )
        self.max_hedge_ratio = float(max_hedge_ratio)
        self.max_hedge_deviation = float(max_hedge_deviation)
        self.env_id = env_id  # type: ignore[misc]
        if env_id in HEDGE_ON_INVENTORY_IDS:
            self.ACTIONS = LIQUIDATOR_V2_ACTIONS  # type: ignore[misc]

    def hedge_action(self, held: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """The hedge component for a short of ``held`` (units of initial capital at the pool
        price, as the observation's ``inventory``). v1: the hedge ratio ``held / equity``,
        clipped to ``[0, max_hedge_ratio]`` (the largest with equity at or below zero). v2: the
        factor ``held / inventory`` of the inventory, ``a = (factor - 1) / max_hedge_deviation``
        clipped to ``[-1, 1]`` (``a = 0``: a short of all the inventory; none held: ``a = 0``,
        which shorts nothing)."""
        c = self.col
        if self.env_id in HEDGE_ON_INVENTORY_IDS:
            inv = obs[:, c["inventory"]]
            factor = np.where(inv > 0, held / np.where(inv > 0, inv, 1.0), 1.0)
            dev = self.max_hedge_deviation
            a = (factor - 1.0) / dev if dev > 0 else np.zeros_like(factor)
            return np.clip(a, -1.0, 1.0)
        equity = obs[:, c["equity"]]
        ratio = np.where(equity > 0, held / np.where(equity > 0, equity, 1.0), np.inf)
        ratio = np.where(held > 0, ratio, 0.0)
        hedge = np.clip(ratio, 0.0, self.max_hedge_ratio)
        frac = hedge / self.max_hedge_ratio if self.max_hedge_ratio > 0 else np.zeros_like(hedge)
        return self.to_action(frac)

    @staticmethod
    def to_action(frac: np.ndarray | float) -> np.ndarray:
        """The action component for a share in ``[0, 1]``: ``2 * frac - 1``."""
        return 2.0 * np.clip(frac, 0.0, 1.0) - 1.0


class GreedyLiquidator(LiquidatorBaseline):
    """``greedy``: take every profitable liquidation, sell everything at once, no hedge.

    Rule: action ``(1, 1, -1)`` every step: the largest share of each liquidation the env
    allows (``max_share_frac``; the engine only runs liquidations that pay for gas and
    slippage, so every one taken is profitable at its price), all inventory sold into the pool
    at the next step, no perp position (on ``levgym/Liquidator-v2`` ``a2 = -1`` is a short of
    ``1 - max_hedge_deviation`` times the inventory: none at the default 1). Constants: none (the
    extreme of each action).
    """

    name = "greedy"

    def _act(self, obs: np.ndarray) -> np.ndarray:
        a = np.empty((obs.shape[0], 3))
        a[:, 0], a[:, 1], a[:, 2] = 1.0, 1.0, -1.0
        return a


class GreedyHedgedLiquidator(LiquidatorBaseline):
    """``greedy_hedged``: take every profitable liquidation, unwind over a few steps, hedged.

    Rule, per step:

    - take: the largest share (``a0 = 1``), as ``greedy``;
    - sell: ``SELL_FRAC`` of the inventory (``a1 = 2 * SELL_FRAC - 1``), so a seizure is sold
      off geometrically over a few steps;
    - hedge: short on the perpetual the inventory still held after this step's sale:
      hedge ratio ``= inventory * (1 - SELL_FRAC) / equity`` (both from the observation, in
      units of initial capital), clipped to ``[0, max_hedge_ratio]``; with equity at or below
      zero, the largest ratio. The seizure of the coming step is hedged at the next step.
      On ``levgym/Liquidator-v2`` the same short is ``a2 = -SELL_FRAC / max_hedge_deviation``
      (``-0.25``: 0.75 of the inventory; see :meth:`LiquidatorBaseline.hedge_action`).

    Constants (why): ``SELL_FRAC = 0.25`` per 10-minute step: 90% of a seizure is sold within
    8 steps (80 min). The pool's arbitrage closes half of the gap to the fundamental per step
    (``arb_speed_frac = 0.5``), so spreading the sale over several steps lets arbitrage refill
    the pool between sales, selling at a better price than one dump, while the hedge covers the
    price risk of what is still held.
    """

    name = "greedy_hedged"
    SELL_FRAC: ClassVar[float] = 0.25

    def _act(self, obs: np.ndarray) -> np.ndarray:
        held = obs[:, self.col["inventory"]] * (1.0 - self.SELL_FRAC)
        a = np.empty((obs.shape[0], 3))
        a[:, 0] = 1.0
        a[:, 1] = self.to_action(self.SELL_FRAC)
        a[:, 2] = self.hedge_action(held, obs)
        return a


class PassiveLiquidator(LiquidatorBaseline):
    """``passive``: never acts. Action ``(-1, -1, -1)``: take none of any liquidation, sell
    nothing (it never holds anything), no perp position. Its return is the zero line (minus
    nothing: no gas, no fees). Constants: none."""

    name = "passive"

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return -np.ones((obs.shape[0], 3))


# ---------------------------------------------------------------------- cross-protocol hedger
class HedgerBaseline(BaselinePolicy):
    """Base of the ``levgym/CrossProtocolHedger-v0`` rules. They read the legs' health factors
    (``hf_aave``, ``hf_compound``, ``hf_morpho``: 5 when a leg has no debt) and never hedge on
    the perp (hedge action -1: no short). Moves and debt actions inside the env's dead zone
    (``|a| < 0.05``) are exactly 0, so a rule that does nothing pays no gas."""

    env_id = HEDGER_ID
    FEATURES = HEDGER_FEATURES
    ACTIONS = HEDGER_ACTIONS

    def hf(self, obs: np.ndarray) -> np.ndarray:
        """The legs' health factors ``[n, P]``."""
        return np.stack([obs[:, self.col[f"hf_{s}"]] for s in HEDGER_LEGS], axis=1)

    def _hold(self, n: int) -> np.ndarray:
        a = np.zeros((n, len(self.ACTIONS)))
        a[:, -1] = -1.0
        return a


class HoldHedger(HedgerBaseline):
    """``hold``: does nothing (no move, no repay or borrow, no perp). The account rides the
    stress and the keepers liquidate it where it falls below 1: the cost of inaction."""

    name = "hold"

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self._hold(obs.shape[0])


class ThresholdRebalancer(HedgerBaseline):
    """``threshold_rebalancer``: when the lowest leg's HF falls below ``TRIGGER_HF``, move
    collateral into it from every leg whose HF is above ``DONOR_HF``, each donor giving the
    share that brings it down to ``DONOR_TARGET_HF`` (a leg's HF is proportional to its
    collateral: one collateral asset, so the share is ``1 - target / hf``). It never repays:
    its only tool is the collateral already in the account, moved where it is needed.

    Constants: ``TRIGGER_HF = 1.10``: the steepest default stress (35 % over 6 h, about 7 % an
    hour) moves an HF by about 7 % a step, so acting at 1.10 leaves a step before 1.0 and the
    default start HFs (1.10-1.40) are not rebalanced at once; ``DONOR_HF = 1.25`` and
    ``DONOR_TARGET_HF = 1.20``: a donor keeps a margin of 20 % (Compound's withdrawal check needs
    its LT-based HF above ``liquidateCF / borrowCF = 0.88 / 0.83``, about 1.06, and a donor must
    not become the next leg to rescue in the same step)."""

    name = "threshold_rebalancer"
    TRIGGER_HF: ClassVar[float] = 1.10
    DONOR_HF: ClassVar[float] = 1.25
    DONOR_TARGET_HF: ClassVar[float] = 1.20

    def _act(self, obs: np.ndarray) -> np.ndarray:
        hf = self.hf(obs)
        n, p = hf.shape
        a = self._hold(n)
        low = np.argmin(hf, axis=1)
        on = hf[np.arange(n), low] < self.TRIGGER_HF
        donor = (hf > self.DONOR_HF) & (np.arange(p)[None, :] != low[:, None]) & on[:, None]
        give = np.where(donor, 1.0 - self.DONOR_TARGET_HF / np.maximum(hf, 1e-9), 0.0)
        for j in range(p):
            a[:, 2 * j] = np.where(low == j, np.where(on, 1.0, 0.0), -give[:, j])
        return a


class DeleverageHedger(HedgerBaseline):
    """``deleverage``: when any leg's HF falls below ``TRIGGER_HF``, repay all the debt of
    every leg (from cash, then by selling the account's wstETH into the shared pool). With no
    debt left there is nothing to liquidate; the cost is the slippage of one large sale at the
    worst moment, and the upside given up.

    Constant: ``TRIGGER_HF = 1.08``: below the rebalancer's trigger (it is the last resort),
    and about one step of the steepest default stress above 1.0."""

    name = "deleverage"
    TRIGGER_HF: ClassVar[float] = 1.08

    def _act(self, obs: np.ndarray) -> np.ndarray:
        hf = self.hf(obs)
        n, p = hf.shape
        a = self._hold(n)
        on = hf.min(axis=1) < self.TRIGGER_HF
        for j in range(p):
            a[:, 2 * j + 1] = np.where(on, -1.0, 0.0)
        return a


# ---------------------------------------------------------------------- registry
BASELINES: dict[str, dict[str, type[BaselinePolicy]]] = {
    GOVERNANCE_ID: {
        "static": StaticGovernor,
        "conservative": ConservativeGovernor,
        "vol_rule": VolRuleGovernor,
        "steward": StewardGovernor,
        "random": RandomPolicy,
    },
    GOVERNANCE_V1_ID: {
        "static": StaticSteward,
        "conservative": ConservativeSteward,
        "vol_rule": VolRuleSteward,
        "steward": StewardRuleSteward,
        "pid": PidRateSteward,
        "chaos_caps": ChaosCapsSteward,
        "toxic_spiral": ToxicSpiralSteward,
        "random": RandomPolicy,
    },
    PORTFOLIO_ID: {
        "static": PortfolioStatic,
        "conservative": PortfolioConservative,
        "vol_rule": PortfolioVolRule,
        "steward": PortfolioStewardRule,
        "random": RandomPolicy,
    },
    LIQUIDATOR_ID: {
        "greedy": GreedyLiquidator,
        "greedy_hedged": GreedyHedgedLiquidator,
        "passive": PassiveLiquidator,
    },
}
BASELINES[LIQUIDATOR_V2_ID] = BASELINES[LIQUIDATOR_ID]
BASELINES[LIQUIDATOR_V3_ID] = BASELINES[LIQUIDATOR_ID]
BASELINES[GOVERNANCE_V2_ID] = BASELINES[GOVERNANCE_V1_ID]
BASELINES[HEDGER_ID] = {
    "hold": HoldHedger,
    "threshold_rebalancer": ThresholdRebalancer,
    "deleverage": DeleverageHedger,
}
"""The baselines of each env id: ``{env_id: {name: class}}``."""

TEACHERS: dict[str, dict[str, type[BaselinePolicy]]] = {
    GOVERNANCE_V1_ID: {"vol_steep": VolSteepSteward},
}
"""Rules that are clone targets of a warm start (``init_from_baseline.name``) but not baselines
of the benchmark: ``{env_id: {name: class}}``. :func:`make_baseline` builds them too."""


def baseline_names(env_id: str) -> tuple[str, ...]:
    """The baseline names available for ``env_id``, in registry order."""
    if env_id not in BASELINES:
        raise ValueError(f"env id {env_id!r} is unknown; allowed {', '.join(BASELINES)}")
    return tuple(BASELINES[env_id])


def teacher_names(env_id: str) -> tuple[str, ...]:
    """The clone targets of ``env_id`` that are not baselines (:data:`TEACHERS`)."""
    return tuple(TEACHERS.get(env_id, {}))


def make_baseline(name: str, env_or_env_id: Any, seed: int = 0) -> BaselinePolicy:
    """The baseline ``name`` for an env (an env id, or a levgym env / vector env / wrapper /
    SB3 VecEnv, whose settings it then uses: the governance env's ``limits``, the liquidator
    env's ``max_hedge_ratio``). ``seed`` seeds ``random``. Unknown names raise ``ValueError``
    naming the allowed ones."""
    env_id, venv = _env_id_and_venv(env_or_env_id)
    table: Mapping[str, type[BaselinePolicy]] = {**BASELINES[env_id], **TEACHERS.get(env_id, {})}
    if name not in table:
        raise ValueError(f"baseline {name!r} is unknown for {env_id}; allowed {', '.join(table)}")
    cls = table[name]
    if cls is RandomPolicy:
        return RandomPolicy(env_id, seed=seed, venv=venv)
    if issubclass(cls, PortfolioStewardBaseline):
        return cls(reserves=getattr(venv, "reserves", None) if venv is not None else None)
    if issubclass(cls, StewardBaseline):
        if venv is None:
            return cls()
        return cls(
            schema=getattr(venv, "schema", None),
            history=getattr(venv, "history", DEFAULT_HISTORY),
            history_every_h=getattr(venv, "history_every_h", DEFAULT_HISTORY_EVERY_H),
        )
    if issubclass(cls, GovernanceBaseline):
        limits = getattr(venv, "limits", None) if venv is not None else None
        return cls(limits=limits)
    if issubclass(cls, LiquidatorBaseline):
        ratio = getattr(venv, "max_hedge_ratio", 1.0) if venv is not None else 1.0
        dev = getattr(venv, "max_hedge_deviation", 1.0) if venv is not None else 1.0
        return cls(max_hedge_ratio=ratio, env_id=env_id, max_hedge_deviation=dev)
    return cls()


__all__ = [
    "BASELINES",
    "BaselinePolicy",
    "ChaosCapsSteward",
    "ConservativeGovernor",
    "ConservativeSteward",
    "GovernanceBaseline",
    "GreedyHedgedLiquidator",
    "GreedyLiquidator",
    "DeleverageHedger",
    "HedgerBaseline",
    "HoldHedger",
    "LiquidatorBaseline",
    "PassiveLiquidator",
    "LeverSteps",
    "PidRateSteward",
    "PortfolioConservative",
    "PortfolioStatic",
    "PortfolioStewardBaseline",
    "PortfolioStewardRule",
    "PortfolioVolRule",
    "RandomPolicy",
    "StaticGovernor",
    "StaticSteward",
    "StewardBaseline",
    "StewardGovernor",
    "StewardRuleSteward",
    "TEACHERS",
    "ThresholdRebalancer",
    "ToxicSpiralSteward",
    "VolRuleGovernor",
    "VolRuleSteward",
    "VolSteepSteward",
    "baseline_names",
    "make_baseline",
    "teacher_names",
]
