"""Fidelity: replay real days of 2020-12 .. 2021-06 through the engine and compare the liquidated
debt with what Aave v2 liquidated (WETH collateral, stablecoin debt); fit the book on the fit
period. ``levgym validate`` prints :func:`validate`; ``levgym calibrate`` reruns :func:`fit`.

Data (``levgym/data``, README): ETH hourly closes (Binance spot) and the Aave v2 liquidation
events (The Graph), debt repaid in stablecoin units taken as USD.

Calibration days: the :data:`TOP_DAYS` days with the largest real volume, plus every day whose
ETH fall (the day's lowest hourly close under the close at 00:00 UTC) is at least
:data:`FALL_MIN_FRAC`. Fit period: days before :data:`TEST_START`; test period: from it on.

Replay of a day: the hourly closes, interpolated in log price onto the 10-minute grid, from
``warmup_h`` hours before 00:00 UTC to 24:00, with a Brownian bridge between the closes drawn
per book (``path="bridge"``, :func:`bridge_log`), inside the day the 10-minute closes where the
data hold them (:func:`replay_paths`); arrivals times the trailing drawdown's response
(:func:`arrival_mult`); gas from the congestion fit (:func:`replay_gas`); the market's
normal liquidity. The book
is drawn at the first row and lives through the warm-up (liquidations, arrivals, exits,
re-levering) before the day starts; the day's volume is the debt repaid by liquidators from
00:00 to 24:00. Each day is replayed with ``draws`` books (:func:`day_books`: book ``r`` is the
same draw on every day, holding the same ETH, its health factors optionally scaled by the
trailing volatility; borrower noise of env ``i`` seeded ``seed + i``); the model's volume is the
mean over draws.

Scores (:func:`score`), on a set of days:

- normalised shares: a day's volume over the sum over the set's days (real and model apart);
- log2 ratio of the shares, each share floored at ``SHARE_FLOOR_FRAC / days`` (a day with almost
  nothing liquidated in both counts as equal);
- Spearman rank correlation of the daily volumes; the share of days within 2x (|log2| <= 1);
- hourly timing: Pearson correlation of the 24 hourly volumes on the :data:`BIG_DAYS` days of the
  set with the largest real volume, averaged over those days.

Protocols (:data:`PROTOCOLS`): ``split`` replays every day with the given parameters (the preset
fitted on the fit period: the test days are out of sample); ``leave-one-day-out`` /
``leave-one-month-out`` replay each day (month) with the point of :data:`HELD_OUT_GRID` (warm-up,
and the arrivals' response to the trailing drawdown, :func:`arrival_mult`) that fits the other
days' (months') calibration days best (:func:`held_out_choices`): every day is out of sample.

Noise ceilings, how well a perfect model of this kind can do against a single real history:
:func:`noise_ceiling`, the same scores of the model (mean over the other draws) against one draw
of its own book of :data:`AAVE_SLOTS` slots, averaged over the draws; and
:func:`event_noise_ceiling`, the model's expected volumes against histories made of Aave's own
liquidations (the set's real borrowers' sizes and count), which are dominated by whales as the
real days are and the model's book is not.

The accounts behind the real days (:func:`account_days`, :func:`largest_account`; a diagnostic of
the history, never an input): per day the accounts liquidated, the largest one's share and the
share repaid by accounts liquidated on an earlier day; over the test days, the account that
repaid the most.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.drivers import Drivers, unchecked
from ..engine.params import EngineParams, preset_params
from ..scenarios import data
from ..scenarios.base import ScenarioContext
from ..scenarios.overlays import compose
from ..scenarios.processes import (
    DRAWDOWN_WINDOW_H,
    HF_PATH_WINDOW_H,
    drawdown_mult,
    hf_margin_mult,
    resample_log,
)

PERIOD_START = "2020-12-17"
PERIOD_END = "2021-06-30"
TEST_START = "2021-04-01"
TOP_DAYS = 12
FALL_MIN_FRAC = 0.05
BIG_DAYS = 5
SHARE_FLOOR_FRAC = 0.05
AAVE_SLOTS = 2000
VOL_WINDOW_H = 14 * 24.0
"""Realized volatility that the book's health factors respond to: the 14 days before its draw."""
BOOK_REF_PRICE_USD = 2000.0
"""The book holds ``total_collateral_usd / BOOK_REF_PRICE_USD`` ETH on every replayed day."""
DAY_S = data.DAY_S
HOURS = 24

