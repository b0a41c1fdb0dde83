"""The GPU check script (python -m levgym.bench.cuda), run on CPU tensors where no GPU is lent."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from levgym.bench.cuda import main  # noqa: E402


def test_cuda_check_runs_on_cpu_tensors_and_finds_parity(capsys):
    assert main(["--device", "cpu", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parity_ok"]
    assert {r["scenario"] for r in out["parity"]} == {
        "perfect_storm",
        "crash_oracle_attack",
        "dai_depeg",
        "oracle_frozen",
    }
    assert sum(r["liquidations"] for r in out["parity"]) > 0  # cascades ran, parity means something
    assert out["speed"][0]["numba_updates_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_check_without_a_gpu_says_so_in_one_line(capsys):
    assert main(["--device", "cuda", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0] and "allowed" in err[0]
