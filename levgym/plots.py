"""PNG plots of simulations (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .io import save_figure


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_simulation(result: Any, path: str | os.PathLike, title: str = "") -> None:
    """Prices (fundamental, pool, oracle), liquidations and bad debt over time, HF before/after."""
    plt = _plt()
    s = result.series
    t = s["time_h"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0, 0]
    ax.plot(t, s["fundamental_usd"][:, 0], label="fundamental", color="black")
    ax.plot(t, s["pool_usd"][:, 0], label="pool", color="tab:red")
    ax.plot(t, s["oracle_usd"][:, 0], label="oracle", color="tab:blue", linestyle="--")
    if s["fundamental_usd"].shape[1] > 1:
        lo = np.percentile(s["pool_usd"], 5, axis=1)
        hi = np.percentile(s["pool_usd"], 95, axis=1)
        ax.fill_between(t, lo, hi, color="tab:red", alpha=0.15, label="pool, 5-95% of envs")
    ax.set_title("prices (env 0)")
    ax.set_xlabel("hours")
    ax.set_ylabel("USD")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(t, s["liquidations"].mean(axis=1), color="tab:orange")
    ax.set_title("liquidations, cumulative (mean over envs)")
    ax.set_xlabel("hours")
    ax = axes[1, 0]
    ax.plot(t, s["bad_debt_value_usd"].mean(axis=1) / 1e6, color="tab:purple")
    ax.set_title("bad debt written off, cumulative (mean over envs, $M)")
    ax.set_xlabel("hours")
    ax = axes[1, 1]
    bins = np.linspace(0.5, 3.0, 51)
    if result.hf_before is not None and len(result.hf_before):
        ax.hist(
            np.clip(result.hf_before, 0.5, 3.0),
            bins=bins,
            weights=result.weights_before / 1e6,
            alpha=0.5,
            label="before",
        )
    if result.hf_after is not None and len(result.hf_after):
        ax.hist(
            np.clip(result.hf_after, 0.5, 3.0),
            bins=bins,
            weights=result.weights_after / 1e6,
            alpha=0.5,
            label="after",
        )
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_title("health factor distribution (debt, $M)")
    ax.set_xlabel("health factor (clipped to [0.5, 3])")
    ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
