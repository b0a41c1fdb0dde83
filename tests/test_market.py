"""One market runner: `levgym simulate` and a Governance vector env run the same markets."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.engine.params import EngineParams
from levgym.envs.governance import GovernanceVectorEnv
from levgym.market import MarketRunner, run_markets
from levgym.simulation import Simulator, simulate

COUNTERS = (
    "liquidations",
    "seized_collateral_asset",
    "repaid_by_liquidators_usd",
    "bad_debt_usd",
    "borrowed_usd",
    "interest_usd",
    "arrivals",
    "exits",
    "cascade_rounds_max",
)


@pytest.mark.parametrize("scenario", ["shock", "dai_depeg"])
def test_simulate_equals_governance_env_with_fixed_parameters(scenario):
    """Same scenario, seed, book size and steps: the same path and outcome, env by env (the
    governor's zero action keeps the parameters; both on the numpy backend)."""
    envs, positions, steps, seed = 3, 32, 12, 7
    result = simulate(
        None, EngineParams(), positions, seed, steps, scenario=scenario, num_envs=envs,
        backend="numpy", record=True,
    )  # fmt: skip
    env = GovernanceVectorEnv(
        envs, num_positions=positions, scenarios=scenario, horizon_h=float(steps),
        backend="numpy", autoreset_mode="Disabled",
    )  # fmt: skip
    env.reset(seed=seed)
    prices = []
    for _ in range(steps):
        env.step(np.zeros((envs, env.single_action_space.shape[0]), dtype=np.float32))
        prices.append(np.asarray(env.core.state.fundamental_usd).copy())
    state = env.core.state
    for name in COUNTERS:
        np.testing.assert_array_equal(np.asarray(getattr(state, name)), result.per_env[name], name)
    per_step = result.series["fundamental_usd"][5::6]
    np.testing.assert_array_equal(np.stack(prices), per_step)
    assert result.summary["liquidations"] > 0 or scenario == "dai_depeg"


def test_env_i_of_a_runner_is_a_runner_of_one_seeded_s_plus_i():
    params = EngineParams()
    big = run_markets(params, 4, 16, 12, seed=3, scenario="gbm_high_vol")
    one = run_markets(params, 1, 16, 12, seed=5, scenario="gbm_high_vol")
    for _ in range(12):
        big.substep()
        one.substep()
    np.testing.assert_array_equal(big.state.debt_usd[2], one.state.debt_usd[0])
    np.testing.assert_array_equal(big.state.pool_asset[2], one.state.pool_asset[0])


def test_simulator_draws_books_and_noise_as_the_runner():
    """Given drivers, env i still gets the book and noise of a runner seeded seed + i."""
    params = EngineParams()
    runner = run_markets(params, 2, 8, 6, seed=11, scenario="calm")
    sim = Simulator(params, runner.given_drivers or _bank_drivers(runner), 8, 11)
    np.testing.assert_array_equal(sim.state.collateral_asset, runner.state.collateral_asset)
    np.testing.assert_array_equal(sim.noise_at(0), runner.noise())


def _bank_drivers(runner: MarketRunner):
    from levgym.market import episode_drivers

    return episode_drivers(runner)


def test_runner_needs_scenarios_or_drivers():
    with pytest.raises(ValueError, match="scenarios or drivers"):
        MarketRunner(EngineParams(), 1, 4, 6, backend="numpy")


def test_episode_starts_built_together_equal_one_env_books():
    """``new_episodes`` builds the starting states of all restarting envs in one pass over their
    drawn books; each env equals ``init_state`` of its own book seed (the documented mapping),
    bit for bit, also over scenarios whose overlays are checked once at the end."""
    from levgym.engine.state import init_state
    from levgym.market import draw_episode
    from levgym.scenarios import get

    params = EngineParams()
    mix = ["shock", "perfect_storm", "crash_oracle_attack", "calm"]
    runner = MarketRunner(
        params, 5, 24, 30, scenarios=mix, scenario_weights=np.ones(4), backend="numpy"
    )
    runner.seed([40 + i for i in range(5)])
    runner.new_episodes(np.ones(5, dtype=bool))
    for env in range(5):
        rng = np.random.default_rng(40 + env)
        k, scenario_seed, book_seed, _ = draw_episode(rng, runner.scenario_cdf, "train")
        drivers = get(mix[k]).drivers(1, 30, params, scenario_seed)
        want = init_state(
            params, 1, 24, np.random.default_rng(book_seed),
            fundamental_usd=drivers.fundamental_usd[0], debt_price_usd=drivers.debt_price_usd[0],
            liquidity_frac=drivers.liquidity_frac[0], gas_gwei=drivers.gas_gwei[0],
        )  # fmt: skip
        got = runner.state.select(np.array([env]))
        for name, value in want.arrays().items():
            np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)
        np.testing.assert_array_equal(runner.bank[0, env], drivers.fundamental_usd[:, 0])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fundamental_usd", np.nan, "fundamental_usd holds NaN"),
        ("liquidity_frac", 0.0, "liquidity_frac has a value <= 0"),
        ("gas_gwei", -1.0, "gas_gwei and drivers.arrival_mult"),
        ("arb_speed_frac", 1.5, "arb_speed_frac has a value outside"),
        ("oracle_bias_frac", -1.0, "oracle_bias_frac has a value <= -1"),
    ],
)
def test_episode_starts_check_a_scenarios_paths_once_and_name_the_field(field, value, message):
    """A runner builds each episode's path unchecked and checks the values it copied into its
    bank row (each field's minimum and maximum there); a bad value still raises Drivers.check's
    error naming the field, at the episode start of any env (here the third substep of env 1's
    path is bad), whether some envs or all start."""
    from levgym.engine.drivers import Drivers, unchecked
    from levgym.scenarios.base import Scenario, register, unregister

    def build(knobs, ctx):
        d = Drivers.from_price(np.full((ctx.num_substeps, ctx.num_envs), 2000.0))
        bad = getattr(d, field).copy()
        if knobs["bad"]:
            bad[2] = value
        with unchecked():
            return d.replace(**{field: bad})

    name = f"test_bad_{field}"
    register(Scenario(name, "synthetic", "test", "test", build, knobs={"bad": False}))
    try:
        runner = MarketRunner(EngineParams(), 2, 4, 6, scenarios=[name], backend="numpy")
        runner.seed([0, 1])
        runner.new_episodes(np.ones(2, dtype=bool))  # good paths pass
        runner.scenario_overrides = {name: {"bad": True}}
        with pytest.raises(ValueError, match=message):
            runner.new_episodes(np.array([False, True]))
        with pytest.raises(ValueError, match=message):  # every env at once
            runner.new_episodes(np.ones(2, dtype=bool))
    finally:
        unregister(name)


