"""`levgym simulate --preset aave_v3_ethereum` with the keepers' off-pool venues and the single
engine's statistics fields (`--set market.keeper_*`, `--set market.statistics=true`): the extra
keys are registered, consistent with each other, and absent by default."""

from __future__ import annotations

import json

from levgym import results as R
from levgym.cli import main

from .test_simulate_portfolio import BASE

EXTRA = (
    "keeper_sold_by_asset",
    "keeper_venue_sold_by_asset",
    "keeper_aggregator_sold_by_asset",
    "keeper_cex_sold_by_asset",
    "keeper_cex_pending_by_asset",
    "fundamental_min_over_start_by_reserve",
    "pool_min_over_start_by_reserve",
    "positions_liquidated",
    "protocol_fee_usd",
)


def _run(capsys, *sets: str) -> dict:
    args = [*BASE, "--steps", "48", "--seed", "1", "--scenario", "usdt_break", "--json"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_venue_and_statistics_keys_are_registered_and_consistent(capsys):
    d = _run(
        capsys, "market.stable_pool=cpmm", "market.statistics=true",
        "market.keeper_aggregator_depth_usd=2e6", "market.keeper_cex_depth_usd=3e6",
        "market.keeper_cex_latency_substeps=3", "market.volatile_pool_depth_usd=2e6",
    )  # fmt: skip
    assert R.problems(d, "simulate") == []
    assert all(k in d for k in EXTRA)
    assert d["liquidations"] > 0 and d["positions_liquidated"] > 0
    assert d["positions_liquidated"] <= d["liquidations"]
    for s in d["reserves"]:
        off = d["keeper_aggregator_sold_by_asset"][s] + d["keeper_cex_sold_by_asset"][s]
        assert off <= d["keeper_sold_by_asset"][s] * (1 + 1e-12) + 1e-12
        assert d["keeper_venue_sold_by_asset"][s] == 0.0  # the split, not the fixed share
        assert 0 < d["fundamental_min_over_start_by_reserve"][s] <= 1.0
        assert 0 < d["pool_min_over_start_by_reserve"][s] <= 1.0 + 1e-12
    assert sum(d["keeper_aggregator_sold_by_asset"].values()) > 0
    assert d["protocol_fee_usd"] > 0


def test_the_default_output_has_none_of_them(capsys):
    d = _run(capsys)
    assert not [k for k in EXTRA if k in d]
