"""A book of positions a user brings as CSV (``levgym simulate --book-csv FILE``).

One row per position. Columns (header names, case-insensitive, any order):

- ``collateral_asset``: collateral in units of the volatile asset (ETH), a number >= 0;
- ``debt_usd``: debt in units of the debt asset (a stablecoin), a number >= 0;
- ``behaviour`` (optional): ``passive`` (never acts, the default), ``defensive`` (tops up or
  repays below a trigger) or ``looper`` (re-levers and deleverages); their attributes (trigger,
  reaction probability, target) are drawn as for a drawn book.

A row with debt needs collateral (debt on no collateral is bad debt already). Every env holds the
same book; ``--positions`` larger than the file's rows leaves free slots for arrivals. Each
problem is one ``ValueError`` line naming the file, the line, the column, the value and what is
allowed; nothing is simulated before the whole file is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.rules import DEFENSIVE, LOOPER, PASSIVE
from ..io import csv_reader

BEHAVIOURS = {"passive": PASSIVE, "defensive": DEFENSIVE, "looper": LOOPER}
REQUIRED = ("collateral_asset", "debt_usd")
OPTIONAL = ("behaviour",)
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class BookTable:
    """The positions of a book file: collateral (asset), debt (debt asset), behaviour code."""

    collateral_asset: np.ndarray
    debt_usd: np.ndarray
    kind: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.collateral_asset.size)


def data_rows(reader: Any, header: list[str], label: str) -> Iterator[tuple[int, list[str]]]:
    """A book file's data rows after its header, with their line numbers (blank lines
    skipped); a row with another number of fields than the header is refused in one line."""
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{label}: line {line} has {len(row)} fields but the header has {len(header)}; "
                "allowed as many as the header"
            )
        yield line, row


def cell_number(
    label: str, line: int, col: str, raw: str, allowed: str = "a finite number >= 0",
    empty: float | None = None,
) -> float:  # fmt: skip
    """A book file's cell as a finite number >= 0 (``empty``: the value of an empty cell, None:
    an empty cell is refused); one line naming the file, line and column otherwise."""
    if empty is not None and not raw.strip():
        return empty
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{label}: line {line}, column {col}: {raw.strip()!r} is not allowed; allowed {allowed}"
        )
    return value


def read_book_csv(path: str | Path) -> BookTable:
    """The validated positions of a book file; raises one-line ``ValueError``s."""
    label = f"--book-csv {str(path)!r}"
    reader = csv_reader(path, label)
    header = next(reader, None)
    allowed_cols = ", ".join(REQUIRED + OPTIONAL)
    if not header or not any(h.strip() for h in header):
        raise ValueError(f"{label}: empty file; allowed a header row with columns {allowed_cols}")
    names = [h.strip().lower() for h in header]
    for col in REQUIRED:
        if col not in names:
            raise ValueError(
                f"{label}: line 1: no column {col!r} (found {', '.join(names)}); "
                f"allowed columns {allowed_cols}"
            )
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        raise ValueError(
            f"{label}: line 1: column {unknown[0]!r} is unknown; allowed columns {allowed_cols}"
        )
    ic, idd = names.index("collateral_asset"), names.index("debt_usd")
    ib = names.index("behaviour") if "behaviour" in names else None
    coll: list[float] = []
    debt: list[float] = []
    kind: list[int] = []
    for line, row in data_rows(reader, header, label):
        c = cell_number(label, line, "collateral_asset", row[ic])
        d = cell_number(label, line, "debt_usd", row[idd])
        if d > 0 and c == 0:
            raise ValueError(
                f"{label}: line {line}: debt_usd {row[idd].strip()} on collateral_asset 0; "
                "allowed debt only on collateral > 0"
            )
        k = PASSIVE
        if ib is not None:
            raw = row[ib].strip().lower()
            if raw:
                if raw not in BEHAVIOURS:
                    raise ValueError(
                        f"{label}: line {line}, column behaviour: {row[ib].strip()!r} is unknown; "
                        f"allowed {', '.join(BEHAVIOURS)} or empty (passive)"
                    )
                k = BEHAVIOURS[raw]
        coll.append(c)
        debt.append(d)
        kind.append(k)
        if len(coll) > MAX_ROWS:
            raise ValueError(f"{label}: more than {MAX_ROWS:,} positions; allowed at most that")
    if not coll or not any(c > 0 for c in coll):
        raise ValueError(f"{label}: no position with collateral > 0; allowed at least one")
    return BookTable(
        np.array(coll, dtype=np.float64),
        np.array(debt, dtype=np.float64),
        np.array(kind, dtype=np.int64),
    )


def book_state(
    params, book: BookTable, num_envs: int, positions: int, fundamental_usd, debt_price_usd,
    backend: str = "numpy", dtype: str = "float64", device: str | None = None,
):  # fmt: skip
    """A state whose every env holds ``book`` in its first slots (``positions`` slots, at least
    the book's rows; the rest free), at the first driver row's prices; behaviour attributes
    drawn as for a drawn book (:func:`levgym.engine.state.from_book`)."""
    from ..engine.state import from_book

    n = max(positions, book.rows)
    coll = np.zeros((num_envs, n))
    debt = np.zeros((num_envs, n))
    kind = np.zeros((num_envs, n), dtype=np.int64)
    coll[:, : book.rows] = book.collateral_asset
    debt[:, : book.rows] = book.debt_usd
    kind[:, : book.rows] = book.kind
    return from_book(
        params, coll, debt, np.asarray(fundamental_usd, dtype=np.float64), kind,
        np.asarray(debt_price_usd, dtype=np.float64), backend=backend, dtype=dtype, device=device,
    )  # fmt: skip
