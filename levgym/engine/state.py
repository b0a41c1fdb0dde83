"""Batched state of E lending markets with N position slots each, and the initial book."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .backend import make_converter, namespace, to_numpy
from .params import EngineParams, ProtocolParams
from .rules import DEFENSIVE, LOOPER, PASSIVE, pool_price_usd
from .schema import (
    CLOCK_FIELDS,
    COUNTER_FIELDS,
    PARAM_FIELDS,
    STATE_FIELDS,
    STATE_SCHEMA,
)

KIND_NAMES = ("passive", "defensive", "looper")


class _StateMethods:
    """Methods of :class:`State` (its fields come from :data:`levgym.engine.schema.STATE_SCHEMA`)."""

    def replace(self, **changes: Any) -> State:
        """A copy with ``changes`` (what ``dataclasses.replace`` returns, without re-running the
        frozen ``__init__`` field by field: State has no ``__post_init__`` and no defaults, so
        copying the attribute dict is the same object, at a fraction of the cost per step)."""
        if not _FIELD_NAMES.issuperset(changes):
            unknown = sorted(set(changes) - _FIELD_NAMES)
            raise TypeError(f"State has no field(s) {', '.join(unknown)}")
        new = object.__new__(type(self))
        d = new.__dict__
        d.update(self.__dict__)
        d.update(changes)
        return new

    @property
    def num_envs(self) -> int:
        return int(self.collateral_asset.shape[0])

    @property
    def num_positions(self) -> int:
        return int(self.collateral_asset.shape[1])

    @property
    def pool_price_usd(self) -> Any:
        """Pool price of the asset in USD (the pool quotes it in the debt asset)."""
        return pool_price_usd(self.pool_asset, self.pool_debt, self.debt_price_usd)

    def arrays(self) -> dict[str, Any]:
        """The state's arrays by name (every field but the clock)."""
        return {f.name: getattr(self, f.name) for f in STATE_SCHEMA}

    def map_arrays(self, fn: Any) -> State:
        """A new state with ``fn(array, field)`` for every array; the clock is kept."""
        out = {f.name: fn(getattr(self, f.name), f) for f in STATE_SCHEMA}
        return State(time_h=self.time_h, substep_index=self.substep_index, **out)

    def to_numpy(self) -> State:
        """A copy with every array as numpy (for tests, plots and the reference loop)."""
        return self.map_arrays(lambda a, f: to_numpy(a).copy())

    def select(self, env_mask: Any) -> State:
        """A new state with the envs of ``env_mask`` (bool [E], or indices) only."""
        return self.map_arrays(lambda a, f: a[env_mask])


State = dataclasses.make_dataclass(
    "State",
    [(f.name, Any) for f in STATE_SCHEMA] + [(CLOCK_FIELDS[0], float), (CLOCK_FIELDS[1], int)],
    bases=(_StateMethods,),
    frozen=True,
)
State.__module__ = __name__
_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(State))
State.__doc__ = (
    "All arrays of a batch, one attribute per field of "
    ":data:`levgym.engine.schema.STATE_SCHEMA` (positions ``[E, N]``, markets ``[E]``, the TWAP "
    "window ``[E, W]``), plus the shared clock ``time_h`` and ``substep_index``. Debt-side "
    "amounts are in debt-asset units (USD at a debt price of 1), collateral in asset units."
)


def set_param_values(state: State, values: dict[str, Any], env_mask: Any | None = None) -> State:
    """Write per-env parameter values (``{name: [E] or number}``, names from ``PARAM_FIELDS``)
    into the state, for all envs or those in ``env_mask``; they act from the next substep."""
    changes = {}
    for name, v in values.items():
        if name not in STATE_FIELDS or STATE_FIELDS[name].role != "param":
            raise ValueError(f"parameter {name!r} is unknown; allowed {', '.join(PARAM_FIELDS)}")
        cur = getattr(state, name)
        val = namespace(cur).zeros_like(cur) + v  # not cur * 0 + v: a cap may be inf
        changes[name] = val if env_mask is None else namespace(cur).where(env_mask, val, cur)
    return state.replace(**changes)


