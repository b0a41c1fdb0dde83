"""`--ray` options: without Ray installed one line naming the extra (exit 2); bad values and
Ray-only options without `--ray` rejected before any work."""

from __future__ import annotations

import sys

import pytest

from levgym.cli import main
from levgym.distributed import pin_threads

TINY = ["stress", "--paths", "4", "--positions", "4", "--horizon-hours", "1", "--no-progress"]


def test_ray_missing_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main([*TINY, "--out", str(tmp_path / "r"), "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "pip install 'levgym[ray]'" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--ray", "not an address"], "is not a Ray address"),
        (["--ray-workers", "2"], "--ray-workers 2 has no effect without --ray"),
        (["--ray", "--ray-workers", "0"], "--ray-workers=0 is out of range"),
        (["--ray", "--ray-retries", "-1"], "--ray-retries=-1 is out of range"),
    ],
)
def test_bad_ray_options_are_one_line(extra, needle, capsys, tmp_path):
    assert main([*TINY, "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_pin_threads_sets_numba_torch_and_the_environment(monkeypatch):
    import numba
    import torch

    before = (numba.get_num_threads(), torch.get_num_threads())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    try:
        got = pin_threads(1, torch_threads=1)
        assert got == {"numba_threads": 1, "torch_threads": 1}
        assert numba.get_num_threads() == 1 and torch.get_num_threads() == 1
        import os

        assert os.environ["OMP_NUM_THREADS"] == "1"
        with pytest.raises(ValueError, match="threads=0 is out of range"):
            pin_threads(0)
    finally:
        numba.set_num_threads(before[0])
        torch.set_num_threads(before[1])


def test_stress_cli_with_ray_writes_the_same_report(tmp_path, capsys):
    """`levgym stress --ray` end to end (Ray started and shut down by the command), with a
    sweep: summary.json and paths.csv equal the run without Ray but for where it ran."""
    import json

    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    argv = [
        *TINY,
        "--paths",
        "40",
        "--batch-size",
        "10",
        "--no-plots",
        "--sweep",
        "protocol.liquidation_threshold=0.83,0.86",
    ]
    assert main([*argv, "--out", str(tmp_path / "here")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"]) == 0
    assert not ray.is_initialized()
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("here", "ray"))
    assert a["executor"] == "this process" and b["executor"].startswith("ray (2 workers")
    for key in ("command", "out_dir", "wall_time_s", "executor", "files"):
        a.pop(key), b.pop(key)
    assert a == b
    assert (tmp_path / "here" / "paths.csv").read_text() == (
        tmp_path / "ray" / "paths.csv"
    ).read_text()
