"""The output contract: every result key levgym emits, declared once with its unit and meaning.

Commands build their JSON objects and CSV headers through :func:`checked` and
:func:`checked_columns`, which refuse a key that is not declared here for that output; the tests
run each command and check every key it emits, nested ones included. ``python -m levgym.results``
prints the table that docs/output-contract.md carries.

Units. The engine keeps debt, supply, reserves and bad debt in units of the debt asset (a
stablecoin: worth USD 1 only at a debt price of 1; ``dai_depeg`` moves it). So:

- ``*_usd`` is USD, except the seven debt-side keys that the ``simulate --json``
  contract names (``initial_debt_usd``, ``final_debt_usd``, ``borrowed_usd``, ``interest_usd``,
  ``repaid_by_borrowers_usd``, ``repaid_by_liquidators_usd``, ``bad_debt_usd``): the contract
  keeps those names, and their values are in debt-asset units (unit ``debt_asset`` below).
- ``*_value_usd`` is the USD value of a debt-asset amount: flows (borrowed, interest, repaid,
  liquidated, written off, reserve income, lender loss) at the debt price of the substep in which
  each amount moved, stocks (initial and final debt, underwater shortfall) at the debt price of
  their time (start or end). Non-contract debt-side keys without ``value`` in the name follow the
  same rule (``revenue_usd``, ``lender_loss_usd``, ``liquidated_usd``).
- ``*_debt_asset`` is an amount in debt-asset units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .analytics.risk import LEVELS as RISK_LEVELS

UNITS: dict[str, str] = {
    "usd": "US dollars",
    "debt_asset": "units of the debt asset (USD only at a debt price of 1)",
    "asset": "units of the volatile collateral asset (ETH)",
    "usd_per_debt_asset": "price of one unit of the debt asset in USD",
    "count": "a number of things (events, positions, paths, steps)",
    "frac": "a fraction (0.01 = 1%)",
    "tvl_frac": "a fraction of TVL, the initial collateral value in USD",
    "ratio": "a ratio of like quantities, not bounded by 1",
    "h": "hours",
    "s": "seconds",
    "reward": "the env's reward units (see its docstring's Rewards section)",
    "as_metric": "the unit of the metric this record or estimate is about",
    "as_param": "the unit of the parameter it names",
    "label": "not a quantity: a name, id, seed, version, flag, path, command or text",
    "object": "a nested object whose keys are result keys too",
    "asset_by_symbol": "per-asset amounts in each asset's own units, in an object keyed by symbol",
}
"""The allowed units."""

OUTPUTS: dict[str, str] = {
    "simulate": "`levgym simulate --json` (means over envs)",
    "stress": "`levgym stress`: summary.json and `--json`",
    "paths.csv": "`levgym stress`: paths.csv columns (one row per path)",
    "evaluate": "`levgym evaluate --json`",
    "results.json": "`levgym benchmark`: results.json",
    "results.csv": "`levgym benchmark`: results.csv columns",
    "sweep": "`levgym sweep`: results.json",
    "sweep.csv": "`levgym sweep`: results.csv columns (one row per trial)",
    "validate": "`levgym validate --json`",
}
"""Every output checked against the registry, with where it comes from."""

SHAPES = ("value", "map", "map:map")
"""``value``: a scalar, a list, or a nested object whose keys are result keys; ``map``: an object
keyed by data (scenario, env id, policy, file label) whose values are ``value``s; ``map:map``:
two such levels."""


@dataclass(frozen=True)
class ResultKey:
    """One result key: its unit, a one-line description and the outputs that emit it."""

    name: str
    unit: str
    description: str
    outputs: tuple[str, ...]
    shape: str = "value"


REGISTRY: dict[str, ResultKey] = {}


def _add(
    name: str, unit: str, description: str, outputs: Iterable[str], shape: str = "value"
) -> None:
    if name in REGISTRY:
        raise ValueError(f"result key {name!r} is declared twice")
    if unit not in UNITS:
        raise ValueError(f"result key {name!r}: unit {unit!r} is unknown; allowed {sorted(UNITS)}")
    outs = tuple(outputs)
    unknown = [o for o in outs if o not in OUTPUTS]
    if unknown:
        raise ValueError(f"result key {name!r}: outputs {unknown} unknown; allowed {list(OUTPUTS)}")
    if shape not in SHAPES:
        raise ValueError(f"result key {name!r}: shape {shape!r} unknown; allowed {SHAPES}")
    REGISTRY[name] = ResultKey(name, unit, description, outs, shape)


SIM = ("simulate",)
ST = ("stress",)
PATHS = ("paths.csv",)
EV_BENCH = ("evaluate", "results.json")
BENCH = ("results.json",)
CONTRACT = (
    "The `simulate --json` contract keeps this `_usd` name; the value is in debt-asset units."
)

# ---------------------------------------------------------------- run description (labels)
_add(
    "scenario",
    "label",
    "scenario name (or `csv:<file>` for a replayed CSV)",
    ("simulate", "stress", "results.csv"),
)
_add(
    "seed",
    "label",
    "root random seed of the run (evaluate, benchmark suite: the first held-out seed)",
    ("simulate", "stress", "evaluate", "results.json", "validate"),
)
_add(
    "replayed",
    "label",
    "symbols replayed from `--price-csv` (multi-asset preset; the others are simulated "
    "conditionally on them)",
    ("simulate", "stress"),
)
_add("num_envs", "count", "markets simulated at once", SIM)
_add(
    "positions",
    "count",
    "position slots per market (per path in stress, per book in validate)",
    ("simulate", "stress", "validate"),
)
_add("steps", "count", "governance periods simulated", SIM)
_add("backend", "label", "array backend (numpy, torch, numba)", ("simulate", "stress"))
_add("dtype", "label", "float precision", ("simulate", "stress"))
_add(
    "command",
    "label",
    "the command line that reproduces the run",
    ("stress", "results.json", "validate"),
)
_add("argv", "label", "the command as typed (null when not run from the `levgym` script)", ST)
_add("scenario_overrides", "label", "`--set scenario.KEY=VALUE` overrides", ST, "map")
_add(
    "preset",
    "label",
    "protocol preset (see `levgym.engine.params.PRESETS`)",
    ("stress", "validate"),
)
_add("sets", "label", "the `--set` overrides as given", ST)
_add("horizon_hours", "h", "length of each path", ST)
_add("substeps", "count", "substeps per path", ST)
_add("batch_size", "count", "paths simulated at once", ST)
_add(
    "bad_debt_definition",
    "label",
    "`written_off` or `written_off_plus_underwater` (multi-asset preset: `deficits_at_start_prices`)",
    ST,
)
_add("bad_debt_definition_text", "label", "the bad-debt definition in words", ST)
_add("se_method", "label", "standard-error method (`analytic` or `bootstrap`)", ST)
_add("wall_time_s", "s", "wall time of the command", ST)
_add(
    "executor",
    "label",
    "where the batches ran: `this process` or `ray (W workers x T thread(s), ADDRESS)` (the "
    "numbers do not depend on it)",
    ST,
)
_add("out_dir", "label", "the report folder", ST)
_add("files", "label", "report files by description", ST, "map")

# ---------------------------------------------------------------- simulate: collateral (asset)
for _name, _text in (
    ("initial_collateral_asset", "collateral at the start"),
    ("final_collateral_asset", "collateral at the end"),
    ("seized_collateral_asset", "collateral seized by liquidators"),
    ("added_collateral_asset", "collateral added by defensive borrowers"),
    ("withdrawn_collateral_asset", "collateral withdrawn (deleveraging sales, exits)"),
    ("protocol_fee_asset", "protocol's share of liquidation bonuses"),
    ("keeper_sold_asset", "collateral background keepers sold (pool and off-pool venues)"),
    ("keeper_venue_sold_asset", "the part of it sold off the pool (market.keeper_venue_frac)"),
    (
        "keeper_aggregator_sold_asset",
        "the part of it routed through the aggregator route (market.keeper_aggregator_depth_usd)",
    ),
    ("keeper_cex_sold_asset", "the part of it routed to the CEX leg (market.keeper_cex_depth_usd)"),
):
    _add(_name, "asset", _text, SIM)

# ---------------------------------------------------------------- simulate: the contract's debt keys
_DEBT_KEYS = (
    ("initial_debt", "debt at the start", "at the start debt price"),
    ("final_debt", "debt at the end", "at the end debt price"),
    ("borrowed", "debt borrowed", "at each substep's debt price"),
    ("interest", "interest accrued on debt", "at each substep's debt price"),
    ("repaid_by_borrowers", "debt repaid by borrowers", "at each substep's debt price"),
    ("repaid_by_liquidators", "debt repaid by liquidators", "at each substep's debt price"),
    (
        "bad_debt",
        "bad debt written off (debt left on positions with no collateral)",
        "at the debt price of the substep of each write-off",
    ),
)
# the stocks and borrowing are in stress's paths.csv too (USD only there)
_IN_PATHS = ("initial_debt", "final_debt", "borrowed")
for _name, _text, _price in _DEBT_KEYS:
    _add(f"{_name}_usd", "debt_asset", f"{_text}, debt-asset units. {CONTRACT}", SIM)
    _outs = ("simulate", "paths.csv") if _name in _IN_PATHS else SIM
    _add(f"{_name}_value_usd", "usd", f"{_text}, valued in USD {_price}", _outs)
_add("debt_price_start_usd", "usd_per_debt_asset", "debt-asset price at the start", SIM)
_add(
    "debt_price_end_usd",
    "usd_per_debt_asset",
    "debt-asset price at the end",
    ("simulate", "paths.csv"),
)

# ---------------------------------------------------------------- simulate: the multi-asset preset
# `levgym simulate --preset aave_v3_ethereum` (levgym.simulation_portfolio): per-asset dicts keyed
# by symbol, in asset units, so that both accounting identities hold per asset from the JSON.
_add("reserves", "label", "symbols of the reserves (multi-asset preset)", ("simulate", "stress"))
for _name, _text in (
    ("initial_collateral_by_asset", "collateral at the start"),
    ("final_collateral_by_asset", "collateral at the end"),
    (
        "seized_collateral_by_asset",
        "collateral that left positions in liquidations (the liquidator's and the protocol fee)",
    ),
    ("added_collateral_by_asset", "collateral added by defensive borrowers (0: passive books)"),
    (
        "withdrawn_collateral_by_asset",
        "collateral withdrawn by rebalancing defenders (0 unless borrowers.rebalance)",
    ),
    ("protocol_fee_by_asset", "collateral the treasury took from liquidation bonuses"),
    ("initial_debt_by_asset", "debt at the start"),
    ("final_debt_by_asset", "debt at the end"),
    ("borrowed_by_asset", "debt borrowed by rebalancing defenders (0 unless borrowers.rebalance)"),
    ("interest_by_asset", "interest accrued on debt"),
    ("repaid_by_borrowers_by_asset", "debt repaid by defensive borrowers (0: passive books)"),
    ("repaid_by_liquidators_by_asset", "debt repaid by liquidators"),
    ("bad_debt_by_asset", "debt written off into the reserves' deficits (v3.3 deficit)"),
    (
        "deficit_covered_by_asset",
        "deficit the treasury covered from its revenue of the same reserve "
        "(eliminateReserveDeficit; 0 with market.deficit_cover=none)",
    ),
    (
        "treasury_interest_by_asset",
        "the reserve factor's share of the interest, to the treasury",
    ),
    (
        "final_treasury_by_asset",
        "the treasury's balance at the end: treasury interest + protocol fee - deficit covered",
    ),
):
    _add(_name, "asset_by_symbol", f"{_text}, per asset (multi-asset preset)", SIM, "map")
for _name, _text in (
    ("initial_collateral_start_usd", "collateral at the start"),
    ("final_collateral_start_usd", "collateral at the end"),
    ("seized_collateral_start_usd", "collateral seized"),
    ("initial_debt_start_usd", "debt at the start"),
    ("final_debt_start_usd", "debt at the end"),
    ("interest_start_usd", "interest accrued"),
    ("repaid_by_liquidators_start_usd", "debt repaid by liquidators"),
    ("bad_debt_start_usd", "debt written off (deficits)"),
    ("added_collateral_start_usd", "collateral added by defensive borrowers"),
    ("repaid_by_borrowers_start_usd", "debt repaid by defensive borrowers"),
    ("withdrawn_collateral_start_usd", "collateral withdrawn by rebalancing defenders"),
    ("borrowed_start_usd", "debt borrowed by rebalancing defenders"),
    ("deficit_covered_start_usd", "deficit covered by the treasury"),
    ("deficit_outstanding_start_usd", "deficit written off and not covered"),
    (
        "lender_loss_start_usd",
        "deficit the lenders paid (only with market.deficit_cover=reserves_then_lenders)",
    ),
):
    _add(_name, "usd", f"{_text}, all assets valued at the start prices (multi-asset preset)", SIM)
_add(
    "lender_loss_by_asset",
    "asset_by_symbol",
    "deficit the lenders of the reserve paid, their supply falling by it (only with "
    "market.deficit_cover=reserves_then_lenders), per asset (multi-asset preset)",
    SIM,
    "map",
)
for _name, _text in (
    ("keeper_sold_by_asset", "collateral the background keepers sold (pool and off-pool venues)"),
    ("keeper_venue_sold_by_asset", "the part of it sold to the fixed-share venue"),
    ("keeper_aggregator_sold_by_asset", "the part of it sold through the aggregator route"),
    ("keeper_cex_sold_by_asset", "the part of it routed to the CEX leg"),
    ("keeper_cex_pending_by_asset", "collateral the keepers still hold for the CEX leg at the end"),
):
    _add(
        _name,
        "asset_by_symbol",
        f"{_text}, per asset (multi-asset preset; only with off-pool venues: "
        "market.keeper_venue_frac, keeper_aggregator_depth_usd or keeper_cex_depth_usd)",
        SIM,
        "map",
    )
for _name, _text in (
    ("fundamental_min_over_start_by_reserve", "lowest fundamental price over the start price"),
    ("pool_min_over_start_by_reserve", "lowest pool price (USD) over the start pool price"),
):
    _add(
        _name,
        "ratio",
        f"{_text}, per asset (multi-asset preset; only with market.statistics=true)",
        SIM,
        "map",
    )
_add(
    "deficit_cover",
    "label",
    "when deficits are covered: `none`, `treasury_each_step` or `reserves_then_lenders` "
    "(multi-asset preset, `--set market.deficit_cover=...`)",
    ("simulate", "stress"),
)
_add(
    "defensive_frac",
    "frac",
    "share of slots that defend (top up or repay below a trigger; multi-asset preset, "
    "`--set borrowers.defensive_frac=...`)",
    ("simulate", "stress"),
)
_add(
    "keeper_pnl_usd",
    "usd",
    "keepers' result: USDC from sales less USDC for purchases less gas (multi-asset preset)",
    SIM,
)

# ---------------------------------------------------------------- simulate: several protocols
# `levgym simulate --protocols a,b,c` (levgym.simulation_multiprotocol): the multi-asset keys
# above as totals over the protocols, plus these.
_add("protocols", "label", "protocol presets on the shared markets, in order (`--protocols`)", SIM)
_add("margin", "label", "margin mode: `per_protocol` or `unified` (`--protocols`)", SIM)
_add(
    "isolated_markets",
    "label",
    "each protocol traded against its own pools holding its share of the depth (`--protocols`)",
    SIM,
)
for _name, _text in (
    (
        "bad_debt_usd_by_protocol",
        "debt written off per protocol (Aave deficits, Morpho socialised bad debt, Compound "
        "absorb shortfall), USD at start prices",
    ),
    (
        "liquidated_usd_by_protocol",
        "debt repaid by liquidators per protocol (Compound: absorbed debt less its shortfall), "
        "USD at start prices",
    ),
    (
        "revenue_usd_by_protocol",
        "protocol income per protocol (reserve-factor interest and liquidation fees; Compound: "
        "change of base reserves plus collateral held (at the final prices) plus shortfall), USD at start prices; "
        "revenue minus bad debt is the change of the protocol's equity",
    ),
    (
        "contagion_bad_debt_usd_by_protocol",
        "bad debt per protocol on shared markets minus on isolated markets, same paths and "
        "books (`--contagion`), USD at start prices",
    ),
    (
        "contagion_liquidated_usd_by_protocol",
        "debt liquidated per protocol on shared markets minus on isolated markets (`--contagion`), "
        "USD at start prices",
    ),
):
    _add(_name, "usd", f"{_text}, by protocol name", SIM, "map")
_add(
    "by_protocol",
    "object",
    "per-protocol detail by protocol name: `liquidations` and the per-asset dicts "
    "(`*_by_asset`, asset units)",
    SIM,
    "map",
)

# ---------------------------------------------------------------- simulate: other outcomes
_add("liquidations", "count", "liquidation calls", ("simulate", "paths.csv"))
_add(
    "cascade_rounds_max",
    "count",
    "most cascade rounds in one substep (simulate: max over envs)",
    ("simulate", "paths.csv"),
)
_add(
    "positions_liquidated",
    "count",
    "positions liquidated at least once (paths.csv: of the positions open at the start)",
    ("simulate", "paths.csv"),
)
_add("arrivals", "count", "borrowers that arrived", SIM)
_add("exits", "count", "borrowers that left", SIM)
_add(
    "protocol_fee_usd",
    "usd",
    "protocol's share of liquidation bonuses, valued at the oracle price of each liquidation",
    SIM,
)
_add(
    "reserve_income_usd",
    "usd",
    "interest paid to reserves (reserve factor), valued at each substep's debt price",
    SIM,
)
_add("reserve_income_debt_asset", "debt_asset", "interest paid to reserves, debt-asset units", SIM)
_add(
    "lender_loss_usd",
    "usd",
    "bad debt not covered by reserves (lenders' loss), valued at the write-off's debt price",
    ("simulate", "paths.csv"),
)
_add(
    "lender_loss_debt_asset",
    "debt_asset",
    "bad debt not covered by reserves, debt-asset units",
    SIM,
)
_add(
    "keeper_profit_usd",
    "usd",
    "background keepers' profit: sale proceeds minus debt repaid (each at its substep's debt "
    "price) minus gas",
    ("simulate", "paths.csv"),
)
_add(
    "revenue_usd",
    "usd",
    "protocol revenue: reserve income (at each substep's debt price) plus protocol fees (at the "
    "oracle); evaluate: per episode, from the env's `revenue_value_usd` info",
    ("simulate", "paths.csv", "evaluate", "results.json"),
)
_add(
    "underwater_shortfall_usd",
    "usd",
    "debt minus collateral value (at the oracle) of open positions underwater at the end, valued "
    "at the end debt price",
    ("simulate", "paths.csv"),
)
_add(
    "tvl_usd",
    "usd",
    "TVL: initial collateral times the start fundamental price (stress summary: mean over paths)",
    ("simulate", "stress", "paths.csv"),
)
_add(
    "fundamental_min_over_start",
    "ratio",
    "lowest fundamental price over the start price",
    ("simulate", "paths.csv"),
)
_add(
    "pool_min_over_start",
    "ratio",
    "lowest pool price over the start price",
    ("simulate", "paths.csv"),
)
_add(
    "amplification",
    "ratio",
    "pool drawdown over fundamental drawdown (1 when the fundamental fell less than 1e-6)",
    ("simulate", "paths.csv"),
)

# ---------------------------------------------------------------- stress: paths.csv
for _name, _unit, _text in (
    ("path", "label", "path index"),
    ("batch", "label", "batch index"),
    ("batch_seed", "label", "integer seed of the path's batch"),
    (
        "bad_debt_measured_usd",
        "usd",
        "bad debt of the path under the run's `bad_debt_definition` (the loss the VaR is of)",
    ),
    (
        "written_off_bad_debt_usd",
        "usd",
        "bad debt written off, valued at the debt price of the substep of each write-off",
    ),
    ("written_off_bad_debt_debt_asset", "debt_asset", "bad debt written off, debt-asset units"),
    ("initial_positions", "count", "positions open at the start"),
    ("liquidated_position_frac", "frac", "share of the initial positions liquidated at least once"),
    ("fundamental_end_over_start", "ratio", "fundamental price at the end over the start price"),
):
    _add(_name, _unit, _text, PATHS)
_add(
    "liquidated_usd",
    "usd",
    "debt repaid by liquidators, valued at each substep's debt price (evaluate: per episode, "
    "at the debt price at the end of each env step)",
    ("paths.csv", "evaluate", "results.json"),
)

# ---------------------------------------------------------------- stress: summary estimates
_SE = "standard error of `{}`"
LEVELS_PCT = tuple(round(100 * level) for level in RISK_LEVELS)


def _with_se(name: str, unit: str, text: str, outputs: tuple[str, ...] = ST) -> None:
    _add(name, unit, text, outputs)
    _add(f"{name}_se", unit, _SE.format(name), outputs)


_add("paths", "count", "Monte Carlo paths", ST)
for _pct in LEVELS_PCT:
    for _u, _unit, _of in (("usd", "usd", "USD"), ("tvl_frac", "tvl_frac", "share of TVL")):
        _with_se(
            f"var_{_pct}_bad_debt_{_u}",
            _unit,
            f"VaR {_pct}% of bad debt per path (`bad_debt_measured_usd`), {_of}",
        )
        _with_se(
            f"cvar_{_pct}_bad_debt_{_u}",
            _unit,
            f"CVaR {_pct}% (expected shortfall) of bad debt per path, {_of}",
        )
        _with_se(
            f"lar_{_pct}_liquidated_{_u}",
            _unit,
            f"liquidations at risk: {_pct}% quantile of debt liquidated per path (`liquidated_usd`), {_of}",
        )
for _name, _text in (("bad_debt", "bad debt per path"), ("liquidated", "debt liquidated per path")):
    for _u, _unit, _of in (("usd", "usd", "USD"), ("tvl_frac", "tvl_frac", "share of TVL")):
        _with_se(f"mean_{_name}_{_u}", _unit, f"mean {_text}, {_of}")
for _name, _text in (
    ("prob_bad_debt", "probability that a path has bad debt"),
    ("prob_any_liquidation", "probability that a path has a liquidation"),
):
    _with_se(_name, "frac", _text)
    _add(f"{_name}_ci95", "frac", f"Wilson 95% interval [low, high] of `{_name}`", ST)
_with_se("prob_liquidation", "frac", "probability that an initial position is liquidated")
_add(
    "amplification_min_drawdown_frac",
    "frac",
    "amplification is summarized over paths whose fundamental fell at least this much",
    ST,
)
_add("amplification_paths", "count", "paths the amplification summary is over", ST)
_with_se("amplification_mean", "ratio", "mean amplification (null when no path qualifies)")
for _q in (50, 95, 99):
    _with_se(f"amplification_p{_q}", "ratio", f"{_q}% quantile of amplification")
_add("amplification_max", "ratio", "largest amplification", ST)
_with_se("mean_revenue_usd", "usd", "mean protocol revenue per path (`revenue_usd`)")
_with_se(
    "mean_final_debt_value_usd",
    "usd",
    "mean final debt per path, valued at each path's end debt price",
)

# ---------------------------------------------------------------- stress: sensitivities
_add("sensitivity_paths", "count", "paths per sensitivity run", ST)
_add(
    "sensitivities",
    "object",
    "finite-difference sensitivities, one record per input and metric",
    ST,
)
for _name, _unit, _text in (
    ("input", "label", "the bumped input (price or a protocol parameter)"),
    ("base_input", "as_param", "the input's value in the run"),
    ("bump", "as_param", "the finite-difference step"),
    ("method", "label", "central, forward or backward differences"),
    ("value", "as_metric", "the metric at the base input"),
    ("value_down", "as_metric", "the metric at the input minus the bump (null when not run)"),
    ("value_up", "as_metric", "the metric at the input plus the bump (null when not run)"),
    ("delta_per_unit", "as_metric", "change of the metric per 0.01 of the input"),
    ("delta_per_unit_se", "as_metric", "standard error of `delta_per_unit`"),
    (
        "gamma_per_unit2",
        "as_metric",
        "second difference per 0.01² of the input (null if one-sided)",
    ),
    ("gamma_per_unit2_se", "as_metric", "standard error of `gamma_per_unit2`"),
):
    _add(_name, _unit, _text, ST)

_add(
    "metric",
    "label",
    "a metric's result key (stress: the one differentiated; results.csv: the row's)",
    ("stress", "results.csv"),
)

# ---------------------------------------------------------------- stress: sweep
_add("sweep", "object", "the parameter sweep on common paths (with `--sweep`)", ST)
_add("axes", "object", "swept parameters, one record each", ST)
_add("key", "label", "a swept parameter, `section.key`", ST)
_add("values", "as_param", "the swept parameter's grid values", ST)
_add("book", "label", "`fixed` or `rescaled`: the initial book across grid points", ST)
_add("frontier_x_metric", "label", "the frontier's benefit axis (revenue, debt or capacity)", ST)
_add("points", "object", "evaluated grid points, one record each", ST)
_add("skipped", "object", "grid points that break a parameter invariant, with the reason", ST)
_add("base", "object", "the preset's own point", ST)
_add("params", "as_param", "a grid point's coordinates by parameter", ST, "map")
_add("reason", "label", "why a grid point was skipped", ST)
_add(
    "mean_initial_debt_value_usd", "usd", "mean initial debt per path, at the start debt price", ST
)
_add("frontier_x", "usd", "the point's benefit coordinate (revenue, debt value or capacity)", ST)
_add("on_frontier", "label", "true when no other point is better on both axes", ST)
_with_se("var_99_minus_base_usd", "usd", "VaR 99% of bad debt minus the preset's, paired on paths")

# ---------------------------------------------------------------- stress: heatmap (summary.json)
_add("heatmap", "object", "liquidation-price distribution of debt (summary.json only)", ST)
_add("price_rel_edges", "ratio", "bin edges: price relative to the start price", ST)
for _when in ("before", "after"):
    _add(
        f"{_when}_debt_usd",
        "usd",
        f"mean debt per path whose liquidation price lies in each bin, {_when} the run, valued "
        "at the debt price of its time",
        ST,
    )
    _add(
        f"{_when}_liquidatable_at_or_above_usd",
        "usd",
        f"cumulative from the top bin: debt liquidatable once the price falls to the bin's lower edge ({_when})",
        ST,
    )
_add("times_h", "h", "times of the recorded liquidation-price profiles", ST)
_add("definition", "label", "the heatmap's definition in words", ST)

# ---------------------------------------------------------------- stress: the multi-asset preset
# `levgym stress --preset aave_v3_ethereum` (levgym.analytics.portfolio_stress).
_add(
    "mean_bad_debt_by_asset_usd",
    "usd",
    "mean deficit per path of each debt reserve, at start prices, by symbol (multi-asset preset)",
    ST,
    "map",
)
for _level in RISK_LEVELS:
    _pct = round(_level * 100)
    _add(
        f"cvar_{_pct}_contribution_by_asset_usd",
        "usd",
        f"Euler allocation of `cvar_{_pct}_bad_debt_usd` to the debt reserves: each reserve's "
        "deficit averaged with the CVaR's tail weights, by symbol; sums to the CVaR "
        "(multi-asset preset)",
        ST,
        "map",
    )
_add(
    "mean_deficit_covered_usd",
    "usd",
    "mean deficit per path the treasury covered, at start prices (multi-asset preset)",
    ST,
)
_add(
    "liquidation_heatmap_by_asset",
    "object",
    "per collateral asset (by symbol): debt that becomes liquidatable as that asset's oracle "
    "price falls, others at their path values at the horizon (multi-asset preset)",
    ST,
    "map",
)
_add("price_fall_frac", "frac", "falls of the asset's oracle price (0.2 = 20% lower)", ST)
_add(
    "liquidatable_debt_usd",
    "usd",
    "mean debt per path of positions with HF < 1 at some fall up to each fall (heatmap)",
    ST,
)
_add(
    "liquidatable_debt_frac",
    "frac",
    "`liquidatable_debt_usd` over the mean debt at the horizon (heatmap)",
    ST,
)
_add("liquidation_heatmap_definition", "label", "the per-asset heatmap's definition in words", ST)
_add("mean_debt_end_usd", "usd", "mean debt per path at the horizon, at the horizon oracle", ST)

# ---------------------------------------------------------------- evaluate and benchmark
_add(
    "env_id",
    "label",
    "Gymnasium env id with its version (`levgym/Governance-v0`)",
    ("evaluate", "results.json", "results.csv"),
)
_add("suite", "label", "evaluation suite name", ("evaluate", "results.json"))
_add("episodes", "count", "episodes per scenario", EV_BENCH)
_add("scenarios", "object", "per-scenario metrics: scenario -> metric -> estimate", EV_BENCH, "map")
_add(
    "policy",
    "label",
    "the policy: a model file, `baseline:<name>`, or a benchmark policy name",
    ("evaluate", "results.csv", "results.json"),
)
_add("levgym_version", "label", "levgym package version", EV_BENCH)
_add("mean", "as_metric", "mean over episodes", ("evaluate", "results.json", "results.csv"))
_add(
    "ci95",
    "as_metric",
    "half-width of the 95% Student-t interval (null for one episode)",
    ("evaluate", "results.json", "results.csv"),
)
_add("n", "count", "episodes behind the estimate", ("evaluate", "results.json", "results.csv"))
# metrics (each an estimate {mean, ci95, n} per scenario)
for _name, _unit, _text in (
    ("return", "reward", "episode return (the env's own reward, summed)"),
    (
        "economic_bad_debt_usd",
        "usd",
        "bad debt written off plus the rise of underwater shortfall over the episode, valued at "
        "the debt price at the end of each env step",
    ),
    (
        "liquidation_loss_usd",
        "usd",
        "users' liquidation losses: collateral value seized beyond the debt repaid (the "
        "CrossProtocolHedger-v0 account's own, less Compound's refund)",
    ),
    ("insolvent", "frac", "share of episodes ended by insolvency"),
    ("pnl_usd", "usd", "liquidator's profit and loss over the episode"),
    ("max_drawdown_usd", "usd", "liquidator's largest fall of equity from its peak"),
    ("seized_asset", "asset", "collateral the liquidator seized"),
    ("gas_usd", "usd", "gas the liquidator paid"),
    ("bankrupt", "frac", "share of episodes ended by the liquidator's bankruptcy"),
):
    _add(_name, _unit, _text, EV_BENCH)
_add("meta", "object", "how the benchmark was produced", BENCH)
_add("env_ids", "label", "Gymnasium ids (with versions) of the envs the benchmark ran", BENCH)
_add("quick", "label", "true for `--quick`", BENCH)
_add("config", "object", "the benchmark configuration", BENCH)
_add("timesteps", "count", "PPO training steps per env id", BENCH, "map")
_add("crash_scenario", "label", "scenario of the parameter-path plot", BENCH)
_add("eval_suite", "object", "the evaluation suite as run", BENCH)
_add("name", "label", "the suite's name", BENCH)
_add("envs", "object", "per env id: scenarios and env kwargs", BENCH, "map")
_add("scenario_names", "label", "scenarios of the suite for one env", BENCH)
_add("env_kwargs", "as_param", "env constructor arguments", BENCH, "map")
_add("git_revision", "label", "git commit of the checkout", BENCH)
_add("python", "label", "Python version", BENCH)
_add("machine", "label", "machine and cores", BENCH)
_add("finished", "label", "ISO time the benchmark finished", BENCH)
_add("timings_s", "s", "wall time per phase", BENCH, "map")
_add("runs", "label", "training run folder per env id", BENCH, "map")
_add(
    "training_scenarios",
    "label",
    "scenario mix PPO trained on per env id (null: the default mix)",
    BENCH,
    "map",
)
_add(
    "objective",
    "reward",
    "mean over scenarios of the mean episode return, per env id and policy",
    BENCH,
    "map:map",
)
_add(
    "objective_ci95",
    "reward",
    "half-width of the objective's 95% interval, per env id and policy",
    BENCH,
    "map:map",
)
_add("results", "object", "evaluate's output per env id and policy", BENCH, "map:map")
_add("governance_env", "label", "the governance env id the benchmark trained and evaluated", BENCH)
_add("with_ceiling", "label", "true when the hindsight ceiling was run (Governance-v1)", BENCH)
_add("with_multiagent", "label", "true when the multi-agent section was run", BENCH)
_add(
    "train_hyper",
    "label",
    "`--hyper` overrides of the training runs per env id (none in the default; `--quick` shrinks "
    "Governance-v1's warm start)",
    BENCH,
    "map",
)
_add(
    "portfolio",
    "label",
    "true when levgym/PortfolioGovernance-v0 was trained and evaluated (`--portfolio`)",
    BENCH,
)
_add(
    "episode_values",
    "as_metric",
    "every episode's value: scenario -> metric -> list (episode i seeded `seed + i`, the same "
    "paths for every policy)",
    BENCH,
    "map",
)
_add(
    "comparisons",
    "object",
    "per env id: the trained policy against each other policy, paired on the same episodes",
    BENCH,
    "map",
)
_add("baseline", "label", "the policy compared against", BENCH)
_add(
    "mean_diff",
    "reward",
    "mean over the suite's episodes of (policy - baseline) episode return",
    BENCH,
)
_add("mean_diff_ci95", "reward", "95% bootstrap (BCa) interval [low, high] of `mean_diff`", BENCH)
_add(
    "effect_size_dz",
    "ratio",
    "standardized paired effect size: mean difference / standard deviation of the differences",
    BENCH,
)
_add(
    "effect_size_dz_ci95", "ratio", "95% bootstrap interval [low, high] of `effect_size_dz`", BENCH
)
_add("p_value", "frac", "two-sided Wilcoxon signed-rank p-value of the paired differences", BENCH)
_add("p_holm", "frac", "`p_value` Holm-corrected over all comparisons of the env", BENCH)
_add(
    "verdict",
    "label",
    "`better` or `worse` (Holm p below 0.05, by the sign of `mean_diff`) or `not significant`",
    BENCH,
)
_add(
    "ceiling",
    "object",
    "per env id: the hindsight ceiling, the best fixed parameter set per episode",
    BENCH,
    "map",
)
_add(
    "ceiling_objective", "reward", "mean over scenarios of the ceiling's mean episode return", BENCH
)
_add("grid_points", "count", "parameter sets the ceiling chose from", BENCH)
_add(
    "segments",
    "count",
    "parts of an episode at whose starts the piecewise ceiling may change its parameters "
    "(1: the fixed ceiling only)",
    BENCH,
)
_add(
    "piecewise_objective",
    "reward",
    "mean over scenarios of the piecewise ceiling's mean episode return (a schedule of grid "
    "points chosen greedily forward in hindsight; never below the fixed ceiling)",
    BENCH,
)
_add("piecewise", "reward", "the piecewise ceiling's episode returns (or their estimate)", BENCH)
_add(
    "share_of_piecewise",
    "ratio",
    "(policy - static) / (piecewise ceiling - static), means over the same episodes",
    BENCH,
)
_add(
    "share_of_piecewise_ci95",
    "ratio",
    "95% paired bootstrap interval of `share_of_piecewise`",
    BENCH,
)
_add("ceiling_segments", "count", "the benchmark config's piecewise ceiling parts", BENCH)
_add(
    "gap_closed",
    "object",
    "per env id and policy: share of the gap between `static` and the ceiling closed",
    BENCH,
    "map:map",
)
_add(
    "share",
    "ratio",
    "(policy - static) / (ceiling - static), means over the same episodes (null: no gap)",
    BENCH,
)
_add("share_ci95", "ratio", "95% paired bootstrap interval [low, high] of `share`", BENCH)
_add(
    "unwinnable",
    "frac",
    "per env id and scenario: share of episodes every evaluated policy ended insolvent (or "
    "bankrupt)",
    BENCH,
    "map:map",
)
# issue 14's liquidator target (agents/liquidator_target.py)
_add(
    "liquidator_target",
    "object",
    "issue 14's target: the benchmark's liquidator procedure against `greedy_hedged` on PnL "
    "and drawdown on the test set, per training seed and scenario of the target "
    "(gbm_high_vol, merton_crash)",
    BENCH,
)
_add(
    "target_met",
    "label",
    "true when the trained liquidator's PnL beats the baseline's (paired Wilcoxon, Holm over "
    "the target's scenarios, p below 0.05) at a mean max drawdown no larger than the "
    "baseline's (per seed: in every scenario; `liquidator_target`'s: for every seed)",
    BENCH,
)
_add("target_scenarios", "object", "per scenario of the target: its record", BENCH, "map")
_add(
    "target_met_by_seed",
    "label",
    "per PPO training seed: `target_met` of that seed's selected model on the test set",
    BENCH,
    "map",
)
_add("baseline_pnl_usd", "usd", "the baseline's mean PnL over the same episodes", BENCH)
_add("pnl_diff_usd", "usd", "mean over episodes of (model - baseline) PnL, paired", BENCH)
_add("pnl_diff_ci95_usd", "usd", "95% bootstrap interval [low, high] of `pnl_diff_usd`", BENCH)
_add("pnl_p_value", "frac", "two-sided Wilcoxon signed-rank p-value of the PnL differences", BENCH)
_add("pnl_p_holm", "frac", "`pnl_p_value` Holm-corrected over the target's scenarios", BENCH)
_add(
    "baseline_max_drawdown_usd",
    "usd",
    "the baseline's mean max drawdown over the same episodes",
    BENCH,
)
_add(
    "drawdown_p_value",
    "frac",
    "two-sided Wilcoxon signed-rank p-value of the paired max-drawdown differences (uncorrected)",
    BENCH,
)
_add("pnl_better", "label", "true when `pnl_diff_usd` > 0 with `pnl_p_holm` below 0.05", BENCH)
_add(
    "drawdown_ok",
    "label",
    "true when the model's mean max drawdown is at most the baseline's",
    BENCH,
)
# the benchmark's liquidator procedure (agents/liquidator_procedure.py): its settings in the
# config and per training seed the checkpoint it selected
_add(
    "liquidator",
    "object",
    "the benchmark's liquidator procedure (issue 14): two warm-started Liquidator-v2 runs per "
    "seed, one checkpoint selected on a validation set, judged on a test set",
    BENCH,
)
_add("procedure", "object", "the liquidator procedure the target's verdict comes from", BENCH)
_add("timesteps_per_run", "count", "PPO training steps of each of the procedure's runs", BENCH)
_add("checkpoint_freq", "count", "training steps between saved checkpoints", BENCH)
_add(
    "risk_aversions",
    "as_param",
    "`env_kwargs.risk_aversion` of the procedure's runs of one seed (one run each)",
    BENCH,
)
_add(
    "init_action_mean",
    "as_param",
    "the untrained policy's mean action (take, sell, hedge; greedy_hedged's)",
    BENCH,
)
_add("log_std_init", "as_param", "`policy_kwargs.log_std_init` of the runs", BENCH)
_add("train_scenarios", "label", "`env_kwargs.scenarios` of the training runs", BENCH)
_add("validation_episodes", "count", "episodes per scenario of the validation set", BENCH)
_add("validation_seed", "label", "first evaluation seed of the validation set", BENCH)
_add("test_episodes", "count", "episodes per scenario of the test set", BENCH)
_add("test_seed", "label", "first evaluation seed of the test set", BENCH)
_add("extra_hyper", "label", "more `--hyper` overrides of every run of the procedure", BENCH)
_add(
    "by_seed",
    "object",
    "per training seed: the selected checkpoint and its test-set verdict",
    BENCH,
    "map",
)
_add("selected", "object", "the checkpoint the procedure selected for this seed", BENCH)
_add("run", "label", "the training run folder of the selected checkpoint", BENCH)
_add("risk_aversion", "as_param", "`env_kwargs.risk_aversion` of the selected run", BENCH)
_add("checkpoint_steps", "count", "training steps of the selected checkpoint", BENCH)
_add(
    "validation_score",
    "ratio",
    "the selected checkpoint's weakest margin of the target on the validation set, in standard "
    "errors (>= 0: the target holds there)",
    BENCH,
)
_add(
    "validation_target_met",
    "label",
    "true when the selected checkpoint meets the target on the validation set",
    BENCH,
)
_add("model_path", "label", "the selected checkpoint's model file", BENCH)
_add(
    "models",
    "label",
    "the `ppo` model file per env id (the liquidator's: the first seed's selected checkpoint)",
    BENCH,
    "map",
)

# metrics of evaluate, also the values of results.csv's `metric` column
METRICS: dict[str, tuple[str, ...]] = {
    "levgym/Governance-v0": (
        "return",
        "economic_bad_debt_usd",
        "revenue_usd",
        "liquidated_usd",
        "liquidation_loss_usd",
        "insolvent",
    ),
    "levgym/Governance-v1": (
        "return",
        "economic_bad_debt_usd",
        "revenue_usd",
        "liquidated_usd",
        "liquidation_loss_usd",
        "insolvent",
    ),
    "levgym/Liquidator-v1": (
        "return",
        "pnl_usd",
        "max_drawdown_usd",
        "seized_asset",
        "gas_usd",
        "bankrupt",
    ),
}
METRICS["levgym/Liquidator-v2"] = METRICS["levgym/Liquidator-v1"]
METRICS["levgym/Liquidator-v3"] = METRICS["levgym/Liquidator-v1"]
METRICS["levgym/Governance-v2"] = METRICS["levgym/Governance-v1"]
METRICS["levgym/PortfolioGovernance-v0"] = METRICS["levgym/Governance-v1"]
METRICS["levgym/CrossProtocolHedger-v0"] = (
    "return",
    "equity_change_usd",
    "liquidation_loss_usd",
    "cost_usd",
    "liquidated",
)
"""Per-episode metrics of each env id, in table order (agents.evaluate uses these)."""


# ---------------------------------------------------------------- levgym sweep (Ray Tune trials)
def _also(name: str, *outputs: str) -> None:
    """Declare an existing key for more outputs (same unit and meaning)."""
    k = REGISTRY[name]
    REGISTRY[name] = ResultKey(k.name, k.unit, k.description, (*k.outputs, *outputs), k.shape)


SW = ("sweep",)
SW_BOTH = ("sweep", "sweep.csv")
_also("command", "sweep")
_also("seed", *SW_BOTH)
_also("metric", "sweep")
_also("wall_time_s", "sweep")
_add("sweep_yaml", "label", "the sweep file as resolved (YAML text)", SW)
_add("trials", "object", "one record per trial (configuration x seed)", SW)
_add("trial", "label", "a trial's name: `<configuration>__seed<k>`", SW)
_add(
    "configuration",
    "label",
    "a hyperparameter point, `key=value,...` (`default`: the config's own values)",
    SW_BOTH,
)
_add("run_dir", "label", "the trial's `levgym train` run folder", SW_BOTH)
_add("train_command", "label", "the `levgym train` command that reproduces the trial", SW)
_add(
    "final_ep_rew_mean",
    "reward",
    "last logged mean training-episode return (`rollout/ep_rew_mean` in progress.csv)",
    SW_BOTH,
)
_add("best_ep_rew_mean", "reward", "largest logged `rollout/ep_rew_mean` of the run", SW_BOTH)
_add("trained_timesteps", "count", "environment steps the trial trained", SW_BOTH)
_add("configurations", "object", "per configuration: mean and 95% interval over seeds", SW)
_add("seeds", "label", "the training seeds of a configuration", SW)
_add(
    "final_ep_rew_mean_ci95",
    "reward",
    "half-width of the 95% Student-t interval over seeds of `final_ep_rew_mean` (null: 1 seed)",
    SW,
)
_add(
    "best_ep_rew_mean_ci95",
    "reward",
    "half-width of the 95% Student-t interval over seeds of `best_ep_rew_mean` (null: 1 seed)",
    SW,
)
_add("tensorboard", "label", "the command that shows every trial's TensorBoard logs", SW)


# ---------------------------------------------------------------- benchmark: several training seeds
_also("executor", "results.json")
_add("num_seeds", "count", "PPO training seeds per env (`levgym benchmark --seeds`)", BENCH)
_add(
    "ppo_seeds",
    "object",
    "per env id: the objective of each PPO training seed and their mean, 95% interval (over "
    "seeds) and number",
    BENCH,
    "map",
)
_add("seed_objectives", "reward", "the objective of each PPO training seed's model", BENCH, "map")


# ---------------------------------------------------------------- checks
# ---------------------------------------------------------------- benchmark: multi-agent section
_add(
    "multiagent",
    "object",
    "the multi-agent section: alternating best response of the governor and the agent "
    "liquidators (agents/multiagent.py)",
    BENCH,
)
_add("run_folder", "label", "folder of the multi-agent run (report.md, plots, models)", BENCH)
_add(
    "profiles",
    "object",
    "held-out evaluation per profile (static or trained governor; rule keepers or learning "
    "liquidators)",
    BENCH,
    "map",
)
for _name, _unit, _text in (
    ("governor_return", "reward", "mean episode return of the governor (Governance-v0's reward)"),
    ("bad_debt_tvl_frac", "tvl_frac", "mean bad debt written off per episode"),
    ("liquidator_return", "reward", "mean episode return of an agent liquidator (Liquidator-v1's reward)"),
    ("market_maker_return", "reward", "mean episode return of the market maker"),
    ("agent_claim_share", "frac", "mean share of the liquidations the agent liquidators took"),
    ("mean_liquidation_threshold", "frac", "governor's liquidation threshold, mean over steps"),
    ("mean_ltv", "frac", "governor's LTV, mean over steps"),
    ("mean_liquidation_bonus", "frac", "governor's liquidation bonus, mean over steps"),
    ("mean_slope1_apr", "frac", "governor's slope1 (APR), mean over steps"),
    ("exploitability_rounds", "object", "per round of alternating best response: the estimate" ),
    ("round", "count", "round of alternating best response (1-based)" ),
    ("best_response_gain_governor", "reward", "what a fresh governor trained against the round's liquidators gains over the round's governor" ),
    ("best_response_gain_liquidator", "reward", "what fresh liquidators trained against the round's governor gain over the round's liquidators" ),
    ("exploitability", "reward", "sum of the two gains, each floored at 0 (a NashConv estimate)" ),
):  # fmt: skip
    _add(_name, _unit, _text, BENCH)
# ---------------------------------------------------------------- benchmark: cross-protocol hedger section
_add(
    "cross_protocol_hedger",
    "object",
    "the levgym/CrossProtocolHedger-v0 section: its baselines and a short PPO on the same "
    "held-out episodes (agents/hedger_bench.py)",
    BENCH,
)
_add(
    "hedger_results",
    "object",
    "per policy: mean and 95% interval per episode of return, liquidation_loss_usd, cost_usd "
    "and liquidated",
    BENCH,
    "map",
)
_add(
    "cost_usd",
    "usd",
    "the hedger's protection cost per episode: gas, pool slippage and perp fees paid, less "
    "funding received",
    BENCH,
)
_add("liquidated", "frac", "share of episodes that ended with the account fully liquidated", BENCH)
# the same three are CrossProtocolHedger-v0's per-episode metrics in evaluate (METRICS)
_also("cost_usd", "evaluate")
_also("liquidated", "evaluate")
_add(
    "equity_change_usd",
    "usd",
    "the hedger's account equity at the episode's end less at its start (its summed `pnl_usd` "
    "info: the price move, costs, interest and liquidations)",
    EV_BENCH,
)
_add("train_s", "s", "wall time of the section's PPO training", BENCH)
_add("with_hedger", "label", "true when the cross-protocol hedger section was run", BENCH)
_add("total_s", "s", "wall time of the section (training and evaluation)", BENCH)
# ---------------------------------------------------------------- validate (levgym.analytics.validation)
VAL = ("validate",)
_add(
    "warmup_h",
    "h",
    "hours each book lived before the day started (top level under the held-out protocols: the "
    "grid point chosen on all days; each day's own in its record)",
    VAL,
)
_add(
    "protocol",
    "label",
    "how the scores stay out of sample: `split` (fit period, then test period) or "
    "`leave-one-day-out` / `leave-one-month-out` (each day or month replayed with the grid point "
    "chosen on the others)",
    VAL,
)
_add(
    "arrival_drawdown",
    "ratio",
    "elasticity of arrivals to the trailing 30-day drawdown: arrivals x (close / peak) ** it",
    VAL,
)
_add(
    "hf_path",
    "ratio",
    "elasticity of new borrowers' health-factor margin to the trailing 30-day return: their drawn "
    "excess over the floor x (close / close 30 days before) ** -it (0: off)",
    VAL,
)
_add(
    "bridge",
    "label",
    "held-out grid point: 1 replays with a Brownian bridge between the hourly closes "
    "(`--path bridge`), 0 without",
    VAL,
)
_add(
    "held_out",
    "object",
    "leave-one-day-out / leave-one-month-out: one record per held-out day or month, the grid "
    "point chosen on the other days or months",
    VAL,
)
_add(
    "group",
    "label",
    "the held-out group: a UTC month (YYYY-MM) or day (YYYY-MM-DD)",
    VAL,
)
_add("held_out_loss", "ratio", "the fit loss of the chosen point on the other months' days", VAL)
_add(
    "all_days_choice",
    "object",
    "held-out protocols: the grid point that fits all days best (what a preset would take)",
    VAL,
)
_add("all_days_loss", "ratio", "its fit loss on all days", VAL)
_add(
    "grid",
    "object",
    "held-out protocols: one record per grid point, replayed at the grid's size",
    VAL,
)
_add(
    "test_scores",
    "object",
    "the grid point's scores on the test days (a diagnostic: no choice reads them)",
    VAL,
)
_add("grid_draws", "count", "books per day in the grid's replays", VAL)
_add("grid_positions", "count", "slots per book in the grid's replays", VAL)
_add("draws", "count", "books drawn per replayed day (the model is their mean)", VAL)
_add(
    "replay_gas",
    "label",
    "gas of the replays: `congestion` (the congestion fit on the hourly path) or `flat` (30 gwei)",
    VAL,
)
_add(
    "replay_path",
    "label",
    "price path of the replays: `finest` (10-minute closes on the days the data hold them), "
    "`hourly`, or `bridge` (finest with a Brownian bridge between the hourly closes)",
    VAL,
)
_add("fit_period", "label", "days the book was fitted on (first..last date)", VAL)
_add("test_period", "label", "days held out of the fit (first..last date)", VAL)
_add("book_collateral_usd", "usd", "collateral value of each drawn book", VAL)
_add("calibration_days", "object", "one record per replayed day", VAL)
_add("date", "label", "UTC date", VAL)
_add("split", "label", "`fit` or `test`", VAL)
_add("fall_frac", "frac", "ETH fall that day: 1 - lowest hourly close / close at 00:00 UTC", VAL)
_add(
    "real_usd",
    "usd",
    "debt Aave v2 liquidators repaid that day (WETH collateral, stablecoin debt)",
    VAL,
)
_add(
    "model_usd",
    "usd",
    "debt the model's liquidators repaid that day, warmed-up book (mean over draws)",
    VAL,
)
_add("model_fresh_usd", "usd", "the same with a fresh book (no warm-up)", VAL)
_add("real_share", "frac", "the day's real volume over the sum over its set's days", VAL)
_add("model_share", "frac", "the day's model volume over the sum over its set's days", VAL)
_add("log2_ratio", "ratio", "log2 of model share over real share, both floored at 0.05 / days", VAL)
_add("real_accounts", "count", "Aave accounts (borrowers) liquidated that day", VAL)
_add(
    "real_top_account_share",
    "frac",
    "the largest account's share of the day's real volume (0 on a day without liquidations)",
    VAL,
)
_add(
    "real_repeat_share",
    "frac",
    "share of the day's real volume repaid by accounts liquidated on an earlier day of the data "
    "(from 2020-12-17)",
    VAL,
)
_add(
    "largest_account",
    "object",
    "the account that repaid the most over the test days: address, volume_share, dates",
    VAL,
)
_add("address", "label", "a borrower account's address", VAL)
_add("volume_share", "frac", "its share of the test days' real volume", VAL)
_add("dates", "label", "the test days it was liquidated on (UTC dates)", VAL)
_add("scores", "object", "scores by set: fit, test, fresh_fit, fresh_test", VAL, "map")
_add("days", "count", "days in the set", VAL)
_add("spearman", "ratio", "Spearman rank correlation of daily model and real volumes", VAL)
_add(
    "within_2x_frac", "frac", "share of days whose model share is within 2x of the real share", VAL
)
_add("rms_log2", "ratio", "root mean square of the daily log2 ratios", VAL)
_add(
    "timing_corr",
    "ratio",
    "Pearson correlation of the 24 hourly volumes, mean over the set's 5 biggest real days",
    VAL,
)
_add(
    "noise_ceiling",
    "object",
    "test-set scores of the model against one draw of its own book, mean over draws",
    VAL,
)
_add(
    "noise_ceiling_events",
    "object",
    "test-set scores of the model's expected volumes against histories made of Aave's own "
    "liquidations (the test days' real borrower-days: their sizes and count), mean over draws",
    VAL,
)
_add("borrower_days", "count", "real liquidated borrowers summed over the set's days", VAL)
_add("sims", "count", "histories drawn", VAL)
_add("big_days", "object", "the test set's biggest real days with their hourly volumes", VAL)
_add("real_hourly_usd", "usd", "real debt repaid per UTC hour", VAL)
_add("model_hourly_usd", "usd", "model debt repaid per UTC hour (mean over draws)", VAL)


# ---------------------------------------------------------------- stress: several protocols
# `levgym stress --protocols a,b,c` (levgym.analytics.multiprotocol_stress).
_also("protocols", *ST)
_also("margin", *ST)
_also("contagion_bad_debt_usd_by_protocol", *ST)
_also("contagion_liquidated_usd_by_protocol", *ST)
_add(
    "tvl_usd_by_protocol",
    "usd",
    "mean initial collateral value per path of each protocol at start prices, by protocol name",
    ST,
    "map",
)
_add(
    "bad_debt_tail_by_protocol",
    "object",
    "per protocol (by name): VaR/CVaR, mean and probability of its bad debt per path and its mean "
    "liquidated debt, shared markets, the headline margin mode (`_tvl_frac`: of its own TVL)",
    ST,
    "map",
)
for _level in RISK_LEVELS:
    _pct = round(_level * 100)
    _add(
        f"cvar_{_pct}_contribution_usd_by_protocol",
        "usd",
        f"Euler allocation of the systemic `cvar_{_pct}_bad_debt_usd` to the protocols: each "
        "protocol's bad debt averaged with the CVaR's tail weights, by name; sums to the CVaR",
        ST,
        "map",
    )
    _add(
        f"cvar_{_pct}_contagion_share_frac",
        "frac",
        f"share of the systemic `cvar_{_pct}_bad_debt_usd` that is contagion: the Euler "
        "contribution of (shared minus isolated markets) on the shared run's tail paths, over the "
        "CVaR (null when the CVaR is 0)",
        ST,
    )
_with_se(
    "mean_contagion_bad_debt_usd",
    "usd",
    "mean per path of systemic bad debt on shared markets minus isolated markets, same paths and "
    "books (common random numbers; paired standard error)",
)
_add(
    "contagion_bad_debt_share_frac",
    "frac",
    "`mean_contagion_bad_debt_usd` over the mean systemic bad debt on shared markets (null when 0)",
    ST,
)
_add("contagion_share_definition", "label", "the contagion share's definition in words", ST)
_add(
    "mean_underwater_usd_by_protocol",
    "usd",
    "mean per path of the shortfall (debt minus supplied assets at the horizon oracle) of positions "
    "still open and under water at the horizon, by protocol name (shared markets, headline margin); "
    "not in the bad debt",
    ST,
    "map",
)
_add(
    "mean_underwater_usd",
    "usd",
    "mean per path of the shortfall of positions still open and under water at the horizon, all "
    "protocols (`bad_debt_by_run`)",
    ST,
)
_add(
    "bad_debt_by_run",
    "object",
    "per run on the same paths and books (`shared_per_protocol`, `shared_unified`, `isolated`): "
    "VaR/CVaR, mean and probability of systemic bad debt, mean liquidated debt",
    ST,
    "map",
)
_add(
    "unified_minus_per_protocol",
    "object",
    "paired differences, unified minus per-protocol margin on the same paths: mean bad debt and "
    "liquidated debt (analytic se of the per-path difference), VaR/CVaR of bad debt (difference "
    "of the estimates, paired-bootstrap se)",
    ST,
)


def problems(obj: Mapping[str, Any], output: str) -> list[str]:
    """Every key of ``obj`` (recursively) that is not declared for ``output``, as messages."""
    if output not in OUTPUTS:
        raise ValueError(f"output {output!r} is unknown; allowed {', '.join(OUTPUTS)}")
    out: list[str] = []
    _walk_record(obj, output, "", out)
    return out


def _walk_record(obj: Mapping[str, Any], output: str, where: str, out: list[str]) -> None:
    for key, value in obj.items():
        path = f"{where}.{key}" if where else str(key)
        entry = REGISTRY.get(str(key))
        if entry is None:
            out.append(f"{path}: key {key!r} is not in levgym.results.REGISTRY")
            continue
        if output not in entry.outputs:
            out.append(f"{path}: key {key!r} is not declared for output {output!r}")
            continue
        _walk_value(value, entry.shape, output, path, out)


def _walk_value(value: Any, shape: str, output: str, where: str, out: list[str]) -> None:
    if shape.startswith("map"):
        if not isinstance(value, Mapping):
            out.append(f"{where}: a {shape} must be an object, got {type(value).__name__}")
            return
        rest = shape.split(":", 1)[1] if ":" in shape else "value"
        for k, v in value.items():
            _walk_value(v, rest, output, f"{where}[{k!r}]", out)
        return
    if isinstance(value, Mapping):
        _walk_record(value, output, where, out)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                _walk_record(item, output, f"{where}[{i}]", out)


def checked(output: str, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` itself, after checking that every key in it is declared for ``output``."""
    found = problems(obj, output)
    if found:
        raise ValueError(f"undeclared result keys in {output}: " + "; ".join(found))
    return obj


def checked_columns(output: str, columns: Iterable[str]) -> tuple[str, ...]:
    """CSV column names, after checking that each is declared for ``output``."""
    cols = tuple(columns)
    checked(output, dict.fromkeys(cols))
    return cols


def unit_of(key: str) -> str:
    """The unit of a declared key."""
    if key not in REGISTRY:
        raise ValueError(f"result key {key!r} is not declared in levgym.results")
    return REGISTRY[key].unit


def markdown_table() -> str:
    """The registry as a Markdown table (docs/output-contract.md carries it; a test keeps them equal)."""
    lines = ["| key | unit | emitted by | meaning |", "|---|---|---|---|"]
    order = list(OUTPUTS)
    # by the first output that emits a key, then in declaration order
    for k in sorted(REGISTRY.values(), key=lambda k: order.index(k.outputs[0])):
        shape = "" if k.shape == "value" else f" ({k.shape})"
        lines.append(f"| `{k.name}`{shape} | {k.unit} | {', '.join(k.outputs)} | {k.description} |")
    units = ["", "| unit | meaning |", "|---|---|"]
    units += [f"| {u} | {text} |" for u, text in UNITS.items()]
    return "\n".join(lines + units) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
