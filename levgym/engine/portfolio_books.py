"""Seeded multi-asset borrower books for the cross-margin market: ETH/stable borrowers,
wstETH/WETH loopers in E-mode, WBTC/stable borrowers and mixed WETH+WBTC positions.

Assumptions (ASSUMPTIONS.md, "Cross-margin reserves (issue 15)", "Books"): each slot draws a
profile by :data:`DEFAULT_MIX`; its collateral in USD is log-normal (median
``median_collateral_usd``, log-sd ``collateral_log_sd``, clipped to [$1,000, $50M]); its health
factor at the start prices is the origination floor ``LT_eff / LTV_eff`` (a borrower cannot
borrow past its LTV) plus a log-normal margin (median and log-sd per profile); its debt is
``collateral * LT_eff / HF`` in USD, in the profile's debt asset (stablecoin debt split USDC 50 %,
USDT 30 %, DAI 20 %). The draw is reproducible from ``seed`` alone
(``numpy.random.default_rng([seed, 1515])``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .portfolio import Reserves, effective_risk

PROFILES = ("eth_stable", "lst_loop", "btc_stable", "eth_btc_stable")
"""Borrower profiles: collateral -> debt."""

DEFAULT_MIX = {"eth_stable": 0.45, "lst_loop": 0.30, "btc_stable": 0.15, "eth_btc_stable": 0.10}
"""Share of slots per profile (stated assumption, ASSUMPTIONS.md)."""

HF_MARGIN = {
    "eth_stable": (0.45, 0.7),
    "lst_loop": (0.03, 0.6),
    "btc_stable": (0.50, 0.7),
    "eth_btc_stable": (0.45, 0.7),
}
"""``(median, log-sd)`` of the HF margin above the origination floor, per profile: loopers sit
near their floor (E-mode HF 1.02-1.10), stable borrowers around HF 1.5-2."""

STABLE_DEBT_SPLIT = {"USDC": 0.5, "USDT": 0.3, "DAI": 0.2}


@dataclass(frozen=True)
class Book:
    """A drawn book: balances ``[E, N, K]`` (asset units), E-mode rows and profiles ``[E, N]``."""

    supply: np.ndarray
    debt: np.ndarray
    emode_row: np.ndarray
    profile: np.ndarray
    """Index into :data:`PROFILES` of each slot."""


def draw_book(
    reserves: Reserves, price_usd: np.ndarray, num_envs: int, num_slots: int, seed: int = 0,
    mix: dict[str, float] | None = None, median_collateral_usd: float = 50_000.0,
    collateral_log_sd: float = 1.5,
) -> Book:  # fmt: skip
    """Draw a book for ``reserves`` at prices ``price_usd [K]`` (the oracle at the start). Needs
    the reserves WETH, wstETH, WBTC and USDC, USDT, DAI that the mix uses (a profile whose
    reserves are missing must have share 0)."""
    mix = dict(DEFAULT_MIX if mix is None else mix)
    bad = [p for p in mix if p not in PROFILES]
    if bad:
        raise ValueError(f"book mix names {bad}; allowed {list(PROFILES)}")
    if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"book mix {mix} needs shares >= 0 with a positive sum")
    for name, v in (("num_envs", num_envs), ("num_slots", num_slots)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name}={v!r}; allowed an integer >= 1")
    price = np.asarray(price_usd, dtype=np.float64)
    k = reserves.k
    syms = reserves.symbols
    need = {
        "eth_stable": ("WETH",),
        "lst_loop": ("wstETH", "WETH"),
        "btc_stable": ("WBTC",),
        "eth_btc_stable": ("WETH", "WBTC"),
    }
    stables = [s for s in STABLE_DEBT_SPLIT if s in syms]
    for p, share in mix.items():
        miss = [s for s in need[p] if s not in syms]
        if share > 0 and (miss or (p != "lst_loop" and not stables)):
            raise ValueError(f"book profile {p!r} needs reserves {miss or ['a stablecoin']}")
    rng = np.random.default_rng([int(seed), 1515])
    e, n = int(num_envs), int(num_slots)
    shares = np.array([mix.get(p, 0.0) for p in PROFILES])
    profile = rng.choice(len(PROFILES), size=(e, n), p=shares / shares.sum())
    coll_usd = np.clip(
        median_collateral_usd * np.exp(collateral_log_sd * rng.standard_normal((e, n))),
        1_000.0,
        50e6,
    )
    z = rng.standard_normal((e, n))
    split = rng.random((e, n))
    stable_w = np.array([STABLE_DEBT_SPLIT[s] for s in stables])
    stable_w = stable_w / stable_w.sum()
    stable_pick = np.searchsorted(np.cumsum(stable_w), rng.random((e, n)), side="right")
    stable_pick = np.minimum(stable_pick, len(stables) - 1)
    supply = np.zeros((e, n, k))
    debt_usd_at = np.zeros((e, n, k))
    emode_row = np.zeros((e, n), dtype=np.int64)
    loop_row = 0
    if "wstETH" in syms:
        for r, c in enumerate(reserves.emodes, start=1):
            if "wstETH" in c.collateral and "WETH" in c.borrowable:
                # the tighter category (highest LT) is the one loopers choose
                if loop_row == 0 or c.liquidation_threshold > reserves.emodes[loop_row - 1].liquidation_threshold:  # fmt: skip
                    loop_row = r
    weights = np.zeros((e, n, k))
    for pi, p in enumerate(PROFILES):
        m = profile == pi
        if not m.any():
            continue
        if p == "eth_stable":
            weights[m, syms.index("WETH")] = 1.0
        elif p == "lst_loop":
            weights[m, syms.index("wstETH")] = 1.0
            emode_row[m] = loop_row
        elif p == "btc_stable":
            weights[m, syms.index("WBTC")] = 1.0
        else:
            weights[m, syms.index("WETH")] = split[m]
            weights[m, syms.index("WBTC")] = 1.0 - split[m]
    supply = coll_usd[..., None] * weights / price
    ltv, lt, _ = effective_risk(reserves, emode_row)
    lt_eff = (weights * lt).sum(-1)
    ltv_eff = (weights * ltv).sum(-1)
    floor = lt_eff / np.maximum(ltv_eff, 1e-9)
    med = np.array([HF_MARGIN[p][0] for p in PROFILES])[profile]
    sd = np.array([HF_MARGIN[p][1] for p in PROFILES])[profile]
    hf = floor * (1.0 + 1e-6) + med * np.exp(sd * z)
    debt_total_usd = coll_usd * lt_eff / hf
    for pi, p in enumerate(PROFILES):
        m = profile == pi
        if not m.any():
            continue
        if p == "lst_loop":
            debt_usd_at[m, syms.index("WETH")] = debt_total_usd[m]
        else:
            cols = np.array([syms.index(s) for s in stables])[stable_pick[m]]
            debt_usd_at[np.nonzero(m)[0], np.nonzero(m)[1], cols] = debt_total_usd[m]
    debt = debt_usd_at / price
    return Book(supply=supply, debt=debt, emode_row=emode_row, profile=profile)
