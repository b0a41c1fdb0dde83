"""The few element-wise operations the market's rules are written against, bound to arrays.

:mod:`levgym.engine.rules` writes every formula with arithmetic operators and these names only.
Here they act on numpy arrays and torch tensors (either argument may be a Python number);
:mod:`levgym.engine.fused` binds the same names to numba scalar functions and compiles the same
rule text for its per-position loops. A rule must therefore use nothing else: no methods, no
``xp``, no Python ``and``/``or``/``not`` on values (use ``and_``, ``or_``, ``not_``), and no
branch on a value (only on a parameter that is a plain Python number).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

INF = math.inf

__all__ = [
    "INF",
    "abs_",
    "and_",
    "clip",
    "exp",
    "floor",
    "log",
    "maximum",
    "minimum",
    "not_",
    "or_",
    "sqrt",
    "where",
    "OP_NAMES",
]


def _torch(*xs: Any) -> Any:
    """The torch module if any argument is a tensor, else None."""
    for x in xs:
        if type(x).__module__.startswith("torch"):
            import torch

            return torch
    return None


def where(cond: Any, a: Any, b: Any) -> Any:
    t = _torch(cond, a, b)
    if t is None:
        return np.where(cond, a, b)
    if not isinstance(cond, t.Tensor):
        cond = t.as_tensor(cond)
    return t.where(cond, a, b)


def minimum(a: Any, b: Any) -> Any:
    t = _torch(a, b)
    if t is None:
        return np.minimum(a, b)
    if not isinstance(b, t.Tensor):
        return t.clamp(a, max=b)
    if not isinstance(a, t.Tensor):
        return t.clamp(b, max=a)
    return t.minimum(a, b)


def maximum(a: Any, b: Any) -> Any:
    t = _torch(a, b)
    if t is None:
        return np.maximum(a, b)
    if not isinstance(b, t.Tensor):
        return t.clamp(a, min=b)
    if not isinstance(a, t.Tensor):
        return t.clamp(b, min=a)
    return t.maximum(a, b)


def clip(x: Any, lo: float, hi: float) -> Any:
    """``min(max(x, lo), hi)``; ``lo`` and ``hi`` are numbers (``-INF`` / ``INF`` for none)."""
    return minimum(maximum(x, lo), hi)


def _unary(np_fn: Any, name: str, math_fn: Any):
    def fn(x: Any) -> Any:
        t = _torch(x)
        if t is not None:
            return getattr(t, name)(x)
        if isinstance(x, np.ndarray | np.generic):
            return np_fn(x)
        return math_fn(x)

    fn.__name__ = name
    return fn


exp = _unary(np.exp, "exp", math.exp)
log = _unary(np.log, "log", math.log)
sqrt = _unary(np.sqrt, "sqrt", math.sqrt)
floor = _unary(np.floor, "floor", math.floor)
abs_ = _unary(np.abs, "abs", abs)


def and_(a: Any, b: Any) -> Any:
    return a & b


def or_(a: Any, b: Any) -> Any:
    return a | b


def not_(a: Any) -> Any:
    return ~a


# The names a rule may use besides arithmetic; fused.py binds each to a numba scalar function.
OP_NAMES = (
    "where",
    "minimum",
    "maximum",
    "clip",
    "exp",
    "log",
    "sqrt",
    "floor",
    "abs_",
    "and_",
    "or_",
    "not_",
)
