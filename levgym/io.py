"""File input and output: atomic writes (a temporary file beside the target, then a rename), JSON
without NaN, figures, and CSV files read with one-line errors."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` then move the file onto ``path`` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def write_text(path: str | os.PathLike, text: str) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, _w)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as JSON; never NaN or Infinity (see :func:`finite_json`)."""
    return write_text(path, json.dumps(finite_json(obj), indent=2, allow_nan=False) + "\n")


def finite_json(obj: Any) -> Any:
    """``obj`` as plain JSON types, with every NaN or infinite float replaced by ``None``.

    JSON has no NaN or Infinity; ``null`` in levgym's JSON output means "undefined" (e.g. a ratio
    over zero). Inputs are validated to finite bounds, so a null never hides a bad input."""
    if isinstance(obj, dict):
        return {str(k): finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "tolist"):
        return finite_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if hasattr(obj, "item"):
        return finite_json(obj.item())
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return atomic_write(
        path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"), ".png"
    )


def csv_reader(path: str | os.PathLike, label: str) -> Any:
    """A ``csv.reader`` over a UTF-8 text file (a BOM is dropped); a missing file, a folder or
    bytes that are not UTF-8 raise one ``ValueError`` line starting with ``label``."""
    import csv

    p = Path(path)
    if not p.is_file():
        what = "no such file" if not p.exists() else "not a file"
        raise ValueError(f"{label}: {what}; allowed a CSV file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{label}: not a UTF-8 text file") from None
    return csv.reader(text.splitlines())
