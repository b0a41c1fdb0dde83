"""The multi-protocol market step: P lending protocols (Aave v3, Compound v3, Morpho Blue kinds,
:mod:`levgym.engine.protocols`) on one asset axis, sharing per-asset pools, gas and keepers.

Each protocol keeps its own book and accounting as a
:class:`~levgym.engine.portfolio_market.PortfolioState` (positions ``[E, N, K]``, oracles
``[E, K]`` read with its own oracle configuration, lenders' supply, treasury, counters: the
protocol axis is the tuple ``MultiState.books``); the pools are ``[E, G, K]``: ``G = 1`` shared
group (the default), or ``G = P`` with ``isolated_markets`` (each protocol trades against its own
pools, holding its share of the shared depth: :func:`pool_shares`). Compound's base reserves and
its absorbed collateral are ``[E, P]`` and ``[E, P, K]``.

One substep (:func:`substep`), in order:

0. **Pool drain** (only with the driver ``pool_reserve_frac``, :func:`drain_pools`): each asset's
   pools hold the driver's fractions of their undrained (asset, quote) reserves (liquidity
   withdrawn, or one side taken by an exploit); the CRV-style scenario of
   :mod:`levgym.scenarios.multiprotocol` drives it.
1. **Prices and arbitrage**: the fundamentals ``[E, K]``; each pool group is arbitraged toward
   them with :func:`levgym.engine.rules.arbitrage` (the multi-asset step's rule); each protocol
   reads its oracles from its group's pools
   (:func:`levgym.engine.portfolio_market.oracle_from_pools`, its own ``OracleConfig`` per
   reserve: oracles are per (protocol, asset)).
2. **Interest**: each protocol's reserves accrue on their own curves
   (:func:`levgym.engine.portfolio_market.accrue_interest`); Compound's reserve-factor share adds
   to its base reserves.
3. **Cascade**, up to ``max_cascade_rounds`` rounds. A round: (a) Compound absorbs every
   liquidatable account (:func:`levgym.engine.protocols.comet_absorb`; a protocol action, no
   keeper gate, no gas); (b) the keepers' opportunities of **all protocols** are listed: Aave's
   keeper call per liquidatable position (:func:`levgym.engine.portfolio.liquidate` or its numba
   twin), Morpho's whole-position liquidation (:func:`levgym.engine.protocols.morpho_liquidate`),
   and one ``buyCollateral`` per Compound collateral asset it holds, while its reserves are below
   target (at the discounted oracle price, the amount :func:`comet_keeper_buy_amount` that
   maximises the keeper's result on its sale into the pool); each is priced at the pools before the
   round (sell what it receives into its group's pool ``i``, buy the repaid asset ``j`` exact-out
   from pool ``j``; USDC is the quote) less ``gas_usd_per_call``, and made when that is positive;
   (c) the keepers **rank all opportunities by that profit** (highest first, stable) and the
   round's purchases of one asset in one pool group stay below ``max_round_buy_frac`` of that
   pool (later-ranked ones wait for the next round); (d) per pool group, the round's sales are
   one bundled sale, then its purchases one bundled purchase; every protocol's oracle is read
   again from the moved pools.
4. **Write-off**: Aave positions with debt and no collateral have it burnt into deficits
   (:func:`levgym.engine.portfolio_market.write_off`); Morpho's are socialised (the lenders'
   supply falls by them).

Margin modes: ``per_protocol`` (each position lives in its protocol and that protocol's rule
decides) and ``unified`` (slot ``n`` of every protocol is one account: a position is liquidated
only when the account HF of :func:`levgym.engine.protocols.unified_health_factor` is below 1, in
the protocol the layer targets, :func:`levgym.engine.protocols.unified_liquidation_target`).

With one Aave protocol (P = 1, shared pools) the step is the multi-asset step
(:func:`levgym.engine.portfolio_market.substep`) at its default keeper settings (both apply the
round's purchase limit by profit rank; the multi-asset step's capacity, gas in gwei, chunks and
in-block filter are not in this step). The naive loop twin is
:mod:`levgym.engine.reference_multiprotocol`. Built to carry more: a stress command, envs and a
bench call :func:`init_state` / :func:`substep` with their own books and paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import portfolio_market as PM
from . import rules as R
from .portfolio import liquidate, write_off_deficit
from .protocols import (
    Protocol,
    comet_absorb,
    comet_buy_collateral,
    comet_collateral_price_base,
    morpho_liquidate,
    protocol_account_values,
    same_asset_axis,
    unified_liquidation_target,
)

MARGIN_MODES = ("per_protocol", "unified")
"""``per_protocol``: each position is its protocol's; ``unified``: slot ``n`` of every protocol
is one account under the margin layer."""

EXTRA = ("absorbs", "collateral_buys")
"""Per-protocol counts ``[E, P]``: Compound absorbs, Compound ``buyCollateral`` calls."""
EXTRA_K = ("absorbed_collateral_asset", "bought_from_protocol_asset", "refund_base")
"""Per-protocol per-asset amounts ``[E, P, K]``: collateral Compound absorbed, collateral keepers
bought from it (asset units), and base refunded to absorbed accounts (base column)."""


@dataclass(frozen=True)
class MultiParams:
    """Parameters of the multi-protocol step."""

    market: PM.PortfolioMarketParams = field(default_factory=PM.PortfolioMarketParams)
    margin: str = "per_protocol"
    """One of :data:`MARGIN_MODES`."""
    isolated_markets: bool = False
    """Each protocol trades against its own pools (its share of the depth, :func:`pool_shares`)."""

    def __post_init__(self) -> None:
        if self.margin not in MARGIN_MODES:
            raise ValueError(f"margin={self.margin!r} is not allowed; allowed {list(MARGIN_MODES)}")
        if not isinstance(self.isolated_markets, bool):
            raise ValueError(f"isolated_markets={self.isolated_markets!r} must be True or False")
        if self.market.stable_pool != "cpmm":
            raise ValueError(
                f"market.stable_pool={self.market.stable_pool!r} is not supported by the "
                "multi-protocol step yet; allowed 'cpmm' (its pools are constant product)"
            )
        default = PM.PortfolioMarketParams()
        for name in KEEPER_SETTINGS_NOT_HERE:  # the multi-asset keepers' settings it lacks
            value = getattr(self.market, name)
            if value != getattr(default, name):
                raise ValueError(
                    f"market.{name}={value!r} is not in the multi-protocol step; allowed "
                    f"{getattr(default, name)!r} (its keepers rank by profit, price each call "
                    "alone and have no capacity, gas in gwei, chunks or off-pool venues)"
                )


KEEPER_SETTINGS_NOT_HERE = (
    "profitability_filter",
    "keeper_capacity_per_substep",
    "gas_units_per_call",
    "keeper_max_slippage_frac",
    "keeper_venue_frac",
    "keeper_aggregator_depth_usd",
    "keeper_cex_depth_usd",
)
"""``PortfolioMarketParams`` keeper settings of the multi-asset step
(:func:`levgym.engine.portfolio_market.select_calls`) that this step does not run: refused
unless at their defaults."""


@dataclass(frozen=True, eq=False)
class MultiState:
    """State of E markets of P protocols (numpy arrays; replaced, never written in place)."""

    books: tuple[PM.PortfolioState, ...]
    """Each protocol's book, oracles and accounting; its ``pool_*`` are its group's pools."""
    pool_asset: np.ndarray
    """Pools ``[E, G, K]`` (asset reserve)."""
    pool_quote: np.ndarray
    """Pools ``[E, G, K]`` (USDC reserve)."""
    pool_group: tuple[int, ...]
    """The pool group of each protocol (all 0 when shared)."""
    reserves_base: np.ndarray
    """Compound's base reserves ``[E, P]`` (0 for other kinds)."""
    target_reserves_base: np.ndarray
    """Compound's ``targetReserves`` ``[E, P]``."""
    collateral_reserve_asset: np.ndarray
    """Collateral Compound holds after absorbs ``[E, P, K]``."""
    extra: dict[str, np.ndarray]
    """:data:`EXTRA` ``[E, P]`` and :data:`EXTRA_K` ``[E, P, K]``."""
    keeper_pnl_usd: np.ndarray
    """Keepers' realised result over all protocols ``[E]`` (USD)."""
    cascade_rounds_max: np.ndarray
    """Most rounds one substep's cascade took ``[E]``."""
    time_h: float = 0.0
    pool_reserve_frac: np.ndarray | None = None
    """``[E, 2, K]``: the (asset, quote) reserves of each asset's pools as fractions of their
    depth without a drain, as last applied (None: 1 everywhere); the pool-drain driver's level."""

    def replace(self, **changes: Any) -> MultiState:
        return dataclasses.replace(self, **changes)

    @property
    def num_protocols(self) -> int:
        return len(self.books)


