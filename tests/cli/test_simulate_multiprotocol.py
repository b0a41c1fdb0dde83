"""`levgym simulate --protocols a,b,c`: the JSON is registered, one Aave protocol reproduces the
multi-asset preset, per-protocol values add up to the totals, contagion is shared minus isolated,
and bad input is one line with exit status 2."""

from __future__ import annotations

import json

import pytest

from levgym import results as R
from levgym.cli import main

ALL = "aave_v3_ethereum,compound_v3_usdc,morpho_wsteth_usdc"
SIZE = ["--num-envs", "2", "--positions", "48", "--steps", "24", "--seed", "3"]


def _run(capsys, *args: str) -> dict:
    assert main(["simulate", *args, *SIZE, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_one_aave_protocol_equals_the_multi_asset_preset(capsys):
    multi = _run(capsys, "--protocols", "aave_v3_ethereum")
    # the multi-protocol step's stable pool is constant product; the preset's is StableSwap
    single = _run(capsys, "--preset", "aave_v3_ethereum", "--set", "market.stable_pool=cpmm")
    # the preset's options the multi-protocol market does not take (borrower behaviour, deficit
    # cover, replays) and their keys
    preset_only = {"defensive_frac", "deficit_cover", "deficit_outstanding_start_usd", "replayed"}
    assert set(single) - set(multi) == preset_only
    for key, v in single.items():
        if key in preset_only:
            continue
        if isinstance(v, dict):
            for s, x in v.items():
                assert multi[key][s] == pytest.approx(x, rel=1e-12, abs=1e-9), (key, s)
        elif isinstance(v, float):
            assert multi[key] == pytest.approx(v, rel=1e-12, abs=1e-9), key
        else:
            assert multi[key] == v, key
    assert multi["protocols"] == ["aave_v3_ethereum"]


def test_three_protocols_json_is_registered_and_adds_up(capsys):
    d = _run(capsys, "--protocols", ALL, "--contagion")
    assert R.problems(d, "simulate") == []
    names = ALL.split(",")
    assert d["protocols"] == names and d["margin"] == "per_protocol"
    for key in (
        "bad_debt_usd_by_protocol",
        "liquidated_usd_by_protocol",
        "revenue_usd_by_protocol",
    ):
        assert set(d[key]) == set(names)
    assert sum(d["bad_debt_usd_by_protocol"].values()) == pytest.approx(
        d["bad_debt_start_usd"], abs=1e-6
    )
    assert sum(d["liquidated_usd_by_protocol"].values()) == pytest.approx(
        d["repaid_by_liquidators_start_usd"], rel=1e-12
    )
    assert sum(v["liquidations"] for v in d["by_protocol"].values()) == pytest.approx(
        d["liquidations"]
    )
    # per protocol, the per-asset identities hold
    for v in d["by_protocol"].values():
        for s in d["reserves"]:
            gap = (
                v["initial_debt_by_asset"][s]
                + v["interest_by_asset"][s]
                - v["repaid_by_liquidators_by_asset"][s]
                - v["bad_debt_by_asset"][s]
                - v["final_debt_by_asset"][s]
            )
            assert abs(gap) < 1e-9 * (1.0 + v["initial_debt_by_asset"][s])
    # contagion = shared minus isolated, on the same seeds
    iso = _run(capsys, "--protocols", ALL, "--isolated-markets")
    assert iso["isolated_markets"] is True
    for n in names:
        assert d["contagion_bad_debt_usd_by_protocol"][n] == pytest.approx(
            d["bad_debt_usd_by_protocol"][n] - iso["bad_debt_usd_by_protocol"][n], abs=1e-6
        )
        assert d["contagion_liquidated_usd_by_protocol"][n] == pytest.approx(
            d["liquidated_usd_by_protocol"][n] - iso["liquidated_usd_by_protocol"][n], abs=1e-6
        )
    uni = _run(capsys, "--protocols", ALL, "--margin", "unified")
    assert uni["margin"] == "unified" and "contagion_bad_debt_usd_by_protocol" not in uni


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocols", "aave_v3_ethereum,x"], "--protocols names 'x'; allowed aave_v3_ethereum"),
        (["--protocols", "compound_v3_usdc,compound_v3_usdc"], "more than once"),
        (["--margin", "unified"], "--margin needs --protocols"),
        (["--contagion"], "--contagion needs --protocols"),
        (["--protocols", ALL, "--contagion", "--isolated-markets"], "allowed without --isolated-markets"),
        (["--protocols", ALL, "--preset", "compound_v3"], "--preset compound_v3 is not allowed with --protocols"),
        (["--protocols", ALL, "--set", "protocol.ltv=0.5"], "--set protocol.ltv is not supported with --protocols"),
        (["--protocols", ALL, "--set", "market.x=1"], "unknown key market.x"),
        (["--protocols", ALL, "--set", "market.oracle_pool_weight_frac=2"], "oracle_pool_weight_frac"),
        (["--protocols", ALL, "--scenario", "shock"], "shock"),
        (["--protocols", ALL, "--set", "market.stable_pool=stableswap"], "allowed 'cpmm'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    assert main(["simulate", *args, "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
