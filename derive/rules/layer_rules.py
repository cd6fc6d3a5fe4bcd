"""The closed-form matrix backprop rules of a layer-stack network, as formulas.

Rules are syntax trees of the same formula language as a user's claims (built here
node by node, never as text that is parsed again; ``Rule.formula`` is the tree printed
by :func:`derive.lang.formula.unparse`, for display) and are checked by the same machinery; ``dV`` on the right means the *true* ∂J/∂V, so each rule is proven
on its own (for any upstream gradient) and the rules compose by the chain rule.

Column batch (examples are columns, Z_l = W_l A_{l-1} + b_l):
    dA_L = ∂ℓ/∂A_L / m      dZ_L = (A_L − Y)/m for sigmoid+BCE and softmax+CE
    dZ_l = dA_l ⊙ g_l′(Z_l)  dW_l = dZ_l A_{l-1}ᵀ   db_l = dZ_l 1   dA_{l-1} = W_lᵀ dZ_l
Row batch (examples are rows, Z_l = A_{l-1} W_lᵀ + b_lᵀ): transposed accordingly,
    dW_l = dZ_lᵀ A_{l-1}    db_l = dZ_lᵀ 1   dA_{l-1} = dZ_l W_l.
"""

from __future__ import annotations

import sympy

from derive.lang import formula as F
from derive.model.network import Network
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


def loss_rules(spec: Spec) -> list[Rule]:
    L = len(spec.layers)
    a, y, one = name(f"A{L}"), name("Y"), num(1)

    def per(node: F.Node) -> F.Node:
        return div(node, name("m")) if spec.average else node

    out_act = spec.layers[-1].activation
    kind = spec.loss.kind
    rules = []
    if kind == "mse":
        da = _scaled(2 * spec.loss.scale, sub(a, y))
    elif kind == "binary_cross_entropy":
        da = add(div(neg(y), a), div(sub(one, y), sub(one, a)))
    else:
        da = div(neg(y), a)
    rules.append(Rule.of(L, "dA", f"dA{L}", per(da)))
    if (kind, out_act) in (("binary_cross_entropy", "sigmoid"), ("cross_entropy", "softmax")):
        rules.append(Rule.of(L, "dZ", f"dZ{L}", per(sub(a, y))))
    return rules


def dz_rule(spec: Spec, l: int) -> Rule:
    layer = spec.layers[l - 1]
    rows = spec.batch_layout == "rows"
    da, z, a = name(f"dA{l}"), name(f"Z{l}"), name(f"A{l}")
    if layer.activation == "identity":
        return Rule.of(l, "dZ", f"dZ{l}", da)
    if layer.activation == "softmax":
        n = layer.units
        if rows:
            inner = matmul(call("sum", mul(a, da), axis=1), call("ones", num(1), num(n)))
        else:
            inner = matmul(call("ones", num(n), num(1)), call("sum", mul(a, da), axis=0))
        return Rule.of(l, "dZ", f"dZ{l}", mul(a, sub(da, inner)))
    if layer.activation == "leaky_relu":
        assert layer.slope is not None
        fn = call("leaky_relu_prime", z, scalar(layer.slope))
    else:
        fn = call(f"{layer.activation}_prime", z)
    return Rule.of(l, "dZ", f"dZ{l}", mul(da, fn))


def layer_rules(spec: Spec, l: int) -> list[Rule]:
    rows = spec.batch_layout == "rows"
    dz, w, prev = name(f"dZ{l}"), name(f"W{l}"), _a(l - 1)
    if rows:
        out = [
            Rule.of(l, "dW", f"dW{l}", matmul(T(dz), prev)),
            Rule.of(l, "db", f"db{l}", T(call("sum", dz, axis=0))),
        ]
        if l > 1:
            out.append(Rule.of(l, "dA", f"dA{l - 1}", matmul(dz, w)))
    else:
        out = [
            Rule.of(l, "dW", f"dW{l}", matmul(dz, T(prev))),
            Rule.of(l, "db", f"db{l}", call("sum", dz, axis=1)),
        ]
        if l > 1:
            out.append(Rule.of(l, "dA", f"dA{l - 1}", matmul(T(w), dz)))
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
            Rule.of(l, "vec(Z)", f"vec(Z{l}.T)", add(matmul(call("kron", a, eye), call("vec", w)), bias)),
            Rule.of(l, "vec(dW)", f"vec(dW{l})", matmul(call("kron", T(a), eye), call("vec", T(dz)))),
            Rule.of(l, "vec(ABC)", f"vec(W{l}.T @ dZ{l}.T @ {a.id})",
                    matmul(call("kron", T(a), T(w)), call("vec", T(dz)))),
        ]
    return [
        Rule.of(l, "vec(Z)", f"vec(Z{l})", add(matmul(call("kron", T(a), eye), call("vec", w)), bias)),
        Rule.of(l, "vec(dW)", f"vec(dW{l})", matmul(call("kron", a, eye), call("vec", dz))),
        Rule.of(l, "vec(ABC)", f"vec(W{l}.T @ dZ{l} @ {a.id}.T)", matmul(call("kron", a, T(w)), call("vec", dz))),
    ]


def rules_for(net: Network, kronecker: bool = True) -> list[Rule]:
    """Every rule of every layer, in backprop order (output layer first)."""
    spec = net.spec
    if spec is None:
        return []
    if spec.equations is not None:

        return [Rule.of(0, "chain", target, node) for target, node in equation_rules(net)[0]]
    L = len(spec.layers)
    out = loss_rules(spec)
    for l in range(L, 0, -1):
        out.append(dz_rule(spec, l))
        out.extend(layer_rules(spec, l))
        if kronecker:
            out.extend(kronecker_rules(spec, l))
    return out
