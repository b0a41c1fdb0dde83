"""Price processes for a batch of envs, vectorized over envs (arrays ``[S, E]``).

Conventions shared by every generator here:

- row 0 is the starting price exactly; row ``k`` is ``k`` substeps (``k * dt_h`` hours) later;
- log prices move by ``-0.5 * variance`` per step (a martingale in price) plus the process's own
  terms (jumps carry their measured mean, the bootstrap carries the data's returns);
- the only loop is over time, where a process needs its own past (GARCH, an AR(1)); never over
  envs in Python: such loops are compiled (numba) and give the same numbers, bit for bit, as
  the plain Python loops they replace (:func:`garch_recursion_python`, :func:`ar1_python`);
- all randomness comes from the ``rng`` passed in. Long GBM and Merton paths are drawn by
  compiled kernels that take the same ``np.random.Generator`` (numba's implementation of its
  distributions, consuming the same bit stream) and give the NumPy code's numbers bit for bit
  (:func:`gbm_log_path`, :func:`merton_log_path`; the generator is left in the same state).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..engine.jit import HAVE_NUMBA, njit
from ..engine.params import HOURS_PER_YEAR


def _check_shape(num_substeps: int, num_envs: int, dt_h: float) -> None:
    if num_substeps < 1 or num_envs < 1:
        raise ValueError(f"num_substeps={num_substeps}, num_envs={num_envs}; allowed >= 1 each")
    if not dt_h > 0:
        raise ValueError(f"dt_h={dt_h} is out of range; allowed > 0")


def paths_from_increments(start: float | np.ndarray, log_increments: np.ndarray) -> np.ndarray:
    """Prices ``[S, E]`` from ``S - 1`` log increments ``[S - 1, E]``; row 0 is ``start``."""
    s1, e = log_increments.shape
    logp = np.zeros((s1 + 1, e))
    np.cumsum(log_increments, axis=0, out=logp[1:])
    return np.asarray(start, dtype=np.float64) * np.exp(logp)


def gbm(
    rng: np.random.Generator,
    num_substeps: int,
    num_envs: int,
    dt_h: float,
    start: float,
    vol_annual: float,
    drift_annual: float = 0.0,
) -> np.ndarray:
    """Geometric Brownian motion ``[S, E]`` with annualized volatility and drift."""
    _check_shape(num_substeps, num_envs, dt_h)
    dt = dt_h / HOURS_PER_YEAR
    mean_log = (drift_annual - 0.5 * vol_annual**2) * dt
    logp = gbm_log_path(rng, num_substeps - 1, num_envs, mean_log, vol_annual * math.sqrt(dt))
    return np.asarray(start, dtype=np.float64) * np.exp(logp)


# Draws per path from which the compiled kernels below are used, per process. Passing a fresh
# generator into a compiled function costs about 20 microseconds (numba reads its bit
# generator's ctypes interface), more than NumPy's few calls on a one-day path of 144 substeps;
# on a 30-day path (4,320 substeps) the kernels are cheaper (a Merton path, three draws, from
# shorter paths than a GBM path, one draw). Both ways give the same numbers.
COMPILED_MIN_DRAWS = {"gbm": 2048, "merton": 1024}


def _compiled(process: str, steps: int, num_envs: int) -> bool:
    return HAVE_NUMBA and steps * num_envs >= COMPILED_MIN_DRAWS[process]


def gbm_log_path(
    rng: np.random.Generator,
    steps: int,
    num_envs: int,
    mean_log: float,
    sd_log: float,
    lead_zero: bool = True,
) -> np.ndarray:
    """Cumulative log returns of a GBM: ``z = rng.standard_normal((steps, num_envs))``, the
    increments ``mean_log + sd_log * z`` and their cumulative sum over rows, ``[steps, E]``,
    after a row of zeros when ``lead_zero`` (``[steps + 1, E]``). Long paths are drawn and summed
    by a compiled kernel from the same generator (:data:`COMPILED_MIN_DRAWS`): the same bits,
    and ``rng`` is left in the same state."""
    if _compiled("gbm", steps, num_envs):
        return _gbm_log_kernel(rng, steps, num_envs, float(mean_log), float(sd_log), lead_zero)
    z = rng.standard_normal((steps, num_envs))
    incr = mean_log + sd_log * z
    logp = np.zeros((steps + int(lead_zero), num_envs))
    np.cumsum(incr, axis=0, out=logp[int(lead_zero) :])
    return logp


@njit(cache=True, nogil=True)
def _gbm_log_kernel(
    rng: np.random.Generator,
    steps: int,
    num_envs: int,
    mean_log: float,
    sd_log: float,
    lead_zero: bool,
) -> np.ndarray:  # pragma: no cover - compiled
    z = rng.standard_normal((steps, num_envs))  # numba's draws of the same stream, C order
    lead = 1 if lead_zero else 0
    logp = np.empty((steps + lead, num_envs))
    for e in range(num_envs):
        if lead:
            logp[0, e] = 0.0
        acc = mean_log + sd_log * z[0, e]  # np.cumsum's first row is the increment itself
        logp[lead, e] = acc
        for t in range(1, steps):
            acc = acc + (mean_log + sd_log * z[t, e])
            logp[t + lead, e] = acc
    return logp


def merton_log_path(
    rng: np.random.Generator,
    steps: int,
    num_envs: int,
    mean_log: float,
    sd_log: float,
    jumps_per_step: float,
    jump_mean_log: float,
    jump_sd_log: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative log returns of :func:`merton`, ``[steps + 1, E]`` (row 0 zero), and the jump
    counts ``[steps, E]``: in order ``z = standard_normal``, ``n = poisson(jumps_per_step)``,
    ``zj = standard_normal``, each ``(steps, E)``; the increments ``mean_log + sd_log * z +
    (n * jump_mean_log + sqrt(n) * jump_sd_log * zj)``. Long paths are drawn by a compiled
    kernel from the same generator (:data:`COMPILED_MIN_DRAWS`): the same bits and state."""
    if _compiled("merton", steps, num_envs):
        return _merton_log_kernel(
            rng, steps, num_envs, float(mean_log), float(sd_log), float(jumps_per_step),
            float(jump_mean_log), float(jump_sd_log),
        )  # fmt: skip
    shape = (steps, num_envs)
    z = rng.standard_normal(shape)
    n = rng.poisson(jumps_per_step, shape)
    zj = rng.standard_normal(shape)
    diffusion = mean_log + sd_log * z
    jumps = n * jump_mean_log + np.sqrt(n) * jump_sd_log * zj
    logp = np.zeros((steps + 1, num_envs))
    np.cumsum(diffusion + jumps, axis=0, out=logp[1:])
    return logp, n


