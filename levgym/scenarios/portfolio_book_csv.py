"""A multi-asset book of positions a user brings as CSV (``levgym simulate --preset
aave_v3_ethereum --book-csv FILE``).

One row per position. Columns (header names case-insensitive, any order; only the amount
columns the book uses need to be there):

- ``collateral_<SYM>``: supply of reserve ``SYM`` (``collateral_WETH``, ``collateral_wstETH``,
  ...) in asset units, a number >= 0 (empty = 0); ``SYM`` a reserve usable as collateral;
- ``debt_<SYM>``: debt in reserve ``SYM`` (``debt_USDC``, ``debt_WETH``, ...) in asset units, a
  number >= 0 (empty = 0); ``SYM`` a borrowable reserve;
- ``emode`` (optional): the position's E-mode category, its id (``1``, ``8``) or label
  (``ETH correlated``), ``0`` or empty for none;
- ``behaviour`` (optional): ``passive`` (never acts; empty = passive), ``topup`` or ``repay``
  (a defensive position, :mod:`levgym.engine.portfolio_borrowers`: below its trigger it adds
  collateral or repays; its trigger and capacity drawn as ``borrowers.*`` say). Without the
  column, ``borrowers.defensive_frac`` draws the behaviours as for a drawn book;
- ``position`` (optional): a label, unused.

The rules a row must meet, each a one-line ``ValueError`` naming the file, the line, the column
or value and what is allowed (:func:`read_portfolio_book_csv`; nothing is simulated before the
whole file is read):

- amounts finite and >= 0; debt only on a position with collateral; a row of zeros is an empty
  slot (kept);
- ``validateSetUserEMode`` / ``validateBorrow``: with an E-mode, every debt reserve is borrowable
  in the category; in **isolation mode** (the only collateral is a reserve with a debt ceiling)
  every debt reserve is borrowable in isolation, and the isolated debt of the whole book (Aave's
  nominal units: one unit of any borrowed asset counts as $1) is within each ceiling.

and, at the start oracle prices of the run (:func:`check_book`, before any path runs):

- **HF >= 1** for every position with debt: a position liquidatable at t = 0 is refused (a drawn
  book starts with HF > 1 too). Unlike a drawn book, a position may owe more than its LTV allows
  (``debt > sum coll * price * LTV``): a real position whose collateral fell since it borrowed
  does; it may not borrow more and is otherwise simulated like any other.
- Supply and borrow caps are not checked against the book (a drawn book does not check them
  either; the caps bind new supply and borrowing, not existing positions).

Every env holds the same book in its first slots; ``--positions`` larger than the file's rows
leaves empty slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.params import closest_hint
from ..engine.portfolio import Reserves, account_data, isolation_total_debt
from ..io import csv_reader
from .book_csv import cell_number, data_rows

BEHAVIOURS = ("passive", "topup", "repay")
"""Values of the ``behaviour`` column (empty = passive)."""
MAX_ROWS = 1_000_000
PREFIXES = ("collateral_", "debt_")


@dataclass(frozen=True, eq=False)
class PortfolioBookTable:
    """The positions of a multi-asset book file."""

    supply: np.ndarray
    """``[R, K]`` collateral balances (asset units)."""
    debt: np.ndarray
    """``[R, K]`` debt balances (asset units)."""
    emode_row: np.ndarray
    """``[R]`` row of each position's E-mode category in ``Reserves.emode_table`` (0 = none)."""
    behaviour: np.ndarray | None
    """``[R]`` index into :data:`BEHAVIOURS`, None without a ``behaviour`` column."""
    lines: np.ndarray
    """``[R]`` the file line of each position (for messages)."""
    label: str
    """``--book-csv 'FILE'``."""

    @property
    def rows(self) -> int:
        return int(self.supply.shape[0])


def _number(label: str, line: int, col: str, raw: str) -> float:
    return cell_number(
        label, line, col, raw, "a finite number >= 0 (asset units) or empty (0)", empty=0.0
    )


def _emode(label: str, line: int, raw: str, reserves: Reserves) -> int:
    raw = raw.strip()
    if raw in ("", "0"):
        return 0
    by_label = {c.label.lower(): c.id for c in reserves.emodes}
    cid = by_label.get(raw.lower())
    if cid is None:
        try:
            cid = int(raw)
        except ValueError:
            cid = -1
    ids = [c.id for c in reserves.emodes]
    if cid not in ids:
        allowed = ", ".join(f"{c.id} ({c.label})" for c in reserves.emodes)
        raise ValueError(
            f"{label}: line {line}, column emode: {raw!r} is not a category of this market; "
            f"allowed 0 or empty (none), {allowed}"
        )
    return reserves.emode_row(cid)


