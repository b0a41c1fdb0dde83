"""Liquidator-v1: the agent's accounting, its share of liquidations, sales, hedge and bankruptcy."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.envs import LiquidatorEnv, LiquidatorVectorEnv
from levgym.envs.liquidator import perp_basis

CRASH = {
    "scenarios": ["shock"],
    "scenario_overrides": {"shock": {"start_hour": 0.0, "drop_frac": 0.35}},
}
KW = {"num_positions": 48, "horizon_h": 6.0, **CRASH}
PASSIVE, GREEDY = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, -1.0])


def test_passive_agent_earns_exactly_nothing():
    env = LiquidatorEnv(**KW)
    env.reset(seed=0)
    for _ in range(20):
        _, r, term, trunc, info = env.step(PASSIVE)
        assert r == 0.0 and not term
        assert info["equity_usd"] == 5e6 and info["seized_asset"] == 0.0 and info["gas_usd"] == 0.0


def test_cash_and_equity_accounting_of_a_greedy_hedged_agent():
    env = LiquidatorVectorEnv(2, **KW)
    env.reset(seed=3)
    cash = np.full(2, env.initial_cash_usd)
    rewards = np.zeros(2)
    penalty = np.zeros(2)
    seized = np.zeros(2)
    action = np.array([[1.0, 0.0, 0.0], [0.5, -0.5, 1.0]])
    for _ in range(30):
        _, r, term, _, info = env.step(action)
        assert not term.any()
        cash += (
            info["sale_proceeds_usd"]
            - info["repaid_usd"]
            - info["gas_usd"]
            - info["perp_fee_usd"]
            + info["funding_usd"]
            + info["perp_variation_usd"]
            - info["credit_interest_usd"]
        )
        np.testing.assert_allclose(cash, info["cash_usd"], rtol=1e-12)
        rewards += r
        penalty += info["inventory_penalty_usd"]
        seized += info["seized_asset"]
        s = env.state
        mid = np.asarray(s.pool_price_usd)
        np.testing.assert_allclose(
            info["equity_usd"], info["cash_usd"] + info["inventory_asset"] * mid
        )
        np.testing.assert_allclose(s.agent_seized_asset, seized)
        np.testing.assert_allclose(info["take_frac"], [0.5, 0.375])
    assert seized.min() > 0, "a 35% crash liquidates positions and the agent takes its share"
    # Reward is the equity change minus the risk penalty, in basis points of initial capital.
    np.testing.assert_allclose(
        rewards, 1e4 * ((info["equity_usd"] - 5e6) - penalty) / 5e6, rtol=1e-9, atol=1e-9
    )
    assert info["gas_usd"].sum() >= 0 and np.all(info["slippage_usd"] >= -1e-9)


def test_take_fraction_sets_the_engine_capacity_split():
    env = LiquidatorVectorEnv(1, **KW, max_share_frac=0.5)
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([[0.0, -1.0, -1.0]]))
    assert info["take_frac"][0] == pytest.approx(0.25)
    before_repaid = float(env.state.repaid_by_liquidators_usd[0])
    total_repaid = 0.0
    agent_repaid = 0.0
    for _ in range(20):
        r0 = float(env.state.repaid_by_liquidators_usd[0])
        _, _, _, _, info = env.step(np.array([[0.0, -1.0, -1.0]]))
        total_repaid += float(env.state.repaid_by_liquidators_usd[0]) - r0
        agent_repaid += info["repaid_usd"][0] / float(env.state.debt_price_usd[0])
    assert total_repaid > 0 and before_repaid >= 0
    assert agent_repaid == pytest.approx(0.25 * total_repaid, rel=1e-9)


def test_selling_inventory_moves_the_pool_and_pays_slippage():
    a, b = LiquidatorEnv(**KW), LiquidatorEnv(**KW)
    a.reset(seed=2)
    b.reset(seed=2)
    for _ in range(12):  # accumulate inventory in both
        a.step(np.array([1.0, -1.0, -1.0]))
        b.step(np.array([1.0, -1.0, -1.0]))
    assert a.vector_env.inventory_asset[0] > 0
    _, _, _, _, ia = a.step(np.array([1.0, 1.0, -1.0]))  # sell everything
    _, _, _, _, ib = b.step(np.array([1.0, -1.0, -1.0]))  # keep it
    assert ia["sold_asset"] > 0 and ia["sale_proceeds_usd"] > 0 and ia["slippage_usd"] > 0
    assert float(a.state.pool_price_usd[0]) < float(b.state.pool_price_usd[0])
    assert ia["inventory_asset"] < ib["inventory_asset"]


def test_short_hedge_gains_in_a_crash_and_funding_follows_the_basis():
    env = LiquidatorEnv(**KW)
    env.reset(seed=4)
    for _ in range(18):
        _, _, _, _, info = env.step(np.array([-1.0, -1.0, 1.0]))  # only the hedge, full
        assert info["perp_asset"] < 0
        s = env.state
        perp_price = float(s.fundamental_usd[0])  # the perp trades at the fundamental
        expected = -info["perp_asset"] * perp_price * info["basis_frac"] * (1 / 6) / 8
        assert info["funding_usd"] == pytest.approx(expected, rel=1e-9)
    assert float(s.fundamental_usd[0]) < 0.8 * float(s.fundamental_start_usd[0])
    assert info["equity_usd"] > 5e6, "a full short through a 35% fall makes money"
    # basis = mean + beta * (pool / fundamental - 1): a dumped pool makes shorts pay funding
    assert perp_basis(np.array(0.9), np.array(1.0), 1e-4, 0.5) == pytest.approx(1e-4 - 0.05)


def test_bankruptcy_terminates():
    env = LiquidatorEnv(**{**KW, "horizon_h": 12.0}, initial_cash_usd=1e3, max_share_frac=1.0)
    env.reset(seed=0)
    for _ in range(72):
        _, _, term, trunc, info = env.step(np.array([1.0, -1.0, -1.0]))  # take all, never sell
        if term or trunc:
            break
    assert term and info["end_cause"] == "bankruptcy" and info["equity_usd"] <= 0
    assert env.end_counts == {"bankruptcy": 1, "horizon": 0}


def test_v0_stays_registered_and_v1_sells_inside_the_block():
    """v1's sale is an order of the engine's block (the oracle reads it before the cascade); v0
    sold before the block. Same seed and actions: same start, different paths once it sells."""
    import gymnasium as gym

    from levgym.envs.liquidator import LiquidatorV0VectorEnv

    kw = dict(num_positions=32, horizon_h=2.0, scenarios="crash_drought_congestion")
    v0 = gym.make_vec("levgym/Liquidator-v0", num_envs=2, **kw)
    v1 = gym.make_vec("levgym/Liquidator-v1", num_envs=2, **kw)
    assert isinstance(v0, LiquidatorV0VectorEnv) and type(v1) is LiquidatorVectorEnv
    o0, _ = v0.reset(seed=3)
    o1, _ = v1.reset(seed=3)
    np.testing.assert_array_equal(o0, o1)
    greedy = np.ones((2, 3), dtype=np.float32)
    differs = False
    for _ in range(12):
        o0, *_ = v0.step(greedy)
        o1, *_ = v1.step(greedy)
        differs |= not np.array_equal(v0.core.state.pool_asset, v1.core.state.pool_asset)
    assert differs
    for env in (v0, v1):
        s = env.core.state
        assert np.all(s.agent_sold_asset >= 0) and np.all(s.agent_sale_debt >= 0)


def test_v2_hedge_is_a_correction_around_a_short_of_the_inventory():
    """v2: hedge action a shorts (1 + a * max_hedge_deviation) times the inventory held when the
    hedge is set (a = 0: all of it); with no inventory it holds no short, whatever a. v1 shorts
    a share of the equity, so the same actions give a short before any seizure."""
    import gymnasium as gym

    from levgym.envs import LiquidatorV2VectorEnv

    kw = dict(num_positions=32, horizon_h=2.0, scenarios="crash_drought_congestion")
    for a_hedge, dev in ((0.0, 1.0), (0.5, 0.4), (-1.0, 1.0)):
        v2 = gym.make_vec("levgym/Liquidator-v2", num_envs=2, max_hedge_deviation=dev, **kw)
        assert type(v2) is LiquidatorV2VectorEnv
        v2.reset(seed=3)
        held_any = False
        for _ in range(10):
            inv = v2.inventory_asset.copy()
            v2.step(np.tile([1.0, -0.5, a_hedge], (2, 1)).astype(np.float32))
            held_any |= bool((inv > 0).any())
            np.testing.assert_allclose(v2.perp_asset, -(1 + a_hedge * dev) * inv, rtol=1e-12)
        assert held_any
    v1 = gym.make_vec("levgym/Liquidator-v1", num_envs=2, **kw)
    v1.reset(seed=3)
    v1.step(np.tile([1.0, -0.5, 0.0], (2, 1)).astype(np.float32))
    assert np.all(v1.perp_asset < 0)  # a = 0 on v1: half the equity short, no inventory yet
    with pytest.raises(ValueError, match="max_hedge_deviation"):
        gym.make_vec("levgym/Liquidator-v2", num_envs=1, max_hedge_deviation=1.5, **kw)
