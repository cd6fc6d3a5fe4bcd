"""Build the forward graph of a layer stack: every Z and A entry an atom with its
definition, the targets, and the cost (see :mod:`derive.model.network`)."""

from __future__ import annotations

import sympy
from sympy import Expr, Matrix, Symbol

from derive.model.network import COST, Layer, Network
from derive.ops.layer_types import LAYER_ACTIVATIONS, LAYER_TYPES, activate
from derive.ops.losses import FREE, loss
from derive.spec import Spec
from derive.spec.model import BATCH


def _leaf_matrix(name: str, rows: int, cols: int) -> Matrix:
    # (the names from Python ints: SymPy's Matrix(r, c, f) passes SymPy Integers, and
    # printing them into the names was a fifth of loading a large network)
    if cols == 1 and name.startswith("b"):
        return Matrix(rows, 1, [Symbol(f"{name}[{i}]", real=True) for i in range(rows)])
    if rows == 1 and name.startswith("b"):  # (an affine layer's row bias: b1[j], as NumPy's 1-D b)
        return Matrix(1, cols, [Symbol(f"{name}[{j}]", real=True) for j in range(cols)])
    return Matrix(rows, cols, [Symbol(f"{name}[{i},{j}]", real=True) for i in range(rows) for j in range(cols)])


def build_layer_stack(spec: Spec) -> Network:
    """The forward graph of a layer-stack spec: each layer through its registered type
    (derive.ops.layer_types), the cost through the registered loss (derive.ops.losses)."""
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
    for l, layer_spec in enumerate(spec.layers, start=1):
        for p in LAYER_TYPES[layer_spec.type].parameters:
            matrices[f"{p.prefix}{l}"] = _leaf_matrix(f"{p.prefix}{l}", *p.shape(sizes[l], sizes[l - 1]))
            kinds[f"{p.prefix}{l}"] = "parameter"

    layers: list[Layer] = []
    prev = x
    for l, layer_spec in enumerate(spec.layers, start=1):
        kind = LAYER_TYPES[layer_spec.type]
        act = LAYER_ACTIVATIONS[layer_spec.activation]
        params = {p.prefix: matrices[f"{p.prefix}{l}"] for p in kind.parameters}
        z = _atoms(f"Z{l}", kind.forward(params, prev, m, rows), definitions)
        if layer_spec.activation == "identity":
            a = z
        else:
            out = activate(layer_spec.activation, z, layer_spec.slope, rows)
            a = _atoms(f"A{l}", out, definitions)
            for idx in range(len(a)):
                canon[out[idx]] = a[idx]
        matrices[f"Z{l}"], matrices[f"A{l}"] = z, a
        kinds[f"Z{l}"] = kinds[f"A{l}"] = "node"
        layers.append(Layer(l, act, layer_spec.slope))
        prev = a

    y, assumptions = _targets(spec, shape(sizes[-1]), rows)
    matrices["Y"], kinds["Y"] = y, "target"
    definitions[COST] = _cost(spec, prev, y, rows) + _decay(spec, matrices)
    if spec.weight_decay != 0:
        assumptions.append(f"J includes the weight decay (λ/2)·Σ_l ‖W_l‖² with λ = {spec.weight_decay} "
                           "(biases are not decayed)")
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
    """Y, and what the report assumes of it: free entries, or (probability and one-hot
    targets) each example's last class eliminated, so that its targets sum to 1."""
    y = _leaf_matrix("Y", *shape)
    entry = loss(spec.loss.kind)
    if entry.targets == FREE:
        return y, []
    n = spec.layers[-1].units
    for k in range(spec.batch):
        idx = [(k, i) if rows else (i, k) for i in range(n)]
        y[idx[-1]] = 1 - sum((y[i] for i in idx[:-1]), sympy.Integer(0))
    text = entry.assumption(n, rows)
    return y, [text] if text else []


def _cost(spec: Spec, a: Matrix, y: Matrix, rows: bool) -> Expr:
    """(1/m) Σ ℓ (or Σ ℓ) with ℓ the registered loss of one example (a row or a column)."""
    entry, params = loss(spec.loss.kind), spec.loss.values
    examples = range(a.shape[0] if rows else a.shape[1])
    pick = (lambda v, k: list(v.row(k))) if rows else (lambda v, k: list(v.col(k)))
    total = sympy.Add(*(entry.example(pick(a, k), pick(y, k), params) for k in examples))
    return total / spec.batch if spec.average else total


def _decay(spec: Spec, matrices: dict[str, Matrix]) -> Expr:
    """Σ_l (λ/2)‖P_l‖² over every decayed parameter (dense: the weights, not the biases)."""
    lam = spec.weight_decay.xreplace({s: sympy.Integer(spec.batch) for s in spec.weight_decay.free_symbols
                                      if str(s) == BATCH})
    if lam == 0:
        return sympy.Integer(0)
    terms: list[Expr] = []
    for l, layer_spec in enumerate(spec.layers, start=1):
        for p in LAYER_TYPES[layer_spec.type].parameters:
            if p.decayed:
                terms.extend(e**2 for e in matrices[f"{p.prefix}{l}"])
    return lam / 2 * sympy.Add(*terms)
