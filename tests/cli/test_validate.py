"""`levgym validate` / `levgym calibrate`: the report's keys are registered, the JSON and the PNG
are written, bad values exit 2. The replay is faked in the fast tests (the real one is slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from levgym import results as R
from levgym.analytics import validation as V
from levgym.cli import main


def _fake_replay(params, days, warmup_h, draws, positions, seed=0, backend="numba", **replay):
    assert set(replay) == {"gas", "path", "arrival_drawdown", "hf_path"}
    rng = np.random.default_rng(int(warmup_h) + 1)
    real = np.stack([d.real_hourly_usd for d in days])[:, None, :]
    return real * rng.lognormal(0.0, 0.5, (len(days), draws, 1)) + 1.0


def test_validate_json_and_plot(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(V, "replay", _fake_replay)
    png = tmp_path / "v.png"
    rc = main(["validate", "--json", "--draws", "3", "--plot", str(png)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert not R.problems(out, "validate")
    assert out["warmup_h"] == 336.0  # the preset's fitted warm-up
    assert out["arrival_drawdown"] == 8.0  # and its drawdown response (run.arrival_drawdown)
    days = out["calibration_days"]
    assert len(days) == out["scores"]["fit"]["days"] + out["scores"]["test"]["days"]
    assert {d["split"] for d in days} == {"fit", "test"}
    for split in ("fit", "test"):
        shares = [d["model_share"] for d in days if d["split"] == split]
        assert sum(shares) == pytest.approx(1.0)
    assert len(out["big_days"]) == V.BIG_DAYS
    assert set(out["noise_ceiling"]) == {"spearman", "within_2x_frac", "timing_corr"}
    events = out["noise_ceiling_events"]
    assert set(events) == {"spearman", "within_2x_frac", "timing_corr", "borrower_days", "sims"}
    assert events["borrower_days"] == 1185 and events["sims"] == V.EVENT_CEILING_SIMS
    may19 = next(d for d in days if d["date"] == "2021-05-19")
    assert may19["real_accounts"] == 152 and may19["real_top_account_share"] < 0.11
    assert out["largest_account"]["dates"][0] == "2021-04-07"
    assert png.stat().st_size > 10_000


def test_validate_table(monkeypatch, capsys):
    monkeypatch.setattr(V, "replay", _fake_replay)
    assert main(["validate", "--draws", "2", "--warmup-h", "0"]) == 0
    text = capsys.readouterr().out
    assert "2021-05-19 test" in text and "noise ceiling" in text and "fresh_test" in text
    assert "events ceiling" in text and "1185 borrower-days" in text
    assert "gas congestion, path bridge" in text  # the default replays
    may18 = next(line for line in text.splitlines() if line.startswith("2021-05-18 test"))
    assert may18.split()[-3:] == ["3", "99%", "100%"]  # one account, liquidated before
    assert "largest account (0x208b82b0...) repaid 21% of their real volume, on 9 of them" in text


def test_validate_passes_the_replay_choices(monkeypatch, capsys):
    seen = []

    def fake(*args, **kw):
        seen.append((kw["gas"], kw["path"]))
        return _fake_replay(*args, **kw)

    monkeypatch.setattr(V, "replay", fake)
    assert main(["validate", "--json", "--draws", "2", "--gas", "flat", "--path", "hourly"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replay_gas"] == "flat" and out["replay_path"] == "hourly"
    assert seen == [("flat", "hourly")] * 2  # warm and fresh


def test_validate_passes_the_arrivals_margin_response(monkeypatch, capsys):
    seen = []

    def fake(*args, **kw):
        seen.append(kw["hf_path"])
        return _fake_replay(*args, **kw)

    monkeypatch.setattr(V, "replay", fake)
    assert main(["validate", "--json", "--draws", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["hf_path"] == 0.0  # off by default
    assert main(["validate", "--json", "--draws", "2", "--hf-path", "1.5"]) == 0
    assert json.loads(capsys.readouterr().out)["hf_path"] == 1.5
    assert seen == [0.0, 0.0, 1.5, 1.5]  # warm and fresh


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--draws", "1"], "--draws=1 is out of range; allowed >= 2"),
        (["--warmup-h", "-3"], "--warmup-h=-3 is out of range; allowed [0, 1440]"),
        (["--preset", "nope"], "preset 'nope' is unknown"),
        (["--plot", "x.txt"], "--plot"),
        (["--arrival-drawdown", "-1"], "--arrival-drawdown=-1 is out of range; allowed [0, 20]"),
        (["--arrival-drawdown", "nan"], "--arrival-drawdown=nan is out of range"),
        (["--hf-path", "5"], "--hf-path=5 is out of range; allowed [0, 4]"),
        (["--hf-path", "-1"], "--hf-path=-1 is out of range; allowed [0, 4]"),
        (
            ["--protocol", "leave-one-month-out", "--warmup-h", "24"],
            "--warmup-h is chosen per month by --protocol leave-one-month-out; allowed only "
            "with --protocol split",
        ),
        (
            ["--protocol", "leave-one-month-out", "--arrival-drawdown", "2"],
            "--arrival-drawdown is chosen per month",
        ),
    ],
)
def test_validate_bad_values(capsys, args, message):
    assert main(["validate", *args]) == 2
    assert message in capsys.readouterr().err


def test_validate_unknown_protocol(capsys):
    with pytest.raises(SystemExit) as e:
        main(["validate", "--protocol", "nope"])
    assert e.value.code == 2
    assert "--protocol: invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("protocol", "groups"),
    [("leave-one-month-out", lambda d: d[:7]), ("leave-one-day-out", lambda d: d)],
)
def test_validate_held_out_protocols(monkeypatch, capsys, protocol, groups):
    calls = []

    def fake(params, days, warmup_h, draws, positions, seed=0, backend="numba", **replay):
        calls.append((warmup_h, replay["arrival_drawdown"], len(days), draws, positions))
        # the grid point with the drawdown response fits every month: real volumes times noise
        h = _fake_replay(params, days, warmup_h, draws, positions, seed, **replay)
        return h if replay["arrival_drawdown"] == 8.0 else h[::-1].copy()

    monkeypatch.setattr(V, "replay", fake)
    assert main(["validate", "--json", "--draws", "2", "--protocol", protocol]) == 0
    out = json.loads(capsys.readouterr().out)
    assert not R.problems(out, "validate")
    assert out["protocol"] == protocol
    grid = V.HELD_OUT_GRID
    n_points = int(np.prod([len(v) for v in grid.values()]))
    grid_calls = calls[:n_points]
    assert {(c[3], c[4]) for c in grid_calls} == {(V.HELD_OUT_DRAWS, V.HELD_OUT_POSITIONS)}
    assert all(c[2] == len(out["calibration_days"]) for c in grid_calls)
    held = sorted({groups(d["date"]) for d in out["calibration_days"]})
    assert [h["group"] for h in out["held_out"]] == held
    assert all(h["arrival_drawdown"] == 8.0 for h in out["held_out"])
    assert out["all_days_choice"]["arrival_drawdown"] == 8.0
    # then each chosen point's months at validate's own size, warm and fresh
    final = calls[n_points:]
    assert {(c[3], c[4]) for c in final} == {(2, V.AAVE_SLOTS)}
    assert sum(c[2] for c in final) == 2 * len(out["calibration_days"])
    assert "less the day's own " + ("day" if "day" in protocol else "month") in out["fit_period"]
    assert all(d["warmup_h"] in grid["run.warmup_h"] for d in out["calibration_days"])


def test_validate_table_states_the_protocol(monkeypatch, capsys):
    monkeypatch.setattr(V, "replay", _fake_replay)
    assert main(["validate", "--draws", "2", "--protocol", "leave-one-month-out"]) == 0
    text = capsys.readouterr().out
    assert "protocol leave-one-month-out: each month replayed with the grid point" in text
    assert "2021-06" in text and "all days: warmup_h" in text
    assert f"({V.HELD_OUT_DRAWS} books of {V.HELD_OUT_POSITIONS} slots per grid point)" in text


def test_calibrate_passes_the_drawdown_response(monkeypatch, capsys):
    seen = {}

    def fake_fit(**kw):
        seen.update(kw)
        return {"fit_days": 22, "loss": 1.0}

    monkeypatch.setattr(V, "fit", fake_fit)
    assert main(["calibrate", "--json", "--arrival-drawdown", "4"]) == 0
    assert seen["arrival_drawdown"] == 4.0
    assert main(["calibrate", "--json"]) == 0
    assert seen["arrival_drawdown"] == 8.0  # the preset's run.arrival_drawdown
    assert main(["calibrate", "--arrival-drawdown", "25"]) == 2
    assert "--arrival-drawdown=25 is out of range" in capsys.readouterr().err


@pytest.mark.slow
def test_validate_runs_the_engine(capsys):
    rc = main(["validate", "--json", "--draws", "2", "--positions", "32", "--warmup-h", "24"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    may19 = next(d for d in out["calibration_days"] if d["date"] == "2021-05-19")
    assert may19["model_usd"] > 0 and may19["real_usd"] > 60e6
