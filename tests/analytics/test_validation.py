"""levgym.analytics.validation: the real days from the shipped events, the scores, the replay."""

from __future__ import annotations

import numpy as np
import pytest

from levgym.analytics import validation as V
from levgym.engine.params import preset_params
from levgym.scenarios import data


def test_real_days_come_from_the_events():
    days = V.calibration_days()
    by = {d.date: d for d in days}
    # May 19, 2021: the largest day; its debt repaid peaks in the hours 11:00-14:00 UTC
    may19 = by["2021-05-19"]
    assert may19.real_usd == pytest.approx(may19.real_hourly_usd.sum())
    assert max(days, key=lambda d: d.real_usd).date == "2021-05-19"
    assert int(np.argmax(may19.real_hourly_usd)) == 11
    assert 60e6 < may19.real_usd < 80e6
    assert may19.fall_frac > 0.25
    # the set: the 12 largest days plus every day falling 5% or more, fit before April
    assert all(d.fall_frac >= V.FALL_MIN_FRAC or d.real_usd > 2e6 for d in days)
    assert any(not d.test for d in days) and any(d.test for d in days)
    assert [d.date for d in days] == sorted(d.date for d in days)


def test_scores_of_a_perfect_and_of_a_reversed_model():
    rng = np.random.default_rng(0)
    real_h = rng.gamma(0.5, 1e6, (10, 24)) * 10.0 ** rng.uniform(0.0, 3.0, (10, 1))
    real = real_h.sum(axis=1)
    s = V.score(real * 3.0, real, real_h * 3.0, real_h)  # scale does not matter: shares
    assert s["spearman"] == pytest.approx(1.0)
    assert s["within_2x_frac"] == 1.0
    assert s["rms_log2"] == pytest.approx(0.0, abs=1e-12)
    assert s["timing_corr"] == pytest.approx(1.0)
    rev = V.score(real[::-1].copy(), real, real_h[::-1].copy(), real_h)
    assert rev["spearman"] < 0.5
    assert rev["within_2x_frac"] < 1.0


def test_within_2x_counts_the_log2_ratio_of_floored_shares():
    real = np.array([1.0, 1.0, 1.0, 1.0])
    model = np.array([1.0, 1.0, 1.0, 5.0])
    s = V.score(model, real, np.ones((4, 24)), np.ones((4, 24)))
    floor = V.SHARE_FLOOR_FRAC / 4
    expect = np.log2((model / model.sum() + floor) / (0.25 + floor))
    np.testing.assert_allclose(s["log2_ratio"], expect)
    assert s["within_2x_frac"] == np.mean(np.abs(expect) <= 1.0)


def test_noise_ceiling_of_identical_draws_is_perfect():
    rng = np.random.default_rng(1)
    one = rng.gamma(0.5, 1.0, (8, 1, 24))
    same = np.repeat(one, 3, axis=1)
    c = V.noise_ceiling(same)
    assert c["spearman"] == pytest.approx(1.0)
    assert c["within_2x_frac"] == 1.0
    noisy = same * rng.lognormal(0.0, 2.0, (8, 3, 1))
    assert V.noise_ceiling(noisy)["within_2x_frac"] < 1.0


def test_borrower_days_sum_the_events_per_day_and_borrower():
    b_day, b_usd = data.aave_borrower_days()
    ts, v = data.aave_liquidations()
    assert b_usd.sum() == pytest.approx(v.sum())
    assert 1_000 < b_day.size < ts.size  # some borrowers are liquidated several times a day
    may12 = b_usd[b_day == data.parse_utc("2021-05-12T00:00:00Z")]
    assert may12.size == 2 and may12[0] > 0.98 * may12.sum()  # one whale is the whole day
    for d in V.calibration_days():
        mine = b_usd[b_day == d.start_s]
        assert mine.sum() == pytest.approx(d.real_usd)
        assert np.all(np.diff(mine) <= 0)  # largest first


