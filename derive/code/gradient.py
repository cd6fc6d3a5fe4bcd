"""∂L/∂s for many symbols s of one large loss, faster than ``sympy.diff`` one by one.

The truth of a backward block is ∂L/∂s for every entry s of a value: for a convolution
or an attention layer, hundreds of symbols of a loss with thousands of terms.
``sympy.diff`` walks the whole expression for each symbol, recomputes the free symbols
of every sub-expression on the way, asks SymPy's assumptions whether each inner
derivative is zero, and differentiates a subexpression shared by many branches once per
branch.  Here the free symbols of each node are computed once (memoised), the
derivative of each node by s is computed once (memoised per symbol: a shared
subexpression is differentiated once and its derivative shared), and the exact rules are
applied only to the branches that contain s:

- sum and product rules for ``Add`` and ``Mul``;
- ``(b^c)′ = c·b^(c−1)·b′`` for a power whose exponent does not contain s;
- the chain rule ``f(u)′ = Σ_i ∂_i f(u)·u_i′`` for a function whose derivative is
  SymPy's generic one (``Function._eval_derivative``), with ``∂_i f`` SymPy's own
  ``fdiff`` (σ′ = σ(1 − σ), tanh′ = 1 − tanh², exp′ = exp, derive's step functions);

every other node (a function with its own derivative rule, a power with s in its
exponent) is differentiated by SymPy itself.  Each rule is the one SymPy applies, so the
result is the same derivative as SymPy's (possibly grouped differently); the judge
proves ``claimed − true = 0`` whatever the grouping.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy
from sympy import Expr, Integer
from sympy.core.function import ArgumentIndexError

__all__ = ["Differentiator"]

_GENERIC = sympy.Function._eval_derivative


class Differentiator:
    """∂loss/∂s for symbols s of one loss, sharing the free-symbol sets of its nodes."""

    def __init__(self, loss: Expr) -> None:
        self.loss = loss
        self._free: dict[Expr, frozenset[sympy.Basic]] = {}
        self._memo: dict[Expr, Expr] = {}
        self._memo_of: sympy.Basic | None = None

    def free(self, e: Expr) -> frozenset[sympy.Basic]:
        got = self._free.get(e)
        if got is None:
            if e.is_Symbol:
                got = frozenset((e,))
            elif e.is_Atom:
                got = frozenset()
            elif isinstance(e, (sympy.Add, sympy.Mul, sympy.Pow)) or _generic(e):
                got = frozenset().union(*(self.free(a) for a in e.args))
            else:
                got = frozenset(e.free_symbols)
            self._free[e] = got
        return got

    def diff(self, s: sympy.Symbol, e: Expr | None = None) -> Expr:
        e = self.loss if e is None else e
        if self._memo_of != s:  # the derivatives by one symbol at a time are kept
            self._memo = {}
            self._memo_of = s
        return self._diff(s, e)

    def _diff(self, s: sympy.Symbol, e: Expr) -> Expr:
        if s not in self.free(e):
            return Integer(0)
        if e == s:
            return Integer(1)
        memo = self._memo
        found = memo.get(e)
        if found is not None:
            return found
        if isinstance(e, sympy.Add):
            out = sympy.Add(*(self._diff(s, a) for a in e.args if s in self.free(a)))
        elif isinstance(e, sympy.Mul):
            args = e.args
            out = sympy.Add(*(sympy.Mul(*args[:i], self._diff(s, a), *args[i + 1:])
                              for i, a in enumerate(args) if s in self.free(a)))
        elif isinstance(e, sympy.Pow) and s not in self.free(e.exp):
            b, c = e.args
            out = sympy.Mul(c, sympy.Pow(b, c - 1), self._diff(s, b))
        elif _generic(e):
            terms = []
            for i, a in enumerate(e.args, start=1):
                if s not in self.free(a):
                    continue
                da = self._diff(s, a)
                if da == 0:
                    continue
                try:
                    df = e.fdiff(i)
                except ArgumentIndexError:
                    df = sympy.Function.fdiff(e, i)
                terms.append(sympy.Mul(df, da))
            out = sympy.Add(*terms)
        else:
            out = sympy.diff(e, s)
        memo[e] = out
        return out

    def gradient(self, symbols: Iterable[sympy.Symbol]) -> list[Expr]:
        return [self.diff(s) for s in symbols]


def _generic(e: Expr) -> bool:
    """An applied function whose derivative is SymPy's generic chain rule (not Abs, not a
    Piecewise, not a Derivative: those have their own rules)."""
    return isinstance(e, sympy.Function) and type(e)._eval_derivative is _GENERIC
