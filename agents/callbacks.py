"""Training callbacks: the protocol's own metrics into TensorBoard beside SB3's."""

from __future__ import annotations

from numbers import Number

from stable_baselines3.common.callbacks import BaseCallback

# info keys logged as means over envs and steps, grouped as DESIGN.md's TensorBoard layout asks.
GROUPS = {
    "protocol": (
        "bad_debt_usd",
        "revenue_usd",
        "reserves_usd",
        "utilization",
        "ltv",
        "liquidation_threshold",
        "liquidation_bonus",
        "slope1_apr",
        "borrow_rate_apr",
    ),
    "cascade": ("liquidations", "liquidated_debt_usd", "cascade_rounds", "amplification"),
    "liquidator": ("equity_usd", "inventory_asset", "hedge_asset", "pnl_usd"),
}


class ProtocolMetricsCallback(BaseCallback):
    """Log the envs' protocol, cascade and liquidator metrics found in ``infos`` each step
    (``self.logger.record_mean("protocol/bad_debt_usd", ...)``), so they sit next to SB3's
    ``rollout/`` and ``train/`` curves in TensorBoard."""

    def _on_step(self) -> bool:
        infos = self.locals.get("infos") or []
        for group, keys in GROUPS.items():
            for key in keys:
                values = [float(i[key]) for i in infos if isinstance(i.get(key), Number)]
                if values:
                    self.logger.record_mean(f"{group}/{key}", sum(values) / len(values))
        return True
