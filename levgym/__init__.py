"""levgym: reinforcement-learning environments for leverage dynamics in DeFi lending."""

__version__ = "0.1.0"

from . import envs as _envs  # noqa: E402,F401  (registers levgym/Governance-v0 and levgym/Liquidator-v0)
