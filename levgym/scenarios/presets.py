"""Scenario presets in YAML: a name, a registered scenario, and knob overrides of its defaults.

The registry stays the single source of builders and defaults; a preset only changes knobs::

    # levgym/configs/scenarios/perfect_storm.yaml (the preset's name is the file name)
    scenario: crash_drought_congestion
    description: ...
    knobs:
      drought_elasticity: 1.925
      depeg_peak_usd: 1.126

Presets shipped in ``levgym/configs/scenarios/`` (package data, so a wheel has them too) are
registered by name at import; any other file can be used by path
(``levgym simulate --scenario my.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from levgym.configs import config_dir

from .base import Scenario, _coerce_knob, get, register


def preset_dirs() -> list[Path]:
    """Folders searched for ``*.yaml`` presets: the package's ``configs/scenarios``."""
    return [config_dir("scenarios")]


def _check_value(where: str, key: str, default: Any, value: Any) -> Any:
    if isinstance(value, str):
        return _coerce_knob(where, key, default, value)
    if isinstance(default, bool) != isinstance(value, bool):
        raise ValueError(
            f"{where}: knobs.{key}={value!r} must be {type(default).__name__} like its default {default!r}"
        )
    if isinstance(default, int | float) and not isinstance(value, int | float):
        raise ValueError(f"{where}: knobs.{key}={value!r} must be a number")
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{where}: knobs.{key}={value!r} must be a string")
    return value


def preset_from_yaml(path: str | Path) -> Scenario:
    """The scenario a YAML preset describes (not registered). Errors name the file and the key."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"scenario preset file {str(p)!r} does not exist")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: must be a mapping with keys scenario, description, knobs")
    unknown = sorted(set(doc) - {"scenario", "description", "knobs"})
    if unknown:
        raise ValueError(f"{p}: unknown key {unknown[0]!r}; allowed scenario, description, knobs")
    if "scenario" not in doc:
        raise ValueError(f"{p}: missing key 'scenario' (the registered scenario it modifies)")
    base = get(str(doc["scenario"]))
    knobs_in = doc.get("knobs") or {}
    if not isinstance(knobs_in, dict):
        raise ValueError(f"{p}: knobs must be a mapping of knob: value")
    knobs = dict(base.knobs)
    for key, value in knobs_in.items():
        if key not in knobs:
            allowed = ", ".join(sorted(knobs))
            raise ValueError(
                f"{p}: unknown knob {key!r} for scenario {base.name!r}; allowed {allowed}"
            )
        knobs[key] = _check_value(str(p), key, knobs[key], value)
    changed = ", ".join(f"{k}={v}" for k, v in knobs_in.items()) or "defaults"
    shipped = p.resolve().parent == config_dir("scenarios").resolve()
    where = f"levgym/configs/scenarios/{p.name}" if shipped else str(p)
    return Scenario(
        name=p.stem,
        kind="preset",
        description=str(doc.get("description") or f"{base.name} with {changed}"),
        source=f"{where}: {base.name} with {changed}",
        build=base.build,
        knobs=knobs,
    )


def preset_files() -> list[Path]:
    """The preset files found in :func:`preset_dirs`, by name (the first folder wins)."""
    seen: dict[str, Path] = {}
    for d in preset_dirs():
        for f in sorted(d.glob("*.yaml")):
            seen.setdefault(f.stem, f)
    return [seen[k] for k in sorted(seen)]


def register_presets() -> list[str]:
    """Register every preset file found; returns their names."""
    names = []
    for f in preset_files():
        register(preset_from_yaml(f))
        names.append(f.stem)
    return names
