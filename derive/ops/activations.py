"""The activations: one registration each (:func:`derive.ops.registry.register`).

Invariants:
- Every derivative is expressed through the functions themselves
  (σ′ = σ(1−σ), tanh′ = 1 − tanh², softplus′ = σ, relu′ = H, silu′ = σ(1 + z(1 − σ))),
  so expressions stay polynomial in a small set of atoms and an exact proof needs only
  ``expand``.  Irrational constants stay exact (GELU's √(2/π)).
- Conventions at the kinks (README): relu′(0) = 0 and leaky_relu′(0) = slope, elu′(0) = α
  (the left piece); relu6′ and hardtanh′ are 1 exactly on the open interval between their
  kinks (relu6′(0) = relu6′(6) = 0, hardtanh′(±1) = 0, as in PyTorch).
- No class is evaluated by SymPy's ``evalf``/mpmath (the mpmath ``sigmoid`` pitfall):
  :mod:`derive.prove.numeric` evaluates them through ``numeric`` or their pieces.
- ``ACTIVATIONS`` is the registry the spec, the network and the formula language share.

To add an activation: its SymPy class(es) and one ``register(Activation(...))`` here,
its LaTeX row in :mod:`derive.lang.symbols`, tests (CONTRIBUTING.md, "Add an activation").
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import sympy
from sympy import Expr, Integer, KroneckerDelta

from derive.ops import ranges as R
from derive.ops.registry import (
    ACTIVATIONS,
    FUNCTION_CLASSES,
    LEFT,
    RIGHT,
    Activation,
    MissingFacet,
    OpFunction,
    Param,
    Piecewise,
    Undetermined,
    exp_classes,
    kink_offsets,
    piecewise_classes,
    register,
)

__all__ = [
    "ACTIVATIONS", "Activation", "DEFAULT_LEAKY_SLOPE", "EXP_REWRITTEN", "MissingFacet", "NUMERIC_FUNCTIONS",
    "PIECEWISE", "Undetermined", "kink_offsets", "softmax_column",
]

_Activation = OpFunction  # the name the equation builder knows
DEFAULT_LEAKY_SLOPE = sympy.Rational(1, 100)
_HALF = sympy.Rational(1, 2)


# ------------------------------------------------------------------ smooth: σ, tanh, softplus
class Sigmoid(OpFunction):
    nargs = 1
    printed = "sigmoid"
    value_range = staticmethod(lambda rs: R.UNIT_OPEN)
    through_exp = staticmethod(lambda u: 1 / (1 + sympy.exp(-u)))

    def fdiff(self, argindex: int = 1) -> Expr:
        return self * (1 - self)

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return 1 / (1 + ctx.exp(-z))


class Tanh(OpFunction):
    nargs = 1
    printed = "tanh"
    value_range = staticmethod(lambda rs: R.between(-1, 1))
    through_exp = staticmethod(lambda u: (sympy.exp(2 * u) - 1) / (sympy.exp(2 * u) + 1))

    def fdiff(self, argindex: int = 1) -> Expr:
        return 1 - self**2

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        e = ctx.exp(2 * z)
        return (e - 1) / (e + 1)


class Softplus(OpFunction):
    nargs = 1
    printed = "softplus"
    value_range = staticmethod(lambda rs: R.POSITIVE_RANGE)
    through_exp = staticmethod(lambda u: sympy.log(1 + sympy.exp(u)))

    def fdiff(self, argindex: int = 1) -> Expr:
        return Sigmoid(self.args[0])

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return ctx.log(1 + ctx.exp(z))


# ------------------------------------------------------------------ piecewise: relu, leaky_relu
class ReluPrime(OpFunction):
    """The step H(z) with H(0) = 0: relu′."""

    nargs = 1
    printed = "relu_prime"
    piecewise = Piecewise((Integer(0),), (lambda u: Integer(0), lambda u: Integer(1)), (LEFT,))
    value_range = staticmethod(lambda rs: R.UNIT_CLOSED)

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0)  # almost everywhere; the kink is a set of measure zero


class Relu(OpFunction):
    nargs = 1
    printed = "relu"
    piecewise = Piecewise((Integer(0),), (lambda u: Integer(0), lambda u: u), (LEFT,))
    value_range = staticmethod(lambda rs: R.NONNEGATIVE_RANGE)
    keeps_positive_part = staticmethod(lambda *params: True)

    def fdiff(self, argindex: int = 1) -> Expr:
        return ReluPrime(self.args[0])


class LeakyReluPrime(OpFunction):
    """1 for z > 0, the slope otherwise."""

    nargs = 2
    printed = "leaky_relu_prime"
    piecewise = Piecewise((Integer(0),), (lambda u, a: a, lambda u, a: Integer(1)), (LEFT,))
    value_range = staticmethod(lambda rs: R.hull(R.point(Fraction(1)), rs[1]))

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0) if argindex == 1 else 1 - ReluPrime(self.args[0])


class LeakyRelu(OpFunction):
    nargs = 2
    printed = "leaky_relu"
    piecewise = Piecewise((Integer(0),), (lambda u, a: a * u, lambda u, a: u), (LEFT,))
    value_range = staticmethod(lambda rs: R.hull(R.POSITIVE_RANGE, R.mul(rs[1], R.Range(-R.INF, False, 0, True))))
    keeps_positive_part = staticmethod(lambda a: bool(a.is_number and a.is_positive))

    def fdiff(self, argindex: int = 1) -> Expr:
        z, slope = self.args
        if argindex == 1:
            return LeakyReluPrime(z, slope)
        return z * (1 - ReluPrime(z))  # ∂/∂slope


# ------------------------------------------------------------------ softmax (per column)
class SoftmaxEntry(OpFunction):
    """Entry k (0-based) of softmax(z_0, …, z_{n-1}): args are (k, z_0, …, z_{n-1})."""

    printed = "softmax"
    literal_args = 1
    value_range = staticmethod(lambda rs: R.UNIT_OPEN)

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


def softmax_column(zs: Sequence[Expr]) -> list[Expr]:
    """softmax of one column, entry by entry."""
    return [SoftmaxEntry(k, *zs) for k in range(len(zs))]


# ------------------------------------------------------------------ GELU (erf form), SiLU
_SQRT_2PI = sympy.sqrt(2 * sympy.pi)


def _normal_pdf(z: Expr) -> Expr:
    return sympy.exp(-z**2 / 2) / _SQRT_2PI


class NormalCdf(OpFunction):
    """Φ(z) = (1 + erf(z/√2))/2, the standard normal CDF (GELU's gate)."""

    nargs = 1
    printed = "normal_cdf"
    latex_name = r"\Phi"
    value_range = staticmethod(lambda rs: R.UNIT_OPEN)

    def fdiff(self, argindex: int = 1) -> Expr:
        return _normal_pdf(self.args[0])

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        half = ctx.number(_HALF)
        if ctx.exact and z == 0:
            return half
        return half * (1 + ctx.erf(z * ctx.power(half, Fraction(1, 2))))


class GeluErf(OpFunction):
    """GELU, exact form: z Φ(z)."""

    nargs = 1
    printed = "gelu_erf"
    value_range = staticmethod(lambda rs: R.between(Fraction(-1, 2), R.INF))  # z Φ(z) ≥ −φ(0) > −1/2

    def fdiff(self, argindex: int = 1) -> Expr:
        z = self.args[0]
        return NormalCdf(z) + z * _normal_pdf(z)

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return z * NormalCdf.numeric(ctx, z)


class Silu(OpFunction):
    """SiLU (swish): z σ(z)."""

    nargs = 1
    printed = "silu"
    value_range = staticmethod(lambda rs: R.between(Fraction(-1, 2), R.INF))  # z σ(z) ≥ −1/e
    through_exp = staticmethod(lambda u: u / (1 + sympy.exp(-u)))

    def fdiff(self, argindex: int = 1) -> Expr:
        s = Sigmoid(self.args[0])
        return s * (1 + self.args[0] * (1 - s))

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        return z * Sigmoid.numeric(ctx, z)


# ------------------------------------------------------------------ GELU, tanh approximation
_GELU_C = sympy.sqrt(2 / sympy.pi)  # exact: numeric values go through intervals
_GELU_K = sympy.Rational(44715, 10**6)


def _gelu_inner(z: Expr) -> Expr:
    return _GELU_C * (z + _GELU_K * z**3)


class Gelu(OpFunction):
    """GELU, tanh approximation: z (1 + tanh(√(2/π)(z + 0.044715 z³)))/2."""

    nargs = 1
    printed = "gelu"
    value_range = staticmethod(lambda rs: R.between(Fraction(-1, 2), R.INF))  # ≥ −max x/(1 + e^(2cx)) > −1/4
    through_exp = staticmethod(lambda u: u / 2 * (1 + Tanh.through_exp(_gelu_inner(u))))

    def fdiff(self, argindex: int = 1) -> Expr:
        z = self.args[0]
        t = Tanh(_gelu_inner(z))
        return (1 + t) / 2 + z / 2 * (1 - t**2) * _GELU_C * (1 + 3 * _GELU_K * z**2)

    @staticmethod
    def numeric(ctx: Any, z: Any) -> Any:
        if ctx.exact and z == 0:
            return ctx.zero
        c = ctx.power(2 / ctx.pi(), Fraction(1, 2))
        k = ctx.number(_GELU_K)
        t = Tanh.numeric(ctx, c * (z + k * z**3))
        return z * (1 + t) / 2


# ------------------------------------------------------------------ ELU (α), ReLU6, hardtanh
class EluPrime(OpFunction):
    """1 for z > 0, α eᶻ otherwise (elu′(0) = α)."""

    nargs = 2
    printed = "elu_prime"
    piecewise = Piecewise((Integer(0),), (lambda u, a: a * sympy.exp(u), lambda u, a: Integer(1)), (LEFT,))
    value_range = staticmethod(lambda rs: R.hull(R.point(Fraction(1)), R.mul(rs[1], R.between(0, 1, hi_in=True))))

    def fdiff(self, argindex: int = 1) -> Expr:
        z, a = self.args
        if argindex == 1:
            return EluPrime(z, a) - ReluPrime(z)
        return (1 - ReluPrime(z)) * sympy.exp(z)


class Elu(OpFunction):
    """z for z > 0, α(eᶻ − 1) otherwise."""

    nargs = 2
    printed = "elu"
    piecewise = Piecewise((Integer(0),), (lambda u, a: a * (sympy.exp(u) - 1), lambda u, a: u), (LEFT,))
    value_range = staticmethod(lambda rs: R.hull(R.POSITIVE_RANGE, R.mul(rs[1], R.between(-1, 0, hi_in=True))))
    keeps_positive_part = staticmethod(lambda a: bool(a.is_number and a.is_nonnegative))

    def fdiff(self, argindex: int = 1) -> Expr:
        z, a = self.args
        if argindex == 1:
            return EluPrime(z, a)
        return (1 - ReluPrime(z)) * (sympy.exp(z) - 1)  # ∂/∂α


def _elu_alpha(v: Expr) -> str | None:
    return "alpha must be positive" if v.is_number and not v.is_positive else None


_SIX = Integer(6)


def _clip(lo: Expr, hi: Expr) -> Piecewise:
    """u clipped to [lo, hi] (relu6, hardtanh): constant outside, u between."""
    return Piecewise((lo, hi), (lambda u: lo, lambda u: u, lambda u: hi), (LEFT, RIGHT))


def _window(lo: Expr, hi: Expr) -> Piecewise:
    """The clip's derivative: 1 on the open interval (lo, hi), 0 elsewhere, kinks included."""
    return Piecewise((lo, hi), (lambda u: Integer(0), lambda u: Integer(1), lambda u: Integer(0)), (LEFT, RIGHT))


class Relu6Prime(OpFunction):
    """1 on the open interval (0, 6), 0 elsewhere (relu6′(0) = relu6′(6) = 0)."""

    nargs = 1
    printed = "relu6_prime"
    piecewise = _window(Integer(0), _SIX)
    value_range = staticmethod(lambda rs: R.UNIT_CLOSED)

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0)


