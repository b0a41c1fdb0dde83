"""`levgym sweep`: trials of `levgym train` over seeds and a hyperparameter grid (or a seeded random
search), run as Ray Tune trials, each trial's run folder exactly as `levgym train` writes it, and
a results table: mean and 95% interval over seeds per configuration.

The sweep file (YAML; every key is checked before anything starts, see docs/ray.md):

```yaml
env: levgym/Governance-v1        # required: the env id
algo: ppo                        # ppo, sac, td3, a2c (default ppo)
config: null                     # hyperparameter file (default the shipped agents/<algo>.yaml)
total_timesteps: 20000           # per trial (default the config's)
seeds: [0, 1, 2]                 # required: training seeds (each configuration runs each seed)
grid:                            # hyperparameter -> list of values (a full grid)
  learning_rate: [0.0003, 0.001]
hyper: {n_envs: 8}               # fixed overrides for every trial (as --hyper)
search:                          # instead of or beside grid: seeded random draws
  samples: 4
  seed: 0
  space: {learning_rate: {loguniform: [1.0e-5, 1.0e-3]}, n_epochs: {choice: [5, 10]}}
metric: final_ep_rew_mean        # or best_ep_rew_mean: the column the table ranks by
cpus_per_trial: 1                # CPUs (threads) per trial
```

A trial is one (configuration, seed). Its run folder is ``<out>/trials/<configuration>__seed<k>``
and its ``command.txt`` holds the `levgym train` command that reproduces it standalone. A trial's
numbers are read from its run folder (``progress.csv``), never from Tune's own records: rerun
the command and the same numbers come out. Resuming: run the same sweep into the same ``--out``
again; finished trials (``model.zip`` and ``result.json`` at their step budget) are read back,
interrupted ones continue from their newest checkpoint (``levgym train --resume``).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from levgym.io import write_json, write_text

from .config import check_algo

TOP_KEYS = (
    "env",
    "algo",
    "config",
    "total_timesteps",
    "seeds",
    "grid",
    "hyper",
    "search",
    "metric",
    "cpus_per_trial",
)
SEARCH_KEYS = ("samples", "seed", "space")
DISTRIBUTIONS = ("uniform", "loguniform", "choice")
METRICS = ("final_ep_rew_mean", "best_ep_rew_mean")
MAX_TRIALS = 1000


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file (see the module docstring)."""

    env: str
    seeds: tuple[int, ...]
    algo: str = "ppo"
    config: str | None = None
    total_timesteps: int | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    hyper: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] | None = None
    metric: str = "final_ep_rew_mean"
    cpus_per_trial: int = 1

    def configurations(self) -> list[dict[str, Any]]:
        """The hyperparameter points: the grid's product, then the random draws (seeded)."""
        points: list[dict[str, Any]] = []
        if self.grid:
            keys = list(self.grid)
            points = [
                dict(zip(keys, v, strict=True)) for v in itertools.product(*self.grid.values())
            ]
        if self.search:
            rng = np.random.default_rng(int(self.search.get("seed", 0)))
            draws = []
            for _ in range(int(self.search["samples"])):
                draws.append({k: _draw(rng, d) for k, d in self.search["space"].items()})
            points = [{**p, **d} for p in (points or [{}]) for d in draws]
        return points or [{}]


def _draw(rng: np.random.Generator, dist: dict[str, Any]) -> Any:
    kind, args = next(iter(dist.items()))
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    return args[int(rng.integers(len(args)))]


