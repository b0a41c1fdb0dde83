"""Monte Carlo stress of several lending protocols on shared markets: what ``levgym stress
--protocols a,b,c [--margin per_protocol|unified]`` computes.

One path is one env of :mod:`levgym.engine.multiprotocol`: the protocol presets' seeded books
(:func:`levgym.simulation_multiprotocol.build`) on 1 h rows of a multi-asset scenario, run as
``levgym simulate --protocols`` runs them. Batch ``b`` of a run with root seed ``s`` uses
``batch_seed(s, b)`` (:func:`levgym.analytics.montecarlo.batch_seed`) for its paths and books, and
the batches run through :func:`levgym.analytics.portfolio_stress.run_batches` (any executor, the
same numbers).

Every path is run three times on **the same price paths and the same books** (common random
numbers), the runs of :data:`RUNS`:

- ``shared_per_protocol`` and ``shared_unified``: shared pools, each margin mode;
- ``isolated``: isolated pools (each protocol against its own share of the depth,
  :func:`levgym.engine.multiprotocol.pool_shares`) under the chosen margin mode.

Outcomes (USD at each path's start fundamental prices; per protocol as in ``simulate
--protocols``: Aave deficits, Morpho socialised bad debt, Compound absorb shortfall):

- **systemic** bad debt = the sum over protocols, shared markets, chosen margin: VaR / CVaR at 95%
  and 99% with standard errors (:func:`levgym.analytics.risk.tail_block`, the single-asset
  stress's keys), and the Euler allocation of its CVaR to the protocols
  (:func:`levgym.analytics.portfolio_stress.cvar_contributions`: sums to the CVaR);
- **per protocol**: the same tail block of each protocol's bad debt (its TVL for ``_tvl_frac``);
- **contagion** = shared minus isolated, path by path: its mean with a paired standard error, per
  protocol, its share of the mean systemic bad debt (:data:`CONTAGION_SHARE_TEXT`) and its share of
  each CVaR (the Euler contribution of the contagion part to the shared CVaR: the tail is the
  shared run's, the part is shared minus isolated on those paths);
- **margin modes**: the tail block of each mode on the same paths, and ``unified_minus_per_protocol``:
  the paired differences of the mean (analytic standard error of the per-path difference) and of
  VaR / CVaR (difference of the two estimates on the same paths; standard error by a paired
  bootstrap that resamples paths, :data:`BOOTSTRAP_RESAMPLES` resamples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import multiprotocol as MP
from ..engine import portfolio_market as PM
from ..scenarios import multiprotocol as MPS
from .montecarlo import Progress, batch_seed
from .portfolio_stress import cvar_contributions, run_batches
from .risk import (
    LEVELS,
    _sample,
    check_se_method,
    expected_shortfall,
    mean_estimate,
    mean_se,
    probability_block,
    tail_block,
    value_at_risk,
)

DEFAULT_SCENARIO = "multiasset_2021"
ROW_H = 1.0
"""Hours per row (one multi-protocol substep per row)."""
RUNS = ("shared_per_protocol", "shared_unified", "isolated")
"""The three runs of every path (module docstring)."""
BOOTSTRAP_RESAMPLES = 400
BAD_DEBT_DEFINITION = "protocol_bad_debt_at_start_prices"
BAD_DEBT_TEXT = (
    "sum over protocols of the debt each wrote off during the horizon (Aave v3.3 deficits, Morpho "
    "socialised bad debt, Compound absorb shortfall beyond the collateral's oracle value), each "
    "debt reserve valued at its fundamental price at the start of the path"
)
CONTAGION_SHARE_TEXT = (
    "mean over paths of (systemic bad debt on shared markets - on isolated markets, same paths "
    "and books) divided by the mean systemic bad debt on shared markets; null when that is 0"
)


def _count(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"{name}={v!r} is out of range; allowed an integer >= 1")


@dataclass(frozen=True)
class MultiProtocolStressConfig:
    """Which protocols, which margin mode, how many paths of which scenario, in which batches."""

    protocols: tuple[str, ...]
    margin: str = "per_protocol"
    """The headline margin mode (one of :data:`levgym.engine.multiprotocol.MARGIN_MODES`): the
    systemic, per-protocol and contagion outcomes are under it; both modes are always run."""
    scenario: str = DEFAULT_SCENARIO
    paths: int = 1000
    positions: int = 64
    """Slots per protocol per path."""
    horizon_h: float = 24.0
    seed: int = 0
    batch_size: int = 250
    market: PM.PortfolioMarketParams | None = None
    """The market's parameters; None: the scenario's defaults
    (:meth:`levgym.scenarios.multiprotocol.MultiProtocolScenario.market_params`)."""

    def __post_init__(self) -> None:
        from ..simulation_multiprotocol import parse_protocols

        object.__setattr__(self, "protocols", parse_protocols(",".join(self.protocols)))
        MPS.get_scenario(self.scenario)
        MP.MultiParams(self.market_params, self.margin)  # checks the margin mode
        for name in ("paths", "positions", "batch_size"):
            _count(name, getattr(self, name))
        h = self.horizon_h
        if not (math.isfinite(h) and h > 0 and abs(h / ROW_H - round(h / ROW_H)) < 1e-9):
            raise ValueError(
                f"horizon_hours={h:g} is out of range; allowed a positive whole number of hours"
            )

    @property
    def market_params(self) -> PM.PortfolioMarketParams:
        return self.market or MPS.get_scenario(self.scenario).market_params()

    @property
    def steps(self) -> int:
        return int(round(self.horizon_h / ROW_H))

    @property
    def batches(self) -> list[int]:
        full, rest = divmod(self.paths, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])

    def params(self, run: str) -> MP.MultiParams:
        """The step's parameters of run ``run`` (one of :data:`RUNS`)."""
        if run == "isolated":
            return MP.MultiParams(self.market_params, self.margin, True)
        return MP.MultiParams(self.market_params, run.removeprefix("shared_"), False)

    @property
    def headline_run(self) -> int:
        return RUNS.index(f"shared_{self.margin}")


