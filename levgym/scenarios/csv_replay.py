"""Replay a price path a user brings as CSV (``levgym simulate --price-csv FILE``).

Columns: ``--time-column`` / ``--price-column`` name them; without the flags the usual names are
detected, case-insensitively (time: ``time``, ``timestamp``, ``date``, ``datetime``, ``unix``,
``timestamp(ms)``, ...; price: ``price``, ``close``, ``*_price``, ``usd_price``, ...) and the CLI
says which were used. A file with an ``event`` / ``scenario`` / ``symbol`` column holding several
series is read for the first one (``--csv-group`` picks another). Times are ISO-8601
(``2020-03-12T00:00:00Z``; no offset means UTC) or unix epochs whose unit (s, ms, us, ns) is
detected from the magnitude of the first time. A gap longer than :data:`MAX_GAP_RATIO` times the
median row spacing is an error unless ``allow_gaps``.

The path is resampled onto the substep grid that starts at the first row: row ``k`` of the
drivers is the price ``k * substep_h * speed`` hours after it, by linear interpolation in log
price, so every row of the file that falls on the grid is reproduced exactly and the minimum over
the first price is kept (exactly on the grid, within the interpolation between rows otherwise).
Every env sees the same path (per-env jitter optional).

Each problem is one ``ValueError`` line naming the file, the row (by line number) and what is
allowed: a missing file, a missing column (with the columns found), a row wider than the header
(an unquoted thousands separator), a non-numeric or non-positive price, an unparsable, unsorted
or duplicate time, a long gap, too few rows, or a file that covers fewer substeps than the run
needs (unless ``scenario.hold_last=true``, which holds the last price).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import EngineParams, closest_hint
from ..io import csv_reader
from .base import Scenario, ScenarioContext, check_knob
from .data import parse_utc
from .overlays import compose
from .processes import DRAWDOWN_WINDOW_H, drawdown_mult, gbm, resample_log

MS_THRESHOLD = 1e11

CSV_KNOBS: dict[str, Any] = {
    "start_price_usd": 0.0,
    "speed": 1.0,
    "gas_gwei": 30.0,
    "jitter_vol_annual": 0.0,
    "hold_last": False,
}


def _unused_build(knobs: dict[str, Any], ctx: ScenarioContext) -> Drivers:  # pragma: no cover
    raise ValueError("the csv scenario needs a file: use drivers_from_csv")


# Not registered (it needs a file); used for its knob defaults, validation and seeding.
CSV_SCENARIO = Scenario(
    name="csv",
    kind="replay",
    description="A price path from a CSV file (--price-csv FILE)",
    source="user file",
    build=_unused_build,
    knobs=CSV_KNOBS,
)


TIME_NAMES = (
    "time",
    "timestamp",
    "datetime",
    "date",
    "unix",
    "unix_time",
    "unix_timestamp",
    "timestamp(ms)",
    "timestamp_ms",
    "time_ms",
    "epoch",
    "ts",
    "open_time",
)
"""Time column names tried in this order when ``--time-column`` is absent (case-insensitive); then
the first column whose name contains ``time``, ``date``, ``unix`` or ``epoch`` or ends in ``_utc``."""

PRICE_NAMES = (
    "price",
    "close",
    "usd_price",
    "price_usd",
    "close_price",
    "adj_close",
    "adj close",
    "last",
    "mid",
    "vwap",
)
"""Price column names tried in this order when ``--price-column`` is absent (case-insensitive);
then the first column named ``*_price``, ``price_*`` or containing ``price``, then ``close``, then a
gas price (``*gwei*``)."""

GROUP_NAMES = ("event", "scenario", "window", "symbol", "pair", "ticker", "group")
"""Columns that split a file into several series (the crash-window files in ``levgym/data``)."""

MAX_GAP_RATIO = 24.0
"""A gap longer than this many times the file's median row spacing (a day in an hourly file) is an
error unless gaps are allowed (``--allow-gaps``): interpolating across it would invent a path."""

# Epoch units by magnitude of the first time: seconds reach 1e11 only in the year 5138.
EPOCH_UNITS = ((1e11, "s", 1.0), (1e14, "ms", 1e3), (1e17, "us", 1e6), (math.inf, "ns", 1e9))

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


@dataclass(frozen=True)
class PriceTable:
    """A validated price path read from a CSV, with what was detected in the file."""

    times_s: np.ndarray
    """Unix seconds, strictly increasing."""
    prices: np.ndarray
    """Positive finite prices."""
    time_column: str
    price_column: str
    time_unit: str
    """``iso``, or the epoch unit detected by magnitude: ``s``, ``ms``, ``us`` or ``ns``."""
    group: tuple[str, str, int] | None = None
    """(column, value used, number of values) when the file holds several series."""

    def describe(self, path: str | Path) -> str:
        """One line saying which columns (and which series) were used."""
        unit = "ISO-8601" if self.time_unit == "iso" else f"unix {self.time_unit}"
        text = (
            f"--price-csv {str(path)!r}: time column {self.time_column!r} ({unit}), price column "
            f"{self.price_column!r}, {len(self.prices)} rows"
        )
        if self.group is not None:
            col, value, n = self.group
            text += f", {col}={value!r} (first of {n}; --csv-group to choose)"
        return text


def _pick(header: list[str], names: tuple[str, ...], patterns: list) -> str | None:
    lower = [h.lower() for h in header]
    for name in names:
        if name in lower:
            return header[lower.index(name)]
    for test in patterns:
        for h, low in zip(header, lower, strict=True):
            if test(low):
                return h
    return None


def detect_columns(header: list[str]) -> tuple[str | None, str | None]:
    """(time column, price column) found by name in ``header`` (None where nothing fits)."""
    time_col = _pick(
        header,
        TIME_NAMES,
        [
            lambda h: any(w in h for w in ("time", "date", "unix", "epoch")) or h.endswith("_utc"),
        ],
    )
    rest = [h for h in header if h != time_col]
    price_col = _pick(
        rest,
        PRICE_NAMES,
        [
            lambda h: h.endswith("_price") or h.startswith("price_") or "price" in h,
            lambda h: "close" in h,
            lambda h: "gwei" in h,
        ],
    )
    return time_col, price_col


def _column(
    header: list[str], given: str | None, detected: str | None, flag: str, label: str
) -> str:
    found = ", ".join(repr(h) for h in header)
    if given is not None:
        if given in header:
            return given
        lower = [h.lower() for h in header]
        if given.lower() in lower:  # case-insensitive, as pandas-style users expect
            return header[lower.index(given.lower())]
        raise ValueError(
            f"{label}: no column {given!r} ({flag}){closest_hint(given, header)}; columns found: {found}"
        )
    if detected is None:
        kind = "time" if flag == "--time-column" else "price"
        raise ValueError(
            f"{label}: no {kind} column recognised among {found}; allowed {flag} NAME to name it"
        )
    return detected


def _price(raw: str) -> float:
    if _THOUSANDS.match(raw):  # a quoted "3,375.07"
        raw = raw.replace(",", "")
    return float(raw)


def read_price_table(
    path: str | Path,
    time_column: str | None = None,
    price_column: str | None = None,
    allow_gaps: bool = False,
    group: str | None = None,
) -> PriceTable:
    """The validated price path of a CSV file; raises one-line ``ValueError``s.

    Columns not named are detected (:data:`TIME_NAMES`, :data:`PRICE_NAMES`); a file with a
    :data:`GROUP_NAMES` column holding several values is read for one of them (``group``, else the
    first in the file)."""
    label = f"--price-csv {str(path)!r}"
    reader = csv_reader(path, label)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ValueError(
            f"{label}: empty file; allowed a header row naming a time and a price column"
        )
    header = [h.strip() for h in header]
    auto_t, auto_p = detect_columns(header)
    tcol = _column(header, time_column, auto_t, "--time-column", label)
    pcol = _column(header, price_column, auto_p, "--price-column", label)
    it, ip = header.index(tcol), header.index(pcol)
    lower = [h.lower() for h in header]
    gcol = next((header[lower.index(g)] for g in GROUP_NAMES if g in lower), None)
    ig = header.index(gcol) if gcol is not None else None
    rows: list[tuple[int, list[str]]] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) > len(header):
            raise ValueError(
                f"{label}: line {line} has {len(row)} fields but the header has {len(header)}; "
                "allowed as many as the header (an unquoted thousands separator such as 3,375.07? "
                "quote the value or drop the comma)"
            )
        if max(it, ip, ig or 0) >= len(row):
            raise ValueError(
                f"{label}: line {line} has {len(row)} fields; the header has {len(header)}"
            )
        rows.append((line, row))
    group_info = None
    if ig is not None:
        values = list(dict.fromkeys(row[ig].strip() for _, row in rows))
        if group is not None:
            if group not in values:
                shown = ", ".join(repr(v) for v in values[:20])
                raise ValueError(
                    f"{label}: --csv-group {group!r} is not a value of column {gcol!r}"
                    f"{closest_hint(group, values)}; allowed {shown}"
                )
            chosen = group
        else:
            chosen = values[0] if values else ""
        if len(values) > 1 or group is not None:
            group_info = (gcol, chosen, len(values))
            rows = [(line, row) for line, row in rows if row[ig].strip() == chosen]
    elif group is not None:
        raise ValueError(
            f"{label}: --csv-group {group!r} given but the file has no group column; allowed "
            f"with a column named {', '.join(GROUP_NAMES)}"
        )
    times: list[float] = []
    prices: list[float] = []
    lines: list[int] = []
    numeric_times: bool | None = None
    prev_raw = ""
    for line, row in rows:
        raw_t, raw_p = row[it].strip(), row[ip].strip()
        try:
            price = _price(raw_p)
        except ValueError:
            raise ValueError(f"{label}: line {line}: price {raw_p!r} is not a number") from None
        if not math.isfinite(price) or price <= 0:
            raise ValueError(
                f"{label}: line {line}: price {raw_p} is not allowed; prices must be finite and > 0"
            )
        try:
            t = float(raw_t)
            is_num = True
        except ValueError:
            is_num = False
        if numeric_times is None:
            numeric_times = is_num
        if is_num != numeric_times:
            kind = "unix times" if numeric_times else "ISO-8601 times"
            raise ValueError(
                f"{label}: line {line}: time {raw_t!r} does not match the earlier rows ({kind})"
            )
        if is_num:
            if not math.isfinite(t):
                raise ValueError(f"{label}: line {line}: time {raw_t!r} is not a finite number")
        else:
            try:
                t = parse_utc(raw_t)
            except ValueError:
                raise ValueError(
                    f"{label}: line {line}: time {raw_t!r} is neither ISO-8601 (2020-03-12T00:00:00Z) "
                    "nor a unix time"
                ) from None
        if times and t <= times[-1]:
            what = "repeats" if t == times[-1] else "is before"
            raise ValueError(
                f"{label}: line {line}: time {raw_t!r} {what} the previous row's {prev_raw!r}; "
                "times must be strictly increasing (sorted, no duplicates)"
            )
        times.append(t)
        prices.append(price)
        lines.append(line)
        prev_raw = raw_t
    if len(times) < 2:
        raise ValueError(f"{label}: {len(times)} data row(s); at least 2 are needed")
    tt = np.array(times)
    unit = "iso"
    if numeric_times:
        unit, per_s = next((u, d) for top, u, d in EPOCH_UNITS if abs(tt[0]) < top)
        tt = tt / per_s
    gaps = np.diff(tt)
    median = float(np.median(gaps))
    k = int(np.argmax(gaps))
    if not allow_gaps and gaps[k] > MAX_GAP_RATIO * median:
        raise ValueError(
            f"{label}: line {lines[k + 1]}: a gap of {_span(gaps[k])} after {_when(tt[k])}, "
            f"{gaps[k] / median:.0f} x the file's median spacing of {_span(median)}; allowed up to "
            f"{MAX_GAP_RATIO:g} x (--allow-gaps interpolates across it)"
        )
    return PriceTable(tt, np.array(prices), tcol, pcol, unit, group_info)


def _span(seconds: float) -> str:
    """A duration in the unit that reads best."""
    for unit, size, least in (("days", 86400.0, 2.0), ("h", 3600.0, 1.0), ("min", 60.0, 1.0)):
        if seconds >= least * size:
            return f"{seconds / size:.4g} {unit}"
    return f"{seconds:g} s"


def read_price_csv(
    path: str | Path,
    time_column: str | None = None,
    price_column: str | None = None,
    allow_gaps: bool = False,
    group: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unix_s, price) from the file, validated; see :func:`read_price_table`."""
    table = read_price_table(path, time_column, price_column, allow_gaps, group)
    return table.times_s, table.prices


