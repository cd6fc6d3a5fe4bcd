"""The closed-form matrix backprop rules of a layer-stack network, as formulas.

Rules are syntax trees of the same formula language as a user's claims (built here
node by node, never as text that is parsed again; ``Rule.formula`` is the tree printed
by :func:`derive.lang.formula.unparse`, for display) and are checked by the same
machinery; ``dV`` on the right means the *true* ∂J/∂V, so each rule is proven on its own
(for any upstream gradient) and the rules compose by the chain rule.

Column batch (examples are columns, Z_l = W_l A_{l-1} + b_l):
    dA_L = ∂ℓ/∂A_L / m      dZ_L = (A_L − Y)/m for sigmoid+BCE and softmax+CE
    dZ_l = dA_l ⊙ g_l′(Z_l)  dW_l = dZ_l A_{l-1}ᵀ (+ λ W_l)   db_l = dZ_l 1   dA_{l-1} = W_lᵀ dZ_l
Row batch (examples are rows, Z_l = A_{l-1} W_lᵀ + b_lᵀ): transposed accordingly,
    dW_l = dZ_lᵀ A_{l-1} (+ λ W_l)    db_l = dZ_lᵀ 1   dA_{l-1} = dZ_l W_l.

Two tables key the trees by the registries below this layer, and a completeness test
keeps them in step: ``LOSS_GRADIENTS`` and ``COMBINED_DZ`` by the losses of
:mod:`derive.ops.losses`, ``LAYER_RULES`` by the layer types of :mod:`derive.ops.layer_types`.
A registration without its trees is a :class:`RuleConstructionError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from derive.lang import formula as F
from derive.model.network import Network
from derive.ops.losses import loss as registered_loss
from derive.records import RuleKind
from derive.rules.trees import (  # noqa: F401 (re-exported: the rule record and builders)
    Rule,
    RuleConstructionError,
    T,
    add,
    call,
    div,
    grad_ref,
    matmul,
    mul,
    name,
    neg,
    num,
    power,
    scalar,
    sub,
)
from derive.rules.vjp import equation_rules
from derive.spec import Spec


def _a(l: int) -> F.Name:
    return name("X" if l == 0 else f"A{l}")


def _scaled(coefficient: sympy.Expr, body: F.Node) -> F.Node:
    if coefficient == 1:
        return body
    if coefficient == -1:
        return neg(body)
    return mul(scalar(coefficient), body)


def _sum_per_example(spec: Spec, node: F.Node) -> F.Node:
    """Σ over the classes of each example: a row (1×m) or, for row batches, a column (m×1)."""
    return call("sum", node, axis=1 if spec.batch_layout == "rows" else 0)


def _hinge_gradient(spec: Spec, a: F.Node, y: F.Node, p: dict[str, sympy.Expr]) -> F.Node:
    """H = (1 − Y) ⊙ relu′(A − Σ Y⊙A + 1), ∂ℓ/∂A = H − Y ⊙ Σ H (sums per example)."""
    h = mul(sub(num(1), y), call("relu_prime", add(sub(a, _sum_per_example(spec, mul(y, a))), num(1))))
    return sub(h, mul(y, _sum_per_example(spec, h)))


def _huber_gradient(spec: Spec, a: F.Node, y: F.Node, p: dict[str, sympy.Expr]) -> F.Node:
    """u clipped to [−δ, δ] (u = A − Y): u − relu(u − δ) + relu(−u − δ)."""
    d = scalar(p["delta"])
    return add(sub(sub(a, y), call("relu", sub(sub(a, y), d))), call("relu", sub(sub(y, a), d)))


#: ∂ℓ/∂a per loss (before the 1/m of an averaged cost), keyed by derive.ops.losses.LOSSES
LOSS_GRADIENTS: dict[str, Callable[[Spec, F.Node, F.Node, dict[str, sympy.Expr]], F.Node]] = {
    "mse": lambda spec, a, y, p: _scaled(2 * p["scale"], sub(a, y)),
    "binary_cross_entropy": lambda spec, a, y, p: add(div(neg(y), a), div(sub(num(1), y), sub(num(1), a))),
    "cross_entropy": lambda spec, a, y, p: div(neg(y), a),
    "huber": _huber_gradient,
    "mae": lambda spec, a, y, p: sub(call("relu_prime", sub(a, y)), call("relu_prime", sub(y, a))),
    "hinge": _hinge_gradient,
    "nll": lambda spec, a, y, p: neg(y),
}

#: the combined dZ_L (before 1/m) per (loss, output activation) a loss declares in ``combined``
COMBINED_DZ: dict[tuple[str, str], Callable[[Spec, int], F.Node]] = {
    ("binary_cross_entropy", "sigmoid"): lambda spec, L: sub(name(f"A{L}"), name("Y")),
    ("cross_entropy", "softmax"): lambda spec, L: sub(name(f"A{L}"), name("Y")),
    ("nll", "log_softmax"): lambda spec, L: sub(call("softmax", name(f"Z{L}")), name("Y")),
}


def loss_rules(spec: Spec) -> list[Rule]:
    """dA_L = ∂ℓ/∂A_L (/m), and the combined dZ_L where the loss declares one."""
    L = len(spec.layers)
    a, y = name(f"A{L}"), name("Y")

    def per(node: F.Node) -> F.Node:
        return div(node, name("m")) if spec.average else node

    entry = registered_loss(spec.loss.kind)
    gradient = LOSS_GRADIENTS.get(entry.name)
    if gradient is None:
        raise RuleConstructionError(f"the loss {entry.name} has no output gradient in LOSS_GRADIENTS")
    rules = [Rule.of(L, RuleKind.DA, f"dA{L}", per(gradient(spec, a, y, spec.loss.values)))]
    out_act = spec.layers[-1].activation
    if out_act in entry.combined:
        combined = COMBINED_DZ.get((entry.name, out_act))
        if combined is None:
            raise RuleConstructionError(f"the loss {entry.name} declares a combined dZ for {out_act} "
                                        "but COMBINED_DZ has none")
        rules.append(Rule.of(L, RuleKind.DZ, f"dZ{L}", per(combined(spec, L))))
    return rules


def dz_rule(spec: Spec, l: int) -> Rule:
    layer = spec.layers[l - 1]
    rows = spec.batch_layout == "rows"
    da, z, a = name(f"dA{l}"), name(f"Z{l}"), name(f"A{l}")
    if layer.activation == "identity":
        return Rule.of(l, RuleKind.DZ, f"dZ{l}", da)
    if layer.activation == "softmax":
        n = layer.units
        if rows:
            inner = matmul(call("sum", mul(a, da), axis=1), call("ones", num(1), num(n)))
        else:
            inner = matmul(call("ones", num(n), num(1)), call("sum", mul(a, da), axis=0))
        return Rule.of(l, RuleKind.DZ, f"dZ{l}", mul(a, sub(da, inner)))
    if layer.activation == "log_softmax":  # ∂ log p_i/∂z_j = δ_ij − p_j: dZ = dA − p ⊙ Σ dA
        return Rule.of(l, RuleKind.DZ, f"dZ{l}", sub(da, mul(call("softmax", z), _sum_per_example(spec, da))))
    if layer.slope is not None:  # the activation's parameter (leaky_relu's slope)
        fn = call(f"{layer.activation}_prime", z, scalar(layer.slope))
    else:
        fn = call(f"{layer.activation}_prime", z)
    return Rule.of(l, RuleKind.DZ, f"dZ{l}", mul(da, fn))


def _decay(spec: Spec, node: F.Node, w: F.Node) -> F.Node:
    """node + λ W when the spec has a weight decay λ (its m stays the batch size m)."""
    if spec.weight_decay == 0:
        return node
    return add(node, _scaled(spec.weight_decay, w))


with_decay = _decay  # public: the matrix form dW_l = dZ_l A_{l-1}ᵀ (+ λ W_l) that vec(dW_l) rests on


def layer_rules(spec: Spec, l: int) -> list[Rule]:
    rows = spec.batch_layout == "rows"
    dz, w, prev = name(f"dZ{l}"), name(f"W{l}"), _a(l - 1)
    if rows:
        out = [
            Rule.of(l, RuleKind.DW, f"dW{l}", _decay(spec, matmul(T(dz), prev), w)),
            Rule.of(l, RuleKind.DB, f"db{l}", T(call("sum", dz, axis=0))),
        ]
        if l > 1:
            out.append(Rule.of(l, RuleKind.DA, f"dA{l - 1}", matmul(dz, w)))
    else:
        out = [
            Rule.of(l, RuleKind.DW, f"dW{l}", _decay(spec, matmul(dz, T(prev)), w)),
            Rule.of(l, RuleKind.DB, f"db{l}", call("sum", dz, axis=1)),
        ]
        if l > 1:
            out.append(Rule.of(l, RuleKind.DA, f"dA{l - 1}", matmul(T(w), dz)))
    return out


def kronecker_rules(spec: Spec, l: int) -> list[Rule]:
    """The vec/Kronecker forms of layer l (shared/MATH.md §5), at the spec's sizes.

    Column batch: vec(Z) = (Aᵀ ⊗ I) vec(W) + (1 ⊗ b), vec(dW) = (A ⊗ I) vec(dZ);
    row batch: the same for Zᵀ and dZᵀ.  vec(ABC) = (Cᵀ ⊗ A) vec(B) is stated with
    A = W_lᵀ, B = dZ_l (dZ_lᵀ for rows), C = A_{l-1}ᵀ (A_{l-1}): three genuinely
    different shapes of this network.  ``n1``, ``m`` are the reserved size names.
    """
    a, eye = _a(l - 1), call("eye", name(f"n{l}"))
    w, b, dz = name(f"W{l}"), name(f"b{l}"), name(f"dZ{l}")
    bias = call("kron", call("ones", name("m"), num(1)), b)
    if spec.batch_layout == "rows":
        return [
            Rule.of(l, RuleKind.VEC_Z, f"vec(Z{l}.T)", add(matmul(call("kron", a, eye), call("vec", w)), bias)),
            Rule.of(l, RuleKind.VEC_DW, f"vec(dW{l})",
                    _decay(spec, matmul(call("kron", T(a), eye), call("vec", T(dz))), call("vec", w))),
            Rule.of(l, RuleKind.VEC_ABC, f"vec(W{l}.T @ dZ{l}.T @ {a.id})",
                    matmul(call("kron", T(a), T(w)), call("vec", T(dz)))),
        ]
    return [
        Rule.of(l, RuleKind.VEC_Z, f"vec(Z{l})", add(matmul(call("kron", T(a), eye), call("vec", w)), bias)),
        Rule.of(l, RuleKind.VEC_DW, f"vec(dW{l})",
                _decay(spec, matmul(call("kron", a, eye), call("vec", dz)), call("vec", w))),
        Rule.of(l, RuleKind.VEC_ABC, f"vec(W{l}.T @ dZ{l} @ {a.id}.T)", matmul(call("kron", a, T(w)), call("vec", dz))),
    ]


def affine_rules(spec: Spec, l: int) -> list[Rule]:
    """W_l inputs × units, b_l a row: dW = A_{l−1}ᵀ dZ, db = Σ_rows dZ, dA_{l−1} = dZ Wᵀ (row
    batch, CS231n's affine_backward); for a column batch dW = A_{l−1} dZᵀ, db = (Σ_cols dZ)ᵀ."""
    dz, w, prev = name(f"dZ{l}"), name(f"W{l}"), _a(l - 1)
    if spec.batch_layout == "rows":
        out = [Rule.of(l, RuleKind.DW, f"dW{l}", _decay(spec, matmul(T(prev), dz), w)),
               Rule.of(l, RuleKind.DB, f"db{l}", call("sum", dz, axis=0))]
        if l > 1:
            out.append(Rule.of(l, RuleKind.DA, f"dA{l - 1}", matmul(dz, T(w))))
    else:
        out = [Rule.of(l, RuleKind.DW, f"dW{l}", _decay(spec, matmul(prev, T(dz)), w)),
               Rule.of(l, RuleKind.DB, f"db{l}", T(call("sum", dz, axis=1)))]
        if l > 1:
            out.append(Rule.of(l, RuleKind.DA, f"dA{l - 1}", matmul(w, dz)))
    return out


def _affine(spec: Spec, l: int, kronecker: bool) -> list[Rule]:
    return [dz_rule(spec, l), *affine_rules(spec, l)]  # (the vec/Kronecker forms are stated for dense)


def _dense(spec: Spec, l: int, kronecker: bool) -> list[Rule]:
    out = [dz_rule(spec, l), *layer_rules(spec, l)]
    if kronecker:
        out.extend(kronecker_rules(spec, l))
    return out


#: the closed-form rules of layer l per layer type, keyed by derive.ops.layer_types.LAYER_TYPES
LAYER_RULES: dict[str, Callable[[Spec, int, bool], list[Rule]]] = {
    "dense": _dense,
    "affine": _affine,
}


def rules_for(net: Network, kronecker: bool = True) -> list[Rule]:
    """Every rule of every layer, in backprop order (output layer first)."""
    spec = net.spec
    if spec is None:
        return []
    if spec.equations is not None:

        return [Rule.of(0, RuleKind.CHAIN, target, node) for target, node in equation_rules(net)[0]]
    L = len(spec.layers)
    out = loss_rules(spec)
    for l in range(L, 0, -1):
        kind = spec.layers[l - 1].type
        rules = LAYER_RULES.get(kind)
        if rules is None:
            raise RuleConstructionError(f"the layer type {kind} has no rules in LAYER_RULES")
        out.extend(rules(spec, l, kronecker))
    return out
