"""`levgym bench`'s multi-protocol rows (levgym.bench.multiprotocol): structure and arithmetic,
never timings."""

import math

import pytest

from levgym.bench.multiprotocol import multiprotocol_rows, section_lines
from levgym.bench.report import _rate, _table


def test_rows_compare_p3_with_p1_at_the_same_total_positions():
    out = multiprotocol_rows(2, 12, 2, repeats=1)
    one, three = out["rows"]
    assert (one["protocols"], three["protocols"]) == (1, 3)
    assert one["positions"] == three["positions"] == 12
    for r in (one, three):
        assert r["seconds"] > 0
        assert math.isclose(
            r["position_updates_per_s"], r["envs"] * r["positions"] * r["substeps"] / r["seconds"]
        )
    assert math.isclose(
        out["p3_over_p1"], three["position_updates_per_s"] / one["position_updates_per_s"]
    )
    lines = section_lines({"multiprotocol": out}, True, _table, _rate)
    assert any("P = 3 over P = 1" in x for x in lines)
    with pytest.raises(ValueError, match="total_positions=10 is not allowed"):
        multiprotocol_rows(2, 10, 2)