class Relu6(OpFunction):
    """min(max(z, 0), 6)."""

    nargs = 1
    printed = "relu6"
    piecewise = _clip(Integer(0), _SIX)
    value_range = staticmethod(lambda rs: R.between(0, 6, True, True))

    def fdiff(self, argindex: int = 1) -> Expr:
        return Relu6Prime(self.args[0])


class HardTanhPrime(OpFunction):
    """1 on the open interval (−1, 1), 0 elsewhere (hardtanh′(±1) = 0)."""

    nargs = 1
    printed = "hardtanh_prime"
    piecewise = _window(Integer(-1), Integer(1))
    value_range = staticmethod(lambda rs: R.UNIT_CLOSED)

    def fdiff(self, argindex: int = 1) -> Expr:
        return Integer(0)


class HardTanh(OpFunction):
    """z clipped to [−1, 1]."""

    nargs = 1
    printed = "hardtanh"
    piecewise = _clip(Integer(-1), Integer(1))
    value_range = staticmethod(lambda rs: R.between(-1, 1, True, True))

    def fdiff(self, argindex: int = 1) -> Expr:
        return HardTanhPrime(self.args[0])


# ------------------------------------------------------------------ the registrations
register(Activation("sigmoid", Sigmoid, lambda z: Sigmoid(z) * (1 - Sigmoid(z)), functions=(Sigmoid,)))
register(Activation("tanh", Tanh, lambda z: 1 - Tanh(z) ** 2, functions=(Tanh,)))
register(Activation("relu", Relu, ReluPrime, functions=(Relu, ReluPrime)))
register(Activation("leaky_relu", LeakyRelu, LeakyReluPrime, functions=(LeakyRelu, LeakyReluPrime),
                    param=Param("slope", DEFAULT_LEAKY_SLOPE)))
