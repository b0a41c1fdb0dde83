"""Run the multi-asset (cross-margin) market on a multi-asset scenario and summarise it: what
``levgym simulate --preset aave_v3_ethereum`` prints.

The market is :mod:`levgym.engine.portfolio_market` with the reserves of
:func:`levgym.engine.aave_v3_ethereum.aave_v3_ethereum_reserves` (WETH, wstETH, WBTC, USDC, USDT,
DAI), a book from :func:`levgym.engine.portfolio_books.draw_book` and price paths of a
:mod:`levgym.scenarios.multiasset` scenario (1 h rows, one substep per row). The summary is the
mean over envs: per-asset dicts keyed by symbol in asset units (both accounting identities hold
per asset from them) and USD totals at the start prices (``*_start_usd``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .engine import portfolio_borrowers as PB
from .engine import portfolio_market as PM
from .engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from .engine.params import override_many
from .engine.portfolio_books import draw_book
from .scenarios import multiasset as MA
from .scenarios.portfolio_book_csv import book_arrays

PRESET_MARKET = PM.PortfolioMarketParams(stable_pool="stableswap")
"""The preset's market: the step's defaults with the stable pool as Curve StableSwap legs
(amplification ``stable_pool_amp``, 3pool's A; ``--set market.stable_pool=cpmm`` for the
constant-product legs the envs and the multi-protocol step keep)."""

PRESET = "aave_v3_ethereum"
DEFAULT_SCENARIO = "multiasset_2021"

BY_ASSET = {
    "initial_collateral_by_asset": "initial_collateral_asset",
    "final_collateral_by_asset": None,
    "seized_collateral_by_asset": "seized_collateral_asset",
    "added_collateral_by_asset": "added_collateral_asset",
    "withdrawn_collateral_by_asset": "withdrawn_collateral_asset",
    "protocol_fee_by_asset": "protocol_fee_asset",
    "initial_debt_by_asset": "initial_debt_asset",
    "final_debt_by_asset": None,
    "borrowed_by_asset": "borrowed_asset",
    "interest_by_asset": "interest_asset",
    "repaid_by_borrowers_by_asset": "repaid_by_borrowers_asset",
    "repaid_by_liquidators_by_asset": "repaid_by_liquidators_asset",
    "bad_debt_by_asset": "deficit_asset",
    "deficit_covered_by_asset": "deficit_covered_asset",
    "treasury_interest_by_asset": "treasury_interest_asset",
    "final_treasury_by_asset": None,
}
"""Per-asset dict keys and the market counter each comes from (``None``: the final balances)."""

START_USD = {
    "initial_collateral_start_usd": "initial_collateral_by_asset",
    "final_collateral_start_usd": "final_collateral_by_asset",
    "seized_collateral_start_usd": "seized_collateral_by_asset",
    "initial_debt_start_usd": "initial_debt_by_asset",
    "final_debt_start_usd": "final_debt_by_asset",
    "interest_start_usd": "interest_by_asset",
    "repaid_by_liquidators_start_usd": "repaid_by_liquidators_by_asset",
    "bad_debt_start_usd": "bad_debt_by_asset",
    "added_collateral_start_usd": "added_collateral_by_asset",
    "repaid_by_borrowers_start_usd": "repaid_by_borrowers_by_asset",
    "withdrawn_collateral_start_usd": "withdrawn_collateral_by_asset",
    "borrowed_start_usd": "borrowed_by_asset",
    "deficit_covered_start_usd": "deficit_covered_by_asset",
}
"""USD totals at the start fundamental prices, from the per-asset dict each names."""


SET_SECTIONS = ("market", "borrowers")
"""``--set`` sections the preset takes: ``market.KEY`` a field of
:class:`~levgym.engine.portfolio_market.PortfolioMarketParams` (not ``substep_h``: one substep
per hourly row), ``borrowers.KEY`` one of
:class:`~levgym.engine.portfolio_borrowers.PortfolioBorrowerParams`."""


def params_from_sets(sets: dict[str, dict[str, str]]) -> PM.PortfolioMarketParams:
    """The market parameters of ``--set`` overrides (:func:`levgym.cli.common.parse_sets`'s
    form), validated; one line naming the key and what is allowed otherwise."""
    market_keys = [f.name for f in dataclasses.fields(PM.PortfolioMarketParams)]
    market_keys = [k for k in market_keys if k not in ("substep_h", "borrowers")]
    borrower_keys = [f.name for f in dataclasses.fields(PB.PortfolioBorrowerParams)]
    allowed = (
        f"allowed market.{{{', '.join(market_keys)}}} and borrowers.{{{', '.join(borrower_keys)}}}"
    )
    for section, items in sets.items():
        for key in items:
            if section not in SET_SECTIONS or (section == "market" and key not in market_keys):
                raise ValueError(
                    f"--set {section}.{key} is not supported with --preset {PRESET}; {allowed}"
                )
    borrowers = override_many(PB.PortfolioBorrowerParams(), "borrowers", sets.get("borrowers", {}))
    for key in ("exit_rate_per_h", "arrival_rate_per_h"):
        if getattr(borrowers, key) > 0.0:  # the preset's books have no free slots or templates
            raise ValueError(
                f"--set borrowers.{key} is not supported with --preset {PRESET} (its books have "
                f"no free slots or templates); allowed 0"
            )
    market = override_many(PRESET_MARKET, "market", sets.get("market", {}))
    return dataclasses.replace(market, borrowers=borrowers)


def start_fundamentals(
    scenario: str | None, seed: int = 0, price_table: MA.MultiAssetTable | None = None
) -> np.ndarray:
    """The reserves' fundamental USD prices at the start ``[K]`` (the same on every path: the
    fitted process starts from fixed prices, a replay from the file's first row)."""
    reserves = aave_v3_ethereum_reserves()
    paths = MA.get_scenario(scenario or DEFAULT_SCENARIO).build(1, 1, 1.0, seed, price_table)
    ratio = PM.initial_exchange_ratio(reserves, 1)
    return PM.fundamentals_from_paths(paths.prices_usd, paths.symbols, reserves, ratio)[0, 0]


