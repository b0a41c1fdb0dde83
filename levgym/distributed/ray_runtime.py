"""Ray glue: start or join Ray from ``--ray [ADDRESS]``, ship levgym's code to the workers, and run
tasks on a pool of warm workers with retries and an index check.

- No address: Ray starts on this machine (``ray.init(num_cpus=workers * threads)``, no dashboard).
  The workers import this checkout's ``levgym`` and ``agents`` (their folder is put on the
  workers' ``PYTHONPATH``).
- ``auto`` or ``ray://host:port``: join a running cluster (``ray start --head`` prints the
  address). The ``levgym`` and ``agents`` packages are uploaded to the cluster with Ray's
  ``runtime_env`` ``py_modules``; the cluster needs levgym's dependencies installed.

Workers are actors that live for the whole run (warm: numba's kernels are loaded once per
worker, not once per task), each pinned to ``threads`` threads with
:func:`levgym.distributed.threads.pin_threads`. A task that raises is resubmitted up to
``retries`` times (to any worker); a worker process that dies is restarted by Ray
(``max_restarts``) and its task retried (``max_task_retries``). Results are reassembled by
index and a missing index is an error (:func:`levgym.distributed.executor.check_complete`).
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executor import DistributedError, Progress, Task, check_complete, default_workers, now
from .threads import pin_threads

INSTALL_HINT = "--ray needs Ray, which is not installed; install it with: pip install 'levgym[ray]'"
ADDRESS_RE = re.compile(r"^(auto|local|ray://[^\s:/]+:\d+|[^\s:/]+:\d+)$")
ADDRESS_HELP = "auto, local, ray://HOST:PORT or HOST:PORT"


def import_ray() -> Any:
    """The ``ray`` module, or :class:`DistributedError` with the one-line install hint."""
    try:
        import ray
    except ImportError:
        raise DistributedError(INSTALL_HINT) from None
    return ray


def check_address(address: str | None) -> str | None:
    """``None`` (start Ray here), ``auto``, ``local`` or a cluster address; else ``ValueError``."""
    if address is None:
        return None
    if not ADDRESS_RE.match(address):
        raise ValueError(f"--ray {address!r} is not a Ray address; allowed {ADDRESS_HELP}")
    return address


def code_roots() -> list[str]:
    """Folders holding the ``levgym`` and ``agents`` packages this process runs."""
    import levgym

    roots = [str(Path(levgym.__file__).resolve().parent.parent)]
    try:
        import agents

        roots.append(str(Path(agents.__file__).resolve().parent.parent))
    except ImportError:  # pragma: no cover - installed without agents
        pass
    return list(dict.fromkeys(roots))


def runtime_env(remote: bool) -> dict[str, Any]:
    """What the workers get: on this machine, ``PYTHONPATH`` naming this checkout (and the test
    hook's variable when set); on a cluster, the ``levgym`` and ``agents`` packages themselves."""
    env_vars: dict[str, str] = {}
    if remote:
        import levgym

        modules = [str(Path(levgym.__file__).resolve().parent)]
        try:
            import agents

            modules.append(str(Path(agents.__file__).resolve().parent))
        except ImportError:  # pragma: no cover
            pass
        return {"py_modules": modules}
    path = os.pathsep.join([*code_roots(), *filter(None, [os.environ.get("PYTHONPATH")])])
    env_vars["PYTHONPATH"] = path
    return {"env_vars": env_vars}


@dataclass
class RaySettings:
    """``--ray [ADDRESS]``, ``--ray-workers``, ``--ray-threads`` and ``--ray-retries``."""

    address: str | None = None
    """None or ``local``: start Ray on this machine; ``auto`` or ``ray://host:port``: join."""
    workers: int | None = None
    """Worker processes (default: this machine's cores / threads, or the cluster's CPUs)."""
    threads: int = 1
    """Threads per worker (numba, torch, OpenMP)."""
    retries: int = 2
    """Resubmissions of a failed task before the run fails."""

    def __post_init__(self) -> None:
        check_address(self.address)
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--ray-workers={self.workers} is out of range; allowed >= 1")
        if self.threads < 1:
            raise ValueError(f"--ray-threads={self.threads} is out of range; allowed >= 1")
        if self.retries < 0:
            raise ValueError(f"--ray-retries={self.retries} is out of range; allowed >= 0")

    @property
    def remote(self) -> bool:
        return self.address not in (None, "local")


def init_ray(settings: RaySettings) -> tuple[Any, bool]:
    """``(ray, started)``: Ray started here or joined; ``started`` is False when this process
    had already initialised Ray (then it is left running)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    common = {
        "include_dashboard": False,
        "runtime_env": runtime_env(settings.remote),
        "logging_level": "WARNING",
        "log_to_driver": True,
    }
    try:
        if settings.remote:
            ray.init(address=settings.address, **common)
        else:
            workers = settings.workers or default_workers(settings.threads)
            ray.init(num_cpus=workers * settings.threads, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(f"--ray {settings.address or ''}: {first}".strip()) from None
    return ray, True


class _Worker:
    """A warm Ray worker: pinned once at start and again per task (numba's setting is per thread)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.shared_key: str | None = None
        self.shared: Any = None
        pin_threads(threads)

    def ping(self) -> int:
        return os.getpid()

    def run(
        self, fn: Task, box: list[Any], index: int, fail_once_dir: str | None = None
    ) -> tuple[Any, float, int]:
        import ray

        pin_threads(self.threads)
        key = box[0].hex()
        if key != self.shared_key:  # the shared argument is fetched once per run, not per task
            self.shared, self.shared_key = ray.get(box[0]), key
        if fail_once_dir:  # the test hook: each task's first attempt fails
            marker = Path(fail_once_dir) / f"task_{index}"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                raise RuntimeError(f"injected failure of task {index} (fail_once_dir)")
        shared, items = self.shared
        t0 = now()
        result = fn(shared, items[index])
        return result, now() - t0, os.getpid()


@dataclass
class TaskTiming:
    """One task's index, worker process id, seconds inside the task, and whether it was that
    worker's first task (the one that loads or compiles the kernels)."""

    index: int
    pid: int
    seconds: float
    first_on_worker: bool


@dataclass
class RayExecutor:
    """Runs tasks on warm Ray workers (see the module docstring). Use as a context manager, or
    call :meth:`close`; Ray is shut down at the end only if this executor started it."""

    settings: RaySettings = field(default_factory=RaySettings)
    depth: int = 2
    """Tasks queued per worker (the next one waits in the worker while one runs)."""
    timings: list[TaskTiming] = field(default_factory=list)
    fail_once_dir: str | None = None
    """Test hook: a folder; the first attempt of every task fails (a marker file per task index
    records it), so the retries are exercised."""

    def __post_init__(self) -> None:
        self._ray: Any = None
        self._started = False
        self._actors: list[Any] = []
        self._seen_pids: set[int] = set()

    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._actors)

    def start(self) -> None:
        if self._ray is not None:
            return
        self._ray, self._started = init_ray(self.settings)
        n = self.settings.workers
        if n is None:
            cpus = int(self._ray.cluster_resources().get("CPU", 1))
            n = max(1, cpus // self.settings.threads)
        need = n * self.settings.threads
        free = 0.0
        for _ in range(50):  # CPUs of workers just killed come back within moments
            free = float(self._ray.available_resources().get("CPU", 0.0))
            if need <= free:
                break
            time.sleep(0.2)
        if need > free:
            raise DistributedError(
                f"--ray-workers {n} x {self.settings.threads} thread(s) need "
                f"{n * self.settings.threads} CPUs; the Ray instance has {free:g} free; allowed "
                "at most that many"
            )
        cls = self._ray.remote(_Worker).options(
            num_cpus=self.settings.threads,
            max_restarts=self.settings.retries,
            max_task_retries=self.settings.retries,
        )
        self._actors = [cls.remote(self.settings.threads) for _ in range(n)]
        self._ray.get([a.ping.remote() for a in self._actors])

    def close(self) -> None:
        if self._ray is None:
            return
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._started:
            self._ray.shutdown()
        self._ray = None

    def map(
        self, fn: Task, shared: Any, items: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        self.start()
        ray = self._ray
        ref = ray.put((shared, list(items)))
        box = [ref]
        queue: deque[int] = deque(range(len(items)))
        failures: dict[int, int] = {}
        inflight: dict[Any, tuple[int, int]] = {}
        load = [0] * len(self._actors)
        results: dict[int, Any] = {}
        while queue or inflight:
            for level in range(self.depth):  # round robin: every worker gets one before any two
                for w, actor in enumerate(self._actors):
                    if queue and load[w] <= level:
                        i = queue.popleft()
                        inflight[actor.run.remote(fn, box, i, self.fail_once_dir)] = (i, w)
                        load[w] += 1
            done, _ = ray.wait(list(inflight), num_returns=1)
            for d in done:
                i, w = inflight.pop(d)
                load[w] -= 1
                try:
                    value, seconds, pid = ray.get(d)
                except ray.exceptions.RayError as exc:
                    failures[i] = failures.get(i, 0) + 1
                    if failures[i] > self.settings.retries:
                        raise DistributedError(
                            f"task {i} failed {failures[i]} times (--ray-retries "
                            f"{self.settings.retries}): {_first_line(exc)}"
                        ) from None
                    queue.appendleft(i)
                    continue
                first = pid not in self._seen_pids
                self._seen_pids.add(pid)
                self.timings.append(TaskTiming(i, pid, seconds, first))
                results[i] = value
                if progress is not None:
                    progress.update(1)
        return check_complete(results, len(items))


def _first_line(exc: BaseException) -> str:
    """``Type: message`` of the task's own exception (Ray wraps it), on one line."""
    cause = getattr(exc, "cause", None) or exc
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}".rstrip(": ")
