"""The peer harness (`levgym bench --peer DIR`) on a stand-in peer with the real one's API: a
folder with ``market_env/env.py`` and ``rl/utils.py`` whose ``init_env`` returns an env with
``act_update_react``, ``get_state``, ``get_reward``, ``is_done`` and ``reset``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from levgym.bench import BenchConfig, peer_comparison
from levgym.bench.peer import check_source, peer_rate
from levgym.cli import main

STAND_IN = """
class DefiEnv:
    def __init__(self, max_steps):
        self.max_steps = max_steps
        self.num_action_pool = 3
        self.plf_pools = [object(), object(), object()]
        self.steps = 0
        self.resets = 0
        self.actions = []

    def reset(self):
        self.steps = 0
        self.resets += 1

    def act_update_react(self, action):
        assert 0 <= action < 27
        self.actions.append(action)
        self.steps += 1

    def get_state(self):
        return [self.steps]

    def get_reward(self):
        return 1.0

    def is_done(self):
        return self.steps >= self.max_steps
"""


@pytest.fixture
def peer_dir(tmp_path):
    (tmp_path / "market_env").mkdir()
    (tmp_path / "market_env" / "__init__.py").write_text("")
    (tmp_path / "market_env" / "env.py").write_text(STAND_IN)
    (tmp_path / "rl").mkdir()
    (tmp_path / "rl" / "__init__.py").write_text("")
    (tmp_path / "rl" / "utils.py").write_text(
        "from market_env.env import DefiEnv\n\ndef init_env(max_steps=30):\n    return DefiEnv(max_steps)\n"
    )
    return tmp_path


def test_peer_rate_runs_the_peers_loop(peer_dir):
    out = peer_rate(peer_dir, steps=300, max_steps=30)
    assert out["steps"] == 300 and out["env_steps_per_s"] > 0
    # 200 warm-up steps end 6 episodes, then the timed 300 steps (starting 20 steps into an
    # episode) end 10 more
    assert out["episodes_ended"] == 10
    assert out["actions"] == "random (pre-drawn), Discrete(27)"


def test_the_module_prints_one_json_object(peer_dir):
    done = subprocess.run(
        [sys.executable, "-m", "levgym.bench.peer", "--source", str(peer_dir), "--steps", "50", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["steps"] == 50


def test_a_folder_without_the_peer_is_refused(tmp_path):
    with pytest.raises(ValueError, match="market_env/env.py, rl/utils.py not found"):
        check_source(tmp_path)
    assert (
        main(
            [
                "bench",
                "--quick",
                "--no-progress",
                "--out",
                str(tmp_path / "o"),
                "--peer",
                str(tmp_path),
            ]
        )
        == 2
    )


def test_peer_comparison_alternates_rounds(peer_dir):
    config = BenchConfig.for_mode(True, peer_source=str(peer_dir))
    out = peer_comparison(config, "numpy")
    assert len(out["peer_runs"]) == len(out["levgym_runs"]) == config.peer_rounds
    assert out["ratio"] == pytest.approx(
        out["levgym_env_steps_per_s"] / out["peer_env_steps_per_s"]
    )
