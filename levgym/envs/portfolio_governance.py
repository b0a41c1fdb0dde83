"""levgym/PortfolioGovernance-v0: a risk steward governs every reserve of a cross-margin market
(Aave v3 Ethereum's WETH, wstETH, WBTC, USDC, USDT, DAI and its E-mode categories) through
correlated multi-asset markets and depegs, a week at a time."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..engine import portfolio_market as PM
from ..engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from ..engine.params import HOURS_PER_YEAR
from ..engine.portfolio import (
    EModeCategory,
    Reserves,
    borrow_rates_apr,
    collateral_mask,
    effective_risk,
)
from ..engine.portfolio_books import draw_book
from ..market import SPLITS, draw_episode, env_generators
from ..scenarios import multiasset as MA
from .base import LevgymEnv, LevgymVectorEnv, check_weight
from .core import horizon_steps
from .features import Feature, PriceTracker, index
from .formulas import governance_reward_mix
from .steward import DAY_H, Lever, RowGroup, StewardClock, StewardRows, StewardSchema

ENV_ID = "levgym/PortfolioGovernance-v0"

# ---------------------------------------------------------------------- the schema's rows
RESERVE_LEVERS: tuple[Lever, ...] = (
    Lever(
        "liquidation_threshold", "liquidation_threshold", "level", "frac", 0.85, 1.05,
        step_up=0.005, step_down=0.005, bounds_of="start_liquidation_threshold",
        scope="reserve", doc="liquidation threshold (a cut liquidates users of the live book)",
    ),
    Lever(
        "ltv_gap", "ltv_gap", "level", "frac", 0.0, 1.0, step_up=0.01, step_down=0.005,
        bounds_of="start_liquidation_threshold", scope="reserve",
        doc="LT - LTV: the room below LT where new loans stop (LTV = LT - gap)",
    ),
    Lever(
        "liquidation_bonus", "liquidation_bonus", "level", "frac", 0.5, 2.0,
        step_up=0.005, step_down=0.005, bounds_of="start_liquidation_bonus", scope="reserve",
        doc="liquidation bonus of the reserve as collateral",
    ),
    Lever(
        "supply_cap", "supply_cap_asset", "level", "asset", 0.25, 4.0,
        step_up=1.0, step_down=0.5, relative=True, cooldown_h=3 * DAY_H,
        bounds_of="initial_supply_asset", scope="reserve",
        doc="supply cap (Chaos Labs' Edge: +100% per 3 days)",
    ),
    Lever(
        "borrow_cap", "borrow_cap_asset", "level", "asset", 0.25, 4.0,
        step_up=1.0, step_down=0.5, relative=True, cooldown_h=3 * DAY_H,
        bounds_of="initial_debt_asset", scope="reserve",
        doc="borrow cap (Chaos Labs' Edge: +100% per 3 days)",
    ),
    Lever(
        "slope2", "slope2_apr", "level", "apr", 0.25, 4.0, step_up=0.25, step_down=0.25,
        cooldown_h=6.0, bounds_of="start_slope2_apr", scope="reserve",
        doc="rate slope above the kink",
    ),
    Lever(
        "optimal_utilization", "optimal_utilization_frac", "level", "frac", 0.3, 0.95,
        step_up=0.05, step_down=0.05, cooldown_h=6.0, scope="reserve",
        doc="kink of the rate curve",
    ),
)  # fmt: skip
"""One reserve's row: its risk parameters, caps and rate curve. LT, the LTV gap and the bonus
move within multiples of the reserve's starting values (a 0.5% step per hour, as Governance-v1),
caps within multiples of the episode's supply and debt of the reserve (+100% / -50% once per 3
days), slope2 within multiples of its start (0.25 APR once per 6 hours), the kink within [0.3,
0.95] (5% once per 6 hours)."""

EMODE_LEVERS: tuple[Lever, ...] = (
    Lever(
        "liquidation_threshold", "liquidation_threshold", "level", "frac", 0.90, 1.03,
        step_up=0.0025, step_down=0.0025, bounds_of="start_liquidation_threshold",
        scope="reserve", doc="the category's liquidation threshold for its collateral",
    ),
    Lever(
        "ltv_gap", "ltv_gap", "level", "frac", 0.0, 1.0, step_up=0.005, step_down=0.0025,
        bounds_of="start_liquidation_threshold", scope="reserve",
        doc="the category's LT - LTV (LTV = LT - gap)",
    ),
    Lever(
        "liquidation_bonus", "liquidation_bonus", "level", "frac", 0.5, 3.0,
        step_up=0.0025, step_down=0.0025, bounds_of="start_liquidation_bonus", scope="reserve",
        doc="the category's liquidation bonus",
    ),
)  # fmt: skip
"""One E-mode category's row: its LT, LTV gap and bonus (half the reserves' steps: the category
runs at LT near 0.95 and a 1% bonus)."""

RESERVE_SCHEMA = StewardSchema(RESERVE_LEVERS)
EMODE_SCHEMA = StewardSchema(EMODE_LEVERS)
EMODE_TARGETS = ("liquidation_threshold", "ltv_gap", "liquidation_bonus")
RESERVE_FIELDS = (
    "liquidation_threshold",
    "liquidation_bonus",
    "base_rate_apr",
    "slope1_apr",
    "slope2_apr",
    "optimal_utilization_frac",
)
"""Reserve fields a lever writes as they are (``ltv_gap`` writes the LTV; caps stay in the env)."""
CAPS = ("supply_cap_asset", "borrow_cap_asset")
CAP_REFERENCE_FLOOR_ASSET = 1e-9
"""The reference of a cap whose reserve the episode's book does not supply (borrow): caps are
multiples of the episode's supply (debt) of the reserve, at least this many units."""


def emode_row_name(category: EModeCategory) -> str:
    return f"emode{category.id}"


def portfolio_rows(reserves: Reserves) -> StewardRows:
    """The steward's schema of a market: a ``reserve`` row per reserve (:data:`RESERVE_LEVERS`)
    and an ``emode`` row per E-mode category (:data:`EMODE_LEVERS`)."""
    groups = [RowGroup("reserve", RESERVE_SCHEMA, reserves.symbols)]
    if reserves.emodes:
        groups.append(RowGroup("emode", EMODE_SCHEMA, tuple(map(emode_row_name, reserves.emodes))))
    return StewardRows(tuple(groups))


DEFAULT_RESERVES = aave_v3_ethereum_reserves()
DEFAULT_ROWS = portfolio_rows(DEFAULT_RESERVES)


def steward_rows_table() -> str:
    """The generated docs block ``portfolio-levers``: PortfolioGovernance-v0's schema."""
    return DEFAULT_ROWS.markdown_table()


# ---------------------------------------------------------------------- features
def price_shock_matrix(reserves: Reserves, frac: float) -> np.ndarray:
    """``[K, K]``: row ``k`` is the fall of each reserve's oracle (a share) when reserve ``k``'s
    market price falls by ``frac``: its own market or stablecoin oracle, and every
    exchange-rate oracle based on it (CAPO prices wstETH off WETH); an exchange-rate reserve's
    own market price does not reach any oracle (its row is 0)."""
    k = reserves.k
    out = np.zeros((k, k))
    for i, r in enumerate(reserves.reserves):
        if r.oracle.kind != "exchange_rate" and not (r.oracle.kind == "stable_pinned"):
            out[i, i] = frac
        for j, other in enumerate(reserves.reserves):
            if other.oracle.kind == "exchange_rate" and other.oracle.base_symbol == r.symbol:
                out[i, j] = frac
    return out


HF_EDGES = (1.0, 1.05, 1.25, 1.5, 2.0)
SHOCK_FRAC = 0.10

