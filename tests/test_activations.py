"""Each activation's derivative against an independent central difference in mpmath,
and the numeric evaluator against mpmath's own functions."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import sympy

from derive.ops.activations import ACTIVATIONS, Relu, ReluPrime, Sigmoid, SoftmaxEntry, Undetermined
from derive.prove.numeric import Evaluator, ExactContext, IntervalContext, NotExact

z = sympy.Symbol("z", real=True)
mpmath.mp.dps = 50
REFERENCE = {
    "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)),
    "tanh": mpmath.tanh,
    "relu": lambda v: max(v, 0),
    "leaky_relu": lambda v: v if v > 0 else v / 10,
    "softplus": lambda v: mpmath.log(1 + mpmath.exp(v)),
    "identity": lambda v: v,
}


def interval_value(expr: sympy.Expr, at: Fraction) -> mpmath.mpf:
    ctx = IntervalContext()
    v = Evaluator(ctx, {z: ctx.number(sympy.Rational(at.numerator, at.denominator))})(expr)
    assert v.delta < mpmath.mpf(10) ** -40  # a tight enclosure
    return mpmath.mpf(v.mid.a)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("at", [Fraction(-3, 2), Fraction(1, 3), Fraction(2)])
def test_value_and_derivative(name: str, at: Fraction) -> None:
    act = ACTIVATIONS[name]
    slope = sympy.Rational(1, 10) if act.needs_slope else None
    ref = REFERENCE[name]
    x = mpmath.mpf(at.numerator) / at.denominator
    assert mpmath.almosteq(interval_value(act.apply(z, slope), at), ref(x), 1e-40)
    h = mpmath.mpf(10) ** -20
    numeric = (ref(x + h) - ref(x - h)) / (2 * h)
    assert mpmath.almosteq(interval_value(act.derivative(z, slope), at), numeric, 1e-30)
    # SymPy's own diff of the function agrees with the registry's derivative
    assert sympy.expand(sympy.diff(act.apply(z, slope), z) - act.derivative(z, slope)) == 0


def test_relu_prime_at_zero_is_zero() -> None:
    assert Evaluator(ExactContext(), {z: Fraction(0)})(ReluPrime(z)) == 0
    assert Evaluator(ExactContext(), {z: Fraction(0)})(Relu(z)) == 0
    ctx = IntervalContext()
    exactly_zero = ctx.number(sympy.Integer(1)) - ctx.number(sympy.Integer(1))  # the interval [0, 0]
    assert Evaluator(ctx, {z: exactly_zero})(ReluPrime(z)) == 0
    with pytest.raises(Undetermined):  # an interval around 0 has no sign
        around_zero = ctx.number(sympy.Rational(1, 3)) * 3 - 1 + mpmath.iv.mpf(["-1e-40", "1e-40"])
        Evaluator(ctx, {z: around_zero})(ReluPrime(z))


def test_softmax_jacobian() -> None:
    a, b, c = sympy.symbols("a b c", real=True)
    s0 = SoftmaxEntry(0, a, b, c)
    s1 = SoftmaxEntry(1, a, b, c)
    assert sympy.expand(sympy.diff(s0, a) - s0 * (1 - s0)) == 0   # diag(s) − s sᵀ
    assert sympy.expand(sympy.diff(s0, b) + s0 * s1) == 0
    ctx = IntervalContext()
    vals = {a: ctx.number(sympy.Integer(1)), b: ctx.number(sympy.Integer(2)), c: ctx.number(sympy.Integer(-1))}
    ev = Evaluator(ctx, vals)
    e = [mpmath.exp(1), mpmath.exp(2), mpmath.exp(-1)]
    assert mpmath.almosteq(mpmath.mpf(ev(s1).mid.a), e[1] / sum(e), 1e-40)


def test_exact_context_refuses_transcendentals() -> None:
    with pytest.raises(NotExact):
        Evaluator(ExactContext(), {z: Fraction(1, 2)})(Sigmoid(z))
    assert Evaluator(ExactContext(), {z: Fraction(0)})(Sigmoid(z)) == Fraction(1, 2)


def test_not_evaluated_through_mpmath_lookalikes() -> None:
    # MATH.md §8: a Function named like mpmath's sigmoid must not pick it up in evalf
    assert Sigmoid(sympy.Integer(1)).evalf() == Sigmoid(sympy.Integer(1))
