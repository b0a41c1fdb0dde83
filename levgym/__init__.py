"""levgym: reinforcement-learning environments for leverage dynamics in DeFi lending."""

__version__ = "0.1.0"
