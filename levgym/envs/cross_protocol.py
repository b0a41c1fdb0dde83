"""levgym/CrossProtocolHedger-v0: one large leveraged account spread over Aave, Compound and
Morpho on shared markets, kept out of liquidation through a stress by moving collateral,
repaying or borrowing, and hedging on the liquidator's perp."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..engine import multiprotocol as MP
from ..engine import portfolio_market as PM
from ..engine.params import HOURS_PER_YEAR
from ..engine.portfolio import account_data
from ..engine.protocols import comet_absorb, unified_health_factor
from ..engine.rules import pool_price_usd, sell_asset
from ..market import env_generators
from ..scenarios import EVAL_SEED_OFFSET
from ..scenarios import multiasset as MA
from ..simulation_multiprotocol import build
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import SPLITS, horizon_steps
from .features import VOL_PRIOR_ANNUAL, VOL_SHORT_HALFLIFE_H, Feature
from .formulas import (
    annual_volatility,
    ewma_variance,
    liquidator_action,
    liquidator_carry,
    liquidator_hedge,
    log_return,
    perp_basis,
)

PROTOCOLS = ("aave_v3_ethereum", "compound_v3_usdc", "morpho_wsteth_usdc")
"""The three protocol presets of the market, in the order of the actions and features."""
SHORT_NAMES = ("aave", "compound", "morpho")
COLLATERAL_SYMBOL = "wstETH"
"""The account's collateral: the one asset every preset takes (Morpho's market is wstETH/USDC)."""
DEBT_SYMBOL = "USDC"
"""The account's debt: the base of Compound and Morpho, borrowable on Aave."""
PERP_SYMBOL = "WETH"
"""The perp's underlying: ETH, as the liquidator's (wstETH is ETH times Lido's exchange rate)."""
DEADZONE = 0.05
"""A move / debt component with ``|a|`` below this does nothing and pays no gas, so a policy can
say "leave this leg alone" without hitting exactly 0."""
DEFAULT_HEDGER_SCENARIOS = ("multiasset_2021",)
WBTC_CRASH_BETA = 0.5
"""Share of the ETH crash that WBTC takes (correlated markets; the background books hold it)."""

ACTIONS: tuple[Feature, ...] = (
    *(
        f
        for s in SHORT_NAMES
        for f in (
            Feature(
                f"move_{s}",
                f"collateral flow of the {s} leg: a < 0 withdraws -a of it to the wallet, "
                "a > 0 deposits that share of the wallet",
                -1.0,
                1.0,
            ),
            Feature(
                f"loan_{s}",
                f"a < 0 repays -a of the {s} leg's debt, a > 0 borrows a of its room to its LTV",
                -1.0,
                1.0,
            ),
        )
    ),
    Feature(
        "hedge",
        "short perp notional / the account's ETH exposure, (a + 1) / 2 times `max_hedge_ratio`",
        -1.0,
        1.0,
    ),
)

FEATURES: tuple[Feature, ...] = (
    *(
        f
        for s in SHORT_NAMES
        for f in (
            Feature(f"hf_{s}", f"health factor of the {s} leg under its rule (5: no debt)", 0.0, 5.0),
            Feature(f"collateral_{s}", f"{s} leg's collateral at its oracle / initial collateral", 0.0, 10.0),
            Feature(f"debt_{s}", f"{s} leg's debt (USD) / initial collateral value", 0.0, 10.0),
            Feature(f"oracle_gap_{s}", f"{s}'s wstETH oracle / wstETH pool price - 1, x10", -10.0, 10.0),
        )
    ),
    Feature("account_hf", "unified HF: sum of thresholds / sum of debts over the legs", 0.0, 5.0),
    Feature("wallet", "wstETH in the wallet at the pool price / initial collateral value", 0.0, 10.0),
    Feature("cash", "cash / initial collateral value (negative: drawn credit)", -10.0, 10.0),
    Feature("hedge", "perp notional / initial collateral value (negative: short)", -10.0, 10.0),
    Feature("equity", "account equity / initial equity", -10.0, 10.0),
    Feature("pool_deviation", "wstETH pool price / fundamental - 1, x10", -10.0, 10.0),
    Feature("return_1h", "log return of the wstETH fundamental over the step, x10", -10.0, 10.0),
    Feature("vol_short", "realized wstETH volatility, EWMA half-life 6 h, annualized", 0.0, 20.0),
    Feature("drawdown", "1 - wstETH fundamental / its maximum this episode", 0.0, 1.0),
    Feature("funding_rate", "perp basis = funding paid by longs per interval, x100", -10.0, 10.0),
    Feature("time_left", "share of the episode left", 0.0, 1.0),
)  # fmt: skip

INFO_KEYS = (
    "equity_usd",
    "pnl_usd",
    "liquidation_loss_usd",
    "gas_usd",
    "slippage_usd",
    "perp_fee_usd",
    "funding_usd",
    "interest_usd",
    "refund_usd",
    "account_hf",
    "liquidations",
)
"""Per-step ``info`` arrays ``[E]`` (USD unless named otherwise)."""


# ----------------------------------------------------------------------------- engine glue


