"""Correlated multi-asset price paths for the cross-margin engine (issue 15).

What it builds, all vectorised in numpy over E paths:

- a **fitted process** over the assets :data:`SYMBOLS` (WETH, WBTC, stETH, DAI, USDC, USDT),
  fitted on the 2021 hourly prices shipped in ``levgym/data`` (:func:`fit`, parameters in
  :data:`PARAMS_FILE`, rerun with ``python -m levgym.scenarios.multiasset --fit``);
- **overlays**: an LST depeg (:class:`LSTDepeg`) and a stablecoin depeg on either side of 1
  (:class:`StablecoinDepeg`);
- a **multi-column price CSV** (``timestamp,WETH,WBTC,...``; :func:`read_multiasset_csv`) whose
  assets are replayed while the assets missing from the file are simulated conditionally on them
  (:func:`replay`), so a replay never invents an unrelated crash.

The model (ASSUMPTIONS.md, "Multi-asset scenarios (issue 15)", gives the fitted numbers).
It runs on six *factors* (:data:`FACTORS`), log prices ``s``:

- ``WETH``, ``WBTC``: random walks in log price (drift ``-0.5 * variance``, a martingale in price
  between jumps) plus a **common jump**: in a step a jump happens with probability
  ``1 - exp(-jump_rate_per_h * dt_h)`` and then moves both log prices by one draw of a bivariate
  normal (the fitted jump mean and covariance);
- ``stETH_per_ETH`` (the stETH/ETH ratio), ``DAI``, ``USDC``, ``USDT``: Ornstein-Uhlenbeck in log
  price, ``s' = mean + exp(-kappa * dt_h) * (s - mean) + noise``;
- the noises of all six are jointly Gaussian with the fitted hourly covariance (converted exactly
  to another step ``dt_h``, :meth:`MultiAssetParams.step_cov`);
- prices: ``WETH = exp(s_WETH)``, ``WBTC = exp(s_WBTC)``, ``stETH = exp(s_WETH + s_ratio)``,
  each stablecoin ``exp(s)``: stETH is ETH times the ratio.

Fit (:func:`fit`) on the hourly slice :data:`SLICE_FILE` (each asset's observation nearest each
UTC hour within 30 minutes, :func:`build_slice`), over consecutive hours only:

- jumps: for WETH and WBTC separately, the 4-sigma fixed point of the calibration module
  (:func:`levgym.scenarios.calibration.jump_threshold`); an hour is a common-jump hour when
  either asset's return is beyond it; jump rate = jump hours / hours with both returns; jump size
  = the two returns of a jump hour (mean and covariance over the jump hours);
- mean reversion: per factor, least squares of ``s[t+1]`` on ``s[t]`` (``phi``, ``mean``,
  ``kappa = -log(phi)``), then the same 4-sigma fixed point on the residuals, whose outliers
  (aggregator glitches such as USDT at 1.08 on 2021-05-19, stETH at 0.869 ETH on 2021-04-23) are
  dropped and the regression is refitted; the outliers are not simulated (depegs are overlays);
- covariance: the sample covariance of the six hourly noises (returns for WETH and WBTC,
  regression residuals for the others) over the hours where all six are present, outside jump
  hours and outliers.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from ..engine.params import closest_hint
from ..io import csv_reader
from .calibration import jump_threshold
from .data import data_text, parse_utc

SYMBOLS: tuple[str, ...] = ("WETH", "WBTC", "stETH", "DAI", "USDC", "USDT")
"""Assets of the fitted process, in the order of the price axis ``K``."""

FACTORS: tuple[str, ...] = ("WETH", "WBTC", "stETH_per_ETH", "DAI", "USDC", "USDT")
"""The process's state: log prices of these (the stETH/ETH ratio instead of stETH)."""

VOLATILE: tuple[str, ...] = ("WETH", "WBTC")
"""Random-walk factors that share the common jump."""

STABLECOINS: tuple[str, ...] = ("DAI", "USDC", "USDT")
LSTS: tuple[str, ...] = ("stETH",)

SLICE_FILE = "multiasset_hourly_2021.csv"
PARAMS_FILE = "multiasset_params_2021.csv"
SOURCE_FILES = {
    "WETH": "prices/WETH_usd_hourly_2021.csv",
    "WBTC": "prices/WBTC_usd_hourly_2021.csv",
    "DAI": "prices/DAI_usd_hourly_2021.csv",
    "USDC": "prices/USDC_usd_hourly_2021.csv",
    "USDT": "prices/USDT_usd_hourly_2021.csv",
    "stETH_per_ETH": "prices/steth_per_eth_hourly_2021.csv",
}
JUMP_K_SIGMA = 4.0
ALIGN_HALF_WINDOW_S = 1800.0
HOUR_S = 3600.0
YEAR_2021_START_S = 1609459200.0  # 2021-01-01T00:00:00Z
HOURS_2021 = 8760
MAX_GAP_RATIO = 24.0
"""A CSV gap longer than this many times its median row spacing is an error unless allowed."""

_VOL = np.array([f in VOLATILE for f in FACTORS])
# log price of each symbol = _MIX @ factor log prices
_MIX = np.zeros((len(SYMBOLS), len(FACTORS)))
for _k, _sym in enumerate(SYMBOLS):
    _MIX[_k, FACTORS.index("WETH" if _sym == "stETH" else _sym)] = 1.0
