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

Powers: an integer exponent is evaluated in both arithmetics.  A rational exponent p/q
(``sqrt``, ``(v + eps) ** -0.5``, ``x ** 1.5``) is exact when the result is rational
((9/4)**(1/2) = 3/2) and raises :class:`NotExact` otherwise (the point is then redone in
intervals, where a base certified > 0 gets a certified enclosure).

Three kinds of failure, told apart by their class:

- :class:`NotExact`: the rational arithmetic cannot represent the value (use intervals);
- :class:`Undefined`: the expression has *no* value at this point, certainly: a
  non-integer power of a negative value, a negative power or a division by exactly 0
  (:class:`UndefinedDivision`, also a ``ZeroDivisionError``), log of a value ≤ 0;
- :class:`~derive.ops.activations.Undetermined`: an interval is too wide to decide (it
  straddles 0 where the sign matters); the point proves nothing either way.

derive's own functions (:class:`~derive.ops.registry.OpFunction`) are evaluated through
their registry facets: a ``numeric`` form in the context's operations (exp, log, power,
pi, erf), or, for a piecewise function, the piece that holds where the argument lies
relative to each kink (the sign of u − k, certified; at a kink, derive's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import mpmath
import sympy
from mpmath import iv, libmp

from derive.ops.registry import OpFunction, Undetermined


class NotExact(ArithmeticError):
    """The exact (rational) arithmetic met a transcendental or irrational value."""


class Undefined(ArithmeticError):
    """The expression is certainly undefined at this point (no real value exists there);
    the message says what is undefined, e.g. "(v)**(1/2) of a negative value (-3/4)"."""


class UndefinedDivision(Undefined, ZeroDivisionError):
    """A division by (or a negative power of) a value that is exactly 0."""


class UndeterminedDivision(Undetermined, ZeroDivisionError):
    """A division by an interval that contains 0 but is not exactly 0: nothing is known."""


#: how much of an expression an error message quotes
_QUOTE = 60


def _quote(e: Any) -> Any:
    """The expression as a message quotes it, printed only when a message is made (printing
    a recurrent network's expression as a tree takes minutes)."""
    return _Quote(e)


class _Quote:
    def __init__(self, e: Any) -> None:
        self.e = e

    def __str__(self) -> str:
        text = str(self.e)
        return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _show_exponent(p: Fraction) -> str:
    return str(p) if p.denominator == 1 else f"({p})"


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

    def log(self, x: Fraction, what: str = "") -> Fraction:
        if x <= 0:
            raise Undefined(f"log({what or x}) of a non-positive value ({x})")
        if x == 1:
            return Fraction(0)
        raise NotExact("log")

    def power(self, x: Fraction, p: Fraction, what: str = "") -> Fraction:
        """x**p for a rational p: exact when the result is rational, else NotExact."""
        what = what or str(x)
        if p.denominator == 1:
            n = int(p)
            if n < 0:
                if x == 0:
                    raise UndefinedDivision(f"{what} = 0 in a denominator")
                return Fraction(1) / x ** (-n)
            return x**n
        if x < 0:
            raise Undefined(f"({what})**{_show_exponent(p)} of a negative value ({x})")
        if x == 0:
            if p < 0:
                raise UndefinedDivision(f"({what})**{_show_exponent(p)} of 0 (a division by 0)")
            return Fraction(0)
        q = p.denominator
        num, num_exact = sympy.integer_nthroot(x.numerator, q)
        den, den_exact = sympy.integer_nthroot(x.denominator, q)
        if not (num_exact and den_exact):
            raise NotExact(f"({x})**{_show_exponent(p)} is irrational")
        root = Fraction(int(num), int(den))
        k = p.numerator
        return root**k if k > 0 else Fraction(1) / root ** (-k)

    def pi(self) -> Fraction:
        raise NotExact("pi")

    def erf(self, x: Fraction) -> Fraction:
        if x == 0:
            return Fraction(0)
        raise NotExact("erf")

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

    def log(self, x: Any, what: str = "") -> Any:
        if x.b <= 0:  # every value in the enclosure is ≤ 0: certainly undefined
            raise Undefined(f"log({what or self.show(x)}) of a non-positive value ({self.show(x)})")
        if not x.a > 0:
            raise Undetermined("log of an interval that reaches 0")
        return iv.log(x)

    def power(self, x: Any, p: Fraction, what: str = "") -> Any:
        """An enclosure of x**p for a rational p.

        A base certified > 0 gets iv.sqrt (q = 2) or iv.exp(iv.log(x)/q), then an integer
        power: every step is mpmath's outward-rounded interval arithmetic, so the result
        encloses the true value.  A base certified < 0 has no real non-integer power
        (:class:`Undefined`); a base interval that reaches 0 decides nothing
        (:class:`Undetermined`), unless it is exactly 0.
        """
        what = what or self.show(x)
        if p.denominator == 1:
            n = int(p)
            if n < 0:
                if x.a == 0 and x.b == 0:
                    raise UndefinedDivision(f"{what} = 0 in a denominator")
                if not self.is_nonzero(x):
                    raise UndeterminedDivision("division by an interval around 0")
                return self.one / x ** (-n)
            return x**n
        if x.b < 0:
            raise Undefined(f"({what})**{_show_exponent(p)} of a negative value ({self.show(x)})")
        if x.a == 0 and x.b == 0:
            if p < 0:
                raise UndefinedDivision(f"({what})**{_show_exponent(p)} of 0 (a division by 0)")
            return self.zero
        if not x.a > 0:
            raise Undetermined(f"({what})**{_show_exponent(p)} of an interval around 0")
        q = p.denominator
        root = iv.sqrt(x) if q == 2 else iv.exp(iv.log(x) / q)
        k = p.numerator
        return root**k if k > 0 else self.one / root ** (-k)

    def pi(self) -> Any:
        return iv.pi

    def erf(self, x: Any) -> Any:
        """A certified enclosure of erf over the interval x: erf is increasing, so the
        enclosures of erf at the two ends bound it (:func:`_erf_point`)."""
        lo, hi = _erf_point(iv.mpf(x.a)), _erf_point(iv.mpf(x.b))
        return iv.mpf([lo.a, hi.b])

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
        if x.a == x.b:  # a point interval is an exact binary fraction: say it exactly when short
            sign, man, exp, _ = mpmath.mpf(x.a)._mpf_  # man_exp drops the sign
            exact = (-1) ** sign * Fraction(int(man)) * Fraction(2) ** int(exp)
            if exact.denominator <= 1024 and abs(exact.numerator) < 10**6:
                return str(exact)
        return mpmath.nstr(mpmath.mpf(x.mid.a), 15)


def _erf_point(x: Any) -> Any:
    """An interval enclosing erf(x) for a point interval x, by interval arithmetic only.

    |x| ≤ 5: the Taylor series 2/√π Σ (−1)ⁿ x^(2n+1)/(n!(2n+1)), summed until the terms
    decrease and fall below the working precision, plus ± the next term (an alternating
    series with decreasing terms: the tail is bounded by its first term).
    |x| > 5: 1 − erfc(x) with the classical bounds 2e^(−x²)/(√π(x + √(x² + 2))) < erfc(x)
    ≤ e^(−x²)/(x√π) (x > 0), and erf(−x) = −erf(x).
    """
    if x.a < 0:
        return -_erf_point(-x)
    if x.a > 5:
        g = iv.exp(-x * x) / iv.sqrt(iv.pi)
        upper, lower = g / x, 2 * g / (x + iv.sqrt(x * x + 2))
        return iv.mpf([(1 - upper).a, (1 - lower).b])
    tiny = iv.mpf(2) ** (-iv.prec - 10)
    total = iv.mpf(0)
    power = x  # x^(2n+1)/n!
    n = 0
    previous = None
    while True:
        term = power / (2 * n + 1)
        if previous is not None and term.b <= previous.a and term.b < tiny:
            bound = abs(term).b
            total = total + iv.mpf([-bound, bound])
            break
        total = total + term if n % 2 == 0 else total - term
        previous = term
        n += 1
        power = power * x * x / n
    return 2 / iv.sqrt(iv.pi) * total


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
            d = self._definition(e)
            if d is None:
                raise KeyError(f"no value for {e}")
            v = self(d)
            self.values[e] = v
            return v
        if e.is_Rational:
            return ctx.number(e)
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
            if base is sympy.E:
                return ctx.exp(self(expo))
            if expo.is_Rational:
                return ctx.power(self(base), Fraction(int(expo.p), int(expo.q)), _quote(base))
            raise NotExact(f"unsupported power {_quote(e)}")
        if isinstance(e, sympy.exp):
            return ctx.exp(self(e.args[0]))
        if isinstance(e, sympy.log):
            return ctx.log(self(e.args[0]), _quote(e.args[0]))
        if isinstance(e, sympy.Abs):  # SymPy writes (x**2)**(1/2) as |x|
            return abs(self(e.args[0]))
        if isinstance(e, OpFunction):
            return self._function(e)
        if e is sympy.pi:
            return ctx.pi()
        if isinstance(e, sympy.KroneckerDelta):
            i, j = (self(a) for a in e.args)
            return ctx.one if ctx.mid(i) == ctx.mid(j) else ctx.zero
        raise NotExact(f"cannot evaluate {type(e).__name__}")

    def _function(self, e: OpFunction) -> Any:
        """One of derive's functions, through its registry facets."""
        cls = type(e)
        k = cls.literal_args
        args = [int(a) for a in e.args[:k]] + [self(a) for a in e.args[k:]]
        pw = cls.piecewise
        if pw is None:
            assert cls.numeric is not None  # checked when the op was registered
            return cls.numeric(self.ctx, *args)
        u = args[0]
        signs = []  # the sign of u − k for each kink, as far as the piece needs them
        for i, kink in enumerate(pw.kinks):
            s = self.ctx.sign(u - self.ctx.number(kink))  # Undetermined for an interval around the kink
            signs.append(s)
            if not pw.right_of(i, s):
                break
        return _piece_value(self.ctx, cls, pw.index(signs + [1] * (len(pw.kinks) - len(signs))), args)


_PIECES: dict[tuple[type, int], tuple[sympy.Expr, tuple[sympy.Symbol, ...]]] = {}


def _piece_value(ctx: Any, cls: type[OpFunction], index: int, args: list[Any]) -> Any:
    """The value of piece ``index`` of a piecewise function at the argument values, the
    piece evaluated as an expression in fresh symbols (one source: the registry's pieces)."""
    key = (cls, index)
    if key not in _PIECES:
        xs = tuple(sympy.Dummy(f"x{i}", real=True) for i in range(len(args)))
        assert cls.piecewise is not None
        _PIECES[key] = (cls.piecewise.piece(index, xs), xs)
    expr, xs = _PIECES[key]
    if expr in xs:  # the argument itself (relu(u) = u): the same value object
        return args[xs.index(expr)]
    return Evaluator(ctx, dict(zip(xs, args, strict=True)))(expr)


# ------------------------------------------------------------ rationals in an interval
#: the largest denominator a "simplest rational in an interval" may have
MAX_RATIO_DENOMINATOR = 2**64


def interval_endpoints(interval: object) -> tuple[Fraction, Fraction] | None:
    """An mpmath interval's endpoints as exact fractions (binary floats are rationals)."""
    try:
        a, b = interval._mpi_  # type: ignore[attr-defined]
    except AttributeError:
        return None
    special = (libmp.finf, libmp.fninf, libmp.fnan)
    if a in special or b in special:
        return None
    lo, hi = (Fraction(*libmp.to_rational(x)) for x in (a, b))
    return (lo, hi) if lo <= hi else None


def simplest_rational(lo: Fraction, hi: Fraction, max_denominator: int = MAX_RATIO_DENOMINATOR) -> Fraction | None:
    """The rational with the smallest denominator in the closed interval [lo, hi] (the
    continued-fraction / Stern–Brocot search), or None when that denominator exceeds
    ``max_denominator``.  Exact: no floating point anywhere."""
    if lo > hi:
        return None
    if lo <= 0 <= hi:
        return Fraction(0)
    if hi < 0:
        found = simplest_rational(-hi, -lo, max_denominator)
        return None if found is None else -found
    # 0 < lo <= hi: continued-fraction terms shared by both ends, then the first integer between
    terms: list[int] = []
    while True:
        whole = lo.numerator // lo.denominator  # floor(lo)
        if whole == lo or whole + 1 <= hi:  # an integer lies in [lo, hi]: the smallest one
            terms.append(whole if whole == lo else whole + 1)
            break
        terms.append(whole)  # lo, hi both in (whole, whole + 1): x = whole + 1/y
        lo, hi = 1 / (hi - whole), 1 / (lo - whole)
        if len(terms) > 200:
            return None
    value = Fraction(terms[-1])
    for a in reversed(terms[:-1]):
        value = a + 1 / value
    return value if value.denominator <= max_denominator else None
