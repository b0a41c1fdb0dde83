"""Agent liquidators that claim: the multi-agent market against levgym/Liquidator-v1.

With one block per step (``run.substeps_per_step = 1``, Liquidator-v1's 10-minute step) and the
governor static (zero action), the market's engine path is the single-agent env's whenever the
resolved orders are its orders (see docs/multiagent.md, "Equivalence with the single-agent
envs")."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import levgym  # noqa: F401
from levgym.engine.params import EngineParams
from levgym.envs.liquidator import LIQUIDATOR_OUTPUTS
from levgym.multiagent import MultiAgentMarkets

E, M = 2, 3
STEPS = 36
KEYS = LIQUIDATOR_OUTPUTS[2:]  # every step info of Liquidator-v1


def _pair(backend: str, max_share_frac: float, block_auction: str = "private"):
    """The multi-agent market and Liquidator-v1 on the same one-block-per-step parameters,
    seeds and scenarios (two crashes: liquidations from the first hours)."""
    base = EngineParams()
    params = dataclasses.replace(base, run=dataclasses.replace(base.run, substeps_per_step=1))
    kw = dict(
        num_positions=24, horizon_h=6.0, scenarios=["black_thursday_2020_fast", "shock"],
        params=params, max_share_frac=max_share_frac,
    )  # fmt: skip
    ma = MultiAgentMarkets(E, num_liquidators=M, backend=backend, block_auction=block_auction, **kw)
    ref = gym.make_vec(
        "levgym/Liquidator-v1", num_envs=E, backend=backend, autoreset_mode="Disabled", **kw
    )
    return ma, ref


def _run(ma, ref, liquidator_actions, check, seed: int = 5) -> dict[str, float]:
    """Step both sides with the same static governor; ``liquidator_actions(rng)`` gives the
    agents' ``[E, M, 4]`` actions and Liquidator-v1's ``[E, 3]``; ``check`` compares a step."""
    obs = ma.reset(seed=seed)
    obs_ref, _ = ref.reset(seed=seed)
    check(obs["liquidator"], None, None, obs_ref, None, None)
    rng = np.random.default_rng(seed)
    totals = {"steps": 0, "seized": 0.0, "sold": 0.0, "bankrupt": 0}
    for _ in range(STEPS):
        la, a_ref = liquidator_actions(rng)
        o, r, te, _, info = ma.step(np.zeros((E, 4)), la, np.zeros((E, 2)))
        o_ref, r_ref, te_ref, _, info_ref = ref.step(a_ref)
        check(o["liquidator"], r["liquidator"], info["liquidator"], o_ref, r_ref, info_ref)
        np.testing.assert_array_equal(te["liquidator"].any(axis=1), te_ref)
        totals["steps"] += 1
        totals["seized"] += float(np.sum(info_ref["seized_asset"]))
        totals["sold"] += float(np.sum(info_ref["sold_asset"]))
        totals["bankrupt"] += int(np.sum(te_ref))
        if ma.market_done.any() or te_ref.any():  # an end (a bankruptcy) compared, then stop
            break
    ref.close()
    return totals


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_one_active_liquidator_reproduces_liquidator_v1(backend: str) -> None:
    """One agent liquidator plays Liquidator-v1's random actions at bid 0 (claims, sales,
    hedges); the other two claim nothing. Its observations, rewards and every step info equal
    Liquidator-v1's bit for bit."""
    ma, ref = _pair(backend, 0.5)
    active = 1

    def actions(rng):
        a = rng.uniform(-1.0, 1.0, (E, 3))
        la = np.tile(np.array([-1.0, 1.0, -1.0, 1.0]), (E, M, 1))  # no claim, no hedge, top bid
        la[:, active, :3] = a
        la[:, active, 3] = -1.0  # bid 0: Liquidator-v1 pays the base gas
        return la, a

    def check(o, r, info, o_ref, r_ref, info_ref):
        np.testing.assert_array_equal(o[:, active], o_ref)
        if info is None:
            return
        np.testing.assert_array_equal(r[:, active], r_ref)
        for k in KEYS:
            np.testing.assert_array_equal(info[k][:, active], info_ref[k], err_msg=k)
        for i in (0, 2):  # the idle ones: nothing filled, nothing paid
            assert np.all(info["fill_frac"][:, i] == 0.0) and np.all(info["gas_usd"][:, i] == 0.0)
            assert np.all(r[:, i] == 0.0)

    totals = _run(ma, ref, actions, check)
    assert totals["steps"] == STEPS and totals["seized"] > 0 and totals["sold"] > 0


