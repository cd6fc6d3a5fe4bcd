"""derive's own statements as syntax trees: the builders, the Rule record, and the error
for a rule derive cannot build.  Rules are never produced as text and parsed again; text
is only what ``unparse`` prints for display.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy

from derive.lang import formula as F
from derive.records import RuleKind

if TYPE_CHECKING:
    from derive.model.evaluate import Evaluator


class RuleConstructionError(RuntimeError):
    """A bug in derive: one of its own rules could not be built or evaluated.

    Not a :class:`~derive.errors.DeriveError` (bad input, exit 2): the CLI reports it as an
    internal error (exit 3), because no spec can make a correct rule fail to build."""


@dataclass(frozen=True)
class Rule:
    layer: int
    rule: RuleKind
    target: str
    formula: str  # for display; when ``node`` is set it is ``unparse(node)``
    node: F.Node | None = field(default=None, compare=False, repr=False)  # what is checked

    @classmethod
    def of(cls, layer: int, rule: RuleKind, target: str, node: F.Node) -> Rule:
        """A rule from its syntax tree (the text is printed from the tree)."""
        return cls(layer, rule, target, F.unparse(node), node)


# ------------------------------------------------------------------ tree builders
# Each builder returns a node of derive.lang.formula; the few simplifications they make
# (1·x = x, x/1 = x, −(−x) = x, x**1 = x, and exact rational arithmetic on two numbers)
# are exact in every shape.

def num(value: int | sympy.Rational) -> F.Num:
    return F.Num(sympy.Rational(value), 0)


def name(text: str) -> F.Name:
    return F.Name(text, 0)


def _is_one(node: F.Node) -> bool:
    return isinstance(node, F.Num) and node.value == 1


def add(a: F.Node, b: F.Node) -> F.Node:
    return F.BinOp("+", a, b, 0)


def sub(a: F.Node, b: F.Node) -> F.Node:
    return F.BinOp("-", a, b, 0)


def mul(a: F.Node, b: F.Node) -> F.Node:
    if isinstance(a, F.Num) and isinstance(b, F.Num):
        return num(a.value * b.value)
    if _is_one(a):
        return b
    if _is_one(b):
        return a
    return F.BinOp("*", a, b, 0)


def div(a: F.Node, b: F.Node) -> F.Node:
    if isinstance(a, F.Num) and isinstance(b, F.Num) and b.value != 0:
        return num(a.value / b.value)
    return a if _is_one(b) else F.BinOp("/", a, b, 0)


def matmul(a: F.Node, b: F.Node) -> F.Node:
    return F.BinOp("@", a, b, 0)


def power(a: F.Node, k: int | sympy.Rational) -> F.Node:
    if k == 1:
        return a
    if k == 0:
        return num(1)
    return F.BinOp("**", a, num(k), 0)


def neg(a: F.Node) -> F.Node:
    if isinstance(a, F.Num):
        return num(-a.value)
    return a.operand if isinstance(a, F.Neg) else F.Neg(a, 0)


def T(a: F.Node) -> F.Node:  # noqa: N802 (the transpose)
    return F.Transpose(a, 0)


def call(func: str, *args: F.Node, axis: int | None = None) -> F.Call:
    return F.Call(func, tuple(args), None if axis is None else num(axis), 0)


def grad_ref(ev: Evaluator, base: str) -> F.Node:
    """∂J/∂base as the formula language spells it: ``dV``, or ``d(V)`` where a value of
    the network is itself named ``dV``."""
    if ev.is_value(f"d{base}"):
        return call("d", name(base))
    return name(f"d{base}")


def scalar(expr: sympy.Expr) -> F.Node:
    """A constant of the spec (a loss scale, a slope: numbers, symbols, + * / **) as a tree."""
    if expr.is_Rational:
        return num(expr)
    if expr.is_Symbol:
        return name(expr.name)
    if expr.is_Add:
        return functools.reduce(add, [scalar(a) for a in expr.args])
    if expr.is_Mul or expr.is_Pow:
        top, bottom = sympy.fraction(expr)
        if bottom != 1:
            return div(scalar(top), scalar(bottom))
        if expr.is_Pow:
            base, exponent = expr.args
            if exponent.is_Rational:
                return power(scalar(base), exponent)
        elif expr.is_Mul:
            return functools.reduce(mul, [scalar(a) for a in expr.args])
    raise RuleConstructionError(f"no formula for the constant {expr}")