_MIX[SYMBOLS.index("stETH"), FACTORS.index("stETH_per_ETH")] = 1.0


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L @ L.T == cov`` (symmetric square root, negative eigenvalues of
    round-off clipped to 0); works for singular ``cov``."""
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True, eq=False)
class MultiAssetParams:
    """Parameters of the fitted process (read with :func:`fitted_params`, made by :func:`fit`).

    Arrays are read-only, indexed by :data:`FACTORS` (``[F]``, ``[F, F]``) or by
    :data:`VOLATILE` (jumps) or :data:`SYMBOLS` (``start_usd``)."""

    kappa_per_h: np.ndarray
    """Mean-reversion speed per hour, ``[F]`` (0 for the random walks WETH, WBTC)."""
    mean_log: np.ndarray
    """Long-run mean of the log price, ``[F]`` (0 and unused for WETH, WBTC)."""
    cov_per_h: np.ndarray
    """Covariance of the hourly noises (log units), ``[F, F]``."""
    jump_rate_per_h: float
    """Common jumps of WETH and WBTC per hour."""
    jump_mean_log: np.ndarray
    """Mean log move of a common jump, ``[2]`` (WETH, WBTC)."""
    jump_cov_log: np.ndarray
    """Covariance of a common jump's log moves, ``[2, 2]``."""
    start_usd: np.ndarray
    """Default start prices, ``[K]`` (the last hour of the fit data)."""
    info: dict[str, float] = field(default_factory=dict, compare=False)
    """Counts and reported statistics of the fit (not used to simulate)."""

    def __post_init__(self) -> None:
        f = len(FACTORS)
        for name, shape in (
            ("kappa_per_h", (f,)),
            ("mean_log", (f,)),
            ("cov_per_h", (f, f)),
            ("jump_mean_log", (len(VOLATILE),)),
            ("jump_cov_log", (len(VOLATILE),) * 2),
            ("start_usd", (len(SYMBOLS),)),
        ):
            value = _frozen(getattr(self, name))
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(
                    f"MultiAssetParams.{name} has shape {value.shape}; allowed finite {shape}"
                )
            object.__setattr__(self, name, value)
        if np.any(self.kappa_per_h < 0) or np.any(self.kappa_per_h[_VOL] != 0):
            raise ValueError(
                "MultiAssetParams.kappa_per_h is out of range; allowed >= 0, and 0 for WETH, WBTC"
            )
        if not (0.0 <= self.jump_rate_per_h <= 1.0):
            raise ValueError(
                f"MultiAssetParams.jump_rate_per_h={self.jump_rate_per_h:g} is out of range; "
                "allowed [0, 1]"
            )
        if np.any(self.start_usd <= 0):
            raise ValueError("MultiAssetParams.start_usd has a price <= 0; allowed > 0")

    def phi(self, dt_h: float) -> np.ndarray:
        """Autoregression of each factor over one step, ``exp(-kappa * dt_h)``, ``[F]``."""
        return np.exp(-self.kappa_per_h * dt_h)

    def step_cov(self, dt_h: float) -> np.ndarray:
        """Covariance of one step's noises, ``[F, F]``, exact for the OU / random-walk system.

        The hourly covariance ``C`` is that of ``int_0^1 exp(-K u) dW``; the instantaneous
        covariance is ``Q_ij = C_ij * s / (1 - exp(-s))`` with ``s = kappa_i + kappa_j`` (1 at
        ``s = 0``), and a step of ``dt_h`` has ``Q_ij * (1 - exp(-s dt_h)) / s``. At ``dt_h = 1``
        this is ``C`` itself."""
        s = self.kappa_per_h[:, None] + self.kappa_per_h[None, :]
        g1 = np.where(s > 0, -np.expm1(-s) / np.where(s > 0, s, 1.0), 1.0)
        gdt = np.where(s > 0, -np.expm1(-s * dt_h) / np.where(s > 0, s, 1.0), dt_h)
        cov = self.cov_per_h / g1 * gdt
        root = _psd_sqrt(cov)
        return root @ root.T

    def jump_prob(self, dt_h: float) -> float:
        """Probability of a common jump in one step of ``dt_h`` hours."""
        return float(-math.expm1(-self.jump_rate_per_h * dt_h))

    def total_cov(self, dt_h: float) -> np.ndarray:
        """Covariance of one step's factor moves including the common jump, ``[F, F]``:
        the noise covariance plus ``p * (jump cov + jump mean outer) - p^2 * mean outer`` on
        the WETH, WBTC block (a Bernoulli(p) times normal jump)."""
        p = self.jump_prob(dt_h)
        m = self.jump_mean_log
        cov = self.step_cov(dt_h).copy()
        idx = np.flatnonzero(_VOL)
        cov[np.ix_(idx, idx)] += p * (self.jump_cov_log + np.outer(m, m)) - p * p * np.outer(m, m)
        return cov

    def corr_per_h(self) -> np.ndarray:
        """Correlation of the hourly noises, ``[F, F]``."""
        sd = np.sqrt(np.diag(self.cov_per_h))
        return self.cov_per_h / np.outer(sd, sd)

    def without_jumps(self) -> MultiAssetParams:
        """The same process with no common jumps."""
        return MultiAssetParams(
            self.kappa_per_h,
            self.mean_log,
            self.cov_per_h,
            0.0,
            self.jump_mean_log,
            self.jump_cov_log,
            self.start_usd,
            dict(self.info),
        )


def params_to_rows(p: MultiAssetParams) -> list[tuple[str, float]]:
    """``(name, value)`` rows of :data:`PARAMS_FILE` (full float precision)."""
    rows: list[tuple[str, float]] = []
    for i, f in enumerate(FACTORS):
        rows.append((f"kappa_per_h.{f}", float(p.kappa_per_h[i])))
        rows.append((f"mean_log.{f}", float(p.mean_log[i])))
    for i, a in enumerate(FACTORS):
        for j, b in enumerate(FACTORS):
            if j >= i:
                rows.append((f"cov_per_h.{a}.{b}", float(p.cov_per_h[i, j])))
    rows.append(("jump_rate_per_h", float(p.jump_rate_per_h)))
    for i, a in enumerate(VOLATILE):
        rows.append((f"jump_mean_log.{a}", float(p.jump_mean_log[i])))
    for i, a in enumerate(VOLATILE):
        for j, b in enumerate(VOLATILE):
            if j >= i:
                rows.append((f"jump_cov_log.{a}.{b}", float(p.jump_cov_log[i, j])))
    for k, s in enumerate(SYMBOLS):
        rows.append((f"start_usd.{s}", float(p.start_usd[k])))
    rows.extend((f"info.{k}", float(v)) for k, v in p.info.items())
    return rows


def params_to_text(p: MultiAssetParams) -> str:
    """:data:`PARAMS_FILE`'s text for ``p``."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["name", "value"])
    for name, value in params_to_rows(p):
        w.writerow([name, repr(value)])
    return out.getvalue()


def params_from_text(text: str) -> MultiAssetParams:
    """Parse :data:`PARAMS_FILE`'s text (see :func:`params_to_rows`)."""
    values = {row[0]: float(row[1]) for row in list(csv.reader(io.StringIO(text)))[1:] if row}
    f, v = len(FACTORS), len(VOLATILE)
    cov = np.zeros((f, f))
    for i, a in enumerate(FACTORS):
        for j, b in enumerate(FACTORS):
            cov[i, j] = values[f"cov_per_h.{a}.{b}" if j >= i else f"cov_per_h.{b}.{a}"]
    jcov = np.zeros((v, v))
    for i, a in enumerate(VOLATILE):
        for j, b in enumerate(VOLATILE):
            jcov[i, j] = values[f"jump_cov_log.{a}.{b}" if j >= i else f"jump_cov_log.{b}.{a}"]
    return MultiAssetParams(
        kappa_per_h=np.array([values[f"kappa_per_h.{x}"] for x in FACTORS]),
        mean_log=np.array([values[f"mean_log.{x}"] for x in FACTORS]),
        cov_per_h=cov,
        jump_rate_per_h=values["jump_rate_per_h"],
        jump_mean_log=np.array([values[f"jump_mean_log.{x}"] for x in VOLATILE]),
        jump_cov_log=jcov,
        start_usd=np.array([values[f"start_usd.{x}"] for x in SYMBOLS]),
        info={k[5:]: x for k, x in values.items() if k.startswith("info.")},
    )


@cache
def fitted_params() -> MultiAssetParams:
    """The shipped fit (:data:`PARAMS_FILE`), as written by ``--fit``."""
    return params_from_text(data_text(PARAMS_FILE))


