"""The YAML files shipped inside the package: algorithm hyperparameters (``agents/<algo>.yaml``),
scenario presets (``scenarios/<name>.yaml``), evaluation suites (``suites/<name>.yaml``) and
`levgym sweep` configs (``sweeps/<name>.yaml``).

They are package data (``importlib.resources``), so an installed wheel finds them wherever it
runs; a user's own file is always passed by path (``--config``, ``--suite``, ``--scenario``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

KINDS = ("agents", "scenarios", "suites", "sweeps")


def config_dir(kind: str) -> Path:
    """The folder of shipped configs of one kind (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"config kind {kind!r} is unknown; allowed {', '.join(KINDS)}")
    # a package installed from a wheel or a checkout is a folder on disk, so the Traversable is
    # a real path (zip imports are not supported: SB3 and numba need files anyway)
    return Path(str(resources.files(__name__).joinpath(kind)))


def shipped(kind: str) -> list[str]:
    """Names (file stems) of the shipped configs of one kind, sorted."""
    return sorted(p.stem for p in config_dir(kind).iterdir() if p.suffix in (".yaml", ".yml"))


__all__ = ["KINDS", "config_dir", "shipped"]
