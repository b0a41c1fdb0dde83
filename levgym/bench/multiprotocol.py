"""`levgym bench`: the multi-protocol step's position-updates per second with P = 3 protocols
next to P = 1, at the same total positions (:mod:`levgym.engine.multiprotocol`).

Both rows step the same fundamentals (the ``multiasset_2021`` paths with the volatile assets
falling :data:`CRASH_PER_SUBSTEP` per substep, so every substep has cascade work) on shared
pools, per-protocol margin: P = 1 is ``aave_v3_ethereum`` with ``N`` slots per env, P = 3 is
the three presets with ``N / 3`` slots each. A position-update is one position slot stepped
through one substep (``E * N * substeps / seconds``); one warm-up substep (numba compilation)
is not timed, and each row is the best of ``repeats`` timed runs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

P1 = ("aave_v3_ethereum",)
P3 = ("aave_v3_ethereum", "compound_v3_usdc", "morpho_wsteth_usdc")
CRASH_PER_SUBSTEP = 0.02
"""Fall of WETH, wstETH and WBTC per substep on top of the paths (cascade work every substep)."""


def _fundamentals(num_envs: int, substeps: int, seed: int) -> np.ndarray:
    from ..simulation_multiprotocol import market_paths

    f, _ = market_paths(P3, "multiasset_2021", num_envs, substeps + 1, seed)
    from ..engine.protocol_presets import protocol_preset

    syms = protocol_preset(P3[0]).reserves.symbols
    vol = np.array([s in ("WETH", "wstETH", "WBTC") for s in syms])
    fall = np.where(vol, 1.0 - CRASH_PER_SUBSTEP, 1.0) ** np.arange(f.shape[0])[:, None, None]
    return f * fall


def time_protocols(
    names: tuple[str, ...], num_envs: int, slots: int, substeps: int, repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """One row: ``names`` with ``slots`` per protocol per env, ``substeps`` timed substeps."""
    from ..engine import multiprotocol as MP
    from ..simulation_multiprotocol import build

    params = MP.MultiParams()
    f = _fundamentals(num_envs, substeps, seed)
    protocols, s, d, r, rb, tg = build(names, num_envs, slots, seed, f[0], params)
    state0 = MP.init_state(protocols, params, s, d, r, f[0], rb, tg)
    MP.substep(state0, f[1], protocols, params)  # warm-up (numba compilation)
    best, rounds, liq = float("inf"), 0, 0.0
    for _ in range(max(1, repeats)):
        state = state0
        t0 = time.perf_counter()
        total_rounds = 0
        for t in range(2, substeps + 2):
            state, rr = MP.substep(state, f[t], protocols, params)
            total_rounds += int(rr.sum())
        best = min(best, time.perf_counter() - t0)
        rounds = total_rounds
        liq = float(sum(b.liquidations.sum() for b in state.books))
    positions = slots * len(names)
    return {
        "protocols": len(names),
        "names": list(names),
        "envs": num_envs,
        "positions": positions,
        "substeps": substeps,
        "seconds": best,
        "position_updates_per_s": num_envs * positions * substeps / best,
        "cascade_rounds_per_env_substep": rounds / (num_envs * substeps),
        "liquidations": liq,
    }


def multiprotocol_rows(
    num_envs: int, total_positions: int, substeps: int, repeats: int = 3
) -> dict[str, Any]:
    """The P = 1 and P = 3 rows at ``total_positions`` per env (a multiple of 3), and the ratio
    of their position-updates per second."""
    if total_positions % len(P3):
        raise ValueError(
            f"total_positions={total_positions} is not allowed; allowed a multiple of {len(P3)}"
        )
    one = time_protocols(P1, num_envs, total_positions, substeps, repeats)
    three = time_protocols(P3, num_envs, total_positions // len(P3), substeps, repeats)
    return {
        "rows": [one, three],
        "p3_over_p1": three["position_updates_per_s"] / one["position_updates_per_s"],
        "note": "multi-protocol step (levgym.engine.multiprotocol), numpy + numba keeper pass, "
        "shared pools, per-protocol margin; same total positions per env",
    }


def section_lines(result: dict[str, Any], markdown: bool, table: Any, rate: Any) -> list[str]:
    """The report's lines for ``result['multiprotocol']`` (``table``, ``rate``: the report's
    helpers)."""
    mp = result["multiprotocol"]
    rows = [
        [
            str(r["protocols"]),
            f"{r['envs']}x{r['positions']}",
            f"{r['seconds'] / r['substeps'] * 1e3:.2f}",
            rate(r["position_updates_per_s"]),
            f"{r['cascade_rounds_per_env_substep']:.2f}",
        ]
        for r in mp["rows"]
    ]
    lines = table(
        ["protocols", "envs x positions", "ms / substep", "position-updates / s", "rounds / env-substep"],
        rows,
        markdown,
    )  # fmt: skip
    return lines + ["", f"P = 3 over P = 1: {mp['p3_over_p1']:.2f}x ({mp['note']})."]
