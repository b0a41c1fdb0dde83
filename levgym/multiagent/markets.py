"""The batched multi-agent market: E markets, each with a governor, M agent liquidators and a
market maker, on one batched engine state.

Every formula of an agent's books, rewards and observations is the single-agent envs' own
(:mod:`levgym.envs.formulas`; the governor's step is :class:`levgym.envs.GovernanceVectorEnv`'s,
run with the other agents' orders in its blocks); the only new formulas are the market maker's
(:mod:`levgym.multiagent.formulas`). The in-block priority of the liquidators is the engine's
(:mod:`levgym.engine.auction`).

One step is one governance period (``substeps_per_step`` blocks, 1 h by default):

1. the governor's action moves the parameters (projected as in ``levgym/Governance-v0``);
2. each liquidator rebalances its perp hedge at the fundamental, then places for every block of
   the period its claim (``take``), its gas bid and a sale of ``sell`` of its inventory
   (``1 / substeps_per_step`` of it per block); the market maker rebalances its hedge and
   changes its pool liquidity by ``(1 + c)^(1 / substeps_per_step)`` per block (``c`` over the
   period);
3. the blocks run: the claims are resolved by gas bid (:func:`levgym.engine.auction.resolve`),
   the background keepers take the rest of every liquidation;
4. each agent's fills are attributed (:func:`levgym.engine.auction.attribute`), the books are
   carried (perp variation, funding, credit) and the rewards computed.

A market ends when its governor's episode ends (insolvency or the horizon): every agent of that
market is done. A liquidator whose equity falls to zero is bankrupt: it leaves the market (its
orders are zero, its reward 0 and its observation frozen until the market's next episode; the
step in which it goes bankrupt returns its observation after that step).

Version history (the market is new in this round; no earlier numbers were published):

- The agents' sales in a block go into the pool in gas-bid order, each paying the impact of
  those ahead of it (:func:`levgym.engine.auction.sale_shares`); first merged with one bundle
  split at the average price. The engine's path is unchanged; the liquidators' proceeds,
  slippage, rewards and observations change where two or more sell in the same block.
- Each agent's part of a counter is ``delta * fill / sum(fill)`` (was ``delta / sum(fill) *
  fill``, one rounding apart), so one agent with the whole claim gets the counter bit for bit.
- A bankrupt liquidator's terminal observation is its state after the step (was the one before).
- The liquidators' step infos carry all of ``levgym/Liquidator-v1``'s keys (``cash_usd``,
  ``perp_asset``, ``sale_proceeds_usd`` and ``basis_frac`` added).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from ..engine.auction import AgentOrders, attribute, check_block_auction, resolve
from ..engine.orders import Orders
from ..engine.packed import POSF
from ..engine.params import HOURS_PER_YEAR, EngineParams, ProtocolParams
from ..envs.base import check_weight
from ..envs.core import ScenarioSpec
from ..envs.features import Feature, bounds
from ..envs.formulas import (
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
from ..envs.governance import GOVERNANCE_ACTIONS, GOVERNANCE_FEATURES, GovernanceVectorEnv
from ..envs.kernels import position_aggregates
from ..envs.liquidator import LIQUIDATOR_ACTIONS, LIQUIDATOR_FEATURES, OPPORTUNITY_SHOCKS
from .formulas import market_maker_flows, market_maker_lp, market_maker_reward

ROLES = ("governor", "liquidator", "market_maker")

MA_LIQUIDATOR_ACTIONS: tuple[Feature, ...] = (
    *LIQUIDATOR_ACTIONS,
    Feature(
        "gas_bid",
        "priority fee over the base gas price, (a + 1) / 2 times `max_gas_bid_frac` of it",
        -1.0,
        1.0,
    ),
)

MARKET_MAKER_ACTIONS: tuple[Feature, ...] = (
    Feature(
        "liquidity",
        "change of its pool liquidity over the step, a times `max_liquidity_change_frac`",
        -1.0,
        1.0,
    ),
    Feature(
        "hedge",
        "short perp notional / its asset in the pool, (a + 1) / 2 times `max_hedge_ratio`",
        -1.0,
        1.0,
    ),
)

# The liquidator's features with the market maker's books: its asset in the pool in place of
# the inventory, then its share of the pool.
MARKET_MAKER_FEATURES: tuple[Feature, ...] = (
    *LIQUIDATOR_FEATURES[:15],
    Feature("pool_asset_held", "its asset in the pool, at the pool price / initial capital", 0.0, 100.0),
    *LIQUIDATOR_FEATURES[16:],
    Feature("lp_share", "its share of the pool's liquidity", 0.0, 1.0),
)  # fmt: skip

# The engine counters whose change over a step the agents' books read.
_COUNTERS = (
    "agent_seized_asset",
    "agent_repaid_usd",
    "agent_gas_usd",
    "agent_sold_asset",
    "agent_sale_debt",
    "agent_sale_mid_debt",
    "keeper_sold_asset",
    "liquidity_added_debt",
)


def _clip(a: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.shape != shape:
        raise ValueError(f"{name} actions have shape {x.shape}; allowed {shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} actions contain NaN or infinite values; allowed finite numbers")
    return np.clip(x, -1.0, 1.0)


class MultiAgentMarkets:
    """E markets with a governor, ``num_liquidators`` agent liquidators and a market maker each.

    Arrays by role: the governor ``[E, ...]``, the liquidators ``[E, M, ...]``, the market maker
    ``[E, ...]``. :meth:`reset` starts episodes (all markets, or those in ``mask``);
    :meth:`step` takes the three roles' actions and returns observations, rewards, terminations
    and truncations by role plus an info dict; ``alive`` ``[E, M]`` masks the liquidators still
    in their market, ``market_done`` ``[E]`` the markets whose episode ended (reset them with
    ``reset(mask=market_done)`` before stepping again). See the module doc for the step.

    Arguments: ``num_liquidators`` (M, 3), ``block_auction`` (``"private"``: a liquidator that
    loses a contested claim pays nothing; ``"public"``: it pays its gas), ``num_positions``,
    ``scenarios``, ``horizon_h`` (168), ``params``, ``split``, ``backend``, ``governor`` (more
    keyword arguments of ``levgym/Governance-v0``: reward weights, limits); the liquidators' books
    as in ``levgym/Liquidator-v1`` (``initial_cash_usd``, ``max_share_frac`` 1.0: a liquidator may
    ask for whole liquidations, ``max_hedge_ratio``, ``perp_fee_frac``, ``basis_mean_frac``,
    ``basis_beta``, ``funding_interval_h``, ``credit_rate_apr``, ``risk_aversion``,
    ``reward_scale``) plus ``max_gas_bid_frac`` (1.0: a bid of up to the base gas price again);
    the market maker's ``mm_share_frac`` (0.2 of the pool's liquidity at the start),
    ``max_liquidity_change_frac`` (0.5 of its position per step; the pool's depth changes by
    its share of that, spread over the step's blocks as ``(1 + c)^(1 / substeps_per_step)``) and ``mm_reward_scale`` (1e4,
    per unit of its starting capital).
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        num_liquidators: int = 3,
        block_auction: str = "private",
        num_positions: int = 128,
        scenarios: ScenarioSpec = None,
        horizon_h: float = 168.0,
        params: EngineParams | ProtocolParams | str | None = None,
        split: str = "train",
        backend: str = "numba",
        governor: Mapping[str, Any] | None = None,
        initial_cash_usd: float = 5e6,
        max_share_frac: float = 1.0,
        max_hedge_ratio: float = 1.0,
        max_gas_bid_frac: float = 1.0,
        perp_fee_frac: float = 5e-4,
        basis_mean_frac: float = 1e-4,
        basis_beta: float = 0.5,
        funding_interval_h: float = 8.0,
        credit_rate_apr: float = 0.20,
        risk_aversion: float = 2.0,
        reward_scale: float = 1e4,
        mm_share_frac: float = 0.2,
        max_liquidity_change_frac: float = 0.5,
        mm_reward_scale: float = 1e4,
    ) -> None:
        if isinstance(num_liquidators, bool) or not isinstance(num_liquidators, int | np.integer):
            raise ValueError(f"num_liquidators={num_liquidators!r} must be an integer >= 1")
        if not 1 <= int(num_liquidators) <= 64:
            raise ValueError(f"num_liquidators={num_liquidators!r} is out of range; allowed 1..64")
        self.block_auction = check_block_auction(block_auction)
        self.gov = GovernanceVectorEnv(
            num_envs,
            num_positions=num_positions,
            scenarios=scenarios,
            horizon_h=horizon_h,
            params=params,
            split=split,
            backend=backend,
            autoreset_mode=AutoresetMode.DISABLED,
            **dict(governor or {}),
        )
        self.core = self.gov.core
        self.params = self.gov.params
        self.num_envs, self.num_liquidators = self.gov.num_envs, int(num_liquidators)
        self.substeps_per_step = self.gov.substeps_per_step
        self.step_h = self.gov.step_h
        self.max_steps = self.gov.max_steps
        for name, v in (
            ("initial_cash_usd", initial_cash_usd),
            ("max_share_frac", max_share_frac),
            ("max_hedge_ratio", max_hedge_ratio),
            ("max_gas_bid_frac", max_gas_bid_frac),
            ("perp_fee_frac", perp_fee_frac),
            ("basis_beta", basis_beta),
            ("funding_interval_h", funding_interval_h),
            ("credit_rate_apr", credit_rate_apr),
            ("risk_aversion", risk_aversion),
            ("reward_scale", reward_scale),
            ("mm_share_frac", mm_share_frac),
            ("max_liquidity_change_frac", max_liquidity_change_frac),
            ("mm_reward_scale", mm_reward_scale),
        ):
            setattr(self, name, check_weight(name, v))
        for name, hi in (
            ("max_share_frac", 1.0),
            ("mm_share_frac", 1.0),
            ("max_liquidity_change_frac", 0.9),
        ):
            if getattr(self, name) > hi:
                raise ValueError(
                    f"{name}={getattr(self, name):g} is out of range; allowed [0, {hi:g}]"
                )
        if self.initial_cash_usd <= 0 or self.funding_interval_h <= 0 or self.mm_share_frac <= 0:
            raise ValueError(
                "initial_cash_usd, funding_interval_h and mm_share_frac must be > 0; got "
                f"{initial_cash_usd!r}, {funding_interval_h!r}, {mm_share_frac!r}"
            )
        self.basis_mean_frac = float(basis_mean_frac)
        if not np.isfinite(self.basis_mean_frac) or abs(self.basis_mean_frac) >= 0.1:
            raise ValueError(
                f"basis_mean_frac={basis_mean_frac!r} is out of range; allowed (-0.1, 0.1)"
            )
        e, m = self.num_envs, self.num_liquidators
        self.year_frac = self.step_h / HOURS_PER_YEAR
        self.funding_frac = self.step_h / self.funding_interval_h
        # the liquidators' books [E, M]: cash, inventory, perp, perp mark, equity, basis
        self.liq = np.zeros((6, e, m))
        self.alive = np.zeros((e, m), dtype=bool)
        # the market maker's books [E]: cash, base liquidity it owns, perp, perp mark, equity,
        # basis, starting capital
        self.mm = np.zeros((7, e))
        self._thresholds = tuple(1.0 / (1.0 - x) for x in OPPORTUNITY_SHOCKS)
        self.spaces = {
            "governor": self._spaces(GOVERNANCE_FEATURES, GOVERNANCE_ACTIONS),
            "liquidator": self._spaces(LIQUIDATOR_FEATURES, MA_LIQUIDATOR_ACTIONS),
            "market_maker": self._spaces(MARKET_MAKER_FEATURES, MARKET_MAKER_ACTIONS),
        }
        self._liq_low, self._liq_high = (b.astype(np.float64) for b in bounds(LIQUIDATOR_FEATURES))
        self._mm_low, self._mm_high = (b.astype(np.float64) for b in bounds(MARKET_MAKER_FEATURES))
        self._gov_obs = np.zeros((e, len(GOVERNANCE_FEATURES)), dtype=np.float32)
        self._liq_obs = np.zeros((e, m, len(LIQUIDATOR_FEATURES)), dtype=np.float32)
        self._mm_obs = np.zeros((e, len(MARKET_MAKER_FEATURES)), dtype=np.float32)
        self.market_done = np.zeros(e, dtype=bool)

    @staticmethod
    def _spaces(features: tuple[Feature, ...], actions: tuple[Feature, ...]):
        lo, hi = bounds(features)
        alo, ahi = bounds(actions)
        return (
            spaces.Box(lo, hi, dtype=np.float32),
            spaces.Box(alo, ahi, dtype=np.float32),
        )

    # ------------------------------------------------------------------ helpers
    def _prices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fundamental = the perp's price, the perp's basis, pool price) ``[E]`` now."""
        fund, pool, _ = self.core.prices()
        return fund, perp_basis(pool, fund, self.basis_mean_frac, self.basis_beta), pool

    def _aggregates(self):
        core = self.core
        if core.packed is not None:  # the packed buffers' views: no copy of the state
            p = core.packed
            view = SimpleNamespace(
                collateral_asset=p.posf[POSF.index("c_in")],
                debt_usd=p.posf[POSF.index("d_in")],
                oracle_usd=core.field("oracle_usd"),
                liquidation_threshold=core.field("liquidation_threshold"),
                debt_price_usd=core.field("debt_price_usd"),
            )
            return position_aggregates(view, self._thresholds)
        return core.aggregates(self._thresholds)

    def _mm_lp(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The market maker's (share of the pool, asset in the pool, LP value USD) now."""
        f = self.core.field
        return market_maker_lp(self.mm[1], f("pool_asset"), f("pool_debt"), f("debt_price_usd"))

    # ------------------------------------------------------------------ API
    def reset(
        self, seed: int | None = None, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Start episodes: every market (``mask`` None; ``seed`` seeds market ``i`` with
        ``seed + i`` as ``levgym/Governance-v0`` does) or those in ``mask`` (their own random
        streams go on). Returns the observations by role."""
        if mask is None:
            self.gov.reset(seed=seed)
            mask = np.ones(self.num_envs, dtype=bool)
        else:
            mask = np.asarray(mask, dtype=bool)
            if not mask.any():
                return self.observations()
            self.gov.reset(options={"reset_mask": mask})
        fund, basis, _ = self._prices()
        self._new_liquidators(np.repeat(mask[:, None], self.num_liquidators, axis=1))
        depth = np.sqrt(self.core.field("pool_asset") * self.core.field("pool_debt"))
        self.mm[:, mask] = 0.0
        self.mm[1, mask] = self.mm_share_frac * depth[mask]
        _, _, value = self._mm_lp()
        self.mm[3, mask] = fund[mask]
        self.mm[4, mask] = value[mask]
        self.mm[5, mask] = basis[mask]
        self.mm[6, mask] = value[mask]
        self.market_done[mask] = False
        self._gov_obs[mask] = self.gov._obs[mask]
        self._observe(mask)
        return self.observations()

    def _new_liquidators(self, slots: np.ndarray) -> None:
        fund, basis, _ = self._prices()
        e, m = self.num_envs, self.num_liquidators
        cash, inv, perp, mark, equity, bas = self.liq
        cash[slots] = self.initial_cash_usd
        inv[slots] = 0.0
        perp[slots] = 0.0
        mark[slots] = np.broadcast_to(fund[:, None], (e, m))[slots]
        equity[slots] = self.initial_cash_usd
        bas[slots] = np.broadcast_to(basis[:, None], (e, m))[slots]
        self.alive[slots] = True

    def enter_liquidators(self, slots: Any) -> dict[str, np.ndarray]:
        """New liquidators, with fresh books, take the slots ``slots`` ``[E, M]`` (bankrupt
        ones' slots; the per-role SB3 ``VecEnv`` keeps every slot filled this way). Returns the
        observations."""
        slots = np.asarray(slots, dtype=bool)
        if slots.shape != self.alive.shape:
            raise ValueError(f"slots have shape {slots.shape}; allowed {self.alive.shape}")
        if slots.any():
            self._new_liquidators(slots)
            self._observe(slots.any(axis=1), slots)
        return self.observations()

    def observations(self) -> dict[str, np.ndarray]:
        return {
            "governor": self._gov_obs.copy(),
            "liquidator": self._liq_obs.copy(),
            "market_maker": self._mm_obs.copy(),
        }

    def step(
        self, governor: Any, liquidators: Any, market_maker: Any
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:  # fmt: skip
        """One governance period of every market. Actions: governor ``[E, 4]``, liquidators
        ``[E, M, 4]`` (take, sell, hedge, gas bid), market maker ``[E, 2]`` (liquidity, hedge),
        each in [-1, 1] (clipped). Returns (observations, rewards, terminated, truncated, info)
        by role; a bankrupt liquidator is terminated at its step and masked out after it."""
        if self.market_done.any():
            raise RuntimeError(
                f"market(s) {np.flatnonzero(self.market_done).tolist()} have ended; "
                "reset them with reset(mask=market_done) before stepping"
            )
        e, m, s_count = self.num_envs, self.num_liquidators, self.substeps_per_step
        ga = _clip(governor, (e, len(GOVERNANCE_ACTIONS)), "governor")
        la = _clip(liquidators, (e, m, len(MA_LIQUIDATOR_ACTIONS)), "liquidator")
        ma = _clip(market_maker, (e, len(MARKET_MAKER_ACTIONS)), "market_maker")
        core, f = self.core, self.core.field
        alive = self.alive.copy()

        # 1-2. the liquidators' and the market maker's orders, their hedges at the perp's price
        take, sell, hedge = liquidator_action(
            la[..., 0], la[..., 1], la[..., 2], self.max_share_frac, self.max_hedge_ratio, 0.0, 0.0
        )
        bid = 0.5 * (la[..., 3] + 1.0) * self.max_gas_bid_frac
        take, bid = np.where(alive, take, 0.0), np.where(alive, bid, 0.0)
        cash, inv, perp, mark, equity0, _ = (x.copy() for x in self.liq)
        p0, _, pool0 = self._prices()
        cash, perp, settle, perp_fee = liquidator_hedge(
            cash, inv, perp, mark, p0[:, None], pool0[:, None], hedge, self.perp_fee_frac, 0.0
        )
        sold = np.where(alive, sell * inv, 0.0)

        share0, held0, _ = self._mm_lp()
        dp0 = f("debt_price_usd").copy()
        mm_cash, mm_base, mm_perp, mm_mark, mm_equity0 = (x.copy() for x in self.mm[:5])
        change = ma[:, 0] * self.max_liquidity_change_frac
        # its units change by `change` of its own; the pool's by that share of its depth
        pool_change = change * share0
        per_block = (1.0 + pool_change) ** (1.0 / s_count) - 1.0
        mm_hedge = 0.5 * (ma[:, 1] + 1.0) * self.max_hedge_ratio
        mm_settle_cash, mm_perp, _, mm_perp_fee = liquidator_hedge(
            np.zeros(e), held0, mm_perp, mm_mark, p0, pool0, mm_hedge, self.perp_fee_frac, 0.0
        )
        mm_cash = mm_cash + mm_settle_cash

        agent_orders = AgentOrders(take, bid, sold / s_count)
        orders, fills = resolve(agent_orders, Orders(liquidity_delta_frac=per_block))
        conv = core.convert
        self.gov.block_orders = Orders(
            claim_share_frac=conv(orders.claim_share_frac),
            sell_asset=conv(orders.sell_asset),
            liquidity_delta_frac=conv(orders.liquidity_delta_frac),
        )

        # 3. the blocks, with the governor's step
        before = {k: f(k).copy() for k in _COUNTERS}
        gov_obs, gov_r, gov_term, gov_trunc, gov_info = self.gov.step(ga)
        delta = {k: f(k) - before[k] for k in _COUNTERS}
        flows = attribute(
            agent_orders, fills, delta, self.block_auction, self.params.market.pool_fee_frac
        )

        # 4. the liquidators' books (Liquidator-v1's formulas)
        dp = f("debt_price_usd")[:, None]
        proceeds = flows["sale_debt"] * dp
        cash, inv, slippage = liquidator_sale(
            cash, inv, sold, proceeds, flows["sale_mid_debt"] * dp
        )
        cash, inv, repaid = liquidator_fills(
            cash, inv, flows["seized_asset"], flows["repaid_debt"], flows["gas_usd"], dp
        )
        p1, basis1, pool1 = self._prices()
        cash, variation, funding, credit = liquidator_carry(
            cash, perp, p0[:, None], p1[:, None], basis1[:, None], self.funding_frac,
            self.credit_rate_apr, self.year_frac,
        )  # fmt: skip
        vol = core.tracker.vol_annual("short")[:, None]
        liq_r, equity, pnl, penalty, bankrupt = liquidator_reward(
            cash, inv, perp, equity0, pool1[:, None], p1[:, None], vol,
            float(np.sqrt(self.year_frac)), self.risk_aversion, self.reward_scale,
            self.initial_cash_usd,
        )  # fmt: skip
        new_books = (cash, inv, perp, np.broadcast_to(p1[:, None], (e, m)), equity,
                     np.broadcast_to(basis1[:, None], (e, m)))  # fmt: skip
        for row, v in zip(self.liq, new_books, strict=True):
            row[alive] = v[alive]
        liq_r = np.where(alive, liq_r, 0.0)
        liq_term = alive & bankrupt
        self.alive = alive & ~bankrupt

        # the market maker's books
        self.mm[1] = mm_base * (1.0 + change)
        share1, held1, value1 = self._mm_lp()
        deposit = 2.0 * delta["liquidity_added_debt"] * dp[:, 0]
        volume = delta["keeper_sold_asset"] + delta["agent_sold_asset"]
        mm_cash, fee_income, il = market_maker_flows(
            mm_cash, deposit, volume, self.params.market.pool_fee_frac, share1, self.mm[1],
            pool0 / dp0, pool1 / dp[:, 0], dp[:, 0],
        )  # fmt: skip
        mm_cash, mm_variation, mm_funding, mm_credit = liquidator_carry(
            mm_cash, mm_perp, p0, p1, basis1, self.funding_frac, self.credit_rate_apr,
            self.year_frac,
        )  # fmt: skip
        mm_r, mm_equity, mm_pnl = market_maker_reward(
            mm_cash, value1, mm_equity0, self.mm[6], self.mm_reward_scale
        )
        self.mm[0], self.mm[2], self.mm[3], self.mm[4], self.mm[5] = (
            mm_cash, mm_perp, p1, mm_equity, basis1,
        )  # fmt: skip

        ended = gov_term | gov_trunc
        self.market_done = ended.copy()
        self._gov_obs[...] = gov_obs
        self._observe(np.ones(e, dtype=bool), alive)  # a bankrupt one sees its last step
        obs = self.observations()
        rewards = {"governor": gov_r, "liquidator": liq_r, "market_maker": mm_r}
        terminated = {
            "governor": gov_term,
            "liquidator": liq_term | (alive & gov_term[:, None]),
            "market_maker": gov_term.copy(),
        }
        truncated = {
            "governor": gov_trunc,
            "liquidator": alive & ~liq_term & gov_trunc[:, None],
            "market_maker": gov_trunc.copy(),
        }
        info = {
            "governor": gov_info,
            "liquidator": {
                "fill_frac": fills, "take_frac": take, "gas_bid_frac": bid,
                "seized_asset": flows["seized_asset"], "repaid_usd": repaid,
                "gas_usd": flows["gas_usd"], "sold_asset": sold, "sale_proceeds_usd": proceeds,
                "slippage_usd": slippage,
                "perp_fee_usd": perp_fee, "perp_variation_usd": variation + settle,
                "funding_usd": funding, "credit_interest_usd": -credit, "equity_usd": equity,
                "pnl_usd": pnl, "inventory_penalty_usd": penalty, "cash_usd": cash,
                "inventory_asset": inv, "perp_asset": perp,
                "basis_frac": np.broadcast_to(basis1[:, None], (e, m)).copy(),
            },
            "market_maker": {
                "lp_share": share1, "lp_value_usd": value1, "fee_income_usd": fee_income,
                "impermanent_loss_usd": il, "funding_usd": mm_funding,
                "perp_fee_usd": mm_perp_fee, "perp_variation_usd": mm_variation,
                "credit_interest_usd": -mm_credit, "equity_usd": mm_equity, "pnl_usd": mm_pnl,
                "liquidity_change_frac": change,
            },
            "alive": self.alive.copy(),
            "market_done": ended,
            "end_cause": gov_info.get("end_cause"),
        }  # fmt: skip
        return obs, rewards, terminated, truncated, info

    def _observe(self, mask: np.ndarray, slots: np.ndarray | None = None) -> None:
        """The liquidators' and the market maker's observations (Liquidator-v1's features)."""
        core, f, tr = self.core, self.core.field, self.core.tracker
        agg = self._aggregates()
        now = tr.fundamental[:, tr.pos]
        past = [
            tr.fundamental[:, (tr.pos - tr.lag(h)) % tr.length]
            for h in (self.params.run.substep_h, 1.0)
        ]
        time_left = 1.0 - core.t / core.horizon_substeps
        market = [
            log_return(now, past[0]), log_return(now, past[1]), tr.var_short, tr.var_long,
            tr.max_fundamental, tr.substeps_per_year, f("fundamental_usd"), f("oracle_usd"),
            f("pool_asset"), f("pool_debt"), f("debt_price_usd"), agg.total_debt,
            agg.total_collateral_asset, f("supply_usd"), f("gas_gwei"), f("liquidation_bonus"),
            *agg.debt_below_usd.T,
        ]  # fmt: skip
        cash, inv, perp, _, equity, basis = self.liq
        col = [x[:, None] if isinstance(x, np.ndarray) else x for x in market]
        feats = liquidator_features(
            *col, inv, perp, cash, equity, basis, self.initial_cash_usd, time_left[:, None]
        )
        e, m = self.num_envs, self.num_liquidators
        out = np.stack(
            [np.broadcast_to(np.asarray(v, dtype=np.float64), (e, m)) for v in feats], axis=-1
        )
        np.clip(out, self._liq_low, self._liq_high, out=out)
        np.copyto(out, 0.0, where=np.isnan(out))
        keep = (mask[:, None] & self.alive if slots is None else slots)[..., None]
        np.copyto(self._liq_obs, out.astype(np.float32), where=keep)
        share, held, _ = self._mm_lp()
        mc, _, mp, _, meq, mb, capital = self.mm
        mfeats = liquidator_features(
            *market, held, mp, mc, meq, mb, 1.0, time_left
        )  # fmt: skip
        # the books' features are per unit of the market maker's own starting capital
        mfeats = list(mfeats)
        cap = np.where(capital > 0, capital, 1.0)
        for j in range(15, 19):
            mfeats[j] = mfeats[j] / cap
        mout = np.stack(
            [np.broadcast_to(np.asarray(v, dtype=np.float64), (e,)) for v in (*mfeats, share)],
            axis=-1,
        )
        np.clip(mout, self._mm_low, self._mm_high, out=mout)
        np.copyto(mout, 0.0, where=np.isnan(mout))
        self._mm_obs[mask] = mout[mask].astype(np.float32)

    def global_state(self) -> np.ndarray:
        """The global view ``[E, G]``: the governor's observation, every liquidator's
        observation and alive flag, the market maker's observation."""
        e = self.num_envs
        return np.concatenate(
            [
                self._gov_obs,
                self._liq_obs.reshape(e, -1),
                self.alive.astype(np.float32),
                self._mm_obs,
            ],
            axis=1,
        )

    def state_space(self) -> spaces.Box:
        go, lo, mo = (self.spaces[r][0] for r in ROLES)
        m = self.num_liquidators
        low = np.concatenate([go.low, np.tile(lo.low, m), np.zeros(m), mo.low])
        high = np.concatenate([go.high, np.tile(lo.high, m), np.ones(m), mo.high])
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def close(self) -> None:
        self.gov.close()


__all__ = [
    "MA_LIQUIDATOR_ACTIONS",
    "MARKET_MAKER_ACTIONS",
    "MARKET_MAKER_FEATURES",
    "MultiAgentMarkets",
    "ROLES",
]
