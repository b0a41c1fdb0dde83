"""Training callbacks: the protocol's own metrics into TensorBoard beside SB3's."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Number
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

# Per-step info keys of the envs, logged as means over envs and steps under the model's
# TensorBoard groups (each key is one the env's step info carries; a test keeps them in sync).
GROUPS = {
    "protocol": (
        "revenue_usd",
        "bad_debt_usd",
        "economic_bad_debt_usd",
        "shortfall_usd",
        "lender_loss_usd",
        "ltv",
        "liquidation_threshold",
        "liquidation_bonus",
        "slope1_apr",
        "slope2_apr",
    ),
    "cascade": ("liquidations", "liquidated_debt_usd", "liquidation_loss_usd"),
    # Governance-v1's levers beyond v0's parameters
    "steward": (
        "supply_cap_asset",
        "borrow_cap_usd",
        "close_factor",
        "optimal_utilization_frac",
        "freeze_borrow",
        "pause_oracle",
        "levers_changed",
    ),
    "liquidator": (
        "equity_usd",
        "pnl_usd",
        "cash_usd",
        "inventory_asset",
        "perp_asset",
        "seized_asset",
        "sold_asset",
        "gas_usd",
        "slippage_usd",
        "funding_usd",
    ),
}


def step_means(info: Mapping[str, Any]) -> dict[str, float]:
    """``{"group/key": mean over envs}`` for the :data:`GROUPS` keys a vector info holds (numeric
    arrays ``[E]``; non-finite entries are left out of the mean)."""
    out: dict[str, float] = {}
    for group, keys in GROUPS.items():
        for key in keys:
            value = info.get(key)
            if value is None:
                continue
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiub" or arr.size == 0:
                continue
            finite = arr[np.isfinite(arr)]
            if finite.size:
                out[f"{group}/{key}"] = float(finite.mean())
    return out


class ProtocolMetricsCallback(BaseCallback):
    """Log the envs' protocol, cascade and liquidator metrics each step
    (``self.logger.record_mean("protocol/bad_debt_usd", ...)``), so they sit next to SB3's
    ``rollout/`` and ``train/`` curves in TensorBoard and ``progress.csv``.

    On levgym's SB3 adapter the metrics come from its ``step_info`` (the vector env's arrays,
    reduced once per step); on any other ``VecEnv`` (single envs in a ``DummyVecEnv``) from the
    per-env ``infos``."""

    def _on_step(self) -> bool:
        base = self.training_env.unwrapped if self.training_env is not None else None
        step_info = getattr(base, "step_info", None)
        if isinstance(step_info, Mapping):
            means = step_means(step_info)
        else:
            infos = self.locals.get("infos") or []
            keys = {k for group in GROUPS.values() for k in group}
            means = step_means(
                {k: [float(i[k]) for i in infos if isinstance(i.get(k), Number)] for k in keys}
            )
        for tag, value in means.items():
            self.logger.record_mean(tag, value)
        return True