# The grids of :func:`fit`, searched one after the other, each from the best of the one before:
# the book (warm-up, turnover, health factors near the edge and their response to recent
# volatility), then the two keeper parameters (the share of keepers' sales routed off the pool
# and that venue's depth). Arrivals follow exits (``ARRIVALS_PER_EXIT``), keeping about 90% of the
# slots active; loopers replace passive positions (the defensive share stays). Values in no grid are the preset's: the pool's depth is fixed from the data
# (``POOL_DEPTH_USD``); a first pass picked ``size_pareto_alpha`` 1.6 and ``hf_sigma`` 1.0.
FIT_STAGES: tuple[dict[str, tuple[float, ...]], ...] = (
    {
        "run.warmup_h": (72.0, 336.0),
        "borrowers.exit_rate_per_h": (0.002, 0.01),
        "borrowers.hf_median_excess": (0.3, 0.5),
        "borrowers.hf_vol_elasticity": (0.0, 1.0),
        "borrowers.looper_frac": (0.2, 0.5),
    },
    {
        "market.keeper_venue_frac": (0.0, 0.5, 0.9),
        "market.keeper_venue_depth_usd": (2e8, 1e9, 5e9),
    },
)
KEEPER_STAGES: dict[str, dict[str, tuple[float, ...]]] = {
    "share": FIT_STAGES[1],
    # The keepers' split over three venues (levgym.engine.rules.route_split): the pool's depth
    # from the data (POOL_DEPTH_USD); the aggregator route's and the CEX leg's depths are the two
    # keeper parameters (0: no such venue; the CEX leg's latency moves no liquidation).
    "split": {
        "market.keeper_aggregator_depth_usd": (0.0, 4e7, 1.6e8),
        "market.keeper_cex_depth_usd": (0.0, 1e7, 1e8),
    },
}
"""The keeper stage of :func:`fit` by routing: a fixed share to one off-pool venue (the preset's,
:data:`FIT_STAGES`) or the best split over the pool, an aggregator route and a CEX leg."""
ARRIVALS_PER_EXIT = 9.0
GASES = ("congestion", "flat")
PATHS = ("finest", "hourly", "bridge")
DEFAULT_GAS = "congestion"
"""Gas of the replays (:func:`replay_gas`); ``flat``: 30 gwei throughout (before fid13d)."""
DEFAULT_PATH = "bridge"
"""Price path of the replays (:func:`replay_paths`): ``bridge``, the hourly closes with a
Brownian bridge between them (:func:`bridge_log`; every day of the 16-point held-out grid chose
it: docs/fidelity.md), the 10-minute closes inside the days the data hold them; ``finest``:
the same without the bridge (the default before fid13f); ``hourly``: the hourly closes only."""
BRIDGE_VOL_WINDOW_H = 3
"""Hours of hourly log returns, centred on an hour, whose RMS is that hour's volatility in the
bridge (:func:`bridge_log`): the hour itself and its two neighbours."""
DEFAULT_ARRIVAL_DRAWDOWN = 0.0
"""Elasticity of arrivals to the trailing drawdown in the replays (:func:`arrival_mult`) when a
caller gives none; 0: arrivals at the preset's rate throughout (the fit period, one rally, does
not identify it). ``levgym validate`` and ``calibrate`` pass the preset's
``run.arrival_drawdown`` (``aave_v2_weth``: 8, the held-out choice)."""
DEFAULT_HF_PATH = 0.0
"""Elasticity of new borrowers' health-factor margin to the trailing 30-day return in the
replays (:func:`arrival_hf_mult`) when a caller gives none; 0: the drawn margins throughout."""
POOL_DEPTH_USD = 80e6
"""The on-chain pool keepers and arbitrageurs meet: the median DAI reserve of the Uniswap v2
DAI/WETH pool at the start of the five 2021 stress days in the reserves file (37-108M)."""


@dataclass(frozen=True)
class Day:
    """One calibration day: real volume and its hours, and the ETH fall that day."""

    date: str
    start_s: float
    fall_frac: float
    real_usd: float
    real_hourly_usd: np.ndarray

    @property
    def test(self) -> bool:
        return self.date >= TEST_START


def _day_starts() -> np.ndarray:
    d0 = data.parse_utc(PERIOD_START + "T00:00:00Z")
    d1 = data.parse_utc(PERIOD_END + "T00:00:00Z")
    return np.arange(d0, d1 + 1.0, DAY_S)


def close_times() -> tuple[np.ndarray, np.ndarray]:
    """ETH hourly closes at their bar's end: (unix_s, close)."""
    t, c = data.hourly_closes()
    return t + data.HOUR_S, c


def day_fall(start_s: float) -> float:
    """1 - the day's lowest hourly close / the close at its 00:00 UTC."""
    t, c = close_times()
    i0 = int(np.searchsorted(t, start_s))
    inside = (t > start_s) & (t <= start_s + DAY_S)
    return float(1.0 - c[inside].min() / c[i0])


