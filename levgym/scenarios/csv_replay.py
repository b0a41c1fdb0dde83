"""Replay a price path a user brings as CSV (``levgym simulate --price-csv FILE``).

The file needs a time column and a price column (names configurable). Times are ISO-8601
(``2020-03-12T00:00:00Z``; no offset means UTC) or unix seconds (values above 1e11 are taken as
milliseconds). The path is resampled onto the substep grid that starts at the first row: row
``k`` of the drivers is the price ``k * substep_h * speed`` hours after it, by linear
interpolation in log price, so every row of the file that falls on the grid is reproduced
exactly and the minimum over the first price is kept (exactly on the grid, within the
interpolation between rows otherwise). Every env sees the same path (per-env jitter optional).

Each problem is one ``ValueError`` line naming the file, the row (by line number) and what is
allowed: a missing file, a missing column (with the columns found), a non-numeric or
non-positive price, an unparsable, unsorted or duplicate time, too few rows, or a file that
covers fewer substeps than the run needs (unless ``scenario.hold_last=true``, which holds the
last price).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.drivers import Drivers
from ..engine.params import EngineParams
from .base import Scenario, ScenarioContext, check_knob
from .data import parse_utc, utc_text
from .overlays import compose
from .processes import gbm, resample_log

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


def read_price_csv(
    path: str | Path, time_column: str = "time", price_column: str = "price"
) -> tuple[np.ndarray, np.ndarray]:
    """(unix_s, price) from the file, validated; raises one-line ``ValueError``s."""
    p = Path(path)
    label = f"--price-csv {str(path)!r}"
    if not p.is_file():
        raise ValueError(f"{label}: no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{label}: not a UTF-8 text file") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise ValueError(
            f"{label}: empty file; allowed a header row with {time_column!r} and {price_column!r}"
        )
    header = [h.strip() for h in header]
    for col, flag in ((time_column, "--time-column"), (price_column, "--price-column")):
        if col not in header:
            found = ", ".join(repr(h) for h in header)
            raise ValueError(f"{label}: no column {col!r} ({flag}); columns found: {found}")
    it, ip = header.index(time_column), header.index(price_column)
    times: list[float] = []
    prices: list[float] = []
    numeric_times: bool | None = None
    prev_raw = ""
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if max(it, ip) >= len(row):
            raise ValueError(
                f"{label}: line {line} has {len(row)} fields; the header has {len(header)}"
            )
        raw_t, raw_p = row[it].strip(), row[ip].strip()
        try:
            price = float(raw_p)
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
            kind = "unix seconds" if numeric_times else "ISO-8601 times"
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
                    "nor unix seconds"
                ) from None
        if times and t <= times[-1]:
            what = "repeats" if t == times[-1] else "is before"
            raise ValueError(
                f"{label}: line {line}: time {raw_t!r} {what} the previous row's {prev_raw!r}; "
                "times must be strictly increasing (sorted, no duplicates)"
            )
        times.append(t)
        prices.append(price)
        prev_raw = raw_t
    if len(times) < 2:
        raise ValueError(f"{label}: {len(times)} data row(s); at least 2 are needed")
    tt = np.array(times)
    if numeric_times and tt[0] > MS_THRESHOLD:
        tt = tt / 1000.0
    return tt, np.array(prices)


def drivers_from_csv(
    path: str | Path,
    num_envs: int,
    num_substeps: int,
    params: EngineParams,
    time_column: str = "time",
    price_column: str = "price",
    overrides: dict[str, str] | None = None,
    seed: int = 0,
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
    t, p = read_price_csv(path, time_column, price_column)
    substep_h = params.run.substep_h
    step_s = substep_h * 3600.0 * knobs["speed"]
    covered = int(math.floor((t[-1] - t[0]) / step_s + 1e-9)) + 1
    if covered < num_substeps and not knobs["hold_last"]:
        per = params.run.substeps_per_step
        raise ValueError(
            f"--price-csv {str(path)!r} covers {covered} substeps ({(t[-1] - t[0]) / 3600.0:g} h from "
            f"{utc_text(t[0])} to {utc_text(t[-1])}, {substep_h * 60.0:g} min per substep); the run needs "
            f"{num_substeps}; use --steps {max(covered // per, 0)} or fewer, or --set scenario.hold_last=true"
        )
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
    return compose(ctx, prices, gas_gwei=knobs["gas_gwei"])