def test_account_days_name_the_accounts_behind_each_day(monkeypatch):
    day, usd, acct, names = data.aave_account_days()
    assert np.array_equal(data.aave_borrower_days()[0], day)
    assert len(set(zip(day.tolist(), acct.tolist(), strict=True))) == day.size  # one row each
    days = V.calibration_days()
    by_date = {d.date: m for d, m in zip(days, V.account_days(days), strict=True)}
    assert by_date["2021-05-12"]["real_accounts"] == 2
    assert by_date["2021-05-12"]["real_top_account_share"] > 0.98
    assert by_date["2021-05-12"]["real_repeat_share"] == 1.0  # the whale of April 7 again
    assert by_date["2021-04-16"] == {
        "real_accounts": 0,
        "real_top_account_share": 0.0,
        "real_repeat_share": 0.0,
    }
    assert by_date["2020-12-21"]["real_repeat_share"] == 0.0  # nothing liquidated before it
    top = V.largest_account([d for d in days if d.test])
    assert top["address"].startswith("0x208b") and 0.2 < top["volume_share"] < 0.23
    assert top["dates"][:2] == ["2021-04-07", "2021-04-18"] and len(top["dates"]) == 9
    # the same logic on a made-up history: account 1 on both days, account 0 on the second
    d0, d1 = days[0], days[1]
    fake = (
        np.array([d0.start_s, d1.start_s, d1.start_s]),
        np.array([5.0, 6.0, 2.0]),
        np.array([1, 0, 1]),
        ("0xa", "0xb"),
    )
    monkeypatch.setattr(data, "aave_account_days", lambda: fake)
    assert V.account_days([d0, d1])[1] == {
        "real_accounts": 2,
        "real_top_account_share": 0.75,
        "real_repeat_share": 0.25,
    }
    assert V.largest_account([d0, d1]) == {
        "address": "0xb",
        "volume_share": 7.0 / 13.0,
        "dates": [d0.date, d1.date],
    }


def _fake_borrowers(monkeypatch, days, sizes_per_day):
    b_day = np.repeat([d.start_s for d in days], len(sizes_per_day))
    b_usd = np.tile(np.asarray(sizes_per_day, dtype=np.float64), len(days))
    monkeypatch.setattr(data, "aave_borrower_days", lambda: (b_day, b_usd))


def test_event_ceiling_is_perfect_when_a_day_is_many_small_liquidations(monkeypatch):
    days = [d for d in V.calibration_days() if d.test]
    rng = np.random.default_rng(3)
    model_h = rng.gamma(0.5, 1.0, (len(days), 24)) * 10.0 ** rng.uniform(0, 3, (len(days), 1))
    _fake_borrowers(monkeypatch, days, [1.0] * 3000)  # 3,000 equal liquidations a day
    c = V.event_noise_ceiling(model_h, days, sims=20)
    assert c["borrower_days"] == 3000 * len(days) and c["sims"] == 20
    assert c["spearman"] > 0.99 and c["within_2x_frac"] == 1.0 and c["timing_corr"] > 0.95
    assert V.event_noise_ceiling(model_h, days, sims=20) == c  # seeded
    _fake_borrowers(monkeypatch, days, [1.0] * 5 + [500.0])  # a few liquidations and a whale
    whales = V.event_noise_ceiling(model_h, days, sims=20)
    assert whales["spearman"] < 0.9 and whales["within_2x_frac"] < 0.8
    assert whales["timing_corr"] < c["timing_corr"]
    with pytest.raises(ValueError, match="sims=0"):
        V.event_noise_ceiling(model_h, days, sims=0)


def test_aave_s_own_liquidations_put_the_ceiling_under_the_model_book_s():
    # The real test days as a perfect model's expected volumes: the histories drawn from their
    # own borrower-days are whale-dominated, so within 2x falls well under the book's 0.92-0.95.
    days = [d for d in V.calibration_days() if d.test]
    real_h = np.stack([d.real_hourly_usd for d in days])
    c = V.event_noise_ceiling(real_h, days, sims=200)
    assert c["borrower_days"] == 1185
    assert 0.5 < c["within_2x_frac"] < 0.85 and 0.8 < c["spearman"] < 0.97


def test_replay_is_reproducible_and_a_warm_book_differs():
    days = [d for d in V.calibration_days() if d.date in ("2021-05-19", "2021-06-01")]
    params = preset_params("aave_v2_weth")
    a = V.replay(params, days, 12.0, 2, 24, seed=5, backend="numpy")
    b = V.replay(params, days, 12.0, 2, 24, seed=5, backend="numpy")
    fresh = V.replay(params, days, 0.0, 2, 24, seed=5, backend="numpy")
    assert a.shape == (2, 2, 24)
    np.testing.assert_array_equal(a, b)
    assert np.all(a >= 0)
    assert a[0].sum() > 0  # May 19 liquidates
    assert not np.array_equal(a, fresh)


