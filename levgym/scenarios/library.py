"""Synthetic and stress scenarios, calibrated on the shipped ETH history (see calibration.py).

Price processes: ``gbm_calm``, ``gbm_high_vol``, ``merton_jumps``, ``merton_crash``,
``garch_clustered``, ``bootstrap_eth``. Stresses on a price path: ``oracle_manipulation``,
``oracle_frozen``, ``liquidity_drought``, ``congestion``, ``dai_depeg``, and the composite
``crash_drought_congestion`` (any price process with any overlays; YAML presets in
``levgym/configs/scenarios`` are knob overrides of it and of the other scenarios).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import HOURS_PER_YEAR
from . import data, processes
from .base import Scenario, ScenarioContext, check_knob, get, register
from .calibration import CALIBRATED
from .overlays import (
    Congestion,
    Depeg,
    Drought,
    OracleBias,
    OracleFreeze,
    Overlay,
    bias_for_debt_oracle,
    compose,
)
from .replays import COMPOUND_DAI_PRINT_USD

C = CALIBRATED


def start_price(knobs: dict[str, Any], ctx: ScenarioContext) -> float:
    """``start_price_usd`` if positive, else the market's initial price."""
    check_knob("scenario", "start_price_usd", knobs["start_price_usd"], 0.0, 1e9)
    return float(knobs["start_price_usd"] or ctx.params.market.initial_price_usd)


def _gas(name: str, knobs: dict[str, Any]) -> float:
    check_knob(name, "gas_gwei", knobs["gas_gwei"], 0.0, 20000.0)
    return float(knobs["gas_gwei"])


# ---- price processes -------------------------------------------------------------------------


