"""Activations as SymPy functions, each with its derivative written next to it.

Invariants:
- Every derivative is expressed through the functions themselves
  (σ′ = σ(1−σ), tanh′ = 1 − tanh², softplus′ = σ, relu′ = H), so expressions stay
  polynomial in a small set of atoms and an exact proof needs only ``expand``.
- ``relu′(0) = 0`` and ``leaky_relu′(0) = slope`` (the left derivative), documented in README.
- No class is evaluated by SymPy's ``evalf``/mpmath (the mpmath ``sigmoid`` pitfall):
  :mod:`derive.prove.numeric` evaluates them through ``numeric`` below, which is tested.
- ``ACTIVATIONS`` is the registry the spec, the network and the formula language share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from sympy import Expr, Function, Integer, KroneckerDelta


class Undetermined(ArithmeticError):
    """A numeric value cannot be decided (a step function at an interval around 0)."""


class _Activation(Function):
    """Common base: no automatic evaluation, a numeric hook, readable printing."""

    is_real = True
    printed = ""

    @classmethod
    def eval(cls, *args: Expr) -> Expr | None:  # keep applications unevaluated (atoms)
        return None

    def _sympystr(self, printer: Any) -> str:
        return f"{self.printed}({', '.join(printer._print(a) for a in self.args)})"

    def _eval_evalf(self, prec: int) -> None:  # never through mpmath's look-alikes
        return None

    latex_name = r"\operatorname{g}"

    def _latex(self, printer: Any) -> str:
        args = ", ".join(printer._print(a) for a in self.args)
        return rf"{self.latex_name}\left({args}\right)"


class Sigmoid(_Activation):
    latex_name = r"\sigma"
    nargs = 1
    printed = "sigmoid"

    def fdiff(self, argindex: int = 1) -> Expr:
        return self * (1 - self)

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return 1 / (1 + ctx.exp(-z))


class Tanh(_Activation):
    latex_name = r"\tanh"
    nargs = 1
    printed = "tanh"

    def fdiff(self, argindex: int = 1) -> Expr:
        return 1 - self**2

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        e = ctx.exp(2 * z)
        return (e - 1) / (e + 1)


class ReluPrime(_Activation):
    latex_name = r"\operatorname{relu}'"
    """The step H(z) with H(0) = 0: relu′."""

    nargs = 1
    printed = "relu_prime"

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0)  # almost everywhere; the kink is a set of measure zero

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return ctx.one if ctx.sign(z) > 0 else ctx.zero


class Relu(_Activation):
    latex_name = r"\operatorname{relu}"
    nargs = 1
    printed = "relu"

    def fdiff(self, argindex: int = 1) -> Expr:
        return ReluPrime(self.args[0])

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return z if ctx.sign(z) > 0 else ctx.zero


class LeakyReluPrime(_Activation):
    latex_name = r"\operatorname{lrelu}'"
    """1 for z > 0, the slope otherwise."""

    nargs = 2
    printed = "leaky_relu_prime"

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0)

    @staticmethod
    def numeric(ctx: Any, z: Any, slope: Any) -> Any:
        return ctx.one if ctx.sign(z) > 0 else slope


class LeakyRelu(_Activation):
    latex_name = r"\operatorname{lrelu}"
    nargs = 2
    printed = "leaky_relu"

    def fdiff(self, argindex: int = 1) -> Expr:
        z, slope = self.args
        if argindex == 1:
            return LeakyReluPrime(z, slope)
        return z * (1 - ReluPrime(z))  # ∂/∂slope

    @staticmethod
    def numeric(ctx: Any, z: Any, slope: Any) -> Any:
        return z if ctx.sign(z) > 0 else slope * z


class Softplus(_Activation):
    latex_name = r"\operatorname{softplus}"
    nargs = 1
    printed = "softplus"

    def fdiff(self, argindex: int = 1) -> Expr:
        return Sigmoid(self.args[0])

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return ctx.log(1 + ctx.exp(z))


class SoftmaxEntry(_Activation):
    """Entry k (0-based) of softmax(z_0, …, z_{n-1}): args are (k, z_0, …, z_{n-1})."""

    printed = "softmax"

    def fdiff(self, argindex: int = 1) -> Expr:
        if argindex == 1:
            raise ValueError("softmax is not differentiable in its index")
        k = self.args[0]
        zs = self.args[1:]
        j = argindex - 2
        return self * (KroneckerDelta(k, j) - SoftmaxEntry(j, *zs))

    def _sympystr(self, printer: Any) -> str:
        zs = ", ".join(printer._print(a) for a in self.args[1:])
        return f"softmax({zs})[{self.args[0]}]"

    def _latex(self, printer: Any) -> str:
        zs = ", ".join(printer._print(a) for a in self.args[1:])
        return rf"\operatorname{{softmax}}\left({zs}\right)_{{{self.args[0]}}}"

    @staticmethod
    def numeric(ctx: Any, k: Any, *zs: Any) -> Any:
        top = max(range(len(zs)), key=lambda i: ctx.mid(zs[i]))
        es = [ctx.exp(z - zs[top]) for z in zs]  # shifted: no overflow
        total = es[0]
        for e in es[1:]:
            total = total + e
        return es[int(k)] / total


@dataclass(frozen=True)
class Activation:
    """An activation g with its derivative g′, both on one scalar (or one column)."""

    name: str
    value: Callable[..., Expr]
    prime: Callable[..., Expr] | None
    latex: str
    elementwise: bool = True
    needs_slope: bool = False

    def apply(self, z: Expr, slope: Expr | None = None) -> Expr:
        return self.value(z, slope) if self.needs_slope else self.value(z)

    def derivative(self, z: Expr, slope: Expr | None = None) -> Expr:
        if self.prime is None:
            raise ValueError(f"{self.name} has no elementwise derivative")
        return self.prime(z, slope) if self.needs_slope else self.prime(z)


def softmax_column(zs: Sequence[Expr]) -> list[Expr]:
    """softmax of one column, entry by entry."""
    return [SoftmaxEntry(k, *zs) for k in range(len(zs))]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", Sigmoid, lambda z: Sigmoid(z) * (1 - Sigmoid(z)), r"\sigma"),
        Activation("tanh", Tanh, lambda z: 1 - Tanh(z) ** 2, r"\tanh"),
        Activation("relu", Relu, ReluPrime, r"\operatorname{relu}"),
        Activation(
            "leaky_relu", LeakyRelu, LeakyReluPrime, r"\operatorname{lrelu}", needs_slope=True
        ),
        Activation("softplus", Softplus, Sigmoid, r"\operatorname{softplus}"),
        Activation("identity", lambda z: z, lambda z: Integer(1), r"\operatorname{id}"),
        Activation("softmax", SoftmaxEntry, None, r"\operatorname{softmax}", elementwise=False),
    )
}

#: SymPy function classes that :mod:`derive.prove.numeric` knows how to evaluate.
NUMERIC_FUNCTIONS: tuple[type[_Activation], ...] = (
    Sigmoid, Tanh, Relu, ReluPrime, LeakyRelu, LeakyReluPrime, Softplus, SoftmaxEntry,
)

DEFAULT_LEAKY_SLOPE = sympy.Rational(1, 100)
