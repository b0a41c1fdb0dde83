"""levgym/Governance-v0: a risk steward sets the lending market's risk parameters hour by hour."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..engine.backend import to_numpy
from ..engine.fused import _params_packed, pack_orders
from ..engine.jit import call_kernel
from ..engine.params import HOURS_PER_YEAR, EngineParams, ProtocolParams
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import ScenarioSpec
from .features import Feature, index
from .formulas import (
    governance_book_features,
    governance_market_features,
    governance_reward,
    governance_substep_flows,
    log_return,
    steward_projection,
)
from .programs import GOVERNANCE_OUTPUTS, governance_observe, governance_step


@dataclass(frozen=True)
class StewardLimits:
    """What the risk steward may change per step, and the bounds it must stay within.

    The per-step caps follow the shape of Aave's Generalized Risk Stewards (LT and LTV 0.25%,
    bonus 0.5%, slope1 0.5%, slope2 5% absolute per update, one update per 3 days); levgym's
    steward acts every hour, so its caps are per hour and of the same order (see the env docs).
    """

    lt_step: float = 0.005
    """Largest change of the liquidation threshold per step (absolute)."""
    gap_step: float = 0.005
    """Largest change of the gap ``LT - LTV`` per step (absolute)."""
    bonus_step: float = 0.0025
    """Largest change of the liquidation bonus per step (absolute)."""
    slope1_step_apr: float = 0.005
    """Largest change of slope1 per step (APR, absolute)."""
    slope2_step_apr: float = 0.05
    """Change of slope2 per step at a full slope action (moves with slope1, AGRS's 1:10 ratio)."""
    lt_min: float = 0.50
    lt_max: float = 0.95
    gap_min: float = 0.0
    gap_max: float = 0.15
    bonus_min: float = 0.045
    """The lowest liquidation bonus of any active collateral on Aave v3 Ethereum in October 2025
    (4.5%: USDC, USDT, sDAI, LUSD); below it keepers walk away and positions rot."""
    bonus_max: float = 0.15
    slope1_min_apr: float = 0.0
    slope1_max_apr: float = 0.50
    slope2_min_apr: float = 0.05
    slope2_max_apr: float = 3.0
    margin: float = 0.001
    """The projection keeps ``LT * (1 + bonus) <= 1 - margin`` (the engine needs ``< 1``)."""

    def __post_init__(self) -> None:
        for name in ("lt_step", "gap_step", "bonus_step", "slope1_step_apr", "slope2_step_apr"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(
                    f"limits.{name}={v!r} is out of range; allowed a finite number >= 0"
                )
        pairs = (
            ("lt_min", "lt_max", 0.0, 1.0),
            ("gap_min", "gap_max", 0.0, 1.0),
            ("bonus_min", "bonus_max", 0.0, 0.5),
            ("slope1_min_apr", "slope1_max_apr", 0.0, 10.0),
            ("slope2_min_apr", "slope2_max_apr", 0.0, 100.0),
        )
        for lo_name, hi_name, lo, hi in pairs:
            a, b = getattr(self, lo_name), getattr(self, hi_name)
            if not (lo <= a <= b <= hi):
                raise ValueError(
                    f"limits.{lo_name}={a:g}, limits.{hi_name}={b:g} are not allowed; "
                    f"allowed {lo:g} <= {lo_name} <= {hi_name} <= {hi:g}"
                )
        if not 0.0 < self.margin < 0.5:
            raise ValueError(f"limits.margin={self.margin:g} is out of range; allowed (0, 0.5)")
        if self.lt_max >= 1.0 or self.lt_min <= self.gap_max:
            raise ValueError(
                f"limits.lt_min={self.lt_min:g} must exceed limits.gap_max={self.gap_max:g} "
                f"and limits.lt_max={self.lt_max:g} must be < 1, so that 0 < LTV <= LT < 1"
            )
        if self.lt_min * (1.0 + self.bonus_max) > 1.0 - self.margin:
            raise ValueError(
                f"limits.lt_min * (1 + limits.bonus_max) = {self.lt_min * (1 + self.bonus_max):g}; "
                f"allowed <= 1 - margin = {1 - self.margin:g}"
            )
        if self.lt_step < self.bonus_step:
            raise ValueError(
                f"limits.lt_step={self.lt_step:g} < limits.bonus_step={self.bonus_step:g}; allowed "
                "lt_step >= bonus_step (a bonus increase may push LT down by up to bonus_step)"
            )

    def check_contains(self, p: ProtocolParams) -> None:
        """Raise a ValueError if the starting parameters lie outside the steward's bounds."""
        gap = p.liquidation_threshold - p.ltv
        checks = (
            ("liquidation_threshold", p.liquidation_threshold, self.lt_min, self.lt_max),
            ("ltv gap (liquidation_threshold - ltv)", gap, self.gap_min, self.gap_max),
            ("liquidation_bonus", p.liquidation_bonus, self.bonus_min, self.bonus_max),
            ("slope1_apr", p.slope1_apr, self.slope1_min_apr, self.slope1_max_apr),
            ("slope2_apr", p.slope2_apr, self.slope2_min_apr, self.slope2_max_apr),
        )
        for name, v, lo, hi in checks:
            if not lo - 1e-12 <= v <= hi + 1e-12:
                raise ValueError(
                    f"protocol.{name}={v:g} is outside the steward's bounds; allowed [{lo:g}, {hi:g}] "
                    "(change the params or the limits)"
                )


def project_params(
    ltv: Any,
    liquidation_threshold: Any,
    liquidation_bonus: Any,
    slope1_apr: Any,
    slope2_apr: Any,
    action: Any,
    limits: StewardLimits,
) -> dict[str, Any]:
    """The parameters after a governance action, projected onto the invariants.

    Pure function of ``[E]`` arrays (numpy or torch) and an action ``[E, 4]`` of finite values.
    Steps, in order:

    1. the action is clipped to ``[-1, 1]``;
    2. ``LT += a0 * lt_step``, ``gap = LT - LTV`` (the current gap) ``+= a1 * gap_step``,
       ``bonus += a2 * bonus_step``, ``slope1 += a3 * slope1_step_apr``,
       ``slope2 += a3 * slope2_step_apr``; each is clipped to its ``[min, max]`` bound;
    3. ``LT = min(LT, (1 - margin) / (1 + bonus))`` so that ``LT * (1 + bonus) < 1``: a bonus
       increase wins over an LT increase (liquidators stay paid), and LT gives way;
    4. ``LTV = LT - gap``.

    Guarantees for every finite action: ``0 < LTV <= LT < 1``, ``LT * (1 + bonus) <= 1 - margin``,
    every parameter within its bounds. From a state within the bounds and the margin, no
    parameter moves by more than its cap (LT too, because ``lt_step >= bonus_step``; LTV by at
    most ``lt_step + gap_step``). Returns arrays keyed by the state's field names.
    """
    ltv, lt, bonus, s1, s2 = steward_projection(
        ltv, liquidation_threshold, liquidation_bonus, slope1_apr, slope2_apr,
        action[:, 0], action[:, 1], action[:, 2], action[:, 3], *limit_values(limits),
    )  # fmt: skip
    return {
        "ltv": ltv,
        "liquidation_threshold": lt,
        "liquidation_bonus": bonus,
        "slope1_apr": s1,
        "slope2_apr": s2,
    }


def limit_values(limits: StewardLimits) -> tuple[float, ...]:
    """The limits in the order :func:`levgym.envs.formulas.steward_projection` takes them."""
    lim = limits
    return (
        lim.lt_step, lim.gap_step, lim.bonus_step, lim.slope1_step_apr, lim.slope2_step_apr,
        lim.lt_min, lim.lt_max, lim.gap_min, lim.gap_max, lim.bonus_min, lim.bonus_max,
        lim.slope1_min_apr, lim.slope1_max_apr, lim.slope2_min_apr, lim.slope2_max_apr,
        lim.margin,
    )  # fmt: skip


# state fields read by the governance features
_FEATURE_FIELDS = (
    "fundamental_usd", "oracle_usd", "pool_asset", "pool_debt", "debt_price_usd",
    "supply_usd", "reserves_usd", "gas_gwei", "ltv", "liquidation_threshold",
    "liquidation_bonus", "base_rate_apr", "slope1_apr", "slope2_apr",
    "optimal_utilization_frac", "initial_collateral_asset", "fundamental_start_usd",
    "bad_debt_usd",
)  # fmt: skip
# the state counters of governance_substep_flows, in its argument order
_FLOW_FIELDS = (
    "reserve_income_usd", "protocol_fee_usd", "seized_collateral_asset",
    "repaid_by_liquidators_usd",
)  # fmt: skip

GOVERNANCE_ACTIONS: tuple[Feature, ...] = (
    Feature("lt_change", "change of the liquidation threshold, times `lt_step`", -1.0, 1.0),
    Feature("ltv_gap_change", "change of the gap LT - LTV, times `gap_step`", -1.0, 1.0),
    Feature("bonus_change", "change of the liquidation bonus, times `bonus_step`", -1.0, 1.0),
    Feature(
        "slope_change",
        "change of the rate curve: slope1 by `slope1_step_apr`, slope2 by `slope2_step_apr`",
        -1.0,
        1.0,
    ),
)

# Health-factor thresholds: bucket edges, then the -10% and -25% liquidation lines.
HF_EDGES = (1.0, 1.05, 1.25, 1.5, 2.0)
HF_SHOCKS = (1.0 / 0.9, 1.0 / 0.75)

GOVERNANCE_FEATURES: tuple[Feature, ...] = (
    Feature("return_1h", "log return of the fundamental price over 1 h, x10", -10.0, 10.0),
    Feature("return_24h", "log return of the fundamental price over 24 h, x10", -10.0, 10.0),
    Feature("vol_short", "realized volatility, EWMA half-life 6 h, annualized", 0.0, 20.0),
    Feature("vol_long", "realized volatility, EWMA half-life 7 days, annualized", 0.0, 20.0),
    Feature("drawdown", "1 - fundamental / its maximum this episode", 0.0, 1.0),
    Feature("oracle_deviation", "oracle / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_deviation", "pool price / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_depth", "pool's debt-asset reserve / collateral value at the oracle", 0.0, 10.0),
    Feature("utilization", "total debt / lenders' supply", 0.0, 1.0),
    Feature("borrow_rate", "borrow rate of the curve now (APR)", 0.0, 10.0),
    Feature("aggregate_ltv", "total debt / collateral value at the oracle", 0.0, 2.0),
    Feature("debt_hf_below_1", "share of debt with HF < 1", 0.0, 1.0),
    Feature("debt_hf_1_105", "share of debt with 1 <= HF < 1.05", 0.0, 1.0),
    Feature("debt_hf_105_125", "share of debt with 1.05 <= HF < 1.25", 0.0, 1.0),
    Feature("debt_hf_125_150", "share of debt with 1.25 <= HF < 1.5", 0.0, 1.0),
    Feature("debt_hf_150_200", "share of debt with 1.5 <= HF < 2", 0.0, 1.0),
    Feature("debt_hf_above_200", "share of debt with HF >= 2", 0.0, 1.0),
    Feature("debt_liquidatable_10", "share of debt liquidatable if the oracle fell 10%", 0.0, 1.0),
    Feature("debt_liquidatable_25", "share of debt liquidatable if the oracle fell 25%", 0.0, 1.0),
    Feature("bad_debt", "bad debt this episode / TVL, x100 (percent)", 0.0, 100.0),
    Feature("reserves", "protocol reserves / TVL, x100 (percent)", 0.0, 100.0),
    Feature("gas", "gas price / 100 gwei", 0.0, 100.0),
    Feature("ltv", "loan-to-value limit", 0.0, 1.0),
    Feature("liquidation_threshold", "liquidation threshold", 0.0, 1.0),
    Feature("liquidation_bonus", "liquidation bonus, x10", 0.0, 5.0),
    Feature("slope1", "slope1 of the rate curve (APR)", 0.0, 10.0),
    Feature("slope2", "slope2 of the rate curve (APR)", 0.0, 100.0),
    Feature("time_left", "share of the episode left", 0.0, 1.0),
)

# A month-long mix: calm and volatile regimes, one-off crashes, real crash replays, and
# liquidity, congestion, oracle and depeg stresses. The intraday crash generators
# (merton_crash and the composites built on it) are left out: at their jump rate a 30-day path
# falls to almost nothing. Names not registered are skipped.
DEFAULT_GOVERNANCE_SCENARIOS = (
    "calm",
    "gbm_calm",
    "gbm_high_vol",
    "garch_clustered",
    "bootstrap_eth",
    "merton_jumps",
    "shock",
    "black_thursday_2020",
    "may19_2021",
    "compound_dai_oracle_2020",
    "liquidity_drought",
    "congestion",
    "oracle_manipulation",
    "oracle_frozen",
    "dai_depeg",
)


class GovernanceVectorEnv(LevgymVectorEnv):
    """Native vector env of ``levgym/Governance-v0``: E markets on one batched engine state.

    The spec (spaces, reward, episode) is :class:`GovernanceEnv`'s docstring; ``gym.make_vec
    ("levgym/Governance-v0", num_envs=E, ...)`` returns this class. Same-step autoreset
    (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``); env ``i`` of a batch reset
    with ``seed=s`` behaves as ``GovernanceEnv`` reset with ``seed=s + i``.
    """

    env_id = "levgym/Governance-v0"
    FEATURES = GOVERNANCE_FEATURES
    ACTIONS = GOVERNANCE_ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_GOVERNANCE_SCENARIOS
    TERMINAL_CAUSE = "insolvency"
    PACKED = True
    block_orders: Any = None
    """Orders (:class:`levgym.engine.orders.Orders`) placed in every block of the next steps;
    ``None`` (Governance-v0's own markets): nobody places any. The multi-agent env
    (:mod:`levgym.multiagent`) sets its agents' resolved orders here."""
    SHARED_SETTABLE: ClassVar[tuple[str, ...]] = (
        "w_bad_debt",
        "w_liquidation",
        "w_efficiency",
        "reward_scale",
        "insolvency_tolerance_frac",
    )

    def __init__(
        self,
        num_envs: int = 1,
        *,
        num_positions: int = 128,
        scenarios: ScenarioSpec = None,
        horizon_h: float = 720.0,
        params: EngineParams | ProtocolParams | str | None = None,
        limits: StewardLimits | None = None,
        w_bad_debt: float = 2.0,
        w_liquidation: float = 0.5,
        w_efficiency: float = 0.02,
        reward_scale: float = 1e4,
        insolvency_tolerance_frac: float = 0.001,
        scenario_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        split: str = "train",
        backend: str = "numba",
        dtype: str = "float64",
        device: str | None = None,
        render_mode: str | None = None,
        autoreset_mode: Any = "SameStep",
        warmup_h: float = 0.0,
        warm_pool: int | None = None,
        path_pool: int | None = None,
        book_pool: int | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            substeps_per_step=None,
            num_positions=num_positions,
            horizon_h=horizon_h,
            scenarios=scenarios,
            params=params,
            scenario_overrides=scenario_overrides,
            split=split,
            backend=backend,
            dtype=dtype,
            device=device,
            render_mode=render_mode,
            autoreset_mode=autoreset_mode,
            warmup_h=warmup_h,
            warm_pool=warm_pool,
            path_pool=path_pool,
            book_pool=book_pool,
        )
        if limits is not None and not isinstance(limits, StewardLimits):
            raise ValueError(f"limits={limits!r} must be a StewardLimits")
        self.limits = limits or StewardLimits()
        self._check_protocol(self.params.protocol)
        self.w_bad_debt = check_weight("w_bad_debt", w_bad_debt)
        self.w_liquidation = check_weight("w_liquidation", w_liquidation)
        self.w_efficiency = check_weight("w_efficiency", w_efficiency)
        self.reward_scale = check_weight("reward_scale", reward_scale)
        self.insolvency_tolerance_frac = check_weight(
            "insolvency_tolerance_frac", insolvency_tolerance_frac
        )
        self._col = index(self.FEATURES)
        self._thresholds = HF_EDGES + HF_SHOCKS
        self._feat = np.zeros((self.num_envs, len(self.FEATURES)))
        self._observed = False
        self._k_constants: tuple[Any, tuple[np.ndarray, np.ndarray]] | None = None

    def _check_protocol(self, value: ProtocolParams) -> None:
        self.limits.check_contains(value)

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        if self.core.packed is not None:
            return self._advance_packed(actions)
        core = self.core
        s = core.state
        # the projection changes parameters only, not positions or prices: the shortfall before
        # it is the one the last observation already computed (a cache hit)
        shortfall0 = core.aggregates(self._thresholds).shortfall
        new = project_params(
            s.ltv,
            s.liquidation_threshold,
            s.liquidation_bonus,
            s.slope1_apr,
            s.slope2_apr,
            core.convert(actions),
            self.limits,
        )
        core.state = s = s.replace(**new)

        revenue0 = to_numpy(s.reserve_income_usd + s.protocol_fee_usd)
        bad0 = to_numpy(s.bad_debt_usd)
        liqs0 = to_numpy(s.liquidations)
        liquidated0 = to_numpy(s.repaid_by_liquidators_usd)
        liq_loss = np.zeros(self.num_envs)
        revenue_value = np.zeros(self.num_envs)
        for _ in range(self.substeps_per_step):
            # no copies: the engine returns new arrays and never writes into old ones
            s0 = s
            core.substep(self.block_orders)
            s = core.state
            revenue_value, liq_loss = governance_substep_flows(
                revenue_value, liq_loss, *(to_numpy(getattr(s0, k)) for k in _FLOW_FIELDS),
                *(to_numpy(getattr(s, k)) for k in _FLOW_FIELDS), to_numpy(s.oracle_usd),
                to_numpy(s.debt_price_usd),
            )  # fmt: skip

        agg = core.aggregates(self._thresholds)  # also serves this step's observation
        dp = to_numpy(s.debt_price_usd)
        tvl = to_numpy(s.initial_collateral_asset * s.fundamental_start_usd)
        revenue = to_numpy(s.reserve_income_usd + s.protocol_fee_usd) - revenue0
        bad = (to_numpy(s.bad_debt_usd) - bad0) * dp
        shortfall = agg.shortfall
        parts = governance_reward(
            revenue, bad, shortfall, shortfall0, dp, liq_loss, to_numpy(s.ltv),
            agg.total_collateral_asset * to_numpy(s.oracle_usd), tvl,
            to_numpy(s.lender_loss_usd), to_numpy(s.reserves_usd), *self._weights(),
        )  # fmt: skip
        values = {
            "reward": parts[0],
            "terminated": parts[9],
            "revenue_usd": revenue,
            "revenue_value_usd": revenue_value,
            "bad_debt_usd": bad,
            "shortfall_usd": shortfall * dp,
            "economic_bad_debt_usd": parts[5],
            "liquidation_loss_usd": liq_loss,
            "borrow_capacity_usd": parts[6],
            "reward_revenue": parts[1],
            "reward_bad_debt": parts[2],
            "reward_liquidation": parts[3],
            "reward_efficiency": parts[4],
            "liquidations": to_numpy(s.liquidations) - liqs0,
            "liquidated_debt_usd": (to_numpy(s.repaid_by_liquidators_usd) - liquidated0) * dp,
            "lender_loss_usd": parts[7],
            "tvl_usd": tvl,
            **{k: to_numpy(v) for k, v in new.items()},
        }
        info = {k: values[k] for k in GOVERNANCE_OUTPUTS[2:]}
        return values["reward"], values["terminated"], info

    def _weights(self) -> tuple[float, ...]:
        """The reward's constants in the order :func:`governance_reward` takes them."""
        return (
            self.step_h / HOURS_PER_YEAR, self.w_bad_debt, self.w_liquidation,
            self.w_efficiency, self.reward_scale, self.insolvency_tolerance_frac,
        )  # fmt: skip

    # ------------------------------------------------------------------ the step kernel
    def _kernel_buffers(self) -> None:
        """Scratch and constants of the step kernel (made once, on the first packed step)."""
        self._step_kernel_buffers(len(GOVERNANCE_OUTPUTS), (1.0, 24.0))

    def _kernel_constants(self) -> tuple[np.ndarray, np.ndarray]:
        """The limits and reward weights as the kernel's arrays (remade when they change)."""
        # the limits are frozen (the same object has the same values); the weights are
        # settable, and each assignment bumps weights_version
        key = (self.limits, self.weights_version)
        cached = self._k_constants
        if cached is None or cached[0][0] is not key[0] or cached[0][1] != key[1]:
            cached = self._k_constants = (
                key,
                (np.array(limit_values(self.limits)), np.array(self._weights())),
            )
        return cached[1]

    def _advance_packed(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`_advance` and the next :meth:`_observe` in one kernel call (backend numba)."""
        core = self.core
        p, tr = core.packed, core.tracker
        if not hasattr(self, "_k_ic"):
            self._kernel_buffers()
        if self.block_orders is not None:
            self._k_orders[...] = pack_orders(self.block_orders, self.num_envs)
        ic, fc = self._k_ic, self._k_fc
        ic[1] = p.substep_index % ic[2]
        ic[3] = tr.pos
        fc[0] = p.time_h
        out = self._k_out
        t0 = time.perf_counter()
        call_kernel(
            governance_step, self._k_threads,
            p.env, core.bank, core.bank_rows, core.t, core.noise_key, _params_packed(self.params),
            self._k_orders, p.twap, p.posf, p.posb, p.kind, self._k_drv, self._k_noise,
            self._k_rounds, self._k_step_rounds, tr.prices, tr._var, tr.max_fundamental, tr.filled, ic, fc,
            actions, *self._kernel_constants(),
            self._k_thresholds, self._obs_low, self._obs_high, self._obs, out,
        )  # fmt: skip
        core.engine_seconds += time.perf_counter() - t0
        h = self.params.run.substep_h
        for _ in range(self.substeps_per_step):
            p.time_h = p.time_h + h  # as the kernel's clock and the engine's substep add it
        p.substep_index += self.substeps_per_step
        tr.pos = (tr.pos + self.substeps_per_step) % tr.length
        core.changed()
        core.count_rounds(self._k_step_rounds, self.substeps_per_step)
        self._observed = True
        rows = out.copy()
        if self.scalar_info:  # a single env: its info values as Python floats, in one call
            info = dict(zip(GOVERNANCE_OUTPUTS[2:], rows[2:, 0].tolist(), strict=True))
        else:
            info = dict(zip(GOVERNANCE_OUTPUTS[2:], rows[2:], strict=True))
        return rows[0], rows[1] != 0.0, info

    def _observe(self, envs: np.ndarray | None = None) -> None:
        if self._observed:  # the step kernel has written this step's observation
            self._observed = False
            return
        core = self.core
        if core.packed is not None:
            if not hasattr(self, "_k_ic"):
                self._kernel_buffers()
            p, tr = core.packed, core.tracker
            ic = self._k_ic_obs
            ic[3] = tr.pos
            governance_observe(
                p.env, p.posf, core.t, tr.prices, tr._var, tr.max_fundamental, ic, self._k_fc,
                self._k_thresholds, self._obs_low, self._obs_high, self._obs,
                self._all_envs if envs is None else envs,
            )  # fmt: skip
            return
        s = core.state
        tr = core.tracker
        agg = core.aggregates(self._thresholds)
        below = agg.debt_below_usd
        g = {name: to_numpy(getattr(s, name)) for name in _FEATURE_FIELDS}
        past = [tr.fundamental[:, (tr.pos - tr.lag(h)) % tr.length] for h in (1.0, 24.0)]
        now = tr.fundamental[:, tr.pos]
        feats = governance_market_features(
            log_return(now, past[0]), log_return(now, past[1]), tr.var_short, tr.var_long,
            tr.max_fundamental, tr.substeps_per_year, g["fundamental_usd"], g["oracle_usd"],
            g["pool_asset"], g["pool_debt"], g["debt_price_usd"], agg.total_debt,
            agg.total_collateral_asset, g["supply_usd"], g["base_rate_apr"], g["slope1_apr"],
            g["slope2_apr"], g["optimal_utilization_frac"],
        ) + governance_book_features(
            agg.total_debt, g["debt_price_usd"], *below.T, g["bad_debt_usd"],
            g["reserves_usd"], g["initial_collateral_asset"], g["fundamental_start_usd"],
            g["gas_gwei"], g["ltv"], g["liquidation_threshold"], g["liquidation_bonus"],
            g["slope1_apr"], g["slope2_apr"], 1.0 - core.t / core.horizon_substeps,
        )  # fmt: skip
        f = self._feat
        for j, v in enumerate(feats):
            f[:, j] = v
        self._store_observation(f)

    def _reset_info(self, info: dict[str, Any]) -> None:
        # the two fields, not core.state (in packed mode a copy of the whole batch's state)
        field = self.core.field
        info["tvl_usd"] = field("initial_collateral_asset") * field("fundamental_start_usd")

    # ------------------------------------------------------------------ rendering
    def summary_line(self, env: int) -> str:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        tvl = g(s.initial_collateral_asset * s.fundamental_start_usd)
        util = self._obs[env, self._col["utilization"]]
        return (
            f"Governance-v0 env {env} [{self.core.scenario_of(env)}] step {int(self._episode_length[env])}"
            f"/{self.max_steps}: price {g(s.fundamental_usd):.1f} pool {g(s.pool_price_usd):.1f} "
            f"oracle {g(s.oracle_usd):.1f} | LTV {g(s.ltv):.3f} LT {g(s.liquidation_threshold):.3f} "
            f"bonus {g(s.liquidation_bonus):.3f} slope1 {g(s.slope1_apr):.3f} slope2 {g(s.slope2_apr):.2f} "
            f"| util {util:.2f} liquidations {g(s.liquidations):.0f} bad debt {100 * g(s.bad_debt_usd) / tvl:.3f}% TVL "
            f"| return {self._episode_return[env]:.3f}"
        )

    def render_text(self, env: int) -> list[str]:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        tvl = g(s.initial_collateral_asset * s.fundamental_start_usd)
        o, c = self._obs[env], self._col
        return [
            f"scenario  {self.core.scenario_of(env)}",
            f"step      {int(self._episode_length[env])} / {self.max_steps}",
            f"LTV       {g(s.ltv):.4f}",
            f"LT        {g(s.liquidation_threshold):.4f}",
            f"bonus     {g(s.liquidation_bonus):.4f}",
            f"slope1    {g(s.slope1_apr):.4f}",
            f"slope2    {g(s.slope2_apr):.3f}",
            f"util      {o[c['utilization']]:.3f}",
            f"rate      {o[c['borrow_rate']]:.3f}",
            f"liqs      {g(s.liquidations):.0f}",
            f"bad debt  {100 * g(s.bad_debt_usd) / tvl:.3f}% TVL",
            f"reserves  {100 * g(s.reserves_usd) / tvl:.3f}% TVL",
            f"return    {self._episode_return[env]:.3f}",
        ]


class GovernanceEnv(LevgymEnv):
    """levgym/Governance-v0: a risk steward sets a lending market's risk parameters through stress.

    ## Description

    One market of the levgym engine (a volatile collateral asset, a stable debt asset, a book of
    ``num_positions`` borrower slots with passive, defensive and looping borrowers, a
    constant-product pool where liquidators sell seized collateral, a Chainlink-style oracle and
    a kinked interest-rate curve) runs through a scenario drawn from a mixture (calm markets,
    crashes, replays of real ones). Every hour the agent, acting as the protocol's risk
    steward, nudges the liquidation threshold, the LTV, the liquidation bonus and the slope of
    the rate curve. Tight parameters keep the protocol solvent through a cascade but cost
    revenue and capital efficiency (borrowers leave, fewer arrive); loose ones the opposite.

    ## Action Space

    ``Box(-1, 1, (4,), float32)``; values outside ``[-1, 1]`` are clipped, NaN or infinite
    values and a wrong shape raise ``ValueError``.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `lt_change` | change of the liquidation threshold, times `lt_step` | -1 | 1 |
    | 1 | `ltv_gap_change` | change of the gap LT - LTV, times `gap_step` | -1 | 1 |
    | 2 | `bonus_change` | change of the liquidation bonus, times `bonus_step` | -1 | 1 |
    | 3 | `slope_change` | change of the rate curve: slope1 by `slope1_step_apr`, slope2 by `slope2_step_apr` | -1 | 1 |

    Each component is scaled by its per-step cap (:class:`StewardLimits`, defaults: LT 0.5%,
    gap 0.5%, bonus 0.25%, slope1 0.5% APR with slope2 5% APR, absolute, per hour; Aave's
    Generalized Risk Stewards allow 0.25% / 0.25% / 0.5% / 0.5% / 5% per 3-day update) and the
    result is projected onto the invariants by :func:`project_params`: bounds (LT in [0.50, 0.95],
    gap in [0, 0.15], bonus in [0.045, 0.15], slope1 in [0, 0.5], slope2 in [0.05, 3]),
    ``LT * (1 + bonus) <= 0.999`` (LT gives way to the bonus) and ``LTV = LT - gap <= LT``.

    ## Observation Space

    ``Box(low, high, float32)``, one entry per feature below, each clipped to its bounds. TVL is
    the collateral value at the start of the episode.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 1 | `return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 2 | `vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 3 | `vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 4 | `drawdown` | 1 - fundamental / its maximum this episode | 0 | 1 |
    | 5 | `oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 6 | `pool_deviation` | pool price / fundamental - 1, x10 | -10 | 10 |
    | 7 | `pool_depth` | pool's debt-asset reserve / collateral value at the oracle | 0 | 10 |
    | 8 | `utilization` | total debt / lenders' supply | 0 | 1 |
    | 9 | `borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 10 | `aggregate_ltv` | total debt / collateral value at the oracle | 0 | 2 |
    | 11 | `debt_hf_below_1` | share of debt with HF < 1 | 0 | 1 |
    | 12 | `debt_hf_1_105` | share of debt with 1 <= HF < 1.05 | 0 | 1 |
    | 13 | `debt_hf_105_125` | share of debt with 1.05 <= HF < 1.25 | 0 | 1 |
    | 14 | `debt_hf_125_150` | share of debt with 1.25 <= HF < 1.5 | 0 | 1 |
    | 15 | `debt_hf_150_200` | share of debt with 1.5 <= HF < 2 | 0 | 1 |
    | 16 | `debt_hf_above_200` | share of debt with HF >= 2 | 0 | 1 |
    | 17 | `debt_liquidatable_10` | share of debt liquidatable if the oracle fell 10% | 0 | 1 |
    | 18 | `debt_liquidatable_25` | share of debt liquidatable if the oracle fell 25% | 0 | 1 |
    | 19 | `bad_debt` | bad debt this episode / TVL, x100 (percent) | 0 | 100 |
    | 20 | `reserves` | protocol reserves / TVL, x100 (percent) | 0 | 100 |
    | 21 | `gas` | gas price / 100 gwei | 0 | 100 |
    | 22 | `ltv` | loan-to-value limit | 0 | 1 |
    | 23 | `liquidation_threshold` | liquidation threshold | 0 | 1 |
    | 24 | `liquidation_bonus` | liquidation bonus, x10 | 0 | 5 |
    | 25 | `slope1` | slope1 of the rate curve (APR) | 0 | 10 |
    | 26 | `slope2` | slope2 of the rate curve (APR) | 0 | 100 |
    | 27 | `time_left` | share of the episode left | 0 | 1 |

    ## Rewards

    In basis points of TVL (``reward_scale = 1e4`` per unit of TVL), per step:

    ``reward = revenue - w_bad_debt * bad_debt - w_liquidation * liquidation_loss
    + w_efficiency * LTV * collateral_value * step_h / 8760``

    - ``revenue``: reserve income (the reserve factor's share of interest) plus the protocol's
      fee on liquidation bonuses, this step. The reserve income enters in debt-asset units (USD
      only at a debt price of 1); ``info["revenue_value_usd"]`` values it in USD at each
      substep's debt price (what ``levgym evaluate`` reports as ``revenue_usd``).
    - ``bad_debt``: economic bad debt this step: debt written off (whether reserves or lenders
      absorb it) plus the change in the underwater shortfall (debt above the value of its
      collateral at the oracle, not yet written off). Counting the shortfall matters: with
      written-off debt alone, an agent learns to cut the bonus until keepers stop liquidating,
      which hides losses in rotting positions instead of avoiding them.
    - ``liquidation_loss``: what users lost to liquidations this step, the value of collateral
      seized beyond the debt repaid (the bonus), at the oracle price after each substep.
    - the last term is capital efficiency: the borrowing the parameters allow (LTV times the
      collateral value), valued at ``w_efficiency`` per year.

    Defaults: ``w_bad_debt = 2`` (bad debt is lost once by lenders and again in the trust and
    deposits that flee a protocol that took losses; a steward's mandate ranks it first),
    ``w_liquidation = 0.5`` (the bonus is a transfer from users to liquidators, not a protocol
    loss, but needless liquidations cost users and the protocol's standing: half weight),
    ``w_efficiency = 0.02`` (2% a year on borrowing capacity, the order of the carry a
    leveraged ETH borrower earns; it makes an over-conservative LTV cost about as much over a
    month as the revenue the protocol earns, so "set everything to the minimum" is not free).

    ## Starting State

    Each episode draws a scenario from ``scenarios`` (uniform unless weights are given), a
    scenario path, and a fresh book drawn by :func:`levgym.engine.init_state` from
    ``params.borrowers`` (heavy-tailed sizes, initial health factors above ``hf_floor``, the
    passive / defensive / looper mix, lenders' supply at ``initial_utilization_frac``) at the
    starting protocol parameters ``params.protocol`` (default the Aave v3 WETH preset).

    ## Episode End

    - Termination (``info["end_cause"] == "insolvency"``): the bad debt not covered by reserves
      (lenders' loss so far plus the underwater shortfall beyond the reserves left) exceeds
      ``insolvency_tolerance_frac`` (default 0.1%) of TVL.
    - Truncation (``"horizon"``): after ``horizon_h`` hours (default 720, i.e. 30 days of 1 h
      steps). ``info["end_counts"]`` counts episodes per end cause since the env was made.

    ## Arguments

    ``gym.make("levgym/Governance-v0", **kwargs)``:

    - ``num_positions`` (128): position slots per market.
    - ``scenarios`` (None): a scenario name, a list of names or a mapping name -> weight;
      None takes the registered names among :data:`DEFAULT_GOVERNANCE_SCENARIOS`.
    - ``horizon_h`` (720): episode length in hours (a multiple of the 1 h step).
    - ``params`` (None): ``EngineParams``, ``ProtocolParams`` or a preset name
      (``aave_v3_weth``, ``aave_v3_weth_comet_params``, ``conservative``); the starting parameters must lie
      within ``limits``.
    - ``limits`` (``StewardLimits()``): per-step caps and bounds of the action.
    - ``w_bad_debt`` (2.0), ``w_liquidation`` (0.5), ``w_efficiency`` (0.02), ``reward_scale``
      (1e4): reward weights and units.
    - ``insolvency_tolerance_frac`` (0.001): lenders' loss, as a share of TVL, that ends the
      episode.
    - ``scenario_overrides`` (None): ``{name: {knob: value}}`` passed to the scenarios.
    - ``split`` ("train"): "eval" draws scenario seeds from the held-out range.
    - ``backend`` ("numba", the fused CPU kernel; "numpy"; or "torch"), ``dtype`` ("float64"; float32
      with numpy or torch), ``device`` (None): the engine's.
    - ``render_mode``: None, ``"rgb_array"`` (prices over the last 24 h, debt-weighted
      health-factor histogram, parameters) or ``"ansi"`` (a one-line summary).
    - ``warmup_h`` (0): hours of calm burn-in the book has lived through when an episode
      starts (:mod:`levgym.warm`: one of 32 cached warmed books, chosen by the episode's book
      seed, grafted at the episode's first price); 0 draws a fresh book. Opt-in: it changes
      the starting state, not the id's dynamics; ``params.run.warmup_h`` is not read here.
    - ``warm_pool`` (None): with ``warmup_h`` > 0, None takes the book from the 32 cached
      books; an integer P from a pool of P books, each warmed when an episode first takes it
      (:class:`levgym.warm.WarmPool`; what ``levgym/Governance-v2`` and ``levgym/Liquidator-v3``
      use, P = 1024).
    - ``path_pool`` (None): None draws each episode's scenario path; an integer P keeps P paths
      per scenario, drawn and checked on first use: an episode of scenario seed ``x`` runs path
      ``x % P`` (drawn with seed ``x % P``, or ``EVAL_SEED_OFFSET + x % P`` on the eval split),
      and its start copies nothing (:class:`levgym.market.MarketRunner`). Memory: 8 bytes x 8
      fields x substeps x scenarios x P, refused above a quarter of the physical memory.
    - ``book_pool`` (None): None draws each episode's fresh book; an integer P takes book
      ``book_seed % P`` of a pool of P books, book ``b`` drawn from ``default_rng(b)`` on first
      use (with ``warmup_h`` > 0 no fresh book is drawn: the warmed book replaces it).
      Both pools are opt-in: fewer distinct paths and books for cheaper episode starts
      (docs/performance.md, "Episode starts from pools").

    ## Vectorized environment

    ``gym.make_vec("levgym/Governance-v0", num_envs=E, **kwargs)`` returns
    :class:`GovernanceVectorEnv`, E markets on one batched engine state, with same-step
    autoreset (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``). Env ``i`` of a
    vector env reset with ``seed=s`` behaves exactly as this env reset with ``seed=s + i``.
    For Stable-Baselines3 use ``levgym.envs.make_sb3_vec_env("levgym/Governance-v0", E)``.

    ## Version History

    - v0: initial release.
    """

    vector_class = GovernanceVectorEnv

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)


__all__ = [
    "DEFAULT_GOVERNANCE_SCENARIOS",
    "GOVERNANCE_ACTIONS",
    "GOVERNANCE_FEATURES",
    "GovernanceEnv",
    "GovernanceVectorEnv",
    "StewardLimits",
    "project_params",
]