def set_protocol_params(state: State, params: ProtocolParams, env_mask: Any | None = None) -> State:
    """Write ``params`` into the per-env parameter arrays (all envs, or those in ``env_mask``)."""
    values = {name: float(getattr(params, name)) for name in PARAM_FIELDS}
    return set_param_values(state, values, env_mask)


def draw_book(
    params: EngineParams,
    num_envs: int,
    num_positions: int,
    rng: np.random.Generator,
    vol_annual: np.ndarray | float | None = None,
) -> dict:
    """Draw the position slots' sizes, health factors and behaviours (numpy, before any price).

    ``vol_annual`` (per env, optional): the recent realized volatility; with
    ``borrowers.hf_vol_elasticity`` it scales the median health-factor excess (the same random
    numbers are drawn either way)."""
    return book_from_draws(params, book_draws(params, num_envs, num_positions, rng), vol_annual)


def draw_books(params: EngineParams, num_positions: int, rngs: list[np.random.Generator]) -> dict:
    """One book of ``len(rngs)`` envs, env ``i`` drawn from ``rngs[i]``: the same as
    :func:`concat_books` of :func:`draw_book` of one env per generator, with the arithmetic
    after the draws done once for the batch (it is elementwise, or per env)."""
    raw = [_raw_draws(params, 1, num_positions, rng) for rng in rngs]
    if len(raw) == 1:
        return book_from_draws(params, _book_draws_from(params, *raw[0]))
    pareto = np.concatenate([r[0] for r in raw], axis=0)
    z = np.concatenate([r[1] for r in raw], axis=0)
    u = np.concatenate([r[2] for r in raw], axis=1)
    return book_from_draws(params, _book_draws_from(params, pareto, z, u))


