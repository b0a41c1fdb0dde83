"""PNG plots of stress tests: loss distributions with VaR/CVaR, liquidation heatmap, frontier."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..io import save_figure
from .frontier import SweepResult
from .heatmap import LiquidationHeatmap
from .risk import amplification_sample


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_distributions(
    per_path: dict[str, np.ndarray],
    summary: dict[str, Any],
    path: str | os.PathLike,
    title: str = "",
    dpi: int = 90,
) -> None:
    """Histograms of bad debt (VaR and CVaR lines), liquidated volume (LaR lines), amplification."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bad = per_path["bad_debt_measured_usd"] / 1e6
    ax = axes[0]
    ax.hist(bad, bins=50, color="tab:purple", alpha=0.7)
    styles = {"95": "--", "99": "-"}
    for pct, ls in styles.items():
        v = summary[f"var_{pct}_bad_debt_usd"] / 1e6
        c = summary[f"cvar_{pct}_bad_debt_usd"] / 1e6
        ax.axvline(v, color="black", linestyle=ls, linewidth=1.2, label=f"VaR {pct}% = ${v:,.2f}M")
        ax.axvline(
            c, color="tab:red", linestyle=ls, linewidth=1.2, label=f"CVaR {pct}% = ${c:,.2f}M"
        )
    ax.set_yscale("log")
    ax.set_xlabel("bad debt per path ($M)")
    ax.set_ylabel("paths")
    ax.set_title(f"bad debt; P(bad debt > 0) = {summary['prob_bad_debt']:.3f}")
    ax.legend(fontsize=8)
    ax = axes[1]
    liq = per_path["liquidated_usd"] / 1e6
    ax.hist(liq, bins=50, color="tab:orange", alpha=0.7)
    for pct, ls in styles.items():
        v = summary[f"lar_{pct}_liquidated_usd"] / 1e6
        ax.axvline(v, color="black", linestyle=ls, linewidth=1.2, label=f"LaR {pct}% = ${v:,.1f}M")
    ax.set_xlabel("debt repaid by liquidators per path ($M)")
    ax.set_title("liquidations at risk")
    ax.legend(fontsize=8)
    ax = axes[2]
    amp = amplification_sample(per_path)
    ax.axvline(1.0, color="black", linewidth=0.8)
    if amp.size:
        ax.hist(amp, bins=50, color="tab:blue", alpha=0.7)
        ax.axvline(
            summary["amplification_p95"], color="tab:red", linestyle="--", label="95th percentile"
        )
        ax.set_title(f"amplification, mean {summary['amplification_mean']:.2f}")
        ax.legend(fontsize=8)
    else:
        ax.set_title("amplification: no path fell 2% or more")
    ax.set_xlabel("cascade amplification (pool / fundamental drawdown; paths down >= 2%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    plt.close(fig)


def plot_heatmap(
    hm: LiquidationHeatmap, path: str | os.PathLike, title: str = "", dpi: int = 90
) -> None:
    """Left: debt by liquidation price over time with the price fan; right: before vs after."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    data = hm.debt_usd.T / 1e6
    positive = data[data > 0]
    vmin = max(float(positive.max()) * 1e-4, float(positive.min())) if positive.size else 1e-6
    t = hm.times_h
    dt = (t[1] - t[0]) if t.size > 1 else 1.0
    extent = (t[0] - dt / 2, t[-1] + dt / 2, hm.edges_rel[0], hm.edges_rel[-1])
    im = ax.imshow(
        np.where(data > 0, data, np.nan),
        origin="lower",
        aspect="auto",
        extent=extent,
        cmap="magma_r",
        norm=LogNorm(vmin=vmin, vmax=max(float(data.max()), vmin * 10)),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="debt liquidatable at this price ($M, mean per path)")
    f = hm.fundamental_rel
    ax.plot(t, np.median(f, axis=1), color="tab:cyan", label="fundamental, median")
    ax.fill_between(
        t,
        np.percentile(f, 5, axis=1),
        np.percentile(f, 95, axis=1),
        color="tab:cyan",
        alpha=0.2,
        label="fundamental, 5-95%",
    )
    ax.plot(
        t,
        np.median(hm.oracle_rel, axis=1),
        color="tab:blue",
        linestyle="--",
        label="oracle, median",
    )
    ax.set_ylim(hm.edges_rel[0], hm.edges_rel[-1])
    ax.set_xlabel("hours")
    ax.set_ylabel("liquidation price / start price")
    ax.set_title("liquidation heatmap")
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[1]
    c = hm.centers_rel
    w = hm.edges_rel[1] - hm.edges_rel[0]
    ax.barh(c, hm.before_usd / 1e6, height=w, alpha=0.5, label="before (t=0)")
    ax.barh(c, hm.after_usd / 1e6, height=w, alpha=0.5, label=f"after (t={t[-1]:g} h)")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(float(np.median(f[-1])), color="tab:cyan", linewidth=1.0, label="median end price")
    ax.set_ylim(hm.edges_rel[0], hm.edges_rel[-1])
    ax.set_xlabel("debt ($M, mean per path)")
    ax.set_title("liquidation-price distribution")
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    plt.close(fig)


X_LABELS = {
    "revenue": "expected protocol revenue over the horizon ($M)",
    "debt": "expected initial debt: borrowing the book carries ($M)",
    "capacity": "borrowing capacity, TVL x LTV ($M)",
}


def plot_frontier(
    sweep: SweepResult, path: str | os.PathLike, title: str = "", dpi: int = 90
) -> None:
    """Left: VaR99 (+- 1 SE) along the grid; right: benefit against VaR99 with the frontier."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    pts = sweep.points
    names = [a.name for a in sweep.axes]
    var = np.array([p["var_99_bad_debt_usd"] for p in pts]) / 1e6
    se = np.array([p["var_99_bad_debt_usd_se"] for p in pts]) / 1e6
    base = sweep.base_point
    ax = axes[0]
    if len(sweep.axes) == 1:
        x = np.array([p["params"][names[0]] for p in pts])
        var95 = np.array([p["var_95_bad_debt_usd"] for p in pts]) / 1e6
        ax.errorbar(x, var, yerr=se, marker="o", capsize=3, label="VaR 99%")
        ax.plot(x, var95, marker=".", linestyle="--", label="VaR 95%")
        ax.plot(
            base["params"][names[0]],
            base["var_99_bad_debt_usd"] / 1e6,
            marker="*",
            markersize=16,
            color="tab:red",
            linestyle="none",
            label="preset",
        )
        ax.set_xlabel(names[0])
        ax.set_ylabel("bad debt VaR ($M)")
        ax.legend(fontsize=8)
    else:
        xs = sorted({p["params"][names[0]] for p in pts})
        ys = sorted({p["params"][names[1]] for p in pts})
        z = np.full((len(ys), len(xs)), np.nan)
        for p, v in zip(pts, var, strict=True):
            z[ys.index(p["params"][names[1]]), xs.index(p["params"][names[0]])] = v
        im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs], rotation=45)
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        fig.colorbar(im, ax=ax, label="bad debt VaR 99% ($M)")
    ax.set_title("bad-debt VaR across the grid (same paths)")
    ax = axes[1]
    bx = np.array([p["frontier_x"] for p in pts]) / 1e6
    front = np.array([p["on_frontier"] for p in pts])
    ax.errorbar(
        bx,
        var,
        yerr=se,
        marker="o",
        linestyle="none",
        color="tab:gray",
        capsize=2,
        label="grid point",
    )
    if front.any():
        order = np.argsort(bx[front])
        ax.plot(
            bx[front][order],
            var[front][order],
            color="tab:green",
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgewidth=2,
            zorder=5,
            label="efficient frontier",
        )
    for p, xv, yv in zip(pts, bx, var, strict=True):
        label = ",".join(f"{p['params'][n]:g}" for n in names)
        ax.annotate(label, (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.plot(
        base["frontier_x"] / 1e6,
        base["var_99_bad_debt_usd"] / 1e6,
        marker="*",
        markersize=16,
        color="tab:red",
        linestyle="none",
        label="preset",
    )
    ax.set_xlabel(X_LABELS[sweep.x_metric])
    ax.set_ylabel("bad debt VaR 99% ($M)")
    ax.set_title(f"frontier ({', '.join(names)}; book {sweep.book})")
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    plt.close(fig)
