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
THIN_SYMBOL = "CRV"
"""The thin collateral asset of the CRV-style scenario (appended to the asset axis when asked)."""
THIN_SYMBOLS = (*DEFAULT_SYMBOLS, THIN_SYMBOL)
"""The asset axis with the thin asset: every preset lists it (Aave and Compound as collateral,
the Morpho wstETH market not)."""

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
    "CRV": (0.45, 0.55, 0.85),
}
"""``{symbol: (borrowCollateralFactor, liquidateCollateralFactor, liquidationFactor)}``. CRV is
hypothetical (cUSDCv3 does not list it; the thin asset of the CRV-style scenario is held in
Compound here as in Fraxlend or Inverse in 2023): factors of the order of other long-tail
Comet collateral (assumption)."""
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


def protocol_preset(name: str, symbols: tuple[str, ...] = DEFAULT_SYMBOLS) -> Protocol:
    """The protocol preset ``name`` (one of :data:`PROTOCOL_PRESETS`) on the asset axis
    ``symbols`` (:data:`DEFAULT_SYMBOLS`, or :data:`THIN_SYMBOLS` with the thin asset)."""
    if tuple(symbols) not in (DEFAULT_SYMBOLS, THIN_SYMBOLS):
        raise ValueError(
            f"symbols={list(symbols)} is not allowed; allowed {list(DEFAULT_SYMBOLS)} or "
            f"{list(THIN_SYMBOLS)}"
        )
    if name == "aave_v3_ethereum":
        return Protocol(name, "aave_v3", aave_v3_ethereum_reserves(symbols))
    if name == "compound_v3_usdc":
        return Protocol(
            name, "compound_v3", compound_v3_usdc_reserves(symbols), base_symbol="USDC",
            store_front_price_factor=COMET_STORE_FRONT_PRICE_FACTOR,
        )  # fmt: skip
    if name == "morpho_wsteth_usdc":
        return Protocol(
            name, "morpho_blue", morpho_wsteth_usdc_reserves(symbols), base_symbol="USDC",
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


THIN_SLOT_SHARE = 0.125
"""With the thin asset: the last ``max(1, N * this)`` slots of each protocol that lists it as
collateral are its borrowers (they replace the drawn ones)."""
THIN_MEDIAN_COLLATERAL_USD = {"aave_v3_ethereum": 400_000.0, "compound_v3_usdc": 250_000.0}
"""Median CRV collateral per CRV slot (assumption: concentrated holders, log-sd 1.0)."""
THIN_HF_MARGIN = (0.10, 0.5)
"""``(median, log-sd)`` of a CRV borrower's HF above 1 (USDC debt)."""


def draw_protocol_book(
    name: str, oracle_usd: np.ndarray, num_envs: int, num_slots: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(supply, debt ``[E, N, K]``, E-mode rows ``[E, N]``) of preset ``name`` at its oracle
    prices ``[K]`` at the start, reproducible from ``seed``. With ``K`` = len(:data:`THIN_SYMBOLS`)
    the book on :data:`DEFAULT_SYMBOLS` is drawn as without it (same draws), and then the last
    slots of a protocol that takes CRV as collateral become CRV borrowers of USDC
    (:data:`THIN_SLOT_SHARE`, :data:`THIN_MEDIAN_COLLATERAL_USD`, :data:`THIN_HF_MARGIN`)."""
    price = np.asarray(oracle_usd, dtype=np.float64)
    k0 = len(DEFAULT_SYMBOLS)
    if price.shape[-1] == k0:
        return _draw_default(name, price, num_envs, num_slots, seed)
    if price.shape[-1] != len(THIN_SYMBOLS):
        raise ValueError(
            f"oracle_usd has {price.shape[-1]} prices; allowed {k0} or {len(THIN_SYMBOLS)}"
        )
    s0, d0, rows = _draw_default(name, price[:k0], num_envs, num_slots, seed)
    pad = np.zeros((*s0.shape[:2], 1))
    supply, debt = np.concatenate([s0, pad], -1), np.concatenate([d0, pad], -1)
    pr = protocol_preset(name, THIN_SYMBOLS)
    res = pr.reserves
    c = res.index(THIN_SYMBOL)
    if not res.reserves[c].can_collateral:
        return supply, debt, rows
    e, n = int(num_envs), int(num_slots)
    m = max(1, int(n * THIN_SLOT_SHARE))
    rng = np.random.default_rng([int(seed) + BOOK_SEED_OFFSET[name], 2023])
    med = THIN_MEDIAN_COLLATERAL_USD[name]
    coll_usd = np.clip(med * np.exp(1.0 * rng.standard_normal((e, m))), 1_000.0, 50e6)
    hf = 1.0 + 1e-6 + THIN_HF_MARGIN[0] * np.exp(THIN_HF_MARGIN[1] * rng.standard_normal((e, m)))
    b = res.index("USDC")
    supply[:, n - m :] = 0.0
    debt[:, n - m :] = 0.0
    supply[:, n - m :, c] = coll_usd / price[c]
    debt[:, n - m :, b] = coll_usd * res.reserves[c].liquidation_threshold / hf / price[b]
    rows = np.array(rows, copy=True)
    rows[:, n - m :] = 0
    return supply, debt, rows


def _draw_default(
    name: str, oracle_usd: np.ndarray, num_envs: int, num_slots: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
