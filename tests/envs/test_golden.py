"""Golden hashes: what each env computes for a seed and seeded random actions, across many
episode starts, may not change without a version bump.

Every env id is run as a single env (``gym.make``, reset by the loop when an episode ends) and
as a vector env of three envs (same-step autoreset), with short horizons so that episodes of
every scenario of the default mixture start many times. The hash covers the observations,
rewards, terminations, truncations and every info value (the ended episodes' final
observations and final infos included). The expected digests were recorded on the revision
before the per-step overhead work (issue 12); a change of a digest means the env computes
something else, which needs a new env version instead.

Float bits of ``exp`` and ``log`` depend on NumPy's SIMD code for the CPU and on the library
versions, so the digests hold where they were recorded (``RECORDED_ON``) and the tests skip
elsewhere. To record them for another platform, run this file with Python on the revision
before a change (it prints the digests) and paste them here.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numba
import numpy as np
import pytest

import levgym.envs  # noqa: F401  (registers the ids)


def platform_key() -> dict[str, object]:
    """What the float bits of the digests depend on besides the code."""
    from numpy._core._multiarray_umath import __cpu_features__ as cpu

    return {
        "machine": platform.machine(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "simd": sorted(k for k in ("AVX2", "AVX512F", "AVX512_SKX", "FMA3") if cpu.get(k)),
    }


RECORDED_ON = {
    "machine": "x86_64",
    "numpy": "2.4.6",
    "numba": "0.68.1",
    "simd": ["AVX2", "AVX512F", "AVX512_SKX", "FMA3"],
}
pytestmark = pytest.mark.skipif(
    platform_key() != RECORDED_ON,
    reason=f"digests recorded on {RECORDED_ON}, this is {platform_key()}",
)

# env id -> (horizon in hours: a few steps, steps to run)
CASES = {
    "levgym/Governance-v0": (3.0, 40),
    "levgym/Governance-v1": (3.0, 24),
    "levgym/Liquidator-v0": (0.5, 60),
    "levgym/Liquidator-v1": (0.5, 60),
    "levgym/Liquidator-v2": (0.5, 60),
    "levgym/Governance-v2": (3.0, 24),
    "levgym/Liquidator-v3": (0.5, 60),
}

GOLDEN = {
    (
        "levgym/Governance-v0",
        "single",
        "numba",
    ): "fbb719d468fc53a7663fc0bc24bcdb926f3d33d687109c3c484bda82b536f9ff",
    (
        "levgym/Governance-v0",
        "vector",
        "numba",
    ): "4d31075a1385fb9ef5995b54de31b8835a31a20dec0ad606873229aafe9a3b93",
    (
        "levgym/Governance-v0",
        "vector",
        "numpy",
    ): "2d41c3c68bf8e808f36f21534bcf568cf75c7c31f6f183c5601c11f6caa3bc1f",
    (
        "levgym/Governance-v1",
        "single",
        "numba",
    ): "0829dd128820c556dd7729255fe174040d15d6d5f8b2f25f48385a1093e0ccac",
    (
        "levgym/Governance-v1",
        "vector",
        "numba",
    ): "e40fffa7f77f14d5da59cbd3de60ba04c51c15255f7d428ab49474e3042e9aef",
    (
        "levgym/Liquidator-v0",
        "single",
        "numba",
    ): "7cd656feb605b524cb1e9f326bc701924f4b49f6e9166e7e5eea1c633038e003",
    (
        "levgym/Liquidator-v0",
        "vector",
        "numba",
    ): "d07e69c25b34ceff03f2261da7be100f384e07c9b2f6e3a247d16158a4303c9c",
    (
        "levgym/Liquidator-v0",
        "vector",
        "numpy",
    ): "1d28c199005185a41e8491cdb85b6691332075a52c551e133ce1c4af43a4456c",
    (
        "levgym/Liquidator-v1",
        "single",
        "numba",
    ): "7cd656feb605b524cb1e9f326bc701924f4b49f6e9166e7e5eea1c633038e003",
    (
        "levgym/Liquidator-v1",
        "vector",
        "numba",
    ): "d07e69c25b34ceff03f2261da7be100f384e07c9b2f6e3a247d16158a4303c9c",
    (
        "levgym/Liquidator-v2",
        "single",
        "numba",
    ): "e32938f51ecc054a8b04cb536f8b97d3e157731e0e54789608b7e4f6332396a4",
    (
        "levgym/Liquidator-v2",
        "vector",
        "numba",
    ): "c1a938f0ca26a9ad1534b032bc89a2edf45c16dd06294e5f227452f28a402a91",
    # the warm-book ids, recorded when they were added (their pools warmed with numba)
    (
        "levgym/Governance-v2",
        "single",
        "numba",
    ): "6facb0af49e7c0e85d310ed24825073c6ba6ab66b7ce45b51a02bd5ba1b22e3a",
    (
        "levgym/Governance-v2",
        "vector",
        "numba",
    ): "a6704e9a027adcfdb24d0c42f343ea3700b54b69ae5beb14f4ce2415cc0ef46a",
    (
        "levgym/Liquidator-v3",
        "single",
        "numba",
    ): "2c9eb2d50fdd8e66860e7353747a3ea7efe629ddd0f2ea7d832fd64ae884910a",
    (
        "levgym/Liquidator-v3",
        "vector",
        "numba",
    ): "5a721f386e38f75b16c346e58e821b6cf8f63b55f077ad3d4fae22301622f0b4",
}


def _feed(h: Any, value: Any) -> None:
    """Add ``value`` (an info value, an observation, a nested dict) to the hash ``h``."""
    if isinstance(value, Mapping):
        for key in sorted(value):
            h.update(repr(key).encode())
            _feed(h, value[key])
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for v in value:
            _feed(h, v)
    elif isinstance(value, np.ndarray):
        h.update(str(value.dtype).encode() + repr(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, bool | int | float | str | np.generic) or value is None:
        h.update(type(value).__name__.encode() + repr(value).encode())
    else:
        raise TypeError(f"cannot hash a {type(value).__name__}")


def digest(env_id: str, kind: str, backend: str) -> str:
    horizon, steps = CASES[env_id]
    kw = {"num_positions": 16, "horizon_h": horizon, "backend": backend}
    if kind == "single":
        env = gym.make(env_id, **kw)
        shape = env.action_space.shape
    else:
        env = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", **kw)
        shape = env.action_space.shape
    h = hashlib.sha256()
    rng = np.random.default_rng(11)
    obs, info = env.reset(seed=5)
    _feed(h, obs)
    _feed(h, info)
    try:
        for _ in range(steps):
            out = env.step(rng.uniform(-1.2, 1.2, shape))
            for v in out:
                _feed(h, v)
            if kind == "single" and (out[2] or out[3]):
                obs, info = env.reset()
                _feed(h, obs)
                _feed(h, info)
    finally:
        env.close()
    return h.hexdigest()


@pytest.mark.parametrize(("env_id", "kind", "backend"), sorted(GOLDEN))
def test_seeded_random_steps_over_resets_are_unchanged(env_id, kind, backend):
    assert digest(env_id, kind, backend) == GOLDEN[(env_id, kind, backend)]


# every scenario registered by levgym itself (named here: the library grows independently)
SCENARIOS = (
    "black_thursday_2020", "black_thursday_2020_fast", "bootstrap_eth", "calm",
    "compound_dai_oracle_2020", "congestion", "crash_drought_congestion", "crash_oracle_attack",
    "dai_depeg", "garch_clustered", "gbm_calm", "gbm_high_vol", "liquidity_drought", "may19_2021",
    "merton_crash", "merton_jumps", "oracle_frozen", "oracle_manipulation", "perfect_storm",
    "regime_stress", "regime_switching", "shock",
)  # fmt: skip
# Re-recorded when the keeper venues added three state fields (keeper_cex_pending_asset and two
# counters, all zero by default): without them the digest is the one recorded before the
# overhead work, e272846410346b23051d1ce8514ea8e9ae5ea6c4a58b38078f647e1e95e832bd.
EPISODE_STARTS_GOLDEN = "c9bd7ef71e0c026dd3b264b19a7f09911c3120ff0e2d4a13672c6a888dc6d293"


def episode_starts_digest() -> str:
    """The driver bank and the state after the first episodes of 40 envs over every scenario,
    then after two partial restarts (numba, packed and unpacked) and a knob override."""
    from levgym.engine.params import EngineParams
    from levgym.market import MarketRunner

    h = hashlib.sha256()
    for packed in (True, False):
        runner = MarketRunner(
            EngineParams(), 40, 8, 300, scenarios=list(SCENARIOS),
            scenario_weights=np.ones(len(SCENARIOS)), packed=packed,
            scenario_overrides={"gbm_calm": {"vol_annual": "0.9"}},
        )  # fmt: skip
        runner.seed([3 + i for i in range(40)])
        mask = np.ones(40, dtype=bool)
        for k in range(3):
            runner.new_episodes(mask)
            _feed(h, runner.bank)
            _feed(h, runner.scenario_index)
            _feed(h, runner.noise_key)
            state = runner.state
            for name in sorted(state.__dataclass_fields__):
                _feed(h, np.asarray(getattr(state, name)))
            runner.substep()
            mask = np.arange(40) % (k + 2) == 0
    return h.hexdigest()


def test_episode_starts_of_every_scenario_are_unchanged():
    assert episode_starts_digest() == EPISODE_STARTS_GOLDEN


if __name__ == "__main__":  # print the digests of this revision (to record them)
    print(platform_key())
    for key in sorted(GOLDEN):
        print(f"    {key!r}: {digest(*key)!r},")
    print(episode_starts_digest())
