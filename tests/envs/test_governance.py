"""Governance-v0: the projection of actions onto the invariants, parameter updates and rewards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levgym.engine.params import ProtocolParams, validate_risk_params
from levgym.envs import GovernanceEnv, GovernanceVectorEnv, StewardLimits, project_params

from .helpers import SMALL, stress_mix

LIM = StewardLimits()
unit = st.floats(0.0, 1.0)
action = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _check_valid(out: dict, lim: StewardLimits) -> None:
    ltv, lt, bonus = out["ltv"], out["liquidation_threshold"], out["liquidation_bonus"]
    for i in range(len(lt)):
        validate_risk_params("projected", float(ltv[i]), float(lt[i]), float(bonus[i]))
    assert np.all(lt * (1 + bonus) <= 1 - lim.margin + 1e-12)
    assert np.all((lt >= lim.lt_min - 1e-12) & (lt <= lim.lt_max + 1e-12))
    gap = lt - ltv
    assert np.all((gap >= lim.gap_min - 1e-12) & (gap <= lim.gap_max + 1e-12))
    assert np.all((bonus >= lim.bonus_min - 1e-12) & (bonus <= lim.bonus_max + 1e-12))
    s1, s2 = out["slope1_apr"], out["slope2_apr"]
    assert np.all((s1 >= lim.slope1_min_apr) & (s1 <= lim.slope1_max_apr))
    assert np.all((s2 >= lim.slope2_min_apr) & (s2 <= lim.slope2_max_apr))


@st.composite
def steward_states(draw, n: int = 8):
    """Random states within the steward's bounds and margin, and random actions."""
    u = np.array(draw(st.lists(st.tuples(unit, unit, unit, unit, unit), min_size=n, max_size=n)))
    bonus = LIM.bonus_min + u[:, 2] * (LIM.bonus_max - LIM.bonus_min)
    lt = LIM.lt_min + u[:, 0] * (LIM.lt_max - LIM.lt_min)
    lt = np.minimum(lt, (1 - LIM.margin) / (1 + bonus))
    gap = LIM.gap_min + u[:, 1] * (LIM.gap_max - LIM.gap_min)
    s1 = LIM.slope1_min_apr + u[:, 3] * (LIM.slope1_max_apr - LIM.slope1_min_apr)
    s2 = LIM.slope2_min_apr + u[:, 4] * (LIM.slope2_max_apr - LIM.slope2_min_apr)
    a = np.array(draw(st.lists(st.tuples(action, action, action, action), min_size=n, max_size=n)))
    return lt - gap, lt, bonus, s1, s2, a


@settings(max_examples=300, deadline=None)
@given(steward_states())
def test_projection_keeps_every_invariant_and_the_step_caps(case):
    ltv, lt, bonus, s1, s2, a = case
    out = project_params(ltv, lt, bonus, s1, s2, a, LIM)
    _check_valid(out, LIM)
    eps = 1e-12
    assert np.all(np.abs(out["liquidation_threshold"] - lt) <= LIM.lt_step + eps)
    assert np.all(
        np.abs((out["liquidation_threshold"] - out["ltv"]) - (lt - ltv)) <= LIM.gap_step + eps
    )
    assert np.all(np.abs(out["liquidation_bonus"] - bonus) <= LIM.bonus_step + eps)
    assert np.all(np.abs(out["slope1_apr"] - s1) <= LIM.slope1_step_apr + eps)
    assert np.all(np.abs(out["slope2_apr"] - s2) <= LIM.slope2_step_apr + eps)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.01, 0.98),
            st.floats(0.0, 0.5),
            st.floats(0.0, 0.3),
            action,
            action,
            action,
            action,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_projection_is_valid_from_any_engine_valid_state(rows):
    """Even from parameters outside the steward's bounds (set by hand), the result is valid."""
    rows = [r for r in rows if r[0] * (1 + r[2]) < 1]
    if not rows:
        return
    r = np.array(rows)
    lt, ltv = r[:, 0], r[:, 0] * (1 - r[:, 1])
    out = project_params(
        ltv, lt, r[:, 2], np.full(len(r), 0.04), np.full(len(r), 0.75), r[:, 3:], LIM
    )
    _check_valid(out, LIM)


def test_projection_rules_by_hand():
    # At the margin, raising LT and the bonus together: the bonus wins, LT gives way.
    lt = np.array([(1 - LIM.margin) / 1.05])
    out = project_params(
        lt - 0.03,
        lt,
        np.array([0.05]),
        np.array([0.04]),
        np.array([0.75]),
        np.array([[1, 0, 1, 0]]),
        LIM,
    )
    assert out["liquidation_bonus"][0] == pytest.approx(0.05 + LIM.bonus_step)
    assert out["liquidation_threshold"][0] == pytest.approx(
        (1 - LIM.margin) / (1.05 + LIM.bonus_step)
    )
    assert out["liquidation_threshold"][0] - out["ltv"][0] == pytest.approx(0.03)
    # The slope action moves slope1 and slope2 together.
    out = project_params(
        np.array([0.8]),
        np.array([0.85]),
        np.array([0.05]),
        np.array([0.04]),
        np.array([0.75]),
        np.array([[0, 0, 0, -1]]),
        LIM,
    )
    assert out["slope1_apr"][0] == pytest.approx(0.04 - LIM.slope1_step_apr)
    assert out["slope2_apr"][0] == pytest.approx(0.75 - LIM.slope2_step_apr)