def hedger_substep(
    state: MP.MultiState, fundamental_usd: np.ndarray, protocols: tuple, params: MP.MultiParams,
    slot: int,
) -> tuple[MP.MultiState, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`levgym.engine.multiprotocol.substep` (the same calls in the same order, so the
    same state: tested), also returning what the account in ``slot`` needs: its debt ``[E, P]``
    after interest and before the cascade, Compound's refund to it ``[E]`` (base units: the
    credit above its debt when it is absorbed, :func:`levgym.engine.protocols.comet_absorb`'s
    ``refund_base``, which the step pays but does not keep per account) and the rounds ``[E]``."""
    state = MP.market_update(state, fundamental_usd, protocols, params)
    state = MP.accrue_interest(state, protocols, params)
    debt_mid = np.stack(
        [b.debt[:, slot, pr.base_index] for pr, b in zip(protocols, state.books, strict=True)],
        axis=1,
    )
    e = state.books[0].shape[0]
    rounds = np.zeros(e, dtype=np.int64)
    refund = np.zeros(e)
    comet = [p for p, pr in enumerate(protocols) if pr.kind == "compound_v3"]
    for _ in range(params.market.max_cascade_rounds):
        before = [state.books[p] for p in comet]
        state, calls = MP.cascade_round(state, protocols, params, True)
        for p, b0 in zip(comet, before, strict=True):
            b1 = state.books[p]
            gone = (b0.supply[:, slot] != b1.supply[:, slot]).any(axis=-1)
            if gone.any():
                ab = comet_absorb(b0.supply[:, slot], b0.debt[:, slot], b0.oracle_usd, protocols[p])
                refund += np.where(gone & ab.absorbed, ab.refund_base, 0.0)
        rounds += calls > 0
        if not calls.any():
            break
    state = MP.write_off(state, protocols)
    books = tuple(
        b.replace(
            cascade_rounds_max=np.maximum(b.cascade_rounds_max, rounds),
            substep_index=b.substep_index + 1,
        )
        for b in state.books
    )
    state = state.replace(
        books=books, cascade_rounds_max=np.maximum(state.cascade_rounds_max, rounds)
    )
    return state, debt_mid, refund, rounds


def scatter_rows(old: Any, new: Any, idx: np.ndarray) -> Any:
    """``old`` with the env rows ``idx`` replaced by ``new``'s rows (arrays with the env axis
    first, in dicts, tuples and state dataclasses; other values are ``old``'s)."""
    if isinstance(old, np.ndarray):
        out = old.copy()
        out[idx] = new
        return out
    if isinstance(old, dict):
        return {k: scatter_rows(v, new[k], idx) for k, v in old.items()}
    if isinstance(old, tuple):
        return tuple(scatter_rows(o, n, idx) for o, n in zip(old, new, strict=True))
    if isinstance(old, MP.MultiState | PM.PortfolioState):
        names = [f for f in old.__dataclass_fields__ if f not in ("time_h", "pool_group")]
        return old.replace(
            **{f: scatter_rows(getattr(old, f), getattr(new, f), idx) for f in names}
        )
    return old


def crash_factor(times_h: np.ndarray, crash_frac: float, start_h: float, duration_h: float):
    """The stress: the ETH price path times ``1 - crash_frac * ramp``, ``ramp`` rising linearly
    from 0 at ``start_h`` to 1 at ``start_h + duration_h`` and staying there."""
    ramp = np.clip((times_h - start_h) / duration_h, 0.0, 1.0)
    return 1.0 - crash_frac * ramp


class HedgerMarket:
    """The market behind the env: E multi-protocol markets with their own episodes, seeds and
    clocks (the interface of :class:`levgym.envs.core.BatchedMarket` that
    :class:`~levgym.envs.base.LevgymVectorEnv` uses).

    Env ``i`` seeded ``s`` owns ``default_rng(s + i)``; each episode draws from it, in order:
    the scenario of the mixture, the scenario seed (train or eval block), the book seed, the
    crash depth, the crash start hour, and the three legs' start HFs. Its fundamentals are the
    scenario's one-path draw times the crash; its books are
    :func:`levgym.simulation_multiprotocol.build` of one env from the book seed (the presets'
    background books of ``num_positions`` slots) plus the account as one more slot per protocol.
    """

    def __init__(
        self, env: CrossProtocolHedgerVectorEnv, num_envs: int, scenarios: list[str],
        weights: np.ndarray, split: str,
    ) -> None:  # fmt: skip
        self.env = env
        self.num_envs = num_envs
        self.num_positions = env.num_positions  # background slots per protocol
        self.backend = "numpy"
        self.scenarios = scenarios
        self.scenario_cdf = np.cumsum(weights)
        self.split = split
        self.scenario_overrides: dict[str, dict[str, Any]] = {}
        self.seeds: list[int] = []
        self.rngs: list[np.random.Generator] | None = None
        self.state: MP.MultiState | None = None
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.scenario_index = np.zeros(num_envs, dtype=np.int64)
        self.crash = np.zeros((num_envs, 2))
        self.engine_seconds = 0.0
        """Wall time inside the engine's substep (for :mod:`levgym.envs.speed`)."""
        self.horizon_substeps = env.max_steps
        k = len(env.reserves.symbols)
        self.fundamentals = np.zeros((num_envs, env.max_steps + 1, k))

    @property
    def started(self) -> bool:
        return self.state is not None

    def seed(self, seeds: Sequence[int]) -> None:
        self.seeds, self.rngs = env_generators(seeds, self.num_envs)

    @property
    def at_horizon(self) -> np.ndarray:
        return self.t >= self.horizon_substeps

    def scenario_of(self, env: int) -> str:
        return self.scenarios[int(self.scenario_index[env])]

    def _draw(self, env: int):
        """Env ``env``'s next episode: fundamentals ``[T + 1, K]``, books and leg HFs."""
        assert self.rngs is not None
        v = self.env
        rng = self.rngs[env]
        k = int(np.searchsorted(self.scenario_cdf, rng.random() * self.scenario_cdf[-1], "right"))
        k = min(k, len(self.scenarios) - 1)
        lo = EVAL_SEED_OFFSET if self.split == "eval" else 0
        scenario_seed = int(rng.integers(lo, lo + EVAL_SEED_OFFSET))
        book_seed = int(rng.integers(0, 2**31 - 1))
        crash = float(rng.uniform(*v.crash_frac_range))
        start_h = float(rng.integers(v.crash_start_h_range[0], v.crash_start_h_range[1] + 1))
        hf = rng.uniform(v.start_hf_range[0], v.start_hf_range[1], len(PROTOCOLS))
        self.scenario_index[env] = k
        self.crash[env] = (crash, start_h)
        paths = MA.get_scenario(self.scenarios[k]).build(
            1, v.max_steps + 1, v.step_h, scenario_seed
        )
        fac = crash_factor(paths.times_h, crash, start_h, v.crash_duration_h)
        prices = paths.prices_usd.copy()
        for sym, beta in (("WETH", 1.0), ("stETH", 1.0), ("WBTC", WBTC_CRASH_BETA)):
            prices[:, 0, paths.index(sym)] *= 1.0 - beta * (1.0 - fac)
        ratio = PM.initial_exchange_ratio(v.reserves, 1)
        f = PM.fundamentals_from_paths(prices, paths.symbols, v.reserves, ratio)[:, 0]  # [T+1, K]
        protocols, s, d, r, rb, tg = build(PROTOCOLS, 1, v.num_positions, book_seed, f[:1], v.params)  # fmt: skip
        return f, s, d, r, rb, tg, hf

    def new_episodes(self, mask: np.ndarray) -> np.ndarray:
        if self.rngs is None:
            raise RuntimeError("seed() must be called before the first episode")
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if idx.size == 0:
            return idx
        v = self.env
        draws = [self._draw(int(i)) for i in idx]
        f0 = np.stack([d[0][0] for d in draws])
        for j, i in enumerate(idx):
            self.fundamentals[i] = draws[j][0]
        self.t[idx] = 0
        sup, debt, rows = [], [], []
        for p in range(len(v.protocols)):
            s = np.concatenate([d[1][p] for d in draws])
            b = np.concatenate([d[2][p] for d in draws])
            r = np.concatenate([d[3][p] for d in draws])
            sup.append(np.concatenate([s, np.zeros((len(idx), 1, s.shape[2]))], axis=1))
            debt.append(np.concatenate([b, np.zeros((len(idx), 1, s.shape[2]))], axis=1))
            rows.append(np.concatenate([r, np.zeros((len(idx), 1), dtype=r.dtype)], axis=1))
        rb = np.concatenate([d[4] for d in draws])
        tg = np.concatenate([d[5] for d in draws])
        # the account: an equal share of its collateral in every leg, each leg's debt set by its
        # drawn start HF at that protocol's oracle
        kc, kd = v.k_coll, v.k_debt
        hf = np.stack([d[6] for d in draws])  # [M, P]
        coll_asset = v.account_collateral_usd / len(PROTOCOLS) / f0[:, kc]
        probe = MP.init_state(v.protocols, v.params, sup, debt, rows, f0, rb, tg)
        for p, b in enumerate(probe.books):
            sup[p][:, -1, kc] = coll_asset
            thr = coll_asset * b.oracle_usd[:, kc] * v.reserves_of[p].lt[kc]
            debt[p][:, -1, kd] = thr / hf[:, p] / b.oracle_usd[:, kd]
        fresh = MP.init_state(v.protocols, v.params, sup, debt, rows, f0, rb, tg)
        if self.state is None:
            self.state = fresh
        else:
            self.state = scatter_rows(self.state, fresh, idx)
        return idx


