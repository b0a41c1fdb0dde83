"""Protocol presets on the Aave v3 Ethereum asset axis (WETH, wstETH, WBTC, USDC, USDT, DAI) and
their seeded books: ``aave_v3_ethereum``, ``compound_v3_usdc`` (Comet cUSDCv3), ``morpho_wsteth_usdc``
(the Morpho Blue wstETH/USDC market). Sources and assumptions: ASSUMPTIONS.md, "Interoperable
margin (issue 17)"."""

from __future__ import annotations

import numpy as np

from .aave_v3_ethereum import DEFAULT_SYMBOLS, aave_v3_ethereum_reserves
from .portfolio import Reserve, Reserves
from .portfolio_books import draw_book
from .protocols import Protocol, morpho_lif

PROTOCOL_PRESETS = ("aave_v3_ethereum", "compound_v3_usdc", "morpho_wsteth_usdc")
"""The protocol presets by name."""

_OFF = dict(can_collateral=False, can_borrow=False, ltv=0.0, liquidation_threshold=0.0,
            liquidation_bonus=0.0, protocol_fee_frac=0.0, reserve_factor_frac=0.0)  # fmt: skip

# Comet cUSDCv3 (compound-finance/comet deployments/mainnet/usdc/configuration.json at launch:
# WETH borrowCF 0.82 / liquidateCF 0.90 / liquidationFactor 0.95, WBTC 0.70 / 0.78 / 0.95,
# storeFrontPriceFactor 0.5, targetReserves 5,000,000 USDC, borrow curve base 1.5 %, slope low
# 3.5 % per unit utilization to the kink at 80 %, slope high 25 %; wstETH added by migration
# 1720623615_add_wsteth_as_collateral: 0.83 / 0.88 / 0.92, priced by the stETH feed times the
# exchange rate, so a stETH depeg reaches it: a "market" oracle here). The kinked curve in our
# units: slope1 = 0.035 * 0.8, slope2 = 0.25 * 0.2. Comet has a separate supply curve; its
# spread at the kink (borrow 4.3 %, supply 3.25 % * 0.8 of debt) is a reserve share of 0.24.
COMET_CONFIG = {
    "WETH": (0.82, 0.90, 0.95),
    "wstETH": (0.83, 0.88, 0.92),
    "WBTC": (0.70, 0.78, 0.95),
}
"""``{symbol: (borrowCollateralFactor, liquidateCollateralFactor, liquidationFactor)}``."""
COMET_STORE_FRONT_PRICE_FACTOR = 0.5
COMET_TARGET_RESERVES_FRAC_OF_DEBT = 0.01
"""``targetReserves`` as a share of the simulated book's debt (5M USDC against about 500M of
borrows at launch: the book here is smaller than the market, so the target is scaled to it)."""
COMET_INITIAL_RESERVES_FRAC_OF_DEBT = 0.005
"""The base reserves at the start, as a share of the book's debt: below target (assumption), so
absorbed collateral is for sale."""

MORPHO_LLTV = 0.86
"""LLTV of the Morpho Blue wstETH/USDC market (one of the governance-enabled LLTVs)."""


def compound_v3_usdc_reserves(symbols: tuple[str, ...] = DEFAULT_SYMBOLS) -> Reserves:
    out = []
    for s in symbols:
        if s in COMET_CONFIG:
            bcf, lcf, lf = COMET_CONFIG[s]
            out.append(Reserve(s, can_collateral=True, can_borrow=False, ltv=bcf,
                               liquidation_threshold=lcf, liquidation_bonus=round(1.0 - lf, 12),
                               protocol_fee_frac=0.0, reserve_factor_frac=0.0))  # fmt: skip
        elif s == "USDC":
            out.append(Reserve("USDC", can_collateral=False, can_borrow=True, ltv=0.0,
                               liquidation_threshold=0.0, liquidation_bonus=0.0,
                               protocol_fee_frac=0.0, reserve_factor_frac=0.24,
                               base_rate_apr=0.015, slope1_apr=0.028, slope2_apr=0.05,
                               optimal_utilization_frac=0.80))  # fmt: skip
        else:
            out.append(Reserve(s, **_OFF))
    return Reserves(tuple(out))


def morpho_wsteth_usdc_reserves(symbols: tuple[str, ...] = DEFAULT_SYMBOLS) -> Reserves:
    # AdaptiveCurveIRM approximated by a fixed curve: 4 % at the 90 % target utilization, a
    # quarter of it at 0 and four times it at 100 % (its curve steepness 4); market fee 0.
    lif = float(morpho_lif(MORPHO_LLTV))
    out = []
    for s in symbols:
        if s == "wstETH":
            out.append(Reserve(s, can_collateral=True, can_borrow=False, ltv=MORPHO_LLTV,
                               liquidation_threshold=MORPHO_LLTV, liquidation_bonus=lif - 1.0,
                               protocol_fee_frac=0.0, reserve_factor_frac=0.0))  # fmt: skip
        elif s == "USDC":
            out.append(Reserve("USDC", can_collateral=False, can_borrow=True, ltv=0.0,
                               liquidation_threshold=0.0, liquidation_bonus=0.0,
                               protocol_fee_frac=0.0, reserve_factor_frac=0.0,
                               base_rate_apr=0.01, slope1_apr=0.03, slope2_apr=0.12,
                               optimal_utilization_frac=0.90))  # fmt: skip
        else:
            out.append(Reserve(s, **_OFF))
    return Reserves(tuple(out))