# ----------------------------------------------------------------------------- data and fit


def _nearest_on_hours(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at each hour of 2021, ``[8760]``: the observation nearest the hour within
    30 minutes, NaN where there is none."""
    out = np.full(HOURS_2021, np.nan)
    best = np.full(HOURS_2021, np.inf)
    idx = np.rint((times_s - YEAR_2021_START_S) / HOUR_S).astype(np.int64)
    dist = np.abs(times_s - (YEAR_2021_START_S + HOUR_S * idx))
    ok = (idx >= 0) & (idx < HOURS_2021) & (dist < ALIGN_HALF_WINDOW_S)
    for i, d, x in zip(idx[ok], dist[ok], values[ok], strict=True):
        if d < best[i]:
            best[i], out[i] = d, x
    return out


def build_slice(shared_data_dir: str | Path) -> str:
    """The text of :data:`SLICE_FILE`, built from the shared data folder's 2021 hourly files
    (:data:`SOURCE_FILES`): one row per UTC hour of 2021, each column the observation nearest the
    hour within 30 minutes (empty where none). Run by hand (``--build-slice DIR``); nothing reads
    the shared folder at run time."""
    root = Path(shared_data_dir)
    cols: dict[str, np.ndarray] = {}
    for factor, rel in SOURCE_FILES.items():
        with open(root / rel, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if factor == "stETH_per_ETH":
            t = np.array([float(r["timestamp_ms"]) for r in rows]) / 1e3
            x = np.array([float(r["stETH_per_ETH"]) for r in rows])
        else:
            t = np.array([float(r["timestamp"]) for r in rows]) / 1e3
            x = np.array([float(r["USD_price"]) for r in rows])
        cols[factor] = _nearest_on_hours(t, x)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["unix_hour_utc", *FACTORS])
    for h in range(HOURS_2021):
        w.writerow(
            [int(YEAR_2021_START_S + HOUR_S * h)]
            + ["" if math.isnan(cols[f][h]) else f"{cols[f][h]:.8g}" for f in FACTORS]
        )
    return out.getvalue()


@cache
def hourly_slice() -> tuple[np.ndarray, np.ndarray]:
    """The shipped hourly slice: (hour_unix_s ``[H]``, factor levels ``[H, F]`` with NaN where an
    asset has no observation; the stETH column is the stETH/ETH ratio)."""
    rows = list(csv.reader(io.StringIO(data_text(SLICE_FILE))))
    header, body = rows[0], [r for r in rows[1:] if r]
    if header != ["unix_hour_utc", *FACTORS]:
        raise ValueError(
            f"{SLICE_FILE}: header {header}; expected unix_hour_utc,{','.join(FACTORS)}"
        )
    t = np.array([float(r[0]) for r in body])
    x = np.array([[float(c) if c else np.nan for c in r[1:]] for r in body])
    return t, x


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xm, ym = x.mean(), y.mean()
    b = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    return ym - b * xm, b


def fit(times_s: np.ndarray | None = None, levels: np.ndarray | None = None) -> MultiAssetParams:
    """Fit :class:`MultiAssetParams` on hourly factor levels (default: the shipped slice); the
    method is in the module docstring. Deterministic: the shipped :data:`PARAMS_FILE` is its
    output (a test checks it)."""
    if times_s is None or levels is None:
        times_s, levels = hourly_slice()
    logx = np.log(levels)
    consecutive = np.diff(times_s) == HOUR_S
    a, b = logx[:-1], logx[1:]
    f = len(FACTORS)
    vi = np.flatnonzero(_VOL)
    info: dict[str, float] = {"hours": float(len(times_s))}
    # common jumps of the volatile factors
    r = b[:, vi] - a[:, vi]
    both = consecutive & np.all(np.isfinite(r), axis=1)
    jump = np.zeros(len(r), dtype=bool)
    for j, name in enumerate(VOLATILE):
        center, sigma = jump_threshold(r[both, j], JUMP_K_SIGMA)
        jump |= both & (np.abs(r[:, j] - center) > JUMP_K_SIGMA * sigma)
        info[f"jump_threshold_log.{name}"] = JUMP_K_SIGMA * sigma
        info[f"mean_log_return_per_h.{name}"] = float(r[both, j].mean())
        info[f"vol_total_per_h.{name}"] = float(r[both, j].std())
    jumps = r[jump]
    info["volatile_return_hours"] = float(both.sum())
    info["jump_hours"] = float(jump.sum())
    # mean reversion, with outliers of the residuals dropped
    kappa = np.zeros(f)
    mean = np.zeros(f)
    noise = np.full(a.shape, np.nan)
    noise[:, vi] = r
    outlier = np.zeros(len(a), dtype=bool)
    for i, name in enumerate(FACTORS):
        if _VOL[i]:
            continue
        ok = consecutive & np.isfinite(a[:, i]) & np.isfinite(b[:, i])
        c0, phi = _ols(a[ok, i], b[ok, i])
        res = b[:, i] - c0 - phi * a[:, i]
        center, sigma = jump_threshold(res[ok], JUMP_K_SIGMA)
        bad = ok & (np.abs(res - center) > JUMP_K_SIGMA * sigma)
        keep = ok & ~bad
        c0, phi = _ols(a[keep, i], b[keep, i])
        if not 0.0 < phi < 1.0:
            raise ValueError(f"fit: {name} has autoregression {phi:g}; allowed (0, 1)")
        kappa[i] = -math.log(phi)
        mean[i] = c0 / (1.0 - phi)
        noise[:, i] = b[:, i] - c0 - phi * a[:, i]
        outlier |= bad
        info[f"outlier_hours.{name}"] = float(bad.sum())
        info[f"regression_hours.{name}"] = float(keep.sum())
    clean = consecutive & np.all(np.isfinite(noise), axis=1) & ~jump & ~outlier
    info["covariance_hours"] = float(clean.sum())
    cov = np.cov(noise[clean], rowvar=False)
    last = np.array([levels[np.flatnonzero(np.isfinite(levels[:, i]))[-1], i] for i in range(f)])
    start = np.exp(_MIX @ np.log(last))
    return MultiAssetParams(
        kappa_per_h=kappa,
        mean_log=mean,
        cov_per_h=cov,
        jump_rate_per_h=float(jump.sum() / both.sum()),
        jump_mean_log=jumps.mean(axis=0),
        jump_cov_log=np.cov(jumps, rowvar=False),
        start_usd=start,
        info=info,
    )


# ----------------------------------------------------------------------------- paths


@dataclass(frozen=True, eq=False)
class MultiAssetPaths:
    """Price paths of several assets for a batch of E paths.

    Row ``t`` is ``t * dt_h`` hours after the start (row 0 is the start)."""

    prices_usd: np.ndarray
    """USD price per asset, ``[T, E, K]`` (read-only)."""
    symbols: tuple[str, ...]
    """Asset of each column ``k``."""
    dt_h: float
    """Hours between rows."""
    replayed: tuple[str, ...] = ()
    """Symbols taken from a price file (the same on every path); the others are simulated."""

    def __post_init__(self) -> None:
        p = _frozen(self.prices_usd)
        if p.ndim != 3 or p.shape[2] != len(self.symbols):
            raise ValueError(
                f"MultiAssetPaths.prices_usd has shape {p.shape}; allowed [T, E, K] with "
                f"K = len(symbols) = {len(self.symbols)}"
            )
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            raise ValueError("MultiAssetPaths.prices_usd has a non-finite or <= 0 price")
        if not (self.dt_h > 0 and math.isfinite(self.dt_h)):
            raise ValueError(f"MultiAssetPaths.dt_h={self.dt_h:g} is out of range; allowed > 0")
        object.__setattr__(self, "prices_usd", p)
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "replayed", tuple(self.replayed))

    @property
    def num_rows(self) -> int:
        return self.prices_usd.shape[0]

    @property
    def num_paths(self) -> int:
        return self.prices_usd.shape[1]

    @property
    def times_h(self) -> np.ndarray:
        """Hours since the start of each row, ``[T]``."""
        return np.arange(self.num_rows) * self.dt_h

    def index(self, symbol: str) -> int:
        """Column of ``symbol``; a one-line error naming the symbols held otherwise."""
        if symbol not in self.symbols:
            raise ValueError(
                f"symbol {symbol!r} is not in the paths{closest_hint(symbol, self.symbols)}; "
                f"allowed {', '.join(self.symbols)}"
            )
        return self.symbols.index(symbol)

    def price(self, symbol: str) -> np.ndarray:
        """``[T, E]`` USD prices of one asset."""
        return self.prices_usd[:, :, self.index(symbol)]

    def select(self, symbols: Sequence[str]) -> MultiAssetPaths:
        """The paths of ``symbols`` only, in that order."""
        cols = [self.index(s) for s in symbols]
        return MultiAssetPaths(
            self.prices_usd[:, :, cols],
            tuple(symbols),
            self.dt_h,
            tuple(s for s in self.replayed if s in symbols),
        )

    def with_prices(self, prices_usd: np.ndarray) -> MultiAssetPaths:
        return MultiAssetPaths(prices_usd, self.symbols, self.dt_h, self.replayed)


def _check_run(num_paths: int, num_rows: int, dt_h: float) -> None:
    if not (isinstance(num_paths, int | np.integer) and num_paths >= 1):
        raise ValueError(f"num_paths={num_paths!r} is out of range; allowed an integer >= 1")
    if not (isinstance(num_rows, int | np.integer) and num_rows >= 1):
        raise ValueError(f"num_rows={num_rows!r} is out of range; allowed an integer >= 1")
    if not (isinstance(dt_h, int | float) and 0 < dt_h <= 24 and math.isfinite(dt_h)):
        raise ValueError(f"dt_h={dt_h!r} is out of range; allowed (0, 24] hours")


def _start_factors(params: MultiAssetParams, start_usd: dict[str, float] | None) -> np.ndarray:
    """Factor log levels at the start, ``[F]``: :attr:`MultiAssetParams.start_usd` with the
    prices in ``start_usd`` put over it. A new WETH price without a stETH price keeps the
    default stETH/ETH ratio."""
    given = dict(start_usd or {})
    for sym, value in given.items():
        if sym not in SYMBOLS:
            raise ValueError(
                f"start_usd: symbol {sym!r} is unknown{closest_hint(sym, SYMBOLS)}; "
                f"allowed {', '.join(SYMBOLS)}"
            )
        if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
            raise ValueError(f"start_usd[{sym!r}]={value!r} is out of range; allowed > 0")
    default = np.log(params.start_usd)
    s = np.linalg.solve(_MIX, default)
    for i, f in enumerate(FACTORS):
        if f in given:
            s[i] = math.log(given[f])
    if "stETH" in given:
        s[FACTORS.index("stETH_per_ETH")] = math.log(given["stETH"]) - s[FACTORS.index("WETH")]
    return s


def _run(
    params: MultiAssetParams,
    rng: np.random.Generator,
    num_paths: int,
    num_rows: int,
    dt_h: float,
    s0: np.ndarray,
    observed_log: np.ndarray | None = None,
    observed_mix: np.ndarray | None = None,
) -> np.ndarray:
    """Factor log levels ``[T, E, F]`` from ``s0`` ``[F]``; optionally conditioned on observed
    symbol log prices ``observed_log`` ``[T, n]`` with ``observed_mix`` ``[n, F]`` (their rows of
    the symbol map), by Gaussian conditioning of each step's noise on the observed moves.

    Step by step: a step's noise is drawn given that step's observed moves and the path so far,
    not given later rows (exact when each observed symbol is one factor; when stETH is observed
    without WETH, later rows would say more about how its past moves split between ETH and the
    ratio)."""
    f = len(FACTORS)
    phi = params.phi(dt_h)
    mean = params.mean_log
    cov = params.step_cov(dt_h)
    # a martingale in price between jumps for the random walks
    drift = np.where(_VOL, -0.5 * np.diag(cov), 0.0)
    p_jump = params.jump_prob(dt_h)
    vi = np.flatnonzero(_VOL)
    jumps_observed = observed_mix is not None and bool(np.any(observed_mix[:, _VOL] != 0))
    if jumps_observed:
        # the observed volatile moves carry the common jump: condition on the total covariance
        # and draw no jumps of our own
        noise_cov = params.total_cov(dt_h)
        noise_mean = np.zeros(f)
        noise_mean[vi] = p_jump * params.jump_mean_log
    else:
        noise_cov, noise_mean = cov, np.zeros(f)
    if observed_mix is not None:
        # Matheron's rule: an unconditional draw z moved by gain @ (observed - A z) has the
        # conditional law of the noise given the observed moves
        a = observed_mix
        gain = noise_cov @ a.T @ np.linalg.inv(a @ noise_cov @ a.T)
    root = _psd_sqrt(noise_cov)
    # all randomness drawn up front, in a fixed order (noise, then jump times, then jump sizes)
    steps = num_rows - 1
    noise = (rng.standard_normal((steps * num_paths, f)) @ root.T).reshape(steps, num_paths, f)
    noise += drift + noise_mean
    if not jumps_observed and p_jump > 0:
        hit = rng.random((steps, num_paths)) < p_jump
        size = rng.standard_normal((steps * num_paths, len(vi))) @ _psd_sqrt(params.jump_cov_log).T
        size = size.reshape(steps, num_paths, len(vi))
        noise[:, :, vi] += hit[:, :, None] * (params.jump_mean_log + size)
    s = np.empty((num_rows, num_paths, f))
    s[0] = s0
    for t in range(1, num_rows):
        s[t] = mean + phi * (s[t - 1] - mean) + noise[t - 1]
        if observed_mix is not None and observed_log is not None:
            s[t] += (observed_log[t] - s[t] @ observed_mix.T) @ gain.T
    return s


def _factors_to_prices(s: np.ndarray) -> np.ndarray:
    return np.exp(s @ _MIX.T)


def simulate(
    num_paths: int,
    num_rows: int,
    dt_h: float = 1.0,
    seed: int = 0,
    params: MultiAssetParams | None = None,
    start_usd: dict[str, float] | None = None,
    symbols: Sequence[str] = SYMBOLS,
) -> MultiAssetPaths:
    """``num_paths`` paths of ``num_rows`` rows of the fitted process (default
    :func:`fitted_params`), ``dt_h`` hours apart. Reproducible: the same arguments give the same
    array; all randomness comes from ``numpy.random.default_rng([seed, 15])``.

    ``start_usd`` overrides start prices by symbol (default :attr:`MultiAssetParams.start_usd`, the
    last hour of the 2021 data)."""
    _check_run(num_paths, num_rows, dt_h)
    params = params or fitted_params()
    rng = np.random.default_rng([int(seed), 15])
    s = _run(
        params, rng, int(num_paths), int(num_rows), float(dt_h), _start_factors(params, start_usd)
    )
    paths = MultiAssetPaths(_factors_to_prices(s), SYMBOLS, float(dt_h))
    return paths if tuple(symbols) == SYMBOLS else paths.select(symbols)


# ----------------------------------------------------------------------------- overlays


def _check_field(
    owner: str,
    name: str,
    value: float,
    lo: float,
    hi: float,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(
            f"{owner}.{name}={value!r} is out of range; allowed {left}{lo:g}, {hi:g}{right}"
        )


def _check_shape_fields(
    owner: str, start_h: float, move_h: float, hold_h: float, recover_h: float, recovers: bool
) -> None:
    _check_field(owner, "start_h", start_h, 0.0, 1e6)
    _check_field(owner, "move_h", move_h, 0.0, 1e4)
    _check_field(owner, "hold_h", hold_h, 0.0, 1e6)
    _check_field(owner, "recover_h", recover_h, 0.0, 1e4)
    if not isinstance(recovers, bool):
        raise ValueError(f"{owner}.recovers={recovers!r} is not allowed; allowed True or False")


def depeg_weight(
    times_h: np.ndarray,
    start_h: float,
    move_h: float,
    hold_h: float,
    recover_h: float,
    recovers: bool,
) -> np.ndarray:
    """The depeg's depth as a fraction of its full size at each time, ``[T]`` in ``[0, 1]``:
    0 before ``start_h``, rising linearly to 1 over ``move_h`` hours (a step when 0), 1 for
    ``hold_h`` hours, then back to 0 over ``recover_h`` hours (a step when 0) if ``recovers``,
    else 1 to the end."""
    t = np.asarray(times_h, dtype=np.float64) - start_h
    rise = np.clip(t / move_h, 0.0, 1.0) if move_h > 0 else (t >= 0).astype(np.float64)
    if not recovers:
        return rise
    after = t - move_h - hold_h
    fall = np.clip(after / recover_h, 0.0, 1.0) if recover_h > 0 else (after >= 0).astype(float)
    return rise * (1.0 - fall)


@dataclass(frozen=True)
class LSTDepeg:
    """A liquid-staking token trades below ETH: its USD price (its ratio to ETH, ETH unchanged)
    is multiplied by ``1 - discount_frac * w(t)``, ``w`` from :func:`depeg_weight` (the June 2022
    stETH discount reached about 6-7%)."""

    discount_frac: float
    """Depth at the trough, as a fraction of the undisturbed ratio; allowed (0, 1)."""
    start_h: float = 0.0
    """Hours from the start of the paths to the start of the fall."""
    move_h: float = 24.0
    """Hours of the fall (0 = a step)."""
    hold_h: float = 0.0
    """Hours at the trough."""
    recover_h: float = 72.0
    """Hours back to the undisturbed ratio (0 = a step), when ``recovers``."""
    recovers: bool = True
    """False: the discount stays to the end."""
    symbol: str = "stETH"
    """The LST; allowed :data:`LSTS`."""

    def __post_init__(self) -> None:
        _check_field("LSTDepeg", "discount_frac", self.discount_frac, 0.0, 1.0, True, True)
        _check_shape_fields(
            "LSTDepeg", self.start_h, self.move_h, self.hold_h, self.recover_h, self.recovers
        )
        if self.symbol not in LSTS:
            raise ValueError(
                f"LSTDepeg.symbol={self.symbol!r} is not allowed; allowed {', '.join(LSTS)}"
            )

    def factor(self, times_h: np.ndarray) -> np.ndarray:
        """Multiplier of the LST's price at each time, ``[T]``."""
        w = depeg_weight(
            times_h, self.start_h, self.move_h, self.hold_h, self.recover_h, self.recovers
        )
        return 1.0 - self.discount_frac * w

    def apply(self, paths: MultiAssetPaths) -> MultiAssetPaths:
        k = paths.index(self.symbol)
        prices = paths.prices_usd.copy()
        prices[:, :, k] *= self.factor(paths.times_h)[:, None]
        return paths.with_prices(prices)


@dataclass(frozen=True)
class StablecoinDepeg:
    """A stablecoin leaves its peg, below or above 1: its USD price is multiplied by
    ``1 + (depeg_price_usd - 1) * w(t)``, ``w`` from :func:`depeg_weight`, so at the trough (or
    peak) it trades at ``depeg_price_usd`` times its undisturbed path (which stays within a few
    basis points of 1).

    The three cases of the issue: a debt stablecoin below 1 (USDC at 0.87 in March 2023:
    ``StablecoinDepeg("USDC", 0.87, move_h=12, hold_h=24, recover_h=24)``), a debt stablecoin
    above 1 (DAI at 1.126 on 2020-03-12: ``StablecoinDepeg("DAI", 1.126, move_h=6, recover_h=24)``),
    and a collateral stablecoin that breaks and does not come back
    (``StablecoinDepeg("USDT", 0.3, move_h=48, recovers=False)``). Which asset is debt and which
    collateral is the book's business; the overlay only moves the price."""

    symbol: str
    """The stablecoin; allowed :data:`STABLECOINS`."""
    depeg_price_usd: float
    """Price at the depeg's extreme, relative to the undisturbed path; allowed (0, 2], not 1."""
    start_h: float = 0.0
    move_h: float = 12.0
    hold_h: float = 0.0
    recover_h: float = 24.0
    recovers: bool = True

    def __post_init__(self) -> None:
        if self.symbol not in STABLECOINS:
            raise ValueError(
                f"StablecoinDepeg.symbol={self.symbol!r} is not allowed"
                f"{closest_hint(str(self.symbol), STABLECOINS)}; allowed {', '.join(STABLECOINS)}"
            )
        _check_field("StablecoinDepeg", "depeg_price_usd", self.depeg_price_usd, 0.0, 2.0, True)
        if self.depeg_price_usd == 1.0:
            raise ValueError(
                "StablecoinDepeg.depeg_price_usd=1.0 is no depeg; allowed (0, 2] other than 1"
            )
        _check_shape_fields(
            "StablecoinDepeg",
            self.start_h,
            self.move_h,
            self.hold_h,
            self.recover_h,
            self.recovers,
        )

    def factor(self, times_h: np.ndarray) -> np.ndarray:
        """Multiplier of the stablecoin's price at each time, ``[T]``."""
        w = depeg_weight(
            times_h, self.start_h, self.move_h, self.hold_h, self.recover_h, self.recovers
        )
        return 1.0 + (self.depeg_price_usd - 1.0) * w

    def apply(self, paths: MultiAssetPaths) -> MultiAssetPaths:
        k = paths.index(self.symbol)
        prices = paths.prices_usd.copy()
        prices[:, :, k] *= self.factor(paths.times_h)[:, None]
        return paths.with_prices(prices)


MultiAssetOverlay = LSTDepeg | StablecoinDepeg


def apply_overlays(
    paths: MultiAssetPaths, overlays: Sequence[MultiAssetOverlay]
) -> MultiAssetPaths:
    """``paths`` with each overlay applied in order (they multiply, so order does not matter)."""
    for o in overlays:
        paths = o.apply(paths)
    return paths


# ----------------------------------------------------------------------------- CSV replay

TIME_COLUMNS = ("timestamp", "time", "datetime", "date", "unix", "unix_time", "timestamp_ms")
"""Names allowed for the first column of a multi-asset price CSV (case-insensitive)."""

_EPOCH_UNITS = ((1e11, "s", 1.0), (1e14, "ms", 1e3), (1e17, "us", 1e6), (math.inf, "ns", 1e9))


@dataclass(frozen=True, eq=False)
class MultiAssetTable:
    """A validated multi-column price file."""

    times_s: np.ndarray
    """Unix seconds, strictly increasing, ``[R]``."""
    prices_usd: np.ndarray
    """Positive finite USD prices, ``[R, n]``."""
    symbols: tuple[str, ...]
    """Asset of each price column (canonical spelling of :data:`SYMBOLS`)."""


def read_multiasset_csv(path: str | Path, allow_gaps: bool = False) -> MultiAssetTable:
    """Read ``timestamp,SYM1,SYM2,...``: the first column a time (ISO-8601, or unix seconds /
    ms / us / ns detected from the magnitude), the others USD prices named by symbol
    (:data:`SYMBOLS`, case-insensitive). Each problem is one ``ValueError`` line naming the file,
    the line and what is allowed: unknown or repeated symbol, a row with the wrong number of
    fields, an empty, non-numeric, NaN, infinite or non-positive price, an unparsable or
    non-increasing time, a gap over :data:`MAX_GAP_RATIO` times the median spacing (unless
    ``allow_gaps``), fewer than 2 rows."""
    label = f"--price-csv {str(path)!r}"
    reader = csv_reader(path, label)
    header = [h.strip() for h in next(reader, [])]
    if len(header) < 2:
        raise ValueError(
            f"{label}: header {','.join(header)!r}; allowed a time column then one price column "
            f"per asset, e.g. timestamp,{','.join(SYMBOLS)}"
        )
    if header[0].lower() not in TIME_COLUMNS:
        raise ValueError(
            f"{label}: first column {header[0]!r} is not a time column; allowed "
            f"{', '.join(TIME_COLUMNS)}"
        )
    lower = {s.lower(): s for s in SYMBOLS}
    symbols: list[str] = []
    for h in header[1:]:
        sym = lower.get(h.lower())
        if sym is None and h.lower() == "wsteth":
            raise ValueError(
                f"{label}: column {h!r}: wstETH is priced as stETH times its exchange ratio "
                "(stETH per wstETH); allowed a stETH column with stETH's USD price, or none "
                "(simulated)"
            )
        if sym is None:
            raise ValueError(
                f"{label}: unknown symbol column {h!r}{closest_hint(h, SYMBOLS)}; allowed "
                f"{', '.join(SYMBOLS)}"
            )
        if sym in symbols:
            raise ValueError(f"{label}: symbol {sym!r} appears twice; allowed once per asset")
        symbols.append(sym)
    times: list[float] = []
    rows: list[list[float]] = []
    lines: list[int] = []
    numeric: bool | None = None
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{label}: line {line} has {len(row)} fields; allowed {len(header)} as in the header"
            )
        values = []
        for sym, raw in zip(symbols, row[1:], strict=True):
            raw = raw.strip()
            try:
                x = float(raw)
            except ValueError:
                what = "is empty" if not raw else f"{raw!r} is not a number"
                raise ValueError(
                    f"{label}: line {line}: {sym} price {what}; allowed a finite price > 0 in every "
                    "row (leave the column out to simulate the asset)"
                ) from None
            if not (math.isfinite(x) and x > 0):
                raise ValueError(
                    f"{label}: line {line}: {sym} price {raw} is not allowed; allowed finite > 0"
                )
            values.append(x)
        raw_t = row[0].strip()
        try:
            t = float(raw_t)
            is_num = math.isfinite(t)
            if not is_num:
                raise ValueError
        except ValueError:
            is_num = False
            try:
                t = parse_utc(raw_t)
            except ValueError:
                raise ValueError(
                    f"{label}: line {line}: time {raw_t!r} is neither ISO-8601 "
                    "(2021-05-19T00:00:00Z) nor a unix time"
                ) from None
        if numeric is None:
            numeric = is_num
        elif numeric != is_num:
            raise ValueError(
                f"{label}: line {line}: time {raw_t!r} does not match the earlier rows' format"
            )
        if times and t <= times[-1]:
            raise ValueError(
                f"{label}: line {line}: time {raw_t!r} is not after the previous row's; allowed "
                "strictly increasing times"
            )
        times.append(t)
        rows.append(values)
        lines.append(line)
    if len(times) < 2:
        raise ValueError(f"{label}: {len(times)} data row(s); allowed at least 2")
    tt = np.array(times)
    if numeric:
        _, unit, per_s = next(u for u in _EPOCH_UNITS if abs(tt[0]) < u[0])
        del unit
        tt = tt / per_s
    gaps = np.diff(tt)
    median = float(np.median(gaps))
    k = int(np.argmax(gaps))
    if not allow_gaps and gaps[k] > MAX_GAP_RATIO * median:
        raise ValueError(
            f"{label}: line {lines[k + 1]}: a gap of {gaps[k] / 3600:.4g} h, {gaps[k] / median:.0f} x "
            f"the median spacing; allowed up to {MAX_GAP_RATIO:g} x (allow_gaps interpolates)"
        )
    return MultiAssetTable(tt, np.array(rows), tuple(symbols))


