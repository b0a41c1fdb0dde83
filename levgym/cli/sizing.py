"""Memory and time estimates of a command's work, checked before any of it starts.

Every command that allocates a batch (``simulate``, ``stress``, ``evaluate``, ``train``) asks this
module first. Byte counts are derived from the engine's own containers, never restated: a tiny
:func:`~levgym.engine.state.init_state` is measured at three shapes to get the bytes per position
slot and per env, and a tiny :class:`~levgym.engine.drivers.Drivers` gives the bytes per
(substep, env) row of exogenous inputs. The estimate multiplies them by the requested sizes and by
:data:`WORKSPACE_FACTOR` for the temporaries a substep allocates.

A run whose estimate exceeds the memory this machine has available is refused with one line
naming the size, the estimate and the limit. A run that fits but whose estimated time exceeds
:data:`CONFIRM_ABOVE_S` (one hour) is refused unless ``--yes`` is given; the estimate rests on
:data:`POSITION_SUBSTEPS_PER_S`, a deliberately conservative throughput (a slow laptop core).

``LEVGYM_MEMORY_LIMIT_BYTES`` overrides the detected limit (tests, shared machines).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from .common import CliError

WORKSPACE_FACTOR = 6.0
"""Temporaries of a substep over the state it steps (cascade temporaries are ``[E, N]`` arrays):
the measured peak of `levgym simulate` is about 4.6 x the state, so 1 + 6 leaves a 50% margin
(``tests/cli/test_sizing.py`` checks the estimate against ``tracemalloc``)."""

CONFIRM_ABOVE_S = 3600.0
"""Estimated run time above which ``--yes`` is required."""

POSITION_SUBSTEPS_PER_S = {"numpy": 1e6, "numba": 3e6, "torch": 1e6}
"""Conservative throughput (position slots x substeps per second) used for time estimates: about
what `levgym simulate` and `levgym stress` reach on one busy laptop core (measured 0.8-1.3e6 for
numpy at 128-1000 positions)."""

OVERHEAD_S_PER_BATCH_SUBSTEP = 1e-3
"""Fixed cost of one substep of one batch, whatever its size (Python and kernel launch)."""

LIMIT_ENV = "LEVGYM_MEMORY_LIMIT_BYTES"


def human_bytes(n: float) -> str:
    """``2.1 TB`` style (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} PB"  # pragma: no cover


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 3 * 365 * 86400:
        return f"{s / 86400:.1f} days"
    return f"{s / (365 * 86400):.3g} years"


@functools.lru_cache(maxsize=4)
def state_layout(dtype: str = "float64") -> tuple[int, int, int]:
    """(bytes per position slot, bytes per env, fixed bytes) of the engine's ``State``, measured."""
    from ..engine.params import EngineParams
    from ..engine.state import init_state

    def total(e: int, n: int) -> int:
        state = init_state(
            EngineParams(),
            e,
            n,
            np.random.default_rng(0),
            fundamental_usd=np.full(e, 2000.0),
            debt_price_usd=np.ones(e),
            liquidity_frac=np.ones(e),
            gas_gwei=np.full(e, 30.0),
            dtype=dtype,
        )
        return sum(int(np.asarray(v).nbytes) for v in vars(state).values() if hasattr(v, "nbytes"))

    b11, b21, b12 = total(1, 1), total(2, 1), total(1, 2)
    per_position = b12 - b11
    per_env = b21 - b11 - per_position
    return per_position, per_env, b11 - per_env - per_position


@functools.lru_cache(maxsize=1)
def driver_row_bytes() -> int:
    """Bytes of one (substep, env) row of every driver field, measured on a tiny ``Drivers``."""
    from ..engine.drivers import Drivers

    d = Drivers.from_price(np.ones((2, 3)))
    return sum(int(np.asarray(v).nbytes) for v in vars(d).values()) // 6


def state_bytes(num_envs: int, num_positions: int, dtype: str = "float64") -> int:
    per_position, per_env, fixed = state_layout(dtype)
    return int(num_envs) * (int(num_positions) * per_position + per_env) + fixed


def step_bytes(num_envs: int, num_positions: int, dtype: str = "float64") -> int:
    """The state and the temporaries of one substep."""
    return int(state_bytes(num_envs, num_positions, dtype) * (1.0 + WORKSPACE_FACTOR))


def drivers_bytes(num_substeps: int, num_envs: int) -> int:
    return int(num_substeps) * int(num_envs) * driver_row_bytes()


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_limit() -> int | None:
    for file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def available_bytes() -> int:
    """Memory this process may still use: ``LEVGYM_MEMORY_LIMIT_BYTES``, else the smaller of
    ``MemAvailable`` and the cgroup limit, else ``os.sysconf``'s available pages."""
    raw = os.environ.get(LIMIT_ENV)
    if raw:
        try:
            return int(float(raw))
        except ValueError:
            raise CliError(f"{LIMIT_ENV}={raw!r} is not a number of bytes") from None
    found = [x for x in (_meminfo_available(), _cgroup_limit()) if x is not None]
    if found:
        return min(found)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 1 << 62