def test_fit_runs_on_the_fit_period_only(monkeypatch):
    seen: list[str] = []
    real_replay = V.replay

    def spy(params, days, *args, **kw):
        seen.extend(d.date for d in days)
        return real_replay(params, days[:2], *args, **kw, backend="numpy").repeat(
            len(days) // 2 + 1, axis=0
        )[: len(days)]

    monkeypatch.setattr(V, "replay", spy)
    grid = {"borrowers.hf_sigma": (0.6, 1.0)}
    out = V.fit(draws=2, positions=8, grid=grid)
    assert seen and all(date < V.TEST_START for date in seen)
    assert out["borrowers.hf_sigma"] in (0.6, 1.0)
    assert out["borrowers.total_collateral_usd"] > 0


def test_volatility_scales_the_drawn_health_factors_only_when_asked():
    import dataclasses

    from levgym.engine.params import EngineParams
    from levgym.engine.state import draw_book

    p = EngineParams()
    plain = draw_book(p, 2, 50, np.random.default_rng(3))
    ignored = draw_book(p, 2, 50, np.random.default_rng(3), vol_annual=np.array([0.5, 2.0]))
    for key in plain:
        np.testing.assert_array_equal(plain[key], ignored[key])
    b = dataclasses.replace(p.borrowers, hf_vol_elasticity=1.0, hf_vol_ref_annual=1.0)
    pv = dataclasses.replace(p, borrowers=b)
    scaled = draw_book(pv, 2, 50, np.random.default_rng(3), vol_annual=np.array([0.5, 2.0]))
    passive = plain["kind"] != 2  # loopers start in their band either way
    excess = (plain["hf"] - p.borrowers.hf_floor)[passive]
    got = (scaled["hf"] - p.borrowers.hf_floor)[passive]
    factor = np.where(np.arange(2)[:, None] == 0, 0.5, 2.0)
    factor = np.broadcast_to(factor, plain["hf"].shape)[passive]
    np.testing.assert_allclose(got, excess * factor)


def test_trailing_vol_of_the_may_crash_is_high():
    calm = V.trailing_vol(V.data.parse_utc("2021-04-10T00:00:00Z"))
    after = V.trailing_vol(V.data.parse_utc("2021-05-25T00:00:00Z"))
    assert 0.2 < calm < after < 5.0


def test_the_split_keeper_stage_fits_two_depths_and_drops_the_fixed_share(monkeypatch):
    seen: list[dict] = []
    real_replay = V.replay

    def spy(params, days, *args, **kw):
        seen.append(
            {
                "frac": params.market.keeper_venue_frac,
                "agg": params.market.keeper_aggregator_depth_usd,
                "cex": params.market.keeper_cex_depth_usd,
            }
        )
        return real_replay(params, days[:2], *args, **kw, backend="numpy").repeat(
            len(days) // 2 + 1, axis=0
        )[: len(days)]

    monkeypatch.setattr(V, "replay", spy)
    out = V.fit(draws=2, positions=8, keepers="split", keepers_only=True)
    stage = V.KEEPER_STAGES["split"]
    assert len(seen) == len(stage["market.keeper_aggregator_depth_usd"]) * len(
        stage["market.keeper_cex_depth_usd"]
    )
    assert all(s["frac"] == 0.0 for s in seen)
    assert out["market.keeper_venue_frac"] == 0.0
    assert out["market.keeper_aggregator_depth_usd"] in stage["market.keeper_aggregator_depth_usd"]
    assert out["market.keeper_cex_depth_usd"] in stage["market.keeper_cex_depth_usd"]
    with pytest.raises(ValueError, match=r"keepers='pool'; allowed share, split"):
        V.fit(keepers="pool")