def drivers_from_csv(
    path: str | Path,
    num_envs: int,
    num_substeps: int,
    params: EngineParams,
    time_column: str | None = None,
    price_column: str | None = None,
    overrides: dict[str, str] | None = None,
    seed: int = 0,
    allow_gaps: bool = False,
    group: str | None = None,
    table: PriceTable | None = None,
) -> Drivers:
    """Drivers ``[num_substeps, num_envs]`` replaying the CSV's price path.

    Knobs (``--set scenario.KEY=VALUE``): ``start_price_usd`` (0 = as in the file, else the
    path is rescaled to start there), ``speed`` (file hours per simulated hour), ``gas_gwei``
    (flat gas), ``jitter_vol_annual`` (per-env multiplicative GBM noise, 0 = none),
    ``hold_last`` (hold the last price when the file is shorter than the run).
    """
    knobs = CSV_SCENARIO.resolve_knobs(overrides)
    check_knob("csv", "speed", knobs["speed"], 0.01, 100.0)
    check_knob("csv", "start_price_usd", knobs["start_price_usd"], 0.0, 1e9)
    check_knob("csv", "gas_gwei", knobs["gas_gwei"], 0.0, 20000.0)
    check_knob("csv", "jitter_vol_annual", knobs["jitter_vol_annual"], 0.0, 5.0)
    if table is None:
        table = read_price_table(path, time_column, price_column, allow_gaps, group)
    t, p = table.times_s, table.prices
    substep_h = params.run.substep_h
    step_s = substep_h * 3600.0 * knobs["speed"]
    covered = int(math.floor((t[-1] - t[0]) / step_s + 1e-9)) + 1
    if covered < num_substeps and not knobs["hold_last"]:
        raise ValueError(coverage_message(path, t, covered, num_substeps, params, knobs["speed"]))
    grid = t[0] + np.arange(num_substeps) * step_s
    path_usd = resample_log(t, p, grid)
    if knobs["start_price_usd"] > 0:
        path_usd = path_usd * (knobs["start_price_usd"] / path_usd[0])
    prices = np.repeat(path_usd[:, None], num_envs, axis=1)
    rng = np.random.default_rng([int(seed), 7])
    ctx = ScenarioContext(num_envs, num_substeps, substep_h, params, rng)
    if knobs["jitter_vol_annual"] > 0:
        prices = prices * gbm(
            rng, num_substeps, num_envs, substep_h, 1.0, knobs["jitter_vol_annual"]
        )
    drivers = compose(ctx, prices, gas_gwei=knobs["gas_gwei"])
    k = params.run.arrival_drawdown
    if k > 0.0:  # new borrowing dries up under the path's own trailing peak
        window = int(round(DRAWDOWN_WINDOW_H / substep_h))
        drivers = drivers.replace(
            arrival_mult=drivers.arrival_mult * drawdown_mult(prices, window, k)
        )
    return drivers


