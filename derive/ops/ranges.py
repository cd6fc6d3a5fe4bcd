"""Static value ranges: intervals of possible values with open or closed ends.

An op's range facet (:mod:`derive.ops.registry`) is written with these, and
:mod:`derive.prove.domain` combines them through arithmetic.  Bounds are Fractions or
±∞; ``lo_in``/``hi_in`` say whether the bound is attained.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

INF = float("inf")


@dataclass(frozen=True)
class Range:
    """An interval of possible values; ``lo_in``/``hi_in``: the bound is attained."""

    lo: Any
    lo_in: bool
    hi: Any
    hi_in: bool

    def positive(self) -> bool:
        return self.lo > 0 or (self.lo == 0 and not self.lo_in)

    def negative(self) -> bool:
        return self.hi < 0 or (self.hi == 0 and not self.hi_in)

    def nonnegative(self) -> bool:
        return self.lo >= 0

    def nonzero(self) -> bool:
        return self.positive() or self.negative()


REAL = Range(-INF, False, INF, False)
UNIT_OPEN = Range(Fraction(0), False, Fraction(1), False)
UNIT_CLOSED = Range(Fraction(0), True, Fraction(1), True)
POSITIVE_RANGE = Range(Fraction(0), False, INF, False)
NONNEGATIVE_RANGE = Range(Fraction(0), True, INF, False)


def point(v: Fraction) -> Range:
    return Range(v, True, v, True)


def between(lo: Any, hi: Any, lo_in: bool = False, hi_in: bool = False) -> Range:
    return Range(Fraction(lo) if lo not in (INF, -INF) else lo, lo_in, Fraction(hi) if hi not in (INF, -INF) else hi,
                 hi_in)


def add(a: Range, b: Range) -> Range:
    return Range(a.lo + b.lo, a.lo_in and b.lo_in, a.hi + b.hi, a.hi_in and b.hi_in)


def neg(a: Range) -> Range:
    return Range(-a.hi, a.hi_in, -a.lo, a.lo_in)


def _times(x: Any, y: Any) -> Any:
    if x == 0 or y == 0:
        return Fraction(0)
    return x * y


def mul(a: Range, b: Range) -> Range:
    corners = []
    for x, x_in in ((a.lo, a.lo_in), (a.hi, a.hi_in)):
        for y, y_in in ((b.lo, b.lo_in), (b.hi, b.hi_in)):
            v = _times(x, y)
            attained = (x_in and y_in) or (v == 0 and ((x == 0 and x_in) or (y == 0 and y_in)))
            corners.append((v, attained))
    lo = min(v for v, _ in corners)
    hi = max(v for v, _ in corners)
    return Range(lo, any(t for v, t in corners if v == lo), hi, any(t for v, t in corners if v == hi))


def reciprocal(a: Range) -> Range:
    if a.positive():
        lo = Fraction(0) if a.hi == INF else 1 / a.hi
        hi = INF if a.lo == 0 else 1 / a.lo
        return Range(lo, a.hi_in and a.hi != INF, hi, a.lo_in and a.lo != 0)
    if a.negative():
        return neg(reciprocal(neg(a)))
    return REAL


def power(a: Range, n: int) -> Range:
    if n == 0:
        return point(Fraction(1))
    if n < 0:
        return reciprocal(power(a, -n))
    if n % 2 == 1:
        return Range(a.lo**n if a.lo != -INF else -INF, a.lo_in, a.hi**n if a.hi != INF else INF, a.hi_in)
    if a.nonnegative():
        return Range(a.lo**n, a.lo_in, a.hi**n if a.hi != INF else INF, a.hi_in)
    if a.hi <= 0:
        return power(neg(a), n)
    top = max(-a.lo, a.hi)  # 0 inside: the minimum 0 is attained
    top_in = (a.lo_in if -a.lo >= a.hi else a.hi_in)
    return Range(Fraction(0), True, top**n if top != INF else INF, top_in and top != INF)


def hull(*rs: Range) -> Range:
    lo = min(r.lo for r in rs)
    hi = max(r.hi for r in rs)
    return Range(lo, any(r.lo_in for r in rs if r.lo == lo), hi, any(r.hi_in for r in rs if r.hi == hi))
