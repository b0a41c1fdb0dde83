"""levgym/PortfolioGovernance-v0: the steward's rows reach each env's reserves within their
limits and cool-downs, row by row; the env passes Gymnasium's checker; env i of a vector env is
the single env seeded s + i; bad actions are refused with one clear line."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import levgym.envs  # noqa: F401  (registers the ids)
from levgym.envs import PortfolioGovernanceEnv, PortfolioGovernanceVectorEnv
from levgym.envs.portfolio_governance import (
    DEFAULT_RESERVES,
    DEFAULT_ROWS,
    PORTFOLIO_ACTIONS,
    PORTFOLIO_FEATURES,
)
from levgym.envs.steward import Lever, RowGroup, StewardRows, StewardSchema

SMALL = {"num_positions": 16}
A = len(PORTFOLIO_ACTIONS)
SYMS = DEFAULT_RESERVES.symbols
LEV = DEFAULT_ROWS.group("reserve").schema.index()
ELEV = DEFAULT_ROWS.group("emode").schema.index()
ACOL = {f.name: i for i, f in enumerate(PORTFOLIO_ACTIONS)}


def _env(n=2, **kw):
    return PortfolioGovernanceVectorEnv(n, **{**SMALL, **kw})


def _action(n, **components):
    """Actions ``[n, A]`` with components named ``SYMBOL__lever`` (``.`` is not a keyword)."""
    a = np.zeros((n, A))
    for name, v in components.items():
        a[:, ACOL[name.replace("__", ".")]] = v
    return a


def test_spaces_follow_the_schema_rows():
    env = _env(1)
    assert env.single_action_space.shape == (A,)
    assert A == 7 * len(SYMS) + 3 * len(DEFAULT_RESERVES.emodes)
    assert env.single_observation_space.shape == (len(PORTFOLIO_FEATURES),)
    assert [f.name for f in PORTFOLIO_ACTIONS[:7]] == [f"WETH.{v}" for v in LEV]
    assert PORTFOLIO_ACTIONS[-1].name == "emode8.liquidation_bonus"


def test_check_env_on_the_single_env():
    env = gym.make("levgym/PortfolioGovernance-v0", horizon_h=6.0, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_zero_action_holds_every_lever_and_the_reserves():
    env = _env(2, horizon_h=24.0, scenarios="multiasset_2021_no_jumps")
    env.reset(seed=3)
    start = env.lever_values()
    r0 = env.get_env_attr("reserves", 0)
    assert r0.lt.tolist() == DEFAULT_RESERVES.lt.tolist()
    assert r0.ltv.tolist() == pytest.approx(DEFAULT_RESERVES.ltv.tolist())
    for _ in range(10):
        _, _, _, _, info = env.step(np.zeros((2, A)))
        assert not info["levers_changed"].any()
        for g, v in env.lever_values().items():
            np.testing.assert_array_equal(v, start[g])


def test_each_row_moves_by_its_limit_and_waits_its_own_cool_down():
    env = _env(1, horizon_h=48.0, scenarios="multiasset_2021_no_jumps")
    env.reset(seed=1)
    v0 = env.lever_values()
    a = _action(1, WETH__liquidation_threshold=-1.0, WETH__slope2=1.0, WBTC__supply_cap=1.0)
    a[:, ACOL["emode8.liquidation_bonus"]] = 1.0
    env.step(a)
    v1 = env.lever_values()
    w, b = SYMS.index("WETH"), SYMS.index("WBTC")
    res0, res1 = v0["reserve"][0], v1["reserve"][0]
    assert res1[w, LEV["liquidation_threshold"]] == pytest.approx(0.83 - 0.005)
    assert res1[w, LEV["slope2"]] == pytest.approx(res0[w, LEV["slope2"]] + 0.25)
    assert res1[b, LEV["supply_cap"]] == pytest.approx(2 * res0[b, LEV["supply_cap"]])
    assert v1["emode"][0, 1, ELEV["liquidation_bonus"]] == pytest.approx(0.01 + 0.0025)
    # the other rows did not move
    untouched = np.ones_like(res0, dtype=bool)
    untouched[w, [LEV["liquidation_threshold"], LEV["slope2"]]] = False
    untouched[b, LEV["supply_cap"]] = False
    np.testing.assert_array_equal(res1[untouched], res0[untouched])
    # the env's reserves follow: WETH's LT and LTV (its gap held), its slope2
    r = env.get_env_attr("reserves", 0)
    assert r.lt[w] == pytest.approx(0.825)
    assert r.ltv[w] == pytest.approx(0.825 - (0.83 - 0.805))
    assert r.reserves[w].slope2_apr == pytest.approx(res1[w, LEV["slope2"]])
    assert r.emodes[1].liquidation_bonus == pytest.approx(0.0125)
    # WETH's slope2 cools down for 6 h; USDC's slope2 is another row and moves at once
    u = SYMS.index("USDC")
    env.step(_action(1, WETH__slope2=1.0, USDC__slope2=1.0))
    v2 = env.lever_values()["reserve"][0]
    assert v2[w, LEV["slope2"]] == res1[w, LEV["slope2"]]
    assert v2[u, LEV["slope2"]] == pytest.approx(res0[u, LEV["slope2"]] + 0.25)
    obs = env._obs[0]
    assert obs[env._fcol["WETH.slope2_cooldown"]] == pytest.approx(4.0 / 6.0, abs=1e-6)
    assert obs[env._fcol["USDC.slope2_cooldown"]] == pytest.approx(5.0 / 6.0, abs=1e-6)
    for _ in range(4):
        env.step(_action(1, WETH__slope2=1.0))
    assert env.lever_values()["reserve"][0, w, LEV["slope2"]] == res1[w, LEV["slope2"]]
    env.step(_action(1, WETH__slope2=1.0))  # 6 h after its change
    assert env.lever_values()["reserve"][0, w, LEV["slope2"]] == pytest.approx(
        res1[w, LEV["slope2"]] + 0.25
    )


def test_random_actions_keep_bounds_and_projections():
    env = _env(3, horizon_h=48.0, scenarios=["steth_depeg", "usdc_depeg"])
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(40):
        obs, reward, *_ = env.step(rng.uniform(-1.5, 1.5, (3, A)))
        assert np.isfinite(reward).all()
        assert env.single_observation_space.contains(obs[0])
        for g in env.rows.groups:
            v = env.values[g.name]
            assert (v >= env.low[g.name] - 1e-12).all() and (v <= env.high[g.name] + 1e-12).all()
        for i in range(3):
            r = env.get_env_attr("reserves", i)  # validated by Reserves itself
            assert (r.ltv <= r.lt).all()
            assert (r.lt * (1 + r.bonus) <= 0.999 + 1e-12).all()


@pytest.mark.parametrize("kind", ["random", "zero"])
def test_vector_env_i_is_the_single_env_seeded_s_plus_i(kind):
    """Random actions: every env runs its own reserves; zero actions: the envs share one
    ``Reserves`` and one batched market call, and still get exactly their own numbers."""
    kw = {**SMALL, "horizon_h": 12.0, "scenarios": ["multiasset_2021", "usdc_depeg"]}
    venv = PortfolioGovernanceVectorEnv(3, **kw)
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1, 1, (14, 3, A)) * (kind == "random")
    vobs, _ = venv.reset(seed=10)
    vo, vr, vfinal = [vobs], [], {}
    for t in range(14):  # crosses an autoreset after step 12
        obs, r, term, trunc, info = venv.step(actions[t])
        vo.append(obs)
        vr.append(r)
        if "final_obs" in info:
            vfinal[t] = info["final_obs"]
    assert 11 in vfinal
    shared = len({id(r) for r in venv.env_reserves}) == 1
    assert shared == (kind == "zero")  # zero actions: one Reserves, one batched market call
    for i in (0, 2):
        env = PortfolioGovernanceEnv(**kw)
        obs, _ = env.reset(seed=10 + i)
        np.testing.assert_array_equal(obs, vo[0][i])
        for t in range(14):
            if t == 12:
                obs, _ = env.reset()  # the single env does not autoreset
                np.testing.assert_array_equal(obs, vo[12][i])  # the vector env's new episode
            obs, r, term, trunc, _ = env.step(actions[t, i])
            assert r == vr[t][i]
            np.testing.assert_array_equal(obs, vfinal[t][i] if t == 11 else vo[t + 1][i])
            assert trunc == (t == 11)


def test_same_seed_same_episode_and_other_seed_another():
    def run(seed):
        env = _env(2, horizon_h=8.0)
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [env.step(rng.uniform(-1, 1, (2, A)))[1] for _ in range(8)]
        return np.array(out)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, A - 1)), "shape"),
        (np.full((2, A), np.nan), "NaN"),
        ("x", "not numbers"),
    ],
)
def test_bad_actions_are_refused_with_a_clear_error(bad, match):
    env = _env(2, horizon_h=4.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    single = PortfolioGovernanceEnv(horizon_h=4.0, **SMALL)
    single.reset(seed=0)
    with pytest.raises(ValueError, match="shape|NaN|numeric"):
        single.step(bad[0] if isinstance(bad, np.ndarray) else bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scenarios": "calm"}, "multi-asset scenario"),
        ({"supply_cap_start": 5.0}, "supply_cap_start"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"w_bad_debt": -1.0}, "w_bad_debt"),
        ({"horizon_h": 2.5}, "horizon_h"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PortfolioGovernanceVectorEnv(1, **SMALL, **kwargs)


def test_a_depeg_of_a_debt_asset_with_lt_cut_liquidates_and_the_reward_counts_it():
    """Cutting every reserve's LT each hour liquidates users; the reward's liquidation term sees
    the users' loss and the info adds up."""
    env = _env(1, horizon_h=24.0, scenarios="multiasset_2021_no_jumps")
    env.reset(seed=7)
    a = np.zeros((1, A))
    for s in SYMS:
        a[:, ACOL[f"{s}.liquidation_threshold"]] = -1.0
    a[:, ACOL["emode8.liquidation_threshold"]] = -1.0
    a[:, ACOL["emode1.liquidation_threshold"]] = -1.0
    loss = liqs = 0.0
    for _ in range(20):
        _, r, term, trunc, info = env.step(a)
        loss += info["liquidation_loss_usd"][0]
        liqs += info["liquidations"][0]
        parts = sum(info[k][0] for k in ("reward_revenue", "reward_bad_debt", "reward_liquidation", "reward_efficiency"))  # fmt: skip
        assert r[0] == pytest.approx(parts)
        if term[0] or trunc[0]:
            break
    assert liqs > 0 and loss > 0


