"""The GPU check in one go: parity of the torch path on a device with the CPU engine, and its speed.

``python -m levgym.bench.cuda`` (or ``levgym bench-cuda``) on a machine with a CUDA GPU:

1. **Parity**: on ``perfect_storm``, ``crash_oracle_attack``, ``dai_depeg`` and ``oracle_frozen``
   the same markets (one runner seed, :mod:`levgym.market`) are stepped by the torch engine on
   the device (the masked cascade: no host synchronisation) and by the fused numba kernel on the
   CPU. Liquidations and cascade rounds must be equal per env and substep, and every counter of
   the final state within 1e-9 relative (1e-6 absolute near zero).
2. **Speed**: position-updates per second of the device path against the fused kernel, by
   batch size, on the bench's standard shock (:func:`levgym.bench.engine.make_workload`).

It prints one table per part and, with ``--json``, one JSON object; it exits 1 when parity fails.
``--device cpu`` runs the same checks on CPU tensors (what the tests do where no GPU is lent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from ..engine.params import EngineParams
from ..engine.schema import COUNTER_FIELDS
from ..market import run_markets

PARITY_SCENARIOS = ("perfect_storm", "crash_oracle_attack", "dai_depeg", "oracle_frozen")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-6))


def parity(device: str, num_envs: int, num_positions: int, substeps: int) -> list[dict[str, Any]]:
    """Step the same markets on torch (``device``) and numba; one row per scenario."""
    rows = []
    params = EngineParams()
    for name in PARITY_SCENARIOS:
        kw = dict(scenario=name, dtype="float64")
        gpu = run_markets(
            params, num_envs, num_positions, substeps, 0, backend="torch", device=device, **kw
        )
        cpu = run_markets(params, num_envs, num_positions, substeps, 0, backend="numba", **kw)
        liq_equal, rounds_equal = True, True
        for _ in range(substeps):
            r_gpu = gpu.substep()
            r_cpu = cpu.substep()
            rounds_equal &= bool(np.array_equal(r_gpu.detach().cpu().numpy(), r_cpu))
            liq_equal &= bool(
                np.array_equal(
                    gpu.state.liquidations.detach().cpu().numpy(), cpu.state.liquidations
                )
            )
        bad = [
            f
            for f in COUNTER_FIELDS + ("pool_asset", "pool_debt", "oracle_usd", "supply_usd")
            if not _close(getattr(gpu.state, f).detach().cpu().numpy(), getattr(cpu.state, f))
        ]
        rows.append(
            {
                "scenario": name,
                "liquidations": float(np.sum(cpu.state.liquidations)),
                "liquidations_equal": liq_equal,
                "rounds_equal": rounds_equal,
                "fields_off": bad,
                "ok": liq_equal and rounds_equal and not bad,
            }
        )
    return rows


def speed(device: str, sizes: list[tuple[int, int]], substeps: int) -> list[dict[str, Any]]:
    """Position-updates per second of the device path and of the fused kernel, by size."""
    from ..engine.step import substep_masked
    from .engine import BackendSpec, available_backends, make_workload, run_substeps

    numba = {s.name: s for s in available_backends(["numba"])}["numba"]
    dev = BackendSpec(f"torch-{device}", "torch", device, substep_masked)
    out = []
    for e, n in sizes:
        work = make_workload(e, n, substeps, seed=1)
        row: dict[str, Any] = {"num_envs": e, "positions": n}
        for spec in (dev, numba):
            seconds, updates, _, _ = run_substeps(spec, work, substeps, repeats=3)
            row[f"{spec.name}_updates_per_s"] = updates / seconds if seconds > 0 else float("inf")
        row["speedup_vs_numba"] = row[f"{dev.name}_updates_per_s"] / row["numba_updates_per_s"]
        out.append(row)
    return out


def run_check(device: str = "cuda", quick: bool = False) -> dict[str, Any]:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available here; allowed cpu or a CUDA device")
    t0 = time.perf_counter()
    e, n, s = (2, 24, 144) if quick else (64, 256, 144)
    sizes = [(16, 64)] if quick else [(256, 256), (1024, 1024), (4096, 4096)]
    result = {
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "parity": parity(device, e, n, s),
        "speed": speed(device, sizes, 3 if quick else 12),
    }
    result["parity_ok"] = all(r["ok"] for r in result["parity"])
    result["seconds"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m levgym.bench.cuda", description=__doc__.split("\n")[0]
    )
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        result = run_check(args.device, args.quick)
    except ValueError as exc:
        print(f"levgym bench cuda: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"device {result['device']} ({result['device_name']}), {result['seconds']:.0f} s")
        print("parity (torch on the device vs the fused numba kernel):")
        for r in result["parity"]:
            status = "ok" if r["ok"] else f"OFF {r['fields_off']}"
            print(f"  {r['scenario']:<22} liquidations {r['liquidations']:>8.0f}  {status}")
        print("speed (position-updates/s):")
        for r in result["speed"]:
            keys = [k for k in r if k.endswith("_updates_per_s")]
            cells = "  ".join(f"{k.removesuffix('_updates_per_s')} {r[k]:,.0f}" for k in keys)
            print(
                f"  {r['num_envs']} x {r['positions']}: {cells}  ({r['speedup_vs_numba']:.1f}x numba)"
            )
    return 0 if result["parity_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