def test_finest_path_takes_the_ten_minute_closes_inside_the_day():
    days = {d.date: d for d in V.calibration_days()}
    may19, june1 = days["2021-05-19"], days["2021-06-01"]
    grid = may19.start_s - 6 * 3600.0 + np.arange(6 * 30) * 600.0  # 6 h before .. 24 h after
    hourly = V.replay_prices(may19, grid, "hourly")
    fine = V.replay_prices(may19, grid, "finest")
    t, c = V.close_times()
    np.testing.assert_allclose(hourly, V.resample_log(t, c, grid))
    before = grid < may19.start_s
    np.testing.assert_array_equal(fine[before], hourly[before])  # the warm-up stays hourly
    tf, cf = V.ten_minute_closes(may19.start_s)
    at = np.searchsorted(grid, tf[(tf > may19.start_s) & (tf <= grid[-1])])
    np.testing.assert_allclose(fine[at], cf[(tf > may19.start_s) & (tf <= grid[-1])])
    # the intra-hour low of 13:00-14:00 UTC (1,945) that the hourly closes (2,365, 2,494) miss
    assert fine.min() < 2000.0 < hourly.min()
    assert V.ten_minute_closes(june1.start_s) is None  # no 10-minute data: hourly
    np.testing.assert_array_equal(
        V.replay_prices(june1, grid - may19.start_s + june1.start_s, "finest"),
        V.replay_prices(june1, grid - may19.start_s + june1.start_s, "hourly"),
    )
    with pytest.raises(ValueError, match="path='daily'; allowed finest, hourly"):
        V.replay_prices(may19, grid, "daily")


def test_bridge_keeps_the_closes_and_dips_between_them_with_the_hour_s_volatility():
    days = {d.date: d for d in V.calibration_days()}
    may13, may19 = days["2021-05-13"], days["2021-05-19"]
    grid = may13.start_s - 24 * 3600.0 + np.arange(48 * 6) * 600.0  # a day before .. the day
    chord = V.replay_prices(may13, grid, "hourly")
    paths = V.replay_paths(may13, grid, 400, "bridge", seed=3)
    assert paths.shape == (grid.size, 400)
    on_hour = (grid % 3600.0) == 0.0
    np.testing.assert_allclose(paths[on_hour], np.repeat(chord[on_hour][:, None], 400, axis=1))
    assert np.all(paths[~on_hour] != chord[~on_hour][:, None])  # each draw its own path
    np.testing.assert_array_equal(paths, V.replay_paths(may13, grid, 400, "bridge", seed=3))
    assert not np.array_equal(paths, V.replay_paths(may13, grid, 400, "bridge", seed=4))
    # the deviation at mid-hour has the bridge's variance sigma^2 / 4, sigma the RMS of the
    # hourly log returns of the hour and its neighbours; 00:00-01:00 UTC on May 13 follows the
    # hour that fell 10%: its intra-hour lows are 1-4% under the chord, as Aave's
    # liquidations at 00:05-00:07 (oracle price about 3,680 against closes 3,823 and 3,896)
    dev = np.log(paths / chord[:, None])
    t, c = V.close_times()
    marks = grid[0] + np.arange(49) * 3600.0
    r = np.diff(np.log(V.resample_log(t, c, marks)))
    k = 24  # the hour 00:00-01:00 of May 13
    sigma = np.sqrt(np.mean(r[k - 1 : k + 2] ** 2))
    mid = int(np.searchsorted(grid, may13.start_s + 1800.0))
    assert np.std(dev[mid]) == pytest.approx(sigma / 2.0, rel=0.15)
    hour0 = (grid >= may13.start_s) & (grid < may13.start_s + 3600.0)
    assert np.median(paths[hour0].min(axis=0)) < 0.995 * chord[hour0].min()
    assert np.quantile(paths[hour0].min(axis=0), 0.25) < 0.98 * chord[hour0].min()
    quiet = slice(0, 6)  # a calm hour of May 12: small dips
    assert np.median(np.abs(dev[quiet]).max(axis=0)) < 0.01
    # days with 10-minute closes keep them inside the day, for every draw
    g19 = may19.start_s - 6 * 3600.0 + np.arange(30 * 6) * 600.0
    fine = V.replay_prices(may19, g19, "finest")
    b19 = V.replay_paths(may19, g19, 3, "bridge")
    inside = g19 >= may19.start_s
    np.testing.assert_allclose(b19[inside], np.repeat(fine[inside][:, None], 3, axis=1))
    between = ~inside & ((g19 % 3600.0) != 0.0)  # the warm-up: bridged
    assert np.all(b19[between] != fine[between][:, None])
    with pytest.raises(ValueError, match="an even grid that starts on an hour mark"):
        V.bridge_log(grid + 60.0, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="path='bridge'; allowed finest, hourly"):
        V.replay_prices(may13, grid, "bridge")


