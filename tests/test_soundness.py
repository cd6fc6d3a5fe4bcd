"""Soundness against an independent computation (no SymPy): random small networks,
right and mutated backprop formulas; every "proven" must agree with mpmath central
differences of the cost, and every counterexample must show the oracle's gradient.

A false "proven" is the worst bug derive can have; this test counts them and wants 0.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

import mpmath
import pytest
import sympy
from oracle import gradient

import derive
from derive.lang.formula import parse
from derive.ops.activations import Undetermined
from derive.prove.numeric import Evaluator, ExactContext, IntervalContext, NotExact
from derive.rules.layer_rules import rules_for

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity", "gelu", "gelu_erf", "silu", "elu",
          "relu6", "hardtanh"]


def random_spec(rng: random.Random) -> dict:  # type: ignore[type-arg]
    depth = rng.choice([1, 2])
    layers = []
    for _ in range(depth - 1):
        act = rng.choice(HIDDEN)
        layer = {"units": rng.randint(1, 3), "activation": act}
        if act == "leaky_relu":
            layer["slope"] = "1/10"
        if act == "elu":
            layer["alpha"] = "3/2"
        layers.append(layer)
    out, loss = rng.choice([("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy"),
                            ("identity", "mse"), ("tanh", "mse"), ("sigmoid", {"type": "mse", "scale": 3}),
                            ("identity", {"type": "huber", "delta": "1/2"}), ("tanh", "mae"), ("identity", "hinge")])
    layers.append({"units": 2 if out == "softmax" or loss == "hinge" else rng.randint(1, 2), "activation": out})
    for layer in layers:  # dense (W units × inputs) or affine (CS231n's: inputs × units, b a row)
        layer["type"] = rng.choice(["dense", "affine"])
    return {"name": "random", "network": {
        "inputs": rng.randint(1, 3), "layers": layers, "loss": loss, "batch": rng.randint(1, 2),
        "average": rng.random() < 0.7, "batch_layout": rng.choice(["columns", "rows"])}}


def composed(d: derive.Derivation) -> dict[str, str]:
    """Backprop written out with forward values only: dV names replaced by their rules."""
    formulas: dict[str, str] = {}
    for r in rules_for(d.net, kronecker=False):
        if r.target in formulas:  # keep the first (combined) dZ_L rule
            continue
        text = r.formula
        for name, f in sorted(formulas.items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"\b{name}\b", f"({f})", text)
        formulas[r.target] = text
    return formulas


def mutations(text: str, rng: random.Random) -> list[str]:
    out = [f"2 * ({text})", f"-({text})", text.replace("_prime(", "(", 1)]
    if "/ m" in text:
        out.append(text.replace("/ m", "", 1))
    if ".T" in text:
        out.append(text.replace(".T", "", 1))
    return [m for m in out if m != text]


def leaf_values(d: derive.Derivation, rng: random.Random) -> dict[sympy.Symbol, Fraction]:
    return {s: Fraction(rng.choice([-1, 1]) * rng.randint(1, 9), rng.choice([7, 11, 13, 17]))
            for s in d.net.leaves}


def value_of(d: derive.Derivation, formula: str, leaves: dict[sympy.Symbol, Fraction]) -> list[mpmath.mpf] | None:
    m = d.evaluator.evaluate(parse(formula), formula)
    defs = d.truth.definitions()
    ctx = IntervalContext()
    iv = Evaluator(ctx, {s: ctx.number(sympy.Rational(v.numerator, v.denominator)) for s, v in leaves.items()}, defs)
    for z in (s for n, k in d.net.kinds.items() if n.startswith("Z") for s in d.net.matrices[n]):
        try:
            if ctx.sign(iv(z)) == 0:
                return None
        except Undetermined:  # a ReLU at (or too near) its kink: central differences do not apply
            return None
    ev = Evaluator(ExactContext(), leaves, defs)
    try:
        return [mpmath.mpf(v.numerator) / v.denominator for v in (ev(e) for e in m)]
    except NotExact:
        return [mpmath.mpf(iv(e).mid.a) for e in m]


@pytest.mark.parametrize("seed", range(40))
def test_no_false_proven(seed: int) -> None:
    rng = random.Random(seed)
    d = derive.from_dict(random_spec(rng), strategy=rng.choice(["local", "global"]))
    formulas = composed(d)
    stats = {"right proven": 0, "right total": 0}
    for target in [t for t in formulas if t[1] in "Wb"]:
        right = formulas[target]
        for text in [right, *mutations(right, rng)]:
            check = d.check_claim(target, text)
            if text == right:
                stats["right total"] += 1
                stats["right proven"] += check.verdict == "proven"
            leaf = target[1:]
            if check.verdict == "proven":
                leaves = leaf_values(d, rng)
                got = value_of(d, text, leaves)
                if got is None:
                    continue
                names = {str(s): v for s, v in leaves.items()}
                for k, sym in enumerate(d.net.matrices[leaf]):
                    g = gradient(d.spec, names, str(sym))
                    assert mpmath.almosteq(got[k], g, 1e-20, 1e-20), f"FALSE PROVEN {target} = {text}"
            elif check.counterexample is not None:
                ce = check.counterexample
                i, j = ce.entry
                sym = d.net.matrices[leaf][i, j]
                g = gradient(d.spec, ce.values, str(sym))
                assert mpmath.almosteq(g, mpmath.mpf(ce.true), 1e-12, 1e-30), f"bad counterexample {text}"
                assert not mpmath.almosteq(g, mpmath.mpf(ce.claimed), 1e-12, 1e-30)
    # the right formulas are the chain rule itself: derive must prove them
    assert stats["right proven"] == stats["right total"], (d.spec, stats)
