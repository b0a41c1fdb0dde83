"""levgym: reinforcement-learning environments for leverage dynamics in DeFi lending."""

__version__ = "0.1.0"

import os as _os

# OpenMP threads (numba's fused kernel, torch) spin while they wait for work by default; on a CPU
# shared with other busy processes that makes a parallel step several times slower than one
# thread (see levgym/engine/fused.py). OpenMP reads this once, when its library loads, so it is
# set here, before levgym imports torch or starts numba's threads. A user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import envs as _envs  # noqa: E402,F401  (registers the levgym/... env ids)