def replay(
    table: MultiAssetTable | str | Path,
    num_paths: int,
    num_rows: int,
    dt_h: float = 1.0,
    seed: int = 0,
    params: MultiAssetParams | None = None,
    speed: float = 1.0,
    start_usd: dict[str, float] | None = None,
    symbols: Sequence[str] = SYMBOLS,
) -> MultiAssetPaths:
    """Paths that replay the file's assets and simulate the others conditionally on them.

    The file's prices are put on the grid ``t0 + k * dt_h * speed`` hours by linear
    interpolation in log price (every path sees them exactly). The missing assets follow the
    fitted process, each step's noise drawn from its Gaussian distribution conditional on the
    replayed assets' moves in that step (the fitted covariance, with the common jump's moments
    added when a replayed asset carries it; no jump of their own is drawn then): a replayed crash
    moves WBTC by the fitted beta, and calm replayed prices never come with an invented crash.
    ``start_usd`` sets the start of assets not in the file (else as in :func:`simulate`)."""
    _check_run(num_paths, num_rows, dt_h)
    _check_field("replay", "speed", speed, 0.01, 100.0)
    label = "the price table"
    if not isinstance(table, MultiAssetTable):
        label = f"--price-csv {str(table)!r}"
        table = read_multiasset_csv(table)
    params = params or fitted_params()
    step_s = dt_h * HOUR_S * speed
    t = table.times_s
    covered = int(math.floor((t[-1] - t[0]) / step_s + 1e-9)) + 1
    if covered < num_rows:
        raise ValueError(
            f"{label} covers {covered} row(s) of {dt_h:g} h (x speed {speed:g}); the run "
            f"needs {num_rows}; allowed num_rows <= {covered}"
        )
    for sym in table.symbols:
        if start_usd and sym in start_usd:
            raise ValueError(
                f"start_usd[{sym!r}] given but {sym} is replayed from the file; allowed only for "
                "assets not in the file"
            )
    grid = t[0] + np.arange(num_rows) * step_s
    obs = np.stack(
        [np.interp(grid, t, np.log(table.prices_usd[:, j])) for j in range(len(table.symbols))],
        axis=1,
    )
    mix = _MIX[[SYMBOLS.index(s) for s in table.symbols]]
    # start: the prior start, moved onto the replayed prices by the same Gaussian conditioning
    prior = _start_factors(params, start_usd)
    c1 = params.total_cov(1.0)
    s0 = prior + c1 @ mix.T @ np.linalg.solve(mix @ c1 @ mix.T, obs[0] - mix @ prior)
    rng = np.random.default_rng([int(seed), 15, 1])
    s = _run(params, rng, int(num_paths), int(num_rows), float(dt_h), s0, obs, mix)
    prices = _factors_to_prices(s)
    for j, sym in enumerate(table.symbols):  # exact, not within round-off
        prices[:, :, SYMBOLS.index(sym)] = np.exp(obs[:, j])[:, None]
    paths = MultiAssetPaths(prices, SYMBOLS, float(dt_h), table.symbols)
    return paths if tuple(symbols) == SYMBOLS else paths.select(symbols)


