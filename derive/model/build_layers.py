"""Build the forward graph of a layer stack: every Z and A entry an atom with its
definition, the targets, and the cost (see :mod:`derive.model.network`)."""

from __future__ import annotations

import sympy
from sympy import Expr, Matrix, Symbol

from derive.model.network import COST, Layer, Network
from derive.ops.activations import ACTIVATIONS, softmax_column
from derive.ops.matrices import matmul
from derive.spec import Spec


def _leaf_matrix(name: str, rows: int, cols: int) -> Matrix:
    if cols == 1 and name.startswith("b"):
        return Matrix(rows, 1, lambda i, j: Symbol(f"{name}[{i}]", real=True))
    return Matrix(rows, cols, lambda i, j: Symbol(f"{name}[{i},{j}]", real=True))


def build_layer_stack(spec: Spec) -> Network:
    """The forward graph of a layer-stack spec (dense layers and their activations)."""
    sizes = spec.sizes
    m = spec.batch
    rows = spec.batch_layout == "rows"
    matrices: dict[str, Matrix] = {}
    kinds: dict[str, str] = {}
    definitions: dict[Symbol, Expr] = {}
    canon: dict[Expr, Symbol] = {}

    def shape(n: int) -> tuple[int, int]:
        return (m, n) if rows else (n, m)

    x = _leaf_matrix("X", *shape(sizes[0]))
    matrices["X"], kinds["X"] = x, "input"
    for l in range(1, len(sizes)):
        matrices[f"W{l}"] = _leaf_matrix(f"W{l}", sizes[l], sizes[l - 1])
        matrices[f"b{l}"] = _leaf_matrix(f"b{l}", sizes[l], 1)
        kinds[f"W{l}"] = kinds[f"b{l}"] = "parameter"

    layers: list[Layer] = []
    prev = x
    for l, layer_spec in enumerate(spec.layers, start=1):
        act = ACTIVATIONS[layer_spec.activation]
        w, b = matrices[f"W{l}"], matrices[f"b{l}"]
        if rows:
            pre = matmul(prev, w.T) + matmul(Matrix(m, 1, [1] * m), b.T)
        else:
            pre = matmul(w, prev) + matmul(b, Matrix(1, m, [1] * m))
        z = _atoms(f"Z{l}", pre, definitions)
        if layer_spec.activation == "identity":
            a = z
        else:
            out = sympy.zeros(*z.shape)
            if act.elementwise:
                for idx in range(len(z)):
                    out[idx] = act.apply(z[idx], layer_spec.slope)
            else:  # softmax: one example at a time
                for k in range(m):
                    col = list(z.row(k)) if rows else list(z.col(k))
                    for i, v in enumerate(softmax_column(col)):
                        out[(k, i) if rows else (i, k)] = v
            a = _atoms(f"A{l}", out, definitions)
            for idx in range(len(a)):
                canon[out[idx]] = a[idx]
        matrices[f"Z{l}"], matrices[f"A{l}"] = z, a
        kinds[f"Z{l}"] = kinds[f"A{l}"] = "node"
        layers.append(Layer(l, act, layer_spec.slope))
        prev = a

    y, assumptions = _targets(spec, shape(sizes[-1]), rows)
    matrices["Y"], kinds["Y"] = y, "target"
    definitions[COST] = _cost(spec, prev, y, rows)
    matrices["A0"] = x
    constants: dict[str, Expr] = {"m": sympy.Integer(m)}
    for s in spec.symbols:
        constants[str(s)] = s
    return Network(spec.name, spec, matrices, kinds, definitions, canon, constants, layers, assumptions)


def _atoms(name: str, values: Matrix, definitions: dict[Symbol, Expr]) -> Matrix:
    """One atom per entry, defined by the given value."""
    out = _leaf_matrix(name, *values.shape)
    for idx in range(len(values)):
        definitions[out[idx]] = values[idx]
    return out


def _targets(spec: Spec, shape: tuple[int, int], rows: bool) -> tuple[Matrix, list[str]]:
    y = _leaf_matrix("Y", *shape)
    if spec.loss.kind != "cross_entropy":
        return y, []
    # Targets are probability vectors: eliminate the last class of each example.
    n = spec.layers[-1].units
    for k in range(spec.batch):
        idx = [(k, i) if rows else (i, k) for i in range(n)]
        y[idx[-1]] = 1 - sum((y[i] for i in idx[:-1]), sympy.Integer(0))
    last = f"Y[:, {n - 1}]" if rows else f"Y[{n - 1}, :]"
    per = "row" if rows else "column"
    return y, [
        f"each {per} of Y is a probability vector (sums to 1): {last} = 1 − the other entries"
    ]


def _cost(spec: Spec, a: Matrix, y: Matrix, rows: bool) -> Expr:
    kind, s = spec.loss.kind, spec.loss.scale
    terms = []
    for idx in range(len(a)):
        ai, yi = a[idx], y[idx]
        if kind == "mse":
            terms.append(s * (ai - yi) ** 2)
        elif kind == "binary_cross_entropy":
            terms.append(-(yi * sympy.log(ai) + (1 - yi) * sympy.log(1 - ai)))
        else:
            terms.append(-yi * sympy.log(ai))
    total = sympy.Add(*terms)
    return total / spec.batch if spec.average else total