@dataclass
class MultiProtocolBatch:
    """One batch's per-path outcomes (leading ``[size]`` axis; ``R`` = :data:`RUNS`, ``P`` the
    protocols)."""

    batch: int
    bad_debt_usd: np.ndarray
    """``[size, R, P]``."""
    liquidated_usd: np.ndarray
    """``[size, R, P]``: debt repaid by liquidators (Compound: absorbed less shortfall)."""
    liquidations: np.ndarray
    """``[size, R, P]``: keeper calls and absorbs."""
    tvl_usd: np.ndarray
    """``[size, P]``: each protocol's initial collateral at start prices."""
    underwater_usd: np.ndarray
    """``[size, R, P]``: :func:`underwater_usd` of each protocol's book at the horizon."""


def underwater_usd(supply: np.ndarray, debt: np.ndarray, oracle_usd: np.ndarray) -> np.ndarray:
    """``[E]``: the shortfall of the positions ``[E, N, K]`` still open and under water, ``sum_n
    max(debt_n - supply_n, 0)`` valued at ``oracle_usd`` ``[E, K]`` (every supplied asset
    counts): debt no liquidation has reached yet that its collateral cannot cover (not in the
    bad debt, which is what was written off)."""
    p = oracle_usd[:, None, :]
    return np.maximum((debt * p).sum(-1) - (supply * p).sum(-1), 0.0).sum(-1)


def run_batch(config: MultiProtocolStressConfig, batch: int) -> MultiProtocolBatch:
    """Batch ``batch`` of ``config``: a pure function of its arguments."""
    from ..simulation_multiprotocol import market_paths, per_protocol_outcomes, run_market

    sizes = config.batches
    if not 0 <= batch < len(sizes):
        raise ValueError(f"batch={batch} is out of range; allowed 0..{len(sizes) - 1}")
    size, seed_b = sizes[batch], batch_seed(config.seed, batch)
    names = config.protocols
    f, drain = market_paths(names, config.scenario, size, config.steps, seed_b)
    start = f[0]
    shape = (size, len(RUNS), len(names))
    bad, liq, calls = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    tvl = np.zeros((size, len(names)))
    under = np.zeros(shape)
    for r, run in enumerate(RUNS):
        protocols, state, rb0 = run_market(
            names, f, size, config.positions, seed_b, config.params(run), drain
        )
        vals = per_protocol_outcomes(protocols, state, start, rb0)
        for p, (pr, b) in enumerate(zip(protocols, state.books, strict=True)):
            bad[:, r, p], liq[:, r, p], _ = vals[pr.name]
            calls[:, r, p] = b.liquidations  # keeper calls and Compound absorbs
            under[:, r, p] = underwater_usd(b.supply, b.debt, b.oracle_usd)
            tvl[:, p] = (b.counters["initial_collateral_asset"] * start).sum(axis=1)
    return MultiProtocolBatch(batch, bad, liq, calls, tvl, under)


