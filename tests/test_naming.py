"""One naming scheme: preset-like names are lowercase snake_case; run folders are
``part__part__...__YYYYmmdd-HHMMSS`` and name the env version."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from levgym import naming, scenarios
from levgym.engine.params import PRESETS

ROOT = Path(__file__).resolve().parent.parent
RUN = re.compile(r"^[A-Za-z0-9._-]+(?:__[A-Za-z0-9._-]+)*__\d{8}-\d{6}$")


def test_every_preset_like_name_is_snake_case():
    from agents.baselines import baseline_names

    names = {f"protocol preset {n}": n for n in PRESETS}
    names.update({f"scenario {n}": n for n in scenarios.names() if not n.startswith("csv:")})
    names.update({f"baseline {n}": n for e in naming_envs() for n in baseline_names(e)})
    for folder in ("agents", "scenarios", "suites"):
        files = sorted((ROOT / "levgym" / "configs" / folder).iterdir())
        assert files, folder
        for f in files:
            assert f.suffix == ".yaml", f"{f}: config files end in .yaml"
            names[f"levgym/configs/{folder}/{f.name}"] = f.stem
    for f in (ROOT / "levgym" / "configs" / "suites").glob("*.yaml"):
        assert yaml.safe_load(f.read_text())["name"] == f.stem, f"{f}: name is not the file name"
    bad = {what: n for what, n in names.items() if not naming.NAME_PATTERN.match(n)}
    assert not bad


def naming_envs():
    from agents.evaluate import ENV_IDS

    return ENV_IDS


def test_check_name_says_what_is_allowed():
    assert naming.check_name("preset", "aave_v3_weth") == "aave_v3_weth"
    with pytest.raises(ValueError, match="snake_case"):
        naming.check_name("preset", "Aave-V3")


def test_run_names_follow_env_algo_seed_time():
    t = dt.datetime(2026, 11, 26, 6, 0, 0)
    name = naming.run_name(naming.env_part("levgym/Governance-v0"), "ppo", 1, time=t)
    assert name == "levgym-Governance-v0__ppo__1__20261126-060000"
    # a part never holds the separator or a path separator
    odd = naming.run_name("aave_v3_weth", "csv:some/dir/my__file.csv", 0, time=t)
    assert odd.split("__") == ["aave_v3_weth", "csv-some-dir-my_file.csv", "0", "20261126-060000"]
    assert naming.run_name("a", "b", time=False) == "a__b"


def test_commands_use_the_scheme(tmp_path, monkeypatch):
    from agents.train import run_name
    from levgym.cli.stress import _default_out

    assert RUN.match(run_name("levgym/Liquidator-v1", "ppo", 3))
    assert run_name("levgym/Liquidator-v1", "ppo", 3).startswith("levgym-Liquidator-v1__ppo__3__")
    monkeypatch.chdir(tmp_path)
    out = _default_out(argparse.Namespace(preset="aave_v3_weth", seed=4), "shock")
    assert out.parent == Path("runs") / "stress"
    assert RUN.match(out.name) and out.name.startswith("aave_v3_weth__shock__4__")
    out.mkdir(parents=True)
    again = _default_out(argparse.Namespace(preset="aave_v3_weth", seed=4), "shock")
    assert again != out  # a second run in the same second gets its own folder