def book_draws(
    params: EngineParams, num_envs: int, num_positions: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """The random numbers of a book ``[E, N]`` each, in the order they are drawn: slot sizes
    (Pareto), health-factor noise (normal), kind, trigger, reaction and target draws (uniform),
    then the repay, in-band and active uniforms (:func:`book_from_draws` turns them into a book)."""
    return _book_draws_from(params, *_raw_draws(params, num_envs, num_positions, rng))


def _raw_draws(
    params: EngineParams, num_envs: int, num_positions: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A book's draws from ``rng`` in three calls: the Pareto sizes and the normal noise
    ``[E, N]``, then the seven uniforms ``[7, E, N]`` in one call (numpy's ``uniform(lo, hi)`` is
    ``lo + (hi - lo) * random()``: the same doubles in the same order, tested bit for bit)."""
    shape = (num_envs, num_positions)
    pareto = rng.pareto(params.borrowers.size_pareto_alpha, shape)
    z = rng.standard_normal(shape)
    return pareto, z, rng.random((7, *shape))


def _book_draws_from(
    params: EngineParams, pareto: np.ndarray, z: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:func:`book_draws`'s tuple from :func:`_raw_draws` (of one env or joined), the three
    uniform ranges scaled in place as numpy's ``uniform`` does."""
    b = params.borrowers
    return (
        pareto,
        z,
        u[0],
        _scaled(u[1], b.trigger_hf_min, b.trigger_hf_max),
        _scaled(u[2], b.react_prob_min, b.react_prob_max),
        _scaled(u[3], b.looper_target_hf_min, b.looper_target_hf_max),
        u[4],
        u[5],
        u[6],
    )


def _scaled(u: np.ndarray, low: float, high: float) -> np.ndarray:
    """``rng.uniform(low, high)``'s values from the same generator's ``rng.random()`` values
    ``u``: numpy computes ``low + (high - low) * random()`` (in place)."""
    u *= float(high) - float(low)
    u += float(low)
    return u


def book_from_draws(
    params: EngineParams,
    draws: tuple[np.ndarray, ...],
    vol_annual: np.ndarray | float | None = None,
) -> dict:
    """The book of :func:`draw_book` from its random numbers (:func:`book_draws`)."""
    b = params.borrowers
    pareto, z, u_kind, trigger, react, target, u_repays, u_band, u_active = draws
    e = pareto.shape[0]
    weights = pareto + 1.0
    median = b.hf_median_excess
    if vol_annual is not None and b.hf_vol_elasticity != 0.0:
        ratio = (
            np.broadcast_to(np.asarray(vol_annual, dtype=np.float64), (e,)) / b.hf_vol_ref_annual
        )
        median = b.hf_median_excess * (ratio**b.hf_vol_elasticity)[:, None]
    hf = b.hf_floor + np.exp(np.log(median) + b.hf_sigma * z)
    kind = np.where(
        u_kind < b.passive_frac,
        PASSIVE,
        np.where(u_kind < b.passive_frac + b.defensive_frac, DEFENSIVE, LOOPER),
    ).astype(np.int64)
    repays = u_repays < b.repay_share_frac
    # Loopers start inside their band (at their target up to the re-lever threshold), as they would
    # be after levering up, so the first substep is not a burst of re-levering.
    in_band = target * (1.0 + b.relever_band_frac * u_band)
    hf = np.where(kind == LOOPER, in_band, hf)
    active = u_active < b.initial_active_frac
    active[~active.any(axis=1), 0] = True
    return {
        "weights": weights,
        "hf": hf,
        "kind": kind,
        "trigger": trigger,
        "react": react,
        "target": target,
        "repays": repays,
        "active": active,
    }


def init_state(
    params: EngineParams,
    num_envs: int,
    num_positions: int,
    seed: int | np.random.Generator,
    fundamental_usd: np.ndarray,
    debt_price_usd: np.ndarray,
    liquidity_frac: np.ndarray,
    gas_gwei: np.ndarray,
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
) -> State:
    """The initial state: a drawn book at the first driver row (``[E]`` numpy arrays)."""
    if num_envs < 1:
        raise ValueError(f"num_envs={num_envs} is out of range; allowed >= 1")
    if num_positions < 1:
        raise ValueError(f"positions={num_positions} is out of range; allowed >= 1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    book = draw_book(params, num_envs, num_positions, rng)
    return build_state(
        params, book, fundamental_usd, debt_price_usd, liquidity_frac, gas_gwei,
        backend, dtype, device,
    )  # fmt: skip


def concat_books(books: list[dict]) -> dict:
    """One book whose envs are those of ``books`` (each from :func:`draw_book`) in order."""
    if len(books) == 1:
        return books[0]
    return {k: np.concatenate([b[k] for b in books], axis=0) for k in books[0]}


def _as_state_array(a: Any) -> np.ndarray:
    """:func:`levgym.engine.backend.make_converter`'s numpy float64 conversion, without the copy
    of an array that is float64 already."""
    a = np.asarray(a)
    return a if a.dtype.kind != "f" or a.dtype == np.float64 else a.astype(np.float64)


def _per_env(x: Any, e: int) -> np.ndarray:
    """A new float64 ``[e]`` array of ``x`` (a number or ``[e]`` values): what
    ``np.broadcast_to(np.asarray(x, float64), (e,)).copy()`` gives, in one call for the common
    cases (an episode start makes dozens)."""
    a = np.array(x, dtype=np.float64)  # a copy
    if a.shape == (e,):
        return a
    out = np.empty(e)
    out[...] = a  # broadcasts, or raises as broadcast_to would
    return out


def build_state(
    params: EngineParams,
    book: dict,
    fundamental_usd: np.ndarray,
    debt_price_usd: np.ndarray,
    liquidity_frac: np.ndarray,
    gas_gwei: np.ndarray,
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
) -> State:
    """The initial state of a drawn book (:func:`draw_book`, or books joined with
    :func:`concat_books`) at the first driver row. Every value is computed per env (elementwise
    or a sum over that env's positions), so env ``i`` of a joined build equals a build of its
    book alone."""
    p, m, b = params.protocol, params.market, params.borrowers
    e, n = book["weights"].shape
    f0, dp0, liq0, gas0 = (
        _per_env(x, e) for x in (fundamental_usd, debt_price_usd, liquidity_frac, gas_gwei)
    )

    active = book["active"]
    w = book["weights"]
    scale = b.total_collateral_usd / (w * active).sum(axis=1, keepdims=True)
    template_coll = w * scale / f0[:, None]
    hf_eff = np.maximum(book["hf"], p.liquidation_threshold / p.ltv)
    coll = np.where(active, template_coll, 0.0)
    debt = coll * f0[:, None] * p.liquidation_threshold / (hf_eff * dp0[:, None])
    total_debt = debt.sum(axis=1)

    price_debt_units = f0 / dp0
    pool_debt = np.full(e, m.pool_depth_usd) / dp0
    pool_asset = pool_debt / price_debt_units
    liquidity_base = np.sqrt(pool_asset * pool_debt)
    pool_asset, pool_debt = pool_asset * liq0, pool_debt * liq0

    # every array below is made here (or drawn for this book) and used once: on numpy float64
    # they are the state's arrays as they are, not copies
    conv = (
        _as_state_array
        if backend in ("numpy", "numba") and dtype == "float64"
        else make_converter(backend, dtype, device)
    )
    zeros = np.zeros(e)
    arrays: dict[str, Any] = {
        "collateral_asset": coll,
        "debt_usd": debt,
        "active": active,
        "kind": book["kind"],
        "trigger_hf": book["trigger"],
        "react_prob": book["react"],
        "target_hf": book["target"],
        "repays": book["repays"],
        "template_collateral_asset": template_coll,
        "template_hf": book["hf"],
        "ever_liquidated": np.zeros((e, n), dtype=bool),
        "fundamental_usd": f0,
        "pool_asset": pool_asset,
        "pool_debt": pool_debt,
        "pool_liquidity_base": liquidity_base,
        "oracle_usd": f0.copy(),
        "oracle_updated_h": zeros.copy(),
        "twap_buffer_usd": np.repeat(f0[:, None], m.twap_window_substeps, axis=1),
        "debt_price_usd": dp0,
        "gas_gwei": gas0,
        "keeper_cex_pending_asset": zeros.copy(),
        "supply_usd": total_debt / b.initial_utilization_frac,
        "reserves_usd": total_debt * b.initial_reserves_frac,
        "initial_collateral_asset": coll.sum(axis=1),
        "initial_debt_usd": total_debt,
        "fundamental_start_usd": f0.copy(),
        "fundamental_min_usd": f0.copy(),
        "pool_start_usd": f0.copy(),
        "pool_min_usd": f0.copy(),
    }
    for name in PARAM_FIELDS:
        arrays[name] = _per_env(float(getattr(p, name)), e)
    for name in COUNTER_FIELDS:
        arrays[name] = zeros.copy()
    converted = {k: conv(v) for k, v in arrays.items()}
    return State(time_h=0.0, substep_index=0, **converted)


_RESET_NOW = tuple(f.name for f in STATE_SCHEMA if f.reset == "now")


def restarted(fresh: State, time_h: float) -> dict[str, Any]:
    """The values that differ when the envs of ``fresh`` start at ``time_h`` on a shared clock
    instead of at 0: fields whose schema says ``reset="now"`` (the oracle's update time) take
    ``time_h``, so the fresh envs' heartbeat counts from now. The rest of ``fresh`` is taken
    as it is (:func:`reset_envs`, and a packed runner writing the fresh rows in place)."""
    return {name: getattr(fresh, name) * 0.0 + time_h for name in _RESET_NOW}


def reset_envs(state: State, fresh: State, env_mask: Any) -> State:
    """Replace the envs of ``env_mask`` (bool ``[E]``) with those of ``fresh`` (same shapes), e.g.
    for autoreset in a vector env. The clock is shared (:func:`restarted`)."""
    xp = namespace(state.collateral_asset)
    now = restarted(fresh, state.time_h)

    def merge(old: Any, f: Any) -> Any:
        new = now[f.name] if f.name in now else getattr(fresh, f.name)
        mask = env_mask
        for _ in range(old.ndim - 1):
            mask = mask[..., None]
        return xp.where(mask, new, old)

    return state.map_arrays(merge)


def concat_states(states: list[State]) -> State:
    """One state whose envs are those of ``states`` in order (numpy; the clock of the first)."""
    if len(states) == 1:
        return states[0]
    return states[0].map_arrays(
        lambda a, f: np.concatenate([getattr(s, f.name) for s in states], axis=0)
    )


def scatter_rows(state: State, rows: State, idx: np.ndarray) -> State:
    """A new state: ``state`` with envs ``idx`` replaced by the envs of ``rows`` (numpy; the
    arrays of ``state`` are copied, never written, since earlier results may still hold them)."""

    def put(old: Any, f: Any) -> Any:
        new = old.copy()
        new[idx] = getattr(rows, f.name)
        return new

    return state.map_arrays(put)


def from_book(
    params: EngineParams,
    collateral_asset: np.ndarray,
    debt_usd: np.ndarray,
    fundamental_usd: np.ndarray | float,
    kind: np.ndarray | None = None,
    debt_price_usd: np.ndarray | float = 1.0,
    gas_gwei: np.ndarray | float = 30.0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: str | None = None,
) -> State:
    """A state holding exactly the given book (``[E, N]`` collateral and debt; zero collateral
    means a free slot). Behaviour attributes come from the usual draw (seed 0) unless ``kind``
    is given; ``kind=None`` makes every slot passive. Used to build cascades by hand."""
    coll = np.asarray(collateral_asset, dtype=np.float64)
    debt = np.asarray(debt_usd, dtype=np.float64)
    if coll.ndim != 2 or coll.shape != debt.shape:
        raise ValueError(
            f"collateral_asset {coll.shape} and debt_usd {debt.shape} must both be [E, N]"
        )
    if np.any(coll < 0) or np.any(debt < 0):
        raise ValueError("collateral_asset and debt_usd must be >= 0")
    e, n = coll.shape
    f0 = np.broadcast_to(np.asarray(fundamental_usd, dtype=np.float64), (e,))
    dp0 = np.broadcast_to(np.asarray(debt_price_usd, dtype=np.float64), (e,))
    base = init_state(
        params, e, n, 0, f0, dp0, np.ones(e), np.broadcast_to(np.asarray(gas_gwei, float), (e,))
    )
    kinds = np.zeros((e, n), dtype=np.int64) if kind is None else np.asarray(kind, dtype=np.int64)
    active = coll > 0
    total_debt = debt.sum(axis=1)
    b = params.borrowers
    conv = make_converter(backend, dtype, device)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    fields.update(
        collateral_asset=coll,
        debt_usd=debt,
        active=active,
        kind=kinds,
        template_collateral_asset=np.where(active, coll, base.template_collateral_asset),
        supply_usd=np.maximum(total_debt / b.initial_utilization_frac, 1e-12),
        reserves_usd=total_debt * b.initial_reserves_frac,
        initial_collateral_asset=coll.sum(axis=1),
        initial_debt_usd=total_debt,
    )
    out = {k: (v if isinstance(v, int | float) else conv(v)) for k, v in fields.items()}
    return State(**out)
