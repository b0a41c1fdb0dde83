"""The wheel is complete: installed into a fresh venv, levgym runs from another folder with every
scenario, algorithm config, suite and data file of the source tree (they are package data)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from levgym import scenarios

ROOT = Path(__file__).resolve().parents[1]
# what a build never needs (and a checkout may hold, large): skipped when copying the tree
NOT_SOURCE = (".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no source tree on the path
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """A wheel built from a copy of the checkout, installed (no deps) into a fresh venv whose
    dependencies come from this interpreter's site-packages; a folder outside both to run in."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp / "dist"
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
            + [str(src), "-w", str(dist)],
            tmp,
            300,
        )
    )
    (wheel,) = dist.glob("levgym-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = Path(sysconfig.get_path("scripts", vars={"base": str(env_dir)}))
    python = bindir / Path(sys.executable).name
    purelib = Path(_ok(_run([str(python), "-c", _PURELIB], tmp, 60)).strip())
    # plain path lines: the outer site-packages joins sys.path but its .pth files (an editable
    # install's finder) are not run, so only the wheel can provide levgym
    (purelib / "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _ok(
        _run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
            + ["--ignore-installed", str(wheel)],
            tmp,
            300,
        )
    )
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return {"python": python, "levgym": bindir / "levgym", "cwd": elsewhere, "env": env_dir}


_PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"

_INVENTORY = """
import json, levgym, agents
from importlib import resources
from levgym.configs import KINDS, shipped
print(json.dumps({
    "levgym": levgym.__file__,
    "agents": agents.__file__,
    "configs": {k: shipped(k) for k in KINDS},
    "data": sorted(p.name for p in resources.files("levgym").joinpath("data").iterdir()),
}))
"""


def test_installed_wheel_ships_configs_data_and_agents(installed):
    got = json.loads(_ok(_run([str(installed["python"]), "-c", _INVENTORY], installed["cwd"], 120)))
    env_dir = installed["env"].resolve()
    for pkg in ("levgym", "agents"):
        assert Path(got[pkg]).resolve().is_relative_to(env_dir), (pkg, got[pkg])
    source_configs = ROOT / "levgym" / "configs"
    for kind, names in got["configs"].items():
        expected = sorted(p.stem for p in (source_configs / kind).glob("*.y*ml"))
        assert names == expected and names, kind
    source_data = sorted(p.name for p in (ROOT / "levgym" / "data").iterdir() if p.is_file())
    assert got["data"] == source_data


def test_installed_cli_lists_the_source_trees_scenarios(installed):
    out = _ok(_run([str(installed["levgym"]), "scenarios", "--json"], installed["cwd"], 120))
    names = [row["name"] for row in json.loads(out)]
    assert names == [s.name for s in scenarios.all_scenarios()]
    presets = {row["name"] for row in json.loads(out) if row["kind"] == "preset"}
    assert presets == {p.stem for p in (ROOT / "levgym" / "configs" / "scenarios").glob("*.yaml")}


@pytest.mark.slow
def test_installed_quick_benchmark_runs_from_another_folder(installed):
    out = installed["cwd"] / "bench"
    proc = _run(
        [str(installed["levgym"]), "benchmark", "--quick", "--no-progress", "--out", str(out)],
        installed["cwd"],
        1800,
    )
    _ok(proc)
    results = json.loads((out / "results.json").read_text())
    from agents.benchmark import DEFAULT_GOVERNANCE_ENV, LIQUIDATOR_ENV

    # the installed package's envs: the governor's and the liquidator procedure's (Liquidator-v2)
    assert set(results["objective"]) == {DEFAULT_GOVERNANCE_ENV, LIQUIDATOR_ENV}
    assert LIQUIDATOR_ENV == "levgym/Liquidator-v2"
    assert (out / "report.md").is_file()
    assert "levgym evaluate --model" in proc.stdout
