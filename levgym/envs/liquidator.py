"""levgym/Liquidator-v1: one liquidator among background keepers, with inventory and a perp hedge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..engine.backend import to_numpy
from ..engine.orders import Orders
from ..engine.params import HOURS_PER_YEAR, EngineParams, ProtocolParams
from ..engine.rules import sell_asset, utilization
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import ScenarioSpec
from .features import Feature, index, market_snapshot

# The engine's counters of the outside liquidator's flows (levgym.engine.orders).
_AGENT_COUNTERS = (
    "agent_sale_debt",
    "agent_sale_mid_debt",
    "agent_seized_asset",
    "agent_repaid_usd",
    "agent_gas_usd",
)


def perp_basis(
    pool_usd: np.ndarray, fundamental_usd: np.ndarray, mean_frac: float, beta: float
) -> np.ndarray:
    """Premium of the perpetual over the fundamental: ``mean_frac + beta * (pool / fundamental - 1)``.

    Perps trade at a small premium in calm markets (longs pay shorts); when liquidations push
    the on-chain pool below the fundamental, the perp is sold too and trades at a discount, so
    holding a short costs funding exactly when it pays off.
    """
    return mean_frac + beta * (pool_usd / fundamental_usd - 1.0)


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
    FEATURES = LIQUIDATOR_FEATURES
    ACTIONS = LIQUIDATOR_ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_LIQUIDATOR_SCENARIOS
    TERMINAL_CAUSE = "bankruptcy"
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
        )
        self.initial_cash_usd = check_weight("initial_cash_usd", initial_cash_usd)
        if self.initial_cash_usd <= 0:
            raise ValueError(f"initial_cash_usd={initial_cash_usd!r} is out of range; allowed > 0")
        self.max_share_frac = check_weight("max_share_frac", max_share_frac)
        if self.max_share_frac > 1:
            raise ValueError(f"max_share_frac={max_share_frac!r} is out of range; allowed [0, 1]")
        self.max_hedge_ratio = check_weight("max_hedge_ratio", max_hedge_ratio)
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
        self.cash_usd = np.zeros(e)
        self.inventory_asset = np.zeros(e)
        self.perp_asset = np.zeros(e)
        self.perp_mark_usd = np.zeros(e)  # perp price at which the position was last settled
        self.equity_usd = np.zeros(e)
        self.basis_frac = np.zeros(e)
        self._col = index(self.FEATURES)
        self._feat = np.zeros((e, len(self.FEATURES)))
        self._thresholds = tuple(1.0 / (1.0 - x) for x in OPPORTUNITY_SHOCKS)

    def _perp_price(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.core.state
        fund = to_numpy(s.fundamental_usd)
        basis = perp_basis(to_numpy(s.pool_price_usd), fund, self.basis_mean_frac, self.basis_beta)
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

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        take = 0.5 * (actions[:, 0] + 1.0) * self.max_share_frac
        sell = 0.5 * (actions[:, 1] + 1.0)
        hedge = 0.5 * (actions[:, 2] + 1.0) * self.max_hedge_ratio
        s = core.state
        sold = sell * self.inventory_asset
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
            slippage = sold * to_numpy(pd / pa * s.debt_price_usd) - proceeds
            self.inventory_asset -= sold
            self.cash_usd += proceeds

        # 1. Rebalance the perp hedge at the current price (the perp trades at the fundamental,
        #    which no trade in the block moves), settling from its last mark first.
        p0, _ = self._perp_price()
        settle = self.perp_asset * (p0 - self.perp_mark_usd)
        self.cash_usd += settle
        equity_now = self.cash_usd + self.inventory_asset * to_numpy(s.pool_price_usd)
        target = -hedge * np.maximum(equity_now, 0.0) / p0
        perp_fee = self.perp_fee_frac * np.abs(target - self.perp_asset) * p0
        self.perp_asset = target
        self.cash_usd -= perp_fee

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
            slippage = delta["agent_sale_mid_debt"] * dp - proceeds  # against the mid at the sale
            self.inventory_asset -= sold
            self.cash_usd += proceeds
        seized = delta["agent_seized_asset"]
        repaid = delta["agent_repaid_usd"] * dp
        gas = delta["agent_gas_usd"]
        self.inventory_asset += seized
        self.cash_usd -= repaid + gas

        # 4. Perp: variation margin and funding (longs pay shorts basis * notional per interval).
        p1, basis = self._perp_price()
        self.basis_frac = basis
        variation = self.perp_asset * (p1 - p0)
        self.perp_mark_usd = p1
        funding = -self.perp_asset * p1 * basis * (self.step_h / self.funding_interval_h)
        self.cash_usd += variation + funding
        variation = variation + settle  # reported: all of this step's variation margin

        # 5. Interest on drawn credit (negative cash).
        credit = (
            np.minimum(self.cash_usd, 0.0) * self.credit_rate_apr * (self.step_h / HOURS_PER_YEAR)
        )
        self.cash_usd += credit

        mid = to_numpy(s.pool_price_usd)
        equity = self.cash_usd + self.inventory_asset * mid
        pnl = equity - self.equity_usd
        self.equity_usd = equity
        net_usd = self.inventory_asset * mid + self.perp_asset * p1
        sigma = core.tracker.vol_annual("short") * np.sqrt(self.step_h / HOURS_PER_YEAR)
        scale = self.reward_scale / self.initial_cash_usd
        penalty = 0.5 * self.risk_aversion * (net_usd * sigma) ** 2 / self.initial_cash_usd
        reward = scale * (pnl - penalty)
        terminated = equity <= 0.0
        info = {
            "equity_usd": equity.copy(),
            "pnl_usd": pnl,
            "inventory_penalty_usd": penalty,
            "cash_usd": self.cash_usd.copy(),
            "inventory_asset": self.inventory_asset.copy(),
            "perp_asset": self.perp_asset.copy(),
            "take_frac": take,
            "seized_asset": seized,
            "repaid_usd": repaid,
            "gas_usd": gas,
            "sold_asset": sold,
            "sale_proceeds_usd": proceeds,
            "slippage_usd": slippage,
            "perp_fee_usd": perp_fee,
            "perp_variation_usd": variation,
            "funding_usd": funding,
            "credit_interest_usd": -credit,
            "basis_frac": basis,
        }
        return reward, terminated, info

    def _observe(self) -> None:
        s = self.core.state
        tr = self.core.tracker
        agg = self.core.aggregates(self._thresholds)
        snap = market_snapshot(s, (agg.total_debt, agg.total_collateral_asset))
        f, c = self._feat, self._col
        cap = self.initial_cash_usd
        coll_value = snap["collateral_value_usd"]
        fund = snap["fundamental_usd"]
        below = agg.debt_below_usd / cap
        f[:, c["return_10m"]] = 100.0 * tr.log_return(self.params.run.substep_h)
        f[:, c["return_1h"]] = 10.0 * tr.log_return(1.0)
        f[:, c["vol_short"]] = tr.vol_annual("short")
        f[:, c["vol_long"]] = tr.vol_annual("long")
        f[:, c["drawdown"]] = tr.drawdown()
        f[:, c["oracle_deviation"]] = 10.0 * (snap["oracle_usd"] / fund - 1.0)
        f[:, c["pool_deviation"]] = 10.0 * (snap["pool_usd"] / fund - 1.0)
        f[:, c["pool_depth"]] = snap["pool_quote_usd"] / np.where(coll_value > 0, coll_value, 1.0)
        f[:, c["utilization"]] = to_numpy(utilization(snap["total_debt"], snap["supply_usd"]))
        f[:, c["gas"]] = snap["gas_gwei"] / 100.0
        f[:, c["liquidation_bonus"]] = 10.0 * to_numpy(s.liquidation_bonus)
        for j, name in enumerate(
            ("opportunities_now", "opportunities_2", "opportunities_5", "opportunities_10")
        ):
            f[:, c[name]] = below[:, j]
        p, _ = self._perp_price()
        f[:, c["inventory"]] = self.inventory_asset * snap["pool_usd"] / cap
        f[:, c["hedge"]] = self.perp_asset * p / cap
        f[:, c["cash"]] = self.cash_usd / cap
        f[:, c["equity"]] = self.equity_usd / cap
        f[:, c["funding_rate"]] = 100.0 * self.basis_frac
        f[:, c["time_left"]] = 1.0 - self.core.t / self.core.horizon_substeps
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
      ``backend``, ``dtype``, ``device``, ``render_mode`` as in ``levgym/Governance-v0``.
    - ``initial_cash_usd`` (5e6), ``max_share_frac`` (0.5), ``max_hedge_ratio`` (1.0).
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

    - v1: the agent's sale is an order inside the engine's block (after arbitrage, before the
      borrowers and the cascade, whose in-block oracle refresh now sees it); its gas is
      accounted by the engine. The same seed and actions give different paths than v0.
    - v0: initial release (the sale went into the pool before the block, outside the engine;
      still registered for reproducibility).
    """

    vector_class = LiquidatorVectorEnv

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)


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
    "LIQUIDATOR_ACTIONS",
    "LIQUIDATOR_FEATURES",
    "LiquidatorEnv",
    "LiquidatorVectorEnv",
    "perp_basis",
]