def test_ansi_render_and_per_env_attributes():
    env = _env(2, horizon_h=4.0, render_mode="ansi")
    env.reset(seed=0)
    lines = env.render()
    assert len(lines) == 2 and "PortfolioGovernance-v0 env 1" in lines[1]
    assert env.get_env_attr("scenario", 1) in env.scenario_names
    with pytest.raises(ValueError, match="protocol_params"):
        env.set_env_attr("protocol_params", None, [0, 1])
    env.set_env_attr("w_bad_debt", 3.0, [0, 1])
    assert env.w_bad_debt == 3.0


def test_sb3_adapter_steps_the_vector_env():
    from levgym.envs import make_sb3_vec_env

    venv = make_sb3_vec_env("levgym/PortfolioGovernance-v0", 2, seed=0, horizon_h=3.0, **SMALL)
    obs = venv.reset()
    assert obs.shape == (2, len(PORTFOLIO_FEATURES))
    for _ in range(3):
        obs, rewards, dones, infos = venv.step(np.zeros((2, A), dtype=np.float32))
    assert dones.all() and "terminal_observation" in infos[0]


def test_rows_schema_names_rows_and_refuses_engine_levers_in_reserve_scope():
    with pytest.raises(ValueError, match="scope reserve"):
        Lever("x", "close_factor", "level", "frac", 0.0, 1.0, scope="reserve")
    lever = Lever("lt", "liquidation_threshold", "level", "frac", 0.5, 0.9, scope="reserve")
    rows = StewardRows((RowGroup("reserve", StewardSchema((lever,)), ("A", "B")),))
    assert [f.name for f in rows.action_features()] == ["A.lt", "B.lt"]
    parts = rows.split(np.arange(4.0).reshape(2, 2))
    assert parts["reserve"].shape == (2, 2, 1)
    with pytest.raises(ValueError, match="distinct"):
        RowGroup("reserve", StewardSchema((lever,)), ("A", "A"))


def test_set_levers_writes_one_env_clipped_and_projected_without_cool_down():
    env = _env(2, horizon_h=12.0)
    env.reset(seed=0)
    values = env.lever_values()
    w = SYMS.index("WETH")
    values["reserve"][:, w, LEV["liquidation_threshold"]] = 0.5  # below its bound 0.85 x 0.83
    values["reserve"][:, w, LEV["liquidation_bonus"]] = 0.10
    env.set_levers(values, envs=np.array([True, False]))
    lt = env.lever_values()["reserve"][:, w, LEV["liquidation_threshold"]]
    assert lt[0] == pytest.approx(0.85 * 0.83) and lt[1] == pytest.approx(0.83)
    r0, r1 = env.get_env_attr("reserves", 0), env.get_env_attr("reserves", 1)
    assert r0.lt[w] == pytest.approx(0.85 * 0.83) and r1.lt[w] == pytest.approx(0.83)
    assert r0.bonus[w] == pytest.approx(0.10)
    assert np.isneginf(env.clocks["reserve"].last_change_h).all()  # a setting, not a change
