"""The activations added as one registration each (issue 13): gelu (tanh approximation),
gelu_erf, silu, elu (α), relu6 (kinks 0 and 6), hardtanh (kinks ±1).

For each: the built-in rules of a network using it are proven, the right claim is proven,
mutated claims are refuted, kink-only differences are proven almost everywhere, values
and derivatives agree with mpmath, and it reads and prints in LaTeX and in equations."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import sympy

import derive
from derive.ops.activations import (
    ACTIVATIONS,
    Elu,
    EluPrime,
    HardTanh,
    HardTanhPrime,
    Relu,
    Relu6,
    Relu6Prime,
    ReluPrime,
)
from derive.prove.cases import by_cases
from derive.prove.numeric import Evaluator, ExactContext, IntervalContext, NotExact
from derive.prove.zero import is_zero

z = sympy.Symbol("z", real=True)
NEW = ["gelu", "gelu_erf", "silu", "elu", "relu6", "hardtanh"]
SMOOTH = ["gelu", "gelu_erf", "silu"]
mpmath.mp.dps = 60
_C = mpmath.sqrt(2 / mpmath.pi)
_K = mpmath.mpf(44715) / 10**6
REFERENCE = {
    "gelu": lambda x: x / 2 * (1 + mpmath.tanh(_C * (x + _K * x**3))),
    "gelu_erf": lambda x: x * mpmath.ncdf(x),
    "silu": lambda x: x / (1 + mpmath.exp(-x)),
    "elu": lambda x: x if x > 0 else (mpmath.exp(x) - 1) / 2,  # α = 1/2
    "relu6": lambda x: min(max(x, 0), 6),
    "hardtanh": lambda x: min(max(x, -1), 1),
}
POINTS = [Fraction(-13, 2), Fraction(-3, 2), Fraction(-1, 3), Fraction(1, 2), Fraction(5, 2), Fraction(13, 2)]


def _interval(e: sympy.Expr, at: Fraction) -> mpmath.mpf:
    ctx = IntervalContext()
    v = Evaluator(ctx, {z: ctx.number(sympy.Rational(at.numerator, at.denominator))})(e)
    assert v.delta < mpmath.mpf(10) ** -40  # a tight, certified enclosure
    return mpmath.mpf(v.mid.a)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("at", POINTS)
def test_values_and_derivatives_agree_with_mpmath(name: str, at: Fraction) -> None:
    act = ACTIVATIONS[name]
    alpha = sympy.Rational(1, 2) if act.needs_slope else None
    ref = REFERENCE[name]
    x = mpmath.mpf(at.numerator) / at.denominator
    assert mpmath.almosteq(_interval(act.apply(z, alpha), at), ref(x), 1e-40)
    h = mpmath.mpf(10) ** -25  # no point is within h of a kink
    slope = (ref(x + h) - ref(x - h)) / (2 * h)
    assert mpmath.almosteq(_interval(act.derivative(z, alpha), at), slope, 1e-30)


def test_gelu_keeps_its_irrational_constant_exact() -> None:
    prime = ACTIVATIONS["gelu"].derivative(z)
    assert not prime.has(sympy.Float) and prime.has(sympy.pi)
    assert sympy.sqrt(2) in prime.atoms(sympy.Pow) or prime.has(sympy.sqrt(2 / sympy.pi))
    with pytest.raises(NotExact):  # √(2/π) is irrational: the point is redone in intervals
        Evaluator(ExactContext(), {z: Fraction(1, 2)})(ACTIVATIONS["gelu"].apply(z))
    for name in ("gelu", "gelu_erf", "silu"):  # where the value is rational it is exact
        assert Evaluator(ExactContext(), {z: Fraction(0)})(ACTIVATIONS[name].apply(z)) == 0


@pytest.mark.parametrize("e, at, value", [
    (Relu6Prime(z), 0, 0), (Relu6Prime(z), 6, 0), (Relu6Prime(z), 3, 1), (Relu6Prime(z), 7, 0),
    (Relu6(z), 6, 6), (Relu6(z), 8, 6), (Relu6(z), -1, 0),
    (HardTanhPrime(z), -1, 0), (HardTanhPrime(z), 1, 0), (HardTanhPrime(z), 0, 1),
    (HardTanh(z), 2, 1), (HardTanh(z), -2, -1), (HardTanh(z), Fraction(1, 2), Fraction(1, 2)),
    (EluPrime(z, sympy.Rational(1, 3)), 0, Fraction(1, 3)), (Elu(z, 2), 0, 0), (EluPrime(z, 2), 1, 1),
])
def test_the_conventions_at_the_kinks(e: sympy.Expr, at: Fraction, value: Fraction) -> None:
    assert Evaluator(ExactContext(), {z: Fraction(at)})(e) == value


def test_an_interval_around_a_kink_other_than_0_has_no_piece() -> None:
    from derive.ops.activations import Undetermined

    ctx = IntervalContext()
    around_six = ctx.number(sympy.Integer(6)) + mpmath.iv.mpf(["-1e-40", "1e-40"])
    with pytest.raises(Undetermined):
        Evaluator(ctx, {z: around_six})(Relu6Prime(z))
    assert Evaluator(ctx, {z: ctx.number(sympy.Integer(6))})(Relu6Prime(z)) == 0  # exactly 6


@pytest.mark.parametrize("identity", [
    Relu6(z) - (Relu(z) - Relu(z - 6)),
    Relu6Prime(z) - ReluPrime(z) * ReluPrime(6 - z),           # 0 at both kinks, like relu6′
    HardTanh(z) - (Relu(z + 1) - Relu(z - 1) - 1),
    Relu6(z) - z * Relu6Prime(z) - 6 * (1 - ReluPrime(6 - z)),  # needs u − 6 split three ways
    Relu6Prime(Relu6(z)) - Relu6Prime(z),                      # relu6′(6) = 0 makes this exact
    Relu6Prime(Relu(z)) - Relu6Prime(z),                       # constant for z ≤ 0
    Elu(z, sympy.Rational(1, 2)) - z * ReluPrime(z) - (sympy.exp(z) - 1) / 2 * (1 - ReluPrime(z)),
    EluPrime(z, 2) - ReluPrime(z) - 2 * sympy.exp(z) * (1 - ReluPrime(z)),
    ReluPrime(Elu(z, 2)) - ReluPrime(z),                       # elu keeps the sign
])
def test_identities_between_kinks_anywhere_are_proven_by_cases(identity: sympy.Expr) -> None:
    assert not is_zero(identity)
    assert is_zero(by_cases(identity))


@pytest.mark.parametrize("wrong, off_kinks", [
    (Relu6Prime(z) - ReluPrime(z), False),                     # differs for z > 6
    (Relu6(z) - Relu(z), False),
    (HardTanhPrime(z) - ReluPrime(z + 1), False),              # differs for z > 1
    (Relu6Prime(z) - (ReluPrime(z) - ReluPrime(z - 6)), False),  # differs at z = 6 only ...
    (EluPrime(z, 2) - EluPrime(z, 1), False),
])
def test_wrong_identities_are_not_proven(wrong: sympy.Expr, off_kinks: bool) -> None:
    assert not is_zero(by_cases(wrong, off_kinks=off_kinks))


def test_a_difference_only_at_the_kink_6_vanishes_off_the_kinks() -> None:
    at_six_only = Relu6Prime(z) - (ReluPrime(z) - ReluPrime(z - 6))  # ... so it holds off the kinks
    assert is_zero(by_cases(at_six_only, off_kinks=True))


def _two_layers(act: str, **param: object) -> derive.Derivation:
    return derive.from_dict({"name": act, "network": {
        "inputs": 2, "batch": 2, "loss": "binary_cross_entropy",
        "layers": [{"units": 2, "activation": act, **param}, {"units": 1, "activation": "sigmoid"}]}})


@pytest.fixture(scope="module", params=NEW)
def net(request: pytest.FixtureRequest) -> tuple[str, derive.Derivation]:
    name = request.param
    return name, _two_layers(name, **({"alpha": "1/2"} if name == "elu" else {}))


def test_the_built_in_rules_are_proven(net: tuple[str, derive.Derivation]) -> None:
    name, d = net
    checks = d.check_rules()
    assert checks and all(c.verdict == "proven" for c in checks), [(c.statement, c.verdict) for c in checks]
    assert any(c.target == "dZ1" and f"{name}_prime(Z1" in c.formula for c in checks)


def test_the_right_claim_is_proven_and_mutations_are_refuted(net: tuple[str, derive.Derivation]) -> None:
    name, d = net
    assert d.check_claim("dZ1", f"dA1 * {name}_prime(Z1)").verdict == "proven"
    assert d.check_claim("dZ1", f"(W2.T @ dZ2) * {name}_prime(Z1)").verdict == "proven"
    for wrong in ["dA1",                                # the derivative factor missing
                  f"{name}_prime(Z1)",                  # the upstream gradient missing
                  f"dA1 * {name}_prime(Z1) / 2",
                  "dA1 * relu_prime(Z1)",               # another activation's derivative
                  f"dA1 * {name}(Z1)"]:                 # the function for its derivative
        check = d.check_claim("dZ1", wrong)
        assert check.verdict == "refuted", (name, wrong, check.verdict, check.detail)
    at_a = d.check_claim("dZ1", f"dA1 * {name}_prime(A1)")  # evaluated at A instead of Z
    if name in SMOOTH or name == "elu":
        assert at_a.verdict == "refuted"
    else:  # relu6′(relu6(z)) = relu6′(z) everywhere (relu6′(6) = 0), hardtanh likewise
        assert at_a.verdict == "proven"


def _exact(method: object) -> bool:
    return str(method).startswith("exact") and "almost everywhere" not in str(method)


def _almost_everywhere(method: object) -> bool:
    return "almost everywhere" in str(method)


def test_relu_prime_for_relu6_is_refuted_above_6() -> None:
    check = _two_layers("relu6").check_claim("dZ1", "dA1 * relu_prime(Z1)")
    assert check.verdict == "refuted" and check.counterexample is not None  # a point with Z1 > 6


def test_relu6_masks() -> None:
    d = _two_layers("relu6")
    exact = d.check_claim("dZ1", "dA1 * (Z1 > 0) * (Z1 - 6 < 0)")
    assert exact.verdict == "proven" and _exact(exact.method)
    at_six = d.check_claim("dZ1", "dA1 * (Z1 > 0) * (Z1 - 6 <= 0)")  # 1 at z = 6, where relu6′(6) = 0
    assert at_six.verdict == "proven" and _almost_everywhere(at_six.method)
    assert "- 6" in (at_six.detail or "")
    assert d.check_claim("dZ1", "dA1 * (Z1 > 0)").verdict == "refuted"
    assert d.check_claim("dZ1", "dA1 * (Z1 - 6 < 0)").verdict == "refuted"


def test_hardtanh_masks() -> None:
    d = _two_layers("hardtanh")
    assert _exact(d.check_claim("dZ1", "dA1 * (Z1 + 1 > 0) * (Z1 - 1 < 0)").method)
    assert _almost_everywhere(d.check_claim("dZ1", "dA1 * (Z1 + 1 >= 0) * (Z1 - 1 <= 0)").method)
    assert d.check_claim("dZ1", "dA1 * (Z1 + 1 > 0)").verdict == "refuted"


def test_elu_takes_its_alpha_per_layer() -> None:
    d = derive.from_dict({"name": "elu", "network": {"inputs": 2, "batch": 2, "loss": "mse", "layers": [
        {"units": 2, "activation": "elu", "alpha": "1/2"}, {"units": 2, "activation": "elu", "alpha": 2},
        {"units": 1, "activation": "identity"}]}})
    assert all(c.verdict == "proven" for c in d.check_rules())
    assert d.check_claim("dZ1", "dA1 * elu_prime(Z1)").verdict == "proven"  # layer 1's alpha
    assert d.check_claim("dZ2", "dA2 * elu_prime(Z2, 2)").verdict == "proven"
    assert d.check_claim("dZ1", "dA1 * ((Z1 > 0) + (A1 + 1/2) * (Z1 <= 0))").verdict == "proven"
    assert d.check_claim("dZ1", "dA1 * elu_prime(Z1, 2)").verdict == "refuted"  # another layer's alpha
    assert d.check_claim("dZ1", "dA1 * ((Z1 > 0) + A1 * (Z1 <= 0))").verdict == "refuted"


def test_elu_alpha_is_a_free_constant_too() -> None:
    d = _two_layers("elu", alpha="alpha")
    assert d.check_claim("dZ1", "dA1 * elu_prime(Z1, alpha)").verdict == "proven"
    assert d.check_claim("dZ1", "dA1 * elu_prime(Z1, 1)").verdict == "refuted"


@pytest.mark.parametrize("layer, message", [
    ({"activation": "elu", "alpha": -1}, "network.layers[0].alpha: alpha must be positive, got -1"),
    ({"activation": "elu", "slope": 1}, "network.layers[0].slope: a slope is only for leaky_relu, not elu"),
    ({"activation": "relu6", "alpha": 1}, "network.layers[0].alpha: an alpha is only for elu, not relu6"),
])
def test_parameter_constraints_are_spec_errors(layer: dict[str, object], message: str) -> None:
    with pytest.raises(derive.SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        derive.from_dict({"name": "x", "network": {"inputs": 2, "loss": "mse",
                                                   "layers": [{"units": 2, **layer}, {"units": 1}]}})


LATEX = {"gelu": r"\operatorname{GELU}", "gelu_erf": r"\operatorname{GELU\_erf}", "silu": r"\operatorname{SiLU}",
         "elu": r"\operatorname{ELU}", "relu6": r"\operatorname{ReLU6}", "hardtanh": r"\operatorname{hardtanh}"}


def test_latex_claims(net: tuple[str, derive.Derivation]) -> None:
    name, d = net
    head = LATEX[name]
    right = d.check_latex_claim(rf"\frac{{\partial L}}{{\partial Z_1}} = \frac{{\partial L}}{{\partial A_1}} "
                                rf"\odot {head}'(Z_1)")
    assert right.verdict == "proven" and right.formula == f"dA1 * {name}_prime(Z1)"
    lower = d.check_latex_claim(rf"\frac{{\partial L}}{{\partial Z_1}} = \frac{{\partial L}}{{\partial A_1}} "
                                rf"\odot \operatorname{{{name.replace('_', chr(92) + '_')}}}'(Z_1)")
    assert lower.verdict == "proven"
    wrong = d.check_latex_claim(rf"\frac{{\partial L}}{{\partial Z_1}} = \frac{{\partial L}}{{\partial A_1}} "
                                rf"\odot {head}(Z_1)")
    assert wrong.verdict == "refuted"


@pytest.mark.parametrize("call", ["gelu(Z1)", "gelu_erf(Z1)", "silu(Z1)", "elu(Z1, 1/2)", "relu6(Z1)",
                                  "hardtanh(Z1)"])
def test_in_equations(call: str) -> None:
    prime = call.replace("(", "_prime(", 1)
    d = derive.from_dict({"name": call, "network": {
        "equations": f"Z1 = W1 @ X + b1\nA1 = {call}\nZ2 = W2 @ A1 + b2\nL = sum((Z2 - Y)**2) / (2 * m)\n",
        "parameters": ["W1", "b1", "W2", "b2"],
        "shapes": {"X": [2, "m"], "Y": [1, "m"], "W1": [2, 2], "b1": [2, 1], "W2": [1, 2], "b2": [1, 1]},
        "batch": 2}})
    rules = d.check_rules()
    assert rules and all(c.verdict == "proven" for c in rules)
    assert d.check_claim("dZ1", f"(W2.T @ dZ2) * {prime}").verdict == "proven"
    assert d.check_claim("dZ1", "W2.T @ dZ2").verdict == "refuted"
