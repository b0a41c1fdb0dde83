"""One naming scheme for presets and run folders (described in docs/output-contract.md, section "Names").

- **Presets** (protocol presets, scenarios and scenario-preset files, evaluation suites, agent
  configs, baselines): lowercase snake_case, ``[a-z][a-z0-9_]*``; a YAML preset's file name is
  its name, with the extension ``.yaml``.
- **Run folders**: ``runs/<command>/<part>__<part>__...__<time>``, CleanRL's
  ``env__algo__seed__time``: parts joined by ``__``, the time last as ``YYYYmmdd-HHMMSS``. An env
  part is the env id with ``/`` replaced by ``-`` (``levgym-Governance-v0``), so a folder names
  the env version it ran.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
TIME_FORMAT = "%Y%m%d-%H%M%S"
SEPARATOR = "__"


def check_name(kind: str, name: str) -> str:
    """``name`` if it is lowercase snake_case, else a ValueError naming the kind and the rule."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not allowed; allowed lowercase snake_case ([a-z][a-z0-9_]*)"
        )
    return name


def env_part(env_id: str) -> str:
    """The run-folder part of an env id: ``levgym/Governance-v0`` -> ``levgym-Governance-v0``."""
    return env_id.replace("/", "-")


def _part(value: object) -> str:
    # a part never holds the separator or a path separator (csv:dir/file.csv -> csv-dir-file.csv)
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")
    return re.sub(r"_{2,}", "_", text) or "x"


def run_name(*parts: object, time: dt.datetime | None | bool = True) -> str:
    """``part__part__...__YYYYmmdd-HHMMSS`` (no time part with ``time=False``)."""
    names = [_part(p) for p in parts]
    if time is not False:
        stamp = time if isinstance(time, dt.datetime) else dt.datetime.now()
        names.append(stamp.strftime(TIME_FORMAT))
    return SEPARATOR.join(names)


def new_run_dir(command: str, *parts: object) -> Path:
    """``runs/<command>/<run_name(*parts)>``, with ``-1``, ``-2``... appended if it exists."""
    base = Path("runs") / command / run_name(*parts)
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{base.name}-{i}")
        i += 1
    return out


__all__ = ["check_name", "env_part", "run_name", "new_run_dir", "NAME_PATTERN", "TIME_FORMAT"]
