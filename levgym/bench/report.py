"""Text and Markdown renderings of a `levgym bench` result (BENCHMARK.md is generated here)."""

from __future__ import annotations

from typing import Any


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "nan"
        if abs(x) >= 1e4 or (abs(x) >= 100 and x.is_integer()):
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:,.1f}"
        return f"{x:.{digits}g}"
    return str(x)


def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.1f}"


def _table(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def sections(result: dict[str, Any], markdown: bool) -> list[tuple[str, list[str]]]:
    """(title, lines) of every part of the report."""
    out: list[tuple[str, list[str]]] = []
    ref = result.get("reference_case")
    if ref:
        c = ref["case"]
        lines = [
            f"Same work on every backend: {c['num_envs']} envs x {c['positions']} positions x "
            f"{c['substeps']} substeps of `{c['scenario']}` ({_num(c['cascade_rounds'])} cascade "
            f"rounds, {_num(c['liquidations'])} liquidations); reference loop "
            f"{ref['reference_s']:.3f} s.",
            "",
        ]
        rows = [
            [
                name,
                f"{v['seconds'] * 1e3:.2f}",
                f"{v['speedup']:.1f}x",
                _num(v["agrees_with_reference"]),
            ]
            for name, v in ref["backends"].items()
        ]
        lines += _table(["backend", "ms", "speed-up vs reference", "same result"], rows, markdown)
        out.append(("Batched engine vs the reference loop", lines))
    rows_t = result.get("throughput", [])
    if rows_t:
        rows = [
            [
                r["backend"],
                f"{r['envs']}x{r['positions']}",
                f"{r['ms_per_substep']:.3f}",
                _rate(r["position_updates_per_s"]),
                f"{r['cascade_rounds_per_env_substep']:.2f}",
            ]
            for r in rows_t
        ]
        lines = _table(
            [
                "backend",
                "envs x positions",
                "ms / substep",
                "position-updates / s",
                "rounds / env-substep",
            ],
            rows,
            markdown,
        )
        skipped = result.get("throughput_skipped", [])
        if skipped:
            lines += [
                "",
                "Not run: "
                + ", ".join(f"{s['backend']} {s['size']} ({s['reason']})" for s in skipped),
            ]
        out.append(("Position-updates per second", lines))
    cm = result.get("cross_margin")
    if cm:
        out.append(("Cross-margin market step (K = 4, J = 2)", cross_margin_lines(cm, markdown)))
    prof = result.get("profile")
    if prof:
        rows = [[p["function"], _num(p["calls"]), f"{p['own_share']:.0%}"] for p in prof["top"]]
        lines = [
            f"cProfile of the array engine ({prof['case']}, {prof['seconds']:.2f} s of own time); "
            "the fused kernel removes these costs: the many full-size temporaries per stage, the "
            "sort and gathers of every cascade round over all envs, rounds for envs whose cascade "
            "has stopped, and Python between array operations.",
            "",
        ]
        lines += _table(["function", "calls", "own time"], rows, markdown)
        out.append(("Where the array engine spends its time", lines))
    bb = result.get("bandwidth_bound")
    if bb:
        m = bb["model"]
        bwd = bb["copy_bandwidth"]
        lines = [
            f"Copy bandwidth (read + write) measured: {bwd['bandwidth_gb_per_s']:.1f} GB/s "
            f"(numpy copy {bwd['numpy_copy_gb_per_s']:.1f} GB/s"
            + (
                f", numba parallel copy {bwd['numba_parallel_copy_gb_per_s']:.1f} GB/s"
                if "numba_parallel_copy_gb_per_s" in bwd
                else ""
            )
            + f", {bwd['array_mib']:.0f} MiB arrays)"
            + (
                f"; GPU copy {bb['gpu_copy_gb_per_s']:.0f} GB/s"
                if bb.get("gpu_copy_gb_per_s")
                else ""
            )
            + ".",
            f"Bytes a fused kernel must move: {m['bytes_per_position_pass']} per position per substep "
            f"plus {m['bytes_per_position_round']} per position per further cascade round ({m['note']}).",
            "",
        ]
        rows = [
            [
                name,
                v["size"],
                _rate(v["measured_position_updates_per_s"]),
                _rate(v["bound_position_updates_per_s"]),
                f"{v['times_slower_than_bound']:.1f}x",
            ]
            for name, v in bb["largest_case"].items()
        ]
        lines += _table(
            ["backend", "largest case", "measured / s", "bandwidth bound / s", "from bound"],
            rows,
            markdown,
        )
        out.append(("Memory-bandwidth bound (largest case per backend)", lines))
    if result.get("multiprotocol"):
        from .multiprotocol import section_lines

        out.append(
            (
                "Several protocols: P = 3 next to P = 1",
                section_lines(result, markdown, _table, _rate),
            )
        )
    envs = result.get("env_steps_per_s", {})
    if envs:
        cfg = result.get("env_config", {})
        lines = [
            f"{cfg.get('num_envs')} envs x {cfg.get('positions')} positions, one fixed batch of random actions.",
            "",
        ]
        rows = []
        for d in result.get("env_details", []):
            rows.append(
                [
                    d["env"],
                    d["via"],
                    d["backend"],
                    _num(d["env_steps_per_s"]),
                    "-" if d.get("engine_share") is None else f"{d['engine_share']:.0%}",
                ]
            )
        lines += _table(
            ["env", "via", "engine backend", "env-steps / s", "time in engine"], rows, markdown
        )
        fk = result.get("env_fused_kernel")
        if fk:
            proj = fk["projected_env_steps_per_s"]
            envs_txt = ", ".join(
                f"{k} {_num(v)}" for k, v in proj.items() if k != "kernel_ms_per_substep"
            )
            lines += [
                "",
                f"Note: {fk['note']}. Projection with the fused kernel "
                f"({proj['kernel_ms_per_substep']:.3f} ms per substep at this batch size): "
                f"{envs_txt} env-steps / s (computed from the measured time outside the engine, "
                "not measured).",
            ]
        ma = result.get("multiagent")
        if ma:
            ratio = ma.get("ratio_to_governance")
            lines += [
                "",
                f"Multi-agent market (`levgym.multiagent.MultiAgentMarkets`, a governor, "
                f"{ma['liquidators']} agent liquidators and a market maker per market, random "
                f"actions): {_num(ma['env_steps_per_s'])} env-steps / s at {ma['num_envs']} "
                f"markets x {ma['positions']} positions on {ma['backend']}"
                + ("" if ratio is None else f", {ratio:.2f} x Governance-v0's rate in this run")
                + ".",
            ]
        out.append(("Environment steps per second", lines))
    elif result.get("envs_missing"):
        out.append(("Environment steps per second", [result["envs_missing"]]))
    workloads = result.get("env_workloads", [])
    if workloads:
        rows = [
            [
                w["env"],
                f"{w['via']}, {w['num_envs']} env{'s' if w['num_envs'] > 1 else ''}",
                str(w["positions"]),
                w["actions"],
                w["backend"],
                _num(w["env_steps_per_s"]),
                f"{w['steps']} x {w['num_envs']}",
                f"{w['cascade_rounds']:,.0f} ({w['cascade_rounds_per_env_substep']:.2f})",
                f"{w['outside_kernel_share']:.0%}" if "outside_kernel_share" in w else "-",
            ]
            for w in workloads
        ]
        lines = [
            "Each row names its workload: the single env of `gym.make` (reset by the loop when an "
            "episode ends) or a vector env of `gym.make_vec` (same-step autoreset); zero actions or "
            "random actions drawn before the clock starts; and the cascade rounds the engine ran "
            "in the timed steps (sum over envs and substeps, and per env-substep), so the cost of "
            "cascades can be told from the Python around the kernel; and the share of the timed "
            "steps spent outside the engine's calls (the step kernel with backend numba): the "
            "Python around it, episode starts included.",
            "",
        ]
        lines += _table(
            [
                "env",
                "via",
                "positions",
                "actions",
                "engine backend",
                "env-steps / s",
                "timed steps x envs",
                "cascade rounds (per env-substep)",
                "outside the kernel",
            ],
            rows,
            markdown,
        )
        out.append(("Environment steps per second by workload", lines))
    starts = result.get("episode_starts", [])
    if starts:
        rows = [
            [
                r["env"] + (f" ({r['pools']})" if "pools" in r else ""),
                str(r["num_envs"]),
                str(r["positions"]),
                r["backend"],
                f"{r['us_per_env']:.1f}",
            ]
            for r in starts
        ]
        lines = [
            "An episode start as the env does it (`reset` of every env: the scenario path and the "
            "book drawn, the state built, the first observation), best of "
            f"{starts[0]['repeats']}, per env of the batch. A row with pools (`path_pool`, "
            "`book_pool`: docs/performance.md) is timed once its pools are filled (the second "
            "pass of `episode_start_cost(..., cached=True)`).",
            "",
        ]
        lines += _table(
            ["env", "envs", "positions", "engine backend", "us per env"], rows, markdown
        )
        floor = result.get("episode_start_floor")
        if floor:
            lines += ["", *_start_floor_lines(floor)]
        out.append(("Episode starts", lines))
    peer = result.get("peer")
    if peer:
        lines = [
            f"The peer's single env ({peer['peer']}, its own `init_env`, random actions) and "
            f"levgym's ({peer['levgym_workload']}), {peer['steps']:,} timed steps each, in "
            f"{peer['rounds']} alternating rounds of this run (`levgym bench --peer DIR`, "
            "`levgym.bench.peer`); medians.",
            "",
        ]
        lines += _table(
            ["env", "env-steps / s", "runs"],
            [
                [
                    peer["peer"],
                    _num(peer["peer_env_steps_per_s"]),
                    ", ".join(_num(x) for x in peer["peer_runs"]),
                ],
                [
                    "levgym Governance-v0",
                    _num(peer["levgym_env_steps_per_s"]),
                    ", ".join(_num(x) for x in peer["levgym_runs"]),
                ],
            ],  # fmt: skip
            markdown,
        )
        lines += ["", f"levgym / peer: {peer['ratio']:.2f}x."]
        out.append(("Against the peer", lines))
    train = result.get("training_case", {})
    if train:
        rows = []
        for backend, t in train.items():
            c = t["config"]
            rows.append(
                [
                    backend,
                    f"{t['share']:.1%}",
                    f"{t['env_seconds']:.2f}",
                    f"{t['learn_seconds']:.2f}",
                    f"{c['num_envs']}x{c['positions']}, n_steps {c['n_steps']}, n_epochs {c['n_epochs']}, "
                    f"batch {c['batch_size']}, {c['total_timesteps']:,} steps",
                ]
            )
        lines = _table(
            ["env backend", "share in env", "env s", "learn s", "PPO run"], rows, markdown
        )
        lines += [
            "",
            "PPO runs on one torch thread (the fastest setting for its 64x64 MLP here), after "
            "one untimed reset of its env: a process's first writes into the driver bank fault "
            "its pages in, a one-time cost that moves between runs (docs/performance.md, round "
            "eight); `learn`'s own reset is timed.",
        ]
        for backend, t in train.items():
            if "projected_share_with_fused_kernel" in t:
                lines.append(
                    f"Projection: with the fused kernel as the env's engine the {backend} run's share "
                    f"would be {t['projected_share_with_fused_kernel']:.1%} (the env time scaled by the "
                    "projected env-step rate; not measured)."
                )
        out.append(("Share of PPO training time spent in the environment", lines))
    if result.get("ray"):
        from .ray import render as render_ray

        out.append(("Monte Carlo stress on Ray", render_ray(result["ray"], markdown)))
    targets = result.get("targets", {})
    if targets:
        rows = [
            [
                name,
                t["target"],
                f"{_num(t['value'])} ({t['best_backend']})",
                "n/a (quick)" if t["met"] is None else ("met" if t["met"] else "missed"),
            ]
            for name, t in targets.items()
        ]
        out.append(
            ("Targets", _table(["measure", "target", "best value", "status"], rows, markdown))
        )
    return out


def cross_margin_lines(cm: dict[str, Any], markdown: bool) -> list[str]:
    """The cross-margin section: both engines' rows, the ratio and the memory per slot."""
    c, one = cm["cross_margin"], cm["single_asset"]
    rows = []
    for label, r in (("single-asset (`step.substep`)", one), ("cross-margin (`portfolio_market.substep`)", c)):  # fmt: skip
        rows.append(
            [
                label,
                r["backend"],
                f"{r['envs']}x{r['positions']}",
                f"{r['ms_per_substep']:.3f}",
                _rate(r["position_updates_per_s"]),
                f"{r['cascade_rounds_per_env_substep']:.2f}",
                _num(r.get("liquidations")) if r.get("liquidations") is not None else "-",
                f"{r['bytes_per_slot']:.0f} ({r['state_bytes_per_slot']:.1f})",
            ]
        )
    lines = [
        f"Workload: {c['workload']}; reserves {', '.join(c['reserves'])} on the asset axis "
        "(`levgym.bench.portfolio`). Single-asset row: "
        f"{one['source']}. Bytes per slot: the state's arrays with one entry per position slot "
        "(in brackets: all state arrays over the slots), computed from the arrays.",
        "",
    ]
    lines += _table(
        [
            "engine",
            "backend",
            "envs x positions",
            "ms / substep",
            "position-updates / s",
            "rounds / env-substep",
            "liquidations",
            "bytes / slot",
        ],
        rows,
        markdown,
    )
    ratio = cm["ratio_to_single_asset"]
    line = (
        f"Ratio cross-margin / single-asset: {ratio:.2f} (target >= {cm['target_ratio']:.2f}: "
        + ("met" if ratio >= cm["target_ratio"] else "missed")
        + ")"
    )
    if cm["rounds"] > 1:
        line += (
            f"; the median of {cm['rounds']} alternating rounds (ratios "
            + ", ".join(f"{x:.2f}" for x in cm["ratios"])
            + "; median rates "
            + f"{_rate(cm['median_single_asset_position_updates_per_s'])} and "
            + f"{_rate(cm['median_cross_margin_position_updates_per_s'])})"
        )
    grid = cm.get("grid_single_asset_position_updates_per_s")
    if grid:
        line += (
            f". The throughput grid's single-asset row at this size in the same run: {_rate(grid)}"
        )
    lines += ["", line + "."]
    return lines


def machine_lines(m: dict[str, Any]) -> list[str]:
    items = [
        ("date", m.get("date_utc")),
        ("CPU", m.get("cpu_model")),
        ("cores (usable / logical)", f"{m.get('usable_cores')} / {m.get('logical_cores')}"),
        ("memory", f"{m.get('memory_total_gib')} GiB"),
        ("GPU", m.get("gpu") or "none"),
        ("load average at start (1, 5, 15 min)", m.get("load_average_1_5_15")),
        ("load average at end", m.get("load_average_at_end")),
        ("python", m.get("python")),
        ("numpy", m.get("numpy")),
        ("torch", f"{m.get('torch')} ({m.get('torch_threads')} threads)"),
        (
            "numba",
            f"{m.get('numba')} ({m.get('numba_threads')} threads, layer {m.get('numba_threading_layer')})",
        ),
        ("platform", m.get("platform")),
        ("git revision", m.get("git_revision")),
    ]
    return [f"- {k}: {v}" for k, v in items]


def render_table(result: dict[str, Any]) -> str:
    """The result as plain-text tables (what `levgym bench` prints without ``--json``)."""
    lines: list[str] = []
    m = result.get("machine", {})
    lines.append(
        f"levgym bench{' --quick' if result.get('quick') else ''}: {m.get('cpu_model')}, "
        f"{m.get('usable_cores')} cores, GPU {m.get('gpu') or 'none'}, load {m.get('load_average_1_5_15')}"
    )
    for title, body in sections(result, markdown=False):
        lines += ["", f"== {title} ==", *body]
    lines.append("")
    lines.append(f"({result.get('seconds', 0.0):.1f} s)")
    return "\n".join(lines)


def render_markdown(result: dict[str, Any], command: str = "levgym bench") -> str:
    """BENCHMARK.md: every table, the machine and how the numbers were made."""
    m = result.get("machine", {})
    lines = [
        "# levgym benchmark",
        "",
        f"Generated by `{command}` on {m.get('date_utc')}; do not edit by hand, run the command again.",
        "All numbers in one file come from one run on one machine, so the ratios between them are",
        "what to read; absolute rates depend on the machine and on what else it was running (see the",
        "load average).",
        "",
        "## Machine",
        "",
        *machine_lines(m),
    ]
    for title, body in sections(result, markdown=True):
        lines += ["", f"## {title}", "", *body]
    lines += [
        "",
        "## How the numbers are made",
        "",
        "- Engine timings run the `shock` scenario with the fall starting at once, from a book drawn",
        "  by `init_state`; only substep calls are timed (inputs are prepared beforehand), after one",
        "  untimed warm-up substep (numba compiles or loads its cache there); the best of several",
        "  runs is kept for short cases.",
        "- A position-update is one position processed once: per substep, each env's positions",
        "  count once for the market, interest and borrower stages and once more for each cascade",
        "  round in which that env liquidated.",
        "- Backends: `numpy` and `torch` run the array engine (`levgym.engine.step.substep`);",
        "  `torch-masked` the same with the cascade that never synchronises with the host",
        "  (`levgym.engine.step.substep_masked`, a fixed `max_cascade_rounds` with masks; the CUDA path);",
        "  `numba` the fused kernel (`levgym.engine.fused`, parallel over envs). All of them are",
        "  checked against the reference loop by `tests/engine/test_fused_parity.py`, and the",
        "  reference comparison above checks that each backend's final state equals the loop's.",
        "- Env steps: `levgym.envs.speed.env_steps_per_second` for the vector envs; the SB3 adapter",
        "  with `step_async` + `step_wait`. The training share wraps the adapter's `reset`,",
        "  `step_async` and `step_wait` with a timer during `PPO.learn`.",
        "- Workload rows: `levgym.bench.envs.workload_rate`, the median of several timed runs;",
        "  cascade rounds are the sum of the rounds the engine ran for every env in the timed",
        "  steps. With backend numba the envs step through their step kernels",
        "  (`levgym.envs.programs`: one call per env step); a workload's time is everything",
        "  `step` costs, kernel included.",
        "- Episode starts: `levgym.bench.envs.episode_start_cost`; the peer: `levgym.bench.peer`",
        "  (run only with `--peer DIR`, a checkout of the peer; none of its code ships with",
        "  levgym).",
        f"- Total run time: {result.get('seconds', 0.0):.0f} s.",
        "",
    ]
    return "\n".join(lines)


def _start_floor_lines(floor: dict) -> list[str]:
    """The default start's own draws (:func:`levgym.bench.envs.episode_start_floor`) in words."""
    return [
        f"A fresh {floor['env']} start's own draws, timed alone without the market runner "
        f"(`episode_start_floor`): the cheapest scenario path of its mixture "
        f"({floor['cheapest_scenario']}, {floor['num_substeps']:,} substeps) "
        f"{floor['path_us_min']:.1f} us (the mixture's mean {floor['path_us_mean']:.1f}); "
        f"its random numbers alone, one standard normal per substep from a fresh generator, "
        f"{floor['normals_us']:.1f} us; a {floor['positions']}-position book "
        f"{floor['book_us_per_env']:.1f} us per env of {floor['num_envs']}. A start that "
        f"draws a new path and book costs at least {floor['floor_us']:.1f} us per env "
        f"(the cheapest path and a book) before any Python around them.",
    ]


__all__ = ["render_markdown", "render_table", "sections"]