def coverage_message(
    path: str | Path, t: np.ndarray, covered: int, needed: int, params: EngineParams, speed: float
) -> str:
    """Why a file is too short for the run, and the settings that would fit it."""
    per = params.run.substeps_per_step
    substep_h = params.run.substep_h
    span_s = float(t[-1] - t[0])
    spacing_s = float(np.median(np.diff(t)))
    head = (
        f"--price-csv {str(path)!r} spans {_span(span_s)} ({_when(t[0])} to {_when(t[-1])}, rows "
        f"{_span(spacing_s)} apart): {covered} substep(s) of {_span(substep_h * 3600.0 * speed)}; "
        f"the run needs {needed} ({needed // per} step(s) of {per})"
    )
    if covered >= per:
        return (
            f"{head}; allowed --steps {covered // per} or fewer, or --set scenario.hold_last=true"
        )
    # shorter than one step: only a finer time grid fits it (one substep per row, one step)
    rows = int(math.floor(span_s / spacing_s + 1e-9)) + 1
    sub_h = _round_down(spacing_s / 3600.0)  # printed short, and never longer than the spacing
    return (
        f"{head}; the file is shorter than one step ({_span(per * substep_h * 3600.0 * speed)}); "
        f"allowed a finer grid, one substep per row: --steps 1 --set run.substep_h={sub_h:g} "
        f"--set run.substeps_per_step={rows}, or --set scenario.hold_last=true"
    )