def start_oracle(
    scenario: str | None, seed: int = 0, price_table: MA.MultiAssetTable | None = None
) -> np.ndarray:
    """The reserves' oracle prices at the start ``[K]`` (where a ``--book-csv`` is checked)."""
    reserves = aave_v3_ethereum_reserves()
    f0 = start_fundamentals(scenario, seed, price_table)
    empty = np.zeros((1, 1, reserves.k))
    return PM.init_state(reserves, PRESET_MARKET, empty, empty, 0, f0).oracle_usd[0]


def check_price_table(table: MA.MultiAssetTable, scenario: str | None, rows: int, label: str,
                      what: str) -> None:  # fmt: skip
    """One line when ``table`` (a ``--price-csv``) cannot drive ``rows`` hourly rows under
    ``scenario``: too short (``what`` names the flag that sets the length), or the scenario's
    overlay moves an asset the file replays."""
    covered = int(math.floor((table.times_s[-1] - table.times_s[0]) / 3600.0 + 1e-9)) + 1
    if covered < rows:
        raise ValueError(
            f"{label} covers {covered} hourly row(s) ({table.times_s.size} in the file); {what} "
            f"needs {rows} (the start row and one per hour); allowed {what.split()[0]} <= "
            f"{covered - 1}"
        )
    sc = MA.get_scenario(scenario or DEFAULT_SCENARIO)
    for o in sc.overlays:
        if o.symbol in table.symbols:
            raise ValueError(
                f"--scenario {sc.name} moves {o.symbol} ({type(o).__name__}) but {label} replays "
                f"{o.symbol}; allowed a scenario that moves only assets missing from the file "
                f"(e.g. {DEFAULT_SCENARIO}) or a file without a {o.symbol} column"
            )


def build_market(
    scenario: str | None, num_envs: int, positions: int, steps: int, seed: int,
    params: PM.PortfolioMarketParams | None = None,
    price_table: MA.MultiAssetTable | None = None, reserves: Any = None, book: Any = None,
) -> tuple[PM.PortfolioState, np.ndarray, Any]:  # fmt: skip
    """(initial state, fundamentals ``[steps + 1, E, K]``, reserves) of ``num_envs`` markets:
    the scenario's paths (a ``price_table``'s assets replayed, the others simulated
    conditionally on them) and a drawn book of ``positions`` slots, or ``book`` (a
    :class:`~levgym.scenarios.portfolio_book_csv.PortfolioBookTable`) in every env's first slots
    (``max(positions, rows)`` slots). ``reserves`` default
    :func:`~levgym.engine.aave_v3_ethereum.aave_v3_ethereum_reserves`."""
    sc = MA.get_scenario(scenario or DEFAULT_SCENARIO)
    params = params or PRESET_MARKET
    reserves = aave_v3_ethereum_reserves() if reserves is None else reserves
    paths = sc.build(num_envs, steps + 1, 1.0, seed, price_table)
    ratio = PM.initial_exchange_ratio(reserves, num_envs)
    f = PM.fundamentals_from_paths(paths.prices_usd, paths.symbols, reserves, ratio)
    k = reserves.k
    empty = np.zeros((num_envs, 1, k))
    oracle0 = PM.init_state(reserves, params, empty, empty, 0, f[0]).oracle_usd
    kinds = None
    if book is None:
        drawn = draw_book(reserves, oracle0[0], num_envs, positions, seed=seed)
        supply, debt, emode_row = drawn.supply, drawn.debt, drawn.emode_row
    else:
        arr = book_arrays(book, num_envs, positions)
        supply, debt, emode_row = arr["supply"], arr["debt"], arr["emode_row"]
        kinds = arr["behaviour"] if book.behaviour is not None else None
    state = PM.init_state(reserves, params, supply, debt, emode_row, f[0])
    if params.borrowers.defensive_frac > 0 or kinds is not None:
        behaviours = PB.assign(
            params.borrowers, state.supply, state.oracle_usd, seed, reserves, kinds
        )
        state = PB.with_behaviours(state, behaviours)
    return state, f, reserves


