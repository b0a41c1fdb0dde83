"""``render_mode="rgb_array"``: one env's prices, health-factor histogram and parameters (Agg)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..engine.backend import to_numpy
from ..engine.borrowers import health_factor

if TYPE_CHECKING:
    from .base import LevgymVectorEnv

WIDTH_IN, HEIGHT_IN, DPI = 9.6, 4.0, 80


def draw_env(venv: LevgymVectorEnv, env: int) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 image of env ``env``: prices over the last 24 h (fundamental,
    pool, oracle), the debt-weighted health-factor histogram, and a text panel of parameters
    and agent state. Uses matplotlib's Agg canvas directly (no pyplot state, no window)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    gs = fig.add_gridspec(1, 3, width_ratios=(1.3, 1.0, 0.8))

    ax = fig.add_subplot(gs[0, 0])
    h = venv.core.tracker.history(env)
    ax.plot(h["hours"], h["fundamental"], color="black", label="fundamental", linewidth=1.2)
    ax.plot(h["hours"], h["pool"], color="tab:red", label="pool", linewidth=1.0)
    ax.plot(
        h["hours"], h["oracle"], color="tab:blue", linestyle="--", label="oracle", linewidth=1.0
    )
    ax.set_xlabel("hours from now")
    ax.set_ylabel("USD")
    ax.set_title("prices", fontsize=10)
    ax.legend(fontsize=7, loc="best")

    ax = fig.add_subplot(gs[0, 1])
    s = venv.core.state
    hf = to_numpy(health_factor(s))[env]
    owed = (to_numpy(s.debt_usd) * to_numpy(s.debt_price_usd)[:, None])[env]
    mask = owed > 0
    bins = np.linspace(0.5, 3.0, 41)
    if mask.any():
        ax.hist(np.clip(hf[mask], 0.5, 3.0), bins=bins, weights=owed[mask] / 1e6, color="tab:green")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("health factor (clipped to [0.5, 3])")
    ax.set_ylabel("debt, $M")
    ax.set_title("health factors", fontsize=10)

    ax = fig.add_subplot(gs[0, 2])
    ax.axis("off")
    ax.text(0.0, 1.0, "\n".join(venv.render_text(env)), family="monospace", fontsize=8, va="top")
    ax.set_title(venv.env_id, fontsize=10)

    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


__all__ = ["draw_env"]