def _fail(path: str, message: str) -> ValueError:
    return ValueError(f"sweep file {path!r}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; a problem raises ``ValueError`` naming the key, the value and
    what is allowed (one line)."""
    p = str(path)
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"sweep file {p!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise _fail(p, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise _fail(p, f"must be a mapping of keys ({', '.join(TOP_KEYS)})")
    return parse_sweep(data, p)


def parse_sweep(data: dict[str, Any], p: str = "<sweep>") -> SweepSpec:
    """A :class:`SweepSpec` from the file's mapping (see :func:`load_sweep`)."""
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise _fail(p, f"unknown key {unknown[0]!r}; allowed {', '.join(TOP_KEYS)}")
    for key in ("env", "seeds"):
        if key not in data:
            raise _fail(p, f"key {key!r} is missing; it is required")
    env = data["env"]
    from levgym.envs.registration import ENV_SPECS

    if env not in ENV_SPECS:
        raise _fail(p, f"env {env!r} is unknown; allowed {', '.join(ENV_SPECS)}")
    try:
        algo = check_algo(str(data.get("algo", "ppo")))
    except ValueError as exc:
        raise _fail(p, str(exc).replace("--algo", "algo")) from None
    config = data.get("config")
    if config is not None and not (isinstance(config, str) and Path(config).is_file()):
        raise _fail(p, f"config {config!r} is not a file; allowed a YAML file path or null")
    total = data.get("total_timesteps")
    if total is not None and not (_is_int(total) and total >= 1):
        raise _fail(p, f"total_timesteps={total!r} is out of range; allowed an integer >= 1")
    seeds = data["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(_is_int(s) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise _fail(p, f"seeds={seeds!r} is not allowed; allowed a list of distinct integers >= 0")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise _fail(p, f"grid={grid!r} is not a mapping; allowed KEY: [VALUE, ...]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _fail(p, f"grid.{key}={values!r} is not a list; allowed a non-empty list")
        if len({repr(v) for v in values}) != len(values):
            raise _fail(p, f"grid.{key} repeats a value; allowed distinct values")
    hyper = data.get("hyper") or {}
    if not isinstance(hyper, dict):
        raise _fail(p, f"hyper={hyper!r} is not a mapping; allowed KEY: VALUE")
    for key in hyper:
        if key in grid:
            raise _fail(p, f"{key!r} is in both grid and hyper; allowed in one of them")
    search = data.get("search")
    if search is not None:
        search = _check_search(search, p, grid)
    metric = data.get("metric", "final_ep_rew_mean")
    if metric not in METRICS:
        raise _fail(p, f"metric {metric!r} is unknown; allowed {', '.join(METRICS)}")
    cpus = data.get("cpus_per_trial", 1)
    if not (_is_int(cpus) and cpus >= 1):
        raise _fail(p, f"cpus_per_trial={cpus!r} is out of range; allowed an integer >= 1")
    spec = SweepSpec(
        env=env,
        seeds=tuple(seeds),
        algo=algo,
        config=config,
        total_timesteps=total,
        grid={k: list(v) for k, v in grid.items()},
        hyper=dict(hyper),
        search=search,
        metric=metric,
        cpus_per_trial=cpus,
    )
    n = len(spec.configurations()) * len(spec.seeds)
    if n > MAX_TRIALS:
        raise _fail(p, f"{n} trials is out of range; allowed at most {MAX_TRIALS}")
    return spec


def _check_search(search: Any, p: str, grid: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(search, dict):
        raise _fail(p, f"search={search!r} is not a mapping; allowed keys {', '.join(SEARCH_KEYS)}")
    unknown = [k for k in search if k not in SEARCH_KEYS]
    if unknown:
        raise _fail(p, f"unknown key search.{unknown[0]}; allowed {', '.join(SEARCH_KEYS)}")
    samples = search.get("samples")
    if not (_is_int(samples) and samples >= 1):
        raise _fail(p, f"search.samples={samples!r} is out of range; allowed an integer >= 1")
    if not (_is_int(search.get("seed", 0)) and search.get("seed", 0) >= 0):
        raise _fail(
            p, f"search.seed={search.get('seed')!r} is not allowed; allowed an integer >= 0"
        )
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        raise _fail(p, "search.space is missing or empty; allowed KEY: {uniform: [LO, HI]} ...")
    for key, dist in space.items():
        where = f"search.space.{key}"
        if key in grid:
            raise _fail(p, f"{key!r} is in both grid and search.space; allowed in one of them")
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise _fail(
                p, f"{where}={dist!r} is not allowed; allowed one of {', '.join(DISTRIBUTIONS)}"
            )
        kind, args = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise _fail(p, f"{where}.choice={args!r} is not allowed; allowed a non-empty list")
            continue
        ok = (
            isinstance(args, list)
            and len(args) == 2
            and all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
            and args[0] < args[1]
            and (kind != "loguniform" or args[0] > 0)
        )
        if not ok:
            low = "0 < LO < HI" if kind == "loguniform" else "LO < HI"
            raise _fail(p, f"{where}.{kind}={args!r} is not allowed; allowed [LO, HI] with {low}")
    return {"samples": samples, "seed": int(search.get("seed", 0)), "space": space}


@dataclass(frozen=True)
class Trial:
    """One (configuration, seed): its run folder and its `levgym train` arguments."""

    name: str
    configuration: str
    point: dict[str, Any]
    seed: int
    run_dir: str
    hyper: tuple[str, ...]
    env: str
    algo: str
    config: str | None
    total_timesteps: int | None
    threads: int

    def command(self) -> str:
        """The `levgym train` command that reproduces this trial standalone."""
        parts = [
            "levgym",
            "train",
            "--env",
            self.env,
            "--algo",
            self.algo,
            "--seed",
            str(self.seed),
        ]
        if self.config:
            parts += ["--config", self.config]
        if self.total_timesteps is not None:
            parts += ["--total-timesteps", str(self.total_timesteps)]
        for item in self.hyper:
            parts += ["--hyper", item]
        parts += ["--out", self.run_dir, "--no-progress"]
        return shlex.join(parts)


def _value_text(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def configuration_label(point: dict[str, Any]) -> str:
    """``learning_rate=0.001,n_epochs=5`` (``default`` for the config's own values)."""
    return ",".join(f"{k}={_value_text(v)}" for k, v in point.items()) or "default"


def trials(spec: SweepSpec, out: str | Path) -> list[Trial]:
    """Every trial of the sweep, configuration by configuration, seed by seed."""
    root = Path(out).resolve() / "trials"
    found = []
    for point in spec.configurations():
        label = configuration_label(point)
        hyper = tuple(f"{k}={_value_text(v)}" for k, v in {**spec.hyper, **point}.items())
        for seed in spec.seeds:
            name = f"{label.replace('/', '_')}__seed{seed}"
            found.append(
                Trial(
                    name,
                    label,
                    point,
                    seed,
                    str(root / name),
                    hyper,
                    spec.env,
                    spec.algo,
                    spec.config,
                    spec.total_timesteps,
                    spec.cpus_per_trial,
                )
            )
    return found


def resolved_configs(spec: SweepSpec) -> list[tuple[str, dict[str, Any]]]:
    """Each configuration's resolved hyperparameters (as `levgym train` resolves them), for the
    up-front check."""
    from .config import apply_overrides, load_config

    out = []
    for t in trials(spec, ".")[:: len(spec.seeds)]:
        config = apply_overrides(load_config(spec.env, spec.algo, spec.config), list(t.hyper))
        if spec.total_timesteps is not None:
            config["total_timesteps"] = int(spec.total_timesteps)
        out.append((t.configuration, config))
    return out


def is_complete(run_dir: str | Path) -> bool:
    """A finished `levgym train` run folder: ``model.zip`` and ``result.json`` at its budget."""
    import json

    d = Path(run_dir)
    try:
        result = json.loads((d / "result.json").read_text())
    except (OSError, ValueError):
        return False
    return (d / "model.zip").is_file() and result.get("num_timesteps", 0) >= result.get(
        "total_timesteps", math.inf
    )


def trial_metrics(run_dir: str | Path) -> dict[str, float]:
    """A trial's numbers from its run folder: the last and the best logged mean episode return
    (``rollout/ep_rew_mean`` in ``progress.csv``) and the steps trained."""
    from .train import read_progress

    rows = [r for r in read_progress(run_dir) if "rollout/ep_rew_mean" in r]
    if not rows:
        raise ValueError(
            f"run folder {str(run_dir)!r} logged no rollout/ep_rew_mean; allowed runs long enough "
            "to finish an episode"
        )
    values = [r["rollout/ep_rew_mean"] for r in rows]
    return {
        "final_ep_rew_mean": float(values[-1]),
        "best_ep_rew_mean": float(max(values)),
        "trained_timesteps": float(rows[-1].get("time/total_timesteps", math.nan)),
    }


def run_trial(trial: Trial) -> dict[str, Any]:
    """Train one trial (or read it back when finished, or resume it): what a Tune trial runs.
    Threads are pinned with :func:`levgym.distributed.pin_threads`, as `levgym train` pins them."""
    from levgym.distributed import pin_threads

    from .train import train

    pin_threads(trial.threads)
    run_dir = Path(trial.run_dir)
    status = "reused"
    if not is_complete(run_dir):
        if (run_dir / "config.yaml").exists():
            status = "resumed"
            train(trial.env, resume=run_dir, progress=False, command=trial.command())
        else:
            status = "trained"
            train(
                trial.env,
                trial.algo,
                config_path=trial.config,
                total_timesteps=trial.total_timesteps,
                seed=trial.seed,
                out=run_dir,
                hyper=list(trial.hyper),
                progress=False,
                command=trial.command(),
            )
    return {"trial": trial.name, "status": status, **trial_metrics(run_dir)}


def _tune_trainable(config: dict[str, Any]) -> dict[str, Any]:
    return run_trial(Trial(**config["trial"]))


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    settings: Any,
    *,
    progress: bool = True,
    command: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """Run every trial as a Ray Tune trial (``settings``: :class:`levgym.distributed.RaySettings`),
    then write the results table. Returns the sweep folder."""
    from levgym.distributed.ray_runtime import init_ray

    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = out_dir / "sweep.yaml"
    text = yaml.safe_dump(asdict(spec), sort_keys=False)
    if saved.exists() and saved.read_text() != text:
        raise ValueError(
            f"--out {str(out)!r} holds a different sweep (its sweep.yaml differs); allowed a new "
            "folder, or the same sweep to resume it"
        )
    write_text(saved, text)
    found = trials(spec, out_dir)
    started = time.perf_counter()
    # Tune's own console report (tables, banners) stays off: the bar and the table are ours
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray, ray_started = init_ray(settings)
    try:
        from ray import tune

        bar = _Bar(len(found), progress)
        trainable = tune.with_resources(_tune_trainable, {"cpu": spec.cpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([asdict(t) for t in found])},
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=settings.workers),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out_dir),
                verbose=0,
                callbacks=[bar.callback],
                failure_config=tune.FailureConfig(max_failures=settings.retries),
            ),
        )
        grid = tuner.fit()
        bar.close()
    finally:
        if ray_started:
            ray.shutdown()
    failed = [r for r in grid if r.error is not None]
    missing = [t.name for t in found if not is_complete(t.run_dir)]
    if failed or missing:
        first = str(failed[0].error).strip().splitlines()[-1] if failed else ""
        raise RuntimeError(
            f"{len(missing)} trial(s) of {len(found)} did not finish ({', '.join(missing[:5])}); "
            f"{first} rerun the same command to resume them".replace("  ", " ")
        )
    # the table is built from the run folders, whoever ran them
    records = [{**asdict_trial(t), **trial_metrics(t.run_dir)} for t in found]
    doc = results_document(spec, records, command, time.perf_counter() - started)
    write_json(out_dir / "results.json", doc)
    write_text(out_dir / "results.csv", results_csv(doc))
    write_text(out_dir / "results.md", results_markdown(doc))
    return out_dir


def asdict_trial(t: Trial) -> dict[str, Any]:
    return {
        "trial": t.name,
        "configuration": t.configuration,
        "seed": t.seed,
        "run_dir": t.run_dir,
        "train_command": t.command(),
    }


class _Bar:
    """A tqdm bar over finished trials, fed by Tune's callbacks."""

    def __init__(self, total: int, enabled: bool) -> None:
        from ray.tune import Callback
        from tqdm import tqdm

        bar = tqdm(
            total=total, desc="levgym sweep", unit="trial", file=sys.stderr, disable=not enabled
        )

        class _Cb(Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                bar.update(1)

            def on_trial_error(self, iteration, trials, trial, **info):
                bar.update(1)

        self.bar = bar
        self.callback = _Cb()

    def close(self) -> None:
        self.bar.close()


def summarize(records: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per configuration: mean and 95% Student-t half-width over seeds of each metric, best first
    by ``metric``."""
    from .evaluate import mean_ci

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["configuration"], []).append(r)
    rows = []
    for label, rs in groups.items():
        row: dict[str, Any] = {"configuration": label, "seeds": [r["seed"] for r in rs]}
        for m in METRICS:
            est = mean_ci(np.array([r[m] for r in rs]))
            row[m] = est["mean"]
            row[f"{m}_ci95"] = est["ci95"]
        rows.append(row)
    rows.sort(key=lambda r: -r[metric])
    return rows


def results_document(
    spec: SweepSpec, records: list[dict[str, Any]], command: str | None, seconds: float
) -> dict[str, Any]:
    """results.json: the sweep, every trial's numbers, and the table per configuration."""
    from levgym.results import checked

    return checked(
        "sweep",
        {
            "command": command,
            "sweep_yaml": yaml.safe_dump(asdict(spec), sort_keys=False),
            "metric": spec.metric,
            "trials": records,
            "configurations": summarize(records, spec.metric),
            "wall_time_s": seconds,
            "tensorboard": f"tensorboard --logdir {shlex.quote(str(Path(records[0]['run_dir']).parent))}",
        },
    )


CSV_COLUMNS = (
    "configuration",
    "seed",
    "final_ep_rew_mean",
    "best_ep_rew_mean",
    "trained_timesteps",
    "run_dir",
)


def results_csv(doc: dict[str, Any]) -> str:
    """results.csv: one row per trial."""
    from levgym.results import checked_columns

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(checked_columns("sweep.csv", CSV_COLUMNS))
    for r in doc["trials"]:
        w.writerow([repr(r[c]) if isinstance(r[c], float) else r[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def results_markdown(doc: dict[str, Any]) -> str:
    """results.md: the table per configuration (mean ± 95% half-width over seeds), then trials."""
    from .reporting import mean_ci as cell

    s = yaml.safe_load(doc["sweep_yaml"])
    lines = [
        "# levgym sweep",
        "",
        f"- command: `{doc['command']}`",
        f"- {s['algo'].upper()} on `{s['env']}`, seeds {', '.join(map(str, s['seeds']))}, "
        f"ranked by `{doc['metric']}` (mean episode return logged in training, last or best "
        "rollout); cells are mean ± half-width of a 95% Student-t interval over seeds",
        f"- TensorBoard of every trial: `{doc['tensorboard']}`",
        f"- wall time: {doc['wall_time_s']:.0f} s",
        "",
        "| rank | configuration | seeds | final ep_rew_mean | best ep_rew_mean |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(doc["configurations"]):
        lines.append(
            f"| {i + 1} | `{r['configuration']}` | {len(r['seeds'])} | "
            f"{cell(r['final_ep_rew_mean'], r['final_ep_rew_mean_ci95'])} | "
            f"{cell(r['best_ep_rew_mean'], r['best_ep_rew_mean_ci95'])} |"
        )
    lines += ["", "## Trials", "", "| trial | final | best | reproduce |", "|---|---|---|---|"]
    for r in doc["trials"]:
        lines.append(
            f"| `{r['trial']}` | {r['final_ep_rew_mean']:.6g} | {r['best_ep_rew_mean']:.6g} | "
            f"`{r['train_command']}` |"
        )
    return "\n".join(lines) + "\n"
