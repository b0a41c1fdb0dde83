"""M agent liquidators in a block: gas-bid priority, fills, gas by block auction, attribution."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.engine import Drivers
from levgym.engine.auction import (
    CLAIM_COUNTERS,
    SALE_COUNTERS,
    AgentOrders,
    attribute,
    claim_fills,
    priority,
    resolve,
    sale_shares,
)
from levgym.engine.orders import Orders
from levgym.engine.reference import reference_agent_block, reference_agent_sales
from levgym.engine.rules import agent_gas_usd, per_unit, sell_asset
from levgym.engine.state import from_book
from levgym.simulation import Simulator

from .helpers import quiet_params

COUNTERS = CLAIM_COUNTERS + SALE_COUNTERS + ("keeper_sold_asset", "liquidations")


def _one_position_block(backend: str = "numpy"):
    """One env, one position made liquidatable by a 20% fall; gas is paid (30 gwei)."""
    params = quiet_params(gas_units_per_liquidation=300_000.0)
    path = np.array([[1600.0], [1600.0]])
    drivers = Drivers.from_price(path, arb_speed_frac=1.0, gas_gwei=30.0)
    state = from_book(params, np.array([[100.0]]), np.array([[150_000.0]]), 2000.0, gas_gwei=30.0)
    return Simulator(params, drivers, 1, seed=0, backend=backend, state=state)


def _run_block(agent_orders: AgentOrders, backend: str = "numpy"):
    sim = _one_position_block(backend)
    orders, fills = resolve(agent_orders)
    before = {k: np.asarray(getattr(sim.state, k), dtype=float).copy() for k in COUNTERS}
    sim.substep(orders)
    delta = {k: np.asarray(getattr(sim.state, k), dtype=float) - before[k] for k in COUNTERS}
    return orders, fills, delta


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_hand_built_block_higher_gas_bid_wins(backend: str) -> None:
    """Two liquidators ask for all of one position; the higher bid (agent 1) takes it."""
    ao = AgentOrders(claim_share_frac=np.array([[1.0, 1.0]]), gas_bid_frac=np.array([[0.1, 0.5]]))
    orders, fills, delta = _run_block(ao, backend)
    np.testing.assert_array_equal(fills, [[0.0, 1.0]])
    np.testing.assert_array_equal(orders.claim_share_frac, [1.0])
    assert delta["liquidations"][0] == 1.0  # the position was liquidated, by the winner
    assert delta["keeper_sold_asset"][0] == 0.0  # the keepers got nothing either
    assert delta["agent_seized_asset"][0] > 0 and delta["agent_gas_usd"][0] > 0
    private = attribute(ao, fills, delta, "private")
    public = attribute(ao, fills, delta, "public")
    for flows in (private, public):
        assert flows["seized_asset"][0, 0] == 0.0 and flows["repaid_debt"][0, 0] == 0.0
        np.testing.assert_allclose(flows["seized_asset"][0, 1], delta["agent_seized_asset"][0])
        np.testing.assert_allclose(flows["repaid_debt"][0, 1], delta["agent_repaid_usd"][0])
        # the winner pays the base gas of the liquidation at its bid, 1.5 times the base price
        np.testing.assert_allclose(flows["gas_usd"][0, 1], 1.5 * delta["agent_gas_usd"][0])
    assert private["gas_usd"][0, 0] == 0.0  # a builder's bundle: the loser pays nothing
    # a mempool gas auction: the loser's reverted transaction pays its gas at its bid
    np.testing.assert_allclose(public["gas_usd"][0, 0], 1.1 * delta["agent_gas_usd"][0])


def test_tied_bids_go_by_agent_index_and_shares_fill_in_order() -> None:
    claims = np.array([[0.6, 0.6, 0.6], [0.2, 0.3, 0.4], [1.0, 0.0, 1.0]])
    bids = np.array([[0.2, 0.2, 0.1], [0.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    fills = claim_fills(claims, bids)
    np.testing.assert_allclose(fills, [[0.6, 0.4, 0.0], [0.2, 0.3, 0.4], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(priority(bids)[0], [0, 1, 2])
    np.testing.assert_array_equal(priority(bids)[2], [1, 0, 2])


def _random_orders(rng: np.random.Generator, e: int, m: int):
    claims = np.where(rng.random((e, m)) < 0.2, 0.0, rng.random((e, m)))
    claims = np.where(rng.random((e, m)) < 0.2, 1.0, claims)
    bids = rng.choice([0.0, 0.1, 0.25, 1.0, 3.0], size=(e, m))  # many ties
    return claims, bids


@pytest.mark.parametrize("seed", range(5))
def test_fills_and_gas_match_the_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    e, m = 64, int(rng.integers(1, 6))
    claims, bids = _random_orders(rng, e, m)
    block_gas = rng.uniform(0.0, 50.0, e)
    fills = claim_fills(claims, bids)
    assert np.all(fills.sum(axis=1) <= 1.0 + 1e-12) and np.all(fills <= claims)
    for public in (False, True):
        ref_fills, ref_gas = reference_agent_block(claims, bids, block_gas, public)
        np.testing.assert_allclose(fills, ref_fills, rtol=0, atol=1e-12)
        total = fills.sum(axis=1)[:, None]
        gas = agent_gas_usd(fills, claims, total, block_gas[:, None] * total, bids, float(public))
        np.testing.assert_allclose(gas, ref_gas, rtol=1e-12, atol=1e-9)


def test_fills_on_torch_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    claims, bids = _random_orders(rng, 128, 4)
    got = claim_fills(torch.as_tensor(claims), torch.as_tensor(bids))
    np.testing.assert_array_equal(got.numpy(), claim_fills(claims, bids))


def test_one_agent_passes_its_orders_through_unchanged() -> None:
    rng = np.random.default_rng(3)
    claim = rng.random(16)
    sell = rng.random(16) * 3.0
    ao = AgentOrders(claim[:, None], rng.random((16, 1)), sell[:, None])
    base = Orders(liquidity_delta_frac=rng.random(16) - 0.5)
    orders, fills = resolve(ao, base)
    np.testing.assert_array_equal(orders.claim_share_frac, claim)
    np.testing.assert_array_equal(orders.sell_asset, sell)
    assert orders.liquidity_delta_frac is base.liquidity_delta_frac
    np.testing.assert_array_equal(fills[:, 0], claim)


def test_attribution_splits_every_counter_exactly() -> None:
    """Over a crash on a random book, the agents' parts sum to the engine's agent counters and
    each agent's part is its fill's (sale's) share of them."""
    from .helpers import book_sim

    rng = np.random.default_rng(11)
    params = quiet_params(pool_fee_frac=0.003)
    coll = rng.uniform(1.0, 50.0, (3, 40))
    debt = coll * 2000.0 * rng.uniform(0.7, 0.82, (3, 40))
    sim = book_sim(params, coll, debt, [2000.0, 1850.0, 1700.0, 1650.0], arb_speed=0.5)
    claims = np.array([[0.3, 0.5, 0.4], [0.0, 0.2, 0.1], [1.0, 1.0, 0.5]])
    bids = np.array([[0.0, 0.3, 0.1], [0.2, 0.1, 0.0], [0.5, 0.5, 0.0]])
    sells = np.array([[0.0, 1.0, 2.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ao = AgentOrders(claims, bids, sells)
    orders, fills = resolve(ao)
    before = {k: np.asarray(getattr(sim.state, k)).copy() for k in COUNTERS}
    for _ in range(3):
        sim.substep(orders)
    delta = {k: np.asarray(getattr(sim.state, k)) - before[k] for k in COUNTERS}
    assert np.all(delta["agent_seized_asset"] > 0)
    flows = attribute(ao, fills, delta, "private", params.market.pool_fee_frac)
    for name, key in (
        ("seized_asset", "agent_seized_asset"),
        ("repaid_debt", "agent_repaid_usd"),
        ("sale_debt", "agent_sale_debt"),
    ):
        np.testing.assert_allclose(flows[name].sum(axis=1), delta[key], rtol=1e-12)
    share = per_unit(delta["agent_seized_asset"], fills.sum(axis=1))
    np.testing.assert_allclose(flows["seized_asset"], share[:, None] * fills)
    # bid 0 and no lost share: the agents' gas adds up to the engine's
    np.testing.assert_allclose(flows["gas_usd"][1].sum(), delta["agent_gas_usd"][1], rtol=1e-12)


def test_bad_agent_orders_name_the_field() -> None:
    with pytest.raises(ValueError, match="claim_share_frac"):
        AgentOrders(np.array([[1.5]]), np.array([[0.0]])).check()
    with pytest.raises(ValueError, match="gas_bid_frac"):
        AgentOrders(np.array([[0.5]]), np.array([[-1.0]])).check()
    with pytest.raises(ValueError, match="sell_asset"):
        AgentOrders(np.array([[0.5]]), np.array([[0.0]]), np.array([0.0])).check()
    with pytest.raises(ValueError, match="block_auction"):
        attribute(AgentOrders(np.ones((1, 1)), np.zeros((1, 1))), np.ones((1, 1)), {}, "dark")


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_m_agents_parity_with_the_reference_loop(backend: str) -> None:
    """M = 3 agent liquidators on a crash: the resolved block run by each engine path equals
    the reference loop's substep, and each agent's flows equal the naive oracle's (fills by
    the reference's own priority loop, its share of the counters computed by hand)."""
    if backend == "torch":
        pytest.importorskip("torch")
    from levgym.engine.backend import to_numpy
    from levgym.engine.reference import reference_substep

    from .helpers import book_sim, compare_states

    rng = np.random.default_rng(5)
    params = quiet_params(pool_fee_frac=0.003, gas_units_per_liquidation=300_000.0)
    coll = rng.uniform(1.0, 50.0, (4, 30))
    debt = coll * 2000.0 * rng.uniform(0.7, 0.83, (4, 30))
    sim = book_sim(params, coll, debt, [1900.0, 1750.0, 1700.0], arb_speed=0.5, backend=backend)
    ref_sim = book_sim(params, coll, debt, [1900.0, 1750.0, 1700.0], arb_speed=0.5)
    claims, bids = _random_orders(rng, 4, 3)
    sells = np.where(rng.random((4, 3)) < 0.5, rng.uniform(0.0, 2.0, (4, 3)), 0.0)
    ao = AgentOrders(claims, bids, sells)
    orders, fills = resolve(ao)
    conv = sim.convert
    engine_orders = Orders(
        claim_share_frac=conv(orders.claim_share_frac), sell_asset=conv(orders.sell_asset)
    )
    ref_fills, _ = reference_agent_block(claims, bids, np.zeros(4), public=False)
    np.testing.assert_allclose(fills, ref_fills, atol=1e-12)
    for _ in range(3):
        before = {k: np.asarray(to_numpy(getattr(sim.state, k)), dtype=float) for k in COUNTERS}
        state0, row, u = ref_sim.state, ref_sim.driver_row(), ref_sim.noise().copy()
        ref_state, _ = reference_substep(state0, row, u, params, orders)
        ref_sim.state = ref_state
        ref_sim.t += 1
        sim.substep(engine_orders)
        compare_states(sim.state.to_numpy(), ref_state)
        delta = {
            k: np.asarray(to_numpy(getattr(sim.state, k)), dtype=float) - before[k]
            for k in COUNTERS
        }
        for public in (False, True):
            flows = attribute(
                ao, fills, delta, "public" if public else "private", params.market.pool_fee_frac
            )
            for e in range(4):  # by hand: agent i's share of the block is fill_i / sum(fill)
                total = sum(ref_fills[e])
                for i in range(3):
                    part = ref_fills[e][i] / total if total > 0 else 0.0
                    want = delta["agent_seized_asset"][e] * part
                    assert flows["seized_asset"][e, i] == pytest.approx(want, rel=1e-9, abs=1e-12)
                    block_gas = delta["agent_gas_usd"][e] / total if total > 0 else 0.0
                    lost = claims[e, i] - ref_fills[e][i] if public else 0.0
                    want_gas = (ref_fills[e][i] + lost) * block_gas * (1 + bids[e, i])
                    assert flows["gas_usd"][e, i] == pytest.approx(want_gas, rel=1e-9, abs=1e-9)
    assert np.asarray(to_numpy(sim.state.agent_seized_asset)).sum() > 0


def _bundle(x, y, sells, fee):
    """The engine's one sale of the agents' sum into a pool with reserves (x, y): the change of
    its sale counters and the reserves after it."""
    total = sells.sum(axis=1)
    x1, y1, out = sell_asset(x, y, total, fee)
    delta = {
        "agent_sold_asset": total,
        "agent_sale_debt": out,
        "agent_sale_mid_debt": total * (y / x),
    }
    return delta, x1, y1


def test_hand_built_sales_go_in_gas_order() -> None:
    """Two liquidators sell 20 units each into one pool (1,000 units and 2,000,000 of debt,
    fee 0.3%): the higher bidder sells first, at the better average price; their returns add up
    to the bundle's and equal the two swaps made one after the other."""
    fee = 0.003
    x, y = np.array([1000.0, 1000.0]), np.array([2e6, 2e6])
    sells = np.array([[20.0, 20.0], [20.0, 20.0]])
    bids = np.array([[0.1, 0.5], [0.5, 0.1]])  # env 0: agent 1 first; env 1: agent 0 first
    delta, x1, y1 = _bundle(x, y, sells, fee)
    flows = attribute(AgentOrders(np.zeros((2, 2)), bids, sells), np.zeros((2, 2)), {
        **delta, "agent_seized_asset": np.zeros(2), "agent_repaid_usd": np.zeros(2),
        "agent_gas_usd": np.zeros(2),
    }, "private", fee)  # fmt: skip
    price = flows["sale_debt"] / sells
    assert price[0, 1] > price[0, 0] and price[1, 0] > price[1, 1]
    # by hand: the first sells 20 into (1000, 2e6); the second into what the first left
    e = 20.0 * (1.0 - fee)
    first = 2e6 * e / (1000.0 + e)
    second = (2e6 - first) * e / (1000.0 + e + e)
    np.testing.assert_allclose(flows["sale_debt"][0], [second, first], rtol=1e-12)
    np.testing.assert_allclose(flows["sale_debt"][1], [first, second], rtol=1e-12)
    np.testing.assert_allclose(flows["sale_debt"].sum(axis=1), delta["agent_sale_debt"], rtol=1e-15)
    ref, xs, ys = reference_agent_sales(sells, bids, x, y, fee)
    np.testing.assert_allclose(flows["sale_debt"], ref, rtol=1e-12)
    # the sequence leaves the pool where the bundle does
    np.testing.assert_allclose(xs, x1, rtol=1e-14)
    np.testing.assert_allclose(ys, y1, rtol=1e-14)
    # each agent's units at the mid before the block's sales
    np.testing.assert_allclose(flows["sale_mid_debt"], sells * 2000.0, rtol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_sale_shares_match_the_reference_sequence(seed: int) -> None:
    """Random pools, sales (some zero) and bids (many ties): each agent's return computed from
    the bundle's counters equals the naive sequence of swaps, and one seller gets the bundle's
    return exactly."""
    rng = np.random.default_rng(seed)
    e, m = 64, int(rng.integers(1, 6))
    fee = float(rng.choice([0.0, 0.0005, 0.003, 0.01]))
    x = rng.uniform(100.0, 1e5, e)
    y = x * rng.uniform(500.0, 4000.0, e)
    sells = np.where(
        rng.random((e, m)) < 0.3, 0.0, x[:, None] * 10 ** rng.uniform(-7, -0.5, (e, m))
    )
    bids = rng.choice([0.0, 0.1, 0.25, 1.0], size=(e, m))
    delta, _, _ = _bundle(x, y, sells, fee)
    shares = sale_shares(AgentOrders(np.zeros((e, m)), bids, sells), delta, fee)
    ref, _, _ = reference_agent_sales(sells, bids, x, y, fee)
    np.testing.assert_allclose(delta["agent_sale_debt"][:, None] * shares, ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(shares.sum(axis=1)[sells.sum(axis=1) > 0], 1.0, rtol=1e-14)
    one = np.zeros((e, m))
    one[:, -1] = sells[:, 0] + 1.0
    d1, _, _ = _bundle(x, y, one, fee)
    s1 = sale_shares(AgentOrders(np.zeros((e, m)), bids, one), d1, fee)
    assert np.all(s1[:, -1] == 1.0) and np.all(s1[:, :-1] == 0.0)


def test_engine_block_sales_in_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the engine's block (the one-position crash, fee 0.3%): the reserves the agents' bundle
    met are read where the engine places the agent's sale; the agents' returns attributed from
    the block's counters equal the reference's swaps in gas order against those reserves."""
    from levgym.engine import step as engine_step
    from levgym.engine.backend import to_numpy

    seen = {}
    original = engine_step.agent_orders

    def spy(state, orders, params):
        seen["x"] = float(to_numpy(state.pool_asset)[0])
        seen["y"] = float(to_numpy(state.pool_debt)[0])
        return original(state, orders, params)

    monkeypatch.setattr(engine_step, "agent_orders", spy)
    params = quiet_params(pool_fee_frac=0.003)
    path = np.array([[1600.0], [1600.0]])
    drivers = Drivers.from_price(path, arb_speed_frac=1.0)
    state = from_book(params, np.array([[100.0]]), np.array([[150_000.0]]), 2000.0)
    sim = Simulator(params, drivers, 1, seed=0, backend="numpy", state=state)
    sells = np.array([[3.0, 0.0, 5.0]])
    bids = np.array([[0.2, 0.9, 0.7]])
    ao = AgentOrders(np.array([[0.5, 0.5, 0.5]]), bids, sells)
    orders, fills = resolve(ao)
    before = {k: np.asarray(to_numpy(getattr(sim.state, k)), dtype=float).copy() for k in COUNTERS}
    sim.substep(
        Orders(
            claim_share_frac=sim.convert(orders.claim_share_frac),
            sell_asset=sim.convert(orders.sell_asset),
        )
    )
    delta = {
        k: np.asarray(to_numpy(getattr(sim.state, k)), dtype=float) - before[k] for k in COUNTERS
    }
    flows = attribute(ao, fills, delta, "private", 0.003)
    ref, _, _ = reference_agent_sales(sells, bids, [seen["x"]], [seen["y"]], 0.003)
    assert ref[0, 2] > 0 and ref[0, 0] > 0 and ref[0, 1] == 0.0
    np.testing.assert_allclose(flows["sale_debt"], ref, rtol=1e-12)
    assert flows["sale_debt"][0, 2] / 5.0 > flows["sale_debt"][0, 0] / 3.0  # agent 2 bid higher