def test_limits_validation():
    with pytest.raises(ValueError, match="lt_step"):
        StewardLimits(lt_step=0.001, bonus_step=0.002)
    with pytest.raises(ValueError, match="lt_min"):
        StewardLimits(lt_min=0.1, gap_max=0.15)
    with pytest.raises(ValueError, match="margin"):
        StewardLimits(lt_min=0.9, bonus_max=0.15)
    with pytest.raises(ValueError, match="outside the steward's bounds"):
        GovernanceEnv(params=ProtocolParams(ltv=0.3, liquidation_threshold=0.6), **SMALL)


def test_actions_move_the_state_params_by_their_caps():
    env = GovernanceVectorEnv(2, **SMALL, horizon_h=4.0)
    env.reset(seed=0)
    s0 = env.state
    lt0, ltv0, b0 = (
        np.asarray(getattr(s0, k)).copy()
        for k in ("liquidation_threshold", "ltv", "liquidation_bonus")
    )
    s10, s20 = np.asarray(s0.slope1_apr).copy(), np.asarray(s0.slope2_apr).copy()
    _, _, _, _, info = env.step(np.array([[-1, 1, 1, 1], [1, -1, -1, -1]]))
    s = env.state
    np.testing.assert_allclose(s.liquidation_threshold, lt0 + np.array([-1, 1]) * LIM.lt_step)
    gap0 = lt0 - ltv0
    np.testing.assert_allclose(
        s.liquidation_threshold - s.ltv, gap0 + np.array([1, -1]) * LIM.gap_step
    )
    np.testing.assert_allclose(s.liquidation_bonus, b0 + np.array([1, -1]) * LIM.bonus_step)
    np.testing.assert_allclose(s.slope1_apr, s10 + np.array([1, -1]) * LIM.slope1_step_apr)
    np.testing.assert_allclose(s.slope2_apr, s20 + np.array([1, -1]) * LIM.slope2_step_apr)
    np.testing.assert_allclose(info["liquidation_threshold"], s.liquidation_threshold)
    p = env.get_env_attr("protocol_params", 1)
    assert p.liquidation_threshold == pytest.approx(float(s.liquidation_threshold[1]))


def test_reward_is_the_documented_sum_and_stress_costs():
    env = GovernanceVectorEnv(4, num_positions=48, horizon_h=12.0, scenarios=stress_mix())
    env.reset(seed=11)
    total_bad = 0.0
    for _ in range(12):
        _, r, _, _, info = env.step(np.zeros((4, 4)))
        parts = (
            info["reward_revenue"]
            + info["reward_bad_debt"]
            + info["reward_liquidation"]
            + info["reward_efficiency"]
        )
        np.testing.assert_allclose(r, parts)
        scale = env.reward_scale / info["tvl_usd"]
        np.testing.assert_allclose(
            info["reward_liquidation"], -scale * env.w_liquidation * info["liquidation_loss_usd"]
        )
        np.testing.assert_allclose(
            info["reward_bad_debt"], -scale * env.w_bad_debt * info["economic_bad_debt_usd"]
        )
        np.testing.assert_allclose(info["reward_revenue"], scale * info["revenue_usd"])
        assert np.all(info["liquidation_loss_usd"] >= -1e-6)
        assert np.all(info["reward_efficiency"] > 0)
        total_bad += info["liquidations"].sum()
    assert total_bad > 0, "the stress mix should liquidate someone within 12 hours"


def test_insolvency_terminates_and_is_counted():
    # A crash with a tiny tolerance: any bad debt beyond reserves ends the episode.
    env = GovernanceEnv(
        num_positions=48,
        scenarios=["shock"],
        scenario_overrides={"shock": {"drop_frac": 0.6, "drop_hours": 1.0, "start_hour": 0.0}},
        params="aave_v3_weth",
        insolvency_tolerance_frac=0.0,
        horizon_h=24.0,
    )
    ends = []
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(24):
            _, _, term, trunc, info = env.step(np.zeros(4))
            if term or trunc:
                ends.append(info["end_cause"])
                break
    assert "insolvency" in ends
    assert env.end_counts["insolvency"] == ends.count("insolvency")
    assert info["end_counts"]["insolvency"] == ends.count("insolvency")
