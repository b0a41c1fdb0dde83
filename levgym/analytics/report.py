"""Stress-test report files: per-path CSV and the Markdown summary (written atomically)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_text
from ..results import checked_columns
from .montecarlo import PATH_COLUMNS

INT_COLUMNS = {
    "path",
    "batch",
    "batch_seed",
    "liquidations",
    "initial_positions",
    "positions_liquidated",
    "cascade_rounds_max",
}


def write_paths_csv(path: str | os.PathLike, per_path: dict[str, np.ndarray]) -> Path:
    """One row per path with the columns of ``PATH_COLUMNS``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(checked_columns("paths.csv", PATH_COLUMNS))
    cols = [per_path[c] for c in PATH_COLUMNS]
    for i in range(cols[0].shape[0]):
        w.writerow(
            [
                int(c[i]) if name in INT_COLUMNS else f"{float(c[i]):.10g}"
                for name, c in zip(PATH_COLUMNS, cols, strict=True)
            ]
        )
    return write_text(path, buf.getvalue())


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _pct(x: float) -> str:
    return f"{100 * x:.3f}%"


def headline_rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(estimate, USD +- SE, share of TVL +- SE, key) rows of the headline table."""
    rows = []
    for label, key in (
        ("VaR 95% of bad debt", "var_95_bad_debt"),
        ("VaR 99% of bad debt", "var_99_bad_debt"),
        ("CVaR 95% of bad debt", "cvar_95_bad_debt"),
        ("CVaR 99% of bad debt", "cvar_99_bad_debt"),
        ("expected bad debt", "mean_bad_debt"),
        ("liquidations at risk 95%", "lar_95_liquidated"),
        ("liquidations at risk 99%", "lar_99_liquidated"),
        ("expected liquidated debt", "mean_liquidated"),
    ):
        rows.append(
            (
                label,
                f"{_usd(s[key + '_usd'])} ± {_usd(s[key + '_usd_se'])}",
                f"{_pct(s[key + '_tvl_frac'])} ± {_pct(s[key + '_tvl_frac_se'])}",
                f"{key}_usd",
            )
        )
    return rows


def _amp(s: dict[str, Any]) -> str:
    if not s.get("amplification_paths"):
        return "no path fell 2% or more"
    return (
        f"{s['amplification_mean']:.3f} ± {s['amplification_mean_se']:.3f} / "
        f"{s['amplification_p50']:.3f} / {s['amplification_p95']:.3f} ± "
        f"{s['amplification_p95_se']:.3f} / {s['amplification_p99']:.3f} ± "
        f"{s['amplification_p99_se']:.3f} / {s['amplification_max']:.3f} "
        f"({s['amplification_paths']} paths)"
    )


def other_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    lo, hi = s["prob_bad_debt_ci95"]
    return [
        (
            "P(any bad debt)",
            f"{s['prob_bad_debt']:.4f} ± {s['prob_bad_debt_se']:.4f} (Wilson 95%: {lo:.4f}-{hi:.4f})",
        ),
        (
            "P(a position is liquidated)",
            f"{s['prob_liquidation']:.4f} ± {s['prob_liquidation_se']:.4f}",
        ),
        (
            "P(any liquidation)",
            f"{s['prob_any_liquidation']:.4f} ± {s['prob_any_liquidation_se']:.4f}",
        ),
        ("cascade amplification (paths down >= 2%): mean / p50 / p95 / p99 / max", _amp(s)),
        (
            "expected protocol revenue",
            f"{_usd(s['mean_revenue_usd'])} ± {_usd(s['mean_revenue_usd_se'])}",
        ),
        ("TVL (initial collateral value)", _usd(s["tvl_usd"])),
    ]


def sensitivity_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| input | metric | base value | bump | method | value | delta per 0.01 | gamma per 0.01² |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = _usd if r["metric"].endswith("_usd") else (lambda v: f"{v:.5f}")
        gamma = (
            "-"
            if r["gamma_per_unit2"] is None
            else f"{fmt(r['gamma_per_unit2'])} ± {fmt(r['gamma_per_unit2_se'])}"
        )
        lines.append(
            f"| {r['input']} | {r['metric']} | {r['base_input']:g} | ±{r['bump']:g} | {r['method']} | "
            f"{fmt(r['value'])} | {fmt(r['delta_per_unit'])} ± {fmt(r['delta_per_unit_se'])} | {gamma} |"
        )
    return "\n".join(lines)


def sweep_table(sweep: dict[str, Any]) -> str:
    """The grid as a Markdown table; the preset (base) row last."""
    names = [a["key"] for a in sweep["axes"]]
    cols = (
        "VaR 95% | VaR 99% ± SE | VaR 99% - preset ± paired SE | CVaR 99% | P(bad debt) | "
        "P(liq) | frontier x | on frontier"
    )
    lines = ["| " + " | ".join(names) + " | " + cols + " |", "|" + "---|" * (len(names) + 8)]
    for p in [*sweep["points"], {**sweep["base"], "is_base": True}]:
        coords = " | ".join(f"{p['params'][n]:g}" for n in names)
        tag = " (preset)" if p.get("is_base") else ""
        if "var_99_minus_base_usd" in p:
            diff = f"{_usd(p['var_99_minus_base_usd'])} ± {_usd(p['var_99_minus_base_usd_se'])}"
        else:
            diff = "-"
        lines.append(
            f"| {coords}{tag} | {_usd(p['var_95_bad_debt_usd'])} | "
            f"{_usd(p['var_99_bad_debt_usd'])} ± {_usd(p['var_99_bad_debt_usd_se'])} | {diff} | "
            f"{_usd(p['cvar_99_bad_debt_usd'])} | {p['prob_bad_debt']:.3f} | "
            f"{p['prob_liquidation']:.4f} | {_usd(p['frontier_x'])} | "
            f"{'yes' if p['on_frontier'] else ''} |"
        )
    return "\n".join(lines)


def summary_markdown(summary: dict[str, Any], files: dict[str, str]) -> str:
    """The Markdown report: the exact command, the setup, the estimates, tables and plots."""
    s = summary
    out = [
        "# levgym stress test",
        "",
        "Produced by:",
        "",
        "```",
        s["command"],
        "```",
        "",
        f"Scenario `{s['scenario']}`, preset `{s['preset']}`, {s['paths']} paths x {s['positions']} positions, "
        f"horizon {s['horizon_hours']:g} h, seed {s['seed']}, batch size {s['batch_size']}, backend {s['backend']}. "
        f"Bad debt per path: {s['bad_debt_definition_text']}. Standard errors: {s['se_method']} "
        "(see docs/stress.md: estimators and standard errors). Run time "
        f"{s['wall_time_s']:.1f} s.",
        "",
        "| estimate | USD ± SE | share of TVL ± SE | JSON key |",
        "|---|---|---|---|",
    ]
    for label, usd, frac, key in headline_rows(s):
        out.append(f"| {label} | {usd} | {frac} | `{key}` |")
    out += ["", "| quantity | value |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in other_rows(s)]
    if s.get("sensitivities"):
        out += [
            "",
            "## Sensitivities (common random numbers)",
            "",
            sensitivity_table(s["sensitivities"]),
        ]
    if s.get("sweep"):
        sw = s["sweep"]
        out += [
            "",
            f"## Sweep (book `{sw['book']}`, frontier x = {sw['frontier_x_metric']})",
            "",
            sweep_table(sw),
        ]
        if sw["skipped"]:
            out += ["", "Skipped grid points:", ""]
            out += [f"- {p['params']}: {p['reason']}" for p in sw["skipped"]]
    out += ["", "## Files", ""]
    out += [f"- {label}: `{name}`" for label, name in files.items()]
    for label, name in files.items():
        if name.endswith(".png"):
            out += ["", f"![{label}]({name})"]
    return "\n".join(out) + "\n"
