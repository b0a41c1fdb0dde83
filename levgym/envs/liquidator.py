"""levgym/Liquidator-v1: one liquidator among background keepers, with inventory and a perp hedge."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..engine.backend import to_numpy
from ..engine.fused import _params_packed
from ..engine.jit import call_kernel
from ..engine.orders import Orders
from ..engine.params import HOURS_PER_YEAR, EngineParams, ProtocolParams
from ..engine.rules import sell_asset
from ..warm import WARM_BOOK_H, WARM_POOL
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import ScenarioSpec
from .features import Feature, index
from .formulas import (
    liquidator_action,
    liquidator_carry,
    liquidator_features,
    liquidator_fills,
    liquidator_hedge,
    liquidator_reward,
    liquidator_sale,
    log_return,
    perp_basis,
)
from .programs import (
    AGENT,
    LIQUIDATOR_CONSTANTS,
    LIQUIDATOR_OUTPUTS,
    liquidator_observe,
    liquidator_step,
)

# The engine's counters of the outside liquidator's flows (levgym.engine.orders).
_AGENT_COUNTERS = (
    "agent_sale_debt",
    "agent_sale_mid_debt",
    "agent_seized_asset",
    "agent_repaid_usd",
    "agent_gas_usd",
)


# state fields read by liquidator_features, in its argument order (the aggregates come between)
_FEATURE_FIELDS = (
    "fundamental_usd", "oracle_usd", "pool_asset", "pool_debt", "debt_price_usd",
    "supply_usd", "gas_gwei", "liquidation_bonus",
)  # fmt: skip

LIQUIDATOR_ACTIONS: tuple[Feature, ...] = (
    Feature(
        "take", "share of each liquidation to claim, (a + 1) / 2 times `max_share_frac`", -1.0, 1.0
    ),
    Feature(
        "sell", "share of the inventory to sell into the pool this step, (a + 1) / 2", -1.0, 1.0
    ),
    Feature(
        "hedge", "short perp notional / equity, (a + 1) / 2 times `max_hedge_ratio`", -1.0, 1.0
    ),
)

LIQUIDATOR_V2_ACTIONS: tuple[Feature, ...] = (
    *LIQUIDATOR_ACTIONS[:2],
    Feature(
        "hedge",
        "short perp notional / inventory value, 1 + a times `max_hedge_deviation`",
        -1.0,
        1.0,
    ),
)

OPPORTUNITY_SHOCKS = (0.0, 0.02, 0.05, 0.10)

LIQUIDATOR_FEATURES: tuple[Feature, ...] = (
    Feature("return_10m", "log return of the fundamental over the last substep, x100", -10.0, 10.0),
    Feature("return_1h", "log return of the fundamental over 1 h, x10", -10.0, 10.0),
    Feature("vol_short", "realized volatility, EWMA half-life 6 h, annualized", 0.0, 20.0),
    Feature("vol_long", "realized volatility, EWMA half-life 7 days, annualized", 0.0, 20.0),
    Feature("drawdown", "1 - fundamental / its maximum this episode", 0.0, 1.0),
    Feature("oracle_deviation", "oracle / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_deviation", "pool price / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_depth", "pool's debt-asset reserve / collateral value at the oracle", 0.0, 10.0),
    Feature("utilization", "total debt / lenders' supply", 0.0, 1.0),
    Feature("gas", "gas price / 100 gwei", 0.0, 100.0),
    Feature("liquidation_bonus", "liquidation bonus, x10", 0.0, 5.0),
    Feature("opportunities_now", "debt with HF < 1 / initial capital", 0.0, 100.0),
    Feature(
        "opportunities_2", "debt liquidatable if the oracle fell 2% / initial capital", 0.0, 100.0
    ),
    Feature(
        "opportunities_5", "debt liquidatable if the oracle fell 5% / initial capital", 0.0, 100.0
    ),
    Feature(
        "opportunities_10", "debt liquidatable if the oracle fell 10% / initial capital", 0.0, 100.0
    ),
    Feature("inventory", "seized collateral held, at the pool price / initial capital", 0.0, 100.0),
    Feature("hedge", "perp position notional / initial capital (negative: short)", -100.0, 100.0),
    Feature("cash", "cash / initial capital (negative: drawn credit)", -100.0, 100.0),
    Feature("equity", "marked-to-market equity / initial capital", -100.0, 100.0),
    Feature(
        "funding_rate",
        "perp basis = funding paid by longs per interval, x100 (percent)",
        -10.0,
        10.0,
    ),
    Feature("time_left", "share of the episode left", 0.0, 1.0),
)

# Intraday stress for a one-day episode: crashes and their replays, liquidity, congestion and
# oracle stresses, plus calm and volatile days so the agent learns when not to act. Names not
# registered are skipped.
DEFAULT_LIQUIDATOR_SCENARIOS = (
    "shock",
    "merton_crash",
    "black_thursday_2020",
    "black_thursday_2020_fast",
    "may19_2021",
    "liquidity_drought",
    "congestion",
    "crash_drought_congestion",
    "oracle_frozen",
    "perfect_storm",
    "gbm_high_vol",
    "calm",
)


class LiquidatorVectorEnv(LevgymVectorEnv):
    """Native vector env of ``levgym/Liquidator-v1``: E markets on one batched engine state.

    The spec is :class:`LiquidatorEnv`'s docstring; ``gym.make_vec("levgym/Liquidator-v1",
    num_envs=E, ...)`` returns this class, with same-step autoreset. Env ``i`` of a batch reset
    with ``seed=s`` behaves as ``LiquidatorEnv`` reset with ``seed=s + i``.
    """

    env_id = "levgym/Liquidator-v1"
    SALE_IN_BLOCK = True
    """v1: the agent's sale is an order of the block (the oracle reads it before the cascade)."""
    HEDGE_ON_INVENTORY = False
    """v2: the hedge action is a correction around a short of the inventory (v0/v1: a share of
    the equity)."""
    FEATURES = LIQUIDATOR_FEATURES
    ACTIONS = LIQUIDATOR_ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_LIQUIDATOR_SCENARIOS
    TERMINAL_CAUSE = "bankruptcy"
    PACKED = True
    SHARED_SETTABLE: ClassVar[tuple[str, ...]] = ("risk_aversion", "reward_scale")

    def __init__(
        self,
        num_envs: int = 1,
        *,
        num_positions: int = 128,
        scenarios: ScenarioSpec = None,
        horizon_h: float = 24.0,
        params: EngineParams | ProtocolParams | str | None = None,
        initial_cash_usd: float = 5e6,
        max_share_frac: float = 0.5,
        max_hedge_ratio: float = 1.0,
        max_hedge_deviation: float = 1.0,
        perp_fee_frac: float = 5e-4,
        basis_mean_frac: float = 1e-4,
        basis_beta: float = 0.5,
        funding_interval_h: float = 8.0,
        credit_rate_apr: float = 0.20,
        risk_aversion: float = 2.0,
        reward_scale: float = 1e4,
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
            substeps_per_step=1,
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
        self.initial_cash_usd = check_weight("initial_cash_usd", initial_cash_usd)
        if self.initial_cash_usd <= 0:
            raise ValueError(f"initial_cash_usd={initial_cash_usd!r} is out of range; allowed > 0")
        self.max_share_frac = check_weight("max_share_frac", max_share_frac)
        if self.max_share_frac > 1:
            raise ValueError(f"max_share_frac={max_share_frac!r} is out of range; allowed [0, 1]")
        self.max_hedge_ratio = check_weight("max_hedge_ratio", max_hedge_ratio)
        self.max_hedge_deviation = check_weight("max_hedge_deviation", max_hedge_deviation)
        if self.max_hedge_deviation > 1:
            raise ValueError(
                f"max_hedge_deviation={max_hedge_deviation!r} is out of range; allowed [0, 1]"
            )
        self.perp_fee_frac = check_weight("perp_fee_frac", perp_fee_frac)
        self.basis_mean_frac = float(basis_mean_frac)
        if not np.isfinite(self.basis_mean_frac) or abs(self.basis_mean_frac) >= 0.1:
            raise ValueError(
                f"basis_mean_frac={basis_mean_frac!r} is out of range; allowed (-0.1, 0.1)"
            )
        self.basis_beta = check_weight("basis_beta", basis_beta)
        self.funding_interval_h = check_weight("funding_interval_h", funding_interval_h)
        if self.funding_interval_h <= 0:
            raise ValueError(
                f"funding_interval_h={funding_interval_h!r} is out of range; allowed > 0"
            )
        self.credit_rate_apr = check_weight("credit_rate_apr", credit_rate_apr)
        self.risk_aversion = check_weight("risk_aversion", risk_aversion)
        self.reward_scale = check_weight("reward_scale", reward_scale)
        e = self.num_envs
        # the agent's books, one row each of one array (the step kernel writes it in place):
        # cash, inventory, perp position, the perp price at which it was last settled, equity
        # and the perp's basis
        self._agent = np.zeros((len(AGENT), e))
        (
            self.cash_usd,
            self.inventory_asset,
            self.perp_asset,
            self.perp_mark_usd,
            self.equity_usd,
            self.basis_frac,
        ) = self._agent
        self._observed = False
        self._k_ic: np.ndarray | None = None
        self._col = index(self.FEATURES)
        self._feat = np.zeros((e, len(self.FEATURES)))
        self._thresholds = tuple(1.0 / (1.0 - x) for x in OPPORTUNITY_SHOCKS)

    def _perp_price(self) -> tuple[np.ndarray, np.ndarray]:
        fund, pool, _ = self.core.prices()
        basis = perp_basis(pool, fund, self.basis_mean_frac, self.basis_beta)
        # The perp trades at the fundamental; the basis is paid as funding only. A price that
        # carried the basis would let an agent earn the predictable convergence of the lagging
        # pool toward the fundamental (arbitrage closes a fixed share per substep).
        return fund, basis

    def _reset_agent(self, mask: np.ndarray) -> None:
        self.cash_usd[mask] = self.initial_cash_usd
        self.inventory_asset[mask] = 0.0
        self.perp_asset[mask] = 0.0
        self.equity_usd[mask] = self.initial_cash_usd
        price, basis = self._perp_price()
        self.perp_mark_usd[mask] = price[mask]
        self.basis_frac[mask] = basis[mask]

    def _constants(self) -> dict[str, float]:
        """The env's constants by the names of :data:`LIQUIDATOR_CONSTANTS`."""
        year_frac = self.step_h / HOURS_PER_YEAR
        return {
            "max_share_frac": self.max_share_frac,
            "max_hedge_ratio": self.max_hedge_ratio,
            "perp_fee_frac": self.perp_fee_frac,
            "basis_mean_frac": self.basis_mean_frac,
            "basis_beta": self.basis_beta,
            "funding_frac": self.step_h / self.funding_interval_h,
            "credit_rate_apr": self.credit_rate_apr,
            "year_frac": year_frac,
            "sqrt_year_frac": float(np.sqrt(year_frac)),
            "risk_aversion": self.risk_aversion,
            "reward_scale": self.reward_scale,
            "initial_cash_usd": self.initial_cash_usd,
            "pool_fee_frac": self.params.market.pool_fee_frac,
            "sale_in_block": float(self.SALE_IN_BLOCK),
            "max_hedge_deviation": self.max_hedge_deviation,
            "hedge_on_inventory": float(self.HEDGE_ON_INVENTORY),
        }

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        if self.core.packed is not None:
            return self._advance_packed(actions)
        core = self.core
        k = self._constants()
        take, sell, hedge = liquidator_action(
            actions[:, 0], actions[:, 1], actions[:, 2], k["max_share_frac"],
            k["max_hedge_ratio"], k["max_hedge_deviation"], k["hedge_on_inventory"],
        )  # fmt: skip
        s = core.state
        sold = sell * self.inventory_asset
        cash, inventory = self.cash_usd.copy(), self.inventory_asset.copy()
        proceeds = np.zeros(self.num_envs)
        slippage = np.zeros(self.num_envs)
        if not self.SALE_IN_BLOCK:
            # v0: the sale goes into the pool before the block, outside the engine's orders, so
            # the oracle does not read it before the cascade (fixed in v1).
            pa, pd = s.pool_asset, s.pool_debt
            a_sold = core.convert(sold)
            pool_a, pool_d, out = sell_asset(pa, pd, a_sold, self.params.market.pool_fee_frac)
            core.state = s = s.replace(
                pool_asset=pool_a,
                pool_debt=pool_d,
                agent_sold_asset=s.agent_sold_asset + a_sold,
                agent_sale_debt=s.agent_sale_debt + out,
                agent_sale_mid_debt=s.agent_sale_mid_debt + a_sold * (pd / pa),
            )
            proceeds = to_numpy(out) * to_numpy(s.debt_price_usd)
            cash, inventory, slippage = liquidator_sale(
                cash, inventory, sold, proceeds, sold * to_numpy(pd / pa * s.debt_price_usd)
            )

        # 1. Rebalance the perp hedge at the current price (the perp trades at the fundamental,
        #    which no trade in the block moves), settling from its last mark first.
        p0, _ = self._perp_price()
        cash, perp, settle, perp_fee = liquidator_hedge(
            cash, inventory, self.perp_asset, self.perp_mark_usd, p0,
            to_numpy(s.pool_price_usd), hedge, k["perp_fee_frac"], k["hedge_on_inventory"],
        )  # fmt: skip

        # 2. One engine substep with the agent's orders: it sells `sell` of its inventory into the
        #    pool first in the block (fee and price impact paid, the oracle reads the moved pool
        #    before the cascade) and claims `take` of every liquidation (repay, collateral and
        #    gas of that share, all accounted by the engine).
        orders = Orders(claim_share_frac=core.convert(take))
        if self.SALE_IN_BLOCK:
            orders = orders.replace(sell_asset=core.convert(sold))
        before = {k: to_numpy(getattr(s, k)).copy() for k in _AGENT_COUNTERS}
        core.substep(orders)
        s = core.state
        dp = to_numpy(s.debt_price_usd)
        delta = {k: to_numpy(getattr(s, k)) - before[k] for k in _AGENT_COUNTERS}
        if self.SALE_IN_BLOCK:
            proceeds = delta["agent_sale_debt"] * dp
            cash, inventory, slippage = liquidator_sale(
                cash, inventory, sold, proceeds, delta["agent_sale_mid_debt"] * dp
            )
        seized = delta["agent_seized_asset"]
        gas = delta["agent_gas_usd"]
        cash, inventory, repaid = liquidator_fills(
            cash, inventory, seized, delta["agent_repaid_usd"], gas, dp
        )

        # 4-5. Perp: variation margin and funding (longs pay shorts basis * notional per
        #      interval); interest on drawn credit (negative cash).
        p1, basis = self._perp_price()
        cash, variation, funding, credit = liquidator_carry(
            cash, perp, p0, p1, basis, k["funding_frac"], k["credit_rate_apr"], k["year_frac"]
        )
        mid = to_numpy(s.pool_price_usd)
        reward, equity, pnl, penalty, terminated = liquidator_reward(
            cash, inventory, perp, self.equity_usd, mid, p1,
            core.tracker.vol_annual("short"), k["sqrt_year_frac"], k["risk_aversion"],
            k["reward_scale"], k["initial_cash_usd"],
        )  # fmt: skip
        for row, v in zip(self._agent, (cash, inventory, perp, p1, equity, basis), strict=True):
            row[...] = v
        values = {
            "reward": reward,
            "terminated": terminated,
            "equity_usd": equity,
            "pnl_usd": pnl,
            "inventory_penalty_usd": penalty,
            "cash_usd": cash,
            "inventory_asset": inventory,
            "perp_asset": perp,
            "take_frac": take,
            "seized_asset": seized,
            "repaid_usd": repaid,
            "gas_usd": gas,
            "sold_asset": sold,
            "sale_proceeds_usd": proceeds,
            "slippage_usd": slippage,
            "perp_fee_usd": perp_fee,
            "perp_variation_usd": variation + settle,
            "funding_usd": funding,
            "credit_interest_usd": -credit,
            "basis_frac": basis,
        }
        info = {k: np.array(values[k], dtype=np.float64) for k in LIQUIDATOR_OUTPUTS[2:]}
        return values["reward"], values["terminated"], info

    # ------------------------------------------------------------------ the step kernel
    def _kernel_buffers(self) -> None:
        """Scratch and constants of the step kernel (made once, on the first packed step)."""
        self._step_kernel_buffers(len(LIQUIDATOR_OUTPUTS), (self.params.run.substep_h, 1.0))
        self._k_lc_key = -1
        self._k_lc = np.zeros(len(LIQUIDATOR_CONSTANTS))

    def _kernel_constants(self) -> np.ndarray:
        """The constants as the kernel's array, remade when a settable one changes (the others
        are fixed when the env is made)."""
        key = self.weights_version
        if key != self._k_lc_key:
            k = self._constants()
            self._k_lc[:] = [k[name] for name in LIQUIDATOR_CONSTANTS]
            self._k_lc_key = key
        return self._k_lc

    def _advance_packed(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`_advance` and the next :meth:`_observe` in one kernel call (backend numba)."""
        core = self.core
        p, tr = core.packed, core.tracker
        if self._k_ic is None:
            self._kernel_buffers()
        ic, fc = self._k_ic, self._k_fc
        ic[1] = p.substep_index
        ic[3] = tr.pos
        fc[0] = p.time_h
        out = self._k_out
        t0 = time.perf_counter()
        call_kernel(
            liquidator_step, self._k_threads,
            p.env, core.bank, core.bank_rows, core.t, core.noise_key, _params_packed(self.params),
            self._k_orders, p.twap, p.posf, p.posb, p.kind, self._k_drv, self._k_noise,
            self._k_rounds, self._k_step_rounds, tr.prices, tr._var, tr.max_fundamental,
            tr.filled, self._agent, ic, fc, self._kernel_constants(), actions,
            self._k_thresholds, self._obs_low, self._obs_high, self._obs, out,
        )  # fmt: skip
        core.engine_seconds += time.perf_counter() - t0
        p.time_h = p.time_h + self.params.run.substep_h
        p.substep_index += 1
        tr.pos = (tr.pos + 1) % tr.length
        core.changed()
        core.count_rounds(self._k_step_rounds)
        self._observed = True
        rows = out.copy()
        if self.scalar_info:  # a single env: its info values as Python floats, in one call
            info = dict(zip(LIQUIDATOR_OUTPUTS[2:], rows[2:, 0].tolist(), strict=True))
        else:
            info = dict(zip(LIQUIDATOR_OUTPUTS[2:], rows[2:], strict=True))
        return rows[0], rows[1] != 0.0, info

    def _observe(self, envs: np.ndarray | None = None) -> None:
        if self._observed:  # the step kernel has written this step's observation
            self._observed = False
            return
        core = self.core
        tr = core.tracker
        if core.packed is not None:
            if self._k_ic is None:
                self._kernel_buffers()
            p = core.packed
            ic = self._k_ic_obs
            ic[3] = tr.pos
            liquidator_observe(
                p.env, p.posf, core.t, tr.prices, tr._var, tr.max_fundamental, self._agent, ic,
                self._k_fc, self._kernel_constants(), self._k_thresholds, self._obs_low,
                self._obs_high, self._obs, self._all_envs if envs is None else envs,
            )  # fmt: skip
            return
        s = core.state
        agg = core.aggregates(self._thresholds)
        g = {k: to_numpy(getattr(s, k)) for k in _FEATURE_FIELDS}
        now = tr.fundamental[:, tr.pos]
        past = [
            tr.fundamental[:, (tr.pos - tr.lag(h)) % tr.length]
            for h in (self.params.run.substep_h, 1.0)
        ]
        feats = liquidator_features(
            log_return(now, past[0]), log_return(now, past[1]), tr.var_short, tr.var_long,
            tr.max_fundamental, tr.substeps_per_year, *(g[k] for k in _FEATURE_FIELDS[:5]),
            agg.total_debt, agg.total_collateral_asset, *(g[k] for k in _FEATURE_FIELDS[5:]),
            *agg.debt_below_usd.T, self.inventory_asset, self.perp_asset, self.cash_usd,
            self.equity_usd, self.basis_frac, self.initial_cash_usd,
            1.0 - core.t / core.horizon_substeps,
        )  # fmt: skip
        f = self._feat
        for j, v in enumerate(feats):
            f[:, j] = v
        self._store_observation(f)

    def _reset_info(self, info: dict[str, Any]) -> None:
        info["equity_usd"] = self.equity_usd.copy()

    # ------------------------------------------------------------------ rendering
    def summary_line(self, env: int) -> str:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        return (
            f"{self.env_id.split('/')[1]} env {env} [{self.core.scenario_of(env)}] step {int(self._episode_length[env])}"
            f"/{self.max_steps}: price {g(s.fundamental_usd):.1f} pool {g(s.pool_price_usd):.1f} "
            f"oracle {g(s.oracle_usd):.1f} | cash {self.cash_usd[env] / 1e6:.3f}M "
            f"inventory {self.inventory_asset[env]:.2f} perp {self.perp_asset[env]:.2f} "
            f"equity {self.equity_usd[env] / 1e6:.4f}M | basis {100 * self.basis_frac[env]:.3f}% "
            f"| liquidations {g(s.liquidations):.0f} | return {self._episode_return[env]:.3f}"
        )

    def render_text(self, env: int) -> list[str]:
        s = self.core.state
        g = lambda x: float(to_numpy(x)[env])  # noqa: E731
        return [
            f"scenario   {self.core.scenario_of(env)}",
            f"step       {int(self._episode_length[env])} / {self.max_steps}",
            f"cash       {self.cash_usd[env] / 1e6:.3f} M",
            f"inventory  {self.inventory_asset[env]:.3f}",
            f"perp       {self.perp_asset[env]:.3f}",
            f"equity     {self.equity_usd[env] / 1e6:.4f} M",
            f"basis      {100 * self.basis_frac[env]:.3f} %",
            f"LT         {g(s.liquidation_threshold):.3f}",
            f"bonus      {g(s.liquidation_bonus):.3f}",
            f"liqs       {g(s.liquidations):.0f}",
            f"return     {self._episode_return[env]:.2f}",
        ]


class LiquidatorEnv(LevgymEnv):
    """levgym/Liquidator-v1: one liquidator competing with background keepers through the cascade.

    ## Description

    A lending market of the levgym engine (see ``levgym/Governance-v0``) runs through a
    one-day scenario drawn from a crash-heavy mixture. The agent is one liquidator among the
    background keepers. Each step (one engine substep, 10 minutes) it chooses how much of the
    liquidation flow to take, how fast to sell the collateral it has seized into the on-chain
    pool, and how much of its equity to hold short on a perpetual future. Selling fast locks in
    the bonus but pays slippage and deepens the cascade it feeds on; holding risks the price;
    the perp hedges the price, at a funding cost that turns against shorts in a cascade. The
    agent may go short before a cascade starts.

    ## Action Space

    ``Box(-1, 1, (3,), float32)``; values outside ``[-1, 1]`` are clipped, NaN or infinite
    values and a wrong shape raise ``ValueError``. Each component maps to ``[0, 1]`` as
    ``(a + 1) / 2``: ``(-1, -1, -1)`` is a passive agent, ``(1, 1, -1)`` a greedy unhedged one.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `take` | share of each liquidation to claim, (a + 1) / 2 times `max_share_frac` | -1 | 1 |
    | 1 | `sell` | share of the inventory to sell into the pool this step, (a + 1) / 2 | -1 | 1 |
    | 2 | `hedge` | short perp notional / equity, (a + 1) / 2 times `max_hedge_ratio` | -1 | 1 |

    - ``take``: the capacity split with the keepers. The engine gives the agent the share
      ``take_frac = (a0 + 1) / 2 * max_share_frac`` of every liquidation it runs this substep
      (the keepers, who bid as fast, keep the rest; ``max_share_frac`` defaults to 0.5). The
      agent repays its share of the debt from its cash, receives its share of the seized
      collateral (net of the protocol fee) into inventory, and pays gas for its share of the
      liquidations. Cash may go negative: a credit line at ``credit_rate_apr``.
    - ``sell``: this share of the inventory is sold into the pool as an order of the block
      (:mod:`levgym.engine.orders`): after arbitrage and before the borrowers and keepers, so
      the oracle reads the moved pool before the cascade (pool fee and price impact paid;
      ``info["slippage_usd"]`` is measured against the pool's mid just before the sale).
    - ``hedge``: the perp position is set to a short of ``hedge_ratio * equity`` notional at a
      taker fee of ``perp_fee_frac``.

    Perpetual model: the perp trades at the fundamental price and is marked to market every
    substep (variation margin in cash). Its basis ``basis_mean_frac + basis_beta * (pool /
    fundamental - 1)`` (a small premium in calm markets, a discount when the pool is dumped) is
    paid as funding: longs pay shorts ``basis * notional`` per ``funding_interval_h`` (8 h), pro
    rata per substep, so shorts earn funding in calm markets and pay it in a cascade. (A perp
    price that carried the basis would hand the agent the predictable convergence of the lagging
    pool, a free lunch PPO found at once.)

    ## Observation Space

    ``Box(low, high, float32)``, one entry per feature below, each clipped to its bounds.
    Initial capital is ``initial_cash_usd``.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `return_10m` | log return of the fundamental over the last substep, x100 | -10 | 10 |
    | 1 | `return_1h` | log return of the fundamental over 1 h, x10 | -10 | 10 |
    | 2 | `vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 3 | `vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 4 | `drawdown` | 1 - fundamental / its maximum this episode | 0 | 1 |
    | 5 | `oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 6 | `pool_deviation` | pool price / fundamental - 1, x10 | -10 | 10 |
    | 7 | `pool_depth` | pool's debt-asset reserve / collateral value at the oracle | 0 | 10 |
    | 8 | `utilization` | total debt / lenders' supply | 0 | 1 |
    | 9 | `gas` | gas price / 100 gwei | 0 | 100 |
    | 10 | `liquidation_bonus` | liquidation bonus, x10 | 0 | 5 |
    | 11 | `opportunities_now` | debt with HF < 1 / initial capital | 0 | 100 |
    | 12 | `opportunities_2` | debt liquidatable if the oracle fell 2% / initial capital | 0 | 100 |
    | 13 | `opportunities_5` | debt liquidatable if the oracle fell 5% / initial capital | 0 | 100 |
    | 14 | `opportunities_10` | debt liquidatable if the oracle fell 10% / initial capital | 0 | 100 |
    | 15 | `inventory` | seized collateral held, at the pool price / initial capital | 0 | 100 |
    | 16 | `hedge` | perp position notional / initial capital (negative: short) | -100 | 100 |
    | 17 | `cash` | cash / initial capital (negative: drawn credit) | -100 | 100 |
    | 18 | `equity` | marked-to-market equity / initial capital | -100 | 100 |
    | 19 | `funding_rate` | perp basis = funding paid by longs per interval, x100 (percent) | -10 | 10 |
    | 20 | `time_left` | share of the episode left | 0 | 1 |

    ## Rewards

    In basis points of initial capital (``reward_scale = 1e4``), per step:

    ``reward = (equity_t - equity_(t-1)) - 0.5 * risk_aversion * (net_exposure * sigma)^2 / capital``

    - equity: cash plus inventory marked at the pool price (the price it can sell at before
      impact). Repayments, gas, pool fees and slippage, perp fees, funding and credit interest
      all go through cash, so they are paid for real.
    - the penalty is the mean-variance cost of the unhedged exposure ``net_exposure =
      inventory * pool price + perp notional`` over one substep, ``sigma`` being the short
      (6 h) realized volatility per substep; ``risk_aversion`` defaults to 2 (a relative risk
      aversion of 2, a common middle value).

    ## Starting State

    A scenario from ``scenarios``, a fresh book at ``params``, cash ``initial_cash_usd``
    (default 5 M USD, against a 300 M USD collateral book), no inventory, no perp position.

    ## Episode End

    - Termination (``info["end_cause"] == "bankruptcy"``): equity at or below zero.
    - Truncation (``"horizon"``): after ``horizon_h`` hours (default 24, i.e. 144 steps).
      ``info["end_counts"]`` counts episodes per end cause since the env was made.

    ## Arguments

    ``gym.make("levgym/Liquidator-v1", **kwargs)``:

    - ``num_positions`` (128), ``scenarios`` (None: the registered names among
      :data:`DEFAULT_LIQUIDATOR_SCENARIOS`), ``horizon_h`` (24, a multiple of the 10-minute
      substep), ``params`` (None: Aave v3 WETH), ``scenario_overrides``, ``split``,
      ``backend``, ``dtype``, ``device``, ``render_mode``, ``warmup_h`` (0), ``warm_pool``
      (None), ``path_pool`` (None), ``book_pool`` (None) as in ``levgym/Governance-v0``.
    - ``initial_cash_usd`` (5e6), ``max_share_frac`` (0.5), ``max_hedge_ratio`` (1.0);
      ``max_hedge_deviation`` (1.0, allowed ``[0, 1]``) is used by v2 only.
    - ``perp_fee_frac`` (5e-4), ``basis_mean_frac`` (1e-4), ``basis_beta`` (0.5),
      ``funding_interval_h`` (8): the perpetual.
    - ``credit_rate_apr`` (0.20): interest on negative cash.
    - ``risk_aversion`` (2.0), ``reward_scale`` (1e4): the reward.

    ## Vectorized environment

    ``gym.make_vec("levgym/Liquidator-v1", num_envs=E, **kwargs)`` returns
    :class:`LiquidatorVectorEnv` on one batched engine state, with same-step autoreset
    (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``); env ``i`` reset with
    ``seed=s`` behaves exactly as this env reset with ``seed=s + i``. For Stable-Baselines3
    use ``levgym.envs.make_sb3_vec_env("levgym/Liquidator-v1", E)``.

    ## Version History

    - v3 (``levgym/Liquidator-v3``, :class:`LiquidatorV3Env`): episodes start from warmed
      books by default; the rest as v2.
    - v2 (``levgym/Liquidator-v2``, :class:`LiquidatorV2Env`): the hedge action is a correction
      around a short of the held inventory; the rest as v1.
    - v1: the agent's sale is an order inside the engine's block (after arbitrage, before the
      borrowers and the cascade, whose in-block oracle refresh now sees it); its gas is
      accounted by the engine. The same seed and actions give different paths than v0.
      Later fix of v0 and v1 (observations, rewards and dynamics unchanged): ``info["basis_frac"]``
      of a step that ends an episode used to show the next episode's starting basis (the
      array was shared with the env's books, which the autoreset overwrote); it now shows the
      step's basis.
    - v0: initial release (the sale went into the pool before the block, outside the engine;
      still registered for reproducibility).
    """

    vector_class = LiquidatorVectorEnv

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)


class LiquidatorV2VectorEnv(LiquidatorVectorEnv):
    """``levgym/Liquidator-v2``: :class:`LiquidatorVectorEnv` with the hedge around the inventory
    (see :class:`LiquidatorV2Env`)."""

    env_id = "levgym/Liquidator-v2"
    HEDGE_ON_INVENTORY = True
    ACTIONS = LIQUIDATOR_V2_ACTIONS


class LiquidatorV2Env(LiquidatorEnv):
    """levgym/Liquidator-v2: ``levgym/Liquidator-v1`` with the hedge action a correction around a
    short of the inventory.

    Everything is as in ``levgym/Liquidator-v1`` (its docstring is the spec: description,
    observations, rewards, starting state, episode end, arguments) except the hedge action:

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 2 | `hedge` | short perp notional / inventory value, 1 + a times `max_hedge_deviation` | -1 | 1 |

    - ``hedge``: the perp position is set to a short of ``(1 + a2 * max_hedge_deviation)`` times
      the inventory (in units of the asset, so the short's notional at the perp price equals the
      inventory's value at that price times that factor), at a taker fee of ``perp_fee_frac``.
      ``a2 = 0`` is a fully hedged inventory (what ``greedy_hedged`` holds), ``-1`` with the
      default ``max_hedge_deviation`` (1.0, allowed ``[0, 1]``) no hedge, ``1`` a short of twice
      the inventory. With no inventory there is no short: the agent cannot go short ahead of a
      cascade as in v1, whose hedge is a share of the equity, so an untrained policy (``a2``
      near 0) held a short of half its equity whatever it held.

    ``gym.make("levgym/Liquidator-v2", **kwargs)`` takes v1's arguments plus
    ``max_hedge_deviation`` (1.0); ``max_hedge_ratio`` is unused. ``gym.make_vec`` returns
    :class:`LiquidatorV2VectorEnv`.

    ## Version History

    - v2: the hedge action is a correction around a short of the held inventory (above); the
      rest as v1. The same seed and actions give different paths than v1 (the hedge differs).
    - v1, v0: see ``levgym/Liquidator-v1``.
    """

    vector_class = LiquidatorV2VectorEnv


class LiquidatorV3VectorEnv(LiquidatorV2VectorEnv):
    """``levgym/Liquidator-v3``: :class:`LiquidatorV2VectorEnv` whose episodes start from warmed
    books by default (see :class:`LiquidatorV3Env`)."""

    env_id = "levgym/Liquidator-v3"

    def __init__(
        self,
        num_envs: int = 1,
        *,
        warmup_h: float = WARM_BOOK_H,
        warm_pool: int | None = WARM_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_envs, warmup_h=warmup_h, warm_pool=warm_pool, **kwargs)


class LiquidatorV3Env(LiquidatorV2Env):
    """levgym/Liquidator-v3: ``levgym/Liquidator-v2`` whose episodes start from a book with a
    history.

    Everything is as in ``levgym/Liquidator-v2`` (the hedge around the inventory; the rest is
    ``levgym/Liquidator-v1``'s spec) except the starting state: each episode's book has lived
    through ``warmup_h`` hours (default 336, two weeks) of a calm burn-in before t = 0, and is
    book ``book_seed % warm_pool`` of a pool of ``warm_pool`` (default 1024) books, each warmed
    when an episode first takes it and kept for the process and on disk
    (:class:`levgym.warm.WarmPool`; the same starting state as ``levgym/Governance-v2``'s,
    described there).

    ``gym.make("levgym/Liquidator-v3", **kwargs)`` takes v2's arguments with the defaults
    ``warmup_h=336`` and ``warm_pool=1024``; ``warmup_h=0`` starts from fresh books as v2 does.
    ``gym.make_vec`` returns :class:`LiquidatorV3VectorEnv`.

    ## Version History

    - v3: episodes start from warmed books by default (``warmup_h=336`` from a pool of 1024
      books warmed on first use); the same seed and actions give different paths than v2 (the
      starting books differ); the dynamics, actions, observations and rewards are v2's.
    - v2, v1, v0: see ``levgym/Liquidator-v2`` and ``levgym/Liquidator-v1``.
    """

    vector_class = LiquidatorV3VectorEnv


class LiquidatorV0VectorEnv(LiquidatorVectorEnv):
    """``levgym/Liquidator-v0``: :class:`LiquidatorVectorEnv` with the v0 sale (see the Version
    History of :class:`LiquidatorEnv`)."""

    env_id = "levgym/Liquidator-v0"
    SALE_IN_BLOCK = False


class LiquidatorV0Env(LiquidatorEnv):
    """``levgym/Liquidator-v0``: :class:`LiquidatorEnv` with the v0 sale (see its Version
    History)."""

    vector_class = LiquidatorV0VectorEnv


__all__ = [
    "DEFAULT_LIQUIDATOR_SCENARIOS",
    "LiquidatorV0Env",
    "LiquidatorV0VectorEnv",
    "LiquidatorV2Env",
    "LiquidatorV2VectorEnv",
    "LiquidatorV3Env",
    "LiquidatorV3VectorEnv",
    "LIQUIDATOR_V2_ACTIONS",
    "LIQUIDATOR_ACTIONS",
    "LIQUIDATOR_FEATURES",
    "LiquidatorEnv",
    "LiquidatorVectorEnv",
    "perp_basis",
]
