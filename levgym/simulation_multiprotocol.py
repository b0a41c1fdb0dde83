"""Run several lending protocols on shared (or isolated) markets and summarise them: what
``levgym simulate --protocols a,b,c`` prints.

The market is :mod:`levgym.engine.multiprotocol` with the protocol presets of
:mod:`levgym.engine.protocol_presets`, each with its own seeded book, on the price paths of a
:mod:`levgym.scenarios.multiasset` scenario (1 h rows, one substep per row; the same paths for
every protocol and every counterfactual: common random numbers). The summary is the mean over
envs: the multi-asset preset's keys as totals over the protocols, per-protocol USD dicts, and the
per-asset detail nested per protocol (``by_protocol``). Amounts in USD are at the start
fundamental prices.

Per protocol: ``bad_debt_usd`` is the debt written off (Aave's v3.3 deficits, Morpho's
socialised bad debt, Compound's absorb shortfall beyond the collateral's oracle value);
``liquidated_usd`` the debt repaid by liquidators (Compound: the absorbed debt less its
shortfall); ``revenue_usd`` the protocol's income (Aave and Morpho: reserve-factor interest and
liquidation protocol fees; Compound: the change of its base reserves plus the collateral it
still holds, at the final prices, plus the shortfall), so that ``revenue - bad debt`` is the change of the protocol's
own equity. ``contagion_bad_debt_usd`` is the shared-markets run minus the isolated-markets run
(:func:`levgym.engine.multiprotocol.pool_shares`) on the same paths and books.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine import multiprotocol as MP
from .engine import portfolio_market as PM
from .engine.protocol_presets import (
    COMET_INITIAL_RESERVES_FRAC_OF_DEBT,
    COMET_TARGET_RESERVES_FRAC_OF_DEBT,
    DEFAULT_SYMBOLS,
    PROTOCOL_PRESETS,
    THIN_SYMBOLS,
    draw_protocol_book,
    protocol_preset,
)
from .scenarios import multiprotocol as MPS
from .simulation_portfolio import BY_ASSET, DEFAULT_SCENARIO, START_USD, by_asset_arrays


def parse_protocols(text: str) -> tuple[str, ...]:
    """``"a,b,c"`` -> names, each a known preset, none twice (one-line errors)."""
    names = tuple(x.strip() for x in str(text).split(",") if x.strip())
    if not names:
        raise ValueError(f"--protocols {text!r} is empty; allowed a comma-separated list of {', '.join(PROTOCOL_PRESETS)}")  # fmt: skip
    for x in names:
        if x not in PROTOCOL_PRESETS:
            raise ValueError(f"--protocols names {x!r}; allowed {', '.join(PROTOCOL_PRESETS)}")
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise ValueError(f"--protocols names {dup} more than once; allowed each once")
    return names


def build(names: tuple[str, ...], num_envs: int, positions: int, seed: int, f0: np.ndarray, params: MP.MultiParams, symbols: tuple[str, ...] = DEFAULT_SYMBOLS):  # fmt: skip
    """(protocols, supplies, debts, emode rows, Compound reserves ``[E, P]``, targets ``[E, P]``)."""
    protocols = tuple(protocol_preset(x, symbols) for x in names)
    supplies, debts, rows = [], [], []
    rb = np.zeros((num_envs, len(names)))
    tg = np.zeros((num_envs, len(names)))
    for p, pr in enumerate(protocols):
        z = np.zeros((num_envs, 1, pr.reserves.k))
        oracle0 = PM.init_state(pr.reserves, params.market, z, z, 0, f0).oracle_usd[0]
        s, d, r = draw_protocol_book(pr.name, oracle0, num_envs, positions, seed)
        supplies.append(s)
        debts.append(d)
        rows.append(r)
        if pr.kind == "compound_v3":
            debt_base = d[..., pr.base_index].sum(axis=1)
            rb[:, p] = COMET_INITIAL_RESERVES_FRAC_OF_DEBT * debt_base
            tg[:, p] = COMET_TARGET_RESERVES_FRAC_OF_DEBT * debt_base
    return protocols, supplies, debts, rows, rb, tg


def market_paths(
    names: tuple[str, ...], scenario: str, num_envs: int, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(fundamentals ``[steps + 1, E, K]``, pool-drain driver ``[steps + 1, E, 2, K]`` or None)
    of the multi-protocol ``scenario`` (:mod:`levgym.scenarios.multiprotocol`) on 1 h rows from
    ``seed``, on the protocols' asset axis (the same paths for every protocol and every run)."""
    sc = MPS.get_scenario(scenario)
    reserves = protocol_preset(names[0], sc.symbols).reserves
    return sc.build(reserves, num_envs, steps, seed)


