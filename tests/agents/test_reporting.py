"""Benchmark report formatting: plain numbers, intervals, units, the verdict, smoothing, the
TensorBoard command, and the summary `levgym benchmark` prints at the end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.benchmark import summary
from agents.reporting import (
    ema,
    mean_ci,
    plain,
    return_unit,
    tensorboard_command,
    verdict,
)

GOV, LIQ = "levgym/Governance-v0", "levgym/Liquidator-v1"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (4.9e3, "4,900"),
        (1234567.8, "1,234,568"),
        (-88.8904, "-88.9"),
        (0.012345, "0.0123"),
        (-0.0, "0"),
        (0.0, "0"),
        (1e-12, "0"),
        (math.nan, "n/a"),
        (math.inf, "n/a"),
    ],
)
def test_plain_is_fixed_notation_with_separators(x, text):
    assert plain(x) == text


@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_plain_never_uses_exponents_and_keeps_three_digits(x):
    text = plain(x)
    assert "e" not in text.lower()
    back = float(text.replace(",", ""))
    assert abs(back - x) <= max(abs(x) * 5e-3, 1e-7)  # below about 1e-7: printed as 0


@pytest.mark.parametrize(
    ("mean", "ci", "text"),
    [
        (-298.262, 1248.557, "-300 ± 1,200"),
        (2639968.0, 3129475.0, "2,600,000 ± 3,100,000"),
        (-88.89, 14.604, "-89 ± 15"),
        (4912.3, None, "4,912"),
        (1.2345, 0.5678, "1.23 ± 0.57"),
        (-0.001, 0.5, "0.00 ± 0.50"),
        (0.0, 0.0, "0 ± 0"),
    ],
)
def test_mean_ci_rounds_the_mean_to_the_intervals_precision(mean, ci, text):
    assert mean_ci(mean, ci) == text


def test_rate_intervals_are_clipped_to_zero_one():
    assert mean_ci(0.333, 1.4, rate=True) == "0.33 [0.00, 1.00]"
    assert mean_ci(0.9, 0.05, rate=True) == "0.900 [0.850, 0.950]"
    assert mean_ci(0.0, 0.0, rate=True) == "0.00 [0.00, 0.00]"
    assert mean_ci(0.5, 12.0, rate=True) == "0.50 [0.00, 1.00]"


@given(st.floats(0.0, 1.0), st.floats(0.0, 10.0))
def test_rate_interval_bounds_stay_in_zero_one(mean, ci):
    inside = mean_ci(mean, ci, rate=True).split("[")[1].rstrip("]")
    lo, hi = (float(v) for v in inside.split(", "))
    assert 0.0 <= lo <= hi <= 1.0


def test_return_units_follow_reward_scale():
    assert return_unit(GOV) == "bp of TVL"
    assert return_unit(LIQ, {"num_positions": 8}) == "bp of initial capital"
    assert return_unit(GOV, {"reward_scale": 100}) == "% of TVL"
    assert return_unit(LIQ, {"reward_scale": 2.5}) == "initial capital x 2.5"


@pytest.mark.parametrize(
    ("obj", "cis", "head", "detail"),
    [
        ({"ppo": 10, "a": 0, "b": -5}, {"ppo": 1, "a": 1, "b": 1}, "beats every", "significant"),
        ({"ppo": 10, "a": 9, "b": -5}, {"ppo": 1, "a": 1, "b": 1}, "beats every", "over a is"),
        ({"ppo": 10, "a": 9}, {"ppo": 1, "a": 1}, "beats every", "not significant"),
        ({"ppo": 0, "a": 1}, {"ppo": 2, "a": 2}, "does not beat", "not significant"),
        ({"ppo": 0, "a": 9}, {"ppo": 2, "a": 2}, "does not beat", "Significantly better"),
        ({"ppo": 10, "a": 0}, {"ppo": None, "a": 1}, "beats every", "not significant"),
    ],
)
def test_verdict_states_the_winner_and_its_significance(obj, cis, head, detail):
    headline, text = verdict(obj, cis)
    assert head in headline and detail in text
    if "Significantly" in text:
        assert text.endswith("a.")
    if detail == "significant":
        assert "not significant" not in text and "inside" not in text


def test_ema_is_debiased_and_smooths():
    assert np.allclose(ema([3.0, 3.0, 3.0]), 3.0)  # no pull toward zero at the start
    assert np.allclose(ema([1.0, 5.0, 2.0], weight=0.0), [1.0, 5.0, 2.0])
    noisy = np.array([0.0, 10.0] * 20)
    smooth = ema(noisy, weight=0.9)
    assert smooth.shape == noisy.shape and np.ptp(smooth[10:]) < np.ptp(noisy) / 3
    with pytest.raises(ValueError, match="weight=1.0 is out of range"):
        ema([1.0], weight=1.0)


def test_tensorboard_command_loads_every_run_once():
    siblings = {GOV: "runs/b/train/governance-v0", LIQ: "runs/b/train/liquidator-v1"}
    assert tensorboard_command(siblings) == "tensorboard --logdir runs/b/train"
    apart = {GOV: "runs/a/gov", LIQ: "runs/other/liq"}
    cmd = tensorboard_command(apart)
    assert cmd.count("--logdir") == 1 and cmd.startswith("tensorboard --logdir_spec ")
    assert "governance-v0:runs/a/gov/logs" in cmd and "liquidator-v1:runs/other/liq/logs" in cmd
    assert tensorboard_command({GOV: "my runs/x"}) == "tensorboard --logdir 'my runs/x/logs'"


def _fake_report(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    runs = {GOV: str(out / "train" / "governance-v0"), LIQ: str(out / "train" / "liquidator-v1")}
    data = {
        "meta": {
            "runs": runs,
            "config": {"crash_scenario": "black_thursday_2020"},
            "eval_suite": {
                "name": "quick",
                "episodes": 3,
                "envs": {
                    GOV: {
                        "scenario_names": ["gbm_high_vol", "black_thursday_2020"],
                        "env_kwargs": {},
                    },
                    LIQ: {"scenario_names": ["gbm_high_vol"], "env_kwargs": {}},
                },
            },
        },
        "objective": {
            GOV: {"ppo": -88.8904, "static": -102.7213, "conservative": -89.07},
            LIQ: {"ppo": 4912.3, "greedy": -120.0},
        },
        "objective_ci95": {
            GOV: {"ppo": 14.604, "static": 24.715, "conservative": 13.972},
            LIQ: {"ppo": 362.0, "greedy": 124.0},
        },
    }
    (out / "results.json").write_text(json.dumps(data))
    return out, runs


def test_summary_prints_table_verdict_models_and_next_command(tmp_path):
    out, runs = _fake_report(tmp_path)
    text = summary(out)
    assert "e+0" not in text
    gov_lines = text.split(LIQ)[0].splitlines()
    assert "bp of TVL" in gov_lines[0] and "suite quick, 3 held-out episodes" in gov_lines[0]
    assert gov_lines[1].split() == ["rank", "policy", "objective", "95%", "interval"]
    assert gov_lines[2].split() == ["1", "ppo", "-89", "±", "15"]
    assert gov_lines[4].split() == ["3", "static", "-103", "±", "25"]
    assert "beats every baseline" in text and "not significant" in text
    liq_lines = text.split(LIQ)[1].splitlines()
    assert liq_lines[2].split() == ["1", "ppo", "4,910", "±", "360"]
    for run in runs.values():
        assert f"model: {run}/model.zip" in text
    assert f"tensorboard --logdir {out / 'train'}" in text
    assert (
        f"levgym evaluate --model {runs[GOV]}/model.zip --env {GOV} --scenario black_thursday_2020"
        in text
    )
    # the liquidator's suite has no crash replay: the command evaluates its whole suite
    assert f"levgym evaluate --model {runs[LIQ]}/model.zip --env {LIQ}\n" in text
    assert f"report: {out / 'report.md'}" in text
