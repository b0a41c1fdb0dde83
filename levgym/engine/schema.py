"""Every field of the engine, declared once: state, drivers, orders and the kernel's parameters.

Each field has its axes, dtype, unit and role. Everything that handles fields by name is
derived from these tables: the :class:`~levgym.engine.state.State` and
:class:`~levgym.engine.drivers.Drivers` classes, the field lists, the fused kernel's packing
(:data:`ENV_ROW`, :data:`DRIVER_ROW`, :data:`PARAM_ROW`: row indices numba reads as constants),
batch select and scatter, backend conversion, the reset of finished envs and the reference
loop's per-env records.

Axes: ``env`` is the batch (E), ``slot`` a position slot (N), ``twap`` the TWAP window, ``step``
the substeps of a driver path. Cross-margin adds ``asset`` (K) and interoperable margin
``protocol`` (P) as further axes of the same tables.

Units: ``asset`` (collateral asset units), ``debt`` (debt-asset units: USD at a debt price of
1; names ending in ``_usd`` on the debt side are in these units, see the output contract),
``usd``, ``frac``, ``apr`` (per year), ``h`` (hours), ``gwei``, ``count``, ``hf`` (health
factor), ``bool``, ``code``.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

AXES = ("env", "slot", "twap", "step", "asset", "protocol", "agent")
AXIS_LETTERS = {
    "env": "E", "slot": "N", "twap": "W", "step": "S", "asset": "K", "protocol": "P", "agent": "M",
}  # fmt: skip
ROLES = (
    "position",  # a slot's balances, changed by the substep
    "behaviour",  # a slot's drawn attributes, never changed by the substep
    "market",  # pool, oracle, prices: changed by the substep
    "param",  # per-env protocol parameters (a governor moves them between steps)
    "accounting",  # the protocol's books
    "start",  # values at the start of the episode, and running extremes
    "counter",  # cumulative flows; the accounting identities are written in these
)
DTYPES = ("float", "bool", "int")


@dataclass(frozen=True)
class Field:
    """One array of the engine."""

    name: str
    axes: tuple[str, ...]
    unit: str
    role: str
    doc: str
    dtype: str = "float"
    reset: str = "fresh"
    """What an autoreset writes: ``fresh`` (the new episode's value) or ``now`` (the shared clock)."""

    def __post_init__(self) -> None:
        if any(a not in AXES for a in self.axes):
            raise ValueError(f"field {self.name}: axes {self.axes}; allowed {AXES}")
        if self.role not in ROLES and self.role not in ("driver", "order"):
            raise ValueError(f"field {self.name}: role {self.role!r}; allowed {ROLES}")
        if self.dtype not in DTYPES:
            raise ValueError(f"field {self.name}: dtype {self.dtype!r}; allowed {DTYPES}")


def _f(name: str, axes: str, unit: str, role: str, doc: str, **kw: Any) -> Field:
    return Field(name, tuple(axes.split()), unit, role, doc, **kw)


E, EN = "env", "env slot"

STATE_SCHEMA: tuple[Field, ...] = (
    # positions [E, N]
    _f("collateral_asset", EN, "asset", "position", "collateral of the slot's position"),
    _f("debt_usd", EN, "debt", "position", "debt of the slot's position"),
    _f("active", EN, "bool", "position", "the slot holds a position", dtype="bool"),
    _f("ever_liquidated", EN, "bool", "position", "liquidated at least once", dtype="bool"),
    _f("kind", EN, "code", "behaviour", "0 passive, 1 defensive, 2 looper", dtype="int"),
    _f("trigger_hf", EN, "hf", "behaviour", "a defensive position acts below this HF"),
    _f("react_prob", EN, "frac", "behaviour", "probability of acting per substep"),
    _f("target_hf", EN, "hf", "behaviour", "a looper's target HF"),
    _f("repays", EN, "bool", "behaviour", "a defensive position repays (else tops up)", dtype="bool"),
    _f("template_collateral_asset", EN, "asset", "behaviour", "collateral of an arrival in the slot"),
    _f("template_hf", EN, "hf", "behaviour", "drawn HF of the slot's position"),
    # market [E]
    _f("fundamental_usd", E, "usd", "market", "off-chain reference price of the asset"),
    _f("pool_asset", E, "asset", "market", "pool reserve of the asset"),
    _f("pool_debt", E, "debt", "market", "pool reserve of the debt asset"),
    _f("pool_liquidity_base", E, "debt", "market", "sqrt(x*y) of the pool at liquidity 1"),
    _f("oracle_usd", E, "usd", "market", "oracle answer"),
    _f("oracle_updated_h", E, "h", "market", "time of the last oracle update", reset="now"),
    _f("twap_buffer_usd", "env twap", "usd", "market", "pool prices of the TWAP window"),
    _f("debt_price_usd", E, "usd", "market", "USD price of the debt asset"),
    _f("gas_gwei", E, "gwei", "market", "gas price"),
    _f("keeper_cex_pending_asset", E, "asset", "market", "collateral keepers hold for the CEX leg, counted at what the CEX quoted when it was routed (its sale at the fundamental when it fills returns that quote moved by the price)"),
    # protocol parameters [E]
    _f("ltv", E, "frac", "param", "maximum loan-to-value"),
    _f("liquidation_threshold", E, "frac", "param", "collateral weight in the HF"),
    _f("liquidation_bonus", E, "frac", "param", "liquidator's bonus"),
    _f("close_factor", E, "frac", "param", "share of debt one call may repay"),
    _f("base_rate_apr", E, "apr", "param", "borrow rate at zero utilization"),
    _f("slope1_apr", E, "apr", "param", "rate added up to optimal utilization"),
    _f("slope2_apr", E, "apr", "param", "rate added above optimal utilization"),
    _f("optimal_utilization_frac", E, "frac", "param", "kink of the rate curve"),
    _f("reserve_factor_frac", E, "frac", "param", "share of interest paid to reserves"),
    _f("borrow_cap_usd", E, "debt", "param", "total debt above which no new borrowing is allowed"),
    _f("supply_cap_asset", E, "asset", "param", "total collateral above which no new collateral is supplied"),
    # protocol accounting [E]
    _f("supply_usd", E, "debt", "accounting", "lenders' supply"),
    _f("reserves_usd", E, "debt", "accounting", "protocol reserves"),
    # starting values and extremes [E]
    _f("initial_collateral_asset", E, "asset", "start", "collateral at the start"),
    _f("initial_debt_usd", E, "debt", "start", "debt at the start"),
    _f("fundamental_start_usd", E, "usd", "start", "fundamental at the start"),
    _f("fundamental_min_usd", E, "usd", "start", "lowest fundamental so far"),
    _f("pool_start_usd", E, "usd", "start", "pool price at the start"),
    _f("pool_min_usd", E, "usd", "start", "lowest pool price so far"),
    # cumulative counters [E]
    _f("added_collateral_asset", E, "asset", "counter", "collateral added by borrowers"),
    _f("withdrawn_collateral_asset", E, "asset", "counter", "collateral withdrawn or sold by borrowers"),
    _f("seized_collateral_asset", E, "asset", "counter", "collateral seized by liquidators"),
    _f("borrowed_usd", E, "debt", "counter", "new borrowing"),
    _f("interest_usd", E, "debt", "counter", "interest accrued"),
    _f("repaid_by_borrowers_usd", E, "debt", "counter", "debt repaid by borrowers"),
    _f("repaid_by_liquidators_usd", E, "debt", "counter", "debt repaid by liquidators"),
    _f("bad_debt_usd", E, "debt", "counter", "debt written off"),
    _f("bad_debt_from_reserves_usd", E, "debt", "counter", "written off debt paid by reserves"),
    _f("lender_loss_usd", E, "debt", "counter", "written off debt paid by lenders"),
    _f("liquidations", E, "count", "counter", "liquidation calls"),
    _f("protocol_fee_asset", E, "asset", "counter", "protocol's share of the bonus"),
    _f("protocol_fee_usd", E, "usd", "counter", "protocol fee at the oracle when taken"),
    _f("reserve_income_usd", E, "debt", "counter", "interest paid to reserves"),
    _f("cascade_rounds_max", E, "count", "counter", "most cascade rounds in one substep"),
    _f("keeper_sold_asset", E, "asset", "counter", "collateral keepers sold (pool and venue)"),
    _f(
        "keeper_venue_sold_asset", E, "asset", "counter",
        "the part of it sold off the pool (market.keeper_venue_frac)",
    ),  # fmt: skip
    _f("keeper_aggregator_sold_asset", E, "asset", "counter", "the part of it routed through the aggregator route (market.keeper_aggregator_depth_usd)"),
    _f("keeper_cex_sold_asset", E, "asset", "counter", "the part of it routed to the CEX leg (market.keeper_cex_depth_usd)"),
    _f("keeper_profit_usd", E, "usd", "counter", "keepers' profit after gas"),
    _f("agent_seized_asset", E, "asset", "counter", "collateral the outside liquidator received"),
    _f("agent_repaid_usd", E, "debt", "counter", "debt the outside liquidator repaid"),
    _f("agent_gas_usd", E, "usd", "counter", "gas the outside liquidator paid"),
    _f("agent_sold_asset", E, "asset", "counter", "collateral the outside liquidator sold"),
    _f("agent_sale_debt", E, "debt", "counter", "what the outside liquidator's sales returned"),
    _f("agent_sale_mid_debt", E, "debt", "counter", "the outside liquidator's sales at the pool's mid before each"),
    _f("liquidity_added_debt", E, "debt", "counter", "base liquidity added by the LP (debt side)"),
    _f("arrivals", E, "count", "counter", "new borrowers"),
    _f("exits", E, "count", "counter", "borrowers who repaid and left"),
)  # fmt: skip

# Scalars of the state (shared by the batch).
CLOCK_FIELDS = ("time_h", "substep_index")

DRIVER_SCHEMA: tuple[Field, ...] = (
    _f("fundamental_usd", "step env", "usd", "driver", "off-chain reference price of the asset"),
    _f("liquidity_frac", "step env", "frac", "driver", "pool liquidity relative to market.pool_depth_usd (a drought < 1)"),
    _f("arb_speed_frac", "step env", "frac", "driver", "share of the pool's log-gap to the fundamental closed per substep"),
    _f("gas_gwei", "step env", "gwei", "driver", "gas price: liquidation cost, keeper capacity, borrower reactions"),
    _f("oracle_bias_frac", "step env", "frac", "driver", "the oracle reports source * (1 + bias) (manipulation)"),
    _f("oracle_frozen", "step env", "bool", "driver", "the oracle does not update (stale feed)", dtype="bool"),
    _f("debt_price_usd", "step env", "usd", "driver", "USD price of the debt asset (1 unless it depegs)"),
    _f("arrival_mult", "step env", "frac", "driver", "multiplier on borrower arrival rates"),
)  # fmt: skip

# What agents do inside a block (levgym.engine.orders.Orders), each [E]; absent means 0, a no-op.
ORDER_FIELDS = (
    "claim_share_frac",
    "sell_asset",
    "liquidity_delta_frac",
    "freeze_borrow",
    "pause_oracle",
)

# Orders of the M agent liquidators of a block (levgym.engine.auction.AgentOrders), each
# [E, M]: resolved by gas-bid priority into the one-agent ORDER_FIELDS above, the fills
# attributed back per agent (see levgym.engine.auction).
AGENT_ORDER_SCHEMA: tuple[Field, ...] = (
    _f("claim_share_frac", "env agent", "frac", "order", "share of every liquidation of the block the agent asks for, in [0, 1]"),
    _f("gas_bid_frac", "env agent", "frac", "order", "priority fee above the base gas price, as a share of it (>= 0): the block's priority"),
    _f("sell_asset", "env agent", "asset", "order", "collateral the agent sells into the pool in the block, >= 0"),
)  # fmt: skip
AGENT_ORDER_FIELDS = tuple(f.name for f in AGENT_ORDER_SCHEMA)

# Scalar parameters the fused kernel reads: (name, section of EngineParams, attribute). An
# attribute may be a property (derived values are computed by their owner, never restated).
KERNEL_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("substep_h", "run", "substep_h"),
    ("pool_fee_frac", "market", "pool_fee_frac"),
    ("oracle_kind_code", "market", "oracle_kind_code"),
    ("oracle_deviation_frac", "market", "oracle_deviation_frac"),
    ("oracle_heartbeat_h", "market", "oracle_heartbeat_h"),
    ("oracle_pool_weight_frac", "market", "oracle_pool_weight_frac"),
    ("gas_units_per_liquidation", "market", "gas_units_per_liquidation"),
    ("keeper_capacity_per_substep", "market", "keeper_capacity_per_substep"),
    ("congestion_ref_gwei", "market", "congestion_ref_gwei"),
    ("max_cascade_rounds", "market", "max_cascade_rounds"),
    ("keeper_chunk_ratio", "market", "keeper_chunk_ratio"),
    ("profitability_filter", "market", "profitability_filter"),
    ("keeper_venue_frac", "market", "keeper_venue_frac"),
    ("keeper_venue_depth_usd", "market", "keeper_venue_depth_usd"),
    ("keeper_split", "market", "keeper_split"),
    ("keeper_aggregator_depth_usd", "market", "keeper_aggregator_depth_usd"),
    ("keeper_aggregator_fee_frac", "market", "keeper_aggregator_fee_frac"),
    ("keeper_cex_depth_usd", "market", "keeper_cex_depth_usd"),
    ("keeper_cex_fee_frac", "market", "keeper_cex_fee_frac"),
    ("keeper_cex_latency_substeps", "market", "keeper_cex_latency_substeps"),
    ("keeper_cex_fill_frac", "market", "keeper_cex_fill_frac"),
    ("full_close_hf", "protocol", "full_close_hf"),
    ("small_position_usd", "protocol", "small_position_usd"),
    ("protocol_fee_frac", "protocol", "protocol_fee_frac"),
    ("reaction_gas_ref_gwei", "borrowers", "reaction_gas_ref_gwei"),
    ("ltv_elasticity", "borrowers", "ltv_elasticity"),
    ("ltv_ref", "borrowers", "ltv_ref"),
    ("rate_elasticity", "borrowers", "rate_elasticity"),
    ("rate_ref_apr", "borrowers", "rate_ref_apr"),
    ("exit_rate_per_h", "borrowers", "exit_rate_per_h"),
    ("arrival_rate_per_h", "borrowers", "arrival_rate_per_h"),
    ("defend_target_gap", "borrowers", "defend_target_gap"),
    ("relever_band_frac", "borrowers", "relever_band_frac"),
    ("delever_frac", "borrowers", "delever_frac"),
)