def run_market(
    names: tuple[str, ...], paths_f: np.ndarray, num_envs: int, positions: int, seed: int,
    params: MP.MultiParams, pool_reserve_frac: np.ndarray | None = None,
) -> tuple[tuple, MP.MultiState, np.ndarray]:  # fmt: skip
    """(protocols, final state, Compound's base reserves at the start ``[E, P]``) of the presets
    ``names`` with their books from ``seed`` stepped through ``paths_f`` (on
    :data:`~levgym.engine.protocol_presets.THIN_SYMBOLS` when it has their width) under
    ``params``, with the pool-drain driver where given."""
    symbols = THIN_SYMBOLS if paths_f.shape[-1] == len(THIN_SYMBOLS) else DEFAULT_SYMBOLS
    protocols, s, d, r, rb, tg = build(
        names, num_envs, positions, seed, paths_f[0], params, symbols
    )
    drain0 = None if pool_reserve_frac is None else pool_reserve_frac[0]
    state = MP.init_state(protocols, params, s, d, r, paths_f[0], rb, tg, drain0)
    return protocols, MP.run(state, paths_f, protocols, params, True, pool_reserve_frac), rb


def per_protocol_outcomes(protocols, state: MP.MultiState, start: np.ndarray, rb0: np.ndarray):
    """Per protocol (USD at start prices, ``[E]`` each): bad debt, liquidated, revenue (Compound's
    collateral still held at the final fundamental prices: what it is worth now)."""
    out = {}
    for p, (pr, b) in enumerate(zip(protocols, state.books, strict=True)):
        c = b.counters
        bad = (c["deficit_asset"] * start).sum(axis=1)
        liq = (c["repaid_by_liquidators_asset"] * start).sum(axis=1)
        if pr.kind == "compound_v3":
            kb = pr.base_index
            rev = (state.reserves_base[:, p] - rb0[:, p]) * start[:, kb]
            held = (state.collateral_reserve_asset[:, p] * b.fundamental_usd).sum(axis=1)
            rev = rev + held + bad
        else:
            rev = (b.treasury_asset * start).sum(axis=1)
        out[pr.name] = (bad, liq, rev)
    return out


def simulate_multiprotocol(
    names: tuple[str, ...], scenario: str | None, num_envs: int, positions: int, steps: int,
    seed: int, margin: str = "per_protocol", isolated_markets: bool = False,
    contagion: bool = False, market: PM.PortfolioMarketParams | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The summary of ``num_envs`` markets of the protocols ``names``, ``positions`` slots each
    per protocol, over ``steps`` hours (module docstring)."""
    if contagion and isolated_markets:
        raise ValueError(
            "--contagion compares shared markets with isolated ones; allowed without --isolated-markets"
        )
    name = scenario or DEFAULT_SCENARIO
    sc = MPS.get_scenario(name)
    params = MP.MultiParams(market or sc.market_params(), margin, isolated_markets)
    reserves = protocol_preset(names[0], sc.symbols).reserves
    f, drain = market_paths(names, name, num_envs, steps, seed)
    protocols, state, rb0 = run_market(names, f, num_envs, positions, seed, params, drain)
    start = f[0]
    syms = reserves.symbols
    out: dict[str, Any] = {
        "scenario": name,
        "seed": int(seed),
        "num_envs": int(num_envs),
        "positions": int(positions),
        "steps": int(steps),
        "reserves": list(syms),
        "protocols": list(names),
        "margin": margin,
        "isolated_markets": bool(isolated_markets),
    }

    per = [by_asset_arrays(b) for b in state.books]
    total = {key: sum(a[key] for a in per) for key in BY_ASSET}
    for key, src in START_USD.items():
        out[key] = float((total[src] * start).sum(axis=1).mean())
    out["liquidations"] = float(sum(b.liquidations for b in state.books).mean())
    out["cascade_rounds_max"] = int(state.cascade_rounds_max.max())
    out["keeper_pnl_usd"] = float(state.keeper_pnl_usd.mean())
    for key, a in total.items():
        out[key] = {s: float(a[:, i].mean()) for i, s in enumerate(syms)}
    vals = per_protocol_outcomes(protocols, state, start, rb0)
    out["bad_debt_usd_by_protocol"] = {n: float(v[0].mean()) for n, v in vals.items()}
    out["liquidated_usd_by_protocol"] = {n: float(v[1].mean()) for n, v in vals.items()}
    out["revenue_usd_by_protocol"] = {n: float(v[2].mean()) for n, v in vals.items()}
    if contagion:
        iso = MP.MultiParams(params.market, margin, True)
        p_iso, s_iso, rb_iso = run_market(names, f, num_envs, positions, seed, iso, drain)
        v_iso = per_protocol_outcomes(p_iso, s_iso, start, rb_iso)
        out["contagion_bad_debt_usd_by_protocol"] = {
            n: float((vals[n][0] - v_iso[n][0]).mean()) for n in vals
        }
        out["contagion_liquidated_usd_by_protocol"] = {
            n: float((vals[n][1] - v_iso[n][1]).mean()) for n in vals
        }
    by = {}
    for pr, b, a in zip(protocols, state.books, per, strict=True):
        d = {"liquidations": float(b.liquidations.mean())}
        d.update(
            {key: {s: float(x[:, i].mean()) for i, s in enumerate(syms)} for key, x in a.items()}
        )
        by[pr.name] = d
    out["by_protocol"] = by
    return out