def gbm_price(knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    check_knob("gbm", "vol_annual", knobs["vol_annual"], 0.0, 10.0)
    check_knob("gbm", "drift_annual", knobs["drift_annual"], -100.0, 100.0)
    return processes.gbm(
        ctx.rng,
        ctx.num_substeps,
        ctx.num_envs,
        ctx.substep_h,
        start_price(knobs, ctx),
        knobs["vol_annual"],
        knobs["drift_annual"],
    )


def merton_price(knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    check_knob("merton", "vol_annual", knobs["vol_annual"], 0.0, 10.0)
    check_knob("merton", "jump_rate_per_h", knobs["jump_rate_per_h"], 0.0, 100.0)
    check_knob("merton", "jump_mean_log", knobs["jump_mean_log"], -5.0, 5.0)
    check_knob("merton", "jump_sd_log", knobs["jump_sd_log"], 0.0, 5.0)
    price, _ = processes.merton(
        ctx.rng,
        ctx.num_substeps,
        ctx.num_envs,
        ctx.substep_h,
        start_price(knobs, ctx),
        knobs["vol_annual"],
        knobs["jump_rate_per_h"],
        knobs["jump_mean_log"],
        knobs["jump_sd_log"],
    )
    return price


def garch_price(knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    check_knob("garch", "start_vol_annual", knobs["start_vol_annual"], 0.0, 20.0)
    start_var = None
    if knobs["start_vol_annual"] > 0:
        start_var = knobs["start_vol_annual"] ** 2 / HOURS_PER_YEAR
    price, _ = processes.garch(
        ctx.rng,
        ctx.num_substeps,
        ctx.num_envs,
        ctx.substep_h,
        start_price(knobs, ctx),
        knobs["omega"],
        knobs["alpha"],
        knobs["beta"],
        start_var,
    )
    return price


def bootstrap_price(knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    return processes.block_bootstrap(
        ctx.rng,
        ctx.num_substeps,
        ctx.num_envs,
        ctx.substep_h,
        start_price(knobs, ctx),
        data.hourly_log_returns(),
        int(knobs["block_h"]),
        bool(knobs["demean"]),
    )


def _simple(price_fn):
    def build(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
        return compose(ctx, price_fn(knobs, ctx), gas_gwei=_gas("scenario", knobs))

    return build


_START = {"start_price_usd": 0.0, "gas_gwei": 30.0}

register(
    Scenario(
        name="gbm_calm",
        kind="synthetic",
        description="GBM at the calm (25th percentile) 30-day volatility of ETH 2017-2021",
        source=f"synthetic GBM, vol_annual={C['calm_vol_annual']} fitted on Binance ETH/USDT hourly",
        build=_simple(gbm_price),
        knobs={"vol_annual": C["calm_vol_annual"], "drift_annual": 0.0, **_START},
    )
)
register(
    Scenario(
        name="gbm_high_vol",
        kind="synthetic",
        description="GBM at the high (90th percentile) 30-day volatility of ETH 2017-2021",
        source=f"synthetic GBM, vol_annual={C['high_vol_annual']} fitted on Binance ETH/USDT hourly",
        build=_simple(gbm_price),
        knobs={"vol_annual": C["high_vol_annual"], "drift_annual": 0.0, **_START},
    )
)
register(
    Scenario(
        name="merton_jumps",
        kind="synthetic",
        description="Merton jump-diffusion with the jump rate and sizes of ETH hourly returns 2017-2021",
        source=(
            f"synthetic Merton: vol {C['merton_vol_annual']}, {C['merton_jump_rate_per_h']} jumps/h, "
            f"log size N({C['merton_jump_mean_log']}, {C['merton_jump_sd_log']}); fitted (4-sigma jumps)"
        ),
        build=_simple(merton_price),
        knobs={
            "vol_annual": C["merton_vol_annual"],
            "jump_rate_per_h": C["merton_jump_rate_per_h"],
            "jump_mean_log": C["merton_jump_mean_log"],
            "jump_sd_log": C["merton_jump_sd_log"],
            **_START,
        },
    )
)
register(
    Scenario(
        name="merton_crash",
        kind="synthetic",
        description="Jump-diffusion crash: the jump rate, jump sizes and volatility of the 3 crash days",
        source=(
            f"synthetic Merton: vol {C['crash_vol_annual']}, {C['crash_jump_rate_per_h']} jumps/h, "
            f"log size N({C['crash_jump_mean_log']}, {C['crash_jump_sd_log']}); fitted on "
            "2020-03-12, 2020-11-26, 2021-05-19"
        ),
        build=_simple(merton_price),
        knobs={
            "vol_annual": C["crash_vol_annual"],
            "jump_rate_per_h": C["crash_jump_rate_per_h"],
            "jump_mean_log": C["crash_jump_mean_log"],
            "jump_sd_log": C["crash_jump_sd_log"],
            **_START,
        },
    )
)
register(
    Scenario(
        name="garch_clustered",
        kind="synthetic",
        description="GARCH(1,1) volatility clustering fitted on ETH hourly returns 2017-2021",
        source=(
            f"synthetic GARCH(1,1): omega {C['garch_omega']}, alpha {C['garch_alpha']}, "
            f"beta {C['garch_beta']} per hour (Gaussian QMLE)"
        ),
        build=_simple(garch_price),
        knobs={
            "omega": C["garch_omega"],
            "alpha": C["garch_alpha"],
            "beta": C["garch_beta"],
            "start_vol_annual": 0.0,
            **_START,
        },
    )
)
register(
    Scenario(
        name="bootstrap_eth",
        kind="bootstrap",
        description="Block bootstrap of real ETH hourly returns 2017-2021 (24 h blocks, demeaned)",
        source="levgym/data/eth_hourly_close_binance_spot_2017-2021.csv",
        build=_simple(bootstrap_price),
        knobs={"block_h": 24, "demean": True, **_START},
    )
)

# ---- stresses on a price path ---------------------------------------------------------------

_SHOCK = {
    "drop_frac": 0.3,
    "drop_hours": 3.0,
    "start_hour": 2.0,
    "vol_annual": C["calm_vol_annual"],
    "start_price_usd": 0.0,
}
# Black Thursday's size: ETH fell by half in about a day, most of it in 12 hours. Drought and
# congestion hurt most in a sustained fall, where the liquidations they delay come due lower.
_LONG_FALL = {**_SHOCK, "drop_frac": 0.5, "drop_hours": 12.0}


def fall_path(name: str, knobs: dict[str, Any], ctx: ScenarioContext) -> np.ndarray:
    """A log-linear fall by ``drop_frac`` over ``drop_hours`` from ``start_hour``, times a
    driftless GBM at ``vol_annual`` throughout (so the market is noisy before, during and after
    the fall). The noise does not depend on the drop: a deeper drop is lower at every row, seed
    for seed. Row 0 is the starting price."""
    check_knob(name, "drop_frac", knobs["drop_frac"], 0.0, 0.99)
    check_knob(name, "drop_hours", knobs["drop_hours"], 0.0, 1000.0)
    check_knob(name, "start_hour", knobs["start_hour"], 0.0, 10_000.0)
    check_knob(name, "vol_annual", knobs["vol_annual"], 0.0, 10.0)
    level = _fall_level(
        knobs["drop_frac"], knobs["drop_hours"], knobs["start_hour"], ctx.num_substeps,
        ctx.substep_h,
    )  # fmt: skip
    noise = processes.gbm(
        ctx.rng, ctx.num_substeps, ctx.num_envs, ctx.substep_h, 1.0, knobs["vol_annual"]
    )
    return start_price(knobs, ctx) * level[:, None] * noise


@functools.lru_cache(maxsize=64)
def _fall_level(
    drop_frac: float, drop_hours: float, start_hour: float, num_substeps: int, substep_h: float
) -> np.ndarray:
    """The fall of :func:`fall_path` without its noise, ``[S]`` (cached, read-only: it depends
    on the knobs and the length only)."""
    t = np.arange(num_substeps) * substep_h
    progress = np.clip((t - start_hour) / max(drop_hours, 1e-9), 0.0, 1.0)
    level = np.exp(np.log1p(-drop_frac) * progress)
    level.setflags(write=False)
    return level


def _congestion(knobs: dict[str, Any]) -> Congestion:
    return Congestion(
        knobs["gas_ref_gwei"],
        knobs["gas_vol_elasticity"],
        C["gas_ref_vol_annual"],
        C["gas_ar_phi"],
        knobs["gas_noise_sd_log"],
    )


_CONGESTION = {
    "gas_ref_gwei": C["gas_ref_gwei"],
    "gas_vol_elasticity": C["gas_vol_elasticity"],
    "gas_noise_sd_log": C["gas_noise_sd_log"],
}


def _oracle_manipulation(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    price = gbm_price(knobs, ctx)
    bias = OracleBias(knobs["bias_frac"], knobs["bias_start_h"], knobs["bias_hours"])
    return compose(ctx, price, bias, gas_gwei=_gas("oracle_manipulation", knobs))


def _oracle_frozen(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    price = fall_path("oracle_frozen", knobs, ctx)
    freeze = OracleFreeze(knobs["freeze_start_h"], knobs["freeze_hours"])
    return compose(ctx, price, freeze, gas_gwei=_gas("oracle_frozen", knobs))


def _drought(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    price = fall_path("liquidity_drought", knobs, ctx)
    overlays = (
        [Drought(knobs["drought_elasticity"], knobs["arb_exponent"])] if knobs["drought"] else []
    )
    return compose(ctx, price, *overlays, gas_gwei=_gas("liquidity_drought", knobs))


def _congested(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    price = fall_path("congestion", knobs, ctx)
    overlays = [_congestion(knobs)] if knobs["congestion"] else []
    return compose(ctx, price, *overlays, gas_gwei=_gas("congestion", knobs))


def _depeg(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    price = gbm_price(knobs, ctx)
    depeg = Depeg(
        knobs["peak_usd"], knobs["start_h"], knobs["rise_h"], knobs["hold_h"], knobs["fall_h"]
    )
    return compose(ctx, price, depeg, gas_gwei=_gas("dai_depeg", knobs))


PRICE_SOURCES = (
    "gbm_calm",
    "gbm_high_vol",
    "merton_jumps",
    "merton_crash",
    "garch_clustered",
    "bootstrap_eth",
    "shock",
    "calm",
)


def _composite(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:
    if knobs["price"] not in PRICE_SOURCES:
        raise ValueError(
            f"scenario.price={knobs['price']!r} is unknown; allowed {', '.join(PRICE_SOURCES)}"
        )
    base = get(knobs["price"])
    sub_knobs = dict(base.knobs)
    if "start_price_usd" in sub_knobs:
        sub_knobs["start_price_usd"] = knobs["start_price_usd"]
    price = base.build(sub_knobs, ctx).fundamental_usd
    overlays: list[Overlay] = []
    if knobs["bias_frac"] != 0 and knobs["bias_hours"] > 0:
        overlays.append(OracleBias(knobs["bias_frac"], knobs["bias_start_h"], knobs["bias_hours"]))
    if knobs["freeze_hours"] > 0:
        overlays.append(OracleFreeze(knobs["freeze_start_h"], knobs["freeze_hours"]))
    if knobs["depeg_peak_usd"] != 1.0:
        overlays.append(
            Depeg(
                knobs["depeg_peak_usd"],
                knobs["depeg_start_h"],
                knobs["depeg_rise_h"],
                knobs["depeg_hold_h"],
                knobs["depeg_fall_h"],
            )
        )
    if knobs["drought"]:
        overlays.append(Drought(knobs["drought_elasticity"], knobs["arb_exponent"]))
    # random overlays last, so switching any overlay off keeps the paths drawn before it
    if knobs["congestion"]:
        overlays.append(_congestion(knobs))
    return compose(ctx, price, *overlays, gas_gwei=_gas("crash_drought_congestion", knobs))


_COMPOUND_BIAS = round(float(bias_for_debt_oracle(COMPOUND_DAI_PRINT_USD)), 4)

register(
    Scenario(
        name="oracle_manipulation",
        kind="oracle",
        description=(
            "Calm GBM; the collateral oracle under-reports by 23.08% for one hour (Compound's DAI "
            "at 1.30 expressed on the collateral side)"
        ),
        source="synthetic: GBM(calm) + oracle_bias_frac window; size from Compound 2020-11-26",
        build=_oracle_manipulation,
        knobs={
            "vol_annual": C["calm_vol_annual"],
            "drift_annual": 0.0,
            "bias_frac": _COMPOUND_BIAS,
            "bias_start_h": 6.0,
            "bias_hours": 1.0,
            **_START,
        },
    )
)
register(
    Scenario(
        name="oracle_frozen",
        kind="oracle",
        description="A 30% fall over 3 h while the oracle is frozen (stale) from 2 h to 6 h, then it catches up",
        source="synthetic: log-linear fall x GBM(calm) + oracle_frozen window",
        build=_oracle_frozen,
        knobs={**_SHOCK, "freeze_start_h": 2.0, "freeze_hours": 4.0, "gas_gwei": 30.0},
    )
)
register(
    Scenario(
        name="liquidity_drought",
        kind="liquidity",
        description=(
            "A 50% fall over 12 h; pool liquidity withdrawn with the drawdown (worst observed "
            "elasticity) and arbitrage slowed with it"
        ),
        source=(
            f"synthetic: log-linear fall x GBM(calm) + drought elasticity {C['drought_elasticity_worst']} "
            "(Uniswap v2 DAI/WETH 2020-09-05)"
        ),
        build=_drought,
        knobs={
            **_LONG_FALL,
            "drought": True,
            "drought_elasticity": C["drought_elasticity_worst"],
            "arb_exponent": 1.0,
            "gas_gwei": 30.0,
        },
    )
)
register(
    Scenario(
        name="congestion",
        kind="congestion",
        description="A 50% fall over 12 h with gas that spikes with realized volatility (crash-day fit)",
        source=(
            f"synthetic: log-linear fall x GBM(calm) + gas = {C['gas_ref_gwei']} gwei x (rv/{C['gas_ref_vol_annual']})"
            f"^{C['gas_vol_elasticity']} x AR(1) noise; fitted on 6 crash days of gas p90"
        ),
        build=_congested,
        knobs={**_LONG_FALL, "congestion": True, **_CONGESTION, "gas_gwei": 30.0},
    )
)
register(
    Scenario(
        name="dai_depeg",
        kind="depeg",
        description="Calm GBM; the debt asset trades up to 1.126 USD (DAI's high on Black Thursday) for hours",
        source="synthetic: GBM(calm) + debt_price_usd trapezoid; peak from DAI/USD 10-min 2020-03-12",
        build=_depeg,
        knobs={
            "vol_annual": C["calm_vol_annual"],
            "drift_annual": 0.0,
            "peak_usd": C["dai_peak_usd"],
            "start_h": 2.0,
            "rise_h": 2.0,
            "hold_h": 4.0,
            "fall_h": 6.0,
            **_START,
        },
    )
)
register(
    Scenario(
        name="crash_drought_congestion",
        kind="composite",
        description=(
            "Composite: a price process (default merton_crash) with a liquidity drought and "
            "congestion; oracle bias, freeze and depeg overlays available as knobs"
        ),
        source="composition of the calibrated price processes and overlays",
        build=_composite,
        knobs={
            "price": "merton_crash",
            "start_price_usd": 0.0,
            "drought": True,
            "drought_elasticity": C["drought_elasticity"],
            "arb_exponent": 1.0,
            "congestion": True,
            **_CONGESTION,
            "bias_frac": 0.0,
            "bias_start_h": 0.0,
            "bias_hours": 0.0,
            "freeze_start_h": 0.0,
            "freeze_hours": 0.0,
            "depeg_peak_usd": 1.0,
            "depeg_start_h": 2.0,
            "depeg_rise_h": 2.0,
            "depeg_hold_h": 4.0,
            "depeg_fall_h": 6.0,
            "gas_gwei": 30.0,
        },
    )
)
