"""The Aave v3 Ethereum (core market) reserves as a :class:`~levgym.engine.portfolio.Reserves`
preset: LTV, LT and bonus from the October 2025 parameter file, the rest from Aave's published
configuration (sources per value below and in ASSUMPTIONS.md, "Cross-margin reserves")."""

from __future__ import annotations

import csv
import io
from importlib import resources

from .portfolio import EModeCategory, OracleConfig, Reserve, Reserves

RISK_PARAMS_FILE = "aave_v3_ethereum_risk_params_2025-10.csv"
"""levgym/data copy of shared/data/protocol/aave_v3_ethereum_risk_params_2025-10.csv."""

DEFAULT_SYMBOLS = ("WETH", "wstETH", "WBTC", "USDC", "USDT", "DAI")

# Everything but LTV / LT / bonus, per reserve. Source (S23): the configuration snapshot
# bgd-labs/aave-proposals-v3 reports/AaveV3Ethereum_UpgradeAaveV3ETHPooolWETHParameters_20231031_before.json
# (Aave v3 Ethereum on 2023-10-31: caps, reserveFactor, liquidationProtocolFee, debtCeiling,
# isBorrowableInIsolation, eModeCategory and the interest-rate strategy of each reserve). Caps in
# asset units, rates per year; the 2025 values are not in the stored sources (ASSUMPTIONS.md).
_CONFIG: dict[str, dict] = {
    "WETH": dict(
        supply_cap_asset=1_800_000.0, borrow_cap_asset=1_400_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.15, base_rate_apr=0.0, slope1_apr=0.038, slope2_apr=0.80,
        optimal_utilization_frac=0.90, emode_category=1, debt_ceiling_usd=0.0,
        borrowable_in_isolation=False, oracle=OracleConfig("market"),
    ),
    "wstETH": dict(
        supply_cap_asset=850_000.0, borrow_cap_asset=24_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.15, base_rate_apr=0.0025, slope1_apr=0.045, slope2_apr=0.80,
        optimal_utilization_frac=0.45, emode_category=1, debt_ceiling_usd=0.0,
        borrowable_in_isolation=False,
        # CAPO wstETH/stETH(ETH)/USD, 9.68 % a year (aave-proposals-v3 20240227 SetPriceCapAdapters)
        oracle=OracleConfig("exchange_rate", base_symbol="WETH", max_yearly_ratio_growth_frac=0.0968),
    ),
    "WBTC": dict(
        supply_cap_asset=43_000.0, borrow_cap_asset=28_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.20, base_rate_apr=0.0, slope1_apr=0.04, slope2_apr=3.00,
        optimal_utilization_frac=0.45, emode_category=0, debt_ceiling_usd=0.0,
        borrowable_in_isolation=False, oracle=OracleConfig("market"),
    ),
    # stablecoins: CAPO PriceCapAdapterStable, "All stablecoins are capped at 4%" (same proposal)
    "USDC": dict(
        supply_cap_asset=1_760_000_000.0, borrow_cap_asset=1_580_000_000.0, protocol_fee_frac=0.20,
        reserve_factor_frac=0.10, base_rate_apr=0.0, slope1_apr=0.035, slope2_apr=0.60,
        optimal_utilization_frac=0.90, emode_category=0, debt_ceiling_usd=0.0,
        borrowable_in_isolation=True, oracle=OracleConfig("stable_market", price_cap_usd=1.04),
    ),
    "USDT": dict(
        supply_cap_asset=600_000_000.0, borrow_cap_asset=500_000_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.10, base_rate_apr=0.0, slope1_apr=0.04, slope2_apr=0.75,
        optimal_utilization_frac=0.80, emode_category=0, debt_ceiling_usd=0.0,
        borrowable_in_isolation=True, oracle=OracleConfig("stable_market", price_cap_usd=1.04),
    ),
    "DAI": dict(
        supply_cap_asset=338_000_000.0, borrow_cap_asset=271_000_000.0, protocol_fee_frac=0.20,
        reserve_factor_frac=0.10, base_rate_apr=0.0, slope1_apr=0.05, slope2_apr=0.75,
        optimal_utilization_frac=0.90, emode_category=0, debt_ceiling_usd=0.0,
        borrowable_in_isolation=True, oracle=OracleConfig("stable_market", price_cap_usd=1.04),
    ),
    # an isolated asset (debtCeiling 750000000 = $7,500,000.00 in S23), for isolation mode
    "LDO": dict(
        supply_cap_asset=6_000_000.0, borrow_cap_asset=3_000_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.20, base_rate_apr=0.0, slope1_apr=0.07, slope2_apr=3.00,
        optimal_utilization_frac=0.45, emode_category=0, debt_ceiling_usd=7_500_000.0,
        borrowable_in_isolation=False, oracle=OracleConfig("market"),
    ),
    # CRV: the thin collateral of the CRV-style scenario (issue 17); its risk parameters are the
    # October 2025 file's, its caps, fees and curve are assumptions (ASSUMPTIONS.md).
    "CRV": dict(
        supply_cap_asset=62_500_000.0, borrow_cap_asset=7_700_000.0, protocol_fee_frac=0.10,
        reserve_factor_frac=0.35, base_rate_apr=0.03, slope1_apr=0.14, slope2_apr=3.00,
        optimal_utilization_frac=0.70, emode_category=0, debt_ceiling_usd=0.0,
        borrowable_in_isolation=False, oracle=OracleConfig("market"),
    ),
}  # fmt: skip