@pytest.mark.parametrize("block_auction", ["private", "public"])
def test_greedy_liquidators_equal_liquidator_v1_claiming_all(block_auction: str) -> None:
    """The issue's case: every liquidator greedy (claims all of every liquidation). The block's
    liquidations run in the keepers' profit order whoever claims them; the top bidder fills
    all of them, so the market is Liquidator-v1 claiming all with the top bidder's sales.

    Bids all 0 (ties by index: liquidator 0 wins): the winner's observations, rewards and
    infos equal Liquidator-v1's bit for bit; the losers fill nothing, hold nothing and pay
    nothing (private) or, in a public auction, exactly the winner's gas (their reverted claim
    of all of it at bid 0)."""
    ma, ref = _pair("numba", 1.0, block_auction)

    def actions(rng):
        a = rng.uniform(-1.0, 1.0, (E, 3))
        a[:, 0] = 1.0  # claim all
        la = np.concatenate([np.repeat(a[:, None, :], M, axis=1), -np.ones((E, M, 1))], axis=2)
        la[:, 1:, 1] = rng.uniform(-1.0, 1.0, (E, M - 1))  # the losers' own sell share
        la[:, 1:, 2] = -1.0  # and no hedge: a loser's books move only by the gas it pays
        return la, a

    def check(o, r, info, o_ref, r_ref, info_ref):
        np.testing.assert_array_equal(o[:, 0], o_ref)
        if info is None:
            return
        np.testing.assert_array_equal(r[:, 0], r_ref)
        for k in KEYS:
            np.testing.assert_array_equal(info[k][:, 0], info_ref[k], err_msg=k)
        for i in range(1, M):
            assert np.all(info["fill_frac"][:, i] == 0.0)
            assert np.all(info["inventory_asset"][:, i] == 0.0)
            if block_auction == "private":
                assert np.all(info["gas_usd"][:, i] == 0.0) and np.all(r[:, i] == 0.0)
            else:
                np.testing.assert_array_equal(info["gas_usd"][:, i], info_ref["gas_usd"])

    totals = _run(ma, ref, actions, check)
    assert totals["steps"] >= 12 and totals["seized"] > 0 and totals["sold"] > 0
    assert totals["bankrupt"] > 0  # the comparison ran through a bankruptcy


def test_greedy_top_bidder_pays_its_bid_on_the_same_path() -> None:
    """Greedy liquidators with distinct bids (liquidator 2 highest, at 0.5): it fills every
    liquidation; the market's path, its fills, inventory and sales equal Liquidator-v1's claiming
    all (bit for bit: the engine path does not depend on the gas paid); its gas is 1.5 times
    the base gas Liquidator-v1 pays."""
    ma, ref = _pair("numba", 1.0, "public")

    def actions(rng):
        a = rng.uniform(-1.0, 1.0, (E, 3))
        a[:, 0] = 1.0
        la = np.repeat(np.concatenate([a, np.zeros((E, 1))], axis=1)[:, None, :], M, axis=1)
        la[:, :, 3] = [-0.5, -1.0, 0.0]  # bids 0.25, 0, 0.5 of the base gas price
        return la, a

    def check(o, r, info, o_ref, r_ref, info_ref):
        np.testing.assert_array_equal(o[:, 2, :15], o_ref[:, :15])  # the market's features
        if info is None:
            return
        for k in ("seized_asset", "repaid_usd", "sold_asset", "sale_proceeds_usd",
                  "slippage_usd", "inventory_asset", "take_frac"):  # fmt: skip
            np.testing.assert_array_equal(info[k][:, 2], info_ref[k], err_msg=k)
        np.testing.assert_allclose(info["gas_usd"][:, 2], 1.5 * info_ref["gas_usd"], rtol=1e-15)
        np.testing.assert_array_equal(info["fill_frac"][:, :2], 0.0)

    totals = _run(ma, ref, actions, check)
    assert totals["steps"] >= 12 and totals["seized"] > 0


def test_agents_sum_to_one_liquidator_claiming_their_sum() -> None:
    """Three liquidators claiming 1/4, 1/4 and 3/8 at different bids, each selling the same
    share of its own inventory: the market's path equals Liquidator-v1 claiming 7/8 and selling
    that share of the sum of their inventories; their flows add up to its flows (to rounding:
    the sum of the agents' sales is not the same float as the share of their summed
    inventory)."""
    ma, ref = _pair("numba", 1.0)

    def actions(rng):
        a = rng.uniform(-1.0, 1.0, (E, 3))
        a[:, 0] = 0.75  # Liquidator-v1 claims (0.75 + 1) / 2 = 7/8
        la = np.repeat(np.concatenate([a, np.zeros((E, 1))], axis=1)[:, None, :], M, axis=1)
        la[:, :, 0] = [-0.5, -0.5, -0.25]  # 1/4, 1/4, 3/8
        la[:, :, 3] = [0.0, 1.0, -1.0]  # bids 0.5, 1, 0: priority 1, 0, 2
        return la, a

    bids = np.array([0.5, 1.0, 0.0])

    def check(o, r, info, o_ref, r_ref, info_ref):
        np.testing.assert_allclose(
            ma.core.field("pool_asset"), ref.core.field("pool_asset"), rtol=1e-12
        )
        np.testing.assert_allclose(
            ma.core.field("oracle_usd"), ref.core.field("oracle_usd"), rtol=1e-12
        )
        if info is None:
            return
        np.testing.assert_allclose(info["fill_frac"].sum(axis=1), 0.875, rtol=1e-15)
        for k in ("seized_asset", "repaid_usd", "sold_asset", "sale_proceeds_usd",
                  "inventory_asset"):  # fmt: skip
            np.testing.assert_allclose(
                info[k].sum(axis=1), info_ref[k], rtol=1e-9, atol=1e-9, err_msg=k
            )
        base_gas = (info["gas_usd"] / (1.0 + bids)).sum(axis=1)
        np.testing.assert_allclose(base_gas, info_ref["gas_usd"], rtol=1e-9, atol=1e-12)
        # the sales in gas order: the top bidder (liquidator 1) gets the best price per unit
        price = info["sale_proceeds_usd"] / np.where(info["sold_asset"] > 0, info["sold_asset"], 1)
        sells = np.all(info["sold_asset"] > 0, axis=1)
        assert np.all(price[sells, 1] >= price[sells, 0]) and np.all(
            price[sells, 0] >= price[sells, 2]
        )

    totals = _run(ma, ref, actions, check)
    assert totals["steps"] >= 12 and totals["seized"] > 0 and totals["sold"] > 0
