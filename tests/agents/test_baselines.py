"""The rule-based baselines: API, action bounds, and that each rule does what its docstring says.

No ``__init__.py`` in this folder on purpose: a ``tests/agents`` package would be imported as
``agents`` and shadow the project's ``agents`` package.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from agents.baselines import (
    BASELINES,
    StewardGovernor,
    VolRuleGovernor,
    baseline_names,
    make_baseline,
    teacher_names,
)
from levgym.engine.params import PRESETS
from levgym.envs import (
    GovernanceV1VectorEnv,
    GovernanceVectorEnv,
    LiquidatorV2VectorEnv,
    LiquidatorVectorEnv,
    StewardLimits,
)
from levgym.envs.features import index

GOV = "levgym/Governance-v0"
GOV1 = "levgym/Governance-v1"
LIQ = "levgym/Liquidator-v1"
LIQ2 = "levgym/Liquidator-v2"
PORT = "levgym/PortfolioGovernance-v0"
PARAM_FIELDS = ("ltv", "liquidation_threshold", "liquidation_bonus", "slope1_apr", "slope2_apr")
CASES = [(e, n) for e in (GOV, GOV1, LIQ, LIQ2) for n in baseline_names(e) + teacher_names(e)]


def gov_env(num_envs: int = 4, scenario: str = "calm", horizon_h: float = 12.0, **kw):
    return GovernanceVectorEnv(
        num_envs=num_envs, num_positions=32, horizon_h=horizon_h, scenarios=[scenario], **kw
    )


def liq_env(
    num_envs: int = 4, horizon_h: float = 4.0, drop_frac: float = 0.4, cls=LiquidatorVectorEnv, **kw
):
    # A crash: the price falls by drop_frac over 1 h starting 20 minutes in.
    return cls(
        num_envs=num_envs,
        num_positions=32,
        horizon_h=horizon_h,
        scenarios=["shock"],
        scenario_overrides={
            "shock": {"drop_frac": drop_frac, "drop_hours": 1.0, "start_hour": 1.0 / 3.0}
        },
        **kw,
    )


def gov1_env(num_envs: int = 4, scenario: str = "regime_stress", horizon_h: float = 12.0, **kw):
    return GovernanceV1VectorEnv(
        num_envs=num_envs, num_positions=32, horizon_h=horizon_h, scenarios=[scenario], **kw
    )


def make_env(env_id: str, num_envs: int = 4):
    if env_id == LIQ2:
        return liq_env(num_envs, cls=LiquidatorV2VectorEnv)
    return {GOV: gov_env, GOV1: gov1_env, LIQ: liq_env}[env_id](num_envs)


def params_of(env: GovernanceVectorEnv, i: int) -> np.ndarray:
    p = env.protocol_params(i)
    return np.array([getattr(p, f) for f in PARAM_FIELDS])


def preset_vector(name: str) -> np.ndarray:
    p = PRESETS[name]
    return np.array([getattr(p, f) for f in PARAM_FIELDS])


def gov_obs(**features: float) -> np.ndarray:
    """A governance observation at the Aave preset (calm market) with ``features`` set."""
    c = index(GovernanceVectorEnv.FEATURES)
    obs = np.zeros(len(c), dtype=np.float32)
    p = PRESETS["aave_v3_weth"]
    base = {
        "vol_short": 0.6,
        "vol_long": 0.6,
        "ltv": p.ltv,
        "liquidation_threshold": p.liquidation_threshold,
        "liquidation_bonus": 10.0 * p.liquidation_bonus,
        "slope1": p.slope1_apr,
        "slope2": p.slope2_apr,
        "time_left": 1.0,
    }
    for k, v in {**base, **features}.items():
        obs[c[k]] = v
    return obs


# ---------------------------------------------------------------------- API
def test_registry_names():
    assert baseline_names(GOV) == ("static", "conservative", "vol_rule", "steward", "random")
    assert baseline_names(LIQ) == ("greedy", "greedy_hedged", "passive")
    assert baseline_names(GOV1) == (
        "static",
        "conservative",
        "vol_rule",
        "steward",
        "pid",
        "chaos_caps",
        "toxic_spiral",
        "random",
    )
    assert baseline_names(LIQ2) == baseline_names(LIQ)
    assert baseline_names(PORT) == ("static", "conservative", "vol_rule", "steward", "random")
    assert baseline_names("levgym/CrossProtocolHedger-v0") == (
        "hold",
        "threshold_rebalancer",
        "deleverage",
    )
    # the warm-book ids share their parents' rules
    assert baseline_names("levgym/Governance-v2") == baseline_names(GOV1)
    assert baseline_names("levgym/Liquidator-v3") == baseline_names(LIQ2)
    assert set(BASELINES) == {
        GOV,
        GOV1,
        "levgym/Governance-v2",
        LIQ,
        LIQ2,
        "levgym/Liquidator-v3",
        PORT,
        "levgym/CrossProtocolHedger-v0",
    }


def test_liquidator_v3_rules_hedge_as_on_v2():
    v2 = make_baseline("greedy_hedged", LIQ2)
    v3 = make_baseline("greedy_hedged", "levgym/Liquidator-v3")
    assert v3.ACTIONS == v2.ACTIONS
    rng = np.random.default_rng(0)
    obs = rng.uniform(0.0, 1.0, (5, len(v2.FEATURES))).astype(np.float32)
    np.testing.assert_array_equal(v3.predict(obs)[0], v2.predict(obs)[0])


def test_unknown_name_is_one_line_naming_allowed():
    with pytest.raises(ValueError) as err:
        make_baseline("nope", GOV)
    msg = str(err.value)
    assert "\n" not in msg and "'nope'" in msg
    for name in baseline_names(GOV):
        assert name in msg
    with pytest.raises(ValueError, match="greedy_hedged"):
        make_baseline("static", LIQ)  # a governance rule is not a liquidator rule
    with pytest.raises(ValueError, match="Governance-v0"):
        make_baseline("static", "levgym/Nope-v0")
    with pytest.raises(ValueError, match="Liquidator-v1"):
        baseline_names("nope")
    with pytest.raises(ValueError, match="not a levgym env"):
        make_baseline("static", object())


@pytest.mark.parametrize(("env_id", "name"), CASES)
def test_actions_inside_space_single_and_batched(env_id, name):
    env = make_env(env_id, num_envs=3)
    policy = make_baseline(name, env, seed=1)
    obs, _ = env.reset(seed=0)
    # Observations from the env, and random ones over the whole observation space.
    rand = env.single_observation_space.sample()
    for batch in (obs, np.stack([rand, obs[0], rand])):
        actions, state = policy.predict(batch, deterministic=True)
        assert state is None
        assert actions.shape == (3, len(env.ACTIONS)) and actions.dtype == np.float32
        assert env.action_space.contains(actions)
    single, _ = policy.predict(obs[0])
    assert single.shape == (len(env.ACTIONS),) and single.dtype == np.float32
    assert env.single_action_space.contains(single)
    if name != "random":  # rules are deterministic functions of the observation
        np.testing.assert_array_equal(single, policy.predict(obs)[0][0])
    with pytest.raises(ValueError, match="observation has shape"):
        policy.predict(np.zeros(len(env.FEATURES) + 1))
    if env_id == GOV1 and name not in ("random", "pid"):  # they read the newest frame only
        frame = len(env.FRAME_FEATURES)
        np.testing.assert_array_equal(policy.predict(obs[:, :frame])[0], policy.predict(obs)[0])


@pytest.mark.parametrize(("env_id", "name"), CASES)
def test_short_episode_runs(env_id, name):
    env = make_env(env_id)
    policy = make_baseline(name, env)
    obs, _ = env.reset(seed=3)
    ended = np.zeros(env.num_envs, dtype=bool)
    for _ in range(env.max_steps):
        actions, _ = policy.predict(obs)
        obs, reward, terminated, truncated, _ = env.step(actions)
        assert np.all(np.isfinite(reward)) and np.all(np.isfinite(obs))
        ended |= terminated | truncated
    assert ended.all()


def test_accepts_env_id_single_env_and_sb3_adapter():
    from levgym.envs import make_sb3_vec_env

    limits = StewardLimits(lt_step=0.01)
    single = gym.make(GOV, num_positions=32, horizon_h=12, limits=limits)
    assert make_baseline("static", single).limits.lt_step == 0.01
    adapter = make_sb3_vec_env(LIQ, num_envs=2, num_positions=32, max_hedge_ratio=0.5)
    assert make_baseline("greedy_hedged", adapter).max_hedge_ratio == 0.5
    assert make_baseline("static", GOV).limits == StewardLimits()


def test_random_is_seeded_and_uniform():
    obs = np.tile(gov_obs(), (2000, 1))
    a1, _ = make_baseline("random", GOV, seed=7).predict(obs)
    a2, _ = make_baseline("random", GOV, seed=7).predict(obs)
    a3, _ = make_baseline("random", GOV, seed=8).predict(obs)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    assert np.all(np.abs(a1.mean(axis=0)) < 0.06)  # uniform on [-1, 1]: mean 0, sd 0.58/sqrt(n)
    assert a1.min() < -0.99 and a1.max() > 0.99


# ---------------------------------------------------------------------- governance rules
def test_static_at_preset_is_zero_and_keeps_preset():
    env = gov_env(num_envs=4, scenario="gbm_high_vol", horizon_h=12)
    policy = make_baseline("static", env)
    obs, _ = env.reset(seed=5)
    target = preset_vector("aave_v3_weth")
    for _ in range(env.max_steps):
        actions, _ = policy.predict(obs)
        np.testing.assert_allclose(actions, 0.0, atol=1e-6)
        obs, *_ = env.step(actions)
        for i in range(env.num_envs):
            np.testing.assert_allclose(params_of(env, i), target, atol=1e-9)


def test_static_moves_back_to_preset_from_elsewhere():
    env = gov_env(num_envs=2, horizon_h=48)
    policy = make_baseline("static", env)
    obs, _ = env.reset(seed=0)
    start = dataclasses.replace(PRESETS["aave_v3_weth"], liquidation_threshold=0.83, ltv=0.78)
    env.set_env_attr("protocol_params", start, [1])
    obs, *_ = env.step(np.zeros((2, 4)))  # a zero step: the observation shows the new params
    first, _ = policy.predict(obs)
    np.testing.assert_allclose(first[0], 0.0, atol=1e-6)
    assert first[1, 0] == pytest.approx(1.0)  # LT 0.83 -> 0.86: up at the full cap
    assert first[1, 1] == pytest.approx(-1.0)  # gap 0.05 -> 0.035: down at the full cap
    for _ in range(10):
        actions, _ = policy.predict(obs)
        obs, *_ = env.step(actions)
    np.testing.assert_allclose(params_of(env, 1), preset_vector("aave_v3_weth"), atol=1e-9)


def test_conservative_reaches_preset_within_caps_then_holds():
    limits = StewardLimits()
    env = gov_env(num_envs=2, horizon_h=48)
    policy = make_baseline("conservative", env)
    obs, _ = env.reset(seed=1)
    prev = params_of(env, 0)
    caps = np.array([limits.lt_step + limits.gap_step, limits.lt_step, limits.bonus_step])
    for _ in range(30):  # LT needs 22 steps (0.86 -> 0.75 at 0.005)
        actions, _ = policy.predict(obs)
        obs, *_ = env.step(actions)
        now = params_of(env, 0)
        assert np.all(np.abs(now[:3] - prev[:3]) <= caps + 1e-12)
        prev = now
    target = preset_vector("conservative")
    for i in range(env.num_envs):
        np.testing.assert_allclose(params_of(env, i), target, atol=1e-9)
    actions, _ = policy.predict(obs)
    np.testing.assert_allclose(actions, 0.0, atol=1e-6)


def test_vol_rule_lowers_lt_with_volatility():
    policy = make_baseline("vol_rule", GOV)
    assert isinstance(policy, VolRuleGovernor)
    vols = [0.2, 0.6, 1.0, 1.6, 3.0]
    obs = np.stack([gov_obs(vol_short=v) for v in vols])
    actions, _ = policy.predict(obs)
    lt_change = actions[:, 0]
    assert np.all(np.diff(lt_change) <= 0)  # higher volatility, lower LT target
    assert lt_change[0] > 0 and lt_change[-1] == -1.0  # calm: relax; crash: full cap down
    np.testing.assert_allclose(actions[1], 0.0, atol=1e-6)  # at vol0 and the preset: hold
    np.testing.assert_allclose(actions[:, 1], 0.0, atol=1e-6)  # the LTV keeps its gap
    targets = policy.target_lt(np.array(vols))
    np.testing.assert_allclose(targets, [0.90, 0.86, 0.82, 0.76, 0.70], atol=1e-12)


def test_vol_rule_lowers_lt_in_an_episode_when_volatile():
    lt_end = {}
    for scenario in ("gbm_calm", "gbm_high_vol"):
        env = gov_env(num_envs=4, scenario=scenario, horizon_h=24)
        policy = make_baseline("vol_rule", env)
        obs, _ = env.reset(seed=11)
        for _ in range(20):
            obs, *_ = env.step(policy.predict(obs)[0])
        lt_end[scenario] = np.mean([env.protocol_params(i).liquidation_threshold for i in range(4)])
    assert lt_end["gbm_high_vol"] < lt_end["gbm_calm"] - 0.02


def test_steward_tightens_fast_relaxes_slowly_holds_between():
    policy = make_baseline("steward", GOV)
    assert isinstance(policy, StewardGovernor)
    obs = np.stack(
        [
            gov_obs(vol_short=2.0),  # volatile: tighten
            gov_obs(debt_liquidatable_10=0.2),  # much debt near liquidation: tighten
            gov_obs(vol_short=1.0),  # z = 1.0 / 1.2 in the hold band [0.75, 1): hold
            gov_obs(vol_short=0.4),  # calm, already at the base set: nothing to relax
        ]
    )
    actions, _ = policy.predict(obs)
    for row in actions[:2]:
        assert row[0] == -1.0 and row[1] == 1.0 and row[2] == 1.0  # LT down, gap and bonus up
    np.testing.assert_allclose(actions[2:], 0.0, atol=1e-6)
    # Calm at the conservative set: relax toward the Aave preset at a fifth of the caps.
    p = PRESETS["conservative"]
    tight = gov_obs(
        vol_short=0.4,
        ltv=p.ltv,
        liquidation_threshold=p.liquidation_threshold,
        liquidation_bonus=10 * p.liquidation_bonus,
    )
    a, _ = policy.predict(tight)
    assert a[0] == pytest.approx(StewardGovernor.RELAX_SPEED)
    assert a[1] == pytest.approx(-StewardGovernor.RELAX_SPEED)
    assert a[2] == pytest.approx(-StewardGovernor.RELAX_SPEED)
    # In the hold band, away from both sets: no change at all.
    tight[index(GovernanceVectorEnv.FEATURES)["vol_short"]] = 1.0
    np.testing.assert_allclose(policy.predict(tight)[0], 0.0, atol=1e-6)


# ---------------------------------------------------------------------- liquidator rules
def run_liquidator(
    name: str, cls=LiquidatorVectorEnv
) -> tuple[LiquidatorVectorEnv, dict[str, np.ndarray]]:
    """One crash episode of ``name`` on ``cls``; per-step arrays ``[steps, E]``."""
    env = liq_env(cls=cls)
    policy = make_baseline(name, env)
    obs, _ = env.reset(seed=2)
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("seized", "inv_before", "inv", "perp")}
    for _ in range(env.max_steps - 1):  # stop before the horizon resets the agent
        actions, _ = policy.predict(obs)
        rec["inv_before"].append(env.inventory_asset.copy())
        obs, _, terminated, truncated, info = env.step(actions)
        assert not (terminated | truncated).any()
        rec["seized"].append(info["seized_asset"])
        rec["inv"].append(env.inventory_asset.copy())
        rec["perp"].append(env.perp_asset.copy())
    out = {k: np.array(v) for k, v in rec.items()}
    out["liquidations"] = np.asarray(env.state.liquidations)
    return env, out


def test_passive_never_liquidates():
    env, t = run_liquidator("passive")
    assert np.all(t["liquidations"] > 0)  # the crash did liquidate (the keepers did it)
    assert np.all(t["seized"] == 0) and np.all(t["inv"] == 0)
    assert np.all(np.asarray(env.state.agent_seized_asset) == 0)
    assert np.all(t["perp"] == 0) and np.all(env.cash_usd == env.initial_cash_usd)


def test_greedy_liquidates_in_a_crash_and_sells_at_once():
    _, t = run_liquidator("greedy")
    assert np.all(t["seized"].sum(axis=0) > 0)
    # All inventory is sold at the start of each step: what is held is this step's seizure.
    np.testing.assert_allclose(t["inv"], t["seized"], rtol=1e-12, atol=1e-12)
    assert np.all(t["perp"] == 0)


def test_greedy_hedged_takes_as_greedy_unwinds_slowly_and_hedges():
    _, greedy = run_liquidator("greedy")
    _, t = run_liquidator("greedy_hedged")
    assert np.all(t["seized"].sum(axis=0) > 0)
    ratio = t["seized"].sum() / greedy["seized"].sum()
    assert 0.8 < ratio < 1.25  # the same take; paths differ a little as its sales differ
    sell = make_baseline("greedy_hedged", LIQ).SELL_FRAC
    np.testing.assert_allclose(t["inv"], (1 - sell) * t["inv_before"] + t["seized"], rtol=1e-9)
    # Short whenever it carried inventory into the step (the hedge is set at the start of a
    # step for what remains after that step's sale), flat otherwise.
    carried = t["inv_before"] > 0
    assert carried.any()
    assert np.all(t["perp"][carried] < 0)
    assert np.all(t["perp"][~carried] == 0)


def test_greedy_hedged_on_v2_shorts_what_it_keeps_of_the_inventory():
    """On v2 the same rule is the hedge action -SELL_FRAC: a short of (1 - SELL_FRAC) of the
    inventory held at the start of the step (what remains after its sale), flat without one."""
    env, t = run_liquidator("greedy_hedged", cls=LiquidatorV2VectorEnv)
    policy = make_baseline("greedy_hedged", env)
    assert policy.env_id == LIQ2 and policy.ACTIONS[2].description.startswith("short perp")
    sell = policy.SELL_FRAC
    carried = t["inv_before"] > 0
    assert carried.any()
    np.testing.assert_allclose(t["perp"], -(1 - sell) * t["inv_before"], rtol=1e-5, atol=1e-9)
    assert np.all(t["perp"][~carried] == 0)


# ---------------------------------------------------------------------- governance v1
def gov1_obs(**features: float) -> tuple[np.ndarray, dict[str, int]]:
    """One frame of a freshly reset v1 env (static's levers), with ``features`` set by name."""
    env = gov1_env(1, scenario="calm", history=1)
    obs, _ = env.reset(seed=0)
    col = index(env.FRAME_FEATURES)
    obs = obs.astype(np.float64)
    for k, v in features.items():
        obs[0, col[k]] = v
    return obs, col


def gov1_action(name: str, **features: float) -> dict[str, float]:
    obs, _ = gov1_obs(**features)
    policy = make_baseline(name, GOV1)
    a, _ = policy.predict(obs)
    return dict(zip(policy.schema.names, a[0].tolist(), strict=True))


def test_v1_static_holds_and_conservative_tightens_within_the_limits():
    assert all(
        v == 0.0 for k, v in gov1_action("static").items() if "freeze" not in k and "pause" not in k
    )
    assert gov1_action("static")["freeze_borrow"] == -1.0  # switches off
    a = gov1_action("conservative")
    assert a["liquidation_threshold"] == -1.0 and a["ltv"] == -1.0  # at the full limit
    assert a["liquidation_bonus"] == pytest.approx(1.0)  # 0.052 -> 0.075 is > one 0.005 step
    assert a["supply_cap"] == 0.0 and a["slope2"] == 0.0


def test_v1_vol_rule_and_steward_respond_to_stress():
    calm, stressed = gov1_action("vol_rule", vol_short=0.6), gov1_action("vol_rule", vol_short=2.0)
    assert calm["liquidation_threshold"] == 0.0 and stressed["liquidation_threshold"] == -1.0
    s = gov1_action("steward", vol_short=2.0, supply_cap_use=0.5, borrow_cap_use=0.5)
    assert s["liquidation_threshold"] == -1.0
    assert s["supply_cap"] < 0 and s["borrow_cap"] < 0  # cut toward 1.1 x use
    # calm: caps to 1.5 x use (the cap starts at 1.5 x the reference)
    c = gov1_action("steward", vol_short=0.3, supply_cap_use=1.0, borrow_cap_use=2.0 / 3.0)
    assert c["supply_cap"] == pytest.approx(0.5, abs=1e-6)  # 2.25 / 1.5: +50% of the +100%
    assert c["borrow_cap"] == pytest.approx(0.0, abs=1e-6)  # 1.5 x (2/3 x 1.5) = 1.5: on target


def test_v1_vol_steep_is_a_clone_target_with_its_documented_line():
    assert "vol_steep" not in baseline_names(GOV1) and teacher_names(GOV1) == ("vol_steep",)
    assert teacher_names(GOV) == ()
    with pytest.raises(ValueError, match="'vol_steep' is unknown for levgym/Governance-v0"):
        make_baseline("vol_steep", GOV)
    policy = make_baseline("vol_steep", GOV1)
    lev = policy.schema.index()
    # LT = clip(0.83 - 0.2 (vol - 0.6), 0.70, 0.90), LTV 0.035 below it
    for vol, lt in ((0.6, 0.83), (1.1, 0.73), (2.0, 0.70), (0.0, 0.90)):
        obs, _ = gov1_obs(vol_short=vol)
        t = policy._targets(policy.frames(obs))[0]
        assert t[lev["liquidation_threshold"]] == pytest.approx(lt)
        assert t[lev["ltv"]] == pytest.approx(lt - 0.035)
    # from the start (LT 0.86) toward 0.83: a cut of more than one 0.005 step, at the limit
    assert gov1_action("vol_steep", vol_short=0.6)["liquidation_threshold"] == -1.0


def test_v1_pid_raises_slope2_above_target_utilization_and_lowers_it_below():
    up = gov1_action("pid", utilization=0.95)["slope2"]
    down = gov1_action("pid", utilization=0.6)["slope2"]
    assert up > 0 > down
    others = gov1_action("pid", utilization=0.95)
    assert all(others[k] == 0.0 for k in ("liquidation_threshold", "ltv", "supply_cap"))


def test_v1_chaos_caps_raise_toward_demand_and_cut_on_stress():
    raise_ = gov1_action("chaos_caps", supply_cap_use=0.95, borrow_cap_use=0.95, vol_short=0.5)
    assert raise_["supply_cap"] > 0 and raise_["borrow_cap"] > 0
    assert raise_["supply_cap"] <= 1.0  # at most +100% (the limit of one change)
    hold = gov1_action("chaos_caps", supply_cap_use=0.5, borrow_cap_use=0.5, vol_short=0.5)
    assert hold["supply_cap"] == 0.0
    cut = gov1_action("chaos_caps", supply_cap_use=0.5, borrow_cap_use=0.5, drawdown=0.2)
    assert cut["supply_cap"] < 0 and cut["borrow_cap"] < 0


def test_v1_toxic_spiral_raises_the_close_factor_and_cuts_the_bonus():
    on = gov1_action("toxic_spiral", debt_toxic_10=0.05)
    assert on["close_factor"] > 0 and on["liquidation_bonus"] < 0
    off = gov1_action("toxic_spiral", debt_toxic_10=0.0)
    assert off["close_factor"] == 0.0 and off["liquidation_bonus"] == 0.0


def test_v1_steward_moves_levers_in_an_episode():
    env = gov1_env(2, scenario="regime_stress", horizon_h=48.0)
    policy = make_baseline("steward", env)
    obs, _ = env.reset(seed=1)
    start = env.lever_values()
    moved = np.zeros_like(start, dtype=bool)
    for _ in range(48):
        obs, *_ = env.step(policy.predict(obs)[0])
        moved |= env.lever_values() != start
    col = env.schema.index()
    assert moved[:, col["liquidation_threshold"]].any()


# ---------------------------------------------------------------------- portfolio governance
def port_env(num_envs: int = 2, horizon_h: float = 24.0, scenario: str = "multiasset_2021"):
    from levgym.envs import PortfolioGovernanceVectorEnv

    return PortfolioGovernanceVectorEnv(
        num_envs, num_positions=16, horizon_h=horizon_h, scenarios=scenario
    )


@pytest.mark.parametrize("name", baseline_names(PORT))
def test_portfolio_baselines_act_inside_the_space_for_a_short_episode(name):
    env = port_env()
    policy = make_baseline(name, env, seed=1)
    obs, _ = env.reset(seed=2)
    for _ in range(6):
        actions, _ = policy.predict(obs)
        assert actions.shape == (2, len(env.ACTIONS)) and env.action_space.contains(actions)
        single, _ = policy.predict(obs[0])
        if name != "random":
            np.testing.assert_array_equal(single, actions[0])
        obs, reward, *_ = env.step(actions)
        assert np.isfinite(reward).all()


def test_portfolio_static_holds_every_row_and_conservative_tightens_every_row():
    env = port_env()
    obs, _ = env.reset(seed=0)
    start = env.lever_values()
    static = make_baseline("static", env)
    assert np.all(static.predict(obs)[0] == 0.0)  # every lever at its start: no change
    cons = make_baseline("conservative", env)
    for _ in range(3):
        obs, *_ = env.step(cons.predict(obs)[0])
    end = env.lever_values()
    for g in ("reserve", "emode"):
        lev = env.rows.group(g).schema.index()
        lt = lev["liquidation_threshold"]
        step = 0.005 if g == "reserve" else 0.0025
        # the full limit per hour, every row
        np.testing.assert_allclose(end[g][..., lt], start[g][..., lt] - 3 * step)
        assert (end[g][..., lev["ltv_gap"]] > start[g][..., lev["ltv_gap"]]).all()
        assert (
            end[g][..., lev["liquidation_bonus"]] > start[g][..., lev["liquidation_bonus"]]
        ).all()
        np.testing.assert_array_equal(  # caps and rates untouched
            np.delete(end[g], [lt, lev["ltv_gap"], lev["liquidation_bonus"]], axis=-1),
            np.delete(start[g], [lt, lev["ltv_gap"], lev["liquidation_bonus"]], axis=-1),
        )


def test_portfolio_vol_rule_and_steward_act_on_the_stressed_reserve_only():
    env = port_env(1)
    obs, _ = env.reset(seed=0)
    col = env._fcol
    a_col = {f.name: i for i, f in enumerate(env.ACTIONS)}
    base = obs.copy()
    for c in col:
        if c.endswith(".vol_short"):
            base[:, col[c]] = 0.3  # calm everywhere
        if c.endswith(".debt_liquidatable_10"):
            base[:, col[c]] = 0.0
    hot = base.copy()
    hot[:, col["WBTC.vol_short"]] = 2.5
    vol = make_baseline("vol_rule", env)
    assert vol.predict(base)[0][0, a_col["WBTC.liquidation_threshold"]] == 0.0
    assert vol.predict(hot)[0][0, a_col["WBTC.liquidation_threshold"]] == -1.0
    assert vol.predict(hot)[0][0, a_col["WETH.liquidation_threshold"]] == 0.0
    steward = make_baseline("steward", env)
    a = steward.predict(hot)[0][0]
    assert a[a_col["WBTC.liquidation_threshold"]] == -1.0 and a[a_col["WBTC.supply_cap"]] < 0
    assert a[a_col["WETH.liquidation_threshold"]] == 0.0  # calm rows at BASE stay
    assert a[a_col["emode8.liquidation_threshold"]] == 0.0  # E-mode rows held
