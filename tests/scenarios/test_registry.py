"""The registry as users see it: the listing, YAML presets, disjoint train and eval seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from levgym import scenarios
from levgym.cli import main
from levgym.engine.params import EngineParams
from levgym.scenarios import EVAL_SEED_OFFSET, eval_seed, is_eval_seed, train_seed
from levgym.scenarios.base import all_scenarios
from levgym.scenarios.docs import markdown_table
from levgym.scenarios.presets import preset_files, preset_from_yaml

ROOT = Path(__file__).resolve().parents[2]
PARAMS = EngineParams()


def test_scenarios_json_lists_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 12
    names = {r["name"] for r in rows}
    for required in (
        "black_thursday_2020",
        "may19_2021",
        "compound_dai_oracle_2020",
        "oracle_manipulation",
        "oracle_frozen",
        "liquidity_drought",
        "congestion",
        "dai_depeg",
    ):
        assert required in names
    for r in rows:
        assert r["name"] and r["kind"] and r["description"] and r["source"]
    kinds = {r["kind"] for r in rows}
    assert {
        "synthetic",
        "bootstrap",
        "replay",
        "oracle",
        "liquidity",
        "congestion",
        "depeg",
        "composite",
    } <= kinds


def test_presets_load_by_name_and_only_override_knobs() -> None:
    files = preset_files()
    assert len(files) >= 3
    for f in files:
        sc = scenarios.get(f.stem)
        assert sc.kind == "preset"
        base = preset_from_yaml(f)
        assert sc.knobs == base.knobs
        d = sc.drivers(2, 36, PARAMS, 0)
        assert d.fundamental_usd.shape == (36, 2)


def test_preset_by_path_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("scenario: gbm_calm\nknobs:\n  vol_annual: 2.0\n")
    sc = scenarios.get(str(good))
    assert sc.name == "mine" and sc.knobs["vol_annual"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenario: gbm_calm\nknobs:\n  volatility: 2.0\n")
    with pytest.raises(
        ValueError,
        match=r"bad\.yaml: unknown knob 'volatility' for scenario 'gbm_calm'; allowed .*vol_annual",
    ):
        scenarios.get(str(bad))
    bad.write_text("scenario: gbm_calm\nknobs:\n  vol_annual: [1]\n")
    with pytest.raises(ValueError, match=r"knobs\.vol_annual=\[1\] must be a number"):
        scenarios.get(str(bad))
    bad.write_text("scenario: nope\n")
    with pytest.raises(ValueError, match=r"unknown scenario 'nope'"):
        scenarios.get(str(bad))
    with pytest.raises(ValueError, match=r"does not exist"):
        scenarios.get(str(tmp_path / "none.yaml"))


def test_train_and_eval_seeds_are_disjoint() -> None:
    train = {train_seed(i) for i in range(0, EVAL_SEED_OFFSET, 997)} | {
        train_seed(EVAL_SEED_OFFSET - 1)
    }
    evals = {eval_seed(i) for i in range(0, 10 * EVAL_SEED_OFFSET, 997)}
    assert not train & evals
    assert not any(is_eval_seed(s) for s in train) and all(is_eval_seed(s) for s in evals)
    for bad in (-1, EVAL_SEED_OFFSET, 1.5, True):
        with pytest.raises(ValueError, match="train seed index"):
            train_seed(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval seed index"):
        eval_seed(-1)
    # the same index gives different paths for training and evaluation, in every scenario kind
    for name in ("gbm_calm", "merton_crash", "bootstrap_eth", "congestion"):
        sc = scenarios.get(name)
        a = sc.drivers(2, 144, PARAMS, train_seed(3))
        b = sc.drivers(2, 144, PARAMS, eval_seed(3))
        assert not np.array_equal(a.fundamental_usd, b.fundamental_usd) or not np.array_equal(
            a.gas_gwei, b.gas_gwei
        )


def test_docs_table_is_generated_from_the_registry() -> None:
    page = (ROOT / "docs" / "scenarios.md").read_text()
    block = "<!-- gen:scenario-table -->\n" + markdown_table() + "\n<!-- /gen:scenario-table -->"
    assert block in page, "docs/scenarios.md is stale: run `python -m levgym.docs --write`"
    for s in all_scenarios():
        assert f"| `{s.name}` |" in page