@njit(cache=True, nogil=True)
def _merton_log_kernel(
    rng: np.random.Generator,
    steps: int,
    num_envs: int,
    mean_log: float,
    sd_log: float,
    jumps_per_step: float,
    jump_mean_log: float,
    jump_sd_log: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    z = rng.standard_normal((steps, num_envs))
    n = rng.poisson(jumps_per_step, (steps, num_envs))
    zj = rng.standard_normal((steps, num_envs))
    logp = np.empty((steps + 1, num_envs))
    for e in range(num_envs):
        logp[0, e] = 0.0
        acc = 0.0
        for t in range(steps):
            k = n[t, e]
            x = (mean_log + sd_log * z[t, e]) + (
                k * jump_mean_log + np.sqrt(np.float64(k)) * jump_sd_log * zj[t, e]
            )
            acc = x if t == 0 else acc + x
            logp[t + 1, e] = acc
    return logp, n


def merton(
    rng: np.random.Generator,
    num_substeps: int,
    num_envs: int,
    dt_h: float,
    start: float,
    vol_annual: float,
    jump_rate_per_h: float,
    jump_mean_log: float,
    jump_sd_log: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Merton jump-diffusion: GBM plus Poisson jumps with normal log sizes.

    Returns ``(prices [S, E], jumps [S - 1, E])`` where ``jumps`` counts the jumps in each step.
    The jumps are not compensated: their mean log size is part of the path's drift, as in the
    data they are fitted on.
    """
    _check_shape(num_substeps, num_envs, dt_h)
    dt = dt_h / HOURS_PER_YEAR
    logp, n = merton_log_path(
        rng, num_substeps - 1, num_envs, -0.5 * vol_annual**2 * dt, vol_annual * math.sqrt(dt),
        jump_rate_per_h * dt_h, jump_mean_log, jump_sd_log,
    )  # fmt: skip
    return np.asarray(start, dtype=np.float64) * np.exp(logp), n


def garch(
    rng: np.random.Generator,
    num_substeps: int,
    num_envs: int,
    dt_h: float,
    start: float,
    omega: float,
    alpha: float,
    beta: float,
    start_var_per_h: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) volatility clustering on the hourly clock, stepped at ``dt_h``.

    Hourly model: ``r_t = sigma_t z_t``, ``sigma2_{t+1} = omega + alpha r_t^2 + beta sigma2_t``.
    For a step of ``dt`` hours the variance of the step's return is ``sigma2 * dt`` and the
    recursion is applied in its Euler form ``sigma2 <- sigma2 (1 - dt (1 - beta)) + omega dt +
    alpha r^2``, which is the hourly GARCH exactly at ``dt = 1`` and keeps the unconditional
    variance ``omega / (1 - alpha - beta)`` at any ``dt``. Steps longer than an hour are split.

    Returns ``(prices [S, E], hourly variance at the start of each step [S - 1, E])``.
    """
    _check_shape(num_substeps, num_envs, dt_h)
    if alpha < 0 or beta < 0 or alpha + beta >= 1 or omega <= 0:
        raise ValueError(
            f"GARCH omega={omega:g}, alpha={alpha:g}, beta={beta:g}; "
            "allowed omega > 0, alpha >= 0, beta >= 0, alpha + beta < 1"
        )
    m = max(1, math.ceil(dt_h - 1e-12))
    h = dt_h / m
    var = omega / (1.0 - alpha - beta) if start_var_per_h is None else start_var_per_h
    s2 = np.full(num_envs, float(var))
    z = rng.standard_normal((num_substeps - 1, m, num_envs))
    recursion = _garch_kernel if HAVE_NUMBA else garch_recursion_python
    incr, var_path = recursion(z, s2, h, omega, alpha, beta)
    return paths_from_increments(start, incr), var_path


def garch_recursion_python(
    z: np.ndarray, s2: np.ndarray, h: float, omega: float, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """The GARCH recursion of :func:`garch` over time, vectorized over envs: from shocks
    ``z [S - 1, m, E]`` (``m`` sub-steps of ``h`` hours per step) and starting variances ``s2
    [E]``, the log increments and the variance at the start of each step, both ``[S - 1, E]``.
    The specification of the compiled version, which must give the same bits."""
    steps, m, num_envs = z.shape
    incr = np.empty((steps, num_envs))
    var_path = np.empty((steps, num_envs))
    for t in range(steps):
        var_path[t] = s2
        total = np.zeros(num_envs)
        for j in range(m):
            r = np.sqrt(s2 * h) * z[t, j]
            total += r - 0.5 * s2 * h
            s2 = s2 * (1.0 - h * (1.0 - beta)) + omega * h + alpha * r * r
        incr[t] = total
    return incr, var_path


@njit(cache=True, nogil=True)
def _garch_kernel(
    z: np.ndarray, s2: np.ndarray, h: float, omega: float, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    steps, m, num_envs = z.shape
    incr = np.empty((steps, num_envs))
    var_path = np.empty((steps, num_envs))
    keep = 1.0 - h * (1.0 - beta)  # the same operations, in the same order, as the Python loop
    omega_h = omega * h
    for e in range(num_envs):
        v = s2[e]
        for t in range(steps):
            var_path[t, e] = v
            total = 0.0
            for j in range(m):
                r = np.sqrt(v * h) * z[t, j, e]
                total += r - 0.5 * v * h
                v = v * keep + omega_h + alpha * r * r
            incr[t, e] = total
    return incr, var_path


def ar1_python(first: np.ndarray, phi: float, shocks: np.ndarray) -> np.ndarray:
    """``u[0] = first``, ``u[t] = phi * u[t - 1] + shocks[t]`` over rows of ``[S, E]`` arrays
    (``shocks[0]`` unused). The specification of :func:`ar1`."""
    u = np.empty_like(shocks)
    u[0] = first
    for t in range(1, u.shape[0]):
        u[t] = phi * u[t - 1] + shocks[t]
    return u


@njit(cache=True, nogil=True)
def _ar1_kernel(
    first: np.ndarray, phi: float, shocks: np.ndarray
) -> np.ndarray:  # pragma: no cover
    u = np.empty_like(shocks)
    steps, num_envs = shocks.shape
    for e in range(num_envs):
        u[0, e] = first[e]
        for t in range(1, steps):
            u[t, e] = phi * u[t - 1, e] + shocks[t, e]
    return u


def ar1(first: np.ndarray, phi: float, shocks: np.ndarray) -> np.ndarray:
    """An AR(1) path ``[S, E]``: :func:`ar1_python`, compiled (the same bits)."""
    first = np.asarray(first, dtype=np.float64)
    shocks = np.ascontiguousarray(shocks, dtype=np.float64)
    if shocks.ndim != 2 or first.shape != shocks.shape[1:]:
        raise ValueError(
            f"ar1: shocks of shape {shocks.shape} and first of shape {first.shape}; "
            "allowed [S, E] and [E]"
        )
    return _ar1_kernel(first, float(phi), shocks) if HAVE_NUMBA else ar1_python(first, phi, shocks)


def interpolate_rows(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values [H, E]`` at fractional row ``positions [S]`` -> ``[S, E]``."""
    h = values.shape[0]
    pos = np.clip(positions, 0.0, h - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), h - 1)
    hi = np.minimum(lo + 1, h - 1)
    w = (pos - lo)[:, None]
    return values[lo] * (1.0 - w) + values[hi] * w


def block_bootstrap(
    rng: np.random.Generator,
    num_substeps: int,
    num_envs: int,
    dt_h: float,
    start: float,
    hourly_log_returns: np.ndarray,
    block_h: int,
    demean: bool = True,
) -> np.ndarray:
    """Moving-block bootstrap of hourly log returns, sampled onto the substep grid.

    Each env concatenates blocks of ``block_h`` consecutive historical hours drawn uniformly with
    replacement (which keeps the volatility clustering inside a block). ``demean`` removes the
    sample's mean return so the bull-market drift of the history is not replayed. Within an hour
    the log price moves linearly (the substep grid sees the hourly returns, not intra-hour noise).
    """
    _check_shape(num_substeps, num_envs, dt_h)
    r = np.asarray(hourly_log_returns, dtype=np.float64)
    if block_h < 1 or block_h > r.size:
        raise ValueError(f"block_h={block_h} is out of range; allowed [1, {r.size}]")
    if demean:
        r = r - r.mean()
    hours = int(math.ceil((num_substeps - 1) * dt_h - 1e-9)) + 1
    n_blocks = int(math.ceil(hours / block_h))
    starts = rng.integers(0, r.size - block_h + 1, size=(n_blocks, num_envs))
    idx = starts[:, None, :] + np.arange(block_h)[None, :, None]
    hourly = r[idx.reshape(n_blocks * block_h, num_envs)[:hours]]
    logp = np.zeros((hours + 1, num_envs))
    np.cumsum(hourly, axis=0, out=logp[1:])
    grid = np.arange(num_substeps) * dt_h
    return start * np.exp(interpolate_rows(logp, grid))


def resample_log(times: np.ndarray, prices: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Prices at ``grid`` by linear interpolation in log price; outside the data the first or the
    last price is held."""
    return np.exp(np.interp(grid, times, np.log(prices)))


DRAWDOWN_WINDOW_H = 30 * 24.0
"""Window of the trailing peak that new borrowing responds to (:func:`drawdown_mult`)."""
ARRIVAL_DRAWDOWN_MAX = 20.0
"""The largest elasticity :func:`drawdown_mult` accepts (``run.arrival_drawdown``)."""


def _check_elasticity(name: str, value: float, most: float) -> None:
    """A path response's elasticity: finite, in [0, ``most``] (a one-line ``ValueError``)."""
    if not (math.isfinite(value) and 0.0 <= value <= most):
        raise ValueError(f"{name}={value!r} is out of range; allowed [0, {most:g}]")


def drawdown_mult(prices: np.ndarray, window_rows: int, elasticity: float) -> np.ndarray:
    """The arrivals' response to the trailing drawdown, the same shape as ``prices``:
    ``(price / highest price of the window_rows rows up to and including it) ** elasticity``
    along axis 0 (the first rows use what exists). New borrowing dries up after a crash and
    comes back as the price recovers its peak (or the peak leaves the window); 1 at a new
    high; ``elasticity`` 0: 1 throughout. ``levgym validate`` applies it to the hourly closes
    (:func:`levgym.analytics.validation.arrival_mult`), a ``--price-csv`` replay to its own
    path (``run.arrival_drawdown``, :func:`levgym.scenarios.csv_replay.drivers_from_csv`)."""
    _check_elasticity("arrival_drawdown", elasticity, ARRIVAL_DRAWDOWN_MAX)
    if elasticity == 0.0:
        return np.ones(prices.shape)
    from scipy.ndimage import maximum_filter1d

    w = max(1, int(window_rows))
    # trailing window [i - w + 1, i]
    peak = maximum_filter1d(prices, size=w, axis=0, origin=(w - 1) // 2, mode="nearest")
    return (prices / peak) ** elasticity


HF_PATH_WINDOW_H = 30 * 24.0
"""Window of the trailing return that new borrowers' health-factor margin responds to
(:func:`hf_margin_mult`)."""
HF_PATH_MAX = 4.0
"""The largest elasticity :func:`hf_margin_mult` accepts."""


def hf_margin_mult(prices: np.ndarray, window_rows: int, elasticity: float) -> np.ndarray:
    """The response of new borrowers' health-factor margin to the recent path, the same shape
    as ``prices``: ``(price / price window_rows rows before) ** -elasticity`` along axis 0 (the
    first rows use the first price), i.e. ``exp(-elasticity * trailing log return)``. After a
    rally new positions open closer to the liquidation edge (a multiplier under 1 on their
    excess over the floor), after a crash farther from it; ``elasticity`` 0: 1 throughout."""
    _check_elasticity("hf_path_elasticity", elasticity, HF_PATH_MAX)
    if elasticity == 0.0:
        return np.ones(prices.shape)
    w = max(1, int(window_rows))
    idx = np.maximum(np.arange(prices.shape[0]) - w, 0)
    return (prices / prices[idx]) ** -elasticity


@functools.lru_cache(maxsize=32)
def _window_counts(s: int, w: int) -> np.ndarray:
    """The returns in each row's trailing window, ``[S, 1]`` floats (row 0 counts 1), cached
    read-only."""
    count = np.minimum(np.arange(s), w).astype(np.float64)
    count[0] = 1.0
    count = count[:, None]
    count.setflags(write=False)
    return count


def trailing_realized_vol(prices: np.ndarray, dt_h: float, window_h: float = 1.0) -> np.ndarray:
    """Annualized realized volatility over the trailing ``window_h`` hours, ``[S, E]``.

    Row ``k`` uses the log returns of rows ``k - w + 1 .. k`` (``w = round(window_h / dt_h)``,
    at least 1); the first rows use what exists; row 0 has no return and gets row 1's value.
    """
    logp = np.log(prices)
    s = logp.shape[0]
    r2 = np.zeros_like(logp)
    r2[1:] = np.square(logp[1:] - logp[:-1])  # np.diff's subtraction, squared as ** 2 is
    w = max(1, int(round(window_h / dt_h)))
    c = np.cumsum(r2, axis=0)
    lagged = np.zeros_like(c)
    lagged[w:] = c[:-w]
    rv = np.sqrt((c - lagged) / _window_counts(s, w) / dt_h * HOURS_PER_YEAR)
    if s > 1:
        rv[0] = rv[1]
    return rv
