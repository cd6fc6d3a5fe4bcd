"""Proof by cases on the relu kinks (derive.prove.cases) and the claims it settles."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest
import sympy

import derive
from derive.ops.activations import LeakyRelu, LeakyReluPrime, Relu, ReluPrime
from derive.prove.cases import by_cases
from derive.prove.judge import is_zero
from derive.prove.numeric import Evaluator, ExactContext
from derive.records import Method

z, w = sympy.symbols("z w", real=True)
tenth = sympy.Rational(1, 10)


def proven(e: sympy.Expr) -> bool:
    return is_zero(by_cases(e))


@pytest.mark.parametrize("identity", [
    Relu(z) - z * ReluPrime(z),
    ReluPrime(Relu(z)) - ReluPrime(z),
    ReluPrime(z) ** 2 - ReluPrime(z),
    Relu(z) * ReluPrime(z) - Relu(z),
    Relu(z) - Relu(-z) - z,                                   # needs the split into > 0, = 0, < 0
    ReluPrime(z) + ReluPrime(-z) + (1 - ReluPrime(z)) * (1 - ReluPrime(-z)) - 1,
    LeakyRelu(z, tenth) - z * LeakyReluPrime(z, tenth),
    ReluPrime(LeakyRelu(z, tenth)) - ReluPrime(z),            # a positive slope keeps the sign
    Relu(Relu(z) - Relu(w)) * ReluPrime(z) - Relu(z - Relu(w)) * ReluPrime(z),
    ReluPrime(3 * z) - ReluPrime(z),                          # a step sees only the sign
    Relu(Relu(z)) - Relu(z),
    Relu(LeakyRelu(z, tenth)) - Relu(z),
    LeakyReluPrime(Relu(w), tenth) - LeakyReluPrime(w, tenth),
])
def test_identities_on_both_sides_of_the_kink_are_proven(identity: sympy.Expr) -> None:
    assert not is_zero(identity)  # not a polynomial identity in opaque functions
    assert proven(identity)


@pytest.mark.parametrize("wrong", [
    Relu(z) - z,
    ReluPrime(z) - ReluPrime(-z),
    ReluPrime(z) - (1 - ReluPrime(-z)),                       # (Z > 0) against (Z >= 0): differs at 0 only
    ReluPrime(LeakyRelu(z, -tenth)) - ReluPrime(z),           # a negative slope flips the sign
    LeakyRelu(z, tenth) - Relu(z),
    Relu(z) * Relu(w) - Relu(z * w),
    Relu(3 * z) - Relu(z),                                    # relu is not a step: it scales
    Relu(LeakyRelu(z, -tenth)) - Relu(z),
    LeakyRelu(Relu(z), tenth) - LeakyRelu(z, tenth),
    ReluPrime(-3 * z) - ReluPrime(z),
])
def test_wrong_identities_are_not_proven(wrong: sympy.Expr) -> None:
    assert not proven(wrong)


def test_constants_with_a_sign_sympy_cannot_decide_give_up_the_step() -> None:
    from derive.ops.activations import Sigmoid

    s = Sigmoid(sympy.Rational(1, 2))  # no numeric value inside SymPy: its sign is unknown
    e = Relu(s) - s                    # true (σ > 0), but not provable by cases here
    assert by_cases(e) == e            # unchanged: no case list, above all no empty one
    assert not proven(e)
    assert by_cases(Relu(sympy.Integer(-3)) + ReluPrime(sympy.Rational(1, 2)) - 1) == 0


def test_off_kinks_separates_a_kink_only_difference() -> None:
    at_zero_only = ReluPrime(z) - (1 - ReluPrime(-z))
    assert is_zero(by_cases(at_zero_only, off_kinks=True))
    assert not is_zero(by_cases(Relu(z) - z, off_kinks=True))


def _random_piecewise(rng: random.Random, depth: int) -> sympy.Expr:
    if depth == 0:
        return rng.choice([z, w, -z, z - w, sympy.Integer(rng.randint(-2, 2)), tenth * z])
    kind = rng.randrange(6)
    a = _random_piecewise(rng, depth - 1)
    if kind == 0:
        return Relu(a)
    if kind == 1:
        return ReluPrime(a)
    if kind == 2:
        return LeakyRelu(a, rng.choice([tenth, -tenth]))
    if kind == 3:
        return LeakyReluPrime(a, tenth)
    b = _random_piecewise(rng, depth - 1)
    return a * b if kind == 4 else a - b


def _rewritten(e: sympy.Expr, rng: random.Random) -> sympy.Expr:
    """e with some piecewise applications written another way, right or wrong."""
    args = [_rewritten(a, rng) for a in e.args]
    e = e.func(*args) if args else e
    if isinstance(e, Relu) and rng.random() < 0.7:
        x = e.args[0]
        return rng.choice([x * ReluPrime(x), x * (1 - ReluPrime(-x)), x + Relu(-x),  # right
                           Relu(Relu(x)), Relu(3 * x) / 3,
                           x * ReluPrime(-x), Relu(-x), x - Relu(x), Relu(3 * x)])  # wrong
    if isinstance(e, ReluPrime) and rng.random() < 0.7:
        x = e.args[0]
        return rng.choice([ReluPrime(x) ** 2, ReluPrime(Relu(x)), ReluPrime(x / 3),  # right
                           ReluPrime(LeakyRelu(x, tenth)),
                           1 - ReluPrime(-x), ReluPrime(x - 1), ReluPrime(-x / 3)])  # wrong
    return e


def test_no_false_proof_on_random_piecewise_expressions() -> None:
    """Every pair proven equal by cases agrees exactly on a grid that includes the kinks."""
    rng = random.Random(7)
    grid = [Fraction(k, 2) for k in range(-3, 4)]  # includes 0, so every kink is visited
    proofs = refusals = 0
    for _ in range(300):
        a = _random_piecewise(rng, 3)
        b = _rewritten(a, rng) if rng.random() < 0.8 else _random_piecewise(rng, 3)
        if not proven(a - b):
            refusals += 1
            continue
        proofs += 1
        for zv, wv in itertools.product(grid, grid):
            ev = Evaluator(ExactContext(), {z: zv, w: wv}, {})
            assert ev(a) == ev(b), (a, b, zv, wv)
    assert proofs >= 50 and refusals >= 50  # both verdicts exercised


@pytest.fixture(scope="module", params=["local", "global"])
def relu_net(request: pytest.FixtureRequest) -> derive.Derivation:
    return derive.from_dict({"name": "relu", "network": {
        "inputs": 2, "batch": 2, "loss": "mse",
        "layers": [{"units": 2, "activation": "relu"}, {"units": 2, "activation": "leaky_relu", "slope": "1/10"}]}},
        strategy=request.param)


@pytest.mark.parametrize("target, formula", [
    ("dZ1", "dA1 * (A1 > 0)"),                   # relu(z) > 0 exactly when z > 0
    ("dZ1", "dA1 * (1 - (Z1 <= 0))"),
    ("dZ1", "dA1 * np.heaviside(Z1, 0)"),
    ("dZ2", "dA2 * np.where(Z2 > 0, 1, 0.1)"),
    ("dZ2", "dA2 * np.where(A2 > 0, 1, 0.1)"),
    ("dW2", "dZ2 @ np.maximum(Z1, 0).T"),
    ("dW2", "dZ2 @ (Z1 * (Z1 > 0)).T"),
])
def test_relu_spellings_are_proven(relu_net: derive.Derivation, target: str, formula: str) -> None:
    assert relu_net.check_claim(target, formula).verdict == "proven"


@pytest.mark.parametrize("target, formula", [
    ("dZ1", "dA1 * (Z1 < 0)"),
    ("dZ1", "dA1 * (A1 >= 0)"),                  # relu(z) >= 0 always
    ("dZ2", "dA2 * np.where(Z2 > 0, 1, 0.01)"),  # the wrong slope
    ("dZ2", "dA2 * np.where(Z2 > 0, 0.1, 1)"),   # the branches swapped
    ("dZ2", "dA2 * (Z2 > 0)"),                   # relu′ for a leaky layer
    ("dW2", "dZ2 @ Z1.T"),                       # the pre-activation for the activation
])
def test_wrong_relu_spellings_are_refuted(relu_net: derive.Derivation, target: str, formula: str) -> None:
    assert relu_net.check_claim(target, formula).verdict == "refuted"


@pytest.mark.parametrize("formula", ["dA1 * (Z1 >= 0)", "dA1 * np.heaviside(Z1, 1)"])
def test_a_difference_only_at_the_kink_is_proven_almost_everywhere_and_said(
        relu_net: derive.Derivation, formula: str) -> None:
    # one policy for sets of measure zero (README, Safety): the loss is not differentiable
    # at a kink, so a claim that differs from derive's convention relu′(0) = 0 only there
    # is proven almost everywhere, and the report says where it differs
    check = relu_net.check_claim("dZ1", formula)
    assert check.verdict == "proven"
    assert check.method == Method.EXACT_ALMOST_EVERYWHERE
    assert "relu′(0) = 0" in (check.detail or "") and "Z1[0,0]" in (check.detail or "")


def test_a_difference_on_an_open_set_is_not_almost_everywhere(relu_net: derive.Derivation) -> None:
    # (A1 >= 0) is 1 everywhere: A1 = 0 on the open set Z1 < 0 is not a kink of the mask
    check = relu_net.check_claim("dZ1", "dA1 * (A1 >= 0)")
    assert check.verdict == "refuted"


def test_a_mask_on_a_relu_output_is_refuted_under_interval_arithmetic() -> None:
    # softmax makes the points transcendental; relu(z) for z < 0 is then the interval
    # [0, 0], whose sign is 0 (it used to make every point undecidable: "unproven")
    d = derive.from_dict({"name": "mask", "network": {
        "inputs": 2, "batch": 2, "loss": "cross_entropy",
        "layers": [{"units": 3, "activation": "relu"}, {"units": 3, "activation": "relu"},
                   {"units": 2, "activation": "softmax"}]}})
    assert d.check_claim("dZ2", "(W3.T @ dZ3) * (A2 > 0)").verdict == "proven"
    wrong = d.check_claim("dZ2", "(W3.T @ dZ3) * (A2 >= 0)")  # always 1: relu′ dropped
    assert wrong.verdict == "refuted" and wrong.counterexample is not None


def _huber_prime_gap(u: sympy.Expr, d: sympy.Expr) -> sympy.Expr:
    """huber′(u) written through relu (the rule) minus the same derivative as the truth
    writes it (relu·relu′ from differentiating relu²): 0 on every side of both kinks."""
    rule = u - Relu(u - d) + Relu(-u - d)
    truth = u - Relu(u - d) * ReluPrime(u - d) + Relu(-u - d) * ReluPrime(-u - d)
    return rule - truth


def test_independent_kinks_are_split_part_by_part() -> None:
    """Σ_k w_k·gap(u_k) over 5 independent huber kinks: 3⁵ sign patterns at once (over the
    64-case limit), 3 for each part; each part is 0, so the sum is proven 0."""
    us = sympy.symbols("u0:5", real=True)
    ws = sympy.symbols("w0:5", real=True)
    d = sympy.Rational(1, 2)
    total = sympy.Add(*(w * _huber_prime_gap(u, d) for u, w in zip(us, ws, strict=True)))
    assert is_zero(by_cases(total))


def test_parts_never_prove_a_wrong_sum() -> None:
    """The same sum with one part wrong (relu′ where relu belongs, a sign flipped), or an
    extra kink-free term: not 0, whatever the split into parts."""
    us = sympy.symbols("u0:5", real=True)
    ws = sympy.symbols("w0:5", real=True)
    d = sympy.Rational(1, 2)
    right = [w * _huber_prime_gap(u, d) for u, w in zip(us, ws, strict=True)]
    wrong_parts = [ws[2] * (us[2] - ReluPrime(us[2] - d) + Relu(-us[2] - d)),  # (in place of part 2)
                   ws[2] * (-us[2] - Relu(us[2] - d) + Relu(-us[2] - d))]
    for wrong in wrong_parts:
        assert not is_zero(by_cases(sympy.Add(*right[:2], wrong, *right[3:]))), wrong
    assert not is_zero(by_cases(sympy.Add(*right, ws[2] * us[2])))  # an extra kink-free term