def check_memory(need: int, what: str, hint: str) -> None:
    """Refuse (one line) when ``need`` bytes exceed what the machine has available."""
    limit = available_bytes()
    if need > limit:
        raise CliError(
            f"{what} needs about {human_bytes(need)} of memory (estimate); this machine has "
            f"{human_bytes(limit)} available; allowed a run that fits: {hint}"
        )


def work_seconds(position_substeps: float, batch_substeps: float, backend: str) -> float:
    rate = POSITION_SUBSTEPS_PER_S.get(backend, POSITION_SUBSTEPS_PER_S["numpy"])
    return position_substeps / rate + batch_substeps * OVERHEAD_S_PER_BATCH_SUBSTEP


def check_time(seconds: float, what: str, yes: bool) -> None:
    """Refuse (one line) a run estimated above :data:`CONFIRM_ABOVE_S` unless ``yes``."""
    if seconds > CONFIRM_ABOVE_S and not yes:
        raise CliError(
            f"{what} would run for about {human_seconds(seconds)} (rough estimate); allowed up to "
            f"{human_seconds(CONFIRM_ABOVE_S)} without --yes: add --yes to start it anyway, or make it smaller"
        )


# --------------------------------------------------------------------------- per command


def check_simulate(
    num_envs: int, positions: int, substeps: int, dtype: str, record: bool, backend: str, yes: bool
) -> None:
    what = f"--num-envs {num_envs} x --positions {positions} x {substeps} substeps"
    # scenario generators hold a few [S, E] temporaries beside the drivers they return
    need = step_bytes(num_envs, positions, dtype) + 3 * drivers_bytes(substeps, num_envs)
    if record:  # six recorded series of [S, E] float64 for the plot
        need += 6 * 8 * substeps * num_envs
    check_memory(need, what, "fewer --num-envs, --positions or --steps")
    check_time(work_seconds(num_envs * positions * substeps, substeps, backend), what, yes)


def check_stress(
    paths: int,
    positions: int,
    substeps: int,
    batch_size: int,
    dtype: str,
    backend: str,
    runs: float,
    path_columns: int,
    yes: bool,
) -> None:
    """``runs``: how many times the paths are simulated (1 + sweep points + sensitivity runs)."""
    batch = min(batch_size, paths)
    batches = math.ceil(paths / batch)
    what = f"--paths {paths} x --positions {positions} x {substeps} substeps"
    need = (
        step_bytes(batch, positions, dtype)
        + 3 * drivers_bytes(substeps, batch)
        + 2 * paths * path_columns * 8  # per-path outcomes, and their concatenation
    )
    check_memory(need, what, "fewer --paths, or a smaller --batch-size, --positions or horizon")
    seconds = runs * work_seconds(paths * positions * substeps, batches * substeps, backend)
    check_time(seconds, what + (f" x {runs:.3g} runs" if runs > 1 else ""), yes)


def check_env(
    flag: str, num_envs: int, positions: int, horizon_substeps: int, dtype: str = "float64"
) -> None:
    """A vector env: its state, its bank of drivers ``[fields, E, S]`` and one episode's drivers."""
    what = f"{flag}: {num_envs} envs x {positions} positions x {horizon_substeps} substeps"
    need = (
        step_bytes(num_envs, positions, dtype)
        + drivers_bytes(horizon_substeps, num_envs)
        + 3 * drivers_bytes(horizon_substeps, 1)
    )
    check_memory(need, what, "fewer envs, or a smaller env_kwargs.num_positions or horizon_h")


def env_class(env_id: str) -> type:
    """The vector env class registered for ``env_id``."""
    import importlib

    from ..envs.registration import ENV_SPECS

    module, name = ENV_SPECS[env_id]["vector_entry_point"].split(":")
    return getattr(importlib.import_module(module), name)


def env_defaults(env_id: str) -> dict[str, object]:
    """The vector env class's keyword defaults (``num_positions``, ``horizon_h``, ...; a
    version's changed defaults over its parent's, :func:`levgym.envs.base.init_defaults`)."""
    from ..envs.base import init_defaults

    return init_defaults(env_class(env_id))


def check_env_kwargs(flag: str, env_id: str, num_envs: int, env_kwargs: dict) -> None:
    """Size check of ``num_envs`` copies of ``env_id`` built with ``env_kwargs`` (e.g. a suite's or
    ``--hyper env_kwargs.horizon_h=...``), before any is built."""
    from ..engine.params import RunParams

    defaults = env_defaults(env_id)
    positions = env_kwargs.get("num_positions", defaults.get("num_positions", 128))
    horizon_h = env_kwargs.get("horizon_h", defaults.get("horizon_h", 24.0))
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
        raise CliError(
            f"env_kwargs.num_positions={positions!r} is out of range; allowed an integer >= 1"
        )
    if (
        isinstance(horizon_h, bool)
        or not isinstance(horizon_h, int | float)
        or not math.isfinite(horizon_h)
        or horizon_h <= 0
    ):
        raise CliError(
            f"env_kwargs.horizon_h={horizon_h!r} is out of range; allowed a positive number of hours"
        )
    substeps = math.ceil(horizon_h / RunParams().substep_h)
    check_env(flag, num_envs, positions, substeps, str(env_kwargs.get("dtype", "float64")))
