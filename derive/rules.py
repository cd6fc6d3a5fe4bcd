"""The closed-form matrix backprop rules of a layer-stack network, as formulas.

Rules are written in the same formula language as a user's claims and are checked by
the same machinery; ``dV`` on the right means the *true* ∂J/∂V, so each rule is proven
on its own (for any upstream gradient) and the rules compose by the chain rule.

Column batch (examples are columns, Z_l = W_l A_{l-1} + b_l):
    dA_L = ∂ℓ/∂A_L / m      dZ_L = (A_L − Y)/m for sigmoid+BCE and softmax+CE
    dZ_l = dA_l ⊙ g_l′(Z_l)  dW_l = dZ_l A_{l-1}ᵀ   db_l = dZ_l 1   dA_{l-1} = W_lᵀ dZ_l
Row batch (examples are rows, Z_l = A_{l-1} W_lᵀ + b_lᵀ): transposed accordingly,
    dW_l = dZ_lᵀ A_{l-1}    db_l = dZ_lᵀ 1   dA_{l-1} = dZ_l W_l.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from derive.network import Network
from derive.spec import Spec


@dataclass(frozen=True)
class Rule:
    layer: int
    rule: str  # dZ | dA | dW | db | vec(Z) | vec(dW) | vec(ABC)
    target: str
    formula: str


def _a(l: int) -> str:
    return "X" if l == 0 else f"A{l}"


def _scaled(coefficient: sympy.Expr, body: str) -> str:
    if coefficient == 1:
        return body
    if coefficient == -1:
        return f"-{body}"
    text = sympy.sstr(coefficient)
    return f"{text} * {body}" if text.isalnum() else f"({text}) * {body}"


def loss_rules(spec: Spec) -> list[Rule]:
    L = len(spec.layers)
    per = "/ m" if spec.average else ""
    out_act = spec.layers[-1].activation
    kind = spec.loss.kind
    rules = []
    if kind == "mse":
        body = f"(A{L} - Y)"
        da = _scaled(2 * spec.loss.scale, body)
    elif kind == "binary_cross_entropy":
        da = f"(-Y / A{L} + (1 - Y) / (1 - A{L}))"
    else:
        da = f"(-Y / A{L})"
    rules.append(Rule(L, "dA", f"dA{L}", f"{da} {per}".strip()))
    if (kind, out_act) in (("binary_cross_entropy", "sigmoid"), ("cross_entropy", "softmax")):
        rules.append(Rule(L, "dZ", f"dZ{L}", f"(A{L} - Y) {per}".strip()))
    return rules


def dz_rule(spec: Spec, l: int) -> Rule:
    layer = spec.layers[l - 1]
    rows = spec.batch_layout == "rows"
    if layer.activation == "identity":
        return Rule(l, "dZ", f"dZ{l}", f"dA{l}")
    if layer.activation == "softmax":
        n = layer.units
        inner = f"sum(A{l} * dA{l}, axis=1) @ ones(1, {n})" if rows else f"ones({n}, 1) @ sum(A{l} * dA{l}, axis=0)"
        return Rule(l, "dZ", f"dZ{l}", f"A{l} * (dA{l} - {inner})")
    fn = f"{layer.activation}_prime(Z{l})"
    if layer.activation == "leaky_relu":
        fn = f"leaky_relu_prime(Z{l}, {sympy.sstr(layer.slope)})"
    return Rule(l, "dZ", f"dZ{l}", f"dA{l} * {fn}")


def layer_rules(spec: Spec, l: int) -> list[Rule]:
    rows = spec.batch_layout == "rows"
    if rows:
        out = [
            Rule(l, "dW", f"dW{l}", f"dZ{l}.T @ {_a(l - 1)}"),
            Rule(l, "db", f"db{l}", f"sum(dZ{l}, axis=0).T"),
        ]
        if l > 1:
            out.append(Rule(l, "dA", f"dA{l - 1}", f"dZ{l} @ W{l}"))
    else:
        out = [
            Rule(l, "dW", f"dW{l}", f"dZ{l} @ {_a(l - 1)}.T"),
            Rule(l, "db", f"db{l}", f"sum(dZ{l}, axis=1)"),
        ]
        if l > 1:
            out.append(Rule(l, "dA", f"dA{l - 1}", f"W{l}.T @ dZ{l}"))
    return out


def kronecker_rules(spec: Spec, l: int) -> list[Rule]:
    """The vec/Kronecker forms of layer l (shared/MATH.md §5), at the spec's sizes.

    Column batch: vec(Z) = (Aᵀ ⊗ I) vec(W) + (1 ⊗ b), vec(dW) = (A ⊗ I) vec(dZ);
    row batch: the same for Zᵀ and dZᵀ.  vec(ABC) = (Cᵀ ⊗ A) vec(B) is stated with
    A = W_lᵀ, B = dZ_l (dZ_lᵀ for rows), C = A_{l-1}ᵀ (A_{l-1}): three genuinely
    different shapes of this network.
    """
    a, n = _a(l - 1), f"n{l}"
    if spec.batch_layout == "rows":
        return [
            Rule(l, "vec(Z)", f"vec(Z{l}.T)", f"kron({a}, eye({n})) @ vec(W{l}) + kron(ones(m, 1), b{l})"),
            Rule(l, "vec(dW)", f"vec(dW{l})", f"kron({a}.T, eye({n})) @ vec(dZ{l}.T)"),
            Rule(l, "vec(ABC)", f"vec(W{l}.T @ dZ{l}.T @ {a})", f"kron({a}.T, W{l}.T) @ vec(dZ{l}.T)"),
        ]
    return [
        Rule(l, "vec(Z)", f"vec(Z{l})", f"kron({a}.T, eye({n})) @ vec(W{l}) + kron(ones(m, 1), b{l})"),
        Rule(l, "vec(dW)", f"vec(dW{l})", f"kron({a}, eye({n})) @ vec(dZ{l})"),
        Rule(l, "vec(ABC)", f"vec(W{l}.T @ dZ{l} @ {a}.T)", f"kron({a}, W{l}.T) @ vec(dZ{l})"),
    ]


def rules_for(net: Network, kronecker: bool = True) -> list[Rule]:
    """Every rule of every layer, in backprop order (output layer first)."""
    spec = net.spec
    if spec is None:
        return []
    if spec.equations is not None:
        from derive.vjp import equation_rules

        return [Rule(0, "chain", target, f) for target, f in equation_rules(net)[0]]
    L = len(spec.layers)
    out = loss_rules(spec)
    for l in range(L, 0, -1):
        out.append(dz_rule(spec, l))
        out.extend(layer_rules(spec, l))
        if kronecker:
            out.extend(kronecker_rules(spec, l))
    return out