# E-mode categories. ETH correlated (id 1): 90 % / 93 % / 1 % in S23 (members then WETH,
# wstETH, cbETH, rETH; taken as both collateral and borrowable, v3.2's bitmaps). wstETH/ETH
# (id 8): 93.5 % / 95.5 % / 1 %, collateral wstETH, borrowable WETH, added on 2025-03-18
# (AaveChan/aave-proposals-v3 diffs/AaveV3Ethereum_WstETHAndWeETHEModesAndLTLTVAdjustments
# OnEthereumArbitrumBase_20250318).
_EMODES = (
    EModeCategory(1, "ETH correlated", 0.90, 0.93, 0.01, ("WETH", "wstETH"), ("WETH", "wstETH")),
    EModeCategory(8, "wstETH/ETH", 0.935, 0.955, 0.01, ("wstETH",), ("WETH",)),
)


def risk_params_2025_10() -> dict[str, tuple[float, float, float, bool]]:
    """``{symbol: (ltv, liquidation_threshold, liquidation_bonus, borrowing_enabled)}`` from the
    October 2025 file (its bonus column is ``1 + bonus``)."""
    text = resources.files("levgym").joinpath("data", RISK_PARAMS_FILE).read_text(encoding="utf-8")
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        bonus = float(row["liquidationBonus"])
        out[row["symbol"]] = (
            float(row["ltv"]),
            float(row["liquidationThreshold"]),
            round(bonus - 1.0, 6) if bonus > 0 else 0.0,
            row["borrowingEnabled"] == "True",
        )
    return out


def aave_v3_ethereum_reserves(symbols: tuple[str, ...] = DEFAULT_SYMBOLS) -> Reserves:
    """The reserves ``symbols`` (any of WETH, wstETH, WBTC, USDC, USDT, DAI, LDO, CRV) of Aave v3
    Ethereum with their E-mode categories (members outside ``symbols`` dropped; a category left
    without collateral or borrowable members is dropped)."""
    symbols = tuple(symbols)
    unknown = [s for s in symbols if s not in _CONFIG]
    if unknown:
        raise ValueError(
            f"aave_v3_ethereum_reserves: symbols {unknown} unknown; allowed {list(_CONFIG)}"
        )
    risk = risk_params_2025_10()
    emodes = []
    for c in _EMODES:
        col = tuple(s for s in c.collateral if s in symbols)
        bor = tuple(s for s in c.borrowable if s in symbols)
        if col and bor:
            emodes.append(
                EModeCategory(
                    c.id, c.label, c.ltv, c.liquidation_threshold, c.liquidation_bonus, col, bor
                )
            )
    ids = {c.id for c in emodes}
    reserves = []
    for s in symbols:
        ltv, lt, bonus, borrowing = risk[s]
        cfg = dict(_CONFIG[s])
        if cfg["emode_category"] not in ids:
            cfg["emode_category"] = 0
        if cfg["oracle"].kind == "exchange_rate" and cfg["oracle"].base_symbol not in symbols:
            raise ValueError(
                f"aave_v3_ethereum_reserves: {s} is priced off {cfg['oracle'].base_symbol}; include it"
            )
        reserves.append(
            Reserve(
                symbol=s,
                can_collateral=lt > 0,
                can_borrow=borrowing,
                ltv=ltv,
                liquidation_threshold=lt,
                liquidation_bonus=bonus,
                **cfg,
            )  # fmt: skip
        )
    return Reserves(tuple(reserves), tuple(emodes))
