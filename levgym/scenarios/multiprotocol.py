"""Scenarios of the multi-protocol market (``simulate`` / ``stress --protocols``): every
multi-asset scenario (:mod:`levgym.scenarios.multiasset`) by its name, and scenarios that add a
thin collateral asset and a pool-drain driver, such as :data:`CRV_POOL_DRAIN`.

**The CRV-style scenario** (synthetic; there is no data of the July 2023 CRV episode here): a thin
collateral asset (``CRV``) held by borrowers in several protocols, whose DEX pool loses its
liquidity over hours while its CEX (fundamental) price holds. In July-August 2023 an exploit of
Vyper-compiled Curve pools drained the CRV/ETH pool, and large CRV positions spread over Aave,
Fraxlend, Abracadabra and Inverse could be liquidated only into the thin DEX liquidity that was
left. Here:

- the thin asset's fundamental is constant (:attr:`ThinAsset.price_usd`): the CEX price holds;
- its pool starts at :attr:`PoolDrain.start_depth_frac` of the market's volatile pool depth and
  then loses reserves (:class:`PoolDrain`): the quote side (what buyers of CRV pay from) falls to
  ``quote_left_frac`` and the CRV side to ``asset_left_frac`` of their start values along
  :func:`levgym.scenarios.multiasset.depeg_weight`; with ``quote_left_frac < asset_left_frac`` the
  drain also pushes the pool price down (an exploit takes the valuable side), which arbitrage pulls
  back at the market's ``arb_speed_frac``;
- the oracles read the pools (``oracle_pool_weight_frac = 1``: an on-chain oracle of the DEX
  price, as the Curve-pool oracles of some 2023 CRV lenders were; Aave's Chainlink feed blends
  CEX prices too, ``--set market.oracle_pool_weight_frac=...`` moves toward it): with an oracle
  above the pool price a keeper's sale loses more than the bonus, so the oracle must see the
  drained pool for liquidations to pay;
- the step reads the drain as a driver (:func:`levgym.engine.multiprotocol.substep`'s
  ``pool_reserve_frac``): every protocol's liquidations of the asset sell into the same thin pool
  (or, with ``--isolated-markets``, into its own share of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.params import closest_hint
from . import multiasset as MA


@dataclass(frozen=True)
class PoolDrain:
    """Liquidity leaves one asset's pools: its reserves, as fractions of what the market's depth
    would give at the start, are ``[start_depth_frac * (1 - (1 - left) * w(t))]`` for the asset
    side (``left`` = ``asset_left_frac``) and the quote side (``quote_left_frac``), ``w`` from
    :func:`levgym.scenarios.multiasset.depeg_weight`."""

    symbol: str
    start_depth_frac: float = 1.0
    """The pool's depth at the start, as a share of the market's volatile pool depth."""
    asset_left_frac: float = 0.2
    quote_left_frac: float = 0.1
    start_h: float = 0.0
    move_h: float = 12.0
    hold_h: float = 0.0
    recover_h: float = 0.0
    recovers: bool = False

    def __post_init__(self) -> None:
        o = "PoolDrain"
        MA._check_field(o, "start_depth_frac", self.start_depth_frac, 0.0, 1.0, lo_open=True)
        MA._check_field(o, "asset_left_frac", self.asset_left_frac, 0.0, 1.0, lo_open=True)
        MA._check_field(o, "quote_left_frac", self.quote_left_frac, 0.0, 1.0, lo_open=True)
        MA._check_shape_fields(
            o, self.start_h, self.move_h, self.hold_h, self.recover_h, self.recovers
        )

    def reserve_frac(self, times_h: np.ndarray, symbols: tuple[str, ...], num_envs: int):
        """``[T, E, 2, K]``: (asset, quote) reserves of each pool as fractions of their depth
        without the drain (1 for every other asset)."""
        w = MA.depeg_weight(
            times_h, self.start_h, self.move_h, self.hold_h, self.recover_h, self.recovers
        )
        t = len(times_h)
        out = np.ones((t, num_envs, 2, len(symbols)))
        k = symbols.index(self.symbol)
        for side, left in ((0, self.asset_left_frac), (1, self.quote_left_frac)):
            out[:, :, side, k] = (self.start_depth_frac * (1.0 - (1.0 - left) * w))[:, None]
        return out


@dataclass(frozen=True)
class ThinAsset:
    """A collateral asset outside the fitted process: its fundamental (CEX) price is constant."""

    symbol: str = "CRV"
    price_usd: float = 0.73
    """About CRV's CEX price before the July 2023 exploit (a round number, not a data point)."""