# ----------------------------------------------------------------------------- the vector env


class CrossProtocolHedgerVectorEnv(LevgymVectorEnv):
    """Native vector env of ``levgym/CrossProtocolHedger-v0``: E multi-protocol markets on one
    batched :mod:`levgym.engine.multiprotocol` state.

    The spec is :class:`CrossProtocolHedgerEnv`'s docstring; ``gym.make_vec(
    "levgym/CrossProtocolHedger-v0", num_envs=E, ...)`` returns this class, with same-step
    autoreset. Env ``i`` of a batch reset with ``seed=s`` behaves as ``CrossProtocolHedgerEnv``
    reset with ``seed=s + i``.
    """

    env_id = "levgym/CrossProtocolHedger-v0"
    FEATURES = FEATURES
    ACTIONS = ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_HEDGER_SCENARIOS
    TERMINAL_CAUSE = "liquidated"
    SHARED_SETTABLE: ClassVar[tuple[str, ...]] = ("liquidation_penalty", "reward_scale")
    PER_ENV_ATTRS: ClassVar[tuple[str, ...]] = (
        "scenario",
        "episode_step",
        "episode_return",
        "seed",
    )

    def __init__(
        self,
        num_envs: int = 1,
        *,
        num_positions: int = 64,
        scenarios: str | Sequence[str] | None = None,
        horizon_h: float = 48.0,
        margin: str = "per_protocol",
        account_collateral_usd: float = 20e6,
        start_hf_range: tuple[float, float] = (1.10, 1.40),
        initial_cash_usd: float = 0.0,
        crash_frac_range: tuple[float, float] = (0.10, 0.35),
        crash_start_h_range: tuple[int, int] = (2, 24),
        crash_duration_h: float = 6.0,
        volatile_pool_depth_usd: float = 60e6,
        gas_usd_per_action: float = 20.0,
        max_borrow_frac: float = 1.0,
        max_hedge_ratio: float = 1.0,
        perp_fee_frac: float = 5e-4,
        basis_mean_frac: float = 1e-4,
        basis_beta: float = 0.5,
        funding_interval_h: float = 8.0,
        credit_rate_apr: float = 0.20,
        liquidation_penalty: float = 1.0,
        reward_scale: float = 1e4,
        split: str = "train",
        render_mode: str | None = None,
        autoreset_mode: Any = "SameStep",
    ) -> None:
        # not LevgymVectorEnv.__init__: that builds the single-asset market; the rest of the base
        # (seeding, autoreset, infos, per-env access) runs on the HedgerMarket's same interface
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is out of range; allowed an integer >= 1")
        if isinstance(num_positions, bool) or not isinstance(num_positions, int | np.integer) or num_positions < 1:  # fmt: skip
            raise ValueError(f"num_positions={num_positions!r} is out of range; allowed an integer >= 1")  # fmt: skip
        if render_mode is not None and render_mode != "ansi":
            raise ValueError(f"render_mode={render_mode!r} is unknown; allowed None, ansi")
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is unknown; allowed {', '.join(SPLITS)}")
        if isinstance(scenarios, str):
            scenarios = [scenarios]
        names = list(scenarios) if scenarios is not None else list(DEFAULT_HEDGER_SCENARIOS)
        if not names:
            raise ValueError(f"scenarios=[] is empty; allowed names from {', '.join(MA.SCENARIOS)}")
        for n in names:
            MA.get_scenario(n)
        market = PM.PortfolioMarketParams(volatile_pool_depth_usd=volatile_pool_depth_usd)
        self.params = MP.MultiParams(market, margin, False)
        self.step_h = market.substep_h
        self.substeps_per_step = 1
        self.horizon_h = horizon_h
        self.max_steps = horizon_steps(horizon_h, self.step_h)
        self.account_collateral_usd = check_weight("account_collateral_usd", account_collateral_usd)
        if self.account_collateral_usd <= 0:
            raise ValueError(f"account_collateral_usd={account_collateral_usd!r} is out of range; allowed > 0")  # fmt: skip
        self.start_hf_range = _range("start_hf_range", start_hf_range, 1.0, 10.0)
        if self.start_hf_range[0] <= 1.0:
            raise ValueError(f"start_hf_range={start_hf_range!r} is out of range; allowed 1 < low <= high <= 10")  # fmt: skip
        self.initial_cash_usd = check_weight("initial_cash_usd", initial_cash_usd)
        self.crash_frac_range = _range("crash_frac_range", crash_frac_range, 0.0, 0.9)
        lo, hi = _range("crash_start_h_range", crash_start_h_range, 0.0, 1e6)
        if lo != int(lo) or hi != int(hi):
            raise ValueError(f"crash_start_h_range={crash_start_h_range!r} must be whole hours")
        self.crash_start_h_range = (int(lo), int(hi))
        self.crash_duration_h = check_weight("crash_duration_h", crash_duration_h)
        if self.crash_duration_h <= 0:
            raise ValueError(f"crash_duration_h={crash_duration_h!r} is out of range; allowed > 0")
        self.gas_usd_per_action = check_weight("gas_usd_per_action", gas_usd_per_action)
        self.max_borrow_frac = check_weight("max_borrow_frac", max_borrow_frac)
        if self.max_borrow_frac > 1:
            raise ValueError(f"max_borrow_frac={max_borrow_frac!r} is out of range; allowed [0, 1]")
        self.max_hedge_ratio = check_weight("max_hedge_ratio", max_hedge_ratio)
        self.perp_fee_frac = check_weight("perp_fee_frac", perp_fee_frac)
        self.basis_mean_frac = float(basis_mean_frac)
        if not np.isfinite(self.basis_mean_frac) or abs(self.basis_mean_frac) >= 0.1:
            raise ValueError(f"basis_mean_frac={basis_mean_frac!r} is out of range; allowed (-0.1, 0.1)")  # fmt: skip
        self.basis_beta = check_weight("basis_beta", basis_beta)
        self.funding_interval_h = check_weight("funding_interval_h", funding_interval_h)
        if self.funding_interval_h <= 0:
            raise ValueError(f"funding_interval_h={funding_interval_h!r} is out of range; allowed > 0")  # fmt: skip
        self.credit_rate_apr = check_weight("credit_rate_apr", credit_rate_apr)
        self.liquidation_penalty = liquidation_penalty
        self.reward_scale = reward_scale

        from ..engine.protocol_presets import protocol_preset

        self.protocols = tuple(protocol_preset(n) for n in PROTOCOLS)
        self.reserves = self.protocols[0].reserves
        self.reserves_of = tuple(pr.reserves for pr in self.protocols)
        self.k_coll = self.reserves.index(COLLATERAL_SYMBOL)
        self.k_debt = self.reserves.index(DEBT_SYMBOL)
        self.k_perp = self.reserves.index(PERP_SYMBOL)
        # the withdrawal check of each protocol: Aave keeps HF >= 1 (LT), Comet and Morpho keep
        # the account borrow-collateralized (borrowCollateralFactor; Morpho's LLTV)
        self._withdraw_weight = np.array(
            [(r.lt if pr.kind == "aave_v3" else r.ltv)[self.k_coll] for pr, r in zip(self.protocols, self.reserves_of, strict=True)]
        )  # fmt: skip
        self._ltv = np.array([r.ltv[self.k_coll] for r in self.reserves_of])
        has_pool, fee, _ = PM.pool_layout(self.reserves, market)
        self._fee = float(fee[self.k_coll])

        self.num_positions = int(num_positions)
        self.slot = self.num_positions
        self.num_envs = int(num_envs)
        names_w = np.full(len(names), 1.0 / len(names))
        self.core = HedgerMarket(self, self.num_envs, names, names_w, split)
        # spaces, render and autoreset modes, episode counters: the base class's, on this core
        self._init_batch(render_mode, autoreset_mode)
        self.metadata = {**self.metadata, "render_modes": ["ansi"]}
        e = self.num_envs
        # the account's books outside the protocols
        self.cash_usd = np.zeros(e)
        self.wallet_asset = np.zeros(e)
        self.perp_asset = np.zeros(e)
        self.perp_mark_usd = np.zeros(e)
        self.basis_frac = np.zeros(e)
        self.equity_usd = np.zeros(e)
        self.initial_equity_usd = np.ones(e)
        self.initial_collateral_usd = np.ones(e)
        self.var_short = np.zeros(e)
        self.max_price = np.ones(e)
        self.last_price = np.ones(e)
        self.liquidated_asset = np.zeros(e)
        self._alpha = 1.0 - 0.5 ** (self.step_h / VOL_SHORT_HALFLIFE_H)
        self._var_prior = VOL_PRIOR_ANNUAL**2 * self.step_h / HOURS_PER_YEAR
        self._per_year = HOURS_PER_YEAR / self.step_h

    # ------------------------------------------------------------------ account views
    def _legs(self, state: MP.MultiState | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The account's collateral (asset) and debt (USDC units) per leg ``[E, P]``."""
        s = state or self.core.state
        c = np.stack([b.supply[:, self.slot, self.k_coll] for b in s.books], axis=1)
        d = np.stack([b.debt[:, self.slot, self.k_debt] for b in s.books], axis=1)
        return c, d

    def _leg_values(self, state: MP.MultiState | None = None):
        """(threshold USD, debt USD, borrow limit USD, collateral USD) per leg ``[E, P]`` at each
        protocol's own weights and oracle."""
        s = state or self.core.state
        out = [[], [], [], []]
        for b, r in zip(s.books, self.reserves_of, strict=True):
            a = account_data(b.supply[:, self.slot], b.debt[:, self.slot], b.oracle_usd, r)
            for lst, x in zip(out, (a.threshold_usd, a.debt_usd, a.borrow_limit_usd, a.collateral_usd), strict=True):  # fmt: skip
                lst.append(x)
        return tuple(np.stack(x, axis=1) for x in out)

    def _prices(self, state: MP.MultiState | None = None):
        """(wstETH pool USD, wstETH fundamental, WETH fundamental, WETH pool USD, USDC
        fundamental) ``[E]``."""
        s = state or self.core.state
        f = s.books[0].fundamental_usd
        usdc = f[:, self.k_debt]
        pa, pq = s.pool_asset[:, 0], s.pool_quote[:, 0]
        pool = pool_price_usd(pa, pq, usdc[:, None])
        kc, kp = self.k_coll, self.k_perp
        return pool[:, kc], f[:, kc], f[:, kp], pool[:, kp], usdc

    def _equity(self, state: MP.MultiState | None = None) -> np.ndarray:
        c, d = self._legs(state)
        pool, _, _, _, usdc = self._prices(state)
        return self.cash_usd + (self.wallet_asset + c.sum(axis=1)) * pool - d.sum(axis=1) * usdc

    def _exposure_eth(self) -> np.ndarray:
        """The account's ETH exposure: its wstETH (legs and wallet) in ETH at the fundamentals."""
        c, _ = self._legs()
        _, fw, fe, _, _ = self._prices()
        return (self.wallet_asset + c.sum(axis=1)) * fw / fe

    def _reset_agent(self, mask: np.ndarray) -> None:
        self.cash_usd[mask] = self.initial_cash_usd
        self.wallet_asset[mask] = 0.0
        self.perp_asset[mask] = 0.0
        self.liquidated_asset[mask] = 0.0
        _, fw, fe, pe, _ = self._prices()
        self.perp_mark_usd[mask] = fe[mask]
        self.basis_frac[mask] = perp_basis(pe, fe, self.basis_mean_frac, self.basis_beta)[mask]
        eq = self._equity()
        self.equity_usd[mask] = eq[mask]
        self.initial_equity_usd[mask] = np.maximum(eq[mask], 1.0)
        _, _, _, coll = self._leg_values()
        self.initial_collateral_usd[mask] = np.maximum(coll.sum(axis=1)[mask], 1.0)
        self.var_short[mask] = self._var_prior
        self.max_price[mask] = fw[mask]
        self.last_price[mask] = fw[mask]

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        s = core.state
        e, n_p = self.num_envs, len(PROTOCOLS)
        kc, kd, slot = self.k_coll, self.k_debt, self.slot
        move = actions[:, 0 : 2 * n_p : 2]
        dbt = actions[:, 1 : 2 * n_p : 2]
        move = np.where(np.abs(move) < DEADZONE, 0.0, move)
        dbt = np.where(np.abs(dbt) < DEADZONE, 0.0, dbt)
        books = [b for b in s.books]
        supply = [b.supply.copy() for b in books]
        debt = [b.debt.copy() for b in books]
        counters = [dict(b.counters) for b in books]
        pa, pq = s.pool_asset.copy(), s.pool_quote.copy()
        usdc = s.books[0].fundamental_usd[:, kd]
        cash, wallet = self.cash_usd.copy(), self.wallet_asset.copy()
        ops = np.zeros(e)
        slippage = np.zeros(e)
        eq0 = self.equity_usd.copy()

        def bump(p, key, col, amount):
            c = counters[p][key].copy()
            c[:, col] += amount
            counters[p][key] = c

        # 1. withdrawals to the wallet, each capped by its protocol's withdrawal check
        for p, b in enumerate(books):
            c = supply[p][:, slot, kc]
            d_usd = debt[p][:, slot, kd] * b.oracle_usd[:, kd]
            keep = d_usd / (b.oracle_usd[:, kc] * self._withdraw_weight[p])
            room = np.maximum(c - keep, 0.0)
            w = np.minimum(np.maximum(-move[:, p], 0.0) * c, room)
            supply[p][:, slot, kc] = c - w
            wallet = wallet + w
            bump(p, "withdrawn_collateral_asset", kc, w)
            ops += w > 0
        # 2. repayments: from cash, then by selling wstETH (wallet first, then the leg's own
        #    collateral, withdrawn in the same transaction) for USDC in the shared pool
        for p in range(n_p):
            d = debt[p][:, slot, kd]
            r = np.maximum(-dbt[:, p], 0.0) * d
            need = r * usdc
            from_cash = np.minimum(np.maximum(cash, 0.0), need)
            short_q = (need - from_cash) / usdc  # USDC to raise
            a0, q0 = pa[:, 0, kc], pq[:, 0, kc]
            short_q = np.minimum(short_q, 0.5 * q0)
            # exact-out of USDC: the constant-product purchase with the pool's sides swapped
            q1, a1, sell = PM.buy_exact_out(q0, a0, short_q, self._fee)
            avail = wallet + supply[p][:, slot, kc]
            over = sell > avail
            a_all, q_all, out_all = sell_asset(a0, q0, avail, self._fee)
            sell = np.where(over, avail, np.where(short_q > 0, sell, 0.0))
            a1 = np.where(over, a_all, np.where(short_q > 0, a1, a0))
            q1 = np.where(over, q_all, np.where(short_q > 0, q1, q0))
            got_q = np.where(over, out_all, short_q)
            slippage += sell * (q0 / a0) * usdc - got_q * usdc
            pa[:, 0, kc], pq[:, 0, kc] = a1, q1
            repaid = np.minimum(d, from_cash / usdc + got_q)
            cash = cash - from_cash + (from_cash / usdc + got_q - repaid) * usdc
            from_wallet = np.minimum(sell, wallet)
            from_leg = sell - from_wallet
            wallet = wallet - from_wallet
            supply[p][:, slot, kc] -= from_leg
            debt[p][:, slot, kd] = d - repaid
            bump(p, "withdrawn_collateral_asset", kc, from_leg)
            bump(p, "repaid_by_borrowers_asset", kd, repaid)
            ops += repaid > 0
        # 3. deposits: the wallet split over the legs asking for it
        ask = np.maximum(move, 0.0)
        share = ask / np.maximum(ask.sum(axis=1, keepdims=True), 1.0)
        dep = share * wallet[:, None]
        for p in range(n_p):
            supply[p][:, slot, kc] += dep[:, p]
            bump(p, "added_collateral_asset", kc, dep[:, p])
            ops += dep[:, p] > 0
        wallet = wallet - dep.sum(axis=1)
        # 4. borrows up to each leg's LTV (and the lenders' cash left)
        for p, b in enumerate(books):
            room_usd = supply[p][:, slot, kc] * b.oracle_usd[:, kc] * self._ltv[p] - debt[p][:, slot, kd] * b.oracle_usd[:, kd]  # fmt: skip
            room = np.maximum(room_usd, 0.0) / b.oracle_usd[:, kd]
            cash_left = np.maximum(
                b.lender_supply_asset[:, kd] - debt[p][:, :, kd].sum(axis=1), 0.0
            )
            amt = np.minimum(np.maximum(dbt[:, p], 0.0) * self.max_borrow_frac * room, cash_left)
            debt[p][:, slot, kd] += amt
            cash = cash + amt * usdc
            bump(p, "borrowed_asset", kd, amt)
            ops += amt > 0
        gas = ops * self.gas_usd_per_action
        cash = cash - gas
        books = [
            b.replace(supply=supply[p], debt=debt[p], counters=counters[p])
            for p, b in enumerate(books)
        ]
        s = s.replace(books=tuple(books), pool_asset=pa, pool_quote=pq)
        s = s.replace(books=MP._sync(s, self.protocols, self.params, pa, pq, s.books))
        self.wallet_asset[:] = wallet
        # 5. the perp hedge, set at the WETH fundamental (the liquidator's perp)
        _, _, hedge_ratio = liquidator_action(
            0.0, 0.0, actions[:, -1], 0.0, self.max_hedge_ratio, 0.0, 0.0
        )
        core.state = s
        _, fw0, p0, _, _ = self._prices()
        cash, perp, settle, perp_fee = liquidator_hedge(
            cash, self._exposure_eth(), self.perp_asset, self.perp_mark_usd, p0, p0,
            hedge_ratio, self.perp_fee_frac, 1.0,
        )  # fmt: skip
        # 6. one substep of the market: the account's legs are slots of the books, liquidated by
        #    the keepers (or absorbed by Comet) by the same rules as anyone's
        c_before, _ = self._legs(s)
        rows = np.arange(e)
        t_next = np.minimum(core.t + 1, self.max_steps)
        f_next = core.fundamentals[rows, t_next]
        t0 = time.perf_counter()
        s, debt_mid, refund, _ = hedger_substep(s, f_next, self.protocols, self.params, slot)
        core.engine_seconds += time.perf_counter() - t0
        core.state = s
        core.t = core.t + 1
        c_after, d_after = self._legs(s)
        d_start = np.stack([b.debt[:, slot, kd] for b in books], axis=1)
        pool1, fw1, p1, pe1, usdc1 = self._prices(s)
        # 7. perp carry (variation margin, funding at the new basis, credit interest)
        basis = perp_basis(pe1, p1, self.basis_mean_frac, self.basis_beta)
        cash, variation, funding, credit = liquidator_carry(
            cash, perp, p0, p1, basis, self.step_h / self.funding_interval_h,
            self.credit_rate_apr, self.step_h / HOURS_PER_YEAR,
        )  # fmt: skip
        refund_usd = refund * usdc1
        cash = cash + refund_usd
        self.cash_usd[:] = cash
        self.perp_asset[:] = perp
        self.perp_mark_usd[:] = p1
        self.basis_frac[:] = basis
        # 8. reward
        # at each protocol's oracle after the step: the price its liquidation rule paid at
        lost = np.maximum(c_before - c_after, 0.0)
        removed = np.maximum(debt_mid - d_after, 0.0)
        o_c = np.stack([b.oracle_usd[:, kc] for b in s.books], axis=1)
        o_d = np.stack([b.oracle_usd[:, kd] for b in s.books], axis=1)
        liq_loss = np.maximum((lost * o_c - removed * o_d).sum(axis=1) - refund_usd, 0.0)
        self.liquidated_asset += lost.sum(axis=1)
        equity = self._equity(s)
        pnl = equity - eq0
        self.equity_usd[:] = equity
        scale = self.reward_scale / self.initial_equity_usd
        reward = scale * (pnl - self.liquidation_penalty * liq_loss)
        terminated = (c_after.sum(axis=1) <= 0.0) & (self.liquidated_asset > 0.0)
        # the volatility tracker of the wstETH fundamental
        r = log_return(fw1, self.last_price)
        self.var_short[:] = ewma_variance(self.var_short, r, self._alpha)
        self._ret = r
        self.last_price[:] = fw1
        self.max_price[:] = np.maximum(self.max_price, fw1)
        thr, dusd, _, _ = self._leg_values(s)
        liqs = np.stack([b.liquidations for b in s.books], axis=1)
        info = {
            "equity_usd": equity,
            "pnl_usd": pnl,
            "liquidation_loss_usd": liq_loss,
            "gas_usd": gas,
            "slippage_usd": slippage,
            "perp_fee_usd": perp_fee,
            "funding_usd": funding,
            "interest_usd": ((debt_mid - d_start) * usdc1[:, None]).sum(axis=1),
            "refund_usd": refund_usd,
            "account_hf": unified_health_factor(thr, dusd),
            "liquidations": liqs.sum(axis=1).astype(np.float64),
        }
        info = {k: np.asarray(info[k], dtype=np.float64) for k in INFO_KEYS}
        info["perp_variation_usd"] = variation + settle
        info["credit_interest_usd"] = -credit
        return reward, terminated, info

    def _observe(self, envs: np.ndarray | None = None) -> None:
        s = self.core.state
        thr, dusd, _, coll = self._leg_values(s)
        ok = dusd > 0
        hf = np.where(ok, thr / np.where(ok, dusd, 1.0), 5.0)
        pool, fw, fe, pe, usdc = self._prices(s)
        c0 = self.initial_collateral_usd
        f = np.empty((self.num_envs, len(self.FEATURES)))
        for p, b in enumerate(s.books):
            f[:, 4 * p] = hf[:, p]
            f[:, 4 * p + 1] = coll[:, p] / c0
            f[:, 4 * p + 2] = dusd[:, p] / c0
            f[:, 4 * p + 3] = 10.0 * (b.oracle_usd[:, self.k_coll] / pool - 1.0)
        j = 4 * len(PROTOCOLS)
        ret = getattr(self, "_ret", np.zeros(self.num_envs)) * (self._episode_length > 0)
        cols = (
            np.where(dusd.sum(axis=1) > 0, unified_health_factor(thr, dusd), 5.0),
            self.wallet_asset * pool / c0,
            self.cash_usd / c0,
            self.perp_asset * fe / c0,
            self.equity_usd / self.initial_equity_usd,
            10.0 * (pool / fw - 1.0),
            10.0 * ret,
            annual_volatility(self.var_short, self._per_year),
            1.0 - fw / self.max_price,
            100.0 * self.basis_frac,
            1.0 - self.core.t / self.max_steps,
        )
        for i, v in enumerate(cols):
            f[:, j + i] = v
        self._store_observation(f)

    def _reset_info(self, info: dict[str, Any]) -> None:
        info["equity_usd"] = self.equity_usd.copy()

    def _start_episodes(self, mask: np.ndarray) -> None:
        super()._start_episodes(mask)
        if hasattr(self, "_ret"):
            self._ret = np.where(mask, 0.0, self._ret)

    def get_env_attr(self, name: str, env: int) -> Any:
        if name == "protocol_params":
            raise ValueError(f"{self.env_id} has no single protocol_params; allowed {', '.join(self.PER_ENV_ATTRS)}")  # fmt: skip
        return super().get_env_attr(name, env)

    def set_env_attr(self, name: str, value: Any, envs: Sequence[int]) -> None:
        if name == "protocol_params":
            raise ValueError(f"{self.env_id} runs three protocols; protocol_params cannot be set")
        super().set_env_attr(name, value, envs)

    # ------------------------------------------------------------------ rendering
    def summary_line(self, env: int) -> str:
        thr, dusd, _, _ = self._leg_values()
        hf = np.where(dusd > 0, thr / np.where(dusd > 0, dusd, 1.0), np.inf)[env]
        pool, fw, _, _, _ = self._prices()
        legs = " ".join(f"{s} {h:.3f}" for s, h in zip(SHORT_NAMES, hf, strict=True))
        return (
            f"CrossProtocolHedger-v0 env {env} [{self.core.scenario_of(env)}] step "
            f"{int(self._episode_length[env])}/{self.max_steps}: wstETH {fw[env]:.1f} pool "
            f"{pool[env]:.1f} | HF {legs} | equity {self.equity_usd[env] / 1e6:.4f}M perp "
            f"{self.perp_asset[env]:.1f} | return {self._episode_return[env]:.2f}"
        )


def _range(name: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers with ``lo <= low <= high <= hi``."""
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a (low, high) pair of numbers") from None
    if not (np.isfinite(a) and np.isfinite(b) and lo <= a <= b <= hi):
        raise ValueError(f"{name}={value!r} is out of range; allowed {lo:g} <= low <= high <= {hi:g}")  # fmt: skip
    return a, b


class CrossProtocolHedgerEnv(LevgymEnv):
    """levgym/CrossProtocolHedger-v0: one large leveraged account spread over three protocols,
    kept out of liquidation through a stress at the least cost.

    ## Description

    Three lending protocols of the multi-protocol engine (:mod:`levgym.engine.multiprotocol`:
    the presets ``aave_v3_ethereum``, ``compound_v3_usdc`` and ``morpho_wsteth_usdc``, each with
    its seeded background book) share one set of pools, one gas market and one set of keepers.
    The agent runs one large leveraged account spread over them: wstETH collateral and USDC
    debt in each protocol (a *leg*: one more slot of that protocol's book, so the keepers
    liquidate it, and Comet absorbs it, by the same rules and in the same ranking as anyone).
    Each step (one engine substep, 1 hour) it moves collateral between the legs, repays or
    borrows in each, and sets a short on ETH's perpetual future: the liquidator's perp
    (:func:`levgym.envs.formulas.perp_basis`, ``liquidator_hedge``, ``liquidator_carry``, the
    same functions). The episode is a stress: ETH (and so wstETH) falls by a drawn depth over a
    few hours at a drawn time, and the seized collateral of everyone's liquidations is sold
    into the same wstETH pool the agent must sell into to repay. The task: keep the account out
    of liquidation at the least cost (gas, slippage, perp fees and funding, the upside given
    up).

    ## Action Space

    ``Box(-1, 1, (7,), float32)``; values outside ``[-1, 1]`` are clipped, NaN or infinite
    values and a wrong shape raise ``ValueError``. ``(0, 0, 0, 0, 0, 0, -1)`` does nothing.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `move_aave` | collateral flow of the aave leg: a < 0 withdraws -a of it to the wallet, a > 0 deposits that share of the wallet | -1 | 1 |
    | 1 | `loan_aave` | a < 0 repays -a of the aave leg's debt, a > 0 borrows a of its room to its LTV | -1 | 1 |
    | 2 | `move_compound` | collateral flow of the compound leg: a < 0 withdraws -a of it to the wallet, a > 0 deposits that share of the wallet | -1 | 1 |
    | 3 | `loan_compound` | a < 0 repays -a of the compound leg's debt, a > 0 borrows a of its room to its LTV | -1 | 1 |
    | 4 | `move_morpho` | collateral flow of the morpho leg: a < 0 withdraws -a of it to the wallet, a > 0 deposits that share of the wallet | -1 | 1 |
    | 5 | `loan_morpho` | a < 0 repays -a of the morpho leg's debt, a > 0 borrows a of its room to its LTV | -1 | 1 |
    | 6 | `hedge` | short perp notional / the account's ETH exposure, (a + 1) / 2 times `max_hedge_ratio` | -1 | 1 |

    Applied before the step's block, in this order, at the state the agent observed:

    1. **Withdrawals** (``move_* < 0``): ``-a`` of the leg's collateral goes to the account's
       wallet, capped by the protocol's own check: Aave keeps the leg's HF at least 1 (LT),
       Comet keeps it borrow-collateralized (``borrowCollateralFactor``), Morpho at its LLTV.
    2. **Repayments** (``loan_* < 0``): ``-a`` of the leg's debt is repaid, from cash first, then
       by selling wstETH for exactly the USDC missing in the shared wstETH pool (the wallet's
       wstETH first, then the leg's own collateral, withdrawn in the same transaction); the
       pool's constant-product rule (:func:`levgym.engine.portfolio_market.buy_exact_out` with
       the sides swapped, :func:`levgym.engine.rules.sell_asset` when all that is held is
       sold), fee and price impact paid, the oracles re-read from the moved pool.
    3. **Deposits** (``move_* > 0``): the wallet is split over the legs asking for it, leg
       ``p`` getting ``a_p / max(1, sum of the positive a)`` of it.
    4. **Borrows** (``loan_* > 0``): ``a * max_borrow_frac`` of the leg's room to its LTV (and
       at most the lenders' cash left), paid into cash.
    5. **Hedge**: the perp position is set to a short of ``(a6 + 1) / 2 * max_hedge_ratio``
       times the account's ETH exposure (its wstETH in legs and wallet, in ETH at the
       fundamentals), at the WETH fundamental, taker fee ``perp_fee_frac``.

    A move or loan component with ``|a| < 0.05`` does nothing; every withdrawal, repayment,
    deposit or borrow that moves something costs ``gas_usd_per_action`` from cash. Cash may go
    negative (perp losses, gas): a credit line at ``credit_rate_apr``.

    ## Observation Space

    ``Box(low, high, float32)``, one entry per feature below, each clipped to its bounds.
    "Initial collateral" is the account's collateral value at the episode's start.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `hf_aave` | health factor of the aave leg under its rule (5: no debt) | 0 | 5 |
    | 1 | `collateral_aave` | aave leg's collateral at its oracle / initial collateral | 0 | 10 |
    | 2 | `debt_aave` | aave leg's debt (USD) / initial collateral value | 0 | 10 |
    | 3 | `oracle_gap_aave` | aave's wstETH oracle / wstETH pool price - 1, x10 | -10 | 10 |
    | 4 | `hf_compound` | health factor of the compound leg under its rule (5: no debt) | 0 | 5 |
    | 5 | `collateral_compound` | compound leg's collateral at its oracle / initial collateral | 0 | 10 |
    | 6 | `debt_compound` | compound leg's debt (USD) / initial collateral value | 0 | 10 |
    | 7 | `oracle_gap_compound` | compound's wstETH oracle / wstETH pool price - 1, x10 | -10 | 10 |
    | 8 | `hf_morpho` | health factor of the morpho leg under its rule (5: no debt) | 0 | 5 |
    | 9 | `collateral_morpho` | morpho leg's collateral at its oracle / initial collateral | 0 | 10 |
    | 10 | `debt_morpho` | morpho leg's debt (USD) / initial collateral value | 0 | 10 |
    | 11 | `oracle_gap_morpho` | morpho's wstETH oracle / wstETH pool price - 1, x10 | -10 | 10 |
    | 12 | `account_hf` | unified HF: sum of thresholds / sum of debts over the legs | 0 | 5 |
    | 13 | `wallet` | wstETH in the wallet at the pool price / initial collateral value | 0 | 10 |
    | 14 | `cash` | cash / initial collateral value (negative: drawn credit) | -10 | 10 |
    | 15 | `hedge` | perp notional / initial collateral value (negative: short) | -10 | 10 |
    | 16 | `equity` | account equity / initial equity | -10 | 10 |
    | 17 | `pool_deviation` | wstETH pool price / fundamental - 1, x10 | -10 | 10 |
    | 18 | `return_1h` | log return of the wstETH fundamental over the step, x10 | -10 | 10 |
    | 19 | `vol_short` | realized wstETH volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 20 | `drawdown` | 1 - wstETH fundamental / its maximum this episode | 0 | 1 |
    | 21 | `funding_rate` | perp basis = funding paid by longs per interval, x100 | -10 | 10 |
    | 22 | `time_left` | share of the episode left | 0 | 1 |

    ## Rewards

    In basis points of the account's initial equity (``reward_scale = 1e4``), per step:

    ``reward = (equity_t - equity_(t-1)) - liquidation_penalty * liquidation_loss``

    - equity: cash plus the account's wstETH (legs and wallet) at the wstETH pool price minus
      its debt at the USDC fundamental; gas, slippage, perp fees, funding, interest on the debt
      and on drawn credit all go through it.
    - ``liquidation_loss``: the value (at each protocol's oracle after the step, the price its
      liquidation rule pays at) of the collateral that left the legs in the step's
      liquidations, less the debt they removed and less Compound's refund of the
      credit above the debt when it absorbs a leg: the bonus (penalty) the account paid. It is
      already in the equity change; ``liquidation_penalty`` (default 1) counts it once more, so
      a liquidation costs twice its bonus: being liquidated is what the agent is there to avoid.

    ## Starting State

    A scenario path of the mixture (default the fitted ``multiasset_2021`` process), the crash
    on it (depth uniform in ``crash_frac_range``, start hour uniform in
    ``crash_start_h_range``, linear over ``crash_duration_h``; WBTC takes half of it), the
    three presets' background books of ``num_positions`` slots each, and the account:
    ``account_collateral_usd`` of wstETH split equally over the legs, each leg's debt set by
    its start HF (uniform in ``start_hf_range``, one draw per leg), cash ``initial_cash_usd``,
    no wallet, no perp position.

    ## Episode End

    - Termination (``info["end_cause"] == "liquidated"``): the account has no collateral left
      in any leg and liquidations took some of it this episode.
    - Truncation (``"horizon"``): after ``horizon_h`` hours (default 48, i.e. 48 steps).

    ## Arguments

    ``gym.make("levgym/CrossProtocolHedger-v0", **kwargs)``:

    - ``num_positions`` (64): background slots per protocol; ``scenarios`` (None:
      ``multiasset_2021``; names of :data:`levgym.scenarios.multiasset.SCENARIOS`);
      ``horizon_h`` (48, whole hours); ``margin`` (``per_protocol`` or ``unified``, the
      engine's margin modes); ``split`` (``train`` / ``eval`` scenario seeds);
      ``render_mode`` (None or ``ansi``).
    - The account: ``account_collateral_usd`` (20e6), ``start_hf_range`` ((1.10, 1.40)),
      ``initial_cash_usd`` (0).
    - The stress: ``crash_frac_range`` ((0.10, 0.35)), ``crash_start_h_range`` ((2, 24)),
      ``crash_duration_h`` (6), ``volatile_pool_depth_usd`` (60e6, each volatile pool's depth).
    - Costs: ``gas_usd_per_action`` (20), ``max_borrow_frac`` (1.0), ``max_hedge_ratio``
      (1.0), ``perp_fee_frac`` (5e-4), ``basis_mean_frac`` (1e-4), ``basis_beta`` (0.5),
      ``funding_interval_h`` (8), ``credit_rate_apr`` (0.20): the liquidator's perp values.
    - The reward: ``liquidation_penalty`` (1.0), ``reward_scale`` (1e4).

    ``info`` holds per step: ``equity_usd``, ``pnl_usd``, ``liquidation_loss_usd``, ``gas_usd``, ``slippage_usd``, ``perp_fee_usd``, ``funding_usd``, ``interest_usd``, ``refund_usd``, ``account_hf``, ``liquidations``, ``perp_variation_usd`` and ``credit_interest_usd``.

    ## Vectorized environment

    ``gym.make_vec("levgym/CrossProtocolHedger-v0", num_envs=E, **kwargs)`` returns
    :class:`CrossProtocolHedgerVectorEnv` on one batched multi-protocol state, with same-step
    autoreset; env ``i`` reset with ``seed=s`` behaves exactly as this env reset with
    ``seed=s + i``. For Stable-Baselines3 use
    ``levgym.envs.make_sb3_vec_env("levgym/CrossProtocolHedger-v0", E)``.

    ## Version History

    - v0: initial release.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    vector_class = CrossProtocolHedgerVectorEnv

    @property
    def state(self) -> MP.MultiState:
        """The multi-protocol state (a batch of one env)."""
        return self.vector_env.core.state

    @property
    def params(self) -> MP.MultiParams:  # type: ignore[override]
        return self.vector_env.params


__all__ = [
    "ACTIONS",
    "FEATURES",
    "CrossProtocolHedgerEnv",
    "CrossProtocolHedgerVectorEnv",
    "HedgerMarket",
    "crash_factor",
    "hedger_substep",
    "scatter_rows",
]
