"""The episode-start and starting-book measures of levgym.bench.envs on the warm-book ids."""

from __future__ import annotations

import pytest

from levgym import warm
from levgym.bench.envs import episode_start_cost, starting_book_edge
from levgym.envs.core import resolve_params


def test_episode_start_cost_times_first_use_and_cached_pools():
    kw = {"horizon_h": 3.0, "warm_pool": 64, "warmup_h": 24.0}
    first = episode_start_cost("levgym/Governance-v2", 3, 8, "numpy", repeats=2, **kw)
    assert first["warmup_h"] == 24.0 and first["cached"] is False
    pool = warm.warm_pool(resolve_params(None), 8, 24.0, 64, "float64")
    warmed = pool.warmed_books
    assert warmed >= 3  # the first resets warmed the books they took
    again = episode_start_cost("levgym/Governance-v2", 3, 8, "numpy", repeats=2, cached=True, **kw)
    assert again["cached"] is True and again["us_per_env"] > 0
    assert pool.warmed_books == warmed  # the same resets: no book warmed twice
    fresh = episode_start_cost("levgym/Governance-v1", 3, 8, "numpy", repeats=1, horizon_h=3.0)
    assert fresh["warmup_h"] == 0.0


def test_starting_book_edge_shares_are_ordered_and_warm_books_differ():
    kw = {"horizon_h": 3.0}
    fresh = starting_book_edge("levgym/Governance-v1", 8, 16, **kw)
    warmed = starting_book_edge("levgym/Governance-v2", 8, 16, warmup_h=24.0, warm_pool=64, **kw)
    for row in (fresh, warmed):
        shares = [v for k, v in row.items() if k.startswith("liquidatable_after_")]
        assert shares == sorted(shares) and 0.0 <= shares[0] and shares[-1] <= 1.0
    assert fresh["debt_per_book_usd"] != pytest.approx(warmed["debt_per_book_usd"], rel=1e-9)


def test_scenario_path_cost_times_each_scenario_of_the_mixture():
    from levgym.bench.envs import scenario_path_cost

    got = scenario_path_cost(
        "levgym/Liquidator-v0", seeds=2, repeats=1, scenarios=["calm", "shock"]
    )
    assert got["num_substeps"] == 144
    assert sorted(got["us_per_path_by_scenario"]) == ["calm", "shock"]
    assert all(v > 0 for v in got["us_per_path_by_scenario"].values())
    assert got["us_per_path"] == sum(got["us_per_path_by_scenario"].values()) / 2


def test_episode_start_floor_is_the_cheapest_path_and_a_book():
    from levgym.bench.envs import episode_start_floor

    got = episode_start_floor(
        "levgym/Liquidator-v0", 3, 16, seeds=2, repeats=1, scenarios=["calm", "shock"]
    )
    assert got["num_substeps"] == 144 and got["cheapest_scenario"] in ("calm", "shock")
    assert 0 < got["path_us_min"] <= got["path_us_mean"]
    assert got["normals_us"] > 0 and got["book_us_per_env"] > 0
    assert got["floor_us"] == got["path_us_min"] + got["book_us_per_env"]


def test_the_start_target_is_judged_on_the_default_row_not_the_pooled_one():
    from levgym.bench import BenchConfig, judge_targets

    row = {"env": "Governance-v0", "num_envs": 256, "backend": "numba"}
    starts = [
        {**row, "us_per_env": 300.0},
        {**row, "us_per_env": 16.0, "pools": "path_pool=64"},
        {**row, "env": "Liquidator-v0", "num_envs": 256, "us_per_env": 120.0},
    ]
    got = judge_targets({"episode_starts": starts}, BenchConfig())
    target = got["episode start per env (amortised)"]
    assert target["value"] == 300.0 and target["met"] is False
    pooled = got["episode start per env (amortised) from pools (opt-in)"]
    assert pooled["value"] == 16.0 and pooled["met"] is True
    assert "path_pool=64" in pooled["target"]
    floor = {"floor_us": 80.25}  # the default row's target names the start's own draws
    got = judge_targets({"episode_starts": starts, "episode_start_floor": floor}, BenchConfig())
    assert "own draws alone cost 80.2" in got["episode start per env (amortised)"]["target"]
    assert "own draws" not in got["episode start per env (amortised) from pools (opt-in)"]["target"]


def test_the_256_env_governance_target_says_what_its_figure_is():
    from levgym.bench import BenchConfig, judge_targets

    row = {"via": "gym.make_vec", "positions": 256, "actions": "random", "backend": "numba"}
    rows = [
        {**row, "env": "Governance-v0", "num_envs": 256, "env_steps_per_s": 70_000.0},
        {**row, "env": "Governance-v0", "num_envs": 16, "env_steps_per_s": 30_000.0},
    ]
    got = judge_targets({"env_workloads": rows}, BenchConfig())
    big = got["Governance-v0 256 envs x 256 positions, random actions"]
    assert big["met"] is True and "no-loss figure" in big["target"]
    small = got["Governance-v0 16 envs x 256 positions, random actions"]
    assert small["met"] is False and small["target"] == ">= 40,000 env-steps / s"


def test_a_workload_row_splits_its_time_at_the_kernel_and_the_16_env_target_judges_it():
    from levgym.bench import BenchConfig, judge_targets
    from levgym.bench.envs import workload_rate

    got = workload_rate("levgym/Liquidator-v0", 2, 16, "random", 20, "numba")
    assert 0.0 < got["kernel_seconds"] < got["seconds"]
    assert got["outside_kernel_share"] == pytest.approx(
        1.0 - got["kernel_seconds"] / got["seconds"]
    )
    row = {"via": "gym.make_vec", "positions": 256, "actions": "random", "backend": "numba"}
    rows = [
        {
            **row,
            "env": "Governance-v0",
            "num_envs": 16,
            "env_steps_per_s": 5e4,
            "outside_kernel_share": s,
        }
        for s in (0.3, 0.1)
    ]
    name = "Governance-v0 16 envs x 256 positions, time outside the kernel"
    judged = [judge_targets({"env_workloads": [r]}, BenchConfig())[name] for r in rows]
    assert [j["met"] for j in judged] == [False, True] and "<= 25% of a step" in judged[0]["target"]


def test_ppo_share_resets_once_before_the_clock_and_times_learn_s_reset(monkeypatch):
    import stable_baselines3

    import levgym.envs
    from levgym.bench.envs import ppo_env_share

    resets = []
    make = levgym.envs.make_sb3_vec_env

    def counting(*args, **kwargs):
        venv = make(*args, **kwargs)
        reset = venv.reset

        def counted():
            resets.append("reset")
            return reset()

        venv.reset = counted
        return venv

    learn = stable_baselines3.PPO.learn
    seen = {}

    def timed_learn(self, *args, **kwargs):
        seen["resets_before"], seen["env_s_before"] = len(resets), self.env.env_seconds
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(levgym.envs, "make_sb3_vec_env", counting)
    monkeypatch.setattr(stable_baselines3.PPO, "learn", timed_learn)
    got = ppo_env_share("levgym/Liquidator-v0", 2, 8, 8, 1, 1, 8, "numpy")
    assert seen == {"resets_before": 1, "env_s_before": 0.0}  # the untimed reset
    assert len(resets) == 2 and 0.0 < got["env_seconds"] < got["learn_seconds"]  # learn's, timed
