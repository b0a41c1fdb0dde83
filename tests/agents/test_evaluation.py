"""`levgym evaluate`: baselines and saved models on a suite with held-out seeds; CSV paths."""

import json

import numpy as np
import pytest

from agents.evaluate import evaluate, load_suite, mean_ci
from agents.train import train
from levgym.cli import main

SUITE = """
name: tiny
episodes: 3
seed: 1000000
envs:
  levgym/Governance-v0:
    env_kwargs: {num_positions: 16, horizon_h: 6}
    scenarios: [gbm_high_vol, shock]
  levgym/Liquidator-v1:
    env_kwargs: {num_positions: 16, horizon_h: 3}
    scenarios: [shock]
"""


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return path


def test_mean_ci_matches_student_t():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    out = mean_ci(v)
    assert out["mean"] == 2.5 and out["n"] == 4
    assert out["ci95"] == pytest.approx(3.182446305 * np.std(v, ddof=1) / 2.0, rel=1e-6)
    assert mean_ci(np.array([5.0]))["ci95"] is None


def test_validation_suite_has_its_own_seeds_and_no_real_replays():
    from levgym import scenarios as lib

    val, default = load_suite(name="validation"), load_suite(name="default")
    assert lib.is_eval_seed(val.seed)
    assert val.seed >= default.seed + default.episodes  # no episode of the default suite
    entry = val.for_env("levgym/Governance-v1")
    assert not {"black_thursday_2020", "may19_2021"} & set(entry.scenarios)
    assert entry.env_kwargs == default.for_env("levgym/Governance-v1").env_kwargs


def test_suite_rejects_training_seeds_and_unknown_scenarios(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace("seed: 1000000", "seed: 5"))
    with pytest.raises(ValueError, match=r"seed=5 is in the training range"):
        load_suite(bad)
    bad.write_text(SUITE.replace("[shock]", "[nope]"))
    with pytest.raises(ValueError, match=r"unknown scenario 'nope'"):
        load_suite(bad)


@pytest.mark.parametrize(
    ("env", "baseline"), [("levgym/Governance-v0", "static"), ("levgym/Liquidator-v1", "greedy")]
)
def test_evaluate_a_baseline(capsys, suite_file, env, baseline):
    assert (
        main(
            ["evaluate", "--baseline", baseline, "--env", env, "--suite", str(suite_file), "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] >= 1_000_000 and out["episodes"] == 3
    for metrics in out["scenarios"].values():
        assert metrics["return"]["n"] == 3
        assert all(np.isfinite(v["mean"]) for v in metrics.values())


def test_evaluate_a_saved_model_and_a_price_csv(capsys, suite_file, tmp_path):
    run = train(
        "levgym/Governance-v0",
        "ppo",
        total_timesteps=128,
        seed=0,
        out=tmp_path / "run",
        hyper=[
            "n_envs=2",
            "n_steps=64",
            "batch_size=64",
            "n_epochs=1",
            "env_kwargs.num_positions=16",
            "env_kwargs.horizon_h=6",
        ],
        progress=False,
        command="pytest",
    )
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(run / "model.zip"),
                "--env",
                "levgym/Governance-v0",
                "--suite",
                str(suite_file),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out["scenarios"]) == {"gbm_high_vol", "shock"}
    csv = tmp_path / "path.csv"
    csv.write_text(
        "time,price\n" + "\n".join(f"{3600 * i},{2000 - 40 * i}" for i in range(12)) + "\n"
    )
    assert (
        main(
            [
                "evaluate",
                "--baseline",
                "steward",
                "--env",
                "levgym/Governance-v0",
                "--suite",
                str(suite_file),
                "--price-csv",
                str(csv),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert list(out["scenarios"]) == [f"csv:{csv}"]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,cost\n0,1\n3600,2\n")
    assert (
        main(
            [
                "evaluate",
                "--baseline",
                "static",
                "--suite",
                str(suite_file),
                "--price-csv",
                str(bad),
            ]
        )
        == 2
    )
    assert "price" in capsys.readouterr().err


def test_evaluate_errors(capsys, suite_file):
    assert main(["evaluate", "--baseline", "nope", "--suite", str(suite_file)]) == 2
    assert "baseline 'nope' is unknown" in capsys.readouterr().err
    assert main(["evaluate", "--model", "/nonexistent/model.zip", "--suite", str(suite_file)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_model_is_scored_on_the_suites_reward_not_its_training_one(tmp_path):
    """A model trained with a shaped reward (here a 25x efficiency weight) is evaluated with
    the suite's env settings, so its score is the env's own reward (docs/governance-v1.md,
    "Reward shaping (honest)"): the rollout under the training weights scores differently."""
    from agents.evaluate import load_model_policy, rollout

    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        "name: tiny\nepisodes: 2\nseed: 1000000\nenvs:\n  levgym/Governance-v1:\n"
        "    env_kwargs: {num_positions: 16, horizon_h: 6}\n    scenarios: [regime_stress]\n"
    )
    shaped = {"num_positions": 16, "horizon_h": 6, "w_efficiency": 0.5}
    run = train(
        "levgym/Governance-v1",
        "ppo",
        total_timesteps=64,
        seed=0,
        out=tmp_path / "run",
        hyper=["n_envs=2", "n_steps=32", "batch_size=64", "n_epochs=1", "init_from_baseline=null"]
        + [f"env_kwargs.{k}={v}" for k, v in shaped.items()],
        progress=False,
        command="pytest",
    )
    suite = load_suite(suite_file)
    policy = load_model_policy(run / "model.zip", "levgym/Governance-v1")
    scored = evaluate(policy, "levgym/Governance-v1", suite, progress=False, keep_episodes=True)
    got = scored["episode_values"]["regime_stress"]["return"]
    env_kwargs = suite.for_env("levgym/Governance-v1").env_kwargs
    own = rollout(policy, "levgym/Governance-v1", "regime_stress", 2, suite.seed, env_kwargs)
    trained = rollout(policy, "levgym/Governance-v1", "regime_stress", 2, suite.seed, shaped)
    np.testing.assert_allclose(got, own["metrics"]["return"], rtol=0, atol=0)
    assert not np.allclose(got, trained["metrics"]["return"])
