"""Exact and rigorous numeric evaluation of derive's expressions.

Two arithmetics, one evaluator:
- :class:`ExactContext`: Python ``Fraction``; refuses anything transcendental
  (raises :class:`NotExact`), so a rational network is evaluated without any rounding;
- :class:`IntervalContext`: mpmath interval arithmetic at a fixed precision (200 bits by
  default, about 60 digits).  Every value is an interval guaranteed to contain the true
  real number, so "0 is not in the interval of claimed − true" *proves* the two differ.

Neither is a tolerance test: a refutation is either exact or certified by intervals.
Symbols that are not given a value are resolved through ``definitions`` (the forward
and adjoint atoms of a network), memoised.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping

import sympy
import mpmath
from mpmath import iv

from derive.activations import NUMERIC_FUNCTIONS, SoftmaxEntry, Undetermined


class NotExact(ArithmeticError):
    """The exact (rational) arithmetic met a transcendental value."""


class ExactContext:
    """Rational arithmetic with Python fractions."""

    exact = True
    one = Fraction(1)
    zero = Fraction(0)

    def number(self, r: sympy.Rational) -> Fraction:
        return Fraction(int(r.p), int(r.q))

    def exp(self, x: Fraction) -> Fraction:
        if x == 0:
            return Fraction(1)
        raise NotExact("exp")

    def log(self, x: Fraction) -> Fraction:
        if x <= 0:
            raise ArithmeticError("log of a non-positive number")
        if x == 1:
            return Fraction(0)
        raise NotExact("log")

    def sign(self, x: Fraction) -> int:
        return (x > 0) - (x < 0)

    def mid(self, x: Fraction) -> float:
        return float(x)

    def is_nonzero(self, x: Fraction) -> bool:
        return x != 0

    def show(self, x: Fraction) -> str:
        return str(x)


class IntervalContext:
    """mpmath interval arithmetic; every result encloses the exact value."""

    exact = False

    def __init__(self, prec: int = 200) -> None:
        self.prec = prec
        iv.prec = prec  # mpmath's interval context is global; derive uses one precision
        self.one = iv.mpf(1)
        self.zero = iv.mpf(0)

    def number(self, r: sympy.Rational) -> Any:
        return iv.mpf(int(r.p)) / int(r.q)

    def exp(self, x: Any) -> Any:
        return iv.exp(x)

    def log(self, x: Any) -> Any:
        if not x.a > 0:
            raise ArithmeticError("log of an interval that reaches 0 or below")
        return iv.log(x)

    def sign(self, x: Any) -> int:
        if x.a > 0:
            return 1
        if x.b < 0:
            return -1
        if x.a == 0 and x.b == 0:  # an enclosure of exactly [0, 0]: relu(z) for z < 0, say
            return 0
        raise Undetermined("sign of an interval around 0")

    def mid(self, x: Any) -> float:
        return float(mpmath.mpf(x.mid.a))

    def is_nonzero(self, x: Any) -> bool:
        return bool(x.a > 0 or x.b < 0)

    def show(self, x: Any) -> str:
        return mpmath.nstr(mpmath.mpf(x.mid.a), 15)


class Evaluator:
    """Evaluate SymPy expressions at given symbol values in one arithmetic."""

    def __init__(
        self,
        ctx: ExactContext | IntervalContext,
        values: Mapping[sympy.Symbol, Any],
        definitions: Mapping[sympy.Symbol, sympy.Expr] | Callable[[sympy.Symbol], sympy.Expr | None]
        | None = None,
    ) -> None:
        self.ctx = ctx
        self.values: dict[sympy.Symbol, Any] = dict(values)
        self._definitions = definitions
        self._memo: dict[sympy.Basic, Any] = {}

    def _definition(self, s: sympy.Symbol) -> sympy.Expr | None:
        d = self._definitions
        if d is None:
            return None
        if callable(d) and not isinstance(d, Mapping):
            return d(s)
        return d.get(s)

    def __call__(self, expr: sympy.Basic) -> Any:
        memo = self._memo
        if expr in memo:
            return memo[expr]
        value = self._eval(expr)
        memo[expr] = value
        return value

    def _eval(self, e: sympy.Basic) -> Any:
        ctx = self.ctx
        if e.is_Symbol:
            if e in self.values:
                return self.values[e]
            d = self._definition(e)  # type: ignore[arg-type]
            if d is None:
                raise KeyError(f"no value for {e}")
            v = self(d)
            self.values[e] = v  # type: ignore[index]
            return v
        if e.is_Rational:
            return ctx.number(e)  # type: ignore[arg-type]
        if e.is_Add:
            total = ctx.zero
            for a in e.args:
                total = total + self(a)
            return total
        if e.is_Mul:
            prod = ctx.one
            for a in e.args:
                prod = prod * self(a)
            return prod
        if e.is_Pow:
            base, expo = e.args
            if expo.is_Integer:
                b = self(base)
                n = int(expo)
                if n < 0:
                    if not ctx.is_nonzero(b):
                        raise ZeroDivisionError("division by an interval or value around 0")
                    return ctx.one / (b ** (-n))
                return b**n
            if base is sympy.E:
                return ctx.exp(self(expo))
            raise NotExact(f"unsupported power {e}")
        if isinstance(e, sympy.exp):
            return ctx.exp(self(e.args[0]))
        if isinstance(e, sympy.log):
            return ctx.log(self(e.args[0]))
        if isinstance(e, SoftmaxEntry):
            return SoftmaxEntry.numeric(ctx, int(e.args[0]), *(self(a) for a in e.args[1:]))
        if isinstance(e, NUMERIC_FUNCTIONS):
            return type(e).numeric(ctx, *(self(a) for a in e.args))  # type: ignore[attr-defined]
        if isinstance(e, sympy.KroneckerDelta):
            i, j = (self(a) for a in e.args)
            return ctx.one if ctx.mid(i) == ctx.mid(j) else ctx.zero
        raise NotExact(f"cannot evaluate {type(e).__name__}")