def by_asset_arrays(state: PM.PortfolioState) -> dict[str, np.ndarray]:
    """The :data:`BY_ASSET` keys' ``[E, K]`` arrays of a finished run: the counters, and the
    final balances (collateral, debt, treasury) for the keys without one."""
    finals = {
        "final_collateral_by_asset": PM.final_collateral(state),
        "final_debt_by_asset": PM.final_debt(state),
        "final_treasury_by_asset": state.treasury_asset,
    }
    return {
        key: finals[key] if src is None else state.counters[src] for key, src in BY_ASSET.items()
    }


def simulate_portfolio(
    scenario: str | None, num_envs: int, positions: int, steps: int, seed: int,
    params: PM.PortfolioMarketParams | None = None,
    price_table: MA.MultiAssetTable | None = None, price_csv: str | None = None,
    book: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """The summary of ``num_envs`` markets of ``positions`` slots over ``steps`` hours
    (``price_table``: the parsed ``--price-csv`` named ``price_csv``)."""
    name = scenario or DEFAULT_SCENARIO
    params = params or PRESET_MARKET
    state, f, reserves = build_market(
        name, num_envs, positions, steps, seed, params, price_table, None, book
    )
    pool_start = PM.pool_usd(reserves, params, f[0], state.pool_asset, state.pool_quote)
    state = PM.run(state, f, reserves, params, noise_seed=seed)
    arrays = by_asset_arrays(state)
    start = f[0]  # [E, K]
    out: dict[str, Any] = {
        "scenario": name if price_table is None else f"{name}+csv:{price_csv}",
        "replayed": [] if price_table is None else list(price_table.symbols),
        "seed": int(seed),
        "num_envs": int(num_envs),
        "positions": int(state.shape[1]),
        "steps": int(steps),
        "reserves": list(reserves.symbols),
    }
    for key, src in START_USD.items():
        out[key] = float((arrays[src] * start).sum(axis=1).mean())
    lender_loss = state.counters["lender_loss_asset"]  # 0 unless reserves_then_lenders
    lender_loss_usd = float((lender_loss * start).sum(axis=1).mean())
    out["deficit_outstanding_start_usd"] = (
        out["bad_debt_start_usd"] - out["deficit_covered_start_usd"] - lender_loss_usd
    )
    out["deficit_cover"] = params.deficit_cover
    if params.deficit_cover == "reserves_then_lenders":  # the lenders' part of the bad debt
        out["lender_loss_start_usd"] = lender_loss_usd
        out["lender_loss_by_asset"] = {
            s: float(lender_loss[:, i].mean()) for i, s in enumerate(reserves.symbols)
        }
    out["defensive_frac"] = params.borrowers.defensive_frac
    out["liquidations"] = float(state.liquidations.mean())
    out["cascade_rounds_max"] = int(state.cascade_rounds_max.max())
    out["keeper_pnl_usd"] = float(state.keeper_pnl_usd.mean())
    for key, a in arrays.items():
        out[key] = {s: float(a[:, i].mean()) for i, s in enumerate(reserves.symbols)}
    out.update(optional_outputs(state, params, reserves, f[0], pool_start))
    return out


VENUE_BY_ASSET = {
    "keeper_sold_by_asset": "sold_asset",
    "keeper_venue_sold_by_asset": "venue_sold_asset",
    "keeper_aggregator_sold_by_asset": "aggregator_sold_asset",
    "keeper_cex_sold_by_asset": "cex_sold_asset",
}
"""The keepers' sales by route (asset units) and the counter each comes from: emitted when the
keepers have off-pool venues (``--set market.keeper_venue_frac=...`` or an aggregator / CEX
depth)."""


def optional_outputs(
    state: PM.PortfolioState, params: PM.PortfolioMarketParams, reserves: Any,
    start_usd: np.ndarray, pool_start_usd: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    """The single-asset engine's statistics where the options that keep them are on (none by
    default, so the default output is as before): the keepers' sales by route and the
    collateral still held for the CEX leg (with off-pool venues), and with
    ``market.statistics``: each reserve's lowest fundamental and pool price over the start,
    the positions liquidated at least once and the protocol fee in USD at the oracle."""
    out: dict[str, Any] = {}
    syms = reserves.symbols

    def by_asset(a: np.ndarray) -> dict[str, float]:
        return {s: float(a[:, i].mean()) for i, s in enumerate(syms)}

    if params.keeper_routing != "pool":
        for key, src in VENUE_BY_ASSET.items():
            out[key] = by_asset(state.counters[src])
        if state.keeper_cex_pending_asset is not None:
            out["keeper_cex_pending_by_asset"] = by_asset(state.keeper_cex_pending_asset)
    if params.statistics and state.fundamental_min_usd is not None:
        out["fundamental_min_over_start_by_reserve"] = by_asset(
            state.fundamental_min_usd / start_usd
        )
        out["pool_min_over_start_by_reserve"] = by_asset(state.pool_min_usd / pool_start_usd)
        out["positions_liquidated"] = float(state.ever_liquidated.sum(axis=1).mean())
        out["protocol_fee_usd"] = float(state.counters["protocol_fee_usd"].sum(axis=1).mean())
    return out