# ----------------------------------------------------------------------------- setup


def pool_shares(supplies: list[np.ndarray], fundamental_usd: np.ndarray) -> np.ndarray:
    """Each protocol's share ``[E, P]`` of the shared pools' depth under ``isolated_markets``:
    its share of the collateral value at the start (``sum_{n,k} supply * price``, per env), the
    same share in every asset's pool, so the protocols' depths add up to the shared depth and
    every protocol can trade every asset (a per-asset split would leave a protocol without a
    pool for an asset it must buy). Equal shares where no protocol holds collateral."""
    f = np.asarray(fundamental_usd, dtype=np.float64)
    v = np.stack([(np.asarray(s) * f[:, None, :]).sum(axis=(1, 2)) for s in supplies], axis=1)
    tot = v.sum(axis=1, keepdims=True)
    p = v.shape[1]
    return np.where(tot > 0.0, v / np.where(tot > 0.0, tot, 1.0), 1.0 / p)


def init_state(
    protocols: tuple[Protocol, ...], params: MultiParams, supplies: list[np.ndarray],
    debts: list[np.ndarray], emode_rows: list[Any], fundamental_usd: np.ndarray,
    reserves_base: np.ndarray | None = None, target_reserves_base: np.ndarray | None = None,
    pool_reserve_frac: np.ndarray | None = None,
) -> MultiState:  # fmt: skip
    """A market of ``protocols`` at its start: each book from
    :func:`levgym.engine.portfolio_market.init_state` (pools at full depth, oracles, lenders'
    supply), then the pools shared (one group) or split by :func:`pool_shares`. Compound's base
    reserves and targets are ``[E, P]`` overrides or the protocols' own values.
    ``pool_reserve_frac`` ``[E, 2, K]`` (the pool-drain driver's row 0, :func:`drain_pools`)
    scales the pools' (asset, quote) reserves at the start, before the oracles are read."""
    protocols = tuple(protocols)
    same_asset_axis(protocols)
    for pr in protocols:
        if pr.kind != "aave_v3" and pr.base_symbol != PM.QUOTE_SYMBOL:
            raise ValueError(
                f"protocol {pr.name!r}: base {pr.base_symbol!r}; the shared pools quote in "
                f"{PM.QUOTE_SYMBOL}, allowed base_symbol={PM.QUOTE_SYMBOL!r}"
            )
    p_n = len(protocols)
    if not (len(supplies) == len(debts) == len(emode_rows) == p_n):
        raise ValueError(
            f"supplies, debts and emode_rows need one entry per protocol ({p_n}); got "
            f"{len(supplies)}, {len(debts)}, {len(emode_rows)}"
        )
    books = tuple(
        PM.init_state(pr.reserves, params.market, s, d, r, fundamental_usd)
        for pr, s, d, r in zip(protocols, supplies, debts, emode_rows, strict=True)
    )
    e, _, k = books[0].shape
    pa0, pq0 = books[0].pool_asset, books[0].pool_quote
    if params.isolated_markets:
        share = pool_shares([b.supply for b in books], books[0].fundamental_usd)  # [E, P]
        pa = pa0[:, None, :] * share[..., None]
        pq = pq0[:, None, :] * share[..., None]
        has_pool, _, _ = PM.pool_layout(protocols[0].reserves, params.market)
        pa = np.where(has_pool, pa, 1.0)
        pq = np.where(has_pool, pq, 1.0)
        group = tuple(range(p_n))
    else:
        pa, pq, group = pa0[:, None, :].copy(), pq0[:, None, :].copy(), (0,) * p_n
    books = tuple(
        b.replace(pool_asset=pa[:, g].copy(), pool_quote=pq[:, g].copy())
        for b, g in zip(books, group, strict=True)
    )

    if pool_reserve_frac is not None:
        pa, pq = _scaled_pools(pa, pq, None, pool_reserve_frac)
        books = tuple(b.replace(pool_asset=pa[:, g].copy(), pool_quote=pq[:, g].copy()) for b, g in zip(books, group, strict=True))  # fmt: skip

    def per_p(x, attr):
        if x is not None:
            return np.broadcast_to(np.asarray(x, dtype=np.float64), (e, p_n)).copy()
        return np.broadcast_to(np.array([getattr(pr, attr) for pr in protocols]), (e, p_n)).copy()

    state = MultiState(
        books=books,
        pool_asset=pa,
        pool_quote=pq,
        pool_group=group,
        reserves_base=per_p(reserves_base, "initial_reserves_base"),
        target_reserves_base=per_p(target_reserves_base, "target_reserves_base"),
        collateral_reserve_asset=np.zeros((e, p_n, k)),
        extra={**{x: np.zeros((e, p_n), dtype=np.int64) for x in EXTRA}, **{x: np.zeros((e, p_n, k)) for x in EXTRA_K}},
        keeper_pnl_usd=np.zeros(e),
        cascade_rounds_max=np.zeros(e, dtype=np.int64),
        pool_reserve_frac=None if pool_reserve_frac is None else _frac(pool_reserve_frac, e, k),
    )  # fmt: skip
    if pool_reserve_frac is None:
        return state
    return state.replace(books=_sync(state, protocols, params, pa, pq, books))


