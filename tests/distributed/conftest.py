"""A local Ray instance (2 CPUs, no dashboard) shared by the module's tests, shut down after."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    ray = pytest.importorskip("ray")
    from levgym.distributed.ray_runtime import runtime_env

    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env=runtime_env(remote=False),
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()
