"""Risk analytics on the engine: Monte Carlo stress, VaR / CVaR of bad debt, liquidations at risk,
liquidation-price distribution, sensitivities and parameter frontiers."""

from .frontier import SweepAxis, SweepResult, pareto_front, parse_sweep, parse_sweeps, run_sweep
from .heatmap import LiquidationHeatmap, debt_by_price, liquidation_prices_rel
from .montecarlo import MonteCarloConfig, PathResults, batch_seed, run_paths, scale_price
from .risk import (
    expected_shortfall,
    summarize_paths,
    value_at_risk,
)
from .sensitivity import Sensitivity, finite_differences, run_sensitivities

__all__ = [
    "LiquidationHeatmap",
    "MonteCarloConfig",
    "PathResults",
    "Sensitivity",
    "SweepAxis",
    "SweepResult",
    "batch_seed",
    "debt_by_price",
    "expected_shortfall",
    "finite_differences",
    "liquidation_prices_rel",
    "pareto_front",
    "parse_sweep",
    "parse_sweeps",
    "run_paths",
    "run_sensitivities",
    "run_sweep",
    "scale_price",
    "summarize_paths",
    "value_at_risk",
]