def _frac(x: np.ndarray, e: int, k: int) -> np.ndarray:
    f = np.broadcast_to(np.asarray(x, dtype=np.float64), (e, 2, k)).copy()
    if not np.all(np.isfinite(f)) or np.any(f <= 0.0):
        raise ValueError("pool_reserve_frac has a value <= 0 or not finite; allowed > 0")
    return f


def _scaled_pools(pa, pq, old, new):
    """Pools ``[E, G, K]`` with each asset's (asset, quote) reserves moved from the fractions
    ``old`` to ``new`` ``[E, 2, K]`` (None: 1) of their undrained depth."""
    e, _, k = pa.shape
    new = _frac(new, e, k)
    old = np.ones((e, 2, k)) if old is None else old
    ra, rq = new[:, 0] / old[:, 0], new[:, 1] / old[:, 1]
    return pa * ra[:, None, :], pq * rq[:, None, :]


def drain_pools(
    state: MultiState, pool_reserve_frac: np.ndarray, protocols: tuple[Protocol, ...],
    params: MultiParams,
) -> MultiState:  # fmt: skip
    """The pool-drain driver (step 0 of a substep): every pool group's (asset, quote) reserves of
    each asset become ``pool_reserve_frac`` ``[E, 2, K]`` of their undrained depth (relative to
    the level last applied, :attr:`MultiState.pool_reserve_frac`): liquidity providers withdraw
    (equal fractions: the price holds) or an exploit takes one side (the price moves). Each
    protocol's oracles are read again."""
    pa, pq = _scaled_pools(
        state.pool_asset, state.pool_quote, state.pool_reserve_frac, pool_reserve_frac
    )
    e, _, k = pa.shape
    new = state.replace(
        pool_asset=pa, pool_quote=pq, pool_reserve_frac=_frac(pool_reserve_frac, e, k)
    )
    return new.replace(books=_sync(new, protocols, params, pa, pq, new.books))