def test_replay_gas_rises_with_the_hour_s_volatility():
    days = [d for d in V.calibration_days() if d.date in ("2021-05-19", "2021-06-01")]
    params = preset_params("aave_v2_weth")
    flat, _ = V.day_drivers(days, 2, params, 6.0, gas="flat", path="hourly")
    cong, warm = V.day_drivers(days, 2, params, 6.0, gas="congestion", path="hourly")
    np.testing.assert_array_equal(flat.gas_gwei, 30.0)
    np.testing.assert_array_equal(flat.fundamental_usd, cong.fundamental_usd)
    crash = cong.gas_gwei[warm + 12 * 6 : warm + 15 * 6, :2]  # May 19, 12:00-15:00
    calm = cong.gas_gwei[warm + 12 * 6 : warm + 15 * 6, 2:]  # June 1, same hours
    assert np.median(crash) > 2.0 * np.median(calm)
    again, _ = V.day_drivers(days, 2, params, 6.0, gas="congestion", path="hourly")
    np.testing.assert_array_equal(again.gas_gwei, cong.gas_gwei)
    with pytest.raises(ValueError, match="gas='x'; allowed congestion, flat"):
        V.day_drivers(days, 2, params, 6.0, gas="x")


def test_arrival_mult_follows_the_trailing_drawdown():
    t, c = V.close_times()
    s = data.parse_utc("2021-05-19T00:00:00Z")
    grid = np.array([s - 60 * 86400.0, s + 14 * 3600.0, s + 30 * 86400.0])
    assert np.all(V.arrival_mult(grid, 0.0) == 1.0)
    m = V.arrival_mult(grid, 4.0)
    # the last close known at each time over the highest close of the 30 days before, ** 4
    for g, got in zip(grid, m, strict=True):
        i = np.searchsorted(t, g, side="right") - 1
        peak = c[(t > t[i] - 720 * 3600.0) & (t <= t[i])].max()
        assert got == pytest.approx((c[i] / peak) ** 4.0)
    assert m[1] < 0.2 < m[0]  # May 19 afternoon: ETH some 40% under its May 12 high
    with pytest.raises(
        ValueError, match=r"arrival_drawdown=-1.0 is out of range; allowed \[0, 20\]"
    ):
        V.arrival_mult(grid, -1.0)


def test_the_drawdown_response_thins_arrivals_in_the_replay():
    params = preset_params("aave_v2_weth")
    days = [d for d in V.calibration_days() if d.date == "2021-06-21"]
    plain, _ = V.day_drivers(days, 1, params, 48.0)
    thin, _ = V.day_drivers(days, 1, params, 48.0, arrival_drawdown=8.0)
    assert np.all(plain.arrival_mult == 1.0)
    assert np.all(thin.arrival_mult < 0.5)  # June 2021: ETH half its May high
    assert np.array_equal(thin.fundamental_usd, plain.fundamental_usd)


def test_held_out_choices_never_see_the_month_they_choose_for():
    days = V.calibration_days()
    real = np.stack([d.real_hourly_usd for d in days])[:, None, :] + 1.0
    months = sorted({V.month_of(d) for d in days})
    # point k is exact on every month but month k, where it is reversed; a point that is wrong
    # only on the held-out month must win there (the choice never looks at that month)
    hourly = []
    for m in months:
        h = real.copy()
        bad = [i for i, d in enumerate(days) if V.month_of(d) == m]
        h[bad] = h[bad][::-1, :, ::-1] * 50.0
        hourly.append(h)
    choice, losses = V.held_out_choices(hourly, days)
    assert list(choice) == months
    for k, m in enumerate(months):
        assert choice[m] == k
        assert losses[m][k] == pytest.approx(min(losses[m]))


def test_held_out_days_choose_without_their_own_day():
    days = V.calibration_days()[:6]
    real = np.stack([d.real_hourly_usd for d in days])[:, None, :] + 1.0
    hourly = []
    for j in range(len(days)):  # point j is wrong on day j only
        h = real.copy()
        h[j] *= 50.0
        hourly.append(h)
    choice, _ = V.held_out_choices(hourly, days, V.HELD_OUT_GROUPS["leave-one-day-out"])
    assert choice == {d.date: j for j, d in enumerate(days)}