# ----------------------------------------------------------------------------- named scenarios


@dataclass(frozen=True, eq=False)
class MultiAssetScenario:
    """A named multi-asset scenario: the fitted process (with or without its common jumps) and
    overlays. :meth:`build` simulates it, or replays a price file under it."""

    name: str
    description: str
    overlays: tuple[MultiAssetOverlay, ...] = ()
    jumps: bool = True

    def params(self) -> MultiAssetParams:
        p = fitted_params()
        return p if self.jumps else p.without_jumps()

    def build(
        self,
        num_paths: int,
        num_rows: int,
        dt_h: float = 1.0,
        seed: int = 0,
        price_csv: str | Path | MultiAssetTable | None = None,
        start_usd: dict[str, float] | None = None,
    ) -> MultiAssetPaths:
        """Paths of the scenario; with ``price_csv`` the file's assets are replayed and the
        others simulated conditionally on them (:func:`replay`), and an overlay on a replayed
        asset is an error (the file already says what that asset did)."""
        if price_csv is None:
            paths = simulate(num_paths, num_rows, dt_h, seed, self.params(), start_usd)
        else:
            paths = replay(
                price_csv, num_paths, num_rows, dt_h, seed, self.params(), 1.0, start_usd
            )
        for o in self.overlays:
            if o.symbol in paths.replayed:
                raise ValueError(
                    f"scenario {self.name!r} moves {o.symbol} ({type(o).__name__}) but {o.symbol} "
                    "is replayed from the price file; allowed a scenario that moves only assets "
                    "missing from the file (e.g. multiasset_2021)"
                )
        return apply_overlays(paths, self.overlays)


