"""Executors: run a list of independent tasks ``fn(shared, item)`` and return their results in the
order of ``items``, in this process, in a process pool or on Ray.

A task is a pure function of plain arguments (parameters, seeds, batch index): it never relies on
state in the driver. ``shared`` is sent to each worker once per run (Ray: ``ray.put``); ``items``
are small. Results come back by index, so the caller reassembles them in the same order whoever
ran them, and a missing index is an error, never a silently shorter result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from .threads import pin_threads

Task = Callable[[Any, Any], Any]


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...


class DistributedError(Exception):
    """A run that cannot go on: Ray missing, a task that failed after its retries, a lost result.
    Shown to the user as one line (exit status 2)."""


class Executor(Protocol):
    def map(
        self, fn: Task, shared: Any, items: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]: ...


def check_complete(results: dict[int, Any], count: int, what: str = "task") -> list[Any]:
    """``results`` (index -> result) as a list in index order; a missing index is an error."""
    missing = [i for i in range(count) if i not in results]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DistributedError(
            f"{len(missing)} {what}(s) of {count} did not come back (indices {shown}); "
            "no result is written with a part missing"
        )
    return [results[i] for i in range(count)]


class SerialExecutor:
    """Every task in this process, in order (the run without Ray)."""

    def map(
        self, fn: Task, shared: Any, items: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        out = []
        for item in items:
            out.append(fn(shared, item))
            if progress is not None:
                progress.update(1)
        return out


def _pool_init(threads: int | None) -> None:
    pin_threads(threads)


def _pool_call(fn: Task, shared: Any, item: Any, threads: int | None) -> Any:
    pin_threads(threads)  # numba's setting is per thread: set it where the task runs
    return fn(shared, item)


@dataclass
class ProcessPoolRunner:
    """A plain process pool (``concurrent.futures``, spawn start: a fresh interpreter per worker,
    as a Ray worker is), ``workers`` processes with ``threads`` threads each."""

    workers: int
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--jobs={self.workers} is out of range; allowed >= 1")

    def map(
        self, fn: Task, shared: Any, items: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        results: dict[int, Any] = {}
        with ProcessPoolExecutor(
            max_workers=min(self.workers, max(len(items), 1)),
            mp_context=mp.get_context("spawn"),
            initializer=_pool_init,
            initargs=(self.threads,),
        ) as pool:
            futures = {
                pool.submit(_pool_call, fn, shared, item, self.threads): i
                for i, item in enumerate(items)
            }
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress.update(1)
        return check_complete(results, len(items))


def default_workers(threads: int = 1) -> int:
    """Workers that fit this machine's cores at ``threads`` threads each."""
    return max(1, (os.cpu_count() or 1) // max(threads, 1))


def now() -> float:
    return time.perf_counter()
