"""The batched engine: state, parameters and pure step functions of the lending market.

Arrays are ``[E, N]`` (envs by position slots) and ``[E]``; numpy or torch, taken from the inputs.
"""

from .drivers import DRIVER_FIELDS, DriverRow, Drivers
from .orders import Orders
from .params import (
    PRESETS,
    BorrowerParams,
    EngineParams,
    MarketParams,
    ProtocolParams,
    RunParams,
    preset,
    validate_risk_params,
)
from .schema import COUNTER_FIELDS, PARAM_FIELDS, STATE_SCHEMA
from .state import KIND_NAMES, State, init_state, set_param_values, set_protocol_params
from .step import substep

__all__ = [
    "COUNTER_FIELDS",
    "DRIVER_FIELDS",
    "KIND_NAMES",
    "Orders",
    "STATE_SCHEMA",
    "set_param_values",
    "PARAM_FIELDS",
    "PRESETS",
    "BorrowerParams",
    "DriverRow",
    "Drivers",
    "EngineParams",
    "MarketParams",
    "ProtocolParams",
    "RunParams",
    "State",
    "init_state",
    "preset",
    "set_protocol_params",
    "substep",
    "validate_risk_params",
]
