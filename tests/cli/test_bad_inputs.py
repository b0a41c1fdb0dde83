"""The catalogue of bad inputs: each gives one line on stderr naming the value and what is allowed,
exit status 2, no traceback, before any heavy work, and writes nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from levgym.cli import main
from levgym.cli.common import build_params, parse_sets

T0 = 1_621_382_400  # 2021-05-19T00:00:00Z
SIM = ["simulate", "--out-json", "{out}/summary.json"]
STRESS = ["stress", "--no-progress", "--out", "{out}"]
EVAL = ["evaluate", "--baseline", "static", "--json"]
TRAIN = ["train", "--no-progress", "--out", "{out}"]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


NO_CUDA = pytest.mark.skipif(_cuda(), reason="this machine has CUDA")

CASES = [
    # --set: keys checked against each other name the new values, in either order
    (SIM + ["--set", "protocol.ltv=0.9", "--set", "protocol.liquidation_threshold=0.85"], "protocol.ltv=0.9 exceeds protocol.liquidation_threshold=0.85"),
    (SIM + ["--set", "protocol.liquidation_threshold=0.85", "--set", "protocol.ltv=0.9"], "protocol.ltv=0.9 exceeds protocol.liquidation_threshold=0.85"),
    # sizes beyond memory, estimated before allocating
    (SIM + ["--num-envs", "1e9"], "--num-envs 1000000000 x --positions 256 x 144 substeps needs about"),
    (SIM + ["--positions", "1e9"], "--positions 1000000000"),
    (SIM + ["--steps", "1e8"], "x 600000000 substeps needs about"),
    (SIM + ["--num-envs", "2.5"], "'2.5' is not a whole number"),
    (SIM + ["--seed", "-1"], "argument --seed: '-1' is negative; allowed a whole number >= 0"),
    (STRESS + ["--seed", "1e9x"], "argument --seed: '1e9x' is not a whole number"),
    (STRESS + ["--paths", "1e9"], "--paths 1000000000 x --positions 128 x 144 substeps needs about"),
    (STRESS + ["--horizon-hours", "1e9"], "6000000000 substeps needs about"),
    (EVAL + ["--episodes", "1e9"], "--episodes: 1000000000 envs"),
    (TRAIN + ["--hyper", "env_kwargs.horizon_h=1e9"], "6000000000 substeps needs about"),
    # work that fits in memory but would run for days asks for --yes
    (STRESS + ["--paths", "1e7"], "would run for about"),
    (SIM + ["--num-envs", "2000", "--positions", "20000", "--steps", "100"], "add --yes"),
    # finite bounds
    (SIM + ["--set", "market.pool_depth_usd=inf"], "market.pool_depth_usd=inf is out of range; allowed (0, 1e+15]"),
    (SIM + ["--set", "market.pool_depth_usd=1e308"], "market.pool_depth_usd=1e+308 is out of range; allowed (0, 1e+15]"),
    (SIM + ["--set", "borrowers.total_collateral_usd=inf"], "borrowers.total_collateral_usd=inf is out of range"),
    (SIM + ["--set", "market.initial_price_usd=-inf"], "market.initial_price_usd=-inf is out of range"),
    # CSVs
    (SIM + ["--price-csv", "{thousands}"], "line 3 has 3 fields but the header has 2"),
    (SIM + ["--price-csv", "{gap}"], "a gap of 7 days after 2021-05-20T23:00:00Z"),
    (SIM + ["--price-csv", "{fast}"], "spans 29 s"),
    (SIM + ["--price-csv", "{nocols}"], "no time column recognised among 'a', 'b'; allowed --time-column NAME"),
    (SIM + ["--price-csv", "{tmp}"], "not a file"),
    (SIM + ["--time-column", "ts"], "--time-column has no effect without --price-csv"),
    (STRESS + ["--price-csv", "{gap}"], "a gap of 7 days"),
    (EVAL + ["--price-csv", "{thousands}"], "line 3 has 3 fields"),
    # paths, checked before any work
    (STRESS + ["--out", "{afile}"], "--out '{afile}' is a file; allowed a folder"),
    (STRESS + ["--out", "{afile}/sub"], "cannot be created"),
    (["bench", "--quick", "--no-progress", "--out", "{afile}"], "is a file; allowed a folder"),
    (["bench", "--quick", "--no-progress", "--out", "{afile}/sub"], "cannot be created"),
    (["benchmark", "--quick", "--no-progress", "--out", "{afile}"], "is a file; allowed a folder"),
    (["benchmark", "--quick", "--governance-env", "levgym/Governance-v9"], "--governance-env 'levgym/Governance-v9' is unknown; allowed levgym/Governance-v0, levgym/Governance-v1"),
    (["benchmark", "--quick", "--full"], "--quick and --full exclude each other; allowed one of them"),
    (TRAIN + ["--out", "{afile}"], "is a file; allowed a folder"),
    (SIM + ["--plot", "{tmp}"], "--plot '{tmp}' is a folder; allowed a file path"),
    (SIM + ["--plot", "{out}/plot.txt"], "does not end in .png"),
    (SIM + ["--plot", "{afile}/plot.png"], "its folder cannot be created or written"),
    (["simulate", "--out-json", "{tmp}"], "--out-json '{tmp}' is a folder"),
    (EVAL + ["--suite", "{tmp}"], "--suite '{tmp}' is a folder; allowed a suite YAML file"),
    (TRAIN + ["--config", "{tmp}"], "--config '{tmp}' is a folder; allowed a YAML file"),
    (["evaluate", "--model", "{empty_run}"], "is a folder without model.zip; allowed a model.zip or a run folder"),
    (["evaluate", "--model", "{tmp}/nothing"], "does not exist; allowed a model.zip or a run folder"),
    (["evaluate", "--model", "{liq_run}", "--env", "levgym/Governance-v0"], "differs from the env the model was trained on (levgym/Liquidator-v1"),
    # train
    (TRAIN + ["--env", "levgym/Governanc-v0"], "(did you mean 'levgym/Governance-v0'?)"),
    (TRAIN + ["--algo", "ppp"], "--algo 'ppp' is unknown (did you mean 'ppo'?)"),
    (TRAIN + ["--hyper", "learning_rat=1e-3"], "(did you mean 'learning_rate'?)"),
    (TRAIN + ["--hyper", "learning_rate=abc"], "--hyper learning_rate='abc' is not a number"),
    (TRAIN + ["--hyper", "gamma=2"], "--hyper gamma=2 is out of range; allowed (0, 1]"),
    (TRAIN + ["--hyper", "n_envs=0"], "--hyper n_envs=0 is out of range; allowed >= 1"),
    (TRAIN + ["--hyper", "device=cuda"], "--hyper device cannot be set: use --device"),
    (TRAIN + ["--hyper", "env_kwargs.horizon=48"], "(did you mean 'horizon_h'?)"),
    (TRAIN + ["--hyper", "env_kwargs.horizon_h=7.5"], "horizon_h=7.5 is not allowed"),
    (TRAIN + ["--total-timesteps", "0"], "--total-timesteps=0 is out of range; allowed >= 1"),
    pytest.param(TRAIN + ["--device", "cuda"], "no CUDA GPU is available", marks=NO_CUDA),
    (TRAIN + ["--device", "gpu"], "--device 'gpu' is unknown; allowed cpu, cuda or cuda:N"),
    (["train", "--resume", "{liq_run}", "--algo", "sac"], "--algo would be ignored"),
    (["train", "--resume", "{liq_run}", "--hyper", "gamma=0.9"], "--hyper would be ignored"),
    # options silently ignored together
    (SIM + ["--device", "cpu"], "--device cpu has no effect with --backend numpy"),
    pytest.param(SIM + ["--backend", "torch", "--device", "cuda"], "no CUDA GPU is available", marks=NO_CUDA),
    (STRESS + ["--book", "rescaled"], "--book rescaled has no effect without --sweep"),
    (STRESS + ["--frontier-x", "debt"], "--frontier-x debt has no effect without --sweep"),
    (STRESS + ["--sens-paths", "10"], "--sens-paths has no effect without --sensitivities"),
    # unknown names suggest the closest
    (SIM + ["--scenario", "shok"], "unknown scenario 'shok' (did you mean 'shock'?)"),
    (STRESS + ["--scenario", "shok"], "(did you mean 'shock'?)"),
    (SIM + ["--preset", "aave_v3_wet"], "(did you mean 'aave_v3_weth'?)"),
    (SIM + ["--set", "protocol.ltvv=0.5"], "unknown key protocol.ltvv (did you mean 'ltv'?)"),
    (SIM + ["--set", "protocl.ltv=0.5"], "(did you mean 'protocol'?)"),
    (SIM + ["--set", "scenario.drop_fra=0.3"], "(did you mean 'drop_frac'?)"),
    (["evaluate", "--baseline", "statc"], "(did you mean 'static'?)"),
    (["evaluate", "--baseline", "static", "--env", "Governance-v0"], "(did you mean 'levgym/Governance-v0'?)"),
    (EVAL + ["--scenario", "shok"], "(did you mean 'shock'?)"),
    (EVAL + ["--env", "levgym/PortfolioGovernance-v0", "--price-csv", "{gap}"], "--price-csv is not supported with --env levgym/PortfolioGovernance-v0"),
    (EVAL + ["--env", "levgym/PortfolioGovernance-v0", "--scenario", "calm"], "unknown multi-asset scenario 'calm'"),
]  # fmt: skip


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # a fixed memory limit: the memory cases need TBs, the time case 5 GB
    monkeypatch.setenv("LEVGYM_MEMORY_LIMIT_BYTES", "64e9")
    monkeypatch.chdir(tmp_path)  # default run folders would land here
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "thousands.csv").write_text(
        "time,price\n2021-05-19T00:00:00Z,3375\n2021-05-19T01:00:00Z,3,354.13\n"
    )
    times = [T0 + 3600 * i for i in range(48)] + [T0 + 3600 * (215 + i) for i in range(48)]
    (tmp_path / "gap.csv").write_text(
        "unix,price\n" + "".join(f"{t},{2000 + i}\n" for i, t in enumerate(times))
    )
    (tmp_path / "fast.csv").write_text(
        "unix,usd_price\n" + "".join(f"{T0 + i},{3000 - i}\n" for i in range(30))
    )
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "empty_run" / "config.yaml").write_text("env_id: levgym/Governance-v0\n")
    liq = tmp_path / "liq_run"
    liq.mkdir()
    (liq / "config.yaml").write_text(
        "env_id: levgym/Liquidator-v1\nalgo: ppo\nseed: 0\nhyperparameters: {}\n"
    )
    (liq / "model.zip").write_bytes(b"")
    names = ("afile", "thousands", "gap", "fast", "nocols", "empty_run", "liq_run")
    out = {
        n: str(tmp_path / (n + ".csv" if n in ("thousands", "gap", "fast", "nocols") else n))
        for n in names
    }
    out.update(tmp=str(tmp_path), out=str(tmp_path / "out"))
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("argv", "expected"), CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    argv: list[str], expected: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(files["tmp"])
    before = _snapshot(root)
    argv = [a.format(**files) for a in argv]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert expected.format(**files) in lines[0], lines[0]
    assert out == ""
    assert _snapshot(root) == before  # no --out folder, no run folder, nothing overwritten


@pytest.mark.parametrize(
    "order",
    [
        ["protocol.ltv=0.75", "protocol.liquidation_threshold=0.80"],
        ["protocol.liquidation_threshold=0.80", "protocol.ltv=0.75"],
    ],
)
def test_keys_of_a_section_are_validated_together(order, capsys) -> None:
    params = build_params(None, parse_sets(order))
    assert (params.protocol.ltv, params.protocol.liquidation_threshold) == (0.75, 0.80)
    argv = ["simulate", "--steps", "1", "--num-envs", "2", "--positions", "16", "--json"]
    rc, out, err = run_cli(argv + [x for kv in order for x in ("--set", kv)], capsys)
    assert rc == 0, err
    json.loads(out)


def test_json_never_carries_nan_or_infinity(capsys) -> None:
    from levgym.cli.common import print_json
    from levgym.io import finite_json

    print_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [1.0, None], "c": {"d": None}}
    assert finite_json((1, 2.5)) == [1, 2.5]


def test_counts_accept_scientific_notation(capsys) -> None:
    argv = ["simulate", "--num-envs", "2e0", "--positions", "1_6", "--steps", "1.0", "--json"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert (summary["num_envs"], summary["positions"], summary["steps"]) == (2, 16, 1)


def test_broken_pipe_ends_quietly(monkeypatch, capsys) -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["scenarios", "--json"]) == 1
    assert capsys.readouterr().err == ""


def test_scenarios_piped_into_head_has_no_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        f"{sys.executable} -m levgym scenarios --json | head -c 20",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.stdout.startswith("[")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_train_help_has_a_description_and_defaults(capsys) -> None:
    rc, out, _ = run_cli(["train", "--help"], capsys)
    assert rc == 0
    assert "Train a Stable-Baselines3 agent" in out
    assert "(default levgym/Governance-v0)" in out and "(default ppo)" in out
    assert "(default: cpu)" in out  # ArgumentDefaultsHelpFormatter


def test_model_folder_resolves_to_its_model_and_env(files) -> None:
    from levgym.cli.evaluate import resolve_model

    path, env = resolve_model(files["liq_run"], None)
    assert path == Path(files["liq_run"]) / "model.zip"
    assert env == "levgym/Liquidator-v1"
    assert resolve_model(str(path), "levgym/Liquidator-v1") == (path, "levgym/Liquidator-v1")