# ----------------------------------------------------------------------------- the substep


def _sync(
    state: MultiState, protocols: tuple[Protocol, ...], params: MultiParams, pa, pq, books,
    in_block: bool = False, twaps: list | None = None,
):  # fmt: skip
    """Books with their group's pools and oracles read from them, through each book's feeds
    (:func:`levgym.engine.portfolio_market.feed_update`; ``in_block``: inside a block's cascade,
    ``twaps``: each book's TWAP window mean at a substep's start)."""
    out = []
    for i, (pr, b, g) in enumerate(zip(protocols, books, state.pool_group, strict=True)):
        oracle, feed, updated = PM.oracle_from_pools(
            pr.reserves, params.market, b.fundamental_usd, pa[:, g], pq[:, g], b.exchange_ratio,
            b.snapshot_ratio, b.time_h, b.feed_usd, b.feed_updated_h, in_block,
            None if twaps is None else twaps[i],
        )  # fmt: skip
        out.append(
            b.replace(
                pool_asset=pa[:, g],
                pool_quote=pq[:, g],
                oracle_usd=oracle,
                feed_usd=feed,
                feed_updated_h=updated,
            )  # fmt: skip
        )
    return tuple(out)


def market_update(
    state: MultiState, fundamental_usd: np.ndarray, protocols: tuple[Protocol, ...],
    params: MultiParams,
) -> MultiState:  # fmt: skip
    """Step 1: fundamentals, arbitrage of every pool group, every protocol's oracles."""
    f = np.asarray(fundamental_usd, dtype=np.float64)
    mp = params.market
    has_pool, _, _ = PM.pool_layout(protocols[0].reserves, mp)
    q = protocols[0].reserves.index(PM.QUOTE_SYMBOL)
    target = (f / f[:, q : q + 1])[:, None, :]
    pa, pq = R.arbitrage(state.pool_asset, state.pool_quote, target, mp.arb_speed_frac)
    pa, pq = np.where(has_pool, pa, state.pool_asset), np.where(has_pool, pq, state.pool_quote)
    now = state.time_h + mp.substep_h
    books, twaps = [], []
    for pr, b, g in zip(protocols, state.books, state.pool_group, strict=True):
        # the TWAP window as the single-protocol step keeps it (portfolio_market.market_update)
        w = mp.twap_window_substeps
        buf = b.twap_buffer_usd
        if buf is None or buf.shape[-1] != w:
            buf = np.repeat(b.fundamental_usd[:, :, None], w, axis=2)
        buf = buf.copy()
        buf[:, :, b.substep_index % w] = PM.pool_usd(pr.reserves, mp, f, pa[:, g], pq[:, g])
        books.append(b.replace(fundamental_usd=f, time_h=now, twap_buffer_usd=buf))
        twaps.append(np.mean(buf, axis=2))
    books = _sync(state, protocols, params, pa, pq, books, False, twaps)
    return state.replace(books=books, pool_asset=pa, pool_quote=pq, time_h=now)