@dataclass(frozen=True, eq=False)
class MultiProtocolScenario:
    """A named scenario of the multi-protocol market: a multi-asset scenario's price paths
    (``base``), optionally a thin asset with its constant price and a pool drain, and market
    parameter defaults (``market``, overridden by ``--set market.KEY=VALUE``)."""

    name: str
    description: str
    base: str
    thin: ThinAsset | None = None
    drain: PoolDrain | None = None
    market: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The protocols' asset axis under this scenario."""
        from ..engine.protocol_presets import DEFAULT_SYMBOLS, THIN_SYMBOLS

        return THIN_SYMBOLS if self.thin is not None else DEFAULT_SYMBOLS

    def market_params(self) -> Any:
        """The market parameters of the scenario (defaults with its ``market`` values)."""
        from ..engine.portfolio_market import PortfolioMarketParams

        return PortfolioMarketParams(**self.market)

    def build(self, reserves: Any, num_envs: int, steps: int, seed: int):
        """(fundamentals ``[steps + 1, E, K]`` on ``reserves``' axis, pool reserve fractions
        ``[steps + 1, E, 2, K]`` or None) from ``seed`` on 1 h rows."""
        from ..engine import portfolio_market as PM

        paths = MA.get_scenario(self.base).build(num_envs, steps + 1, 1.0, seed)
        syms = reserves.symbols
        prices, psyms = paths.prices_usd, paths.symbols
        if self.thin is not None:
            col = np.full((*prices.shape[:2], 1), self.thin.price_usd)
            prices, psyms = np.concatenate([prices, col], axis=-1), (*psyms, self.thin.symbol)
        ratio = PM.initial_exchange_ratio(reserves, num_envs)
        f = PM.fundamentals_from_paths(prices, psyms, reserves, ratio)
        drain = None
        if self.drain is not None:
            drain = self.drain.reserve_frac(paths.times_h, syms, num_envs)
        return f, drain


CRV_POOL_DRAIN = MultiProtocolScenario(
    "crv_pool_drain",
    "Synthetic, in the style of the July 2023 CRV episode (no data here): CRV collateral in Aave "
    "and Compound, CEX price constant at 0.73; its DEX pool starts at 10% of the volatile depth "
    "and from hour 2 over 6 h loses 95% of its USDC side and 70% of its CRV side; oracles read "
    "the pools (oracle_pool_weight_frac 1); the other assets follow multiasset_2021",
    base="multiasset_2021",
    thin=ThinAsset(),
    drain=PoolDrain(
        "CRV",
        start_depth_frac=0.1,
        asset_left_frac=0.3,
        quote_left_frac=0.05,
        start_h=2.0,
        move_h=6.0,
    ),  # fmt: skip
    market={"oracle_pool_weight_frac": 1.0},
)

SCENARIOS: dict[str, MultiProtocolScenario] = {
    **{n: MultiProtocolScenario(n, s.description, base=n) for n, s in MA.SCENARIOS.items()},
    CRV_POOL_DRAIN.name: CRV_POOL_DRAIN,
}
"""The multi-protocol scenarios: every multi-asset scenario, and the thin-asset ones."""


def get_scenario(name: str) -> MultiProtocolScenario:
    """The named scenario; a one-line error with the names otherwise."""
    if name not in SCENARIOS:
        raise ValueError(
            f"unknown multi-protocol scenario {name!r}{closest_hint(name, SCENARIOS)}; allowed "
            f"{', '.join(SCENARIOS)}"
        )
    return SCENARIOS[name]
