"""Losses of a layer stack: each loss ONE registration holding every facet derive needs.

A :class:`Loss` declares, next to each other:

- ``value``: ℓ(a, y) for one example (a column a of A_L, the matching column y of Y,
  and the loss's parameters), a SymPy expression; J = (1/m) Σ ℓ (or Σ ℓ);
- ``parameters``: the constants the spec may give under ``network.loss`` (mse's scale s,
  huber's δ), with their defaults;
- ``outputs``: the output activations the loss needs (empty: any), a spec error otherwise;
- ``targets``: what Y is (free reals, or probability / one-hot columns: the last class of
  each example is then eliminated, Y[n−1, k] = 1 − the others) and the assumption text
  the report states;
- ``combined``: the output activations for which the built-in rules include a combined
  dZ_L (the (A_L − Y)/m of sigmoid + BCE and softmax + CE).

The output gradient ∂ℓ/∂a and the combined dZ_L are syntax trees, built in
:mod:`derive.rules.layer_rules` (``LOSS_GRADIENTS``, ``COMBINED_DZ``), a layer above this
one; a completeness test checks that every loss here has them.  An unknown loss is an
:class:`UnknownLoss`, never silently another loss.

Piecewise losses are written through relu so that the proof by cases
(:mod:`derive.prove.cases`) splits on their kinks, wherever they are: |u| = relu(u) +
relu(−u), and huber's kinks at u = ±δ are the zeros of the arguments of relu(u − δ) and
relu(−u − δ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
from sympy import Expr

from derive.ops.activations import Relu

#: what the targets are
FREE = "free"  # every entry of Y its own real symbol
PROBABILITY = "probability"  # each example's targets sum to 1 (the last class eliminated)
ONE_HOT = "one-hot"  # a class indicator per example; derive represents it as PROBABILITY

Column = Sequence[Expr]
Params = dict[str, Expr]


class UnknownLoss(KeyError):
    """A loss name with no registration (a bug in the caller: the spec refuses it first)."""

    def __str__(self) -> str:
        return f"no loss is registered as {self.args[0]!r} (known: {', '.join(LOSSES)})"


@dataclass(frozen=True)
class LossParameter:
    key: str  # under network.loss: {type: huber, delta: 2}
    default: Expr
    meaning: str  # for messages: "a loss scale", "huber's delta"
    positive: bool = False  # a number must be > 0 (a free constant is taken to be positive)


@dataclass(frozen=True)
class Loss:
    name: str
    formula: str  # ℓ(a, y) in words, for documentation and reports
    value: Callable[[Column, Column, Params], Expr]  # ℓ for one example
    parameters: tuple[LossParameter, ...] = ()
    outputs: tuple[str, ...] = ()  # output activations it needs (empty: any)
    output_kind: str = "a probability"  # what those outputs are, for the spec error
    targets: str = FREE
    combined: tuple[str, ...] = ()  # output activations with a combined dZ_L rule
    aliases: tuple[str, ...] = ()

    def example(self, a: Column, y: Column, params: Params) -> Expr:
        return self.value(a, y, params)

    def assumption(self, n: int, rows: bool) -> str | None:
        """What the report says the targets are (None: free)."""
        if self.targets == FREE:
            return None
        last = f"Y[:, {n - 1}]" if rows else f"Y[{n - 1}, :]"
        per = "row" if rows else "column"
        text = f"each {per} of Y is a probability vector (sums to 1): {last} = 1 − the other entries"
        if self.targets == ONE_HOT:
            text = (f"each {per} of Y is one-hot (the class indicator); derive proves for every {per} that "
                    f"sums to 1, one-hot included: {last} = 1 − the other entries")
        return text


def _elementwise(f: Callable[[Expr, Expr, Params], Expr]) -> Callable[[Column, Column, Params], Expr]:
    def value(a: Column, y: Column, p: Params) -> Expr:
        return sympy.Add(*(f(ai, yi, p) for ai, yi in zip(a, y, strict=True)))
    return value


def _hinge(a: Column, y: Column, p: Params) -> Expr:
    """Multiclass SVM: Σ_{j ≠ c} max(0, a_j − a_c + 1) for the class c of a one-hot y,
    written Σ_j (1 − y_j) relu(a_j − y·a + 1) (y·a = a_c; the j = c term has 1 − y_c = 0)."""
    score = sympy.Add(*(yi * ai for ai, yi in zip(a, y, strict=True)))
    return sympy.Add(*((1 - yj) * Relu(aj - score + 1) for aj, yj in zip(a, y, strict=True)))


def _huber(a: Expr, y: Expr, p: Params) -> Expr:
    """½u² for |u| ≤ δ, δ(|u| − δ/2) outside (u = a − y): ½u² − ½relu(u − δ)² − ½relu(−u − δ)²."""
    u, d = a - y, p["delta"]
    return (u**2 - Relu(u - d) ** 2 - Relu(-u - d) ** 2) / 2


_SCALE = LossParameter("scale", sympy.Rational(1, 2), "a loss scale")
_DELTA = LossParameter("delta", sympy.Integer(1), "huber's delta", positive=True)

LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("mse", "ℓ = s‖a − y‖²",
             _elementwise(lambda a, y, p: p["scale"] * (a - y) ** 2),
             parameters=(_SCALE,), aliases=("squared_error",)),
        Loss("binary_cross_entropy", "ℓ = −Σ[y log a + (1−y) log(1−a)]",
             _elementwise(lambda a, y, p: -(y * sympy.log(a) + (1 - y) * sympy.log(1 - a))),
             outputs=("sigmoid",), combined=("sigmoid",), aliases=("bce",)),
        Loss("cross_entropy", "ℓ = −Σ y log a",
             _elementwise(lambda a, y, p: -y * sympy.log(a)),
             outputs=("softmax",), targets=PROBABILITY, combined=("softmax",),
             aliases=("ce", "categorical_cross_entropy", "categorical_crossentropy")),  # (Keras: Σ over classes)
        Loss("huber", "ℓ = Σ ½(a − y)² where |a − y| ≤ δ, δ(|a − y| − δ/2) elsewhere",
             _elementwise(_huber), parameters=(_DELTA,)),
        Loss("mae", "ℓ = Σ |a − y|",
             _elementwise(lambda a, y, p: Relu(a - y) + Relu(y - a))),
        Loss("hinge", "ℓ = Σ_{j≠c} max(0, a_j − a_c + 1), c the class of a one-hot y",
             _hinge, targets=ONE_HOT),
        Loss("nll", "ℓ = −Σ y a on a = log_softmax(z)",
             _elementwise(lambda a, y, p: -y * a),
             outputs=("log_softmax",), output_kind="a log-probability", targets=PROBABILITY, combined=("log_softmax",)),
    )
}

#: other names the spec accepts for a loss
LOSS_ALIASES: dict[str, str] = {alias: loss.name for loss in LOSSES.values() for alias in loss.aliases}


def loss(name: str) -> Loss:
    """The registration of a loss; an unknown name is an :class:`UnknownLoss`."""
    try:
        return LOSSES[name]
    except KeyError:
        raise UnknownLoss(name) from None