@pytest.mark.slow
def test_held_out_validate_runs_the_engine():
    params = preset_params("aave_v2_weth")
    grid = {"run.warmup_h": (24.0,), "replay.arrival_drawdown": (0.0, 8.0)}
    r = V.validate(
        params, 24.0, draws=2, positions=16, protocol="leave-one-day-out",
        grid=grid, grid_draws=2, grid_positions=16,
    )  # fmt: skip
    assert r["protocol"] == "leave-one-day-out"
    assert len(r["held_out"]) == len(r["calibration_days"]) == len(V.calibration_days())
    assert {h["arrival_drawdown"] for h in r["held_out"]} <= {0.0, 8.0}
    assert len(r["grid"]) == 2 and all(g["warmup_h"] == 24.0 for g in r["grid"])
    assert all(d["warmup_h"] == 24.0 for d in r["calibration_days"])


def test_arrival_hf_mult_follows_the_trailing_30_day_return():
    t, c = V.close_times()
    rally = data.parse_utc("2021-05-10T00:00:00Z")  # ETH up some 60% over 30 days
    crash = data.parse_utc("2021-06-21T12:00:00Z")  # some 30% under its level 30 days before
    grid = np.array([rally, crash])
    assert np.all(V.arrival_hf_mult(grid, 0.0) == 1.0)
    m = V.arrival_hf_mult(grid, 1.0)
    for g, got in zip(grid, m, strict=True):
        i = np.searchsorted(t, g, side="right") - 1
        assert got == pytest.approx(c[i - 720] / c[i])  # rows of hourly closes
    assert m[0] < 0.75 and m[1] > 1.2  # closer to the edge after the rally, farther after the crash
    with pytest.raises(
        ValueError, match=r"hf_path_elasticity=5.0 is out of range; allowed \[0, 4\]"
    ):
        V.arrival_hf_mult(grid, 5.0)


def test_arrivals_take_the_path_scaled_margin_in_the_replay(monkeypatch):
    import levgym.simulation as S

    seen: list[np.ndarray] = []

    class Spy(S.Simulator):
        def substep(self, orders=None):
            seen.append(np.asarray(self.state.template_hf).copy())
            return super().substep(orders)

    monkeypatch.setattr(S, "Simulator", Spy)
    params = preset_params("aave_v2_weth")
    days = [d for d in V.calibration_days() if d.date in ("2021-05-12", "2021-06-21")]
    plain = V.replay(params, days, 24.0, 2, 40, seed=3, backend="numpy")
    drawn = seen[0]
    assert all(np.array_equal(h, drawn) for h in seen)  # off: the drawn margins throughout
    seen.clear()
    moved = V.replay(params, days, 24.0, 2, 40, seed=3, backend="numpy", hf_path=2.0)
    floor = params.borrowers.hf_floor
    sub_h = params.run.substep_h
    for k in (0, 150, len(seen) - 1):
        for j, d in enumerate(days):
            g = d.start_s + (k - int(round(24.0 / sub_h))) * sub_h * 3600.0
            want = floor + (drawn[2 * j : 2 * j + 2] - floor) * V.arrival_hf_mult(
                np.array([g]), 2.0
            )
            np.testing.assert_allclose(seen[k][2 * j : 2 * j + 2], want, rtol=1e-12)
    assert seen[0][:2].mean() < drawn[:2].mean()  # May 12: after the rally, nearer the edge
    assert seen[0][2:].mean() > drawn[2:].mean()  # June 21: after the crash, farther from it
    assert not np.array_equal(plain, moved)


def test_a_grid_point_s_replay_keys_become_replay_options():
    params = preset_params("aave_v2_weth")
    grid = {"run.warmup_h": (336.0, 1440.0), "replay.hf_path": (0.0, 1.0)}
    points = V.grid_points(grid, params)
    assert len(points) == 4
    got = [V.point_replay_args(params, v, 8.0, "bridge", hf_path=0.5) for v in points]
    assert [(w, o["hf_path"]) for _, w, o in got] == [
        (336.0, 0.0),
        (336.0, 1.0),
        (1440.0, 0.0),
        (1440.0, 1.0),
    ]
    assert all(o["arrival_drawdown"] == 8.0 and o["path"] == "bridge" for _, _, o in got)
    # without the key, the caller's value
    _, _, o = V.point_replay_args(params, {"run.warmup_h": 336.0}, 8.0, "bridge", hf_path=0.5)
    assert o["hf_path"] == 0.5
    _, _, o = V.point_replay_args(params, {"replay.bridge": 0.0}, 8.0, "bridge")
    assert o["path"] == "finest" and o["hf_path"] == 0.0