def _round_down(x: float, digits: int = 6) -> float:
    """``x`` rounded down to ``digits`` significant digits."""
    step = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.floor(x / step) * step


def _when(unix_s: float) -> str:
    """UTC time to the second."""
    return datetime.fromtimestamp(float(unix_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_knobs(overrides: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """``--set scenario.*`` for a CSV over a named scenario: (the CSV's knobs, the scenario's).
    A key the CSV knows goes to the CSV; every other key to the scenario."""
    overrides = dict(overrides or {})
    own = {k: v for k, v in overrides.items() if k in CSV_KNOBS}
    return own, {k: v for k, v in overrides.items() if k not in CSV_KNOBS}


def over_scenario(base: Drivers, replay: Drivers) -> Drivers:
    """``base`` (a named scenario's drivers) with its fundamental price path replaced by the CSV's:
    the scenario's liquidity, arbitrage, gas, oracle and debt-price paths are kept; its arrival
    multiplier times the CSV's (``run.arrival_drawdown``'s response to the replayed path)."""
    if base.fundamental_usd.shape != replay.fundamental_usd.shape:
        raise ValueError(
            f"the scenario's drivers have shape {base.fundamental_usd.shape} and the CSV's "
            f"{replay.fundamental_usd.shape}; allowed equal shapes"
        )
    return base.replace(
        fundamental_usd=replay.fundamental_usd,
        arrival_mult=base.arrival_mult * replay.arrival_mult,
    )