def names(schema: tuple[Field, ...], *roles: str) -> tuple[str, ...]:
    """Names of the fields of ``schema`` with one of ``roles`` (all when none is given)."""
    return tuple(f.name for f in schema if not roles or f.role in roles)


def by_name(schema: tuple[Field, ...]) -> dict[str, Field]:
    return {f.name: f for f in schema}


STATE_FIELDS = by_name(STATE_SCHEMA)
POSITION_FIELDS = names(STATE_SCHEMA, "position", "behaviour")
PARAM_FIELDS = names(STATE_SCHEMA, "param")
COUNTER_FIELDS = names(STATE_SCHEMA, "counter")
DRIVER_FIELDS = names(DRIVER_SCHEMA)
# The [E] float fields of the state: one row each in the fused kernel's packed env array.
ENV_FIELDS = tuple(f.name for f in STATE_SCHEMA if f.axes == ("env",) and f.dtype == "float")


def row_index(fields: tuple[str, ...], typename: str) -> Any:
    """A namedtuple of row numbers (``ENV_ROW.supply_usd == 29``): numba reads a global
    namedtuple's values as compile-time constants, so the kernel names rows, never numbers."""
    return namedtuple(typename, fields)(*range(len(fields)))


ENV_ROW = row_index(ENV_FIELDS, "EnvRow")
DRIVER_ROW = row_index(DRIVER_FIELDS, "DriverRowIndex")
PARAM_ROW = row_index(tuple(p[0] for p in KERNEL_PARAMS), "ParamRow")


def markdown_table(schema: tuple[Field, ...]) -> str:
    """The schema as a Markdown table (name, axes, unit, role, description)."""
    lines = ["| field | axes | unit | role | description |", "|---|---|---|---|---|"]
    for f in schema:
        axes = "[" + ", ".join(AXIS_LETTERS[a] for a in f.axes) + "]"
        lines.append(f"| `{f.name}` | {axes} | {f.unit} | {f.role} | {f.doc} |")
    return "\n".join(lines)


__all__ = [
    "AGENT_ORDER_FIELDS",
    "AGENT_ORDER_SCHEMA",
    "AXES",
    "CLOCK_FIELDS",
    "COUNTER_FIELDS",
    "DRIVER_FIELDS",
    "DRIVER_ROW",
    "DRIVER_SCHEMA",
    "ENV_FIELDS",
    "ENV_ROW",
    "Field",
    "KERNEL_PARAMS",
    "ORDER_FIELDS",
    "PARAM_FIELDS",
    "PARAM_ROW",
    "POSITION_FIELDS",
    "ROLES",
    "STATE_FIELDS",
    "STATE_SCHEMA",
    "markdown_table",
    "names",
]
