"""∂L/∂s for many symbols s of one large loss, faster than ``sympy.diff`` one by one.

The truth of a backward block is ∂L/∂s for every entry s of a value: for a convolution
or an attention layer, hundreds of symbols of a loss with thousands of terms.
``sympy.diff`` walks the whole expression for each symbol and recomputes the free
symbols of every sub-expression on the way.  Here the free symbols of each node are
computed once (memoised), the sum and product rules are applied only to the branches
that contain s, and every other node (powers, functions, derive's own step functions)
is differentiated by SymPy itself.  The sum and product rules are exact, so the result
is the same derivative as SymPy's (possibly grouped differently); the judge proves
``claimed − true = 0`` whatever the grouping.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy
from sympy import Expr, Integer

__all__ = ["Differentiator"]


class Differentiator:
    """∂loss/∂s for symbols s of one loss, sharing the free-symbol sets of its nodes."""

    def __init__(self, loss: Expr) -> None:
        self.loss = loss
        self._free: dict[Expr, frozenset[sympy.Basic]] = {}

    def free(self, e: Expr) -> frozenset[sympy.Basic]:
        got = self._free.get(e)
        if got is None:
            if e.is_Symbol:
                got = frozenset((e,))
            elif e.is_Atom:
                got = frozenset()
            elif isinstance(e, (sympy.Add, sympy.Mul)):
                got = frozenset().union(*(self.free(a) for a in e.args))
            else:
                got = frozenset(e.free_symbols)
            self._free[e] = got
        return got

    def diff(self, s: sympy.Symbol, e: Expr | None = None) -> Expr:
        e = self.loss if e is None else e
        if s not in self.free(e):
            return Integer(0)
        if e == s:
            return Integer(1)
        if isinstance(e, sympy.Add):
            return sympy.Add(*(self.diff(s, a) for a in e.args if s in self.free(a)))
        if isinstance(e, sympy.Mul):
            args = e.args
            return sympy.Add(*(sympy.Mul(*args[:i], self.diff(s, a), *args[i + 1:])
                               for i, a in enumerate(args) if s in self.free(a)))
        return sympy.diff(e, s)

    def gradient(self, symbols: Iterable[sympy.Symbol]) -> list[Expr]:
        return [self.diff(s) for s in symbols]
