"""Where an operation is defined: the record the formula evaluator writes before SymPy can
simplify the operation away (``x / x`` is 1 with the condition ``x ≠ 0``).  Judged by
:mod:`derive.prove.domain`."""

from __future__ import annotations

from dataclasses import dataclass

from sympy import Expr

NONZERO, POSITIVE, NONNEGATIVE = "nonzero", "positive", "nonnegative"


@dataclass(frozen=True)
class Condition:
    """``expr`` must be nonzero / positive / nonnegative for the formula to be defined."""

    kind: str
    expr: Expr
    what: str  # "in a denominator", "the argument of log", "the base of ** (1/2)"
    entry: tuple[int, int] = (0, 0)  # the entry of the operation's result it belongs to

    def describe(self, value: str) -> str:
        return f"{self.expr} = {value} {self.what}"