register(Activation("softplus", Softplus, Sigmoid, functions=(Softplus, Sigmoid)))
register(Activation("identity", lambda z: z, lambda z: Integer(1), aliases=("linear",)))
register(Activation("softmax", SoftmaxEntry, None, functions=(SoftmaxEntry,), elementwise=False))
register(Activation("gelu", Gelu, lambda z: Gelu(z).fdiff(), functions=(Gelu, Tanh),
                    exact_case="ambiguous: write gelu (the tanh approximation) or gelu_erf (the exact GELU, "
                               "PyTorch's nn.GELU default)"))
register(Activation("gelu_erf", GeluErf, lambda z: GeluErf(z).fdiff(), functions=(GeluErf, NormalCdf)))
register(Activation("silu", Silu, lambda z: Silu(z).fdiff(), functions=(Silu, Sigmoid), aliases=("swish",)))
register(Activation("elu", Elu, EluPrime, functions=(Elu, EluPrime, ReluPrime),
                    param=Param("alpha", Integer(1), _elu_alpha)))
register(Activation("relu6", Relu6, Relu6Prime, functions=(Relu6, Relu6Prime)))
register(Activation("hardtanh", HardTanh, HardTanhPrime, functions=(HardTanh, HardTanhPrime)))

#: SymPy function classes that :mod:`derive.prove.numeric` knows how to evaluate.
NUMERIC_FUNCTIONS: tuple[type[OpFunction], ...] = tuple(FUNCTION_CLASSES)

#: the piecewise function classes (relu, relu′, …): proof by cases, kinks, germs
PIECEWISE: tuple[type[OpFunction], ...] = piecewise_classes()
#: the classes with an exp form (σ, tanh, softplus, …): the exp-rewriting proof step
EXP_REWRITTEN: tuple[type[OpFunction], ...] = exp_classes()
