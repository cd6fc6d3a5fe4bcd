"""Layer types of a layer stack: each type ONE registration (its parameters with their
shapes, its forward pass, the spec keys it takes, its forward statement for explanations).

``dense`` is the first entry: parameters W_l (n_l × n_{l−1}, decayed by a weight decay)
and b_l (n_l × 1, not decayed), Z_l = W_l A_{l−1} + b_l 1ᵀ (column batch) or
Z_l = A_{l−1} W_lᵀ + 1 b_lᵀ (row batch), then A_l = g_l(Z_l).  ``affine`` is the other
convention (CS231n, Keras): W_l is n_{l−1} × n_l and b_l a row, Z_l = A_{l−1} W_l + 1 b_l.  A new type (convolution,
batch norm) is one more :class:`LayerType` here, plus its closed-form rules in
:mod:`derive.rules.layer_rules` (``LAYER_RULES``, a layer above: rules are syntax trees),
which a completeness test keeps in step with this registry.

The activation of a layer is applied by :func:`activate` (elementwise, or one example at a
time for softmax and log_softmax).  ``log_softmax`` is a composite here, log ∘ softmax
entry by entry, until :mod:`derive.ops.activations` registers it: an entry there wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
from sympy import Expr, Matrix

from derive.ops.activations import ACTIVATIONS, Activation, SoftmaxEntry, softmax_column
from derive.ops.matrices import matmul


def _log_softmax_column(zs: Sequence[Expr]) -> list[Expr]:
    return [sympy.log(s) for s in softmax_column(zs)]


#: activations that act on one example at a time (not entrywise): their column function
COLUMN_FUNCTIONS: dict[str, Callable[[Sequence[Expr]], list[Expr]]] = {
    "softmax": softmax_column,
    "log_softmax": _log_softmax_column,
}

_COMPOSITES: dict[str, Activation] = {
    "log_softmax": Activation("log_softmax", lambda k, *zs: sympy.log(SoftmaxEntry(k, *zs)), None,
                              r"\log\operatorname{softmax}", elementwise=False),
}

#: every activation a layer may name: the registry's, then the composites it lacks
LAYER_ACTIVATIONS: dict[str, Activation] = {
    **ACTIVATIONS, **{k: v for k, v in _COMPOSITES.items() if k not in ACTIVATIONS},
}
#: activations on the output layer only (per example, at least 2 units)
OUTPUT_ONLY = tuple(COLUMN_FUNCTIONS)


def activate(name: str, z: Matrix, slope: Expr | None, rows: bool) -> Matrix:
    """g(Z) for the activation ``name``: entrywise, or per example (a row or a column)."""
    act = LAYER_ACTIVATIONS[name]
    out = sympy.zeros(*z.shape)
    if act.elementwise:
        for idx in range(len(z)):
            out[idx] = act.apply(z[idx], slope)
        return out
    column = COLUMN_FUNCTIONS[name]
    for k in range(z.shape[0] if rows else z.shape[1]):
        line = list(z.row(k)) if rows else list(z.col(k))
        for i, v in enumerate(column(line)):
            out[(k, i) if rows else (i, k)] = v
    return out


@dataclass(frozen=True)
class Parameter:
    prefix: str  # W → W1, W2, ...
    shape: Callable[[int, int], tuple[int, int]]  # (n_l, n_{l−1}) → its shape
    decayed: bool = False  # a weight decay adds (λ/2)‖·‖² to J


@dataclass(frozen=True)
class LayerType:
    name: str
    keys: tuple[str, ...]  # the spec keys of one layer (besides type and the activation's parameter)
    parameters: tuple[Parameter, ...]
    #: the pre-activation Z_l from the layer's parameters (by prefix), A_{l−1}, m and the layout
    forward: Callable[[dict[str, Matrix], Matrix, int, bool], Matrix]
    #: Z_l as the formula language writes it, for explanations: (l, name of A_{l−1}, rows)
    statement: Callable[[int, str, bool], str]


def _dense_forward(params: dict[str, Matrix], prev: Matrix, m: int, rows: bool) -> Matrix:
    w, b = params["W"], params["b"]
    # (one pass: b's entries go into the same flat sums as the products)
    if rows:
        return matmul(prev, w.T, plus=matmul(Matrix(m, 1, [1] * m), b.T))
    return matmul(w, prev, plus=matmul(b, Matrix(1, m, [1] * m)))


def _dense_statement(l: int, a: str, rows: bool) -> str:
    return f"{a} @ W{l}.T + ones(m, 1) @ b{l}.T" if rows else f"W{l} @ {a} + b{l}"


def _affine_forward(params: dict[str, Matrix], prev: Matrix, m: int, rows: bool) -> Matrix:
    w, b = params["W"], params["b"]
    if rows:
        return matmul(prev, w, plus=matmul(Matrix(m, 1, [1] * m), b))
    return matmul(w.T, prev, plus=matmul(b.T, Matrix(1, m, [1] * m)))


def _affine_statement(l: int, a: str, rows: bool) -> str:
    return f"{a} @ W{l} + ones(m, 1) @ b{l}" if rows else f"W{l}.T @ {a} + b{l}.T @ ones(1, m)"


LAYER_TYPES: dict[str, LayerType] = {
    t.name: t
    for t in (
        LayerType(
            "dense", ("units", "activation"),
            (Parameter("W", lambda n, k: (n, k), decayed=True), Parameter("b", lambda n, k: (n, 1))),
            _dense_forward, _dense_statement,
        ),
        # CS231n's affine layer, Keras' Dense: W_l is n_{l−1} × n_l (inputs × units) and b_l a
        # row 1 × n_l, so a row batch computes Z_l = A_{l−1} W_l + 1 b_l (x.dot(w) + b)
        LayerType(
            "affine", ("units", "activation"),
            (Parameter("W", lambda n, k: (k, n), decayed=True), Parameter("b", lambda n, k: (1, n))),
            _affine_forward, _affine_statement,
        ),
    )
}
DEFAULT_LAYER_TYPE = "dense"