def real_hourly(start_s: float) -> np.ndarray:
    """Debt repaid per hour of the day (USD), Aave v2 WETH collateral, stablecoin debt."""
    ts, v = data.aave_liquidations()
    m = (ts >= start_s) & (ts < start_s + DAY_S)
    h = ((ts[m] - start_s) // data.HOUR_S).astype(np.int64)
    return np.bincount(h, weights=v[m], minlength=HOURS).astype(np.float64)


def calibration_days(top: int = TOP_DAYS, fall_min: float = FALL_MIN_FRAC) -> list[Day]:
    """The ``top`` days with the largest real volume plus every day falling at least ``fall_min``,
    in date order."""
    days = []
    for s in _day_starts():
        hourly = real_hourly(float(s))
        days.append(
            Day(
                data.utc_text(float(s))[:10],
                float(s),
                day_fall(float(s)),
                float(hourly.sum()),
                hourly,
            )
        )
    by_volume = sorted(days, key=lambda d: -d.real_usd)[:top]
    keep = {d.date for d in by_volume} | {d.date for d in days if d.fall_frac >= fall_min}
    return [d for d in days if d.date in keep]


def ten_minute_closes(start_s: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The 10-minute ETH closes (at their bar's end) of the day starting at ``start_s``, where
    the data hold that day (``data.stress_days``), else None."""
    key = data.utc_text(start_s)[:10]
    name = f"{key[5:7]}-{key[8:10]}-{key[:4]}"
    if name not in data.stress_days():
        return None
    t, _, close = data.eth_10min(name)
    return t + data.BAR_10MIN_S, close


def replay_prices(day: Day, grid: np.ndarray, path: str = "finest") -> np.ndarray:
    """The replayed ETH price at ``grid`` (unix s): the hourly closes interpolated in log price;
    with ``path="finest"``, inside the day the 10-minute closes where the data hold them
    (:func:`ten_minute_closes`: 5 of the 55 days; their intra-hour lows are what the hourly
    closes miss)."""
    if path not in PATHS or path == "bridge":
        raise ValueError(f"path={path!r}; allowed finest, hourly (bridge: replay_paths)")
    t, c = close_times()
    prices = resample_log(t, c, grid)
    fine = ten_minute_closes(day.start_s) if path == "finest" else None
    if fine is not None:
        tf, cf = fine
        inside = (grid >= max(day.start_s, tf[0])) & (grid <= tf[-1])
        prices[inside] = resample_log(tf, cf, grid[inside])
    return prices


def bridge_log(
    grid: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    window_h: int = BRIDGE_VOL_WINDOW_H,
) -> np.ndarray:
    """Log-price deviations ``[len(grid), draws]`` of a Brownian bridge between the hourly
    closes: between two consecutive hour marks the log price is a Brownian motion pinned at both
    closes, with the hour's volatility (the RMS of the hourly log returns of the ``window_h``
    hours centred on it, of the hourly closes interpolated onto the hour marks). Added to the
    log-linear interpolation it keeps every hourly close and draws the intra-hour path the
    closes do not show (its expected lowest point ``sqrt(pi / 8)`` hourly sigmas under the
    chord). ``grid`` (unix s) must be evenly spaced, start on an hour mark and divide the hour;
    each draw is its own path."""
    dt = float(grid[1] - grid[0]) if grid.size > 1 else data.HOUR_S
    n = int(round(data.HOUR_S / dt))
    if (
        n < 1
        or abs(n * dt - data.HOUR_S) > 1e-6
        or abs(grid[0] % data.HOUR_S) > 1e-6
        or not np.allclose(np.diff(grid), dt)
    ):
        raise ValueError("the bridge needs an even grid that starts on an hour mark")
    if window_h < 1:
        raise ValueError(f"window_h={window_h}; allowed >= 1")
    t, c = close_times()
    segs = int(math.ceil(grid.size / n))
    marks = grid[0] + np.arange(segs + 1) * data.HOUR_S
    r = np.diff(np.log(resample_log(t, c, marks)))
    from scipy.ndimage import uniform_filter1d

    var = uniform_filter1d(r * r, size=window_h, mode="nearest")  # running sums: clip rounding
    sigma = np.sqrt(np.maximum(var, 0.0))  # [segs]
    z = rng.standard_normal((segs, n, draws)) * (sigma[:, None, None] / math.sqrt(n))
    w = np.cumsum(z, axis=1)  # W at u = 1/n .. 1
    u = np.arange(1, n) / n
    b = np.zeros((segs, n, draws))
    b[:, 1:] = w[:, :-1] - u[None, :, None] * w[:, -1:]
    return b.reshape(segs * n, draws)[: grid.size]


def replay_paths(
    day: Day, grid: np.ndarray, draws: int, path: str = DEFAULT_PATH, seed: int = 0
) -> np.ndarray:
    """The replayed ETH prices ``[len(grid), draws]``: :func:`replay_prices` for every draw;
    with ``path="bridge"`` each draw its own Brownian bridge between the hourly closes
    (:func:`bridge_log`, ``default_rng([seed, day start, 1])``: the same day gets the same
    bridges whichever days are replayed with it), the 10-minute closes kept where the data hold
    them."""
    if path != "bridge":
        return np.repeat(replay_prices(day, grid, path)[:, None], draws, axis=1)
    t, c = close_times()
    rng = np.random.default_rng([seed, int(day.start_s), 1])
    prices = resample_log(t, c, grid)[:, None] * np.exp(bridge_log(grid, draws, rng))
    fine = ten_minute_closes(day.start_s)
    if fine is not None:
        tf, cf = fine
        inside = (grid >= max(day.start_s, tf[0])) & (grid <= tf[-1])
        prices[inside] = resample_log(tf, cf, grid[inside])[:, None]
    return prices


def replay_gas(hourly_prices: np.ndarray, params: EngineParams, seed: int = 0) -> np.ndarray:
    """Gas ``[S, E]`` (gwei) of the replay: the congestion fit
    (:class:`levgym.scenarios.overlays.Congestion`, ``CALIBRATED`` gas numbers: gas rising with
    the trailing hour's realized volatility, AR(1) noise per env) on the hourly closes
    interpolated onto the substeps. Their 10-minute returns are each a sixth of the hour's, so
    the realized volatility they show is the hourly one over ``sqrt(6)``: the fit's reference
    volatility (measured on 10-minute closes) is divided by ``sqrt(HOURLY_STEPS)`` to match."""
    from ..scenarios.calibration import CALIBRATED as C
    from ..scenarios.overlays import Congestion

    s, e = hourly_prices.shape
    ctx = ScenarioContext(e, s, params.run.substep_h, params, np.random.default_rng(seed))
    steps = 1.0 / params.run.substep_h
    congestion = Congestion(
        C["gas_ref_gwei"],
        C["gas_vol_elasticity"],
        C["gas_ref_vol_annual"] / math.sqrt(steps),
        C["gas_ar_phi"],
        C["gas_noise_sd_log"],
    )
    with unchecked():
        drivers = congestion.apply(Drivers.from_price(hourly_prices), ctx)
    return drivers.gas_gwei


def arrival_mult(
    grid: np.ndarray, elasticity: float, window_h: float = DRAWDOWN_WINDOW_H
) -> np.ndarray:
    """Arrival multiplier at ``grid`` (unix s): :func:`levgym.scenarios.processes.drawdown_mult`
    of the hourly closes, ``(close / trailing peak) ** elasticity``, the last hourly close known
    at that time over the highest close of the ``window_h`` hourly rows up to it (the data have
    a few gaps, ignored). ``elasticity`` 0: 1 throughout."""
    m = drawdown_mult(close_times()[1], int(round(window_h)), elasticity)
    return np.ones(grid.shape) if elasticity == 0.0 else _last_close_value(m, grid)


def arrival_hf_mult(
    grid: np.ndarray, elasticity: float, window_h: float = HF_PATH_WINDOW_H
) -> np.ndarray:
    """Multiplier at ``grid`` (unix s) on new borrowers' health-factor excess over the floor:
    :func:`levgym.scenarios.processes.hf_margin_mult` of the hourly closes, ``(close / close
    window_h hourly rows before) ** -elasticity``, the last hourly close known at that time.
    ``elasticity`` 0: 1 throughout."""
    m = hf_margin_mult(close_times()[1], int(round(window_h)), elasticity)
    return np.ones(grid.shape) if elasticity == 0.0 else _last_close_value(m, grid)


def _last_close_value(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values`` (one per hourly close) at ``grid`` (unix s): the last close's known then."""
    t = close_times()[0]
    i = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, t.size - 1)
    return values[i]


def _day_grid(day: Day, warm: int, s: int, sub_h: float) -> np.ndarray:
    """The replay's substep times (unix s) of ``day``: ``warm`` substeps before 00:00, ``s`` in
    all."""
    return day.start_s - warm * sub_h * data.HOUR_S + np.arange(s) * sub_h * data.HOUR_S


def day_drivers(
    days: list[Day],
    draws: int,
    params: EngineParams,
    warmup_h: float,
    gas: str = DEFAULT_GAS,
    path: str = DEFAULT_PATH,
    arrival_drawdown: float = DEFAULT_ARRIVAL_DRAWDOWN,
    seed: int = 0,
):
    """Drivers ``[S, days * draws]``: env ``j * draws + r`` replays day ``j``; ``gas``:
    ``congestion`` (:func:`replay_gas`) or ``flat`` (30 gwei); ``path``: see
    :func:`replay_prices`; ``arrival_drawdown``: the arrivals' multiplier
    (:func:`arrival_mult`, warm-up included)."""
    if gas not in GASES:
        raise ValueError(f"gas={gas!r}; allowed {', '.join(GASES)}")
    sub_h = params.run.substep_h
    warm = int(round(warmup_h / sub_h))
    s = warm + int(round(HOURS / sub_h))
    t, c = close_times()
    cols, hourly_cols, mult_cols = [], [], []
    for d in days:
        grid = _day_grid(d, warm, s, sub_h)
        cols.append(replay_paths(d, grid, draws, path, seed))
        hourly_cols.append(resample_log(t, c, grid))
        mult_cols.append(arrival_mult(grid, arrival_drawdown))
    prices = np.concatenate(cols, axis=1)
    ctx = ScenarioContext(prices.shape[1], s, sub_h, params, np.random.default_rng(0))
    drivers = compose(ctx, prices)
    if arrival_drawdown != 0.0:
        mult = np.repeat(np.stack(mult_cols, axis=1), draws, axis=1)
        drivers = drivers.replace(arrival_mult=drivers.arrival_mult * mult)
    if gas == "congestion":
        hourly = np.repeat(np.stack(hourly_cols, axis=1), draws, axis=1)
        drivers = drivers.replace(gas_gwei=replay_gas(hourly, params))
        drivers.check()
    return drivers, warm


def trailing_vol(at_s: float, window_h: float = VOL_WINDOW_H) -> float:
    """Annualized realized volatility of the hourly closes in the ``window_h`` hours before
    ``at_s`` (the book's recent history when it is drawn)."""
    t, c = close_times()
    k = (t <= at_s) & (t > at_s - window_h * data.HOUR_S)
    r = np.diff(np.log(c[k]))
    return float(r.std() * math.sqrt(24.0 * 365.0))


def day_books(
    params: EngineParams,
    days: list[Day],
    draws: int,
    positions: int,
    seed: int,
    drivers: Any,
    warmup_h: float,
) -> Any:
    """The initial state of every replay: draw ``r`` is the same book (``default_rng([seed, r])``)
    on every day, holding ``params.borrowers.total_collateral_usd / BOOK_REF_PRICE_USD`` ETH of
    collateral, so that its USD size follows the ETH price as a real book's does."""
    from ..engine.state import build_state, concat_books, concat_states, draw_book

    size_asset = params.borrowers.total_collateral_usd / BOOK_REF_PRICE_USD
    states = []
    for j in range(len(days)):
        cols = slice(j * draws, (j + 1) * draws)
        f0 = drivers.fundamental_usd[0, cols]
        day_params = with_values(
            params, {"borrowers.total_collateral_usd": size_asset * float(f0[0])}
        )
        vol = trailing_vol(days[j].start_s - warmup_h * data.HOUR_S)
        books = [
            draw_book(day_params, 1, positions, np.random.default_rng([seed, r]), vol)
            for r in range(draws)
        ]
        states.append(
            build_state(
                day_params,
                concat_books(books),
                f0,
                drivers.debt_price_usd[0, cols],
                drivers.liquidity_frac[0, cols],
                drivers.gas_gwei[0, cols],
            )
        )
    return concat_states(states)


def replay(
    params: EngineParams,
    days: list[Day],
    warmup_h: float,
    draws: int,
    positions: int,
    seed: int = 0,
    backend: str = "numba",
    gas: str = DEFAULT_GAS,
    path: str = DEFAULT_PATH,
    arrival_drawdown: float = DEFAULT_ARRIVAL_DRAWDOWN,
    hf_path: float = DEFAULT_HF_PATH,
) -> np.ndarray:
    """Model debt repaid by liquidators per hour of each day, USD ``[days, draws, 24]``
    (``gas``, ``path`` and ``arrival_drawdown``: :func:`day_drivers`). ``hf_path``: new
    borrowers open with their slot's drawn health-factor excess over ``borrowers.hf_floor``
    times :func:`arrival_hf_mult` of that substep (warm-up included; the drawn book is not
    rescaled)."""
    from ..simulation import Simulator  # the market runner sits above analytics' imports

    drivers, warm = day_drivers(days, draws, params, warmup_h, gas, path, arrival_drawdown, seed)
    state = day_books(params, days, draws, positions, seed, drivers, warmup_h)
    sim = Simulator(params, drivers, positions, seed, backend=backend, state=state)
    per_h = int(round(1.0 / params.run.substep_h))
    hf_mult = None
    if hf_path != 0.0:
        grids = [_day_grid(d, warm, drivers.num_substeps, params.run.substep_h) for d in days]
        hf_mult = np.repeat(
            np.stack([arrival_hf_mult(g, hf_path) for g in grids], axis=1), draws, axis=1
        )  # [S, E]
        floor = params.borrowers.hf_floor
        drawn_excess = np.asarray(state.template_hf, dtype=np.float64) - floor
    marks = []
    for k in range(drivers.num_substeps):
        if hf_mult is not None and (k == 0 or np.any(hf_mult[k] != hf_mult[k - 1])):
            # the one place arrivals read their margin: the slot's template health factor
            sim.state = sim.state.replace(template_hf=floor + drawn_excess * hf_mult[k][:, None])
        if k == warm or (k > warm and (k - warm) % per_h == 0):
            marks.append(np.asarray(sim.state.repaid_by_liquidators_usd, dtype=np.float64).copy())
        sim.substep()
    marks.append(np.asarray(sim.state.repaid_by_liquidators_usd, dtype=np.float64).copy())
    cum = np.stack(marks)  # [25, E]
    hourly = np.diff(cum, axis=0).T  # [E, 24]
    return hourly.reshape(len(days), draws, HOURS)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def score(
    model_daily: np.ndarray,
    real_daily: np.ndarray,
    model_hourly: np.ndarray,
    real_hourly_: np.ndarray,
) -> dict[str, Any]:
    """Scores of model against real volumes of a set of days (see the module doc)."""
    n = real_daily.size
    ms = model_daily / max(model_daily.sum(), 1e-300)
    rs = real_daily / max(real_daily.sum(), 1e-300)
    floor = SHARE_FLOOR_FRAC / n
    log2 = np.log2((ms + floor) / (rs + floor))
    big = np.argsort(-real_daily, kind="stable")[: min(BIG_DAYS, n)]
    timing = [_pearson(model_hourly[i], real_hourly_[i]) for i in big]
    timing = [x for x in timing if not math.isnan(x)]
    return {
        "days": int(n),
        "spearman": spearman(model_daily, real_daily),
        "within_2x_frac": float(np.mean(np.abs(log2) <= 1.0)),
        "rms_log2": float(np.sqrt(np.mean(log2**2))),
        "timing_corr": float(np.mean(timing)) if timing else float("nan"),
        "model_share": ms,
        "real_share": rs,
        "log2_ratio": log2,
    }


def noise_ceiling(hourly: np.ndarray) -> dict[str, float]:
    """The scores of the model (mean of the other draws) against each single draw, averaged
    over draws; ``hourly`` is ``[days, draws, 24]``."""
    r = hourly.shape[1]
    if r < 2:
        raise ValueError("the noise ceiling needs at least 2 draws")
    out: dict[str, list[float]] = {"spearman": [], "within_2x_frac": [], "timing_corr": []}
    for j in range(r):
        one = hourly[:, j]
        rest = np.delete(hourly, j, axis=1).mean(axis=1)
        s = score(rest.sum(axis=1), one.sum(axis=1), rest, one)
        for k in out:
            out[k].append(s[k])
    return {k: float(np.nanmean(v)) for k, v in out.items()}


EVENT_CEILING_SIMS = 1000
"""Histories drawn by :func:`event_noise_ceiling`."""


def event_noise_ceiling(
    model_hourly: np.ndarray, days: list[Day], sims: int = EVENT_CEILING_SIMS, seed: int = 0
) -> dict[str, float]:
    """The scores of the model's expected volumes against histories at Aave's granularity,
    averaged over ``sims`` of them; ``model_hourly`` is ``[days, 24]`` (the mean over draws).

    Such a history is what a perfect model's day looks like once whales are real: the set's
    real liquidations summed per borrower and day (:func:`levgym.scenarios.data.aave_borrower_days`,
    ``C`` of them) give the sizes, normalised to mean one; day ``d`` liquidates a Poisson
    number of borrowers with mean ``C * m_d / sum(m)`` (``m``: the model's daily volumes), each
    a size drawn from the set's with replacement and scaled so that the day's expected volume is
    ``m_d``, in an hour drawn from the model's hourly profile of that day. Where the real days'
    largest borrower is 60% of a day's volume (the test days' median), the model's book of
    :data:`AAVE_SLOTS` small slots is not, so :func:`noise_ceiling` sits above this one."""
    if sims < 1:
        raise ValueError(f"sims={sims}; allowed >= 1")
    m_h = np.asarray(model_hourly, dtype=np.float64)
    m = m_h.sum(axis=1)
    b_day, b_usd = data.aave_borrower_days()
    sizes = b_usd[np.isin(b_day, [d.start_s for d in days])]
    out = {"spearman": math.nan, "within_2x_frac": math.nan, "timing_corr": math.nan}
    out |= {"borrower_days": int(sizes.size), "sims": int(sims)}
    if sizes.size == 0 or m.sum() <= 0.0:
        return out
    s = sizes / sizes.mean()
    lam = sizes.size * m / m.sum()
    per = np.divide(m, lam, out=np.zeros_like(m), where=lam > 0)  # USD per unit size
    cum = np.cumsum(m_h / np.maximum(m, 1e-300)[:, None], axis=1)
    rng = np.random.default_rng([seed, 2])
    acc: dict[str, list[float]] = {k: [] for k in ("spearman", "within_2x_frac", "timing_corr")}
    n_days = m.size
    for _ in range(sims):
        n = rng.poisson(lam)
        day = np.repeat(np.arange(n_days), n)
        usd = s[rng.integers(0, s.size, day.size)] * per[day]
        hour = np.minimum((rng.random(day.size)[:, None] > cum[day]).sum(axis=1), HOURS - 1)
        drawn = np.bincount(day * HOURS + hour, weights=usd, minlength=n_days * HOURS)
        drawn = drawn.reshape(n_days, HOURS)
        sc = score(m, drawn.sum(axis=1), m_h, drawn)
        for k in acc:
            acc[k].append(sc[k])
    return out | {k: float(np.nanmean(v)) for k, v in acc.items()}


def account_days(days: list[Day]) -> list[dict[str, float]]:
    """How Aave's real volume of each of ``days`` is made up by borrower account (a diagnostic
    of the history the model is scored against; never an input): the accounts liquidated, the
    largest one's share of the day, and the share repaid by accounts already liquidated on an
    earlier day of the data (from 2020-12-17)."""
    b_day, b_usd, b_acct, _ = data.aave_account_days()
    out = []
    for d in days:
        on = b_day == d.start_s
        usd, acct = b_usd[on], b_acct[on]
        total = float(usd.sum())
        again = np.isin(acct, b_acct[b_day < d.start_s])
        out.append(
            {
                "real_accounts": int(usd.size),
                "real_top_account_share": float(usd[0]) / total if total > 0 else 0.0,
                "real_repeat_share": float(usd[again].sum()) / total if total > 0 else 0.0,
            }
        )
    return out


def largest_account(days: list[Day]) -> dict[str, Any]:
    """The account that repaid the most over ``days``: its address, its share of their real
    volume and the dates it was liquidated on."""
    b_day, b_usd, b_acct, names = data.aave_account_days()
    on = np.isin(b_day, [d.start_s for d in days])
    sums = np.bincount(b_acct[on], weights=b_usd[on], minlength=len(names))
    top = int(np.argmax(sums))
    mine = set(b_day[on & (b_acct == top)].tolist())
    return {
        "address": names[top],
        "volume_share": float(sums[top] / sums.sum()) if sums.sum() > 0 else 0.0,
        "dates": [d.date for d in days if d.start_s in mine],
    }


def with_values(params: EngineParams, values: dict[str, float]) -> EngineParams:
    """``params`` with ``section.key`` values replaced (validated by the dataclasses)."""
    parts = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".")
        by_section.setdefault(section, {})[name] = value
    for section, changes in by_section.items():  # one validation per section
        parts[section] = dataclasses.replace(parts[section], **changes)
    return EngineParams(**parts)


def fit_loss(hourly: np.ndarray, days: list[Day]) -> float:
    """What :func:`fit` minimises: RMS log2 ratio of the daily shares plus (1 - timing corr)."""
    m = hourly.mean(axis=1)
    real_d = np.array([d.real_usd for d in days])
    real_h = np.stack([d.real_hourly_usd for d in days])
    s = score(m.sum(axis=1), real_d, m, real_h)
    timing = 0.0 if math.isnan(s["timing_corr"]) else s["timing_corr"]
    return float(s["rms_log2"] + (1.0 - timing))


def fit(
    base: EngineParams | None = None,
    draws: int = 4,
    positions: int = 1000,
    seed: int = 0,
    grid: dict[str, tuple[float, ...]] | None = None,
    progress: Callable[[str], None] | None = None,
    keepers: str = "share",
    keepers_only: bool = False,
    gas: str = DEFAULT_GAS,
    path: str = DEFAULT_PATH,
    arrival_drawdown: float = DEFAULT_ARRIVAL_DRAWDOWN,
) -> dict[str, Any]:
    """Grid searches of :data:`FIT_STAGES` (or the one ``grid``) minimising :func:`fit_loss` on
    the fit-period days (the test days are never replayed); then the book's size (ETH at
    :data:`BOOK_REF_PRICE_USD`) scaled so that the model's total over the fit days equals the
    real total. ``keepers`` picks the keeper stage (:data:`KEEPER_STAGES`); ``keepers_only``
    runs that stage alone from ``base``'s book."""
    if keepers not in KEEPER_STAGES:
        raise ValueError(f"keepers={keepers!r}; allowed {', '.join(KEEPER_STAGES)}")
    base = base or preset_params("aave_v2_weth")
    keeper_stage = KEEPER_STAGES[keepers]
    if grid:
        stages: tuple[dict[str, tuple[float, ...]], ...] = (grid,)
    elif keepers_only:
        stages = (keeper_stage,)
    else:
        stages = (FIT_STAGES[0], keeper_stage)
    days = [d for d in calibration_days() if not d.test]
    chosen: dict[str, float] = {}
    for n, stage in enumerate(stages):
        loss, values, hourly = _grid_search(
            base, stage, days, draws, positions, seed, progress, n, gas, path, arrival_drawdown
        )
        chosen.update(values)
        base = with_values(base, values)
    model_total = float(hourly.mean(axis=1).sum())
    real_total = float(sum(d.real_usd for d in days))
    scale = real_total / model_total if model_total > 0 else 1.0
    size = base.borrowers.total_collateral_usd * scale
    return {
        "fit_days": len(days),
        "loss": round(loss, 4),
        **chosen,
        "borrowers.total_collateral_usd": float(f"{size:.3g}"),
    }


def tied(values: dict[str, float], base: EngineParams) -> dict[str, float]:
    """``values`` of a grid point with the values tied to them: arrivals follow exits
    (:data:`ARRIVALS_PER_EXIT`), the split routing drops the fixed share, loopers replace passive
    positions."""
    values = dict(values)
    if "borrowers.exit_rate_per_h" in values:
        exit_rate = values["borrowers.exit_rate_per_h"]
        values["borrowers.arrival_rate_per_h"] = ARRIVALS_PER_EXIT * exit_rate
    if any(k.startswith(("market.keeper_aggregator", "market.keeper_cex")) for k in values):
        values["market.keeper_venue_frac"] = 0.0  # the split replaces the fixed share
    if "borrowers.looper_frac" in values:  # loopers replace passive positions
        rest = 1.0 - base.borrowers.defensive_frac - values["borrowers.looper_frac"]
        values["borrowers.passive_frac"] = round(rest, 12)
    return values


def _grid_search(
    base: EngineParams,
    grid: dict[str, tuple[float, ...]],
    days: list[Day],
    draws: int,
    positions: int,
    seed: int,
    progress: Callable[[str], None] | None,
    stage: int,
    gas: str = DEFAULT_GAS,
    path: str = DEFAULT_PATH,
    arrival_drawdown: float = DEFAULT_ARRIVAL_DRAWDOWN,
) -> tuple[float, dict[str, float], np.ndarray]:
    keys = list(grid)
    combos = np.array(np.meshgrid(*[grid[k] for k in keys], indexing="ij"))
    combos = combos.reshape(len(keys), -1).T
    best: tuple[float, dict[str, float], np.ndarray] | None = None
    for i, combo in enumerate(combos):
        values = tied({k: float(v) for k, v in zip(keys, combo, strict=True)}, base)
        params = with_values(base, values)
        hourly = replay(
            params,
            days,
            params.run.warmup_h,
            draws,
            positions,
            seed,
            gas=gas,
            path=path,
            arrival_drawdown=arrival_drawdown,
        )
        loss = fit_loss(hourly, days)
        if progress:
            progress(f"stage {stage + 1} [{i + 1}/{len(combos)}] loss {loss:.3f} {values}")
        if best is None or loss < best[0]:
            best = (loss, values, hourly)
    assert best is not None
    return best


SCORE_KEYS = ("spearman", "within_2x_frac", "rms_log2", "timing_corr")


def _scores(hourly: np.ndarray, days: list[Day], idx: list[int]) -> dict[str, Any]:
    m = hourly[idx].mean(axis=1)
    real_d = np.array([days[i].real_usd for i in idx])
    real_h = np.stack([days[i].real_hourly_usd for i in idx])
    return score(m.sum(axis=1), real_d, m, real_h)


PROTOCOLS = ("split", "leave-one-day-out", "leave-one-month-out")
DEFAULT_PROTOCOL = "split"
"""How :func:`validate` keeps its scores out of sample: ``split``, the preset as fitted on the
fit period, judged on the test period; ``leave-one-day-out`` (``leave-one-month-out``), every
day (month) replayed with the point of :data:`HELD_OUT_GRID` that fits the other days' (months')
calibration days best (:func:`held_out_choices`), so the choice sees post-crash days but never
the day it is scored on."""
HELD_OUT_GRID: dict[str, tuple[float, ...]] = {
    "run.warmup_h": (336.0, 1440.0),
    "replay.arrival_drawdown": (0.0, 4.0, 8.0, 16.0),
}
"""The grid of the held-out protocols: the warm-up (two weeks, or 60 days: the book lives
through the crash before a post-crash day) and the arrivals' response to the trailing drawdown
(:func:`arrival_mult`); the rest is the preset's. (A slower turnover, exits 0.0005/h with
arrivals 9x, never won a held-out choice in exploration: docs/fidelity.md.)"""
HELD_OUT_DRAWS = 4
HELD_OUT_POSITIONS = 500
"""Books and slots of the grid's replays (the chosen points are then replayed at ``validate``'s
own size)."""


def month_of(day: Day) -> str:
    """``YYYY-MM`` of a calibration day."""
    return day.date[:7]


def grid_points(grid: dict[str, tuple[float, ...]], base: EngineParams) -> list[dict[str, float]]:
    """Every point of ``grid`` (``section.key``, ``replay.arrival_drawdown`` or
    ``replay.bridge``), with the values
    tied to it (:func:`tied`)."""
    keys = list(grid)
    combos = np.array(np.meshgrid(*[grid[k] for k in keys], indexing="ij"))
    combos = combos.reshape(len(keys), -1).T
    return [tied({k: float(v) for k, v in zip(keys, c, strict=True)}, base) for c in combos]


def point_replay_args(
    base: EngineParams,
    values: dict[str, float],
    arrival_drawdown: float,
    path: str = DEFAULT_PATH,
    hf_path: float = DEFAULT_HF_PATH,
) -> tuple[EngineParams, float, dict[str, Any]]:
    """(params, warmup_h, replay options) of a grid point: ``replay.*`` keys are the options of
    :func:`replay` (``arrival_drawdown``, ``hf_path``; ``replay.bridge`` 1: ``path="bridge"``,
    0: ``path``, or ``finest`` if that is ``bridge``), the others parameters."""
    v = dict(values)
    opts: dict[str, Any] = {
        "arrival_drawdown": v.pop("replay.arrival_drawdown", arrival_drawdown),
        "hf_path": v.pop("replay.hf_path", hf_path),
        "path": path,
    }
    if "replay.bridge" in v:
        on = v.pop("replay.bridge")
        opts["path"] = "bridge" if on else ("finest" if path == "bridge" else path)
    p = with_values(base, v) if v else base
    return p, p.run.warmup_h, opts


HELD_OUT_GROUPS: dict[str, Callable[[Day], str]] = {
    "leave-one-day-out": lambda d: d.date,
    "leave-one-month-out": month_of,
}


def held_out_choices(
    hourly: list[np.ndarray], days: list[Day], group: Callable[[Day], str] = month_of
) -> tuple[dict[str, int], dict[str, list[float]]]:
    """For each group of ``days`` (``group``: a day's month, or its date): the index ``k`` of the
    grid point whose replays ``hourly[k]`` (``[days, draws, 24]``) have the lowest
    :func:`fit_loss` on the days of the other groups (the group's own days never enter its
    choice), and every point's loss there."""
    choice: dict[str, int] = {}
    losses: dict[str, list[float]] = {}
    for m in sorted({group(d) for d in days}):
        keep = [i for i, d in enumerate(days) if group(d) != m]
        kept = [days[i] for i in keep]
        losses[m] = [fit_loss(h[keep], kept) for h in hourly]
        choice[m] = int(np.argmin(losses[m]))
    return choice, losses


def validate(
    params: EngineParams,
    warmup_h: float,
    draws: int = 8,
    positions: int = AAVE_SLOTS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    gas: str = DEFAULT_GAS,
    path: str = DEFAULT_PATH,
    arrival_drawdown: float = DEFAULT_ARRIVAL_DRAWDOWN,
    protocol: str = DEFAULT_PROTOCOL,
    hf_path: float = DEFAULT_HF_PATH,
    grid: dict[str, tuple[float, ...]] | None = None,
    grid_draws: int = HELD_OUT_DRAWS,
    grid_positions: int = HELD_OUT_POSITIONS,
) -> dict[str, Any]:
    """Replay the calibration days warm and fresh; per-day volumes, scores on the fit and test
    days, the test days' noise ceiling and the hourly profiles of the big test days (``gas``,
    ``path`` and ``arrival_drawdown``: :func:`day_drivers`). ``protocol``
    (:data:`PROTOCOLS`): ``split`` replays every day with ``params`` and ``warmup_h``;
    ``leave-one-day-out`` / ``leave-one-month-out`` first replay every day at every point of
    ``grid`` (:data:`HELD_OUT_GRID`; ``grid_draws`` books of ``grid_positions`` slots), then each
    day (month) at the point chosen on the other days (months) (:func:`held_out_choices`)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}; allowed {', '.join(PROTOCOLS)}")
    days = calibration_days()
    say = progress or (lambda _: None)
    extra: dict[str, Any] = {}
    if protocol == "split":
        say(
            f"replaying {len(days)} days x {draws} books of {positions} slots, "
            f"warm-up {warmup_h:g} h"
        )
        warm = replay(params, days, warmup_h, draws, positions, seed, gas=gas, path=path,
                      arrival_drawdown=arrival_drawdown, hf_path=hf_path)  # fmt: skip
        say("replaying the same days with fresh books (no warm-up)")
        fresh = replay(params, days, 0.0, draws, positions, seed, gas=gas, path=path,
                       arrival_drawdown=arrival_drawdown, hf_path=hf_path)  # fmt: skip
        day_warmup = [float(warmup_h)] * len(days)
        fit_period = f"{PERIOD_START}..{_day_before(TEST_START)}"
    else:
        points = grid_points(grid or HELD_OUT_GRID, params)
        hourly = []
        for k, values in enumerate(points):
            p, w, opts = point_replay_args(params, values, arrival_drawdown, path, hf_path)
            say(
                f"grid [{k + 1}/{len(points)}] {_short(values)}: {len(days)} days x "
                f"{grid_draws} books of {grid_positions} slots"
            )
            hourly.append(replay(p, days, w, grid_draws, grid_positions, seed, gas=gas, **opts))
        group = HELD_OUT_GROUPS[protocol]
        choice, losses = held_out_choices(hourly, days, group)
        all_days = int(np.argmin([fit_loss(h, days) for h in hourly]))
        warm = np.zeros((len(days), draws, HOURS))
        fresh = np.zeros_like(warm)
        day_warmup = [0.0] * len(days)
        for k in sorted(set(choice.values())):
            idx = [i for i, d in enumerate(days) if choice[group(d)] == k]
            p, w, opts = point_replay_args(params, points[k], arrival_drawdown, path, hf_path)
            sub = [days[i] for i in idx]
            say(f"replaying {len(sub)} days with {_short(points[k])}, warm and fresh")
            warm[idx] = replay(p, sub, w, draws, positions, seed, gas=gas, **opts)
            fresh[idx] = replay(p, sub, 0.0, draws, positions, seed, gas=gas, **opts)
            for i in idx:
                day_warmup[i] = float(w)
        extra["held_out"] = [
            {"group": m, **_short(points[k]), "held_out_loss": losses[m][k]}
            for m, k in choice.items()
        ]
        extra["all_days_choice"] = {
            **_short(points[all_days]),
            "all_days_loss": fit_loss(hourly[all_days], days),
        }
        test_i = [i for i, d in enumerate(days) if d.test]
        extra["grid"] = [
            {
                **_short(v),
                "all_days_loss": fit_loss(h, days),
                "test_scores": {
                    n: x for n, x in _scores(h, days, test_i).items() if n in ("days",) + SCORE_KEYS
                },
            }
            for v, h in zip(points, hourly, strict=True)
        ]
        extra["grid_draws"] = int(grid_draws)
        extra["grid_positions"] = int(grid_positions)
        warmup_h = float(point_replay_args(params, points[all_days], arrival_drawdown, path)[1])
        own = "day" if protocol == "leave-one-day-out" else "month"
        fit_period = f"{PERIOD_START}..{PERIOD_END} less the day's own {own}"
    fit_idx = [i for i, d in enumerate(days) if not d.test]
    test_idx = [i for i, d in enumerate(days) if d.test]
    scores = {
        "fit": _scores(warm, days, fit_idx),
        "test": _scores(warm, days, test_idx),
        "fresh_fit": _scores(fresh, days, fit_idx),
        "fresh_test": _scores(fresh, days, test_idx),
    }
    mix = account_days(days)
    rows = []
    for split, idx in (("fit", fit_idx), ("test", test_idx)):
        s = scores[split]
        for j, i in enumerate(idx):
            d = days[i]
            rows.append(
                {
                    "date": d.date,
                    "split": split,
                    "fall_frac": d.fall_frac,
                    "warmup_h": day_warmup[i],
                    "real_usd": d.real_usd,
                    "model_usd": float(warm[i].mean(axis=0).sum()),
                    "model_fresh_usd": float(fresh[i].mean(axis=0).sum()),
                    "real_share": float(s["real_share"][j]),
                    "model_share": float(s["model_share"][j]),
                    "log2_ratio": float(s["log2_ratio"][j]),
                    **mix[i],
                }
            )
    rows.sort(key=lambda r: r["date"])
    big = sorted(test_idx, key=lambda i: -days[i].real_usd)[:BIG_DAYS]
    timing = [
        {
            "date": days[i].date,
            "real_hourly_usd": days[i].real_hourly_usd.tolist(),
            "model_hourly_usd": warm[i].mean(axis=0).tolist(),
            "timing_corr": _pearson(warm[i].mean(axis=0), days[i].real_hourly_usd),
        }
        for i in big
    ]
    return {
        "protocol": protocol,
        "warmup_h": float(warmup_h),
        "draws": int(draws),
        "positions": int(positions),
        "seed": int(seed),
        "replay_gas": gas,
        "replay_path": path,
        "arrival_drawdown": float(arrival_drawdown),
        "hf_path": float(hf_path),
        "fit_period": fit_period,
        "test_period": f"{TEST_START}..{PERIOD_END}",
        "book_collateral_usd": float(params.borrowers.total_collateral_usd),
        **extra,
        "calibration_days": rows,
        "scores": {k: {n: v[n] for n in ("days",) + SCORE_KEYS} for k, v in scores.items()},
        "noise_ceiling": noise_ceiling(warm[test_idx]),
        "noise_ceiling_events": event_noise_ceiling(
            warm[test_idx].mean(axis=1), [days[i] for i in test_idx], seed=seed
        ),
        "big_days": timing,
        "largest_account": largest_account([days[i] for i in test_idx]),
    }


def _short(values: dict[str, float]) -> dict[str, float]:
    """A grid point's own values by their short names (``run.warmup_h`` -> ``warmup_h``), the
    tied ones left out."""
    tied_keys = {
        "borrowers.arrival_rate_per_h",
        "borrowers.passive_frac",
        "market.keeper_venue_frac",
    }
    return {k.split(".", 1)[1]: v for k, v in values.items() if k not in tied_keys}


def _day_before(date: str) -> str:
    return data.utc_text(data.parse_utc(date + "T00:00:00Z") - DAY_S)[:10]