def read_portfolio_book_csv(path: str | Path, reserves: Reserves) -> PortfolioBookTable:
    """The validated positions of a multi-asset book file for ``reserves`` (module docstring);
    raises one-line ``ValueError``s. The HF check needs prices: :func:`check_book`."""
    label = f"--book-csv {str(path)!r}"
    reader = csv_reader(path, label)
    header = next(reader, None)
    syms = reserves.symbols
    example = "position,emode,collateral_WETH,collateral_wstETH,debt_WETH,debt_USDC,behaviour"
    if not header or not any(h.strip() for h in header):
        raise ValueError(f"{label}: empty file; allowed a header row such as {example}")
    names = [h.strip() for h in header]
    lower_sym = {s.lower(): k for k, s in enumerate(syms)}
    amount_cols: list[tuple[int, str, int]] = []  # (column, kind, reserve)
    special: dict[str, int] = {}
    for c, name in enumerate(names):
        low = name.lower()
        if low in ("emode", "behaviour", "position"):
            if low in special:
                raise ValueError(f"{label}: line 1: column {name!r} appears twice; allowed once")
            special[low] = c
            continue
        prefix = next((p for p in PREFIXES if low.startswith(p)), None)
        if prefix is None:
            raise ValueError(
                f"{label}: line 1: column {name!r} is unknown; allowed collateral_<SYMBOL>, "
                f"debt_<SYMBOL> (SYMBOL one of {', '.join(syms)}), emode, behaviour, position"
            )
        sym = name[len(prefix) :]
        k = lower_sym.get(sym.lower())
        if k is None:
            raise ValueError(
                f"{label}: line 1: column {name!r}: {sym!r} is not a reserve of this market"
                f"{closest_hint(sym, syms)}; allowed {', '.join(syms)}"
            )
        kind = prefix[:-1]
        r = reserves.reserves[k]
        if kind == "collateral" and not r.can_collateral:
            raise ValueError(
                f"{label}: line 1: column {name!r}: {syms[k]} is not usable as collateral; allowed "
                f"collateral_ of {', '.join(s for s, x in zip(syms, reserves.can_collateral, strict=True) if x)}"
            )
        if kind == "debt" and not r.can_borrow:
            raise ValueError(
                f"{label}: line 1: column {name!r}: {syms[k]} is not borrowable; allowed debt_ of "
                f"{', '.join(s for s, x in zip(syms, reserves.can_borrow, strict=True) if x)}"
            )
        if any(kk == kind and rr == k for _, kk, rr in amount_cols):
            raise ValueError(f"{label}: line 1: column {name!r} appears twice; allowed once")
        amount_cols.append((c, kind, k))
    if not any(kind == "collateral" for _, kind, _ in amount_cols):
        raise ValueError(
            f"{label}: line 1: no collateral_<SYMBOL> column; allowed a header such as {example}"
        )
    table = reserves.emode_table
    supply_rows: list[np.ndarray] = []
    debt_rows: list[np.ndarray] = []
    emode_rows: list[int] = []
    behaviour: list[int] = []
    lines: list[int] = []
    for line, row in data_rows(reader, header, label):
        s = np.zeros(reserves.k)
        d = np.zeros(reserves.k)
        for c, kind, k in amount_cols:
            v = _number(label, line, names[c], row[c])
            (s if kind == "collateral" else d)[k] = v
        er = _emode(label, line, row[special["emode"]], reserves) if "emode" in special else 0
        b = 0
        if "behaviour" in special:
            raw = row[special["behaviour"]].strip().lower()
            if raw:
                if raw not in BEHAVIOURS:
                    raise ValueError(
                        f"{label}: line {line}, column behaviour: {row[special['behaviour']].strip()!r} "
                        f"is unknown; allowed {', '.join(BEHAVIOURS)} or empty (passive)"
                    )
                b = BEHAVIOURS.index(raw)
        owed = [syms[k] for k in range(reserves.k) if d[k] > 0]
        if owed and not np.any(s > 0):
            raise ValueError(
                f"{label}: line {line}: debt in {', '.join(owed)} on no collateral; allowed debt "
                "only on a position with collateral > 0"
            )
        if er > 0:
            bad = [x for x in owed if not table["borrowable"][er, syms.index(x)]]
            if bad:
                c = reserves.emodes[er - 1]
                raise ValueError(
                    f"{label}: line {line}: debt in {bad[0]} with emode {c.id} ({c.label}); allowed "
                    f"debt only in {', '.join(c.borrowable)} in that category (validateSetUserEMode)"
                )
        held = [k for k in range(reserves.k) if s[k] > 0 and reserves.can_collateral[k]]
        if len(held) == 1 and reserves.debt_ceiling_usd[held[0]] > 0:
            bad = [x for x in owed if not reserves.borrowable_in_isolation[syms.index(x)]]
            if bad:
                raise ValueError(
                    f"{label}: line {line}: debt in {bad[0]} on isolated collateral {syms[held[0]]} "
                    "(isolation mode); allowed debt only in reserves borrowable in isolation ("
                    f"{', '.join(s for s, x in zip(syms, reserves.borrowable_in_isolation, strict=True) if x)})"
                )
        supply_rows.append(s)
        debt_rows.append(d)
        emode_rows.append(er)
        behaviour.append(b)
        lines.append(line)
        if len(lines) > MAX_ROWS:
            raise ValueError(f"{label}: more than {MAX_ROWS:,} positions; allowed at most that")
    if not supply_rows or not any(np.any(s > 0) for s in supply_rows):
        raise ValueError(f"{label}: no position with collateral > 0; allowed at least one")
    supply = np.array(supply_rows)
    debt = np.array(debt_rows)
    emode = np.array(emode_rows, dtype=np.int64)
    acct = account_data(supply, debt, np.ones(reserves.k), reserves, emode)
    iso = isolation_total_debt(debt, reserves, acct)
    over = np.nonzero((reserves.debt_ceiling_usd > 0) & (iso > reserves.debt_ceiling_usd))[0]
    if over.size:
        k = int(over[0])
        raise ValueError(
            f"{label}: isolated positions owe {iso[k]:,.0f} (nominal units) against "
            f"{syms[k]}; allowed at most its debt ceiling {reserves.debt_ceiling_usd[k]:,.0f}"
        )
    return PortfolioBookTable(
        supply=supply,
        debt=debt,
        emode_row=emode,
        behaviour=np.array(behaviour, dtype=np.int64) if "behaviour" in special else None,
        lines=np.array(lines, dtype=np.int64),
        label=label,
    )


