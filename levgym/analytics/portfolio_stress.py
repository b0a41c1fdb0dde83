"""Monte Carlo stress of the multi-asset (cross-margin) market: what ``levgym stress --preset
aave_v3_ethereum`` computes.

One path is one env of :mod:`levgym.engine.portfolio_market` (the reserves of
:func:`levgym.engine.aave_v3_ethereum.aave_v3_ethereum_reserves`, a book from
:func:`levgym.engine.portfolio_books.draw_book`, 1 h rows of a
:mod:`levgym.scenarios.multiasset` scenario), run as :func:`levgym.simulation_portfolio.
simulate_portfolio` runs it.

Randomness: batch ``b`` of a run with root seed ``s`` uses ``batch_seed(s, b)``
(:func:`levgym.analytics.montecarlo.batch_seed`) for both its price paths and its book, so a
batch is a pure function of (config, b): the result does not depend on the order or the process
in which batches run, and two runs with the same seed, paths and batch size are equal.

Outcomes per path:

- **Bad debt** (USD): the sum over debt reserves of the deficit written off during the horizon
  (v3.3 ``DeficitCreated``, counter ``deficit_asset``), each valued at the reserve's fundamental
  price at the start of the path (:data:`BAD_DEBT_DEFINITION`). VaR and CVaR at 95% and 99% use the
  single-asset stress's estimators (:func:`levgym.analytics.risk.tail_block`), with the same key
  names and standard errors.
- **Euler allocation of CVaR** (:func:`cvar_contributions`): the empirical CVaR is a weighted mean
  of the largest losses (weight ``1 / (n (1 - a))`` on the paths above rank ``k = ceil(n a)``, the
  fractional rest on rank ``k``); a reserve's contribution is the same weighted mean of that
  reserve's deficit. Because the per-path loss is the sum of the reserves' deficits, the
  contributions sum to the CVaR (to float rounding).
- **Liquidation heatmap per collateral asset** (:func:`liquidatable_debt`): measured at the
  horizon of each path, on the book the path left, with every other asset's oracle held at its
  value on the path at the horizon; the oracle price of collateral asset ``i`` is multiplied by
  ``1 - fall`` for each fall of :data:`FALLS`. A position counts once its HF
  (:func:`levgym.engine.portfolio.account_data`) is below 1 at any grid fall up to ``fall``
  (so the curve is monotone even for positions that also owe asset ``i``), and contributes its
  whole debt at the unshocked horizon oracle (USD). Reported as the mean over paths, and as a
  fraction of the mean debt at the horizon.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import portfolio_market as PM
from ..engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from ..engine.portfolio import account_data
from ..scenarios import multiasset as MA
from ..simulation_portfolio import PRESET_MARKET, build_market
from .montecarlo import Progress, batch_seed
from .risk import LEVELS, _sample, check_se_method, mean_estimate, probability_block, tail_block

PRESET = "aave_v3_ethereum"
DEFAULT_SCENARIO = "multiasset_2021"
ROW_H = 1.0
"""Hours per row of the multi-asset paths (one market substep per row)."""
FALLS = tuple(round(0.05 * i, 2) for i in range(11))
"""Price falls of the heatmap, as fractions of the horizon oracle price: 0, 5%, ..., 50%."""
BAD_DEBT_DEFINITION = "deficits_at_start_prices"
BAD_DEBT_TEXT = (
    "sum over debt reserves of the debt written off into the reserve's deficit during the horizon "
    "(v3.3 deficit), each valued at the reserve's fundamental price at the start of the path"
)
HEATMAP_DEFINITION = (
    "at the horizon of each path, on the book it left, other assets' oracles held at their path "
    "values at the horizon: debt (USD at the unshocked horizon oracle) of positions whose HF is "
    "below 1 at some grid fall up to price_fall_frac of this collateral asset's oracle price; mean over "
    "paths (liquidatable_debt_frac: over the mean debt at the horizon)"
)


@dataclass(frozen=True)
class PortfolioStressConfig:
    """How many paths of which scenario, how long, in which batches."""

    scenario: str = DEFAULT_SCENARIO
    paths: int = 2000
    positions: int = 128
    horizon_h: float = 24.0
    """Hours per path: a whole number of 1 h rows."""
    seed: int = 0
    batch_size: int = 500
    price_table: MA.MultiAssetTable | None = None
    """A parsed ``--price-csv``: its assets replayed on every path, the others simulated
    conditionally on them (:func:`levgym.scenarios.multiasset.replay`)."""
    price_csv: str | None = None
    """The file ``price_table`` came from (labels only)."""
    market: PM.PortfolioMarketParams = dataclasses.replace(PRESET_MARKET, substep_h=ROW_H)
    """Market parameters (deficit cover, borrower behaviour, the preset's StableSwap legs);
    ``substep_h`` must be ``ROW_H``."""
    book: Any = None
    """A parsed ``--book-csv`` (:class:`levgym.scenarios.portfolio_book_csv.PortfolioBookTable`)
    held by every path instead of a drawn book (``max(positions, rows)`` slots)."""

    def __post_init__(self) -> None:
        MA.get_scenario(self.scenario)
        for name in ("paths", "positions", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name}={v!r} is out of range; allowed an integer >= 1")
        h = self.horizon_h
        if not (math.isfinite(h) and h > 0 and abs(h / ROW_H - round(h / ROW_H)) < 1e-9):
            raise ValueError(
                f"horizon_hours={h:g} is out of range; allowed a positive whole number of hours"
            )
        if self.market.substep_h != ROW_H:
            raise ValueError(
                f"market.substep_h={self.market.substep_h:g}; allowed {ROW_H:g} (one substep per row)"
            )
        if self.price_table is not None:
            from ..simulation_portfolio import check_price_table

            check_price_table(
                self.price_table, self.scenario, self.steps + 1,
                f"--price-csv {self.price_csv!r}", f"--horizon-hours {h:g}",
            )  # fmt: skip

    @property
    def slots(self) -> int:
        """Position slots per path."""
        return self.positions if self.book is None else max(self.positions, self.book.rows)

    @property
    def steps(self) -> int:
        return int(round(self.horizon_h / ROW_H))

    @property
    def batches(self) -> list[int]:
        """Sizes of the batches, in order."""
        full, rest = divmod(self.paths, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])


@dataclass
class PortfolioBatch:
    """One batch's per-path outcomes (arrays with a leading ``[size]`` axis)."""

    batch: int
    bad_debt_usd: np.ndarray
    deficit_usd_by_asset: np.ndarray
    """``[size, K]``: each reserve's deficit at its start price."""
    tvl_usd: np.ndarray
    liquidated_usd: np.ndarray
    liquidations: np.ndarray
    debt_end_usd: np.ndarray
    covered_usd: np.ndarray
    """Deficit the treasury covered (``market.deficit_cover``), at start prices."""
    liquidatable_usd: np.ndarray
    """``[size, C, F]``: the heatmap per path (collateral asset ``C``, fall ``F``)."""


def collateral_symbols() -> tuple[str, ...]:
    """The reserves usable as collateral (the heatmap's assets)."""
    r = aave_v3_ethereum_reserves()
    return tuple(s for s, c in zip(r.symbols, r.can_collateral, strict=True) if c)


def liquidatable_debt(
    supply: np.ndarray,
    debt: np.ndarray,
    emode_row: np.ndarray,
    oracle_usd: np.ndarray,
    reserves: Any,
    asset: int,
    falls: tuple[float, ...] = FALLS,
) -> np.ndarray:
    """``[E, F]``: debt (USD at ``oracle_usd``) of positions ``[E, N, K]`` whose HF is below 1 at
    some fall up to each of ``falls`` (increasing, from 0) of ``asset``'s oracle price, the other
    prices held at ``oracle_usd [E, K]``."""
    f = np.asarray(falls, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or np.any(np.diff(f) < 0) or f[0] < 0 or f[-1] >= 1:
        raise ValueError(f"falls={falls!r}; allowed increasing fractions in [0, 1)")
    scale = np.ones((f.size, reserves.k))
    scale[:, asset] = 1.0 - f
    price = oracle_usd[:, None, None, :] * scale[None, :, None, :]  # [E, F, 1, K]
    acc = account_data(supply[:, None], debt[:, None], price, reserves, emode_row[:, None])
    under = np.logical_or.accumulate(acc.health_factor < 1.0, axis=1)  # [E, F, N]
    debt_usd = (debt * oracle_usd[:, None, :]).sum(axis=-1)  # [E, N]
    return (under * debt_usd[:, None, :]).sum(axis=-1)


def run_batch(config: PortfolioStressConfig, batch: int) -> PortfolioBatch:
    """Batch ``batch`` of ``config``: a pure function of its arguments."""
    sizes = config.batches
    if not 0 <= batch < len(sizes):
        raise ValueError(f"batch={batch} is out of range; allowed 0..{len(sizes) - 1}")
    size = sizes[batch]
    seed_b = batch_seed(config.seed, batch)
    params = config.market
    state, f, reserves = build_market(
        config.scenario, size, config.positions, config.steps, seed_b, params, config.price_table,
        aave_v3_ethereum_reserves(), config.book,
    )  # fmt: skip
    state = PM.run(state, f, reserves, params, noise_seed=seed_b)
    c = state.counters
    start = f[0]
    deficit = c["deficit_asset"] * start
    coll_idx = [reserves.index(s) for s in collateral_symbols()]
    heat = np.stack(
        [
            liquidatable_debt(
                state.supply, state.debt, state.emode_row, state.oracle_usd, reserves, i
            )
            for i in coll_idx
        ],
        axis=1,
    )
    return PortfolioBatch(
        batch=batch,
        bad_debt_usd=deficit.sum(axis=1),
        deficit_usd_by_asset=deficit,
        tvl_usd=(c["initial_collateral_asset"] * start).sum(axis=1),
        liquidated_usd=(c["repaid_by_liquidators_asset"] * start).sum(axis=1),
        liquidations=state.liquidations.astype(np.float64),
        debt_end_usd=(state.debt * state.oracle_usd[:, None, :]).sum(axis=(1, 2)),
        covered_usd=(c["deficit_covered_asset"] * start).sum(axis=1),
        liquidatable_usd=heat,
    )


def _batch_task(config: PortfolioStressConfig, batch: int) -> PortfolioBatch:
    return run_batch(config, batch)


def run_portfolio_paths(
    config: PortfolioStressConfig, *, executor: Any = None, progress: Progress | None = None
) -> PortfolioBatch:
    """Every batch of ``config`` (on ``executor``, a :class:`levgym.distributed.Executor`; default
    in this process, in order), concatenated in batch order: one :class:`PortfolioBatch` of all
    paths (``batch`` = -1). The result does not depend on the executor."""
    return run_batches(_batch_task, config, PortfolioBatch, executor=executor, progress=progress)


def run_batches(
    task: Any, config: Any, batch_type: type, *, executor: Any = None,
    progress: Progress | None = None,
) -> Any:  # fmt: skip
    """Every batch of ``config`` (``config.batches`` sizes) through ``task(config, b)``, which
    returns a dataclass ``batch_type`` with an int field ``batch`` and per-path arrays (leading
    ``[size]`` axis) as its other fields; on ``executor`` (default: in this process, in order),
    concatenated in batch order into one ``batch_type`` (``batch`` = -1). The stresses of the
    multi-asset preset and of several protocols share it."""
    from ..distributed import SerialExecutor

    items = list(range(len(config.batches)))
    results = (executor or SerialExecutor()).map(task, config, items, progress)
    results = sorted(results, key=lambda b: b.batch)
    if [b.batch for b in results] != items:
        raise ValueError(f"batches {[b.batch for b in results]} are incomplete; allowed {items}")
    fields = [f for f in batch_type.__dataclass_fields__ if f != "batch"]
    cat = {f: np.concatenate([getattr(b, f) for b in results]) for f in fields}
    return batch_type(batch=-1, **cat)


def cvar_contributions(loss_by_part: np.ndarray, level: float) -> tuple[float, np.ndarray]:
    """(CVaR, per-part contributions ``[K]``) of the loss ``loss_by_part.sum(axis=1)`` of paths
    ``[n, K]``: the Euler allocation of :func:`levgym.analytics.risk.expected_shortfall` (the
    same tail weights applied to each part; the parts sum to the CVaR)."""
    x = np.asarray(loss_by_part, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"loss_by_part has shape {x.shape}; allowed [paths >= 1, parts]")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is out of range; allowed (0, 1)")
    total = _sample(x.sum(axis=1))
    n = total.size
    order = np.argsort(total, kind="stable")
    k = max(1, math.ceil(n * level - 1e-9))
    w = np.zeros(n)
    w[order[k:]] = 1.0
    w[order[k - 1]] = k - n * level
    w /= n * (1.0 - level)
    contrib = w @ x
    return float(w @ total), contrib


def summarize(
    res: PortfolioBatch, symbols: tuple[str, ...], se_method: str = "analytic"
) -> dict[str, Any]:
    """The flat summary: the single-asset stress's bad-debt tail keys, CVaR contributions by
    reserve, mean deficits by reserve and the heatmap per collateral asset."""
    check_se_method(se_method)
    bad, tvl = _sample(res.bad_debt_usd), _sample(res.tvl_usd)
    out: dict[str, Any] = {"paths": int(bad.size), "tvl_usd": float(tvl.mean())}
    out.update(tail_block(bad, tvl, "var", "bad_debt", with_cvar=True, se_method=se_method))
    out.update(probability_block(bad > 0, "prob_bad_debt"))
    for unit, s in (("usd", bad), ("tvl_frac", bad / tvl)):
        est = mean_estimate(s, se_method)
        out[f"mean_bad_debt_{unit}"], out[f"mean_bad_debt_{unit}_se"] = est.value, est.se
    est = mean_estimate(res.liquidated_usd, se_method)
    out["mean_liquidated_usd"], out["mean_liquidated_usd_se"] = est.value, est.se
    out.update(probability_block(res.liquidations > 0, "prob_any_liquidation"))
    out["mean_bad_debt_by_asset_usd"] = {
        s: float(res.deficit_usd_by_asset[:, i].mean()) for i, s in enumerate(symbols)
    }
    for level in LEVELS:
        _, contrib = cvar_contributions(res.deficit_usd_by_asset, level)
        out[f"cvar_{round(level * 100)}_contribution_by_asset_usd"] = {
            s: float(contrib[i]) for i, s in enumerate(symbols)
        }
    debt_end = float(res.debt_end_usd.mean())
    heat = res.liquidatable_usd.mean(axis=0)  # [C, F]
    out["liquidation_heatmap_by_asset"] = {
        s: {
            "price_fall_frac": list(FALLS),
            "liquidatable_debt_usd": [float(v) for v in heat[c]],
            "liquidatable_debt_frac": [
                float(v / debt_end) if debt_end > 0 else 0.0 for v in heat[c]
            ],
        }
        for c, s in enumerate(collateral_symbols())
    }
    out["liquidation_heatmap_definition"] = HEATMAP_DEFINITION
    out["mean_debt_end_usd"] = debt_end
    out["mean_deficit_covered_usd"] = float(res.covered_usd.mean())
    out["se_method"] = se_method
    return out


def plot(summary: dict[str, Any], bad_debt_usd: np.ndarray, path: Any, title: str = "") -> None:
    """A PNG: the bad-debt distribution with VaR/CVaR, and the heatmap curves per collateral."""
    from ..io import save_figure
    from .plots import _plt

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.hist(bad_debt_usd, bins=50, color="tab:red", alpha=0.7)
    for level, style in ((95, "--"), (99, ":")):
        a.axvline(summary[f"var_{level}_bad_debt_usd"], color="k", ls=style, label=f"VaR {level}%")
        a.axvline(
            summary[f"cvar_{level}_bad_debt_usd"],
            color="tab:blue",
            ls=style,
            label=f"CVaR {level}%",
        )
    a.set_yscale("log")
    a.set_xlabel("bad debt per path (USD at start prices)")
    a.set_ylabel("paths")
    a.legend(fontsize=8)
    for sym, rec in summary["liquidation_heatmap_by_asset"].items():
        b.plot(
            100 * np.asarray(rec["price_fall_frac"]),
            rec["liquidatable_debt_usd"],
            marker="o",
            label=sym,
        )
    b.set_xlabel("fall of the asset's oracle price at the horizon (%)")
    b.set_ylabel("liquidatable debt per path (USD)")
    b.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
