"""Running levgym's heavy jobs beyond one process: Monte Carlo batches, grid points and training
seeds as tasks, in this process, in a process pool or on Ray (an optional extra:
``pip install 'levgym[ray]'``). Tasks are pure functions of plain arguments; results come back
by index and are reassembled in order, so a run equals its run without Ray."""

from .executor import (
    DistributedError,
    Executor,
    ProcessPoolRunner,
    SerialExecutor,
    check_complete,
    default_workers,
)
from .ray_runtime import INSTALL_HINT, RayExecutor, RaySettings, check_address, import_ray
from .threads import pin_threads

__all__ = [
    "INSTALL_HINT",
    "DistributedError",
    "Executor",
    "ProcessPoolRunner",
    "RayExecutor",
    "RaySettings",
    "SerialExecutor",
    "check_address",
    "check_complete",
    "default_workers",
    "import_ray",
    "pin_threads",
]
