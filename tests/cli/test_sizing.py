"""The memory estimates of `levgym.cli.sizing` against what a run really allocates."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tracemalloc

import numpy as np
import pytest

from levgym.cli import main, sizing
from levgym.engine.state import State


def test_layout_is_derived_from_the_state_fields() -> None:
    per_position, per_env, fixed = sizing.state_layout("float64")
    # every [E, N] field of State is counted: at least one byte each (bool), at most eight
    n_fields = len(dataclasses.fields(State))
    assert 11 <= per_position <= 8 * n_fields
    assert per_env > 8 * 20 and fixed >= 0
    assert sizing.state_layout("float32")[0] < per_position
    assert sizing.driver_row_bytes() == 7 * 8 + 1  # seven float64 paths and one bool


@pytest.mark.parametrize(
    ("envs", "positions", "steps"), [(32, 1024, 2), (8, 4096, 2), (4, 64, 100)]
)
def test_estimate_covers_the_measured_peak_without_wild_excess(envs, positions, steps) -> None:
    argv = [
        "simulate",
        "--num-envs",
        str(envs),
        "--positions",
        str(positions),
        "--steps",
        str(steps),
        "--json",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        main(["simulate", "--num-envs", "2", "--positions", "8", "--steps", "1", "--json"])  # warm
        tracemalloc.start()
        try:
            assert main(argv) == 0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    substeps = steps * 6
    estimate = sizing.step_bytes(envs, positions) + 3 * sizing.drivers_bytes(substeps, envs)
    assert peak <= estimate <= 4 * peak, (peak, estimate)


def test_available_memory_is_read_from_the_machine_or_the_override(monkeypatch) -> None:
    monkeypatch.delenv(sizing.LIMIT_ENV, raising=False)
    assert sizing.available_bytes() > 10**7
    monkeypatch.setenv(sizing.LIMIT_ENV, "1e9")
    assert sizing.available_bytes() == 10**9
    with pytest.raises(Exception, match="needs about 2.0 GB of memory .* has 1.0 GB available"):
        sizing.check_memory(2 * 10**9, "this run", "less")


def test_time_threshold_needs_yes() -> None:
    sizing.check_time(sizing.CONFIRM_ABOVE_S, "a run", yes=False)  # at the threshold: runs
    with pytest.raises(Exception, match="would run for about 2.0 h"):
        sizing.check_time(2 * 3600.0, "a run", yes=False)
    sizing.check_time(1e9, "a run", yes=True)
    assert np.isclose(
        sizing.work_seconds(1e6, 0, "numpy"), 1e6 / sizing.POSITION_SUBSTEPS_PER_S["numpy"]
    )
