"""levgym/Governance-v1: a risk steward pulls the levers stewards pull (caps, rate curve, risk
parameters, circuit breakers) through persistent market regimes, a week at a time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..engine.backend import to_numpy
from ..engine.fused import _params_packed
from ..engine.jit import call_kernel
from ..engine.orders import Orders
from ..engine.params import EngineParams, ProtocolParams
from ..engine.rules import oracle_source, pool_price_usd, underwater
from ..engine.schema import DRIVER_SCHEMA, ENV_FIELDS, ORDER_FIELDS
from ..warm import WARM_BOOK_H, WARM_POOL
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import ScenarioSpec
from .features import Feature, index
from .formulas import (
    governance_market_features,
    governance_reward,
    steward_book_features,
    steward_capacity,
    steward_substep_flows,
    toxic_debt,
)
from .governance import GovernanceVectorEnv
from .steward import GOVERNANCE_V1_SCHEMA, StewardClock, StewardSchema
from .steward_program import STEWARD_COLUMNS, STEWARD_OUTPUTS, steward_finish, steward_step

_BIAS_ROW = [f.name for f in DRIVER_SCHEMA].index("oracle_bias_frac")
# the counters whose change over a substep makes the step's flows, in the order
# steward_substep_flows takes them
_FLOW_FIELDS = (
    "reserve_income_usd",
    "protocol_fee_usd",
    "repaid_by_liquidators_usd",
    "bad_debt_usd",
    "seized_collateral_asset",
)
# v0's parameter keys of the info (those that are not levers: the state's values after the step)
_V0_KEYS = ("ltv", "liquidation_threshold", "liquidation_bonus", "slope1_apr", "slope2_apr")
# the state fields the frame reads
_FEATURE_FIELDS = (
    "fundamental_usd", "oracle_usd", "pool_asset", "pool_debt", "debt_price_usd", "supply_usd",
    "base_rate_apr", "slope1_apr", "slope2_apr", "optimal_utilization_frac", "gas_gwei",
    "initial_collateral_asset", "initial_debt_usd", "supply_cap_asset", "borrow_cap_usd",
    "bad_debt_usd", "reserves_usd", "fundamental_start_usd",
)  # fmt: skip

# Health-factor thresholds: bucket edges, then the -10% and -25% liquidation lines (as v0).
HF_EDGES = (1.0, 1.05, 1.25, 1.5, 2.0)
HF_SHOCKS = (1.0 / 0.9, 1.0 / 0.75)

MARKET_FEATURES: tuple[Feature, ...] = (
    Feature("return_1h", "log return of the fundamental price over 1 h, x10", -10.0, 10.0),
    Feature("return_24h", "log return of the fundamental price over 24 h, x10", -10.0, 10.0),
    Feature("vol_short", "realized volatility, EWMA half-life 6 h, annualized", 0.0, 20.0),
    Feature("vol_long", "realized volatility, EWMA half-life 7 days, annualized", 0.0, 20.0),
    Feature("drawdown", "1 - fundamental / its maximum this episode", 0.0, 1.0),
    Feature("oracle_deviation", "oracle / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_deviation", "pool price / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_depth", "pool's debt-asset reserve / collateral value at the oracle", 0.0, 10.0),
    Feature("gas", "gas price / 100 gwei", 0.0, 100.0),
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
    Feature(
        "debt_toxic",
        "share of debt whose collateral is worth less than (1 + bonus) x debt (a liquidation "
        "lowers its HF: toxic)",
        0.0,
        1.0,
    ),
    Feature("debt_toxic_10", "share of debt that would be toxic if the oracle fell 10%", 0.0, 1.0),
    Feature("collateral_growth", "total collateral / collateral at the start", 0.0, 10.0),
    Feature("debt_growth", "total debt / debt at the start", 0.0, 10.0),
    Feature("supply_cap_use", "total collateral / supply cap", 0.0, 2.0),
    Feature("borrow_cap_use", "total debt / borrow cap", 0.0, 2.0),
    Feature("bad_debt", "bad debt written off this episode / TVL, x100 (percent)", 0.0, 100.0),
    Feature("shortfall", "underwater shortfall now / TVL, x100 (percent)", 0.0, 100.0),
    Feature("reserves", "protocol reserves / TVL, x100 (percent)", 0.0, 100.0),
)
"""The market and book part of a frame (the levers' part follows from the schema)."""


def lever_features(schema: StewardSchema) -> tuple[Feature, ...]:
    """Per lever its position within its bounds (a switch: 0 off, 1 on), then per lever with
    a cool-down the share of it still to run."""
    out = [
        Feature(
            v.name,
            "on (1) or off (0)"
            if v.is_switch
            else f"`{v.target}` as its position within its bounds (0 low, 1 high)",
            0.0,
            1.0,
        )
        for v in schema.levers
    ]
    out += [
        Feature(f"{v.name}_cooldown", "share of its cool-down still to run (0: may move)", 0.0, 1.0)
        for v in schema.levers
        if v.cooldown_h > 0
    ]
    return tuple(out)


def frame_features(schema: StewardSchema) -> tuple[Feature, ...]:
    """One frame of the observation: market and book, levers, time left."""
    return (
        *MARKET_FEATURES,
        *lever_features(schema),
        Feature("time_left", "share of the episode left", 0.0, 1.0),
    )


def stacked_features(
    frame: tuple[Feature, ...], history: int, every_h: float
) -> tuple[Feature, ...]:
    """The observation's features: ``history`` frames, newest first; frame ``k`` is the frame of
    ``k * every_h`` hours ago (suffix ``@-{k*every_h}h``; the newest has no suffix)."""
    out = list(frame)
    for k in range(1, history):
        lag = f"{k * every_h:g}"
        out += [
            Feature(f"{f.name}@-{lag}h", f"{f.description}, {lag} h ago", f.low, f.high)
            for f in frame
        ]
    return tuple(out)


GOVERNANCE_V1_FRAME = frame_features(GOVERNANCE_V1_SCHEMA)
GOVERNANCE_V1_ACTIONS = GOVERNANCE_V1_SCHEMA.action_features()
DEFAULT_HISTORY = 4
DEFAULT_HISTORY_EVERY_H = 6.0
GOVERNANCE_V1_FEATURES = stacked_features(
    GOVERNANCE_V1_FRAME, DEFAULT_HISTORY, DEFAULT_HISTORY_EVERY_H
)

DEFAULT_GOVERNANCE_V1_SCENARIOS = ("regime_switching", "regime_stress")


class GovernanceV1VectorEnv(LevgymVectorEnv):
    """Native vector env of ``levgym/Governance-v1`` (spec: :class:`GovernanceV1Env`'s
    docstring): E markets on one batched engine state, same-step autoreset; env ``i`` of a
    batch reset with ``seed=s`` behaves as ``GovernanceV1Env`` reset with ``seed=s + i``."""

    env_id = "levgym/Governance-v1"
    FRAME_FEATURES: ClassVar[tuple[Feature, ...]] = GOVERNANCE_V1_FRAME
    FEATURES = GOVERNANCE_V1_FEATURES
    ACTIONS = GOVERNANCE_V1_ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_GOVERNANCE_V1_SCENARIOS
    TERMINAL_CAUSE = "insolvency"
    PACKED = True  # numba keeps the state in packed buffers between substeps (same numbers)
    STEP_KERNEL: ClassVar[bool] = True
    """On packed buffers, step with the step kernels (:mod:`levgym.envs.steward_program`: the
    same numbers); ``False`` steps the engine substep by substep from Python."""
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
        num_positions: int = 64,
        scenarios: ScenarioSpec = None,
        horizon_h: float = 168.0,
        params: EngineParams | ProtocolParams | str | None = None,
        schema: StewardSchema | None = None,
        supply_cap_start: float = 1.5,
        borrow_cap_start: float = 1.5,
        history: int = DEFAULT_HISTORY,
        history_every_h: float = DEFAULT_HISTORY_EVERY_H,
        w_bad_debt: float = 2.0,
        w_liquidation: float = 0.5,
        w_efficiency: float = 0.02,
        reward_scale: float = 1e4,
        insolvency_tolerance_frac: float = 0.005,
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
        if schema is not None and not isinstance(schema, StewardSchema):
            raise ValueError(f"schema={schema!r} must be a levgym.envs.steward.StewardSchema")
        self.schema = schema or GOVERNANCE_V1_SCHEMA
        if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= 64:
            raise ValueError(f"history={history!r} is out of range; allowed an integer in [1, 64]")
        for name, v in (
            ("supply_cap_start", supply_cap_start),
            ("borrow_cap_start", borrow_cap_start),
        ):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not np.isfinite(v)
                or v <= 0
            ):
                raise ValueError(f"{name}={v!r} is out of range; allowed a finite number > 0")
        self.history = history
        self.supply_cap_start = float(supply_cap_start)
        self.borrow_cap_start = float(borrow_cap_start)
        # per instance: the frame follows the schema, the stack follows the history
        self.FRAME_FEATURES = frame_features(self.schema)
        self.ACTIONS = self.schema.action_features()
        self.FEATURES = stacked_features(self.FRAME_FEATURES, history, float(history_every_h))
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
        every = float(history_every_h) / self.step_h
        if not (np.isfinite(every) and every >= 1 and abs(every - round(every)) < 1e-9):
            raise ValueError(
                f"history_every_h={history_every_h!r} is not allowed; allowed a positive multiple "
                f"of the step, {self.step_h:g} h"
            )
        self.history_every_h = float(history_every_h)
        self._every = int(round(every))
        self._ring = (history - 1) * self._every + 1
        self.w_bad_debt = check_weight("w_bad_debt", w_bad_debt)
        self.w_liquidation = check_weight("w_liquidation", w_liquidation)
        self.w_efficiency = check_weight("w_efficiency", w_efficiency)
        self.reward_scale = check_weight("reward_scale", reward_scale)
        self.insolvency_tolerance_frac = check_weight(
            "insolvency_tolerance_frac", insolvency_tolerance_frac
        )
        e, nl = self.num_envs, len(self.schema.levers)
        self._fcol = index(self.FRAME_FEATURES)
        self._thresholds = HF_EDGES + HF_SHOCKS
        self._frame = np.zeros((e, len(self.FRAME_FEATURES)))
        self._frames = np.zeros((e, self._ring, len(self.FRAME_FEATURES)))
        self._lags = np.arange(history) * self._every
        self._switch = np.zeros((e, nl))  # switch levers' states (0 / 1); levels read the state
        self._low = np.zeros((e, nl))
        self._high = np.ones((e, nl))
        self.clock = StewardClock.new((e, nl))
        self._shortfall = np.zeros(e)
        self._observed = False
        self._targets = tuple(v.target for v in self.schema.levers)
        self._pause_col = self.schema.by_target().get("pause_oracle")
        self._freeze_col = self.schema.by_target().get("freeze_borrow")
        self.references = {"initial_collateral_asset": np.zeros(e), "initial_debt_usd": np.zeros(e)}
        """Per env, the values that relative lever bounds are multiples of (this episode's)."""
        self._levels = [(j, v.target) for j, v in enumerate(self.schema.levers) if not v.is_switch]
        # the frame's columns of the levers' positions and of their cool-downs
        self._lever_cols = np.array([self._fcol[v.name] for v in self.schema.levers])
        self._cooldown_levers = np.array(
            [j for j, v in enumerate(self.schema.levers) if v.cooldown_h > 0], dtype=np.int64
        )
        self._cooldown_cols = np.array(
            [self._fcol[f"{self.schema.levers[j].name}_cooldown"] for j in self._cooldown_levers],
            dtype=np.int64,
        )
        self._switches = [(j, v.target) for j, v in enumerate(self.schema.levers) if v.is_switch]
        # starting parameters of absolute-bounded levers must lie within their bounds
        self._check_protocol(self.params.protocol)

    def _check_protocol(self, value: ProtocolParams) -> None:
        for v in self.schema.levers:
            if v.is_switch or v.bounds_of is not None:
                continue
            x = float(getattr(value, v.target))
            if not v.low - 1e-12 <= x <= v.high + 1e-12:
                raise ValueError(
                    f"protocol.{v.target}={x:g} is outside lever {v.name}'s bounds; allowed "
                    f"[{v.low:g}, {v.high:g}] (change the params or the schema)"
                )

    # ------------------------------------------------------------------ levers
    def lever_values(self) -> np.ndarray:
        """Every lever's value now ``[E, L]``: levels from the engine state, switches 0 / 1."""
        s = self.core.state
        out = self._switch.copy()
        for j, target in self._levels:
            out[:, j] = to_numpy(getattr(s, target))
        return out

    def set_levers(self, values: np.ndarray, envs: np.ndarray | None = None) -> None:
        """Write lever values ``[E, L]`` (for the envs in the bool mask ``envs``, default all)
        into the engine state, clipped to each env's bounds and projected onto ``LTV <= LT``,
        ``LT * (1 + bonus) < 1``; the cool-downs are not started (a setting, not a change).
        Used by the hindsight ceiling to hold a fixed parameter set."""
        mask = np.ones(self.num_envs, dtype=bool) if envs is None else np.asarray(envs, bool)
        v = np.clip(np.asarray(values, dtype=np.float64), self._low, self._high)
        sw = ~self.schema.level_columns
        v[:, sw] = (v[:, sw] > 0.5).astype(np.float64)
        self.schema._project(v, self._fixed())
        cur = self.lever_values()
        v = np.where(mask[:, None], v, cur)
        self._write_levels(v)
        self._switch[:, sw] = v[:, sw]

    def _fixed(self) -> dict[str, np.ndarray]:
        s = self.core.state
        return {
            n: to_numpy(getattr(s, n))
            for n in ("ltv", "liquidation_threshold", "liquidation_bonus")
        }

    def _write_levels(self, values: np.ndarray) -> None:
        changes = {
            t: self.core.convert(np.ascontiguousarray(values[:, j])) for j, t in self._levels
        }
        self.core.set_fields(changes)

    def _orders(self) -> Orders | None:
        if not self._switches:
            return None
        fields = {t: self.core.convert(self._switch[:, j] != 0.0) for j, t in self._switches}
        return Orders(**fields)

    def _now_h(self) -> np.ndarray:
        return self._episode_length * self.step_h

    def _reset_agent(self, mask: np.ndarray) -> None:
        s = self.core.state
        refs = {
            "initial_collateral_asset": to_numpy(s.initial_collateral_asset),
            "initial_debt_usd": to_numpy(s.initial_debt_usd),
        }
        for name, value in refs.items():
            self.references[name][mask] = value[mask]
        low, high = self.schema.bounds(refs, (self.num_envs,))
        self._low[mask], self._high[mask] = low[mask], high[mask]
        self._switch[mask] = 0.0
        self.clock.reset(mask)
        caps = {
            "supply_cap_asset": self.supply_cap_start * refs["initial_collateral_asset"],
            "borrow_cap_usd": self.borrow_cap_start * refs["initial_debt_usd"],
        }
        levels = {t for _, t in self._levels}
        changes = {}
        for name, value in caps.items():
            if name in levels:
                cur = to_numpy(getattr(s, name)).copy()
                cur[mask] = value[mask]
                changes[name] = self.core.convert(cur)
        if changes:
            self.core.set_fields(changes)
        self.schema.check_contains(self.lever_values()[mask], self._low[mask], self._high[mask])
        self._shortfall[mask] = self._shortfall_now()[mask]

    def _shortfall_now(self) -> np.ndarray:
        """Underwater shortfall per env (debt-asset units): at the oracle, except where the
        oracle is paused, at the price it would report unpaused (the source price with the
        scenario's bias), so that a pause hides no loss."""
        core = self.core
        short = core.aggregates(self._thresholds).shortfall.copy()
        price = self._unpaused_price()
        if price is None:
            return short
        s = core.state
        paused = np.flatnonzero(~np.isnan(price))
        c = to_numpy(s.collateral_asset)[paused]
        d = to_numpy(s.debt_usd)[paused]
        dp = to_numpy(s.debt_price_usd)[paused]
        short[paused] = underwater(c, d, price[paused, None], dp[:, None]).sum(axis=1)
        return short

    def _unpaused_price(self) -> np.ndarray | None:
        """Per env the price the oracle would report unpaused (the source price with the
        scenario's bias) where it is paused, NaN elsewhere; ``None`` when no env is paused."""
        col = self._pause_col
        if col is None or not self._switch[:, col].any():
            return None
        field = self.core.field
        w = self.params.market.oracle_pool_weight_frac
        fund = field("fundamental_usd")
        pool = pool_price_usd(field("pool_asset"), field("pool_debt"), field("debt_price_usd"))
        price = oracle_source(fund, pool, w) * (1.0 + self._bias())
        return np.where(self._switch[:, col] != 0.0, price, np.nan)

    def _bias(self) -> np.ndarray:
        """The scenario's oracle bias in each env's last substep."""
        core = self.core
        t = np.clip(core.t - 1, 0, core.horizon_substeps - 1)
        return core.bank[_BIAS_ROW, core.bank_rows, t].astype(np.float64)

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        if self.STEP_KERNEL and self.core.packed is not None:
            return self._advance_packed(actions)
        core = self.core
        shortfall0 = self._shortfall.copy()
        values = self.lever_values()
        new, changed = self.schema.apply(
            values, actions, self.clock, self._now_h(), self._low, self._high, self._fixed()
        )
        self._write_levels(new)
        sw = ~self.schema.level_columns
        self._switch[:, sw] = new[:, sw]
        orders = self._orders()
        # the counters through the runner's fields (a view of its packed buffers when packed:
        # what must outlive a substep is copied)
        fld = core.field
        bad0 = fld("bad_debt_usd").copy()
        liqs0 = fld("liquidations").copy()
        e = self.num_envs
        liq_loss = np.zeros(e)
        revenue = np.zeros(e)
        liquidated = np.zeros(e)
        bad = np.zeros(e)
        for _ in range(self.substeps_per_step):
            flows0 = [fld(k).copy() for k in _FLOW_FIELDS]
            core.substep(orders)
            revenue, liquidated, bad, liq_loss = steward_substep_flows(
                revenue, liquidated, bad, liq_loss, *flows0, *(fld(k) for k in _FLOW_FIELDS),
                fld("oracle_usd"), fld("debt_price_usd"),
            )  # fmt: skip
        s = core.state

        agg = core.aggregates(self._thresholds)
        dp = to_numpy(s.debt_price_usd)
        tvl = to_numpy(s.initial_collateral_asset * s.fundamental_start_usd)
        shortfall = self._shortfall_now()
        self._shortfall = shortfall
        coll_value = agg.total_collateral_asset * to_numpy(s.oracle_usd)
        # the capacity is the levers' (LTV times the collateral, capped, none while frozen):
        # the reward's LTV factor is 1
        reward, r_rev, r_bad, r_liq, r_eff, economic_bad, capacity, lender_loss, _, terminated = (
            governance_reward(
                revenue, bad, shortfall, shortfall0, dp, liq_loss, 1.0,
                self._capacity(coll_value, dp), tvl, to_numpy(s.lender_loss_usd),
                to_numpy(s.reserves_usd), *self._weights(),
            )
        )  # fmt: skip
        info = {
            "revenue_usd": revenue,
            "revenue_value_usd": revenue,
            "bad_debt_usd": to_numpy(s.bad_debt_usd) - bad0,
            "bad_debt_value_usd": bad,
            "shortfall_usd": shortfall * dp,
            "economic_bad_debt_usd": economic_bad,
            "liquidation_loss_usd": liq_loss,
            "borrow_capacity_usd": capacity,
            "reward_revenue": r_rev,
            "reward_bad_debt": r_bad,
            "reward_liquidation": r_liq,
            "reward_efficiency": r_eff,
            "liquidations": to_numpy(s.liquidations) - liqs0,
            "liquidated_debt_usd": liquidated,
            "lender_loss_usd": lender_loss,
            "tvl_usd": tvl,
            "levers_changed": changed.sum(axis=1).astype(np.float64),
        }
        for j, v in enumerate(self.schema.levers):
            info[v.target] = new[:, j].copy()
        for name in (
            "ltv",
            "liquidation_threshold",
            "liquidation_bonus",
            "slope1_apr",
            "slope2_apr",
        ):
            info.setdefault(name, to_numpy(getattr(s, name)).copy())  # v0's parameter keys
        return reward, terminated, info

    def _capacity(self, coll_value: np.ndarray, dp: np.ndarray) -> np.ndarray:
        """Borrowing the parameters allow now (USD): LTV times the collateral value, at most the
        borrow cap, none while new borrowing is frozen."""
        s = self.core.state
        col = self._freeze_col
        frozen = 0.0 if col is None else self._switch[:, col]
        return steward_capacity(to_numpy(s.ltv), coll_value, to_numpy(s.borrow_cap_usd), dp, frozen)

    _weights = GovernanceVectorEnv._weights
    """The reward's constants in the order :func:`governance_reward` takes them (v0's)."""

    # ------------------------------------------------------------------ the step kernels
    def _kernel_buffers(self) -> None:
        """Scratch and constants of the step kernels (made once, on the first packed step)."""
        nl = len(self.schema.levers)
        self._step_kernel_buffers(len(STEWARD_OUTPUTS) + nl, (1.0, 24.0))
        s = self.substeps_per_step
        self._k_ratios = np.ones((self.num_envs, s + 2))
        self._k_logs = np.zeros((self.num_envs, s + 2))
        self._k_table = self.schema.table()
        rows = []
        for v in self.schema.levers:
            rows.append((ORDER_FIELDS if v.is_switch else ENV_FIELDS).index(v.target))
        self._k_rows = np.array(rows, dtype=np.int64)
        by_target = self.schema.by_target()
        self._k_cols = np.array([by_target.get(n, -1) for n in STEWARD_COLUMNS], dtype=np.int64)
        self._k_no_price = np.full(self.num_envs, np.nan)
        # the info's keys in the array path's order, each with its row of the output
        names = list(STEWARD_OUTPUTS[2:])
        names.insert(1, "revenue_value_usd")  # the revenue, valued in USD (as revenue_usd)
        key_rows = [STEWARD_OUTPUTS.index(n) for n in names if n != "revenue_value_usd"]
        key_rows.insert(1, STEWARD_OUTPUTS.index("revenue_usd"))
        self._k_keys = (*names, *self._targets)
        self._k_key_rows = np.array(
            key_rows + [len(STEWARD_OUTPUTS) + j for j in range(nl)], dtype=np.int64
        )
        self._k_extra = tuple(n for n in _V0_KEYS if n not in self._targets)
        self._k_lags = np.ascontiguousarray(self._lags, dtype=np.int64)
        self._k_frame_low = np.ascontiguousarray(self._frame_low)
        self._k_frame_high = np.ascontiguousarray(self._frame_high)

    def _kernel_constants(self) -> np.ndarray:
        """The steward's constants (:data:`STEWARD_CONSTANTS`; remade when a weight changes)."""
        cached = getattr(self, "_k_sc", None)
        if cached is None or cached[0] != self.weights_version:
            sc = np.array(
                [self.step_h, self.schema.margin, self.schema.on_target_tol, *self._weights()]
            )
            cached = self._k_sc = (self.weights_version, sc)
        return cached[1]

    def _advance_packed(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`_advance` and the next :meth:`_observe` in two kernel calls (backend numba)."""
        core = self.core
        p, tr = core.packed, core.tracker
        if not hasattr(self, "_k_ic"):
            self._kernel_buffers()
        ic, fc, sc = self._k_ic, self._k_fc, self._kernel_constants()
        ic[1] = p.substep_index % ic[2]
        ic[3] = tr.pos
        fc[0] = p.time_h
        out = self._k_out
        clock = self.clock
        t0 = time.perf_counter()
        call_kernel(
            steward_step, self._k_threads,
            p.env, core.bank, core.bank_rows, core.t, core.noise_key, _params_packed(self.params),
            self._k_orders, p.twap, p.posf, p.posb, p.kind, self._k_drv, self._k_noise,
            self._k_rounds, self._k_step_rounds, tr.prices, tr.max_fundamental, tr.filled, ic,
            fc, sc, actions, self._switch, clock.last_change_h, clock.on_since_h, self._low,
            self._high, self._k_table, self._k_rows, self._k_cols, self._episode_length,
            self._k_ratios, out,
        )  # fmt: skip
        core.engine_seconds += time.perf_counter() - t0
        h = self.params.run.substep_h
        for _ in range(self.substeps_per_step):
            p.time_h = p.time_h + h  # as the kernel's clock and the engine's substep add it
        p.substep_index += self.substeps_per_step
        tr.pos = (tr.pos + self.substeps_per_step) % tr.length
        core.changed()
        core.count_rounds(self._k_step_rounds, self.substeps_per_step)
        # the tracker's logarithms with numpy (as its array path takes them), then the rest
        np.log(self._k_ratios, out=self._k_logs)
        price = self._unpaused_price()
        self._finish(self.substeps_per_step, True, self._k_no_price if price is None else price, 1)
        self._observed = True
        rows = out.copy()
        extra = self._k_extra
        if self.scalar_info:  # a single env: its info values as Python floats, in one call
            info = dict(zip(self._k_keys, rows[self._k_key_rows, 0].tolist(), strict=True))
            for n in extra:
                info[n] = core.field(n).item(0)
        else:
            info = dict(zip(self._k_keys, rows[self._k_key_rows], strict=True))
            for n in extra:
                info[n] = core.field(n).copy()
        return rows[0], rows[1] != 0.0, info

    def _finish(self, nsub: int, step: bool, price: np.ndarray, offset: int) -> None:
        p, tr = self.core.packed, self.core.tracker
        clock = self.clock
        steward_finish(
            p.env, p.posf, self.core.t, tr.prices, tr._var, tr.max_fundamental, self._k_ic,
            self._k_fc, self._kernel_constants(), self._k_thresholds, self._k_logs, nsub,
            step, price, self._shortfall, self._switch, clock.last_change_h,
            clock.on_since_h, self._low, self._high, self._k_table, self._k_rows,
            self._k_cols, self._episode_length, offset, self._frame, self._frames,
            self._k_lags, self._k_frame_low, self._k_frame_high, self._obs, self._k_out,
            self._k_parallel,
        )  # fmt: skip

    def _observe_packed(self) -> None:
        """:meth:`_observe` with the finishing kernel (backend numba)."""
        if not hasattr(self, "_k_ic"):
            self._kernel_buffers()
        tr = self.core.tracker
        f = tr.fundamental
        pos = tr.pos
        ratios = self._k_ratios[:, :2]
        np.divide(f[:, pos], f[:, (pos - tr.lag(1.0)) % tr.length], out=ratios[:, 0])
        np.divide(f[:, pos], f[:, (pos - tr.lag(24.0)) % tr.length], out=ratios[:, 1])
        np.log(ratios, out=self._k_logs[:, :2])
        self._finish(0, False, self._k_no_price, 0)

    # ------------------------------------------------------------------ observation
    def _observe(self, envs: np.ndarray | None = None) -> None:
        if self._observed:  # the step kernel has written this step's observation
            self._observed = False
            return
        if self.STEP_KERNEL and self.core.packed is not None:
            self._observe_packed()
            return
        core = self.core
        s = core.state
        tr = core.tracker
        agg = core.aggregates(self._thresholds)
        f = self._frame
        g = {name: to_numpy(getattr(s, name)) for name in _FEATURE_FIELDS}
        dp = g["debt_price_usd"]
        total_debt, total_coll = agg.total_debt, agg.total_collateral_asset
        market = governance_market_features(
            tr.log_return(1.0), tr.log_return(24.0), tr.var_short, tr.var_long, tr.max_fundamental, tr.substeps_per_year, g["fundamental_usd"],
            g["oracle_usd"], g["pool_asset"], g["pool_debt"], dp, total_debt, total_coll,
            g["supply_usd"], g["base_rate_apr"], g["slope1_apr"], g["slope2_apr"],
            g["optimal_utilization_frac"],
        )  # fmt: skip
        toxic, toxic_10 = self._toxic_debt()
        book = steward_book_features(
            total_debt, total_coll, dp, *agg.debt_below_usd.T, toxic, toxic_10,
            g["initial_collateral_asset"], g["initial_debt_usd"], g["supply_cap_asset"],
            g["borrow_cap_usd"], g["bad_debt_usd"], self._shortfall, g["reserves_usd"],
            g["initial_collateral_asset"] * g["fundamental_start_usd"],
        )  # fmt: skip
        # the frame: market features 0-7, gas, market 8-10, the book, the levers, time left
        for j, v in enumerate((*market[:8], g["gas_gwei"] / 100.0, *market[8:], *book)):
            f[:, j] = v
        values = self.lever_values()
        now = self._now_h()
        f[:, self._lever_cols] = self.schema.positions(values, self._low, self._high)
        left = self.schema.cooldown_left(self.clock, now)
        f[:, self._cooldown_cols] = left[:, self._cooldown_levers]
        f[:, -1] = 1.0 - core.t / core.horizon_substeps
        np.clip(f, self._frame_low, self._frame_high, out=f)
        np.copyto(f, 0.0, where=np.isnan(f))
        # the history: frame of step t at ring slot t % R; a new episode fills every slot
        t = self._episode_length
        fresh = t == 0
        slot = t % self._ring
        self._frames[np.arange(self.num_envs), slot] = f
        if fresh.any():
            self._frames[fresh] = f[fresh][:, None, :]
        lagged = (t[:, None] - self._lags[None, :]) % self._ring
        # before a frame existed (early in an episode) the oldest recorded one stands in
        lagged = np.where(self._lags[None, :] <= t[:, None], lagged, 0)
        stack = self._frames[np.arange(self.num_envs)[:, None], lagged]
        self._store_observation(stack.reshape(self.num_envs, -1))

    @property
    def _frame_low(self) -> np.ndarray:
        return self._obs_low[: len(self.FRAME_FEATURES)]

    @property
    def _frame_high(self) -> np.ndarray:
        return self._obs_high[: len(self.FRAME_FEATURES)]

    def _toxic_debt(self) -> tuple[np.ndarray, np.ndarray]:
        """Debt (USD) in toxic positions (collateral value at the oracle below ``1 + bonus``
        times the debt, where a liquidation lowers the HF: Warmuz et al. 2022) now and after a
        10% oracle fall (:func:`levgym.envs.formulas.toxic_debt` summed over positions)."""
        s = self.core.state
        toxic, toxic_10 = toxic_debt(
            to_numpy(s.collateral_asset), to_numpy(s.debt_usd),
            to_numpy(s.oracle_usd)[:, None], to_numpy(s.debt_price_usd)[:, None],
            to_numpy(s.liquidation_bonus)[:, None],
        )  # fmt: skip
        return toxic.sum(axis=1), toxic_10.sum(axis=1)

    def _reset_info(self, info: dict[str, Any]) -> None:
        # the two fields, not core.state (in packed mode a copy of the whole batch's state)
        field = self.core.field
        info["tvl_usd"] = field("initial_collateral_asset") * field("fundamental_start_usd")

    # ------------------------------------------------------------------ rendering
    def summary_line(self, env: int) -> str:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        tvl = g(s.initial_collateral_asset * s.fundamental_start_usd)
        values = self.lever_values()[env]
        levers = " ".join(f"{v.name} {values[j]:.4g}" for j, v in enumerate(self.schema.levers))
        return (
            f"{self.env_id.split('/')[1]} env {env} [{self.core.scenario_of(env)}] step "
            f"{int(self._episode_length[env])}/{self.max_steps}: price {g(s.fundamental_usd):.1f} "
            f"oracle {g(s.oracle_usd):.1f} | {levers} | liquidations {g(s.liquidations):.0f} "
            f"bad debt {100 * g(s.bad_debt_usd) / tvl:.3f}% TVL | return "
            f"{self._episode_return[env]:.3f}"
        )

    def render_text(self, env: int) -> list[str]:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        tvl = g(s.initial_collateral_asset * s.fundamental_start_usd)
        values = self.lever_values()[env]
        lines = [
            f"scenario  {self.core.scenario_of(env)}",
            f"step      {int(self._episode_length[env])} / {self.max_steps}",
        ]
        lines += [f"{v.name[:20]:<20} {values[j]:.4g}" for j, v in enumerate(self.schema.levers)]
        lines += [
            f"liqs      {g(s.liquidations):.0f}",
            f"bad debt  {100 * g(s.bad_debt_usd) / tvl:.3f}% TVL",
            f"return    {self._episode_return[env]:.3f}",
        ]
        return lines


class GovernanceV1Env(LevgymEnv):
    """levgym/Governance-v1: a risk steward pulls caps, rates, risk parameters and circuit breakers
    through persistent market regimes, a week at a time.

    ## Description

    One market of the levgym engine (a volatile collateral asset, a stable debt asset, a book of
    ``num_positions`` borrower slots, a constant-product pool where liquidators sell, a
    Chainlink-style oracle, a kinked rate curve) runs through a Markov-switching scenario: calm,
    turbulent and crash regimes that last hours to days (``regime_switching`` and
    ``regime_stress``, :mod:`levgym.scenarios.regimes`). Every hour the agent, as the protocol's
    risk steward, pulls the levers stewards pull on Aave: supply and borrow caps, the LTV and
    liquidation threshold, the liquidation bonus and close factor, slope2 and the kink of the rate
    curve, and two circuit breakers (freeze new borrowing; hold a stale or manipulated oracle).
    Each lever has bounds, a per-change limit and a cool-down (the rows of
    :data:`levgym.envs.steward.GOVERNANCE_V1_SCHEMA`, tabled on the docs' Governance-v1 page).
    Tightening LT on a live book liquidates users; caps, rates and the freeze do not, but they
    cost revenue and borrowing capacity: the agent faces that trade-off, and a policy that reads
    the regime can beat any fixed parameter set.

    ## Action Space

    ``Box(-1, 1, (10,), float32)``, one component per lever; values outside ``[-1, 1]`` are
    clipped, NaN or infinite values and a wrong shape raise ``ValueError``.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `supply_cap` | supply cap of the collateral (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 1 | `borrow_cap` | borrow cap of the debt asset (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 2 | `ltv` | loan-to-value limit of new borrowing (kept <= LT): change, x its per-change limit | -1 | 1 |
    | 3 | `liquidation_threshold` | liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 4 | `liquidation_bonus` | liquidation bonus (a dynamic bonus against toxic spirals): change, x its per-change limit | -1 | 1 |
    | 5 | `close_factor` | share of debt one liquidation may repay above the full-close HF: change, x its per-change limit | -1 | 1 |
    | 6 | `slope2` | rate slope above the kink (Chaos Labs' slope2 oracle): change, x its per-change limit | -1 | 1 |
    | 7 | `optimal_utilization` | kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 8 | `freeze_borrow` | circuit breaker: freeze new supply and borrowing: on when > 0.5 | -1 | 1 |
    | 9 | `pause_oracle` | hold the oracle at its last answer (a stale or manipulated feed): on when > 0.5 | -1 | 1 |

    A level lever moves by ``f = (|a| - deadband) / (1 - deadband)`` of its per-change limit
    (up for ``a > 0``; caps by a share of their value, the others by absolute steps), within its
    bounds, and only when its cool-down has passed since its last change; a switch is on while
    its component is above 0.5, may go off at any time, goes off by itself after its longest
    on-time and may go on again only after its cool-down. Then ``LT * (1 + bonus) <= 0.999``
    (LT gives way) and ``LTV <= LT`` (:func:`levgym.envs.steward.project_risk`). Defaults: caps
    +100% / -50% once per 3 days within [0.25, 4] x their starting reference; LTV +0.5% / -1%,
    LT and bonus 0.5% per hour; close factor 0.25 per hour in [0.2, 1]; slope2 0.25 APR and the
    kink 5% once per 6 hours; the freeze at most 24 h on, 6 h off before it goes on again; the
    oracle pause at most 2 h on, 24 h off before it goes on again. An all-zero action holds
    every lever (switches off).

    ## Observation Space

    ``Box(low, high, (46 * history,), float32)``: ``history`` frames (default 4), newest first,
    frame ``k`` describing the market ``k * history_every_h`` hours ago (default 6 h; before the
    episode had that much history, its first frame stands in). Each frame is the table below,
    each entry clipped to its bounds; in the stacked vector entry ``i`` of frame ``k`` is at
    ``46 * k + i`` and is named ``name@-{lag}h``. TVL is the collateral value at the start of
    the episode. With ``history=1`` the observation is one frame: the form for a recurrent
    policy (sb3-contrib's ``RecurrentPPO`` with ``MlpLstmPolicy`` takes it as it is).

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
    | 8 | `gas` | gas price / 100 gwei | 0 | 100 |
    | 9 | `utilization` | total debt / lenders' supply | 0 | 1 |
    | 10 | `borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 11 | `aggregate_ltv` | total debt / collateral value at the oracle | 0 | 2 |
    | 12 | `debt_hf_below_1` | share of debt with HF < 1 | 0 | 1 |
    | 13 | `debt_hf_1_105` | share of debt with 1 <= HF < 1.05 | 0 | 1 |
    | 14 | `debt_hf_105_125` | share of debt with 1.05 <= HF < 1.25 | 0 | 1 |
    | 15 | `debt_hf_125_150` | share of debt with 1.25 <= HF < 1.5 | 0 | 1 |
    | 16 | `debt_hf_150_200` | share of debt with 1.5 <= HF < 2 | 0 | 1 |
    | 17 | `debt_hf_above_200` | share of debt with HF >= 2 | 0 | 1 |
    | 18 | `debt_liquidatable_10` | share of debt liquidatable if the oracle fell 10% | 0 | 1 |
    | 19 | `debt_liquidatable_25` | share of debt liquidatable if the oracle fell 25% | 0 | 1 |
    | 20 | `debt_toxic` | share of debt whose collateral is worth less than (1 + bonus) x debt (a liquidation lowers its HF: toxic) | 0 | 1 |
    | 21 | `debt_toxic_10` | share of debt that would be toxic if the oracle fell 10% | 0 | 1 |
    | 22 | `collateral_growth` | total collateral / collateral at the start | 0 | 10 |
    | 23 | `debt_growth` | total debt / debt at the start | 0 | 10 |
    | 24 | `supply_cap_use` | total collateral / supply cap | 0 | 2 |
    | 25 | `borrow_cap_use` | total debt / borrow cap | 0 | 2 |
    | 26 | `bad_debt` | bad debt written off this episode / TVL, x100 (percent) | 0 | 100 |
    | 27 | `shortfall` | underwater shortfall now / TVL, x100 (percent) | 0 | 100 |
    | 28 | `reserves` | protocol reserves / TVL, x100 (percent) | 0 | 100 |
    | 29 | `supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 30 | `borrow_cap` | `borrow_cap_usd` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 31 | `ltv` | `ltv` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 32 | `liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 33 | `liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 34 | `close_factor` | `close_factor` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 35 | `slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 36 | `optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 37 | `freeze_borrow` | on (1) or off (0) | 0 | 1 |
    | 38 | `pause_oracle` | on (1) or off (0) | 0 | 1 |
    | 39 | `supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 40 | `borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 41 | `slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 42 | `optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 43 | `freeze_borrow_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 44 | `pause_oracle_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 45 | `time_left` | share of the episode left | 0 | 1 |

    ## Rewards

    In basis points of TVL (``reward_scale = 1e4`` per unit of TVL), per step:

    ``reward = revenue - w_bad_debt * bad_debt - w_liquidation * liquidation_loss
    + w_efficiency * capacity * step_h / 8760``

    - ``revenue``: reserve income (the reserve factor's share of interest) valued in USD at each
      substep's debt price, plus the protocol's fee on liquidation bonuses (USD at the oracle).
      Governance-v0 added the reserve income in debt-asset units; v1 converts it.
    - ``bad_debt``: economic bad debt in USD: debt written off plus the change in the underwater
      shortfall (debt above the value of its collateral at the oracle; while the oracle is
      paused, at the price it would report unpaused, so a pause hides no loss).
    - ``liquidation_loss``: what users lost to liquidations, the collateral value seized beyond
      the debt repaid, at the oracle after each substep.
    - ``capacity``: the borrowing the levers allow, LTV times the collateral value at the oracle,
      at most the borrow cap, and none while borrowing is frozen, valued at ``w_efficiency`` a
      year.

    Defaults ``w_bad_debt = 2``, ``w_liquidation = 0.5``, ``w_efficiency = 0.02``, as v0.

    ## Starting State

    Each episode draws a scenario from ``scenarios`` (default ``regime_switching`` and
    ``regime_stress``, equal weights), a scenario path and a fresh book at the starting
    parameters ``params.protocol`` (default the Aave v3 WETH preset), as v0. The caps start at
    ``supply_cap_start`` (1.5) times the episode's initial collateral and ``borrow_cap_start``
    (1.5) times its initial debt; the switches start off and every cool-down has passed.

    ## Episode End

    - Termination (``info["end_cause"] == "insolvency"``): lenders' loss so far plus the
      underwater shortfall beyond the reserves left exceeds ``insolvency_tolerance_frac``
      (default 0.5%) of TVL.
    - Truncation (``"horizon"``): after ``horizon_h`` hours (default 168, a week of 1 h steps).

    ## Arguments

    ``gym.make("levgym/Governance-v1", **kwargs)``:

    - ``num_positions`` (64), ``scenarios`` (None: the regime mixture), ``horizon_h`` (168),
      ``params`` (None: Aave v3 WETH; the starting parameters must lie within the levers'
      bounds), ``scenario_overrides``, ``split``, ``backend``, ``dtype``, ``device``,
      ``render_mode``, ``warmup_h`` (0), ``warm_pool`` (None), ``path_pool`` (None),
      ``book_pool`` (None): as v0.
    - ``schema`` (``GOVERNANCE_V1_SCHEMA``): the steward's levers
      (:class:`levgym.envs.steward.StewardSchema`); the action and the frame follow it.
    - ``supply_cap_start`` (1.5), ``borrow_cap_start`` (1.5): starting caps as multiples of the
      episode's initial collateral and debt.
    - ``history`` (4), ``history_every_h`` (6): frames in the observation and hours between them.
    - ``w_bad_debt`` (2.0), ``w_liquidation`` (0.5), ``w_efficiency`` (0.02), ``reward_scale``
      (1e4), ``insolvency_tolerance_frac`` (0.005).

    ## Vectorized environment

    ``gym.make_vec("levgym/Governance-v1", num_envs=E, **kwargs)`` returns
    :class:`GovernanceV1VectorEnv`, E markets on one batched engine state, with same-step
    autoreset. Env ``i`` of a vector env reset with ``seed=s`` behaves exactly as this env reset
    with ``seed=s + i``; for Stable-Baselines3 use
    ``levgym.envs.make_sb3_vec_env("levgym/Governance-v1", E)``.

    ## Version History

    - v2 (``levgym/Governance-v2``, :class:`GovernanceV2Env`): episodes start from warmed
      books by default; the rest as v1.
    - v1: the steward's levers (supply and borrow caps, LTV, LT, bonus, close factor, slope2,
      kink, borrowing freeze, oracle pause) with per-change limits and cool-downs replace v0's
      four capped changes; Markov-switching regime scenarios; week-long episodes; a stack of
      recent frames in the observation; revenue in USD (v0 added reserve income in debt-asset
      units); shortfall valued unpaused while the oracle is paused; capacity capped by the
      borrow cap and zero while frozen; insolvency tolerance 0.5% of TVL.
    - v0: initial release (still registered, unchanged).
    """

    vector_class = GovernanceV1VectorEnv

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)


class GovernanceV2VectorEnv(GovernanceV1VectorEnv):
    """``levgym/Governance-v2``: :class:`GovernanceV1VectorEnv` whose episodes start from warmed
    books by default (see :class:`GovernanceV2Env`)."""

    env_id = "levgym/Governance-v2"

    def __init__(
        self,
        num_envs: int = 1,
        *,
        warmup_h: float = WARM_BOOK_H,
        warm_pool: int | None = WARM_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_envs, warmup_h=warmup_h, warm_pool=warm_pool, **kwargs)


class GovernanceV2Env(GovernanceV1Env):
    """levgym/Governance-v2: ``levgym/Governance-v1`` whose episodes start from a book with a
    history.

    Everything is as in ``levgym/Governance-v1`` (its docstring is the spec: description,
    actions, observations, rewards, episode end, vectorized env) except the starting state:

    - Each episode's book has lived through ``warmup_h`` hours (default 336, two weeks) of a
      calm burn-in before t = 0 (a log-price Brownian bridge at the calibrated calm volatility
      back to the market's start price, :func:`levgym.simulation.calm_bridge`): positions that
      a calm fortnight liquidates are gone, loopers have re-levered, borrowers have arrived and
      left. The book is then moved onto the episode's first price, every position keeping its
      USD value and health factor; counters start at zero.
    - The book is book ``book_seed % warm_pool`` of a pool of ``warm_pool`` (default 1024)
      warmed books (:class:`levgym.warm.WarmPool`): book ``j`` depends on ``j`` alone and is
      warmed when an episode first takes it, then kept for the process and on disk for the
      next one (``~/.cache/levgym/warm``; ``LEVGYM_WARM_CACHE`` moves it or, ``off``, turns
      it off). The first use of a book costs about a simulation of ``warmup_h`` hours of it
      (about 15 ms for 64 slots batched); a book already warmed costs only the graft.

    ``gym.make("levgym/Governance-v2", **kwargs)`` takes v1's arguments with the defaults
    ``warmup_h=336`` and ``warm_pool=1024``; ``warmup_h=0`` starts from fresh books as v1 does.
    ``gym.make_vec`` returns :class:`GovernanceV2VectorEnv`.

    ## Version History

    - v2: episodes start from warmed books by default (``warmup_h=336`` from a pool of 1024
      books warmed on first use); the same seed and actions give different paths than v1
      (the starting books differ); the dynamics, actions, observations and rewards are v1's.
    - v1, v0: see ``levgym/Governance-v1``.
    """

    vector_class = GovernanceV2VectorEnv


__all__ = [
    "DEFAULT_GOVERNANCE_V1_SCENARIOS",
    "GOVERNANCE_V1_ACTIONS",
    "GOVERNANCE_V1_FEATURES",
    "GOVERNANCE_V1_FRAME",
    "GovernanceV1Env",
    "GovernanceV1VectorEnv",
    "GovernanceV2Env",
    "GovernanceV2VectorEnv",
    "frame_features",
    "stacked_features",
]