def run_paths(
    config: MultiProtocolStressConfig, *, executor: Any = None, progress: Progress | None = None
) -> MultiProtocolBatch:
    """Every batch of ``config``, concatenated in batch order (``batch`` = -1)."""
    return run_batches(run_batch, config, MultiProtocolBatch, executor=executor, progress=progress)


def _block(bad: np.ndarray, liq: np.ndarray, tvl: np.ndarray, se_method: str) -> dict[str, Any]:
    """Tail, mean and probability of one bad-debt sample, and its mean liquidated debt."""
    out: dict[str, Any] = tail_block(
        bad, tvl, "var", "bad_debt", with_cvar=True, se_method=se_method
    )
    est = mean_estimate(bad, se_method)
    out["mean_bad_debt_usd"], out["mean_bad_debt_usd_se"] = est.value, est.se
    out.update(probability_block(bad > 0, "prob_bad_debt"))
    est = mean_estimate(liq, se_method)
    out["mean_liquidated_usd"], out["mean_liquidated_usd_se"] = est.value, est.se
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """``a - b`` of two losses on the same paths: the mean (analytic standard error of the
    per-path difference) and VaR / CVaR at :data:`LEVELS` (difference of the two estimates;
    standard error over ``resamples`` paired bootstrap resamples of the paths)."""
    a, b = _sample(a), _sample(b)
    if a.shape != b.shape:
        raise ValueError(f"paired samples have {a.size} and {b.size} paths; allowed the same")
    d = a - b
    out = {"mean_bad_debt_usd": float(d.mean()), "mean_bad_debt_usd_se": mean_se(d)}
    idx = np.random.default_rng(seed).integers(0, a.size, (resamples, a.size))
    for level in LEVELS:
        pct = round(level * 100)
        for kind, fn in (("var", value_at_risk), ("cvar", expected_shortfall)):
            key = f"{kind}_{pct}_bad_debt_usd"
            out[key] = fn(a, level) - fn(b, level)
            boot = [fn(a[i], level) - fn(b[i], level) for i in idx]
            out[f"{key}_se"] = float(np.std(boot, ddof=1))
    return out


