"""A harness that times a peer's governance env beside levgym's, in the same bench run.

The peer is Auto.gov (Xu, Feng, Perez and Livshits, "Auto.gov: Learning-based Governance for
Decentralized Finance", IEEE TSC 2025; https://github.com/xujiahuayz/auto-gov), the only open
RL environment of lending-protocol governance we know of: one user and three lending pools in
pure Python. levgym ships none of its code. Give ``levgym bench --peer DIR`` a checkout of it
(the folder holding its ``market_env/`` and ``rl/`` packages); the harness then runs its step
loop in a subprocess (so its modules never mix with levgym's) with pre-drawn random actions, as
its own ``ProtocolEnv.step`` does: ``act_update_react``, ``get_state``, ``get_reward``,
``is_done`` and a reset when an episode ends. This runs the peer's code: point it only at a
checkout you trust.

``python -m levgym.bench.peer --source DIR [--steps N] [--json]`` runs the harness alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PEER_NAME = "Auto.gov (xujiahuayz/auto-gov)"
REQUIRED = ("market_env/env.py", "rl/utils.py")


def check_source(source: str | Path) -> Path:
    """The peer's checkout folder, or a ValueError naming what is missing."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise ValueError(f"--peer {source}: no such folder; allowed a checkout of {PEER_NAME}")
    missing = [p for p in REQUIRED if not (root / p).is_file()]
    if missing:
        raise ValueError(
            f"--peer {source}: {', '.join(missing)} not found; allowed a checkout of {PEER_NAME} "
            "(the folder holding its market_env/ and rl/ packages)"
        )
    return root


def _run_inside(source: Path, steps: int, seed: int, max_steps: int) -> dict[str, Any]:
    """The timed loop, run in the subprocess with the peer's folder first on ``sys.path``."""
    import numpy as np

    sys.path.insert(0, str(source))
    from rl.utils import init_env  # the peer's own constructor (its 3 pools, 1 user)

    env = init_env(max_steps=max_steps)
    n_actions = env.num_action_pool ** len(env.plf_pools)
    actions = np.random.default_rng(seed).integers(0, n_actions, steps + 200).tolist()
    env.reset()

    def loop(acts: list[int]) -> int:
        episodes = 0
        for a in acts:
            env.act_update_react(a)
            env.get_state()
            env.get_reward()
            if env.is_done():
                env.reset()
                episodes += 1
        return episodes

    loop(actions[:200])  # warm-up
    t0 = time.perf_counter()
    episodes = loop(actions[200:])
    seconds = time.perf_counter() - t0
    return {
        "env": PEER_NAME,
        "env_steps_per_s": steps / seconds,
        "seconds": seconds,
        "steps": steps,
        "episodes_ended": episodes,
        "actions": f"random (pre-drawn), Discrete({n_actions})",
        "max_steps": max_steps,
    }


def peer_rate(
    source: str | Path, steps: int = 5000, seed: int = 0, max_steps: int = 30
) -> dict[str, Any]:
    """Env-steps per second of the peer's single env (see the module doc), from a subprocess."""
    root = check_source(source)
    cmd = [
        sys.executable, "-m", "levgym.bench.peer", "--source", str(root), "--steps", str(steps),
        "--seed", str(seed), "--max-steps", str(max_steps), "--json", "--inside",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the peer's step loop failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m levgym.bench.peer", description=__doc__)
    parser.add_argument("--source", required=True, help="a checkout of xujiahuayz/auto-gov")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=30, help="the peer's episode length")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.max_steps < 1:
        print("--steps and --max-steps must be integers >= 1", file=sys.stderr)
        return 2
    try:
        root = check_source(args.source)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if args.inside:
        out = _run_inside(root, args.steps, args.seed, args.max_steps)
    else:
        out = peer_rate(root, args.steps, args.seed, args.max_steps)
    print(
        json.dumps(out) if args.json else f"{out['env']}: {out['env_steps_per_s']:,.0f} env-steps/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
