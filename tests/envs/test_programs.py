"""The envs' step kernels (backend numba, state in packed buffers) against the envs' array path
(the same env stepping the engine substep by substep in Python): the same formulas, so the same
observations, rewards and infos; and the compiled formulas against their array versions."""

from __future__ import annotations

import inspect
import zlib

import numpy as np
import pytest

from levgym.engine.jit import ALL_THREADS, HAVE_NUMBA, ONE_THREAD, SERIAL, call_kernel
from levgym.envs import GovernanceV1VectorEnv, GovernanceVectorEnv, LiquidatorVectorEnv, formulas
from levgym.envs.governance_v1 import GovernanceV2VectorEnv
from levgym.envs.liquidator import (
    LiquidatorV0VectorEnv,
    LiquidatorV2VectorEnv,
    LiquidatorV3VectorEnv,
)
from levgym.envs.programs import FR, governance_step, liquidator_step
from levgym.envs.steward_program import steward_step

from .helpers import random_actions, stress_mix

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


def _array_path(cls: type) -> type:
    """``cls`` stepping the engine substep by substep (no step kernel)."""
    return type(cls.__name__ + "ArrayPath", (cls,), {"PACKED": False})


def _numeric(info: dict) -> dict:
    """The info's numeric arrays, as float64 (what the comparisons read)."""
    return {
        k: np.asarray(v, dtype=np.float64)
        for k, v in info.items()
        if isinstance(v, np.ndarray) and v.dtype.kind in "fbiu"
    }


def _run(cls: type, backend: str, steps: int, horizon_h: float) -> list:
    venv = cls(3, num_positions=24, horizon_h=horizon_h, scenarios=stress_mix(), backend=backend)
    obs, _ = venv.reset(seed=5)
    rng = np.random.default_rng(1)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = venv.step(
            random_actions(rng, venv.action_space.shape)
        )
        out.append((obs, reward, terminated, truncated, _numeric(info)))
    return out


