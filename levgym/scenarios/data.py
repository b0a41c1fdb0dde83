"""Loaders for the market-data slices shipped in ``levgym/data`` (see its README for sources).

Everything is read with :mod:`importlib.resources`, parsed with the standard library into numpy
arrays and cached. Times are returned as unix seconds (UTC, float64).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from functools import cache
from importlib import resources

import numpy as np

HOURLY_CLOSES = "eth_hourly_close_binance_spot_2017-2021.csv"
CRASH_WINDOWS = "eth_hourly_crash_windows_binance_spot_2020-2021.csv"
ETH_10MIN = "eth_usd_10min_crash_days_2020-2021.csv"
DAI_10MIN = "dai_usd_10min_2020-03-12.csv"
GAS_10MIN = "gas_price_10min_crash_days_2020-2021.csv"
RESERVES_10MIN = "uniswap_v2_dai_weth_reserves_10min_2020-2021.csv"

HOUR_S = 3600.0
DAY_S = 86400.0
BAR_10MIN_S = 600.0


def data_text(name: str) -> str:
    """The text of the shipped data file ``name``."""
    return resources.files("levgym").joinpath("data", name).read_text(encoding="utf-8")


@cache
def read_table(name: str) -> dict[str, tuple[str, ...]]:
    """Columns of a shipped CSV as tuples of strings (cached; treat as read-only)."""
    reader = csv.reader(io.StringIO(data_text(name)))
    header = next(reader)
    rows = [row for row in reader if row]
    return {col: tuple(row[i] for row in rows) for i, col in enumerate(header)}


def parse_utc(text: str) -> float:
    """ISO-8601 time (``Z`` or an offset; naive means UTC) as unix seconds."""
    t = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.timestamp()


def utc_text(unix_s: float) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MMZ``."""
    return _dt.datetime.fromtimestamp(unix_s, _dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _floats(values: tuple[str, ...]) -> np.ndarray:
    return np.array([float(v) for v in values], dtype=np.float64)


def _times(values: tuple[str, ...]) -> np.ndarray:
    return np.array([parse_utc(v) for v in values], dtype=np.float64)


def _select(
    table: dict[str, tuple[str, ...]], key_col: str, key: str
) -> dict[str, tuple[str, ...]]:
    keep = [i for i, v in enumerate(table[key_col]) if v == key]
    if not keep:
        allowed = ", ".join(sorted(set(table[key_col])))
        raise ValueError(f"{key_col}={key!r} is not in the shipped data; allowed {allowed}")
    return {c: tuple(vals[i] for i in keep) for c, vals in table.items()}


@cache
def hourly_closes() -> tuple[np.ndarray, np.ndarray]:
    """ETH/USDT hourly closes (Binance spot, 2017-08-17 .. 2021-09-04): (hour_open_unix_s, close)."""
    t = read_table(HOURLY_CLOSES)
    return _floats(t["unix_hour_open_utc"]), _floats(t["close"])


@cache
def hourly_log_returns() -> np.ndarray:
    """Hourly log returns of :func:`hourly_closes`, only between consecutive hours (gaps dropped)."""
    t, c = hourly_closes()
    ok = np.diff(t) == HOUR_S
    return np.diff(np.log(c))[ok]


@cache
def crash_window_hourly(event: str) -> tuple[np.ndarray, np.ndarray]:
    """Hourly closes of a crash window (Binance spot): (close_time_unix_s, close).

    The close time is the bar's open plus one hour."""
    t = _select(read_table(CRASH_WINDOWS), "event", event)
    return _times(t["hour_open_utc"]) + HOUR_S, _floats(t["close"])


@cache
def eth_10min(day: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ETH/USD 10-minute bars of a stress day (``MM-DD-YYYY``): (bar_start_unix_s, open, close)."""
    t = _select(read_table(ETH_10MIN), "scenario", day)
    return _times(t["time_period_start_utc"]), _floats(t["open"]), _floats(t["close"])


@cache
def dai_10min() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DAI/USD 10-minute bars of 2020-03-12: (bar_start_unix_s, open, high, close)."""
    t = read_table(DAI_10MIN)
    return (
        _times(t["time_period_start_utc"]),
        _floats(t["open"]),
        _floats(t["high"]),
        _floats(t["close"]),
    )


@cache
def gas_10min(day: str) -> tuple[np.ndarray, np.ndarray]:
    """Gas price 90th percentile per 10-minute bucket of a stress day: (bucket_start_unix_s, gwei).

    The bucket times are the real dates (the file labels 2020-02-22 data as ``02-22-2021``)."""
    t = _select(read_table(GAS_10MIN), "scenario", day)
    return _times(t["bucket_start_utc"]), _floats(t["p90_gwei"])


@cache
def reserves_10min(day: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniswap v2 DAI/WETH reserves every 10 minutes: (time_unix_s, reserve_DAI, reserve_WETH)."""
    t = _select(read_table(RESERVES_10MIN), "scenario", day)
    return _times(t["inferred_time_utc"]), _floats(t["reserve_DAI"]), _floats(t["reserve_WETH"])


def stress_days() -> tuple[str, ...]:
    """Labels (``MM-DD-YYYY``) of the days in the 10-minute ETH file."""
    return tuple(sorted(set(read_table(ETH_10MIN)["scenario"])))


def reserve_days() -> tuple[str, ...]:
    """Labels of the days in the reserves file."""
    return tuple(sorted(set(read_table(RESERVES_10MIN)["scenario"])))


AAVE_LIQUIDATIONS = "aave_v2_weth_stable_liquidations_2020-12_2021-06.csv"


@cache
def aave_liquidations() -> tuple[np.ndarray, np.ndarray]:
    """Aave v2 liquidations of WETH collateral against stablecoin debt, 2020-12-17 .. 2021-06-30:
    (unix_s, debt repaid in stablecoin units, taken as USD), sorted by time."""
    t = read_table(AAVE_LIQUIDATIONS)
    ts, v = _floats(t["unix_ts"]), _floats(t["debt_repaid"])
    order = np.argsort(ts, kind="stable")
    return ts[order], v[order]


@cache
def aave_account_days() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The same liquidations summed per UTC day and borrower account: (the day's 00:00 UTC in
    unix s, debt repaid by that account's liquidations that day, the account's index into the
    fourth element, the accounts' addresses in order of first liquidation), sorted by day, then by
    amount (largest first). One row is what a day's volume is made of at Aave's granularity: on
    the test days of ``levgym validate`` the largest account repaid 60% of the day's debt (the
    median day), and one account, liquidated on 11 days, repaid 22% of the test period's."""
    t = read_table(AAVE_LIQUIDATIONS)
    day = np.floor(_floats(t["unix_ts"]) / DAY_S) * DAY_S
    totals: dict[tuple[float, str], float] = {}
    first: dict[str, float] = {}
    for d, who, ts, v in zip(
        day, t["borrower"], _floats(t["unix_ts"]), _floats(t["debt_repaid"]), strict=True
    ):
        totals[(float(d), who)] = totals.get((float(d), who), 0.0) + float(v)
        first[who] = min(first.get(who, ts), ts)
    accounts = tuple(sorted(first, key=lambda who: (first[who], who)))
    index = {who: i for i, who in enumerate(accounts)}
    keys = sorted(totals, key=lambda k: (k[0], -totals[k]))
    return (
        np.array([k[0] for k in keys], dtype=np.float64),
        np.array([totals[k] for k in keys], dtype=np.float64),
        np.array([index[k[1]] for k in keys], dtype=np.int64),
        accounts,
    )


def aave_borrower_days() -> tuple[np.ndarray, np.ndarray]:
    """The first two elements of :func:`aave_account_days`: (day, debt repaid) per day and
    borrower account."""
    day, usd, _, _ = aave_account_days()
    return day, usd
