"""The crash-size curriculum: its schedule, the knobs it sets, the env's new episodes under
them, and the callback during training."""

import numpy as np
import pytest

from agents.curriculum import Curriculum, CurriculumCallback
from levgym.envs import GovernanceV1VectorEnv
from levgym.scenarios.regimes import REGIME_KNOBS

SMALL = {"num_positions": 8, "horizon_h": 24.0}


def test_the_factor_grows_linearly_to_one_and_stays():
    c = Curriculum(start_frac=0.2, full_at_frac=0.5)
    assert c.factor(0, 1000) == pytest.approx(0.2)
    assert c.factor(250, 1000) == pytest.approx(0.6)
    assert c.factor(500, 1000) == pytest.approx(1.0)
    assert c.factor(900, 1000) == pytest.approx(1.0)


def test_overrides_scale_each_scenarios_own_value():
    c = Curriculum(knobs=("crash_jump_mean_log",))
    base = {"regime_stress": {"crash_jump_mean_log": -0.2}}
    out = c.overrides(0.5, ["regime_switching", "regime_stress", "gbm_calm"], base)
    assert out == {
        "regime_switching": {"crash_jump_mean_log": 0.5 * REGIME_KNOBS["crash_jump_mean_log"]},
        "regime_stress": {"crash_jump_mean_log": -0.1},
    }  # gbm_calm has no such knob and is left alone
    with pytest.raises(ValueError, match="'nope' is not a knob"):
        Curriculum(knobs=("nope",)).overrides(0.5, ["regime_switching"])


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"start_frac": 1.5}, "start_frac=1.5"),
        ({"full_at_frac": 0.0}, "full_at_frac=0.0"),
        ({"knobs": []}, "knobs"),
        ({"speed": 1}, "curriculum.speed is unknown"),
        ("fast", "allowed a mapping"),
    ],
)
def test_bad_configs_name_the_key(obj, match):
    with pytest.raises(ValueError, match=match):
        Curriculum.from_config(obj)


def test_new_episodes_follow_the_knobs_set_and_running_ones_keep_their_paths():
    knobs = {"regime_stress": {"turbulent_vol_annual": 0.3}}  # it starts turbulent
    venv = GovernanceV1VectorEnv(2, scenarios=["regime_stress"], **SMALL)
    venv.reset(seed=3)
    before = venv.core.bank.copy()
    venv.set_scenario_knobs(knobs)
    np.testing.assert_array_equal(venv.core.bank, before)  # episodes under way unchanged
    venv.reset(seed=3)
    want = GovernanceV1VectorEnv(2, scenarios=["regime_stress"], scenario_overrides=knobs, **SMALL)
    want.reset(seed=3)
    np.testing.assert_array_equal(venv.core.bank, want.core.bank)
    assert not np.array_equal(venv.core.bank, before)  # the knobs did change the paths
    with pytest.raises(ValueError, match="not in the mixture"):
        venv.set_scenario_knobs({"gbm_calm": {"vol_annual": 0.1}})
    with pytest.raises(ValueError, match="scenario.nope"):
        venv.set_scenario_knobs({"regime_stress": {"nope": 1.0}})


def test_the_callback_sets_the_knobs_of_each_rollout():
    from stable_baselines3 import PPO

    from levgym.envs import make_sb3_vec_env

    env = make_sb3_vec_env(
        "levgym/Governance-v1", 2, seed=0, scenarios=["regime_switching"], **SMALL
    )
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, verbose=0)
    cur = Curriculum(knobs=("crash_vol_annual",), start_frac=0.5, full_at_frac=0.5)
    seen = []

    class Spy(CurriculumCallback):
        def _on_rollout_start(self):
            super()._on_rollout_start()
            seen.append(env.get_attr("scenario_knobs", [0])[0]["regime_switching"])

    model.learn(48, callback=Spy(cur, 64))
    full = REGIME_KNOBS["crash_vol_annual"]
    vols = [k["crash_vol_annual"] for k in seen]
    # rollouts start at steps 0, 16, 32: factor 0.5, 0.75, 1.0
    np.testing.assert_allclose(vols, [0.5 * full, 0.75 * full, full])