RESERVE_FEATURES: tuple[Feature, ...] = (
    Feature("return_1h", "log return of the fundamental price over 1 h, x10", -10.0, 10.0),
    Feature("return_24h", "log return of the fundamental price over 24 h, x10", -10.0, 10.0),
    Feature("vol_short", "realized volatility, EWMA half-life 6 h, annualized", 0.0, 20.0),
    Feature("vol_long", "realized volatility, EWMA half-life 7 days, annualized", 0.0, 20.0),
    Feature("oracle_deviation", "oracle / fundamental - 1, x10", -10.0, 10.0),
    Feature("pool_deviation", "pool price / fundamental - 1, x10 (0 for USDC)", -10.0, 10.0),
    Feature("utilization", "borrowers' debt / lenders' supply", 0.0, 1.0),
    Feature("borrow_rate", "borrow rate of the curve now (APR)", 0.0, 10.0),
    Feature("collateral_share", "share of the book's collateral value (oracle)", 0.0, 1.0),
    Feature("debt_share", "share of the book's debt value (oracle)", 0.0, 1.0),
    Feature(
        "debt_liquidatable_10",
        "share of the book's debt liquidatable if this asset's price fell 10% (others held; "
        "through the oracles: an exchange-rate oracle follows its base)",
        0.0,
        1.0,
    ),
    Feature("supply_cap_use", "supply / supply cap (2 when the cap is 0)", 0.0, 2.0),
    Feature(
        "borrow_cap_use", "debt / borrow cap (2 when the cap is 0 and there is debt)", 0.0, 2.0
    ),
    Feature("deficit", "debt written off this episode (v3.3 deficit) / TVL, x100", 0.0, 100.0),
)
"""Per reserve (prefix ``{symbol}.``): its prices, its market and its part of the book."""

EMODE_FEATURES: tuple[Feature, ...] = (
    Feature("debt_share", "share of the book's debt owed by positions in the category", 0.0, 1.0),
    Feature("debt_hf_below_105", "share of the category's debt with HF < 1.05", 0.0, 1.0),
)
"""Per E-mode category (prefix ``emode{id}.``)."""

BOOK_FEATURES: tuple[Feature, ...] = (
    Feature("debt_hf_below_1", "share of debt with HF < 1", 0.0, 1.0),
    Feature("debt_hf_1_105", "share of debt with 1 <= HF < 1.05", 0.0, 1.0),
    Feature("debt_hf_105_125", "share of debt with 1.05 <= HF < 1.25", 0.0, 1.0),
    Feature("debt_hf_125_150", "share of debt with 1.25 <= HF < 1.5", 0.0, 1.0),
    Feature("debt_hf_150_200", "share of debt with 1.5 <= HF < 2", 0.0, 1.0),
    Feature("debt_hf_above_200", "share of debt with HF >= 2", 0.0, 1.0),
    Feature(
        "debt_liquidatable_10",
        "share of debt liquidatable if every oracle but the stablecoins' fell 10%",
        0.0,
        1.0,
    ),
    Feature(
        "debt_toxic",
        "share of debt whose collateral is worth less than (1 + its bonus) x the debt",
        0.0,
        1.0,
    ),
    Feature("aggregate_ltv", "total debt / collateral value at the oracle", 0.0, 2.0),
    Feature("bad_debt", "debt written off this episode / TVL, x100 (percent)", 0.0, 100.0),
    Feature("shortfall", "underwater shortfall now / TVL, x100 (percent)", 0.0, 100.0),
    Feature("reserves", "treasury (interest share, fees) / TVL, x100 (percent)", 0.0, 100.0),
    Feature("time_left", "share of the episode left", 0.0, 1.0),
)
"""The whole book."""


def _lever_features(schema: StewardSchema) -> list[Feature]:
    out = [
        Feature(v.name, f"`{v.target}` as its position within its bounds (0 low, 1 high)", 0.0, 1.0)
        for v in schema.levers
    ]
    out += [
        Feature(f"{v.name}_cooldown", "share of its cool-down still to run (0: may move)", 0.0, 1.0)
        for v in schema.levers
        if v.cooldown_h > 0
    ]
    return out


def portfolio_features(rows: StewardRows) -> tuple[Feature, ...]:
    """The observation: per reserve its market features and levers, per E-mode category its
    features and levers, then the book."""
    out: list[Feature] = []
    for g in rows.groups:
        own = RESERVE_FEATURES if g.name == "reserve" else EMODE_FEATURES
        per_row = [*own, *_lever_features(g.schema)]
        for row in g.rows:
            out += [Feature(f"{row}.{f.name}", f.description, f.low, f.high) for f in per_row]
    return (*out, *BOOK_FEATURES)


PORTFOLIO_FEATURES = portfolio_features(DEFAULT_ROWS)
PORTFOLIO_ACTIONS = DEFAULT_ROWS.action_features()
DEFAULT_PORTFOLIO_SCENARIOS = ("multiasset_2021", "steth_depeg", "usdc_depeg")


def resolve_portfolio_scenarios(scenarios: Any) -> tuple[list[str], np.ndarray]:
    """Names and weights of multi-asset scenarios (:data:`levgym.scenarios.multiasset.SCENARIOS`):
    ``None`` the default mix, a name, a list (equal weights) or ``{name: weight}``."""
    if scenarios is None:
        scenarios = DEFAULT_PORTFOLIO_SCENARIOS
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if isinstance(scenarios, Mapping):
        names = [str(k) for k in scenarios]
        weights = np.array([float(scenarios[k]) for k in scenarios])
    else:
        names = [str(s) for s in scenarios]
        weights = np.ones(len(names))
    if not names:
        raise ValueError(f"scenarios=[] is empty; allowed names of {', '.join(MA.SCENARIOS)}")
    for n in names:
        MA.get_scenario(n)
    if np.any(~np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"scenario weights {weights.tolist()} are invalid; allowed finite, >= 0, sum > 0"
        )
    return names, weights / weights.sum()


# ---------------------------------------------------------------------- the markets
_STATE_ARRAYS = tuple(
    f.name for f in dataclasses.fields(PM.PortfolioState) if f.name not in ("counters", "time_h")
)


def _stack(states: Sequence[PM.PortfolioState]) -> PM.PortfolioState:
    """One-env states (same engine time) as one batch, in order."""
    arrays = {
        # optional fields (borrower behaviour, feeds) may be None; the substep count is shared
        # by states at one engine time
        n: np.concatenate([getattr(s, n) for s in states])
        if isinstance(getattr(states[0], n), np.ndarray)
        else getattr(states[0], n)
        for n in _STATE_ARRAYS
    }
    counters = {c: np.concatenate([s.counters[c] for s in states]) for c in states[0].counters}
    return PM.PortfolioState(**arrays, counters=counters, time_h=states[0].time_h)


def _row(state: PM.PortfolioState, j: int) -> PM.PortfolioState:
    """Env ``j`` of a batch as a one-env state."""
    arrays = {
        n: getattr(state, n)[j : j + 1]
        if isinstance(getattr(state, n), np.ndarray)
        else getattr(state, n)
        for n in _STATE_ARRAYS
    }
    counters = {c: a[j : j + 1] for c, a in state.counters.items()}
    return PM.PortfolioState(**arrays, counters=counters, time_h=state.time_h)


