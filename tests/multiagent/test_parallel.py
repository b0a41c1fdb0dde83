"""The PettingZoo form: API and seed tests, bankrupt liquidators leave, equivalence with
Governance-v0 when every agent plays the rule it replaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import levgym  # noqa: E402, F401
from levgym.multiagent import MultiAgentMarkets, parallel_env  # noqa: E402

SMALL = dict(num_positions=16, horizon_h=12.0, scenarios=["shock", "calm"])


def test_parallel_api_test_passes() -> None:
    env = parallel_env(**SMALL)
    parallel_api_test(env, num_cycles=40)
    assert env.possible_agents == [
        "governor", "liquidator_0", "liquidator_1", "liquidator_2", "market_maker",
    ]  # fmt: skip


def test_parallel_seed_test_passes() -> None:
    parallel_seed_test(lambda: parallel_env(**SMALL), num_cycles=20)


def test_state_is_the_global_view() -> None:
    env = parallel_env(num_liquidators=2, **SMALL)
    obs, _ = env.reset(seed=3)
    s = env.state()
    assert env.state_space.contains(s)
    np.testing.assert_array_equal(s[:28], obs["governor"])
    np.testing.assert_array_equal(s[28:49], obs["liquidator_0"])
    np.testing.assert_array_equal(s[-22:], obs["market_maker"])


def test_a_bankrupt_liquidator_leaves_the_agents() -> None:
    """Public auction, one dollar of capital: the liquidator that loses every contested claim
    still pays its gas, goes bankrupt and leaves; the others stay."""
    env = parallel_env(
        num_liquidators=2, block_auction="public", initial_cash_usd=1.0, num_positions=32,
        horizon_h=24.0, scenarios="shock",
    )  # fmt: skip
    env.reset(seed=0)
    greedy_high = np.array([1.0, -1.0, -1.0, 1.0])  # take all, keep, no hedge, top bid
    greedy_low = np.array([1.0, -1.0, -1.0, -1.0])  # take all, lowest bid: always loses
    ended = None
    for _ in range(24):
        acts = {"governor": np.zeros(4), "market_maker": np.zeros(2)}
        if "liquidator_0" in env.agents:
            acts["liquidator_0"] = greedy_high
        if "liquidator_1" in env.agents:
            acts["liquidator_1"] = greedy_low
        _, rew, term, trunc, info = env.step(acts)
        if term.get("liquidator_1"):
            ended = info["liquidator_1"]
            break
        assert info["liquidator_1"]["fill_frac"] == 0.0
    assert ended is not None, "the losing liquidator never went bankrupt"
    assert ended["gas_usd"] > 1.0 and ended["equity_usd"] <= 0.0
    assert ended["seized_asset"] == 0.0
    assert "liquidator_1" not in env.agents
    assert "governor" in env.agents and "liquidator_0" in env.agents


def test_private_auction_loser_pays_nothing() -> None:
    env = parallel_env(
        num_liquidators=2, block_auction="private", initial_cash_usd=1.0, num_positions=32,
        horizon_h=24.0, scenarios="shock",
    )  # fmt: skip
    env.reset(seed=0)
    losses = 0
    for _ in range(24):
        acts = {
            "governor": np.zeros(4),
            "market_maker": np.zeros(2),
            "liquidator_0": np.array([1.0, -1.0, -1.0, 1.0]),
            "liquidator_1": np.array([1.0, -1.0, -1.0, -1.0]),
        }
        _, _, term, trunc, info = env.step({a: acts[a] for a in env.agents})
        lost = "liquidator_1" in info and info["liquidator_1"]["fill_frac"] == 0.0
        if lost and info["governor"]["liquidations"] > 0:
            losses += 1
            assert info["liquidator_1"]["gas_usd"] == 0.0
            assert info["liquidator_1"]["equity_usd"] == 1.0
        if not env.agents:
            break
    assert losses > 0


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_rule_players_reproduce_governance_v0(backend: str) -> None:
    """Governor static (zero action), liquidators leaving every liquidation to the keepers and
    the market maker following the scenario's liquidity: the governor's observations, rewards
    and step infos equal levgym/Governance-v0's on the same seeds, bit for bit."""
    kw = dict(num_positions=24, horizon_h=24.0, scenarios=["black_thursday_2020", "calm"])
    e = 3
    ma = MultiAgentMarkets(e, backend=backend, **kw)
    ref = gym.make_vec(
        "levgym/Governance-v0", num_envs=e, backend=backend, autoreset_mode="Disabled", **kw
    )
    obs_ma = ma.reset(seed=11)["governor"]
    obs_ref, _ = ref.reset(seed=11)
    np.testing.assert_array_equal(obs_ma, obs_ref)
    liq = np.tile(np.array([-1.0, 1.0, -1.0, 0.3]), (e, 3, 1))  # claim nothing
    steps, resets, total_liquidations = 0, 0, 0.0
    for _ in range(30):
        o, r, te, tr, info = ma.step(np.zeros((e, 4)), liq, np.zeros((e, 2)))
        total_liquidations += float(np.sum(info["governor"]["liquidations"]))
        o_ref, r_ref, te_ref, tr_ref, info_ref = ref.step(np.zeros((e, 4)))
        np.testing.assert_array_equal(o["governor"], o_ref)
        np.testing.assert_array_equal(r["governor"], r_ref)
        np.testing.assert_array_equal(te["governor"], te_ref)
        for k in ("bad_debt_usd", "revenue_usd", "liquidations", "liquidation_threshold"):
            np.testing.assert_array_equal(info["governor"][k], info_ref[k])
        assert np.all(info["liquidator"]["fill_frac"] == 0.0)
        steps += 1
        done = ma.market_done.copy()
        if done.any():  # new episodes in the ended markets, on both sides
            np.testing.assert_array_equal(done, te_ref | tr_ref)
            obs_ma = ma.reset(mask=done)["governor"]
            obs_ref, _ = ref.reset(options={"reset_mask": done})
            np.testing.assert_array_equal(obs_ma, obs_ref)
            resets += 1
    assert steps == 30 and total_liquidations > 0 and resets > 0
    ref.close()