def check_book(book: PortfolioBookTable, reserves: Reserves, oracle_usd: np.ndarray) -> None:
    """One line for the first position with debt whose HF at ``oracle_usd [K]`` (the run's start
    oracle) is below 1."""
    acct = account_data(book.supply, book.debt, np.asarray(oracle_usd), reserves, book.emode_row)
    bad = np.nonzero((acct.debt_usd > 0) & (acct.health_factor < 1.0))[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{book.label}: line {book.lines[i]}: HF {acct.health_factor[i]:.4f} at the start "
            f"oracle prices (collateral {acct.collateral_usd[i]:,.0f} USD, debt "
            f"{acct.debt_usd[i]:,.0f} USD); allowed HF >= 1 (a position liquidatable at the start "
            "is refused)"
        )


def book_arrays(book: PortfolioBookTable, num_envs: int, positions: int) -> dict[str, np.ndarray]:
    """``supply``, ``debt`` ``[E, N, K]``, ``emode_row`` ``[E, N]`` and ``behaviour`` ``[E, N]``
    (-1 where the file says nothing: drawn from ``borrowers.defensive_frac``) with the book in
    every env's first slots; ``N = max(positions, rows)``."""
    n = max(int(positions), book.rows)
    k = book.supply.shape[1]
    supply = np.zeros((num_envs, n, k))
    debt = np.zeros((num_envs, n, k))
    emode = np.zeros((num_envs, n), dtype=np.int64)
    behaviour = np.full((num_envs, n), -1 if book.behaviour is None else 0, dtype=np.int64)
    supply[:, : book.rows] = book.supply
    debt[:, : book.rows] = book.debt
    emode[:, : book.rows] = book.emode_row
    if book.behaviour is not None:
        behaviour[:, : book.rows] = book.behaviour
    return {"supply": supply, "debt": debt, "emode_row": emode, "behaviour": behaviour}