def accrue_interest(
    state: MultiState, protocols: tuple[Protocol, ...], params: MultiParams
) -> MultiState:
    """Step 2: every protocol's interest; Compound's reserve share adds to its base reserves."""
    books, rb = [], state.reserves_base.copy()
    for p, (pr, b) in enumerate(zip(protocols, state.books, strict=True)):
        nb = PM.accrue_interest(b, pr.reserves, params.market)
        if pr.kind == "compound_v3":
            k = pr.base_index
            rb[:, p] += nb.treasury_asset[:, k] - b.treasury_asset[:, k]
        books.append(nb)
    return state.replace(books=tuple(books), reserves_base=rb)


def _targets(state: MultiState, protocols: tuple[Protocol, ...]) -> np.ndarray:
    """The unified layer's target protocol per account ``[E, N]`` (-1: none)."""
    thr, debt = [], []
    for pr, b in zip(protocols, state.books, strict=True):
        t, d = protocol_account_values(pr, b.supply, b.debt, b.oracle_usd[:, None, :], b.emode_row)
        thr.append(t)
        debt.append(d)
    return unified_liquidation_target(np.stack(thr, axis=-1), np.stack(debt, axis=-1))


def comet_keeper_buy_amount(
    held_asset: np.ndarray, pool_asset: np.ndarray, pool_quote: np.ndarray, fee_frac: np.ndarray,
    price_quote: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """How much of the collateral Compound holds a keeper buys at ``price_quote`` (USDC per unit)
    to sell into the pool: the amount that maximises its result, where the pool's marginal price
    after the sale equals the price paid (``(x + e)^2 = x y (1 - fee) / price``, ``e`` the sale
    after the fee), at most what the protocol holds; 0 when even the first unit loses."""
    eff = np.sqrt(pool_asset * pool_quote * (1.0 - fee_frac) / price_quote) - pool_asset
    return np.clip(eff / (1.0 - fee_frac), 0.0, held_asset)


def cascade_round(
    state: MultiState, protocols: tuple[Protocol, ...], params: MultiParams, fused: bool = True
) -> tuple[MultiState, np.ndarray]:
    """One round of the cascade over all protocols (module docstring, step 3); returns the state
    and the calls made per env ``[E]`` (keeper calls and absorbs)."""
    from .portfolio_fused import liquidate_fused

    mp = params.market
    books = list(state.books)
    e, n, k = books[0].shape
    res0 = protocols[0].reserves
    has_pool, fee, _ = PM.pool_layout(res0, mp)
    q = res0.index(PM.QUOTE_SYMBOL)
    fee_n = np.broadcast_to(fee, (e, k))
    usdc_usd = books[0].fundamental_usd[:, q : q + 1]
    unified = params.margin == "unified"
    target = _targets(state, protocols) if unified else None
    calls = np.zeros(e, dtype=np.int64)
    reserves_base = state.reserves_base.copy()
    coll_res = state.collateral_reserve_asset.copy()
    extra = {x: v.copy() for x, v in state.extra.items()}
    # (a) Compound absorbs
    for p, pr in enumerate(protocols):
        if pr.kind != "compound_v3":
            continue
        b = books[p]
        mask = None if target is None else target == p
        ab = comet_absorb(b.supply, b.debt, b.oracle_usd[:, None, :], pr, mask)
        if not ab.absorbed.any():
            continue
        kb = pr.base_index
        c = dict(b.counters)
        c["seized_collateral_asset"] = c["seized_collateral_asset"] + ab.collateral_taken.sum(
            axis=1
        )
        rep = np.zeros((e, k))
        rep[:, kb] = (ab.debt_absorbed - ab.shortfall_base).sum(axis=1)
        c["repaid_by_liquidators_asset"] = c["repaid_by_liquidators_asset"] + rep
        dfc = np.zeros((e, k))
        dfc[:, kb] = ab.shortfall_base.sum(axis=1)
        c["deficit_asset"] = c["deficit_asset"] + dfc
        got = ab.absorbed.sum(axis=1)
        books[p] = b.replace(supply=ab.supply, debt=ab.debt, counters=c, liquidations=b.liquidations + got)  # fmt: skip
        coll_res[:, p] += ab.collateral_taken.sum(axis=1)
        reserves_base[:, p] += ab.reserves_delta_base.sum(axis=1)
        extra["absorbs"][:, p] += got
        extra["absorbed_collateral_asset"][:, p] += ab.collateral_taken.sum(axis=1)
        extra["refund_base"][:, p, kb] += ab.refund_base.sum(axis=1)
        calls += got
    # (b) every protocol's keeper opportunities, priced at the pools before the round
    cand = []  # (p, kind, payload, on, i, j, got, repay) per protocol
    for p, pr in enumerate(protocols):
        b = books[p]
        mask = None if target is None else target == p
        if pr.kind == "aave_v3":
            if fused:
                res = liquidate_fused(b.supply, b.debt, b.oracle_usd, pr.reserves, b.emode_row)
            else:
                res = liquidate(
                    b.supply, b.debt, b.oracle_usd[:, None, :], pr.reserves, b.emode_row
                )
            on = res.collateral_index >= 0
            if mask is not None:
                on = on & mask
            i, j = np.maximum(res.collateral_index, 0), np.maximum(res.debt_index, 0)
            cand.append((p, res, on, i, j, res.seized, res.repay))
        elif pr.kind == "morpho_blue":
            res = morpho_liquidate(b.supply, b.debt, b.oracle_usd[:, None, :], pr, mask)
            on = res.liquidated & (res.seized > 0.0)
            i = np.full((e, n), pr.reserves.index(pr.collateral_symbol))
            j = np.full((e, n), pr.base_index)
            cand.append((p, res, on, i, j, res.seized, res.repay))
        else:
            kb = pr.base_index
            price = b.oracle_usd
            unit = comet_collateral_price_base(
                price, price[:, kb : kb + 1], pr.liquidation_factor, pr.store_front_price_factor
            )
            g = state.pool_group[p]
            amount = comet_keeper_buy_amount(
                coll_res[:, p], state.pool_asset[:, g], state.pool_quote[:, g], fee_n, unit
            )
            want = amount * unit
            got_k, paid, done = comet_buy_collateral(
                want, reserves_base[:, p : p + 1], state.target_reserves_base[:, p : p + 1],
                coll_res[:, p] * (1.0 + 1e-12), price, price[:, kb : kb + 1],
                pr.liquidation_factor, pr.store_front_price_factor,
            )  # fmt: skip
            on = done & (amount > 0.0) & has_pool & (np.arange(k) != kb)
            i = np.broadcast_to(np.arange(k), (e, k)).copy()
            j = np.full((e, k), kb)
            cand.append((p, None, on, i, j, np.where(on, amount, 0.0), np.where(on, paid, 0.0)))
    on = np.concatenate([c[2] for c in cand], axis=1)
    if not on.any():
        return _with(state, books, reserves_base, coll_res, extra), calls
    i = np.concatenate([c[3] for c in cand], axis=1)
    j = np.concatenate([c[4] for c in cand], axis=1)
    got = np.concatenate([c[5] for c in cand], axis=1)
    repay = np.concatenate([c[6] for c in cand], axis=1)
    grp = np.concatenate([np.full(c[2].shape, state.pool_group[c[0]]) for c in cand], axis=1)
    g_n = state.pool_asset.shape[1]
    pa_c = state.pool_asset[np.arange(e)[:, None], grp]  # [E, M, K]
    pq_c = state.pool_quote[np.arange(e)[:, None], grp]

    def at(a3, idx):
        return np.take_along_axis(a3, idx[..., None], axis=-1)[..., 0]

    fee_c = np.broadcast_to(fee, pa_c.shape)
    proceeds = R.swap_out(at(pa_c, i), at(pq_c, i), got, at(fee_c, i))
    proceeds = np.where(i == q, got, proceeds)
    _, _, cost = PM.buy_exact_out(at(pa_c, j), at(pq_c, j), repay, at(fee_c, j))
    cost = np.where(j == q, repay, cost)
    pnl = (proceeds - cost) * usdc_usd - mp.gas_usd_per_call
    accept = on & (pnl > 0.0)
    # (c) rank by profit; the round's purchases per (group, asset) stay below a share of the pool
    order = np.argsort(np.where(accept, -pnl, np.inf), axis=1, kind="stable")
    inv = np.argsort(order, axis=1)
    oh = (j[..., None] == np.arange(k)) & accept[..., None]  # [E, M, K]
    over = np.zeros_like(accept)
    for g in range(g_n):
        in_g = (grp == g)[..., None] & oh
        amt = np.where(in_g, repay[..., None], 0.0)
        cum = np.cumsum(np.take_along_axis(amt, order[..., None], axis=1), axis=1)
        cum = np.take_along_axis(cum, inv[..., None], axis=1)
        room = mp.max_round_buy_frac * state.pool_asset[:, g]  # [E, K]
        over |= (in_g & has_pool & (cum > room[:, None, :])).any(axis=-1)
    accept = accept & ~over
    if not accept.any():
        return _with(state, books, reserves_base, coll_res, extra), calls
    # (d) apply each protocol's accepted calls
    got_gk = np.zeros((e, g_n, k))
    repay_gk = np.zeros((e, g_n, k))
    start = 0
    for p, res, on_p, i_p, j_p, got_p, rep_p in cand:
        m = on_p.shape[1]
        acc = accept[:, start : start + m]
        start += m
        if not acc.any():
            continue
        pr, b, g = protocols[p], books[p], state.pool_group[p]
        a3 = acc[..., None]
        oh_i = (i_p[..., None] == np.arange(k)) & a3
        oh_j = (j_p[..., None] == np.arange(k)) & a3
        got_k = np.where(oh_i, got_p[..., None], 0.0).sum(axis=1)
        repay_k = np.where(oh_j, rep_p[..., None], 0.0).sum(axis=1)
        got_gk[:, g] += got_k
        repay_gk[:, g] += repay_k
        n_calls = acc.sum(axis=1)
        calls += n_calls
        if pr.kind == "compound_v3":
            coll_res[:, p] -= got_k
            reserves_base[:, p] += repay_k[:, pr.base_index]
            extra["collateral_buys"][:, p] += n_calls
            extra["bought_from_protocol_asset"][:, p] += got_k
            continue
        c = dict(b.counters)
        leaving = b.supply - res.supply
        c["seized_collateral_asset"] = c["seized_collateral_asset"] + np.where(
            a3, leaving, 0.0
        ).sum(axis=1)
        c["repaid_by_liquidators_asset"] = c["repaid_by_liquidators_asset"] + repay_k
        lender, treasury = b.lender_supply_asset, b.treasury_asset
        if pr.kind == "aave_v3":
            fee_k = np.where(oh_i, res.protocol_fee[..., None], 0.0).sum(axis=1)
            c["protocol_fee_asset"] = c["protocol_fee_asset"] + fee_k
            c["protocol_fee_usd"] = c["protocol_fee_usd"] + fee_k * b.oracle_usd
            c["deficit_asset"] = c["deficit_asset"] + np.where(a3, res.deficit, 0.0).sum(axis=1)
            treasury = treasury + fee_k
        else:
            bad = np.where(oh_j, res.bad_debt[..., None], 0.0).sum(axis=1)
            c["deficit_asset"] = c["deficit_asset"] + bad
            lender = lender - bad
        books[p] = b.replace(
            supply=np.where(a3, res.supply, b.supply),
            debt=np.where(a3, res.debt, b.debt),
            counters=c,
            treasury_asset=treasury,
            lender_supply_asset=lender,
            liquidations=b.liquidations + n_calls,
        )
    # bundled sales, then bundled purchases, per pool group (the multi-asset step's order)
    pa_all, pq_all = state.pool_asset.copy(), state.pool_quote.copy()
    usdc_in = np.zeros(e)
    usdc_out = np.zeros(e)
    sold = np.zeros((e, g_n, k))
    sale_q = np.zeros((e, g_n, k))
    bought = np.zeros((e, g_n, k))
    paid_q = np.zeros((e, g_n, k))
    for g in range(g_n):
        pa0, pq0 = state.pool_asset[:, g], state.pool_quote[:, g]
        sell = np.where(has_pool, got_gk[:, g], 0.0)
        pa, pq, sale_out = R.sell_asset(pa0, pq0, sell, fee_n)
        sells = sell > 0.0
        pa, pq, sale_out = np.where(sells, pa, pa0), np.where(sells, pq, pq0), np.where(sells, sale_out, 0.0)  # fmt: skip
        buy = np.where(has_pool, repay_gk[:, g], 0.0)
        pa2, pq2, paid = PM.buy_exact_out(pa, pq, buy, fee_n)
        buys = buy > 0.0
        pa, pq, paid = np.where(buys, pa2, pa), np.where(buys, pq2, pq), np.where(buys, paid, 0.0)
        pa_all[:, g], pq_all[:, g] = pa, pq
        usdc_in = usdc_in + (sale_out.sum(axis=1) + got_gk[:, g, q])
        usdc_out = usdc_out + (paid.sum(axis=1) + repay_gk[:, g, q])
        sold[:, g], sale_q[:, g], bought[:, g], paid_q[:, g] = sell, sale_out, buy, paid
    n_keeper = accept.sum(axis=1)
    # pool trades are booked on the protocols of each group by their share of the group's flow
    for p, b in enumerate(books):
        g = state.pool_group[p]
        c = dict(b.counters)
        mine_sell, mine_buy = _share_of_flow(cand, accept, p, k, got_gk[:, g], repay_gk[:, g])
        c["sold_asset"] = c["sold_asset"] + sold[:, g] * mine_sell
        c["sale_quote"] = c["sale_quote"] + sale_q[:, g] * mine_sell
        c["bought_asset"] = c["bought_asset"] + bought[:, g] * mine_buy
        c["purchase_quote"] = c["purchase_quote"] + paid_q[:, g] * mine_buy
        books[p] = b.replace(counters=c)
    pnl_usd = (usdc_in - usdc_out) * usdc_usd[:, 0] - mp.gas_usd_per_call * n_keeper
    new = _with(state, books, reserves_base, coll_res, extra).replace(
        pool_asset=pa_all, pool_quote=pq_all, keeper_pnl_usd=state.keeper_pnl_usd + pnl_usd
    )
    books = _sync(new, protocols, params, pa_all, pq_all, new.books, True)
    return new.replace(books=books), calls


def _share_of_flow(cand, accept, p, k, got_gk_g, repay_gk_g):
    """Protocol ``p``'s share ``[E, K]`` of its group's round sales and purchases of each asset."""
    start = 0
    for q_, _, on_p, i_p, j_p, got_p, rep_p in cand:
        m = on_p.shape[1]
        if q_ == p:
            acc = accept[:, start : start + m, None]
            g_k = np.where((i_p[..., None] == np.arange(k)) & acc, got_p[..., None], 0.0).sum(1)
            r_k = np.where((j_p[..., None] == np.arange(k)) & acc, rep_p[..., None], 0.0).sum(1)
            s = np.where(got_gk_g > 0, g_k / np.where(got_gk_g > 0, got_gk_g, 1.0), 0.0)
            r = np.where(repay_gk_g > 0, r_k / np.where(repay_gk_g > 0, repay_gk_g, 1.0), 0.0)
            return s, r
        start += m
    raise AssertionError(p)


def _with(state: MultiState, books, reserves_base, coll_res, extra) -> MultiState:
    return state.replace(
        books=tuple(books), reserves_base=reserves_base, collateral_reserve_asset=coll_res,
        extra=extra,
    )  # fmt: skip


def write_off(state: MultiState, protocols: tuple[Protocol, ...]) -> MultiState:
    """Step 4: Aave's empty positions' debt burnt into deficits, Morpho's socialised."""
    books = []
    for pr, b in zip(protocols, state.books, strict=True):
        if pr.kind == "aave_v3":
            b = PM.write_off(b, pr.reserves)
        elif pr.kind == "morpho_blue":
            debt, bad = write_off_deficit(b.supply, b.debt, b.oracle_usd[:, None, :], pr.reserves)
            bad_k = bad.sum(axis=1)
            c = dict(b.counters)
            c["deficit_asset"] = c["deficit_asset"] + bad_k
            b = b.replace(debt=debt, counters=c, lender_supply_asset=b.lender_supply_asset - bad_k)
        books.append(b)
    return state.replace(books=tuple(books))


def substep(
    state: MultiState, fundamental_usd: np.ndarray, protocols: tuple[Protocol, ...],
    params: MultiParams, fused: bool = True, pool_reserve_frac: np.ndarray | None = None,
) -> tuple[MultiState, np.ndarray]:  # fmt: skip
    """One substep of every env (module docstring, steps 1-4, after the pool-drain driver
    :func:`drain_pools` when ``pool_reserve_frac`` ``[E, 2, K]`` is given); returns the state and
    the rounds with calls per env ``[E]``."""
    if pool_reserve_frac is not None:
        state = drain_pools(state, pool_reserve_frac, protocols, params)
    state = market_update(state, fundamental_usd, protocols, params)
    state = accrue_interest(state, protocols, params)
    rounds = np.zeros(state.books[0].shape[0], dtype=np.int64)
    for _ in range(params.market.max_cascade_rounds):
        state, calls = cascade_round(state, protocols, params, fused)
        rounds += calls > 0
        if not calls.any():
            break
    state = write_off(state, protocols)
    books = tuple(
        b.replace(
            cascade_rounds_max=np.maximum(b.cascade_rounds_max, rounds),
            substep_index=b.substep_index + 1,
        )
        for b in state.books
    )
    return state.replace(
        books=books, cascade_rounds_max=np.maximum(state.cascade_rounds_max, rounds)
    ), rounds


def run(
    state: MultiState, fundamentals_usd: np.ndarray, protocols: tuple[Protocol, ...],
    params: MultiParams, fused: bool = True, pool_reserve_frac: np.ndarray | None = None,
) -> MultiState:  # fmt: skip
    """Step ``state`` through fundamentals ``[T, E, K]`` (row 0 is the start), with the
    pool-drain driver ``pool_reserve_frac`` ``[T, E, 2, K]`` where given (its row 0 belongs to
    :func:`init_state`)."""
    for t in range(1, fundamentals_usd.shape[0]):
        drain = None if pool_reserve_frac is None else pool_reserve_frac[t]
        state, _ = substep(state, fundamentals_usd[t], protocols, params, fused, drain)
    return state