SCENARIOS: dict[str, MultiAssetScenario] = {
    s.name: s
    for s in (
        MultiAssetScenario(
            "multiasset_2021",
            "The fitted 2021 process: correlated WETH, WBTC with common jumps; stETH = ETH x an "
            "OU ratio; DAI, USDC, USDT OU near 1",
        ),
        MultiAssetScenario(
            "multiasset_2021_no_jumps",
            "The fitted 2021 process without the common jumps (diffusion only)",
            jumps=False,
        ),
        MultiAssetScenario(
            "steth_depeg",
            "Fitted process; stETH falls to a 6% discount to ETH over 48 h from hour 24, holds "
            "72 h, recovers over 168 h (June 2022's discount reached about 6-7%)",
            (LSTDepeg(0.06, start_h=24.0, move_h=48.0, hold_h=72.0, recover_h=168.0),),
        ),
        MultiAssetScenario(
            "usdc_depeg",
            "Fitted process; USDC (a debt asset) trades down to 0.87 over 12 h from hour 12, "
            "holds 24 h, recovers over 24 h (March 2023's low was about 0.87)",
            (
                StablecoinDepeg(
                    "USDC", 0.87, start_h=12.0, move_h=12.0, hold_h=24.0, recover_h=24.0
                ),
            ),
        ),
        MultiAssetScenario(
            "dai_premium",
            "Fitted process; DAI (a debt asset) trades up to 1.126 over 6 h from hour 6 and back "
            "over 24 h (DAI's 10-minute high on 2020-03-12)",
            (StablecoinDepeg("DAI", 1.126, start_h=6.0, move_h=6.0, hold_h=0.0, recover_h=24.0),),
        ),
        MultiAssetScenario(
            "usdt_break",
            "Fitted process; USDT (held as collateral) breaks to 0.30 over 48 h from hour 12 and "
            "does not recover (hypothetical: the size of a failed stablecoin, not a USDT event)",
            (StablecoinDepeg("USDT", 0.30, start_h=12.0, move_h=48.0, recovers=False),),
        ),
    )
}
"""Named multi-asset scenarios (not in the single-asset registry: the engine has no asset axis
yet)."""