def summarize(
    res: MultiProtocolBatch, config: MultiProtocolStressConfig, se_method: str = "analytic"
) -> dict[str, Any]:
    """The summary (module docstring); keys registered in :mod:`levgym.results`."""
    check_se_method(se_method)
    names = config.protocols
    h = config.headline_run
    tvl_p = res.tvl_usd
    tvl = tvl_p.sum(axis=1)
    bad_p = res.bad_debt_usd[:, h]
    bad = bad_p.sum(axis=1)
    out: dict[str, Any] = {"paths": int(bad.size), "tvl_usd": float(tvl.mean())}
    out["tvl_usd_by_protocol"] = {n: float(tvl_p[:, p].mean()) for p, n in enumerate(names)}
    out.update(tail_block(bad, tvl, "var", "bad_debt", with_cvar=True, se_method=se_method))
    out.update(probability_block(bad > 0, "prob_bad_debt"))
    for unit, s in (("usd", bad), ("tvl_frac", bad / tvl)):
        est = mean_estimate(s, se_method)
        out[f"mean_bad_debt_{unit}"], out[f"mean_bad_debt_{unit}_se"] = est.value, est.se
    liq = res.liquidated_usd[:, h].sum(axis=1)
    est = mean_estimate(liq, se_method)
    out["mean_liquidated_usd"], out["mean_liquidated_usd_se"] = est.value, est.se
    out.update(probability_block(res.liquidations[:, h].sum(axis=1) > 0, "prob_any_liquidation"))
    out["bad_debt_tail_by_protocol"] = {
        n: _block(bad_p[:, p], res.liquidated_usd[:, h, p], tvl_p[:, p], se_method)
        for p, n in enumerate(names)
    }
    for level in LEVELS:
        _, contrib = cvar_contributions(bad_p, level)
        out[f"cvar_{round(level * 100)}_contribution_usd_by_protocol"] = {
            n: float(contrib[p]) for p, n in enumerate(names)
        }
    out["mean_underwater_usd_by_protocol"] = {
        n: float(res.underwater_usd[:, h, p].mean()) for p, n in enumerate(names)
    }
    # contagion: shared minus isolated on the same paths and books
    iso_p = res.bad_debt_usd[:, RUNS.index("isolated")]
    cont_p = bad_p - iso_p
    cont = cont_p.sum(axis=1)
    out["mean_contagion_bad_debt_usd"] = float(cont.mean())
    out["mean_contagion_bad_debt_usd_se"] = mean_se(cont)
    out["contagion_bad_debt_usd_by_protocol"] = {
        n: float(cont_p[:, p].mean()) for p, n in enumerate(names)
    }
    out["contagion_liquidated_usd_by_protocol"] = {
        n: float((res.liquidated_usd[:, h, p] - res.liquidated_usd[:, RUNS.index("isolated"), p]).mean())
        for p, n in enumerate(names)
    }  # fmt: skip
    m = float(bad.mean())
    out["contagion_bad_debt_share_frac"] = float(cont.mean()) / m if m > 0 else None
    out["contagion_share_definition"] = CONTAGION_SHARE_TEXT
    for level in LEVELS:
        c, contrib = cvar_contributions(np.stack([bad - cont, cont], axis=1), level)
        out[f"cvar_{round(level * 100)}_contagion_share_frac"] = (
            float(contrib[1]) / c if c > 0 else None
        )
    # both margin modes on the same paths, and their paired difference
    out["bad_debt_by_run"] = {
        run: {
            **_block(
                res.bad_debt_usd[:, r].sum(axis=1), res.liquidated_usd[:, r].sum(axis=1), tvl,
                se_method,
            ),
            "mean_underwater_usd": float(res.underwater_usd[:, r].sum(axis=1).mean()),
        }
        for r, run in enumerate(RUNS)
    }  # fmt: skip
    uni = res.bad_debt_usd[:, RUNS.index("shared_unified")].sum(axis=1)
    per = res.bad_debt_usd[:, RUNS.index("shared_per_protocol")].sum(axis=1)
    diff = paired_difference(uni, per)
    d_liq = (
        res.liquidated_usd[:, RUNS.index("shared_unified")]
        - res.liquidated_usd[:, RUNS.index("shared_per_protocol")]
    ).sum(axis=1)
    diff["mean_liquidated_usd"], diff["mean_liquidated_usd_se"] = (
        float(d_liq.mean()),
        mean_se(d_liq),
    )
    out["unified_minus_per_protocol"] = diff
    out["se_method"] = se_method
    return out


def _exceedance(ax: Any, x: np.ndarray, label: str, **kw: Any) -> None:
    """``P(loss > v)`` against ``v`` for the positive losses (a step curve)."""
    v = np.sort(np.asarray(x, dtype=np.float64))
    n = v.size
    surv = 1.0 - np.arange(1, n + 1) / n
    pos = v > 0
    if pos.any():
        ax.step(v[pos], np.maximum(surv[pos], 0.5 / n), where="post", label=label, **kw)


def plot(
    summary: dict[str, Any], res: MultiProtocolBatch, config: MultiProtocolStressConfig,
    path: Any, title: str = "",
) -> None:  # fmt: skip
    """A PNG: the exceedance curve of each protocol's bad debt (shared markets, chosen margin),
    and of the systemic bad debt in each run (shared per-protocol / unified, isolated)."""
    from ..io import save_figure
    from .plots import _plt

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    h = config.headline_run
    for p, n in enumerate(config.protocols):
        _exceedance(a, res.bad_debt_usd[:, h, p], n)
    total = res.bad_debt_usd[:, h].sum(axis=1)
    _exceedance(a, total, "all protocols", color="k", lw=2)
    for level, style in ((95, "--"), (99, ":")):
        v = summary[f"var_{level}_bad_debt_usd"]
        if v > 0:
            a.axvline(v, color="k", ls=style, label=f"systemic VaR {level}%")
    a.set_title(f"bad debt per protocol (shared markets, {config.margin})", fontsize=9)
    for r, run in enumerate(RUNS):
        label = f"isolated ({config.margin})" if run == "isolated" else run
        _exceedance(b, res.bad_debt_usd[:, r].sum(axis=1), label)
    b.set_title("systemic bad debt: margin modes and isolated markets, same paths", fontsize=9)
    for ax in (a, b):
        ax.set_xlabel("bad debt per path (USD at start prices)")
        ax.set_ylabel("share of paths with more")
        if ax.get_legend_handles_labels()[0]:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no bad debt on any path", ha="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