class PortfolioMarkets:
    """E cross-margin markets with their own episodes, seeds and clocks, stepped by
    :func:`levgym.engine.portfolio_market.substep`.

    Each env holds its own one-env :class:`~levgym.engine.portfolio_market.PortfolioState` (its
    reserves' parameters are its own: the steward moves them per env) and its own price path.
    Seed mapping as :class:`levgym.market.MarketRunner`: env ``i`` of a batch seeded ``s`` owns
    ``default_rng(s + i)``; an episode draws from it the scenario, the scenario seed (train or
    eval block), the book seed and a noise key (unused: borrowers are passive here), in that
    order; its path is ``scenario.build(1, S + 1, substep_h, scenario_seed)`` and its book
    :func:`levgym.engine.portfolio_books.draw_book` at the starting oracle with the book seed."""

    backend = "numpy"

    def __init__(
        self, reserves: Reserves, market: PM.PortfolioMarketParams, num_envs: int,
        num_positions: int, horizon_substeps: int, scenarios: list[str], weights: np.ndarray,
        split: str,
    ) -> None:  # fmt: skip
        for name, value in (("num_envs", num_envs), ("num_positions", num_positions)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r} is out of range; allowed an integer >= 1")
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is unknown; allowed {', '.join(SPLITS)}")
        self.reserves = reserves
        self.market = market
        self.num_envs = int(num_envs)
        self.num_positions = int(num_positions)
        self.horizon_substeps = int(horizon_substeps)
        self.scenarios = list(scenarios)
        self.scenario_cdf = np.cumsum(weights)
        self.scenario_overrides: dict[str, dict[str, Any]] = {}
        self.split = split
        e, k = self.num_envs, reserves.k
        self.states: list[PM.PortfolioState | None] = [None] * e
        self.fundamentals = np.zeros((e, self.horizon_substeps + 1, k))
        self.t = np.zeros(e, dtype=np.int64)
        self.scenario_index = np.zeros(e, dtype=np.int64)
        self.seeds: list[int] | None = None
        self.rngs: list[np.random.Generator] | None = None
        self.tracker = PriceTracker(e * k, market.substep_h)
        """Price history per (env, reserve), flattened env-major ``[E * K]``."""
        self.engine_seconds = 0.0
        """Wall time inside the market's substep (for ``levgym.envs.speed``)."""

    @property
    def state(self) -> list[PM.PortfolioState | None]:
        """Each env's state (a one-env ``PortfolioState``)."""
        return self.states

    @property
    def started(self) -> bool:
        return all(s is not None for s in self.states)

    def seed(self, seeds: Sequence[int]) -> None:
        self.seeds, self.rngs = env_generators(seeds, self.num_envs)

    def new_episodes(self, mask: np.ndarray) -> np.ndarray:
        if self.rngs is None:
            raise RuntimeError("seed() must be called before the first episode")
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        r, m = self.reserves, self.market
        rows = self.horizon_substeps + 1
        for env in idx:
            k, scenario_seed, book_seed, _ = draw_episode(
                self.rngs[env], self.scenario_cdf, self.split
            )
            self.scenario_index[env] = k
            paths = MA.get_scenario(self.scenarios[k]).build(1, rows, m.substep_h, scenario_seed)
            ratio = PM.initial_exchange_ratio(r, 1)
            f = PM.fundamentals_from_paths(paths.prices_usd, paths.symbols, r, ratio)[:, 0, :]
            self.fundamentals[env] = f
            empty = np.zeros((1, 1, r.k))
            oracle0 = PM.init_state(r, m, empty, empty, 0, f[:1]).oracle_usd[0]
            book = draw_book(r, oracle0, 1, self.num_positions, seed=book_seed)
            self.states[env] = PM.init_state(
                r, m, book.supply, book.debt, book.emode_row, f[:1], ratio
            )
            self.t[env] = 0
        if idx.size:
            big = np.repeat(np.asarray(mask, dtype=bool), r.k)
            f, pool, oracle = self.prices()
            self.tracker.reset_prices(big, f[big], pool[big], oracle[big])
        return idx

    def prices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fundamental, pool and oracle USD prices ``[E * K]`` (USDC's pool price: its
        fundamental); every env must have started."""
        states = self.states
        f = np.concatenate([s.fundamental_usd for s in states])
        q = self.reserves.index(PM.QUOTE_SYMBOL)
        pool = np.concatenate([s.pool_quote / s.pool_asset for s in states]) * f[:, q : q + 1]
        pool[:, q] = f[:, q]
        oracle = np.concatenate([s.oracle_usd for s in states])
        return f.reshape(-1), pool.reshape(-1), oracle.reshape(-1)

    def substep(self, reserves: Sequence[Reserves]) -> np.ndarray:
        """Advance every env one substep with its own reserves; returns cascade rounds ``[E]``.
        Envs that run the same ``Reserves`` object at the same engine time share one call of
        :func:`~levgym.engine.portfolio_market.substep` (the market's rules are per env, so a
        batch of envs gives each the numbers it gets alone: tested)."""
        rounds = np.zeros(self.num_envs, dtype=np.int64)
        last = self.horizon_substeps
        rows = self.fundamentals[np.arange(self.num_envs), np.minimum(self.t + 1, last)]
        groups: dict[tuple[int, float], list[int]] = {}
        for i, s in enumerate(self.states):
            groups.setdefault((id(reserves[i]), s.time_h), []).append(i)
        t0 = time.perf_counter()
        for idx in groups.values():
            if len(idx) == 1:
                i = idx[0]
                self.states[i], r = PM.substep(
                    self.states[i], rows[i : i + 1], reserves[i], self.market
                )
                rounds[i] = int(r[0])
                continue
            batch = _stack([self.states[i] for i in idx])
            batch, r = PM.substep(batch, rows[idx], reserves[idx[0]], self.market)
            for j, i in enumerate(idx):
                self.states[i] = _row(batch, j)
                rounds[i] = int(r[j])
        self.engine_seconds += time.perf_counter() - t0
        self.t += 1
        self.tracker.update_prices(*self.prices())
        return rounds

    @property
    def at_horizon(self) -> np.ndarray:
        return self.t >= self.horizon_substeps

    def scenario_of(self, env: int) -> str:
        return self.scenarios[int(self.scenario_index[env])]


# ---------------------------------------------------------------------- the env
class PortfolioGovernanceVectorEnv(LevgymVectorEnv):
    """Native vector env of ``levgym/PortfolioGovernance-v0`` (spec:
    :class:`PortfolioGovernanceEnv`'s docstring): E cross-margin markets, same-step autoreset;
    env ``i`` of a batch reset with ``seed=s`` behaves as ``PortfolioGovernanceEnv`` reset with
    ``seed=s + i``."""

    env_id = ENV_ID
    FEATURES = PORTFOLIO_FEATURES
    ACTIONS = PORTFOLIO_ACTIONS
    DEFAULT_SCENARIOS = DEFAULT_PORTFOLIO_SCENARIOS
    TERMINAL_CAUSE = "insolvency"
    PER_ENV_ATTRS: ClassVar[tuple[str, ...]] = (
        "scenario",
        "reserves",
        "episode_step",
        "episode_return",
        "seed",
    )
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
        scenarios: str | Sequence[str] | Mapping[str, float] | None = None,
        horizon_h: float = 168.0,
        reserves: Reserves | None = None,
        market: PM.PortfolioMarketParams | None = None,
        supply_cap_start: float = 1.5,
        borrow_cap_start: float = 1.5,
        w_bad_debt: float = 2.0,
        w_liquidation: float = 0.5,
        w_efficiency: float = 0.02,
        reward_scale: float = 1e4,
        insolvency_tolerance_frac: float = 0.005,
        split: str = "train",
        render_mode: str | None = None,
        autoreset_mode: Any = "SameStep",
    ) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r} is unknown; allowed None, ansi")
        if reserves is not None and not isinstance(reserves, Reserves):
            raise ValueError(f"reserves={reserves!r} must be a levgym.engine.portfolio.Reserves")
        if market is not None and not isinstance(market, PM.PortfolioMarketParams):
            raise ValueError(
                f"market={market!r} must be a levgym.engine.portfolio_market.PortfolioMarketParams"
            )
        for name, v in (
            ("supply_cap_start", supply_cap_start),
            ("borrow_cap_start", borrow_cap_start),
        ):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{name}={v!r} is out of range; allowed a number in [0.25, 4]")
            if not 0.25 <= v <= 4.0:
                raise ValueError(
                    f"{name}={v:g} is out of range; allowed [0.25, 4] (the cap bounds)"
                )
        self.reserves = reserves or DEFAULT_RESERVES
        self.market = market or PM.PortfolioMarketParams()
        self.params = self.market
        self.rows = portfolio_rows(self.reserves)
        self.FEATURES = portfolio_features(self.rows)
        self.ACTIONS = self.rows.action_features()
        self.supply_cap_start = float(supply_cap_start)
        self.borrow_cap_start = float(borrow_cap_start)
        self.substeps_per_step = 1
        self.step_h = self.market.substep_h
        self.horizon_h = float(horizon_h) if isinstance(horizon_h, int | float) else horizon_h
        self.max_steps = horizon_steps(horizon_h, self.step_h)
        names, weights = resolve_portfolio_scenarios(scenarios)
        self.core = PortfolioMarkets(
            self.reserves, self.market, num_envs, num_positions, self.max_steps, names, weights,
            split,
        )  # fmt: skip
        self._init_batch(render_mode, autoreset_mode)
        self.w_bad_debt = check_weight("w_bad_debt", w_bad_debt)
        self.w_liquidation = check_weight("w_liquidation", w_liquidation)
        self.w_efficiency = check_weight("w_efficiency", w_efficiency)
        self.reward_scale = check_weight("reward_scale", reward_scale)
        self.insolvency_tolerance_frac = check_weight(
            "insolvency_tolerance_frac", insolvency_tolerance_frac
        )
        e, k = self.num_envs, self.reserves.k
        self.values: dict[str, np.ndarray] = {}
        """Each group's lever values ``[E, R, L]`` (caps in asset units)."""
        self.low: dict[str, np.ndarray] = {}
        self.high: dict[str, np.ndarray] = {}
        self.clocks: dict[str, StewardClock] = {}
        for g in self.rows.groups:
            shape = (e, *g.shape)
            self.values[g.name] = np.zeros(shape)
            self.low[g.name] = np.zeros(shape)
            self.high[g.name] = np.zeros(shape)
            self.clocks[g.name] = StewardClock.new(shape)
        self._col = {g.name: g.schema.by_target() for g in self.rows.groups}
        bad = set(self._col.get("emode", {})) - set(EMODE_TARGETS)
        if bad:
            raise ValueError(f"E-mode levers may move {EMODE_TARGETS}; got {sorted(bad)}")
        self._written = {
            g.name: [j for j, v in enumerate(g.schema.levers) if v.target not in CAPS]
            for g in self.rows.groups
        }
        """Each group's lever columns written into the reserves (caps stay in the env)."""
        self._reserves_cache: dict[bytes, Reserves] = {}
        self.env_reserves: list[Reserves] = [self.reserves] * e
        """The reserves each env runs with now (its lever values written in)."""
        self._tvl = np.ones(e)
        self._shortfall = np.zeros(e)
        self._cached_book: dict[str, np.ndarray] | None = None
        self._fcol = index(self.FEATURES)
        self._features = np.zeros((e, len(self.FEATURES)))
        self._stable = np.array([s in PM.STABLE_SYMBOLS for s in self.reserves.symbols])
        self._shock = price_shock_matrix(self.reserves, SHOCK_FRAC)
        self._refs: dict[str, dict[str, np.ndarray]] = {
            "reserve": {
                "start_liquidation_threshold": np.broadcast_to(self.reserves.lt, (e, k)).copy(),
                "start_liquidation_bonus": np.broadcast_to(self.reserves.bonus, (e, k)).copy(),
                "start_slope2_apr": np.broadcast_to(
                    self.reserves._col("slope2_apr"), (e, k)
                ).copy(),
                "initial_supply_asset": np.zeros((e, k)),
                "initial_debt_asset": np.zeros((e, k)),
            },
        }
        if self.reserves.emodes:
            c = len(self.reserves.emodes)
            t = self.reserves.emode_table
            self._refs["emode"] = {
                "start_liquidation_threshold": np.broadcast_to(t["lt"][1:], (e, c)).copy(),
                "start_liquidation_bonus": np.broadcast_to(t["bonus"][1:], (e, c)).copy(),
            }

    # ------------------------------------------------------------------ levers
    def _start_values(self, group: str, refs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Lever values ``[E, R, L]`` at an episode's start: the reserves' (categories')
        parameters, caps at ``*_cap_start`` times the episode's supply and debt."""
        g = self.rows.group(group)
        objs = self.reserves.reserves if group == "reserve" else self.reserves.emodes
        out = np.zeros((self.num_envs, *g.shape))
        for j, v in enumerate(g.schema.levers):
            if v.target == "supply_cap_asset":
                out[..., j] = self.supply_cap_start * refs["initial_supply_asset"]
            elif v.target == "borrow_cap_asset":
                out[..., j] = self.borrow_cap_start * refs["initial_debt_asset"]
            elif v.target == "ltv_gap":
                out[..., j] = [o.liquidation_threshold - o.ltv for o in objs]
            else:
                out[..., j] = [getattr(o, v.target) for o in objs]
        return out

    def _now(self, group: str) -> np.ndarray:
        """Each env's hours into its episode, per row ``[E, R]``."""
        g = self.rows.group(group)
        now = self._episode_length * self.step_h
        return np.broadcast_to(now[:, None].astype(np.float64), (self.num_envs, len(g.rows)))

    def reserves_of(self, env: int) -> Reserves:
        """The reserves env ``env``'s lever values describe (validated by ``Reserves``); envs
        whose written levers are equal get the same object (and share a market call)."""
        key = b"".join(
            np.ascontiguousarray(self.values[g][env][:, cols]).tobytes()
            for g, cols in self._written.items()
        )
        got = self._reserves_cache.get(key)
        if got is None:
            if len(self._reserves_cache) >= 4 * self.num_envs + 64:
                self._reserves_cache.clear()
            got = self._reserves_cache[key] = self._build_reserves(env)
        return got

    def _build_reserves(self, env: int) -> Reserves:
        v = self.values["reserve"][env]
        col = self._col["reserve"]
        new = []
        for k, r in enumerate(self.reserves.reserves):
            ch = {f: float(v[k, col[f]]) for f in RESERVE_FIELDS if f in col}
            if "ltv_gap" in col:
                lt = ch.get("liquidation_threshold", r.liquidation_threshold)
                ch["ltv"] = max(lt - float(v[k, col["ltv_gap"]]), 0.0)
            new.append(dataclasses.replace(r, **ch) if ch else r)
        emodes = list(self.reserves.emodes)
        if "emode" in self.values:
            ve, ce = self.values["emode"][env], self._col["emode"]
            for c, cat in enumerate(emodes):
                lt = cat.liquidation_threshold
                if "liquidation_threshold" in ce:
                    lt = float(ve[c, ce["liquidation_threshold"]])
                ch = {"liquidation_threshold": lt}
                if "liquidation_bonus" in ce:
                    ch["liquidation_bonus"] = float(ve[c, ce["liquidation_bonus"]])
                if "ltv_gap" in ce:
                    ch["ltv"] = max(lt - float(ve[c, ce["ltv_gap"]]), 0.0)
                emodes[c] = dataclasses.replace(cat, **ch)
        return Reserves(tuple(new), tuple(emodes))

    def lever_values(self) -> dict[str, np.ndarray]:
        """Every group's lever values now ``{group: [E, R, L]}`` (copies)."""
        return {k: v.copy() for k, v in self.values.items()}

    def set_levers(self, values: Mapping[str, np.ndarray], envs: np.ndarray | None = None) -> None:
        """Write lever values ``{group: [E, R, L]}`` for the envs in the bool mask ``envs``
        (default all), clipped to their bounds and projected; the cool-downs are not started (a
        setting, not a change)."""
        mask = np.ones(self.num_envs, dtype=bool) if envs is None else np.asarray(envs, bool)
        for g in self.rows.groups:
            if g.name not in values:
                continue
            v = np.clip(
                np.asarray(values[g.name], dtype=np.float64), self.low[g.name], self.high[g.name]
            )
            g.schema._project(v, {})
            self.values[g.name][mask] = v[mask]
        for i in np.flatnonzero(mask):
            self.env_reserves[i] = self.reserves_of(int(i))

    def _reset_agent(self, mask: np.ndarray) -> None:
        core = self.core
        idx = np.flatnonzero(mask)
        for i in idx:
            s = core.states[i]
            c = s.counters
            ref = self._refs["reserve"]
            # a reserve the book does not supply (borrow) keeps a nominal reference, so its cap
            # is a lever at its start like the others (a cap of 1.5e-9 units binds nothing)
            floor = CAP_REFERENCE_FLOOR_ASSET
            ref["initial_supply_asset"][i] = np.maximum(c["initial_collateral_asset"][0], floor)
            ref["initial_debt_asset"][i] = np.maximum(c["initial_debt_asset"][0], floor)
            self._tvl[i] = float((c["initial_collateral_asset"][0] * s.fundamental_usd[0]).sum())
        for g in self.rows.groups:
            refs = self._refs[g.name]
            shape = (self.num_envs, len(g.rows))
            low, high = g.schema.bounds(refs, shape)
            start = self._start_values(g.name, refs)
            self.low[g.name][mask] = low[mask]
            self.high[g.name][mask] = high[mask]
            self.values[g.name][mask] = start[mask]
            self.clocks[g.name].reset(mask)
            g.schema.check_contains(start[mask], low[mask], high[mask])
        for i in idx:
            self.env_reserves[i] = self.reserves_of(int(i))
        self._cached_book = self._book()
        self._shortfall[mask] = self._cached_book["shortfall_usd"][mask]

    def _reset_info(self, info: dict[str, Any]) -> None:
        info["tvl_usd"] = self._tvl.copy()

    # ------------------------------------------------------------------ the book
    def _book(self) -> dict[str, np.ndarray]:
        """Per env: shortfall, borrowing capacity and the book's features ``[E, ...]``, over the
        batch at once (the reserves' risk parameters per group of envs sharing them)."""
        states = self.core.states
        e, k = self.num_envs, self.reserves.k
        supply = np.concatenate([s.supply for s in states])  # [E, N, K]
        debt = np.concatenate([s.debt for s in states])
        row = np.concatenate([s.emode_row for s in states])  # [E, N]
        price = np.concatenate([s.oracle_usd for s in states])[:, None, :]  # [E, 1, K]
        lender = np.concatenate([s.lender_supply_asset for s in states])  # [E, K]
        ltv, lt, bonus = (np.empty_like(supply) for _ in range(3))
        rate = np.empty((e, k))
        bor_k, sup_k = debt.sum(1), supply.sum(1)
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(self.env_reserves):
            groups.setdefault(id(r), []).append(i)
        for idx in groups.values():
            r = self.env_reserves[idx[0]]
            ltv[idx], lt[idx], bonus[idx] = effective_risk(r, row[idx])
            rate[idx] = borrow_rates_apr(r, bor_k[idx], lender[idx])
        cm = collateral_mask(supply, self.reserves)  # collateral flags are not levers
        coll_nk = np.where(cm, supply * price, 0.0)
        debt_nk = debt * price
        coll_n, debt_n = coll_nk.sum(-1), debt_nk.sum(-1)  # [E, N]
        thr_nk = coll_nk * lt
        thr_n = thr_nk.sum(-1)
        owing = debt_n > 0
        hf = np.where(owing, thr_n / np.where(owing, debt_n, 1.0), np.inf)
        out = {
            "debt_usd": debt_n.sum(1),
            "collateral_usd": coll_n.sum(1),
            "shortfall_usd": np.maximum(debt_n - coll_n, 0.0).sum(1),
            "hf_below": np.stack(
                [np.where(hf < edge, debt_n, 0.0).sum(1) for edge in HF_EDGES], axis=1
            ),
        }
        # one asset's market price 10% lower, through the oracles (_shock: an exchange-rate
        # oracle follows its base): HF' = (thr - thr_nk @ drop_k) / (debt - debt_nk @ drop_k)
        thr_after = thr_n[..., None] - thr_nk @ self._shock.T  # [E, N, K shocked]
        debt_after = debt_n[..., None] - debt_nk @ self._shock.T
        liq = owing[..., None] & (thr_after < debt_after)
        out["liq_k"] = np.where(liq, debt_n[..., None], 0.0).sum(1)
        vol = ~self._stable
        thr_v = thr_n - SHOCK_FRAC * thr_nk[..., vol].sum(-1)
        debt_v = debt_n - SHOCK_FRAC * debt_nk[..., vol].sum(-1)
        out["liq_all"] = np.where(owing & (thr_v < debt_v), debt_n, 0.0).sum(1)
        safe_coll = np.where(coll_n > 0, coll_n, 1.0)
        bonus_n = np.where(coll_n > 0, (coll_nk * bonus).sum(-1) / safe_coll, 0.0)
        out["toxic"] = np.where(owing & (coll_n < (1.0 + bonus_n) * debt_n), debt_n, 0.0).sum(1)
        out["coll_k"], out["debt_k"] = coll_nk.sum(1), debt_nk.sum(1)
        out["supply_k"], out["borrowed_k"] = sup_k, bor_k
        out["util_k"] = np.where(lender > 0, bor_k / np.where(lender > 0, lender, 1.0), 0.0)
        out["rate_k"] = rate
        # capacity: LTV-weighted collateral (a reserve's supply counted up to its cap), at most
        # the borrow caps in USD
        v, caps = self.values["reserve"], self._col["reserve"]
        scap = v[..., caps["supply_cap_asset"]] if "supply_cap_asset" in caps else np.full((e, k), np.inf)  # fmt: skip
        counted = np.where(sup_k > 0, np.minimum(1.0, scap / np.where(sup_k > 0, sup_k, 1.0)), 0.0)  # fmt: skip
        limit = ((coll_nk * ltv).sum(1) * counted).sum(1)
        if "borrow_cap_asset" in caps:
            limit = np.minimum(limit, (v[..., caps["borrow_cap_asset"]] * price[:, 0]).sum(1))
        out["capacity_usd"] = limit
        c1 = len(self.reserves.emodes)
        inside = row[..., None] == np.arange(1, c1 + 1)  # [E, N, C]
        d = np.where(inside, debt_n[..., None], 0.0).sum(1)
        near = np.where(inside & (hf < 1.05)[..., None], debt_n[..., None], 0.0).sum(1)
        out["emode_debt"] = d
        out["emode_near"] = np.where(d > 0, near / np.where(d > 0, d, 1.0), 0.0)
        return out

    # ------------------------------------------------------------------ dynamics
    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        e = self.num_envs
        parts = self.rows.split(actions)
        changed_any = np.zeros(e, dtype=bool)
        n_changed = np.zeros(e)
        for g in self.rows.groups:
            new, changed = g.schema.apply(
                self.values[g.name], parts[g.name], self.clocks[g.name], self._now(g.name),
                self.low[g.name], self.high[g.name],
            )  # fmt: skip
            self.values[g.name] = new
            changed_any |= changed.any(axis=(1, 2))
            n_changed += changed.sum(axis=(1, 2))
        for i in np.flatnonzero(changed_any):
            self.env_reserves[i] = self.reserves_of(int(i))
        keys = ("treasury", "deficit", "seized", "repaid")
        before = {key: np.zeros((e, self.reserves.k)) for key in keys}
        liqs0 = np.zeros(e)
        for i, s in enumerate(core.states):
            c = s.counters
            before["treasury"][i] = s.treasury_asset[0]
            before["deficit"][i] = c["deficit_asset"][0]
            before["seized"][i] = c["seized_collateral_asset"][0]
            before["repaid"][i] = c["repaid_by_liquidators_asset"][0]
            liqs0[i] = s.liquidations[0]
        core.substep(self.env_reserves)
        revenue, bad, seized, repaid = np.zeros(e), np.zeros(e), np.zeros(e), np.zeros(e)
        deficit_total, treasury_total, liqs = np.zeros(e), np.zeros(e), np.zeros(e)
        for i, s in enumerate(core.states):
            c, price = s.counters, s.oracle_usd[0]
            revenue[i] = ((s.treasury_asset[0] - before["treasury"][i]) * price).sum()
            bad[i] = ((c["deficit_asset"][0] - before["deficit"][i]) * price).sum()
            seized[i] = ((c["seized_collateral_asset"][0] - before["seized"][i]) * price).sum()
            repaid[i] = ((c["repaid_by_liquidators_asset"][0] - before["repaid"][i]) * price).sum()
            deficit_total[i] = (c["deficit_asset"][0] * price).sum()
            treasury_total[i] = (s.treasury_asset[0] * price).sum()
            liqs[i] = s.liquidations[0] - liqs0[i]
        book = self._book()
        self._cached_book = book  # the observation that follows reads the same state
        shortfall = book["shortfall_usd"]
        economic_bad = bad + (shortfall - self._shortfall)
        self._shortfall = shortfall
        liq_loss = seized - repaid
        capacity = book["capacity_usd"] * (self.step_h / HOURS_PER_YEAR)
        reward, r_rev, r_bad, r_liq, r_eff = governance_reward_mix(
            revenue, economic_bad, liq_loss, capacity, self._tvl, self.w_bad_debt,
            self.w_liquidation, self.w_efficiency, self.reward_scale,
        )  # fmt: skip
        uncovered = deficit_total + shortfall - treasury_total
        terminated = uncovered > self.insolvency_tolerance_frac * self._tvl
        info = {
            "revenue_usd": revenue,
            "revenue_value_usd": revenue,
            "bad_debt_usd": bad,
            "shortfall_usd": shortfall,
            "economic_bad_debt_usd": economic_bad,
            "liquidation_loss_usd": liq_loss,
            "borrow_capacity_usd": capacity,
            "reward_revenue": r_rev,
            "reward_bad_debt": r_bad,
            "reward_liquidation": r_liq,
            "reward_efficiency": r_eff,
            "liquidations": liqs,
            "liquidated_debt_usd": repaid,
            "deficit_usd": deficit_total,
            "tvl_usd": self._tvl.copy(),
            "levers_changed": n_changed,
        }
        return reward, terminated, info

    # ------------------------------------------------------------------ observation
    def _observe(self, envs: np.ndarray | None = None) -> None:
        core = self.core
        e, k = self.num_envs, self.reserves.k
        f, c = self._features, self._fcol
        book = self._cached_book if self._cached_book is not None else self._book()
        self._cached_book = None
        tr = core.tracker
        fund, pool, oracle = (a.reshape(e, k) for a in core.prices())
        debt_total = book["debt_usd"]
        safe_debt = np.where(debt_total > 0, debt_total, 1.0)
        safe_coll = np.where(book["collateral_usd"] > 0, book["collateral_usd"], 1.0)
        tvl = self._tvl
        per_reserve = {
            "return_1h": 10.0 * tr.log_return(1.0).reshape(e, k),
            "return_24h": 10.0 * tr.log_return(24.0).reshape(e, k),
            "vol_short": tr.vol_annual("short").reshape(e, k),
            "vol_long": tr.vol_annual("long").reshape(e, k),
            "oracle_deviation": 10.0 * (oracle / fund - 1.0),
            "pool_deviation": 10.0 * (pool / fund - 1.0),
            "utilization": book["util_k"],
            "borrow_rate": book["rate_k"],
            "collateral_share": book["coll_k"] / safe_coll[:, None],
            "debt_share": book["debt_k"] / safe_debt[:, None],
            "debt_liquidatable_10": book["liq_k"] / safe_debt[:, None],
            "deficit": np.zeros((e, k)),
        }
        v = self.values["reserve"]
        col = self._col["reserve"]
        for name, cap, used in (
            ("supply_cap_use", "supply_cap_asset", book["supply_k"]),
            ("borrow_cap_use", "borrow_cap_asset", book["borrowed_k"]),
        ):
            if cap in col:
                cv = v[..., col[cap]]
                per_reserve[name] = np.where(
                    cv > 0, used / np.where(cv > 0, cv, 1.0), np.where(used > 0, 2.0, 0.0)
                )
            else:
                per_reserve[name] = np.zeros((e, k))
        for i, s in enumerate(core.states):
            if s is not None:
                per_reserve["deficit"][i] = (
                    100.0 * s.counters["deficit_asset"][0] * s.oracle_usd[0] / tvl[i]
                )
        for g in self.rows.groups:
            vals, lo, hi = self.values[g.name], self.low[g.name], self.high[g.name]
            span = hi - lo
            pos = np.where(span > 0, (vals - lo) / np.where(span > 0, span, 1.0), 0.0)
            left = g.schema.cooldown_left(self.clocks[g.name], self._now(g.name))
            for r, row in enumerate(g.rows):
                if g.name == "reserve":
                    for name, arr in per_reserve.items():
                        f[:, c[f"{row}.{name}"]] = arr[:, r]
                else:
                    f[:, c[f"{row}.debt_share"]] = book["emode_debt"][:, r] / safe_debt
                    f[:, c[f"{row}.debt_hf_below_105"]] = book["emode_near"][:, r]
                for j, lev in enumerate(g.schema.levers):
                    f[:, c[f"{row}.{lev.name}"]] = pos[:, r, j]
                    if lev.cooldown_h > 0:
                        f[:, c[f"{row}.{lev.name}_cooldown"]] = left[:, r, j]
        below = book["hf_below"] / safe_debt[:, None]
        below[debt_total <= 0] = 0.0
        f[:, c["debt_hf_below_1"]] = below[:, 0]
        for j, name in enumerate(
            ("debt_hf_1_105", "debt_hf_105_125", "debt_hf_125_150", "debt_hf_150_200")
        ):
            f[:, c[name]] = below[:, j + 1] - below[:, j]
        f[:, c["debt_hf_above_200"]] = np.where(debt_total > 0, 1.0 - below[:, -1], 0.0)
        f[:, c["debt_liquidatable_10"]] = book["liq_all"] / safe_debt
        f[:, c["debt_toxic"]] = book["toxic"] / safe_debt
        f[:, c["aggregate_ltv"]] = debt_total / safe_coll
        deficit, treasury = np.zeros(e), np.zeros(e)
        for i, s in enumerate(core.states):
            if s is not None:
                deficit[i] = (s.counters["deficit_asset"][0] * s.oracle_usd[0]).sum()
                treasury[i] = (s.treasury_asset[0] * s.oracle_usd[0]).sum()
        f[:, c["bad_debt"]] = 100.0 * deficit / tvl
        f[:, c["shortfall"]] = 100.0 * book["shortfall_usd"] / tvl
        f[:, c["reserves"]] = 100.0 * treasury / tvl
        f[:, c["time_left"]] = 1.0 - core.t / core.horizon_substeps
        self._store_observation(f.copy())

    # ------------------------------------------------------------------ per-env access
    def get_env_attr(self, name: str, env: int) -> Any:
        """As :meth:`LevgymVectorEnv.get_env_attr`; ``reserves`` is env ``env``'s reserves now."""
        self._check_env_index(env)
        if name == "reserves":
            return self.env_reserves[env]
        if name == "protocol_params":
            raise ValueError(
                f"{self.env_id} has no protocol_params; allowed {', '.join(self.PER_ENV_ATTRS)}"
            )
        return super().get_env_attr(name, env)

    def set_env_attr(self, name: str, value: Any, envs: Sequence[int]) -> None:
        """Only the shared reward weights (``SHARED_SETTABLE``) can be set; levers move through
        actions or :meth:`set_levers`."""
        if name == "protocol_params":
            raise ValueError(
                f"attribute 'protocol_params' cannot be set on {self.env_id}; allowed "
                f"{', '.join(self.SHARED_SETTABLE)} (levers: set_levers)"
            )
        super().set_env_attr(name, value, envs)

    def set_scenario_knobs(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        raise ValueError(f"the multi-asset scenarios of {self.env_id} have no knobs")

    # ------------------------------------------------------------------ rendering
    def summary_line(self, env: int) -> str:
        s = self.core.states[env]
        r = self.env_reserves[env]
        lts = " ".join(f"{sym} {lt:.3f}" for sym, lt in zip(r.symbols, r.lt, strict=True))
        return (
            f"PortfolioGovernance-v0 env {env} [{self.core.scenario_of(env)}] step "
            f"{int(self._episode_length[env])}/{self.max_steps}: LT {lts} | liquidations "
            f"{int(s.liquidations[0])} deficit "
            f"{100 * self._deficit_usd(env) / self._tvl[env]:.3f}% "
            f"TVL | return {self._episode_return[env]:.3f}"
        )

    def _deficit_usd(self, env: int) -> float:
        s = self.core.states[env]
        return float((s.counters["deficit_asset"][0] * s.oracle_usd[0]).sum())

    def render_text(self, env: int) -> list[str]:
        return [self.summary_line(env)]


class PortfolioGovernanceEnv(LevgymEnv):
    """levgym/PortfolioGovernance-v0: a risk steward governs every reserve and E-mode category of
    a cross-margin market through correlated multi-asset markets and depegs, a week at a time.

    ## Description

    One cross-margin market of :mod:`levgym.engine.portfolio_market` (Aave v3.3's rules over an
    asset axis: the reserves WETH, wstETH, WBTC, USDC, USDT, DAI of
    :func:`levgym.engine.aave_v3_ethereum.aave_v3_ethereum_reserves` with their E-mode
    categories; ``num_positions`` cross-margin borrowers drawn by
    :func:`levgym.engine.portfolio_books.draw_book`: ETH/stable borrowers, wstETH/WETH loopers
    in E-mode, WBTC/stable borrowers; one pool per asset against USDC; an exchange-rate oracle on
    wstETH) runs through a correlated multi-asset scenario of :mod:`levgym.scenarios.multiasset`
    (the fitted 2021 process, a stETH depeg, a USDC depeg). Every hour the agent, as the
    protocol's risk steward, moves each reserve's levers (LT, the LTV gap, the bonus, supply and
    borrow caps, slope2 and the kink of its rate curve) and each E-mode category's LT, LTV gap
    and bonus, each within its per-change limit and cool-down: the multi-asset form of
    Governance-v1's schema (one :class:`levgym.envs.steward.StewardSchema` per row group,
    applied per row: :class:`levgym.envs.steward.StewardRows`, tabled on the docs'
    PortfolioGovernance page). A cut of LT liquidates users of the live book; a higher bonus
    pays keepers more and users less; the rate curve sets the protocol's income. Borrowers are
    passive in the multi-asset market (no new borrowing, repaying or withdrawing), so caps and
    LTVs enter only the capacity term of the reward.

    ## Action Space

    ``Box(-1, 1, (48,), float32)``: per reserve (WETH, wstETH, WBTC, USDC, USDT, DAI) its 7
    levers, then per E-mode category (``emode1`` ETH correlated, ``emode8`` wstETH/ETH) its 3;
    component ``7 * r + j`` is lever ``j`` of reserve ``r`` and ``42 + 3 * c + j`` lever ``j`` of
    category ``c``. Values outside ``[-1, 1]`` are clipped, NaN or infinite values and a wrong
    shape raise ``ValueError``.

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `WETH.liquidation_threshold` | WETH: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 1 | `WETH.ltv_gap` | WETH: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 2 | `WETH.liquidation_bonus` | WETH: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 3 | `WETH.supply_cap` | WETH: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 4 | `WETH.borrow_cap` | WETH: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 5 | `WETH.slope2` | WETH: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 6 | `WETH.optimal_utilization` | WETH: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 7 | `wstETH.liquidation_threshold` | wstETH: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 8 | `wstETH.ltv_gap` | wstETH: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 9 | `wstETH.liquidation_bonus` | wstETH: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 10 | `wstETH.supply_cap` | wstETH: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 11 | `wstETH.borrow_cap` | wstETH: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 12 | `wstETH.slope2` | wstETH: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 13 | `wstETH.optimal_utilization` | wstETH: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 14 | `WBTC.liquidation_threshold` | WBTC: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 15 | `WBTC.ltv_gap` | WBTC: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 16 | `WBTC.liquidation_bonus` | WBTC: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 17 | `WBTC.supply_cap` | WBTC: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 18 | `WBTC.borrow_cap` | WBTC: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 19 | `WBTC.slope2` | WBTC: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 20 | `WBTC.optimal_utilization` | WBTC: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 21 | `USDC.liquidation_threshold` | USDC: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 22 | `USDC.ltv_gap` | USDC: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 23 | `USDC.liquidation_bonus` | USDC: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 24 | `USDC.supply_cap` | USDC: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 25 | `USDC.borrow_cap` | USDC: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 26 | `USDC.slope2` | USDC: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 27 | `USDC.optimal_utilization` | USDC: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 28 | `USDT.liquidation_threshold` | USDT: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 29 | `USDT.ltv_gap` | USDT: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 30 | `USDT.liquidation_bonus` | USDT: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 31 | `USDT.supply_cap` | USDT: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 32 | `USDT.borrow_cap` | USDT: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 33 | `USDT.slope2` | USDT: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 34 | `USDT.optimal_utilization` | USDT: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 35 | `DAI.liquidation_threshold` | DAI: liquidation threshold (a cut liquidates users of the live book): change, x its per-change limit | -1 | 1 |
    | 36 | `DAI.ltv_gap` | DAI: LT - LTV: the room below LT where new loans stop (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 37 | `DAI.liquidation_bonus` | DAI: liquidation bonus of the reserve as collateral: change, x its per-change limit | -1 | 1 |
    | 38 | `DAI.supply_cap` | DAI: supply cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 39 | `DAI.borrow_cap` | DAI: borrow cap (Chaos Labs' Edge: +100% per 3 days): change, x its per-change limit | -1 | 1 |
    | 40 | `DAI.slope2` | DAI: rate slope above the kink: change, x its per-change limit | -1 | 1 |
    | 41 | `DAI.optimal_utilization` | DAI: kink of the rate curve: change, x its per-change limit | -1 | 1 |
    | 42 | `emode1.liquidation_threshold` | emode1: the category's liquidation threshold for its collateral: change, x its per-change limit | -1 | 1 |
    | 43 | `emode1.ltv_gap` | emode1: the category's LT - LTV (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 44 | `emode1.liquidation_bonus` | emode1: the category's liquidation bonus: change, x its per-change limit | -1 | 1 |
    | 45 | `emode8.liquidation_threshold` | emode8: the category's liquidation threshold for its collateral: change, x its per-change limit | -1 | 1 |
    | 46 | `emode8.ltv_gap` | emode8: the category's LT - LTV (LTV = LT - gap): change, x its per-change limit | -1 | 1 |
    | 47 | `emode8.liquidation_bonus` | emode8: the category's liquidation bonus: change, x its per-change limit | -1 | 1 |

    A lever moves by ``|a|`` times its per-change limit (up for ``a > 0``; caps by a share of
    their value, the others by absolute steps), within its bounds, and only when its cool-down
    has passed since that row's last change of it (each reserve's and category's levers have
    their own clocks). Then per row ``LT * (1 + bonus) <= 0.999`` (LT gives way) and ``gap <=
    LT`` (``LTV = LT - gap >= 0``). Bounds: LT in [0.85, 1.05] x the reserve's starting LT (a
    category's in [0.90, 1.03] x its own), gap in [0, 1] x the starting LT, bonus in [0.5, 2] x
    the starting bonus ([0.5, 3] x for a category), caps in [0.25, 4] x the episode's supply
    (debt) of the reserve (at least 1e-9 units), slope2 in [0.25, 4] x its start, the kink in
    [0.3, 0.95]. Steps: LT and bonus 0.5% per hour (a category's 0.25%), gap +1% / -0.5% (+0.5%
    / -0.25%), caps +100% / -50% once per 3 days, slope2 0.25 APR and the kink 5% once per 6
    hours. An all-zero action holds every lever.

    ## Observation Space

    ``Box(low, high, (173,), float32)``: per reserve (prefix ``{symbol}.``) 14 market and book
    features, then its 7 lever positions and 4 cool-downs; per E-mode category (prefix
    ``emode{id}.``) 2 features and its 3 lever positions; then 13 features of the whole book.
    Each entry is clipped to its bounds. TVL is the collateral value at the start of the episode
    (USD at the fundamental prices).

    | index | name | description | min | max |
    |---|---|---|---|---|
    | 0 | `WETH.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 1 | `WETH.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 2 | `WETH.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 3 | `WETH.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 4 | `WETH.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 5 | `WETH.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 6 | `WETH.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 7 | `WETH.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 8 | `WETH.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 9 | `WETH.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 10 | `WETH.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 11 | `WETH.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 12 | `WETH.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 13 | `WETH.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 14 | `WETH.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 15 | `WETH.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 16 | `WETH.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 17 | `WETH.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 18 | `WETH.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 19 | `WETH.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 20 | `WETH.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 21 | `WETH.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 22 | `WETH.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 23 | `WETH.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 24 | `WETH.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 25 | `wstETH.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 26 | `wstETH.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 27 | `wstETH.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 28 | `wstETH.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 29 | `wstETH.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 30 | `wstETH.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 31 | `wstETH.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 32 | `wstETH.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 33 | `wstETH.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 34 | `wstETH.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 35 | `wstETH.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 36 | `wstETH.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 37 | `wstETH.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 38 | `wstETH.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 39 | `wstETH.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 40 | `wstETH.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 41 | `wstETH.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 42 | `wstETH.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 43 | `wstETH.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 44 | `wstETH.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 45 | `wstETH.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 46 | `wstETH.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 47 | `wstETH.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 48 | `wstETH.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 49 | `wstETH.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 50 | `WBTC.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 51 | `WBTC.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 52 | `WBTC.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 53 | `WBTC.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 54 | `WBTC.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 55 | `WBTC.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 56 | `WBTC.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 57 | `WBTC.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 58 | `WBTC.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 59 | `WBTC.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 60 | `WBTC.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 61 | `WBTC.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 62 | `WBTC.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 63 | `WBTC.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 64 | `WBTC.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 65 | `WBTC.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 66 | `WBTC.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 67 | `WBTC.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 68 | `WBTC.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 69 | `WBTC.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 70 | `WBTC.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 71 | `WBTC.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 72 | `WBTC.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 73 | `WBTC.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 74 | `WBTC.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 75 | `USDC.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 76 | `USDC.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 77 | `USDC.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 78 | `USDC.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 79 | `USDC.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 80 | `USDC.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 81 | `USDC.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 82 | `USDC.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 83 | `USDC.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 84 | `USDC.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 85 | `USDC.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 86 | `USDC.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 87 | `USDC.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 88 | `USDC.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 89 | `USDC.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 90 | `USDC.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 91 | `USDC.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 92 | `USDC.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 93 | `USDC.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 94 | `USDC.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 95 | `USDC.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 96 | `USDC.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 97 | `USDC.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 98 | `USDC.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 99 | `USDC.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 100 | `USDT.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 101 | `USDT.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 102 | `USDT.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 103 | `USDT.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 104 | `USDT.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 105 | `USDT.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 106 | `USDT.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 107 | `USDT.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 108 | `USDT.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 109 | `USDT.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 110 | `USDT.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 111 | `USDT.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 112 | `USDT.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 113 | `USDT.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 114 | `USDT.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 115 | `USDT.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 116 | `USDT.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 117 | `USDT.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 118 | `USDT.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 119 | `USDT.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 120 | `USDT.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 121 | `USDT.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 122 | `USDT.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 123 | `USDT.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 124 | `USDT.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 125 | `DAI.return_1h` | log return of the fundamental price over 1 h, x10 | -10 | 10 |
    | 126 | `DAI.return_24h` | log return of the fundamental price over 24 h, x10 | -10 | 10 |
    | 127 | `DAI.vol_short` | realized volatility, EWMA half-life 6 h, annualized | 0 | 20 |
    | 128 | `DAI.vol_long` | realized volatility, EWMA half-life 7 days, annualized | 0 | 20 |
    | 129 | `DAI.oracle_deviation` | oracle / fundamental - 1, x10 | -10 | 10 |
    | 130 | `DAI.pool_deviation` | pool price / fundamental - 1, x10 (0 for USDC) | -10 | 10 |
    | 131 | `DAI.utilization` | borrowers' debt / lenders' supply | 0 | 1 |
    | 132 | `DAI.borrow_rate` | borrow rate of the curve now (APR) | 0 | 10 |
    | 133 | `DAI.collateral_share` | share of the book's collateral value (oracle) | 0 | 1 |
    | 134 | `DAI.debt_share` | share of the book's debt value (oracle) | 0 | 1 |
    | 135 | `DAI.debt_liquidatable_10` | share of the book's debt liquidatable if this asset's price fell 10% (others held; through the oracles: an exchange-rate oracle follows its base) | 0 | 1 |
    | 136 | `DAI.supply_cap_use` | supply / supply cap (2 when the cap is 0) | 0 | 2 |
    | 137 | `DAI.borrow_cap_use` | debt / borrow cap (2 when the cap is 0 and there is debt) | 0 | 2 |
    | 138 | `DAI.deficit` | debt written off this episode (v3.3 deficit) / TVL, x100 | 0 | 100 |
    | 139 | `DAI.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 140 | `DAI.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 141 | `DAI.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 142 | `DAI.supply_cap` | `supply_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 143 | `DAI.borrow_cap` | `borrow_cap_asset` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 144 | `DAI.slope2` | `slope2_apr` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 145 | `DAI.optimal_utilization` | `optimal_utilization_frac` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 146 | `DAI.supply_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 147 | `DAI.borrow_cap_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 148 | `DAI.slope2_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 149 | `DAI.optimal_utilization_cooldown` | share of its cool-down still to run (0: may move) | 0 | 1 |
    | 150 | `emode1.debt_share` | share of the book's debt owed by positions in the category | 0 | 1 |
    | 151 | `emode1.debt_hf_below_105` | share of the category's debt with HF < 1.05 | 0 | 1 |
    | 152 | `emode1.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 153 | `emode1.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 154 | `emode1.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 155 | `emode8.debt_share` | share of the book's debt owed by positions in the category | 0 | 1 |
    | 156 | `emode8.debt_hf_below_105` | share of the category's debt with HF < 1.05 | 0 | 1 |
    | 157 | `emode8.liquidation_threshold` | `liquidation_threshold` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 158 | `emode8.ltv_gap` | `ltv_gap` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 159 | `emode8.liquidation_bonus` | `liquidation_bonus` as its position within its bounds (0 low, 1 high) | 0 | 1 |
    | 160 | `debt_hf_below_1` | share of debt with HF < 1 | 0 | 1 |
    | 161 | `debt_hf_1_105` | share of debt with 1 <= HF < 1.05 | 0 | 1 |
    | 162 | `debt_hf_105_125` | share of debt with 1.05 <= HF < 1.25 | 0 | 1 |
    | 163 | `debt_hf_125_150` | share of debt with 1.25 <= HF < 1.5 | 0 | 1 |
    | 164 | `debt_hf_150_200` | share of debt with 1.5 <= HF < 2 | 0 | 1 |
    | 165 | `debt_hf_above_200` | share of debt with HF >= 2 | 0 | 1 |
    | 166 | `debt_liquidatable_10` | share of debt liquidatable if every oracle but the stablecoins' fell 10% | 0 | 1 |
    | 167 | `debt_toxic` | share of debt whose collateral is worth less than (1 + its bonus) x the debt | 0 | 1 |
    | 168 | `aggregate_ltv` | total debt / collateral value at the oracle | 0 | 2 |
    | 169 | `bad_debt` | debt written off this episode / TVL, x100 (percent) | 0 | 100 |
    | 170 | `shortfall` | underwater shortfall now / TVL, x100 (percent) | 0 | 100 |
    | 171 | `reserves` | treasury (interest share, fees) / TVL, x100 (percent) | 0 | 100 |
    | 172 | `time_left` | share of the episode left | 0 | 1 |

    ## Rewards

    In basis points of TVL (``reward_scale = 1e4`` per unit of TVL), per step, the structure of
    Governance-v1:

    ``reward = revenue - w_bad_debt * bad_debt - w_liquidation * liquidation_loss
    + w_efficiency * capacity * step_h / 8760``

    - ``revenue``: the treasury's income (the reserve factor's share of interest and the
      liquidation protocol fees, every reserve), USD at the oracle after the step.
    - ``bad_debt``: economic bad debt in USD: debt written off into the reserves' deficits
      (v3.3's ``DeficitCreated``) plus the change in the underwater shortfall (debt above the
      value of its collateral at the oracle).
    - ``liquidation_loss``: what users lost to liquidations, the collateral seized (the
      liquidator's and the protocol fee) less the debt repaid, USD at the oracle.
    - ``capacity``: the borrowing the levers allow: the LTV-weighted collateral at the oracle
      (E-mode LTVs for members; a reserve's supply counted up to its supply cap), at most the
      borrow caps in USD, valued at ``w_efficiency`` a year.

    Defaults ``w_bad_debt = 2``, ``w_liquidation = 0.5``, ``w_efficiency = 0.02``, as Governance-v1.

    ## Starting State

    Each episode draws a scenario from ``scenarios`` (default ``multiasset_2021``,
    ``steth_depeg``, ``usdc_depeg``, equal weights), its price path and a fresh book at the
    reserves' parameters (``reserves``, default Aave v3 Ethereum). Every lever starts at the
    reserve's (category's) parameter, the caps at ``supply_cap_start`` (1.5) times the episode's
    supply and ``borrow_cap_start`` (1.5) times its debt of the reserve; every cool-down has
    passed.

    ## Episode End

    - Termination (``info["end_cause"] == "insolvency"``): the deficits written off plus the
      underwater shortfall, less the treasury, exceed ``insolvency_tolerance_frac`` (default
      0.5%) of TVL.
    - Truncation (``"horizon"``): after ``horizon_h`` hours (default 168, a week of 1 h steps).

    ## Arguments

    ``gym.make("levgym/PortfolioGovernance-v0", **kwargs)``:

    - ``num_positions`` (64): borrower slots per market.
    - ``scenarios`` (None: the default mix): names of :data:`levgym.scenarios.multiasset.SCENARIOS`
      (a name, a list, or ``{name: weight}``).
    - ``horizon_h`` (168): hours per episode (a whole number of ``market.substep_h`` steps).
    - ``reserves`` (None: Aave v3 Ethereum's six reserves and two E-mode categories): a
      :class:`levgym.engine.portfolio.Reserves` with a USDC reserve (the action and the
      observation follow its reserves and categories).
    - ``market`` (None: the defaults):
      :class:`levgym.engine.portfolio_market.PortfolioMarketParams`.
    - ``supply_cap_start`` (1.5), ``borrow_cap_start`` (1.5): starting caps as multiples of the
      episode's supply and debt of each reserve, in [0.25, 4].
    - ``w_bad_debt`` (2.0), ``w_liquidation`` (0.5), ``w_efficiency`` (0.02), ``reward_scale``
      (1e4), ``insolvency_tolerance_frac`` (0.005).
    - ``split`` (``"train"``): scenario seeds from the train or the eval block.
    - ``render_mode``: None or ``"ansi"`` (one line per env).

    ## Vectorized environment

    ``gym.make_vec("levgym/PortfolioGovernance-v0", num_envs=E, **kwargs)`` returns
    :class:`PortfolioGovernanceVectorEnv`, E markets with same-step autoreset. Env ``i`` of a
    vector env reset with ``seed=s`` behaves exactly as this env reset with ``seed=s + i``; for
    Stable-Baselines3 use ``levgym.envs.make_sb3_vec_env("levgym/PortfolioGovernance-v0", E)``.

    ## Version History

    - v0: initial release.
    """

    vector_class = PortfolioGovernanceVectorEnv

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)


__all__ = [
    "DEFAULT_PORTFOLIO_SCENARIOS",
    "EMODE_LEVERS",
    "PORTFOLIO_ACTIONS",
    "PORTFOLIO_FEATURES",
    "RESERVE_LEVERS",
    "PortfolioGovernanceEnv",
    "PortfolioGovernanceVectorEnv",
    "PortfolioMarkets",
    "portfolio_features",
    "portfolio_rows",
    "steward_rows_table",
]
