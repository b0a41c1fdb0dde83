"""levgym/CrossProtocolHedger-v0: the API, the vector env against the single env, the engine
glue against the multi-protocol step, the account's actions, the baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import levgym.envs  # noqa: F401  (registers the ids)
from agents.baselines import baseline_names, make_baseline
from levgym.engine import multiprotocol as MP
from levgym.engine import portfolio_market as PM
from levgym.envs.cross_protocol import (
    ACTIONS,
    FEATURES,
    CrossProtocolHedgerEnv,
    CrossProtocolHedgerVectorEnv,
    hedger_substep,
)
from levgym.envs.features import index

ENV_ID = "levgym/CrossProtocolHedger-v0"
SMALL = {"num_positions": 16, "horizon_h": 8.0}
# a deep, early crash: liquidations happen within a few steps
CRASH = {"crash_frac_range": (0.35, 0.35), "crash_start_h_range": (1, 1), "crash_duration_h": 3.0}
COL = index(FEATURES)
ACT = index(ACTIONS)
HOLD = np.array([0, 0, 0, 0, 0, 0, -1.0])


def _hold(n: int) -> np.ndarray:
    return np.tile(HOLD, (n, 1))


def test_registered_with_both_entry_points():
    env = gym.make(ENV_ID, **SMALL)
    assert isinstance(env.unwrapped, CrossProtocolHedgerEnv)
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(venv, CrossProtocolHedgerVectorEnv)
    assert venv.single_action_space.shape == (len(ACTIONS),)
    assert venv.single_observation_space.shape == (len(FEATURES),)


def test_gymnasium_and_sb3_check_env():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(CrossProtocolHedgerEnv(**SMALL), skip_render_check=True)
    sb3_check_env(CrossProtocolHedgerEnv(**SMALL), warn=False)


def test_vector_env_i_equals_single_env_seeded_s_plus_i():
    e, seed = 3, 11
    venv = CrossProtocolHedgerVectorEnv(e, **SMALL, **CRASH, autoreset_mode="Disabled")
    singles = [CrossProtocolHedgerEnv(**SMALL, **CRASH) for _ in range(e)]
    obs, _ = venv.reset(seed=seed)
    for i, env in enumerate(singles):
        o, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(o, obs[i])
    rng = np.random.default_rng(0)
    for _ in range(8):
        a = rng.uniform(-1.2, 1.2, (e, len(ACTIONS)))
        obs, rew, term, trunc, info = venv.step(a)
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(a[i])
            np.testing.assert_array_equal(o, obs[i])
            assert r == rew[i] and te == term[i] and tr == trunc[i]
            assert inf["equity_usd"] == info["equity_usd"][i]
        if (term | trunc).all():
            break
    assert (term | trunc).all()


def test_hedger_substep_is_the_multiprotocol_substep():
    venv = CrossProtocolHedgerVectorEnv(2, **SMALL, **CRASH)
    venv.reset(seed=3)
    core = venv.core
    s = core.state
    for t in range(1, 6):
        f = core.fundamentals[:, t]
        ours, _, _, rounds = hedger_substep(s, f, venv.protocols, venv.params, venv.slot)
        theirs, rounds2 = MP.substep(s, f, venv.protocols, venv.params)
        np.testing.assert_array_equal(rounds, rounds2)
        np.testing.assert_array_equal(ours.pool_asset, theirs.pool_asset)
        for b1, b2 in zip(ours.books, theirs.books, strict=True):
            np.testing.assert_array_equal(b1.supply, b2.supply)
            np.testing.assert_array_equal(b1.debt, b2.debt)
            for k in b1.counters:
                np.testing.assert_array_equal(b1.counters[k], b2.counters[k])
        s = ours
    assert sum(int(b.liquidations.sum()) for b in s.books) > 0  # the crash did liquidate


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.full((2, 7), np.nan), "NaN"),
        (np.zeros((2, 6)), "shape"),
        ("x", "not numbers"),
    ],
)
def test_bad_actions_raise_clear_errors(bad, match):
    venv = CrossProtocolHedgerVectorEnv(2, **SMALL)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        venv.step(bad)
    env = CrossProtocolHedgerEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(7, np.nan))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"margin": "cross"}, "margin"),
        ({"start_hf_range": (0.9, 1.2)}, "start_hf_range"),
        ({"crash_frac_range": (0.5, 0.2)}, "crash_frac_range"),
        ({"gas_usd_per_action": -1.0}, "gas_usd_per_action"),
        ({"scenarios": "nope"}, "nope"),
        ({"horizon_h": 2.5}, "horizon_h"),
        ({"max_borrow_frac": 2.0}, "max_borrow_frac"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossProtocolHedgerVectorEnv(1, **kwargs)


def _legs(venv):
    return venv._legs()


def test_moving_collateral_between_legs_conserves_it_and_pays_gas():
    venv = CrossProtocolHedgerVectorEnv(1, **SMALL, crash_frac_range=(0.0, 0.0), gas_usd_per_action=50.0)  # fmt: skip
    venv.reset(seed=1)
    c0, d0 = _legs(venv)
    a = _hold(1)
    a[0, ACT["move_aave"]] = -0.1
    a[0, ACT["move_compound"]] = 1.0
    _, _, _, _, info = venv.step(a)
    c1, d1 = _legs(venv)
    moved = 0.1 * c0[0, 0]
    np.testing.assert_allclose(c1[0], [c0[0, 0] - moved, c0[0, 1] + moved, c0[0, 2]], rtol=1e-12)
    assert venv.wallet_asset[0] == pytest.approx(0.0, abs=1e-9)
    assert info["gas_usd"][0] == 100.0  # a withdrawal and a deposit
    np.testing.assert_array_equal(info["slippage_usd"], 0.0)


def test_withdrawal_is_capped_by_the_protocol_check():
    venv = CrossProtocolHedgerVectorEnv(1, **SMALL, crash_frac_range=(0.0, 0.0))
    venv.reset(seed=2)
    a = _hold(1)
    a[0, ACT["move_morpho"]] = -1.0  # everything: more than Morpho lets go
    obs, _, _, _, _ = venv.step(a)
    hf = obs[0, COL["hf_morpho"]]
    assert 0.99 < hf < 1.01 + 0.05  # withdrawn down to the LLTV, then one hour of the market
    assert venv.wallet_asset[0] > 0


def test_repaying_sells_collateral_into_the_shared_pool():
    venv = CrossProtocolHedgerVectorEnv(1, **SMALL, crash_frac_range=(0.0, 0.0))
    venv.reset(seed=4)
    c0, d0 = _legs(venv)
    pool0 = venv.core.state.pool_asset[0, 0, venv.k_coll]
    a = _hold(1)
    a[0, ACT["loan_aave"]] = -1.0
    _, _, _, _, info = venv.step(a)
    c1, d1 = _legs(venv)
    assert d1[0, 0] == 0.0
    assert c1[0, 0] < c0[0, 0]  # collateral sold to repay
    assert info["slippage_usd"][0] > 0.0
    # the pool took the sale (arbitrage then closes part of the gap, not all of it)
    assert venv.core.state.pool_asset[0, 0, venv.k_coll] > pool0
    for b in venv.core.state.books:
        coll_gap, debt_gap = PM.accounting_gaps(b)
        np.testing.assert_allclose(coll_gap, 0.0, atol=1e-6)
        np.testing.assert_allclose(debt_gap, 0.0, atol=1e-4)


def test_accounting_holds_under_random_actions():
    venv = CrossProtocolHedgerVectorEnv(3, **SMALL, **CRASH, autoreset_mode="Disabled")
    venv.reset(seed=7)
    rng = np.random.default_rng(1)
    for _ in range(6):
        venv.step(rng.uniform(-1, 1, (3, len(ACTIONS))))
        for b in venv.core.state.books:
            coll_gap, debt_gap = PM.accounting_gaps(b)
            np.testing.assert_allclose(coll_gap, 0.0, atol=1e-6)
            np.testing.assert_allclose(debt_gap, 0.0, atol=1e-3)


def test_full_hedge_shorts_the_exposure_and_pays_the_fee():
    venv = CrossProtocolHedgerVectorEnv(1, **SMALL, crash_frac_range=(0.0, 0.0))
    venv.reset(seed=5)
    expo = venv._exposure_eth()[0]
    a = _hold(1)
    a[0, ACT["hedge"]] = 1.0
    _, _, _, _, info = venv.step(a)
    assert venv.perp_asset[0] == pytest.approx(-expo, rel=1e-12)
    assert info["perp_fee_usd"][0] > 0


def test_a_deep_crash_liquidates_hold_and_deleverage_avoids_it():
    # 35 % over 10 h (3.5 % an hour): the deleverage trigger (HF 1.08) leaves it a step
    kw = dict(SMALL, **CRASH, horizon_h=12.0)
    kw["crash_duration_h"] = 10.0
    losses = {}
    for name in ("hold", "deleverage"):
        venv = CrossProtocolHedgerVectorEnv(4, **kw, autoreset_mode="Disabled")
        pol = make_baseline(name, venv)
        obs, _ = venv.reset(seed=21)
        total = np.zeros(4)
        done = np.zeros(4, dtype=bool)
        while not done.all():
            obs, _, te, tr, info = venv.step(pol.predict(obs)[0])
            total += info["liquidation_loss_usd"]
            done |= te | tr
        losses[name] = total
    assert losses["hold"].sum() > 0.0
    assert losses["deleverage"].sum() < 0.1 * losses["hold"].sum()


def test_threshold_rebalancer_feeds_the_lowest_leg():
    pol = make_baseline("threshold_rebalancer", ENV_ID)
    obs = np.zeros((2, len(FEATURES)), dtype=np.float32)
    obs[:, [COL["hf_aave"], COL["hf_compound"], COL["hf_morpho"]]] = [
        [1.05, 1.5, 1.3],
        [1.2, 1.3, 1.4],
    ]
    a, _ = pol.predict(obs)
    assert a[0, ACT["move_aave"]] == 1.0
    assert a[0, ACT["move_compound"]] == pytest.approx(-(1 - 1.2 / 1.5), rel=1e-6)
    assert a[0, ACT["move_morpho"]] == pytest.approx(-(1 - 1.2 / 1.3), rel=1e-6)
    np.testing.assert_array_equal(a[1], HOLD.astype(np.float32))  # no leg below the trigger
    assert set(baseline_names(ENV_ID)) == {"hold", "threshold_rebalancer", "deleverage"}


def test_sb3_adapter_ends_episodes_with_terminal_observation():
    from levgym.envs import make_sb3_vec_env

    vec = make_sb3_vec_env(ENV_ID, 2, seed=0, num_positions=8, horizon_h=3.0)
    vec.reset()
    for _ in range(3):
        obs, _, dones, infos = vec.step(_hold(2))
    assert dones.all()
    assert all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)
    assert obs.shape == (2, len(FEATURES))