@pytest.mark.parametrize(
    ("cls", "horizon_h"),
    [
        (GovernanceVectorEnv, 4.0),
        (GovernanceV1VectorEnv, 12.0),  # its two step kernels (levgym.envs.steward_program)
        (LiquidatorVectorEnv, 1.0),
        (LiquidatorV0VectorEnv, 1.0),
        (LiquidatorV2VectorEnv, 1.0),
        # warm books grafted through the packed buffers' restart (autoresets on the way)
        (GovernanceV2VectorEnv, 4.0),
        (LiquidatorV3VectorEnv, 1.0),
    ],
    ids=[
        "Governance-v0",
        "Governance-v1",
        "Liquidator-v1",
        "Liquidator-v0",
        "Liquidator-v2",
        "Governance-v2",
        "Liquidator-v3",
    ],
)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_step_kernel_equals_the_array_path(cls, horizon_h, backend):
    assert cls.PACKED
    got = _run(cls, "numba", 14, horizon_h)  # episodes end and restart on the way
    want = _run(_array_path(cls), backend, 14, horizon_h)
    np.testing.assert_array_equal(got[0], want[0])
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(got[1:], want[1:], strict=True):
        # the step kernel takes logarithms with libm, numpy with its own vector code: the two
        # may differ in the last bit, so the price tracker's variances may too
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(r1, r2, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        assert set(i1) == set(i2)
        for key in i1:
            np.testing.assert_allclose(i1[key], i2[key], rtol=1e-10, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("name", formulas.FORMULA_NAMES)
def test_compiled_formulas_equal_their_array_versions(name):
    fn = getattr(formulas, name)
    compiled = getattr(FR, name)
    n = len(inspect.signature(fn).parameters)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for _ in range(20):
        args = rng.uniform(0.05, 2.0, n)
        want = fn(*(np.array([a]) for a in args))
        got = compiled(*args)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(float(g), float(np.asarray(w)[0]), rtol=1e-12)


@pytest.mark.parametrize("cls", [GovernanceVectorEnv, LiquidatorVectorEnv], ids=["gov", "liq"])
def test_a_weight_set_between_steps_reaches_the_step_kernel(cls):
    a = cls(2, num_positions=24, scenarios=stress_mix())
    b = cls(2, num_positions=24, scenarios=stress_mix())
    a.reset(seed=3)
    b.reset(seed=3)
    rng = np.random.default_rng(0)
    for k in range(4):
        actions = random_actions(rng, a.action_space.shape)
        if k == 2:
            b.set_env_attr("reward_scale", 2.0 * a.reward_scale, [0, 1])
        ra = a.step(actions)[1]
        rb = b.step(actions)[1]
        np.testing.assert_allclose(rb, ra * (2.0 if k >= 2 else 1.0), rtol=1e-12)


def _loop_run(cls: type, mode: str, steps: int, horizon_h: float) -> list:
    """``_run``'s rollout with the step kernel's loop over envs forced to ``mode``: the plain
    loop, the parallel loop on one thread, or the parallel loop on numba's threads."""
    import numba

    venv = cls(4, num_positions=24, horizon_h=horizon_h, scenarios=stress_mix())
    obs, _ = venv.reset(seed=7)
    rng = np.random.default_rng(2)
    out = [obs]
    threads = numba.get_num_threads()
    for k in range(steps):
        obs, reward, terminated, truncated, info = venv.step(
            random_actions(rng, venv.action_space.shape)
        )
        if k == 0:  # the kernel's buffers and flags are made on the first step
            venv._k_parallel = mode == "parallel"
            venv._k_threads = {"plain": SERIAL, "one thread": ONE_THREAD, "parallel": ALL_THREADS}[
                mode
            ]
        assert numba.get_num_threads() == threads  # restored after every call
        out.append((obs, reward, terminated, truncated, _numeric(info)))
    return out


@pytest.mark.parametrize(
    ("cls", "horizon_h"),
    [
        (GovernanceVectorEnv, 4.0),
        (GovernanceV1VectorEnv, 12.0),
        (LiquidatorV0VectorEnv, 1.0),
        (LiquidatorVectorEnv, 1.0),
    ],
    ids=["Governance-v0", "Governance-v1", "Liquidator-v0", "Liquidator-v1"],
)
def test_the_step_kernels_loop_over_envs_gives_the_same_bits_each_way(cls, horizon_h):
    want = _loop_run(cls, "plain", 10, horizon_h)  # episodes end and restart on the way
    for mode in ("one thread", "parallel"):
        got = _loop_run(cls, mode, 10, horizon_h)
        np.testing.assert_array_equal(got[0], want[0])
        for g, w in zip(got[1:], want[1:], strict=True):
            for a, b in zip(g[:4], w[:4], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=mode)
            assert set(g[4]) == set(w[4])
            for key in g[4]:
                np.testing.assert_array_equal(g[4][key], w[4][key], err_msg=f"{mode}: {key}")


def test_a_serial_batch_of_16_x_256_runs_the_parallel_loop_on_one_thread():
    """The batch of the bench's 16-env Liquidator-v0 row is below the parallel threshold and
    runs the kernel's parallel loop on one thread; a single env runs the plain loop."""
    import numba

    for num_envs, one_thread in ((16, True), (1, False)):
        venv = LiquidatorV0VectorEnv(num_envs, num_positions=256)
        venv.reset(seed=0)
        threads = numba.get_num_threads()
        venv.step(np.zeros(venv.action_space.shape, dtype=np.float32))
        assert not venv._k_parallel
        assert venv._k_threads == (ONE_THREAD if one_thread else SERIAL)
        assert numba.get_num_threads() == threads


def test_call_kernel_runs_a_one_thread_call_on_one_thread_and_restores_numba_s_threads():
    import numba

    seen = []

    def kernel(x, threads):
        seen.append((x, threads, numba.get_num_threads()))

    n = numba.get_num_threads()
    for threads in (SERIAL, ONE_THREAD, ALL_THREADS):
        call_kernel(kernel, threads, 5)
    assert seen == [(5, SERIAL, n), (5, ONE_THREAD, 1), (5, ALL_THREADS, n)]

    def fails(threads):
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        call_kernel(fails, ONE_THREAD)
    assert numba.get_num_threads() == n


@pytest.mark.parametrize(
    ("cls", "kernel"),
    [
        (GovernanceVectorEnv, governance_step),
        (GovernanceV1VectorEnv, steward_step),
        (LiquidatorV0VectorEnv, liquidator_step),
    ],
    ids=["Governance-v0", "Governance-v1", "Liquidator-v0"],
)
def test_the_step_kernels_are_kept_in_numba_s_disk_cache(cls, kernel):
    """A kernel numba cannot cache (one that calls numba's thread functions, a dynamic global)
    is compiled again in every process: seconds before an env's first step."""
    venv = cls(2, num_positions=8)
    venv.reset(seed=0)
    venv.step(np.zeros(venv.action_space.shape, dtype=venv.action_space.dtype))
    assert kernel.signatures
    for sig in kernel.signatures:
        assert kernel._cache.load_overload(sig, kernel.targetctx) is not None, sig


@pytest.mark.parametrize("cls", [GovernanceVectorEnv, LiquidatorV0VectorEnv])
def test_an_observation_of_some_envs_writes_their_rows_only_and_as_a_full_one_would(cls):
    """After an autoreset the step observes only the restarted envs: the observe kernel with
    ``envs`` writes exactly those rows, with the values a full observation gives them."""
    venv = cls(4, num_positions=24, horizon_h=4.0, scenarios=stress_mix())
    venv.reset(seed=3)
    venv.step(random_actions(np.random.default_rng(0), venv.action_space.shape))
    venv._observed = False
    venv._observe()
    full = venv._obs.copy()
    venv._obs[:] = -7.0
    venv._observe(np.array([1, 3]))
    np.testing.assert_array_equal(venv._obs[[1, 3]], full[[1, 3]])
    assert (venv._obs[[0, 2]] == -7.0).all()