def get_scenario(name: str) -> MultiAssetScenario:
    """The named multi-asset scenario; a one-line error with the names otherwise."""
    if name not in SCENARIOS:
        raise ValueError(
            f"unknown multi-asset scenario {name!r}{closest_hint(name, SCENARIOS)}; allowed "
            f"{', '.join(SCENARIOS)}"
        )
    return SCENARIOS[name]


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m levgym.scenarios.multiasset --fit [--out FILE]`` writes the fitted parameters;
    ``--build-slice SHARED_DATA_DIR`` rebuilds the hourly slice from the shared data first."""
    ap = argparse.ArgumentParser(
        prog="python -m levgym.scenarios.multiasset", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--fit", action="store_true", help="fit on the shipped slice and write the parameters"
    )
    ap.add_argument(
        "--out", default=None, help=f"parameters file (default levgym/data/{PARAMS_FILE})"
    )
    ap.add_argument(
        "--build-slice",
        metavar="SHARED_DATA_DIR",
        default=None,
        help=f"rebuild levgym/data/{SLICE_FILE} from the shared data folder",
    )
    ap.add_argument(
        "--summary",
        action="store_true",
        help="print the shipped fit and what simulated paths give (the numbers in the docs)",
    )
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(fitted_params()))
        print()
        print(simulation_summary())
        return 0
    data_dir = Path(__file__).resolve().parent.parent / "data"
    if args.build_slice:
        text = build_slice(args.build_slice)
        (data_dir / SLICE_FILE).write_text(text, encoding="utf-8")
        hourly_slice.cache_clear()
        print(f"wrote {data_dir / SLICE_FILE}", file=sys.stderr)
    if args.fit:
        if args.build_slice:
            t, x = _parse_slice(text)
            p = fit(t, x)
        else:
            p = fit()
        out = Path(args.out) if args.out else data_dir / PARAMS_FILE
        out.write_text(params_to_text(p), encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
        print(summary(p))
    if not (args.fit or args.build_slice or args.summary):
        ap.print_usage(sys.stderr)
        return 2
    return 0


def _parse_slice(text: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in list(csv.reader(io.StringIO(text)))[1:] if r]
    t = np.array([float(r[0]) for r in rows])
    return t, np.array([[float(c) if c else np.nan for c in r[1:]] for r in rows])


def simulation_summary(num_paths: int = 1000, days: int = 30, seed: int = 0) -> str:
    """What the shipped fit gives when simulated (Markdown): the worst fall over ``days`` days
    at 10-minute steps per asset, and the hourly noise correlation recovered from 400k steps."""
    rows = days * 24 * 6 + 1
    lines = [
        f"{num_paths} paths x {days} days at 10-minute steps (seed {seed}), scenario "
        "multiasset_2021: minimum over start",
        "",
        "| asset | median | 5th percentile | 1st percentile |",
        "|---|---|---|---|",
    ]
    paths = simulate(num_paths, rows, 1 / 6, seed)
    low = paths.prices_usd.min(axis=0) / paths.prices_usd[0]
    for k, sym in enumerate(paths.symbols):
        q = np.quantile(low[:, k], [0.5, 0.05, 0.01])
        lines.append(f"| {sym} | {q[0]:.4f} | {q[1]:.4f} | {q[2]:.4f} |")
    p = fitted_params().without_jumps()
    s = np.log(simulate(2000, 201, 1.0, seed + 1, p).prices_usd) @ np.linalg.inv(_MIX).T
    z = (s[1:] - p.mean_log - p.phi(1.0) * (s[:-1] - p.mean_log)).reshape(-1, len(FACTORS))
    c = np.cov(z, rowvar=False)
    sd = np.sqrt(np.diag(c))
    err = np.abs(c / np.outer(sd, sd) - p.corr_per_h()).max()
    var_err = np.abs(np.diag(c) / np.diag(p.cov_per_h) - 1).max()
    lines += [
        "",
        f"recovered from {z.shape[0]} simulated hourly steps without jumps (seed {seed + 1}): "
        f"largest correlation error {err:.4f}, largest relative variance error {var_err:.4f}",
    ]
    # WETH of 2021-05-19 replayed from the slice; the others simulated given it, against what
    # they did (in sample: 2021 is the fit's year)
    t, x = hourly_slice()
    i = int(np.searchsorted(t, parse_utc("2021-05-19T00:00:00Z")))
    day = x[i : i + 25]
    table = MultiAssetTable(t[i : i + 25], day[:, [0]], ("WETH",))
    cond = replay(table, num_paths, 25, 1.0, seed)
    lines += [
        "",
        f"WETH of 2021-05-19 00:00-24:00 UTC replayed from the slice (low {day[:, 0].min() / day[0, 0]:.4f}"
        f" of the start), {num_paths} paths of the others given it (seed {seed}); the data's "
        "low of the day over its start (NaN: hours missing in the slice are skipped) against the "
        "simulated 5th, 50th and 95th percentiles:",
        "",
        "| asset | hours with data | data | 5th | 50th | 95th |",
        "|---|---|---|---|---|---|",
    ]
    data_usd = np.stack(
        [np.exp(np.log(day[:, _MIX[k] != 0]).sum(axis=1)) for k in range(len(SYMBOLS))], axis=1
    )
    for k, sym in enumerate(SYMBOLS[1:], start=1):
        sim = cond.prices_usd[:, :, k].min(axis=0) / cond.prices_usd[0, :, k]
        q = np.quantile(sim, [0.05, 0.5, 0.95])
        col = data_usd[:, k]
        first = col[np.flatnonzero(np.isfinite(col))[0]]
        lines.append(
            f"| {sym} | {int(np.isfinite(col).sum())} of 25 | {np.nanmin(col) / first:.4f} | "
            f"{q[0]:.4f} | {q[1]:.4f} | {q[2]:.4f} |"
        )
    return "\n".join(lines)


def summary(p: MultiAssetParams) -> str:
    """The fitted numbers as Markdown (what ASSUMPTIONS.md quotes)."""
    sd = np.sqrt(np.diag(p.cov_per_h))
    corr = p.corr_per_h()
    lines = [
        "| factor | kappa per h | half-life h | mean level | noise sd per h |",
        "|---|---|---|---|---|",
    ]
    for i, f in enumerate(FACTORS):
        k = p.kappa_per_h[i]
        half = f"{math.log(2) / k:.3g}" if k > 0 else "random walk"
        level = f"{math.exp(p.mean_log[i]):.6g}" if k > 0 else "-"
        lines.append(f"| {f} | {k:.4g} | {half} | {level} | {sd[i]:.4g} |")
    lines += ["", "| corr | " + " | ".join(FACTORS) + " |", "|---" * (len(FACTORS) + 1) + "|"]
    for i, f in enumerate(FACTORS):
        lines.append(
            f"| {f} | " + " | ".join(f"{corr[i, j]:.3f}" for j in range(len(FACTORS))) + " |"
        )
    jsd = np.sqrt(np.diag(p.jump_cov_log))
    jc = p.jump_cov_log[0, 1] / (jsd[0] * jsd[1])
    lines += [
        "",
        f"common jumps: rate {p.jump_rate_per_h:.4g} per h; mean log move WETH "
        f"{p.jump_mean_log[0]:.4g}, WBTC {p.jump_mean_log[1]:.4g}; sd WETH {jsd[0]:.4g}, "
        f"WBTC {jsd[1]:.4g}; correlation {jc:.3f}",
        "",
        "info: " + ", ".join(f"{k} {v:.6g}" for k, v in p.info.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