def protocol_preset(name: str) -> Protocol:
    """The protocol preset ``name`` (one of :data:`PROTOCOL_PRESETS`)."""
    if name == "aave_v3_ethereum":
        return Protocol(name, "aave_v3", aave_v3_ethereum_reserves())
    if name == "compound_v3_usdc":
        return Protocol(
            name, "compound_v3", compound_v3_usdc_reserves(), base_symbol="USDC",
            store_front_price_factor=COMET_STORE_FRONT_PRICE_FACTOR,
        )  # fmt: skip
    if name == "morpho_wsteth_usdc":
        return Protocol(
            name, "morpho_blue", morpho_wsteth_usdc_reserves(), base_symbol="USDC",
            collateral_symbol="wstETH",
        )  # fmt: skip
    raise ValueError(f"protocol {name!r} is unknown; allowed {', '.join(PROTOCOL_PRESETS)}")


BOOK_SEED_OFFSET = {
    "aave_v3_ethereum": 0,
    "compound_v3_usdc": 1_000_003,
    "morpho_wsteth_usdc": 2_000_003,
}
"""Each preset's book is drawn from ``seed + offset`` (Aave's is the single-protocol preset's)."""
COMET_MIX = {"eth_stable": 0.55, "lst_loop": 0.0, "btc_stable": 0.25, "eth_btc_stable": 0.20}
"""Compound's book: the cross-margin profiles that borrow stablecoins (all of it as USDC)."""
MEDIAN_COLLATERAL_USD = {
    "aave_v3_ethereum": 50_000.0,
    "compound_v3_usdc": 30_000.0,
    "morpho_wsteth_usdc": 40_000.0,
}
"""Median collateral per slot (assumption; with their leverage the books start with about $14M, $14M and $24M of debt per env at 256 slots)."""
MORPHO_HF_MARGIN = (0.12, 0.6)
"""``(median, log-sd)`` of a Morpho borrower's HF above 1 (LLTV is both its LTV and LT)."""


def draw_protocol_book(
    name: str, oracle_usd: np.ndarray, num_envs: int, num_slots: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(supply, debt ``[E, N, K]``, E-mode rows ``[E, N]``) of preset ``name`` at its oracle
    prices ``[K]`` at the start, reproducible from ``seed``."""
    pr = protocol_preset(name)
    res = pr.reserves
    s = int(seed) + BOOK_SEED_OFFSET[name]
    med = MEDIAN_COLLATERAL_USD[name]
    if name == "aave_v3_ethereum":
        b = draw_book(
            res, oracle_usd, num_envs, num_slots, seed=int(seed), median_collateral_usd=med
        )
        return b.supply, b.debt, b.emode_row
    if name == "compound_v3_usdc":
        # drawn on Aave's reserves' shapes, then every stablecoin debt moved to USDC
        aave = aave_v3_ethereum_reserves()
        b = draw_book(aave, oracle_usd, num_envs, num_slots, seed=s, mix=COMET_MIX, median_collateral_usd=med)  # fmt: skip
        price = np.asarray(oracle_usd, dtype=np.float64)
        debt_usd = (b.debt * price).sum(axis=-1)
        debt = np.zeros_like(b.debt)
        debt[..., res.index("USDC")] = debt_usd / price[res.index("USDC")]
        # Comet's factors: scale the debt so each slot keeps its drawn HF margin over its floor
        aave_thr = (b.supply * price * aave.lt).sum(-1)
        comet_thr = (b.supply * price * res.lt).sum(-1)
        scale = np.where(aave_thr > 0, comet_thr / np.where(aave_thr > 0, aave_thr, 1.0), 1.0)
        return b.supply, debt * scale[..., None], np.zeros((num_envs, num_slots), dtype=np.int64)
    rng = np.random.default_rng([s, 1717])
    e, n = int(num_envs), int(num_slots)
    coll_usd = np.clip(med * np.exp(1.5 * rng.standard_normal((e, n))), 1_000.0, 50e6)
    hf = (
        1.0 + 1e-6 + MORPHO_HF_MARGIN[0] * np.exp(MORPHO_HF_MARGIN[1] * rng.standard_normal((e, n)))
    )
    price = np.asarray(oracle_usd, dtype=np.float64)
    c, b = res.index("wstETH"), res.index("USDC")
    supply = np.zeros((e, n, res.k))
    debt = np.zeros((e, n, res.k))
    supply[..., c] = coll_usd / price[c]
    debt[..., b] = coll_usd * pr.lltv / hf / price[b]
    return supply, debt, np.zeros((e, n), dtype=np.int64)
