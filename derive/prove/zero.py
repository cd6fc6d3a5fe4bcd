"""The one exact zero test every proof step ends in.

``is_zero(e)`` is True only if ``e`` is identically 0 as a rational function of its
atoms (``expand``; for rational functions, ``together`` and ``expand`` of the numerator).
Atoms are treated as independent symbols, so True is always sound; False says nothing.

Two cores answer it: ``symengine`` (the default when SymEngine is installed:
:mod:`derive.prove.core`, which defers to SymPy whenever its "not 0" is not final) and
``sympy`` (SymPy alone, the reference).  :func:`use_core` switches between them
(``derive check --core sympy``); both give the same verdicts, the first much faster.
"""

from __future__ import annotations

import math

import sympy
from sympy import Expr

from derive.prove import core as _core

MAX_OPS = 20_000  # larger differences are not expanded (unproven, said so)
MAX_TERMS = 200_000  # nor those whose expansion would have more terms (sum(Z1)**64: about 10**22)


CORES = ("symengine", "sympy")
_CORE: str | None = None  # decided on first use: symengine when it is installed


def _default() -> str:
    return "symengine" if _core.available() else "sympy"


def use_core(name: str) -> None:
    """Decide zero tests with ``symengine`` (when installed) or ``sympy`` alone."""
    global _CORE
    if name not in CORES:
        raise ValueError(f"core must be one of {CORES}, got {name!r}")
    if name == "symengine" and not _core.available():
        raise ValueError("the symengine core needs the symengine package (pip install symengine)")
    _CORE = name


def current_core() -> str:
    """The core that decides zero tests now: ``symengine`` or ``sympy``."""
    global _CORE
    if _CORE is None:
        _CORE = _default()
    return _CORE


class TooLarge(ArithmeticError):
    """An expression too large to reduce within the limits."""


def is_zero(expr: Expr) -> bool:
    """True only if ``expr`` is identically 0 as a rational function of its atoms."""
    if expr == 0:
        return True
    if expanded_terms(expr) > MAX_TERMS:  # (before any core expands it: sum(Z1)**64 has ~10**22 terms)
        raise TooLarge
    if current_core() == "symengine":
        fast = _core.is_zero(expr)
        if fast is not None:
            return fast
    if size_exceeds(expr, MAX_OPS):
        raise TooLarge
    if any(p.exp.is_negative for p in expr.atoms(sympy.Pow)):
        # a rational function: combine first, then expand only the numerator (expanding
        # first multiplies out every sum of fractions: 188 s against 0.02 s, measured)
        num, _ = sympy.fraction(sympy.together(expr))
        return sympy.expand(num) == 0
    return sympy.expand(expr) == 0  # a polynomial in the atoms


def size_exceeds(expr: Expr, limit: int) -> bool:
    """Whether the expression tree has more than ``limit`` nodes (stops counting early)."""
    stack = [expr]
    n = 0
    while stack:
        e = stack.pop()
        n += 1
        if n > limit:
            return True
        stack.extend(e.args)
    return False


def expanded_terms(expr: Expr, cap: int = 10**12) -> int:
    """An upper bound on the terms of ``expand(expr)``, computed from the tree without
    expanding (a sum adds its terms, a product multiplies them, a power n of a sum of k
    terms has at most C(n + k - 1, n)); capped at ``cap``."""
    memo: dict[Expr, int] = {}

    def terms(e: Expr) -> int:
        known = memo.get(e)
        if known is not None:
            return known
        if e.is_Add:
            n = min(cap, sum(terms(a) for a in e.args))
        elif e.is_Mul:
            n = 1
            for a in e.args:
                n = min(cap, n * terms(a))
        elif e.is_Pow and e.exp.is_Integer and e.exp > 1:
            k = terms(e.base)
            n = 1 if k == 1 else min(cap, math.comb(int(e.exp) + k - 1, int(e.exp)) if k < cap else cap)
        else:
            n = 1
        memo[e] = n
        return n

    return terms(expr)
