"""Parameter validation names the field, the value and what is allowed."""

import math

import pytest

from levgym.engine import BorrowerParams, MarketParams, ProtocolParams, RunParams, preset
from levgym.engine.params import EngineParams, override


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"ltv": 0.9, "liquidation_threshold": 0.86},
            r"protocol\.ltv=0\.9 exceeds protocol\.liquidation_threshold",
        ),
        (
            {"liquidation_threshold": 0.96, "liquidation_bonus": 0.05, "ltv": 0.8},
            r"liquidation_threshold \* \(1 \+ liquidation_bonus\) = 1\.008",
        ),
        ({"close_factor": 0.0}, r"protocol\.close_factor=0 is out of range; allowed \(0, 1\]"),
        ({"liquidation_bonus": -0.1}, r"protocol\.liquidation_bonus=-0\.1 is out of range"),
        ({"ltv": math.nan}, r"protocol\.ltv=nan is not allowed"),
        ({"optimal_utilization_frac": 1.0}, r"optimal_utilization_frac=1 is out of range"),
    ],
)
def test_protocol_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ProtocolParams(**kwargs)


def test_other_sections_validate():
    with pytest.raises(
        ValueError, match=r"market\.oracle_kind='pyth' is unknown; allowed chainlink, twap, exact"
    ):
        MarketParams(oracle_kind="pyth")
    with pytest.raises(ValueError, match=r"market\.pool_depth_usd=0 is out of range"):
        MarketParams(pool_depth_usd=0.0)
    with pytest.raises(ValueError, match=r"passive_frac \+ defensive_frac \+ looper_frac = 1\.1"):
        BorrowerParams(passive_frac=0.6)
    with pytest.raises(ValueError, match=r"run\.substep_h=0 is out of range"):
        RunParams(substep_h=0.0)


def test_presets_and_override():
    aave = preset("aave_v3_weth")
    assert (
        aave.ltv,
        aave.liquidation_threshold,
        aave.liquidation_bonus,
        aave.close_factor,
        aave.full_close_hf,
    ) == (
        0.825,
        0.86,
        0.052,
        0.5,
        0.95,
    )
    assert preset("aave_v3_weth_comet_params").liquidation_threshold == 0.895
    with pytest.warns(
        FutureWarning, match="preset 'compound_v3' is renamed 'aave_v3_weth_comet_params'"
    ):
        assert preset("compound_v3") == preset("aave_v3_weth_comet_params")
    with pytest.raises(
        ValueError,
        match=r"preset 'x' is unknown; allowed aave_v2_weth, aave_v3_weth, aave_v3_weth_comet_params, conservative",
    ):
        preset("x")
    assert override(aave, "protocol", "liquidation_bonus", "0.06").liquidation_bonus == 0.06
    with pytest.raises(ValueError, match=r"protocol\.ltv='abc' must be a number"):
        override(aave, "protocol", "ltv", "abc")
    with pytest.raises(ValueError, match=r"unknown key protocol\.nope"):
        override(aave, "protocol", "nope", "1")


def test_book_preset_sets_market_book_and_run():
    from levgym.engine.params import BOOK_PRESETS, preset_params

    p = preset_params("aave_v2_weth")
    assert (p.protocol.ltv, p.protocol.liquidation_threshold, p.protocol.liquidation_bonus) == (
        0.80,
        0.825,
        0.05,
    )
    for section, values in BOOK_PRESETS["aave_v2_weth"].items():
        for key, value in values.items():
            assert getattr(getattr(p, section), key) == value
    # a preset without book values keeps the defaults
    assert preset_params("aave_v3_weth") == EngineParams()
