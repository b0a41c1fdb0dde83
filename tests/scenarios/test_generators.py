"""Every registered scenario: shapes, seeding, positivity, per-env variety."""

from __future__ import annotations

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine.drivers import DRIVER_FIELDS
from levgym.engine.params import EngineParams

PARAMS = EngineParams()
E, S = 5, 144  # the default run: 24 steps of 6 substeps
NAMES = scenarios.names()
DETERMINISTIC = {
    "black_thursday_2020",
    "may19_2021",
    "compound_dai_oracle_2020",
    "black_thursday_2020_fast",
}


def drivers(name: str, seed: int, overrides: dict[str, str] | None = None):
    return scenarios.get(name).drivers(E, S, PARAMS, seed, overrides)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_positivity(name: str) -> None:
    d = drivers(name, 0)
    for field in DRIVER_FIELDS:
        assert getattr(d, field).shape == (S, E), field
    assert np.all(d.fundamental_usd > 0) and np.all(np.isfinite(d.fundamental_usd))
    assert np.all(d.liquidity_frac > 0) and np.all(d.debt_price_usd > 0)
    assert np.all(d.gas_gwei >= 0) and np.all((d.arb_speed_frac >= 0) & (d.arb_speed_frac <= 1))
    assert d.oracle_frozen.dtype == bool


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_paths(name: str) -> None:
    a, b = drivers(name, 3), drivers(name, 3)
    for field in DRIVER_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in DETERMINISTIC])
def test_different_seeds_and_envs_differ(name: str) -> None:
    a, b = drivers(name, 0), drivers(name, 1)
    assert not np.array_equal(a.fundamental_usd, b.fundamental_usd)
    # a batch of E envs gets E different paths
    f = a.fundamental_usd
    assert all(not np.array_equal(f[:, 0], f[:, j]) for j in range(1, E))


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_replays_same_path_for_all_envs_and_seeds(name: str) -> None:
    a, b = drivers(name, 0), drivers(name, 99)
    np.testing.assert_array_equal(a.fundamental_usd, b.fundamental_usd)
    assert np.all(a.fundamental_usd == a.fundamental_usd[:, :1])


@pytest.mark.parametrize("name", ["black_thursday_2020", "may19_2021", "compound_dai_oracle_2020"])
def test_replay_jitter_gives_per_env_paths(name: str) -> None:
    a = drivers(name, 0, {"jitter_vol_annual": "0.5"})
    b = drivers(name, 1, {"jitter_vol_annual": "0.5"})
    base = drivers(name, 0)
    np.testing.assert_allclose(a.fundamental_usd[0], base.fundamental_usd[0])  # row 0 unjittered
    assert not np.array_equal(a.fundamental_usd, b.fundamental_usd)
    assert not np.array_equal(a.fundamental_usd[:, 0], a.fundamental_usd[:, 1])


def test_synthetic_paths_start_at_the_initial_price() -> None:
    for name in (
        "gbm_calm",
        "gbm_high_vol",
        "merton_jumps",
        "merton_crash",
        "garch_clustered",
        "bootstrap_eth",
    ):
        d = drivers(name, 0)
        np.testing.assert_allclose(d.fundamental_usd[0], PARAMS.market.initial_price_usd)
        d = drivers(name, 0, {"start_price_usd": "150"})
        np.testing.assert_allclose(d.fundamental_usd[0], 150.0)


def test_other_substep_lengths() -> None:
    import dataclasses

    from levgym.engine.params import RunParams

    for substep_h in (0.25, 1.0, 2.5):
        params = dataclasses.replace(
            PARAMS, run=RunParams(substeps_per_step=2, substep_h=substep_h)
        )
        for name in ("garch_clustered", "bootstrap_eth", "congestion", "black_thursday_2020"):
            d = scenarios.get(name).drivers(3, 20, params, 0)
            assert d.fundamental_usd.shape == (20, 3)
            assert np.all(np.isfinite(d.fundamental_usd)) and np.all(d.fundamental_usd > 0)


def test_bad_knobs_are_one_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"unknown key scenario\.nope .* allowed .*scenario\.vol_annual"
    ):
        drivers("gbm_calm", 0, {"nope": "1"})
    with pytest.raises(ValueError, match=r"scenario\.vol_annual='x' must be a number"):
        drivers("gbm_calm", 0, {"vol_annual": "x"})
    with pytest.raises(ValueError, match=r"scenario\.price='nope' is unknown; allowed gbm_calm"):
        drivers("crash_drought_congestion", 0, {"price": "nope"})
    with pytest.raises(ValueError, match=r"drought_elasticity=-1 is out of range"):
        drivers("liquidity_drought", 0, {"drought_elasticity": "-1"})
    with pytest.raises(
        ValueError, match=r"start_offset_h=-1000 starts black_thursday_2020 outside its data"
    ):
        drivers("black_thursday_2020", 0, {"start_offset_h": "-1000"})


def test_composite_price_sources_and_overlays() -> None:
    from levgym.scenarios.library import PRICE_SOURCES

    for price in PRICE_SOURCES:
        d = drivers("crash_drought_congestion", 0, {"price": price})
        assert d.fundamental_usd.shape == (S, E)
    d = drivers(
        "crash_drought_congestion",
        0,
        {
            "bias_frac": "-0.1",
            "bias_start_h": "1",
            "bias_hours": "1",
            "freeze_start_h": "3",
            "freeze_hours": "2",
            "depeg_peak_usd": "1.1",
        },
    )
    hours = np.arange(S) * PARAMS.run.substep_h
    assert np.all(d.oracle_bias_frac[(hours >= 1) & (hours < 2)] == -0.1)
    assert np.all(d.oracle_bias_frac[(hours < 1) | (hours >= 2)] == 0.0)
    assert np.all(d.oracle_frozen[(hours >= 3) & (hours < 5)]) and not np.any(
        d.oracle_frozen[hours < 3]
    )
    assert d.debt_price_usd.max() == pytest.approx(1.1) and d.debt_price_usd[0, 0] == 1.0