def test_values_ok_agrees_with_drivers_check():
    """values_ok (the runner's check from each field's minimum and maximum) passes exactly the
    drivers that Drivers.check passes, value by value at each bound."""
    from levgym.engine.drivers import Drivers, unchecked, values_ok
    from levgym.engine.schema import DRIVER_FIELDS

    cases = {
        "fundamental_usd": [0.0, 1e-300, np.inf, np.nan],
        "liquidity_frac": [0.0, 1e-9, -1.0],
        "debt_price_usd": [0.0, 0.5, -np.inf],
        "gas_gwei": [0.0, -1e-12, np.nan],
        "arrival_mult": [0.0, -1e-12, 3.0],
        "arb_speed_frac": [0.0, 1.0, 1.0 + 1e-12, -1e-12],
        "oracle_bias_frac": [-1.0, -1.0 + 1e-12, 9.0, np.inf],
    }
    base = Drivers.from_price(np.full((5, 1), 100.0))
    for field, values in cases.items():
        for v in values:
            a = getattr(base, field).copy()
            a[3] = v
            with unchecked():
                d = base.replace(**{field: a})
            try:
                d.check()
                expected = True
            except ValueError:
                expected = False
            rows = np.stack(
                [np.asarray(getattr(d, n), dtype=np.float64)[:, 0] for n in DRIVER_FIELDS]
            )
            assert values_ok(rows.min(axis=1), rows.max(axis=1)) == expected, (field, v)
