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
