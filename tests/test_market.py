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
