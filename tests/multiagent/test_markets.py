"""The batched multi-agent market: backends agree, bad input names the value, the market
maker's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.multiagent import MultiAgentMarkets
from levgym.multiagent.formulas import market_maker_flows, market_maker_lp

SMALL = dict(num_positions=16, horizon_h=6.0, scenarios="shock")


def _run(backend: str) -> list[dict[str, np.ndarray]]:
    mk = MultiAgentMarkets(2, backend=backend, **SMALL)
    mk.reset(seed=3)
    rng = np.random.default_rng(1)
    out = []
    for _ in range(6):
        o, r, _, _, _ = mk.step(
            rng.uniform(-1, 1, (2, 4)), rng.uniform(-1, 1, (2, 3, 4)), rng.uniform(-1, 1, (2, 2))
        )
        out.append({**{f"obs_{k}": v for k, v in o.items()}, **{f"r_{k}": v for k, v in r.items()}})
        if mk.market_done.any():
            break
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_backends_agree_with_numba(backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    fast, other = _run("numba"), _run(backend)
    assert len(fast) == len(other)
    for a, b in zip(fast, other, strict=True):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-6, err_msg=k)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_liquidators": 0}, "num_liquidators"),
        ({"block_auction": "dark"}, "block_auction"),
        ({"max_share_frac": 1.5}, "max_share_frac"),
        ({"mm_share_frac": 0.0}, "mm_share_frac"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        MultiAgentMarkets(1, **{**SMALL, **kwargs})


def test_bad_actions_are_refused_and_ended_markets_must_be_reset() -> None:
    mk = MultiAgentMarkets(1, **SMALL)
    mk.reset(seed=0)
    with pytest.raises(ValueError, match="liquidator actions have shape"):
        mk.step(np.zeros((1, 4)), np.zeros((1, 2, 4)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        mk.step(np.full((1, 4), np.nan), np.zeros((1, 3, 4)), np.zeros((1, 2)))
    for _ in range(6):
        mk.step(np.zeros((1, 4)), np.zeros((1, 3, 4)), np.zeros((1, 2)))
        if mk.market_done.any():
            break
    assert mk.market_done.all()
    with pytest.raises(RuntimeError, match="reset them"):
        mk.step(np.zeros((1, 4)), np.zeros((1, 3, 4)), np.zeros((1, 2)))
    mk.reset(mask=mk.market_done)
    assert not mk.market_done.any() and mk.alive.all()


def test_impermanent_loss_is_hold_minus_position_for_a_price_move() -> None:
    """A constant-product position of L units: moving the price from p0 to p1 along the curve,
    holding its starting assets would have gained ``IL`` more than the position did."""
    units, p0 = 1000.0, np.array([2000.0, 2000.0, 2000.0])
    p1 = np.array([1500.0, 2000.0, 2600.0])
    x0, y0 = units / np.sqrt(p0), units * np.sqrt(p0)  # reserves with sqrt(x y) = L
    x1, y1 = units / np.sqrt(p1), units * np.sqrt(p1)
    share0, held0, value0 = market_maker_lp(units, x0, y0, 1.0)
    _, _, value1 = market_maker_lp(units, x1, y1, 1.0)
    assert np.all(share0 == 1.0) and np.allclose(held0, x0)
    _, fees, il = market_maker_flows(0.0, 0.0, 0.0, 0.003, 1.0, units, p0, p1, 1.0)
    hold = held0 * p1 + y0 - (held0 * p0 + y0)
    np.testing.assert_allclose(il, hold - (value1 - value0), rtol=1e-12, atol=1e-9)
    assert il[1] == 0.0 and np.all(il >= 0) and np.all(fees == 0.0)


def test_step_sale_split_against_the_per_block_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step's one split of the agents' sales (:func:`levgym.engine.auction.sale_shares` on
    the step's counters) against the sequence computed block by block from each block's
    counters (numpy backend): over the default step's 6 blocks, whose reserves differ, each
    agent's return is within 1% of the per-block sequence's and the agents' total is exact.
    (With one block per step the two are the same computation; its exactness against naive
    swaps is tests/engine/test_auction.py::test_engine_block_sales_in_sequence.)"""
    import levgym.multiagent.markets as markets
    from levgym.engine.auction import sale_shares
    from levgym.engine.params import EngineParams

    params, blocks = EngineParams(), 6
    e, m = 4, 3
    mk = MultiAgentMarkets(
        e, num_liquidators=m, backend="numpy", num_positions=32, horizon_h=12.0, params=params,
        scenarios=["black_thursday_2020_fast", "liquidity_drought"],
    )  # fmt: skip
    fee, core, seen = params.market.pool_fee_frac, mk.core, {"blocks": []}
    names = ("agent_sale_debt", "agent_sale_mid_debt", "agent_sold_asset")
    substep = core.substep

    def spy_substep(orders):
        before = {k: core.field(k).copy() for k in names}
        substep(orders)
        seen["blocks"].append({k: core.field(k) - before[k] for k in names})

    def spy_attribute(ao, fills, delta, auction, f):
        seen["orders"], seen["flows"] = (
            ao,
            markets.__dict__["_attribute"](ao, fills, delta, auction, f),
        )
        return seen["flows"]

    monkeypatch.setattr(core, "substep", spy_substep)
    monkeypatch.setitem(markets.__dict__, "_attribute", markets.attribute)
    monkeypatch.setattr(markets, "attribute", spy_attribute)
    mk.reset(seed=2)
    rng = np.random.default_rng(2)
    worst, worst_average, compared = 0.0, 0.0, 0
    for _ in range(60 // blocks):
        la = rng.uniform(0.0, 1.0, (e, m, 4))  # claim and sell half or more
        la[..., 2] = -1.0
        seen["blocks"] = []
        mk.step(np.zeros((e, 4)), la, np.zeros((e, 2)))
        assert len(seen["blocks"]) == blocks
        ao = seen["orders"]
        exact = sum(b["agent_sale_debt"][:, None] * sale_shares(ao, b, fee) for b in seen["blocks"])
        got = seen["flows"]["sale_debt"]
        np.testing.assert_allclose(got.sum(axis=1), exact.sum(axis=1), rtol=1e-12)
        ok = exact > 0
        compared += int(ok.sum())
        if ok.any():
            worst = max(worst, float(np.max(np.abs(got[ok] - exact[ok]) / exact[ok])))
            # for scale: every unit at the average price (one bundle, no order)
            sells = ao.sell_asset
            total = sells.sum(axis=1, keepdims=True)
            average = got.sum(axis=1, keepdims=True) * sells / np.where(total > 0, total, 1.0)
            worst_average = max(
                worst_average, float(np.max(np.abs(average[ok] - exact[ok]) / exact[ok]))
            )
        if mk.market_done.any():
            mk.reset(mask=mk.market_done)
    print(f"{compared} agent-steps with sales; largest relative difference of an agent's return "
          f"from the per-block sequence: {worst:.2e} (the average-price split: "
          f"{worst_average:.2e})")  # fmt: skip
    assert compared > 20
    assert worst < 1e-2
